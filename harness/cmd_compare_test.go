package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/academemes/harness/harness/internal/energy/synth"
	"github.com/academemes/harness/harness/internal/runstore"
)

// compareRun writes a synthetic run with five repetitions whose targets
// offer the same rate, as a shipped scenario's do, changed by change.
func compareRun(t *testing.T, runs string, seed uint64, start time.Time, change func(*synth.Config)) string {
	t.Helper()
	cfg := synth.Demo(seed)
	cfg.Start, cfg.Reps = start, 5
	for i := range cfg.Targets {
		cfg.Targets[i].Rate = 4
	}
	if change != nil {
		change(&cfg)
	}
	run, _ := synth.Generate(cfg)
	dir := filepath.Join(runs, run.Meta.ID)
	if err := synth.WriteDir(dir, run); err != nil {
		t.Fatal(err)
	}
	return dir
}

// brokenRun writes a run that failed before its first phase: run.json and
// nothing to analyse.
func brokenRun(t *testing.T, runs, id string) string {
	t.Helper()
	dir := filepath.Join(runs, id)
	w, err := runstore.Create(dir, []byte("name: coldstart\n"), runstore.Meta{ID: id, Scenario: "coldstart", Status: runstore.StatusFailed, Error: "target wasm did not start"})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestCmdCompare(t *testing.T) {
	tmp := t.TempDir()
	runs, reports := filepath.Join(tmp, "runs"), filepath.Join(tmp, "reports")
	first := compareRun(t, runs, 1, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), nil)
	compareRun(t, runs, 2, time.Date(2026, 1, 2, 5, 0, 0, 0, time.UTC), nil)
	// The newest directory failed before its first phase: skipped, named.
	broken := brokenRun(t, runs, "20260102-060000-coldstart")
	other := filepath.Join(tmp, "other")
	faster := compareRun(t, other, 3, time.Date(2026, 1, 3, 3, 0, 0, 0, time.UTC), func(c *synth.Config) {
		for i := range c.Targets {
			c.Targets[i].Rate = 10
		}
	})
	tests := []struct {
		name        string
		args        []string
		code        int
		out, errOut []string
		notOut      []string
	}{
		{"latest against previous, the broken newest skipped", []string{"compare", "--runs", runs, "--reports", reports}, exitOK,
			[]string{"less dynamic energy per request than docker-node", "20260102-030405-coldstart", "compare-20260102-030405-coldstart_vs_20260102-050000-coldstart.html", "skipped " + broken},
			[]string{"skipped " + broken}, nil},
		{"one run", []string{"compare", first, "--reports", reports}, exitOK, []string{"Mann-Whitney", "compare-20260102-030405-coldstart.html"}, nil, nil},
		{"different rate: not comparable, no verdict", []string{"compare", first, faster, "--reports", reports}, exitOK,
			[]string{"not comparable: wasm (20260102-030405-coldstart) vs wasm (20260103-030000-coldstart): different offered rate: 4/s vs 10/s", "--force compares them anyway"},
			nil, []string{"less dynamic energy per request than wasm", "more dynamic energy per request than wasm"}},
		{"different rate, forced", []string{"compare", first, faster, "--reports", reports, "--force"}, exitOK,
			[]string{"[compared with --force although not comparable: wasm (20260102-030405-coldstart) vs wasm (20260103-030000-coldstart): different offered rate: 4/s vs 10/s]"}, nil, nil},
		{"a broken run named: skipped", []string{"compare", broken, first, "--reports", reports}, exitOK, []string{"Mann-Whitney"}, []string{"skipped " + broken}, nil},
		{"only a broken run", []string{"compare", broken, "--reports", reports}, exitFail, nil, []string{"skipped " + broken, "nothing to compare"}, nil},
		{"no runs", []string{"compare", "--runs", filepath.Join(tmp, "none")}, exitFail, nil, nil, nil},
		{"help", []string{"compare", "--help"}, exitOK, nil, nil, nil},
		{"bad flag", []string{"compare", "--nope"}, exitUsage, nil, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := run(tc.args, &out, &errb); code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, out.String(), errb.String())
			}
			for _, w := range tc.out {
				if !strings.Contains(out.String(), w) {
					t.Errorf("stdout lacks %q:\n%s", w, out.String())
				}
			}
			for _, w := range tc.errOut {
				if !strings.Contains(errb.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, errb.String())
				}
			}
			for _, w := range tc.notOut {
				if strings.Contains(out.String(), w) {
					t.Errorf("stdout has %q:\n%s", w, out.String())
				}
			}
		})
	}
}

// TestCmdCompareJSON: --json prints only JSON on stdout, each comparison
// with its sides, metric, ratio, interval, p-value, verdict or null,
// whether it is comparable and why not.
func TestCmdCompareJSON(t *testing.T) {
	tmp := t.TempDir()
	runs, reports := filepath.Join(tmp, "runs"), filepath.Join(tmp, "reports")
	a := compareRun(t, runs, 1, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), nil)
	b := compareRun(t, runs, 2, time.Date(2026, 1, 2, 5, 0, 0, 0, time.UTC), func(c *synth.Config) {
		for i := range c.Targets {
			c.Targets[i].Rate = 10
		}
	})
	var out, errb bytes.Buffer
	if code := run([]string{"compare", a, b, "--json", "--reports", reports}, &out, &errb); code != exitOK {
		t.Fatalf("exit %d\n%s", code, errb.String())
	}
	var got struct {
		Runs        []map[string]any `json:"runs"`
		Report      string           `json:"report"`
		Comparisons []map[string]any `json:"comparisons"`
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, out.String())
	}
	if len(got.Runs) != 2 || len(got.Comparisons) == 0 {
		t.Fatalf("%d runs, %d comparisons", len(got.Runs), len(got.Comparisons))
	}
	if _, err := os.Stat(got.Report); err != nil {
		t.Errorf("report: %v", err)
	}
	var within, across int
	for _, c := range got.Comparisons {
		for _, k := range []string{"sides", "metric", "ratio", "interval", "p_value", "verdict", "comparable", "reasons"} {
			if _, ok := c[k]; !ok {
				t.Errorf("comparison lacks %q: %v", k, c)
			}
		}
		sides := c["sides"].([]any)
		if len(sides) != 2 {
			t.Fatalf("%d sides", len(sides))
		}
		if sides[0].(map[string]any)["run"] == sides[1].(map[string]any)["run"] {
			within++
			if c["comparable"] != true {
				t.Errorf("targets of one run not comparable: %v", c["reasons"])
			}
			continue
		}
		across++
		reasons := c["reasons"].([]any)
		if c["comparable"] != false || c["verdict"] != nil || c["ratio"] != nil || len(reasons) == 0 || !strings.Contains(reasons[0].(string), "different offered rate") {
			t.Errorf("runs at different rates: comparable %v, verdict %v, ratio %v, reasons %v", c["comparable"], c["verdict"], c["ratio"], reasons)
		}
	}
	if within == 0 || across == 0 {
		t.Errorf("%d comparisons within a run, %d across", within, across)
	}
}
