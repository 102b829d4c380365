/* === format: GGUF v3 model files (hostile-file-safe reader, generic writer, llama models) === */
/*
 * fti's model file is GGUF v3, the format of llama.cpp, so a model trained here loads there.
 * A GGUF file is, little-endian throughout:
 *
 *   "GGUF" u32 version(3) u64 n_tensors u64 n_kv
 *   n_kv x      { string key, u32 value_type, value }
 *   n_tensors x { string name, u32 n_dims, u64 ne[n_dims], u32 ggml_type, u64 offset }
 *   padding to `alignment` (key general.alignment, default 32)
 *   tensor data; each tensor at data_start + offset, offset a multiple of the alignment
 *
 * where a string is u64 length + bytes (no NUL) and an array value is u32 element type, u64 count,
 * elements. Dims are innermost first: a (rows, cols) row-major matrix has ne = {cols, rows}.
 *
 * Reader. fti_gguf_open maps the file (fti_map_open: mmap, or a read() copy under FTI_NO_MMAP)
 * and treats it as hostile: every count, length, dimension, type, offset and size is checked with
 * overflow-checked arithmetic against the bytes that are really there before it is used; keys and
 * tensor names must be unique; the alignment must be a power of two; tensors must lie inside the
 * file and must not overlap. Only then are pointers into the map handed out (zero copy: a tensor's
 * `data` points into the mapped file, aligned to the file's alignment). Errors name the file, the
 * key or tensor and the numbers. Parsing cost is O(n_kv + n_tensors + strings): vocabulary
 * strings are indexed, not copied.
 *
 * Writer. fti_gguf_writer collects key/values (every GGUF type, arrays of numbers and strings) and
 * tensors (name, dims, ggml type, data), then writes the file atomically (fti_afile: temp file,
 * fsync, rename) with tensor data contiguous in the order tensors were added, each padded to the
 * alignment. Setting a key twice replaces its value; adding a tensor name twice is an error.
 *
 * Llama models. fti_gguf_add_llama writes a whole model the way llama.cpp's converter does: the
 * llama.* hyper-parameters (u32 counts, f32 epsilon and RoPE base), tensors named token_embd,
 * blk.N.attn_q ... output (omitted when tied), the gpt2 BPE tokenizer (tokens in GPT-2
 * byte-to-unicode form, merges, token types NORMAL = 1 / CONTROL = 3, pre "gpt-2", BOS/EOS ids,
 * add_bos_token) and fti's lineage keys; see docs/gguf.md for every key. fti_gguf_llama_load
 * reads such a file back into a config and validates every tensor's shape and type.
 *
 * Tensor types are ggml type numbers (the same numbers as part 02's fti_dtype): F32 = 0, F16 = 1,
 * Q4_0 = 2, Q8_0 = 8, BF16 = 30. The reader accepts exactly these; anything else is an error.
 */
#ifndef FTI_FORMAT_H
#define FTI_FORMAT_H

#include "00_base.h"
#include "01_threads.h"
#include "02_kernels.h"
#include "03_tokenizer.h"
#include "05_model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Limits the reader enforces before allocating (override by defining them first). */
#ifndef FTI_GGUF_MAX_TENSORS
#define FTI_GGUF_MAX_TENSORS 65536u /* tensor infos in one file */
#endif
#ifndef FTI_GGUF_MAX_KV
#define FTI_GGUF_MAX_KV 65536u /* key/value pairs in one file */
#endif
#ifndef FTI_GGUF_MAX_NAME
#define FTI_GGUF_MAX_NAME 256u /* bytes of a key or tensor name (llama.cpp: tensor names < 64) */
#endif
#ifndef FTI_GGUF_MAX_DIMS
#define FTI_GGUF_MAX_DIMS 4
#endif
#define FTI_GGUF_DEFAULT_ALIGNMENT 32u
#define FTI_GGUF_VERSION 3u

/* GGUF value types (the numbers in the file). */
typedef enum fti_gguf_type {
    FTI_GGUF_UINT8 = 0,
    FTI_GGUF_INT8 = 1,
    FTI_GGUF_UINT16 = 2,
    FTI_GGUF_INT16 = 3,
    FTI_GGUF_UINT32 = 4,
    FTI_GGUF_INT32 = 5,
    FTI_GGUF_FLOAT32 = 6,
    FTI_GGUF_BOOL = 7,
    FTI_GGUF_STRING = 8,
    FTI_GGUF_ARRAY = 9,
    FTI_GGUF_UINT64 = 10,
    FTI_GGUF_INT64 = 11,
    FTI_GGUF_FLOAT64 = 12,
    FTI_GGUF_TYPE_COUNT = 13
} fti_gguf_type;

