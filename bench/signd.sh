#!/usr/bin/env bash
# hpki-signd on its own (issue 3): signatures/s and p50/p99 at concurrency
# 1 and 4 against the in-process ceiling of the two partial
# exponentiations, measured in the same run by build/hpki-signd-bench.
# BENCH_DURATION (s, default 10) per concurrency.
set -euo pipefail
cd "$(dirname "$0")/.."
d=${BENCH_DURATION:-10}
for c in 1 4; do
    echo "-- hpki-signd, concurrency $c"
    perl t/sidecar/bench.pl -c "$c" -d "$d" -v
done
