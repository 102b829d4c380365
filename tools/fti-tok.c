/* fti-tok: train, inspect and run byte-level BPE tokenizers (fti's part 03).
 *
 *   build/fti-tok train --out my.ftitok --vocab 4096 corpus/
 *   build/fti-tok encode --tokenizer ../shared/data/tokenizers/tiktoken/cl100k_base.tiktoken a.txt
 *   build/fti-tok decode --tokenizer my.ftitok 464 2068 7586
 *   build/fti-tok info --tokenizer ../shared/data/tokenizers/gpt2/encoder.json
 *
 * Run `build/fti-tok --help` for every option. Exit status: 0 ok, 1 failure, 2 usage error.
 */
#define FTI_IMPLEMENTATION
#include "fti.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *usage_text =
    "usage: fti-tok COMMAND [OPTIONS] [FILE...]\n"
    "\n"
    "Byte-level BPE tokenizers: fti's own file (.ftitok), tiktoken rank files (.tiktoken),\n"
    "GPT-2 encoder.json (+ vocab.bpe in the same directory) and a GGUF model's own tokenizer\n"
    "(model.gguf: the ids fti-serve's logit_bias takes) are accepted wherever a tokenizer is\n"
    "read; the format is detected from the content.\n"
    "\n"
    "commands:\n"
    "  train --out FILE [FILE|DIR...]   learn a tokenizer from text files (each file is one\n"
    "                                   document; directories are walked; stdin if none)\n"
    "      --vocab N          vocabulary size incl. 256 bytes and special tokens (default 4096)\n"
    "      --min-freq N       stop when the best pair occurs fewer times (default 2)\n"
    "      --pretok NAME      gpt2 (default), cl100k or o200k split pattern\n"
    "      --special TEXT     a special token (repeatable; default <|endoftext|>)\n"
    "      --jsonl            inputs are JSON lines; each line's \"text\" is a document\n"
    "  encode --tokenizer FILE [FILE...]  print the token ids of each file (stdin if none),\n"
    "                                   separated by spaces, one line per file\n"
    "      --special          match special-token strings (only for trusted text)\n"
    "      --text STRING      encode STRING instead of files\n"
    "      --quiet            print no ids (with --stats: a benchmark)\n"
    "  decode --tokenizer FILE [ID...]  write the bytes of the ids (read from stdin if none)\n"
    "  info --tokenizer FILE            vocabulary size, pre-tokenizer, special tokens, SHA-256 "
    "id\n"
    "      --gguf             also print the first GGUF merges and tokens\n"
    "\n"
    "common options:\n"
    "  --threads N            threads for counting/encoding (default: all CPUs; 1 = serial)\n"
    "  --pretok NAME          override the pre-tokenizer of a loaded tokenizer\n"
    "  --stats                print bytes, tokens, time and MB/s to stderr\n"
    "  -h, --help             this help\n";

static int usage_error(const char *msg) {
    fprintf(stderr, "fti-tok: %s\n(run fti-tok --help)\n", msg);
    return 2;
}

typedef struct args {
    const char *cmd, *tokenizer, *out, *text;
    const char *pretok;
    const char *special[64];
    size_t n_special;
    const char **files;
    size_t n_files;
    size_t vocab;
    unsigned long long min_freq;
    int threads, jsonl, allow_special, quiet, stats, gguf;
} args;

