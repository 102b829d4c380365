/* fuzz_shard.c: the token-shard reader (part 04) on any file. The input is written to a scratch
 * file and opened twice: as is (header checks only), and with its SHA-256 field set to the
 * payload's digest and the checksum and token-range check on, so the fuzzer gets past the
 * digest. An accepted shard has count * width payload bytes, and with the check every token is
 * below vocab_size. */
/* tests-need: !defined(FTI_NO_STORE) */
#include "fuzz_tmp.h"

static void fti_fuzz_shard_open(const char *path, int check, size_t size) {
    fti_token_shard s;
    fti_error err;
    uint64_t i;
    if (fti_shard_open(&s, path, check, &err) != FTI_OK) {
        FTI_FUZZ_CHECK(err.msg[0] != 0);
        return;
    }
    FTI_FUZZ_CHECK(s.width == 2 || s.width == 4);
    FTI_FUZZ_CHECK(FTI_SHARD_HEADER_BYTES + s.count * s.width == (uint64_t)size);
    for (i = 0; i < s.count && i < 65536; i++) {
        uint32_t t = fti_shard_at(&s, i);
        if (check) FTI_FUZZ_CHECK(t < s.vocab_size);
    }
    fti_shard_close(&s);
}

int fti_fuzz_shard(const uint8_t *data, size_t size) {
    const char *path = fti_fuzz_tmp("shard.bin");
    unsigned char *copy;
    if (fti_fuzz_write(path, data, size) != 0) return 0;
    fti_fuzz_shard_open(path, 0, size);
    if (size < FTI_SHARD_HEADER_BYTES) return 0;
    copy = (unsigned char *)fti_malloc(size);
    if (!copy) return 0;
    memcpy(copy, data, size);
    /* the digest field: magic 8, version 4, width 4, count 8, vocab 4, eot 4, then 32 bytes */
    fti_sha256_buf(copy + FTI_SHARD_HEADER_BYTES, size - FTI_SHARD_HEADER_BYTES, copy + 32);
    if (fti_fuzz_write(path, copy, size) == 0) fti_fuzz_shard_open(path, 1, size);
    fti_free(copy);
    return 0;
}
