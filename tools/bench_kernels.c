/* bench_kernels: fti's GEMM/GEMV against OpenBLAS in the same run (make bench-kernels).
 *
 *   env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE build/bench_kernels [--quick] [--threads 1,2]
 *       [--only square|train|gemv|bf16|quant] [--case SUBSTR] [--repeat N] [--cpu-time]
 *   (--case: only the GEMM/GEMV cases whose name contains SUBSTR, e.g. train-dx-4096x288x4096;
 *    --repeat: each GEMM case N times, ours then OpenBLAS each time, for noisy machines (at
 *    one thread the two libraries' calls alternate anyway, call by call, best of each);
 *    --cpu-time: one-thread GEMM cases timed by the thread's CPU clock, for busy machines)
 *
 * Measures the machine first (FMA peak with an unrolled FMA loop per thread; STREAM-style copy
 * bandwidth, counting bytes read + written, and read-only bandwidth, the better of a vector sum
 * over one stream and over four, all on 8 MiB segments of 256 MiB arrays; GEMV f32 is also
 * reported as a fraction of that read bandwidth), then for 1 and 2 threads:
 *   square GEMM 256..2048, the training shapes (4096×288×288, 4096×288×768, 4096×768×288,
 *   4096×288×4096) in the three layouts (fwd X·Wᵀ, dX = dY·W, dW = dYᵀ·X), and the decode GEMVs
 *   288→32000, 768→2048, 2048→768 (f32 vs cblas_sgemv; Q8_0/Q4_0 against OpenBLAS's f32 time,
 *   and against fti's f32 time over the bytes they save: "-vs-f32" lines),
 *   and, where the CPU has AVX512_BF16, the training shapes with bf16 products (FTI_MM_BF16)
 *   against OpenBLAS's fp32 sgemm (summary-bf16; not part of the fp32 geomeans).
 * At 1 thread also the weight quantizers (f32 -> Q8_0/Q4_0 and back, GB/s of f32) of the chosen
 * table against the scalar reference table (OpenBLAS has none): the 288x32000 matrix, one call.
 * GEMV weights come from memory in every timed call: before each call the weight matrix is
 * evicted from every cache level (clflush of each line) and 64 MiB of another buffer are read,
 * on the pool's threads; then a small call of the same library on other, cached data wakes its
 * threads (as between the layers of a decode step), and the call is timed alone; the best of
 * these calls counts. Why: rotating over > 192 MiB of copies was not enough (this CPU's L3 is
 * a victim cache that keeps part of a cyclic working set: the best call over a 6 MiB matrix read
 * 64 GB/s, 2.25x the DRAM read rate); the flush leaves no line in any cache whatever the L3's
 * replacement policy; and the flush alone left the matrix's pages in the TLB (a flushed 6 MiB
 * buffer then read at 41 GB/s, 30 GB/s after 64 MiB of other reads, like a new segment of the
 * read-bandwidth figure, and like the layers of a model larger than the LLC in decode).
 * x and y stay cached, as in decode. Each GEMV case also reports the same call repeated with its
 * matrix in cache ("-in-cache" lines: GB/s against fti's f32 in cache at that shape, per byte;
 * matrices larger than the L3 still come partly from memory).
 * Each case reports the best of several runs; at 1 thread the two libraries' GEMM calls
 * alternate call by call (a busy moment of a shared machine falls on both); at 2+ threads each
 * library's GEMM timing starts 0.15 s after the other's last call (OpenBLAS's idle workers spin
 * ~0.1 s before they sleep). Output: a table, one line per case
 * "BENCH kernels <case> ours=<x> peer=<y> ratio=<r> unit=<u>" (r > 1: fti better), and a
 * summary with the geometric-mean ratios. OpenBLAS is linked only into this program.
 */
#define _POSIX_C_SOURCE 200809L
#define FTI_IMPLEMENTATION
#include "fti.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* OpenBLAS entry points (declared here so no cblas.h include path is needed). */
enum { CblasRowMajor = 101, CblasNoTrans = 111, CblasTrans = 112 };
void cblas_sgemm(int order, int ta, int tb, int M, int N, int K, float alpha, const float *A,
                 int lda, const float *B, int ldb, float beta, float *C, int ldc);
