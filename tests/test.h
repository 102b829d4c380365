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
/* Writes a whole file (test setup); returns 0 on success. */
int fti_test_write_file(const char *path, const void *data, size_t n);

#endif
