/* === store: text cleaning (normalise, HTML, markdown, redaction) and the document template === */
#include "04_store.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

#ifndef FTI_NO_STORE

/* --- small string helpers ------------------------------------------------------------------- */

static int fti__lc(int c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }
static int fti__is_alpha(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static int fti__is_digit(int c) { return c >= '0' && c <= '9'; }
static int fti__is_alnum(int c) { return fti__is_alpha(c) || fti__is_digit(c); }
static int fti__is_space(int c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' ||
                                         c == '\f' || c == '\v'; }

/* Case-insensitive: does s[0..n) start with the NUL-terminated lowercase word w? */
static int fti__starts_ci(const char *s, size_t n, const char *w) {
    size_t i;
    for (i = 0; w[i]; i++)
        if (i >= n || fti__lc((unsigned char)s[i]) != w[i]) return 0;
    return 1;
}

/* Case-insensitive equality of s[0..n) and the NUL-terminated w. */
static int fti__eq_ci(const char *s, size_t n, const char *w) {
    return strlen(w) == n && fti__starts_ci(s, n, w);
}

/* Case-insensitive search for the lowercase needle in s[0..n); returns offset or n. */
static size_t fti__find_ci(const char *s, size_t n, const char *needle) {
    size_t m = strlen(needle), i;
    if (m == 0) return 0;
    for (i = 0; i + m <= n; i++)
        if (fti__lc((unsigned char)s[i]) == needle[0] && fti__starts_ci(s + i, n - i, needle))
            return i;
    return n;
}

/* Trims blanks on both sides of [*s, *s + *n). */
static void fti__trim(const char **s, size_t *n) {
    while (*n > 0 && fti__is_space((unsigned char)(*s)[0])) (*s)++, (*n)--;
    while (*n > 0 && fti__is_space((unsigned char)(*s)[*n - 1])) (*n)--;
}

/* Is name (len n) one of the comma-separated names in list (case-insensitive)? Returns the
 * position in the list (0-based) or -1. */
static int fti__list_pos(const char *list, const char *name, size_t n) {
    int pos = 0;
    const char *p = list;
    while (p && *p) {
        const char *e = strchr(p, ',');
        size_t m = e ? (size_t)(e - p) : strlen(p);
        const char *q = p;
        fti__trim(&q, &m);
        if (m == n && fti__starts_ci(name, n, "") && m > 0) {
            size_t i;
            for (i = 0; i < n; i++)
                if (fti__lc((unsigned char)q[i]) != fti__lc((unsigned char)name[i])) break;
            if (i == n) return pos;
        }
        pos++;
        p = e ? e + 1 : NULL;
    }
    return -1;
}

/* --- the document template ------------------------------------------------------------------- */

FTIDEF void fti_template_render(fti_buf *out, const char *title, size_t title_len,
                                const char *body, size_t body_len, int open_body) {
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
static int fti__is_ublank(uint32_t cp) {
    return cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 ||
           cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}
/* Invisible or control code points that are dropped. */
static int fti__is_dropped(uint32_t cp) {
    return cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F) || cp == 0x200B ||
           cp == 0xFEFF || cp == 0x00AD || (cp >= 0xFFF9 && cp <= 0xFFFB);
}

/* --- redaction --------------------------------------------------------------------------- */

static int fti__is_email_local(int c) {
    return fti__is_alnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-';
}
static int fti__is_domain(int c) { return fti__is_alnum(c) || c == '.' || c == '-'; }

/* Length of a URL starting at s (http://, https://, ftp://, www.), or 0. */
static size_t fti__match_url(const char *s, size_t n) {
    size_t i;
    if (fti__starts_ci(s, n, "https://")) i = 8;
    else if (fti__starts_ci(s, n, "http://")) i = 7;
    else if (fti__starts_ci(s, n, "ftp://")) i = 6;
    else if (fti__starts_ci(s, n, "www.")) i = 4;
    else return 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        if (fti__is_space(c) || c == '"' || c == '\'' || c == '<' || c == '>' || c == ')' ||
            c == ']' || c == '}')
            break;
        i++;
    }
    while (i > 0 && strchr(".,;:!?", s[i - 1])) i--;
    return i > 8 ? i : 0;
}