void cblas_sgemv(int order, int ta, int M, int N, float alpha, const float *A, int lda,
                 const float *x, int incx, float beta, float *y, int incy);
void openblas_set_num_threads(int n);
char *openblas_get_corename(void);

static double now_s(void) { return (double)fti_time_ns() * 1e-9; }

/* --cpu-time: GEMM cases at one thread are timed by the calling thread's CPU clock instead of
 * the wall clock (both libraries then run all their work in that thread), so time slices lost to
 * other processes on a shared machine do not count; caches and memory bandwidth stay shared. */
static int g_cpu_time = 0;
static int g_clock_thread = 0; /* set while a one-thread GEMM case runs with --cpu-time */
static double clk_s(void) {
    if (g_clock_thread) {
        struct timespec ts;
        if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) == 0)
            return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
    }
    return now_s();
}

/* --- machine peak: FMA loop (tools/bench_peak.h) ------------------------------------------ */
#include "bench_peak.h"

/* --- memory bandwidth: STREAM-style copy and read (tools/bench_bw.h) ---------------------- */
#include "bench_bw.h"

/* --- cases ------------------------------------------------------------------------------------ */
static double g_min_time = 0.15;
static const char *g_case = ""; /* --case SUBSTR: only the cases whose name contains it */
static int g_repeat = 1;        /* --repeat N: each case N times (ours, then the peer, each time) */
static double log_sum[5]; /* square, training, gemv, bf16, quantizers */
static int log_n[5];
/* per group and thread count (index 0..8): Σ log(GFLOP/s) and Σ log(fraction of the FMA peak) */
static double peak_log_rate[4][9], peak_log_frac[4][9];
static int peak_n[4][9];

static float *rand_buf(size_t n) {
    float *p = (float *)fti_aligned_alloc(n * sizeof(float), 64);
    size_t i;
    fti_rng r;
    fti_rng_seed(&r, n, 1);
    for (i = 0; i < n; i++) p[i] = fti_rng_float(&r) - 0.5f;
    return p;
}

/* --- evicting a matrix from the caches (GEMV cases) ----------------------------------------- */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(__TINYC__)
#include <emmintrin.h>
#define BENCH_CLFLUSH 1
#endif

typedef struct flush_ctx {
    const char *p;
    size_t bytes;
    const float *big; /* 64 MiB read between calls (TLB and what clflush leaves) */
    size_t big_n;
    float sums[64];
} flush_ctx;

/* parts [begin, end) of 64 (each thread its own contiguous parts): clflush each line of the
 * matrix, then a sum over the same part of the big buffer */
static void flush_task(void *vctx, size_t begin, size_t end, int thread) {
    flush_ctx *f = (flush_ctx *)vctx;
    size_t lines = (f->bytes + 63) / 64, part, l, i;
    (void)thread;
    for (part = begin; part < end; part++) {
        float s = 0;
#if defined(BENCH_CLFLUSH)
        for (l = lines * part / 64; l < lines * (part + 1) / 64; l++) _mm_clflush(f->p + l * 64);
        _mm_mfence();
#else
        (void)l;
        (void)lines;
#endif
        for (i = f->big_n * part / 64; i < f->big_n * (part + 1) / 64; i += 16) s += f->big[i];
        f->sums[part] = s;
    }
}

static float *g_big;      /* 128 MiB, read 64 MiB at a time (alternating halves) */
static size_t g_big_half; /* floats in a half */
static int g_big_turn;
static volatile float g_sink;

static void flush_buf(fti_pool *pool, const void *p, size_t bytes) {
    flush_ctx f;
    size_t i;
    if (!g_big) {
        g_big_half = (size_t)16 << 20;
        g_big = (float *)fti_aligned_alloc(2 * g_big_half * sizeof(float), 64);
        if (!g_big) {
            fprintf(stderr, "bench_kernels: out of memory (flush buffer)\n");
            exit(1);
        }
        for (i = 0; i < 2 * g_big_half; i++) g_big[i] = 1.0f;
    }
    f.p = (const char *)p;
    f.bytes = bytes;
    f.big = g_big + (size_t)(g_big_turn++ & 1) * g_big_half;
    f.big_n = g_big_half;
    fti_pool_for(pool, 64, 1, flush_task, &f);
    g_sink += f.sums[0];
}

