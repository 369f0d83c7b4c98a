# The project's jobs. `make demo` builds everything and runs the main
# scenario; `make test` runs the whole suite (what .ci/run calls).
GO       ?= go
BIN      := bin/harness
VERSION  := $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.buildVersion=$(VERSION)
SCENARIO ?= scenarios/coldstart.yaml
FUZZTIME ?= 60s

.PHONY: all build demo test test-short check bench fuzz clean

# functions (rebuild every committed .wasm) and functions-check.
include functions/functions.mk

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./harness

demo: functions build
	./$(BIN) run $(SCENARIO)

# The whole suite, with the race detector. Tests that need Docker or
# Chromium skip with a reason where they are missing, and fail under CI=true.
test:
	$(GO) test -race -count=1 -timeout 20m ./...

test-short:
	$(GO) test -short -count=1 ./...

check:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: the files above need formatting"; exit 1; }
	$(GO) vet ./...
	$(GO) mod tidy
	@git diff --exit-code -- go.mod go.sum || { echo "go mod tidy changed go.mod/go.sum: commit the result"; exit 1; }
	@git diff --quiet || { echo "the tree differs from the last commit after the checks"; git diff --stat; exit 1; }

# Benchmarks; figures go to bench/ (bench.txt, bench.json, purify.json).
# BENCHTIME (default 1s) and BENCHCOUNT (runs of Purify's, default 1; take
# 3 or more on a shared machine) tune them: make bench BENCHCOUNT=3.
bench:
	@mkdir -p bench
	bash scripts/bench.sh bench
	bash targets/wasm/bench.sh bench/purify.json "$${BENCHTIME:-1s}" "$${BENCHCOUNT:-1}"

fuzz:
	bash scripts/fuzz.sh $(FUZZTIME)

clean:
	rm -rf bin
