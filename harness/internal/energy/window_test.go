package energy

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/academemes/harness/harness/internal/energy/synth"
	"github.com/academemes/harness/harness/internal/runstore"
	"github.com/academemes/harness/targets"
)

// constantMeter is a meter reading 10 W every 100 ms for 10 s from t=0,
// as a counter or as power readings, with the precision given.
func constantMeter(counter bool, p runstore.Precision) *meterSeries {
	var samples []runstore.Sample
	for k := 0; k <= 100; k++ {
		s := runstore.Sample{Meter: "m", TNs: int64(k) * int64(100*time.Millisecond), Watts: math.NaN(), Joules: math.NaN()}
		if counter {
			s.Joules = float64(k)
		} else {
			s.Watts = 10
		}
		samples = append(samples, s)
	}
	var mm runstore.MeterMeta
	mm.Name, mm.Kind, mm.Precision = "m", runstore.MeterMeasured, p
	mm.Channels = []runstore.Channel{{Name: "all", InTotal: true}}
	return buildMeters([]runstore.MeterMeta{mm}, samples)[0]
}

// testWindow is [2 s, 8 s) with three requests of one second inside it.
func testWindow() window {
	sec := int64(time.Second)
	spans := []span{{3 * sec, 4 * sec}, {4 * sec, 5 * sec}, {6 * sec, 7 * sec}}
	return window{rep: 2, s: 2 * sec, e: 8 * sec, spans: spans, reqs: newRamp(spans), latMs: 1000}
}

func TestRepEnergy(t *testing.T) {
	tests := []struct {
		name    string
		counter bool
		p       runstore.Precision
		idleW   float64
		resJ    float64
		dynJ    float64 // NaN without idle
		below   bool
	}{
		{"counter", true, runstore.Precision{EnergyStepJ: 0.5, PowerStepW: 1}, 8, 0.5, 12, false},
		{"power readings", false, runstore.Precision{EnergyStepJ: 0.5, PowerStepW: 1}, 8, 6, 12, false},
		{"power steps coarser than the dynamic power", false, runstore.Precision{PowerStepW: 3}, 8, 18, 12, true},
		{"counter step coarser than the dynamic energy", true, runstore.Precision{EnergyStepJ: 3600}, 8, 3600, 12, true},
		{"no precision stated", false, runstore.Precision{}, 8, 0, 12, false},
		{"no idle baseline", true, runstore.Precision{EnergyStepJ: 3600}, math.NaN(), 3600, math.NaN(), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := repEnergy(constantMeter(tc.counter, tc.p), tc.idleW, testWindow())
			if r.Rep != 2 || !same(float64(r.TotalJ), 60) || !same(float64(r.Requests), 3) || !same(float64(r.JPerRequest), 20) {
				t.Errorf("rep %d: %v J over %v requests, %v J/request; want rep 2, 60 J, 3, 20", r.Rep, r.TotalJ, r.Requests, r.JPerRequest)
			}
			if !same(float64(r.DynamicJ), tc.dynJ) || !same(float64(r.DynamicJPerRequest), tc.dynJ/3) {
				t.Errorf("dynamic %v J, %v J/request; want %v and %v", r.DynamicJ, r.DynamicJPerRequest, tc.dynJ, tc.dynJ/3)
			}
			if !same(float64(r.ResolutionJ), tc.resJ) || r.BelowResolution != tc.below {
				t.Errorf("resolution %v J, below it %v; want %v J, %v", r.ResolutionJ, r.BelowResolution, tc.resJ, tc.below)
			}
			if r.Samples != 60 || r.Coverage != 1 {
				t.Errorf("%d samples, coverage %v; want 60 and 1", r.Samples, r.Coverage)
			}
		})
	}
}

