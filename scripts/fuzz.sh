#!/usr/bin/env bash
# Runs every fuzz target of the project for a while (go test -fuzz takes one
# target of one package at a time). Usage: scripts/fuzz.sh [FUZZTIME]
set -euo pipefail
cd "$(dirname "$0")/.."
time=${1:-60s}
grep -rl --include='*_test.go' '^func Fuzz' . | sort | while read -r file; do
  dir=$(dirname "$file")
  for fn in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$file" | cut -d' ' -f2); do
    echo "== $dir $fn ($time)"
    go test -run '^$' -fuzz "^${fn}\$" -fuzztime "$time" "./$dir"
  done
done