/* best time of single calls, each after its matrix W (bytes) was evicted from the caches and
 * `warm` (a small call of the same library on other, cached data) woke its threads */
#define TIME_COLD(best, pool, W, bytes, warm, stmt)                                                \
    do {                                                                                           \
        double t_start_ = now_s(), t_;                                                             \
        int reps_ = 0;                                                                             \
        best = 1e30;                                                                               \
        do {                                                                                       \
            double t0_;                                                                            \
            flush_buf(pool, W, bytes);                                                             \
            warm;                                                                                  \
            t0_ = now_s();                                                                         \
            stmt;                                                                                  \
            t_ = now_s() - t0_;                                                                    \
            if (t_ < best) best = t_;                                                              \
            reps_++;                                                                               \
        } while (reps_ < 5 || (now_s() - t_start_ < g_min_time && reps_ < 200));                   \
    } while (0)

static void report(int group, const char *name, int threads, double ours, double peer,
                   const char *unit, int lower_is_better, const char *extra) {
    double ratio = lower_is_better ? peer / ours : ours / peer;
    printf("  %-28s t%d  fti %9.2f  openblas %9.2f %-7s ratio %5.2f  %s\n", name, threads, ours,
           peer, unit, ratio, extra ? extra : "");
    printf("BENCH kernels %s-t%d ours=%.3f peer=%.3f ratio=%.3f unit=%s\n", name, threads, ours,
           peer, ratio, unit);
    log_sum[group] += log(ratio);
    log_n[group]++;
}

/* best time of runs until g_min_time has passed (at least 2 runs) */
#define TIME_BEST(best, stmt)                                                                      \
    do {                                                                                           \
        double t_start_ = now_s(), t_;                                                             \
        int reps_ = 0;                                                                             \
        best = 1e30;                                                                               \
        do {                                                                                       \
            double t0_ = clk_s();                                                                  \
            stmt;                                                                                  \
            t_ = clk_s() - t0_;                                                                    \
            if (t_ < best) best = t_;                                                              \
            reps_++;                                                                               \
        } while (reps_ < 2 || (now_s() - t_start_ < g_min_time && reps_ < 200));                   \
    } while (0)

/* best times of two statements run alternately, call by call, until 2·g_min_time has passed (at
 * least 3 runs each): at one thread, so that a busy moment of a shared machine falls on both
 * libraries alike instead of on one library's block of runs */
#define TIME_BEST_PAIR(best_a, stmt_a, best_b, stmt_b)                                             \
    do {                                                                                           \
        double t_start_ = now_s(), t0_, t_;                                                        \
        int reps_ = 0;                                                                             \
        best_a = best_b = 1e30;                                                                    \
        do {                                                                                       \
            t0_ = clk_s();                                                                         \
            stmt_a;                                                                                \
            t_ = clk_s() - t0_;                                                                    \
            if (t_ < best_a) best_a = t_;                                                          \
            t0_ = clk_s();                                                                         \
            stmt_b;                                                                                \
            t_ = clk_s() - t0_;                                                                    \
            if (t_ < best_b) best_b = t_;                                                          \
            reps_++;                                                                               \
        } while (reps_ < 3 || (now_s() - t_start_ < 2 * g_min_time && reps_ < 200));              \
    } while (0)

/* Before each library's timing at 2+ threads: 0.15 s asleep, so that the other library's idle
 * workers have gone to sleep. OpenBLAS's spin for about 2^28 cycles (~0.1 s) after a call before
 * they block (fti's pool: ~20 µs), so a product timed right after an OpenBLAS call shared the
 * cores with a spinning thread for its first 0.1 s: for 2-thread products of 65-95 ms
 * (4096×288×4096, square 2048) that was most of the timing window. */
static void settle(int threads) {
    struct timespec ts;
    if (threads < 2) return;
    ts.tv_sec = 0;
    ts.tv_nsec = 150000000L;
    nanosleep(&ts, NULL);
}

