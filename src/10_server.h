/* === server: HTTP/1.1, the OpenAI-compatible API, continuous batching === */
/*
 * The server part turns a generator into a network service. It has four layers, each usable and
 * testable on its own:
 *
 *   parser     fti_http_parse_head / fti_http_chunked_feed / fti_http_parse_request: pure functions
 *              over bytes. Hostile input is the normal case: every limit is named and checked
 *              before anything grows, and every construct used for request smuggling
 *              (Content-Length next to Transfer-Encoding, duplicate or odd Content-Length, bare LF
 *              or CR, obs-fold, bad chunk sizes) is an error that closes the connection, so a byte
 *              stream is never read as two requests in a way a front proxy would not.
 *   api        fti_api_parse_completion: validates an OpenAI /v1/completions or
 *              /v1/chat/completions body (types and ranges, 400 with an OpenAI-style error body
 *              otherwise) and renders chat messages into one prompt; writers for the JSON
 *              responses and Server-Sent Events.
 *   generator  fti_gen: the small interface the server drives. A sequence is started from a prompt
 *              (tokenize + prefill), then the scheduler steps a BATCH of active sequences one token
 *              each: weights are read once per step for all of them (continuous batching: sequences
 *              join and leave between steps). fti_gen_echo is a deterministic stand-in used by the
 *              tests and the load benchmark; the inference part provides the real one.
 *   server     fti_server: POSIX sockets, one poll() loop for all connections plus one scheduler
 *              thread. Keep-alive, a deadline for the whole header (not reset per byte), idle and
 *              body timeouts, a connection cap and a bounded queue (503), EMFILE survival, graceful
 *              stop (stop accepting, finish in-flight, flush logs), hot swap of the generator
 *              without dropping in-flight requests. Endpoints: POST /v1/completions, POST
 *              /v1/chat/completions, GET /v1/models, /health, /metrics (Prometheus text), a
 *              dashboard at / (inline HTML, CSS, JS), and llama.cpp's POST /tokenize and
 *              /detokenize (the server's own tokens, for clients that count a prompt's).
 *
 * The socket server needs POSIX and threads: under FTI_NO_THREADS fti_server_create returns
 * FTI_ERR_UNSUPPORTED (the parser and the API layer still work). FTI_NO_SERVER removes the part.
 */
#ifndef FTI_SERVER_H
#define FTI_SERVER_H

#include "09_monitor.h"

#ifndef FTI_NO_SERVER

