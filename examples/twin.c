/* twin.c: keep the twin up to date without a person in the loop (build/fti-twin).
 *
 *   build/fti-twin [--home DIR] update PATH... [--minutes M] [--preset NAME] [--threads N]
 *                  [--steps N] [--vocab N] [--bf16 | --no-bf16] [--retokenize] [--wait]
 *   build/fti-twin [--home DIR] status
 *
 * `update` runs F -> T -> evaluation -> promotion:
 *   1. ingests PATH... into the feature store (fti_store_ingest; incremental: unchanged files are
 *      reused); if the dataset version is the one the production model was trained on, it says
 *      so and stops;
 *   2. trains a candidate with the library's training driver (fti_train_run): fine-tunes the
 *      production model on the new version when the tokenizer is the same, else trains from
 *      scratch with the twin's recipe for the preset;
 *   3. evaluates the candidate and the current production model on the same, new validation split;
 *   4. promotes the candidate to `production` only if its validation loss is lower
 *      (champion/challenger), and appends the decision with both figures to
 *      HOME/registry/decisions.jsonl. A running fti-serve follows the alias by itself.
 * A lock (HOME/twin.lock) keeps two runs apart, so it is safe from cron: a second update exits
 * with status 3 and a message naming the running one, or waits for it with --wait (then it
 * usually finds nothing changed). Running it again on the same inputs changes nothing.
 * Without --steps the number of steps is calibrated so training fills the --minutes budget.
 * Everything runs in this process, through fti.h only (no other program is started).
 * Exit status: 0 done (promoted or not), 1 failure, 2 usage, 3 busy.
 */
#define FTI_IMPLEMENTATION
#include "fti.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The twin's tokenizer vocabulary when it trains one: on the Bierce corpus 2048 models the
 * held-out entries 2% better per byte than 4096 (2.355 against 2.405 bits per byte, same steps)
 * and its steps are 19% cheaper; 1024 breaks more words into pieces in the generations
 * (docs/twin.md, "The twin's recipe") */
#define TWIN_VOCAB 2048
/* seconds kept at the end of an update for writing, evaluating and promoting the model */
#define TWIN_END_S 4.0
/* Training from scratch stops after this many passes over the training split even when the
 * budget has room for more: on a small corpus the validation loss bottoms out around here and
 * the model only memorises after it (docs/twin.md, "The twin's recipe"). */
#define TWIN_MAX_EPOCHS 12
#define TWIN_EPOCHS_STR "12 passes over the data"

/* bf16 matmuls when the CPU does them natively (AVX-512 BF16): about 1.4x the steps */
static int have_bf16(void) {
    const fti_kernels *k = fti_kernels_get(FTI_ISA_AUTO);
    return fti_kernels_isa(k) == FTI_ISA_AVX512 && fti_matmul_has_bf16(k);
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: fti-twin [--home DIR] update PATH... [--minutes M] [--preset NAME] [--threads N]\n"
            "                [--steps N] [--vocab N] [--bf16 | --no-bf16] [--retokenize] [--wait]\n"
            "       fti-twin [--home DIR] status\n"
            "\n"
            "update  ingest PATH... (incremental), then if the data changed: fine-tune the\n"
            "        production model (or train from scratch when the tokenizer changed or\n"
            "        there is none), evaluate candidate and production on the new validation\n"
            "        split, and promote the candidate only if it is better. Safe from cron.\n"
            "status  the production model, its dataset, and the last decisions.\n"
            "\n"
            "  --home DIR      workspace (default $FTI_HOME or ./twin)\n"
            "  --minutes M     time budget of the whole update in minutes (default 3)\n"
            "  --preset NAME   model preset for training from scratch (default small)\n"
            "  --threads N     threads (default $FTI_THREADS or all CPUs)\n"
            "  --steps N       train exactly N steps (default: as many as fit in the budget)\n"
            "  --vocab N       tokenizer vocabulary when one is trained (default %d)\n"
            "  --bf16          bf16 matmuls, fp32 master weights (default: on when the CPU has\n"
            "                  AVX-512 BF16); --no-bf16 turns them off\n"
            "  --retokenize    train a new tokenizer (then the model is trained from scratch)\n"
            "  --wait          if another update is running in the workspace, wait for it to\n"
            "                  finish instead of exiting with status 3\n"
            "\n"
            "exit status: 0 done (promoted or not), 1 failure, 2 usage, 3 another update is\n"
            "running (without --wait)\n", TWIN_VOCAB);
}