func TestSubWindows(t *testing.T) {
	m := constantMeter(true, runstore.Precision{})
	v := subWindows(m, testWindow(), int64(2*time.Second))
	// [2,4): one request, [4,6): one, [6,8): one; 10 W throughout.
	if len(v.rate) != 3 || len(v.power) != 3 {
		t.Fatalf("sub-windows %+v, want three", v)
	}
	for i := range 3 {
		if !same(v.rate[i], 0.5) || !same(v.power[i], 10) {
			t.Errorf("sub-window %d: rate %v, power %v; want 0.5, 10", i, v.rate[i], v.power[i])
		}
	}
}

func TestMeasured(t *testing.T) {
	tests := []struct {
		phase string
		want  bool
	}{{"load", true}, {"load/n=10", true}, {"idle", false}, {"warmup", false}, {"cooldown", false}, {"loads", false}}
	for _, tc := range tests {
		if got := Measured(tc.phase); got != tc.want {
			t.Errorf("Measured(%q) = %v, want %v", tc.phase, got, tc.want)
		}
	}
}

// TestFewRepetitions: with fewer than three repetitions there is a value
// but no interval, and the summary says why; from three there is one.
func TestFewRepetitions(t *testing.T) {
	for _, reps := range []int{1, 2, 3} {
		cfg := truthConfig(5, synth.Meter{Name: "p", RateHz: 10, Watts: true, NoiseW: 0.5})
		cfg.Reps, cfg.Load, cfg.Idle = reps, 5*time.Second, 3*time.Second
		run, _ := synth.Generate(cfg)
		s, err := Analyze(run)
		if err != nil {
			t.Fatal(err)
		}
		p := s.Find("w", "load")
		e := p.Meter("p")
		for what, iv := range map[string]Interval{"total": e.JPerRequest, "dynamic": e.DynamicJPerRequest, "uWh": e.UWhPerRequest} {
			if !iv.Value.OK() || iv.N != reps {
				t.Errorf("%d reps, %s: value %v over %d, want a value over %d", reps, what, iv.Value, iv.N, reps)
			}
			hasInterval := iv.Lo.OK() && iv.Hi.OK()
			if want := reps >= 3; hasInterval != want {
				t.Errorf("%d reps, %s: interval [%v, %v], want one: %v", reps, what, iv.Lo, iv.Hi, want)
			}
			if reps < 3 && (!strings.Contains(iv.Reason, "fewer than 3 repetitions") || iv.Method != "none") {
				t.Errorf("%d reps, %s: reason %q, method %q", reps, what, iv.Reason, iv.Method)
			}
			if reps >= 3 && (iv.Reason != "" || !strings.HasPrefix(iv.Method, "t over 3 repetitions")) {
				t.Errorf("%d reps, %s: reason %q, method %q", reps, what, iv.Reason, iv.Method)
			}
		}
		if m := e.Marginal; m == nil || m.Lo.OK() != (reps >= 3) {
			t.Errorf("%d reps: marginal %+v, want an interval only from 3 repetitions", reps, m)
		}
		warned := strings.Contains(strings.Join(p.Warnings, "\n"), "fewer than 3: no interval")
		if warned != (reps < 3) {
			t.Errorf("%d reps: warnings %q", reps, p.Warnings)
		}
	}
}

// quantise rounds a meter's readings as a coarse device does: watts to
// the power step, the counter down to the energy step.
func quantise(run *runstore.Run, meter string, p runstore.Precision) {
	for i := range run.Samples {
		s := &run.Samples[i]
		if s.Meter != meter {
			continue
		}
		if p.PowerStepW > 0 && !math.IsNaN(s.Watts) {
			s.Watts = math.Round(s.Watts/p.PowerStepW) * p.PowerStepW
		}
		if p.EnergyStepJ > 0 && !math.IsNaN(s.Joules) {
			s.Joules = math.Floor(s.Joules/p.EnergyStepJ) * p.EnergyStepJ
		}
	}
	for i := range run.Meta.Meters {
		if run.Meta.Meters[i].Name == meter {
			run.Meta.Meters[i].Precision = p
		}
	}
}