static void bench_gemm(const fti_kernels *k, fti_pool *pool, int threads, int group,
                       const char *name, unsigned flags, size_t M, size_t N, size_t K,
                       double peak) {
    size_t a_rows = (flags & FTI_MM_TRANS_A) ? K : M, a_cols = (flags & FTI_MM_TRANS_A) ? M : K;
    size_t b_rows = (flags & FTI_MM_TRANS_B) ? N : K, b_cols = (flags & FTI_MM_TRANS_B) ? K : N;
    float *A = rand_buf(a_rows * a_cols), *B = rand_buf(b_rows * b_cols), *C = rand_buf(M * N);
    double t_ours, t_peer, flops = 2.0 * (double)M * (double)N * (double)K;
    char extra[64];
    int rep;
    if (!strstr(name, g_case)) {
        fti_aligned_free(A);
        fti_aligned_free(B);
        fti_aligned_free(C);
        return;
    }
    g_clock_thread = g_cpu_time && threads == 1;
#define OURS_ fti_matmul(k, pool, flags, M, N, K, A, a_cols, B, b_cols, C, N)
#define PEER_                                                                                      \
    cblas_sgemm(CblasRowMajor, (flags & FTI_MM_TRANS_A) ? CblasTrans : CblasNoTrans,              \
                (flags & FTI_MM_TRANS_B) ? CblasTrans : CblasNoTrans, (int)M, (int)N, (int)K,      \
                1.0f, A, (int)a_cols, B, (int)b_cols, (flags & FTI_MM_ACCUMULATE) ? 1.0f : 0.0f, \
                C, (int)N)
    for (rep = 0; rep < g_repeat; rep++) {
    if (threads == 1) { /* call by call: no idle workers to wait for */
        TIME_BEST_PAIR(t_ours, OURS_, t_peer, PEER_);
    } else {
        settle(threads);
        TIME_BEST(t_ours, OURS_);
        settle(threads);
        TIME_BEST(t_peer, PEER_);
    }
    snprintf(extra, sizeof extra, "(%.0f%% of peak%s)", 100.0 * flops / t_ours * 1e-9 / peak,
             g_clock_thread ? ", cpu time" : "");
    if (threads >= 1 && threads <= 8) {
        peak_log_rate[group][threads] += log(flops / t_ours * 1e-9);
        peak_log_frac[group][threads] += log(flops / t_ours * 1e-9 / peak);
        peak_n[group][threads]++;
    }
    report(group, name, threads, flops / t_ours * 1e-9, flops / t_peer * 1e-9, "GFLOP/s", 0, extra);
    }
#undef OURS_
#undef PEER_
    g_clock_thread = 0;
    fti_aligned_free(A);
    fti_aligned_free(B);
    fti_aligned_free(C);
}

/* y = W·x from W's decode form (m->P), as the engine's decode step does it */
static void gemv_packed(const fti_kernels *k, fti_pool *pool, const fti_qmat *m, void *qa,
                        const float *x, size_t n_in) {
    if (fti_qact_quantize(k, qa, x, n_in, 1, n_in) != FTI_OK ||
        fti_matmul_qa_multi(k, pool, m, 1, qa, 1, n_in) != FTI_OK)
        abort();
}

