/* main.c: the test runner. One binary (build/fti-test) built from every tests/test_*.c:
 *
 *     build/fti-test [--list] [--no-fork] [--data DIR] [FILTER...]
 *
 * Runs every test whose name contains one of the FILTER substrings (all when none), each in a
 * child process with its own temp directory and a time limit, prints one line per test and ends
 * with exactly "N passed, N failed"; exits non-zero if anything failed.
 *
 * The test build includes fti.h with FTI_IMPLEMENTATION and FTI_TESTING (which exposes fti__
 * internals) in this one translation unit, with counting allocation hooks.
 */
#define _POSIX_C_SOURCE 200809L
#if defined(__linux__)
#define _DEFAULT_SOURCE 1 /* as fti.h asks: madvise (the store's and the engine's page drops) */
#endif
#include <stddef.h>
#include <errno.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include "test.h"

/* --- allocation hooks ------------------------------------------------------------------- */
long fti_test_alloc_count = 0;
long fti_test_alloc_live = 0;
static long fti_test_fail_at = 0;
static int fti_test_fail_persistent = 0;

void fti_test_alloc_fail_at(long k, int persistent) {
    fti_test_alloc_count = 0;
    fti_test_fail_at = k;
    fti_test_fail_persistent = persistent;
}

/* The counters are bumped from worker threads too (pools, servers): atomically where we can. */
#if (defined(__GNUC__) || defined(__clang__)) && !defined(__TINYC__)
#define FTI_TEST_INC(x) __atomic_add_fetch(&(x), 1, __ATOMIC_RELAXED)
#define FTI_TEST_DEC(x) __atomic_sub_fetch(&(x), 1, __ATOMIC_RELAXED)
#elif !defined(FTI_NO_THREADS) && !defined(_WIN32)
/* tcc has no atomic builtins: a mutex (a plain ++ lost updates from server threads under tcc) */
#include <pthread.h>
static pthread_mutex_t fti_test_counter_mu = PTHREAD_MUTEX_INITIALIZER;
static long fti_test_counter_add(long *x, long d) {
    long v;
    pthread_mutex_lock(&fti_test_counter_mu);
    v = (*x += d);
    pthread_mutex_unlock(&fti_test_counter_mu);
    return v;
}
#define FTI_TEST_INC(x) fti_test_counter_add(&(x), 1)
#define FTI_TEST_DEC(x) fti_test_counter_add(&(x), -1)
#else
#define FTI_TEST_INC(x) (++(x))
#define FTI_TEST_DEC(x) (--(x))
#endif

static int fti_test_should_fail(void) {
    long count = FTI_TEST_INC(fti_test_alloc_count);
    if (fti_test_fail_at <= 0) return 0;
    if (count == fti_test_fail_at) return 1;
    return fti_test_fail_persistent && count > fti_test_fail_at;
}

static void *fti_test_malloc(size_t n) {
    void *p;
    if (fti_test_should_fail()) return NULL;
    p = malloc(n ? n : 1);
    if (p) FTI_TEST_INC(fti_test_alloc_live);
    return p;
}

static void *fti_test_realloc(void *old, size_t n) {
    void *p;
    if (fti_test_should_fail()) return NULL;
    p = realloc(old, n ? n : 1);
    if (p && !old) FTI_TEST_INC(fti_test_alloc_live);
    return p;
}

static void fti_test_free(void *p) {
    if (p) FTI_TEST_DEC(fti_test_alloc_live);
    free(p);
}

#define FTI_MALLOC(sz) fti_test_malloc(sz)
#define FTI_REALLOC(p, sz) fti_test_realloc(p, sz)
#define FTI_FREE(p) fti_test_free(p)
#define FTI_IMPLEMENTATION
#define FTI_TESTING
#ifdef FTI_TEST_HEADER
#include FTI_TEST_HEADER /* e.g. a --lines amalgamation for coverage */
#else
#include "../fti.h"
#endif

/* --- paths ------------------------------------------------------------------------------- */
int fti_test_failures = 0;
const char *fti_test_data_dir = "../shared/data";
const char *fti_test_tmp_dir = "/tmp";

