/* monitor.c: report on a twin's traffic and drift from its request log (for people, cron and CI).
 *
 *     build/fti-monitor --home twin report
 *     build/fti-monitor report --log twin/logs/requests.jsonl --window 50 --svg report.svg
 *     build/fti-monitor report --log logs/requests-a.jsonl --log logs/requests-b.jsonl
 *
 * Reads the JSONL request log that fti-serve writes (and its rotated files .1 .. .9, oldest
 * first); several logs (replicas: repeated --log, or a directory's requests*.jsonl, which is the
 * default: HOME/logs) are merged into one stream ordered by time. It prints a summary table
 * (traffic by endpoint and status, latency and time-to-first-token percentiles, tokens/s), drift
 * per window of requests (PSI and Jensen-Shannon divergence of the prompts' token buckets and
 * lengths against the reference line the server wrote from the feature store, byte-fallback
 * share, perplexity ratio) and the alerts, and writes an SVG chart of latency and drift over the
 * windows. Exit status: 0 no alert, 3 an alert threshold was crossed, 1 error, 2 usage.
 */
#define FTI_IMPLEMENTATION
#include "fti.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <dirent.h>

static void usage(FILE *f) {
    fprintf(f,
            "usage: fti-monitor [--home DIR] report [--log FILE|DIR ...] [--window N] [--since S]\n"
            "                   [--svg FILE] [--psi-warn X] [--psi-alert X] [--js-warn X]\n"
            "                   [--js-alert X] [--ppl-warn X] [--ppl-alert X] [--min-tokens N]\n"
            "                   [--judge-length]\n"
            "Summarises the request log of fti-serve and checks drift against the training data.\n"
            "  --home DIR      workspace (default $FTI_HOME, else ./twin)\n"
            "  --log FILE|DIR  a request log (plus its rotated FILE.1 ...), or a directory: its\n"
            "                  requests*.jsonl; repeat to merge the logs of several replicas\n"
            "                  (default: HOME/logs, i.e. requests.jsonl and requests-NAME.jsonl)\n"
            "  --window N      requests per drift window (default 100)\n"
            "  --since S       only requests of the last S seconds\n"
            "  --svg FILE      chart of latency and drift (default: the log's\n"
            "                  directory/report.svg; '-' = none)\n"
            "  --psi-warn X --psi-alert X --js-warn X --js-alert X\n"
            "                  thresholds of the token mix (0.1 0.25 0.05 0.1)\n"
            "  --ppl-warn X --ppl-alert X\n"
            "                  thresholds of the prompts' perplexity over the validation\n"
            "                  perplexity (1.5 2; the one that usually fires: docs/operations.md)\n"
            "                  (byte-fallback tokens: warn at +0.05, alert at +0.15 over the\n"
            "                  training data's share)\n"
            "  --min-tokens N  prompt tokens a window needs to be judged (default 200)\n"
            "  --judge-length  let prompt-length drift count toward alerts\n"
            "Exit status: 0 no alert, 3 an alert threshold crossed, 1 error, 2 usage.\n");
}

typedef struct rec_ref {
    int ref_index; /* which reference line applies (-1 none) */
    int log_index; /* which log it came from */
    size_t seq;    /* read order (ties in the merge keep it) */
    fti_request_record r;
    char strs[256];
} rec_ref;

typedef struct report {
    rec_ref **recs; /* one block each: the records' strings point into their own block */
    size_t n, cap;
    fti_drift_ref **refs;
    size_t n_refs, cap_refs;
    size_t bad_lines;
    int cur_ref;   /* the reference line in force in the log being read (-1 none) */
    int cur_log;
} report;

/* The logs to read: files, in the order given (directories expanded to their requests*.jsonl,
 * sorted by name). */
typedef struct log_list {
    char *paths[64];
    size_t n;
} log_list;

