/* driver.c: the fuzz targets as libFuzzer entry points.
 *
 * Built without FTI_FUZZ_TARGET, it is ONE program holding every target (tests/fuzz/fuzz_*.c,
 * listed in the generated "fuzz_targets.h"); the target runs is picked at start-up from
 *   - the environment variable FTI_FUZZ_TARGET=NAME (inherited by libFuzzer's -fork/-jobs
 *     children), or
 *   - the program's name, fuzz-NAME (make fuzz-build makes build/fuzz/fuzz-NAME links to it).
 * `FTI_FUZZ_TARGET=list fti-fuzz` prints the names. One sanitizer build instead of one per target.
 *
 * Built with -DFTI_FUZZ_TARGET=NAME it wraps that one target only (for AFL++ and the like), and
 * with -DFTI_FUZZ_MAIN it is a plain program that reads one input from each file argument (or
 * stdin) and runs the target on it. */
#define FTI_IMPLEMENTATION
#include "../../fti.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__unix__) || defined(__APPLE__)
#include <signal.h>
#include <sys/time.h>
#include <unistd.h>
#define FTI__FUZZ_CPU_LIMIT 1
#endif

#define FTI_FUZZ_CHECK(cond)                                                       \
    do {                                                                           \
        if (!(cond)) {                                                             \
            fprintf(stderr, "fuzz invariant failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
            abort();                                                               \
        }                                                                          \
    } while (0)

typedef int (*fti_fuzz_fn)(const uint8_t *, size_t);

#ifdef FTI_FUZZ_TARGET
#define FTI__FUZZ_STR2(x) #x
#define FTI__FUZZ_STR(x) FTI__FUZZ_STR2(x)
#define FTI__FUZZ_CAT2(a, b) a##b
#define FTI__FUZZ_CAT(a, b) FTI__FUZZ_CAT2(a, b)
#include FTI__FUZZ_STR(FTI__FUZZ_CAT(fuzz_, FTI_FUZZ_TARGET).c)
static fti_fuzz_fn fti__fuzz_selected = FTI__FUZZ_CAT(fti_fuzz_, FTI_FUZZ_TARGET);
static int fti__fuzz_select(const char *argv0) {
    (void)argv0;
    return 0;
}
#else
typedef struct fti__fuzz_entry {
    const char *name;
    fti_fuzz_fn fn;
} fti__fuzz_entry;
/* #includes every fuzz_NAME.c and defines fti__fuzz_entries[] = {{"NAME", fti_fuzz_NAME}, ...,
 * {NULL, NULL}} (written by mk/fuzz.mk from the tests/fuzz/fuzz_*.c files) */
#include "fuzz_targets.h"
static fti_fuzz_fn fti__fuzz_selected = NULL;

/* Picks the target from FTI_FUZZ_TARGET or from argv0 (".../fuzz-NAME"). 0 or -1. */
static int fti__fuzz_select(const char *argv0) {
    const char *name = getenv("FTI_FUZZ_TARGET"), *base;
    const fti__fuzz_entry *e;
    if (!name || !name[0]) {
        base = argv0 ? strrchr(argv0, '/') : NULL;
        base = base ? base + 1 : argv0;
        if (base && strncmp(base, "fuzz-", 5) == 0) name = base + 5;
    }
    if (name)
        for (e = fti__fuzz_entries; e->name; e++)
            if (strcmp(e->name, name) == 0) {
                fti__fuzz_selected = e->fn;
                return 0;
            }
    if (!name || strcmp(name, "list") != 0)
        fprintf(stderr, "fti-fuzz: %s%s%s; set FTI_FUZZ_TARGET to one of:\n",
                name ? "no target named '" : "no target given", name ? name : "", name ? "'" : "");
    for (e = fti__fuzz_entries; e->name; e++)
        fprintf(name && !strcmp(name, "list") ? stdout : stderr, "%s\n", e->name);
    return -1;
}
#endif

/* A per-input limit in CPU seconds, FTI_FUZZ_CPU_TIMEOUT=N (tools/fuzz.sh sets it from
 * FUZZ_CPU_TIMEOUT). libFuzzer's -timeout counts wall time, so a run paused with SIGSTOP and
 * continued later reports the input it was on as a "timeout"; process CPU time does not pass
 * while the process is stopped, nor while a loaded machine runs others. An ITIMER_VIRTUAL tick
 * every CPU second looks at the number of inputs started: the same input for N ticks aborts
 * (libFuzzer then saves it as a crash-* file). Nothing is done per input but a counter. */
#ifdef FTI__FUZZ_CPU_LIMIT
static volatile sig_atomic_t fti__fuzz_units = 0;
static sig_atomic_t fti__fuzz_seen = -1;
static int fti__fuzz_ticks = 0, fti__fuzz_cpu_limit = 0;

static void fti__fuzz_tick(int sig) {
    static const char msg[] =
        "fti-fuzz: an input ran longer than FTI_FUZZ_CPU_TIMEOUT CPU seconds\n";
    (void)sig;
    if (fti__fuzz_units != fti__fuzz_seen) {
        fti__fuzz_seen = fti__fuzz_units;
        fti__fuzz_ticks = 0;
        return;
    }
    if (++fti__fuzz_ticks < fti__fuzz_cpu_limit) return;
    if (write(2, msg, sizeof msg - 1) < 0) { /* nothing to do */
    }
    abort();
}

static void fti__fuzz_cpu_limit_start(void) {
    const char *e = getenv("FTI_FUZZ_CPU_TIMEOUT");
    struct sigaction sa;
    struct itimerval it;
    fti__fuzz_cpu_limit = e ? atoi(e) : 0;
    if (fti__fuzz_cpu_limit <= 0) return;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = fti__fuzz_tick;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGVTALRM, &sa, NULL);
    memset(&it, 0, sizeof it);
    it.it_interval.tv_sec = 1;
    it.it_value.tv_sec = 1;
    setitimer(ITIMER_VIRTUAL, &it, NULL);
}
#endif

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    if (fti__fuzz_select(argv && *argv ? (*argv)[0] : NULL) != 0) exit(2);
#ifdef FTI__FUZZ_CPU_LIMIT
    fti__fuzz_cpu_limit_start();
#endif
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
#ifdef FTI__FUZZ_CPU_LIMIT
    fti__fuzz_units = (fti__fuzz_units + 1) & 0x3fffffff;
#endif
    return fti__fuzz_selected(data, size);
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
    LLVMFuzzerInitialize(&argc, &argv);
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
