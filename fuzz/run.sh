#!/bin/sh
# Runs each fuzz target for a bounded time with one libFuzzer process, starting from the committed
# seeds (fuzz/seeds/<target>), the regression seeds (fuzz/regressions/<target>) and the corpus earlier runs grew (fuzz/corpus/<target>, ignored by
# git), then prints what each run did: executions, speed, coverage, corpus, findings.
#
#   FUZZ_SECONDS   time per target (default 60)
#   FUZZ_TARGETS   which targets (default: request_parser connection)
#   FUZZ_ARGS      more libFuzzer options
#
# Exits 1 if any target found a crash; the input is in fuzz/artifacts/<target>/.
set -u
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-60}
targets=${FUZZ_TARGETS:-request_parser connection}
found=0

for target in $targets; do
    mkdir -p "fuzz/corpus/$target" "fuzz/logs"
    log="fuzz/logs/$target.log"
    echo "== $target: ${seconds}s, one process"
    # No -jobs or -fork: libFuzzer then fuzzes in this one process, which is what a machine
    # shared with other builds can spare.
    # shellcheck disable=SC2086 # FUZZ_ARGS is a list of options
    cargo +nightly fuzz run "$target" \
        "fuzz/corpus/$target" "fuzz/seeds/$target" "fuzz/regressions/$target" -- \
        -max_total_time="$seconds" -timeout=10 -print_final_stats=1 \
        -dict=fuzz/http.dict ${FUZZ_ARGS:-} >"$log" 2>&1
    status=$?
    # The last status line (#N DONE, or the last before a crash) holds coverage and corpus size.
    grep -E '^#[0-9]+' "$log" | tail -n 1
    grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)' "$log"
    if [ "$status" -ne 0 ]; then
        found=1
        echo "finding (exit $status):"
        grep -E "panicked at|^assertion|^  left|^ right|Test unit written to|ERROR: libFuzzer" "$log" |
            head -n 8
        echo "full log: $log"
    else
        echo "findings: none"
    fi
done
exit "$found"
