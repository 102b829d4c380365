/* === store: MinHash + LSH near-duplicates, chunking, BM25 index, token shards ============== */
#include "04_store.h"

#ifndef FTI_NO_STORE

/* === MinHash ================================================================================ */
/*
 * Shingles are word 3-grams over lowercased letter/digit words (documents with fewer words give
 * one shingle). Each shingle is hashed to 64 bits once; permutation i maps it to
 * mix(a_i * (x ^ c_i)) in 32 bits, with fixed odd a_i and c_i from a seeded generator, and the
 * signature keeps the minimum per permutation. The inner loop is plain 32-bit integer math that
 * compilers vectorize.
 */

typedef struct fti__mh_params {
    uint32_t a[FTI_MINHASH_PERMS];
    uint32_t c[FTI_MINHASH_PERMS];
} fti__mh_params;

static void fti__mh_init(fti__mh_params *p) {
    fti_rng r;
    size_t i;
    fti_rng_seed(&r, 0x6d696e68617368ull, 7);
    for (i = 0; i < FTI_MINHASH_PERMS; i++) {
        p->a[i] = fti_rng_u32(&r) | 1u;
        p->c[i] = fti_rng_u32(&r);
    }
}

static void fti__mh_add(const fti__mh_params *p, uint32_t *sig, uint64_t h) {
    uint32_t x = (uint32_t)(h ^ (h >> 32));
    size_t i;
    for (i = 0; i < FTI_MINHASH_PERMS; i++) {
        uint32_t v = (x ^ p->c[i]) * p->a[i];
        v ^= v >> 15;
        v *= 0x2c1b3c6dU;
        v ^= v >> 12;
        sig[i] = v < sig[i] ? v : sig[i];
    }
}

/* Word hash state: FNV-1a over lowercased ASCII bytes (non-ASCII bytes kept as is). */
static void fti__minhash(const fti__mh_params *p, const char *t, size_t n, uint32_t *sig) {
    uint64_t w[3] = {0, 0, 0};
    size_t i = 0, n_words = 0, n_sh = 0;
    for (i = 0; i < FTI_MINHASH_PERMS; i++) sig[i] = 0xFFFFFFFFu;
    i = 0;
    while (i < n) {
        uint64_t h = 1469598103934665603ull;
        unsigned char c = (unsigned char)t[i];
        if (!(fti__is_alnum(c) || c >= 0x80)) {
            i++;
            continue;
        }
        while (i < n) {
            c = (unsigned char)t[i];
            if (!(fti__is_alnum(c) || c >= 0x80)) break;
            h = (h ^ (uint64_t)fti__lc(c)) * 1099511628211ull;
            i++;
        }
        w[0] = w[1];
        w[1] = w[2];
        w[2] = h;
        n_words++;
        if (n_words >= 3) {
            uint64_t s = w[0] * 0x9E3779B97F4A7C15ull ^ (w[1] * 0xC2B2AE3D27D4EB4Full + w[2]);
            s ^= s >> 29;
            fti__mh_add(p, sig, s);
            n_sh++;
        }
    }
    if (n_sh == 0 && n_words > 0) fti__mh_add(p, sig, w[0] * 31 + w[1] * 17 + w[2]);
}

static double fti__mh_jaccard(const uint32_t *a, const uint32_t *b) {
    size_t i, eq = 0;
    for (i = 0; i < FTI_MINHASH_PERMS; i++) eq += a[i] == b[i];
    return (double)eq / FTI_MINHASH_PERMS;
}

/* Rows per band for a threshold: the banding's S-curve midpoint (1/b)^(1/r) just below it. */
static int fti__lsh_rows(double threshold) {
    static const int rows[] = {1, 2, 4, 8, 16, 32};
    int best = 8, k;
    for (k = 0; k < 6; k++) {
        double b = (double)(FTI_MINHASH_PERMS / rows[k]);
        double mid = pow(1.0 / b, 1.0 / rows[k]);
        if (mid <= threshold - 0.03) best = rows[k];
    }
    return best;
}

typedef struct fti__band_key {
    uint64_t key;
    uint32_t doc;
} fti__band_key;

static int fti__band_cmp(const void *a, const void *b) {
    const fti__band_key *x = (const fti__band_key *)a, *y = (const fti__band_key *)b;
    if (x->key != y->key) return x->key < y->key ? -1 : 1;
    return x->doc < y->doc ? -1 : (x->doc > y->doc);
}

