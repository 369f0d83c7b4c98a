package energy

import (
	"bytes"
	"encoding/json"
	"flag"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/academemes/harness/harness/internal/energy/synth"
	"github.com/academemes/harness/harness/internal/runstore"
	"github.com/academemes/harness/targets"
)

var update = flag.Bool("update", false, "rewrite golden files")

// truthConfig is one target under steady open load, measured by meter m.
func truthConfig(seed uint64, m synth.Meter) synth.Config {
	return synth.Config{
		Seed: seed, Reps: 5,
		Idle: 10 * time.Second, Warmup: time.Second, Load: 30 * time.Second, Cooldown: time.Second,
		IdleW: 20, DriftW: 0.2,
		Targets: []synth.Target{{
			Name: "w", Kind: "wasm", Mode: targets.Cold, IdleExtraW: 0.3,
			JPerRequest: 0.05, EnergyCV: 0.2, Rate: 100, LatencyMs: 5, LatencyCV: 0.3,
		}},
		Meters: []synth.Meter{m},
	}
}

func relErr(got, want float64) float64 { return math.Abs(got-want) / math.Abs(want) }

func TestGroundTruth(t *testing.T) {
	tests := []struct {
		name  string
		meter synth.Meter
		tol   float64
	}{
		{"counter 10 Hz", synth.Meter{Name: "c", RateHz: 10, Joules: true}, 0.01},
		{"counter with nested channel", synth.Meter{Name: "c", RateHz: 10, Joules: true, Channels: 2, Nested: true}, 0.01},
		{"counter and power prefers counter", synth.Meter{Name: "c", RateHz: 10, Joules: true, Watts: true, NoiseW: 5}, 0.01},
		{"power 10 Hz with noise", synth.Meter{Name: "p", RateHz: 10, Watts: true, NoiseW: 0.5, JitterFrac: 0.1}, 0.02},
		{"power 10 Hz two channels", synth.Meter{Name: "p", RateHz: 10, Watts: true, NoiseW: 0.3, Channels: 2}, 0.02},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			run, truth := synth.Generate(truthConfig(7, tc.meter))
			s, err := Analyze(run)
			if err != nil {
				t.Fatal(err)
			}
			p := s.Find("w", "load")
			if p == nil {
				t.Fatal("no load phase for w")
			}
			e := p.Meter(tc.meter.Name)
			if e == nil {
				t.Fatalf("no energy on meter %s", tc.meter.Name)
			}
			want := truth.JPerRequest["w"]
			if got := float64(e.DynamicJPerRequest.Value); relErr(got, want) > tc.tol {
				t.Errorf("dynamic J/request = %.5f, want %.5f within %.0f%% (off by %.2f%%)", got, want, 100*tc.tol, 100*relErr(got, want))
			}
			if got, want := float64(s.Targets[0].Idle[0].W), truth.IdleW["w"]; relErr(got, want) > tc.tol {
				t.Errorf("idle = %.4f W, want %.4f W", got, want)
			}
			// Total per request is idle per request plus dynamic.
			if got, want := float64(e.TotalJ), float64(e.DynamicJ)+float64(e.IdleW)*float64(e.WindowS); relErr(got, want) > 1e-9 {
				t.Errorf("total %.6f J != dynamic + idle %.6f J", got, want)
			}
			if e.Marginal == nil || relErr(float64(e.Marginal.JPerRequest), want) > 0.1 {
				t.Errorf("marginal estimate %+v, want about %.4f", e.Marginal, want)
			}
		})
	}
}

// TestIntervalCoverage checks that the 95% intervals hold the true
// dynamic joules per request in about 95% of seeds.
func TestIntervalCoverage(t *testing.T) {
	tests := []struct {
		name   string
		reps   int
		lo, hi float64
	}{
		{"t over 5 repetitions", 5, 0.89, 0.995},
		{"t over 3 repetitions", 3, 0.89, 0.995},
	}
	const seeds = 200
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hit := 0
			for seed := range uint64(seeds) {
				cfg := truthConfig(seed, synth.Meter{Name: "p", RateHz: 10, Watts: true, NoiseW: 1})
				cfg.Reps, cfg.Idle, cfg.Load, cfg.Warmup, cfg.Cooldown = tc.reps, 5*time.Second, 6*time.Second, 0, 0
				cfg.Targets[0].EnergyCV = 0.6
				run, truth := synth.Generate(cfg)
				s, err := Analyze(run)
				if err != nil {
					t.Fatal(err)
				}
				iv := s.Find("w", "load").Meter("p").DynamicJPerRequest
				if w := truth.JPerRequest["w"]; float64(iv.Lo) <= w && w <= float64(iv.Hi) {
					hit++
				}
			}
			c := float64(hit) / seeds
			t.Logf("coverage %.3f over %d seeds", c, seeds)
			if c < tc.lo || c > tc.hi {
				t.Errorf("coverage %.3f, want within [%.2f, %.3f]", c, tc.lo, tc.hi)
			}
		})
	}
}