/* --- progress: one bar per ingest stage, then one for training (stderr, terminals only) --- */
typedef struct ui {
    fti_progress bar;
    char stage[32];
    int active, quiet;
} ui;

static void on_ingest(void *user, const fti_ingest_progress *p) {
    ui *u = (ui *)user;
    if (u->quiet) return;
    if (!u->active || strcmp(u->stage, p->stage) != 0) {
        if (u->active) fti_progress_end(&u->bar, NULL);
        snprintf(u->stage, sizeof u->stage, "%s", p->stage);
        fti_progress_begin(&u->bar, stderr, p->stage, strcmp(p->stage, "ingest") == 0 ? "B" : "",
                           p->total);
        u->active = 1;
    }
    fti_progress_update(&u->bar, p->done, NULL);
}

static void on_train(void *user, fti_train_event ev, const fti_train_run_result *run,
                     const fti_train_stats *st) {
    ui *u = (ui *)user;
    char extra[96];
    (void)run;
    if (u->quiet) return;
    if (ev == FTI_TRAIN_EVENT_START) {
        fti_progress_begin(&u->bar, stderr, "train", "step", st->total_steps);
        fti_progress_update(&u->bar, st->step, NULL);
        u->active = 1;
    } else if (ev == FTI_TRAIN_EVENT_STEP) {
        if (st->evaluated)
            snprintf(extra, sizeof extra, "loss %.4f val %.4f %.0f tok/s", st->loss,
                     st->val_loss, st->tokens_per_s);
        else
            snprintf(extra, sizeof extra, "loss %.4f %.0f tok/s", st->loss, st->tokens_per_s);
        u->bar.total = st->total_steps; /* the driver fits the schedule to the time left */
        fti_progress_update(&u->bar, st->step, extra);
    } else if (u->active) {
        fti_progress_end(&u->bar, NULL);
        u->active = 0;
    }
}

static void on_log(void *user, fti_log_level level, const char *msg) {
    (void)user;
    if (level >= FTI_LOG_WARN) fprintf(stderr, "fti-twin: %s\n", msg);
}

/* Mean cross-entropy (nats per token) of a model file on the validation shard of ds. */
static int val_loss(const char *model_path, const fti_dataset *ds, fti_pool *pool, double *loss,
                    fti_error *err) {
    const fti_token_shard *sh = fti_dataset_shard(ds, FTI_SPLIT_VAL);
    fti_engine *e = NULL;
    fti_session *s = NULL;
    fti_session_opts so;
    int32_t *ids;
    uint64_t i;
    int ok = 0;
    if (!sh || sh->count < 2) {
        fti_error_set(err, FTI_ERR_NOT_FOUND, "the dataset has no validation tokens");
        return 0;
    }
    ids = (int32_t *)fti_malloc((size_t)sh->count * sizeof *ids);
    if (!ids) return 0;
    for (i = 0; i < sh->count; i++) ids[i] = (int32_t)fti_shard_at(sh, i);
    memset(&so, 0, sizeof so);
    so.pool = pool;
    if (fti_engine_open(&e, model_path, NULL, err) == FTI_OK &&
        fti_session_create(&s, e, &so, err) == FTI_OK &&
        fti_session_nll(s, ids, (size_t)sh->count, loss, err) == FTI_OK)
        ok = 1;
    fti_session_free(s);
    fti_engine_close(e);
    fti_free(ids);
    return ok;
}