#ifdef __cplusplus
extern "C" {
#endif

/* --- HTTP/1.1 request parsing ----------------------------------------------------------------- */

/* Parser results: > 0 is done (bytes consumed), 0 needs more bytes, < 0 is -status: the HTTP status
 * to answer with before closing (-400, -413, -414, -431, -501, -505). */
#define FTI_HTTP_INCOMPLETE 0

/* Limits (zero fields mean the default in brackets). */
typedef struct fti_http_limits {
    size_t max_request_line; /* bytes of the request line without CRLF [8192] -> 414 */
    size_t max_head;         /* bytes of request line + fields + blank line [32768] -> 431 */
    size_t max_fields;       /* header fields [100] -> 431 */
    size_t max_body;         /* body bytes, after chunked decoding [1 MiB] -> 413 */
} fti_http_limits;

#define FTI_HTTP_MAX_FIELDS_CAP 256 /* hard cap of the field table */

typedef struct fti_http_span {
    size_t off; /* into the buffer passed to the parser */
    size_t len;
} fti_http_span;

typedef struct fti_http_field {
    fti_http_span name;
    fti_http_span value; /* leading and trailing whitespace removed */
} fti_http_field;

/* A parsed request head. Spans point into the caller's buffer. */
typedef struct fti_http_head {
    fti_http_span method;
    fti_http_span target;
    int version_minor;       /* HTTP/1.<minor>: 0 or 1 */
    size_t n_fields;
    fti_http_field fields[FTI_HTTP_MAX_FIELDS_CAP];
    size_t head_len;         /* bytes of the head including the blank line */
    int chunked;             /* Transfer-Encoding: chunked */
    uint64_t content_length; /* when !chunked (0 if absent) */
    int keep_alive;          /* per version and Connection */
    int expect_continue;     /* Expect: 100-continue */
    const char *error;       /* static text naming the problem when the parse failed */
} fti_http_head;

/* Parses the head of one request from buf[0..len). Returns head_len (> 0) when the head is complete
 * and valid, FTI_HTTP_INCOMPLETE when more bytes are needed (and no limit has been crossed yet),
 * or -status. Leading CRLFs before the request line are skipped (RFC 9112 2.2).
 * Thread safety: any thread. */
FTIDEF long fti_http_parse_head(const unsigned char *buf, size_t len, const fti_http_limits *lim,
                                fti_http_head *head);

/* Resumable chunked-body decoder. Zero-initialise, then call fti_http_chunked_feed with the bytes
 * after the head (the same growing buffer each time; it remembers how far it got). Decoded data is
 * appended to `out`. Returns the number of bytes of buf consumed by the body (> 0, including the
 * last chunk and trailers) when complete, FTI_HTTP_INCOMPLETE when more is needed, -400 on a bad
 * chunk size, missing CRLF or bad trailer, -413 when the decoded body would exceed max_body, -431
 * when trailers are too large. Thread safety: one thread per object. */
typedef struct fti_http_chunked {
    size_t pos;          /* next byte of buf to look at */
    int state;           /* internal */
    uint64_t remaining;  /* bytes left in the current chunk */
    size_t n_trailer;    /* trailer bytes/fields seen */
    size_t n_trailer_fields;
    size_t line_len;     /* bytes from pos known to hold no line end (a line still coming) */
} fti_http_chunked;
FTIDEF long fti_http_chunked_feed(fti_http_chunked *c, const unsigned char *buf, size_t len,
                                  const fti_http_limits *lim, fti_buf *out);

/* One-shot parse of a whole request (head + body) from buf[0..len), as used by tests and the fuzz
 * entry. On success returns the bytes consumed (> 0) and the body in *body (a span into buf, or for
 * chunked bodies the decoded bytes in body_buf, which the caller frees with fti_buf_free).
 * Otherwise as fti_http_parse_head. Thread safety: any thread. */
FTIDEF long fti_http_parse_request(const unsigned char *buf, size_t len, const fti_http_limits *lim,
                                   fti_http_head *head, fti_buf *body_buf, const char **body,
                                   size_t *body_len);

/* Looks a field up by name (case-insensitive); returns the number of occurrences and the first
 * value in *value. */
FTIDEF size_t fti_http_head_field(const fti_http_head *head, const unsigned char *buf,
                                  const char *name, fti_http_span *value);

/* Reason phrase for a status code ("Not Found"); "Unknown" for codes it does not know. */
FTIDEF const char *fti_http_reason(int status);

/* --- the OpenAI API layer --------------------------------------------------------------------- */

#define FTI_API_MAX_STOP 4
#define FTI_API_MAX_STOP_LEN 64
/* The most alternatives a token's log-probability comes with (OpenAI's limits: chat
 * top_logprobs 20, completions logprobs 5), and the most logit_bias entries a request takes. */
#define FTI_API_MAX_TOP_LOGPROBS 20
#define FTI_API_MAX_LOGIT_BIAS 1024
/* The most choices (n) and candidates (best_of) one request asks for. Each is a sequence of its
 * own in the batch, so the server also refuses more than its max_batch (fti_server_opts). */
#ifndef FTI_API_MAX_N
#define FTI_API_MAX_N 16
#endif
/* Bytes of text one POST /tokenize takes (it runs on the server's I/O thread). */
#ifndef FTI_TOKENIZE_MAX_BYTES
#define FTI_TOKENIZE_MAX_BYTES 65536
#endif
/* The most prompts one /v1/completions request may send as a batch ("prompt" as an array: OpenAI's
 * limit). Each prompt's choices are sequences of the batch too, started together; a batch of more
 * than the server's max_batch sequences (prompts x best_of) runs in turns of whole prompts. */
#ifndef FTI_API_MAX_PROMPTS
#define FTI_API_MAX_PROMPTS 2048
#endif

typedef enum fti_api_kind {
    FTI_API_COMPLETION = 1,
    FTI_API_CHAT = 2
} fti_api_kind;

/* One prompt of a completions request: a text, or token ids (the exact tokens to evaluate:
 * no BOS, template or retrieved documents are added; each id >= 0, the generator checks the
 * vocabulary). Owned by the request. */
typedef struct fti_api_prompt {
    char *text;      /* a text prompt (NUL-terminated copy; may hold NULs), or NULL for ids */
    size_t text_len;
    int32_t *ids;    /* a token-id prompt (n_ids >= 1), or NULL */
    size_t n_ids;
} fti_api_prompt;

/* A validated completion request. Owns its strings (fti_api_request_free). */
typedef struct fti_api_request {
    fti_api_kind kind;
    char *model;        /* as sent, or NULL */
    char *prompt;       /* the prompt text (chat: rendered from the messages; completions: the
                           first prompt's text, "" for token ids) */
    size_t prompt_len;
    /* completions: every prompt, n_prompts >= 1 ("prompt" as a string, an array of strings, an
     * array of token ids or an array of arrays of them; at most FTI_API_MAX_PROMPTS, each token-id
     * prompt at most n_ctx - max_tokens ids); chat: 0 (the prompt above) */
    size_t n_prompts;
    fti_api_prompt *prompts;
    char *chat_title;   /* chat: the last user message (also inside prompt) */
    char *chat_context; /* chat: the earlier turns as "role: text" lines (also inside prompt) */
    size_t chat_context_len;
    int max_tokens;     /* >= 1; 0 only with echo (completions: score the prompt, generate
                           nothing) */
    float temperature;  /* [0, 2] */
    float top_p;        /* (0, 1] */
    int top_k;          /* >= 0, 0 = off (extension) */
    float presence_penalty;  /* [-2, 2], 0 = off: logit -= (count > 0) * presence_penalty */
    float frequency_penalty; /* [-2, 2], 0 = off: logit -= count * frequency_penalty */
    uint64_t seed;      /* the server samples choice (or best_of candidate) i with seed + i,
                           so choice i of a seeded request is the answer of n = 1 with seed + i;
                           without a seed, from a hash of the request id */
    int has_seed;
    int stream;
    int include_usage;  /* stream_options.include_usage */
    size_t n_stop;
    char stop[FTI_API_MAX_STOP][FTI_API_MAX_STOP_LEN + 1];
    int use_retrieval;  /* extension "fti_retrieval": default 1 */
    int n;              /* choices to return: 1..FTI_API_MAX_N, default 1 */
    int best_of;        /* completions: candidates to generate, n..FTI_API_MAX_N (default n); the
                           n with the highest mean token log-probability are returned. Above n
                           it is refused with stream */
    int echo;           /* completions: each choice's text starts with the prompt; with logprobs
                           the prompt's tokens come first too, with their log-probabilities (the
                           first one's null) */
    int logprobs;       /* report each token's log-probability (chat: logprobs true;
                           completions: logprobs 0..5) */
    int top_logprobs;   /* and its most likely alternatives: chat top_logprobs (0..20), completions
                           logprobs */
    size_t n_bias;      /* logit_bias: logits[bias_ids[i]] += bias[i] (bias in [-100, 100]) */
    int32_t *bias_ids;
    float *bias;
} fti_api_request;

/* Validates body[0..len) for the given endpoint kind. n_ctx (> 0) bounds max_tokens, and
 * max_tokens plus each token-id prompt's length. Token ids are checked to be >= 0, not against
 * a vocabulary (the parser knows none: the server checks them against fti_gen.n_vocab).
 * On failure returns FTI_ERR_FORMAT/FTI_ERR_INVALID/FTI_ERR_LIMIT (FTI_ERR_LIMIT: a token-id
 * prompt does not fit the context) with err->msg holding the text for the error body and
 * *param (if not NULL) set to the offending parameter name (static, or NULL).
 * Thread safety: any thread. */
FTIDEF fti_result fti_api_parse_completion(fti_api_kind kind, const char *body, size_t len,
                                           int n_ctx, fti_api_request *req, const char **param,
                                           fti_error *err);
FTIDEF void fti_api_request_free(fti_api_request *req);

/* The OpenAI error body {"error":{"message","type","param","code"}} appended to out. */
FTIDEF void fti_api_write_error(fti_buf *out, const char *message, const char *type,
                                const char *param, const char *code);

/* One token's log-probability in a response: its bytes (any bytes: a token may hold part of a
 * UTF-8 character), and for a generated token its most likely alternatives (top, n_top). */
typedef struct fti_api_logprob {
    const char *text;
    size_t text_len;
    float logprob;
    size_t offset; /* completions: where the token starts in the completion's text */
    int n_top;
    const struct fti_api_logprob *top;
    int is_null;   /* 1: no log-probability (an echoed prompt's first token): its token_logprob
                      and top_logprobs are null */
} fti_api_logprob;

/* What a finished (or streaming) completion reports. A response with several choices (n > 1)
 * passes them in choices[0..n_choices): the header, usage and chunks come from the result itself,
 * each choice's index, text, finish_reason and logprobs from its entry. */
typedef struct fti_api_result {
    const char *id;          /* "cmpl-..." / "chatcmpl-..." */
    const char *model;
    int64_t created;         /* unix seconds */
    const char *text;        /* full text (response) or this piece (stream chunk) */
    size_t text_len;
    const char *finish_reason; /* "stop", "length" or NULL (stream: not finished) */
    int prompt_tokens;
    int completion_tokens;
    const char *chunks_json; /* retrieval chunks used, a JSON array text, or NULL ("fti_chunks":
                                at the top of a response, and in each entry of choices that
                                has its own: a batch's prompt's) */
    int logprobs;            /* 1: the request asked for log-probabilities ("logprobs" then holds
                                the tokens of text: n_logprobs entries; else it is null) */
    const fti_api_logprob *lp;
    size_t n_logprobs;
    int index;               /* the choice's index (0 unless n > 1) */
    const struct fti_api_result *choices; /* NULL: one choice, from this result */
    size_t n_choices;
} fti_api_result;

/* The whole JSON response for a non-streaming request (one choice, or r->choices). */
FTIDEF void fti_api_write_response(fti_buf *out, fti_api_kind kind, const fti_api_result *r);
/* One SSE event "data: {...}\n\n" of the choice r->index. first (chat: carries role), and
 * usage-only chunks are flags. */
#define FTI_API_CHUNK_FIRST 1
#define FTI_API_CHUNK_USAGE 2
FTIDEF void fti_api_write_chunk(fti_buf *out, fti_api_kind kind, const fti_api_result *r,
                                int flags);
/* "data: [DONE]\n\n". */
FTIDEF void fti_api_write_done(fti_buf *out);

/* --- the generator interface ------------------------------------------------------------------ */

/* Parameters of one sequence. */
typedef struct fti_gen_params {
    int max_tokens;
    float temperature;
    float top_p;
    int top_k;
    float presence_penalty;  /* OpenAI's, over the tokens this sequence generated so far */
    float frequency_penalty;
    uint64_t seed;
    int use_retrieval;
    /* chat requests: the last user message and the earlier turns, for generators that render
     * their own template (prompt holds the default rendering of both); NULL for completions */
    const char *title;
    const char *context;
    size_t context_len;
    /* each token's log-probability (fti_gen_token.logprob) and its top_logprobs most likely
     * alternatives (0..FTI_API_MAX_TOP_LOGPROBS), from the model's distribution before the
     * bias, penalties and temperature; generators that cannot leave has_logprob 0 */
    int logprobs;
    int top_logprobs;
    /* OpenAI's logit_bias: logits[bias_ids[i]] += bias[i] before the sampler (its penalties
     * come after); ids the vocabulary does not have are the generator's FTI_ERR_INVALID at
     * seq_start. The arrays are the request's: valid during seq_start (a generator copies
     * them). */
    const int32_t *bias_ids;
    const float *bias;
    size_t n_bias;
    /* A token-id prompt (completions' "prompt" as ids): when prompt_ids is not NULL the prompt is
     * these n_prompt_ids tokens exactly (no BOS, template or retrieved documents added; seq_start's
     * text is empty). Ids the vocabulary does not have are FTI_ERR_INVALID. The array is the
     * request's: valid during seq_start. Generators without fti_gen.n_vocab never get one. */
    const int32_t *prompt_ids;
    size_t n_prompt_ids;
    /* 1 (completions' echo with logprobs, or echo of a token-id prompt): the prompt is evaluated as
     * itself (a text: its own tokens after a BOS when the model adds one; no template and no
     * retrieved documents) and reported token by token in fti_gen_prompt_info.prompt_tokens, with
     * logprobs each token's log-probability given the tokens before it and its top_logprobs
     * alternatives (the first token has none). A generator that cannot leaves prompt_tokens NULL
     * (the server then answers 400). */
    int echo_prompt;
} fti_gen_params;

/* Fills *out with the sampler options of a sequence, with OpenAI's semantics: temperature, top_p,
 * top_k and seed as in p; the presence and frequency penalties count the tokens the completion
 * generated so far, all of them (the penalty window is max_tokens long, not the sampler's default
 * 64). The prompt is not counted: a generator hands fti_sampler_accept only the tokens it
 * generates. NULL p gives greedy decoding. Thread safety: any thread. */
FTIDEF void fti_gen_sampler_opts(const fti_gen_params *p, fti_sampler_opts *out);

/* What a generator answers (FTI_ERR_INVALID) when asked to score an empty text prompt
 * (fti_gen_params.echo_prompt) and its model adds no BOS token: there is no token to report. A
 * model with a BOS scores the BOS alone. The server names the prompt of a batch in front. */
#define FTI_GEN_EMPTY_PROMPT_MSG                                                                  \
    "the prompt is empty and this model adds no BOS token: it has no tokens to score"

/* Checks that every one of ids[0..n) is a token of a vocabulary of n_vocab: FTI_OK, or
 * FTI_ERR_INVALID with the message every part of the server gives for the first one that is not
 * ("token id 300 (prompt 1, position 3) is not in this model's vocabulary: its 256 tokens are
 * ids 0 to 255"; prompt < 0 leaves the prompt out). For generators (seq_start's token-id
 * prompts, detokenize) and the server alike. Thread safety: any thread. */
FTIDEF fti_result fti_gen_check_ids(const int32_t *ids, size_t n, size_t n_vocab, long prompt,
                                    fti_error *err);

/* One decoded token of one sequence. text points into generator storage valid until the next call
 * of step for that sequence; it may end inside a UTF-8 character (the server holds such bytes
 * back). */
typedef struct fti_gen_token {
    int32_t id;
    int is_end;         /* end of text: the sequence is finished ("stop") */
    const char *text;
    size_t text_len;
    /* fti_gen_params.logprobs: the token's log-probability (has_logprob 1) and n_top alternatives,
     * most likely first: their log-probabilities and bytes (generator storage, as text) */
    int has_logprob;
    float logprob;
    int n_top;
    const float *top_logprobs;
    const char *const *top_text;
    const size_t *top_text_len;
} fti_gen_token;

/* What starting a sequence reports about its prompt (valid until seq_end). */
typedef struct fti_gen_prompt_info {
    const int32_t *ids;        /* token ids drift looks at (e.g. the user's own text) or NULL */
    size_t n_tokens;           /* the prompt's tokens (usage, perplexity weight) */
    size_t n_ids;              /* entries of ids; 0: ids has n_tokens entries */
    size_t n_byte_fallback;    /* prompt tokens that are raw bytes */
    double nll_mean;           /* mean negative log-likelihood per token (nats) of the prompt, or
                                  of the part drift looks at (fti-serve: the user's text); < 0 =
                                  unknown */
    size_t nll_tokens;         /* the tokens nll_mean is over (its weight in drift's window
                                  perplexity); 0: n_tokens */
    const char *chunks_json;   /* retrieval chunks used (JSON array text) or NULL */
    int n_chunks;
    /* fti_gen_params.echo_prompt: the prompt's tokens in order (n_prompt_tokens), each with its id
     * and bytes and, with logprobs, has_logprob (0 for the first), logprob and alternatives as a
     * generated token's; generator storage valid until seq_end. NULL: not reported. */
    const fti_gen_token *prompt_tokens;
    size_t n_prompt_tokens;
} fti_gen_prompt_info;

/* The interface. All calls come from the scheduler thread except model_id and n_ctx (any thread).
 *   seq_start  tokenizes and prefills the prompt; FTI_ERR_LIMIT when prompt + max_tokens exceed the
 *              context (err names the numbers; answered with 400).
 *   step       advances every sequence in seqs[0..n) by one token: out[i] for seqs[i]. A step's
 *              cost should grow sublinearly with n (weights are read once for the batch).
 *   seq_end    releases a sequence (finished, failed or cancelled).
 *   release    called once when the server no longer uses this generator (after a swap and when its
 *              last sequence ended, or at server free). May be NULL. */
typedef struct fti_gen {
    void *user;
    const char *(*model_id)(void *user);
    int (*n_ctx)(void *user);
    fti_result (*seq_start)(void *user, const char *prompt, size_t prompt_len,
                            const fti_gen_params *params, void **seq, fti_gen_prompt_info *info,
                            fti_error *err);
    fti_result (*step)(void *user, void **seqs, size_t n, fti_gen_token *out, fti_error *err);
    void (*seq_end)(void *user, void *seq);
    void (*release)(void *user);
    /* Optional (NULL: seq_start for each): another sequence that continues where `from` is,
     * a sequence seq_start has just begun (its prompt taken, nothing generated yet), sampling
     * with its own params (seed, ...). The server forks choices 1..n-1 of a request (n,
     * best_of) from choice 0, so the prompt is evaluated once. */
    fti_result (*seq_fork)(void *user, void *from, const fti_gen_params *params, void **seq,
                           fti_error *err);
    /* Optional (NULL: the generator takes text prompts only, and token-id prompts are refused
     * with a 400): the vocabulary size, so the server checks a token-id prompt's ids and
     * logit_bias's before it queues the request. Any thread. */
    int (*n_vocab)(void *user);
    /* Optional (NULL: POST /tokenize and /detokenize answer 501): text to the token ids a scored
     * text prompt is evaluated as (add_special 1: with the BOS the model adds; 0: the text's
     * own tokens), appended to *out; and token ids to their bytes, appended to *out
     * (FTI_ERR_INVALID for an id the vocabulary does not have). They run on the server's I/O
     * thread while the scheduler runs: they may only read what never changes (a tokenizer). */
    fti_result (*tokenize)(void *user, const char *text, size_t len, int add_special,
                           fti_tokens *out, fti_error *err);
    fti_result (*detokenize)(void *user, const int32_t *ids, size_t n, fti_buf *out,
                             fti_error *err);
    /* Optional: when the model was made, in seconds since 1970 (/v1/models' "created"; 0 =
     * unknown, shown as 0). */
    int64_t created;
} fti_gen;

/* A deterministic stand-in generator: the prompt is tokenized one byte per token; sequence s emits
 * the words of a fixed text, rotated by a hash of the prompt and seed, one word per token, ending
 * after `end_after` tokens (0 = never, so max_tokens decides). Each step sleeps step_us (a cost
 * that is independent of the batch size, like reading the weights once). Asked for logprobs, it
 * makes them up from the word (-0.25 to -1), so best_of ranks its candidates deterministically.
 * Its vocabulary is the 256 bytes: a token-id prompt is the bytes of its ids, and an echoed
 * prompt's log-probabilities are made up from the byte (-0.5 to -1.25; the first token's none).
 * model_id is `id`. */
typedef struct fti_gen_echo_opts {
    const char *id;    /* NULL = "fti-echo" */
    int n_ctx;         /* 0 = 2048 */
    unsigned step_us;  /* simulated cost per step */
    int end_after;
    int fail_every;    /* > 0: every n-th seq_start fails (tests) */
} fti_gen_echo_opts;
/* Fills *gen with a new echo generator (gen->release frees it). */
FTIDEF fti_result fti_gen_echo_create(const fti_gen_echo_opts *opts, fti_gen *gen);

/* --- batched decoding over engine sessions ---------------------------------------------------- */

/* Continuous batching needs one decode step for many sequences that reads the weights once:
 * that step is part 08's fti_session_eval_batch (one token for each of B sessions, each with its
 * own KV cache and position; projections through the multi-row quantized kernels, attention per
 * session). fti_batch_decoder / fti_batch_decode are its older names, kept as thin wrappers over
 * fti_batch / fti_session_eval_batch. A step allocates nothing. Thread safety: one thread per
 * decoder; sessions as fti_session_eval. */
typedef struct fti_batch_decoder fti_batch_decoder;
FTIDEF fti_result fti_batch_decoder_create(const fti_engine *e, size_t max_batch, size_t max_ctx,
                                           fti_batch_decoder **out, fti_error *err);
FTIDEF void fti_batch_decoder_free(fti_batch_decoder *d);
/* Decodes tokens[b] in sessions[b] for b < B (B <= max_batch; sessions of the decoder's engine,
 * pairwise distinct, context <= max_ctx). Afterwards each session's logits are its next-token
 * logits and its position has advanced by one. Errors: FTI_ERR_INVALID (bad token, foreign or
 * repeated session, B too large), FTI_ERR_LIMIT (a session's context is full: nothing is done). */
FTIDEF fti_result fti_batch_decode(fti_batch_decoder *d, fti_session *const *sessions,
                                   const int32_t *tokens, size_t B, fti_pool *pool, fti_error *err);

/* --- the server ------------------------------------------------------------------------------- */

typedef struct fti_server fti_server;

typedef struct fti_server_opts {
    const char *host;           /* NULL = "127.0.0.1" */
    int port;                   /* 0 = ephemeral (see fti_server_port) */
    int max_conns;              /* 0 = 256; beyond -> 503 and close */
    int max_queue;              /* waiting requests, 0 = 64; beyond -> 503 */
    int max_batch;              /* active sequences per step, 0 = 16; also the most choices (n,
                                 * best_of) a prompt may ask for: more is a 400 (a batch of
                                 * prompts with more sequences runs in turns) */
    int header_timeout_ms;      /* whole head must arrive within, 0 = 10000 */
    int idle_timeout_ms;        /* keep-alive idle, 0 = 15000 */
    int body_timeout_ms;        /* whole body must arrive within, 0 = 30000 */
    size_t max_output_bytes;    /* unsent bytes per connection before it is dropped, 0 = 8 MiB */
    fti_http_limits limits;
    fti_monitor *monitor;       /* metrics, request log, drift (optional, not owned) */
    fti_log_fn log;             /* optional */
    void *log_user;
    int no_dashboard;           /* 1: GET / is 404 */
    const char *instance;       /* replica name (NULL = none): sent as the X-Fti-Instance header
                                 * and in /health; [A-Za-z0-9._-], at most 64 bytes (copied) */
    const char *cors_origin;    /* NULL = no CORS (browsers keep their same-origin policy); "*"
                                 * or one origin ("http://localhost:5173"; visible ASCII, at
                                 * most 200 bytes, copied): sent as Access-Control-Allow-Origin
                                 * on every response, and preflights (OPTIONS) are answered */
} fti_server_opts;

/* Creates a server: binds and listens (so the port is known when this returns). gen is copied; the
 * server owns it from then on (calls gen.release at free) - also on failure. Errors name host:port.
 * Thread safety: create/free from one thread. */
FTIDEF fti_result fti_server_create(const fti_server_opts *opts, const fti_gen *gen,
                                    fti_server **out, fti_error *err);
/* The bound port. */
FTIDEF int fti_server_port(const fti_server *srv);
/* Serves until fti_server_stop; then stops accepting, finishes in-flight requests (up to
 * drain_ms = 30 s), closes every connection and returns FTI_OK. It fails only before serving:
 * FTI_ERR_NOMEM (the scheduler's memory), FTI_ERR_IO (its thread). Thread safety: one thread. */
FTIDEF fti_result fti_server_run(fti_server *srv, fti_error *err);
/* Asks run to return. Async-signal-safe (one write() to a pipe); any thread. */
FTIDEF void fti_server_stop(fti_server *srv);
/* Switches to a new generator: new requests use it, in-flight ones finish on the old one, which
 * is released when its last sequence ends. The server owns gen afterwards. Any thread. */
FTIDEF fti_result fti_server_set_generator(fti_server *srv, const fti_gen *gen);
FTIDEF void fti_server_free(fti_server *srv);

/* Counters for tests and the benchmark (a snapshot). */
typedef struct fti_server_stats {
    uint64_t requests;        /* responses sent */
    uint64_t rejected;        /* 503s for the connection cap or the queue */
    uint64_t tokens;          /* completion tokens generated */
    uint64_t steps;           /* generator steps */
    uint64_t batch_tokens;    /* sum of batch sizes over steps */
    uint64_t accept_errors;   /* EMFILE and friends survived */
    int conns;                /* open connections */
    int active;               /* active sequences */
    int queued;
} fti_server_stats;
FTIDEF void fti_server_get_stats(fti_server *srv, fti_server_stats *st);

#ifdef __cplusplus
}
#endif

#endif /* FTI_NO_SERVER */
#endif /* FTI_SERVER_H */
