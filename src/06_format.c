/* === format: GGUF implementation === */
#include "06_format.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- little helpers ------------------------------------------------------------------------ */

static uint16_t fti__gguf_le16(const unsigned char *p) {
    return (uint16_t)(p[0] | (p[1] << 8));
}
static uint32_t fti__gguf_le32(const unsigned char *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static uint64_t fti__gguf_le64(const unsigned char *p) {
    return (uint64_t)fti__gguf_le32(p) | ((uint64_t)fti__gguf_le32(p + 4) << 32);
}
static float fti__gguf_f32_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static double fti__gguf_f64_bits(uint64_t u) {
    double d;
    memcpy(&d, &u, 8);
    return d;
}

/* Size in bytes of a scalar GGUF value type; 0 for string/array/unknown. */
static size_t fti__gguf_scalar_size(uint32_t t) {
    switch (t) {
    case FTI_GGUF_UINT8: case FTI_GGUF_INT8: case FTI_GGUF_BOOL: return 1;
    case FTI_GGUF_UINT16: case FTI_GGUF_INT16: return 2;
    case FTI_GGUF_UINT32: case FTI_GGUF_INT32: case FTI_GGUF_FLOAT32: return 4;
    case FTI_GGUF_UINT64: case FTI_GGUF_INT64: case FTI_GGUF_FLOAT64: return 8;
    default: return 0;
    }
}

static int fti__gguf_is_int(uint32_t t) {
    return t == FTI_GGUF_UINT8 || t == FTI_GGUF_INT8 || t == FTI_GGUF_UINT16 ||
           t == FTI_GGUF_INT16 || t == FTI_GGUF_UINT32 || t == FTI_GGUF_INT32 ||
           t == FTI_GGUF_UINT64 || t == FTI_GGUF_INT64;
}

static int fti__gguf_is_signed(uint32_t t) {
    return t == FTI_GGUF_INT8 || t == FTI_GGUF_INT16 || t == FTI_GGUF_INT32 || t == FTI_GGUF_INT64;
}

/* Reads an integer-typed value at p: as uint64 bits with sign in *neg (two's complement value
 * sign-extended into *sv). */
static void fti__gguf_load_int(uint32_t t, const unsigned char *p, uint64_t *uv, int64_t *sv,
                               int *neg) {
    uint64_t u = 0;
    int64_t s = 0;
    switch (t) {
    case FTI_GGUF_UINT8: u = p[0]; s = (int64_t)u; break;
    case FTI_GGUF_INT8: s = (int8_t)p[0]; break;
    case FTI_GGUF_UINT16: u = fti__gguf_le16(p); s = (int64_t)u; break;
    case FTI_GGUF_INT16: s = (int16_t)fti__gguf_le16(p); break;
    case FTI_GGUF_UINT32: u = fti__gguf_le32(p); s = (int64_t)u; break;
    case FTI_GGUF_INT32: s = (int32_t)fti__gguf_le32(p); break;
    case FTI_GGUF_UINT64: u = fti__gguf_le64(p); s = (int64_t)(u & 0x7fffffffffffffffull); break;
    case FTI_GGUF_INT64: s = (int64_t)fti__gguf_le64(p); break;
    default: break;
    }
    if (fti__gguf_is_signed(t)) {
        *neg = s < 0;
        u = (uint64_t)s;
    } else {
        *neg = 0;
    }
    *uv = u;
    *sv = s;
}

FTIDEF const char *fti_gguf_type_name(uint32_t type) {
    static const char *const names[FTI_GGUF_TYPE_COUNT] = {
        "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64",
        "f64"};
    return type < FTI_GGUF_TYPE_COUNT ? names[type] : "?";
}

FTIDEF const char *fti_ggml_type_name(uint32_t ggml_type) {
    switch (ggml_type) {
    case FTI_GGML_F32: return "F32";
    case FTI_GGML_F16: return "F16";
    case FTI_GGML_Q4_0: return "Q4_0";
    case FTI_GGML_Q8_0: return "Q8_0";
    case FTI_GGML_BF16: return "BF16";
    default: return NULL;
    }
}

/* The name llama.cpp gives ggml type t (ids 0..39, gaps are removed types), for messages about
 * the types fti does not run: "Q6_K", else "type 99". */
FTIDEF const char *fti_ggml_type_any_name(uint32_t t, char out[16]) {
    static const char all[] = "F32 F16 Q4_0 Q4_1 ? ? Q5_0 Q5_1 Q8_0 Q8_1 Q2_K Q3_K Q4_K Q5_K Q6_K "
                              "Q8_K IQ2_XXS IQ2_XS IQ3_XXS IQ1_S IQ4_NL IQ3_S IQ2_S IQ4_XS I8 I16 "
                              "I32 I64 F64 IQ1_M BF16 ? ? ? TQ1_0 TQ2_0 ? ? ? MXFP4 ";
    const char *p = all;
    size_t n;
    uint32_t i;
    for (i = 0; i < t && *p; i++) p = strchr(p, ' ') + 1;
    n = *p ? (size_t)(strchr(p, ' ') - p) : 0;
    if (n == 0 || *p == '?') {
        snprintf(out, 16, "type %lu", (unsigned long)t);
        return out;
    }
    memcpy(out, p, n);
    out[n] = 0;
    return out;
}

FTIDEF int fti_ggml_type_block(uint32_t ggml_type, size_t *block_elems, size_t *block_bytes) {
    size_t e, b;
    switch (ggml_type) {
    case FTI_GGML_F32: e = 1; b = 4; break;
    case FTI_GGML_F16: e = 1; b = 2; break;
    case FTI_GGML_BF16: e = 1; b = 2; break;
    case FTI_GGML_Q8_0: e = 32; b = 34; break;
    case FTI_GGML_Q4_0: e = 32; b = 18; break;
    default: return 0;
    }
    if (block_elems) *block_elems = e;
    if (block_bytes) *block_bytes = b;
    return 1;
}

/* The block of the ggml types fti does not run (ggml's layouts: K-quants and most I-quants in
 * 256-element super-blocks), so fti_gguf_opts.any_type can size their tensors. */
static int fti__ggml_other_block(uint32_t t, size_t *block_elems, size_t *block_bytes) {
    /* ids 0..39: elements per block (0: not a type), bytes per block */
    static const unsigned short el[40] = {0,  0,  0,  32, 0,   0,   32,  32,  0,   32,
                                          256, 256, 256, 256, 256, 256, 256, 256, 256, 256,
                                          32,  256, 256, 256, 1,   1,   1,   1,   1,   256,
                                          0,   0,   0,   0,   256, 256, 0,   0,   0,   32};
    static const unsigned short by[40] = {0,  0,  0,  20, 0,   0,   22,  24,  0,   36,
                                          84, 110, 144, 176, 210, 292, 66,  74,  98,  50,
                                          18, 110, 82,  136, 1,   2,   4,   8,   8,   56,
                                          0,  0,   0,   0,   54,  66,  0,   0,   0,   17};
    if (t >= 40 || el[t] == 0) return 0;
    *block_elems = el[t];
    *block_bytes = by[t];
    return 1;
}

FTIDEF size_t fti_ggml_row_bytes(uint32_t ggml_type, size_t n) {
    size_t e, b, out;
    if (!fti_ggml_type_block(ggml_type, &e, &b) || n % e != 0) return 0;
    if (!fti_size_mul(n / e, b, &out)) return 0;
    return out;
}

/* Copies a name from the file into out (at most 60 bytes, non-printable bytes as '?') so error
 * messages never carry control characters from a hostile file. */
static const char *fti__gguf_safe(const char *s, size_t n, char out[72]) {
    size_t i, m = n < 60 ? n : 60;
    for (i = 0; i < m; i++) {
        unsigned char c = (unsigned char)s[i];
        out[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    if (m < n) {
        out[m++] = '.';
        out[m++] = '.';
        out[m++] = '.';
    }
    out[m] = 0;
    return out;
}

/* --- reader -------------------------------------------------------------------------------- */

typedef struct fti__gguf_name_ix {
    const char *name;
    size_t index;
} fti__gguf_name_ix;

typedef struct fti__gguf_off_ix {
    uint64_t offset;
    size_t index;
} fti__gguf_off_ix;

struct fti_gguf {
    fti_map map;
    int owns_map;
    const unsigned char *base;
    size_t len;
    char *path;
    uint32_t version;
    size_t alignment;
    size_t data_offset;
    size_t n_kv;
    fti_gguf_kv *kv;
    fti__gguf_name_ix *kv_sorted;
    size_t n_tensors;
    fti_gguf_tensor *tensors;
    fti__gguf_name_ix *t_sorted;
    size_t *str_index; /* file offsets of the u64 length prefix of each string-array entry */
    size_t n_str;
    size_t cap_str;
    char *names; /* every key and tensor name, NUL-terminated */
};

static int fti__gguf_cmp_name(const void *a, const void *b) {
    return strcmp(((const fti__gguf_name_ix *)a)->name, ((const fti__gguf_name_ix *)b)->name);
}

static int fti__gguf_cmp_off(const void *a, const void *b) {
    const fti__gguf_off_ix *x = (const fti__gguf_off_ix *)a, *y = (const fti__gguf_off_ix *)b;
    if (x->offset != y->offset) return x->offset < y->offset ? -1 : 1;
    return x->index < y->index ? -1 : (x->index > y->index ? 1 : 0);
}

/* Reads a GGUF string (u64 length + bytes) with length <= max_len. Returns its bytes or NULL
 * (with err set) when truncated or too long. */
static const char *fti__gguf_read_str(fti_gguf *g, fti_reader *r, size_t max_len, size_t *out_len,
                                      const char *what, fti_error *err) {
    size_t at = r->pos;
    uint64_t n = fti_read_u64(r);
    const void *p;
    if (r->err) {
        fti_error_set(err, FTI_ERR_FORMAT, "%s: %s: length truncated at offset %lu (file size %lu)",
                      g->path, what, (unsigned long)at, (unsigned long)g->len);
        return NULL;
    }
    if (n > (uint64_t)fti_reader_left(r)) {
        fti_error_set(err, FTI_ERR_FORMAT,
                      "%s: %s at offset %lu: string length %llu > %lu bytes left in file",
                      g->path, what, (unsigned long)at, (unsigned long long)n,
                      (unsigned long)fti_reader_left(r));
        return NULL;
    }
    if (max_len && n > (uint64_t)max_len) {
        fti_error_set(err, FTI_ERR_LIMIT, "%s: %s at offset %lu: length %llu > limit %lu", g->path,
                      what, (unsigned long)at, (unsigned long long)n, (unsigned long)max_len);
        return NULL;
    }
    p = fti_read_bytes(r, (size_t)n);
    *out_len = (size_t)n;
    return (const char *)p;
}

static fti_result fti__gguf_push_str(fti_gguf *g, size_t off) {
    if (g->n_str == g->cap_str) {
        size_t cap = g->cap_str ? g->cap_str * 2 : 1024, bytes;
        size_t *p;
        if (!fti_size_mul(cap, sizeof(size_t), &bytes)) return FTI_ERR_NOMEM;
        p = (size_t *)fti_realloc(g->str_index, bytes);
        if (!p) return FTI_ERR_NOMEM;
        g->str_index = p;
        g->cap_str = cap;
    }
    g->str_index[g->n_str++] = off;
    return FTI_OK;
}

/* Parses the value of kv (type already read) at r. */
static fti_result fti__gguf_parse_value(fti_gguf *g, fti_reader *r, fti_gguf_kv *kv,
                                        const char *key_safe, fti_error *err) {
    size_t sz;
    if (kv->type == FTI_GGUF_STRING) {
        size_t n = 0;
        char what[96];
        const char *s;
        snprintf(what, sizeof what, "key %s: value", key_safe);
        s = fti__gguf_read_str(g, r, 0, &n, what, err);
        if (!s) return err ? err->code : FTI_ERR_FORMAT;
        kv->data = s;
        kv->n_bytes = n;
        return FTI_OK;
    }
    if (kv->type == FTI_GGUF_ARRAY) {
        size_t at = r->pos, left, i, total;
        uint32_t et = fti_read_u32(r);
        uint64_t n = fti_read_u64(r);
        if (r->err)
            return fti_error_set(err, FTI_ERR_FORMAT, "%s: key %s: array header truncated at %lu",
                                 g->path, key_safe, (unsigned long)at);
        if (et >= FTI_GGUF_TYPE_COUNT)
            return fti_error_set(err, FTI_ERR_FORMAT,
                                 "%s: key %s: unknown array element type %lu", g->path, key_safe,
                                 (unsigned long)et);
        if (et == FTI_GGUF_ARRAY)
            return fti_error_set(err, FTI_ERR_UNSUPPORTED,
                                 "%s: key %s: nested arrays are not supported", g->path, key_safe);
        left = fti_reader_left(r);
        kv->arr_type = (fti_gguf_type)et;
        if (et == FTI_GGUF_STRING) {
            /* each entry needs at least its 8-byte length */
            if (n > (uint64_t)(left / 8))
                return fti_error_set(err, FTI_ERR_FORMAT,
                                     "%s: key %s: array of %llu strings needs at least %llu "
                                     "bytes, %lu left in file",
                                     g->path, key_safe, (unsigned long long)n,
                                     (unsigned long long)n * 8ull, (unsigned long)left);
            kv->arr_n = (size_t)n;
            kv->str_index = g->n_str;
            kv->data = r->p + r->pos;
            for (i = 0; i < kv->arr_n; i++) {
                size_t off = r->pos;
                uint64_t len = fti_read_u64(r);
                /* the message is built only on failure: vocabularies have 10^5 strings */
                if (r->err || len > (uint64_t)fti_reader_left(r))
                    return fti_error_set(err, FTI_ERR_FORMAT,
                                         "%s: key %s: string %lu at offset %lu: length %llu > "
                                         "%lu bytes left in file",
                                         g->path, key_safe, (unsigned long)i, (unsigned long)off,
                                         r->err ? 0ull : (unsigned long long)len,
                                         (unsigned long)fti_reader_left(r));
                fti_read_bytes(r, (size_t)len);
                if (fti__gguf_push_str(g, off) != FTI_OK)
                    return fti_error_set(err, FTI_ERR_NOMEM, "%s: out of memory", g->path);
            }
            kv->n_bytes = r->pos - (size_t)((const unsigned char *)kv->data - r->p);
            return FTI_OK;
        }
        sz = fti__gguf_scalar_size(et);
        if (n > (uint64_t)(left / sz))
            return fti_error_set(err, FTI_ERR_FORMAT,
                                 "%s: key %s: array of %llu %s needs %llu x %lu bytes, %lu left "
                                 "in file",
                                 g->path, key_safe, (unsigned long long)n, fti_gguf_type_name(et),
                                 (unsigned long long)n, (unsigned long)sz, (unsigned long)left);
        total = (size_t)n * sz; /* fits: n <= left / sz */
        kv->arr_n = (size_t)n;
        kv->data = fti_read_bytes(r, total);
        kv->n_bytes = total;
        return FTI_OK;
    }
    sz = fti__gguf_scalar_size(kv->type);
    if (sz == 0)
        return fti_error_set(err, FTI_ERR_FORMAT, "%s: key %s: unknown value type %lu", g->path,
                             key_safe, (unsigned long)kv->type);
    kv->data = fti_read_bytes(r, sz);
    kv->n_bytes = sz;
    if (r->err)
        return fti_error_set(err, FTI_ERR_FORMAT, "%s: key %s: %s value truncated at offset %lu",
                             g->path, key_safe, fti_gguf_type_name(kv->type),
                             (unsigned long)r->pos);
    return FTI_OK;
}

/* Appends name[0..n) + NUL to the names buffer; returns its offset via *off. */
static fti_result fti__gguf_name_add(fti_buf *names, const char *s, size_t n, size_t *off) {
    *off = names->len;
    fti_buf_append(names, s, n);
    fti_buf_putc(names, 0);
    return names->oom ? FTI_ERR_NOMEM : FTI_OK;
}

static fti_result fti__gguf_parse(fti_gguf *g, const fti_gguf_opts *opts, fti_error *err) {
    fti_reader r = fti_reader_make(g->base, g->len);
    const unsigned char *magic;
    uint64_t n_tensors, n_kv;
    size_t max_tensors = (opts && opts->max_tensors) ? opts->max_tensors : FTI_GGUF_MAX_TENSORS;
    size_t max_kv = (opts && opts->max_kv) ? opts->max_kv : FTI_GGUF_MAX_KV;
    int no_data = opts ? opts->no_tensor_data : 0;
    size_t i, left, data_len, *kv_name_off = NULL, *t_name_off = NULL;
    fti_buf names;
    fti__gguf_off_ix *by_off = NULL;
    fti_result rc = FTI_OK;
    char safe[72];

    memset(&names, 0, sizeof names);
    magic = (const unsigned char *)fti_read_bytes(&r, 4);
    if (!magic || memcmp(magic, "GGUF", 4) != 0)
        return fti_error_set(err, FTI_ERR_FORMAT, "%s: not a GGUF file (bad magic)", g->path);
    g->version = fti_read_u32(&r);
    if (r.err)
        return fti_error_set(err, FTI_ERR_FORMAT, "%s: truncated header (%lu bytes)", g->path,
                             (unsigned long)g->len);
    if (g->version != 2 && g->version != 3)
        return fti_error_set(err, FTI_ERR_UNSUPPORTED,
                             "%s: GGUF version %lu not supported (2 and 3 are%s)", g->path,
                             (unsigned long)g->version,
                             g->version > 0xffff ? "; big-endian file?" : "");
    n_tensors = fti_read_u64(&r);
    n_kv = fti_read_u64(&r);
    if (r.err)
        return fti_error_set(err, FTI_ERR_FORMAT, "%s: truncated header (%lu bytes)", g->path,
                             (unsigned long)g->len);
    if (n_tensors > (uint64_t)max_tensors)
        return fti_error_set(err, FTI_ERR_LIMIT, "%s: n_tensors %llu > limit %lu", g->path,
                             (unsigned long long)n_tensors, (unsigned long)max_tensors);
    if (n_kv > (uint64_t)max_kv)
        return fti_error_set(err, FTI_ERR_LIMIT, "%s: n_kv %llu > limit %lu", g->path,
                             (unsigned long long)n_kv, (unsigned long)max_kv);
    /* cheap plausibility before allocating: a kv takes >= 13 bytes, a tensor info >= 32 */
    left = fti_reader_left(&r);
    if (n_kv > (uint64_t)(left / 13) || n_tensors > (uint64_t)(left / 32) ||
        n_kv * 13u + n_tensors * 32u > (uint64_t)left)
        return fti_error_set(err, FTI_ERR_FORMAT,
                             "%s: %llu keys and %llu tensors cannot fit in the %lu bytes after "
                             "the header",
                             g->path, (unsigned long long)n_kv, (unsigned long long)n_tensors,
                             (unsigned long)left);
    g->n_kv = (size_t)n_kv;
    g->n_tensors = (size_t)n_tensors;
    g->kv = (fti_gguf_kv *)fti_calloc(g->n_kv ? g->n_kv : 1, sizeof(fti_gguf_kv));
    g->tensors = (fti_gguf_tensor *)fti_calloc(g->n_tensors ? g->n_tensors : 1,
                                               sizeof(fti_gguf_tensor));
    kv_name_off = (size_t *)fti_calloc(g->n_kv ? g->n_kv : 1, sizeof(size_t));
    t_name_off = (size_t *)fti_calloc(g->n_tensors ? g->n_tensors : 1, sizeof(size_t));
    g->kv_sorted = (fti__gguf_name_ix *)fti_calloc(g->n_kv ? g->n_kv : 1,
                                                   sizeof(fti__gguf_name_ix));
    g->t_sorted = (fti__gguf_name_ix *)fti_calloc(g->n_tensors ? g->n_tensors : 1,
                                                  sizeof(fti__gguf_name_ix));
    by_off = (fti__gguf_off_ix *)fti_calloc(g->n_tensors ? g->n_tensors : 1,
                                            sizeof(fti__gguf_off_ix));
    if (!g->kv || !g->tensors || !kv_name_off || !t_name_off || !g->kv_sorted || !g->t_sorted ||
        !by_off) {
        rc = fti_error_set(err, FTI_ERR_NOMEM, "%s: out of memory for %lu keys, %lu tensors",
                           g->path, (unsigned long)g->n_kv, (unsigned long)g->n_tensors);
        goto done;
    }

    /* key/values */
    g->alignment = FTI_GGUF_DEFAULT_ALIGNMENT;
    for (i = 0; i < g->n_kv; i++) {
        fti_gguf_kv *kv = &g->kv[i];
        size_t klen = 0;
        char what[48];
        const char *key;
        uint32_t type;
        snprintf(what, sizeof what, "key %lu", (unsigned long)i);
        key = fti__gguf_read_str(g, &r, FTI_GGUF_MAX_NAME, &klen, what, err);
        if (!key) {
            rc = err ? err->code : FTI_ERR_FORMAT;
            goto done;
        }
        if (klen == 0 || memchr(key, 0, klen)) {
            rc = fti_error_set(err, FTI_ERR_FORMAT, "%s: key %lu is empty or contains a NUL byte",
                               g->path, (unsigned long)i);
            goto done;
        }
        fti__gguf_safe(key, klen, safe);
        type = fti_read_u32(&r);
        if (r.err) {
            rc = fti_error_set(err, FTI_ERR_FORMAT, "%s: key %s: type truncated", g->path, safe);
            goto done;
        }
        if (type >= FTI_GGUF_TYPE_COUNT) {
            rc = fti_error_set(err, FTI_ERR_FORMAT, "%s: key %s: unknown value type %lu", g->path,
                               safe, (unsigned long)type);
            goto done;
        }
        kv->type = (fti_gguf_type)type;
        kv->key_len = klen;
        rc = fti__gguf_parse_value(g, &r, kv, safe, err);
        if (rc != FTI_OK) goto done;
        rc = fti__gguf_name_add(&names, key, klen, &kv_name_off[i]);
        if (rc != FTI_OK) {
            fti_error_set(err, rc, "%s: out of memory", g->path);
            goto done;
        }
        if (klen == 17 && memcmp(key, "general.alignment", 17) == 0) {
            uint32_t a;
            if (kv->type != FTI_GGUF_UINT32) {
                rc = fti_error_set(err, FTI_ERR_FORMAT,
                                   "%s: key general.alignment has type %s, expected u32", g->path,
                                   fti_gguf_type_name(kv->type));
                goto done;
            }
            a = fti__gguf_le32((const unsigned char *)kv->data);
            if (a == 0 || (a & (a - 1)) != 0) {
                rc = fti_error_set(err, FTI_ERR_FORMAT,
                                   "%s: general.alignment %lu is not a power of two", g->path,
                                   (unsigned long)a);
                goto done;
            }
            g->alignment = a;
        }
    }

    /* tensor infos */
    for (i = 0; i < g->n_tensors; i++) {
        fti_gguf_tensor *t = &g->tensors[i];
        size_t nlen = 0, ne_total = 1, be = 1, bb = 1, rows = 1, row_bytes;
        char what[48];
        const char *name;
        uint32_t d;
        snprintf(what, sizeof what, "tensor %lu name", (unsigned long)i);
        name = fti__gguf_read_str(g, &r, FTI_GGUF_MAX_NAME, &nlen, what, err);
        if (!name) {
            rc = err ? err->code : FTI_ERR_FORMAT;
            goto done;
        }
        if (nlen == 0 || memchr(name, 0, nlen)) {
            rc = fti_error_set(err, FTI_ERR_FORMAT,
                               "%s: tensor %lu: name is empty or contains a NUL byte", g->path,
                               (unsigned long)i);
            goto done;
        }
        fti__gguf_safe(name, nlen, safe);
        t->n_dims = fti_read_u32(&r);
        if (r.err) {
            rc = fti_error_set(err, FTI_ERR_FORMAT, "%s: tensor %s: info truncated", g->path, safe);
            goto done;
        }
        if (t->n_dims == 0 || t->n_dims > FTI_GGUF_MAX_DIMS) {
            rc = fti_error_set(err, FTI_ERR_FORMAT, "%s: tensor %s: n_dims %lu not in 1..%d",
                               g->path, safe, (unsigned long)t->n_dims, FTI_GGUF_MAX_DIMS);
            goto done;
        }
        for (d = 0; d < FTI_GGUF_MAX_DIMS; d++) t->ne[d] = 1;
        for (d = 0; d < t->n_dims; d++) {
            uint64_t ne = fti_read_u64(&r);
            if (r.err) break;
            if (ne == 0 || ne > (uint64_t)INT64_MAX || ne > (uint64_t)(size_t)-1) {
                rc = fti_error_set(err, FTI_ERR_FORMAT, "%s: tensor %s: dim %lu = %llu invalid",
                                   g->path, safe, (unsigned long)d, (unsigned long long)ne);
                goto done;
            }
            t->ne[d] = ne;
            if (!fti_size_mul(ne_total, (size_t)ne, &ne_total) ||
                (uint64_t)ne_total > (uint64_t)INT64_MAX) {
                rc = fti_error_set(err, FTI_ERR_FORMAT,
                                   "%s: tensor %s: element count overflows at dim %lu (%llu)",
                                   g->path, safe, (unsigned long)d, (unsigned long long)ne);
                goto done;
            }
            if (d > 0) rows *= (size_t)ne; /* <= ne_total, no overflow */
        }
        t->type = fti_read_u32(&r);
        t->offset = fti_read_u64(&r);
        if (r.err) {
            rc = fti_error_set(err, FTI_ERR_FORMAT, "%s: tensor %s: info truncated", g->path, safe);
            goto done;
        }
        if (!fti_ggml_type_block(t->type, &be, &bb) &&
            !(opts && opts->any_type && fti__ggml_other_block(t->type, &be, &bb))) {
            char tn[16];
            rc = fti_error_set(err, FTI_ERR_UNSUPPORTED,
                               "%s: tensor %s has type %s, which fti does not support (F32, F16, "
                               "BF16, Q8_0, Q4_0); convert the F16/F32 model to Q8_0 or Q4_0 "
                               "(fti-quantize or llama-quantize)",
                               g->path, safe, fti_ggml_type_any_name(t->type, tn));
            goto done;
        }
        if (t->ne[0] % be != 0) {
            char tn[16];
            rc = fti_error_set(err, FTI_ERR_FORMAT,
                               "%s: tensor %s: row of %llu elements is not a multiple of the %s "
                               "block size %lu",
                               g->path, safe, (unsigned long long)t->ne[0],
                               fti_ggml_type_any_name(t->type, tn), (unsigned long)be);
            goto done;
        }
        /* row_bytes <= ne0 * 4.25 bytes: computed only once it cannot wrap */
        row_bytes = (size_t)(t->ne[0] / be) > ((size_t)-1) / bb ? 0 : (size_t)(t->ne[0] / be) * bb;
        if ((size_t)(t->ne[0] / be) > ((size_t)-1) / bb || !fti_size_mul(row_bytes, rows,
                                                                         &t->n_bytes)) {
            rc = fti_error_set(err, FTI_ERR_FORMAT, "%s: tensor %s: byte size overflows", g->path,
                               safe);
            goto done;
        }
        t->n_elements = ne_total;
        rc = fti__gguf_name_add(&names, name, nlen, &t_name_off[i]);
        if (rc != FTI_OK) {
            fti_error_set(err, rc, "%s: out of memory", g->path);
            goto done;
        }
    }

    /* data section */
    {
        size_t pos = r.pos, pad = (g->alignment - pos % g->alignment) % g->alignment;
        if (!fti_size_add(pos, pad, &g->data_offset)) {
            rc = fti_error_set(err, FTI_ERR_FORMAT, "%s: data offset overflows", g->path);
            goto done;
        }
        if (g->data_offset > g->len) {
            if (g->n_tensors > 0 && !no_data) {
                rc = fti_error_set(err, FTI_ERR_FORMAT,
                                   "%s: tensor data would start at %lu > file size %lu", g->path,
                                   (unsigned long)g->data_offset, (unsigned long)g->len);
                goto done;
            }
            g->data_offset = g->len;
        }
        data_len = g->len - g->data_offset;
    }
    for (i = 0; i < g->n_tensors; i++) {
        fti_gguf_tensor *t = &g->tensors[i];
        fti__gguf_safe(names.data + t_name_off[i], strlen(names.data + t_name_off[i]), safe);
        if (t->offset % g->alignment != 0) {
            rc = fti_error_set(err, FTI_ERR_FORMAT,
                               "%s: tensor %s: offset %llu is not a multiple of the alignment %lu",
                               g->path, safe, (unsigned long long)t->offset,
                               (unsigned long)g->alignment);
            goto done;
        }
        if (t->offset > (uint64_t)data_len || t->n_bytes > data_len - (size_t)t->offset) {
            if (!no_data) {
                rc = fti_error_set(err, FTI_ERR_FORMAT,
                                   "%s: tensor %s: data [%llu, +%lu) ends past the end of the file "
                                   "(data section %lu bytes at offset %lu)",
                                   g->path, safe, (unsigned long long)t->offset,
                                   (unsigned long)t->n_bytes, (unsigned long)data_len,
                                   (unsigned long)g->data_offset);
                goto done;
            }
            t->data = NULL;
        } else {
            t->data = g->base + g->data_offset + (size_t)t->offset;
        }
        by_off[i].offset = t->offset;
        by_off[i].index = i;
    }
    if (g->n_tensors > 1) {
        qsort(by_off, g->n_tensors, sizeof *by_off, fti__gguf_cmp_off);
        for (i = 0; i + 1 < g->n_tensors; i++) {
            const fti_gguf_tensor *a = &g->tensors[by_off[i].index];
            const fti_gguf_tensor *b = &g->tensors[by_off[i + 1].index];
            /* a->offset + n_bytes cannot overflow: both were checked against the file (or, with
             * no_tensor_data, are each < 2^63) */
            if ((uint64_t)a->n_bytes > b->offset - a->offset) {
                char safe2[72];
                fti__gguf_safe(names.data + t_name_off[by_off[i].index],
                               strlen(names.data + t_name_off[by_off[i].index]), safe);
                fti__gguf_safe(names.data + t_name_off[by_off[i + 1].index],
                               strlen(names.data + t_name_off[by_off[i + 1].index]), safe2);
                rc = fti_error_set(err, FTI_ERR_FORMAT,
                                   "%s: tensors %s [%llu, +%lu) and %s [%llu, +%lu) overlap",
                                   g->path, safe, (unsigned long long)a->offset,
                                   (unsigned long)a->n_bytes, safe2,
                                   (unsigned long long)b->offset, (unsigned long)b->n_bytes);
                goto done;
            }
        }
    }

    /* names: fix pointers, check uniqueness, keep sorted indexes for lookups */
    g->names = names.data;
    names.data = NULL;
    for (i = 0; i < g->n_kv; i++) {
        g->kv[i].key = g->names + kv_name_off[i];
        g->kv_sorted[i].name = g->kv[i].key;
        g->kv_sorted[i].index = i;
    }
    for (i = 0; i < g->n_tensors; i++) {
        g->tensors[i].name = g->names + t_name_off[i];
        g->t_sorted[i].name = g->tensors[i].name;
        g->t_sorted[i].index = i;
    }
    qsort(g->kv_sorted, g->n_kv, sizeof *g->kv_sorted, fti__gguf_cmp_name);
    qsort(g->t_sorted, g->n_tensors, sizeof *g->t_sorted, fti__gguf_cmp_name);
    for (i = 0; i + 1 < g->n_kv; i++)
        if (strcmp(g->kv_sorted[i].name, g->kv_sorted[i + 1].name) == 0) {
            rc = fti_error_set(err, FTI_ERR_FORMAT, "%s: duplicate key %s", g->path,
                               fti__gguf_safe(g->kv_sorted[i].name,
                                              strlen(g->kv_sorted[i].name), safe));
            goto done;
        }
    for (i = 0; i + 1 < g->n_tensors; i++)
        if (strcmp(g->t_sorted[i].name, g->t_sorted[i + 1].name) == 0) {
            rc = fti_error_set(err, FTI_ERR_FORMAT, "%s: duplicate tensor name %s", g->path,
                               fti__gguf_safe(g->t_sorted[i].name, strlen(g->t_sorted[i].name),
                                              safe));
            goto done;
        }
done:
    fti_free(kv_name_off);
    fti_free(t_name_off);
    fti_free(by_off);
    fti_buf_free(&names);
    return rc;
}

static fti_result fti__gguf_open_common(fti_gguf **out, fti_gguf *g, const char *name,
                                        const fti_gguf_opts *opts, fti_error *err) {
    fti_result rc;
    g->path = fti_strdup(name ? name : "<memory>");
    if (!g->path) {
        fti_gguf_close(g);
        return fti_error_set(err, FTI_ERR_NOMEM, "out of memory");
    }
    rc = fti__gguf_parse(g, opts, err);
    if (rc != FTI_OK) {
        fti_gguf_close(g);
        return rc;
    }
    *out = g;
    return FTI_OK;
}

FTIDEF fti_result fti_gguf_open(fti_gguf **out, const char *path, const fti_gguf_opts *opts,
                                fti_error *err) {
    fti_gguf *g;
    fti_result rc;
    if (!out || !path) return fti_error_set(err, FTI_ERR_INVALID, "fti_gguf_open: NULL argument");
    *out = NULL;
    g = (fti_gguf *)fti_calloc(1, sizeof *g);
    if (!g) return fti_error_set(err, FTI_ERR_NOMEM, "%s: out of memory", path);
    rc = fti_map_open(&g->map, path, err);
    if (rc != FTI_OK) {
        fti_free(g);
        return rc;
    }
    g->owns_map = 1;
    g->base = (const unsigned char *)g->map.data;
    g->len = g->map.len;
    return fti__gguf_open_common(out, g, path, opts, err);
}

FTIDEF fti_result fti_gguf_open_memory(fti_gguf **out, const void *data, size_t len,
                                       const char *name, const fti_gguf_opts *opts,
                                       fti_error *err) {
    fti_gguf *g;
    if (!out || (!data && len)) {
        return fti_error_set(err, FTI_ERR_INVALID, "fti_gguf_open_memory: NULL argument");
    }
    *out = NULL;
    g = (fti_gguf *)fti_calloc(1, sizeof *g);
    if (!g) return fti_error_set(err, FTI_ERR_NOMEM, "out of memory");
    g->base = (const unsigned char *)(data ? data : "");
    g->len = len;
    return fti__gguf_open_common(out, g, name, opts, err);
}

FTIDEF void fti_gguf_close(fti_gguf *g) {
    if (!g) return;
    if (g->owns_map) fti_map_close(&g->map);
    fti_free(g->path);
    fti_free(g->kv);
    fti_free(g->kv_sorted);
    fti_free(g->tensors);
    fti_free(g->t_sorted);
    fti_free(g->str_index);
    fti_free(g->names);
    fti_free(g);
}

FTIDEF uint32_t fti_gguf_version(const fti_gguf *g) { return g ? g->version : 0; }
FTIDEF size_t fti_gguf_alignment(const fti_gguf *g) { return g ? g->alignment : 0; }
FTIDEF size_t fti_gguf_data_offset(const fti_gguf *g) { return g ? g->data_offset : 0; }
FTIDEF size_t fti_gguf_file_size(const fti_gguf *g) { return g ? g->len : 0; }
FTIDEF const void *fti_gguf_file_data(const fti_gguf *g) { return g ? g->base : NULL; }
FTIDEF const char *fti_gguf_path(const fti_gguf *g) { return g ? g->path : NULL; }
FTIDEF int fti_gguf_drop(const fti_gguf *g, const void *p, size_t len) {
    uintptr_t b = (uintptr_t)p, base = g ? (uintptr_t)g->base : 0;
    if (!g || !g->owns_map || !p || b < base || b - base > g->len) return 0;
    return fti_map_drop(&g->map, (size_t)(b - base), len); /* (which stops at the file's end) */
}
FTIDEF size_t fti_gguf_n_kv(const fti_gguf *g) { return g ? g->n_kv : 0; }
FTIDEF size_t fti_gguf_n_tensors(const fti_gguf *g) { return g ? g->n_tensors : 0; }

FTIDEF const fti_gguf_kv *fti_gguf_kv_at(const fti_gguf *g, size_t i) {
    return (g && i < g->n_kv) ? &g->kv[i] : NULL;
}

FTIDEF const fti_gguf_tensor *fti_gguf_tensor_at(const fti_gguf *g, size_t i) {
    return (g && i < g->n_tensors) ? &g->tensors[i] : NULL;
}

static const fti__gguf_name_ix *fti__gguf_bsearch(const fti__gguf_name_ix *a, size_t n,
                                                  const char *name) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(a[mid].name, name);
        if (c == 0) return &a[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

FTIDEF const fti_gguf_kv *fti_gguf_find(const fti_gguf *g, const char *key) {
    const fti__gguf_name_ix *e;
    if (!g || !key) return NULL;
    e = fti__gguf_bsearch(g->kv_sorted, g->n_kv, key);
    return e ? &g->kv[e->index] : NULL;
}

FTIDEF const fti_gguf_tensor *fti_gguf_find_tensor(const fti_gguf *g, const char *name) {
    const fti__gguf_name_ix *e;
    if (!g || !name) return NULL;
    e = fti__gguf_bsearch(g->t_sorted, g->n_tensors, name);
    return e ? &g->tensors[e->index] : NULL;
}

static fti_result fti__gguf_get(const fti_gguf *g, const char *key, const fti_gguf_kv **kv,
                                fti_error *err) {
    if (!g || !key) return fti_error_set(err, FTI_ERR_INVALID, "gguf: NULL argument");
    *kv = fti_gguf_find(g, key);
    if (!*kv) return fti_error_set(err, FTI_ERR_NOT_FOUND, "%s: key %s missing", g->path, key);
    return FTI_OK;
}

static fti_result fti__gguf_wrong_type(const fti_gguf *g, const fti_gguf_kv *kv,
                                       const char *want, fti_error *err) {
    return fti_error_set(err, FTI_ERR_FORMAT, "%s: key %s has type %s, expected %s", g->path,
                         kv->key, fti_gguf_type_name(kv->type), want);
}

FTIDEF fti_result fti_gguf_get_i64(const fti_gguf *g, const char *key, int64_t *out,
                                   fti_error *err) {
    const fti_gguf_kv *kv;
    uint64_t u;
    int64_t s;
    int neg;
    fti_result rc = fti__gguf_get(g, key, &kv, err);
    if (rc != FTI_OK) return rc;
    if (!fti__gguf_is_int(kv->type)) return fti__gguf_wrong_type(g, kv, "an integer", err);
    fti__gguf_load_int(kv->type, (const unsigned char *)kv->data, &u, &s, &neg);
    if (kv->type == FTI_GGUF_UINT64 && u > (uint64_t)INT64_MAX)
        return fti_error_set(err, FTI_ERR_FORMAT, "%s: key %s = %llu does not fit int64", g->path,
                             key, (unsigned long long)u);
    *out = kv->type == FTI_GGUF_UINT64 ? (int64_t)u : s;
    return FTI_OK;
}

FTIDEF fti_result fti_gguf_get_u64(const fti_gguf *g, const char *key, uint64_t *out,
                                   fti_error *err) {
    const fti_gguf_kv *kv;
    uint64_t u;
    int64_t s;
    int neg;
    fti_result rc = fti__gguf_get(g, key, &kv, err);
    if (rc != FTI_OK) return rc;
    if (!fti__gguf_is_int(kv->type)) return fti__gguf_wrong_type(g, kv, "an integer", err);
    fti__gguf_load_int(kv->type, (const unsigned char *)kv->data, &u, &s, &neg);
    if (neg)
        return fti_error_set(err, FTI_ERR_FORMAT, "%s: key %s = %lld is negative", g->path, key,
                             (long long)s);
    *out = u;
    return FTI_OK;
}

FTIDEF fti_result fti_gguf_get_u32(const fti_gguf *g, const char *key, uint32_t *out,
                                   fti_error *err) {
    uint64_t v = 0;
    fti_result rc = fti_gguf_get_u64(g, key, &v, err);
    if (rc != FTI_OK) return rc;
    if (v > 0xffffffffull)
        return fti_error_set(err, FTI_ERR_FORMAT, "%s: key %s = %llu does not fit u32", g->path,
                             key, (unsigned long long)v);
    *out = (uint32_t)v;
    return FTI_OK;
}

FTIDEF fti_result fti_gguf_get_f32(const fti_gguf *g, const char *key, float *out,
                                   fti_error *err) {
    const fti_gguf_kv *kv;
    fti_result rc = fti__gguf_get(g, key, &kv, err);
    if (rc != FTI_OK) return rc;
    if (kv->type == FTI_GGUF_FLOAT32)
        *out = fti__gguf_f32_bits(fti__gguf_le32((const unsigned char *)kv->data));
    else if (kv->type == FTI_GGUF_FLOAT64)
        *out = (float)fti__gguf_f64_bits(fti__gguf_le64((const unsigned char *)kv->data));
    else
        return fti__gguf_wrong_type(g, kv, "f32", err);
    return FTI_OK;
}

FTIDEF fti_result fti_gguf_get_bool(const fti_gguf *g, const char *key, int *out,
                                    fti_error *err) {
    const fti_gguf_kv *kv;
    fti_result rc = fti__gguf_get(g, key, &kv, err);
    if (rc != FTI_OK) return rc;
    if (kv->type != FTI_GGUF_BOOL) return fti__gguf_wrong_type(g, kv, "bool", err);
    *out = ((const unsigned char *)kv->data)[0] != 0;
    return FTI_OK;
}

FTIDEF fti_result fti_gguf_get_str(const fti_gguf *g, const char *key, const char **out,
                                   size_t *out_len, fti_error *err) {
    const fti_gguf_kv *kv;
    fti_result rc = fti__gguf_get(g, key, &kv, err);
    if (rc != FTI_OK) return rc;
    if (kv->type != FTI_GGUF_STRING) return fti__gguf_wrong_type(g, kv, "string", err);
    *out = (const char *)kv->data;
    if (out_len) *out_len = kv->n_bytes;
    return FTI_OK;
}

FTIDEF fti_result fti_gguf_get_arr(const fti_gguf *g, const char *key, fti_gguf_type elem_type,
                                   const fti_gguf_kv **out, fti_error *err) {
    const fti_gguf_kv *kv;
    fti_result rc = fti__gguf_get(g, key, &kv, err);
    if (rc != FTI_OK) return rc;
    if (kv->type != FTI_GGUF_ARRAY) return fti__gguf_wrong_type(g, kv, "array", err);
    if (elem_type != FTI_GGUF_TYPE_COUNT && kv->arr_type != elem_type)
        return fti_error_set(err, FTI_ERR_FORMAT, "%s: key %s is an array of %s, expected %s",
                             g->path, key, fti_gguf_type_name(kv->arr_type),
                             fti_gguf_type_name(elem_type));
    *out = kv;
    return FTI_OK;
}

FTIDEF int64_t fti_gguf_arr_int(const fti_gguf_kv *kv, size_t i) {
    size_t sz;
    uint64_t u;
    int64_t s;
    int neg;
    if (!kv || kv->type != FTI_GGUF_ARRAY || i >= kv->arr_n || !fti__gguf_is_int(kv->arr_type))
        return 0;
    sz = fti__gguf_scalar_size(kv->arr_type);
    fti__gguf_load_int(kv->arr_type, (const unsigned char *)kv->data + i * sz, &u, &s, &neg);
    return kv->arr_type == FTI_GGUF_UINT64 ? (int64_t)u : s;
}

static double fti__gguf_num_at(uint32_t t, const unsigned char *p) {
    uint64_t u;
    int64_t s;
    int neg;
    if (t == FTI_GGUF_FLOAT32) return fti__gguf_f32_bits(fti__gguf_le32(p));
    if (t == FTI_GGUF_FLOAT64) return fti__gguf_f64_bits(fti__gguf_le64(p));
    if (t == FTI_GGUF_BOOL) return p[0] != 0;
    if (!fti__gguf_is_int(t)) return 0;
    fti__gguf_load_int(t, p, &u, &s, &neg);
    return t == FTI_GGUF_UINT64 ? (double)u : (double)s;
}

FTIDEF double fti_gguf_arr_num(const fti_gguf_kv *kv, size_t i) {
    size_t sz;
    if (!kv || kv->type != FTI_GGUF_ARRAY || i >= kv->arr_n) return 0;
    sz = fti__gguf_scalar_size(kv->arr_type);
    if (!sz) return 0;
    return fti__gguf_num_at(kv->arr_type, (const unsigned char *)kv->data + i * sz);
}

FTIDEF const char *fti_gguf_arr_str(const fti_gguf *g, const fti_gguf_kv *kv, size_t i,
                                    size_t *out_len) {
    size_t off;
    if (!g || !kv || kv->type != FTI_GGUF_ARRAY || kv->arr_type != FTI_GGUF_STRING ||
        i >= kv->arr_n || kv->str_index + i >= g->n_str)
        return NULL;
    off = g->str_index[kv->str_index + i];
    if (out_len) *out_len = (size_t)fti__gguf_le64(g->base + off);
    return (const char *)g->base + off + 8;
}

FTIDEF double fti_gguf_kv_num(const fti_gguf_kv *kv) {
    if (!kv || kv->type == FTI_GGUF_STRING || kv->type == FTI_GGUF_ARRAY) return 0;
    return fti__gguf_num_at(kv->type, (const unsigned char *)kv->data);
}

FTIDEF int64_t fti_gguf_kv_int(const fti_gguf_kv *kv) {
    uint64_t u;
    int64_t s;
    int neg;
    if (!kv) return 0;
    if (kv->type == FTI_GGUF_BOOL) return ((const unsigned char *)kv->data)[0] != 0;
    if (!fti__gguf_is_int(kv->type)) return (int64_t)fti_gguf_kv_num(kv);
    fti__gguf_load_int(kv->type, (const unsigned char *)kv->data, &u, &s, &neg);
    return kv->type == FTI_GGUF_UINT64 ? (int64_t)u : s;
}

/* --- writer -------------------------------------------------------------------------------- */

typedef struct fti__gguf_wkv {
    char *key;
    uint32_t type;
    fti_buf val; /* the serialized value (after the type field) */
} fti__gguf_wkv;

typedef struct fti__gguf_wtensor {
    char *name;
    uint32_t n_dims;
    uint64_t ne[FTI_GGUF_MAX_DIMS];
    uint32_t type;
    const void *data;
    void *owned;
    size_t n_bytes;
} fti__gguf_wtensor;

struct fti_gguf_writer {
    size_t alignment;
    fti__gguf_wkv *kv;
    size_t n_kv, cap_kv;
    fti__gguf_wtensor *t;
    size_t n_t, cap_t;
};

FTIDEF fti_result fti_gguf_writer_create(fti_gguf_writer **out, size_t alignment) {
    fti_gguf_writer *w;
    if (!out) return FTI_ERR_INVALID;
    *out = NULL;
    if (alignment == 0) alignment = FTI_GGUF_DEFAULT_ALIGNMENT;
    if ((alignment & (alignment - 1)) != 0 || alignment > 0xffffffffu) return FTI_ERR_INVALID;
    w = (fti_gguf_writer *)fti_calloc(1, sizeof *w);
    if (!w) return FTI_ERR_NOMEM;
    w->alignment = alignment;
    if (alignment != FTI_GGUF_DEFAULT_ALIGNMENT &&
        fti_gguf_set_u32(w, "general.alignment", (uint32_t)alignment) != FTI_OK) {
        fti_gguf_writer_free(w);
        return FTI_ERR_NOMEM;
    }
    *out = w;
    return FTI_OK;
}

FTIDEF void fti_gguf_writer_free(fti_gguf_writer *w) {
    size_t i;
    if (!w) return;
    for (i = 0; i < w->n_kv; i++) {
        fti_free(w->kv[i].key);
        fti_buf_free(&w->kv[i].val);
    }
    for (i = 0; i < w->n_t; i++) {
        fti_free(w->t[i].name);
        fti_free(w->t[i].owned);
    }
    fti_free(w->kv);
    fti_free(w->t);
    fti_free(w);
}

FTIDEF size_t fti_gguf_writer_n_tensors(const fti_gguf_writer *w) { return w ? w->n_t : 0; }

/* Finds or appends the slot for key and empties its value. NULL on bad key or no memory. */
static fti__gguf_wkv *fti__gguf_slot(fti_gguf_writer *w, const char *key, uint32_t type) {
    size_t i, klen;
    fti__gguf_wkv *e;
    if (!w || !key) return NULL;
    klen = strlen(key);
    if (klen == 0 || klen > FTI_GGUF_MAX_NAME) return NULL;
    for (i = 0; i < w->n_kv; i++)
        if (strcmp(w->kv[i].key, key) == 0) {
            e = &w->kv[i];
            e->val.len = 0;
            e->val.oom = 0;
            e->type = type;
            return e;
        }
    if (w->n_kv == w->cap_kv) {
        size_t cap = w->cap_kv ? w->cap_kv * 2 : 32, bytes;
        fti__gguf_wkv *p;
        if (!fti_size_mul(cap, sizeof *p, &bytes)) return NULL;
        p = (fti__gguf_wkv *)fti_realloc(w->kv, bytes);
        if (!p) return NULL;
        w->kv = p;
        w->cap_kv = cap;
    }
    e = &w->kv[w->n_kv];
    memset(e, 0, sizeof *e);
    e->key = fti_strdup(key);
    if (!e->key) return NULL;
    e->type = type;
    w->n_kv++;
    return e;
}

static void fti__gguf_put_u32(fti_buf *b, uint32_t v) {
    unsigned char x[4];
    fti_store_u32(x, v);
    fti_buf_append(b, x, 4);
}
static void fti__gguf_put_u64(fti_buf *b, uint64_t v) {
    unsigned char x[8];
    fti_store_u64(x, v);
    fti_buf_append(b, x, 8);
}
static void fti__gguf_put_str(fti_buf *b, const char *s, size_t n) {
    fti__gguf_put_u64(b, (uint64_t)n);
    fti_buf_append(b, s, n);
}

/* Serializes one host value of scalar type t into b. */
static void fti__gguf_put_scalar(fti_buf *b, uint32_t t, const void *v) {
    unsigned char x[8];
    switch (t) {
    case FTI_GGUF_UINT8: case FTI_GGUF_INT8: x[0] = *(const uint8_t *)v; fti_buf_append(b, x, 1);
        break;
    case FTI_GGUF_BOOL: x[0] = *(const uint8_t *)v ? 1 : 0; fti_buf_append(b, x, 1); break;
    case FTI_GGUF_UINT16: case FTI_GGUF_INT16:
        fti_store_u16(x, *(const uint16_t *)v);
        fti_buf_append(b, x, 2);
        break;
    case FTI_GGUF_UINT32: case FTI_GGUF_INT32:
        fti__gguf_put_u32(b, *(const uint32_t *)v);
        break;
    case FTI_GGUF_FLOAT32: {
        uint32_t u;
        memcpy(&u, v, 4);
        fti__gguf_put_u32(b, u);
        break;
    }
    case FTI_GGUF_UINT64: case FTI_GGUF_INT64:
        fti__gguf_put_u64(b, *(const uint64_t *)v);
        break;
    case FTI_GGUF_FLOAT64: {
        uint64_t u;
        memcpy(&u, v, 8);
        fti__gguf_put_u64(b, u);
        break;
    }
    default: break;
    }
}

static fti_result fti__gguf_set_scalar(fti_gguf_writer *w, const char *key, uint32_t t,
                                       const void *v) {
    fti__gguf_wkv *e = fti__gguf_slot(w, key, t);
    if (!e) return (w && key && *key && strlen(key) <= FTI_GGUF_MAX_NAME) ? FTI_ERR_NOMEM
                                                                           : FTI_ERR_INVALID;
    fti__gguf_put_scalar(&e->val, t, v);
    return e->val.oom ? FTI_ERR_NOMEM : FTI_OK;
}

FTIDEF fti_result fti_gguf_set_u8(fti_gguf_writer *w, const char *key, uint8_t v) {
    return fti__gguf_set_scalar(w, key, FTI_GGUF_UINT8, &v);
}
FTIDEF fti_result fti_gguf_set_i8(fti_gguf_writer *w, const char *key, int8_t v) {
    return fti__gguf_set_scalar(w, key, FTI_GGUF_INT8, &v);
}
FTIDEF fti_result fti_gguf_set_u16(fti_gguf_writer *w, const char *key, uint16_t v) {
    return fti__gguf_set_scalar(w, key, FTI_GGUF_UINT16, &v);
}
FTIDEF fti_result fti_gguf_set_i16(fti_gguf_writer *w, const char *key, int16_t v) {
    return fti__gguf_set_scalar(w, key, FTI_GGUF_INT16, &v);
}
FTIDEF fti_result fti_gguf_set_u32(fti_gguf_writer *w, const char *key, uint32_t v) {
    return fti__gguf_set_scalar(w, key, FTI_GGUF_UINT32, &v);
}
FTIDEF fti_result fti_gguf_set_i32(fti_gguf_writer *w, const char *key, int32_t v) {
    return fti__gguf_set_scalar(w, key, FTI_GGUF_INT32, &v);
}
FTIDEF fti_result fti_gguf_set_u64(fti_gguf_writer *w, const char *key, uint64_t v) {
    return fti__gguf_set_scalar(w, key, FTI_GGUF_UINT64, &v);
}
FTIDEF fti_result fti_gguf_set_i64(fti_gguf_writer *w, const char *key, int64_t v) {
    return fti__gguf_set_scalar(w, key, FTI_GGUF_INT64, &v);
}
FTIDEF fti_result fti_gguf_set_f32(fti_gguf_writer *w, const char *key, float v) {
    return fti__gguf_set_scalar(w, key, FTI_GGUF_FLOAT32, &v);
}
FTIDEF fti_result fti_gguf_set_f64(fti_gguf_writer *w, const char *key, double v) {
    return fti__gguf_set_scalar(w, key, FTI_GGUF_FLOAT64, &v);
}
FTIDEF fti_result fti_gguf_set_bool(fti_gguf_writer *w, const char *key, int v) {
    uint8_t b = v ? 1 : 0;
    return fti__gguf_set_scalar(w, key, FTI_GGUF_BOOL, &b);
}

FTIDEF fti_result fti_gguf_set_strn(fti_gguf_writer *w, const char *key, const char *s,
                                    size_t len) {
    fti__gguf_wkv *e;
    if (!s && len) return FTI_ERR_INVALID;
    e = fti__gguf_slot(w, key, FTI_GGUF_STRING);
    if (!e) return (w && key && *key && strlen(key) <= FTI_GGUF_MAX_NAME) ? FTI_ERR_NOMEM
                                                                           : FTI_ERR_INVALID;
    fti__gguf_put_str(&e->val, s ? s : "", len);
    return e->val.oom ? FTI_ERR_NOMEM : FTI_OK;
}

FTIDEF fti_result fti_gguf_set_str(fti_gguf_writer *w, const char *key, const char *s) {
    if (!s) return FTI_ERR_INVALID;
    return fti_gguf_set_strn(w, key, s, strlen(s));
}

FTIDEF fti_result fti_gguf_set_arr(fti_gguf_writer *w, const char *key, fti_gguf_type elem_type,
                                   const void *data, size_t n) {
    fti__gguf_wkv *e;
    size_t sz = fti__gguf_scalar_size(elem_type), i;
    if (!sz || (!data && n)) return FTI_ERR_INVALID;
    e = fti__gguf_slot(w, key, FTI_GGUF_ARRAY);
    if (!e) return (w && key && *key && strlen(key) <= FTI_GGUF_MAX_NAME) ? FTI_ERR_NOMEM
                                                                           : FTI_ERR_INVALID;
    fti__gguf_put_u32(&e->val, (uint32_t)elem_type);
    fti__gguf_put_u64(&e->val, (uint64_t)n);
    if (!fti_buf_reserve(&e->val, n * sz)) return FTI_ERR_NOMEM;
    for (i = 0; i < n; i++)
        fti__gguf_put_scalar(&e->val, elem_type, (const unsigned char *)data + i * sz);
    return e->val.oom ? FTI_ERR_NOMEM : FTI_OK;
}

FTIDEF fti_result fti_gguf_set_arr_str(fti_gguf_writer *w, const char *key,
                                       const char *const *strs, const size_t *lens, size_t n) {
    fti__gguf_wkv *e;
    size_t i;
    if (!strs && n) return FTI_ERR_INVALID;
    for (i = 0; i < n; i++)
        if (!strs[i] && (!lens || lens[i])) return FTI_ERR_INVALID;
    e = fti__gguf_slot(w, key, FTI_GGUF_ARRAY);
    if (!e) return (w && key && *key && strlen(key) <= FTI_GGUF_MAX_NAME) ? FTI_ERR_NOMEM
                                                                           : FTI_ERR_INVALID;
    fti__gguf_put_u32(&e->val, FTI_GGUF_STRING);
    fti__gguf_put_u64(&e->val, (uint64_t)n);
    for (i = 0; i < n; i++) {
        const char *s = strs[i] ? strs[i] : "";
        fti__gguf_put_str(&e->val, s, lens ? lens[i] : strlen(s));
    }
    return e->val.oom ? FTI_ERR_NOMEM : FTI_OK;
}

FTIDEF fti_result fti_gguf_set_kv_from(fti_gguf_writer *w, const fti_gguf *g,
                                       const fti_gguf_kv *kv) {
    fti__gguf_wkv *e;
    if (!g || !kv) return FTI_ERR_INVALID;
    e = fti__gguf_slot(w, kv->key, kv->type);
    if (!e) return FTI_ERR_NOMEM;
    if (kv->type == FTI_GGUF_STRING) {
        fti__gguf_put_str(&e->val, (const char *)kv->data, kv->n_bytes);
    } else if (kv->type == FTI_GGUF_ARRAY) {
        /* the file's bytes are already the little-endian serialization */
        fti__gguf_put_u32(&e->val, (uint32_t)kv->arr_type);
        fti__gguf_put_u64(&e->val, (uint64_t)kv->arr_n);
        fti_buf_append(&e->val, kv->data, kv->n_bytes);
    } else {
        fti_buf_append(&e->val, kv->data, kv->n_bytes);
    }
    return e->val.oom ? FTI_ERR_NOMEM : FTI_OK;
}

FTIDEF void fti_gguf_unset(fti_gguf_writer *w, const char *key) {
    size_t i;
    if (!w || !key) return;
    for (i = 0; i < w->n_kv; i++)
        if (strcmp(w->kv[i].key, key) == 0) {
            fti_free(w->kv[i].key);
            fti_buf_free(&w->kv[i].val);
            memmove(&w->kv[i], &w->kv[i + 1], (w->n_kv - i - 1) * sizeof *w->kv);
            w->n_kv--;
            return;
        }
}

static fti_result fti__gguf_add_tensor(fti_gguf_writer *w, const char *name, uint32_t n_dims,
                                       const uint64_t *ne, uint32_t ggml_type, const void *data,
                                       void *owned, size_t n_bytes) {
    size_t i, nlen, be, bb, expect, rows = 1;
    uint32_t d;
    fti__gguf_wtensor *t;
    fti_result rc = FTI_ERR_INVALID;
    if (!w || !name || !ne || n_dims == 0 || n_dims > FTI_GGUF_MAX_DIMS || (!data && n_bytes))
        goto fail;
    nlen = strlen(name);
    if (nlen == 0 || nlen >= 64) goto fail;
    if (!fti_ggml_type_block(ggml_type, &be, &bb)) goto fail;
    for (d = 0; d < n_dims; d++) {
        if (ne[d] == 0 || ne[d] > (uint64_t)INT64_MAX || ne[d] > (uint64_t)(size_t)-1) goto fail;
        if (d > 0 && !fti_size_mul(rows, (size_t)ne[d], &rows)) goto fail;
    }
    if (ne[0] % be != 0) goto fail;
    expect = fti_ggml_row_bytes(ggml_type, (size_t)ne[0]);
    if (!expect || !fti_size_mul(expect, rows, &expect) || expect != n_bytes) goto fail;
    for (i = 0; i < w->n_t; i++)
        if (strcmp(w->t[i].name, name) == 0) goto fail;
    rc = FTI_ERR_NOMEM;
    if (w->n_t == w->cap_t) {
        size_t cap = w->cap_t ? w->cap_t * 2 : 64, bytes;
        fti__gguf_wtensor *p;
        if (!fti_size_mul(cap, sizeof *p, &bytes)) goto fail;
        p = (fti__gguf_wtensor *)fti_realloc(w->t, bytes);
        if (!p) goto fail;
        w->t = p;
        w->cap_t = cap;
    }
    t = &w->t[w->n_t];
    memset(t, 0, sizeof *t);
    t->name = fti_strdup(name);
    if (!t->name) goto fail;
    t->n_dims = n_dims;
    for (d = 0; d < FTI_GGUF_MAX_DIMS; d++) t->ne[d] = d < n_dims ? ne[d] : 1;
    t->type = ggml_type;
    t->data = data;
    t->owned = owned;
    t->n_bytes = n_bytes;
    w->n_t++;
    return FTI_OK;
fail:
    fti_free(owned);
    return rc;
}

FTIDEF fti_result fti_gguf_add_tensor(fti_gguf_writer *w, const char *name, uint32_t n_dims,
                                      const uint64_t *ne, uint32_t ggml_type, const void *data,
                                      size_t n_bytes) {
    return fti__gguf_add_tensor(w, name, n_dims, ne, ggml_type, data, NULL, n_bytes);
}

FTIDEF fti_result fti_gguf_add_tensor_owned(fti_gguf_writer *w, const char *name,
                                            uint32_t n_dims, const uint64_t *ne,
                                            uint32_t ggml_type, void *data, size_t n_bytes) {
    return fti__gguf_add_tensor(w, name, n_dims, ne, ggml_type, data, data, n_bytes);
}

FTIDEF fti_result fti_gguf_add_tensor_copy(fti_gguf_writer *w, const char *name,
                                           uint32_t n_dims, const uint64_t *ne,
                                           uint32_t ggml_type, const void *data, size_t n_bytes) {
    void *copy;
    if (!data && n_bytes) return FTI_ERR_INVALID;
    copy = fti_malloc(n_bytes);
    if (!copy) return FTI_ERR_NOMEM;
    if (n_bytes) memcpy(copy, data, n_bytes);
    return fti__gguf_add_tensor(w, name, n_dims, ne, ggml_type, copy, copy, n_bytes);
}

/* Where the bytes go: an atomic file or a buffer. */
typedef struct fti__gguf_sink {
    fti_afile *f;
    fti_buf *b;
} fti__gguf_sink;

static fti_result fti__gguf_sink_write(fti__gguf_sink *s, const void *p, size_t n) {
    if (s->f) return fti_afile_write(s->f, p, n);
    fti_buf_append(s->b, p, n);
    return s->b->oom ? FTI_ERR_NOMEM : FTI_OK;
}

static fti_result fti__gguf_write(fti_gguf_writer *w, fti__gguf_sink *s, fti_error *err) {
    fti_buf h;
    size_t i, off = 0, pad;
    static const unsigned char zeros[64] = {0};
    fti_result rc = FTI_OK;
    size_t align;
    if (!w) return fti_error_set(err, FTI_ERR_INVALID, "gguf writer: NULL");
    /* a general.alignment key set by the caller decides the padding (it must be a u32 power of
     * two), so the file never claims an alignment it does not have */
    align = w->alignment;
    for (i = 0; i < w->n_kv; i++)
        if (strcmp(w->kv[i].key, "general.alignment") == 0) {
            const fti_buf *v = &w->kv[i].val;
            uint32_t a = v->len == 4 ? fti__gguf_le32((const unsigned char *)v->data) : 0;
            if (w->kv[i].type != FTI_GGUF_UINT32 || a == 0 || (a & (a - 1)) != 0)
                return fti_error_set(err, FTI_ERR_INVALID,
                                     "gguf writer: general.alignment must be a u32 power of two");
            align = a;
        }
    memset(&h, 0, sizeof h);
    fti_buf_append(&h, "GGUF", 4);
    fti__gguf_put_u32(&h, FTI_GGUF_VERSION);
    fti__gguf_put_u64(&h, (uint64_t)w->n_t);
    fti__gguf_put_u64(&h, (uint64_t)w->n_kv);
    for (i = 0; i < w->n_kv; i++) {
        fti__gguf_put_str(&h, w->kv[i].key, strlen(w->kv[i].key));
        fti__gguf_put_u32(&h, w->kv[i].type);
        fti_buf_append(&h, w->kv[i].val.data, w->kv[i].val.len);
    }
    for (i = 0; i < w->n_t; i++) {
        const fti__gguf_wtensor *t = &w->t[i];
        uint32_t d;
        fti__gguf_put_str(&h, t->name, strlen(t->name));
        fti__gguf_put_u32(&h, t->n_dims);
        for (d = 0; d < t->n_dims; d++) fti__gguf_put_u64(&h, t->ne[d]);
        fti__gguf_put_u32(&h, t->type);
        fti__gguf_put_u64(&h, (uint64_t)off);
        pad = (align - t->n_bytes % align) % align;
        if (!fti_size_add(off, t->n_bytes, &off) || !fti_size_add(off, pad, &off)) {
            fti_buf_free(&h);
            return fti_error_set(err, FTI_ERR_LIMIT, "gguf writer: tensor data overflows");
        }
    }
    pad = (align - h.len % align) % align;
    while (pad > 0) {
        size_t k = pad < sizeof zeros ? pad : sizeof zeros;
        fti_buf_append(&h, zeros, k);
        pad -= k;
    }
    if (h.oom) {
        fti_buf_free(&h);
        return fti_error_set(err, FTI_ERR_NOMEM, "gguf writer: out of memory for the header");
    }
    rc = fti__gguf_sink_write(s, h.data, h.len);
    fti_buf_free(&h);
    for (i = 0; i < w->n_t && rc == FTI_OK; i++) {
        const fti__gguf_wtensor *t = &w->t[i];
        rc = fti__gguf_sink_write(s, t->data, t->n_bytes);
        pad = (align - t->n_bytes % align) % align;
        while (rc == FTI_OK && pad > 0) {
            size_t k = pad < sizeof zeros ? pad : sizeof zeros;
            rc = fti__gguf_sink_write(s, zeros, k);
            pad -= k;
        }
    }
    if (rc != FTI_OK) return fti_error_set(err, rc, "gguf writer: %s", fti_result_str(rc));
    return FTI_OK;
}

FTIDEF fti_result fti_gguf_writer_write(fti_gguf_writer *w, const char *path, fti_error *err) {
    fti_afile f;
    fti__gguf_sink s;
    fti_result rc;
    if (!w || !path) return fti_error_set(err, FTI_ERR_INVALID, "gguf writer: NULL argument");
    rc = fti_afile_open(&f, path, err);
    if (rc != FTI_OK) return rc;
    s.f = &f;
    s.b = NULL;
    rc = fti__gguf_write(w, &s, err);
    if (rc != FTI_OK) {
        fti_afile_abort(&f);
        fti_error_prefix(err, path);
        return rc;
    }
    return fti_afile_commit(&f, err);
}

FTIDEF fti_result fti_gguf_writer_write_buf(fti_gguf_writer *w, fti_buf *out, fti_error *err) {
    fti__gguf_sink s;
    if (!out) return fti_error_set(err, FTI_ERR_INVALID, "gguf writer: NULL buffer");
    s.f = NULL;
    s.b = out;
    return fti__gguf_write(w, &s, err);
}

/* The GGUF name of a layout tensor: llama.cpp's "<name>.weight" (in may equal out). */
static const char *fti__gguf_weight_name(const char *in, char out[80]) {
    snprintf(out, 80, "%.60s.weight", in);
    return out;
}

/* llama.cpp's general.file_type for a matrix type. */
static uint32_t fti__gguf_file_type(uint32_t t) {
    switch (t) {
    case FTI_GGML_F16: return 1;
    case FTI_GGML_Q4_0: return 2;
    case FTI_GGML_Q8_0: return 7;
    case FTI_GGML_BF16: return 32;
    default: return 0;
    }
}

/* --- llama models: writing ------------------------------------------------------------------ */

#define FTI__GGUF_TRY(expr)                                                                  \
    do {                                                                                     \
        fti_result fti__rc_ = (expr);                                                        \
        if (fti__rc_ != FTI_OK)                                                              \
            return fti_error_set(err, fti__rc_, "gguf: writing the model's keys: %s",        \
                                 fti_result_str(fti__rc_));                                  \
    } while (0)

static fti_result fti__gguf_add_tokenizer(fti_gguf_writer *w, const fti_gguf_tokenizer_meta *tok,
                                          uint32_t vocab, fti_error *err) {
    int32_t *types;
    size_t i;
    fti_result rc;
    if (tok->n_tokens != vocab)
        return fti_error_set(err, FTI_ERR_INVALID,
                             "gguf: tokenizer has %lu tokens but the model's vocab_size is %lu",
                             (unsigned long)tok->n_tokens, (unsigned long)vocab);
    if (!tok->tokens || (tok->n_merges && !tok->merges))
        return fti_error_set(err, FTI_ERR_INVALID, "gguf: tokenizer tokens/merges missing");
    if (tok->bos_id >= (int32_t)vocab || tok->eos_id >= (int32_t)vocab ||
        tok->pad_id >= (int32_t)vocab)
        return fti_error_set(err, FTI_ERR_INVALID,
                             "gguf: tokenizer bos %ld / eos %ld / pad %ld not below vocab %lu",
                             (long)tok->bos_id, (long)tok->eos_id, (long)tok->pad_id,
                             (unsigned long)vocab);
    types = (int32_t *)fti_malloc((size_t)vocab * sizeof(int32_t) + 1);
    if (!types) return fti_error_set(err, FTI_ERR_NOMEM, "gguf: out of memory");
    for (i = 0; i < vocab; i++)
        types[i] = tok->token_types ? tok->token_types[i] : FTI_GGUF_TOKEN_NORMAL;
    if (!tok->token_types)
        for (i = 0; i < tok->n_special; i++) {
            if (tok->special_ids[i] < 0 || tok->special_ids[i] >= (int32_t)vocab) {
                fti_free(types);
                return fti_error_set(err, FTI_ERR_INVALID,
                                     "gguf: special token id %ld not below vocab %lu",
                                     (long)tok->special_ids[i], (unsigned long)vocab);
            }
            types[tok->special_ids[i]] = FTI_GGUF_TOKEN_CONTROL;
        }
    rc = fti_gguf_set_str(w, "tokenizer.ggml.model", tok->model ? tok->model : "gpt2");
    if (rc == FTI_OK) rc = fti_gguf_set_str(w, "tokenizer.ggml.pre", tok->pre ? tok->pre : "gpt-2");
    if (rc == FTI_OK)
        rc = fti_gguf_set_arr_str(w, "tokenizer.ggml.tokens", tok->tokens, tok->token_lens,
                                  tok->n_tokens);
    if (rc == FTI_OK)
        rc = fti_gguf_set_arr(w, "tokenizer.ggml.token_type", FTI_GGUF_INT32, types, vocab);
    fti_free(types);
    if (rc == FTI_OK)
        rc = fti_gguf_set_arr_str(w, "tokenizer.ggml.merges", tok->merges, tok->merge_lens,
                                  tok->n_merges);
    if (rc == FTI_OK && tok->bos_id >= 0)
        rc = fti_gguf_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)tok->bos_id);
    if (rc == FTI_OK && tok->eos_id >= 0)
        rc = fti_gguf_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)tok->eos_id);
    if (rc == FTI_OK && tok->pad_id >= 0)
        rc = fti_gguf_set_u32(w, "tokenizer.ggml.padding_token_id", (uint32_t)tok->pad_id);
    if (rc == FTI_OK) rc = fti_gguf_set_bool(w, "tokenizer.ggml.add_bos_token", tok->add_bos);
    if (rc == FTI_OK) rc = fti_gguf_set_bool(w, "tokenizer.ggml.add_eos_token", tok->add_eos);
    if (rc == FTI_OK && tok->chat_template)
        rc = fti_gguf_set_str(w, "tokenizer.chat_template", tok->chat_template);
    if (rc != FTI_OK)
        return fti_error_set(err, rc, "gguf: writing tokenizer keys: %s", fti_result_str(rc));
    return FTI_OK;
}

