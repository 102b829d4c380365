/* === monitor: implementation === */
#include "09_monitor.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* === monitor: metrics registry === */

typedef struct fti__series {
    char *labels;
    double value;          /* counter/gauge value; histogram sum */
    uint64_t count;        /* histogram observations */
    uint64_t buckets[FTI_METRICS_MAX_BUCKETS];
} fti__series;

typedef struct fti__metric {
    char name[96];
    char help[192];
    fti_metric_type type;
    double bounds[FTI_METRICS_MAX_BUCKETS];
    size_t n_bounds;
    fti__series *series;
    size_t n_series, cap_series;
} fti__metric;

struct fti_metrics {
    fti_mutex mu;
    fti__metric m[FTI_METRICS_MAX];
    int n;
};

FTIDEF fti_result fti_metrics_create(fti_metrics **out) {
    fti_metrics *m;
    if (!out) return FTI_ERR_INVALID;
    *out = NULL;
    m = (fti_metrics *)fti_calloc(1, sizeof *m);
    if (!m) return FTI_ERR_NOMEM;
    if (fti_mutex_init(&m->mu) != FTI_OK) {
        fti_free(m);
        return FTI_ERR_NOMEM;
    }
    *out = m;
    return FTI_OK;
}

FTIDEF void fti_metrics_free(fti_metrics *m) {
    int i;
    size_t k;
    if (!m) return;
    for (i = 0; i < m->n; i++) {
        for (k = 0; k < m->m[i].n_series; k++) fti_free(m->m[i].series[k].labels);
        fti_free(m->m[i].series);
    }
    fti_mutex_destroy(&m->mu);
    fti_free(m);
}

static int fti__metric_name_ok(const char *s) {
    size_t i;
    if (!s || !*s || strlen(s) >= 96) return 0;
    for (i = 0; s[i]; i++) {
        char c = s[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
                 (i > 0 && c >= '0' && c <= '9');
        if (!ok) return 0;
    }
    return 1;
}

FTIDEF int fti_metrics_define(fti_metrics *m, fti_metric_type type, const char *name,
                              const char *help, const double *bounds, size_t n_bounds) {
    int i, id;
    size_t k;
    if (!m || !fti__metric_name_ok(name) || type < FTI_METRIC_COUNTER ||
        type > FTI_METRIC_HISTOGRAM || n_bounds > FTI_METRICS_MAX_BUCKETS ||
        (n_bounds && !bounds))
        return FTI_ERR_INVALID;
    for (k = 1; k < n_bounds; k++)
        if (!(bounds[k] > bounds[k - 1])) return FTI_ERR_INVALID;
    fti_mutex_lock(&m->mu);
    for (i = 0; i < m->n; i++)
        if (strcmp(m->m[i].name, name) == 0) {
            fti_mutex_unlock(&m->mu);
            return i;
        }
    if (m->n >= FTI_METRICS_MAX) {
        fti_mutex_unlock(&m->mu);
        return FTI_ERR_LIMIT;
    }
    id = m->n++;
    snprintf(m->m[id].name, sizeof m->m[id].name, "%s", name);
    snprintf(m->m[id].help, sizeof m->m[id].help, "%s", help ? help : "");
    m->m[id].type = type;
    m->m[id].n_bounds = type == FTI_METRIC_HISTOGRAM ? n_bounds : 0;
    if (type == FTI_METRIC_HISTOGRAM && n_bounds)
        memcpy(m->m[id].bounds, bounds, n_bounds * sizeof(double));
    fti_mutex_unlock(&m->mu);
    return id;
}

/* The series for labels, created on first use (mu held). NULL when full or out of memory. */
static fti__series *fti__metric_series(fti__metric *mt, const char *labels) {
    size_t k;
    if (!labels) labels = "";
    for (k = 0; k < mt->n_series; k++)
        if (strcmp(mt->series[k].labels, labels) == 0) return &mt->series[k];
    if (mt->n_series >= FTI_METRICS_MAX_SERIES) return NULL;
    if (mt->n_series == mt->cap_series) {
        size_t nc = mt->cap_series ? mt->cap_series * 2 : 4;
        fti__series *ns = (fti__series *)fti_realloc(mt->series, nc * sizeof *ns);
        if (!ns) return NULL;
        mt->series = ns;
        mt->cap_series = nc;
    }
    memset(&mt->series[mt->n_series], 0, sizeof(fti__series));
    mt->series[mt->n_series].labels = fti_strdup(labels);
    if (!mt->series[mt->n_series].labels) return NULL;
    return &mt->series[mt->n_series++];
}

static void fti__metrics_update(fti_metrics *m, int id, const char *labels, double v, int op) {
    fti__series *se;
    if (!m || id < 0) return;
    fti_mutex_lock(&m->mu);
    if (id < m->n && (se = fti__metric_series(&m->m[id], labels)) != NULL) {
        fti__metric *mt = &m->m[id];
        if (op == 0) se->value += v;
        else if (op == 1) se->value = v;
        else if (mt->type == FTI_METRIC_HISTOGRAM) {
            size_t k;
            for (k = 0; k < mt->n_bounds; k++)
                if (v <= mt->bounds[k]) se->buckets[k]++;
            se->count++;
            se->value += v;
        }
    }
    fti_mutex_unlock(&m->mu);
}

FTIDEF void fti_metrics_add(fti_metrics *m, int id, const char *labels, double v) {
    fti__metrics_update(m, id, labels, v, 0);
}
FTIDEF void fti_metrics_set(fti_metrics *m, int id, const char *labels, double v) {
    fti__metrics_update(m, id, labels, v, 1);
}
FTIDEF void fti_metrics_observe(fti_metrics *m, int id, const char *labels, double v) {
    fti__metrics_update(m, id, labels, v, 2);
}

FTIDEF double fti_metrics_get(fti_metrics *m, int id, const char *labels) {
    double v = 0;
    size_t k;
    if (!m || id < 0) return 0;
    fti_mutex_lock(&m->mu);
    if (id < m->n) {
        fti__metric *mt = &m->m[id];
        for (k = 0; k < mt->n_series; k++)
            if (strcmp(mt->series[k].labels, labels ? labels : "") == 0)
                v = mt->type == FTI_METRIC_HISTOGRAM ? (double)mt->series[k].count
                                                     : mt->series[k].value;
    }
    fti_mutex_unlock(&m->mu);
    return v;
}

static void fti__prom_num(fti_buf *out, double v) {
    if (v != v) fti_buf_puts(out, "NaN");
    else if (v > 1e308) fti_buf_puts(out, "+Inf");
    else if (v < -1e308) fti_buf_puts(out, "-Inf");
    else fti_buf_printf(out, "%.10g", v);
}

FTIDEF void fti_metrics_label_escape(fti_buf *out, const char *s, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) {
        if (s[i] == '\\') fti_buf_puts(out, "\\\\");
        else if (s[i] == '"') fti_buf_puts(out, "\\\"");
        else if (s[i] == '\n') fti_buf_puts(out, "\\n");
        else fti_buf_putc(out, s[i]);
    }
}

