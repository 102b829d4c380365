/* === store: text cleaning (normalise, HTML, markdown, redaction) and the document template === */
#include "04_store.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
/* SHA-NI intrinsics (guarded like the kernels' SIMD code; the amalgamation keeps the first
 * include of a header, so these stay outside FTI_NO_STORE) */
#if !defined(FTI_NO_SIMD) && !defined(__TINYC__) && (defined(__GNUC__) || defined(__clang__)) &&   \
    (defined(__x86_64__) || defined(_M_X64))
#include <cpuid.h>
#include <immintrin.h>
#endif

#ifndef FTI_NO_STORE

/* --- small string helpers ------------------------------------------------------------------- */

static int fti__st_lc(int c) {
    return (c >= 'A' && c <= 'Z') ? c + 32 : c;
}
static int fti__st_is_alpha(int c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
static int fti__st_is_digit(int c) {
    return c >= '0' && c <= '9';
}
static int fti__st_is_alnum(int c) {
    return fti__st_is_alpha(c) || fti__st_is_digit(c);
}
static int fti__st_is_space(int c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* The lower case of a Latin letter of U+00C0..U+017F (Latin-1 and Latin Extended-A), else cp.
 * Only pairs whose cases both take two bytes in UTF-8: U+0130 (I with a dot), the dotless i,
 * U+0149 and the long s stay as they are, so folding keeps every character's length. */
static uint32_t fti__st_latin_lc(uint32_t cp) {
    if (cp >= 0xC0 && cp <= 0xDE && cp != 0xD7) return cp + 0x20; /* not the multiplication sign */
    if (cp == 0x178) return 0xFF;                                   /* Y with diaeresis */
    if ((cp >= 0x100 && cp <= 0x137 && cp != 0x130) || (cp >= 0x14A && cp <= 0x177))
        return (cp & 1) ? cp : cp + 1; /* upper case even, lower case odd */
    if ((cp >= 0x139 && cp <= 0x148) || (cp >= 0x179 && cp <= 0x17E))
        return (cp & 1) ? cp + 1 : cp; /* upper case odd */
    return cp;
}

/* The character at s[0..n) (n >= 1) as names compare: an ASCII letter or a two-byte Latin one
 * (fti__st_latin_lc) in lower case, any other byte alone (as 0x110000 + the byte, no character);
 * *len its bytes. */
static uint32_t fti__st_fold_at(const char *s, size_t n, size_t *len) {
    unsigned b0 = (unsigned char)s[0];
    *len = 1;
    if (b0 >= 0xC3 && b0 <= 0xC5 && n >= 2 && ((unsigned char)s[1] & 0xC0) == 0x80) {
        *len = 2;
        return fti__st_latin_lc(((uint32_t)(b0 & 0x1F) << 6) | ((unsigned char)s[1] & 0x3F));
    }
    return b0 < 0x80 ? (uint32_t)fti__st_lc((int)b0) : 0x110000u + b0;
}

/* Does s[0..n) begin with the name q[0..m), any case of ASCII and Latin letters ("ann lee" and
 * "Ann Lee", "ÅSA" and "Åsa", "ŁUCJA" and "łucja")? Folding keeps lengths: a match is m bytes of
 * s, and two names that match each other have one length. */
static int fti__st_starts_fold(const char *s, size_t n, const char *q, size_t m) {
    size_t i = 0, ls, lq;
    if (n < m) return 0;
    while (i < m) {
        if (fti__st_fold_at(s + i, n - i, &ls) != fti__st_fold_at(q + i, m - i, &lq) || ls != lq)
            return 0;
        i += lq;
    }
    return 1;
}

/* Case-insensitive: does s[0..n) start with the NUL-terminated lowercase word w? */
static int fti__st_starts_ci(const char *s, size_t n, const char *w) {
    size_t i;
    for (i = 0; w[i]; i++)
        if (i >= n || fti__st_lc((unsigned char)s[i]) != w[i]) return 0;
    return 1;
}

/* Case-insensitive equality of s[0..n) and the NUL-terminated w. */
static int fti__st_eq_ci(const char *s, size_t n, const char *w) {
    size_t i;
    for (i = 0; i < n; i++)
        if (!w[i] || fti__st_lc((unsigned char)s[i]) != w[i]) return 0;
    return w[n] == 0;
}

/* Case-insensitive search for the lowercase needle in s[0..n); returns offset or n. */
static size_t fti__st_find_ci(const char *s, size_t n, const char *needle) {
    size_t m = strlen(needle), i;
    if (m == 0) return 0;
    for (i = 0; i + m <= n; i++)
        if (fti__st_lc((unsigned char)s[i]) == needle[0] && fti__st_starts_ci(s + i, n - i, needle))
            return i;
    return n;
}

/* Trims blanks on both sides of [*s, *s + *n). */
static void fti__st_trim(const char **s, size_t *n) {
    while (*n > 0 && fti__st_is_space((unsigned char)(*s)[0])) (*s)++, (*n)--;
    while (*n > 0 && fti__st_is_space((unsigned char)(*s)[*n - 1])) (*n)--;
}

/* Is name (len n) one of the comma-separated names in list (case-insensitive)? Returns the
 * position in the list (0-based) or -1. */
static int fti__st_list_pos(const char *list, const char *name, size_t n) {
    int pos = 0;
    const char *p = list;
    while (p && *p) {
        const char *e = strchr(p, ',');
        size_t m = e ? (size_t)(e - p) : strlen(p);
        const char *q = p;
        fti__st_trim(&q, &m);
        if (m == n && fti__st_starts_ci(name, n, "") && m > 0) {
            size_t i;
            for (i = 0; i < n; i++)
                if (fti__st_lc((unsigned char)q[i]) != fti__st_lc((unsigned char)name[i])) break;
            if (i == n) return pos;
        }
        pos++;
        p = e ? e + 1 : NULL;
    }
    return -1;
}

/* === SHA-256 with the x86 SHA extensions ===================================================== */
/*
 * The store hashes every input byte (raw-file ids) and every stored object, so SHA-256 is its
 * hottest loop. fti__st_sha256 uses the SHA-NI instructions (sha256rnds2/msg1/msg2) where the CPU
 * has them and falls back to the base part's scalar fti_sha256_buf otherwise; both give the same
 * digest (tested against each other on random sizes). Scalar-only builds (FTI_NO_SIMD, tcc,
 * other architectures) always use the base code.
 */
#if !defined(FTI_NO_SIMD) && !defined(__TINYC__) && (defined(__GNUC__) || defined(__clang__)) &&   \
    (defined(__x86_64__) || defined(_M_X64))
#define FTI__ST_SHA_NI 1

/* The round constants are base's fti__sha256_k (part 00). */

/* 1 if the CPU has the SHA extensions (CPUID.7.0:EBX bit 29) and SSE4.1. */
static int fti__st_have_sha_ni(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 19))) return 0;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    return (b >> 29) & 1u;
}

