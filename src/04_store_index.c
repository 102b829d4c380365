/* === store: MinHash + LSH near-duplicates, chunking, BM25 index, token shards ============== */
#include "04_store.h"

#ifndef FTI_NO_STORE

/* === MinHash ================================================================================ */
/*
 * Shingles are word 3-grams over lowercased letter/digit words (documents with fewer words give
 * one shingle). Signatures use one-permutation hashing: each shingle is hashed once to 64 bits;
 * the top 7 bits pick one of the 128 bins and the low 32 bits compete for that bin's minimum, so
 * a shingle costs O(1) instead of O(bins). Empty bins are then filled by rotation (Shrivastava &
 * Li, "Densifying one permutation hashing"): an empty bin takes the value of the next non-empty
 * bin to its right plus a fixed offset per step, which keeps the probability that two signatures
 * agree in a bin equal to their Jaccard similarity.
 */

typedef struct fti__st_mh_params {
    uint64_t seed;
} fti__st_mh_params;

static void fti__st_mh_init(fti__st_mh_params *p) {
    p->seed = 0x6d696e68617368ull;
}

static void fti__st_mh_add(const fti__st_mh_params *p, uint32_t *sig, uint64_t h) {
    uint32_t bin, v;
    h ^= p->seed;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 31;
    h *= 0x94d049bb133111ebull;
    h ^= h >> 29;
    bin = (uint32_t)(h >> 57) & (FTI_MINHASH_PERMS - 1);
    v = (uint32_t)h;
    if (v == 0xFFFFFFFFu) v--; /* 0xFFFFFFFF marks an empty bin */
    if (v < sig[bin]) sig[bin] = v;
}

static void fti__st_minhash(const fti__st_mh_params *p, const char *t, size_t n, uint32_t *sig) {
    uint64_t w[3] = {0, 0, 0};
    size_t i = 0, n_words = 0, n_sh = 0;
    unsigned char filled[FTI_MINHASH_PERMS];
    for (i = 0; i < FTI_MINHASH_PERMS; i++) sig[i] = 0xFFFFFFFFu;
    i = 0;
    while (i < n) {
        uint64_t h = 1469598103934665603ull;
        unsigned char c = (unsigned char)t[i];
        if (!(fti__st_is_alnum(c) || c >= 0x80)) {
            i++;
            continue;
        }
        while (i < n) {
            c = (unsigned char)t[i];
            if (!(fti__st_is_alnum(c) || c >= 0x80)) break;
            h = (h ^ (uint64_t)fti__st_lc(c)) * 1099511628211ull;
            i++;
        }
        w[0] = w[1];
        w[1] = w[2];
        w[2] = h;
        n_words++;
        if (n_words >= 3) {
            uint64_t s = w[0] * 0x9E3779B97F4A7C15ull ^ (w[1] * 0xC2B2AE3D27D4EB4Full + w[2]);
            s ^= s >> 29;
            fti__st_mh_add(p, sig, s);
            n_sh++;
        }
    }
    if (n_sh == 0 && n_words > 0) fti__st_mh_add(p, sig, w[0] * 31 + w[1] * 17 + w[2]);
    /* densify from a snapshot so filled bins never feed other empty bins */
    for (i = 0; i < FTI_MINHASH_PERMS; i++) filled[i] = sig[i] != 0xFFFFFFFFu;
    {
        size_t k;
        int any = 0;
        uint32_t orig[FTI_MINHASH_PERMS];
        memcpy(orig, sig, sizeof orig);
        for (i = 0; i < FTI_MINHASH_PERMS; i++) any |= filled[i];
        for (i = 0; any && i < FTI_MINHASH_PERMS; i++) {
            if (filled[i]) continue;
            for (k = 1; k < FTI_MINHASH_PERMS; k++) {
                size_t j = (i + k) % FTI_MINHASH_PERMS;
                if (filled[j]) {
                    sig[i] = orig[j] + (uint32_t)k * 0x9E3779B9u;
                    break;
                }
            }
        }
    }
}

static double fti__st_mh_jaccard(const uint32_t *a, const uint32_t *b) {
    size_t i, eq = 0;
    for (i = 0; i < FTI_MINHASH_PERMS; i++) eq += a[i] == b[i];
    return (double)eq / FTI_MINHASH_PERMS;
}

/* Rows per band for a threshold: the banding's S-curve midpoint (1/b)^(1/r) just below it. */
static int fti__st_lsh_rows(double threshold) {
    static const int rows[] = {1, 2, 4, 8, 16, 32};
    int best = 8, k;
    for (k = 0; k < 6; k++) {
        double b = (double)(FTI_MINHASH_PERMS / rows[k]);
        double mid = pow(1.0 / b, 1.0 / rows[k]);
        if (mid <= threshold - 0.03) best = rows[k];
    }
    return best;
}

typedef struct fti__st_band_key {
    uint64_t key;
    uint32_t doc;
} fti__st_band_key;

static int fti__st_band_cmp(const void *a, const void *b) {
    const fti__st_band_key *x = (const fti__st_band_key *)a, *y = (const fti__st_band_key *)b;
    if (x->key != y->key) return x->key < y->key ? -1 : 1;
    return x->doc < y->doc ? -1 : (x->doc > y->doc);
}

static uint32_t fti__st_uf_find(uint32_t *parent, uint32_t x) {
    while (parent[x] != x) {
        parent[x] = parent[parent[x]];
        x = parent[x];
    }
    return x;
}

/* Near-duplicate groups among the signatures sigs[i] (NULL = skip doc i). On return root[i]
 * is the smallest index of i's group (i itself when unique). Returns FTI_ERR_NOMEM or FTI_OK.
 * Candidate pairs per band bucket are compared against the bucket's first 64 members only,
 * which bounds the work on huge buckets (near-identical boilerplate). */
static fti_result fti__st_near_dups(uint32_t *const *sigs, size_t n, double threshold,
                                    uint32_t *root) {
    int rows = fti__st_lsh_rows(threshold), bands = FTI_MINHASH_PERMS / rows, b;
    fti__st_band_key *keys;
    size_t i, m;
    for (i = 0; i < n; i++) root[i] = (uint32_t)i;
    if (n < 2) return FTI_OK;
    keys = (fti__st_band_key *)fti_malloc(n * sizeof *keys);
    if (!keys) return FTI_ERR_NOMEM;
    for (b = 0; b < bands; b++) {
        m = 0;
        for (i = 0; i < n; i++) {
            if (!sigs[i]) continue;
            keys[m].key =
                fti_hash64(sigs[i] + b * rows, (size_t)rows * sizeof(uint32_t), (uint64_t)b);
            keys[m].doc = (uint32_t)i;
            m++;
        }
        qsort(keys, m, sizeof *keys, fti__st_band_cmp);
        for (i = 0; i < m;) {
            size_t j = i + 1, k, q;
            while (j < m && keys[j].key == keys[i].key) j++;
            for (k = i; k < j && k < i + 64; k++) {
                for (q = k + 1; q < j; q++) {
                    uint32_t x = keys[k].doc, y = keys[q].doc, rx, ry;
                    rx = fti__st_uf_find(root, x);
                    ry = fti__st_uf_find(root, y);
                    if (rx == ry) continue;
                    if (fti__st_mh_jaccard(sigs[x], sigs[y]) >= threshold) {
                        if (rx < ry)
                            root[ry] = rx;
                        else
                            root[rx] = ry;
                    }
                }
            }
            i = j;
        }
    }
    for (i = 0; i < n; i++) root[i] = fti__st_uf_find(root, (uint32_t)i);
    fti_free(keys);
    return FTI_OK;
}

