package energy

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/academemes/harness/harness/internal/carbon"
	"github.com/academemes/harness/harness/internal/energy/synth"
	"github.com/academemes/harness/harness/internal/runstore"
)

// sameG reports whether two figures agree to floating-point rounding.
func sameG(a, b Float) bool {
	x, y := float64(a), float64(b)
	if math.IsNaN(x) || math.IsNaN(y) {
		return math.IsNaN(x) && math.IsNaN(y)
	}
	return math.Abs(x-y) <= 1e-9*math.Max(math.Abs(x), math.Abs(y))
}

func constantCarbon(g float64) *runstore.Carbon {
	return &runstore.Carbon{
		IntensityGPerKWh: &runstore.Sourced{Value: g, Source: "--set carbon.intensity=400"},
		PUE:              runstore.Sourced{Value: 1, Source: "default"},
	}
}

// carbonRun is the truth run on a counter meter with a stated
// resolution and accuracy, so that the intervals are widened by them.
func carbonRun(t *testing.T, rec *runstore.Carbon) (*runstore.Run, *Energy) {
	t.Helper()
	run, _ := synth.Generate(truthConfig(3, synth.Meter{Name: "c", RateHz: 10, Joules: true}))
	run.Meta.Meters[0].Precision = runstore.Precision{EnergyStepJ: 0.01, RelError: 0.02}
	run.Meta.Carbon = rec
	s, err := Analyze(run)
	if err != nil {
		t.Fatal(err)
	}
	return run, s.Find("w", "load").Meter("c")
}

// TestCarbonIsEnergyTimesIntensity: with a constant 400 gCO2e/kWh and no
// embodied emissions, SCI per request is E per request x 400 / 3.6e6 g,
// value and interval, for the dynamic and the total energy, and for
// every repetition.
func TestCarbonIsEnergyTimesIntensity(t *testing.T) {
	_, e := carbonRun(t, constantCarbon(400))
	c := e.Carbon
	if c == nil {
		t.Fatal("no carbon figures with carbon: {intensity: 400}")
	}
	k := Float(400 / 3.6e6)
	tests := []struct {
		name   string
		got    Interval
		energy Interval
		scale  Float
	}{
		{"SCI from dynamic energy", c.SCIPerRequest, e.DynamicJPerRequest, k},
		{"its operational part", c.OperationalPerRequest, e.DynamicJPerRequest, k},
		{"per 1000 requests", c.SCIPer1000Requests, e.DynamicJPerRequest, 1000 * k},
		{"SCI from total energy", c.TotalSCIPerRequest, e.JPerRequest, k},
		{"its operational part", c.TotalOperationalPerRequest, e.JPerRequest, k},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !tc.energy.Lo.OK() {
				t.Fatalf("the energy figure has no interval: %+v", tc.energy)
			}
			if !sameG(tc.got.Value, tc.energy.Value*tc.scale) || !sameG(tc.got.Lo, tc.energy.Lo*tc.scale) || !sameG(tc.got.Hi, tc.energy.Hi*tc.scale) {
				t.Errorf("carbon %v [%v, %v], want energy x %v: %v [%v, %v]", tc.got.Value, tc.got.Lo, tc.got.Hi, tc.scale,
					tc.energy.Value*tc.scale, tc.energy.Lo*tc.scale, tc.energy.Hi*tc.scale)
			}
		})
	}
	if c.EmbodiedCounted || c.EmbodiedPerRequest.Value != 0 {
		t.Errorf("no embodied given, yet M = %+v", c.EmbodiedPerRequest)
	}
	if c.IntensityGPerKWh != 400 || c.IntensityMin != 400 || c.IntensityMax != 400 {
		t.Errorf("intensity %v in [%v, %v], want 400", c.IntensityGPerKWh, c.IntensityMin, c.IntensityMax)
	}
	for i, r := range e.Reps {
		if rc := c.Reps[i]; rc.Rep != r.Rep || !sameG(rc.SCIPerRequest, r.DynamicJPerRequest*k) || !sameG(rc.TotalSCIPerRequest, r.JPerRequest*k) {
			t.Errorf("repetition %d: %+v, want %v and %v", r.Rep, rc, r.DynamicJPerRequest*k, r.JPerRequest*k)
		}
	}
}

// TestNoCarbonWithoutBlock: a run without a carbon: block has no carbon
// figures; nothing stands in for the user's grid.
func TestNoCarbonWithoutBlock(t *testing.T) {
	run, e := carbonRun(t, nil)
	if e.Carbon != nil {
		t.Errorf("carbon figures without a carbon: block: %+v", e.Carbon)
	}
	s, _ := Analyze(run)
	if s.Carbon != nil {
		t.Errorf("summary carbon without a carbon: block: %+v", s.Carbon)
	}
}

