/* === base: implementation === */
#include "00_base.h"

#if defined(FTI_MALLOC) || defined(FTI_REALLOC) || defined(FTI_FREE)
#if !defined(FTI_MALLOC) || !defined(FTI_REALLOC) || !defined(FTI_FREE)
#error "fti: define all of FTI_MALLOC, FTI_REALLOC and FTI_FREE, or none of them"
#endif
#endif

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <dirent.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>
#ifndef FTI_NO_MMAP
#include <sys/mman.h>
#endif
#ifndef FTI_ASSERT
#include <assert.h>
#define FTI_ASSERT(x) assert(x)
#endif
/* The POSIX declarations (clock_gettime, pread, lstat, ...) come with 00_base.h's feature
 * macros, which glibc reads at the first system header of the file: a <stdlib.h> before fti.h
 * (for an FTI_MALLOC, say) under -std=c99 leaves them out, and the compiler's page of implicit
 * declarations did not say why. So does a plain #include "fti.h" at the top of a file that
 * defines FTI_IMPLEMENTATION and includes it again further down (stb's habit): <stdint.h> was
 * the first system header, before the feature macros. */
#if defined(__GLIBC__) && !defined(__USE_POSIX199309)
#error "fti: include fti.h before any system header where FTI_IMPLEMENTATION is defined, \
with FTI_IMPLEMENTATION defined at its first #include in the file (or define \
_POSIX_C_SOURCE 200809L at the top)"
#endif

#ifndef FTI_MALLOC
#define FTI_MALLOC(sz) malloc(sz)
#define FTI_REALLOC(p, sz) realloc(p, sz)
#define FTI_FREE(p) free(p)
#endif

#ifndef O_CLOEXEC
#define O_CLOEXEC 0
#endif

/* Named limits (override by defining them before the implementation). */
#ifndef FTI_JSON_MAX_DEPTH
#define FTI_JSON_MAX_DEPTH 64
#endif
#ifndef FTI_JSON_MAX_STRING
#define FTI_JSON_MAX_STRING ((size_t)16 << 20)
#endif
#ifndef FTI_JSON_MAX_NODES
#define FTI_JSON_MAX_NODES ((size_t)16 << 20)
#endif
#ifndef FTI_WALK_MAX_DEPTH
#define FTI_WALK_MAX_DEPTH 64
#endif

#if defined(__GNUC__) || defined(__clang__)
#define FTI__UNUSED __attribute__((unused))
#else
#define FTI__UNUSED
#endif

/* === base: results and errors === */

FTIDEF const char *fti_result_str(fti_result r) {
    switch (r) {
#define FTI__RESULT_CASE(name, value, text) \
    case name:                              \
        return text;
        FTI_RESULT_LIST(FTI__RESULT_CASE)
#undef FTI__RESULT_CASE
    default:
        return "unknown error";
    }
}

FTIDEF fti_result fti_error_set(fti_error *err, fti_result code, const char *fmt, ...) {
    if (err) {
        va_list ap;
        err->code = code;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

FTIDEF void fti_error_clear(fti_error *err) {
    if (err) {
        err->code = FTI_OK;
        err->msg[0] = 0;
    }
}

FTIDEF void fti_error_prefix(fti_error *err, const char *prefix) {
    size_t np, nm;
    if (!err || !prefix) return;
    np = strlen(prefix);
    if (np > FTI_ERROR_MSG_MAX - 3) np = FTI_ERROR_MSG_MAX - 3;
    nm = strlen(err->msg);
    if (nm > FTI_ERROR_MSG_MAX - 3 - np) nm = FTI_ERROR_MSG_MAX - 3 - np;
    memmove(err->msg + np + 2, err->msg, nm);
    memcpy(err->msg, prefix, np);
    err->msg[np] = ':';
    err->msg[np + 1] = ' ';
    err->msg[np + 2 + nm] = 0;
}

/* === base: memory === */

FTIDEF void *fti_malloc(size_t n_bytes) { return FTI_MALLOC(n_bytes ? n_bytes : 1); }

FTIDEF void *fti_calloc(size_t count, size_t size) {
    size_t n;
    void *p;
    if (!fti_size_mul(count, size, &n)) return NULL;
    p = fti_malloc(n);
    if (p) memset(p, 0, n);
    return p;
}

FTIDEF void *fti_realloc(void *p, size_t n_bytes) { return FTI_REALLOC(p, n_bytes ? n_bytes : 1); }

FTIDEF void fti_free(void *p) {
    if (p) FTI_FREE(p);
}

/* The aligned block keeps the raw pointer just before the aligned address. */
FTIDEF void *fti_aligned_alloc(size_t n_bytes, size_t align) {
    size_t total;
    unsigned char *raw;
    uintptr_t a;
    if (align < sizeof(void *)) align = sizeof(void *);
    if (align & (align - 1)) return NULL;
    if (!fti_size_add(n_bytes, align + sizeof(void *), &total)) return NULL;
    raw = (unsigned char *)FTI_MALLOC(total);
    if (!raw) return NULL;
    a = ((uintptr_t)(raw + sizeof(void *)) + (align - 1)) & ~(uintptr_t)(align - 1);
    memcpy((void *)(a - sizeof(void *)), &raw, sizeof raw);
    /* cppcheck-suppress memleak ; raw is stored just before the block, freed by fti_aligned_free */
    return (void *)a;
}

FTIDEF void fti_aligned_free(void *p) {
    void *raw;
    if (!p) return;
    memcpy(&raw, (unsigned char *)p - sizeof(void *), sizeof raw);
    FTI_FREE(raw);
}

FTIDEF char *fti_strndup(const char *s, size_t n) {
    char *d;
    if (!s || n == SIZE_MAX) return NULL;
    d = (char *)fti_malloc(n + 1);
    if (!d) return NULL;
    if (n) memcpy(d, s, n);
    d[n] = 0;
    return d;
}

FTIDEF char *fti_strdup(const char *s) { return s ? fti_strndup(s, strlen(s)) : NULL; }

FTIDEF int fti_size_add(size_t a, size_t b, size_t *out) {
    if (a > SIZE_MAX - b) return 0;
    *out = a + b;
    return 1;
}

FTIDEF int fti_size_mul(size_t a, size_t b, size_t *out) {
    if (a != 0 && b > SIZE_MAX / a) return 0;
    *out = a * b;
    return 1;
}

FTIDEF fti_result fti_arena_init(fti_arena *a, void *mem, size_t cap) {
    if (!a) return FTI_ERR_INVALID;
    a->used = 0;
    a->cap = cap;
    a->owned = mem == NULL;
    a->base = (unsigned char *)(mem ? mem : fti_aligned_alloc(cap, 64));
    if (!a->base) {
        a->cap = 0;
        a->owned = 0;
        return FTI_ERR_NOMEM;
    }
    return FTI_OK;
}

FTIDEF void *fti_arena_alloc(fti_arena *a, size_t n_bytes, size_t align) {
    uintptr_t start, p;
    size_t off;
    if (!a || !a->base) return NULL;
    if (align == 0) align = 16;
    if (align & (align - 1)) return NULL;
    start = (uintptr_t)a->base + a->used;
    p = (start + (align - 1)) & ~(uintptr_t)(align - 1);
    off = (size_t)(p - (uintptr_t)a->base);
    if (off > a->cap || n_bytes > a->cap - off) return NULL;
    a->used = off + n_bytes;
    return (void *)p;
}

FTIDEF void fti_arena_reset(fti_arena *a) {
    if (a) a->used = 0;
}

FTIDEF void fti_arena_free(fti_arena *a) {
    if (!a) return;
    if (a->owned) fti_aligned_free(a->base);
    a->base = NULL;
    a->cap = a->used = 0;
    a->owned = 0;
}

FTIDEF int fti_buf_reserve(fti_buf *b, size_t extra) {
    size_t need, cap;
    char *p;
    if (b->oom) return 0;
    if (!fti_size_add(b->len, extra, &need) || !fti_size_add(need, 1, &need)) {
        b->oom = 1;
        return 0;
    }
    if (need <= b->cap) return 1;
    cap = b->cap ? b->cap : 64;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) {
            cap = need;
            break;
        }
        cap *= 2;
    }
    p = (char *)fti_realloc(b->data, cap);
    if (!p) {
        b->oom = 1;
        return 0;
    }
    b->data = p;
    b->cap = cap;
    return 1;
}

static void fti__buf_append_grow(fti_buf *b, const void *p, size_t n) {
    if (!fti_buf_reserve(b, n)) return;
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0;
}

/* fti_buf_append for the parts' hot loops (the cleaner appends a word at a time): inlined, and
 * the bytes that fit go in without fti_buf_reserve's overflow-checked sizes (cap > len: the
 * NUL's byte). n 0 takes the other path, so a NULL p with it never reaches memcpy (UB, UBSan
 * says); tested without an unsigned wrap (make check's uint-overflow build flags one). */
static inline void fti__buf_put(fti_buf *b, const void *p, size_t n) {
    if (b->data && !b->oom && n && n < b->cap - b->len) {
        memcpy(b->data + b->len, p, n);
        b->len += n;
        b->data[b->len] = 0;
    } else {
        fti__buf_append_grow(b, p, n);
    }
}

FTIDEF void fti_buf_append(fti_buf *b, const void *p, size_t n) { fti__buf_put(b, p, n); }

FTIDEF void fti_buf_puts(fti_buf *b, const char *s) { fti_buf_append(b, s, strlen(s)); }

FTIDEF void fti_buf_putc(fti_buf *b, char c) { fti_buf_append(b, &c, 1); }