/* ggml tensor type numbers fti reads and writes (equal to part 02's FTI_DTYPE_* values). */
#define FTI_GGML_F32 0u
#define FTI_GGML_F16 1u
#define FTI_GGML_Q4_0 2u
#define FTI_GGML_Q8_0 8u
#define FTI_GGML_BF16 30u

/* llama.cpp token types (tokenizer.ggml.token_type). */
#define FTI_GGUF_TOKEN_NORMAL 1
#define FTI_GGUF_TOKEN_UNKNOWN 2
#define FTI_GGUF_TOKEN_CONTROL 3
#define FTI_GGUF_TOKEN_USER_DEFINED 4
#define FTI_GGUF_TOKEN_UNUSED 5
#define FTI_GGUF_TOKEN_BYTE 6

/* Name of a GGUF value type ("u32", "string", ...); "?" for unknown. Thread safety: any thread. */
FTIDEF const char *fti_gguf_type_name(uint32_t type);
/* Name of a ggml tensor type ("F32", "Q8_0", ...), or NULL if fti does not support it. */
FTIDEF const char *fti_ggml_type_name(uint32_t ggml_type);
/* Block geometry of a supported ggml type: elements per block and bytes per block (F32: 1 and 4,
 * Q8_0: 32 and 34, Q4_0: 32 and 18). Returns 0 for unsupported types. Thread safety: any thread. */
FTIDEF int fti_ggml_type_block(uint32_t ggml_type, size_t *block_elems, size_t *block_bytes);
/* The name llama.cpp gives ggml type t ("Q6_K"), also for the types fti does not run, or "type
 * N" for an id it does not know; written into out. */
FTIDEF const char *fti_ggml_type_any_name(uint32_t ggml_type, char out[16]);
/* Bytes of a row of n elements of a type: 0 if unsupported, n not a multiple of the block size,
 * or on overflow. */
FTIDEF size_t fti_ggml_row_bytes(uint32_t ggml_type, size_t n);

/* --- reader -------------------------------------------------------------------------------- */

/* One key/value pair of an open file. Pointers point into the file (or into the reader's own
 * memory for `key`) and stay valid until fti_gguf_close. Scalars: `data` points at the value's
 * little-endian bytes (read them with the typed getters below). Strings: `data`/`n_bytes` are
 * the string's bytes (not NUL-terminated). Arrays: `arr_type`, `arr_n` and, for numbers, `data`
 * = the elements' little-endian bytes (possibly unaligned); strings through fti_gguf_arr_str. */
typedef struct fti_gguf_kv {
    const char *key; /* NUL-terminated copy */
    size_t key_len;
    fti_gguf_type type;
    fti_gguf_type arr_type; /* arrays only */
    size_t arr_n;           /* arrays only: element count */
    const void *data;
    size_t n_bytes;
    size_t str_index; /* arrays of strings: first entry in the reader's string index (private) */
} fti_gguf_kv;

/* One tensor of an open file. `data` points into the mapped file (zero copy, aligned to the
 * file's alignment); valid until fti_gguf_close. ne[] unused dims are 1. */
typedef struct fti_gguf_tensor {
    const char *name; /* NUL-terminated copy */
    uint32_t n_dims;  /* 1..4 */
    uint64_t ne[FTI_GGUF_MAX_DIMS]; /* innermost first */
    uint32_t type;    /* ggml type number */
    uint64_t offset;  /* from the start of the data section */
    size_t n_elements;
    size_t n_bytes;
    const void *data;
} fti_gguf_tensor;

typedef struct fti_gguf_opts {
    size_t max_tensors; /* 0 = FTI_GGUF_MAX_TENSORS */
    size_t max_kv;      /* 0 = FTI_GGUF_MAX_KV */
    int no_tensor_data; /* 1: the file may end before the tensor data (inspect a header only) */
    int any_type;       /* 1: tensors of the ggml types fti does not run (K- and I-quants, ...)
                         * are accepted too, sized by their block layout, so the file can be
                         * inspected; fti_gguf_llama_config still refuses them */
} fti_gguf_opts;

