/* === train: the training driver (dataset version -> registered model) === */
/*
 * fti_train_run is the whole of `fti-train` minus the command line: it wires part 04's dataset
 * versions, part 05's configs, this part's trainer and registry and part 06's GGUF writer.
 * The run directory HOME/runs/<key>/ holds:
 *   checkpoint.bin   the trainer's checkpoint (exact resume)
 *   metrics.jsonl    one JSON line per step (rewritten from the checkpoint's history on resume)
 *   loss.svg         training and validation loss curve
 *   best.bin         keep_best only: the weights of the best validation pass (atomic, SHA-256)
 *   model.gguf       the model, then copied into the registry
 *   adapter.gguf     LoRA only: the adapter
 *   run.json         what the run needs to resume: {"run", "dataset", "from"} (fti_workspace_gc
 *                    keeps that dataset version and model while the run is unfinished)
 *   .lock            flock'ed while a process trains the run: a second one gets FTI_ERR_BUSY
 * The key hashes everything that changes the trajectory (dataset, parent, config, every trainer
 * option that matters, the thread count does not), the same string fti-train has always used, so
 * runs started by older builds resume.
 */
#include "07_train.h"
#include "03_tokenizer.h"
#include "04_store.h"
#include "06_format.h"
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#if defined(__unix__) || defined(__APPLE__)
#include <sys/utsname.h>
#define FTI__TR_UNAME 1
#endif

#ifndef FTI_NO_TRAIN

/* --- the parent model of a fine-tune ---------------------------------------------------------- */

typedef struct fti__tr_parent {
    char id[17];
    char tokenizer[80];
    char name[64];
    fti_model_config cfg;
    float *params; /* (n_params) */
} fti__tr_parent;

/* Loads a registered model (card + F32/F16/Q weights decoded to f32). */
static fti_result fti__tr_load_parent(const char *home, const char *ref, fti__tr_parent *p,
                                      fti_error *err) {
    fti_buf card;
    fti_json_doc *doc = NULL;
    fti_gguf *g = NULL;
    fti_result r;
    const char *path;
    memset(p, 0, sizeof(*p));
    memset(&card, 0, sizeof(card));
    if ((r = fti_registry_resolve(home, ref, p->id, err)) != FTI_OK ||
        (r = fti_registry_card(home, p->id, &card, err)) != FTI_OK ||
        (r = fti_json_parse(card.data, card.len, NULL, &doc, NULL, err)) != FTI_OK) {
        fti_buf_free(&card);
        return r;
    }
    if (fti_json_get(fti_json_root(doc), "removed")) { /* not "model.gguf: cannot open" */
        r = fti__reg_verify_card(p->id, fti_json_root(doc), NULL, err); /* (it says so) */
        goto done;
    }
    snprintf(p->tokenizer, sizeof p->tokenizer, "%s",
             fti_json_get_str(fti_json_root(doc), "tokenizer", ""));
    snprintf(p->name, sizeof p->name, "%s", fti_json_get_str(fti_json_root(doc), "name", ""));
    if (strcmp(fti_json_get_str(fti_json_root(doc), "type", "model"), "lora_adapter") == 0) {
        r = fti_error_set(err, FTI_ERR_INVALID, "model %s is a LoRA adapter, not a model (merge "
                          "it first: fti-registry merge %s)", p->id, p->id);
        goto done;
    }
    path = fti_json_get_str(fti_json_root(doc), "path", "");
    /* the file the card describes: a damaged or replaced one would train from other weights
     * (flipped bits in a tensor: "step 1: loss is not finite", or worse, nothing); checked
     * against the card read above (fti_registry_verify would resolve and read it again) */
    if ((r = fti__reg_verify_card(p->id, fti_json_root(doc), NULL, err)) != FTI_OK) goto done;
    if ((r = fti_gguf_open(&g, path, NULL, err)) != FTI_OK ||
        (r = fti_gguf_llama_config(g, &p->cfg, 1, err)) != FTI_OK)
        goto done;
    p->params = (float *)fti_malloc(fti_model_n_params(&p->cfg) * sizeof(float));
    if (!p->params) {
        r = fti_error_set(err, FTI_ERR_NOMEM, "%s: out of memory for the weights", path);
        goto done;
    }
    r = fti_gguf_llama_params(g, &p->cfg, p->params, err);
done:
    if (r != FTI_OK) {
        fti_free(p->params);
        p->params = NULL;
    }
    fti_gguf_close(g);
    fti_json_free(doc);
    fti_buf_free(&card);
    return r;
}

/* The run's lock, RUN_DIR/.lock (flock, exclusive, not waited for): FTI_ERR_BUSY while another
 * process trains the same run. *fd: the descriptor to close (-1 on an error). */
FTI__UNUSED /* only fti_train_run uses it: unused under FTI_NO_STORE */
static fti_result fti__tr_run_lock(const char *run_dir, int *fd, fti_error *err) {
    char *path = fti_path_join(run_dir, ".lock");
    fti_result r = FTI_OK;
    *fd = -1;
    if (!path) return fti_error_set(err, FTI_ERR_NOMEM, "train: out of memory");
    if ((r = fti__lock_file(path, 0, 0, fd, err)) == FTI_ERR_BUSY)
        r = fti_error_set(err, FTI_ERR_BUSY, "%s: another process is training this run (same "
                          "dataset and options)", path);
    fti_free(path);
    return r;
}

/* The registered model (not a LoRA adapter: the merged model comes last) whose card names run
 * `key` ("run": HOME/runs/<key>) into id (16 hex + NUL); 1 if there is one. Cards removed by gc
 * count: the run finished. A registry that cannot be read has none. With ck (the run's
 * checkpoint: step, tokens) only a card whose run ended there counts (its run_steps/run_tokens,
 * else steps/tokens; a card without them counts): a checkpoint short of every registered model
 * of the run is a later start (--restart) that was stopped, not the finished run. */
typedef struct fti__tr_run_find {
    const char *key;
    const uint64_t *ck;
    char *id;
} fti__tr_run_find;

FTI__UNUSED /* only fti_train_run uses it: unused under FTI_NO_STORE */
static int fti__tr_run_card(void *user, const char *id, const fti_json *c) {
    fti__tr_run_find *f = (fti__tr_run_find *)user;
    int found = strcmp(fti_json_get_str(c, "type", ""), "lora_adapter") != 0 &&
                strcmp(fti_path_base(fti_json_get_str(c, "run", "")), f->key) == 0;
    if (found && f->ck) {
        int64_t st = fti_json_get_int(c, "run_steps", fti_json_get_int(c, "steps", -1));
        int64_t tk = fti_json_get_int(c, "run_tokens", fti_json_get_int(c, "tokens", -1));
        found = st < 0 || tk < 0 || ((uint64_t)st == f->ck[0] && (uint64_t)tk == f->ck[1]);
    }
    if (found) memcpy(f->id, id, 17);
    return found;
}

FTI__UNUSED /* only fti_train_run uses it: unused under FTI_NO_STORE */
static int fti__tr_run_model(const char *home, const char *key, const uint64_t *ck,
                             char id[17]) {
    fti__tr_run_find f;
    f.key = key;
    f.ck = ck;
    f.id = id;
    id[0] = 0;
    (void)fti_registry_each(home, fti__tr_run_card, &f, NULL);
    return id[0] != 0;
}

/* no_overwrite without resume: FTI_ERR_EXISTS when the run in run_dir has a checkpoint or a
 * registered model (finished, perhaps cleaned by gc since), with res->stats.step and
 * .total_steps from the checkpoint and res->id the model; else FTI_OK (no run, or one killed
 * before its first checkpoint: nothing there to resume). */
FTI__UNUSED /* only fti_train_run uses it: unused under FTI_NO_STORE */
static fti_result fti__tr_no_overwrite(const char *home, const char *run_dir, const char *ckpt,
                                       fti_train_run_result *res, fti_error *err) {
    uint64_t step = 0, tokens = 0, total = 0, ck[2];
    int has_ckpt = fti_path_exists(ckpt), peeked;
    if (!fti_path_is_dir(run_dir)) return FTI_OK;
    peeked = has_ckpt && fti__ckpt_peek(ckpt, &step, &tokens, &total, NULL) == FTI_OK;
    ck[0] = step;
    ck[1] = tokens;
    if (!fti__tr_run_model(home, res->run_key, peeked ? ck : NULL, res->id)) res->id[0] = 0;
    if (!has_ckpt && !res->id[0]) return FTI_OK;
    if (peeked) {
        res->stats.step = step;
        res->stats.tokens_seen = tokens;
        res->stats.total_steps = total;
    }
    if (res->id[0])
        return fti_error_set(err, FTI_ERR_EXISTS, "run %s is finished: its model %s is "
                             "registered (%s); starting the run over would train it again",
                             res->run_key, res->id, run_dir);
    if (!peeked)
        return fti_error_set(err, FTI_ERR_EXISTS, "run %s has a checkpoint %s that does not "
                             "read as one; starting the run over would replace it",
                             res->run_key, ckpt);
    return fti_error_set(err, FTI_ERR_EXISTS, "run %s has a checkpoint at step %llu of %llu "
                         "(%s): resume continues it; starting it over would replace it",
                         res->run_key, (unsigned long long)step, (unsigned long long)total,
                         ckpt);
}

/* --- metrics log and loss curve --------------------------------------------------------------- */

