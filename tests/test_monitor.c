/* test_monitor.c: PSI and Jensen-Shannon against hand-computed values, the Prometheus text format,
 * the request log's size rotation, request records round-trip, and drift on real text: prompts
 * from the training distribution stay under the thresholds, foreign text (German, C code) crosses
 * them. */

#include <fcntl.h>

/* A stand-in tokenizer for the drift tests: lowercase words hash to ids 256.., other bytes are
 * their own ids; bytes >= 0x80 count as byte fallbacks (like a BPE vocabulary without them). */
#define MON_VOCAB 8448
static size_t mon_tokenize(const char *s, size_t n, int32_t *ids, size_t cap, size_t *n_fallback) {
    size_t i = 0, k = 0;
    *n_fallback = 0;
    while (i < n && k < cap) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
            size_t j = i;
            char w[64];
            size_t wl = 0;
            while (j < n && (((unsigned char)s[j] >= 'a' && (unsigned char)s[j] <= 'z') ||
                             ((unsigned char)s[j] >= 'A' && (unsigned char)s[j] <= 'Z'))) {
                if (wl < sizeof w) w[wl++] = (char)(s[j] | 0x20);
                j++;
            }
            ids[k++] = (int32_t)(256 + fti_hash64(w, wl, 1) % (MON_VOCAB - 256));
            i = j;
        } else {
            if (c >= 0x80) (*n_fallback)++;
            if (c != ' ') ids[k++] = c;
            i++;
        }
    }
    return k;
}

FTI_TEST(monitor_psi_js_values) {
    double e[2] = {0.5, 0.5}, a[2] = {0.9, 0.1}, p[2] = {1, 0}, q[2] = {0, 1};
    double e4[4] = {1, 2, 3, 4}, a4[4] = {2, 4, 6, 8};
    CHECK_NEAR(fti_psi(e, a, 2, 0), 0.4 * log(1.8) + 0.4 * log(5.0), 1e-12, 0);
    CHECK_NEAR(fti_psi(e4, a4, 4, 0), 0, 1e-12, 0); /* shares, not counts, are compared */
    CHECK_NEAR(fti_js_divergence(p, q, 2), 1.0, 1e-12, 0);
    CHECK_NEAR(fti_js_divergence(e, e, 2), 0.0, 1e-12, 0);
    /* JS of (0.5,0.5) vs (0.9,0.1): H(M) - (H(P)+H(Q))/2 with M = (0.7, 0.3) */
    {
        double hm = -(0.7 * log2(0.7) + 0.3 * log2(0.3));
        double hq = -(0.9 * log2(0.9) + 0.1 * log2(0.1));
        CHECK_NEAR(fti_js_divergence(e, a, 2), hm - (1.0 + hq) / 2, 1e-12, 0);
    }
    CHECK_EQ_INT(fti_drift_len_bin(0), 0);
    CHECK_EQ_INT(fti_drift_len_bin(1), 1);
    CHECK_EQ_INT(fti_drift_len_bin(3), 2);
    CHECK_EQ_INT(fti_drift_len_bin(4), 3);
    CHECK_EQ_INT(fti_drift_len_bin((size_t)1 << 40), FTI_DRIFT_LEN_BINS - 1);
    {
        double x[5] = {5, 1, 4, 2, 3};
        CHECK_NEAR(fti_percentile(x, 5, 50), 3, 1e-12, 0);
        CHECK_NEAR(fti_percentile(x, 5, 100), 5, 1e-12, 0);
        CHECK_NEAR(fti_percentile(x, 5, 25), 2, 1e-12, 0);
        CHECK_NEAR(fti_percentile(x, 0, 50), 0, 0, 0);
    }
}