FTIDEF void fti_buf_printf(fti_buf *b, const char *fmt, ...) {
    va_list ap;
    int n;
    char small[256];
    va_start(ap, fmt);
    n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof small) {
        fti_buf_append(b, small, (size_t)n);
        return;
    }
    if (!fti_buf_reserve(b, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

FTIDEF void fti_buf_free(fti_buf *b) {
    if (!b) return;
    fti_free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    b->oom = 0;
}

/* === base: reader === */

FTIDEF fti_reader fti_reader_make(const void *p, size_t len) {
    fti_reader r;
    r.p = (const unsigned char *)p;
    r.len = p ? len : 0;
    r.pos = 0;
    r.err = 0;
    return r;
}

FTIDEF const void *fti_read_bytes(fti_reader *r, size_t n) {
    const void *p;
    if (r->err || r->pos > r->len || n > r->len - r->pos) {
        r->err = 1;
        return NULL;
    }
    p = r->p + r->pos;
    r->pos += n;
    return p;
}

FTIDEF size_t fti_reader_left(const fti_reader *r) {
    return r->err || r->pos > r->len ? 0 : r->len - r->pos;
}

FTIDEF uint8_t fti_read_u8(fti_reader *r) {
    const unsigned char *p = (const unsigned char *)fti_read_bytes(r, 1);
    return p ? p[0] : 0;
}

FTIDEF uint16_t fti_read_u16(fti_reader *r) {
    const unsigned char *p = (const unsigned char *)fti_read_bytes(r, 2);
    return p ? (uint16_t)(p[0] | (p[1] << 8)) : 0;
}

FTIDEF uint32_t fti_load_u32(const void *src) {
    const unsigned char *p = (const unsigned char *)src;
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

FTIDEF uint64_t fti_load_u64(const void *src) {
    const unsigned char *p = (const unsigned char *)src;
    return (uint64_t)fti_load_u32(p) | ((uint64_t)fti_load_u32(p + 4) << 32);
}

FTIDEF uint32_t fti_read_u32(fti_reader *r) {
    const void *p = fti_read_bytes(r, 4);
    return p ? fti_load_u32(p) : 0;
}

FTIDEF uint64_t fti_read_u64(fti_reader *r) {
    const void *p = fti_read_bytes(r, 8);
    return p ? fti_load_u64(p) : 0;
}

FTIDEF int32_t fti_read_i32(fti_reader *r) {
    uint32_t u = fti_read_u32(r);
    int32_t v;
    memcpy(&v, &u, 4);
    return v;
}

FTIDEF int64_t fti_read_i64(fti_reader *r) {
    uint64_t u = fti_read_u64(r);
    int64_t v;
    memcpy(&v, &u, 8);
    return v;
}

FTIDEF float fti_read_f32(fti_reader *r) {
    uint32_t u = fti_read_u32(r);
    float v;
    memcpy(&v, &u, 4);
    return v;
}

FTIDEF double fti_read_f64(fti_reader *r) {
    uint64_t u = fti_read_u64(r);
    double v;
    memcpy(&v, &u, 8);
    return v;
}

FTIDEF void fti_store_u16(void *dst, uint16_t v) {
    unsigned char *p = (unsigned char *)dst;
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

FTIDEF void fti_store_u32(void *dst, uint32_t v) {
    unsigned char *p = (unsigned char *)dst;
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

FTIDEF void fti_store_u64(void *dst, uint64_t v) {
    fti_store_u32(dst, (uint32_t)v);
    fti_store_u32((unsigned char *)dst + 4, (uint32_t)(v >> 32));
}

FTIDEF void fti_store_f32(void *dst, float v) {
    uint32_t u;
    memcpy(&u, &v, 4);
    fti_store_u32(dst, u);
}

/* === base: the I/O layer (every system call that touches files goes through here) === */
/*
 * Under FTI_TESTING a fault can be injected into the k-th call of chosen operations: fail with an
 * errno (EIO, ENOSPC, EINTR, ...), once or persistently, or make a write/read short. Callers
 * retry EINTR and loop on short transfers, so those two must not change any result.
 */
enum {
    FTI__IO_OPEN = 1,
    FTI__IO_READ = 2,
    FTI__IO_WRITE = 4,
    FTI__IO_FSYNC = 8,
    FTI__IO_RENAME = 16,
    FTI__IO_CLOSE = 32,
    FTI__IO_MKDIR = 64,
    FTI__IO_ALL = 127,
    /* with OPEN/READ/WRITE: a call on a scratch file (an unnamed temp file, such as the streaming
     * ingest's index text and postings). Counted only when the mask has this bit too, so that the
     * crash-step loops over a commit's files (FTI__IO_ALL) do not see them and the I/O fault
     * loops (FTI__IO_ALL | FTI__IO_SCRATCH) do. */
    FTI__IO_SCRATCH = 128
};

#ifdef FTI_TESTING
typedef struct fti__io_fault_state {
    int ops;        /* which operations count (FTI__IO_* mask); 0 = off */
    long at;        /* fail the at-th counted call (1-based) */
    long count;     /* counted calls so far */
    int err;        /* errno to fail with; 0 with short_io = a short transfer */
    int persistent; /* also fail every later counted call */
    int short_io;   /* transfer at most half (at least 1 byte) instead of failing */
    int crash;      /* _exit(77) instead of failing: a crash just before that step */
    long fired;     /* how many faults were injected */
} fti__io_fault_state;
static fti__io_fault_state fti__io_fault;

FTI__UNUSED static void fti__io_fault_set(int ops, long at, int err, int persistent, int short_io) {
    memset(&fti__io_fault, 0, sizeof fti__io_fault);
    fti__io_fault.ops = ops;
    fti__io_fault.at = at;
    fti__io_fault.err = err;
    fti__io_fault.persistent = persistent;
    fti__io_fault.short_io = short_io;
}

/* Crash (the process ends with _exit(77)) just before the at-th counted call of ops. */
FTI__UNUSED static void fti__io_crash_set(int ops, long at) {
    fti__io_fault_set(ops, at, 0, 0, 0);
    fti__io_fault.crash = 1;
}

/* 0: proceed; 1: fail with errno set; 2: short transfer. */
static int fti__io_check(int op) {
    fti__io_fault_state *f = &fti__io_fault;
    if ((f->ops & op) != op) return 0;
    f->count++;
    if (f->count == f->at || (f->persistent && f->count > f->at)) {
        f->fired++;
        if (f->crash) _exit(77);
        if (f->short_io && (op & (FTI__IO_WRITE | FTI__IO_READ))) return 2;
        errno = f->err ? f->err : EIO;
        return 1;
    }
    return 0;
}
#define FTI__IO_CHECK(op, fail_value)        \
    do {                                     \
        int fti__c = fti__io_check(op);      \
        if (fti__c == 1) return (fail_value); \
        if (fti__c == 2 && n > 1) n /= 2;    \
    } while (0)
#define FTI__IO_CHECK_NOSIZE(op, fail_value)  \
    do {                                      \
        if (fti__io_check(op) == 1) return (fail_value); \
    } while (0)
#else
#define FTI__IO_CHECK(op, fail_value) ((void)0)
#define FTI__IO_CHECK_NOSIZE(op, fail_value) ((void)0)
#endif

static int fti__sys_open(const char *path, int flags, int mode) {
    FTI__IO_CHECK_NOSIZE(FTI__IO_OPEN, -1);
    return open(path, flags | O_CLOEXEC, mode);
}

static long fti__sys_read(int fd, void *p, size_t n) {
    FTI__IO_CHECK(FTI__IO_READ, -1);
    return (long)read(fd, p, n);
}

static long fti__sys_write(int fd, const void *p, size_t n) {
    FTI__IO_CHECK(FTI__IO_WRITE, -1);
    return (long)write(fd, p, n);
}

/* Positioned reads; op is FTI__IO_READ, or FTI__IO_READ | FTI__IO_SCRATCH on a scratch file. */
FTI__UNUSED static long fti__sys_pread(int fd, void *p, size_t n, uint64_t off, int op) {
    (void)op;
    FTI__IO_CHECK(op, -1);
    return (long)pread(fd, p, n, (off_t)off);
}

/* A scratch file (read-write, emptied), and writes at its end. */
FTI__UNUSED static int fti__sys_open_scratch(const char *path) {
    FTI__IO_CHECK_NOSIZE(FTI__IO_OPEN | FTI__IO_SCRATCH, -1);
    return open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
}

FTI__UNUSED static long fti__sys_write_scratch(int fd, const void *p, size_t n) {
    FTI__IO_CHECK(FTI__IO_WRITE | FTI__IO_SCRATCH, -1);
    return (long)write(fd, p, n);
}

FTI__UNUSED static long fti__sys_pwrite(int fd, const void *p, size_t n, uint64_t off) {
    FTI__IO_CHECK(FTI__IO_WRITE, -1);
    return (long)pwrite(fd, p, n, (off_t)off);
}

static int fti__sys_fsync(int fd) {
    FTI__IO_CHECK_NOSIZE(FTI__IO_FSYNC, -1);
    return fsync(fd);
}

static int fti__sys_rename(const char *from, const char *to) {
    FTI__IO_CHECK_NOSIZE(FTI__IO_RENAME, -1);
    return rename(from, to);
}

static int fti__sys_close(int fd) {
#ifdef FTI_TESTING
    /* an injected close failure still releases the descriptor, as Linux's close does on EIO */
    if (fti__io_check(FTI__IO_CLOSE) == 1) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
#endif
    return close(fd);
}

static int fti__sys_mkdir(const char *path) {
    FTI__IO_CHECK_NOSIZE(FTI__IO_MKDIR, -1);
    return mkdir(path, 0755);
}

static fti_result fti__errno_result(int e) {
    switch (e) {
    case ENOENT:
    case ENOTDIR:
        return FTI_ERR_NOT_FOUND;
    case ENOSPC:
#ifdef EDQUOT
    case EDQUOT:
#endif
        return FTI_ERR_NOSPACE;
    case ENOMEM:
        return FTI_ERR_NOMEM;
    case EEXIST:
        return FTI_ERR_EXISTS;
    default:
        return FTI_ERR_IO;
    }
}

/* The parts' lock files (the store's, the registry's, a training run's): opens (creating) path
 * and flocks it, shared or exclusive, waiting for it (EINTR retried) or not. FTI_OK with *fd to
 * close; FTI_ERR_BUSY when not waiting and another process holds it, err left for the caller
 * to say who that is; other errors name path (*fd -1). */
FTI__UNUSED static fti_result fti__lock_file(const char *path, int shared, int wait, int *fd,
                                             fti_error *err) {
    int rc;
    *fd = fti__sys_open(path, O_RDWR | O_CREAT, 0644);
    if (*fd < 0)
        return fti_error_set(err, fti__errno_result(errno), "%s: cannot open: %s", path,
                             strerror(errno));
    do rc = flock(*fd, (shared ? LOCK_SH : LOCK_EX) | (wait ? 0 : LOCK_NB));
    while (rc != 0 && wait && errno == EINTR);
    if (rc == 0) return FTI_OK;
    rc = errno;
    close(*fd);
    *fd = -1;
    if (!wait && rc == EWOULDBLOCK) return FTI_ERR_BUSY;
    return fti_error_set(err, FTI_ERR_IO, "%s: cannot lock: %s", path, strerror(rc));
}

/* Writes all n bytes, retrying EINTR and short writes. Returns 0 or -1 with errno. */
static int fti__write_all(int fd, const void *data, size_t n) {
    const unsigned char *p = (const unsigned char *)data;
    while (n > 0) {
        size_t chunk = n > ((size_t)1 << 30) ? ((size_t)1 << 30) : n;
        long w = fti__sys_write(fd, p, chunk);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (w == 0) {
            errno = EIO;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads exactly n bytes unless EOF comes first; returns bytes read or -1 with errno. */
static long fti__read_full(int fd, void *data, size_t n) {
    unsigned char *p = (unsigned char *)data;
    size_t got = 0;
    while (got < n) {
        size_t chunk = n - got > ((size_t)1 << 30) ? ((size_t)1 << 30) : n - got;
        long r = fti__sys_read(fd, p + got, chunk);
        if (r < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (r == 0) break;
        got += (size_t)r;
    }
    return (long)got;
}

/* === base: files === */

FTIDEF fti_result fti_file_read(const char *path, size_t max_bytes, void **out_data,
                                size_t *out_len, fti_error *err) {
    int fd;
    struct stat st;
    size_t cap, len = 0;
    char *buf;
    if (!path || !out_data) return fti_error_set(err, FTI_ERR_INVALID, "fti_file_read: no path");
    *out_data = NULL;
    if (out_len) *out_len = 0;
    fd = fti__sys_open(path, O_RDONLY, 0);
    if (fd < 0)
        return fti_error_set(err, fti__errno_result(errno), "%s: cannot open: %s", path,
                             strerror(errno));
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return fti_error_set(err, FTI_ERR_IO, "%s: not a regular file", path);
    }
    if (max_bytes && (uint64_t)st.st_size > (uint64_t)max_bytes) {
        close(fd);
        return fti_error_set(err, FTI_ERR_LIMIT, "%s: %lld bytes is over the limit of %zu bytes",
                             path, (long long)st.st_size, max_bytes);
    }
    if ((uint64_t)st.st_size >= (uint64_t)SIZE_MAX) {
        close(fd);
        return fti_error_set(err, FTI_ERR_LIMIT, "%s: too large for this machine", path);
    }
    /* The size may change while reading: read until EOF, growing, within the cap. */
    cap = (size_t)st.st_size + 1;
    buf = (char *)fti_malloc(cap + 1);
    if (!buf) {
        close(fd);
        return fti_error_set(err, FTI_ERR_NOMEM, "%s: out of memory for %zu bytes", path, cap);
    }
    for (;;) {
        long r = fti__read_full(fd, buf + len, cap - len);
        char *nb;
        if (r < 0) {
            int e = errno;
            fti_free(buf);
            close(fd);
            return fti_error_set(err, FTI_ERR_IO, "%s: read failed: %s", path, strerror(e));
        }
        len += (size_t)r;
        if (len < cap) break;
        if (max_bytes && len > max_bytes) {
            fti_free(buf);
            close(fd);
            return fti_error_set(err, FTI_ERR_LIMIT, "%s: over the limit of %zu bytes", path,
                                 max_bytes);
        }
        if (cap > SIZE_MAX / 2 - 1) {
            fti_free(buf);
            close(fd);
            return fti_error_set(err, FTI_ERR_LIMIT, "%s: too large", path);
        }
        nb = (char *)fti_realloc(buf, cap * 2 + 1);
        if (!nb) {
            fti_free(buf);
            close(fd);
            return fti_error_set(err, FTI_ERR_NOMEM, "%s: out of memory", path);
        }
        buf = nb;
        cap *= 2;
    }
    close(fd);
    if (max_bytes && len > max_bytes) {
        fti_free(buf);
        return fti_error_set(err, FTI_ERR_LIMIT, "%s: over the limit of %zu bytes", path,
                             max_bytes);
    }
    buf[len] = 0;
    *out_data = buf;
    if (out_len) *out_len = len;
    return FTI_OK;
}

FTIDEF fti_result fti_map_open(fti_map *m, const char *path, fti_error *err) {
    int fd;
    struct stat st;
    if (!m || !path) return fti_error_set(err, FTI_ERR_INVALID, "fti_map_open: no path");
    m->data = NULL;
    m->len = 0;
    m->is_mmap = 0;
    fd = fti__sys_open(path, O_RDONLY, 0);
    if (fd < 0)
        return fti_error_set(err, fti__errno_result(errno), "%s: cannot open: %s", path,
                             strerror(errno));
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return fti_error_set(err, FTI_ERR_IO, "%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size >= (uint64_t)SIZE_MAX) {
        close(fd);
        return fti_error_set(err, FTI_ERR_LIMIT, "%s: too large to map", path);
    }
    m->len = (size_t)st.st_size;
#ifndef FTI_NO_MMAP
    if (m->len > 0) {
        void *p = mmap(NULL, m->len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p != MAP_FAILED) {
            close(fd);
            m->data = p;
            m->is_mmap = 1;
            return FTI_OK;
        }
        /* fall back to reading */
    }
#endif
    {
        void *buf = fti_malloc(m->len + 1);
        long r;
        if (!buf) {
            close(fd);
            m->len = 0;
            return fti_error_set(err, FTI_ERR_NOMEM, "%s: out of memory", path);
        }
        r = fti__read_full(fd, buf, m->len);
        if (r < 0 || (size_t)r != m->len) {
            int e = errno;
            fti_free(buf);
            close(fd);
            m->len = 0;
            return fti_error_set(err, FTI_ERR_IO, "%s: read failed: %s", path,
                                 r < 0 ? strerror(e) : "file shrank");
        }
        ((char *)buf)[m->len] = 0;
        close(fd);
        m->data = buf;
        return FTI_OK;
    }
}

FTIDEF void fti_map_close(fti_map *m) {
    if (!m || !m->data) return;
#ifndef FTI_NO_MMAP
    if (m->is_mmap) {
        munmap((void *)m->data, m->len);
    } else
#endif
    {
        fti_free((void *)m->data);
    }
    m->data = NULL;
    m->len = 0;
    m->is_mmap = 0;
}

FTIDEF int fti_map_drop(const fti_map *m, size_t off, size_t len) {
#if !defined(FTI_NO_MMAP) && defined(MADV_DONTNEED)
    uintptr_t a, e, pg = 4096;
    if (!m || !m->is_mmap || off > m->len) return 0;
    if (!len || off == m->len) return 1;
    if (len > m->len - off) len = m->len - off;
    a = ((uintptr_t)m->data + off + pg - 1) & ~(pg - 1);
    e = ((uintptr_t)m->data + off + len) & ~(pg - 1);
    if (off + len == m->len) e = ((uintptr_t)m->data + m->len + pg - 1) & ~(pg - 1);
    if (e > a) madvise((void *)a, (size_t)(e - a), MADV_DONTNEED);
    return 1;
#else
    (void)m, (void)off, (void)len;
    return 0; /* nothing can leave memory here (callers keep one copy) */
#endif
}

/* Directory part of path ("." when none), as a new string. */
static char *fti__path_dir(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return fti_strdup(".");
    if (slash == path) return fti_strdup("/");
    return fti_strndup(path, (size_t)(slash - path));
}

FTIDEF fti_result fti_dir_sync(const char *dir, fti_error *err) {
    int fd = fti__sys_open(dir, O_RDONLY, 0);
    if (fd < 0)
        return fti_error_set(err, fti__errno_result(errno), "%s: cannot open directory: %s", dir,
                             strerror(errno));
    if (fti__sys_fsync(fd) != 0 && errno != EINVAL && errno != EROFS) {
        int e = errno;
        close(fd);
        return fti_error_set(err, fti__errno_result(e), "%s: fsync of directory failed: %s", dir,
                             strerror(e));
    }
    close(fd);
    return FTI_OK;
}

FTIDEF fti_result fti_afile_open(fti_afile *f, const char *path, fti_error *err) {
    size_t n;
    int attempt;
    struct stat st;
    if (!f || !path || !*path)
        return fti_error_set(err, FTI_ERR_INVALID, "fti_afile_open: no path");
    f->fd = -1;
    f->path = f->tmp_path = NULL;
    /* the rename would put a file where a device, FIFO or directory was (as root, /dev/full) */
    if (lstat(path, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode)) {
        f->status = FTI_ERR_INVALID;
        return fti_error_set(err, FTI_ERR_INVALID, "%s: exists and is not a regular file (%s): "
                             "not replaced", path,
                             S_ISDIR(st.st_mode) ? "a directory" : "a device, FIFO or socket");
    }
    f->status = FTI_OK;
    f->path = fti_strdup(path);
    n = strlen(path) + 64;
    f->tmp_path = (char *)fti_malloc(n);
    if (!f->path || !f->tmp_path) {
        fti_free(f->path);
        fti_free(f->tmp_path);
        f->path = f->tmp_path = NULL;
        f->status = FTI_ERR_NOMEM;
        return fti_error_set(err, FTI_ERR_NOMEM, "%s: out of memory", path);
    }
    for (attempt = 0; attempt < 100; attempt++) {
        snprintf(f->tmp_path, n, "%s.tmp.%ld.%llu", path, (long)getpid(),
                 (unsigned long long)(fti_time_ns() % 1000000007ull) + (unsigned long long)attempt);
        f->fd = fti__sys_open(f->tmp_path, O_WRONLY | O_CREAT | O_EXCL, 0644);
        if (f->fd >= 0 || errno != EEXIST) break;
    }
    if (f->fd < 0) {
        int e = errno;
        fti_result r = fti__errno_result(e);
        if (r == FTI_ERR_EXISTS) r = FTI_ERR_IO;
        fti_error_set(err, r, "%s: cannot create temp file: %s", path, strerror(e));
        fti_free(f->path);
        fti_free(f->tmp_path);
        f->path = f->tmp_path = NULL;
        f->status = r;
        return r;
    }
    return FTI_OK;
}

FTIDEF fti_result fti_afile_write(fti_afile *f, const void *data, size_t n_bytes) {
    if (!f) return FTI_ERR_INVALID;
    if (f->status != FTI_OK) return f->status;
    if (f->fd < 0) return f->status = FTI_ERR_INVALID;
    if (fti__write_all(f->fd, data, n_bytes) != 0) f->status = fti__errno_result(errno);
    return f->status;
}

FTIDEF void fti_afile_abort(fti_afile *f) {
    if (!f) return;
    if (f->fd >= 0) close(f->fd);
    f->fd = -1;
    if (f->tmp_path) unlink(f->tmp_path);
    fti_free(f->path);
    fti_free(f->tmp_path);
    f->path = f->tmp_path = NULL;
}

FTIDEF fti_result fti_afile_commit(fti_afile *f, fti_error *err) {
    fti_result r;
    char *dir;
    if (!f || !f->path) return fti_error_set(err, FTI_ERR_INVALID, "fti_afile_commit: not open");
    if (f->status != FTI_OK) {
        r = fti_error_set(err, f->status, "%s: write failed: %s", f->path,
                          fti_result_str(f->status));
        fti_afile_abort(f);
        return r;
    }
    /* A failed fsync means the data may be lost: fail, never retry into "success". */
    if (fti__sys_fsync(f->fd) != 0) {
        int e = errno;
        r = fti_error_set(err, fti__errno_result(e), "%s: fsync failed: %s", f->path, strerror(e));
        fti_afile_abort(f);
        return r;
    }
    if (fti__sys_close(f->fd) != 0) {
        int e = errno;
        f->fd = -1;
        r = fti_error_set(err, fti__errno_result(e), "%s: close failed: %s", f->path, strerror(e));
        fti_afile_abort(f);
        return r;
    }
    f->fd = -1;
    dir = fti__path_dir(f->path);
    if (!dir) {
        r = fti_error_set(err, FTI_ERR_NOMEM, "%s: out of memory", f->path);
        fti_afile_abort(f);
        return r;
    }
    if (fti__sys_rename(f->tmp_path, f->path) != 0) {
        int e = errno;
        r = fti_error_set(err, fti__errno_result(e), "%s: rename failed: %s", f->path, strerror(e));
        fti_free(dir);
        fti_afile_abort(f);
        return r;
    }
    r = fti_dir_sync(dir, err);
    fti_free(dir);
    fti_free(f->path);
    fti_free(f->tmp_path);
    f->path = f->tmp_path = NULL;
    return r;
}

FTIDEF fti_result fti_file_write_atomic(const char *path, const void *data, size_t n_bytes,
                                        fti_error *err) {
    fti_afile f;
    fti_result r = fti_afile_open(&f, path, err);
    if (r != FTI_OK) return r;
    fti_afile_write(&f, data, n_bytes);
    return fti_afile_commit(&f, err);
}

FTIDEF int fti_path_exists(const char *path) {
    struct stat st;
    return path && stat(path, &st) == 0;
}

FTIDEF int fti_path_is_dir(const char *path) {
    struct stat st;
    return path && stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

FTIDEF fti_result fti_mkdirs(const char *path, fti_error *err) {
    char *p;
    size_t i, n;
    if (!path || !*path) return fti_error_set(err, FTI_ERR_INVALID, "fti_mkdirs: empty path");
    p = fti_strdup(path);
    if (!p) return fti_error_set(err, FTI_ERR_NOMEM, "%s: out of memory", path);
    n = strlen(p);
    for (i = 1; i <= n; i++) {
        if (i == n || p[i] == '/') {
            char saved = p[i];
            p[i] = 0;
            if (!fti_path_is_dir(p) && fti__sys_mkdir(p) != 0 && errno != EEXIST) {
                int e = errno;
                fti_result r = fti_error_set(err, fti__errno_result(e),
                                             "%s: cannot create directory: %s", p, strerror(e));
                fti_free(p);
                return r;
            }
            if (!fti_path_is_dir(p)) {
                fti_result r = fti_error_set(err, FTI_ERR_IO, "%s: exists and is not a directory",
                                             p);
                fti_free(p);
                return r;
            }
            p[i] = saved;
        }
    }
    fti_free(p);
    return FTI_OK;
}

FTIDEF fti_result fti_file_remove(const char *path, fti_error *err) {
    if (unlink(path) != 0 && errno != ENOENT)
        return fti_error_set(err, fti__errno_result(errno), "%s: cannot remove: %s", path,
                             strerror(errno));
    return FTI_OK;
}

FTIDEF char *fti_path_join(const char *a, const char *b) {
    size_t na = strlen(a), nb = strlen(b), n;
    char *s;
    while (na > 1 && a[na - 1] == '/') na--;
    while (nb > 0 && b[0] == '/') {
        b++;
        nb--;
    }
    n = na + 1 + nb + 1;
    s = (char *)fti_malloc(n);
    if (!s) return NULL;
    memcpy(s, a, na);
    if (na > 0 && a[na - 1] != '/') s[na++] = '/';
    memcpy(s + na, b, nb);
    s[na + nb] = 0;
    return s;
}

FTIDEF const char *fti_path_base(const char *path) {
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

FTIDEF const char *fti_path_ext(const char *path) {
    const char *base = fti_path_base(path);
    const char *dot = strrchr(base, '.');
    return dot && dot != base ? dot + 1 : base + strlen(base);
}

static int fti__cmp_cstr(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static fti_result fti__walk(const char *path, int depth, fti_walk_fn fn, fti_walk_skip_fn skip,
                            void *user, fti_error *err) {
    struct stat st;
    DIR *d;
    struct dirent *e;
    char **names = NULL;
    size_t n = 0, cap = 0, i;
    fti_result r = FTI_OK;
    if ((depth == 0 ? stat(path, &st) : lstat(path, &st)) != 0)
        return fti_error_set(err, fti__errno_result(errno), "%s: %s", path, strerror(errno));
    if (S_ISREG(st.st_mode)) return fn(user, path, (uint64_t)st.st_size);
    if (!S_ISDIR(st.st_mode)) /* symlinks, devices, sockets: skipped, told to skip */
        return skip ? skip(user, path, S_ISLNK(st.st_mode)
                                           ? "a symbolic link, not followed (it may lead "
                                             "outside the folder: give its target as an input "
                                             "of its own)"
                                           : "not a regular file (a FIFO, socket or device)")
                    : FTI_OK;
    if (depth > FTI_WALK_MAX_DEPTH)
        return fti_error_set(err, FTI_ERR_LIMIT, "%s: directories nested deeper than %d", path,
                             FTI_WALK_MAX_DEPTH);
    d = opendir(path);
    if (!d)
        return fti_error_set(err, fti__errno_result(errno), "%s: cannot open directory: %s", path,
                             strerror(errno));
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 32;
            char **nn = (char **)fti_realloc(names, nc * sizeof *names);
            if (!nn) {
                r = FTI_ERR_NOMEM;
                break;
            }
            names = nn;
            cap = nc;
        }
        names[n] = fti_path_join(path, e->d_name);
        if (!names[n]) {
            r = FTI_ERR_NOMEM;
            break;
        }
        n++;
    }
    closedir(d);
    if (r == FTI_OK && n > 1) qsort(names, n, sizeof *names, fti__cmp_cstr);
    if (r != FTI_OK) fti_error_set(err, r, "%s: out of memory while listing", path);
    for (i = 0; i < n; i++) {
        if (r == FTI_OK) r = fti__walk(names[i], depth + 1, fn, skip, user, err);
        fti_free(names[i]);
    }
    fti_free(names);
    return r;
}

FTIDEF fti_result fti_walk(const char *root, fti_walk_fn fn, void *user, fti_error *err) {
    return fti_walk_skips(root, fn, NULL, user, err);
}

FTIDEF fti_result fti_walk_skips(const char *root, fti_walk_fn fn, fti_walk_skip_fn skip,
                                 void *user, fti_error *err) {
    if (!root || !fn) return fti_error_set(err, FTI_ERR_INVALID, "fti_walk: no root");
    return fti__walk(root, 0, fn, skip, user, err);
}

/* === base: SHA-256 (FIPS 180-4) === */

static const uint32_t fti__sha256_k[64] = {
    0x428a2f98u, 0x71374491u, 0xb5c0fbcfu, 0xe9b5dba5u, 0x3956c25bu, 0x59f111f1u, 0x923f82a4u,
    0xab1c5ed5u, 0xd807aa98u, 0x12835b01u, 0x243185beu, 0x550c7dc3u, 0x72be5d74u, 0x80deb1feu,
    0x9bdc06a7u, 0xc19bf174u, 0xe49b69c1u, 0xefbe4786u, 0x0fc19dc6u, 0x240ca1ccu, 0x2de92c6fu,
    0x4a7484aau, 0x5cb0a9dcu, 0x76f988dau, 0x983e5152u, 0xa831c66du, 0xb00327c8u, 0xbf597fc7u,
    0xc6e00bf3u, 0xd5a79147u, 0x06ca6351u, 0x14292967u, 0x27b70a85u, 0x2e1b2138u, 0x4d2c6dfcu,
    0x53380d13u, 0x650a7354u, 0x766a0abbu, 0x81c2c92eu, 0x92722c85u, 0xa2bfe8a1u, 0xa81a664bu,
    0xc24b8b70u, 0xc76c51a3u, 0xd192e819u, 0xd6990624u, 0xf40e3585u, 0x106aa070u, 0x19a4c116u,
    0x1e376c08u, 0x2748774cu, 0x34b0bcb5u, 0x391c0cb3u, 0x4ed8aa4au, 0x5b9cca4fu, 0x682e6ff3u,
    0x748f82eeu, 0x78a5636fu, 0x84c87814u, 0x8cc70208u, 0x90befffau, 0xa4506cebu, 0xbef9a3f7u,
    0xc67178f2u};

#define FTI__ROR32(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void fti__sha256_block(uint32_t h[8], const unsigned char *p) {
    uint32_t w[64], a, b, c, d, e, f, g, hh, t1, t2;
    int i;
    for (i = 0; i < 16; i++)
        w[i] = ((uint32_t)p[4 * i] << 24) | ((uint32_t)p[4 * i + 1] << 16) |
               ((uint32_t)p[4 * i + 2] << 8) | (uint32_t)p[4 * i + 3];
    for (i = 16; i < 64; i++) {
        uint32_t s0 = FTI__ROR32(w[i - 15], 7) ^ FTI__ROR32(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = FTI__ROR32(w[i - 2], 17) ^ FTI__ROR32(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (i = 0; i < 64; i++) {
        t1 = hh + (FTI__ROR32(e, 6) ^ FTI__ROR32(e, 11) ^ FTI__ROR32(e, 25)) +
             ((e & f) ^ (~e & g)) + fti__sha256_k[i] + w[i];
        t2 = (FTI__ROR32(a, 2) ^ FTI__ROR32(a, 13) ^ FTI__ROR32(a, 22)) +
             ((a & b) ^ (a & c) ^ (b & c));
        hh = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
    }
    h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e, h[5] += f, h[6] += g, h[7] += hh;
}

FTIDEF void fti_sha256_init(fti_sha256 *s) {
    static const uint32_t iv[8] = {0x6a09e667u, 0xbb67ae85u, 0x3c6ef372u, 0xa54ff53au,
                                   0x510e527fu, 0x9b05688cu, 0x1f83d9abu, 0x5be0cd19u};
    memcpy(s->h, iv, sizeof iv);
    s->n_bytes = 0;
    s->block_len = 0;
}

FTIDEF void fti_sha256_update(fti_sha256 *s, const void *data, size_t n_bytes) {
    const unsigned char *p = (const unsigned char *)data;
    s->n_bytes += n_bytes;
    if (s->block_len) {
        size_t take = 64 - s->block_len < n_bytes ? 64 - s->block_len : n_bytes;
        memcpy(s->block + s->block_len, p, take);
        s->block_len += take;
        p += take;
        n_bytes -= take;
        if (s->block_len < 64) return;
        fti__sha256_block(s->h, s->block);
        s->block_len = 0;
    }
    while (n_bytes >= 64) {
        fti__sha256_block(s->h, p);
        p += 64;
        n_bytes -= 64;
    }
    if (n_bytes) {
        memcpy(s->block, p, n_bytes);
        s->block_len = n_bytes;
    }
}

FTIDEF void fti_sha256_final(fti_sha256 *s, unsigned char out[32]) {
    uint64_t bits = s->n_bytes * 8;
    int i;
    s->block[s->block_len++] = 0x80;
    if (s->block_len > 56) {
        memset(s->block + s->block_len, 0, 64 - s->block_len);
        fti__sha256_block(s->h, s->block);
        s->block_len = 0;
    }
    memset(s->block + s->block_len, 0, 56 - s->block_len);
    for (i = 0; i < 8; i++) s->block[56 + i] = (unsigned char)(bits >> (56 - 8 * i));
    fti__sha256_block(s->h, s->block);
    for (i = 0; i < 8; i++) {
        out[4 * i] = (unsigned char)(s->h[i] >> 24);
        out[4 * i + 1] = (unsigned char)(s->h[i] >> 16);
        out[4 * i + 2] = (unsigned char)(s->h[i] >> 8);
        out[4 * i + 3] = (unsigned char)s->h[i];
    }
}

FTIDEF void fti_sha256_buf(const void *data, size_t n_bytes, unsigned char out[32]) {
    fti_sha256 s;
    fti_sha256_init(&s);
    fti_sha256_update(&s, data, n_bytes);
    fti_sha256_final(&s, out);
}

FTIDEF void fti_sha256_hex(const unsigned char digest[32], char hex[65]) {
    static const char digits[] = "0123456789abcdef";
    int i;
    for (i = 0; i < 32; i++) {
        hex[2 * i] = digits[digest[i] >> 4];
        hex[2 * i + 1] = digits[digest[i] & 15];
    }
    hex[64] = 0;
}

FTIDEF fti_result fti_sha256_file(const char *path, unsigned char out[32], fti_error *err) {
    unsigned char buf[65536];
    fti_sha256 s;
    int fd;
    if (!path) return fti_error_set(err, FTI_ERR_INVALID, "fti_sha256_file: no path");
    fd = fti__sys_open(path, O_RDONLY, 0);
    if (fd < 0)
        return fti_error_set(err, fti__errno_result(errno), "%s: cannot open: %s", path,
                             strerror(errno));
    fti_sha256_init(&s);
    for (;;) {
        long r = fti__sys_read(fd, buf, sizeof buf);
        if (r < 0) {
            int e = errno;
            if (e == EINTR) continue;
            close(fd);
            return fti_error_set(err, FTI_ERR_IO, "%s: read failed: %s", path, strerror(e));
        }
        if (r == 0) break;
        fti_sha256_update(&s, buf, (size_t)r);
    }
    close(fd);
    fti_sha256_final(&s, out);
    return FTI_OK;
}

/* A 64-bit hash: 8-byte lanes multiplied into two accumulators, then a strong finalizer.
 * Not cryptographic; stable across platforms (explicit little-endian loads). */
static uint64_t fti__mix64(uint64_t x) {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

FTIDEF uint64_t fti_hash64(const void *data, size_t n_bytes, uint64_t seed) {
    const unsigned char *p = (const unsigned char *)data;
    uint64_t h1 = seed ^ 0x9e3779b97f4a7c15ull, h2 = (seed << 1) ^ 0xc2b2ae3d27d4eb4full;
    size_t n = n_bytes;
    while (n >= 16) {
        uint64_t a = fti_load_u64(p), b = fti_load_u64(p + 8);
        h1 = (h1 ^ (a * 0x87c37b91114253d5ull)) * 0x4cf5ad432745937full;
        h1 = (h1 << 29) | (h1 >> 35);
        h2 = (h2 ^ (b * 0x4cf5ad432745937full)) * 0x87c37b91114253d5ull;
        h2 = (h2 << 31) | (h2 >> 33);
        p += 16;
        n -= 16;
    }
    if (n >= 8) {
        h1 ^= fti_load_u64(p) * 0x87c37b91114253d5ull;
        h1 = ((h1 << 27) | (h1 >> 37)) * 0x9e3779b97f4a7c15ull;
        p += 8;
        n -= 8;
    }
    if (n > 0) {
        uint64_t t = 0;
        size_t i;
        for (i = 0; i < n; i++) t |= (uint64_t)p[i] << (8 * i);
        h2 ^= t * 0x4cf5ad432745937full;
        h2 = ((h2 << 33) | (h2 >> 31)) * 0x9e3779b97f4a7c15ull;
    }
    return fti__mix64(h1 ^ fti__mix64(h2 ^ (uint64_t)n_bytes));
}

/* === base: UTF-8 === */

FTIDEF size_t fti_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp, int *ok) {
    unsigned b0;
    size_t need, i;
    uint32_t c;
    unsigned lo = 0x80, hi = 0xBF;
    if (ok) *ok = 0;
    if (cp) *cp = 0xFFFD;
    if (n == 0) return 0;
    b0 = s[0];
    if (b0 < 0x80) {
        if (cp) *cp = b0;
        if (ok) *ok = 1;
        return 1;
    }
    if (b0 >= 0xC2 && b0 <= 0xDF) {
        need = 1;
        c = b0 & 0x1F;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
        need = 2;
        c = b0 & 0x0F;
        if (b0 == 0xE0) lo = 0xA0;
        if (b0 == 0xED) hi = 0x9F; /* no surrogates */
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
        need = 3;
        c = b0 & 0x07;
        if (b0 == 0xF0) lo = 0x90;
        if (b0 == 0xF4) hi = 0x8F;
    } else {
        return 1;
    }
    for (i = 1; i <= need; i++) {
        unsigned b;
        if (i >= n) return i; /* truncated: consume the valid prefix */
        b = s[i];
        if (b < lo || b > hi) return i;
        lo = 0x80;
        hi = 0xBF;
        c = (c << 6) | (b & 0x3F);
    }
    if (cp) *cp = c;
    if (ok) *ok = 1;
    return need + 1;
}

FTIDEF size_t fti_utf8_encode(uint32_t cp, unsigned char out[4]) {
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) cp = 0xFFFD;
    if (cp < 0x80) {
        out[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (unsigned char)(0xC0 | (cp >> 6));
        out[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (unsigned char)(0xE0 | (cp >> 12));
        out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (unsigned char)(0xF0 | (cp >> 18));
    out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

FTIDEF size_t fti_utf8_valid_prefix(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        int ok;
        size_t k;
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        k = fti_utf8_decode(s + i, n - i, NULL, &ok);
        if (!ok) return i;
        i += k;
    }
    return n;
}

FTIDEF size_t fti_utf8_repair(const unsigned char *s, size_t n, fti_buf *out) {
    size_t i = 0, start = 0, bad = 0;
    static const unsigned char fffd[3] = {0xEF, 0xBF, 0xBD};
    while (i < n) {
        int ok;
        size_t k;
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        k = fti_utf8_decode(s + i, n - i, NULL, &ok);
        if (ok) {
            i += k;
            continue;
        }
        fti_buf_append(out, s + start, i - start);
        fti_buf_append(out, fffd, 3);
        bad++;
        i += k;
        start = i;
    }
    fti_buf_append(out, s + start, n - start);
    return bad;
}

FTIDEF size_t fti_utf8_incomplete_tail(const unsigned char *s, size_t n) {
    size_t back, i;
    for (back = 1; back <= 3 && back <= n; back++) {
        unsigned b = s[n - back];
        if ((b & 0xC0) == 0x80) continue; /* continuation: look further back */
        if (b < 0xC2 || b > 0xF4) return 0;
        {
            size_t need = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : 2;
            int ok;
            uint32_t cp;
            if (back >= need) return 0;
            /* Valid so far? Decoding the partial sequence consumes all of it only if it is a
             * correct prefix. */
            i = fti_utf8_decode(s + n - back, back, &cp, &ok);
            return i == back ? back : 0;
        }
    }
    return 0;
}

/* === base: JSON reader === */

typedef struct fti__json_block {
    struct fti__json_block *next;
    size_t used;
    size_t cap;
    /* data follows, 16-aligned */
} fti__json_block;

struct fti_json_doc {
    fti__json_block *blocks;
    fti_json *root;
};

typedef struct fti__json_parser {
    const unsigned char *s;
    size_t n;
    size_t pos;
    fti_json_doc *doc;
    size_t max_depth;
    size_t max_string;
    size_t max_nodes;
    size_t n_nodes;
    fti_error *err;
    fti_result res;
} fti__json_parser;

static void *fti__json_alloc(fti__json_parser *p, size_t n) {
    fti__json_block *b = p->doc->blocks;
    size_t need = (n + 15) & ~(size_t)15;
    if (n > SIZE_MAX - 64) return NULL;
    if (!b || b->cap - b->used < need) {
        size_t cap = need > 16384 ? need : 16384;
        size_t hdr = (sizeof(fti__json_block) + 15) & ~(size_t)15;
        fti__json_block *nb = (fti__json_block *)fti_malloc(hdr + cap);
        if (!nb) return NULL;
        nb->cap = cap;
        nb->used = 0;
        nb->next = b;
        p->doc->blocks = nb;
        b = nb;
    }
    {
        size_t hdr = (sizeof(fti__json_block) + 15) & ~(size_t)15;
        void *r = (unsigned char *)b + hdr + b->used;
        b->used += need;
        return r;
    }
}

static int fti__json_fail(fti__json_parser *p, fti_result code, const char *what) {
    if (p->res == FTI_OK) {
        p->res = code;
        fti_error_set(p->err, code, "offset %zu: %s", p->pos, what);
    }
    return 0;
}

static void fti__json_ws(fti__json_parser *p) {
    while (p->pos < p->n) {
        unsigned char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        p->pos++;
    }
}

static fti_json *fti__json_node(fti__json_parser *p, fti_json_type t) {
    fti_json *j;
    if (++p->n_nodes > p->max_nodes) {
        fti__json_fail(p, FTI_ERR_LIMIT, "too many values");
        return NULL;
    }
    j = (fti_json *)fti__json_alloc(p, sizeof *j);
    if (!j) {
        fti__json_fail(p, FTI_ERR_NOMEM, "out of memory");
        return NULL;
    }
    memset(j, 0, sizeof *j);
    j->type = t;
    return j;
}

static int fti__hex4(const unsigned char *s, uint32_t *out) {
    uint32_t v = 0;
    int i;
    for (i = 0; i < 4; i++) {
        unsigned c = s[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= c - '0';
        else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
        else return 0;
    }
    *out = v;
    return 1;
}

/* Parses a string at p->pos (at the opening quote); stores the unescaped bytes. */
static int fti__json_string(fti__json_parser *p, const char **out, size_t *out_len) {
    size_t start = ++p->pos, i, raw_len, k = 0;
    char *dst;
    /* First pass: find the closing quote and check the raw length. */
    for (i = start; i < p->n; i++) {
        unsigned char c = p->s[i];
        if (c == '"') break;
        if (c == '\\') {
            i++;
            continue;
        }
        if (c < 0x20) {
            p->pos = i;
            return fti__json_fail(p, FTI_ERR_FORMAT, "control character in string");
        }
    }
    if (i >= p->n) {
        p->pos = p->n;
        return fti__json_fail(p, FTI_ERR_FORMAT, "unterminated string");
    }
    raw_len = i - start;
    if (raw_len > p->max_string) return fti__json_fail(p, FTI_ERR_LIMIT, "string too long");
    dst = (char *)fti__json_alloc(p, raw_len + 1);
    if (!dst) return fti__json_fail(p, FTI_ERR_NOMEM, "out of memory");
    i = start;
    while (p->s[i] != '"') {
        unsigned char c = p->s[i];
        if (c == '\\') {
            unsigned char e = p->s[i + 1];
            i += 2;
            switch (e) {
            case '"': dst[k++] = '"'; break;
            case '\\': dst[k++] = '\\'; break;
            case '/': dst[k++] = '/'; break;
            case 'b': dst[k++] = '\b'; break;
            case 'f': dst[k++] = '\f'; break;
            case 'n': dst[k++] = '\n'; break;
            case 'r': dst[k++] = '\r'; break;
            case 't': dst[k++] = '\t'; break;
            case 'u': {
                uint32_t cp, lo;
                unsigned char enc[4];
                size_t m;
                if (i + 4 > p->n || !fti__hex4(p->s + i, &cp)) {
                    p->pos = i;
                    return fti__json_fail(p, FTI_ERR_FORMAT, "bad \\u escape");
                }
                i += 4;
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    if (i + 6 <= p->n && p->s[i] == '\\' && p->s[i + 1] == 'u' &&
                        fti__hex4(p->s + i + 2, &lo) && lo >= 0xDC00 && lo <= 0xDFFF) {
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                        i += 6;
                    } else {
                        cp = 0xFFFD; /* lone high surrogate */
                    }
                } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                    cp = 0xFFFD; /* lone low surrogate */
                }
                m = fti_utf8_encode(cp, enc);
                memcpy(dst + k, enc, m); /* escapes are >= 6 bytes raw, output <= 4 */
                k += m;
                break;
            }
            default:
                p->pos = i - 1;
                return fti__json_fail(p, FTI_ERR_FORMAT, "bad escape");
            }
        } else if (c < 0x80) {
            dst[k++] = (char)c;
            i++;
        } else {
            int ok;
            size_t m = fti_utf8_decode(p->s + i, (size_t)(p->s + start + raw_len - (p->s + i)),
                                       NULL, &ok);
            if (!ok) {
                p->pos = i;
                return fti__json_fail(p, FTI_ERR_FORMAT, "invalid UTF-8 in string");
            }
            memcpy(dst + k, p->s + i, m);
            k += m;
            i += m;
        }
    }
    dst[k] = 0;
    p->pos = i + 1;
    *out = dst;
    *out_len = k;
    return 1;
}

static int fti__json_number(fti__json_parser *p, fti_json *j) {
    size_t start = p->pos, i = p->pos, n_int_digits = 0;
    int is_int = 1, neg = 0;
    char small[64];
    char *buf = small;
    const unsigned char *s = p->s;
    if (i < p->n && s[i] == '-') {
        neg = 1;
        i++;
    }
    if (i < p->n && s[i] == '0') {
        i++;
        n_int_digits = 1;
    } else if (i < p->n && s[i] >= '1' && s[i] <= '9') {
        while (i < p->n && s[i] >= '0' && s[i] <= '9') {
            i++;
            n_int_digits++;
        }
    } else {
        p->pos = i;
        return fti__json_fail(p, FTI_ERR_FORMAT, "bad number");
    }
    if (i < p->n && s[i] == '.') {
        is_int = 0;
        i++;
        if (i >= p->n || s[i] < '0' || s[i] > '9') {
            p->pos = i;
            return fti__json_fail(p, FTI_ERR_FORMAT, "bad number: digit expected after '.'");
        }
        while (i < p->n && s[i] >= '0' && s[i] <= '9') i++;
    }
    if (i < p->n && (s[i] == 'e' || s[i] == 'E')) {
        is_int = 0;
        i++;
        if (i < p->n && (s[i] == '+' || s[i] == '-')) i++;
        if (i >= p->n || s[i] < '0' || s[i] > '9') {
            p->pos = i;
            return fti__json_fail(p, FTI_ERR_FORMAT, "bad number: digit expected in exponent");
        }
        while (i < p->n && s[i] >= '0' && s[i] <= '9') i++;
    }
    if (i - start > 1024) return fti__json_fail(p, FTI_ERR_LIMIT, "number literal too long");
    if (i - start >= sizeof small) {
        buf = (char *)fti_malloc(i - start + 1);
        if (!buf) return fti__json_fail(p, FTI_ERR_NOMEM, "out of memory");
    }
    memcpy(buf, s + start, i - start);
    buf[i - start] = 0;
    {
        /* strtod reads the C locale's decimal point: a program that set LC_NUMERIC to a comma
         * locale would stop at the '.'; write the locale's point in its place (JSON numbers have
         * no other '.') */
        const char *dp = localeconv()->decimal_point;
        char *dot = strchr(buf, '.');
        if (dot && dp && dp[0] && strcmp(dp, ".") != 0) {
            size_t dl = strlen(dp), n0 = strlen(buf);
            char *b2 = (char *)fti_malloc(n0 + dl + 1);
            if (!b2) {
                if (buf != small) fti_free(buf);
                return fti__json_fail(p, FTI_ERR_NOMEM, "out of memory");
            }
            memcpy(b2, buf, (size_t)(dot - buf));
            memcpy(b2 + (dot - buf), dp, dl);
            strcpy(b2 + (dot - buf) + dl, dot + 1);
            if (buf != small) fti_free(buf);
            buf = b2;
        }
    }
    j->num = strtod(buf, NULL);
    if (buf != small) fti_free(buf);
    if (!isfinite(j->num)) return fti__json_fail(p, FTI_ERR_LIMIT, "number out of range");
    if (is_int && n_int_digits <= 19) {
        /* exact int64 if it fits */
        uint64_t v = 0;
        size_t k = start + (size_t)neg;
        int fits = 1;
        for (; k < i; k++) {
            unsigned d = (unsigned)(s[k] - '0');
            if (v > (UINT64_MAX - d) / 10) {
                fits = 0;
                break;
            }
            v = v * 10 + d;
        }
        if (fits && (neg ? v <= (uint64_t)INT64_MAX + 1 : v <= (uint64_t)INT64_MAX)) {
            j->is_int = 1;
            j->i = neg ? (v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v) : (int64_t)v;
        }
    }
    p->pos = i;
    return 1;
}

static fti_json *fti__json_value(fti__json_parser *p, size_t depth);

static int fti__json_literal(fti__json_parser *p, const char *lit) {
    size_t n = strlen(lit);
    if (p->n - p->pos < n || memcmp(p->s + p->pos, lit, n) != 0)
        return fti__json_fail(p, FTI_ERR_FORMAT, "unexpected character");
    p->pos += n;
    return 1;
}

static fti_json *fti__json_container(fti__json_parser *p, size_t depth, int is_obj) {
    fti_json *j = fti__json_node(p, is_obj ? FTI_JSON_OBJECT : FTI_JSON_ARRAY), *last = NULL;
    unsigned char close = is_obj ? '}' : ']';
    if (!j) return NULL;
    if (depth >= p->max_depth) {
        fti__json_fail(p, FTI_ERR_LIMIT, "nesting too deep");
        return NULL;
    }
    p->pos++;
    fti__json_ws(p);
    if (p->pos < p->n && p->s[p->pos] == close) {
        p->pos++;
        return j;
    }
    for (;;) {
        const char *key = NULL;
        size_t key_len = 0;
        fti_json *v;
        fti__json_ws(p);
        if (is_obj) {
            if (p->pos >= p->n || p->s[p->pos] != '"') {
                fti__json_fail(p, FTI_ERR_FORMAT, p->pos >= p->n ? "unexpected end of input"
                                                                 : "member name expected");
                return NULL;
            }
            if (!fti__json_string(p, &key, &key_len)) return NULL;
            fti__json_ws(p);
            if (p->pos >= p->n || p->s[p->pos] != ':') {
                fti__json_fail(p, FTI_ERR_FORMAT, "':' expected");
                return NULL;
            }
            p->pos++;
        }
        v = fti__json_value(p, depth + 1);
        if (!v) return NULL;
        v->key = key;
        v->key_len = key_len;
        if (last) last->next = v;
        else j->child = v;
        last = v;
        j->len++;
        fti__json_ws(p);
        if (p->pos >= p->n) {
            fti__json_fail(p, FTI_ERR_FORMAT, "unexpected end of input");
            return NULL;
        }
        if (p->s[p->pos] == ',') {
            p->pos++;
            continue;
        }
        if (p->s[p->pos] == close) {
            p->pos++;
            return j;
        }
        fti__json_fail(p, FTI_ERR_FORMAT, is_obj ? "',' or '}' expected" : "',' or ']' expected");
        return NULL;
    }
}

static fti_json *fti__json_value(fti__json_parser *p, size_t depth) {
    fti_json *j;
    fti__json_ws(p);
    if (p->pos >= p->n) {
        fti__json_fail(p, FTI_ERR_FORMAT, "unexpected end of input");
        return NULL;
    }
    switch (p->s[p->pos]) {
    case '{':
        return fti__json_container(p, depth, 1);
    case '[':
        return fti__json_container(p, depth, 0);
    case '"':
        j = fti__json_node(p, FTI_JSON_STRING);
        if (!j || !fti__json_string(p, &j->str, &j->len)) return NULL;
        return j;
    case 't':
        j = fti__json_node(p, FTI_JSON_TRUE);
        return j && fti__json_literal(p, "true") ? j : NULL;
    case 'f':
        j = fti__json_node(p, FTI_JSON_FALSE);
        return j && fti__json_literal(p, "false") ? j : NULL;
    case 'n':
        j = fti__json_node(p, FTI_JSON_NULL);
        return j && fti__json_literal(p, "null") ? j : NULL;
    default:
        j = fti__json_node(p, FTI_JSON_NUMBER);
        return j && fti__json_number(p, j) ? j : NULL;
    }
}

FTIDEF fti_result fti_json_parse(const char *text, size_t len, const fti_json_opts *opts,
                                 fti_json_doc **out, size_t *consumed, fti_error *err) {
    fti__json_parser p;
    fti_json_doc *doc;
    if (!out) return fti_error_set(err, FTI_ERR_INVALID, "fti_json_parse: no output");
    *out = NULL;
    if (!text && len) return fti_error_set(err, FTI_ERR_INVALID, "fti_json_parse: no text");
    doc = (fti_json_doc *)fti_malloc(sizeof *doc);
    if (!doc) return fti_error_set(err, FTI_ERR_NOMEM, "out of memory");
    doc->blocks = NULL;
    doc->root = NULL;
    memset(&p, 0, sizeof p);
    p.s = (const unsigned char *)(text ? text : "");
    p.n = len;
    p.doc = doc;
    p.err = err;
    p.max_depth = opts && opts->max_depth ? opts->max_depth : FTI_JSON_MAX_DEPTH;
    p.max_string = opts && opts->max_string ? opts->max_string : FTI_JSON_MAX_STRING;
    p.max_nodes = opts && opts->max_nodes ? opts->max_nodes : FTI_JSON_MAX_NODES;
    doc->root = fti__json_value(&p, 0);
    if (doc->root) {
        size_t end = p.pos;
        fti__json_ws(&p);
        if (opts && opts->allow_trailing) p.pos = end;
        if (p.pos != p.n && !(opts && opts->allow_trailing))
            fti__json_fail(&p, FTI_ERR_FORMAT, "unexpected data after the value");
    }
    if (p.res != FTI_OK || !doc->root) {
        if (p.res == FTI_OK) fti__json_fail(&p, FTI_ERR_FORMAT, "no value");
        fti_json_free(doc);
        return p.res;
    }
    if (consumed) *consumed = p.pos;
    *out = doc;
    return FTI_OK;
}

FTIDEF const fti_json *fti_json_root(const fti_json_doc *doc) { return doc ? doc->root : NULL; }

FTIDEF void fti_json_free(fti_json_doc *doc) {
    fti__json_block *b;
    if (!doc) return;
    b = doc->blocks;
    while (b) {
        fti__json_block *next = b->next;
        fti_free(b);
        b = next;
    }
    fti_free(doc);
}

FTIDEF const fti_json *fti_json_get(const fti_json *obj, const char *key) {
    const fti_json *c, *last = NULL;
    size_t n;
    if (!obj || obj->type != FTI_JSON_OBJECT || !key) return NULL;
    n = strlen(key);
    for (c = obj->child; c; c = c->next) /* the last of repeated keys, as JSON.parse */
        if (c->key_len == n && memcmp(c->key, key, n) == 0) last = c;
    return last;
}

FTIDEF const fti_json *fti_json_at(const fti_json *arr, size_t i) {
    const fti_json *c;
    if (!arr || (arr->type != FTI_JSON_ARRAY && arr->type != FTI_JSON_OBJECT)) return NULL;
    for (c = arr->child; c && i > 0; c = c->next) i--;
    return c;
}

FTIDEF const char *fti_json_get_str(const fti_json *obj, const char *key, const char *fallback) {
    const fti_json *v = fti_json_get(obj, key);
    return v && v->type == FTI_JSON_STRING ? v->str : fallback;
}

FTIDEF double fti_json_get_num(const fti_json *obj, const char *key, double fallback) {
    const fti_json *v = fti_json_get(obj, key);
    return v && v->type == FTI_JSON_NUMBER ? v->num : fallback;
}

FTIDEF int64_t fti_json_get_int(const fti_json *obj, const char *key, int64_t fallback) {
    const fti_json *v = fti_json_get(obj, key);
    return v && v->type == FTI_JSON_NUMBER && v->is_int ? v->i : fallback;
}

/* === base: JSON writer === */

FTIDEF void fti_json_escape(fti_buf *b, const char *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, start = 0;
    fti_buf_putc(b, '"');
    while (i < n) {
        unsigned char c = u[i];
        const char *esc = NULL;
        char ubuf[7];
        if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0x80) {
            int ok;
            size_t k = fti_utf8_decode(u + i, n - i, NULL, &ok);
            if (ok) {
                i += k;
                continue;
            }
            fti_buf_append(b, u + start, i - start);
            fti_buf_append(b, "\xEF\xBF\xBD", 3);
            i += k;
            start = i;
            continue;
        }
        switch (c) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        default:
            ubuf[0] = '\\', ubuf[1] = 'u', ubuf[2] = '0', ubuf[3] = '0';
            ubuf[4] = hex[c >> 4], ubuf[5] = hex[c & 15], ubuf[6] = 0;
            esc = ubuf;
        }
        fti_buf_append(b, u + start, i - start);
        fti_buf_puts(b, esc);
        i++;
        start = i;
    }
    fti_buf_append(b, u + start, n - start);
    fti_buf_putc(b, '"');
}

static void fti__jw_indent(fti_jw *w) {
    int i;
    if (!w->pretty) return;
    fti_buf_putc(w->out, '\n');
    for (i = 0; i < w->depth; i++) fti_buf_puts(w->out, "  ");
}

/* Called before a value or key: writes the comma and indentation, except right after a key. */
static void fti__jw_pre(fti_jw *w) {
    if (w->depth == 0) return;
    if (w->first[w->depth] == 2) { /* value right after its key */
        w->first[w->depth] = 0;
        return;
    }
    if (!w->first[w->depth]) fti_buf_putc(w->out, ',');
    w->first[w->depth] = 0;
    fti__jw_indent(w);
}

FTIDEF void fti_jw_init(fti_jw *w, fti_buf *out, int pretty) {
    memset(w, 0, sizeof *w);
    w->out = out;
    w->pretty = pretty;
}

static void fti__jw_open(fti_jw *w, char c) {
    fti__jw_pre(w);
    fti_buf_putc(w->out, c);
    if (w->depth < 63) w->depth++;
    w->first[w->depth] = 1;
}

static void fti__jw_close(fti_jw *w, char c) {
    int empty = w->first[w->depth] == 1;
    if (w->depth > 0) w->depth--;
    if (!empty) fti__jw_indent(w);
    fti_buf_putc(w->out, c);
}

FTIDEF void fti_jw_obj_begin(fti_jw *w) { fti__jw_open(w, '{'); }
FTIDEF void fti_jw_obj_end(fti_jw *w) { fti__jw_close(w, '}'); }
FTIDEF void fti_jw_arr_begin(fti_jw *w) { fti__jw_open(w, '['); }
FTIDEF void fti_jw_arr_end(fti_jw *w) { fti__jw_close(w, ']'); }

FTIDEF void fti_jw_key(fti_jw *w, const char *key) { fti_jw_keyn(w, key, strlen(key)); }

FTIDEF void fti_jw_keyn(fti_jw *w, const char *key, size_t n) {
    fti__jw_pre(w);
    fti_json_escape(w->out, key, n);
    fti_buf_puts(w->out, w->pretty ? ": " : ":");
    w->first[w->depth] = 2;
}

FTIDEF void fti_jw_strn(fti_jw *w, const char *s, size_t n) {
    fti__jw_pre(w);
    fti_json_escape(w->out, s ? s : "", s ? n : 0);
}

FTIDEF void fti_jw_str(fti_jw *w, const char *s) { fti_jw_strn(w, s, s ? strlen(s) : 0); }

FTIDEF void fti_jw_num(fti_jw *w, double v) {
    fti__jw_pre(w);
    if (!isfinite(v)) fti_buf_puts(w->out, "null");
    else if (v == floor(v) && fabs(v) < 1e15) fti_buf_printf(w->out, "%.0f", v);
    else {
        /* printf writes the C locale's decimal point: put back the '.' JSON needs */
        const char *dp = localeconv()->decimal_point;
        size_t at = w->out->len;
        fti_buf_printf(w->out, "%.17g", v);
        if (dp && dp[0] && strcmp(dp, ".") != 0 && !w->out->oom) {
            size_t dl = strlen(dp), k;
            for (k = at; k + dl <= w->out->len; k++)
                if (memcmp(w->out->data + k, dp, dl) == 0) {
                    w->out->data[k] = '.';
                    memmove(w->out->data + k + 1, w->out->data + k + dl, w->out->len - k - dl);
                    w->out->len -= dl - 1;
                    w->out->data[w->out->len] = 0;
                    break;
                }
        }
    }
}

FTIDEF void fti_jw_int(fti_jw *w, int64_t v) {
    fti__jw_pre(w);
    fti_buf_printf(w->out, "%lld", (long long)v);
}

FTIDEF void fti_jw_bool(fti_jw *w, int v) {
    fti__jw_pre(w);
    fti_buf_puts(w->out, v ? "true" : "false");
}

FTIDEF void fti_jw_null(fti_jw *w) {
    fti__jw_pre(w);
    fti_buf_puts(w->out, "null");
}

/* === base: RNG (PCG32, XSH-RR output) === */

FTIDEF void fti_rng_seed(fti_rng *r, uint64_t seed, uint64_t stream) {
    r->state = 0;
    r->inc = (stream << 1) | 1u;
    (void)fti_rng_u32(r);
    r->state += seed;
    (void)fti_rng_u32(r);
}

FTIDEF uint32_t fti_rng_u32(fti_rng *r) {
    uint64_t old = r->state;
    uint32_t xorshifted, rot;
    r->state = old * 6364136223846793005ull + r->inc;
    xorshifted = (uint32_t)(((old >> 18) ^ old) >> 27);
    rot = (uint32_t)(old >> 59);
    return (xorshifted >> rot) | (xorshifted << ((32 - rot) & 31));
}

FTIDEF uint64_t fti_rng_u64(fti_rng *r) {
    uint64_t hi = fti_rng_u32(r);
    return (hi << 32) | fti_rng_u32(r);
}

FTIDEF uint32_t fti_rng_below(fti_rng *r, uint32_t bound) {
    uint32_t threshold, x;
    if (bound <= 1) return 0;
    threshold = (uint32_t)(0u - bound) % bound;
    do {
        x = fti_rng_u32(r);
    } while (x < threshold);
    return x % bound;
}

FTIDEF float fti_rng_float(fti_rng *r) {
    return (float)(fti_rng_u32(r) >> 8) * (1.0f / 16777216.0f);
}

FTIDEF double fti_rng_double(fti_rng *r) {
    return (double)(fti_rng_u64(r) >> 11) * (1.0 / 9007199254740992.0);
}

FTIDEF float fti_rng_normal(fti_rng *r) {
    /* Box-Muller; one of the pair is dropped so the state is the whole struct. */
    double u1 = 1.0 - fti_rng_double(r); /* (0, 1] */
    double u2 = fti_rng_double(r);
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

/* === base: clock, environment === */

FTIDEF uint64_t fti_time_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

FTIDEF double fti_time_wall(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

FTIDEF void fti_time_iso8601(double wall_seconds, char out[32]) {
    /* Civil-from-days (proleptic Gregorian), so no gmtime_r is needed. Below 2^38 s (the year
     * 10680) the int64 arithmetic is exact; a larger time (a damaged log's "time": 1e300) or NaN
     * overflowed it: they count as +-2^38 (NaN as 0), then clamped to the years printed. (The
     * exponent is read from the bits: a double constant would cost every program its bytes in
     * .rodata, which gc-sections keeps.) */
    uint64_t bits;
    int64_t secs;
    memcpy(&bits, &wall_seconds, sizeof bits);
    if (((bits >> 52) & 0x7ff) < 1023 + 38) secs = (int64_t)floor(wall_seconds);
    else if (wall_seconds != wall_seconds) secs = 0;
    else secs = wall_seconds > 0 ? (int64_t)1 << 38 : -((int64_t)1 << 38);
    int64_t days = secs >= 0 ? secs / 86400 : (secs - 86399) / 86400;
    int64_t rem = secs - days * 86400;
    int64_t z = days + 719468, era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = yoe + era * 400, doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153, d = doy - (153 * mp + 2) / 5 + 1;
    int64_t m = mp < 10 ? mp + 3 : mp - 9;
    if (m <= 2) y++;
    if (y > 9999) { /* its last second */
        y = 9999;
        m = 12;
        d = 31;
        rem = 86399;
    } else if (y < 0) { /* its first */
        y = 0;
        m = d = 1;
        rem = 0;
    }
    snprintf(out, 32, "%04d-%02d-%02dT%02d:%02d:%02dZ", (int)y, (int)m, (int)d, (int)(rem / 3600),
             (int)(rem / 60 % 60), (int)(rem % 60));
}

FTIDEF long fti_env_long(const char *name, long fallback) {
    const char *v = getenv(name);
    char *end;
    long x;
    if (!v || !*v) return fallback;
    errno = 0;
    x = strtol(v, &end, 10);
    if (errno || *end) return fallback;
    return x;
}

FTIDEF int fti_cpu_count(void) {
#ifdef _SC_NPROCESSORS_ONLN
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)(n > 1024 ? 1024 : n) : 1;
#else
    return 1;
#endif
}

/* === base: progress bar === */

static void fti__fmt_duration(double s, char *out, size_t n) {
    if (s < 0 || !isfinite(s)) snprintf(out, n, "--");
    else if (s < 60) snprintf(out, n, "%.0fs", s);
    else if (s < 3600) snprintf(out, n, "%dm%02ds", (int)(s / 60), (int)s % 60);
    else snprintf(out, n, "%dh%02dm", (int)(s / 3600), (int)(s / 60) % 60);
}

FTIDEF void fti_progress_begin(fti_progress *p, void *stream, const char *label, const char *unit,
                               uint64_t total) {
    memset(p, 0, sizeof *p);
    p->stream = stream;
    snprintf(p->label, sizeof p->label, "%s", label ? label : "");
    snprintf(p->unit, sizeof p->unit, "%s", unit ? unit : "");
    p->total = total;
    p->t_start_ns = fti_time_ns();
    p->is_tty = stream && isatty(fileno((FILE *)stream));
}

static void fti__progress_draw(fti_progress *p, const char *extra, int final) {
    FILE *f = (FILE *)p->stream;
    double el = (double)(fti_time_ns() - p->t_start_ns) / 1e9;
    double rate = el > 0 ? (double)p->done / el : 0;
    char eta[32], elapsed[32];
    fti__fmt_duration(el, elapsed, sizeof elapsed);
    if (p->total && rate > 0 && !final)
        fti__fmt_duration((double)(p->total - (p->done < p->total ? p->done : p->total)) / rate,
                          eta, sizeof eta);
    else snprintf(eta, sizeof eta, "--");
    if (p->is_tty) fprintf(f, "\r\033[K");
    if (p->total) {
        int width = 24, i, fill;
        double frac = (double)p->done / (double)p->total;
        if (frac > 1) frac = 1;
        fill = (int)(frac * width);
        fprintf(f, "%s [", p->label);
        for (i = 0; i < width; i++) fputc(i < fill ? '#' : '.', f);
        fprintf(f, "] %3.0f%% %llu/%llu %s", frac * 100, (unsigned long long)p->done,
                (unsigned long long)p->total, p->unit);
    } else {
        fprintf(f, "%s %llu %s", p->label, (unsigned long long)p->done, p->unit);
    }
    fprintf(f, " %.1f %s/s %s %s%s%s", rate, p->unit, final ? "in" : "ETA", final ? elapsed : eta,
            extra && *extra ? "  " : "", extra ? extra : "");
    if (final || !p->is_tty) fputc('\n', f);
    fflush(f);
}

FTIDEF void fti_progress_update(fti_progress *p, uint64_t done, const char *extra) {
    uint64_t now;
    p->done = done;
    if (!p->stream || !p->is_tty) return;
    now = fti_time_ns();
    if (p->drawn && now - p->t_last_ns < 100000000ull) return;
    p->t_last_ns = now;
    p->drawn = 1;
    fti__progress_draw(p, extra, 0);
}

FTIDEF void fti_progress_end(fti_progress *p, const char *extra) {
    if (!p->stream) return;
    fti__progress_draw(p, extra, 1);
}