FTI__UNUSED /* only fti_train_run uses it: unused under FTI_NO_STORE */
static void fti__tr_metrics_line(FILE *f, uint64_t step, double loss, double lr, double gnorm,
                                 uint64_t tokens, double tok_s, double elapsed, int has_val,
                                 double val) {
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
FTI__UNUSED /* only fti_train_run uses it: unused under FTI_NO_STORE */
static void fti__tr_write_svg(const char *path, const float *train, size_t n, const uint64_t *vs,
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
#define FTI__TR_X(s) (L + (W - L - R) * ((double)(s) - 1.0) / (double)(n > 1 ? n - 1 : 1))
#define FTI__TR_Y(v) (T + (H - T - B) * (hi - (double)(v)) / (hi - lo))
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
    for (i = 0; i < n; i++)
        fti_buf_printf(&b, "%.1f,%.1f ", FTI__TR_X(i + 1), FTI__TR_Y(train[i]));
    fti_buf_puts(&b,
                 "\"/>\n<polyline fill=\"none\" stroke=\"#ff7f0e\" stroke-width=\"2\" points=\"");
    for (i = 0; i < nv; i++) fti_buf_printf(&b, "%.1f,%.1f ", FTI__TR_X(vs[i]), FTI__TR_Y(vl[i]));
    fti_buf_puts(&b, "\"/>\n");
    for (i = 0; i < nv; i++)
        fti_buf_printf(&b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"#ff7f0e\"/>\n",
                       FTI__TR_X(vs[i]), FTI__TR_Y(vl[i]));
    fti_buf_puts(&b, "</svg>\n");
#undef FTI__TR_X
#undef FTI__TR_Y
    if (!b.oom) (void)fti_file_write_atomic(path, b.data, b.len, NULL);
    fti_buf_free(&b);
}

/* --- model and adapter files ------------------------------------------------------------------ */

/* Writes a llama GGUF with the dataset's tokenizer (when its vocabulary matches). */
static fti_result fti__tr_write_model(const char *path, const fti_model_config *cfg,
                                      const float *params, const char *tok_path,
                                      const fti_gguf_lineage *lin, fti_error *err) {
    fti_result r;
    fti_gguf_tokenizer_meta meta, *mp = NULL;
    fti_tokenizer *tok = NULL;
    fti_tokenizer_gguf tg;
    int have_tg = 0;
    memset(&tg, 0, sizeof(tg));
    memset(&meta, 0, sizeof(meta));
    if (tok_path && fti_tokenizer_load(tok_path, NULL, &tok, NULL) == FTI_OK &&
        fti_tokenizer_gguf_make(tok, &tg) == FTI_OK) {
        have_tg = 1;
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
    r = fti_gguf_write_llama(path, cfg, params, mp, lin, NULL, err);
    if (have_tg) fti_tokenizer_gguf_free(&tg);
    fti_tokenizer_free(tok);
    return r;
}

/* A LoRA adapter in llama.cpp's GGUF adapter conventions: general.type "adapter",
 * adapter.type "lora", adapter.lora.alpha, tensors <name>.weight.lora_a (ne = in, r) and
 * .lora_b (ne = r, out). */
FTI__UNUSED /* only fti_train_run uses it: unused under FTI_NO_STORE */
static fti_result fti__tr_write_adapter(const char *path, const fti_model_config *cfg,
                                        const float *ad, uint32_t rank, float alpha,
                                        const char *base_id, fti_error *err) {
    fti_gguf_writer *w = NULL;
    fti_result r;
    size_t i, nt = fti_lora_n_tensors(cfg);
    if ((r = fti_gguf_writer_create(&w, 0)) != FTI_OK)
        return fti_error_set(err, r, "%s: %s", path, fti_result_str(r));
    r = fti_gguf_set_str(w, "general.architecture", "llama");
    if (r == FTI_OK) r = fti_gguf_set_str(w, "general.type", "adapter");
    if (r == FTI_OK) r = fti_gguf_set_str(w, "adapter.type", "lora");
    if (r == FTI_OK) r = fti_gguf_set_f32(w, "adapter.lora.alpha", alpha);
    if (r == FTI_OK && base_id) r = fti_gguf_set_str(w, "fti.base_model.id", base_id);
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
    if (r == FTI_OK) r = fti_gguf_writer_write(w, path, err);
    else r = fti_error_set(err, r, "%s: %s", path, fti_result_str(r));
    fti_gguf_writer_free(w);
    return r;
}

/* Reads an adapter file written by fti__tr_write_adapter for cfg: the adapter block (caller
 * frees), its rank and alpha. Every tensor's name, type and shape is checked. */
static fti_result fti__tr_read_adapter(const char *path, const fti_model_config *cfg,
                                       float **out, uint32_t *rank_out, float *alpha_out,
                                       fti_error *err) {
    fti_gguf *g = NULL;
    fti_result r;
    const char *type = NULL;
    size_t type_len = 0;
    const fti_gguf_tensor *t0;
    char name[96];
    fti_tensor_info ti;
    fti_lora_tensor lt;
    size_t i, nt = fti_lora_n_tensors(cfg), n;
    uint32_t rank;
    float alpha = 0, *ad = NULL;
    *out = NULL;
    if ((r = fti_gguf_open(&g, path, NULL, err)) != FTI_OK) return r;
    if (fti_gguf_get_str(g, "adapter.type", &type, &type_len, NULL) != FTI_OK ||
        type_len != 4 || memcmp(type, "lora", 4) != 0 ||
        fti_gguf_get_f32(g, "adapter.lora.alpha", &alpha, NULL) != FTI_OK || !(alpha > 0) ||
        nt == 0) {
        r = fti_error_set(err, FTI_ERR_FORMAT, "%s: not a LoRA adapter (adapter.type, "
                          "adapter.lora.alpha)", path);
        goto done;
    }
    fti_lora_tensor_get(cfg, 1, 0, &lt);
    fti_model_tensor_info(cfg, lt.tensor, &ti);
    snprintf(name, sizeof name, "%s.weight.lora_a", ti.name);
    t0 = fti_gguf_find_tensor(g, name);
    if (!t0 || t0->n_dims != 2 || t0->ne[1] == 0 || t0->ne[1] > 65536) {
        r = fti_error_set(err, FTI_ERR_FORMAT, "%s: tensor %s is missing or not 2-D", path, name);
        goto done;
    }
    rank = (uint32_t)t0->ne[1];
    n = fti_lora_n_params(cfg, rank);
    ad = (float *)fti_malloc(n * sizeof(float));
    if (!ad) {
        r = fti_error_set(err, FTI_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    for (i = 0; i < nt; i++) {
        int k;
        fti_lora_tensor_get(cfg, rank, i, &lt);
        fti_model_tensor_info(cfg, lt.tensor, &ti);
        for (k = 0; k < 2; k++) {
            const fti_gguf_tensor *t;
            size_t want0 = k ? rank : lt.cols, want1 = k ? lt.rows : rank, j;
            float *dst = ad + (k ? lt.b_offset : lt.a_offset);
            snprintf(name, sizeof name, "%s.weight.lora_%c", ti.name, k ? 'b' : 'a');
            t = fti_gguf_find_tensor(g, name);
            if (!t || t->type != 0 || t->n_dims != 2 || t->ne[0] != want0 || t->ne[1] != want1) {
                r = fti_error_set(err, FTI_ERR_FORMAT, "%s: tensor %s is %s (want F32 %lu x %lu)",
                                  path, name, t ? "of another type or shape" : "missing",
                                  (unsigned long)want0, (unsigned long)want1);
                goto done;
            }
            for (j = 0; j < want0 * want1; j++) {
                uint32_t u = fti_load_u32((const unsigned char *)t->data + 4 * j);
                memcpy(&dst[j], &u, 4);
            }
        }
    }
    *out = ad;
    ad = NULL;
    *rank_out = rank;
    *alpha_out = alpha;
    r = FTI_OK;
done:
    fti_free(ad);
    fti_gguf_close(g);
    return r;
}

/* --- cards ------------------------------------------------------------------------------------ */

/* The config object of a card (also the GGUF's fti.train.config): fti__reg_config_json
 * (07_train.c). */

/* The machine of the process that finished the run: host, OS, CPU, threads, and what the
 * passes ran on: matmul "fp32" or "bf16" (bf16 asked for and honoured by the kernels: bf16
 * products differ from fp32 ones and differ between kernel sets) and kernels, the table's
 * instruction set ("scalar", "avx2", "avx512", "neon"). */
FTI__UNUSED /* only fti_train_run uses it: unused under FTI_NO_STORE */
static void fti__tr_machine_json(fti_jw *w, int threads, const fti_trainer *t) {
    char cpu[160];
#ifdef FTI__TR_UNAME
    struct utsname un;
    if (uname(&un) != 0) memset(&un, 0, sizeof(un));
#endif
    fti_cpu_describe(cpu, sizeof cpu);
    fti_jw_obj_begin(w);
#ifdef FTI__TR_UNAME
    fti_jw_key(w, "host"); fti_jw_str(w, un.nodename);
    fti_jw_key(w, "os"); fti_jw_str(w, un.sysname);
    fti_jw_key(w, "arch"); fti_jw_str(w, un.machine);
#endif
    fti_jw_key(w, "cpu"); fti_jw_str(w, cpu);
    fti_jw_key(w, "threads"); fti_jw_int(w, threads);
    fti_jw_key(w, "matmul"); fti_jw_str(w, t->bf16_on ? "bf16" : "fp32");
    fti_jw_key(w, "kernels"); fti_jw_str(w, fti_isa_name(t->isa));
    fti_jw_obj_end(w);
}

/* --- fit_seconds: the schedule's length from the measured wall time --------------------------- */

/* Samples (wall seconds since the loop began, steps done), one a second (a 50th of the budget
 * when that is shorter); the rate is measured over the last FTI__TR_FIT_WINDOW samples (about
 * 10 s, a few validation passes included) so a machine that gets busier or quieter is followed
 * within seconds, and one slow step does not move the schedule.
 * Where max_steps binds (the budget has room for more steps), a busy moment does not move the
 * schedule either: it stays at max_steps while the rate since the second sample fits max_steps
 * in the budget, or the recent rate fits FTI__TR_FIT_SLACK of it (if the machine stays that slow,
 * time runs out with the cosine 9/10 done: the learning rate then is within 2.5% of the peak
 * from its final value). Without that, a shared machine's slow seconds cut the schedule for a
 * while (the learning rate of those steps changed) and the run trained another model than the
 * same command on the same data a minute before (the demo on a noisy 2-core VM: 1,490 steps in
 * both runs, where about 1,620 fit, and two model ids). */
#define FTI__TR_FIT_SLACK 0.9
#define FTI__TR_FIT_WINDOW 10
typedef struct fti__tr_fit_state {
    uint64_t t0;                          /* loop start, ns */
    double next_s;                        /* wall time of the next sample */
    double s[FTI__TR_FIT_WINDOW + 1];     /* ring of samples: seconds */
    uint64_t k[FTI__TR_FIT_WINDOW + 1];   /* and steps */
    size_t n;                             /* samples taken */
    double s1;                            /* the second sample (after the warm-up step) */
    uint64_t k1;
} fti__tr_fit_state;

/* The steps that fit by the budget at rate seconds a step, from step at now: what is left less
 * the last validation pass (about two steps), at least one more. */
FTI__UNUSED /* only fti_train_run uses it: unused under FTI_NO_STORE */
static uint64_t fti__tr_fit_total(uint64_t step, double now, double rate, double budget_s) {
    double left = budget_s - now - 2.0 * rate, q = left / rate;
    if (!(left > rate)) return step + 1;
    return step + (q < 1e18 ? (uint64_t)q : (uint64_t)1e18); /* (a huge budget: no overflow) */
}

/* One sample at now (seconds since the loop began; the caller reads the clock): sets t's
 * schedule length. */
FTI__UNUSED /* only fti_train_run uses it: unused under FTI_NO_STORE */
static void fti__tr_fit_at(fti__tr_fit_state *f, fti_trainer *t, const fti_train_stats *st,
                           double budget_s, uint64_t max_steps, double now) {
    double rate;
    size_t cap = FTI__TR_FIT_WINDOW + 1, newest, oldest;
    uint64_t total;
    if (st->step >= st->total_steps) return; /* that was the last step */
    if (now >= budget_s) { /* time is up: one more step, the last (the trainer evaluates it) */
        if (st->total_steps > st->step + 1) fti_trainer_set_total_steps(t, st->step + 1);
        return;
    }
    if (now < f->next_s) return;
    f->next_s = now + (budget_s < 50.0 ? budget_s / 50.0 : 1.0);
    newest = f->n % cap;
    f->s[newest] = now;
    f->k[newest] = st->step;
    f->n++;
    if (f->n == 2) {
        f->s1 = now;
        f->k1 = st->step;
    }
    if (f->n < 3) return; /* the first second has the warm-up step in it */
    oldest = f->n > cap ? f->n % cap : 1;
    if (f->k[newest] <= f->k[oldest] || !(f->s[newest] > f->s[oldest])) return;
    rate = (f->s[newest] - f->s[oldest]) / (double)(f->k[newest] - f->k[oldest]);
    total = fti__tr_fit_total(st->step, now, rate, budget_s);
    if (total < max_steps &&
        ((double)total >= FTI__TR_FIT_SLACK * (double)max_steps ||
         (st->step > f->k1 && now > f->s1 &&
          fti__tr_fit_total(st->step, now, (now - f->s1) / (double)(st->step - f->k1),
                            budget_s) >= max_steps)))
        total = max_steps; /* a busy moment: max_steps (nearly) fits */
    fti_trainer_set_total_steps(t, total < max_steps ? total : max_steps);
}

/* --- keep_best: the best validation pass's weights -------------------------------------------- */

/* best.bin: "FTIBEST1", u64 step, u64 n floats, the floats (LE), SHA-256 of all before. */
FTI__UNUSED /* only fti_train_run uses it: unused under FTI_NO_STORE */
static fti_result fti__tr_best_save(const char *path, uint64_t step, const float *p, size_t n,
                                    fti_error *err) {
    fti_buf b;
    unsigned char dig[32], u8[8];
    size_t i;
    fti_result r;
    memset(&b, 0, sizeof(b));
    fti_buf_append(&b, "FTIBEST1", 8);
    fti_store_u64(u8, step);
    fti_buf_append(&b, u8, 8);
    fti_store_u64(u8, (uint64_t)n);
    fti_buf_append(&b, u8, 8);
    for (i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &p[i], 4);
        fti_store_u32(u8, u);
        fti_buf_append(&b, u8, 4);
    }
    if (b.oom) {
        fti_buf_free(&b);
        return fti_error_set(err, FTI_ERR_NOMEM, "%s: out of memory", path);
    }
    fti_sha256_buf(b.data, b.len, dig);
    fti_buf_append(&b, dig, 32);
    r = b.oom ? fti_error_set(err, FTI_ERR_NOMEM, "%s: out of memory", path)
              : fti_file_write_atomic(path, b.data, b.len, err);
    fti_buf_free(&b);
    return r;
}

/* Loads best.bin into p (n floats) and *step (the step of those weights); FTI_ERR_NOT_FOUND
 * when absent. */
FTI__UNUSED /* only fti_train_run uses it: unused under FTI_NO_STORE */
static fti_result fti__tr_best_load(const char *path, float *p, size_t n, uint64_t *step,
                                    fti_error *err) {
    void *data = NULL;
    size_t len = 0, i;
    unsigned char dig[32];
    const unsigned char *d;
    fti_result r;
    if (!fti_path_exists(path)) return FTI_ERR_NOT_FOUND;
    if ((r = fti_file_read(path, (size_t)-1, &data, &len, err)) != FTI_OK) return r;
    d = (const unsigned char *)data;
    if (len != 24 + 4 * n + 32 || memcmp(d, "FTIBEST1", 8) != 0 ||
        fti_load_u64(d + 16) != (uint64_t)n) {
        fti_free(data);
        return fti_error_set(err, FTI_ERR_FORMAT, "%s: not the best weights of this model", path);
    }
    fti_sha256_buf(d, len - 32, dig);
    if (memcmp(dig, d + len - 32, 32) != 0) {
        fti_free(data);
        return fti_error_set(err, FTI_ERR_CHECKSUM, "%s: SHA-256 mismatch", path);
    }
    for (i = 0; i < n; i++) {
        uint32_t u = fti_load_u32(d + 24 + 4 * i);
        memcpy(&p[i], &u, 4);
    }
    *step = fti_load_u64(d + 8);
    fti_free(data);
    return FTI_OK;
}

/* --- the driver ------------------------------------------------------------------------------- */

FTI__UNUSED /* only fti_train_run uses it: unused under FTI_NO_STORE */
static void fti__tr_log(const fti_train_opts *o, fti_log_level level, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static void fti__tr_log(const fti_train_opts *o, fti_log_level level, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    if (!o->log) return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    o->log(o->log_user, level, msg);
}

#ifdef FTI_NO_STORE
/* Without the feature store there is no dataset version to train on. */
FTIDEF fti_result fti_train_run(const char *home, const fti_train_run_opts *opts_in,
                                fti_train_run_result *result, fti_error *err) {
    (void)home;
    (void)opts_in;
    if (result) memset(result, 0, sizeof *result);
    return fti_error_set(err, FTI_ERR_UNSUPPORTED,
                         "train: built without the feature store (FTI_NO_STORE)");
}
#else
FTIDEF fti_result fti_train_run(const char *home, const fti_train_run_opts *opts_in,
                                fti_train_run_result *result, fti_error *err) {
    fti_train_run_opts ro;
    fti_train_run_result res_local, *res;
    fti_train_opts o;
    fti__tr_parent parent;
    fti_dataset *ds = NULL;
    const fti_token_shard *sh_tr, *sh_va;
    fti_model_config cfg;
    fti_token_array tr, va;
    fti_trainer *t = NULL;
    fti_result r = FTI_OK;
    char *runs = NULL, *run_dir = NULL, *ckpt = NULL, *metrics = NULL, *svg = NULL;
    char *gguf = NULL, *adapter = NULL, *best = NULL;
    float *best_params = NULL;
    FILE *mf = NULL;
    fti_train_stats st;
    fti__tr_fit_state fit;
    const float *hist = NULL, *vl = NULL, *final_params;
    const uint64_t *vs = NULL;
    size_t n_hist = 0, n_val = 0, i, n_params;
    const char *tok_sha, *preset, *name;
    int from_scratch_tiny, writer = 1, run_fd = -1, pass, stopped = 0, saved;
    uint32_t since_best = 0;
    char legacy_key[17];
    fti_buf card, cfgjson;
    fti_jw w;

    legacy_key[0] = 0;
    memset(&res_local, 0, sizeof(res_local));
    res = result ? result : &res_local;
    memset(res, 0, sizeof(*res));
    memset(&parent, 0, sizeof(parent));
    memset(&st, 0, sizeof(st));
    memset(&card, 0, sizeof(card));
    memset(&cfgjson, 0, sizeof(cfgjson));
    if (opts_in) ro = *opts_in;
    else memset(&ro, 0, sizeof(ro));
    if (!home) return fti_error_set(err, FTI_ERR_INVALID, "train: no workspace given");
    preset = ro.preset ? ro.preset : "tiny";
    name = ro.name ? ro.name : "fti-twin";
    o = ro.train;
    if (o.lora_rank && !ro.from)
        return fti_error_set(err, FTI_ERR_INVALID, "train: LoRA needs a base model (from)");
    /* best.bin keeps whole weights, not adapters: the merged model would be the best pass while
     * its registered parent, the adapter, is the last step's (base + adapter != the model) */
    if (o.lora_rank && ro.keep_best)
        return fti_error_set(err, FTI_ERR_UNSUPPORTED, "train: keep_best with LoRA is not "
                             "supported (the adapter would not be the merged model's)");
    if (ro.resume_required) ro.resume = 1;
    if (ro.fit_seconds > 0 && ro.resume)
        return fti_error_set(err, FTI_ERR_INVALID, "train: a run fitted to a time budget "
                             "(fit_seconds) cannot be resumed");
    if ((r = fti_dataset_open(&ds, home, ro.dataset, err)) != FTI_OK) goto done;
    {
        const char *dsid = fti_dataset_id(ds);
        snprintf(res->dataset, sizeof res->dataset, "%s", dsid ? dsid : "");
    }
    sh_tr = fti_dataset_shard(ds, FTI_SPLIT_TRAIN);
    sh_va = fti_dataset_shard(ds, FTI_SPLIT_VAL);
    tok_sha = fti_dataset_tokenizer_sha256(ds);
    if (!sh_tr || !tok_sha) {
        r = fti_error_set(err, FTI_ERR_NOT_FOUND, "dataset %s has no tokenizer or token shards "
                          "(ingest without --no-tokenizer)", fti_dataset_id(ds));
        goto done;
    }
    snprintf(res->tokenizer, sizeof res->tokenizer, "%s", tok_sha);

    /* the model configuration: a preset (+ overrides), or the parent's */
    memset(&cfg, 0, sizeof(cfg));
    if (ro.from) {
        const fti_model_config *oc = &ro.config;
        if ((r = fti__tr_load_parent(home, ro.from, &parent, err)) != FTI_OK) goto done;
        if (oc->dim || oc->n_layers || oc->n_heads || oc->n_kv_heads || oc->hidden_dim ||
            oc->context_len || ro.untied) { /* they would be ignored: say so */
            r = fti_error_set(err, FTI_ERR_INVALID, "fine-tuning %s keeps its configuration: "
                              "dim, layers, heads, hidden, context and untied cannot be "
                              "changed", ro.from);
            goto done;
        }
        snprintf(res->parent_id, sizeof res->parent_id, "%s", parent.id);
        if (strcmp(parent.tokenizer, tok_sha) != 0) {
            r = fti_error_set(err, FTI_ERR_MISMATCH, "model %s was trained with tokenizer "
                              "%.16s..., dataset %s uses %.16s...: fine-tuning needs the same "
                              "tokenizer", parent.id, parent.tokenizer, fti_dataset_id(ds),
                              tok_sha);
            goto done;
        }
        cfg = parent.cfg;
    } else {
        cfg.vocab_size = sh_tr->vocab_size;
        if (fti_model_preset(preset, &cfg, err) != FTI_OK) { /* its message names the list */
            r = FTI_ERR_INVALID; /* (an option of the run: INVALID, as the others) */
            if (err) err->code = r;
            goto done;
        }
        if (ro.config.dim) cfg.dim = ro.config.dim;
        if (ro.config.n_layers) cfg.n_layers = ro.config.n_layers;
        if (ro.config.n_heads) cfg.n_heads = ro.config.n_heads;
        if (ro.config.n_kv_heads || ro.config.n_heads) cfg.n_kv_heads = ro.config.n_kv_heads;
        if (ro.config.hidden_dim) cfg.hidden_dim = ro.config.hidden_dim;
        if (ro.config.context_len) cfg.context_len = ro.config.context_len;
        if (ro.untied) cfg.tied_embeddings = 0;
        if ((r = fti_model_config_resolve(&cfg, err)) != FTI_OK) goto done;
    }
    if (cfg.vocab_size != sh_tr->vocab_size) {
        r = fti_error_set(err, FTI_ERR_MISMATCH, "model vocabulary %u != dataset vocabulary %u",
                          (unsigned)cfg.vocab_size, (unsigned)sh_tr->vocab_size);
        goto done;
    }
    res->config = cfg;
    n_params = fti_model_n_params(&cfg);
    res->n_params = n_params;

    /* the trainer's options with the driver's defaults */
    from_scratch_tiny = !ro.from && strcmp(preset, "tiny") == 0;
    if (!o.batch) o.batch = 8;
    if (!o.ctx) o.ctx = cfg.context_len;
    if (!o.max_steps) o.max_steps = 300;
    if (!(o.lr > 0)) o.lr = from_scratch_tiny ? 3e-3f : 1e-3f;
    if (!o.eval_every) o.eval_every = o.max_steps >= 10 ? o.max_steps / 10 : 1;
    if (!o.checkpoint_every) o.checkpoint_every = 100;
    /* the run directory: a key over everything that changes the trajectory (the string of
     * fti-train's first version, so its runs resume). max_tokens is a stop, not the trajectory,
     * and counts as 0 (a resume may change it, as max_seconds); runs made before 2026-11-29 keyed
     * it, and one of those that has a checkpoint (legacy_key) is still the run resumed. */
    for (pass = 0; pass < (o.max_tokens ? 2 : 1); pass++) {
        char buf[1024];
        uint64_t key;
        float wd = o.adamw.weight_decay;
        snprintf(buf, sizeof buf, "%s|%s|%s|%u,%u,%u,%u,%u,%u,%d|%llu|%llu|%llu|%lu|%lu|%lu|%.9g|"
                 "%llu|%.9g|%.9g|%llu|%u|%.9g|%llu", fti_dataset_id(ds), ro.from ? parent.id : "-",
                 preset, (unsigned)cfg.dim, (unsigned)cfg.n_layers, (unsigned)cfg.n_heads,
                 (unsigned)cfg.n_kv_heads, (unsigned)cfg.hidden_dim, (unsigned)cfg.context_len,
                 cfg.tied_embeddings, (unsigned long long)o.max_steps,
                 (unsigned long long)(pass ? o.max_tokens : 0), (unsigned long long)o.seed,
                 (unsigned long)o.batch, (unsigned long)o.ctx, (unsigned long)o.grad_accum,
                 o.lr, (unsigned long long)o.warmup_steps, wd < 0 ? 0.0f : wd, o.grad_clip,
                 (unsigned long long)o.eval_every, (unsigned)o.lora_rank, o.lora_alpha,
                 (unsigned long long)cfg.vocab_size);
        if (o.min_lr_frac != 0 || o.adamw.beta1 != 0 || o.adamw.beta2 != 0 ||
            o.adamw.eps != 0 || o.eval_windows != 0 || ro.keep_best) {
            /* options fti-train did not have: only in the key when set */
            size_t l = strlen(buf);
            snprintf(buf + l, sizeof buf - l, "|%.9g|%.9g|%.9g|%.9g|%lu|%d", o.min_lr_frac,
                     o.adamw.beta1, o.adamw.beta2, o.adamw.eps, (unsigned long)o.eval_windows,
                     ro.keep_best);
        }
        if (wd < 0) { /* no decay: keyed 0 above, as the default (0.1) is: told apart here */
            size_t l = strlen(buf);
            snprintf(buf + l, sizeof buf - l, "|nowd");
        }
        if (ro.patience) { /* early stopping ends the run elsewhere (in the key when set) */
            size_t l = strlen(buf);
            snprintf(buf + l, sizeof buf - l, "|patience%u", (unsigned)ro.patience);
        }
        if (o.bf16) { /* bf16 matmuls change the trajectory (only in the key when set) */
            size_t l = strlen(buf);
            snprintf(buf + l, sizeof buf - l, "|bf16");
        }
        if (o.dropout > 0) { /* dropout changes the trajectory (only in the key when set) */
            size_t l = strlen(buf);
            snprintf(buf + l, sizeof buf - l, "|drop%.9g", o.dropout);
        }
        if (ro.fit_seconds > 0) { /* the schedule follows the machine's speed */
            size_t l = strlen(buf);
            snprintf(buf + l, sizeof buf - l, "|fit");
        }
        key = fti_hash64(buf, strlen(buf), 0x72756e73);
        snprintf(pass ? legacy_key : res->run_key, sizeof legacy_key, "%016llx",
                 (unsigned long long)key);
    }
    runs = fti_path_join(home, "runs");
    if (runs && legacy_key[0]) { /* a run keyed with its max_tokens: resume it where it is */
        char *ln = fti_path_join(runs, legacy_key), *nn = fti_path_join(runs, res->run_key);
        char *lc = ln ? fti_path_join(ln, "checkpoint.bin") : NULL;
        char *nc = nn ? fti_path_join(nn, "checkpoint.bin") : NULL;
        if (lc && nc && fti_path_exists(lc) && !fti_path_exists(nc))
            memcpy(res->run_key, legacy_key, sizeof legacy_key);
        fti_free(ln);
        fti_free(lc);
        fti_free(nn);
        fti_free(nc);
    }
    run_dir = runs ? fti_path_join(runs, res->run_key) : NULL;
    ckpt = run_dir ? fti_path_join(run_dir, "checkpoint.bin") : NULL;
    metrics = run_dir ? fti_path_join(run_dir, "metrics.jsonl") : NULL;
    svg = run_dir ? fti_path_join(run_dir, "loss.svg") : NULL;
    gguf = run_dir ? fti_path_join(run_dir, "model.gguf") : NULL;
    adapter = run_dir ? fti_path_join(run_dir, "adapter.gguf") : NULL;
    best = run_dir ? fti_path_join(run_dir, "best.bin") : NULL;
    if (!ckpt || !metrics || !svg || !gguf || !adapter || !best) {
        r = fti_error_set(err, FTI_ERR_NOMEM, "train: out of memory");
        goto done;
    }
    writer = o.world_size <= 1 || o.rank == 0; /* data-parallel: rank 0 alone writes */
    /* the run's lock before its directory is read: a run another process trains is named as
     * such, not "nothing to resume" (that process has not saved a checkpoint yet) */
    if (writer && fti_path_is_dir(run_dir) &&
        (r = fti__tr_run_lock(run_dir, &run_fd, err)) != FTI_OK)
        goto done;
    if (ro.resume && !fti_path_exists(ckpt)) { /* a finished run that fti_workspace_gc cleaned */
        char *mark = run_dir ? fti_path_join(run_dir, "gc.json") : NULL;
        int gone = mark && fti_path_exists(mark);
        fti_free(mark);
        if (gone) {
            r = fti_error_set(err, FTI_ERR_NOT_FOUND, "nothing to resume: run %s finished and "
                              "its checkpoint was removed by gc (%s/gc.json names its model)",
                              res->run_key, run_dir);
            goto done;
        }
    }
    if (ro.resume_required && !fti_path_exists(ckpt)) { /* before the run directory is made */
        r = fti_error_set(err, FTI_ERR_NOT_FOUND, "nothing to resume: no checkpoint %s (no run "
                          "of dataset %.16s with these options has saved one)", ckpt,
                          fti_dataset_id(ds));
        goto done;
    }
    if (ro.no_overwrite && !ro.resume &&
        (r = fti__tr_no_overwrite(home, run_dir, ckpt, res, err)) != FTI_OK)
        goto done;
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
    res->train_tokens = tr.n_tokens;
    res->val_tokens = va.n_tokens;
    if ((r = fti_trainer_create(&cfg, parent.params, &o, tr, va, &t, err)) != FTI_OK) goto done;
    /* the run directory once the trainer has accepted the options: a rejected set leaves none */
    if (writer && (r = fti_mkdirs(run_dir, err)) != FTI_OK) goto done;
    /* one process per run: a second (a cron job beside a manual --resume) would interleave
     * metrics.jsonl and race the first for the checkpoint */
    if (writer && run_fd < 0 && (r = fti__tr_run_lock(run_dir, &run_fd, err)) != FTI_OK)
        goto done;
    if (writer) { /* what a resume needs, for gc to keep while the run is unfinished */
        char *rj = fti_path_join(run_dir, "run.json");
        fti_buf b;
        memset(&b, 0, sizeof b);
        fti_buf_printf(&b, "{\"run\": \"%s\", \"dataset\": \"%s\", \"from\": \"%s\"}\n",
                       res->run_key, fti_dataset_id(ds), ro.from ? parent.id : "");
        if (!rj || b.oom)
            r = fti_error_set(err, FTI_ERR_NOMEM, "train: out of memory");
        else
            r = fti_file_write_atomic(rj, b.data, b.len, err);
        fti_free(rj);
        fti_buf_free(&b);
        if (r != FTI_OK) goto done;
    }
    if (ro.resume) {
        if (fti_path_exists(ckpt)) {
            if ((r = fti_trainer_resume(t, ckpt, err)) != FTI_OK) goto done;
            res->resumed = 1;
        } else {
            fti__tr_log(&o, FTI_LOG_INFO, "no checkpoint in %s: starting the run", run_dir);
        }
    }
    if (ro.keep_best) {
        best_params = (float *)fti_malloc(n_params * sizeof(float));
        if (!best_params) {
            r = fti_error_set(err, FTI_ERR_NOMEM, "train: out of memory for the best weights");
            goto done;
        }
        if (!res->resumed && writer) (void)fti_file_remove(best, NULL); /* a fresh run */
    }
    /* metrics: rewritten from the checkpoint's history on resume, then appended */
    mf = writer ? fopen(metrics, "w") : NULL;
    if (!mf && writer) fti__tr_log(&o, FTI_LOG_WARN, "cannot write %s", metrics);
    fti_trainer_history(t, &hist, &n_hist, &vs, &vl, &n_val);
    {
        size_t k = 0;
        for (i = 0; i < n_hist; i++) {
            int hv = k < n_val && vs[k] == i + 1;
            fti__tr_metrics_line(mf, i + 1, hist[i], -1, 0, 0, 0, 0, hv, hv ? vl[k] : 0);
            if (hv) k++;
        }
    }
    if (ro.patience) { /* a resumed run: the passes since the best one so far */
        float lowest = 0;
        for (i = 0; i < n_val; i++) {
            if (i == 0 || vl[i] <= lowest) lowest = vl[i];
            since_best = vl[i] <= lowest ? 0 : since_best + 1;
        }
    }
    fti_trainer_stats_get(t, &st);
    res->stats = st;
    if (ro.progress) ro.progress(ro.progress_user, FTI_TRAIN_EVENT_START, res, &st);
    memset(&fit, 0, sizeof fit);
    fit.t0 = fti_time_ns();
    fit.next_s = ro.fit_seconds < 50.0 ? ro.fit_seconds / 50.0 : 1.0;
    while (!fti_trainer_done(t)) {
        if (ro.stop && ro.stop(ro.stop_user)) {
            stopped = 1;
            break;
        }
        if ((r = fti_trainer_step(t, &st, err)) != FTI_OK) goto done;
        if (ro.fit_seconds > 0)
            fti__tr_fit_at(&fit, t, &st, ro.fit_seconds, o.max_steps,
                           (double)(fti_time_ns() - fit.t0) / 1e9);
        res->stats = st;
        fti__tr_metrics_line(mf, st.step, st.loss, st.lr, st.grad_norm, st.tokens_seen,
                             st.tokens_per_s, st.elapsed_s, st.evaluated, st.val_loss);
        if (ro.keep_best && writer && st.evaluated && st.val_loss == st.best_val_loss &&
            (r = fti__tr_best_save(best, st.step, fti_trainer_params(t), n_params, err)) != FTI_OK)
            goto done;
        if (ro.progress) ro.progress(ro.progress_user, FTI_TRAIN_EVENT_STEP, res, &st);
        if (ro.patience && st.evaluated) { /* early stopping: passes since the best one */
            if (st.val_loss <= st.best_val_loss) since_best = 0;
            else if (++since_best >= ro.patience && !fti_trainer_done(t)) {
                fti__tr_log(&o, FTI_LOG_INFO, "early stop at step %llu of %llu: %u validation "
                            "passes in a row without a new best (%.4f)",
                            (unsigned long long)st.step, (unsigned long long)st.total_steps,
                            (unsigned)ro.patience, st.best_val_loss);
                res->stopped_early = 1;
                break;
            }
        }
    }
    if (mf) fclose(mf);
    mf = NULL;
    saved = st.checkpointed; /* (st: the last step of this process's, if any) */
    fti_trainer_stats_get(t, &st);
    res->stats = st;
    fti_trainer_history(t, &hist, &n_hist, &vs, &vl, &n_val);
    if (writer) fti__tr_write_svg(svg, hist, n_hist, vs, vl, n_val);
    if (stopped) { /* the exact-resume checkpoint of this step, and no model */
        if (ro.fit_seconds > 0) {
            r = fti_error_set(err, FTI_ERR_CANCELLED, "interrupted at step %llu of %llu (a run "
                              "fitted to a time budget cannot be resumed)",
                              (unsigned long long)st.step, (unsigned long long)st.total_steps);
            goto done;
        }
        if (writer && !saved && (r = fti_trainer_save(t, ckpt, err)) != FTI_OK) goto done;
        r = fti_error_set(err, FTI_ERR_CANCELLED, "interrupted at step %llu of %llu: checkpoint "
                          "saved in %s (resume continues the run)",
                          (unsigned long long)st.step, (unsigned long long)st.total_steps,
                          run_dir);
        goto done;
    }
    if (ro.progress) ro.progress(ro.progress_user, FTI_TRAIN_EVENT_END, res, &st);
    if (!writer) goto done; /* the model and the registry are rank 0's */

    /* the weights to ship: the last step's, or the best validation pass's */
    final_params = fti_trainer_params(t);
    if (ro.keep_best && st.best_val_loss < st.val_loss &&
        fti__tr_best_load(best, best_params, n_params, &res->best_step, NULL) == FTI_OK &&
        res->best_step >= 1 && res->best_step <= n_hist) {
        final_params = best_params;
        res->used_best = 1;
    } else {
        res->best_step = 0;
    }

    /* the model file, the adapter, then the registry */
    {
        fti_gguf_lineage lin;
        const char *datasets[1];
        uint32_t rank = 0;
        float alpha = 0;
        const float *ad = fti_trainer_lora(t, &rank, &alpha);
        double val_loss = res->used_best ? st.best_val_loss : st.val_loss, train_loss;
        /* what the shipped weights had: the run's end, or the best pass's step (keep_best) */
        uint64_t w_step = res->used_best ? res->best_step : st.step;
        uint64_t w_tokens = res->used_best ? w_step * t->o.batch * t->o.ctx * t->o.grad_accum
                                           : st.tokens_seen; /* (the same tokens every step) */
        char ts[32];
        /* the pool's size: n_threads 0 is $FTI_THREADS, else the CPUs (fti_pool_create) */
        int threads = t->pool ? fti_pool_threads(t->pool) : 1;
        memset(&lin, 0, sizeof(lin));
        fti_time_iso8601(fti_time_wall(), ts);
        datasets[0] = fti_dataset_id(ds);
        fti_jw_init(&w, &cfgjson, 0);
        fti__reg_config_json(&w, &cfg, ro.from ? "(parent)" : preset);
        if (cfgjson.oom) {
            r = fti_error_set(err, FTI_ERR_NOMEM, "train: out of memory");
            goto done;
        }
        lin.name = name;
        lin.datasets = datasets;
        lin.n_datasets = 1;
        lin.dataset_version = fti_dataset_id(ds);
        lin.tokenizer_sha256 = tok_sha;
        lin.train_config = cfgjson.data;
        lin.train_steps = w_step;
        lin.train_tokens = w_tokens;
        /* the losses as the history keeps them (f32): the stats of a run resumed after its
         * last step hold the f32 loss, and the file must be the fresh run's */
        train_loss = n_hist ? (double)hist[(res->used_best ? w_step : n_hist) - 1] : st.loss;
        if (res->used_best) {
            lin.weights = "best validation pass";
            lin.run_steps = st.step;
        }
        if (!res->used_best && n_val && vs[n_val - 1] == st.step) val_loss = (double)vl[n_val - 1];
        lin.train_loss = train_loss;
        lin.has_train_loss = 1;
        lin.val_loss = val_loss == val_loss ? val_loss : 0;
        lin.created = ro.stamp_created ? ts : NULL;
        if (ro.from) lin.base_model_id = parent.id;
        if (ad) { /* the adapter is a model of the registry on its own */
            fti_buf acard;
            memset(&acard, 0, sizeof(acard));
            if ((r = fti__tr_write_adapter(adapter, &cfg, ad, rank, alpha, parent.id, err)) !=
                FTI_OK)
                goto done;
            fti_jw_init(&w, &acard, 1);
            fti_jw_obj_begin(&w);
            fti_jw_key(&w, "name"); fti_jw_str(&w, name);
            fti_jw_key(&w, "type"); fti_jw_str(&w, "lora_adapter");
            fti_jw_key(&w, "architecture"); fti_jw_str(&w, "llama");
            fti_jw_key(&w, "dataset"); fti_jw_str(&w, fti_dataset_id(ds));
            fti_jw_key(&w, "tokenizer"); fti_jw_str(&w, tok_sha);
            fti_jw_key(&w, "parent"); fti_jw_str(&w, parent.id);
            fti_jw_key(&w, "lora_rank"); fti_jw_int(&w, rank);
            fti_jw_key(&w, "lora_alpha"); fti_jw_num(&w, alpha);
            fti_jw_key(&w, "n_params"); fti_jw_int(&w, (int64_t)fti_lora_n_params(&cfg, rank));
            fti_jw_key(&w, "val_loss"); fti_jw_num(&w, st.val_loss);
            fti_jw_key(&w, "best_val_loss"); fti_jw_num(&w, st.best_val_loss);
            /* (fti_train_merge_adapter's model carries it: it wrote a train loss of 0) */
            fti_jw_key(&w, "train_loss"); fti_jw_num(&w, train_loss);
            fti_jw_key(&w, "tokens"); fti_jw_int(&w, (int64_t)st.tokens_seen);
            fti_jw_key(&w, "steps"); fti_jw_int(&w, (int64_t)st.step);
            fti_jw_key(&w, "wall_time_s"); fti_jw_num(&w, st.elapsed_s);
            fti_jw_key(&w, "machine"); fti__tr_machine_json(&w, threads, t);
            fti_jw_key(&w, "config");
            fti__reg_config_json(&w, &cfg, "(parent)");
            fti_jw_key(&w, "run"); fti_jw_str(&w, run_dir);
            fti_jw_key(&w, "metrics"); fti_jw_str(&w, metrics);
            fti_jw_key(&w, "loss_curve"); fti_jw_str(&w, svg);
            fti_jw_obj_end(&w);
            r = acard.oom ? fti_error_set(err, FTI_ERR_NOMEM, "train: out of memory")
                          : fti_registry_add(home, adapter, acard.data, acard.len,
                                             res->adapter_id, err);
            fti_buf_free(&acard);
            if (r != FTI_OK) goto done;
        }
        if ((r = fti__tr_write_model(gguf, &cfg, final_params, fti_dataset_tokenizer_path(ds),
                                     &lin, err)) != FTI_OK)
            goto done;
        fti_jw_init(&w, &card, 1);
        fti_jw_obj_begin(&w);
        fti_jw_key(&w, "name"); fti_jw_str(&w, name);
        fti_jw_key(&w, "type"); fti_jw_str(&w, ad ? "lora_merged" : "model");
        fti_jw_key(&w, "architecture"); fti_jw_str(&w, "llama");
        fti_jw_key(&w, "dataset"); fti_jw_str(&w, fti_dataset_id(ds));
        fti_jw_key(&w, "tokenizer"); fti_jw_str(&w, tok_sha);
        fti_jw_key(&w, "parent");
        if (ad) fti_jw_str(&w, res->adapter_id); /* lineage: merged -> adapter -> base */
        else if (ro.from) fti_jw_str(&w, parent.id);
        else fti_jw_null(&w);
        if (ad) {
            fti_jw_key(&w, "base_model"); fti_jw_str(&w, parent.id);
        }
        fti_jw_key(&w, "val_loss"); fti_jw_num(&w, val_loss);
        fti_jw_key(&w, "best_val_loss"); fti_jw_num(&w, st.best_val_loss);
        fti_jw_key(&w, "val_perplexity"); fti_jw_num(&w, exp(val_loss));
        fti_jw_key(&w, "train_loss"); fti_jw_num(&w, train_loss);
        fti_jw_key(&w, "tokens"); fti_jw_int(&w, (int64_t)w_tokens);
        fti_jw_key(&w, "steps"); fti_jw_int(&w, (int64_t)w_step);
        fti_jw_key(&w, "wall_time_s"); fti_jw_num(&w, st.elapsed_s);
        if (res->used_best) { /* the weights are an earlier step's than the run's end */
            fti_jw_key(&w, "weights"); fti_jw_str(&w, "best validation pass");
            fti_jw_key(&w, "run_steps"); fti_jw_int(&w, (int64_t)st.step);
            fti_jw_key(&w, "run_tokens"); fti_jw_int(&w, (int64_t)st.tokens_seen);
            fti_jw_key(&w, "run_train_loss");
            fti_jw_num(&w, n_hist ? (double)hist[n_hist - 1] : st.loss);
        }
        if (res->stopped_early) { /* patience ended it before its schedule's end */
            fti_jw_key(&w, "stopped_early"); fti_jw_bool(&w, 1);
            fti_jw_key(&w, "patience"); fti_jw_int(&w, (int64_t)ro.patience);
            fti_jw_key(&w, "schedule_steps"); fti_jw_int(&w, (int64_t)st.total_steps);
        }
        fti_jw_key(&w, "machine"); fti__tr_machine_json(&w, threads, t);
        fti_jw_key(&w, "config");
        fti__reg_config_json(&w, &cfg, ro.from ? "(parent)" : preset);
        fti_jw_key(&w, "hyper");
        fti_jw_obj_begin(&w);
        fti_jw_key(&w, "batch"); fti_jw_int(&w, (int64_t)o.batch);
        fti_jw_key(&w, "ctx"); fti_jw_int(&w, (int64_t)o.ctx);
        fti_jw_key(&w, "grad_accum"); fti_jw_int(&w, (int64_t)(o.grad_accum ? o.grad_accum : 1));
        fti_jw_key(&w, "lr"); fti_jw_num(&w, o.lr);
        fti_jw_key(&w, "schedule"); fti_jw_str(&w, "warmup+cosine");
        fti_jw_key(&w, "max_steps"); fti_jw_int(&w, (int64_t)o.max_steps);
        fti_jw_key(&w, "seed"); fti_jw_int(&w, (int64_t)o.seed);
        fti_jw_key(&w, "weight_decay");
        fti_jw_num(&w, o.adamw.weight_decay > 0 ? o.adamw.weight_decay
                                                : (o.adamw.weight_decay < 0 ? 0.0 : 0.1));
        fti_jw_key(&w, "grad_clip"); fti_jw_num(&w, o.grad_clip ? o.grad_clip : 1.0);
        if (o.dropout > 0) {
            fti_jw_key(&w, "dropout"); fti_jw_num(&w, o.dropout);
        }
        fti_jw_key(&w, "optimizer"); fti_jw_str(&w, "adamw(0.9,0.95,1e-8)");
        fti_jw_key(&w, "eval_every"); fti_jw_int(&w, (int64_t)o.eval_every);
        if (ad) {
            fti_jw_key(&w, "lora_rank"); fti_jw_int(&w, rank);
            fti_jw_key(&w, "lora_alpha"); fti_jw_num(&w, alpha);
        }
        fti_jw_obj_end(&w);
        fti_jw_key(&w, "run"); fti_jw_str(&w, run_dir);
        fti_jw_key(&w, "metrics"); fti_jw_str(&w, metrics);
        fti_jw_key(&w, "loss_curve"); fti_jw_str(&w, svg);
        if (ad) {
            fti_jw_key(&w, "adapter"); fti_jw_str(&w, adapter);
            fti_jw_key(&w, "adapter_id"); fti_jw_str(&w, res->adapter_id);
        }
        fti_jw_obj_end(&w);
        if (card.oom) {
            r = fti_error_set(err, FTI_ERR_NOMEM, "train: out of memory");
            goto done;
        }
        if ((r = fti_registry_add(home, gguf, card.data, card.len, res->id, err)) != FTI_OK)
            goto done;
    }
done:
    if (mf) fclose(mf);
    if (run_fd >= 0) close(run_fd); /* (releases the run's lock) */
    fti_buf_free(&card);
    fti_buf_free(&cfgjson);
    fti_trainer_free(t);
    fti_dataset_close(ds);
    fti_free(parent.params);
    fti_free(best_params);
    fti_free(runs);
    fti_free(run_dir);
    fti_free(ckpt);
    fti_free(metrics);
    fti_free(svg);
    fti_free(gguf);
    fti_free(adapter);
    fti_free(best);
    return r;
}
#endif /* FTI_NO_STORE */

FTIDEF fti_result fti_train_merge_adapter(const char *home, const char *adapter_ref,
                                          const char *name, char id_out[17], fti_error *err) {
    char aid[17];
    fti_buf acard, card;
    fti_json_doc *adoc = NULL;
    fti__tr_parent base;
#ifndef FTI_NO_STORE
    fti_dataset *ds = NULL;
#endif
    float *ad = NULL;
    uint32_t rank = 0;
    float alpha = 0;
    fti_result r;
    const fti_json *c;
    char *dir = NULL, *tmp = NULL;
    fti_gguf_lineage lin;
    const char *dsets[1];
    fti_jw w;
    memset(&acard, 0, sizeof(acard));
    memset(&card, 0, sizeof(card));
    memset(&base, 0, sizeof(base));
    if (!home || !adapter_ref || !id_out)
        return fti_error_set(err, FTI_ERR_INVALID, "merge: missing argument");
    if (name && (r = fti__reg_name_check(name, err)) != FTI_OK) return r;
    if ((r = fti_registry_resolve(home, adapter_ref, aid, err)) != FTI_OK ||
        (r = fti_registry_card(home, aid, &acard, err)) != FTI_OK ||
        (r = fti_json_parse(acard.data, acard.len, NULL, &adoc, NULL, err)) != FTI_OK)
        goto done;
    c = fti_json_root(adoc);
    if (strcmp(fti_json_get_str(c, "type", ""), "lora_adapter") != 0) {
        r = fti_error_set(err, FTI_ERR_INVALID, "model %s is not a LoRA adapter", aid);
        goto done;
    }
    if (fti_json_get(c, "removed")) {
        r = fti_error_set(err, FTI_ERR_NOT_FOUND, "adapter %s was removed by gc (%s): only its "
                          "card is left", aid, fti_json_get_str(c, "removed", "?"));
        goto done;
    }
    if ((r = fti__tr_load_parent(home, fti_json_get_str(c, "parent", ""), &base, err)) != FTI_OK)
        goto done;
    if ((r = fti__tr_read_adapter(fti_json_get_str(c, "path", ""), &base.cfg, &ad, &rank, &alpha,
                                  err)) != FTI_OK ||
        (r = fti_lora_merge(&base.cfg, base.params, ad, rank, alpha)) != FTI_OK) {
        if (r == FTI_ERR_NOMEM || r == FTI_ERR_INVALID)
            fti_error_set(err, r, "merge: %s", fti_result_str(r));
        goto done;
    }
    dir = fti_path_join(home, "runs");
    tmp = dir ? fti_path_join(dir, "merge.gguf.tmp") : NULL;
    if (!tmp || (r = fti_mkdirs(dir, err)) != FTI_OK) {
        if (!tmp) r = fti_error_set(err, FTI_ERR_NOMEM, "merge: out of memory");
        goto done;
    }
    /* the adapter's training figures and dataset: the merged model is what that run trained
     * (an adapter card of a build before 2026-11-29 has no train loss: none is written, not 0) */
    memset(&lin, 0, sizeof(lin));
    lin.name = name ? name : fti_json_get_str(c, "name", "fti-twin");
    lin.dataset_version = fti_json_get_str(c, "dataset", "");
    dsets[0] = lin.dataset_version;
    if (*lin.dataset_version) {
        lin.datasets = dsets;
        lin.n_datasets = 1;
    }
    lin.tokenizer_sha256 = fti_json_get_str(c, "tokenizer", "");
    lin.base_model_id = base.id;
    lin.train_steps = (uint64_t)fti_json_get_int(c, "steps", 0);
    lin.train_tokens = (uint64_t)fti_json_get_int(c, "tokens", 0);
    lin.train_loss = fti_json_get_num(c, "train_loss", NAN);
    lin.has_train_loss = 1; /* (NaN, an old card's null: still not written) */
    lin.val_loss = fti_json_get_num(c, "val_loss", 0);
    if (!(lin.val_loss > 0)) lin.val_loss = 0; /* (null: no validation split) */
    {
        /* the tokenizer of the adapter's dataset, if the workspace still has it */
        const char *tok_path = NULL;
#ifndef FTI_NO_STORE
        if (fti_dataset_open(&ds, home, lin.dataset_version, NULL) == FTI_OK)
            tok_path = fti_dataset_tokenizer_path(ds);
#endif
        if ((r = fti__tr_write_model(tmp, &base.cfg, base.params, tok_path, &lin, err)) != FTI_OK)
            goto done;
    }
    fti_jw_init(&w, &card, 1);
    fti_jw_obj_begin(&w);
    fti_jw_key(&w, "name"); fti_jw_str(&w, lin.name);
    fti_jw_key(&w, "type"); fti_jw_str(&w, "lora_merged");
    fti_jw_key(&w, "architecture"); fti_jw_str(&w, "llama");
    fti_jw_key(&w, "dataset"); fti_jw_str(&w, lin.dataset_version);
    fti_jw_key(&w, "tokenizer"); fti_jw_str(&w, lin.tokenizer_sha256);
    fti_jw_key(&w, "parent"); fti_jw_str(&w, aid);
    fti_jw_key(&w, "base_model"); fti_jw_str(&w, base.id);
    fti_jw_key(&w, "adapter_id"); fti_jw_str(&w, aid);
    fti_jw_key(&w, "val_loss"); fti_jw_num(&w, fti_json_get_num(c, "val_loss", NAN));
    fti_jw_key(&w, "best_val_loss"); fti_jw_num(&w, fti_json_get_num(c, "best_val_loss", NAN));
    fti_jw_key(&w, "val_perplexity"); fti_jw_num(&w, exp(fti_json_get_num(c, "val_loss", NAN)));
    fti_jw_key(&w, "train_loss"); fti_jw_num(&w, lin.train_loss);
    fti_jw_key(&w, "tokens"); fti_jw_int(&w, (int64_t)lin.train_tokens);
    fti_jw_key(&w, "steps"); fti_jw_int(&w, (int64_t)lin.train_steps);
    fti_jw_key(&w, "wall_time_s"); fti_jw_num(&w, fti_json_get_num(c, "wall_time_s", NAN));
    /* the run's log and curve (not "run": gc reads that as the run having its model) */
    if (fti_json_get(c, "metrics")) {
        fti_jw_key(&w, "metrics"); fti_jw_str(&w, fti_json_get_str(c, "metrics", ""));
    }
    if (fti_json_get(c, "loss_curve")) {
        fti_jw_key(&w, "loss_curve"); fti_jw_str(&w, fti_json_get_str(c, "loss_curve", ""));
    }
    fti_jw_key(&w, "config");
    fti__reg_config_json(&w, &base.cfg, "(parent)");
    fti_jw_key(&w, "hyper");
    fti_jw_obj_begin(&w);
    fti_jw_key(&w, "lora_rank"); fti_jw_int(&w, rank);
    fti_jw_key(&w, "lora_alpha"); fti_jw_num(&w, alpha);
    fti_jw_obj_end(&w);
    fti_jw_obj_end(&w);
    r = card.oom ? fti_error_set(err, FTI_ERR_NOMEM, "merge: out of memory")
                 : fti_registry_add(home, tmp, card.data, card.len, id_out, err);
    (void)fti_file_remove(tmp, NULL);
done:
    fti_free(ad);
    fti_free(base.params);
#ifndef FTI_NO_STORE
    fti_dataset_close(ds);
#endif
    fti_json_free(adoc);
    fti_buf_free(&acard);
    fti_buf_free(&card);
    fti_free(dir);
    fti_free(tmp);
    return r;
}

/* --- workspace gc ----------------------------------------------------------------------------- */

typedef struct fti__wgc_model {
    char id[FTI__REG_ID_LEN + 1];
    char run[FTI__REG_ID_LEN + 1];  /* the key of the run that trained it (the card's "run") */
    char parent[FTI__REG_ID_LEN + 1];
    char dataset[65];
    int adapter, removed, keep;
    int fresh;                      /* removed by this gc (its card gets "removed") */
} fti__wgc_model;

typedef struct fti__wgc {
    const char *home;
    fti__wgc_model *m;
    size_t n;
    int dry_run;
    double now, temp_age;
    fti_workspace_gc_result *res;
    fti_buf *report;
    char (*run_ds)[65]; /* the dataset versions unfinished runs resume from */
    size_t n_run_ds, cap_run_ds;
    int oom;
} fti__wgc;

static fti__wgc_model *fti__wgc_find(fti__wgc *g, const char *id) {
    size_t i;
    for (i = 0; i < g->n; i++)
        if (strcmp(g->m[i].id, id) == 0) return &g->m[i];
    return NULL;
}

static void fti__wgc_keep(fti__wgc *g, const char *id) {
    fti__wgc_model *m = fti__wgc_find(g, id);
    if (m) m->keep = 1;
}

/* Removes a file (in a dry run: counts it), adding its size to the bytes freed. */
static int fti__wgc_rm(fti__wgc *g, const char *path) {
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) return 0;
    if (!g->dry_run && fti_file_remove(path, NULL) != FTI_OK) return 0;
    g->res->bytes_freed += (uint64_t)st.st_size;
    return 1;
}

/* Is path a file of a model gc removes (HOME/models/<id>/..., HOME/memory/<id>.*)? A dry run
 * has counted it with the model already. */
static int fti__wgc_of_removed(fti__wgc *g, const char *path) {
    static const char *const subs[] = {"/models/", "/memory/"};
    size_t hl = strlen(g->home), k;
    for (k = 0; k < 2; k++) {
        size_t sl = strlen(subs[k]);
        const char *p = path + hl;
        char id[FTI__REG_ID_LEN + 1];
        fti__wgc_model *m;
        if (strncmp(path, g->home, hl) != 0) return 0;
        if (hl && path[hl - 1] == '/') p--; /* HOME given with a trailing slash */
        if (strncmp(p, subs[k], sl) != 0 || strlen(p + sl) <= FTI__REG_ID_LEN) continue;
        memcpy(id, p + sl, FTI__REG_ID_LEN);
        id[FTI__REG_ID_LEN] = 0;
        if (p[sl + FTI__REG_ID_LEN] != (k ? '.' : '/')) continue;
        m = fti__wgc_find(g, id);
        return m && m->removed && !m->keep;
    }
    return 0;
}

static fti_result fti__wgc_tmp_cb(void *user, const char *path, uint64_t size) {
    fti__wgc *g = (fti__wgc *)user;
    struct stat st;
    (void)size;
    if (strstr(fti_path_base(path), ".tmp.") && stat(path, &st) == 0 &&
        g->now - (double)st.st_mtime >= g->temp_age &&
        !(g->dry_run && fti__wgc_of_removed(g, path)) && fti__wgc_rm(g, path))
        g->res->temp_removed++;
    return FTI_OK;
}

/* A model's files but its card go; with mark, the card gets "removed" first (without: a model
 * an earlier gc removed, whose files a killed gc may have left). */
static fti_result fti__wgc_remove_model(fti__wgc *g, const char *id, int mark, fti_error *err) {
    char *dir = fti__reg_path(g->home, id, NULL), *card = fti__reg_path(g->home, id, "card.json");
    fti_json_doc *doc = NULL;
    fti_buf out;
    fti_result r = FTI_OK;
    DIR *d;
    struct dirent *de;
    char when[32];
    memset(&out, 0, sizeof out);
    if (!dir || !card) {
        r = fti_error_set(err, FTI_ERR_NOMEM, "gc: out of memory");
        goto done;
    }
    fti_time_iso8601(g->now, when);
    if (mark && !g->dry_run) { /* the card first: a crash after it leaves files gc removes next
                                * time (as a model already removed) */
        const fti_json *c;
        fti_jw w;
        if ((r = fti__reg_read_json(card, &doc, err)) != FTI_OK) goto done;
        fti_jw_init(&w, &out, 1);
        fti_jw_obj_begin(&w);
        for (c = fti_json_root(doc)->child; c; c = c->next) {
            if (c->key_len == 7 && memcmp(c->key, "removed", 7) == 0) continue;
            fti_jw_keyn(&w, c->key, c->key_len);
            fti__reg_json_copy(&w, c);
        }
        fti_jw_key(&w, "removed");
        fti_jw_str(&w, when);
        fti_jw_obj_end(&w);
        fti_buf_putc(&out, '\n');
        r = out.oom ? fti_error_set(err, FTI_ERR_NOMEM, "gc: out of memory")
                    : fti_file_write_atomic(card, out.data, out.len, err);
        if (r != FTI_OK) goto done;
    }
    d = opendir(dir);
    while (d && (de = readdir(d)) != NULL) {
        char *p;
        if (strcmp(de->d_name, "card.json") == 0 || de->d_name[0] == '.') continue;
        if ((p = fti_path_join(dir, de->d_name)) != NULL) fti__wgc_rm(g, p);
        fti_free(p);
    }
    if (d) closedir(d);
done:
    fti_json_free(doc);
    fti_buf_free(&out);
    fti_free(dir);
    fti_free(card);
    return r;
}

/* The registered model a run made (its card names the run: no need to hash its weights), or
 * NULL. A LoRA run registers its adapter, then the merged model: only the model counts, so a run
 * killed between the two keeps its checkpoint for the resume that registers the model. */
static const char *fti__wgc_run_model(const fti__wgc *g, const char *key) {
    size_t i;
    for (i = 0; i < g->n; i++)
        if (!g->m[i].adapter && strcmp(g->m[i].run, key) == 0) return g->m[i].id;
    return NULL;
}

/* The newest modification time of the files of a directory (0 when it has none). */
static double fti__wgc_newest(const char *dir) {
    DIR *d = opendir(dir);
    struct dirent *de;
    double t = 0;
    while (d && (de = readdir(d)) != NULL) {
        struct stat st;
        char *p = de->d_name[0] == '.' ? NULL : fti_path_join(dir, de->d_name);
        if (p && stat(p, &st) == 0 && (double)st.st_mtime > t) t = (double)st.st_mtime;
        fti_free(p);
    }
    if (d) closedir(d);
    return t;
}

/* A run without a registered model, a checkpoint or weights of its end, not written to for
 * temp_age (a running trainer appends to metrics.jsonl every step): killed before its first
 * checkpoint (fti-twin's updates save one only at the end), so nothing can resume it and a run
 * started again under its key begins afresh. Its best.bin (keep_best: the size of the model)
 * goes; metrics.jsonl stays. 1 when it is such a run. */
static int fti__wgc_run_dead(fti__wgc *g, const char *run_dir, const char *key) {
    static const char *const keep[] = {"checkpoint.bin", "model.gguf", "adapter.gguf"};
    char *best;
    size_t i;
    double age;
    uint64_t before = g->res->bytes_freed;
    for (i = 0; i < sizeof keep / sizeof keep[0]; i++) {
        char *p = fti_path_join(run_dir, keep[i]);
        int has = !p || fti_path_exists(p);
        fti_free(p);
        if (has) return 0;
    }
    if ((age = g->now - fti__wgc_newest(run_dir)) < g->temp_age) {
        /* named, or the report's "unfinished runs left alone" names none */
        if (g->report)
            fti_buf_printf(g->report, "run %s has no model and no checkpoint: still running, or "
                           "killed (last written %.0f min ago; its best weights go once that "
                           "is %.0f min)\n", key, age / 60.0, g->temp_age / 60.0);
        return 0;
    }
    if (!(best = fti_path_join(run_dir, "best.bin"))) return 0;
    if (fti__wgc_rm(g, best)) {
        g->res->runs_dead++;
        if (g->report)
            fti_buf_printf(g->report, "run %s was killed before its first checkpoint (nothing to "
                           "resume, no model): its best weights %s, %.1f MB\n", key,
                           g->dry_run ? "would go" : "removed",
                           (double)(g->res->bytes_freed - before) / 1e6);
    }
    fti_free(best);
    return 1;
}

/* A run directory: finished (its model is registered) -> its big files go. */
static void fti__wgc_run(fti__wgc *g, const char *run_dir, const char *key) {
    static const char *const big[] = {"checkpoint.bin", "best.bin", "model.gguf", "adapter.gguf"};
    char *mark = fti_path_join(run_dir, "gc.json"), when[32];
    const char *id = fti__wgc_run_model(g, key);
    size_t i;
    int any = 0;
    uint64_t before = g->res->bytes_freed;
    if (!mark) return;
    if (!id) { /* no registered model (running, interrupted, registration failed): kept */
        if (!fti_path_exists(mark) && !fti__wgc_run_dead(g, run_dir, key))
            g->res->runs_unfinished++;
        goto done;
    }
    for (i = 0; i < sizeof big / sizeof big[0] && !any; i++) {
        char *p = fti_path_join(run_dir, big[i]);
        any = p && fti_path_exists(p);
        fti_free(p);
    }
    if (!any) goto done; /* cleaned before */
    if (!g->dry_run) { /* the mark first: a resume then never starts the run afresh */
        fti_buf b;
        memset(&b, 0, sizeof b);
        fti_time_iso8601(g->now, when);
        fti_buf_printf(&b, "{\"run\": \"%s\", \"model\": \"%s\", \"removed\": \"%s\", "
                           "\"files\": [\"checkpoint.bin\", \"best.bin\", \"model.gguf\", "
                           "\"adapter.gguf\"]}\n", key, id, when);
        if (b.oom || fti_file_write_atomic(mark, b.data, b.len, NULL) != FTI_OK) {
            fti_buf_free(&b);
            goto done;
        }
        fti_buf_free(&b);
    }
    for (i = 0; i < sizeof big / sizeof big[0]; i++) {
        char *p = fti_path_join(run_dir, big[i]);
        if (p) fti__wgc_rm(g, p);
        fti_free(p);
    }
    g->res->runs_cleaned++;
    if (g->report)
        fti_buf_printf(g->report, "run %s (model %s): checkpoint and weights %s, %.1f MB\n", key,
                       id, g->dry_run ? "would go" : "removed",
                       (double)(g->res->bytes_freed - before) / 1e6);
done:
    fti_free(mark);
}

/* A run directory before anything is decided: an unfinished run that can resume (its
 * checkpoint is there, no registered model names it) keeps the model it fine-tunes and the
 * dataset version it trains on (run.json; runs of older builds have none). */
static void fti__wgc_run_needs(fti__wgc *g, const char *run_dir, const char *key) {
    char *ck = fti_path_join(run_dir, "checkpoint.bin"), *rj = fti_path_join(run_dir, "run.json");
    fti_json_doc *doc = NULL;
    if (!ck || !rj) g->oom = 1;
    if (!fti__wgc_run_model(g, key) && ck && rj && fti_path_exists(ck) &&
        fti__reg_read_json(rj, &doc, NULL) == FTI_OK) {
        const fti_json *c = fti_json_root(doc);
        const char *ds = fti_json_get_str(c, "dataset", "");
        const char *from = fti_json_get_str(c, "from", "");
        if (from[0]) fti__wgc_keep(g, from);
        if (g->report && (from[0] || ds[0]))
            fti_buf_printf(g->report,
                           "run %s is unfinished (a checkpoint, no model): its dataset %.16s%s%s "
                           "%s for its resume (remove runs/%s to let %s go)\n",
                           key, ds, from[0] ? " and model " : "", from,
                           from[0] ? "stay" : "stays", key, from[0] ? "them" : "it");
        if (ds[0] && strlen(ds) < sizeof g->run_ds[0]) {
            if (g->n_run_ds == g->cap_run_ds) {
                size_t nc = g->cap_run_ds ? 2 * g->cap_run_ds : 8;
                char(*p)[65] = (char(*)[65])fti_realloc(g->run_ds, nc * sizeof *p);
                if (!p)
                    g->oom = 1;
                else
                    g->run_ds = p, g->cap_run_ds = nc;
            }
            if (g->n_run_ds < g->cap_run_ds) snprintf(g->run_ds[g->n_run_ds++], 65, "%s", ds);
        }
    }
    fti_json_free(doc);
    fti_free(ck);
    fti_free(rj);
}

static void fti__wgc_run_needs_fn(fti__wgc *g, const char *path, const char *name) {
    if (fti_path_is_dir(path)) fti__wgc_run_needs(g, path, name);
}

/* Calls fn for each entry of HOME/sub (hidden ones skipped) with its path and name. */
static void fti__wgc_each(fti__wgc *g, const char *sub,
                          void (*fn)(fti__wgc *g, const char *path, const char *name)) {
    char *dir = fti_path_join(g->home, sub);
    DIR *d = dir && fti_path_is_dir(dir) ? opendir(dir) : NULL;
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        char *p;
        if (de->d_name[0] == '.') continue;
        if ((p = fti_path_join(dir, de->d_name)) != NULL) fn(g, p, de->d_name);
        fti_free(p);
    }
    if (d) closedir(d);
    fti_free(dir);
}

static void fti__wgc_run_fn(fti__wgc *g, const char *path, const char *name) {
    if (fti_path_is_dir(path)) fti__wgc_run(g, path, name);
}

/* HOME/memory/<model id>.*: the twin's author memory of a model; it goes with the model. */
static void fti__wgc_memory_fn(fti__wgc *g, const char *path, const char *name) {
    fti__wgc_model *m;
    char id[FTI__REG_ID_LEN + 1];
    if (strlen(name) <= FTI__REG_ID_LEN || name[FTI__REG_ID_LEN] != '.') return;
    memcpy(id, name, FTI__REG_ID_LEN);
    id[FTI__REG_ID_LEN] = 0;
    if ((m = fti__wgc_find(g, id)) != NULL && m->removed && fti__wgc_rm(g, path))
        g->res->memories_removed++;
}

FTIDEF fti_result fti_workspace_gc(const char *home, const fti_workspace_gc_opts *opts,
                                   fti_workspace_gc_result *result, fti_buf *report,
                                   fti_error *err) {
    fti_workspace_gc_opts o;
    fti_workspace_gc_result res0;
    fti__wgc g;
    fti__reg_aliases al;
    fti_buf ids;
    const char *p;
    char *dir = NULL;
    const char **keep_ds = NULL;
    size_t i, k, n_new;
#ifndef FTI_NO_STORE
    size_t n_keep_ds = 0;
#endif
    int changed, have_al = 0, reg_fd = -1;
    fti_result r = FTI_OK;
    memset(&o, 0, sizeof o);
    if (opts) o = *opts;
    if (o.keep_models == 0) o.keep_models = 3;
    else if (o.keep_models == FTI_GC_KEEP_NONE) o.keep_models = 0;
    if (o.keep_history == 0) o.keep_history = 2;
    else if (o.keep_history == FTI_GC_KEEP_NONE) o.keep_history = 0;
    if (o.keep_versions == 0) o.keep_versions = 3;
    if (!(o.temp_age_s > 0)) o.temp_age_s = 3600;
    memset(&res0, 0, sizeof res0);
    memset(&g, 0, sizeof g);
    memset(&ids, 0, sizeof ids);
    g.home = home;
    g.dry_run = o.dry_run;
    g.now = fti_time_wall();
    g.temp_age = o.temp_age_s;
    g.res = result ? result : &res0;
    g.report = report;
    memset(g.res, 0, sizeof *g.res);
    if (!home) return fti_error_set(err, FTI_ERR_INVALID, "gc: no workspace");
    /* the registry's lock from the first card read to the last model file removed: no promote
     * or rollback in between (a dry run only reads) */
    if (!o.dry_run && (r = fti__reg_lock(home, &reg_fd, err)) != FTI_OK) goto done;
    /* the models, oldest first, from their cards */
    if ((r = fti_registry_list(home, &ids, err)) != FTI_OK) goto done;
    g.m = (fti__wgc_model *)fti_calloc(ids.len / (FTI__REG_ID_LEN + 1) + 1, sizeof *g.m);
    if (!g.m) {
        r = fti_error_set(err, FTI_ERR_NOMEM, "gc: out of memory");
        goto done;
    }
    for (p = ids.data; p && *p; p += FTI__REG_ID_LEN + 1) {
        fti__wgc_model *m = &g.m[g.n];
        char *card = NULL;
        fti_json_doc *doc = NULL;
        memcpy(m->id, p, FTI__REG_ID_LEN);
        m->id[FTI__REG_ID_LEN] = 0;
        /* the list has every card.json under HOME/models: a copy of a model's directory (a
         * backup) names its id again, and must not make gc remove the original's files; an id
         * that is not the registry's hex (a hand-made card) is no directory gc may empty */
        for (k = 0; k < FTI__REG_ID_LEN; k++)
            if (!((m->id[k] >= '0' && m->id[k] <= '9') || (m->id[k] >= 'a' && m->id[k] <= 'f')))
                break;
        if (k < FTI__REG_ID_LEN || fti__wgc_find(&g, m->id)) continue;
        card = fti__reg_path(home, m->id, "card.json");
        if (card && fti__reg_read_json(card, &doc, NULL) == FTI_OK) {
            const fti_json *c = fti_json_root(doc);
            snprintf(m->parent, sizeof m->parent, "%s", fti_json_get_str(c, "parent", ""));
            snprintf(m->dataset, sizeof m->dataset, "%s", fti_json_get_str(c, "dataset", ""));
            snprintf(m->run, sizeof m->run, "%s",
                     fti_path_base(fti_json_get_str(c, "run", "")));
            m->adapter = strcmp(fti_json_get_str(c, "type", ""), "lora_adapter") == 0;
            m->removed = fti_json_get(c, "removed") != NULL;
        }
        fti_json_free(doc);
        fti_free(card);
        g.n++;
    }
    /* what stays: alias targets, their recent history, the newest models, adapters' bases */
    if ((r = fti__reg_aliases_load(home, &al, err)) != FTI_OK) goto done;
    have_al = 1;
    for (i = 0; i < al.n; i++) {
        fti__wgc_keep(&g, al.a[i].id);
        for (k = al.a[i].n_hist > o.keep_history ? al.a[i].n_hist - o.keep_history : 0;
             k < al.a[i].n_hist; k++)
            fti__wgc_keep(&g, al.a[i].hist[k]);
    }
    for (i = g.n, n_new = 0; i > 0 && n_new < o.keep_models; i--)
        if (!g.m[i - 1].removed) {
            g.m[i - 1].keep = 1;
            n_new++;
        }
    /* what unfinished runs resume from: their base model (and its base) and dataset version */
    fti__wgc_each(&g, "runs", fti__wgc_run_needs_fn);
    if (g.oom) {
        r = fti_error_set(err, FTI_ERR_NOMEM, "gc: out of memory");
        goto done;
    }
    do {
        changed = 0;
        for (i = 0; i < g.n; i++) {
            fti__wgc_model *b;
            if (!g.m[i].keep || !g.m[i].adapter || !g.m[i].parent[0]) continue;
            b = fti__wgc_find(&g, g.m[i].parent);
            if (b && !b->keep) b->keep = changed = 1;
        }
    } while (changed);
    for (i = 0; i < g.n; i++) {
        fti__wgc_model *m = &g.m[i];
        if (m->keep && !m->removed) g.res->models_kept++;
        if (m->keep) continue; /* (an alias at a removed model, set by hand: nothing to do) */
        m->fresh = !m->removed;
        m->removed = 1;
    }
    /* alias histories: only models that still have their files. Saved before any file goes, so
     * a gc killed half-way never leaves a rollback target without its weights */
    changed = 0;
    for (i = 0; i < al.n; i++) {
        size_t w = 0;
        for (k = 0; k < al.a[i].n_hist; k++) {
            fti__wgc_model *m = fti__wgc_find(&g, al.a[i].hist[k]);
            if (m && m->removed) continue;
            if (w != k) memcpy(al.a[i].hist[w], al.a[i].hist[k], FTI__REG_ID_LEN + 1);
            w++;
        }
        if (w != al.a[i].n_hist) changed = 1;
        al.a[i].n_hist = w;
    }
    if (changed && !o.dry_run && (r = fti__reg_aliases_save(home, &al, err)) != FTI_OK) goto done;
    /* the models that go; and the files a killed gc left of models removed before */
    for (i = 0; i < g.n; i++) {
        fti__wgc_model *m = &g.m[i];
        uint64_t before = g.res->bytes_freed;
        if (m->keep || !m->removed) continue;
        if ((r = fti__wgc_remove_model(&g, m->id, m->fresh, err)) != FTI_OK) goto done;
        if (m->fresh) g.res->models_removed++;
        if (report && (m->fresh || g.res->bytes_freed > before))
            fti_buf_printf(report, "model %s %s%s (its card stays), %.1f MB\n", m->id,
                           m->fresh ? "" : "(removed before): files left ",
                           o.dry_run ? "would go" : "removed",
                           (double)(g.res->bytes_freed - before) / 1e6);
    }
    fti__reg_unlock(reg_fd);
    reg_fd = -1;
    /* runs, and the twin's author memories of removed models */
    fti__wgc_each(&g, "runs", fti__wgc_run_fn);
    fti__wgc_each(&g, "memory", fti__wgc_memory_fn);
    /* stale temp files of killed writers */
    for (k = 0; k < 4; k++) {
        static const char *const sub[] = {"models", "runs", "memory", "logs"};
        fti_free(dir);
        dir = fti_path_join(home, sub[k]);
        if (dir && fti_path_is_dir(dir)) fti_walk(dir, fti__wgc_tmp_cb, &g, NULL);
    }
#ifndef FTI_NO_STORE
    /* the feature store: every kept model's dataset stays */
    keep_ds = (const char **)fti_calloc(g.n + g.n_run_ds + 1, sizeof *keep_ds);
    if (!keep_ds) {
        r = fti_error_set(err, FTI_ERR_NOMEM, "gc: out of memory");
        goto done;
    }
    for (i = 0; i < g.n; i++)
        if (!g.m[i].removed && g.m[i].dataset[0]) keep_ds[n_keep_ds++] = g.m[i].dataset;
    for (i = 0; i < g.n_run_ds; i++) keep_ds[n_keep_ds++] = g.run_ds[i];
    {
        fti_store_gc_opts so;
        char *store = fti_path_join(home, "store");
        int have_store = store && fti_path_is_dir(store);
        fti_free(store);
        memset(&so, 0, sizeof so);
        so.keep_last = o.keep_versions;
        so.keep = keep_ds;
        so.n_keep = n_keep_ds;
        so.temp_age_s = o.temp_age_s;
        so.dry_run = o.dry_run;
        if (have_store && (r = fti_store_gc(home, &so, &g.res->store, report, err)) != FTI_OK)
            goto done;
        g.res->bytes_freed += g.res->store.bytes_freed;
    }
#endif
    if (report && report->oom) r = fti_error_set(err, FTI_ERR_NOMEM, "gc: out of memory");
done:
    fti__reg_unlock(reg_fd);
    if (have_al) fti__reg_aliases_free(&al);
    fti_free((void *)keep_ds);
    fti_free(g.run_ds);
    fti_free(g.m);
    fti_free(dir);
    fti_buf_free(&ids);
    return r;
}

#endif /* FTI_NO_TRAIN */
