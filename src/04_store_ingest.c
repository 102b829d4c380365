/* === store: ingest (input kinds, mail decoding, records, validation) ===================== */
#include "04_store.h"

#ifndef FTI_NO_STORE

/* A document produced by ingest (before dedupe). Strings are owned (fti_free). */
typedef struct fti__st_doc {
    char *text;
    size_t text_len;
    char *title, *author, *date, *kind, *loc; /* loc: "" for a whole file, else "#line 3" */
    char *addr; /* mail: the sender's address (lower case), for the owner filter only; else NULL */
    unsigned char sha[32];                    /* SHA-256 of the record's raw bytes */
    uint32_t file;                            /* index of the input file */
    uint64_t text_off; /* where the text is in the records pack (once written there) */
    uint64_t h_text;                          /* exact-dedupe key */
    uint64_t id_hi, id_lo;                    /* document id */
    uint32_t *mh;                             /* FTI_MINHASH_PERMS values */
    int status;                               /* 0 kept, 1 exact dup, 2 near dup */
    uint32_t dup_of;
    int split;
} fti__st_doc;

/* A rejected record or file. */
typedef struct fti__st_rej {
    char *reason; /* rule key, e.g. "too_short", "json_error" */
    char *detail; /* human detail */
    char *loc;
    uint32_t file;
} fti__st_rej;

/* The output of one unit of work. */
typedef struct fti__st_out {
    fti__st_doc *docs;
    size_t n_docs, cap_docs;
    fti__st_rej *rejs;
    size_t n_rejs, cap_rejs;
    int oom;
    /* the unit's whole file and its SHA-256: a record that is the whole file reuses it */
    const char *file_data;
    size_t file_len;
    const unsigned char *file_sha;
} fti__st_out;

/* Resolved per-record processing options (what the cache key covers). */
typedef struct fti__st_proc {
    const fti_ingest_opts *o;
    int required_title, required_author, required_date;
    int sha_fast; /* fti__st_sha_fast(), once per run */
} fti__st_proc;

static void fti__st_doc_free(fti__st_doc *d) {
    fti_free(d->text);
    fti_free(d->title);
    fti_free(d->author);
    fti_free(d->date);
    fti_free(d->kind);
    fti_free(d->loc);
    fti_free(d->addr);
    fti_free(d->mh);
}

static void fti__st_out_free(fti__st_out *o) {
    size_t i;
    for (i = 0; i < o->n_docs; i++) fti__st_doc_free(&o->docs[i]);
    for (i = 0; i < o->n_rejs; i++) {
        fti_free(o->rejs[i].reason);
        fti_free(o->rejs[i].detail);
        fti_free(o->rejs[i].loc);
    }
    fti_free(o->docs);
    fti_free(o->rejs);
    memset(o, 0, sizeof *o);
}

static void fti__st_reject(fti__st_out *o, uint32_t file, const char *loc, const char *reason,
                           const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;
static void fti__st_reject(fti__st_out *o, uint32_t file, const char *loc, const char *reason,
                           const char *fmt, ...) {
    char msg[400];
    va_list ap;
    fti__st_rej *r;
    if (o->n_rejs == o->cap_rejs) {
        size_t cap = o->cap_rejs ? o->cap_rejs * 2 : 8;
        fti__st_rej *p = (fti__st_rej *)fti_realloc(o->rejs, cap * sizeof *p);
        if (!p) {
            o->oom = 1;
            return;
        }
        o->rejs = p;
        o->cap_rejs = cap;
    }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    r = &o->rejs[o->n_rejs++];
    r->reason = fti_strdup(reason);
    r->detail = fti_strdup(msg);
    r->loc = fti_strdup(loc ? loc : "");
    r->file = file;
    if (!r->reason || !r->detail || !r->loc) o->oom = 1;
}

/* Copies [s, s+n) trimmed, as a new string with blanks collapsed and controls removed, at most
 * max bytes (cut at a character boundary). NULL when empty. */
static char *fti__st_meta_str(const char *s, size_t n, size_t max) {
    fti_buf b;
    char *r;
    if (!s) return NULL;
    memset(&b, 0, sizeof b);
    fti_clean_text(s, n, 0, &b);
    if (b.oom || b.len == 0) {
        fti_buf_free(&b);
        return NULL;
    }
    {
        size_t i;
        for (i = 0; i < b.len; i++)
            if (b.data[i] == '\n') b.data[i] = ' ';
    }
    if (b.len > max) {
        size_t k = max;
        while (k > 0 && ((unsigned char)b.data[k] & 0xC0) == 0x80) k--;
        b.len = k;
    }
    r = fti_strndup(b.data, b.len);
    fti_buf_free(&b);
    return r;
}

/* === validation =========================================================================== */

/* For fti__st_validate's counts: bit 0 = a visible byte, bit 32 = a letter (see there). */
#define FTI__ST_VL(c)                                                                              \
    ((uint64_t)((c) != ' ' && (c) != '\n' && ((c)&0xC0) != 0x80) |                                 \
     (uint64_t)((unsigned)(((c) | 0x20) - 'a') < 26u || (c) >= 0xC0) << 32)
#define FTI__ST_VL4(c) FTI__ST_VL(c), FTI__ST_VL((c) + 1), FTI__ST_VL((c) + 2), FTI__ST_VL((c) + 3)
#define FTI__ST_VL16(c)                                                                            \
    FTI__ST_VL4(c), FTI__ST_VL4((c) + 4), FTI__ST_VL4((c) + 8), FTI__ST_VL4((c) + 12)
#define FTI__ST_VL64(c)                                                                            \
    FTI__ST_VL16(c), FTI__ST_VL16((c) + 16), FTI__ST_VL16((c) + 32), FTI__ST_VL16((c) + 48)
static const uint64_t fti__st_vl[256] = {FTI__ST_VL64(0), FTI__ST_VL64(64), FTI__ST_VL64(128),
                                         FTI__ST_VL64(192)};
#undef FTI__ST_VL64
#undef FTI__ST_VL16
#undef FTI__ST_VL4
#undef FTI__ST_VL

/* The units of the repetition rule in [t, t + n): its non-empty lines, and of a line longer than
 * FTI__ST_LONG_LINE bytes its sentences (ending at ". ", "! " or "? "; one sentence written
 * 1,500 times on one line is no less degenerate than on 1,500 lines). Returns their count; with
 * tab (cap a power of two, above twice the count, zeroed) also counts in *n_rep the units that
 * repeat an earlier one. */
#define FTI__ST_LONG_LINE 1000
static size_t fti__st_rep_units(const char *t, size_t n, uint64_t *tab, size_t cap,
                                size_t *n_rep) {
    size_t i = 0, units = 0;
    while (i < n) {
        const char *e = (const char *)memchr(t + i, '\n', n - i);
        size_t le = e ? (size_t)(e - t) : n, s = i, k;
        int long_line = le - i > FTI__ST_LONG_LINE;
        while (s < le) {
            size_t u = le, a = s;
            if (long_line) {
                for (k = s; k + 1 < le; k++)
                    if ((t[k] == '.' || t[k] == '!' || t[k] == '?') && t[k + 1] == ' ') {
                        u = k + 1;
                        break;
                    }
                while (a < u && t[a] == ' ') a++;
            }
            if (u > a) {
                units++;
                if (tab) {
                    uint64_t h = fti_hash64(t + a, u - a, 0x9e37) | 1u;
                    size_t j = (size_t)h & (cap - 1);
                    while (tab[j] && tab[j] != h) j = (j + 1) & (cap - 1);
                    if (tab[j] == h)
                        ++*n_rep;
                    else
                        tab[j] = h;
                }
            }
            s = u;
        }
        i = le + 1;
    }
    return units;
}

/* Returns the rule that rejects text (and a detail), or NULL to keep it. */
static const char *fti__st_validate(const fti__st_proc *pp, const char *t, size_t n,
                                    const char *title, const char *author, const char *date,
                                    char *detail, size_t detail_len) {
    const fti_ingest_opts *o = pp->o;
    size_t i, letters = 0, visible = 0;
    if (n == 0) {
        snprintf(detail, detail_len, "no text after cleaning");
        return "empty";
    }
    if (n < o->min_chars) {
        snprintf(detail, detail_len, "%lu bytes < min %lu", (unsigned long)n,
                 (unsigned long)o->min_chars);
        return "too_short";
    }
    if (n > o->max_chars) {
        snprintf(detail, detail_len, "%lu bytes > max %lu", (unsigned long)n,
                 (unsigned long)o->max_chars);
        return "too_long";
    }
    if (pp->required_title && !title) {
        snprintf(detail, detail_len, "required field title is missing");
        return "missing_title";
    }
    if (pp->required_author && !author) {
        snprintf(detail, detail_len, "required field author is missing");
        return "missing_author";
    }
    if (pp->required_date && !date) {
        snprintf(detail, detail_len, "required field date is missing");
        return "missing_date";
    }
    if (o->min_letter_frac >= 0) {
        /* visible: all but blanks, newlines and UTF-8 continuation bytes (counted with their
         * lead); letters: ASCII letters and the leads of multi-byte characters. One table
         * load and one add per byte: both counts in one word, 2^31 bytes at a time. */
        for (i = 0; i < n;) {
            size_t end = n - i > ((size_t)1 << 31) ? i + ((size_t)1 << 31) : n;
            uint64_t sum = 0;
            for (; i < end; i++) sum += fti__st_vl[(unsigned char)t[i]];
            visible += (size_t)(sum & 0xFFFFFFFFu);
            letters += (size_t)(sum >> 32);
        }
        if (visible && (double)letters < o->min_letter_frac * (double)visible) {
            snprintf(detail, detail_len, "letters %.2f < min %.2f",
                     (double)letters / (double)visible, o->min_letter_frac);
            return "few_letters";
        }
    }
    if (o->max_repeat_frac >= 0) {
        /* repeated units (fti__st_rep_units), by hash in a small open-addressing table */
        size_t nl = fti__st_rep_units(t, n, NULL, 0, NULL), n_rep = 0, cap = 64;
        if (nl >= 4) {
            uint64_t *tab;
            while (cap < nl * 2) cap *= 2;
            tab = (uint64_t *)fti_calloc(cap, sizeof *tab);
            if (tab) {
                fti__st_rep_units(t, n, tab, cap, &n_rep);
                fti_free(tab);
                if ((double)n_rep > o->max_repeat_frac * (double)nl) {
                    snprintf(detail, detail_len, "repeated lines %.2f > max %.2f",
                             (double)n_rep / (double)nl, o->max_repeat_frac);
                    return "repeated_lines";
                }
            }
        }
    }
    return NULL;
}

/* Cleans raw text, validates it and adds the document (or the rejection). Takes ownership of
 * title/author/date/kind (may be NULL). */
static int fti__st_norm_date(const char *s, size_t n, char out[32]);

static void fti__st_emit(const fti__st_proc *pp, fti__st_out *o, uint32_t file, const char *loc,
                         const char *raw, size_t raw_len, const char *body, size_t body_len,
                         int redact_flags, char *title, char *author, char *date, char *kind) {
    fti_buf b;
    const char *why;
    char detail[200];
    fti__st_doc *d;
    memset(&b, 0, sizeof b);
    if (date) {
        char nd[32];
        if (fti__st_norm_date(date, strlen(date), nd)) {
            char *t = fti_strdup(nd);
            if (t) {
                fti_free(date);
                date = t;
            }
        }
    }
    fti_clean_text(body, body_len, redact_flags, &b);
    if (b.oom) {
        o->oom = 1;
        goto drop;
    }
    why = fti__st_validate(pp, b.data ? b.data : "", b.len, title, author, date, detail,
                           sizeof detail);
    if (why) {
        fti__st_reject(o, file, loc, why, "%s", detail);
        goto drop;
    }
    if (o->n_docs == o->cap_docs) {
        size_t cap = o->cap_docs ? o->cap_docs * 2 : 8;
        fti__st_doc *p = (fti__st_doc *)fti_realloc(o->docs, cap * sizeof *p);
        if (!p) {
            o->oom = 1;
            goto drop;
        }
        o->docs = p;
        o->cap_docs = cap;
    }
    d = &o->docs[o->n_docs++];
    memset(d, 0, sizeof *d);
    d->text = b.data ? b.data : fti_strdup("");
    d->text_len = b.len;
    d->title = title;
    d->author = author;
    d->date = date;
    d->kind = kind;
    d->loc = fti_strdup(loc ? loc : "");
    d->file = file;
    if (o->file_sha && raw == o->file_data && raw_len == o->file_len)
        memcpy(d->sha, o->file_sha, 32);
    else
        fti__st_sha256_x(pp->sha_fast, raw, raw_len, d->sha);
    if (!d->text || !d->loc) o->oom = 1;
    return;
drop:
    fti_buf_free(&b);
    fti_free(title);
    fti_free(author);
    fti_free(date);
    fti_free(kind);
}

/* === input kinds ========================================================================== */

typedef enum fti__st_kind {
    FTI__ST_K_UNKNOWN = 0,
    FTI__ST_K_TXT,
    FTI__ST_K_MD,
    FTI__ST_K_HTML,
    FTI__ST_K_JSON,
    FTI__ST_K_JSONL,
    FTI__ST_K_CSV,
    FTI__ST_K_EML,
    FTI__ST_K_MBOX
} fti__st_kind;

static const char *const fti__st_kind_names[] = {"unknown", "txt", "md",  "html", "json",
                                                 "jsonl",   "csv", "eml", "mbox"};

static fti__st_kind fti__st_kind_of(const char *path) {
    const char *ext = fti_path_ext(path), *base = fti_path_base(path);
    size_t n = strlen(ext);
    if (fti__st_eq_ci(ext, n, "txt") || fti__st_eq_ci(ext, n, "text")) return FTI__ST_K_TXT;
    if (fti__st_eq_ci(ext, n, "md") || fti__st_eq_ci(ext, n, "markdown")) return FTI__ST_K_MD;
    if (fti__st_eq_ci(ext, n, "html") || fti__st_eq_ci(ext, n, "htm")) return FTI__ST_K_HTML;
    if (fti__st_eq_ci(ext, n, "json")) return FTI__ST_K_JSON;
    if (fti__st_eq_ci(ext, n, "jsonl") || fti__st_eq_ci(ext, n, "ndjson")) return FTI__ST_K_JSONL;
    if (fti__st_eq_ci(ext, n, "csv") || fti__st_eq_ci(ext, n, "tsv")) return FTI__ST_K_CSV;
    if (fti__st_eq_ci(ext, n, "eml")) return FTI__ST_K_EML;
    if (fti__st_eq_ci(ext, n, "mbox") || fti__st_find_ci(base, strlen(base), "mbox") < strlen(base))
        return FTI__ST_K_MBOX;
    return FTI__ST_K_UNKNOWN;
}

/* May a file of unknown kind be one by its content? Files without an extension (Thunderbird
 * keeps mailboxes as "Inbox", "Sent") and ".js" (Twitter's archive: data/tweets.js). */
static int fti__st_kind_sniffable(const char *path) {
    const char *ext = fti_path_ext(path);
    return !*ext || fti__st_eq_ci(ext, strlen(ext), "js");
}

/* The kind of a sniffable file by its first bytes: Twitter's "window.YTD.<name> = [" is JSON;
 * a "From " line followed by a header line is an mbox. */
static fti__st_kind fti__st_kind_sniff(const char *s, size_t n) {
    size_t i, k;
    if (n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) s += 3, n -= 3; /* a byte-order mark */
    if (n >= 11 && memcmp(s, "window.YTD.", 11) == 0) return FTI__ST_K_JSON;
    if (n < 5 || memcmp(s, "From ", 5) != 0) return FTI__ST_K_UNKNOWN;
    for (i = 5; i < n && i < 1024 && s[i] != '\n'; i++) {}
    if (i >= n || s[i] != '\n') return FTI__ST_K_UNKNOWN;
    for (k = ++i; k < n && k < i + 80; k++) { /* "Name: value" */
        unsigned char c = (unsigned char)s[k];
        if (c == ':') return k > i ? FTI__ST_K_MBOX : FTI__ST_K_UNKNOWN;
        if (c <= ' ' || c >= 0x7F) break;
    }
    return FTI__ST_K_UNKNOWN;
}

/* Does the buffer look binary? (NUL bytes, or many control bytes, in the first 64 KiB) */
static int fti__st_looks_binary(const unsigned char *s, size_t n, char *why, size_t why_len) {
    size_t i, m = n < 65536 ? n : 65536, nul = 0, ctl = 0;
    for (i = 0; i < m; i++) {
        if (s[i] == 0)
            nul++;
        else if (s[i] < 0x20 && s[i] != '\n' && s[i] != '\r' && s[i] != '\t' && s[i] != '\f')
            ctl++;
    }
    if (nul) {
        snprintf(why, why_len, "%lu NUL bytes in the first %lu bytes", (unsigned long)nul,
                 (unsigned long)m);
        return 1;
    }
    if (m && ctl * 10 > m) {
        snprintf(why, why_len, "%lu control bytes in the first %lu bytes", (unsigned long)ctl,
                 (unsigned long)m);
        return 1;
    }
    return 0;
}

/* --- JSON records --------------------------------------------------------------------------- */
/*
 * A record is an object with a text member (fti_ingest_opts.text_fields). Exports nest them:
 * - the record may sit in a wrapper: Twitter's {"tweet": {...}}, Mastodon's {"object": {...}},
 *   Reddit's {"kind": "t3", "data": {...}}, Facebook's {"data": [{"post": "..."}]};
 * - the records' array may sit anywhere in the file: Mastodon's outbox {"orderedItems": [...]},
 *   Ghost's {"db": [{"data": {"posts": [...]}}]}, Telegram's {"chats": {"list": [{"messages":
 *   [...]}]}}, JSON Feed's {"authors": [...], "items": [...]};
 * - the text may be a string, WordPress's {"rendered": "<p>..."} or Telegram's array of runs
 *   ["Hello ", {"type": "bold", "text": "world"}].
 * Facebook writes each UTF-8 byte as its own \u00XX escape; such strings are repaired.
 */

#define FTI__ST_JREC_MAX 4 /* the record's object and up to 3 wrappers */
#define FTI__ST_JWALK_MAX 10 /* how deep a file is searched for arrays of records */

typedef struct fti__st_jrec {
    const fti_json *obj[FTI__ST_JREC_MAX]; /* outermost first; obj[n - 1] holds the text */
    int n;
    const fti_json *text; /* the text member of obj[n - 1] */
} fti__st_jrec;

static void fti__st_field_text(const char *s, size_t n, const char *key, size_t key_len,
                               fti_buf *out);

/* Members whose object (or first object with text, in an array of at most four) holds a record. */
static const char fti__st_json_wrappers[] = "tweet,object,data,node,status,note,comment";

/* The non-empty string member of an object holding a field's text: WordPress's "rendered". */
static const fti_json *fti__st_json_sub(const fti_json *v) {
    static const char *const keys[] = {"rendered", "html", "text"};
    size_t i;
    for (i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const fti_json *c = fti_json_get(v, keys[i]);
        if (c && c->type == FTI_JSON_STRING && c->len) return c;
    }
    return NULL;
}

/* Does field value v hold text: a non-empty string, an object with a "rendered", "html" or
 * "text" string, an array with a non-empty string or object "text" (Telegram's runs)? */
static int fti__st_json_has_text(const fti_json *v) {
    const fti_json *c, *t;
    if (v->type == FTI_JSON_STRING) return v->len > 0;
    if (v->type == FTI_JSON_OBJECT) return fti__st_json_sub(v) != NULL;
    if (v->type != FTI_JSON_ARRAY) return 0;
    for (c = v->child; c; c = c->next) {
        if (c->type == FTI_JSON_STRING && c->len) return 1;
        if (c->type == FTI_JSON_OBJECT && (t = fti_json_get(c, "text")) &&
            t->type == FTI_JSON_STRING && t->len)
            return 1;
    }
    return 0;
}

/* The member of obj whose key comes first in list and which has a value: for text fields one
 * that holds text (fti__st_json_has_text), else a non-empty string, a number or an object. */
static const fti_json *fti__st_json_field(const fti_json *obj, const char *list, int text) {
    const fti_json *best = NULL, *c;
    int best_pos = 1 << 30;
    if (obj->type != FTI_JSON_OBJECT) return NULL;
    for (c = obj->child; c; c = c->next) {
        int pos;
        if (!c->key) continue;
        pos = fti__st_list_pos(list, c->key, c->key_len);
        if (pos < 0 || pos >= best_pos) continue;
        if (text ? !fti__st_json_has_text(c)
                 : (c->type == FTI_JSON_STRING && c->len == 0) || c->type == FTI_JSON_NULL ||
                       c->type == FTI_JSON_TRUE || c->type == FTI_JSON_FALSE ||
                       (c->type == FTI_JSON_ARRAY &&
                        (!c->child || (c->child->type != FTI_JSON_STRING &&
                                       c->child->type != FTI_JSON_OBJECT))))
            continue;
        best = c;
        best_pos = pos;
    }
    return best;
}

/* The text of an Instagram record without a text field, or NULL: a post's caption is its
 * "title" (on the post, or on its first medium: {"media": [{"uri", "title", ...}]}), a comment
 * is string_map_data's {"Comment": {"value": ...}, "Time": {"timestamp": ...}}. A lone medium
 * ({"uri", "title"}) is a post only when its uri is Instagram's ("media/...") and it has no
 * "description": Facebook's album photos ({"uri": "photos_and_videos/...", "title": the album's
 * name, "description"}) are no captions. Sets r->n: when the text sits in an inner object, that
 * object is r->obj[depth + 1] (its date is found there). */
static const fti_json *fti__st_json_caption(const fti_json *obj, fti__st_jrec *r, int depth) {
    const fti_json *t = fti_json_get(obj, "title"), *m = fti_json_get(obj, "media");
    const fti_json *u = fti_json_get(obj, "uri"), *smd = fti_json_get(obj, "string_map_data");
    int lone = u && u->type == FTI_JSON_STRING && u->len > 6 && memcmp(u->str, "media/", 6) == 0 &&
               !fti_json_get(obj, "description");
    r->n = depth + 1;
    if ((m && m->type == FTI_JSON_ARRAY) || lone) {
        if (t && t->type == FTI_JSON_STRING && t->len) return t;
        if (m && m->type == FTI_JSON_ARRAY && m->child && m->child->type == FTI_JSON_OBJECT &&
            depth + 1 < FTI__ST_JREC_MAX && (t = fti_json_get(m->child, "title")) &&
            t->type == FTI_JSON_STRING && t->len) {
            r->obj[depth + 1] = m->child;
            r->n = depth + 2;
            return t;
        }
    }
    if (smd && smd->type == FTI_JSON_OBJECT && depth + 1 < FTI__ST_JREC_MAX) {
        const fti_json *c = fti_json_get(smd, "Comment"), *v, *time = fti_json_get(smd, "Time");
        if (!c) c = fti_json_get(smd, "Caption");
        if (!c || c->type != FTI_JSON_OBJECT || !(v = fti_json_get(c, "value")) ||
            v->type != FTI_JSON_STRING || !v->len)
            return NULL;
        r->obj[depth + 1] = time && time->type == FTI_JSON_OBJECT ? time : c;
        r->n = depth + 2;
        return v;
    }
    return NULL;
}

/* Finds the record in obj (depth: obj's place in r->obj); wrappers are followed when wrap. */
static int fti__st_json_find_in(const fti_ingest_opts *opt, const fti_json *obj, fti__st_jrec *r,
                                int depth, int wrap) {
    const fti_json *c, *e;
    if (obj->type != FTI_JSON_OBJECT || depth >= FTI__ST_JREC_MAX) return 0;
    r->obj[depth] = obj;
    if ((r->text = fti__st_json_field(obj, opt->text_fields, 1)) != NULL) {
        r->n = depth + 1;
        return 1;
    }
    if ((r->text = fti__st_json_caption(obj, r, depth)) != NULL) return 1;
    if (!wrap) return 0;
    for (c = obj->child; c; c = c->next) {
        if (!c->key || fti__st_list_pos(fti__st_json_wrappers, c->key, c->key_len) < 0) continue;
        if (c->type == FTI_JSON_OBJECT && fti__st_json_find_in(opt, c, r, depth + 1, 1)) return 1;
        if (c->type == FTI_JSON_ARRAY && c->len <= 4)
            for (e = c->child; e; e = e->next)
                if (fti__st_json_find_in(opt, e, r, depth + 1, 1)) return 1;
    }
    return 0;
}

/* Facebook's exports escape every byte of UTF-8 text as a code point U+0000..U+00FF ("cafÃ©"
 * for "café"). If s holds only such code points, at least one above U+007F, and their bytes form
 * valid UTF-8, out gets those bytes and 1 is returned; else 0 (s is used as it is). */
static int fti__st_unmojibake(const char *s, size_t n, fti_buf *out) {
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, start = out->len;
    int high = 0;
    for (i = 0; i < n; i++)
        if (u[i] >= 0x80) break;
    if (i == n) return 0;
    for (i = 0; i < n;) {
        uint32_t cp;
        int ok;
        size_t k = fti_utf8_decode(u + i, n - i, &cp, &ok);
        if (!ok || cp > 0xFF) {
            out->len = start;
            return 0;
        }
        high |= cp >= 0x80;
        fti_buf_putc(out, (char)cp);
        i += k;
    }
    if (!high || out->oom ||
        fti_utf8_valid_prefix((const unsigned char *)out->data + start, out->len - start) !=
            out->len - start) {
        out->len = start;
        return 0;
    }
    return 1;
}

/* Days from 1970-01-01 to the civil date y-mo-d (proleptic Gregorian; y >= 0). */
static double fti__st_days_from_civil(int y, int mo, int d) {
    int yy = mo <= 2 ? y - 1 : y, era = yy / 400, yoe = yy - era * 400;
    int doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return (double)era * 146097 + doe - 719468;
}

/* The days in month mo (1..12) of year y (proleptic Gregorian leap years); 0 for no month. */
static int fti__st_month_days(int y, int mo) {
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (mo < 1 || mo > 12) return 0;
    if (mo == 2 && y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)) return 29;
    return days[mo - 1];
}