FTIDEF void fti_metrics_render(fti_metrics *m, fti_buf *out) {
    int i;
    size_t k, b;
    if (!m || !out) return;
    fti_mutex_lock(&m->mu);
    for (i = 0; i < m->n; i++) {
        fti__metric *mt = &m->m[i];
        static const char *const tn[] = {"", "counter", "gauge", "histogram"};
        fti_buf_printf(out, "# HELP %s ", mt->name);
        for (k = 0; mt->help[k]; k++) {
            if (mt->help[k] == '\\') fti_buf_puts(out, "\\\\");
            else if (mt->help[k] == '\n') fti_buf_puts(out, "\\n");
            else fti_buf_putc(out, mt->help[k]);
        }
        fti_buf_printf(out, "\n# TYPE %s %s\n", mt->name, tn[mt->type]);
        for (k = 0; k < mt->n_series; k++) {
            fti__series *se = &mt->series[k];
            const char *sep = se->labels[0] ? "," : "";
            if (mt->type != FTI_METRIC_HISTOGRAM) {
                fti_buf_puts(out, mt->name);
                if (se->labels[0]) fti_buf_printf(out, "{%s}", se->labels);
                fti_buf_putc(out, ' ');
                fti__prom_num(out, se->value);
                fti_buf_putc(out, '\n');
                continue;
            }
            for (b = 0; b < mt->n_bounds; b++) {
                fti_buf_printf(out, "%s_bucket{%s%sle=\"", mt->name, se->labels, sep);
                fti__prom_num(out, mt->bounds[b]);
                fti_buf_printf(out, "\"} %llu\n", (unsigned long long)se->buckets[b]);
            }
            fti_buf_printf(out, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", mt->name, se->labels, sep,
                           (unsigned long long)se->count);
            fti_buf_printf(out, "%s_sum", mt->name);
            if (se->labels[0]) fti_buf_printf(out, "{%s}", se->labels);
            fti_buf_putc(out, ' ');
            fti__prom_num(out, se->value);
            fti_buf_printf(out, "\n%s_count", mt->name);
            if (se->labels[0]) fti_buf_printf(out, "{%s}", se->labels);
            fti_buf_printf(out, " %llu\n", (unsigned long long)se->count);
        }
    }
    fti_mutex_unlock(&m->mu);
}

/* === monitor: request log === */

struct fti_reqlog {
    fti_mutex mu;
    char *path;
    char *header;
    int fd;
    uint64_t size;
    uint64_t max_bytes;
    int keep;
};

/* Opens the file (appending). The header line goes at the start of a new file and, with
 * `resume` (a writer opening a log that already has lines), after them: the lines this writer
 * appends belong to its reference, not to the one of the process that wrote before it (a
 * restarted fti-serve on a newly promoted model). A file that ends inside a line (a writer that
 * crashed mid-line) first gets a newline, so the next line starts a line of its own. */
static fti_result fti__reqlog_openfile(fti_reqlog *l, int resume, fti_error *err) {
    struct stat st;
    char last = '\n';
    int rfd;
    l->fd = open(l->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (l->fd < 0)
        return fti_error_set(err, FTI_ERR_IO, "%s: cannot open: %s", l->path, strerror(errno));
    l->size = fstat(l->fd, &st) == 0 ? (uint64_t)st.st_size : 0;
    if (l->size > 0 && S_ISREG(st.st_mode) && (rfd = open(l->path, O_RDONLY | O_CLOEXEC)) >= 0) {
        if (pread(rfd, &last, 1, (off_t)(l->size - 1)) == 1 && last != '\n' &&
            write(l->fd, "\n", 1) == 1)
            l->size++;
        close(rfd);
    }
    if ((l->size == 0 || resume) && l->header) {
        size_t n = strlen(l->header);
        if (write(l->fd, l->header, n) == (ssize_t)n && write(l->fd, "\n", 1) == 1)
            l->size += n + 1;
    }
    return FTI_OK;
}

FTIDEF fti_result fti_reqlog_open(const char *path, const fti_reqlog_opts *opts,
                                  const char *header, fti_reqlog **out, fti_error *err) {
    fti_reqlog *l;
    fti_result r;
    const char *base;
    if (!out || !path || !*path) return fti_error_set(err, FTI_ERR_INVALID, "reqlog: no path");
    *out = NULL;
    l = (fti_reqlog *)fti_calloc(1, sizeof *l);
    if (!l) return fti_error_set(err, FTI_ERR_NOMEM, "out of memory");
    l->fd = -1;
    l->path = fti_strdup(path);
    l->header = header ? fti_strdup(header) : NULL;
    l->max_bytes = opts && opts->max_bytes ? opts->max_bytes : (uint64_t)16 << 20;
    l->keep = opts && opts->keep > 0 ? opts->keep : 5;
    if (!l->path || (header && !l->header) || fti_mutex_init(&l->mu) != FTI_OK) {
        fti_free(l->path);
        fti_free(l->header);
        fti_free(l);
        return fti_error_set(err, FTI_ERR_NOMEM, "out of memory");
    }
    base = fti_path_base(path);
    if (base != path) {
        char *dir = fti_strndup(path, (size_t)(base - path));
        r = dir ? fti_mkdirs(dir, err) : fti_error_set(err, FTI_ERR_NOMEM, "out of memory");
        fti_free(dir);
        if (r != FTI_OK) {
            fti_reqlog_close(l);
            return r;
        }
    }
    r = fti__reqlog_openfile(l, 1, err);
    if (r != FTI_OK) {
        fti_reqlog_close(l);
        return r;
    }
    *out = l;
    return FTI_OK;
}

static void fti__reqlog_rotate(fti_reqlog *l) {
    size_t n = strlen(l->path) + 24;
    char *a = (char *)fti_malloc(n), *b = (char *)fti_malloc(n);
    int k;
    if (a && b) {
        fsync(l->fd);
        close(l->fd);
        l->fd = -1;
        snprintf(a, n, "%s.%d", l->path, l->keep);
        remove(a);
        for (k = l->keep - 1; k >= 1; k--) {
            snprintf(a, n, "%s.%d", l->path, k);
            snprintf(b, n, "%s.%d", l->path, k + 1);
            rename(a, b);
        }
        snprintf(b, n, "%s.1", l->path);
        rename(l->path, b);
        fti__reqlog_openfile(l, 0, NULL);
    }
    fti_free(a);
    fti_free(b);
}

FTIDEF fti_result fti_reqlog_write(fti_reqlog *l, const char *line, size_t len) {
    fti_result r = FTI_OK;
    char *tmp;
    if (!l || (!line && len)) return FTI_ERR_INVALID;
    tmp = (char *)fti_malloc(len + 1);
    if (!tmp) return FTI_ERR_NOMEM;
    memcpy(tmp, line, len);
    tmp[len] = '\n';
    fti_mutex_lock(&l->mu);
    if (l->fd >= 0 && l->size > 0 && l->size + len + 1 > l->max_bytes) fti__reqlog_rotate(l);
    if (l->fd < 0) r = FTI_ERR_IO;
    else {
        size_t done = 0;
        while (done < len + 1) {
            ssize_t w = write(l->fd, tmp + done, len + 1 - done);
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) {
                r = errno == ENOSPC ? FTI_ERR_NOSPACE : FTI_ERR_IO;
                break;
            }
            done += (size_t)w;
        }
        l->size += done;
    }
    fti_mutex_unlock(&l->mu);
    fti_free(tmp);
    return r;
}

FTIDEF fti_result fti_reqlog_set_header(fti_reqlog *l, const char *header) {
    char *h;
    if (!l) return FTI_ERR_INVALID;
    h = header ? fti_strdup(header) : NULL;
    if (header && !h) return FTI_ERR_NOMEM;
    fti_mutex_lock(&l->mu);
    fti_free(l->header);
    l->header = h;
    fti_mutex_unlock(&l->mu);
    return FTI_OK;
}

FTIDEF fti_result fti_reqlog_flush(fti_reqlog *l) {
    fti_result r = FTI_OK;
    if (!l) return FTI_ERR_INVALID;
    fti_mutex_lock(&l->mu);
    if (l->fd >= 0 && fsync(l->fd) != 0 && errno != EINVAL) r = FTI_ERR_IO;
    fti_mutex_unlock(&l->mu);
    return r;
}

