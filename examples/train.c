/* fti-train: train (or fine-tune) a Llama-style model on a dataset version and register it.
 *
 *   build/fti-train [--home DIR] [--dataset VERSION] [--preset NAME] [--steps N] [--seed S]
 *                   [--threads N] [--checkpoint-every N] [--resume] [options]
 *
 * Example (after build/fti-feature ingest ../shared/data/corpus/bierce_devils_dictionary):
 *   build/fti-train --preset tiny --steps 300
 * The run lives in HOME/runs/<key>/ (checkpoint, metrics.jsonl, loss.svg, model.gguf), where the
 * key is a hash of the dataset version and every option that changes the result; --resume picks
 * the same run up from its last checkpoint (and fails, naming the checkpoint it looked for, when
 * that run has none). The same command without --resume does not start such a run over (nor a
 * finished one): it says so, unless --restart. Ctrl-C (SIGINT) or SIGTERM finishes the step under
 * way, saves the checkpoint and exits 130 / 143 (a second Ctrl-C kills at once). The model is
 * registered in HOME/models/ and the last word printed is its id (see build/fti-registry).
 */
#define FTI_IMPLEMENTATION
#include "fti.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f) {
    fprintf(f,
        "usage: fti-train [--home DIR] [--dataset VERSION] [--preset NAME] [--steps N] [--seed S]\n"
        "                 [--threads N] [--checkpoint-every N] [--resume | --restart] [options]\n"
        "\n"
        "Trains a Llama-style model on a dataset version of the feature store (train and val\n"
        "token shards), writes it as GGUF and registers it; prints the model id last.\n"
        "Workspace: --home DIR, else $FTI_HOME, else ./twin.\n"
        "\n"
        "  --dataset VERSION    id, prefix, tag or latest [latest]\n"
        "  --preset NAME        tiny, small, stories15M, stories42M, stories110M [tiny]\n"
        "  --dim N --layers N --heads N --kv-heads N --hidden N --context N --untied\n"
        "                       explicit config: override the preset's values\n"
        "  --steps N            optimizer steps (also the schedule length) [300]\n"
        "  --max-tokens N       stop after N training tokens [no limit]\n"
        "  --max-seconds S      stop after S seconds of training (summed over resumes)\n"
        "  --seed S             initialisation and sampling seed [1]\n"
        "  --threads N          worker threads, 0 = the default [$FTI_THREADS or all CPUs]\n"
        "  --bf16               bf16 matmuls (AVX-512 BF16), fp32 master weights [off]\n"
        "  --batch N  --ctx N   sequences per micro-batch [8], tokens each [preset's context]\n"
        "  --accum N            micro-batches per step (gradient accumulation) [1]\n"
        "  --lr F               peak learning rate [1e-3; 3e-3 for tiny]\n"
        "  --warmup N           warmup steps, 1 = none (full rate from the first) [steps/20]\n"
        "  --weight-decay F     AdamW decoupled weight decay, 0 = none [0.1]\n"
        "  --clip F             global gradient-norm clip [1.0]\n"
        "  --dropout P          residual dropout in training steps, 0..0.9, 0 = none [0]\n"
        "  --eval-every N       validation every N steps [steps/10]\n"
        "  --checkpoint-every N checkpoint every N steps [100]\n"
        "  --resume             continue the interrupted run with the same options (an error\n"
        "                       if no run with these options has saved a checkpoint)\n"
        "  --restart            start the run over although it has a checkpoint or its model\n"
        "                       is registered (without it, without --resume: an error naming\n"
        "                       the run and its step)\n"
        "  --from MODEL         fine-tune a registered model (id, prefix or alias); the dataset\n"
        "                       must use the same tokenizer\n"
        "  --lora R             train rank-R LoRA adapters on the frozen --from model\n"
        "  --lora-alpha F       LoRA scale numerator [2R]\n"
        "  --name NAME          name on the model card [fti-twin]\n"
        "  --keep-best          register the weights of the best validation pass (the card\n"
        "                       gives that pass's step, tokens, losses; not with --lora)\n"
        "  --quiet              no progress bar\n"
        "\n"
        "Sizes, counts and steps are whole numbers from 1 (0 is refused: it meant the default).\n"
        "Ctrl-C or SIGTERM: the step under way finishes, the checkpoint is saved, no model is\n"
        "registered; --resume continues (a second Ctrl-C kills at once). After the last step\n"
        "the run ends as usual: its model is written and registered.\n"
        "Exit status: 0 trained and registered, 1 failed (or the run exists: see --restart),\n"
        "2 bad usage, 130 interrupted by SIGINT, 143 by SIGTERM.\n");
}

