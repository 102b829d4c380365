/* test_fault.c: allocation and I/O fault injection over the public operations (issue 10), in
 * the style of SQLite's fault loops.
 *
 * Allocation (fault_alloc_*): an operation is run once to count its allocations A, then again
 * with the k-th allocation failing, once and persistently, for every k <= A (FTI_FAULT_STRIDE=s
 * tests every s-th k; the default stride keeps each loop near 100 runs, FTI_FAULT_FULL=1 tests
 * every k). Each failed run must return FTI_ERR_NOMEM with a message, leave zero live
 * allocations after cleanup, leave the on-disk state verifying, and the next run without faults
 * must succeed (the handle or workspace is still usable).
 *
 * I/O (fault_io_*): the same loop over the I/O layer's calls (open, read, write, fsync, rename,
 * close, mkdir) of a dataset commit, a checkpoint write and an alias move, failing the k-th call
 * with EIO (once), ENOSPC (persistently), EINTR (once, on reads and writes: the calls that see
 * it on regular files) and a short transfer (once). EINTR and short transfers must not change
 * the result; EIO/ENOSPC may fail the operation, but then with
 * an error naming the problem, the previous state intact and verifying, no file descriptor leaked
 * (/proc/self/fd counted) and no allocation leaked. A failed fsync always fails the operation.
 *
 * Crash steps for checkpoint writes (crash_checkpoint_steps) complete test_crash.c's commit and
 * alias-move cases: a child _exits before each I/O step of a checkpoint write; the file then
 * holds the old or the new checkpoint, whole.
 *
 * The workspaces live on /dev/shm when it exists (fsync is cheap there: the loops test the
 * logic, the crash tests in test_crash.c use the real disk), else in the test's temp dir. */
#include <signal.h>
#include "test_util_state.h"
#include <sys/wait.h>
#include <unistd.h>

/* --- helpers ------------------------------------------------------------------------------ */

static char fault_dir_buf[512];

/* A fresh scratch directory for this test (on tmpfs when there is one). */
FTI__UNUSED static const char *fault_dir(void) {
    struct stat st;
    if (stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && access("/dev/shm", W_OK) == 0) {
        snprintf(fault_dir_buf, sizeof fault_dir_buf, "/dev/shm/fti-fault-%ld", (long)getpid());
    } else {
        snprintf(fault_dir_buf, sizeof fault_dir_buf, "%s/fault", fti_test_tmp_dir);
    }
    fti_mkdirs(fault_dir_buf, NULL);
    return fault_dir_buf;
}

FTI__UNUSED static void fault_dir_done(void) {
    char cmd[700];
    if (strncmp(fault_dir_buf, "/dev/shm/", 9) != 0) return; /* the runner removes its temp dir */
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fault_dir_buf);
    if (system(cmd) != 0) fprintf(stderr, "    warning: could not remove %s\n", fault_dir_buf);
}

FTI__UNUSED static const char *fault_path(const char *rel) {
    static char slots[4][700];
    static int k = 0;
    char *s = slots[k++ & 3];
    snprintf(s, sizeof slots[0], "%s/%s", fault_dir_buf, rel);
    return s;
}

static long fault_stride(long total) {
    long s = fti_env_long("FTI_FAULT_STRIDE", 0);
    if (fti_env_long("FTI_FAULT_FULL", 0)) return 1;
    if (s > 0) return s;
    s = total / 50; /* about 50 k values (I/O: 4 x 12), each once and persistently */
    return s < 1 ? 1 : s;
}

/* An operation under test: runs and cleans up everything it made in memory; returns its result. */
typedef fti_result (*fault_op_fn)(void *ctx, fti_error *err);
/* Checks the state after a run (failed or not); returns 1 if fine. */
typedef int (*fault_check_fn)(void *ctx);

/* 1 while the loops run an operation with a fault armed (an operation may check its result
 * against a run without faults). */
static int fault_armed = 0;
/* The fault armed (while fault_armed): the k-th allocation fails, once or persistently. */
static long fault_k = 0;
static int fault_persistent = 0;

/* Allocations counted since the fault was armed (the server's threads count too). */
FTI__UNUSED static long fault_alloc_count_now(void) {
#if (defined(__GNUC__) || defined(__clang__)) && !defined(__TINYC__)
    return __atomic_load_n(&fti_test_alloc_count, __ATOMIC_SEQ_CST);
#else
    return fti_test_alloc_count;
#endif
}

/* The allocation loop. Returns the number of allocations A of one run. */
static long fault_alloc_loop(const char *what, fault_op_fn op, fault_check_fn check, void *ctx) {
    long A, k, stride, runs = 0, failed = 0, fd0;
    long live0 = fti_test_alloc_live;
    fti_error err;
    fti_result r;
    fti_test_alloc_fail_at(0, 0);
    r = op(ctx, &err);
    A = fti_test_alloc_count;
    if (r != FTI_OK) {
        fprintf(stderr, "    %s: the run without faults failed: %s\n", what, err.msg);
        fti_test_failures++;
        return 0;
    }
    CHECK_EQ_INT(fti_test_alloc_live, live0);
    fd0 = tu_fd_count();
    stride = fault_stride(A);
    for (k = 1; k <= A; k += stride) {
        int persistent;
        for (persistent = 0; persistent < 2; persistent++) {
            err.msg[0] = 0;
            fti_test_alloc_fail_at(k, persistent);
            fault_k = k;
            fault_persistent = persistent;
            fault_armed = 1;
            r = op(ctx, &err);
            fault_armed = 0;
            fti_test_alloc_fail_at(0, 0);
            runs++;
            if (r != FTI_OK) failed++;
            if (r != FTI_OK && (r != FTI_ERR_NOMEM || err.msg[0] == 0)) {
                fprintf(stderr, "    %s: allocation %ld of %ld failing (%s): result %s, \"%s\"\n",
                        what, k, A, persistent ? "persistent" : "once", fti_result_str(r),
                        err.msg);
                fti_test_failures++;
                return A;
            }
            if (fti_test_alloc_live != live0) {
                fprintf(
                    stderr, "    %s: allocation %ld of %ld failing (%s): %ld allocations leaked\n",
                    what, k, A, persistent ? "persistent" : "once", fti_test_alloc_live - live0);
                fti_test_failures++;
                return A;
            }
            if (tu_fd_count() != fd0) {
                fprintf(stderr,
                        "    %s: allocation %ld failing: %d file descriptors open, not %ld\n", what,
                        k, tu_fd_count(), fd0);
                fti_test_failures++;
                return A;
            }
            if (check && !check(ctx)) {
                fprintf(stderr, "    %s: allocation %ld of %ld failing (%s): state check failed\n",
                        what, k, A, persistent ? "persistent" : "once");
                fti_test_failures++;
                return A;
            }
        }
    }
    /* still usable */
    r = op(ctx, &err);
    if (r != FTI_OK) {
        fprintf(stderr, "    %s: the run after the loop failed: %s\n", what, err.msg);
        fti_test_failures++;
    }
    fprintf(stderr, "    %s: %ld allocations, %ld faulty runs (stride %ld), %ld failed cleanly\n",
            what, A, runs, stride, failed);
    return A;
}

/* The I/O loop: mode 0 EIO once, 1 ENOSPC persistent, 2 EINTR once, 3 short transfer once,
 * 4 fsync failing (only fsync calls counted). Calls on scratch files (the streaming ingest's
 * index temp files) count too. Returns the number of counted calls. */
