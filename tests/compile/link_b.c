#include "../../fti.h"

int link_b(void) {
    unsigned char d[32];
    fti_sha256_buf("abc", 3, d);
    return d[0] == 0xba ? 3 : 0;
}
