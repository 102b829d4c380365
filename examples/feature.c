/* fti-feature: the feature pipeline — raw exports in, an immutable dataset version out.
 *
 *   build/fti-feature [--home DIR] ingest PATH... [options]   ingest, commit a version
 *   build/fti-feature [--home DIR] ingest --shard i/N PATH... then merge --all   (sharded)
 *   build/fti-feature [--home DIR] list | show [VERSION] | diff A B | verify [VERSION]
 *   build/fti-feature [--home DIR] search "query" [-k N] [--version V]
 *   build/fti-feature [--home DIR] tag NAME [VERSION]
 *
 * Example:
 *   build/fti-feature ingest ../shared/data/corpus/bierce_devils_dictionary/devils_dictionary.jsonl
 * The workspace is --home DIR, else $FTI_HOME, else ./twin. `ingest` prints the version id as the
 * last word of its output; the same inputs and options always give the same id.
 */
#define FTI_IMPLEMENTATION
#include "fti.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *f) {
    fprintf(
        f,
        "usage: fti-feature [--home DIR] COMMAND [ARGS]\n"
        "\n"
        "The feature store of an LLM twin: ingest a person's raw exports into an immutable,\n"
        "content-addressed dataset version (cleaned documents, train/val token shards,\n"
        "a tokenizer, and a BM25 index over chunks). Workspace: --home DIR, else $FTI_HOME,\n"
        "else ./twin.\n"
        "\n"
        "commands:\n"
        "  ingest PATH... [options]   ingest files and folders (.txt .md .html .json .jsonl .csv\n"
        "                             .eml .mbox); prints a summary and the version id last\n"
        "  ingest --shard i/N PATH... [options]   sharded ingest: process the i-th of N\n"
        "                             partitions of the inputs (by name) into a partial\n"
        "                             (store/partials/); prints its path last\n"
        "  merge PARTIAL... | --all [options]   merge the partials of all N shards into one\n"
        "                             version, the same as ingest of all inputs at once\n"
        "                             (give the same options); prints the version id last\n"
        "  list                       versions, oldest first (* = latest)\n"
        "  show [VERSION] [--json]    counts, validation report, dedup, authors, files\n"
        "  diff A B                   documents added (+) and removed (-) from A to B\n"
        "  verify [VERSION]           recompute every hash; exit 1 if anything is wrong\n"
        "  search \"QUERY\" [-k N] [--version V]   BM25 over the version's chunks\n"
        "  tag NAME [VERSION]         point a tag at a version (default latest)\n"
        "\n"
        "VERSION: a full id, a unique prefix (>= 4 hex digits), a tag, or latest (default).\n"
        "\n"
        "ingest options (defaults in brackets):\n"
        "  --text-fields LIST     JSON/CSV text fields, first found wins [text,content,body,\n"
        "                         full_text,message,post,plaintext,content_text,selftext,html,\n"
        "                         content_html,textContent,contents,ShareCommentary,comment,\n"
        "                         listContent]\n"
        "  --title-fields LIST    [title,subject,link_title,name]\n"
        "  --author-fields LIST   [author,authors,sender_name,user_profile,user,username,from,\n"
        "                         attributedTo,senderId]\n"
        "  --date-fields LIST     [created_at,date_unixtime,date,timestamp,timestamp_ms,time,\n"
        "                         created,createdAt,published,published_at,date_published,\n"
        "                         created_utc,creationDate,creation_timestamp,\n"
        "                         userEditedTimestampUsec,ts]\n"
        "  --require LIST         fields a document must have, e.g. title,date [none]\n"
        "  --authors LIST         keep only these authors' writing: every name, handle and\n"
        "                         address you write under, comma-separated (each matches whole\n"
        "                         words of the author, any case); documents by others (mail\n"
        "                         From:, JSON/CSV author fields, HTML and front-matter authors)\n"
        "                         are rejected as other_author. Not given: an export whose\n"
        "                         account file names its owner (Twitter, Facebook, Instagram,\n"
        "                         Telegram) keeps only the owner's messages, a mail folder next\n"
        "                         to its sent mail (Sent, Gmail's Sent label) only the senders'\n"
        "                         mail; \"*\" keeps everyone's\n"
        "  --min-chars N [12]  --max-chars N [1000000]  --min-letters F [0.5]  --max-repeat F "
        "[0.5]\n"
        "                         (a negative F disables that rule)\n"
        "  --redact all|mail|none redact e-mail addresses, phone numbers, URLs [mail]\n"
        "  --dedup F              near-duplicate Jaccard threshold; > 1 disables [0.8]\n"
        "  --val-percent N [5]  --chunk-tokens N [200]  --chunk-overlap N [32]  --vocab N [4096]\n"
        "  --tokenizer FILE       use this tokenizer instead of training one; FILE = parent\n"
        "                         keeps the tokenizer of the latest version (for fine-tuning)\n"
        "  --no-tokenizer         skip tokenizer and token shards\n"
        "  --threads N            worker threads [$FTI_THREADS or all CPUs]\n"
        "  --tag NAME             also point tag NAME at the new version\n"
        "  --quiet                print only the version id\n"
        "  --verbose              also print stage timings (wall and processor seconds)\n");
}