#define RW_SCRATCH (FTI__IO_READ | FTI__IO_WRITE | FTI__IO_SCRATCH)
FTI__UNUSED static long fault_io_loop(const char *what, fault_op_fn op, fault_check_fn check,
                                      void *ctx) {
    static const char *names[5] = {"EIO", "ENOSPC", "EINTR", "short", "fsync EIO"};
    long N, n_fsync, k, stride, runs = 0, failed = 0;
    int mode, fd0;
    long live0 = fti_test_alloc_live;
    fti_error err;
    fti_result r;
    fti__io_fault_set(FTI__IO_ALL | FTI__IO_SCRATCH, LONG_MAX, 0, 0, 0);
    r = op(ctx, &err);
    N = fti__io_fault.count;
    fti__io_fault_set(FTI__IO_FSYNC, LONG_MAX, 0, 0, 0);
    op(ctx, &err);
    n_fsync = fti__io_fault.count;
    fti__io_fault_set(0, 0, 0, 0, 0);
    if (r != FTI_OK) {
        fprintf(stderr, "    %s: the run without faults failed: %s\n", what, err.msg);
        fti_test_failures++;
        return 0;
    }
    fd0 = tu_fd_count();
    stride = fault_stride(N / 4);
    for (mode = 0; mode < 5; mode++) {
        long n = mode == 4 ? n_fsync : N;
        for (k = 1; k <= n; k += (mode == 4 ? 1 : stride)) {
            int fired;
            err.msg[0] = 0;
            switch (mode) {
            case 0: fti__io_fault_set(FTI__IO_ALL | FTI__IO_SCRATCH, k, EIO, 0, 0); break;
            case 1: fti__io_fault_set(FTI__IO_ALL | FTI__IO_SCRATCH, k, ENOSPC, 1, 0); break;
            case 2: fti__io_fault_set(RW_SCRATCH, k, EINTR, 0, 0); break;
            case 3: fti__io_fault_set(RW_SCRATCH, k, 0, 0, 1); break;
            default: fti__io_fault_set(FTI__IO_FSYNC, k, EIO, 0, 0); break;
            }
            fault_armed = 1;
            r = op(ctx, &err);
            fault_armed = 0;
            fired = fti__io_fault.fired > 0;
            fti__io_fault_set(0, 0, 0, 0, 0);
            runs++;
            if (r != FTI_OK) failed++;
            if ((mode == 2 || mode == 3) && r != FTI_OK) {
                fprintf(stderr, "    %s: %s at I/O call %ld of %ld changed the result: %s\n", what,
                        names[mode], k, N, err.msg);
                fti_test_failures++;
                return N;
            }
            if (mode == 4 && fired && r == FTI_OK) {
                fprintf(stderr, "    %s: fsync %ld of %ld failed but the operation succeeded\n",
                        what, k, n_fsync);
                fti_test_failures++;
                return N;
            }
            if (r != FTI_OK && err.msg[0] == 0) {
                fprintf(stderr, "    %s: %s at I/O call %ld: %s without a message\n", what,
                        names[mode], k, fti_result_str(r));
                fti_test_failures++;
                return N;
            }
            if (tu_fd_count() != fd0 || fti_test_alloc_live != live0) {
                fprintf(stderr,
                        "    %s: %s at I/O call %ld: %d fds (was %d), %ld allocations leaked\n",
                        what, names[mode], k, tu_fd_count(), fd0, fti_test_alloc_live - live0);
                fti_test_failures++;
                return N;
            }
            if (check && !check(ctx)) {
                fprintf(stderr, "    %s: %s at I/O call %ld of %ld: state check failed (%s)\n",
                        what, names[mode], k, N, err.msg);
                fti_test_failures++;
                return N;
            }
        }
    }
    r = op(ctx, &err);
    if (r != FTI_OK) {
        fprintf(stderr, "    %s: the run after the loop failed: %s\n", what, err.msg);
        fti_test_failures++;
    }
    fprintf(stderr, "    %s: %ld I/O calls (%ld fsyncs), %ld faulty runs, %ld failed cleanly\n",
            what, N, n_fsync, runs, failed);
    return N;
}

/* --- the operations --------------------------------------------------------------------- */

#ifndef FTI_NO_STORE

/* Writes the eight kinds of input file the feature pipeline reads into dir. */
static void fault_write_inputs(const char *dir, int round) {
    static const char *const names[8] = {"a.txt", "b.md", "c.html", "d.json",
                                         "e.jsonl", "f.csv", "g.eml", "h.mbox"};
    char path[800], text[1200];
    int i;
    fti_mkdirs(dir, NULL);
    for (i = 0; i < 8; i++) {
        const char *body = "";
        switch (i) {
        case 0:
            body =
                "Round %d. A cynic is a blackguard whose faulty vision sees things as they are.\n";
            break;
        case 1:
            body = "# Round %d\n\nAn *epigram* is a short, sharp saying in prose or verse, "
                   "[often](x) witty.\n";
            break;
        case 2:
            body =
                "<html><head><title>R%d</title></head><body><p>Admiration: our polite recognition "
                "of another's resemblance to ourselves.</p><script>x()</script></body></html>\n";
            break;
        case 3:
            body = "{\"text\":\"Round %d: Bore, n. A person who talks when you wish him to "
                   "listen.\",\"title\":\"Bore\"}\n";
            break;
        case 4:
            body = "{\"text\":\"Round %d: Calamity, n. A more than commonly plain "
                   "reminder.\"}\n{\"text\":\"Egotist, n. A person of low taste, more interested "
                   "in himself than in me.\"}\n";
            break;
        case 5:
            body = "title,text\nR%d,\"Future, n. That period of time in which our affairs prosper, "
                   "our friends are true.\"\n";
            break;
        case 6:
            body = "From: \"A B\" <a@b.example>\r\nDate: Tue, 3 Mar 1911 10:04:05 "
                   "-0800\r\nSubject: =?utf-8?q?Round_%d?=\r\nContent-Type: text/plain; "
                   "charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nHope, n. "
                   "Desire and expectation rolled into one, and a long enough line.\r\n";
            break;
        default:
            body =
                "From a@b Mon Jan  1 00:00:00 1911\nFrom: x@y.example\nSubject: round "
                "%d\n\nPatience, n. A minor form of despair, disguised as a virtue, in an mbox.\n";
            break;
        }
        snprintf(text, sizeof text, body, round);
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        fti_test_write_file(path, text, strlen(text));
    }
}

typedef struct fault_store_ctx {
    const char *home, *in;
    char base_id[65];
    int round;
    int checks;
    int tokenizer; /* 1: train a tokenizer and write token shards too */
} fault_store_ctx;

static fti_result fault_commit(void *user, fti_error *err) {
    fault_store_ctx *c = (fault_store_ctx *)user;
    fti_ingest_opts o;
    const char *paths[1];
    char id[65];
    fti_result r;
    memset(&o, 0, sizeof o);
    o.no_tokenizer = !c->tokenizer;
    o.vocab_size = 300;
    o.n_threads = 1;
    paths[0] = c->in;
    r = fti_store_ingest(c->home, paths, 1, &o, id, NULL, err);
    if (r == FTI_OK && fault_armed) {
        /* it succeeded despite the fault: it must be the version a run without faults makes
         * (ids are content hashes), not one that silently lost a document or a field */
        char id2[65];
        fti_test_alloc_fail_at(0, 0);
        fti__io_fault_set(0, 0, 0, 0, 0);
        r = fti_store_ingest(c->home, paths, 1, &o, id2, NULL, err);
        if (r == FTI_OK && strcmp(id, id2) != 0)
            r = fti_error_set(err, FTI_ERR_MISMATCH,
                              "the commit under a fault made version %.12s, without %.12s", id,
                              id2);
    }
    if (r == FTI_OK) fault_write_inputs(c->in, ++c->round); /* new content for the next run */
    return r;
}