/* Compresses n 64-byte blocks into state (a..h). */
__attribute__((target("sha,sse4.1"))) static void
fti__st_sha_ni_blocks(uint32_t state[8], const unsigned char *p, size_t n) {
    const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bLL, 0x0405060700010203LL);
    __m128i abef, cdgh, t;
    t = _mm_loadu_si128((const __m128i *)(const void *)state);          /* d c b a */
    cdgh = _mm_loadu_si128((const __m128i *)(const void *)(state + 4)); /* h g f e */
    t = _mm_shuffle_epi32(t, 0xB1);                                     /* c d a b */
    cdgh = _mm_shuffle_epi32(cdgh, 0x1B);                               /* e f g h */
    abef = _mm_alignr_epi8(t, cdgh, 8);                                 /* a b e f */
    cdgh = _mm_blend_epi16(cdgh, t, 0xF0);                              /* c d g h */
    while (n--) {
        __m128i w[4], save_abef = abef, save_cdgh = cdgh, m;
        int g;
        for (g = 0; g < 4; g++)
            w[g] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(const void *)(p + 16 * g)),
                                    bswap);
        for (g = 0; g < 16; g++) {
            __m128i cur = w[g & 3];
            m = _mm_add_epi32(
                cur, _mm_loadu_si128((const __m128i *)(const void *)(fti__sha256_k + 4 * g)));
            cdgh = _mm_sha256rnds2_epu32(cdgh, abef, m);
            abef = _mm_sha256rnds2_epu32(abef, cdgh, _mm_shuffle_epi32(m, 0x0E));
            if (g < 12) {
                /* W[g+4] = msg2(msg1(W[g], W[g+1]) + W[g+2..g+3] shifted, W[g+3]) */
                __m128i x = _mm_sha256msg1_epu32(w[g & 3], w[(g + 1) & 3]);
                x = _mm_add_epi32(x, _mm_alignr_epi8(w[(g + 3) & 3], w[(g + 2) & 3], 4));
                w[g & 3] = _mm_sha256msg2_epu32(x, w[(g + 3) & 3]);
            }
        }
        abef = _mm_add_epi32(abef, save_abef);
        cdgh = _mm_add_epi32(cdgh, save_cdgh);
        p += 64;
    }
    t = _mm_shuffle_epi32(abef, 0x1B);     /* f e b a */
    cdgh = _mm_shuffle_epi32(cdgh, 0xB1);  /* d c h g */
    abef = _mm_blend_epi16(t, cdgh, 0xF0); /* d c b a */
    cdgh = _mm_alignr_epi8(cdgh, t, 8);    /* h g f e */
    _mm_storeu_si128((__m128i *)(void *)state, abef);
    _mm_storeu_si128((__m128i *)(void *)(state + 4), cdgh);
}
#endif

/* 1 when fti__st_sha256_x may use SHA-NI here (checked once per run: CPUID is slow in VMs). */
static int fti__st_sha_fast(void) {
#ifdef FTI__ST_SHA_NI
    return fti__st_have_sha_ni();
#else
    return 0;
#endif
}

/* SHA-256 of data[0..n) into out (same digest as fti_sha256_buf); fast = fti__st_sha_fast(). */
static void fti__st_sha256_x(int fast, const void *data, size_t n, unsigned char out[32]) {
#ifdef FTI__ST_SHA_NI
    static const uint32_t iv[8] = {0x6a09e667u, 0xbb67ae85u, 0x3c6ef372u, 0xa54ff53au,
                                   0x510e527fu, 0x9b05688cu, 0x1f83d9abu, 0x5be0cd19u};
    if (fast) {
        uint32_t st[8];
        unsigned char tail[128];
        size_t full = n / 64, rest = n % 64, k, i;
        uint64_t bits = (uint64_t)n * 8;
        memcpy(st, iv, sizeof st);
        fti__st_sha_ni_blocks(st, (const unsigned char *)data, full);
        memset(tail, 0, sizeof tail);
        if (rest) memcpy(tail, (const unsigned char *)data + full * 64, rest);
        tail[rest] = 0x80;
        k = rest + 1 + 8 <= 64 ? 64 : 128;
        for (i = 0; i < 8; i++) tail[k - 1 - i] = (unsigned char)(bits >> (8 * i));
        fti__st_sha_ni_blocks(st, tail, k / 64);
        for (i = 0; i < 8; i++) {
            out[4 * i] = (unsigned char)(st[i] >> 24);
            out[4 * i + 1] = (unsigned char)(st[i] >> 16);
            out[4 * i + 2] = (unsigned char)(st[i] >> 8);
            out[4 * i + 3] = (unsigned char)st[i];
        }
        return;
    }
#else
    (void)fast;
#endif
    fti_sha256_buf(data, n, out);
}

static void fti__st_sha256(const void *data, size_t n, unsigned char out[32]) {
    fti__st_sha256_x(fti__st_sha_fast(), data, n, out);
}

/* A streaming SHA-256 with the same fast path (objects are hashed while they are written). */
typedef struct fti__st_shs {
    fti_sha256 s;
    int fast;
} fti__st_shs;

static void fti__st_shs_init(fti__st_shs *h, int fast) {
    fti_sha256_init(&h->s);
    h->fast = fast;
}

static void fti__st_shs_update(fti__st_shs *h, const void *data, size_t n) {
#ifdef FTI__ST_SHA_NI
    if (h->fast) {
        const unsigned char *p = (const unsigned char *)data;
        fti_sha256 *s = &h->s;
        s->n_bytes += n;
        if (s->block_len) {
            size_t t = 64 - s->block_len;
            if (t > n) t = n;
            memcpy(s->block + s->block_len, p, t);
            s->block_len += t;
            p += t;
            n -= t;
            if (s->block_len == 64) {
                fti__st_sha_ni_blocks(s->h, s->block, 1);
                s->block_len = 0;
            }
        }
        if (n >= 64) {
            fti__st_sha_ni_blocks(s->h, p, n / 64);
            p += n / 64 * 64;
            n %= 64;
        }
        if (n) {
            memcpy(s->block, p, n);
            s->block_len = n;
        }
        return;
    }
#endif
    fti_sha256_update(&h->s, data, n);
}

static void fti__st_shs_final(fti__st_shs *h, unsigned char out[32]) {
#ifdef FTI__ST_SHA_NI
    if (h->fast) {
        fti_sha256 *s = &h->s;
        unsigned char tail[128];
        size_t rest = s->block_len, k, i;
        uint64_t bits = s->n_bytes * 8;
        memset(tail, 0, sizeof tail);
        if (rest) memcpy(tail, s->block, rest);
        tail[rest] = 0x80;
        k = rest + 1 + 8 <= 64 ? 64 : 128;
        for (i = 0; i < 8; i++) tail[k - 1 - i] = (unsigned char)(bits >> (8 * i));
        fti__st_sha_ni_blocks(s->h, tail, k / 64);
        for (i = 0; i < 8; i++) {
            out[4 * i] = (unsigned char)(s->h[i] >> 24);
            out[4 * i + 1] = (unsigned char)(s->h[i] >> 16);
            out[4 * i + 2] = (unsigned char)(s->h[i] >> 8);
            out[4 * i + 3] = (unsigned char)s->h[i];
        }
        return;
    }
#endif
    fti_sha256_final(&h->s, out);
}

/* --- the document template ------------------------------------------------------------------- */

FTIDEF void fti_template_render(fti_buf *out, const char *title, size_t title_len, const char *body,
                                size_t body_len, int open_body) {
    if (!out) return;
    fti_buf_puts(out, FTI_TEMPLATE_TITLE);
    if (title && title_len) fti_buf_append(out, title, title_len);
    fti_buf_putc(out, '\n');
    fti_buf_puts(out, FTI_TEMPLATE_BODY);
    if (body && body_len) fti_buf_append(out, body, body_len);
    if (!open_body) fti_buf_puts(out, FTI_TEMPLATE_END);
}

/* === clean: normalisation ================================================================= */

/* Unicode blanks that become a plain space. */
static int fti__st_is_ublank(uint32_t cp) {
    return cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 ||
           cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}
/* Invisible or control code points that are dropped. */
static int fti__st_is_dropped(uint32_t cp) {
    return cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F) || cp == 0x200B || cp == 0xFEFF ||
           cp == 0x00AD || (cp >= 0xFFF9 && cp <= 0xFFFB);
}

