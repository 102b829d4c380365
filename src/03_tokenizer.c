/* === tokenizer: implementation === */
/*
 * Data layout. A tokenizer keeps one entry per id (fti__tok_entry: offset and length of the
 * token's bytes in one blob, its merge rank and type) and one open-addressing hash table from
 * bytes to id over the ordinary tokens (the rank table: BPE looks up the concatenation of two
 * adjacent parts in it). Special tokens live in the same entry array and a small list.
 *
 * Encoding a segment: the pre-tokenizer (hand-written matchers of the three split regexes over
 * generated Unicode classes) yields pre-tokens; each is looked up whole (most English words are
 * one token), then in a per-call cache, else merged: for short words tiktoken's scan for the
 * lowest-ranked pair (O(n^2) but tiny n), for long words a binary heap of (rank, position) over a
 * linked list of parts (O(n log n)). Both give the same result: the lowest rank is merged first,
 * the leftmost on ties.
 *
 * Multi-threaded encoding cuts the text at "safe" boundaries: a space between two ASCII letters,
 * or a letter right after a newline. Every pre-tokenizer here ends the token before such a point
 * (a letter run cannot take a space or newline after it; whitespace and punctuation tokens end at
 * a letter) and starts the next token at it, and no special token occurrence may span it
 * (checked), so chunks encode independently and the concatenated ids equal the serial ones.
 */
#include "03_tokenizer.h"
#include "03_tables.c"

#include <stdlib.h>
#include <string.h>

/* === tokenizer: Unicode classes and UTF-8 === */

#define FTI__TOKM(c) (1u << (c))
#define FTI__TOKM_L (FTI__TOKM(FTI__UC_LU) | FTI__TOKM(FTI__UC_LL) | FTI__TOKM(FTI__UC_LT) | \
                     FTI__TOKM(FTI__UC_LM) | FTI__TOKM(FTI__UC_LO))
/* o200k: [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}] and [\p{Ll}\p{Lm}\p{Lo}\p{M}] */
#define FTI__TOKM_U (FTI__TOKM(FTI__UC_LU) | FTI__TOKM(FTI__UC_LT) | FTI__TOKM(FTI__UC_LM) | \
                     FTI__TOKM(FTI__UC_LO) | FTI__TOKM(FTI__UC_M))
#define FTI__TOKM_W (FTI__TOKM(FTI__UC_LL) | FTI__TOKM(FTI__UC_LM) | FTI__TOKM(FTI__UC_LO) | \
                     FTI__TOKM(FTI__UC_M))
#define FTI__IS_L(c) ((FTI__TOKM(c) & FTI__TOKM_L) != 0)
#define FTI__IS_N(c) ((c) == FTI__UC_N)
#define FTI__IS_WS(c) ((c) == FTI__UC_WS)
/* [^\s\p{L}\p{N}] */
#define FTI__IS_OTHER(c) (!FTI__IS_L(c) && !FTI__IS_N(c) && !FTI__IS_WS(c))

static int fti__uc_class(uint32_t cp) {
    size_t lo = 0, hi = FTI__UC_N_RUNS;
    if (cp < 0x800) return fti__uc_small[cp];
    /* last run whose start <= cp */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if ((fti__uc_runs[mid] >> 4) <= cp) lo = mid;
        else hi = mid;
    }
    return (int)(fti__uc_runs[lo] & 15u);
}

/* Strictly decodes the UTF-8 character at s[i] (i < n): returns its length and stores its code
 * point, or returns 0 for an invalid or truncated sequence. */
static size_t fti__utf8_char(const unsigned char *s, size_t n, size_t i, uint32_t *cp) {
    unsigned b0 = s[i], b1, b2, b3;
    size_t left = n - i;
    if (b0 < 0x80) {
        *cp = b0;
        return 1;
    }
    if (b0 < 0xC2 || b0 > 0xF4 || left < 2) return 0;
    b1 = s[i + 1];
    if (b0 < 0xE0) {
        if ((b1 & 0xC0) != 0x80) return 0;
        *cp = ((uint32_t)(b0 & 0x1F) << 6) | (b1 & 0x3F);
        return 2;
    }
    if (b0 < 0xF0) {
        if (left < 3) return 0;
        b2 = s[i + 2];
        if ((b1 & 0xC0) != 0x80 || (b2 & 0xC0) != 0x80) return 0;
        if (b0 == 0xE0 && b1 < 0xA0) return 0; /* overlong */
        if (b0 == 0xED && b1 > 0x9F) return 0; /* surrogate */
        *cp = ((uint32_t)(b0 & 0x0F) << 12) | ((uint32_t)(b1 & 0x3F) << 6) | (b2 & 0x3F);
        return 3;
    }
    if (left < 4) return 0;
    b2 = s[i + 2];
    b3 = s[i + 3];
    if ((b1 & 0xC0) != 0x80 || (b2 & 0xC0) != 0x80 || (b3 & 0xC0) != 0x80) return 0;
    if (b0 == 0xF0 && b1 < 0x90) return 0; /* overlong */
    if (b0 == 0xF4 && b1 > 0x8F) return 0; /* > U+10FFFF */
    *cp = ((uint32_t)(b0 & 0x07) << 18) | ((uint32_t)(b1 & 0x3F) << 12) |
          ((uint32_t)(b2 & 0x3F) << 6) | (b3 & 0x3F);
    return 4;
}

/* Class and byte length of the character at s[i] (i < n). An invalid byte is one OTHER char. */
static int fti__cls_slow(const unsigned char *s, size_t n, size_t i, size_t *len) {
    uint32_t cp = 0;
    size_t l = fti__utf8_char(s, n, i, &cp);
    if (l == 0) {
        *len = 1;
        return FTI__UC_OTHER;
    }
    *len = l;
    return fti__uc_class(cp);
}

#define FTI__CLS(s, n, i, lenp) \
    ((s)[i] < 0x80 ? (*(lenp) = 1, (int)fti__uc_small[(s)[i]]) : fti__cls_slow(s, n, i, lenp))

/* === tokenizer: pre-tokenizers === */
/*
 * Each matcher returns the end of the token that the split regex matches at i, following the
 * regex's leftmost-first alternation and greedy backtracking exactly. No pattern has a
 * lookbehind, so a match depends only on the text from i on.
 */

/* End of the run of characters whose class is in `mask`, starting at i. */
static size_t fti__run(const unsigned char *s, size_t n, size_t i, unsigned mask) {
    while (i < n) {
        size_t l;
        int c = FTI__CLS(s, n, i, &l);
        if (!(FTI__TOKM(c) & mask)) break;
        i += l;
    }
    return i;
}

#define FTI__TOKM_OTHER (~(FTI__TOKM_L | FTI__TOKM(FTI__UC_N) | FTI__TOKM(FTI__UC_WS)))

/* Contraction 's 't 're 've 'm 'll 'd at s[i] == '\''; length or 0. icase: (?i:...), where
 * Unicode simple case folding also maps U+017F (long s) to s. */
static size_t fti__contraction(const unsigned char *s, size_t n, size_t i, int icase) {
    unsigned c1, c2;
    if (i + 1 >= n) return 0;
    c1 = s[i + 1];
    if (icase && c1 >= 'A' && c1 <= 'Z') c1 += 32;
    if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') return 2;
    if (icase && c1 == 0xC5 && i + 2 < n && s[i + 2] == 0xBF) return 3;
    if (i + 2 >= n) return 0;
    c2 = s[i + 2];
    if (icase && c2 >= 'A' && c2 <= 'Z') c2 += 32;
    if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) return 3;
    return 0;
}

/* The whitespace alternatives. With nl_rule (cl100k, o200k) first `\s*[\r\n]+`; then
 * `\s+(?!\S)|\s+`. s[i] is whitespace. */
static size_t fti__ws_token(const unsigned char *s, size_t n, size_t i, int nl_rule) {
    size_t j = i, last = i, nl_end = 0;
    while (j < n) {
        size_t l;
        int c = FTI__CLS(s, n, j, &l);
        if (!FTI__IS_WS(c)) break;
        if (s[j] == '\r' || s[j] == '\n') nl_end = j + 1;
        last = j;
        j += l;
    }
    if (nl_rule && nl_end) return nl_end;
    if (j == n) return j;
    /* followed by a non-space: \s+(?!\S) backs off one character, if that leaves any */
    return last > i ? last : j;
}

static size_t fti__pretok_gpt2(const unsigned char *s, size_t n, size_t i) {
    size_t l, l2;
    int c;
    if (s[i] == '\'') {
        size_t k = fti__contraction(s, n, i, 0);
        if (k) return i + k;
    }
    c = FTI__CLS(s, n, i, &l);
    if (s[i] == ' ' && i + 1 < n) {
        int c2 = FTI__CLS(s, n, i + 1, &l2);
        if (FTI__IS_L(c2)) return fti__run(s, n, i + 1, FTI__TOKM_L);
        if (FTI__IS_N(c2)) return fti__run(s, n, i + 1, FTI__TOKM(FTI__UC_N));
        if (FTI__IS_OTHER(c2)) return fti__run(s, n, i + 1, FTI__TOKM_OTHER);
    }
    if (FTI__IS_L(c)) return fti__run(s, n, i, FTI__TOKM_L);
    if (FTI__IS_N(c)) return fti__run(s, n, i, FTI__TOKM(FTI__UC_N));
    if (FTI__IS_OTHER(c)) return fti__run(s, n, i, FTI__TOKM_OTHER);
    return fti__ws_token(s, n, i, 0);
}

/* \p{N}{1,3} */
static size_t fti__digits3(const unsigned char *s, size_t n, size_t i) {
    int k;
    for (k = 0; k < 3 && i < n; k++) {
        size_t l;
        int c = FTI__CLS(s, n, i, &l);
        if (!FTI__IS_N(c)) break;
        i += l;
    }
    return i;
}

/* ` ?[^\s\p{L}\p{N}]+[\r\n]*` (o200k: [\r\n/]*) at i, or 0 if it does not match. */
static size_t fti__punct_token(const unsigned char *s, size_t n, size_t i, int c, int slash) {
    size_t j = i, l;
    if (s[i] == ' ' && i + 1 < n) {
        int c2 = FTI__CLS(s, n, i + 1, &l);
        if (FTI__IS_OTHER(c2)) j = i + 1;
    }
    if (j == i && !FTI__IS_OTHER(c)) return 0;
    j = fti__run(s, n, j, FTI__TOKM_OTHER);
    while (j < n && (s[j] == '\r' || s[j] == '\n' || (slash && s[j] == '/'))) j++;
    return j;
}

static size_t fti__pretok_cl100k(const unsigned char *s, size_t n, size_t i) {
    size_t l, l2, e;
    int c;
    if (s[i] == '\'') {
        size_t k = fti__contraction(s, n, i, 1);
        if (k) return i + k;
    }
    c = FTI__CLS(s, n, i, &l);
    if (FTI__IS_L(c)) return fti__run(s, n, i + l, FTI__TOKM_L);
    /* [^\r\n\p{L}\p{N}]?\p{L}+ with the optional prefix */
    if (!FTI__IS_N(c) && s[i] != '\r' && s[i] != '\n' && i + l < n) {
        int c2 = FTI__CLS(s, n, i + l, &l2);
        if (FTI__IS_L(c2)) return fti__run(s, n, i + l, FTI__TOKM_L);
    }
    if (FTI__IS_N(c)) return fti__digits3(s, n, i);
    e = fti__punct_token(s, n, i, c, 0);
    if (e) return e;
    return fti__ws_token(s, n, i, 1);
}

/* o200k: [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+ from j; 0 if no match.
 * Greedy U* then W+; backtracking U* leaves the match ending after the last W in the U run. */
static size_t fti__o200k_uw(const unsigned char *s, size_t n, size_t j) {
    size_t u = j, last_w_end = 0, l;
    while (u < n) {
        int c = FTI__CLS(s, n, u, &l);
        if (!(FTI__TOKM(c) & FTI__TOKM_U)) break;
        if (FTI__TOKM(c) & FTI__TOKM_W) last_w_end = u + l;
        u += l;
    }
    if (u < n) {
        int c = FTI__CLS(s, n, u, &l);
        if (FTI__TOKM(c) & FTI__TOKM_W) return fti__run(s, n, u, FTI__TOKM_W);
    }
    return last_w_end;
}

static size_t fti__pretok_o200k(const unsigned char *s, size_t n, size_t i) {
    size_t l, l2, e;
    int c = FTI__CLS(s, n, i, &l), c2 = -1;
    int prefix_ok = !FTI__IS_L(c) && !FTI__IS_N(c) && s[i] != '\r' && s[i] != '\n';
    if (i + l < n) c2 = FTI__CLS(s, n, i + l, &l2);
    /* alternative 1: prefix? U* W+ contraction? */
    e = 0;
    if (prefix_ok && c2 >= 0) e = fti__o200k_uw(s, n, i + l);
    if (!e) e = fti__o200k_uw(s, n, i);
    /* alternative 2: prefix? U+ W* contraction? */
    if (!e) {
        if (prefix_ok && c2 >= 0 && (FTI__TOKM(c2) & FTI__TOKM_U))
            e = fti__run(s, n, fti__run(s, n, i + l, FTI__TOKM_U), FTI__TOKM_W);
        else if (FTI__TOKM(c) & FTI__TOKM_U)
            e = fti__run(s, n, fti__run(s, n, i, FTI__TOKM_U), FTI__TOKM_W);
    }
    if (e) {
        if (e < n && s[e] == '\'') e += fti__contraction(s, n, e, 1);
        return e;
    }
    if (FTI__IS_N(c)) return fti__digits3(s, n, i);
    e = fti__punct_token(s, n, i, c, 1);
    if (e) return e;
    return fti__ws_token(s, n, i, 1);
}

static size_t fti__pretok_step(fti_pretok kind, const unsigned char *s, size_t n, size_t i) {
    switch (kind) {
    case FTI_PRETOK_CL100K: return fti__pretok_cl100k(s, n, i);
    case FTI_PRETOK_O200K: return fti__pretok_o200k(s, n, i);
    default: return fti__pretok_gpt2(s, n, i);
    }
}

FTIDEF size_t fti_pretok_next(fti_pretok kind, const char *text, size_t len, size_t pos) {
    if (!text || pos >= len) return len;
    return fti__pretok_step(kind, (const unsigned char *)text, len, pos);
}

FTIDEF const char *fti_pretok_name(fti_pretok kind) {
    switch (kind) {
    case FTI_PRETOK_DEFAULT: return "default";
    case FTI_PRETOK_GPT2: return "gpt2";
    case FTI_PRETOK_CL100K: return "cl100k";
    case FTI_PRETOK_O200K: return "o200k";
    }
    return "?";
}

FTIDEF fti_pretok fti_pretok_parse(const char *name) {
    if (!name) return FTI_PRETOK_DEFAULT;
    if (!strcmp(name, "gpt2") || !strcmp(name, "gpt-2") || !strcmp(name, "r50k") ||
        !strcmp(name, "r50k_base") || !strcmp(name, "p50k_base"))
        return FTI_PRETOK_GPT2;
    if (!strcmp(name, "cl100k") || !strcmp(name, "cl100k_base") || !strcmp(name, "llama-bpe") ||
        !strcmp(name, "llama3"))
        return FTI_PRETOK_CL100K;
    if (!strcmp(name, "o200k") || !strcmp(name, "o200k_base") || !strcmp(name, "gpt-4o"))
        return FTI_PRETOK_O200K;
    return FTI_PRETOK_DEFAULT;
}

/* A safe cut before text[p]: either a space between two ASCII letters, or a letter (ASCII, or
 * any \p{L}) right after a '\n'. Every pattern here ends the token holding text[p-1] at p and
 * starts a token at p (see the top comment); matching from p depends only on text[p..]. */
static int fti__safe_cut(const unsigned char *s, size_t n, size_t p) {
    unsigned a, b;
    if (p == 0 || p >= n) return 0;
    if (s[p - 1] == '\n') {
        size_t l;
        int c = FTI__CLS(s, n, p, &l);
        return FTI__IS_L(c);
    }
    if (p + 1 >= n || s[p] != ' ') return 0;
    a = s[p - 1] | 32u;
    b = s[p + 1] | 32u;
    return a >= 'a' && a <= 'z' && b >= 'a' && b <= 'z';
}

