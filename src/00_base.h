/* === base: types, results, errors, memory, reader, I/O, hashing, UTF-8, JSON, RNG, clock === */
/*
 * The base part is what every other part stands on. Nothing in it knows about language models:
 *
 *   results   every fallible call returns an fti_result (FTI_OK = 0, errors < 0); calls that parse
 *             input also fill an optional fti_error whose message names the file, field and
 *             numbers.
 *   memory    every allocation goes through FTI_MALLOC/FTI_REALLOC/FTI_FREE; aligned blocks (64 B)
 *             and a bump arena that can live in caller-supplied memory (embedded targets).
 *   reader    one bounds-checked little-endian reader with a sticky error, used by every parser.
 *   I/O       whole-file reads with a size cap, read-only maps (mmap or read() fallback), atomic
 *             writes (temp file in the same directory, fsync, rename, fsync of the directory),
 *             directory walks and path helpers. All system calls go through one thin layer so
 *             tests can inject EIO, ENOSPC, EINTR and short writes.
 *   hashing   SHA-256 (content ids, agrees with sha256sum) and a fast 64-bit hash for tables.
 *   UTF-8     validate, decode, encode, repair to U+FFFD.
 *   JSON      a limited DOM reader that never reads out of bounds, and a writer with escaping.
 *   misc      growable byte buffer, seedable RNG with normal sampling, monotonic clock,
 *             log callback type, and a terminal progress bar for programs.
 */
#ifndef FTI_BASE_H
#define FTI_BASE_H

#define FTI_VERSION_MAJOR 0
#define FTI_VERSION_MINOR 1
#define FTI_VERSION_PATCH 0
#define FTI_VERSION_STRING "0.1.0"
#define FTI_VERSION_NUMBER (FTI_VERSION_MAJOR * 10000 + FTI_VERSION_MINOR * 100 + FTI_VERSION_PATCH)

/* The implementation needs POSIX declarations (fsync, mmap, clock_gettime) even under -std=c99,
 * and on Linux madvise's MADV_DONTNEED (not POSIX: glibc and musl declare it under
 * _DEFAULT_SOURCE; without it fti_map_drop, which lets the store's inputs and the engine's
 * repacked weights leave memory, compiles to nothing).
 * Feature macros only work before the first system header: in the file that defines
 * FTI_IMPLEMENTATION, include fti.h first (or define _POSIX_C_SOURCE 200809L yourself). */
#if defined(FTI_IMPLEMENTATION) && !defined(_WIN32)
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#if defined(__linux__) && !defined(_DEFAULT_SOURCE)
#define _DEFAULT_SOURCE 1
#endif
#endif

#include <stddef.h>
#include <stdint.h>

#ifndef FTIDEF
#ifdef FTI_STATIC
#if defined(__GNUC__) || defined(__clang__)
#define FTIDEF static __attribute__((unused))
#else
#define FTIDEF static
#endif
#else
#define FTIDEF extern
#endif
#endif

/* Internal: brackets a section of x86 intrinsics code. g++ 12 warns inside its own AVX-512
 * headers (_mm512_undefined_* "used uninitialized") once they are inlined, a known false
 * positive; these silence it for the section only (gcc, not clang; empty elsewhere). Each
 * expands to _Pragma operators, so it can stand on its own line inside an #if block:
 *     FTI__X86_WARN_PUSH ... x86 functions ... FTI__X86_WARN_POP */
#if defined(__GNUC__) && !defined(__clang__) && !defined(__TINYC__)
#define FTI__X86_WARN_PUSH                                 \
    _Pragma("GCC diagnostic push")                         \
    _Pragma("GCC diagnostic ignored \"-Wuninitialized\"") \
    _Pragma("GCC diagnostic ignored \"-Wmaybe-uninitialized\"")
#define FTI__X86_WARN_POP _Pragma("GCC diagnostic pop")
#else
#define FTI__X86_WARN_PUSH
#define FTI__X86_WARN_POP
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* --- results ------------------------------------------------------------------------------ */