static void bench_gemv(const fti_kernels *k, fti_pool *pool, int threads, size_t n_in, size_t n_out,
                       double bw) {
    /* the 4th and 5th: Q4_0 and Q8_0 in the table's decode form (fti_qpack_decode_rows; AVX2:
     * "q4_0p", "q8_0p"), as the engine's decode step reads them: x quantized, then
     * fti_matmul_qa_multi with M = 1; left out where the table has none */
    static const fti_dtype types[] = {FTI_DTYPE_F32, FTI_DTYPE_Q8_0, FTI_DTYPE_Q4_0,
                                      FTI_DTYPE_Q4_0, FTI_DTYPE_Q8_0};
    size_t nt = 5;
    size_t f32_bytes = n_in * n_out * sizeof(float), i, ti;
    void *qa = fti_aligned_alloc(fti_qact_bytes(1, n_in), 64);
    float *Wf = rand_buf(n_in * n_out), *x = rand_buf(n_in), *y = rand_buf(n_out), *Ws, *ys;
    double t_peer, t_ours, t_warm, t_f32 = 0, t_f32_warm = 0;
    char name[64], extra[128];
    int any = 0;
    for (ti = 0; ti < nt; ti++) {
        snprintf(name, sizeof name, "gemv-%s%s-%zux%zu", fti_dtype_name(types[ti]),
                 ti >= 3 ? "p" : "", n_in, n_out);
        any |= strstr(name, g_case) != NULL;
    }
    if (!any || !qa) {
        fti_aligned_free(qa);
        fti_aligned_free(Wf);
        fti_aligned_free(x);
        fti_aligned_free(y);
        return;
    }
    /* the warm-up calls: 64 rows of another matrix (cached; threaded by both libraries) */
    Ws = rand_buf(64 * n_in);
    ys = rand_buf(64);
    TIME_COLD(t_peer, pool, Wf, f32_bytes,
              cblas_sgemv(CblasRowMajor, CblasNoTrans, 64, (int)n_in, 1.0f, Ws, (int)n_in, x, 1,
                          0.0f, ys, 1),
              cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)n_out, (int)n_in, 1.0f, Wf, (int)n_in,
                          x, 1, 0.0f, y, 1));
    for (ti = 0; ti < nt; ti++) {
        fti_dtype t = types[ti];
        size_t rb = fti_dtype_row_bytes(t, n_in), bytes = rb * n_out;
        void *Q;
        if (ti >= 3 && !fti_qpack_decode_rows(k, t)) continue;
        Q = t == FTI_DTYPE_F32 ? (void *)Wf : fti_aligned_alloc(bytes, 64);
        fti_qmat m;
        if (!Q) {
            fprintf(stderr, "bench_kernels: out of memory (gemv)\n");
            exit(1);
        }
        if (t != FTI_DTYPE_F32)
            for (i = 0; i < n_out; i++)
                fti_quantize_row(k, t, (char *)Q + i * rb, Wf + i * n_in, n_in);
        if (ti >= 3) { /* the packed form replaces the rows (same size) */
            void *P;
            size_t pb = fti_qpack_bytes(k, t, n_out, n_in);
            P = fti_aligned_alloc(pb, 64);
            if (!P || fti_qpack(k, t, Q, n_out, n_in, P, pb) != FTI_OK) {
                fprintf(stderr, "bench_kernels: cannot pack (gemv)\n");
                exit(1);
            }
            fti_aligned_free(Q);
            Q = P;
            bytes = pb;
            memset(&m, 0, sizeof m);
            m.wtype = t;
            m.P = P;
            m.N = n_out;
            m.Y = y;
            m.ldy = n_out;
            TIME_COLD(t_ours, pool, Q, bytes,
                      fti_matmul_w(k, pool, FTI_DTYPE_F32, Ws, x, ys, 1, 64, n_in),
                      gemv_packed(k, pool, &m, qa, x, n_in));
            TIME_BEST(t_warm, gemv_packed(k, pool, &m, qa, x, n_in));
        } else {
            TIME_COLD(t_ours, pool, Q, bytes,
                      fti_matmul_w(k, pool, FTI_DTYPE_F32, Ws, x, ys, 1, 64, n_in),
                      fti_matmul_w(k, pool, t, Q, x, y, 1, n_out, n_in));
            TIME_BEST(t_warm, fti_matmul_w(k, pool, t, Q, x, y, 1, n_out, n_in));
        }
        snprintf(name, sizeof name, "gemv-%s%s-%zux%zu", fti_dtype_name(t), ti >= 3 ? "p" : "",
                 n_in, n_out);
        snprintf(extra, sizeof extra,
                 "(%.1f GB/s weights = %.0f%% of read bw; %.1f us; in cache %.1f GB/s)",
                 (double)bytes / t_ours * 1e-9, 100.0 * (double)bytes / t_ours * 1e-9 / bw,
                 t_ours * 1e6, (double)bytes / t_warm * 1e-9);
        if (t == FTI_DTYPE_F32) {
            report(2, name, threads, (double)bytes / t_ours * 1e-9, (double)bytes / t_peer * 1e-9,
                   "GB/s", 0, extra);
            /* against the machine: weight bytes per second over the measured read bandwidth
             * (target >= 0.8 when the weights exceed the LLC; not part of the geomeans) */
            printf("BENCH kernels %s-of-read-bw-t%d ours=%.3f peer=%.3f ratio=%.3f unit=GB/s\n",
                   name, threads, (double)bytes / t_ours * 1e-9, bw,
                   (double)bytes / t_ours * 1e-9 / bw);
            t_f32 = t_ours;
            t_f32_warm = t_warm;
        } else { /* quantized: time against OpenBLAS's f32 time on the same shape */
            report(2, name, threads, t_ours * 1e6, t_peer * 1e6, "us", 1, extra);
            /* and against fti's own f32 GEMV: the speed-up over the bytes saved (target: a
             * ratio >= 1, i.e. as fast per byte as f32; not part of the geomeans) */
            printf("BENCH kernels %s-vs-f32-t%d ours=%.3f peer=%.3f ratio=%.3f unit=x\n", name,
                   threads, t_f32 / t_ours, (double)f32_bytes / (double)bytes,
                   t_f32 / t_ours / ((double)f32_bytes / (double)bytes));
            /* the same with both matrices in cache as far as they fit: GB/s per byte */
            printf("BENCH kernels %s-in-cache-t%d ours=%.3f peer=%.3f ratio=%.3f unit=GB/s\n",
                   name, threads, (double)bytes / t_warm * 1e-9,
                   (double)f32_bytes / t_f32_warm * 1e-9,
                   t_f32_warm / t_warm / ((double)f32_bytes / (double)bytes));
            fti_aligned_free(Q);
        }
    }
    fti_aligned_free(qa);
    fti_aligned_free(Ws);
    fti_aligned_free(ys);
    fti_aligned_free(Wf);
    fti_aligned_free(x);
    fti_aligned_free(y);
}