static uint32_t fti__uf_find(uint32_t *parent, uint32_t x) {
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
static fti_result fti__near_dups(uint32_t *const *sigs, size_t n, double threshold,
                                 uint32_t *root) {
    int rows = fti__lsh_rows(threshold), bands = FTI_MINHASH_PERMS / rows, b;
    fti__band_key *keys;
    size_t i, m;
    for (i = 0; i < n; i++) root[i] = (uint32_t)i;
    if (n < 2) return FTI_OK;
    keys = (fti__band_key *)fti_malloc(n * sizeof *keys);
    if (!keys) return FTI_ERR_NOMEM;
    for (b = 0; b < bands; b++) {
        m = 0;
        for (i = 0; i < n; i++) {
            if (!sigs[i]) continue;
            keys[m].key = fti_hash64(sigs[i] + b * rows, (size_t)rows * sizeof(uint32_t),
                                     (uint64_t)b);
            keys[m].doc = (uint32_t)i;
            m++;
        }
        qsort(keys, m, sizeof *keys, fti__band_cmp);
        for (i = 0; i < m;) {
            size_t j = i + 1, k, q;
            while (j < m && keys[j].key == keys[i].key) j++;
            for (k = i; k < j && k < i + 64; k++) {
                for (q = k + 1; q < j; q++) {
                    uint32_t x = keys[k].doc, y = keys[q].doc, rx, ry;
                    rx = fti__uf_find(root, x);
                    ry = fti__uf_find(root, y);
                    if (rx == ry) continue;
                    if (fti__mh_jaccard(sigs[x], sigs[y]) >= threshold) {
                        if (rx < ry) root[ry] = rx;
                        else root[rx] = ry;
                    }
                }
            }
            i = j;
        }
    }
    for (i = 0; i < n; i++) root[i] = fti__uf_find(root, (uint32_t)i);
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
typedef size_t (*fti__count_fn)(void *ctx, const char *text, size_t len);

typedef struct fti__span {
    size_t off, len;
} fti__span;

typedef struct fti__spans {
    fti__span *v;
    size_t n, cap;
    int oom;
} fti__spans;

static void fti__spans_push(fti__spans *s, size_t off, size_t len) {
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        fti__span *p = (fti__span *)fti_realloc(s->v, cap * sizeof *p);
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
static void fti__segments(const char *t, size_t n, fti__spans *out) {
    size_t i = 0, start = 0;
    while (i < n) {
        char c = t[i];
        int cut = 0;
        if (c == '\n') cut = 1;
        else if ((c == '.' || c == '!' || c == '?') && i + 1 < n && (t[i + 1] == ' ' ||
                                                                      t[i + 1] == '\n'))
            cut = 1;
        else if (i - start >= 1024 && c == ' ')
            cut = 1;
        else if (i - start >= 4096)
            cut = 1;
        i++;
        if (cut) {
            while (i < n && (t[i] == ' ' || t[i] == '\n')) i++;
            fti__spans_push(out, start, i - start);
            start = i;
        }
    }
    if (start < n) fti__spans_push(out, start, n - start);
}

/* Appends the chunks of t[0..n) to out as (off, len) spans. */
static void fti__chunk_doc(const char *t, size_t n, size_t budget, size_t overlap,
                           fti__count_fn count, void *ctx, fti__spans *out) {
    fti__spans seg;
    size_t *ntok, i = 0;
    memset(&seg, 0, sizeof seg);
    fti__segments(t, n, &seg);
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
                fti__spans_push(out, off, e - off);
                off = e;
            }
            i++;
            continue;
        }
        while (j < seg.n && tok + ntok[j] <= budget) tok += ntok[j++];
        fti__spans_push(out, seg.v[i].off, seg.v[j - 1].off + seg.v[j - 1].len - seg.v[i].off);
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
#define FTI__BM25_HDR 128
#define FTI__BM25_K1 1.2f
#define FTI__BM25_B 0.75f

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
static uint64_t fti__term_hash(const char *t, size_t n, size_t *pos, int *ok) {
    size_t i = *pos, len = 0;
    unsigned char buf[64];
    *ok = 0;
    while (i < n && !(fti__is_alnum((unsigned char)t[i]) || (unsigned char)t[i] >= 0x80)) i++;
    if (i >= n) {
        *pos = n;
        return 0;
    }
    while (i < n && (fti__is_alnum((unsigned char)t[i]) || (unsigned char)t[i] >= 0x80)) {
        if (len < sizeof buf) buf[len++] = (unsigned char)fti__lc((unsigned char)t[i]);
        i++;
    }
    *pos = i;
    *ok = 1;
    return fti_hash64(buf, len, 0x626d3235ull);
}

typedef struct fti__tp {
    uint64_t term;
    uint32_t chunk;
    uint32_t tf;
} fti__tp;

static int fti__tp_cmp(const void *a, const void *b) {
    const fti__tp *x = (const fti__tp *)a, *y = (const fti__tp *)b;
    if (x->term != y->term) return x->term < y->term ? -1 : 1;
    return x->chunk < y->chunk ? -1 : (x->chunk > y->chunk);
}

static int fti__u64_cmp(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : (x > y);
}

static void fti__put_u32(fti_buf *b, uint32_t v) {
    unsigned char t[4];
    fti_store_u32(t, v);
    fti_buf_append(b, t, 4);
}
static void fti__put_u64(fti_buf *b, uint64_t v) {
    unsigned char t[8];
    fti_store_u64(t, v);
    fti_buf_append(b, t, 8);
}

static uint32_t fti__str_add(fti_buf *s, const char *v) {
    uint32_t off = (uint32_t)s->len;
    if (v) fti_buf_append(s, v, strlen(v));
    fti_buf_putc(s, 0);
    return off;
}

FTIDEF fti_result fti_bm25_build(fti_buf *out, const fti_chunk_in *chunks, size_t n_chunks,
                                 const fti_doc_meta *docs, size_t n_docs, fti_error *err) {
    fti__tp *tps = NULL;
    size_t n_tp = 0, cap_tp = 0, i, n_terms = 0;
    uint32_t *dl = NULL, *doc_str = NULL, *chunk_txt = NULL;
    fti_buf strs;
    double total_len = 0;
    uint64_t *scratch = NULL;
    size_t scratch_cap = 0;
    fti_result rc = FTI_ERR_NOMEM;
    if (!out || (n_chunks && !chunks) || (n_docs && !docs))
        return fti_error_set(err, FTI_ERR_INVALID, "bm25: bad arguments");
    if (n_chunks > 0xFFFFFFF0u || n_docs > 0xFFFFFFF0u)
        return fti_error_set(err, FTI_ERR_LIMIT, "bm25: too many chunks or documents");
    memset(&strs, 0, sizeof strs);
    dl = (uint32_t *)fti_calloc(n_chunks + 1, sizeof *dl);
    doc_str = (uint32_t *)fti_calloc(n_docs * 5 + 1, sizeof *doc_str);
    chunk_txt = (uint32_t *)fti_calloc(n_chunks + 1, sizeof *chunk_txt);
    if (!dl || !doc_str || !chunk_txt) goto fail;
    for (i = 0; i < n_docs; i++) {
        doc_str[i * 5 + 0] = fti__str_add(&strs, docs[i].doc_id);
        doc_str[i * 5 + 1] = fti__str_add(&strs, docs[i].title);
        doc_str[i * 5 + 2] = fti__str_add(&strs, docs[i].source);
        doc_str[i * 5 + 3] = fti__str_add(&strs, docs[i].author);
        doc_str[i * 5 + 4] = fti__str_add(&strs, docs[i].date);
    }
    for (i = 0; i < n_chunks; i++) {
        size_t pos = 0, m = 0, k;
        int ok;
        if (chunks[i].doc >= n_docs) {
            rc = fti_error_set(err, FTI_ERR_INVALID, "bm25: chunk %lu refers to doc %lu >= %lu",
                               (unsigned long)i, (unsigned long)chunks[i].doc,
                               (unsigned long)n_docs);
            goto fail;
        }
        chunk_txt[i] = (uint32_t)strs.len;
        fti_buf_append(&strs, chunks[i].text, chunks[i].len);
        fti_buf_putc(&strs, 0);
        /* terms of the chunk, sorted, then counted */
        for (;;) {
            uint64_t h = fti__term_hash(chunks[i].text, chunks[i].len, &pos, &ok);
            if (!ok) break;
            if (m == scratch_cap) {
                size_t cap = scratch_cap ? scratch_cap * 2 : 256;
                uint64_t *p = (uint64_t *)fti_realloc(scratch, cap * sizeof *p);
                if (!p) goto fail;
                scratch = p;
                scratch_cap = cap;
            }
            scratch[m++] = h;
        }
        dl[i] = (uint32_t)m;
        total_len += (double)m;
        qsort(scratch, m, sizeof *scratch, fti__u64_cmp);
        for (k = 0; k < m;) {
            size_t j = k + 1;
            while (j < m && scratch[j] == scratch[k]) j++;
            if (n_tp == cap_tp) {
                size_t cap = cap_tp ? cap_tp * 2 : 1024;
                fti__tp *p = (fti__tp *)fti_realloc(tps, cap * sizeof *p);
                if (!p) goto fail;
                tps = p;
                cap_tp = cap;
            }
            tps[n_tp].term = scratch[k];
            tps[n_tp].chunk = (uint32_t)i;
            tps[n_tp].tf = (uint32_t)(j - k);
            n_tp++;
            k = j;
        }
    }
    if (strs.oom) goto fail;
    if (strs.len > 0xFFFFFFF0u) {
        rc = fti_error_set(err, FTI_ERR_LIMIT, "bm25: text of the chunks exceeds 4 GiB");
        goto fail;
    }
    qsort(tps, n_tp, sizeof *tps, fti__tp_cmp);
    for (i = 0; i < n_tp; i++)
        if (i == 0 || tps[i].term != tps[i - 1].term) n_terms++;
    {
        unsigned char hdr[FTI__BM25_HDR];
        uint64_t off_docs = FTI__BM25_HDR, off_chunks, off_terms, off_post, off_str;
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
        fti_store_f32(hdr + 24, n_chunks ? (float)(total_len / (double)n_chunks) : 0.0f);
        fti_store_f32(hdr + 28, FTI__BM25_K1);
        fti_store_f32(hdr + 32, FTI__BM25_B);
        fti_store_u64(hdr + 40, (uint64_t)n_tp);
        fti_store_u64(hdr + 48, off_docs);
        fti_store_u64(hdr + 56, off_chunks);
        fti_store_u64(hdr + 64, off_terms);
        fti_store_u64(hdr + 72, off_post);
        fti_store_u64(hdr + 80, off_str);
        fti_store_u64(hdr + 88, (uint64_t)strs.len);
        out->len = 0;
        fti_buf_reserve(out, (size_t)off_str + strs.len);
        fti_buf_append(out, hdr, sizeof hdr);
        for (i = 0; i < n_docs * 5; i++) fti__put_u32(out, doc_str[i]);
        for (i = 0; i < n_chunks; i++) {
            size_t pos = 0;
            (void)pos;
            fti__put_u32(out, chunks[i].doc);
            fti__put_u32(out, chunk_txt[i]);
            fti__put_u32(out, (uint32_t)chunks[i].len);
            fti__put_u32(out, dl[i]);
        }
        for (i = 0; i < n_tp;) {
            size_t j = i + 1;
            while (j < n_tp && tps[j].term == tps[i].term) j++;
            fti__put_u64(out, tps[i].term);
            fti__put_u32(out, (uint32_t)i);
            fti__put_u32(out, (uint32_t)(j - i));
            i = j;
        }
        for (i = 0; i < n_tp; i++) {
            fti__put_u32(out, tps[i].chunk);
            fti__put_u32(out, tps[i].tf);
        }
        fti_buf_append(out, strs.data ? strs.data : "", strs.len);
        if (out->oom) goto fail;
    }
    rc = FTI_OK;
fail:
    if (rc == FTI_ERR_NOMEM) fti_error_set(err, rc, "bm25: out of memory");
    fti_free(tps);
    fti_free(dl);
    fti_free(doc_str);
    fti_free(chunk_txt);
    fti_free(scratch);
    fti_buf_free(&strs);
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
static int fti__range_ok(uint64_t off, uint64_t count, uint64_t size, uint64_t len) {
    uint64_t n;
    if (count && size > UINT64_MAX / count) return 0;
    n = count * size;
    return off <= len && n <= len - off;
}

/* Validates a mapped index image; fills ix. */
static fti_result fti__bm25_check(fti_bm25 *ix, const unsigned char *p, size_t len,
                                  const char *path, fti_error *err) {
    fti_reader r = fti_reader_make(p, len);
    const void *magic = fti_read_bytes(&r, 8);
    uint32_t version, i;
    uint64_t off_docs, off_chunks, off_terms, off_post, off_str, prev = 0;
    if (!magic || memcmp(magic, "FTIBM25", 8) != 0 || len < FTI__BM25_HDR)
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
    if (r.err || !fti__range_ok(off_docs, ix->n_docs, 20, len) ||
        !fti__range_ok(off_chunks, ix->n_chunks, 16, len) ||
        !fti__range_ok(off_terms, ix->n_terms, 16, len) ||
        !fti__range_ok(off_post, ix->n_postings, 8, len) ||
        !fti__range_ok(off_str, ix->strings_len, 1, len))
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
            return fti_error_set(err, FTI_ERR_FORMAT, "%s: term %u out of order or range", path,
                                 i);
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
    rc = fti__bm25_check(ix, ix->p, ix->map.len, path, err);
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

FTIDEF size_t fti_bm25_chunks(const fti_bm25 *ix) { return ix ? ix->n_chunks : 0; }

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
static long fti__bm25_term(const fti_bm25 *ix, uint64_t h) {
    size_t lo = 0, hi = ix->n_terms;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        uint64_t v = fti_load_u64(ix->terms + mid * 16);
        if (v == h) return (long)mid;
        if (v < h) lo = mid + 1;
        else hi = mid;
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
        uint64_t h = fti__term_hash(query, query_len, &pos, &ok);
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
        long t = fti__bm25_term(ix, terms[i]);
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
static fti_result fti__shard_image(fti_buf *out, const uint32_t *ids, size_t n,
                                   uint32_t vocab_size, uint32_t eot_id, fti_error *err) {
    unsigned char hdr[FTI_SHARD_HEADER_BYTES];
    uint32_t width = vocab_size <= 65536 ? 2 : 4;
    size_t i, bytes;
    unsigned char *p;
    if (n && !ids) return fti_error_set(err, FTI_ERR_INVALID, "shard: bad arguments");
    if (!fti_size_mul(n, width, &bytes) || !fti_size_add(bytes, sizeof hdr, &bytes))
        return fti_error_set(err, FTI_ERR_LIMIT, "shard: %lu tokens overflow", (unsigned long)n);
    out->len = 0;
    if (!fti_buf_reserve(out, bytes)) return fti_error_set(err, FTI_ERR_NOMEM, "shard: out of memory");
    memset(hdr, 0, sizeof hdr);
    fti_buf_append(out, hdr, sizeof hdr);
    p = (unsigned char *)out->data + sizeof hdr;
    for (i = 0; i < n; i++) {
        if (ids[i] >= vocab_size)
            return fti_error_set(err, FTI_ERR_INVALID, "shard: token %lu = %u >= vocab %u",
                                 (unsigned long)i, ids[i], vocab_size);
        if (width == 2) fti_store_u16(p + i * 2, (uint16_t)ids[i]);
        else fti_store_u32(p + i * 4, ids[i]);
    }
    out->len = bytes;
    out->data[bytes] = 0;
    memcpy(hdr, "FTITOKS", 8);
    fti_store_u32(hdr + 8, 1);
    fti_store_u32(hdr + 12, width);
    fti_store_u64(hdr + 16, (uint64_t)n);
    fti_store_u32(hdr + 24, vocab_size);
    fti_store_u32(hdr + 28, eot_id);
    fti_sha256_buf(p, n * width, hdr + 32);
    memcpy(out->data, hdr, sizeof hdr);
    return FTI_OK;
}

FTIDEF fti_result fti_shard_write(const char *path, const uint32_t *ids, size_t n,
                                  uint32_t vocab_size, uint32_t eot_id, fti_error *err) {
    fti_buf b;
    fti_result rc;
    if (!path) return fti_error_set(err, FTI_ERR_INVALID, "shard: no path");
    memset(&b, 0, sizeof b);
    rc = fti__shard_image(&b, ids, n, vocab_size, eot_id, err);
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
            fti_sha256_buf(s->data, (size_t)(s->count * s->width), d);
            if (memcmp(d, sum, 32) != 0) {
                rc = fti_error_set(err, FTI_ERR_CHECKSUM, "%s: checksum mismatch", path);
            } else {
                for (i = 0; i < s->count; i++)
                    if (fti_shard_at(s, i) >= s->vocab_size) {
                        rc = fti_error_set(err, FTI_ERR_FORMAT, "%s: token %lu out of vocab",
                                           path, (unsigned long)i);
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
