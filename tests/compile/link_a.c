/* link_a.c + link_b.c: the implementation in one translation unit, declarations in another. */
#define FTI_IMPLEMENTATION
#include "../../fti.h"
#include "../../fti.h" /* a second include is harmless */

int link_b(void);

int main(void) {
    return link_b() == 3 && fti_result_str(FTI_OK)[0] == 'o' ? 0 : 1;
}