/* === chunking ================================================================================ */
/*
 * A document is cut into segments ending at paragraph breaks, sentence ends (". ", "! ", "? "
 * followed by a blank) or, for very long runs, blanks. Chunks take whole segments while the
 * token budget allows; the next chunk starts with the last segments of the previous one that
 * fit in the overlap budget. A segment longer than the budget is cut at blanks, or hard.
 */
typedef size_t (*fti__st_count_fn)(void *ctx, const char *text, size_t len);

typedef struct fti__st_span {
    size_t off, len;
} fti__st_span;

typedef struct fti__st_spans {
    fti__st_span *v;
    size_t n, cap;
    int oom;
} fti__st_spans;

static void fti__st_spans_push(fti__st_spans *s, size_t off, size_t len) {
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        fti__st_span *p = (fti__st_span *)fti_realloc(s->v, cap * sizeof *p);
        if (!p) {
            s->oom = 1;
            return;
        }
        s->v = p;
        s->cap = cap;
    }
    s->v[s->n].off = off;
    s->v[s->n].len = len;
    s->n++;
}

/* Segments of t[0..n) (each includes its trailing separator). */
static void fti__st_segments(const char *t, size_t n, fti__st_spans *out) {
    size_t i = 0, start = 0;
    while (i < n) {
        char c = t[i];
        int cut = 0;
        if (c == '\n')
            cut = 1;
        else if ((c == '.' || c == '!' || c == '?') && i + 1 < n &&
                 (t[i + 1] == ' ' || t[i + 1] == '\n'))
            cut = 1;
        else if (i - start >= 1024 && c == ' ')
            cut = 1;
        else if (i - start >= 4096)
            cut = 1;
        i++;
        if (cut) {
            while (i < n && (t[i] == ' ' || t[i] == '\n')) i++;
            fti__st_spans_push(out, start, i - start);
            start = i;
        }
    }
    if (start < n) fti__st_spans_push(out, start, n - start);
}

/* Appends the chunks of t[0..n) to out as (off, len) spans. */
static void fti__st_chunk_doc(const char *t, size_t n, size_t budget, size_t overlap,
                              fti__st_count_fn count, void *ctx, fti__st_spans *out) {
    fti__st_spans seg;
    size_t *ntok, i = 0;
    memset(&seg, 0, sizeof seg);
    fti__st_segments(t, n, &seg);
    if (seg.oom) {
        out->oom = 1;
        fti_free(seg.v);
        return;
    }
    ntok = (size_t *)fti_malloc((seg.n + 1) * sizeof *ntok);
    if (!ntok) {
        out->oom = 1;
        fti_free(seg.v);
        return;
    }
    for (i = 0; i < seg.n; i++) ntok[i] = count(ctx, t + seg.v[i].off, seg.v[i].len);
    i = 0;
    while (i < seg.n) {
        size_t j = i, tok = 0, k, back;
        if (ntok[i] > budget) {
            /* a long segment alone: cut it into budget-sized pieces by bytes, at blanks */
            size_t off = seg.v[i].off, end = off + seg.v[i].len;
            size_t per = seg.v[i].len * budget / (ntok[i] ? ntok[i] : 1);
            if (per < 16) per = 16;
            while (off < end) {
                size_t e = off + per < end ? off + per : end, e2 = e;
                while (e2 > off + per / 2 && e2 < end && t[e2] != ' ') e2--;
                if (e2 > off + per / 2 && e2 < end) e = e2 + 1;
                fti__st_spans_push(out, off, e - off);
                off = e;
            }
            i++;
            continue;
        }
        while (j < seg.n && tok + ntok[j] <= budget) tok += ntok[j++];
        fti__st_spans_push(out, seg.v[i].off, seg.v[j - 1].off + seg.v[j - 1].len - seg.v[i].off);
        if (j >= seg.n) break;
        /* overlap: walk back from j over segments that fit in the overlap budget */
        back = 0;
        k = j;
        while (k > i + 1 && back + ntok[k - 1] <= overlap) back += ntok[--k];
        i = k;
    }
    fti_free(ntok);
    fti_free(seg.v);
}

/* === BM25 index ============================================================================== */
/*
 * File layout (little-endian, see docs/workspace.md):
 *   0   magic "FTIBM25\0"          8  u32 version (1)     12 u32 n_docs
 *   16  u32 n_chunks              20  u32 n_terms        24 f32 avg chunk length (terms)
 *   28  f32 k1                    32  f32 b              36 u32 reserved
 *   40  u64 n_postings            48  u64 off_docs       56 u64 off_chunks
 *   64  u64 off_terms             72  u64 off_postings   80 u64 off_strings
 *   88  u64 strings_len           96..127 zero
 *   docs:     n_docs   x 5 u32  (string offsets: doc_id, title, source, author, date)
 *   chunks:   n_chunks x 4 u32  (doc, text offset, text length, length in terms)
 *   terms:    n_terms  x (u64 term hash, u32 first posting, u32 df), sorted by hash
 *   postings: n_postings x (u32 chunk, u32 term frequency), by term then chunk
 *   strings:  NUL-terminated strings; the blob ends with a NUL
 */
#define FTI__ST_BM25_HDR 128
#define FTI__ST_BM25_K1 1.2f
#define FTI__ST_BM25_B 0.75f

struct fti_bm25 {
    fti_map map;
    const unsigned char *p;
    uint32_t n_docs, n_chunks, n_terms;
    uint64_t n_postings;
    float avg_len, k1, b;
    const unsigned char *docs, *chunks, *terms, *postings;
    const char *strings;
    uint64_t strings_len;
};

/* Calls fn for each term of t[0..n): lowercased ASCII letters/digits and non-ASCII bytes. */
static uint64_t fti__st_term_hash(const char *t, size_t n, size_t *pos, int *ok) {
    size_t i = *pos, len = 0;
    unsigned char buf[64];
    *ok = 0;
    while (i < n && !(fti__st_is_alnum((unsigned char)t[i]) || (unsigned char)t[i] >= 0x80)) i++;
    if (i >= n) {
        *pos = n;
        return 0;
    }
    while (i < n && (fti__st_is_alnum((unsigned char)t[i]) || (unsigned char)t[i] >= 0x80)) {
        if (len < sizeof buf) buf[len++] = (unsigned char)fti__st_lc((unsigned char)t[i]);
        i++;
    }
    *pos = i;
    *ok = 1;
    return fti_hash64(buf, len, 0x626d3235ull);
}

typedef struct fti__st_tp {
    uint64_t term;
    uint32_t chunk;
    uint32_t tf;
} fti__st_tp;

static int fti__st_tp_cmp(const void *a, const void *b) {
    const fti__st_tp *x = (const fti__st_tp *)a, *y = (const fti__st_tp *)b;
    if (x->term != y->term) return x->term < y->term ? -1 : 1;
    return x->chunk < y->chunk ? -1 : (x->chunk > y->chunk);
}

