/* === store: workspace, the ingest pipeline, versions, refs, verify, diff, datasets ========= */
#include "04_store.h"
#include <locale.h>
#include <sys/file.h>
#include <time.h>

#ifndef FTI_NO_STORE

/* Part of every version id and cache key: bump it whenever cleaning, parsing or any output
 * byte changes, so an id never names data made by different code. 2 (2026-11-28): UTF-16 and
 * Windows-1252 text files, HTML and references in JSON/CSV text fields, Markdown front matter,
 * wiki links, footnotes and inline HTML, the full Latin-1 entity table. 3 (2026-11-28): nested
 * JSON exports (wrappers, arrays of records anywhere, text objects and runs), Facebook's
 * mojibake, tweets' links, mentions and dates, retweets and boosts rejected, more default
 * fields, mailboxes and tweets.js known by content, semicolon- and tab-separated CSV, Obsidian's
 * comments, callouts and tasks in Markdown, dates in one form (UTC where a zone is given). 4
 * (2026-11-28): dates in words, Messenger's status lines rejected, Instagram's captions and
 * comments, Keep's checklists as one note, Day One's Markdown, quotes left out of HTML fields,
 * --authors matching whole words, HTML pages' and Markdown front matter's dates and authors,
 * HTML pages' <nav>, <footer> and <button> left out. 5 (2026-11-28, the next session): an
 * unclosed <nav>, <footer> or <button> drops only its tag, author marks read inside their
 * element (not <link rel=author>), Facebook album photos not Instagram captions, fewer
 * subject-less status lines, YAML comments and author lists in front matter, "10:15PM" and
 * no-break spaces in times, impossible days (February 30) and non-weekdays not dates. 6
 * (2026-11-28, the session after): messages of conversations are kind "message", and those by
 * someone other than the owner an export's account file names are left out (unless --authors);
 * the account files are reported as "account_info"; mail of Sent folders and Gmail's "Sent"
 * label is kind "sent", and other people's mail next to it is left out. 7 (2026-11-28, the
 * seventh session): nested <nav>, <footer> and <button> end at their own end tag. 8 (2026-11-28,
 * the eighth): their nesting is counted outside comments, scripts' and titles' text and
 * attribute values only; an owner is inferred over the conversations of 2 to 63 senders (the
 * others no longer stop it); dates with slashes ("3/14/2020") are read; a mail's sender address
 * is kept for the owner filter (records layout 2). 9 (2026-11-29, the ninth): <nav>, <footer>
 * and <button> are nested with one another as a browser nests them (one inside a skipped one
 * ends with it); names differing only in the case of ASCII and Latin letters are one sender to
 * the owner inference and filter and match --authors; an owner is inferred from 3 conversations
 * or more, and when it is not for doubt the report says so ("owner_not_inferred"). 10
 * (2026-11-29, the tenth): mail: an inline PGP signed message's armor and signature and an
 * encrypted block are left out, the <blockquote>s and Yahoo's quote of an HTML mail too, as are
 * the lines of more phone and mail programs ("Get Outlook for iOS"); 8-bit text in a part
 * without a charset (or with US-ASCII) and in raw headers is read as a text file is; a CSV
 * file's "sep=;" line (Excel's) names its separator. 11 (2026-11-29, the eleventh): a key
 * repeated in a JSON record has its last value (JSON.parse's rule; the first before); a
 * <button> inside an open <button> ends it, as a browser does. 12 (2026-11-29, the twelfth): the
 * repetition rule counts a line over 1,000 bytes as its sentences; an input folder's symbolic
 * links, FIFOs and devices are rejected with their reason (they were left out in silence). 13
 * (2026-11-29, the thirteenth): a group of near-duplicates keeps its newest dated document (it
 * kept its first in input order). 14 (2026-11-30): a title made from a file name (a text file's,
 * or a Markdown or HTML file's without a title of its own) has its underscores as blanks, a
 * slug's dashes too, and no leading date, which becomes the document's date when it has none
 * ("2024-05-01 walking_to_work.txt": "walking to work", dated 2024-05-01). 15 (2026-11-30,
 * the second): an HTML page's title loses its site's name ("Post | Robin Hale": "Post", when
 * that is the author, og:site_name or the other part is the page's <h1>), and its body the
 * heading that repeats the title and the author's byline after it ("by Robin Hale, 29 August
 * 2024"; its date the page's when it has none); the hard-wrapped paragraphs of plain-text mail
 * (format=flowed exactly, else by a guess) and of .txt files are joined into one line each.
 * 16 (2026-11-30, the third): the guess leaves alone three or more lines each starting with a
 * capital after the first (addresses, a poem) and lines with a table's columns (a tab, or two
 * runs of three blanks). */
#define FTI__ST_FORMAT 16

/* === workspace ============================================================================== */

FTIDEF char *fti_workspace_resolve(const char *home) {
    const char *env;
    if (home && *home) return fti_strdup(home);
    env = getenv("FTI_HOME");
    if (env && *env) return fti_strdup(env);
    return fti_strdup("./twin");
}

/* home + "/" + a + ["/" + b]: a new string. */
static char *fti__st_path3(const char *home, const char *a, const char *b) {
    fti_buf p;
    memset(&p, 0, sizeof p);
    fti_buf_puts(&p, home);
    fti_buf_putc(&p, '/');
    fti_buf_puts(&p, a);
    if (b) {
        fti_buf_putc(&p, '/');
        fti_buf_puts(&p, b);
    }
    if (p.oom) {
        fti_buf_free(&p);
        return NULL;
    }
    return p.data;
}

FTIDEF fti_result fti_workspace_init(const char *home, fti_error *err) {
    static const char *const dirs[] = {"store/objects", "store/versions", "store/refs/tags",
                                       "models", "logs"};
    size_t i;
    if (!home) return fti_error_set(err, FTI_ERR_INVALID, "workspace: no directory");
    for (i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        char *p = fti__st_path3(home, dirs[i], NULL);
        fti_result rc;
        if (!p) return fti_error_set(err, FTI_ERR_NOMEM, "workspace: out of memory");
        rc = fti_mkdirs(p, err);
        fti_free(p);
        if (rc != FTI_OK) return rc;
    }
    return FTI_OK;
}

/* Path of object hex in the store: home/store/objects/ab/abcdef... */
static char *fti__st_object_path(const char *home, const char *hex) {
    fti_buf p;
    memset(&p, 0, sizeof p);
    fti_buf_printf(&p, "%s/store/objects/%.2s/%s", home, hex, hex);
    if (p.oom) {
        fti_buf_free(&p);
        return NULL;
    }
    return p.data;
}

