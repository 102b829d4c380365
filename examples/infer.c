/* infer.c: generate text with a twin model (GGUF), optionally grounded by retrieval.
 *
 *     build/fti-infer --model twin/models/<id>/model.gguf --prompt "The cynic" -n 64
 *     echo "Love:" | build/fti-infer --alias production --temp 0
 *     build/fti-infer --model m.gguf --perplexity notes.txt
 *
 * Prints only the generated text on stdout; retrieval and --stats go to stderr. The prompt is
 * rendered through the document template the feature pipeline trained on (an open document
 * whose body the model continues). With a feature store at --home and the model's lineage key
 * fti.dataset.version, the top BM25 chunks for the prompt are put in front of it as documents
 * (--no-rag turns that off). --perplexity FILE prints the perplexity of FILE's text (normalised
 * as ingestion does, fti_clean_text, and rendered through the template: fti-eval's figure for
 * the same text) as the last word. A prompt read from stdin loses its last line end.
 */
#define FTI_IMPLEMENTATION
#include "fti.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__unix__) || defined(__APPLE__)
#include <sys/resource.h>
#define INFER_HAVE_RUSAGE 1
#endif

/* The context used when --ctx is not given and the model's is longer: llama.cpp's default too
 * (a Llama 3.1 file says 131072: a 16 GB f16 KV cache per sequence at 8B) */
#define CTX_DEFAULT_MAX 4096

static void usage(FILE *f) {
    fprintf(f,
            "usage: fti-infer [--home DIR] [--model FILE | --alias NAME] [--prompt TEXT]\n"
            "                 [-n N] [--temp T] [--top-k K] [--top-p P] [--min-p P]\n"
            "                 [--repeat-penalty R] [--frequency-penalty F] [--presence-penalty P]\n"
            "                 [--seed S] [--threads N] [--ctx N]\n"
            "                 [--kv f16|f32|q8]\n"
            "                 [--stop TEXT]... [--title TEXT] [--rag-k K] [--rag | --no-rag]\n"
            "                 [--lora FILE] [--ignore-eos] [--stats] [--perplexity FILE]\n"
            "Generates text with a GGUF llama model. The prompt comes from --prompt or stdin.\n"
            "  --home DIR        workspace (default $FTI_HOME, else ./twin): registry and store\n"
            "  --model FILE      a GGUF model file\n"
            "  --alias NAME      a registry alias or model id (HOME/models/aliases.json;\n"
            "                    default production when no --model is given)\n"
            "  -n N              tokens to generate (default 128)\n"
            "  --temp T          temperature, 0 = greedy (default 0.8)\n"
            "  --top-k K         default 40; --top-p P default 0.95; --min-p P default 0.05\n"
            "                    (0 turns each off; --top-p 1 too)\n"
            "  --repeat-penalty  default 1.1 over the last 64 tokens\n"
            "  --frequency-penalty F, --presence-penalty P\n"
            "                    OpenAI's (logit -= count * F + (count > 0) * P), same window;\n"
            "                    default 0\n"
            "  --seed S          sampling seed (default 1)\n"
            "  --threads N       worker threads (default: all CPUs)\n"
            "  --ctx N           context length (default: the model's, at most 4096)\n"
            "  --kv f16|f32|q8   KV cache element type (default f16, as fti-serve; f32 is\n"
            "                    exact; q8 is int8 plus a scale per head row: 0.53 of f16's\n"
            "                    memory at head size 64)\n"
            "  --stop TEXT       stop before TEXT (repeatable, up to 16 times)\n"
            "  --rag-k K         retrieved chunks (default 3); --no-rag disables retrieval\n"
            "  --lora FILE       merge a LoRA adapter (from fti-train --lora) at load time\n"
            "  --stats           prefill/decode tokens/s, time to first token, peak RSS\n"
            "  --perplexity FILE print the perplexity of FILE as the last word and exit\n");
}

static int on_text(void *user, const char *text, size_t n) {
    (void)user;
    fwrite(text, 1, n, stdout);
    fflush(stdout);
    return 0;
}

static double peak_rss_mb(void) {
#ifdef INFER_HAVE_RUSAGE
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0) return (double)ru.ru_maxrss / 1024.0;
#endif
    return 0.0;
}