/* --- redaction --------------------------------------------------------------------------- */

static int fti__st_is_email_local(int c) {
    return fti__st_is_alnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-';
}
static int fti__st_is_domain(int c) {
    return fti__st_is_alnum(c) || c == '.' || c == '-';
}

/* Length of a URL starting at s (http://, https://, ftp://, www.), or 0. */
static size_t fti__st_match_url(const char *s, size_t n) {
    size_t i;
    if (fti__st_starts_ci(s, n, "https://"))
        i = 8;
    else if (fti__st_starts_ci(s, n, "http://"))
        i = 7;
    else if (fti__st_starts_ci(s, n, "ftp://"))
        i = 6;
    else if (fti__st_starts_ci(s, n, "www."))
        i = 4;
    else
        return 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        if (fti__st_is_space(c) || c == '"' || c == '\'' || c == '<' || c == '>' || c == ')' ||
            c == ']' || c == '}')
            break;
        i++;
    }
    while (i > 0 && strchr(".,;:!?", s[i - 1])) i--;
    return i > 8 ? i : 0;
}

/* Length of an e-mail address starting at s, or 0. */
static size_t fti__st_match_email(const char *s, size_t n) {
    /* RFC 5321 limits (local part 64, domain 255) also keep hostile runs ("a.a.a.a...")
     * from making the scan quadratic */
    size_t i = 0, at, dots = 0, last_dot = 0, k, lim = n < 64 ? n : 64;
    while (i < lim && fti__st_is_email_local((unsigned char)s[i])) i++;
    if (i == 0 || i >= n || s[i] != '@') return 0;
    at = i++;
    lim = n - i > 255 ? i + 255 : n;
    while (i < lim && fti__st_is_domain((unsigned char)s[i])) i++; /* dots counted below */
    while (i > at + 1 && (s[i - 1] == '.' || s[i - 1] == '-')) i--;
    for (dots = 0, last_dot = 0, k = at + 1; k < i; k++)
        if (s[k] == '.') dots++, last_dot = k;
    if (dots == 0 || last_dot + 2 > i || last_dot == at + 1) return 0;
    return i;
}

/* Length of a phone number starting at s, or 0: an optional '+', digits with single
 * separators ( -.()), 9..15 digits (7..15 after a '+'), ending in a digit that no word or '@' is
 * glued to. When the longest run ends glued to a word ("+1 555 123 4abc@x.org"), the match ends
 * at the last group that is not: otherwise redacting the glued e-mail address would make a phone
 * number appear, and redaction would not be idempotent. */
static size_t fti__st_match_phone(const char *s, size_t n) {
    size_t i = 0, digits = 0, end = 0, best = 0, min;
    int plus = 0, sep = 0;
    if (i < n && s[i] == '+') plus = 1, i++;
    if (i < n && s[i] == '(') i++;
    if (i >= n || !fti__st_is_digit((unsigned char)s[i])) return 0;
    min = plus ? 7 : 9;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        if (fti__st_is_digit(c)) {
            if (++digits > 15) return 0; /* too long for a phone number: stop scanning */
            end = i + 1;
            sep = 0;
            if (digits >= min &&
                (end >= n || !(fti__st_is_alnum((unsigned char)s[end]) || s[end] == '@')))
                best = end;
        } else if ((c == ' ' || c == '-' || c == '.' || c == '(' || c == ')') && sep < 2) {
            sep++;
        } else {
            break;
        }
        i++;
    }
    return best;
}

/* Copies s with the matches replaced; the text between matches goes out in one append (the
 * scan still visits every byte, but a byte costs no append of its own). */
static void fti__st_redact(const char *s, size_t n, int flags, fti_buf *out) {
    size_t i = 0, run = 0; /* s[run, i): copied text not yet appended */
    fti_buf_reserve(out, n);
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        int boundary = i == 0 || !fti__st_is_alnum((unsigned char)s[i - 1]);
        size_t m = 0;
        const char *tok = NULL;
        if (boundary && (fti__st_is_alnum(c) || c == '+' || c == '(' || c == '_' || c == '.')) {
            if ((flags & FTI_CLEAN_REDACT_URL) && (m = fti__st_match_url(s + i, n - i)) != 0)
                tok = "[URL]";
            else if ((flags & FTI_CLEAN_REDACT_EMAIL) &&
                     (m = fti__st_match_email(s + i, n - i)) != 0)
                tok = "[EMAIL]";
            else if ((flags & FTI_CLEAN_REDACT_PHONE) &&
                     (m = fti__st_match_phone(s + i, n - i)) != 0)
                tok = "[PHONE]";
        }
        if (m) {
            fti_buf_append(out, s + run, i - run);
            fti_buf_puts(out, tok);
            i += m;
            run = i;
            continue;
        }
        /* the rest of a word cannot start a match */
        i++;
        if (fti__st_is_alnum(c))
            while (i < n && fti__st_is_alnum((unsigned char)s[i])) i++;
    }
    fti_buf_append(out, s + run, n - run);
}

FTIDEF void fti_clean_text(const char *text, size_t len, int flags, fti_buf *out) {
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0, start, written = 0;
    int pend_nl = 0, pend_blank = 0;
    fti_buf tmp;
    fti_buf *dst = out;
    if (!out) return;
    memset(&tmp, 0, sizeof tmp);
    if (flags & FTI_CLEAN_REDACT_ALL) dst = &tmp;
    if (!text) len = 0;
    fti_buf_reserve(dst, len + 8);
    start = dst->len;
    while (i < len) {
        unsigned char c = s[i];
        uint32_t cp;
        size_t k;
        if (c >= 0x21 && c < 0x7F) {
            /* visible ASCII run: the common case, copied in bulk */
            size_t j = i + 1;
            while (j < len && s[j] >= 0x21 && s[j] < 0x7F) j++;
            if (written) {
                if (pend_nl)
                    fti__buf_put(dst, "\n\n", pend_nl >= 2 ? 2 : 1);
                else if (pend_blank)
                    fti__buf_put(dst, " ", 1);
            }
            pend_nl = pend_blank = 0;
            fti__buf_put(dst, s + i, j - i);
            written = 1;
            i = j;
            continue;
        }
        if (c == ' ' || c == '\t') {
            pend_blank = 1;
            i++;
            continue;
        }
        if (c == '\n' || c == '\r') {
            if (c == '\r' && i + 1 < len && s[i + 1] == '\n') i++;
            pend_nl++;
            pend_blank = 0;
            i++;
            continue;
        }
        if (c < 0x80) { /* other ASCII controls (NUL included) and DEL */
            i++;
            continue;
        }
        {
            int ok = 1;
            k = fti_utf8_decode(s + i, len - i, &cp, &ok);
            if (k == 0) k = 1;
        }
        if (fti__st_is_ublank(cp)) {
            if (cp == 0x2028 || cp == 0x2029)
                pend_nl++;
            else
                pend_blank = 1;
        } else if (!fti__st_is_dropped(cp)) {
            unsigned char enc[4];
            size_t m = fti_utf8_encode(cp, enc);
            if (written) {
                if (pend_nl)
                    fti__buf_put(dst, "\n\n", pend_nl >= 2 ? 2 : 1);
                else if (pend_blank)
                    fti__buf_put(dst, " ", 1);
            }
            pend_nl = pend_blank = 0;
            fti__buf_put(dst, enc, m);
            written = 1;
        }
        i += k;
    }
    (void)start;
    if (dst == &tmp) {
        fti__st_redact(tmp.data ? tmp.data : "", tmp.len, flags, out);
        if (tmp.oom) out->oom = 1;
        fti_buf_free(&tmp);
    }
}