static int fti__st_is_hex_id(const char *s, size_t n) {
    size_t i;
    for (i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return 0;
    return 1;
}

/* === options ================================================================================ */

FTIDEF fti_ingest_opts fti_ingest_opts_resolve(const fti_ingest_opts *opts) {
    fti_ingest_opts o;
    if (opts)
        o = *opts;
    else
        memset(&o, 0, sizeof o);
    if (!o.text_fields)
        o.text_fields = "text,content,body,full_text,message,post,plaintext,content_text,selftext,"
                        "html,content_html,textContent,contents,ShareCommentary,comment,"
                        "listContent";
    if (!o.title_fields) o.title_fields = "title,subject,link_title,name";
    if (!o.date_fields)
        o.date_fields = "created_at,date_unixtime,date,timestamp,timestamp_ms,time,created,"
                        "createdAt,published,published_at,date_published,created_utc,"
                        "creationDate,creation_timestamp,userEditedTimestampUsec,ts";
    if (!o.author_fields)
        o.author_fields = "author,authors,sender_name,user_profile,user,username,from,"
                          "attributedTo,senderId";
    if (!o.required) o.required = "";
    if (!o.min_chars) o.min_chars = 12;
    if (!o.max_chars) o.max_chars = 1000000;
    if (o.min_letter_frac == 0) o.min_letter_frac = 0.5;
    if (o.max_repeat_frac == 0) o.max_repeat_frac = 0.5;
    if (o.dedup_threshold == 0) o.dedup_threshold = 0.8;
    if (o.val_percent <= 0) o.val_percent = 5;
    if (o.val_percent > 50) o.val_percent = 50;
    if (o.chunk_tokens <= 0) o.chunk_tokens = 200;
    if (o.chunk_overlap <= 0) o.chunk_overlap = 32;
    if (o.chunk_overlap >= o.chunk_tokens) o.chunk_overlap = o.chunk_tokens / 4;
    if (o.vocab_size <= 0) o.vocab_size = 4096;
    if (!o.max_file_bytes) o.max_file_bytes = FTI_STORE_MAX_FILE_BYTES;
    return o;
}

/* v with 6 decimals and a '.' whatever the C locale's decimal point is (the text goes into
 * version ids, which must not depend on LC_NUMERIC). */
static const char *fti__st_dbl6(double v, char out[64]) {
    const char *dp = localeconv()->decimal_point;
    char tmp[64];
    size_t dl = dp ? strlen(dp) : 0, i = 0, o = 0;
    snprintf(tmp, sizeof tmp, "%.6f", v);
    if (dl == 0 || (dl == 1 && dp[0] == '.')) {
        memcpy(out, tmp, sizeof tmp);
        return out;
    }
    while (tmp[i] && o < 63) {
        if (strncmp(tmp + i, dp, dl) == 0) {
            out[o++] = '.';
            i += dl;
        } else {
            out[o++] = tmp[i++];
        }
    }
    out[o] = 0;
    return out;
}

/* The canonical text of the options that decide per-record results (the cache key). */
static void fti__st_proc_key(const fti_ingest_opts *o, fti_buf *out) {
    char a[64], b[64];
    fti_buf_printf(out,
                   "records v%d|text=%s|title=%s|date=%s|author=%s|required=%s|min=%lu|max=%lu|"
                   "letters=%s|repeat=%s|redact=%d|minhash=%d",
                   FTI__ST_FORMAT, o->text_fields, o->title_fields, o->date_fields,
                   o->author_fields, o->required, (unsigned long)o->min_chars,
                   (unsigned long)o->max_chars, fti__st_dbl6(o->min_letter_frac, a),
                   fti__st_dbl6(o->max_repeat_frac, b), o->redact, FTI_MINHASH_PERMS);
    if (o->authors && o->authors[0]) fti_buf_printf(out, "|authors=%s", o->authors);
}

/* === records pack (per-file ingest results, reused by the next ingest) ==================== */
/*
 *   "FTIRECS\0" u32 version (2) u32 n_files
 *   per file: u8[32] raw sha, u8[32] proc key sha, u32 n_docs, u32 n_rejs
 *     doc: str text, title, author, date, kind, loc, addr (version 2: a mail sender's address,
 *     for the owner filter); u8[32] sha; u32[128] minhash
 *     rej: str reason, detail, loc
 *   str: u32 length (0xFFFFFFFF = absent) then the bytes
 * A file's section is also what a partial (sharded ingest) carries for each of its files.
 */

/* The layout of the records pack's and the partials' sections (2 since processing format 8: a
 * document's addr). */
#define FTI__ST_RECS_VER 2

static void fti__st_pack_str(fti_buf *b, const char *s, size_t n) {
    if (!s) {
        fti__st_put_u32(b, 0xFFFFFFFFu);
        return;
    }
    fti__st_put_u32(b, (uint32_t)n);
    fti_buf_append(b, s, n);
}

/* Reads a string (NULL when absent); with copy = 0 only skips it. ok = 0 on a format error. */
static char *fti__st_unpack_str(fti_reader *r, size_t *len, int copy, size_t *at, int *ok) {
    uint32_t n = fti_read_u32(r);
    const void *p;
    if (len) *len = 0;
    if (r->err) {
        *ok = 0;
        return NULL;
    }
    if (n == 0xFFFFFFFFu) return NULL;
    if (at) *at = r->pos;
    p = fti_read_bytes(r, n);
    if (!p) {
        *ok = 0;
        return NULL;
    }
    if (len) *len = n;
    if (!copy) return NULL;
    {
        char *s = fti_strndup((const char *)p, n);
        if (!s) *ok = 0;
        return s;
    }
}

/* One input file of an ingest run. */
typedef struct fti__st_file {
    char *path; /* as found on disk */
    char *name; /* for the version id: basename(arg) + relative path */
    fti__st_kind kind;
    uint64_t size;
    fti_map map;
    int mapped; /* the map is open */
    int hashed; /* mapped and hashed: sha is valid */
    unsigned char sha[32];
    unsigned char key[32]; /* reuse key: options, kind and name (titles may come from names) */
    int reused;
    int failed;      /* unreadable etc.: rejected as a whole */
    const char *skip_why; /* not walked (a symlink, a FIFO...): rejected with this reason */
    int mine;        /* sharded ingest: this shard's file */
    fti__st_out out; /* merged results (docs without their text, rejections) */
    /* where the file's section comes from instead of processing: the parent's records pack
     * (par_sec) or a partial (part, at sec_off) */
    const unsigned char *par_sec;
    size_t par_len;
    int part; /* -1 or the partial's number */
    uint64_t sec_off, sec_len;
} fti__st_file;

/* Packs a file's section; each document's text_off becomes its text's offset in b. */
static void fti__st_pack_file(fti_buf *b, fti__st_file *f) {
    size_t i;
    fti_buf_append(b, f->sha, 32);
    fti_buf_append(b, f->key, 32);
    fti__st_put_u32(b, (uint32_t)f->out.n_docs);
    fti__st_put_u32(b, (uint32_t)f->out.n_rejs);
    for (i = 0; i < f->out.n_docs; i++) {
        fti__st_doc *d = &f->out.docs[i];
        size_t k;
        d->text_off = (uint64_t)b->len + 4;
        fti__st_pack_str(b, d->text ? d->text : "", d->text_len);
        fti__st_pack_str(b, d->title, d->title ? strlen(d->title) : 0);
        fti__st_pack_str(b, d->author, d->author ? strlen(d->author) : 0);
        fti__st_pack_str(b, d->date, d->date ? strlen(d->date) : 0);
        fti__st_pack_str(b, d->kind, d->kind ? strlen(d->kind) : 0);
        fti__st_pack_str(b, d->loc, d->loc ? strlen(d->loc) : 0);
        fti__st_pack_str(b, d->addr, d->addr ? strlen(d->addr) : 0);
        fti_buf_append(b, d->sha, 32);
        for (k = 0; k < FTI_MINHASH_PERMS; k++) fti__st_put_u32(b, d->mh ? d->mh[k] : 0);
    }
    for (i = 0; i < f->out.n_rejs; i++) {
        const fti__st_rej *r = &f->out.rejs[i];
        fti__st_pack_str(b, r->reason, strlen(r->reason));
        fti__st_pack_str(b, r->detail, strlen(r->detail));
        fti__st_pack_str(b, r->loc, strlen(r->loc));
    }
}

static void fti__st_doc_hashes(fti__st_doc *d);

/* Parses a file's section (from its sha on) into out (docs get file index fi). The text is not
 * copied: text_off = base + its offset in the section, and the hashes are computed from it.
 * With out NULL the section is only walked. *used gets the section's length. Returns 0 on a
 * format error. */
static int fti__st_parse_section(const unsigned char *sec, size_t len, uint32_t fi,
                                 fti__st_out *out, uint64_t base, size_t *used) {
    fti_reader rr = fti_reader_make(sec, len), *r = &rr;
    uint32_t nd, nr, i;
    int ok = 1, copy = out != NULL;
    if (!fti_read_bytes(r, 64)) return 0;
    nd = fti_read_u32(r);
    nr = fti_read_u32(r);
    /* a document takes at least 568 bytes (6 lengths, a hash, a signature), a rejection 12: a
     * hostile count cannot make a huge allocation */
    if (r->err || nd > FTI_STORE_MAX_DOCS || nr > FTI_STORE_MAX_DOCS ||
        nd > fti_reader_left(r) / (24 + 32 + FTI_MINHASH_PERMS * 4) || nr > fti_reader_left(r) / 12)
        return 0;
    if (out) {
        memset(out, 0, sizeof *out);
        out->docs = (fti__st_doc *)fti_calloc(nd + 1, sizeof *out->docs);
        out->rejs = (fti__st_rej *)fti_calloc(nr + 1, sizeof *out->rejs);
        if (!out->docs || !out->rejs) return 0;
        out->cap_docs = nd + 1;
        out->cap_rejs = nr + 1;
    }
    for (i = 0; i < nd && ok && !r->err; i++) {
        fti__st_doc tmp, *d;
        const void *sha;
        size_t at = 0, k;
        memset(&tmp, 0, sizeof tmp);
        d = out ? &out->docs[i] : &tmp;
        if (out) out->n_docs++;
        fti__st_unpack_str(r, &d->text_len, 0, &at, &ok);
        d->text_off = base + at;
        d->title = fti__st_unpack_str(r, NULL, copy, NULL, &ok);
        d->author = fti__st_unpack_str(r, NULL, copy, NULL, &ok);
        d->date = fti__st_unpack_str(r, NULL, copy, NULL, &ok);
        d->kind = fti__st_unpack_str(r, NULL, copy, NULL, &ok);
        d->loc = fti__st_unpack_str(r, NULL, copy, NULL, &ok);
        d->addr = fti__st_unpack_str(r, NULL, copy, NULL, &ok);
        if (out && ok && !r->err) {
            /* hashes from the bytes in place (the id mixes in the title) */
            d->text = (char *)(sec + at);
            fti__st_doc_hashes(d);
            d->text = NULL;
        }
        sha = fti_read_bytes(r, 32);
        if (sha) memcpy(d->sha, sha, 32);
        if (out) {
            d->mh = (uint32_t *)fti_malloc(FTI_MINHASH_PERMS * sizeof(uint32_t));
            if (!d->mh || !d->loc) return 0;
            for (k = 0; k < FTI_MINHASH_PERMS; k++) d->mh[k] = fti_read_u32(r);
        } else if (!fti_read_bytes(r, FTI_MINHASH_PERMS * 4)) {
            return 0;
        }
        d->file = fi;
    }
    for (i = 0; i < nr && ok && !r->err; i++) {
        fti__st_rej tmp, *j;
        memset(&tmp, 0, sizeof tmp);
        j = out ? &out->rejs[i] : &tmp;
        if (out) out->n_rejs++;
        j->reason = fti__st_unpack_str(r, NULL, copy, NULL, &ok);
        j->detail = fti__st_unpack_str(r, NULL, copy, NULL, &ok);
        j->loc = fti__st_unpack_str(r, NULL, copy, NULL, &ok);
        j->file = fi;
        if (out && (!j->reason || !j->detail || !j->loc)) return 0;
    }
    if (used) *used = r->pos;
    return ok && !r->err;
}

/* === the ingest run ========================================================================== */

/* A content-addressed object written as it is made: buffered writes to a temp file under
 * store/tmp, hashed on the way (or read back when a header was patched in afterwards), then
 * renamed into store/objects (fsync, rename, directory fsync): it appears whole or not at all. */
typedef struct fti__st_objw {
    fti_afile af;
    fti__st_shs sh;
    uint64_t bytes; /* written so far, buffered bytes included */
    char *buf;
    size_t buf_len;
    int patched;
    int open;
} fti__st_objw;
#define FTI__ST_OBJW_BUF ((size_t)1 << 20)

typedef struct fti__st_run {
    const char *home;
    fti_ingest_opts o;
    fti__st_proc proc;
    fti__st_mh_params mh;
    unsigned char proc_key[32];
    fti__st_file *files;
    size_t n_files, cap_files;
    const char *arg; /* the argument being walked */
    fti__st_unit *units;
    size_t n_units, cap_units;
    fti__st_out *unit_out;
    char *parent_tok; /* the tokenizer object of `latest` (opts.tokenizer = "parent") */
    size_t *order;    /* units by decreasing size */
    /* work distribution */
    fti_mutex mu;
    size_t next;
    uint64_t bytes_done, bytes_total;
    /* the parent's records, for reuse */
    fti_map parent_recs;
    int have_parent_recs;
    int hash_oom; /* a file could not be read for want of memory (set under mu) */
    fti_error err;
    int oom;
    /* sharded ingest: this run makes partial shard_i of shard_n (shard_n = 0: a whole run) */
    unsigned shard_i, shard_n;
    unsigned char plan[32]; /* the options and every input's name: what partials must share */
    fti_afile part;         /* the partial being written */
    uint64_t part_bytes;
    fti_buf part_index;
    /* merging partials: their files */
    int *part_fds;
    size_t n_parts;
    /* the records pack being written, and a descriptor reading it back */
    fti__st_objw recs;
    int recs_fd;
    /* seconds per stage: scan, ingest, dedupe, tokenizer, shards, index, commit */
    double t_stage[7];
    uint64_t t_last_ns;
    /* processor time per stage (clock(): all threads), immune to a busy machine */
    double c_stage[7];
    clock_t c_last;
    /* objects written so far (name, SHA-256, size), in manifest order */
    struct {
        const char *name;
        char hex[65];
        uint64_t bytes;
    } objs[8];
    size_t n_objs;
    uint64_t commit_step;
} fti__st_run;

static void fti__st_progress(fti__st_run *r, const char *stage, uint64_t done, uint64_t total);

/* home/store/<a>/<b>: a new string. */
static char *fti__st_store_path(const char *home, const char *a, const char *b) {
    fti_buf p;
    memset(&p, 0, sizeof p);
    fti_buf_printf(&p, "%s/store/%s/%s", home, a, b);
    if (p.oom) {
        fti_buf_free(&p);
        return NULL;
    }
    return p.data;
}

static fti_result fti__st_objw_open(fti__st_run *r, fti__st_objw *w, const char *name,
                                    fti_error *err) {
    char *dir = fti__st_path3(r->home, "store/tmp", NULL), *p;
    fti_result rc;
    memset(w, 0, sizeof *w);
    w->af.fd = -1;
    if (!dir) return fti_error_set(err, FTI_ERR_NOMEM, "ingest: out of memory");
    rc = fti_mkdirs(dir, err);
    fti_free(dir);
    if (rc != FTI_OK) return rc;
    p = fti__st_store_path(r->home, "tmp", name);
    w->buf = (char *)fti_malloc(FTI__ST_OBJW_BUF);
    if (!p || !w->buf) {
        fti_free(p);
        fti_free(w->buf);
        w->buf = NULL;
        return fti_error_set(err, FTI_ERR_NOMEM, "ingest: out of memory");
    }
    rc = fti_afile_open(&w->af, p, err);
    fti_free(p);
    if (rc != FTI_OK) {
        fti_free(w->buf);
        w->buf = NULL;
        return rc;
    }
    fti__st_shs_init(&w->sh, r->proc.sha_fast);
    w->open = 1;
    return FTI_OK;
}

static fti_result fti__st_objw_flush(fti__st_objw *w) {
    fti_result rc = FTI_OK;
    if (w->buf_len) rc = fti_afile_write(&w->af, w->buf, w->buf_len);
    w->buf_len = 0;
    return rc;
}

static fti_result fti__st_objw_write(fti__st_objw *w, const void *data, size_t n) {
    if (!w->open) return FTI_ERR_INVALID;
    if (!w->patched) fti__st_shs_update(&w->sh, data, n);
    w->bytes += n;
    if (w->buf_len + n > FTI__ST_OBJW_BUF) {
        fti_result rc = fti__st_objw_flush(w);
        if (rc != FTI_OK) return rc;
        if (n >= FTI__ST_OBJW_BUF) return fti_afile_write(&w->af, data, n);
    }
    memcpy(w->buf + w->buf_len, data, n);
    w->buf_len += n;
    return FTI_OK;
}

static fti_result fti__st_objw_emit(void *ctx, const void *data, size_t n) {
    return fti__st_objw_write((fti__st_objw *)ctx, data, n);
}

/* Overwrites n bytes at off (a header written last); the digest is then made by reading the
 * file back at commit. */
static fti_result fti__st_objw_patch(fti__st_objw *w, uint64_t off, const void *data, size_t n) {
    const unsigned char *c = (const unsigned char *)data;
    fti_result rc = fti__st_objw_flush(w);
    if (rc != FTI_OK) return rc;
    while (n) { /* a short or interrupted write continues */
        long k = fti__sys_pwrite(w->af.fd, c, n, off);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return fti__errno_result(k < 0 ? errno : EIO);
        c += k;
        n -= (size_t)k;
        off += (uint64_t)k;
    }
    w->patched = 1;
    return FTI_OK;
}

static void fti__st_objw_abort(fti__st_objw *w) {
    if (w->open) fti_afile_abort(&w->af);
    fti_free(w->buf);
    w->buf = NULL;
    w->open = 0;
}

/* Commits the object as manifest entry `name`. */
static fti_result fti__st_objw_commit(fti__st_run *r, fti__st_objw *w, const char *name,
                                      fti_error *err) {
    uint64_t t0 = fti_time_ns(), dt;
    clock_t c0 = clock(), dc;
    fti_result rc = fti__st_objw_flush(w);
    unsigned char d[32];
    char *path = NULL, hex[65];
    if (rc != FTI_OK) {
        fti_error_set(err, rc, "%s: write failed: %s", w->af.tmp_path, fti_result_str(rc));
        fti__st_objw_abort(w);
        return rc;
    }
    if (w->patched) {
        /* the header changed after the data: hash the file as it is */
        int fd = fti__sys_open(w->af.tmp_path, O_RDONLY, 0), e = 0;
        uint64_t off = 0;
        fti__st_shs_init(&w->sh, r->proc.sha_fast);
        if (fd < 0) {
            rc = FTI_ERR_IO;
            e = errno ? errno : EIO;
        }
        while (rc == FTI_OK && off < w->bytes) {
            size_t n = w->bytes - off < FTI__ST_OBJW_BUF ? (size_t)(w->bytes - off)
                                                         : FTI__ST_OBJW_BUF;
            if (!fti__st_fd_pread(fd, w->buf, n, off)) {
                rc = FTI_ERR_IO;
                e = errno;
            } else {
                fti__st_shs_update(&w->sh, w->buf, n);
            }
            off += n;
        }
        if (fd >= 0) close(fd);
        if (rc != FTI_OK) {
            fti_error_set(err, rc, "%s: cannot read back: %s", w->af.tmp_path,
                          fti__st_read_error(e));
            fti__st_objw_abort(w);
            return rc;
        }
    }
    fti__st_shs_final(&w->sh, d);
    fti_sha256_hex(d, hex);
    fti__st_progress(r, "commit", ++r->commit_step, 0);
    path = fti__st_object_path(r->home, hex);
    if (!path) rc = fti_error_set(err, FTI_ERR_NOMEM, "store: out of memory");
    if (rc == FTI_OK) {
        struct stat st;
        if (stat(path, &st) == 0 && (uint64_t)st.st_size == w->bytes) {
            fti__st_objw_abort(w); /* the same content is there already */
        } else {
            char *dir = fti_strndup(path, strlen(path) - 65);
            if (!dir) rc = fti_error_set(err, FTI_ERR_NOMEM, "store: out of memory");
            if (rc == FTI_OK) rc = fti_mkdirs(dir, err);
            fti_free(dir);
            if (rc == FTI_OK) {
                /* rename the temp file straight to its content address */
                fti_free(w->af.path);
                w->af.path = path;
                path = NULL;
                w->open = 0;
                rc = fti_afile_commit(&w->af, err);
            }
        }
    }
    fti_free(path);
    fti__st_objw_abort(w);
    if (rc == FTI_OK) {
        r->objs[r->n_objs].name = name;
        r->objs[r->n_objs].bytes = w->bytes;
        memcpy(r->objs[r->n_objs].hex, hex, 65);
        r->n_objs++;
    }
    dt = fti_time_ns() - t0;
    r->t_stage[6] += (double)dt / 1e9;
    r->t_last_ns += dt;
    dc = clock() - c0;
    r->c_stage[6] += (double)dc / CLOCKS_PER_SEC;
    r->c_last += dc;
    return rc;
}

/* A whole in-memory object. */
static fti_result fti__st_stash(fti__st_run *r, const char *name, fti_buf *img, fti_error *err) {
    fti__st_objw w;
    fti_result rc;
    if (img->oom) {
        fti_buf_free(img);
        return fti_error_set(err, FTI_ERR_NOMEM, "ingest: out of memory building %s", name);
    }
    rc = fti__st_objw_open(r, &w, name, err);
    if (rc == FTI_OK) rc = fti__st_objw_write(&w, img->data ? img->data : "", img->len);
    fti_buf_free(img);
    if (rc == FTI_OK) return fti__st_objw_commit(r, &w, name, err);
    fti__st_objw_abort(&w);
    return fti_error_set(err, rc, "ingest: cannot write %s", name);
}



/* Charges the time since the last mark to stage k. */
static void fti__st_mark(fti__st_run *r, int k) {
    uint64_t now = fti_time_ns();
    clock_t c = clock();
    r->t_stage[k] += (double)(now - r->t_last_ns) / 1e9;
    r->t_last_ns = now;
    r->c_stage[k] += (double)(c - r->c_last) / CLOCKS_PER_SEC;
    r->c_last = c;
}

static void fti__st_progress(fti__st_run *r, const char *stage, uint64_t done, uint64_t total) {
    fti_ingest_progress p;
    if (!r->o.progress) return;
    p.stage = stage;
    p.done = done;
    p.total = total;
    r->o.progress(r->o.progress_user, &p);
}

static void fti__st_log(fti__st_run *r, fti_log_level lv, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static void fti__st_log(fti__st_run *r, fti_log_level lv, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    if (!r->o.log) return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    r->o.log(r->o.log_user, lv, msg);
}

static fti_result fti__st_walk_cb(void *user, const char *path, uint64_t size) {
    fti__st_run *r = (fti__st_run *)user;
    fti__st_file *f;
    fti_buf name;
    const char *rel;
    size_t al = strlen(r->arg);
    if (r->n_files == r->cap_files) {
        size_t cap = r->cap_files ? r->cap_files * 2 : 64;
        fti__st_file *p = (fti__st_file *)fti_realloc(r->files, cap * sizeof *p);
        if (!p) return FTI_ERR_NOMEM;
        r->files = p;
        r->cap_files = cap;
    }
    f = &r->files[r->n_files];
    memset(f, 0, sizeof *f);
    memset(&name, 0, sizeof name);
    /* the name: last component of the argument, then the path below it */
    {
        const char *a = r->arg;
        size_t an = al;
        while (an > 1 && a[an - 1] == '/') an--;
        {
            size_t k = an;
            while (k > 0 && a[k - 1] != '/') k--;
            fti_buf_append(&name, a + k, an - k);
        }
    }
    rel = (strncmp(path, r->arg, al) == 0) ? path + al : "";
    while (*rel == '/') rel++;
    if (*rel) {
        fti_buf_putc(&name, '/');
        fti_buf_puts(&name, rel);
    }
    f->path = fti_strdup(path);
    f->name = name.data;
    f->size = size;
    f->kind = fti__st_kind_of(path);
    if (!f->path || !f->name || name.oom) {
        fti_free(f->path);
        fti_buf_free(&name);
        return FTI_ERR_NOMEM;
    }
    r->n_files++;
    r->bytes_total += size;
    return FTI_OK;
}

/* Phase A: map and hash files (parallel, files taken in order from a shared counter). The map
 * is closed again: the files are mapped again batch by batch when they are processed. */
static void fti__st_phase_hash(void *ctx, size_t b, size_t e, int thread) {
    fti__st_run *r = (fti__st_run *)ctx;
    (void)b, (void)e, (void)thread;
    for (;;) {
        size_t i;
        fti__st_file *f;
        fti_error ferr;
        fti_mutex_lock(&r->mu);
        i = r->next++;
        fti_mutex_unlock(&r->mu);
        if (i >= r->n_files) break;
        f = &r->files[i];
        if (!f->mine) continue;
        if (f->skip_why) {
            fti__st_reject(&f->out, (uint32_t)i, "", "unsupported_type", "%s", f->skip_why);
            f->failed = 1;
            continue;
        }
        if (f->kind == FTI__ST_K_UNKNOWN && !fti__st_kind_sniffable(f->path)) {
            fti__st_reject(&f->out, (uint32_t)i, "", "unsupported_type",
                           "unsupported file type \"%s\"", fti_path_ext(f->path));
            f->failed = 1;
            continue;
        }
        if (f->size > r->o.max_file_bytes) {
            fti__st_reject(&f->out, (uint32_t)i, "", "too_large", "%lu bytes > limit %lu",
                           (unsigned long)f->size, (unsigned long)r->o.max_file_bytes);
            f->failed = 1;
            continue;
        }
        if (fti_map_open(&f->map, f->path, &ferr) != FTI_OK) {
            if (ferr.code == FTI_ERR_NOMEM) { /* not the file's fault: the ingest fails */
                fti_mutex_lock(&r->mu);
                r->hash_oom = 1;
                fti_mutex_unlock(&r->mu);
            }
            fti__st_reject(&f->out, (uint32_t)i, "", "unreadable", "%s", ferr.msg);
            f->failed = 1;
            continue;
        }
        if (f->kind == FTI__ST_K_UNKNOWN) { /* no extension, or .js: known by its content */
            f->kind = fti__st_kind_sniff((const char *)f->map.data, f->map.len);
            if (f->kind == FTI__ST_K_UNKNOWN) {
                fti_map_close(&f->map);
                fti__st_reject(&f->out, (uint32_t)i, "", "unsupported_type",
                               *fti_path_ext(f->path)
                                   ? "unsupported file type \"%s\" (not Twitter's archive)"
                                   : "no extension%s, and not an mbox",
                               fti_path_ext(f->path));
                f->failed = 1;
                continue;
            }
        }
        f->hashed = 1;
        f->size = f->map.len;
        fti__st_sha256_x(r->proc.sha_fast, f->map.data, f->map.len, f->sha);
        fti_map_close(&f->map);
        {
            fti_sha256 ks;
            unsigned char kind = (unsigned char)f->kind;
            fti_sha256_init(&ks);
            fti_sha256_update(&ks, r->proc_key, 32);
            fti_sha256_update(&ks, &kind, 1);
            fti_sha256_update(&ks, f->name, strlen(f->name));
            fti_sha256_final(&ks, f->key);
        }
    }
}


/* Phase B: process units. */
static void fti__st_phase_units(void *ctx, size_t b, size_t e, int thread) {
    fti__st_run *r = (fti__st_run *)ctx;
    (void)b, (void)e;
    for (;;) {
        size_t i;
        const fti__st_unit *u;
        const fti__st_file *f;
        fti_mutex_lock(&r->mu);
        i = r->next++;
        fti_mutex_unlock(&r->mu);
        if (i >= r->n_units) break;
        i = r->order[i]; /* largest units first: the last ones to finish are small */
        u = &r->units[i];
        f = &r->files[u->file];
        fti__st_process_unit(&r->proc, u, f->path, (const unsigned char *)f->map.data, f->map.len,
                             f->sha, &r->unit_out[i]);
        fti_mutex_lock(&r->mu);
        r->bytes_done += u->len;
        fti_mutex_unlock(&r->mu);
        /* the calling thread (worker 0) reports progress: callbacks run on the caller */
        if (thread == 0) fti__st_progress(r, "ingest", r->bytes_done, r->bytes_total);
    }
}

typedef struct fti__st_len_idx {
    size_t len, idx;
} fti__st_len_idx;

/* Larger first; ties by index (a total order, so the schedule is the same every run). */
static int fti__st_len_idx_cmp(const void *a, const void *b) {
    const fti__st_len_idx *x = (const fti__st_len_idx *)a, *y = (const fti__st_len_idx *)b;
    if (x->len != y->len) return x->len > y->len ? -1 : 1;
    return x->idx < y->idx ? -1 : (x->idx > y->idx);
}

static fti_result fti__st_add_unit(fti__st_run *r, uint32_t file, fti__st_kind kind, size_t off,
                                   size_t len, size_t first_no) {
    fti__st_unit *u;
    if (r->n_units == r->cap_units) {
        size_t cap = r->cap_units ? r->cap_units * 2 : 64;
        fti__st_unit *p = (fti__st_unit *)fti_realloc(r->units, cap * sizeof *p);
        if (!p) return FTI_ERR_NOMEM;
        r->units = p;
        r->cap_units = cap;
    }
    u = &r->units[r->n_units++];
    u->file = file;
    u->kind = kind;
    u->off = off;
    u->len = len;
    u->first_no = first_no;
    return FTI_OK;
}

#define FTI__ST_UNIT_BYTES ((size_t)1 << 20)

/* Cuts file i into units: JSONL by lines and mbox by messages, about 1 MiB each. */
static fti_result fti__st_make_units(fti__st_run *r, uint32_t i) {
    fti__st_file *f = &r->files[i];
    const char *s = (const char *)f->map.data;
    size_t n = f->map.len;
    if (f->kind == FTI__ST_K_JSONL) {
        size_t off = 0, line = 1;
        while (off < n) {
            size_t end = off + FTI__ST_UNIT_BYTES < n ? off + FTI__ST_UNIT_BYTES : n, k, lines = 0;
            const char *nl;
            if (end < n) {
                nl = (const char *)memchr(s + end, '\n', n - end);
                end = nl ? (size_t)(nl - s) + 1 : n;
            }
            for (k = off; k < end; k++) {
                const char *q = (const char *)memchr(s + k, '\n', end - k);
                if (!q) break;
                lines++;
                k = (size_t)(q - s);
            }
            if (fti__st_add_unit(r, i, f->kind, off, end - off, line) != FTI_OK)
                return FTI_ERR_NOMEM;
            line += lines;
            off = end;
        }
        return FTI_OK;
    }
    if (f->kind == FTI__ST_K_MBOX) {
        size_t n_msg = fti__st_mbox_starts(s, n, NULL, 0), k, first = 0, msg_no = 1;
        size_t *starts;
        if (n_msg == 0 || n == 0) return fti__st_add_unit(r, i, f->kind, 0, n, 1);
        starts = (size_t *)fti_malloc((n_msg + 1) * sizeof *starts);
        if (!starts) return FTI_ERR_NOMEM;
        fti__st_mbox_starts(s, n, starts, n_msg);
        starts[n_msg] = n;
        if (starts[0] != 0) starts[0] = 0; /* leading junk belongs to the first message */
        for (k = 1; k <= n_msg; k++) {
            if (starts[k] - starts[first] >= FTI__ST_UNIT_BYTES || k == n_msg) {
                if (fti__st_add_unit(r, i, f->kind, starts[first], starts[k] - starts[first],
                                     msg_no) != FTI_OK) {
                    fti_free(starts);
                    return FTI_ERR_NOMEM;
                }
                msg_no += k - first;
                first = k;
            }
        }
        fti_free(starts);
        return FTI_OK;
    }
    return fti__st_add_unit(r, i, f->kind, 0, n, 1);
}

/* Appends src's contents to dst (moving ownership). */
static int fti__st_out_move(fti__st_out *dst, fti__st_out *src) {
    if (src->n_docs) {
        size_t need = dst->n_docs + src->n_docs;
        if (need > dst->cap_docs) {
            fti__st_doc *p = (fti__st_doc *)fti_realloc(dst->docs, need * sizeof *p);
            if (!p) return 0;
            dst->docs = p;
            dst->cap_docs = need;
        }
        memcpy(dst->docs + dst->n_docs, src->docs, src->n_docs * sizeof *src->docs);
        dst->n_docs = need;
    }
    if (src->n_rejs) {
        size_t need = dst->n_rejs + src->n_rejs;
        if (need > dst->cap_rejs) {
            fti__st_rej *p = (fti__st_rej *)fti_realloc(dst->rejs, need * sizeof *p);
            if (!p) return 0;
            dst->rejs = p;
            dst->cap_rejs = need;
        }
        memcpy(dst->rejs + dst->n_rejs, src->rejs, src->n_rejs * sizeof *src->rejs);
        dst->n_rejs = need;
    }
    if (src->oom) dst->oom = 1;
    fti_free(src->docs);
    fti_free(src->rejs);
    memset(src, 0, sizeof *src);
    return 1;
}

/* Hashes of a kept document: exact-dedupe key and the document id. */
static void fti__st_doc_hashes(fti__st_doc *d) {
    uint64_t th = d->title ? fti_hash64(d->title, strlen(d->title), 11) : 0;
    /* two passes over the text: the exact-dedupe key and a second, independent hash; the id
     * mixes both with the title's hash */
    uint64_t h2 = fti_hash64(d->text, d->text_len, 2);
    d->h_text = fti_hash64(d->text, d->text_len, 1);
    d->id_hi = h2 ^ (th * 0x9E3779B97F4A7C15ull);
    d->id_lo = (d->h_text ^ (h2 >> 17)) + th;
}

static void fti__st_doc_id_hex(const fti__st_doc *d, char out[33]) {
    snprintf(out, 33, "%016llx%016llx", (unsigned long long)d->id_hi, (unsigned long long)d->id_lo);
}

/* Source label of a document: the file path plus its locator. */
static void fti__st_doc_source(const fti__st_run *r, const fti__st_doc *d, fti_buf *out) {
    fti_buf_puts(out, r->files[d->file].name);
    if (d->loc && *d->loc) fti_buf_puts(out, d->loc);
}

/* Minhash pass for documents that need one (parallel over docs). */
typedef struct fti__st_mh_job {
    fti__st_run *r;
    fti__st_doc **docs;
} fti__st_mh_job;

static void fti__st_mh_task(void *ctx, size_t b, size_t e, int thread) {
    fti__st_mh_job *j = (fti__st_mh_job *)ctx;
    size_t i;
    (void)thread;
    for (i = b; i < e; i++) {
        fti__st_doc *d = j->docs[i];
        fti__st_doc_hashes(d);
        if (!d->mh) {
            d->mh = (uint32_t *)fti_malloc(FTI_MINHASH_PERMS * sizeof(uint32_t));
            if (d->mh) fti__st_minhash(&j->r->mh, d->text, d->text_len, d->mh);
        }
    }
}

/* The text of a kept document, read back from the records pack into dst (text_len bytes). */
static int fti__st_text_load(const fti__st_run *r, const fti__st_doc *d, char *dst) {
    return d->text_len == 0 || fti__st_fd_pread(r->recs_fd, dst, d->text_len, d->text_off);
}

/* 1 when two documents' texts are the same bytes (read back in blocks), 0 when not, -1 when they
 * cannot be read back. */
static int fti__st_text_eq(const fti__st_run *r, const fti__st_doc *a, const fti__st_doc *b) {
    char x[16384], y[16384];
    uint64_t off = 0;
    if (a->text_len != b->text_len) return 0;
    while (off < a->text_len) {
        size_t n = a->text_len - off < sizeof x ? (size_t)(a->text_len - off) : sizeof x;
        if (!fti__st_fd_pread(r->recs_fd, x, n, a->text_off + off) ||
            !fti__st_fd_pread(r->recs_fd, y, n, b->text_off + off))
            return -1;
        if (memcmp(x, y, n) != 0) return 0;
        off += n;
    }
    return 1;
}

static char *fti__st_file_object(const char *home, const fti_json *files, const char *name);

/* Finds the sections of the `latest` version's records pack (its manifest's `files`) that files
 * can reuse (same raw bytes and same key); the sections are copied, never unpacked whole. A pack
 * whose bytes are not the ones its manifest names (damaged on disk) is not reused: its files
 * are processed again, so the damage does not pass into the new version. */
static void fti__st_reuse(fti__st_run *r, const fti_json *files) {
    fti_error e;
    const unsigned char *p;
    const char *want = fti_json_get_str(fti_json_get(files, "records"), "sha256", "");
    char *recs_path = fti__st_file_object(r->home, files, "records");
    unsigned char d[32];
    char hex[65];
    size_t len, pos = 16, i;
    uint32_t n, k;
    if (!recs_path) return;
    if (fti_map_open(&r->parent_recs, recs_path, &e) != FTI_OK) {
        fti__st_log(r, FTI_LOG_WARN, "%s: every file is processed again", e.msg);
        fti_free(recs_path);
        return;
    }
    r->have_parent_recs = 1;
    p = (const unsigned char *)r->parent_recs.data;
    len = r->parent_recs.len;
    fti__st_sha256_x(r->proc.sha_fast, p, len, d);
    fti_sha256_hex(d, hex);
    if (strcmp(hex, want) != 0) {
        fti__st_log(r, FTI_LOG_WARN, "%s: damaged (sha256 %.16s..., the manifest says %.16s...):"
                    " every file is processed again", recs_path, hex, want);
        fti_free(recs_path);
        return;
    }
    fti_free(recs_path);
    /* (a pack of another layout is not reused: its files are processed again) */
    if (len < 16 || memcmp(p, "FTIRECS", 8) != 0 || fti_load_u32(p + 8) != FTI__ST_RECS_VER)
        return;
    n = fti_load_u32(p + 12);
    for (k = 0; k < n && pos < len; k++) {
        size_t used = 0;
        if (!fti__st_parse_section(p + pos, len - pos, 0, NULL, 0, &used)) break;
        for (i = 0; i < r->n_files; i++) {
            fti__st_file *f = &r->files[i];
            if (!f->mine || f->reused || !f->hashed || memcmp(f->sha, p + pos, 32) != 0 ||
                memcmp(f->key, p + pos + 32, 32) != 0)
                continue;
            f->par_sec = p + pos;
            f->par_len = used;
            f->reused = 1;
        }
        pos += used;
    }
    (void)fti_map_drop(&r->parent_recs, 0, len);
}

/* Writes a partial's entry for file fi: the section, and its line of the partial's index. */
static fti_result fti__st_part_put(fti__st_run *r, size_t fi, const unsigned char *sec,
                                   size_t len) {
    fti__st_file *f = &r->files[fi];
    fti_buf *x = &r->part_index;
    unsigned char flags[4];
    fti__st_put_u32(x, (uint32_t)fi);
    flags[0] = (unsigned char)f->kind;
    flags[1] = (unsigned char)f->hashed;
    flags[2] = (unsigned char)f->reused;
    flags[3] = (unsigned char)f->failed;
    fti_buf_append(x, flags, 4);
    fti__st_put_u64(x, f->size);
    fti_buf_append(x, f->sha, 32);
    fti__st_put_u64(x, r->part_bytes);
    fti__st_put_u64(x, (uint64_t)len);
    fti__st_pack_str(x, f->name, strlen(f->name));
    fti__st_pack_str(x, f->path, strlen(f->path));
    r->part_bytes += len;
    if (x->oom) return FTI_ERR_NOMEM;
    return fti_afile_write(&r->part, sec, len);
}

/* Hands file fi's results on: to the records pack (keeping only the documents' metadata, hashes
 * and signatures in memory) or, for a sharded run, to the partial. */
static fti_result fti__st_emit_file(fti__st_run *r, size_t fi, fti_error *err) {
    fti__st_file *f = &r->files[fi];
    fti_buf b, tmp;
    const unsigned char *sec = NULL;
    size_t len = 0, i;
    uint64_t base = r->recs.bytes;
    fti_result rc = FTI_OK;
    if (!f->mine) return FTI_OK;
    memset(&b, 0, sizeof b);
    memset(&tmp, 0, sizeof tmp);
    if (f->part >= 0) {
        /* from a partial */
        if (f->sec_len > ((uint64_t)1 << 40) || !fti_buf_reserve(&tmp, (size_t)f->sec_len))
            return fti_error_set(err, FTI_ERR_NOMEM, "merge: out of memory");
        if (!fti__st_fd_pread(r->part_fds[f->part], tmp.data, (size_t)f->sec_len, f->sec_off)) {
            fti_buf_free(&tmp);
            return fti_error_set(err, FTI_ERR_FORMAT, "merge: partial %d: cannot read %s",
                                 f->part, f->name);
        }
        sec = (const unsigned char *)tmp.data;
        len = (size_t)f->sec_len;
        if (!fti__st_parse_section(sec, len, (uint32_t)fi, &f->out, base, NULL)) {
            fti_buf_free(&tmp);
            return fti_error_set(err, FTI_ERR_FORMAT, "merge: partial %d: bad section for %s",
                                 f->part, f->name);
        }
    } else if (f->reused) {
        sec = f->par_sec;
        len = f->par_len;
        if (!r->shard_n &&
            !fti__st_parse_section(sec, len, (uint32_t)fi, &f->out, base, NULL)) {
            fti__st_out_free(&f->out);
            f->reused = 0; /* cannot happen: the section was walked before */
            return fti_error_set(err, FTI_ERR_FORMAT, "ingest: bad records section");
        }
    } else if (f->hashed || r->shard_n) {
        fti__st_pack_file(&b, f);
        if (b.oom) {
            fti_buf_free(&b);
            return fti_error_set(err, FTI_ERR_NOMEM, "ingest: out of memory");
        }
        sec = (const unsigned char *)b.data;
        len = b.len;
        for (i = 0; i < f->out.n_docs; i++) {
            fti__st_doc *d = &f->out.docs[i];
            d->text_off += base;
            fti_free(d->text);
            d->text = NULL;
        }
    }
    if (r->shard_n) {
        rc = fti__st_part_put(r, fi, sec, len);
        fti__st_out_free(&f->out);
        if (rc != FTI_OK)
            fti_error_set(err, rc, "%s: cannot write the partial: %s", r->part.tmp_path,
                          fti_result_str(rc));
    } else if (f->hashed && sec) {
        rc = fti__st_objw_write(&r->recs, sec, len);
        if (rc != FTI_OK)
            fti_error_set(err, rc, "%s: cannot write the records pack: %s", r->recs.af.tmp_path,
                          fti_result_str(rc));
    }
    if (f->reused && f->part < 0)
        (void)fti_map_drop(&r->parent_recs,
                           (size_t)(f->par_sec - (const unsigned char *)r->parent_recs.data), len);
    fti_buf_free(&b);
    fti_buf_free(&tmp);
    return rc;
}

/* Files are processed in batches of about this many input bytes: only one batch's inputs and
 * documents are in memory at a time. */
#ifndef FTI_STORE_BATCH_BYTES
#define FTI_STORE_BATCH_BYTES ((uint64_t)16 << 20)
#endif

/* Phase B: process (or take from the parent / the partials) every file, batch by batch, and hand
 * the results on in file order. */
static fti_result fti__st_phase_b(fti__st_run *r, fti_pool *pool, fti_error *err) {
    size_t i = 0, k;
    fti_result rc = FTI_OK;
    while (i < r->n_files && rc == FTI_OK) {
        size_t j = i, n_bd = 0;
        uint64_t bytes = 0;
        fti__st_doc **bd = NULL;
        while (j < r->n_files) {
            const fti__st_file *f = &r->files[j];
            uint64_t add = (f->mine && f->hashed && !f->reused && f->part < 0) ? f->size : 0;
            if (j > i && bytes + add > FTI_STORE_BATCH_BYTES) break;
            bytes += add;
            j++;
            if (j - i >= 4096) break;
        }
        r->n_units = 0;
        for (k = i; k < j && rc == FTI_OK; k++) {
            fti__st_file *f = &r->files[k];
            fti_error ferr;
            if (!f->mine || !f->hashed || f->reused || f->part >= 0) continue;
            if (fti_map_open(&f->map, f->path, &ferr) != FTI_OK) {
                if (ferr.code == FTI_ERR_NOMEM) {
                    rc = fti_error_set(err, FTI_ERR_NOMEM, "%s: out of memory", f->path);
                    break;
                }
                fti__st_reject(&f->out, (uint32_t)k, "", "unreadable", "%s", ferr.msg);
                continue;
            }
            f->mapped = 1;
            if (fti__st_make_units(r, (uint32_t)k) != FTI_OK)
                rc = fti_error_set(err, FTI_ERR_NOMEM, "ingest: out of memory");
        }
        if (rc == FTI_OK && r->n_units) {
            fti__st_len_idx *li;
            r->unit_out = (fti__st_out *)fti_calloc(r->n_units + 1, sizeof *r->unit_out);
            r->order = (size_t *)fti_malloc((r->n_units + 1) * sizeof *r->order);
            li = (fti__st_len_idx *)fti_malloc((r->n_units + 1) * sizeof *li);
            if (!r->unit_out || !r->order || !li) {
                fti_free(li);
                rc = fti_error_set(err, FTI_ERR_NOMEM, "ingest: out of memory");
            } else {
                for (k = 0; k < r->n_units; k++) li[k].len = r->units[k].len, li[k].idx = k;
                qsort(li, r->n_units, sizeof *li, fti__st_len_idx_cmp);
                for (k = 0; k < r->n_units; k++) r->order[k] = li[k].idx;
                fti_free(li);
                r->next = 0;
                fti_pool_each(pool, fti__st_phase_units, r);
                for (k = 0; k < r->n_units; k++) {
                    fti__st_file *f = &r->files[r->units[k].file];
                    if (!fti__st_out_move(&f->out, &r->unit_out[k])) {
                        rc = fti_error_set(err, FTI_ERR_NOMEM, "ingest: out of memory");
                        break;
                    }
                }
            }
            if (r->unit_out) {
                for (k = 0; k < r->n_units; k++) fti__st_out_free(&r->unit_out[k]);
                fti_free(r->unit_out);
                r->unit_out = NULL;
            }
            fti_free(r->order);
            r->order = NULL;
        }
        /* hashes and MinHash signatures of the new documents (parallel) */
        for (k = i; k < j && rc == FTI_OK; k++) {
            if (r->files[k].out.oom)
                rc = fti_error_set(err, FTI_ERR_NOMEM, "ingest: out of memory in %s",
                                   r->files[k].path);
            if (r->files[k].mapped) n_bd += r->files[k].out.n_docs;
        }
        if (rc == FTI_OK && n_bd) {
            size_t q = 0;
            bd = (fti__st_doc **)fti_malloc((n_bd + 1) * sizeof *bd);
            if (!bd) {
                rc = fti_error_set(err, FTI_ERR_NOMEM, "ingest: out of memory");
            } else {
                fti__st_mh_job job;
                for (k = i; k < j; k++) {
                    size_t q2;
                    if (!r->files[k].mapped) continue;
                    for (q2 = 0; q2 < r->files[k].out.n_docs; q2++)
                        bd[q++] = &r->files[k].out.docs[q2];
                }
                job.r = r;
                job.docs = bd;
                fti_pool_for(pool, n_bd, 64, fti__st_mh_task, &job);
                for (q = 0; q < n_bd; q++)
                    if (!bd[q]->mh) rc = fti_error_set(err, FTI_ERR_NOMEM, "ingest: out of memory");
            }
            fti_free(bd);
        }
        for (k = i; k < j; k++) {
            fti__st_file *f = &r->files[k];
            if (rc == FTI_OK) rc = fti__st_emit_file(r, k, err);
            if (f->mapped) fti_map_close(&f->map);
            f->mapped = 0;
            if (f->reused || f->part >= 0) r->bytes_done += f->size;
        }
        fti__st_progress(r, "ingest", r->bytes_done, r->bytes_total);
        i = j;
    }
    return rc;
}

/* The plan of a run: per-record options and every input's name, in order. Partials of one plan
 * merge into the version a single run over the same inputs makes. */
static void fti__st_plan(fti__st_run *r, unsigned char out[32]) {
    fti_sha256 sh;
    size_t i;
    fti_sha256_init(&sh);
    fti_sha256_update(&sh, "fti-plan 1\n", 11);
    fti_sha256_update(&sh, r->proc_key, 32);
    for (i = 0; i < r->n_files; i++)
        fti_sha256_update(&sh, r->files[i].name, strlen(r->files[i].name) + 1);
    fti_sha256_final(&sh, out);
}

/* 1 when a's date is a sortable one (a normalized date: YYYY-MM-DD...) later than b's, or b has
 * none. */
static int fti__st_newer(const fti__st_doc *a, const fti__st_doc *b) {
    const char *x = a->date, *y = b->date;
    int i;
    for (i = 0; x && i < 10; i++)
        if ((i == 4 || i == 7) ? x[i] != '-' : !(x[i] >= '0' && x[i] <= '9')) x = NULL;
    for (i = 0; y && i < 10; i++)
        if ((i == 4 || i == 7) ? y[i] != '-' : !(y[i] >= '0' && y[i] <= '9')) y = NULL;
    return x && (!y || strcmp(x, y) > 0);
}

/* Exact duplicates: open addressing on h_text (text compared on a hash match). FTI_ERR_IO when a
 * text cannot be read back. */
static fti_result fti__st_exact_dups(const fti__st_run *r, fti__st_doc **docs, size_t n,
                                     size_t *n_dup) {
    size_t cap = 16, i;
    uint32_t *tab;
    while (cap < n * 2) cap *= 2;
    tab = (uint32_t *)fti_malloc(cap * sizeof *tab);
    if (!tab) return FTI_ERR_NOMEM;
    memset(tab, 0xFF, cap * sizeof *tab);
    *n_dup = 0;
    for (i = 0; i < n; i++) {
        fti__st_doc *d = docs[i];
        size_t k = (size_t)d->h_text & (cap - 1);
        while (tab[k] != 0xFFFFFFFFu) {
            fti__st_doc *o = docs[tab[k]];
            int eq = o->h_text == d->h_text && o->text_len == d->text_len ? fti__st_text_eq(r, o, d)
                                                                         : 0;
            if (eq < 0) {
                int e = errno; /* what the read met, for the caller's message */
                fti_free(tab);
                errno = e;
                return FTI_ERR_IO;
            }
            if (eq) break;
            k = (k + 1) & (cap - 1);
        }
        if (tab[k] == 0xFFFFFFFFu) {
            tab[k] = (uint32_t)i;
        } else {
            d->status = 1;
            d->dup_of = tab[k];
            (*n_dup)++;
        }
    }
    fti_free(tab);
    return FTI_OK;
}

/* Loads the texts of docs[0..n) (a batch) into one buffer; each doc's text points into it until
 * fti__st_batch_unload. */
static fti_result fti__st_batch_load(const fti__st_run *r, fti__st_doc **docs, size_t n,
                                     fti_buf *buf, fti_error *err) {
    size_t i, total = 0, pos = 0;
    for (i = 0; i < n; i++) total += docs[i]->text_len + 1;
    buf->len = 0;
    if (!fti_buf_reserve(buf, total + 1))
        return fti_error_set(err, FTI_ERR_NOMEM, "ingest: out of memory");
    for (i = 0; i < n; i++) {
        if (!fti__st_text_load(r, docs[i], buf->data + pos))
            return fti_error_set(err, FTI_ERR_IO, "%s: cannot read back: %s",
                                 r->recs.af.tmp_path, fti__st_read_error(errno));
        docs[i]->text = buf->data + pos;
        pos += docs[i]->text_len;
        buf->data[pos++] = 0;
    }
    buf->len = pos;
    return FTI_OK;
}

static void fti__st_batch_unload(fti__st_doc **docs, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) docs[i]->text = NULL;
}

/* The end of the batch of documents starting at b: about 8 MiB of text or 4096 documents. */
static size_t fti__st_batch_end(fti__st_doc **docs, size_t n, size_t b) {
    size_t e = b, bytes = 0;
    while (e < n && (e == b || (bytes + docs[e]->text_len <= ((size_t)8 << 20) && e - b < 4096)))
        bytes += docs[e++]->text_len;
    return e;
}


/* Reads a ref file (NULL if absent or not an id). */
static int fti__st_read_ref(const char *home, const char *rel, char out[65]) {
    char *p = fti__st_path3(home, "store/refs", rel);
    void *data = NULL;
    size_t len = 0;
    int ok = 0;
    if (!p) return 0;
    if (fti_file_read(p, 256, &data, &len, NULL) == FTI_OK) {
        const char *s = (const char *)data;
        while (len && (s[len - 1] == '\n' || s[len - 1] == ' ' || s[len - 1] == '\r')) len--;
        if (len == 64 && fti__st_is_hex_id(s, 64)) {
            memcpy(out, s, 64);
            out[64] = 0;
            ok = 1;
        }
    }
    fti_free(data);
    fti_free(p);
    return ok;
}

/* 1 when the ref file is there but holds no version id (damaged, or edited by hand): it names
 * a version no one can tell, so what reads it must not take it for "no ref". */
static int fti__st_ref_damaged(const char *home, const char *rel) {
    char id[65], *p;
    int bad;
    if (fti__st_read_ref(home, rel, id)) return 0;
    p = fti__st_path3(home, "store/refs", rel);
    bad = p && fti_path_exists(p);
    fti_free(p);
    return bad;
}

static fti_result fti__st_write_ref(const char *home, const char *rel, const char *id,
                                    fti_error *err) {
    char *p = fti__st_path3(home, "store/refs", rel);
    char line[66];
    fti_result rc;
    if (!p) return fti_error_set(err, FTI_ERR_NOMEM, "store: out of memory");
    snprintf(line, sizeof line, "%s\n", id);
    rc = fti_file_write_atomic(p, line, 65, err);
    fti_free(p);
    return rc;
}

/* home/store/versions/<id><ext>: the manifest (".json") or a removed version's tombstone
 * (".removed", see fti_store_gc). */
static char *fti__st_version_path(const char *home, const char *id, const char *ext) {
    fti_buf p;
    memset(&p, 0, sizeof p);
    fti_buf_printf(&p, "%s/store/versions/%s%s", home, id, ext);
    if (p.oom) {
        fti_buf_free(&p);
        return NULL;
    }
    return p.data;
}

static char *fti__st_manifest_path(const char *home, const char *id) {
    return fti__st_version_path(home, id, ".json");
}

static int fti__st_tag_ok(const char *name) {
    size_t i, n = name ? strlen(name) : 0;
    if (n == 0 || n > 100 || name[0] == '.') return 0;
    for (i = 0; i < n; i++) {
        char c = name[i];
        if (!(fti__st_is_alnum((unsigned char)c) || c == '-' || c == '_' || c == '.')) return 0;
    }
    return 1;
}

/* The tag (write = 0: only its checks), by a caller that holds the store lock (a committing
 * ingest, fti_store_tag). */
static fti_result fti__st_tag(const char *home, const char *name, const char *id, int write,
                              fti_error *err) {
    char rel[128], *mp;
    int exists;
    if (!home || !name || !id) return fti_error_set(err, FTI_ERR_INVALID, "tag: NULL argument");
    if (!fti__st_tag_ok(name))
        return fti_error_set(err, FTI_ERR_INVALID, "tag '%.100s': a tag is 1-100 letters, digits, "
                             "'-', '_' or '.', not starting with '.'", name);
    if (strlen(id) != 64 || !fti__st_is_hex_id(id, 64))
        return fti_error_set(err, FTI_ERR_INVALID, "tag %s: '%.80s' is not a version id (64 hex "
                             "digits: fti_store_resolve turns a prefix, a tag or \"latest\" "
                             "into one)", name, id);
    mp = fti__st_manifest_path(home, id);
    exists = mp && fti_path_exists(mp);
    fti_free(mp);
    if (!exists) return fti_error_set(err, FTI_ERR_NOT_FOUND, "tag: version %s not found", id);
    if (!write) return FTI_OK;
    if (strcmp(name, "latest") == 0) return fti__st_write_ref(home, "latest", id, err);
    snprintf(rel, sizeof rel, "tags/%s", name);
    return fti__st_write_ref(home, rel, id, err);
}

static fti_result fti__st_lock(const char *home, int shared, int *fd, fti_error *err);

/* Checks first (a bad name or a missing version needs no lock), then again under the store lock
 * (shared: gc, which removes versions, and committing ingests hold it exclusively), so a tag
 * never names a version gc is removing. */
FTIDEF fti_result fti_store_tag(const char *home, const char *name, const char *id,
                                fti_error *err) {
    int fd = -1;
    fti_result rc = fti__st_tag(home, name, id, 0, err);
    if (rc != FTI_OK || (rc = fti__st_lock(home, 1, &fd, err)) != FTI_OK) return rc;
    rc = fti__st_tag(home, name, id, 1, err);
    close(fd);
    return rc;
}

static fti_result fti__st_load_manifest(const char *home, const char *id, fti_json_doc **out,
                                        fti_error *err);
static char *fti__st_file_object(const char *home, const fti_json *files, const char *name);


typedef struct fti__st_reason_count {
    const char *reason;
    uint64_t count;
} fti__st_reason_count;

static int fti__st_sz_cmp(const void *a, const void *b) {
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : (x > y);
}

static int fti__st_u64_cmp(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : (x > y);
}

/* === ingest, sharded ingest and merge: the entry points ===================================== */

/* For an ingest that finds version id made already: NULL when every object its manifest names
 * is there with its recorded size; else the parsed manifest (or (fti_json_doc *)r when it cannot
 * be read), and a warning names what is missing. */
static fti_json_doc *fti__st_missing_object(fti__st_run *r, const char *id) {
    fti_json_doc *jd = NULL;
    fti_error e;
    const fti_json *c;
    int bad = 0;
    if (fti__st_load_manifest(r->home, id, &jd, &e) != FTI_OK) {
        fti__st_log(r, FTI_LOG_WARN, "%s: the version is made again", e.msg);
        return (fti_json_doc *)r;
    }
    c = fti_json_get(fti_json_root(jd), "files");
    for (c = c && c->type == FTI_JSON_OBJECT ? c->child : NULL; c; c = c->next) {
        const char *hex = fti_json_get_str(c, "sha256", "");
        char *p = strlen(hex) == 64 && fti__st_is_hex_id(hex, 64)
                      ? fti__st_object_path(r->home, hex)
                      : NULL;
        struct stat st;
        int found = p && stat(p, &st) == 0;
        if (!found || (int64_t)st.st_size != fti_json_get_int(c, "bytes", -1)) {
            fti__st_log(r, FTI_LOG_WARN, "version %.12s: its %s object %s is %s: made again", id,
                        c->key, p ? p : hex, found ? "of another size" : "missing");
            bad = 1;
        }
        fti_free(p);
    }
    if (!bad) {
        fti_json_free(jd);
        return NULL;
    }
    return jd;
}

/* 1 when the objects this run wrote are the ones manifest jd names, name by name. */
static int fti__st_same_objects(const fti__st_run *r, const fti_json_doc *jd) {
    const fti_json *files = fti_json_get(fti_json_root(jd), "files"), *c;
    size_t k, n = 0;
    for (c = files && files->type == FTI_JSON_OBJECT ? files->child : NULL; c; c = c->next) n++;
    if (n != r->n_objs) return 0;
    for (k = 0; k < r->n_objs; k++) {
        c = fti_json_get(files, r->objs[k].name);
        if (strcmp(fti_json_get_str(c, "sha256", ""), r->objs[k].hex) != 0) return 0;
    }
    return 1;
}

/* A version's id: the processing options (tokenizer "train", "none" or "file:<sha256>") and
 * every input's name and hash. */
static fti_result fti__st_version_id(const fti__st_run *r, int vocab, const char *tokenizer,
                                     unsigned char vid[32], fti_error *err) {
    fti_sha256 sh;
    fti_buf cfg;
    char d6[64];
    size_t i;
    memset(&cfg, 0, sizeof cfg);
    fti__st_proc_key(&r->o, &cfg);
    fti_buf_printf(&cfg, "|dataset v%d|dedup=%s|val=%d|chunk=%d/%d|vocab=%d|template=%s%s%s",
                   FTI__ST_FORMAT, fti__st_dbl6(r->o.dedup_threshold, d6), r->o.val_percent,
                   r->o.chunk_tokens, r->o.chunk_overlap, vocab, FTI_TEMPLATE_TITLE,
                   FTI_TEMPLATE_BODY, FTI_TEMPLATE_END);
    fti_buf_printf(&cfg, "|tokenizer=%s", tokenizer);
    if (cfg.oom) { /* a truncated key would give the version another id */
        fti_buf_free(&cfg);
        return fti_error_set(err, FTI_ERR_NOMEM, "ingest: out of memory");
    }
    fti_sha256_init(&sh);
    fti_sha256_update(&sh, cfg.data, cfg.len);
    fti_buf_free(&cfg);
    for (i = 0; i < r->n_files; i++) {
        const fti__st_file *f = &r->files[i];
        unsigned char zero[32];
        memset(zero, 0, sizeof zero);
        fti_sha256_update(&sh, "\n", 1);
        fti_sha256_update(&sh, f->name, strlen(f->name) + 1);
        fti_sha256_update(&sh, f->hashed ? f->sha : zero, 32);
    }
    fti_sha256_final(&sh, vid);
    return FTI_OK;
}

/* 1 when version id exists whole (its manifest and every object it names, of its recorded size)
 * and its tokenizer object is tok_hex. */
static int fti__st_trained_as(const fti__st_run *r, const char *id, const char *tok_hex) {
    fti_json_doc *jd = NULL;
    const fti_json *files, *c;
    int same = 0;
    char *mp = fti__st_manifest_path(r->home, id);
    if (mp && fti_path_exists(mp) && fti__st_load_manifest(r->home, id, &jd, NULL) == FTI_OK) {
        files = fti_json_get(fti_json_root(jd), "files");
        same = !strcmp(fti_json_get_str(fti_json_get(files, "tokenizer"), "sha256", ""),
                       tok_hex);
        for (c = files && files->type == FTI_JSON_OBJECT ? files->child : NULL; c && same;
             c = c->next) {
            const char *hex = fti_json_get_str(c, "sha256", "");
            char *p = strlen(hex) == 64 && fti__st_is_hex_id(hex, 64)
                          ? fti__st_object_path(r->home, hex)
                          : NULL;
            struct stat st;
            same = p && stat(p, &st) == 0 &&
                   (int64_t)st.st_size == fti_json_get_int(c, "bytes", -1);
            fti_free(p);
        }
    }
    fti_json_free(jd);
    fti_free(mp);
    return same;
}

static fti_result fti__st_ingest_run(fti__st_run *r, char out_id[65], size_t *reused,
                                     fti_error *err);
static fti_result fti__st_partial_run(fti__st_run *r, fti_buf *out_path, fti_error *err);

/* Takes the store lock: exclusive for a run that commits, shared for sharded runs (several may
 * write partials at once). */
static fti_result fti__st_lock(const char *home, int shared, int *fd, fti_error *err) {
    char *lock_path = fti__st_path3(home, "store", "lock");
    fti_result rc = FTI_OK;
    *fd = -1;
    if (!lock_path) return fti_error_set(err, FTI_ERR_NOMEM, "ingest: out of memory");
    if ((rc = fti__lock_file(lock_path, shared, 0, fd, err)) == FTI_ERR_BUSY)
        rc = fti_error_set(err, FTI_ERR_BUSY,
                           "%s: an ingest, a gc or a tag holds the store lock; try again when "
                           "it is done", lock_path);
    fti_free(lock_path);
    return rc;
}

static fti_result fti__st_rm_cb(void *user, const char *path, uint64_t size) {
    (void)user, (void)size;
    fti_file_remove(path, NULL);
    return FTI_OK;
}

static void fti__st_run_free(fti__st_run *r);

/* A new run, or NULL when out of memory. */
static fti__st_run *fti__st_run_new(const char *home, const fti_ingest_opts *opts) {
    fti__st_run *r = (fti__st_run *)fti_calloc(1, sizeof *r);
    int oom = 0;
    if (!r) return NULL;
    r->home = home;
    r->o = fti_ingest_opts_resolve(opts);
    r->proc.o = &r->o;
    r->proc.required_title = fti__st_list_pos(r->o.required, "title", 5) >= 0;
    r->proc.required_author = fti__st_list_pos(r->o.required, "author", 6) >= 0;
    r->proc.required_date = fti__st_list_pos(r->o.required, "date", 4) >= 0;
    fti__st_mh_init(&r->mh);
    r->proc.sha_fast = fti__st_sha_fast();
    r->recs_fd = -1;
    r->part.fd = -1;
    {
        fti_buf k;
        memset(&k, 0, sizeof k);
        fti__st_proc_key(&r->o, &k);
        fti__st_sha256(k.data, k.len, r->proc_key);
        oom = k.oom; /* a truncated key would name another processing */
        fti_buf_free(&k);
    }
    fti_mutex_init(&r->mu);
    if (oom) {
        fti__st_run_free(r);
        return NULL;
    }
    return r;
}

static void fti__st_run_free(fti__st_run *r) {
    size_t i;
    if (!r) return;
    for (i = 0; i < r->n_files; i++) {
        fti__st_file *f = &r->files[i];
        if (f->mapped) fti_map_close(&f->map);
        fti__st_out_free(&f->out);
        fti_free(f->path);
        fti_free(f->name);
    }
    fti_free(r->files);
    fti_free(r->units);
    fti_free(r->order);
    fti_free(r->parent_tok);
    if (r->have_parent_recs) fti_map_close(&r->parent_recs);
    if (r->recs_fd >= 0) close(r->recs_fd);
    fti__st_objw_abort(&r->recs);
    if (r->part.path) fti_afile_abort(&r->part);
    fti_buf_free(&r->part_index);
    for (i = 0; i < r->n_parts; i++)
        if (r->part_fds[i] >= 0) close(r->part_fds[i]);
    fti_free(r->part_fds);
    fti_mutex_destroy(&r->mu);
    fti_free(r);
}

/* An entry of an input folder fti_walk does not walk: listed, to be rejected with why. */
static fti_result fti__st_walk_skip_cb(void *user, const char *path, const char *why) {
    fti__st_run *r = (fti__st_run *)user;
    fti_result rc = fti__st_walk_cb(user, path, 0);
    if (rc == FTI_OK) r->files[r->n_files - 1].skip_why = why;
    return rc;
}

/* Walks the input paths into r->files. */
static fti_result fti__st_walk_inputs(fti__st_run *r, const char *const *paths, size_t n_paths,
                                      fti_error *err) {
    size_t i;
    fti_result rc = FTI_OK;
    for (i = 0; i < n_paths && rc == FTI_OK; i++) {
        r->arg = paths[i];
        if (!fti_path_exists(paths[i]))
            return fti_error_set(err, FTI_ERR_NOT_FOUND, "%s: no such file or directory",
                                 paths[i]);
        rc = fti_walk_skips(paths[i], fti__st_walk_cb, fti__st_walk_skip_cb, r, err);
        if (rc == FTI_ERR_NOMEM) /* the callback has no error to fill */
            rc = fti_error_set(err, rc, "%s: out of memory while listing the inputs", paths[i]);
    }
    for (i = 0; i < r->n_files; i++) {
        r->files[i].part = -1;
        r->files[i].mine = 1;
    }
    return rc;
}

FTIDEF fti_result fti_store_ingest(const char *home, const char *const *paths, size_t n_paths,
                                   const fti_ingest_opts *opts, char out_id[65], size_t *reused,
                                   fti_error *err) {
    fti__st_run *r;
    fti_result rc;
    int lock_fd = -1;
    if (!home || !paths || n_paths == 0 || !out_id)
        return fti_error_set(err, FTI_ERR_INVALID, "ingest: no workspace or no input paths");
    out_id[0] = 0;
    { /* a mistyped input path leaves no new workspace behind (the walk checks them again) */
        size_t i;
        for (i = 0; i < n_paths; i++)
            if (!paths[i] || !fti_path_exists(paths[i]))
                return fti_error_set(err, paths[i] ? FTI_ERR_NOT_FOUND : FTI_ERR_INVALID,
                                     "%s: no such file or directory",
                                     paths[i] ? paths[i] : "(null)");
    }
    rc = fti_workspace_init(home, err);
    if (rc != FTI_OK) return rc;
    rc = fti__st_lock(home, 0, &lock_fd, err);
    if (rc != FTI_OK) return rc;
    r = fti__st_run_new(home, opts);
    if (!r) {
        close(lock_fd);
        return fti_error_set(err, FTI_ERR_NOMEM, "ingest: out of memory");
    }
    rc = fti__st_walk_inputs(r, paths, n_paths, err);
    if (rc == FTI_OK) rc = fti__st_ingest_run(r, out_id, reused, err);
    fti__st_run_free(r);
    close(lock_fd);
    return rc;
}

FTIDEF fti_result fti_store_ingest_partial(const char *home, const char *const *paths,
                                           size_t n_paths, const fti_ingest_opts *opts,
                                           unsigned shard, unsigned n_shards, fti_buf *out_path,
                                           fti_error *err) {
    fti__st_run *r;
    fti_result rc;
    int lock_fd = -1;
    size_t i;
    if (!home || !paths || n_paths == 0)
        return fti_error_set(err, FTI_ERR_INVALID, "ingest: no workspace or no input paths");
    if (n_shards < 1 || n_shards > 100000 || shard >= n_shards)
        return fti_error_set(err, FTI_ERR_INVALID, "ingest: shard %u/%u: need 0 <= i < N", shard,
                             n_shards);
    rc = fti_workspace_init(home, err);
    if (rc != FTI_OK) return rc;
    rc = fti__st_lock(home, 1, &lock_fd, err);
    if (rc != FTI_OK) return rc;
    r = fti__st_run_new(home, opts);
    if (!r) {
        close(lock_fd);
        return fti_error_set(err, FTI_ERR_NOMEM, "ingest: out of memory");
    }
    r->shard_i = shard;
    r->shard_n = n_shards;
    rc = fti__st_walk_inputs(r, paths, n_paths, err);
    if (rc == FTI_OK) {
        /* the partition: by each input's name (its identity in the version), so every shard
         * agrees without talking to the others */
        for (i = 0; i < r->n_files; i++)
            r->files[i].mine =
                fti_hash64(r->files[i].name, strlen(r->files[i].name), 0x7368617264ull) %
                    n_shards == shard;
        rc = fti__st_partial_run(r, out_path, err);
    }
    fti__st_run_free(r);
    close(lock_fd);
    return rc;
}

/* --- partials ---
 *   0 "FTIPART\0"  8 u32 version (FTI__ST_RECS_VER)  12 u32 shard  16 u32 n_shards
 *   20 u32 n_files (all shards)  24 u32 n_mine  28 u32 0  32 u8[32] plan  64 u64 index offset
 *   72 u64 index length  80 ...
 *   then each of the shard's files' section (as in the records pack), then the index: per file
 *   u32 number, u8 kind, hashed, reused, failed, u64 size, u8[32] sha, u64 section offset,
 *   u64 section length, str name, str path. */
#define FTI__ST_PART_HDR 80
/* the smallest index entry: number, flags, size, sha, offset, length and two empty strings */
#define FTI__ST_PART_ENTRY_MIN 72

static fti_result fti__st_partial_run(fti__st_run *r, fti_buf *out_path, fti_error *err) {
    fti_pool *pool = NULL;
    fti_result rc = FTI_OK;
    char name[96], *dir = NULL, *path = NULL, plan_hex[65];
    unsigned char hdr[FTI__ST_PART_HDR];
    size_t i, n_mine = 0;
    char parent[65];
    fti__st_plan(r, r->plan);
    fti_sha256_hex(r->plan, plan_hex);
    snprintf(name, sizeof name, "%.16s-%u-of-%u.part", plan_hex, r->shard_i, r->shard_n);
    dir = fti__st_path3(r->home, "store/partials", NULL);
    path = fti__st_store_path(r->home, "partials", name);
    if (!dir || !path) {
        rc = fti_error_set(err, FTI_ERR_NOMEM, "ingest: out of memory");
        goto done;
    }
    rc = fti_mkdirs(dir, err);
    if (rc != FTI_OK) goto done;
    pool = fti_pool_create(r->o.n_threads);
    r->t_last_ns = fti_time_ns();
    r->c_last = clock();
    fti__st_progress(r, "scan", 0, r->n_files);
    r->next = 0;
    fti_pool_each(pool, fti__st_phase_hash, r);
    if (r->hash_oom) {
        rc = fti_error_set(err, FTI_ERR_NOMEM, "ingest: out of memory while reading the inputs");
        goto done;
    }
    for (i = 0; i < r->n_files; i++)
        if (r->files[i].mine) {
            n_mine++;
            r->bytes_total += r->files[i].size;
        }
    fti__st_mark(r, 0);
    /* the shard's files may reuse the `latest` version's results too */
    if (fti__st_read_ref(r->home, "latest", parent)) {
        fti_json_doc *jd = NULL;
        if (fti__st_load_manifest(r->home, parent, &jd, NULL) == FTI_OK) {
            const fti_json *files = fti_json_get(fti_json_root(jd), "files");
            fti__st_reuse(r, files);
        }
        fti_json_free(jd);
    }
    rc = fti_afile_open(&r->part, path, err);
    if (rc != FTI_OK) goto done;
    memset(hdr, 0, sizeof hdr);
    fti_afile_write(&r->part, hdr, sizeof hdr);
    r->part_bytes = FTI__ST_PART_HDR;
    rc = fti__st_phase_b(r, pool, err);
    fti__st_mark(r, 1);
    if (rc != FTI_OK) goto done;
    if (r->part_index.oom) {
        rc = fti_error_set(err, FTI_ERR_NOMEM, "ingest: out of memory");
        goto done;
    }
    fti_afile_write(&r->part, r->part_index.data ? r->part_index.data : "", r->part_index.len);
    memcpy(hdr, "FTIPART", 8);
    fti_store_u32(hdr + 8, FTI__ST_RECS_VER);
    fti_store_u32(hdr + 12, r->shard_i);
    fti_store_u32(hdr + 16, r->shard_n);
    fti_store_u32(hdr + 20, (uint32_t)r->n_files);
    fti_store_u32(hdr + 24, (uint32_t)n_mine);
    memcpy(hdr + 32, r->plan, 32);
    fti_store_u64(hdr + 64, r->part_bytes);
    fti_store_u64(hdr + 72, (uint64_t)r->part_index.len);
    if (r->part.status == FTI_OK && r->part.fd >= 0 &&
        pwrite(r->part.fd, hdr, sizeof hdr, 0) != (ssize_t)sizeof hdr)
        r->part.status = FTI_ERR_IO;
    fti__st_progress(r, "commit", 1, 1);
    rc = fti_afile_commit(&r->part, err);
    r->part.path = NULL;
    fti__st_mark(r, 6);
    if (rc == FTI_OK && out_path) fti_buf_puts(out_path, path);
    fti__st_log(r, FTI_LOG_INFO, "partial %u/%u: %lu of %lu files, %lu bytes", r->shard_i,
                r->shard_n, (unsigned long)n_mine, (unsigned long)r->n_files,
                (unsigned long)r->bytes_total);
done:
    fti_free(dir);
    fti_free(path);
    fti_pool_free(pool);
    return rc;
}

typedef struct fti__st_partlist {
    char **paths;
    size_t n, cap;
} fti__st_partlist;

static fti_result fti__st_partlist_cb(void *user, const char *path, uint64_t size) {
    fti__st_partlist *l = (fti__st_partlist *)user;
    size_t n = strlen(path);
    (void)size;
    if (n < 5 || strcmp(path + n - 5, ".part") != 0) return FTI_OK;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        char **p = (char **)fti_realloc(l->paths, cap * sizeof *p);
        if (!p) return FTI_ERR_NOMEM;
        l->paths = p;
        l->cap = cap;
    }
    l->paths[l->n] = fti_strdup(path);
    if (!l->paths[l->n]) return FTI_ERR_NOMEM;
    l->n++;
    return FTI_OK;
}