static void fti__st_put_u32(fti_buf *b, uint32_t v) {
    unsigned char t[4];
    fti_store_u32(t, v);
    fti_buf_append(b, t, 4);
}
static void fti__st_put_u64(fti_buf *b, uint64_t v) {
    unsigned char t[8];
    fti_store_u64(t, v);
    fti_buf_append(b, t, 8);
}

static uint32_t fti__st_str_add(fti_buf *s, const char *v) {
    uint32_t off = (uint32_t)s->len;
    if (v) fti_buf_append(s, v, strlen(v));
    fti_buf_putc(s, 0);
    return off;
}

/* An incremental index builder: documents' metadata first, then chunks in order (their text goes
 * to memory, or with spill_fd >= 0 to that file, so the text is never held whole in memory);
 * fti__st_bm25b_finish emits the file through a callback. Terms are numbered as they are first
 * seen; a chunk's postings are (term number, tf) pairs, 8 bytes each: with the term table that is
 * what stays in memory (the index itself). */
#define FTI__ST_POST_BLOCK ((size_t)1 << 18)
typedef struct fti__st_bm25b {
    /* 2 u32 per posting: term number, term frequency; in chunk order, in blocks of
     * FTI__ST_POST_BLOCK postings (growing never copies them) */
    uint32_t **post;
    size_t n_tp, n_blocks, cap_blocks;
    int post_fd; /* >= 0: full blocks go to this file; only post[0] stays, as the buffer */
    size_t cap0; /* postings allocated in post[0]: it starts small and grows to a whole block
                  * (a small index must not cost a 2 MB allocation) */
    uint32_t *chunk; /* 5 per chunk: doc, text offset, length, length in terms, first posting */
    size_t n_chunks, cap_chunks;
    uint32_t *doc_str; /* 5 per document */
    size_t n_docs;
    double total_len;
    /* the terms: open addressing on the hash -> number; per number its hash and df */
    uint64_t *keys;
    uint32_t *idx_of;
    size_t cap_terms;
    uint64_t *term_hash;
    uint32_t *df;
    size_t n_terms, cap_num;
    uint64_t *scratch;
    size_t scratch_cap;
    fti__st_tp *tab;
    size_t tab_cap;
    fti_buf strs;      /* the documents' strings, then (in memory) the chunks' text */
    int spill_fd;      /* < 0: chunk text in strs */
    uint64_t spill_len;
    uint64_t strs_len; /* the whole strings blob so far */
    fti_result rc;     /* sticky */
} fti__st_bm25b;

static fti_result fti__st_bm25b_init(fti__st_bm25b *b, const fti_doc_meta *docs, size_t n_docs,
                                     int spill_fd, int post_fd) {
    size_t i;
    memset(b, 0, sizeof *b);
    b->spill_fd = spill_fd;
    b->post_fd = post_fd;
    if (n_docs > 0xFFFFFFF0u) return b->rc = FTI_ERR_LIMIT;
    b->doc_str = (uint32_t *)fti_calloc(n_docs * 5 + 1, sizeof *b->doc_str);
    b->cap_terms = 1024;
    b->keys = (uint64_t *)fti_malloc(b->cap_terms * sizeof *b->keys);
    b->idx_of = (uint32_t *)fti_malloc(b->cap_terms * sizeof *b->idx_of);
    if (!b->doc_str || !b->keys || !b->idx_of) return b->rc = FTI_ERR_NOMEM;
    memset(b->idx_of, 0xFF, b->cap_terms * sizeof *b->idx_of);
    b->n_docs = n_docs;
    for (i = 0; i < n_docs; i++) {
        b->doc_str[i * 5 + 0] = fti__st_str_add(&b->strs, docs[i].doc_id);
        b->doc_str[i * 5 + 1] = fti__st_str_add(&b->strs, docs[i].title);
        b->doc_str[i * 5 + 2] = fti__st_str_add(&b->strs, docs[i].source);
        b->doc_str[i * 5 + 3] = fti__st_str_add(&b->strs, docs[i].author);
        b->doc_str[i * 5 + 4] = fti__st_str_add(&b->strs, docs[i].date);
    }
    if (b->strs.oom) return b->rc = FTI_ERR_NOMEM;
    b->strs_len = b->strs.len;
    return FTI_OK;
}

static void fti__st_bm25b_free(fti__st_bm25b *b) {
    size_t i;
    for (i = 0; i < b->n_blocks && b->post; i++) fti_free(b->post[i]);
    fti_free(b->post);
    fti_free(b->chunk);
    fti_free(b->doc_str);
    fti_free(b->keys);
    fti_free(b->idx_of);
    fti_free(b->term_hash);
    fti_free(b->df);
    fti_free(b->scratch);
    fti_free(b->tab);
    fti_buf_free(&b->strs);
    memset(b, 0, sizeof *b);
    b->spill_fd = -1;
    b->post_fd = -1;
}

/* Writes all n bytes at the end of a scratch file (the spill or postings file); 0 on failure,
 * with errno set (ENOSPC on a full disk). */
static int fti__st_fd_write(int fd, const void *p, size_t n) {
    const char *c = (const char *)p;
    while (n) {
        long w = fti__sys_write_scratch(fd, c, n);
        if (w < 0 && errno == EINTR) continue;
        if (w == 0) errno = EIO;
        if (w <= 0) return 0;
        c += w;
        n -= (size_t)w;
    }
    return 1;
}

/* Reads exactly n bytes at off; op: FTI__IO_READ, with FTI__IO_SCRATCH on a scratch file.
 * 0 on failure with errno set: the system's error, or 0 when the file ended first (name it with
 * fti__st_read_error). */
static int fti__st_fd_pread_op(int fd, void *p, size_t n, uint64_t off, int op) {
    char *c = (char *)p;
    while (n) {
        long g = fti__sys_pread(fd, c, n, off, op);
        if (g < 0 && errno == EINTR) continue;
        if (g == 0) errno = 0; /* end of file: no system error to name */
        if (g <= 0) return 0;
        c += g;
        n -= (size_t)g;
        off += (uint64_t)g;
    }
    return 1;
}

static int fti__st_fd_pread(int fd, void *p, size_t n, uint64_t off) {
    return fti__st_fd_pread_op(fd, p, n, off, FTI__IO_READ);
}

/* What a failed fti__st_fd_pread_op met, from the errno it left (e). */
static const char *fti__st_read_error(int e) {
    return e ? strerror(e) : "the file is shorter than expected";
}

