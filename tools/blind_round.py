#!/usr/bin/env python3
"""A blind reading round of the twin's lines (docs/twin.md, "Read by others").

The twin's lines are shuffled together with first sentences of the author's own entries and
rated 0-3 by readers who see neither labels nor code. Three steps:

  tools/blind_round.py picks --home twin --label defaults [--seeds 1000,2000] [--words W,W,...]
                             [--out DIR] [-- fti-twin write options...]
      runs `build/fti-twin --home HOME write --seed S WORD [options]` for every word and seed
      (one word per run) and writes DIR/picks_LABEL.txt, one line per word and seed.

  tools/blind_round.py make --out DIR --keys FILE [--controls 24] [--seed 7] PICKS...
      writes DIR/list_A.txt (the distinct lines of every picks file and N of the author's first
      sentences, shuffled, one "Qnnn<TAB>line" a row), DIR/list_B.txt (the same, reversed) and
      DIR/instructions_A.txt / _B.txt (what to give each reader). The key (which line came from
      which setting) goes to FILE, which must not be in DIR: readers are told to open only
      their list.

  tools/blind_round.py score --keys FILE RATINGS...
      reads the readers' "Qnnn<TAB>rating" files and prints, per setting and for the author's
      lines, the mean rating of each reader and of both, the lines scoring 2 or more and 0 (by
      the readers' mean), and how often the readers agree.

Standard library only. The scale and the instructions are those of rounds 1-8.
"""
import argparse
import glob
import json
import os
import random
import re
import subprocess
import sys

THEMES = ("GOD COUNTRY GENERAL CHURCH WIFE FRIEND POET PHILOSOPHER PRIEST BISHOP WISDOM SCIENCE "
          "DEATH HELL SIN FAME GLORY BOOK AUTHOR OFFICE").split()
CORPUS = "data/corpus/bierce/devils_dictionary.jsonl"
ENTRY = re.compile(r"^[A-Z][A-Z'\- ]*, [a-z]+\. ")

INSTRUCTIONS = """You are a careful literary reader. The file {list} holds {n} lines, one per \
row: an id (Q000...), a tab, and a dictionary-style entry in the manner of Ambrose Bierce's The \
Devil's Dictionary ("WORD, n. definition."). Some lines are Bierce's own, some were written by \
machines; you are not told which, and you must not try to find out: read only that one file; do \
not open, list or search any other file or directory on this machine, and do not run programs \
other than what you need to read that file and write your answer.

Rate every line on this scale, for how it reads as an entry of The Devil's Dictionary:
- 0 = broken: ungrammatical, unfinished, or nonsense.
- 1 = grammatical, but meaningless or vague as a definition of that headword.
- 2 = a sensible definition of the headword in Bierce's manner (it says something true or apt \
about that word).
- 3 = witty: it reads like one of Bierce's own entries (a cynical or ironic point about the \
word).

Judge each line on its own, against its own headword. Be consistent across the list. Work \
through all {n} lines in order.

Write your ratings to {out}: exactly one row per line, `ID<TAB>rating` (e.g. `Q000\\t1`), {n} \
rows, ids as in the file, nothing else in the file. Then reply with just "done, {n} rows" (or \
say what went wrong).
"""


def die(msg):
    sys.stderr.write("blind_round: %s\n" % msg)
    sys.exit(2)


def cmd_picks(a, rest):
    twin = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "build", "fti-twin")
    if not os.access(twin, os.X_OK):
        die("%s not built (make all)" % twin)
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", a.label):
        die("--label: letters, digits, '_', '.', '-' only")
    words = a.words.split(",") if a.words else THEMES
    seeds = [int(s) for s in a.seeds.split(",")]
    os.makedirs(a.out, exist_ok=True)
    path = os.path.join(a.out, "picks_%s.txt" % a.label)
    lines = []
    for seed in seeds:
        for w in words:
            cmd = [twin, "--home", a.home, "write", "--seed", str(seed)] + rest + [w]
            p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               universal_newlines=True)
            got = [l for l in p.stdout.splitlines() if ENTRY.match(l)]
            if p.returncode != 0 or not got:
                die("%s: exit %d, no line\n%s" % (" ".join(cmd), p.returncode, p.stderr))
            lines.append(got[-1].strip())
            sys.stderr.write("\r%d of %d" % (len(lines), len(words) * len(seeds)))
    sys.stderr.write("\n")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(path)


def first_sentences(n, rng, exclude):
    recs = [json.loads(l) for l in open(CORPUS, encoding="utf-8")]
    rng.shuffle(recs)
    out = []
    for r in recs:
        t = r.get("text", "").strip()
        m = re.match(r"^([A-Z][A-Z'\- ]+, [a-z]+\.(?: [a-z]+\.)?\s+.*?[.!?])(\s|$)", t, re.S)
        if not m:
            continue
        s = " ".join(m.group(1).split())
        if 25 <= len(s) <= 110 and s not in exclude:
            out.append(s)
            exclude.add(s)
        if len(out) >= n:
            break
    return out


