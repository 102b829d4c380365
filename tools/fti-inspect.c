/* fti-inspect: print GGUF model files' metadata and tensor tables.
 *
 *     build/fti-inspect MODEL.gguf [MODEL.gguf...] [--all]
 *
 * Validates the file like the engine does (every header field checked against the file) and
 * prints the version, alignment, each key with its type and value (arrays: type, length and the
 * first items; --all prints them whole), then one line per tensor: name, type, dims (innermost
 * first), bytes and file offset. For a llama model it also prints the resolved configuration.
 * Several files are inspected in turn, each after a line "==> FILE <==". Exit status 1 (with
 * the reason on stderr) if the reader rejects any of them; the others are still printed.
 */
#define FTI_IMPLEMENTATION
#include "fti.h"

#include <stdio.h>
#include <string.h>

static void print_str(const char *s, size_t n, size_t max) {
    size_t i, m = n < max ? n : max;
    putchar('"');
    for (i = 0; i < m; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') printf("\\%c", c);
        else if (c == '\n') printf("\\n");
        else if (c < 0x20 || c == 0x7f) printf("\\x%02x", c);
        else putchar(c);
    }
    putchar('"');
    if (m < n) printf("... (%lu bytes)", (unsigned long)n);
}

/* Prints a key or tensor name padded to width columns, control bytes as \xNN: a hostile file's
 * names reach the terminal as text, not as escape sequences. */
static void print_name(const char *s, int width) {
    int n = 0;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        n += (c < 0x20 || c == 0x7f) ? printf("\\x%02x", c) : (putchar(c), 1);
    }
    printf("%*s", width > n ? width - n : 0, "");
}

static void print_scalar(const fti_gguf_kv *kv) {
    if (kv->type == FTI_GGUF_FLOAT32 || kv->type == FTI_GGUF_FLOAT64)
        printf("%.9g", fti_gguf_kv_num(kv));
    else if (kv->type == FTI_GGUF_BOOL)
        printf("%s", fti_gguf_kv_int(kv) ? "true" : "false");
    else if (kv->type == FTI_GGUF_UINT64)
        printf("%llu", (unsigned long long)(uint64_t)fti_gguf_kv_int(kv));
    else
        printf("%lld", (long long)fti_gguf_kv_int(kv));
}

