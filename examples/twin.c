/* twin.c: keep the twin up to date without a person in the loop (build/fti-twin).
 *
 *   build/fti-twin [--home DIR] update PATH... [--minutes M] [--preset NAME] [--threads N]
 *                  [--steps N] [--vocab N] [--bf16 | --no-bf16] [--retokenize]
 *                  [--authors LIST] [--wait]
 *   build/fti-twin [--home DIR] status
 *   build/fti-twin [--home DIR] write WORD... [--drafts N] [-n N] [--temp T] [--top-k K]
 *                  [--top-p P] [--min-p P] [--repeat-penalty R] [--seed S] [--rag-k K]
 *                  [--drafts-shown] [--any-words] [--no-memory] [--memory-weight W]
 *                  [--max-copy N] [--topic T] [--topic-k K] [--theme-pick W] [--no-word-mask]
 *                  [--all-sentences] [--any-pairs] [--piece-pick W]
 *
 * `update` runs F -> T -> evaluation -> promotion:
 *   1. ingests PATH... into the feature store (fti_store_ingest; incremental: unchanged files are
 *      reused); if the dataset version is the one the production model was trained on, it says
 *      so and stops;
 *   2. trains a candidate with the library's training driver (fti_train_run): fine-tunes the
 *      production model on the new version when the tokenizer is the same (at most 3 passes,
 *      stopping early when validation stops improving), else trains from scratch with the
 *      twin's recipe for the preset; --authors not given is the production dataset's;
 *   3. evaluates the candidate and the current production model on the same, new validation split;
 *   4. promotes the candidate to `production` only if its validation loss is lower
 *      (champion/challenger), and appends the decision with both figures to
 *      HOME/registry/decisions.jsonl (written ahead to HOME/registry/decisions.pending before
 *      the move: a kill between the two is healed by the next update or `status`). A running
 *      fti-serve follows the alias by itself.
 * A lock (HOME/twin.lock) keeps two runs apart, so it is safe from cron: a second update exits
 * with status 3 and a message naming the running one, or waits for it with --wait (then it
 * usually finds nothing changed). Running it again on the same inputs changes nothing.
 * Without --steps the number of steps is calibrated so training fills the --minutes budget.
 * `write` has the production model write a dictionary entry for each WORD in the author's form
 * ("WORD, n." unless WORD already has its ", v." or such), with the author's entries that BM25
 * finds for WORD in front of the prompt: it draws --drafts drafts (different seeds), sets aside
 * those with a word found nowhere in the author's writing, and prints the one the model itself
 * scores best as a whole entry (lowest loss per token, the end of the entry included). The
 * model writes with its author memory (an n-gram model of the training split mixed into its
 * next-token distribution, weights fitted on the validation split; docs/twin.md), and drafts
 * quoting more than --max-copy (8) words in a row from the author are set aside. The pick is
 * made among the drafts with the fewest pairs of adjacent words that stand next to each other
 * nowhere in his text (--any-pairs: among all), and adds --piece-pick (0.2) to a draft's loss
 * per token for each run of his text it is made of (fewer, longer runs of his read better).
 * Everything runs in this process, through fti.h only (no other program is started).
 * Exit status: 0 done (promoted or not), 1 failure, 2 usage, 3 busy.
 */
#define FTI_IMPLEMENTATION
#include "fti.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
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
/* A fine-tune starts from a model that has had its passes over most of the data already: more
 * than a few more overfit it (an archive of 54 k tokens fine-tuned for 3 minutes, 57 passes, was
 * best at its first validation pass and 28% worse at the end), so it stops after 3 passes, or
 * earlier when TWIN_FT_PATIENCE validation passes in a row bring no new best. */
#define TWIN_FT_MAX_EPOCHS 3
#define TWIN_FT_EPOCHS_STR "3 passes over the data"
#define TWIN_FT_PATIENCE 5

/* bf16 matmuls when the CPU does them natively (AVX-512 BF16): about 1.4x the steps */
/* SIGINT / SIGTERM during an update (cron's timeout, systemd's stop, Ctrl-C): the ingest under
 * way finishes (a dataset version is written whole or not at all), training stops after its
 * step, and the update ends before evaluating and promoting, saying where it stopped; exit 130
 * / 143. The default action comes back at once: a second signal kills. */
static volatile sig_atomic_t g_signal;

static void on_signal(int sig) {
    int e = errno;
    g_signal = sig;
    signal(sig, SIG_DFL);
    errno = e;
}

static int should_stop(void *user) {
    (void)user;
    return g_signal != 0;
}

/* Says where an interrupted update stopped; returns its exit status. */
static int interrupted(const char *where) {
    fprintf(stderr, "fti-twin: interrupted (%s) %s; nothing promoted; the next update starts "
            "from what is stored\n", g_signal == SIGTERM ? "SIGTERM" : "SIGINT", where);
    return g_signal == SIGTERM ? 143 : 130;
}

static int have_bf16(void) {
    const fti_kernels *k = fti_kernels_get(FTI_ISA_AUTO);
    return fti_kernels_isa(k) == FTI_ISA_AVX512 && fti_matmul_has_bf16(k);
}

/* The twin's sampler for `write` (docs/twin.md, "The twin writes"). */
#define TWIN_WRITE_DRAFTS 48
#define TWIN_WRITE_MAX_DRAFTS 256
#define TWIN_WRITE_TOKENS 64
#define TWIN_WRITE_RAG 2
#define TWIN_WRITE_TEMP 0.6f
#define TWIN_WRITE_TOP_K 40
#define TWIN_WRITE_TOP_P 0.95f
#define TWIN_WRITE_MIN_P 0.05f
#define TWIN_WRITE_REPEAT 1.1f
#define TWIN_WRITE_PIECE_PICK 0.2 /* nats per token added per run of his text in a draft */
#define TWIN_WRITE_MIN_WORDS 4 /* words of a draft, the headword's "WORD, n." not counted */
/* Writing leans on the author memory more than the weights fitted for likelihood do (0.26 to
 * 0.47 by matched context on the Bierce split): his phrases read better than the small model's
 * loose ones, and the copy rule keeps them from becoming quotations (docs/twin.md, "Session 7") */
#define TWIN_WRITE_MEMORY_WEIGHT 0.8f
/* The theme: the logits of the words of the author's own entries on the headword (BM25, 8
 * chunks) are raised by this times the log of how much more those entries use them */
#define TWIN_WRITE_TOPIC 1.0
#define TWIN_WRITE_TOPIC_K 8
/* The author memory (docs/twin.md, "The author memory"): a Kneser-Ney n-gram model of the
 * training split mixed into the model's next-token distribution with weights fitted on the
 * validation split; on the Bierce corpus order 4 is best (held-out bits per byte: model alone
 * 2.449, with orders 2/3/4/5/6 2.392/2.282/2.277/2.278/2.278). */
#define TWIN_NGRAM_ORDER 4
/* A draft that shares more than this many consecutive words with the author's text is a
 * quotation, not new writing: set aside */
#define TWIN_WRITE_MAX_COPY 8
/* A draft sharing this many consecutive words with a definition printed earlier in the run
 * ("An instrument of torture" for two words) is not new either: set aside */
#define TWIN_WRITE_MAX_REUSE 3
/* longest shared span measured (words) */
#define TWIN_SPAN_CAP 64

static void usage(FILE *f) {
    fprintf(f,
            "usage: fti-twin [--home DIR] update PATH... [--minutes M] [--preset NAME]\n"
            "                [--threads N] [--steps N] [--vocab N] [--bf16 | --no-bf16]\n"
            "                [--retokenize] [--authors LIST] [--wait] [--gc]\n"
            "       fti-twin [--home DIR] status\n"
            "       fti-twin [--home DIR] gc [--keep-models N] [--keep-versions N]\n"
            "                [--keep-history N] [--dry-run] [--wait]\n"
            "       fti-twin [--home DIR] write WORD... [--drafts N] [-n N] [--temp T] [--seed S]\n"
            "                [--top-k K] [--top-p P] [--min-p P] [--repeat-penalty R] [--rag-k K]\n"
            "                [--drafts-shown] [--any-words] [--no-memory] [--memory-weight W]\n"
            "                [--max-copy N] [--topic T] [--topic-k K] [--theme-pick W]\n"
            "                [--no-word-mask] [--all-sentences] [--any-pairs] [--piece-pick W]\n"
            "\n"
            "update  ingest PATH... (incremental), then if the data changed: fine-tune the\n"
            "        production model (or train from scratch when the tokenizer changed or\n"
            "        there is none), evaluate candidate and production on the new validation\n"
            "        split, and promote the candidate only if it is better. Safe from cron.\n"
            "status  the production model, its dataset, the last decisions, and the\n"
            "        workspace's size with what gc would free; logs a decision an update\n"
            "        killed at its promotion left pending (registry/decisions.pending).\n"
            "gc      free the disk old models, runs and dataset versions hold: kept are the\n"
            "        models aliases point at and their last --keep-history (2) earlier\n"
            "        targets, the newest --keep-models (3) models, the newest\n"
            "        --keep-versions (3) dataset versions, latest, tags and every kept\n"
            "        model's dataset; removed models keep their cards (lineage), finished\n"
            "        runs keep their metrics and loss curve; --dry-run only reports;\n"
            "        --keep-history 0: no rollback target, --keep-models 0: only aliased ones\n"
            );
    fprintf(f,
            "write   the production model writes an entry \"WORD, n.\" for each WORD, with the\n"
            "        author's entries BM25 finds for WORD in front of it: of --drafts drafts\n"
            "        (default %d; temperature %.1f, top-k %d, top-p %.2f, min-p %.2f, repetition\n"
            "        penalty %.1f, at most -n %d tokens, ending at the end of the first\n"
            "        sentence, the entry or a blank line; --all-sentences: not the sentence),\n"
            "        drawn only in words the author used (tokens that would spell another word\n"
            "        are not drawn; --no-word-mask draws them), and the one the twin scores\n"
            "        best as a whole entry (lowest loss per token) is printed; drafts with a\n"
            "        word found nowhere in his writing or under 4 words are set aside\n"
            "        (--any-words keeps them); --drafts-shown lists all; --rag-k K retrieved\n"
            "        entries in the prompt (default %d, 0 = none); --seed S (default 1);\n"
            "        the model writes with its author memory (a 4-gram model of the training\n"
            "        split, kept in HOME/memory/) mixed in at weight 0.8 (--memory-weight W;\n"
            "        -1 = the weights fitted on the validation split; --no-memory: none), and\n"
            "        with the word's theme: the words of the author's --topic-k (8) entries\n"
            "        BM25 finds for it are raised by --topic T (1.0, 0 = off) times the log\n"
            "        of how much more those entries use them, and the pick favours drafts the\n"
            "        theme explains (--theme-pick W, 1.0: the loss less W times how much\n"
            "        higher it is without the theme); drafts quoting more than\n"
            "        --max-copy N (8) words in a row from the author, repeating an earlier\n"
            "        word's definition or 3 words in a row of it, are set aside; of the rest\n"
            "        the pick takes those with the fewest pairs of adjacent words the\n"
            "        author never wrote next to each other (--any-pairs: all of them)\n"
            "        and adds --piece-pick W (0.2) to a draft's loss per token for each\n"
            "        run of his text its words are made of (0 = off)\n"
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
            "  --authors LIST  keep only these authors' writing: every name, handle and address\n"
            "                  you write under, comma-separated (others' mail and posts are left\n"
            "                  out; not given: the production model's dataset's --authors, or\n"
            "                  for a first update, exports that name their owner, and mail next\n"
            "                  to its sent mail, keep the owner's; \"*\": everyone's)\n"
            "  --wait          if another update is running in the workspace, wait for it to\n"
            "                  finish instead of exiting with status 3\n"
            "  --gc            after the update, gc with the defaults (for cron)\n"
            "\n"
            "exit status: 0 done (promoted or not), 1 failure (also: the decision could not\n"
            "be logged), 2 usage, 3 another update is running (without --wait), 130 / 143\n"
            "interrupted by SIGINT / SIGTERM (the ingest under way finishes, training stops\n"
            "after its step, nothing is promoted; the next update starts from what is stored)\n",
            TWIN_WRITE_DRAFTS, (double)TWIN_WRITE_TEMP,
            TWIN_WRITE_TOP_K, (double)TWIN_WRITE_TOP_P, (double)TWIN_WRITE_MIN_P,
            (double)TWIN_WRITE_REPEAT, TWIN_WRITE_TOKENS, TWIN_WRITE_RAG, TWIN_VOCAB);
}