typedef struct fti_gguf fti_gguf;

/* Opens and fully validates a GGUF file (versions 2 and 3). On success *out owns the mapping;
 * free with fti_gguf_close. Errors: FTI_ERR_IO (cannot open/map), FTI_ERR_FORMAT (malformed:
 * bad magic, truncated, duplicate key, unaligned or overlapping tensor, ...), FTI_ERR_LIMIT
 * (counts above the limits), FTI_ERR_UNSUPPORTED (version, tensor type), FTI_ERR_NOMEM; err's
 * message names the file, the key or tensor and the numbers. Thread safety: any thread; the
 * opened file is read-only and may be shared by threads. */
FTIDEF fti_result fti_gguf_open(fti_gguf **out, const char *path, const fti_gguf_opts *opts,
                                fti_error *err);
/* The same over caller memory data[0..len) (borrowed: must outlive the handle); `name` is used
 * in error messages (NULL = "<memory>"). For tests and fuzzing. */
FTIDEF fti_result fti_gguf_open_memory(fti_gguf **out, const void *data, size_t len,
                                       const char *name, const fti_gguf_opts *opts,
                                       fti_error *err);
/* Unmaps and frees; NULL is fine. Every pointer obtained from g becomes invalid. */
FTIDEF void fti_gguf_close(fti_gguf *g);

FTIDEF uint32_t fti_gguf_version(const fti_gguf *g);
FTIDEF size_t fti_gguf_alignment(const fti_gguf *g);
/* Offset of the tensor data section in the file, the file's size and its bytes. */
FTIDEF size_t fti_gguf_data_offset(const fti_gguf *g);
FTIDEF size_t fti_gguf_file_size(const fti_gguf *g);
FTIDEF const void *fti_gguf_file_data(const fti_gguf *g);
FTIDEF const char *fti_gguf_path(const fti_gguf *g);
/* Lets the pages of bytes [p, p+len) of the file (tensor data that has been copied elsewhere)
 * leave memory: fti_map_drop on a file fti_gguf_open mapped; they are read again from the file
 * if touched, so every pointer stays valid. Returns 1 when pages were dropped (len 0: when they
 * could be), 0 when nothing could be (a read() copy, caller memory, p outside the file). A range
 * past the file's end stops there. */
FTIDEF int fti_gguf_drop(const fti_gguf *g, const void *p, size_t len);

/* Key/values in file order; lookup by exact key (NULL when absent). */
FTIDEF size_t fti_gguf_n_kv(const fti_gguf *g);
FTIDEF const fti_gguf_kv *fti_gguf_kv_at(const fti_gguf *g, size_t i);
FTIDEF const fti_gguf_kv *fti_gguf_find(const fti_gguf *g, const char *key);

/* Typed getters. FTI_ERR_NOT_FOUND when the key is absent; FTI_ERR_FORMAT when it has another
 * type or its value does not fit (integers of any width are accepted if the value fits;
 * floats accept F32 and F64; bools only BOOL). err names the file, the key and both types. */
FTIDEF fti_result fti_gguf_get_u32(const fti_gguf *g, const char *key, uint32_t *out,
                                   fti_error *err);
FTIDEF fti_result fti_gguf_get_u64(const fti_gguf *g, const char *key, uint64_t *out,
                                   fti_error *err);
FTIDEF fti_result fti_gguf_get_i64(const fti_gguf *g, const char *key, int64_t *out,
                                   fti_error *err);
FTIDEF fti_result fti_gguf_get_f32(const fti_gguf *g, const char *key, float *out,
                                   fti_error *err);
FTIDEF fti_result fti_gguf_get_bool(const fti_gguf *g, const char *key, int *out, fti_error *err);
/* String value: pointer into the file (not NUL-terminated) and its length. */
FTIDEF fti_result fti_gguf_get_str(const fti_gguf *g, const char *key, const char **out,
                                   size_t *out_len, fti_error *err);
/* An array whose elements have type elem_type (FTI_GGUF_TYPE_COUNT = any); *out = the kv. */
FTIDEF fti_result fti_gguf_get_arr(const fti_gguf *g, const char *key, fti_gguf_type elem_type,
                                   const fti_gguf_kv **out, fti_error *err);

/* Element i of a number array as int64 / double (0 when i is out of range or not a number
 * array; integer types only for _int). */