/* The number of term h (new terms get the next number); UINT32_MAX when out of memory. */
static uint32_t fti__st_bm25b_term(fti__st_bm25b *b, uint64_t h) {
    size_t slot = (size_t)(h ^ (h >> 29)) & (b->cap_terms - 1);
    while (b->idx_of[slot] != 0xFFFFFFFFu && b->keys[slot] != h)
        slot = (slot + 1) & (b->cap_terms - 1);
    if (b->idx_of[slot] != 0xFFFFFFFFu) return b->idx_of[slot];
    if (b->n_terms >= 0xFFFFFFF0u) return 0xFFFFFFFFu;
    if ((b->n_terms + 1) * 2 > b->cap_terms) { /* grow and rehash */
        size_t ncap = b->cap_terms * 2, q;
        uint64_t *nk = (uint64_t *)fti_malloc(ncap * sizeof *nk);
        uint32_t *ni = (uint32_t *)fti_malloc(ncap * sizeof *ni);
        if (!nk || !ni) {
            fti_free(nk);
            fti_free(ni);
            return 0xFFFFFFFFu;
        }
        memset(ni, 0xFF, ncap * sizeof *ni);
        for (q = 0; q < b->cap_terms; q++) {
            size_t t2;
            if (b->idx_of[q] == 0xFFFFFFFFu) continue;
            t2 = (size_t)(b->keys[q] ^ (b->keys[q] >> 29)) & (ncap - 1);
            while (ni[t2] != 0xFFFFFFFFu) t2 = (t2 + 1) & (ncap - 1);
            nk[t2] = b->keys[q];
            ni[t2] = b->idx_of[q];
        }
        fti_free(b->keys);
        fti_free(b->idx_of);
        b->keys = nk;
        b->idx_of = ni;
        b->cap_terms = ncap;
        slot = (size_t)(h ^ (h >> 29)) & (ncap - 1);
        while (b->idx_of[slot] != 0xFFFFFFFFu) slot = (slot + 1) & (ncap - 1);
    }
    if (b->n_terms == b->cap_num) {
        size_t cap = b->cap_num ? b->cap_num * 2 : 1024;
        uint64_t *th = (uint64_t *)fti_realloc(b->term_hash, cap * sizeof *th);
        uint32_t *df;
        if (!th) return 0xFFFFFFFFu;
        b->term_hash = th;
        df = (uint32_t *)fti_realloc(b->df, cap * sizeof *df);
        if (!df) return 0xFFFFFFFFu;
        b->df = df;
        b->cap_num = cap;
    }
    b->keys[slot] = h;
    b->idx_of[slot] = (uint32_t)b->n_terms;
    b->term_hash[b->n_terms] = h;
    b->df[b->n_terms] = 0;
    return (uint32_t)b->n_terms++;
}

static fti_result fti__st_bm25b_add(fti__st_bm25b *b, const char *text, size_t len, uint32_t doc) {
    size_t pos = 0, m = 0, k, i = b->n_chunks;
    int ok;
    if (b->rc != FTI_OK) return b->rc;
    if (doc >= b->n_docs) return b->rc = FTI_ERR_INVALID;
    if (b->n_chunks >= 0xFFFFFFF0u) return b->rc = FTI_ERR_LIMIT;
    if (b->strs_len + len + 1 > 0xFFFFFFF0u) return b->rc = FTI_ERR_LIMIT;
    if (b->n_chunks == b->cap_chunks) {
        size_t cap = b->cap_chunks ? b->cap_chunks * 2 : 256;
        uint32_t *p = (uint32_t *)fti_realloc(b->chunk, cap * 5 * sizeof *p);
        if (!p) return b->rc = FTI_ERR_NOMEM;
        b->chunk = p;
        b->cap_chunks = cap;
    }
    b->chunk[i * 5 + 0] = doc;
    b->chunk[i * 5 + 1] = (uint32_t)b->strs_len;
    b->chunk[i * 5 + 2] = (uint32_t)len;
    if (b->spill_fd >= 0) {
        static const char nul = 0;
        if ((len && !fti__st_fd_write(b->spill_fd, text, len)) ||
            !fti__st_fd_write(b->spill_fd, &nul, 1))
            return b->rc = fti__errno_result(errno); /* ENOSPC */
        b->spill_len += len + 1;
    } else {
        fti_buf_append(&b->strs, text, len);
        fti_buf_putc(&b->strs, 0);
        if (b->strs.oom) return b->rc = FTI_ERR_NOMEM;
    }
    b->strs_len += len + 1;
    /* terms of the chunk, then counted */
    for (;;) {
        uint64_t h = fti__st_term_hash(text, len, &pos, &ok);
        if (!ok) break;
        if (m == b->scratch_cap) {
            size_t cap = b->scratch_cap ? b->scratch_cap * 2 : 256;
            uint64_t *p = (uint64_t *)fti_realloc(b->scratch, cap * sizeof *p);
            if (!p) return b->rc = FTI_ERR_NOMEM;
            b->scratch = p;
            b->scratch_cap = cap;
        }
        b->scratch[m++] = h;
    }
    b->chunk[i * 5 + 3] = (uint32_t)m;
    if (b->n_tp > 0xFFFFFFF0u - m) return b->rc = FTI_ERR_LIMIT;
    b->chunk[i * 5 + 4] = (uint32_t)b->n_tp;
    b->total_len += (double)m;
    b->n_chunks++;
    /* count each distinct term of the chunk with a small open-addressing table (term
     * frequencies in first-seen order; the order within a chunk does not matter) */
    {
        size_t tcap = 16, q;
        fti__st_tp *tab;
        while (tcap < 2 * m) tcap *= 2;
        if (tcap > b->tab_cap) {
            fti__st_tp *p = (fti__st_tp *)fti_realloc(b->tab, tcap * sizeof *p);
            if (!p) return b->rc = FTI_ERR_NOMEM;
            b->tab = p;
            b->tab_cap = tcap;
        }
        tab = b->tab;
        for (q = 0; q < tcap; q++) tab[q].tf = 0;
        for (k = 0; k < m; k++) {
            uint64_t h = b->scratch[k];
            size_t slot = (size_t)(h ^ (h >> 31)) & (tcap - 1);
            while (tab[slot].tf && tab[slot].term != h) slot = (slot + 1) & (tcap - 1);
            if (!tab[slot].tf) {
                tab[slot].term = h;
                tab[slot].chunk = (uint32_t)k; /* first position, for the order */
            }
            tab[slot].tf++;
        }
        for (k = 0; k < m; k++) {
            uint64_t h = b->scratch[k];
            size_t slot = (size_t)(h ^ (h >> 31)) & (tcap - 1);
            uint32_t t;
            while (tab[slot].term != h) slot = (slot + 1) & (tcap - 1);
            if (tab[slot].chunk != (uint32_t)k) continue; /* not its first occurrence */
            if (b->n_blocks == 1 && b->n_tp == b->cap0 && b->cap0 < FTI__ST_POST_BLOCK) {
                /* the first block grows to its whole size */
                size_t cap = b->cap0 * 4 < FTI__ST_POST_BLOCK ? b->cap0 * 4 : FTI__ST_POST_BLOCK;
                uint32_t *p = (uint32_t *)fti_realloc(b->post[0], cap * 2 * sizeof(uint32_t));
                if (!p) return b->rc = FTI_ERR_NOMEM;
                b->post[0] = p;
                b->cap0 = cap;
            } else if (b->post_fd >= 0 && b->n_blocks == 1 &&
                       b->n_tp % FTI__ST_POST_BLOCK == 0) {
                /* the buffer block is full: to the file */
                if (!fti__st_fd_write(b->post_fd, b->post[0],
                                      FTI__ST_POST_BLOCK * 2 * sizeof(uint32_t)))
                    return b->rc = fti__errno_result(errno);
            } else if (b->n_tp == b->n_blocks * FTI__ST_POST_BLOCK) {
                size_t bcap = b->n_blocks ? FTI__ST_POST_BLOCK : 1024;
                if (b->n_blocks == b->cap_blocks) {
                    size_t cap = b->cap_blocks ? b->cap_blocks * 2 : 16;
                    uint32_t **p = (uint32_t **)fti_realloc(b->post, cap * sizeof *p);
                    if (!p) return b->rc = FTI_ERR_NOMEM;
                    b->post = p;
                    b->cap_blocks = cap;
                }
                b->post[b->n_blocks] = (uint32_t *)fti_malloc(bcap * 2 * sizeof(uint32_t));
                if (!b->post[b->n_blocks]) return b->rc = FTI_ERR_NOMEM;
                if (!b->n_blocks) b->cap0 = bcap;
                b->n_blocks++;
            }
            t = fti__st_bm25b_term(b, h);
            if (t == 0xFFFFFFFFu) return b->rc = FTI_ERR_NOMEM;
            b->df[t]++;
            {
                uint32_t *pp = b->post[b->post_fd >= 0 ? 0 : b->n_tp / FTI__ST_POST_BLOCK] +
                               (b->n_tp % FTI__ST_POST_BLOCK) * 2;
                pp[0] = t;
                pp[1] = tab[slot].tf;
            }
            b->n_tp++;
        }
    }
    return FTI_OK;
}