/* Steps that fit in budget_s seconds of training: real steps of the same model, options and
 * batch shape as the run (bf16 included), timed after one warm-up step for at least a second
 * (or 1% of the budget), plus one validation pass; the run does about 21 validation passes
 * (every steps/20 and at the end) and one checkpoint. The learning-rate schedule needs the
 * length up front; training also stops at the time limit whatever happens (a machine that gets
 * busier after the calibration). *cal_s gets the seconds the calibration took. */
static uint64_t calibrate_steps(const fti_model_config *cfg, const fti_train_opts *run_opts,
                                const fti_dataset *ds, double budget_s, double *cal_s) {
    const fti_token_shard *sh = fti_dataset_shard(ds, FTI_SPLIT_TRAIN);
    const fti_token_shard *shv = fti_dataset_shard(ds, FTI_SPLIT_VAL);
    fti_train_opts o;
    fti_token_array tr, va;
    fti_trainer *t = NULL;
    uint64_t steps = 300, t_begin = fti_time_ns(), t0 = 0, n = 0;
    double min_s = budget_s * 0.01 < 1.0 ? 1.0 : budget_s * 0.01, step_s, eval_s = 0, vl;
    *cal_s = 0;
    if (!sh) return steps;
    o = *run_opts;
    o.batch = run_opts->batch ? run_opts->batch : 8; /* the driver's default */
    o.max_steps = 1000000;
    o.max_seconds = 0;
    o.eval_every = 0;
    o.checkpoint_path = NULL;
    o.log = NULL;
    tr.data = sh->data;
    tr.n_tokens = (size_t)sh->count;
    tr.token_bytes = (int)sh->width;
    va = tr;
    va.n_tokens = 0;
    if (shv && shv->count > (uint64_t)(o.ctx ? o.ctx : cfg->context_len) + 1) {
        va.data = shv->data;
        va.n_tokens = (size_t)shv->count;
        va.token_bytes = (int)shv->width;
    }
    if (fti_trainer_create(cfg, NULL, &o, tr, va, &t, NULL) != FTI_OK) return steps;
    if (fti_trainer_step(t, NULL, NULL) == FTI_OK) { /* warm-up: caches, pool, page faults */
        t0 = fti_time_ns();
        while (n < 200 && fti_trainer_step(t, NULL, NULL) == FTI_OK) {
            n++;
            if (n >= 3 && (double)(fti_time_ns() - t0) / 1e9 >= min_s) break;
        }
    }
    if (n >= 3) {
        uint64_t te;
        step_s = (double)(fti_time_ns() - t0) / 1e9 / (double)n;
        te = fti_time_ns();
        if (va.n_tokens && fti_trainer_eval(t, &vl) == FTI_OK)
            eval_s = (double)(fti_time_ns() - te) / 1e9;
        /* 21 validation passes, the checkpoint and the best weights: about 1% more */
        vl = (budget_s * 0.99 - 21 * eval_s) / step_s;
        steps = vl < 20 ? 20 : (uint64_t)vl;
    }
    fti_trainer_free(t);
    *cal_s = (double)(fti_time_ns() - t_begin) / 1e9;
    return steps;
}

/* What fti-twin trains from scratch: the preset, with the hyper-parameters tuned for a
 * few-minute budget on a small corpus (docs/twin.md, "The twin's recipe"; the tokenizer's
 * vocabulary is TWIN_VOCAB and bf16 is on where the CPU has it, see main). */
static void twin_recipe(const char *preset, fti_train_run_opts *ro) {
    /* validation over more windows (the Bierce split has ~43 of 129 tokens), and often enough
     * for keep_best to catch the minimum: the model starts to overfit a ~110k-token corpus after
     * about a dozen epochs, well inside a few minutes */
    ro->train.eval_windows = 32;
    ro->keep_best = 1;
    /* a higher peak learning rate with much stronger decoupled weight decay: on the Bierce
     * corpus (small preset, vocabulary 4096, ~1,900 steps of 8 x 128 tokens) validation loss
     * 4.80 instead of 4.88 at its best (lr 1e-3, decay 0.1); with bf16 the model may pass its
     * best before the end of the budget, and keep_best ships the best pass */
    if (strcmp(preset, "small") == 0) {
        ro->train.lr = 2e-3f;
        ro->train.adamw.weight_decay = 1.0f;
    }
}