typedef struct args {
    const char *home, *dataset, *preset, *from, *name;
    uint64_t steps, max_tokens, seed, warmup, eval_every, ckpt_every;
    double max_seconds;
    int threads, resume, restart, quiet, keep_best, bf16;
    size_t batch, ctx, accum;
    float lr, wd, clip, lora_alpha, dropout;
    uint32_t lora;
    uint64_t dim, layers, heads, kv_heads, hidden, context;
    int untied, preset_given;
} args;

/* The options that take a value (the flags are matched before). */
static int takes_value(const char *o) {
    static const char *const names[] = {
        "--home", "--dataset", "--preset", "--from", "--name", "--steps", "--max-tokens",
        "--seed", "--warmup", "--dim", "--layers", "--heads", "--kv-heads", "--hidden",
        "--context", "--eval-every", "--checkpoint-every", "--threads", "--batch", "--ctx",
        "--accum", "--lora", "--lr", "--weight-decay", "--clip", "--dropout", "--lora-alpha",
        "--max-seconds"};
    size_t i;
    for (i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(o, names[i]) == 0) return 1;
    return 0;
}

static int parse_u64(const char *s, uint64_t *out) {
    char *end;
    unsigned long long v;
    if (!s || !*s || *s == '-') return 0;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (*end || errno == ERANGE) return 0; /* not clamped to the largest value */
    *out = (uint64_t)v;
    return 1;
}

/* A whole number in [lo, hi] for option o: 1, else -1 after a message naming the option and the
 * range. */
static int parse_range(const char *o, const char *v, uint64_t lo, uint64_t hi, uint64_t *out) {
    uint64_t x = 0;
    if (!parse_u64(v, &x) || x < lo || x > hi) {
        fprintf(stderr, "fti-train: %s takes a whole number from %llu to %llu, not '%s'\n", o,
                (unsigned long long)lo, (unsigned long long)hi, v);
        return -1;
    }
    *out = x;
    return 1;
}

/* A number in [lo, hi], the whole of s (atof read "5abc" as 5, and "inf" passed). */
static int parse_real(const char *s, double lo, double hi, double *out) {
    char *end;
    double v;
    if (!s || !*s) return 0;
    v = strtod(s, &end);
    if (*end || !(v >= lo && v <= hi)) return 0;
    *out = v;
    return 1;
}

