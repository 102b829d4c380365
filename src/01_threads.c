/* === threads: implementation === */
#include "01_threads.h"

#if !defined(FTI_NO_THREADS) && !defined(_WIN32)
#include <pthread.h>
#define FTI__HAVE_THREADS 1
#else
#define FTI__HAVE_THREADS 0
#endif

/* Atomics: GCC/Clang builtins where available; otherwise every handoff goes through the mutex. */
#if FTI__HAVE_THREADS && (defined(__GNUC__) || defined(__clang__)) && !defined(__TINYC__)
#define FTI__ATOMICS 1
#include <sched.h>
#define FTI__LOAD(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define FTI__STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define FTI__RLOAD(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define FTI__RSTORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define FTI__ADD(p, v) __atomic_add_fetch((p), (v), __ATOMIC_ACQ_REL)
#define FTI__CAS(p, expect, v)                                                                    \
    __atomic_compare_exchange_n((p), (expect), (v), 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)
#if defined(__x86_64__) || defined(__i386__)
#define FTI__PAUSE() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define FTI__PAUSE() __asm__ __volatile__("yield")
#else
#define FTI__PAUSE() ((void)0)
#endif
#else
#define FTI__ATOMICS 0
#endif

/* How long an idle worker (or the caller waiting for a chunk a worker took) waits actively
 * before sleeping; for the first FTI_POOL_PAUSE_NS of that it only spins, then it also gives
 * its core away (sched_yield) each round, so a thread sharing one core with the thread it
 * waits for does not hold that thread off. */
#ifndef FTI_POOL_SPIN_NS
#define FTI_POOL_SPIN_NS 200000u
#endif
#ifndef FTI_POOL_PAUSE_NS
#define FTI_POOL_PAUSE_NS 20000u
#endif

/* The job word: generation << 29 | chunks << 17 | each << 16 | the next unclaimed chunk (< 2^16).
 * The chunk count is in the word, not only in n_chunks, so a worker still holding the word of a
 * finished job cannot claim "chunk k" of it after the caller has written the next job's
 * parameters (n_chunks bigger) but not yet its word: its claim sees next >= chunks and stops. */
#define FTI__POOL_EACH ((uint64_t)1 << 16)
#define FTI__POOL_NEXT ((uint64_t)0xffff)
#define FTI__POOL_GEN(w) ((w) >> 29)
#define FTI__POOL_K(w) ((int)(((w) >> 17) & 0xfff))
#define FTI__POOL_WORD(gen, k, each) \
    (((uint64_t)(gen) << 29) | ((uint64_t)(k) << 17) | ((each) ? FTI__POOL_EACH : 0))

typedef struct fti__pool_scratch {
    void *p;
    size_t bytes;
} fti__pool_scratch;

struct fti_pool {
    int n_threads;
    fti__pool_scratch *scratch; /* per thread index (fti_pool_scratch) */
#if FTI__HAVE_THREADS
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t cv_work;
    pthread_cond_t cv_done;
    int started; /* workers successfully created */
    /* the current job (written by the caller before it publishes `job`) */
    fti_pool_fn fn;
    void *ctx;
    size_t n;
    int n_chunks;
    uint64_t job;  /* the job word (above); a new generation wakes the workers */
    int n_done;    /* chunks finished */
    int stop;
#endif
};

#if FTI__HAVE_THREADS
/* Chunk t of k over [0, n): sizes differ by at most one, the larger ones first. */
static void fti__pool_chunk(size_t n, int k, int t, size_t *begin, size_t *end) {
    size_t base = n / (size_t)k, extra = n % (size_t)k, tt = (size_t)t;
    *begin = base * tt + (tt < extra ? tt : extra);
    *end = *begin + base + (tt < extra ? 1 : 0);
}

typedef struct fti__worker_arg {
    fti_pool *pool;
    int id;
} fti__worker_arg;

static void fti__pool_run(fti_pool_fn fn, void *ctx, size_t n, int k, int id, int each) {
    size_t b, e;
    if (each) {
        fn(ctx, (size_t)id, (size_t)id + 1, id);
        return;
    }
    fti__pool_chunk(n, k, id, &b, &e);
    if (b < e) fn(ctx, b, e, id);
}

#if FTI__ATOMICS
/* Waits actively until *word (a job word) leaves generation `gen` (is_job) or *word (n_done)
 * reaches `target`, at most FTI_POOL_SPIN_NS; returns whether it did. After FTI_POOL_PAUSE_NS it
 * gives its core away each round: the thread it waits for may be waiting for this very core
 * (two pool threads on one core while another program has the other). Measured on 2 cores with
 * two background processes: without it, prefill at 2 threads ran 1.3-1.7x slower than at 1. */
