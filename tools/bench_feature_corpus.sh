#!/bin/sh
# bench_feature_corpus.sh DIR: builds the feature-pipeline benchmark corpus (>= 50 MB) in DIR from
# the sample data and text already on the machine: the Bierce sample (JSONL + TXT), /usr/share/doc
# HTML/text/markdown files, Debian changelogs and copyright files (as .txt), and an mbox and a CSV
# made from the Bierce entries (so mail and CSV parsing are measured too); about 65 MB.
# Idempotent: delete DIR/.done to rebuild.
set -e
C=${1:-build/bench-feature/corpus}
DATA=${FTI_DATA:-../shared/data}
if [ -f "$C/.done" ]; then exit 0; fi
rm -rf "$C"
mkdir -p "$C/sample" "$C/doc" "$C/changelogs" "$C/copyright"
cp "$DATA"/corpus/bierce_devils_dictionary/devils_dictionary.jsonl \
   "$DATA"/corpus/bierce_devils_dictionary/devils_dictionary.txt "$C/sample/"
( cd /usr/share/doc && find . -type f \( -name '*.html' -o -name '*.htm' -o -name '*.txt' \
    -o -name '*.md' \) -size -20M ) | while read -r f; do
    mkdir -p "$C/doc/$(dirname "$f")"
    cp "/usr/share/doc/$f" "$C/doc/$f"
done
# changelogs until the corpus holds about 64 MB (sorted, so the corpus is the same every time)
find /usr/share/doc -name 'changelog*.gz' | LC_ALL=C sort | while read -r f; do
    [ "$(du -sb "$C" | cut -f1)" -gt 64000000 ] && break
    n=$(echo "$f" | sed 's|/usr/share/doc/||; s|/|_|g')
    gzip -dc "$f" > "$C/changelogs/$n.txt" 2>/dev/null || rm -f "$C/changelogs/$n.txt"
done
find /usr/share/doc -name copyright | while read -r f; do
    n=$(echo "$f" | sed 's|/usr/share/doc/||; s|/|_|g')
    cp "$f" "$C/copyright/$n.txt"
done
/usr/bin/python3 - "$DATA" "$C" <<'PY'
import json, sys, base64, quopri, csv
data, out = sys.argv[1], sys.argv[2]
recs = [json.loads(l) for l in open(data + '/corpus/bierce_devils_dictionary/devils_dictionary.jsonl')]
with open(out + '/sample/bierce.mbox', 'w') as f:
    for i, r in enumerate(recs):
        body = r['text'] + '\n'
        f.write('From bierce@example.com Mon Jan  1 00:00:00 1911\n')
        f.write('From: Ambrose Bierce <bierce@example.com>\nSubject: %s\n' % r['title'])
        f.write('Date: Sun, 1 Jan 1911 12:00:00 +0000\n')
        if i % 3 == 0:
            f.write('Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\n')
            f.write(base64.encodebytes(body.encode()).decode())
        elif i % 3 == 1:
            f.write('Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n')
            f.write(quopri.encodestring(body.encode()).decode())
        else:
            f.write('Content-Type: text/plain; charset=utf-8\n\n' + body.replace('\nFrom ', '\n>From '))
        f.write('\n')
with open(out + '/sample/bierce.csv', 'w', newline='') as f:
    w = csv.writer(f)
    w.writerow(['title', 'date', 'text'])
    for r in recs: w.writerow([r['title'], r['created_at'], r['text']])
PY
touch "$C/.done"