static const char *fti_test_path(const char *dir, const char *rel) {
    static char slots[4][4096];
    static int k = 0;
    char *s = slots[k++ & 3];
    snprintf(s, 4096, "%s/%s", dir, rel);
    return s;
}
const char *fti_test_data(const char *rel) { return fti_test_path(fti_test_data_dir, rel); }
const char *fti_test_tmp(const char *rel) { return fti_test_path(fti_test_tmp_dir, rel); }

/* The sample corpus: the copy shipped in the repository (the tests run from its root), else the
 * data dir's, so a fresh clone without ../shared runs the corpus tests too. */
const char *fti_test_corpus_jsonl(void) {
    static const char shipped[] = "data/corpus/bierce/devils_dictionary.jsonl";
    const char *other = fti_test_data("corpus/bierce_devils_dictionary/devils_dictionary.jsonl");
    return fti_path_exists(shipped) || !fti_path_exists(other) ? shipped : other;
}

/* The corpus as plain text: the data dir's devils_dictionary.txt, or else the "text" of every
 * record of the shipped JSONL, a blank line between records. FTI_OK, or an error when neither
 * can be read. */
int fti_test_corpus_text(void **text, size_t *len) {
    fti_buf out;
    void *raw = NULL;
    size_t n = 0, i = 0;
    if (fti_file_read(fti_test_data("corpus/bierce_devils_dictionary/devils_dictionary.txt"), 0,
                      text, len, NULL) == FTI_OK)
        return FTI_OK;
    if (fti_file_read(fti_test_corpus_jsonl(), 0, &raw, &n, NULL) != FTI_OK) return FTI_ERR_IO;
    memset(&out, 0, sizeof out);
    while (i < n) {
        const char *line = (const char *)raw + i, *nl = (const char *)memchr(line, '\n', n - i);
        size_t m = nl ? (size_t)(nl - line) : n - i;
        fti_json_doc *doc = NULL;
        if (m && fti_json_parse(line, m, NULL, &doc, NULL, NULL) == FTI_OK) {
            const char *t = fti_json_get_str(fti_json_root(doc), "text", "");
            if (*t) {
                fti_buf_append(&out, t, strlen(t));
                fti_buf_append(&out, "\n\n", 2);
            }
        }
        fti_json_free(doc);
        i += m + 1;
    }
    fti_free(raw);
    if (!out.len || out.oom) {
        fti_buf_free(&out);
        return FTI_ERR_IO;
    }
    *text = out.data;
    *len = out.len;
    return FTI_OK;
}

int fti_test_write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    if (n && fwrite(data, 1, n, f) != n) {
        fclose(f);
        return -1;
    }
    return fclose(f) == 0 ? 0 : -1;
}

/* Helpers of the kernel tests (test_kernels*.c, test_batch.c), after fti.h. */
/* n floats uniform in [-scale, scale) from r (malloc'd; at least one element). */
float *fti_test_rand(fti_rng *r, size_t n, float scale) {
    float *p = (float *)malloc((n ? n : 1) * sizeof(float));
    size_t i;
    if (!p) return NULL;
    for (i = 0; i < n; i++) p[i] = (fti_rng_float(r) * 2.0f - 1.0f) * scale;
    return p;
}

/* The kernel tables this machine can run, scalar first, into out (room for 8); returns how many.
 * Also the variants a CPU without some extension gets: plain AVX-512 on a CPU with VNNI+VBMI,
 * NEON without the dot-product instructions on one with them. */
int fti_test_kernel_tables(const fti_kernels **out) {
    int n = 0, i;
    for (i = FTI_ISA_SCALAR; i <= FTI_ISA_NEON; i++) {
        const fti_kernels *k = fti_kernels_get((fti_isa)i);
        if (k) out[n++] = k;
    }
#if defined(FTI__X86) && !defined(FTI_NO_AVX512)
    {
        const fti_kernels *plain = fti__kernels_avx512(fti_cpu_features() & ~FTI_CPU_AVX512VNNI);
        if (plain && plain != out[n - 1]) out[n++] = plain;
    }
#endif
#if defined(FTI__NEON) && defined(FTI__DOTPROD_OK)
    if (out[n - 1] == &fti__kernels_neon_dot_table) out[n++] = &fti__kernels_neon_table;
#endif
    return n;
}