/* Everything committed verifies, the base version is still there and `latest` resolves. */
static int fault_store_check(void *user) {
    fault_store_ctx *c = (fault_store_ctx *)user;
    fti_error err;
    char latest[65];
    int fails0 = fti_test_failures;
    /* the whole store (every version and ref) every 16th check, as the store grows */
    if ((c->checks++ & 15) == 0 && fti_store_verify(c->home, NULL, NULL, &err) != FTI_OK) {
        fprintf(stderr, "    verify: %s\n", err.msg);
        return 0;
    }
    if (fti_store_verify(c->home, c->base_id, NULL, &err) != FTI_OK) return 0;
    if (fti_store_resolve(c->home, "latest", latest, &err) != FTI_OK ||
        fti_store_verify(c->home, latest, NULL, &err) != FTI_OK)
        return 0;
    return fails0 == fti_test_failures;
}

static fti_result fault_process_kinds(void *user, fti_error *err) {
    /* the per-file processing of fti_store_ingest (parse, decode, clean, validate) for one
     * file of each kind */
    static const fti__st_kind kinds[8] = {FTI__ST_K_TXT,   FTI__ST_K_MD,  FTI__ST_K_HTML,
                                          FTI__ST_K_JSON,  FTI__ST_K_JSONL, FTI__ST_K_CSV,
                                          FTI__ST_K_EML,   FTI__ST_K_MBOX};
    static const char *const names[8] = {"a.txt", "b.md", "c.html", "d.json",
                                         "e.jsonl", "f.csv", "g.eml", "h.mbox"};
    fault_store_ctx *c = (fault_store_ctx *)user;
    fti_ingest_opts o = fti_ingest_opts_resolve(NULL);
    int i;
    for (i = 0; i < 8; i++) {
        char path[800];
        void *data = NULL;
        size_t len = 0;
        fti__st_proc pp;
        fti__st_unit u;
        fti__st_out out;
        unsigned char sha[32];
        int oom;
        fti_result r;
        snprintf(path, sizeof path, "%s/%s", c->in, names[i]);
        r = fti_file_read(path, 1u << 20, &data, &len, err);
        if (r != FTI_OK) return r;
        fti_sha256_buf(data, len, sha);
        memset(&pp, 0, sizeof pp);
        pp.o = &o;
        memset(&u, 0, sizeof u);
        u.kind = kinds[i];
        u.len = len;
        u.first_no = 1;
        memset(&out, 0, sizeof out);
        fti__st_process_unit(&pp, &u, path, (const unsigned char *)data, len, sha, &out);
        oom = out.oom;
        if (!oom && out.n_docs == 0) {
            fti__st_out_free(&out);
            fti_free(data);
            return fti_error_set(err, FTI_ERR_FORMAT, "%s: no document", names[i]);
        }
        fti__st_out_free(&out);
        fti_free(data);
        if (oom) return fti_error_set(err, FTI_ERR_NOMEM, "%s: out of memory", names[i]);
    }
    return FTI_OK;
}

FTI_TEST(fault_alloc_ingest_each_kind) {
    fault_store_ctx c;
    memset(&c, 0, sizeof c);
    fault_dir();
    c.in = fault_path("in");
    fault_write_inputs(c.in, 0);
    CHECK(fault_alloc_loop("ingest (per-file processing, 8 kinds)", fault_process_kinds, NULL,
                           &c) > 8);
    fault_dir_done();
}

FTI_TEST(fault_alloc_commit) {
    fault_store_ctx c;
    fti_error err;
    const char *paths[1];
    fti_ingest_opts o;
    memset(&c, 0, sizeof c);
    fault_dir();
    c.home = fault_path("home");
    c.in = fault_path("in");
    fault_write_inputs(c.in, 0);
    memset(&o, 0, sizeof o);
    o.no_tokenizer = 1;
    o.n_threads = 1;
    paths[0] = c.in;
    REQUIRE(fti_store_ingest(c.home, paths, 1, &o, c.base_id, NULL, &err) == FTI_OK);
    fault_write_inputs(c.in, ++c.round);
    CHECK(fault_alloc_loop("commit a dataset version", fault_commit, fault_store_check, &c) > 10);
    fault_dir_done();
}

FTI_TEST(fault_alloc_commit_tokenizer) {
    fault_store_ctx c;
    fti_error err;
    const char *paths[1];
    fti_ingest_opts o;
    memset(&c, 0, sizeof c);
    fault_dir();
    c.home = fault_path("home");
    c.in = fault_path("in");
    c.tokenizer = 1;
    fault_write_inputs(c.in, 0);
    memset(&o, 0, sizeof o);
    o.vocab_size = 300;
    o.n_threads = 1;
    paths[0] = c.in;
    REQUIRE(fti_store_ingest(c.home, paths, 1, &o, c.base_id, NULL, &err) == FTI_OK);
    fault_write_inputs(c.in, ++c.round);
    CHECK(fault_alloc_loop("commit a version with a tokenizer and shards", fault_commit,
                           fault_store_check, &c) > 10);
    fault_dir_done();
}

FTI_TEST(fault_io_commit) {
    fault_store_ctx c;
    fti_error err;
    const char *paths[1];
    fti_ingest_opts o;
    memset(&c, 0, sizeof c);
    fault_dir();
    c.home = fault_path("home");
    c.in = fault_path("in");
    fault_write_inputs(c.in, 0);
    memset(&o, 0, sizeof o);
    o.no_tokenizer = 1;
    o.n_threads = 1;
    paths[0] = c.in;
    REQUIRE(fti_store_ingest(c.home, paths, 1, &o, c.base_id, NULL, &err) == FTI_OK);
    fault_write_inputs(c.in, ++c.round);
    CHECK(fault_io_loop("commit a dataset version", fault_commit, fault_store_check, &c) > 10);
    /* the loop reached the index's scratch files: 2 opens, and reads back */
    {
        long n_open, n_read;
        fti__io_fault_set(FTI__IO_OPEN, LONG_MAX, 0, 0, 0);
        CHECK_OK(fault_commit(&c, &err));
        n_open = fti__io_fault.count;
        fti__io_fault_set(FTI__IO_READ, LONG_MAX, 0, 0, 0);
        CHECK_OK(fault_commit(&c, &err));
        n_read = fti__io_fault.count;
        fti__io_fault_set(FTI__IO_OPEN | FTI__IO_SCRATCH, LONG_MAX, 0, 0, 0);
        CHECK_OK(fault_commit(&c, &err));
        CHECK_EQ_INT(fti__io_fault.count - n_open, 2);
        fti__io_fault_set(FTI__IO_READ | FTI__IO_SCRATCH, LONG_MAX, 0, 0, 0);
        CHECK_OK(fault_commit(&c, &err));
        CHECK(fti__io_fault.count > n_read);
        fti__io_fault_set(0, 0, 0, 0, 0);
    }
    fault_dir_done();
}
/* A full disk (every write from the k-th on fails with ENOSPC) stops an ingest at any stage
 * (records, documents, tokenizer, token shards, the index and its scratch files, manifest,
 * refs) with a message that says so and names the file under store/, and the versions before
 * stay whole. (These said only "ingest: cannot write the index" or "the token shards".) */