/* The card of a registered model (parsed), or NULL. */
static fti_json_doc *load_card(const char *home, const char *ref, char id[17]) {
    fti_buf b = {0};
    fti_json_doc *doc = NULL;
    if (fti_registry_resolve(home, ref, id, NULL) == FTI_OK &&
        fti_registry_card(home, id, &b, NULL) == FTI_OK)
        fti_json_parse(b.data, b.len, NULL, &doc, NULL, NULL);
    fti_buf_free(&b);
    return doc;
}

/* Appends one decision line to HOME/registry/decisions.jsonl (append + fsync). */
static void log_decision(const char *home, const char *json, size_t n) {
    char *dir = fti_path_join(home, "registry"), *path = dir ? fti_path_join(dir, "decisions.jsonl") : NULL;
    int fd;
    if (path && fti_mkdirs(dir, NULL) == FTI_OK &&
        (fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644)) >= 0) {
        if (write(fd, json, n) != (ssize_t)n || write(fd, "\n", 1) != 1 || fsync(fd) != 0)
            fprintf(stderr, "fti-twin: could not log the decision to %s\n", path);
        close(fd);
    }
    fti_free(path);
    fti_free(dir);
}

static int cmd_status(const char *home) {
    char id[17], *path;
    fti_json_doc *card = load_card(home, "production", id);
    void *data;
    size_t len;
    if (!card) {
        printf("no production model in %s (run: fti-twin update PATH...)\n", home);
        return 0;
    }
    printf("production  %s\n", id);
    printf("dataset     %s\n", fti_json_get_str(fti_json_root(card), "dataset", "?"));
    printf("val_loss    %.4f (on its own dataset's validation split)\n",
           fti_json_get_num(fti_json_root(card), "val_loss", NAN));
    fti_json_free(card);
    path = fti_path_join(home, "registry/decisions.jsonl");
    if (path && fti_file_read(path, 64u << 20, &data, &len, NULL) == FTI_OK) {
        /* the last five decisions */
        size_t k = len, lines = 0;
        while (k > 0 && lines < 6) if (((char *)data)[--k] == '\n') lines++;
        printf("last decisions:\n%s", (char *)data + (k ? k + 1 : 0));
        fti_free(data);
    }
    fti_free(path);
    return 0;
}