FTI_TEST(monitor_prometheus_text) {
    fti_metrics *m = NULL;
    fti_buf b;
    double bounds[2] = {0.1, 1};
    int c, g, h;
    REQUIRE(fti_metrics_create(&m) == FTI_OK);
    c = fti_metrics_define(m, FTI_METRIC_COUNTER, "req_total", "Requests.", NULL, 0);
    g = fti_metrics_define(m, FTI_METRIC_GAUGE, "depth", "Queue\ndepth.", NULL, 0);
    h = fti_metrics_define(m, FTI_METRIC_HISTOGRAM, "lat_seconds", "Latency.", bounds, 2);
    CHECK(c >= 0 && g >= 0 && h >= 0);
    CHECK_EQ_INT(fti_metrics_define(m, FTI_METRIC_COUNTER, "req_total", "", NULL, 0), c);
    CHECK(fti_metrics_define(m, FTI_METRIC_GAUGE, "bad-name", "", NULL, 0) < 0);
    CHECK(fti_metrics_define(m, FTI_METRIC_HISTOGRAM, "h2", "", (const double[]){1, 1}, 2) < 0);
    fti_metrics_add(m, c, "code=\"200\"", 2);
    fti_metrics_add(m, c, "code=\"200\"", 1);
    fti_metrics_add(m, c, "code=\"500\"", 1);
    fti_metrics_set(m, g, "", 7);
    fti_metrics_observe(m, h, "", 0.05);
    fti_metrics_observe(m, h, "", 0.5);
    fti_metrics_observe(m, h, "", 3);
    CHECK_NEAR(fti_metrics_get(m, c, "code=\"200\""), 3, 0, 0);
    CHECK_NEAR(fti_metrics_get(m, h, ""), 3, 0, 0);
    memset(&b, 0, sizeof b);
    fti_metrics_render(m, &b);
    CHECK_EQ_STR(b.data,
                 "# HELP req_total Requests.\n# TYPE req_total counter\n"
                 "req_total{code=\"200\"} 3\nreq_total{code=\"500\"} 1\n"
                 "# HELP depth Queue\\ndepth.\n# TYPE depth gauge\ndepth 7\n"
                 "# HELP lat_seconds Latency.\n# TYPE lat_seconds histogram\n"
                 "lat_seconds_bucket{le=\"0.1\"} 1\nlat_seconds_bucket{le=\"1\"} 2\n"
                 "lat_seconds_bucket{le=\"+Inf\"} 3\nlat_seconds_sum 3.55\nlat_seconds_count 3\n");
    b.len = 0;
    fti_metrics_label_escape(&b, "a\"b\\c\nd", 7);
    CHECK_EQ_STR(b.data, "a\\\"b\\\\c\\nd");
    fti_buf_free(&b);
    fti_metrics_free(m);
}

FTI_TEST(monitor_reqlog_rotation) {
    fti_reqlog *log = NULL;
    fti_reqlog_opts o;
    const char *path = fti_test_tmp("sub/dir/req.jsonl");
    char line[64], p2[4096];
    int i;
    void *d = NULL;
    size_t n = 0;
    memset(&o, 0, sizeof o);
    o.max_bytes = 200;
    o.keep = 2;
    REQUIRE(fti_reqlog_open(path, &o, "{\"type\":\"reference\"}", &log, NULL) == FTI_OK);
    for (i = 0; i < 40; i++) {
        snprintf(line, sizeof line, "{\"type\":\"request\",\"n\":%d}", i);
        CHECK_OK(fti_reqlog_write(log, line, strlen(line)));
    }
    CHECK_OK(fti_reqlog_flush(log));
    fti_reqlog_close(log);
    snprintf(p2, sizeof p2, "%s.1", path);
    CHECK(fti_path_exists(p2));
    snprintf(p2, sizeof p2, "%s.2", path);
    CHECK(fti_path_exists(p2));
    snprintf(p2, sizeof p2, "%s.3", path);
    CHECK(!fti_path_exists(p2));
    REQUIRE(fti_file_read(path, 0, &d, &n, NULL) == FTI_OK);
    CHECK(n <= 200);
    CHECK(strncmp((const char *)d, "{\"type\":\"reference\"}\n", 21) == 0);
    CHECK(strstr((const char *)d, "\"n\":39}") != NULL);
    fti_free(d);
    CHECK(fti_reqlog_open("", &o, NULL, &log, NULL) != FTI_OK);
}

