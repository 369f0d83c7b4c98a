// Command benchjson turns `go test -bench` output on stdin into JSON on
// stdout: one object per benchmark with its name, iterations and every
// reported metric by unit (ns/op, B/op, allocs/op, p50-us, req/s, ...),
// plus the configuration lines (goos, cpu, ...). Used by bench.sh.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"golang.org/x/perf/benchfmt"
)

type result struct {
	Name    string             `json:"name"`
	Iters   int                `json:"iterations"`
	Metrics map[string]float64 `json:"metrics"`
}

type doc struct {
	Generated string            `json:"generated"`
	Config    map[string]string `json:"config"`
	Results   []result          `json:"results"`
}

func main() {
	d := doc{Generated: time.Now().UTC().Format(time.RFC3339), Config: map[string]string{}}
	r := benchfmt.NewReader(os.Stdin, "stdin")
	for r.Scan() {
		switch rec := r.Result().(type) {
		case *benchfmt.Result:
			for _, c := range rec.Config {
				d.Config[c.Key] = string(c.Value)
			}
			res := result{Name: strings.TrimPrefix(string(rec.Name.Full()), "Benchmark"), Iters: rec.Iters, Metrics: map[string]float64{}}
			for _, v := range rec.Values {
				res.Metrics[v.Unit] = v.Value
			}
			d.Results = append(d.Results, res)
		case *benchfmt.SyntaxError:
			fmt.Fprintln(os.Stderr, "benchjson:", rec)
		}
	}
	if err := r.Err(); err != nil {
		fmt.Fprintln(os.Stderr, "benchjson:", err)
		os.Exit(1)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(d); err != nil {
		fmt.Fprintln(os.Stderr, "benchjson:", err)
		os.Exit(1)
	}
}