// TestCarbonSeriesStep: an intensity series applied per stretch of
// energy by its time. A step from 100 to 500 gCO2e/kWh between two
// repetitions gives each repetition the intensity in force over its
// window; a step inside a window splits its energy where it falls.
func TestCarbonSeriesStep(t *testing.T) {
	cfg := truthConfig(5, synth.Meter{Name: "c", RateHz: 10, Joules: true})
	cfg.Reps = 4
	run, _ := synth.Generate(cfg)
	base, err := Analyze(run)
	if err != nil {
		t.Fatal(err)
	}
	reps := base.Find("w", "load").Meter("c").Reps
	first, last := run.Meta.Phases[0].StartNs, run.Meta.Phases[len(run.Meta.Phases)-1].EndNs
	series := func(step int64) *runstore.Carbon {
		return &runstore.Carbon{
			IntensityFile: &runstore.IntensityFile{Path: "grid.csv", Source: "s.yaml:3:19", Rows: 2,
				Points: []runstore.IntensityPoint{{TNs: first - int64(time.Hour), GPerKWh: 100}, {TNs: step, GPerKWh: 500}},
				EndNs:  last + int64(time.Hour)},
			PUE: runstore.Sourced{Value: 1, Source: "default"},
		}
	}
	const lowK, highK = 100 / 3.6e6, 500 / 3.6e6

	t.Run("between repetitions", func(t *testing.T) {
		step := (reps[1].EndNs + reps[2].StartNs) / 2
		run.Meta.Carbon = series(step)
		s, err := Analyze(run)
		if err != nil {
			t.Fatal(err)
		}
		e := s.Find("w", "load").Meter("c")
		c := e.Carbon
		var want []float64
		for i, r := range e.Reps {
			k := lowK
			if r.StartNs >= step {
				k = highK
			}
			w := float64(r.DynamicJPerRequest) * k
			want = append(want, w)
			if !sameG(c.Reps[i].SCIPerRequest, Float(w)) {
				t.Errorf("repetition %d (window %s): %v g/request, want dynamic J/request x %g = %v", r.Rep,
					map[bool]string{true: "after the step", false: "before the step"}[r.StartNs >= step], c.Reps[i].SCIPerRequest, k*3.6e6, w)
			}
		}
		if !sameG(c.SCIPerRequest.Value, Float(Mean(want))) {
			t.Errorf("SCI per request %v, want the repetitions' mean %v", c.SCIPerRequest.Value, Mean(want))
		}
		if c.IntensityMin != 100 || c.IntensityMax != 500 || !(c.IntensityGPerKWh > 100 && c.IntensityGPerKWh < 500) {
			t.Errorf("intensity %v in [%v, %v], want a mean between 100 and 500", c.IntensityGPerKWh, c.IntensityMin, c.IntensityMax)
		}
		if !strings.Contains(s.Carbon.Method, "grid.csv") || !strings.Contains(s.Carbon.Method, "ISO/IEC 21031:2024") {
			t.Errorf("method paragraph %q", s.Carbon.Method)
		}
	})

	t.Run("inside a window", func(t *testing.T) {
		r := reps[0]
		step := r.StartNs + (r.EndNs-r.StartNs)/3
		run.Meta.Carbon = series(step)
		s, err := Analyze(run)
		if err != nil {
			t.Fatal(err)
		}
		got := s.Find("w", "load").Meter("c").Carbon.Reps[0]
		m := buildMeters(run.Meta.Meters, run.Samples)[0]
		iw := float64(r.IdleW)
		before := m.energy(r.StartNs, step) - iw*float64(step-r.StartNs)/1e9
		after := m.energy(step, r.EndNs) - iw*float64(r.EndNs-step)/1e9
		want := (before*lowK + after*highK) / float64(r.Requests)
		if !sameG(got.SCIPerRequest, Float(want)) {
			t.Errorf("SCI per request %v, want the energy before the step at 100 and after it at 500: %v", got.SCIPerRequest, want)
		}
		lo, hi := float64(r.DynamicJPerRequest)*lowK, float64(r.DynamicJPerRequest)*highK
		if v := float64(got.SCIPerRequest); !(v > lo && v < hi) {
			t.Errorf("SCI per request %v outside [%v, %v]", v, lo, hi)
		}
	})

	t.Run("series that does not cover the run", func(t *testing.T) {
		rec := series(reps[1].StartNs)
		rec.IntensityFile.EndNs = reps[2].StartNs
		run.Meta.Carbon = rec
		s, err := Analyze(run)
		if err != nil {
			t.Fatal(err)
		}
		p := s.Find("w", "load")
		c := p.Meter("c").Carbon
		if want := fmt.Sprintf("does not cover repetition %d's window", reps[2].Rep); c.SCIPerRequest.Value.OK() || !strings.Contains(c.Reason, want) {
			t.Errorf("carbon %+v, want no figure and why", c)
		}
		if !strings.Contains(strings.Join(p.Warnings, "\n"), "no carbon figures") {
			t.Errorf("warnings %q", p.Warnings)
		}
	})
}