FTI_TEST(monitor_reqlog_reopen_writes_reference) {
    /* a writer that opens a log with lines in it (fti-serve restarted, perhaps on another
     * model) puts its reference line after them, so fti-monitor judges its requests against it;
     * a last line cut by a crash is ended first, so the reference is a line of its own */
    fti_reqlog *log = NULL;
    const char *path = fti_test_tmp("reopen/req.jsonl");
    static const char want[] = "{\"type\":\"reference\",\"r\":1}\n{\"type\":\"request\",\"n\":1}\n"
                               "{\"type\":\"reference\",\"r\":2}\n{\"type\":\"request\",\"n\":2}\n"
                               "{\"type\":\"requ\n"
                               "{\"type\":\"reference\",\"r\":3}\n{\"type\":\"request\",\"n\":3}\n";
    void *d = NULL;
    size_t n = 0;
    int fd;
    REQUIRE(fti_reqlog_open(path, NULL, "{\"type\":\"reference\",\"r\":1}", &log, NULL) == FTI_OK);
    CHECK_OK(fti_reqlog_write(log, "{\"type\":\"request\",\"n\":1}", 24));
    fti_reqlog_close(log);
    REQUIRE(fti_reqlog_open(path, NULL, "{\"type\":\"reference\",\"r\":2}", &log, NULL) == FTI_OK);
    CHECK_OK(fti_reqlog_write(log, "{\"type\":\"request\",\"n\":2}", 24));
    fti_reqlog_close(log);
    fd = open(path, O_WRONLY | O_APPEND); /* a writer killed in the middle of a line */
    REQUIRE(fd >= 0);
    CHECK(write(fd, "{\"type\":\"requ", 13) == 13);
    close(fd);
    REQUIRE(fti_reqlog_open(path, NULL, "{\"type\":\"reference\",\"r\":3}", &log, NULL) == FTI_OK);
    CHECK_OK(fti_reqlog_write(log, "{\"type\":\"request\",\"n\":3}", 24));
    fti_reqlog_close(log);
    REQUIRE(fti_file_read(path, 0, &d, &n, NULL) == FTI_OK);
    CHECK(n == sizeof want - 1 && memcmp(d, want, n) == 0);
    fti_free(d);
}

FTI_TEST(monitor_record_roundtrip) {
    fti_request_record r, back;
    fti_buf b;
    char sb[256];
    int i;
    memset(&r, 0, sizeof r);
    r.time = 1700000000.25;
    r.endpoint = "/v1/completions";
    r.status = 200;
    r.model = "twin-7";
    r.prompt_tokens = 12;
    r.completion_tokens = 30;
    r.ttft_ms = 12.5;
    r.latency_ms = 250;
    r.tokens_per_s = 120;
    r.retrieval_hits = 3;
    r.prompt_ppl = 17.5;
    r.ppl_tokens = 7;
    r.byte_fallback = 2;
    r.has_buckets = 1;
    for (i = 0; i < FTI_DRIFT_BUCKETS; i++) r.tok_buckets[i] = (uint32_t)i;
    r.finish_reason = "length";
    memset(&b, 0, sizeof b);
    fti_request_record_json(&r, &b);
    REQUIRE(fti_request_record_parse(b.data, b.len, &back, sb, sizeof sb) == FTI_OK);
    CHECK_EQ_STR(back.endpoint, "/v1/completions");
    CHECK_EQ_STR(back.model, "twin-7");
    CHECK_EQ_STR(back.finish_reason, "length");
    CHECK_EQ_INT(back.completion_tokens, 30);
    CHECK_NEAR(back.ttft_ms, 12.5, 1e-9, 0);
    CHECK_NEAR(back.prompt_ppl, 17.5, 1e-9, 0);
    CHECK_EQ_INT(back.ppl_tokens, 7);
    CHECK_EQ_INT((int)fti_request_record_ppl_weight(&back), 7);
    back.ppl_tokens = 0; /* older logs: the whole prompt's tokens */
    CHECK_EQ_INT((int)fti_request_record_ppl_weight(&back), 12);
    CHECK(back.has_buckets && back.tok_buckets[15] == 15);
    CHECK(fti_request_record_parse("{\"type\":\"reference\"}", 20, &back, sb, sizeof sb) ==
          FTI_ERR_NOT_FOUND);
    CHECK(fti_request_record_parse("{\"type\":", 8, &back, sb, sizeof sb) == FTI_ERR_FORMAT);
    { /* figures no server writes make a line malformed (1e308 printed 300 digits) */
        static const char *const bad[] = {
            "{\"type\":\"request\",\"time\":1,\"status\":200,\"latency_ms\":1e308}",
            "{\"type\":\"request\",\"time\":-5,\"status\":200,\"latency_ms\":3}",
            "{\"type\":\"request\",\"time\":1,\"status\":200,\"ttft_ms\":-7}",
            "{\"type\":\"request\",\"time\":1,\"status\":200,\"prompt_ppl\":0}"};
        size_t k;
        for (k = 0; k < sizeof bad / sizeof bad[0]; k++)
            CHECK(fti_request_record_parse(bad[k], strlen(bad[k]), &back, sb, sizeof sb) ==
                  FTI_ERR_FORMAT);
        CHECK(fti_request_record_parse("{\"type\":\"request\",\"time\":1,\"ttft_ms\":null}", 42,
                                       &back, sb, sizeof sb) == FTI_OK);
    }
    fti_buf_free(&b);
}

