/* === monitor: request log, metrics, drift === */
/*
 * What a deployed twin tells its operator:
 *
 *   metrics   fti_metrics, a small registry of counters, gauges and histograms (each with label
 *             sets) rendered in the Prometheus text format (version 0.0.4) for GET /metrics.
 *   log       fti_reqlog, a JSONL request log rotated by size (path, path.1, ... path.K): one line
 *             per request with time, endpoint, status, token counts, time to first token, latency,
 *             tokens/s, retrieval hits, prompt perplexity and the prompt's token-bucket counts, so
 *             drift can be recomputed offline (fti-monitor report). Each file starts with a
 *             "reference" line describing the reference distribution it is compared against.
 *   drift     fti_drift_ref holds the training data's token-frequency and length distributions
 *             (from the feature store). Tokens are grouped into FTI_DRIFT_BUCKETS buckets of equal
 *             reference mass (most frequent tokens first; unseen tokens fall in the last, rarest
 *             bucket), so a window of a few hundred prompt tokens gives a stable estimate. Against
 *             it a window of recent prompts gets the population stability index
 *             PSI = sum (a - e) ln(a / e) and the Jensen-Shannon divergence (bits, in [0, 1]) of
 *             the token buckets and of the prompt-length histogram, the share of tokens that fell
 *             back to raw bytes, and the prompt perplexity over the validation perplexity.
 *             Defaults from common practice: PSI 0.1 warn / 0.25 alert, JS 0.05 warn / 0.1 alert,
 *             byte-fallback share +0.05 / +0.15 over the reference, perplexity ratio 1.5 / 2.
 *             Prompt lengths differ from training documents by nature (a question is not an
 *             essay), and on real text length PSI moves with the section of the corpus, so length
 *             drift is computed and shown (gauges, report) but only judged when asked
 *             (judge_length).
 *   monitor   fti_monitor bundles the three for the server: one call per finished request.
 */
#ifndef FTI_MONITOR_H
#define FTI_MONITOR_H

#include "01_threads.h"

