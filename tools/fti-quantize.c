/* fti-quantize: convert a GGUF llama model's weights between F32, F16, BF16, Q8_0 and Q4_0.
 *
 *     build/fti-quantize IN.gguf OUT.gguf TYPE        (TYPE: f32 f16 bf16 q8_0 q4_0)
 *
 * Every 2-D weight is decoded to f32 and re-encoded as TYPE (ggml's rounding); 1-D tensors (the
 * RMSNorm weights) stay F32. Keys are copied, general.file_type and general.quantization_version
 * are updated (kept, with a warning, when no matrix could take TYPE). Matrices whose rows are
 * not a multiple of 32 stay in their type for Q8_0/Q4_0 (reported). A Q8_0/Q4_0 source
 * re-encoded as the other keeps its rounding error too (as llama-quantize's --allow-requantize):
 * reported. The output is written atomically (OUT may be IN); the input is validated as
 * fti_gguf_open does, so any GGUF file of supported tensor types converts, whatever its
 * architecture.
 */
#define FTI_IMPLEMENTATION
#include "fti.h"

#include <stdio.h>
#include <string.h>

static int parse_type(const char *s, uint32_t *t, uint32_t *ftype) {
    if (!strcmp(s, "f32") || !strcmp(s, "F32")) { *t = FTI_GGML_F32; *ftype = 0; }
    else if (!strcmp(s, "f16") || !strcmp(s, "F16")) { *t = FTI_GGML_F16; *ftype = 1; }
    else if (!strcmp(s, "bf16") || !strcmp(s, "BF16")) { *t = FTI_GGML_BF16; *ftype = 32; }
    else if (!strcmp(s, "q8_0") || !strcmp(s, "Q8_0")) { *t = FTI_GGML_Q8_0; *ftype = 7; }
    else if (!strcmp(s, "q4_0") || !strcmp(s, "Q4_0")) { *t = FTI_GGML_Q4_0; *ftype = 2; }
    else return 0;
    return 1;
}

int main(int argc, char **argv) {
    fti_gguf *g = NULL;
    fti_gguf_writer *w = NULL;
    fti_error err;
    uint32_t type, ftype;
    size_t k, in_bytes = 0, out_bytes = 0, n_requant = 0, n_as_type = 0;
    const fti_kernels *kt = fti_kernels_get(FTI_ISA_AUTO);
    float *row = NULL;
    size_t row_cap = 0;
    if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: fti-quantize IN.gguf OUT.gguf TYPE   (f32 f16 bf16 q8_0 q4_0)\n"
               "Re-encodes every 2-D weight as TYPE; norms stay F32; keys are kept.\n");
        return 0;
    }
    if (argc != 4) {
        fprintf(stderr, "usage: fti-quantize IN.gguf OUT.gguf TYPE   (f32 f16 bf16 q8_0 q4_0)\n");
        return 2;
    }
    if (!parse_type(argv[3], &type, &ftype)) {
        fprintf(stderr, "fti-quantize: unknown type '%s' (f32 f16 bf16 q8_0 q4_0)\n", argv[3]);
        return 2;
    }
    if (fti_gguf_open(&g, argv[1], NULL, &err) != FTI_OK) {
        fprintf(stderr, "fti-quantize: %s\n", err.msg);
        return 1;
    }
    if (fti_gguf_writer_create(&w, fti_gguf_alignment(g)) != FTI_OK) {
        fprintf(stderr, "fti-quantize: out of memory\n");
        return 1;
    }
    for (k = 0; k < fti_gguf_n_kv(g); k++)
        if (fti_gguf_set_kv_from(w, g, fti_gguf_kv_at(g, k)) != FTI_OK) {
            fprintf(stderr, "fti-quantize: out of memory\n");
            return 1;
        }
    for (k = 0; k < fti_gguf_n_tensors(g); k++) {
        const fti_gguf_tensor *t = fti_gguf_tensor_at(g, k);
        size_t cols = (size_t)t->ne[0], rows = t->n_elements / cols, r, in_rb, out_rb, n_bytes;
        uint32_t to = type;
        unsigned char *buf;
        fti_result rc;
        in_bytes += t->n_bytes;
        if (t->n_dims == 1) to = t->type; /* norms and other vectors keep their type */
        if (!fti_ggml_row_bytes(to, cols)) {
            fprintf(stderr, "fti-quantize: %s: rows of %lu stay %s (not a multiple of 32)\n",
                    t->name, (unsigned long)cols, fti_ggml_type_name(t->type));
            to = t->type;
        }
        if (to == t->type) {
            rc = fti_gguf_add_tensor(w, t->name, t->n_dims, t->ne, t->type, t->data, t->n_bytes);
            out_bytes += t->n_bytes;
        } else {
            n_requant += (t->type == FTI_GGML_Q8_0 || t->type == FTI_GGML_Q4_0) &&
                         (to == FTI_GGML_Q8_0 || to == FTI_GGML_Q4_0);
            in_rb = fti_ggml_row_bytes(t->type, cols);
            out_rb = fti_ggml_row_bytes(to, cols);
            n_bytes = out_rb * rows;
            buf = (unsigned char *)fti_malloc(n_bytes);
            if (cols > row_cap) {
                fti_free(row);
                row = (float *)fti_malloc(cols * sizeof(float));
                row_cap = cols;
            }
            if (!buf || !row) {
                fprintf(stderr, "fti-quantize: out of memory\n");
                return 1;
            }
            for (r = 0; r < rows; r++) {
                fti_dequantize_row(kt, (fti_dtype)t->type, row,
                                   (const unsigned char *)t->data + r * in_rb, cols);
                fti_quantize_row(kt, (fti_dtype)to, buf + r * out_rb, row, cols);
            }
            rc = fti_gguf_add_tensor_owned(w, t->name, t->n_dims, t->ne, to, buf, n_bytes);
            out_bytes += n_bytes;
        }
        if (rc != FTI_OK) {
            fprintf(stderr, "fti-quantize: %s: %s\n", t->name, fti_result_str(rc));
            return 1;
        }
        n_as_type += t->n_dims > 1 && to == type;
    }
    /* the file's type says what its matrices are: only when some are TYPE now (else the
     * input's keys stay, as its matrices did) */
    if (n_as_type) {
        fti_gguf_set_u32(w, "general.file_type", ftype);
        if (type == FTI_GGML_Q8_0 || type == FTI_GGML_Q4_0)
            fti_gguf_set_u32(w, "general.quantization_version", 2);
        else
            fti_gguf_unset(w, "general.quantization_version");
    } else {
        fprintf(stderr, "fti-quantize: warning: no matrix of %s could be %s: the output keeps "
                "the input's types and general.file_type\n", argv[1], fti_ggml_type_name(type));
    }
    if (fti_gguf_writer_write(w, argv[2], &err) != FTI_OK) {
        fprintf(stderr, "fti-quantize: %s\n", err.msg);
        return 1;
    }
    if (n_requant)
        fprintf(stderr,
                "fti-quantize: warning: %lu tensors of %s were already quantized: the output "
                "keeps their rounding error too (quantize the F32/F16 model instead)\n",
                (unsigned long)n_requant, argv[1]);
    fprintf(stderr, "fti-quantize: %s -> %s (%s): tensor data %.2f MB -> %.2f MB\n", argv[1],
            argv[2], fti_ggml_type_name(type), (double)in_bytes / 1e6, (double)out_bytes / 1e6);
    fti_free(row);
    fti_gguf_writer_free(w);
    fti_gguf_close(g);
    return 0;
}