/* A window of n prompts of ~words words each, cut from text[off..], scored against ref. */
static void mon_window(const fti_drift_ref *ref, const char *text, size_t len, size_t off,
                       int n, fti_drift_stats *st) {
    fti_drift_window w;
    int32_t ids[512];
    int p;
    memset(&w, 0, sizeof w);
    for (p = 0; p < n && off < len; p++) {
        size_t end = off, words = 0, nt, nfb;
        uint32_t b[FTI_DRIFT_BUCKETS];
        while (end < len && words < 30 + (size_t)(p % 20)) {
            if (text[end] == ' ') words++;
            end++;
        }
        nt = mon_tokenize(text + off, end - off, ids, 512, &nfb);
        memset(b, 0, sizeof b);
        fti_drift_bucketize(ref, ids, nt, b);
        fti_drift_window_add(&w, b, nt, end - off, nfb, -1);
        off = end;
        if (off >= len) off = 0;
    }
    fti_drift_compute(ref, &w, NULL, st);
}

static const char mon_german[] =
    "Der Zug war wieder einmal zu spät, und die Reisenden standen frierend auf dem Bahnsteig. "
    "Niemand wusste genau, wann er kommen würde, aber alle hatten eine Meinung dazu. Ein älterer "
    "Herr erklärte seiner Nachbarin ausführlich, warum früher alles pünktlicher gewesen sei, "
    "während ein Kind mit großen Augen die Tauben beobachtete, die zwischen den Gleisen nach "
    "Krümeln suchten. Als endlich eine Durchsage ertönte, verstand sie wegen des Lärms kein "
    "Mensch. Man zuckte mit den Schultern, trank den kalten Kaffee aus und wartete weiter. "
    "Später am Abend, in einer kleinen Gaststätte neben dem Bahnhof, erzählten sich die "
    "Gestrandeten Geschichten von anderen Reisen, von verpassten Anschlüssen und von Städten, "
    "die sie nur aus dem Fenster eines stehenden Zuges kannten. Die Wirtin brachte Suppe und Brot, "
    "und für eine Weile vergaßen alle, dass sie eigentlich woanders sein wollten. ";

