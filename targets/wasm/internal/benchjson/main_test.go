package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// benchOutput is go test -bench output with two runs of each benchmark
// (-count 2), a line benchfmt cannot read, and a benchmark log line.
const benchOutput = `restore-go-snapshot: reset
goos: linux
goarch: amd64
pkg: github.com/academemes/harness/targets/wasm
cpu: Test CPU
BenchmarkRoundTrip/go/cold-2   	100	5000000 ns/op	5000 p50-us	9000 p99-us	3000 start-p50-us
BenchmarkRoundTrip/go/cold-2   	100	5000000 ns/op	7000 p50-us	9000 p99-us	3000 start-p50-us
BenchmarkRoundTrip/go/snapshot-2	100	150000 ns/op	150 p50-us	300 p99-us	80 start-p50-us
BenchmarkRoundTrip/go/snapshot-2	200	150000 ns/op	250 p50-us	300 p99-us	120 start-p50-us
BenchmarkRoundTrip/go/warm-2   	100	100000 ns/op	100 p50-us	200 p99-us
BenchmarkRoundTrip/go/warm-2   	100	100000 ns/op	100 p50-us	200 p99-us
    bench_test.go:123: go-snapshot: restored by reset
BenchmarkRoundTrip/small/cold-2	100	60000 ns/op	60 p50-us	90 p99-us	20 start-p50-us
BenchmarkRoundTrip/small/snapshot-cow-2	100	50000 ns/op	50 p50-us	90 p99-us	5 start-p50-us
BenchmarkThroughput/go/snapshot-2	100	1000 ns/op	9000 req/s
BenchmarkThroughput/go/warm-2	100	1000 ns/op	10000 req/s
BenchmarkConcurrentMemory/go/cold-2	2	400000000 ns/op	128 pss-MB	128 rss-MB
BenchmarkConcurrentMemory/go/snapshot-2	2	60000000 ns/op	16 pss-MB	32 rss-MB
BenchmarkBroken/x-2	notanumber ns/op
PASS
`

func TestRun(t *testing.T) {
	var out, errOut bytes.Buffer
	now := func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }
	if rc := run(strings.NewReader(benchOutput), &out, &errOut, now); rc != 0 {
		t.Fatalf("run = %d, stderr %s", rc, errOut.String())
	}
	if !strings.Contains(errOut.String(), "stdin:19") {
		t.Errorf("stderr %q does not report the line it could not read", errOut.String())
	}
	var d doc
	if err := json.Unmarshal(out.Bytes(), &d); err != nil {
		t.Fatal(err)
	}
	if d.Generated != "2026-01-02T03:04:05Z" || d.Config["cpu"] != "Test CPU" || d.Config["restore-go-snapshot"] != "reset" {
		t.Errorf("generated %q, config %v", d.Generated, d.Config)
	}
	byName := map[string]result{}
	for _, r := range d.Results {
		byName[r.Name] = r
	}
	if len(byName) != len(d.Results) || len(d.Results) != 9 {
		t.Errorf("%d results (%d names), want 9, one per benchmark", len(d.Results), len(byName))
	}
	for _, c := range []struct {
		name, unit string
		want       float64
		runs       int
	}{
		{"RoundTrip/go/cold-2", "p50-us", 6000, 2},
		{"RoundTrip/go/snapshot-2", "start-p50-us", 100, 2},
		{"RoundTrip/small/cold-2", "p50-us", 60, 1},
		{"ConcurrentMemory/go/snapshot-2", "pss-MB", 16, 1},
	} {
		r := byName[c.name]
		if got := r.Metrics[c.unit]; got != c.want || r.Runs != c.runs {
			t.Errorf("%s %s = %v over %d runs, want the median %v over %d", c.name, c.unit, got, r.Runs, c.want, c.runs)
		}
	}
	if ns := byName["RoundTrip/go/cold-2"].Metrics["ns/op"]; ns != 5000000 {
		t.Errorf("ns/op = %v, want it as printed, 5000000", ns)
	}
	if it := byName["RoundTrip/go/snapshot-2"].Iters; it != 150 {
		t.Errorf("iterations %d, want the median 150", it)
	}
	for _, u := range []string{"p50-us", "start-p50-us", "req/s", "pss-MB", "rss-MB"} {
		if d.Units[u] == "" {
			t.Errorf("unit %s not explained", u)
		}
	}
	for _, m := range []string{"cold", "snapshot", "snapshot-cow", "warm"} {
		if d.Modes[m] == "" {
			t.Errorf("mode %s not explained", m)
		}
	}
	if _, ok := d.Modes["x"]; ok {
		t.Errorf("mode x explained: %v", d.Modes)
	}

	got := map[string]comparison{}
	for _, c := range d.Comparisons {
		got[c.Name] = c
	}
	for _, w := range []struct {
		name  string
		value float64
		goal  string
		met   *bool
	}{
		{"go/snapshot: p50 / warm p50", 2, "<= 1.3", ptr(false)},
		{"go/snapshot: cold p50 / p50", 30, ">= 10", ptr(true)},
		{"go/snapshot: req/s / warm req/s", 0.9, ">= 0.9", ptr(true)},
		{"go/snapshot: start-up p50, us", 100, "< 100", ptr(false)},
		{"go/snapshot: pss of 64 in flight / cold's", 0.125, "", nil},
		{"small/snapshot-cow: p50 / cold p50", 50.0 / 60, "<= 1", ptr(true)},
		{"small/snapshot-cow: cold p50 / p50", 60.0 / 50, "", nil},
	} {
		c, ok := got[w.name]
		switch {
		case !ok:
			t.Errorf("no comparison %q in %+v", w.name, d.Comparisons)
		case c.Value != w.value || c.Goal != w.goal || (c.Met == nil) != (w.met == nil) || c.Met != nil && *c.Met != *w.met:
			t.Errorf("%s = %v goal %q met %v, want %v goal %q met %v", w.name, c.Value, c.Goal, deref(c.Met), w.value, w.goal, deref(w.met))
		}
	}
	// Figures that are missing make no comparison: small has no warm run.
	if c, ok := got["small/snapshot-cow: p50 / warm p50"]; ok {
		t.Errorf("comparison with a missing figure: %+v", c)
	}
}

func TestRunBadInput(t *testing.T) {
	var out, errOut bytes.Buffer
	rc := run(strings.NewReader("not a benchmark\n"), &out, &errOut, time.Now)
	var d doc
	if rc != 0 || json.Unmarshal(out.Bytes(), &d) != nil || len(d.Results) != 0 || len(d.Comparisons) != 0 {
		t.Errorf("run = %d, %s: want an empty document", rc, out.String())
	}
}

func TestProcSuffix(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"RoundTrip/go/cold-2", "-2"},
		{"RoundTrip/go/snapshot-cow-16", "-16"},
		{"RoundTrip/go/snapshot-cow", ""},
		{"RoundTrip/go-2/cold", ""},
		{"Deploy/compile-", ""},
		{"Startup", ""},
	} {
		if got := procSuffix(c.in); got != c.want {
			t.Errorf("procSuffix(%q) = %q, want %q", c.in, got, c.want)
		}
		if modeOf("RoundTrip/go/snapshot-cow-2") != "snapshot-cow" {
			t.Errorf("modeOf: %q", modeOf("RoundTrip/go/snapshot-cow-2"))
		}
	}
}

func ptr(b bool) *bool { return &b }

func deref(b *bool) any {
	if b == nil {
		return nil
	}
	return *b
}