/* --- progress: one bar per stage on a terminal --------------------------------------------- */
typedef struct prog_state {
    fti_progress bar;
    char stage[32];
    int active;
    int quiet;
} prog_state;

static void on_progress(void *user, const fti_ingest_progress *p) {
    prog_state *s = (prog_state *)user;
    if (s->quiet) return;
    if (!s->active || strcmp(s->stage, p->stage) != 0) {
        if (s->active) fti_progress_end(&s->bar, NULL);
        snprintf(s->stage, sizeof s->stage, "%s", p->stage);
        fti_progress_begin(&s->bar, stderr, p->stage, strcmp(p->stage, "ingest") == 0 ? "B" : "",
                           p->total);
        s->active = 1;
    }
    fti_progress_update(&s->bar, p->done, NULL);
}

static void on_log(void *user, fti_log_level level, const char *msg) {
    int verbose = *(const int *)user;
    if (level >= FTI_LOG_INFO || verbose) fprintf(stderr, "fti-feature: %s\n", msg);
}

/* --- printing a manifest -------------------------------------------------------------------- */
static long long jint(const fti_json *o, const char *k) {
    return (long long)fti_json_get_int(o, k, 0);
}

static void print_summary(const fti_json *m, int verbose) {
    const fti_json *c = fti_json_get(m, "counts"), *v = fti_json_get(m, "validation");
    const fti_json *d = fti_json_get(m, "dedup"), *t = fti_json_get(m, "tokenizer");
    const fti_json *st = fti_json_get(m, "stats"), *br = fti_json_get(v, "by_reason"), *e;
    printf("version   %s\n", fti_json_get_str(m, "id", "?"));
    printf("parent    %s\n", fti_json_get_str(m, "parent", "(none)"));
    printf("created   %s\n", fti_json_get_str(m, "created", "?"));
    printf("\n  %-22s %12s\n", "", "count");
    printf("  %-22s %12lld   (%lld reused)\n", "input files", jint(c, "files"),
           jint(c, "files_reused"));
    printf("  %-22s %12lld\n", "input bytes", jint(c, "bytes"));
    printf("  %-22s %12lld\n", "records", jint(c, "records"));
    printf("  %-22s %12lld\n", "rejected", jint(c, "rejected"));
    printf("  %-22s %12lld   (exact %lld, near %lld)\n", "duplicates dropped",
           jint(c, "duplicates"), jint(d, "exact_dropped"), jint(d, "near_dropped"));
    printf("  %-22s %12lld   (train %lld, val %lld)\n", "documents kept", jint(c, "documents"),
           jint(c, "train_documents"), jint(c, "val_documents"));
    printf("  %-22s %12lld   (train %lld, val %lld)\n", "tokens",
           jint(c, "train_tokens") + jint(c, "val_tokens"), jint(c, "train_tokens"),
           jint(c, "val_tokens"));
    printf("  %-22s %12lld\n", "chunks (BM25)", jint(c, "chunks"));
    printf("  %-22s %12.0f   (p50 %lld, p90 %lld, max %lld)\n", "mean document bytes",
           fti_json_get_num(st, "doc_chars_mean", 0), jint(st, "doc_chars_p50"),
           jint(st, "doc_chars_p90"), jint(st, "doc_chars_max"));
    if (t && t->type == FTI_JSON_OBJECT)
        printf("  %-22s %12lld   (%s, sha256 %.16s...)\n", "tokenizer vocab", jint(t, "vocab_size"),
               fti_json_get(t, "trained") && fti_json_get(t, "trained")->type == FTI_JSON_TRUE
                   ? "trained"
                   : "given",
               fti_json_get_str(t, "sha256", "?"));
    printf("\nvalidation (rejections by rule):\n");
    for (e = br ? br->child : NULL; e; e = e->next)
        printf("  %-22s %12lld\n", e->key, (long long)e->i);
    /* the exports' owners (account_info): their messages are the ones kept */
    for (e = fti_json_get(v, "rejections") ? fti_json_get(v, "rejections")->child : NULL; e;
         e = e->next) {
        const char *det = fti_json_get_str(e, "detail", ""), *on = strstr(det, "owner: ");
        if (strcmp(fti_json_get_str(e, "reason", ""), "account_info") == 0 && on)
            printf("  owner of %s: %s (without --authors, the others' messages in that export "
                   "are rejected as other_author)\n",
                   fti_json_get_str(e, "source", ""), on + 7);
        else if (strcmp(fti_json_get_str(e, "reason", ""), "owner_inferred") == 0 ||
                 strcmp(fti_json_get_str(e, "reason", ""), "owner_not_inferred") == 0)
            printf("  %s\n", fti_json_get_str(e, "detail", ""));
    }
    if (verbose) {
        const fti_json *rj = fti_json_get(v, "rejections"), *g = fti_json_get(d, "groups");
        size_t i;
        if (rj && rj->len) {
            if (rj->len > 20) /* the manifest holds the first 1000 */
                printf("\nrejected (the first 20 of %lu%s):\n", (unsigned long)rj->len,
                       rj->len >= 1000 ? " or more; show --json lists 1000"
                                       : "; show --json lists them all");
            else
                printf("\nrejected (%d):\n", (int)rj->len);
            for (i = 0, e = rj->child; e && i < 20; e = e->next, i++)
                printf("  %-16s %s: %s\n", fti_json_get_str(e, "reason", ""),
                       fti_json_get_str(e, "source", ""), fti_json_get_str(e, "detail", ""));
        }
        if (g && g->len) {
            printf("\nduplicate groups (first %d of %lu):\n", g->len < 10 ? (int)g->len : 10,
                   (unsigned long)g->len);
            for (i = 0, e = g->child; e && i < 10; e = e->next, i++) {
                const fti_json *dr = fti_json_get(e, "dropped"), *x;
                printf("  kept    %s\n", fti_json_get_str(fti_json_get(e, "kept"), "source", ""));
                for (x = dr ? dr->child : NULL; x; x = x->next)
                    printf("  dropped %s (%s, jaccard %.2f)\n", fti_json_get_str(x, "source", ""),
                           fti_json_get_str(x, "match", ""), fti_json_get_num(x, "jaccard", 0));
            }
        }
        g = fti_json_get(m, "files");
        printf("\nfiles:\n");
        for (e = g ? g->child : NULL; e; e = e->next)
            printf("  %-13s %s  %lld bytes\n", e->key, fti_json_get_str(e, "sha256", ""),
                   jint(e, "bytes"));
    }
}