static int parse_args(int argc, char **argv, args *a) {
    int i;
    memset(a, 0, sizeof(*a));
    a->preset = "tiny";
    a->steps = 300;
    a->seed = 1;
    a->name = "fti-twin";
    for (i = 1; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t u = 0;
        double d = 0;
        int ok = 1, takes = 1;
        if (strcmp(o, "--help") == 0 || strcmp(o, "-h") == 0) {
            usage(stdout);
            exit(0);
        } else if (strcmp(o, "--resume") == 0) {
            a->resume = 1;
            takes = 0;
        } else if (strcmp(o, "--restart") == 0) {
            a->restart = 1;
            takes = 0;
        } else if (strcmp(o, "--quiet") == 0) {
            a->quiet = 1;
            takes = 0;
        } else if (strcmp(o, "--keep-best") == 0) {
            a->keep_best = 1;
            takes = 0;
        } else if (strcmp(o, "--bf16") == 0) {
            a->bf16 = 1;
            takes = 0;
        } else if (strcmp(o, "--untied") == 0) {
            a->untied = 1;
            takes = 0;
        } else if (!takes_value(o)) {
            fprintf(stderr, "fti-train: unknown %s %s (see --help)\n",
                    o[0] == '-' ? "option" : "argument", o);
            return 0;
        } else if (!v) {
            fprintf(stderr, "fti-train: %s needs a value\n", o);
            return 0;
        } else if (!*v && strcmp(o, "--name") != 0) {
            /* "" would be the default (latest, tiny, $FTI_HOME...); --name's check is below */
            fprintf(stderr, "fti-train: %s needs a value, not an empty string\n", o);
            return 0;
        } else if (strcmp(o, "--home") == 0) a->home = v;
        else if (strcmp(o, "--dataset") == 0) a->dataset = v;
        else if (strcmp(o, "--preset") == 0) a->preset = v, a->preset_given = 1;
        else if (strcmp(o, "--from") == 0) a->from = v;
        else if (strcmp(o, "--name") == 0) a->name = v;
        /* 0 would silently be the default (300 steps, no limit, steps/20, the preset's size):
         * refused, named with the range. (--seed 0 is a seed like any other.) */
        else if (strcmp(o, "--steps") == 0) ok = parse_range(o, v, 1, UINT64_MAX, &a->steps);
        else if (strcmp(o, "--max-tokens") == 0)
            ok = parse_range(o, v, 1, UINT64_MAX, &a->max_tokens);
        else if (strcmp(o, "--seed") == 0) ok = parse_u64(v, &a->seed);
        else if (strcmp(o, "--warmup") == 0) ok = parse_range(o, v, 1, UINT64_MAX, &a->warmup);
        /* sizes: range-checked here, so a bad one is named with its range */
        else if (strcmp(o, "--dim") == 0) ok = parse_range(o, v, 1, 65535, &a->dim);
        else if (strcmp(o, "--layers") == 0) ok = parse_range(o, v, 1, 1023, &a->layers);
        else if (strcmp(o, "--heads") == 0) ok = parse_range(o, v, 1, 65535, &a->heads);
        else if (strcmp(o, "--kv-heads") == 0) ok = parse_range(o, v, 1, 65535, &a->kv_heads);
        else if (strcmp(o, "--hidden") == 0) ok = parse_range(o, v, 1, 262143, &a->hidden);
        else if (strcmp(o, "--context") == 0) ok = parse_range(o, v, 1, 65535, &a->context);
        /* 0 would silently be the default (steps/10, 100), not "never" */
        else if (strcmp(o, "--eval-every") == 0)
            ok = parse_range(o, v, 1, UINT64_MAX, &a->eval_every);
        else if (strcmp(o, "--checkpoint-every") == 0)
            ok = parse_range(o, v, 1, UINT64_MAX, &a->ckpt_every);
        else if (strcmp(o, "--threads") == 0) /* 0: the default, said so in --help */
            ok = parse_range(o, v, 0, 256, &u), a->threads = (int)u;
        else if (strcmp(o, "--batch") == 0)
            ok = parse_range(o, v, 1, FTI_TRAIN_MAX_BATCH, &u), a->batch = (size_t)u;
        else if (strcmp(o, "--ctx") == 0) /* at most the model's context (the trainer checks) */
            ok = parse_range(o, v, 1, 65535, &u), a->ctx = (size_t)u;
        else if (strcmp(o, "--accum") == 0)
            ok = parse_range(o, v, 1, FTI_TRAIN_MAX_ACCUM, &u), a->accum = (size_t)u;
        else if (strcmp(o, "--lora") == 0)
            ok = parse_range(o, v, 1, 4095, &u), a->lora = (uint32_t)u;
        else if (strcmp(o, "--lr") == 0) ok = parse_real(v, 0, 10, &d) && d > 0, a->lr = (float)d;
        else if (strcmp(o, "--weight-decay") == 0) /* 0: none (the library's 0 is 0.1) */
            ok = parse_real(v, 0, 100, &d), a->wd = d > 0 ? (float)d : -1.0f;
        else if (strcmp(o, "--clip") == 0)
            ok = parse_real(v, 0, 1e6, &d) && d > 0, a->clip = (float)d;
        else if (strcmp(o, "--dropout") == 0)
            ok = parse_real(v, 0, 0.9, &d), a->dropout = (float)d;
        else if (strcmp(o, "--lora-alpha") == 0)
            ok = parse_real(v, 0, 1e6, &d) && d > 0, a->lora_alpha = (float)d;
        else if (strcmp(o, "--max-seconds") == 0)
            ok = parse_real(v, 0, 1e9, &d) && d > 0, a->max_seconds = d;
        if (ok < 0) return 0; /* parse_range said why */
        if (!ok) {
            fprintf(stderr, "fti-train: bad value for %s: %s\n", o, v);
            return 0;
        }
        i += takes;
    }
    if (a->resume && a->restart) {
        fprintf(stderr, "fti-train: --resume continues a run, --restart starts it over: not "
                "both\n");
        return 0;
    }
    if (a->lora && !a->from) {
        fprintf(stderr, "fti-train: --lora needs --from MODEL (the frozen base)\n");
        return 0;
    }
    if (a->steps && a->warmup >= a->steps) { /* the rate would never reach --lr */
        fprintf(stderr, "fti-train: --warmup %llu is not less than --steps %llu\n",
                (unsigned long long)a->warmup, (unsigned long long)a->steps);
        return 0;
    }
    if (a->name) { /* one line of text: it is general.name, the card's and the registry's name */
        size_t n = strlen(a->name), k;
        int bad = n == 0 || n > 200 ||
                  fti_utf8_valid_prefix((const unsigned char *)a->name, n) != n;
        for (k = 0; k < n && !bad; k++)
            bad = (unsigned char)a->name[k] < 0x20 || a->name[k] == 0x7f;
        if (bad) {
            fprintf(stderr, "fti-train: --name wants 1-200 bytes of text on one line (UTF-8, "
                    "no control characters)\n");
            return 0;
        }
    }
    if (a->lora && a->keep_best) { /* (fti_train_run's FTI_ERR_UNSUPPORTED says why) */
        fprintf(stderr, "fti-train: --keep-best does not work with --lora (the registered "
                "adapter would not be the merged model's)\n");
        return 0;
    }
    if (a->lora_alpha > 0 && !a->lora) { /* it would change nothing but the run's key */
        fprintf(stderr, "fti-train: --lora-alpha needs --lora R\n");
        return 0;
    }
    if (a->from && (a->preset_given || a->dim || a->layers || a->heads || a->kv_heads ||
                    a->hidden || a->context || a->untied)) {
        fprintf(stderr, "fti-train: --from %s keeps that model's configuration: --preset, --dim, "
                "--layers, --heads, --kv-heads, --hidden, --context and --untied are for "
                "training from scratch\n", a->from);
        return 0;
    }
    return 1;
}