FTIDEF void fti_gguf_tokenizer_meta_from(fti_gguf_tokenizer_meta *m, const fti_tokenizer_gguf *tg,
                                         int add_bos) {
    if (!m) return;
    memset(m, 0, sizeof *m);
    m->pad_id = -1;
    m->bos_id = -1;
    m->eos_id = -1;
    if (!tg) return;
    m->n_tokens = tg->n_tokens;
    m->tokens = (const char *const *)tg->tokens;
    m->token_types = tg->token_types;
    m->n_merges = tg->n_merges;
    m->merges = (const char *const *)tg->merges;
    m->model = tg->model;
    m->pre = tg->pre;
    m->bos_id = (int32_t)tg->bos_id;
    m->eos_id = (int32_t)tg->eos_id;
    m->add_bos = add_bos && tg->bos_id >= 0;
}

static fti_result fti__gguf_add_lineage(fti_gguf_writer *w, const fti_gguf_lineage *lin,
                                        fti_error *err) {
    if (lin->author) FTI__GGUF_TRY(fti_gguf_set_str(w, "general.author", lin->author));
    if (lin->version) FTI__GGUF_TRY(fti_gguf_set_str(w, "general.version", lin->version));
    if (lin->description)
        FTI__GGUF_TRY(fti_gguf_set_str(w, "general.description", lin->description));
    if (lin->license) FTI__GGUF_TRY(fti_gguf_set_str(w, "general.license", lin->license));
    if (lin->n_datasets)
        FTI__GGUF_TRY(fti_gguf_set_arr_str(w, "general.datasets", lin->datasets, NULL,
                                           lin->n_datasets));
    if (lin->base_model_name) {
        FTI__GGUF_TRY(fti_gguf_set_u32(w, "general.base_model.count", 1));
        FTI__GGUF_TRY(fti_gguf_set_str(w, "general.base_model.0.name", lin->base_model_name));
        if (lin->base_model_version)
            FTI__GGUF_TRY(
                fti_gguf_set_str(w, "general.base_model.0.version", lin->base_model_version));
    }
    if (lin->base_model_id)
        FTI__GGUF_TRY(fti_gguf_set_str(w, "fti.base_model.sha256", lin->base_model_id));
    if (lin->dataset_version)
        FTI__GGUF_TRY(fti_gguf_set_str(w, "fti.dataset.version", lin->dataset_version));
    if (lin->store_path) FTI__GGUF_TRY(fti_gguf_set_str(w, "fti.dataset.store", lin->store_path));
    if (lin->tokenizer_sha256)
        FTI__GGUF_TRY(fti_gguf_set_str(w, "fti.tokenizer.sha256", lin->tokenizer_sha256));
    if (lin->train_config)
        FTI__GGUF_TRY(fti_gguf_set_str(w, "fti.train.config", lin->train_config));
    if (lin->doc_template)
        FTI__GGUF_TRY(fti_gguf_set_str(w, "fti.doc.template", lin->doc_template));
    if (lin->train_steps)
        FTI__GGUF_TRY(fti_gguf_set_u64(w, "fti.train.steps", lin->train_steps));
    /* only a loss the caller gave: unset (a zeroed struct) wrote 0 before 2026-11-30, which a
     * reader took for a loss; NaN: not known either (an old adapter's card) */
    if (lin->has_train_loss && lin->train_loss == lin->train_loss)
        FTI__GGUF_TRY(fti_gguf_set_f32(w, "fti.train.loss", (float)lin->train_loss));
    if (lin->train_tokens)
        FTI__GGUF_TRY(fti_gguf_set_u64(w, "fti.train.tokens", lin->train_tokens));
    if (lin->val_loss > 0)
        FTI__GGUF_TRY(fti_gguf_set_f32(w, "fti.train.val_loss", (float)lin->val_loss));
    if (lin->weights) FTI__GGUF_TRY(fti_gguf_set_str(w, "fti.train.weights", lin->weights));
    if (lin->run_steps)
        FTI__GGUF_TRY(fti_gguf_set_u64(w, "fti.train.run_steps", lin->run_steps));
    if (lin->created) FTI__GGUF_TRY(fti_gguf_set_str(w, "fti.created", lin->created));
    return FTI_OK;
}

