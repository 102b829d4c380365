#!/bin/sh
# bench_feature_big.sh BASE DIR [MB]: a larger feature-pipeline corpus (default about 200 MB) in
# DIR: the base corpus BASE (hard links) plus distinct text on the machine: Python sources from
# /usr/lib/python3 and C headers from /usr/include, copied as .txt files in sorted order until
# DIR holds MB megabytes. Idempotent: delete DIR/.done to rebuild.
set -e
BASE=$1
C=$2
MB=${3:-200}
if [ -f "$C/.done" ]; then exit 0; fi
rm -rf "$C"
mkdir -p "$C/extra"
cp -al "$BASE"/. "$C/base" 2>/dev/null || cp -r "$BASE"/. "$C/base"
rm -f "$C/base/.done"
want=$((MB * 1000000))
have=$(du -sb "$C" | cut -f1)
{ find /usr/lib/python3 -name '*.py' -size +4k; find /usr/include -name '*.h' -size +4k; } |
    LC_ALL=C sort | while read -r f; do
    [ "$have" -gt "$want" ] && break
    n=$(echo "$f" | sed 's|^/usr/||; s|/|_|g')
    cp "$f" "$C/extra/$n.txt"
    have=$((have + $(stat -c %s "$f")))
done
touch "$C/.done"