/* === clean: HTML ============================================================================ */

typedef struct fti__st_entity {
    const char *name;
    uint32_t cp;
} fti__st_entity;

/* HTML's named character references: Latin-1 (0xA0..0xFF) complete, the other Windows-1252
 * characters, and the punctuation, arrows, math and Greek letters that writing uses. */
static const fti__st_entity fti__st_entities[] = {
    {"amp", 0x26}, {"lt", 0x3C}, {"gt", 0x3E}, {"quot", 0x22}, {"apos", 0x27}, {"nbsp", 0xA0},
    {"iexcl", 0xA1}, {"cent", 0xA2}, {"pound", 0xA3}, {"curren", 0xA4}, {"yen", 0xA5},
    {"brvbar", 0xA6}, {"sect", 0xA7}, {"uml", 0xA8}, {"copy", 0xA9}, {"ordf", 0xAA},
    {"laquo", 0xAB}, {"not", 0xAC}, {"shy", 0xAD}, {"reg", 0xAE}, {"macr", 0xAF}, {"deg", 0xB0},
    {"plusmn", 0xB1}, {"sup2", 0xB2}, {"sup3", 0xB3}, {"acute", 0xB4}, {"micro", 0xB5},
    {"para", 0xB6}, {"middot", 0xB7}, {"cedil", 0xB8}, {"sup1", 0xB9}, {"ordm", 0xBA},
    {"raquo", 0xBB}, {"frac14", 0xBC}, {"frac12", 0xBD}, {"frac34", 0xBE}, {"iquest", 0xBF},
    {"Agrave", 0xC0}, {"Aacute", 0xC1}, {"Acirc", 0xC2}, {"Atilde", 0xC3}, {"Auml", 0xC4},
    {"Aring", 0xC5}, {"AElig", 0xC6}, {"Ccedil", 0xC7}, {"Egrave", 0xC8}, {"Eacute", 0xC9},
    {"Ecirc", 0xCA}, {"Euml", 0xCB}, {"Igrave", 0xCC}, {"Iacute", 0xCD}, {"Icirc", 0xCE},
    {"Iuml", 0xCF}, {"ETH", 0xD0}, {"Ntilde", 0xD1}, {"Ograve", 0xD2}, {"Oacute", 0xD3},
    {"Ocirc", 0xD4}, {"Otilde", 0xD5}, {"Ouml", 0xD6}, {"times", 0xD7}, {"Oslash", 0xD8},
    {"Ugrave", 0xD9}, {"Uacute", 0xDA}, {"Ucirc", 0xDB}, {"Uuml", 0xDC}, {"Yacute", 0xDD},
    {"THORN", 0xDE}, {"szlig", 0xDF}, {"agrave", 0xE0}, {"aacute", 0xE1}, {"acirc", 0xE2},
    {"atilde", 0xE3}, {"auml", 0xE4}, {"aring", 0xE5}, {"aelig", 0xE6}, {"ccedil", 0xE7},
    {"egrave", 0xE8}, {"eacute", 0xE9}, {"ecirc", 0xEA}, {"euml", 0xEB}, {"igrave", 0xEC},
    {"iacute", 0xED}, {"icirc", 0xEE}, {"iuml", 0xEF}, {"eth", 0xF0}, {"ntilde", 0xF1},
    {"ograve", 0xF2}, {"oacute", 0xF3}, {"ocirc", 0xF4}, {"otilde", 0xF5}, {"ouml", 0xF6},
    {"divide", 0xF7}, {"oslash", 0xF8}, {"ugrave", 0xF9}, {"uacute", 0xFA}, {"ucirc", 0xFB},
    {"uuml", 0xFC}, {"yacute", 0xFD}, {"thorn", 0xFE}, {"yuml", 0xFF}, {"OElig", 0x152},
    {"oelig", 0x153}, {"Scaron", 0x160}, {"scaron", 0x161}, {"Yuml", 0x178}, {"fnof", 0x192},
    {"circ", 0x2C6}, {"tilde", 0x2DC}, {"ensp", 0x2002}, {"emsp", 0x2003}, {"thinsp", 0x2009},
    {"zwnj", 0x200C}, {"zwj", 0x200D}, {"lrm", 0x200E}, {"rlm", 0x200F}, {"ndash", 0x2013},
    {"mdash", 0x2014}, {"lsquo", 0x2018}, {"rsquo", 0x2019}, {"sbquo", 0x201A}, {"ldquo", 0x201C},
    {"rdquo", 0x201D}, {"bdquo", 0x201E}, {"dagger", 0x2020}, {"Dagger", 0x2021}, {"bull", 0x2022},
    {"hellip", 0x2026}, {"permil", 0x2030}, {"prime", 0x2032}, {"Prime", 0x2033},
    {"lsaquo", 0x2039}, {"rsaquo", 0x203A}, {"euro", 0x20AC}, {"trade", 0x2122}, {"larr", 0x2190},
    {"uarr", 0x2191}, {"rarr", 0x2192}, {"darr", 0x2193}, {"harr", 0x2194}, {"minus", 0x2212},
    {"le", 0x2264}, {"ge", 0x2265}, {"ne", 0x2260}, {"asymp", 0x2248}, {"infin", 0x221E},
    {"hearts", 0x2665}, {"spades", 0x2660}, {"clubs", 0x2663}, {"diams", 0x2666}, {"alpha", 0x3B1},
    {"beta", 0x3B2}, {"gamma", 0x3B3}, {"delta", 0x3B4}, {"epsilon", 0x3B5}, {"lambda", 0x3BB},
    {"mu", 0x3BC}, {"pi", 0x3C0}, {"sigma", 0x3C3}, {"omega", 0x3C9}, {"Delta", 0x394},
    {"Sigma", 0x3A3}, {"Omega", 0x3A9}};

static void fti__st_put_cp(fti_buf *out, uint32_t cp) {
    unsigned char enc[4];
    size_t m = fti_utf8_encode(cp, enc);
    fti_buf_append(out, enc, m);
}

/* Decodes the entity at s[0] == '&'; returns bytes consumed (0 if not an entity). */
static size_t fti__st_html_entity(const char *s, size_t n, uint32_t *cp) {
    size_t i = 1, j;
    if (n >= 3 && s[1] == '#') {
        uint32_t v = 0;
        int hex = (s[2] == 'x' || s[2] == 'X'), any = 0;
        i = hex ? 3 : 2;
        for (; i < n && i < 16; i++) {
            int c = (unsigned char)s[i], d;
            if (fti__st_is_digit(c))
                d = c - '0';
            else if (hex && fti__st_lc(c) >= 'a' && fti__st_lc(c) <= 'f')
                d = fti__st_lc(c) - 'a' + 10;
            else
                break;
            if (v < 0x110000) v = v * (hex ? 16u : 10u) + (uint32_t)d;
            any = 1;
        }
        if (!any) return 0;
        if (i < n && s[i] == ';') i++;
        if (v == 0 || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) v = 0xFFFD;
        *cp = v;
        return i;
    }
    while (i < n && i < 12 && fti__st_is_alnum((unsigned char)s[i])) i++;
    if (i == 1) return 0;
    for (j = 0; j < sizeof fti__st_entities / sizeof fti__st_entities[0]; j++) {
        const char *name = fti__st_entities[j].name;
        if (strlen(name) == i - 1 && memcmp(name, s + 1, i - 1) == 0) {
            *cp = fti__st_entities[j].cp;
            return (i < n && s[i] == ';') ? i + 1 : i;
        }
    }
    return 0;
}

