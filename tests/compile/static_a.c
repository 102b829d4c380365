/* FTI_STATIC: two translation units each with a private copy; no duplicate symbols at link. */
#define FTI_STATIC
#define FTI_IMPLEMENTATION
#include "../../fti.h"
int static_b(void);
int main(void) { return static_b() + (fti_hash64("x", 1, 0) ? 0 : 1); }
