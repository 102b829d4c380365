/* fuzz_tmp.h: a scratch directory for fuzz targets whose reader takes a path (shards, manifests,
 * registry cards, checkpoints): $TMPDIR/fti-fuzz-<pid> (default /tmp), made once per process,
 * or the test's temp dir in the test runner. The files are overwritten by every input; the
 * fuzzer's directory is left for the OS to clean (`make fuzz` puts it on /dev/shm). */
#ifndef FTI_FUZZ_TMP_H
#define FTI_FUZZ_TMP_H
#include <unistd.h>

static const char *fti_fuzz_tmp_dir(void) {
    static char dir[512];
    if (!dir[0]) {
#ifdef FTI_TESTING
        /* in the test runner (fuzz_replay): the test's own temp dir, which the runner removes */
        snprintf(dir, sizeof dir, "%s/fuzz-tmp", fti_test_tmp_dir);
#else
        const char *t = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/fti-fuzz-%ld", t && t[0] ? t : "/tmp", (long)getpid());
#endif
        fti_mkdirs(dir, NULL);
    }
    return dir;
}

/* dir/rel, in one of 4 rotating static buffers. */
static const char *fti_fuzz_tmp(const char *rel) {
    static char bufs[4][1024];
    static int k = 0;
    char *b = bufs[k++ & 3];
    snprintf(b, sizeof bufs[0], "%s/%s", fti_fuzz_tmp_dir(), rel);
    return b;
}

/* Writes data to path (plain write: the fault hooks and atomic writes are not needed here). */
static int fti_fuzz_write(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    size_t w;
    if (!f) return -1;
    w = n ? fwrite(data, 1, n, f) : 0;
    return (fclose(f) == 0 && w == n) ? 0 : -1;
}
#endif