FTI_TEST(fault_io_nospace_names_file) {
    fault_store_ctx c;
    fti_error err;
    const char *paths[1];
    fti_ingest_opts o;
    long n, k, stride, failed = 0;
    fti_result r;
    memset(&c, 0, sizeof c);
    fault_dir();
    c.home = fault_path("home");
    c.in = fault_path("in");
    c.tokenizer = 1;
    fault_write_inputs(c.in, 0);
    memset(&o, 0, sizeof o);
    o.vocab_size = 300;
    o.n_threads = 1;
    paths[0] = c.in;
    REQUIRE(fti_store_ingest(c.home, paths, 1, &o, c.base_id, NULL, &err) == FTI_OK);
    fault_write_inputs(c.in, ++c.round);
    fti__io_fault_set(FTI__IO_WRITE | FTI__IO_SCRATCH, LONG_MAX, 0, 0, 0);
    CHECK_OK(fault_commit(&c, &err));
    n = fti__io_fault.count;
    stride = fault_stride(n / 2);
    for (k = 1; k <= n; k += stride) {
        err.msg[0] = 0;
        fti__io_fault_set(FTI__IO_WRITE | FTI__IO_SCRATCH, k, ENOSPC, 1, 0);
        fault_armed = 1;
        r = fault_commit(&c, &err);
        fault_armed = 0;
        fti__io_fault_set(0, 0, 0, 0, 0);
        if (r == FTI_OK) continue;
        failed++;
        if (!strstr(err.msg, "space left") || !strstr(err.msg, "/store/")) {
            fprintf(stderr, "    write %ld of %ld: %s\n", k, n, err.msg);
            CHECK(0);
            break;
        }
        CHECK(fault_store_check(&c));
    }
    CHECK(failed > 4);
    fault_dir_done();
}
#else /* no feature store: nothing to ingest or commit */
void fti_test_fault_alloc_ingest_each_kind(void) {}
void fti_test_fault_alloc_commit(void) {}
void fti_test_fault_alloc_commit_tokenizer(void) {}
void fti_test_fault_io_commit(void) {}
void fti_test_fault_io_nospace_names_file(void) {}
#endif

/* --- tokenizer ----------------------------------------------------------------------------- */

static fti_result fault_tokenize(void *user, fti_error *err) {
    static const char text[] = "Hello, world! A cynic's 123 faulty visions \xc3\xa9t\xc3\xa9 ...";
    fti_tokenizer *tok = NULL;
    fti_tokens ids;
    fti_result r;
    (void)user;
    r = fti_tokenizer_load("tests/fuzz/corpus/tokenizer_load/small.tiktoken", NULL, &tok, err);
    if (r != FTI_OK) return r;
    memset(&ids, 0, sizeof ids);
    r = fti_tokenizer_encode(tok, text, sizeof text - 1, 0, &ids);
    if (r != FTI_OK) fti_error_set(err, r, "encode: %s", fti_result_str(r));
    fti_tokens_free(&ids);
    fti_tokenizer_free(tok);
    return r;
}

FTI_TEST(fault_alloc_tokenize) {
    CHECK(fault_alloc_loop("load a tokenizer and tokenize", fault_tokenize, NULL, NULL) > 2);
}

/* --- model load ------------------------------------------------------------------------------ */

static const char *fault_write_model(const char *path) {
    fti_model_config cfg;
    fti_gguf_tokenizer_meta m;
    fti_gguf_model_opts mo;
    fti_error err;
    static char *toks[64];
    static char store[64][8];
    float *params;
    size_t i;
    memset(&cfg, 0, sizeof cfg);
    cfg.vocab_size = 64;
    cfg.dim = 16;
    cfg.n_layers = 1;
    cfg.n_heads = 2;
    cfg.n_kv_heads = 1;
    cfg.hidden_dim = 24;
    cfg.context_len = 16;
    cfg.tied_embeddings = 1;
    if (fti_model_config_resolve(&cfg, &err) != FTI_OK) return NULL;
    params = (float *)malloc(fti_model_n_params(&cfg) * sizeof(float));
    if (!params) return NULL;
    fti_model_init_params(&cfg, params, 3);
    for (i = 0; i < 64; i++) {
        snprintf(store[i], sizeof store[i], "%c", (int)(' ' + i));
        toks[i] = store[i];
    }
    memset(&m, 0, sizeof m);
    m.model = "gpt2";
    m.tokens = (const char *const *)toks;
    m.n_tokens = 64;
    m.bos_id = -1;
    m.eos_id = -1;
    m.pad_id = -1;
    memset(&mo, 0, sizeof mo);
    mo.matrix_type = FTI_GGML_F32;
    if (fti_gguf_write_llama(path, &cfg, params, &m, NULL, &mo, &err) != FTI_OK) {
        fprintf(stderr, "    write model: %s\n", err.msg);
        path = NULL;
    }
    free(params);
    return path;
}

static fti_result fault_model_load(void *user, fti_error *err) {
    fti_engine *e = NULL;
    fti_session *s = NULL;
    fti_session_opts so;
    int32_t toks[3] = {1, 2, 3};
    fti_result r = fti_engine_open(&e, (const char *)user, NULL, err);
    if (r != FTI_OK) return r;
    memset(&so, 0, sizeof so);
    so.n_ctx = 16;
    r = fti_session_create(&s, e, &so, err);
    if (r == FTI_OK) r = fti_session_eval(s, toks, 3, NULL, err);
    fti_session_free(s);
    fti_engine_close(e);
    return r;
}

FTI_TEST(fault_alloc_model_load) {
    const char *p = fault_write_model(fti_test_tmp("m.gguf"));
    REQUIRE(p != NULL);
    CHECK(fault_alloc_loop("load a model and evaluate 3 tokens", fault_model_load, NULL,
                           (void *)p) > 1);
}

/* --- checkpoints and the registry -------------------------------------------------------- */

#ifndef FTI_NO_TRAIN
typedef struct fault_train_ctx {
    fti_trainer *t;
    const char *path;
    uint16_t tokens[400];
    int mode; /* 0 = save, 1 = save and load */
    uint64_t step0;
    const char *home, *a, *b; /* registry */
    int flip;
} fault_train_ctx;

static fti_trainer *fault_trainer(fault_train_ctx *c) {
    fti_model_config cfg;
    fti_train_opts o;
    fti_token_array a, b;
    fti_trainer *t = NULL;
    fti_error err;
    size_t i;
    for (i = 0; i < 400; i++) c->tokens[i] = (uint16_t)((i * 7 + i / 13) % 61);
    memset(&cfg, 0, sizeof cfg);
    cfg.vocab_size = 61;
    cfg.dim = 16;
    cfg.n_layers = 1;
    cfg.n_heads = 2;
    cfg.n_kv_heads = 1;
    cfg.hidden_dim = 24;
    cfg.context_len = 8;
    cfg.tied_embeddings = 1;
    memset(&o, 0, sizeof o);
    o.batch = 2;
    o.ctx = 8;
    o.max_steps = 50;
    o.eval_every = 2;
    o.eval_windows = 2;
    o.n_threads = 1;
    o.seed = 5;
    a.data = c->tokens;
    a.n_tokens = 300;
    a.token_bytes = 2;
    b.data = c->tokens + 300;
    b.n_tokens = 100;
    b.token_bytes = 2;
    if (fti_trainer_create(&cfg, NULL, &o, a, b, &t, &err) != FTI_OK) {
        fprintf(stderr, "    trainer: %s\n", err.msg);
        return NULL;
    }
    fti_trainer_step(t, NULL, NULL);
    fti_trainer_step(t, NULL, NULL);
    return t;
}

