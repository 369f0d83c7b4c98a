#!/bin/sh
# Builds every function's Wasm modules into its own directory:
#   <name>/<name>.wasm          Go, GOOS=wasip1 command (cold and prewarmed modes)
#   <name>/<name>.reactor.wasm  Go, c-shared reactor exporting purify_handle (warm mode)
#   <name>/<name>-small.wasm    no language runtime (WAT via wabt), where a .wat exists
# Usage: functions/build.sh [NAME...]   (from anywhere; default: every function)
# Needs: go; wat2wasm (Debian package wabt) only for the small builds, which
# are skipped with a note when it is missing (the committed .wasm stay).
set -eu
cd "$(dirname "$0")"
names="${*:-memes fibonacci factorial prime exponential}"
for n in $names; do
	GOOS=wasip1 GOARCH=wasm go build -trimpath -ldflags='-s -w' -o "$n/$n.wasm" "./$n"
	if [ -f internal/fnio/reactor_wasip1.go ]; then
		GOOS=wasip1 GOARCH=wasm go build -trimpath -ldflags='-s -w' -buildmode=c-shared -tags purify_reactor -o "$n/$n.reactor.wasm" "./$n"
	fi
	if [ -f "$n/$n-small.wat" ]; then
		if command -v wat2wasm >/dev/null 2>&1; then
			wat2wasm --enable-all=false -o "$n/$n-small.wasm" "$n/$n-small.wat"
		else
			echo "build.sh: wat2wasm not found (apt-get install wabt): keeping the committed $n/$n-small.wasm" >&2
		fi
	fi
done