static const char mon_code[] =
    "static int parse_config(const char *path, struct config *cfg) {\n"
    "    FILE *f = fopen(path, \"r\");\n    char line[256];\n    if (!f) return -1;\n"
    "    while (fgets(line, sizeof line, f)) {\n        char *eq = strchr(line, '=');\n"
    "        if (!eq || line[0] == '#') continue;\n        *eq = 0;\n"
    "        if (strcmp(line, \"threads\") == 0) cfg->threads = atoi(eq + 1);\n"
    "        else if (strcmp(line, \"port\") == 0) cfg->port = (uint16_t)atoi(eq + 1);\n"
    "    }\n    fclose(f);\n    return cfg->threads > 0 ? 0 : -2;\n}\n"
    "for (size_t i = 0; i < n; i++) { sum += x[i] * w[i]; if (sum > max) max = sum; }\n"
    "int main(int argc, char **argv) { struct config c = {0}; return parse_config(argv[1], &c); "
    "}\n";

FTI_TEST(monitor_drift_corpus) {
    void *d = NULL;
    size_t n = 0, half, nt, nfb, i;
    int32_t *ids;
    uint64_t *counts;
    uint64_t len_hist[FTI_DRIFT_LEN_BINS];
    fti_drift_ref *ref = NULL;
    fti_drift_stats st;
    fti_buf foreign;
    if (fti_test_corpus_text(&d, &n) != FTI_OK) {
        fprintf(stderr, "    (corpus not found: skipped)\n");
        return;
    }
    half = n / 2;
    ids = (int32_t *)fti_malloc(half * sizeof(int32_t));
    counts = (uint64_t *)fti_calloc(MON_VOCAB, sizeof(uint64_t));
    REQUIRE(ids && counts);
    /* the reference: token counts of the first half ("the training data") */
    nt = mon_tokenize((const char *)d, half, ids, half, &nfb);
    for (i = 0; i < nt; i++) counts[ids[i]]++;
    /* prompt-length reference: the same kind of excerpts cut from the training half */
    memset(len_hist, 0, sizeof len_hist);
    {
        size_t off = 0;
        int p;
        for (p = 0; p < 400 && off < half; p++) {
            size_t end = off, words = 0, k, f2;
            while (end < half && words < 30 + (size_t)(p % 20)) {
                if (((const char *)d)[end] == ' ') words++;
                end++;
            }
            k = mon_tokenize((const char *)d + off, end - off, ids, half, &f2);
            len_hist[fti_drift_len_bin(end - off)]++;
            (void)k;
            off = end + half / 500; /* spread over the whole training half */
        }
    }
    REQUIRE(fti_drift_ref_build(counts, MON_VOCAB, len_hist, (double)nfb / (double)nt, 0, &ref,
                                NULL) == FTI_OK);
    /* held-out prompts from the second half: under every threshold */
    for (i = 0; i < 3; i++) {
        mon_window(ref, (const char *)d + half, n - half, i * 50000, 200, &st);
        if (st.level != FTI_DRIFT_OK)
            fprintf(stderr, "    in-distribution window %lu: %s\n", (unsigned long)i, st.reason);
        CHECK_EQ_INT(st.level, FTI_DRIFT_OK);
        CHECK(st.psi_tokens < 0.1 && st.js_tokens < 0.05 && st.n_tokens > 1000);
    }
    /* German: alert */
    mon_window(ref, mon_german, sizeof mon_german - 1, 0, 60, &st);
    fprintf(stderr, "    german: PSI %.3f JS %.3f bytes %.3f (%s)\n", st.psi_tokens, st.js_tokens,
            st.byte_share, st.reason);
    CHECK_EQ_INT(st.level, FTI_DRIFT_ALERT);
    CHECK(st.psi_tokens >= 0.25 && st.js_tokens >= 0.1);
    /* code: alert */
    mon_window(ref, mon_code, sizeof mon_code - 1, 0, 60, &st);
    fprintf(stderr, "    code: PSI %.3f JS %.3f (%s)\n", st.psi_tokens, st.js_tokens, st.reason);
    CHECK_EQ_INT(st.level, FTI_DRIFT_ALERT);
    CHECK(st.psi_tokens >= 0.25);
    /* a mixed stream: mostly training text with a little foreign text stays below alert */
    memset(&foreign, 0, sizeof foreign);
    fti_buf_append(&foreign, (const char *)d + half, 20000);
    fti_buf_append(&foreign, mon_german, 300);
    mon_window(ref, foreign.data, foreign.len, 0, 60, &st);
    CHECK(st.level != FTI_DRIFT_ALERT);
    /* a tiny window is not judged */
    mon_window(ref, mon_code, sizeof mon_code - 1, 0, 1, &st);
    CHECK_EQ_INT(st.level, FTI_DRIFT_OK);
    fti_buf_free(&foreign);
    fti_drift_ref_free(ref);
    fti_free(ids);
    fti_free(counts);
    fti_free(d);
}