#ifdef __cplusplus
extern "C" {
#endif

/* --- metrics registry ------------------------------------------------------------------------- */

typedef enum fti_metric_type {
    FTI_METRIC_COUNTER = 1,
    FTI_METRIC_GAUGE,
    FTI_METRIC_HISTOGRAM
} fti_metric_type;

#define FTI_METRICS_MAX 64          /* metrics per registry */
#define FTI_METRICS_MAX_SERIES 256  /* label sets per metric */
#define FTI_METRICS_MAX_BUCKETS 24

typedef struct fti_metrics fti_metrics;

/* Creates an empty registry. Thread safety: every call below is safe from any thread. */
FTIDEF fti_result fti_metrics_create(fti_metrics **out);
FTIDEF void fti_metrics_free(fti_metrics *m);
/* Defines a metric; returns its id (>= 0) or a negative fti_result. name must match
 * [a-zA-Z_:][a-zA-Z0-9_:]*; histograms take ascending upper bounds (+Inf is implied).
 * Defining an existing name returns its id. */
FTIDEF int fti_metrics_define(fti_metrics *m, fti_metric_type type, const char *name,
                              const char *help, const double *bounds, size_t n_bounds);
/* labels: "" or a Prometheus label list without braces, e.g. `status="200",endpoint="/health"`
 * (build values with fti_metrics_label_escape). Series beyond FTI_METRICS_MAX_SERIES are
 * dropped. */
FTIDEF void fti_metrics_add(fti_metrics *m, int id, const char *labels, double v);
FTIDEF void fti_metrics_set(fti_metrics *m, int id, const char *labels, double v);
FTIDEF void fti_metrics_observe(fti_metrics *m, int id, const char *labels, double v);
/* Current value (counter/gauge) or observation count (histogram); 0 when absent. */
FTIDEF double fti_metrics_get(fti_metrics *m, int id, const char *labels);
/* Appends the Prometheus text exposition of every metric to out. */
FTIDEF void fti_metrics_render(fti_metrics *m, fti_buf *out);
/* Appends s[0..n) escaped for a label value (\\, \", \n). */
FTIDEF void fti_metrics_label_escape(fti_buf *out, const char *s, size_t n);

/* --- request log ------------------------------------------------------------------------------ */

typedef struct fti_reqlog fti_reqlog;
typedef struct fti_reqlog_opts {
    uint64_t max_bytes; /* rotate when the file would exceed this, 0 = 16 MiB */
    int keep;           /* rotated files kept (path.1 .. path.keep), 0 = 5 */
} fti_reqlog_opts;

/* Opens (appends to) the log at path, creating its directory. header (may be NULL) is a line
 * written at the start of every new file (the reference record), and after the lines of a log
 * that already has some (the lines this writer appends are judged against its reference). The
 * log is append-only: a crash loses at most the last line, which readers skip when incomplete
 * (the next writer ends it with a newline first). Thread safety: any thread. */
FTIDEF fti_result fti_reqlog_open(const char *path, const fti_reqlog_opts *opts,
                                  const char *header, fti_reqlog **out, fti_error *err);
/* Appends one line (a newline is added), rotating first when needed. */
FTIDEF fti_result fti_reqlog_write(fti_reqlog *log, const char *line, size_t len);
/* Replaces the header line used for files created from now on. */
FTIDEF fti_result fti_reqlog_set_header(fti_reqlog *log, const char *header);
/* fsyncs the current file. */
FTIDEF fti_result fti_reqlog_flush(fti_reqlog *log);
FTIDEF void fti_reqlog_close(fti_reqlog *log);

/* --- drift ------------------------------------------------------------------------------------ */

#define FTI_DRIFT_BUCKETS 16
#define FTI_DRIFT_LEN_BINS 16 /* prompt bytes: 0, 1, 2-3, 4-7, ..., >= 2^14 */

/* Bin of a prompt length in bytes: 0 for 0, else 1 + floor(log2 n), capped. Lengths are bytes so
 * the reference can come from the feature store's document-length histogram (its bucket i,
 * [2^i, 2^(i+1)) bytes, is bin i + 1 here). */
FTIDEF int fti_drift_len_bin(size_t n_bytes);

/* The reference distribution. */
typedef struct fti_drift_ref {
    size_t vocab;
    unsigned char *bucket_of;                 /* (V) token id -> bucket */
    double tok_share[FTI_DRIFT_BUCKETS];      /* reference share of tokens per bucket */
    double len_share[FTI_DRIFT_LEN_BINS];     /* reference share of prompts per length bin */
    double byte_share;                        /* reference share of byte-fallback tokens */
    double ppl;                               /* validation perplexity, <= 0 unknown */
} fti_drift_ref;

/* Builds a reference from token counts (V entries) and a length histogram (FTI_DRIFT_LEN_BINS
 * counts of documents/prompts per fti_drift_len_bin; NULL = no length reference). byte_share and
 * val_ppl may be 0 (unknown). Thread safety: any thread; the result is read-only. */
FTIDEF fti_result fti_drift_ref_build(const uint64_t *token_counts, size_t vocab,
                                      const uint64_t *len_hist, double byte_share, double val_ppl,
                                      fti_drift_ref **out, fti_error *err);
/* A reference from the shares alone (as read back from a log's reference line): bucket_of is NULL,
 * so it can score bucket counts but not token ids. */
FTIDEF fti_result fti_drift_ref_from_shares(const double *tok_share, const double *len_share,
                                            double byte_share, double val_ppl,
                                            fti_drift_ref **out);
FTIDEF void fti_drift_ref_free(fti_drift_ref *ref);
/* Adds the bucket of each id to counts[FTI_DRIFT_BUCKETS] (ids outside the vocab count as
 * rarest). */
FTIDEF void fti_drift_bucketize(const fti_drift_ref *ref, const int32_t *ids, size_t n,
                                uint32_t *counts);
/* Appends the reference as one JSON object line {"type":"reference",...}. */
FTIDEF void fti_drift_ref_json(const fti_drift_ref *ref, fti_buf *out);

/* PSI of actual vs expected shares over n bins, with eps smoothing of empty bins (eps 0 = 1e-4). */
FTIDEF double fti_psi(const double *expected, const double *actual, size_t n, double eps);
/* Jensen-Shannon divergence in bits of two distributions (each normalised here), in [0, 1]. */
FTIDEF double fti_js_divergence(const double *p, const double *q, size_t n);

/* A window of prompts: sums that fti_drift_compute compares with the reference. */
typedef struct fti_drift_window {
    uint64_t tok[FTI_DRIFT_BUCKETS];
    uint64_t len[FTI_DRIFT_LEN_BINS];
    uint64_t n_prompts;
    uint64_t n_tokens;
    uint64_t n_byte_fallback;
    double nll_sum;       /* sum over prompts of nll_mean * n_tokens */
    uint64_t nll_tokens;  /* tokens with a known nll */
} fti_drift_window;
/* Adds one prompt of n_tokens tokens and n_bytes bytes (bucket_counts may be NULL; nll_mean < 0 =
 * unknown). */
FTIDEF void fti_drift_window_add(fti_drift_window *w, const uint32_t *bucket_counts,
                                 size_t n_tokens, size_t n_bytes, size_t n_byte_fallback,
                                 double nll_mean);

typedef struct fti_drift_thresholds {
    double psi_warn, psi_alert;     /* 0 = 0.1, 0.25 */
    double js_warn, js_alert;       /* 0 = 0.05, 0.1 */
    double byte_warn, byte_alert;   /* excess share over the reference, 0 = 0.05, 0.15 */
    double ppl_warn, ppl_alert;     /* ratio, 0 = 1.5, 2.0 */
    int judge_length;               /* 1: length drift counts toward the level (else shown) */
    uint64_t min_tokens;            /* below this the window is not judged, 0 = 200 */
} fti_drift_thresholds;

/* The thresholds with every zero field replaced by its default. */
FTIDEF fti_drift_thresholds fti_drift_thresholds_resolve(const fti_drift_thresholds *thr);

typedef enum fti_drift_level {
    FTI_DRIFT_OK = 0,
    FTI_DRIFT_WARN = 1,
    FTI_DRIFT_ALERT = 2
} fti_drift_level;

typedef struct fti_drift_stats {
    double psi_tokens, js_tokens;
    double psi_length, js_length;
    double byte_share;
    double ppl, ppl_ratio;       /* < 0 when unknown */
    uint64_t n_prompts, n_tokens;
    fti_drift_level level;
    char reason[160];            /* which measures crossed which thresholds */
} fti_drift_stats;

FTIDEF void fti_drift_compute(const fti_drift_ref *ref, const fti_drift_window *w,
                              const fti_drift_thresholds *thr, fti_drift_stats *st);

/* --- request records -------------------------------------------------------------------------- */

typedef struct fti_request_record {
    double time;               /* wall seconds at the end of the request */
    const char *endpoint;
    int status;
    const char *model;
    int stream;
    int prompt_tokens;
    int prompt_bytes;
    int completion_tokens;
    double ttft_ms;            /* < 0 unknown */
    double latency_ms;
    double tokens_per_s;
    int retrieval_hits;
    double prompt_ppl;         /* < 0 unknown */
    int ppl_tokens;            /* the tokens prompt_ppl is over (its weight in a window's
                                  perplexity); 0: prompt_tokens */
    uint32_t ref_epoch;        /* fti_monitor_ref_epoch when the request started (0: unknown);
                                  drift ignores a request that started under an earlier reference
                                  (not logged) */
    int byte_fallback;
    int has_buckets;
    uint32_t tok_buckets[FTI_DRIFT_BUCKETS];
    const char *finish_reason; /* may be NULL */
    /* A batch of prompts (OpenAI's "prompt" as an array) is one request of n_prompts (> 1;
     * 0 or 1: one prompt) whose prompt_tokens, prompt_bytes, retrieval_hits, byte_fallback
     * and tok_buckets sum over its prompts, prompt_ppl is their perplexity (each prompt's
     * weighted by its ppl_tokens, which sum), and len_hist counts its prompts per
     * fti_drift_len_bin of their bytes: drift sees every prompt. Logged as "n_prompts" and
     * "prompt_len_bins"; a line without them (older logs) is one prompt. */
    int n_prompts;
    uint32_t len_hist[FTI_DRIFT_LEN_BINS];
} fti_request_record;

/* Adds rec's prompts to a drift window: one prompt of prompt_bytes, or a batch's n_prompts by
 * len_hist; tok_buckets if has_buckets; the perplexity if prompt_ppl > 0, weighted by
 * fti_request_record_ppl_weight. The caller picks the records (e.g. status 200). */
FTIDEF void fti_drift_window_add_record(fti_drift_window *w, const fti_request_record *rec);

/* The tokens rec's prompt_ppl is over: ppl_tokens, else prompt_tokens (0 if neither is
 * positive); a window's perplexity weights each prompt's by it. */
FTIDEF size_t fti_request_record_ppl_weight(const fti_request_record *rec);
/* Appends rec as one JSON object (no newline). */
FTIDEF void fti_request_record_json(const fti_request_record *rec, fti_buf *out);
/* Parses one log line. Returns FTI_OK for a request line (strings are copied into strbuf, which
 * must hold len bytes), FTI_ERR_NOT_FOUND for another kind of line (e.g. the reference), else an
 * error (FTI_ERR_FORMAT also for figures out of any server's range: a time before 1970 or past
 * year 5000, latencies or rates of 1e9 or more, a perplexity not in (0, 1e30)). */
FTIDEF fti_result fti_request_record_parse(const char *line, size_t len, fti_request_record *rec,
                                           char *strbuf, size_t strbuf_len);

/* p-th percentile (0..100) of x[0..n) by linear interpolation; sorts x in place. 0 when n == 0. */
FTIDEF double fti_percentile(double *x, size_t n, double p);

/* --- the monitor bundle ----------------------------------------------------------------------- */

typedef struct fti_monitor fti_monitor;
typedef struct fti_monitor_opts {
    const char *log_path;          /* NULL = no request log */
    fti_reqlog_opts log;
    const fti_drift_ref *ref;      /* NULL = no drift; copied */
    fti_drift_thresholds thresholds;
    size_t window_prompts;         /* sliding drift window, 0 = 200 prompts */
    fti_log_fn log_fn;             /* warnings when the drift level changes */
    void *log_user;
} fti_monitor_opts;

/* Creates a monitor; with a log_path it opens the request log and writes its reference line
 * there (the reference's {"type":"reference","tok_share":...}, or {"type":"reference","none":
 * true} without one), also into a log that already has lines: what this monitor logs is judged
 * against its own reference by fti-monitor, not the one of the process that wrote before it. */
FTIDEF fti_result fti_monitor_create(const fti_monitor_opts *opts, fti_monitor **out,
                                     fti_error *err);
FTIDEF void fti_monitor_free(fti_monitor *mon);
/* The registry (for extra metrics). */
FTIDEF fti_metrics *fti_monitor_metrics(fti_monitor *mon);
/* Records a finished request: metrics, log line, drift window (if the record has buckets).
 * Thread safety: any thread. */
FTIDEF void fti_monitor_record(fti_monitor *mon, const fti_request_record *rec);
/* Counts a request that is not a completion (health, metrics, errors): metrics only, no log
 * line. */
FTIDEF void fti_monitor_count(fti_monitor *mon, const char *endpoint, int status);
/* Counts a 503 (reason "conn_cap" or "queue"). */
FTIDEF void fti_monitor_reject(fti_monitor *mon, const char *reason);
/* Server load gauges, and the model id shown as fti_model_info{model="..."} 1. */
FTIDEF void fti_monitor_set_load(fti_monitor *mon, int queued, int active, int conns);
FTIDEF void fti_monitor_set_model(fti_monitor *mon, const char *model_id);
/* Adds a completion-token count to the throughput meter (called as tokens are produced). */
FTIDEF void fti_monitor_tokens(fti_monitor *mon, uint64_t n_tokens);
/* The current drift statistics of the sliding window. */
FTIDEF void fti_monitor_drift(fti_monitor *mon, fti_drift_stats *st);
/* Replaces the reference (copied; NULL = none), e.g. after a model switch to another dataset
 * version: the drift window restarts and new log files get the new reference line (one is also
 * written now; NULL's is the "none" line). Any thread. Requests that started before (their record's
 * ref_epoch is older) no longer count for drift: their buckets and perplexity belong to the old
 * model. A server switching models switches the generator first, then the reference. */
FTIDEF fti_result fti_monitor_set_ref(fti_monitor *mon, const fti_drift_ref *ref);
/* How many references have been set, counting fti_monitor_create's as the first (>= 1): a
 * request's fti_request_record.ref_epoch, read when it starts. Any thread. */
FTIDEF uint32_t fti_monitor_ref_epoch(fti_monitor *mon);
/* Adds the reference buckets of ids to counts[FTI_DRIFT_BUCKETS] under the monitor's lock;
 * returns 1, or 0 (counts untouched) when there is no reference with a token map. Any thread. */
FTIDEF int fti_monitor_bucketize(fti_monitor *mon, const int32_t *ids, size_t n, uint32_t *counts);
/* The reference (NULL if none). The pointer stays valid until the next fti_monitor_set_ref or
 * fti_monitor_free: threads that may race with set_ref use fti_monitor_bucketize instead. */
FTIDEF const fti_drift_ref *fti_monitor_ref(const fti_monitor *mon);
/* Appends /metrics text (refreshes the drift and throughput gauges first). */
FTIDEF void fti_monitor_render(fti_monitor *mon, fti_buf *out);
FTIDEF fti_result fti_monitor_flush(fti_monitor *mon);

#ifdef __cplusplus
}
#endif
#endif /* FTI_MONITOR_H */
