# Make fragment for the functions; include it from the top-level Makefile:
#   include functions/functions.mk
# Targets: functions (build every .wasm), functions-check (rebuild and fail
# if a committed .wasm changed). build.sh skips, with a note, a kind of
# build whose toolchain is missing (clang/lld for the small builds, Debian's
# rustc 1.63 and libstd-rust-dev-wasm32 for the Rust builds).
FUNCTIONS_DIR := $(dir $(lastword $(MAKEFILE_LIST)))

.PHONY: functions functions-check
functions:
	$(FUNCTIONS_DIR)build.sh

functions-check: functions
	git diff --exit-code -- '$(FUNCTIONS_DIR)*.wasm' '$(FUNCTIONS_DIR)*/*.wasm'