static fti_result fault_ckpt(void *user, fti_error *err) {
    fault_train_ctx *c = (fault_train_ctx *)user;
    fti_result r = fti_trainer_save(c->t, c->path, err);
    if (r == FTI_OK && c->mode == 1) r = fti_trainer_resume(c->t, c->path, err);
    return r;
}

/* The checkpoint on disk is whole (the old or the new one) and the trainer is at its step. */
static int fault_ckpt_check(void *user) {
    fault_train_ctx *c = (fault_train_ctx *)user;
    fti_train_stats st = {0};
    fti_error err;
    if (fti_trainer_resume(c->t, c->path, &err) != FTI_OK) {
        fprintf(stderr, "    checkpoint does not load: %s\n", err.msg);
        return 0;
    }
    fti_trainer_stats_get(c->t, &st);
    return st.step == c->step0;
}

FTI_TEST(fault_alloc_checkpoint) {
    fault_train_ctx c;
    fti_train_stats st = {0};
    memset(&c, 0, sizeof c);
    c.t = fault_trainer(&c);
    REQUIRE(c.t != NULL);
    fti_trainer_stats_get(c.t, &st);
    c.step0 = st.step;
    c.path = fti_test_tmp("t.ckpt");
    c.mode = 1;
    CHECK(fault_alloc_loop("save and load a checkpoint", fault_ckpt, fault_ckpt_check, &c) > 0);
    fti_trainer_free(c.t);
}

FTI_TEST(fault_io_checkpoint) {
    fault_train_ctx c;
    fti_train_stats st = {0};
    memset(&c, 0, sizeof c);
    fault_dir();
    c.t = fault_trainer(&c);
    REQUIRE(c.t != NULL);
    fti_trainer_stats_get(c.t, &st);
    c.step0 = st.step;
    c.path = fault_path("t.ckpt");
    c.mode = 0;
    CHECK(fault_io_loop("write a checkpoint", fault_ckpt, fault_ckpt_check, &c) > 3);
    c.mode = 1;
    CHECK(fault_io_loop("write and read a checkpoint", fault_ckpt, fault_ckpt_check, &c) > 3);
    fti_trainer_free(c.t);
    fault_dir_done();
}

static fti_result fault_promote(void *user, fti_error *err) {
    fault_train_ctx *c = (fault_train_ctx *)user;
    fti_result r = fti_registry_promote(c->home, c->flip ? c->a : c->b, "production", err);
    if (r == FTI_OK) c->flip ^= 1;
    return r;
}

/* The alias names one of the two models and the history is readable. */
static int fault_promote_check(void *user) {
    fault_train_ctx *c = (fault_train_ctx *)user;
    char got[17];
    fti_error err;
    fti_buf b;
    int ok;
    if (fti_registry_resolve(c->home, "production", got, &err) != FTI_OK) {
        fprintf(stderr, "    resolve: %s\n", err.msg);
        return 0;
    }
    memset(&b, 0, sizeof b);
    ok = fti_registry_aliases(c->home, &b, &err) == FTI_OK;
    fti_buf_free(&b);
    return ok && (!strcmp(got, c->a) || !strcmp(got, c->b));
}

FTI_TEST(fault_alloc_io_alias_move) {
    fault_train_ctx c;
    char a[17], b[17];
    fti_error err;
    const char *model;
    memset(&c, 0, sizeof c);
    fault_dir();
    c.home = fault_path("home");
    model = fault_path("m.gguf");
    REQUIRE(fti_test_write_file(model, "model one", 9) == 0);
    REQUIRE(fti_registry_add(c.home, model, "{}", 2, a, &err) == FTI_OK);
    REQUIRE(fti_test_write_file(model, "model two", 9) == 0);
    REQUIRE(fti_registry_add(c.home, model, "{}", 2, b, &err) == FTI_OK);
    REQUIRE(fti_registry_promote(c.home, a, "production", &err) == FTI_OK);
    c.a = a;
    c.b = b;
    CHECK(fault_alloc_loop("move an alias", fault_promote, fault_promote_check, &c) > 1);
    CHECK(fault_io_loop("move an alias", fault_promote, fault_promote_check, &c) > 3);
    fault_dir_done();
}

/* For every I/O step of a checkpoint write, a child _exits before it; the file then loads and
 * holds the old checkpoint or the new one (its step says which), never a mix. */
FTI_TEST(crash_checkpoint_steps) {
    fault_train_ctx c;
    fti_train_stats st = {0};
    fti_error err;
    long k, n_steps;
    uint64_t old_step;
    memset(&c, 0, sizeof c);
    c.t = fault_trainer(&c);
    REQUIRE(c.t != NULL);
    c.path = fti_test_tmp("c.ckpt");
    REQUIRE(fti_trainer_save(c.t, c.path, &err) == FTI_OK);
    fti_trainer_stats_get(c.t, &st);
    old_step = st.step;
    REQUIRE(fti_trainer_step(c.t, NULL, &err) == FTI_OK); /* the new state: one step more */
    fti__io_fault_set(FTI__IO_ALL, LONG_MAX, 0, 0, 0);
    REQUIRE(fti_trainer_save(c.t, fti_test_tmp("count.ckpt"), &err) == FTI_OK);
    n_steps = fti__io_fault.count;
    fti__io_fault_set(0, 0, 0, 0, 0);
    CHECK(n_steps >= 4);
    for (k = 1; k <= n_steps + 1; k++) {
        int status = 0;
        pid_t pid;
        fti_trainer *t2;
        fflush(stderr);
        pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            fti__io_crash_set(FTI__IO_ALL, k);
            fti_trainer_save(c.t, c.path, NULL);
            _exit(0);
        }
        waitpid(pid, &status, 0);
        CHECK(WIFEXITED(status));
        /* a second trainer of the same run reads it */
        {
            fault_train_ctx c2;
            memset(&c2, 0, sizeof c2);
            t2 = fault_trainer(&c2);
            REQUIRE(t2 != NULL);
            if (fti_trainer_resume(t2, c.path, &err) != FTI_OK) {
                fprintf(stderr, "    crash before step %ld of %ld: %s\n", k, n_steps, err.msg);
                fti_test_failures++;
                fti_trainer_free(t2);
                break;
            }
            fti_trainer_stats_get(t2, &st);
            CHECK(st.step == old_step || st.step == old_step + 1);
            if (k > n_steps) CHECK(st.step == old_step + 1); /* no crash: the new one */
            fti_trainer_free(t2);
        }
        /* back to the old checkpoint for the next step */
        if (k <= n_steps) {
            fault_train_ctx c3;
            fti_trainer *t3;
            memset(&c3, 0, sizeof c3);
            t3 = fault_trainer(&c3);
            REQUIRE(t3 != NULL);
            REQUIRE(fti_trainer_save(t3, c.path, &err) == FTI_OK);
            fti_trainer_free(t3);
        }
    }
    fti_trainer_free(c.t);
}
#else /* no training: no checkpoint to write */
void fti_test_fault_alloc_checkpoint(void) {}
void fti_test_fault_io_checkpoint(void) {}
void fti_test_fault_alloc_io_alias_move(void) {}
void fti_test_crash_checkpoint_steps(void) {}
#endif