FTIDEF fti_result fti_gguf_add_llama(fti_gguf_writer *w, const fti_model_config *cfg_in,
                                     const float *params, const fti_gguf_tokenizer_meta *tok,
                                     const fti_gguf_lineage *lin,
                                     const fti_gguf_model_opts *opts, fti_error *err) {
    fti_model_config cfg;
    const fti_kernels *k = fti_kernels_get(FTI_ISA_AUTO);
    uint32_t mt = opts ? opts->matrix_type : FTI_GGML_F32;
    size_t i, n;
    fti_result rc;
    if (!w || !cfg_in || !params)
        return fti_error_set(err, FTI_ERR_INVALID, "gguf: add_llama: NULL argument");
    cfg = *cfg_in;
    rc = fti_model_config_resolve(&cfg, err);
    if (rc != FTI_OK) return rc;
    if (!fti_ggml_type_name(mt))
        return fti_error_set(err, FTI_ERR_UNSUPPORTED, "gguf: matrix type %lu not supported",
                             (unsigned long)mt);
    FTI__GGUF_TRY(fti_gguf_set_str(w, "general.architecture", "llama"));
    FTI__GGUF_TRY(fti_gguf_set_str(w, "general.type", "model"));
    FTI__GGUF_TRY(fti_gguf_set_str(w, "general.name", lin && lin->name ? lin->name : "fti-twin"));
    FTI__GGUF_TRY(fti_gguf_set_u32(w, "general.file_type", fti__gguf_file_type(mt)));
    if (mt == FTI_GGML_Q8_0 || mt == FTI_GGML_Q4_0)
        FTI__GGUF_TRY(fti_gguf_set_u32(w, "general.quantization_version", 2));
    FTI__GGUF_TRY(fti_gguf_set_str(w, "fti.version", FTI_VERSION_STRING));
    FTI__GGUF_TRY(fti_gguf_set_u32(w, "llama.vocab_size", cfg.vocab_size));
    FTI__GGUF_TRY(fti_gguf_set_u32(w, "llama.context_length", cfg.context_len));
    FTI__GGUF_TRY(fti_gguf_set_u32(w, "llama.embedding_length", cfg.dim));
    FTI__GGUF_TRY(fti_gguf_set_u32(w, "llama.block_count", cfg.n_layers));
    FTI__GGUF_TRY(fti_gguf_set_u32(w, "llama.feed_forward_length", cfg.hidden_dim));
    FTI__GGUF_TRY(fti_gguf_set_u32(w, "llama.rope.dimension_count", cfg.dim / cfg.n_heads));
    FTI__GGUF_TRY(fti_gguf_set_u32(w, "llama.attention.head_count", cfg.n_heads));
    FTI__GGUF_TRY(fti_gguf_set_u32(w, "llama.attention.head_count_kv", cfg.n_kv_heads));
    FTI__GGUF_TRY(fti_gguf_set_f32(w, "llama.attention.layer_norm_rms_epsilon", cfg.norm_eps));
    FTI__GGUF_TRY(fti_gguf_set_f32(w, "llama.rope.freq_base", cfg.rope_base));
    if (tok) {
        rc = fti__gguf_add_tokenizer(w, tok, cfg.vocab_size, err);
        if (rc != FTI_OK) return rc;
    }
    if (lin) {
        rc = fti__gguf_add_lineage(w, lin, err);
        if (rc != FTI_OK) return rc;
    }
    n = fti_model_n_tensors(&cfg);
    for (i = 0; i < n; i++) {
        fti_tensor_info ti;
        char gname[80];
        uint64_t ne[2];
        uint32_t nd, t;
        size_t n_el, n_bytes, r;
        const float *src;
        memset(&ti, 0, sizeof ti);
        fti_model_tensor_info(&cfg, i, &ti);
        fti__gguf_weight_name(ti.name, gname);
        nd = ti.cols == 1 ? 1 : 2;
        ne[0] = nd == 1 ? ti.rows : ti.cols;
        ne[1] = ti.rows;
        t = (nd == 1 || ti.is_norm) ? FTI_GGML_F32 : mt;
        /* rows that are no whole number of the type's blocks (the tiny preset's SwiGLU 176 in
         * Q8_0/Q4_0) stay F32, as fti-quantize and llama.cpp's quantizer leave them */
        if (!fti_ggml_row_bytes(t, (size_t)ne[0])) t = FTI_GGML_F32;
        src = params + ti.offset;
        n_el = ti.rows * ti.cols;
        if (t == FTI_GGML_F32) {
            rc = fti_gguf_add_tensor(w, gname, nd, ne, t, src, n_el * 4);
        } else {
            unsigned char *buf;
            size_t rb = fti_ggml_row_bytes(t, (size_t)ne[0]);
            if (!rb)
                return fti_error_set(err, FTI_ERR_UNSUPPORTED,
                                     "gguf: tensor %s: rows of %lu are not a multiple of the %s "
                                     "block size",
                                     ti.name, (unsigned long)ne[0], fti_ggml_type_name(t));
            if (!fti_size_mul(rb, ti.rows, &n_bytes))
                return fti_error_set(err, FTI_ERR_LIMIT, "gguf: tensor %s too large", ti.name);
            buf = (unsigned char *)fti_malloc(n_bytes);
            if (!buf) return fti_error_set(err, FTI_ERR_NOMEM, "gguf: out of memory");
            /* part 02's converters: ggml's rounding exactly (see fti_quantize_row) */
            for (r = 0; r < ti.rows; r++)
                fti_quantize_row(k, (fti_dtype)t, buf + r * rb, src + r * ti.cols, ti.cols);
            rc = fti_gguf_add_tensor_owned(w, gname, nd, ne, t, buf, n_bytes);
        }
        if (rc != FTI_OK)
            return fti_error_set(err, rc, "gguf: adding tensor %s: %s", ti.name,
                                 fti_result_str(rc));
    }
    return FTI_OK;
}

