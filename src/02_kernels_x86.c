/* === kernels: x86-64 AVX2+FMA and AVX-512 variants === */
/*
 * Every function here carries its own target attribute, so the file compiles without -mavx2
 * and the tables are only handed out after CPUID + XGETBV say the CPU and OS support them.
 */
#if defined(FTI__X86)
#include <immintrin.h>
#include <cpuid.h>

static uint64_t fti__xgetbv0(void) {
    uint32_t lo, hi;
    __asm__ __volatile__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

static unsigned fti__cpu_features_x86(void) {
    unsigned a, b, c, d, f = 0, max_leaf;
    uint64_t xcr0;
    if (!__get_cpuid(0, &max_leaf, &b, &c, &d)) return 0;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    if (!(c & (1u << 27)) || !(c & (1u << 28))) return 0; /* OSXSAVE and AVX */
    xcr0 = fti__xgetbv0();
    if ((xcr0 & 6u) != 6u) return 0; /* the OS saves XMM and YMM state */
    if (c & (1u << 12)) f |= FTI_CPU_FMA;
    if (c & (1u << 29)) f |= FTI_CPU_F16C;
    if (max_leaf < 7) return f;
    __cpuid_count(7, 0, a, b, c, d);
    if (b & (1u << 5)) f |= FTI_CPU_AVX2;
    if ((xcr0 & 0xe0u) == 0xe0u) { /* opmask and ZMM state */
        if (b & (1u << 16)) f |= FTI_CPU_AVX512F;
        if (b & (1u << 17)) f |= FTI_CPU_AVX512DQ;
        if (b & (1u << 30)) f |= FTI_CPU_AVX512BW;
        if (b & (1u << 31)) f |= FTI_CPU_AVX512VL;
        if (c & (1u << 11)) f |= FTI_CPU_AVX512VNNI;
        __cpuid_count(7, 1, a, b, c, d);
        if (a & (1u << 5)) f |= FTI_CPU_AVX512BF16;
    }
    return f;
}

static const fti_kernels fti__kernels_avx2_table = {
    FTI_ISA_AVX2, "avx2",
    4, 4, 256, 128, 512, fti__ukernel_ref,
    fti__gemv_f32_ref, fti__gemv_f16_ref, fti__gemv_bf16_ref,
    fti__gemv_q8_0_ref, fti__gemv_q4_0_ref, fti__quantize_x_ref,
    fti__dot_ref, fti__axpy_ref, fti__scale_ref, fti__max_ref, fti__exp_sum_ref,
    fti__mul_scaled_ref, fti__rmsnorm_bwd_row_ref, fti__softmax_bwd_row_ref,
    fti__silu_fwd_ref, fti__silu_bwd_ref, fti__swiglu_fwd_ref, fti__swiglu_bwd_ref,
    fti__adamw_ref,
    fti__f16_to_f32_ref, fti__f32_to_f16_ref, fti__bf16_to_f32_ref, fti__f32_to_bf16_ref,
    fti__quantize_q8_0_ref, fti__quantize_q4_0_ref, fti__dequantize_q8_0_ref,
    fti__dequantize_q4_0_ref,
};

static const fti_kernels *fti__kernels_avx2(void) { return &fti__kernels_avx2_table; }

#if !defined(FTI_NO_AVX512)
static const fti_kernels fti__kernels_avx512_table = {
    FTI_ISA_AVX512, "avx512",
    4, 4, 256, 128, 512, fti__ukernel_ref,
    fti__gemv_f32_ref, fti__gemv_f16_ref, fti__gemv_bf16_ref,
    fti__gemv_q8_0_ref, fti__gemv_q4_0_ref, fti__quantize_x_ref,
    fti__dot_ref, fti__axpy_ref, fti__scale_ref, fti__max_ref, fti__exp_sum_ref,
    fti__mul_scaled_ref, fti__rmsnorm_bwd_row_ref, fti__softmax_bwd_row_ref,
    fti__silu_fwd_ref, fti__silu_bwd_ref, fti__swiglu_fwd_ref, fti__swiglu_bwd_ref,
    fti__adamw_ref,
    fti__f16_to_f32_ref, fti__f32_to_f16_ref, fti__bf16_to_f32_ref, fti__f32_to_bf16_ref,
    fti__quantize_q8_0_ref, fti__quantize_q4_0_ref, fti__dequantize_q8_0_ref,
    fti__dequantize_q4_0_ref,
};
#endif

static const fti_kernels *fti__kernels_avx512(unsigned features) {
#if !defined(FTI_NO_AVX512)
    const unsigned need = FTI_CPU_AVX512F | FTI_CPU_AVX512BW | FTI_CPU_AVX512VL | FTI_CPU_AVX2 |
                          FTI_CPU_FMA | FTI_CPU_F16C;
    if ((features & need) == need) return &fti__kernels_avx512_table;
#endif
    (void)features;
    return NULL;
}
#endif /* FTI__X86 */
