#!/bin/sh
# gen_tests.sh OUT FILE...: writes the test runner's list: every "FTI_TEST(name)" line of the
# tests/test_*.c files, and every fuzz target "int fti_fuzz_NAME(" of the tests/fuzz/fuzz_*.c files
# (replayed over their seed and regression inputs by the fuzz_replay test).
out=$1; shift
{
  echo "typedef struct { const char *name; void (*fn)(void); } fti_test_case;"
  echo "typedef struct { const char *name; int (*fn)(const uint8_t *, size_t); } fti_fuzz_target;"
  echo "static const fti_fuzz_target *fti_fuzz_target_list(void);"
  for f in "$@"; do echo "#include \"../$f\""; done
  echo "static const fti_test_case fti_tests[] = {"
  for f in "$@"; do
    sed -n 's/^FTI_TEST(\([A-Za-z0-9_]*\)).*/    {"\1", fti_test_\1},/p' "$f"
  done
  echo "};"
  echo "static const fti_fuzz_target fti_fuzz_targets_[] = {"
  for f in "$@"; do
    sed -n 's/^int fti_fuzz_\([A-Za-z0-9_]*\)(.*/    {"\1", fti_fuzz_\1},/p' "$f"
  done
  echo "    {NULL, NULL}"
  echo "};"
  echo "static const fti_fuzz_target *fti_fuzz_target_list(void) { return fti_fuzz_targets_; }"
} > "$out.tmp" && mv "$out.tmp" "$out"