/* First safe cut in [from, limit), or 0 if none. */
static size_t fti__find_cut(const unsigned char *s, size_t n, size_t from, size_t limit) {
    size_t p;
    if (limit > n) limit = n;
    if (from == 0) from = 1;
    for (p = from; p < limit; p++)
        if ((s[p] == ' ' || s[p - 1] == '\n') && fti__safe_cut(s, n, p)) return p;
    return 0;
}

/* === tokenizer: the vocabulary === */

#define FTI__NO_RANK 0xFFFFFFFFu
#define FTI__NO_ID 0xFFFFFFFFu

typedef struct fti__tok_entry {
    uint32_t off;  /* bytes in tok->blob */
    uint32_t len;  /* 0 = hole */
    uint32_t rank; /* merge rank of an ordinary token, FTI__NO_RANK if it cannot be merged to */
    uint32_t type; /* fti_token_type: NORMAL or CONTROL (0 for a hole) */
} fti__tok_entry;

/* Hash slot: the token's first 8 bytes (`head`, zero-padded), its length and 16 bits of the hash
 * (`len_tag`), blob offset, id + 1 (0 = empty) and rank: a lookup of a token of up to 8 bytes
 * (most BPE pairs) touches only the slot. */
typedef struct fti__tok_slot {
    uint64_t head;
    uint32_t len_tag; /* len | (hash >> 48) << 16 */
    uint32_t off;
    uint32_t id1;
    uint32_t rank;
} fti__tok_slot;

struct fti_tokenizer {
    fti_pretok pretok;
    size_t n_vocab;          /* ids 0 .. n_vocab-1 */
    fti__tok_entry *entries; /* (n_vocab) */
    size_t entries_cap;
    unsigned char *blob;     /* token bytes */
    size_t blob_len, blob_cap;
    fti__tok_slot *slots;    /* ordinary tokens by bytes; power-of-two size */
    size_t slot_mask;
    uint32_t byte_id[256];   /* id of each single-byte token */
    uint32_t *special;       /* ids of special tokens, in id order */
    size_t n_special;
    unsigned char special_first[32]; /* bitset of the first bytes of special tokens */
    unsigned char sha[32];   /* SHA-256 of the canonical serialization */
};

/* Hash of a byte string (also picks the cache slot). Reads 8 bytes at a time. */
static uint64_t fti__tok_hash(const unsigned char *p, size_t n) {
    uint64_t h = 0x9E3779B97F4A7C15ull ^ ((uint64_t)n * 0xC2B2AE3D27D4EB4Full);
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        h = (h ^ v) * 0xFF51AFD7ED558CCDull;
        h ^= h >> 32;
        p += 8;
        n -= 8;
    }
    if (n) {
        uint64_t v = 0;
        size_t k;
        for (k = 0; k < n; k++) v |= (uint64_t)p[k] << (8 * k);
        h = (h ^ v) * 0xFF51AFD7ED558CCDull;
    }
    h ^= h >> 29;
    h *= 0xC4CEB9FE1A85EC53ull;
    h ^= h >> 32;
    return h;
}

/* The first min(n, 8) bytes of p as a number (zero-padded). */
static uint64_t fti__tok_head(const unsigned char *p, size_t n) {
    uint64_t v = 0;
    size_t k;
    if (n >= 8) {
        memcpy(&v, p, 8);
        return v;
    }
    for (k = 0; k < n; k++) v |= (uint64_t)p[k] << (8 * k);
    return v;
}

/* Slot of bytes p[0..n) in the rank table, or NULL. */
static const fti__tok_slot *fti__tok_lookup_h(const fti_tokenizer *tok, const unsigned char *p,
                                              size_t n, uint64_t h) {
    size_t i = (size_t)h & tok->slot_mask;
    uint32_t len_tag = (uint32_t)n | (uint32_t)(h >> 48) << 16;
    uint64_t head;
    if (n > 0xFFFF) return NULL;
    head = fti__tok_head(p, n);
    for (;;) {
        const fti__tok_slot *s = &tok->slots[i];
        if (!s->id1) return NULL;
        if (s->len_tag == len_tag && s->head == head &&
            (n <= 8 || memcmp(tok->blob + s->off + 8, p + 8, n - 8) == 0))
            return s;
        i = (i + 1) & tok->slot_mask;
    }
}

static const fti__tok_slot *fti__tok_lookup(const fti_tokenizer *tok, const unsigned char *p,
                                            size_t n) {
    return fti__tok_lookup_h(tok, p, n, fti__tok_hash(p, n));
}

static void fti__tok_free_parts(fti_tokenizer *tok) {
    fti_free(tok->entries);
    fti_free(tok->blob);
    fti_free(tok->slots);
    fti_free(tok->special);
}

FTIDEF void fti_tokenizer_free(fti_tokenizer *tok) {
    if (!tok) return;
    fti__tok_free_parts(tok);
    fti_free(tok);
}

/* A vocabulary under construction: entries by id, grown as ids arrive. */
static fti_tokenizer *fti__tok_new(void) {
    fti_tokenizer *tok = (fti_tokenizer *)fti_calloc(1, sizeof(fti_tokenizer));
    return tok;
}

/* Ensures ids < n exist (holes); capacity grows geometrically. */
static fti_result fti__tok_grow(fti_tokenizer *tok, size_t n) {
    if (n <= tok->n_vocab) return FTI_OK;
    if (n > FTI_TOK_MAX_VOCAB) return FTI_ERR_LIMIT;
    if (n > tok->entries_cap) {
        size_t cap = tok->entries_cap ? tok->entries_cap : 512;
        fti__tok_entry *e;
        while (cap < n) cap *= 2;
        e = (fti__tok_entry *)fti_realloc(tok->entries, cap * sizeof(fti__tok_entry));
        if (!e) return FTI_ERR_NOMEM;
        tok->entries = e;
        tok->entries_cap = cap;
    }
    memset(tok->entries + tok->n_vocab, 0, (n - tok->n_vocab) * sizeof(fti__tok_entry));
    tok->n_vocab = n;
    return FTI_OK;
}

/* Sets token `id` (must be a hole). Checks nothing else; fti__tok_finish validates. */
static fti_result fti__tok_set(fti_tokenizer *tok, uint32_t id, const void *bytes, size_t len,
                               uint32_t rank, uint32_t type) {
    fti_result r;
    if (len == 0 || len > FTI_TOK_MAX_TOKEN_BYTES) return FTI_ERR_LIMIT;
    if ((size_t)id >= FTI_TOK_MAX_VOCAB) return FTI_ERR_LIMIT;
    r = fti__tok_grow(tok, (size_t)id + 1);
    if (r != FTI_OK) return r;
    if (tok->entries[id].len) return FTI_ERR_EXISTS;
    if (tok->blob_len + len > tok->blob_cap) {
        size_t cap = tok->blob_cap ? tok->blob_cap * 2 : 4096;
        unsigned char *b;
        while (cap < tok->blob_len + len) cap *= 2;
        if (cap > 0xFFFFFFFFu) return FTI_ERR_LIMIT;
        b = (unsigned char *)fti_realloc(tok->blob, cap);
        if (!b) return FTI_ERR_NOMEM;
        tok->blob = b;
        tok->blob_cap = cap;
    }
    memcpy(tok->blob + tok->blob_len, bytes, len);
    tok->entries[id].off = (uint32_t)tok->blob_len;
    tok->entries[id].len = (uint32_t)len;
    tok->entries[id].rank = rank;
    tok->entries[id].type = type;
    tok->blob_len += len;
    return FTI_OK;
}

/* Canonical serialization (fti format v1), see docs/tokenizer.md:
 *   "FTITOKEN" u32 version=1, u32 pretok, u32 n_vocab, u32 n_tokens,
 *   n_tokens records in id order: u32 id, u8 type, u32 rank, u16 len, bytes;
 *   32-byte SHA-256 of everything before it. */
#define FTI__TOK_MAGIC "FTITOKEN"
#define FTI__TOK_VERSION 1u

static fti_result fti__tok_serialize_body(const fti_tokenizer *tok, fti_buf *out) {
    unsigned char hdr[24], rec[11];
    size_t id, n_tokens = 0;
    for (id = 0; id < tok->n_vocab; id++)
        if (tok->entries[id].len) n_tokens++;
    memcpy(hdr, FTI__TOK_MAGIC, 8);
    fti_store_u32(hdr + 8, FTI__TOK_VERSION);
    fti_store_u32(hdr + 12, (uint32_t)tok->pretok);
    fti_store_u32(hdr + 16, (uint32_t)tok->n_vocab);
    fti_store_u32(hdr + 20, (uint32_t)n_tokens);
    fti_buf_reserve(out, 24 + n_tokens * 11 + tok->blob_len + 32);
    fti_buf_append(out, hdr, 24);
    for (id = 0; id < tok->n_vocab; id++) {
        const fti__tok_entry *e = &tok->entries[id];
        if (!e->len) continue;
        fti_store_u32(rec, (uint32_t)id);
        rec[4] = (unsigned char)e->type;
        fti_store_u32(rec + 5, e->rank);
        fti_store_u16(rec + 9, (uint16_t)e->len);
        fti_buf_append(out, rec, 11);
        fti_buf_append(out, tok->blob + e->off, e->len);
    }
    return out->oom ? FTI_ERR_NOMEM : FTI_OK;
}

static int fti__cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Builds the rank table and special list, checks the vocabulary, computes the id. Errors are
 * reported with `name`. */
static fti_result fti__tok_finish(fti_tokenizer *tok, const char *name, fti_error *err) {
    size_t id, n_ord = 0, cap = 16, i;
    fti_buf body;
    if (!name) name = "tokenizer";
    for (i = 0; i < 256; i++) tok->byte_id[i] = FTI__NO_ID;
    for (id = 0; id < tok->n_vocab; id++)
        if (tok->entries[id].len && tok->entries[id].type == FTI_TOKEN_NORMAL) n_ord++;
    while (cap < 2 * n_ord + 16) cap *= 2;
    fti_free(tok->slots);
    tok->slots = (fti__tok_slot *)fti_calloc(cap, sizeof(fti__tok_slot));
    if (!tok->slots) return fti_error_set(err, FTI_ERR_NOMEM, "%s: out of memory", name);
    tok->slot_mask = cap - 1;
    fti_free(tok->special);
    tok->special = NULL;
    tok->n_special = 0;
    memset(tok->special_first, 0, sizeof tok->special_first);
    for (id = 0; id < tok->n_vocab; id++) {
        fti__tok_entry *e = &tok->entries[id];
        const unsigned char *p = tok->blob + e->off;
        if (!e->len) continue;
        if (e->type == FTI_TOKEN_NORMAL) {
            uint64_t h = fti__tok_hash(p, e->len);
            size_t k = (size_t)h & tok->slot_mask;
            if (fti__tok_lookup_h(tok, p, e->len, h))
                return fti_error_set(err, FTI_ERR_FORMAT,
                                     "%s: token %u repeats the bytes of token %u", name,
                                     (unsigned)id,
                                     (unsigned)(fti__tok_lookup_h(tok, p, e->len, h)->id1 - 1));
            while (tok->slots[k].id1) k = (k + 1) & tok->slot_mask;
            tok->slots[k].head = fti__tok_head(p, e->len);
            tok->slots[k].len_tag = e->len | (uint32_t)(h >> 48) << 16;
            tok->slots[k].off = e->off;
            tok->slots[k].id1 = (uint32_t)id + 1;
            tok->slots[k].rank = e->len == 1 ? FTI__NO_RANK : e->rank;
            if (e->len == 1) tok->byte_id[p[0]] = (uint32_t)id;
        } else if (e->type == FTI_TOKEN_CONTROL) {
            tok->n_special++;
        } else {
            return fti_error_set(err, FTI_ERR_FORMAT, "%s: token %u has unknown type %u", name,
                                 (unsigned)id, (unsigned)e->type);
        }
    }
    for (i = 0; i < 256; i++)
        if (tok->byte_id[i] == FTI__NO_ID)
            return fti_error_set(err, FTI_ERR_FORMAT,
                                 "%s: no token for byte 0x%02x (a byte-level BPE needs all 256)",
                                 name, (unsigned)i);
    /* ranks of mergeable tokens must be unique */
    {
        uint32_t *ranks = (uint32_t *)fti_malloc((n_ord + 1) * sizeof(uint32_t));
        size_t nr = 0;
        if (!ranks) return fti_error_set(err, FTI_ERR_NOMEM, "%s: out of memory", name);
        for (id = 0; id < tok->n_vocab; id++) {
            const fti__tok_entry *e = &tok->entries[id];
            if (e->len > 1 && e->type == FTI_TOKEN_NORMAL && e->rank != FTI__NO_RANK)
                ranks[nr++] = e->rank;
        }
        {
            size_t a;
            if (nr > 1) qsort(ranks, nr, sizeof(uint32_t), fti__cmp_u32);
            for (a = 1; a < nr; a++)
                if (ranks[a] == ranks[a - 1]) {
                    uint32_t dup = ranks[a];
                    fti_free(ranks);
                    return fti_error_set(err, FTI_ERR_FORMAT, "%s: rank %u is used twice", name,
                                         (unsigned)dup);
                }
        }
        fti_free(ranks);
    }
    if (tok->n_special) {
        size_t k = 0;
        tok->special = (uint32_t *)fti_malloc(tok->n_special * sizeof(uint32_t));
        if (!tok->special) return fti_error_set(err, FTI_ERR_NOMEM, "%s: out of memory", name);
        for (id = 0; id < tok->n_vocab; id++) {
            const fti__tok_entry *e = &tok->entries[id];
            if (!e->len || e->type != FTI_TOKEN_CONTROL) continue;
            for (i = 0; i < k; i++) {
                const fti__tok_entry *o = &tok->entries[tok->special[i]];
                if (o->len == e->len && !memcmp(tok->blob + o->off, tok->blob + e->off, e->len))
                    return fti_error_set(err, FTI_ERR_FORMAT,
                                         "%s: special tokens %u and %u are the same string", name,
                                         (unsigned)tok->special[i], (unsigned)id);
            }
            tok->special[k++] = (uint32_t)id;
            tok->special_first[tok->blob[e->off] >> 3] |=
                (unsigned char)(1u << (tok->blob[e->off] & 7));
        }
    }
    if (tok->pretok < FTI_PRETOK_GPT2 || tok->pretok > FTI_PRETOK_O200K)
        tok->pretok = FTI_PRETOK_GPT2;
    memset(&body, 0, sizeof body);
    if (fti__tok_serialize_body(tok, &body) != FTI_OK) {
        fti_buf_free(&body);
        return fti_error_set(err, FTI_ERR_NOMEM, "%s: out of memory", name);
    }
    fti_sha256_buf(body.data, body.len, tok->sha);
    fti_buf_free(&body);
    return FTI_OK;
}

/* === tokenizer: queries === */

FTIDEF size_t fti_tokenizer_vocab_size(const fti_tokenizer *tok) { return tok ? tok->n_vocab : 0; }
FTIDEF fti_pretok fti_tokenizer_pretok(const fti_tokenizer *tok) {
    return tok ? tok->pretok : FTI_PRETOK_DEFAULT;
}

FTIDEF const char *fti_tokenizer_token(const fti_tokenizer *tok, uint32_t id, size_t *len) {
    if (len) *len = 0;
    if (!tok || (size_t)id >= tok->n_vocab || !tok->entries[id].len) return NULL;
    if (len) *len = tok->entries[id].len;
    return (const char *)tok->blob + tok->entries[id].off;
}

FTIDEF fti_token_type fti_tokenizer_token_type(const fti_tokenizer *tok, uint32_t id) {
    if (!tok || (size_t)id >= tok->n_vocab || !tok->entries[id].len) return FTI_TOKEN_NONE;
    return (fti_token_type)tok->entries[id].type;
}

FTIDEF int64_t fti_tokenizer_find(const fti_tokenizer *tok, const char *bytes, size_t len) {
    const fti__tok_slot *s;
    size_t i;
    if (!tok || (!bytes && len)) return -1;
    if (len == 0) return -1;
    s = fti__tok_lookup(tok, (const unsigned char *)bytes, len);
    if (s) return (int64_t)(s->id1 - 1);
    for (i = 0; i < tok->n_special; i++) {
        const fti__tok_entry *e = &tok->entries[tok->special[i]];
        if (e->len == len && !memcmp(tok->blob + e->off, bytes, len)) return tok->special[i];
    }
    return -1;
}

