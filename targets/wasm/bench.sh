#!/bin/sh
# Runs Purify's benchmarks (targets/wasm/*bench_test.go) and writes the
# figures to a JSON file: every benchmark's metrics (the median of its runs),
# what each unit and mode means, and the ratios Purify's goals are stated in
# (internal/benchjson). The raw `go test -bench` text goes beside it (.txt),
# for benchstat. Usage: targets/wasm/bench.sh [OUT.json] [BENCHTIME] [COUNT]
# (default bench/purify.json, 1s, 1 run; on a shared machine take 3 or more
# runs, whose medians the JSON holds). Run from anywhere.
set -eu
cd "$(dirname "$0")/../.."
out="${1:-bench/purify.json}"
benchtime="${2:-1s}"
count="${3:-1}"
mkdir -p "$(dirname "$out")"
txt="${out%.json}.txt"
go test -run '^$' -bench . -benchtime="$benchtime" -count="$count" -timeout 60m ./targets/wasm/ | tee "$txt"
go run ./targets/wasm/internal/benchjson < "$txt" > "$out"
echo "bench.sh: wrote $out and $txt" >&2
