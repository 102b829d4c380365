/* test.h: the tiny test harness. A test is
 *
 *     FTI_TEST(sha256_vectors) { CHECK(x == 1); CHECK_EQ_INT(a, b); REQUIRE(p != NULL); }
 *
 * in any tests/test_*.c file; the Makefile finds every FTI_TEST(...) line, and the runner
 * (tests/main.c) runs each test in a child process so a crash fails one test, not the run.
 * CHECK records a failure and goes on; REQUIRE records it and returns from the test.
 * The allocation hooks count every FTI_MALLOC/FTI_REALLOC/FTI_FREE and can fail the k-th
 * allocation, once or persistently: see fti_test_alloc_fail_at().
 */
#ifndef FTI_TEST_H
#define FTI_TEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern int fti_test_failures;        /* failed checks in the current test */
extern const char *fti_test_data_dir;  /* ../shared/data or $FTI_DATA */
extern const char *fti_test_tmp_dir;   /* a fresh temp directory for this test */

#define FTI_TEST(name) void fti_test_##name(void)

#define CHECK(cond)                                                                    \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            fprintf(stderr, "    %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
            fti_test_failures++;                                                       \
        }                                                                              \
    } while (0)

#define REQUIRE(cond)                                                                    \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "    %s:%d: REQUIRE(%s) failed\n", __FILE__, __LINE__, #cond); \
            fti_test_failures++;                                                         \
            return;                                                                      \
        }                                                                                \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                               \
    do {                                                                                 \
        long long fti_t_a_ = (long long)(a), fti_t_b_ = (long long)(b);                  \
        if (fti_t_a_ != fti_t_b_) {                                                      \
            fprintf(stderr, "    %s:%d: %s == %s failed: %lld != %lld\n", __FILE__, __LINE__, \
                    #a, #b, fti_t_a_, fti_t_b_);                                         \
            fti_test_failures++;                                                         \
        }                                                                                \
    } while (0)

#define CHECK_EQ_STR(a, b)                                                                 \
    do {                                                                                   \
        const char *fti_t_a_ = (a), *fti_t_b_ = (b);                                       \
        if (!fti_t_a_ || !fti_t_b_ || strcmp(fti_t_a_, fti_t_b_) != 0) {                   \
            fprintf(stderr, "    %s:%d: %s == %s failed: \"%s\" != \"%s\"\n", __FILE__,      \
                    __LINE__, #a, #b, fti_t_a_ ? fti_t_a_ : "(null)",                      \
                    fti_t_b_ ? fti_t_b_ : "(null)");                                       \
            fti_test_failures++;                                                           \
        }                                                                                  \
    } while (0)

/* |a - b| <= atol + rtol * |b| */
#define CHECK_NEAR(a, b, atol, rtol)                                                       \
    do {                                                                                   \
        double fti_t_a_ = (double)(a), fti_t_b_ = (double)(b);                             \
        if (!(fabs(fti_t_a_ - fti_t_b_) <= (atol) + (rtol)*fabs(fti_t_b_))) {              \
            fprintf(stderr, "    %s:%d: %s ~ %s failed: %.9g vs %.9g\n", __FILE__, __LINE__, \
                    #a, #b, fti_t_a_, fti_t_b_);                                           \
            fti_test_failures++;                                                           \
        }                                                                                  \
    } while (0)

#define CHECK_OK(expr)                                                                     \
    do {                                                                                   \
        int fti_t_r_ = (int)(expr);                                                        \
        if (fti_t_r_ != 0) {                                                               \
            fprintf(stderr, "    %s:%d: %s returned %d\n", __FILE__, __LINE__, #expr, fti_t_r_); \
            fti_test_failures++;                                                           \
        }                                                                                  \
    } while (0)

/* Invariant checks inside fuzz targets (tests/fuzz/fuzz_*.c): abort, so the fuzzer sees it. */
#define FTI_FUZZ_CHECK(cond)                                                                 \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            fprintf(stderr, "    fuzz invariant failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
            abort();                                                                         \
        }                                                                                    \
    } while (0)

/* Allocation hooks (tests/main.c). */
extern long fti_test_alloc_count;  /* allocations made since the last reset */
extern long fti_test_alloc_live;   /* allocations not yet freed */
/* Fail the k-th allocation from now (1-based); persistent: also every one after it.
 * k = 0 turns failure injection off. Resets the count. */
void fti_test_alloc_fail_at(long k, int persistent);

/* Path helpers: a path under the data dir / the test's temp dir (static buffer, 4 slots). */
const char *fti_test_data(const char *rel);
const char *fti_test_tmp(const char *rel);
/* The sample corpus's JSONL (the repository's data/corpus/bierce copy, else the data dir's), and
 * the corpus as plain text (the data dir's .txt, else the JSONL's texts; fti_free it). */
const char *fti_test_corpus_jsonl(void);
int fti_test_corpus_text(void **text, size_t *len);
/* Writes a whole file (test setup); returns 0 on success. */
int fti_test_write_file(const char *path, const void *data, size_t n);

/* The small llama model of the engine tests (test_infer.c, test_batch.c, test_server.c), built
 * in tests/main.c: vocabulary 96 (95 = <|endoftext|>, BOS and EOS), dim 64, 2 layers, 4 heads,
 * 2 KV heads, hidden 160; its weights are fti_model_init_params(seed) times scale (or the
 * given ones), written as a GGUF file of the given matrix type in the test's temp dir. */
#define FTI_TEST_VOCAB_LETTERS 0 /* "a".."z", " a".." z" (as U+0120 a..z), "x52".."x94"; add_bos */
#define FTI_TEST_VOCAB_BYTES 1   /* LETTERS with the lone bytes 0xE9 (id 52), 0xA9 (53) */
#define FTI_TEST_VOCAB_PLAIN 2   /* "t0".."t94"; no add_bos */
typedef struct fti_test_model_opts {
    unsigned matrix_type; /* FTI_GGML_* of the matrices (0: F32) */
    unsigned context_len; /* 0: 48 */
    unsigned long seed;   /* of fti_model_init_params */
    float scale;          /* the initial weights times this (0: 1) */
    int tied;             /* tied embeddings */
    int vocab;            /* FTI_TEST_VOCAB_* */
    const float *params;  /* not NULL: write these weights instead (seed and scale unused) */
    const struct fti_gguf_lineage *lineage; /* the file's lineage keys (NULL: none) */
    unsigned hidden_dim;  /* SwiGLU width (0: 160) */
} fti_test_model_opts;
struct fti_gguf_lineage;
struct fti_model_config;
struct fti_engine;
struct fti_session;
struct fti_session_opts;
/* Writes the model (o NULL: all defaults) as file under the test's temp dir and returns its
 * path, or NULL with the reason printed. cfg_out (may be NULL) gets the resolved config;
 * params_out (may be NULL) the f32 weights written, malloc'd, for the caller to free. */
const char *fti_test_model(const char *file, const fti_test_model_opts *o,
                           struct fti_model_config *cfg_out, float **params_out);
/* Opens the model file path (NULL fails) and n sessions on it (options so, may be NULL) into
 * *e and s[0..n); 0 on success, else -1 with the reason printed and nothing left open.
 * fti_test_close_sessions frees the n sessions (NULL ones skipped) and closes e. */
int fti_test_open_sessions(const char *path, const struct fti_session_opts *so,
                           struct fti_engine **e, struct fti_session **s, size_t n);
void fti_test_close_sessions(struct fti_engine *e, struct fti_session **s, size_t n);

#endif