static const char *const fti__st_html_blocks[] = {
    "p",       "div",     "h1",      "h2",         "h3",    "h4",         "h5",   "h6",
    "li",      "ul",      "ol",      "tr",         "table", "blockquote", "pre",  "section",
    "article", "header",  "footer",  "hr",         "nav",   "aside",      "main", "dl",
    "dt",      "dd",      "figure",  "figcaption", "form",  "address",    "body", "tbody",
    "thead",   "details", "summary", "center",     NULL};
/* Elements dropped with their content: code and styles, and a page's boilerplate (menus,
 * footers, buttons; not <form>: old ASP.NET pages wrap their whole body in one). Unclosed, code
 * is dropped to the end of the page, boilerplate (fti__st_html_boiler) only its own tag. */
static const char *const fti__st_html_skip[] = {
    "script", "style", "head",   "noscript", "template", "svg", "iframe",
    "object", "math",  "nav",    "footer",   "button",   NULL};
static const char *const fti__st_html_boiler[] = {"nav", "footer", "button", NULL};
/* the elements whose text is not markup the page reads on in (no nesting counted): the skipped
 * ones and <title> (its text is the title, read to its end tag) */
static const char *const fti__st_html_raw[] = {"script", "style",  "noscript", "template", "svg",
                                               "iframe", "object", "math",     "title",    NULL};

static int fti__st_in_list(const char *name, size_t n, const char *const *list) {
    size_t i;
    int c0;
    if (n == 0) return 0;
    c0 = fti__st_lc((unsigned char)name[0]); /* most entries differ in their first letter */
    for (i = 0; list[i]; i++)
        if (list[i][0] == c0 && fti__st_eq_ci(name, n, list[i])) return 1;
    return 0;
}

/* Offset just after the '>' closing the tag that starts at s[0] == '<' (quotes respected),
 * or n when unterminated. */
static size_t fti__st_tag_end(const char *s, size_t n) {
    size_t i = 1;
    char q = 0;
    for (; i < n; i++) {
        char c = s[i];
        if (q) {
            if (c == q) q = 0;
        } else if (c == '"' || c == '\'') {
            /* only attribute values open quotes: after '=' (possibly with blanks) */
            size_t j = i;
            while (j > 1 && (s[j - 1] == ' ' || s[j - 1] == '\t')) j--;
            if (s[j - 1] == '=') q = c;
        } else if (c == '>') {
            return i + 1;
        }
    }
    return n;
}

/* Can c be in a tag's name after its first character? Custom elements (<footer-note>,
 * <nav-item>) and Word's namespaced ones (<o:p>) hold '-', '_', '.' and ':'. */
static int fti__st_tag_name_char(int c) {
    return fti__st_is_alnum(c) || c == '-' || c == '_' || c == '.' || c == ':';
}

/* The length of the tag name that starts s[0..n) (just after "<" or "</"): a letter or digit,
 * then name characters; 0 if there is none. The whole name, so <nav-item> is not <nav>. */
static size_t fti__st_tag_name(const char *s, size_t n) {
    size_t k = 0;
    if (n == 0 || !fti__st_is_alnum((unsigned char)s[0])) return 0;
    while (k < n && fti__st_tag_name_char((unsigned char)s[k])) k++;
    return k;
}

/* Is the tag t[0..n) (from its '<') a start tag of the element name (lowercase)? <nav> and
 * <nav class="x"> are <nav>; </nav>, <nav-item> and <navigation> are not. */
static int fti__st_tag_is(const char *t, size_t n, const char *name) {
    size_t m;
    if (n < 2 || t[0] != '<') return 0;
    m = fti__st_tag_name(t + 1, n - 1);
    return m > 0 && fti__st_eq_ci(t + 1, m, name);
}

/* The offset in s[0..n) of the first end tag of the element name (lowercase), "</name" with
 * the name ending there (</nav> and </nav >, not </nav-item>); n if there is none. */
static size_t fti__st_find_close(const char *s, size_t n, const char *name) {
    size_t m = strlen(name), i = 0;
    while (i < n) {
        size_t e = fti__st_find_ci(s + i, n - i, "</");
        if (e >= n - i) return n;
        i += e;
        if (fti__st_tag_name(s + i + 2, n - i - 2) == m && fti__st_starts_ci(s + i + 2, m, name))
            return i;
        i += 2;
    }
    return n;
}

/* Where the boilerplate elements (fti__st_html_boiler) of a page end: every start tag of one
 * of them from `from` on, with the offset of the end tag that ends it, or the page's length for
 * one never ended (a stray tag). One pass with one stack for all three names, as a browser
 * builds the page: an end tag ends the innermost open element of its name and every one opened
 * inside that (in <nav><footer><nav>f</footer>m</nav>y the inner <nav> ends at </footer>, the
 * outer at </nav>); an end tag of a name none is open of is nothing; the same name nests
 * (<nav><nav>m</nav>x</nav>: the first ends at the last </nav>, as a browser nests <nav> and
 * <footer>), except <button>: a <button> inside an open one ends it and what was opened inside
 * it, as a browser does (in <button>a<button>b</button>c</button>d "cd" is kept; until
 * processing format 11 only "d"). So the tags inside an element
 * the page skips whole (a stray <nav> in a <footer> or a <button>) end with it and never pair
 * with the page's own: counting each name alone paired them, and menu text leaked into the
 * page or the text after a menu was lost. Made once per page, at its first such start tag;
 * each tag is pushed and popped once, so a page of stray tags stays linear. */
typedef struct fti__st_boil {
    size_t *open, *end, n, next; /* start tags' offsets (ascending), their end tags' */
    int made;
} fti__st_boil;

typedef struct fti__st_boil_open {
    size_t at; /* index into open[] and end[] */
    int which; /* index into fti__st_html_boiler */
} fti__st_boil_open;

static void fti__st_boil_make(fti__st_boil *b, const char *s, size_t n, size_t from) {
    size_t i = from, cap = 0, depth = 0, nm, end;
    size_t n_open[sizeof fti__st_html_boiler / sizeof fti__st_html_boiler[0]] = {0}; /* by name */
    fti__st_boil_open *stack = NULL;
    char raw[16];
    int which;
    b->made = 1;
    while (i < n) {
        const char *lt = (const char *)memchr(s + i, '<', n - i);
        int closing;
        if (!lt) break;
        i = (size_t)(lt - s) + 1;
        closing = i < n && s[i] == '/';
        if (n - i >= 3 && memcmp(s + i, "!--", 3) == 0) { /* a comment, as the page skips it */
            size_t e = fti__st_find_ci(s + i + 3, n - i - 3, "-->");
            if (e >= n - i - 3) break;
            i += 3 + e + 3;
            continue;
        }
        nm = fti__st_tag_name(s + i + closing, n - i - closing);
        if (!nm && !(i + closing < n && (s[i + closing] == '!' || s[i + closing] == '?')))
            continue; /* a lone '<' in text, as the page reads it */
        /* the rest of a tag is its attributes, where "</nav>", "<!--" or "<script>" is a value,
         * not a tag: the page reads on from the tag's end, and so does this */
        end = i - 1 + fti__st_tag_end(s + i - 1, n - i + 1);
        if (!closing && nm && nm < sizeof raw && fti__st_in_list(s + i, nm, fti__st_html_raw)) {
            /* a script's or style's text, as the page skips it: no tags there */
            size_t k, e;
            for (k = 0; k < nm; k++) raw[k] = (char)fti__st_lc((unsigned char)s[i + k]);
            raw[nm] = '\0';
            e = fti__st_find_close(s + end, n - end, raw);
            if (e >= n - end) break;
            i = end + e;
            continue;
        }
        for (which = 0; fti__st_html_boiler[which] &&
                        !fti__st_eq_ci(s + i + closing, nm, fti__st_html_boiler[which]);)
            which++;
        if (!fti__st_html_boiler[which]) {
            i = end;
            continue;
        }
        if (closing) { /* it ends the innermost open one and all opened inside it */
            while (n_open[which] && depth) {
                fti__st_boil_open *top = &stack[--depth];
                b->end[top->at] = i - 1;
                n_open[top->which]--;
                if (top->which == which) break;
            }
            i = end;
            continue;
        }
        if (which == 2 && n_open[2]) /* <button> in an open <button> ends it, as a browser */
            while (depth) {
                fti__st_boil_open *top = &stack[--depth];
                b->end[top->at] = i - 1;
                n_open[top->which]--;
                if (top->which == 2) break;
            }
        if (b->n == cap) {
            size_t nc = cap ? 2 * cap : 16;
            size_t *o = (size_t *)fti_realloc(b->open, nc * sizeof *o);
            size_t *e = o ? (size_t *)fti_realloc(b->end, nc * sizeof *e) : NULL;
            fti__st_boil_open *st =
                e ? (fti__st_boil_open *)fti_realloc(stack, nc * sizeof *st) : NULL;
            if (o) b->open = o;
            if (e) b->end = e;
            if (st) stack = st;
            if (!st) break; /* out of memory: the rest are stray tags */
            cap = nc;
        }
        b->open[b->n] = i - 1;
        b->end[b->n] = n;
        stack[depth].at = b->n++;
        stack[depth++].which = which;
        n_open[which]++;
        i = end;
    }
    fti_free(stack);
}