FTIDEF fti_result fti_gguf_write_llama(const char *path, const fti_model_config *cfg,
                                       const float *params, const fti_gguf_tokenizer_meta *tok,
                                       const fti_gguf_lineage *lin,
                                       const fti_gguf_model_opts *opts, fti_error *err) {
    fti_gguf_writer *w = NULL;
    fti_result rc = fti_gguf_writer_create(&w, 0);
    if (rc != FTI_OK) return fti_error_set(err, rc, "gguf: creating writer");
    rc = fti_gguf_add_llama(w, cfg, params, tok, lin, opts, err);
    if (rc != FTI_OK && path) fti_error_prefix(err, path);
    if (rc == FTI_OK) rc = fti_gguf_writer_write(w, path, err);
    fti_gguf_writer_free(w);
    return rc;
}

/* --- llama models: reading ------------------------------------------------------------------ */

static fti_result fti__gguf_opt_u32(const fti_gguf *g, const char *key, uint32_t *v,
                                    fti_error *err) {
    fti_result rc = fti_gguf_get_u32(g, key, v, err);
    if (rc == FTI_ERR_NOT_FOUND) {
        fti_error_clear(err);
        return FTI_OK;
    }
    return rc;
}

static fti_result fti__gguf_check_id(const fti_gguf *g, const char *key, uint32_t vocab,
                                     fti_error *err) {
    uint32_t id = 0;
    fti_result rc = fti_gguf_get_u32(g, key, &id, err);
    if (rc == FTI_ERR_NOT_FOUND) {
        fti_error_clear(err);
        return FTI_OK;
    }
    if (rc != FTI_OK) return rc;
    if (id >= vocab)
        return fti_error_set(err, FTI_ERR_FORMAT, "%s: %s = %lu is not below vocab size %lu",
                             g->path, key, (unsigned long)id, (unsigned long)vocab);
    return FTI_OK;
}

