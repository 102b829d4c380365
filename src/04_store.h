/* === store: workspace, ingest/clean/validate/dedupe, chunks + BM25, token shards, versions === */
/*
 * The feature store turns a folder of someone's raw exports into an immutable, content-addressed
 * dataset version that training and inference both read (same code, no training/serving skew).
 *
 *   workspace   one directory (--home DIR, else $FTI_HOME, else ./twin) holding store/, models/,
 *               logs/. Layout and file formats: docs/workspace.md.
 *   ingest      files and directory trees of .txt .md .html/.htm .json .jsonl .csv .eml .mbox
 *               (also files whose name contains "mbox"); anything else is skipped with a reason.
 *               Each input file becomes "units" (a whole file, one JSONL line, one mbox message)
 *               processed in parallel; results are merged in input order, so output never
 *               depends on the thread count.
 *   clean       HTML to text, markdown to text, mail decoding (multipart, quoted-printable,
 *               base64, RFC 2047 headers, UTF-8/ASCII/Latin-1/Windows-1252), quoted replies and
 *               signatures dropped, line endings and whitespace normalised, invalid UTF-8
 *               repaired, control characters removed, optional redaction of e-mail addresses,
 *               phone numbers and URLs (on by default for mail).
 *   validate    min/max length, letter fraction, repeated-line ratio, required fields; every
 *               rejection is counted under its reason.
 *   dedupe      exact (hash of the normalised text) and near-duplicate (MinHash, 128 32-bit
 *               permutations, LSH banding, Jaccard threshold default 0.8); a group of near
 *               copies keeps its newest dated document (else its first).
 *   features    deterministic train/val split by document hash; a byte-level BPE tokenizer
 *               trained on the train split (part 03); token shards (header + flat little-endian
 *               ids, mmap-able); token-bounded chunks with overlap preferring paragraph and
 *               sentence ends; a BM25 index over the chunks (mmap-able file).
 *   versions    a version id is the SHA-256 of the inputs' hashes and the options; blobs are
 *               stored content-addressed, the manifest is written last (the commit point), refs
 *               (`latest`, tags) move only after the manifest is durable. Incremental ingest
 *               reuses unchanged source files by their raw-bytes SHA-256.
 *
 * Everything here compiles out under FTI_NO_STORE, the declarations too (the types are unknown
 * and a call is diagnosed as undeclared at compile time, not only at link time), except
 * fti_store_gc_result, which fti_workspace_gc's result holds.
 */
#ifndef FTI_STORE_H
#define FTI_STORE_H

#include "00_base.h"
#include "01_threads.h"
#include "03_tokenizer.h"