/* The offset of the end tag matching the start tag at `at` (from fti__st_boil_make), or n. */
static size_t fti__st_boil_end(fti__st_boil *b, size_t at, size_t n) {
    while (b->next < b->n && b->open[b->next] < at) b->next++;
    return b->next < b->n && b->open[b->next] == at ? b->end[b->next] : n;
}

FTIDEF void fti_html_to_text(const char *html, size_t len, fti_buf *out, fti_buf *title) {
    fti__st_boil boil;
    size_t i = 0, b;
    int in_pre = 0, cap_title = 0, have_title = 0;
    if (!out || !html) return;
    memset(&boil, 0, sizeof boil);
    while (i < len) {
        char c = html[i];
        if (c == '<') {
            size_t end, nm, k;
            int closing = 0;
            const char *name;
            if (len - i >= 4 && memcmp(html + i, "<!--", 4) == 0) {
                size_t e = fti__st_find_ci(html + i + 4, len - i - 4, "-->");
                i = (e >= len - i - 4) ? len : i + 4 + e + 3;
                continue;
            }
            k = i + 1;
            if (k < len && html[k] == '/') closing = 1, k++;
            name = html + k;
            nm = fti__st_tag_name(name, len - k);
            k += nm;
            if (nm == 0 && !(k < len && (html[k] == '!' || html[k] == '?'))) {
                fti_buf_putc(out, '<'); /* a lone '<' in text */
                i++;
                continue;
            }
            end = i + fti__st_tag_end(html + i, len - i);
            if (!closing && fti__st_in_list(name, nm, fti__st_html_skip)) {
                /* skip to the matching close tag (not nested: these do not nest) */
                char close[16];
                size_t e;
                if (fti__st_eq_ci(name, nm, "head")) {
                    /* keep <title> inside <head>: only drop script/style there */
                    i = end;
                    continue;
                }
                snprintf(close, sizeof close, "%.*s", (int)nm, name); /* nm <= 8: a list name */
                for (e = 0; close[e]; e++) close[e] = (char)fti__st_lc((unsigned char)close[e]);
                for (b = 0; fti__st_html_boiler[b] && strcmp(close, fti__st_html_boiler[b]);) b++;
                if (fti__st_html_boiler[b]) {
                    /* a <nav>, <footer> or <button> without its end tag is one stray tag, not
                     * the rest of the page */
                    size_t at;
                    if (!boil.made) fti__st_boil_make(&boil, html, len, i);
                    at = fti__st_boil_end(&boil, i, len);
                    if (at >= len || at < end) {
                        i = end;
                        continue;
                    }
                    e = at - end;
                } else {
                    e = fti__st_find_close(html + end, len - end, close);
                }
                if (e >= len - end) {
                    i = len; /* unclosed code or styles: to the end */
                } else { /* past the end tag; a <button> that ended the one before stays */
                    i = end + e;
                    if (i + 1 < len && html[i + 1] == '/') i += fti__st_tag_end(html + i, len - i);
                }
                continue;
            }
            if (fti__st_eq_ci(name, nm, "title") ||
                (fti__st_eq_ci(name, nm, "h1") && !have_title)) {
                if (!closing && title && !have_title)
                    cap_title = 1;
                else if (closing && cap_title)
                    cap_title = 0, have_title = 1;
            }
            if (fti__st_eq_ci(name, nm, "title")) {
                /* the page title is metadata, not body text */
                if (!closing) {
                    size_t e = fti__st_find_close(html + end, len - end, "title");
                    size_t tl = e >= len - end ? len - end : e;
                    if (title && !have_title) {
                        fti_buf tmp;
                        memset(&tmp, 0, sizeof tmp);
                        fti_html_to_text(html + end, tl, &tmp, NULL);
                        fti_buf_append(title, tmp.data ? tmp.data : "", tmp.len);
                        fti_buf_free(&tmp);
                        have_title = 1;
                    }
                    cap_title = 0;
                    i = end + tl;
                    if (i < len) i += fti__st_tag_end(html + i, len - i);
                    continue;
                }
            }
            if (fti__st_eq_ci(name, nm, "br"))
                fti_buf_putc(out, '\n');
            else if (fti__st_in_list(name, nm, fti__st_html_blocks))
                fti_buf_puts(out, "\n\n");
            else if (fti__st_eq_ci(name, nm, "td") || fti__st_eq_ci(name, nm, "th"))
                fti_buf_putc(out, ' ');
            if (fti__st_eq_ci(name, nm, "pre")) in_pre = !closing;
            i = end;
            continue;
        }
        if (c == '&') {
            uint32_t cp = 0;
            size_t m = fti__st_html_entity(html + i, len - i, &cp);
            if (m) {
                fti__st_put_cp(out, cp);
                if (cap_title && title) fti__st_put_cp(title, cp);
                i += m;
                continue;
            }
        }
        if ((c == '\n' || c == '\r' || c == '\t') && !in_pre) c = ' ';
        if (c == '<' || c == '&' || c == ' ' || c == '\n' || c == '\r' || c == '\t') {
            fti_buf_putc(out, c);
            if (cap_title && title) fti_buf_putc(title, c);
            i++;
        } else {
            /* a run of plain text, copied at once */
            size_t j = i + 1;
            while (j < len && html[j] != '<' && html[j] != '&' && html[j] != '\n' &&
                   html[j] != '\r' && html[j] != '\t')
                j++;
            fti_buf_append(out, html + i, j - i);
            if (cap_title && title) fti_buf_append(title, html + i, j - i);
            i = j;
        }
    }
    fti_free(boil.open);
    fti_free(boil.end);
}

/* === clean: markdown ========================================================================= */

/* Inline markdown of one line into out. */
/* Position of the first c at or after from (n if none), with *cache the last answer: callers
 * ask with non-decreasing `from`, so each byte is searched once. */
static size_t fti__st_next_of(const char *s, size_t n, size_t from, char c, size_t *cache) {
    const char *p;
    if (*cache != (size_t)-1 && *cache >= from) return *cache;
    if (from >= n) return *cache = n;
    p = (const char *)memchr(s + from, c, n - from);
    return *cache = p ? (size_t)(p - s) : n;
}