/* Length of an e-mail address starting at s, or 0. */
static size_t fti__match_email(const char *s, size_t n) {
    size_t i = 0, at, dots = 0, last_dot = 0;
    while (i < n && fti__is_email_local((unsigned char)s[i])) i++;
    if (i == 0 || i >= n || s[i] != '@') return 0;
    at = i++;
    while (i < n && fti__is_domain((unsigned char)s[i])) {
        if (s[i] == '.') dots++, last_dot = i;
        i++;
    }
    while (i > at + 1 && (s[i - 1] == '.' || s[i - 1] == '-')) {
        if (s[i - 1] == '.') dots--;
        i--;
    }
    if (dots == 0 || last_dot >= i - 1 || last_dot == at + 1) return 0;
    return i;
}

/* Length of a phone number starting at s, or 0: an optional '+', digits with single
 * separators ( -.()), 9..15 digits (7..15 after a '+'), ending in a digit. */
static size_t fti__match_phone(const char *s, size_t n) {
    size_t i = 0, digits = 0, end = 0;
    int plus = 0, sep = 0;
    if (i < n && s[i] == '+') plus = 1, i++;
    if (i < n && s[i] == '(') i++;
    if (i >= n || !fti__is_digit((unsigned char)s[i])) return 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        if (fti__is_digit(c)) {
            digits++;
            end = i + 1;
            sep = 0;
        } else if ((c == ' ' || c == '-' || c == '.' || c == '(' || c == ')') && sep < 2) {
            sep++;
        } else {
            break;
        }
        i++;
    }
    if (end < n && (fti__is_alnum((unsigned char)s[end]) || s[end] == '@')) return 0;
    if (digits > 15 || digits < (size_t)(plus ? 7 : 9)) return 0;
    return end;
}

static void fti__redact(const char *s, size_t n, int flags, fti_buf *out) {
    size_t i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        int boundary = i == 0 || !fti__is_alnum((unsigned char)s[i - 1]);
        size_t m = 0;
        if (boundary && (fti__is_alnum(c) || c == '+' || c == '(' || c == '_' || c == '.')) {
            if ((flags & FTI_CLEAN_REDACT_URL) && (m = fti__match_url(s + i, n - i)) != 0) {
                fti_buf_puts(out, "[URL]");
            } else if ((flags & FTI_CLEAN_REDACT_EMAIL) &&
                       (m = fti__match_email(s + i, n - i)) != 0) {
                fti_buf_puts(out, "[EMAIL]");
            } else if ((flags & FTI_CLEAN_REDACT_PHONE) &&
                       (m = fti__match_phone(s + i, n - i)) != 0) {
                fti_buf_puts(out, "[PHONE]");
            }
        }
        if (m) {
            i += m;
            continue;
        }
        /* copy a whole word at once when it cannot start a match */
        fti_buf_putc(out, (char)c);
        i++;
        if (fti__is_alnum(c)) {
            while (i < n && fti__is_alnum((unsigned char)s[i])) fti_buf_putc(out, s[i++]);
        }
    }
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
                if (pend_nl) fti_buf_append(dst, "\n\n", pend_nl >= 2 ? 2 : 1);
                else if (pend_blank) fti_buf_putc(dst, ' ');
            }
            pend_nl = pend_blank = 0;
            fti_buf_append(dst, s + i, j - i);
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
        if (fti__is_ublank(cp)) {
            if (cp == 0x2028 || cp == 0x2029) pend_nl++;
            else pend_blank = 1;
        } else if (!fti__is_dropped(cp)) {
            unsigned char enc[4];
            size_t m = fti_utf8_encode(cp, enc);
            if (written) {
                if (pend_nl) fti_buf_append(dst, "\n\n", pend_nl >= 2 ? 2 : 1);
                else if (pend_blank) fti_buf_putc(dst, ' ');
            }
            pend_nl = pend_blank = 0;
            fti_buf_append(dst, enc, m);
            written = 1;
        }
        i += k;
    }
    (void)start;
    if (dst == &tmp) {
        fti__redact(tmp.data ? tmp.data : "", tmp.len, flags, out);
        if (tmp.oom) out->oom = 1;
        fti_buf_free(&tmp);
    }
}

/* === clean: HTML ============================================================================ */

typedef struct fti__entity {
    const char *name;
    uint32_t cp;
} fti__entity;