/* The manifest of a version (any name fti_store_resolve takes), parsed, and its id; NULL with
 * the reason in err. list, show and ingest's summary need only this: a damaged index or token
 * shard (which fti_dataset_open checks) does not hide what the version holds. */
static fti_json_doc *read_manifest(const char *home, const char *name, char id[65],
                                   fti_error *err) {
    char path[4096];
    void *txt = NULL;
    size_t len = 0;
    fti_json_doc *doc = NULL;
    fti_json_opts jo;
    memset(&jo, 0, sizeof jo);
    jo.max_string = (size_t)1 << 28;
    if (fti_store_resolve(home, name, id, err) != FTI_OK) return NULL;
    snprintf(path, sizeof path, "%s/store/versions/%s.json", home, id);
    if (fti_file_read(path, 0, &txt, &len, err) == FTI_OK &&
        fti_json_parse((const char *)txt, len, &jo, &doc, NULL, err) != FTI_OK) {
        fti_error_prefix(err, path);
        doc = NULL;
    }
    fti_free(txt);
    return doc;
}

/* The path of a version's object `name` (files.<name>.sha256), or "(none)". */
static const char *object_path(const char *home, const fti_json *m, const char *name,
                               char *buf, size_t cap) {
    const char *hex = fti_json_get_str(fti_json_get(fti_json_get(m, "files"), name), "sha256",
                                       NULL);
    if (!hex || strlen(hex) != 64) return "(none)";
    snprintf(buf, cap, "%s/store/objects/%.2s/%s", home, hex, hex);
    return buf;
}

/* --- whose writing a version holds --------------------------------------------------------- */
typedef struct author_count {
    char *name;
    size_t n;
} author_count;

static int author_cmp(const void *a, const void *b) {
    const author_count *x = (const author_count *)a, *y = (const author_count *)b;
    if (x->n != y->n) return x->n > y->n ? -1 : 1;
    return strcmp(x->name, y->name);
}

#define AUTHORS_MAX 4096 /* distinct authors counted; the rest are added to the last one's line */

/* Counts the kept documents (the docs object: one JSON object per line) by author. Fills *out
 * (most documents first, then by name; free each name and the array), *n_out, *none (documents
 * without an author) and *other (documents of authors past AUTHORS_MAX). 0, or -1 when the
 * object cannot be read (nothing to free). */
