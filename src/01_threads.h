/* === threads: a persistent worker pool with a deterministic parallel-for === */
/*
 * A pool owns n-1 worker threads; the calling thread is worker 0, so a pool of 1 runs everything
 * inline. fti_pool_for splits [0, n) into one contiguous chunk per thread, always the same chunks
 * for the same (n, n_threads): kernels that split over output rows and reduce in a fixed order
 * give bit-identical results for any thread count. Workers spin briefly (giving their core away
 * after FTI_POOL_PAUSE_NS, 20 us), then sleep on a condition variable after FTI_POOL_SPIN_NS
 * (200 us), so back-to-back calls (one per matmul in prefill) stay cheap without a spinning
 * thread holding off a thread that shares its core.
 *
 * Under FTI_NO_THREADS (or where pthreads is missing) the pool has one thread and runs serially.
 * The pool does not nest: a task must not call fti_pool_for on the same pool.
 */
#ifndef FTI_THREADS_H
#define FTI_THREADS_H

#include "00_base.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct fti_pool fti_pool;

/* Work function: process items [begin, end) as worker `thread` (0 .. n_threads-1). */
typedef void (*fti_pool_fn)(void *ctx, size_t begin, size_t end, int thread);

/* Creates a pool of n_threads (0 = $FTI_THREADS if set, else the number of CPUs; capped at 256).
 * Returns NULL on failure (out of memory, thread creation failed). Free with fti_pool_free.
 * Thread safety: one thread submits work at a time. */
FTIDEF fti_pool *fti_pool_create(int n_threads);
FTIDEF void fti_pool_free(fti_pool *pool);
/* Thread count of a pool; NULL counts as 1. */
FTIDEF int fti_pool_threads(const fti_pool *pool);

/* Runs fn over [0, n) split into min(n_threads, n) contiguous chunks and waits for all of them.
 * `grain` (>= 1) is the smallest chunk worth a thread: fewer threads are used when n/grain is
 * small. Chunk t is [n*t/k, n*(t+1)/k) for k chunks and is passed as `thread` = t. The caller
 * and the workers claim chunks in order, so which OS thread runs chunk t varies (a chunk no
 * worker has started when the caller finishes its own is run by the caller: a worker without a
 * core never holds the call up); `thread` stays unique within a call. A NULL pool runs
 * fn(ctx, 0, n, 0) inline. */
FTIDEF void fti_pool_for(fti_pool *pool, size_t n, size_t grain, fti_pool_fn fn, void *ctx);

/* Runs fn once per thread: fn(ctx, t, t+1, t) for t in [0, n_threads), thread t's call on
 * thread t (the caller is thread 0), all at once: fn may wait for the other threads. */
FTIDEF void fti_pool_each(fti_pool *pool, fti_pool_fn fn, void *ctx);

/* Scratch memory for the call running as `thread` (the task's argument) of the pool: at least
 * `bytes`, 64-byte aligned, kept across calls (grown when asked for more), freed with the pool;
 * NULL for a NULL pool, a bad index or no memory. Only the task running as `thread` (or the
 * caller between calls) may use it: a product that packs its operands on every call takes its
 * buffers here instead of allocating them (per-call malloc/free of a few hundred KB made the C
 * library map and trim the heap on every call). */
FTIDEF void *fti_pool_scratch(fti_pool *pool, int thread, size_t bytes);

/* A mutex usable by other parts (server, registry); a no-op under FTI_NO_THREADS. */
typedef struct fti_mutex {
    void *impl;
} fti_mutex;
FTIDEF fti_result fti_mutex_init(fti_mutex *m);
FTIDEF void fti_mutex_lock(fti_mutex *m);
FTIDEF void fti_mutex_unlock(fti_mutex *m);
FTIDEF void fti_mutex_destroy(fti_mutex *m);

#ifdef __cplusplus
}
#endif
#endif /* FTI_THREADS_H */
