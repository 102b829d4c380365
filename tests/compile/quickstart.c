/* quickstart.c: the QUICK START of fti.h's top comment, as written there. */
#define FTI_IMPLEMENTATION
#include "../../fti.h"
#include <stdio.h>

int main(int argc, char **argv) {
    unsigned char digest[32]; char hex[65]; fti_error err;
    if (argc < 2) return 2;
    if (fti_sha256_file(argv[1], digest, &err) != FTI_OK) { puts(err.msg); return 1; }
    fti_sha256_hex(digest, hex); puts(hex);
    return 0;
}