#ifdef __cplusplus
extern "C" {
#endif

/* --- limits (override before including the implementation) ------------------------------- */
#ifndef FTI_STORE_MAX_FILE_BYTES
#define FTI_STORE_MAX_FILE_BYTES ((uint64_t)1 << 32) /* one input file */
#endif
#ifndef FTI_STORE_MAX_MAIL_DEPTH
#define FTI_STORE_MAX_MAIL_DEPTH 8 /* nested multipart levels */
#endif
#ifndef FTI_STORE_MAX_DOCS
#define FTI_STORE_MAX_DOCS 50000000u
#endif
#define FTI_MINHASH_PERMS 128

#ifndef FTI_NO_STORE

/* --- workspace ----------------------------------------------------------------------------- */

/* Resolves the workspace directory: `home` if not NULL/empty, else $FTI_HOME if set, else
 * "./twin". Returns a new string (fti_free) or NULL on allocation failure. Nothing is created.
 * Thread safety: any thread. */
FTIDEF char *fti_workspace_resolve(const char *home);
/* Creates the workspace layout under home (store/objects, store/versions, store/refs/tags,
 * models, logs). Existing directories are fine. Thread safety: any thread. */
FTIDEF fti_result fti_workspace_init(const char *home, fti_error *err);

/* --- the document template (shared by training data and inference prompts) ---------------- */

#define FTI_TEMPLATE_TITLE "<|title|>"
#define FTI_TEMPLATE_BODY "<|body|>"
#define FTI_TEMPLATE_END "<|endoftext|>"

/* Appends a document rendered through the template to out:
 *     "<|title|>" title "\n" "<|body|>" body "<|endoftext|>"
 * With `open_body` set (prompts for generation) the end marker is left off, so the model
 * continues the body. A NULL/empty title still writes the title marker (with nothing after it).
 * Thread safety: any thread. */
FTIDEF void fti_template_render(fti_buf *out, const char *title, size_t title_len, const char *body,
                                size_t body_len, int open_body);

/* Encodes a document through the template with tok, appending ids to out: the marker tokens are
 * placed as their special ids, while title and body are encoded as plain text (a literal
 * "<|endoftext|>" inside them stays text), exactly as the token shards were made. The tokenizer
 * must have the three template tokens (every tokenizer of a dataset version has them), else
 * FTI_ERR_NOT_FOUND. Thread safety: any thread. */
FTIDEF fti_result fti_template_encode(const fti_tokenizer *tok, const char *title, size_t title_len,
                                      const char *body, size_t body_len, int open_body,
                                      fti_tokens *out);

/* --- text cleaning (exposed for tests, tools and the inference part) ----------------------- */

/* Cleaning flags for fti_clean_text. */
enum {
    FTI_CLEAN_REDACT_EMAIL = 1,
    FTI_CLEAN_REDACT_PHONE = 2,
    FTI_CLEAN_REDACT_URL = 4,
    FTI_CLEAN_REDACT_ALL = 7
};
/* Normalises text into out (appended): invalid UTF-8 -> U+FFFD, CRLF/CR -> LF, control
 * characters dropped (tab -> space), non-breaking and other Unicode spaces -> space, runs of
 * blanks -> one space, trailing blanks of lines removed, 3+ newlines -> one blank line, leading
 * and trailing whitespace trimmed; then the redactions in `flags` ([EMAIL], [PHONE], [URL]).
 * Thread safety: any thread. */
FTIDEF void fti_clean_text(const char *text, size_t len, int flags, fti_buf *out);
/* HTML to plain text (appended, not yet normalised): script/style/head and a page's boilerplate
 * (<nav>, <footer>, <button>, nested ones counted; an unclosed one is only its tag, and custom
 * elements such as <nav-item> are not these) dropped with their content, tags removed,
 * entities decoded, block elements become paragraph breaks, <br> a line break. The <title> (or
 * first <h1>) goes to title if not NULL. Never recursive: any nesting depth is fine.
 * Thread safety: any thread. */
FTIDEF void fti_html_to_text(const char *html, size_t len, fti_buf *out, fti_buf *title);
/* Markdown to plain text (appended): headings, emphasis, code fences, link/image syntax, list
 * and quote markers and rules removed. The first heading goes to title if not NULL.
 * Thread safety: any thread. */
FTIDEF void fti_markdown_to_text(const char *md, size_t len, fti_buf *out, fti_buf *title);

/* --- ingest options and the dataset version ------------------------------------------------ */

typedef struct fti_ingest_progress {
    const char *stage; /* "scan", "ingest", "dedupe", "tokenizer", "shards", "index", "commit" */
    uint64_t done;     /* units of the stage so far (bytes for ingest, steps for commit) */
    uint64_t total;    /* 0 if unknown */
} fti_ingest_progress;
typedef void (*fti_ingest_progress_fn)(void *user, const fti_ingest_progress *p);

/* Options for fti_store_ingest; zero = default for every field. Field lists are comma-separated
 * names tried in order. */
typedef struct fti_ingest_opts {
    /* JSON/CSV text field: 0 = "text,content,body,full_text,message,post,plaintext,content_text,
     * selftext,html,content_html,textContent,contents,ShareCommentary,comment,listContent"
     * (JSON: a string, an object's "rendered", or an array of runs; records are found in
     * wrappers and nested arrays: see docs/feature.md) */
    const char *text_fields;
    const char *title_fields; /* 0 = "title,subject,link_title,name" */
    /* 0 = "created_at,date_unixtime,date,timestamp,timestamp_ms,time,created,createdAt,published,
     * published_at,date_published,created_utc,creationDate,creation_timestamp,
     * userEditedTimestampUsec,ts" (numbers, and strings of digits, are Unix seconds,
     * milliseconds or microseconds) */
    const char *date_fields;
    /* 0 = "author,authors,sender_name,user_profile,user,username,from,attributedTo,senderId" */
    const char *author_fields;
    const char *required;      /* fields a document must have: "title,author,date"; 0 = none */
    const char *authors;       /* whose writing to keep: comma-separated names, handles or
                                * addresses ("alice@example.com,Alice Martin,alice_m"), each
                                * matched as whole words in the author, any case ("Ann"
                                * matches "Ann Lee", not "Joanna"); a document whose
                                * author is known (mail's whole From:, a JSON/CSV author field)
                                * contains none is rejected as other_author. 0 or "": all,
                                * except the messages of conversations in an export whose
                                * account file (Twitter's data/account.js, Facebook's and
                                * Instagram's profile, Telegram's personal_information) names
                                * its owner (without one: the one sender of every conversation
                                * of a folder of two or more), and the mail in a folder with
                                * the owner's sent mail (a Sent folder, Gmail's Sent label): the
                                * others' are other_author. "*": everyone's */
    size_t min_chars;          /* 0 = 12 (after cleaning, in bytes) */
    size_t max_chars;          /* 0 = 1,000,000 */
    double min_letter_frac;    /* letters / non-blank characters; 0 = 0.5, < 0 disables */
    double max_repeat_frac;    /* repeated non-empty lines / lines (a line over 1,000 bytes
                                  counts as its sentences); 0 = 0.5, < 0 disables */
    int redact;                /* 0 = mail only, 1 = every document, -1 = never */
    double dedup_threshold;    /* near-dup Jaccard; 0 = 0.8, > 1 disables near-dup */
    int val_percent;           /* 0 = 5; validation share of documents in percent (1..50;
                                  above 50 counts as 50) */
    int chunk_tokens;          /* 0 = 200: chunk size in tokens */
    int chunk_overlap;         /* 0 = 32 tokens of overlap */
    int vocab_size;            /* 0 = 4096: tokenizer vocabulary when training one (259 ..
                                  FTI_TOK_MAX_VOCAB, else FTI_ERR_INVALID) */
    const char *tokenizer;     /* a tokenizer file to use instead of training one; "parent" =
                              * the one of `latest` (trained if it has none); 0 = train */
    int no_tokenizer;          /* 1: skip tokenizer, shards (chunks count approximate tokens) */
    uint64_t max_file_bytes;   /* 0 = FTI_STORE_MAX_FILE_BYTES */
    int n_threads;             /* 0 = $FTI_THREADS or the CPU count */
    const char *tag;           /* also point this tag at the version */
    int no_latest;             /* 1: do not move `latest` */
    fti_ingest_progress_fn progress;
    void *progress_user;
    fti_log_fn log;
    void *log_user;
} fti_ingest_opts;

/* Returns opts (NULL = all defaults) with every default filled in. Thread safety: any thread. */
FTIDEF fti_ingest_opts fti_ingest_opts_resolve(const fti_ingest_opts *opts);

/* Ingests paths (files or directories) into the workspace `home` and commits a version.
 * On success out_id holds the version id (64 lowercase hex + NUL); if that version already
 * existed nothing is rewritten (only refs move). Rejected documents are counted in the
 * version's report; only a failure to read the workspace or to commit is an error.
 * `reused` (optional) gets the number of input files whose results came from the cache.
 * Thread safety: one ingest per workspace at a time: store/lock (flock) makes a second one
 * fail with FTI_ERR_BUSY. */
FTIDEF fti_result fti_store_ingest(const char *home, const char *const *paths, size_t n_paths,
                                   const fti_ingest_opts *opts, char out_id[65], size_t *reused,
                                   fti_error *err);

/* Sharded ingest (any batch engine runs the shards: see docs/feature.md). Walks every input
 * path like fti_store_ingest, keeps the inputs whose name hashes to partition `shard` of
 * `n_shards` (0 <= shard < n_shards) and processes them (parse, clean, validate, MinHash) into
 * a partial: home/store/partials/<plan>-<shard>-of-<n_shards>.part, written atomically; its path
 * is appended to out_path (optional). Only the record options of opts matter here (fields,
 * validation, redaction). Several shards may run at once on one workspace (a shared lock).
 * Thread safety: as fti_store_ingest. */
FTIDEF fti_result fti_store_ingest_partial(const char *home, const char *const *paths,
                                           size_t n_paths, const fti_ingest_opts *opts,
                                           unsigned shard, unsigned n_shards, fti_buf *out_path,
                                           fti_error *err);
/* Merges the partials of one sharded ingest (n = 0: every partial in home/store/partials) into
 * a dataset version: exact and near-duplicate detection across all documents, the split, the
 * tokenizer (trained on the union), token shards, chunks and the index are made here, so the
 * version is the one fti_store_ingest makes from the same inputs and options (same id, same
 * objects). Every shard 0..N-1 must be present, made with the same record options (else
 * FTI_ERR_INVALID / FTI_ERR_NOT_FOUND). Merged partials under store/partials are removed.
 * Thread safety: as fti_store_ingest. */
FTIDEF fti_result fti_store_merge(const char *home, const char *const *partials, size_t n,
                                  const fti_ingest_opts *opts, char out_id[65], fti_error *err);

/* Resolves a version name: a full id, a unique id prefix (>= 4 hex), a tag, or "latest"
 * (NULL = "latest"). Thread safety: any thread. */
FTIDEF fti_result fti_store_resolve(const char *home, const char *name, char out_id[65],
                                    fti_error *err);
/* Lists version ids (sorted by creation time, oldest first); free with fti_store_list_free.
 * Thread safety: any thread. */
FTIDEF fti_result fti_store_list(const char *home, char ***out_ids, size_t *out_n, fti_error *err);
FTIDEF void fti_store_list_free(char **ids, size_t n);
/* Points tag `name` (letters, digits, - _ .; "latest" moves the latest ref) at an existing
 * version, given by its full id (fti_store_resolve turns a prefix or a tag into one). Atomic
 * (temp file, fsync, rename), under the store lock (shared): FTI_ERR_BUSY while an ingest or a
 * merge runs (they hold it from start to end; partial ingests share it) or a gc, so no tag names
 * a version gc is removing. Thread safety: any thread. */
FTIDEF fti_result fti_store_tag(const char *home, const char *name, const char *id, fti_error *err);
/* Verifies one version (id) or, with id NULL, every version and ref: manifest parses, files
 * exist with the recorded size and SHA-256, shard and index headers check out, refs point at
 * versions. Problems are appended to report (one line each, optional); returns FTI_OK or
 * FTI_ERR_CHECKSUM / FTI_ERR_FORMAT / FTI_ERR_NOT_FOUND. Thread safety: any thread. */
FTIDEF fti_result fti_store_verify(const char *home, const char *id, fti_buf *report,
                                   fti_error *err);
/* Documents added and removed between versions a and b (resolved names), as text lines
 * "+ <doc id> <source> "<title>"" / "- ..." appended to out (sorted by doc id); counts
 * optional. Thread safety: any thread. */
FTIDEF fti_result fti_store_diff(const char *home, const char *a, const char *b, fti_buf *out,
                                 size_t *n_added, size_t *n_removed, fti_error *err);

/* Options of fti_store_gc. Zero = default for every field. */
typedef struct fti_store_gc_opts {
    size_t keep_last;         /* the newest N versions stay (0 = 3) */
    const char *const *keep;  /* more versions to keep, as fti_store_resolve names them (the
                               * datasets of registered models); unknown names are skipped */
    size_t n_keep;
    double temp_age_s;        /* temp files older than this are stale (0 = 3600 s) */
    int dry_run;              /* 1: change nothing, report and count what would go */
} fti_store_gc_opts;

#endif /* FTI_NO_STORE (this type stays: fti_workspace_gc's result holds one) */

/* What fti_store_gc did (or, in a dry run, would do). */
typedef struct fti_store_gc_result {
    size_t versions_kept, versions_removed;
    size_t objects_removed;   /* blobs no kept version names */
    size_t temp_removed;      /* store/tmp, and stale *.tmp.* files of killed writers */
    uint64_t bytes_freed;
} fti_store_gc_result;

#ifndef FTI_NO_STORE

/* Removes old dataset versions and the disk they hold. Kept: the newest keep_last versions,
 * `latest`, every tag and opts->keep; every other version's manifest is replaced by a tombstone
 * (store/versions/<id>.removed: id, parent, created, removed), so a child's parent still
 * resolves for verify and a lookup of the id says "removed by gc on <date>". Then every object
 * no kept version names is deleted, store/tmp is emptied and *.tmp.* files older than
 * temp_age_s are deleted. Takes the store lock (FTI_ERR_BUSY while an ingest runs); a dry run
 * takes none (it only reads: while an ingest writes, its counts are an estimate). One line
 * per removed version, then a summary, is appended to report (optional). Crash-safe: a version
 * goes (tombstone written, then manifest removed) before any object it named.
 * Thread safety: as fti_store_ingest. */
FTIDEF fti_result fti_store_gc(const char *home, const fti_store_gc_opts *opts,
                               fti_store_gc_result *result, fti_buf *report, fti_error *err);

/* --- token shards ------------------------------------------------------------------------- */

/* A token shard file: 64-byte header then count ids of `width` bytes, little-endian:
 *   0 magic "FTITOKS\0"  8 u32 version (1)  12 u32 width (2 or 4)  16 u64 count
 *   24 u32 vocab size    28 u32 eot id      32 u8[32] SHA-256 of the id bytes
 * The data starts at byte 64 (aligned for mmap access). */
#define FTI_SHARD_HEADER_BYTES 64
typedef struct fti_token_shard {
    const unsigned char *data; /* count * width bytes, little-endian ids */
    uint64_t count;
    uint32_t width;
    uint32_t vocab_size;
    uint32_t eot_id;
    fti_map map_; /* internal */
} fti_token_shard;
/* Writes ids (each < vocab_size, else FTI_ERR_INVALID) as a shard file, atomically. Width 2
 * when vocab_size <= 65536, else 4. Thread safety: any thread. */
FTIDEF fti_result fti_shard_write(const char *path, const uint32_t *ids, size_t n,
                                  uint32_t vocab_size, uint32_t eot_id, fti_error *err);
/* Maps a shard and checks its header and exact size and (with check_sum) its checksum and id
 * range: FTI_ERR_FORMAT / FTI_ERR_CHECKSUM / FTI_ERR_UNSUPPORTED with the path in err. Close
 * with fti_shard_close. Thread safety: the opened shard may be read from any thread. */
FTIDEF fti_result fti_shard_open(fti_token_shard *s, const char *path, int check_sum,
                                 fti_error *err);
FTIDEF void fti_shard_close(fti_token_shard *s);
/* Token i of a shard; i < count is the caller's to ensure. Thread safety: any thread. */
FTIDEF uint32_t fti_shard_at(const fti_token_shard *s, uint64_t i);

/* --- BM25 index --------------------------------------------------------------------------- */

/* Terms: maximal runs of letters/digits (ASCII lowercased; any non-ASCII code point counts as a
 * letter), at most 64 bytes. BM25 with k1 = 1.2, b = 0.75,
 * idf = ln(1 + (N - df + 0.5)/(df + 0.5)). */
typedef struct fti_bm25 fti_bm25;

/* One search result. Pointers point into the mapped index and stay valid until close. */
typedef struct fti_search_hit {
    float score;
    uint32_t chunk;   /* chunk number */
    uint32_t doc;     /* document number in the version */
    const char *text; /* chunk text (not NUL-terminated: use text_len) */
    size_t text_len;
    const char *doc_id; /* 32 hex chars, NUL-terminated, and the metadata below too */
    const char *title;
    const char *source;
    const char *author;
    const char *date;
} fti_search_hit;

/* A chunk to index (builder input). */
typedef struct fti_chunk_in {
    const char *text;
    size_t len;
    uint32_t doc;
} fti_chunk_in;
/* A document's metadata for the index. */
typedef struct fti_doc_meta {
    const char *doc_id, *title, *source, *author, *date;
} fti_doc_meta;

/* Builds an index file (atomic write) over chunks that refer to docs[0..n_docs); NULL metadata
 * strings are stored as "". The text is copied. Thread safety: any thread. */
FTIDEF fti_result fti_bm25_write(const char *path, const fti_chunk_in *chunks, size_t n_chunks,
                                 const fti_doc_meta *docs, size_t n_docs, fti_error *err);
/* Builds it into memory instead (for hashing before storing). */
FTIDEF fti_result fti_bm25_build(fti_buf *out, const fti_chunk_in *chunks, size_t n_chunks,
                                 const fti_doc_meta *docs, size_t n_docs, fti_error *err);
/* Maps an index and checks every offset, count, string and posting before use (a hostile file
 * gives FTI_ERR_FORMAT, never a crash). Close with fti_bm25_close (NULL is fine).
 * Thread safety: the opened index may be queried from any thread. */
FTIDEF fti_result fti_bm25_open(fti_bm25 **out, const char *path, fti_error *err);
FTIDEF void fti_bm25_close(fti_bm25 *ix);
FTIDEF size_t fti_bm25_chunks(const fti_bm25 *ix);
/* Top-k chunks for query (best first; ties by chunk number). Returns the number of hits
 * (<= k; 0 when no term matches). Thread safety: any thread (the index is read-only). */
FTIDEF size_t fti_bm25_query(const fti_bm25 *ix, const char *query, size_t query_len, size_t k,
                             fti_search_hit *hits);
/* Chunk i as a hit with score 0 (for listing); returns 0 if i is out of range. */
FTIDEF int fti_bm25_chunk(const fti_bm25 *ix, size_t i, fti_search_hit *hit);

/* --- an opened dataset version (what training and inference read) ------------------------- */

typedef enum fti_split { FTI_SPLIT_TRAIN = 0, FTI_SPLIT_VAL = 1 } fti_split;

/* Statistics recorded in the version (the monitoring part computes drift against them). */
typedef struct fti_dataset_stats {
    uint64_t n_docs, n_train_docs, n_val_docs, n_rejected, n_chunks;
    uint64_t n_train_tokens, n_val_tokens;
    uint64_t n_chars; /* cleaned bytes over kept documents */
    double doc_chars_mean, doc_tokens_mean;
    uint64_t doc_chars_p50, doc_chars_p90, doc_chars_max;
    /* Documents by cleaned length: bucket i counts lengths in [2^i, 2^(i+1)) bytes. */
    uint64_t doc_chars_log2_hist[32];
    /* Frequency of each token id over the train shard (vocab_size entries; NULL without one). */
    const uint64_t *token_counts;
    uint32_t vocab_size;
} fti_dataset_stats;

typedef struct fti_dataset fti_dataset;
/* Opens a version by id, id prefix, tag or "latest" (NULL): parses the manifest, maps the
 * shards and the index (headers and index offsets checked; the full checksums are verify's
 * job). A damaged or missing index or token shard refuses the version, err naming it and its
 * file ("train shard: PATH: ...", "index: PATH: ..."); the docs, tokenizer and token-count
 * objects are not checked here (fti_store_verify checks everything). Free with
 * fti_dataset_close (NULL is fine). All getters below return NULL/0 for a NULL ds. Thread
 * safety: read-only after opening, any thread. */
FTIDEF fti_result fti_dataset_open(fti_dataset **out, const char *home, const char *name,
                                   fti_error *err);
/* Opens a version for search only (fti-feature search, retrieval): as fti_dataset_open, the
 * index checked the same way (a damaged or missing one is refused, "index: PATH: ..."), but the
 * token shards are neither mapped nor checked, so a damaged or missing shard does not refuse the
 * version, and fti_dataset_shard returns NULL for both splits. What reads the shards (training,
 * evaluation, the author memory) opens with fti_dataset_open, which refuses a damaged shard
 * naming its file. Free with fti_dataset_close. Thread safety: as fti_dataset_open. */
FTIDEF fti_result fti_dataset_open_index(fti_dataset **out, const char *home, const char *name,
                                         fti_error *err);
FTIDEF void fti_dataset_close(fti_dataset *ds);
FTIDEF const char *fti_dataset_id(const fti_dataset *ds);
/* The parsed manifest (see docs/workspace.md); owned by ds. */
FTIDEF const fti_json *fti_dataset_manifest(const fti_dataset *ds);
/* The train or val token shard (NULL when the version has no tokenizer, or ds was opened with
 * fti_dataset_open_index). */
FTIDEF const fti_token_shard *fti_dataset_shard(const fti_dataset *ds, fti_split split);
/* The tokenizer file of the version and its SHA-256 (hex); NULL without a tokenizer. */
FTIDEF const char *fti_dataset_tokenizer_path(const fti_dataset *ds);
FTIDEF const char *fti_dataset_tokenizer_sha256(const fti_dataset *ds);
/* Path of the version's documents file (JSONL: one object per kept document with "id",
 * "split", "source", "kind", "title", "author", "date", "sha256", "text"). */
FTIDEF const char *fti_dataset_docs_path(const fti_dataset *ds);
FTIDEF const fti_bm25 *fti_dataset_index(const fti_dataset *ds);
FTIDEF size_t fti_dataset_search(const fti_dataset *ds, const char *query, size_t query_len,
                                 size_t k, fti_search_hit *hits);
/* The version's statistics (owned by ds; token_counts points into a mapped file). */
FTIDEF const fti_dataset_stats *fti_dataset_get_stats(const fti_dataset *ds);

#endif /* FTI_NO_STORE */

#ifdef __cplusplus
}
#endif
#endif /* FTI_STORE_H */