// TestBelowResolution: a Gude-like meter (1 W and 1 Wh steps, 1 %) cannot
// resolve a few milliwatts of dynamic power, and the summary gives no
// number for it; a fine counter can.
func TestBelowResolution(t *testing.T) {
	gude := runstore.Precision{PowerStepW: 1, EnergyStepJ: 3600, RelError: 0.01, Source: "Gude 1105 datasheet"}
	rapl := runstore.Precision{EnergyStepJ: 15.3e-6, Source: "RAPL energy unit"}
	tests := []struct {
		name       string
		meter      synth.Meter
		p          runstore.Precision
		jPerReq    float64
		dynBelow   bool
		totalBelow bool
		resJ       func(windowS float64) float64
	}{
		{"power steps of 1 W, 2 mW dynamic", synth.Meter{Name: "g", RateHz: 2, Watts: true, NoiseW: 0.3}, gude, 0.0001, true, false, func(w float64) float64 { return w }},
		{"counter steps of 1 Wh", synth.Meter{Name: "g", RateHz: 2, Joules: true}, gude, 0.0001, true, true, func(float64) float64 { return 3600 }},
		{"power steps of 1 W, 10 W dynamic", synth.Meter{Name: "g", RateHz: 2, Watts: true, NoiseW: 0.3}, gude, 0.5, false, false, func(w float64) float64 { return w }},
		{"fine counter, 2 mW dynamic", synth.Meter{Name: "g", RateHz: 10, Joules: true}, rapl, 0.0001, false, false, func(float64) float64 { return 15.3e-6 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := truthConfig(11, tc.meter)
			cfg.Targets[0].Rate, cfg.Targets[0].JPerRequest, cfg.Targets[0].LatencyMs = 20, tc.jPerReq, 5
			cfg.Load, cfg.Idle, cfg.DriftW = 20*time.Second, 10*time.Second, 0
			run, truth := synth.Generate(cfg)
			quantise(run, "g", tc.p)
			s, err := Analyze(run)
			if err != nil {
				t.Fatal(err)
			}
			p := s.Find("w", "load")
			e := p.Meter("g")
			windowS := float64(e.WindowS) / float64(len(e.Reps))
			if want := tc.resJ(windowS); !same(float64(e.ResolutionJ), want) {
				t.Errorf("resolution %v J, want %v J", e.ResolutionJ, want)
			}
			check := func(what string, iv Interval, below bool) {
				if iv.BelowResolution != below {
					t.Errorf("%s: below resolution %v, want %v (%+v)", what, iv.BelowResolution, below, iv)
				}
				if below && (iv.Value.OK() || iv.Lo.OK() || iv.Hi.OK() || !strings.HasPrefix(iv.Reason, "below resolution")) {
					t.Errorf("%s: below resolution but %+v", what, iv)
				}
			}
			check("dynamic J/request", e.DynamicJPerRequest, tc.dynBelow)
			check("J/request", e.JPerRequest, tc.totalBelow)
			check("uWh/request", e.UWhPerRequest, tc.totalBelow)
			if tc.dynBelow {
				if e.PerRequest != nil && (!e.PerRequest.LimitedByMeter || !strings.Contains(e.PerRequest.Note, "below its resolution")) {
					t.Errorf("per-request distribution not labelled: %+v", e.PerRequest)
				}
				if !strings.Contains(strings.Join(p.Warnings, "\n"), "below the meter's resolution") {
					t.Errorf("no warning: %q", p.Warnings)
				}
				return
			}
			// Above resolution the interval holds the truth and is at least
			// as wide as the meter's limits.
			iv := e.DynamicJPerRequest
			if w := truth.JPerRequest["w"]; float64(iv.Lo) > w || w > float64(iv.Hi) {
				t.Errorf("interval [%v, %v] misses the truth %v", iv.Lo, iv.Hi, w)
			}
			minHalf := tc.resJ(windowS)/(float64(e.Requests)/float64(len(e.Reps))) + tc.p.RelError*math.Abs(float64(iv.Value))
			if half := float64(iv.Hi-iv.Lo) / 2; half < 0.99*minHalf {
				t.Errorf("half-width %v narrower than the meter's limits %v", half, minHalf)
			}
		})
	}
}