static int log_list_add(log_list *L, const char *path) {
    if (L->n == sizeof L->paths / sizeof L->paths[0]) {
        fprintf(stderr, "fti-monitor: more than %lu logs\n", (unsigned long)L->n);
        return -1;
    }
    if (!(L->paths[L->n] = fti_strdup(path))) return -1;
    L->n++;
    return 0;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Adds dir's request logs (requests*.jsonl; the rotated .jsonl.N files come with each). */
static int log_list_add_dir(log_list *L, const char *dir) {
    DIR *d = opendir(dir);
    struct dirent *de;
    size_t first = L->n;
    if (!d) {
        fprintf(stderr, "fti-monitor: cannot read the directory %s\n", dir);
        return -1;
    }
    while ((de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name);
        char *p;
        if (n < 14 || strncmp(de->d_name, "requests", 8) != 0 ||
            strcmp(de->d_name + n - 6, ".jsonl") != 0)
            continue;
        p = fti_path_join(dir, de->d_name);
        if (!p || (!fti_path_is_dir(p) && log_list_add(L, p) != 0)) {
            fti_free(p);
            closedir(d);
            return -1;
        }
        fti_free(p);
    }
    closedir(d);
    qsort(L->paths + first, L->n - first, sizeof L->paths[0], cmp_str);
    return 0;
}

/* Orders merged records by time, then by read order. */
static int cmp_rec(const void *a, const void *b) {
    const rec_ref *x = *(rec_ref *const *)a, *y = *(rec_ref *const *)b;
    if (x->r.time < y->r.time) return -1;
    if (x->r.time > y->r.time) return 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int add_ref_line(report *rp, const char *line, size_t len) {
    fti_json_doc *doc = NULL;
    const fti_json *root, *ts, *ls;
    double tok[FTI_DRIFT_BUCKETS], lsh[FTI_DRIFT_LEN_BINS];
    size_t i;
    fti_drift_ref *ref = NULL;
    if (fti_json_parse(line, len, NULL, &doc, NULL, NULL) != FTI_OK) return -1;
    root = fti_json_root(doc);
    ts = fti_json_get(root, "tok_share");
    ls = fti_json_get(root, "len_share");
    if (!ts || ts->type != FTI_JSON_ARRAY || ts->len != FTI_DRIFT_BUCKETS) {
        fti_json_free(doc);
        return -1;
    }
    for (i = 0; i < FTI_DRIFT_BUCKETS; i++) tok[i] = fti_json_at(ts, i)->num;
    for (i = 0; i < FTI_DRIFT_LEN_BINS; i++)
        lsh[i] = ls && ls->type == FTI_JSON_ARRAY && i < ls->len ? fti_json_at(ls, i)->num : 0;
    if (fti_drift_ref_from_shares(tok, lsh, fti_json_get_num(root, "byte_share", 0),
                                  fti_json_get_num(root, "ppl", 0), &ref) != FTI_OK) {
        fti_json_free(doc);
        return -1;
    }
    fti_json_free(doc);
    /* the same reference as an earlier line (replicas of one model, a restart on the same
     * model): the same index, so that windows do not break where the writer changes. The
     * shares come from the dataset version as they are; the validation perplexity is measured
     * at start-up, and another thread count may round it otherwise. */
    for (i = 0; i < rp->n_refs; i++) {
        const fti_drift_ref *o = rp->refs[i];
        size_t j;
        int same = o->byte_share == ref->byte_share &&
                   fabs(o->ppl - ref->ppl) <= 1e-6 * (fabs(o->ppl) + fabs(ref->ppl));
        for (j = 0; same && j < FTI_DRIFT_BUCKETS; j++)
            same = o->tok_share[j] == ref->tok_share[j];
        for (j = 0; same && j < FTI_DRIFT_LEN_BINS; j++)
            same = o->len_share[j] == ref->len_share[j];
        if (same) {
            fti_drift_ref_free(ref);
            rp->cur_ref = (int)i;
            return 0;
        }
    }
    if (rp->n_refs == rp->cap_refs) {
        size_t nc = rp->cap_refs ? rp->cap_refs * 2 : 4;
        fti_drift_ref **nr = (fti_drift_ref **)fti_realloc(rp->refs, nc * sizeof *nr);
        if (!nr) {
            fti_drift_ref_free(ref);
            return -1;
        }
        rp->refs = nr;
        rp->cap_refs = nc;
    }
    rp->refs[rp->n_refs++] = ref;
    rp->cur_ref = (int)rp->n_refs - 1;
    return 0;
}

static int read_log(report *rp, const char *path, double since_wall) {
    void *data = NULL;
    size_t len = 0, pos = 0;
    fti_error err;
    if (fti_file_read(path, (size_t)1 << 30, &data, &len, &err) != FTI_OK) return -1;
    while (pos < len) {
        const char *line = (const char *)data + pos;
        const char *nl = (const char *)memchr(line, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - line) : len - pos;
        rec_ref *x;
        fti_result r;
        pos += n + (nl ? 1 : 0);
        if (n == 0) continue;
        if (!nl) break; /* an incomplete last line (the server was writing it) */
        ((char *)data)[pos - 1] = '\0'; /* the newline: the line alone is a string (strstr) */
        if (rp->n == rp->cap) {
            size_t nc = rp->cap ? rp->cap * 2 : 256;
            rec_ref **nr = (rec_ref **)fti_realloc(rp->recs, nc * sizeof *nr);
            if (!nr) {
                fti_free(data);
                return -2;
            }
            rp->recs = nr;
            rp->cap = nc;
        }
        x = (rec_ref *)fti_malloc(sizeof *x);
        if (!x) {
            fti_free(data);
            return -2;
        }
        r = fti_request_record_parse(line, n, &x->r, x->strs, sizeof x->strs);
        if (r == FTI_OK && x->r.time >= since_wall) {
            x->ref_index = rp->cur_ref;
            x->log_index = rp->cur_log;
            x->seq = rp->n;
            rp->recs[rp->n++] = x;
            continue;
        }
        fti_free(x);
        if (r == FTI_OK) {
        } else if (r == FTI_ERR_NOT_FOUND) {
            if (n > 20 && strstr(line, "\"type\":\"reference\"")) {
                if (strstr(line, "tok_share")) add_ref_line(rp, line, n);
                else rp->cur_ref = -1; /* a writer without a reference: none from here on */
            }
        } else {
            rp->bad_lines++;
        }
    }
    fti_free(data);
    return 0;
}

typedef struct window_stats {
    size_t begin, end;       /* record range */
    double t0, t1;
    double lat_p50, lat_p99;
    fti_drift_stats drift;
    int has_drift;
} window_stats;

static void svg_chart(FILE *f, const window_stats *w, size_t n_w, const fti_drift_thresholds *t) {
    const int W = 720, H = 360, L = 60, R = 60, T = 30, B = 40;
    double max_lat = 1, max_psi = t->psi_alert * 1.5;
    size_t i;
    for (i = 0; i < n_w; i++) {
        if (w[i].lat_p99 > max_lat) max_lat = w[i].lat_p99;
        if (w[i].has_drift && w[i].drift.psi_tokens > max_psi) max_psi = w[i].drift.psi_tokens;
    }
    max_lat *= 1.1;
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
               "font-family=\"sans-serif\" font-size=\"11\">\n", W, H);
    fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"#fff\"/>\n");
    fprintf(f, "<text x=\"%d\" y=\"18\" font-size=\"14\">fti-monitor: latency and drift per window"
               "</text>\n", L);
    fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#333\"/>\n", L, H - B, W - R,
            H - B);
    fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#333\"/>\n", L, T, L, H - B);
    fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#333\"/>\n", W - R, T,
            W - R, H - B);
    fprintf(f, "<text x=\"4\" y=\"%d\">%.0f ms</text><text x=\"4\" y=\"%d\">0</text>\n", T + 4,
            max_lat, H - B);
    fprintf(f, "<text x=\"%d\" y=\"%d\">PSI %.2f</text>\n", W - R + 4, T + 4, max_psi);
    fprintf(f, "<text x=\"%d\" y=\"%d\">window (requests)</text>\n", W / 2 - 40, H - 10);
    /* thresholds */
    {
        double yw = H - B - (t->psi_warn / max_psi) * (H - B - T);
        double ya = H - B - (t->psi_alert / max_psi) * (H - B - T);
        fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#d90\" "
                   "stroke-dasharray=\"4 3\"/><text x=\"%d\" y=\"%.1f\" "
                   "fill=\"#d90\">warn</text>\n",
                L, yw, W - R, yw, W - R - 30, yw - 3);
        fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#c00\" "
                   "stroke-dasharray=\"4 3\"/><text x=\"%d\" y=\"%.1f\" "
                   "fill=\"#c00\">alert</text>\n",
                L, ya, W - R, ya, W - R - 30, ya - 3);
    }
    {
        static const char *const color[] = {"#1f77b4", "#7fb3e0", "#2a2"};
        static const char *const label[] = {"latency p50", "latency p99", "PSI tokens"};
        int s;
        for (s = 0; s < 3; s++) {
            fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"",
                    color[s]);
            for (i = 0; i < n_w; i++) {
                double x = L + (n_w > 1 ? (double)i / (double)(n_w - 1) : 0.5) * (W - L - R);
                double v = s == 0 ? w[i].lat_p50 / max_lat
                                  : s == 1 ? w[i].lat_p99 / max_lat
                                           : (w[i].has_drift ? w[i].drift.psi_tokens / max_psi : 0);
                if (v > 1) v = 1;
                fprintf(f, "%.1f,%.1f ", x, H - B - v * (H - B - T));
            }
            fprintf(f, "\"/>\n<text x=\"%d\" y=\"%d\" fill=\"%s\">%s</text>\n", L + 10 + s * 110,
                    T + 14, color[s], label[s]);
        }
    }
    fprintf(f, "</svg>\n");
}

