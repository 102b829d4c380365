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
#define FTI__LOAD(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define FTI__STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define FTI__ADD(p, v) __atomic_add_fetch((p), (v), __ATOMIC_ACQ_REL)
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

/* How long an idle worker (or the waiting caller) spins before sleeping. */
#ifndef FTI_POOL_SPIN_NS
#define FTI_POOL_SPIN_NS 200000u
#endif

struct fti_pool {
    int n_threads;
#if FTI__HAVE_THREADS
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t cv_work;
    pthread_cond_t cv_done;
    int started; /* workers successfully created */
    /* the current job, published by bumping `generation` */
    fti_pool_fn fn;
    void *ctx;
    size_t n;
    int n_chunks;
    int each; /* fti_pool_each: chunk t is [t, t+1) */
    uint64_t generation;
    int n_done;
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

static void fti__pool_run_chunk(fti_pool *p, int id) {
    size_t b, e;
    if (id >= p->n_chunks) return;
    if (p->each) {
        p->fn(p->ctx, (size_t)id, (size_t)id + 1, id);
        return;
    }
    fti__pool_chunk(p->n, p->n_chunks, id, &b, &e);
    if (b < e) p->fn(p->ctx, b, e, id);
}

static void *fti__pool_worker(void *arg) {
    fti__worker_arg *wa = (fti__worker_arg *)arg;
    fti_pool *p = wa->pool;
    int id = wa->id;
    uint64_t seen = 0;
    fti_free(wa);
    for (;;) {
        uint64_t gen;
#if FTI__ATOMICS
        {
            uint64_t t0 = 0;
            unsigned spins = 0;
            for (;;) {
                gen = FTI__LOAD(&p->generation);
                if (gen != seen || FTI__LOAD(&p->stop)) break;
                FTI__PAUSE();
                if ((++spins & 255) == 0) {
                    uint64_t now = fti_time_ns();
                    if (!t0) t0 = now;
                    else if (now - t0 > FTI_POOL_SPIN_NS) break;
                }
            }
        }
        if (gen == seen && !FTI__LOAD(&p->stop)) {
            pthread_mutex_lock(&p->mu);
            while (p->generation == seen && !p->stop) pthread_cond_wait(&p->cv_work, &p->mu);
            pthread_mutex_unlock(&p->mu);
        }
        if (FTI__LOAD(&p->stop)) break;
        gen = FTI__LOAD(&p->generation);
#else
        pthread_mutex_lock(&p->mu);
        while (p->generation == seen && !p->stop) pthread_cond_wait(&p->cv_work, &p->mu);
        gen = p->generation;
        if (p->stop) {
            pthread_mutex_unlock(&p->mu);
            break;
        }
        pthread_mutex_unlock(&p->mu);
#endif
        seen = gen;
        fti__pool_run_chunk(p, id);
#if FTI__ATOMICS
        if (FTI__ADD(&p->n_done, 1) == p->n_threads - 1) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->cv_done);
            pthread_mutex_unlock(&p->mu);
        }
#else
        pthread_mutex_lock(&p->mu);
        if (++p->n_done == p->n_threads - 1) pthread_cond_signal(&p->cv_done);
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
#if FTI__HAVE_THREADS
    if (n_threads > 1) {
        int i;
        p->threads = (pthread_t *)fti_calloc((size_t)n_threads, sizeof(pthread_t));
        if (!p->threads) {
            fti_free(p);
            return NULL;
        }
        if (pthread_mutex_init(&p->mu, NULL) != 0) {
            fti_free(p->threads);
            fti_free(p);
            return NULL;
        }
        if (pthread_cond_init(&p->cv_work, NULL) != 0) {
            pthread_mutex_destroy(&p->mu);
            fti_free(p->threads);
            fti_free(p);
            return NULL;
        }
        if (pthread_cond_init(&p->cv_done, NULL) != 0) {
            pthread_cond_destroy(&p->cv_work);
            pthread_mutex_destroy(&p->mu);
            fti_free(p->threads);
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
    if (!p) return;
#if FTI__HAVE_THREADS
    if (p->n_threads > 1) {
        int i;
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
    fti_free(p);
}

FTIDEF int fti_pool_threads(const fti_pool *pool) { return pool ? pool->n_threads : 1; }

#if FTI__HAVE_THREADS
static void fti__pool_dispatch(fti_pool *p, fti_pool_fn fn, void *ctx, size_t n, int n_chunks,
                               int each) {
    p->fn = fn;
    p->ctx = ctx;
    p->n = n;
    p->n_chunks = n_chunks;
    p->each = each;
#if FTI__ATOMICS
    FTI__STORE(&p->n_done, 0);
    pthread_mutex_lock(&p->mu);
    FTI__STORE(&p->generation, p->generation + 1);
    pthread_cond_broadcast(&p->cv_work);
    pthread_mutex_unlock(&p->mu);
    fti__pool_run_chunk(p, 0);
    {
        uint64_t t0 = fti_time_ns();
        unsigned spins = 0;
        while (FTI__LOAD(&p->n_done) != p->n_threads - 1) {
            FTI__PAUSE();
            if ((++spins & 255) == 0 && fti_time_ns() - t0 > FTI_POOL_SPIN_NS) {
                pthread_mutex_lock(&p->mu);
                while (FTI__LOAD(&p->n_done) != p->n_threads - 1)
                    pthread_cond_wait(&p->cv_done, &p->mu);
                pthread_mutex_unlock(&p->mu);
                break;
            }
        }
    }
#else
    pthread_mutex_lock(&p->mu);
    p->n_done = 0;
    p->generation++;
    pthread_cond_broadcast(&p->cv_work);
    pthread_mutex_unlock(&p->mu);
    fti__pool_run_chunk(p, 0);
    pthread_mutex_lock(&p->mu);
    while (p->n_done != p->n_threads - 1) pthread_cond_wait(&p->cv_done, &p->mu);
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