typedef fti_result (*fti__st_emit_fn)(void *ctx, const void *data, size_t n);

/* Emits the index file (see the layout above) through emit, in pieces. The postings are grouped
 * by term (terms sorted by hash, each term's postings in chunk order) a range of terms at a time,
 * so the grouping needs only a fraction of the postings' size on top of them. */
static fti_result fti__st_bm25b_finish(fti__st_bm25b *b, fti__st_emit_fn emit, void *ctx) {
    unsigned char hdr[FTI__ST_BM25_HDR];
    uint64_t off_docs = FTI__ST_BM25_HDR, off_chunks, off_terms, off_post, off_str;
    size_t n_terms = b->n_terms, i, n_tp = b->n_tp, n_docs = b->n_docs, n_chunks = b->n_chunks;
    unsigned char blk[4096];
    size_t bl = 0;
    fti__st_tp *u = NULL;
    uint32_t *rank = NULL, *start = NULL, *out = NULL;
    fti_result rc;
    if (b->rc != FTI_OK) return b->rc;
    if (b->strs.oom) return FTI_ERR_NOMEM;
    if (b->post_fd >= 0 && n_tp) {
        /* the last block, still in the buffer, to the file too */
        size_t in_buf = n_tp - ((n_tp - 1) / FTI__ST_POST_BLOCK) * FTI__ST_POST_BLOCK;
        if (!fti__st_fd_write(b->post_fd, b->post[0], in_buf * 8))
            return fti__errno_result(errno);
    }
    /* the hash table is not needed any more */
    fti_free(b->keys);
    fti_free(b->idx_of);
    b->keys = NULL;
    b->idx_of = NULL;
    u = (fti__st_tp *)fti_malloc((n_terms + 1) * sizeof *u);
    rank = (uint32_t *)fti_malloc((n_terms + 1) * sizeof *rank);
    start = (uint32_t *)fti_malloc((n_terms + 1) * sizeof *start);
    if (!u || !rank || !start) {
        rc = FTI_ERR_NOMEM;
        goto fail;
    }
    for (i = 0; i < n_terms; i++) {
        u[i].term = b->term_hash[i];
        u[i].chunk = (uint32_t)i;
    }
    qsort(u, n_terms, sizeof *u, fti__st_tp_cmp);
    {
        uint32_t acc = 0;
        for (i = 0; i < n_terms; i++) {
            rank[u[i].chunk] = (uint32_t)i;
            start[i] = acc;
            acc += b->df[u[i].chunk];
        }
    }
    off_chunks = off_docs + (uint64_t)n_docs * 20;
    off_terms = off_chunks + (uint64_t)n_chunks * 16;
    off_post = off_terms + (uint64_t)n_terms * 16;
    off_str = off_post + (uint64_t)n_tp * 8;
    memset(hdr, 0, sizeof hdr);
    memcpy(hdr, "FTIBM25", 8);
    fti_store_u32(hdr + 8, 1);
    fti_store_u32(hdr + 12, (uint32_t)n_docs);
    fti_store_u32(hdr + 16, (uint32_t)n_chunks);
    fti_store_u32(hdr + 20, (uint32_t)n_terms);
    fti_store_f32(hdr + 24, n_chunks ? (float)(b->total_len / (double)n_chunks) : 0.0f);
    fti_store_f32(hdr + 28, FTI__ST_BM25_K1);
    fti_store_f32(hdr + 32, FTI__ST_BM25_B);
    fti_store_u64(hdr + 40, (uint64_t)n_tp);
    fti_store_u64(hdr + 48, off_docs);
    fti_store_u64(hdr + 56, off_chunks);
    fti_store_u64(hdr + 64, off_terms);
    fti_store_u64(hdr + 72, off_post);
    fti_store_u64(hdr + 80, off_str);
    fti_store_u64(hdr + 88, b->strs_len);
    rc = emit(ctx, hdr, sizeof hdr);
#define FTI__ST_BLK_U32(v)                                                                         \
    do {                                                                                           \
        if (bl + 4 > sizeof blk) {                                                                 \
            if (rc == FTI_OK) rc = emit(ctx, blk, bl);                                             \
            bl = 0;                                                                                \
        }                                                                                          \
        fti_store_u32(blk + bl, (uint32_t)(v));                                                    \
        bl += 4;                                                                                   \
    } while (0)
    for (i = 0; i < n_docs * 5; i++) FTI__ST_BLK_U32(b->doc_str[i]);
    for (i = 0; i < n_chunks; i++) {
        FTI__ST_BLK_U32(b->chunk[i * 5 + 0]);
        FTI__ST_BLK_U32(b->chunk[i * 5 + 1]);
        FTI__ST_BLK_U32(b->chunk[i * 5 + 2]);
        FTI__ST_BLK_U32(b->chunk[i * 5 + 3]);
    }
    for (i = 0; i < n_terms; i++) {
        FTI__ST_BLK_U32(u[i].term & 0xFFFFFFFFu);
        FTI__ST_BLK_U32(u[i].term >> 32);
        FTI__ST_BLK_U32(start[i]);
        FTI__ST_BLK_U32(b->df[u[i].chunk]);
    }
    if (bl && rc == FTI_OK) rc = emit(ctx, blk, bl);
    bl = 0;
    /* postings: terms [r0, r1) at a time, so that a range holds about an eighth of them */
    {
        size_t per = n_tp / 8 + 4096, r0 = 0;
        out = (uint32_t *)fti_malloc((per < n_tp ? per : n_tp + 1) * 2 * sizeof *out + 8);
        if (!out && rc == FTI_OK) rc = FTI_ERR_NOMEM;
        while (rc == FTI_OK && r0 < n_terms) {
            size_t r1 = r0, c, total;
            uint32_t base = start[r0];
            /* at least one term per range, even one with more postings than `per` */
            while (r1 < n_terms && (r1 == r0 || (size_t)(start[r1] - base) +
                                                        b->df[u[r1].chunk] <= per))
                r1++;
            total = (r1 < n_terms ? start[r1] : (uint32_t)n_tp) - base;
            if (total > (per < n_tp ? per : n_tp + 1)) {
                uint32_t *p = (uint32_t *)fti_realloc(out, total * 2 * sizeof *out + 8);
                if (!p) {
                    rc = FTI_ERR_NOMEM;
                    break;
                }
                out = p;
                per = total;
            }
            {
                /* fill: walk the postings in chunk order; a term's next slot is start[] + seen */
                uint32_t *fill = (uint32_t *)fti_calloc(r1 - r0 + 1, sizeof *fill);
                if (!fill) {
                    rc = FTI_ERR_NOMEM;
                    break;
                }
                size_t q = 0, bi, nblk = (n_tp + FTI__ST_POST_BLOCK - 1) / FTI__ST_POST_BLOCK;
                c = 0;
                for (bi = 0; bi < nblk && rc == FTI_OK; bi++) {
                    size_t qe = (bi + 1) * FTI__ST_POST_BLOCK < n_tp
                                    ? (bi + 1) * FTI__ST_POST_BLOCK
                                    : n_tp;
                    const uint32_t *blkp = b->post[b->post_fd >= 0 ? 0 : bi];
                    if (b->post_fd >= 0 &&
                        !fti__st_fd_pread_op(b->post_fd, b->post[0], (qe - q) * 8,
                                             (uint64_t)bi * FTI__ST_POST_BLOCK * 8,
                                             FTI__IO_READ | FTI__IO_SCRATCH)) {
                        rc = FTI_ERR_IO;
                        break;
                    }
                    for (; q < qe; q++) {
                        const uint32_t *pp = blkp + (q % FTI__ST_POST_BLOCK) * 2;
                        uint32_t rk;
                        size_t slot;
                        /* the chunk of posting q */
                        while (c + 1 < n_chunks && b->chunk[(c + 1) * 5 + 4] <= q) c++;
                        rk = rank[pp[0]];
                        if (rk < r0 || rk >= r1) continue;
                        slot = start[rk] - base + fill[rk - r0]++;
                        out[slot * 2] = (uint32_t)c;
                        out[slot * 2 + 1] = pp[1];
                    }
                }
                fti_free(fill);
            }
            for (c = 0; c < total * 2; c++) FTI__ST_BLK_U32(out[c]);
            r0 = r1;
        }
    }
#undef FTI__ST_BLK_U32
    if (bl && rc == FTI_OK) rc = emit(ctx, blk, bl);
    if (rc == FTI_OK && b->strs.len) rc = emit(ctx, b->strs.data, b->strs.len);
    if (rc == FTI_OK && b->spill_fd >= 0) {
        uint64_t off = 0;
        char *tmp = (char *)fti_malloc((size_t)1 << 20);
        if (!tmp) rc = FTI_ERR_NOMEM;
        while (rc == FTI_OK && off < b->spill_len) {
            size_t n = b->spill_len - off < ((uint64_t)1 << 20) ? (size_t)(b->spill_len - off)
                                                                : (size_t)1 << 20;
            if (!fti__st_fd_pread_op(b->spill_fd, tmp, n, off, FTI__IO_READ | FTI__IO_SCRATCH))
                rc = FTI_ERR_IO;
            else
                rc = emit(ctx, tmp, n);
            off += n;
        }
        fti_free(tmp);
    }
fail:
    fti_free(u);
    fti_free(rank);
    fti_free(start);
    fti_free(out);
    return rc;
}