/* Opens the partials and rebuilds the whole run's file list from them. */
static fti_result fti__st_load_partials(fti__st_run *r, const char *const *paths, size_t n,
                                        fti_error *err) {
    size_t p, i, filled = 0;
    unsigned char plan[32], *seen = NULL;
    uint32_t n_shards = 0, n_total = 0;
    uint64_t all_bytes = 0;
    fti_result rc = FTI_OK;
    r->part_fds = (int *)fti_malloc((n + 1) * sizeof *r->part_fds);
    if (!r->part_fds) return fti_error_set(err, FTI_ERR_NOMEM, "merge: out of memory");
    for (p = 0; p < n; p++) {
        struct stat st;
        r->part_fds[p] = -1;
        if (stat(paths[p], &st) == 0) all_bytes += (uint64_t)st.st_size;
    }
    r->n_parts = n;
    /* (an error in the loop sets rc and breaks out, so that seen is freed below) */
    for (p = 0; p < n && rc == FTI_OK; p++) {
        unsigned char hdr[FTI__ST_PART_HDR];
        uint64_t ix_off, ix_len, fsize;
        uint32_t shard, ns, nt, nm, q;
        void *ix = NULL;
        fti_reader rd;
        struct stat st;
        int fd = fti__sys_open(paths[p], O_RDONLY, 0);
        r->part_fds[p] = fd;
        if (fd < 0 || fstat(fd, &st) != 0) {
            rc = fti_error_set(err, FTI_ERR_NOT_FOUND, "%s: cannot open partial", paths[p]);
            break;
        }
        fsize = (uint64_t)st.st_size;
        if (!fti__st_fd_pread(fd, hdr, sizeof hdr, 0) || memcmp(hdr, "FTIPART", 8) != 0) {
            rc = fti_error_set(err, FTI_ERR_FORMAT, "%s: not an fti partial", paths[p]);
            break;
        }
        if (fti_load_u32(hdr + 8) != FTI__ST_RECS_VER) {
            rc = fti_error_set(err, FTI_ERR_FORMAT,
                               "%s: a partial of another fti version (layout %lu, this one reads "
                               "%d): run the shards' ingest again with this one",
                               paths[p], (unsigned long)fti_load_u32(hdr + 8), FTI__ST_RECS_VER);
            break;
        }
        shard = fti_load_u32(hdr + 12);
        ns = fti_load_u32(hdr + 16);
        nt = fti_load_u32(hdr + 20);
        nm = fti_load_u32(hdr + 24);
        ix_off = fti_load_u64(hdr + 64);
        ix_len = fti_load_u64(hdr + 72);
        if (ns == 0 || ns > 100000u /* as ingest --shard allows */ || shard >= ns ||
            nt > FTI_STORE_MAX_DOCS || nm > nt ||
            ix_off < FTI__ST_PART_HDR || ix_off > fsize || ix_len != fsize - ix_off ||
            ix_len > ((uint64_t)1 << 32) || nm > ix_len / FTI__ST_PART_ENTRY_MIN) {
            rc = fti_error_set(err, FTI_ERR_FORMAT, "%s: bad partial header", paths[p]);
            break;
        }
        /* every file of the run has an entry in one of the partials' indexes: no more files
         * than they can hold (n_files sizes the run's file table) */
        if (nt > all_bytes / FTI__ST_PART_ENTRY_MIN) {
            rc = fti_error_set(err, FTI_ERR_FORMAT,
                               "%s: claims %u files, more than the %llu bytes of partials hold",
                               paths[p], nt, (unsigned long long)all_bytes);
            break;
        }
        if (p == 0) {
            memcpy(plan, hdr + 32, 32);
            n_shards = ns;
            n_total = nt;
            seen = (unsigned char *)fti_calloc(ns + 1, 1);
            r->files = (fti__st_file *)fti_calloc(nt + 1, sizeof *r->files);
            if (!seen || !r->files) {
                rc = fti_error_set(err, FTI_ERR_NOMEM, "merge: out of memory");
                break;
            }
            r->n_files = r->cap_files = nt;
            for (i = 0; i < nt; i++) r->files[i].part = -1;
        } else if (memcmp(plan, hdr + 32, 32) != 0 || ns != n_shards || nt != n_total) {
            rc = fti_error_set(err, FTI_ERR_INVALID,
                               "%s: made from other inputs or options than %s (or another "
                               "shard count)",
                               paths[p], paths[0]);
            break;
        }
        if (seen[shard]) {
            rc = fti_error_set(err, FTI_ERR_INVALID, "%s: shard %u/%u given twice", paths[p],
                               shard, ns);
            break;
        }
        seen[shard] = 1;
        ix = fti_malloc((size_t)ix_len + 1);
        if (!ix) {
            rc = fti_error_set(err, FTI_ERR_NOMEM, "merge: out of memory");
            break;
        }
        if (!fti__st_fd_pread(fd, ix, (size_t)ix_len, ix_off)) {
            rc = fti_error_set(err, FTI_ERR_FORMAT, "%s: cannot read the partial's index: %s",
                               paths[p], fti__st_read_error(errno));
            fti_free(ix);
            break;
        }
        rd = fti_reader_make(ix, (size_t)ix_len);
        for (q = 0; q < nm && rc == FTI_OK; q++) {
            uint32_t gi = fti_read_u32(&rd);
            const unsigned char *fl = (const unsigned char *)fti_read_bytes(&rd, 4);
            uint64_t size = fti_read_u64(&rd);
            const unsigned char *sha = (const unsigned char *)fti_read_bytes(&rd, 32);
            uint64_t so = fti_read_u64(&rd), sl = fti_read_u64(&rd);
            int ok = 1;
            size_t nl = 0;
            char *nm_s = fti__st_unpack_str(&rd, &nl, 1, NULL, &ok);
            char *pa_s = fti__st_unpack_str(&rd, NULL, 1, NULL, &ok);
            fti__st_file *f;
            if (rd.err || !ok || !fl || !sha || !nm_s || !pa_s || gi >= nt ||
                r->files[gi].name || fl[0] >= sizeof fti__st_kind_names / sizeof(char *) ||
                so < FTI__ST_PART_HDR || so > ix_off || sl > ix_off - so) {
                fti_free(nm_s);
                fti_free(pa_s);
                rc = fti_error_set(err, FTI_ERR_FORMAT, "%s: bad index entry %u", paths[p], q);
                break;
            }
            f = &r->files[gi];
            f->name = nm_s;
            f->path = pa_s;
            f->kind = (fti__st_kind)fl[0];
            f->hashed = fl[1] != 0;
            f->reused = fl[2] != 0;
            f->failed = fl[3] != 0;
            f->size = size;
            memcpy(f->sha, sha, 32);
            f->part = (int)p;
            f->sec_off = so;
            f->sec_len = sl;
            f->mine = 1;
            r->bytes_total += size;
            filled++;
        }
        fti_free(ix);
    }
    if (rc == FTI_OK) {
        for (i = 0; i < n_shards && rc == FTI_OK; i++)
            if (!seen[i])
                rc = fti_error_set(err, FTI_ERR_NOT_FOUND,
                                   "merge: partial %lu of %u is missing (run ingest --shard "
                                   "%lu/%u)",
                                   (unsigned long)i, n_shards, (unsigned long)i, n_shards);
        if (rc == FTI_OK && filled != n_total)
            rc = fti_error_set(err, FTI_ERR_FORMAT, "merge: the partials cover %lu of %u files",
                               (unsigned long)filled, n_total);
    }
    fti_free(seen);
    if (rc == FTI_OK) {
        unsigned char mine[32];
        fti__st_plan(r, mine);
        if (memcmp(mine, plan, 32) != 0)
            rc = fti_error_set(err, FTI_ERR_INVALID,
                               "merge: the partials were made with other ingest options (give "
                               "merge the same record options as ingest --shard)");
    }
    return rc;
}

