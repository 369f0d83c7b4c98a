#!/bin/sh
# Runs Purify's benchmarks (targets/wasm/bench_test.go) and writes the figures
# to a JSON file; the raw `go test -bench` text goes beside it (.txt), for
# benchstat. Usage: targets/wasm/bench.sh [OUT.json] [BENCHTIME]
# (default bench/purify.json, 1s). Run from anywhere.
set -eu
cd "$(dirname "$0")/../.."
out="${1:-bench/purify.json}"
benchtime="${2:-1s}"
mkdir -p "$(dirname "$out")"
txt="${out%.json}.txt"
go test -run '^$' -bench . -benchtime="$benchtime" -count=1 ./targets/wasm/ | tee "$txt"
go run ./targets/wasm/internal/benchjson < "$txt" > "$out"
echo "bench.sh: wrote $out and $txt" >&2
