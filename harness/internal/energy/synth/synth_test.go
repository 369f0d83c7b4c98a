package synth

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/academemes/harness/harness/internal/runstore"
	"github.com/academemes/harness/meters"
	"github.com/academemes/harness/targets"
)

func TestWithDefaults(t *testing.T) {
	start := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	for _, c := range []struct {
		name string
		in   Config
		want Config
	}{
		{"zero", Config{}, Config{Reps: 1, Name: "synthetic", Start: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), ID: "20260102-030405-synthetic", Status: runstore.StatusComplete}},
		{"negative reps", Config{Reps: -2, Name: "n", Start: start}, Config{Reps: 1, Name: "n", Start: start, ID: "20250304-050607-n", Status: runstore.StatusComplete}},
		{"all set", Config{Reps: 3, Name: "n", Start: start, ID: "x", Status: runstore.StatusInterrupted}, Config{Reps: 3, Name: "n", Start: start, ID: "x", Status: runstore.StatusInterrupted}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := c.in.withDefaults()
			if got.Reps != c.want.Reps || got.Name != c.want.Name || !got.Start.Equal(c.want.Start) || got.ID != c.want.ID || got.Status != c.want.Status {
				t.Errorf("got reps %d name %q start %v id %q status %q, want %d %q %v %q %q",
					got.Reps, got.Name, got.Start, got.ID, got.Status, c.want.Reps, c.want.Name, c.want.Start, c.want.ID, c.want.Status)
			}
		})
	}
}

func TestNewMeta(t *testing.T) {
	cfg := Config{Sequential: true, Targets: []Target{{Name: "a", Kind: "wasm", Mode: targets.Warm}, {Name: "b", Kind: "docker-node"}}}.withDefaults()
	m := newMeta(cfg)
	if m.ID != cfg.ID || m.Scenario != "synthetic" || m.Status != runstore.StatusComplete || m.Repeat != 1 || m.Load.Model != "sequential" {
		t.Errorf("meta %q %q %q %d %q", m.ID, m.Scenario, m.Status, m.Repeat, m.Load.Model)
	}
	if !slices.Equal(m.Order, []string{"a", "b"}) || len(m.Targets) != 2 || m.Targets[0].Mode != string(targets.Warm) || m.Targets[1].Kind != "docker-node" {
		t.Errorf("targets %+v order %v", m.Targets, m.Order)
	}
	if newMeta(Config{}).Load.Model != "open" {
		t.Error("Poisson load is not the open model")
	}
}

func TestLoadPhaseNames(t *testing.T) {
	if got := loadPhaseNames(nil); !slices.Equal(got, []string{"load"}) {
		t.Errorf("no inputs: %v", got)
	}
	if got := loadPhaseNames([]string{"a", "b"}); !slices.Equal(got, []string{"load/a", "load/b"}) {
		t.Errorf("inputs: %v", got)
	}
}