FTIDEF fti_result fti_store_merge(const char *home, const char *const *partials, size_t n,
                                  const fti_ingest_opts *opts, char out_id[65], fti_error *err) {
    fti__st_run *r;
    fti_result rc;
    int lock_fd = -1;
    fti__st_partlist l;
    char *pdir;
    size_t i;
    if (!home || !out_id || (n && !partials))
        return fti_error_set(err, FTI_ERR_INVALID, "merge: bad arguments");
    out_id[0] = 0;
    rc = fti_workspace_init(home, err);
    if (rc != FTI_OK) return rc;
    memset(&l, 0, sizeof l);
    pdir = fti__st_path3(home, "store/partials", NULL);
    if (!pdir) return fti_error_set(err, FTI_ERR_NOMEM, "merge: out of memory");
    if (n == 0) {
        /* every pending partial */
        if (fti_path_is_dir(pdir)) rc = fti_walk(pdir, fti__st_partlist_cb, &l, err);
        if (rc == FTI_OK && l.n == 0)
            rc = fti_error_set(err, FTI_ERR_NOT_FOUND, "%s: no partials to merge", pdir);
        partials = (const char *const *)l.paths;
        n = l.n;
    }
    if (rc == FTI_OK) rc = fti__st_lock(home, 0, &lock_fd, err);
    r = rc == FTI_OK ? fti__st_run_new(home, opts) : NULL;
    if (rc == FTI_OK && !r) rc = fti_error_set(err, FTI_ERR_NOMEM, "merge: out of memory");
    if (rc == FTI_OK) rc = fti__st_load_partials(r, partials, n, err);
    if (rc == FTI_OK) rc = fti__st_ingest_run(r, out_id, NULL, err);
    fti__st_run_free(r);
    if (rc == FTI_OK) {
        /* the merged partials are consumed (those in the workspace) */
        size_t dl = strlen(pdir);
        for (i = 0; i < n; i++)
            if (strncmp(partials[i], pdir, dl) == 0 && partials[i][dl] == '/')
                fti_file_remove(partials[i], NULL);
    }
    if (lock_fd >= 0) close(lock_fd);
    for (i = 0; i < l.n; i++) fti_free(l.paths[i]);
    fti_free(l.paths);
    fti_free(pdir);
    return rc;
}


/* Statistics of kept documents' lengths. */
static void fti__st_len_stats(fti__st_doc **kept, size_t n, fti_jw *w) {
    size_t *lens = (size_t *)fti_malloc((n + 1) * sizeof *lens), i;
    uint64_t hist[32], total = 0;
    memset(hist, 0, sizeof hist);
    for (i = 0; i < n; i++) {
        size_t L = kept[i]->text_len, b = 0;
        if (lens) lens[i] = L;
        total += L;
        while (b < 31 && ((size_t)2 << b) <= L) b++;
        hist[b]++;
    }
    fti_jw_key(w, "chars");
    fti_jw_int(w, (int64_t)total);
    fti_jw_key(w, "doc_chars_mean");
    fti_jw_num(w, n ? (double)total / (double)n : 0.0);
    if (lens && n) {
        qsort(lens, n, sizeof *lens, fti__st_sz_cmp);
        fti_jw_key(w, "doc_chars_p50");
        fti_jw_int(w, (int64_t)lens[n / 2]);
        fti_jw_key(w, "doc_chars_p90");
        fti_jw_int(w, (int64_t)lens[(n * 9) / 10]);
        fti_jw_key(w, "doc_chars_max");
        fti_jw_int(w, (int64_t)lens[n - 1]);
    }
    fti_jw_key(w, "doc_chars_log2_hist");
    fti_jw_arr_begin(w);
    for (i = 0; i < 32; i++) fti_jw_int(w, (int64_t)hist[i]);
    fti_jw_arr_end(w);
    fti_free(lens);
}

static void fti__st_jw_opt_str(fti_jw *w, const char *key, const char *v) {
    fti_jw_key(w, key);
    if (v)
        fti_jw_str(w, v);
    else
        fti_jw_null(w);
}

/* Chunk collection for the index. */
typedef struct fti__st_chunks {
    fti_chunk_in *v;
    size_t n, alloc;
} fti__st_chunks;

typedef struct fti__st_chunk_job {
    fti__st_doc **docs;
    fti__st_spans *spans;
    size_t budget, overlap;
    void *tok;
    /* with shards: each document's body tokens (body_ids[i], body_n[i] ids), so segments are
     * counted from the document's own encoding instead of encoding again */
    uint32_t **body_ids;
    size_t *body_n;
} fti__st_chunk_job;

/* Token count of a segment from the byte offsets where the document's tokens start. */
typedef struct fti__st_starts {
    const char *base; /* the document text */
    const size_t *at; /* n token start offsets, increasing */
    size_t n;
} fti__st_starts;

static size_t fti__st_lower(const size_t *a, size_t n, size_t v) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (a[mid] < v)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static size_t fti__st_starts_count(void *ctx, const char *t, size_t n) {
    const fti__st_starts *s = (const fti__st_starts *)ctx;
    size_t off = (size_t)(t - s->base);
    return fti__st_lower(s->at, s->n, off + n) - fti__st_lower(s->at, s->n, off);
}

/* Serialising documents (docs.jsonl lines) and per-file records in parallel, one buffer per
 * item, concatenated in order afterwards (the bytes do not depend on the thread count). */
typedef struct fti__st_ser_job {
    fti__st_run *r;
    fti__st_doc **docs; /* kept documents (their text loaded) */
    char (*doc_ids)[33];
    fti_buf *sources;
    fti_buf *bufs; /* one per item */
} fti__st_ser_job;

static void fti__st_jw_opt_str(fti_jw *w, const char *key, const char *v);

static void fti__st_ser_task(void *ctx, size_t b, size_t e, int thread) {
    fti__st_ser_job *j = (fti__st_ser_job *)ctx;
    size_t i;
    (void)thread;
    for (i = b; i < e; i++) {
        fti_buf *out = &j->bufs[i];
        {
            const fti__st_doc *d = j->docs[i];
            char sha[65];
            fti_jw w;
            fti_sha256_hex(d->sha, sha);
            fti_jw_init(&w, out, 0);
            fti_jw_obj_begin(&w);
            fti_jw_key(&w, "id");
            fti_jw_str(&w, j->doc_ids[i]);
            fti_jw_key(&w, "split");
            fti_jw_str(&w, d->split ? "val" : "train");
            fti_jw_key(&w, "source");
            fti_jw_str(&w, j->sources[i].data ? j->sources[i].data : "");
            fti__st_jw_opt_str(&w, "kind", d->kind);
            fti__st_jw_opt_str(&w, "title", d->title);
            fti__st_jw_opt_str(&w, "author", d->author);
            fti__st_jw_opt_str(&w, "date", d->date);
            fti_jw_key(&w, "sha256");
            fti_jw_str(&w, sha);
            fti_jw_key(&w, "text");
            fti_jw_strn(&w, d->text, d->text_len);
            fti_jw_obj_end(&w);
            fti_buf_putc(out, '\n');
        }
    }
}

/* Runs the job over n items and appends the buffers to out in order (freeing them). Returns 0 on
 * allocation failure. */
static int fti__st_ser_run(fti_pool *pool, fti__st_ser_job *j, size_t n, fti_buf *out) {
    size_t i, total = 0;
    int ok = 1;
    j->bufs = (fti_buf *)fti_calloc(n + 1, sizeof *j->bufs);
    if (!j->bufs) return 0;
    fti_pool_for(pool, n, 16, fti__st_ser_task, j);
    for (i = 0; i < n; i++) {
        if (j->bufs[i].oom) ok = 0;
        total += j->bufs[i].len;
    }
    if (ok && fti_buf_reserve(out, total))
        for (i = 0; i < n; i++) fti_buf_append(out, j->bufs[i].data, j->bufs[i].len);
    for (i = 0; i < n; i++) fti_buf_free(&j->bufs[i]);
    fti_free(j->bufs);
    j->bufs = NULL;
    return ok && !out->oom;
}

static void fti__st_chunk_task(void *ctx, size_t b, size_t e, int thread) {
    fti__st_chunk_job *j = (fti__st_chunk_job *)ctx;
    size_t i;
    (void)thread;
    for (i = b; i < e; i++) {
        const fti__st_doc *d = j->docs[i];
        size_t *at = NULL, k, pos = 0;
        if (j->body_ids && j->tok &&
            (at = (size_t *)fti_malloc((j->body_n[i] + 1) * sizeof *at))) {
            /* byte-level BPE: the body's tokens spell its bytes exactly */
            const uint32_t *ids = j->body_ids[i];
            const fti_tokenizer *tok = (const fti_tokenizer *)((fti__st_stok *)j->tok)->tok;
            for (k = 0; k < j->body_n[i]; k++) {
                size_t len = 0;
                at[k] = pos;
                if (!fti_tokenizer_token(tok, ids[k], &len)) len = 0;
                pos += len;
            }
        }
        if (at && pos == d->text_len) {
            fti__st_starts st;
            st.base = d->text;
            st.at = at;
            st.n = j->body_n[i];
            fti__st_chunk_doc(d->text, d->text_len, j->budget, j->overlap, fti__st_starts_count,
                              &st, &j->spans[i]);
        } else {
            fti__st_chunk_doc(d->text, d->text_len, j->budget, j->overlap, fti__st_stok_count,
                              j->tok, &j->spans[i]);
        }
        fti_free(at);
    }
}

/* The part of the inputs an account file (named n) speaks for: the export's root, the name
 * without the path the service gives that file, else its folder ("" for a file at the top); a
 * Telegram export names its owner in the file of its messages, so the scope is that file
 * (exact = 1). */
static size_t fti__st_owner_scope(const char *n, int exact) {
    static const char *const tails[] = {
        "data/account.js", "personal_information/profile_information/profile_information.json",
        "profile_information/profile_information.json",
        "personal_information/personal_information/personal_information.json", NULL};
    size_t len = strlen(n), i;
    if (exact) return len;
    for (i = 0; tails[i]; i++) {
        size_t t = strlen(tails[i]);
        if (len >= t && strcmp(n + len - t, tails[i]) == 0 && (len == t || n[len - t - 1] == '/'))
            return len - t;
    }
    while (len > 0 && n[len - 1] != '/') len--;
    return len;
}

typedef struct fti__st_owner {
    const char *file_name; /* the file that names the owner: an account file, a sent message's */
    size_t scope;          /* bytes of file_name that are the export's root */
    int exact;             /* the scope is that file alone */
    int mail;              /* covers mail (kind "mbox", "mail"), else conversations ("message") */
    size_t inferred;       /* > 0: no account file; the one sender of this many conversations
                            * (fti__st_owner_infer), covering the files two levels below scope */
    fti_buf names;         /* the owner's names, each NUL-terminated, one after the other */
    size_t n_names;
} fti__st_owner;

/* Adds the name s (n bytes) to o unless it is there already, in any case of ASCII and Latin
 * letters ("ann lee" is "Ann Lee": the first spelling is kept); at most 64 names. */
static void fti__st_owner_add(fti__st_owner *o, const char *s, size_t n) {
    size_t at = 0, k;
    while (n && (*s == ' ' || *s == ',')) s++, n--;
    while (n && (s[n - 1] == ' ' || s[n - 1] == ',')) n--;
    if (!n || o->n_names >= 64 || o->names.oom) return; /* out of memory: names uncounted */
    for (k = 0; k < o->n_names; k++) {
        const char *q = o->names.data + at;
        size_t m = strlen(q);
        if (m == n && fti__st_starts_fold(q, m, s, n)) return;
        at += m + 1;
    }
    fti_buf_append(&o->names, s, n);
    fti_buf_putc(&o->names, '\0');
    if (!o->names.oom) o->n_names++;
}

/* Is addr (a mail sender's address, lower case) one of o's names that are addresses, whole
 * (the name "ann" is not the address "ann@example.org")? */
static int fti__st_owner_addr_is(const fti__st_owner *o, const char *addr) {
    size_t at = 0, k, n = strlen(addr);
    for (k = 0; k < o->n_names; k++) {
        const char *q = o->names.data + at;
        size_t m = strlen(q), i;
        at += m + 1;
        if (m != n || !memchr(q, '@', m)) continue;
        for (i = 0; i < m && fti__st_lc((unsigned char)q[i]) == (unsigned char)addr[i];) i++;
        if (i == m) return 1;
    }
    return 0;
}

/* Is author a (n bytes) one of o's names, as whole words, any case (as --authors)? */
static int fti__st_owner_is(const fti__st_owner *o, const char *a, size_t n) {
    size_t at = 0, k;
    for (k = 0; k < o->n_names; k++) {
        const char *q = o->names.data + at;
        size_t m = strlen(q);
        if (fti__st_name_in(q, m, a, n)) return 1;
        at += m + 1;
    }
    return 0;
}

