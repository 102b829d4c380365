/* fti-train: train (or fine-tune) a Llama-style model on a dataset version and register it.
 *
 *   build/fti-train [--home DIR] [--dataset VERSION] [--preset NAME] [--steps N] [--seed S]
 *                   [--threads N] [--checkpoint-every N] [--resume] [options]
 *
 * Example (after build/fti-feature ingest ../shared/data/corpus/bierce_devils_dictionary):
 *   build/fti-train --preset tiny --steps 300
 * The run lives in HOME/runs/<key>/ (checkpoint, metrics.jsonl, loss.svg, model.gguf), where the
 * key is a hash of the dataset version and every option that changes the result; --resume picks
 * the same run up from its last checkpoint. The model is registered in HOME/models/ and the last
 * word printed is its id (see build/fti-registry).
 */
#define FTI_IMPLEMENTATION
#include "fti.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

static void usage(FILE *f) {
    fprintf(f,
        "usage: fti-train [--home DIR] [--dataset VERSION] [--preset NAME] [--steps N] [--seed S]\n"
        "                 [--threads N] [--checkpoint-every N] [--resume] [options]\n"
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
        "  --threads N          worker threads [$FTI_THREADS or all CPUs]\n"
        "  --batch N  --ctx N   sequences per micro-batch [8], tokens each [preset's context]\n"
        "  --accum N            micro-batches per step (gradient accumulation) [1]\n"
        "  --lr F               peak learning rate [1e-3; 3e-3 for tiny]\n"
        "  --warmup N           warmup steps [steps/20]\n"
        "  --weight-decay F     [0.1]   --clip F  global gradient-norm clip [1.0]\n"
        "  --eval-every N       validation every N steps [steps/10]\n"
        "  --checkpoint-every N checkpoint every N steps [100]\n"
        "  --resume             continue the interrupted run with the same options\n"
        "  --from MODEL         fine-tune a registered model (id, prefix or alias); the dataset\n"
        "                       must use the same tokenizer\n"
        "  --lora R             train rank-R LoRA adapters on the frozen --from model\n"
        "  --lora-alpha F       LoRA scale numerator [2R]\n"
        "  --name NAME          name on the model card [fti-twin]\n"
        "  --quiet              no progress bar\n");
}

typedef struct args {
    const char *home, *dataset, *preset, *from, *name;
    uint64_t steps, max_tokens, seed, warmup, eval_every, ckpt_every;
    double max_seconds;
    int threads, resume, quiet;
    size_t batch, ctx, accum;
    float lr, wd, clip, lora_alpha;
    uint32_t lora;
    uint64_t dim, layers, heads, kv_heads, hidden, context;
    int untied;
} args;

static int parse_u64(const char *s, uint64_t *out) {
    char *end;
    unsigned long long v;
    if (!s || !*s || *s == '-') return 0;
    v = strtoull(s, &end, 10);
    if (*end) return 0;
    *out = (uint64_t)v;
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
        int ok = 1, takes = 1;
        if (strcmp(o, "--help") == 0 || strcmp(o, "-h") == 0) {
            usage(stdout);
            exit(0);
        } else if (strcmp(o, "--resume") == 0) {
            a->resume = 1;
            takes = 0;
        } else if (strcmp(o, "--quiet") == 0) {
            a->quiet = 1;
            takes = 0;
        } else if (strcmp(o, "--untied") == 0) {
            a->untied = 1;
            takes = 0;
        } else if (!v) {
            fprintf(stderr, "fti-train: %s needs a value (or is unknown)\n", o);
            return 0;
        } else if (strcmp(o, "--home") == 0) a->home = v;
        else if (strcmp(o, "--dataset") == 0) a->dataset = v;
        else if (strcmp(o, "--preset") == 0) a->preset = v;
        else if (strcmp(o, "--from") == 0) a->from = v;
        else if (strcmp(o, "--name") == 0) a->name = v;
        else if (strcmp(o, "--steps") == 0) ok = parse_u64(v, &a->steps) && a->steps > 0;
        else if (strcmp(o, "--max-tokens") == 0) ok = parse_u64(v, &a->max_tokens);
        else if (strcmp(o, "--seed") == 0) ok = parse_u64(v, &a->seed);
        else if (strcmp(o, "--warmup") == 0) ok = parse_u64(v, &a->warmup);
        else if (strcmp(o, "--dim") == 0) ok = parse_u64(v, &a->dim) && a->dim < 65536;
        else if (strcmp(o, "--layers") == 0) ok = parse_u64(v, &a->layers) && a->layers < 1024;
        else if (strcmp(o, "--heads") == 0) ok = parse_u64(v, &a->heads) && a->heads < 65536;
        else if (strcmp(o, "--kv-heads") == 0)
            ok = parse_u64(v, &a->kv_heads) && a->kv_heads < 65536;
        else if (strcmp(o, "--hidden") == 0) ok = parse_u64(v, &a->hidden) && a->hidden < 262144;
        else if (strcmp(o, "--context") == 0) ok = parse_u64(v, &a->context) && a->context < 65536;
        else if (strcmp(o, "--eval-every") == 0) ok = parse_u64(v, &a->eval_every);
        else if (strcmp(o, "--checkpoint-every") == 0) ok = parse_u64(v, &a->ckpt_every);
        else if (strcmp(o, "--threads") == 0)
            ok = parse_u64(v, &u) && u <= 256, a->threads = (int)u;
        else if (strcmp(o, "--batch") == 0) ok = parse_u64(v, &u) && u > 0, a->batch = (size_t)u;
        else if (strcmp(o, "--ctx") == 0) ok = parse_u64(v, &u) && u > 0, a->ctx = (size_t)u;
        else if (strcmp(o, "--accum") == 0) ok = parse_u64(v, &u) && u > 0, a->accum = (size_t)u;
        else if (strcmp(o, "--lora") == 0) ok = parse_u64(v, &u) && u > 0 && u < 4096,
                                           a->lora = (uint32_t)u;
        else if (strcmp(o, "--lr") == 0) ok = (a->lr = (float)atof(v)) > 0;
        else if (strcmp(o, "--weight-decay") == 0) ok = (a->wd = (float)atof(v)) >= 0;
        else if (strcmp(o, "--clip") == 0) ok = (a->clip = (float)atof(v)) > 0;
        else if (strcmp(o, "--lora-alpha") == 0) ok = (a->lora_alpha = (float)atof(v)) > 0;
        else if (strcmp(o, "--max-seconds") == 0) ok = (a->max_seconds = atof(v)) > 0;
        else {
            fprintf(stderr, "fti-train: unknown option %s (see --help)\n", o);
            return 0;
        }
        if (!ok) {
            fprintf(stderr, "fti-train: bad value for %s: %s\n", o, v);
            return 0;
        }
        i += takes;
    }
    if (a->lora && !a->from) {
        fprintf(stderr, "fti-train: --lora needs --from MODEL (the frozen base)\n");
        return 0;
    }
    return 1;
}