static fti_result fti__st_emit_buf(void *ctx, const void *data, size_t n) {
    fti_buf *out = (fti_buf *)ctx;
    fti_buf_append(out, data, n);
    return out->oom ? FTI_ERR_NOMEM : FTI_OK;
}

FTIDEF fti_result fti_bm25_build(fti_buf *out, const fti_chunk_in *chunks, size_t n_chunks,
                                 const fti_doc_meta *docs, size_t n_docs, fti_error *err) {
    fti__st_bm25b b;
    fti_result rc;
    size_t i;
    if (!out || (n_chunks && !chunks) || (n_docs && !docs))
        return fti_error_set(err, FTI_ERR_INVALID, "bm25: bad arguments");
    if (n_chunks > 0xFFFFFFF0u || n_docs > 0xFFFFFFF0u)
        return fti_error_set(err, FTI_ERR_LIMIT, "bm25: too many chunks or documents");
    rc = fti__st_bm25b_init(&b, docs, n_docs, -1, -1);
    for (i = 0; i < n_chunks && rc == FTI_OK; i++) {
        rc = fti__st_bm25b_add(&b, chunks[i].text, chunks[i].len, chunks[i].doc);
        if (rc == FTI_ERR_INVALID)
            fti_error_set(err, rc, "bm25: chunk %lu refers to doc %lu >= %lu", (unsigned long)i,
                          (unsigned long)chunks[i].doc, (unsigned long)n_docs);
    }
    out->len = 0;
    if (rc == FTI_OK) rc = fti__st_bm25b_finish(&b, fti__st_emit_buf, out);
    fti__st_bm25b_free(&b);
    if (rc == FTI_ERR_NOMEM) fti_error_set(err, rc, "bm25: out of memory");
    if (rc == FTI_ERR_LIMIT) fti_error_set(err, rc, "bm25: text of the chunks exceeds 4 GiB");
    return rc;
}

FTIDEF fti_result fti_bm25_write(const char *path, const fti_chunk_in *chunks, size_t n_chunks,
                                 const fti_doc_meta *docs, size_t n_docs, fti_error *err) {
    fti_buf b;
    fti_result rc;
    memset(&b, 0, sizeof b);
    rc = fti_bm25_build(&b, chunks, n_chunks, docs, n_docs, err);
    if (rc == FTI_OK) rc = fti_file_write_atomic(path, b.data, b.len, err);
    fti_buf_free(&b);
    return rc;
}

/* Checks that [off, off + count*size) lies inside len. */
static int fti__st_range_ok(uint64_t off, uint64_t count, uint64_t size, uint64_t len) {
    uint64_t n;
    if (count && size > UINT64_MAX / count) return 0;
    n = count * size;
    return off <= len && n <= len - off;
}