FTIDEF int64_t fti_gguf_arr_int(const fti_gguf_kv *kv, size_t i);
FTIDEF double fti_gguf_arr_num(const fti_gguf_kv *kv, size_t i);
/* Element i of a string array: pointer into the file and length; NULL when out of range. */
FTIDEF const char *fti_gguf_arr_str(const fti_gguf *g, const fti_gguf_kv *kv, size_t i,
                                    size_t *out_len);
/* A scalar value converted to double / int64 (for printing); 0 for strings and arrays. */
FTIDEF double fti_gguf_kv_num(const fti_gguf_kv *kv);
FTIDEF int64_t fti_gguf_kv_int(const fti_gguf_kv *kv);

/* Tensors in file order; lookup by exact name (NULL when absent). */
FTIDEF size_t fti_gguf_n_tensors(const fti_gguf *g);
FTIDEF const fti_gguf_tensor *fti_gguf_tensor_at(const fti_gguf *g, size_t i);
FTIDEF const fti_gguf_tensor *fti_gguf_find_tensor(const fti_gguf *g, const char *name);

/* --- writer -------------------------------------------------------------------------------- */

typedef struct fti_gguf_writer fti_gguf_writer;

/* Creates an empty writer with the given alignment (0 = 32; must be a power of two, else
 * FTI_ERR_INVALID). Free with fti_gguf_writer_free. Thread safety: one thread per object. */
FTIDEF fti_result fti_gguf_writer_create(fti_gguf_writer **out, size_t alignment);
/* Frees the writer, its copies and owned tensor data; NULL is fine. */
FTIDEF void fti_gguf_writer_free(fti_gguf_writer *w);

/* Set a key (copied). Setting an existing key replaces its value in place (order is kept).
 * Keys are 1..FTI_GGUF_MAX_NAME bytes. Errors: FTI_ERR_INVALID, FTI_ERR_NOMEM. */
FTIDEF fti_result fti_gguf_set_u8(fti_gguf_writer *w, const char *key, uint8_t v);
FTIDEF fti_result fti_gguf_set_i8(fti_gguf_writer *w, const char *key, int8_t v);
FTIDEF fti_result fti_gguf_set_u16(fti_gguf_writer *w, const char *key, uint16_t v);
FTIDEF fti_result fti_gguf_set_i16(fti_gguf_writer *w, const char *key, int16_t v);
FTIDEF fti_result fti_gguf_set_u32(fti_gguf_writer *w, const char *key, uint32_t v);
FTIDEF fti_result fti_gguf_set_i32(fti_gguf_writer *w, const char *key, int32_t v);
FTIDEF fti_result fti_gguf_set_u64(fti_gguf_writer *w, const char *key, uint64_t v);
FTIDEF fti_result fti_gguf_set_i64(fti_gguf_writer *w, const char *key, int64_t v);
FTIDEF fti_result fti_gguf_set_f32(fti_gguf_writer *w, const char *key, float v);
FTIDEF fti_result fti_gguf_set_f64(fti_gguf_writer *w, const char *key, double v);
FTIDEF fti_result fti_gguf_set_bool(fti_gguf_writer *w, const char *key, int v);
FTIDEF fti_result fti_gguf_set_str(fti_gguf_writer *w, const char *key, const char *s);
FTIDEF fti_result fti_gguf_set_strn(fti_gguf_writer *w, const char *key, const char *s,
                                    size_t len);
/* A number array: `data` holds n values in host representation of elem_type (uint8_t ...
 * double; BOOL as uint8_t 0/1). elem_type must be a number or bool type. */
FTIDEF fti_result fti_gguf_set_arr(fti_gguf_writer *w, const char *key, fti_gguf_type elem_type,
                                   const void *data, size_t n);
/* A string array: strs[i] with lengths lens[i] (lens NULL: NUL-terminated). */
FTIDEF fti_result fti_gguf_set_arr_str(fti_gguf_writer *w, const char *key,
                                       const char *const *strs, const size_t *lens, size_t n);
/* Copies key/value i of an open file into the writer (used by fti-quantize). */
FTIDEF fti_result fti_gguf_set_kv_from(fti_gguf_writer *w, const fti_gguf *g,
                                       const fti_gguf_kv *kv);
/* Removes a key if present. */
FTIDEF void fti_gguf_unset(fti_gguf_writer *w, const char *key);