FTIDEF int64_t fti_tokenizer_special_id(const fti_tokenizer *tok, const char *text) {
    size_t i, len;
    if (!tok || !text) return -1;
    len = strlen(text);
    for (i = 0; i < tok->n_special; i++) {
        const fti__tok_entry *e = &tok->entries[tok->special[i]];
        if (e->len == len && !memcmp(tok->blob + e->off, text, len)) return tok->special[i];
    }
    return -1;
}

FTIDEF size_t fti_tokenizer_n_special(const fti_tokenizer *tok) { return tok ? tok->n_special : 0; }
FTIDEF uint32_t fti_tokenizer_special_at(const fti_tokenizer *tok, size_t i) {
    return (tok && i < tok->n_special) ? tok->special[i] : FTI__NO_ID;
}
FTIDEF int64_t fti_tokenizer_eot_id(const fti_tokenizer *tok) {
    return fti_tokenizer_special_id(tok, "<|endoftext|>");
}
FTIDEF void fti_tokenizer_sha256(const fti_tokenizer *tok, unsigned char digest[32]) {
    if (tok) memcpy(digest, tok->sha, 32);
    else memset(digest, 0, 32);
}
FTIDEF void fti_tokenizer_id_hex(const fti_tokenizer *tok, char hex[65]) {
    unsigned char d[32];
    fti_tokenizer_sha256(tok, d);
    fti_sha256_hex(d, hex);
}

FTIDEF fti_result fti_tokenizer_add_special(fti_tokenizer *tok, const char *text, size_t len,
                                            uint32_t *id_out) {
    size_t i;
    uint32_t id;
    fti_result r;
    if (!tok || !text || len == 0 || len > FTI_TOK_MAX_TOKEN_BYTES) return FTI_ERR_INVALID;
    for (i = 0; i < tok->n_special; i++) {
        const fti__tok_entry *e = &tok->entries[tok->special[i]];
        if (e->len == len && !memcmp(tok->blob + e->off, text, len)) {
            if (id_out) *id_out = tok->special[i];
            return FTI_OK;
        }
    }
    if (fti__tok_lookup(tok, (const unsigned char *)text, len)) return FTI_ERR_EXISTS;
    id = (uint32_t)tok->n_vocab;
    r = fti__tok_set(tok, id, text, len, FTI__NO_RANK, FTI_TOKEN_CONTROL);
    if (r != FTI_OK) return r;
    r = fti__tok_finish(tok, NULL, NULL);
    if (r != FTI_OK) return r;
    if (id_out) *id_out = id;
    return FTI_OK;
}

/* === tokenizer: BPE merge of one pre-token === */

/* Scratch for one encoding thread: merge arrays and the pre-token cache. */
#define FTI__CACHE_BYTES 22
#define FTI__CACHE_IDS 6
typedef struct fti__cache_slot {
    uint64_t h;
    unsigned char n_bytes, n_ids;
    unsigned char bytes[FTI__CACHE_BYTES];
    uint32_t ids[FTI__CACHE_IDS];
} fti__cache_slot;

typedef struct fti__enc_ctx {
    uint32_t *pos, *rank, *pid, *ids, *prv; /* (n+1) each */
    uint64_t *heap;
    size_t cap;
    fti__cache_slot *cache; /* NULL = no cache */
    size_t cache_mask;
} fti__enc_ctx;

static void fti__enc_ctx_free(fti__enc_ctx *c) {
    fti_free(c->pos);
    fti_free(c->rank);
    fti_free(c->pid);
    fti_free(c->ids);
    fti_free(c->prv);
    fti_free(c->heap);
    fti_free(c->cache);
    memset(c, 0, sizeof *c);
}

static fti_result fti__enc_ctx_reserve(fti__enc_ctx *c, size_t n) {
    size_t cap = c->cap ? c->cap : 64;
    if (n + 1 <= c->cap) return FTI_OK;
    while (cap < n + 1) cap *= 2;
    fti_free(c->pos);
    fti_free(c->rank);
    fti_free(c->pid);
    fti_free(c->ids);
    fti_free(c->prv);
    fti_free(c->heap);
    c->pos = (uint32_t *)fti_malloc(cap * sizeof(uint32_t));
    c->rank = (uint32_t *)fti_malloc(cap * sizeof(uint32_t));
    c->pid = (uint32_t *)fti_malloc(cap * sizeof(uint32_t));
    c->ids = (uint32_t *)fti_malloc(cap * sizeof(uint32_t));
    c->prv = (uint32_t *)fti_malloc(cap * sizeof(uint32_t));
    c->heap = (uint64_t *)fti_malloc(cap * 3 * sizeof(uint64_t));
    if (!c->pos || !c->rank || !c->pid || !c->ids || !c->prv || !c->heap) {
        c->cap = 0;
        return FTI_ERR_NOMEM;
    }
    c->cap = cap;
    return FTI_OK;
}

/* Rank and id of the bytes p[0..n) (n >= 2) as one token, below rank_limit. */
static uint32_t fti__pair_rank(const fti_tokenizer *tok, const unsigned char *p, size_t n,
                               uint32_t rank_limit, uint32_t *id) {
    const fti__tok_slot *s = fti__tok_lookup(tok, p, n);
    if (!s || s->rank >= rank_limit) return FTI__NO_RANK;
    *id = s->id1 - 1;
    return s->rank;
}

/* The short-word merge (tiktoken's): parts start at pos[0..m), pos[m] = n; rank[k] is the rank of
 * parts k and k+1 joined (pid[k] its id). Repeatedly merges the lowest, leftmost first. */
static size_t fti__bpe_small(const fti_tokenizer *tok, fti__enc_ctx *c, const unsigned char *w,
                             size_t n, uint32_t rank_limit) {
    uint32_t *pos = c->pos, *rank = c->rank, *pid = c->pid, *ids = c->ids;
    size_t m = n, k;
    for (k = 0; k < n; k++) {
        pos[k] = (uint32_t)k;
        ids[k] = tok->byte_id[w[k]];
    }
    pos[n] = (uint32_t)n;
    for (k = 0; k + 1 < n; k++) rank[k] = fti__pair_rank(tok, w + k, 2, rank_limit, &pid[k]);
    while (m > 1) {
        uint32_t best = FTI__NO_RANK;
        size_t kb = 0;
        for (k = 0; k + 1 < m; k++)
            if (rank[k] < best) {
                best = rank[k];
                kb = k;
            }
        if (best == FTI__NO_RANK) break;
        ids[kb] = pid[kb];
        /* drop part kb+1 */
        memmove(pos + kb + 1, pos + kb + 2, (m - kb - 1) * sizeof(uint32_t));
        memmove(ids + kb + 1, ids + kb + 2, (m - kb - 2) * sizeof(uint32_t));
        if (kb + 2 < m) {
            memmove(rank + kb + 1, rank + kb + 2, (m - kb - 2 - 1) * sizeof(uint32_t));
            memmove(pid + kb + 1, pid + kb + 2, (m - kb - 2 - 1) * sizeof(uint32_t));
        }
        m--;
        if (kb + 1 < m)
            rank[kb] =
                fti__pair_rank(tok, w + pos[kb], pos[kb + 2] - pos[kb], rank_limit, &pid[kb]);
        if (kb > 0)
            rank[kb - 1] = fti__pair_rank(tok, w + pos[kb - 1], pos[kb + 1] - pos[kb - 1],
                                          rank_limit, &pid[kb - 1]);
    }
    return m;
}

/* Min-heap of (rank << 32 | position). */
static void fti__heap_push(uint64_t *h, size_t *n, uint64_t v) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (h[p] <= v) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = v;
}
static uint64_t fti__heap_pop(uint64_t *h, size_t *n) {
    uint64_t top = h[0], v = h[--(*n)];
    size_t i = 0, m = *n;
    for (;;) {
        size_t a = 2 * i + 1;
        if (a >= m) break;
        if (a + 1 < m && h[a + 1] < h[a]) a++;
        if (h[a] >= v) break;
        h[i] = h[a];
        i = a;
    }
    if (m) h[i] = v;
    return top;
}

/* The long-word merge: parts form a linked list keyed by start byte (end[k] is where part k
 * ends and the next starts; 0 marks a merged-away part), rank[k]/pid[k] describe the pair of part
 * k and its successor, and a min-heap holds (rank, start) entries; a popped entry whose rank no
 * longer matches rank[k] is stale and skipped. O(n log n). Ids go to c->ids; returns the count. */
static size_t fti__bpe_large(const fti_tokenizer *tok, fti__enc_ctx *c, const unsigned char *w,
                             size_t n, uint32_t rank_limit) {
    uint32_t *end = c->pos, *rank = c->rank, *pid = c->pid, *part = c->ids, *prv = c->prv;
    uint64_t *heap = c->heap;
    size_t nh = 0, k, m;
    for (k = 0; k < n; k++) {
        end[k] = (uint32_t)(k + 1);
        prv[k] = k ? (uint32_t)(k - 1) : FTI__NO_ID;
        part[k] = tok->byte_id[w[k]];
        rank[k] = k + 1 < n ? fti__pair_rank(tok, w + k, 2, rank_limit, &pid[k]) : FTI__NO_RANK;
        if (rank[k] != FTI__NO_RANK) fti__heap_push(heap, &nh, ((uint64_t)rank[k] << 32) | k);
    }
    while (nh) {
        uint64_t top = fti__heap_pop(heap, &nh);
        uint32_t r = (uint32_t)(top >> 32);
        size_t a = (size_t)(top & 0xFFFFFFFFu), b;
        if (end[a] == 0 || rank[a] != r) continue; /* merged away, or a stale entry */
        b = end[a];
        part[a] = pid[a];
        end[a] = end[b];
        end[b] = 0;
        if (end[a] < n) {
            prv[end[a]] = (uint32_t)a;
            rank[a] = fti__pair_rank(tok, w + a, end[end[a]] - a, rank_limit, &pid[a]);
            if (rank[a] != FTI__NO_RANK) fti__heap_push(heap, &nh, ((uint64_t)rank[a] << 32) | a);
        } else {
            rank[a] = FTI__NO_RANK;
        }
        if (prv[a] != FTI__NO_ID) {
            size_t p = prv[a];
            rank[p] = fti__pair_rank(tok, w + p, end[a] - p, rank_limit, &pid[p]);
            if (rank[p] != FTI__NO_RANK) fti__heap_push(heap, &nh, ((uint64_t)rank[p] << 32) | p);
        }
    }
    for (k = 0, m = 0; k < n; k = end[k]) part[m++] = part[k];
    return m;
}

/* BPE of one pre-token w[0..n) (n >= 1) into c->ids; returns the count. Only tokens whose rank is
 * below rank_limit are used (FTI__NO_RANK = all). */
#define FTI__BPE_SMALL_MAX 96
static fti_result fti__bpe(const fti_tokenizer *tok, fti__enc_ctx *c, const unsigned char *w,
                           size_t n, uint32_t rank_limit, size_t *n_ids) {
    if (fti__enc_ctx_reserve(c, n) != FTI_OK) return FTI_ERR_NOMEM;
    if (n <= FTI__BPE_SMALL_MAX) *n_ids = fti__bpe_small(tok, c, w, n, rank_limit);
    else *n_ids = fti__bpe_large(tok, c, w, n, rank_limit);
    return FTI_OK;
}

/* === tokenizer: encoding === */

FTIDEF fti_result fti_tokens_push(fti_tokens *t, uint32_t id) {
    if (!t) return FTI_ERR_INVALID;
    if (t->len == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 256;
        uint32_t *p;
        if (cap > ((size_t)-1) / sizeof(uint32_t)) return FTI_ERR_NOMEM;
        p = (uint32_t *)fti_realloc(t->ids, cap * sizeof(uint32_t));
        if (!p) return FTI_ERR_NOMEM;
        t->ids = p;
        t->cap = cap;
    }
    t->ids[t->len++] = id;
    return FTI_OK;
}

static fti_result fti__tokens_reserve(fti_tokens *t, size_t extra) {
    size_t need, cap;
    uint32_t *p;
    if (!fti_size_add(t->len, extra, &need)) return FTI_ERR_NOMEM;
    if (need <= t->cap) return FTI_OK;
    cap = t->cap ? t->cap : 256;
    while (cap < need) {
        if (cap > ((size_t)-1) / (2 * sizeof(uint32_t))) return FTI_ERR_NOMEM;
        cap *= 2;
    }
    p = (uint32_t *)fti_realloc(t->ids, cap * sizeof(uint32_t));
    if (!p) return FTI_ERR_NOMEM;
    t->ids = p;
    t->cap = cap;
    return FTI_OK;
}

FTIDEF void fti_tokens_free(fti_tokens *t) {
    if (!t) return;
    fti_free(t->ids);
    t->ids = NULL;
    t->len = t->cap = 0;
}

#define FTI__CACHE_SLOTS 8192
static void fti__enc_ctx_cache(fti__enc_ctx *c) {
    if (c->cache) return;
    c->cache = (fti__cache_slot *)fti_calloc(FTI__CACHE_SLOTS, sizeof(fti__cache_slot));
    c->cache_mask = c->cache ? FTI__CACHE_SLOTS - 1 : 0; /* no memory: just no cache */
}

/* Appends the ids of one pre-token. */
static fti_result fti__encode_word(const fti_tokenizer *tok, fti__enc_ctx *c,
                                   const unsigned char *w, size_t n, fti_tokens *out) {
    uint64_t h;
    const fti__tok_slot *s;
    fti__cache_slot *cs = NULL;
    size_t n_ids, k;
    if (out->len + 1 > out->cap && fti__tokens_reserve(out, 1 + out->len / 2) != FTI_OK)
        return FTI_ERR_NOMEM;
    if (n == 1) {
        out->ids[out->len++] = tok->byte_id[w[0]];
        return FTI_OK;
    }
    h = fti__tok_hash(w, n);
    s = fti__tok_lookup_h(tok, w, n, h);
    if (s && s->rank != FTI__NO_RANK) {
        out->ids[out->len++] = s->id1 - 1;
        return FTI_OK;
    }
    if (c->cache && n <= FTI__CACHE_BYTES) {
        cs = &c->cache[h & c->cache_mask];
        if (cs->h == h && cs->n_bytes == n && cs->n_ids && !memcmp(cs->bytes, w, n)) {
            if (fti__tokens_reserve(out, cs->n_ids) != FTI_OK) return FTI_ERR_NOMEM;
            memcpy(out->ids + out->len, cs->ids, cs->n_ids * sizeof(uint32_t));
            out->len += cs->n_ids;
            return FTI_OK;
        }
    }
    if (fti__bpe(tok, c, w, n, FTI__NO_RANK, &n_ids) != FTI_OK) return FTI_ERR_NOMEM;
    if (fti__tokens_reserve(out, n_ids) != FTI_OK) return FTI_ERR_NOMEM;
    for (k = 0; k < n_ids; k++) out->ids[out->len++] = c->ids[k];
    if (cs && n_ids <= FTI__CACHE_IDS) {
        cs->h = h;
        cs->n_bytes = (unsigned char)n;
        cs->n_ids = (unsigned char)n_ids;
        memcpy(cs->bytes, w, n);
        memcpy(cs->ids, c->ids, n_ids * sizeof(uint32_t));
    }
    return FTI_OK;
}

/* Pre-tokenizes and encodes text without special tokens. */
static fti_result fti__encode_ordinary(const fti_tokenizer *tok, fti__enc_ctx *c,
                                       const unsigned char *s, size_t n, fti_tokens *out) {
    size_t i = 0;
    fti_pretok kind = tok->pretok;
    while (i < n) {
        size_t e = fti__pretok_step(kind, s, n, i);
        if (fti__encode_word(tok, c, s + i, e - i, out) != FTI_OK) return FTI_ERR_NOMEM;
        i = e;
    }
    return FTI_OK;
}

/* Finds the first occurrence of a special token at or after `from` (the longest one when several
 * start there). Returns 1 and sets *pos, *id, *len; 0 when there is none. */