/* Built with -DFTI_MPI (mk/mpi.mk: build/fti-train-mpi), the program trains data-parallel under
 * mpirun (docs/training-mpi.md): every rank trains; rank 0 alone writes the run directory, the
 * model and the card (fti_train_run skips them on other ranks) and prints. */
#ifdef FTI_MPI
static fti_train_mpi g_mpi;
#define IS_RANK0 (g_mpi.rank == 0)
#define main train_main
#else
#define IS_RANK0 1
#endif

/* SIGINT / SIGTERM: the signal, for fti_train_run's stop request between steps (the library
 * installs no handlers). The default action comes back at once: a second Ctrl-C kills. */
static volatile sig_atomic_t g_signal;

static void on_signal(int sig) {
    int e = errno; /* signal() may set it under the interrupted code */
    g_signal = sig;
    signal(sig, SIG_DFL);
    errno = e;
}

static int should_stop(void *user) {
    (void)user;
#ifdef FTI_MPI
    { /* every rank stops at the same step (a signal reaches the ranks at different steps) */
        int mine = g_signal != 0, any = 0;
        MPI_Allreduce(&mine, &any, 1, MPI_INT, MPI_MAX, g_mpi.comm);
        return any;
    }
#else
    return g_signal != 0;
#endif
}

static void on_log(void *user, fti_log_level level, const char *msg) {
    const args *a = (const args *)user;
    if (level >= FTI_LOG_WARN || (level == FTI_LOG_INFO && !a->quiet))
        fprintf(stderr, "fti-train: %s\n", msg);
}