static int parse_args(int argc, char **argv, args *a) {
    int i;
    memset(a, 0, sizeof *a);
    a->files = (const char **)calloc((size_t)argc + 1, sizeof(char *));
    if (!a->files) return 1;
    for (i = 1; i < argc; i++) {
        const char *s = argv[i];
        int has_val = i + 1 < argc;
        if (!strcmp(s, "-h") || !strcmp(s, "--help")) {
            fputs(usage_text, stdout);
            exit(0);
        } else if (!strcmp(s, "--tokenizer") && has_val) {
            a->tokenizer = argv[++i];
        } else if (!strcmp(s, "--out") && has_val) {
            a->out = argv[++i];
        } else if (!strcmp(s, "--text") && has_val) {
            a->text = argv[++i];
        } else if ((!strcmp(s, "--vocab") || !strcmp(s, "--min-freq")) && has_val) {
            char *end = NULL;
            const char *v = argv[++i];
            unsigned long long x = strtoull(v, &end, 10);
            if (!*v || *end || *v == '-' || x > ((unsigned long long)1 << 31)) {
                fprintf(stderr, "fti-tok: %s takes a whole number, not '%s'\n", s, v);
                return 2;
            }
            if (s[2] == 'v') a->vocab = (size_t)x;
            else a->min_freq = x;
        } else if (!strcmp(s, "--pretok") && has_val) {
            a->pretok = argv[++i];
        } else if (!strcmp(s, "--special") && a->cmd && !strcmp(a->cmd, "train")) {
            /* train --special TEXT: a token string, checked here to be named plainly */
            const char *v = has_val ? argv[++i] : NULL;
            size_t len = v ? strlen(v) : 0;
            char msg[128];
            if (!len)
                return usage_error(v ? "--special needs a token string, not an empty one"
                                     : "--special needs a token string (train --special TEXT)");
            if (len > FTI_TOK_MAX_TOKEN_BYTES) {
                snprintf(msg, sizeof msg, "--special token of %lu bytes: a token has at most %d",
                         (unsigned long)len, FTI_TOK_MAX_TOKEN_BYTES);
                return usage_error(msg);
            }
            if (a->n_special == sizeof a->special / sizeof a->special[0]) {
                snprintf(msg, sizeof msg, "at most %lu --special tokens",
                         (unsigned long)(sizeof a->special / sizeof a->special[0]));
                return usage_error(msg);
            }
            a->special[a->n_special++] = v;
        } else if (!strcmp(s, "--special")) {
            a->allow_special = 1;
        } else if (!strcmp(s, "--threads") && has_val) {
            char *end = NULL;
            long n = strtol(argv[++i], &end, 10);
            if (end == argv[i] || *end || n < 0 || n > 1024)
                return usage_error("--threads takes a whole number from 0 to 1024");
            a->threads = (int)n;
        } else if (!strcmp(s, "--jsonl")) {
            a->jsonl = 1;
        } else if (!strcmp(s, "--quiet")) {
            a->quiet = 1;
        } else if (!strcmp(s, "--stats")) {
            a->stats = 1;
        } else if (!strcmp(s, "--gguf")) {
            a->gguf = 1;
        } else if (s[0] == '-' && s[1] == '-') {
            fprintf(stderr, "fti-tok: unknown option %s\n", s);
            return 2;
        } else if (!*s) {
            if (i > 1 && !strcmp(argv[i - 1], "--special"))
                return usage_error("an empty argument after --special (only after the train "
                                   "command does it take a token string: train --special TEXT)");
            return usage_error("an empty argument where a command or file name belongs");
        } else if (!a->cmd) {
            a->cmd = s;
        } else {
            a->files[a->n_files++] = s;
        }
    }
    return 0;
}

