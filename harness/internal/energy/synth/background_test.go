package synth

import (
	"math"
	"testing"
	"time"

	"github.com/academemes/harness/harness/internal/runstore"
	"github.com/academemes/harness/targets"
)

func TestBursts(t *testing.T) {
	sec := int64(time.Second)
	bs := bursts{
		bg:     Background{MeanGap: time.Second, MeanBurst: time.Second, Cores: 2, WattsPerCore: 5},
		spans:  []burst{{1 * sec, 3 * sec}, {5 * sec, 6 * sec}},
		priorJ: []float64{0, 20},
	}
	tests := []struct {
		name string
		x    int64
		want float64
	}{
		{"before any", 0, 0},
		{"inside the first", 2 * sec, 10},
		{"between", 4 * sec, 20},
		{"inside the second", 5*sec + sec/2, 25},
		{"after all", 9 * sec, 30},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := bs.cumJ(tc.x); math.Abs(got-tc.want) > 1e-9 {
				t.Errorf("cumJ = %v J, want %v J", got, tc.want)
			}
		})
	}
	if got := bs.totalJ(); got != 30 {
		t.Errorf("totalJ = %v, want 30", got)
	}
	phases := []runstore.Phase{
		{Name: "idle", StartNs: 0, EndNs: 2 * sec},       // 1 s busy on 2 cores of 2: half the machine
		{Name: "load", StartNs: 3 * sec, EndNs: 5 * sec}, // quiet
		{Name: "load", StartNs: 5 * sec, EndNs: 9 * sec}, // 1 s of 4 busy: a quarter
	}
	bs.annotate(phases, 2)
	wantShare := []float64{0.5, 0, 0.25}
	for i, p := range phases {
		if p.Foreign == nil || math.Abs(p.Foreign.Share-wantShare[i]) > 1e-12 {
			t.Errorf("phase %d: foreign %+v, want share %v", i, p.Foreign, wantShare[i])
			continue
		}
		if (len(p.Foreign.Top) > 0) != (wantShare[i] > 0) || math.Abs(p.Foreign.CPUSeconds-wantShare[i]*2*float64(p.EndNs-p.StartNs)/1e9) > 1e-12 {
			t.Errorf("phase %d: foreign %+v", i, p.Foreign)
		}
	}
}

// TestBackgroundAddsBursts: a run with background is the same run with the
// bursts' energy added to every reading and their CPU time recorded per
// phase; without background nothing is recorded.
func TestBackgroundAddsBursts(t *testing.T) {
	cfg := Config{
		Seed: 3, Reps: 2, Idle: 5 * time.Second, Load: 10 * time.Second, IdleW: 20,
		Targets: []Target{{Name: "w", Kind: "wasm", Mode: targets.Cold, JPerRequest: 0.05, Rate: 20, LatencyMs: 5}},
		Meters:  []Meter{{Name: "c", RateHz: 10, Joules: true}},
	}
	quiet, quietTruth := Generate(cfg)
	cfg.Background = &Background{MeanGap: 5 * time.Second, MeanBurst: 3 * time.Second, BurstCV: 0.5, Cores: 1, WattsPerCore: 8}
	busy, busyTruth := Generate(cfg)
	bs := cfg.Background.bursts(cfg.Seed, quiet.Meta.Phases[0].StartNs, quiet.Meta.Phases[len(quiet.Meta.Phases)-1].EndNs)
	if len(bs.spans) == 0 {
		t.Fatal("no bursts in 30 s with a 5 s mean gap")
	}
	if len(busy.Requests) != len(quiet.Requests) || len(busy.Samples) != len(quiet.Samples) {
		t.Fatalf("background changed the requests or sample times: %d/%d requests, %d/%d samples", len(busy.Requests), len(quiet.Requests), len(busy.Samples), len(quiet.Samples))
	}
	for i := range busy.Samples {
		// The counter starts a second before the first phase, before any
		// burst: it holds every burst's energy up to the reading.
		b, q := busy.Samples[i], quiet.Samples[i]
		want := bs.cumJ(b.TNs)
		if b.TNs != q.TNs || math.Abs(b.Joules-q.Joules-want) > 1e-6 {
			t.Fatalf("sample %d at %d: %.6f J with bursts, %.6f J without; want a difference of %.6f J", i, b.TNs, b.Joules, q.Joules, want)
		}
	}
	if d := busyTruth.TotalJ - quietTruth.TotalJ; math.Abs(d-bs.totalJ()) > 1e-6 {
		t.Errorf("truth grew by %.6f J, the bursts hold %.6f J", d, bs.totalJ())
	}
	busyPhases := 0
	for i, p := range busy.Meta.Phases {
		if quiet.Meta.Phases[i].Foreign != nil {
			t.Fatalf("a run without background records foreign CPU: %+v", quiet.Meta.Phases[i].Foreign)
		}
		if p.Foreign == nil {
			t.Fatalf("phase %d: no foreign CPU recorded", i)
		}
		if p.Foreign.Share > 0 {
			busyPhases++
		}
	}
	if busyPhases == 0 {
		t.Error("no phase records the bursts' CPU")
	}
}