/* One list drives the enum and fti_result_str(). */
#define FTI_RESULT_LIST(X)                                                 \
    X(FTI_OK, 0, "ok")                                                     \
    X(FTI_ERR_INVALID, -1, "invalid argument")                             \
    X(FTI_ERR_NOMEM, -2, "out of memory")                                  \
    X(FTI_ERR_IO, -3, "input/output error")                                \
    X(FTI_ERR_NOT_FOUND, -4, "not found")                                  \
    X(FTI_ERR_FORMAT, -5, "malformed input")                               \
    X(FTI_ERR_LIMIT, -6, "input exceeds a limit")                          \
    X(FTI_ERR_UNSUPPORTED, -7, "not supported")                            \
    X(FTI_ERR_CHECKSUM, -8, "checksum mismatch")                           \
    X(FTI_ERR_EXISTS, -9, "already exists")                                \
    X(FTI_ERR_BUSY, -10, "busy or locked")                                 \
    X(FTI_ERR_CANCELLED, -11, "cancelled")                                 \
    X(FTI_ERR_NUMERIC, -12, "non-finite number")                           \
    X(FTI_ERR_NOSPACE, -13, "no space left on device")                     \
    X(FTI_ERR_MISMATCH, -14, "inputs do not match")

typedef enum fti_result {
#define FTI__RESULT_ENUM(name, value, text) name = value,
    FTI_RESULT_LIST(FTI__RESULT_ENUM)
#undef FTI__RESULT_ENUM
    FTI_RESULT_MIN_ = -15
} fti_result;

/* Short English text for a result ("out of memory"); never NULL. Thread safety: any thread. */
FTIDEF const char *fti_result_str(fti_result r);

/* An error report. Parsers fill it with a message that names file, field and numbers, e.g.
 * "model.gguf: tensor blk.3.attn_q ends at 1049600 > file size 1000000". Pass NULL to skip it.
 * The caller owns it (usually on the stack). Thread safety: one thread per object. */
#define FTI_ERROR_MSG_MAX 320
typedef struct fti_error {
    fti_result code;
    char msg[FTI_ERROR_MSG_MAX];
} fti_error;

/* Sets err (if not NULL) to code and a printf-style message; returns code, so a caller can
 * write `return fti_error_set(err, FTI_ERR_FORMAT, "%s: bad magic", path);`.
 * Thread safety: one thread per err. */