func TestLayOut(t *testing.T) {
	base := Config{
		Reps: 2, Idle: time.Second, Load: 2 * time.Second, Inputs: []string{"x", "y"},
		Targets: []Target{{Name: "a", Rate: 5, IdleExtraW: 1}, {Name: "b", Rate: 7, IdleExtraW: 2}},
	}
	for _, c := range []struct {
		name       string
		change     func(*Config)
		perTarget  []string // phase names of one target in one repetition
		rate       float64  // target a's stage rate
		blockNanos int64
	}{
		{"idle and load", func(*Config) {}, []string{"idle", "load/x", "load/y"}, 5, 5e9},
		{"warm-up and cool-down", func(c *Config) { c.Warmup, c.Cooldown = time.Second/2, time.Second/4 }, []string{"idle", "warmup", "load/x", "load/y", "cooldown"}, 5, 5.75e9},
		{"sequential", func(c *Config) { c.Sequential = true }, []string{"idle", "load/x", "load/y"}, 0, 5e9},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := base
			c.change(&cfg)
			cfg = cfg.withDefaults()
			sc := layOut(cfg)
			if n := len(sc.perTargetNames()); n != 4 {
				t.Fatalf("%d target repetitions, want 4", n)
			}
			for i, names := range sc.perTargetNames() {
				if !slices.Equal(names, c.perTarget) {
					t.Errorf("target repetition %d: phases %v, want %v", i, names, c.perTarget)
				}
			}
			at := cfg.Start.UnixNano()
			for i, p := range sc.phases {
				if p.StartNs != at {
					t.Errorf("phase %d starts at %d, want %d (back to back)", i, p.StartNs, at)
				}
				at = p.EndNs
				if want := []string{"a", "b"}[sc.owner[i]]; p.Target != want {
					t.Errorf("phase %d: target %q, owner %q", i, p.Target, want)
				}
				if p.Rep != 1+i/(2*len(c.perTarget)) {
					t.Errorf("phase %d: rep %d", i, p.Rep)
				}
				if p.Name == "load/x" && p.Target == "a" && (len(p.Stages) != 1 || p.Stages[0].Rate != c.rate || p.Stages[0].StartNs != p.StartNs || p.Stages[0].EndNs != p.EndNs) {
					t.Errorf("phase %d stages %+v, want one at rate %v over the phase", i, p.Stages, c.rate)
				}
			}
			if sc.end != at || sc.start != cfg.Start.UnixNano() {
				t.Errorf("span [%d, %d), phases [%d, %d)", sc.start, sc.end, cfg.Start.UnixNano(), at)
			}
			if len(sc.blocks) != 4 {
				t.Fatalf("%d blocks", len(sc.blocks))
			}
			for i, b := range sc.blocks {
				if b.e-b.s != c.blockNanos || b.extraW != float64(1+i%2) || (i > 0 && b.s != sc.blocks[i-1].e) {
					t.Errorf("block %d: %+v", i, b)
				}
			}
		})
	}
}

// perTargetNames groups the phase names by target and repetition.
func (sc schedule) perTargetNames() [][]string {
	var out [][]string
	for i, p := range sc.phases {
		if p.Name == runstore.PhaseIdle {
			out = append(out, nil)
		}
		out[len(out)-1] = append(out[len(out)-1], sc.phases[i].Name)
	}
	return out
}