FTIDEF fti_result fti_gguf_llama_config(const fti_gguf *g, fti_model_config *cfg,
                                        int allow_extra, fti_error *err) {
    fti_model_config c;
    const char *arch;
    size_t arch_len = 0, i, n, matched = 0;
    const fti_gguf_kv *toks = NULL;
    const fti_gguf_tensor *embd;
    uint32_t rope_dims = 0;
    float scale = 1.0f;
    fti_result rc;
    if (!g || !cfg) return fti_error_set(err, FTI_ERR_INVALID, "gguf: NULL argument");
    memset(&c, 0, sizeof c);
    /* the architecture, the tokenizer (byte-level BPE: a SentencePiece "llama" vocabulary's
     * <0xNN> pieces would fail later, less clearly) and RoPE (scaling would change every angle;
     * refused, not ignored): each key must have fti's value; only the first is required */
    for (i = 0; i < 3; i++) {
        static const char *const want[3][2] = {{"general.architecture", "llama"},
                                               {"tokenizer.ggml.model", "gpt2"},
                                               {"llama.rope.scaling.type", "none"}};
        rc = fti_gguf_get_str(g, want[i][0], &arch, &arch_len, err);
        if (rc == FTI_ERR_NOT_FOUND && i > 0) {
            fti_error_clear(err);
            continue;
        }
        if (rc != FTI_OK) return rc;
        if (arch_len != strlen(want[i][1]) || memcmp(arch, want[i][1], arch_len) != 0) {
            char safe[72];
            return fti_error_set(err, FTI_ERR_UNSUPPORTED,
                                 "%s: %s is \"%s\"; fti supports only \"%s\"", g->path,
                                 want[i][0], fti__gguf_safe(arch, arch_len, safe), want[i][1]);
        }
    }
    if (fti_gguf_find_tensor(g, "rope_freqs.weight"))
        return fti_error_set(err, FTI_ERR_UNSUPPORTED,
                             "%s: tensor rope_freqs.weight (Llama 3.1 RoPE scaling) is not "
                             "supported",
                             g->path);
    /* (the key of GGUF v2 era converters for linear scaling) */
    if (fti_gguf_get_f32(g, "llama.rope.scale_linear", &scale, NULL) == FTI_OK && scale != 1.0f)
        return fti_error_set(err, FTI_ERR_UNSUPPORTED,
                             "%s: llama.rope.scale_linear is %g; fti supports only 1", g->path,
                             (double)scale);
    if ((rc = fti_gguf_get_u32(g, "llama.embedding_length", &c.dim, err)) != FTI_OK ||
        (rc = fti_gguf_get_u32(g, "llama.block_count", &c.n_layers, err)) != FTI_OK ||
        (rc = fti_gguf_get_u32(g, "llama.feed_forward_length", &c.hidden_dim, err)) != FTI_OK ||
        (rc = fti_gguf_get_u32(g, "llama.attention.head_count", &c.n_heads, err)) != FTI_OK ||
        (rc = fti_gguf_get_u32(g, "llama.context_length", &c.context_len, err)) != FTI_OK)
        return rc;
    if ((rc = fti__gguf_opt_u32(g, "llama.attention.head_count_kv", &c.n_kv_heads, err)) !=
            FTI_OK ||
        (rc = fti__gguf_opt_u32(g, "llama.vocab_size", &c.vocab_size, err)) != FTI_OK ||
        (rc = fti__gguf_opt_u32(g, "llama.rope.dimension_count", &rope_dims, err)) != FTI_OK)
        return rc;
    rc = fti_gguf_get_f32(g, "llama.attention.layer_norm_rms_epsilon", &c.norm_eps, err);
    if (rc == FTI_ERR_NOT_FOUND) fti_error_clear(err);
    else if (rc != FTI_OK) return rc;
    rc = fti_gguf_get_f32(g, "llama.rope.freq_base", &c.rope_base, err);
    if (rc == FTI_ERR_NOT_FOUND) fti_error_clear(err);
    else if (rc != FTI_OK) return rc;
    if (!(c.norm_eps >= 0.0f && c.norm_eps < 1.0f) || !(c.rope_base >= 0.0f && c.rope_base < 1e12f))
        return fti_error_set(err, FTI_ERR_FORMAT, "%s: epsilon %g or rope base %g out of range",
                             g->path, (double)c.norm_eps, (double)c.rope_base);

    /* vocabulary: llama.vocab_size, else the token list, else token_embd's rows */
    rc = fti_gguf_get_arr(g, "tokenizer.ggml.tokens", FTI_GGUF_STRING, &toks, err);
    if (rc == FTI_ERR_NOT_FOUND) {
        fti_error_clear(err);
        toks = NULL;
    } else if (rc != FTI_OK) {
        return rc;
    }
    embd = fti_gguf_find_tensor(g, "token_embd.weight");
    if (!embd)
        return fti_error_set(err, FTI_ERR_FORMAT, "%s: tensor token_embd.weight missing", g->path);
    if (c.vocab_size == 0) {
        if (toks) c.vocab_size = (uint32_t)(toks->arr_n > 0xffffffffu ? 0 : toks->arr_n);
        else if (embd->n_dims == 2 && embd->ne[1] <= 0xffffffffu)
            c.vocab_size = (uint32_t)embd->ne[1];
    }
    if (toks && toks->arr_n != c.vocab_size)
        return fti_error_set(err, FTI_ERR_FORMAT,
                             "%s: tokenizer.ggml.tokens has %lu entries, vocab size is %lu",
                             g->path, (unsigned long)toks->arr_n, (unsigned long)c.vocab_size);
    {
        const fti_gguf_kv *types = NULL;
        rc = fti_gguf_get_arr(g, "tokenizer.ggml.token_type", FTI_GGUF_TYPE_COUNT, &types, err);
        if (rc == FTI_ERR_NOT_FOUND) {
            fti_error_clear(err);
        } else if (rc != FTI_OK) {
            return rc;
        } else {
            if (!fti__gguf_is_int(types->arr_type) || types->arr_n != c.vocab_size)
                return fti_error_set(err, FTI_ERR_FORMAT,
                                     "%s: tokenizer.ggml.token_type: %lu entries of %s, expected "
                                     "%lu integers",
                                     g->path, (unsigned long)types->arr_n,
                                     fti_gguf_type_name(types->arr_type),
                                     (unsigned long)c.vocab_size);
            for (i = 0; i < types->arr_n; i++) {
                int64_t v = fti_gguf_arr_int(types, i);
                if (v < 0 || v > 6)
                    return fti_error_set(err, FTI_ERR_FORMAT,
                                         "%s: tokenizer.ggml.token_type[%lu] = %lld not in 0..6",
                                         g->path, (unsigned long)i, (long long)v);
            }
        }
    }
    {
        const fti_gguf_kv *merges = NULL;
        rc = fti_gguf_get_arr(g, "tokenizer.ggml.merges", FTI_GGUF_STRING, &merges, err);
        if (rc == FTI_ERR_NOT_FOUND) fti_error_clear(err);
        else if (rc != FTI_OK) return rc;
    }
    if ((rc = fti__gguf_check_id(g, "tokenizer.ggml.bos_token_id", c.vocab_size, err)) != FTI_OK ||
        (rc = fti__gguf_check_id(g, "tokenizer.ggml.eos_token_id", c.vocab_size, err)) != FTI_OK ||
        (rc = fti__gguf_check_id(g, "tokenizer.ggml.padding_token_id", c.vocab_size, err)) !=
            FTI_OK ||
        (rc = fti__gguf_check_id(g, "tokenizer.ggml.unknown_token_id", c.vocab_size, err)) !=
            FTI_OK)
        return rc;

    c.tied_embeddings = fti_gguf_find_tensor(g, "output.weight") == NULL;
    rc = fti_model_config_resolve(&c, err);
    if (rc != FTI_OK) {
        fti_error_prefix(err, g->path);
        return rc;
    }
    if (rope_dims && rope_dims != c.dim / c.n_heads)
        return fti_error_set(err, FTI_ERR_UNSUPPORTED,
                             "%s: llama.rope.dimension_count %lu != head dim %lu (partial RoPE "
                             "is not supported)",
                             g->path, (unsigned long)rope_dims,
                             (unsigned long)(c.dim / c.n_heads));
    n = fti_model_n_tensors(&c);
    for (i = 0; i < n; i++) {
        fti_tensor_info ti;
        char gname[80], tn[16];
        const fti_gguf_tensor *t;
        uint32_t nd;
        uint64_t ne0, ne1;
        memset(&ti, 0, sizeof ti);
        fti_model_tensor_info(&c, i, &ti);
        fti__gguf_weight_name(ti.name, gname);
        t = fti_gguf_find_tensor(g, gname);
        if (!t) return fti_error_set(err, FTI_ERR_FORMAT, "%s: tensor %s missing", g->path, gname);
        if (!t->data)
            return fti_error_set(err, FTI_ERR_FORMAT, "%s: tensor %s has no data", g->path,
                                 gname);
        if (!fti_ggml_type_block(t->type, NULL, NULL)) /* (a file opened with any_type) */
            return fti_error_set(err, FTI_ERR_UNSUPPORTED,
                                 "%s: tensor %s has type %s, which fti does not run", g->path,
                                 gname, fti_ggml_type_any_name(t->type, tn));
        nd = ti.cols == 1 ? 1 : 2;
        ne0 = nd == 1 ? ti.rows : ti.cols;
        ne1 = nd == 1 ? 1 : ti.rows;
        if (t->n_dims != nd || t->ne[0] != ne0 || t->ne[1] != ne1 || t->ne[2] != 1 ||
            t->ne[3] != 1)
            return fti_error_set(err, FTI_ERR_FORMAT,
                                 "%s: tensor %s has shape [%llu, %llu, %llu, %llu] (n_dims %lu), "
                                 "expected [%llu, %llu] from the llama.* keys",
                                 g->path, gname, (unsigned long long)t->ne[0],
                                 (unsigned long long)t->ne[1], (unsigned long long)t->ne[2],
                                 (unsigned long long)t->ne[3], (unsigned long)t->n_dims,
                                 (unsigned long long)ne0, (unsigned long long)ne1);
        if (nd == 1 && t->type != FTI_GGML_F32)
            return fti_error_set(err, FTI_ERR_UNSUPPORTED,
                                 "%s: tensor %s is %s; fti needs norm weights in F32", g->path,
                                 gname, fti_ggml_type_name(t->type));
        matched++;
    }
    if (!allow_extra && matched != g->n_tensors) {
        for (i = 0; i < g->n_tensors; i++) {
            /* name the first tensor the layout does not know */
            const char *nm = g->tensors[i].name;
            size_t k, found = 0;
            for (k = 0; k < n && !found; k++) {
                fti_tensor_info ti;
                char gname[80];
                memset(&ti, 0, sizeof ti);
                fti_model_tensor_info(&c, k, &ti);
                found = strcmp(fti__gguf_weight_name(ti.name, gname), nm) == 0;
            }
            if (!found) {
                char safe[72];
                return fti_error_set(err, FTI_ERR_FORMAT,
                                     "%s: unexpected tensor %s for a %lu-layer llama", g->path,
                                     fti__gguf_safe(nm, strlen(nm), safe),
                                     (unsigned long)c.n_layers);
            }
        }
    }
    *cfg = c;
    return FTI_OK;
}

