#!/usr/bin/env bash
# Runs the project's benchmarks and writes their figures:
#   OUT/bench.txt    go test -bench output (benchstat reads it)
#   OUT/bench.json   the same figures as JSON: one object per benchmark with
#                    every metric it reported (ns/op, B/op, allocs/op, custom)
# Usage: scripts/bench.sh OUT [PACKAGES...]   (BENCHTIME=1s by default)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-bench}
shift || true
pkgs=("$@")
[ ${#pkgs[@]} -gt 0 ] || pkgs=(./...)
mkdir -p "$out"
# -p 1: one package at a time; go test otherwise runs packages side by
# side, and one package's benchmarks would load the CPUs another measures.
go test -p 1 -run '^$' -bench . -benchmem -benchtime "${BENCHTIME:-1s}" -timeout 30m "${pkgs[@]}" | tee "$out/bench.txt"
awk '
  /^pkg: / { pkg = $2 }
  /^Benchmark/ {
    printf "%s{\"package\":\"%s\",\"name\":\"%s\",\"iterations\":%s", sep, pkg, $1, $2
    for (i = 3; i + 1 <= NF; i += 2) printf ",\"%s\":%s", $(i+1), $i
    printf "}"; sep = ",\n "
  }
  BEGIN { printf "[" } END { print "]" }
' "$out/bench.txt" > "$out/bench.json"
echo "figures: $out/bench.txt $out/bench.json"