/* --- loading a registered model (fine-tuning) ------------------------------------------------- */

typedef struct parent_model {
    char id[17];
    char tokenizer[80];
    fti_model_config cfg;
    float *params;
} parent_model;

static int load_parent(const char *home, const char *ref, parent_model *p) {
    fti_error err;
    fti_buf card;
    fti_json_doc *doc = NULL;
    fti_gguf *g = NULL;
    size_t i, n_t;
    const char *path;
    memset(p, 0, sizeof(*p));
    memset(&card, 0, sizeof(card));
    if (fti_registry_resolve(home, ref, p->id, &err) != FTI_OK ||
        fti_registry_card(home, p->id, &card, &err) != FTI_OK ||
        fti_json_parse(card.data, card.len, NULL, &doc, NULL, &err) != FTI_OK) {
        fprintf(stderr, "fti-train: --from %s: %s\n", ref, err.msg);
        fti_buf_free(&card);
        return 0;
    }
    snprintf(p->tokenizer, sizeof p->tokenizer, "%s",
             fti_json_get_str(fti_json_root(doc), "tokenizer", ""));
    path = fti_json_get_str(fti_json_root(doc), "path", "");
    if (fti_gguf_open(&g, path, NULL, &err) != FTI_OK ||
        fti_gguf_llama_config(g, &p->cfg, 1, &err) != FTI_OK) {
        fprintf(stderr, "fti-train: --from %s: %s\n", ref, err.msg);
        fti_gguf_close(g);
        fti_json_free(doc);
        fti_buf_free(&card);
        return 0;
    }
    p->params = (float *)fti_malloc(fti_model_n_params(&p->cfg) * sizeof(float));
    n_t = fti_model_n_tensors(&p->cfg);
    for (i = 0; p->params && i < n_t; i++) {
        fti_tensor_info ti;
        const fti_gguf_tensor *t;
        size_t n = fti_model_tensor_info(&p->cfg, i, &ti), k;
        char gname[64];
        snprintf(gname, sizeof gname, "%s.weight", ti.name); /* llama.cpp's names */
        t = fti_gguf_find_tensor(g, gname);
        if (!t) t = fti_gguf_find_tensor(g, ti.name);
        if (!t || t->type != 0 || t->n_elements != n) {
            fprintf(stderr, "fti-train: --from %s: tensor %s is %s (fine-tuning needs F32)\n", ref,
                    ti.name, t ? "not F32" : "missing");
            fti_free(p->params);
            p->params = NULL;
            break;
        }
        for (k = 0; k < n; k++) {
            uint32_t u = fti_load_u32((const unsigned char *)t->data + 4 * k);
            memcpy(&p->params[ti.offset + k], &u, 4);
        }
    }
    fti_gguf_close(g);
    fti_json_free(doc);
    fti_buf_free(&card);
    return p->params != NULL;
}

/* --- metrics log and loss curve --------------------------------------------------------------- */

