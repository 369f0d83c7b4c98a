package report

import (
	"bytes"
	"encoding/json"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/academemes/harness/harness/internal/energy/synth"
	"github.com/academemes/harness/harness/internal/runstore"
)

// writeRun generates a synthetic run, lets change alter its run.json,
// writes it under dir/runs and analyses it as compare does.
func writeRun(t *testing.T, dir string, cfg synth.Config, change func(*runstore.Run)) *Analysed {
	t.Helper()
	run, _ := synth.Generate(cfg)
	if change != nil {
		change(run)
	}
	rd := filepath.Join(dir, "runs", run.Meta.ID)
	if err := synth.WriteDir(rd, run); err != nil {
		t.Fatal(err)
	}
	a, err := LoadAnalysed(rd)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// likeDemo is the demo with five repetitions and one offered rate for
// all targets, starting at hour h.
func likeDemo(seed uint64, h int) synth.Config {
	cfg := synth.Demo(seed)
	cfg.Reps = 5
	sameRate(&cfg)
	cfg.Start = time.Date(2026, 1, 2, h, 0, 0, 0, time.UTC)
	return cfg
}

// TestCompareRefusesApplesToOranges: two runs that differ in what was
// measured or how are "not comparable", with each difference named, and
// get neither ratio nor verdict; --force compares them and keeps the
// warning. Cases are the failures seen: a 2 req/s cold run against an
// interrupted 50 req/s warm run read as "20x more energy per request".
func TestCompareRefusesApplesToOranges(t *testing.T) {
	dir := t.TempDir()
	base := writeRun(t, dir, likeDemo(1, 3), nil)
	for i, tc := range []struct {
		name    string
		cfg     func(*synth.Config)
		run     func(*runstore.Run)
		opt     Options
		reasons []string // each must appear among the reasons
		meter   string   // only rows on this meter differ, when set
	}{
		{name: "offered rate", cfg: func(c *synth.Config) {
			for i := range c.Targets {
				c.Targets[i].Rate = 10
			}
		}, reasons: []string{"different offered rate: 4/s vs 10/s"}},
		{name: "function", run: func(r *runstore.Run) {
			for i := range r.Meta.Targets {
				r.Meta.Targets[i].Function = "fibonacci"
			}
		}, reasons: []string{"different function: memes vs fibonacci"}},
		{name: "interrupted", run: func(r *runstore.Run) {
			r.Meta.Status = runstore.StatusInterrupted
			for i := range r.Meta.Phases {
				if r.Meta.Phases[i].Rep == 5 && r.Meta.Phases[i].Name == runstore.PhaseLoad {
					r.Meta.Phases[i].Interrupted = true
				}
			}
		}, reasons: []string{"is interrupted, not complete", "was cut short in repetition 5"}},
		{name: "rate and interrupted together", cfg: func(c *synth.Config) {
			for i := range c.Targets {
				c.Targets[i].Rate = 50
			}
		}, run: func(r *runstore.Run) { r.Meta.Status = runstore.StatusInterrupted },
			reasons: []string{"different offered rate: 4/s vs 50/s", "is interrupted, not complete"}},
		{name: "closed loop against open", cfg: func(c *synth.Config) { c.Sequential = true },
			reasons: []string{"different load: open loop (open) vs closed loop (one request at a time)"}},
		{name: "invalid", run: func(r *runstore.Run) {
			r.Meta.Validity = &runstore.Validity{Valid: false, Problems: []runstore.Problem{
				{Phase: "", Check: "busy-machine", Observed: 0.6, Limit: 0.05, Unit: "share", Message: "other processes used 60% of the CPU"}}}
		}, reasons: []string{"is invalid: whole run: other processes used 60% of the CPU"}},
		{name: "host", run: func(r *runstore.Run) { r.Meta.Host.Governor = "powersave" }, reasons: []string{"different hosts (governor (none) vs powersave)"}},
		{name: "meter", run: func(r *runstore.Run) { r.Meta.Meters[0].Driver = "rapl" }, reasons: []string{"meter rapl is a different device: synthetic vs rapl"}, meter: "rapl"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := likeDemo(2, 4+i)
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			other := writeRun(t, dir, cfg, tc.run)
			for _, force := range []bool{false, true} {
				opt := tc.opt
				opt.Force = force
				c := Compare("t", Pairs([]*Analysed{base, other}), opt)
				cross := 0
				for _, r := range c.Rows {
					if r.A.Run == r.B.Run {
						continue
					}
					if tc.meter != "" && r.Meter != tc.meter {
						if !r.Comparable {
							t.Errorf("%s on %q: not comparable: %q", r.Metric, r.Meter, r.Reasons)
						}
						continue
					}
					cross++
					all := strings.Join(r.Reasons, "; ")
					for _, want := range tc.reasons {
						if !strings.Contains(all, want) {
							t.Errorf("%s %s: reasons %q lack %q", r.Metric, r.A.Target, all, want)
						}
					}
					if r.Comparable {
						t.Errorf("%s %s: comparable", r.Metric, r.A.Target)
					}
					if !force {
						if r.Verdict != "" || !math.IsNaN(r.Ratio) || !math.IsNaN(r.P()) {
							t.Errorf("%s %s: verdict %q, ratio %v, p %v: want none", r.Metric, r.A.Target, r.Verdict, r.Ratio, r.P())
						}
						if !strings.HasPrefix(r.Text(), "not comparable: ") {
							t.Errorf("text %q", r.Text())
						}
					} else if !r.Forced || !strings.Contains(r.Text(), "[compared with --force although not comparable: ") {
						t.Errorf("forced: %v, text %q", r.Forced, r.Text())
					}
				}
				if cross == 0 {
					t.Fatal("no rows across the runs")
				}
			}
		})
	}
	t.Run("hosts compared on purpose", func(t *testing.T) {
		other := writeRun(t, dir, likeDemo(2, 20), func(r *runstore.Run) { r.Meta.Host.Hostname = "elsewhere" })
		for _, across := range []bool{false, true} {
			c := Compare("t", Pairs([]*Analysed{base, other}), Options{AcrossHosts: across})
			for _, r := range c.Rows {
				if r.A.Run != r.B.Run && r.Comparable != across {
					t.Errorf("--hosts %v: comparable %v, reasons %q", across, r.Comparable, r.Reasons)
				}
			}
		}
	})
}

