#!/usr/bin/env bash
# fuzz/run.sh FUZZ_DIR SECONDS TARGET...: runs each libFuzzer target for
# SECONDS on its seeds (fuzz/corpus/T), its regressions (fuzz/regressions/T,
# replayed first: they must all pass) and what earlier runs found
# (FUZZ_DIR/corpus/T).  A crash leaves FUZZ_DIR/artifacts/T/crash-* and
# fails the run; copy the file to fuzz/regressions/T/ when reporting it.
set -uo pipefail

dir=$1 seconds=$2
shift 2
cd "$(dirname "$0")/.."
jobs=${FUZZ_JOBS:-1}
failed=()

for t in "$@"; do
    bin=$dir/fuzz_$t
    len=$(awk -v t="$t" '$1 == t { print $2 }' "$dir/max_len")
    mkdir -p "$dir/corpus/$t" "$dir/artifacts/$t" "fuzz/corpus/$t"
    log=$dir/$t.log
    regress=()
    [ -d "fuzz/regressions/$t" ] && regress=("fuzz/regressions/$t")
    start=$(date +%s)

    # 1. the regressions, each input once: they must all pass
    if [ -n "$(ls -A "fuzz/regressions/$t" 2>/dev/null)" ]; then
        if ! "$bin" fuzz/regressions/"$t"/* > "$log.regress" 2>&1; then
            echo "fuzz: $t: a regression input fails again:"
            grep -A30 -m1 'ERROR: \|runtime error\|deadly signal' \
                "$log.regress"
            failed+=("$t")
            continue
        fi
    fi

    # 2. fuzz: new inputs go to the first corpus directory only
    dict=()
    [ -f "fuzz/dict/$t.dict" ] && dict=(-dict="fuzz/dict/$t.dict")
    "$bin" -max_total_time="$seconds" -max_len="${len:-4096}" -timeout=10 \
        -rss_limit_mb=2048 -print_final_stats=1 -jobs="$jobs" \
        -workers="$jobs" "${dict[@]}" \
        -artifact_prefix="$dir/artifacts/$t/" \
        "$dir/corpus/$t" "fuzz/corpus/$t" "${regress[@]}" > "$log" 2>&1
    rc=$?
    end=$(date +%s)
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" |
            awk '{ s += $2 } END { print s + 0 }')
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | awk '{ print $2 }')
    if [ $rc -ne 0 ]; then
        echo "fuzz: $t: FAILED after $((end - start)) s (exit $rc):"
        grep -A40 -m1 'ERROR: \|runtime error\|==ERROR\|deadly signal' "$log" |
            head -60
        ls "$dir/artifacts/$t/" 2>/dev/null | sed "s|^|  artifact: $dir/artifacts/$t/|"
        failed+=("$t")
    else
        printf 'fuzz: %-12s ok  %4d s  %9s runs  cov %s\n' "$t" \
            "$((end - start))" "$execs" "${cov:-?}"
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: FAILED: ${failed[*]} (logs in $dir/<target>.log)"
    exit 1
fi
