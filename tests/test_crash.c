/* test_crash.c: crash safety of the feature store's commits and the registry's alias moves.
 *
 * crash_store_commit_steps: for every I/O step k of a dataset commit, a child process _exits just
 * before step k; afterwards every version committed earlier verifies, `latest` names a whole
 * version, and the next ingest succeeds (no stale lock, no half-written version visible).
 * crash_store_kill9_loop: a child commits versions in a loop and acknowledges each over a pipe;
 * the parent SIGKILLs it at random moments (FTI_CRASH_KILLS times, default 40; `make check` runs
 * 300) within 0..FTI_CRASH_KILL_MS (default 60) ms (every 4th time after its first
 * acknowledgement, so that slow builds make progress). After every kill the versions acknowledged
 * since the last kill, `latest` and 16 random earlier ones verify, and every 25 kills and at the
 * end all of them do (every earlier version verified when it was new, and a version's files are
 * immutable: the sample catches a later commit clobbering them, at linear instead of quadratic
 * cost).
 * crash_registry_promote_steps: the same step-by-step crash for an alias move.
 */
#include <signal.h>
#include <sys/wait.h>

#ifndef FTI_NO_STORE
static void crash_write_inputs(const char *dir, int round) {
    char path[4200], text[512];
    int i;
    fti_mkdirs(dir, NULL);
    for (i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/note%d.txt", dir, i);
        snprintf(text, sizeof text,
                 "Note %d of round %d. A cynic is a blackguard whose faulty vision sees things "
                 "as they are, not as they ought to be; round %d says so %d times.\n",
                 i, round, round, round * 7 + i);
        fti_test_write_file(path, text, strlen(text));
    }
}

static fti_result crash_ingest(const char *home, const char *in, char id[65], fti_error *err) {
    fti_ingest_opts o;
    const char *paths[1];
    memset(&o, 0, sizeof o);
    o.no_tokenizer = 1; /* the commit protocol is the same; keep each round fast */
    o.n_threads = 1;
    paths[0] = in;
    return fti_store_ingest(home, paths, 1, &o, id, NULL, err);
}

static int crash_store_consistent_from(const char *home, char (*ids)[65], size_t n, size_t from,
                                       fti_rng *rng);

/* Every id in ids verifies, and latest resolves to a version that verifies. */
static int crash_store_consistent(const char *home, char (*ids)[65], size_t n) {
    return crash_store_consistent_from(home, ids, n, 0, NULL);
}

/* ids[from..n) verify, and 16 random ones before from (all when rng is NULL: from = 0). */
static int crash_store_consistent_from(const char *home, char (*ids)[65], size_t n, size_t from,
                                       fti_rng *rng) {
    size_t i, j;
    char latest[65];
    fti_error err;
    for (j = 0; rng && from > 0 && j < 16; j++) {
        i = (size_t)fti_rng_below(rng, (uint32_t)from);
        if (fti_store_verify(home, ids[i], NULL, &err) != FTI_OK) {
            fprintf(stderr, "    version %.16s does not verify: %s\n", ids[i], err.msg);
            return 0;
        }
    }
    for (i = from; i < n; i++)
        if (fti_store_verify(home, ids[i], NULL, &err) != FTI_OK) {
            fprintf(stderr, "    version %.16s does not verify: %s\n", ids[i], err.msg);
            return 0;
        }
    if (n > 0) {
        if (fti_store_resolve(home, "latest", latest, &err) != FTI_OK ||
            fti_store_verify(home, latest, NULL, &err) != FTI_OK) {
            fprintf(stderr, "    latest does not verify: %s\n", err.msg);
            return 0;
        }
    }
    return 1;
}

FTI_TEST(crash_store_commit_steps) {
    const char *home = fti_test_tmp("home"), *in = fti_test_tmp("in");
    char ids[64][65], id[65];
    size_t n_ids = 0;
    long k, n_steps;
    fti_error err;
    crash_write_inputs(in, 0);
    REQUIRE(crash_ingest(home, in, ids[n_ids], &err) == FTI_OK);
    n_ids++;
    /* count the I/O steps of one commit of new content */
    crash_write_inputs(in, 1);
    fti__io_fault_set(FTI__IO_ALL, LONG_MAX, 0, 0, 0);
    REQUIRE(crash_ingest(home, in, ids[n_ids], &err) == FTI_OK);
    n_steps = fti__io_fault.count;
    fti__io_fault_set(0, 0, 0, 0, 0);
    n_ids++;
    CHECK(n_steps > 5);
    fprintf(stderr, "    a commit takes %ld I/O steps\n", n_steps);
    for (k = 1; k <= n_steps && n_ids < 60; k++) {
        int status = 0;
        pid_t pid;
        crash_write_inputs(in, 100 + (int)k);
        fflush(stderr);
        pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            fti__io_crash_set(FTI__IO_ALL, k);
            crash_ingest(home, in, id, NULL);
            _exit(0); /* finished before step k: the count differs from run to run */
        }
        waitpid(pid, &status, 0);
        CHECK(WIFEXITED(status));
        if (!crash_store_consistent(home, ids, n_ids)) {
            fprintf(stderr, "    after a crash before I/O step %ld of %ld\n", k, n_steps);
            fti_test_failures++;
            return;
        }
        /* the store stays usable: the same content commits now */
        if (crash_ingest(home, in, ids[n_ids], &err) != FTI_OK) {
            fprintf(stderr, "    ingest after a crash at step %ld failed: %s\n", k, err.msg);
            fti_test_failures++;
            return;
        }
        n_ids++;
    }
    CHECK(crash_store_consistent(home, ids, n_ids));
}