/* Validates a mapped index image; fills ix. */
static fti_result fti__st_bm25_check(fti_bm25 *ix, const unsigned char *p, size_t len,
                                     const char *path, fti_error *err) {
    fti_reader r = fti_reader_make(p, len);
    const void *magic = fti_read_bytes(&r, 8);
    uint32_t version, i;
    uint64_t off_docs, off_chunks, off_terms, off_post, off_str, prev = 0;
    if (!magic || memcmp(magic, "FTIBM25", 8) != 0 || len < FTI__ST_BM25_HDR)
        return fti_error_set(err, FTI_ERR_FORMAT, "%s: not a BM25 index (bad magic)", path);
    version = fti_read_u32(&r);
    if (version != 1)
        return fti_error_set(err, FTI_ERR_UNSUPPORTED, "%s: index version %u", path, version);
    ix->n_docs = fti_read_u32(&r);
    ix->n_chunks = fti_read_u32(&r);
    ix->n_terms = fti_read_u32(&r);
    ix->avg_len = fti_read_f32(&r);
    ix->k1 = fti_read_f32(&r);
    ix->b = fti_read_f32(&r);
    (void)fti_read_u32(&r);
    ix->n_postings = fti_read_u64(&r);
    off_docs = fti_read_u64(&r);
    off_chunks = fti_read_u64(&r);
    off_terms = fti_read_u64(&r);
    off_post = fti_read_u64(&r);
    off_str = fti_read_u64(&r);
    ix->strings_len = fti_read_u64(&r);
    if (r.err || !fti__st_range_ok(off_docs, ix->n_docs, 20, len) ||
        !fti__st_range_ok(off_chunks, ix->n_chunks, 16, len) ||
        !fti__st_range_ok(off_terms, ix->n_terms, 16, len) ||
        !fti__st_range_ok(off_post, ix->n_postings, 8, len) ||
        !fti__st_range_ok(off_str, ix->strings_len, 1, len))
        return fti_error_set(err, FTI_ERR_FORMAT, "%s: a section lies outside the file (%lu bytes)",
                             path, (unsigned long)len);
    if (!(ix->avg_len >= 0.0f) || !(ix->k1 >= 0.0f && ix->k1 < 100.0f) ||
        !(ix->b >= 0.0f && ix->b <= 1.0f))
        return fti_error_set(err, FTI_ERR_FORMAT, "%s: bad BM25 parameters", path);
    ix->docs = p + off_docs;
    ix->chunks = p + off_chunks;
    ix->terms = p + off_terms;
    ix->postings = p + off_post;
    ix->strings = (const char *)p + off_str;
    if (ix->strings_len == 0 || ix->strings[ix->strings_len - 1] != 0) {
        if (ix->n_docs || ix->n_chunks)
            return fti_error_set(err, FTI_ERR_FORMAT, "%s: string table not terminated", path);
    }
    for (i = 0; i < ix->n_docs * 5u; i++)
        if (fti_load_u32(ix->docs + (size_t)i * 4) >= ix->strings_len)
            return fti_error_set(err, FTI_ERR_FORMAT, "%s: doc string %u out of range", path, i);
    for (i = 0; i < ix->n_chunks; i++) {
        const unsigned char *c = ix->chunks + (size_t)i * 16;
        uint32_t doc = fti_load_u32(c), off = fti_load_u32(c + 4), n = fti_load_u32(c + 8);
        if (doc >= ix->n_docs || off > ix->strings_len || n > ix->strings_len - off)
            return fti_error_set(err, FTI_ERR_FORMAT, "%s: chunk %u out of range", path, i);
    }
    for (i = 0; i < ix->n_terms; i++) {
        const unsigned char *t = ix->terms + (size_t)i * 16;
        uint64_t h = fti_load_u64(t);
        uint32_t first = fti_load_u32(t + 8), df = fti_load_u32(t + 12);
        if ((i > 0 && h <= prev) || df == 0 || first > ix->n_postings ||
            df > ix->n_postings - first)
            return fti_error_set(err, FTI_ERR_FORMAT, "%s: term %u out of order or range", path, i);
        prev = h;
    }
    for (i = 0; i < ix->n_postings; i++)
        if (fti_load_u32(ix->postings + (size_t)i * 8) >= ix->n_chunks)
            return fti_error_set(err, FTI_ERR_FORMAT, "%s: posting %u out of range", path, i);
    return FTI_OK;
}

FTIDEF fti_result fti_bm25_open(fti_bm25 **out, const char *path, fti_error *err) {
    fti_bm25 *ix;
    fti_result rc;
    if (!out || !path) return fti_error_set(err, FTI_ERR_INVALID, "bm25_open: bad arguments");
    *out = NULL;
    ix = (fti_bm25 *)fti_calloc(1, sizeof *ix);
    if (!ix) return fti_error_set(err, FTI_ERR_NOMEM, "bm25_open: out of memory");
    rc = fti_map_open(&ix->map, path, err);
    if (rc != FTI_OK) {
        fti_free(ix);
        return rc;
    }
    ix->p = (const unsigned char *)ix->map.data;
    rc = fti__st_bm25_check(ix, ix->p, ix->map.len, path, err);
    if (rc != FTI_OK) {
        fti_map_close(&ix->map);
        fti_free(ix);
        return rc;
    }
    *out = ix;
    return FTI_OK;
}

FTIDEF void fti_bm25_close(fti_bm25 *ix) {
    if (!ix) return;
    fti_map_close(&ix->map);
    fti_free(ix);
}

FTIDEF size_t fti_bm25_chunks(const fti_bm25 *ix) {
    return ix ? ix->n_chunks : 0;
}

FTIDEF int fti_bm25_chunk(const fti_bm25 *ix, size_t i, fti_search_hit *hit) {
    const unsigned char *c, *d;
    if (!ix || !hit || i >= ix->n_chunks) return 0;
    c = ix->chunks + i * 16;
    hit->score = 0.0f;
    hit->chunk = (uint32_t)i;
    hit->doc = fti_load_u32(c);
    hit->text = ix->strings + fti_load_u32(c + 4);
    hit->text_len = fti_load_u32(c + 8);
    d = ix->docs + (size_t)hit->doc * 20;
    hit->doc_id = ix->strings + fti_load_u32(d);
    hit->title = ix->strings + fti_load_u32(d + 4);
    hit->source = ix->strings + fti_load_u32(d + 8);
    hit->author = ix->strings + fti_load_u32(d + 12);
    hit->date = ix->strings + fti_load_u32(d + 16);
    return 1;
}

