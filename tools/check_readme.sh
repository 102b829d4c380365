#!/bin/sh
# check_readme.sh: runs the shell commands README.md shows, as printed, in a scratch directory
# (make check-readme). It checks that every command works, not that its output is the same.
#
#   - commands are the lines of ```sh blocks, and the lines starting with "$ " in plain ```
#     blocks (shown with their output); they run in README order, each with `sh -c`, in a
#     scratch directory that looks like the repository (build/ and data/ linked in) with HOME
#     a directory inside it, so "twin", "~/twin" and "~/writing" are scratch paths; ~/writing
#     holds a part of the shipped corpus (a reader's own folder of writing);
#   - `make demo` and `make test` are skipped (they are checked on their own) unless
#     CHECK_README_ALL=1; in place of `make demo`, the demo's workspace ./twin (which the
#     README's examples use) is made by a short `fti-twin update` of the shipped corpus;
#     a `--minutes N` budget is shortened to $CHECK_README_MINUTES (0.3);
#   - a command ending in " &" runs in the background and is stopped (SIGTERM) once the block's
#     other commands have run;
#   - the C example (```c block) is written to twin_says.c and built with the cc command of its
#     own comment, then run as its comment shows on the production model of the workspace "twin";
#   - fti-monitor report may exit 3 (a drift alert is its documented answer, see the README).
# Exit status 0 when every command succeeded; the failing commands are listed with their output.
set -u
B=${B:-build}
README=${README:-README.md}
MINUTES=${CHECK_README_MINUTES:-0.3}
ROOT=$(pwd)
for p in fti-twin fti-feature fti-train fti-registry fti-infer fti-quantize fti-serve fti-monitor fti-loadgen; do
    [ -x "$B/$p" ] || { echo "check-readme: $B/$p is missing (run make)"; exit 1; }
done
command -v curl >/dev/null 2>&1 || echo "check-readme: curl is missing: its commands will fail"

S=$(mktemp -d "${TMPDIR:-/tmp}/fti-readme.XXXXXX")
trap 'rm -rf "$S"' EXIT INT TERM
ln -s "$ROOT/$B" "$S/build"
ln -s "$ROOT/data" "$S/data"
cp "$ROOT/fti.h" "$S/fti.h"
mkdir -p "$S/home/writing"
# a reader's folder of writing: the first 300 entries of the shipped corpus, as a JSONL export
head -n 300 "$ROOT/data/corpus/bierce/devils_dictionary.jsonl" > "$S/home/writing/entries.jsonl"

# commands: "kind<TAB>command" lines (kind: sh, or c for the C example, written to twin_says.c)
awk -v cfile="$S/twin_says.c" '
    /^```/ {
        if (!inblock) { inblock = 1; lang = substr($0, 4); next }
        if (lang == "c") { close(cfile); printf "c\t-\n" }
        inblock = 0; lang = ""; next
    }
    inblock && lang == "sh" {
        line = $0; sub(/[ \t]+#.*$/, "", line)
        if (line ~ /[^ \t]/) printf "sh\t%s\n", line
        next
    }
    inblock && lang == "" && /^\$ / { printf "sh\t%s\n", substr($0, 3); next }
    inblock && lang == "c" { print > cfile }
' "$README" > "$S/commands.txt"

n=0; ok=0; failed=0; skipped=0; bg=""
run() { # run DESCRIPTION COMMAND...
    n=$((n + 1))
    log="$S/cmd$n.log"
    ( cd "$S" && HOME="$S/home" FTI_HOME= sh -c "$1" ) > "$log" 2>&1
    st=$?
    case "$1" in
        *fti-monitor*report*) [ $st -eq 3 ] && st=0 ;;
    esac
    if [ $st -eq 0 ]; then
        ok=$((ok + 1)); echo "  ok    $2"
    else
        failed=$((failed + 1)); echo "  FAIL  $2   (exit $st)"
        sed 's/^/        | /' "$log" | tail -15
    fi
}
stop_bg() {
    for p in $bg; do kill -TERM "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    bg=""
}

echo "check-readme: the commands of $README, in $S"
while IFS='	' read -r kind cmd; do
    case "$kind" in
    c)
        # the example's own build and run lines (its comment)
        cc_line=$(sed -n 's/^ \*   \(cc .*\)$/\1/p' "$S/twin_says.c" | head -1)
        run_line=$(sed -n 's/^ \*   \(\.\/twin_says .*\)$/\1/p' "$S/twin_says.c" | head -1 |
                   sed 's| *\*/$||')
        if [ -z "$cc_line" ] || [ -z "$run_line" ]; then
            failed=$((failed + 1)); echo "  FAIL  the C example has no cc / ./twin_says line in its comment"
            continue
        fi
        run "$cc_line" "$cc_line"
        id=$(cd "$S" && HOME="$S/home" "$B/fti-registry" --home twin list 2>/dev/null |
             awk '/production/ { print $1 }' | head -1)
        if [ -n "$id" ]; then
            run "$(echo "$run_line" | sed "s|<id>|$id|")" "$run_line  (<id> = $id, production)"
        else
            skipped=$((skipped + 1)); echo "  skip  $run_line  (no production model in twin yet)"
        fi
        ;;
    sh)
        case "$cmd" in
        "make demo"*|"make test"*|"bash .ci/run"*)
            if [ "${CHECK_README_ALL:-0}" = 1 ]; then
                run "cd '$ROOT' && FTI_HOME='$S/twin' $cmd" "$cmd"
            else
                skipped=$((skipped + 1)); echo "  skip  $cmd  (long: CHECK_README_ALL=1 runs it)"
                case "$cmd" in "make demo"*)
                    run "build/fti-twin --home twin update data/corpus/bierce/devils_dictionary.jsonl --minutes $MINUTES" \
                        "(the demo's workspace instead: fti-twin --home twin update ... --minutes $MINUTES)" ;;
                esac
            fi
            ;;
        *" &")
            n=$((n + 1)); ok=$((ok + 1))
            ( cd "$S" && HOME="$S/home" FTI_HOME= exec sh -c "exec ${cmd% &}" ) > "$S/bg$n.log" 2>&1 &
            bg="$bg $!"
            # a server: wait until it answers (5 s at most)
            i=0
            while [ $i -lt 50 ] && ! curl -s -o /dev/null 127.0.0.1:8080/health 2>/dev/null; do
                sleep 0.1; i=$((i + 1))
            done
            if kill -0 $! 2>/dev/null; then echo "  ok    $cmd  (running in the background)"
            else
                ok=$((ok - 1)); failed=$((failed + 1)); echo "  FAIL  $cmd  (exited)"
                sed 's/^/        | /' "$S/bg$n.log" | tail -5
            fi
            ;;
        *)
            real=$(printf "%s\n" "$cmd" | sed "s/--minutes [0-9.]*/--minutes $MINUTES/") # not echo: dash's turns \n into a newline
            if [ "$real" != "$cmd" ]; then run "$real" "$cmd  (budget shortened: --minutes $MINUTES)"
            else run "$cmd" "$cmd"; fi
            ;;
        esac
        ;;
    esac
done < "$S/commands.txt"
stop_bg
echo "check-readme: $ok ok, $failed failed, $skipped skipped"
[ $failed -eq 0 ]
