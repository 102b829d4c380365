// cxx.cpp: fti.h compiles as C++ (declarations and implementation) — STYLE T2.
#define FTI_IMPLEMENTATION
#include "../../fti.h"
#include <cstdio>

int main() {
    unsigned char d[32];
    char hex[65];
    fti_sha256_buf("abc", 3, d);
    fti_sha256_hex(d, hex);
    std::printf("%s\n", hex);
    return hex[0] == 'b' ? 0 : 1;
}