FTIDEF fti_result fti_gguf_llama_params(const fti_gguf *g, const fti_model_config *cfg,
                                        float *params, fti_error *err) {
    size_t i, n, r;
    const fti_kernels *k = fti_kernels_get(FTI_ISA_AUTO);
    if (!g || !cfg || !params) return fti_error_set(err, FTI_ERR_INVALID, "gguf: NULL argument");
    n = fti_model_n_tensors(cfg);
    for (i = 0; i < n; i++) {
        fti_tensor_info ti;
        char gname[80];
        const fti_gguf_tensor *t;
        size_t rb;
        memset(&ti, 0, sizeof ti);
        fti_model_tensor_info(cfg, i, &ti);
        t = fti_gguf_find_tensor(g, fti__gguf_weight_name(ti.name, gname));
        if (!t || !t->data || t->n_elements != ti.rows * ti.cols)
            return fti_error_set(err, FTI_ERR_FORMAT, "%s: tensor %s missing or of another size",
                                 g->path, gname);
        rb = fti_ggml_row_bytes(t->type, (size_t)t->ne[0]);
        for (r = 0; r < t->n_elements / (size_t)t->ne[0]; r++)
            if (fti_dequantize_row(k, (fti_dtype)t->type, params + ti.offset + r * t->ne[0],
                                   (const char *)t->data + r * rb, (size_t)t->ne[0]) != FTI_OK)
                return fti_error_set(err, FTI_ERR_UNSUPPORTED, "%s: tensor %s: type %s", g->path,
                                     gname, fti_ggml_type_name(t->type));
    }
    return FTI_OK;
}