static int fti__find_special(const fti_tokenizer *tok, const unsigned char *s, size_t n,
                             size_t from, size_t *pos, uint32_t *id, size_t *len) {
    size_t p, k;
    for (p = from; p < n; p++) {
        size_t best_len = 0;
        uint32_t best = 0;
        if (!(tok->special_first[s[p] >> 3] & (1u << (s[p] & 7)))) continue;
        for (k = 0; k < tok->n_special; k++) {
            const fti__tok_entry *e = &tok->entries[tok->special[k]];
            if (e->len <= n - p && e->len > best_len &&
                !memcmp(s + p, tok->blob + e->off, e->len)) {
                best_len = e->len;
                best = tok->special[k];
            }
        }
        if (best_len) {
            *pos = p;
            *id = best;
            *len = best_len;
            return 1;
        }
    }
    return 0;
}

static fti_result fti__encode_text(const fti_tokenizer *tok, fti__enc_ctx *c,
                                   const unsigned char *s, size_t n, unsigned flags,
                                   fti_tokens *out) {
    size_t i = 0, pos, len;
    uint32_t id;
    if (!(flags & FTI_TOK_ALLOW_SPECIAL) || !tok->n_special)
        return fti__encode_ordinary(tok, c, s, n, out);
    while (fti__find_special(tok, s, n, i, &pos, &id, &len)) {
        if (fti__encode_ordinary(tok, c, s + i, pos - i, out) != FTI_OK) return FTI_ERR_NOMEM;
        if (fti_tokens_push(out, id) != FTI_OK) return FTI_ERR_NOMEM;
        i = pos + len;
    }
    return fti__encode_ordinary(tok, c, s + i, n - i, out);
}

FTIDEF fti_result fti_tokenizer_encode(const fti_tokenizer *tok, const char *text, size_t len,
                                       unsigned flags, fti_tokens *out) {
    fti__enc_ctx c;
    fti_result r;
    size_t len0;
    if (!tok || !out || (!text && len)) return FTI_ERR_INVALID;
    memset(&c, 0, sizeof c);
    if (len >= 16384) fti__enc_ctx_cache(&c);
    len0 = out->len;
    if (len && fti__tokens_reserve(out, len / 4 + 16) != FTI_OK) return FTI_ERR_NOMEM;
    r = fti__encode_text(tok, &c, (const unsigned char *)text, len, flags, out);
    if (r != FTI_OK) out->len = len0;
    fti__enc_ctx_free(&c);
    return r;
}

FTIDEF fti_result fti_tokenizer_count(const fti_tokenizer *tok, const char *text, size_t len,
                                      unsigned flags, size_t *n_tokens) {
    fti_tokens t;
    fti_result r;
    memset(&t, 0, sizeof t);
    if (n_tokens) *n_tokens = 0;
    r = fti_tokenizer_encode(tok, text, len, flags, &t);
    if (r == FTI_OK && n_tokens) *n_tokens = t.len;
    fti_tokens_free(&t);
    return r;
}

/* A cut at p is unsafe if a special token occurrence spans it (only with specials allowed). */
static int fti__cut_splits_special(const fti_tokenizer *tok, const unsigned char *s, size_t n,
                                   size_t p) {
    size_t k;
    for (k = 0; k < tok->n_special; k++) {
        const fti__tok_entry *e = &tok->entries[tok->special[k]];
        size_t q = p >= e->len ? p - e->len + 1 : 0;
        for (; q < p; q++)
            if (q + e->len <= n && q + e->len > p && !memcmp(s + q, tok->blob + e->off, e->len))
                return 1;
    }
    return 0;
}

typedef struct fti__enc_job {
    const fti_tokenizer *tok;
    const unsigned char *const *texts;
    const size_t *lens;
    unsigned flags;
    fti_tokens *outs;
    fti__enc_ctx *ctx; /* one per thread */
    fti_result *status; /* one per thread */
} fti__enc_job;

static void fti__enc_job_fn(void *arg, size_t begin, size_t end, int thread) {
    fti__enc_job *j = (fti__enc_job *)arg;
    size_t i;
    for (i = begin; i < end; i++) {
        fti_tokens *o = &j->outs[i];
        size_t len0 = o->len;
        fti_result r;
        if (j->status[thread] != FTI_OK) return;
        if (j->lens[i] >= 4096) fti__enc_ctx_cache(&j->ctx[thread]);
        r = fti__encode_text(j->tok, &j->ctx[thread], j->texts[i], j->lens[i], j->flags, o);
        if (r != FTI_OK) {
            o->len = len0;
            j->status[thread] = r;
        }
    }
}

/* Runs the job over n texts; each thread has its own context. */
static fti_result fti__enc_run(const fti_tokenizer *tok, fti_pool *pool,
                               const unsigned char *const *texts, const size_t *lens, size_t n,
                               unsigned flags, fti_tokens *outs) {
    int nt = fti_pool_threads(pool), t;
    fti__enc_job j;
    fti_result r = FTI_OK;
    j.tok = tok;
    j.texts = texts;
    j.lens = lens;
    j.flags = flags;
    j.outs = outs;
    j.ctx = (fti__enc_ctx *)fti_calloc((size_t)nt, sizeof(fti__enc_ctx));
    j.status = (fti_result *)fti_calloc((size_t)nt, sizeof(fti_result));
    if (!j.ctx || !j.status) {
        fti_free(j.ctx);
        fti_free(j.status);
        return FTI_ERR_NOMEM;
    }
    fti_pool_for(pool, n, 1, fti__enc_job_fn, &j);
    for (t = 0; t < nt; t++) {
        if (r == FTI_OK && j.status[t] != FTI_OK) r = j.status[t];
        fti__enc_ctx_free(&j.ctx[t]);
    }
    fti_free(j.ctx);
    fti_free(j.status);
    return r;
}

FTIDEF fti_result fti_tokenizer_encode_batch(const fti_tokenizer *tok, fti_pool *pool,
                                             const char *const *texts, const size_t *lens,
                                             size_t n, unsigned flags, fti_tokens *outs) {
    size_t i;
    if (!tok || (n && (!texts || !lens || !outs))) return FTI_ERR_INVALID;
    for (i = 0; i < n; i++)
        if (!texts[i] && lens[i]) return FTI_ERR_INVALID;
    if (n == 0) return FTI_OK;
    return fti__enc_run(tok, pool, (const unsigned char *const *)texts, lens, n, flags, outs);
}

FTIDEF fti_result fti_tokenizer_encode_pool(const fti_tokenizer *tok, fti_pool *pool,
                                            const char *text, size_t len, unsigned flags,
                                            fti_tokens *out) {
    const unsigned char *s = (const unsigned char *)text;
    int nt = fti_pool_threads(pool);
    size_t target, n_chunks = 0, cap, start, i, total;
    const unsigned char **texts = NULL;
    size_t *lens = NULL;
    fti_tokens *outs = NULL;
    fti_result r;
    if (!tok || !out || (!text && len)) return FTI_ERR_INVALID;
    if (nt <= 1 || len < ((size_t)1 << 17)) return fti_tokenizer_encode(tok, text, len, flags, out);
    /* about 8 chunks per thread, at least 32 KiB each */
    target = len / ((size_t)nt * 8);
    if (target < 32768) target = 32768;
    cap = len / target + 2;
    texts = (const unsigned char **)fti_malloc(cap * sizeof(*texts));
    lens = (size_t *)fti_malloc(cap * sizeof(size_t));
    outs = (fti_tokens *)fti_calloc(cap, sizeof(fti_tokens));
    if (!texts || !lens || !outs) {
        r = FTI_ERR_NOMEM;
        goto done;
    }
    start = 0;
    while (start < len) {
        size_t p = len;
        if (n_chunks + 2 < cap) {
            size_t want = start + target;
            while (want < len) {
                size_t q = fti__find_cut(s, len, want, want + 65536);
                if (!q) {
                    want += 65536;
                    continue;
                }
                if ((flags & FTI_TOK_ALLOW_SPECIAL) && fti__cut_splits_special(tok, s, len, q)) {
                    want = q + 1;
                    continue;
                }
                p = q;
                break;
            }
        }
        texts[n_chunks] = s + start;
        lens[n_chunks] = p - start;
        n_chunks++;
        start = p;
    }
    r = fti__enc_run(tok, pool, texts, lens, n_chunks, flags, outs);
    if (r != FTI_OK) goto done;
    for (i = 0, total = 0; i < n_chunks; i++) total += outs[i].len;
    r = fti__tokens_reserve(out, total);
    if (r != FTI_OK) goto done;
    for (i = 0; i < n_chunks; i++) {
        if (outs[i].len) memcpy(out->ids + out->len, outs[i].ids, outs[i].len * sizeof(uint32_t));
        out->len += outs[i].len;
    }
done:
    if (outs)
        for (i = 0; i < cap; i++) fti_tokens_free(&outs[i]);
    fti_free(outs);
    fti_free(texts);
    fti_free(lens);
    return r;
}

/* === tokenizer: decoding === */

FTIDEF fti_result fti_tokenizer_decode(const fti_tokenizer *tok, const uint32_t *ids, size_t n,
                                       fti_buf *out) {
    size_t i;
    if (!tok || !out || (!ids && n)) return FTI_ERR_INVALID;
    for (i = 0; i < n; i++) {
        const fti__tok_entry *e;
        if ((size_t)ids[i] >= tok->n_vocab || !tok->entries[ids[i]].len) return FTI_ERR_INVALID;
        e = &tok->entries[ids[i]];
        fti_buf_append(out, tok->blob + e->off, e->len);
        if (out->oom) return FTI_ERR_NOMEM;
    }
    return FTI_OK;
}

/* Bytes a UTF-8 sequence starting with b0 needs (0 if b0 cannot start one). */
static size_t fti__utf8_need(unsigned b0) {
    if (b0 < 0x80) return 1;
    if (b0 >= 0xC2 && b0 <= 0xDF) return 2;
    if (b0 >= 0xE0 && b0 <= 0xEF) return 3;
    if (b0 >= 0xF0 && b0 <= 0xF4) return 4;
    return 0;
}

/* 1 if s[0..n) (n < needed length) can still become a valid character. */
static int fti__utf8_prefix_ok(const unsigned char *s, size_t n) {
    size_t k;
    if (n >= 2) {
        unsigned b0 = s[0], b1 = s[1];
        if ((b1 & 0xC0) != 0x80) return 0;
        if (b0 == 0xE0 && b1 < 0xA0) return 0;
        if (b0 == 0xED && b1 > 0x9F) return 0;
        if (b0 == 0xF0 && b1 < 0x90) return 0;
        if (b0 == 0xF4 && b1 > 0x8F) return 0;
    }
    for (k = 2; k < n; k++)
        if ((s[k] & 0xC0) != 0x80) return 0;
    return 1;
}

static void fti__detok_emit(fti_detok *d, const unsigned char *s, size_t n, int final,
                            fti_buf *out) {
    size_t i = 0;
    while (i < n) {
        uint32_t cp;
        size_t l, need;
        if (s[i] < 0x80) {
            size_t j = i + 1;
            while (j < n && s[j] < 0x80) j++;
            fti_buf_append(out, s + i, j - i);
            i = j;
            continue;
        }
        l = fti__utf8_char(s, n, i, &cp);
        if (l) {
            fti_buf_append(out, s + i, l);
            i += l;
            continue;
        }
        need = fti__utf8_need(s[i]);
        if (!final && need && n - i < need && fti__utf8_prefix_ok(s + i, n - i)) {
            memcpy(d->held, s + i, n - i);
            d->n_held = n - i;
            return;
        }
        if (d->repair) fti_buf_append(out, "\xEF\xBF\xBD", 3);
        else fti_buf_append(out, s + i, 1);
        i++;
    }
}

FTIDEF fti_result fti_detok_push(fti_detok *d, const fti_tokenizer *tok, uint32_t id,
                                 fti_buf *out) {
    const fti__tok_entry *e;
    unsigned char small[64];
    size_t n;
    if (!d || !tok || !out) return FTI_ERR_INVALID;
    if ((size_t)id >= tok->n_vocab || !tok->entries[id].len) return FTI_ERR_INVALID;
    e = &tok->entries[id];
    if (d->n_held > 3) d->n_held = 0; /* defensive: a corrupted struct */
    n = d->n_held + e->len;
    if (n <= sizeof small) {
        memcpy(small, d->held, d->n_held);
        memcpy(small + d->n_held, tok->blob + e->off, e->len);
        d->n_held = 0;
        fti__detok_emit(d, small, n, 0, out);
    } else {
        unsigned char *tmp = (unsigned char *)fti_malloc(n);
        if (!tmp) return FTI_ERR_NOMEM;
        memcpy(tmp, d->held, d->n_held);
        memcpy(tmp + d->n_held, tok->blob + e->off, e->len);
        d->n_held = 0;
        fti__detok_emit(d, tmp, n, 0, out);
        fti_free(tmp);
    }
    return out->oom ? FTI_ERR_NOMEM : FTI_OK;
}

FTIDEF void fti_detok_flush(fti_detok *d, fti_buf *out) {
    unsigned char tmp[4];
    size_t n;
    if (!d || !out) return;
    n = d->n_held > 3 ? 0 : d->n_held;
    memcpy(tmp, d->held, n);
    d->n_held = 0;
    fti__detok_emit(d, tmp, n, 1, out);
}

/* === tokenizer: GPT-2 byte-to-unicode === */
/* GPT-2 writes each byte as a printable code point: '!'..'~', U+00A1..U+00AC and U+00AE..U+00FF
 * stand for themselves, the other 68 bytes become U+0100.. in byte order. */
static uint32_t fti__b2u(unsigned b) {
    /* the other bytes, in order, are 0x100 + their number among them: 0x00-0x20 are the first
     * 33, 0x7F-0xA0 the next 34, 0xAD the last (counting them, as GPT-2's code does, made this
     * O(b) per byte) */
    if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)) return b;
    if (b <= 0x20) return 0x100 + b;
    if (b <= 0xA0) return 0x100 + 33 + (b - 0x7F);
    return 0x100 + 33 + 34; /* 0xAD */
}

/* Appends bytes in byte-to-unicode form. */
static void fti__b2u_append(fti_buf *out, const unsigned char *p, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) {
        unsigned char u[4];
        size_t l = fti_utf8_encode(fti__b2u(p[i]), u);
        fti_buf_append(out, u, l);
    }
}

/* Inverse: decodes a byte-to-unicode string into out (at most cap bytes). Returns the byte count,
 * or (size_t)-1 if a character is not in the mapping or the string is not UTF-8. */
static size_t fti__u2b(const unsigned char *s, size_t n, unsigned char *out, size_t cap,
                       const int16_t *u2b) {
    size_t i = 0, m = 0;
    while (i < n) {
        uint32_t cp;
        size_t l = fti__utf8_char(s, n, i, &cp);
        if (!l || cp >= 0x200 || u2b[cp] < 0 || m >= cap) return (size_t)-1;
        out[m++] = (unsigned char)u2b[cp];
        i += l;
    }
    return m;
}

static void fti__u2b_table(int16_t u2b[0x200]) {
    unsigned b;
    for (b = 0; b < 0x200; b++) u2b[b] = -1;
    for (b = 0; b < 256; b++) u2b[fti__b2u(b)] = (int16_t)b;
}

/* === tokenizer: loading === */

static const fti_tokenizer_opts *fti__tok_opts(const fti_tokenizer_opts *o,
                                               fti_tokenizer_opts *tmp) {
    if (o) return o;
    memset(tmp, 0, sizeof *tmp);
    return tmp;
}