FTI_TEST(monitor_ref_epoch_stale_requests) {
    /* a request that started before a reference switch (its ref_epoch is older) counts for no
     * window, and its log line carries no drift data; 0 = unknown counts as current */
    uint64_t counts[256];
    fti_drift_ref *ref = NULL;
    fti_monitor_opts mo;
    fti_monitor *mon = NULL;
    fti_request_record rec;
    fti_drift_stats st;
    void *d = NULL;
    size_t n = 0;
    int i;
    for (i = 0; i < 256; i++) counts[i] = 10;
    REQUIRE(fti_drift_ref_build(counts, 256, NULL, 0, 10.0, &ref, NULL) == FTI_OK);
    memset(&mo, 0, sizeof mo);
    mo.ref = ref;
    mo.window_prompts = 20;
    mo.log_path = fti_test_tmp("mon_epoch.jsonl");
    REQUIRE(fti_monitor_create(&mo, &mon, NULL) == FTI_OK);
    CHECK_EQ_INT((int)fti_monitor_ref_epoch(mon), 1);
    memset(&rec, 0, sizeof rec);
    rec.endpoint = "/v1/completions";
    rec.status = 200;
    rec.prompt_tokens = 5;
    rec.prompt_ppl = 12;
    rec.has_buckets = 1;
    rec.tok_buckets[3] = 5;
    rec.ref_epoch = 1;
    fti_monitor_record(mon, &rec);
    fti_monitor_drift(mon, &st);
    CHECK_EQ_INT((int)st.n_prompts, 1);
    REQUIRE(fti_monitor_set_ref(mon, ref) == FTI_OK);
    CHECK_EQ_INT((int)fti_monitor_ref_epoch(mon), 2);
    rec.tok_buckets[3] = 7777; /* marks the stale request's line */
    fti_monitor_record(mon, &rec); /* started under epoch 1 */
    fti_monitor_drift(mon, &st);
    CHECK_EQ_INT((int)st.n_prompts, 0);
    CHECK(st.ppl < 0);
    rec.tok_buckets[3] = 5;
    rec.ref_epoch = 2;
    fti_monitor_record(mon, &rec);
    rec.ref_epoch = 0;
    fti_monitor_record(mon, &rec);
    fti_monitor_drift(mon, &st);
    CHECK_EQ_INT((int)st.n_prompts, 2);
    CHECK_NEAR(st.ppl, 12.0, 1e-9, 0);
    fti_monitor_free(mon);
    REQUIRE(fti_file_read(mo.log_path, 0, &d, &n, NULL) == FTI_OK);
    CHECK(strstr((const char *)d, "7777") == NULL);
    {   /* four request lines; the stale one has neither buckets nor a perplexity */
        const char *p = (const char *)d;
        int lines = 0, with_ppl = 0;
        while ((p = strstr(p, "\"type\":\"request\"")) != NULL) {
            const char *e = strchr(p, '\n');
            lines++;
            if (e && strstr(p, "\"prompt_ppl\":12") && strstr(p, "\"prompt_ppl\":12") < e)
                with_ppl++;
            p++;
        }
        CHECK_EQ_INT(lines, 4);
        CHECK_EQ_INT(with_ppl, 3);
    }
    fti_free(d);
    fti_drift_ref_free(ref);
}

