// Package synth generates synthetic runs whose true energy is known: a
// machine with a set idle power and drift, targets whose requests each
// cost a known dynamic energy spread evenly over their time in flight,
// and meters that sample the resulting power or energy counter at a given
// rate with noise. The analysis is checked against the truth, and the
// report is tested on runs made here, with no hardware and no targets.
package synth

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/academemes/harness/harness/internal/runstore"
	"github.com/academemes/harness/meters"
	"github.com/academemes/harness/targets"
)

// Config describes a synthetic run.
type Config struct {
	Seed  uint64
	ID    string    // run id; made from Start and Name when empty
	Name  string    // scenario name
	Start time.Time // the first phase's start
	Reps  int
	// Phase lengths per target and repetition.
	Idle, Warmup, Load, Cooldown time.Duration
	// Inputs, when set, make one measured phase "load/<input>" each.
	Inputs []string
	// Sequential: requests one at a time with Pause between, instead of
	// Poisson arrivals at each target's Rate.
	Sequential bool
	Pause      time.Duration
	Targets    []Target
	// IdleW is the machine's power with nothing running; DriftW is added
	// to it linearly from zero at Start to DriftW at the end.
	IdleW  float64
	DriftW float64
	Meters []Meter
	// Status of the run in run.json; "complete" when empty.
	Status string
	// Background, when set, adds other work's bursts (background.go).
	Background *Background
}

// Target is a synthetic serving platform.
type Target struct {
	Name string
	Kind string
	Mode targets.Mode
	// IdleExtraW is what the target adds to idle power while deployed.
	IdleExtraW float64
	// JPerRequest is the mean dynamic energy of a request, spread evenly
	// over its time in flight; EnergyCV its coefficient of variation
	// (log-normal).
	JPerRequest float64
	EnergyCV    float64
	// Rate is arrivals per second (Poisson).
	Rate float64
	// LatencyMs is the mean latency, LatencyCV its spread (log-normal).
	LatencyMs float64
	LatencyCV float64
	// ColdFraction of requests report a cold start of about StartUpMs.
	ColdFraction float64
	StartUpMs    float64
	// ErrorRate of requests fail with status 500.
	ErrorRate float64
}

// Meter is a synthetic meter of the whole machine.
type Meter struct {
	Name string
	Kind meters.Kind
	// RateHz is samples per second per channel.
	RateHz float64
	// Watts: interval-average power over the time since the last sample
	// (as RAPL-derived and most averaging meters give). Joules: a
	// cumulative counter since the meter's start. Both may be set.
	Watts, Joules bool
	// NoiseW is the standard deviation of Gaussian noise on each watts
	// sample.
	NoiseW float64
	// Channels share the total equally (all in total); Nested adds one
	// more channel, not in the total, holding part of channel 0, so that
	// counting it twice would show.
	Channels int
	Nested   bool
	// JitterFrac moves each sample time by up to this fraction of the
	// sampling interval.
	JitterFrac float64
}

// Truth is what the analysis should find.
type Truth struct {
	// JPerRequest is each target's mean dynamic energy per request.
	JPerRequest map[string]float64
	// IdleW is each target's mean idle power over its idle phases.
	IdleW map[string]float64
	// TotalJ is the machine's energy from the first phase's start to the
	// last phase's end.
	TotalJ float64
}