/* Resolves --alias NAME (an alias, a model id or a unique id prefix) through the registry
 * (part 07) to HOME/models/<id>/model.gguf. Without the training part (FTI_NO_TRAIN) it reads
 * the registry's HOME/models/aliases.json ({"alias": {"id": ...}}) itself. */
static char *resolve_alias(const char *home, const char *name, fti_error *err) {
    char *models = fti_path_join(home, "models");
    char *id = NULL, *dir, *path;
#if defined(FTI_TRAIN_H) && !defined(FTI_NO_TRAIN)
    char idbuf[17];
    if (fti_registry_resolve(home, name, idbuf, err) != FTI_OK) {
        fti_free(models);
        return NULL;
    }
    id = fti_strdup(idbuf);
#else
    char *aliases = fti_path_join(models, "aliases.json");
    void *data = NULL;
    size_t len = 0;
    fti_json_doc *doc = NULL;
    if (fti_file_read(aliases, 1 << 20, &data, &len, NULL) == FTI_OK &&
        fti_json_parse((const char *)data, len, NULL, &doc, NULL, err) == FTI_OK) {
        const fti_json *a = fti_json_get(fti_json_root(doc), name);
        const char *s = a ? (a->type == FTI_JSON_STRING ? a->str : fti_json_get_str(a, "id", NULL))
                          : NULL;
        if (s) id = fti_strdup(s);
    }
    fti_json_free(doc);
    fti_free(data);
    fti_free(aliases);
    if (!id) id = fti_strdup(name);
#endif
    dir = fti_path_join(models, id);
    path = fti_path_join(dir, "model.gguf");
    if (path && !fti_path_exists(path)) {
        fti_error_set(err, FTI_ERR_NOT_FOUND, "alias %s: no model at %s", name, path);
        fti_free(path);
        path = NULL;
    }
    fti_free(dir);
    fti_free(id);
    fti_free(models);
    return path;
}

#if defined(FTI_STORE_H) && !defined(FTI_NO_STORE)
/* The feature-store version the model was trained on (its lineage), opened once. */
static fti_dataset *rag_ds = NULL;
#endif

/* Retrieval: opens the feature-store version named by the model's fti.dataset.version key
 * under home, takes the top k BM25 chunks for the prompt, prints them (id, score, title) on
 * stderr and fills docs (pointing into the mapped index). Returns the number of docs; 0 when
 * the model has no lineage or the store is missing (said on stderr), or without part 04. */
static size_t retrieve(const fti_engine *e, const char *home, const char *text, size_t len,
                       size_t k, fti_prompt_doc *docs, size_t cap) {
#if defined(FTI_STORE_H) && !defined(FTI_NO_STORE)
    const char *ver = NULL;
    size_t ver_len = 0, n, i;
    char *ver_z;
    fti_error err;
    fti_search_hit hits[32];
    if (k == 0) return 0;
    if (k > cap) k = cap;
    if (k > 32) k = 32;
    if (fti_gguf_get_str(fti_engine_gguf(e), "fti.dataset.version", &ver, &ver_len, NULL) !=
        FTI_OK) {
        fprintf(stderr, "fti-infer: retrieval off: the model has no fti.dataset.version\n");
        return 0;
    }
    ver_z = fti_strndup(ver, ver_len);
    /* the index alone: a damaged token shard does not turn retrieval off */
    if (!ver_z || fti_dataset_open_index(&rag_ds, home, ver_z, &err) != FTI_OK) {
        fprintf(stderr, "fti-infer: retrieval off: %s\n", ver_z ? err.msg : "out of memory");
        fti_free(ver_z);
        return 0;
    }
    fti_free(ver_z);
    n = fti_dataset_search(rag_ds, text, len, k, hits);
    for (i = 0; i < n; i++) {
        /* an untitled document (a post, a note) is named by where it came from */
        int titled = hits[i].title && hits[i].title[0];
        fprintf(stderr, "fti-infer: retrieved chunk %lu (doc %s) score %.3f: %s%s\n",
                (unsigned long)hits[i].chunk, hits[i].doc_id ? hits[i].doc_id : "?",
                (double)hits[i].score, titled ? hits[i].title : "(untitled) ",
                titled ? "" : hits[i].source ? hits[i].source : "?");
        docs[i].title = hits[i].title;
        docs[i].title_len = hits[i].title ? strlen(hits[i].title) : 0;
        docs[i].text = hits[i].text;
        docs[i].text_len = hits[i].text_len;
    }
    if (n == 0) fprintf(stderr, "fti-infer: retrieval: no chunk matches the prompt\n");
    return n;
#else
    (void)e, (void)home, (void)text, (void)len, (void)k, (void)docs, (void)cap;
    return 0;
#endif
}