/* o's names as "a, b, c" into out (at most about 160 bytes). */
static void fti__st_owner_list(const fti__st_owner *o, char *out, size_t cap) {
    size_t at = 0, k, w = 0;
    out[0] = 0;
    for (k = 0; k < o->n_names && w + 4 < cap; k++) {
        const char *q = o->names.data + at;
        int r = snprintf(out + w, cap - w, "%s%s", k ? ", " : "", q);
        if (r < 0) break;
        w += (size_t)r < cap - w ? (size_t)r : cap - w - 1;
        at += strlen(q) + 1;
    }
}

/* The index of name s (n bytes, any case as fti__st_owner_add) among o's names, or o->n_names. */
static size_t fti__st_owner_find(const fti__st_owner *o, const char *s, size_t n) {
    size_t at = 0, k;
    for (k = 0; k < o->n_names; k++) {
        const char *q = o->names.data + at;
        size_t m = strlen(q);
        if (m == n && fti__st_starts_fold(q, m, s, n)) return k;
        at += m + 1;
    }
    return o->n_names;
}

/* A file's conversation folder and the folder of those, as lengths of its name with the '/':
 * "x/messages/inbox/bob_1/message_1.json" -> "x/messages/inbox/bob_1/", "x/messages/inbox/".
 * 0 when the file is not two folders deep. */
static int fti__st_thread_of(const char *name, size_t *thread, size_t *group) {
    const char *e = strrchr(name, '/');
    size_t t, g;
    if (!e || e == name) return 0;
    t = (size_t)(e - name) + 1;
    for (g = t - 1; g > 0 && name[g - 1] != '/';) g--;
    if (g == 0) return 0;
    *thread = t;
    *group = g;
    return 1;
}

/* Does the owner o cover the file named name (the filter's messages)? */
static int fti__st_owner_covers(const fti__st_owner *o, const char *name) {
    size_t t, g;
    if (o->exact) return strcmp(name, o->file_name) == 0;
    if (strncmp(name, o->file_name, o->scope) != 0) return 0;
    return !o->inferred || (fti__st_thread_of(name, &t, &g) && g == o->scope);
}

typedef struct fti__st_named {
    const char *name;
    size_t i;
} fti__st_named;

/* By conversation folder's folder, then conversation folder, then name: each folder's files
 * together even where deeper files ("f/chat/sub/x.json", another folder's) sort between them. */
static int fti__st_named_cmp(const void *a, const void *b) {
    const char *x = ((const fti__st_named *)a)->name, *y = ((const fti__st_named *)b)->name;
    size_t tx = 0, gx = 0, ty = 0, gy = 0, m;
    int c;
    fti__st_thread_of(x, &tx, &gx);
    fti__st_thread_of(y, &ty, &gy);
    m = gx < gy ? gx : gy;
    if ((c = memcmp(x, y, m)) != 0 || gx != gy) return c ? c : gx < gy ? -1 : 1;
    m = tx < ty ? tx : ty;
    if ((c = memcmp(x, y, m)) != 0 || tx != ty) return c ? c : tx < ty ? -1 : 1;
    return strcmp(x, y);
}

/* Inferring an owner takes this many conversations (of 2 to 63 senders) that the one sender is
 * in: with two, the one sender in both is as likely a friend who writes in two group chats the
 * owner only reads (Bob in both, "Ann" silent there) as the owner of two chats; taking him for
 * the owner would drop everyone else's messages there, the real owner's included. */
#define FTI__ST_OWNER_MIN_CONV 3

/* Conversations of an export without an account file (Messenger's or Instagram's without the
 * profile, per-chat Telegram exports): in a folder of conversation folders
 * (folder/<conversation>/<files>), the one sender found in every conversation of at least two
 * senders (and fewer than 64; the others do not count) is the owner when there are at least
 * FTI__ST_OWNER_MIN_CONV such conversations. Names differing only in the case of ASCII and Latin
 * letters are one sender. No owner when none is in all of them, and none, with an
 * "owner_not_inferred" entry saying why (everyone's messages stay), when several are (two
 * friends in all the same group chats) or the conversations are too few. Files an account
 * file's owner covers are not looked at. Adds the owners to *ow (the filter's list) and an
 * "owner_inferred" entry to the first file of each such folder. 0, or -1 when out of memory. */
static int fti__st_owner_infer(fti__st_run *r, fti__st_owner **ow, size_t *n_ow, size_t *cap) {
    fti__st_named *fs = (fti__st_named *)fti_malloc((r->n_files + 1) * sizeof *fs);
    size_t n = 0, i, k, q, a, *counts = NULL;
    int oom = !fs;
    for (i = 0; i < r->n_files && !oom; i++) {
        const fti__st_file *f = &r->files[i];
        size_t t, g;
        int msg = 0;
        for (k = 0; k < f->out.n_docs && !msg; k++)
            msg = f->out.docs[k].kind && strcmp(f->out.docs[k].kind, "message") == 0 &&
                  f->out.docs[k].author;
        for (q = 0; q < *n_ow && msg; q++)
            msg = (*ow)[q].mail || !fti__st_owner_covers(&(*ow)[q], f->name);
        if (msg && fti__st_thread_of(f->name, &t, &g)) fs[n].name = f->name, fs[n++].i = i;
    }
    if (n > 1) qsort(fs, n, sizeof *fs, fti__st_named_cmp);
    for (a = 0; a < n && !oom;) {
        fti__st_owner all, one;
        size_t t, g, b, n_conv = 0, found = 0, who = 0;
        int ok = 1;
        fti__st_thread_of(fs[a].name, &t, &g);
        memset(&all, 0, sizeof all);
        for (b = a; b < n;) { /* conversation by conversation: b .. c */
            size_t t2, g2, c;
            if (!fti__st_thread_of(fs[b].name, &t2, &g2) || g2 != g ||
                strncmp(fs[b].name, fs[a].name, g) != 0)
                break;
            memset(&one, 0, sizeof one);
            for (c = b; c < n && fti__st_thread_of(fs[c].name, &t, &g2) && t == t2 &&
                        strncmp(fs[c].name, fs[b].name, t2) == 0;
                 c++) {
                const fti__st_file *f = &r->files[fs[c].i];
                for (k = 0; k < f->out.n_docs; k++) {
                    const fti__st_doc *d = &f->out.docs[k];
                    if (d->kind && strcmp(d->kind, "message") == 0 && d->author)
                        fti__st_owner_add(&one, d->author, strlen(d->author));
                }
            }
            if (c == b) c = b + 1; /* (cannot happen: fs[b] is such a file) */
            /* a conversation only one person wrote in (a friend's unanswered message, the
             * owner's to someone who never replied) says nothing of who the owner is, nor does
             * a group of 64 or more (its names are not all kept): neither counts */
            if (one.n_names < 2 || one.n_names >= 64 || one.names.oom) {
                oom |= one.names.oom;
                fti_buf_free(&one.names);
                b = c;
                continue;
            }
            for (k = 0, q = 0; k < one.n_names && ok; k++) {
                const char *nm = one.names.data + q;
                size_t len = strlen(nm), at = fti__st_owner_find(&all, nm, len);
                q += len + 1;
                if (at == all.n_names) {
                    size_t *c2;
                    /* only the first conversation's senders can be in all of them (and a
                     * folder may hold any number of people) */
                    if (n_conv) continue;
                    c2 = (size_t *)fti_realloc(counts, (all.n_names + 1) * sizeof *c2);
                    if (!c2) {
                        oom = 1;
                        break;
                    }
                    counts = c2;
                    fti__st_owner_add(&all, nm, len);
                    if (at == all.n_names) { /* not added (64 names, out of memory) */
                        ok = 0;
                        break;
                    }
                    counts[at] = 0;
                }
                counts[at]++;
            }
            oom |= one.names.oom || all.names.oom;
            fti_buf_free(&one.names);
            n_conv++;
            b = c;
        }
        for (k = 0; k < all.n_names && ok && n_conv >= 2; k++)
            if (counts[k] == n_conv) found++, who = k;
        if (found && (found > 1 || n_conv < FTI__ST_OWNER_MIN_CONV) && !oom) {
            /* in doubt: say so, and keep everyone's messages */
            const char *nm = all.names.data, *nm2 = NULL;
            for (k = 0; k < all.n_names; k++, nm += strlen(nm) + 1)
                if (counts[k] == n_conv) {
                    if (found == 1 || nm2) break;
                    nm2 = nm;
                }
            if (found > 1)
                fti__st_reject(&r->files[fs[a].i].out, (uint32_t)fs[a].i, "",
                               "owner_not_inferred",
                               "no owner inferred for %.*s: %lu senders (\"%.80s\", \"%.80s\"%s) "
                               "are in all %lu conversations there of 2 to 63 senders; everyone's "
                               "messages stay; --authors names whose writing to keep",
                               (int)(g < 200 ? g : 200), fs[a].name, (unsigned long)found, nm2,
                               nm, found > 2 ? ", ..." : "", (unsigned long)n_conv);
            else
                fti__st_reject(&r->files[fs[a].i].out, (uint32_t)fs[a].i, "",
                               "owner_not_inferred",
                               "no owner inferred for %.*s: \"%.80s\" is the one sender in all "
                               "%lu conversations there of 2 to 63 senders, too few (fewer than "
                               "%d) to tell the owner from a friend in chats the owner only "
                               "reads; everyone's messages stay; --authors names whose writing "
                               "to keep",
                               (int)(g < 200 ? g : 200), fs[a].name, nm, (unsigned long)n_conv,
                               FTI__ST_OWNER_MIN_CONV);
            found = 0;
        }
        if (found == 1 && !oom) {
            const char *nm = all.names.data;
            fti__st_owner *o;
            for (k = 0; k < who; k++) nm += strlen(nm) + 1;
            if (*n_ow == *cap) {
                size_t nc = *cap ? 2 * *cap : 4;
                fti__st_owner *p2 = (fti__st_owner *)fti_realloc(*ow, nc * sizeof *p2);
                if (!p2) oom = 1;
                else *ow = p2, *cap = nc;
            }
            if (!oom) {
                o = &(*ow)[(*n_ow)++];
                memset(o, 0, sizeof *o);
                o->file_name = fs[a].name;
                o->scope = g;
                o->inferred = n_conv;
                fti__st_owner_add(o, nm, strlen(nm));
                oom |= o->names.oom;
                fti__st_reject(&r->files[fs[a].i].out, (uint32_t)fs[a].i, "", "owner_inferred",
                               "the export's owner, inferred: \"%.80s\", the one sender in all %lu "
                               "conversations of %.*s (those of 2 to 63 senders; no account file "
                               "names one); --authors names whose writing to keep, \"*\" keeps "
                               "everyone's",
                               nm, (unsigned long)n_conv, (int)(g < 200 ? g : 200), fs[a].name);
            }
        }
        fti_buf_free(&all.names);
        a = b > a ? b : a + 1;
    }
    fti_free(counts);
    fti_free(fs);
    return oom ? -1 : 0;
}

/* The inferred owner among ow[lo..hi) (fti__st_owner_infer's, one per folder, in
 * fti__st_named_cmp's order of their folders) that covers the file named name, or NULL: a binary
 * search, so that thousands of such folders cost no time per message. */
static const fti__st_owner *fti__st_owner_inferred_of(const fti__st_owner *ow, size_t lo,
                                                      size_t hi, const char *name) {
    size_t t, g;
    if (!fti__st_thread_of(name, &t, &g)) return NULL;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2, sc = ow[mid].scope;
        int c = memcmp(name, ow[mid].file_name, g < sc ? g : sc);
        if (c == 0) c = g < sc ? -1 : g > sc ? 1 : 0;
        if (c == 0) return &ow[mid];
        if (c < 0) hi = mid;
        else lo = mid + 1;
    }
    return NULL;
}

/* Leaves out of the version what other people wrote to the owner of an export, unless
 * --authors is given ("*" included):
 * - conversations (kind "message") in an export whose account file names its owner (the
 *   "account_info" entries of 04_store_ingest.c's fti__st_owner_of; the export is the account
 *   file's usual root, fti__st_owner_scope);
 * - mail (kind "mbox", "mail") in a folder that also holds the owner's sent mail (kind "sent": a
 *   Sent folder, or Gmail's "Sent" label), whose senders name the owner.
 * Each becomes an "other_author" rejection of its file. A message is kept when no owner covers
 * its file, or its sender matches one of a covering owner's names (whole words, any case, as
 * --authors). Runs after phase B on every run (the records pack and the partials keep every
 * message), so the result depends only on the inputs. 0, or -1 when out of memory. */
static int fti__st_owner_filter(fti__st_run *r) {
    fti__st_owner *ow = NULL;
    size_t n_ow = 0, n_acc, cap = 0, i, k, q, pl = strlen(FTI__ST_OWNER_PREFIX);
    int oom = 0;
    if (r->o.authors && r->o.authors[0]) return 0;
    for (i = 0; i < r->n_files && !oom; i++) {
        const fti__st_file *f = &r->files[i];
        size_t n_items = f->out.n_rejs + f->out.n_docs;
        for (k = 0; k < n_items && !oom; k++) {
            const fti__st_rej *j = k < f->out.n_rejs ? &f->out.rejs[k] : NULL;
            const fti__st_doc *d = j ? NULL : &f->out.docs[k - f->out.n_rejs];
            fti__st_owner *o = NULL;
            int mail = d != NULL, exact = j && j->loc[0] != 0;
            size_t scope;
            if (j && (strcmp(j->reason, "account_info") != 0 ||
                      strncmp(j->detail, FTI__ST_OWNER_PREFIX, pl) != 0))
                continue;
            if (d && (!d->kind || strcmp(d->kind, "sent") != 0 || !d->author)) continue;
            scope = fti__st_owner_scope(f->name, exact);
            if (mail) /* one owner per folder of mail */
                for (q = 0; q < n_ow && !o; q++)
                    if (ow[q].mail && ow[q].scope == scope &&
                        strncmp(ow[q].file_name, f->name, scope) == 0)
                        o = &ow[q];
            if (!o) {
                if (n_ow == cap) {
                    size_t nc = cap ? 2 * cap : 4;
                    fti__st_owner *p2 = (fti__st_owner *)fti_realloc(ow, nc * sizeof *p2);
                    if (!p2) {
                        oom = 1;
                        break;
                    }
                    ow = p2, cap = nc;
                }
                o = &ow[n_ow++];
                memset(o, 0, sizeof *o);
                o->file_name = f->name;
                o->scope = scope;
                o->exact = exact;
                o->mail = mail;
            }
            if (j) { /* "the export's owner: a | b | c" */
                const char *p = j->detail + pl;
                while (*p) {
                    const char *e = strstr(p, FTI__ST_OWNER_SEP);
                    size_t m = e ? (size_t)(e - p) : strlen(p);
                    fti__st_owner_add(o, p, m);
                    p += m;
                    if (e) p += strlen(FTI__ST_OWNER_SEP);
                }
            } else { /* the sender's name and address: the owner's mail may show either */
                fti__st_owner_add(o, d->author, strlen(d->author));
                if (d->addr) fti__st_owner_add(o, d->addr, strlen(d->addr));
            }
            oom |= o->names.oom;
        }
    }
    n_acc = n_ow; /* the account files' and sent mail's owners, then the inferred ones */
    if (!oom && fti__st_owner_infer(r, &ow, &n_ow, &cap) != 0) oom = 1;
    for (i = 0; i < r->n_files && n_ow && !oom; i++) {
        fti__st_file *f = &r->files[i];
        const fti__st_owner *inf = fti__st_owner_inferred_of(ow, n_acc, n_ow, f->name);
        size_t w = 0;
        for (k = 0; k < f->out.n_docs; k++) {
            fti__st_doc *d = &f->out.docs[k];
            const fti__st_owner *by = NULL;
            int covered = 0, mine = 0, is_mail, is_msg;
            is_msg = d->kind && strcmp(d->kind, "message") == 0;
            is_mail = d->kind && (strcmp(d->kind, "mbox") == 0 || strcmp(d->kind, "mail") == 0);
            if ((is_msg || is_mail) && d->author)
                for (q = 0; q <= n_acc && !mine; q++) {
                    const fti__st_owner *o = q < n_acc ? &ow[q] : inf;
                    if (!o || o->mail != is_mail || !o->n_names ||
                        !fti__st_owner_covers(o, f->name))
                        continue;
                    covered = 1;
                    by = o;
                    mine = fti__st_owner_is(o, d->author, strlen(d->author)) ||
                           (is_mail && d->addr && fti__st_owner_addr_is(o, d->addr));
                }
            if (covered && !mine) {
                char names[200];
                fti__st_owner_list(by, names, sizeof names);
                if (is_mail)
                    fti__st_reject(&f->out, (uint32_t)i, d->loc, "other_author",
                                   "mail from \"%.80s\": the mailbox's owner, by the mail sent "
                                   "from it (as %s), is someone else; --authors \"*\" keeps "
                                   "everyone's",
                                   d->author, names);
                else
                    fti__st_reject(&f->out, (uint32_t)i, d->loc, "other_author",
                                   "a message from \"%.80s\" in a conversation: the export's "
                                   "owner is \"%s\" (%s%s); --authors \"*\" keeps everyone's",
                                   d->author, names, by->inferred ? "inferred, see " : "",
                                   by->file_name);
                fti__st_doc_free(d);
                continue;
            }
            if (w != k) f->out.docs[w] = *d;
            w++;
        }
        f->out.n_docs = w;
        oom |= f->out.oom;
    }
    for (i = 0; i < n_ow; i++) fti_buf_free(&ow[i].names);
    fti_free(ow);
    return oom ? -1 : 0;
}