static const fti__entity fti__entities[] = {
    {"amp", '&'}, {"lt", '<'}, {"gt", '>'}, {"quot", '"'}, {"apos", '\''}, {"nbsp", 0xA0},
    {"copy", 0xA9}, {"reg", 0xAE}, {"trade", 0x2122}, {"mdash", 0x2014}, {"ndash", 0x2013},
    {"hellip", 0x2026}, {"lsquo", 0x2018}, {"rsquo", 0x2019}, {"ldquo", 0x201C},
    {"rdquo", 0x201D}, {"laquo", 0xAB}, {"raquo", 0xBB}, {"middot", 0xB7}, {"bull", 0x2022},
    {"deg", 0xB0}, {"times", 0xD7}, {"divide", 0xF7}, {"euro", 0x20AC}, {"pound", 0xA3},
    {"cent", 0xA2}, {"yen", 0xA5}, {"sect", 0xA7}, {"para", 0xB6}, {"shy", 0xAD},
    {"eacute", 0xE9}, {"egrave", 0xE8}, {"ecirc", 0xEA}, {"euml", 0xEB}, {"aacute", 0xE1},
    {"agrave", 0xE0}, {"acirc", 0xE2}, {"auml", 0xE4}, {"aring", 0xE5}, {"ccedil", 0xE7},
    {"iacute", 0xED}, {"icirc", 0xEE}, {"iuml", 0xEF}, {"ntilde", 0xF1}, {"oacute", 0xF3},
    {"ocirc", 0xF4}, {"ouml", 0xF6}, {"oslash", 0xF8}, {"uacute", 0xFA}, {"ucirc", 0xFB},
    {"uuml", 0xFC}, {"szlig", 0xDF}, {"Eacute", 0xC9}, {"Auml", 0xC4}, {"Ouml", 0xD6},
    {"Uuml", 0xDC}, {"iexcl", 0xA1}, {"iquest", 0xBF}, {"thinsp", 0x2009}, {"ensp", 0x2002},
    {"emsp", 0x2003}, {"zwj", 0x200D}, {"zwnj", 0x200C}, {"prime", 0x2032}, {"larr", 0x2190},
    {"rarr", 0x2192}, {"hearts", 0x2665}, {"frac12", 0xBD}, {"frac14", 0xBC}, {"plusmn", 0xB1}};

static void fti__put_cp(fti_buf *out, uint32_t cp) {
    unsigned char enc[4];
    size_t m = fti_utf8_encode(cp, enc);
    fti_buf_append(out, enc, m);
}

/* Decodes the entity at s[0] == '&'; returns bytes consumed (0 if not an entity). */
static size_t fti__html_entity(const char *s, size_t n, uint32_t *cp) {
    size_t i = 1, j;
    if (n >= 3 && s[1] == '#') {
        uint32_t v = 0;
        int hex = (s[2] == 'x' || s[2] == 'X'), any = 0;
        i = hex ? 3 : 2;
        for (; i < n && i < 16; i++) {
            int c = (unsigned char)s[i], d;
            if (fti__is_digit(c)) d = c - '0';
            else if (hex && fti__lc(c) >= 'a' && fti__lc(c) <= 'f') d = fti__lc(c) - 'a' + 10;
            else break;
            if (v < 0x110000) v = v * (hex ? 16u : 10u) + (uint32_t)d;
            any = 1;
        }
        if (!any) return 0;
        if (i < n && s[i] == ';') i++;
        if (v == 0 || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) v = 0xFFFD;
        *cp = v;
        return i;
    }
    while (i < n && i < 12 && fti__is_alnum((unsigned char)s[i])) i++;
    if (i == 1) return 0;
    for (j = 0; j < sizeof fti__entities / sizeof fti__entities[0]; j++) {
        const char *name = fti__entities[j].name;
        if (strlen(name) == i - 1 && memcmp(name, s + 1, i - 1) == 0) {
            *cp = fti__entities[j].cp;
            return (i < n && s[i] == ';') ? i + 1 : i;
        }
    }
    return 0;
}

static const char *const fti__html_blocks[] = {
    "p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "li", "ul", "ol", "tr", "table", "blockquote",
    "pre", "section", "article", "header", "footer", "hr", "nav", "aside", "main", "dl", "dt",
    "dd", "figure", "figcaption", "form", "address", "body", "tbody", "thead", "details",
    "summary", "center", NULL};