/* Index of the term with hash h, or -1. */
static long fti__st_bm25_term(const fti_bm25 *ix, uint64_t h) {
    size_t lo = 0, hi = ix->n_terms;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        uint64_t v = fti_load_u64(ix->terms + mid * 16);
        if (v == h) return (long)mid;
        if (v < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

FTIDEF size_t fti_bm25_query(const fti_bm25 *ix, const char *query, size_t query_len, size_t k,
                             fti_search_hit *hits) {
    float *score;
    uint64_t terms[64];
    size_t n_terms = 0, pos = 0, i, n_hits = 0;
    int ok;
    if (!ix || !query || !hits || k == 0 || ix->n_chunks == 0) return 0;
    for (;;) {
        uint64_t h = fti__st_term_hash(query, query_len, &pos, &ok);
        size_t j;
        if (!ok) break;
        for (j = 0; j < n_terms; j++)
            if (terms[j] == h) break;
        if (j == n_terms && n_terms < 64) terms[n_terms++] = h;
    }
    if (n_terms == 0) return 0;
    score = (float *)fti_calloc(ix->n_chunks, sizeof *score);
    if (!score) return 0;
    for (i = 0; i < n_terms; i++) {
        long t = fti__st_bm25_term(ix, terms[i]);
        const unsigned char *te;
        uint32_t first, df, p;
        double idf;
        if (t < 0) continue;
        te = ix->terms + (size_t)t * 16;
        first = fti_load_u32(te + 8);
        df = fti_load_u32(te + 12);
        idf = log(1.0 + ((double)ix->n_chunks - df + 0.5) / ((double)df + 0.5));
        for (p = 0; p < df; p++) {
            const unsigned char *po = ix->postings + ((size_t)first + p) * 8;
            uint32_t c = fti_load_u32(po), tf = fti_load_u32(po + 4);
            double dl = fti_load_u32(ix->chunks + (size_t)c * 16 + 12);
            double norm = ix->k1 * (1.0 - ix->b + ix->b * dl / (ix->avg_len > 0 ? ix->avg_len : 1));
            score[c] += (float)(idf * tf * (ix->k1 + 1.0) / (tf + norm));
        }
    }
    /* top-k by insertion into the sorted hits array (k is small) */
    for (i = 0; i < ix->n_chunks; i++) {
        size_t j;
        if (score[i] <= 0.0f) continue;
        if (n_hits == k && score[i] <= hits[k - 1].score) continue;
        j = n_hits < k ? n_hits++ : k - 1;
        while (j > 0 && hits[j - 1].score < score[i]) {
            hits[j] = hits[j - 1];
            j--;
        }
        fti_bm25_chunk(ix, i, &hits[j]);
        hits[j].score = score[i];
    }
    fti_free(score);
    return n_hits;
}

/* === token shards ============================================================================ */

/* Builds a shard image (header + ids) into out. */
static fti_result fti__st_shard_image(fti_buf *out, const uint32_t *ids, size_t n,
                                      uint32_t vocab_size, uint32_t eot_id, fti_error *err) {
    unsigned char hdr[FTI_SHARD_HEADER_BYTES];
    uint32_t width = vocab_size <= 65536 ? 2 : 4;
    size_t i, bytes;
    unsigned char *p;
    if (n && !ids) return fti_error_set(err, FTI_ERR_INVALID, "shard: bad arguments");
    if (!fti_size_mul(n, width, &bytes) || !fti_size_add(bytes, sizeof hdr, &bytes))
        return fti_error_set(err, FTI_ERR_LIMIT, "shard: %lu tokens overflow", (unsigned long)n);
    out->len = 0;
    if (!fti_buf_reserve(out, bytes))
        return fti_error_set(err, FTI_ERR_NOMEM, "shard: out of memory");
    memset(hdr, 0, sizeof hdr);
    fti_buf_append(out, hdr, sizeof hdr);
    p = (unsigned char *)out->data + sizeof hdr;
    for (i = 0; i < n; i++) {
        if (ids[i] >= vocab_size)
            return fti_error_set(err, FTI_ERR_INVALID, "shard: token %lu = %u >= vocab %u",
                                 (unsigned long)i, ids[i], vocab_size);
        if (width == 2)
            fti_store_u16(p + i * 2, (uint16_t)ids[i]);
        else
            fti_store_u32(p + i * 4, ids[i]);
    }
    out->len = bytes;
    out->data[bytes] = 0;
    memcpy(hdr, "FTITOKS", 8);
    fti_store_u32(hdr + 8, 1);
    fti_store_u32(hdr + 12, width);
    fti_store_u64(hdr + 16, (uint64_t)n);
    fti_store_u32(hdr + 24, vocab_size);
    fti_store_u32(hdr + 28, eot_id);
    fti__st_sha256(p, n * width, hdr + 32);
    memcpy(out->data, hdr, sizeof hdr);
    return FTI_OK;
}

FTIDEF fti_result fti_shard_write(const char *path, const uint32_t *ids, size_t n,
                                  uint32_t vocab_size, uint32_t eot_id, fti_error *err) {
    fti_buf b;
    fti_result rc;
    if (!path) return fti_error_set(err, FTI_ERR_INVALID, "shard: no path");
    memset(&b, 0, sizeof b);
    rc = fti__st_shard_image(&b, ids, n, vocab_size, eot_id, err);
    if (rc == FTI_OK) rc = fti_file_write_atomic(path, b.data, b.len, err);
    fti_buf_free(&b);
    return rc;
}

FTIDEF fti_result fti_shard_open(fti_token_shard *s, const char *path, int check_sum,
                                 fti_error *err) {
    fti_reader r;
    const void *magic, *sum;
    uint32_t version;
    fti_result rc;
    if (!s || !path) return fti_error_set(err, FTI_ERR_INVALID, "shard_open: bad arguments");
    memset(s, 0, sizeof *s);
    rc = fti_map_open(&s->map_, path, err);
    if (rc != FTI_OK) return rc;
    r = fti_reader_make(s->map_.data, s->map_.len);
    magic = fti_read_bytes(&r, 8);
    version = fti_read_u32(&r);
    s->width = fti_read_u32(&r);
    s->count = fti_read_u64(&r);
    s->vocab_size = fti_read_u32(&r);
    s->eot_id = fti_read_u32(&r);
    sum = fti_read_bytes(&r, 32);
    if (r.err || !magic || memcmp(magic, "FTITOKS", 8) != 0) {
        rc = fti_error_set(err, FTI_ERR_FORMAT, "%s: not a token shard (bad magic)", path);
    } else if (version != 1) {
        rc = fti_error_set(err, FTI_ERR_UNSUPPORTED, "%s: shard version %u", path, version);
    } else if (s->width != 2 && s->width != 4) {
        rc = fti_error_set(err, FTI_ERR_FORMAT, "%s: token width %u", path, s->width);
    } else if (s->count > (UINT64_MAX - 64) / s->width ||
               (uint64_t)s->map_.len != FTI_SHARD_HEADER_BYTES + s->count * s->width) {
        rc = fti_error_set(err, FTI_ERR_FORMAT, "%s: %lu tokens of %u bytes do not fit %lu bytes",
                           path, (unsigned long)s->count, s->width, (unsigned long)s->map_.len);
    } else {
        s->data = (const unsigned char *)s->map_.data + FTI_SHARD_HEADER_BYTES;
        if (check_sum) {
            unsigned char d[32];
            uint64_t i;
            fti__st_sha256(s->data, (size_t)(s->count * s->width), d);
            if (memcmp(d, sum, 32) != 0) {
                rc = fti_error_set(err, FTI_ERR_CHECKSUM, "%s: checksum mismatch", path);
            } else {
                for (i = 0; i < s->count; i++)
                    if (fti_shard_at(s, i) >= s->vocab_size) {
                        rc = fti_error_set(err, FTI_ERR_FORMAT, "%s: token %lu out of vocab", path,
                                           (unsigned long)i);
                        break;
                    }
            }
        }
    }
    if (rc != FTI_OK) {
        fti_map_close(&s->map_);
        memset(s, 0, sizeof *s);
    }
    return rc;
}

FTIDEF void fti_shard_close(fti_token_shard *s) {
    if (!s) return;
    fti_map_close(&s->map_);
    memset(s, 0, sizeof *s);
}

FTIDEF uint32_t fti_shard_at(const fti_token_shard *s, uint64_t i) {
    const unsigned char *p = s->data + (size_t)i * s->width;
    if (s->width == 2) return (uint32_t)p[0] | ((uint32_t)p[1] << 8);
    return fti_load_u32(p);
}

#endif /* FTI_NO_STORE */