static fti_result fti__st_ingest_run(fti__st_run *r, char out_id[65], size_t *reused,
                                     fti_error *err) {
    fti_pool *pool = NULL;
    fti_result rc = FTI_OK;
    size_t i, k, n_all = 0, n_kept = 0, n_exact = 0, n_near = 0, n_reused = 0;
    size_t n_chunks_total = 0;
    fti__st_doc **all = NULL, **kept = NULL;
    uint32_t *root = NULL, *keeper = NULL;
    unsigned char vid[32];
    char id[65], parent[65], tok_sha[65];
    int have_parent = 0;
    char *mpath = NULL;
    fti_json_doc *old_man = NULL; /* repair: the existing manifest, kept if its objects match */
    fti__st_stok stok;
    int have_tok = 0;
    fti_buf tok_img, freq_img, man, batch, ser;
    uint64_t n_train_tok = 0, n_val_tok = 0, n_train_docs = 0, n_val_docs = 0;
    uint64_t *tok_counts = NULL;
    fti_doc_meta *metas = NULL;
    char(*doc_ids)[33] = NULL;
    fti_buf *sources = NULL;
    fti__st_objw docs_w, shard_w[2], index_w;
    fti__st_bm25b ixb;
    int spill_fd = -1, post_fd = -1;
    memset(&stok, 0, sizeof stok);
    memset(&tok_img, 0, sizeof tok_img);
    memset(&freq_img, 0, sizeof freq_img);
    memset(&man, 0, sizeof man);
    memset(&batch, 0, sizeof batch);
    memset(&ser, 0, sizeof ser);
    memset(&docs_w, 0, sizeof docs_w);
    memset(shard_w, 0, sizeof shard_w);
    memset(&index_w, 0, sizeof index_w);
    memset(&ixb, 0, sizeof ixb);
    ixb.spill_fd = -1;
    ixb.post_fd = -1;
    tok_sha[0] = 0;

    if (r->n_files == 0) return fti_error_set(err, FTI_ERR_NOT_FOUND, "ingest: no input files");
    if (r->o.tokenizer && strcmp(r->o.tokenizer, "parent") == 0) {
        /* keep the tokenizer of `latest` (so a model trained on it can be fine-tuned); train one
         * when there is none */
        char pid[65];
        fti_json_doc *jd = NULL;
        r->o.tokenizer = NULL;
        if (fti__st_read_ref(r->home, "latest", pid) &&
            fti__st_load_manifest(r->home, pid, &jd, NULL) == FTI_OK) {
            const fti_json *files = fti_json_get(fti_json_root(jd), "files");
            r->parent_tok = fti__st_file_object(r->home, files, "tokenizer");
            r->o.tokenizer = r->parent_tok;
        }
        fti_json_free(jd);
    }
    if (r->o.tokenizer && !fti_path_exists(r->o.tokenizer))
        return fti_error_set(err, FTI_ERR_NOT_FOUND, "%s: tokenizer file not found",
                             r->o.tokenizer);
    {
        /* leftovers of an interrupted run (this run holds the exclusive lock) */
        char *tmp = fti__st_path3(r->home, "store/tmp", NULL);
        if (tmp && fti_path_is_dir(tmp)) fti_walk(tmp, fti__st_rm_cb, NULL, NULL);
        fti_free(tmp);
    }
    pool = fti_pool_create(r->o.n_threads);

    /* --- phase A: hash every file (a merge has the hashes from the partials) --- */
    r->t_last_ns = fti_time_ns();
    r->c_last = clock();
    fti__st_progress(r, "scan", 0, r->n_files);
    if (!r->n_parts) {
        r->next = 0;
        fti_pool_each(pool, fti__st_phase_hash, r);
        if (r->hash_oom) {
            rc = fti_error_set(err, FTI_ERR_NOMEM,
                               "ingest: out of memory while reading the inputs");
            goto done;
        }
    }
    fti__st_mark(r, 0);

    /* --- the version id: inputs' names and hashes, and the options --- */
    if (r->o.no_tokenizer) {
        rc = fti__st_version_id(r, r->o.vocab_size, "none", vid, err);
    } else if (r->o.tokenizer) {
        unsigned char d[32];
        char hx[70], tpart[80];
        int vocabs[2], found = 0;
        fti_tokenizer *gt = NULL;
        rc = fti_sha256_file(r->o.tokenizer, d, err);
        if (rc != FTI_OK) goto done;
        fti_sha256_hex(d, hx);
        /* the version made with a trained tokenizer that came out as this very file has the
         * same documents, tokens and chunks: it is this ingest's version (fti-twin's updates
         * give the production model's tokenizer; the first one after training made another
         * version of the same content). Its key holds the vocabulary asked for then: this
         * ingest's option, or the given tokenizer's size. */
        vocabs[0] = r->o.vocab_size;
        vocabs[1] = fti_tokenizer_load(r->o.tokenizer, NULL, &gt, NULL) == FTI_OK
                        ? (int)fti_tokenizer_vocab_size(gt)
                        : r->o.vocab_size;
        fti_tokenizer_free(gt);
        for (k = 0; k < 2 && !found && rc == FTI_OK; k++) {
            if (k && vocabs[1] == vocabs[0]) break;
            if ((rc = fti__st_version_id(r, vocabs[k], "train", vid, err)) != FTI_OK) break;
            fti_sha256_hex(vid, id);
            found = fti__st_trained_as(r, id, hx);
        }
        if (rc == FTI_OK && !found) {
            snprintf(tpart, sizeof tpart, "file:%s", hx);
            rc = fti__st_version_id(r, r->o.vocab_size, tpart, vid, err);
        }
    } else {
        rc = fti__st_version_id(r, r->o.vocab_size, "train", vid, err);
    }
    if (rc != FTI_OK) goto done;
    fti_sha256_hex(vid, id);
    have_parent = fti__st_read_ref(r->home, "latest", parent);
    mpath = fti__st_manifest_path(r->home, id);
    if (!mpath) {
        rc = fti_error_set(err, FTI_ERR_NOMEM, "ingest: out of memory");
        goto done;
    }
    if (fti_path_exists(mpath)) {
        /* unchanged inputs: the version exists already; only refs move, unless an object it
         * names is missing or of another size (or its manifest cannot be read): then it is made
         * again, which writes those objects (the same bytes: processing is deterministic) */
        old_man = fti__st_missing_object(r, id);
        if (!old_man) {
            for (i = 0; i < r->n_files; i++) n_reused += r->files[i].hashed;
            fti__st_log(r, FTI_LOG_INFO, "version %s exists: inputs unchanged", id);
            goto commit_refs;
        }
        if (old_man == (fti_json_doc *)r) {
            /* the manifest is unreadable: its parent is not known (latest may be a child) */
            old_man = NULL;
            have_parent = 0;
        }
        if (have_parent && strcmp(parent, id) == 0) have_parent = 0; /* never its own parent */
    }

    /* --- reuse the parent's per-file results --- */
    if (have_parent && !r->n_parts) {
        fti_json_doc *jd = NULL;
        if (fti__st_load_manifest(r->home, parent, &jd, NULL) == FTI_OK) {
            const fti_json *files = fti_json_get(fti_json_root(jd), "files");
            fti__st_reuse(r, files);
        }
        fti_json_free(jd);
    }

    /* --- phase B: every file's records, batch by batch, into the records pack (which is also
     * where the documents' text is read back from: only metadata stays in memory) --- */
    {
        unsigned char h[16];
        uint32_t n_packed = 0;
        for (i = 0; i < r->n_files; i++) n_packed += r->files[i].hashed != 0;
        memcpy(h, "FTIRECS", 8);
        fti_store_u32(h + 8, FTI__ST_RECS_VER);
        fti_store_u32(h + 12, n_packed);
        rc = fti__st_objw_open(r, &r->recs, "records", err);
        if (rc != FTI_OK) goto done;
        fti__st_objw_write(&r->recs, h, 16);
        r->recs_fd = fti__sys_open(r->recs.af.tmp_path, O_RDONLY, 0);
        if (r->recs_fd < 0) {
            rc = fti_error_set(err, FTI_ERR_IO, "%s: cannot read back", r->recs.af.tmp_path);
            goto done;
        }
    }
    rc = fti__st_phase_b(r, pool, err);
    if (rc != FTI_OK) goto done;
    if (fti__st_owner_filter(r) != 0) {
        rc = fti_error_set(err, FTI_ERR_NOMEM, "ingest: out of memory");
        goto done;
    }
    for (i = 0; i < r->n_files; i++) {
        if (r->files[i].reused) n_reused++;
        n_all += r->files[i].out.n_docs;
    }
    if (n_all > FTI_STORE_MAX_DOCS) {
        rc = fti_error_set(err, FTI_ERR_LIMIT, "ingest: %lu documents > limit %lu",
                           (unsigned long)n_all, (unsigned long)FTI_STORE_MAX_DOCS);
        goto done;
    }
    rc = fti__st_objw_commit(r, &r->recs, "records", err);
    if (rc != FTI_OK) goto done;

    /* --- dedupe --- */
    fti__st_mark(r, 1);
    fti__st_progress(r, "dedupe", 0, n_all);
    all = (fti__st_doc **)fti_malloc((n_all + 1) * sizeof *all);
    kept = (fti__st_doc **)fti_malloc((n_all + 1) * sizeof *kept);
    root = (uint32_t *)fti_malloc((n_all + 1) * sizeof *root);
    if (!all || !kept || !root) {
        rc = fti_error_set(err, FTI_ERR_NOMEM, "ingest: out of memory");
        goto done;
    }
    for (i = 0, k = 0; i < r->n_files; i++) {
        size_t j;
        for (j = 0; j < r->files[i].out.n_docs; j++) all[k++] = &r->files[i].out.docs[j];
    }
    rc = fti__st_exact_dups(r, all, n_all, &n_exact);
    if (rc != FTI_OK) {
        if (rc == FTI_ERR_IO)
            fti_error_set(err, rc, "%s: cannot read back: %s", r->recs.af.tmp_path,
                          fti__st_read_error(errno));
        else
            fti_error_set(err, rc, "ingest: out of memory");
        goto done;
    }
    if (r->o.dedup_threshold <= 1.0) {
        uint32_t **sigs = (uint32_t **)fti_malloc((n_all + 1) * sizeof *sigs);
        if (!sigs) {
            rc = fti_error_set(err, FTI_ERR_NOMEM, "ingest: out of memory");
            goto done;
        }
        for (i = 0; i < n_all; i++) sigs[i] = all[i]->status ? NULL : all[i]->mh;
        rc = fti__st_near_dups(sigs, n_all, r->o.dedup_threshold, root);
        fti_free(sigs);
        if (rc != FTI_OK) {
            fti_error_set(err, rc, "ingest: out of memory");
            goto done;
        }
        /* each group keeps its newest document (the latest version of a text: a post edited
         * and exported again, a draft and what was published), documents without a date
         * counting as older than any dated one; equal dates keep the first in input order.
         * keeper[g] for the group's root g (its first member) */
        keeper = (uint32_t *)fti_malloc((n_all + 1) * sizeof *keeper);
        if (!keeper) {
            rc = fti_error_set(err, FTI_ERR_NOMEM, "ingest: out of memory");
            goto done;
        }
        for (i = 0; i < n_all; i++) {
            uint32_t g = root[i];
            if (g == i)
                keeper[i] = (uint32_t)i;
            else if (all[i]->status == 0 && fti__st_newer(all[i], all[keeper[g]]))
                keeper[g] = (uint32_t)i;
        }
        for (i = 0; i < n_all; i++) {
            uint32_t kk = keeper[root[i]];
            if (all[i]->status == 0 && kk != i) {
                all[i]->status = 2;
                all[i]->dup_of = kk;
                n_near++;
            }
        }
    }
    for (i = 0; i < n_all; i++)
        if (all[i]->status == 0) kept[n_kept++] = all[i];

    /* --- split: by document id; at least one document on each side when there are two --- */
    {
        uint64_t best = UINT64_MAX;
        size_t best_i = 0;
        for (i = 0; i < n_kept; i++) {
            fti__st_doc *d = kept[i];
            d->split = (int)((d->id_hi % 1000) < (uint64_t)r->o.val_percent * 10);
            if (d->id_lo < best) best = d->id_lo, best_i = i;
            if (d->split)
                n_val_docs++;
            else
                n_train_docs++;
        }
        if (n_kept >= 2 && n_val_docs == 0) {
            kept[best_i]->split = 1;
            n_val_docs++, n_train_docs--;
        } else if (n_kept >= 2 && n_train_docs == 0) {
            kept[best_i]->split = 0;
            n_val_docs--, n_train_docs++;
        }
    }

    /* --- per-document metadata, docs.jsonl (streamed in batches) --- */
    metas = (fti_doc_meta *)fti_calloc(n_kept + 1, sizeof *metas);
    doc_ids = (char(*)[33])fti_calloc(n_kept + 1, sizeof *doc_ids);
    sources = (fti_buf *)fti_calloc(n_kept + 1, sizeof *sources);
    if (!metas || !doc_ids || !sources) {
        rc = fti_error_set(err, FTI_ERR_NOMEM, "ingest: out of memory");
        goto done;
    }
    for (i = 0; i < n_kept; i++) {
        fti__st_doc *d = kept[i];
        fti__st_doc_id_hex(d, doc_ids[i]);
        fti__st_doc_source(r, d, &sources[i]);
        metas[i].doc_id = doc_ids[i];
        metas[i].title = d->title;
        metas[i].source = sources[i].data;
        metas[i].author = d->author;
        metas[i].date = d->date;
    }
    rc = fti__st_objw_open(r, &docs_w, "docs", err);
    for (i = 0; i < n_kept && rc == FTI_OK;) {
        size_t e = fti__st_batch_end(kept, n_kept, i);
        fti__st_ser_job sj;
        rc = fti__st_batch_load(r, kept + i, e - i, &batch, err);
        if (rc == FTI_OK) {
            memset(&sj, 0, sizeof sj);
            sj.r = r;
            sj.docs = kept + i;
            sj.doc_ids = doc_ids + i;
            sj.sources = sources + i;
            ser.len = 0;
            if (!fti__st_ser_run(pool, &sj, e - i, &ser)) rc = FTI_ERR_NOMEM;
        }
        fti__st_batch_unload(kept + i, e - i);
        if (rc == FTI_ERR_NOMEM) fti_error_set(err, rc, "ingest: out of memory");
        if (rc == FTI_OK &&
            (rc = fti__st_objw_write(&docs_w, ser.data ? ser.data : "", ser.len)) != FTI_OK)
            fti_error_set(err, rc, "%s: cannot write the documents: %s", docs_w.af.tmp_path,
                          fti_result_str(rc));
        i = e;
    }
    if (rc == FTI_OK) rc = fti__st_objw_commit(r, &docs_w, "docs", err);
    if (rc != FTI_OK) goto done;

    /* --- tokenizer: given, or trained on the train split (streamed) --- */
    if (!r->o.no_tokenizer && n_kept > 0) {
        fti__st_mark(r, 2);
        fti__st_progress(r, "tokenizer", 0, 1);
        if (r->o.tokenizer) {
            rc = fti__st_stok_load(&stok, r->o.tokenizer, err);
        } else {
            void *tr = NULL;
            int said; /* err already names the failure (else only "training failed" is known) */
            rc = fti__st_stok_train_begin(&tr, pool, r->o.vocab_size, err);
            said = rc != FTI_OK;
            for (i = 0; i < n_kept && rc == FTI_OK;) {
                size_t e = fti__st_batch_end(kept, n_kept, i), q;
                rc = fti__st_batch_load(r, kept + i, e - i, &batch, err);
                said = rc != FTI_OK;
                for (q = i; q < e && rc == FTI_OK; q++) {
                    if (kept[q]->split) continue;
                    if (kept[q]->title)
                        rc = fti__st_stok_train_add(tr, kept[q]->title, strlen(kept[q]->title));
                    if (rc == FTI_OK)
                        rc = fti__st_stok_train_add(tr, kept[q]->text, kept[q]->text_len);
                }
                fti__st_batch_unload(kept + i, e - i);
                i = e;
            }
            if (rc == FTI_OK) {
                rc = fti__st_stok_train_end(&stok, tr, err);
            } else {
                fti__st_stok_train_abort(tr);
                if (!said) fti_error_set(err, rc, "tokenizer: training failed");
            }
        }
        if (rc == FTI_OK) {
            have_tok = 1;
            memcpy(tok_sha, stok.sha_hex, 65);
            rc = fti__st_stok_serialize(&stok, &tok_img);
            if (rc != FTI_OK)
                fti_error_set(err, rc, "tokenizer: cannot serialize");
            else
                rc = fti__st_stash(r, "tokenizer", &tok_img, err);
        }
        if (rc != FTI_OK) goto done;
        fti__st_mark(r, 3);
    } else {
        fti__st_mark(r, 2);
    }

    /* --- token shards, chunks and the BM25 index, batch by batch --- */
    {
        char *tmp = fti__st_store_path(r->home, "tmp", "index-text");
        char *tmp2 = fti__st_store_path(r->home, "tmp", "index-postings");
        unsigned char shard_sha[2][32];
        fti__st_shs data_sh[2];
        uint64_t n_tok[2] = {0, 0};
        uint32_t width = have_tok && stok.vocab_size > 65536 ? 4 : 2;
        if (tmp) {
            /* the chunks' text, until the index is written (an unnamed file) */
            spill_fd = fti__sys_open_scratch(tmp);
            if (spill_fd >= 0) unlink(tmp);
        }
        if (tmp2) {
            post_fd = fti__sys_open_scratch(tmp2);
            if (post_fd >= 0) unlink(tmp2);
        }
        if (!tmp || !tmp2) {
            fti_free(tmp);
            fti_free(tmp2);
            rc = fti_error_set(err, FTI_ERR_NOMEM, "ingest: out of memory");
            goto done;
        }
        fti_free(tmp);
        fti_free(tmp2);
        if (spill_fd < 0 || post_fd < 0) {
            rc = fti_error_set(err, FTI_ERR_IO, "%s/store/tmp: cannot create a temp file",
                               r->home);
            goto done;
        }
        rc = fti__st_bm25b_init(&ixb, metas, n_kept, spill_fd, post_fd);
        if (rc != FTI_OK) {
            fti_error_set(err, rc, "ingest: out of memory");
            goto done;
        }
        if (have_tok) {
            unsigned char zero[FTI_SHARD_HEADER_BYTES];
            memset(zero, 0, sizeof zero);
            tok_counts = (uint64_t *)fti_calloc(stok.vocab_size + 1, sizeof(uint64_t));
            if (!tok_counts) rc = fti_error_set(err, FTI_ERR_NOMEM, "ingest: out of memory");
            for (k = 0; k < 2 && rc == FTI_OK; k++) {
                rc = fti__st_objw_open(r, &shard_w[k], k ? "val" : "train", err);
                if (rc == FTI_OK) rc = fti__st_objw_write(&shard_w[k], zero, sizeof zero);
                fti__st_shs_init(&data_sh[k], r->proc.sha_fast);
            }
            if (rc != FTI_OK) goto done;
            fti__st_progress(r, "shards", 0, n_kept);
        } else {
            fti__st_progress(r, "index", 0, n_kept);
        }
        for (i = 0; i < n_kept && rc == FTI_OK;) {
            size_t e = fti__st_batch_end(kept, n_kept, i), nb = e - i, q;
            uint32_t **ids = NULL, **body_ids = NULL;
            size_t *n_ids = NULL, *body_n = NULL;
            fti_buf *titles = NULL;
            rc = fti__st_batch_load(r, kept + i, nb, &batch, err);
            if (rc == FTI_OK && have_tok) {
                const char **texts = (const char **)fti_calloc(2 * nb + 1, sizeof *texts);
                size_t *lens = (size_t *)fti_calloc(2 * nb + 1, sizeof *lens);
                ids = (uint32_t **)fti_calloc(2 * nb + 1, sizeof *ids);
                n_ids = (size_t *)fti_calloc(2 * nb + 1, sizeof *n_ids);
                titles = (fti_buf *)fti_calloc(nb + 1, sizeof *titles);
                body_ids = (uint32_t **)fti_calloc(nb + 1, sizeof *body_ids);
                body_n = (size_t *)fti_calloc(nb + 1, sizeof *body_n);
                if (!texts || !lens || !ids || !n_ids || !titles || !body_ids || !body_n) {
                    rc = FTI_ERR_NOMEM;
                } else {
                    /* each document: <|title|> title "\n" <|body|> body <|endoftext|> */
                    for (q = 0; q < nb; q++) {
                        const fti__st_doc *d = kept[i + q];
                        if (d->title) fti_buf_puts(&titles[q], d->title);
                        fti_buf_putc(&titles[q], '\n');
                        if (titles[q].oom) rc = FTI_ERR_NOMEM;
                        texts[2 * q] = titles[q].data;
                        lens[2 * q] = titles[q].len;
                        texts[2 * q + 1] = d->text;
                        lens[2 * q + 1] = d->text_len;
                    }
                    if (rc == FTI_OK)
                        rc = fti__st_stok_encode(&stok, pool, texts, lens, 2 * nb, ids, n_ids);
                }
                fti_free(texts);
                fti_free(lens);
                for (q = 0; q < nb && rc == FTI_OK; q++) {
                    const fti__st_doc *d = kept[i + q];
                    int s = d->split ? 1 : 0;
                    unsigned char tb[4096];
                    size_t tl = 0, part, j;
                    body_ids[q] = ids[2 * q + 1];
                    body_n[q] = n_ids[2 * q + 1];
                    /* title marker, title ids, body marker, body ids, end marker */
                    for (part = 0; part < 5 && rc == FTI_OK; part++) {
                        const uint32_t *src = part == 1   ? ids[2 * q]
                                              : part == 3 ? body_ids[q]
                                                          : NULL;
                        size_t ns = part == 1 ? n_ids[2 * q] : part == 3 ? body_n[q] : 1;
                        uint32_t one = part == 0   ? stok.title_id
                                       : part == 2 ? stok.body_id
                                                   : stok.eot_id;
                        for (j = 0; j < ns; j++) {
                            uint32_t t = src ? src[j] : one;
                            if (t >= stok.vocab_size) {
                                rc = FTI_ERR_INVALID;
                                break;
                            }
                            if (!s) tok_counts[t]++;
                            if (tl + 4 > sizeof tb) {
                                fti__st_shs_update(&data_sh[s], tb, tl);
                                rc = fti__st_objw_write(&shard_w[s], tb, tl);
                                tl = 0;
                                if (rc != FTI_OK) break;
                            }
                            if (width == 2)
                                fti_store_u16(tb + tl, (uint16_t)t);
                            else
                                fti_store_u32(tb + tl, t);
                            tl += width;
                        }
                    }
                    if (tl && rc == FTI_OK) {
                        fti__st_shs_update(&data_sh[s], tb, tl);
                        rc = fti__st_objw_write(&shard_w[s], tb, tl);
                    }
                    n_tok[s] += 3 + n_ids[2 * q] + n_ids[2 * q + 1];
                }
                if (rc != FTI_OK) fti_error_set(err, rc, "ingest: token shards failed");
                fti__st_mark(r, 4);
            }
            if (rc == FTI_OK) {
                /* chunks (in parallel: counting tokens is the cost), added in document order */
                fti__st_chunk_job cj;
                memset(&cj, 0, sizeof cj);
                cj.docs = kept + i;
                cj.spans = (fti__st_spans *)fti_calloc(nb + 1, sizeof *cj.spans);
                cj.budget = (size_t)r->o.chunk_tokens;
                cj.overlap = (size_t)r->o.chunk_overlap;
                cj.tok = have_tok ? (void *)&stok : NULL;
                cj.body_ids = have_tok ? body_ids : NULL;
                cj.body_n = body_n;
                if (!cj.spans) {
                    rc = fti_error_set(err, FTI_ERR_NOMEM, "ingest: out of memory");
                } else {
                    fti_pool_for(pool, nb, 4, fti__st_chunk_task, &cj);
                    for (q = 0; q < nb && rc == FTI_OK; q++) {
                        size_t j;
                        const fti__st_spans *sp = &cj.spans[q];
                        if (sp->oom) rc = FTI_ERR_NOMEM;
                        for (j = 0; j < sp->n && rc == FTI_OK; j++)
                            rc = fti__st_bm25b_add(&ixb, kept[i + q]->text + sp->v[j].off,
                                                   sp->v[j].len, (uint32_t)(i + q));
                    }
                    for (q = 0; q < nb; q++) fti_free(cj.spans[q].v);
                    fti_free(cj.spans);
                    if (rc != FTI_OK)
                        fti_error_set(err, rc, "%s/store/tmp: cannot index the chunks: %s",
                                      r->home, fti_result_str(rc));
                }
                fti__st_mark(r, 5);
            }
            fti__st_batch_unload(kept + i, nb);
            for (q = 0; ids && q < 2 * nb; q++) fti_free(ids[q]);
            for (q = 0; titles && q < nb; q++) fti_buf_free(&titles[q]);
            fti_free(ids);
            fti_free(n_ids);
            fti_free(titles);
            fti_free(body_ids);
            fti_free(body_n);
            i = e;
        }
        if (rc != FTI_OK) goto done;
        if (have_tok) {
            for (k = 0; k < 2 && rc == FTI_OK; k++) {
                unsigned char hdr[FTI_SHARD_HEADER_BYTES];
                fti__st_shs_final(&data_sh[k], shard_sha[k]);
                memset(hdr, 0, sizeof hdr);
                memcpy(hdr, "FTITOKS", 8);
                fti_store_u32(hdr + 8, 1);
                fti_store_u32(hdr + 12, width);
                fti_store_u64(hdr + 16, n_tok[k]);
                fti_store_u32(hdr + 24, stok.vocab_size);
                fti_store_u32(hdr + 28, stok.eot_id);
                memcpy(hdr + 32, shard_sha[k], 32);
                rc = fti__st_objw_patch(&shard_w[k], 0, hdr, sizeof hdr);
                if (rc != FTI_OK)
                    fti_error_set(err, rc, "%s: cannot write the token shards: %s",
                                  shard_w[k].af.tmp_path, fti_result_str(rc));
                else
                    rc = fti__st_objw_commit(r, &shard_w[k], k ? "val" : "train", err);
            }
            n_train_tok = n_tok[0];
            n_val_tok = n_tok[1];
            if (rc == FTI_OK) {
                unsigned char h[16];
                memcpy(h, "FTIFREQ", 8);
                fti_store_u32(h + 8, 1);
                fti_store_u32(h + 12, stok.vocab_size);
                fti_buf_append(&freq_img, h, 16);
                for (i = 0; i < stok.vocab_size; i++) fti__st_put_u64(&freq_img, tok_counts[i]);
                rc = fti__st_stash(r, "token_counts", &freq_img, err);
            }
            if (rc != FTI_OK) goto done;
        }
        n_chunks_total = ixb.n_chunks;
        rc = fti__st_objw_open(r, &index_w, "index", err);
        if (rc == FTI_OK) {
            rc = fti__st_bm25b_finish(&ixb, fti__st_objw_emit, &index_w);
            if (rc != FTI_OK) /* the index, or the postings' scratch file beside it */
                fti_error_set(err, rc, "%s: cannot write the index: %s", index_w.af.tmp_path,
                              fti_result_str(rc));
            else
                rc = fti__st_objw_commit(r, &index_w, "index", err);
        }
        fti__st_bm25b_free(&ixb);
        if (rc != FTI_OK) goto done;
    }

    /* --- commit: objects first, the manifest last, then refs --- */
    {
        size_t total_steps = r->commit_step + 2;
        fti__st_mark(r, 5);

        /* the manifest */
        {
            fti_jw w;
            char ts[32];
            fti__st_reason_count rcs[64];
            size_t n_rc = 0, n_rej = 0, n_groups = 0;
            fti_jw_init(&w, &man, 1);
            fti_jw_obj_begin(&w);
            fti_jw_key(&w, "format");
            fti_jw_str(&w, "fti-dataset");
            fti_jw_key(&w, "format_version");
            fti_jw_int(&w, FTI__ST_FORMAT);
            fti_jw_key(&w, "id");
            fti_jw_str(&w, id);
            fti__st_jw_opt_str(&w, "parent", have_parent ? parent : NULL);
            fti_time_iso8601(fti_time_wall(), ts);
            fti_jw_key(&w, "created");
            fti_jw_str(&w, ts);
            fti_jw_key(&w, "template");
            fti_jw_obj_begin(&w);
            fti_jw_key(&w, "title");
            fti_jw_str(&w, FTI_TEMPLATE_TITLE);
            fti_jw_key(&w, "body");
            fti_jw_str(&w, FTI_TEMPLATE_BODY);
            fti_jw_key(&w, "end");
            fti_jw_str(&w, FTI_TEMPLATE_END);
            fti_jw_obj_end(&w);
            fti_jw_key(&w, "options");
            fti_jw_obj_begin(&w);
            fti_jw_key(&w, "text_fields");
            fti_jw_str(&w, r->o.text_fields);
            fti_jw_key(&w, "title_fields");
            fti_jw_str(&w, r->o.title_fields);
            fti_jw_key(&w, "date_fields");
            fti_jw_str(&w, r->o.date_fields);
            fti_jw_key(&w, "author_fields");
            fti_jw_str(&w, r->o.author_fields);
            fti_jw_key(&w, "required");
            fti_jw_str(&w, r->o.required);
            if (r->o.authors && r->o.authors[0]) {
                fti_jw_key(&w, "authors");
                fti_jw_str(&w, r->o.authors);
            }
            fti_jw_key(&w, "min_chars");
            fti_jw_int(&w, (int64_t)r->o.min_chars);
            fti_jw_key(&w, "max_chars");
            fti_jw_int(&w, (int64_t)r->o.max_chars);
            fti_jw_key(&w, "min_letter_frac");
            fti_jw_num(&w, r->o.min_letter_frac);
            fti_jw_key(&w, "max_repeat_frac");
            fti_jw_num(&w, r->o.max_repeat_frac);
            fti_jw_key(&w, "redact");
            fti_jw_str(&w, r->o.redact > 0 ? "all" : r->o.redact < 0 ? "none" : "mail");
            fti_jw_key(&w, "dedup_threshold");
            fti_jw_num(&w, r->o.dedup_threshold);
            fti_jw_key(&w, "minhash_perms");
            fti_jw_int(&w, FTI_MINHASH_PERMS);
            fti_jw_key(&w, "lsh_rows");
            fti_jw_int(&w, fti__st_lsh_rows(r->o.dedup_threshold));
            fti_jw_key(&w, "val_percent");
            fti_jw_int(&w, r->o.val_percent);
            fti_jw_key(&w, "chunk_tokens");
            fti_jw_int(&w, r->o.chunk_tokens);
            fti_jw_key(&w, "chunk_overlap");
            fti_jw_int(&w, r->o.chunk_overlap);
            fti_jw_key(&w, "vocab_size");
            fti_jw_int(&w, r->o.vocab_size);
            fti__st_jw_opt_str(&w, "tokenizer_file", r->o.tokenizer);
            fti_jw_obj_end(&w);

            fti_jw_key(&w, "sources");
            fti_jw_arr_begin(&w);
            for (i = 0; i < r->n_files; i++) {
                const fti__st_file *f = &r->files[i];
                char sha[65];
                fti_jw_obj_begin(&w);
                fti_jw_key(&w, "name");
                fti_jw_str(&w, f->name);
                fti_jw_key(&w, "path");
                fti_jw_str(&w, f->path);
                fti_jw_key(&w, "kind");
                fti_jw_str(&w, fti__st_kind_names[f->kind]);
                fti_jw_key(&w, "bytes");
                fti_jw_int(&w, (int64_t)f->size);
                fti_jw_key(&w, "sha256");
                if (f->hashed) {
                    fti_sha256_hex(f->sha, sha);
                    fti_jw_str(&w, sha);
                } else {
                    fti_jw_null(&w);
                }
                fti_jw_key(&w, "documents");
                fti_jw_int(&w, (int64_t)f->out.n_docs);
                fti_jw_key(&w, "rejected");
                fti_jw_int(&w, (int64_t)f->out.n_rejs);
                fti_jw_key(&w, "reused");
                fti_jw_bool(&w, f->reused);
                fti_jw_obj_end(&w);
            }
            fti_jw_arr_end(&w);

            /* validation report: every rule with its count (rules with no rejection too) */
            {
                static const char *const rules[] = {
                    "empty",          "too_short",      "too_long",
                    "few_letters",    "repeated_lines", "missing_title",
                    "missing_author", "missing_date",   NULL};
                for (i = 0; rules[i]; i++) {
                    rcs[n_rc].reason = rules[i];
                    rcs[n_rc++].count = 0;
                }
            }
            for (i = 0; i < r->n_files; i++) {
                const fti__st_file *f = &r->files[i];
                for (k = 0; k < f->out.n_rejs; k++) {
                    size_t q;
                    for (q = 0; q < n_rc; q++)
                        if (strcmp(rcs[q].reason, f->out.rejs[k].reason) == 0) break;
                    if (q == n_rc && n_rc < 64) {
                        rcs[n_rc].reason = f->out.rejs[k].reason;
                        rcs[n_rc++].count = 0;
                    }
                    if (q < n_rc) rcs[q].count++;
                    n_rej++;
                }
            }
            fti_jw_key(&w, "validation");
            fti_jw_obj_begin(&w);
            fti_jw_key(&w, "rejected");
            fti_jw_int(&w, (int64_t)n_rej);
            fti_jw_key(&w, "by_reason");
            fti_jw_obj_begin(&w);
            for (i = 0; i < n_rc; i++) {
                fti_jw_key(&w, rcs[i].reason);
                fti_jw_int(&w, (int64_t)rcs[i].count);
            }
            fti_jw_obj_end(&w);
            fti_jw_key(&w, "rejections");
            fti_jw_arr_begin(&w);
            for (i = 0, k = 0; i < r->n_files && k < 1000; i++) {
                const fti__st_file *f = &r->files[i];
                size_t q;
                for (q = 0; q < f->out.n_rejs && k < 1000; q++, k++) {
                    fti_buf src;
                    memset(&src, 0, sizeof src);
                    fti_buf_puts(&src, f->name);
                    fti_buf_puts(&src, f->out.rejs[q].loc);
                    fti_jw_obj_begin(&w);
                    fti_jw_key(&w, "source");
                    fti_jw_str(&w, src.data ? src.data : "");
                    fti_jw_key(&w, "reason");
                    fti_jw_str(&w, f->out.rejs[q].reason);
                    fti_jw_key(&w, "detail");
                    fti_jw_str(&w, f->out.rejs[q].detail);
                    fti_jw_obj_end(&w);
                    fti_buf_free(&src);
                }
            }
            fti_jw_arr_end(&w);
            fti_jw_obj_end(&w);

            /* dedup report: groups by kept document */
            fti_jw_key(&w, "dedup");
            fti_jw_obj_begin(&w);
            fti_jw_key(&w, "exact_dropped");
            fti_jw_int(&w, (int64_t)n_exact);
            fti_jw_key(&w, "near_dropped");
            fti_jw_int(&w, (int64_t)n_near);
            fti_jw_key(&w, "groups");
            fti_jw_arr_begin(&w);
            {
                /* each dropped document q with its kept document kr, as kr << 32 | q,
                 * sorted: the groups in order of kept document, each in input order (one pass,
                 * not a scan of all later documents for every kept one) */
                uint64_t *pairs = NULL;
                size_t n_pairs = 0, g;
                for (i = 0; i < n_all; i++) n_pairs += all[i]->status != 0;
                if (n_pairs) {
                    pairs = (uint64_t *)fti_malloc(n_pairs * sizeof *pairs);
                    if (!pairs) man.oom = 1;
                    n_pairs = 0;
                    for (i = 0; pairs && i < n_all; i++) {
                        uint32_t kr;
                        if (all[i]->status == 0) continue;
                        /* follow exact-dup links to the kept root */
                        kr = all[i]->dup_of;
                        while (all[kr]->status != 0 && all[kr]->dup_of != kr) kr = all[kr]->dup_of;
                        if (all[kr]->status == 0)
                            pairs[n_pairs++] = (uint64_t)kr << 32 | (uint64_t)i;
                    }
                    if (n_pairs > 1) qsort(pairs, n_pairs, sizeof *pairs, fti__st_u64_cmp);
                }
                for (g = 0; g < n_pairs && n_groups < 1000;) {
                    size_t keep = (size_t)(pairs[g] >> 32);
                    char idh[33];
                    fti_buf s0;
                    memset(&s0, 0, sizeof s0);
                    fti__st_doc_source(r, all[keep], &s0);
                    fti__st_doc_id_hex(all[keep], idh);
                    fti_jw_obj_begin(&w);
                    fti_jw_key(&w, "kept");
                    fti_jw_obj_begin(&w);
                    fti_jw_key(&w, "id");
                    fti_jw_str(&w, idh);
                    fti_jw_key(&w, "source");
                    fti_jw_str(&w, s0.data ? s0.data : "");
                    fti_jw_obj_end(&w);
                    fti_jw_key(&w, "dropped");
                    fti_jw_arr_begin(&w);
                    fti_buf_free(&s0);
                    n_groups++;
                    for (; g < n_pairs && (size_t)(pairs[g] >> 32) == keep; g++) {
                        fti__st_doc *d = all[(size_t)(pairs[g] & 0xFFFFFFFFu)];
                        fti_buf src;
                        memset(&src, 0, sizeof src);
                        fti__st_doc_source(r, d, &src);
                        fti__st_doc_id_hex(d, idh);
                        fti_jw_obj_begin(&w);
                        fti_jw_key(&w, "id");
                        fti_jw_str(&w, idh);
                        fti_jw_key(&w, "source");
                        fti_jw_str(&w, src.data ? src.data : "");
                        fti_jw_key(&w, "match");
                        fti_jw_str(&w, d->status == 1 ? "exact" : "near");
                        fti_jw_key(&w, "jaccard");
                        fti_jw_num(&w, fti__st_mh_jaccard(d->mh, all[keep]->mh));
                        fti_jw_obj_end(&w);
                        fti_buf_free(&src);
                    }
                    fti_jw_arr_end(&w);
                    fti_jw_obj_end(&w);
                }
                fti_free(pairs);
            }
            fti_jw_arr_end(&w);
            fti_jw_obj_end(&w);

            fti_jw_key(&w, "counts");
            fti_jw_obj_begin(&w);
            fti_jw_key(&w, "files");
            fti_jw_int(&w, (int64_t)r->n_files);
            fti_jw_key(&w, "files_reused");
            fti_jw_int(&w, (int64_t)n_reused);
            fti_jw_key(&w, "bytes");
            fti_jw_int(&w, (int64_t)r->bytes_total);
            fti_jw_key(&w, "records");
            fti_jw_int(&w, (int64_t)(n_all + n_rej));
            fti_jw_key(&w, "documents");
            fti_jw_int(&w, (int64_t)n_kept);
            fti_jw_key(&w, "rejected");
            fti_jw_int(&w, (int64_t)n_rej);
            fti_jw_key(&w, "duplicates");
            fti_jw_int(&w, (int64_t)(n_exact + n_near));
            fti_jw_key(&w, "train_documents");
            fti_jw_int(&w, (int64_t)n_train_docs);
            fti_jw_key(&w, "val_documents");
            fti_jw_int(&w, (int64_t)n_val_docs);
            fti_jw_key(&w, "train_tokens");
            fti_jw_int(&w, (int64_t)n_train_tok);
            fti_jw_key(&w, "val_tokens");
            fti_jw_int(&w, (int64_t)n_val_tok);
            fti_jw_key(&w, "chunks");
            fti_jw_int(&w, (int64_t)n_chunks_total);
            fti_jw_obj_end(&w);

            fti_jw_key(&w, "stats");
            fti_jw_obj_begin(&w);
            fti__st_len_stats(kept, n_kept, &w);
            fti_jw_key(&w, "doc_tokens_mean");
            fti_jw_num(&w, n_kept ? (double)(n_train_tok + n_val_tok) / (double)n_kept : 0.0);
            fti_jw_obj_end(&w);

            fti_jw_key(&w, "tokenizer");
            if (have_tok) {
                fti_jw_obj_begin(&w);
                fti_jw_key(&w, "sha256");
                fti_jw_str(&w, tok_sha);
                fti_jw_key(&w, "vocab_size");
                fti_jw_int(&w, stok.vocab_size);
                fti_jw_key(&w, "eot_id");
                fti_jw_int(&w, stok.eot_id);
                fti_jw_key(&w, "trained");
                fti_jw_bool(&w, r->o.tokenizer == NULL);
                fti_jw_obj_end(&w);
            } else {
                fti_jw_null(&w);
            }

            fti_jw_key(&w, "files");
            fti_jw_obj_begin(&w);
            for (k = 0; k < r->n_objs; k++) {
                fti_jw_key(&w, r->objs[k].name);
                fti_jw_obj_begin(&w);
                fti_jw_key(&w, "sha256");
                fti_jw_str(&w, r->objs[k].hex);
                fti_jw_key(&w, "bytes");
                fti_jw_int(&w, (int64_t)r->objs[k].bytes);
                fti_jw_obj_end(&w);
            }
            fti_jw_obj_end(&w);
            fti_jw_obj_end(&w);
            fti_buf_putc(&man, '\n');
            if (man.oom) {
                rc = fti_error_set(err, FTI_ERR_NOMEM, "ingest: out of memory");
                goto done;
            }
        }
        fti__st_progress(r, "commit", ++r->commit_step, total_steps);
        if (old_man && fti__st_same_objects(r, old_man)) {
            /* a repair made the objects the manifest names: it stays as it was (created) */
        } else {
            rc = fti_file_write_atomic(mpath, man.data, man.len, err);
            if (rc != FTI_OK) goto done;
        }
        { /* a version gc removed, made again: its tombstone goes (the manifest wins anyway) */
            char *tp = fti__st_version_path(r->home, id, ".removed");
            if (tp && fti_path_exists(tp)) (void)fti_file_remove(tp, NULL);
            fti_free(tp);
        }
        fti__st_progress(r, "commit", ++r->commit_step, total_steps);
    }

commit_refs:
    if (!r->o.no_latest) {
        rc = fti__st_write_ref(r->home, "latest", id, err);
        if (rc != FTI_OK) goto done;
    }
    if (r->o.tag) {
        rc = fti__st_tag(r->home, r->o.tag, id, 1, err);
        if (rc != FTI_OK) goto done;
    }
    memcpy(out_id, id, 65);
    if (reused) *reused = n_reused;
    fti__st_mark(r, 6);
    fti__st_log(r, FTI_LOG_DEBUG,
                "timing scan=%.3f ingest=%.3f dedupe=%.3f tokenizer=%.3f shards=%.3f index=%.3f "
                "commit=%.3f seconds, %lu bytes",
                r->t_stage[0], r->t_stage[1], r->t_stage[2], r->t_stage[3], r->t_stage[4],
                r->t_stage[5], r->t_stage[6], (unsigned long)r->bytes_total);
    fti__st_log(r, FTI_LOG_DEBUG,
                "cputime scan=%.3f ingest=%.3f dedupe=%.3f tokenizer=%.3f shards=%.3f index=%.3f "
                "commit=%.3f seconds",
                r->c_stage[0], r->c_stage[1], r->c_stage[2], r->c_stage[3], r->c_stage[4],
                r->c_stage[5], r->c_stage[6]);
done:
    if (have_tok) fti__st_stok_free(&stok);
    fti_json_free(old_man);
    fti_free(mpath);
    fti_free(all);
    fti_free(kept);
    fti_free(root);
    fti_free(keeper);
    fti_free(metas);
    fti_free(doc_ids);
    for (i = 0; sources && i < n_kept; i++) fti_buf_free(&sources[i]);
    fti_free(sources);
    fti_free(tok_counts);
    fti_buf_free(&tok_img);
    fti_buf_free(&freq_img);
    fti_buf_free(&man);
    fti_buf_free(&batch);
    fti_buf_free(&ser);
    fti__st_objw_abort(&docs_w);
    fti__st_objw_abort(&shard_w[0]);
    fti__st_objw_abort(&shard_w[1]);
    fti__st_objw_abort(&index_w);
    fti__st_bm25b_free(&ixb);
    if (spill_fd >= 0) close(spill_fd);
    if (post_fd >= 0) close(post_fd);
    fti_pool_free(pool);
    return rc;
}