FTI_TEST(monitor_bundle_alerts) {
    /* the monitor's sliding window goes to alert and writes a drift line to the log */
    fti_monitor_opts mo;
    fti_monitor *mon = NULL;
    fti_drift_ref *ref = NULL;
    uint64_t counts[256];
    fti_request_record rec;
    fti_drift_stats st;
    fti_buf b;
    void *d = NULL;
    size_t n = 0;
    int i;
    for (i = 0; i < 256; i++) counts[i] = i < 128 ? 10 : 0;
    REQUIRE(fti_drift_ref_build(counts, 256, NULL, 0, 10.0, &ref, NULL) == FTI_OK);
    memset(&mo, 0, sizeof mo);
    mo.ref = ref;
    mo.window_prompts = 20;
    mo.log_path = fti_test_tmp("mon.jsonl");
    REQUIRE(fti_monitor_create(&mo, &mon, NULL) == FTI_OK);
    memset(&rec, 0, sizeof rec);
    rec.endpoint = "/v1/completions";
    rec.status = 200;
    rec.prompt_tokens = 50;
    rec.has_buckets = 1;
    rec.prompt_ppl = 11;
    for (i = 0; i < FTI_DRIFT_BUCKETS; i++) rec.tok_buckets[i] = i == 15 ? 50 : 0; /* all rare */
    for (i = 0; i < 20; i++) fti_monitor_record(mon, &rec);
    fti_monitor_drift(mon, &st);
    CHECK_EQ_INT(st.level, FTI_DRIFT_ALERT);
    CHECK_NEAR(st.ppl_ratio, 1.1, 1e-9, 0);
    /* a window's perplexity weights each prompt's by the tokens it is over (ppl_tokens), not
     * by the whole prompt's: 20 prompts at 11 over 1 token each and 20 at 100 over 9 tokens
     * (50 prompt tokens all) average to exp((20·log 11 + 180·log 100) / 200) */
    rec.ppl_tokens = 1;
    for (i = 0; i < 20; i++) fti_monitor_record(mon, &rec);
    rec.ppl_tokens = 9;
    rec.prompt_ppl = 100;
    for (i = 0; i < 20; i++) fti_monitor_record(mon, &rec);
    rec.prompt_ppl = 11;
    rec.ppl_tokens = 1;
    for (i = 0; i < 20; i++) fti_monitor_record(mon, &rec); /* the window: the last 20 */
    fti_monitor_drift(mon, &st);
    CHECK_NEAR(st.ppl, 11.0, 1e-9, 0);
    mo.window_prompts = 40;
    fti_monitor_free(mon);
    REQUIRE(fti_monitor_create(&mo, &mon, NULL) == FTI_OK);
    rec.ppl_tokens = 1;
    for (i = 0; i < 20; i++) fti_monitor_record(mon, &rec);
    rec.ppl_tokens = 9;
    rec.prompt_ppl = 100;
    for (i = 0; i < 20; i++) fti_monitor_record(mon, &rec);
    fti_monitor_drift(mon, &st);
    CHECK_NEAR(st.ppl, exp((20 * log(11.0) + 180 * log(100.0)) / 200), 1e-9, 0);
    fti_monitor_free(mon);
    REQUIRE(fti_monitor_create(&mo, &mon, NULL) == FTI_OK);
    rec.prompt_ppl = 11;
    rec.ppl_tokens = 0;
    for (i = 0; i < 20; i++) fti_monitor_record(mon, &rec);
    fti_monitor_drift(mon, &st);
    CHECK_EQ_INT(st.level, FTI_DRIFT_ALERT);
    memset(&b, 0, sizeof b);
    fti_monitor_render(mon, &b);
    CHECK(strstr(b.data, "fti_drift_level 2") != NULL);
    CHECK(strstr(b.data, "fti_drift_alerts_total 1") != NULL);
    fti_buf_free(&b);
    fti_monitor_free(mon);
    REQUIRE(fti_file_read(mo.log_path, 0, &d, &n, NULL) == FTI_OK);
    CHECK(strstr((const char *)d, "\"type\":\"drift\",") &&
          strstr((const char *)d, "\"level\":\"alert\""));
    fti_free(d);
    fti_drift_ref_free(ref);
}