// TestCarbonEmbodied: M is the time share of the hardware's embodied
// emissions, added per request by the SCI formula.
func TestCarbonEmbodied(t *testing.T) {
	rec := constantCarbon(400)
	rec.Embodied = &runstore.Embodied{
		TotalKg: runstore.Sourced{Value: 1000, Source: "s.yaml:5:15"}, LifetimeYears: runstore.Sourced{Value: 4, Source: "s.yaml:5:36"},
		Share: runstore.Sourced{Value: 0.5, Source: "s.yaml:5:47"},
	}
	_, e := carbonRun(t, rec)
	c := e.Carbon
	if !c.EmbodiedCounted {
		t.Fatal("embodied not counted")
	}
	var embs []float64
	for i, r := range e.Reps {
		seconds := float64(r.EndNs-r.StartNs) / 1e9
		m := 1000 * 1000 * seconds / (4 * carbon.SecondsPerYear) * 0.5
		embs = append(embs, m/float64(r.Requests))
		want := float64(r.DynamicJPerRequest)*400/3.6e6 + m/float64(r.Requests)
		if rc := c.Reps[i]; !sameG(rc.EmbodiedG, Float(m)) || !sameG(rc.SCIPerRequest, Float(want)) {
			t.Errorf("repetition %d: M %v g, SCI %v g/request; want %v g and (E x I + M)/R = %v", r.Rep, rc.EmbodiedG, rc.SCIPerRequest, m, want)
		}
	}
	if !sameG(c.EmbodiedPerRequest.Value, Float(Mean(embs))) {
		t.Errorf("M per request %v, want %v", c.EmbodiedPerRequest.Value, Mean(embs))
	}
	if !sameG(c.SCIPerRequest.Value, c.OperationalPerRequest.Value+c.EmbodiedPerRequest.Value) {
		t.Errorf("SCI %v != operational %v + embodied %v", c.SCIPerRequest.Value, c.OperationalPerRequest.Value, c.EmbodiedPerRequest.Value)
	}
}

// TestCarbonBelowResolution: the carbon of an energy below the meter's
// resolution is below resolution too; M, which is no measurement, stays.
func TestCarbonBelowResolution(t *testing.T) {
	rec := constantCarbon(400)
	rec.Embodied = &runstore.Embodied{TotalKg: runstore.Sourced{Value: 1000}, LifetimeYears: runstore.Sourced{Value: 4}, Share: runstore.Sourced{Value: 1}}
	run, _ := synth.Generate(truthConfig(3, synth.Meter{Name: "c", RateHz: 10, Joules: true}))
	run.Meta.Meters[0].Precision = runstore.Precision{EnergyStepJ: 1e6}
	run.Meta.Carbon = rec
	s, err := Analyze(run)
	if err != nil {
		t.Fatal(err)
	}
	e := s.Find("w", "load").Meter("c")
	if !e.DynamicJPerRequest.BelowResolution {
		t.Fatal("the setup should put the dynamic energy below resolution")
	}
	c := e.Carbon
	for name, iv := range map[string]Interval{"SCI": c.SCIPerRequest, "operational": c.OperationalPerRequest, "per 1000": c.SCIPer1000Requests, "total SCI": c.TotalSCIPerRequest} {
		if !iv.BelowResolution || iv.Value.OK() {
			t.Errorf("%s = %+v, want below resolution and no number", name, iv)
		}
	}
	if !c.EmbodiedPerRequest.Value.OK() || c.EmbodiedPerRequest.BelowResolution {
		t.Errorf("M per request %+v, want a number", c.EmbodiedPerRequest)
	}
}

// TestCarbonEstimate: carbon from the estimate meter is marked an
// estimate, as its energy is.
func TestCarbonEstimate(t *testing.T) {
	run, _ := synth.Generate(synth.Demo(1))
	run.Meta.Carbon = constantCarbon(300)
	s, err := Analyze(run)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range s.Find("wasm", "load").Energy {
		if e.Carbon == nil || e.Carbon.Estimate != e.Estimate {
			t.Errorf("meter %s (estimate %v): carbon %+v", e.Meter, e.Estimate, e.Carbon)
		}
	}
	if s.Find("wasm", "load").Meter("estimate").Carbon.Estimate != true {
		t.Error("carbon from the estimate meter is not marked an estimate")
	}
}
