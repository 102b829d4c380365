/* bench_bw.h: the benchmarks' STREAM-style memory bandwidth (bench_kernels, bench_infer).
 * Include after fti.h (with FTI_IMPLEMENTATION or not); everything here is static.
 *
 *   bench_bw bw = bench_bw_measure(threads);   // GB/s: bw.copy, bw.read1, bw.read4, bw.read
 *
 * copy: memcpy, counting bytes read plus written (as STREAM does). read: a vector sum with
 * independent adds (nothing but the loads limits it), one sequential stream per part (read1) or
 * four, one per quarter (read4: one core reads DRAM up to ~25% faster from four streams than
 * from one here); read is the better of the two: what a GEMV does with its weights.
 * 256 MiB arrays are cut into 32 segments of 8 MiB; each run works on the next segment (so it
 * never finds its data in a 32 MiB LLC) on a pool of `threads` (16 parts), and takes about a
 * millisecond, like one GEMV over weights beyond the LLC or one decode step; the best of 256
 * runs counts (the quiet windows of a busy machine). */
#ifndef BENCH_BW_H
#define BENCH_BW_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(__TINYC__) &&     \
    !defined(FTI_NO_SIMD)
#include <immintrin.h>
#define BENCH_BW_AVX512 1
__attribute__((target("avx512f"))) static float bench_bw_read512(const float *a, size_t n,
                                                                 int streams) {
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    size_t i, q = n / 64 * 16;
    float out[16];
    if (streams == 4) {
        for (i = 0; i < q; i += 16) {
            s0 = _mm512_add_ps(s0, _mm512_loadu_ps(a + i));
            s1 = _mm512_add_ps(s1, _mm512_loadu_ps(a + q + i));
            s2 = _mm512_add_ps(s2, _mm512_loadu_ps(a + 2 * q + i));
            s3 = _mm512_add_ps(s3, _mm512_loadu_ps(a + 3 * q + i));
        }
        i = 4 * q;
    } else {
        for (i = 0; i + 64 <= n; i += 64) {
            s0 = _mm512_add_ps(s0, _mm512_loadu_ps(a + i));
            s1 = _mm512_add_ps(s1, _mm512_loadu_ps(a + i + 16));
            s2 = _mm512_add_ps(s2, _mm512_loadu_ps(a + i + 32));
            s3 = _mm512_add_ps(s3, _mm512_loadu_ps(a + i + 48));
        }
    }
    _mm512_storeu_ps(out, _mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
    for (; i < n; i++) out[0] += a[i];
    return out[0];
}
/* The same with 256-bit vectors, for AVX2 machines (the plain C loop below is not vectorized
 * at -O2: one scalar add per float held it to about 12 GB/s in the median on Zen 3). */
__attribute__((target("avx"))) static float bench_bw_read256(const float *a, size_t n,
                                                              int streams) {
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    size_t i, q = n / 32 * 8;
    float out[8];
    if (streams == 4) {
        for (i = 0; i < q; i += 8) {
            s0 = _mm256_add_ps(s0, _mm256_loadu_ps(a + i));
            s1 = _mm256_add_ps(s1, _mm256_loadu_ps(a + q + i));
            s2 = _mm256_add_ps(s2, _mm256_loadu_ps(a + 2 * q + i));
            s3 = _mm256_add_ps(s3, _mm256_loadu_ps(a + 3 * q + i));
        }
        i = 4 * q;
    } else {
        for (i = 0; i + 32 <= n; i += 32) {
            s0 = _mm256_add_ps(s0, _mm256_loadu_ps(a + i));
            s1 = _mm256_add_ps(s1, _mm256_loadu_ps(a + i + 8));
            s2 = _mm256_add_ps(s2, _mm256_loadu_ps(a + i + 16));
            s3 = _mm256_add_ps(s3, _mm256_loadu_ps(a + i + 24));
        }
    }
    _mm256_storeu_ps(out, _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    for (; i < n; i++) out[0] += a[i];
    return out[0];
}
#endif

typedef struct bench_bw_ctx {
    const float *a;
    float *b;
    size_t n;
    int mode; /* 0 copy, 1 read (one stream per part), 2 read (four) */
    int avx512, avx;
    float sums[16];
} bench_bw_ctx;

static float bench_bw_read(const bench_bw_ctx *c, const float *a, size_t n, int streams) {
    float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    size_t i = 0;
    int j;
#ifdef BENCH_BW_AVX512
    if (c->avx512) return bench_bw_read512(a, n, streams);
    if (c->avx) return bench_bw_read256(a, n, streams);
#endif
    (void)c;
    (void)streams;
    for (; i + 8 <= n; i += 8)
        for (j = 0; j < 8; j++) s[j] += a[i + (size_t)j];
    for (; i < n; i++) s[0] += a[i];
    return s[0] + s[1] + s[2] + s[3] + s[4] + s[5] + s[6] + s[7];
}

static void bench_bw_task(void *vctx, size_t begin, size_t end, int thread) {
    bench_bw_ctx *c = (bench_bw_ctx *)vctx;
    size_t t;
    (void)thread;
    for (t = begin; t < end; t++) {
        size_t lo = c->n * t / 16, hi = c->n * (t + 1) / 16;
        if (c->mode == 0)
            memcpy(c->b + lo, c->a + lo, (hi - lo) * sizeof(float));
        else
            c->sums[t] += bench_bw_read(c, c->a + lo, hi - lo, c->mode == 2 ? 4 : 1);
    }
}

/* GB/s of one run of a mode (0 copy, 1 read one stream, 2 read four) over the n floats at a
 * (and b), on the pool. */
static double bench_bw_once(fti_pool *pool, int mode, const float *a, float *b, size_t n) {
    bench_bw_ctx c;
    double t0, dt, bytes = (double)n * 4 * (mode == 0 ? 2 : 1);
    memset(&c, 0, sizeof c);
    c.avx512 = (fti_cpu_features() & FTI_CPU_AVX512F) != 0;
    c.avx = (fti_cpu_features() & FTI_CPU_AVX2) != 0;
    c.a = a;
    c.b = b;
    c.n = n;
    c.mode = mode;
    t0 = (double)fti_time_ns() * 1e-9;
    fti_pool_for(pool, 16, 1, bench_bw_task, &c);
    dt = (double)fti_time_ns() * 1e-9 - t0;
    if (c.sums[0] == 12345.0f) printf(" "); /* keep the sums alive */
    return dt > 0 ? bytes / dt * 1e-9 : 0;
}

/* The best GB/s of 256 runs of a mode over the n floats at a and b, each on the next of 32
 * segments. */
static double bench_bw_mode(fti_pool *pool, int mode, float *a, float *b, size_t n) {
    size_t seg = n / 32;
    double best = 0;
    int rep;
    for (rep = 0; rep < 256; rep++) {
        size_t base = seg * (size_t)(rep % 32);
        double g = bench_bw_once(pool, mode, a + base, b + base, seg);
        if (g > best) best = g;
    }
    return best;
}

typedef struct bench_bw {
    double copy, read1, read4, read; /* GB/s; read = the better of read1, read4 */
    int threads;                     /* the pool's threads */
} bench_bw;

/* Copy and read bandwidth on a pool of `threads`; exits with a message when out of memory
 * (a benchmark, not the library). */
static bench_bw bench_bw_measure(int threads) {
    size_t n = (size_t)64 << 20, i; /* floats: 256 MiB per array */
    float *a = (float *)fti_aligned_alloc(n * sizeof(float), 64);
    float *b = (float *)fti_aligned_alloc(n * sizeof(float), 64);
    fti_pool *pool = fti_pool_create(threads);
    bench_bw r;
    if (!a || !b || !pool) {
        fprintf(stderr, "bench: out of memory measuring bandwidth\n");
        exit(1);
    }
    for (i = 0; i < n; i++) a[i] = b[i] = (float)(i & 7);
    r.copy = bench_bw_mode(pool, 0, a, b, n);
    r.read1 = bench_bw_mode(pool, 1, a, b, n);
    r.read4 = bench_bw_mode(pool, 2, a, b, n);
    r.read = r.read1 > r.read4 ? r.read1 : r.read4;
    r.threads = fti_pool_threads(pool);
    fti_pool_free(pool);
    fti_aligned_free(a);
    fti_aligned_free(b);
    return r;
}

#endif /* BENCH_BW_H */