/* The characters fti__st_md_inline looks at: everything else is copied as it is. */
static int fti__st_md_special(char c) {
    return c == '\\' || c == '`' || c == '!' || c == '[' || c == '<' || c == '*' || c == '_' ||
           c == '~' || c == '&';
}

static void fti__st_md_inline(const char *s, size_t n, fti_buf *out) {
    size_t i = 0, next_rb = (size_t)-1, next_rp = (size_t)-1, next_ref = (size_t)-1;
    size_t next_cc = 0; /* where the next "-->" is (n: none), valid for positions <= it */
    while (i < n) {
        char c = s[i];
        if (c == '\\' && i + 1 < n && strchr("\\`*_{}[]()#+-.!>~|", s[i + 1])) {
            fti_buf_putc(out, s[i + 1]);
            i += 2;
            continue;
        }
        if (c == '`') {
            i++;
            continue;
        }
        if ((c == '!' && i + 2 < n && s[i + 1] == '[' && s[i + 2] == '[') ||
            (c == '[' && i + 1 < n && s[i + 1] == '[')) {
            /* wiki links (Obsidian, Logseq, wikis): [[page]] keeps the page name, [[page|shown]]
             * the shown text, and an embed ![[file]] goes; the first ']' must close it */
            size_t a = i + (c == '!' ? 3 : 2);
            size_t j = fti__st_next_of(s, n, a, ']', &next_rb);
            if (j + 1 < n && s[j + 1] == ']' && j - a <= 4096) {
                if (c == '[') {
                    const char *bar = (const char *)memchr(s + a, '|', j - a);
                    size_t b = bar ? (size_t)(bar - s) + 1 : a;
                    fti__st_md_inline(s + b, j - b, out);
                }
                i = j + 2;
                continue;
            }
        }
        if (c == '[' && i + 1 < n && s[i + 1] == '^') { /* a footnote mark [^1]: dropped */
            size_t j = fti__st_next_of(s, n, i + 2, ']', &next_rb);
            if (j < n && j - i <= 64 && (j + 1 >= n || s[j + 1] != '(')) {
                i = j + 1;
                continue;
            }
        }
        if (c == '<' && i + 3 < n && s[i + 1] == '!' && s[i + 2] == '-' && s[i + 3] == '-') {
            /* an HTML comment within the line: dropped (the end's position is cached: a line
             * of "<!--" is scanned once) */
            if (next_cc < i + 4) {
                size_t k = i + 4;
                while (k + 2 < n && !(s[k] == '-' && s[k + 1] == '-' && s[k + 2] == '>')) k++;
                next_cc = k + 2 < n ? k : n;
            }
            if (next_cc < n) {
                i = next_cc + 3;
                continue;
            }
        }
        if ((c == '!' && i + 1 < n && s[i + 1] == '[') || c == '[') {
            /* [text](url) or ![alt](url) or [text][ref]: keep the text. The text ends at the
             * first ']' (no nested brackets) and the target at the first ')' or ']'; the next
             * position of each is cached and only moves forward, so any line, even a million
             * '[', is scanned in linear time, and the recursion is one level deep. */
            size_t a = i + (c == '!' ? 2 : 1);
            size_t j = fti__st_next_of(s, n, a, ']', &next_rb);
            if (j < n && j + 1 < n && (s[j + 1] == '(' || s[j + 1] == '[')) {
                size_t k = s[j + 1] == '(' ? fti__st_next_of(s, n, j + 2, ')', &next_rp)
                                           : fti__st_next_of(s, n, j + 2, ']', &next_ref);
                if (k < n && k - j <= 4096) {
                    fti__st_md_inline(s + a, j - a, out);
                    i = k + 1;
                    continue;
                }
            }
        }
        if (c == '<' && i + 1 < n &&
            (fti__st_starts_ci(s + i + 1, n - i - 1, "http") ||
             fti__st_starts_ci(s + i + 1, n - i - 1, "mailto:"))) {
            size_t k = i + 1, lim = n - k > 2048 ? k + 2048 : n;
            while (k < lim && s[k] != '>' && s[k] != ' ') k++;
            if (k < lim && s[k] == '>') {
                fti_buf_append(out, s + i + 1, k - i - 1);
                i = k + 1;
                continue;
            }
        }
        if (c == '<' && i + 2 < n &&
            (fti__st_is_alpha((unsigned char)s[i + 1]) ||
             (s[i + 1] == '/' && fti__st_is_alpha((unsigned char)s[i + 2])))) {
            /* inline HTML (<span ...>, </em>, <br/>): the tag goes, its text stays */
            size_t k = i + 2, lim = n - i > 512 ? i + 512 : n;
            while (k < lim && s[k] != '>' && s[k] != '<') k++;
            if (k < lim && s[k] == '>') {
                i = k + 1;
                continue;
            }
        }
        if (c == '&') { /* a character reference (&amp; &eacute; &#8217;) */
            uint32_t cp;
            size_t m = fti__st_html_entity(s + i, n - i, &cp);
            if (m) {
                fti__st_put_cp(out, cp);
                i += m;
                continue;
            }
        }
        if (c == '*' || c == '_' || c == '~') {
            size_t j = i;
            int prev_alnum, next_alnum;
            while (j < n && s[j] == c) j++;
            prev_alnum = i > 0 && (fti__st_is_alnum((unsigned char)s[i - 1]) ||
                                   (unsigned char)s[i - 1] >= 0x80);
            next_alnum =
                j < n && (fti__st_is_alnum((unsigned char)s[j]) || (unsigned char)s[j] >= 0x80);
            /* emphasis delimiters touch text on exactly one side; snake_case keeps its '_' */
            if (c == '_' && i > 0 && j < n && fti__st_is_alnum((unsigned char)s[i - 1]) &&
                fti__st_is_alnum((unsigned char)s[j])) {
                fti_buf_append(out, s + i, j - i);
            } else if (c == '~' && j - i < 2) {
                fti_buf_append(out, s + i, j - i);
            } else if (prev_alnum != next_alnum) {
                /* dropped */
            } else {
                fti_buf_append(out, s + i, j - i);
            }
            i = j;
            continue;
        }
        { /* c and the plain text after it, up to the next character the cases above treat */
            size_t j = i + 1;
            while (j < n && !fti__st_md_special(s[j])) j++;
            fti_buf_append(out, s + i, j - i);
            i = j;
        }
    }
}

/* Is the line only rule characters (---, ***, ===, ___) with at least 3 of them? */
static int fti__st_md_rule(const char *s, size_t n) {
    size_t i, cnt = 0;
    char r = 0;
    for (i = 0; i < n; i++) {
        char c = s[i];
        if (c == ' ' || c == '\t') continue;
        if (c != '-' && c != '*' && c != '_' && c != '=') return 0;
        if (r && c != r) return 0;
        r = c;
        cnt++;
    }
    return cnt >= 3;
}

/* The front-matter value v[0..*vn) without its comment: " # ..." (or a value that is only one)
 * goes, a '#' inside quotes or a word ("C#", "#1") stays; *vn is cut and the blanks before. */
static void fti__st_md_uncomment(const char *v, size_t *vn) {
    size_t j;
    char q = 0;
    for (j = 0; j < *vn; j++) {
        char c = v[j];
        if (q) {
            if (c == q) q = 0;
        } else if ((c == '"' || c == '\'') &&
                   (j == 0 || fti__st_is_space((unsigned char)v[j - 1]) || v[j - 1] == '[' ||
                    v[j - 1] == ',')) {
            q = c; /* a quote opens a value, not inside a word ("Ann's") */
        } else if (c == '#' && (j == 0 || fti__st_is_space((unsigned char)v[j - 1]))) {
            break;
        }
    }
    while (j > 0 && fti__st_is_space((unsigned char)v[j - 1])) j--;
    *vn = j;
}