func TestDistributionLimits(t *testing.T) {
	tests := []struct {
		name      string
		rateHz    float64
		noiseW    float64
		latencyMs float64
		limited   bool
		negative  bool
	}{
		{"meter slower than requests", 4, 0, 2, true, false},
		{"meter faster than requests", 1000, 0, 50, false, false},
		{"noisy meter gives negative values", 1000, 10, 50, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := truthConfig(2, synth.Meter{Name: "p", RateHz: tc.rateHz, Watts: true, NoiseW: tc.noiseW})
			cfg.Reps, cfg.Load, cfg.Idle, cfg.DriftW = 3, 5*time.Second, 3*time.Second, 0
			cfg.Targets[0].Rate, cfg.Targets[0].LatencyMs, cfg.Targets[0].LatencyCV = 10, tc.latencyMs, 0.1
			run, _ := synth.Generate(cfg)
			s, err := Analyze(run)
			if err != nil {
				t.Fatal(err)
			}
			d := s.Find("w", "load").Meter("p").PerRequest
			if d == nil {
				t.Fatal("no per-request distribution")
			}
			if d.LimitedByMeter != tc.limited || strings.Contains(d.Note, "limited by the meter") != tc.limited {
				t.Errorf("limited by meter %v, note %q; want %v", d.LimitedByMeter, d.Note, tc.limited)
			}
			if !same(float64(d.SampleIntervalMs), 1000/tc.rateHz) || math.Abs(float64(d.TypicalLatencyMs)-tc.latencyMs) > 0.2*tc.latencyMs {
				t.Errorf("sample interval %v ms, typical latency %v ms; want %v and about %v", d.SampleIntervalMs, d.TypicalLatencyMs, 1000/tc.rateHz, tc.latencyMs)
			}
			if neg := d.P10 < 0; neg != tc.negative {
				t.Fatalf("p10 %v: the case does not give the negative values it is about", d.P10)
			}
			if tc.negative && !strings.Contains(d.Note, "negative") {
				t.Errorf("negative values without a word on why: note %q", d.Note)
			}
		})
	}
}

func TestValidityCopied(t *testing.T) {
	run, _ := synth.Generate(synth.Demo(1))
	run.Meta.Validity = &runstore.Validity{Valid: false, Problems: []runstore.Problem{{Phase: "wasm/load/2", Check: "foreign_cpu", Observed: 0.4, Limit: 0.1, Message: "other processes used 40% of the CPU"}}}
	s, err := Analyze(run)
	if err != nil {
		t.Fatal(err)
	}
	if s.Validity == nil || s.Validity.Valid || len(s.Validity.Problems) != 1 || s.Validity.Problems[0].Check != "foreign_cpu" {
		t.Errorf("summary validity %+v, want run.json's", s.Validity)
	}
}

// coldWarmConfig is one function served cold (costlier) and warm on one
// kind of platform, at the same rate.
func coldWarmConfig(reps int) synth.Config {
	cfg := truthConfig(4, synth.Meter{Name: "c", RateHz: 10, Joules: true})
	cfg.Reps, cfg.Load, cfg.Idle = reps, 10*time.Second, 5*time.Second
	cold := cfg.Targets[0]
	cold.Name, cold.Mode, cold.JPerRequest, cold.Rate = "wasm-cold", targets.Cold, 0.06, 50
	warm := cold
	warm.Name, warm.Mode, warm.JPerRequest = "wasm-warm", targets.Warm, 0.01
	cfg.Targets = []synth.Target{cold, warm}
	return cfg
}

