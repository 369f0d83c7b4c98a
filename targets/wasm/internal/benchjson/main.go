// Command benchjson turns `go test -bench` output of Purify's benchmarks
// (targets/wasm/bench_test.go) on stdin into JSON on stdout: one object per
// benchmark with its name and every reported metric by unit (ns/op, B/op,
// allocs/op, p50-us, req/s, ...), the median of its runs where -count ran
// it more than once; the configuration lines (goos, cpu, ...); what each
// unit and mode means; and the comparisons Purify's goals are stated in
// (snapshot mode against warm and cold), each with its goal where one is
// set. Used by bench.sh.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"golang.org/x/perf/benchfmt"
)

func main() { os.Exit(run(os.Stdin, os.Stdout, os.Stderr, time.Now)) }

// result is one benchmark: the median of each metric over its runs.
type result struct {
	Name    string             `json:"name"`
	Iters   int                `json:"iterations"`
	Runs    int                `json:"runs"`
	Metrics map[string]float64 `json:"metrics"`
}

type doc struct {
	Generated   string            `json:"generated"`
	Config      map[string]string `json:"config"`
	Units       map[string]string `json:"units"`
	Modes       map[string]string `json:"modes"`
	Results     []result          `json:"results"`
	Comparisons []comparison      `json:"comparisons"`
}

// run reads benchmark output from in and writes the JSON to out; lines it
// cannot read are reported to errOut and skipped.
func run(in io.Reader, out, errOut io.Writer, now func() time.Time) int {
	d := doc{Generated: now().UTC().Format(time.RFC3339), Config: map[string]string{}, Units: map[string]string{}, Modes: map[string]string{}}
	runs := map[string][]*benchfmt.Result{}
	var order []string
	r := benchfmt.NewReader(in, "stdin")
	for r.Scan() {
		switch rec := r.Result().(type) {
		case *benchfmt.Result:
			for _, c := range rec.Config {
				d.Config[c.Key] = string(c.Value)
			}
			name := strings.TrimPrefix(string(rec.Name.Full()), "Benchmark")
			if runs[name] == nil {
				order = append(order, name)
			}
			runs[name] = append(runs[name], rec.Clone())
		case *benchfmt.SyntaxError:
			fmt.Fprintln(errOut, "benchjson:", rec)
		}
	}
	if err := r.Err(); err != nil {
		fmt.Fprintln(errOut, "benchjson:", err)
		return 1
	}
	for _, name := range order {
		res := summarise(name, runs[name])
		d.Results = append(d.Results, res)
		for unit := range res.Metrics {
			if s, ok := unitMeanings[unit]; ok {
				d.Units[unit] = s
			}
		}
		if mode := modeOf(name); modeMeanings[mode] != "" {
			d.Modes[mode] = modeMeanings[mode]
		}
	}
	d.Comparisons = compare(d.Results)
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	if err := enc.Encode(d); err != nil {
		fmt.Fprintln(errOut, "benchjson:", err)
		return 1
	}
	return 0
}

// summarise is the median of each metric (and of the iterations) over a
// benchmark's runs: on a shared machine one run can be disturbed, and the
// median is what a second run most likely gives again.
func summarise(name string, runs []*benchfmt.Result) result {
	res := result{Name: name, Runs: len(runs), Metrics: map[string]float64{}}
	iters := make([]float64, 0, len(runs))
	byUnit := map[string][]float64{}
	for _, r := range runs {
		iters = append(iters, float64(r.Iters))
		for _, v := range r.Values {
			// The units as the benchmark printed them (ns/op, pss-MB),
			// not as benchfmt tidies them (sec/op, pss-B).
			unit, value := v.Unit, v.Value
			if v.OrigUnit != "" {
				unit, value = v.OrigUnit, v.OrigValue
			}
			byUnit[unit] = append(byUnit[unit], value)
		}
	}
	res.Iters = int(median(iters))
	for unit, vs := range byUnit {
		res.Metrics[unit] = median(vs)
	}
	return res
}

// median of vs (the mean of the middle two for an even count).
func median(vs []float64) float64 {
	vs = slices.Clone(vs)
	slices.Sort(vs)
	n := len(vs)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return vs[n/2]
	}
	return (vs[n/2-1] + vs[n/2]) / 2
}

// modeOf is the mode part of a benchmark name "Bench/MODULE/MODE-PROCS"
// ("" for one not of that shape).
func modeOf(name string) string {
	parts := strings.Split(strings.TrimSuffix(name, procSuffix(name)), "/")
	if len(parts) != 3 {
		return ""
	}
	return parts[2]
}

// unitMeanings says what each unit of the benchmarks measures.
var unitMeanings = map[string]string{
	"ns/op":        "time per iteration of the benchmark (RoundTrip, Serve: one request; ConcurrentMemory: 64 requests held at once)",
	"B/op":         "Go heap bytes allocated per iteration, client and platform together (one process)",
	"allocs/op":    "Go heap allocations per iteration, client and platform together",
	"p50-us":       "median round trip of one request over loopback HTTP, one client, microseconds",
	"p99-us":       "99th percentile of that round trip, microseconds",
	"start-p50-us": "median start-up the platform reports per request (X-Start-Ns: making, restoring or resetting the instance, plus a command module's runtime start), microseconds",
	"req/s":        "requests per second with 8 concurrent clients over loopback HTTP",
	"rss-MB":       "growth of the process's resident memory while 64 requests are in flight at once, MiB; a page mapped by n instances counts n times",
	"pss-MB":       "growth of the process's proportional set size while 64 requests are in flight at once, MiB: each shared page counts once, what the 64 cost the machine",
}