// Generate makes a run in memory and says what is true about it.
func Generate(cfg Config) (*runstore.Run, Truth) {
	rng := rand.New(rand.NewPCG(cfg.Seed, 0xe1e))
	if cfg.Reps <= 0 {
		cfg.Reps = 1
	}
	if cfg.Name == "" {
		cfg.Name = "synthetic"
	}
	if cfg.Start.IsZero() {
		cfg.Start = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	}
	if cfg.ID == "" {
		cfg.ID = cfg.Start.UTC().Format("20060102-150405") + "-" + cfg.Name
	}
	status := cfg.Status
	if status == "" {
		status = runstore.StatusComplete
	}
	t0 := cfg.Start.UnixNano()
	meta := runstore.Meta{
		Format: runstore.Format, ID: cfg.ID, Scenario: cfg.Name, Description: "synthetic run with known energy",
		Version: "synthetic", Status: status, Started: cfg.Start, Repeat: cfg.Reps,
		Host: runstore.Host{Hostname: "synthetic", OS: "linux", Arch: "amd64", Cores: 2, CPUModel: "Synthetic CPU", GoVersion: "go1.26"},
		Load: runstore.LoadMeta{Model: "open", Method: "POST", Path: "/"},
	}
	if cfg.Sequential {
		meta.Load.Model = "sequential"
	}
	for _, t := range cfg.Targets {
		tm := runstore.TargetMetaFrom(targets.Info{Name: t.Name, Kind: t.Kind, Mode: t.Mode, Function: "memes"})
		tm.URL = "http://127.0.0.1:0/"
		meta.Targets = append(meta.Targets, tm)
		meta.Order = append(meta.Order, t.Name)
	}
	loads := []string{runstore.PhaseLoad}
	if len(cfg.Inputs) > 0 {
		loads = nil
		for _, in := range cfg.Inputs {
			loads = append(loads, runstore.PhaseLoad+"/"+in)
		}
	}
	type block struct {
		s, e  int64
		extra float64
	}
	var blocks []block
	type flight struct {
		s, e    int64
		density float64 // W while in flight
	}
	var flights []flight
	var reqs []runstore.Request
	idleE := map[string]float64{}
	idleT := map[string]float64{}
	t := t0
	seq := map[string]int64{}
	addPhase := func(tg Target, name string, rep int, d time.Duration) runstore.Phase {
		p := runstore.Phase{Target: tg.Name, Name: name, Rep: rep, StartNs: t, EndNs: t + int64(d)}
		t = p.EndNs
		return p
	}
	requests := func(tg Target, p runstore.Phase) {
		lsig := math.Sqrt(math.Log(1 + tg.LatencyCV*tg.LatencyCV))
		esig := math.Sqrt(math.Log(1 + tg.EnergyCV*tg.EnergyCV))
		at := p.StartNs
		for {
			lat := int64(tg.LatencyMs * 1e6 * math.Exp(lsig*rng.NormFloat64()-lsig*lsig/2))
			lat = max(lat, 1000)
			if !cfg.Sequential {
				at += int64(rng.ExpFloat64() / tg.Rate * 1e9)
			}
			if at >= p.EndNs {
				return
			}
			e := tg.JPerRequest * math.Exp(esig*rng.NormFloat64()-esig*esig/2)
			flights = append(flights, flight{at, at + lat, e / (float64(lat) / 1e9)})
			r := runstore.Request{
				Target: tg.Name, Phase: p.Name, Rep: p.Rep, Seq: seq[tg.Name], StartNs: at, LatencyNs: lat,
				Status: 200, BytesIn: 12, BytesOut: 2048,
			}
			seq[tg.Name]++
			if rng.Float64() < tg.ColdFraction {
				r.Cold = true
				r.StartUpNs = int64(tg.StartUpMs * 1e6 * (0.8 + 0.4*rng.Float64()))
			}
			if rng.Float64() < tg.ErrorRate {
				r.Status, r.BytesOut, r.Error = 500, 0, "500 Internal Server Error"
			}
			reqs = append(reqs, r)
			if cfg.Sequential {
				at += lat + int64(cfg.Pause)
			}
		}
	}
	for rep := 1; rep <= cfg.Reps; rep++ {
		for _, tg := range cfg.Targets {
			bs := t
			meta.Phases = append(meta.Phases, addPhase(tg, runstore.PhaseIdle, rep, cfg.Idle))
			if cfg.Warmup > 0 {
				w := addPhase(tg, runstore.PhaseWarmup, rep, cfg.Warmup)
				meta.Phases = append(meta.Phases, w)
				requests(tg, w)
			}
			for _, name := range loads {
				l := addPhase(tg, name, rep, cfg.Load)
				rate := tg.Rate
				if cfg.Sequential {
					rate = 0
				}
				l.Stages = []runstore.Stage{{Rate: rate, StartNs: l.StartNs, EndNs: l.EndNs}}
				meta.Phases = append(meta.Phases, l)
				requests(tg, l)
			}
			if cfg.Cooldown > 0 {
				meta.Phases = append(meta.Phases, addPhase(tg, runstore.PhaseCooldown, rep, cfg.Cooldown))
			}
			blocks = append(blocks, block{bs, t, tg.IdleExtraW})
		}
	}
	end := t
	bg := cfg.Background.bursts(cfg.Seed, t0, end)
	bg.annotate(meta.Phases, meta.Host.Cores)
	meta.Ended = time.Unix(0, end).UTC()
	span := float64(end - t0)
	// Exact cumulative energy at increasing times, from three parts: the
	// machine's idle with drift, the deployed target's extra, and the
	// requests in flight.
	base := func(x int64) float64 {
		s := float64(x-t0) / 1e9
		return cfg.IdleW*s + cfg.DriftW/(2*span/1e9)*s*s
	}
	type event struct {
		t int64
		d float64
	}
	events := make([]event, 0, 2*len(flights))
	for _, f := range flights {
		events = append(events, event{f.s, f.density}, event{f.e, -f.density})
	}
	slices.SortFunc(events, func(a, b event) int { return cmpInt(a.t, b.t) })
	// cumulative walks forward; times must not decrease between calls.
	var ei, bi int
	var dynCum, dynDensity float64
	var extraCum float64
	lastX := int64(math.MinInt64)
	cumAt := func(x int64) float64 {
		if lastX == math.MinInt64 {
			lastX = x
		}
		for ei < len(events) && events[ei].t <= x {
			ev := events[ei]
			dynCum += dynDensity * float64(ev.t-lastX) / 1e9
			dynDensity += ev.d
			lastX = ev.t
			ei++
		}
		dynCum += dynDensity * float64(x-lastX) / 1e9
		lastX = x
		// extra: blocks are disjoint and in order
		for bi < len(blocks) && blocks[bi].e <= x {
			extraCum += blocks[bi].extra * float64(blocks[bi].e-blocks[bi].s) / 1e9
			bi++
		}
		ex := extraCum
		if bi < len(blocks) && blocks[bi].s < x {
			ex += blocks[bi].extra * float64(x-blocks[bi].s) / 1e9
		}
		return base(x) + ex + dynCum + bg.cumJ(x)
	}
	// Idle truth: the mean power over each idle phase (no requests there).
	for _, p := range meta.Phases {
		if p.Name != runstore.PhaseIdle {
			continue
		}
		var extra float64
		for _, tg := range cfg.Targets {
			if tg.Name == p.Target {
				extra = tg.IdleExtraW
			}
		}
		idleE[p.Target] += base(p.EndNs) - base(p.StartNs) + extra*float64(p.EndNs-p.StartNs)/1e9
		idleT[p.Target] += float64(p.EndNs-p.StartNs) / 1e9
	}
	truth := Truth{JPerRequest: map[string]float64{}, IdleW: map[string]float64{}}
	for _, tg := range cfg.Targets {
		truth.JPerRequest[tg.Name] = tg.JPerRequest
		if idleT[tg.Name] > 0 {
			truth.IdleW[tg.Name] = idleE[tg.Name] / idleT[tg.Name]
		}
	}
	// Samples: all meters and channels at each meter's own times, merged
	// in time order as a recorder would write them.
	var samples []runstore.Sample
	type tick struct {
		t     int64
		meter int
	}
	var ticks []tick
	for mi, m := range cfg.Meters {
		dt := 1e9 / m.RateHz
		for k := 0; ; k++ {
			x := t0 - int64(time.Second) + int64(float64(k)*dt)
			if m.JitterFrac > 0 && k > 0 {
				x += int64((rng.Float64()*2 - 1) * m.JitterFrac * dt)
			}
			if x > end+int64(time.Second) {
				break
			}
			ticks = append(ticks, tick{x, mi})
		}
	}
	slices.SortStableFunc(ticks, func(a, b tick) int { return cmpInt(a.t, b.t) })
	first := make([]float64, len(cfg.Meters))
	prevE := make([]float64, len(cfg.Meters))
	prevT := make([]int64, len(cfg.Meters))
	started := make([]bool, len(cfg.Meters))
	for _, tk := range ticks {
		m := cfg.Meters[tk.meter]
		e := cumAt(tk.t)
		if !started[tk.meter] {
			started[tk.meter] = true
			first[tk.meter], prevE[tk.meter], prevT[tk.meter] = e, e, tk.t
			continue // the first reading only starts the meter
		}
		w := (e - prevE[tk.meter]) / (float64(tk.t-prevT[tk.meter]) / 1e9)
		prevE[tk.meter], prevT[tk.meter] = e, tk.t
		nch := max(m.Channels, 1)
		for c := range nch {
			s := runstore.Sample{Meter: m.Name, Channel: c, TNs: tk.t, Watts: math.NaN(), Joules: math.NaN()}
			if m.Watts {
				s.Watts = w/float64(nch) + m.NoiseW*rng.NormFloat64()
			}
			if m.Joules {
				s.Joules = (e - first[tk.meter]) / float64(nch)
			}
			samples = append(samples, s)
		}
		if m.Nested {
			s := runstore.Sample{Meter: m.Name, Channel: nch, TNs: tk.t, Watts: math.NaN(), Joules: math.NaN()}
			if m.Watts {
				s.Watts = 0.6 * w / float64(nch)
			}
			if m.Joules {
				s.Joules = 0.6 * (e - first[tk.meter]) / float64(nch)
			}
			samples = append(samples, s)
		}
	}
	truth.TotalJ = base(end) - base(t0) + bg.totalJ()
	for _, b := range blocks {
		truth.TotalJ += b.extra * float64(b.e-b.s) / 1e9
	}
	for _, f := range flights {
		truth.TotalJ += f.density * float64(f.e-f.s) / 1e9
	}
	for _, m := range cfg.Meters {
		info := meters.Info{Name: m.Name, Driver: "synthetic", Kind: m.Kind, Description: "synthetic meter of the whole machine"}
		if info.Kind == "" {
			info.Kind = meters.Measured
		}
		for c := range max(m.Channels, 1) {
			info.Channels = append(info.Channels, meters.Channel{Name: fmt.Sprintf("part-%d", c), InTotal: true})
		}
		if m.Nested {
			info.Channels = append(info.Channels, meters.Channel{Name: "part-0 subdomain", InTotal: false})
		}
		// Converted as the runner converts a real meter's Info.
		mm := runstore.MeterMetaFrom(info)
		mm.Report = runstore.MeterReportFrom(meters.Report{})
		meta.Meters = append(meta.Meters, mm)
	}
	run := &runstore.Run{Meta: meta, Scenario: []byte("name: " + cfg.Name + "\n"), Requests: reqs, Samples: samples}
	return run, truth
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// WriteDir writes run as a run directory under dir (which must not exist)
// through the run store's own writer, so the files are what a real run
// leaves.
func WriteDir(dir string, run *runstore.Run) error {
	w, err := runstore.Create(dir, run.Scenario, run.Meta)
	if err != nil {
		return fmt.Errorf("synth: %w", err)
	}
	for _, r := range run.Requests {
		if err := w.AddRequest(r); err != nil {
			return fmt.Errorf("synth: %w", err)
		}
	}
	for _, s := range run.Samples {
		if err := w.AddSample(s); err != nil {
			return fmt.Errorf("synth: %w", err)
		}
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("synth: %w", err)
	}
	return nil
}

// Demo is a small two-target run like the coldstart scenario: a wasm
// target and a container target, an estimate meter, three repetitions.
// Tests and examples use it.
func Demo(seed uint64) Config {
	return Config{
		Seed: seed, Name: "coldstart", Reps: 3,
		Idle: 5 * time.Second, Warmup: time.Second, Load: 10 * time.Second, Cooldown: time.Second,
		IdleW: 20, DriftW: 0.5,
		Targets: []Target{
			{Name: "wasm", Kind: "wasm", Mode: targets.Cold, IdleExtraW: 0.1, JPerRequest: 0.02, EnergyCV: 0.3, Rate: 50, LatencyMs: 2, LatencyCV: 0.4, ColdFraction: 1, StartUpMs: 1},
			{Name: "docker-node", Kind: "docker-node", Mode: targets.Cold, IdleExtraW: 1.5, JPerRequest: 4, EnergyCV: 0.2, Rate: 2, LatencyMs: 350, LatencyCV: 0.2, ColdFraction: 1, StartUpMs: 300, ErrorRate: 0.02},
		},
		Meters: []Meter{
			{Name: "rapl", Kind: meters.Measured, RateHz: 10, Joules: true, Channels: 1, Nested: true},
			{Name: "estimate", Kind: meters.Model, RateHz: 4, Watts: true, NoiseW: 0.3},
		},
	}
}