static int read_stdin(fti_buf *b) {
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, stdin)) > 0) fti_buf_append(b, chunk, n);
    return b->oom ? -1 : 0;
}

int main(int argc, char **argv) {
    const char *home_arg = NULL, *model = NULL, *alias = NULL, *prompt = NULL, *title = NULL;
    const char *ppl_file = NULL, *lora = NULL, *stops[16];
    size_t n_stop = 0, n_predict = 128, n_ctx = 0, rag_k = 3;
    fti_kv_type kv_type = FTI_KV_F16;
    int threads = 0, stats = 0, use_rag = 1, ignore_eos = 0, i, rc_exit = 1;
    fti_sampler_opts so;
    fti_error err;
    fti_engine *e = NULL;
    fti_tokenizer *tok = NULL;
    fti_session *s = NULL;
    fti_sampler *smp = NULL;
    fti_pool *pool = NULL;
    fti_session_opts sopts;
    fti_engine_opts eopts;
    fti_generate_opts go;
    fti_generate_stats st;
    fti_prompt pr;
    fti_buf input;
    char *home = NULL, *alias_path = NULL;
    uint64_t t0;
    double load_s;

    memset(&so, 0, sizeof so);
    memset(&input, 0, sizeof input);
    memset(&pr, 0, sizeof pr);
    so.temperature = 0.8f;
    so.top_k = 40;
    so.top_p = 0.95f;
    so.min_p = 0.05f;
    so.repeat_penalty = 1.1f;
    so.seed = 1;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        double x = 0;
#define NEEDV()                                                       \
    do {                                                              \
        if (!v) {                                                     \
            fprintf(stderr, "fti-infer: %s needs a value\n", a);      \
            return 2;                                                 \
        }                                                             \
        i++;                                                          \
    } while (0)
/* a number in [lo, hi]: anything else (letters, NaN, a sign where none fits) is refused */
#define NUMV(lo, hi)                                                            \
    do {                                                                        \
        char *end_ = NULL;                                                      \
        NEEDV();                                                                \
        x = strtod(v, &end_);                                                   \
        if (end_ == v || *end_ || !(x >= (lo) && x <= (hi))) {                  \
            fprintf(stderr, "fti-infer: %s takes a number from %.10g to %.10g, not '%s'\n", \
                    a, (double)(lo), (double)(hi), v);                          \
            return 2;                                                           \
        }                                                                       \
    } while (0)
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--home")) { NEEDV(); home_arg = v; }
        else if (!strcmp(a, "--model")) { NEEDV(); model = v; }
        else if (!strcmp(a, "--alias")) { NEEDV(); alias = v; }
        else if (!strcmp(a, "--prompt")) { NEEDV(); prompt = v; }
        else if (!strcmp(a, "--title")) { NEEDV(); title = v; }
        else if (!strcmp(a, "-n") || !strcmp(a, "--n-predict")) {
            NUMV(1, 1e9);
            n_predict = (size_t)x;
        }
        else if (!strcmp(a, "--temp")) { NUMV(0, 100); so.temperature = (float)x; }
        else if (!strcmp(a, "--top-k")) { NUMV(0, 1e9); so.top_k = (int)x; }
        else if (!strcmp(a, "--top-p")) { NUMV(0, 1); so.top_p = (float)x; }
        else if (!strcmp(a, "--min-p")) { NUMV(0, 1); so.min_p = (float)x; }
        else if (!strcmp(a, "--repeat-penalty")) { NUMV(0, 100); so.repeat_penalty = (float)x; }
        else if (!strcmp(a, "--frequency-penalty")) {
            NUMV(-100, 100);
            so.frequency_penalty = (float)x;
        } else if (!strcmp(a, "--presence-penalty")) {
            NUMV(-100, 100);
            so.presence_penalty = (float)x;
        }
        else if (!strcmp(a, "--seed")) {
            char *end = NULL;
            NEEDV();
            so.seed = strtoull(v, &end, 10);
            if (!*v || *end || *v == '-') {
                fprintf(stderr, "fti-infer: --seed takes a whole number, not '%s'\n", v);
                return 2;
            }
        }
        else if (!strcmp(a, "--threads")) { NUMV(0, 1024); threads = (int)x; }
        else if (!strcmp(a, "--ctx")) { NUMV(0, 16777216); n_ctx = (size_t)x; }
        else if (!strcmp(a, "--kv")) {
            NEEDV();
            if (fti_kv_type_parse(v) < 0) {
                fprintf(stderr, "fti-infer: --kv takes f16, f32 or q8, not '%s'\n", v);
                return 2;
            }
            kv_type = (fti_kv_type)fti_kv_type_parse(v);
        }
        else if (!strcmp(a, "--stop")) {
            NEEDV();
            if (n_stop == 16) { /* not dropped in silence */
                fprintf(stderr, "fti-infer: at most 16 --stop strings\n");
                return 2;
            }
            stops[n_stop++] = v;
        } else if (!strcmp(a, "--rag-k")) { NUMV(0, 100); rag_k = (size_t)x; }
        else if (!strcmp(a, "--rag")) use_rag = 1;
        else if (!strcmp(a, "--no-rag")) use_rag = 0;
        else if (!strcmp(a, "--ignore-eos")) ignore_eos = 1;
        else if (!strcmp(a, "--stats")) stats = 1;
        else if (!strcmp(a, "--perplexity")) { NEEDV(); ppl_file = v; }
        else if (!strcmp(a, "--lora")) { NEEDV(); lora = v; }
        else {
            fprintf(stderr, "fti-infer: unknown argument %s (see --help)\n", a);
            return 2;
        }
#undef NEEDV
#undef NUMV
    }
    if (model && alias) {
        fprintf(stderr, "fti-infer: give one of --model FILE or --alias NAME, not both\n");
        return 2;
    }
    if (!model && !alias) alias = "production"; /* as fti-serve and fti-eval */
    home = fti_strdup(home_arg && *home_arg ? home_arg
                      : getenv("FTI_HOME") && *getenv("FTI_HOME") ? getenv("FTI_HOME") : "twin");
    if (alias) {
        alias_path = resolve_alias(home, alias, &err);
        if (!alias_path) {
            fprintf(stderr, "fti-infer: %s\n", err.msg);
            goto out;
        }
        model = alias_path;
    }

    t0 = fti_time_ns();
    pool = fti_pool_create(threads);
    memset(&eopts, 0, sizeof eopts);
    eopts.lora_path = lora;
    eopts.pool = pool; /* (repacking at load, where the CPU has a faster form) */
    if (fti_engine_open(&e, model, &eopts, &err) != FTI_OK ||
        fti_engine_tokenizer(e, &tok, &err) != FTI_OK) {
        fprintf(stderr, "fti-infer: %s\n", err.msg);
        goto out;
    }
    if (n_ctx == 0 && fti_engine_config(e)->context_len > CTX_DEFAULT_MAX) {
        n_ctx = CTX_DEFAULT_MAX;
        fprintf(stderr, "fti-infer: context %d of the model's %lu (--ctx N for more)\n",
                CTX_DEFAULT_MAX, (unsigned long)fti_engine_config(e)->context_len);
    }
    if (n_ctx > fti_engine_config(e)->context_len) /* allowed, but said */
        fprintf(stderr, "fti-infer: --ctx %lu is more than %s's context (%lu tokens): it never "
                "saw positions past that in training, expect the text to degrade there\n",
                (unsigned long)n_ctx, fti_path_base(model),
                (unsigned long)fti_engine_config(e)->context_len);
    memset(&sopts, 0, sizeof sopts);
    sopts.pool = pool;
    sopts.n_ctx = n_ctx;
    sopts.kv_type = kv_type;
    if (fti_session_create(&s, e, &sopts, &err) != FTI_OK) {
        fprintf(stderr, "fti-infer: %s\n", err.msg);
        goto out;
    }
    load_s = (double)(fti_time_ns() - t0) * 1e-9;

    if (ppl_file) { /* perplexity of a file's text, rendered through the template */
        void *data = NULL;
        size_t len = 0;
        fti_tokens ids;
        int32_t *ids32;
        double *lp = NULL, nll_sum = 0, mean = 0;
        size_t k, n_scored = 0;
        memset(&ids, 0, sizeof ids);
        if (fti_file_read(ppl_file, 0, &data, &len, &err) != FTI_OK) {
            fprintf(stderr, "fti-infer: %s\n", err.msg);
            goto out;
        }
#if defined(FTI_STORE_H) && !defined(FTI_NO_STORE)
        { /* normalised as ingestion (and fti-eval) does: the text the model trained on never
           * ends in a newline or holds a CR, so a file's last newline is not scored */
            fti_buf clean;
            memset(&clean, 0, sizeof clean);
            fti_clean_text((const char *)data, len, 0, &clean);
            fti_free(data);
            if (clean.oom) {
                fprintf(stderr, "fti-infer: out of memory\n");
                fti_buf_free(&clean);
                goto out;
            }
            data = clean.data;
            len = clean.len;
        }
#endif
        for (k = 0; k < len && strchr(" \t\r\n\f\v", ((const char *)data)[k]); k++) {
        }
        if (k == len) { /* only the template's own tokens would be scored */
            fprintf(stderr, "fti-infer: %s: no text to score (the file is empty or blank)\n",
                    ppl_file);
            fti_free(data);
            goto out;
        }
        if (fti_engine_add_bos(e)) fti_tokens_push(&ids, (uint32_t)fti_engine_bos(e));
        fti_prompt_append_doc(tok, title, title ? strlen(title) : 0, (const char *)data, len, 0,
                              &ids);
        fti_free(data);
        ids32 = (int32_t *)fti_malloc((ids.len + 1) * sizeof(int32_t));
        lp = (double *)fti_malloc((ids.len + 1) * sizeof(double));
        for (k = 0; ids32 && k < ids.len; k++) ids32[k] = (int32_t)ids.ids[k];
        /* per-token log-probabilities, NaN where nothing is predicted (the first token; a text
         * longer than n_ctx goes in windows half a context apart, fti_session_token_logprobs):
         * the count printed is of the tokens scored, the ones in the mean */
        if (!ids32 || !lp || fti_session_token_logprobs(s, ids32, ids.len, lp, &err) != FTI_OK) {
            fprintf(stderr, "fti-infer: %s\n", ids32 && lp ? err.msg : "out of memory");
            fti_free(ids32);
            fti_free(lp);
            fti_tokens_free(&ids);
            goto out;
        }
        for (k = 0; k < ids.len; k++)
            if (lp[k] == lp[k]) {
                nll_sum -= lp[k];
                n_scored++;
            }
        if (n_scored) mean = nll_sum / (double)n_scored;
        fprintf(stderr, "fti-infer: %lu tokens scored (of %lu: all but the first, each given up "
                "to %lu tokens before it), mean NLL %.4f nats\n", (unsigned long)n_scored,
                (unsigned long)ids.len, (unsigned long)fti_session_n_ctx(s) - 1, mean);
        printf("perplexity %.4f\n", exp(mean));
        fti_free(ids32);
        fti_free(lp);
        fti_tokens_free(&ids);
        rc_exit = 0;
        goto out;
    }

    if (prompt) fti_buf_puts(&input, prompt);
    else if (read_stdin(&input) != 0) {
        fprintf(stderr, "fti-infer: out of memory reading stdin\n");
        goto out;
    } else { /* the line end echo or a here-document adds is not part of the prompt */
        if (input.len && input.data[input.len - 1] == '\n' && --input.len &&
            input.data[input.len - 1] == '\r')
            input.len--;
    }
    {
        /* leave room for the answer: n_predict, or half the context when that is more */
        size_t n_ctx_s = fti_session_n_ctx(s);
        size_t room = n_ctx_s > 2 * n_predict ? n_ctx_s - n_predict : (n_ctx_s + 1) / 2;
        fti_prompt_doc docs[32];
        size_t n_docs = 0;
        memset(docs, 0, sizeof docs);
        if (use_rag) n_docs = retrieve(e, home, input.data ? input.data : "", input.len, rag_k,
                                       docs, 32);
        if (fti_prompt_build(e, tok, title, input.data ? input.data : "", input.len, docs, n_docs,
                             room, &pr, &err) != FTI_OK) {
            fprintf(stderr, "fti-infer: %s\n", err.msg);
            goto out;
        }
        if (n_docs)
            fprintf(stderr, "fti-infer: %lu of %lu retrieved chunks fit in the prompt\n",
                    (unsigned long)pr.n_docs_used, (unsigned long)n_docs);
        if (pr.n_dropped)
            fprintf(stderr, "fti-infer: prompt cut by %lu tokens from the left to fit\n",
                    (unsigned long)pr.n_dropped);
    }
    if (fti_sampler_create(&smp, fti_engine_config(e)->vocab_size, &so) != FTI_OK) {
        fprintf(stderr, "fti-infer: out of memory\n");
        goto out;
    }
    memset(&go, 0, sizeof go);
    go.max_tokens = n_predict;
    go.stop = stops;
    go.n_stop = n_stop;
    go.ignore_eos = ignore_eos;
    go.on_text = on_text;
    if (fti_generate(s, smp, pr.ids, pr.n, &go, &st, &err) != FTI_OK) {
        if (err.code == FTI_ERR_NUMERIC) /* (the reader does not scan every weight) */
            fprintf(stderr, "\nfti-infer: %s: %s: NaN or infinite weights in the file?\n", model,
                    err.msg);
        else
            fprintf(stderr, "\nfti-infer: %s\n", err.msg);
        goto out;
    }
    fflush(stdout);
    if (st.finish == FTI_FINISH_CONTEXT) /* fewer tokens than -n asked for: say why */
        fprintf(stderr, "\nfti-infer: stopped after %lu of the %lu tokens asked for: the context "
                "is full (%lu tokens, the prompt's %lu among them)%s\n",
                (unsigned long)st.n_generated, (unsigned long)n_predict,
                (unsigned long)fti_session_n_ctx(s), (unsigned long)st.n_prompt,
                fti_session_n_ctx(s) < fti_engine_config(e)->context_len
                    ? " (--ctx N gives it more)" : "");
    if (stats) {
        double ttft = load_s + st.first_token_s;
        fprintf(stderr,
                "\nfti-infer: load %.1f ms | prompt %lu tokens, %.1f tokens/s | generated %lu "
                "tokens, %.1f tokens/s | first token %.1f ms after start | peak RSS %.1f MB | "
                "%d threads | %s weights | finish %d (%s)\n",
                load_s * 1e3, (unsigned long)st.n_prompt,
                st.prefill_s > 0 ? (double)st.n_prompt / st.prefill_s : 0.0,
                (unsigned long)st.n_generated,
                st.decode_s > 0 ? (double)st.n_generated / st.decode_s : 0.0, ttft * 1e3,
                peak_rss_mb(), fti_pool_threads(pool),
                fti_ggml_type_name(fti_engine_weight_type(e)), (int)st.finish,
                st.finish == FTI_FINISH_EOS       ? "end of text"
                : st.finish == FTI_FINISH_LENGTH  ? "-n reached"
                : st.finish == FTI_FINISH_STOP    ? "stop string"
                : st.finish == FTI_FINISH_CONTEXT ? "context full"
                                                  : "stopped");
    }
    rc_exit = 0;
out:
#if defined(FTI_STORE_H) && !defined(FTI_NO_STORE)
    fti_dataset_close(rag_ds);
#endif
    fti_prompt_free(&pr);
    fti_buf_free(&input);
    fti_sampler_free(smp);
    fti_session_free(s);
    fti_pool_free(pool);
    fti_tokenizer_free(tok);
    fti_engine_close(e);
    fti_free(alias_path);
    fti_free(home);
    return rc_exit;
}