/* Adds opts' extra special tokens after the largest id. */
static fti_result fti__tok_add_opt_specials(fti_tokenizer *tok, const fti_tokenizer_opts *o,
                                            const char *name, fti_error *err) {
    size_t i;
    for (i = 0; o->special && i < o->n_special; i++) {
        const char *sp = o->special[i];
        size_t len = sp ? strlen(sp) : 0;
        size_t k;
        int dup = 0;
        if (!len || len > FTI_TOK_MAX_TOKEN_BYTES)
            return fti_error_set(err, FTI_ERR_INVALID, "%s: special token %u is empty or too long",
                                 name, (unsigned)i);
        for (k = 0; k < tok->n_vocab; k++)
            if (tok->entries[k].len == len && tok->entries[k].type == FTI_TOKEN_CONTROL &&
                !memcmp(tok->blob + tok->entries[k].off, sp, len))
                dup = 1;
        if (dup) continue;
        if (fti__tok_set(tok, (uint32_t)tok->n_vocab, sp, len, FTI__NO_RANK, FTI_TOKEN_CONTROL) !=
            FTI_OK)
            return fti_error_set(err, FTI_ERR_NOMEM, "%s: cannot add special token", name);
    }
    return FTI_OK;
}

/* Known tiktoken rank files (by SHA-256 of the file). */
typedef struct fti__known_tiktoken {
    const char *sha_hex;
    fti_pretok pretok;
    const char *specials; /* "text=id;..." */
} fti__known_tiktoken;
static const fti__known_tiktoken fti__known[] = {
    {"306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930", FTI_PRETOK_GPT2,
     "<|endoftext|>=50256;"},
    {"223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7", FTI_PRETOK_CL100K,
     "<|endoftext|>=100257;<|fim_prefix|>=100258;<|fim_middle|>=100259;<|fim_suffix|>=100260;"
     "<|endofprompt|>=100276;"},
    {"446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d", FTI_PRETOK_O200K,
     "<|endoftext|>=199999;<|endofprompt|>=200018;"},
};

static fti_result fti__tok_add_spec_list(fti_tokenizer *tok, const char *list) {
    while (*list) {
        const char *eq = strchr(list, '='), *semi = strchr(list, ';');
        unsigned long id;
        fti_result r;
        if (!eq || !semi) return FTI_ERR_INVALID;
        id = strtoul(eq + 1, NULL, 10);
        if (id < tok->n_vocab && tok->entries[id].len) return FTI_ERR_EXISTS;
        r = fti__tok_set(tok, (uint32_t)id, list, (size_t)(eq - list), FTI__NO_RANK,
                         FTI_TOKEN_CONTROL);
        if (r != FTI_OK) return r;
        list = semi + 1;
    }
    return FTI_OK;
}

static int fti__b64_val(unsigned c) {
    if (c >= 'A' && c <= 'Z') return (int)(c - 'A');
    if (c >= 'a' && c <= 'z') return (int)(c - 'a' + 26);
    if (c >= '0' && c <= '9') return (int)(c - '0' + 52);
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* Strict base64 (padding optional); returns the byte count or (size_t)-1. */
static size_t fti__b64_decode(const unsigned char *s, size_t n, unsigned char *out, size_t cap) {
    size_t i, m = 0, pad = 0;
    uint32_t acc = 0;
    int bits = 0;
    while (n && s[n - 1] == '=' && pad < 2) {
        n--;
        pad++;
    }
    if (pad && (n + pad) % 4) return (size_t)-1;
    for (i = 0; i < n; i++) {
        int v = fti__b64_val(s[i]);
        if (v < 0) return (size_t)-1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (m >= cap) return (size_t)-1;
            out[m++] = (unsigned char)(acc >> bits);
        }
    }
    if (n % 4 == 1) return (size_t)-1;
    if (bits && (acc & ((1u << bits) - 1))) return (size_t)-1; /* nonzero padding bits */
    return m;
}

static fti_result fti__load_tiktoken(const unsigned char *d, size_t len, const char *name,
                                     const fti_tokenizer_opts *o, fti_tokenizer **out,
                                     fti_error *err) {
    fti_tokenizer *tok = fti__tok_new();
    size_t pos = 0, line = 0, i;
    unsigned char digest[32], bytes[FTI_TOK_MAX_TOKEN_BYTES];
    char hex[65];
    const fti__known_tiktoken *known = NULL;
    fti_result r = FTI_OK;
    if (!tok) return fti_error_set(err, FTI_ERR_NOMEM, "%s: out of memory", name);
    fti_sha256_buf(d, len, digest);
    fti_sha256_hex(digest, hex);
    for (i = 0; i < sizeof fti__known / sizeof fti__known[0]; i++)
        if (!strcmp(hex, fti__known[i].sha_hex)) known = &fti__known[i];
    while (pos < len) {
        const unsigned char *ln = d + pos, *sp, *nl;
        size_t ll, nb;
        unsigned long rank = 0;
        size_t k;
        nl = (const unsigned char *)memchr(ln, '\n', len - pos);
        ll = nl ? (size_t)(nl - ln) : len - pos;
        pos += ll + (nl ? 1 : 0);
        line++;
        if (ll && ln[ll - 1] == '\r') ll--;
        if (ll == 0) continue;
        sp = (const unsigned char *)memchr(ln, ' ', ll);
        if (!sp) {
            r = fti_error_set(err, FTI_ERR_FORMAT, "%s: line %lu: expected \"<base64> <rank>\"",
                              name, (unsigned long)line);
            goto fail;
        }
        nb = fti__b64_decode(ln, (size_t)(sp - ln), bytes, sizeof bytes);
        if (nb == (size_t)-1 || nb == 0) {
            r = fti_error_set(err, FTI_ERR_FORMAT, "%s: line %lu: bad base64 token", name,
                              (unsigned long)line);
            goto fail;
        }
        k = (size_t)(sp - ln) + 1;
        if (k >= ll) {
            r = fti_error_set(err, FTI_ERR_FORMAT, "%s: line %lu: missing rank", name,
                              (unsigned long)line);
            goto fail;
        }
        for (; k < ll; k++) {
            if (ln[k] < '0' || ln[k] > '9' || rank >= FTI_TOK_MAX_VOCAB) {
                r = fti_error_set(err,
                                  ln[k] >= '0' && ln[k] <= '9' ? FTI_ERR_LIMIT : FTI_ERR_FORMAT,
                                  "%s: line %lu: bad rank (a number below %lu expected)", name,
                                  (unsigned long)line, (unsigned long)FTI_TOK_MAX_VOCAB);
                goto fail;
            }
            rank = rank * 10 + (unsigned long)(ln[k] - '0');
        }
        if (rank >= FTI_TOK_MAX_VOCAB) {
            r = fti_error_set(err, FTI_ERR_LIMIT, "%s: line %lu: rank %lu exceeds the limit %lu",
                              name, (unsigned long)line, rank, (unsigned long)FTI_TOK_MAX_VOCAB);
            goto fail;
        }
        r = fti__tok_set(tok, (uint32_t)rank, bytes, nb, (uint32_t)rank, FTI_TOKEN_NORMAL);
        if (r == FTI_ERR_EXISTS) {
            r = fti_error_set(err, FTI_ERR_FORMAT, "%s: line %lu: rank %lu appears twice", name,
                              (unsigned long)line, rank);
            goto fail;
        }
        if (r != FTI_OK) {
            r = fti_error_set(err, r, "%s: line %lu: %s", name, (unsigned long)line,
                              fti_result_str(r));
            goto fail;
        }
    }
    tok->pretok = o->pretok ? o->pretok : known ? known->pretok : FTI_PRETOK_GPT2;
    if (known && !o->special && !o->no_default_special) {
        r = fti__tok_add_spec_list(tok, known->specials);
        if (r != FTI_OK) {
            r = fti_error_set(err, FTI_ERR_FORMAT, "%s: a special token's id is taken", name);
            goto fail;
        }
    }
    r = fti__tok_add_opt_specials(tok, o, name, err);
    if (r != FTI_OK) goto fail;
    r = fti__tok_finish(tok, name, err);
    if (r != FTI_OK) goto fail;
    *out = tok;
    return FTI_OK;
fail:
    fti_tokenizer_free(tok);
    return r;
}

/* fti's own format. */
static fti_result fti__load_fti(const unsigned char *d, size_t len, const char *name,
                                const fti_tokenizer_opts *o, fti_tokenizer **out, fti_error *err) {
    fti_reader rd;
    uint32_t version, pretok, n_vocab, n_tokens, i, prev_id = 0;
    unsigned char digest[32];
    fti_tokenizer *tok;
    fti_result r;
    if (len < 24 + 32)
        return fti_error_set(err, FTI_ERR_FORMAT, "%s: truncated (%lu bytes, header needs 56)",
                             name, (unsigned long)len);
    fti_sha256_buf(d, len - 32, digest);
    if (memcmp(digest, d + len - 32, 32) != 0)
        return fti_error_set(err, FTI_ERR_CHECKSUM, "%s: SHA-256 checksum mismatch (corrupt file)",
                             name);
    rd = fti_reader_make(d, len - 32);
    fti_read_bytes(&rd, 8);
    version = fti_read_u32(&rd);
    pretok = fti_read_u32(&rd);
    n_vocab = fti_read_u32(&rd);
    n_tokens = fti_read_u32(&rd);
    if (version != FTI__TOK_VERSION)
        return fti_error_set(err, FTI_ERR_UNSUPPORTED, "%s: format version %u (this fti reads 1)",
                             name, (unsigned)version);
    if (pretok < FTI_PRETOK_GPT2 || pretok > FTI_PRETOK_O200K)
        return fti_error_set(err, FTI_ERR_FORMAT, "%s: unknown pre-tokenizer %u", name,
                             (unsigned)pretok);
    if (n_vocab > FTI_TOK_MAX_VOCAB || n_tokens > n_vocab)
        return fti_error_set(err, FTI_ERR_LIMIT, "%s: %u tokens in %u ids (limit %lu)", name,
                             (unsigned)n_tokens, (unsigned)n_vocab,
                             (unsigned long)FTI_TOK_MAX_VOCAB);
    if ((size_t)n_tokens * 12 > fti_reader_left(&rd))
        return fti_error_set(err, FTI_ERR_FORMAT, "%s: %u tokens cannot fit in %lu bytes", name,
                             (unsigned)n_tokens, (unsigned long)len);
    tok = fti__tok_new();
    if (!tok) return fti_error_set(err, FTI_ERR_NOMEM, "%s: out of memory", name);
    tok->pretok = (fti_pretok)pretok;
    for (i = 0; i < n_tokens; i++) {
        uint32_t id = fti_read_u32(&rd), rank;
        unsigned type = fti_read_u8(&rd), tlen;
        const void *bytes;
        rank = fti_read_u32(&rd);
        tlen = fti_read_u16(&rd);
        bytes = fti_read_bytes(&rd, tlen);
        if (rd.err || !bytes) {
            r = fti_error_set(err, FTI_ERR_FORMAT, "%s: truncated at token record %u", name,
                              (unsigned)i);
            goto fail;
        }
        if (id >= n_vocab || (i && id <= prev_id)) {
            r = fti_error_set(err, FTI_ERR_FORMAT,
                              "%s: token record %u: id %u out of order or >= %u", name, (unsigned)i,
                              (unsigned)id, (unsigned)n_vocab);
            goto fail;
        }
        if (type != FTI_TOKEN_NORMAL && type != FTI_TOKEN_CONTROL) {
            r = fti_error_set(err, FTI_ERR_FORMAT, "%s: token %u: bad type %u", name, (unsigned)id,
                              type);
            goto fail;
        }
        if (tlen == 0 || tlen > FTI_TOK_MAX_TOKEN_BYTES) {
            r = fti_error_set(err, FTI_ERR_FORMAT, "%s: token %u: length %u", name, (unsigned)id,
                              tlen);
            goto fail;
        }
        r = fti__tok_set(tok, id, bytes, tlen, rank, type);
        if (r != FTI_OK) {
            r = fti_error_set(err, r, "%s: token %u: %s", name, (unsigned)id, fti_result_str(r));
            goto fail;
        }
        prev_id = id;
    }
    if (fti_reader_left(&rd) != 0) {
        r = fti_error_set(err, FTI_ERR_FORMAT, "%s: %lu stray bytes after the tokens", name,
                          (unsigned long)fti_reader_left(&rd));
        goto fail;
    }
    r = fti__tok_grow(tok, n_vocab);
    if (r != FTI_OK) {
        r = fti_error_set(err, r, "%s: %s", name, fti_result_str(r));
        goto fail;
    }
    if (o->pretok) tok->pretok = o->pretok;
    r = fti__tok_add_opt_specials(tok, o, name, err);
    if (r != FTI_OK) goto fail;
    r = fti__tok_finish(tok, name, err);
    if (r != FTI_OK) goto fail;
    *out = tok;
    return FTI_OK;
fail:
    fti_tokenizer_free(tok);
    return r;
}

FTIDEF fti_result fti_tokenizer_load_mem(const void *data, size_t len, const char *name,
                                         const fti_tokenizer_opts *opts, fti_tokenizer **out,
                                         fti_error *err) {
    fti_tokenizer_opts tmp;
    const fti_tokenizer_opts *o = fti__tok_opts(opts, &tmp);
    const unsigned char *d = (const unsigned char *)data;
    size_t max = o->max_file_bytes ? o->max_file_bytes : FTI_TOK_MAX_FILE_BYTES;
    if (!name) name = "tokenizer";
    if (!out || (!data && len))
        return fti_error_set(err, FTI_ERR_INVALID, "%s: bad arguments", name);
    *out = NULL;
    if (len > max)
        return fti_error_set(err, FTI_ERR_LIMIT, "%s: %lu bytes exceeds the limit %lu", name,
                             (unsigned long)len, (unsigned long)max);
    if (len >= 8 && !memcmp(d, FTI__TOK_MAGIC, 8)) return fti__load_fti(d, len, name, o, out, err);
    if (len && d[0] == '{')
        return fti_error_set(err, FTI_ERR_UNSUPPORTED,
                             "%s: a JSON vocabulary: load encoder.json with its vocab.bpe "
                             "(fti_tokenizer_load_gpt2)", name);
    if (len >= 4 && !memcmp(d, "GGUF", 4)) /* it read as a bad .tiktoken line */
        return fti_error_set(err, FTI_ERR_UNSUPPORTED,
                             "%s: a GGUF model file: its tokenizer is read with "
                             "fti_engine_tokenizer (or fti_tokenizer_from_gguf)", name);
    if (len == 0) return fti_error_set(err, FTI_ERR_FORMAT, "%s: empty file", name);
    return fti__load_tiktoken(d, len, name, o, out, err);
}

FTIDEF fti_result fti_tokenizer_load(const char *path, const fti_tokenizer_opts *opts,
                                     fti_tokenizer **out, fti_error *err) {
    fti_tokenizer_opts tmp;
    const fti_tokenizer_opts *o = fti__tok_opts(opts, &tmp);
    size_t max = o->max_file_bytes ? o->max_file_bytes : FTI_TOK_MAX_FILE_BYTES;
    void *data = NULL;
    size_t len = 0;
    int is_json;
    fti_result r;
    if (!path || !out) return fti_error_set(err, FTI_ERR_INVALID, "tokenizer: bad arguments");
    *out = NULL;
    r = fti_file_read(path, max, &data, &len, err);
    if (r != FTI_OK) return r;
    {
        const char *c = (const char *)data, *e = c + len;
        while (c < e && (*c == ' ' || *c == '\t' || *c == '\n' || *c == '\r')) c++;
        is_json = c < e && *c == '{';
    }
    if (is_json) {
        /* GPT-2 encoder.json: vocab.bpe beside it */
        const char *base = fti_path_base(path);
        size_t dir_len = (size_t)(base - path);
        char *bpe = (char *)fti_malloc(dir_len + 10);
        fti_free(data);
        if (!bpe) return fti_error_set(err, FTI_ERR_NOMEM, "%s: out of memory", path);
        memcpy(bpe, path, dir_len);
        memcpy(bpe + dir_len, "vocab.bpe", 10);
        r = fti_tokenizer_load_gpt2(path, bpe, opts, out, err);
        fti_free(bpe);
        return r;
    }
    r = fti_tokenizer_load_mem(data, len, path, opts, out, err);
    fti_free(data);
    return r;
}