static const char *const fti__html_skip[] = {"script", "style", "head", "noscript", "template",
                                             "svg", "iframe", "object", "math", NULL};

static int fti__in_list(const char *name, size_t n, const char *const *list) {
    size_t i;
    for (i = 0; list[i]; i++)
        if (fti__eq_ci(name, n, list[i])) return 1;
    return 0;
}

/* Offset just after the '>' closing the tag that starts at s[0] == '<' (quotes respected),
 * or n when unterminated. */
static size_t fti__tag_end(const char *s, size_t n) {
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

FTIDEF void fti_html_to_text(const char *html, size_t len, fti_buf *out, fti_buf *title) {
    size_t i = 0;
    int in_pre = 0, cap_title = 0, have_title = 0;
    if (!out || !html) return;
    while (i < len) {
        char c = html[i];
        if (c == '<') {
            size_t end, nm, k;
            int closing = 0;
            const char *name;
            if (len - i >= 4 && memcmp(html + i, "<!--", 4) == 0) {
                size_t e = fti__find_ci(html + i + 4, len - i - 4, "-->");
                i = (e >= len - i - 4) ? len : i + 4 + e + 3;
                continue;
            }
            k = i + 1;
            if (k < len && html[k] == '/') closing = 1, k++;
            name = html + k;
            while (k < len && (fti__is_alnum((unsigned char)html[k]))) k++;
            nm = (size_t)(html + k - name);
            if (nm == 0 && !(k < len && (html[k] == '!' || html[k] == '?'))) {
                fti_buf_putc(out, '<'); /* a lone '<' in text */
                i++;
                continue;
            }
            end = i + fti__tag_end(html + i, len - i);
            if (!closing && fti__in_list(name, nm, fti__html_skip)) {
                /* skip to the matching close tag (not nested: these do not nest) */
                char close[16];
                size_t e;
                if (fti__eq_ci(name, nm, "head")) {
                    /* keep <title> inside <head>: only drop script/style there */
                    i = end;
                    continue;
                }
                snprintf(close, sizeof close, "</%.*s", (int)nm, name);
                for (e = 0; close[e]; e++) close[e] = (char)fti__lc((unsigned char)close[e]);
                e = fti__find_ci(html + end, len - end, close);
                if (e >= len - end) {
                    i = len;
                } else {
                    i = end + e;
                    i += fti__tag_end(html + i, len - i);
                }
                continue;
            }
            if (fti__eq_ci(name, nm, "title") || (fti__eq_ci(name, nm, "h1") && !have_title)) {
                if (!closing && title && !have_title) cap_title = 1;
                else if (closing && cap_title) cap_title = 0, have_title = 1;
            }
            if (fti__eq_ci(name, nm, "title")) {
                /* the page title is metadata, not body text */
                if (!closing) {
                    size_t e = fti__find_ci(html + end, len - end, "</title");
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
                    if (i < len) i += fti__tag_end(html + i, len - i);
                    continue;
                }
            }
            if (fti__eq_ci(name, nm, "br")) fti_buf_putc(out, '\n');
            else if (fti__in_list(name, nm, fti__html_blocks)) fti_buf_puts(out, "\n\n");
            else if (fti__eq_ci(name, nm, "td") || fti__eq_ci(name, nm, "th"))
                fti_buf_putc(out, ' ');
            if (fti__eq_ci(name, nm, "pre")) in_pre = !closing;
            i = end;
            continue;
        }
        if (c == '&') {
            uint32_t cp = 0;
            size_t m = fti__html_entity(html + i, len - i, &cp);
            if (m) {
                fti__put_cp(out, cp);
                if (cap_title && title) fti__put_cp(title, cp);
                i += m;
                continue;
            }
        }
        if ((c == '\n' || c == '\r' || c == '\t') && !in_pre) c = ' ';
        fti_buf_putc(out, c);
        if (cap_title && title) fti_buf_putc(title, c);
        i++;
    }
}

/* === clean: markdown ========================================================================= */

/* Inline markdown of one line into out. */
static void fti__md_inline(const char *s, size_t n, fti_buf *out) {
    size_t i = 0;
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
        if ((c == '!' && i + 1 < n && s[i + 1] == '[') || c == '[') {
            /* [text](url) or ![alt](url) or [text][ref]: keep the text */
            size_t a = i + (c == '!' ? 2 : 1), j = a;
            int depth = 1;
            while (j < n && depth > 0) {
                if (s[j] == '[') depth++;
                else if (s[j] == ']') depth--;
                if (depth > 0) j++;
            }
            if (j < n && j + 1 < n && (s[j + 1] == '(' || s[j + 1] == '[')) {
                char close = s[j + 1] == '(' ? ')' : ']';
                size_t k = j + 2;
                while (k < n && s[k] != close) k++;
                if (k < n) {
                    fti__md_inline(s + a, j - a, out);
                    i = k + 1;
                    continue;
                }
            }
        }
        if (c == '<' && i + 1 < n && (fti__starts_ci(s + i + 1, n - i - 1, "http") ||
                                      fti__starts_ci(s + i + 1, n - i - 1, "mailto:"))) {
            size_t k = i + 1;
            while (k < n && s[k] != '>' && s[k] != ' ') k++;
            if (k < n && s[k] == '>') {
                fti_buf_append(out, s + i + 1, k - i - 1);
                i = k + 1;
                continue;
            }
        }
        if (c == '*' || c == '_' || c == '~') {
            size_t j = i;
            int prev_alnum, next_alnum;
            while (j < n && s[j] == c) j++;
            prev_alnum = i > 0 && !fti__is_space((unsigned char)s[i - 1]);
            next_alnum = j < n && !fti__is_space((unsigned char)s[j]);
            /* emphasis delimiters touch text on exactly one side; snake_case keeps its '_' */
            if (c == '_' && i > 0 && j < n && fti__is_alnum((unsigned char)s[i - 1]) &&
                fti__is_alnum((unsigned char)s[j])) {
                fti_buf_append(out, s + i, j - i);
            } else if (c == '~' && j - i < 2) {
                fti_buf_append(out, s + i, j - i);
            } else if (prev_alnum != next_alnum || (c != '~' && prev_alnum && next_alnum)) {
                /* dropped */
            } else {
                fti_buf_append(out, s + i, j - i);
            }
            i = j;
            continue;
        }
        fti_buf_putc(out, c);
        i++;
    }
}