static int count_authors(const char *path, author_count **out, size_t *n_out, size_t *none,
                         size_t *other) {
    FILE *f = fopen(path, "rb");
    fti_buf line;
    author_count *a = NULL;
    size_t n = 0, cap = 0, i;
    int c, rc = 0;
    fti_json_opts jo;
    *out = NULL;
    *n_out = *none = *other = 0;
    if (!f) return -1;
    memset(&line, 0, sizeof line);
    memset(&jo, 0, sizeof jo);
    jo.max_string = (size_t)1 << 28;
    for (;;) {
        fti_json_doc *doc = NULL;
        const fti_json *au;
        line.len = 0;
        while ((c = getc(f)) != EOF && c != '\n') fti_buf_putc(&line, (char)c);
        if (line.oom) {
            rc = -1;
            break;
        }
        if (line.len == 0) {
            if (c == EOF) break;
            continue;
        }
        if (fti_json_parse(line.data, line.len, &jo, &doc, NULL, NULL) != FTI_OK) {
            rc = -1;
            break;
        }
        au = fti_json_get(fti_json_root(doc), "author");
        if (!au || au->type != FTI_JSON_STRING || au->len == 0) {
            (*none)++;
        } else {
            for (i = 0; i < n; i++)
                if (strlen(a[i].name) == au->len && memcmp(a[i].name, au->str, au->len) == 0)
                    break;
            if (i < n) {
                a[i].n++;
            } else if (n == AUTHORS_MAX) {
                (*other)++;
            } else {
                if (n == cap) {
                    size_t nc = cap ? cap * 2 : 16;
                    author_count *na = (author_count *)realloc(a, nc * sizeof *a);
                    if (!na) rc = -1;
                    else a = na, cap = nc;
                }
                if (rc == 0 && (a[n].name = fti_strndup(au->str, au->len)) == NULL) rc = -1;
                if (rc == 0) a[n++].n = 1;
            }
        }
        fti_json_free(doc);
        if (rc != 0 || c == EOF) break;
    }
    fclose(f);
    fti_buf_free(&line);
    if (rc != 0) {
        for (i = 0; i < n; i++) fti_free(a[i].name);
        free(a);
        return -1;
    }
    if (n > 1) qsort(a, n, sizeof *a, author_cmp);
    *out = a;
    *n_out = n;
    return 0;
}

/* Whose writing the version keeps: documents per author (the first `top`), and, when the
 * ingest had no --authors and more than one author is kept, how to keep only one's own (a
 * mailbox holds the correspondents' mail too, and nothing else says whose it is). Nothing when
 * no document names an author and no --authors was given. */
static void print_authors(const char *home, const fti_json *m, size_t top) {
    char buf[4096];
    const char *path = object_path(home, m, "docs", buf, sizeof buf);
    const char *filter = fti_json_get_str(fti_json_get(m, "options"), "authors", "");
    author_count *a = NULL;
    size_t n = 0, none = 0, other = 0, i;
    if (strcmp(path, "(none)") == 0 || count_authors(path, &a, &n, &none, &other) != 0) return;
    if (n == 0 && !filter[0]) return; /* nobody named (a folder of notes): nothing to say */
    printf("\nauthors (documents kept):\n");
    for (i = 0; i < n && i < top; i++) printf("  %12lu  %s\n", (unsigned long)a[i].n, a[i].name);
    if (n > top) {
        size_t rest = other;
        for (i = top; i < n; i++) rest += a[i].n;
        printf("  %12lu  (%lu more authors)\n", (unsigned long)rest,
               (unsigned long)(n - top) + (other ? 1ul : 0ul));
    }
    if (none) printf("  %12lu  (no author: kept whatever --authors says)\n", (unsigned long)none);
    if (filter[0] && strcmp(filter, "*") != 0)
        printf("  --authors %s: anyone else's documents are rejected (other_author)\n", filter);
    else if (!filter[0] && n > 1)
        printf("  all of them are kept (no --authors): if some are not you (correspondents in "
               "a mailbox),\n  ingest again with --authors \"NAME,ADDRESS,HANDLE\", every name "
               "you write under\n");
    for (i = 0; i < n; i++) fti_free(a[i].name);
    free(a);
}

/* Opens a version for search: the manifest and the index only (fti_dataset_open_index), so a
 * damaged token shard, which search never reads, does not stop it; a damaged index does. */
static int open_for_search(const char *home, const char *name, fti_dataset **ds) {
    fti_error err;
    if (fti_dataset_open_index(ds, home, name, &err) != FTI_OK) {
        fprintf(stderr, "fti-feature: %s\n", err.msg);
        return 0;
    }
    return 1;
}

/* A search hit's text as search prints it: runs of white space (the chunk's line and paragraph
 * breaks) made one space, at most `max` bytes (not cutting a UTF-8 character; "..." when cut),
 * in lines of at most about 92 columns, each indented by four spaces. */