/* Front matter: a YAML block between "---" lines or a TOML one between "+++" lines at the very
 * start (Jekyll, Hugo, Obsidian, Zola). Returns the bytes it takes (0: none) and puts its title
 * ("title: ..." / "title = ...", quotes and a " # comment" removed) into title. */
static size_t fti__st_md_front_matter(const char *md, size_t len, fti_buf *title) {
    size_t i = 0, lim = len < 65536 ? len : 65536;
    char fence;
    const char *t = NULL;
    size_t tn = 0;
    if (lim >= 3 && (unsigned char)md[0] == 0xEF && (unsigned char)md[1] == 0xBB &&
        (unsigned char)md[2] == 0xBF)
        i = 3; /* a byte-order mark */
    if (i + 3 > lim || (memcmp(md + i, "---", 3) != 0 && memcmp(md + i, "+++", 3) != 0)) return 0;
    fence = md[i];
    i += 3;
    while (i < lim && (md[i] == ' ' || md[i] == '\t' || md[i] == '\r')) i++;
    if (i >= lim || md[i] != '\n') return 0;
    i++;
    while (i < lim) {
        size_t e = i, n;
        const char *s = md + i;
        while (e < lim && md[e] != '\n') e++;
        n = e - i;
        if (n && s[n - 1] == '\r') n--;
        while (n && (s[n - 1] == ' ' || s[n - 1] == '\t')) n--;
        if (n == 3 && (s[0] == fence || (fence == '-' && s[0] == '.')) && s[1] == s[0] &&
            s[2] == s[0]) {
            if (title && t && tn) fti_buf_append(title, t, tn);
            return e < len ? e + 1 : len;
        }
        /* every line must read as YAML ("key: value", "- item", indented, "# comment") or TOML
         * ("key = value", "[table]"): a document that opens with a rule and has another one
         * further down is text, not front matter */
        if (n && s[0] != ' ' && s[0] != '\t' && s[0] != '#' &&
            !(fence == '-' ? s[0] == '-' || memchr(s, ':', n) != NULL
                           : s[0] == '[' || memchr(s, '=', n) != NULL))
            return 0;
        if (n > 6 && memcmp(s, "title", 5) == 0 && (s[5] == ':' || s[5] == ' ' || s[5] == '=')) {
            size_t k = 5;
            while (k < n && (s[k] == ' ' || s[k] == ':' || s[k] == '=')) k++;
            t = s + k, tn = n - k;
            fti__st_md_uncomment(t, &tn);
            if (tn >= 2 && (t[0] == '"' || t[0] == '\'') && t[tn - 1] == t[0]) t++, tn -= 2;
        }
        if (e >= lim) break;
        i = e + 1;
    }
    return 0; /* no closing line: not front matter */
}

FTIDEF void fti_markdown_to_text(const char *md, size_t len, fti_buf *out, fti_buf *title) {
    size_t i = 0;
    int in_fence = 0, have_title = 0, in_comment = 0;
    fti_buf kept; /* a line without its Obsidian comments */
    if (!out || !md) return;
    memset(&kept, 0, sizeof kept);
    {
        size_t tl = title ? title->len : 0;
        i = fti__st_md_front_matter(md, len, title);
        have_title = title && title->len > tl;
    }
    while (i < len) {
        size_t e = i, n;
        const char *s;
        while (e < len && md[e] != '\n') e++;
        s = md + i;
        n = e - i;
        if (n && s[n - 1] == '\r') n--;
        i = e < len ? e + 1 : len;
        {
            size_t k = 0;
            while (k < n && k < 4 && s[k] == ' ') k++;
            if (n - k >= 3 && (memcmp(s + k, "```", 3) == 0 || memcmp(s + k, "~~~", 3) == 0)) {
                in_fence = !in_fence;
                fti_buf_putc(out, '\n');
                continue;
            }
        }
        if (in_fence) {
            fti_buf_append(out, s, n);
            fti_buf_putc(out, '\n');
            continue;
        }
        if (in_comment || (n >= 2 && memchr(s, '%', n))) { /* Obsidian's %% comments %% */
            size_t k = 0, from = 0;
            kept.len = 0;
            for (; k + 1 < n; k++) {
                if (s[k] != '%' || s[k + 1] != '%') continue;
                if (!in_comment) fti_buf_append(&kept, s + from, k - from);
                in_comment = !in_comment;
                from = k + 2;
                k++;
            }
            if (!in_comment && from < n) fti_buf_append(&kept, s + from, n - from);
            if (kept.oom) out->oom = 1;
            if (!kept.len) continue; /* all comment: no line */
            s = kept.data;
            n = kept.len;
        }
        while (n && (s[0] == ' ' || s[0] == '\t')) s++, n--;
        if (fti__st_md_rule(s, n)) {
            fti_buf_putc(out, '\n');
            continue;
        }
        if (n >= 3 && s[0] == '[') { /* reference definition "[id]: url" */
            const char *rb = (const char *)memchr(s, ']', n);
            if (rb && (size_t)(rb - s) + 1 < n && rb[1] == ':') {
                if (s[1] == '^') { /* a footnote "[^1]: text": the text stays */
                    size_t k = (size_t)(rb - s) + 2;
                    while (k < n && s[k] == ' ') k++;
                    fti__st_md_inline(s + k, n - k, out);
                    fti_buf_putc(out, '\n');
                }
                continue;
            }
        }
        while (n && s[0] == '>') {
            s++, n--;
            if (n && s[0] == ' ') s++, n--;
        }
        if (n >= 4 && s[0] == '[' && s[1] == '!') { /* a callout "[!note]- Title": the title */
            const char *rb = (const char *)memchr(s, ']', n);
            if (rb) {
                size_t k = (size_t)(rb - s) + 1;
                if (k < n && (s[k] == '+' || s[k] == '-')) k++;
                while (k < n && s[k] == ' ') k++;
                s += k, n -= k;
                if (!n) continue;
            }
        }
        if (n && s[0] == '#') {
            size_t h = 0;
            while (h < n && s[h] == '#') h++;
            if (h <= 6 && (h == n || s[h] == ' ')) {
                const char *t = s + h;
                size_t tn = n - h;
                while (tn && (t[tn - 1] == '#' || t[tn - 1] == ' ')) tn--;
                fti__st_trim(&t, &tn);
                if (title && !have_title && tn) {
                    fti__st_md_inline(t, tn, title);
                    have_title = 1;
                }
                fti_buf_putc(out, '\n');
                fti__st_md_inline(t, tn, out);
                fti_buf_puts(out, "\n\n");
                continue;
            }
        }
        if (n >= 2 && (s[0] == '-' || s[0] == '*' || s[0] == '+') && s[1] == ' ') {
            s += 2, n -= 2;
            if (n >= 4 && s[0] == '[' && (s[1] == ' ' || s[1] == 'x' || s[1] == 'X') &&
                s[2] == ']' && s[3] == ' ') /* a task "- [x] " */
                s += 4, n -= 4;
        } else {
            size_t d = 0;
            while (d < n && d < 9 && fti__st_is_digit((unsigned char)s[d])) d++;
            if (d && d + 1 < n && (s[d] == '.' || s[d] == ')') && s[d + 1] == ' ')
                s += d + 2, n -= d + 2;
        }
        fti__st_md_inline(s, n, out);
        fti_buf_putc(out, '\n');
    }
    fti_buf_free(&kept);
}

#endif /* FTI_NO_STORE */