typedef struct ui {
    const args *a;
    fti_progress bar;
    int active;
    int complete; /* resumed a run that had already reached its end: nothing to train */
} ui;

static void on_progress(void *user, fti_train_event ev, const fti_train_run_result *run,
                        const fti_train_stats *st) {
    ui *u = (ui *)user;
    char extra[96];
#ifdef FTI_MPI
    if (ev == FTI_TRAIN_EVENT_START) { /* all ranks start at one step (the checkpoint is shared) */
        unsigned long long s0 = st->step, lo = 0, hi = 0;
        MPI_Allreduce(&s0, &lo, 1, MPI_UNSIGNED_LONG_LONG, MPI_MIN, g_mpi.comm);
        MPI_Allreduce(&s0, &hi, 1, MPI_UNSIGNED_LONG_LONG, MPI_MAX, g_mpi.comm);
        if (lo != hi) {
            fprintf(stderr, "fti-train: rank %d starts at step %llu, another at %llu: the run "
                    "directory must be on a filesystem every rank sees\n", g_mpi.rank, s0,
                    s0 == lo ? hi : lo);
            MPI_Abort(g_mpi.comm, 1);
        }
    }
#endif
    if (u->a->quiet) return;
    if (ev == FTI_TRAIN_EVENT_START) {
        fprintf(stderr, "fti-train: %s model, %lu parameters%s, dataset %.16s (%lu train / %lu "
                "val tokens), run %s%s\n", u->a->from ? "fine-tuning" : u->a->preset,
                (unsigned long)run->n_params, u->a->lora ? " (LoRA adapters only)" : "",
                run->dataset, (unsigned long)run->train_tokens, (unsigned long)run->val_tokens,
                run->run_key, run->resumed ? " (resumed)" : "");
        u->complete = run->resumed &&
                      (st->step >= st->total_steps ||
                       (u->a->max_tokens && st->tokens_seen >= u->a->max_tokens) ||
                       (u->a->max_seconds > 0 && st->elapsed_s >= u->a->max_seconds));
        if (u->complete) {
            fprintf(stderr, "fti-train: the run was already complete (step %llu of %llu): "
                    "nothing to train; its model is written and registered (the same id)\n",
                    (unsigned long long)st->step, (unsigned long long)st->total_steps);
            return;
        }
        fti_progress_begin(&u->bar, stderr, "train", "step", st->total_steps);
        fti_progress_update(&u->bar, st->step, NULL);
        u->active = 1;
    } else if (ev == FTI_TRAIN_EVENT_STEP) {
        if (st->evaluated)
            snprintf(extra, sizeof extra, "loss %.4f val %.4f %.0f tok/s", st->loss,
                     st->val_loss, st->tokens_per_s);
        else
            snprintf(extra, sizeof extra, "loss %.4f %.0f tok/s", st->loss, st->tokens_per_s);
        fti_progress_update(&u->bar, st->step, extra);
    } else if (u->active) {
        fti_progress_end(&u->bar, NULL);
        u->active = 0;
    }
}