static fti_tokenizer *load_tokenizer(const args *a) {
    fti_tokenizer_opts o;
    fti_tokenizer *tok = NULL;
    fti_error err;
    memset(&o, 0, sizeof o);
    if (!a->tokenizer) {
        usage_error("--tokenizer FILE is required");
        return NULL;
    }
    if (a->pretok) {
        o.pretok = fti_pretok_parse(a->pretok);
        if (!o.pretok) {
            usage_error("unknown --pretok (gpt2, cl100k, o200k)");
            return NULL;
        }
    }
#if defined(FTI_INFER_H)
    { /* a GGUF model file: its tokenizer (the engine builds it from the file's vocabulary) */
        FILE *f = fopen(a->tokenizer, "rb");
        char magic[4] = {0};
        int gguf = f && fread(magic, 1, 4, f) == 4 && memcmp(magic, "GGUF", 4) == 0;
        if (f) fclose(f);
        if (gguf) {
            fti_engine *e = NULL;
            fti_engine_opts eo;
            fti_result r;
            memset(&eo, 0, sizeof eo);
            eo.no_repack = 1; /* only the vocabulary is used */
            r = fti_engine_open(&e, a->tokenizer, &eo, &err);
            if (r == FTI_OK) r = fti_engine_tokenizer(e, &tok, &err);
            fti_engine_close(e);
            if (r != FTI_OK) { /* the engine's messages name the file */
                fprintf(stderr, "fti-tok: %s\n", err.msg);
                return NULL;
            }
            if (a->pretok) fprintf(stderr, "fti-tok: --pretok is ignored for a GGUF model\n");
            return tok;
        }
    }
#endif
    if (fti_tokenizer_load(a->tokenizer, &o, &tok, &err) != FTI_OK) {
        fprintf(stderr, "fti-tok: %s\n", err.msg);
        return NULL;
    }
    return tok;
}

/* Reads all of stdin. */
static char *read_stdin(size_t *len) {
    fti_buf b;
    char chunk[65536];
    size_t n;
    memset(&b, 0, sizeof b);
    while ((n = fread(chunk, 1, sizeof chunk, stdin)) > 0) fti_buf_append(&b, chunk, n);
    if (b.oom) {
        fti_buf_free(&b);
        return NULL;
    }
    *len = b.len;
    if (!b.data) return (char *)fti_calloc(1, 1);
    return b.data;
}

/* --- train --- */

typedef struct train_ctx {
    fti_bpe_trainer *t;
    int jsonl;
    fti_error *err;
    uint64_t n_files;
} train_ctx;

static fti_result add_text(train_ctx *c, const char *data, size_t len, const char *path) {
    if (!c->jsonl) return fti_bpe_trainer_add(c->t, data, len);
    {
        size_t pos = 0, line = 0;
        while (pos < len) {
            const char *nl = (const char *)memchr(data + pos, '\n', len - pos);
            size_t ll = nl ? (size_t)(nl - (data + pos)) : len - pos;
            fti_json_doc *doc = NULL;
            line++;
            if (ll && fti_json_parse(data + pos, ll, NULL, &doc, NULL, c->err) == FTI_OK) {
                const fti_json *text = fti_json_get(fti_json_root(doc), "text");
                if (text && text->type == FTI_JSON_STRING) {
                    fti_result r = fti_bpe_trainer_add(c->t, text->str, text->len);
                    if (r != FTI_OK) {
                        fti_json_free(doc);
                        return r;
                    }
                }
                fti_json_free(doc);
            } else if (ll) {
                fprintf(stderr, "fti-tok: %s:%lu: skipped (not JSON)\n", path, (unsigned long)line);
            }
            pos += ll + 1;
        }
    }
    return FTI_OK;
}

static fti_result train_file(void *user, const char *path, uint64_t size_bytes) {
    train_ctx *c = (train_ctx *)user;
    void *data = NULL;
    size_t len = 0;
    fti_result r;
    (void)size_bytes;
    r = fti_file_read(path, 0, &data, &len, c->err);
    if (r != FTI_OK) return r;
    r = add_text(c, (const char *)data, len, path);
    fti_free(data);
    c->n_files++;
    return r;
}

static void train_progress(void *user, size_t done, size_t total) {
    fti_progress *p = (fti_progress *)user;
    p->total = total;
    fti_progress_update(p, done, NULL);
}

