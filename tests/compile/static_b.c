#define FTI_STATIC
#define FTI_IMPLEMENTATION
#include "../../fti.h"
int static_b(void) { return fti_cpu_count() >= 1 ? 0 : 1; }
