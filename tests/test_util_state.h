/* test_util_state.h: checks of the state a test leaves behind, shared by test_fault.c,
 * test_harden_registry.c and test_registry_add.c: the open file descriptors of the process and
 * the models of a registry. Static, in the one translation unit of the test runner; included by
 * each user, so guarded. */
#ifndef FTI_TEST_UTIL_STATE_H
#define FTI_TEST_UTIL_STATE_H
#include <dirent.h>

/* Open file descriptors of this process (-1 where /proc is missing). */
FTI__UNUSED static int tu_fd_count(void) {
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int n = 0;
    if (!d) return -1;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n - 1; /* the directory's own descriptor */
}

#ifndef FTI_NO_TRAIN
/* Models registered in the workspace home ((size_t)-1 when it cannot be listed). */
FTI__UNUSED static size_t tu_registry_models(const char *home) {
    fti_buf b;
    fti_error err;
    size_t n = 0, i;
    memset(&b, 0, sizeof b);
    if (fti_registry_list(home, &b, &err) != FTI_OK) return (size_t)-1;
    for (i = 0; i < b.len; i++) n += b.data[i] == '\n';
    fti_buf_free(&b);
    return n;
}
#endif

#endif
