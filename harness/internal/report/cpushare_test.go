package report

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/academemes/harness/harness/internal/energy"
	"github.com/academemes/harness/harness/internal/runstore"
)

// A run with cpu.csv gets, per meter, a table of each target and phase's
// dynamic energy split by CPU share, labelled as a model on top of the
// meter, in the page and in summary.json; a run without one gets none.
func TestCPUShareTable(t *testing.T) {
	// Steady CPU rates: every interval splits 0.3 : 0.05 : 0.2 : 0.1.
	rates := map[string]float64{"target": 0.3, "dockerd": 0.05, "harness": 0.2, "other": 0.1}
	cases := []struct {
		name    string
		withCPU bool
	}{{"with cpu.csv", true}, {"without", false}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			rd := demoRun(t, dir, 1, nil)
			run, err := runstore.Load(rd)
			if err != nil {
				t.Fatal(err)
			}
			if tc.withCPU {
				a, b := run.Meta.Phases[0].StartNs, run.Meta.Phases[len(run.Meta.Phases)-1].EndNs
				cw, err := runstore.CreateCPU(rd)
				if err != nil {
					t.Fatal(err)
				}
				for ts := a - 1e9; ts < b+2e9; ts += 1e9 {
					for _, g := range []string{"dockerd", "harness", "other", "target"} {
						cw.Add(runstore.CPU{TNs: ts, Group: g, CPUS: rates[g] * float64(ts-a+1e9) / 1e9})
					}
				}
				cw.Close()
			}
			res, err := Generate(rd, filepath.Join(dir, "reports"))
			if err != nil {
				t.Fatal(err)
			}
			html, _ := os.ReadFile(res.HTMLPath)
			page := string(html)
			data, _ := os.ReadFile(filepath.Join(rd, runstore.SummaryFile))
			var s energy.Summary
			if err := json.Unmarshal(data, &s); err != nil {
				t.Fatal(err)
			}
			if !tc.withCPU {
				if strings.Contains(page, "Attribution by CPU share") || strings.Contains(string(data), "cpu_shares") {
					t.Error("a run without cpu.csv shows an attribution")
				}
				return
			}
			for _, want := range []string{`id="cpu-share-table"`, "Attribution by CPU share (a model on top of", "<th>function/platform (the run&#39;s containers)</th>", "<th>container runtime (dockerd)</th>", "cpu.csv"} {
				if !strings.Contains(page, want) {
					t.Errorf("report lacks %q", want)
				}
			}
			if strings.Contains(stripSVGNS(page), "NaN") {
				t.Error("report shows NaN")
			}
			p := s.Find("docker-node", "load")
			if p == nil || len(p.Energy) == 0 || p.Energy[0].CPUShares == nil {
				t.Fatalf("summary: docker-node load has no cpu_shares")
			}
			sh := p.Energy[0].CPUShares
			if !strings.Contains(sh.Model, "model on top of "+p.Energy[0].Label) {
				t.Errorf("model %q does not name the meter %q", sh.Model, p.Energy[0].Label)
			}
			var dyn float64
			for _, g := range sh.Groups {
				want := rates[g.Group] / 0.65
				if math.Abs(float64(g.Share)-want) > 1e-6 || math.Abs(float64(g.CPUShare)-want) > 1e-6 {
					t.Errorf("%s: share %v (CPU %v), want %v", g.Group, g.Share, g.CPUShare, want)
				}
				dyn += float64(g.DynamicJ)
			}
			if d := float64(p.Energy[0].DynamicJ); math.Abs(dyn-d) > 1e-6*math.Abs(d) {
				t.Errorf("groups' dynamic energy adds to %v J, the phase's is %v J", dyn, d)
			}
		})
	}
}