/* === resolve, list, verify, diff ============================================================ */

typedef struct fti__st_idlist {
    char **ids;
    size_t n, cap;
    const char *prefix;
} fti__st_idlist;

static fti_result fti__st_list_cb(void *user, const char *path, uint64_t size) {
    fti__st_idlist *l = (fti__st_idlist *)user;
    const char *b = fti_path_base(path);
    size_t n = strlen(b);
    (void)size;
    if (n != 69 || strcmp(b + 64, ".json") != 0 || !fti__st_is_hex_id(b, 64)) return FTI_OK;
    if (l->prefix && strncmp(b, l->prefix, strlen(l->prefix)) != 0) return FTI_OK;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        char **p = (char **)fti_realloc(l->ids, cap * sizeof *p);
        if (!p) return FTI_ERR_NOMEM;
        l->ids = p;
        l->cap = cap;
    }
    l->ids[l->n] = fti_strndup(b, 64);
    if (!l->ids[l->n]) return FTI_ERR_NOMEM;
    l->n++;
    return FTI_OK;
}

static fti_result fti__st_list_ids(const char *home, const char *prefix, fti__st_idlist *l,
                                   fti_error *err) {
    char *dir = fti__st_path3(home, "store/versions", NULL);
    fti_result rc;
    memset(l, 0, sizeof *l);
    l->prefix = prefix;
    if (!dir) return fti_error_set(err, FTI_ERR_NOMEM, "store: out of memory");
    if (!fti_path_is_dir(dir)) {
        fti_free(dir);
        return FTI_OK;
    }
    rc = fti_walk(dir, fti__st_list_cb, l, err);
    fti_free(dir);
    return rc;
}

FTIDEF void fti_store_list_free(char **ids, size_t n) {
    size_t i;
    if (!ids) return;
    for (i = 0; i < n; i++) fti_free(ids[i]);
    fti_free(ids);
}

static int fti__st_tombstone(const char *home, const char *prefix, char id[65], char when[40]);
static char *fti__st_tombstone_path(const char *home, const char *id);

FTIDEF fti_result fti_store_resolve(const char *home, const char *name, char out_id[65],
                                    fti_error *err) {
    char rel[128], when[40], gone[65];
    size_t n;
    if (!home || !out_id) return fti_error_set(err, FTI_ERR_INVALID, "resolve: bad arguments");
    if (!name || !*name || strcmp(name, "latest") == 0) {
        if (fti__st_read_ref(home, "latest", out_id)) return FTI_OK;
        if (fti__st_ref_damaged(home, "latest"))
            return fti_error_set(err, FTI_ERR_FORMAT, "%s/store/refs/latest: damaged (not a "
                                 "version id): ingest again to rewrite it", home);
        return fti_error_set(err, FTI_ERR_NOT_FOUND, "%s: no dataset version yet (run ingest)",
                             home);
    }
    n = strlen(name);
    if (fti__st_tag_ok(name)) {
        snprintf(rel, sizeof rel, "tags/%s", name);
        if (fti__st_read_ref(home, rel, out_id)) return FTI_OK;
        if (fti__st_ref_damaged(home, rel))
            return fti_error_set(err, FTI_ERR_FORMAT, "%s/store/refs/%s: damaged (not a version "
                                 "id): tag the version again", home, rel);
    }
    if (n >= 4 && n <= 64 && fti__st_is_hex_id(name, n)) {
        fti__st_idlist l;
        fti_result rc = fti__st_list_ids(home, name, &l, err);
        if (rc == FTI_OK) {
            if (l.n == 1)
                memcpy(out_id, l.ids[0], 65);
            else if (l.n == 0 && fti__st_tombstone(home, name, gone, when))
                rc = fti_error_set(err, FTI_ERR_NOT_FOUND, "version %.16s was removed by gc "
                                   "(%s)", gone, when);
            else if (l.n == 0)
                rc = fti_error_set(err, FTI_ERR_NOT_FOUND, "store %s: version %s not found",
                                   home, name);
            else
                rc = fti_error_set(err, FTI_ERR_INVALID, "store %s: version prefix %s is "
                                   "ambiguous: give more digits", home, name);
        }
        fti_store_list_free(l.ids, l.n);
        return rc;
    }
    /* the store searched is named: a wrong --home or $FTI_HOME is the usual cause */
    return fti_error_set(err, FTI_ERR_NOT_FOUND, "store %s: no version or tag '%s'", home, name);
}

/* Parses the manifest of version id. */
static fti_result fti__st_load_manifest(const char *home, const char *id, fti_json_doc **out,
                                        fti_error *err) {
    char *p = fti__st_manifest_path(home, id);
    void *txt = NULL;
    size_t len = 0;
    fti_result rc;
    fti_json_opts jo;
    *out = NULL;
    if (!p) return fti_error_set(err, FTI_ERR_NOMEM, "store: out of memory");
    rc = fti_file_read(p, (size_t)1 << 30, &txt, &len, err);
    if (rc == FTI_OK) {
        memset(&jo, 0, sizeof jo);
        jo.max_string = (size_t)1 << 28;
        rc = fti_json_parse((const char *)txt, len, &jo, out, NULL, err);
        if (rc != FTI_OK)
            fti_error_prefix(err, p);
        else if (fti_json_root(*out)->type != FTI_JSON_OBJECT) {
            fti_json_free(*out);
            *out = NULL;
            rc = fti_error_set(err, FTI_ERR_FORMAT, "%s: not a JSON object", p);
        }
    }
    fti_free(txt);
    fti_free(p);
    return rc;
}

typedef struct fti__st_ver_time {
    char *id;
    char created[40];
} fti__st_ver_time;

static int fti__st_ver_cmp(const void *a, const void *b) {
    const fti__st_ver_time *x = (const fti__st_ver_time *)a, *y = (const fti__st_ver_time *)b;
    int c = strcmp(x->created, y->created);
    return c ? c : strcmp(x->id, y->id);
}

FTIDEF fti_result fti_store_list(const char *home, char ***out_ids, size_t *out_n, fti_error *err) {
    fti__st_idlist l;
    fti__st_ver_time *vt;
    fti_result rc;
    size_t i;
    if (!home || !out_ids || !out_n)
        return fti_error_set(err, FTI_ERR_INVALID, "list: bad arguments");
    *out_ids = NULL;
    *out_n = 0;
    rc = fti__st_list_ids(home, NULL, &l, err);
    if (rc != FTI_OK) {
        fti_store_list_free(l.ids, l.n);
        return rc;
    }
    vt = (fti__st_ver_time *)fti_calloc(l.n + 1, sizeof *vt);
    if (!vt) {
        fti_store_list_free(l.ids, l.n);
        return fti_error_set(err, FTI_ERR_NOMEM, "list: out of memory");
    }
    for (i = 0; i < l.n; i++) {
        fti_json_doc *jd = NULL;
        vt[i].id = l.ids[i];
        if (fti__st_load_manifest(home, l.ids[i], &jd, NULL) == FTI_OK) {
            const char *c = fti_json_get_str(fti_json_root(jd), "created", "");
            snprintf(vt[i].created, sizeof vt[i].created, "%s", c);
        }
        fti_json_free(jd);
    }
    qsort(vt, l.n, sizeof *vt, fti__st_ver_cmp);
    for (i = 0; i < l.n; i++) l.ids[i] = vt[i].id;
    fti_free(vt);
    *out_ids = l.ids;
    *out_n = l.n;
    return FTI_OK;
}

/* Checks one file entry of a manifest: present, size and SHA-256. */
static int fti__st_verify_file(const char *home, const char *id, const char *name,
                               const fti_json *ent, fti_buf *report) {
    const char *hex = fti_json_get_str(ent, "sha256", NULL);
    int64_t bytes = fti_json_get_int(ent, "bytes", -1);
    char *p;
    fti_map m;
    unsigned char d[32];
    char got[65];
    int ok = 1;
    fti_error e;
    if (!hex || strlen(hex) != 64 || !fti__st_is_hex_id(hex, 64)) {
        if (report) fti_buf_printf(report, "%s: file %s: bad sha256 entry\n", id, name);
        return 0;
    }
    p = fti__st_object_path(home, hex);
    if (!p) return 0;
    if (fti_map_open(&m, p, &e) != FTI_OK) {
        if (report) fti_buf_printf(report, "%s: file %s: missing object %s\n", id, name, hex);
        fti_free(p);
        return 0;
    }
    if (bytes >= 0 && (uint64_t)bytes != (uint64_t)m.len) {
        if (report)
            fti_buf_printf(report, "%s: file %s: %lu bytes, manifest says %lld\n", id, name,
                           (unsigned long)m.len, (long long)bytes);
        ok = 0;
    }
    fti__st_sha256(m.data, m.len, d);
    fti_sha256_hex(d, got);
    if (strcmp(got, hex) != 0) {
        if (report) fti_buf_printf(report, "%s: file %s: sha256 %s != %s\n", id, name, got, hex);
        ok = 0;
    }
    fti_map_close(&m);
    if (ok && strcmp(name, "index") == 0) {
        fti_bm25 *ix = NULL;
        if (fti_bm25_open(&ix, p, &e) != FTI_OK) {
            if (report) fti_buf_printf(report, "%s: index: %s\n", id, e.msg);
            ok = 0;
        }
        fti_bm25_close(ix);
    }
    if (ok && (strcmp(name, "train") == 0 || strcmp(name, "val") == 0)) {
        fti_token_shard s;
        if (fti_shard_open(&s, p, 1, &e) != FTI_OK) {
            if (report) fti_buf_printf(report, "%s: %s shard: %s\n", id, name, e.msg);
            ok = 0;
        } else {
            fti_shard_close(&s);
        }
    }
    fti_free(p);
    return ok;
}

static int fti__st_verify_version(const char *home, const char *id, fti_buf *report) {
    fti_json_doc *jd = NULL;
    fti_error e;
    const fti_json *root, *files, *c;
    const char *mid, *parent;
    int ok = 1;
    if (fti__st_load_manifest(home, id, &jd, &e) != FTI_OK) {
        if (report) fti_buf_printf(report, "%s: manifest: %s\n", id, e.msg);
        return 0;
    }
    root = fti_json_root(jd);
    mid = fti_json_get_str(root, "id", "");
    if (strcmp(mid, id) != 0) {
        if (report) fti_buf_printf(report, "%s: manifest names id %s\n", id, mid);
        ok = 0;
    }
    parent = fti_json_get_str(root, "parent", NULL);
    if (parent) {
        char *pp = fti__st_manifest_path(home, parent), *tp = NULL;
        if (!pp || strlen(parent) != 64 ||
            (!fti_path_exists(pp) &&
             !((tp = fti__st_tombstone_path(home, parent)) && fti_path_exists(tp)))) {
            if (report) fti_buf_printf(report, "%s: parent %s is missing\n", id, parent);
            ok = 0;
        }
        fti_free(pp);
        fti_free(tp);
    }
    files = fti_json_get(root, "files");
    if (!files || files->type != FTI_JSON_OBJECT || !fti_json_get(files, "docs") ||
        !fti_json_get(files, "index")) {
        if (report) fti_buf_printf(report, "%s: manifest lists no files\n", id);
        ok = 0;
    } else {
        for (c = files->child; c; c = c->next)
            if (!fti__st_verify_file(home, id, c->key, c, report)) ok = 0;
    }
    fti_json_free(jd);
    return ok;
}

typedef struct fti__st_refcheck {
    const char *home;
    fti_buf *report;
    int ok;
} fti__st_refcheck;

static fti_result fti__st_ref_cb(void *user, const char *path, uint64_t size) {
    fti__st_refcheck *rc = (fti__st_refcheck *)user;
    void *data = NULL;
    size_t len = 0;
    (void)size;
    if (strstr(fti_path_base(path), ".tmp.")) return FTI_OK; /* an interrupted write */
    if (fti_file_read(path, 256, &data, &len, NULL) == FTI_OK) {
        const char *s = (const char *)data;
        char *mp;
        while (len && (s[len - 1] == '\n' || s[len - 1] == '\r' || s[len - 1] == ' ')) len--;
        if (len != 64 || !fti__st_is_hex_id(s, 64)) {
            if (rc->report) fti_buf_printf(rc->report, "ref %s: not a version id\n", path);
            rc->ok = 0;
        } else {
            char id[65];
            memcpy(id, s, 64);
            id[64] = 0;
            mp = fti__st_manifest_path(rc->home, id);
            if (!mp || !fti_path_exists(mp)) {
                if (rc->report)
                    fti_buf_printf(rc->report, "ref %s: version %s is missing\n", path, id);
                rc->ok = 0;
            }
            fti_free(mp);
        }
    } else {
        if (rc->report) fti_buf_printf(rc->report, "ref %s: unreadable\n", path);
        rc->ok = 0;
    }
    fti_free(data);
    return FTI_OK;
}

FTIDEF fti_result fti_store_verify(const char *home, const char *id, fti_buf *report,
                                   fti_error *err) {
    int ok = 1;
    if (!home) return fti_error_set(err, FTI_ERR_INVALID, "verify: no workspace");
    if (id) {
        char full[65];
        fti_result rc = fti_store_resolve(home, id, full, err);
        if (rc != FTI_OK) return rc;
        ok = fti__st_verify_version(home, full, report);
    } else {
        fti__st_idlist l;
        fti__st_refcheck rc;
        size_t i;
        char *refs;
        fti_result r2 = fti__st_list_ids(home, NULL, &l, err);
        if (r2 != FTI_OK) {
            fti_store_list_free(l.ids, l.n);
            return r2;
        }
        for (i = 0; i < l.n; i++)
            if (!fti__st_verify_version(home, l.ids[i], report)) ok = 0;
        fti_store_list_free(l.ids, l.n);
        rc.home = home;
        rc.report = report;
        rc.ok = 1;
        refs = fti__st_path3(home, "store/refs", NULL);
        if (refs && fti_path_is_dir(refs)) fti_walk(refs, fti__st_ref_cb, &rc, NULL);
        fti_free(refs);
        if (!rc.ok) ok = 0;
    }
    if (!ok) return fti_error_set(err, FTI_ERR_CHECKSUM, "verify: the store does not check out");
    return FTI_OK;
}

/* Reads a version's docs.jsonl into (id, source, title) lines sorted by id. */
typedef struct fti__st_docline {
    char id[33];
    char *line;
} fti__st_docline;

static int fti__st_docline_cmp(const void *a, const void *b) {
    return strcmp(((const fti__st_docline *)a)->id, ((const fti__st_docline *)b)->id);
}

static fti_result fti__st_doc_lines(const char *home, const char *id, fti__st_docline **out,
                                    size_t *n_out, fti_error *err) {
    fti_json_doc *jd = NULL;
    const char *hex;
    char *p = NULL;
    fti_map m;
    fti_result rc = fti__st_load_manifest(home, id, &jd, err);
    size_t cap = 0, n = 0, pos = 0;
    fti__st_docline *v = NULL;
    *out = NULL;
    *n_out = 0;
    if (rc != FTI_OK) return rc;
    hex = fti_json_get_str(fti_json_get(fti_json_get(fti_json_root(jd), "files"), "docs"), "sha256",
                           NULL);
    if (!hex || strlen(hex) != 64) {
        fti_json_free(jd);
        return fti_error_set(err, FTI_ERR_FORMAT, "%s: manifest has no docs file", id);
    }
    p = fti__st_object_path(home, hex);
    fti_json_free(jd);
    if (!p) return fti_error_set(err, FTI_ERR_NOMEM, "diff: out of memory");
    rc = fti_map_open(&m, p, err);
    fti_free(p);
    if (rc != FTI_OK) return rc;
    while (pos < m.len) {
        const char *s = (const char *)m.data + pos;
        const char *e = (const char *)memchr(s, '\n', m.len - pos);
        size_t len = e ? (size_t)(e - s) : m.len - pos;
        fti_json_doc *d = NULL;
        fti_json_opts jo;
        memset(&jo, 0, sizeof jo);
        jo.max_string = (size_t)1 << 28;
        if (len && fti_json_parse(s, len, &jo, &d, NULL, NULL) == FTI_OK) {
            const fti_json *o = fti_json_root(d);
            fti_buf line;
            if (n == cap) {
                size_t c2 = cap ? cap * 2 : 64;
                fti__st_docline *q = (fti__st_docline *)fti_realloc(v, c2 * sizeof *q);
                if (!q) {
                    fti_json_free(d);
                    rc = FTI_ERR_NOMEM;
                    break;
                }
                v = q;
                cap = c2;
            }
            memset(&line, 0, sizeof line);
            snprintf(v[n].id, 33, "%s", fti_json_get_str(o, "id", ""));
            fti_buf_printf(&line, "%s %s \"%s\"", v[n].id, fti_json_get_str(o, "source", ""),
                           fti_json_get_str(o, "title", ""));
            v[n].line = line.data;
            n++;
        }
        fti_json_free(d);
        pos += len + 1;
    }
    fti_map_close(&m);
    if (rc != FTI_OK) {
        size_t i;
        for (i = 0; i < n; i++) fti_free(v[i].line);
        fti_free(v);
        return fti_error_set(err, rc, "diff: out of memory");
    }
    qsort(v, n, sizeof *v, fti__st_docline_cmp);
    *out = v;
    *n_out = n;
    return FTI_OK;
}

