#!/bin/sh
# gen_tests.sh OUT FILE...: writes the test runner's list: every "FTI_TEST(name)" line of the
# tests/test_*.c files, and every fuzz target "int fti_fuzz_NAME(" of the tests/fuzz/fuzz_*.c files
# (replayed over their seed and regression inputs by the fuzz_replay test).
#
# A file whose tests all need a part that can be compiled out says so in a line of its own,
#     /* tests-need: !defined(FTI_NO_STORE) */
# and its include and its entries are then kept under that #if (so an FTI_NO_STORE build simply
# has fewer tests). A single test in a mixed file keeps its body under #ifndef instead.
out=$1; shift
need() { sed -n 's|^/\* tests-need: \(.*\) \*/$|\1|p' "$1" | head -n 1; }
# guarded FILE TEXT: TEXT, under the file's #if when it has one
guarded() {
    c=$(need "$1")
    if [ -n "$c" ]; then printf '#if %s\n%s\n#endif\n' "$c" "$2"; else printf '%s\n' "$2"; fi
}
{
  echo "typedef struct { const char *name; void (*fn)(void); } fti_test_case;"
  echo "typedef struct { const char *name; int (*fn)(const uint8_t *, size_t); } fti_fuzz_target;"
  echo "static const fti_fuzz_target *fti_fuzz_target_list(void);"
  for f in "$@"; do guarded "$f" "#include \"../$f\""; done
  echo "static const fti_test_case fti_tests[] = {"
  for f in "$@"; do
    e=$(sed -n 's/^FTI_TEST(\([A-Za-z0-9_]*\)).*/    {"\1", fti_test_\1},/p' "$f")
    [ -n "$e" ] && guarded "$f" "$e"
  done
  echo "};"
  echo "static const fti_fuzz_target fti_fuzz_targets_[] = {"
  for f in "$@"; do
    e=$(sed -n 's/^int fti_fuzz_\([A-Za-z0-9_]*\)(.*/    {"\1", fti_fuzz_\1},/p' "$f")
    [ -n "$e" ] && guarded "$f" "$e"
  done
  echo "    {NULL, NULL}"
  echo "};"
  echo "static const fti_fuzz_target *fti_fuzz_target_list(void) { return fti_fuzz_targets_; }"
} > "$out.tmp" && mv "$out.tmp" "$out"