FTIDEF fti_result fti_tokenizer_load_gpt2_mem(const void *encoder_json, size_t encoder_len,
                                              const void *vocab_bpe, size_t vocab_len,
                                              const fti_tokenizer_opts *opts, fti_tokenizer **out,
                                              fti_error *err) {
    fti_tokenizer_opts tmp;
    const fti_tokenizer_opts *o = fti__tok_opts(opts, &tmp);
    fti_json_opts jo;
    fti_json_doc *doc = NULL;
    const fti_json *root, *m;
    fti_tokenizer *tok = NULL;
    int16_t u2b[0x200];
    unsigned char bytes[FTI_TOK_MAX_TOKEN_BYTES * 2];
    const unsigned char *v = (const unsigned char *)vocab_bpe;
    size_t pos = 0, line = 0, n_merges = 0, i;
    fti_result r;
    if (!out || (!encoder_json && encoder_len) || (!vocab_bpe && vocab_len))
        return fti_error_set(err, FTI_ERR_INVALID, "gpt2: bad arguments");
    *out = NULL;
    fti__u2b_table(u2b);
    memset(&jo, 0, sizeof jo);
    jo.max_depth = 4;
    r = fti_json_parse((const char *)encoder_json, encoder_len, &jo, &doc, NULL, err);
    if (r != FTI_OK) {
        fti_error_prefix(err, "encoder.json");
        return r;
    }
    root = fti_json_root(doc);
    if (!root || root->type != FTI_JSON_OBJECT) {
        fti_json_free(doc);
        return fti_error_set(err, FTI_ERR_FORMAT, "encoder.json: not a JSON object");
    }
    tok = fti__tok_new();
    if (!tok) {
        fti_json_free(doc);
        return fti_error_set(err, FTI_ERR_NOMEM, "encoder.json: out of memory");
    }
    tok->pretok = o->pretok ? o->pretok : FTI_PRETOK_GPT2;
    for (m = root->child; m; m = m->next) {
        size_t nb;
        if (m->type != FTI_JSON_NUMBER || !m->is_int || m->i < 0 ||
            m->i >= (int64_t)FTI_TOK_MAX_VOCAB) {
            r = fti_error_set(err, FTI_ERR_FORMAT, "encoder.json: token \"%.40s\": id is not an "
                              "integer in [0, %lu)", m->key ? m->key : "",
                              (unsigned long)FTI_TOK_MAX_VOCAB);
            goto fail;
        }
        nb = fti__u2b((const unsigned char *)m->key, m->key_len, bytes, FTI_TOK_MAX_TOKEN_BYTES,
                      u2b);
        if (nb == (size_t)-1 || nb == 0) {
            /* not in byte-to-unicode form: an added (special) token, taken as raw text */
            if (m->key_len == 0 || m->key_len > FTI_TOK_MAX_TOKEN_BYTES) {
                r = fti_error_set(err, FTI_ERR_FORMAT, "encoder.json: token %ld: bad length",
                                  (long)m->i);
                goto fail;
            }
            r = fti__tok_set(tok, (uint32_t)m->i, m->key, m->key_len, FTI__NO_RANK,
                             FTI_TOKEN_CONTROL);
        } else {
            r = fti__tok_set(tok, (uint32_t)m->i, bytes, nb, FTI__NO_RANK, FTI_TOKEN_NORMAL);
        }
        if (r != FTI_OK) {
            r = fti_error_set(err, r == FTI_ERR_EXISTS ? FTI_ERR_FORMAT : r,
                              "encoder.json: token \"%.40s\" id %ld: %s", m->key ? m->key : "",
                              (long)m->i,
                              r == FTI_ERR_EXISTS ? "id used twice" : fti_result_str(r));
            goto fail;
        }
    }
    fti_json_free(doc);
    doc = NULL;
    /* byte tokens keep their id as rank; a hash table for lookups by bytes */
    r = fti__tok_finish(tok, "encoder.json", err);
    if (r != FTI_OK) goto fail;
    for (i = 0; i < 256; i++) tok->entries[tok->byte_id[i]].rank = tok->byte_id[i];
    /* merges: line k "left right" gives the token left+right rank 256 + k */
    while (pos < vocab_len) {
        const unsigned char *ln = v + pos, *nl, *sp;
        size_t ll, nl_len, nr;
        const fti__tok_slot *sl, *sr, *st;
        nl = (const unsigned char *)memchr(ln, '\n', vocab_len - pos);
        ll = nl ? (size_t)(nl - ln) : vocab_len - pos;
        pos += ll + (nl ? 1 : 0);
        line++;
        if (ll && ln[ll - 1] == '\r') ll--;
        if (ll == 0 || (line == 1 && ll >= 8 && !memcmp(ln, "#version", 8))) continue;
        sp = (const unsigned char *)memchr(ln, ' ', ll);
        if (!sp || memchr(sp + 1, ' ', ll - (size_t)(sp - ln) - 1)) {
            r = fti_error_set(err, FTI_ERR_FORMAT, "vocab.bpe: line %lu: expected \"left right\"",
                              (unsigned long)line);
            goto fail;
        }
        nl_len = fti__u2b(ln, (size_t)(sp - ln), bytes, FTI_TOK_MAX_TOKEN_BYTES, u2b);
        nr = nl_len == (size_t)-1 ? (size_t)-1
                                  : fti__u2b(sp + 1, ll - (size_t)(sp - ln) - 1, bytes + nl_len,
                                             FTI_TOK_MAX_TOKEN_BYTES, u2b);
        if (nl_len == (size_t)-1 || nr == (size_t)-1 || !nl_len || !nr) {
            r = fti_error_set(err, FTI_ERR_FORMAT,
                              "vocab.bpe: line %lu: not in GPT-2 byte-to-unicode form",
                              (unsigned long)line);
            goto fail;
        }
        sl = fti__tok_lookup(tok, bytes, nl_len);
        sr = fti__tok_lookup(tok, bytes + nl_len, nr);
        st = fti__tok_lookup(tok, bytes, nl_len + nr);
        if (!sl || !sr || !st) {
            r = fti_error_set(err, FTI_ERR_FORMAT,
                              "vocab.bpe: line %lu: merge of tokens not in encoder.json",
                              (unsigned long)line);
            goto fail;
        }
        if (n_merges + 256 >= FTI_TOK_MAX_VOCAB) {
            r = fti_error_set(err, FTI_ERR_LIMIT, "vocab.bpe: too many merges");
            goto fail;
        }
        if (tok->entries[st->id1 - 1].rank == FTI__NO_RANK)
            tok->entries[st->id1 - 1].rank = (uint32_t)(256 + n_merges);
        n_merges++;
    }
    /* ids past the merges that no merge makes are added tokens (GPT-2's <|endoftext|>) */
    for (i = 256 + n_merges; i < tok->n_vocab; i++) {
        fti__tok_entry *e = &tok->entries[i];
        if (e->len > 1 && e->type == FTI_TOKEN_NORMAL && e->rank == FTI__NO_RANK)
            e->type = FTI_TOKEN_CONTROL;
    }
    if (o->no_default_special) /* drop them */
        for (i = 0; i < tok->n_vocab; i++)
            if (tok->entries[i].type == FTI_TOKEN_CONTROL) tok->entries[i].len = 0;
    tok->pretok = o->pretok ? o->pretok : FTI_PRETOK_GPT2;
    r = fti__tok_add_opt_specials(tok, o, "gpt2", err);
    if (r != FTI_OK) goto fail;
    r = fti__tok_finish(tok, "gpt2", err);
    if (r != FTI_OK) goto fail;
    *out = tok;
    return FTI_OK;
fail:
    fti_json_free(doc);
    fti_tokenizer_free(tok);
    return r;
}

FTIDEF fti_result fti_tokenizer_load_gpt2(const char *encoder_json_path, const char *vocab_bpe_path,
                                          const fti_tokenizer_opts *opts, fti_tokenizer **out,
                                          fti_error *err) {
    fti_tokenizer_opts tmp;
    const fti_tokenizer_opts *o = fti__tok_opts(opts, &tmp);
    size_t max = o->max_file_bytes ? o->max_file_bytes : FTI_TOK_MAX_FILE_BYTES;
    void *a = NULL, *b = NULL;
    size_t la = 0, lb = 0;
    fti_result r;
    if (!encoder_json_path || !vocab_bpe_path || !out)
        return fti_error_set(err, FTI_ERR_INVALID, "gpt2: bad arguments");
    r = fti_file_read(encoder_json_path, max, &a, &la, err);
    if (r != FTI_OK) return r;
    r = fti_file_read(vocab_bpe_path, max, &b, &lb, err);
    if (r != FTI_OK) {
        fti_free(a);
        return r;
    }
    r = fti_tokenizer_load_gpt2_mem(a, la, b, lb, opts, out, err);
    fti_free(a);
    fti_free(b);
    return r;
}

/* === tokenizer: saving === */

FTIDEF fti_result fti_tokenizer_serialize(const fti_tokenizer *tok, fti_buf *out) {
    size_t start;
    unsigned char digest[32];
    if (!tok || !out) return FTI_ERR_INVALID;
    start = out->len;
    if (fti__tok_serialize_body(tok, out) != FTI_OK) return FTI_ERR_NOMEM;
    fti_sha256_buf(out->data + start, out->len - start, digest);
    fti_buf_append(out, digest, 32);
    return out->oom ? FTI_ERR_NOMEM : FTI_OK;
}

FTIDEF fti_result fti_tokenizer_save(const fti_tokenizer *tok, const char *path, fti_error *err) {
    fti_buf b;
    fti_result r;
    if (!tok || !path) return fti_error_set(err, FTI_ERR_INVALID, "tokenizer save: bad arguments");
    memset(&b, 0, sizeof b);
    r = fti_tokenizer_serialize(tok, &b);
    if (r != FTI_OK) {
        fti_buf_free(&b);
        return fti_error_set(err, r, "%s: cannot serialize the tokenizer", path);
    }
    r = fti_file_write_atomic(path, b.data, b.len, err);
    fti_buf_free(&b);
    return r;
}

/* === tokenizer: GGUF metadata === */

typedef struct fti__rank_id {
    uint32_t rank, id;
} fti__rank_id;

static int fti__rank_id_cmp(const void *a, const void *b) {
    const fti__rank_id *x = (const fti__rank_id *)a, *y = (const fti__rank_id *)b;
    return x->rank < y->rank ? -1 : x->rank > y->rank;
}

static const char *fti__gguf_pre(fti_pretok p) {
    switch (p) {
    case FTI_PRETOK_CL100K: return "llama-bpe";
    case FTI_PRETOK_O200K: return "gpt-4o";
    default: return "gpt-2";
    }
}

FTIDEF void fti_tokenizer_gguf_free(fti_tokenizer_gguf *g) {
    if (!g) return;
    fti_free(g->tokens);
    fti_free(g->token_types);
    fti_free(g->merges);
    fti_free(g->mem_);
    memset(g, 0, sizeof *g);
}

FTIDEF fti_result fti_tokenizer_gguf_make(const fti_tokenizer *tok, fti_tokenizer_gguf *g) {
    fti_buf blob;
    size_t *tok_off = NULL, *merge_off = NULL, n_ranked = 0, id, k, n_merges = 0;
    fti__rank_id *order = NULL;
    fti__enc_ctx c;
    fti_result r = FTI_ERR_NOMEM;
    if (!tok || !g) return FTI_ERR_INVALID;
    memset(g, 0, sizeof *g);
    memset(&blob, 0, sizeof blob);
    memset(&c, 0, sizeof c);
    tok_off = (size_t *)fti_malloc((tok->n_vocab + 1) * sizeof(size_t));
    g->token_types = (int32_t *)fti_malloc((tok->n_vocab + 1) * sizeof(int32_t));
    order = (fti__rank_id *)fti_malloc((tok->n_vocab + 1) * sizeof(fti__rank_id));
    if (!tok_off || !g->token_types || !order) goto done;
    for (id = 0; id < tok->n_vocab; id++) {
        const fti__tok_entry *e = &tok->entries[id];
        tok_off[id] = blob.len;
        if (!e->len) {
            fti_buf_printf(&blob, "[PAD%lu]", (unsigned long)id);
            g->token_types[id] = FTI_TOKEN_UNUSED;
        } else if (e->type == FTI_TOKEN_CONTROL) {
            fti_buf_append(&blob, tok->blob + e->off, e->len);
            g->token_types[id] = FTI_TOKEN_CONTROL;
        } else {
            fti__b2u_append(&blob, tok->blob + e->off, e->len);
            g->token_types[id] = FTI_TOKEN_NORMAL;
            if (e->len > 1 && e->rank != FTI__NO_RANK) {
                order[n_ranked].rank = e->rank;
                order[n_ranked].id = (uint32_t)id;
                n_ranked++;
            }
        }
        fti_buf_putc(&blob, 0);
    }
    if (blob.oom) goto done;
    qsort(order, n_ranked, sizeof *order, fti__rank_id_cmp);
    merge_off = (size_t *)fti_malloc((n_ranked + 1) * sizeof(size_t));
    if (!merge_off) goto done;
    for (k = 0; k < n_ranked; k++) {
        const fti__tok_entry *e = &tok->entries[order[k].id];
        size_t n_ids;
        if (fti__bpe(tok, &c, tok->blob + e->off, e->len, e->rank, &n_ids) != FTI_OK) goto done;
        if (n_ids != 2) continue; /* unreachable by merges: no merge for it */
        merge_off[n_merges++] = blob.len;
        {
            const fti__tok_entry *a = &tok->entries[c.ids[0]], *b = &tok->entries[c.ids[1]];
            fti__b2u_append(&blob, tok->blob + a->off, a->len);
            fti_buf_putc(&blob, ' ');
            fti__b2u_append(&blob, tok->blob + b->off, b->len);
            fti_buf_putc(&blob, 0);
        }
    }
    if (blob.oom) goto done;
    g->tokens = (char **)fti_malloc((tok->n_vocab + 1) * sizeof(char *));
    g->merges = (char **)fti_malloc((n_merges + 1) * sizeof(char *));
    if (!g->tokens || !g->merges) goto done;
    for (id = 0; id < tok->n_vocab; id++) g->tokens[id] = blob.data + tok_off[id];
    for (k = 0; k < n_merges; k++) g->merges[k] = blob.data + merge_off[k];
    g->n_tokens = tok->n_vocab;
    g->n_merges = n_merges;
    g->model = "gpt2";
    g->pre = fti__gguf_pre(tok->pretok);
    g->eos_id = fti_tokenizer_eot_id(tok);
    g->bos_id = g->eos_id;
    g->mem_ = blob.data;
    blob.data = NULL;
    r = FTI_OK;
done:
    fti__enc_ctx_free(&c);
    fti_free(tok_off);
    fti_free(merge_off);
    fti_free(order);
    fti_buf_free(&blob);
    if (r != FTI_OK) fti_tokenizer_gguf_free(g);
    return r;
}