int main(int argc, char **argv) {
    args a;
    char *home = NULL, *runs = NULL, *run_dir = NULL;
    fti_train_run_opts ro;
    fti_train_run_result res;
    fti_error err;
    fti_result r;
    ui u;
    int rc = 1;

    if (!parse_args(argc, argv, &a)) return 2;
    if (!IS_RANK0) a.quiet = 1;
    home = fti_workspace_resolve(a.home);
    if (!home) return 1;
    memset(&ro, 0, sizeof(ro));
    memset(&u, 0, sizeof(u));
    u.a = &a;
    ro.dataset = a.dataset;
    ro.preset = a.preset;
    ro.config.dim = (uint32_t)a.dim;
    ro.config.n_layers = (uint32_t)a.layers;
    ro.config.n_heads = (uint32_t)a.heads;
    ro.config.n_kv_heads = (uint32_t)a.kv_heads;
    ro.config.hidden_dim = (uint32_t)a.hidden;
    ro.config.context_len = (uint32_t)a.context;
    ro.untied = a.untied;
    ro.from = a.from;
    ro.name = a.name;
    ro.resume = a.resume;
    ro.resume_required = a.resume; /* --resume never starts a fresh run by surprise */
    ro.no_overwrite = !a.restart;  /* nor does the same command without it restart a run */
    ro.keep_best = a.keep_best;
    ro.train.batch = a.batch;
    ro.train.ctx = a.ctx;
    ro.train.grad_accum = a.accum;
    ro.train.lr = a.lr;
    ro.train.max_steps = a.steps;
    ro.train.max_tokens = a.max_tokens;
    ro.train.max_seconds = a.max_seconds;
    ro.train.warmup_steps = a.warmup;
    ro.train.grad_clip = a.clip;
    ro.train.adamw.weight_decay = a.wd;
    ro.train.eval_every = a.eval_every;
    ro.train.seed = a.seed;
    ro.train.n_threads = a.threads;
    ro.train.bf16 = a.bf16;
    ro.train.dropout = a.dropout;
    ro.train.checkpoint_every = a.ckpt_every;
    ro.train.lora_rank = a.lora;
    ro.train.lora_alpha = a.lora_alpha;
    ro.train.log = on_log;
    ro.train.log_user = &a;
    ro.progress = on_progress;
#ifdef FTI_MPI
    fti_train_mpi_attach(&g_mpi, &ro.train); /* threads: the node's CPUs shared by its ranks */
    if (!a.threads) ro.train.n_threads = fti_cpu_count() / g_mpi.local_size > 1 ?
                                         fti_cpu_count() / g_mpi.local_size : 1;
#endif
    ro.progress_user = &u;
    ro.stop = should_stop;
    /* (a signal ignored by whoever started us stays ignored: `fti-train ... &` in a script) */
    if (signal(SIGINT, on_signal) == SIG_IGN) signal(SIGINT, SIG_IGN);
    if (signal(SIGTERM, on_signal) == SIG_IGN) signal(SIGTERM, SIG_IGN);
    r = fti_train_run(home, &ro, &res, &err);
    if (r != FTI_OK) {
        on_progress(&u, FTI_TRAIN_EVENT_END, &res, &res.stats);
        runs = fti_path_join(home, "runs");
        run_dir = runs && res.run_key[0] ? fti_path_join(runs, res.run_key) : NULL;
    }
    if (r == FTI_ERR_CANCELLED) {
        rc = g_signal == SIGTERM ? 143 : 130;
        if (IS_RANK0)
            fprintf(stderr, "fti-train: interrupted at step %llu of %llu: checkpoint saved in "
                    "%s; run the same command with --resume to continue\n",
                    (unsigned long long)res.stats.step, (unsigned long long)res.stats.total_steps,
                    run_dir ? run_dir : res.run_key);
        goto done;
    }
    if (r == FTI_ERR_EXISTS) {
        if (!IS_RANK0) goto done;
        if (res.id[0])
            fprintf(stderr, "fti-train: run %s is finished: its model %s is registered (%s); "
                    "--restart trains it again\n", res.run_key, res.id,
                    run_dir ? run_dir : res.run_key);
        else if (res.stats.total_steps)
            fprintf(stderr, "fti-train: run %s has a checkpoint at step %llu of %llu (%s): "
                    "--resume continues it, --restart starts it over\n", res.run_key,
                    (unsigned long long)res.stats.step,
                    (unsigned long long)res.stats.total_steps, run_dir ? run_dir : res.run_key);
        else
            fprintf(stderr, "fti-train: %s (--restart starts it over)\n", err.msg);
        goto done;
    }
    if (r != FTI_OK) {
        if (!res.dataset[0])
            fprintf(stderr, "fti-train: dataset %s in %s: %s\n",
                    a.dataset ? a.dataset : "latest", home, err.msg);
        else
            fprintf(stderr, "fti-train: %s\n", err.msg);
        goto done;
    }
    if (!IS_RANK0) { /* rank 0 prints */
        rc = 0;
        goto done;
    }
    runs = fti_path_join(home, "runs");
    run_dir = runs ? fti_path_join(runs, res.run_key) : NULL;
    if (res.stats.val_loss == res.stats.val_loss)
        printf("steps %llu  tokens %llu  train loss %.4f  val loss %.4f (best %.4f)  %.1f s\n",
               (unsigned long long)res.stats.step, (unsigned long long)res.stats.tokens_seen,
               res.stats.loss, res.stats.val_loss, res.stats.best_val_loss, res.stats.elapsed_s);
    else /* NaN: never evaluated */
        printf("steps %llu  tokens %llu  train loss %.4f  val loss - (the dataset's val split is "
               "empty or shorter than one window)  %.1f s\n",
               (unsigned long long)res.stats.step, (unsigned long long)res.stats.tokens_seen,
               res.stats.loss, res.stats.elapsed_s);
    if (res.used_best)
        printf("weights of the best validation pass (%.4f), step %llu\n",
               res.stats.best_val_loss, (unsigned long long)res.best_step);
    printf("run %s\n", run_dir ? run_dir : res.run_key);
    if (res.adapter_id[0]) printf("adapter %s\n", res.adapter_id);
    printf("model %s\n", res.id);
    rc = 0;
done:
    fti_free(home);
    fti_free(runs);
    fti_free(run_dir);
    return rc;
}

#ifdef FTI_MPI
#undef main
int main(int argc, char **argv) {
    fti_error err;
    int rc;
    MPI_Init(&argc, &argv);
    if (fti_train_mpi_init(&g_mpi, MPI_COMM_WORLD, &err) != FTI_OK) {
        fprintf(stderr, "fti-train: %s\n", err.msg);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    rc = train_main(argc, argv);
    /* a stop (Ctrl-C, SIGTERM) is every rank's at the same step, and rank 0 then writes the
     * checkpoint: the others wait for it here, not abort the job under it */
    if ((rc == 130 || rc == 143) && g_mpi.world > 1) MPI_Barrier(MPI_COMM_WORLD);
    else if (rc != 0 && g_mpi.world > 1) MPI_Abort(MPI_COMM_WORLD, rc); /* no rank left waiting */
    if (IS_RANK0 && g_mpi.world > 1)
        fprintf(stderr, "fti-train: %d ranks, %.3f s in the gradient reduction (%.1f MB sent by "
                "rank 0)\n", g_mpi.world, g_mpi.comm_s, (double)g_mpi.bytes_sent / 1e6);
    fti_train_mpi_free(&g_mpi);
    MPI_Finalize();
    return rc;
}
#endif
