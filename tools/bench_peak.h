/* bench_peak.h: the machine's fp32 FMA peak, for the benchmarks' "fraction of peak" figures.
 *
 *     #include "fti.h"          (with FTI_IMPLEMENTATION, before this header)
 *     #include "bench_peak.h"
 *     double gflops = bench_peak_gflops(threads);
 *
 * Each thread runs independent chains of fused multiply-adds in registers (no memory traffic):
 * AVX-512 (12 chains of 16 lanes) where the CPU has it, else AVX2+FMA (10 chains of 8), NEON on
 * aarch64 (12 chains of 4), a scalar loop elsewhere. Enough chains cover the FMA latency times
 * the FMA pipes. The result is the best of 40 short runs (~3 ms each) with all threads started
 * together: like the kernels' best-of timing, it finds the windows in which the threads had
 * their cores on a busy machine. Links with -lpthread. Shared by tools/bench_kernels.c and
 * tools/bench_train.c. */
#ifndef FTI_BENCH_PEAK_H
#define FTI_BENCH_PEAK_H

#include <pthread.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(__TINYC__)
#include <immintrin.h>
#define BENCH_PEAK_X86 1
/* FLOPs done (2 per lane per FMA); the chains' values are folded into the result so the loop
 * cannot be removed, with a weight too small to change it. */
__attribute__((target("avx512f"))) static double bench_peak_loop_512(long iters) {
    __m512 a[12], m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
    float out[16];
    long i;
    int j;
    for (j = 0; j < 12; j++) a[j] = _mm512_set1_ps(1.0f + 0.01f * (float)j);
    for (i = 0; i < iters; i++) {
        a[0] = _mm512_fmadd_ps(a[0], m, c);
        a[1] = _mm512_fmadd_ps(a[1], m, c);
        a[2] = _mm512_fmadd_ps(a[2], m, c);
        a[3] = _mm512_fmadd_ps(a[3], m, c);
        a[4] = _mm512_fmadd_ps(a[4], m, c);
        a[5] = _mm512_fmadd_ps(a[5], m, c);
        a[6] = _mm512_fmadd_ps(a[6], m, c);
        a[7] = _mm512_fmadd_ps(a[7], m, c);
        a[8] = _mm512_fmadd_ps(a[8], m, c);
        a[9] = _mm512_fmadd_ps(a[9], m, c);
        a[10] = _mm512_fmadd_ps(a[10], m, c);
        a[11] = _mm512_fmadd_ps(a[11], m, c);
    }
    for (j = 1; j < 12; j++) a[0] = _mm512_add_ps(a[0], a[j]);
    _mm512_storeu_ps(out, a[0]);
    return (double)iters * 12 * 16 * 2 + out[0] * 1e-30;
}
__attribute__((target("avx2,fma"))) static double bench_peak_loop_256(long iters) {
    __m256 a[10], m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
    float out[8];
    long i;
    int j;
    for (j = 0; j < 10; j++) a[j] = _mm256_set1_ps(1.0f + 0.01f * (float)j);
    for (i = 0; i < iters; i++) {
        a[0] = _mm256_fmadd_ps(a[0], m, c);
        a[1] = _mm256_fmadd_ps(a[1], m, c);
        a[2] = _mm256_fmadd_ps(a[2], m, c);
        a[3] = _mm256_fmadd_ps(a[3], m, c);
        a[4] = _mm256_fmadd_ps(a[4], m, c);
        a[5] = _mm256_fmadd_ps(a[5], m, c);
        a[6] = _mm256_fmadd_ps(a[6], m, c);
        a[7] = _mm256_fmadd_ps(a[7], m, c);
        a[8] = _mm256_fmadd_ps(a[8], m, c);
        a[9] = _mm256_fmadd_ps(a[9], m, c);
    }
    for (j = 1; j < 10; j++) a[0] = _mm256_add_ps(a[0], a[j]);
    _mm256_storeu_ps(out, a[0]);
    return (double)iters * 10 * 8 * 2 + out[0] * 1e-30;
}
#elif defined(__aarch64__) && defined(__ARM_NEON) && !defined(__TINYC__)
#include <arm_neon.h>
#define BENCH_PEAK_NEON 1
static double bench_peak_loop_neon(long iters) {
    float32x4_t a[12], m = vdupq_n_f32(0.999999f), c = vdupq_n_f32(1e-7f);
    long i;
    int j;
    for (j = 0; j < 12; j++) a[j] = vdupq_n_f32(1.0f + 0.01f * (float)j);
    for (i = 0; i < iters; i++) {
        a[0] = vfmaq_f32(c, a[0], m);
        a[1] = vfmaq_f32(c, a[1], m);
        a[2] = vfmaq_f32(c, a[2], m);
        a[3] = vfmaq_f32(c, a[3], m);
        a[4] = vfmaq_f32(c, a[4], m);
        a[5] = vfmaq_f32(c, a[5], m);
        a[6] = vfmaq_f32(c, a[6], m);
        a[7] = vfmaq_f32(c, a[7], m);
        a[8] = vfmaq_f32(c, a[8], m);
        a[9] = vfmaq_f32(c, a[9], m);
        a[10] = vfmaq_f32(c, a[10], m);
        a[11] = vfmaq_f32(c, a[11], m);
    }
    for (j = 1; j < 12; j++) a[0] = vaddq_f32(a[0], a[j]);
    return (double)iters * 12 * 4 * 2 + vgetq_lane_f32(a[0], 0) * 1e-30;
}
#endif

