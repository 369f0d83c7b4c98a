package report

import (
	"bytes"
	"html/template"
	"strings"
	"testing"

	"github.com/academemes/harness/harness/internal/energy"
	"github.com/academemes/harness/harness/internal/energy/synth"
	"github.com/academemes/harness/targets"
)

// TestWasmModesAndStartUpRatios: where a run has a Wasm target that starts
// per request, cold or from a snapshot, the report and the console say
// what the two modes mean, and each start-up ratio names the Wasm target
// it divides by with its mode; where it has none, neither says anything.
func TestWasmModesAndStartUpRatios(t *testing.T) {
	tests := []struct {
		name   string
		change func(*synth.Config)
		note   bool
		ratios []string // "wasm target (mode)" of each ratio's denominator
	}{
		{"cold wasm", nil, true, []string{"wasm (cold)"}},
		{"snapshot wasm", func(c *synth.Config) { c.Targets[0].Mode = targets.Snapshot }, true, []string{"wasm (snapshot)"}},
		{"cold and snapshot wasm", func(c *synth.Config) {
			snap := c.Targets[0]
			snap.Name, snap.Mode, snap.StartUpMs = "wasm-snapshot", targets.Snapshot, 0.25
			c.Targets = append(c.Targets, snap)
		}, true, []string{"wasm (cold)", "wasm-snapshot (snapshot)"}},
		{"warm wasm", func(c *synth.Config) { c.Targets[0].Mode = targets.Warm }, false, nil},
		{"prewarmed wasm", func(c *synth.Config) { c.Targets[0].Mode = targets.Prewarmed }, false, nil},
		{"no wasm", func(c *synth.Config) { c.Targets = c.Targets[1:] }, false, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := synth.Demo(1)
			if tc.change != nil {
				tc.change(&cfg)
			}
			run, _ := synth.Generate(cfg)
			dir := t.TempDir()
			run.Dir = dir
			sum, det, err := energy.AnalyzeDetail(run, energy.DefaultOptions())
			if err != nil {
				t.Fatal(err)
			}
			html, err := RenderRun(run, sum, det, dir)
			if err != nil {
				t.Fatal(err)
			}
			page := string(html)
			var b bytes.Buffer
			PrintSummary(&b, sum)
			console := b.String()

			inPage := strings.Contains(page, `<p class="sub" id="wasm-modes">Wasm modes: `+template.HTMLEscapeString(WasmModes)+`</p>`)
			inConsole := strings.Contains(console, "Wasm modes: "+WasmModes+"\n")
			if inPage != tc.note || inConsole != tc.note {
				t.Errorf("the Wasm modes explained in the page: %v, on the console: %v; want %v\n%s", inPage, inConsole, tc.note, console)
			}
			if got := strings.Count(console, "Start-up ratio of "); got != len(tc.ratios) {
				t.Errorf("%d start-up ratios on the console, want %d:\n%s", got, len(tc.ratios), console)
			}
			if (len(tc.ratios) > 0) != strings.Contains(page, `id="start-up-ratio-table"`) {
				t.Errorf("start-up ratio table shown: %v, want %v", !(len(tc.ratios) > 0), len(tc.ratios) > 0)
			}
			var rows []string
			if len(tc.ratios) > 0 {
				rows = rowsOf(t, page, "start-up-ratio-table")
			}
			if len(rows) != len(tc.ratios) {
				t.Fatalf("%d rows in the start-up ratio table, want %d", len(rows), len(tc.ratios))
			}
			for i, den := range tc.ratios {
				name, mode, _ := strings.Cut(strings.TrimSuffix(den, ")"), " (")
				line := "Start-up ratio of memes (load): docker-node (cold) / " + den + " = "
				if !strings.Contains(console, line) {
					t.Errorf("console lacks %q:\n%s", line, console)
				}
				if cell := "<td>" + name + " <small>" + mode + "</small></td>"; !strings.Contains(rows[i], cell) || !strings.Contains(rows[i], "docker-node <small>cold</small>") {
					t.Errorf("row %d %s: want docker-node (cold) over %s", i, rows[i], den)
				}
				if !strings.Contains(rows[i], "×") {
					t.Errorf("row %d has no ratio: %s", i, rows[i])
				}
			}
		})
	}
}

// TestColdStartModeShown: a cold-start energy figure names its cold
// side's mode, so that a snapshot target's is not read as a cold one's.
func TestColdStartModeShown(t *testing.T) {
	tests := []struct {
		name, mode, console, cell string
	}{
		{"snapshot", "snapshot", "Cold start of memes (wasm-snapshot, snapshot; load, rapl): ", "<td>wasm-snapshot <small>snapshot</small></td>"},
		{"cold", "cold", "Cold start of memes (wasm-snapshot, cold; load, rapl): ", "<td>wasm-snapshot <small>cold</small></td>"},
		{"a summary from before modes were recorded", "", "Cold start of memes (wasm-snapshot, cold; load, rapl): ", "<td>wasm-snapshot <small>cold</small></td>"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			run, _ := synth.Generate(synth.Demo(1))
			run.Dir = dir
			sum, det, err := energy.AnalyzeDetail(run, energy.DefaultOptions())
			if err != nil {
				t.Fatal(err)
			}
			sum.ColdStarts = []energy.ColdStartEnergy{{Function: "memes", Cold: "wasm-snapshot", Mode: tc.mode, Warm: "wasm-warm", Phase: "load", Meter: "rapl",
				DynamicJPerRequest: energy.Interval{Value: 0.01, Lo: 0.008, Hi: 0.012, N: 3}}}
			var b bytes.Buffer
			PrintSummary(&b, sum)
			if !strings.Contains(b.String(), tc.console) {
				t.Errorf("console lacks %q:\n%s", tc.console, b.String())
			}
			html, err := RenderRun(run, sum, det, dir)
			if err != nil {
				t.Fatal(err)
			}
			if rows := rowsOf(t, string(html), "cold-start-table"); len(rows) != 1 || !strings.Contains(rows[0], tc.cell) {
				t.Errorf("cold-start rows %q, want one with %q", rows, tc.cell)
			}
		})
	}
}