FTIDEF fti_result fti_tokenizer_from_gguf(const char *const *tokens, const size_t *token_lens,
                                          const int32_t *types, size_t n_tokens,
                                          const char *const *merges, const size_t *merge_lens,
                                          size_t n_merges, const char *pre, fti_tokenizer **out,
                                          fti_error *err) {
    fti_tokenizer *tok;
    int16_t u2b[0x200];
    unsigned char bytes[FTI_TOK_MAX_TOKEN_BYTES * 2];
    fti_pretok pretok = FTI_PRETOK_GPT2;
    size_t i;
    fti_result r;
    if (!out || (n_tokens && (!tokens || !token_lens)) || (n_merges && (!merges || !merge_lens)))
        return fti_error_set(err, FTI_ERR_INVALID, "gguf tokenizer: bad arguments");
    *out = NULL;
    if (pre && strcmp(pre, "default") != 0) {
        pretok = fti_pretok_parse(pre);
        if (pretok == FTI_PRETOK_DEFAULT)
            return fti_error_set(err, FTI_ERR_UNSUPPORTED,
                                 "gguf tokenizer: pre-tokenizer \"%.40s\" is not supported", pre);
    }
    if (n_tokens > FTI_TOK_MAX_VOCAB)
        return fti_error_set(err, FTI_ERR_LIMIT, "gguf tokenizer: %lu tokens (limit %lu)",
                             (unsigned long)n_tokens, (unsigned long)FTI_TOK_MAX_VOCAB);
    fti__u2b_table(u2b);
    tok = fti__tok_new();
    if (!tok) return fti_error_set(err, FTI_ERR_NOMEM, "gguf tokenizer: out of memory");
    tok->pretok = pretok;
    r = fti__tok_grow(tok, n_tokens);
    if (r != FTI_OK) goto nomem;
    for (i = 0; i < n_tokens; i++) {
        int32_t type = types ? types[i] : FTI_TOKEN_NORMAL;
        if (!tokens[i] && token_lens[i]) {
            r = fti_error_set(err, FTI_ERR_INVALID, "gguf tokenizer: token %lu is NULL",
                              (unsigned long)i);
            goto fail;
        }
        if (type == FTI_TOKEN_UNUSED || type == FTI_TOKEN_UNKNOWN) continue;
        if (type == FTI_TOKEN_CONTROL || type == FTI_TOKEN_USER_DEFINED) {
            r = fti__tok_set(tok, (uint32_t)i, tokens[i], token_lens[i], FTI__NO_RANK,
                             FTI_TOKEN_CONTROL);
        } else if (type == FTI_TOKEN_NORMAL || type == FTI_TOKEN_BYTE) {
            size_t nb = fti__u2b((const unsigned char *)tokens[i], token_lens[i], bytes,
                                 FTI_TOK_MAX_TOKEN_BYTES, u2b);
            if (nb == (size_t)-1 || nb == 0) {
                r = fti_error_set(err, FTI_ERR_FORMAT,
                                  "gguf tokenizer: token %lu is not in GPT-2 byte-to-unicode form",
                                  (unsigned long)i);
                goto fail;
            }
            r = fti__tok_set(tok, (uint32_t)i, bytes, nb, FTI__NO_RANK, FTI_TOKEN_NORMAL);
        } else {
            r = fti_error_set(err, FTI_ERR_FORMAT, "gguf tokenizer: token %lu has type %ld",
                              (unsigned long)i, (long)type);
            goto fail;
        }
        if (r != FTI_OK) {
            r = fti_error_set(err, r == FTI_ERR_LIMIT ? FTI_ERR_FORMAT : r,
                              "gguf tokenizer: token %lu: %s", (unsigned long)i,
                              r == FTI_ERR_LIMIT ? "empty or too long" : fti_result_str(r));
            goto fail;
        }
    }
    r = fti__tok_finish(tok, "gguf tokenizer", err);
    if (r != FTI_OK) goto fail;
    for (i = 0; i < 256; i++) tok->entries[tok->byte_id[i]].rank = tok->byte_id[i];
    if (n_merges > FTI_TOK_MAX_VOCAB) {
        r = fti_error_set(err, FTI_ERR_LIMIT, "gguf tokenizer: %lu merges",
                          (unsigned long)n_merges);
        goto fail;
    }
    for (i = 0; i < n_merges; i++) {
        const unsigned char *m = (const unsigned char *)merges[i], *sp;
        size_t ml = merge_lens[i], nl, nr;
        const fti__tok_slot *st;
        sp = m ? (const unsigned char *)memchr(m, ' ', ml) : NULL;
        if (!sp) {
            r = fti_error_set(err, FTI_ERR_FORMAT, "gguf tokenizer: merge %lu has no space",
                              (unsigned long)i);
            goto fail;
        }
        nl = fti__u2b(m, (size_t)(sp - m), bytes, FTI_TOK_MAX_TOKEN_BYTES, u2b);
        nr = nl == (size_t)-1 ? nl
                              : fti__u2b(sp + 1, ml - (size_t)(sp - m) - 1, bytes + nl,
                                         FTI_TOK_MAX_TOKEN_BYTES, u2b);
        if (nl == (size_t)-1 || nr == (size_t)-1 || !nl || !nr ||
            !fti__tok_lookup(tok, bytes, nl) || !fti__tok_lookup(tok, bytes + nl, nr) ||
            !(st = fti__tok_lookup(tok, bytes, nl + nr))) {
            r = fti_error_set(err, FTI_ERR_FORMAT,
                              "gguf tokenizer: merge %lu does not join two tokens into a token",
                              (unsigned long)i);
            goto fail;
        }
        if (tok->entries[st->id1 - 1].rank == FTI__NO_RANK)
            tok->entries[st->id1 - 1].rank = (uint32_t)(256 + i);
    }
    r = fti__tok_finish(tok, "gguf tokenizer", err);
    if (r != FTI_OK) goto fail;
    *out = tok;
    return FTI_OK;
nomem:
    r = fti_error_set(err, FTI_ERR_NOMEM, "gguf tokenizer: out of memory");
fail:
    fti_tokenizer_free(tok);
    return r;
}

/* === tokenizer: training === */
/*
 * 1. Counting: texts are buffered; each flush cuts them into pieces (documents, special tokens
 *    removed, long documents cut at safe boundaries), pre-tokenizes the pieces on the pool's
 *    threads into per-thread word->count maps, and adds those into one map, in thread order.
 * 2. Merging: each unique word becomes a sequence of symbols (ids; bytes at first). Pairs of
 *    adjacent symbols have a count (sum of word counts) and a list of the words they occur in.
 *    A max-heap orders pairs by (count desc, left id asc, right id asc); entries are lazy: a
 *    popped entry whose count is stale is pushed back with the current count. Merging (a,b)->c
 *    rewrites only the words on (a,b)'s list and adjusts the counts of the neighbouring pairs,
 *    so no merge recounts the corpus.
 * A merged string that already is a token (possible: "a"+"bc" after "ab"+"c") reuses its id.
 */

typedef struct fti__wentry {
    uint64_t h;
    uint64_t count;
    size_t off;
    uint32_t len;
    uint32_t used;
} fti__wentry;

typedef struct fti__wmap {
    fti__wentry *e;
    size_t cap, n;
    unsigned char *blob;
    size_t blob_len, blob_cap;
    int oom;
} fti__wmap;

static void fti__wmap_free(fti__wmap *m) {
    fti_free(m->e);
    fti_free(m->blob);
    memset(m, 0, sizeof *m);
}

static int fti__wmap_grow(fti__wmap *m) {
    size_t cap = m->cap ? m->cap * 2 : 1024, i;
    fti__wentry *e = (fti__wentry *)fti_calloc(cap, sizeof(fti__wentry));
    if (!e) return 0;
    for (i = 0; i < m->cap; i++) {
        size_t k;
        if (!m->e[i].used) continue;
        k = (size_t)m->e[i].h & (cap - 1);
        while (e[k].used) k = (k + 1) & (cap - 1);
        e[k] = m->e[i];
    }
    fti_free(m->e);
    m->e = e;
    m->cap = cap;
    return 1;
}

/* Adds count to word w[0..n); returns the entry index or (size_t)-1 (sets oom). */
static size_t fti__wmap_add(fti__wmap *m, const unsigned char *w, size_t n, uint64_t h,
                            uint64_t count) {
    size_t k;
    if (m->oom) return (size_t)-1;
    if ((m->n + 1) * 2 > m->cap && !fti__wmap_grow(m)) {
        m->oom = 1;
        return (size_t)-1;
    }
    k = (size_t)h & (m->cap - 1);
    while (m->e[k].used) {
        fti__wentry *e = &m->e[k];
        if (e->h == h && e->len == n && !memcmp(m->blob + e->off, w, n)) {
            e->count += count;
            return k;
        }
        k = (k + 1) & (m->cap - 1);
    }
    if (m->blob_len + n > m->blob_cap) {
        size_t cap = m->blob_cap ? m->blob_cap * 2 : 65536;
        unsigned char *b;
        while (cap < m->blob_len + n) cap *= 2;
        b = (unsigned char *)fti_realloc(m->blob, cap);
        if (!b) {
            m->oom = 1;
            return (size_t)-1;
        }
        m->blob = b;
        m->blob_cap = cap;
    }
    memcpy(m->blob + m->blob_len, w, n);
    m->e[k].h = h;
    m->e[k].count = count;
    m->e[k].off = m->blob_len;
    m->e[k].len = (uint32_t)n;
    m->e[k].used = 1;
    m->blob_len += n;
    m->n++;
    return k;
}

struct fti_bpe_trainer {
    fti_bpe_train_opts o;
    unsigned char **special;
    size_t *special_len;
    size_t n_special;
    fti__wmap words;
    fti_buf pending;
    size_t *doc_end;
    size_t n_docs, cap_docs;
    fti_bpe_train_stats stats;
    int trained;
    int failed;
};

FTIDEF fti_result fti_bpe_trainer_create(const fti_bpe_train_opts *opts, fti_bpe_trainer **out) {
    fti_bpe_trainer *t;
    static const char *const def_special[] = {"<|endoftext|>"};
    const char *const *sp;
    size_t n_sp, i;
    if (!out) return FTI_ERR_INVALID;
    *out = NULL;
    t = (fti_bpe_trainer *)fti_calloc(1, sizeof *t);
    if (!t) return FTI_ERR_NOMEM;
    if (opts) t->o = *opts;
    if (!t->o.pretok) t->o.pretok = FTI_PRETOK_GPT2;
    if (t->o.pretok > FTI_PRETOK_O200K) {
        fti_free(t);
        return FTI_ERR_INVALID;
    }
    if (!t->o.vocab_size) t->o.vocab_size = 4096;
    if (!t->o.min_frequency) t->o.min_frequency = 2;
    if (!t->o.max_word_bytes) t->o.max_word_bytes = 256;
    if (t->o.max_word_bytes > FTI_TOK_MAX_TOKEN_BYTES)
        t->o.max_word_bytes = FTI_TOK_MAX_TOKEN_BYTES;
    sp = t->o.special;
    n_sp = t->o.n_special;
    if (!sp && !t->o.no_default_special) {
        sp = def_special;
        n_sp = 1;
    }
    if (!sp) n_sp = 0;
    if (t->o.vocab_size < 256 + n_sp || t->o.vocab_size > FTI_TOK_MAX_VOCAB) {
        fti_free(t);
        return FTI_ERR_INVALID;
    }
    t->special = (unsigned char **)fti_calloc(n_sp + 1, sizeof(unsigned char *));
    t->special_len = (size_t *)fti_calloc(n_sp + 1, sizeof(size_t));
    if (!t->special || !t->special_len) {
        fti_bpe_trainer_free(t);
        return FTI_ERR_NOMEM;
    }
    for (i = 0; i < n_sp; i++) {
        size_t len = sp[i] ? strlen(sp[i]) : 0;
        if (!len || len > FTI_TOK_MAX_TOKEN_BYTES) {
            fti_bpe_trainer_free(t);
            return FTI_ERR_INVALID;
        }
        t->special[i] = (unsigned char *)fti_strndup(sp[i], len);
        if (!t->special[i]) {
            fti_bpe_trainer_free(t);
            return FTI_ERR_NOMEM;
        }
        t->special_len[i] = len;
        t->n_special++;
    }
    t->o.special = NULL; /* the copies above are used */
    *out = t;
    return FTI_OK;
}

FTIDEF void fti_bpe_trainer_free(fti_bpe_trainer *t) {
    size_t i;
    if (!t) return;
    for (i = 0; i < t->n_special; i++) fti_free(t->special[i]);
    fti_free(t->special);
    fti_free(t->special_len);
    fti__wmap_free(&t->words);
    fti_buf_free(&t->pending);
    fti_free(t->doc_end);
    fti_free(t);
}

FTIDEF void fti_bpe_trainer_stats(const fti_bpe_trainer *t, fti_bpe_train_stats *stats) {
    if (!stats) return;
    if (!t) {
        memset(stats, 0, sizeof *stats);
        return;
    }
    *stats = t->stats;
    if (!t->trained) stats->n_unique = t->words.n;
}

/* One piece of ordinary text to count. */
typedef struct fti__piece {
    const unsigned char *p;
    size_t n;
} fti__piece;

typedef struct fti__count_job {
    fti_bpe_trainer *t;
    const fti__piece *pieces;
    fti__wmap *maps; /* one per thread; maps[0] may be the trainer's own */
    uint64_t *n_words;
} fti__count_job;

static void fti__count_words(fti_bpe_trainer *t, fti__wmap *m, const unsigned char *s, size_t n,
                             uint64_t *n_words) {
    size_t i = 0, maxw = t->o.max_word_bytes;
    while (i < n) {
        size_t e = fti__pretok_step(t->o.pretok, s, n, i), k;
        for (k = i; k < e; k += maxw) {
            size_t l = e - k < maxw ? e - k : maxw;
            fti__wmap_add(m, s + k, l, fti__tok_hash(s + k, l), 1);
        }
        (*n_words)++;
        i = e;
    }
}

static void fti__count_fn(void *arg, size_t begin, size_t end, int thread) {
    fti__count_job *j = (fti__count_job *)arg;
    size_t i;
    for (i = begin; i < end; i++)
        fti__count_words(j->t, &j->maps[thread], j->pieces[i].p, j->pieces[i].n,
                         &j->n_words[thread]);
}

/* Counts the pending documents. */
static fti_result fti__trainer_flush(fti_bpe_trainer *t) {
    fti__piece *pieces = NULL;
    size_t n_pieces = 0, cap = 0, d, start = 0, k;
    int nt = fti_pool_threads(t->o.pool), th;
    fti__count_job j;
    fti_result r = FTI_OK;
    const unsigned char *s = (const unsigned char *)t->pending.data;
    if (t->n_docs == 0) return FTI_OK;
    for (d = 0; d < t->n_docs; d++) {
        size_t end = t->doc_end[d], i = start;
        /* cut out special tokens, then cut long stretches at safe boundaries */
        while (i < end) {
            size_t best_pos = end, best_len = 0, p, q;
            for (k = 0; k < t->n_special; k++) {
                size_t L = t->special_len[k];
                for (p = i; p + L <= end && p < best_pos; p++) {
                    const unsigned char *hit =
                        (const unsigned char *)memchr(s + p, t->special[k][0], end - p);
                    if (!hit) break;
                    p = (size_t)(hit - s);
                    if (p + L > end || p >= best_pos) break;
                    if (!memcmp(s + p, t->special[k], L)) {
                        if (p < best_pos || L > best_len) {
                            best_pos = p;
                            best_len = L;
                        }
                        break;
                    }
                }
            }
            /* ordinary text [i, best_pos) */
            for (p = i; p < best_pos;) {
                size_t stop = best_pos;
                if (best_pos - p > ((size_t)1 << 20)) {
                    q = fti__find_cut(s, best_pos, p + ((size_t)1 << 20), best_pos);
                    if (q) stop = q;
                }
                if (n_pieces == cap) {
                    size_t nc = cap ? cap * 2 : 64;
                    fti__piece *np = (fti__piece *)fti_realloc(pieces, nc * sizeof *np);
                    if (!np) {
                        fti_free(pieces);
                        return FTI_ERR_NOMEM;
                    }
                    pieces = np;
                    cap = nc;
                }
                pieces[n_pieces].p = s + p;
                pieces[n_pieces].n = stop - p;
                n_pieces++;
                p = stop;
            }
            i = best_pos + best_len;
        }
        start = end;
    }
    j.t = t;
    j.pieces = pieces;
    j.maps = (fti__wmap *)fti_calloc((size_t)nt, sizeof(fti__wmap));
    j.n_words = (uint64_t *)fti_calloc((size_t)nt, sizeof(uint64_t));
    if (!j.maps || !j.n_words) {
        r = FTI_ERR_NOMEM;
        goto done;
    }
    if (nt == 1) {
        j.maps[0] = t->words; /* count straight into the trainer's map */
        fti__count_fn(&j, 0, n_pieces, 0);
        t->words = j.maps[0];
        memset(&j.maps[0], 0, sizeof j.maps[0]);
    } else {
        fti_pool_for(t->o.pool, n_pieces, 1, fti__count_fn, &j);
        for (th = 0; th < nt; th++) {
            fti__wmap *m = &j.maps[th];
            if (m->oom) t->words.oom = 1;
            for (k = 0; k < m->cap; k++)
                if (m->e[k].used)
                    fti__wmap_add(&t->words, m->blob + m->e[k].off, m->e[k].len, m->e[k].h,
                                  m->e[k].count);
        }
    }
    for (th = 0; th < nt; th++) t->stats.n_words += j.n_words[th];
    if (t->words.oom) r = FTI_ERR_NOMEM;
done:
    if (j.maps)
        for (th = 0; th < nt; th++) fti__wmap_free(&j.maps[th]);
    fti_free(j.maps);
    fti_free(j.n_words);
    fti_free(pieces);
    t->pending.len = 0;
    t->n_docs = 0;
    return r;
}