static void print_excerpt(const char *t, size_t len, size_t max) {
    size_t i = 0, out = 0, col = 0, w;
    while (i < len && (t[i] == ' ' || t[i] == '\n' || t[i] == '\t' || t[i] == '\r')) i++;
    printf("    ");
    while (i < len && out < max) {
        /* the next word: up to white space */
        w = 0;
        while (i + w < len && t[i + w] != ' ' && t[i + w] != '\n' && t[i + w] != '\t' &&
               t[i + w] != '\r')
            w++;
        if (out + w > max) { /* cut the word at a character boundary */
            w = max - out;
            while (w > 0 && ((unsigned char)t[i + w] & 0xc0) == 0x80) w--;
            if (w == 0) break;
        }
        if (col > 0 && col + 1 + w > 92) {
            printf("\n    ");
            col = 0;
        } else if (col > 0) {
            putchar(' ');
            col++;
        }
        fwrite(t + i, 1, w, stdout);
        col += w;
        out += w + 1;
        i += w;
        while (i < len && (t[i] == ' ' || t[i] == '\n' || t[i] == '\t' || t[i] == '\r')) i++;
    }
    printf("%s\n", i < len ? "..." : "");
}

static int parse_num(const char *s, double *out) {
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end) return 0;
    *out = v;
    return 1;
}

