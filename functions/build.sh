#!/bin/sh
# Builds every function's Wasm modules into its own directory:
#   <name>/<name>.wasm          Go, GOOS=wasip1 command (cold and prewarmed modes)
#   <name>/<name>.reactor.wasm  Go, c-shared reactor exporting purify_handle (warm mode)
#   <name>/<name>-small.wasm    no language runtime: freestanding C for WASI
#                               (clang + lld, no libc), from <name>/small/main.c
# Usage: functions/build.sh [NAME...]   (from anywhere; default: every function)
# Needs: go; for the small builds clang and lld (Debian packages clang, lld),
# skipped with a note when missing (the committed .wasm stay).
set -eu
cd "$(dirname "$0")"
names="${*:-memes fibonacci factorial prime exponential}"
for n in $names; do
	GOOS=wasip1 GOARCH=wasm go build -trimpath -buildvcs=false -ldflags='-s -w' -o "$n/$n.wasm" "./$n"
	if [ -f internal/fnio/reactor_wasip1.go ]; then
		GOOS=wasip1 GOARCH=wasm go build -trimpath -buildvcs=false -ldflags='-s -w' -buildmode=c-shared -tags purify_reactor -o "$n/$n.reactor.wasm" "./$n"
	fi
	if [ -f "$n/small/main.c" ]; then
		if command -v clang >/dev/null 2>&1 && command -v wasm-ld >/dev/null 2>&1; then
			clang --target=wasm32-wasi -O2 -mbulk-memory -nostdlib -ffreestanding -Wall -Werror \
				-Wl,--no-entry -Wl,--strip-all -Wl,--export-dynamic -Wl,-z,stack-size=32768 \
				-o "$n/$n-small.wasm" "$n/small/main.c"
		else
			echo "build.sh: clang/wasm-ld not found (apt-get install clang lld): keeping the committed $n/$n-small.wasm" >&2
		fi
	fi
done