/* Adds a tensor: name (< 64 bytes, llama.cpp's limit), n_dims 1..4 dims innermost first (each
 * >= 1), ggml type, and its n_bytes of data (must equal the size the dims and type imply).
 * `data` is BORROWED: it must stay valid until the file is written. _copy copies it;
 * _owned takes ownership of a block from fti_malloc (freed by the writer, also on failure).
 * Errors: FTI_ERR_INVALID (bad name, dims, type or size; duplicate name), FTI_ERR_NOMEM. */
FTIDEF fti_result fti_gguf_add_tensor(fti_gguf_writer *w, const char *name, uint32_t n_dims,
                                      const uint64_t *ne, uint32_t ggml_type, const void *data,
                                      size_t n_bytes);
FTIDEF fti_result fti_gguf_add_tensor_copy(fti_gguf_writer *w, const char *name,
                                           uint32_t n_dims, const uint64_t *ne,
                                           uint32_t ggml_type, const void *data, size_t n_bytes);
FTIDEF fti_result fti_gguf_add_tensor_owned(fti_gguf_writer *w, const char *name,
                                            uint32_t n_dims, const uint64_t *ne,
                                            uint32_t ggml_type, void *data, size_t n_bytes);
FTIDEF size_t fti_gguf_writer_n_tensors(const fti_gguf_writer *w);

/* Writes the file atomically (temp file, fsync, rename): on any failure the old content of path
 * is untouched. The writer stays usable. */
FTIDEF fti_result fti_gguf_writer_write(fti_gguf_writer *w, const char *path, fti_error *err);
/* Writes the whole file into a growable buffer (tests, fuzz seeds). */
FTIDEF fti_result fti_gguf_writer_write_buf(fti_gguf_writer *w, fti_buf *out, fti_error *err);

/* --- llama models ------------------------------------------------------------------------- */

/* The gpt2-style BPE tokenizer metadata written into a model file. Token strings must be in
 * GPT-2 byte-to-unicode form (what llama.cpp's gpt2 vocabulary expects); merges are "left right"
 * in rank order. token_types NULL means: NORMAL (1) for every token except the ids listed in
 * special_ids, which are CONTROL (3). bos/eos -1 = none. */
typedef struct fti_gguf_tokenizer_meta {
    size_t n_tokens;
    const char *const *tokens;
    const size_t *token_lens;  /* NULL: NUL-terminated */
    const int32_t *token_types; /* NULL: derived as above */
    const int32_t *special_ids;
    size_t n_special;
    size_t n_merges;
    const char *const *merges;
    const size_t *merge_lens;  /* NULL: NUL-terminated */
    const char *model;         /* tokenizer.ggml.model; NULL = "gpt2" */
    const char *pre;           /* tokenizer.ggml.pre; NULL = "gpt-2" */
    int32_t bos_id;
    int32_t eos_id;
    int32_t pad_id;            /* -1 = none */
    int add_bos;               /* tokenizer.ggml.add_bos_token */
    int add_eos;               /* tokenizer.ggml.add_eos_token */
    const char *chat_template; /* tokenizer.chat_template; NULL = none */
} fti_gguf_tokenizer_meta;

/* Fills m from part 03's GGUF form of a tokenizer (fti_tokenizer_gguf_make): tokens, types,
 * merges, model, pre, BOS/EOS; add_bos as given (what the engine should do with prompts), no
 * padding id. m points into tg: keep tg alive until the model is written. */
FTIDEF void fti_gguf_tokenizer_meta_from(fti_gguf_tokenizer_meta *m, const fti_tokenizer_gguf *tg,
                                         int add_bos);

