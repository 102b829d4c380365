#!/bin/sh
# gen_tests.sh OUT FILE...: writes the runner's list of tests (every "FTI_TEST(name)" line).
out=$1; shift
{
  for f in "$@"; do echo "#include \"../$f\""; done
  echo "typedef struct { const char *name; void (*fn)(void); } fti_test_case;"
  echo "static const fti_test_case fti_tests[] = {"
  for f in "$@"; do
    sed -n 's/^FTI_TEST(\([A-Za-z0-9_]*\)).*/    {"\1", fti_test_\1},/p' "$f"
  done
  echo "};"
} > "$out.tmp" && mv "$out.tmp" "$out"