/* --- one request through the server's request handling (parse, validate, respond) ------ */

#ifndef FTI_NO_SERVER
static fti_result fault_request(void *user, fti_error *err) {
    static char req[1024];
    static size_t req_len = 0;
    static fti_http_head h;
    fti_buf body, out;
    const char *b = NULL;
    size_t n = 0;
    long used;
    fti_api_request q;
    fti_api_result res;
    fti_result r;
    (void)user;
    if (!req_len) {
        /* the body in three chunks */
        static const char *const parts[3] = {
            "{\"model\":\"twin\",\"messages\":[{\"role\":",
            "\"user\",\"content\":\"Define a cynic\"}],\"max_tokens\":8,",
            "\"stop\":[\"\\n\"],\"stream\":false}"};
        int i;
        req_len = (size_t)snprintf(req, sizeof req,
                                   "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                                   "Content-Type: application/json\r\n"
                                   "Transfer-Encoding: chunked\r\n\r\n");
        for (i = 0; i < 3; i++)
            req_len += (size_t)snprintf(req + req_len, sizeof req - req_len, "%lx\r\n%s\r\n",
                                        (unsigned long)strlen(parts[i]), parts[i]);
        req_len += (size_t)snprintf(req + req_len, sizeof req - req_len, "0\r\n\r\n");
    }
    memset(&body, 0, sizeof body);
    memset(&out, 0, sizeof out);
    used = fti_http_parse_request((const unsigned char *)req, req_len, NULL, &h, &body, &b, &n);
    if (used <= 0) {
        fti_buf_free(&body);
        return fti_error_set(err, used == -500 ? FTI_ERR_NOMEM : FTI_ERR_FORMAT,
                             "http parse: %ld", used);
    }
    memset(&q, 0, sizeof q);
    r = fti_api_parse_completion(FTI_API_CHAT, b, n, 64, &q, NULL, err);
    if (r == FTI_OK) {
        memset(&res, 0, sizeof res);
        res.id = "chatcmpl-1";
        res.model = "twin";
        res.text = "A blackguard.";
        res.text_len = 13;
        res.finish_reason = "stop";
        res.prompt_tokens = 5;
        res.completion_tokens = 3;
        fti_api_write_response(&out, FTI_API_CHAT, &res);
        fti_api_write_chunk(&out, FTI_API_CHAT, &res, FTI_API_CHUNK_FIRST);
        fti_api_write_done(&out);
        if (out.oom) r = fti_error_set(err, FTI_ERR_NOMEM, "response: out of memory");
    }
    fti_api_request_free(&q);
    fti_buf_free(&out);
    fti_buf_free(&body);
    return r;
}

FTI_TEST(fault_alloc_request) {
    CHECK(fault_alloc_loop("one chat request (parse, validate, respond)", fault_request, NULL,
                           NULL) > 1);
}
#else /* no server: no request to handle */
void fti_test_fault_alloc_request(void) {}
#endif

/* --- one request through the real server: socket, event loop, scheduler, echo generator ----- */

#if !defined(FTI_NO_SERVER) && !defined(FTI_NO_THREADS)
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include "test_util_server.h"

typedef struct fault_srv {
    fti_server *srv;
    pthread_t th;
    fti_error err;
    fti_result rc;
    pthread_mutex_t mu;
    int done; /* under mu: fti_server_run returned */
} fault_srv;