FTIDEF void fti_reqlog_close(fti_reqlog *l) {
    if (!l) return;
    if (l->fd >= 0) {
        fsync(l->fd);
        close(l->fd);
    }
    fti_mutex_destroy(&l->mu);
    fti_free(l->path);
    fti_free(l->header);
    fti_free(l);
}

/* === monitor: drift === */

FTIDEF int fti_drift_len_bin(size_t n) {
    int b = 0;
    if (n == 0) return 0;
    while (n > 1 && b < FTI_DRIFT_LEN_BINS - 2) {
        n >>= 1;
        b++;
    }
    return b + 1;
}

typedef struct fti__tokcount {
    uint64_t count;
    uint32_t id;
} fti__tokcount;

static int fti__tokcount_cmp(const void *a, const void *b) {
    const fti__tokcount *x = (const fti__tokcount *)a, *y = (const fti__tokcount *)b;
    if (x->count != y->count) return x->count > y->count ? -1 : 1;
    return x->id < y->id ? -1 : (x->id > y->id ? 1 : 0);
}

FTIDEF fti_result fti_drift_ref_build(const uint64_t *token_counts, size_t vocab,
                                      const uint64_t *len_hist, double byte_share, double val_ppl,
                                      fti_drift_ref **out, fti_error *err) {
    fti_drift_ref *r;
    fti__tokcount *tc;
    uint64_t total = 0, cum = 0, ltotal = 0;
    size_t i;
    if (!out) return fti_error_set(err, FTI_ERR_INVALID, "drift: no output");
    *out = NULL;
    if (!token_counts || vocab == 0 || vocab > ((size_t)1 << 31))
        return fti_error_set(err, FTI_ERR_INVALID, "drift: vocab size %lu out of range",
                             (unsigned long)vocab);
    for (i = 0; i < vocab; i++) {
        if (token_counts[i] > UINT64_MAX - total)
            return fti_error_set(err, FTI_ERR_INVALID, "drift: token counts overflow");
        total += token_counts[i];
    }
    if (total == 0) return fti_error_set(err, FTI_ERR_INVALID, "drift: reference has no tokens");
    r = (fti_drift_ref *)fti_calloc(1, sizeof *r);
    tc = (fti__tokcount *)fti_calloc(vocab, sizeof *tc);
    if (r) r->bucket_of = (unsigned char *)fti_malloc(vocab);
    if (!r || !tc || !r->bucket_of) {
        fti_drift_ref_free(r);
        fti_free(tc);
        return fti_error_set(err, FTI_ERR_NOMEM, "out of memory");
    }
    r->vocab = vocab;
    for (i = 0; i < vocab; i++) {
        tc[i].count = token_counts[i];
        tc[i].id = (uint32_t)i;
    }
    qsort(tc, vocab, sizeof *tc, fti__tokcount_cmp);
    /* equal-mass buckets, most frequent first; unseen tokens join the last (rarest) bucket */
    for (i = 0; i < vocab; i++) {
        int b = tc[i].count == 0 ? FTI_DRIFT_BUCKETS - 1
                                 : (int)((double)cum / (double)total * FTI_DRIFT_BUCKETS);
        if (b >= FTI_DRIFT_BUCKETS) b = FTI_DRIFT_BUCKETS - 1;
        r->bucket_of[tc[i].id] = (unsigned char)b;
        r->tok_share[b] += (double)tc[i].count / (double)total;
        cum += tc[i].count;
    }
    fti_free(tc);
    if (len_hist) {
        for (i = 0; i < FTI_DRIFT_LEN_BINS; i++) ltotal += len_hist[i];
        for (i = 0; i < FTI_DRIFT_LEN_BINS && ltotal; i++)
            r->len_share[i] = (double)len_hist[i] / (double)ltotal;
    }
    r->byte_share = byte_share > 0 ? byte_share : 0;
    r->ppl = val_ppl > 0 ? val_ppl : 0;
    *out = r;
    return FTI_OK;
}

FTIDEF fti_result fti_drift_ref_from_shares(const double *tok_share, const double *len_share,
                                            double byte_share, double val_ppl,
                                            fti_drift_ref **out) {
    fti_drift_ref *r;
    if (!out || !tok_share) return FTI_ERR_INVALID;
    r = (fti_drift_ref *)fti_calloc(1, sizeof *r);
    if (!r) return FTI_ERR_NOMEM;
    memcpy(r->tok_share, tok_share, sizeof r->tok_share);
    if (len_share) memcpy(r->len_share, len_share, sizeof r->len_share);
    r->byte_share = byte_share;
    r->ppl = val_ppl;
    *out = r;
    return FTI_OK;
}

FTIDEF void fti_drift_ref_free(fti_drift_ref *ref) {
    if (!ref) return;
    fti_free(ref->bucket_of);
    fti_free(ref);
}

FTIDEF void fti_drift_bucketize(const fti_drift_ref *ref, const int32_t *ids, size_t n,
                                uint32_t *counts) {
    size_t i;
    if (!ref || !counts || (!ids && n)) return;
    for (i = 0; i < n; i++) {
        int b = FTI_DRIFT_BUCKETS - 1;
        if (ref->bucket_of && ids[i] >= 0 && (size_t)ids[i] < ref->vocab)
            b = ref->bucket_of[ids[i]];
        counts[b]++;
    }
}

FTIDEF void fti_drift_ref_json(const fti_drift_ref *ref, fti_buf *out) {
    fti_jw w;
    int i;
    fti_jw_init(&w, out, 0);
    fti_jw_obj_begin(&w);
    fti_jw_key(&w, "type");
    fti_jw_str(&w, "reference");
    fti_jw_key(&w, "tok_share");
    fti_jw_arr_begin(&w);
    for (i = 0; i < FTI_DRIFT_BUCKETS; i++) fti_jw_num(&w, ref->tok_share[i]);
    fti_jw_arr_end(&w);
    fti_jw_key(&w, "len_share");
    fti_jw_arr_begin(&w);
    for (i = 0; i < FTI_DRIFT_LEN_BINS; i++) fti_jw_num(&w, ref->len_share[i]);
    fti_jw_arr_end(&w);
    fti_jw_key(&w, "byte_share");
    fti_jw_num(&w, ref->byte_share);
    fti_jw_key(&w, "ppl");
    fti_jw_num(&w, ref->ppl);
    fti_jw_obj_end(&w);
}

FTIDEF double fti_psi(const double *expected, const double *actual, size_t n, double eps) {
    double se = 0, sa = 0, psi = 0;
    size_t i;
    if (eps <= 0) eps = 1e-4;
    for (i = 0; i < n; i++) {
        se += expected[i] > 0 ? expected[i] : 0;
        sa += actual[i] > 0 ? actual[i] : 0;
    }
    if (se <= 0 || sa <= 0) return 0;
    for (i = 0; i < n; i++) {
        double e = (expected[i] > 0 ? expected[i] : 0) / se;
        double a = (actual[i] > 0 ? actual[i] : 0) / sa;
        if (e < eps) e = eps;
        if (a < eps) a = eps;
        psi += (a - e) * log(a / e);
    }
    return psi;
}

FTIDEF double fti_js_divergence(const double *p, const double *q, size_t n) {
    double sp = 0, sq = 0, js = 0;
    size_t i;
    for (i = 0; i < n; i++) {
        sp += p[i] > 0 ? p[i] : 0;
        sq += q[i] > 0 ? q[i] : 0;
    }
    if (sp <= 0 || sq <= 0) return 0;
    for (i = 0; i < n; i++) {
        double a = (p[i] > 0 ? p[i] : 0) / sp, b = (q[i] > 0 ? q[i] : 0) / sq, m = 0.5 * (a + b);
        if (a > 0) js += 0.5 * a * log2(a / m);
        if (b > 0) js += 0.5 * b * log2(b / m);
    }
    return js < 0 ? 0 : (js > 1 ? 1 : js);
}