static int cmd_ingest(const char *home, int argc, char **argv, int merge) {
    fti_ingest_opts o;
    unsigned shard = 0, n_shards = 0;
    int all = 0;
    const char **paths = (const char **)calloc((size_t)argc + 1, sizeof *paths);
    size_t n_paths = 0, reused = 0;
    static int verbose = 0;
    int i, quiet = 0;
    char id[65];
    fti_error err;
    prog_state ps;
    memset(&o, 0, sizeof o);
    memset(&ps, 0, sizeof ps);
    if (!paths) return 1;
    for (i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        double x = 0;
#define NEEDV()                                                                                    \
    do {                                                                                           \
        if (!v) {                                                                                  \
            fprintf(stderr, "fti-feature: %s needs a value\n", a);                                 \
            free(paths);                                                                           \
            return 2;                                                                              \
        }                                                                                          \
        i++;                                                                                       \
    } while (0)
/* a number in [lo, hi] (NaN, infinities and anything outside are refused: the casts below
 * would be undefined) */
#define NUMV(lo, hi)                                                                               \
    do {                                                                                           \
        NEEDV();                                                                                   \
        if (!parse_num(v, &x)) {                                                                   \
            fprintf(stderr, "fti-feature: %s: not a number: %s\n", a, v);                          \
            free(paths);                                                                           \
            return 2;                                                                              \
        }                                                                                          \
        if (!(x >= (lo) && x <= (hi))) {                                                           \
            fprintf(stderr, "fti-feature: %s: %s is out of range (%.10g to %.10g)\n", a, v,        \
                    (double)(lo), (double)(hi));                                                   \
            free(paths);                                                                           \
            return 2;                                                                              \
        }                                                                                          \
    } while (0)
        if (strcmp(a, "--text-fields") == 0) {
            NEEDV();
            o.text_fields = v;
        } else if (strcmp(a, "--title-fields") == 0) {
            NEEDV();
            o.title_fields = v;
        } else if (strcmp(a, "--date-fields") == 0) {
            NEEDV();
            o.date_fields = v;
        } else if (strcmp(a, "--author-fields") == 0) {
            NEEDV();
            o.author_fields = v;
        } else if (strcmp(a, "--authors") == 0) {
            NEEDV();
            o.authors = v;
        } else if (strcmp(a, "--require") == 0) {
            NEEDV();
            o.required = v;
        } else if (strcmp(a, "--min-chars") == 0) {
            NUMV(0, 1e9);
            o.min_chars = x < 1 ? 1 : (size_t)x;
        } else if (strcmp(a, "--max-chars") == 0) {
            NUMV(1, 1e12);
            o.max_chars = x < 1 ? 1 : (size_t)x;
        } else if (strcmp(a, "--min-letters") == 0) {
            NUMV(-1, 1);
            o.min_letter_frac = x == 0 ? 1e-9 : x;
        } else if (strcmp(a, "--max-repeat") == 0) {
            NUMV(-1, 1);
            o.max_repeat_frac = x == 0 ? 1e-9 : x;
        } else if (strcmp(a, "--dedup") == 0) {
            NUMV(0, 2);
            o.dedup_threshold = x;
        } else if (strcmp(a, "--val-percent") == 0) {
            NUMV(1, 50);
            o.val_percent = (int)x;
        } else if (strcmp(a, "--chunk-tokens") == 0) {
            NUMV(1, 1e6);
            o.chunk_tokens = (int)x;
        } else if (strcmp(a, "--chunk-overlap") == 0) {
            NUMV(0, 1e6);
            o.chunk_overlap = (int)x;
        } else if (strcmp(a, "--vocab") == 0) {
            NUMV(256, 1048576);
            o.vocab_size = (int)x;
        } else if (strcmp(a, "--threads") == 0) {
            NUMV(0, 4096);
            o.n_threads = (int)x;
        } else if (strcmp(a, "--tokenizer") == 0) {
            NEEDV();
            o.tokenizer = v;
        } else if (strcmp(a, "--no-tokenizer") == 0)
            o.no_tokenizer = 1;
        else if (!merge && strcmp(a, "--shard") == 0) {
            char slash = 0, extra = 0;
            NEEDV();
            if (sscanf(v, "%u%c%u%c", &shard, &slash, &n_shards, &extra) != 3 || slash != '/' ||
                n_shards == 0 || shard >= n_shards) {
                fprintf(stderr, "fti-feature: --shard i/N with 0 <= i < N, not %s\n", v);
                free(paths);
                return 2;
            }
        } else if (merge && strcmp(a, "--all") == 0)
            all = 1;
        else if (strcmp(a, "--tag") == 0) {
            NEEDV();
            o.tag = v;
        } else if (strcmp(a, "--quiet") == 0)
            quiet = 1;
        else if (strcmp(a, "--verbose") == 0)
            verbose = 1;
        else if (strcmp(a, "--redact") == 0) {
            NEEDV();
            if (strcmp(v, "all") == 0)
                o.redact = 1;
            else if (strcmp(v, "none") == 0)
                o.redact = -1;
            else if (strcmp(v, "mail") == 0)
                o.redact = 0;
            else {
                fprintf(stderr, "fti-feature: --redact all|mail|none\n");
                free(paths);
                return 2;
            }
        } else if (a[0] == '-' && a[1] == '-') {
            fprintf(stderr, "fti-feature: unknown option %s (try --help)\n", a);
            free(paths);
            return 2;
        } else {
            paths[n_paths++] = a;
        }
#undef NEEDV
#undef NUMV
    }
    if (n_paths == 0 && !merge) {
        fprintf(stderr, "fti-feature: ingest needs at least one PATH\n");
        free(paths);
        return 2;
    }
    if (merge && (n_paths == 0) == !all) {
        fprintf(stderr, "fti-feature: merge needs PARTIAL files or --all\n");
        free(paths);
        return 2;
    }
    ps.quiet = quiet || !isatty(2);
    o.progress = on_progress;
    o.progress_user = &ps;
    o.log = quiet && !verbose ? NULL : on_log;
    o.log_user = &verbose;
    if (n_shards) {
        /* one shard of a sharded ingest: a partial, merged later by `merge` */
        fti_buf out;
        memset(&out, 0, sizeof out);
        if (fti_store_ingest_partial(home, paths, n_paths, &o, shard, n_shards, &out, &err) !=
            FTI_OK) {
            if (ps.active) fti_progress_end(&ps.bar, NULL);
            fprintf(stderr, "fti-feature: ingest --shard %u/%u failed: %s\n", shard, n_shards,
                    err.msg);
            free(paths);
            return 1;
        }
        if (ps.active) fti_progress_end(&ps.bar, NULL);
        free(paths);
        if (!quiet) printf("partial %u/%u written: ", shard, n_shards);
        printf("%s\n", out.data ? out.data : "");
        fti_buf_free(&out);
        return 0;
    }
    if ((merge ? fti_store_merge(home, all ? NULL : paths, all ? 0 : n_paths, &o, id, &err)
               : fti_store_ingest(home, paths, n_paths, &o, id, &reused, &err)) != FTI_OK) {
        if (ps.active) fti_progress_end(&ps.bar, NULL);
        fprintf(stderr, "fti-feature: %s failed: %s\n", merge ? "merge" : "ingest", err.msg);
        free(paths);
        return 1;
    }
    if (ps.active) fti_progress_end(&ps.bar, NULL);
    free(paths);
    if (!quiet) {
        char mid[65];
        fti_json_doc *doc = read_manifest(home, id, mid, &err);
        if (doc) {
            print_summary(fti_json_root(doc), 0);
            print_authors(home, fti_json_root(doc), 10);
        } else
            fprintf(stderr, "fti-feature: %s\n", err.msg);
        fti_json_free(doc);
        printf("\nworkspace %s\n", home);
        printf("version %s\n", id);
    } else {
        printf("%s\n", id);
    }
    return 0;
}