/* Prints one file; 0, or 1 after the reader's reason on stderr. */
static int inspect(const char *path, int all) {
    fti_gguf *g = NULL;
    fti_error err;
    size_t k, total = 0;
    fti_model_config cfg;
    fti_gguf_opts go;
    memset(&go, 0, sizeof go);
    go.any_type = 1; /* K-quants and the like are shown too (fti does not run them) */
    if (fti_gguf_open(&g, path, &go, &err) != FTI_OK) {
        fflush(stdout); /* the reason after the header line naming the file */
        fprintf(stderr, "fti-inspect: %s\n", err.msg);
        return 1;
    }
    printf("file %s: GGUF v%lu, %lu bytes, alignment %lu, data at %lu, %lu keys, %lu tensors\n",
           path, (unsigned long)fti_gguf_version(g), (unsigned long)fti_gguf_file_size(g),
           (unsigned long)fti_gguf_alignment(g), (unsigned long)fti_gguf_data_offset(g),
           (unsigned long)fti_gguf_n_kv(g), (unsigned long)fti_gguf_n_tensors(g));
    for (k = 0; k < fti_gguf_n_kv(g); k++) {
        const fti_gguf_kv *kv = fti_gguf_kv_at(g, k);
        printf("  ");
        print_name(kv->key, 44);
        printf(" %-7s ", fti_gguf_type_name(kv->type));
        if (kv->type == FTI_GGUF_STRING) {
            print_str((const char *)kv->data, kv->n_bytes, all ? (size_t)-1 : 120);
        } else if (kv->type == FTI_GGUF_ARRAY) {
            size_t j, show = all ? kv->arr_n : (kv->arr_n < 8 ? kv->arr_n : 8);
            printf("[%s x %lu] ", fti_gguf_type_name(kv->arr_type), (unsigned long)kv->arr_n);
            for (j = 0; j < show; j++) {
                if (j) printf(", ");
                if (kv->arr_type == FTI_GGUF_STRING) {
                    size_t len = 0;
                    const char *s = fti_gguf_arr_str(g, kv, j, &len);
                    print_str(s, len, 40);
                } else if (kv->arr_type == FTI_GGUF_FLOAT32 || kv->arr_type == FTI_GGUF_FLOAT64) {
                    printf("%.6g", fti_gguf_arr_num(kv, j));
                } else if (kv->arr_type == FTI_GGUF_BOOL) { /* (not an integer to arr_int) */
                    printf("%s", ((const unsigned char *)kv->data)[j] ? "true" : "false");
                } else if (kv->arr_type == FTI_GGUF_UINT64) {
                    printf("%llu", (unsigned long long)(uint64_t)fti_gguf_arr_int(kv, j));
                } else {
                    printf("%lld", (long long)fti_gguf_arr_int(kv, j));
                }
            }
            if (show < kv->arr_n) printf(", ...");
        } else {
            print_scalar(kv);
        }
        putchar('\n');
    }
    printf("tensors:\n  %-32s %-5s %-24s %12s %12s\n", "name", "type", "dims", "bytes", "offset");
    for (k = 0; k < fti_gguf_n_tensors(g); k++) {
        const fti_gguf_tensor *t = fti_gguf_tensor_at(g, k);
        char dims[128], tn[16];
        uint32_t d;
        size_t n = 0;
        dims[0] = 0;
        for (d = 0; d < t->n_dims && n < sizeof dims; d++) /* n never passes the end */
            n += (size_t)snprintf(dims + n, sizeof dims - n, d ? " x %llu" : "%llu",
                                  (unsigned long long)t->ne[d]);
        printf("  ");
        print_name(t->name, 32);
        printf(" %-5s %-24s %12lu %12llu\n", fti_ggml_type_any_name(t->type, tn), dims,
               (unsigned long)t->n_bytes,
               (unsigned long long)(fti_gguf_data_offset(g) + t->offset));
        total += t->n_bytes;
    }
    printf("tensor data: %lu bytes (%.2f MB)\n", (unsigned long)total, (double)total / 1e6);
    if (fti_gguf_find(g, "general.architecture")) {
        if (fti_gguf_llama_config(g, &cfg, 1, &err) == FTI_OK)
            printf(
                "llama: vocab %lu, dim %lu, layers %lu, heads %lu (kv %lu), ffn %lu, context %lu, "
                "rope base %g, eps %g, %s embeddings, %lu parameters\n",
                (unsigned long)cfg.vocab_size, (unsigned long)cfg.dim, (unsigned long)cfg.n_layers,
                (unsigned long)cfg.n_heads, (unsigned long)cfg.n_kv_heads,
                (unsigned long)cfg.hidden_dim, (unsigned long)cfg.context_len,
                (double)cfg.rope_base, (double)cfg.norm_eps,
                cfg.tied_embeddings ? "tied" : "untied", (unsigned long)fti_model_n_params(&cfg));
        else
            printf("llama: not a valid fti llama model: %s\n", err.msg);
    }
    fti_gguf_close(g);
    return 0;
}

int main(int argc, char **argv) {
    int all = 0, i, n_files = 0, failed = 0, done = 0;
    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: fti-inspect MODEL.gguf [MODEL.gguf...] [--all]\n"
                   "Prints each GGUF file's keys (type and value) and tensor table (name, type,\n"
                   "dims innermost first, bytes, offset); --all prints arrays whole. Several\n"
                   "files: each after a line \"==> FILE <==\"; exit 1 if any is rejected.\n");
            return 0;
        } else if (!strcmp(argv[i], "--all")) {
            all = 1;
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "fti-inspect: unknown option %s\n", argv[i]);
            return 2;
        } else {
            n_files++;
        }
    }
    if (!n_files) {
        fprintf(stderr, "usage: fti-inspect MODEL.gguf [MODEL.gguf...] [--all]\n");
        return 2;
    }
    for (i = 1; i < argc; i++) {
        if (argv[i][0] == '-') continue;
        if (n_files > 1) printf("%s==> %s <==\n", done ? "\n" : "", argv[i]);
        failed += inspect(argv[i], all);
        done++;
    }
    return failed ? 1 : 0;
}
