#!/usr/bin/env bash
# Builds the libFuzzer targets (the fuzz preset), writes their seed corpora,
# and runs each target for SECONDS (default 60) from its corpus, one after the
# other. Prints each target's executions and final coverage; exits non-zero
# when any target crashed, leaked, timed out or ran out of memory, and names
# the reproducer it left under build/fuzz/findings/<target>/.
# docs/fuzzing.md says how to run one for hours.
#
#   scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
build=build/fuzz

cmake --preset fuzz >/dev/null
cmake --build --preset fuzz

rm -rf "$build/seeds"
"$build/fuzz/qtensor_make_seeds" "$build/seeds"

# target:dictionary
targets=(gguf_reader:gguf safetensors:safetensors safetensors_index:safetensors_index config_json:config_json
         model:gguf tokenizer:tokenizer)
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
failed=()
summary=()
for entry in "${targets[@]}"; do
    name=${entry%%:*}
    dict=fuzz/${entry##*:}.dict
    corpus=$build/corpus/$name
    findings=$build/findings/$name
    log=$build/logs/$name.log
    mkdir -p "$corpus" "$findings" "$(dirname "$log")"
    # The corpus grows from run to run; the seeds are copied in afresh.
    cp "$build/seeds/$name"/* "$corpus"/
    # Room for the largest seed to grow a little; at least libFuzzer's 4096.
    largest=$(find "$build/seeds/$name" -type f -printf '%s\n' | sort -n | tail -1)
    max_len=$(( largest + largest / 4 > 4096 ? largest + largest / 4 : 4096 ))
    before=$(find "$findings" -type f | sort)
    echo "== $name: ${seconds}s, max_len $max_len, corpus $(find "$corpus" -type f | wc -l) files"
    rc=0
    "$build/fuzz/${name}_fuzz" "$corpus" -dict="$dict" -max_len="$max_len" -max_total_time="$seconds" \
        -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=1024 -print_final_stats=1 \
        -artifact_prefix="$findings/" >"$log" 2>&1 || rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    [ -n "$execs" ] || execs=$(grep -Eo '^#[0-9]+' "$log" | tail -1 | tr -d '#' || true)
    cov=$(grep -Eo 'cov: [0-9]+ ft: [0-9]+ corp: [^ ]+' "$log" | tail -1 || true)
    line="$name: ${execs:-?} executions, ${cov:-no coverage line}, exit $rc"
    summary+=("$line")
    echo "$line"
    if [ "$rc" -ne 0 ]; then
        failed+=("$name")
        grep -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error|ALARM|MS: )' "$log" | head -5 || true
        comm -13 <(echo "$before") <(find "$findings" -type f | sort) | sed 's/^/  reproducer: /'
        echo "  log: $log"
    fi
done

echo "== summary (logs in $build/logs)"
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -ne 0 ]; then
    echo "fuzzing found problems in: ${failed[*]}"
    exit 1
fi