/* --- the engine tests' model (test.h) ---------------------------------------------------- */
const char *fti_test_model(const char *file, const fti_test_model_opts *o,
                           fti_model_config *cfg_out, float **params_out) {
    static const fti_test_model_opts defaults = {0, 0, 0, 0.0f, 0, 0, NULL, NULL, 0};
    static char store[96][16];
    static char *toks[96];
    int32_t special = 95;
    fti_model_config cfg;
    fti_gguf_tokenizer_meta m;
    fti_gguf_model_opts mo;
    fti_error err;
    float *params;
    size_t i, n;
    const char *path = fti_test_tmp(file);
    if (!o) o = &defaults;
    if (params_out) *params_out = NULL;
    memset(&cfg, 0, sizeof cfg);
    cfg.vocab_size = 96;
    cfg.dim = 64;
    cfg.n_layers = 2;
    cfg.n_heads = 4;
    cfg.n_kv_heads = 2;
    cfg.hidden_dim = o->hidden_dim ? o->hidden_dim : 160;
    cfg.context_len = o->context_len ? o->context_len : 48;
    cfg.tied_embeddings = o->tied;
    if (fti_model_config_resolve(&cfg, &err) != FTI_OK) {
        fprintf(stderr, "    model config: %s\n", err.msg);
        return NULL;
    }
    if (cfg_out) *cfg_out = cfg;
    n = fti_model_n_params(&cfg);
    params = (float *)malloc(n * sizeof(float));
    if (!params) return NULL;
    if (o->params) {
        memcpy(params, o->params, n * sizeof(float));
    } else {
        fti_model_init_params(&cfg, params, o->seed);
        /* larger weights than the init so the logits are not all near zero */
        if (o->scale != 0.0f && o->scale != 1.0f)
            for (i = 0; i < n; i++) params[i] *= o->scale;
    }
    for (i = 0; i < 96; i++) {
        /* byte 0x20 shows as U+0120 in GPT-2's byte-to-unicode form */
        if (i == 95) snprintf(store[i], 16, "<|endoftext|>");
        else if (o->vocab == FTI_TEST_VOCAB_PLAIN) snprintf(store[i], 16, "t%lu", (unsigned long)i);
        else if (i < 26) snprintf(store[i], 16, "%c", (int)('a' + i));
        else if (i < 52) snprintf(store[i], 16, "\xc4\xa0%c", (int)('a' + i - 26));
        else if (i == 52 && o->vocab == FTI_TEST_VOCAB_BYTES) snprintf(store[i], 16, "\xc3\xa9");
        else if (i == 53 && o->vocab == FTI_TEST_VOCAB_BYTES) snprintf(store[i], 16, "\xc2\xa9");
        else snprintf(store[i], 16, "x%lu", (unsigned long)i);
        toks[i] = store[i];
    }
    memset(&m, 0, sizeof m);
    m.n_tokens = 96;
    m.tokens = (const char *const *)toks;
    m.special_ids = &special;
    m.n_special = 1;
    m.bos_id = 95;
    m.eos_id = 95;
    m.pad_id = -1;
    m.add_bos = o->vocab != FTI_TEST_VOCAB_PLAIN;
    memset(&mo, 0, sizeof mo);
    mo.matrix_type = o->matrix_type;
    if (fti_gguf_write_llama(path, &cfg, params, &m, o->lineage, &mo, &err) != FTI_OK) {
        fprintf(stderr, "    write %s: %s\n", file, err.msg);
        free(params);
        return NULL;
    }
    if (params_out) *params_out = params;
    else free(params);
    return path;
}

int fti_test_open_sessions(const char *path, const fti_session_opts *so, fti_engine **e,
                           fti_session **s, size_t n) {
    fti_error err;
    size_t i;
    *e = NULL;
    for (i = 0; i < n; i++) s[i] = NULL;
    if (!path) return -1;
    if (fti_engine_open(e, path, NULL, &err) != FTI_OK) {
        fprintf(stderr, "    open %s: %s\n", path, err.msg);
        return -1;
    }
    for (i = 0; i < n; i++)
        if (fti_session_create(&s[i], *e, so, &err) != FTI_OK) {
            fprintf(stderr, "    session %lu: %s\n", (unsigned long)i, err.msg);
            fti_test_close_sessions(*e, s, i);
            *e = NULL;
            return -1;
        }
    return 0;
}

void fti_test_close_sessions(fti_engine *e, fti_session **s, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) fti_session_free(s[i]);
    fti_engine_close(e);
}

