#!/usr/bin/env bash
# run.sh: runs each libFuzzer target for FUZZ_S seconds over its corpus
# (t/fuzz/corpus/TARGET, read-only) and a work corpus in build/fuzz/work;
# exit 1 when a target found a crash (build/fuzz/crash-TARGET-*).
set -u
cd "$(dirname "$0")/../.."

s=${FUZZ_S:-600}
rc=0
for f in "$@"; do
    name=$(basename "$f")
    work=build/fuzz/work/$name
    mkdir -p "$work" "t/fuzz/corpus/$name"
    echo "fuzz: $name for ${s}s"
    LSAN_OPTIONS=suppressions=t/fuzz/lsan.supp:${LSAN_OPTIONS:-} \
    "$f" -max_total_time="$s" -timeout=10 -rss_limit_mb=2048 \
        -max_len=65536 -print_final_stats=1 \
        -artifact_prefix="build/fuzz/crash-$name-" \
        "$work" "t/fuzz/corpus/$name" > "build/fuzz/$name.log" 2>&1
    r=$?
    grep -E '^stat::(number_of_executed_units|peak_rss_mb)' \
        "build/fuzz/$name.log" | tr '\n' ' '
    echo
    if [ $r -ne 0 ]; then
        echo "fuzz: $name FAILED (exit $r): see build/fuzz/$name.log"
        grep -E 'ERROR|SUMMARY|Test unit written' "build/fuzz/$name.log" \
            | head -5
        rc=1
    fi
done
exit $rc
