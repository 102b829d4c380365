/* === train: AdamW, schedule, trainer with exact resume, LoRA, model registry === */
/*
 * The trainer turns a model config and token arrays into weights. One optimizer step:
 *
 *   for each of grad_accum micro-batches: the seeded sampler picks `batch` windows of ctx+1
 *   tokens from the training array; forward, backward (gradients averaged over micro-batches:
 *   each micro-batch's gradient is computed on its own and they are summed in order, the same
 *   summation a data-parallel run over grad_accum ranks does, see fti_train_opts.world_size)
 *   -> clip the global gradient norm -> AdamW (decoupled weight decay, bias correction, no decay
 *   on norm weights) at the learning rate of a linear warmup then cosine decay to min_lr_frac.
 *
 * Every `eval_every` steps it computes the validation loss over fixed, evenly spaced windows of
 * the validation array (no randomness: the same number every time). Training stops at
 * max_steps, max_tokens or max_seconds, whichever comes first.
 *
 * Exact resume: a checkpoint holds the weights, both AdamW moments, the step, tokens seen, the
 * elapsed time, the sampler's RNG state and draw count, and the loss history; it is written
 * atomically (fti_afile: temp, fsync, rename) and ends with its SHA-256. A run killed at any point
 * and resumed from its last checkpoint produces the same losses and bit-identical weights as an
 * uninterrupted run, for any thread count (the model's passes are thread-count independent).
 *
 * LoRA: with lora_rank r > 0 the base weights are frozen and rank-r adapters (A: r x in,
 * B: out x r, W' = W + (alpha/r) B A) on attn_q/k/v/output and ffn_gate/up/down are trained.
 *
 * The registry keeps trained models in a workspace directory:
 *   HOME/models/<id>/model.gguf, HOME/models/<id>/card.json, HOME/models/aliases.json
 * with ids from the model file's SHA-256 and aliases that move atomically with a history for
 * rollback. See docs/training.md for the checkpoint and card formats.
 *
 * Everything here compiles out under FTI_NO_TRAIN.
 */
#ifndef FTI_TRAIN_H
#define FTI_TRAIN_H

#include "00_base.h"
#include "01_threads.h"
#include "05_model.h"

#ifndef FTI_NO_TRAIN