int main(int argc, char **argv) {
    const char *home_arg = NULL, *svg_arg = NULL, *cmd = NULL;
    const char *log_args[64];
    size_t n_log_args = 0;
    log_list logs;
    size_t window = 100, i, k;
    double since = 0;
    fti_drift_thresholds thr;
    report rp;
    char *home = NULL, *log_path = NULL, *svg_path = NULL;
    int rc = 1, alert = 0, warn = 0, judged = 0;
    double *lat = NULL, *ttft = NULL, *tps = NULL;
    window_stats *ws = NULL;
    size_t n_w = 0;

    memset(&thr, 0, sizeof thr);
    memset(&rp, 0, sizeof rp);
    memset(&logs, 0, sizeof logs);
    rp.cur_ref = -1;
    for (i = 1; i < (size_t)argc; i++) {
        const char *a = argv[i], *v = i + 1 < (size_t)argc ? argv[i + 1] : NULL;
#define NEEDV()                                                    \
    do {                                                           \
        if (!v) {                                                  \
            fprintf(stderr, "fti-monitor: %s needs a value\n", a); \
            return 2;                                              \
        }                                                          \
        i++;                                                       \
    } while (0)
/* a number from lo to hi into x (a whole one when whole) */
#define NUMV(lo, hi, whole)                                                                   \
    do {                                                                                      \
        char *end_ = NULL;                                                                    \
        NEEDV();                                                                              \
        x = strtod(v, &end_);                                                                 \
        if (end_ == v || *end_ || !(x >= (lo) && x <= (hi)) || ((whole) && x != floor(x))) {  \
            fprintf(stderr, "fti-monitor: %s takes a %s from %.10g to %.10g, not '%s'\n", a,  \
                    (whole) ? "whole number" : "number", (double)(lo), (double)(hi), v);      \
            return 2;                                                                         \
        }                                                                                     \
    } while (0)
        double x = 0;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--home")) { NEEDV(); home_arg = v; }
        else if (!strcmp(a, "--log")) {
            NEEDV();
            if (n_log_args == sizeof log_args / sizeof log_args[0]) {
                fprintf(stderr, "fti-monitor: too many --log\n");
                return 2;
            }
            log_args[n_log_args++] = v;
        }
        else if (!strcmp(a, "--svg")) { NEEDV(); svg_arg = v; }
        else if (!strcmp(a, "--window")) { NUMV(1, 1e9, 1); window = (size_t)x; }
        else if (!strcmp(a, "--since")) { NUMV(0, 1e12, 0); since = x; }
        else if (!strcmp(a, "--psi-warn")) { NUMV(0, 100, 0); thr.psi_warn = x; }
        else if (!strcmp(a, "--psi-alert")) { NUMV(0, 100, 0); thr.psi_alert = x; }
        else if (!strcmp(a, "--js-warn")) { NUMV(0, 1, 0); thr.js_warn = x; }
        else if (!strcmp(a, "--js-alert")) { NUMV(0, 1, 0); thr.js_alert = x; }
        else if (!strcmp(a, "--ppl-warn")) { NUMV(1, 1e6, 0); thr.ppl_warn = x; }
        else if (!strcmp(a, "--ppl-alert")) { NUMV(1, 1e6, 0); thr.ppl_alert = x; }
        else if (!strcmp(a, "--min-tokens")) { NUMV(0, 1e15, 1); thr.min_tokens = (uint64_t)x; }
        else if (!strcmp(a, "--judge-length")) thr.judge_length = 1;
        else if (a[0] != '-' && !cmd) cmd = a;
        else {
            fprintf(stderr, "fti-monitor: unknown argument %s (see --help)\n", a);
            return 2;
        }
#undef NUMV
#undef NEEDV
    }
    if (!cmd || strcmp(cmd, "report") != 0) {
        usage(stderr);
        return 2;
    }
    if (window == 0) window = 100;
    home = fti_strdup(home_arg && *home_arg ? home_arg
                      : getenv("FTI_HOME") && *getenv("FTI_HOME") ? getenv("FTI_HOME") : "twin");
    if (n_log_args == 0) {
        log_path = fti_path_join(home, "logs"); /* default: every request log there */
        if (!log_path || !fti_path_is_dir(log_path)) {
            fprintf(stderr, "fti-monitor: no request logs at %s\n", log_path ? log_path : "?");
            goto out;
        }
        if (log_list_add_dir(&logs, log_path) != 0) goto out;
    }
    for (k = 0; k < n_log_args; k++) {
        if (!fti_path_exists(log_args[k])) {
            fprintf(stderr, "fti-monitor: no request log at %s\n", log_args[k]);
            goto out;
        }
        if (fti_path_is_dir(log_args[k]) ? log_list_add_dir(&logs, log_args[k])
                                         : log_list_add(&logs, log_args[k]))
            goto out;
        if (!log_path) log_path = fti_strdup(log_args[k]);
    }
    if (logs.n == 0) {
        fprintf(stderr, "fti-monitor: no request log (requests*.jsonl) in %s\n",
                log_path ? log_path : "?");
        goto out;
    }
    for (k = 0; k < logs.n; k++) {
        size_t g;
        rp.cur_ref = -1; /* a log's records use its own reference lines */
        rp.cur_log = (int)k;
        /* rotated files first (oldest = highest number), then the current one */
        for (g = 9; g >= 1; g--) {
            char p[4096];
            snprintf(p, sizeof p, "%s.%lu", logs.paths[k], (unsigned long)g);
            if (fti_path_exists(p) &&
                read_log(&rp, p, since > 0 ? fti_time_wall() - since : 0) < 0) {
                fprintf(stderr, "fti-monitor: cannot read %s\n", p);
                goto out;
            }
        }
        if (read_log(&rp, logs.paths[k], since > 0 ? fti_time_wall() - since : 0) < 0) {
            fprintf(stderr, "fti-monitor: cannot read %s\n", logs.paths[k]);
            goto out;
        }
    }
    if (logs.n > 1 && rp.n > 1) qsort(rp.recs, rp.n, sizeof rp.recs[0], cmp_rec);
    if (rp.n == 0 && rp.bad_lines) { /* garbage is not an empty log that "looks ok" */
        fprintf(stderr, "fti-monitor: %s: none of its %lu line(s) is a request or reference "
                "record: not a request log of fti-serve?\n",
                logs.n == 1 ? logs.paths[0] : "the logs", (unsigned long)rp.bad_lines);
        goto out;
    }

    /* --- summary ------------------------------------------------------------------------------ */
    {
        typedef struct ep_count {
            char endpoint[64];
            int status;
            size_t n;
        } ep_count;
        ep_count eps[64];
        size_t n_eps = 0, n_lat = 0, n_ttft = 0, n_ok = 0;
        uint64_t ptok = 0, ctok = 0;
        double t_first = 0, t_last = 0;
        lat = (double *)fti_malloc((rp.n + 1) * sizeof(double));
        ttft = (double *)fti_malloc((rp.n + 1) * sizeof(double));
        tps = (double *)fti_malloc((rp.n + 1) * sizeof(double));
        if (!lat || !ttft || !tps) goto out;
        for (i = 0; i < rp.n; i++) {
            const fti_request_record *r = &rp.recs[i]->r;
            const char *ep = r->endpoint ? r->endpoint : "?";
            for (k = 0; k < n_eps; k++)
                if (eps[k].status == r->status && strcmp(eps[k].endpoint, ep) == 0) break;
            if (k == n_eps && n_eps < 64) {
                snprintf(eps[k].endpoint, sizeof eps[k].endpoint, "%s", ep);
                eps[k].status = r->status;
                eps[k].n = 0;
                n_eps++;
            }
            if (k < n_eps) eps[k].n++;
            if (i == 0 || r->time < t_first) t_first = r->time;
            if (r->time > t_last) t_last = r->time;
            if (r->status == 200) {
                n_ok++;
                lat[n_lat++] = r->latency_ms;
                if (r->ttft_ms >= 0) ttft[n_ttft++] = r->ttft_ms;
                tps[n_ok - 1] = r->tokens_per_s;
                ptok += (uint64_t)(r->prompt_tokens > 0 ? r->prompt_tokens : 0);
                ctok += (uint64_t)(r->completion_tokens > 0 ? r->completion_tokens : 0);
            }
        }
        if (logs.n == 1) {
            printf("fti-monitor report: %s\n", logs.paths[0]);
        } else {
            printf("fti-monitor report: %lu logs merged\n", (unsigned long)logs.n);
            for (k = 0; k < logs.n; k++) {
                size_t c = 0, j;
                for (j = 0; j < rp.n; j++) c += rp.recs[j]->log_index == (int)k;
                printf("    %-48s %8lu requests\n", logs.paths[k], (unsigned long)c);
            }
        }
        printf("  %lu requests over %.1f s (%lu ok), %llu prompt tokens, %llu completion tokens",
               (unsigned long)rp.n, t_last - t_first, (unsigned long)n_ok,
               (unsigned long long)ptok, (unsigned long long)ctok);
        if (rp.bad_lines) printf(" (%lu malformed line(s) skipped)", (unsigned long)rp.bad_lines);
        printf("\n");
        printf("\n  %-28s %6s %8s\n", "endpoint", "status", "requests");
        for (k = 0; k < n_eps; k++)
            printf("  %-28s %6d %8lu\n", eps[k].endpoint, eps[k].status, (unsigned long)eps[k].n);
        {
            struct { char id[64]; size_t n; double t0, t1; } ms[16];
            size_t n_ms = 0, j;
            for (j = 0; j < rp.n; j++) {
                const fti_request_record *r = &rp.recs[j]->r;
                const char *id = r->model ? r->model : "?";
                for (k = 0; k < n_ms; k++)
                    if (strcmp(ms[k].id, id) == 0) break;
                if (k == n_ms && n_ms < 16) {
                    snprintf(ms[k].id, sizeof ms[k].id, "%s", id);
                    ms[k].n = 0;
                    ms[k].t0 = ms[k].t1 = r->time;
                    n_ms++;
                }
                if (k < n_ms) {
                    ms[k].n++;
                    if (r->time < ms[k].t0) ms[k].t0 = r->time;
                    if (r->time > ms[k].t1) ms[k].t1 = r->time;
                }
            }
            if (n_ms) printf("\n  %-28s %8s  %s\n", "model", "requests", "first .. last (UTC)");
            for (k = 0; k < n_ms; k++) {
                char a[32], b2[32];
                fti_time_iso8601(ms[k].t0, a);
                fti_time_iso8601(ms[k].t1, b2);
                printf("  %-28s %8lu  %s .. %s\n", ms[k].id, (unsigned long)ms[k].n, a, b2);
            }
        }
        printf("\n  %-22s %10s %10s %10s %10s\n", "", "p50", "p90", "p99", "max");
        if (n_lat)
            printf("  %-22s %10.1f %10.1f %10.1f %10.1f\n", "latency ms",
                   fti_percentile(lat, n_lat, 50), fti_percentile(lat, n_lat, 90),
                   fti_percentile(lat, n_lat, 99), fti_percentile(lat, n_lat, 100));
        if (n_ttft)
            printf("  %-22s %10.1f %10.1f %10.1f %10.1f\n", "time to first token ms",
                   fti_percentile(ttft, n_ttft, 50), fti_percentile(ttft, n_ttft, 90),
                   fti_percentile(ttft, n_ttft, 99), fti_percentile(ttft, n_ttft, 100));
        if (n_ok)
            printf("  %-22s %10.1f %10.1f %10.1f %10.1f\n", "tokens/s per request",
                   fti_percentile(tps, n_ok, 50), fti_percentile(tps, n_ok, 90),
                   fti_percentile(tps, n_ok, 99), fti_percentile(tps, n_ok, 100));
        if (t_last > t_first)
            printf("  aggregate: %.1f completion tokens/s (over the %.1f s from the first request "
                   "to the last, idle time included)\n", (double)ctok / (t_last - t_first),
                   t_last - t_first);
    }

    /* --- drift per window --------------------------------------------------------------------- */
    {
        fti_drift_thresholds rt;
        size_t e;
        /* a window also ends where the reference changes (a model switch, a restart on
         * another model), as the server's own window restarts: the token buckets of the
         * requests before are the old reference's, their perplexity the old model's */
        ws = (window_stats *)fti_calloc(rp.n + 1, sizeof *ws);
        if (!ws) goto out;
        memset(&rt, 0, sizeof rt);
        rt = fti_drift_thresholds_resolve(&thr);
        printf("\n  drift per window of %lu requests (thresholds warn/alert: PSI %.2f/%.2f, JS "
               "%.2f/%.2f, perplexity x %.2f/%.2f, byte fallback +%.2f/+%.2f)\n",
               (unsigned long)window, rt.psi_warn, rt.psi_alert, rt.js_warn, rt.js_alert,
               rt.ppl_warn, rt.ppl_alert, rt.byte_warn, rt.byte_alert);
        printf("  %-4s %-20s %6s %8s %8s %7s %7s %7s %7s %6s %6s  %s\n", "win", "start (UTC)",
               "reqs", "p50 ms", "p99 ms", "PSI tok", "JS tok", "PSI len", "bytes", "ppl x",
               "level", "");
        for (i = 0; i < rp.n; i = e) {
            window_stats *w = &ws[n_w++];
            fti_drift_window dw;
            size_t m = 0;
            int ref_i = rp.recs[i]->ref_index;
            char ts[32];
            static const char *const lv[] = {"ok", "warn", "ALERT"};
            e = i + 1;
            while (e < rp.n && e - i < window && rp.recs[e]->ref_index == ref_i) e++;
            memset(&dw, 0, sizeof dw);
            w->begin = i;
            w->end = e;
            w->t0 = rp.recs[i]->r.time;
            for (k = i; k < e; k++) {
                const fti_request_record *r = &rp.recs[k]->r;
                if (r->status == 200) lat[m++] = r->latency_ms;
                if (r->status == 200 && (r->has_buckets || r->prompt_ppl > 0))
                    fti_drift_window_add_record(&dw, r); /* (a batch: each of its prompts) */
            }
            w->lat_p50 = m ? fti_percentile(lat, m, 50) : 0;
            w->lat_p99 = m ? fti_percentile(lat, m, 99) : 0;
            if (ref_i >= 0 && dw.n_prompts) {
                fti_drift_compute(rp.refs[ref_i], &dw, &thr, &w->drift);
                w->has_drift = 1;
                if (w->drift.level == FTI_DRIFT_ALERT) alert = 1;
                if (w->drift.level == FTI_DRIFT_WARN) warn = 1;
                if (w->drift.level || !w->drift.reason[0]) judged++;
            }
            fti_time_iso8601(w->t0, ts);
            if (w->has_drift) {
                char ppl[32] = "-"; /* no perplexity in the window (chat requests log none) */
                if (w->drift.ppl_ratio >= 0) snprintf(ppl, sizeof ppl, "%.2f", w->drift.ppl_ratio);
                printf("  %-4lu %-20s %6lu %8.1f %8.1f %7.3f %7.3f %7.3f %7.3f %6s %6s  %s\n",
                       (unsigned long)n_w, ts, (unsigned long)(e - i), w->lat_p50, w->lat_p99,
                       w->drift.psi_tokens, w->drift.js_tokens, w->drift.psi_length,
                       w->drift.byte_share, ppl,
                       w->drift.level || !w->drift.reason[0] ? lv[w->drift.level] : "-",
                       w->drift.reason); /* a level's reasons, or why it was not judged */
            } else
                printf("  %-4lu %-20s %6lu %8.1f %8.1f %7s %7s %7s %7s %6s %6s  %s\n",
                       (unsigned long)n_w, ts, (unsigned long)(e - i), w->lat_p50, w->lat_p99, "-",
                       "-", "-", "-", "-", "-",
                       ref_i < 0 ? "no reference in the log" : "no prompt statistics");
        }
        if (svg_arg && strcmp(svg_arg, "-") == 0) {
        } else {
            FILE *f;
            if (svg_arg) svg_path = fti_strdup(svg_arg);
            else if (fti_path_is_dir(log_path)) svg_path = fti_path_join(log_path, "report.svg");
            else {
                const char *b = fti_path_base(log_path);
                char *dir = fti_strndup(log_path, (size_t)(b - log_path));
                svg_path = dir ? fti_path_join(*dir ? dir : ".", "report.svg") : NULL;
                fti_free(dir);
            }
            f = svg_path ? fopen(svg_path, "w") : NULL;
            if (f) {
                svg_chart(f, ws, n_w, &rt);
                if (fclose(f) == 0) printf("\n  chart: %s\n", svg_path);
            } else {
                fprintf(stderr, "fti-monitor: cannot write %s: %s\n",
                        svg_path ? svg_path : "the chart",
                        svg_path ? strerror(errno) : "out of memory");
            }
        }
    }
    printf("\n  result: %s%s\n",
           alert ? "ALERT (drift threshold crossed)" : warn ? "warnings" : "ok",
           n_w && !judged ? " (no window had the prompt tokens to judge drift: --min-tokens)" : "");
    rc = alert ? 3 : 0;
out:
    for (i = 0; i < rp.n_refs; i++) fti_drift_ref_free(rp.refs[i]);
    for (i = 0; i < rp.n; i++) fti_free(rp.recs[i]);
    fti_free(rp.refs);
    fti_free(rp.recs);
    fti_free(ws);
    fti_free(lat);
    fti_free(ttft);
    fti_free(tps);
    fti_free(svg_path);
    for (k = 0; k < logs.n; k++) fti_free(logs.paths[k]);
    fti_free(log_path);
    fti_free(home);
    return rc;
}