// TestCompareNearZeroDenominator: a target whose requests cost nothing
// above idle, measured by noise-free meters, has a dynamic energy of
// floating-point residue; it gets no ratio and no verdict, and says why.
func TestCompareNearZeroDenominator(t *testing.T) {
	cfg := likeDemo(1, 3)
	cfg.DriftW = 0
	cfg.Meters[1].NoiseW = 0
	cfg.Targets[0].JPerRequest = 0
	a := writeRun(t, t.TempDir(), cfg, nil)
	c := Compare("t", Pairs([]*Analysed{a}), Options{})
	dyn := 0
	for _, r := range c.Rows {
		if r.Metric != "dynamic energy per request" {
			continue
		}
		dyn++
		if !r.Comparable {
			t.Fatalf("not comparable: %q", r.Reasons)
		}
		if !math.IsNaN(r.Ratio) || r.Verdict != "" || !strings.Contains(r.NoRatio, "wasm is indistinguishable from zero") || r.NoVerdict != r.NoRatio {
			t.Errorf("%s: wasm %v J: ratio %v, verdict %q, no ratio %q, no verdict %q", r.Meter, r.A.Values, r.Ratio, r.Verdict, r.NoRatio, r.NoVerdict)
		}
		var b bytes.Buffer
		if err := WriteComparisonJSON(&b, &Comparison{Rows: []Row{r}}, ""); err != nil {
			t.Fatal(err)
		}
		var got struct {
			Comparisons []struct {
				Ratio    *float64 `json:"ratio"`
				Interval []any    `json:"interval"`
				Verdict  *string  `json:"verdict"`
			} `json:"comparisons"`
		}
		if err := json.Unmarshal(b.Bytes(), &got); err != nil {
			t.Fatal(err)
		}
		if g := got.Comparisons[0]; g.Ratio != nil || g.Interval != nil || g.Verdict != nil {
			t.Errorf("JSON: ratio %v, interval %v, verdict %v: want null", g.Ratio, g.Interval, g.Verdict)
		}
	}
	if dyn == 0 {
		t.Fatal("no dynamic energy rows")
	}
}