static int fti__pool_spin(const void *word, int is_job, uint64_t gen, int target,
                          const int *stop) {
    uint64_t t0 = 0;
    unsigned spins = 0;
    for (;;) {
        if (is_job) {
            if (FTI__POOL_GEN(FTI__LOAD((const uint64_t *)word)) != gen || FTI__LOAD(stop))
                return 1;
        } else if (FTI__LOAD((const int *)word) == target) {
            return 1;
        }
        if (t0) {
            uint64_t dt = fti_time_ns() - t0;
            if (dt > FTI_POOL_SPIN_NS) return 0;
            if (dt > FTI_POOL_PAUSE_NS) {
                sched_yield();
                continue;
            }
        }
        FTI__PAUSE();
        if ((++spins & 63) == 0 && !t0) t0 = fti_time_ns();
    }
}

/* Claims the next chunk of job word w's job (an fti_pool_for job), with the job's parameters;
 * returns the chunk, or -1 when none is left or the job is no longer current (*w then holds the
 * current word). The parameters are read between loading the word and claiming: if the caller
 * finished the job and published another in between, the claim fails and they are not used. */
static int fti__pool_claim(fti_pool *p, uint64_t *w, fti_pool_fn *fn, void **ctx, size_t *n,
                           int *k) {
    for (;;) {
        uint64_t cur = *w;
        int next = (int)(cur & FTI__POOL_NEXT);
        if (cur & FTI__POOL_EACH) return -1;
        *fn = FTI__RLOAD(&p->fn);
        *ctx = FTI__RLOAD(&p->ctx);
        *n = FTI__RLOAD(&p->n);
        *k = FTI__POOL_K(cur);
        if (next >= *k) {
            *w = FTI__LOAD(&p->job);
            if (*w == cur) return -1;
            continue;
        }
        if (FTI__CAS(&p->job, w, cur + 1)) {
            *w = cur + 1;
            return next;
        }
        if (FTI__POOL_GEN(*w) != FTI__POOL_GEN(cur)) return -1;
    }
}

/* One chunk done; the one finishing the job wakes a sleeping caller. */
static void fti__pool_done(fti_pool *p, int k) {
    if (FTI__ADD(&p->n_done, 1) == k) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_signal(&p->cv_done);
        pthread_mutex_unlock(&p->mu);
    }
}
#endif

static void *fti__pool_worker(void *arg) {
    fti__worker_arg *wa = (fti__worker_arg *)arg;
    fti_pool *p = wa->pool;
    int id = wa->id;
    uint64_t seen = 0;
    int spin = 1; /* whether to wait for the next job actively */
    fti_free(wa);
    for (;;) {
#if FTI__ATOMICS
        uint64_t w;
        if (!spin || !fti__pool_spin(&p->job, 1, seen, 0, &p->stop)) {
            pthread_mutex_lock(&p->mu);
            while (FTI__POOL_GEN(FTI__LOAD(&p->job)) == seen && !FTI__LOAD(&p->stop))
                pthread_cond_wait(&p->cv_work, &p->mu);
            pthread_mutex_unlock(&p->mu);
        }
        if (FTI__LOAD(&p->stop)) break;
        w = FTI__LOAD(&p->job);
        seen = FTI__POOL_GEN(w);
        if (w & FTI__POOL_EACH) {
            /* every thread's chunk is needed: the job stays current until this one is done */
            int k = FTI__POOL_K(w);
            if (id < k) {
                fti__pool_run(FTI__RLOAD(&p->fn), FTI__RLOAD(&p->ctx), FTI__RLOAD(&p->n), k, id, 1);
                fti__pool_done(p, k);
            }
            spin = 1;
        } else {
            fti_pool_fn fn;
            void *ctx;
            size_t n;
            int k, c;
            /* a worker that came too late for any chunk (no core of its own just now: the
             * caller ran them all) sleeps until the next job instead of spinning: spinning on a
             * core the caller or another program needs would only slow them */
            spin = 0;
            while ((c = fti__pool_claim(p, &w, &fn, &ctx, &n, &k)) >= 0) {
                fti__pool_run(fn, ctx, n, k, c, 0);
                fti__pool_done(p, k);
                spin = 1;
            }
        }
#else
        int c, each;
        pthread_mutex_lock(&p->mu);
        while (FTI__POOL_GEN(p->job) == seen && !p->stop) pthread_cond_wait(&p->cv_work, &p->mu);
        if (p->stop) {
            pthread_mutex_unlock(&p->mu);
            break;
        }
        seen = FTI__POOL_GEN(p->job);
        each = (p->job & FTI__POOL_EACH) != 0;
        for (;;) { /* claims under the mutex; the job stays current while a chunk is out */
            if (each == 1) {
                c = id < p->n_chunks ? id : -1;
                each = 2; /* its one chunk only */
            } else if (each == 2 || (int)(p->job & FTI__POOL_NEXT) >= p->n_chunks) {
                c = -1;
            } else {
                c = (int)(p->job++ & FTI__POOL_NEXT);
            }
            if (c < 0) break;
            pthread_mutex_unlock(&p->mu);
            fti__pool_run(p->fn, p->ctx, p->n, p->n_chunks, c, each != 0);
            pthread_mutex_lock(&p->mu);
            if (++p->n_done == p->n_chunks) pthread_cond_signal(&p->cv_done);
        }
        pthread_mutex_unlock(&p->mu);
#endif
    }
    return NULL;
}
#endif