FTIDEF fti_result fti_error_set(fti_error *err, fti_result code, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* Clears err to FTI_OK with an empty message. NULL is fine. */
FTIDEF void fti_error_clear(fti_error *err);
/* Prefixes err's message with "prefix: " (for adding a file name at a higher level). */
FTIDEF void fti_error_prefix(fti_error *err, const char *prefix);

/* --- memory --------------------------------------------------------------------------------- */

/* Thin wrappers over FTI_MALLOC/FTI_REALLOC/FTI_FREE. fti_malloc(0) returns a valid pointer.
 * Thread safety: as the configured allocator (libc's is any thread). */
FTIDEF void *fti_malloc(size_t n_bytes);
FTIDEF void *fti_calloc(size_t count, size_t size); /* overflow-checked, zeroed */
FTIDEF void *fti_realloc(void *p, size_t n_bytes);
FTIDEF void fti_free(void *p);
/* Allocation aligned to `align` (a power of two, at least sizeof(void*)); release with
 * fti_aligned_free. Returns NULL on failure or overflow. */
FTIDEF void *fti_aligned_alloc(size_t n_bytes, size_t align);
FTIDEF void fti_aligned_free(void *p);
/* Duplicates n bytes as a NUL-terminated string; free with fti_free. */
FTIDEF char *fti_strndup(const char *s, size_t n);
FTIDEF char *fti_strdup(const char *s);

/* Overflow-checked size arithmetic: return 1 and store the result, or 0 on overflow. */
FTIDEF int fti_size_add(size_t a, size_t b, size_t *out);
FTIDEF int fti_size_mul(size_t a, size_t b, size_t *out);

/* A bump arena. With caller memory (`mem` != NULL) it never allocates; with mem == NULL it
 * allocates `cap` bytes once. Allocations are aligned to `align` (power of two, 0 = 16).
 * fti_arena_alloc returns NULL when full. fti_arena_free releases owned memory only.
 * Thread safety: one thread per object. */
typedef struct fti_arena {
    unsigned char *base;
    size_t cap;
    size_t used;
    int owned;
} fti_arena;
FTIDEF fti_result fti_arena_init(fti_arena *a, void *mem, size_t cap);
FTIDEF void *fti_arena_alloc(fti_arena *a, size_t n_bytes, size_t align);
FTIDEF void fti_arena_reset(fti_arena *a);
FTIDEF void fti_arena_free(fti_arena *a);

/* A growable byte buffer. Zero-initialise to start. Appends keep a NUL after the data so
 * data can be used as a C string, but len is the truth. A failed growth sets `oom` (sticky)
 * and further appends do nothing: check oom once at the end. fti_buf_append's p may be NULL
 * when n is 0. Thread safety: one per object. */
typedef struct fti_buf {
    char *data;
    size_t len;
    size_t cap;
    int oom;
} fti_buf;
FTIDEF int fti_buf_reserve(fti_buf *b, size_t extra);
FTIDEF void fti_buf_append(fti_buf *b, const void *p, size_t n);
FTIDEF void fti_buf_puts(fti_buf *b, const char *s);
FTIDEF void fti_buf_putc(fti_buf *b, char c);
FTIDEF void fti_buf_printf(fti_buf *b, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
FTIDEF void fti_buf_free(fti_buf *b);

/* --- reader (all binary parsing goes through it) --------------------------------------------- */

/* A bounds-checked cursor. Every get checks the remaining bytes; when short it returns 0 (or
 * NULL) and sets the sticky `err`. Check err once per record. Values are little-endian. */
typedef struct fti_reader {
    const unsigned char *p;
    size_t len;
    size_t pos;
    int err;
} fti_reader;
FTIDEF fti_reader fti_reader_make(const void *p, size_t len);
FTIDEF uint8_t fti_read_u8(fti_reader *r);
FTIDEF uint16_t fti_read_u16(fti_reader *r);
FTIDEF uint32_t fti_read_u32(fti_reader *r);
FTIDEF uint64_t fti_read_u64(fti_reader *r);
FTIDEF int32_t fti_read_i32(fti_reader *r);
FTIDEF int64_t fti_read_i64(fti_reader *r);
FTIDEF float fti_read_f32(fti_reader *r);
FTIDEF double fti_read_f64(fti_reader *r);
/* Returns a pointer to the next n bytes and advances, or NULL (and err) if fewer remain. */
FTIDEF const void *fti_read_bytes(fti_reader *r, size_t n);
FTIDEF size_t fti_reader_left(const fti_reader *r);
/* Little-endian stores for writers. */
FTIDEF void fti_store_u16(void *dst, uint16_t v);
FTIDEF void fti_store_u32(void *dst, uint32_t v);
FTIDEF void fti_store_u64(void *dst, uint64_t v);
FTIDEF void fti_store_f32(void *dst, float v);
FTIDEF uint32_t fti_load_u32(const void *src);
FTIDEF uint64_t fti_load_u64(const void *src);

/* --- files ----------------------------------------------------------------------------------- */

/* Reads a whole file into a new buffer (freed with fti_free), NUL-terminated for convenience.
 * Fails with FTI_ERR_LIMIT if the file is larger than max_bytes (0 = no cap). */
FTIDEF fti_result fti_file_read(const char *path, size_t max_bytes, void **out_data,
                                size_t *out_len, fti_error *err);

/* A read-only view of a whole file: mmap where available, else (or under FTI_NO_MMAP) a heap
 * copy filled with read(). data is valid until fti_map_close. An empty file maps to data != NULL,
 * len 0. Thread safety: the view may be read from any thread. */
typedef struct fti_map {
    const void *data;
    size_t len;
    int is_mmap;
} fti_map;
FTIDEF fti_result fti_map_open(fti_map *m, const char *path, fti_error *err);
FTIDEF void fti_map_close(fti_map *m);
/* Lets the pages of bytes [off, off+len) of a mapping leave memory (the whole pages inside the
 * range, and the last partial page when the range ends the file); touching them again reads them
 * from the file. Memory use stays bounded by what is being worked on, not by the file. Returns 1
 * when they went (len 0 drops nothing and tells whether they could), 0 when nothing can: a
 * read() copy (FTI_NO_MMAP, or mmap failed), or no madvise MADV_DONTNEED in this build (see the
 * note on _DEFAULT_SOURCE above). Thread safety: any thread (the data stays valid). */
FTIDEF int fti_map_drop(const fti_map *m, size_t off, size_t len);

/* An atomic file writer: data goes to "<path>.tmp.<pid>.<n>" in the same directory; commit
 * fsyncs it, renames it over path and fsyncs the directory. Any failure (including a failed
 * fsync, which is never retried) leaves the old content of path untouched and no temp file.
 * abort (or a failed commit) removes the temp file. Thread safety: one thread per object. */
typedef struct fti_afile {
    int fd;
    fti_result status; /* sticky: first failure of a write */
    char *path;
    char *tmp_path;
} fti_afile;
FTIDEF fti_result fti_afile_open(fti_afile *f, const char *path, fti_error *err);
FTIDEF fti_result fti_afile_write(fti_afile *f, const void *data, size_t n_bytes);
FTIDEF fti_result fti_afile_commit(fti_afile *f, fti_error *err);
FTIDEF void fti_afile_abort(fti_afile *f);
/* One-shot: write data atomically to path. */
FTIDEF fti_result fti_file_write_atomic(const char *path, const void *data, size_t n_bytes,
                                        fti_error *err);

/* Creates a directory and its parents (like mkdir -p); existing directories are fine. */
FTIDEF fti_result fti_mkdirs(const char *path, fti_error *err);
/* 1 if path exists (file or directory), else 0. */
FTIDEF int fti_path_exists(const char *path);
FTIDEF int fti_path_is_dir(const char *path);
/* fsyncs a directory so renames inside it are durable. */
FTIDEF fti_result fti_dir_sync(const char *dir, fti_error *err);
/* Removes a file; a missing file is not an error. */
FTIDEF fti_result fti_file_remove(const char *path, fti_error *err);
/* Joins a and b with one '/', into a new string (fti_free). NULL on allocation failure. */
FTIDEF char *fti_path_join(const char *a, const char *b);
/* Pointer to the last path component (after the last '/'), and to its extension
 * (after the last '.' of the last component; "" if none). */
FTIDEF const char *fti_path_base(const char *path);
FTIDEF const char *fti_path_ext(const char *path);

/* Walks a file or a directory tree, calling fn for each regular file in byte-wise sorted order
 * (deterministic). Hidden entries (names starting with '.') are skipped; symlinks inside the
 * tree are not followed (no loops, nothing outside it), but root itself may be one (a linked
 * folder of notes). fn returns FTI_OK to go on, anything else stops the walk and is returned. */
typedef fti_result (*fti_walk_fn)(void *user, const char *path, uint64_t size_bytes);
FTIDEF fti_result fti_walk(const char *root, fti_walk_fn fn, void *user, fti_error *err);
/* fti_walk that also tells skip (when not NULL), in the same order, of each entry inside the
 * tree it does not walk and why: a symbolic link (not followed), a FIFO, socket or device (not a
 * regular file). Hidden entries are passed over in silence. */
typedef fti_result (*fti_walk_skip_fn)(void *user, const char *path, const char *why);
FTIDEF fti_result fti_walk_skips(const char *root, fti_walk_fn fn, fti_walk_skip_fn skip,
                                 void *user, fti_error *err);

/* --- hashing --------------------------------------------------------------------------------- */

typedef struct fti_sha256 {
    uint32_t h[8];
    uint64_t n_bytes;
    unsigned char block[64];
    size_t block_len;
} fti_sha256;
FTIDEF void fti_sha256_init(fti_sha256 *s);
FTIDEF void fti_sha256_update(fti_sha256 *s, const void *data, size_t n_bytes);
FTIDEF void fti_sha256_final(fti_sha256 *s, unsigned char out[32]);
/* One-shot digest, and the digest as 64 lowercase hex chars plus NUL. */
FTIDEF void fti_sha256_buf(const void *data, size_t n_bytes, unsigned char out[32]);
FTIDEF void fti_sha256_hex(const unsigned char digest[32], char hex[65]);
FTIDEF fti_result fti_sha256_file(const char *path, unsigned char out[32], fti_error *err);
/* Fast non-cryptographic 64-bit hash for hash tables (stable across platforms and versions). */
FTIDEF uint64_t fti_hash64(const void *data, size_t n_bytes, uint64_t seed);

/* --- UTF-8 ----------------------------------------------------------------------------------- */

/* Decodes one code point from s[0..n). Returns the number of bytes consumed (>= 1 when n > 0)
 * and stores the code point; an invalid or truncated sequence (overlong, surrogate, > U+10FFFF)
 * consumes its maximal invalid prefix (at least 1 byte) and stores U+FFFD with *ok = 0. */
FTIDEF size_t fti_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp, int *ok);
/* Encodes cp (surrogates and > U+10FFFF become U+FFFD) into out; returns 1..4. */
FTIDEF size_t fti_utf8_encode(uint32_t cp, unsigned char out[4]);
/* Returns the length of the longest valid prefix (n when all valid). */
FTIDEF size_t fti_utf8_valid_prefix(const unsigned char *s, size_t n);
/* Appends s to out with each invalid sequence replaced by U+FFFD. Returns the number of
 * replacements made. */
FTIDEF size_t fti_utf8_repair(const unsigned char *s, size_t n, fti_buf *out);
/* Number of trailing bytes of s[0..n) that start an incomplete (but so far valid) sequence:
 * for streaming output that must not split a character. */
FTIDEF size_t fti_utf8_incomplete_tail(const unsigned char *s, size_t n);

/* --- JSON ------------------------------------------------------------------------------------ */

/* A JSON DOM parsed into one owned block. Strings are unescaped (UTF-8, NUL-terminated, and may
 * contain NUL: use len). Numbers keep their double value; `is_int` tells whether the literal was
 * an integer that fits int64 exactly (then `i` holds it). Object members keep file order. */
typedef enum fti_json_type {
    FTI_JSON_NULL = 1,
    FTI_JSON_FALSE,
    FTI_JSON_TRUE,
    FTI_JSON_NUMBER,
    FTI_JSON_STRING,
    FTI_JSON_ARRAY,
    FTI_JSON_OBJECT
} fti_json_type;

typedef struct fti_json {
    fti_json_type type;
    int is_int;
    size_t len;               /* string: bytes; array/object: number of children */
    const char *str;          /* string value */
    double num;
    int64_t i;
    const char *key;          /* member name when the parent is an object, else NULL */
    size_t key_len;
    struct fti_json *child;   /* first child (array/object) */
    struct fti_json *next;    /* next sibling */
} fti_json;

typedef struct fti_json_opts {
    size_t max_depth;      /* 0 = 64 */
    size_t max_string;     /* bytes of one string, 0 = 16 MiB */
    size_t max_nodes;      /* 0 = 16 M */
    int allow_trailing;    /* accept bytes after the value (for streaming readers) */
} fti_json_opts;

typedef struct fti_json_doc fti_json_doc;
/* Parses text[0..len) (RFC 8259: one value, whitespace around). On success *out owns all nodes.
 * Errors name the byte offset: "offset 17: bad escape \\q". `consumed` (optional) gets the
 * offset after the value. Thread safety: any thread; the doc is read-only after. */
FTIDEF fti_result fti_json_parse(const char *text, size_t len, const fti_json_opts *opts,
                                 fti_json_doc **out, size_t *consumed, fti_error *err);
FTIDEF const fti_json *fti_json_root(const fti_json_doc *doc);
FTIDEF void fti_json_free(fti_json_doc *doc);
/* Member lookup by key or NULL: a key given twice has its last value, as in JavaScript's
 * JSON.parse and Python's json (what OpenAI's clients and server do); element i of an array
 * or NULL. */
FTIDEF const fti_json *fti_json_get(const fti_json *obj, const char *key);
FTIDEF const fti_json *fti_json_at(const fti_json *arr, size_t i);
/* Typed getters with a fallback when missing or of another type. */
FTIDEF const char *fti_json_get_str(const fti_json *obj, const char *key, const char *fallback);
FTIDEF double fti_json_get_num(const fti_json *obj, const char *key, double fallback);
FTIDEF int64_t fti_json_get_int(const fti_json *obj, const char *key, int64_t fallback);

/* A JSON writer into an fti_buf: it places commas and colons itself. Depth <= 64.
 * Numbers that are not finite are written as null. Thread safety: one thread per object. */
typedef struct fti_jw {
    fti_buf *out;
    int depth;
    unsigned char first[64]; /* 1 while the container at this depth has no element yet */
    int pretty;              /* indent with two spaces */
} fti_jw;
FTIDEF void fti_jw_init(fti_jw *w, fti_buf *out, int pretty);
FTIDEF void fti_jw_obj_begin(fti_jw *w);
FTIDEF void fti_jw_obj_end(fti_jw *w);
FTIDEF void fti_jw_arr_begin(fti_jw *w);
FTIDEF void fti_jw_arr_end(fti_jw *w);
FTIDEF void fti_jw_key(fti_jw *w, const char *key);
FTIDEF void fti_jw_keyn(fti_jw *w, const char *key, size_t n); /* key may hold NUL */
FTIDEF void fti_jw_str(fti_jw *w, const char *s);
FTIDEF void fti_jw_strn(fti_jw *w, const char *s, size_t n);
FTIDEF void fti_jw_num(fti_jw *w, double v);
FTIDEF void fti_jw_int(fti_jw *w, int64_t v);
FTIDEF void fti_jw_bool(fti_jw *w, int v);
FTIDEF void fti_jw_null(fti_jw *w);
/* Appends s as a quoted, escaped JSON string to b (invalid UTF-8 becomes U+FFFD). */
FTIDEF void fti_json_escape(fti_buf *b, const char *s, size_t n);

/* --- RNG, clock, logging, progress ----------------------------------------------------------- */

/* A small seedable generator (PCG-style, 64-bit state). The whole state is the struct: copy it
 * to checkpoint it. Thread safety: one thread per object. */
typedef struct fti_rng {
    uint64_t state;
    uint64_t inc;
} fti_rng;
FTIDEF void fti_rng_seed(fti_rng *r, uint64_t seed, uint64_t stream);
FTIDEF uint32_t fti_rng_u32(fti_rng *r);
FTIDEF uint64_t fti_rng_u64(fti_rng *r);
FTIDEF uint32_t fti_rng_below(fti_rng *r, uint32_t bound); /* uniform in [0, bound), unbiased */
FTIDEF float fti_rng_float(fti_rng *r);                    /* uniform in [0, 1) */
FTIDEF double fti_rng_double(fti_rng *r);                  /* uniform in [0, 1) */
FTIDEF float fti_rng_normal(fti_rng *r);                   /* standard normal */

/* Monotonic time in nanoseconds (arbitrary origin), and wall-clock seconds since the epoch. */
FTIDEF uint64_t fti_time_ns(void);
FTIDEF double fti_time_wall(void);
/* UTC time as "YYYY-MM-DDTHH:MM:SSZ" into out (at least 21 bytes). Times before the year 0 or
 * after 9999 give its first or last second; NaN gives the epoch. */
FTIDEF void fti_time_iso8601(double wall_seconds, char out[32]);

/* Log levels and callback. Library code never prints: objects take an optional fti_log_fn in
 * their opts and report through it. */
typedef enum fti_log_level {
    FTI_LOG_DEFAULT = 0,
    FTI_LOG_DEBUG,
    FTI_LOG_INFO,
    FTI_LOG_WARN,
    FTI_LOG_ERROR
} fti_log_level;
typedef void (*fti_log_fn)(void *user, fti_log_level level, const char *msg);

/* A progress bar for programs (the library itself never draws one): on a terminal it redraws
 * one line at most 10 times a second with count, rate and ETA; otherwise it prints one summary
 * line at fti_progress_end. `stream` is a FILE* (usually stderr), kept as void* so this header
 * need not include stdio.h. total 0 means unknown. Thread safety: one thread per object. */
typedef struct fti_progress {
    void *stream;
    char label[48];
    char unit[16];
    uint64_t total;
    uint64_t done;
    uint64_t t_start_ns;
    uint64_t t_last_ns;
    int is_tty;
    int drawn;
} fti_progress;
FTIDEF void fti_progress_begin(fti_progress *p, void *stream, const char *label, const char *unit,
                               uint64_t total);
FTIDEF void fti_progress_update(fti_progress *p, uint64_t done, const char *extra);
FTIDEF void fti_progress_end(fti_progress *p, const char *extra);

/* Environment helpers: integer value of an environment variable, or fallback. */
FTIDEF long fti_env_long(const char *name, long fallback);
/* Number of online CPUs (at least 1). */
FTIDEF int fti_cpu_count(void);

#ifdef __cplusplus
}
#endif
#endif /* FTI_BASE_H */