func TestRequests(t *testing.T) {
	phase := runstore.Phase{Target: "a", Name: "load", Rep: 2, StartNs: 1e9, EndNs: 2e9}
	for _, c := range []struct {
		name       string
		tg         Target
		sequential bool
		check      func(t *testing.T, reqs []runstore.Request, fl []flight)
	}{
		{"sequential, exact latency and energy", Target{Name: "a", LatencyMs: 10, JPerRequest: 0.5}, true, func(t *testing.T, reqs []runstore.Request, fl []flight) {
			// 10 ms each and 5 ms pause: starts every 15 ms from the phase start.
			if len(reqs) != 67 {
				t.Fatalf("%d requests, want 67", len(reqs))
			}
			for i, r := range reqs {
				if r.StartNs != 1e9+int64(i)*15e6 || r.LatencyNs != 10e6 || fl[i].s != r.StartNs || fl[i].e != r.EndNs() || fl[i].densityW != 50 {
					t.Fatalf("request %d: %+v flight %+v", i, r, fl[i])
				}
			}
		}},
		{"Poisson arrivals", Target{Name: "a", Rate: 1000, LatencyMs: 2, LatencyCV: 0.5, JPerRequest: 1, EnergyCV: 0.3}, false, func(t *testing.T, reqs []runstore.Request, fl []flight) {
			if len(reqs) < 900 || len(reqs) > 1100 {
				t.Errorf("%d requests in 1 s at 1000/s", len(reqs))
			}
			var joules float64
			for i, r := range reqs {
				if r.StartNs < phase.StartNs || r.StartNs >= phase.EndNs || (i > 0 && r.StartNs < reqs[i-1].StartNs) {
					t.Fatalf("request %d starts at %d", i, r.StartNs)
				}
				joules += fl[i].densityW * float64(fl[i].e-fl[i].s) / 1e9
			}
			if mean := joules / float64(len(reqs)); math.Abs(mean-1) > 0.05 {
				t.Errorf("mean energy %.3f J, want about 1", mean)
			}
		}},
		{"all cold, all failing, latency floor", Target{Name: "a", Rate: 100, LatencyMs: 1e-6, ColdFraction: 1, StartUpMs: 10, ErrorRate: 1}, false, func(t *testing.T, reqs []runstore.Request, _ []flight) {
			if len(reqs) == 0 {
				t.Fatal("no requests")
			}
			for i, r := range reqs {
				if !r.Cold || r.StartUpNs < 8e6 || r.StartUpNs > 12e6 || r.Status != 500 || r.Error == "" || r.BytesOut != 0 || r.LatencyNs != 1000 {
					t.Fatalf("request %d: %+v", i, r)
				}
			}
		}},
		{"none cold, none failing", Target{Name: "a", Rate: 100, LatencyMs: 1, StartUpMs: 10}, false, func(t *testing.T, reqs []runstore.Request, _ []flight) {
			for i, r := range reqs {
				if r.Cold || r.StartUpNs != 0 || r.Status != 200 || r.Error != "" || r.Phase != "load" || r.Rep != 2 || r.Target != "a" {
					t.Fatalf("request %d: %+v", i, r)
				}
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			reqs, fl := requests(rand.New(rand.NewPCG(1, 2)), c.tg, phase, c.sequential, 5*time.Millisecond, 40)
			if len(reqs) != len(fl) {
				t.Fatalf("%d requests, %d flights", len(reqs), len(fl))
			}
			for i, r := range reqs {
				if r.Seq != 40+int64(i) {
					t.Fatalf("request %d: seq %d, want %d", i, r.Seq, 40+i)
				}
			}
			c.check(t, reqs, fl)
		})
	}
}

func TestDrive(t *testing.T) {
	cfg := Config{
		Reps: 2, Idle: time.Second, Warmup: time.Second, Load: time.Second, Cooldown: time.Second,
		Targets: []Target{{Name: "a", Rate: 20, LatencyMs: 1}, {Name: "b", Rate: 30, LatencyMs: 1}},
	}.withDefaults()
	sc := layOut(cfg)
	reqs, fl := drive(rand.New(rand.NewPCG(3, 4)), cfg, sc)
	if len(reqs) != len(fl) || len(reqs) == 0 {
		t.Fatalf("%d requests, %d flights", len(reqs), len(fl))
	}
	next := map[string]int64{}
	for i, r := range reqs {
		if r.Seq != next[r.Target] {
			t.Errorf("request %d of %s: seq %d, want %d (numbered per target across phases)", i, r.Target, r.Seq, next[r.Target])
		}
		next[r.Target]++
		if r.Phase != runstore.PhaseWarmup && r.Phase != runstore.PhaseLoad {
			t.Errorf("request %d in phase %s", i, r.Phase)
		}
		if i > 0 && r.StartNs < reqs[i-1].StartNs {
			t.Errorf("request %d out of time order", i)
		}
	}
	if next["a"] == 0 || next["b"] == 0 {
		t.Errorf("requests per target: %v", next)
	}
}

func TestCumulative(t *testing.T) {
	s := int64(time.Second)
	pw := func(idleW, driftW float64, blocks []block, flights []flight) *power {
		return newPower(Config{IdleW: idleW, DriftW: driftW}, schedule{start: 0, end: 10 * s, blocks: blocks}, flights)
	}
	for _, c := range []struct {
		name  string
		pw    *power
		at    []int64
		wantJ []float64
	}{
		{"idle only", pw(10, 0, nil, nil), []int64{0, s, 5 * s / 2, 10 * s}, []float64{0, 10, 25, 100}},
		{"drift: 0 to 2 W over 10 s", pw(0, 2, nil, nil), []int64{0, 5 * s, 10 * s}, []float64{0, 2.5, 10}},
		{"a block", pw(10, 0, []block{{2 * s, 4 * s, 5}}, nil), []int64{s, 3 * s, 5 * s}, []float64{10, 35, 60}},
		{"a flight", pw(10, 0, nil, []flight{{s, 2 * s, 3}}), []int64{s / 2, 3 * s / 2, 6 * s}, []float64{5, 16.5, 63}},
		{"overlapping flights", pw(0, 0, nil, []flight{{s, 3 * s, 1}, {2 * s, 4 * s, 2}}), []int64{2 * s, 3 * s, 5 * s}, []float64{1, 4, 6}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cum := c.pw.cumulative()
			for i, x := range c.at {
				if got := cum.at(x); math.Abs(got-c.wantJ[i]) > 1e-9 {
					t.Errorf("at %v: %v J, want %v", time.Duration(x), got, c.wantJ[i])
				}
			}
			if got, want := c.pw.totalJ(), c.pw.cumulative().at(10*s); math.Abs(got-want) > 1e-9 {
				t.Errorf("totalJ %v, cumulative at the end %v", got, want)
			}
		})
	}
}