int main(int argc, char **argv) {
    const char *home_arg = NULL, *cmd;
    char *home;
    int i = 1, rc = 0;
    fti_error err;
    {
        /* --home DIR is accepted anywhere on the line (taken out before the command runs) */
        int k, m = 1;
        for (k = 1; k < argc; k++) {
            if (strcmp(argv[k], "--home") == 0 && k + 1 < argc) {
                home_arg = argv[++k];
                continue;
            }
            argv[m++] = argv[k];
        }
        argc = m;
    }
    while (i < argc && argv[i][0] == '-') {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(argv[i], "--home") == 0 && i + 1 < argc) {
            home_arg = argv[i + 1];
            i += 2;
            continue;
        }
        fprintf(stderr, "fti-feature: unknown option %s (try --help)\n", argv[i]);
        return 2;
    }
    if (i >= argc) {
        usage(stderr);
        return 2;
    }
    for (rc = i; rc < argc; rc++)
        if (strcmp(argv[rc], "--help") == 0 || strcmp(argv[rc], "-h") == 0) {
            usage(stdout);
            return 0;
        }
    rc = 0;
    cmd = argv[i++];
    home = fti_workspace_resolve(home_arg);
    if (!home) return 1;
    if (!strcmp(cmd, "list") || !strcmp(cmd, "show") || !strcmp(cmd, "diff") ||
        !strcmp(cmd, "verify") || !strcmp(cmd, "search") || !strcmp(cmd, "tag")) {
        /* they read a store: one must be there */
        char *st = fti_path_join(home, "store");
        int there = st && fti_path_exists(st);
        fti_free(st);
        if (!there) {
            fprintf(stderr, "fti-feature: no feature store in %s (fti-feature ingest PATH makes "
                    "one; --home DIR or FTI_HOME names another)\n", home);
            fti_free(home);
            return 1;
        }
    }
    if (strcmp(cmd, "ingest") == 0) {
        rc = cmd_ingest(home, argc - i, argv + i, 0);
    } else if (strcmp(cmd, "merge") == 0) {
        rc = cmd_ingest(home, argc - i, argv + i, 1);
    } else if (strcmp(cmd, "list") == 0) {
        char **ids = NULL, latest[65];
        size_t n = 0, k;
        latest[0] = 0;
        fti_store_resolve(home, "latest", latest, NULL);
        if (fti_store_list(home, &ids, &n, &err) != FTI_OK) {
            fprintf(stderr, "fti-feature: %s\n", err.msg);
            rc = 1;
        } else {
            if (n == 0) printf("no versions in %s\n", home);
            for (k = 0; k < n; k++) {
                fti_dataset *ds = NULL;
                char id[65];
                fti_json_doc *doc = read_manifest(home, ids[k], id, &err);
                if (doc) {
                    const fti_json *m = fti_json_root(doc), *c = fti_json_get(m, "counts");
                    printf("%c %s  %s  %6lld docs %9lld tokens  parent %.12s\n",
                           strcmp(ids[k], latest) == 0 ? '*' : ' ', ids[k],
                           fti_json_get_str(m, "created", "?"), jint(c, "documents"),
                           jint(c, "train_tokens") + jint(c, "val_tokens"),
                           fti_json_get_str(m, "parent", "-"));
                    /* the objects' headers (the full hashes are verify's) */
                    if (fti_dataset_open(&ds, home, ids[k], &err) != FTI_OK)
                        printf("    damaged: %s\n", err.msg);
                    fti_dataset_close(ds);
                    fti_json_free(doc);
                } else {
                    printf("  %s  (unreadable: %s)\n", ids[k], err.msg);
                }
            }
            fti_store_list_free(ids, n);
        }
    } else if (strcmp(cmd, "show") == 0) {
        const char *name = NULL;
        int json = 0;
        fti_dataset *ds = NULL;
        fti_json_doc *doc = NULL;
        char id[65];
        for (; i < argc; i++) {
            if (strcmp(argv[i], "--json") == 0)
                json = 1;
            else
                name = argv[i];
        }
        doc = read_manifest(home, name, id, &err);
        if (!doc) {
            fprintf(stderr, "fti-feature: %s\n", err.msg);
            rc = 1;
        } else if (json) {
            /* the manifest text as stored */
            char path[4096];
            void *txt = NULL;
            size_t len = 0;
            snprintf(path, sizeof path, "%s/store/versions/%s.json", home, id);
            if (fti_file_read(path, 0, &txt, &len, NULL) == FTI_OK) fwrite(txt, 1, len, stdout);
            fti_free(txt);
        } else {
            char tb[4096], db[4096];
            const fti_json *m = fti_json_root(doc);
            print_summary(m, 1);
            print_authors(home, m, 20);
            printf("\ntokenizer %s\ndocuments %s\n",
                   object_path(home, m, "tokenizer", tb, sizeof tb),
                   object_path(home, m, "docs", db, sizeof db));
            /* what the manifest says is shown; a damaged index or shard still fails the command */
            if (fti_dataset_open(&ds, home, id, &err) != FTI_OK) {
                fprintf(stderr, "fti-feature: version %.12s is damaged: %s (verify checks every "
                        "object)\n", id, err.msg);
                rc = 1;
            }
            fti_dataset_close(ds);
        }
        fti_json_free(doc);
    } else if (strcmp(cmd, "diff") == 0) {
        fti_buf out;
        size_t add = 0, rem = 0;
        memset(&out, 0, sizeof out);
        if (argc - i != 2) {
            fprintf(stderr, "fti-feature: diff needs two versions\n");
            rc = 2;
        } else if (fti_store_diff(home, argv[i], argv[i + 1], &out, &add, &rem, &err) != FTI_OK) {
            fprintf(stderr, "fti-feature: %s\n", err.msg);
            rc = 1;
        } else {
            if (out.len) fwrite(out.data, 1, out.len, stdout);
            printf("%lu added, %lu removed\n", (unsigned long)add, (unsigned long)rem);
        }
        fti_buf_free(&out);
    } else if (strcmp(cmd, "verify") == 0) {
        fti_buf rep;
        fti_result r;
        memset(&rep, 0, sizeof rep);
        r = fti_store_verify(home, i < argc ? argv[i] : NULL, &rep, &err);
        if (rep.len) fwrite(rep.data, 1, rep.len, stdout);
        if (r != FTI_OK) {
            const char *m = err.msg; /* "verify: the store does not check out": once */
            if (!strncmp(m, "verify: ", 8)) m += 8;
            fprintf(stderr, "fti-feature: verify FAILED: %s\n", m);
            rc = 1;
        } else {
            printf("verify: ok (%s)\n", i < argc ? argv[i] : "every version and ref");
        }
        fti_buf_free(&rep);
    } else if (strcmp(cmd, "search") == 0) {
        const char *q = NULL, *ver = NULL;
        long k = 5;
        int bad = 0;
        fti_dataset *ds = NULL;
        fti_buf words; /* the query: every word that is not an option, joined */
        memset(&words, 0, sizeof words);
        for (; i < argc; i++) {
            if (strcmp(argv[i], "-k") == 0 || strcmp(argv[i], "--version") == 0) {
                char *end = NULL;
                if (i + 1 >= argc) {
                    fprintf(stderr, "fti-feature: %s needs a value\n", argv[i]);
                    bad = 1;
                } else if (argv[i][1] == 'k') {
                    k = strtol(argv[++i], &end, 10);
                    if (!*argv[i] || *end) k = 0;
                } else {
                    ver = argv[++i];
                }
            } else {
                if (words.len) fti_buf_putc(&words, ' ');
                fti_buf_puts(&words, argv[i]);
            }
        }
        q = words.len && !words.oom ? words.data : NULL;
        if (bad || !q || k <= 0 || k > 1000) {
            fprintf(stderr, "fti-feature: search \"QUERY\" [-k N (1..1000)] [--version V]\n");
            rc = 2;
        } else if (!open_for_search(home, ver, &ds)) {
            rc = 1;
        } else {
            fti_search_hit *hits = (fti_search_hit *)calloc((size_t)k, sizeof *hits);
            size_t n = hits ? fti_dataset_search(ds, q, strlen(q), (size_t)k, hits) : 0, j;
            if (n == 0) printf("no chunk matches \"%s\"\n", q);
            for (j = 0; j < n; j++) {
                const char *ti = hits[j].title && hits[j].title[0] ? hits[j].title : "(untitled)";
                printf("%2lu. score %.3f  %s  [%s]  chunk %u\n", (unsigned long)j + 1,
                       hits[j].score, ti, hits[j].source, hits[j].chunk);
                print_excerpt(hits[j].text, hits[j].text_len, 300);
                putchar('\n');
            }
            free(hits);
            fti_dataset_close(ds);
        }
        fti_buf_free(&words);
    } else if (strcmp(cmd, "tag") == 0) {
        char id[65];
        if (i >= argc) {
            fprintf(stderr, "fti-feature: tag NAME [VERSION]\n");
            rc = 2;
        } else if (fti_store_resolve(home, i + 1 < argc ? argv[i + 1] : NULL, id, &err) != FTI_OK ||
                   fti_store_tag(home, argv[i], id, &err) != FTI_OK) {
            fprintf(stderr, "fti-feature: %s\n", err.msg);
            rc = 1;
        } else {
            printf("tag %s -> %s\n", argv[i], id);
        }
    } else {
        fprintf(stderr, "fti-feature: unknown command %s (try --help)\n", cmd);
        rc = 2;
    }
    fti_free(home);
    return rc;
}