func TestColdStartEnergy(t *testing.T) {
	tests := []struct {
		name     string
		reps     int
		change   func(*runstore.Run)
		pairs    int
		interval bool
		uwh      bool
		reason   string
		mode     string // the cold side's, where there is a pair
	}{
		{"cold and warm", 5, func(*runstore.Run) {}, 1, true, true, "", "cold"},
		// A snapshot pays a start on every request too: restoring the
		// instance, without initialising the runtime.
		{"snapshot and warm", 5, func(r *runstore.Run) { r.Meta.Targets[0].Mode = string(targets.Snapshot) }, 1, true, true, "", "snapshot"},
		{"prewarmed and warm", 5, func(r *runstore.Run) { r.Meta.Targets[0].Mode = string(targets.Prewarmed) }, 0, false, false, "", ""},
		{"different offered rates", 5, func(r *runstore.Run) {
			for i := range r.Meta.Phases {
				if r.Meta.Phases[i].Target == "wasm-warm" {
					for j := range r.Meta.Phases[i].Stages {
						r.Meta.Phases[i].Stages[j].Rate = 200
					}
				}
			}
		}, 1, true, false, "different offered rates", "cold"},
		{"two repetitions", 2, func(*runstore.Run) {}, 1, false, false, "fewer than 3 repetitions", "cold"},
		{"different functions", 5, func(r *runstore.Run) { r.Meta.Targets[1].Function = "echo" }, 0, false, false, "", ""},
		{"different kinds", 5, func(r *runstore.Run) { r.Meta.Targets[1].Kind = "docker-node" }, 0, false, false, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			run, truth := synth.Generate(coldWarmConfig(tc.reps))
			tc.change(run)
			s, err := Analyze(run)
			if err != nil {
				t.Fatal(err)
			}
			if len(s.ColdStarts) != tc.pairs {
				t.Fatalf("%d cold-start figures, want %d: %+v", len(s.ColdStarts), tc.pairs, s.ColdStarts)
			}
			if tc.pairs == 0 {
				return
			}
			cs := s.ColdStarts[0]
			if cs.Cold != "wasm-cold" || cs.Mode != tc.mode || cs.Warm != "wasm-warm" || cs.Phase != "load" || cs.Meter != "c" || cs.Function != "memes" || cs.Estimate {
				t.Errorf("pair %+v", cs)
			}
			want := truth.JPerRequest["wasm-cold"] - truth.JPerRequest["wasm-warm"]
			dyn := cs.DynamicJPerRequest
			if relErr(float64(dyn.Value), want) > 0.1 {
				t.Errorf("cold minus warm %v J/request, want about %v", dyn.Value, want)
			}
			if got := dyn.Lo.OK() && dyn.Hi.OK(); got != tc.interval {
				t.Errorf("dynamic interval [%v, %v], want one: %v (%s)", dyn.Lo, dyn.Hi, tc.interval, dyn.Reason)
			}
			if tc.interval && (float64(dyn.Lo) > want || want > float64(dyn.Hi) || !strings.HasPrefix(dyn.Method, "Welch t over 5 and 5 repetitions")) {
				t.Errorf("interval %+v misses %v", dyn, want)
			}
			uwh := cs.UWhPerRequest
			if got := uwh.Lo.OK() && uwh.Hi.OK(); got != tc.uwh {
				t.Errorf("uWh interval %+v, want one: %v", uwh, tc.uwh)
			}
			if tc.uwh && (float64(uwh.Lo) > UWh(want) || UWh(want) > float64(uwh.Hi)) {
				t.Errorf("uWh interval [%v, %v] misses %v uWh (same idle power on both sides)", uwh.Lo, uwh.Hi, UWh(want))
			}
			all := dyn.Reason + " " + uwh.Reason
			if !strings.Contains(all, tc.reason) || (tc.reason == "") != (strings.TrimSpace(all) == "") {
				t.Errorf("reasons %q, want %q", all, tc.reason)
			}
		})
	}
}
