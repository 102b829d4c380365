/* === kernels: CPU detection and dispatch === */
/* Last of the kernels files: it sees every table defined before it. */
#include "02_kernels.h"

#include <stdlib.h>
#include <string.h>

/* The CPU's feature bits, detected once (CPUID traps to the hypervisor in a VM: ~1-2 µs each).
 * The cached word holds the bits plus FTI__CPU_KNOWN; threads racing on the first call compute
 * the same value and store the same word, through relaxed atomics (the SIMD builds are gcc/clang
 * only, so the __atomic builtins are always there where detection does anything). */
#define FTI__CPU_KNOWN 0x80000000u

static unsigned fti__cpu_features_cached(void) {
#if defined(FTI__X86) || defined(FTI__NEON)
    static unsigned cache;
    unsigned f = __atomic_load_n(&cache, __ATOMIC_RELAXED);
    if (f & FTI__CPU_KNOWN) return f & ~FTI__CPU_KNOWN;
#if defined(FTI__X86)
    f = fti__cpu_features_x86();
#else
    f = fti__cpu_features_neon();
#endif
    __atomic_store_n(&cache, f | FTI__CPU_KNOWN, __ATOMIC_RELAXED);
    return f;
#else
    return 0;
#endif
}

unsigned fti_cpu_features(void) { return fti__cpu_features_cached(); }

const char *fti_isa_name(fti_isa isa) {
    switch (isa) {
    case FTI_ISA_AUTO: return "auto";
    case FTI_ISA_SCALAR: return "scalar";
    case FTI_ISA_AVX2: return "avx2";
    case FTI_ISA_AVX512: return "avx512";
    case FTI_ISA_NEON: return "neon";
    }
    return "?";
}

static const fti_kernels *fti__kernels_exact(fti_isa isa) {
    switch (isa) {
    case FTI_ISA_SCALAR: return &fti__kernels_scalar;
#if defined(FTI__X86)
    case FTI_ISA_AVX2:
        return ((fti__cpu_features_cached() & (FTI_CPU_AVX2 | FTI_CPU_FMA | FTI_CPU_F16C)) ==
                (FTI_CPU_AVX2 | FTI_CPU_FMA | FTI_CPU_F16C))
                   ? fti__kernels_avx2()
                   : NULL;
    case FTI_ISA_AVX512: return fti__kernels_avx512(fti__cpu_features_cached());
#endif
#if defined(FTI__NEON)
    case FTI_ISA_NEON: return fti__kernels_neon();
#endif
    default: return NULL;
    }
}

const fti_kernels *fti_kernels_get(fti_isa isa) {
    static const fti_isa order[] = {FTI_ISA_AVX512, FTI_ISA_AVX2, FTI_ISA_NEON};
    const fti_kernels *k;
    const char *env;
    size_t i;
    if (isa != FTI_ISA_AUTO) return fti__kernels_exact(isa);
    env = getenv("FTI_ISA");
    if (env && *env) {
        for (i = FTI_ISA_SCALAR; i <= FTI_ISA_NEON; i++)
            if (strcmp(env, fti_isa_name((fti_isa)i)) == 0 && (k = fti__kernels_exact((fti_isa)i)))
                return k;
    }
    for (i = 0; i < sizeof order / sizeof order[0]; i++)
        if ((k = fti__kernels_exact(order[i])) != NULL) return k;
    return &fti__kernels_scalar;
}

fti_isa fti_kernels_isa(const fti_kernels *k) {
    if (!k) k = fti_kernels_get(FTI_ISA_AUTO);
    return k->isa;
}

char *fti_cpu_describe(char *out, size_t n) {
    static const char *names[] = {"avx2",       "fma",      "f16c",     "avx512f",
                                  "avx512bw",   "avx512vl", "avx512dq", "avx512vnni",
                                  "avx512bf16", "neon",     "dotprod",  "avx512vbmi",
                                  "gfni"};
    unsigned f = fti_cpu_features();
    fti_buf b;
    size_t i;
    memset(&b, 0, sizeof b);
    fti_buf_puts(&b, "cpu:");
    for (i = 0; i < sizeof names / sizeof names[0]; i++)
        if (f & (1u << i)) fti_buf_printf(&b, " %s", names[i]);
    if (!f) fti_buf_puts(&b, " (no simd)");
    fti_buf_puts(&b, " | tables:");
    for (i = FTI_ISA_SCALAR; i <= FTI_ISA_NEON; i++)
        if (fti__kernels_exact((fti_isa)i)) fti_buf_printf(&b, " %s", fti_isa_name((fti_isa)i));
    fti_buf_printf(&b, " | auto: %s", fti_kernels_get(FTI_ISA_AUTO)->name);
    if (n > 0) {
        size_t len = b.data && !b.oom ? b.len : 0;
        if (len >= n) len = n - 1;
        if (len) memcpy(out, b.data, len);
        out[len] = 0;
    }
    fti_buf_free(&b);
    return out;
}