// TestAttributionAddsUp checks that attributed + unattributed + idle
// energy = total energy in every window, and that with requests always in
// flight nothing is left unattributed.
func TestAttributionAddsUp(t *testing.T) {
	tests := []struct {
		name       string
		rate       float64
		latencyMs  float64
		continuous bool
	}{
		{"sparse requests", 5, 20, false},
		{"overlapping requests", 400, 10, true},
		{"one at a time", 50, 15, false},
	}
	for _, tc := range tests {
		for seed := range uint64(5) {
			cfg := truthConfig(seed, synth.Meter{Name: "p", RateHz: 50, Watts: true, NoiseW: 0.5})
			cfg.Reps, cfg.Load = 2, 5*time.Second
			cfg.Targets[0].Rate, cfg.Targets[0].LatencyMs = tc.rate, tc.latencyMs
			run, _ := synth.Generate(cfg)
			s, d, err := AnalyzeDetail(run, DefaultOptions())
			if err != nil {
				t.Fatal(err)
			}
			e := s.Find("w", "load").Meter("p")
			pr := e.PerRequest
			sum := float64(pr.AttributedJ) + float64(pr.UnattributedJ) + float64(e.IdleW)*float64(e.WindowS)
			if relErr(sum, float64(e.TotalJ)) > 1e-9 {
				t.Errorf("%s seed %d: attributed %.6f + unattributed %.6f + idle = %.6f J, total %.6f J", tc.name, seed, pr.AttributedJ, pr.UnattributedJ, sum, e.TotalJ)
			}
			if tc.continuous && math.Abs(float64(pr.UnattributedJ)) > 1e-9*float64(e.TotalJ) {
				t.Errorf("%s seed %d: %.6f J unattributed under continuous load", tc.name, seed, pr.UnattributedJ)
			}
			if n := len(d.Groups[GroupKey{"w", "load", "p"}].PerRequestJ); n != pr.N || n == 0 {
				t.Errorf("%s: %d per-request values, summary says %d", tc.name, n, pr.N)
			}
		}
	}
}

func TestAttributeExact(t *testing.T) {
	// 10 W idle; a 1 J request alone over [1s,2s), then two requests
	// overlapping by half over [2s,4s): one interval grid point per second.
	sec := int64(time.Second)
	power := func(x int64) float64 { // cumulative energy
		s := float64(x) / 1e9
		e := 10 * s
		e += math.Max(0, math.Min(s, 2)-1) * 1 // request a: 1 W over [1,2)
		e += math.Max(0, math.Min(s, 4)-2) * 3 // b and c share 3 W over [2,4)
		return e
	}
	grid := []int64{0, sec, 2 * sec, 3 * sec, 4 * sec, 5 * sec}
	spans := []span{{sec, 2 * sec}, {2 * sec, 4 * sec}, {3 * sec, 4 * sec}}
	at := attribute(grid, power, 10, spans)
	// [2,3): only b in flight gets 3 J; [3,4): b and c share 3 J equally.
	want := []float64{1, 4.5, 1.5}
	for i := range want {
		if math.Abs(at.perRequest[i]-want[i]) > 1e-9 {
			t.Errorf("request %d: %.6f J, want %.6f J", i, at.perRequest[i], want[i])
		}
	}
	if math.Abs(at.attributed-7) > 1e-9 || math.Abs(at.unattributed) > 1e-9 {
		t.Errorf("attributed %.6f, unattributed %.6f; want 7 and 0", at.attributed, at.unattributed)
	}
}