// modeMeanings says what each mode in a benchmark's name runs.
var modeMeanings = map[string]string{
	"cold":              "a fresh instance per request, made on the request path",
	"prewarmed":         "a fresh instance per request, made ahead of time (a pool of 16)",
	"warm":              "one instance serves many requests through its purify_handle (Go: the reactor build)",
	"warm-trusted":      "warm with no_interrupt: what interruptibility costs",
	"cold-cached":       "cold with the response cache on; every request repeats one input, so all but the first are hits",
	"snapshot":          "snapshot mode, default restore: each request starts from the memory and globals taken after _initialize ran once at deploy, restored the cheapest way that works (a reset in place where allowed; the configuration line restore-MODULE-snapshot says which)",
	"snapshot-cow":      "snapshot mode, restore cow: a fresh instance whose memory maps the snapshot copy-on-write",
	"snapshot-segments": "snapshot mode, restore segments: a fresh instance of a module whose data segments are the snapshot",
	"snapshot-warmup":   "snapshot mode, default restore, of a snapshot taken after one warm-up request ({\"id\": 1})",
}

// comparison is a ratio of two figures (or one figure alone) that a goal
// of Purify's is stated in.
type comparison struct {
	Name  string  `json:"name"`
	Of    string  `json:"of"`
	Value float64 `json:"value"`
	Goal  string  `json:"goal,omitempty"`
	Met   *bool   `json:"met,omitempty"`
}

// goal is a bound on a comparison's value: "<=", ">=" or "<" bound.
type goal struct {
	op    string
	bound float64
}

func (g goal) met(v float64) bool {
	switch g.op {
	case "<=":
		return v <= g.bound
	case ">=":
		return v >= g.bound
	case "<":
		return v < g.bound
	}
	return false
}

// compare puts each snapshot mode of each module beside warm and cold mode
// as the goals say (bench_test.go): for Go memes, p50 at most 1.3x warm's
// and at least 10x below cold's, req/s at least 0.9x warm's, start-up
// under 100 us; for the small build, p50 no slower than cold's; and for
// both, the memory of 64 requests in flight against cold's (no goal).
func compare(results []result) []comparison {
	figure := map[string]map[string]float64{}
	var snapshots []string // MODULE/MODE of every snapshot mode, in order
	for _, r := range results {
		key := strings.TrimSuffix(r.Name, procSuffix(r.Name))
		figure[key] = r.Metrics
		if parts := strings.Split(key, "/"); len(parts) == 3 && parts[0] == "RoundTrip" && strings.HasPrefix(parts[2], "snapshot") {
			snapshots = append(snapshots, parts[1]+"/"+parts[2])
		}
	}
	var out []comparison
	add := func(name, num, den, unit string, g *goal) {
		n, ok := figure[num][unit]
		if !ok {
			return
		}
		c := comparison{Name: name, Of: num + " " + unit, Value: n}
		if den != "" {
			d, ok := figure[den][unit]
			if !ok || d == 0 {
				return
			}
			c.Of += " / " + den + " " + unit
			c.Value = n / d
		}
		if g != nil {
			c.Goal = fmt.Sprintf("%s %g", g.op, g.bound)
			met := g.met(c.Value)
			c.Met = &met
		}
		out = append(out, c)
	}
	for _, s := range snapshots {
		module, mode, _ := strings.Cut(s, "/")
		isGo := module == "go"
		ifGo := func(g goal) *goal {
			if isGo {
				return &g
			}
			return nil
		}
		at := func(bench, m string) string { return bench + "/" + module + "/" + m }
		add(s+": p50 / warm p50", at("RoundTrip", mode), at("RoundTrip", "warm"), "p50-us", ifGo(goal{"<=", 1.3}))
		add(s+": cold p50 / p50", at("RoundTrip", "cold"), at("RoundTrip", mode), "p50-us", ifGo(goal{">=", 10}))
		var noSlower *goal
		if module == "small" {
			noSlower = &goal{"<=", 1}
		}
		add(s+": p50 / cold p50", at("RoundTrip", mode), at("RoundTrip", "cold"), "p50-us", noSlower)
		add(s+": req/s / warm req/s", at("Throughput", mode), at("Throughput", "warm"), "req/s", ifGo(goal{">=", 0.9}))
		add(s+": start-up p50, us", at("RoundTrip", mode), "", "start-p50-us", ifGo(goal{"<", 100}))
		add(s+": pss of 64 in flight / cold's", at("ConcurrentMemory", mode), at("ConcurrentMemory", "cold"), "pss-MB", nil)
	}
	return out
}

// procSuffix is the "-PROCS" go test appends to a benchmark's name where
// GOMAXPROCS is not 1 ("" where there is none).
func procSuffix(name string) string {
	i := strings.LastIndexByte(name, '-')
	if i < 0 || i == len(name)-1 || strings.Trim(name[i+1:], "0123456789") != "" || strings.LastIndexByte(name, '/') > i {
		return ""
	}
	return name[i:]
}
