package energy

import (
	"strings"
	"testing"
	"time"

	"github.com/academemes/harness/harness/internal/energy/synth"
	"github.com/academemes/harness/harness/internal/runstore"
	"github.com/academemes/harness/targets"
)

// startUpConfig is the coldstart scenario in small: memes served by Purify
// cold (a 2 ms start: the language runtime initialised per request) and
// from a snapshot (0.5 ms), and by docker-node cold (300 ms), every
// request paying a start.
func startUpConfig(reps int) synth.Config {
	cfg := truthConfig(5, synth.Meter{Name: "c", RateHz: 10, Joules: true})
	cfg.Reps, cfg.Load, cfg.Idle = reps, 10*time.Second, 2*time.Second
	wasm := synth.Target{Name: "wasm", Kind: "wasm", Mode: targets.Cold, JPerRequest: 0.02, Rate: 20, LatencyMs: 3, LatencyCV: 0.2, ColdFraction: 1, StartUpMs: 2}
	snap := wasm
	snap.Name, snap.Mode, snap.StartUpMs = "wasm-snapshot", targets.Snapshot, 0.5
	docker := synth.Target{Name: "docker-node", Kind: "docker-node", Mode: targets.Cold, JPerRequest: 2, Rate: 4, LatencyMs: 350, LatencyCV: 0.1, ColdFraction: 1, StartUpMs: 300}
	cfg.Targets = []synth.Target{wasm, snap, docker}
	return cfg
}

func TestStartUpRatios(t *testing.T) {
	type want struct {
		wasm, mode string
		ratio      float64
	}
	tests := []struct {
		name     string
		reps     int
		cfg      func(*synth.Config) // before the run is made
		run      func(*runstore.Run) // after
		want     []want
		interval bool
		reason   string
	}{
		{"one ratio per wasm target, cold and snapshot", 5, nil, nil,
			[]want{{"wasm", "cold", 150}, {"wasm-snapshot", "snapshot", 600}}, true, ""},
		{"two repetitions: a ratio without an interval", 2, nil, nil,
			[]want{{"wasm", "cold", 150}, {"wasm-snapshot", "snapshot", 600}}, false, "2 repetition(s)"},
		{"warm and prewarmed wasm pay no start per request", 5, func(c *synth.Config) {
			c.Targets[0].Mode, c.Targets[1].Mode = targets.Warm, targets.Prewarmed
		}, nil, nil, false, ""},
		{"a warm docker-node pays no start per request", 5, func(c *synth.Config) {
			c.Targets[2].Mode = targets.Warm
		}, nil, nil, false, ""},
		{"no start-ups reported", 5, func(c *synth.Config) {
			c.Targets[2].ColdFraction = 0
		}, nil, nil, false, ""},
		{"another function", 5, nil, func(r *runstore.Run) {
			r.Meta.Targets[2].Function = "fibonacci"
		}, nil, false, ""},
		{"only the snapshot target serves the function", 5, nil, func(r *runstore.Run) {
			r.Meta.Targets[0].Function = "fibonacci"
		}, []want{{"wasm-snapshot", "snapshot", 600}}, true, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := startUpConfig(tc.reps)
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			run, _ := synth.Generate(cfg)
			if tc.run != nil {
				tc.run(run)
			}
			s, err := Analyze(run)
			if err != nil {
				t.Fatal(err)
			}
			if len(s.StartUpRatios) != len(tc.want) {
				t.Fatalf("%d start-up ratios, want %d: %+v", len(s.StartUpRatios), len(tc.want), s.StartUpRatios)
			}
			for i, w := range tc.want {
				r := s.StartUpRatios[i]
				if r.Function != "memes" || r.Phase != "load" || r.Target != "docker-node" || r.TargetKind != "docker-node" || r.TargetMode != "cold" ||
					r.Wasm != w.wasm || r.WasmMode != w.mode {
					t.Errorf("ratio %d: %+v, want docker-node (cold) over %s (%s) for memes in load", i, r, w.wasm, w.mode)
				}
				iv := r.Ratio
				if relErr(float64(iv.Value), w.ratio) > 0.1 {
					t.Errorf("%s: ratio %v, want about %v", w.wasm, iv.Value, w.ratio)
				}
				if got := iv.Lo.OK() && iv.Hi.OK(); got != tc.interval {
					t.Errorf("%s: interval [%v, %v], want one: %v (%s)", w.wasm, iv.Lo, iv.Hi, tc.interval, iv.Reason)
				}
				if tc.interval && (float64(iv.Lo) > w.ratio || w.ratio > float64(iv.Hi) || iv.N != tc.reps) {
					t.Errorf("%s: interval %+v misses %v or rests on other than %d repetitions", w.wasm, iv, w.ratio, tc.reps)
				}
				if !strings.Contains(iv.Reason, tc.reason) || (tc.reason == "") != (iv.Reason == "") {
					t.Errorf("%s: reason %q, want %q", w.wasm, iv.Reason, tc.reason)
				}
			}
		})
	}
}

func TestPairedRatio(t *testing.T) {
	opt := DefaultOptions()
	tests := []struct {
		name     string
		num, den map[int]float64
		value    float64
		n        int
		reason   string
	}{
		{"paired by repetition", map[int]float64{1: 100, 2: 200, 3: 400}, map[int]float64{1: 1, 2: 2, 3: 4}, 100, 3, ""},
		{"a repetition missing on one side", map[int]float64{1: 100, 2: 200, 3: 400, 4: 9}, map[int]float64{1: 1, 2: 2, 3: 4}, 100, 3, ""},
		{"a zero is no denominator", map[int]float64{1: 100, 2: 200, 3: 400}, map[int]float64{1: 1, 2: 0, 3: 4}, 100, 2, "no interval"},
		{"nothing paired", map[int]float64{1: 100}, map[int]float64{2: 1}, 0, 0, "no repetition has both sides positive"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			iv := PairedRatio(tc.num, tc.den, opt)
			if tc.n == 0 {
				if iv.Value.OK() || !strings.Contains(iv.Reason, tc.reason) {
					t.Errorf("%+v, want no value saying %q", iv, tc.reason)
				}
				return
			}
			if relErr(float64(iv.Value), tc.value) > 1e-9 || iv.N != tc.n || !strings.Contains(iv.Reason, tc.reason) {
				t.Errorf("%+v, want %v over %d repetitions, reason %q", iv, tc.value, tc.n, tc.reason)
			}
		})
	}
}