/* fti_drift_window_add of n_prompts prompts: one of n_bytes, or len_hist's (not NULL). */
static void fti__drift_window_add_n(fti_drift_window *w, const uint32_t *bucket_counts,
                                    size_t n_tokens, size_t n_bytes, const uint32_t *len_hist,
                                    size_t n_prompts, size_t n_byte_fallback, double nll_mean) {
    int i;
    if (!w) return;
    w->n_prompts += n_prompts;
    if (len_hist)
        for (i = 0; i < FTI_DRIFT_LEN_BINS; i++) w->len[i] += len_hist[i];
    else
        w->len[fti_drift_len_bin(n_bytes)]++;
    if (bucket_counts) {
        for (i = 0; i < FTI_DRIFT_BUCKETS; i++) {
            w->tok[i] += bucket_counts[i];
            w->n_tokens += bucket_counts[i];
        }
    }
    w->n_byte_fallback += n_byte_fallback;
    if (nll_mean >= 0 && n_tokens) {
        w->nll_sum += nll_mean * (double)n_tokens;
        w->nll_tokens += n_tokens;
    }
}

FTIDEF void fti_drift_window_add(fti_drift_window *w, const uint32_t *bucket_counts,
                                 size_t n_tokens, size_t n_bytes, size_t n_byte_fallback,
                                 double nll_mean) {
    fti__drift_window_add_n(w, bucket_counts, n_tokens, n_bytes, NULL, 1, n_byte_fallback,
                            nll_mean);
}

static double fti__maxd(double a, double b) { return a > b ? a : b; }

static void fti__thr_resolve(const fti_drift_thresholds *in, fti_drift_thresholds *t) {
    fti_drift_thresholds z;
    memset(&z, 0, sizeof z);
    if (!in) in = &z;
    t->psi_warn = in->psi_warn > 0 ? in->psi_warn : 0.1;
    t->psi_alert = in->psi_alert > 0 ? in->psi_alert : 0.25;
    t->js_warn = in->js_warn > 0 ? in->js_warn : 0.05;
    t->js_alert = in->js_alert > 0 ? in->js_alert : 0.1;
    t->byte_warn = in->byte_warn > 0 ? in->byte_warn : 0.05;
    t->byte_alert = in->byte_alert > 0 ? in->byte_alert : 0.15;
    t->ppl_warn = in->ppl_warn > 0 ? in->ppl_warn : 1.5;
    t->ppl_alert = in->ppl_alert > 0 ? in->ppl_alert : 2.0;
    t->judge_length = in->judge_length;
    t->min_tokens = in->min_tokens > 0 ? in->min_tokens : 200;
}

FTIDEF fti_drift_thresholds fti_drift_thresholds_resolve(const fti_drift_thresholds *thr) {
    fti_drift_thresholds t;
    fti__thr_resolve(thr, &t);
    return t;
}

static void fti__judge(fti_drift_stats *st, const char *what, double v, double warn, double alert,
                       int may_alert) {
    int lv = v >= alert && may_alert ? 2 : (v >= warn ? 1 : 0);
    size_t n = strlen(st->reason);
    if (lv == 0) return;
    if ((int)st->level < lv) st->level = (fti_drift_level)lv;
    snprintf(st->reason + n, sizeof st->reason - n, "%s%s %.3f >= %.3f", n ? "; " : "", what, v,
             lv == 2 ? alert : warn);
}

FTIDEF void fti_drift_compute(const fti_drift_ref *ref, const fti_drift_window *w,
                              const fti_drift_thresholds *thr, fti_drift_stats *st) {
    fti_drift_thresholds t;
    double a[FTI_DRIFT_LEN_BINS];
    int i, has_len = 0;
    if (!st) return;
    memset(st, 0, sizeof *st);
    st->ppl = st->ppl_ratio = -1;
    if (!ref || !w) return;
    fti__thr_resolve(thr, &t);
    st->n_prompts = w->n_prompts;
    st->n_tokens = w->n_tokens;
    for (i = 0; i < FTI_DRIFT_BUCKETS; i++) a[i] = (double)w->tok[i];
    /* empty bins are floored at half an observation of the window (at least 1e-4), so a single
     * prompt landing in a bin the reference never saw does not read as drift by itself */
    st->psi_tokens = fti_psi(ref->tok_share, a, FTI_DRIFT_BUCKETS,
                             w->n_tokens ? fti__maxd(1e-4, 0.5 / (double)w->n_tokens) : 0);
    st->js_tokens = fti_js_divergence(ref->tok_share, a, FTI_DRIFT_BUCKETS);
    for (i = 0; i < FTI_DRIFT_LEN_BINS; i++) {
        a[i] = (double)w->len[i];
        if (ref->len_share[i] > 0) has_len = 1;
    }
    if (has_len && w->n_prompts) {
        st->psi_length = fti_psi(ref->len_share, a, FTI_DRIFT_LEN_BINS,
                                 fti__maxd(1e-4, 0.5 / (double)w->n_prompts));
        st->js_length = fti_js_divergence(ref->len_share, a, FTI_DRIFT_LEN_BINS);
    }
    st->byte_share = w->n_tokens ? (double)w->n_byte_fallback / (double)w->n_tokens : 0;
    if (w->nll_tokens) {
        st->ppl = exp(w->nll_sum / (double)w->nll_tokens);
        if (ref->ppl > 0) st->ppl_ratio = st->ppl / ref->ppl;
    }
    if (w->n_tokens < t.min_tokens) {
        snprintf(st->reason, sizeof st->reason, "window has %llu < %llu tokens: not judged",
                 (unsigned long long)w->n_tokens, (unsigned long long)t.min_tokens);
        return;
    }
    fti__judge(st, "PSI(tokens)", st->psi_tokens, t.psi_warn, t.psi_alert, 1);
    fti__judge(st, "JS(tokens)", st->js_tokens, t.js_warn, t.js_alert, 1);
    if (has_len && t.judge_length) {
        fti__judge(st, "PSI(length)", st->psi_length, t.psi_warn, t.psi_alert, 1);
        fti__judge(st, "JS(length)", st->js_length, t.js_warn, t.js_alert, 1);
    }
    fti__judge(st, "byte-fallback excess", st->byte_share - ref->byte_share, t.byte_warn,
               t.byte_alert, 1);
    if (st->ppl_ratio > 0)
        fti__judge(st, "perplexity ratio", st->ppl_ratio, t.ppl_warn, t.ppl_alert, 1);
}

/* === monitor: request records === */