#ifdef __cplusplus
extern "C" {
#endif

/* --- optimizer and schedule ------------------------------------------------------------------- */

/* AdamW hyper-parameters. Zero means the default for every field. */
typedef struct fti_adamw_opts {
    float beta1;        /* 0 = 0.9 */
    float beta2;        /* 0 = 0.95 */
    float eps;          /* 0 = 1e-8 */
    float weight_decay; /* 0 = 0.1; negative = none */
} fti_adamw_opts;

/* One AdamW step over n parameters, torch.optim.AdamW's formula: p -= lr*wd*p (where decay[i]
 * is non-zero, or everywhere when decay is NULL); m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
 * p -= lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps). t counts from 1. Element-wise, split over
 * the pool. Thread safety: one thread per arrays. */
FTIDEF void fti_adamw_update(const fti_adamw_opts *opts, float *params, const float *grads,
                             float *m, float *v, const unsigned char *decay, size_t n, float lr,
                             uint64_t t, fti_pool *pool);

/* Learning rate at step (from 0): linear warmup over warmup steps to lr, then cosine decay to
 * lr * min_lr_frac at total_steps (and flat after). Thread safety: any thread. */
FTIDEF double fti_lr_schedule(uint64_t step, uint64_t warmup, uint64_t total_steps, double lr,
                              double min_lr_frac);

/* --- token arrays ----------------------------------------------------------------------------- */

/* A read-only array of token ids, 2 or 4 bytes each, little-endian (as the feature store's
 * shards: mmap them and pass the mapping). From an opened dataset version's shard
 * (fti_dataset_shard): data = s->data, n_tokens = s->count, token_bytes = s->width, which is 2
 * for vocabularies up to 65536 ids (not the default 4). */
typedef struct fti_token_array {
    const void *data;
    size_t n_tokens;
    int token_bytes; /* 2 or 4; 0 = 4 */
} fti_token_array;

/* --- trainer ---------------------------------------------------------------------------------- */

/* Data-parallel hook: sums grads (n floats) and *loss_sum over all ranks, in place, with a fixed
 * (rank-order) summation so every rank gets bit-identical results. Returns FTI_OK or an error.
 * fti_train_mpi_attach (FTI_MPI builds) installs one over MPI; any other transport can too. */
typedef fti_result (*fti_train_reduce_fn)(void *user, float *grads, size_t n, double *loss_sum);

#ifndef FTI_TRAIN_MAX_BATCH
#define FTI_TRAIN_MAX_BATCH (1u << 20) /* sequences per micro-batch (fti_train_opts.batch) */
#endif
#ifndef FTI_TRAIN_MAX_ACCUM
#define FTI_TRAIN_MAX_ACCUM (1u << 20) /* micro-batches per step (fti_train_opts.grad_accum) */
#endif

typedef struct fti_train_opts {
    size_t batch;             /* sequences per micro-batch, 0 = 8 (at most FTI_TRAIN_MAX_BATCH) */
    size_t ctx;               /* tokens per sequence, 0 = the model's context_len (at most) */
    size_t grad_accum;        /* micro-batches per step, 0 = 1 (at most FTI_TRAIN_MAX_ACCUM) */
    float lr;                 /* peak learning rate, 0 = 1e-3 (LoRA: 1e-3 too) */
    float min_lr_frac;        /* final lr / peak, 0 = 0.1; negative = 0 */
    uint64_t warmup_steps;    /* 0 = max_steps / 20 */
    uint64_t max_steps;       /* 0 = from max_tokens, else 1000; also the schedule's length */
    uint64_t max_tokens;      /* stop after this many training tokens, 0 = no limit */
    double max_seconds;       /* stop after this much training time (summed over resumes) */
    float grad_clip;          /* global-norm clip, 0 = 1.0; negative = off */
    fti_adamw_opts adamw;
    uint64_t eval_every;      /* validation every N steps (and at the end), 0 = only at the end */
    size_t eval_windows;      /* validation windows, 0 = 16 (rounded up to whole batches) */
    uint64_t seed;            /* init and sampler seed */
    int n_threads;            /* 0 = $FTI_THREADS, else all CPUs */
    const char *checkpoint_path;  /* NULL = no automatic checkpoints */
    uint64_t checkpoint_every;    /* steps between automatic checkpoints, 0 = 100 */
    uint32_t lora_rank;       /* > 0: train LoRA adapters on frozen base weights; at most the
                                 smaller side of every adapted matrix (FTI_ERR_INVALID) */
    float lora_alpha;         /* 0 = 2 * rank */
    int bf16;                 /* 1: bf16 matmuls, fp32 master weights (fti_model_acts_set_bf16;
                                 fp32 where the CPU has no AVX512_BF16) */
    float dropout;            /* residual dropout in training steps (fti_model_acts_set_dropout),
                                 0 = off; never in validation. In [0, 0.9] */
    fti_log_fn log;           /* optional: errors and notices */
    void *log_user;
    /* Data parallelism (0 = one process). The step's global batch (grad_accum micro-batches of
     * `batch` windows, drawn by the same sampler sequence as one process) is split over
     * world_size ranks: whole micro-batches when grad_accum % world_size == 0, else each
     * micro-batch's windows (batch % world_size == 0). Every rank runs the same optimizer step
     * on the reduced gradient; only rank 0 writes automatic checkpoints. */
    int world_size;           /* 0 or 1 = one process */
    int rank;                 /* 0 .. world_size - 1 */
    fti_train_reduce_fn reduce; /* required when world_size > 1 */
    void *reduce_user;
} fti_train_opts;

/* Numbers after a step (and the run so far). */
typedef struct fti_train_stats {
    uint64_t step;            /* optimizer steps done */
    uint64_t total_steps;     /* the schedule's length */
    uint64_t tokens_seen;     /* training tokens consumed */
    double loss;              /* training loss of the last step (mean over micro-batches;
                               * after fti_trainer_resume, the checkpoint's last step's as its
                               * history keeps it, f32; 0 before any step) */
    double lr;                /* learning rate used by the last step */
    double grad_norm;         /* global gradient norm before clipping */
    double val_loss;          /* last validation loss (NAN before the first) */
    double best_val_loss;     /* best validation loss (NAN before the first) */
    int evaluated;            /* 1 if this step ran a validation pass */
    int checkpointed;         /* 1 if this step wrote a checkpoint */
    double elapsed_s;         /* training time, summed over resumes */
    double tokens_per_s;      /* of the last step */
} fti_train_stats;

typedef struct fti_trainer fti_trainer;

/* Creates a trainer. init_params (n_params floats, copied) starts from given weights (fine-tuning
 * or the LoRA base); NULL initialises from opts->seed. The token arrays are borrowed and must
 * outlive the trainer; val may have n_tokens 0 (no validation). Each array needs at least
 * ctx + 1 tokens and ids < vocab_size (checked up front).
 * Errors: FTI_ERR_INVALID (config, opts, short data), FTI_ERR_FORMAT (token id >= vocab, naming
 * the array and the position), FTI_ERR_NOMEM. Thread safety: one thread per object. */
FTIDEF fti_result fti_trainer_create(const fti_model_config *cfg, const float *init_params,
                                     const fti_train_opts *opts, fti_token_array train,
                                     fti_token_array val, fti_trainer **out, fti_error *err);
/* Frees the trainer (not the borrowed token arrays); NULL is fine. */
FTIDEF void fti_trainer_free(fti_trainer *t);
/* 1 when a stop condition has been reached. Thread safety (this and every fti_trainer_* call):
 * one thread per trainer. */
FTIDEF int fti_trainer_done(const fti_trainer *t);
/* Runs one optimizer step (plus validation and checkpoint when due) and fills stats (optional).
 * Errors: FTI_ERR_NUMERIC (non-finite loss or gradient: training must stop), I/O errors of an
 * automatic checkpoint. */
FTIDEF fti_result fti_trainer_step(fti_trainer *t, fti_train_stats *stats, fti_error *err);
/* Validation loss over the fixed windows (NAN if there is no validation data). */
FTIDEF fti_result fti_trainer_eval(fti_trainer *t, double *val_loss);
FTIDEF void fti_trainer_stats_get(const fti_trainer *t, fti_train_stats *stats);
/* Changes the schedule's length (and the step limit) to total_steps, at least one more step than
 * done: the learning rate of the next steps follows the cosine over the new length (a run that
 * fits its schedule to a time budget, fti_train_run_opts.fit_seconds). The checkpoint records
 * the new length, so such a run resumes only into a trainer given the same length. */
FTIDEF void fti_trainer_set_total_steps(fti_trainer *t, uint64_t total_steps);
/* The full model weights (n_params floats). With LoRA: the base with the adapters merged in. */
FTIDEF const float *fti_trainer_params(fti_trainer *t);
FTIDEF const fti_model_config *fti_trainer_config(const fti_trainer *t);
/* Loss history: train[i] is the loss of step i+1 (n_train = steps done); validation points as
 * (step, loss) pairs. Pointers valid until the next step or free. */
FTIDEF void fti_trainer_history(const fti_trainer *t, const float **train, size_t *n_train,
                                const uint64_t **val_steps, const float **val_loss,
                                size_t *n_val);

/* Writes a checkpoint atomically. Thread safety: one thread per object. */
FTIDEF fti_result fti_trainer_save(fti_trainer *t, const char *path, fti_error *err);
/* Restores a checkpoint written by a trainer with the same config, data and opts (checked:
 * FTI_ERR_MISMATCH names what differs). fti_trainer_stats_get then reports the checkpoint's
 * step, tokens, losses and time (loss: its last step's; lr, grad_norm and tokens_per_s are 0
 * until the next step). FTI_ERR_CHECKSUM for a damaged file, FTI_ERR_FORMAT for a malformed
 * one. */
FTIDEF fti_result fti_trainer_resume(fti_trainer *t, const char *path, fti_error *err);

/* --- LoRA ------------------------------------------------------------------------------------- */

/* The adapter of one matrix: a (r, in), b (out, r), in layout order of the targeted tensors
 * (per layer: attn_q, attn_k, attn_v, attn_output, ffn_gate, ffn_up, ffn_down). */
typedef struct fti_lora_tensor {
    size_t tensor;  /* index into the model layout */
    size_t rows, cols; /* of the base matrix (out, in) */
    size_t a_offset, b_offset; /* elements into the adapter block */
} fti_lora_tensor;
/* Number of adapted tensors and adapter elements for a config and rank; fti_lora_tensor_get fills
 * the i-th adapted tensor's layout and returns its element count (0 when i is out of range).
 * Thread safety: any thread. */
FTIDEF size_t fti_lora_n_tensors(const fti_model_config *cfg);
FTIDEF size_t fti_lora_tensor_get(const fti_model_config *cfg, uint32_t rank, size_t i,
                              fti_lora_tensor *out);
FTIDEF size_t fti_lora_n_params(const fti_model_config *cfg, uint32_t rank);
/* The trainer's adapter block (NULL without LoRA), and its rank and alpha. */
FTIDEF const float *fti_trainer_lora(const fti_trainer *t, uint32_t *rank, float *alpha);
/* params += (alpha / rank) * B A for every adapted tensor, computed exactly as the trainer's
 * forward weights (bit-identical to fti_trainer_params). FTI_ERR_NOMEM, FTI_ERR_INVALID.
 * Thread safety: one thread per params block. */
FTIDEF fti_result fti_lora_merge(const fti_model_config *cfg, float *params,
                                 const float *adapters, uint32_t rank, float alpha);

/* --- model registry --------------------------------------------------------------------------- */

/* Registers a model: copies model_file (a GGUF written by the caller) to
 * HOME/models/<id>/model.gguf, where id is the first 16 hex digits of its SHA-256, and writes
 * HOME/models/<id>/card.json from card_json (a JSON object; "id", "path", "sha256" and
 * "created" are added; "path" is "models/<id>/model.gguf", and the members "run", "metrics",
 * "loss_curve" and "adapter" naming files inside HOME are stored relative to HOME, so a copied
 * workspace has its own). id_out gets the id. Registering the same file twice is not an error
 * (the card is written anew; fti_registry_add_file keeps it).
 * Thread safety: one writer per home at a time. */
FTIDEF fti_result fti_registry_add(const char *home, const char *model_file,
                                   const char *card_json, size_t card_len, char id_out[17],
                                   fti_error *err);
/* Resolves an alias, an id or a unique id prefix (at least 4 hex digits, either case) to an id.
 * FTI_ERR_NOT_FOUND when nothing matches; FTI_ERR_INVALID for a prefix of fewer than 4 hex
 * digits that is no alias (the message says the minimum), and for one that starts several ids
 * (the message names them, up to 8).
 * Thread safety (this and every reading fti_registry_* call): any thread; writers (add, promote,
 * rollback) replace files atomically, so readers see the old or the new state. */
FTIDEF fti_result fti_registry_resolve(const char *home, const char *ref, char id_out[17],
                                       fti_error *err);
/* The model file of a registered model, for fti_engine_open: ref is an alias, an id or a unique
 * id prefix (as fti_registry_resolve reads it); *path_out gets HOME/models/<id>/model.gguf (a new
 * string: fti_free; NULL on error) and id_out (optional) the id. FTI_ERR_NOT_FOUND, as
 * fti_registry_resolve, when ref names nothing, and when the file is gone: a model
 * fti_workspace_gc removed (its card stays; the message says when) or a damaged workspace. A
 * LoRA adapter's entry (card "type" "lora_adapter") gives its adapter file: open it with
 * fti_engine_opts.lora_path over its base model. Thread safety: any thread. */
FTIDEF fti_result fti_registry_model_path(const char *home, const char *ref, char **path_out,
                                          char id_out[17], fti_error *err);
/* Appends a model's card to out (JSON text; id is a full id: fti_registry_resolve turns an alias
 * or a prefix into one), its "path" being where the model file is now
 * (HOME/models/<id>/model.gguf, whatever directory HOME was given relative to when the model was
 * registered), and its files of the workspace ("run", "metrics", "loss_curve", "adapter",
 * stored relative to HOME by fti_registry_add) joined to HOME; cards written before 2026-11-29
 * have those under the home as given then: shown under HOME when the file is there (a copied
 * or moved workspace), else as they are. */
FTIDEF fti_result fti_registry_card(const char *home, const char *id, fti_buf *out,
                                    fti_error *err);
/* Re-hashes the model file of id (an id, prefix or alias: fti_registry_resolve) and compares
 * its SHA-256 with its card's. FTI_OK when they match (a card without a hash passes);
 * FTI_ERR_CHECKSUM naming the file and both hashes when they differ (the file changed after
 * registration: a damaged disk, a file copied over it); FTI_ERR_NOT_FOUND for a model
 * fti_workspace_gc removed (only its card is left) or an unknown one; the read's error naming
 * the file. path_out (optional; fti_free) gets the file's path on FTI_OK and on
 * FTI_ERR_CHECKSUM, id_out (optional) the id. Reads the whole file: about a second per 500 MB.
 * For servers and jobs that load a registered model they did not just write.
 * Thread safety: any thread. */
FTIDEF fti_result fti_registry_verify(const char *home, const char *ref, char id_out[17],
                                      char **path_out, fti_error *err);
/* Appends the ids of all registered models to out, sorted by creation time (oldest first), as
 * "id\n" lines. */
FTIDEF fti_result fti_registry_list(const char *home, fti_buf *out, fti_error *err);
/* Calls fn with each registered model's id and card (as fti_registry_card gives it, parsed;
 * valid during the call), oldest first, until fn returns non-zero; cards that do not read are
 * skipped. FTI_OK, or the error of listing the registry. Thread safety: any thread. */
typedef int (*fti_registry_each_fn)(void *user, const char *id, const fti_json *card);
FTIDEF fti_result fti_registry_each(const char *home, fti_registry_each_fn fn, void *user,
                                    fti_error *err);
/* Points alias at id (must exist, and not removed by fti_workspace_gc: FTI_ERR_NOT_FOUND);
 * the previous target goes onto the alias's history. The alias file is replaced atomically. */
FTIDEF fti_result fti_registry_promote(const char *home, const char *id, const char *alias,
                                       fti_error *err);
/* As fti_registry_promote, only if alias points at expect now (expect NULL or "": the alias
 * is not set), checked under the registry lock: otherwise FTI_ERR_MISMATCH naming the alias's
 * current target, and nothing changes. For automation that decided against the target it
 * read earlier (fti-twin update: a model promoted by hand meanwhile is not overwritten). */
FTIDEF fti_result fti_registry_promote_if(const char *home, const char *id, const char *alias,
                                          const char *expect, fti_error *err);
/* Points alias back at its previous target; FTI_ERR_NOT_FOUND when there is none.
 * id_out (optional) gets the restored id. */
FTIDEF fti_result fti_registry_rollback(const char *home, const char *alias, char id_out[17],
                                        fti_error *err);
/* Appends the aliases to out as a JSON object {"alias": {"id": "...", "history": [...]}}. */
FTIDEF fti_result fti_registry_aliases(const char *home, fti_buf *out, fti_error *err);

/* Options of fti_registry_add_file; zero (or NULL) for the defaults. */
typedef struct fti_registry_add_opts {
    const char *name;   /* the card's name; NULL = the file's general.name, else its base name */
    const char *parent; /* id, id prefix or alias of the registered model the file derives from
                         * (e.g. the model it was quantized from); NULL = the file's own
                         * fti.base_model.sha256 key, or none */
    const char *alias;  /* an alias to point at the model once registered (as
                         * fti_registry_promote); NULL = none */
} fti_registry_add_opts;
/* Registers an existing GGUF llama model file (fti-quantize's output, a model from another
 * workspace or tool) with its lineage: the file must load as a llama model (fti_gguf_open and
 * fti_gguf_llama_config checks); its card is built from the file itself: name, "origin":
 * "added", "source" (model_file as given), "weight_type", "config", and the lineage keys fti's
 * trainer writes when present (fti.dataset.version -> "dataset", fti.tokenizer.sha256 ->
 * "tokenizer", fti.base_model.sha256 -> "parent", fti.created -> "trained", fti.train.steps,
 * .tokens, .loss, .val_loss -> "steps", "tokens", "train_loss", "val_loss"). Then as
 * fti_registry_add (copied under its id), and the alias is set.
 * A file registered before (the same SHA-256: a trained model, a file added earlier) keeps its
 * card, created time and all: only the fields of the options given change (name; parent, then
 * with "relation" "derived from"), and a model fti_workspace_gc removed gets its file back.
 * Every argument (name: 1-200 bytes of UTF-8 on one line; alias: as promote; parent: not the
 * model itself nor one of its descendants; the file) is checked before anything is written.
 * Errors: FTI_ERR_INVALID (name, alias, a parent that would make the lineage a cycle), those of
 * fti_gguf_open / fti_gguf_llama_config naming the file, FTI_ERR_NOT_FOUND for an unknown
 * parent, and fti_registry_add's and fti_registry_promote's. Thread safety: as
 * fti_registry_add. */
FTIDEF fti_result fti_registry_add_file(const char *home, const char *model_file,
                                        const fti_registry_add_opts *opts, char id_out[17],
                                        fti_error *err);

/* --- training driver: a dataset version in, a registered model out ---------------------------- */
/*
 * fti_train_run does what build/fti-train does, as a library call (src/07_train_run.c):
 *   1. opens the dataset version (part 04) and its train/val token shards;
 *   2. builds the config from a preset (+ explicit overrides), or loads the parent model from the
 *      registry for fine-tuning / LoRA (same tokenizer required);
 *   3. trains in HOME/runs/<run_key>/ (checkpoint.bin, metrics.jsonl, loss.svg), where run_key
 *      hashes the dataset version and every option that changes the trajectory, so `resume`
 *      continues exactly the same run from its last checkpoint;
 *   4. writes model.gguf (tokenizer and lineage keys, part 06) and registers it with a card.
 *      LoRA runs also write adapter.gguf (GGUF adapter conventions) and register it on its own
 *      (card "type": "lora_adapter", parent = the base); the merged model's parent is the adapter.
 * Reproducible ids: the GGUF holds no creation time unless stamp_created is set (the time is in
 * the registry card), so the same seed, data, options and thread count give the same bytes and
 * the same model id. A run stopped by max_seconds depends on the machine's speed, of course.
 */

typedef enum fti_train_event {
    FTI_TRAIN_EVENT_START = 0, /* the trainer is ready (resumed if asked); stats: the start */
    FTI_TRAIN_EVENT_STEP,      /* one optimizer step is done */
    FTI_TRAIN_EVENT_END        /* training is done; the model is written next */
} fti_train_event;

struct fti_train_run_result;
/* Progress callback, called on the calling thread. */
typedef void (*fti_train_run_fn)(void *user, fti_train_event ev,
                                 const struct fti_train_run_result *run,
                                 const fti_train_stats *stats);
/* Stop request, asked between steps on the calling thread: non-zero stops the run. */
typedef int (*fti_train_stop_fn)(void *user);

/* Options of fti_train_run. Zero = default for every field. */
typedef struct fti_train_run_opts {
    const char *dataset;      /* dataset version: id, prefix, tag or "latest"; NULL = latest */
    const char *preset;       /* preset when training from scratch; NULL = "tiny" */
    fti_model_config config;  /* non-zero dim, n_layers, n_heads, n_kv_heads, hidden_dim,
                               * context_len override the preset (vocab: the dataset's); with
                               * `from` they (and untied) are FTI_ERR_INVALID: the parent's */
    int untied;               /* 1: untied output projection */
    const char *from;         /* fine-tune this registered model (id, prefix, alias); NULL = none */
    const char *name;         /* general.name and the card's name; NULL = "fti-twin" */
    /* The trainer's options. Defaults that differ from fti_trainer_create's: batch 8,
     * max_steps 300, lr 3e-3 for the tiny preset from scratch (else 1e-3), eval_every
     * max_steps / 10, checkpoint_every 100. checkpoint_path is the driver's (ignored here);
     * lora_rank needs `from`; log also receives the driver's notices. */
    fti_train_opts train;
    int resume;               /* 1: continue the run from its checkpoint, if it has one */
    int resume_required;      /* 1 (implies resume): a run without a checkpoint is an error
                               * (FTI_ERR_NOT_FOUND naming the file), not a fresh start */
    int no_overwrite;         /* 1 (without resume): a run that has a checkpoint, or whose model
                               * is registered (finished; also after gc), is not started over:
                               * FTI_ERR_EXISTS, result->stats.step and .total_steps from the
                               * checkpoint (0 if it has none), result->id the run's registered
                               * model ("" if none). 0: such a run starts over, its checkpoint,
                               * metrics and best weights replaced (fti-twin's updates) */
    int keep_best;            /* 1: register the weights of the best validation pass (kept in
                               * the run directory, so resume keeps them), not the last step's;
                               * FTI_ERR_UNSUPPORTED with LoRA (train.lora_rank) */
    /* > 0: early stopping. The run ends after this many validation passes in a row none of
     * which improved on the best validation loss so far, and finishes as at max_steps (the
     * model is written and registered; with keep_best, the best pass's weights), with
     * result->stopped_early set. Part of the run's key when set. 0 = off. */
    uint32_t patience;
    int stamp_created;        /* 1: also write fti.created into the GGUF (ids then differ) */
    /* > 0: fit the run to this many seconds of wall time (the training loop with its validation
     * passes and best-weight saves, not the model's writing): train.max_steps is the first
     * estimate of the schedule's length and its upper bound; every second the driver
     * re-estimates the length from the wall time of the recent steps
     * (fti_trainer_set_total_steps), so the learning rate has decayed when the time is up (or
     * at max_steps, if that comes first), whatever the machine's load did; where max_steps
     * binds, a busy moment leaves the end at max_steps (docs/training.md). Such a run depends on
     * the machine's speed and cannot be resumed (FTI_ERR_INVALID with resume). */
    double fit_seconds;
    fti_train_run_fn progress;
    void *progress_user;
    /* Optional, asked before each step: non-zero stops the run there (the step under way when
     * it changed its answer has finished). The checkpoint is saved (the exact-resume one; not
     * with fit_seconds, whose runs do not resume), no model is written or registered, and
     * fti_train_run returns FTI_ERR_CANCELLED with result->stats at that step. For a signal
     * handler's flag: the library installs no handlers (fti-train does, for SIGINT and
     * SIGTERM). Data-parallel: every rank must answer the same at each step (reduce the flag
     * over the ranks, as fti-train-mpi does). */
    fti_train_stop_fn stop;
    void *stop_user;
} fti_train_run_opts;

/* What a run did. */
typedef struct fti_train_run_result {
    char id[17];              /* the registered model ("" until it is registered) */
    char adapter_id[17];      /* LoRA: the registered adapter, else "" */
    char parent_id[17];       /* the `from` model, else "" */
    char run_key[17];         /* the run directory is HOME/runs/<run_key> */
    char dataset[65];         /* the dataset version id */
    char tokenizer[65];       /* its tokenizer's SHA-256 */
    fti_model_config config;
    size_t n_params;          /* of the model (LoRA: of the base) */
    uint64_t train_tokens;    /* size of the training split */
    uint64_t val_tokens;      /* size of the validation split used (0 = none) */
    int resumed;              /* 1 if the run continued from a checkpoint */
    int used_best;            /* 1 if keep_best replaced the last weights by the best ones */
    uint64_t best_step;       /* used_best: the step those weights are of (stats: the run's) */
    int stopped_early;        /* 1 if patience ended the run before its schedule did */
    fti_train_stats stats;    /* the trainer's numbers at the end */
} fti_train_run_result;

/* Trains on a dataset version of the workspace home and registers the model (see above); result
 * (optional) is filled as the run goes, id last. Errors name the file or option at fault:
 * FTI_ERR_NOT_FOUND (dataset, parent, resume_required's checkpoint), FTI_ERR_MISMATCH
 * (tokenizer or vocabulary differs), FTI_ERR_INVALID (options), FTI_ERR_NUMERIC (training
 * diverged), FTI_ERR_BUSY (another process trains the run: checked first when its directory
 * exists), FTI_ERR_EXISTS (no_overwrite), FTI_ERR_CANCELLED (stop), I/O errors.
 * Data-parallel (train.world_size > 1, e.g. fti_train_mpi_attach): every rank calls it with the
 * same options; rank 0 alone writes (run directory, checkpoints, metrics, best weights, model,
 * registry), the other ranks train and return FTI_OK with result->id "".
 * Thread safety: one run per run directory; registry writes as fti_registry_add. */
FTIDEF fti_result fti_train_run(const char *home, const fti_train_run_opts *opts,
                                fti_train_run_result *result, fti_error *err);

/* Merges a registered LoRA adapter (id, prefix or alias; card "type" "lora_adapter") into its
 * registered base and registers the merged model (parent: the adapter), id_out gets its id.
 * name NULL = the adapter card's name. FTI_ERR_INVALID if the reference is not an adapter,
 * FTI_ERR_FORMAT for a malformed adapter file. Thread safety: as fti_registry_add. */
FTIDEF fti_result fti_train_merge_adapter(const char *home, const char *adapter_ref,
                                          const char *name, char id_out[17], fti_error *err);

/* --- workspace gc: what a long-lived workspace no longer needs ------------------------------ */

/* keep_models or keep_history of none (0 there means the default). */
#define FTI_GC_KEEP_NONE ((size_t)-1)

/* Options of fti_workspace_gc. Zero = default for every field. */
typedef struct fti_workspace_gc_opts {
    size_t keep_models;       /* the newest N registered models keep their files (0 = 3;
                                 FTI_GC_KEEP_NONE: none beyond what aliases keep) */
    size_t keep_history;      /* each alias's last N earlier targets stay, for rollback (0 = 2;
                                 FTI_GC_KEEP_NONE: none, no rollback) */
    size_t keep_versions;     /* the newest N dataset versions stay (0 = 3) */
    double temp_age_s;        /* temp files older than this are stale (0 = 3600 s) */
    int dry_run;              /* 1: change nothing, report and count what would go */
} fti_workspace_gc_opts;

/* What fti_workspace_gc did (or, in a dry run, would do). */
typedef struct fti_workspace_gc_result {
    size_t models_kept, models_removed;
    size_t runs_cleaned;           /* finished runs whose checkpoints and weights went */
    size_t runs_unfinished;        /* runs without a registered model: left alone */
    size_t runs_dead;              /* of those, killed before their first checkpoint and idle
                                      for temp_age_s: their best.bin went */
    size_t memories_removed;       /* HOME/memory/<id>.* of removed models */
    size_t temp_removed;           /* stale temp files of killed writers outside the store */
    fti_store_gc_result store;     /* the feature store's part (fti_store_gc) */
    uint64_t bytes_freed;          /* all of it, the store's included */
} fti_workspace_gc_result;

/* Frees the disk a workspace that `fti-twin update` has run in for months no longer needs
 * (docs/operations.md, "Disk"). Every model an alias points at, each alias's last keep_history
 * earlier targets (rollback), the newest keep_models models and the base model of every kept
 * LoRA adapter stay whole. Every other model loses its files but keeps its card, which gets
 * "removed": <time> (lineage still reads; promote refuses it), and leaves the alias histories.
 * Runs (HOME/runs/<key>) whose model is registered (a card's "run" names them; for a LoRA run
 * the merged model, not only the adapter) lose checkpoint.bin, best.bin and their copies of the
 * weights (metrics.jsonl and loss.svg stay; gc.json records it, and a resume of the run says so);
 * unfinished runs are left alone, except that one killed before its first checkpoint (no
 * checkpoint, no model, nothing written for temp_age_s: nothing can resume it) loses best.bin.
 * HOME/memory/<id>.* of removed models go. Then fti_store_gc keeps the newest keep_versions
 * dataset versions, latest, tags and the dataset of every kept model. Stale temp files (older
 * than temp_age_s) anywhere in the workspace go. One line per removed thing and a summary are
 * appended to report (optional).
 * Errors: FTI_ERR_BUSY while an ingest holds the store lock (not in a dry run); I/O errors
 * naming the file.
 * Thread safety: run it where no update or training runs (fti-twin gc takes the update lock). */
FTIDEF fti_result fti_workspace_gc(const char *home, const fti_workspace_gc_opts *opts,
                                   fti_workspace_gc_result *result, fti_buf *report,
                                   fti_error *err);

/* --- data-parallel training over MPI (only with FTI_MPI defined; src/07_train_mpi.c) ---------- */
#ifdef FTI_MPI
#ifdef __cplusplus
}
#endif
/* the C API only: the removed MPI C++ bindings warn under -Wextra */
#ifndef OMPI_SKIP_MPICXX
#define OMPI_SKIP_MPICXX 1
#endif
#ifndef MPICH_SKIP_MPICXX
#define MPICH_SKIP_MPICXX 1
#endif
#include <mpi.h>
#ifdef __cplusplus
extern "C" {
#endif

/* A rank's view of an MPI communicator for fti_train_reduce_fn. The reduction is deterministic
 * and independent of the MPI library's own reduction order: the gradient is cut into world
 * slices; MPI_Alltoallv sends slice j of every rank to rank j, which sums the world pieces in
 * rank order (0, 1, ..., world-1); MPI_Allgatherv returns the summed slices to every rank (a
 * reduce-scatter + allgather, 2 (world-1)/world n floats sent per rank, like a ring allreduce).
 * Long vectors go in rounds of at most FTI_TRAIN_MPI_SEGMENT floats. */
typedef struct fti_train_mpi {
    MPI_Comm comm;
    int rank, world;
    int local_size;           /* ranks on this node (MPI_COMM_TYPE_SHARED) */
    float *buf;               /* receive buffer of one round */
    size_t cap;
    int *counts, *displs;     /* (2 world): the slices of a round, then the receive layout */
    double *losses;           /* (world) */
    double comm_s;            /* seconds inside the reduction (with waiting), summed */
    uint64_t bytes_sent;      /* by this rank, summed */
    uint64_t reductions;
} fti_train_mpi;

#ifndef FTI_TRAIN_MPI_SEGMENT
#define FTI_TRAIN_MPI_SEGMENT (1u << 22)
#endif

/* Fills m for comm (MPI must be initialised). FTI_ERR_NOMEM, FTI_ERR_IO (an MPI call failed).
 * Thread safety: one thread per object, and MPI's own rules (the trainer calls it from its
 * thread only). */
FTIDEF fti_result fti_train_mpi_init(fti_train_mpi *m, MPI_Comm comm, fti_error *err);
FTIDEF void fti_train_mpi_free(fti_train_mpi *m);
/* Sets o->world_size, o->rank, o->reduce and o->reduce_user for m. */
FTIDEF void fti_train_mpi_attach(fti_train_mpi *m, fti_train_opts *o);
/* The fti_train_reduce_fn (user = fti_train_mpi *). Collective: every rank must call it with
 * the same n. */
FTIDEF fti_result fti_train_mpi_reduce(void *user, float *grads, size_t n, double *loss_sum);

#endif /* FTI_MPI */

#ifdef __cplusplus
}
#endif

#endif /* FTI_NO_TRAIN */
#endif /* FTI_TRAIN_H */