static void metrics_line(FILE *f, uint64_t step, double loss, double lr, double gnorm,
                         uint64_t tokens, double tok_s, double elapsed, int has_val, double val) {
    if (!f) return;
    /* losses as the trainer's history keeps them (f32), so a resumed log matches */
    fprintf(f, "{\"step\": %llu, \"loss\": %.6f", (unsigned long long)step, (double)(float)loss);
    if (lr >= 0) fprintf(f, ", \"lr\": %.6g, \"grad_norm\": %.6g", lr, gnorm);
    if (tokens) fprintf(f, ", \"tokens\": %llu", (unsigned long long)tokens);
    if (tok_s > 0) fprintf(f, ", \"tok_s\": %.1f, \"elapsed_s\": %.3f", tok_s, elapsed);
    if (has_val) fprintf(f, ", \"val_loss\": %.6f", (double)(float)val);
    fprintf(f, "}\n");
    fflush(f);
}

/* An SVG with the training loss per step (blue) and validation points (orange). */
static void write_svg(const char *path, const float *train, size_t n, const uint64_t *vs,
                      const float *vl, size_t nv) {
    fti_buf b;
    size_t i;
    double lo = 1e30, hi = -1e30, W = 720, H = 360, L = 60, R = 20, T = 20, B = 40;
    memset(&b, 0, sizeof(b));
    for (i = 0; i < n; i++) {
        if (train[i] < lo) lo = train[i];
        if (train[i] > hi) hi = train[i];
    }
    for (i = 0; i < nv; i++) {
        if (vl[i] < lo) lo = vl[i];
        if (vl[i] > hi) hi = vl[i];
    }
    if (n == 0 || !(hi > lo)) {
        lo = 0;
        hi = lo + 1;
    }
#define X(s) (L + (W - L - R) * ((double)(s) - 1.0) / (double)(n > 1 ? n - 1 : 1))
#define Y(v) (T + (H - T - B) * (hi - (double)(v)) / (hi - lo))
    fti_buf_printf(&b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
                   "font-family=\"sans-serif\" font-size=\"11\">\n", W, H);
    fti_buf_printf(&b, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    fti_buf_printf(&b, "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"black\"/>\n",
                   L, H - B, W - R, H - B);
    fti_buf_printf(&b, "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"black\"/>\n",
                   L, T, L, H - B);
    fti_buf_printf(&b, "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"end\">%.3f</text>\n", L - 4,
                   T + 4, hi);
    fti_buf_printf(&b, "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"end\">%.3f</text>\n", L - 4,
                   H - B, lo);
    fti_buf_printf(&b, "<text x=\"%.0f\" y=\"%.0f\">1</text>\n", L, H - B + 14);
    fti_buf_printf(&b, "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"end\">step %lu</text>\n",
                   W - R, H - B + 14, (unsigned long)n);
    fti_buf_printf(&b, "<text x=\"%.0f\" y=\"%.0f\" fill=\"#1f77b4\">train loss</text>\n", L + 10,
                   T + 12);
    fti_buf_printf(&b, "<text x=\"%.0f\" y=\"%.0f\" fill=\"#ff7f0e\">validation loss</text>\n",
                   L + 90, T + 12);
    fti_buf_puts(&b, "<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"1\" points=\"");
    for (i = 0; i < n; i++) fti_buf_printf(&b, "%.1f,%.1f ", X(i + 1), Y(train[i]));
    fti_buf_puts(&b,
                 "\"/>\n<polyline fill=\"none\" stroke=\"#ff7f0e\" stroke-width=\"2\" points=\"");
    for (i = 0; i < nv; i++) fti_buf_printf(&b, "%.1f,%.1f ", X(vs[i]), Y(vl[i]));
    fti_buf_puts(&b, "\"/>\n");
    for (i = 0; i < nv; i++)
        fti_buf_printf(&b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"#ff7f0e\"/>\n",
                       X(vs[i]), Y(vl[i]));
    fti_buf_puts(&b, "</svg>\n");
#undef X
#undef Y
    if (!b.oom) fti_file_write_atomic(path, b.data, b.len, NULL);
    fti_buf_free(&b);
}

/* --- the model file --------------------------------------------------------------------------- */

static int write_model(const char *path, const fti_model_config *cfg, const float *params,
                       const char *tok_path, const fti_gguf_lineage *lin) {
    fti_error err;
    fti_result r;
    fti_gguf_tokenizer_meta meta, *mp = NULL;
#ifdef FTI_TOKENIZER_H
    fti_tokenizer *tok = NULL;
    fti_tokenizer_gguf tg;
    int have_tg = 0;
    memset(&tg, 0, sizeof(tg));
    if (tok_path && fti_tokenizer_load(tok_path, NULL, &tok, &err) == FTI_OK &&
        fti_tokenizer_gguf_make(tok, &tg) == FTI_OK) {
        have_tg = 1;
        memset(&meta, 0, sizeof(meta));
        meta.n_tokens = tg.n_tokens;
        meta.tokens = (const char *const *)tg.tokens;
        meta.token_types = tg.token_types;
        meta.n_merges = tg.n_merges;
        meta.merges = (const char *const *)tg.merges;
        meta.model = tg.model;
        meta.pre = tg.pre;
        meta.bos_id = (int32_t)tg.bos_id;
        meta.eos_id = (int32_t)tg.eos_id;
        meta.pad_id = -1;
        if (meta.n_tokens == cfg->vocab_size) mp = &meta;
    }
#else
    (void)tok_path;
    (void)meta;
#endif
    r = fti_gguf_write_llama(path, cfg, params, mp, lin, NULL, &err);
#ifdef FTI_TOKENIZER_H
    if (have_tg) fti_tokenizer_gguf_free(&tg);
    fti_tokenizer_free(tok);
#endif
    if (r != FTI_OK) {
        fprintf(stderr, "fti-train: %s: %s\n", path, err.msg);
        return 0;
    }
    return 1;
}

/* A LoRA adapter in llama.cpp's GGUF adapter conventions. */
static int write_adapter(const char *path, const fti_model_config *cfg, const float *ad,
                         uint32_t rank, float alpha) {
    fti_gguf_writer *w = NULL;
    fti_error err;
    fti_result r;
    size_t i, nt = fti_lora_n_tensors(cfg);
    if (fti_gguf_writer_create(&w, 0) != FTI_OK) return 0;
    r = fti_gguf_set_str(w, "general.architecture", "llama");
    if (r == FTI_OK) r = fti_gguf_set_str(w, "general.type", "adapter");
    if (r == FTI_OK) r = fti_gguf_set_str(w, "adapter.type", "lora");
    if (r == FTI_OK) r = fti_gguf_set_f32(w, "adapter.lora.alpha", alpha);
    for (i = 0; r == FTI_OK && i < nt; i++) {
        fti_lora_tensor lt;
        fti_tensor_info ti;
        char name[96];
        uint64_t ne[2];
        fti_lora_tensor_get(cfg, rank, i, &lt);
        fti_model_tensor_info(cfg, lt.tensor, &ti);
        snprintf(name, sizeof name, "%s.weight.lora_a", ti.name);
        ne[0] = lt.cols; /* A (r, in) */
        ne[1] = rank;
        r = fti_gguf_add_tensor(w, name, 2, ne, 0, ad + lt.a_offset, (size_t)rank * lt.cols * 4);
        snprintf(name, sizeof name, "%s.weight.lora_b", ti.name);
        ne[0] = rank; /* B (out, r) */
        ne[1] = lt.rows;
        if (r == FTI_OK)
            r = fti_gguf_add_tensor(w, name, 2, ne, 0, ad + lt.b_offset,
                                    (size_t)rank * lt.rows * 4);
    }
    if (r == FTI_OK) r = fti_gguf_writer_write(w, path, &err);
    else snprintf(err.msg, sizeof err.msg, "%s", fti_result_str(r));
    fti_gguf_writer_free(w);
    if (r != FTI_OK) fprintf(stderr, "fti-train: %s: %s\n", path, err.msg);
    return r == FTI_OK;
}

/* Built with -DFTI_MPI (mk/mpi.mk: build/fti-train-mpi), the program trains data-parallel under
 * mpirun (docs/training-mpi.md): every rank trains; rank 0 alone writes the run directory, the
 * model and the card and prints. */
#ifdef FTI_MPI
static fti_train_mpi g_mpi;
#define IS_RANK0 (g_mpi.rank == 0)
#define main train_main
#else
#define IS_RANK0 1
#endif

static void on_log(void *user, fti_log_level level, const char *msg) {
    (void)user;
    if (level >= FTI_LOG_WARN) fprintf(stderr, "fti-train: %s\n", msg);
}

int main(int argc, char **argv) {
    args a;
    char *home = NULL, *runs = NULL, *run_dir = NULL, *ckpt = NULL, *metrics = NULL, *svg = NULL;
    char *gguf = NULL, *adapter = NULL;
    char key_hex[17], id[17], cpu[160], ts[32];
    fti_dataset *ds = NULL;
    const fti_token_shard *sh_tr, *sh_va;
    fti_model_config cfg;
    fti_train_opts o;
    fti_token_array tr, va;
    fti_trainer *t = NULL;
    fti_error err;
    parent_model parent;
    FILE *mf = NULL;
    fti_progress bar;
    fti_train_stats st;
    uint64_t key;
    int rc = 1, resumed = 0;
    const float *hist = NULL, *vl = NULL;
    const uint64_t *vs = NULL;
    size_t n_hist = 0, n_val = 0, i;
    const char *tok_sha;

    memset(&parent, 0, sizeof(parent));
    memset(&st, 0, sizeof(st));
    if (!parse_args(argc, argv, &a)) return 2;
    if (!IS_RANK0) a.quiet = 1;
    home = fti_workspace_resolve(a.home);
    if (!home) return 1;
    if (fti_dataset_open(&ds, home, a.dataset, &err) != FTI_OK) {
        fprintf(stderr, "fti-train: dataset %s in %s: %s\n", a.dataset ? a.dataset : "latest",
                home, err.msg);
        goto done;
    }
    sh_tr = fti_dataset_shard(ds, FTI_SPLIT_TRAIN);
    sh_va = fti_dataset_shard(ds, FTI_SPLIT_VAL);
    tok_sha = fti_dataset_tokenizer_sha256(ds);
    if (!sh_tr || !tok_sha) {
        fprintf(stderr, "fti-train: dataset %s has no tokenizer or token shards (ingest without "
                "--no-tokenizer)\n", fti_dataset_id(ds));
        goto done;
    }
    /* the model configuration: a preset, or the parent's */
    memset(&cfg, 0, sizeof(cfg));
    if (a.from) {
        if (!load_parent(home, a.from, &parent)) goto done;
        if (strcmp(parent.tokenizer, tok_sha) != 0) {
            fprintf(stderr, "fti-train: --from %s was trained with tokenizer %.16s..., dataset %s "
                    "uses %.16s...: fine-tuning needs the same tokenizer\n", parent.id,
                    parent.tokenizer, fti_dataset_id(ds), tok_sha);
            goto done;
        }
        cfg = parent.cfg;
    } else {
        cfg.vocab_size = sh_tr->vocab_size;
        if (fti_model_preset(a.preset, &cfg) != FTI_OK) {
            fprintf(stderr, "fti-train: unknown preset %s (tiny, small, stories15M, stories42M, "
                    "stories110M)\n", a.preset);
            goto done;
        }
    }
    if (!a.from) { /* explicit config values override the preset */
        if (a.dim) cfg.dim = (uint32_t)a.dim;
        if (a.layers) cfg.n_layers = (uint32_t)a.layers;
        if (a.heads) cfg.n_heads = (uint32_t)a.heads;
        if (a.kv_heads || a.heads) cfg.n_kv_heads = (uint32_t)a.kv_heads;
        if (a.hidden) cfg.hidden_dim = (uint32_t)a.hidden;
        if (a.context) cfg.context_len = (uint32_t)a.context;
        if (a.untied) cfg.tied_embeddings = 0;
        if (fti_model_config_resolve(&cfg, &err) != FTI_OK) {
            fprintf(stderr, "fti-train: %s\n", err.msg);
            goto done;
        }
    }
    if (cfg.vocab_size != sh_tr->vocab_size) {
        fprintf(stderr, "fti-train: model vocabulary %u != dataset vocabulary %u\n",
                (unsigned)cfg.vocab_size, (unsigned)sh_tr->vocab_size);
        goto done;
    }
    memset(&o, 0, sizeof(o));
    o.batch = a.batch ? a.batch : 8;
    o.ctx = a.ctx ? a.ctx : cfg.context_len;
    o.grad_accum = a.accum;
    o.lr = a.lr ? a.lr : (!a.from && strcmp(a.preset, "tiny") == 0 ? 3e-3f : 1e-3f);
    o.max_steps = a.steps;
    o.max_tokens = a.max_tokens;
    o.max_seconds = a.max_seconds;
    o.warmup_steps = a.warmup;
    o.grad_clip = a.clip;
    o.adamw.weight_decay = a.wd > 0 ? a.wd : (a.wd < 0 ? -1.0f : 0.0f);
    o.eval_every = a.eval_every ? a.eval_every : (a.steps >= 10 ? a.steps / 10 : 1);
    o.seed = a.seed;
    o.n_threads = a.threads;
    o.checkpoint_every = a.ckpt_every ? a.ckpt_every : 100;
    o.lora_rank = a.lora;
    o.lora_alpha = a.lora_alpha;
    o.log = on_log;
#ifdef FTI_MPI
    fti_train_mpi_attach(&g_mpi, &o); /* threads: the node's CPUs shared by its ranks */
    if (!a.threads) o.n_threads = fti_cpu_count() / g_mpi.local_size > 1 ?
                                  fti_cpu_count() / g_mpi.local_size : 1;
#endif
    /* the run directory: a key over everything that changes the trajectory */
    {
        char buf[1024];
        snprintf(buf, sizeof buf, "%s|%s|%s|%u,%u,%u,%u,%u,%u,%d|%llu|%llu|%llu|%lu|%lu|%lu|%.9g|"
                 "%llu|%.9g|%.9g|%llu|%u|%.9g|%llu", fti_dataset_id(ds), a.from ? parent.id : "-",
                 a.preset, (unsigned)cfg.dim, (unsigned)cfg.n_layers, (unsigned)cfg.n_heads,
                 (unsigned)cfg.n_kv_heads, (unsigned)cfg.hidden_dim, (unsigned)cfg.context_len,
                 cfg.tied_embeddings,
                 (unsigned long long)a.steps, (unsigned long long)a.max_tokens,
                 (unsigned long long)a.seed, (unsigned long)o.batch, (unsigned long)o.ctx,
                 (unsigned long)a.accum, o.lr, (unsigned long long)a.warmup, a.wd, a.clip,
                 (unsigned long long)o.eval_every, (unsigned)a.lora, a.lora_alpha,
                 (unsigned long long)cfg.vocab_size);
        key = fti_hash64(buf, strlen(buf), 0x72756e73);
        snprintf(key_hex, sizeof key_hex, "%016llx", (unsigned long long)key);
    }
    runs = fti_path_join(home, "runs");
    run_dir = runs ? fti_path_join(runs, key_hex) : NULL;
    ckpt = run_dir ? fti_path_join(run_dir, "checkpoint.bin") : NULL;
    metrics = run_dir ? fti_path_join(run_dir, "metrics.jsonl") : NULL;
    svg = run_dir ? fti_path_join(run_dir, "loss.svg") : NULL;
    gguf = run_dir ? fti_path_join(run_dir, "model.gguf") : NULL;
    adapter = run_dir ? fti_path_join(run_dir, "adapter.gguf") : NULL;
    if (!ckpt || !metrics || !svg || !gguf || !adapter) goto done;
    if (IS_RANK0 && fti_mkdirs(run_dir, &err) != FTI_OK) {
        fprintf(stderr, "fti-train: %s\n", err.msg);
        goto done;
    }
    o.checkpoint_path = ckpt;
    tr.data = sh_tr->data;
    tr.n_tokens = (size_t)sh_tr->count;
    tr.token_bytes = (int)sh_tr->width;
    memset(&va, 0, sizeof(va));
    if (sh_va && sh_va->count > o.ctx + 1) {
        va.data = sh_va->data;
        va.n_tokens = (size_t)sh_va->count;
        va.token_bytes = (int)sh_va->width;
    }
    if (fti_trainer_create(&cfg, parent.params, &o, tr, va, &t, &err) != FTI_OK) {
        fprintf(stderr, "fti-train: %s\n", err.msg);
        goto done;
    }
    if (a.resume) {
        if (fti_path_exists(ckpt)) {
            if (fti_trainer_resume(t, ckpt, &err) != FTI_OK) {
                fprintf(stderr, "fti-train: cannot resume: %s\n", err.msg);
                goto done;
            }
            resumed = 1;
        } else if (!a.quiet) {
            fprintf(stderr, "fti-train: no checkpoint in %s: starting the run\n", run_dir);
        }
    }
    /* metrics: rewritten from the checkpoint's history on resume, then appended */
    mf = IS_RANK0 ? fopen(metrics, "w") : NULL;
    fti_trainer_history(t, &hist, &n_hist, &vs, &vl, &n_val);
    {
        size_t k = 0;
        for (i = 0; i < n_hist; i++) {
            int hv = k < n_val && vs[k] == i + 1;
            metrics_line(mf, i + 1, hist[i], -1, 0, 0, 0, 0, hv, hv ? vl[k] : 0);
            if (hv) k++;
        }
    }
    fti_trainer_stats_get(t, &st);
#ifdef FTI_MPI
    { /* every rank must start from the same step (a checkpoint on a filesystem all ranks see) */
        unsigned long long s0 = st.step, lo = 0, hi = 0;
        MPI_Allreduce(&s0, &lo, 1, MPI_UNSIGNED_LONG_LONG, MPI_MIN, g_mpi.comm);
        MPI_Allreduce(&s0, &hi, 1, MPI_UNSIGNED_LONG_LONG, MPI_MAX, g_mpi.comm);
        if (lo != hi) {
            fprintf(stderr, "fti-train: rank %d resumed at step %llu, another at %llu: the run "
                    "directory must be on a filesystem every rank sees\n", g_mpi.rank, s0,
                    s0 == lo ? hi : lo);
            goto done;
        }
    }
#endif
    if (!a.quiet) {
        fprintf(stderr, "fti-train: %s model, %lu parameters%s, dataset %.16s (%lu train / %lu val "
                "tokens), run %s%s\n", a.from ? "fine-tuning" : a.preset,
                (unsigned long)fti_model_n_params(&cfg),
                a.lora ? " (LoRA adapters only)" : "", fti_dataset_id(ds),
                (unsigned long)tr.n_tokens, (unsigned long)va.n_tokens, key_hex,
                resumed ? " (resumed)" : "");
        fti_progress_begin(&bar, stderr, "train", "step", st.total_steps);
        fti_progress_update(&bar, st.step, NULL);
    }
    while (!fti_trainer_done(t)) {
        char extra[96];
        if (fti_trainer_step(t, &st, &err) != FTI_OK) {
            if (!a.quiet) fti_progress_end(&bar, NULL);
            fprintf(stderr, "fti-train: %s\n", err.msg);
            goto done;
        }
        metrics_line(mf, st.step, st.loss, st.lr, st.grad_norm, st.tokens_seen, st.tokens_per_s,
                     st.elapsed_s, st.evaluated, st.val_loss);
        if (!a.quiet) {
            if (st.evaluated)
                snprintf(extra, sizeof extra, "loss %.4f val %.4f %.0f tok/s", st.loss,
                         st.val_loss, st.tokens_per_s);
            else
                snprintf(extra, sizeof extra, "loss %.4f %.0f tok/s", st.loss, st.tokens_per_s);
            fti_progress_update(&bar, st.step, extra);
        }
    }
    if (!a.quiet) fti_progress_end(&bar, NULL);
    if (mf) fclose(mf);
    mf = NULL;
    if (!IS_RANK0) { /* the model and the card are rank 0's */
        rc = 0;
        goto done;
    }
    fti_trainer_stats_get(t, &st);
    fti_trainer_history(t, &hist, &n_hist, &vs, &vl, &n_val);
    write_svg(svg, hist, n_hist, vs, vl, n_val);
    /* the model file, then the registry */
    {
        fti_gguf_lineage lin;
        fti_buf card, cfgjson;
        fti_jw w;
        struct utsname un;
        const char *datasets[1];
        uint32_t rank = 0;
        float alpha = 0;
        const float *ad = fti_trainer_lora(t, &rank, &alpha);
        memset(&lin, 0, sizeof(lin));
        memset(&card, 0, sizeof(card));
        memset(&cfgjson, 0, sizeof(cfgjson));
        fti_time_iso8601(fti_time_wall(), ts);
        datasets[0] = fti_dataset_id(ds);
        fti_jw_init(&w, &cfgjson, 0);
        fti_jw_obj_begin(&w);
        fti_jw_key(&w, "preset"); fti_jw_str(&w, a.from ? "(parent)" : a.preset);
        fti_jw_key(&w, "vocab_size"); fti_jw_int(&w, cfg.vocab_size);
        fti_jw_key(&w, "dim"); fti_jw_int(&w, cfg.dim);
        fti_jw_key(&w, "n_layers"); fti_jw_int(&w, cfg.n_layers);
        fti_jw_key(&w, "n_heads"); fti_jw_int(&w, cfg.n_heads);
        fti_jw_key(&w, "n_kv_heads"); fti_jw_int(&w, cfg.n_kv_heads ? cfg.n_kv_heads : cfg.n_heads);
        fti_jw_key(&w, "hidden_dim"); fti_jw_int(&w, cfg.hidden_dim);
        fti_jw_key(&w, "context_len"); fti_jw_int(&w, cfg.context_len);
        fti_jw_key(&w, "rope_base"); fti_jw_num(&w, cfg.rope_base ? cfg.rope_base : 10000.0);
        fti_jw_key(&w, "norm_eps"); fti_jw_num(&w, cfg.norm_eps ? cfg.norm_eps : 1e-5);
        fti_jw_key(&w, "tied_embeddings"); fti_jw_bool(&w, cfg.tied_embeddings);
        fti_jw_key(&w, "n_params"); fti_jw_int(&w, (int64_t)fti_model_n_params(&cfg));
        fti_jw_obj_end(&w);
        lin.name = a.name;
        lin.datasets = datasets;
        lin.n_datasets = 1;
        lin.dataset_version = fti_dataset_id(ds);
        lin.tokenizer_sha256 = tok_sha;
        lin.train_config = cfgjson.data;
        lin.train_steps = st.step;
        lin.train_tokens = st.tokens_seen;
        lin.train_loss = st.loss;
        lin.val_loss = st.val_loss == st.val_loss ? st.val_loss : 0;
        lin.created = ts;
        if (a.from) lin.base_model_id = parent.id;
        if (!write_model(gguf, &cfg, fti_trainer_params(t), fti_dataset_tokenizer_path(ds), &lin))
            goto done;
        if (ad && !write_adapter(adapter, &cfg, ad, rank, alpha)) goto done;
        fti_cpu_describe(cpu, sizeof cpu);
        if (uname(&un) != 0) memset(&un, 0, sizeof(un));
        fti_jw_init(&w, &card, 1);
        fti_jw_obj_begin(&w);
        fti_jw_key(&w, "name"); fti_jw_str(&w, a.name);
        fti_jw_key(&w, "architecture"); fti_jw_str(&w, "llama");
        fti_jw_key(&w, "dataset"); fti_jw_str(&w, fti_dataset_id(ds));
        fti_jw_key(&w, "tokenizer"); fti_jw_str(&w, tok_sha);
        fti_jw_key(&w, "parent");
        if (a.from) fti_jw_str(&w, parent.id);
        else fti_jw_null(&w);
        fti_jw_key(&w, "val_loss");
        fti_jw_num(&w, st.val_loss);
        fti_jw_key(&w, "best_val_loss"); fti_jw_num(&w, st.best_val_loss);
        fti_jw_key(&w, "val_perplexity"); fti_jw_num(&w, exp(st.val_loss));
        fti_jw_key(&w, "train_loss"); fti_jw_num(&w, st.loss);
        fti_jw_key(&w, "tokens"); fti_jw_int(&w, (int64_t)st.tokens_seen);
        fti_jw_key(&w, "steps"); fti_jw_int(&w, (int64_t)st.step);
        fti_jw_key(&w, "wall_time_s"); fti_jw_num(&w, st.elapsed_s);
        fti_jw_key(&w, "machine");
        fti_jw_obj_begin(&w);
        fti_jw_key(&w, "host"); fti_jw_str(&w, un.nodename);
        fti_jw_key(&w, "os"); fti_jw_str(&w, un.sysname);
        fti_jw_key(&w, "arch"); fti_jw_str(&w, un.machine);
        fti_jw_key(&w, "cpu"); fti_jw_str(&w, cpu);
        fti_jw_key(&w, "threads"); fti_jw_int(&w, a.threads ? a.threads : fti_cpu_count());
        fti_jw_obj_end(&w);
        fti_jw_key(&w, "config");
        {
            fti_json_doc *cd = NULL;
            if (fti_json_parse(cfgjson.data, cfgjson.len, NULL, &cd, NULL, NULL) == FTI_OK) {
                /* re-emit the config object through the writer */
                const fti_json *c;
                fti_jw_obj_begin(&w);
                for (c = fti_json_root(cd)->child; c; c = c->next) {
                    fti_jw_key(&w, c->key);
                    if (c->type == FTI_JSON_STRING) fti_jw_str(&w, c->str);
                    else if (c->type == FTI_JSON_TRUE || c->type == FTI_JSON_FALSE)
                        fti_jw_bool(&w, c->type == FTI_JSON_TRUE);
                    else if (c->is_int) fti_jw_int(&w, c->i);
                    else fti_jw_num(&w, c->num);
                }
                fti_jw_obj_end(&w);
                fti_json_free(cd);
            } else {
                fti_jw_null(&w);
            }
        }
        fti_jw_key(&w, "hyper");
        fti_jw_obj_begin(&w);
        fti_jw_key(&w, "batch"); fti_jw_int(&w, (int64_t)o.batch);
        fti_jw_key(&w, "ctx"); fti_jw_int(&w, (int64_t)o.ctx);
        fti_jw_key(&w, "grad_accum"); fti_jw_int(&w, (int64_t)(a.accum ? a.accum : 1));
        fti_jw_key(&w, "lr"); fti_jw_num(&w, o.lr);
        fti_jw_key(&w, "schedule"); fti_jw_str(&w, "warmup+cosine");
        fti_jw_key(&w, "max_steps"); fti_jw_int(&w, (int64_t)a.steps);
        fti_jw_key(&w, "seed"); fti_jw_int(&w, (int64_t)a.seed);
        fti_jw_key(&w, "weight_decay"); fti_jw_num(&w, a.wd ? a.wd : 0.1);
        fti_jw_key(&w, "grad_clip"); fti_jw_num(&w, a.clip ? a.clip : 1.0);
        fti_jw_key(&w, "optimizer"); fti_jw_str(&w, "adamw(0.9,0.95,1e-8)");
        fti_jw_key(&w, "eval_every"); fti_jw_int(&w, (int64_t)o.eval_every);
        if (a.lora) {
            fti_jw_key(&w, "lora_rank"); fti_jw_int(&w, a.lora);
            fti_jw_key(&w, "lora_alpha"); fti_jw_num(&w, alpha);
        }
        fti_jw_obj_end(&w);
        fti_jw_key(&w, "run"); fti_jw_str(&w, run_dir);
        fti_jw_key(&w, "metrics"); fti_jw_str(&w, metrics);
        fti_jw_key(&w, "loss_curve"); fti_jw_str(&w, svg);
        if (ad) {
            fti_jw_key(&w, "adapter"); fti_jw_str(&w, adapter);
        }
        fti_jw_obj_end(&w);
        if (card.oom ||
            fti_registry_add(home, gguf, card.data, card.len, id, &err) != FTI_OK) {
            fprintf(stderr, "fti-train: cannot register the model: %s\n",
                    card.oom ? "out of memory" : err.msg);
            fti_buf_free(&card);
            fti_buf_free(&cfgjson);
            goto done;
        }
        fti_buf_free(&card);
        fti_buf_free(&cfgjson);
    }
    printf("steps %llu  tokens %llu  train loss %.4f  val loss %.4f (best %.4f)  %.1f s\n",
           (unsigned long long)st.step, (unsigned long long)st.tokens_seen, st.loss, st.val_loss,
           st.best_val_loss, st.elapsed_s);
    printf("run %s\n", run_dir);
    printf("model %s\n", id);
    rc = 0;
done:
    if (mf) fclose(mf);
    fti_trainer_free(t);
    fti_dataset_close(ds);
    fti_free(parent.params);
    fti_free(home);
    fti_free(runs);
    fti_free(run_dir);
    fti_free(ckpt);
    fti_free(metrics);
    fti_free(svg);
    fti_free(gguf);
    fti_free(adapter);
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
    if (rc != 0 && g_mpi.world > 1) MPI_Abort(MPI_COMM_WORLD, rc); /* no rank left waiting */
    if (IS_RANK0 && g_mpi.world > 1)
        fprintf(stderr, "fti-train: %d ranks, %.3f s in the gradient reduction (%.1f MB sent by "
                "rank 0)\n", g_mpi.world, g_mpi.comm_s, (double)g_mpi.bytes_sent / 1e6);
    fti_train_mpi_free(&g_mpi);
    MPI_Finalize();
    return rc;
}
#endif