/* gc (the update lock held): what went, then one line of totals. */
static int run_gc(const char *home, const fti_workspace_gc_opts *go) {
    fti_workspace_gc_result res;
    fti_buf report;
    fti_error err;
    int rc = 0;
    char dead[48] = "";
    memset(&report, 0, sizeof report);
    printf("== gc%s: keeping the aliased models, the newest %lu models and %lu dataset "
           "versions, latest, tags and every kept model's dataset\n",
           go->dry_run ? " (dry run: nothing is removed)" : "",
           (unsigned long)(go->keep_models == FTI_GC_KEEP_NONE ? 0
                           : go->keep_models             ? go->keep_models
                                                         : 3),
           (unsigned long)(go->keep_versions ? go->keep_versions : 3));
    fflush(stdout);
    if (fti_workspace_gc(home, go, &res, &report, &err) != FTI_OK) {
        fprintf(stderr, "fti-twin: gc: %s\n", err.msg);
        rc = 1;
    }
    if (report.len) {
        const char *p = report.data, *e;
        while ((e = strchr(p, '\n')) != NULL) {
            printf("   %.*s\n", (int)(e - p), p);
            p = e + 1;
        }
    }
    if (rc == 0 && res.runs_dead) /* killed before their first checkpoint: best.bin went */
        snprintf(dead, sizeof dead, ", %lu killed run(s)", (unsigned long)res.runs_dead);
    if (rc == 0)
        printf("   %s %.1f MB: %lu model(s) (%lu kept), %lu finished run(s)%s, %lu dataset "
               "version(s) (%lu kept), %lu object(s), %lu temp file(s)%s%s\n",
               go->dry_run ? "would free" : "freed", (double)res.bytes_freed / 1e6,
               (unsigned long)res.models_removed, (unsigned long)res.models_kept,
               (unsigned long)res.runs_cleaned, dead, (unsigned long)res.store.versions_removed,
               (unsigned long)res.store.versions_kept, (unsigned long)res.store.objects_removed,
               (unsigned long)(res.store.temp_removed + res.temp_removed),
               res.memories_removed ? ", the author memories of removed models" : "",
               res.runs_unfinished ? "; unfinished runs left alone" : "");
    fti_buf_free(&report);
    return rc;
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

/* The validation documents of ds, each rendered through the template and encoded with tok, as
 * the val shard holds them with the dataset's own tokenizer; *bytes gets their text's bytes
 * (titles and bodies). NULL when there are none. */
static int32_t *val_ids_own(const fti_dataset *ds, const fti_tokenizer *tok, size_t *n,
                            uint64_t *bytes, fti_error *err) {
    void *data = NULL;
    size_t len = 0, pos = 0, i;
    fti_tokens t;
    int32_t *ids = NULL;
    int bad = 0;
    memset(&t, 0, sizeof t);
    *n = 0;
    *bytes = 0;
    if (!fti_dataset_docs_path(ds) ||
        fti_file_read(fti_dataset_docs_path(ds), 0, &data, &len, err) != FTI_OK)
        return NULL;
    while (pos < len) {
        const char *line = (const char *)data + pos;
        const char *nl = (const char *)memchr(line, '\n', len - pos);
        size_t ll = nl ? (size_t)(nl - line) : len - pos;
        fti_json_doc *doc = NULL;
        pos += ll + 1;
        if (fti_json_parse(line, ll, NULL, &doc, NULL, NULL) == FTI_OK) {
            const fti_json *r = fti_json_root(doc);
            const fti_json *title = fti_json_get(r, "title"), *text = fti_json_get(r, "text");
            if (!strcmp(fti_json_get_str(r, "split", ""), "val") && text &&
                text->type == FTI_JSON_STRING) {
                int has_title = title && title->type == FTI_JSON_STRING;
                if (fti_template_encode(tok, has_title ? title->str : "",
                                        has_title ? title->len : 0, text->str, text->len, 0,
                                        &t) != FTI_OK)
                    bad = 1, pos = len; /* a tokenizer without the template's tokens */
                *bytes += (has_title ? title->len : 0) + text->len;
            }
        }
        fti_json_free(doc);
    }
    fti_free(data);
    if (!bad && t.len >= 2 && (ids = (int32_t *)fti_malloc(t.len * sizeof *ids)) != NULL) {
        for (i = 0; i < t.len; i++) ids[i] = (int32_t)t.ids[i];
        *n = t.len;
    }
    if (!ids)
        fti_error_set(err, FTI_ERR_NOT_FOUND, bad ? "the model's tokenizer has no template tokens"
                                                  : "no validation documents to score");
    fti_tokens_free(&t);
    return ids;
}

/* Mean cross-entropy (nats per token) of a model file on the validation shard of ds; with
 * own_tok (a model of another tokenizer than the dataset's, whose ids it would read as other
 * tokens), on the same documents encoded with the model's own tokenizer. *n_scored gets the
 * tokens scored (the loss times it: nats over the split's text, comparable across tokenizers),
 * *bytes (own_tok only) the bytes of that text. */
static int val_loss(const char *model_path, const fti_dataset *ds, fti_pool *pool, int own_tok,
                    double *loss, size_t *n_scored, uint64_t *bytes, fti_error *err) {
    const fti_token_shard *sh = fti_dataset_shard(ds, FTI_SPLIT_VAL);
    fti_engine *e = NULL;
    fti_session *s = NULL;
    fti_tokenizer *tok = NULL;
    fti_session_opts so;
    int32_t *ids = NULL;
    size_t n = 0;
    uint64_t i;
    int ok = 0;
    *n_scored = 0;
    if (!own_tok && (!sh || sh->count < 2)) {
        fti_error_set(err, FTI_ERR_NOT_FOUND, "the dataset has no validation tokens");
        return 0;
    }
    memset(&so, 0, sizeof so);
    so.pool = pool;
    if (fti_engine_open(&e, model_path, NULL, err) != FTI_OK) return 0;
    if (own_tok) {
        if (fti_engine_tokenizer(e, &tok, err) == FTI_OK)
            ids = val_ids_own(ds, tok, &n, bytes, err);
    } else if ((ids = (int32_t *)fti_malloc((size_t)sh->count * sizeof *ids)) != NULL) {
        n = (size_t)sh->count;
        for (i = 0; i < sh->count; i++) ids[i] = (int32_t)fti_shard_at(sh, i);
    }
    if (ids && fti_session_create(&s, e, &so, err) == FTI_OK &&
        fti_session_nll(s, ids, n, loss, err) == FTI_OK) {
        *n_scored = n - 1;
        ok = 1;
    }
    fti_session_free(s);
    fti_tokenizer_free(tok);
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

/* 1 when home holds a workspace (its store or its registry), as fti-twin status, write and gc
 * need: they do not make one where a mistyped --home points. */
static int twin_home_exists(const char *home) {
    char *a = fti_path_join(home, "store"), *b = fti_path_join(home, "models");
    int ok = (a && fti_path_exists(a)) || (b && fti_path_exists(b));
    fti_free(a);
    fti_free(b);
    return ok;
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

/* An empty fti_buf (as {0}, which C++ warns about with -Wextra). */
static fti_buf twin_buf0(void) {
    fti_buf b;
    memset(&b, 0, sizeof b);
    return b;
}

/* The card of a registered model (parsed), or NULL. */
static fti_json_doc *load_card(const char *home, const char *ref, char id[17]) {
    fti_buf b = twin_buf0();
    fti_json_doc *doc = NULL;
    if (fti_registry_resolve(home, ref, id, NULL) == FTI_OK &&
        fti_registry_card(home, id, &b, NULL) == FTI_OK)
        fti_json_parse(b.data, b.len, NULL, &doc, NULL, NULL);
    fti_buf_free(&b);
    return doc;
}

/* 1 when the line [p, e) holds needle. */
static int line_has(const char *p, const char *e, const char *needle) {
    size_t n = strlen(needle);
    for (; p + n <= e; p++)
        if (memcmp(p, needle, n) == 0) return 1;
    return 0;
}

/* Appends one decision line to HOME/registry/decisions.jsonl (append + fsync), in one write. A
 * last line without its newline (a writer killed between its two writes before 2026-11-29, a
 * full disk, a backup copied while it was written) is ended first, so the new line does not run
 * into it. 0 when the line is logged; else says why on stderr and returns -1 (the update then
 * exits 1: cron's wrapper must hear of a decision that left no trace). */
static int log_decision(const char *home, const char *json, size_t n) {
    char *dir = fti_path_join(home, "registry"),
         *path = dir ? fti_path_join(dir, "decisions.jsonl") : NULL, *buf = NULL, last = '\n';
    int fd = -1, ok = 0;
    size_t k = 0;
    off_t end;
    fti_error err;
    memset(&err, 0, sizeof err);
    if (!path || fti_mkdirs(dir, &err) != FTI_OK) goto done;
    if ((fd = open(path, O_RDWR | O_CREAT | O_APPEND, 0644)) < 0) {
        snprintf(err.msg, sizeof err.msg, "%s: %s", path, strerror(errno));
        goto done;
    }
    if ((end = lseek(fd, 0, SEEK_END)) > 0 && pread(fd, &last, 1, end - 1) != 1) last = '\n';
    if (!(buf = (char *)fti_malloc(n + 2))) goto done;
    if (last != '\n') buf[k++] = '\n';
    memcpy(buf + k, json, n);
    k += n;
    buf[k++] = '\n';
    if (write(fd, buf, k) != (ssize_t)k || fsync(fd) != 0) {
        snprintf(err.msg, sizeof err.msg, "%s: %s", path, strerror(errno));
        goto done;
    }
    ok = 1;
done:
    if (!ok)
        fprintf(stderr, "fti-twin: could not log the decision (%s): %.*s\n",
                err.msg[0] ? err.msg : "out of memory", (int)n, json);
    if (fd >= 0) close(fd);
    fti_free(buf);
    fti_free(path);
    fti_free(dir);
    return ok ? 0 : -1;
}

/* --- the decision's write-ahead record --------------------------------------------------------
 * A promotion moves `production` and then logs its decision: a process killed between the two
 * (SIGKILL, a power cut) left production moved with no decision logged. So an update about to
 * promote writes its decision line first, as it will be logged if the move succeeds
 * ("promoted":true last), to HOME/registry/decisions.pending (atomically: temp file, fsync,
 * rename), then moves the alias, logs the outcome and removes the file. The next update (under
 * its lock) or `status` (when no update holds the lock) finds a file left behind and logs its
 * decision as the alias shows it: "promoted":true when production points at the candidate,
 * else false (killed before the move; "production_changed":true when production points at
 * neither the candidate nor the model compared against), with "healed": the time it was logged.
 * A pending line whose outcome is in the log already (killed after logging it) is only removed.
 * FTI_TWIN_TEST_KILL=before-promote|after-promote makes an update SIGKILL itself at that point
 * (the tests' crash). */

/* The pending decision's path (fti_free), or NULL. */
static char *pending_path(const char *home) {
    return fti_path_join(home, "registry/decisions.pending");
}

/* The test hook: SIGKILL here when FTI_TWIN_TEST_KILL names `where`. */
static void test_kill(const char *where) {
    const char *e = getenv("FTI_TWIN_TEST_KILL");
    if (e && !strcmp(e, where)) {
        fflush(stdout);
        kill(getpid(), SIGKILL);
    }
}

/* 1 when text[0, n) has a line that starts with the NUL-terminated prefix. */
static int has_line_prefix(const char *text, size_t n, const char *prefix) {
    size_t k = strlen(prefix), i = 0;
    while (i < n) {
        const char *nl = (const char *)memchr(text + i, '\n', n - i);
        size_t end = nl ? (size_t)(nl - text) : n;
        if (end - i >= k && memcmp(text + i, prefix, k) == 0) return 1;
        i = end + 1;
    }
    return 0;
}

/* Logs the decision an interrupted update left pending (see above) and removes its file. Call
 * it only with the update lock held. 0: nothing was pending, or it is logged now (said on
 * stdout); -1: it could not be (said on stderr; the file stays for the next try). */
static int heal_pending(const char *home) {
    static const char tail[] = "\"promoted\":true}";
    char *pp = pending_path(home), *dp = fti_path_join(home, "registry/decisions.jsonl");
    char *line = NULL, *prefix = NULL, cur[17] = "", now[32];
    void *data = NULL, *logd = NULL;
    size_t n = 0, ln = 0, tl = sizeof tail - 1;
    fti_json_doc *doc = NULL;
    const char *cand, *before, *cut;
    int rc = -1, promoted, changed;
    fti_buf out;
    fti_error err;
    memset(&out, 0, sizeof out);
    memset(&err, 0, sizeof err);
    if (!pp || !dp) {
        fprintf(stderr, "fti-twin: out of memory\n");
        goto done;
    }
    if (!fti_path_exists(pp)) {
        rc = 0;
        goto done;
    }
    if (fti_file_read(pp, 1u << 20, &data, &n, &err) != FTI_OK) {
        fprintf(stderr, "fti-twin: a pending decision: %s\n", err.msg);
        goto done;
    }
    while (n && (((char *)data)[n - 1] == '\n' || ((char *)data)[n - 1] == '\r')) n--;
    line = fti_strndup((const char *)data, n);
    if (!line || fti_json_parse(line, n, NULL, &doc, NULL, NULL) != FTI_OK || n < tl ||
        memcmp(line + n - tl, tail, tl) != 0 ||
        !(cut = strstr(line, ",\"candidate_val_loss\":"))) {
        fprintf(stderr, "fti-twin: %s is not a pending decision of fti-twin: left as it is (move "
                "it away once its decision is known)\n", pp);
        goto done;
    }
    cand = fti_json_get_str(fti_json_root(doc), "candidate", "");
    before = fti_json_get_str(fti_json_root(doc), "production", ""); /* (null: none) */
    /* its outcome logged already: the update was killed after logging it */
    if (!(prefix = fti_strndup(line, (size_t)(cut - line)))) goto done;
    if (fti_file_read(dp, 64u << 20, &logd, &ln, NULL) == FTI_OK &&
        has_line_prefix((const char *)logd, ln, prefix)) {
        rc = 0;
    } else {
        if (fti_registry_resolve(home, "production", cur, NULL) != FTI_OK) cur[0] = 0;
        promoted = *cand && !strcmp(cur, cand);
        changed = !promoted && strcmp(cur, before) != 0;
        fti_time_iso8601(fti_time_wall(), now);
        fti_buf_append(&out, line, n - tl);
        fti_buf_printf(&out, "\"promoted\":%s%s,\"healed\":\"%s\"}",
                       promoted ? "true" : "false",
                       changed ? ",\"production_changed\":true" : "", now);
        if (out.oom) {
            fprintf(stderr, "fti-twin: out of memory\n");
            goto done;
        }
        if (log_decision(home, out.data, out.len) != 0) goto done;
        printf("== the decision of an earlier update (%s, candidate %s) was left pending (killed "
               "between moving production and logging it): production points at %s, so the "
               "candidate was %s; logged now\n",
               fti_json_get_str(fti_json_root(doc), "time", "?"), cand, *cur ? cur : "nothing",
               promoted ? "promoted" : changed ? "not promoted (production was moved since)"
                                                : "not promoted (it stopped before the move)");
        rc = 0;
    }
    if (unlink(pp) != 0 && errno != ENOENT) {
        fprintf(stderr, "fti-twin: %s: %s (its decision is logged)\n", pp, strerror(errno));
        rc = -1;
    }
done:
    fti_buf_free(&out);
    fti_json_free(doc);
    fti_free(line);
    fti_free(prefix);
    fti_free(data);
    fti_free(logd);
    fti_free(pp);
    fti_free(dp);
    return rc;
}

/* One decision of an update, as decisions.jsonl logs it. */
typedef struct decision {
    const char *time, *dataset, *candidate;
    double candidate_val_loss;
    const char *production; /* NULL: there was none */
    double production_val_loss;
    int other_tok; /* production has another tokenizer: per byte compares */
    double candidate_bpb, production_bpb;
} decision;

/* The decision's line (one JSON object, no newline) into out: "promoted" is its last key unless
 * changed adds "production_changed" after it (heal_pending relies on the pending line ending in
 * "promoted":true and on its first keys being time, dataset, candidate). */
static void decision_line(const decision *d, int promoted, int changed, fti_buf *out) {
    fti_jw w;
    out->len = 0;
    fti_jw_init(&w, out, 0);
    fti_jw_obj_begin(&w);
    fti_jw_key(&w, "time");
    fti_jw_str(&w, d->time);
    fti_jw_key(&w, "dataset");
    fti_jw_str(&w, d->dataset);
    fti_jw_key(&w, "candidate");
    fti_jw_str(&w, d->candidate);
    fti_jw_key(&w, "candidate_val_loss");
    fti_jw_num(&w, d->candidate_val_loss);
    fti_jw_key(&w, "production");
    if (d->production) fti_jw_str(&w, d->production);
    else fti_jw_null(&w);
    fti_jw_key(&w, "production_val_loss");
    fti_jw_num(&w, d->production_val_loss);
    if (d->other_tok) { /* the losses are per token of two tokenizers: per byte compares */
        fti_jw_key(&w, "production_tokenizer_differs");
        fti_jw_bool(&w, 1);
        fti_jw_key(&w, "candidate_bits_per_byte");
        fti_jw_num(&w, d->candidate_bpb);
        fti_jw_key(&w, "production_bits_per_byte");
        fti_jw_num(&w, d->production_bpb);
    }
    fti_jw_key(&w, "promoted");
    fti_jw_bool(&w, promoted);
    if (changed) { /* promoted or rolled back by someone else during the update */
        fti_jw_key(&w, "production_changed");
        fti_jw_bool(&w, 1);
    }
    fti_jw_obj_end(&w);
}

/* Removes the pending record once the decision is logged (when written: `was`). 0, or -1 said
 * on stderr (the next run then finds the outcome logged and only removes it). */
static int dec_pending(const char *home, int was) {
    char *pp = was ? pending_path(home) : NULL;
    int rc = 0;
    if (pp && unlink(pp) != 0 && errno != ENOENT) {
        fprintf(stderr, "fti-twin: %s: %s (the decision is logged)\n", pp, strerror(errno));
        rc = -1;
    }
    fti_free(pp);
    return rc;
}

static fti_result du_fn(void *user, const char *path, uint64_t size) {
    (void)path;
    *(uint64_t *)user += size;
    return FTI_OK;
}

static int cmd_status(const char *home) {
    char id[17], *path;
    fti_json_doc *card = load_card(home, "production", id);
    void *data;
    size_t len;
    uint64_t bytes = 0;
    fti_workspace_gc_opts go;
    fti_workspace_gc_result gr;
    /* the workspace's size, and what gc with its defaults would free (a dry run) */
    memset(&go, 0, sizeof go);
    go.dry_run = 1;
    fti_walk(home, du_fn, &bytes, NULL);
    if (fti_workspace_gc(home, &go, &gr, NULL, NULL) == FTI_OK)
        printf("disk        %.1f MB; fti-twin gc would free %.1f MB\n", (double)bytes / 1e6,
               (double)gr.bytes_freed / 1e6);
    else
        printf("disk        %.1f MB\n", (double)bytes / 1e6);
    path = pending_path(home);
    if (path && fti_path_exists(path)) { /* an update's decision left pending: heal it, unless
                                          * an update holds the lock (it may be the writer) */
        char *lp = fti_path_join(home, "twin.lock");
        int fd = lp ? open(lp, O_RDWR) : -1;
        struct flock fl;
        memset(&fl, 0, sizeof fl);
        fl.l_type = F_WRLCK;
        fl.l_whence = SEEK_SET;
        if (fd >= 0 && fcntl(fd, F_SETLK, &fl) == 0) {
            if (heal_pending(home) == 0) { /* production may have been moved: read again */
                fti_json_free(card);
                card = load_card(home, "production", id);
            }
        } else {
            printf("pending     a decision of an update under way (%s): logged when it ends, or "
                   "by the next update\n", path);
        }
        if (fd >= 0) close(fd); /* (the lock goes with it) */
        fti_free(lp);
    }
    fti_free(path);
    if (!card) {
        printf("no production model in %s (run: fti-twin update PATH...)\n", home);
        return 0;
    }
    printf("production  %s\n", id);
    printf("dataset     %s\n", fti_json_get_str(fti_json_root(card), "dataset", "?"));
    printf("val_loss    %.4f (the trainer's, on windows of its dataset's validation split; "
           "the decisions below score the whole split)\n",
           fti_json_get_num(fti_json_root(card), "val_loss", NAN));
    fti_json_free(card);
    path = fti_path_join(home, "registry/decisions.jsonl");
    if (path && fti_file_read(path, 64u << 20, &data, &len, NULL) == FTI_OK) {
        /* the last five decisions, one line each (the file has every one, as JSON lines) */
        size_t k = len, lines = 0;
        char last_promoted[17] = "";
        const char *p, *e;
        while (k > 0 && lines < 6) if (((char *)data)[--k] == '\n') lines++;
        printf("last decisions (%s):\n", path);
        for (p = (const char *)data + (k ? k + 1 : 0); p < (const char *)data + len; p = e + 1) {
            fti_json_doc *d = NULL;
            e = memchr(p, '\n', (size_t)((const char *)data + len - p));
            if (!e) e = (const char *)data + len;
            if (e == p) continue;
            if (fti_json_parse(p, (size_t)(e - p), NULL, &d, NULL, NULL) == FTI_OK) {
                const fti_json *o = fti_json_root(d), *pv = fti_json_get(o, "promoted");
                int promoted = pv && pv->type == FTI_JSON_TRUE;
                const char *prod = fti_json_get_str(o, "production", NULL);
                const char *cand = fti_json_get_str(o, "candidate", "?");
                const fti_json *td = fti_json_get(o, "production_tokenizer_differs");
                int per_byte = td && td->type == FTI_JSON_TRUE; /* two tokenizers: per byte */
                printf("  %s  %-12s candidate %.16s (%s %.4f)", fti_json_get_str(o, "time", "?"),
                       promoted ? "promoted" : "not promoted", cand,
                       per_byte ? "bits per byte" : "val loss",
                       fti_json_get_num(o, per_byte ? "candidate_bits_per_byte"
                                                    : "candidate_val_loss", NAN));
                if (prod)
                    printf(" against %.16s (%.4f)", prod,
                           fti_json_get_num(o, per_byte ? "production_bits_per_byte"
                                                        : "production_val_loss", NAN));
                else
                    printf(", the first model");
                printf(", dataset %.16s%s\n", fti_json_get_str(o, "dataset", "?"),
                       fti_json_get(o, "healed") ? " (logged by a later run: healed)" : "");
                if (promoted) snprintf(last_promoted, sizeof last_promoted, "%.16s", cand);
                fti_json_free(d);
            } else {
                printf("  %.*s\n", (int)(e - p), p);
            }
        }
        if (last_promoted[0] && strcmp(last_promoted, id))
            printf("  (production is not the last promoted candidate: it was moved since, by "
                   "fti-registry rollback or promote)\n");
        fti_free(data);
    }
    fti_free(path);
    return 0;
}

/* --- write: the twin writes dictionary entries ---------------------------------------------- */


typedef struct write_opts {
    size_t drafts;     /* drafts drawn per entry; the one the model scores best is kept */
    size_t max_tokens; /* tokens per draft */
    size_t rag_k;      /* retrieved entries put in front of the prompt */
    int threads, verbose;
    int author_words;  /* prefer drafts made only of words found in the author's writing */
    int word_mask;     /* draw only tokens that keep every word one of the author's */
    int memory;        /* mix the author memory (n-gram) into the model */
    float memory_lambda; /* < 0: the fitted weights; else this weight everywhere */
    size_t max_copy;   /* set aside drafts sharing more consecutive words with the author */
    int pair_pick;     /* pick among the drafts with the fewest adjacent words he never wrote so */
    int one_sentence;   /* a draft ends at its first sentence */
    double topic;       /* strength of the bias toward the word's theme in his writing */
    size_t topic_k;     /* chunks BM25 finds for the theme */
    double theme_pick;  /* weight in the pick of how much the theme explains a draft */
    double piece_pick;  /* added to a draft's pick score per run of his text it is made of */
    fti_sampler_opts so;
} write_opts;

/* The author's words (lower-case ASCII letters), from the text of every chunk of the dataset's
 * index: an open-addressing set of FNV-1a hashes (a collision may let an invented word
 * pass; it never drops a real one). */
typedef struct lexicon {
    uint64_t *h;
    size_t cap, n;
} lexicon;

static uint64_t word_hash(const char *w, size_t n) {
    uint64_t h = 1469598103934665603ull;
    size_t i;
    for (i = 0; i < n; i++) {
        char c = w[i];
        if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
        h = (h ^ (unsigned char)c) * 1099511628211ull;
    }
    return h ? h : 1;
}

static int lex_has(const lexicon *l, uint64_t h) {
    size_t i;
    if (!l->cap) return 1;
    for (i = (size_t)h & (l->cap - 1); l->h[i]; i = (i + 1) & (l->cap - 1))
        if (l->h[i] == h) return 1;
    return 0;
}

static int lex_add(lexicon *l, uint64_t h) {
    size_t i;
    if (2 * (l->n + 1) > l->cap) {
        size_t nc = l->cap ? 2 * l->cap : 4096, k;
        uint64_t *nh = (uint64_t *)fti_calloc(nc, sizeof *nh);
        if (!nh) return 0;
        for (k = 0; k < l->cap; k++)
            if (l->h[k]) {
                for (i = (size_t)l->h[k] & (nc - 1); nh[i]; i = (i + 1) & (nc - 1)) {}
                nh[i] = l->h[k];
            }
        fti_free(l->h);
        l->h = nh;
        l->cap = nc;
    }
    for (i = (size_t)h & (l->cap - 1); l->h[i]; i = (i + 1) & (l->cap - 1))
        if (l->h[i] == h) return 1;
    l->h[i] = h;
    l->n++;
    return 1;
}

static int is_letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

/* Calls fn for each maximal run of ASCII letters of text; stops when fn returns 0. */
static int each_word(const char *t, size_t n, int (*fn)(void *, uint64_t), void *user) {
    size_t i = 0, j;
    while (i < n) {
        if (!is_letter(t[i])) { i++; continue; }
        for (j = i; j < n && is_letter(t[j]); j++) {}
        if (!fn(user, word_hash(t + i, j - i))) return 0;
        i = j;
    }
    return 1;
}

static int lex_add_fn(void *user, uint64_t h) { return lex_add((lexicon *)user, h); }
static int lex_has_fn(void *user, uint64_t h) { return lex_has((const lexicon *)user, h); }
static int count_fn(void *user, uint64_t h) {
    (void)h;
    ++*(size_t *)user;
    return 1;
}

/* Of the documents of ds's index (each one's first chunk), how many begin as a dictionary
 * entry does: their title, then a comma ("CYNIC, n. A blackguard whose ..."). */
static void entry_shape(const fti_dataset *ds, size_t *n_entries, size_t *n_docs) {
    const fti_bm25 *ix = fti_dataset_index(ds);
    size_t i, n = ix ? fti_bm25_chunks(ix) : 0;
    uint32_t last_doc = UINT32_MAX;
    fti_search_hit hit;
    *n_entries = *n_docs = 0;
    for (i = 0; i < n; i++) {
        size_t tl;
        if (!fti_bm25_chunk(ix, i, &hit) || hit.doc == last_doc) continue;
        last_doc = hit.doc;
        ++*n_docs;
        tl = hit.title ? strlen(hit.title) : 0;
        if (tl && hit.text_len > tl && hit.text[tl] == ',') {
            size_t k = 0;
            while (k < tl && tolower((unsigned char)hit.text[k]) ==
                                 tolower((unsigned char)hit.title[k]))
                k++;
            if (k == tl) ++*n_entries;
        }
    }
}

/* The words of every chunk of ds's index; an empty lexicon (every word passes) without one. */
static void lex_build(lexicon *l, const fti_dataset *ds) {
    const fti_bm25 *ix = fti_dataset_index(ds);
    size_t i, n = ix ? fti_bm25_chunks(ix) : 0;
    fti_search_hit hit;
    memset(l, 0, sizeof *l);
    for (i = 0; i < n; i++)
        if (fti_bm25_chunk(ix, i, &hit) && !each_word(hit.text, hit.text_len, lex_add_fn, l)) {
            fti_free(l->h);
            memset(l, 0, sizeof *l);
            return;
        }
}

/* --- the author's words while drafting: tokens that would spell a word he never used are not
 * drawn. A byte-level BPE model of 2,048 tokens assembles words from pieces, and a small one
 * joins pieces into words that do not exist ("highestructed", "theiration"): with this mask the
 * draft is written in the author's vocabulary from the start instead of being set aside after.
 * The prefixes of every word of his (the FNV-1a state after each letter, as word_hash computes
 * it) and the words themselves are sets of hashes; a token is allowed when the letters it adds
 * keep the current word a prefix of one of his, and every word it ends is one of his. --- */
typedef struct word_mask {
    lexicon prefixes;        /* FNV-1a states after each prefix of each of the author's words */
    const lexicon *words;    /* his whole words (word_hash) */
    const char **bytes;      /* each token's bytes (NULL: a special token, never masked) */
    size_t *lens, V;
    fti_ngram_hook *ngram;   /* the author memory mixed in first (NULL: none) */
    const float *bias;       /* (V) added to the logits after the memory (NULL: none) */
} word_mask;

#define TWIN_FNV_BASIS 1469598103934665603ull
static uint64_t fnv_step(uint64_t h, char c) {
    if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
    return (h ^ (unsigned char)c) * 1099511628211ull;
}

static int prefix_add_fn(void *user, const char *w, size_t n) {
    lexicon *l = (lexicon *)user;
    uint64_t h = TWIN_FNV_BASIS;
    size_t i;
    for (i = 0; i < n; i++) {
        h = fnv_step(h, w[i]);
        if (!lex_add(l, h ? h : 1)) return 0;
    }
    return 1;
}

/* The prefixes of every word of the chunks of ds's index, and the token table; 0 when out of
 * memory or without an index (then nothing is masked). */
static int mask_build(word_mask *m, const fti_dataset *ds, const lexicon *words,
                      const fti_tokenizer *tok, size_t V) {
    const fti_bm25 *ix = fti_dataset_index(ds);
    size_t i, j, k, n = ix ? fti_bm25_chunks(ix) : 0;
    fti_search_hit hit;
    memset(m, 0, sizeof *m);
    if (!n || !words->n) return 0;
    for (i = 0; i < n; i++) {
        if (!fti_bm25_chunk(ix, i, &hit)) continue;
        for (j = 0; j < hit.text_len;) {
            if (!is_letter(hit.text[j])) { j++; continue; }
            for (k = j; k < hit.text_len && is_letter(hit.text[k]); k++) {}
            if (!prefix_add_fn(&m->prefixes, hit.text + j, k - j)) goto fail;
            j = k;
        }
    }
    m->bytes = (const char **)fti_calloc(V, sizeof *m->bytes);
    m->lens = (size_t *)fti_calloc(V, sizeof *m->lens);
    if (!m->bytes || !m->lens) goto fail;
    for (i = 0; i < V; i++) {
        fti_token_type ty = fti_tokenizer_token_type(tok, (uint32_t)i);
        if (ty == FTI_TOKEN_NORMAL || ty == FTI_TOKEN_BYTE)
            m->bytes[i] = fti_tokenizer_token(tok, (uint32_t)i, &m->lens[i]);
    }
    m->words = words;
    m->V = V;
    return 1;
fail:
    fti_free(m->prefixes.h);
    fti_free(m->bytes);
    fti_free(m->lens);
    memset(m, 0, sizeof *m);
    return 0;
}

static void mask_free(word_mask *m) {
    fti_free(m->prefixes.h);
    fti_free(m->bytes);
    fti_free(m->lens);
}

/* fti_generate_opts.on_logits: the author memory, then the mask. The word being written is the
 * run of letters at the end of the recent tokens. */
static void mask_on_logits(void *user, float *logits, size_t n_vocab, const int32_t *recent,
                           size_t n_recent) {
    const word_mask *m = (const word_mask *)user;
    char tail[256];
    size_t t = sizeof tail, i, r, k;
    uint64_t h0 = TWIN_FNV_BASIS;
    int in0 = 0;
    if (m->ngram) fti_ngram_on_logits(m->ngram, logits, n_vocab, recent, n_recent);
    if (!m->V || n_vocab != m->V) return;
    if (m->bias)
        for (i = 0; i < n_vocab; i++) logits[i] += m->bias[i];
    /* the recent text, newest bytes last, as much as fits */
    for (r = n_recent; r-- > 0;) {
        size_t len;
        if (recent[r] < 0 || (size_t)recent[r] >= m->V || !m->bytes[recent[r]]) break;
        len = m->lens[recent[r]];
        if (len > t) break;
        t -= len;
        memcpy(tail + t, m->bytes[recent[r]], len);
        if (len && !is_letter(tail[t + len - 1])) break; /* the word began after it */
        for (k = 0; k < len && is_letter(tail[t + k]); k++) {}
        if (k < len) break;
    }
    for (i = sizeof tail; i > t && is_letter(tail[i - 1]); i--) {}
    for (; i < sizeof tail; i++) {
        h0 = fnv_step(h0, tail[i]);
        in0 = 1;
    }
    if (in0 && !lex_has(&m->prefixes, h0 ? h0 : 1)) return; /* not his word already: leave it */
    for (i = 0; i < n_vocab; i++) {
        const char *b = m->bytes[i];
        uint64_t h = h0;
        int in = in0, ok = 1;
        if (!b) continue;
        for (k = 0; k < m->lens[i] && ok; k++) {
            if (is_letter(b[k])) {
                h = fnv_step(h, b[k]);
                in = 1;
                ok = lex_has(&m->prefixes, h ? h : 1);
            } else {
                if (in) ok = lex_has(m->words, h ? h : 1);
                in = 0;
                h = TWIN_FNV_BASIS;
            }
        }
        if (!ok) logits[i] = -1e30f;
    }
}

/* The author's text as a sequence of words (word_hash of each run of ASCII letters; 0 between
 * chunks) with its suffixes sorted, to find the longest run of consecutive words a draft
 * shares with the author (a quotation rather than new writing). */
typedef struct wordtext {
    uint64_t *w;
    uint32_t *sa; /* suffix start positions, sorted (comparing at most TWIN_SPAN_CAP words) */
    size_t n, cap;
} wordtext;

static int wt_push(void *user, uint64_t h) {
    wordtext *t = (wordtext *)user;
    if (t->n == t->cap) {
        size_t nc = t->cap ? 2 * t->cap : 1 << 16;
        uint64_t *nw;
        if (nc > 0xffffffffu) return 0; /* (before the realloc: t->w stays valid) */
        nw = (uint64_t *)fti_realloc(t->w, nc * sizeof *nw);
        if (!nw) return 0;
        t->w = nw;
        t->cap = nc;
    }
    t->w[t->n++] = h;
    return 1;
}

/* Words a[0..na) and b[0..nb) in common from the start (0 ends a run), at most the cap. */
static size_t wt_lcp(const uint64_t *a, size_t na, const uint64_t *b, size_t nb) {
    size_t k = 0;
    while (k < na && k < nb && k < TWIN_SPAN_CAP && a[k] && a[k] == b[k]) k++;
    return k;
}

/* <0, 0, >0 as suffix a sorts before, with, after b (compared up to the cap). */
static int wt_cmp(const wordtext *t, const uint64_t *a, size_t na, size_t b) {
    size_t nb = t->n - b, k = wt_lcp(a, na, t->w + b, nb);
    if (k == TWIN_SPAN_CAP) return 0;
    if (k == na) return k == nb ? 0 : -1;
    if (k == nb) return 1;
    return a[k] < t->w[b + k] ? -1 : a[k] > t->w[b + k] ? 1 : 0;
}

/* Merge sort of the suffix starts (the C library's qsort has no context argument). */
static void wt_sort(const wordtext *t, uint32_t *x, uint32_t *tmp, size_t n) {
    size_t h = n / 2, i = 0, j = h, k = 0;
    if (n < 2) return;
    wt_sort(t, x, tmp, h);
    wt_sort(t, x + h, tmp, n - h);
    while (i < h && j < n)
        tmp[k++] = wt_cmp(t, t->w + x[j], t->n - x[j], x[i]) < 0 ? x[j++] : x[i++];
    while (i < h) tmp[k++] = x[i++];
    while (j < n) tmp[k++] = x[j++];
    memcpy(x, tmp, n * sizeof *x);
}

/* The words of every chunk of ds's index, suffix-sorted; empty (every span 0) without one. */
static void wt_build(wordtext *t, const fti_dataset *ds) {
    const fti_bm25 *ix = fti_dataset_index(ds);
    size_t i, n = ix ? fti_bm25_chunks(ix) : 0;
    fti_search_hit hit;
    uint32_t *tmp;
    memset(t, 0, sizeof *t);
    for (i = 0; i < n; i++)
        if (!fti_bm25_chunk(ix, i, &hit) || !each_word(hit.text, hit.text_len, wt_push, t) ||
            !wt_push(t, 0))
            goto fail;
    t->sa = (uint32_t *)fti_malloc((t->n ? t->n : 1) * sizeof *t->sa);
    tmp = (uint32_t *)fti_malloc((t->n ? t->n : 1) * sizeof *tmp);
    if (!t->sa || !tmp) {
        fti_free(tmp);
        goto fail;
    }
    for (i = 0; i < t->n; i++) t->sa[i] = (uint32_t)i;
    wt_sort(t, t->sa, tmp, t->n);
    fti_free(tmp);
    return;
fail:
    fti_free(t->w);
    fti_free(t->sa);
    memset(t, 0, sizeof *t);
}

static void wt_free(wordtext *t) {
    fti_free(t->w);
    fti_free(t->sa);
}

/* The longest run of consecutive words of text[0..len) found in the author's text (within one
 * chunk): for each start, the sorted suffixes next to where it would sort share the most. With
 * loose, also the number of pairs of adjacent words of the text that occur nowhere in his text
 * (a start whose run is shorter than 2 words): the joints he never wrote; with pieces, the
 * fewest runs of his text the words are made of (from the left, each run as long as it goes:
 * the fewest, since every part of a run of his is one too). */
static size_t wt_longest(const wordtext *t, const char *text, size_t len, size_t *loose,
                         size_t *pieces) {
    wordtext d;
    size_t i, best = 0, next = 0;
    if (loose) *loose = 0;
    if (pieces) *pieces = 0;
    if (!t->n) return 0;
    memset(&d, 0, sizeof d);
    if (!each_word(text, len, wt_push, &d)) {
        fti_free(d.w);
        return 0;
    }
    for (i = 0; i < d.n; i++) {
        size_t lo = 0, hi = t->n, k;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (wt_cmp(t, d.w + i, d.n - i, t->sa[mid]) > 0) lo = mid + 1;
            else hi = mid;
        }
        k = lo < t->n ? wt_lcp(d.w + i, d.n - i, t->w + t->sa[lo], t->n - t->sa[lo]) : 0;
        if (lo > 0) {
            size_t k2 = wt_lcp(d.w + i, d.n - i, t->w + t->sa[lo - 1], t->n - t->sa[lo - 1]);
            if (k2 > k) k = k2;
        }
        if (k > best) best = k;
        if (loose && i + 1 < d.n && k < 2) ++*loose;
        if (pieces && i == next) ++*pieces, next = i + (k ? k : 1);
    }
    fti_free(d.w);
    return best;
}

/* The author memory of the production model: loaded from HOME/memory/<model id>.ngram, or
 * built from the dataset's training split (fti_ngram_build, order TWIN_NGRAM_ORDER) with its
 * mixing weights fitted on the validation split with this model, then saved there. Prints
 * what it did. NULL (with a message) when it cannot be had. */
static fti_ngram *memory_get(const char *home, const char *model_id, const fti_dataset *ds,
                             fti_session *s) {
    const fti_token_shard *tr = fti_dataset_shard(ds, FTI_SPLIT_TRAIN);
    const fti_token_shard *va = fti_dataset_shard(ds, FTI_SPLIT_VAL);
    char name[64], *dir = fti_path_join(home, "memory"), *path = NULL;
    fti_ngram *m = NULL;
    fti_error err;
    uint32_t *ids = NULL;
    int32_t *vids = NULL;
    uint64_t i;
    snprintf(name, sizeof name, "%s.ngram", model_id);
    path = dir ? fti_path_join(dir, name) : NULL;
    if (!path || !tr || !tr->count) goto out;
    if (fti_path_exists(path)) {
        if (fti_ngram_load(&m, path, &err) == FTI_OK && fti_ngram_n_tokens(m) == tr->count &&
            fti_ngram_vocab(m) == tr->vocab_size) {
            goto said;
        }
        fprintf(stderr, "fti-twin: %s: %s; building it again\n", path,
                m ? "another dataset's" : err.msg);
        fti_ngram_free(m);
        m = NULL;
    }
    ids = (uint32_t *)fti_malloc((size_t)tr->count * sizeof *ids);
    if (!ids) goto out;
    for (i = 0; i < tr->count; i++) ids[i] = fti_shard_at(tr, i);
    {
        fti_ngram_opts no;
        fti_ngram_fit_stats st;
        const int32_t *seq;
        size_t n;
        uint64_t t0 = fti_time_ns();
        int fitted = 0;
        memset(&no, 0, sizeof no);
        no.order = TWIN_NGRAM_ORDER;
        if (fti_ngram_build(&m, ids, (size_t)tr->count, tr->vocab_size, &no, &err) != FTI_OK) {
            fprintf(stderr, "fti-twin: the author memory: %s\n", err.msg);
            goto out;
        }
        if (va && va->count >= 2) {
            vids = (int32_t *)fti_malloc((size_t)va->count * sizeof *vids);
            if (!vids) goto out;
            for (i = 0; i < va->count; i++) vids[i] = (int32_t)fti_shard_at(va, i);
            seq = vids;
            n = (size_t)va->count;
            if (fti_ngram_eval_session(m, s, &seq, &n, 1, 1, &st, &err) != FTI_OK) {
                fprintf(stderr, "fti-twin: fitting the author memory: %s\n", err.msg);
                fti_ngram_free(m);
                m = NULL;
                goto out;
            }
            fitted = 1;
        }
        { /* once per model (stderr: the lines on stdout are the same on every run); where it
           * is kept, or why not (a read-only workspace: built again on every run) */
            int kept = fti_mkdirs(dir, &err) == FTI_OK && fti_ngram_save(m, path, &err) == FTI_OK;
            fprintf(stderr, "fti-twin: built the author memory in %.1f s",
                    (double)(fti_time_ns() - t0) / 1e9);
            if (fitted)
                fprintf(stderr, ": weights fitted on the %lu validation tokens, perplexity "
                        "there: model %.1f, memory %.1f, both %.1f", (unsigned long)st.n_tokens,
                        exp(st.nll_model), exp(st.nll_ngram), exp(st.nll_mix));
            if (kept)
                fprintf(stderr, "; kept in %s\n", path);
            else
                fprintf(stderr, "; not kept (%s): it is built again on every run\n", err.msg);
        }
    }
said:
    printf("== author memory: a %d-gram model of the %llu training tokens mixed into the model, "
           "weights by matched context", fti_ngram_order(m), (unsigned long long)tr->count);
    for (i = 0; i < (uint64_t)fti_ngram_order(m); i++)
        printf(" %d:%.2f", (int)i, (double)fti_ngram_lambda(m, (int)i));
    printf("\n");
out:
    fti_free(ids);
    fti_free(vids);
    fti_free(path);
    fti_free(dir);
    return m;
}

/* Mean negative log-likelihood (nats per token) the model gives the draft as a whole entry:
 * the document <|title|>title <|body|>prompt+draft<|endoftext|> alone (no retrieved text),
 * over the tokens after the prompt, the end marker included (so a draft cut in the middle
 * scores badly). INFINITY when it does not fit the context. */
static double draft_loss(fti_session *s, const fti_engine *e, const fti_tokenizer *tok,
                         const fti_ngram *mem, float mem_lambda, const char *title,
                         const char *prompt, const char *draft, float *logits,
                         const float *bias, float *work) {
    fti_tokens open_ids, ids;
    fti_buf body = twin_buf0();
    size_t n_ctx = fti_session_n_ctx(s), V = fti_engine_config(e)->vocab_size, lcp = 0, i, j;
    int32_t *ids32 = NULL;
    double sum = 0, loss = INFINITY;
    memset(&open_ids, 0, sizeof open_ids);
    memset(&ids, 0, sizeof ids);
    fti_buf_puts(&body, prompt);
    fti_buf_puts(&body, draft);
    if (fti_engine_add_bos(e)) {
        fti_tokens_push(&open_ids, (uint32_t)fti_engine_bos(e));
        fti_tokens_push(&ids, (uint32_t)fti_engine_bos(e));
    }
    if (body.oom ||
        fti_prompt_append_doc(tok, title, strlen(title), prompt, strlen(prompt), 1, &open_ids) !=
            FTI_OK ||
        fti_prompt_append_doc(tok, title, strlen(title), body.data, body.len, 0, &ids) != FTI_OK ||
        ids.len > n_ctx || ids.len < 2)
        goto out;
    while (lcp < open_ids.len && lcp < ids.len && open_ids.ids[lcp] == ids.ids[lcp]) lcp++;
    if (lcp < 1) lcp = 1;
    if (lcp >= ids.len) goto out;
    ids32 = (int32_t *)fti_malloc(ids.len * sizeof *ids32);
    if (!ids32) goto out;
    for (i = 0; i < ids.len; i++) ids32[i] = (int32_t)ids.ids[i];
    fti_session_reset(s);
    if (fti_session_eval(s, ids32, ids.len, logits, NULL) != FTI_OK) goto out;
    for (i = lcp; i < ids.len; i++) { /* -log softmax(logits of position i-1)[ids[i]] */
        const float *l = logits + (i - 1) * V;
        double mx = l[0], z = 0, lp;
        for (j = 1; j < V; j++) if (l[j] > mx) mx = l[j];
        for (j = 0; j < V; j++) z += exp((double)l[j] - mx);
        lp = (double)l[ids.ids[i]] - mx - log(z);
        if (bias && work) {
            /* the distribution the drafts were drawn from: the model, its memory, the theme
             * (p(w) exp(bias w), normalised over the vocabulary; bias holds exp(bias)) */
            double lam = 0, zb = 0, pw = 0;
            if (mem) {
                int conf = fti_ngram_probs(mem, ids32, i, work);
                lam = mem_lambda >= 0 ? mem_lambda : fti_ngram_lambda(mem, conf);
            }
            for (j = 0; j < V; j++) {
                double p = (1 - lam) * exp((double)l[j] - mx) / z + (mem ? lam * work[j] : 0);
                p *= (double)bias[j];
                zb += p;
                if (j == ids.ids[i]) pw = p;
            }
            lp = log(pw / zb);
        } else if (mem) { /* the twin with its memory: the mixture the drafts were drawn from */
            int conf;
            double pn = fti_ngram_prob(mem, ids32, i, ids32[i], &conf);
            double lam = mem_lambda >= 0 ? mem_lambda : fti_ngram_lambda(mem, conf);
            lp = log((1 - lam) * exp(lp) + lam * pn);
        }
        sum -= lp;
    }
    loss = sum / (double)(ids.len - lcp);
out:
    fti_free(ids32);
    fti_buf_free(&body);
    fti_tokens_free(&open_ids);
    fti_tokens_free(&ids);
    return loss;
}

/* The theme of a word in the author's own writing: the chunks BM25 finds for it, as a bias on
 * the logits of the words they use more than his text at large does (word-initial tokens of
 * 4 or more letters used at least twice there), strength times the log of that ratio, capped
 * at 3. Returns the number of tokens biased. */
static size_t topic_build(float *bias, size_t V, const fti_dataset *ds, const fti_tokenizer *tok,
                          const char *word, const double *p_corpus, const word_mask *wm,
                          size_t k, double strength) {
    fti_search_hit hits[32];
    size_t n_hits, h, i, total = 0, n_biased = 0;
    uint32_t *cnt;
    memset(bias, 0, V * sizeof *bias);
    if (!wm->bytes || !p_corpus || strength <= 0) return 0;
    cnt = (uint32_t *)fti_calloc(V, sizeof *cnt);
    if (!cnt) return 0;
    if (k > 32) k = 32;
    n_hits = fti_dataset_search(ds, word, strlen(word), k, hits);
    for (h = 0; h < n_hits; h++) {
        fti_tokens t;
        memset(&t, 0, sizeof t);
        if (fti_tokenizer_encode(tok, hits[h].text, hits[h].text_len, 0, &t) == FTI_OK)
            for (i = 0; i < t.len; i++)
                if (t.ids[i] < V) {
                    cnt[t.ids[i]]++;
                    total++;
                }
        fti_tokens_free(&t);
    }
    for (i = 0; i < V && total; i++) {
        const char *b = wm->bytes[i];
        double r;
        if (!b || cnt[i] < 2 || wm->lens[i] < 5 || b[0] != ' ' || !is_letter(b[1]) ||
            !is_letter(b[2]) || !is_letter(b[3]) || !is_letter(b[4]) || !(p_corpus[i] > 0))
            continue;
        /* not the headword itself (nor its plural and such): he defines a word by others */
        for (h = 0; h < 4 && word[h] && (word[h] | 0x20) == (b[1 + h] | 0x20); h++) {}
        if (h == 4) continue;
        r = log((double)cnt[i] / (double)total / p_corpus[i]);
        if (r <= 0) continue;
        bias[i] = (float)(strength * (r < 3 ? r : 3));
        n_biased++;
    }
    fti_free(cnt);
    return n_biased;
}

/* Line breaks inside the text become spaces (the corpus is hard-wrapped at 70 columns). */
static void unwrap(fti_buf *b) {
    size_t i;
    for (i = 0; i < b->len; i++)
        if (b->data[i] == '\n') b->data[i] = ' ';
}

/* Trailing white space off, in place. */
static void rtrim(fti_buf *b) {
    while (b->len && (b->data[b->len - 1] == ' ' || b->data[b->len - 1] == '\n' ||
                      b->data[b->len - 1] == '\t' || b->data[b->len - 1] == '\r'))
        b->data[--b->len] = 0;
}

/* 1 if line is one of the lines of b. */
static int shown_has(const fti_buf *b, const char *line) {
    size_t n = strlen(line), i = 0;
    while (i < b->len) {
        const char *nl = (const char *)memchr(b->data + i, '\n', b->len - i);
        size_t e = nl ? (size_t)(nl - b->data) : b->len;
        if (e - i == n && !memcmp(b->data + i, line, n)) return 1;
        i = e + 1;
    }
    return 0;
}

/* The longest run of consecutive words text shares with any line of b (the definitions
 * printed so far). */
static size_t shown_overlap(const fti_buf *b, const char *text, size_t len) {
    wordtext a, l;
    size_t i = 0, best = 0;
    memset(&a, 0, sizeof a);
    if (!b->len || !each_word(text, len, wt_push, &a)) {
        fti_free(a.w);
        return 0;
    }
    while (i < b->len) {
        const char *nl = (const char *)memchr(b->data + i, '\n', b->len - i);
        size_t e = nl ? (size_t)(nl - b->data) : b->len, x, y;
        memset(&l, 0, sizeof l);
        if (each_word(b->data + i, e - i, wt_push, &l))
            for (x = 0; x < a.n; x++)
                for (y = 0; y < l.n; y++) {
                    size_t k = wt_lcp(a.w + x, a.n - x, l.w + y, l.n - y);
                    if (k > best) best = k;
                }
        fti_free(l.w);
        i = e + 1;
    }
    fti_free(a.w);
    return best;
}

/* text without its leading spaces (a draft begins with the space after "n."). */
static const char *lskip(const fti_buf *b) {
    const char *p = b->data ? b->data : "";
    while (*p == ' ') p++;
    return p;
}

/* `fti-twin write WORD...`: for each word, an entry of the dictionary in the author's form
 * (title WORD, body "WORD, n." unless the argument already has its ", "), with the author's
 * own entries that BM25 finds for WORD in front of it (closed documents, the training
 * template), drafted `drafts` times with different seeds; the draft the model itself scores
 * best as a whole entry (draft_loss) is printed. */
static int cmd_write(const char *home, const char *const *words, size_t n_words,
                     const write_opts *wo) {
    char id[17], *ver_z = NULL;
    fti_json_doc *card = load_card(home, "production", id);
    fti_engine *e = NULL;
    fti_tokenizer *tok = NULL;
    fti_session *s = NULL;
    fti_pool *pool = NULL;
    fti_dataset *ds = NULL;
    fti_session_opts so;
    fti_error err;
    float *logits = NULL;
    const char *ver = NULL;
    size_t ver_len = 0, w, n_ctx, V;
    lexicon lex;
    wordtext wt;
    fti_buf shown = twin_buf0(); /* the definitions printed so far, one a line */
    fti_ngram *mem = NULL;
    fti_ngram_hook hook;
    word_mask wm;
    float *work = NULL, *work2 = NULL, *topic_bias = NULL, *topic_exp = NULL;
    double *p_corpus = NULL;
    int rc = 1, failed = 0, masked = 0, no_shards = 0;
    memset(&wm, 0, sizeof wm);
    memset(&lex, 0, sizeof lex);
    memset(&wt, 0, sizeof wt);
    memset(&hook, 0, sizeof hook);
    if (!card) {
        fprintf(stderr, "fti-twin: no production model in %s (run: fti-twin update PATH...)\n",
                home);
        return 1;
    }
    if (fti_engine_open(&e, fti_json_get_str(fti_json_root(card), "path", ""), NULL, &err) !=
            FTI_OK ||
        fti_engine_tokenizer(e, &tok, &err) != FTI_OK) {
        fprintf(stderr, "fti-twin: %s\n", err.msg);
        goto out;
    }
    pool = fti_pool_create(wo->threads);
    memset(&so, 0, sizeof so);
    so.pool = pool;
    so.kv_type = FTI_KV_F32;
    if (fti_session_create(&s, e, &so, &err) != FTI_OK) {
        fprintf(stderr, "fti-twin: %s\n", err.msg);
        goto out;
    }
    n_ctx = fti_session_n_ctx(s);
    V = fti_engine_config(e)->vocab_size;
    logits = (float *)fti_malloc(n_ctx * V * sizeof *logits);
    work = (float *)fti_malloc(V * sizeof *work);
    work2 = (float *)fti_malloc(V * sizeof *work2);
    if (!logits || !work || !work2) goto out;
    if ((wo->rag_k || wo->author_words || wo->memory || wo->max_copy || wo->pair_pick ||
         wo->piece_pick > 0) &&
        fti_gguf_get_str(fti_engine_gguf(e), "fti.dataset.version", &ver, &ver_len, NULL) ==
            FTI_OK &&
        (ver_z = fti_strndup(ver, ver_len)) != NULL &&
        fti_dataset_open(&ds, home, ver_z, &err) != FTI_OK) {
        /* a damaged token shard costs only what reads the shards (the memory, the themes):
         * retrieval and the author's words read the index, which fti_dataset_open_index checks
         * alone. The message is the first open's: it names the damaged file. */
        fti_error e2;
        if (fti_dataset_open_index(&ds, home, ver_z, &e2) == FTI_OK) {
            no_shards = 1;
            fprintf(stderr, "fti-twin: the author memory and the themes (--topic) off: %s\n",
                    err.msg);
        } else {
            fprintf(stderr, "fti-twin: retrieval, the author's words and memory off: %s\n",
                    err.msg);
        }
    }
    if (ds) { /* write makes dictionary entries: say so to a writer of prose */
        size_t n_entries, n_docs;
        entry_shape(ds, &n_entries, &n_docs);
        if (n_docs >= 10 && n_entries * 4 < n_docs)
            fprintf(stderr, "fti-twin: note: write makes dictionary entries (\"WORD, n. ...\"), "
                    "the demo corpus's form, but only %lu of this dataset's %lu documents begin "
                    "that way (their title, then a comma): for posts, notes or mail use "
                    "fti-infer --home %s --title T --prompt P, or fti-serve's chat\n",
                    (unsigned long)n_entries, (unsigned long)n_docs, home);
    }
    if (ds && (wo->author_words || wo->word_mask)) lex_build(&lex, ds);
    if (ds && wo->word_mask) masked = mask_build(&wm, ds, &lex, tok, V);
    if (masked && wo->topic > 0 && !no_shards) {
        const fti_token_shard *tr = fti_dataset_shard(ds, FTI_SPLIT_TRAIN);
        topic_bias = (float *)fti_malloc(V * sizeof *topic_bias);
        topic_exp = (float *)fti_malloc(V * sizeof *topic_exp);
        p_corpus = (double *)fti_calloc(V, sizeof *p_corpus);
        if (!topic_exp) {
            fti_free(topic_bias);
            topic_bias = NULL;
        }
        if (tr && topic_bias && p_corpus) {
            uint64_t q;
            for (q = 0; q < tr->count; q++) {
                uint32_t v = fti_shard_at(tr, q);
                if (v < V) p_corpus[v] += 1;
            }
            for (q = 0; q < V; q++) p_corpus[q] = (p_corpus[q] + 1) / (double)(tr->count + V);
        }
    }
    if (ds && (wo->max_copy || wo->pair_pick || wo->piece_pick > 0)) wt_build(&wt, ds);
    if (ds && wo->memory && !no_shards) mem = memory_get(home, id, ds, s);
    if (mem && fti_ngram_vocab(mem) != V) { /* its rows are read as the model's distribution */
        fprintf(stderr, "fti-twin: the author memory has %lu tokens, the model %lu: not used\n",
                (unsigned long)fti_ngram_vocab(mem), (unsigned long)V);
        fti_ngram_free(mem);
        mem = NULL;
    }
    hook.ngram = mem;
    hook.work = work;
    hook.lambda = wo->memory_lambda;
    wm.ngram = mem ? &hook : NULL;
    if (mem && wo->memory_lambda >= 0)
        printf("   writing with the memory at weight %.2f everywhere (--memory-weight; -1 = the "
               "fitted weights)\n", (double)wo->memory_lambda);
    if (masked && topic_bias)
        printf("   and with each word's theme: the words of the author's %lu entries BM25 finds "
               "for it raised %.1f x log(how much more they use them) (--topic)\n",
               (unsigned long)wo->topic_k, wo->topic);
    for (w = 0; w < n_words; w++) {
        char title[128], prompt[160];
        const char *comma = strchr(words[w], ',');
        fti_search_hit hits[8];
        fti_prompt_doc docs[8];
        fti_prompt pr;
        size_t n_hits = 0, d, best = 0, room;
        fti_buf text[TWIN_WRITE_MAX_DRAFTS];
        double loss[TWIN_WRITE_MAX_DRAFTS];
        int known[TWIN_WRITE_MAX_DRAFTS], level[TWIN_WRITE_MAX_DRAFTS], top = 0;
        size_t span[TWIN_WRITE_MAX_DRAFTS], n_known = 0, n_copied = 0, n_top = 0, nw = 0;
        size_t loose[TWIN_WRITE_MAX_DRAFTS], min_loose = (size_t)-1, n_pick = 0;
        size_t pieces[TWIN_WRITE_MAX_DRAFTS];
        size_t n_drafts = wo->drafts < 1                      ? 1
                          : wo->drafts > TWIN_WRITE_MAX_DRAFTS ? TWIN_WRITE_MAX_DRAFTS
                                                               : wo->drafts;
        int done_ok = 1;
        size_t tl = comma ? (size_t)(comma - words[w]) : strlen(words[w]);
        if (tl >= sizeof title) tl = sizeof title - 1;
        memcpy(title, words[w], tl);
        title[tl] = 0;
        snprintf(prompt, sizeof prompt, comma ? "%s" : "%s, n.", words[w]);
        memset(&pr, 0, sizeof pr);
        memset(docs, 0, sizeof docs);
        if (ds && wo->rag_k) {
            n_hits = fti_dataset_search(ds, title, strlen(title),
                                        wo->rag_k < 8 ? wo->rag_k : 8, hits);
            for (d = 0; d < n_hits; d++) {
                docs[d].title = hits[d].title;
                docs[d].title_len = hits[d].title ? strlen(hits[d].title) : 0;
                docs[d].text = hits[d].text;
                docs[d].text_len = hits[d].text_len;
            }
        }
        room = wo->max_tokens + 8 < n_ctx && wo->max_tokens < n_ctx ? n_ctx - wo->max_tokens
                                                                     : n_ctx / 2;
        if (fti_prompt_build(e, tok, title, prompt, strlen(prompt), docs, n_hits, room, &pr,
                             &err) != FTI_OK) { /* e.g. a word too long for the context */
            fprintf(stderr, "fti-twin: %s: %s\n", title, err.msg);
            failed = 1;
            continue;
        }
        if (topic_bias && p_corpus) {
            size_t nb = topic_build(topic_bias, V, ds, tok, title, p_corpus, &wm, wo->topic_k,
                                    wo->topic);
            wm.bias = nb ? topic_bias : NULL;
            for (d = 0; d < V; d++) topic_exp[d] = expf(topic_bias[d]);
        }
        for (d = 0; d < n_drafts; d++) {
            fti_sampler *smp = NULL;
            fti_sampler_opts sd = wo->so;
            fti_generate_opts go;
            fti_generate_stats gs;
            const char *stop[3];
            stop[0] = "\n\n"; /* the definition; verse and quotations after it are left out */
            stop[1] = ". "; /* with one_sentence: his definition proper is its first sentence */
            stop[2] = ".\n";
            memset(&text[d], 0, sizeof text[d]);
            loss[d] = INFINITY;
            known[d] = level[d] = 0; /* (read by the pick below also when this draft fails) */
            span[d] = loose[d] = pieces[d] = 0;
            sd.seed = wo->so.seed + d;
            memset(&go, 0, sizeof go);
            go.max_tokens = wo->max_tokens;
            go.stop = stop;
            go.n_stop = wo->one_sentence ? 3 : 1;
            go.text = &text[d];
            if (masked) {
                go.on_logits = mask_on_logits;
                go.logits_user = &wm;
            } else if (mem) {
                go.on_logits = fti_ngram_on_logits;
                go.logits_user = &hook;
            }
            fti_session_reset(s);
            if (fti_sampler_create(&smp, V, &sd) != FTI_OK ||
                fti_generate(s, smp, pr.ids, pr.n, &go, &gs, &err) != FTI_OK) {
                fprintf(stderr, "fti-twin: %s\n", smp ? err.msg : "out of memory");
                fti_sampler_free(smp);
                done_ok = 0;
                n_drafts = d + 1;
                break;
            }
            fti_sampler_free(smp);
            rtrim(&text[d]);
            if (wo->one_sentence && text[d].len && gs.finish == FTI_FINISH_STOP &&
                text[d].data[text[d].len - 1] != '.')
                fti_buf_putc(&text[d], '.'); /* the stop string's period */
            if (text[d].len && !text[d].oom)
                loss[d] = draft_loss(s, e, tok, mem, wo->memory_lambda, title, prompt,
                                     text[d].data, logits, wm.bias ? topic_exp : NULL, work2);
            if (wm.bias && wo->theme_pick > 0 && loss[d] < INFINITY) {
                /* how much the theme explains the draft: its loss without the theme less
                 * with it; the pick's score is the loss less theme_pick times that */
                double plain = draft_loss(s, e, tok, mem, wo->memory_lambda, title, prompt,
                                          text[d].data, logits, NULL, work2);
                if (plain < INFINITY) loss[d] -= wo->theme_pick * (plain - loss[d]);
            }
            /* the author's words only, and at least TWIN_WRITE_MIN_WORDS of them (the
             * lowest loss per token otherwise goes to drafts such as "A n.") */
            known[d] =
                each_word(text[d].data ? text[d].data : "", text[d].len, lex_has_fn, &lex) &&
                each_word(text[d].data ? text[d].data : "", text[d].len, count_fn, &nw) == 1 &&
                nw >= TWIN_WRITE_MIN_WORDS;
            nw = 0;
            n_known += (size_t)known[d];
            /* new text, not a quotation: at most max_copy words in a row from the author */
            span[d] = wt_longest(&wt, text[d].data ? text[d].data : "", text[d].len, &loose[d],
                                 &pieces[d]);
            n_copied += wo->max_copy && span[d] > wo->max_copy;
            level[d] = (wo->max_copy && span[d] > wo->max_copy ? 0 : 2) + known[d];
            /* a definition already given to an earlier word of this run is not new either */
            if (text[d].data && (shown_has(&shown, text[d].data) ||
                                 shown_overlap(&shown, text[d].data, text[d].len) >=
                                     TWIN_WRITE_MAX_REUSE))
                level[d] = known[d];
            /* a draft without a word (the model ended the entry at once) is never the pick */
            each_word(text[d].data ? text[d].data : "", text[d].len, count_fn, &nw);
            if (nw == 0) level[d] = -1;
            nw = 0;
            if (level[d] > top) top = level[d];
        }
        /* the lowest loss among the drafts of the best level present (new text made of the
         * author's words, else new text, else any), and of those, with pair_pick, among the ones
         * with the fewest pairs of adjacent words the author never wrote next to each other:
         * the small model's loss per token forgives one broken joint in a short draft ("A
         * place where ambassador.") that his own word pairs do not */
        for (d = 0; d < n_drafts; d++) {
            if (level[d] != top) continue;
            n_top++;
            if (wo->pair_pick && loss[d] < INFINITY && loose[d] < min_loose) min_loose = loose[d];
        }
        best = n_drafts;
        for (d = 0; d < n_drafts; d++) {
            if (level[d] != top || (min_loose != (size_t)-1 && loose[d] != min_loose)) continue;
            n_pick++;
            if (best == n_drafts || !(loss[best] < INFINITY) ||
                loss[d] + wo->piece_pick * (double)pieces[d] <
                    loss[best] + wo->piece_pick * (double)pieces[best])
                best = d;
        }
        if (done_ok && best == n_drafts) { /* every draft is empty: say so, not "WORD, n. " */
            fprintf(stderr, "fti-twin: %s: none of the %lu drafts has a word (the model ended the "
                    "entry at once; try more --drafts, another --seed or --temp, or more "
                    "writing to train on)\n", title, (unsigned long)n_drafts);
            failed = 1;
            done_ok = 0;
        }
        if (best == n_drafts) best = 0;
        if (done_ok) {
            double lo = INFINITY, hi = 0;
            for (d = 0; d < n_drafts; d++) {
                unwrap(&text[d]);
                if (loss[d] < lo) lo = loss[d];
                if (loss[d] > hi && loss[d] < INFINITY) hi = loss[d];
                if (wo->verbose)
                    printf("   draft %lu (%.3f nats/token, %lu words in a row from the author, "
                           "%lu pair%s of words he never wrote together, %lu run%s of his "
                           "text%s): %s %s\n",
                           (unsigned long)d + 1, loss[d], (unsigned long)span[d],
                           (unsigned long)loose[d], loose[d] == 1 ? "" : "s",
                           (unsigned long)pieces[d], pieces[d] == 1 ? "" : "s",
                           known[d] ? "" : ", a word the author never used or under 4 words",
                           prompt, lskip(&text[d]));
            }
            printf("\n%s %s\n", prompt, lskip(&text[best]));
            if (text[best].data) {
                fti_buf_puts(&shown, text[best].data);
                fti_buf_putc(&shown, '\n');
            }
            printf("   (%lu of %lu drafts use only the author's words, 4 or more; %lu quote more "
                   "than %lu words in a row from him and are set aside; the twin's own pick "
                   "of the %lu %s", (unsigned long)n_known, (unsigned long)n_drafts,
                   (unsigned long)n_copied, (unsigned long)wo->max_copy, (unsigned long)n_top,
                   top == 3   ? "new drafts of his words"
                   : top == 2 ? "new drafts"
                              : "drafts, all set aside (no new text: the pick quotes him or "
                                "repeats an earlier definition)");
            if (min_loose == 0)
                printf(", of the %lu whose every pair of adjacent words he also wrote together",
                       (unsigned long)n_pick);
            else if (min_loose != (size_t)-1)
                printf(", of the %lu with the fewest (%lu) pairs of adjacent words he never wrote "
                       "together", (unsigned long)n_pick, (unsigned long)min_loose);
            printf(": %.2f nats per token%s", loss[best],
                   wm.bias && wo->theme_pick > 0 ? " less the theme's share" : "");
            if (wo->piece_pick > 0 && wt.n)
                printf(" plus %.2f per run of his text it is made of (%lu)", wo->piece_pick,
                       (unsigned long)pieces[best]);
            printf(", all drafts %.2f to %.2f; longest run of words shared with the author's "
                   "text: %lu)\n", lo, hi, (unsigned long)span[best]);
            for (d = 0; d < pr.n_docs_used && d < n_hits; d++) {
                /* the chunk's first line or so, cut at a space */
                char snip[80];
                size_t k, n = 0, cut = 0;
                for (k = 0; k < hits[d].text_len && n + 1 < sizeof snip - 4; k++) {
                    char c = hits[d].text[k] == '\n' ? ' ' : hits[d].text[k];
                    if (c == ' ' && n && snip[n - 1] == ' ') continue;
                    if (c == ' ') cut = n;
                    snip[n++] = c;
                }
                if (k < hits[d].text_len && cut) n = cut;
                snip[n] = 0;
                printf("   (retrieved: %s, score %.1f: \"%s%s\")\n",
                       hits[d].title ? hits[d].title : "?", (double)hits[d].score, snip,
                       k < hits[d].text_len ? " ..." : "");
            }
        }
        for (d = 0; d < n_drafts; d++) fti_buf_free(&text[d]);
        fti_prompt_free(&pr);
        if (!done_ok) goto out;
        fflush(stdout);
    }
    rc = failed;
out:
    fti_free(lex.h);
    mask_free(&wm);
    fti_free(topic_bias);
    fti_free(topic_exp);
    fti_free(p_corpus);
    wt_free(&wt);
    fti_buf_free(&shown);
    fti_ngram_free(mem);
    fti_free(work);
    fti_free(work2);
    fti_free(logits);
    fti_free(ver_z);
    fti_dataset_close(ds);
    fti_session_free(s);
    fti_pool_free(pool);
    fti_tokenizer_free(tok);
    fti_engine_close(e);
    fti_json_free(card);
    return rc;
}

/* An option's number: v (NULL when the option came last) read whole, within [lo, hi], and a
 * whole number when `whole`; else a message naming the option, the range and what was given. */
static int num_arg(const char *opt, const char *v, double lo, double hi, int whole, double *x) {
    char *end = NULL;
    if (!v) {
        fprintf(stderr, "fti-twin: %s needs a value\n", opt);
        return 0;
    }
    *x = strtod(v, &end);
    if (end == v || *end || !(*x >= lo && *x <= hi) || (whole && *x != floor(*x))) {
        fprintf(stderr, "fti-twin: %s takes a %s from %.10g to %.10g, not '%s'\n", opt,
                whole ? "whole number" : "number", lo, hi, v);
        return 0;
    }
    return 1;
}

int main(int argc, char **argv) {
    const char *home_arg = NULL, *preset = "small", *cmd = NULL;
    const char **paths;
    size_t n_paths = 0;
    double minutes = 3;
    int threads = 0, i, rc = 1, lock_fd = -1, have_prod, retokenize = 0, wait_lock = 0;
    const char *authors = NULL; /* --authors: whose writing to keep */
    int vocab = 0, bf16 = -1, do_gc = 0;
    fti_workspace_gc_opts go;
    uint64_t fixed_steps = 0;
    write_opts wo;
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
    memset(&wo, 0, sizeof wo);
    memset(&go, 0, sizeof go);
    wo.drafts = TWIN_WRITE_DRAFTS;
    wo.max_tokens = TWIN_WRITE_TOKENS;
    wo.rag_k = TWIN_WRITE_RAG;
    wo.so.temperature = TWIN_WRITE_TEMP;
    wo.so.top_k = TWIN_WRITE_TOP_K;
    wo.so.top_p = TWIN_WRITE_TOP_P;
    wo.so.min_p = TWIN_WRITE_MIN_P;
    wo.so.repeat_penalty = TWIN_WRITE_REPEAT;
    wo.so.seed = 1;
    wo.author_words = 1;
    wo.word_mask = 1;
    wo.topic = TWIN_WRITE_TOPIC;
    wo.topic_k = TWIN_WRITE_TOPIC_K;
    wo.theme_pick = 1.0;
    wo.piece_pick = TWIN_WRITE_PIECE_PICK;
    wo.one_sentence = 1;
    wo.memory = 1;
    wo.memory_lambda = TWIN_WRITE_MEMORY_WEIGHT;
    wo.max_copy = TWIN_WRITE_MAX_COPY;
    wo.pair_pick = 1;
    paths = (const char **)fti_calloc((size_t)argc, sizeof *paths);
    if (!paths) return 1;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            fti_free(paths);
            return 0;
        } else if (!strcmp(a, "--home") && i + 1 < argc) home_arg = argv[++i];
        else if (!strcmp(a, "--preset") && i + 1 < argc) preset = argv[++i];
        else if (!strcmp(a, "--retokenize")) retokenize = 1;
        else if (!strcmp(a, "--authors") && i + 1 < argc) authors = argv[++i];
        else if (!strcmp(a, "--wait")) wait_lock = 1;
        else if (!strcmp(a, "--gc")) do_gc = 1;
        else if (!strcmp(a, "--dry-run")) go.dry_run = 1;
        else if (!strcmp(a, "--drafts-shown")) wo.verbose = 1;
        else if (!strcmp(a, "--any-words")) wo.author_words = wo.word_mask = 0;
        else if (!strcmp(a, "--no-word-mask")) wo.word_mask = 0;
        else if (!strcmp(a, "--all-sentences")) wo.one_sentence = 0;
        else if (!strcmp(a, "--no-memory")) wo.memory = 0;
        else if (!strcmp(a, "--any-pairs")) wo.pair_pick = 0;
        else if (!strcmp(a, "--bf16")) bf16 = 1;
        else if (!strcmp(a, "--no-bf16")) bf16 = 0;
        else if (!strcmp(a, "--seed")) { /* all 64 bits: not through a double */
            char *end = NULL;
            const char *v = i + 1 < argc ? argv[++i] : NULL;
            if (!v) {
                fprintf(stderr, "fti-twin: --seed needs a value\n");
                fti_free(paths);
                return 2;
            }
            errno = 0;
            wo.so.seed = strtoull(v, &end, 10);
            if (!*v || *end || *v == '-' || errno == ERANGE) {
                fprintf(stderr, "fti-twin: --seed takes a whole number from 0 to 2^64-1, not "
                        "'%s'\n", v);
                fti_free(paths);
                return 2;
            }
        } else if (a[0] == '-' && a[1]) { /* the options with a number */
            static const struct {
                const char *name;
                double lo, hi;
                int whole;
            } nums[] = {{"--minutes", 0.01, 1e6, 0}, {"--threads", 0, 1024, 1},
                        {"--steps", 0, 1e12, 1}, {"--vocab", 0, 1 << 20, 1},
                        {"--keep-models", 0, 1e6, 1}, {"--keep-versions", 1, 1e6, 1},
                        {"--keep-history", 0, 1e6, 1},
                        {"--drafts", 1, TWIN_WRITE_MAX_DRAFTS, 1}, {"-n", 1, 4096, 1},
                        {"--rag-k", 0, 8, 1}, {"--temp", 0, 100, 0}, {"--top-k", 0, 1e6, 1},
                        {"--top-p", 0, 1, 0}, {"--min-p", 0, 1, 0},
                        {"--repeat-penalty", 0.01, 100, 0}, {"--topic", 0, 100, 0},
                        {"--topic-k", 1, 32, 1}, {"--theme-pick", 0, 100, 0},
                        {"--piece-pick", 0, 100, 0}, {"--memory-weight", -1, 1, 0},
                        {"--max-copy", 0, 1000, 1}};
            size_t k;
            double x = 0;
            for (k = 0; k < sizeof nums / sizeof nums[0] && strcmp(a, nums[k].name); k++) {}
            if (k == sizeof nums / sizeof nums[0]) {
                int text = !strcmp(a, "--home") || !strcmp(a, "--preset") ||
                           !strcmp(a, "--authors"); /* (here only when it came last) */
                fprintf(stderr, text ? "fti-twin: %s needs a value\n"
                                     : "fti-twin: unknown option %s (try --help)\n", a);
                fti_free(paths);
                return 2;
            }
            if (!num_arg(a, i + 1 < argc ? argv[++i] : NULL, nums[k].lo, nums[k].hi,
                         nums[k].whole, &x)) {
                fti_free(paths);
                return 2;
            }
            switch (k) {
            case 0: minutes = x; break;
            case 1: threads = (int)x; break;
            case 2: fixed_steps = (uint64_t)x; break;
            case 3: vocab = (int)x; break;
            case 4: go.keep_models = x > 0 ? (size_t)x : FTI_GC_KEEP_NONE; break;
            case 5: go.keep_versions = (size_t)x; break;
            case 6: go.keep_history = x > 0 ? (size_t)x : FTI_GC_KEEP_NONE; break;
            case 7: wo.drafts = (size_t)x; break;
            case 8: wo.max_tokens = (size_t)x; break;
            case 9: wo.rag_k = (size_t)x; break;
            case 10: wo.so.temperature = (float)x; break;
            case 11: wo.so.top_k = (int)x; break;
            case 12: wo.so.top_p = (float)x; break;
            case 13: wo.so.min_p = (float)x; break;
            case 14: wo.so.repeat_penalty = (float)x; break;
            case 15: wo.topic = x; break;
            case 16: wo.topic_k = (size_t)x; break;
            case 17: wo.theme_pick = x; break;
            case 18: wo.piece_pick = x; break;
            case 19: wo.memory_lambda = (float)x; break;
            default: wo.max_copy = (size_t)x; break;
            }
        }
        else if (!cmd) cmd = a;
        else paths[n_paths++] = a;
    }
    {
        const char *why = NULL, *what = "";
        fti_error pe; /* (what may point at its message) */
        memset(&pe, 0, sizeof pe);
        if (!cmd) why = "no command: update, status, write or gc";
        else if (strcmp(cmd, "update") && strcmp(cmd, "status") && strcmp(cmd, "write") &&
                 strcmp(cmd, "gc"))
            why = "unknown command (update, status, write or gc): ", what = cmd;
        else if (!strcmp(cmd, "update") && n_paths == 0)
            why = "update needs the PATH of the writing to ingest (a file or folder)";
        else if (!strcmp(cmd, "write") && n_paths == 0)
            why = "write needs at least one WORD to define";
        else if ((!strcmp(cmd, "gc") || !strcmp(cmd, "status")) && n_paths)
            why = "unexpected argument: ", what = paths[0];
        else if (!(minutes > 0) || vocab < 0 || (vocab > 0 && vocab < 260))
            why = "--minutes must be above 0 and --vocab at least 260";
        for (i = 0; !why && !strcmp(cmd, "write") && (size_t)i < n_paths; i++)
            if (!paths[i][0] || paths[i][0] == ',') why = "an empty WORD";
        if (!why && !strcmp(cmd, "update")) { /* before the ingest, not after it */
            fti_model_config pc;
            memset(&pc, 0, sizeof pc);
            if (fti_model_preset(preset, &pc, &pe) != FTI_OK)
                why = "--preset: ", what = pe.msg;
        }
        if (why) {
            fprintf(stderr, "fti-twin: %s%s\n(fti-twin --help shows the usage)\n", why, what);
            fti_free(paths);
            return 2;
        }
    }
    if (!strcmp(cmd, "update")) /* a mistyped PATH leaves no new workspace behind */
        for (i = 0; (size_t)i < n_paths; i++)
            if (!fti_path_exists(paths[i])) {
                fprintf(stderr, "fti-twin: %s: no such file or folder (nothing was done)\n",
                        paths[i]);
                fti_free(paths);
                return 1;
            }
    home = fti_workspace_resolve(home_arg);
    if (home && strcmp(cmd, "update") && !twin_home_exists(home)) {
        /* status, write and gc read a workspace: a mistyped --home is not a new one */
        fprintf(stderr, "fti-twin: no workspace at %s (fti-twin update PATH makes one there; "
                "--home DIR or FTI_HOME names another)\n", home);
        fti_free(home);
        fti_free(paths);
        return 1;
    }
    if (!home || fti_workspace_init(home, &err) != FTI_OK) {
        fprintf(stderr, "fti-twin: workspace %s: %s\n", home ? home : "?", home ? err.msg : "");
        return 1;
    }
    if (!strcmp(cmd, "status")) {
        rc = cmd_status(home);
        fti_free(home);
        fti_free(paths);
        return rc;
    }
    if (!strcmp(cmd, "write")) {
        wo.threads = threads;
        rc = cmd_write(home, paths, n_paths, &wo);
        fti_free(home);
        fti_free(paths);
        return rc;
    }

    /* gc --dry-run only reads (as status does): no lock, so it also works in a read-only
     * workspace (a backup) and beside an update */
    if (!strcmp(cmd, "gc") && go.dry_run) {
        rc = run_gc(home, &go);
        goto done;
    }

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

    if (!strcmp(cmd, "gc")) {
        rc = run_gc(home, &go);
        goto done;
    }

    /* (a signal ignored by whoever started us stays ignored: `fti-twin update ... &` in a
     * script; SIGTERM still reaches it) */
    if (signal(SIGINT, on_signal) == SIG_IGN) signal(SIGINT, SIG_IGN);
    if (signal(SIGTERM, on_signal) == SIG_IGN) signal(SIGTERM, SIG_IGN);
    /* F: the feature pipeline. With a production model, its tokenizer is kept (so the model can
     * be fine-tuned on the new version) unless --retokenize asks for a new one. */
    prod = load_card(home, "production", prod_id);
    have_prod = prod != NULL;
    { /* the time and pid: a cron job's log of many nights says which night, and which run
       * another's "another update (pid N) is running" means */
        char now[32];
        fti_time_iso8601(fti_time_wall(), now);
        printf("== F: ingesting %lu path(s) into %s (%s, pid %ld)\n", (unsigned long)n_paths,
               home, now, (long)getpid());
    }
    /* a decision an earlier update left pending (killed between moving production and logging
     * it) is logged first: this update's would replace its record */
    if (heal_pending(home) != 0) goto done;
    { /* runs left without a model: an earlier update killed part-way (this one holds the lock,
       * so no other update runs; an fti-train may). Said, so a cron log shows the recovery;
       * the lines are gc's dry-run report's (gc frees what they hold). */
        fti_workspace_gc_opts po;
        fti_workspace_gc_result pr;
        fti_buf rep;
        memset(&po, 0, sizeof po);
        memset(&rep, 0, sizeof rep);
        po.dry_run = 1;
        if (fti_workspace_gc(home, &po, &pr, &rep, NULL) == FTI_OK && rep.len && !rep.oom) {
            const char *p = rep.data, *e;
            while ((e = strchr(p, '\n')) != NULL) {
                if (!strncmp(p, "run ", 4) &&
                    (line_has(p, e, "has no model and no checkpoint") ||
                     line_has(p, e, "was killed before its first checkpoint") ||
                     line_has(p, e, "is unfinished")))
                    printf("   earlier run without a model (killed part-way?): %.*s\n",
                           (int)(e - p), p);
                p = e + 1;
            }
        }
        fti_buf_free(&rep);
    }
    fflush(stdout);
    {
        char tok_path[4096] = "", prev_authors[1024] = "";
        fti_ingest_opts io;
        size_t reused = 0;
        const fti_json *c;
        if (have_prod) {
            /* the tokenizer object its dataset's manifest names (not through fti_dataset_open,
             * which also checks the index and shards: a damaged index made the update train a
             * new tokenizer and a model from scratch, as if --retokenize had been given), and
             * the --authors it was made with */
            char ds_id[65], mpath[4096];
            void *txt = NULL;
            size_t len = 0;
            fti_json_doc *md = NULL;
            if (fti_store_resolve(home, fti_json_get_str(fti_json_root(prod), "dataset", ""),
                                  ds_id, NULL) == FTI_OK) {
                snprintf(mpath, sizeof mpath, "%s/store/versions/%s.json", home, ds_id);
                if (fti_file_read(mpath, 0, &txt, &len, NULL) == FTI_OK &&
                    fti_json_parse((const char *)txt, len, NULL, &md, NULL, NULL) == FTI_OK) {
                    const char *hex = fti_json_get_str(
                        fti_json_get(fti_json_get(fti_json_root(md), "files"), "tokenizer"),
                        "sha256", "");
                    const char *pa = fti_json_get_str(
                        fti_json_get(fti_json_root(md), "options"), "authors", "");
                    if (strlen(hex) == 64 && !retokenize)
                        snprintf(tok_path, sizeof tok_path, "%s/store/objects/%.2s/%s", home, hex,
                                 hex);
                    if (strlen(pa) < sizeof prev_authors)
                        snprintf(prev_authors, sizeof prev_authors, "%s", pa);
                }
                fti_free(txt);
                fti_json_free(md);
            }
        }
        /* --authors is remembered: an update without it keeps whose writing the production
         * model's dataset kept (a cron line without it took in a mailbox's correspondents) */
        if (!authors && prev_authors[0]) {
            authors = prev_authors;
            printf("   --authors \"%s\" as for the production model's dataset (--authors \"*\" "
                   "keeps everyone's)\n", authors);
        }
        memset(&io, 0, sizeof io);
        io.tokenizer = tok_path[0] ? tok_path : NULL;
        io.authors = authors;
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
        if (g_signal) {
            char where[160];
            snprintf(where, sizeof where, "after the ingest: dataset version %.16s is stored, "
                     "nothing was trained", version);
            rc = interrupted(where);
            goto done;
        }
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
        /* before any training: nothing to learn from, or nothing to compare the models on */
        if (fti_json_get_int(c, "documents", 0) == 0) {
            fprintf(stderr, "fti-twin: no document of the input was kept (%lld rejected: "
                    "fti-feature --home %s show %.16s gives each one's reason), nothing to "
                    "train on\n", (long long)fti_json_get_int(c, "rejected", 0), home, version);
            goto done;
        }
        if (fti_json_get_int(c, "val_tokens", 0) == 0 ||
            fti_json_get_int(c, "train_tokens", 0) == 0) {
            fprintf(stderr, "fti-twin: %lld document(s) kept, too few for a training and a "
                    "validation split (the update holds out about 1 in 20 documents, at least "
                    "one, to compare models on): give it more writing\n",
                    (long long)fti_json_get_int(c, "documents", 0));
            goto done;
        }
    }
    /* Unchanged: the same version, or one with the same documents and the same tokenizer (a
     * version id also covers options such as a tokenizer given instead of trained). */
    if (have_prod) {
        const char *pds = fti_json_get_str(fti_json_root(prod), "dataset", "");
        const char *ptok = fti_json_get_str(fti_json_root(prod), "tokenizer", "");
        const char *tok = fti_dataset_tokenizer_sha256(ds);
        size_t added = 1, removed = 1;
        fti_buf diff = twin_buf0();
        int same = !strcmp(pds, version);
        int compared = !same && fti_store_diff(home, pds, version, &diff, &added, &removed,
                                               NULL) == FTI_OK;
        if (compared && tok && !strcmp(ptok, tok)) same = added == 0 && removed == 0;
        fti_buf_free(&diff);
        if (!same && compared) {
            printf("   %lu document(s) added and %lu removed since the production model's version "
                   "%.16s (an edited one counts as both; fti-feature --home %s diff %.16s %.16s "
                   "lists them)\n", (unsigned long)added, (unsigned long)removed, pds, home, pds,
                   version);
        }
        if (same) {
            if (!strcmp(pds, version))
                printf("== the data did not change since the production model %s was trained: "
                       "the feature-store version %.16s is reused, nothing to do\n", prod_id,
                       pds);
            else
                printf("== the data did not change since the production model %s was trained: "
                       "its feature-store version %.16s is reused (this ingest, %.16s, has the "
                       "same documents and tokenizer), nothing to do\n", prod_id, pds, version);
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
        uint64_t steps, max_epoch_steps = 0, fit_steps, warmup;
        double cal_s = 0;
        memset(&ro, 0, sizeof ro);
        ro.dataset = version;
        ro.train.n_threads = threads;
        ro.train.log = on_log;
        ro.train.bf16 = bf16 >= 0 ? bf16 : have_bf16();
        ro.progress = on_train;
        ro.progress_user = &u;
        ro.stop = should_stop;
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
            if (fti_model_preset(preset, &cfg, NULL) == FTI_OK) {
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
        /* at most TWIN_MAX_EPOCHS passes over the training split from scratch, a fine-tune
         * TWIN_FT_MAX_EPOCHS (and it stops early when validation stops improving) */
        if (!fixed_steps) {
            const fti_token_shard *sh = fti_dataset_shard(ds, FTI_SPLIT_TRAIN);
            size_t bt = (ro.train.batch ? ro.train.batch : 8) *
                        (ro.train.ctx ? ro.train.ctx : cfg.context_len);
            uint64_t epochs = same_tok ? TWIN_FT_MAX_EPOCHS : TWIN_MAX_EPOCHS;
            max_epoch_steps = sh && bt ? epochs * sh->count / bt : 0;
            if (max_epoch_steps < 20) max_epoch_steps = 20;
        }
        if (same_tok && !fixed_steps) ro.patience = TWIN_FT_PATIENCE;
        fit_steps = steps;
        if (max_epoch_steps && steps > max_epoch_steps) steps = max_epoch_steps;
        ro.train.max_steps = steps;
        ro.train.max_seconds = budget_s;
        /* warm-up: a twentieth of the schedule. When the pass cap is in reach (the budget has
         * room for at least half of it), a twentieth of the cap, not of the calibration's
         * estimate: the same data on the same machine then trains the same model whatever
         * the calibration measured (the demo, one commit: 1,289 and 1,520 steps estimated,
         * both runs stopped by the cap at 1,490, two model ids) */
        warmup = max_epoch_steps && fit_steps >= max_epoch_steps / 2 ? max_epoch_steps : steps;
        ro.train.warmup_steps = warmup / 20 ? warmup / 20 : 1;
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
        else if (max_epoch_steps && fit_steps > max_epoch_steps)
            /* the cap, not the budget, ends training: say so, and about when */
            printf("   the budget has room for about %llu steps on this machine (%.1f s measured), "
                   "but %s stops after %s = %llu steps, about %.1f of the "
                   "%.1f min%s\n", (unsigned long long)fit_steps, cal_s,
                   same_tok ? "fine-tuning" : "training from scratch",
                   same_tok ? TWIN_FT_EPOCHS_STR : TWIN_EPOCHS_STR,
                   (unsigned long long)max_epoch_steps,
                   budget_s * (double)max_epoch_steps / (double)fit_steps / 60, budget_s / 60,
                   ro.train.bf16 ? "; bf16 matmuls" : "");
        else
            printf("   about %llu steps fit in the budget on this machine (%.1f s measured; the "
                   "schedule follows the measured step time)%s\n", (unsigned long long)steps,
                   cal_s, ro.train.bf16 ? ", bf16 matmuls" : "");
        if (same_tok)
            printf("== T: fine-tuning production model %s on %.16s for at most %.1f min\n",
                   prod_id,
                   version, budget_s / 60);
        else
            printf("== T: training a %s model from scratch on %.16s for at most %.1f min%s\n",
                   preset, version, budget_s / 60, have_prod ? " (the tokenizer changed)" : "");
        fflush(stdout);
        if (fti_train_run(home, &ro, &res, &err) != FTI_OK) {
            on_train(&u, FTI_TRAIN_EVENT_END, &res, &res.stats);
            if (err.code == FTI_ERR_CANCELLED) {
                char where[160];
                snprintf(where, sizeof where, "at training step %llu of %llu: no model was "
                         "registered (run %s)",
                         (unsigned long long)res.stats.step,
                         (unsigned long long)res.stats.total_steps, res.run_key);
                rc = interrupted(where);
            } else {
                fprintf(stderr, "fti-twin: training failed: %s\n", err.msg);
            }
            goto done;
        }
        printf("steps %llu  tokens %llu  train loss %.4f  val loss %.4f (best %.4f)  %.1f s%s\n",
               (unsigned long long)res.stats.step, (unsigned long long)res.stats.tokens_seen,
               res.stats.loss, res.stats.val_loss, res.stats.best_val_loss, res.stats.elapsed_s,
               res.used_best ? "  (best validation weights kept)" : "");
        if (res.stopped_early)
            printf("   stopped early: %d validation passes in a row brought no new best (of %llu "
                   "steps planned; the best pass, step %llu, kept)\n", TWIN_FT_PATIENCE,
                   (unsigned long long)res.stats.total_steps,
                   (unsigned long long)(res.used_best ? res.best_step : res.stats.step));
        printf("run %s/runs/%s\n", home, res.run_key);
        printf("model %s\n", res.id);
        snprintf(cand_id, sizeof cand_id, "%s", res.id);
    }

    if (g_signal) { /* after the last step: the model is registered, not yet compared */
        char where[160];
        snprintf(where, sizeof where, "after training: model %s is registered, not evaluated",
                 cand_id);
        rc = interrupted(where);
        goto done;
    }
    /* evaluation on the new validation split, then champion/challenger */
    pool = fti_pool_create(threads);
    {
        char cid[17];
        double lc = NAN, lp = NAN, nats_c, nats_p;
        const char *ds_tok = fti_dataset_tokenizer_sha256(ds);
        /* production of another tokenizer (--retokenize): it would read the split's ids as
         * other tokens (the demo's model, val loss 4.25 on its own split, scored 6.59 so) */
        int promote, changed = 0, other_tok = have_prod &&
                                 (!ds_tok || strcmp(fti_json_get_str(fti_json_root(prod),
                                                                     "tokenizer", ""), ds_tok));
        size_t nc = 0, np = 0;
        uint64_t bytes = 0;
        fti_buf line = twin_buf0();
        int logged;
        char now[32];
        decision dec;
        memset(&dec, 0, sizeof dec);
        cand = load_card(home, cand_id, cid);
        if (!cand || !val_loss(fti_json_get_str(fti_json_root(cand), "path", ""), ds, pool, 0,
                               &lc, &nc, &bytes, &err)) {
            fprintf(stderr, "fti-twin: evaluating the candidate: %s\n", err.msg);
            goto done;
        }
        if (have_prod && !val_loss(fti_json_get_str(fti_json_root(prod), "path", ""), ds, pool,
                                   other_tok, &lp, &np, &bytes, &err)) {
            lp = INFINITY; /* a production model that cannot read this split loses */
        }
        /* per-token losses of two tokenizers do not compare; the nats over the same text do
         * (the candidate's over the split's ids, production's over its own encoding of the
         * same documents) */
        nats_c = lc * (double)nc;
        nats_p = isfinite(lp) ? lp * (double)np : INFINITY;
        promote = !have_prod || (other_tok ? nats_c < nats_p : lc < lp);
        printf("== evaluation on the new validation split (%llu tokens)\n",
               (unsigned long long)fti_dataset_shard(ds, FTI_SPLIT_VAL)->count);
        printf("   candidate   %s  val loss %.4f  perplexity %.2f", cand_id, lc, exp(lc));
        if (other_tok && bytes && isfinite(nats_p))
            printf("  %.4f bits per byte", nats_c / log(2.0) / (double)bytes);
        printf("\n");
        if (have_prod && other_tok && bytes && isfinite(nats_p))
            printf("   production  %s  val loss %.4f  perplexity %.2f  %.4f bits per byte (another "
                   "tokenizer: the same documents in its own %lu tokens)\n", prod_id, lp, exp(lp),
                   nats_p / log(2.0) / (double)bytes, (unsigned long)np + 1);
        else if (have_prod)
            printf("   production  %s  val loss %.4f  perplexity %.2f\n", prod_id, lp, exp(lp));
        if (g_signal) {
            char where[160];
            snprintf(where, sizeof where, "after the evaluation: model %s is registered, the "
                     "decision not made", cand_id);
            fti_buf_free(&line);
            rc = interrupted(where);
            goto done;
        }
        fti_time_iso8601(fti_time_wall(), now);
        dec.time = now;
        dec.dataset = version;
        dec.candidate = cand_id;
        dec.candidate_val_loss = lc;
        dec.production = have_prod ? prod_id : NULL;
        dec.production_val_loss = lp;
        dec.other_tok = other_tok;
        dec.candidate_bpb = bytes ? nats_c / log(2.0) / (double)bytes : NAN;
        dec.production_bpb = bytes ? nats_p / log(2.0) / (double)bytes : NAN;
        /* write-ahead: the decision as it is logged if the move succeeds, before the move (a
         * kill between the move and the log is healed from it: heal_pending) */
        if (promote) {
            char *pp = pending_path(home), *rd = fti_path_join(home, "registry");
            fti_result wr = FTI_ERR_NOMEM;
            decision_line(&dec, 1, 0, &line);
            if (pp && rd && !line.oom && (wr = fti_mkdirs(rd, &err)) == FTI_OK)
                wr = fti_file_write_atomic(pp, line.data, line.len, &err);
            fti_free(pp);
            fti_free(rd);
            fti_buf_free(&line);
            if (wr != FTI_OK) {
                fprintf(stderr, "fti-twin: recording the decision before the promotion: %s "
                        "(nothing promoted)\n", wr == FTI_ERR_NOMEM ? "out of memory" : err.msg);
                goto done;
            }
            test_kill("before-promote");
        }
        /* only over the production this update compared against: a model promoted (or
         * rolled back to) by hand meanwhile stays */
        if (promote && fti_registry_promote_if(home, cand_id, "production", prod_id, &err) !=
                           FTI_OK) {
            if (err.code != FTI_ERR_MISMATCH) {
                /* the pending record stays: the next update or status logs the outcome the
                 * alias shows (the move may have happened before the error) */
                fprintf(stderr, "fti-twin: promotion failed: %s\n", err.msg);
                goto done;
            }
            promote = 0;
            changed = 1;
            if (fti_registry_resolve(home, "production", cid, NULL) != FTI_OK) strcpy(cid, "none");
            printf("== production changed during this update (from %s to %s): the candidate, "
                   "compared with the former, is not promoted\n", have_prod ? prod_id : "none",
                   cid);
        }
        if (promote) test_kill("after-promote");
        if (!changed)
            printf("== %s\n", promote ? (have_prod ? "candidate is better: promoted to production"
                                                   : "first model: promoted to production")
                                      : "production stays: the candidate is not better");
        decision_line(&dec, promote, changed, &line);
        logged = !line.oom && log_decision(home, line.data, line.len) == 0;
        fti_buf_free(&line);
        if (!logged) goto done; /* (a pending record stays: healed by the next run) */
        if (dec_pending(home, promote || changed) != 0) goto done;
    }
    rc = 0;
done:
    if (rc == 0 && do_gc && !strcmp(cmd, "update")) rc = run_gc(home, &go);
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
