/* test_kernels.c: every kernel table against the scalar references. */
#include "test.h"

FTI_TEST(kernels_basic_matmul) {
    const fti_kernels *k = fti_kernels_get(FTI_ISA_AUTO);
    float A[6] = {1, 2, 3, 4, 5, 6}, B[6] = {1, 0, 0, 1, 1, 1}, C[4];
    REQUIRE(k != NULL);
    REQUIRE(fti_kernels_get(FTI_ISA_SCALAR) != NULL);
    fti_matmul(k, NULL, 0, 2, 2, 3, A, 3, B, 2, C, 2);
    CHECK_NEAR(C[0], 4, 0, 0);
    CHECK_NEAR(C[1], 5, 0, 0);
    CHECK_NEAR(C[2], 10, 0, 0);
    CHECK_NEAR(C[3], 11, 0, 0);
}