FTIDEF void fti_request_record_json(const fti_request_record *rec, fti_buf *out) {
    fti_jw w;
    char ts[32];
    int i;
    fti_jw_init(&w, out, 0);
    fti_jw_obj_begin(&w);
    fti_jw_key(&w, "type");
    fti_jw_str(&w, "request");
    fti_jw_key(&w, "time");
    fti_jw_num(&w, floor(rec->time * 1000.0 + 0.5) / 1000.0);
    fti_time_iso8601(rec->time, ts);
    fti_jw_key(&w, "ts");
    fti_jw_str(&w, ts);
    fti_jw_key(&w, "endpoint");
    fti_jw_str(&w, rec->endpoint ? rec->endpoint : "");
    fti_jw_key(&w, "status");
    fti_jw_int(&w, rec->status);
    if (rec->model) {
        fti_jw_key(&w, "model");
        fti_jw_str(&w, rec->model);
    }
    fti_jw_key(&w, "stream");
    fti_jw_bool(&w, rec->stream);
    fti_jw_key(&w, "prompt_tokens");
    fti_jw_int(&w, rec->prompt_tokens);
    fti_jw_key(&w, "prompt_bytes");
    fti_jw_int(&w, rec->prompt_bytes);
    fti_jw_key(&w, "completion_tokens");
    fti_jw_int(&w, rec->completion_tokens);
    fti_jw_key(&w, "ttft_ms");
    if (rec->ttft_ms >= 0) fti_jw_num(&w, floor(rec->ttft_ms * 1000 + 0.5) / 1000);
    else fti_jw_null(&w);
    fti_jw_key(&w, "latency_ms");
    fti_jw_num(&w, floor(rec->latency_ms * 1000 + 0.5) / 1000);
    fti_jw_key(&w, "tokens_per_s");
    fti_jw_num(&w, floor(rec->tokens_per_s * 100 + 0.5) / 100);
    fti_jw_key(&w, "retrieval_hits");
    fti_jw_int(&w, rec->retrieval_hits);
    fti_jw_key(&w, "prompt_ppl");
    if (rec->prompt_ppl >= 0) fti_jw_num(&w, rec->prompt_ppl);
    else fti_jw_null(&w);
    if (rec->ppl_tokens > 0) {
        fti_jw_key(&w, "ppl_tokens");
        fti_jw_int(&w, rec->ppl_tokens);
    }
    fti_jw_key(&w, "byte_fallback");
    fti_jw_int(&w, rec->byte_fallback);
    if (rec->has_buckets) {
        fti_jw_key(&w, "tok_buckets");
        fti_jw_arr_begin(&w);
        for (i = 0; i < FTI_DRIFT_BUCKETS; i++) fti_jw_int(&w, rec->tok_buckets[i]);
        fti_jw_arr_end(&w);
    }
    if (rec->finish_reason) {
        fti_jw_key(&w, "finish_reason");
        fti_jw_str(&w, rec->finish_reason);
    }
    if (rec->n_prompts > 1) { /* a batch: its prompts, and how long each was */
        fti_jw_key(&w, "n_prompts");
        fti_jw_int(&w, rec->n_prompts);
        fti_jw_key(&w, "prompt_len_bins");
        fti_jw_arr_begin(&w);
        for (i = 0; i < FTI_DRIFT_LEN_BINS; i++) fti_jw_int(&w, rec->len_hist[i]);
        fti_jw_arr_end(&w);
    }
    fti_jw_obj_end(&w);
}

static const char *fti__rec_str(const fti_json *root, const char *key, char **sb, size_t *left) {
    const fti_json *v = fti_json_get(root, key);
    char *s;
    if (!v || v->type != FTI_JSON_STRING || v->len + 1 > *left) return NULL;
    s = *sb;
    memcpy(s, v->str, v->len);
    s[v->len] = 0;
    *sb += v->len + 1;
    *left -= v->len + 1;
    return s;
}

FTIDEF fti_result fti_request_record_parse(const char *line, size_t len, fti_request_record *rec,
                                           char *strbuf, size_t strbuf_len) {
    fti_json_doc *doc = NULL;
    const fti_json *root, *v;
    fti_result r;
    if (!line || !rec) return FTI_ERR_INVALID;
    memset(rec, 0, sizeof *rec);
    r = fti_json_parse(line, len, NULL, &doc, NULL, NULL);
    if (r != FTI_OK) return FTI_ERR_FORMAT;
    root = fti_json_root(doc);
    if (!root || root->type != FTI_JSON_OBJECT) {
        fti_json_free(doc);
        return FTI_ERR_FORMAT;
    }
    if (strcmp(fti_json_get_str(root, "type", "request"), "request") != 0) {
        fti_json_free(doc);
        return FTI_ERR_NOT_FOUND;
    }
    rec->time = fti_json_get_num(root, "time", 0);
    rec->endpoint = fti__rec_str(root, "endpoint", &strbuf, &strbuf_len);
    rec->model = fti__rec_str(root, "model", &strbuf, &strbuf_len);
    rec->finish_reason = fti__rec_str(root, "finish_reason", &strbuf, &strbuf_len);
    rec->status = (int)fti_json_get_int(root, "status", 0);
    v = fti_json_get(root, "stream");
    rec->stream = v && v->type == FTI_JSON_TRUE;
    rec->prompt_tokens = (int)fti_json_get_int(root, "prompt_tokens", 0);
    rec->prompt_bytes = (int)fti_json_get_int(root, "prompt_bytes", 0);
    rec->completion_tokens = (int)fti_json_get_int(root, "completion_tokens", 0);
    rec->ttft_ms = fti_json_get_num(root, "ttft_ms", -1);
    rec->latency_ms = fti_json_get_num(root, "latency_ms", 0);
    rec->tokens_per_s = fti_json_get_num(root, "tokens_per_s", 0);
    rec->retrieval_hits = (int)fti_json_get_int(root, "retrieval_hits", 0);
    rec->prompt_ppl = fti_json_get_num(root, "prompt_ppl", -1);
    rec->ppl_tokens = (int)fti_json_get_int(root, "ppl_tokens", 0);
    if (rec->ppl_tokens < 0) rec->ppl_tokens = 0;
    rec->byte_fallback = (int)fti_json_get_int(root, "byte_fallback", 0);
    /* figures no server writes (a hand-edited or damaged line: "latency_ms": 1e308 printed
     * 300 digits in the report's tables) make the line malformed */
    if (!(rec->time >= 0 && rec->time < 1e11) || !(rec->latency_ms >= 0 && rec->latency_ms < 1e9) ||
        !(rec->ttft_ms >= -1 && rec->ttft_ms < 1e9) ||
        !(rec->tokens_per_s >= 0 && rec->tokens_per_s < 1e9) ||
        !(rec->prompt_ppl == -1 || (rec->prompt_ppl > 0 && rec->prompt_ppl < 1e30))) {
        fti_json_free(doc);
        return FTI_ERR_FORMAT;
    }
    v = fti_json_get(root, "tok_buckets");
    if (v && v->type == FTI_JSON_ARRAY && v->len == FTI_DRIFT_BUCKETS) {
        const fti_json *e;
        int i = 0;
        rec->has_buckets = 1;
        for (e = v->child; e; e = e->next, i++) {
            if (e->type != FTI_JSON_NUMBER || !e->is_int || e->i < 0 || e->i > 0xffffffffLL) {
                rec->has_buckets = 0;
                break;
            }
            rec->tok_buckets[i] = (uint32_t)e->i;
        }
    }
    /* a batch: its prompts by length bin, which must count them all (else one prompt, as a
     * line without them) */
    v = fti_json_get(root, "prompt_len_bins");
    rec->n_prompts = (int)fti_json_get_int(root, "n_prompts", 0);
    if (rec->n_prompts > 1 && v && v->type == FTI_JSON_ARRAY && v->len == FTI_DRIFT_LEN_BINS) {
        const fti_json *e;
        int i = 0;
        int64_t sum = 0;
        for (e = v->child; e; e = e->next, i++) {
            if (e->type != FTI_JSON_NUMBER || !e->is_int || e->i < 0 || e->i > 0xffffffffLL)
                break;
            rec->len_hist[i] = (uint32_t)e->i;
            sum += e->i;
        }
        if (e || sum != rec->n_prompts) rec->n_prompts = 0;
    } else {
        rec->n_prompts = 0;
    }
    if (!rec->n_prompts) memset(rec->len_hist, 0, sizeof rec->len_hist);
    fti_json_free(doc);
    return FTI_OK;
}

