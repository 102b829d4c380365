/* fuzz_store.c: fuzz entry for the feature store's parsers (STYLE U7).
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -I. tools/fuzz_store.c -lm -lpthread
 *       ./a.out tests/data/store/kinds tests/data/store/hostile        (libFuzzer)
 *   cc -g -O1 -fsanitize=address,undefined -DFUZZ_MAIN -I. tools/fuzz_store.c -o fuzz_store \
 *       -lm -lpthread
 *       ./fuzz_store FILE...                  run each file once (AFL: ./fuzz_store @@)
 *       ./fuzz_store [--seed S] --mutate N FILE...   N random mutations of each file (no fuzzer
 *                                                    needed; S picks the mutation sequence)
 *
 * One input goes through every parser: the record parsers of every input kind (txt, md, html,
 * json, jsonl, csv, eml, mbox), the cleaning and redaction rules, and the BM25 index and token
 * shard readers (the input is also tried as an index/shard file image), and the parser of a
 * file's section in a records pack or a partial (sharded ingest).
 */
#define FTI_IMPLEMENTATION
#define FTI_TESTING
#include "fti.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void one(const unsigned char *data, size_t size) {
    static const fti__st_kind kinds[] = {FTI__ST_K_TXT,  FTI__ST_K_MD,    FTI__ST_K_HTML,
                                         FTI__ST_K_JSON, FTI__ST_K_JSONL, FTI__ST_K_CSV,
                                         FTI__ST_K_EML,  FTI__ST_K_MBOX};
    fti_ingest_opts o = fti_ingest_opts_resolve(NULL);
    fti__st_proc pp;
    size_t k;
    unsigned char sha[32];
    memset(&pp, 0, sizeof pp);
    pp.o = &o;
    fti_sha256_buf(data, size, sha);
    for (k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        fti__st_unit u;
        fti__st_out out;
        memset(&out, 0, sizeof out);
        u.file = 0;
        u.kind = kinds[k];
        u.off = 0;
        u.len = size;
        u.first_no = 1;
        fti__st_process_unit(&pp, &u, "fuzz.in", data, size, sha, &out);
        fti__st_out_free(&out);
    }
    {
        fti_buf b;
        memset(&b, 0, sizeof b);
        fti_clean_text((const char *)data, size, FTI_CLEAN_REDACT_ALL, &b);
        fti_buf_free(&b);
    }
    {
        /* as a file's section of a records pack or a partial (a whole pack: its first one) */
        const unsigned char *sec = data;
        size_t n = size, used = 0;
        fti__st_out out;
        if (size >= 16 && memcmp(data, "FTIRECS", 8) == 0) sec += 16, n -= 16;
        memset(&out, 0, sizeof out);
        (void)fti__st_parse_section(sec, n, 0, &out, 0, &used);
        fti__st_out_free(&out);
        (void)fti__st_parse_section(sec, n, 0, NULL, 0, &used);
    }
    {
        /* as an index image and as a shard image */
        fti_bm25 ix;
        fti_error e;
        memset(&ix, 0, sizeof ix);
        if (fti__st_bm25_check(&ix, data, size, "fuzz", &e) == FTI_OK) {
            fti_search_hit h[4];
            ix.p = data;
            (void)fti_bm25_query(&ix, "the a of", 8, 4, h);
        }
    }
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);
int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    one(data, size);
    return 0;
}

#ifdef FUZZ_MAIN
int main(int argc, char **argv) {
    int i = 1;
    long n_mut = 0, m;
    fti_rng r;
    unsigned long seed = 1234;
    if (argc > 2 && strcmp(argv[i], "--seed") == 0) {
        seed = strtoul(argv[i + 1], NULL, 10);
        i += 2;
    }
    if (argc > i + 1 && strcmp(argv[i], "--mutate") == 0) {
        n_mut = atol(argv[i + 1]);
        i += 2;
    }
    fti_rng_seed(&r, seed, 1);
    for (; i < argc; i++) {
        void *data = NULL;
        size_t len = 0;
        if (fti_file_read(argv[i], (size_t)64 << 20, &data, &len, NULL) != FTI_OK) continue;
        one((const unsigned char *)data, len);
        for (m = 0; m < n_mut; m++) {
            size_t n = len + 16, j, edits = 1 + fti_rng_below(&r, 8);
            unsigned char *buf = (unsigned char *)malloc(n);
            memcpy(buf, data, len);
            n = len;
            for (j = 0; j < edits && n > 0; j++) {
                size_t at = fti_rng_below(&r, (uint32_t)n);
                switch (fti_rng_below(&r, 4)) {
                case 0:
                    buf[at] = (unsigned char)fti_rng_u32(&r);
                    break;
                case 1:
                    n = at;
                    break; /* truncate */
                case 2:
                    buf[at] = "<>&\"=\n-:{}[],\\"[fti_rng_below(&r, 14)];
                    break;
                default:
                    memmove(buf + at, buf + at + 1, n - at - 1);
                    n--;
                    break;
                }
            }
            one(buf, n);
            free(buf);
        }
        fti_free(data);
    }
    printf("fuzz_store: done\n");
    return 0;
}
#endif