int main(int argc, char **argv) {
    const char *home_arg = NULL, *preset = "small", *cmd = NULL;
    const char **paths;
    size_t n_paths = 0;
    double minutes = 3;
    int threads = 0, i, rc = 1, lock_fd = -1, have_prod, retokenize = 0, wait_lock = 0;
    int vocab = 0, bf16 = -1;
    uint64_t fixed_steps = 0;
    char *home, *lock_path = NULL, prod_id[17] = "", cand_id[64] = "", version[65] = "";
    ui u;
    uint64_t t_start = fti_time_ns();
    double budget_s;
    fti_error err;
    fti_json_doc *prod = NULL, *cand = NULL;
    fti_dataset *ds = NULL;
    fti_pool *pool = NULL;

    memset(&u, 0, sizeof u);
    u.quiet = !isatty(2);
    paths = (const char **)fti_calloc((size_t)argc, sizeof *paths);
    if (!paths) return 1;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--home") && i + 1 < argc) home_arg = argv[++i];
        else if (!strcmp(a, "--minutes") && i + 1 < argc) minutes = atof(argv[++i]);
        else if (!strcmp(a, "--preset") && i + 1 < argc) preset = argv[++i];
        else if (!strcmp(a, "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(a, "--steps") && i + 1 < argc) fixed_steps = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(a, "--vocab") && i + 1 < argc) vocab = atoi(argv[++i]);
        else if (!strcmp(a, "--retokenize")) retokenize = 1;
        else if (!strcmp(a, "--wait")) wait_lock = 1;
        else if (!strcmp(a, "--bf16")) bf16 = 1;
        else if (!strcmp(a, "--no-bf16")) bf16 = 0;
        else if (a[0] == '-') {
            fprintf(stderr, "fti-twin: unknown option %s (try --help)\n", a);
            return 2;
        } else if (!cmd) cmd = a;
        else paths[n_paths++] = a;
    }
    if (!cmd || (strcmp(cmd, "update") && strcmp(cmd, "status")) ||
        (!strcmp(cmd, "update") && n_paths == 0) || !(minutes > 0) || vocab < 0 ||
        (vocab > 0 && vocab < 260)) {
        usage(stderr);
        return 2;
    }
    home = fti_workspace_resolve(home_arg);
    if (!home || fti_workspace_init(home, &err) != FTI_OK) {
        fprintf(stderr, "fti-twin: workspace %s: %s\n", home ? home : "?", home ? err.msg : "");
        return 1;
    }
    if (!strcmp(cmd, "status")) return cmd_status(home);

    /* one update at a time: a write lock on HOME/twin.lock (fcntl: it goes away with the
     * process however that ends, and F_GETLK names the process holding it) */
    lock_path = fti_path_join(home, "twin.lock");
    lock_fd = lock_path ? open(lock_path, O_RDWR | O_CREAT, 0644) : -1;
    if (lock_fd < 0) {
        fprintf(stderr, "fti-twin: cannot open the lock file %s: %s\n",
                lock_path ? lock_path : home, lock_path ? strerror(errno) : "out of memory");
        goto done;
    }
    {
        struct flock fl;
        memset(&fl, 0, sizeof fl);
        fl.l_type = F_WRLCK;
        fl.l_whence = SEEK_SET;
        if (fcntl(lock_fd, F_SETLK, &fl) != 0) {
            struct flock who = fl;
            long holder = fcntl(lock_fd, F_GETLK, &who) == 0 && who.l_type != F_UNLCK
                              ? (long)who.l_pid : 0;
            if (errno != EACCES && errno != EAGAIN && holder == 0) {
                fprintf(stderr, "fti-twin: cannot lock %s: %s\n", lock_path, strerror(errno));
                goto done;
            }
            if (!wait_lock) {
                fprintf(stderr, "fti-twin: another update (pid %ld) is running in %s: nothing "
                        "done; try again later, or use --wait to wait for it\n", holder, home);
                rc = 3;
                goto done;
            }
            printf("== another update (pid %ld) is running in %s: waiting for it to finish\n",
                   holder, home);
            fflush(stdout);
            while (fcntl(lock_fd, F_SETLKW, &fl) != 0) {
                if (errno != EINTR) {
                    fprintf(stderr, "fti-twin: waiting for the lock %s: %s\n", lock_path,
                            strerror(errno));
                    goto done;
                }
            }
        }
    }

    /* F: the feature pipeline. With a production model, its tokenizer is kept (so the model can
     * be fine-tuned on the new version) unless --retokenize asks for a new one. */
    prod = load_card(home, "production", prod_id);
    have_prod = prod != NULL;
    printf("== F: ingesting %lu path(s) into %s\n", (unsigned long)n_paths, home);
    fflush(stdout);
    {
        char tok_path[4096] = "";
        fti_ingest_opts io;
        size_t reused = 0;
        const fti_json *c;
        if (have_prod && !retokenize) {
            fti_dataset *pds = NULL;
            if (fti_dataset_open(&pds, home, fti_json_get_str(fti_json_root(prod), "dataset", ""),
                                 NULL) == FTI_OK &&
                fti_dataset_tokenizer_path(pds))
                snprintf(tok_path, sizeof tok_path, "%s", fti_dataset_tokenizer_path(pds));
            fti_dataset_close(pds);
        }
        memset(&io, 0, sizeof io);
        io.tokenizer = tok_path[0] ? tok_path : NULL;
        io.vocab_size = vocab ? vocab : TWIN_VOCAB;
        io.n_threads = threads;
        io.progress = on_ingest;
        io.progress_user = &u;
        io.log = on_log;
        if (fti_store_ingest(home, paths, n_paths, &io, version, &reused, &err) != FTI_OK) {
            if (u.active) fti_progress_end(&u.bar, NULL);
            fprintf(stderr, "fti-twin: the feature pipeline failed: %s\n", err.msg);
            goto done;
        }
        if (u.active) fti_progress_end(&u.bar, NULL);
        u.active = 0;
        if (fti_dataset_open(&ds, home, version, &err) != FTI_OK) {
            fprintf(stderr, "fti-twin: %s\n", err.msg);
            goto done;
        }
        c = fti_json_get(fti_dataset_manifest(ds), "counts");
        printf("   dataset version %s\n", version);
        printf("   %lld document(s) kept (train %lld, val %lld), %lld tokens, %lld chunks; "
               "%lu of %lld input file(s) reused from the cache%s\n",
               (long long)fti_json_get_int(c, "documents", 0),
               (long long)fti_json_get_int(c, "train_documents", 0),
               (long long)fti_json_get_int(c, "val_documents", 0),
               (long long)(fti_json_get_int(c, "train_tokens", 0) +
                           fti_json_get_int(c, "val_tokens", 0)),
               (long long)fti_json_get_int(c, "chunks", 0), (unsigned long)reused,
               (long long)fti_json_get_int(c, "files", 0),
               tok_path[0] ? ", tokenizer of the production model kept" : "");
    }
    /* Unchanged: the same version, or one with the same documents and the same tokenizer (a
     * version id also covers options such as a tokenizer given instead of trained). */
    if (have_prod) {
        const char *pds = fti_json_get_str(fti_json_root(prod), "dataset", "");
        const char *ptok = fti_json_get_str(fti_json_root(prod), "tokenizer", "");
        const char *tok = fti_dataset_tokenizer_sha256(ds);
        size_t added = 1, removed = 1;
        fti_buf diff = {0};
        int same = !strcmp(pds, version);
        if (!same && tok && !strcmp(ptok, tok) &&
            fti_store_diff(home, pds, version, &diff, &added, &removed, NULL) == FTI_OK)
            same = added == 0 && removed == 0;
        fti_buf_free(&diff);
        if (same) {
            printf("== the data did not change since the production model %s was trained "
                   "(dataset %.16s): nothing to do\n", prod_id, pds);
            rc = 0;
            goto done;
        }
    }

    /* T: fine-tune or train from scratch, through the library's training driver */
    {
        fti_train_run_opts ro;
        fti_train_run_result res;
        const char *ds_tok = fti_dataset_tokenizer_sha256(ds);
        int same_tok = have_prod && ds_tok &&
                       !strcmp(fti_json_get_str(fti_json_root(prod), "tokenizer", ""), ds_tok);
        fti_model_config cfg;
        int ok = 0;
        uint64_t steps, max_epoch_steps = 0;
        double cal_s = 0;
        memset(&ro, 0, sizeof ro);
        ro.dataset = version;
        ro.train.n_threads = threads;
        ro.train.log = on_log;
        ro.train.bf16 = bf16 >= 0 ? bf16 : have_bf16();
        ro.progress = on_train;
        ro.progress_user = &u;
        ro.keep_best = 1;
        if (same_tok) {
            fti_engine *pe = NULL;
            if (fti_engine_open(&pe, fti_json_get_str(fti_json_root(prod), "path", ""), NULL,
                                NULL) == FTI_OK) {
                cfg = *fti_engine_config(pe);
                ok = 1;
            }
            fti_engine_close(pe);
            ro.from = prod_id;
            ro.train.lr = 3e-4f;
        } else {
            twin_recipe(preset, &ro);
            memset(&cfg, 0, sizeof cfg);
            if (fti_model_preset(preset, &cfg) == FTI_OK) {
                if (ro.config.dim) cfg.dim = ro.config.dim;
                if (ro.config.n_layers) cfg.n_layers = ro.config.n_layers;
                if (ro.config.n_heads) cfg.n_heads = ro.config.n_heads;
                if (ro.config.n_heads) cfg.n_kv_heads = ro.config.n_kv_heads;
                if (ro.config.hidden_dim) cfg.hidden_dim = ro.config.hidden_dim;
                if (ro.config.context_len) cfg.context_len = ro.config.context_len;
                cfg.vocab_size = fti_dataset_shard(ds, FTI_SPLIT_TRAIN)
                                     ? fti_dataset_shard(ds, FTI_SPLIT_TRAIN)->vocab_size
                                     : 0;
                ok = fti_model_config_resolve(&cfg, NULL) == FTI_OK;
            }
            ro.preset = preset;
        }
        /* --minutes covers the whole update: what ingest took, the calibration, and a few
         * seconds for writing, evaluating and promoting the model at the end come out of the
         * training time */
        budget_s = minutes * 60 - (double)(fti_time_ns() - t_start) / 1e9 - TWIN_END_S;
        if (budget_s < 15) budget_s = 15;
        if (fixed_steps) steps = fixed_steps;
        else if (ok) steps = calibrate_steps(&cfg, &ro.train, ds, budget_s - 2, &cal_s);
        else steps = 300;
        budget_s -= cal_s;
        if (budget_s < 10) budget_s = 10;
        /* from scratch, at most TWIN_MAX_EPOCHS passes over the training split */
        if (!same_tok && !fixed_steps) {
            const fti_token_shard *sh = fti_dataset_shard(ds, FTI_SPLIT_TRAIN);
            size_t bt = (ro.train.batch ? ro.train.batch : 8) *
                        (ro.train.ctx ? ro.train.ctx : cfg.context_len);
            max_epoch_steps = sh && bt ? (uint64_t)TWIN_MAX_EPOCHS * sh->count / bt : 0;
            if (max_epoch_steps < 20) max_epoch_steps = 20;
        }
        if (max_epoch_steps && steps > max_epoch_steps) steps = max_epoch_steps;
        ro.train.max_steps = steps;
        ro.train.max_seconds = budget_s;
        ro.train.warmup_steps = steps / 20 ? steps / 20 : 1;
        /* the calibration is only the first estimate: the driver re-estimates the schedule's
         * length every second from the measured wall time of the recent steps (validation
         * passes included), so training ends at the budget (or after TWIN_MAX_EPOCHS) with its
         * learning rate decayed, whatever the machine's load does meanwhile */
        if (!fixed_steps) {
            ro.fit_seconds = budget_s;
            if (max_epoch_steps) ro.train.max_steps = max_epoch_steps;
            else ro.train.max_steps = steps * 4; /* room for a machine that gets quieter */
        }
        ro.train.eval_every = steps >= 40 ? steps / 20 : 2;
        /* a checkpoint at the end only: an update is never resumed (it starts again), and
         * writing weights and moments every 100 steps costs training time */
        ro.train.checkpoint_every = fixed_steps ? steps : (uint64_t)1 << 62;
        if (fixed_steps)
            printf("   %llu steps (--steps)%s\n", (unsigned long long)steps,
                   ro.train.bf16 ? ", bf16 matmuls" : "");
        else
            printf("   about %llu steps fit in the budget on this machine (%.1f s measured; the "
                   "schedule follows the measured step time)%s%s%s\n", (unsigned long long)steps,
                   cal_s, ro.train.bf16 ? ", bf16 matmuls" : "",
                   max_epoch_steps && steps == max_epoch_steps ? ", capped at " : "",
                   max_epoch_steps && steps == max_epoch_steps ? TWIN_EPOCHS_STR : "");
        if (same_tok)
            printf("== T: fine-tuning production model %s on %.16s for %.1f min\n", prod_id,
                   version, budget_s / 60);
        else
            printf("== T: training a %s model from scratch on %.16s for %.1f min%s\n", preset,
                   version, budget_s / 60, have_prod ? " (the tokenizer changed)" : "");
        fflush(stdout);
        if (fti_train_run(home, &ro, &res, &err) != FTI_OK) {
            on_train(&u, FTI_TRAIN_EVENT_END, &res, &res.stats);
            fprintf(stderr, "fti-twin: training failed: %s\n", err.msg);
            goto done;
        }
        printf("steps %llu  tokens %llu  train loss %.4f  val loss %.4f (best %.4f)  %.1f s%s\n",
               (unsigned long long)res.stats.step, (unsigned long long)res.stats.tokens_seen,
               res.stats.loss, res.stats.val_loss, res.stats.best_val_loss, res.stats.elapsed_s,
               res.used_best ? "  (best validation weights kept)" : "");
        printf("run %s/runs/%s\n", home, res.run_key);
        printf("model %s\n", res.id);
        snprintf(cand_id, sizeof cand_id, "%s", res.id);
    }

    /* evaluation on the new validation split, then champion/challenger */
    pool = fti_pool_create(threads);
    {
        char cid[17];
        double lc = NAN, lp = NAN;
        int promote;
        fti_buf line = {0};
        fti_jw w;
        char now[32];
        cand = load_card(home, cand_id, cid);
        if (!cand || !val_loss(fti_json_get_str(fti_json_root(cand), "path", ""), ds, pool, &lc, &err)) {
            fprintf(stderr, "fti-twin: evaluating the candidate: %s\n", err.msg);
            goto done;
        }
        if (have_prod &&
            !val_loss(fti_json_get_str(fti_json_root(prod), "path", ""), ds, pool, &lp, &err)) {
            /* a production model that cannot read this split (other tokenizer) loses */
            lp = INFINITY;
        }
        promote = !have_prod || lc < lp;
        printf("== evaluation on the new validation split (%llu tokens)\n",
               (unsigned long long)fti_dataset_shard(ds, FTI_SPLIT_VAL)->count);
        printf("   candidate   %s  val loss %.4f  perplexity %.2f\n", cand_id, lc, exp(lc));
        if (have_prod)
            printf("   production  %s  val loss %.4f  perplexity %.2f\n", prod_id, lp, exp(lp));
        if (promote && fti_registry_promote(home, cand_id, "production", &err) != FTI_OK) {
            fprintf(stderr, "fti-twin: promotion failed: %s\n", err.msg);
            goto done;
        }
        printf("== %s\n", promote ? (have_prod ? "candidate is better: promoted to production"
                                               : "first model: promoted to production")
                                  : "production stays: the candidate is not better");
        fti_time_iso8601(fti_time_wall(), now);
        fti_jw_init(&w, &line, 0);
        fti_jw_obj_begin(&w);
        fti_jw_key(&w, "time");
        fti_jw_str(&w, now);
        fti_jw_key(&w, "dataset");
        fti_jw_str(&w, version);
        fti_jw_key(&w, "candidate");
        fti_jw_str(&w, cand_id);
        fti_jw_key(&w, "candidate_val_loss");
        fti_jw_num(&w, lc);
        fti_jw_key(&w, "production");
        if (have_prod) fti_jw_str(&w, prod_id);
        else fti_jw_null(&w);
        fti_jw_key(&w, "production_val_loss");
        fti_jw_num(&w, lp);
        fti_jw_key(&w, "promoted");
        fti_jw_bool(&w, promote);
        fti_jw_obj_end(&w);
        log_decision(home, line.data, line.len);
        fti_buf_free(&line);
    }
    rc = 0;
done:
    fti_json_free(prod);
    fti_json_free(cand);
    fti_dataset_close(ds);
    fti_pool_free(pool);
    if (lock_fd >= 0) close(lock_fd);
    fti_free(lock_path);
    fti_free(home);
    fti_free(paths);
    return rc;
}