static int fti__dbl_cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : (x > y ? 1 : 0);
}

FTIDEF double fti_percentile(double *x, size_t n, double p) {
    double pos, frac;
    size_t i;
    if (!x || n == 0) return 0;
    qsort(x, n, sizeof *x, fti__dbl_cmp);
    if (p <= 0) return x[0];
    if (p >= 100) return x[n - 1];
    pos = p / 100.0 * (double)(n - 1);
    i = (size_t)pos;
    frac = pos - (double)i;
    return i + 1 < n ? x[i] + frac * (x[i + 1] - x[i]) : x[i];
}

/* === monitor: the bundle === */

/* One request in the drift window: a prompt, or a batch's n_prompts (len_hist: their lengths). */
typedef struct fti__win_entry {
    uint32_t b[FTI_DRIFT_BUCKETS];
    uint32_t n_tokens;
    uint32_t n_bytes;
    uint32_t n_byte_fallback;
    uint32_t n_prompts; /* >= 1 */
    uint32_t len_hist[FTI_DRIFT_LEN_BINS];
    double nll_mean;
} fti__win_entry;

#define FTI__TPS_SLOTS 10 /* seconds of the throughput meter */

struct fti_monitor {
    fti_mutex mu;
    fti_metrics *m;
    fti_reqlog *log;
    fti_drift_ref *ref;
    fti_drift_thresholds thr;
    fti__win_entry *win;
    size_t win_cap, win_n, win_head;
    int last_level;
    uint32_t ref_epoch; /* references set so far (fti_monitor_ref_epoch) */
    fti_log_fn log_fn;
    void *log_user;
    uint64_t tps_sec[FTI__TPS_SLOTS];
    uint64_t tps_tok[FTI__TPS_SLOTS];
    char model[160];
    int id_req, id_lat, id_ttft, id_ptok, id_ctok, id_tps, id_queue, id_active, id_conns,
        id_model, id_psi, id_js, id_byte, id_ppl, id_level, id_wtok, id_reject, id_alerts;
};

static fti_drift_ref *fti__drift_ref_copy(const fti_drift_ref *src) {
    fti_drift_ref *r = (fti_drift_ref *)fti_calloc(1, sizeof *r);
    if (!r) return NULL;
    *r = *src;
    r->bucket_of = NULL;
    if (src->bucket_of) {
        r->bucket_of = (unsigned char *)fti_malloc(src->vocab);
        if (!r->bucket_of) {
            fti_free(r);
            return NULL;
        }
        memcpy(r->bucket_of, src->bucket_of, src->vocab);
    }
    return r;
}

/* The log's reference line of a monitor without a reference (a model without lineage, the echo
 * generator): the requests after it are judged against none, not the one of an earlier writer. */
static const char fti__monitor_no_ref[] = "{\"type\":\"reference\",\"none\":true}";

