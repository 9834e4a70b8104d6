#!/usr/bin/env bash
# Instructions per call of every row, counted by callgrind: each row runs at
# two lengths and the difference of the instruction counts is divided by the
# difference of the lengths, so process start-up and set-up cancel out.
# Needs valgrind (`apt-get install valgrind`). Prints a markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p resilience-bench --bench instructions >&2
bin=$(ls -t target/release/deps/instructions-* | grep -v '\.d$' | head -1)
short=${SHORT:-20000}
long=${LONG:-120000}
count() { # row calls -> total instructions (Ir)
    local out
    out=$(mktemp)
    valgrind --tool=callgrind --callgrind-out-file="$out" "$bin" "$1" "$2" >/dev/null 2>&1
    grep -E '^summary:|^totals:' "$out" | head -1 | awk '{print $2}'
    rm -f "$out"
}
"$bin" sizes
rows="bare closed-macro closed-api closed-failsafe closed-recloser open-macro open-api open-failsafe open-recloser failure-macro retry-macro resilient-macro dynamic-macro"
echo
echo "| row | instructions per call | over bare |"
echo "|---|---:|---:|"
bare=""
for row in $rows; do
    a=$(count "$row" "$short")
    b=$(count "$row" "$long")
    per=$(( (b - a) / (long - short) ))
    [ -z "$bare" ] && bare=$per
    echo "| $row | $per | $(( per - bare )) |"
done