static int cmd_train(const args *a, fti_pool *pool) {
    fti_bpe_train_opts o;
    fti_bpe_trainer *t = NULL;
    fti_tokenizer *tok = NULL;
    fti_error err;
    fti_progress prog;
    train_ctx c;
    fti_bpe_train_stats st;
    size_t i;
    uint64_t t0 = fti_time_ns(), t1;
    char hex[65];
    size_t n_sp = a->n_special ? a->n_special : 1; /* default: <|endoftext|> */
    if (!a->out) return usage_error("train needs --out FILE");
    memset(&o, 0, sizeof o);
    o.vocab_size = a->vocab;
    o.min_frequency = a->min_freq;
    if (a->pretok && !(o.pretok = fti_pretok_parse(a->pretok)))
        return usage_error("unknown --pretok (gpt2, cl100k, o200k)");
    if (a->n_special) {
        o.special = a->special;
        o.n_special = a->n_special;
    }
    o.pool = pool;
    o.progress = train_progress;
    o.progress_user = &prog;
    if (a->vocab && (a->vocab < 256 + n_sp || a->vocab > FTI_TOK_MAX_VOCAB)) {
        char msg[160];
        snprintf(msg, sizeof msg, "--vocab %lu is out of range: %lu (256 bytes + %lu special) to "
                 "%lu", (unsigned long)a->vocab, (unsigned long)(256 + n_sp), (unsigned long)n_sp,
                 (unsigned long)FTI_TOK_MAX_VOCAB);
        return usage_error(msg);
    }
    if (fti_bpe_trainer_create(&o, &t) != FTI_OK)
        return usage_error("bad training options (vocab must fit the 256 bytes and specials)");
    memset(&c, 0, sizeof c);
    c.t = t;
    c.jsonl = a->jsonl;
    c.err = &err;
    fti_error_clear(&err);
    if (a->n_files == 0) {
        size_t len = 0;
        char *data = read_stdin(&len);
        if (!data || add_text(&c, data, len, "stdin") != FTI_OK) {
            fprintf(stderr, "fti-tok: cannot read stdin\n");
            fti_free(data);
            fti_bpe_trainer_free(t);
            return 1;
        }
        fti_free(data);
    }
    for (i = 0; i < a->n_files; i++) {
        if (fti_walk(a->files[i], train_file, &c, &err) != FTI_OK) {
            fprintf(stderr, "fti-tok: %s: %s\n", a->files[i], err.msg[0] ? err.msg : "cannot read");
            fti_bpe_trainer_free(t);
            return 1;
        }
    }
    fti_progress_begin(&prog, stderr, "merges", "merges", o.vocab_size ? o.vocab_size : 4096);
    if (fti_bpe_trainer_train(t, &tok, &err) != FTI_OK) {
        fprintf(stderr, "fti-tok: %s\n", err.msg);
        fti_bpe_trainer_free(t);
        return 1;
    }
    fti_progress_end(&prog, NULL);
    t1 = fti_time_ns();
    fti_bpe_trainer_stats(t, &st);
    fti_bpe_trainer_free(t);
    if (fti_tokenizer_save(tok, a->out, &err) != FTI_OK) {
        fprintf(stderr, "fti-tok: %s\n", err.msg);
        fti_tokenizer_free(tok);
        return 1;
    }
    fti_tokenizer_id_hex(tok, hex);
    fprintf(stderr,
            "fti-tok: %s: vocab %lu (%lu merges, last pair seen %llu times) from %llu bytes, "
            "%llu pre-tokens (%llu unique) in %.3f s; id %s\n",
            a->out, (unsigned long)fti_tokenizer_vocab_size(tok), (unsigned long)st.n_merges,
            (unsigned long long)st.last_count, (unsigned long long)st.n_bytes,
            (unsigned long long)st.n_words, (unsigned long long)st.n_unique, (t1 - t0) / 1e9, hex);
    if (a->stats) printf("train_seconds %.6f\n", (t1 - t0) / 1e9);
    fti_tokenizer_free(tok);
    return 0;
}

/* --- encode / decode / info --- */

static int print_ids(const fti_tokens *t) {
    size_t i;
    char buf[16];
    for (i = 0; i < t->len; i++) {
        int n = snprintf(buf, sizeof buf, i ? " %u" : "%u", (unsigned)t->ids[i]);
        fwrite(buf, 1, (size_t)n, stdout);
    }
    fputc('\n', stdout);
    return ferror(stdout) ? 1 : 0;
}