FTIDEF fti_result fti_monitor_create(const fti_monitor_opts *opts, fti_monitor **out,
                                     fti_error *err) {
    static const double lat_b[] = {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
    static const double ttft_b[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
    fti_monitor *mon;
    fti_result r;
    if (!out) return fti_error_set(err, FTI_ERR_INVALID, "monitor: no output");
    *out = NULL;
    mon = (fti_monitor *)fti_calloc(1, sizeof *mon);
    if (!mon) return fti_error_set(err, FTI_ERR_NOMEM, "out of memory");
    if (fti_mutex_init(&mon->mu) != FTI_OK) {
        fti_free(mon);
        return fti_error_set(err, FTI_ERR_NOMEM, "out of memory");
    }
    if (fti_metrics_create(&mon->m) != FTI_OK) { /* the mutex is made: free it too */
        fti_monitor_free(mon);
        return fti_error_set(err, FTI_ERR_NOMEM, "out of memory");
    }
    if (opts) {
        mon->thr = opts->thresholds;
        mon->log_fn = opts->log_fn;
        mon->log_user = opts->log_user;
    }
    fti__thr_resolve(&mon->thr, &mon->thr);
    mon->win_cap = opts && opts->window_prompts ? opts->window_prompts : 200;
    mon->ref_epoch = 1;
    mon->win = (fti__win_entry *)fti_calloc(mon->win_cap, sizeof *mon->win);
    if (!mon->win) {
        fti_monitor_free(mon);
        return fti_error_set(err, FTI_ERR_NOMEM, "out of memory");
    }
    if (opts && opts->ref) {
        mon->ref = fti__drift_ref_copy(opts->ref);
        if (!mon->ref) {
            fti_monitor_free(mon);
            return fti_error_set(err, FTI_ERR_NOMEM, "out of memory");
        }
    }
    if (opts && opts->log_path) {
        fti_buf hdr;
        memset(&hdr, 0, sizeof hdr);
        if (mon->ref) fti_drift_ref_json(mon->ref, &hdr);
        /* out of memory, hdr holds a prefix of the line: never write that */
        r = hdr.oom ? fti_error_set(err, FTI_ERR_NOMEM, "out of memory")
                    : fti_reqlog_open(opts->log_path, &opts->log,
                                      hdr.len ? hdr.data : fti__monitor_no_ref, &mon->log, err);
        fti_buf_free(&hdr);
        if (r != FTI_OK) {
            fti_monitor_free(mon);
            return r;
        }
    }
    mon->id_req = fti_metrics_define(mon->m, FTI_METRIC_COUNTER, "fti_requests_total",
                                     "Requests answered, by endpoint and status.", NULL, 0);
    mon->id_lat = fti_metrics_define(mon->m, FTI_METRIC_HISTOGRAM, "fti_request_duration_seconds",
                                     "Completion request latency.", lat_b,
                                     sizeof lat_b / sizeof lat_b[0]);
    mon->id_ttft = fti_metrics_define(mon->m, FTI_METRIC_HISTOGRAM,
                                      "fti_time_to_first_token_seconds", "Time to first token.",
                                      ttft_b, sizeof ttft_b / sizeof ttft_b[0]);
    mon->id_ptok = fti_metrics_define(mon->m, FTI_METRIC_COUNTER, "fti_prompt_tokens_total",
                                      "Prompt tokens processed.", NULL, 0);
    mon->id_ctok = fti_metrics_define(mon->m, FTI_METRIC_COUNTER, "fti_completion_tokens_total",
                                      "Completion tokens generated.", NULL, 0);
    mon->id_tps = fti_metrics_define(mon->m, FTI_METRIC_GAUGE, "fti_tokens_per_second",
                                     "Completion tokens per second over the last 10 s.", NULL, 0);
    mon->id_queue = fti_metrics_define(mon->m, FTI_METRIC_GAUGE, "fti_queue_depth",
                                       "Requests waiting for a batch slot.", NULL, 0);
    mon->id_active = fti_metrics_define(mon->m, FTI_METRIC_GAUGE, "fti_active_sequences",
                                        "Sequences in the running batch.", NULL, 0);
    mon->id_conns = fti_metrics_define(mon->m, FTI_METRIC_GAUGE, "fti_connections",
                                       "Open client connections.", NULL, 0);
    mon->id_model = fti_metrics_define(mon->m, FTI_METRIC_GAUGE, "fti_model_info",
                                       "The model being served (value 1).", NULL, 0);
    mon->id_reject = fti_metrics_define(mon->m, FTI_METRIC_COUNTER, "fti_rejected_total",
                                        "Requests refused with 503, by reason.", NULL, 0);
    mon->id_psi = fti_metrics_define(mon->m, FTI_METRIC_GAUGE, "fti_drift_psi",
                                     "Population stability index of recent prompts vs the "
                                     "training data.", NULL, 0);
    mon->id_js = fti_metrics_define(mon->m, FTI_METRIC_GAUGE, "fti_drift_js",
                                    "Jensen-Shannon divergence (bits) of recent prompts vs the "
                                    "training data.", NULL, 0);
    mon->id_byte = fti_metrics_define(mon->m, FTI_METRIC_GAUGE, "fti_drift_byte_fallback_share",
                                      "Share of recent prompt tokens that fell back to bytes.",
                                      NULL, 0);
    mon->id_ppl = fti_metrics_define(mon->m, FTI_METRIC_GAUGE, "fti_drift_perplexity_ratio",
                                     "Recent prompt perplexity over validation perplexity.", NULL,
                                     0);
    mon->id_level = fti_metrics_define(mon->m, FTI_METRIC_GAUGE, "fti_drift_level",
                                       "Drift level: 0 ok, 1 warn, 2 alert.", NULL, 0);
    mon->id_wtok = fti_metrics_define(mon->m, FTI_METRIC_GAUGE, "fti_drift_window_tokens",
                                      "Prompt tokens in the drift window.", NULL, 0);
    mon->id_alerts = fti_metrics_define(mon->m, FTI_METRIC_COUNTER, "fti_drift_alerts_total",
                                        "Drift level changes to warn or alert.", NULL, 0);
    *out = mon;
    return FTI_OK;
}

FTIDEF void fti_monitor_free(fti_monitor *mon) {
    if (!mon) return;
    fti_reqlog_close(mon->log);
    fti_metrics_free(mon->m);
    fti_drift_ref_free(mon->ref);
    fti_free(mon->win);
    fti_mutex_destroy(&mon->mu);
    fti_free(mon);
}

FTIDEF fti_metrics *fti_monitor_metrics(fti_monitor *mon) { return mon ? mon->m : NULL; }

FTIDEF uint32_t fti_monitor_ref_epoch(fti_monitor *mon) {
    uint32_t e;
    if (!mon) return 0;
    fti_mutex_lock(&mon->mu);
    e = mon->ref_epoch;
    fti_mutex_unlock(&mon->mu);
    return e;
}

FTIDEF fti_result fti_monitor_set_ref(fti_monitor *mon, const fti_drift_ref *ref) {
    fti_drift_ref *r = NULL, *old;
    fti_buf hdr;
    if (!mon) return FTI_ERR_INVALID;
    if (ref && !(r = fti__drift_ref_copy(ref))) return FTI_ERR_NOMEM;
    memset(&hdr, 0, sizeof hdr);
    if (r) fti_drift_ref_json(r, &hdr);
    if (hdr.oom) { /* a prefix of the line: never write it; the old reference stays */
        fti_buf_free(&hdr);
        fti_drift_ref_free(r);
        return FTI_ERR_NOMEM;
    }
    fti_mutex_lock(&mon->mu);
    old = mon->ref;
    mon->ref = r;
    mon->win_n = mon->win_head = 0;
    mon->last_level = 0;
    mon->ref_epoch++;
    fti_mutex_unlock(&mon->mu);
    if (mon->log) {
        const char *line = hdr.len ? hdr.data : fti__monitor_no_ref;
        fti_reqlog_set_header(mon->log, line);
        fti_reqlog_write(mon->log, line, strlen(line));
    }
    fti_buf_free(&hdr);
    fti_drift_ref_free(old);
    return FTI_OK;
}

FTIDEF int fti_monitor_bucketize(fti_monitor *mon, const int32_t *ids, size_t n, uint32_t *counts) {
    int ok = 0;
    if (!mon || !counts) return 0;
    fti_mutex_lock(&mon->mu);
    if (mon->ref && mon->ref->bucket_of) {
        fti_drift_bucketize(mon->ref, ids, n, counts);
        ok = 1;
    }
    fti_mutex_unlock(&mon->mu);
    return ok;
}
FTIDEF const fti_drift_ref *fti_monitor_ref(const fti_monitor *mon) {
    return mon ? mon->ref : NULL;
}

/* The window's sums (mu held): the newest requests up to win_cap prompts (a batch counts its
 * prompts; the newest request counts whole). */
static void fti__monitor_window(fti_monitor *mon, fti_drift_window *w) {
    size_t i, at;
    memset(w, 0, sizeof *w);
    for (i = 0; i < mon->win_n && (i == 0 || w->n_prompts < mon->win_cap); i++) {
        const fti__win_entry *e;
        at = (mon->win_head + mon->win_cap - 1 - i) % mon->win_cap;
        e = &mon->win[at];
        fti__drift_window_add_n(w, e->b, e->n_tokens, e->n_bytes,
                                e->n_prompts > 1 ? e->len_hist : NULL, e->n_prompts,
                                e->n_byte_fallback, e->nll_mean);
    }
}

static void fti__monitor_drift_locked(fti_monitor *mon, fti_drift_stats *st) {
    fti_drift_window w;
    fti__monitor_window(mon, &w);
    fti_drift_compute(mon->ref, &w, &mon->thr, st);
}

static void fti__label_kv(fti_buf *b, const char *k, const char *v) {
    if (b->len) fti_buf_putc(b, ',');
    fti_buf_printf(b, "%s=\"", k);
    fti_metrics_label_escape(b, v ? v : "", v ? strlen(v) : 0);
    fti_buf_putc(b, '"');
}

FTIDEF void fti_monitor_count(fti_monitor *mon, const char *endpoint, int status) {
    fti_buf l;
    char st[16];
    if (!mon) return;
    memset(&l, 0, sizeof l);
    snprintf(st, sizeof st, "%d", status);
    fti__label_kv(&l, "endpoint", endpoint);
    fti__label_kv(&l, "status", st);
    if (!l.oom) fti_metrics_add(mon->m, mon->id_req, l.data, 1);
    fti_buf_free(&l);
}

FTIDEF void fti_monitor_reject(fti_monitor *mon, const char *reason) {
    fti_buf l;
    if (!mon) return;
    memset(&l, 0, sizeof l);
    fti__label_kv(&l, "reason", reason);
    if (!l.oom) fti_metrics_add(mon->m, mon->id_reject, l.data, 1);
    fti_buf_free(&l);
}

FTIDEF size_t fti_request_record_ppl_weight(const fti_request_record *rec) {
    if (!rec) return 0;
    if (rec->ppl_tokens > 0) return (size_t)rec->ppl_tokens;
    return rec->prompt_tokens > 0 ? (size_t)rec->prompt_tokens : 0;
}

FTIDEF void fti_drift_window_add_record(fti_drift_window *w, const fti_request_record *rec) {
    if (!w || !rec) return;
    fti__drift_window_add_n(w, rec->has_buckets ? rec->tok_buckets : NULL,
                            fti_request_record_ppl_weight(rec),
                            (size_t)(rec->prompt_bytes > 0 ? rec->prompt_bytes : 0),
                            rec->n_prompts > 1 ? rec->len_hist : NULL,
                            rec->n_prompts > 1 ? (size_t)rec->n_prompts : 1,
                            (size_t)(rec->byte_fallback > 0 ? rec->byte_fallback : 0),
                            rec->prompt_ppl > 0 ? log(rec->prompt_ppl) : -1);
}

FTIDEF void fti_monitor_record(fti_monitor *mon, const fti_request_record *rec) {
    fti_buf line, l;
    fti_request_record bare; /* rec without its drift data: it started on the old model */
    int stale = 0;
    if (!mon || !rec) return;
    fti_monitor_count(mon, rec->endpoint, rec->status);
    memset(&l, 0, sizeof l);
    fti__label_kv(&l, "endpoint", rec->endpoint);
    if (rec->status == 200) {
        fti_metrics_observe(mon->m, mon->id_lat, l.data, rec->latency_ms / 1000.0);
        if (rec->ttft_ms >= 0) fti_metrics_observe(mon->m, mon->id_ttft, "", rec->ttft_ms / 1000.0);
        fti_metrics_add(mon->m, mon->id_ptok, "", rec->prompt_tokens);
        fti_metrics_add(mon->m, mon->id_ctok, "", rec->completion_tokens);
    }
    fti_buf_free(&l);
    if (rec->status == 200 && (rec->has_buckets || rec->prompt_ppl >= 0)) {
        fti__win_entry e;
        fti_drift_stats st;
        int changed = 0;
        memset(&e, 0, sizeof e);
        if (rec->has_buckets) memcpy(e.b, rec->tok_buckets, sizeof e.b);
        e.n_tokens = (uint32_t)fti_request_record_ppl_weight(rec);
        e.n_bytes = rec->prompt_bytes > 0 ? (uint32_t)rec->prompt_bytes : 0;
        e.n_byte_fallback = rec->byte_fallback > 0 ? (uint32_t)rec->byte_fallback : 0;
        e.n_prompts = rec->n_prompts > 1 ? (uint32_t)rec->n_prompts : 1;
        if (e.n_prompts > 1) memcpy(e.len_hist, rec->len_hist, sizeof e.len_hist);
        e.nll_mean = rec->prompt_ppl > 0 ? log(rec->prompt_ppl) : -1;
        fti_mutex_lock(&mon->mu);
        stale = rec->ref_epoch && rec->ref_epoch != mon->ref_epoch;
        if (!stale) {
            mon->win[mon->win_head] = e;
            mon->win_head = (mon->win_head + 1) % mon->win_cap;
            if (mon->win_n < mon->win_cap) mon->win_n++;
        }
        if (mon->ref && !stale) {
            fti__monitor_drift_locked(mon, &st);
            if ((int)st.level != mon->last_level) {
                changed = 1;
                mon->last_level = (int)st.level;
            }
        }
        fti_mutex_unlock(&mon->mu);
        if (changed) {
            static const char *const names[] = {"ok", "warn", "alert"};
            fti_buf d;
            char msg[256];
            memset(&d, 0, sizeof d);
            fti_buf_printf(&d,
                           "{\"type\":\"drift\",\"time\":%.3f,\"level\":\"%s\",\"psi_tokens\":%.4f,"
                           "\"js_tokens\":%.4f,\"reason\":",
                           rec->time, names[st.level], st.psi_tokens, st.js_tokens);
            fti_json_escape(&d, st.reason, strlen(st.reason));
            fti_buf_putc(&d, '}');
            if (mon->log && !d.oom) fti_reqlog_write(mon->log, d.data, d.len);
            fti_buf_free(&d);
            if (st.level) fti_metrics_add(mon->m, mon->id_alerts, "", 1);
            snprintf(msg, sizeof msg, "drift %s: %s", names[st.level], st.reason);
            if (mon->log_fn)
                mon->log_fn(mon->log_user, st.level == FTI_DRIFT_ALERT ? FTI_LOG_ERROR
                                           : st.level == FTI_DRIFT_WARN ? FTI_LOG_WARN
                                                                         : FTI_LOG_INFO, msg);
        }
    }
    if (stale) { /* logged without buckets and perplexity: fti-monitor report skips them too */
        bare = *rec;
        bare.has_buckets = 0;
        bare.prompt_ppl = -1;
        bare.ppl_tokens = 0;
        rec = &bare;
    }
    if (mon->log) {
        memset(&line, 0, sizeof line);
        fti_request_record_json(rec, &line);
        if (!line.oom) fti_reqlog_write(mon->log, line.data, line.len);
        fti_buf_free(&line);
    }
}

FTIDEF void fti_monitor_set_load(fti_monitor *mon, int queued, int active, int conns) {
    if (!mon) return;
    fti_metrics_set(mon->m, mon->id_queue, "", queued);
    fti_metrics_set(mon->m, mon->id_active, "", active);
    fti_metrics_set(mon->m, mon->id_conns, "", conns);
}

FTIDEF void fti_monitor_set_model(fti_monitor *mon, const char *model_id) {
    fti_buf l;
    if (!mon) return;
    memset(&l, 0, sizeof l);
    fti_mutex_lock(&mon->mu);
    if (mon->model[0]) {
        fti__label_kv(&l, "model", mon->model);
        if (!l.oom) fti_metrics_set(mon->m, mon->id_model, l.data, 0);
        l.len = 0;
    }
    snprintf(mon->model, sizeof mon->model, "%s", model_id ? model_id : "");
    fti_mutex_unlock(&mon->mu);
    fti__label_kv(&l, "model", model_id);
    if (!l.oom) fti_metrics_set(mon->m, mon->id_model, l.data, 1);
    fti_buf_free(&l);
}

FTIDEF void fti_monitor_tokens(fti_monitor *mon, uint64_t n_tokens) {
    uint64_t sec = fti_time_ns() / 1000000000u;
    size_t slot = (size_t)(sec % FTI__TPS_SLOTS);
    if (!mon) return;
    fti_mutex_lock(&mon->mu);
    if (mon->tps_sec[slot] != sec) {
        mon->tps_sec[slot] = sec;
        mon->tps_tok[slot] = 0;
    }
    mon->tps_tok[slot] += n_tokens;
    fti_mutex_unlock(&mon->mu);
}

FTIDEF void fti_monitor_drift(fti_monitor *mon, fti_drift_stats *st) {
    if (!st) return;
    memset(st, 0, sizeof *st);
    if (!mon) return;
    fti_mutex_lock(&mon->mu);
    fti__monitor_drift_locked(mon, st);
    fti_mutex_unlock(&mon->mu);
}

FTIDEF void fti_monitor_render(fti_monitor *mon, fti_buf *out) {
    fti_drift_stats st;
    uint64_t sec = fti_time_ns() / 1000000000u, tok = 0;
    size_t i;
    int have_ref;
    if (!mon || !out) return;
    fti_mutex_lock(&mon->mu);
    /* the last full seconds (the current one is still filling) */
    for (i = 0; i < FTI__TPS_SLOTS; i++)
        if (mon->tps_sec[i] + FTI__TPS_SLOTS > sec && mon->tps_sec[i] < sec) tok += mon->tps_tok[i];
    have_ref = mon->ref != NULL;
    if (have_ref) fti__monitor_drift_locked(mon, &st);
    fti_mutex_unlock(&mon->mu);
    fti_metrics_set(mon->m, mon->id_tps, "", (double)tok / (FTI__TPS_SLOTS - 1));
    if (have_ref) {
        fti_metrics_set(mon->m, mon->id_psi, "dist=\"tokens\"", st.psi_tokens);
        fti_metrics_set(mon->m, mon->id_psi, "dist=\"length\"", st.psi_length);
        fti_metrics_set(mon->m, mon->id_js, "dist=\"tokens\"", st.js_tokens);
        fti_metrics_set(mon->m, mon->id_js, "dist=\"length\"", st.js_length);
        fti_metrics_set(mon->m, mon->id_byte, "", st.byte_share);
        fti_metrics_set(mon->m, mon->id_ppl, "", st.ppl_ratio);
        fti_metrics_set(mon->m, mon->id_level, "", st.level);
        fti_metrics_set(mon->m, mon->id_wtok, "", (double)st.n_tokens);
    }
    fti_metrics_render(mon->m, out);
}

FTIDEF fti_result fti_monitor_flush(fti_monitor *mon) {
    if (!mon || !mon->log) return FTI_OK;
    return fti_reqlog_flush(mon->log);
}