/* Where a model came from: general.* and fti.* keys (NULL/0 fields are not written). */
typedef struct fti_gguf_lineage {
    const char *name;               /* general.name (default "fti-twin") */
    const char *author;             /* general.author */
    const char *version;            /* general.version */
    const char *description;        /* general.description */
    const char *license;            /* general.license */
    const char *const *datasets;    /* general.datasets (array of strings) */
    size_t n_datasets;
    const char *base_model_name;    /* general.base_model.count = 1, general.base_model.0.name */
    const char *base_model_version; /* general.base_model.0.version */
    const char *base_model_id;      /* fti.base_model.sha256 */
    const char *dataset_version;    /* fti.dataset.version (feature-store version id) */
    const char *store_path;         /* fti.dataset.store (workspace path, for RAG) */
    const char *tokenizer_sha256;   /* fti.tokenizer.sha256 */
    const char *train_config;       /* fti.train.config (JSON) */
    const char *doc_template;       /* fti.doc.template (the document template) */
    uint64_t train_steps;           /* fti.train.steps: the steps the weights have had */
    uint64_t train_tokens;          /* fti.train.tokens: at that step */
    double train_loss;              /* fti.train.loss (that step's); written only when
                                     * has_train_loss is set and it is not NaN */
    int has_train_loss;             /* 1: train_loss is known. 0 (a zeroed struct) = unknown,
                                     * no key: a reader cannot tell a loss of 0 from none */
    double val_loss;                /* fti.train.val_loss (written when > 0) */
    const char *weights;            /* fti.train.weights: which weights of the run these are
                                     * ("best validation pass"); NULL = not written (the last
                                     * step's) */
    uint64_t run_steps;             /* fti.train.run_steps: the run's steps, when the weights are
                                     * an earlier step's; 0 = not written */
    const char *created;            /* fti.created (ISO 8601; NULL = not written) */
} fti_gguf_lineage;

typedef struct fti_gguf_model_opts {
    /* ggml type for the 2-D weights (token_embd, projections, output): 0 = F32; F16, BF16,
     * Q8_0, Q4_0 convert (through part 02's row converters). Norms always stay F32, and so do
     * matrices whose rows are no multiple of 32 in Q8_0/Q4_0 (general.file_type still names
     * the type, as llama.cpp's files do). */
    uint32_t matrix_type;
} fti_gguf_model_opts;

/* Adds a whole llama model to w: general.architecture "llama", general.file_type, llama.* keys
 * (u32 context_length, embedding_length, block_count, feed_forward_length, attention.head_count,
 * attention.head_count_kv, rope.dimension_count, vocab_size; f32 rope.freq_base,
 * attention.layer_norm_rms_epsilon), the tokenizer keys (if tok != NULL), the lineage keys (if
 * lin != NULL), and every tensor of the layout of cfg (fti_model_tensor_info) from the
 * contiguous f32 block `params` (borrowed when stored as F32, converted copies otherwise).
 * cfg is resolved (fti_model_config_resolve) first; tok->n_tokens must equal cfg->vocab_size.
 * Errors: FTI_ERR_INVALID (with err naming the field), FTI_ERR_UNSUPPORTED (type), NOMEM. */
FTIDEF fti_result fti_gguf_add_llama(fti_gguf_writer *w, const fti_model_config *cfg,
                                     const float *params, const fti_gguf_tokenizer_meta *tok,
                                     const fti_gguf_lineage *lin,
                                     const fti_gguf_model_opts *opts, fti_error *err);
/* One-shot: create a writer, fti_gguf_add_llama, write atomically to path, free. */
FTIDEF fti_result fti_gguf_write_llama(const char *path, const fti_model_config *cfg,
                                       const float *params, const fti_gguf_tokenizer_meta *tok,
                                       const fti_gguf_lineage *lin,
                                       const fti_gguf_model_opts *opts, fti_error *err);

/* Reads a llama model's configuration from an open file and validates it against the tensors:
 * general.architecture == "llama", every llama.* key present with a fitting type, every tensor
 * of the layout present with shape {cols, rows} and a supported type (norms F32), no unexpected
 * extra tensors (ignored if `allow_extra`), tied when `output` is absent, tokenizer arrays
 * (tokens, token_type, merges) consistent with vocab_size and BOS/EOS/pad ids < vocab_size.
 * On success cfg is resolved. err names the file, key or tensor and the numbers. */
FTIDEF fti_result fti_gguf_llama_config(const fti_gguf *g, fti_model_config *cfg,
                                        int allow_extra, fti_error *err);

/* Decodes every tensor of the llama layout of cfg (as returned by fti_gguf_llama_config) from
 * the file into the contiguous f32 block params (fti_model_n_params(cfg) floats, part 05's
 * layout; GGUF names are the layout names + ".weight"). Any stored type is decoded (F16, BF16,
 * Q8_0, Q4_0 approximately, F32 exactly). For fine-tuning and tools. Thread safety: any thread. */
FTIDEF fti_result fti_gguf_llama_params(const fti_gguf *g, const fti_model_config *cfg,
                                        float *params, fti_error *err);

#ifdef __cplusplus
}
#endif
#endif /* FTI_FORMAT_H */