FTIDEF fti_pool *fti_pool_create(int n_threads) {
    fti_pool *p;
    if (n_threads <= 0) {
        long env = fti_env_long("FTI_THREADS", 0);
        n_threads = env > 0 ? (int)(env > 256 ? 256 : env) : fti_cpu_count();
    }
    if (n_threads > 256) n_threads = 256;
#if !FTI__HAVE_THREADS
    n_threads = 1;
#endif
    p = (fti_pool *)fti_calloc(1, sizeof *p);
    if (!p) return NULL;
    p->n_threads = n_threads;
    p->scratch = (fti__pool_scratch *)fti_calloc((size_t)n_threads, sizeof *p->scratch);
    if (!p->scratch) {
        fti_free(p);
        return NULL;
    }
#if FTI__HAVE_THREADS
    if (n_threads > 1) {
        int i;
        p->threads = (pthread_t *)fti_calloc((size_t)n_threads, sizeof(pthread_t));
        if (!p->threads) {
            fti_free(p->scratch);
            fti_free(p);
            return NULL;
        }
        if (pthread_mutex_init(&p->mu, NULL) != 0) {
            fti_free(p->threads);
            fti_free(p->scratch);
            fti_free(p);
            return NULL;
        }
        if (pthread_cond_init(&p->cv_work, NULL) != 0) {
            pthread_mutex_destroy(&p->mu);
            fti_free(p->threads);
            fti_free(p->scratch);
            fti_free(p);
            return NULL;
        }
        if (pthread_cond_init(&p->cv_done, NULL) != 0) {
            pthread_cond_destroy(&p->cv_work);
            pthread_mutex_destroy(&p->mu);
            fti_free(p->threads);
            fti_free(p->scratch);
            fti_free(p);
            return NULL;
        }
        for (i = 1; i < n_threads; i++) {
            fti__worker_arg *wa = (fti__worker_arg *)fti_malloc(sizeof *wa);
            if (!wa) break;
            wa->pool = p;
            wa->id = i;
            if (pthread_create(&p->threads[i], NULL, fti__pool_worker, wa) != 0) {
                fti_free(wa);
                break;
            }
            p->started++;
        }
        if (p->started != n_threads - 1) {
            fti_pool_free(p);
            return NULL;
        }
    }
#endif
    return p;
}

FTIDEF void fti_pool_free(fti_pool *p) {
    int i;
    if (!p) return;
#if FTI__HAVE_THREADS
    if (p->n_threads > 1) {
        pthread_mutex_lock(&p->mu);
#if FTI__ATOMICS
        FTI__STORE(&p->stop, 1);
#else
        p->stop = 1;
#endif
        pthread_cond_broadcast(&p->cv_work);
        pthread_mutex_unlock(&p->mu);
        for (i = 1; i <= p->started; i++) pthread_join(p->threads[i], NULL);
        pthread_cond_destroy(&p->cv_done);
        pthread_cond_destroy(&p->cv_work);
        pthread_mutex_destroy(&p->mu);
        fti_free(p->threads);
    }
#endif
    for (i = 0; i < p->n_threads; i++) fti_aligned_free(p->scratch[i].p);
    fti_free(p->scratch);
    fti_free(p);
}

FTIDEF int fti_pool_threads(const fti_pool *pool) { return pool ? pool->n_threads : 1; }

FTIDEF void *fti_pool_scratch(fti_pool *pool, int thread, size_t bytes) {
    fti__pool_scratch *s;
    if (!pool || thread < 0 || thread >= pool->n_threads) return NULL;
    s = &pool->scratch[thread];
    if (s->bytes < bytes || !s->p) {
        fti_aligned_free(s->p);
        s->bytes = 0;
        s->p = fti_aligned_alloc(bytes ? bytes : 1, 64);
        if (!s->p) return NULL;
        s->bytes = bytes;
    }
    return s->p;
}

#if FTI__HAVE_THREADS
/* Publishes a job of k chunks and works on it until every chunk is done: an fti_pool_each job
 * (each) runs chunk 0 here and chunk t on worker t; otherwise the caller and the workers claim
 * chunks in order, so a chunk no worker has started yet (a worker asleep, or descheduled
 * because another thread has its core) is run here instead of waited for. */