/* --- the tests ----------------------------------------------------------------------------- */
#include "tests_gen.c" /* generated: includes every tests/test_*.c and defines fti_tests[] */

/* Is the test named name selected: its name contains one of the FILTERs (all when none is
 * given) and none of the "!FILTER"s. */
static int matches(const char *name, int argc, char **argv, int first) {
    int i, any = 0, hit = 0;
    for (i = first; i < argc; i++) {
        if (argv[i][0] == '-') continue;
        if (argv[i][0] == '!') {
            if (argv[i][1] && strstr(name, argv[i] + 1)) return 0;
            continue;
        }
        any = 1;
        if (strstr(name, argv[i])) hit = 1;
    }
    return hit || !any;
}

static void rm_rf(const char *dir) {
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", dir);
}

int main(int argc, char **argv) {
    int i, passed = 0, failed = 0, no_fork = 0, list = 0;
    size_t t, n_tests = sizeof(fti_tests) / sizeof(fti_tests[0]);
    char tmp_root[256], tmp_dir[512];
    const char *env_data = getenv("FTI_DATA");
    long timeout_s = fti_env_long("FTI_TEST_TIMEOUT", 600);

    if (env_data && *env_data) fti_test_data_dir = env_data;
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--no-fork") == 0) no_fork = 1;
        else if (strcmp(argv[i], "--list") == 0) list = 1;
        else if (strcmp(argv[i], "--data") == 0 && i + 1 < argc) {
            fti_test_data_dir = argv[++i];
            argv[i] = (char *)"-";
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: fti-test [--list] [--no-fork] [--data DIR] [FILTER...] [!FILTER...]\n"
                   "Runs fti's tests (those whose name contains a FILTER, or all, but none\n"
                   "that contains a !FILTER), each in a child process; ends with\n"
                   "'N passed, N failed'. Data: $FTI_DATA or\n"
                   "../shared/data. FTI_TEST_TIMEOUT sets the per-test limit in seconds.\n");
            return 0;
        }
    }
    if (list) {
        for (t = 0; t < n_tests; t++)
            if (matches(fti_tests[t].name, argc, argv, 1)) printf("%s\n", fti_tests[t].name);
        return 0;
    }
    /* a fresh directory even when one from an earlier run with the same pid was left */
    snprintf(tmp_root, sizeof tmp_root, "/tmp/fti-test.XXXXXX");
    if (!mkdtemp(tmp_root)) {
        fprintf(stderr, "fti-test: cannot create %s\n", tmp_root);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (t = 0; t < n_tests; t++) {
        const char *name = fti_tests[t].name;
        int ok;
        uint64_t t0;
        if (!matches(name, argc, argv, 1)) continue;
        snprintf(tmp_dir, sizeof tmp_dir, "%s/%s", tmp_root, name);
        if (mkdir(tmp_dir, 0700) != 0) {
            fprintf(stderr, "fti-test: cannot create %s\n", tmp_dir);
            return 2;
        }
        fti_test_tmp_dir = tmp_dir;
        t0 = fti_time_ns();
        fflush(stdout);
        fflush(stderr);
        if (no_fork) {
            fti_test_failures = 0;
            fti_tests[t].fn();
            ok = fti_test_failures == 0;
        } else {
            int status = 0;
            pid_t pid = fork();
            if (pid < 0) {
                fprintf(stderr, "fti-test: fork failed\n");
                return 2;
            }
            if (pid == 0) {
                fti_test_failures = 0;
                alarm((unsigned)timeout_s);
                fti_tests[t].fn();
                fflush(stdout);
                fflush(stderr);
                /* exit, not _exit: gcov and LSan run at exit */
                exit(fti_test_failures == 0 ? 0 : 1);
            }
            while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
            }
            ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
            if (WIFSIGNALED(status))
                fprintf(stderr, "    killed by signal %d%s\n", WTERMSIG(status),
                        WTERMSIG(status) == SIGALRM ? " (time limit)" : "");
        }
        printf("%s %-44s %8.1f ms\n", ok ? "ok  " : "FAIL", name,
               (double)(fti_time_ns() - t0) / 1e6);
        if (ok) {
            passed++;
            rm_rf(tmp_dir);
        } else {
            failed++;
        }
    }
    if (failed == 0) rm_rf(tmp_root);
    else printf("temp files of failed tests kept in %s\n", tmp_root);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
