/* fuzz_card.c: the model registry's files (part 07): a model card (models/<id>/card.json) and
 * the alias table (models/aliases.json) from any bytes. The input is split at its first NUL byte
 * into the card and the alias table, written into a scratch registry, and read through every
 * registry call that parses them (list, card, aliases, resolve by alias and by id prefix,
 * promote, rollback). Nothing may crash or leak; a resolved id is 16 characters; after a
 * successful promote the alias resolves to the promoted model. */
#ifndef FTI_NO_TRAIN
#include "fuzz_tmp.h"

int fti_fuzz_card(const uint8_t *data, size_t size) {
    static const char *id = "0123456789abcdef";
    const uint8_t *nul = (const uint8_t *)memchr(data, 0, size);
    size_t card_len = nul ? (size_t)(nul - data) : size;
    const char *home = fti_fuzz_tmp("reg");
    char dir[1100], path[1200], got[17];
    fti_buf out;
    fti_error err;
    snprintf(dir, sizeof dir, "%s/models/%s", home, id);
    snprintf(path, sizeof path, "%s/card.json", dir);
    /* the directories are made once (fti_mkdirs costs two stats per component) */
    if (fti_fuzz_write(path, data, card_len) != 0 &&
        (fti_mkdirs(dir, NULL) != FTI_OK || fti_fuzz_write(path, data, card_len) != 0))
        return 0;
    snprintf(path, sizeof path, "%s/models/aliases.json", home);
    if (nul) {
        if (fti_fuzz_write(path, nul + 1, size - card_len - 1) != 0) return 0;
    } else {
        remove(path);
    }
    memset(&out, 0, sizeof out);
    (void)fti_registry_list(home, &out, &err);
    out.len = 0;
    (void)fti_registry_card(home, id, &out, &err);
    out.len = 0;
    (void)fti_registry_aliases(home, &out, &err);
    fti_buf_free(&out);
    if (fti_registry_resolve(home, "production", got, &err) == FTI_OK)
        FTI_FUZZ_CHECK(strlen(got) == 16);
    if (fti_registry_resolve(home, "0123", got, &err) == FTI_OK) FTI_FUZZ_CHECK(strlen(got) == 16);
    if (fti_registry_rollback(home, "production", got, &err) == FTI_OK)
        FTI_FUZZ_CHECK(strlen(got) == 16);
    if (fti_registry_promote(home, id, "staging", &err) == FTI_OK) {
        FTI_FUZZ_CHECK(fti_registry_resolve(home, "staging", got, &err) == FTI_OK);
        FTI_FUZZ_CHECK(strcmp(got, id) == 0);
    }
    return 0;
}
#else
int fti_fuzz_card(const uint8_t *data, size_t size) {
    (void)data;
    (void)size;
    return 0;
}
#endif