static int encode_one(const args *a, const fti_tokenizer *tok, fti_pool *pool, const char *data,
                      size_t len, uint64_t *bytes, uint64_t *tokens, uint64_t *ns) {
    fti_tokens t;
    uint64_t t0;
    fti_result r;
    memset(&t, 0, sizeof t);
    t0 = fti_time_ns();
    r = fti_tokenizer_encode_pool(tok, pool, data, len,
                                  a->allow_special ? FTI_TOK_ALLOW_SPECIAL : 0, &t);
    *ns += fti_time_ns() - t0;
    if (r != FTI_OK) {
        fprintf(stderr, "fti-tok: encode: %s\n", fti_result_str(r));
        fti_tokens_free(&t);
        return 1;
    }
    *bytes += len;
    *tokens += t.len;
    if (!a->quiet && print_ids(&t)) {
        fti_tokens_free(&t);
        return 1;
    }
    fti_tokens_free(&t);
    return 0;
}

static int cmd_encode(const args *a, fti_pool *pool) {
    fti_tokenizer *tok = load_tokenizer(a);
    uint64_t bytes = 0, tokens = 0, ns = 0;
    size_t i;
    int rc = 0;
    if (!tok) return 1;
    if (a->text) {
        rc = encode_one(a, tok, pool, a->text, strlen(a->text), &bytes, &tokens, &ns);
    } else if (a->n_files == 0) {
        size_t len = 0;
        char *data = read_stdin(&len);
        rc = data ? encode_one(a, tok, pool, data, len, &bytes, &tokens, &ns) : 1;
        fti_free(data);
    }
    for (i = 0; i < a->n_files && rc == 0; i++) {
        void *data = NULL;
        size_t len = 0;
        fti_error err;
        if (fti_file_read(a->files[i], 0, &data, &len, &err) != FTI_OK) {
            fprintf(stderr, "fti-tok: %s\n", err.msg);
            rc = 1;
            break;
        }
        rc = encode_one(a, tok, pool, (const char *)data, len, &bytes, &tokens, &ns);
        fti_free(data);
    }
    if (a->stats)
        fprintf(stderr, "encode: %llu bytes, %llu tokens, %.6f s, %.2f MB/s, %d threads\n",
                (unsigned long long)bytes, (unsigned long long)tokens, ns / 1e9,
                ns ? bytes / (ns / 1e9) / 1e6 : 0.0, fti_pool_threads(pool));
    fti_tokenizer_free(tok);
    return rc;
}

static int decode_id(const fti_tokenizer *tok, fti_detok *d, const char *s, fti_buf *out) {
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    if (end == s || *end || v > 0xFFFFFFFFul) {
        fprintf(stderr, "fti-tok: decode: \"%s\" is not a token id\n", s);
        return 1;
    }
    if (fti_detok_push(d, tok, (uint32_t)v, out) != FTI_OK) {
        fprintf(stderr, "fti-tok: decode: id %lu is not in the vocabulary\n", v);
        return 1;
    }
    return 0;
}

