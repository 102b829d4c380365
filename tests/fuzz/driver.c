/* driver.c: wraps one fuzz target (FTI_FUZZ_TARGET=NAME) for libFuzzer, or with FTI_FUZZ_MAIN as
 * a program that reads one input from each file argument (or stdin), for AFL++ and replays. */
#define FTI_IMPLEMENTATION
#include "../../fti.h"
#include <stdio.h>
#include <stdlib.h>

#define FTI_FUZZ_CHECK(cond)                                                       \
    do {                                                                           \
        if (!(cond)) {                                                             \
            fprintf(stderr, "fuzz invariant failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
            abort();                                                               \
        }                                                                          \
    } while (0)

#define FTI__FUZZ_STR2(x) #x
#define FTI__FUZZ_STR(x) FTI__FUZZ_STR2(x)
#define FTI__FUZZ_CAT2(a, b) a##b
#define FTI__FUZZ_CAT(a, b) FTI__FUZZ_CAT2(a, b)
#include FTI__FUZZ_STR(FTI__FUZZ_CAT(fuzz_, FTI_FUZZ_TARGET).c)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    return FTI__FUZZ_CAT(fti_fuzz_, FTI_FUZZ_TARGET)(data, size);
}

#ifdef FTI_FUZZ_MAIN
static int run_file(FILE *f) {
    size_t cap = 1 << 16, n = 0, r;
    uint8_t *buf = (uint8_t *)malloc(cap);
    if (!buf) return 1;
    while ((r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            uint8_t *nb = (uint8_t *)realloc(buf, cap * 2);
            if (!nb) break;
            buf = nb;
            cap *= 2;
        }
    }
    LLVMFuzzerTestOneInput(buf, n);
    free(buf);
    return 0;
}

int main(int argc, char **argv) {
    int i;
    if (argc < 2) return run_file(stdin);
    for (i = 1; i < argc; i++) {
        FILE *f = fopen(argv[i], "rb");
        if (!f) continue;
        run_file(f);
        fclose(f);
    }
    return 0;
}
#endif