// TestAttributeSpreadsTail: energy of an interval with no request in
// flight (a request's tail) is spread over the window's requests by their
// time in flight, so the per-request values add up to the dynamic energy.
func TestAttributeSpreadsTail(t *testing.T) {
	sec := int64(time.Second)
	energy := func(x int64) float64 {
		s := float64(x) / 1e9
		e := 10 * s
		e += math.Max(0, math.Min(s, 2)-1) * 1 // request a: 1 W over [1,2)
		e += math.Max(0, math.Min(s, 4)-2) * 3 // b and c share 3 W over [2,4)
		e += math.Max(0, math.Min(s, 5)-4) * 2 // 2 W after them, nothing in flight
		return e
	}
	grid := []int64{0, sec, 2 * sec, 3 * sec, 4 * sec, 5 * sec}
	spans := []span{{sec, 2 * sec}, {2 * sec, 4 * sec}, {3 * sec, 4 * sec}}
	at := attribute(grid, energy, 10, spans)
	// 2 J unattributed over 4 request-seconds: a 1 s, b 2 s, c 1 s.
	want := []float64{1 + 0.5, 4.5 + 1, 1.5 + 0.5}
	sum := 0.0
	for i := range want {
		sum += at.perRequest[i]
		if math.Abs(at.perRequest[i]-want[i]) > 1e-9 {
			t.Errorf("request %d: %.6f J, want %.6f J", i, at.perRequest[i], want[i])
		}
	}
	if math.Abs(at.attributed-7) > 1e-9 || math.Abs(at.unattributed-2) > 1e-9 || math.Abs(sum-9) > 1e-9 {
		t.Errorf("attributed %.6f, unattributed %.6f, per-request sum %.6f; want 7, 2 and 9 (the dynamic energy)", at.attributed, at.unattributed, sum)
	}
}

func TestWarnings(t *testing.T) {
	base := func() synth.Config {
		c := truthConfig(3, synth.Meter{Name: "m", RateHz: 10, Watts: true, NoiseW: 0.1})
		c.Reps, c.Load, c.Idle = 1, 5*time.Second, 3*time.Second
		return c
	}
	tests := []struct {
		name   string
		change func(*synth.Config, *runstore.Run)
		want   string
	}{
		{"model meter", func(c *synth.Config, r *runstore.Run) { r.Meta.Meters[0].Kind = runstore.MeterModel }, "is a model"},
		{"low coverage", func(c *synth.Config, r *runstore.Run) {
			p := loadPhase(r)
			var keep []runstore.Sample
			for _, s := range r.Samples {
				if s.TNs < p.StartNs+int64(time.Second) || s.TNs > p.EndNs-int64(time.Second) {
					keep = append(keep, s)
				}
			}
			r.Samples = keep
		}, "covers"},
		{"noisy idle", func(c *synth.Config, r *runstore.Run) {
			for i := range r.Samples {
				r.Samples[i].Watts += 0.7 * float64(i) // a steep drift

			}
		}, "idle power is noisy"},
		{"clock fit residual", func(c *synth.Config, r *runstore.Run) {
			r.Meta.Meters[0].Report = &runstore.MeterReport{ClockFit: &runstore.ClockFit{ResidualRMSNs: 5e6, ResidualMaxNs: 9e6, Points: 10}}
		}, "clock fit residual"},
		{"meter gap", func(c *synth.Config, r *runstore.Run) {
			p := loadPhase(r)
			r.Meta.Meters[0].Report = &runstore.MeterReport{Gaps: []runstore.Gap{{Start: time.Unix(0, p.StartNs+2e9), End: time.Unix(0, p.StartNs+3e9), Reason: "unplugged"}}}
		}, "gap of 1s"},
		{"one repetition", func(c *synth.Config, r *runstore.Run) {}, "1 repetition(s)"},
		{"interrupted run", func(c *synth.Config, r *runstore.Run) { r.Meta.Status = runstore.StatusInterrupted }, `status is "interrupted"`},
		{"failed requests", func(c *synth.Config, r *runstore.Run) {
			for i := range r.Requests {
				if i%10 == 0 {
					r.Requests[i].Status = 503
				}
			}
		}, "of requests failed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := base()
			run, _ := synth.Generate(c)
			tc.change(&c, run)
			s, err := Analyze(run)
			if err != nil {
				t.Fatal(err)
			}
			all := strings.Join(s.Warnings, "\n") + "\n" + strings.Join(s.Targets[0].Phases[0].Warnings, "\n")
			if !strings.Contains(all, tc.want) {
				t.Errorf("warnings lack %q:\n%s", tc.want, all)
			}
		})
	}
}