/* The number in the k decimal digits at s, or -1. */
static int fti__st_num(const char *s, size_t k) {
    int v = 0;
    size_t i;
    for (i = 0; i < k; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* A file name's leading date: "YYYY-MM-DD" or "YYYY_MM_DD" (a real day, year 1900 or later),
 * then the end of the name or a blank, '_', '-' or '.'. Its length (10) and the date as
 * "YYYY-MM-DD" in out; 0 when the name does not start with one. */
static size_t fti__st_name_date(const char *s, size_t n, char out[32]) {
    int y, mo, d;
    if (n < 10 || (s[4] != '-' && s[4] != '_') || s[7] != s[4]) return 0;
    if (n > 10 && s[10] != ' ' && s[10] != '_' && s[10] != '-' && s[10] != '.') return 0;
    y = fti__st_num(s, 4), mo = fti__st_num(s + 5, 2), d = fti__st_num(s + 8, 2);
    if (y < 1900 || mo < 1 || mo > 12 || d < 1 || d > 31 || d > fti__st_month_days(y, mo))
        return 0; /* (mo and d bounded outright for gcc's format-truncation check) */
    snprintf(out, 32, "%04d-%02d-%02d", y, mo, d);
    return 10;
}

/* Title from a file name, as a reader would write it: the base name without its extension,
 * a leading date (fti__st_name_date: the document's date, fti__st_date_from_path) left out,
 * underscores as blanks, and dashes too when the name has no blank ("walking-to-work": a
 * slug; "Jean-Paul on work" keeps its dash), blanks collapsed. "2024-05-01 walking to
 * work.txt" and "walking_to_work.txt" are "walking to work" (they were the name as it is,
 * until processing format 14); a name that is only a date keeps it. */
static char *fti__st_title_from_path(const char *path) {
    const char *b = fti_path_base(path), *dot = strrchr(b, '.');
    size_t n = dot && dot != b ? (size_t)(dot - b) : strlen(b), k, i;
    char date[32], *r;
    int slug;
    fti_buf t;
    k = fti__st_name_date(b, n, date);
    while (k && k < n && (b[k] == ' ' || b[k] == '_' || b[k] == '-' || b[k] == '.')) k++;
    if (k && k >= n) return fti__st_meta_str(b, n, 200); /* only a date: the name */
    slug = !memchr(b + k, ' ', n - k);
    memset(&t, 0, sizeof t);
    for (i = k; i < n; i++)
        fti_buf_putc(&t, b[i] == '_' || (slug && b[i] == '-') ? ' ' : b[i]);
    if (t.oom) {
        fti_buf_free(&t);
        return NULL;
    }
    r = fti__st_meta_str(t.data, t.len, 200); /* (blanks collapsed, trimmed) */
    fti_buf_free(&t);
    return r;
}

/* A date that opens the file name (fti__st_name_date), as a new string, or NULL. */
static char *fti__st_date_from_path(const char *path) {
    const char *b = fti_path_base(path);
    char date[32];
    return fti__st_name_date(b, strlen(b), date) ? fti_strdup(date) : NULL;
}

/* The month named by the n letters at s (English: "March", "Mar", "Sept"), 1..12, or 0. */
static int fti__st_month_word(const char *s, size_t n) {
    static const char *const names[12] = {"january", "february", "march",     "april",
                                          "may",     "june",     "july",      "august",
                                          "september", "october", "november", "december"};
    int m;
    if (n < 3) return 0;
    for (m = 0; m < 12; m++) {
        size_t k = 0;
        while (k < n && names[m][k] && fti__st_lc((unsigned char)s[k]) == names[m][k]) k++;
        if (k == n && (n == 3 || !names[m][k] || (m == 8 && n == 4))) return m + 1;
    }
    return 0;
}

/* Is s[0..n) an English weekday's name, whole ("Monday") or short ("Mon", "Tues", "Thurs"),
 * any case? Not a word that only starts like one ("Monkey", "Sunny"). */
static int fti__st_weekday(const char *s, size_t n) {
    static const char *const names[] = {"monday", "tuesday",  "wednesday", "thursday",
                                        "friday", "saturday", "sunday",    "tues",
                                        "weds",   "thur",     "thurs"};
    size_t k;
    char w3[4];
    if (n == 3) {
        for (k = 0; k < 3; k++) w3[k] = (char)fti__st_lc((unsigned char)s[k]);
        w3[3] = 0;
        for (k = 0; k < 7; k++)
            if (memcmp(names[k], w3, 3) == 0) return 1;
        return 0;
    }
    for (k = 0; k < sizeof names / sizeof names[0]; k++)
        if (fti__st_eq_ci(s, n, names[k])) return 1;
    return 0;
}

/* Does s[0..n) start with "am", "pm", "a.m." or "p.m." as a whole word? */
static int fti__st_ampm_at(const char *s, size_t n) {
    size_t k = (fti__st_starts_ci(s, n, "a.m.") || fti__st_starts_ci(s, n, "p.m.")) ? 4
               : (fti__st_starts_ci(s, n, "am") || fti__st_starts_ci(s, n, "pm"))   ? 2
                                                                                    : 0;
    return k && (k == n || !fti__st_is_alpha((unsigned char)s[k]));
}

/* A date in words ("March 3, 2020", "3 March 2020", "Tue, Mar 3 2020 at 10:15 PM", "March 3rd,
 * 2020 10:15:30 UTC"; a weekday may open it; "10:15PM" too) as fti__st_norm_date's forms:
 * "2020-03-03", or the time too (local, or UTC when a zone follows). Returns 0 for anything
 * else, an impossible day ("February 30, 2021") included. Blanks are ASCII: fti__st_norm_date
 * turns no-break spaces into them first. */
static int fti__st_words_date(const char *s, size_t n, char out[32]) {
    int mo = 0, d = -1, y = -1, hh = -1, mi = 0, ss = 0, words = 0;
    size_t i = 0, zone = n;
    char tmp[64];
    while (i < n && zone == n) {
        size_t j = i;
        if (s[i] == ' ' || s[i] == ',') {
            i++;
            continue;
        }
        if (fti__st_is_alpha(s[i])) {
            int m, ampm = fti__st_starts_ci(s + i, n - i, "a.m.") ||
                          fti__st_starts_ci(s + i, n - i, "p.m.");
            if (ampm) j = i + 4;
            while (j < n && fti__st_is_alpha(s[j])) j++;
            if (j < n && s[j] == '.') j++; /* "Mar." */
            m = ampm ? 0 : fti__st_month_word(s + i, j - i - (s[j - 1] == '.'));
            if (m && !mo) {
                mo = m;
            } else if (hh >= 0 && (ampm || fti__st_eq_ci(s + i, j - i, "am") ||
                                   fti__st_eq_ci(s + i, j - i, "pm"))) {
                if (hh < 1 || hh > 12) return 0;
                hh = hh % 12 + ((s[i] | 0x20) == 'p' ? 12 : 0);
            } else if (hh >= 0 && y >= 0) {
                zone = i; /* "UTC", "GMT", "Z": fti__st_norm_date judges */
            } else if (words++ == 0 && !mo && d < 0) { /* a weekday, a whole word */
                if (!fti__st_weekday(s + i, j - i - (s[j - 1] == '.'))) return 0;
            } else if (!fti__st_eq_ci(s + i, j - i, "at") && !fti__st_eq_ci(s + i, j - i, "of")) {
                return 0;
            }
        } else if (fti__st_is_digit(s[i])) {
            while (j < n && fti__st_is_digit(s[j])) j++;
            if (j < n && s[j] == ':') { /* a time */
                if (hh >= 0 || j - i > 2 || j + 3 > n) return 0;
                hh = fti__st_num(s + i, j - i);
                mi = fti__st_num(s + j + 1, 2);
                j += 3;
                if (j + 3 <= n && s[j] == ':') ss = fti__st_num(s + j + 1, 2), j += 3;
                if (mi < 0 || mi > 59 || ss < 0 || ss > 60) return 0;
                if (j < n && fti__st_ampm_at(s + j, n - j)) { /* "10:15PM": the next word */
                    i = j;
                    continue;
                }
            } else if (j - i == 4 && y < 0) {
                y = fti__st_num(s + i, 4);
            } else if (j - i <= 2 && d < 0 && y < 0) {
                d = fti__st_num(s + i, j - i);
                if (j + 2 <= n && (fti__st_starts_ci(s + j, n - j, "st") ||
                                   fti__st_starts_ci(s + j, n - j, "nd") ||
                                   fti__st_starts_ci(s + j, n - j, "rd") ||
                                   fti__st_starts_ci(s + j, n - j, "th")))
                    j += 2;
            } else {
                return 0;
            }
            if (j < n && s[j] != ' ' && s[j] != ',') return 0;
        } else if ((s[i] == '+' || s[i] == '-') && hh >= 0 && y >= 0) {
            zone = i;
        } else {
            return 0;
        }
        i = j;
    }
    if (!mo || y < 1900 || y > 9999 || d < 1 || d > 31 || d > fti__st_month_days(y, mo))
        return 0; /* (d > 31 too: the bound gcc's format-truncation check sees) */
    if (hh < 0) {
        snprintf(out, 32, "%04d-%02d-%02d", y, mo, d);
        return 1;
    }
    if (hh > 23 || n - zone > 20) return 0;
    snprintf(tmp, sizeof tmp, "%04d-%02d-%02dT%02d:%02d:%02d%s%.*s", y, mo, d, hh, mi, ss,
             zone < n ? " " : "", (int)(n - zone), s + zone);
    return fti__st_norm_date(tmp, strlen(tmp), out);
}

/* A date with slashes as spreadsheets and US exports write it ("3/14/2020", "14/3/2020",
 * "2020/03/14", a time after it as fti__st_words_date reads one: "3/14/2020 10:15 PM"): the day
 * is the number above 12, or either when the two are equal; an ambiguous one ("3/4/2020": March 4
 * in the US, 3 April elsewhere) returns 0, as does anything else. */
static int fti__st_slash_date(const char *s, size_t n, char out[32]) {
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    size_t i = 0, len[3], k;
    int v[3], mo, d, y;
    char tmp[96];
    for (k = 0; k < 3; k++) {
        size_t j = i;
        while (j < n && j - i < 5 && fti__st_is_digit(s[j])) j++;
        len[k] = j - i;
        if (!len[k] || len[k] > 4) return 0;
        v[k] = fti__st_num(s + i, len[k]);
        i = j;
        if (k < 2 && (i >= n || s[i++] != '/')) return 0;
    }
    if ((i < n && s[i] != ' ' && s[i] != ',') || n - i > 60) return 0;
    if (len[0] == 4 && len[1] <= 2 && len[2] <= 2) {
        y = v[0], mo = v[1], d = v[2];
    } else if (len[2] == 4 && len[0] <= 2 && len[1] <= 2) {
        y = v[2];
        if (v[0] > 12 && v[1] <= 12) d = v[0], mo = v[1];
        else if (v[1] > 12 && v[0] <= 12) mo = v[0], d = v[1];
        else if (v[0] == v[1]) mo = d = v[0];
        else return 0;
    } else {
        return 0;
    }
    if (mo < 1 || mo > 12 || d < 1 || d > 31) return 0;
    snprintf(tmp, sizeof tmp, "%d %.3s %d%.*s", d, months + 3 * (mo - 1), y, (int)(n - i),
             s + i);
    return fti__st_words_date(tmp, strlen(tmp), out);
}

/* A document's date in one form (fti__st_emit): "YYYY-MM-DD[T ]HH:MM[:SS[.fff]]" with a zone
 * ("Z", " UTC", "+01:00", "+0100", "-05") becomes UTC, "YYYY-MM-DDTHH:MM:SSZ" (so dates sort);
 * without a zone (a local time) "YYYY-MM-DDTHH:MM:SS"; "DD.MM.YYYY[ HH:MM[:SS]]" (European
 * spreadsheets) likewise; dates in words (fti__st_words_date) and with slashes
 * (fti__st_slash_date) too, a date alone as "YYYY-MM-DD".
 * No-break spaces (U+00A0, and U+202F that macOS puts before "PM") count as blanks. Returns 0
 * (the date stays as written) for anything else, an ISO date alone and an impossible day
 * ("2021-02-30T10:00Z", "April 31, 2020") included. */
static int fti__st_norm_date(const char *s, size_t n, char out[32]) {
    int y, mo, d, hh = 0, mi = 0, ss = 0, zone = 0, off = 0, time = 0;
    size_t i;
    if (n < 96 && (memchr(s, 0xC2, n) || memchr(s, 0xE2, n))) {
        char tmp[96];
        size_t k = 0, w = 0;
        while (k < n) {
            if (k + 1 < n && (unsigned char)s[k] == 0xC2 && (unsigned char)s[k + 1] == 0xA0) {
                tmp[w++] = ' ', k += 2;
            } else if (k + 2 < n && (unsigned char)s[k] == 0xE2 &&
                       (unsigned char)s[k + 1] == 0x80 && (unsigned char)s[k + 2] == 0xAF) {
                tmp[w++] = ' ', k += 3;
            } else {
                tmp[w++] = s[k++];
            }
        }
        if (w < n) return fti__st_norm_date(tmp, w, out); /* once: no NBSP is left */
    }
    if (n >= 10 && s[2] == '.' && s[5] == '.') { /* DD.MM.YYYY */
        d = fti__st_num(s, 2), mo = fti__st_num(s + 3, 2), y = fti__st_num(s + 6, 4);
        i = 10;
    } else if (n >= 10 && s[4] == '-' && s[7] == '-') {
        y = fti__st_num(s, 4), mo = fti__st_num(s + 5, 2), d = fti__st_num(s + 8, 2);
        i = 10;
        if (n == 10) return 0;
    } else {
        return fti__st_slash_date(s, n, out) || fti__st_words_date(s, n, out);
    }
    if (y < 1900 || mo < 1 || mo > 12 || d < 1 || d > 31 || d > fti__st_month_days(y, mo))
        return 0; /* (mo and d bounded outright for gcc's format-truncation check) */
    if (i < n) {
        if (i + 6 > n || (s[i] != 'T' && s[i] != ' ') || s[i + 3] != ':') return 0;
        hh = fti__st_num(s + i + 1, 2), mi = fti__st_num(s + i + 4, 2);
        i += 6;
        if (i + 3 <= n && s[i] == ':') ss = fti__st_num(s + i + 1, 2), i += 3;
        if (i < n && (s[i] == '.' || s[i] == ','))
            for (i++; i < n && s[i] >= '0' && s[i] <= '9';) i++;
        if (hh < 0 || hh > 23 || mi < 0 || mi > 59 || ss < 0 || ss > 60) return 0;
        time = 1;
    }
    if (i < n && s[i] == ' ' && i + 1 < n) i++;
    if (i < n) { /* the zone, up to the end: "Z", "UTC", "GMT", "+HH", "+HHMM", "+HH:MM" */
        zone = 1;
        if (s[i] == '+' || s[i] == '-') {
            int oh = n - i >= 3 ? fti__st_num(s + i + 1, 2) : -1, om = 0;
            size_t e = i + 3;
            if (e < n && s[e] == ':') e++;
            if (e + 2 == n) om = fti__st_num(s + e, 2), e += 2;
            if (e != n || oh < 0 || oh > 14 || om < 0 || om > 59) return 0;
            off = (s[i] == '-' ? -1 : 1) * (oh * 3600 + om * 60);
        } else if (!(n - i == 1 && s[i] == 'Z') &&
                   !(n - i == 3 && (memcmp(s + i, "UTC", 3) == 0 ||
                                    memcmp(s + i, "GMT", 3) == 0))) {
            return 0;
        }
    }
    if (!time && !zone)
        snprintf(out, 32, "%04d-%02d-%02d", y, mo, d);
    else if (zone)
        fti_time_iso8601(fti__st_days_from_civil(y, mo, d) * 86400.0 + hh * 3600 + mi * 60 + ss -
                             off,
                         out);
    else
        snprintf(out, 32, "%04d-%02d-%02dT%02d:%02d:%02d", y, mo, d, hh, mi, ss);
    return 1;
}

/* Twitter's dates, "Wed Oct 10 20:19:24 +0000 2018", as ISO 8601 UTC; 0 if s is not one. */
static int fti__st_twitter_date(const char *s, size_t n, char out[32]) {
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    int mo = -1, d, hh, mm, ss, y, oh, om, i;
    char sign;
    double days;
    if (n != 30 || s[3] != ' ' || s[7] != ' ' || s[19] != ' ' || s[25] != ' ') return 0;
    for (i = 0; i < 12; i++)
        if (memcmp(s + 4, months + 3 * i, 3) == 0) mo = i + 1;
    for (i = 8; i < 30; i++)
        if (i != 10 && i != 13 && i != 16 && i != 19 && i != 20 && i != 25 &&
            (s[i] < '0' || s[i] > '9'))
            return 0;
    sign = s[20];
    if (mo < 0 || s[10] != ' ' || s[13] != ':' || s[16] != ':' || (sign != '+' && sign != '-'))
        return 0;
    d = (s[8] - '0') * 10 + s[9] - '0';
    hh = (s[11] - '0') * 10 + s[12] - '0';
    mm = (s[14] - '0') * 10 + s[15] - '0';
    ss = (s[17] - '0') * 10 + s[18] - '0';
    oh = (s[21] - '0') * 10 + s[22] - '0';
    om = (s[23] - '0') * 10 + s[24] - '0';
    y = ((s[26] - '0') * 10 + s[27] - '0') * 100 + (s[28] - '0') * 10 + s[29] - '0';
    if (d < 1 || d > fti__st_month_days(y, mo) || hh > 23 || mm > 59 || ss > 60 || y < 1970)
        return 0;
    days = fti__st_days_from_civil(y, mo, d);
    fti_time_iso8601(days * 86400.0 + hh * 3600 + mm * 60 + ss -
                         (sign == '-' ? -1 : 1) * (oh * 3600 + om * 60),
                     out);
    return 1;
}

/* A Unix time in seconds, milliseconds (Facebook's timestamp_ms) or microseconds (Google Keep),
 * told apart by size, as a new ISO 8601 UTC string. */
static char *fti__st_epoch_iso(double t) {
    char out[32];
    fti_time_iso8601(t > 1e14 ? t / 1e6 : t > 1e11 ? t / 1000.0 : t, out);
    return fti_strdup(out);
}

/* A metadata field of the record (innermost object first), as a new string; dates: numbers
 * (seconds or milliseconds) and Twitter's format become ISO 8601. NULL if none. */
static char *fti__st_json_meta(const fti__st_jrec *r, const char *list, int is_date) {
    const fti_json *v = NULL;
    char tmp[64];
    int i;
    for (i = r->n - 1; i >= 0 && !v; i--) v = fti__st_json_field(r->obj[i], list, 0);
    if (!v) return NULL;
    if (v->type == FTI_JSON_ARRAY) v = v->child; /* JSON Feed's "authors": [{"name": ...}] */
    if (v->type == FTI_JSON_OBJECT) { /* {"name": ...} as authors often are; {"rendered": ...} */
        const fti_json *s = fti_json_get(v, "name");
        if (!s || s->type != FTI_JSON_STRING) s = fti_json_get(v, "username");
        if (!s || s->type != FTI_JSON_STRING) s = fti__st_json_sub(v);
        if (!s || s->type != FTI_JSON_STRING) return NULL;
        v = s;
    }
    if (v->type == FTI_JSON_STRING) {
        fti_buf fix, dec;
        char *out;
        memset(&fix, 0, sizeof fix);
        memset(&dec, 0, sizeof dec);
        if (is_date && fti__st_twitter_date(v->str, v->len, tmp)) return fti_strdup(tmp);
        if (is_date && v->len >= 9 && v->len < 24) { /* Slack's "1600000000.000200" */
            size_t k = 0;
            double secs;
            while (k < v->len && v->str[k] >= '0' && v->str[k] <= '9') k++;
            if (k < v->len && v->str[k] == '.')
                for (k++; k < v->len && v->str[k] >= '0' && v->str[k] <= '9';) k++;
            memcpy(tmp, v->str, v->len);
            tmp[v->len] = 0;
            secs = strtod(tmp, NULL);
            if (k == v->len && v->str[0] != '.' && secs >= 1e8 && secs < 1e17)
                return fti__st_epoch_iso(secs);
        }
        if (fti__st_unmojibake(v->str, v->len, &fix))
            fti__st_field_text(fix.data, fix.len, "html", 4, &dec);
        else /* entities and tags too: WordPress's "title": {"rendered": "A &#8211; B"} */
            fti__st_field_text(v->str, v->len, "html", 4, &dec);
        out = fti__st_meta_str(dec.data ? dec.data : "", dec.len, 200);
        fti_buf_free(&fix);
        fti_buf_free(&dec);
        if (out && !is_date && out[0] == 't' && out[1] >= '0' && out[1] <= '9' &&
            (!out[2] || out[2] == '_')) { /* Reddit's kinds and ids: t1, t3_abc */
            fti_free(out);
            out = NULL;
        }
        return out;
    }
    if (v->type == FTI_JSON_NUMBER && is_date && v->num > 0 && v->num < 1e17)
        return fti__st_epoch_iso(v->num);
    return NULL; /* a number is no title or author (WordPress's "author": 1) */
}

/* Fields that exports fill with HTML (Mastodon's content, WordPress's rendered, Ghost's html,
 * JSON Feed's content_html, blog CSVs' body): only their text is read as HTML. Elsewhere ("<br>"
 * in a Telegram message, "a<b && c>d" in a Slack snippet) a tag is text. */
static const char fti__st_html_fields[] =
    "content,html,content_html,rendered,body,body_html,description,contentMap";

/* Chat markup in b[from..] rewritten in place as a reader sees it: Slack's <@U123>, <!here>,
 * <#C1|design> (#design), <https://x|label> (label), <https://x> (the URL) and :emoji: codes,
 * Discord's <@123>, <#123>, <:name:123> and <a:name:123>. Mentions and emoji go. */
static void fti__st_unchat(fti_buf *b, size_t from) {
    char *s = b->data;
    size_t n = b->len, i = from, w = from;
    if (!s) return;
    while (i < n) {
        char c = s[i];
        if (c == '<' && i + 2 < n &&
            (s[i + 1] == '@' || s[i + 1] == '#' || s[i + 1] == '!' || s[i + 1] == ':' ||
             (s[i + 1] == 'a' && s[i + 2] == ':') || fti__st_starts_ci(s + i + 1, n - i - 1,
                                                                       "http") ||
             fti__st_starts_ci(s + i + 1, n - i - 1, "mailto:"))) {
            size_t e = i + 1, bar = 0, lim = i + 2048 < n ? i + 2048 : n;
            while (e < lim && s[e] != '>' && s[e] != '<' && s[e] != '\n' &&
                   (bar || s[e] != ' '))
                if (s[e++] == '|' && !bar) bar = e;
            if (e < lim && s[e] == '>' && e > i + 2) {
                char k = s[i + 1];
                if (bar) { /* the label */
                    if (k == '#') s[w++] = '#';
                    memmove(s + w, s + bar, e - bar);
                    w += e - bar;
                } else if (k != '@' && k != '#' && k != '!' && k != ':' && k != 'a') {
                    memmove(s + w, s + i + 1, e - i - 1); /* a bare link: the URL */
                    w += e - i - 1;
                } /* else a mention, a channel or a custom emoji: nothing */
                i = e + 1;
                continue;
            }
        }
        if (c == ':' && (i == from || s[i - 1] == ' ' || s[i - 1] == '\n')) { /* :tada: */
            size_t e = i + 1;
            int letter = 0;
            while (e < n && e < i + 42 &&
                   ((s[e] >= 'a' && s[e] <= 'z') || (s[e] >= '0' && s[e] <= '9') || s[e] == '_' ||
                    s[e] == '+' || s[e] == '-'))
                letter |= s[e] >= 'a' && s[e] <= 'z', e++;
            if (letter && e < n && s[e] == ':' && e > i + 1 &&
                (e + 1 == n || s[e + 1] == ' ' || s[e + 1] == '\n' || s[e + 1] == '.' ||
                 s[e + 1] == ',' || s[e + 1] == '!' || s[e + 1] == '?' || s[e + 1] == ':')) {
                i = e + 1;
                continue;
            }
        }
        s[w++] = c;
        i++;
    }
    b->len = w;
}

/* Lines of b[from..] quoting someone else ("> ..." in Reddit's and forums' Markdown) removed in
 * place, unless every line is one (then it is the text). */
static void fti__st_unquote(fti_buf *b, size_t from) {
    char *s = b->data;
    size_t n = b->len, i, w, quoted = 0, lines = 0;
    for (i = from; i < n;) {
        const char *e = (const char *)memchr(s + i, '\n', n - i);
        size_t end = e ? (size_t)(e - s) : n, k = i;
        while (k < end && k < i + 3 && s[k] == ' ') k++;
        if (end > i) lines++, quoted += k < end && s[k] == '>';
        i = end + 1;
    }
    if (!quoted || quoted == lines) return;
    for (i = w = from; i < n;) {
        const char *e = (const char *)memchr(s + i, '\n', n - i);
        size_t end = e ? (size_t)(e - s) + 1 : n, k = i;
        while (k < end && k < i + 3 && s[k] == ' ') k++;
        if (!(k < end && s[k] == '>')) {
            memmove(s + w, s + i, end - i);
            w += end - i;
        }
        i = end;
    }
    b->len = w;
}

/* The text of a JSON or CSV field (named key, key_len) as exports write it, appended to out:
 * HTML in a field that holds HTML (fti__st_html_fields; a start or end tag of a common element)
 * becomes text; other fields get their character references decoded (Twitter and Reddit escape
 * & < > as &amp; &lt; &gt;), chat markup rewritten (fti__st_unchat) and quoted lines removed. */
/* The offset of the next "<blockquote" or "</blockquote" tag in s[from..n) (*close set for the
 * latter), or n. */
static size_t fti__st_next_bq(const char *s, size_t n, size_t from, int *close) {
    size_t i;
    for (i = from; i + 11 < n; i++) {
        size_t a = i + 1 + (s[i + 1] == '/');
        if (s[i] == '<' && a + 10 < n && fti__st_starts_ci(s + a, n - a, "blockquote") &&
            (s[a + 10] == '>' || s[a + 10] == ' ' || s[a + 10] == '\n')) {
            *close = a > i + 1;
            return i;
        }
    }
    return n;
}

/* The text of an HTML field as the author wrote it: the quotes it holds (<blockquote>, with
 * their <cite>: WordPress's and Mastodon's way to quote someone) are left out, unless nothing
 * else is there. */
static void fti__st_html_own(const char *s, size_t n, fti_buf *out) {
    fti_buf own;
    size_t i = 0, from = out->len, k;
    int depth = 0, close = 0, any = 0;
    memset(&own, 0, sizeof own);
    while (i < n) {
        size_t at = fti__st_next_bq(s, n, i, &close), end;
        if (depth == 0) fti_buf_append(&own, s + i, at - i);
        if (at == n) break;
        end = at + fti__st_tag_end(s + at, n - at);
        if (close && depth > 0) depth--;
        else if (!close) depth++, any = 1;
        if (depth == 0 && close) fti_buf_putc(&own, ' ');
        i = end;
    }
    if (any && !own.oom) {
        fti_html_to_text(own.data ? own.data : "", own.len, out, NULL);
        for (k = from; k < out->len && ((unsigned char)out->data[k] <= ' '); k++) {}
        if (k < out->len || out->oom) {
            fti_buf_free(&own);
            return;
        }
        out->len = from; /* only a quote: it is kept */
    }
    fti_buf_free(&own);
    fti_html_to_text(s, n, out, NULL);
}

static void fti__st_field_text(const char *s, size_t n, const char *key, size_t key_len,
                               fti_buf *out) {
    static const char *const tags[] = {"p",  "br", "div",  "span", "a",   "em",  "strong", "b",
                                       "i",  "ul", "ol",   "li",   "h1",  "h2",  "h3",     "h4",
                                       "blockquote", "pre", "code", "img", "hr", "figure", "u"};
    const char *lt = (const char *)memchr(s, '<', n);
    size_t i, t, from = out->len;
    if (lt && key && fti__st_list_pos(fti__st_html_fields, key, key_len) >= 0) {
        for (i = (size_t)(lt - s); i + 2 < n; i++) {
            size_t a = i + 1 + (s[i + 1] == '/');
            if (s[i] != '<') continue;
            for (t = 0; t < sizeof tags / sizeof tags[0]; t++) {
                size_t tl = strlen(tags[t]);
                if (a + tl < n && fti__st_starts_ci(s + a, n - a, tags[t]) &&
                    (s[a + tl] == '>' || s[a + tl] == ' ' || s[a + tl] == '/')) {
                    fti__st_html_own(s, n, out);
                    return;
                }
            }
        }
    }
    for (i = 0; i < n;) {
        uint32_t cp;
        size_t m = s[i] == '&' ? fti__st_html_entity(s + i, n - i, &cp) : 0, j;
        if (m) {
            fti__st_put_cp(out, cp);
            i += m;
            continue;
        }
        j = i + 1;
        while (j < n && s[j] != '&') j++;
        fti_buf_append(out, s + i, j - i);
        i = j;
    }
    if (out->oom) return;
    fti__st_unchat(out, from);
    fti__st_unquote(out, from);
}

/* A byte of a name or handle: ASCII letters and digits, '_', and every byte of a non-ASCII
 * character. */
static int fti__st_name_char(unsigned char c) {
    return fti__st_is_alnum(c) || c == '_' || c >= 0x80;
}

/* Is the author a (n bytes; NULL: unknown) one of the authors to keep (fti_ingest_opts.authors)?
 * Each listed name matches as whole words, any case of ASCII and Latin letters ("Ann" matches
 * "Ann Lee" and "ann@example.com", not "Joanna"; "åsa" matches "Åsa Berg"). Unknown authors and
 * an empty list pass. */
static int fti__st_name_in(const char *q, size_t m, const char *a, size_t n) {
    int wb, we;
    size_t i;
    if (m == 0) return 0;
    wb = fti__st_name_char((unsigned char)q[0]);
    we = fti__st_name_char((unsigned char)q[m - 1]);
    for (i = 0; i + m <= n; i++) {
        if (wb && i > 0 && fti__st_name_char((unsigned char)a[i - 1])) continue;
        if (we && i + m < n && fti__st_name_char((unsigned char)a[i + m])) continue;
        if (fti__st_starts_fold(a + i, n - i, q, m)) return 1;
    }
    return 0;
}

static int fti__st_names_match(const char *p, const char *a, size_t n) {
    int any = 0;
    if (!p || !a) return 1;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t m = e ? (size_t)(e - p) : strlen(p);
        const char *q = p;
        fti__st_trim(&q, &m);
        if (m == 1 && q[0] == '*') return 1; /* "*": everyone */
        if (m) {
            any = 1;
            if (fti__st_name_in(q, m, a, n)) return 1;
        }
        if (!e) break;
        p = e + 1;
    }
    return !any;
}

static int fti__st_author_kept(const fti_ingest_opts *opt, const char *a, size_t n) {
    return fti__st_names_match(opt->authors, a, n);
}

/* Is --authors a list that leaves someone out (given, not empty, no "*")? Such a list keeps
 * no one by the empty name. */
static int fti__st_authors_given(const fti_ingest_opts *opt) {
    return !fti__st_names_match(opt->authors, "", 0);
}


/* The text of field value v (fti__st_json_has_text) into out: a string, an object's "rendered"
 * (or "html", "text") string, or an array's runs joined. */
static void fti__st_json_text(const fti_json *v, fti_buf *out) {
    const fti_json *c, *t;
    if (v->type == FTI_JSON_STRING) {
        fti_buf_append(out, v->str, v->len);
    } else if (v->type == FTI_JSON_OBJECT) {
        if ((t = fti__st_json_sub(v)) != NULL) fti_buf_append(out, t->str, t->len);
    } else if (v->type == FTI_JSON_ARRAY) {
        /* Keep's checklist items are lines; Telegram's runs are parts of one line */
        int lines = v->key && v->key_len == 11 && memcmp(v->key, "listContent", 11) == 0;
        for (c = v->child; c; c = c->next) {
            if (c->type == FTI_JSON_STRING)
                fti_buf_append(out, c->str, c->len);
            else if (c->type == FTI_JSON_OBJECT && (t = fti_json_get(c, "text")) &&
                     t->type == FTI_JSON_STRING)
                fti_buf_append(out, t->str, t->len);
            else
                continue;
            if (lines && c->next) fti_buf_putc(out, '\n');
        }
    }
}

static int fti__st_is_word(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* Where the short link at s (n bytes, "https://t.co/...") points according to the tweet's
 * entities: *to and *to_len the expanded URL; returns 1 if found, 2 if it is the link of
 * attached media (dropped), 0 if unknown. */
static int fti__st_tweet_link(const fti_json *tw, const char *s, size_t n, const char **to,
                              size_t *to_len) {
    static const char *const where[][2] = {{"entities", "urls"},
                                           {"entities", "media"},
                                           {"extended_entities", "media"}};
    size_t w;
    for (w = 0; w < sizeof where / sizeof where[0]; w++) {
        const fti_json *ents = fti_json_get(tw, where[w][0]), *list, *e;
        size_t k = 0;
        if (!ents || !(list = fti_json_get(ents, where[w][1])) || list->type != FTI_JSON_ARRAY)
            continue;
        /* a tweet has a handful of links: a hostile file's thousands are not all searched */
        for (e = list->child; e && k < 256; e = e->next, k++) {
            const fti_json *u = fti_json_get(e, "url"), *x = fti_json_get(e, "expanded_url");
            if (!u || u->type != FTI_JSON_STRING || u->len != n || memcmp(u->str, s, n) != 0)
                continue;
            if (w > 0) return 2;
            if (!x || x->type != FTI_JSON_STRING || !x->len) return 0;
            *to = x->str;
            *to_len = x->len;
            return 1;
        }
    }
    return 0;
}

/* Where a reply's text starts after the "@name" (Twitter) or "@name@server" (Mastodon)
 * mentions that open it; 0 if it is only mentions (then it is judged as it is). */
static size_t fti__st_after_mentions(const char *s, size_t n) {
    size_t i, j = 0;
    for (;;) {
        size_t k = j;
        while (k < n && (s[k] == ' ' || s[k] == '\n')) k++;
        if (k >= n || s[k] != '@') break;
        k++;
        while (k < n && (fti__st_is_word((unsigned char)s[k]) || s[k] == '@' || s[k] == '.' ||
                         s[k] == '-'))
            k++;
        while (k > j + 1 && s[k - 1] == '.') k--; /* "@bob." ends a sentence */
        if (k < n && s[k] != ' ' && s[k] != '\n') break;
        j = k;
    }
    for (i = j; i < n && (s[i] == ' ' || s[i] == '\n');) i++;
    return i == n ? 0 : i;
}

/* Is record r a reply (Twitter's in_reply_to_screen_name, Mastodon's inReplyTo)? */
static int fti__st_json_is_reply(const fti__st_jrec *r) {
    static const char *const keys[] = {"in_reply_to_screen_name", "inReplyTo"};
    int i;
    size_t k;
    for (i = r->n - 1; i >= 0; i--)
        for (k = 0; k < sizeof keys / sizeof keys[0]; k++) {
            const fti_json *v = fti_json_get(r->obj[i], keys[k]);
            if (v && v->type != FTI_JSON_NULL) return 1;
        }
    return 0;
}

/* A tweet's text (Twitter's archive: "full_text") as the author wrote it: short links become the
 * links they stand for, links to attached media go. */
static void fti__st_tweet_text(const fti_json *tw, const char *s, size_t n, fti_buf *out) {
    size_t i = 0;
    while (i < n) {
        size_t at = fti__st_find_ci(s + i, n - i, "://t.co/"), a, e, to_len = 0;
        const char *to = NULL;
        int kind;
        if (at >= n - i) break;
        a = i + at;
        e = a + 8;
        while (a > i && fti__st_is_word((unsigned char)s[a - 1])) a--; /* "https" */
        while (e < n && fti__st_is_word((unsigned char)s[e])) e++;
        kind = fti__st_tweet_link(tw, s + a, e - a, &to, &to_len);
        if (kind == 0) {
            fti_buf_append(out, s + i, e - i);
        } else {
            size_t keep = a;
            if (kind == 2)
                while (keep > i && s[keep - 1] == ' ') keep--;
            fti_buf_append(out, s + i, keep - i);
            if (kind == 1) fti_buf_append(out, to, to_len);
        }
        i = e;
    }
    if (i < n) fti_buf_append(out, s + i, n - i);
}

/* Why record r is not the owner's writing though it has text, as "r reason" (a reshare), "d
 * reason" (deleted) or "s reason" (a system message); NULL if it is. */
static const char *fti__st_json_not_own(const fti__st_jrec *r) {
    static const char *const system[] = {
        "channel_join", "channel_leave", "channel_topic", "channel_purpose", "channel_name",
        "channel_archive", "group_join", "group_leave", "bot_message", "bot_add", "bot_remove",
        "pinned_item", "tombstone", "reminder_add"};
    int i;
    size_t k;
    for (i = r->n - 1; i >= 0; i--) {
        const fti_json *o = r->obj[i], *v;
        if ((v = fti_json_get(o, "forwarded_from")) && v->type != FTI_JSON_NULL)
            return "r a forwarded message: someone else's text";
        if ((v = fti_json_get(o, "isTrashed")) && v->type == FTI_JSON_TRUE)
            return "d a note in the trash";
        if ((v = fti_json_get(o, "subtype")) && v->type == FTI_JSON_STRING) /* Slack */
            for (k = 0; k < sizeof system / sizeof system[0]; k++)
                if (v->len == strlen(system[k]) && memcmp(v->str, system[k], v->len) == 0)
                    return strcmp(system[k], "bot_message") == 0
                               ? "s a bot's message"
                               : "s a channel event, not a message";
    }
    return NULL;
}

/* Is s[0..n) one or more emoji (pictographs, symbols, their variation selectors, skin tones
 * and joiners), blanks between them allowed? */
static int fti__st_only_emoji(const char *s, size_t n) {
    size_t i = 0;
    int any = 0;
    while (i < n) {
        uint32_t cp = 0;
        int ok = 0;
        size_t k = fti_utf8_decode((const unsigned char *)s + i, n - i, &cp, &ok);
        if (!ok || k == 0) return 0;
        i += k;
        if (cp == ' ') continue;
        if (!((cp >= 0x2190 && cp <= 0x2BFF) || (cp >= 0x1F000 && cp <= 0x1FAFF) ||
              cp == 0xFE0F || cp == 0x200D || cp == 0x20E3 || cp == 0x3030 || cp == 0x303D ||
              cp == 0x3297 || cp == 0x3299 || cp == 0xA9 || cp == 0xAE || cp == 0x203C ||
              cp == 0x2049 || cp == 0x2122 || cp == 0x2139 || (cp >= 0xE0020 && cp <= 0xE007F)))
            return 0;
        any = 1;
    }
    return any;
}

/* Is s (n bytes, the record's text after the UTF-8 repair) a status line that Messenger and
 * Instagram write in a conversation ("Alice sent an attachment.", "You called Bob.", "Reacted
 * ❤ to your message")? Only records with a sender_name are asked; the line's subject must be
 * "You" or the sender, or nothing for the two lines written so: Instagram's "Liked a message" and
 * a reaction that is only emoji ("Reacted ❤ to your message"); other sentences without a subject
 * ("Sent a photo of the loaf to Mum.", "Reacted badly to your message") are messages. Returns
 * why, or NULL. */
static const char *fti__st_status_line(const fti__st_jrec *r, const char *s, size_t n) {
    /* whole lines: the phrase ends the text (a '.' may follow) */
    static const char *const whole[] = {
        "sent an attachment", "sent a photo", "sent a video", "sent a gif", "sent a sticker",
        "sent a link", "sent a voice message", "sent an audio clip", "sent a file",
        "shared a link", "shared a post", "shared a story", "shared a reel", "unsent a message",
        "missed a call", "missed a video chat", "missed your call", "liked a message",
        "waved at you", "started a call", "started a video chat", "joined the call",
        "joined the video chat", "left the group", "changed the group photo",
        "removed the group photo", "changed the theme", "are now connected on messenger"};
    /* openings: anything may follow */
    static const char *const opening[] = {
        "named the group ", "set the nickname ", "set your nickname ",
        "set his own nickname ", "set her own nickname ", "set their own nickname ",
        "cleared the nickname ", "cleared your nickname ", "set the emoji ",
        "changed the chat theme ", "created the group ", "pinned a message"};
    const fti_json *who = NULL, *ty;
    fti_buf name;
    size_t subj[3], ns = 0, k, j;
    const char *why = NULL;
    int i;
    for (i = r->n - 1; i >= 0 && !who; i--) who = fti_json_get(r->obj[i], "sender_name");
    if (!who || who->type != FTI_JSON_STRING) return NULL;
    ty = fti_json_get(r->obj[r->n - 1], "type");
    if (ty && ty->type == FTI_JSON_STRING &&
        (fti__st_eq_ci(ty->str, ty->len, "call") || fti__st_eq_ci(ty->str, ty->len, "subscribe") ||
         fti__st_eq_ci(ty->str, ty->len, "unsubscribe")))
        return "a call or a member joining or leaving";
    fti__st_trim(&s, &n);
    memset(&name, 0, sizeof name);
    if (!fti__st_unmojibake(who->str, who->len, &name)) fti_buf_append(&name, who->str, who->len);
    subj[ns++] = 0;
    if (n > 4 && fti__st_starts_ci(s, n, "you ")) subj[ns++] = 4;
    if (name.len && !name.oom && n > name.len + 1 && memcmp(s, name.data, name.len) == 0 &&
        s[name.len] == ' ')
        subj[ns++] = name.len + 1;
    for (j = 0; j < ns && !why; j++) {
        const char *t = s + subj[j];
        size_t m = n - subj[j], tail = 0;
        while (m && (t[m - 1] == '.' || t[m - 1] == ' ')) m--;
        /* "Reacted ❤ to your message": the reaction ends the line */
        if (fti__st_starts_ci(t, m, "reacted ") && m <= 64)
            tail = m >= 16 && fti__st_eq_ci(t + m - 16, 16, " to your message") ? 16
                   : m >= 13 && fti__st_eq_ci(t + m - 13, 13, " to a message") ? 13 : 0;
        if (tail && m >= tail + 8 && (subj[j] > 0 || fti__st_only_emoji(t + 8, m - tail - 8)))
            why = "a status line, not a message";
        if (subj[j] == 0) { /* no subject: nothing else is a status line */
            if (fti__st_eq_ci(t, m, "liked a message")) why = "a status line, not a message";
            continue;
        }
        for (k = 0; k < sizeof whole / sizeof whole[0] && !why; k++)
            if (fti__st_eq_ci(t, m, whole[k])) why = "a status line, not a message";
        for (k = 0; k < sizeof opening / sizeof opening[0] && !why; k++)
            if (fti__st_starts_ci(t, n - subj[j], opening[k]) && !memchr(t, '\n', n - subj[j]))
                why = "a status line, not a message";
    }
    fti_buf_free(&name);
    return why;
}

/* Is record r's text Markdown: Day One's entries ("text" with "richText", or with "uuid" and
 * "creationDate")? */
static int fti__st_json_is_markdown(const fti__st_jrec *r) {
    const fti_json *rec = r->obj[r->n - 1];
    if (!r->text->key || r->text->key_len != 4 || memcmp(r->text->key, "text", 4) != 0) return 0;
    return fti_json_get(rec, "richText") != NULL ||
           (fti_json_get(rec, "uuid") != NULL && fti_json_get(rec, "creationDate") != NULL);
}

/* Is record r a message of a conversation (Messenger's and Instagram's "sender_name", Twitter's
 * direct messages' "senderId", Telegram's "from_id")? Its document's kind is "message". */
static int fti__st_json_is_message(const fti__st_jrec *r) {
    int i;
    for (i = r->n - 1; i >= 0; i--)
        if (fti_json_get(r->obj[i], "sender_name") || fti_json_get(r->obj[i], "senderId") ||
            fti_json_get(r->obj[i], "from_id"))
            return 1;
    return 0;
}

/* Emits the record r of an item (raw: its bytes or canonical JSON), or says why not. */
static void fti__st_json_record(const fti__st_proc *pp, fti__st_out *o, uint32_t file,
                                const char *loc, const char *raw, size_t raw_len,
                                const fti__st_jrec *r, const char *def_kind) {
    const fti_ingest_opts *opt = pp->o;
    const fti_json *rec = r->obj[r->n - 1];
    fti_buf txt, fix, ft;
    const char *s;
    size_t n;
    char *kind;
    int tweet;
    char *au = NULL; /* the author, asked once: for --authors, then for the document */
    char *title = NULL;
    const char *why = fti__st_json_not_own(r);
    if (why) {
        fti__st_reject(o, file, loc, why[0] == 'r' ? "reshare" : why[0] == 'd' ? "deleted"
                                                                              : "system_message",
                       "%s", why + 2);
        return;
    }
    au = fti__st_json_meta(r, opt->author_fields, 0);
    if (fti__st_authors_given(opt)) {
        int kept = fti__st_author_kept(opt, au, au ? strlen(au) : 0), i;
        const fti_json *c;
        for (i = 0; i < r->n && kept && !au; i++) /* named, but empty: a deleted account */
            for (c = r->obj[i]->child; c && kept; c = c->next)
                if (c->key && fti__st_list_pos(opt->author_fields, c->key, c->key_len) >= 0)
                    kept = 0;
        if (!kept)
            fti__st_reject(o, file, loc, "other_author",
                           au ? "author \"%.80s\" is not one of --authors"
                              : "no author named%s (the field is empty), and --authors is given",
                           au ? au : "");
        if (!kept) {
            fti_free(au);
            return;
        }
    }
    if (r->text->type == FTI_JSON_STRING && r->text->len > 8 * opt->max_chars) {
        fti__st_reject(o, file, loc, "too_long", "%lu bytes of text before cleaning > 8 x %lu",
                       (unsigned long)r->text->len, (unsigned long)opt->max_chars);
        fti_free(au);
        return;
    }
    memset(&txt, 0, sizeof txt);
    memset(&fix, 0, sizeof fix);
    memset(&ft, 0, sizeof ft);
    if (!(r->text->key && r->text->key_len == 5 && memcmp(r->text->key, "title", 5) == 0))
        title = fti__st_json_meta(r, opt->title_fields, 0); /* not an Instagram caption */
    fti__st_json_text(r->text, &txt);
    {
        const char *t = txt.data ? txt.data : "";
        size_t tn = txt.len;
        fti__st_trim(&t, &tn);
        if ((tn == 9 && (memcmp(t, "[deleted]", 9) == 0 || memcmp(t, "[removed]", 9) == 0))) {
            fti__st_reject(o, file, loc, "deleted", "Reddit's %.9s", t);
            goto done;
        }
    }
    s = txt.data ? txt.data : "";
    n = txt.len;
    if (fti__st_unmojibake(s, n, &fix)) s = fix.data, n = fix.len;
    if ((why = fti__st_status_line(r, s, n)) != NULL) {
        fti__st_reject(o, file, loc, "system_message", "%s", why);
        goto done;
    }
    tweet = r->text->key && r->text->key_len == 9 && memcmp(r->text->key, "full_text", 9) == 0;
    if (tweet && n >= 4 && memcmp(s, "RT @", 4) == 0) {
        fti__st_reject(o, file, loc, "reshare", "a retweet: someone else's text");
        goto done;
    }
    if (tweet) {
        fti_buf tt;
        memset(&tt, 0, sizeof tt);
        fti__st_tweet_text(rec, s, n, &tt);
        fti_buf_free(&txt);
        txt = tt;
        s = txt.data ? txt.data : "";
        n = txt.len;
    }
    if (fti__st_json_is_markdown(r)) {
        fti_buf mt;
        memset(&mt, 0, sizeof mt);
        fti_markdown_to_text(s, n, &ft, &mt);
        if (mt.len && !title) title = fti__st_meta_str(mt.data, mt.len, 200);
        if (mt.oom) ft.oom = 1;
        fti_buf_free(&mt);
    } else {
        fti__st_field_text(s, n, r->text->key, r->text->key_len, &ft);
    }
    s = ft.data ? ft.data : "";
    n = ft.len;
    if (fti__st_json_is_reply(r)) { /* a reply's leading mentions are not the author's words */
        size_t k = fti__st_after_mentions(s, n);
        s += k, n -= k;
    }
    if (txt.oom || fix.oom || ft.oom) {
        o->oom = 1;
        goto done;
    }
    kind = fti__st_json_meta(r, "platform,source,kind", 0);
    if (kind && (strlen(kind) > 32 || strpbrk(kind, "<> /:"))) { /* tweets' HTML "source" */
        fti_free(kind);
        kind = NULL;
    }
    if (!kind) kind = fti_strdup(fti__st_json_is_message(r) ? "message" : def_kind);
    fti__st_emit(pp, o, file, loc, raw, raw_len, s, n, opt->redact > 0 ? FTI_CLEAN_REDACT_ALL : 0,
                 title, au,
                 fti__st_json_meta(r, opt->date_fields, 1), kind);
    au = title = NULL; /* the document's now */
done:
    fti_free(au);
    fti_free(title);
    fti_buf_free(&txt);
    fti_buf_free(&fix);
    fti_buf_free(&ft);
}

/* An item of an array of records (or a JSON line) without a record: why. */
static void fti__st_json_no_record(const fti_ingest_opts *opt, fti__st_out *o, uint32_t file,
                                   const char *loc, const fti_json *v) {
    const fti_json *t = fti_json_get(v, "type");
    if (v->type != FTI_JSON_OBJECT)
        fti__st_reject(o, file, loc, "json_not_object", "record is not a JSON object");
    else if (t && t->type == FTI_JSON_STRING && t->len == 8 && memcmp(t->str, "Announce", 8) == 0)
        fti__st_reject(o, file, loc, "reshare", "a boost: someone else's post");
    else
        fti__st_reject(o, file, loc, "no_text", "no text field (looked for %s)",
                       opt->text_fields);
}

static fti_json_opts fti__st_json_opts(void) {
    fti_json_opts jo;
    memset(&jo, 0, sizeof jo);
    jo.max_depth = 32;
    jo.max_string = (size_t)64 << 20;
    return jo;
}

/* JSON lines in [s, s+n); first_line is the 1-based number of the first line. */
static void fti__st_ingest_jsonl(const fti__st_proc *pp, fti__st_out *o, uint32_t file,
                                 const char *s, size_t n, size_t first_line) {
    size_t i = 0, line = first_line;
    fti_json_opts jo = fti__st_json_opts();
    while (i < n) {
        const char *e = (const char *)memchr(s + i, '\n', n - i);
        size_t len = e ? (size_t)(e - (s + i)) : n - i, tl = len;
        const char *t = s + i;
        char loc[48];
        fti__st_trim(&t, &tl);
        snprintf(loc, sizeof loc, "#line %lu", (unsigned long)line);
        if (tl > 0) {
            fti_json_doc *doc = NULL;
            fti_error jerr;
            fti_result jr = fti_json_parse(t, tl, &jo, &doc, NULL, &jerr);
            fti__st_jrec r;
            if (jr == FTI_ERR_NOMEM) {
                o->oom = 1; /* out of memory is not a bad record: the ingest fails */
                return;
            } else if (jr != FTI_OK) {
                fti__st_reject(o, file, loc, "json_error", "%s", jerr.msg);
            } else if (fti__st_json_find_in(pp->o, fti_json_root(doc), &r, 0, 1)) {
                fti__st_json_record(pp, o, file, loc, t, tl, &r, "jsonl");
            } else {
                fti__st_json_no_record(pp->o, o, file, loc, fti_json_root(doc));
            }
            fti_json_free(doc);
        }
        i += len + 1;
        line++;
    }
}

/* Canonical JSON of v (members in file order, numbers as %.17g, strings escaped) appended to
 * out; depth is bounded by the parser's limit. */
static void fti__st_json_canon(const fti_json *v, fti_buf *out, int depth) {
    const fti_json *c;
    if (depth > 64) return;
    switch (v->type) {
    case FTI_JSON_NULL:
        fti_buf_puts(out, "null");
        break;
    case FTI_JSON_FALSE:
        fti_buf_puts(out, "false");
        break;
    case FTI_JSON_TRUE:
        fti_buf_puts(out, "true");
        break;
    case FTI_JSON_NUMBER:
        if (v->is_int)
            fti_buf_printf(out, "%lld", (long long)v->i);
        else
            fti_buf_printf(out, "%.17g", v->num);
        break;
    case FTI_JSON_STRING:
        fti_json_escape(out, v->str, v->len);
        break;
    case FTI_JSON_ARRAY:
    case FTI_JSON_OBJECT:
        fti_buf_putc(out, v->type == FTI_JSON_ARRAY ? '[' : '{');
        for (c = v->child; c; c = c->next) {
            if (c != v->child) fti_buf_putc(out, ',');
            if (v->type == FTI_JSON_OBJECT) {
                fti_json_escape(out, c->key ? c->key : "", c->key_len);
                fti_buf_putc(out, ':');
            }
            fti__st_json_canon(c, out, depth + 1);
        }
        fti_buf_putc(out, v->type == FTI_JSON_ARRAY ? ']' : '}');
        break;
    }
}

/* One JSON file: the walk's state. path is where the walk is ("chats.list[2].messages"). */
typedef struct fti__st_jwalk {
    const fti__st_proc *pp;
    fti__st_out *o;
    uint32_t file;
    char path[120];
    size_t n_found;
} fti__st_jwalk;

/* Appends ".key" or "[i]" (key NULL) to w->path; returns the old length (to restore). */
static size_t fti__st_jwalk_push(fti__st_jwalk *w, const char *key, size_t key_len, size_t i) {
    size_t len = strlen(w->path), room = sizeof w->path - len;
    if (key) {
        size_t k = key_len < 40 ? key_len : 40, j;
        char seg[48];
        /* the parser checked the key's UTF-8: cut it at a character boundary */
        while (k < key_len && k > 0 && ((unsigned char)key[k] & 0xC0) == 0x80) k--;
        for (j = 0; j < k; j++)
            seg[j] = (unsigned char)key[j] < 0x20 || key[j] == '"' ? '_' : key[j];
        seg[k] = 0;
        if (k + 2 < room) /* a path too deep to name keeps its first segments, whole */
            snprintf(w->path + len, room, "%s%s", len ? "." : "", seg);
    } else if (room > 24) {
        snprintf(w->path + len, room, "[%lu]", (unsigned long)i);
    }
    return len;
}

/* Emits the item v holding record r at loc; its "raw bytes" are its canonical JSON (the DOM
 * keeps no byte offsets). */
static void fti__st_jwalk_emit(fti__st_jwalk *w, const fti_json *v, const fti__st_jrec *r,
                               const char *loc) {
    fti_buf raw;
    memset(&raw, 0, sizeof raw);
    fti__st_json_canon(v, &raw, 0);
    if (raw.oom) w->o->oom = 1;
    fti__st_json_record(w->pp, w->o, w->file, loc, raw.data ? raw.data : "", raw.len, r, "json");
    fti_buf_free(&raw);
    w->n_found++;
}

/* Emits every item of arr, an array of records. */
static void fti__st_jwalk_records(fti__st_jwalk *w, const fti_json *arr, int root) {
    const fti_json *c;
    size_t k = 0;
    for (c = arr->child; c; c = c->next, k++) {
        char loc[160];
        fti__st_jrec r;
        if (root)
            snprintf(loc, sizeof loc, "#item %lu", (unsigned long)k);
        else
            snprintf(loc, sizeof loc, "#%s[%lu]", w->path, (unsigned long)k);
        if (fti__st_json_find_in(w->pp->o, c, &r, 0, 1))
            fti__st_jwalk_emit(w, c, &r, loc);
        else
            fti__st_json_no_record(w->pp->o, w->o, w->file, loc, c);
    }
}

/* Searches v for arrays of records: an array with at least one item that is a record is one
 * (all its items are emitted or rejected); other arrays and objects are searched inside, and an
 * object that is itself a record is one record. */
static void fti__st_jwalk_search(fti__st_jwalk *w, const fti_json *v, int depth, int root) {
    const fti_json *c;
    fti__st_jrec r;
    size_t k = 0, old;
    if (depth > FTI__ST_JWALK_MAX || w->o->oom) return;
    if (v->type == FTI_JSON_ARRAY) {
        for (c = v->child; c; c = c->next)
            if (fti__st_json_find_in(w->pp->o, c, &r, 0, 1)) break;
        if (c) {
            fti__st_jwalk_records(w, v, root);
            return;
        }
        for (c = v->child; c; c = c->next, k++) {
            if (c->type != FTI_JSON_ARRAY && c->type != FTI_JSON_OBJECT) continue;
            old = fti__st_jwalk_push(w, NULL, 0, k);
            fti__st_jwalk_search(w, c, depth + 1, 0);
            w->path[old] = 0;
        }
    } else if (v->type == FTI_JSON_OBJECT) {
        /* the root is a record only by a text member of its own (not a wrapper's: {"data":
         * [two tweets]} is a list, not a Facebook post) */
        if (fti__st_json_find_in(w->pp->o, v, &r, 0, !root)) {
            char loc[160];
            if (root)
                loc[0] = 0;
            else
                snprintf(loc, sizeof loc, "#%s", w->path);
            fti__st_jwalk_emit(w, v, &r, loc);
            return;
        }
        for (c = v->child; c; c = c->next) {
            if (c->type != FTI_JSON_ARRAY && c->type != FTI_JSON_OBJECT) continue;
            old = fti__st_jwalk_push(w, c->key ? c->key : "", c->key ? c->key_len : 0, 0);
            fti__st_jwalk_search(w, c, depth + 1, 0);
            w->path[old] = 0;
        }
    }
}

/* Twitter's archive files (data/tweets.js) are JavaScript: "window.YTD.tweets.part0 = [...]".
 * Returns the offset of the JSON after the assignment, or 0. */
static size_t fti__st_ytd_prefix(const char *s, size_t n) {
    size_t i = 0;
    if (n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) i = 3;
    if (n - i < 11 || memcmp(s + i, "window.YTD.", 11) != 0) return 0;
    for (i += 11; i < n && i < 200 && s[i] != '='; i++) {}
    return i < n && s[i] == '=' ? i + 1 : 0;
}

/* --- an export's owner --------------------------------------------------------------------- */
/* Exports of conversations hold both sides. The export names its owner in an account file:
 * Twitter's data/account.js ({"account": {"accountId", "username", "accountDisplayName"}}),
 * Facebook's profile_information.json ({"profile_v2": {"name": {"full_name"}}}), Instagram's
 * personal_information.json ({"profile_user": [{"string_map_data": {"Name": {"value"},
 * "Username": {"value"}}}]}) and Telegram's result.json ({"personal_information": {"user_id",
 * "first_name", "last_name", "username"}}). Its names go into an "account_info" entry of the
 * file's report, detail FTI__ST_OWNER_PREFIX then the names joined by FTI__ST_OWNER_SEP; when
 * --authors is not given, the version leaves out the messages (kind "message") of that export
 * whose sender is none of them (fti__st_owner_filter in 04_store_version.c). */
#define FTI__ST_OWNER_PREFIX "the export's owner: "
#define FTI__ST_OWNER_SEP " | "

/* Appends prefix and s[0..n) (Facebook's doubly encoded UTF-8 repaired; at most 120 bytes, no
 * separator, no comma: --authors' list separator) as one more owner name. */
static void fti__st_owner_put(fti_buf *names, const char *s, size_t n, const char *prefix) {
    fti_buf fix;
    char *m;
    if (n == 0 || n > 120) return;
    memset(&fix, 0, sizeof fix);
    if (fti__st_unmojibake(s, n, &fix)) s = fix.data, n = fix.len;
    while (n && *s == '@') s++, n--; /* Telegram's "@ann" */
    m = fti__st_meta_str(s, n, 120);
    if (m && !strchr(m, ',') && !strstr(m, FTI__ST_OWNER_SEP)) {
        if (names->len) fti_buf_puts(names, FTI__ST_OWNER_SEP);
        fti_buf_puts(names, prefix);
        fti_buf_puts(names, m);
    }
    fti_free(m);
    fti_buf_free(&fix);
}

/* The same for a JSON string, or a JSON integer (ids) as its digits; nothing for other values. */
static void fti__st_owner_name(fti_buf *names, const fti_json *v, const char *prefix) {
    char num[32];
    if (v && v->type == FTI_JSON_STRING) {
        fti__st_owner_put(names, v->str, v->len, prefix);
    } else if (v && v->type == FTI_JSON_NUMBER && v->is_int) {
        snprintf(num, sizeof num, "%lld", (long long)v->i);
        fti__st_owner_put(names, num, strlen(num), prefix);
    }
}

/* The owner's names if root is an account file (*whole = 1: the file holds nothing else) or
 * Telegram's export with its personal_information (*whole = 0); 0 if neither. */
static int fti__st_owner_of(const fti_json *root, fti_buf *names, int *whole) {
    const fti_json *a, *v;
    *whole = 1;
    if (root->type == FTI_JSON_ARRAY && root->child && !root->child->next &&
        (a = fti_json_get(root->child, "account")) != NULL && a->type == FTI_JSON_OBJECT &&
        fti_json_get(a, "accountId")) { /* Twitter */
        fti__st_owner_name(names, fti_json_get(a, "accountId"), "");
        fti__st_owner_name(names, fti_json_get(a, "username"), "");
        fti__st_owner_name(names, fti_json_get(a, "accountDisplayName"), "");
        return names->len > 0;
    }
    if (root->type != FTI_JSON_OBJECT) return 0;
    if (((a = fti_json_get(root, "profile_v2")) != NULL ||
         (a = fti_json_get(root, "profile")) != NULL) &&
        a->type == FTI_JSON_OBJECT && (v = fti_json_get(a, "name")) != NULL &&
        v->type == FTI_JSON_OBJECT) { /* Facebook */
        fti__st_owner_name(names, fti_json_get(v, "full_name"), "");
        return names->len > 0;
    }
    if ((a = fti_json_get(root, "profile_user")) != NULL && a->type == FTI_JSON_ARRAY &&
        a->child && (a = fti_json_get(a->child, "string_map_data")) != NULL &&
        a->type == FTI_JSON_OBJECT) { /* Instagram */
        if ((v = fti_json_get(a, "Name")) != NULL && v->type == FTI_JSON_OBJECT)
            fti__st_owner_name(names, fti_json_get(v, "value"), "");
        if ((v = fti_json_get(a, "Username")) != NULL && v->type == FTI_JSON_OBJECT)
            fti__st_owner_name(names, fti_json_get(v, "value"), "");
        return names->len > 0;
    }
    if ((a = fti_json_get(root, "personal_information")) != NULL && a->type == FTI_JSON_OBJECT &&
        fti_json_get(root, "chats")) { /* Telegram: the whole export, its chats follow */
        const fti_json *f = fti_json_get(a, "first_name"), *l = fti_json_get(a, "last_name");
        fti_buf full;
        memset(&full, 0, sizeof full);
        *whole = 0;
        if (f && f->type == FTI_JSON_STRING) fti_buf_append(&full, f->str, f->len);
        if (l && l->type == FTI_JSON_STRING && l->len) {
            if (full.len) fti_buf_putc(&full, ' ');
            fti_buf_append(&full, l->str, l->len);
        }
        if (!full.oom) fti__st_owner_put(names, full.data ? full.data : "", full.len, "");
        fti_buf_free(&full);
        fti__st_owner_name(names, fti_json_get(a, "username"), "");
        /* the messages' "from_id": "user123" */
        fti__st_owner_name(names, fti_json_get(a, "user_id"), "user");
        return names->len > 0;
    }
    return 0;
}

static void fti__st_ingest_json(const fti__st_proc *pp, fti__st_out *o, uint32_t file,
                                const char *s, size_t n) {
    fti_json_opts jo = fti__st_json_opts();
    fti_json_doc *doc = NULL;
    fti_error jerr;
    const fti_json *root;
    fti__st_jwalk w;
    size_t skip = fti__st_ytd_prefix(s, n);
    if (!skip && n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) skip = 3; /* a byte-order mark */
    {
        fti_result jr = fti_json_parse(s + skip, n - skip, &jo, &doc, NULL, &jerr);
        if (jr != FTI_OK) {
            if (jr == FTI_ERR_NOMEM)
                o->oom = 1; /* out of memory is not a bad file: the ingest fails */
            else
                fti__st_reject(o, file, "", "json_error", "%s", jerr.msg);
            fti_json_free(doc);
            return;
        }
    }
    root = fti_json_root(doc);
    if (root->type != FTI_JSON_ARRAY && root->type != FTI_JSON_OBJECT) {
        fti__st_reject(o, file, "", "json_not_object", "top level is neither array nor object");
        fti_json_free(doc);
        return;
    }
    {
        fti_buf names;
        int whole = 1, found;
        memset(&names, 0, sizeof names);
        found = fti__st_owner_of(root, &names, &whole);
        if (found) {
            if (names.oom)
                o->oom = 1;
            else
                fti__st_reject(o, file, whole ? "" : "#personal_information", "account_info",
                               "%s%s", FTI__ST_OWNER_PREFIX, names.data);
        }
        fti_buf_free(&names);
        if (found && whole) {
            fti_json_free(doc);
            return;
        }
    }
    memset(&w, 0, sizeof w);
    w.pp = pp;
    w.o = o;
    w.file = file;
    fti__st_jwalk_search(&w, root, 0, 1);
    if (!w.n_found && !o->oom && root->type == FTI_JSON_OBJECT)
        fti__st_reject(o, file, "", "no_text",
                       "no text field within %d levels (looked for %s)", FTI__ST_JWALK_MAX,
                       pp->o->text_fields);
    else if (!w.n_found && !o->oom && !root->child)
        fti__st_reject(o, file, "", "no_text", "an empty list");
    else if (!w.n_found && !o->oom) /* a list of no records: each item says why */
        fti__st_jwalk_records(&w, root, 1);
    fti_json_free(doc);
}

/* --- CSV ------------------------------------------------------------------------------------ */

/* The separator of a CSV file: ',', ';' (spreadsheets in locales with a decimal comma) or a tab,
 * whichever the header line (from s[pos]) has most of outside quotes; ',' on a tie. */
static char fti__st_csv_sep(const char *s, size_t n, size_t pos) {
    size_t counts[3] = {0, 0, 0}, i;
    int quoted = 0;
    for (i = pos; i < n && (quoted || (s[i] != '\n' && s[i] != '\r')); i++) {
        if (s[i] == '"') {
            quoted = !quoted;
        } else if (!quoted) {
            counts[0] += s[i] == ',';
            counts[1] += s[i] == ';';
            counts[2] += s[i] == '\t';
        }
    }
    if (counts[1] > counts[0] && counts[1] >= counts[2]) return ';';
    if (counts[2] > counts[0] && counts[2] > counts[1]) return '\t';
    return ',';
}

/* Parses one CSV record at s[*pos..n) into fields (appended to vals, with offsets in offs);
 * returns 1 on a record, 0 at the end, -1 on an unterminated quote. */
static int fti__st_csv_record(const char *s, size_t n, char sep, size_t *pos, fti_buf *vals,
                              size_t *offs, size_t max_fields, size_t *n_fields) {
    size_t i = *pos, nf = 0;
    if (i >= n) return 0;
    vals->len = 0;
    for (;;) {
        if (nf < max_fields) offs[nf] = vals->len;
        /* the field's bytes are appended a run at a time (not a call per byte) */
        if (i < n && s[i] == '"') {
            i++;
            for (;;) {
                const char *q = i < n ? (const char *)memchr(s + i, '"', n - i) : NULL;
                if (!q) return -1;
                fti_buf_append(vals, s + i, (size_t)(q - (s + i)));
                i = (size_t)(q - s);
                if (i + 1 < n && s[i + 1] == '"') {
                    fti_buf_putc(vals, '"');
                    i += 2;
                    continue;
                }
                i++;
                break;
            }
            while (i < n && s[i] != sep && s[i] != '\n' && s[i] != '\r') i++;
        } else {
            size_t f0 = i;
            while (i < n && s[i] != sep && s[i] != '\n' && s[i] != '\r') i++;
            fti_buf_append(vals, s + f0, i - f0);
        }
        fti_buf_putc(vals, 0);
        nf++;
        if (i < n && s[i] == sep) {
            i++;
            continue;
        }
        if (i < n && s[i] == '\r') i++;
        if (i < n && s[i] == '\n') i++;
        break;
    }
    *pos = i;
    *n_fields = nf;
    return 1;
}

#define FTI__ST_CSV_MAX_FIELDS 1024

static void fti__st_ingest_csv(const fti__st_proc *pp, fti__st_out *o, uint32_t file, const char *s,
                               size_t n) {
    const fti_ingest_opts *opt = pp->o;
    fti_buf hdr, row;
    size_t *hoffs, *offs, nh = 0, nf = 0, pos = 0, rowno = 1, i;
    int c_text = -1, c_title = -1, c_author = -1, c_date = -1, p_text = 1 << 30, p_title = 1 << 30,
        p_author = 1 << 30, p_date = 1 << 30, rc;
    char sep;
    memset(&hdr, 0, sizeof hdr);
    memset(&row, 0, sizeof row);
    hoffs = (size_t *)fti_calloc(FTI__ST_CSV_MAX_FIELDS, sizeof *hoffs);
    offs = (size_t *)fti_calloc(FTI__ST_CSV_MAX_FIELDS, sizeof *offs);
    if (!hoffs || !offs) {
        o->oom = 1;
        goto done;
    }
    if (n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) pos = 3;
    if (n - pos >= 5 && memcmp(s + pos, "sep=", 4) == 0 && memchr(",;\t|", s[pos + 4], 4) &&
        (n - pos == 5 || s[pos + 5] == '\n' || s[pos + 5] == '\r')) {
        /* Excel's "sep=;" line before the header names the separator (Excel shows no such row;
         * the header stays row 1) */
        sep = s[pos + 4];
        pos += 5;
        if (pos < n && s[pos] == '\r') pos++;
        if (pos < n && s[pos] == '\n') pos++;
    } else {
        sep = fti__st_csv_sep(s, n, pos);
    }
    rc = fti__st_csv_record(s, n, sep, &pos, &hdr, hoffs, FTI__ST_CSV_MAX_FIELDS, &nh);
    if (hdr.oom) { /* the field offsets point into a buffer that did not grow */
        o->oom = 1;
        goto done;
    }
    if (rc <= 0 || nh > FTI__ST_CSV_MAX_FIELDS) {
        fti__st_reject(o, file, "", "csv_error",
                       rc < 0 ? "unterminated quote in the header row" : "no usable header row");
        goto done;
    }
    for (i = 0; i < nh; i++) {
        const char *name = hdr.data + hoffs[i];
        size_t len = strlen(name);
        int p;
        const char *t = name;
        fti__st_trim(&t, &len);
        if ((p = fti__st_list_pos(opt->text_fields, t, len)) >= 0 && p < p_text)
            p_text = p, c_text = (int)i;
        if ((p = fti__st_list_pos(opt->title_fields, t, len)) >= 0 && p < p_title)
            p_title = p, c_title = (int)i;
        if ((p = fti__st_list_pos(opt->author_fields, t, len)) >= 0 && p < p_author)
            p_author = p, c_author = (int)i;
        if ((p = fti__st_list_pos(opt->date_fields, t, len)) >= 0 && p < p_date)
            p_date = p, c_date = (int)i;
    }
    if (c_text < 0) {
        fti__st_reject(o, file, "", "no_text", "no text column in the header (looked for %s)",
                       opt->text_fields);
        goto done;
    }
    for (;;) {
        size_t start = pos;
        char loc[48];
        rowno++;
        rc = fti__st_csv_record(s, n, sep, &pos, &row, offs, FTI__ST_CSV_MAX_FIELDS, &nf);
        snprintf(loc, sizeof loc, "#row %lu", (unsigned long)rowno);
        if (rc == 0) break;
        if (rc < 0) {
            fti__st_reject(o, file, loc, "csv_error", "unterminated quote (rest of file skipped)");
            break;
        }
        if (row.oom) {
            o->oom = 1;
            break;
        }
        if (nf == 1 && row.data[0] == 0) continue; /* empty line */
        if (nf != nh) {
            fti__st_reject(o, file, loc, "csv_error", "%lu fields, header has %lu",
                           (unsigned long)nf, (unsigned long)nh);
            continue;
        }
        {
            const char *txt = row.data + offs[c_text];
            size_t tl = strlen(txt);
            fti_buf ft;
            const char *au = c_author >= 0 ? row.data + offs[c_author] : "";
            if (fti__st_authors_given(opt) && c_author >= 0 && !au[0]) {
                fti__st_reject(o, file, loc, "other_author",
                               "no author named (the column is empty), and --authors is given");
                continue;
            }
            if (fti__st_authors_given(opt) && au[0] && !fti__st_author_kept(opt, au, strlen(au))) {
                fti__st_reject(o, file, loc, "other_author",
                               "author \"%.80s\" is not one of --authors", au);
                continue;
            }
            memset(&ft, 0, sizeof ft);
            fti__st_field_text(txt, tl, hdr.data + hoffs[c_text], strlen(hdr.data + hoffs[c_text]),
                               &ft);
            if (ft.oom) o->oom = 1;
#define FTI__ST_CSV_META(c)                                                                        \
    ((c) >= 0 ? fti__st_meta_str(row.data + offs[c], strlen(row.data + offs[c]), 200) : NULL)
            fti__st_emit(pp, o, file, loc, s + start, pos - start, ft.data ? ft.data : "", ft.len,
                         opt->redact > 0 ? FTI_CLEAN_REDACT_ALL : 0, FTI__ST_CSV_META(c_title),
                         FTI__ST_CSV_META(c_author), FTI__ST_CSV_META(c_date), fti_strdup("csv"));
#undef FTI__ST_CSV_META
            fti_buf_free(&ft);
        }
    }
done:
    fti_free(hoffs);
    fti_free(offs);
    fti_buf_free(&hdr);
    fti_buf_free(&row);
}

/* --- plain text: hard-wrapped paragraphs ------------------------------------------------------ */

/* The length of the line s[0..n) in characters (UTF-8 continuation bytes not counted). */
static size_t fti__st_cols(const char *s, size_t n) {
    size_t i, c = 0;
    for (i = 0; i < n; i++) c += ((unsigned char)s[i] & 0xC0) != 0x80;
    return c;
}

/* The line at s[i..n): its length without the '\n', '\r' and trailing blanks (*ln), and the
 * offset of the next line (returned). */
static size_t fti__st_line_at(const char *s, size_t n, size_t i, size_t *ln) {
    const char *e = (const char *)memchr(s + i, '\n', n - i);
    size_t len = e ? (size_t)(e - (s + i)) : n - i;
    while (len && (s[i + len - 1] == '\r' || s[i + len - 1] == ' ' || s[i + len - 1] == '\t'))
        len--;
    *ln = len;
    return e ? (size_t)(e - s) + 1 : n;
}

/* Does l[0..ln) start with a letter: ASCII, or a character of the alphabets UTF-8 writes in two
 * bytes from U+00C0 on, or in three (U+1000 on; not U+2000..U+2FFF: punctuation, bullets,
 * arrows and symbols)? */
static int fti__st_letter_at(const char *l, size_t ln) {
    unsigned char c = ln ? (unsigned char)l[0] : 0;
    return (unsigned)((c | 0x20) - 'a') < 26u || (c >= 0xC3 && c <= 0xDF) || c == 0xE1 ||
           (c >= 0xE3 && c <= 0xED);
}

/* Can the line l[0..ln) go on the paragraph of the line before it? It starts with a letter, or
 * an opening quote or parenthesis and a letter or digit; not an indented line, a list item
 * ("- ", "* ", "1. ", "a) ", "(a) ") or a bullet. */
static int fti__st_wrap_next(const char *l, size_t ln) {
    static const char *const opens[] = {"\"", "'", "(", "[", "\xe2\x80\x9c", "\xe2\x80\x98",
                                        "\xc2\xab", NULL};
    size_t k = 0, t;
    if (!fti__st_letter_at(l, ln)) {
        for (t = 0; opens[t] && !k; t++)
            if (ln > strlen(opens[t]) && memcmp(l, opens[t], strlen(opens[t])) == 0)
                k = strlen(opens[t]);
        if (!k || !(fti__st_letter_at(l + k, ln - k) || fti__st_is_digit((unsigned char)l[k])))
            return 0;
    }
    /* "a) ", "b. ", "(a) ", "[x] " */
    return !(ln >= k + 3 && (l[k + 1] == ')' || l[k + 1] == '.' || l[k + 1] == ']') &&
             l[k + 2] == ' ' && ((unsigned char)l[k] < 0x80));
}

/* Plain text s[0..n) with its hard-wrapped paragraphs joined into one line each, appended to
 * out (blank lines, short lines and lists as they are), so that mail and wrapped notes read as
 * posts do.
 * flowed (RFC 3676, Content-Type "format=flowed"): a line ending in a blank goes on with the
 * next ("-- " excepted), with that blank dropped when delsp ("delsp=yes"); a leading blank is
 * space-stuffing and goes. Exact: the writer's program marked its own breaks.
 * Otherwise a guess, made to err towards leaving lines alone: a line of more than 50
 * characters goes on with the next when that one starts with a letter (not "- ", "* ", "1. ",
 * "a) " or an indented line) and its first word would not have fitted on the line: longer
 * than W, the width the text is wrapped at, taken as its second-longest line (one pasted line
 * longer than the rest does not count; at least 72 when fewer than three lines are over 50),
 * so a line broken on purpose early stays. Text with a
 * line of words longer than 80 characters is not wrapped at all (a paragraph per line) and
 * stays as it is. Three or more lines that would be joined are left as they are when each line
 * after the first starts with a capital letter (a list of addresses or names, a poem: a wrapped
 * paragraph's lines start with one now and then), and no line is joined that has a tab or two
 * runs of three blanks after its indentation (a table's columns). Left alone: two lines of a
 * list (they are joined); pasted log lines starting with a lowercase
 * letter whose next line's first word would not have fitted (they may be joined); a word
 * broken at its hyphen by a wrapper (joined with a blank after the hyphen). */
/* Does l[0..ln) start with a capital letter (ASCII, or Latin-1's U+00C0..U+00DE)? */
static int fti__st_upper_at(const char *l, size_t ln) {
    unsigned char c = ln ? (unsigned char)l[0] : 0, d = ln > 1 ? (unsigned char)l[1] : 0;
    return (c >= 'A' && c <= 'Z') || (c == 0xC3 && d >= 0x80 && d <= 0x9E && d != 0x97);
}

/* Does the line l[0..ln) hold a table's columns: after its indentation, a tab or two runs of
 * three blanks or more? (One such run is prose: "ACADEMY, n.  [from ACADEME]   A modern") */
static int fti__st_line_gap(const char *l, size_t ln) {
    size_t i = 0, run = 0;
    int gaps = 0;
    while (i < ln && (l[i] == ' ' || l[i] == '\t')) i++;
    for (; i < ln; i++) {
        if (l[i] == '\t') return 1;
        run = l[i] == ' ' ? run + 1 : 0;
        if (run == 3 && ++gaps == 2) return 1;
    }
    return 0;
}

/* The guess of fti__st_unwrap: does the line at s[i..) go on with the next one (*next, set to
 * where that starts)? w is the width the text is wrapped at. */
static int fti__st_wrap_join(const char *s, size_t n, size_t i, size_t w, size_t *next) {
    size_t ln, ln2, c, fw = 0;
    *next = fti__st_line_at(s, n, i, &ln);
    c = fti__st_cols(s + i, ln);
    if (c <= 50 || *next >= n) return 0;
    fti__st_line_at(s, n, *next, &ln2);
    while (fw < ln2 && s[*next + fw] != ' ' && s[*next + fw] != '\t') fw++;
    return fti__st_wrap_next(s + *next, ln2) && c + 1 + fti__st_cols(s + *next, fw) > w &&
           !fti__st_line_gap(s + i, ln) && !fti__st_line_gap(s + *next, ln2);
}

static void fti__st_unwrap(const char *s, size_t n, int flowed, int delsp, fti_buf *out) {
    size_t i = 0, w1 = 0, w2 = 0, n_long = 0, ln, next;
    if (flowed) {
        while (i < n) {
            const char *e = (const char *)memchr(s + i, '\n', n - i);
            size_t len = e ? (size_t)(e - (s + i)) : n - i;
            const char *l = s + i;
            next = e ? (size_t)(e - s) + 1 : n;
            if (len && l[len - 1] == '\r') len--;
            if (len && l[0] == ' ') l++, len--; /* space-stuffed */
            if (len && l[len - 1] == ' ' && !(len == 3 && memcmp(l, "-- ", 3) == 0) &&
                next < n && s[next] != '\n' && s[next] != '\r') { /* a soft break */
                fti_buf_append(out, l, delsp ? len - 1 : len);
            } else {
                fti_buf_append(out, l, len);
                if (e) fti_buf_putc(out, '\n');
            }
            i = next;
        }
        return;
    }
    for (i = 0; i < n; i = next) { /* the two longest lines of words */
        size_t c;
        next = fti__st_line_at(s, n, i, &ln);
        c = fti__st_cols(s + i, ln);
        if (c > 80 && memchr(s + i, ' ', ln)) { /* not wrapped */
            fti_buf_append(out, s, n);
            return;
        }
        n_long += c > 50;
        if (c > w1)
            w2 = w1, w1 = c;
        else if (c > w2)
            w2 = c;
    }
    if (!w2) w2 = w1;
    if (n_long < 3 && w2 < 72) w2 = 72; /* too few lines to tell: as mail programs wrap */
    for (i = 0; i < n; i = next) {
        /* the run of lines i.. that the guess joins, up to the line at `last` */
        size_t last = i, k, nx;
        int joins = 0, all_caps = 1;
        while (fti__st_wrap_join(s, n, last, w2, &nx)) {
            fti__st_line_at(s, n, nx, &ln);
            if (!fti__st_upper_at(s + nx, ln)) all_caps = 0;
            joins++;
            last = nx;
        }
        next = fti__st_line_at(s, n, last, &ln);
        /* (two lines: a sentence or a name starts a wrapped paragraph's second line often) */
        if (joins && !(all_caps && joins >= 2)) /* each line but the last, then a blank */
            for (k = i; k < last; k = nx) {
                nx = fti__st_line_at(s, n, k, &ln);
                fti_buf_append(out, s + k, ln);
                fti_buf_putc(out, ' ');
            }
        else
            last = i; /* as they are */
        fti_buf_append(out, s + last, next - last);
    }
}

/* --- mail ----------------------------------------------------------------------------------- */

/* Finds the end of the header block of m[0..n): sets *body to the first body byte; returns the
 * header length, or (size_t)-1 when no blank line ends the headers. */
static size_t fti__st_mail_split(const char *m, size_t n, size_t *body) {
    size_t i = 0;
    while (i < n) {
        const char *e = (const char *)memchr(m + i, '\n', n - i);
        size_t len = e ? (size_t)(e - (m + i)) : n - i;
        if (len == 0 || (len == 1 && m[i] == '\r')) {
            *body = e ? i + len + 1 : n;
            return i;
        }
        if (!e) break;
        i += len + 1;
    }
    return (size_t)-1;
}

/* The value of header `name` (lowercase) in h[0..n), unfolded, appended to out; 1 if found. */
static int fti__st_mail_header(const char *h, size_t n, const char *name, fti_buf *out) {
    size_t i = 0, nl = strlen(name);
    while (i < n) {
        const char *e = (const char *)memchr(h + i, '\n', n - i);
        size_t len = e ? (size_t)(e - (h + i)) : n - i;
        if (len > nl && h[i + nl] == ':' && fti__st_starts_ci(h + i, len, name)) {
            size_t j = i + nl + 1;
            const char *v;
            size_t vl;
            for (;;) {
                v = h + j;
                vl = (size_t)(h + i + len - v);
                fti__st_trim(&v, &vl);
                if (vl) {
                    if (out->len) fti_buf_putc(out, ' ');
                    fti_buf_append(out, v, vl);
                }
                i += len + 1;
                if (i >= n || (h[i] != ' ' && h[i] != '\t')) break;
                e = (const char *)memchr(h + i, '\n', n - i);
                len = e ? (size_t)(e - (h + i)) : n - i;
                j = i;
            }
            return 1;
        }
        i += len + 1;
    }
    return 0;
}

/* A parameter of a Content-Type-like value ("charset", "boundary"), appended to out. */
static int fti__st_mail_param(const char *v, size_t n, const char *name, fti_buf *out) {
    size_t i = 0, nl = strlen(name);
    while (i < n) {
        if (v[i] == ';') {
            size_t j = i + 1;
            while (j < n && (v[j] == ' ' || v[j] == '\t')) j++;
            if (n - j > nl && fti__st_starts_ci(v + j, n - j, name) && v[j + nl] == '=') {
                j += nl + 1;
                if (j < n && v[j] == '"') {
                    size_t k = ++j;
                    while (k < n && v[k] != '"') k++;
                    fti_buf_append(out, v + j, k - j);
                } else {
                    size_t k = j;
                    while (k < n && v[k] != ';' && v[k] != ' ' && v[k] != '\t') k++;
                    fti_buf_append(out, v + j, k - j);
                }
                return 1;
            }
        }
        i++;
    }
    return 0;
}

static int fti__st_b64_val(int c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* Decodes base64 (whitespace ignored); returns 0 on a bad character, bad padding or a length
 * that is not a multiple of 4. */
static int fti__st_b64_decode(const char *s, size_t n, fti_buf *out) {
    uint32_t acc = 0;
    size_t i, k = 0, pad = 0;
    for (i = 0; i < n; i++) {
        int c = (unsigned char)s[i], v;
        if (fti__st_is_space(c)) continue;
        if (c == '=') {
            pad++;
            k++;
            continue;
        }
        if (pad) return 0; /* data after padding */
        v = fti__st_b64_val(c);
        if (v < 0) return 0;
        acc = (acc << 6) | (uint32_t)v;
        k++;
        if ((k & 3) == 0) {
            char b[3];
            b[0] = (char)(acc >> 16);
            b[1] = (char)(acc >> 8);
            b[2] = (char)acc;
            fti_buf_append(out, b, 3);
            acc = 0;
        }
    }
    if (pad > 2 || (k & 3) != 0) return 0;
    if (pad) {
        size_t have = 4 - pad; /* chars of the last quantum */
        acc <<= 6 * pad;
        if (have >= 2) fti_buf_putc(out, (char)(acc >> 16));
        if (have >= 3) fti_buf_putc(out, (char)(acc >> 8));
    }
    return 1;
}

static int fti__st_hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    c = fti__st_lc(c);
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* Quoted-printable (underscore_space for RFC 2047 "Q"). Bad escapes stay literal. */
static void fti__st_qp_decode(const char *s, size_t n, int underscore_space, fti_buf *out) {
    size_t i = 0;
    while (i < n) {
        char c = s[i];
        if (c == '=') {
            if (i + 2 < n + 0 && fti__st_hexval((unsigned char)s[i + 1]) >= 0 &&
                fti__st_hexval((unsigned char)s[i + 2]) >= 0) {
                fti_buf_putc(out, (char)(fti__st_hexval((unsigned char)s[i + 1]) * 16 +
                                         fti__st_hexval((unsigned char)s[i + 2])));
                i += 3;
                continue;
            }
            if (i + 1 < n && s[i + 1] == '\n') {
                i += 2;
                continue;
            }
            if (i + 2 < n && s[i + 1] == '\r' && s[i + 2] == '\n') {
                i += 3;
                continue;
            }
            if (i + 1 == n) break; /* soft break at the very end */
        }
        if (c == '_' && underscore_space) c = ' ';
        fti_buf_putc(out, c);
        i++;
    }
}

/* Windows-1252 code points for bytes 0x80..0x9F (0 = undefined; Latin-1 otherwise). */
static const uint16_t fti__st_cp1252[32] = {
    0x20AC, 0,      0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
    0x2039, 0x0152, 0,      0x017D, 0,      0,      0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
    0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0,      0x017E, 0x0178};

/* Converts s from charset to UTF-8 (appended). UTF-8/ASCII/unknown: copied (repaired later). */
static void fti__st_charset_convert(const char *cs, size_t csn, const char *s, size_t n,
                                    fti_buf *out) {
    int latin9 = fti__st_eq_ci(cs, csn, "iso-8859-15") || fti__st_eq_ci(cs, csn, "latin9") ||
                 fti__st_eq_ci(cs, csn, "latin-9");
    int latin1 = fti__st_eq_ci(cs, csn, "iso-8859-1") || fti__st_eq_ci(cs, csn, "latin1") ||
                 fti__st_eq_ci(cs, csn, "latin-1") || latin9 ||
                 fti__st_eq_ci(cs, csn, "iso_8859-1") || fti__st_eq_ci(cs, csn, "l1");
    int w1252 = fti__st_eq_ci(cs, csn, "windows-1252") || fti__st_eq_ci(cs, csn, "cp1252");
    size_t i;
    if (!latin1 && !w1252) {
        fti_buf_append(out, s, n);
        return;
    }
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        uint32_t cp = c;
        if (c < 0x80) {
            fti_buf_putc(out, (char)c);
            continue;
        }
        if (c < 0xA0 && w1252) cp = fti__st_cp1252[c - 0x80] ? fti__st_cp1252[c - 0x80] : 0xFFFD;
        if (latin9) { /* ISO-8859-15: Latin-1 but for the euro sign and seven letters */
            static const unsigned char at[8] = {0xA4, 0xA6, 0xA8, 0xB4, 0xB8, 0xBC, 0xBD, 0xBE};
            static const uint16_t to[8] = {0x20AC, 0x160, 0x161, 0x17D, 0x17E, 0x152, 0x153, 0x178};
            size_t t;
            for (t = 0; t < 8; t++)
                if (c == at[t]) cp = to[t];
        }
        fti__st_put_cp(out, cp);
    }
}

/* Decodes RFC 2047 encoded words in a header value (appended to out). */
static void fti__st_rfc2047(const char *s, size_t n, fti_buf *out) {
    size_t i = 0;
    int last_encoded = 0;
    while (i < n) {
        if (s[i] == '=' && i + 1 < n && s[i + 1] == '?') {
            size_t a = i + 2, q1, q2, e;
            const char *p;
            /* an encoded word is at most 75 bytes (RFC 2047): the scans are capped, so a
             * hostile header of "=?a?b?..." stays linear */
            size_t lim = n - a > 128 ? a + 128 : n, elim;
            q1 = a;
            while (q1 < lim && s[q1] != '?') q1++;
            if (q1 < lim && q1 + 2 < n && s[q1 + 2] == '?') {
                q2 = q1 + 2;
                p = s + q2 + 1;
                e = q2 + 1;
                elim = n - e > 1024 ? e + 1024 : n;
                while (e + 1 < elim && !(s[e] == '?' && s[e + 1] == '=')) e++;
                if (e + 1 < elim) {
                    fti_buf raw;
                    char enc = (char)fti__st_lc((unsigned char)s[q1 + 1]);
                    int ok = 1;
                    memset(&raw, 0, sizeof raw);
                    if (enc == 'b')
                        ok = fti__st_b64_decode(p, (size_t)(s + e - p), &raw);
                    else if (enc == 'q')
                        fti__st_qp_decode(p, (size_t)(s + e - p), 1, &raw);
                    else
                        ok = 0;
                    if (ok) {
                        /* drop the blanks between two adjacent encoded words */
                        if (last_encoded) {
                            while (out->len && (out->data[out->len - 1] == ' ' ||
                                                out->data[out->len - 1] == '\t'))
                                out->len--;
                        }
                        {
                            /* charset may carry a language: "utf-8*en" */
                            size_t csn = q1 - a, k;
                            for (k = 0; k < csn; k++)
                                if (s[a + k] == '*') csn = k;
                            fti__st_charset_convert(s + a, csn, raw.data ? raw.data : "", raw.len,
                                                    out);
                        }
                        fti_buf_free(&raw);
                        i = e + 2;
                        last_encoded = 1;
                        continue;
                    }
                    fti_buf_free(&raw);
                }
            }
        }
        if (s[i] != ' ' && s[i] != '\t') last_encoded = 0;
        fti_buf_putc(out, s[i]);
        i++;
    }
}

static int fti__st_decode_text(const unsigned char *s, size_t n, fti_buf *conv);

/* A header value as UTF-8, appended to out: its raw 8-bit bytes (old mail programs wrote their
 * Windows text into headers unencoded) read as a text file's are (fti__st_decode_text), then
 * its RFC 2047 encoded words decoded. */
static void fti__st_mail_hdr_text(const char *s, size_t n, fti_buf *out) {
    fti_buf conv;
    memset(&conv, 0, sizeof conv);
    if (fti__st_decode_text((const unsigned char *)(s ? s : ""), n, &conv)) {
        s = conv.data ? conv.data : "";
        n = conv.len;
        if (conv.oom) out->oom = 1;
    }
    fti__st_rfc2047(s ? s : "", n, out);
    fti_buf_free(&conv);
}

/* Removes quoted replies, attributions and the signature from plain mail text. */
/* Is the line l an attribution ("On <date>, <name> wrote:" and its translations) or its
 * second half (Gmail wraps long ones before the address)? */
static int fti__st_mail_attribution(const char *l, size_t ln) {
    static const char *const ends[] = {"wrote:", "writes:", "crit :", "crit:", "schrieb:",
                                       "escribi\xc3\xb3:", "scrisse:", "skrev:", "schreef:",
                                       "napisa\xc5\x82:", "escreveu:"};
    static const char *const verbs[] = {" schrieb ", " schreef ", " skrev "}; /* then the name */
    size_t t;
    while (ln && (l[ln - 1] == ' ' || l[ln - 1] == '\t')) ln--;
    for (t = 0; t < sizeof ends / sizeof ends[0]; t++) {
        size_t el = strlen(ends[t]);
        if (ln >= el && fti__st_eq_ci(l + ln - el, el, ends[t])) return 1;
    }
    if (ln && l[ln - 1] == ':' && ln < 300)
        for (t = 0; t < sizeof verbs / sizeof verbs[0]; t++)
            if (fti__st_find_ci(l, ln, verbs[t]) < ln) return 1;
    return 0;
}

/* Does the line at s[i..] start with name (case-insensitive)? */
static int fti__st_line_starts(const char *s, size_t n, size_t i, const char *name) {
    return i < n && fti__st_starts_ci(s + i, n - i, name);
}

/* Is the (short) line l, from its first non-blank k, the line a phone's or a mail service's
 * program adds below the text ("Sent from my iPhone", "Get Outlook for iOS", "Sent from Mail for
 * Windows", "Sent with Proton Mail secure email.", and the iPhone's in the languages of the
 * attributions)? */
static int fti__st_mail_sent_from(const char *l, size_t ln, size_t k) {
    static const char *const starts[] = {
        "sent from my ", "get outlook for ", "sent from mail for windows", "sent from yahoo mail",
        "sent from outlook", "sent with proton", "envoy\xc3\xa9 de mon ", "enviado desde mi ",
        "enviado do meu ", "inviato da iphone", "inviato dal mio ", "verzonden vanaf mijn ",
        "verstuurd vanaf mijn ", "skickat fr\xc3\xa5n min ", "sendt fra min ",
        "wys\xc5\x82" "ane z mojego ", NULL};
    size_t t;
    for (t = 0; starts[t]; t++)
        if (fti__st_line_starts(l, ln, k, starts[t])) return 1;
    /* "Von meinem iPhone gesendet" */
    return fti__st_line_starts(l, ln, k, "von meinem ") && fti__st_find_ci(l, ln, " gesendet") < ln;
}

/* The author's own text of a mail body: stops at the signature ("-- "), a phone's "Sent from
 * my ..." line, or where a forwarded or quoted message begins ("-----Original Message-----",
 * Gmail's "---------- Forwarded message ---------", Apple's "Begin forwarded message:",
 * Outlook's "From: / Sent:" header block, after a line of underscores or not); drops quoted
 * lines ("> ") and the attribution line(s) before a quote. ">From " is mbox's escape of a line
 * of the author's own that began with "From ": unescaped. An inline PGP signed message (RFC
 * 4880's cleartext signature) is its text: the armor line and its "Hash:" headers go, the
 * dash-escaped lines ("- -- " is the signature's "-- ") are unescaped and the signature block
 * ends it; an encrypted block ("-----BEGIN PGP MESSAGE-----") is no text of anyone's. */
static void fti__st_mail_strip(const char *s, size_t n, fti_buf *out) {
    size_t i = 0;
    int pgp = 0; /* inside a cleartext signed message */
    while (i < n) {
        const char *e = (const char *)memchr(s + i, '\n', n - i);
        size_t len = e ? (size_t)(e - (s + i)) : n - i, k = 0, next = i + len + 1;
        const char *l = s + i;
        size_t ln = len, lt;
        if (ln && l[ln - 1] == '\r') ln--;
        lt = ln; /* armor lines may end in blanks */
        while (lt && (l[lt - 1] == ' ' || l[lt - 1] == '\t')) lt--;
        if (fti__st_eq_ci(l, lt, "-----begin pgp signed message-----")) {
            pgp = 1; /* the armor headers up to the blank line go with it */
            while (next < n && s[next] != '\n' && s[next] != '\r') {
                e = (const char *)memchr(s + next, '\n', n - next);
                next = e ? (size_t)(e - s) + 1 : n;
            }
            while (next < n && (s[next] == '\r' || s[next] == '\n')) next++;
            i = next;
            continue;
        }
        if (fti__st_eq_ci(l, lt, "-----begin pgp message-----")) { /* to its end line */
            size_t end = fti__st_find_ci(s + i, n - i, "-----end pgp message-----");
            if (end >= n - i) break;
            e = (const char *)memchr(s + i + end, '\n', n - i - end);
            i = e ? (size_t)(e - s) + 1 : n;
            continue;
        }
        if (pgp && fti__st_eq_ci(l, lt, "-----begin pgp signature-----")) break;
        if (pgp && ln >= 2 && l[0] == '-' && l[1] == ' ') l += 2, ln -= 2; /* the dash escape */
        while (k < ln && (l[k] == ' ' || l[k] == '\t')) k++;
        if ((ln == 3 && memcmp(l, "-- ", 3) == 0) || (ln == 2 && memcmp(l, "--", 2) == 0) ||
            fti__st_find_ci(l, ln, "-----original message-----") < ln ||
            (ln >= 5 && fti__st_find_ci(l, ln, "begin forwarded message") < ln) ||
            (k + 3 < ln && l[k] == '-' && l[k + 1] == '-' &&
             fti__st_find_ci(l, ln, "forwarded message") < ln) ||
            (ln < 60 && fti__st_mail_sent_from(l, ln, k)))
            break;
        if (ln - k >= 10 && l[k] == '_' && l[ln - 1] == '_') { /* Outlook's rule, then headers */
            size_t u = k;
            while (u < ln && l[u] == '_') u++;
            if (u == ln && fti__st_line_starts(s, n, next, "from:")) break;
        }
        if (fti__st_line_starts(l, ln, k, "from:") && next < n) { /* "From: x" then "Sent:" */
            const char *e2 = (const char *)memchr(s + next, '\n', n - next);
            size_t n2 = e2 ? (size_t)(e2 - s) : n;
            size_t k2 = next;
            while (k2 < n2 && (s[k2] == ' ' || s[k2] == '\t')) k2++;
            if (fti__st_line_starts(s, n2, k2, "sent:") || fti__st_line_starts(s, n2, k2, "date:"))
                break;
        }
        if (k < ln && l[k] == '>') {
            if (k + 5 < ln && memcmp(l + k, ">From ", 6) == 0) { /* mbox's escape */
                fti_buf_append(out, l + k + 1, ln - k - 1);
                fti_buf_putc(out, '\n');
            }
            i = next;
            continue;
        }
        /* an attribution directly before a quote; Gmail's may take two lines */
        {
            size_t skip = 0;
            if (fti__st_mail_attribution(l, ln)) {
                skip = next;
            } else if (ln >= 3 && fti__st_line_starts(l, ln, k, "on ") && next < n) {
                const char *e2 = (const char *)memchr(s + next, '\n', n - next);
                size_t n2 = e2 ? (size_t)(e2 - s) : n, l2 = n2 - next;
                if (l2 && s[next + l2 - 1] == '\r') l2--;
                if (l2 < 200 && fti__st_mail_attribution(s + next, l2)) skip = n2 + 1;
            }
            if (skip) {
                size_t j = skip;
                while (j < n && (s[j] == ' ' || s[j] == '\t' || s[j] == '\r' || s[j] == '\n')) j++;
                if (j >= n || s[j] == '>') { /* the blank lines before the quote go too */
                    i = j;
                    continue;
                }
            }
        }
        fti_buf_append(out, l, ln);
        fti_buf_putc(out, '\n');
        i = next;
    }
}

/* An HTML mail body up to where the quoted or forwarded message begins (Gmail's gmail_quote,
 * Apple Mail's and Thunderbird's <blockquote type="cite">, Outlook's divRplyFwdMsg /
 * appendonsend, Yahoo's yahoo_quoted): the length of the author's part. (Other <blockquote>s
 * are left out when it becomes text, as in every HTML field: fti__st_html_own.) */
static size_t fti__st_mail_html_own(const char *h, size_t n) {
    static const char *const marks[] = {"class=\"gmail_quote", "<blockquote type=\"cite\"",
                                        "id=\"divrplyfwdmsg\"", "id=\"appendonsend\"",
                                        "class=\"moz-cite-prefix\"", "class=\"yahoo_quoted"};
    size_t t, cut = n;
    for (t = 0; t < sizeof marks / sizeof marks[0]; t++) {
        size_t p = fti__st_find_ci(h, n, marks[t]);
        if (p < cut) cut = p;
    }
    if (cut < n) { /* back to the start of the tag holding the mark */
        while (cut > 0 && h[cut] != '<') cut--;
    }
    return cut;
}

typedef struct fti__st_mail_text {
    fti_buf plain, html;
    int have_plain, have_html;
    int plain_flowed, plain_delsp; /* the text/plain part is format=flowed (RFC 3676) */
    int oom;                /* an allocation failed somewhere in the walk */
    const char *error_rule; /* set on a malformed message */
    char error[160];
} fti__st_mail_text;

/* Walks one MIME entity (headers + body) collecting the first text/plain and text/html. */
static void fti__st_mail_entity(const char *m, size_t n, int depth, fti__st_mail_text *mt);

static void fti__st_mail_body(const char *hdr, size_t hn, const char *body, size_t bn, int depth,
                              fti__st_mail_text *mt) {
    fti_buf ct, cte, cs, bnd, disp, dec;
    size_t tl;
    memset(&ct, 0, sizeof ct);
    memset(&cte, 0, sizeof cte);
    memset(&cs, 0, sizeof cs);
    memset(&bnd, 0, sizeof bnd);
    memset(&disp, 0, sizeof disp);
    memset(&dec, 0, sizeof dec);
    fti__st_mail_header(hdr, hn, "content-type", &ct);
    fti__st_mail_header(hdr, hn, "content-transfer-encoding", &cte);
    fti__st_mail_header(hdr, hn, "content-disposition", &disp);
    for (tl = 0; tl < ct.len && ct.data[tl] != ';' && ct.data[tl] != ' '; tl++) {
    }
    if (ct.len == 0) {
        fti_buf_puts(&ct, "text/plain");
        tl = ct.len;
    }
    if (disp.len && fti__st_starts_ci(disp.data, disp.len, "attachment")) goto done;
    /* a part of a multipart with a file name is a file ("inline; filename=notes.txt"), not the
     * body, even when the mail client shows it inline */
    if (depth > 0 && disp.len && fti__st_find_ci(disp.data, disp.len, "filename") < disp.len)
        goto done;
    if (tl >= 10 && fti__st_starts_ci(ct.data, tl, "multipart/")) {
        size_t pos = 0, part_start = (size_t)-1;
        int closed = 0;
        if (depth >= FTI_STORE_MAX_MAIL_DEPTH) {
            mt->error_rule = "mail_malformed";
            snprintf(mt->error, sizeof mt->error, "multipart nested deeper than %d levels",
                     FTI_STORE_MAX_MAIL_DEPTH);
            goto done;
        }
        if (!fti__st_mail_param(ct.data, ct.len, "boundary", &bnd) || bnd.len == 0 ||
            bnd.len > 200) {
            mt->error_rule = "mail_malformed";
            snprintf(mt->error, sizeof mt->error, "multipart without a boundary");
            goto done;
        }
        /* delimiter lines: "--boundary" (part follows) or "--boundary--" (end) */
        while (pos < bn) {
            const char *e = (const char *)memchr(body + pos, '\n', bn - pos);
            size_t len = e ? (size_t)(e - (body + pos)) : bn - pos;
            const char *l = body + pos;
            int is_delim = 0, end = 0;
            if (len >= 2 + bnd.len && l[0] == '-' && l[1] == '-' &&
                memcmp(l + 2, bnd.data, bnd.len) == 0) {
                /* "--boundary" or "--boundary--", then only blanks */
                size_t q = 2 + bnd.len;
                if (len >= q + 2 && l[q] == '-' && l[q + 1] == '-') end = 1, q += 2;
                while (q < len && (l[q] == ' ' || l[q] == '\t' || l[q] == '\r')) q++;
                is_delim = q == len;
            }
            if (is_delim) {
                if (part_start != (size_t)-1) {
                    size_t pe = pos;
                    if (pe > part_start && body[pe - 1] == '\n') pe--;
                    if (pe > part_start && body[pe - 1] == '\r') pe--;
                    fti__st_mail_entity(body + part_start, pe - part_start, depth + 1, mt);
                    if (mt->error_rule) goto done;
                }
                if (end) {
                    closed = 1;
                    break;
                }
                part_start = e ? pos + len + 1 : bn;
            }
            pos += len + 1;
        }
        if (!closed) {
            mt->error_rule = "mail_truncated";
            snprintf(mt->error, sizeof mt->error,
                     "multipart ends without its closing boundary (truncated?)");
        }
        goto done;
    }
    if (!(tl >= 5 && fti__st_starts_ci(ct.data, tl, "text/"))) goto done; /* images etc. */
    {
        int is_html = fti__st_eq_ci(ct.data, tl, "text/html");
        int is_plain = fti__st_eq_ci(ct.data, tl, "text/plain");
        fti_buf *dst;
        if (!is_html && !is_plain) goto done;
        if ((is_html && mt->have_html) || (is_plain && mt->have_plain)) goto done;
        {
            const char *v = cte.data ? cte.data : "";
            size_t vn = cte.len;
            fti__st_trim(&v, &vn);
            if (fti__st_eq_ci(v, vn, "base64")) {
                if (!fti__st_b64_decode(body, bn, &dec)) {
                    mt->error_rule = "mail_bad_base64";
                    snprintf(mt->error, sizeof mt->error, "invalid base64 in a %.*s part", (int)tl,
                             ct.data);
                    goto done;
                }
            } else if (fti__st_eq_ci(v, vn, "quoted-printable")) {
                fti__st_qp_decode(body, bn, 0, &dec);
            } else {
                fti_buf_append(&dec, body, bn);
            }
        }
        fti__st_mail_param(ct.data, ct.len, "charset", &cs);
        dst = is_html ? &mt->html : &mt->plain;
        if (cs.len == 0 || fti__st_eq_ci(cs.data, cs.len, "us-ascii") ||
            fti__st_eq_ci(cs.data, cs.len, "unknown-8bit")) {
            /* no charset, or one that 8-bit text cannot be in (old mail programs sent their
             * Windows text so): read as a text file is, Windows-1252 when mostly not UTF-8 */
            fti_buf conv;
            memset(&conv, 0, sizeof conv);
            if (fti__st_decode_text((const unsigned char *)(dec.data ? dec.data : ""), dec.len,
                                    &conv)) {
                fti_buf_append(dst, conv.data ? conv.data : "", conv.len);
                if (conv.oom) dst->oom = 1;
            } else {
                fti_buf_append(dst, dec.data ? dec.data : "", dec.len);
            }
            fti_buf_free(&conv);
        } else {
            fti__st_charset_convert(cs.data ? cs.data : "", cs.len, dec.data ? dec.data : "",
                                    dec.len, dst);
        }
        if (is_html) {
            mt->have_html = 1;
        } else {
            mt->have_plain = 1;
            cs.len = 0;
            mt->plain_flowed = fti__st_mail_param(ct.data, ct.len, "format", &cs) &&
                               fti__st_eq_ci(cs.data ? cs.data : "", cs.len, "flowed");
            cs.len = 0;
            mt->plain_delsp = fti__st_mail_param(ct.data, ct.len, "delsp", &cs) &&
                              fti__st_eq_ci(cs.data ? cs.data : "", cs.len, "yes");
        }
    }
done:
    if (ct.oom || cte.oom || cs.oom || bnd.oom || disp.oom || dec.oom || mt->plain.oom ||
        mt->html.oom)
        mt->oom = 1;
    fti_buf_free(&ct);
    fti_buf_free(&cte);
    fti_buf_free(&cs);
    fti_buf_free(&bnd);
    fti_buf_free(&disp);
    fti_buf_free(&dec);
}

static void fti__st_mail_entity(const char *m, size_t n, int depth, fti__st_mail_text *mt) {
    size_t body = 0, hn = fti__st_mail_split(m, n, &body);
    if (hn == (size_t)-1) {
        /* a part with no blank line: all headers, empty body (tolerated inside multipart) */
        if (depth > 0) return;
        mt->error_rule = "mail_truncated";
        snprintf(mt->error, sizeof mt->error, "no blank line after the headers (truncated?)");
        return;
    }
    fti__st_mail_body(m, hn, m + body, n - body, depth, mt);
}

/* Does the header block start like mail headers ("Name: value")? */
static int fti__st_mail_looks_headers(const char *h, size_t n) {
    size_t i = 0;
    while (i < n && h[i] != ':' && h[i] != '\n' && h[i] != ' ' && (unsigned char)h[i] > 32 &&
           (unsigned char)h[i] < 127)
        i++;
    return i > 0 && i < n && h[i] == ':';
}

/* Author from a From header: the display name if any, else the address. */
static char *fti__st_mail_author(const char *v, size_t n) {
    const char *lt = (const char *)memchr(v, '<', n);
    if (lt && lt > v) {
        const char *a = v;
        size_t an = (size_t)(lt - v);
        fti__st_trim(&a, &an);
        if (an >= 2 && a[0] == '"' && a[an - 1] == '"') a++, an -= 2;
        if (an) return fti__st_meta_str(a, an, 200);
    }
    if (lt) {
        const char *gt = (const char *)memchr(lt, '>', n - (size_t)(lt - v));
        if (gt) return fti__st_meta_str(lt + 1, (size_t)(gt - lt - 1), 200);
    }
    return fti__st_meta_str(v, n, 200);
}

/* The address of a From header ("Ann Lee <Ann@Example.com>" or a bare "ann@example.com") in
 * lower case, or NULL (none, or no '@' in it). */
static char *fti__st_mail_addr(const char *v, size_t n) {
    const char *a = v, *lt = (const char *)memchr(v, '<', n), *gt;
    size_t an = n, i;
    char *out;
    if (lt && (gt = (const char *)memchr(lt, '>', n - (size_t)(lt - v))) != NULL)
        a = lt + 1, an = (size_t)(gt - lt - 1);
    fti__st_trim(&a, &an);
    if (!an || an > 254 || !memchr(a, '@', an)) return NULL;
    for (i = 0; i < an; i++)
        if (a[i] == ' ' || a[i] == '<' || a[i] == '>' || a[i] == '"') return NULL;
    out = fti_strndup(a, an);
    for (i = 0; out && i < an; i++) out[i] = (char)fti__st_lc((unsigned char)out[i]);
    return out;
}

/* RFC 2822 date ("Tue, 3 Mar 2020 10:04:05 +0100") to "2020-03-03T10:04:05+0100"; else the
 * trimmed text. */
static char *fti__st_mail_date(const char *v, size_t n) {
    static const char *const months[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                         "jul", "aug", "sep", "oct", "nov", "dec"};
    char tmp[200], mon[4], zone[8];
    int d = 0, y = 0, hh = 0, mm = 0, ss = 0, k, mi = -1;
    const char *p;
    size_t m = n < sizeof tmp - 1 ? n : sizeof tmp - 1;
    if (!v || n == 0) return NULL; /* "Date:" with an empty value */
    memcpy(tmp, v, m);
    tmp[m] = 0;
    p = strchr(tmp, ',');
    p = p ? p + 1 : tmp;
    zone[0] = 0;
    k = sscanf(p, "%d %3s %d %d:%d:%d %7s", &d, mon, &y, &hh, &mm, &ss, zone);
    if (k < 5) {
        k = sscanf(p, "%d %3s %d %d:%d %7s", &d, mon, &y, &hh, &mm, zone);
        ss = 0;
        if (k >= 5) k = 6 + (k == 6);
    }
    if (k >= 5) {
        int i;
        for (i = 0; i < 12; i++)
            if (fti__st_eq_ci(mon, strlen(mon), months[i])) mi = i;
    }
    if (mi >= 0 && y >= 1900 && y <= 9999 && d >= 1 && d <= 31 &&
        d <= fti__st_month_days(y, mi + 1) && hh >= 0 && hh < 24 && mm >= 0 && mm < 60 &&
        ss >= 0 && ss < 61) {
        char out[48];
        int zok = (zone[0] == '+' || zone[0] == '-') && strlen(zone) == 5;
        snprintf(out, sizeof out, "%04d-%02d-%02dT%02d:%02d:%02d%s", y, mi + 1, d, hh, mm, ss,
                 zok ? zone : "");
        return fti_strdup(out);
    }
    return fti__st_meta_str(v, n, 64);
}

/* Is path a mail folder of sent messages (its own name or its folder's, extension aside:
 * Thunderbird's "Sent", Outlook's "Sent Items", Apple Mail's "Sent Messages.mbox/mbox", "Sent
 * Mail", and their names in German, French, Spanish, Italian, Portuguese, Dutch, Swedish,
 * Danish, Norwegian and Polish mail programs)? Its messages are the owner's own: kind "sent".
 * (Names compared with ASCII letters in any case; other letters as listed.) */
static int fti__st_sent_folder(const char *path) {
    static const char *const names[] = {
        "sent", "sent items", "sent messages", "sent mail", "gesendet", "gesendete elemente",
        "gesendete objekte", "envoy\xc3\xa9s", "\xc3\xa9l\xc3\xa9ments envoy\xc3\xa9s",
        "\xc3\x89l\xc3\xa9ments envoy\xc3\xa9s", "messages envoy\xc3\xa9s", "enviados",
        "elementos enviados", "mensajes enviados", "inviati", "posta inviata", "itens enviados",
        "enviadas", "verzonden", "verzonden items", "skickat", "skickade objekt", "sendt",
        "sendte elementer", "sendte", "wys\xc5\x82" "ane", "elementy wys\xc5\x82" "ane", NULL};
    size_t n = strlen(path), level, i;
    for (level = 0; level < 2 && n > 0; level++) {
        size_t e = n, b;
        while (e > 0 && path[e - 1] == '/') e--;
        b = e;
        while (b > 0 && path[b - 1] != '/') b--;
        n = b; /* the next level: the folder */
        {
            const char *nm = path + b;
            size_t len = e - b;
            if (len > 5 && fti__st_eq_ci(nm + len - 5, 5, ".mbox")) len -= 5;
            else if (len > 4 && (fti__st_eq_ci(nm + len - 4, 4, ".mbx") ||
                                 fti__st_eq_ci(nm + len - 4, 4, ".eml")))
                len -= 4;
            for (i = 0; names[i]; i++)
                if (fti__st_eq_ci(nm, len, names[i])) return 1;
        }
    }
    return 0;
}

/* One mail message m[0..n) ("From " envelope line allowed at the start). */
static void fti__st_ingest_mail(const fti__st_proc *pp, fti__st_out *o, uint32_t file,
                                const char *loc, const char *m, size_t n, const char *kind) {
    const char *raw = m;
    size_t raw_len = n, hn, body = 0;
    fti__st_mail_text mt;
    fti_buf subj, from, date, text, dec;
    int flags = pp->o->redact >= 0 ? FTI_CLEAN_REDACT_ALL : 0;
    if (n >= 5 && memcmp(m, "From ", 5) == 0) {
        const char *e = (const char *)memchr(m, '\n', n);
        size_t skip = e ? (size_t)(e - m) + 1 : n;
        m += skip;
        n -= skip;
    }
    hn = fti__st_mail_split(m, n, &body);
    if (!fti__st_mail_looks_headers(m, n)) {
        fti__st_reject(o, file, loc, "mail_malformed", "does not start with mail headers");
        return;
    }
    if (hn == (size_t)-1) {
        fti__st_reject(o, file, loc, "mail_truncated",
                       "no blank line after the headers (truncated?)");
        return;
    }
    memset(&mt, 0, sizeof mt);
    memset(&subj, 0, sizeof subj);
    memset(&from, 0, sizeof from);
    memset(&date, 0, sizeof date);
    memset(&text, 0, sizeof text);
    memset(&dec, 0, sizeof dec);
    fti__st_mail_body(m, hn, m + body, n - body, 0, &mt);
    if (mt.oom) { /* out of memory is not a malformed message: the ingest fails */
        o->oom = 1;
        goto done;
    }
    if (mt.error_rule) {
        fti__st_reject(o, file, loc, mt.error_rule, "%s", mt.error);
        goto done;
    }
    if (mt.have_plain) { /* its hard-wrapped paragraphs joined, as in a post */
        fti_buf t2;
        memset(&t2, 0, sizeof t2);
        fti__st_mail_strip(mt.plain.data ? mt.plain.data : "", mt.plain.len, &t2);
        fti__st_unwrap(t2.data ? t2.data : "", t2.len, mt.plain_flowed, mt.plain_delsp, &text);
        if (t2.oom) text.oom = 1;
        fti_buf_free(&t2);
    } else if (mt.have_html) {
        fti_buf t2;
        memset(&t2, 0, sizeof t2);
        fti__st_html_own(mt.html.data ? mt.html.data : "",
                         fti__st_mail_html_own(mt.html.data ? mt.html.data : "", mt.html.len), &t2);
        fti__st_mail_strip(t2.data ? t2.data : "", t2.len, &text);
        if (t2.oom) text.oom = 1;
        fti_buf_free(&t2);
    } else {
        fti__st_reject(o, file, loc, "no_text", "no text/plain or text/html part");
        goto done;
    }
    {
        char *title = NULL, *author = NULL, *dt = NULL;
        if (fti__st_mail_header(m, hn, "subject", &subj)) {
            fti__st_mail_hdr_text(subj.data, subj.len, &dec);
            title = fti__st_meta_str(dec.data, dec.len, 200);
        }
        if (fti__st_mail_header(m, hn, "from", &from)) {
            dec.len = 0;
            fti__st_mail_hdr_text(from.data, from.len, &dec);
            author = fti__st_mail_author(dec.data ? dec.data : "", dec.len);
            /* the whole From: (name and address) against the authors to keep */
            if (!dec.oom && !fti__st_author_kept(pp->o, dec.data ? dec.data : "", dec.len)) {
                fti__st_reject(o, file, loc, "other_author",
                               "sender \"%.80s\" is not one of --authors", author ? author : "");
                fti_free(title);
                fti_free(author);
                goto done;
            }
        }
        if (fti__st_mail_header(m, hn, "date", &date)) dt = fti__st_mail_date(date.data, date.len);
        date.len = 0; /* Gmail's labels: the owner's own mail is "Sent" */
        if (strcmp(kind, "mbox") == 0 && fti__st_mail_header(m, hn, "x-gmail-labels", &date) &&
            fti__st_list_pos(date.data ? date.data : "", "sent", 4) >= 0)
            kind = "sent";
        if (text.oom || subj.oom || from.oom || date.oom || dec.oom) {
            o->oom = 1;
            fti_free(title);
            fti_free(author);
            fti_free(dt);
            goto done;
        }
        {
            size_t before = o->n_docs;
            fti__st_emit(pp, o, file, loc, raw, raw_len, text.data ? text.data : "", text.len,
                         flags, title, author, dt, fti_strdup(kind));
            if (o->n_docs > before && from.len) /* the owner filter's: not in the dataset */
                o->docs[o->n_docs - 1].addr =
                    fti__st_mail_addr(dec.data ? dec.data : "", dec.len);
        }
    }
done:
    fti_buf_free(&mt.plain);
    fti_buf_free(&mt.html);
    fti_buf_free(&subj);
    fti_buf_free(&from);
    fti_buf_free(&date);
    fti_buf_free(&text);
    fti_buf_free(&dec);
}

/* Offsets of the messages of an mbox: "From " at the start of the file or of a line that
 * follows a blank line. Returns the count; starts gets up to max offsets (NULL to count). */
static size_t fti__st_mbox_starts(const char *s, size_t n, size_t *starts, size_t max) {
    size_t i = 0, k = 0;
    while (i < n) {
        if (n - i >= 5 && memcmp(s + i, "From ", 5) == 0 &&
            (i == 0 || (i >= 2 && s[i - 1] == '\n' &&
                        (s[i - 2] == '\n' || (i >= 3 && s[i - 2] == '\r' && s[i - 3] == '\n'))))) {
            if (starts && k < max) starts[k] = i;
            k++;
        }
        {
            const char *e = (const char *)memchr(s + i, '\n', n - i);
            if (!e) break;
            i = (size_t)(e - s) + 1;
        }
    }
    return k;
}

/* === one file or part of one ============================================================ */

/* A unit of work: a whole file, or a range of lines (JSONL) / messages (mbox) of one. */
typedef struct fti__st_unit {
    uint32_t file;
    fti__st_kind kind;
    size_t off, len; /* byte range in the file */
    size_t first_no; /* first line number (JSONL) or message number (mbox) */
} fti__st_unit;

/* Text files in the encodings people's old files have: UTF-16 with a byte-order mark (Windows
 * "Unicode" text) and, when the bytes are mostly not UTF-8, Windows-1252 (a superset of
 * Latin-1's printable characters, the usual encoding of older Windows and web files), decoded
 * to UTF-8 into conv. Returns 1 if conv holds the text, 0 if s is used as it is (UTF-8, or
 * mostly so: the cleaner repairs stray bytes). */
static int fti__st_decode_text(const unsigned char *s, size_t n, fti_buf *conv) {
    size_t i = 0, good = 0, bad = 0;
    if (n >= 2 && ((s[0] == 0xFF && s[1] == 0xFE) || (s[0] == 0xFE && s[1] == 0xFF))) {
        int le = s[0] == 0xFF;
        for (i = 2; i + 1 < n; i += 2) {
            uint32_t c = le ? (uint32_t)s[i] | (uint32_t)s[i + 1] << 8
                            : (uint32_t)s[i] << 8 | (uint32_t)s[i + 1];
            if (c >= 0xD800 && c < 0xDC00 && i + 3 < n) { /* a surrogate pair */
                uint32_t d = le ? (uint32_t)s[i + 2] | (uint32_t)s[i + 3] << 8
                                : (uint32_t)s[i + 2] << 8 | (uint32_t)s[i + 3];
                if (d >= 0xDC00 && d < 0xE000) {
                    c = 0x10000 + ((c - 0xD800) << 10) + (d - 0xDC00);
                    i += 2;
                }
            }
            fti__st_put_cp(conv, c >= 0xD800 && c < 0xE000 ? 0xFFFD : c);
        }
        return 1;
    }
    if (fti_utf8_valid_prefix(s, n) == n) return 0;
    while (i < n) { /* valid multi-byte characters against bytes that start none */
        uint32_t cp;
        int ok;
        size_t k = fti_utf8_decode(s + i, n - i, &cp, &ok);
        if (!ok) bad++;
        else if (cp >= 0x80) good++;
        i += k ? k : 1;
    }
    if (bad <= good) return 0;
    fti__st_charset_convert("windows-1252", 12, (const char *)s, n, conv);
    return 1;
}

/* A text unit (txt, md, html, csv) as UTF-8 in [*s, *s + *n): decoded into conv when it is
 * UTF-16 or Windows-1252 (fti__st_decode_text); returns 0 (conv freed) when it is rejected as
 * binary or out of memory, else 1 with conv for the caller to free. */
static int fti__st_unit_text(fti__st_out *o, uint32_t file, const char **s, size_t *n,
                             fti_buf *conv) {
    char why[160];
    const unsigned char *u = (const unsigned char *)*s;
    int bom16 = *n >= 2 && ((u[0] == 0xFF && u[1] == 0xFE) || (u[0] == 0xFE && u[1] == 0xFF));
    memset(conv, 0, sizeof *conv);
    /* the file's own bytes (the reason counts them, not Windows-1252's UTF-8 of them); UTF-16
     * has NULs of its own and is judged once decoded */
    if (!bom16 && fti__st_looks_binary(u, *n, why, sizeof why)) {
        fti__st_reject(o, file, "", "binary", "%s", why);
        return 0;
    }
    if (fti__st_decode_text((const unsigned char *)*s, *n, conv)) {
        if (conv->oom) {
            o->oom = 1;
            fti_buf_free(conv);
            return 0;
        }
        *s = conv->data ? conv->data : "";
        *n = conv->len;
    }
    if (bom16 && fti__st_looks_binary((const unsigned char *)*s, *n, why, sizeof why)) {
        fti__st_reject(o, file, "", "binary", "%s", why);
        fti_buf_free(conv);
        return 0;
    }
    return 1;
}

/* === page metadata: Markdown's front matter, HTML's <meta> and microformats ================ */

/* The value of attribute name (lowercase) in the tag t[0..n) (from its '<' to its '>'), *vn its
 * length; NULL if the tag has none. */
static const char *fti__st_attr(const char *t, size_t n, const char *name, size_t *vn) {
    size_t i = 1;
    while (i < n && !fti__st_is_space(t[i]) && t[i] != '>' && t[i] != '/') i++; /* the tag's name */
    while (i < n) {
        size_t a, an, v, e;
        while (i < n && (fti__st_is_space(t[i]) || t[i] == '/')) i++;
        if (i >= n || t[i] == '>') return NULL;
        a = i;
        while (i < n && !fti__st_is_space(t[i]) && t[i] != '=' && t[i] != '>' && t[i] != '/') i++;
        an = i - a;
        while (i < n && fti__st_is_space(t[i])) i++;
        if (i >= n || t[i] != '=') {
            if (an == 0) i++; /* never stuck */
            continue;
        }
        for (i++; i < n && fti__st_is_space(t[i]);) i++;
        if (i < n && (t[i] == '"' || t[i] == '\'')) {
            char q = t[i++];
            for (v = i; i < n && t[i] != q;) i++;
            e = i;
            if (i < n) i++;
        } else {
            for (v = i; i < n && !fti__st_is_space(t[i]) && t[i] != '>';) i++;
            e = i;
        }
        if (fti__st_eq_ci(t + a, an, name)) {
            *vn = e - v;
            return t + v;
        }
    }
    return NULL;
}

/* Does the space-separated list v[0..n) (a class attribute) hold word w (lowercase)? */
static int fti__st_has_word(const char *v, size_t n, const char *w) {
    size_t i = 0, m = strlen(w);
    while (i < n) {
        size_t j = i;
        while (j < n && !fti__st_is_space(v[j])) j++;
        if (j - i == m && fti__st_eq_ci(v + i, m, w)) return 1;
        while (j < n && fti__st_is_space(v[j])) j++;
        i = j;
    }
    return 0;
}

/* An attribute value or a text as metadata: references decoded, blanks collapsed; NULL when
 * empty or a link (article:author is often the author's page). */
static char *fti__st_page_value(const char *v, size_t n) {
    fti_buf dec;
    char *out;
    memset(&dec, 0, sizeof dec);
    fti__st_field_text(v, n, "html", 4, &dec);
    out = fti__st_meta_str(dec.data ? dec.data : "", dec.len, 200);
    fti_buf_free(&dec);
    if (out && (strncmp(out, "http://", 7) == 0 || strncmp(out, "https://", 8) == 0)) {
        fti_free(out);
        out = NULL;
    }
    return out;
}

/* The first run of text in s[0..n), tags skipped (the name inside <span class="p-author"><a>). */
static char *fti__st_page_text_after(const char *s, size_t n) {
    size_t i = 0, k = 0;
    while (i < n && k < 8) {
        size_t j;
        if (s[i] == '<') {
            i += fti__st_tag_end(s + i, n - i);
            k++;
            continue;
        }
        for (j = i; j < n && s[j] != '<';) j++;
        {
            const char *t = s + i;
            size_t tn = j - i;
            fti__st_trim(&t, &tn);
            if (tn) return fti__st_page_value(t, tn < 400 ? tn : 400);
        }
        i = j;
    }
    return NULL;
}

/* The text inside the element whose start tag is t[0..tn) and whose content and what follows
 * are s[0..n) (s == t + tn): its first run of text, up to its end tag (nested elements of the
 * same name counted; unclosed: up to the first end tag of any element). NULL when it holds none
 * or is empty: <link rel="author" href> and <meta> hold no text, so what follows them (the
 * page's <title>) is never their author. */
static char *fti__st_page_text_in(const char *t, size_t tn, const char *s, size_t n) {
    static const char *const voids[] = {"area",  "base", "br",    "col",   "embed",
                                        "hr",    "img",  "input", "link",  "meta",
                                        "param", "source", "track", "wbr", NULL};
    char name[16];
    size_t nm = fti__st_tag_name(t + 1, tn - 1), i = 0, any_close = n, k;
    int depth = 1;
    if (nm == 0 || nm >= sizeof name || fti__st_in_list(t + 1, nm, voids) ||
        (tn >= 2 && t[tn - 2] == '/'))
        return NULL;
    for (k = 0; k < nm; k++) name[k] = (char)fti__st_lc((unsigned char)t[1 + k]);
    name[nm] = 0;
    while (i < n) {
        const char *lt = (const char *)memchr(s + i, '<', n - i);
        size_t at, te;
        if (!lt) break;
        at = (size_t)(lt - s);
        te = fti__st_tag_end(lt, n - at);
        if (at + 1 < n && lt[1] == '/') {
            if (any_close == n) any_close = at;
            if (fti__st_tag_name(lt + 2, n - at - 2) == nm && fti__st_starts_ci(lt + 2, nm, name) &&
                --depth == 0)
                return fti__st_page_text_after(s, at);
        } else if (fti__st_tag_is(lt, te, name) && !(te >= 2 && lt[te - 2] == '/')) {
            depth++;
        }
        i = at + (te ? te : 1);
    }
    return fti__st_page_text_after(s, any_close);
}

/* An HTML page's date and author (each left alone when already set; the caller frees them):
 * <meta> (article:published_time, date, DC.date, ...; author, DC.creator, ...) first, then the
 * microformats and schema.org marks blogs and Medium's export use (<time class="dt-published"
 * datetime>, itemprop="datePublished"; class="p-author" or "author", itemprop="author",
 * rel="author": the text inside that element, never what follows it), then the page's first
 * <time datetime>. The site's name (og:site_name) goes to *site (NULL: none). */
static void fti__st_html_meta(const char *s, size_t n, char **date, char **author,
                              char **site) {
    static const char dates[] = "article:published_time,og:published_time,datepublished,date,"
                                "dc.date,dc.date.issued,dcterms.created,dcterms.date,pubdate,"
                                "publish-date,publishdate,sailthru.date,parsely-pub-date";
    static const char authors[] = "author,article:author,dc.creator,dcterms.creator,"
                                  "parsely-author,sailthru.author,twitter:creator";
    char *d_meta = NULL, *d_mark = NULL, *d_time = NULL, *a_meta = NULL, *a_mark = NULL;
    int d_pos = 1 << 30, a_pos = 1 << 30, a_tries = 0;
    size_t i = 0;
    const char *lt;
    while (i < n && (lt = (const char *)memchr(s + i, '<', n - i)) != NULL) {
        size_t at = (size_t)(lt - s), te, vn = 0, cn = 0, pn = 0;
        const char *v, *cls, *prop;
        if (n - at >= 4 && memcmp(lt, "<!--", 4) == 0) {
            size_t e = fti__st_find_ci(lt + 4, n - at - 4, "-->");
            i = e >= n - at - 4 ? n : at + 4 + e + 3;
            continue;
        }
        te = fti__st_tag_end(lt, n - at);
        i = at + te;
        if (te < 3 || lt[1] == '/' || lt[1] == '!') continue;
        if (fti__st_tag_is(lt, te, "script") || fti__st_tag_is(lt, te, "style")) {
            size_t e = fti__st_find_close(s + i, n - i, (lt[2] | 0x20) == 'c' ? "script" : "style");
            i = e >= n - i ? n : i + e;
            continue;
        }
        cls = fti__st_attr(lt, te, "class", &cn);
        prop = fti__st_attr(lt, te, "itemprop", &pn);
        if (fti__st_tag_is(lt, te, "meta")) {
            const char *key = fti__st_attr(lt, te, "property", &vn);
            size_t kn = vn;
            int pos;
            if (!key) key = fti__st_attr(lt, te, "name", &kn);
            if (!key) key = prop, kn = pn;
            v = fti__st_attr(lt, te, "content", &vn);
            if (!key || !v || !vn) continue;
            if (!*site && fti__st_eq_ci(key, kn, "og:site_name")) {
                *site = fti__st_page_value(v, vn);
                continue;
            }
            if ((pos = fti__st_list_pos(dates, key, kn)) >= 0 && pos < d_pos) {
                char *x = fti__st_page_value(v, vn);
                if (x) fti_free(d_meta), d_meta = x, d_pos = pos;
            } else if ((pos = fti__st_list_pos(authors, key, kn)) >= 0 && pos < a_pos) {
                char *x = fti__st_page_value(v, vn);
                if (x) fti_free(a_meta), a_meta = x, a_pos = pos;
            }
            continue;
        }
        if (fti__st_tag_is(lt, te, "time") &&
            (v = fti__st_attr(lt, te, "datetime", &vn)) != NULL && vn) {
            size_t pd = 0;
            int mark = (cls && (fti__st_has_word(cls, cn, "dt-published") ||
                                fti__st_has_word(cls, cn, "published"))) ||
                       (prop && fti__st_eq_ci(prop, pn, "datepublished")) ||
                       fti__st_attr(lt, te, "pubdate", &pd) != NULL;
            char **slot = mark ? &d_mark : &d_time;
            if (!*slot) *slot = fti__st_page_value(v, vn);
            continue;
        }
        if (!a_mark && a_tries < 8 &&
            ((cls && (fti__st_has_word(cls, cn, "p-author") ||
                      fti__st_has_word(cls, cn, "author"))) ||
             (prop && fti__st_eq_ci(prop, pn, "author")) ||
             ((v = fti__st_attr(lt, te, "rel", &vn)) != NULL &&
              fti__st_has_word(v, vn, "author")))) {
            a_tries++; /* each looks at most 4 KiB ahead, inside the marked element only */
            a_mark = fti__st_page_text_in(lt, te, s + i, n - i < 4096 ? n - i : 4096);
        }
    }
    if (!*date) *date = d_meta ? d_meta : d_mark ? d_mark : d_time;
    if (*date != d_meta) fti_free(d_meta);
    if (*date != d_mark) fti_free(d_mark);
    if (*date != d_time) fti_free(d_time);
    if (!*author) *author = a_meta ? a_meta : a_mark;
    if (*author != a_meta) fti_free(a_meta);
    if (*author != a_mark) fti_free(a_mark);
}

/* === page titles and bylines: what a page's template repeats ============================== */

/* Do a[0..an) and b[0..bn) read the same: ASCII and Latin letters in any case, any run of blanks
 * and line breaks as one, none at either end? ("Basic  syntax" and "basic syntax") */
static int fti__st_same_text(const char *a, size_t an, const char *b, size_t bn) {
    size_t i = 0, j = 0, la, lb;
    fti__st_trim(&a, &an);
    fti__st_trim(&b, &bn);
    while (i < an && j < bn) {
        int sa = fti__st_is_space((unsigned char)a[i]), sb = fti__st_is_space((unsigned char)b[j]);
        if (sa || sb) {
            if (!(sa && sb)) return 0;
            while (i < an && fti__st_is_space((unsigned char)a[i])) i++;
            while (j < bn && fti__st_is_space((unsigned char)b[j])) j++;
            continue;
        }
        if (fti__st_fold_at(a + i, an - i, &la) != fti__st_fold_at(b + j, bn - j, &lb)) return 0;
        i += la, j += lb;
    }
    return i == an && j == bn && an > 0;
}

/* Is the link a[0..an) (an href) the site's home page: "/", "/index.html", "./", or an
 * address with no path ("https://example.com/")? */
static int fti__st_home_href(const char *a, size_t an) {
    size_t i = 0;
    fti__st_trim(&a, &an);
    if (fti__st_eq_ci(a, an, "/") || fti__st_eq_ci(a, an, "./") ||
        fti__st_eq_ci(a, an, "/index.html") || fti__st_eq_ci(a, an, "index.html"))
        return 1;
    if (fti__st_starts_ci(a, an, "https://"))
        i = 8;
    else if (fti__st_starts_ci(a, an, "http://"))
        i = 7;
    else
        return 0;
    while (i < an && a[i] != '/') i++;
    return i + 1 >= an;
}

/* Counts the <header> elements (depth[0]) and the <article> and <main> ones (depth[1]) open
 * at each start and end tag of s[from..to). */
static void fti__st_html_depths(const char *s, size_t from, size_t to, int depth[2]) {
    while (from < to) {
        const char *lt = (const char *)memchr(s + from, '<', to - from);
        size_t at, c;
        if (!lt) return;
        at = (size_t)(lt - s);
        c = at + 1 < to && s[at + 1] == '/';
        from = at + 1;
        if (fti__st_tag_name(s + at + 1 + c, to - at - 1 - c) == 6 &&
            fti__st_starts_ci(s + at + 1 + c, to - at - 1 - c, "header"))
            depth[0] += c ? -1 : 1;
        else if ((fti__st_tag_name(s + at + 1 + c, to - at - 1 - c) == 7 &&
                  fti__st_starts_ci(s + at + 1 + c, to - at - 1 - c, "article")) ||
                 (fti__st_tag_name(s + at + 1 + c, to - at - 1 - c) == 4 &&
                  fti__st_starts_ci(s + at + 1 + c, to - at - 1 - c, "main")))
            depth[1] += c ? -1 : 1;
    }
}

/* The texts of the first 16 <h1> elements of the page s[0..n) (home 0; not one in the page's
 * <header> outside an <article> or <main>: a theme's site name), or of its first 32 links to
 * its home page (home 1: the site's name, as themes link it), as a reader sees them, each
 * ended by a NUL, appended to out. An element's text is looked for in the 4 KiB after its
 * start tag, so that a page of unclosed tags stays linear. */
static void fti__st_page_texts(const char *s, size_t n, int home, fti_buf *out) {
    const char *tag = home ? "<a" : "<h1", *name = home ? "a" : "h1";
    size_t i = 0, k = 0, cap = home ? 32 : 16, scanned = 0;
    int depth[2] = {0, 0};
    while (k < cap && i < n) {
        size_t at = fti__st_find_ci(s + i, n - i, tag), te, e, hn = 0, w;
        const char *href;
        if (at >= n - i) break;
        at += i;
        /* the name first: the end of a tag that is not one ("<ab", "<h1x" with no '>' after
         * them) would be looked for up to the page's end from each of them (quadratic) */
        if (!fti__st_tag_is(s + at, n - at, name)) {
            i = at + 2;
            continue;
        }
        te = fti__st_tag_end(s + at, n - at);
        i = at + te;
        if (home && (!(href = fti__st_attr(s + at, te, "href", &hn)) ||
                     !fti__st_home_href(href, hn)))
            continue;
        if (!home) {
            fti__st_html_depths(s, scanned, at, depth);
            scanned = at;
            if (depth[0] > 0 && depth[1] <= 0) continue;
        }
        w = n - i < 4096 ? n - i : 4096;
        e = fti__st_find_close(s + i, w, name);
        fti_html_to_text(s + i, e, out, NULL);
        fti_buf_putc(out, '\0');
        k++;
    }
}

/* Is q[0..qn) one of the NUL-ended texts of t (fti__st_page_texts)? */
static int fti__st_in_texts(const fti_buf *t, const char *q, size_t qn) {
    size_t i = 0;
    while (i < t->len) {
        size_t e = i + strlen(t->data + i);
        if (fti__st_same_text(t->data + i, e - i, q, qn)) return 1;
        i = e + 1;
    }
    return 0;
}

/* Is t[0..tn) the name of a page's site: its og:site_name, its author (who names a personal
 * site) or the text of a link to its home page (homes: fti__st_page_texts)? */
static int fti__st_site_name(const char *t, size_t tn, const char *site, const char *author,
                             const fti_buf *homes) {
    return (site && fti__st_same_text(t, tn, site, strlen(site))) ||
           (author && fti__st_same_text(t, tn, author, strlen(author))) ||
           fti__st_in_texts(homes, t, tn);
}

/* The article's own title in the title t of the page s[0..n) ("Basic syntax | Robin Hale"):
 * the part on one side of a separator (" | ", " - ", " :: ", " \xe2\x80\x94 ", " \xe2\x80\x93 ",
 * " \xc2\xb7 ", " \xc2\xbb ") when the other is the site's name (fti__st_site_name), or else when
 * it is the text of one of the page's <h1>s and the other is not. A site's name is never taken
 * for the title (a theme's <h1> in the header is often the site's name, linked home), a title
 * that is itself an <h1> is kept whole ("Tom - a life") and a part is never empty. Up to three
 * times ("Post | Blog | Ann": "Post | Blog", then "Post" when Blog is the site). Returns t, or
 * a new string in its place (t freed). */
static char *fti__st_title_cut(char *t, const char *site, const char *author, const char *s,
                               size_t n) {
    static const char *const seps[] = {" | ",          " - ",         " :: ", " \xe2\x80\x94 ",
                                       " \xe2\x80\x93 ", " \xc2\xb7 ", " \xc2\xbb ", NULL};
    int round;
    size_t sk;
    fti_buf h1s, homes;
    for (sk = 0; t && seps[sk] && !strstr(t, seps[sk]);) sk++;
    if (!t || !seps[sk]) return t; /* no separator: nothing to look for in the page */
    memset(&h1s, 0, sizeof h1s);
    memset(&homes, 0, sizeof homes);
    fti__st_page_texts(s, n, 0, &h1s);
    fti__st_page_texts(s, n, 1, &homes);
    if (h1s.oom || homes.oom || fti__st_in_texts(&h1s, t, strlen(t))) round = 3;
    else round = 0;
    for (; round < 3; round++) {
        size_t tn = strlen(t), p, keep_off = 0, keep_len = 0;
        for (p = 1; p + 2 < tn && !keep_len; p++) {
            size_t k, sl = 0, sn;
            const char *sx;
            int name_p, name_s;
            if (t[p] != ' ') continue;
            for (k = 0; seps[k] && !sl; k++)
                if (strncmp(t + p, seps[k], strlen(seps[k])) == 0) sl = strlen(seps[k]);
            if (!sl || p + sl >= tn) continue;
            sx = t + p + sl, sn = tn - p - sl;
            name_p = fti__st_site_name(t, p, site, author, &homes);
            name_s = fti__st_site_name(sx, sn, site, author, &homes);
            if (name_s && !name_p) {
                keep_off = 0, keep_len = p;
            } else if (name_p && !name_s) {
                keep_off = p + sl, keep_len = sn;
            } else if (!name_p && !name_s) {
                int h_p = fti__st_in_texts(&h1s, t, p), h_s = fti__st_in_texts(&h1s, sx, sn);
                if (h_p && !h_s)
                    keep_off = 0, keep_len = p;
                else if (h_s && !h_p)
                    keep_off = p + sl, keep_len = sn;
            }
        }
        if (!keep_len) break;
        {
            char *c = fti__st_meta_str(t + keep_off, keep_len, 200);
            if (!c) break;
            fti_free(t);
            t = c;
        }
    }
    fti_buf_free(&h1s);
    fti_buf_free(&homes);
    return t;
}

/* The first block (paragraph) of the text t[from..n): *b its start, returns its end (a line
 * break, blanks, and another line break end it; or the end of t). *b == n when none is left. */
static size_t fti__st_block_at(const char *t, size_t n, size_t from, size_t *b) {
    size_t i = from;
    while (i < n && fti__st_is_space((unsigned char)t[i])) i++;
    *b = i;
    for (; i < n; i++) {
        if (t[i] == '\n') {
            size_t j = i + 1;
            while (j < n && (t[j] == ' ' || t[j] == '\t' || t[j] == '\r')) j++;
            if (j >= n || t[j] == '\n') return i;
        }
    }
    return n;
}

/* Is s[0..n) a date (fti__st_norm_date's, or an ISO date alone)? Its form in out. */
static int fti__st_is_date(const char *s, size_t n, char out[32]) {
    fti__st_trim(&s, &n);
    if (fti__st_norm_date(s, n, out)) return 1;
    if (n == 10 && s[4] == '-' && s[7] == '-' && fti__st_num(s, 4) >= 1900 &&
        fti__st_num(s + 5, 2) >= 1 && fti__st_num(s + 5, 2) <= 12 && fti__st_num(s + 8, 2) >= 1 &&
        fti__st_num(s + 8, 2) <= fti__st_month_days(fti__st_num(s, 4), fti__st_num(s + 5, 2))) {
        memcpy(out, s, 10);
        out[10] = 0;
        return 1;
    }
    return 0;
}

/* s[0..*n) without separators and blanks at its end (or, start set, at its start): ",", "|",
 * "-", "\xc2\xb7", "\xe2\x80\xa2", "\xe2\x80\x94", "\xe2\x80\x93". */
static void fti__st_trim_seps(const char **s, size_t *n, int start) {
    static const char *const seps[] = {",", "|", "-", "\xc2\xb7", "\xe2\x80\xa2", "\xe2\x80\x94",
                                       "\xe2\x80\x93", NULL};
    size_t k = 1, t;
    while (k) {
        fti__st_trim(s, n);
        for (k = 0, t = 0; seps[t] && !k; t++) {
            size_t m = strlen(seps[t]);
            if (*n >= m && memcmp(start ? *s : *s + *n - m, seps[t], m) == 0) k = m;
        }
        if (start) *s += k;
        *n -= k;
    }
}

/* Does s[0..*n) start (at_end 0) or end (1) with the word w (lowercase ASCII), then (or before
 * it) a blank or the edge? Drops it when so. */
static int fti__st_take_word(const char **s, size_t *n, const char *w, int at_end) {
    size_t m = strlen(w);
    if (*n < m) return 0;
    if (!at_end) {
        if (!fti__st_starts_ci(*s, *n, w) || (*n > m && !fti__st_is_space((unsigned char)(*s)[m])))
            return 0;
        *s += m, *n -= m;
    } else {
        if (!fti__st_eq_ci(*s + *n - m, m, w) ||
            (*n > m && !fti__st_is_space((unsigned char)(*s)[*n - m - 1])))
            return 0;
        *n -= m;
    }
    fti__st_trim(s, n);
    return 1;
}

/* Is the paragraph b[0..bn) a byline of the page's author: her name alone, "by NAME", "NAME,
 * DATE", "by NAME on DATE", "Posted on DATE by NAME", "Written by NAME | DATE" and the like,
 * where what is not the name is only such words, separators and one date? Its date, if any,
 * in date ("" if none). Anything else is text: "By the way, Robin Hale said ..." is kept. */
static int fti__st_byline(const char *b, size_t bn, const char *author, char date[32]) {
    size_t an = author ? strlen(author) : 0, i;
    date[0] = 0;
    fti__st_trim(&b, &bn);
    if (!an || bn > 200 || bn < an) return 0;
    for (i = 0; i + an <= bn; i++) {
        const char *pre = b, *post = b + i + an;
        size_t pn = i, qn = bn - i - an;
        char d[32];
        int by = 0;
        if (i && fti__st_name_char((unsigned char)b[i - 1])) continue;
        if (qn && fti__st_name_char((unsigned char)post[0])) continue;
        if (!fti__st_starts_fold(b + i, bn - i, author, an)) continue;
        /* before the name: [posted|published|written|updated] [on DATE] [by] */
        fti__st_trim_seps(&pre, &pn, 0);
        by = fti__st_take_word(&pre, &pn, "by", 1);
        if (!fti__st_take_word(&pre, &pn, "posted", 0) &&
            !fti__st_take_word(&pre, &pn, "published", 0))
            fti__st_take_word(&pre, &pn, "written", 0);
        fti__st_take_word(&pre, &pn, "on", 0);
        fti__st_trim_seps(&pre, &pn, 0);
        if (pn && !(by && fti__st_is_date(pre, pn, date))) return 0;
        /* after it: [,|·|—] [on] [DATE] */
        fti__st_trim_seps(&post, &qn, 1);
        fti__st_take_word(&post, &qn, "on", 0);
        fti__st_trim_seps(&post, &qn, 0);
        if (qn && (date[0] || !fti__st_is_date(post, qn, d))) return 0;
        if (qn) memcpy(date, d, 32);
        return 1;
    }
    return 0;
}

/* Where the body text t[0..n) of a page titled title by author starts once what its template
 * repeats is left out: a first paragraph that reads as the title (the page's <h1>), then a
 * byline of the author right after it (fti__st_byline: also as the first paragraph); date gets
 * the byline's date (or ""). */
static size_t fti__st_page_start(const char *t, size_t n, const char *title, const char *author,
                                 char date[32]) {
    size_t b, e = fti__st_block_at(t, n, 0, &b), start = 0;
    date[0] = 0;
    if (b < n && title && fti__st_same_text(t + b, e - b, title, strlen(title))) {
        start = e;
        e = fti__st_block_at(t, n, e, &b);
    }
    if (b < n && fti__st_byline(t + b, e - b, author, date)) start = e;
    return start;
}

/* A Markdown page's date and author from its front matter: the keys of the date and author
 * field lists (the first listed wins), YAML ("date: 2020-03-03", "author: Ann", "authors:" with
 * "- Ann" or "[Ann, Bob]" or '["Ann"]' (Hugo's): the first; a " # comment" after a value goes)
 * or TOML ("date = 2020-03-03T10:00:00Z", "authors = ['Ann']"). */
static void fti__st_md_meta(const fti_ingest_opts *opt, const char *s, size_t n, char **date,
                            char **author) {
    size_t fm = fti__st_md_front_matter(s, n, NULL), i = 0;
    int d_pos = 1 << 30, a_pos = 1 << 30;
    if (!fm) return;
    while (i < fm && s[i] != '\n') i++; /* the opening fence */
    while (i < fm) {
        size_t b = ++i, e, kn, vs;
        const char *v;
        size_t vn;
        int dp, ap;
        while (i < fm && s[i] != '\n') i++;
        e = i;
        for (kn = 0; b + kn < e && (fti__st_is_word((unsigned char)s[b + kn]) || s[b + kn] == '-');)
            kn++;
        for (vs = b + kn; vs < e && (s[vs] == ' ' || s[vs] == '\t');) vs++;
        if (!kn || vs >= e || (s[vs] != ':' && s[vs] != '=')) continue;
        dp = fti__st_list_pos(opt->date_fields, s + b, kn);
        ap = fti__st_list_pos(opt->author_fields, s + b, kn);
        if (!((dp >= 0 && dp < d_pos) || (ap >= 0 && ap < a_pos))) continue;
        v = s + vs + 1;
        vn = e - vs - 1;
        fti__st_trim(&v, &vn);
        fti__st_md_uncomment(v, &vn);
        if (vn == 0 && e + 1 < fm) { /* a YAML list on the next lines: its first item */
            size_t j = e + 1, le = j;
            while (le < fm && s[le] != '\n') le++;
            v = s + j, vn = le - j;
            fti__st_trim(&v, &vn);
            if (vn < 2 || v[0] != '-' || v[1] != ' ') continue;
            v += 2, vn -= 2;
            fti__st_trim(&v, &vn);
            fti__st_md_uncomment(v, &vn);
        } else if (vn && v[0] == '[') { /* [Ann, Bob], ["Ann", "Bob"]: up to the first item's end */
            size_t j = 1;
            while (j < vn && fti__st_is_space((unsigned char)v[j])) j++;
            if (j < vn && (v[j] == '"' || v[j] == '\'')) { /* a quoted item may hold a ',' */
                const char *cq = (const char *)memchr(v + j + 1, v[j], vn - j - 1);
                j = cq ? (size_t)(cq - v) : vn;
            }
            while (j < vn && v[j] != ',' && v[j] != ']') j++;
            v++, vn = j - 1;
        }
        fti__st_trim(&v, &vn);
        if (vn >= 2 && (v[0] == '"' || v[0] == '\'') && v[vn - 1] == v[0]) v++, vn -= 2;
        if (!vn) continue;
        if (dp >= 0 && dp < d_pos) {
            fti_free(*date);
            *date = fti__st_meta_str(v, vn, 64);
            d_pos = dp;
        } else {
            fti_free(*author);
            *author = fti__st_meta_str(v, vn, 200);
            a_pos = ap;
        }
    }
}

static void fti__st_process_unit(const fti__st_proc *pp, const fti__st_unit *u, const char *path,
                                 const unsigned char *data, size_t size,
                                 const unsigned char *file_sha, fti__st_out *o) {
    const char *s = (const char *)data + u->off;
    size_t n = u->len;
    (void)size;
    o->file_data = (const char *)data;
    o->file_len = size;
    o->file_sha = file_sha;
    switch (u->kind) {
    case FTI__ST_K_TXT:
    case FTI__ST_K_MD:
    case FTI__ST_K_HTML: {
        fti_buf text, title, conv;
        char *t, *date = NULL, *author = NULL, *site = NULL;
        size_t from = 0; /* where the body starts: a page's heading and byline left out */
        if (!fti__st_unit_text(o, u->file, &s, &n, &conv)) return;
        memset(&text, 0, sizeof text);
        memset(&title, 0, sizeof title);
        if (u->kind == FTI__ST_K_HTML)
            fti_html_to_text(s, n, &text, &title);
        else if (u->kind == FTI__ST_K_MD)
            fti_markdown_to_text(s, n, &text, &title);
        else /* a note hard-wrapped by its editor reads as one written a paragraph per line */
            fti__st_unwrap(s, n, 0, 0, &text);
        if (u->kind == FTI__ST_K_HTML)
            fti__st_html_meta(s, n, &date, &author, &site);
        else if (u->kind == FTI__ST_K_MD)
            fti__st_md_meta(pp->o, s, n, &date, &author);
        if (text.oom || title.oom) {
            o->oom = 1;
        } else if (author && !fti__st_author_kept(pp->o, author, strlen(author))) {
            fti__st_reject(o, u->file, "", "other_author",
                           "author \"%.80s\" is not one of --authors", author);
        } else {
            t = title.len ? fti__st_meta_str(title.data, title.len, 200) : NULL;
            if (u->kind == FTI__ST_K_HTML) t = fti__st_title_cut(t, site, author, s, n);
            if (!t) t = fti__st_title_from_path(path);
            if (u->kind == FTI__ST_K_HTML) {
                char bdate[32];
                from = fti__st_page_start(text.data ? text.data : "", text.len, t, author, bdate);
                if (!date && bdate[0]) date = fti_strdup(bdate); /* the byline's */
            }
            if (!date) date = fti__st_date_from_path(path); /* "2024-05-01 walk.txt" */
            fti__st_emit(pp, o, u->file, "", (const char *)data + u->off, u->len,
                         text.data ? text.data + from : "", text.len - from,
                         pp->o->redact > 0 ? FTI_CLEAN_REDACT_ALL : 0, t, author, date,
                         fti_strdup(fti__st_kind_names[u->kind]));
            author = date = NULL; /* the document's now */
        }
        fti_free(author);
        fti_free(date);
        fti_free(site);
        fti_buf_free(&text);
        fti_buf_free(&title);
        fti_buf_free(&conv);
        return;
    }
    case FTI__ST_K_JSON:
        fti__st_ingest_json(pp, o, u->file, s, n);
        return;
    case FTI__ST_K_JSONL:
        fti__st_ingest_jsonl(pp, o, u->file, s, n, u->first_no);
        return;
    case FTI__ST_K_CSV: {
        fti_buf conv;
        if (!fti__st_unit_text(o, u->file, &s, &n, &conv)) return;
        fti__st_ingest_csv(pp, o, u->file, s, n);
        fti_buf_free(&conv);
        return;
    }
    case FTI__ST_K_EML:
        fti__st_ingest_mail(pp, o, u->file, "", s, n, fti__st_sent_folder(path) ? "sent" : "mail");
        return;
    case FTI__ST_K_MBOX: {
        /* the unit is a run of whole messages */
        size_t i = 0, no = u->first_no;
        int sent = fti__st_sent_folder(path);
        while (i < n) {
            size_t next = n, k;
            char loc[48];
            for (k = i + 1; k + 5 <= n; k++) {
                if (s[k - 1] == '\n' && memcmp(s + k, "From ", 5) == 0 && k >= 2 &&
                    (s[k - 2] == '\n' || (k >= 3 && s[k - 2] == '\r' && s[k - 3] == '\n'))) {
                    next = k;
                    break;
                }
            }
            snprintf(loc, sizeof loc, "#msg %lu", (unsigned long)no);
            fti__st_ingest_mail(pp, o, u->file, loc, s + i, next - i, sent ? "sent" : "mbox");
            i = next;
            no++;
        }
        return;
    }
    default:
        fti__st_reject(o, u->file, "", "unsupported_type", "unsupported file type");
        return;
    }
}

#endif /* FTI_NO_STORE */