static void fti__pool_dispatch(fti_pool *p, fti_pool_fn fn, void *ctx, size_t n, int k,
                               int each) {
#if FTI__ATOMICS
    uint64_t w = FTI__POOL_WORD(FTI__POOL_GEN(FTI__RLOAD(&p->job)) + 1, k, each);
    FTI__RSTORE(&p->fn, fn);
    FTI__RSTORE(&p->ctx, ctx);
    FTI__RSTORE(&p->n, n);
    FTI__RSTORE(&p->n_chunks, k);
    FTI__RSTORE(&p->n_done, 0);
    pthread_mutex_lock(&p->mu);
    FTI__STORE(&p->job, w);
    pthread_cond_broadcast(&p->cv_work);
    pthread_mutex_unlock(&p->mu);
    if (each) {
        fti__pool_run(fn, ctx, n, k, 0, 1);
        fti__pool_done(p, k);
    } else {
        fti_pool_fn f;
        void *c;
        size_t nn;
        int kk, t;
        while ((t = fti__pool_claim(p, &w, &f, &c, &nn, &kk)) >= 0) {
            fti__pool_run(fn, ctx, n, k, t, 0);
            fti__pool_done(p, k);
        }
    }
    if (!fti__pool_spin(&p->n_done, 0, 0, k, &p->stop)) {
        pthread_mutex_lock(&p->mu);
        while (FTI__LOAD(&p->n_done) != k) pthread_cond_wait(&p->cv_done, &p->mu);
        pthread_mutex_unlock(&p->mu);
    }
#else
    int t;
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->ctx = ctx;
    p->n = n;
    p->n_chunks = k;
    p->n_done = 0;
    p->job = FTI__POOL_WORD(FTI__POOL_GEN(p->job) + 1, k, each);
    pthread_cond_broadcast(&p->cv_work);
    for (t = 0;;) {
        if (!each) {
            t = (int)(p->job & FTI__POOL_NEXT);
            if (t >= k) break;
            p->job++;
        }
        pthread_mutex_unlock(&p->mu);
        fti__pool_run(fn, ctx, n, k, t, each);
        pthread_mutex_lock(&p->mu);
        p->n_done++;
        if (each) break;
    }
    while (p->n_done != k) pthread_cond_wait(&p->cv_done, &p->mu);
    pthread_mutex_unlock(&p->mu);
#endif
}
#endif

FTIDEF void fti_pool_for(fti_pool *pool, size_t n, size_t grain, fti_pool_fn fn, void *ctx) {
    size_t k;
    if (n == 0 || !fn) return;
    if (grain == 0) grain = 1;
    k = pool ? (size_t)pool->n_threads : 1;
    if (k > (n + grain - 1) / grain) k = (n + grain - 1) / grain;
    if (k <= 1) {
        fn(ctx, 0, n, 0);
        return;
    }
#if FTI__HAVE_THREADS
    fti__pool_dispatch(pool, fn, ctx, n, (int)k, 0);
#endif
}

FTIDEF void fti_pool_each(fti_pool *pool, fti_pool_fn fn, void *ctx) {
    if (!fn) return;
    if (!pool || pool->n_threads <= 1) {
        fn(ctx, 0, 1, 0);
        return;
    }
#if FTI__HAVE_THREADS
    fti__pool_dispatch(pool, fn, ctx, (size_t)pool->n_threads, pool->n_threads, 1);
#endif
}
FTIDEF fti_result fti_mutex_init(fti_mutex *m) {
    if (!m) return FTI_ERR_INVALID;
    m->impl = NULL;
#if FTI__HAVE_THREADS
    m->impl = fti_malloc(sizeof(pthread_mutex_t));
    if (!m->impl) return FTI_ERR_NOMEM;
    if (pthread_mutex_init((pthread_mutex_t *)m->impl, NULL) != 0) {
        fti_free(m->impl);
        m->impl = NULL;
        return FTI_ERR_NOMEM;
    }
#endif
    return FTI_OK;
}

FTIDEF void fti_mutex_lock(fti_mutex *m) {
#if FTI__HAVE_THREADS
    if (m && m->impl) pthread_mutex_lock((pthread_mutex_t *)m->impl);
#else
    (void)m;
#endif
}

FTIDEF void fti_mutex_unlock(fti_mutex *m) {
#if FTI__HAVE_THREADS
    if (m && m->impl) pthread_mutex_unlock((pthread_mutex_t *)m->impl);
#else
    (void)m;
#endif
}

FTIDEF void fti_mutex_destroy(fti_mutex *m) {
#if FTI__HAVE_THREADS
    if (m && m->impl) {
        pthread_mutex_destroy((pthread_mutex_t *)m->impl);
        fti_free(m->impl);
        m->impl = NULL;
    }
#else
    (void)m;
#endif
}