/* Is the line only rule characters (---, ***, ===, ___) with at least 3 of them? */
static int fti__md_rule(const char *s, size_t n) {
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

FTIDEF void fti_markdown_to_text(const char *md, size_t len, fti_buf *out, fti_buf *title) {
    size_t i = 0;
    int in_fence = 0, have_title = 0;
    if (!out || !md) return;
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
        while (n && (s[0] == ' ' || s[0] == '\t')) s++, n--;
        if (fti__md_rule(s, n)) {
            fti_buf_putc(out, '\n');
            continue;
        }
        if (n >= 3 && s[0] == '[') { /* reference definition "[id]: url" */
            const char *rb = (const char *)memchr(s, ']', n);
            if (rb && (size_t)(rb - s) + 1 < n && rb[1] == ':') continue;
        }
        while (n && s[0] == '>') {
            s++, n--;
            if (n && s[0] == ' ') s++, n--;
        }
        if (n && s[0] == '#') {
            size_t h = 0;
            while (h < n && s[h] == '#') h++;
            if (h <= 6 && (h == n || s[h] == ' ')) {
                const char *t = s + h;
                size_t tn = n - h;
                while (tn && (t[tn - 1] == '#' || t[tn - 1] == ' ')) tn--;
                fti__trim(&t, &tn);
                if (title && !have_title && tn) {
                    fti__md_inline(t, tn, title);
                    have_title = 1;
                }
                fti_buf_putc(out, '\n');
                fti__md_inline(t, tn, out);
                fti_buf_puts(out, "\n\n");
                continue;
            }
        }
        if (n >= 2 && (s[0] == '-' || s[0] == '*' || s[0] == '+') && s[1] == ' ') {
            s += 2, n -= 2;
        } else {
            size_t d = 0;
            while (d < n && d < 9 && fti__is_digit((unsigned char)s[d])) d++;
            if (d && d + 1 < n && (s[d] == '.' || s[d] == ')') && s[d + 1] == ' ')
                s += d + 2, n -= d + 2;
        }
        fti__md_inline(s, n, out);
        fti_buf_putc(out, '\n');
    }
}

#endif /* FTI_NO_STORE */