/* f32 -> Q8_0/Q4_0 (fti_quantize_row) and back (fti_dequantize_row) over n_in x n_out weights in
 * one call: GB/s of f32 (read by the quantizer, written by the dequantizer), table k against
 * the scalar reference table (byte-identical results; OpenBLAS has no quantizer). */
static void bench_quantize(const fti_kernels *k, size_t n_in, size_t n_out) {
    static const fti_dtype types[] = {FTI_DTYPE_Q8_0, FTI_DTYPE_Q4_0};
    const fti_kernels *ref = fti_kernels_get(FTI_ISA_SCALAR);
    size_t n = n_in * n_out, ti;
    float *W = rand_buf(n), *back = (float *)fti_aligned_alloc(n * sizeof(float), 64);
    double f32_bytes = (double)n * sizeof(float);
    for (ti = 0; ti < 2; ti++) {
        fti_dtype t = types[ti];
        size_t qb = fti_dtype_row_bytes(t, n);
        void *Q = fti_aligned_alloc(qb, 64), *Qr = fti_aligned_alloc(qb, 64);
        double t_ours, t_ref;
        const char *tn = t == FTI_DTYPE_Q8_0 ? "q8_0" : "q4_0";
        char name[64];
        if (!Q || !Qr || !back) {
            fprintf(stderr, "bench_kernels: out of memory (quantizers)\n");
            exit(1);
        }
        TIME_BEST(t_ours, fti_quantize_row(k, t, Q, W, n));
        TIME_BEST(t_ref, fti_quantize_row(ref, t, Qr, W, n));
        if (memcmp(Q, Qr, qb) != 0)
            printf("  WARNING: %s quantizers differ from the reference\n", tn);
        snprintf(name, sizeof name, "quantize-%s-%zux%zu", tn, n_in, n_out);
        report(4, name, 1, f32_bytes / t_ours * 1e-9, f32_bytes / t_ref * 1e-9, "GB/s", 0,
               "(f32 in; peer = fti scalar reference)");
        TIME_BEST(t_ours, fti_dequantize_row(k, t, back, Q, n));
        TIME_BEST(t_ref, fti_dequantize_row(ref, t, back, Q, n));
        snprintf(name, sizeof name, "dequantize-%s-%zux%zu", tn, n_in, n_out);
        report(4, name, 1, f32_bytes / t_ours * 1e-9, f32_bytes / t_ref * 1e-9, "GB/s", 0,
               "(f32 out; peer = fti scalar reference)");
        fti_aligned_free(Q);
        fti_aligned_free(Qr);
    }
    fti_aligned_free(W);
    fti_aligned_free(back);
}