// TestTotalMatchesCumulative checks the truth's total against the
// integrated power the meters read, on a generated schedule.
func TestTotalMatchesCumulative(t *testing.T) {
	cfg := Demo(4).withDefaults()
	sc := layOut(cfg)
	_, fl := drive(rand.New(rand.NewPCG(1, 1)), cfg, sc)
	pw := newPower(cfg, sc, fl)
	cum := pw.cumulative()
	start := cum.at(sc.start)
	if got, want := pw.totalJ(), cum.at(sc.end)-start; math.Abs(got-want) > 1e-9*want {
		t.Errorf("totalJ %v, cumulative %v", got, want)
	}
}

func TestIdleTruth(t *testing.T) {
	// One repetition: a's idle is the first second of 10 (drift there
	// 0 to 0.2 W, mean 0.1), b's the sixth (drift 1 to 1.2 W, mean 1.1).
	cfg := Config{Idle: time.Second, Load: 4 * time.Second, IdleW: 10, DriftW: 2,
		Targets: []Target{{Name: "a", IdleExtraW: 0.5}, {Name: "b", IdleExtraW: 3}}}.withDefaults()
	sc := layOut(cfg)
	got := idleTruth(cfg, sc, newPower(cfg, sc, nil))
	for name, want := range map[string]float64{"a": 10.6, "b": 14.1} {
		if math.Abs(got[name]-want) > 1e-9 {
			t.Errorf("%s: idle %v W, want %v", name, got[name], want)
		}
	}
	if got := idleTruth(Config{Targets: []Target{{Name: "a"}}}, schedule{}, newPower(Config{}, schedule{}, nil)); len(got) != 0 {
		t.Errorf("no idle phases: %v", got)
	}
}

func TestMeterTicks(t *testing.T) {
	s := int64(time.Second)
	rng := rand.New(rand.NewPCG(9, 9))
	ticks := meterTicks(rng, []Meter{{RateHz: 10}, {RateHz: 2}, {RateHz: 10, JitterFrac: 0.4}}, 0, s)
	count := map[int]int{}
	for i, tk := range ticks {
		count[tk.meter]++
		if i > 0 && (tk.t < ticks[i-1].t || tk.t == ticks[i-1].t && tk.meter < ticks[i-1].meter) {
			t.Errorf("tick %d (%+v) out of order after %+v", i, tk, ticks[i-1])
		}
		if tk.t < -s || tk.t > 2*s {
			t.Errorf("tick %d at %d: outside a second around [0, 1 s)", i, tk.t)
		}
		if tk.meter == 0 && tk.t%(s/10) != 0 {
			t.Errorf("tick %d at %d: not on the 10 Hz grid", i, tk.t)
		}
	}
	if count[0] != 31 || count[1] != 7 || count[2] < 30 || count[2] > 32 {
		t.Errorf("ticks per meter %v, want 31, 7 and about 31", count)
	}
	var jittered int
	for _, tk := range ticks {
		if tk.meter == 2 && tk.t%(s/10) != 0 {
			jittered++
			if off := (tk.t + s) % (s / 10); off > s/25 && off < s/10-s/25 {
				t.Errorf("jitter %d ns is over 0.4 of the interval", off)
			}
		}
		if tk.meter == 2 && tk.t == -s {
			jittered-- // the first tick is never moved
		}
	}
	if jittered < 20 {
		t.Errorf("only %d jittered ticks", jittered)
	}
}