static void *fault_srv_thread(void *arg) {
    fault_srv *s = (fault_srv *)arg;
    fti_result rc = fti_server_run(s->srv, &s->err);
    pthread_mutex_lock(&s->mu);
    s->rc = rc;
    s->done = 1;
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

static int fault_srv_done(fault_srv *s) {
    int d;
    pthread_mutex_lock(&s->mu);
    d = s->done;
    pthread_mutex_unlock(&s->mu);
    return d;
}

/* Sends req to 127.0.0.1:port and reads the reply until the server closes the connection,
 * the server loop ends or 10 s pass. Returns the HTTP status, 0 when closed without a
 * response, -1 when it could not connect, -2 on the time limit. */
static int fault_srv_exchange(int port, const char *req, fti_buf *resp, fault_srv *srv) {
    size_t off = 0, len = strlen(req);
    uint64_t end = fti_time_ns() / 1000000u + 10000;
    int fd = tu_connect(port), st = 0;
    if (fd < 0) return -1;
    while (off < len) {
        ssize_t w = send(fd, req + off, len - off, MSG_NOSIGNAL);
        if (w <= 0) break; /* reset: the server gave up on this connection */
        off += (size_t)w;
    }
    for (;;) {
        struct pollfd p;
        char buf[4096];
        ssize_t n;
        if (fti_time_ns() / 1000000u > end) {
            st = -2;
            break;
        }
        if (fault_srv_done(srv)) break;
        p.fd = fd;
        p.events = POLLIN;
        p.revents = 0;
        if (poll(&p, 1, 20) <= 0) continue;
        n = recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        fti_buf_append(resp, buf, (size_t)n);
    }
    close(fd);
    if (st == 0 && resp->len >= 12 && memcmp(resp->data, "HTTP/1.1 ", 9) == 0)
        st = atoi(resp->data + 9);
    return st;
}

/* Creates a server with options o and generator g (the server owns g from then on, also when
 * this fails) and runs it on a thread. */
static fti_result fault_srv_start(fault_srv *s, const fti_server_opts *o, const fti_gen *g,
                                  fti_error *err) {
    fti_result r;
    memset(s, 0, sizeof *s);
    r = fti_server_create(o, g, &s->srv, err);
    if (r != FTI_OK) return r;
    pthread_mutex_init(&s->mu, NULL);
    if (pthread_create(&s->th, NULL, fault_srv_thread, s) != 0) {
        pthread_mutex_destroy(&s->mu);
        fti_server_free(s->srv);
        return fti_error_set(err, FTI_ERR_IO, "pthread_create failed");
    }
    return FTI_OK;
}

/* Stops, joins and frees a server of fault_srv_start. FTI_OK when its loop ran; FTI_ERR_NOMEM
 * (with a message) when the loop failed for want of memory; FTI_ERR_MISMATCH otherwise. */
static fti_result fault_srv_finish(fault_srv *s, fti_error *err) {
    fti_server_stop(s->srv);
    pthread_join(s->th, NULL);
    fti_server_free(s->srv);
    pthread_mutex_destroy(&s->mu);
    if (s->rc == FTI_OK) return FTI_OK;
    return s->rc == FTI_ERR_NOMEM && s->err.msg[0]
               ? fti_error_set(err, s->rc, "server loop: %s", s->err.msg)
               : fti_error_set(err, FTI_ERR_MISMATCH, "server loop: %s \"%s\"",
                               fti_result_str(s->rc), s->err.msg);
}

/* Runs a server with the echo generator, sends req on one connection and reads the reply into
 * resp (*st: its first status, as fault_srv_exchange), stops and frees the server. As
 * fault_srv_finish; FTI_ERR_NOMEM also when the server could not be made. */
static fti_result fault_serve_once(const char *req, fti_buf *resp, int *st, fti_error *err) {
    fti_server_opts o;
    fti_gen g;
    fti_gen_echo_opts eo;
    fault_srv s;
    fti_result r;
    memset(&o, 0, sizeof o);
    o.no_dashboard = 1;
    o.max_conns = 4;
    memset(&eo, 0, sizeof eo);
    eo.n_ctx = 128;
    r = fti_gen_echo_create(&eo, &g);
    if (r != FTI_OK) return fti_error_set(err, r, "echo generator: %s", fti_result_str(r));
    r = fault_srv_start(&s, &o, &g, err);
    if (r != FTI_OK) return r;
    *st = fault_srv_exchange(fti_server_port(s.srv), req, resp, &s);
    return fault_srv_finish(&s, err);
}

/* One chat completion (chunked body) and one streamed completion on a keep-alive connection.
 * FTI_OK when both answers are whole and right; FTI_ERR_NOMEM (with a message) when the server
 * failed for want of memory, or answered 500/503 or closed the connection without an answer
 * (what it may do when an allocation fails); anything else (a 400 for a good request, a wrong
 * body, a hang) fails the test. */
static fti_result fault_serve(void *user, fti_error *err) {
    static const char req[] =
        "POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
        "2a\r\n{\"model\":\"twin\",\"messages\":[{\"role\":\"user\"\r\n"
        "3c\r\n,\"content\":\"Define a cynic\"}],\"max_tokens\":6,\"stream\":false}\r\n"
        "0\r\n\r\n"
        "POST /v1/completions HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        "Connection: close\r\nContent-Length: 48\r\n\r\n"
        "{\"prompt\":\"Bierce\",\"max_tokens\":4,\"stream\":true}";
    fti_buf resp;
    fti_result r;
    int st = 0;
    (void)user;
    memset(&resp, 0, sizeof resp);
    r = fault_serve_once(req, &resp, &st, err);
    if (r != FTI_OK) {
    } else if (st == 500 || st == 503 || st == 0) {
        r = fti_error_set(err, FTI_ERR_NOMEM, "the server answered %d", st);
    } else if (st != 200) {
        r = fti_error_set(err, FTI_ERR_MISMATCH, "status %d: %.200s", st,
                          resp.data ? resp.data : "");
    } else {
        /* 200: the chat answer, then the streamed one ending in [DONE] (a fault in the second
         * request may cut it: then the connection closed early, which is allowed) */
        const char *second = resp.data ? strstr(resp.data + 9, "HTTP/1.1 ") : NULL;
        int st2 = second ? atoi(second + 9) : 0;
        fti_buf_putc(&resp, 0);
        if (!strstr(resp.data, "\"object\":\"chat.completion\"") ||
            !strstr(resp.data, "\"finish_reason\""))
            r = fti_error_set(err, FTI_ERR_MISMATCH, "a 200 without a whole chat answer: %.300s",
                              resp.data);
        else if (st2 != 200 && st2 != 500 && st2 != 503 && st2 != 0)
            r = fti_error_set(err, FTI_ERR_MISMATCH, "second status %d", st2);
        else if (st2 == 200 && !strstr(second, "data: [DONE]"))
            r = fti_error_set(err, FTI_ERR_NOMEM, "the stream was cut");
        else if (st2 != 200)
            r = fti_error_set(err, FTI_ERR_NOMEM, "the second request was answered %d", st2);
        else
            r = FTI_OK;
    }
    fti_buf_free(&resp);
    return r;
}

FTI_TEST(fault_alloc_serve_request) {
    /* The allocations of several threads (the loop, the scheduler) count together, so the k-th
     * one is not always the same call from run to run; each run must still end cleanly. */
    CHECK(fault_alloc_loop("serve two requests over loopback (socket, loop, scheduler)",
                           fault_serve, NULL, NULL) > 10);
}
/* Three pipelined requests, HEAD, GET and HEAD, read by the server at once: three answers,
 * whole, in order, with no body after a HEAD (the second HEAD used to cut the output at the end
 * of the first answer's head, and a HEAD read a NULL buffer when its answer could not be
 * allocated); a GET whose body ran out of memory is a 500, not a 200 with an empty body. */
static fti_result fault_serve_get_head(void *user, fti_error *err) {
    static const char req[] = "HEAD /health HTTP/1.1\r\nHost: t\r\n\r\n"
                              "GET /v1/models HTTP/1.1\r\nHost: t\r\n\r\n"
                              "HEAD /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    static const int is_head[3] = {1, 0, 1};
    fti_buf resp;
    fti_result r;
    int st = 0, k;
    const char *p;
    (void)user;
    memset(&resp, 0, sizeof resp);
    r = fault_serve_once(req, &resp, &st, err);
    p = resp.data;
    for (k = 0; r == FTI_OK && k < 3; k++) {
        const char *end = p ? strstr(p, "\r\n\r\n") : NULL, *cl;
        int status = p && strncmp(p, "HTTP/1.1 ", 9) == 0 ? atoi(p + 9) : 0;
        size_t n;
        if (!p || !*p || status == 500 || status == 503) {
            /* out of memory: a 500 or 503, or the connection closed without an answer */
            r = fti_error_set(err, FTI_ERR_NOMEM, "answer %d: %d", k + 1, status);
            break;
        }
        cl = strstr(p, "Content-Length: ");
        if (status != 200 || !end || !cl || cl > end) {
            r = fti_error_set(err, FTI_ERR_MISMATCH, "answer %d: %.300s", k + 1, p);
            break;
        }
        n = (size_t)strtoul(cl + 16, NULL, 10);
        p = end + 4;
        if (is_head[k]) continue; /* no body */
        if (n == 0 || strlen(p) < n || !strstr(p, "\"object\":\"list\"")) {
            r = fti_error_set(err, FTI_ERR_MISMATCH,
                              "answer %d: a 200 without a whole body: %.300s", k + 1, p);
            break;
        }
        p += n;
    }
    if (r == FTI_OK && *p)
        r = fti_error_set(err, FTI_ERR_MISMATCH, "bytes after the last answer: %.300s", p);
    fti_buf_free(&resp);
    return r;
}

FTI_TEST(fault_alloc_serve_get_head) {
    CHECK(fault_alloc_loop("serve a pipelined GET and HEAD over loopback", fault_serve_get_head,
                           NULL, NULL) > 5);
}
/* --- the server over a real model: engine sessions, samplers, batched steps, monitor -------- */

typedef struct fault_model {
    fti_engine *e;          /* the tests' small model, opened once */
    fti_drift_ref *ref;     /* the monitor's drift reference (copied by each monitor) */
    const char *log_path;   /* the monitor's request log */
    int third_required;     /* runs where the good request after the fault had to succeed */
} fault_model;

/* Checks one answer of the model server: 1 when whole and right, 0 when it is what an
 * allocation failure may give (500, 503, closed without an answer, a stream ended by an error
 * event), -1 otherwise (*why says what). chat: a streamed chat answer, else a completion. */
static int fault_model_answer(const char *a, int chat, const char **why) {
    int st = a && strncmp(a, "HTTP/1.1 ", 9) == 0 ? atoi(a + 9) : 0;
    const char *body = a ? strstr(a, "\r\n\r\n") : NULL;
    *why = "";
    if (st == 0 || st == 500 || st == 503) return 0;
    if (st != 200 || !body) {
        *why = "not a 200 answer";
        return -1;
    }
    if (!chat) {
        if (!strstr(body, "\"object\":\"text_completion\"") ||
            !strstr(body, "\"finish_reason\":\"") || !strstr(body, "\"completion_tokens\":")) {
            *why = "a 200 without a whole completion";
            return -1;
        }
        return 1;
    }
    if (!strstr(body, "data: [DONE]")) return 0; /* cut: the connection closed early */
    if (strstr(body, "\"error\"")) return 0;     /* a step failed: an error event, then [DONE] */
    if (!strstr(body, "\"object\":\"chat.completion.chunk\"") ||
        !strstr(body, "\"finish_reason\":\"")) {
        *why = "a whole stream without a chat chunk or its finish";
        return -1;
    }
    return 1;
}

/* One run: a batch, a monitor with a request log and a drift
 * reference, a server over the engine generator (tests/test_util_server.h); one completion and
 * one streamed chat completion pipelined on a keep-alive connection, then one more completion on
 * a new connection: when the fault is a single one that already happened, that last request must
 * be answered whole (the server keeps serving after an allocation failure). */
static fti_result fault_serve_model(void *user, fti_error *err) {
    static const char req[] =
        "POST /v1/completions HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        "Content-Length: 64\r\n\r\n"
        "{\"prompt\":\"the cat sat on a mat\",\"max_tokens\":8,\"temperature\":0}"
        "POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        "Connection: close\r\nContent-Length: 86\r\n\r\n"
        "{\"messages\":[{\"role\":\"user\",\"content\":\"a dog\"}],\"max_tokens\":6,"
        "\"stream\":true,\"seed\":3}";
    static const char req3[] =
        "POST /v1/completions HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        "Connection: close\r\nContent-Length: 40\r\n\r\n"
        "{\"prompt\":\"one more cat\",\"max_tokens\":5}";
    fault_model *fm = (fault_model *)user;
    tu_gen *g;
    fti_gen gen;
    fti_server_opts o;
    fti_monitor_opts mo;
    fti_monitor *mon = NULL;
    fault_srv s;
    fti_buf resp, resp3;
    fti_error loop_err;
    fti_result r, rl = FTI_OK;
    int st = 0, st3 = 0, a1 = 1, a2 = 1, a3 = 1, must3;
    const char *why = "", *second;
    memset(&resp, 0, sizeof resp);
    memset(&resp3, 0, sizeof resp3);
    memset(&s, 0, sizeof s);
    g = (tu_gen *)fti_calloc(1, sizeof *g);
    if (!g) return fti_error_set(err, FTI_ERR_NOMEM, "generator: out of memory");
    g->e = fm->e;
    g->n_ctx = 48;
    r = fti_batch_create(fm->e, 8, 48, &g->bt, err);
    if (r == FTI_OK) {
        memset(&mo, 0, sizeof mo);
        mo.log_path = fm->log_path;
        mo.ref = fm->ref;
        r = fti_monitor_create(&mo, &mon, err);
    }
    if (r == FTI_OK) {
        tu_gen_fill(g, &gen);
        memset(&o, 0, sizeof o);
        o.no_dashboard = 1;
        o.max_conns = 4;
        o.max_batch = 8;
        o.monitor = mon;
        r = fault_srv_start(&s, &o, &gen, err);
    }
    if (r != FTI_OK) goto done;
    st = fault_srv_exchange(fti_server_port(s.srv), req, &resp, &s);
    /* a single fault that has happened: the server must answer the next request whole */
    must3 = !fault_armed || (!fault_persistent && fault_alloc_count_now() >= fault_k);
    st3 = fault_srv_exchange(fti_server_port(s.srv), req3, &resp3, &s);
    rl = fault_srv_finish(&s, &loop_err);
    fti_buf_putc(&resp, 0);
    fti_buf_putc(&resp3, 0);
    if (st < 0 || st3 < 0) {
        r = fti_error_set(err, FTI_ERR_MISMATCH, "the server hung or refused (%d, %d)", st, st3);
        goto done;
    }
    a1 = fault_model_answer(resp.oom ? NULL : resp.data, 0, &why);
    second = resp.data && a1 == 1 ? strstr(resp.data + 9, "HTTP/1.1 ") : NULL;
    if (a1 >= 0) a2 = a1 == 1 ? fault_model_answer(second, 1, &why) : 0;
    if (a1 >= 0 && a2 >= 0) a3 = fault_model_answer(resp3.oom ? NULL : resp3.data, 0, &why);
    if (a1 < 0 || a2 < 0 || a3 < 0) {
        r = fti_error_set(err, FTI_ERR_MISMATCH, "%s: %.300s", why,
                          a3 < 0 ? resp3.data : resp.data);
    } else if (rl != FTI_OK) { /* fti_server_run could not start (it fails only then) */
        r = fti_error_set(err, rl, "%s", loop_err.msg);
    } else if (must3 && a3 != 1) {
        r = fti_error_set(err, FTI_ERR_MISMATCH,
                          "after the fault, a good request was answered %d: %.300s", st3,
                          resp3.data ? resp3.data : "");
    } else if (a1 == 1 && a2 == 1 && a3 == 1) {
        r = FTI_OK;
        if (fault_armed && must3) fm->third_required++;
    } else {
        if (fault_armed && must3) fm->third_required++;
        r = fti_error_set(err, FTI_ERR_NOMEM, "answers %d %d %d (statuses %d, %d)", a1, a2, a3,
                          st, st3);
    }
    CHECK_EQ_INT(g->n_live, 0); /* every sequence started was ended */
done:
    if (r != FTI_OK && err->msg[0] == 0) fti_error_set(err, r, "%s", fti_result_str(r));
    fti_monitor_free(mon);
    fti_batch_free(g->bt);
    fti_free(g);
    fti_buf_free(&resp);
    fti_buf_free(&resp3);
    return r;
}

FTI_TEST(fault_alloc_serve_model) {
    fault_model fm;
    fti_test_model_opts mo;
    uint64_t counts[96];
    const char *path;
    fti_error err;
    int i;
    memset(&fm, 0, sizeof fm);
    memset(&mo, 0, sizeof mo);
    mo.seed = 11;
    mo.scale = 4.0f;
    mo.vocab = FTI_TEST_VOCAB_LETTERS;
    path = fti_test_model("fault_serve.gguf", &mo, NULL, NULL);
    REQUIRE(path && fti_engine_open(&fm.e, path, NULL, &err) == FTI_OK);
    for (i = 0; i < 96; i++) counts[i] = (uint64_t)(i < 52 ? 50 : 1);
    REQUIRE(fti_drift_ref_build(counts, 96, NULL, 0, 0, &fm.ref, NULL) == FTI_OK);
    fault_dir();
    fm.log_path = fault_path("logs/requests.jsonl");
    CHECK(fault_alloc_loop("serve a completion and a streamed chat with a model (engine "
                           "sessions, samplers, batched steps, monitor), then one more",
                           fault_serve_model, NULL, &fm) > 50);
    fprintf(stderr, "    %d faulty runs had to answer the request after the fault: all did\n",
            fm.third_required);
    fti_drift_ref_free(fm.ref);
    fti_engine_close(fm.e);
    fault_dir_done();
}
#else /* no server or no threads: nothing to serve */
void fti_test_fault_alloc_serve_request(void) {}
void fti_test_fault_alloc_serve_get_head(void) {}
void fti_test_fault_alloc_serve_model(void) {}
#endif