def cmd_make(a):
    out = os.path.abspath(a.out)
    keys = os.path.abspath(a.keys)
    if keys == out or keys.startswith(out + os.sep):
        die("--keys must not be inside --out: the readers can see that folder")
    labels = {}
    for path in a.picks:
        label = os.path.basename(path)
        label = re.sub(r"^picks_", "", re.sub(r"\.txt$", "", label))
        for l in open(path, encoding="utf-8"):
            l = l.strip()
            if l:
                labels.setdefault(l, []).append(label)
    if not labels:
        die("no lines in the picks files")
    rng = random.Random(a.seed)
    for s in first_sentences(a.controls, rng, set(labels)):
        labels[s] = ["his"]
    items = list(labels.items())
    rng.shuffle(items)
    os.makedirs(out, exist_ok=True)
    key = {}
    rows = []
    for i, (line, labs) in enumerate(items):
        q = "Q%03d" % i
        key[q] = {"line": line, "from": labs}
        rows.append("%s\t%s\n" % (q, line))
    for side, rs in (("A", rows), ("B", rows[::-1])):
        lst = os.path.join(out, "list_%s.txt" % side)
        with open(lst, "w", encoding="utf-8") as f:
            f.writelines(rs)
        with open(os.path.join(out, "instructions_%s.txt" % side), "w") as f:
            f.write(INSTRUCTIONS.format(list=lst, n=len(rs),
                                        out=os.path.join(out, "out_%s.tsv" % side)))
    os.makedirs(os.path.dirname(keys) or ".", exist_ok=True)
    with open(keys, "w") as f:
        json.dump({"picks": {os.path.basename(p): p for p in a.picks}, "lines": key}, f)
    print("%d distinct lines (%d of his): %s/list_A.txt, list_B.txt, instructions_A.txt, "
          "instructions_B.txt; key %s" % (len(items), sum(v == ["his"] for _, v in items),
                                           out, keys))


def read_ratings(path, key):
    r = {}
    for n, l in enumerate(open(path), 1):
        f = l.split()
        if not f:
            continue
        if len(f) != 2 or f[0] not in key or f[1] not in ("0", "1", "2", "3"):
            die("%s:%d: not 'Qnnn<TAB>0..3': %r" % (path, n, l.rstrip("\n")))
        r[f[0]] = int(f[1])
    missing = [q for q in key if q not in r]
    if missing:
        die("%s: %d lines not rated (e.g. %s)" % (path, len(missing), missing[0]))
    return r


def cmd_score(a):
    k = json.load(open(a.keys))
    key = k["lines"]
    raters = [read_ratings(p, key) for p in a.ratings]
    by_text = {v["line"]: q for q, v in key.items()}
    sets = {}
    for name, path in sorted(k["picks"].items()):
        label = re.sub(r"^picks_", "", re.sub(r"\.txt$", "", name))
        if not os.path.exists(path):
            die("%s: the picks file is gone (its lines count once per word and seed)" % path)
        sets[label] = [by_text[l.strip()] for l in open(path, encoding="utf-8") if l.strip()]
    sets["his"] = [q for q, v in key.items() if v["from"] == ["his"]]
    print("%-24s %5s %s %6s %6s %4s" % ("setting", "lines",
                                      " ".join("r%d" % (i + 1) for i in range(len(raters))),
                                      "mean", ">=2", "0"))
    for label, qs in sets.items():
        means = [sum(r[q] for r in raters) / len(raters) for q in qs]
        per = " ".join("%.2f" % (sum(r[q] for q in qs) / len(qs)) for r in raters)
        print("%-24s %5d %s %6.2f %6d %4d" % (label, len(qs), per, sum(means) / len(means),
                                             sum(m >= 2 for m in means),
                                             sum(m == 0 for m in means)))
    if len(raters) >= 2:
        qs = list(key)
        same = sum(len({r[q] for r in raters}) == 1 for q in qs)
        near = sum(max(r[q] for r in raters) - min(r[q] for r in raters) <= 1 for q in qs)
        print("readers agree exactly on %.0f%% of %d lines, within 1 on %.0f%%"
              % (100.0 * same / len(qs), len(qs), 100.0 * near / len(qs)))
    if a.lines:
        for q, v in sorted(key.items(), key=lambda kv: -sum(r[kv[0]] for r in raters)):
            print("%.1f  %-20s %s" % (sum(r[q] for r in raters) / len(raters),
                                      ",".join(v["from"]), v["line"]))


def main():
    argv = sys.argv[1:]
    rest = []
    if "--" in argv:
        i = argv.index("--")
        argv, rest = argv[:i], argv[i + 1:]
    ap = argparse.ArgumentParser(prog="tools/blind_round.py", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd")
    p = sub.add_parser("picks", help="the twin's lines for one setting")
    p.add_argument("--home", default="twin")
    p.add_argument("--label", required=True)
    p.add_argument("--seeds", default="1000,2000")
    p.add_argument("--words", default="")
    p.add_argument("--out", default=".")
    p = sub.add_parser("make", help="the shuffled lists, the instructions and the key")
    p.add_argument("--out", required=True)
    p.add_argument("--keys", required=True)
    p.add_argument("--controls", type=int, default=24)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("picks", nargs="+")
    p = sub.add_parser("score", help="the ratings per setting")
    p.add_argument("--keys", required=True)
    p.add_argument("--lines", action="store_true", help="also every line with its rating")
    p.add_argument("ratings", nargs="+")
    a = ap.parse_args(argv)
    if a.cmd == "picks":
        cmd_picks(a, rest)
    elif a.cmd == "make":
        if rest:
            die("options after -- belong to picks")
        cmd_make(a)
    elif a.cmd == "score":
        cmd_score(a)
    else:
        ap.print_help()
        sys.exit(2)


if __name__ == "__main__":
    main()