// TestWhereAndWhenWarnings: a remote meter's clock bound is weighed
// against the typical request, and a meter on another machine than a
// target's is named, each only when it applies.
func TestWhereAndWhenWarnings(t *testing.T) {
	medianNs := func(r *runstore.Run) float64 {
		var lat []float64
		for _, q := range r.Requests {
			if q.OK() {
				lat = append(lat, float64(q.LatencyNs))
			}
		}
		slices.Sort(lat)
		return lat[len(lat)/2]
	}
	bound := func(share float64) func(*runstore.Run) {
		return func(r *runstore.Run) {
			r.Meta.Meters[0].Report = &runstore.MeterReport{ClockFit: &runstore.ClockFit{BoundNs: share * medianNs(r), Points: 5}}
		}
	}
	hosts := func(meter, target string) func(*runstore.Run) {
		return func(r *runstore.Run) {
			r.Meta.Meters[0].Host = meter
			for i := range r.Meta.Targets {
				r.Meta.Targets[i].Host = target
			}
		}
	}
	tests := []struct {
		name   string
		change func(*runstore.Run)
		want   string // "" : neither warning
	}{
		{"bound a fifth of the median request", bound(0.2), "its sample times are known to ±"},
		{"bound a hundredth of it", bound(0.01), ""},
		{"meter here, target elsewhere", hosts("local", "pi.lan"), "meter m measures local, but target"},
		{"both on one machine", hosts("pi.lan", "pi.lan"), ""},
		{"an old run: no hosts", hosts("", ""), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := truthConfig(3, synth.Meter{Name: "m", RateHz: 10, Watts: true})
			c.Reps, c.Load, c.Idle = 1, 5*time.Second, 3*time.Second
			run, _ := synth.Generate(c)
			tc.change(run)
			s, err := Analyze(run)
			if err != nil {
				t.Fatal(err)
			}
			all := strings.Join(s.Warnings, "\n")
			if tc.want == "" {
				if strings.Contains(all, "sample times are known") || strings.Contains(all, "is served from") {
					t.Errorf("warnings:\n%s\nwant neither the clock bound nor the host", all)
				}
			} else if !strings.Contains(all, tc.want) {
				t.Errorf("warnings lack %q:\n%s", tc.want, all)
			}
		})
	}
}

func loadPhase(r *runstore.Run) runstore.Phase {
	for _, p := range r.Meta.Phases {
		if p.Name == runstore.PhaseLoad {
			return p
		}
	}
	panic("no load phase")
}

func TestAnalyzeErrors(t *testing.T) {
	tests := []struct {
		name string
		run  *runstore.Run
	}{
		{"nil run", nil},
		{"no phases", &runstore.Run{Meta: runstore.Meta{ID: "x"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Analyze(tc.run); err == nil {
				t.Fatal("no error")
			}
		})
	}
}

func TestNoSamples(t *testing.T) {
	run, _ := synth.Generate(synth.Demo(1))
	run.Samples = nil
	s, err := Analyze(run)
	if err != nil {
		t.Fatal(err)
	}
	if p := s.Find("wasm", "load"); p == nil || p.Requests == 0 || len(p.Energy) != 0 {
		t.Errorf("want requests and no energy, got %+v", p)
	}
	if _, err := json.Marshal(s); err != nil {
		t.Errorf("summary does not encode: %v", err)
	}
}

// TestSummaryGolden pins summary.json for the demo run; refresh with
// go test ./harness/internal/energy -run Golden -update.
func TestSummaryGolden(t *testing.T) {
	run, _ := synth.Generate(synth.Demo(1))
	s, err := Analyze(run)
	if err != nil {
		t.Fatal(err)
	}
	got, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", "summary.golden.json")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("summary.json differs from %s; run with -update if the change is intended\n%s", path, firstDiff(string(got), string(want)))
	}
	var back Summary
	if err := json.Unmarshal(got, &back); err != nil {
		t.Errorf("summary.json does not read back: %v", err)
	}
}

func firstDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < len(al) && i < len(bl); i++ {
		if al[i] != bl[i] {
			return "line " + itoa(i+1) + ":\n got: " + al[i] + "\nwant: " + bl[i]
		}
	}
	return "lengths differ"
}

func itoa(i int) string { return strings.TrimSpace(strings.Repeat(" ", 0) + jsonInt(i)) }

func jsonInt(i int) string { b, _ := json.Marshal(i); return string(b) }