int main(int argc, char **argv) {
    static const size_t squares[] = {256, 512, 1024, 2048};
    static const size_t train[][3] = {
        {4096, 288, 288}, {4096, 288, 768}, {4096, 768, 288}, {4096, 288, 4096}};
    static const size_t gemvs[][2] = {{288, 32000}, {768, 2048}, {2048, 768}};
    const fti_kernels *k = fti_kernels_get(FTI_ISA_AUTO);
    int thread_counts[4] = {1, 2, 0, 0}, n_tc = 2, ti, i, quick = 0;
    const char *only = "";
    char desc[256];
    double peak[3], copy_bw[3], read_bw[3];
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0)
            quick = 1;
        else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc)
            only = argv[++i];
        else if (strcmp(argv[i], "--case") == 0 && i + 1 < argc)
            g_case = argv[++i];
        else if (strcmp(argv[i], "--cpu-time") == 0)
            g_cpu_time = 1;
        else if (strcmp(argv[i], "--repeat") == 0 && i + 1 < argc) {
            g_repeat = atoi(argv[++i]);
            if (g_repeat < 1) g_repeat = 1;
        } else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
            n_tc = sscanf(argv[++i], "%d,%d", &thread_counts[0], &thread_counts[1]);
        } else {
            printf("usage: bench_kernels [--quick] [--threads 1,2] [--only "
                   "square|train|gemv|bf16|quant] [--case SUBSTR] [--repeat N] [--cpu-time]\n");
            return strcmp(argv[i], "--help") == 0 ? 0 : 2;
        }
    }
    if (quick) g_min_time = 0.05;
    if (getenv("OPENBLAS_CORETYPE") || getenv("OPENBLAS_L2_SIZE"))
        fprintf(stderr, "warning: OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE set: OpenBLAS runs slower "
                        "than its best (run through make bench-kernels)\n");
    printf("fti kernels benchmark: %s\n", fti_cpu_describe(desc, sizeof desc));
    printf("openblas core: %s\n", openblas_get_corename());
    for (ti = 0; ti < n_tc; ti++) {
        int t = thread_counts[ti];
        peak[ti] = bench_peak_gflops(t);
        {
            bench_bw bw = bench_bw_measure(t);
            copy_bw[ti] = bw.copy;
            read_bw[ti] = bw.read; /* the better of one and four streams per thread */
        }
        printf("machine t%d: FMA peak %.1f GFLOP/s, copy %.1f GB/s, read %.1f GB/s\n", t, peak[ti],
               copy_bw[ti], read_bw[ti]);
        printf("BENCH kernels machine-fma-peak-t%d ours=%.3f peer=%.3f ratio=1 unit=GFLOP/s\n", t,
               peak[ti], peak[ti]);
        printf("BENCH kernels machine-copy-bw-t%d ours=%.3f peer=%.3f ratio=1 unit=GB/s\n", t,
               copy_bw[ti], copy_bw[ti]);
        printf("BENCH kernels machine-read-bw-t%d ours=%.3f peer=%.3f ratio=1 unit=GB/s\n", t,
               read_bw[ti], read_bw[ti]);
    }
    for (ti = 0; ti < n_tc; ti++) {
        int t = thread_counts[ti];
        fti_pool *pool = fti_pool_create(t);
        char name[64];
        openblas_set_num_threads(t);
        printf("--- %d thread%s ---\n", t, t > 1 ? "s" : "");
        for (i = 0; i < 4 && (!*only || strcmp(only, "square") == 0); i++) {
            snprintf(name, sizeof name, "sgemm-square-%zu", squares[i]);
            if (quick && squares[i] > 1024) continue;
            bench_gemm(k, pool, t, 0, name, 0, squares[i], squares[i], squares[i], peak[ti]);
        }
        for (i = 0; i < 4 && (!*only || strcmp(only, "train") == 0); i++) {
            size_t M = train[i][0], K = train[i][1], N = train[i][2];
            /* forward Y(M,N) = X(M,K)·W(N,K)ᵀ; backward dX(M,K) = dY(M,N)·W(N,K);
             * weight grad dW(N,K) += dY(M,N)ᵀ·X(M,K) */
            snprintf(name, sizeof name, "train-fwd-%zux%zux%zu", M, K, N);
            bench_gemm(k, pool, t, 1, name, FTI_MM_TRANS_B, M, N, K, peak[ti]);
            if (quick) continue;
            snprintf(name, sizeof name, "train-dx-%zux%zux%zu", M, K, N);
            bench_gemm(k, pool, t, 1, name, 0, M, K, N, peak[ti]);
            snprintf(name, sizeof name, "train-dw-%zux%zux%zu", M, K, N);
            bench_gemm(k, pool, t, 1, name, FTI_MM_TRANS_A | FTI_MM_ACCUMULATE, N, K, M, peak[ti]);
        }
        for (i = 0; i < 3 && (!*only || strcmp(only, "gemv") == 0); i++)
            bench_gemv(k, pool, t, gemvs[i][0], gemvs[i][1], read_bw[ti]);
        /* bf16 products (FTI_MM_BF16) against OpenBLAS's fp32 sgemm: what the trainer's
         * --bf16 option buys (only where the table runs them in bf16) */
        for (i = 0; i < 4 && fti_kernels_isa(k) != FTI_ISA_SCALAR && fti_matmul_has_bf16(k) &&
                    (!*only || strcmp(only, "bf16") == 0);
             i++) {
            size_t M = train[i][0], K = train[i][1], N = train[i][2];
            snprintf(name, sizeof name, "bf16-train-fwd-%zux%zux%zu", M, K, N);
            bench_gemm(k, pool, t, 3, name, FTI_MM_TRANS_B | FTI_MM_BF16, M, N, K, peak[ti]);
            if (quick) continue;
            snprintf(name, sizeof name, "bf16-train-dx-%zux%zux%zu", M, K, N);
            bench_gemm(k, pool, t, 3, name, FTI_MM_BF16, M, K, N, peak[ti]);
            snprintf(name, sizeof name, "bf16-train-dw-%zux%zux%zu", M, K, N);
            bench_gemm(k, pool, t, 3, name, FTI_MM_TRANS_A | FTI_MM_ACCUMULATE | FTI_MM_BF16, N,
                       K, M, peak[ti]);
        }
        if (t == 1 && (!*only || strcmp(only, "quant") == 0)) bench_quantize(k, 288, 32000);
        fti_pool_free(pool);
    }
    printf("BENCH kernels summary-square ours=0 peer=0 ratio=%.3f unit=geomean\n",
           log_n[0] ? exp(log_sum[0] / log_n[0]) : 0);
    printf("BENCH kernels summary-training ours=0 peer=0 ratio=%.3f unit=geomean\n",
           log_n[1] ? exp(log_sum[1] / log_n[1]) : 0);
    printf("BENCH kernels summary-gemv ours=0 peer=0 ratio=%.3f unit=geomean\n",
           log_n[2] ? exp(log_sum[2] / log_n[2]) : 0);
    if (log_n[3])
        printf("BENCH kernels summary-bf16 ours=0 peer=0 ratio=%.3f unit=geomean\n",
               exp(log_sum[3] / log_n[3]));
    if (log_n[4])
        printf("BENCH kernels summary-quantizers ours=0 peer=0 ratio=%.3f unit=geomean\n",
               exp(log_sum[4] / log_n[4]));
    /* fraction of the machine's FMA peak: geometric means of fti's GFLOP/s over the peak
     * measured with the FMA loop at the same thread count */
    for (i = 0; i < 2; i++) {
        int t;
        for (t = 1; t <= 8; t++)
            if (peak_n[i][t])
                printf("BENCH kernels summary-%s-peak-fraction-t%d ours=%.3f peer=%.3f "
                       "ratio=%.3f unit=GFLOP/s\n",
                       i == 0 ? "square" : "training", t, exp(peak_log_rate[i][t] / peak_n[i][t]),
                       exp(peak_log_rate[i][t] / peak_n[i][t]) /
                           exp(peak_log_frac[i][t] / peak_n[i][t]),
                       exp(peak_log_frac[i][t] / peak_n[i][t]));
    }
    printf("summary (geometric mean of fti/openblas): square %.2f, training %.2f, gemv %.2f\n",
           log_n[0] ? exp(log_sum[0] / log_n[0]) : 0, log_n[1] ? exp(log_sum[1] / log_n[1]) : 0,
           log_n[2] ? exp(log_sum[2] / log_n[2]) : 0);
    return 0;
}
