package synth

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/academemes/harness/harness/internal/runstore"
	"github.com/academemes/harness/meters"
	"github.com/academemes/harness/targets"
)

// fingerprint hashes everything Generate decides: metadata, phases,
// requests, samples (floats by their bits) and the truth. Fields are named
// one by one, so a field added to a runstore type does not change it.
func fingerprint(run *runstore.Run, truth Truth) string {
	h := sha256.New()
	p := func(format string, a ...any) { fmt.Fprintf(h, format+"\n", a...) }
	bits := func(x float64) uint64 { return math.Float64bits(x) }
	m := run.Meta
	p("meta %q %q %q %q %d %d %d %q %q %q %q", m.ID, m.Scenario, m.Description, m.Status, m.Started.UnixNano(), m.Ended.UnixNano(), m.Repeat, m.Load.Model, m.Load.Method, m.Load.Path, m.Order)
	for _, t := range m.Targets {
		p("target %q %q %q %q %q", t.Name, t.Kind, t.Mode, t.Function, t.URL)
	}
	for _, mm := range m.Meters {
		p("meter %q %q %q %q", mm.Name, mm.Kind, mm.Label, mm.Description)
		for _, c := range mm.Channels {
			p("channel %q %v", c.Name, c.InTotal)
		}
	}
	for _, ph := range m.Phases {
		p("phase %q %q %d %d %d", ph.Target, ph.Name, ph.Rep, ph.StartNs, ph.EndNs)
		for _, s := range ph.Stages {
			p("stage %x %d %d", bits(s.Rate), s.StartNs, s.EndNs)
		}
	}
	p("scenario %q", run.Scenario)
	for _, r := range run.Requests {
		p("req %q %q %d %d %d %d %d %d %d %v %d %q", r.Target, r.Phase, r.Rep, r.Seq, r.StartNs, r.LatencyNs, r.Status, r.BytesIn, r.BytesOut, r.Cold, r.StartUpNs, r.Error)
	}
	for _, s := range run.Samples {
		p("sample %q %d %d %x %x", s.Meter, s.Channel, s.TNs, bits(s.Watts), bits(s.Joules))
	}
	sortedFloats(h, "jpr", truth.JPerRequest)
	sortedFloats(h, "idle", truth.IdleW)
	p("total %x", bits(truth.TotalJ))
	return hex.EncodeToString(h.Sum(nil))
}

func sortedFloats(h hash.Hash, label string, m map[string]float64) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(h, "%s %q %x\n", label, k, math.Float64bits(m[k]))
	}
}

// goldenConfigs cover every branch of Generate: Poisson and sequential
// load, inputs, warm-up and cool-down or none, every meter feature.
func goldenConfigs() map[string]Config {
	wide := Demo(11)
	wide.Inputs = []string{"small", "large"}
	wide.Status = runstore.StatusInterrupted
	wide.Meters = append(wide.Meters,
		Meter{Name: "both", RateHz: 7, Watts: true, Joules: true, NoiseW: 0.2, Channels: 2, Nested: true, JitterFrac: 0.3},
		Meter{Name: "jitter", Kind: meters.Measured, RateHz: 25, Watts: true, NoiseW: 1, JitterFrac: 0.5})
	seq := Config{
		Seed: 5, Name: "seq", Reps: 2, Sequential: true, Pause: 20 * time.Millisecond,
		Idle: 2 * time.Second, Load: 3 * time.Second, IdleW: 15, DriftW: -0.4,
		Start: time.Date(2025, 6, 7, 8, 9, 10, 0, time.UTC), ID: "fixed-id",
		Targets: []Target{{Name: "a", Kind: "wasm", Mode: targets.Warm, IdleExtraW: 0.3, JPerRequest: 0.5, EnergyCV: 0.1, LatencyMs: 30, LatencyCV: 0.3, ColdFraction: 0.1, StartUpMs: 4, ErrorRate: 0.1}},
		Meters:  []Meter{{Name: "c", RateHz: 10, Joules: true, Channels: 3}},
	}
	return map[string]Config{"demo 1": Demo(1), "demo 2": Demo(2), "wide": wide, "sequential": seq, "zero": {}}
}

// golden are the fingerprints of goldenConfigs as Generate made them
// before it was split into pieces (commit "synth: golden fingerprints of
// Generate"); the pieces must give the same run bit for bit.
var golden = map[string]string{
	"demo 1":     "151b1bc18bfd34338deedb6ad3a68bc6cc8f59eeb3398b92893c0896aea382ae",
	"demo 2":     "ac50dfbf562d3d0d3f782340311456b564f32a943e1c1a96465a7148989895e6",
	"sequential": "ca0964a517d40f175f3166fa1d4c31ad853f1375877aedde21647ae9f54f3009",
	"wide":       "9bb0c0ae5c333d2823a8de8c627c2501b4f5e4bb4ca0c5721f4fcce208d3d2ba",
	"zero":       "715d404a290d2b9788487d22047763d01fdd3e4c4f9794f3185050605910f0e5",
}

func TestGenerateGolden(t *testing.T) {
	var got []string
	for name, cfg := range goldenConfigs() {
		run, truth := Generate(cfg)
		fp := fingerprint(run, truth)
		got = append(got, fmt.Sprintf("%q: %q,", name, fp))
		if want := golden[name]; fp != want {
			t.Errorf("%s: fingerprint %s, want %s", name, fp, want)
		}
	}
	if t.Failed() {
		slices.Sort(got)
		t.Logf("now:\n%s", strings.Join(got, "\n"))
	}
}

// TestFingerprintSeesOneBit checks that the golden test can fail: the
// smallest change to any part of a run changes the fingerprint.
func TestFingerprintSeesOneBit(t *testing.T) {
	for _, c := range []struct {
		name   string
		change func(*runstore.Run, *Truth)
	}{
		{"sample watts", func(r *runstore.Run, _ *Truth) {
			s := &r.Samples[len(r.Samples)/2]
			if math.IsNaN(s.Watts) {
				s.Watts = 0
			}
			s.Watts = math.Nextafter(s.Watts, math.Inf(1))
		}},
		{"sample joules", func(r *runstore.Run, _ *Truth) { r.Samples[1].Joules = math.Nextafter(r.Samples[1].Joules, 0) }},
		{"request latency", func(r *runstore.Run, _ *Truth) { r.Requests[3].LatencyNs++ }},
		{"request cold", func(r *runstore.Run, _ *Truth) { r.Requests[0].Cold = !r.Requests[0].Cold }},
		{"phase end", func(r *runstore.Run, _ *Truth) { r.Meta.Phases[2].EndNs++ }},
		{"truth total", func(_ *runstore.Run, tr *Truth) { tr.TotalJ = math.Nextafter(tr.TotalJ, 0) }},
		{"truth idle", func(_ *runstore.Run, tr *Truth) { tr.IdleW["wasm"] = math.Nextafter(tr.IdleW["wasm"], 0) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			run, truth := Generate(Demo(1))
			before := fingerprint(run, truth)
			c.change(run, &truth)
			if fingerprint(run, truth) == before {
				t.Error("the fingerprint did not change")
			}
		})
	}
}