/* fti-monitor report on a window whose requests logged no prompt perplexity (chat requests
 * log "prompt_ppl":null): its "ppl x" column shows "-", not the -1.00 that stands for unknown;
 * the header names every threshold, perplexity and byte fallback too; --ppl-alert moves the
 * perplexity alert (status 3 at 1.5 on prompts at 1.8 times the validation perplexity, 0 at
 * the default 2). */
FTI_TEST(monitor_report_unknown_ppl_and_thresholds) {
#if !defined(_WIN32)
    double share[FTI_DRIFT_BUCKETS], len[FTI_DRIFT_LEN_BINS];
    fti_drift_ref *ref = NULL;
    fti_buf b;
    char path[1024], out[1024], cmd[4096];
    void *text = NULL;
    size_t i, k, n = 0;
    int st;
    if (!fti_path_exists("build/fti-monitor")) {
        fprintf(stderr, "    (build/fti-monitor not built: skipped)\n");
        return;
    }
    for (i = 0; i < FTI_DRIFT_BUCKETS; i++) share[i] = 1.0 / FTI_DRIFT_BUCKETS;
    for (i = 0; i < FTI_DRIFT_LEN_BINS; i++) len[i] = i == 9 ? 1.0 : 0.0;
    REQUIRE(fti_drift_ref_from_shares(share, len, 0, 50.0, &ref) == FTI_OK);
    memset(&b, 0, sizeof b);
    fti_drift_ref_json(ref, &b);
    fti_drift_ref_free(ref);
    fti_buf_printf(&b, "\n");
    for (k = 0; k < 2; k++) /* window 1: perplexity 90 (x1.8); window 2: none (chat) */
        for (i = 0; i < 4; i++) {
            char ppl[64];
            if (k == 0) snprintf(ppl, sizeof ppl, "90,\"ppl_tokens\":64");
            else snprintf(ppl, sizeof ppl, "null");
            fti_buf_printf(&b, "{\"type\":\"request\",\"time\":%lu,\"ts\":\"x\",\"endpoint\":"
                               "\"/v1/%s\",\"status\":200,\"model\":\"m\",\"stream\":false,"
                               "\"prompt_tokens\":64,\"prompt_bytes\":600,\"completion_tokens\""
                               ":4,\"ttft_ms\":1,\"latency_ms\":2,\"tokens_per_s\":100,"
                               "\"retrieval_hits\":0,\"prompt_ppl\":%s,\"byte_fallback\":0,"
                               "\"tok_buckets\":[4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4],"
                               "\"finish_reason\":\"length\"}\n",
                           (unsigned long)(1795900000 + 10 * k + i),
                           k ? "chat/completions" : "completions", ppl);
        }
    REQUIRE(!b.oom);
    snprintf(path, sizeof path, "%s", fti_test_tmp("requests.jsonl"));
    snprintf(out, sizeof out, "%s", fti_test_tmp("report.out"));
    REQUIRE(fti_test_write_file(path, b.data, b.len) == 0);
    fti_buf_free(&b);
    snprintf(cmd, sizeof cmd, "build/fti-monitor report --log '%s' --window 4 --svg - "
                              "--min-tokens 100 > '%s' 2>&1", path, out);
    st = system(cmd);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    REQUIRE(fti_file_read(out, 0, &text, &n, NULL) == FTI_OK);
    CHECK(strstr((const char *)text, "perplexity x 1.50/2.00, byte fallback +0.05/+0.15") !=
          NULL);
    CHECK(strstr((const char *)text, "-1.00") == NULL);
    CHECK(strstr((const char *)text, "   1.80   warn") != NULL);
    CHECK(strstr((const char *)text, "      -     ok") != NULL);
    if (fti_test_failures) fprintf(stderr, "%.*s\n", (int)n, (const char *)text);
    fti_free(text);
    snprintf(cmd, sizeof cmd, "build/fti-monitor report --log '%s' --window 4 --svg - "
                              "--min-tokens 100 --ppl-alert 1.6 > '%s' 2>&1", path, out);
    st = system(cmd);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 3);
#endif
}