static int cmd_decode(const args *a) {
    fti_tokenizer *tok = load_tokenizer(a);
    fti_detok d;
    fti_buf out;
    size_t i;
    int rc = 0;
    if (!tok) return 1;
    memset(&d, 0, sizeof d);
    memset(&out, 0, sizeof out);
    if (a->n_files) {
        for (i = 0; i < a->n_files && !rc; i++) rc = decode_id(tok, &d, a->files[i], &out);
    } else {
        size_t len = 0, pos = 0;
        char *data = read_stdin(&len);
        if (!data) rc = 1;
        while (!rc && pos < len) {
            size_t e;
            while (pos < len && (data[pos] == ' ' || data[pos] == '\n' || data[pos] == '\t' ||
                                 data[pos] == '\r' || data[pos] == ','))
                pos++;
            e = pos;
            while (e < len && data[e] >= '0' && data[e] <= '9') e++;
            if (e == pos) {
                if (pos < len) {
                    fprintf(stderr, "fti-tok: decode: unexpected '%c' in input\n", data[pos]);
                    rc = 1;
                }
                break;
            }
            {
                char num[24];
                size_t n = e - pos < 23 ? e - pos : 23;
                if (e - pos > 23) { /* no id has that many digits: not cut to one that has */
                    fprintf(stderr, "fti-tok: decode: id %.23s... is too long\n", data + pos);
                    rc = 1;
                    break;
                }
                memcpy(num, data + pos, n);
                num[n] = 0;
                rc = decode_id(tok, &d, num, &out);
            }
            pos = e;
            if (out.len > 65536) {
                fwrite(out.data, 1, out.len, stdout);
                out.len = 0;
            }
        }
        fti_free(data);
    }
    fti_detok_flush(&d, &out);
    fwrite(out.data ? out.data : "", 1, out.len, stdout);
    fti_buf_free(&out);
    fti_tokenizer_free(tok);
    return rc;
}

static int cmd_info(const args *a) {
    fti_tokenizer *tok = load_tokenizer(a);
    char hex[65];
    size_t i;
    if (!tok) return 1;
    fti_tokenizer_id_hex(tok, hex);
    printf("file        %s\n", a->tokenizer);
    printf("id          %s\n", hex);
    printf("vocab_size  %lu\n", (unsigned long)fti_tokenizer_vocab_size(tok));
    printf("pretok      %s\n", fti_pretok_name(fti_tokenizer_pretok(tok)));
    printf("specials    %lu\n", (unsigned long)fti_tokenizer_n_special(tok));
    for (i = 0; i < fti_tokenizer_n_special(tok); i++) {
        uint32_t id = fti_tokenizer_special_at(tok, i);
        size_t len;
        const char *s = fti_tokenizer_token(tok, id, &len);
        printf("  %u %.*s\n", (unsigned)id, (int)len, s);
    }
    if (a->gguf) {
        fti_tokenizer_gguf g;
        if (fti_tokenizer_gguf_make(tok, &g) == FTI_OK) {
            printf("gguf.model  %s\ngguf.pre    %s\ngguf.tokens %lu\ngguf.merges %lu\n", g.model,
                   g.pre, (unsigned long)g.n_tokens, (unsigned long)g.n_merges);
            for (i = 0; i < 5 && i < g.n_merges; i++)
                printf("  merge %lu: %s\n", (unsigned long)i, g.merges[i]);
            fti_tokenizer_gguf_free(&g);
        }
    }
    fti_tokenizer_free(tok);
    return 0;
}

int main(int argc, char **argv) {
    args a;
    fti_pool *pool = NULL;
    int rc;
    rc = parse_args(argc, argv, &a);
    if (rc) return rc;
    if (!a.cmd) return usage_error("a command is required: train, encode, decode or info");
    if (!strcmp(a.cmd, "train") || !strcmp(a.cmd, "encode")) {
        pool = fti_pool_create(a.threads > 0 ? a.threads : 0);
        if (!pool) {
            fprintf(stderr, "fti-tok: cannot create threads\n");
            return 1;
        }
    }
    if (!strcmp(a.cmd, "train")) rc = cmd_train(&a, pool);
    else if (!strcmp(a.cmd, "encode")) rc = cmd_encode(&a, pool);
    else if (!strcmp(a.cmd, "decode")) rc = cmd_decode(&a);
    else if (!strcmp(a.cmd, "info")) rc = cmd_info(&a);
    else {
        char msg[160];
        snprintf(msg, sizeof msg, "unknown command '%.80s' (train, encode, decode, info)", a.cmd);
        rc = usage_error(msg);
    }
    fti_pool_free(pool);
    free((void *)a.files);
    return rc;
}