FTIDEF fti_result fti_bpe_trainer_add(fti_bpe_trainer *t, const char *text, size_t len) {
    if (!t || (!text && len)) return FTI_ERR_INVALID;
    if (t->trained || t->failed) return FTI_ERR_INVALID;
    if (len == 0) return FTI_OK;
    if (t->n_docs == t->cap_docs) {
        size_t cap = t->cap_docs ? t->cap_docs * 2 : 256;
        size_t *d = (size_t *)fti_realloc(t->doc_end, cap * sizeof(size_t));
        if (!d) return FTI_ERR_NOMEM;
        t->doc_end = d;
        t->cap_docs = cap;
    }
    fti_buf_append(&t->pending, text, len);
    if (t->pending.oom) {
        t->failed = 1;
        return FTI_ERR_NOMEM;
    }
    t->doc_end[t->n_docs++] = t->pending.len;
    t->stats.n_bytes += len;
    if (t->pending.len >= ((size_t)16 << 20)) {
        fti_result r = fti__trainer_flush(t);
        if (r != FTI_OK) t->failed = 1;
        return r;
    }
    return FTI_OK;
}

/* --- the merge loop --- */

typedef struct fti__pair {
    uint32_t a, b;
    int64_t count;
    uint32_t *w; /* words containing the pair (may hold stale entries and repeats) */
    uint32_t nw, cw;
    uint32_t stamp;
} fti__pair;

typedef struct fti__pheap_e {
    int64_t count;
    uint32_t a, b;
} fti__pheap_e;

typedef struct fti__merger {
    fti__pair *pairs;
    size_t n_pairs, cap_pairs;
    uint32_t *slot; /* pair index + 1 by hash of (a,b) */
    size_t slot_mask;
    fti__pheap_e *heap;
    size_t n_heap, cap_heap;
    uint32_t *touched;
    size_t n_touched, cap_touched;
    int oom;
} fti__merger;

static uint64_t fti__pair_hash(uint32_t a, uint32_t b) {
    uint64_t h = ((uint64_t)a << 32 | b) * 0x9E3779B97F4A7C15ull;
    return h ^ (h >> 29);
}

static int fti__pheap_less(const fti__pheap_e *x, const fti__pheap_e *y) {
    /* x is "greater priority" than y? used as: parent must not be less than child */
    if (x->count != y->count) return x->count < y->count;
    if (x->a != y->a) return x->a > y->a;
    return x->b > y->b;
}

static void fti__pheap_push(fti__merger *m, int64_t count, uint32_t a, uint32_t b) {
    fti__pheap_e e;
    size_t i;
    if (m->n_heap == m->cap_heap) {
        size_t cap = m->cap_heap ? m->cap_heap * 2 : 4096;
        fti__pheap_e *h = (fti__pheap_e *)fti_realloc(m->heap, cap * sizeof *h);
        if (!h) {
            m->oom = 1;
            return;
        }
        m->heap = h;
        m->cap_heap = cap;
    }
    e.count = count;
    e.a = a;
    e.b = b;
    i = m->n_heap++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!fti__pheap_less(&m->heap[p], &e)) break;
        m->heap[i] = m->heap[p];
        i = p;
    }
    m->heap[i] = e;
}

static fti__pheap_e fti__pheap_pop(fti__merger *m) {
    fti__pheap_e top = m->heap[0], v = m->heap[--m->n_heap];
    size_t i = 0, n = m->n_heap;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && fti__pheap_less(&m->heap[c], &m->heap[c + 1])) c++;
        if (!fti__pheap_less(&v, &m->heap[c])) break;
        m->heap[i] = m->heap[c];
        i = c;
    }
    if (n) m->heap[i] = v;
    return top;
}

/* Index of pair (a,b), created when absent (and create is set); (size_t)-1 if absent/no memory. */
static size_t fti__pair_get(fti__merger *m, uint32_t a, uint32_t b, int create) {
    size_t k = (size_t)fti__pair_hash(a, b) & m->slot_mask;
    for (;;) {
        uint32_t s = m->slot[k];
        if (!s) break;
        if (m->pairs[s - 1].a == a && m->pairs[s - 1].b == b) return s - 1;
        k = (k + 1) & m->slot_mask;
    }
    if (!create || m->oom) return (size_t)-1;
    if (m->n_pairs == m->cap_pairs) {
        size_t cap = m->cap_pairs ? m->cap_pairs * 2 : 4096;
        fti__pair *p = (fti__pair *)fti_realloc(m->pairs, cap * sizeof *p);
        if (!p) {
            m->oom = 1;
            return (size_t)-1;
        }
        m->pairs = p;
        m->cap_pairs = cap;
    }
    if ((m->n_pairs + 1) * 2 > m->slot_mask + 1) {
        size_t cap = (m->slot_mask + 1) * 2, i;
        uint32_t *ns = (uint32_t *)fti_calloc(cap, sizeof(uint32_t));
        if (!ns) {
            m->oom = 1;
            return (size_t)-1;
        }
        for (i = 0; i < m->n_pairs; i++) {
            size_t q = (size_t)fti__pair_hash(m->pairs[i].a, m->pairs[i].b) & (cap - 1);
            while (ns[q]) q = (q + 1) & (cap - 1);
            ns[q] = (uint32_t)i + 1;
        }
        fti_free(m->slot);
        m->slot = ns;
        m->slot_mask = cap - 1;
        k = (size_t)fti__pair_hash(a, b) & m->slot_mask;
        while (m->slot[k]) k = (k + 1) & m->slot_mask;
    }
    memset(&m->pairs[m->n_pairs], 0, sizeof(fti__pair));
    m->pairs[m->n_pairs].a = a;
    m->pairs[m->n_pairs].b = b;
    m->slot[k] = (uint32_t)m->n_pairs + 1;
    return m->n_pairs++;
}

static void fti__pair_add_word(fti__merger *m, fti__pair *p, uint32_t w) {
    if (p->nw && p->w[p->nw - 1] == w) return;
    if (p->nw == p->cw) {
        uint32_t cap = p->cw ? p->cw * 2 : 4;
        uint32_t *nw = (uint32_t *)fti_realloc(p->w, cap * sizeof(uint32_t));
        if (!nw) {
            m->oom = 1;
            return;
        }
        p->w = nw;
        p->cw = cap;
    }
    p->w[p->nw++] = w;
}

/* Adds delta to pair (a,b); positive deltas record word w and mark the pair touched. */
static void fti__pair_delta(fti__merger *m, uint32_t a, uint32_t b, int64_t delta, uint32_t w,
                            uint32_t stamp) {
    size_t i = fti__pair_get(m, a, b, delta > 0);
    fti__pair *p;
    if (i == (size_t)-1) return;
    p = &m->pairs[i];
    p->count += delta;
    if (delta > 0) {
        fti__pair_add_word(m, p, w);
        if (p->stamp != stamp) {
            p->stamp = stamp;
            if (m->n_touched == m->cap_touched) {
                size_t cap = m->cap_touched ? m->cap_touched * 2 : 1024;
                uint32_t *t = (uint32_t *)fti_realloc(m->touched, cap * sizeof(uint32_t));
                if (!t) {
                    m->oom = 1;
                    return;
                }
                m->touched = t;
                m->cap_touched = cap;
            }
            m->touched[m->n_touched++] = (uint32_t)i;
        }
    }
}

FTIDEF fti_result fti_bpe_trainer_train(fti_bpe_trainer *t, fti_tokenizer **out, fti_error *err) {
    fti__merger m;
    uint32_t *sym = NULL, *wlen = NULL, *mark = NULL;
    size_t *woff = NULL;
    uint64_t *wcnt = NULL;
    size_t n_words = 0, total = 0, i, k, n_merges_target, n_tokens;
    fti_tokenizer *tok = NULL;
    fti__wmap tokmap; /* token bytes -> id, for reused strings */
    fti_result r = FTI_ERR_NOMEM;
    uint32_t stamp = 0;
    size_t progress_every, next_progress;
    memset(&m, 0, sizeof m);
    memset(&tokmap, 0, sizeof tokmap);
    if (!t || !out) return fti_error_set(err, FTI_ERR_INVALID, "bpe train: bad arguments");
    *out = NULL;
    if (t->trained || t->failed)
        return fti_error_set(err, FTI_ERR_INVALID, "bpe train: trainer already used or failed");
    r = fti__trainer_flush(t);
    if (r != FTI_OK)
        return fti_error_set(err, r, "bpe train: counting failed: %s", fti_result_str(r));
    r = FTI_ERR_NOMEM;
    t->trained = 1;
    n_merges_target = t->o.vocab_size - 256 - t->n_special;
    /* words -> symbol arrays. Their order (the map's) can depend on the thread count, but no
     * result does: merges depend only on pair counts and the id tie-break. */
    n_words = t->words.n;
    woff = (size_t *)fti_malloc((n_words + 1) * sizeof(size_t));
    wlen = (uint32_t *)fti_malloc((n_words + 1) * sizeof(uint32_t));
    wcnt = (uint64_t *)fti_malloc((n_words + 1) * sizeof(uint64_t));
    mark = (uint32_t *)fti_calloc(n_words + 1, sizeof(uint32_t));
    sym = (uint32_t *)fti_malloc((t->words.blob_len + 1) * sizeof(uint32_t));
    tok = fti__tok_new();
    if (!woff || !wlen || !wcnt || !mark || !sym || !tok) goto done;
    for (k = 0, i = 0; k < t->words.cap; k++) {
        const fti__wentry *e = &t->words.e[k];
        size_t q;
        if (!e->used) continue;
        woff[i] = total;
        wlen[i] = e->len;
        wcnt[i] = e->count;
        for (q = 0; q < e->len; q++) sym[total + q] = t->words.blob[e->off + q];
        total += e->len;
        i++;
    }
    t->stats.n_unique = n_words;
    fti__wmap_free(&t->words);
    /* the vocabulary so far: 256 bytes */
    for (i = 0; i < 256; i++) {
        unsigned char b = (unsigned char)i;
        if (fti__tok_set(tok, (uint32_t)i, &b, 1, (uint32_t)i, FTI_TOKEN_NORMAL) != FTI_OK)
            goto done;
        if (fti__wmap_add(&tokmap, &b, 1, fti__tok_hash(&b, 1), i) == (size_t)-1) goto done;
    }
    n_tokens = 256;
    /* initial pair counts */
    m.slot = (uint32_t *)fti_calloc(1024, sizeof(uint32_t));
    if (!m.slot) goto done;
    m.slot_mask = 1023;
    for (i = 0; i < n_words; i++) {
        const uint32_t *s = sym + woff[i];
        for (k = 0; k + 1 < wlen[i]; k++) {
            size_t pi = fti__pair_get(&m, s[k], s[k + 1], 1);
            if (pi == (size_t)-1) goto done;
            m.pairs[pi].count += (int64_t)wcnt[i];
            fti__pair_add_word(&m, &m.pairs[pi], (uint32_t)i);
        }
    }
    for (i = 0; i < m.n_pairs; i++)
        if (m.pairs[i].count > 0) fti__pheap_push(&m, m.pairs[i].count, m.pairs[i].a, m.pairs[i].b);
    if (m.oom) goto done;
    progress_every = n_merges_target / 100 + 1;
    next_progress = progress_every;
    while (n_tokens - 256 < n_merges_target && m.n_heap) {
        fti__pheap_e top = fti__pheap_pop(&m);
        size_t pi = fti__pair_get(&m, top.a, top.b, 0);
        fti__pair *p;
        uint32_t a = top.a, b = top.b, c, *wl, nwl, wi;
        unsigned char cat[2 * FTI_TOK_MAX_TOKEN_BYTES];
        size_t la, lb, tk;
        if (pi == (size_t)-1) continue;
        p = &m.pairs[pi];
        if (p->count != top.count) {
            if (p->count > 0 && p->count < top.count) fti__pheap_push(&m, p->count, a, b);
            continue;
        }
        if ((uint64_t)top.count < t->o.min_frequency) break;
        la = tok->entries[a].len;
        lb = tok->entries[b].len;
        if (la + lb > FTI_TOK_MAX_TOKEN_BYTES) {
            p->count = 0; /* too long to become a token: never merge it */
            continue;
        }
        memcpy(cat, tok->blob + tok->entries[a].off, la);
        memcpy(cat + la, tok->blob + tok->entries[b].off, lb);
        {
            uint64_t h = fti__tok_hash(cat, la + lb);
            size_t before = tokmap.n;
            tk = fti__wmap_add(&tokmap, cat, la + lb, h, n_tokens);
            if (tk == (size_t)-1) goto done;
            if (tokmap.n != before) {
                c = (uint32_t)n_tokens;
                if (fti__tok_set(tok, c, cat, la + lb, c, FTI_TOKEN_NORMAL) != FTI_OK) goto done;
                n_tokens++;
            } else {
                /* the string exists: the count added above is undone, the id reused */
                tokmap.e[tk].count -= n_tokens;
                c = (uint32_t)tokmap.e[tk].count;
            }
        }
        t->stats.last_count = (uint64_t)top.count;
        /* rewrite the words on the pair's list */
        stamp++;
        m.n_touched = 0;
        wl = p->w;
        nwl = p->nw;
        p->w = NULL;
        p->nw = p->cw = 0;
        p->count = 0;
        for (wi = 0; wi < nwl; wi++) {
            uint32_t w = wl[wi], L, j = 0, x = 0;
            uint32_t *s;
            int64_t f;
            if (mark[w] == stamp) continue;
            mark[w] = stamp;
            s = sym + woff[w];
            L = wlen[w];
            f = (int64_t)wcnt[w];
            while (x < L) {
                if (x + 1 < L && s[x] == a && s[x + 1] == b) {
                    if (j > 0) {
                        fti__pair_delta(&m, s[j - 1], a, -f, w, stamp);
                        fti__pair_delta(&m, s[j - 1], c, f, w, stamp);
                    }
                    if (x + 2 < L) {
                        fti__pair_delta(&m, b, s[x + 2], -f, w, stamp);
                        fti__pair_delta(&m, c, s[x + 2], f, w, stamp);
                    }
                    s[j++] = c;
                    x += 2;
                } else {
                    s[j++] = s[x++];
                }
            }
            wlen[w] = j;
        }
        fti_free(wl);
        /* the merged pair itself may have been counted down by neighbours: it is gone */
        pi = fti__pair_get(&m, a, b, 0);
        if (pi != (size_t)-1) m.pairs[pi].count = 0;
        if (m.n_touched > 1) qsort(m.touched, m.n_touched, sizeof(uint32_t), fti__cmp_u32);
        for (i = 0; i < m.n_touched; i++) {
            fti__pair *q = &m.pairs[m.touched[i]];
            if (q->count > 0) fti__pheap_push(&m, q->count, q->a, q->b);
        }
        if (m.oom) goto done;
        if (t->o.progress && n_tokens - 256 >= next_progress) {
            t->o.progress(t->o.progress_user, n_tokens - 256, n_merges_target);
            next_progress += progress_every;
        }
    }
    t->stats.n_merges = n_tokens - 256;
    if (t->o.progress) t->o.progress(t->o.progress_user, n_tokens - 256, n_merges_target);
    for (i = 0; i < t->n_special; i++) {
        if (fti__tok_set(tok, (uint32_t)n_tokens, t->special[i], t->special_len[i], FTI__NO_RANK,
                         FTI_TOKEN_CONTROL) != FTI_OK)
            goto done;
        n_tokens++;
    }
    tok->pretok = t->o.pretok;
    r = fti__tok_finish(tok, "bpe train", err);
    if (r != FTI_OK) goto done;
    *out = tok;
    tok = NULL;
    r = FTI_OK;
done:
    if (r == FTI_ERR_NOMEM) fti_error_set(err, r, "bpe train: out of memory");
    for (i = 0; i < m.n_pairs; i++) fti_free(m.pairs[i].w);
    fti_free(m.pairs);
    fti_free(m.slot);
    fti_free(m.heap);
    fti_free(m.touched);
    fti__wmap_free(&tokmap);
    fti_free(sym);
    fti_free(woff);
    fti_free(wlen);
    fti_free(wcnt);
    fti_free(mark);
    fti_tokenizer_free(tok);
    return r;
}