FTIDEF fti_result fti_store_diff(const char *home, const char *a, const char *b, fti_buf *out,
                                 size_t *n_added, size_t *n_removed, fti_error *err) {
    char ia[65], ib[65];
    fti__st_docline *va = NULL, *vb = NULL;
    size_t na = 0, nb = 0, i = 0, j = 0, add = 0, rem = 0;
    fti_result rc;
    if (!home || !out) return fti_error_set(err, FTI_ERR_INVALID, "diff: bad arguments");
    rc = fti_store_resolve(home, a, ia, err);
    if (rc == FTI_OK) rc = fti_store_resolve(home, b, ib, err);
    if (rc == FTI_OK) rc = fti__st_doc_lines(home, ia, &va, &na, err);
    if (rc == FTI_OK) rc = fti__st_doc_lines(home, ib, &vb, &nb, err);
    if (rc == FTI_OK) {
        while (i < na || j < nb) {
            int c = i >= na ? 1 : j >= nb ? -1 : strcmp(va[i].id, vb[j].id);
            if (c < 0) {
                fti_buf_printf(out, "- %s\n", va[i++].line);
                rem++;
            } else if (c > 0) {
                fti_buf_printf(out, "+ %s\n", vb[j++].line);
                add++;
            } else {
                i++, j++;
            }
        }
    }
    for (i = 0; i < na; i++) fti_free(va[i].line);
    for (i = 0; i < nb; i++) fti_free(vb[i].line);
    fti_free(va);
    fti_free(vb);
    if (n_added) *n_added = add;
    if (n_removed) *n_removed = rem;
    return rc;
}

/* === gc: old versions, unreferenced objects, stale temp files ================================= */

/* A removed version leaves a tombstone, store/versions/<id>.removed (one JSON line: id, parent,
 * created, removed), so its children's parent still names something and a lookup of its id
 * says what happened to it. */
static char *fti__st_tombstone_path(const char *home, const char *id) {
    return fti__st_version_path(home, id, ".removed");
}

typedef struct fti__st_tomb_find {
    const char *prefix;
    char id[65];
    size_t n;
} fti__st_tomb_find;

static fti_result fti__st_tomb_cb(void *user, const char *path, uint64_t size) {
    fti__st_tomb_find *f = (fti__st_tomb_find *)user;
    const char *b = fti_path_base(path);
    (void)size;
    if (strlen(b) != 72 || strcmp(b + 64, ".removed") != 0 || !fti__st_is_hex_id(b, 64) ||
        strncmp(b, f->prefix, strlen(f->prefix)) != 0)
        return FTI_OK;
    if (f->n++ == 0) {
        memcpy(f->id, b, 64);
        f->id[64] = 0;
    }
    return FTI_OK;
}

/* 1 (and the full id and the removal time) when exactly one tombstone starts with prefix. */
static int fti__st_tombstone(const char *home, const char *prefix, char id[65], char when[40]) {
    char *dir = fti__st_path3(home, "store/versions", NULL), *p;
    fti__st_tomb_find f;
    void *data = NULL;
    size_t len = 0;
    memset(&f, 0, sizeof f);
    f.prefix = prefix;
    if (dir && fti_path_is_dir(dir)) fti_walk(dir, fti__st_tomb_cb, &f, NULL);
    fti_free(dir);
    if (f.n != 1) return 0;
    memcpy(id, f.id, 65);
    snprintf(when, 40, "?");
    p = fti__st_tombstone_path(home, f.id);
    if (p && fti_file_read(p, 4096, &data, &len, NULL) == FTI_OK) {
        fti_json_doc *jd = NULL;
        if (fti_json_parse((const char *)data, len, NULL, &jd, NULL, NULL) == FTI_OK)
            snprintf(when, 40, "%s", fti_json_get_str(fti_json_root(jd), "removed", "?"));
        fti_json_free(jd);
    }
    fti_free(data);
    fti_free(p);
    return 1;
}

static int fti__st_id_cmp(const void *a, const void *b) {
    return memcmp(*(const char *const *)a, *(const char *const *)b, 64);
}

typedef struct fti__st_gc {
    const char *home;
    char **live;        /* sorted object ids named by the versions kept */
    size_t n_live;
    int dry_run;
    int all_temp;       /* 1 while walking store/tmp: every file there is temporary */
    double now, temp_age;
    fti_store_gc_result *res;
    fti_buf *report;
} fti__st_gc;

static int fti__st_gc_stale(const fti__st_gc *g, const char *path) {
    struct stat st;
    return strstr(fti_path_base(path), ".tmp.") && stat(path, &st) == 0 &&
           g->now - (double)st.st_mtime >= g->temp_age;
}

static void fti__st_gc_rm(fti__st_gc *g, const char *path, uint64_t size, size_t *count) {
    if (!g->dry_run && fti_file_remove(path, NULL) != FTI_OK) return;
    (*count)++;
    g->res->bytes_freed += size;
}

static fti_result fti__st_gc_obj_cb(void *user, const char *path, uint64_t size) {
    fti__st_gc *g = (fti__st_gc *)user;
    const char *b = fti_path_base(path);
    if (strlen(b) == 64 && fti__st_is_hex_id(b, 64)) {
        if (!g->n_live || !bsearch(&b, g->live, g->n_live, sizeof *g->live, fti__st_id_cmp))
            fti__st_gc_rm(g, path, size, &g->res->objects_removed);
    } else if (fti__st_gc_stale(g, path)) {
        fti__st_gc_rm(g, path, size, &g->res->temp_removed);
    }
    return FTI_OK;
}

static fti_result fti__st_gc_tmp_cb(void *user, const char *path, uint64_t size) {
    fti__st_gc *g = (fti__st_gc *)user;
    /* store/tmp holds only what a running ingest writes, and the lock says none runs (known by
     * the directory walked, not by the path: HOME itself may have "/store/tmp/" in it) */
    if (g->all_temp || fti__st_gc_stale(g, path))
        fti__st_gc_rm(g, path, size, &g->res->temp_removed);
    return FTI_OK;
}

typedef struct fti__st_gc_tags {
    char **ids;
    size_t n;
    char *keep;
    fti_error *err;
} fti__st_gc_tags;

/* Keeps the version a tag names; a tag that names none (damaged) stops gc: the version it
 * was meant to keep cannot be told, and might be removed. */
static fti_result fti__st_gc_tag_cb(void *user, const char *path, uint64_t size) {
    fti__st_gc_tags *t = (fti__st_gc_tags *)user;
    void *data = NULL;
    size_t len = 0, i;
    fti_result rc = FTI_OK;
    (void)size;
    if (strstr(fti_path_base(path), ".tmp.")) return FTI_OK;
    if (fti_file_read(path, 256, &data, &len, t->err) != FTI_OK) {
        rc = FTI_ERR_IO;
    } else {
        const char *s = (const char *)data;
        while (len && (s[len - 1] == '\n' || s[len - 1] == ' ' || s[len - 1] == '\r')) len--;
        if (len != 64 || !fti__st_is_hex_id(s, 64))
            rc = fti_error_set(t->err, FTI_ERR_FORMAT, "%s: damaged (not a version id): "
                               "tag the version again or remove the tag; nothing removed", path);
        for (i = 0; rc == FTI_OK && i < t->n; i++)
            if (memcmp(t->ids[i], data, 64) == 0) t->keep[i] = 1;
    }
    fti_free(data);
    return rc;
}

/* Adds the objects a manifest names to the live list. */
static fti_result fti__st_gc_mark(fti__st_gc *g, const char *id, size_t *cap, fti_error *err) {
    fti_json_doc *jd = NULL;
    const fti_json *c;
    fti_result rc = fti__st_load_manifest(g->home, id, &jd, err);
    if (rc != FTI_OK) return rc;
    c = fti_json_get(fti_json_root(jd), "files");
    for (c = c && c->type == FTI_JSON_OBJECT ? c->child : NULL; c; c = c->next) {
        const char *hex = fti_json_get_str(c, "sha256", NULL);
        if (!hex || strlen(hex) != 64 || !fti__st_is_hex_id(hex, 64)) continue;
        if (g->n_live == *cap) {
            size_t nc = *cap ? *cap * 2 : 64;
            char **p = (char **)fti_realloc(g->live, nc * sizeof *p);
            if (!p) break;
            g->live = p;
            *cap = nc;
        }
        if ((g->live[g->n_live] = fti_strndup(hex, 64)) == NULL) break;
        g->n_live++;
    }
    fti_json_free(jd);
    if (c) return fti_error_set(err, FTI_ERR_NOMEM, "gc: out of memory");
    return FTI_OK;
}

FTIDEF fti_result fti_store_gc(const char *home, const fti_store_gc_opts *opts,
                               fti_store_gc_result *result, fti_buf *report, fti_error *err) {
    fti_store_gc_opts o;
    fti_store_gc_result res0;
    fti__st_gc g;
    char **ids = NULL, id[65], *keep = NULL, *dir = NULL;
    size_t n = 0, i, j, live_cap = 0;
    int lock_fd = -1;
    fti_result rc;
    memset(&o, 0, sizeof o);
    if (opts) o = *opts;
    if (o.keep_last == 0) o.keep_last = 3;
    if (!(o.temp_age_s > 0)) o.temp_age_s = 3600;
    memset(&res0, 0, sizeof res0);
    memset(&g, 0, sizeof g);
    g.home = home;
    g.dry_run = o.dry_run;
    g.now = fti_time_wall();
    g.temp_age = o.temp_age_s;
    g.res = result ? result : &res0;
    g.report = report;
    memset(g.res, 0, sizeof *g.res);
    if (!home) return fti_error_set(err, FTI_ERR_INVALID, "gc: no workspace");
    /* exclusive: no ingest (whose objects are not yet named by a manifest) runs meanwhile. A
     * dry run only reads, so it takes no lock: holding it would make an ingest started meanwhile
     * fail with FTI_ERR_BUSY (fti-twin status runs one beside updates) */
    if (!o.dry_run && (rc = fti__st_lock(home, 0, &lock_fd, err)) != FTI_OK) return rc;
    if ((rc = fti_store_list(home, &ids, &n, err)) != FTI_OK) goto done;
    keep = (char *)fti_calloc(n + 1, 1);
    if (!keep) {
        rc = fti_error_set(err, FTI_ERR_NOMEM, "gc: out of memory");
        goto done;
    }
    /* what stays: the newest keep_last, latest, every tag, and the caller's list */
    for (i = 0; i < n; i++) keep[i] = i + o.keep_last >= n;
    for (j = 0; j <= o.n_keep; j++) {
        const char *name = j < o.n_keep ? o.keep[j] : "latest";
        if (!name || fti_store_resolve(home, name, id, NULL) != FTI_OK) continue;
        for (i = 0; i < n; i++)
            if (strcmp(ids[i], id) == 0) keep[i] = 1;
    }
    if (fti__st_ref_damaged(home, "latest")) {
        rc = fti_error_set(err, FTI_ERR_FORMAT, "%s/store/refs/latest: damaged (not a "
                           "version id): ingest again to rewrite it; nothing removed", home);
        goto done;
    }
    {
        fti__st_gc_tags t;
        char *tags = fti__st_path3(home, "store/refs", "tags");
        t.ids = ids;
        t.n = n;
        t.keep = keep;
        t.err = err;
        rc = tags && fti_path_is_dir(tags) ? fti_walk(tags, fti__st_gc_tag_cb, &t, err) : FTI_OK;
        fti_free(tags);
        if (rc != FTI_OK) goto done;
    }
    /* versions: the tombstone first (durable), then the manifest; a crash between leaves both,
     * and the next gc (or verify) sees a tombstone beside a live manifest: the manifest wins */
    for (i = 0; i < n; i++) {
        char *mp, *tp;
        fti_json_doc *jd = NULL;
        fti_buf t;
        fti_jw w;
        if (keep[i]) {
            g.res->versions_kept++;
            continue;
        }
        g.res->versions_removed++;
        if (report)
            fti_buf_printf(report, "version %s %s\n", ids[i], o.dry_run ? "would go" : "removed");
        if (o.dry_run) continue;
        mp = fti__st_manifest_path(home, ids[i]);
        tp = fti__st_tombstone_path(home, ids[i]);
        memset(&t, 0, sizeof t);
        fti__st_load_manifest(home, ids[i], &jd, NULL);
        fti_jw_init(&w, &t, 0);
        fti_jw_obj_begin(&w);
        fti_jw_key(&w, "id");
        fti_jw_str(&w, ids[i]);
        fti_jw_key(&w, "parent");
        if (jd && fti_json_get_str(fti_json_root(jd), "parent", NULL))
            fti_jw_str(&w, fti_json_get_str(fti_json_root(jd), "parent", ""));
        else
            fti_jw_null(&w);
        fti_jw_key(&w, "created");
        fti_jw_str(&w, jd ? fti_json_get_str(fti_json_root(jd), "created", "") : "");
        fti_time_iso8601(g.now, id); /* (id: a buffer of 65 bytes, free here) */
        fti_jw_key(&w, "removed");
        fti_jw_str(&w, id);
        fti_jw_obj_end(&w);
        fti_buf_putc(&t, '\n');
        fti_json_free(jd);
        rc = !mp || !tp || t.oom ? fti_error_set(err, FTI_ERR_NOMEM, "gc: out of memory")
                                 : fti_file_write_atomic(tp, t.data, t.len, err);
        if (rc == FTI_OK) rc = fti_file_remove(mp, err);
        fti_buf_free(&t);
        fti_free(mp);
        fti_free(tp);
        if (rc != FTI_OK) goto done;
    }
    /* the manifests' removal durable before any object goes: after a power loss no manifest
     * comes back without its objects */
    if (!o.dry_run && g.res->versions_removed) {
        char *vd = fti__st_path3(home, "store", "versions");
        rc = vd ? fti_dir_sync(vd, err) : fti_error_set(err, FTI_ERR_NOMEM, "gc: out of memory");
        fti_free(vd);
        if (rc != FTI_OK) goto done;
    }
    /* objects no kept version names (a dry run counts what the removal would free) */
    for (i = 0; i < n; i++)
        if (keep[i] && (rc = fti__st_gc_mark(&g, ids[i], &live_cap, err)) != FTI_OK) goto done;
    if (g.n_live > 1) qsort(g.live, g.n_live, sizeof *g.live, fti__st_id_cmp);
    dir = fti__st_path3(home, "store", "objects");
    if (!dir) {
        rc = fti_error_set(err, FTI_ERR_NOMEM, "gc: out of memory");
        goto done;
    }
    if (fti_path_is_dir(dir) && (rc = fti_walk(dir, fti__st_gc_obj_cb, &g, err)) != FTI_OK)
        goto done;
    for (j = 0; j < 3; j++) {
        static const char *const sub[] = {"tmp", "versions", "refs"};
        fti_free(dir);
        dir = fti__st_path3(home, "store", sub[j]);
        g.all_temp = j == 0;
        if (dir && fti_path_is_dir(dir)) fti_walk(dir, fti__st_gc_tmp_cb, &g, NULL);
    }
    if (report && g.res->objects_removed + g.res->temp_removed)
        fti_buf_printf(report, "%lu objects and %lu temp files %s, %.1f MB\n",
                       (unsigned long)g.res->objects_removed, (unsigned long)g.res->temp_removed,
                       o.dry_run ? "would go" : "removed", (double)g.res->bytes_freed / 1e6);
    if (report && report->oom) rc = fti_error_set(err, FTI_ERR_NOMEM, "gc: out of memory");
done:
    for (i = 0; i < g.n_live; i++) fti_free(g.live[i]);
    fti_free(g.live);
    fti_free(dir);
    fti_free(keep);
    fti_store_list_free(ids, n);
    if (lock_fd >= 0) close(lock_fd);
    return rc;
}

/* === datasets ================================================================================= */

struct fti_dataset {
    char id[65];
    fti_json_doc *manifest;
    fti_token_shard shards[2];
    int have_shards;
    fti_bm25 *index;
    char *tok_path;
    char tok_sha[65];
    char *docs_path;
    fti_map counts_map;
    int have_counts;
    fti_dataset_stats stats;
};

static char *fti__st_file_object(const char *home, const fti_json *files, const char *name) {
    const char *hex = fti_json_get_str(fti_json_get(files, name), "sha256", NULL);
    if (!hex || strlen(hex) != 64 || !fti__st_is_hex_id(hex, 64)) return NULL;
    return fti__st_object_path(home, hex);
}

/* fti_dataset_open (with_shards 1) and fti_dataset_open_index (0): the index is always mapped
 * and checked; the token shards only when the caller reads them, so a damaged shard refuses the
 * version to training and not to search. */
static fti_result fti__st_dataset_open(fti_dataset **out, const char *home, const char *name,
                                       int with_shards, fti_error *err) {
    fti_dataset *ds;
    fti_result rc;
    const fti_json *root, *files, *st, *cnt, *tk;
    char *p;
    if (!out || !home) return fti_error_set(err, FTI_ERR_INVALID, "dataset_open: bad arguments");
    *out = NULL;
    ds = (fti_dataset *)fti_calloc(1, sizeof *ds);
    if (!ds) return fti_error_set(err, FTI_ERR_NOMEM, "dataset_open: out of memory");
    rc = fti_store_resolve(home, name, ds->id, err);
    if (rc == FTI_OK) rc = fti__st_load_manifest(home, ds->id, &ds->manifest, err);
    if (rc != FTI_OK) {
        fti_dataset_close(ds);
        return rc;
    }
    root = fti_json_root(ds->manifest);
    files = fti_json_get(root, "files");
    ds->docs_path = fti__st_file_object(home, files, "docs");
    p = fti__st_file_object(home, files, "index");
    if (!p || !ds->docs_path) {
        rc = fti_error_set(err, FTI_ERR_FORMAT, "version %s: manifest lacks docs/index", ds->id);
        fti_free(p);
        fti_dataset_close(ds); /* after the message: it names ds->id */
        return rc;
    }
    rc = fti_bm25_open(&ds->index, p, err);
    if (rc != FTI_OK) fti_error_prefix(err, "index"); /* which object of the version */
    fti_free(p);
    if (rc == FTI_OK && with_shards && fti_json_get(files, "train")) {
        char *pt = fti__st_file_object(home, files, "train");
        char *pv = fti__st_file_object(home, files, "val");
        if (!pt || !pv)
            rc = fti_error_set(err, FTI_ERR_FORMAT, "version %s: bad shard entries", ds->id);
        if (rc == FTI_OK && (rc = fti_shard_open(&ds->shards[0], pt, 0, err)) != FTI_OK)
            fti_error_prefix(err, "train shard");
        if (rc == FTI_OK) {
            rc = fti_shard_open(&ds->shards[1], pv, 0, err);
            if (rc != FTI_OK) {
                fti_error_prefix(err, "val shard");
                fti_shard_close(&ds->shards[0]);
            } else {
                ds->have_shards = 1;
            }
        }
        fti_free(pt);
        fti_free(pv);
    }
    if (rc == FTI_OK && fti_json_get(files, "tokenizer")) {
        const char *hex = fti_json_get_str(fti_json_get(files, "tokenizer"), "sha256", "");
        ds->tok_path = fti__st_file_object(home, files, "tokenizer");
        (void)hex;
        tk = fti_json_get(root, "tokenizer");
        snprintf(ds->tok_sha, sizeof ds->tok_sha, "%s", fti_json_get_str(tk, "sha256", ""));
    }
    if (rc == FTI_OK && fti_json_get(files, "token_counts")) {
        char *pc = fti__st_file_object(home, files, "token_counts");
        if (pc && fti_map_open(&ds->counts_map, pc, NULL) == FTI_OK) {
            fti_reader r = fti_reader_make(ds->counts_map.data, ds->counts_map.len);
            const void *mg = fti_read_bytes(&r, 8);
            uint32_t ver = fti_read_u32(&r), vs = fti_read_u32(&r);
            ds->have_counts = 1;
            if (!r.err && mg && memcmp(mg, "FTIFREQ", 8) == 0 && ver == 1 &&
                ds->counts_map.len == 16 + (size_t)vs * 8 &&
                (((uintptr_t)ds->counts_map.data) & 7) == 0) {
                ds->stats.token_counts =
                    (const uint64_t *)((const unsigned char *)ds->counts_map.data + 16);
                ds->stats.vocab_size = vs;
            }
        }
        fti_free(pc);
    }
    if (rc != FTI_OK) {
        fti_dataset_close(ds);
        return rc;
    }
    cnt = fti_json_get(root, "counts");
    st = fti_json_get(root, "stats");
    ds->stats.n_docs = (uint64_t)fti_json_get_int(cnt, "documents", 0);
    ds->stats.n_train_docs = (uint64_t)fti_json_get_int(cnt, "train_documents", 0);
    ds->stats.n_val_docs = (uint64_t)fti_json_get_int(cnt, "val_documents", 0);
    ds->stats.n_rejected = (uint64_t)fti_json_get_int(cnt, "rejected", 0);
    ds->stats.n_chunks = (uint64_t)fti_json_get_int(cnt, "chunks", 0);
    ds->stats.n_train_tokens = (uint64_t)fti_json_get_int(cnt, "train_tokens", 0);
    ds->stats.n_val_tokens = (uint64_t)fti_json_get_int(cnt, "val_tokens", 0);
    ds->stats.n_chars = (uint64_t)fti_json_get_int(st, "chars", 0);
    ds->stats.doc_chars_mean = fti_json_get_num(st, "doc_chars_mean", 0);
    ds->stats.doc_tokens_mean = fti_json_get_num(st, "doc_tokens_mean", 0);
    ds->stats.doc_chars_p50 = (uint64_t)fti_json_get_int(st, "doc_chars_p50", 0);
    ds->stats.doc_chars_p90 = (uint64_t)fti_json_get_int(st, "doc_chars_p90", 0);
    ds->stats.doc_chars_max = (uint64_t)fti_json_get_int(st, "doc_chars_max", 0);
    {
        const fti_json *h = fti_json_get(st, "doc_chars_log2_hist");
        size_t i;
        for (i = 0; i < 32; i++) {
            const fti_json *v = fti_json_at(h, i);
            /* a count outside [0, 2^64) in a hand-edited manifest reads as 0, not as UB */
            ds->stats.doc_chars_log2_hist[i] =
                v && v->type == FTI_JSON_NUMBER && v->num >= 0 && v->num < 18446744073709551616.0
                    ? (uint64_t)v->num
                    : 0;
        }
    }
    *out = ds;
    return FTI_OK;
}

FTIDEF fti_result fti_dataset_open(fti_dataset **out, const char *home, const char *name,
                                   fti_error *err) {
    return fti__st_dataset_open(out, home, name, 1, err);
}

FTIDEF fti_result fti_dataset_open_index(fti_dataset **out, const char *home, const char *name,
                                         fti_error *err) {
    return fti__st_dataset_open(out, home, name, 0, err);
}

FTIDEF void fti_dataset_close(fti_dataset *ds) {
    if (!ds) return;
    if (ds->have_shards) {
        fti_shard_close(&ds->shards[0]);
        fti_shard_close(&ds->shards[1]);
    }
    fti_bm25_close(ds->index);
    if (ds->have_counts) fti_map_close(&ds->counts_map);
    fti_json_free(ds->manifest);
    fti_free(ds->tok_path);
    fti_free(ds->docs_path);
    fti_free(ds);
}

FTIDEF const char *fti_dataset_id(const fti_dataset *ds) {
    return ds ? ds->id : NULL;
}
FTIDEF const fti_json *fti_dataset_manifest(const fti_dataset *ds) {
    return ds ? fti_json_root(ds->manifest) : NULL;
}
FTIDEF const fti_token_shard *fti_dataset_shard(const fti_dataset *ds, fti_split split) {
    if (!ds || !ds->have_shards) return NULL;
    return &ds->shards[split == FTI_SPLIT_VAL ? 1 : 0];
}
FTIDEF const char *fti_dataset_tokenizer_path(const fti_dataset *ds) {
    return ds ? ds->tok_path : NULL;
}
FTIDEF const char *fti_dataset_tokenizer_sha256(const fti_dataset *ds) {
    return ds && ds->tok_path ? ds->tok_sha : NULL;
}
FTIDEF const char *fti_dataset_docs_path(const fti_dataset *ds) {
    return ds ? ds->docs_path : NULL;
}
FTIDEF const fti_bm25 *fti_dataset_index(const fti_dataset *ds) {
    return ds ? ds->index : NULL;
}
FTIDEF size_t fti_dataset_search(const fti_dataset *ds, const char *query, size_t query_len,
                                 size_t k, fti_search_hit *hits) {
    return ds ? fti_bm25_query(ds->index, query, query_len, k, hits) : 0;
}
FTIDEF const fti_dataset_stats *fti_dataset_get_stats(const fti_dataset *ds) {
    return ds ? &ds->stats : NULL;
}

#endif /* FTI_NO_STORE */