FTI_TEST(crash_store_kill9_loop) {
    const char *home = fti_test_tmp("home"), *in = fti_test_tmp("in");
    long kills = fti_env_long("FTI_CRASH_KILLS", 40), k;
    long kill_us = fti_env_long("FTI_CRASH_KILL_MS", 60) * 1000; /* < 1 s (tv_nsec) */
    size_t n_before;
    char (*ids)[65];
    size_t n_ids = 0, cap = 4096;
    fti_rng rng;
    int round = 0;
    ids = (char (*)[65])fti_calloc(cap, 65);
    REQUIRE(ids != NULL);
    fti_rng_seed(&rng, 99, 3);
    for (k = 0; k < kills; k++) {
        int fd[2], status;
        pid_t pid;
        char line[80];
        FILE *f;
        REQUIRE(pipe(fd) == 0);
        fflush(stderr);
        pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            int r;
            close(fd[0]);
            for (r = 0; r < 1000; r++) {
                char id[65];
                crash_write_inputs(in, round * 1000 + r + 1);
                if (crash_ingest(home, in, id, NULL) == FTI_OK) {
                    char msg[70];
                    snprintf(msg, sizeof msg, "%s\n", id);
                    if (write(fd[1], msg, 65) != 65) _exit(1);
                }
            }
            _exit(0);
        }
        close(fd[1]);
        n_before = n_ids;
        f = fdopen(fd[0], "r");
        /* every 4th round waits for one acknowledged commit first, so that slow builds
         * (sanitizers, qemu) make progress too */
        if (f && k % 4 == 0 && fgets(line, sizeof line, f) && strlen(line) == 65 &&
            n_ids < cap) {
            memcpy(ids[n_ids], line, 64);
            ids[n_ids][64] = 0;
            n_ids++;
        }
        {
            /* then kill at a random moment within 0..FTI_CRASH_KILL_MS */
            struct timespec ts;
            ts.tv_sec = 0;
            if (kill_us < 1 || kill_us >= 1000000) kill_us = 1000;
            ts.tv_nsec = (long)fti_rng_below(&rng, (uint32_t)kill_us) * 1000;
            nanosleep(&ts, NULL);
        }
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        while (f && fgets(line, sizeof line, f)) {
            if (strlen(line) == 65 && n_ids < cap) {
                memcpy(ids[n_ids], line, 64);
                ids[n_ids][64] = 0;
                n_ids++;
            }
        }
        if (f) fclose(f);
        round++;
        if (!((k + 1) % 25 == 0 || k + 1 == kills
                  ? crash_store_consistent(home, ids, n_ids)
                  : crash_store_consistent_from(home, ids, n_ids, n_before, &rng))) {
            fprintf(stderr, "    after kill %ld (%zu acknowledged versions)\n", k + 1, n_ids);
            fti_test_failures++;
            break;
        }
    }
    fprintf(stderr, "    %ld kills, %zu acknowledged versions, all verify\n", k, n_ids);
    CHECK(n_ids > 0 || kills == 0);
    fti_free(ids);
}

#else /* no feature store: nothing to commit */
void fti_test_crash_store_commit_steps(void) {}
void fti_test_crash_store_kill9_loop(void) {}
#endif

FTI_TEST(crash_registry_promote_steps) {
#ifndef FTI_NO_TRAIN /* the registry is part of 07 */
    const char *home = fti_test_tmp("home"), *model = fti_test_tmp("m.gguf");
    char a[17], b[17], got[17];
    long k, n_steps;
    fti_error err;
    REQUIRE(fti_test_write_file(model, "model one", 9) == 0);
    REQUIRE(fti_registry_add(home, model, "{}", 2, a, &err) == FTI_OK);
    REQUIRE(fti_test_write_file(model, "model two", 9) == 0);
    REQUIRE(fti_registry_add(home, model, "{}", 2, b, &err) == FTI_OK);
    REQUIRE(fti_registry_promote(home, a, "production", &err) == FTI_OK);
    fti__io_fault_set(FTI__IO_ALL, LONG_MAX, 0, 0, 0);
    REQUIRE(fti_registry_promote(home, b, "production", &err) == FTI_OK);
    n_steps = fti__io_fault.count;
    fti__io_fault_set(0, 0, 0, 0, 0);
    REQUIRE(fti_registry_promote(home, a, "production", &err) == FTI_OK);
    for (k = 1; k <= n_steps; k++) {
        int status = 0;
        pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            fti__io_crash_set(FTI__IO_ALL, k);
            fti_registry_promote(home, b, "production", NULL);
            _exit(0);
        }
        waitpid(pid, &status, 0);
        /* the alias names a or b, never nothing or garbage */
        if (fti_registry_resolve(home, "production", got, &err) != FTI_OK) {
            fprintf(stderr, "    crash before step %ld of %ld: %s\n", k, n_steps, err.msg);
            fti_test_failures++;
            return;
        }
        CHECK(!strcmp(got, a) || !strcmp(got, b));
        REQUIRE(fti_registry_promote(home, a, "production", &err) == FTI_OK);
    }
#endif
}
