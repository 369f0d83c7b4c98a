#!/usr/bin/env bash
# Runs every fuzz target of the project for FUZZTIME each (go test -fuzz
# takes one target of one package at a time), then says how each went.
# Usage: scripts/fuzz.sh [FUZZTIME]      (default 60s; .ci/run gives 3s)
#
# A target that fails does not stop the others: the failing input is in
# the package's testdata/fuzz/, and the script exits 1 at the end.
#
# Minimization: before fuzzing goes on, every input that finds new
# coverage is minimized by a pass that is quadratic in its length, for up
# to a minute by default (golang/go#48820). With runs of a tenth of a
# millisecond and inputs of a kilobyte that is the whole minute, and the
# fuzzer stands still ("execs: 6 (0/sec)" for as long as it runs).
# FUZZMINIMIZETIME (default 2s) bounds it; a crasher found here can be
# minimized longer by rerunning its target with -fuzzminimizetime.
set -uo pipefail
cd "$(dirname "$0")/.."
fuzztime=${1:-60s}
mintime=${FUZZMINIMIZETIME:-2s}
go=${GO:-go}

# The packages of the module and their test files (go list leaves out
# testdata and other modules), then the Fuzz functions in them.
targets=()
while read -r pkg dir files; do
  [ -n "$files" ] || continue
  for fn in $(cd "$dir" && grep -ho '^func Fuzz[A-Za-z0-9_]*' $files | cut -d' ' -f2 | sort -u); do
    targets+=("$pkg $fn")
  done
done < <($go list -f '{{.ImportPath}} {{.Dir}}{{range .TestGoFiles}} {{.}}{{end}}{{range .XTestGoFiles}} {{.}}{{end}}' ./...)
if [ ${#targets[@]} -eq 0 ]; then
  echo "fuzz: no fuzz targets found" >&2
  exit 1
fi

summary=()
failed=0
for t in "${targets[@]}"; do
  read -r pkg fn <<<"$t"
  echo "== $pkg $fn ($fuzztime, minimization up to $mintime)"
  log=$(mktemp)
  $go test -run '^$' -fuzz "^${fn}\$" -fuzztime "$fuzztime" -fuzzminimizetime "$mintime" "$pkg" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  # The last progress line: time, runs and inputs found (its rate is
  # that of the moment it stopped, always 0/sec).
  last=$(grep -o 'elapsed: .*' "$log" | tail -n 1 | sed 's/ ([0-9]*\/sec)//')
  rm -f "$log"
  if [ "$rc" -ne 0 ]; then
    failed=1
    summary+=("FAIL $pkg $fn: ${last:-no progress line}")
  else
    summary+=("ok   $pkg $fn: ${last:-no progress line}")
  fi
done

echo "== fuzz summary ($fuzztime per target)"
printf '%s\n' "${summary[@]}"
exit $failed