func TestChannelSamples(t *testing.T) {
	nan := math.NaN()
	for _, c := range []struct {
		name   string
		m      Meter
		watts  []float64
		joules []float64
		draws  int
	}{
		{"power, two channels, noise", Meter{Name: "p", Watts: true, NoiseW: 2, Channels: 2}, []float64{5 + 2*0.5, 5 + 2*0.5}, []float64{nan, nan}, 2},
		{"counter with nested", Meter{Name: "c", Joules: true, Nested: true}, []float64{nan, nan}, []float64{30, 18}, 0},
		{"both, zero channels mean one", Meter{Name: "b", Watts: true, Joules: true, Nested: true}, []float64{10, 6}, []float64{30, 18}, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			draws := 0
			noise := func() float64 { draws++; return 0.5 }
			got := channelSamples(nil, c.m, 77, 10, 30, noise)
			if len(got) != len(c.watts) || draws != c.draws {
				t.Fatalf("%d samples, %d noise draws; want %d and %d", len(got), draws, len(c.watts), c.draws)
			}
			same := func(a, b float64) bool { return a == b || math.IsNaN(a) && math.IsNaN(b) }
			for i, s := range got {
				if s.Meter != c.m.Name || s.Channel != i || s.TNs != 77 || !same(s.Watts, c.watts[i]) || !same(s.Joules, c.joules[i]) {
					t.Errorf("sample %d: %+v, want watts %v joules %v", i, s, c.watts[i], c.joules[i])
				}
			}
		})
	}
}

func TestSample(t *testing.T) {
	s := int64(time.Second)
	ms := []Meter{{Name: "p", RateHz: 4, Watts: true}, {Name: "c", RateHz: 2, Joules: true}}
	ticks := meterTicks(nil, ms, 0, s)
	got := sample(rand.New(rand.NewPCG(1, 1)), ms, ticks, newPower(Config{IdleW: 8}, schedule{start: 0, end: s}, nil).cumulative())
	perMeter := map[string]int{}
	for _, smp := range got {
		perMeter[smp.Meter]++
		switch smp.Meter {
		case "p":
			if math.Abs(smp.Watts-8) > 1e-9 || !math.IsNaN(smp.Joules) {
				t.Errorf("%+v: want 8 W and no joules", smp)
			}
		case "c":
			if want := 8 * float64(smp.TNs+s) / 1e9; math.Abs(smp.Joules-want) > 1e-9 || !math.IsNaN(smp.Watts) {
				t.Errorf("%+v: want %v J since the meter's first reading", smp, want)
			}
		}
	}
	// 13 and 7 ticks, the first of each only starts the meter.
	if perMeter["p"] != 12 || perMeter["c"] != 6 {
		t.Errorf("samples per meter %v", perMeter)
	}
}

func TestMeterMeta(t *testing.T) {
	for _, c := range []struct {
		name     string
		m        Meter
		kind     meters.Kind
		label    string
		channels []string
		inTotal  []bool
	}{
		{"measured by default", Meter{Name: "rapl", Channels: 2, Nested: true}, meters.Measured, "rapl", []string{"part-0", "part-1", "part-0 subdomain"}, []bool{true, true, false}},
		{"model", Meter{Name: "guess", Kind: meters.Model}, meters.Model, "guess (estimate, model)", []string{"part-0"}, []bool{true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			mm := meterMeta(c.m)
			if mm.Kind != runstore.MeterKind(c.kind) || mm.Label != c.label || mm.Driver != "synthetic" || mm.Report == nil || len(mm.Channels) != len(c.channels) {
				t.Fatalf("%+v", mm)
			}
			for i, ch := range mm.Channels {
				if ch.Name != c.channels[i] || ch.InTotal != c.inTotal[i] {
					t.Errorf("channel %d: %+v", i, ch)
				}
			}
		})
	}
}