/* FLOPs of iters steps of the best loop this CPU runs. */
static double bench_peak_loop(long iters) {
#if defined(BENCH_PEAK_X86)
    if (fti_cpu_features() & FTI_CPU_AVX512F) return bench_peak_loop_512(iters);
    if (fti_cpu_features() & FTI_CPU_FMA) return bench_peak_loop_256(iters);
#elif defined(BENCH_PEAK_NEON)
    return bench_peak_loop_neon(iters);
#endif
    {
        float a[8] = {1.0f, 1.1f, 1.2f, 1.3f, 1.4f, 1.5f, 1.6f, 1.7f};
        long i;
        int j;
        for (i = 0; i < iters; i++)
            for (j = 0; j < 8; j++) a[j] = a[j] * 0.999999f + 1e-7f;
        return (double)iters * 8 * 2 + a[0] * 1e-30;
    }
}

typedef struct bench_peak_arg {
    long iters;
    double flops;
} bench_peak_arg;

static void *bench_peak_thread(void *p) {
    bench_peak_arg *a = (bench_peak_arg *)p;
    a->flops = bench_peak_loop(a->iters);
    return NULL;
}

/* The fp32 FMA peak of `threads` threads (1..64) together, in GFLOP/s. */
static double bench_peak_gflops(int threads) {
    pthread_t th[64];
    bench_peak_arg args[64];
    double best = 0;
    int rep, t, started;
    if (threads < 1) threads = 1;
    if (threads > 64) threads = 64;
    for (rep = 0; rep < 40; rep++) {
        uint64_t t0 = fti_time_ns();
        double fl = 0, dt;
        for (t = 0, started = 0; t < threads; t++) {
            args[t].iters = 1000000;
            args[t].flops = 0;
            if (pthread_create(&th[t], NULL, bench_peak_thread, &args[t]) != 0) break;
            started++;
        }
        for (t = 0; t < started; t++) {
            pthread_join(th[t], NULL);
            fl += args[t].flops;
        }
        dt = (double)(fti_time_ns() - t0) * 1e-9;
        if (dt > 0 && fl / dt > best) best = fl / dt;
    }
    return best * 1e-9;
}

#endif /* FTI_BENCH_PEAK_H */
