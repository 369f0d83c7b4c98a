#!/bin/sh
# Builds every function's Wasm modules into its own directory:
#   <name>/<name>.wasm          Go, GOOS=wasip1 command (cold and prewarmed modes)
#   <name>/<name>.reactor.wasm  Go, c-shared reactor exporting purify_handle (warm mode)
#   <name>/<name>-small.wasm    no language runtime: freestanding C for WASI
#                               (clang + lld, no libc), from <name>/small/main.c
#   <name>/<name>-rust.wasm     Rust (std only) for wasm32-wasi, a command that
#                               also exports purify_handle, from <name>/rust/main.rs
# Usage: functions/build.sh [NAME...]   (from anywhere; default: every function)
# BUILDS="go small rust" (the default) selects the kinds of build.
# Needs: go; for the small builds clang and lld (Debian packages clang, lld);
# for the Rust builds Debian's rustc 1.63 with its wasm32-wasi standard
# library (packages rustc, libstd-rust-dev-wasm32): the committed modules
# come from that compiler, and another rustc would give other bytes. A
# missing toolchain is skipped with a note (the committed .wasm stay).
# RUSTC names another rustc 1.63 (default: /usr/bin/rustc, else rustc).
set -eu
cd "$(dirname "$0")"
names="${*:-memes fibonacci factorial prime exponential}"
builds="${BUILDS:-go small rust}"
want() { case " $builds " in *" $1 "*) return 0 ;; esac; return 1; }

# rust_ok says whether RUSTC is the compiler the committed Rust builds came
# from, with its wasm32-wasi standard library.
rust_ok() {
	if [ -z "${RUSTC:-}" ]; then
		if [ -x /usr/bin/rustc ]; then RUSTC=/usr/bin/rustc; else RUSTC=rustc; fi
	fi
	if ! command -v "$RUSTC" >/dev/null 2>&1; then
		rust_why="no rustc found"
		return 1
	fi
	version=$("$RUSTC" --version 2>/dev/null || true)
	case "$version" in
	"rustc 1.63."*) ;;
	*)
		rust_why="$RUSTC is '$version', not Debian's rustc 1.63"
		return 1
		;;
	esac
	if [ ! -d "$("$RUSTC" --print sysroot)/lib/rustlib/wasm32-wasi" ]; then
		rust_why="$RUSTC has no wasm32-wasi standard library"
		return 1
	fi
}
rust_why=""
if want rust && ! rust_ok; then
	echo "build.sh: $rust_why (apt-get install rustc libstd-rust-dev-wasm32): keeping the committed *-rust.wasm" >&2
	builds=$(echo " $builds " | sed 's/ rust / /')
fi

for n in $names; do
	if want go; then
		GOOS=wasip1 GOARCH=wasm go build -trimpath -buildvcs=false -ldflags='-s -w' -o "$n/$n.wasm" "./$n"
		if [ -f internal/fnio/reactor_wasip1.go ]; then
			GOOS=wasip1 GOARCH=wasm go build -trimpath -buildvcs=false -ldflags='-s -w' -buildmode=c-shared -tags purify_reactor -o "$n/$n.reactor.wasm" "./$n"
		fi
	fi
	if want small && [ -f "$n/small/main.c" ]; then
		if command -v clang >/dev/null 2>&1 && command -v wasm-ld >/dev/null 2>&1; then
			clang --target=wasm32-wasi -O2 -mbulk-memory -nostdlib -ffreestanding -Wall -Werror \
				-Wl,--no-entry -Wl,--strip-all -Wl,--export-dynamic -Wl,-z,stack-size=32768 \
				-o "$n/$n-small.wasm" "$n/small/main.c"
		else
			echo "build.sh: clang/wasm-ld not found (apt-get install clang lld): keeping the committed $n/$n-small.wasm" >&2
		fi
	fi
	if want rust && [ -f "$n/rust/main.rs" ]; then
		# A release build as `cargo build --release` makes it (opt-level 3),
		# plus: one codegen unit and LTO, so that the bytes do not depend on
		# how work was split; panic=abort (a panic traps, which the platform
		# answers as a fault); symbols stripped; source paths relative to
		# this directory. --export keeps purify_handle beside _start: Rust
		# 1.63 has no stable reactor model (see README.md, "Rust builds").
		"$RUSTC" --edition 2021 --crate-name "${n}_rust" --target wasm32-wasi \
			-C opt-level=3 -C codegen-units=1 -C lto -C panic=abort -C strip=symbols \
			-C debuginfo=0 -C link-arg=--export=purify_handle \
			--remap-path-prefix "$(pwd)=." -D warnings \
			-o "$n/$n-rust.wasm" "$n/rust/main.rs"
	fi
done
