// Package synth generates synthetic runs whose true energy is known: a
// machine with a set idle power and drift, targets whose requests each
// cost a known dynamic energy spread evenly over their time in flight,
// and meters that sample the resulting power or energy counter at a given
// rate with noise. The analysis is checked against the truth, and the
// report is tested on runs made here, with no hardware and no targets.
package synth

import (
	"cmp"
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

// Generate makes a run in memory and says what is true about it. The same
// Config (Seed included) gives the same run bit for bit.
//
// It lays the phases out, drives requests through the measured ones, builds
// the machine's exact power from both, and samples it with the meters; the
// random stream is drawn in that order (requests, then sample times, then
// sample noise).
func Generate(cfg Config) (*runstore.Run, Truth) {
	cfg = cfg.withDefaults()
	rng := rand.New(rand.NewPCG(cfg.Seed, 0xe1e))
	sched := layOut(cfg)
	reqs, flights := drive(rng, cfg, sched)
	pw := newPower(cfg, sched, flights)
	samples := sample(rng, cfg.Meters, meterTicks(rng, cfg.Meters, sched.start, sched.end), pw.cumulative())

	meta := newMeta(cfg)
	meta.Phases = sched.phases
	pw.bg.annotate(meta.Phases, meta.Host.Cores)
	meta.Ended = time.Unix(0, sched.end).UTC()
	for _, m := range cfg.Meters {
		meta.Meters = append(meta.Meters, meterMeta(m))
	}
	truth := Truth{JPerRequest: map[string]float64{}, IdleW: idleTruth(cfg, sched, pw), TotalJ: pw.totalJ()}
	for _, tg := range cfg.Targets {
		truth.JPerRequest[tg.Name] = tg.JPerRequest
	}
	run := &runstore.Run{Meta: meta, Scenario: []byte("name: " + cfg.Name + "\n"), Requests: reqs, Samples: samples}
	return run, truth
}

// withDefaults fills what a zero Config leaves open.
func (cfg Config) withDefaults() Config {
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
	if cfg.Status == "" {
		cfg.Status = runstore.StatusComplete
	}
	return cfg
}

// newMeta is run.json's metadata that follows from the Config alone (not
// the phases' times or the meters).
func newMeta(cfg Config) runstore.Meta {
	meta := runstore.Meta{
		Format: runstore.Format, ID: cfg.ID, Scenario: cfg.Name, Description: "synthetic run with known energy",
		Version: "synthetic", Status: cfg.Status, Started: cfg.Start, Repeat: cfg.Reps,
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
	return meta
}

// loadPhaseNames are the measured phases of one repetition: "load", or
// "load/<input>" for each input.
func loadPhaseNames(inputs []string) []string {
	if len(inputs) == 0 {
		return []string{runstore.PhaseLoad}
	}
	names := make([]string, 0, len(inputs))
	for _, in := range inputs {
		names = append(names, runstore.PhaseLoad+"/"+in)
	}
	return names
}

// schedule is the run's time line: phases back to back from the start,
// each repetition going through the targets in order.
type schedule struct {
	phases []runstore.Phase
	// owner is the index into Config.Targets of each phase's target.
	owner []int
	// blocks are the targets' deployed spans, disjoint and in order.
	blocks     []block
	start, end int64 // Unix ns
}

// block is a span [s, e) in which a target adds extraW to the machine's
// power.
type block struct {
	s, e   int64
	extraW float64
}

// layOut places the phases: per repetition and target idle, warm-up (when
// set), the load phases and cool-down (when set).
func layOut(cfg Config) schedule {
	sc := schedule{start: cfg.Start.UnixNano()}
	t := sc.start
	add := func(ti int, name string, rep int, d time.Duration) *runstore.Phase {
		sc.phases = append(sc.phases, runstore.Phase{Target: cfg.Targets[ti].Name, Name: name, Rep: rep, StartNs: t, EndNs: t + int64(d)})
		sc.owner = append(sc.owner, ti)
		t += int64(d)
		return &sc.phases[len(sc.phases)-1]
	}
	loads := loadPhaseNames(cfg.Inputs)
	for rep := 1; rep <= cfg.Reps; rep++ {
		for ti, tg := range cfg.Targets {
			bs := t
			add(ti, runstore.PhaseIdle, rep, cfg.Idle)
			if cfg.Warmup > 0 {
				add(ti, runstore.PhaseWarmup, rep, cfg.Warmup)
			}
			for _, name := range loads {
				l := add(ti, name, rep, cfg.Load)
				rate := tg.Rate
				if cfg.Sequential {
					rate = 0
				}
				l.Stages = []runstore.Stage{{Rate: rate, StartNs: l.StartNs, EndNs: l.EndNs}}
			}
			if cfg.Cooldown > 0 {
				add(ti, runstore.PhaseCooldown, rep, cfg.Cooldown)
			}
			sc.blocks = append(sc.blocks, block{bs, t, tg.IdleExtraW})
		}
	}
	sc.end = t
	return sc
}

// flight is one request's dynamic power: densityW from s to e.
type flight struct {
	s, e     int64
	densityW float64
}

// drive sends requests through the warm-up and load phases in time order,
// numbering each target's requests across the run.
func drive(rng *rand.Rand, cfg Config, sc schedule) ([]runstore.Request, []flight) {
	var reqs []runstore.Request
	var flights []flight
	seq := map[string]int64{}
	for i, p := range sc.phases {
		if p.Name == runstore.PhaseIdle || p.Name == runstore.PhaseCooldown {
			continue
		}
		tg := cfg.Targets[sc.owner[i]]
		r, f := requests(rng, tg, p, cfg.Sequential, cfg.Pause, seq[tg.Name])
		reqs, flights = append(reqs, r...), append(flights, f...)
		seq[tg.Name] += int64(len(r))
	}
	return reqs, flights
}

// requests are the requests of one phase, numbered from seq: Poisson
// arrivals at tg.Rate, or (sequential) one at a time with pause between.
// Latency and energy are log-normal around their means.
func requests(rng *rand.Rand, tg Target, p runstore.Phase, sequential bool, pause time.Duration, seq int64) ([]runstore.Request, []flight) {
	var reqs []runstore.Request
	var flights []flight
	lsig := math.Sqrt(math.Log(1 + tg.LatencyCV*tg.LatencyCV))
	esig := math.Sqrt(math.Log(1 + tg.EnergyCV*tg.EnergyCV))
	at := p.StartNs
	for {
		lat := int64(tg.LatencyMs * 1e6 * math.Exp(lsig*rng.NormFloat64()-lsig*lsig/2))
		lat = max(lat, 1000)
		if !sequential {
			at += int64(rng.ExpFloat64() / tg.Rate * 1e9)
		}
		if at >= p.EndNs {
			return reqs, flights
		}
		e := tg.JPerRequest * math.Exp(esig*rng.NormFloat64()-esig*esig/2)
		flights = append(flights, flight{at, at + lat, e / (float64(lat) / 1e9)})
		r := runstore.Request{
			Target: tg.Name, Phase: p.Name, Rep: p.Rep, Seq: seq, StartNs: at, LatencyNs: lat,
			Status: 200, BytesIn: 12, BytesOut: 2048,
		}
		seq++
		if rng.Float64() < tg.ColdFraction {
			r.Cold = true
			r.StartUpNs = int64(tg.StartUpMs * 1e6 * (0.8 + 0.4*rng.Float64()))
		}
		if rng.Float64() < tg.ErrorRate {
			r.Status, r.BytesOut, r.Error = 500, 0, "500 Internal Server Error"
		}
		reqs = append(reqs, r)
		if sequential {
			at += lat + int64(pause)
		}
	}
}

// power is the machine's exact power, in three parts: idle with linear
// drift, the deployed target's extra, and the requests in flight.
type power struct {
	t0, end       int64
	idleW, driftW float64
	blocks        []block
	flights       []flight
	// events are the flights' starts (+densityW) and ends (-densityW) in
	// time order.
	events []event
	// bg is other work's bursts (none without a Config.Background).
	bg bursts
}

type event struct {
	t      int64
	deltaW float64
}

func newPower(cfg Config, sc schedule, flights []flight) *power {
	pw := &power{t0: sc.start, end: sc.end, idleW: cfg.IdleW, driftW: cfg.DriftW, blocks: sc.blocks, flights: flights,
		bg: cfg.Background.bursts(cfg.Seed, sc.start, sc.end)}
	pw.events = make([]event, 0, 2*len(flights))
	for _, f := range flights {
		pw.events = append(pw.events, event{f.s, f.densityW}, event{f.e, -f.densityW})
	}
	slices.SortFunc(pw.events, func(a, b event) int { return cmp.Compare(a.t, b.t) })
	return pw
}

// baseJ is the idle-with-drift energy from the start to x.
func (pw *power) baseJ(x int64) float64 {
	s := float64(x-pw.t0) / 1e9
	return pw.idleW*s + pw.driftW/(2*float64(pw.end-pw.t0)/1e9)*s*s
}

// totalJ is the machine's energy from the start to the end.
func (pw *power) totalJ() float64 {
	total := pw.baseJ(pw.end) - pw.baseJ(pw.t0) + pw.bg.totalJ()
	for _, b := range pw.blocks {
		total += b.extraW * float64(b.e-b.s) / 1e9
	}
	for _, f := range pw.flights {
		total += f.densityW * float64(f.e-f.s) / 1e9
	}
	return total
}

// cumulative returns a reader of the machine's cumulative energy (from
// the start) that walks forward: the times it is asked must not decrease.
func (pw *power) cumulative() *cumulative { return &cumulative{pw: pw} }

// cumulative integrates the blocks and events up to the last time asked.
type cumulative struct {
	pw                *power
	started           bool
	lastX             int64
	ei, bi            int // next event and block not yet taken in
	dynJ, dynW, extra float64
}

// at is the cumulative energy at x, in joules since the start.
func (c *cumulative) at(x int64) float64 {
	if !c.started {
		c.started, c.lastX = true, x
	}
	events, blocks := c.pw.events, c.pw.blocks
	for c.ei < len(events) && events[c.ei].t <= x {
		ev := events[c.ei]
		c.dynJ += c.dynW * float64(ev.t-c.lastX) / 1e9
		c.dynW += ev.deltaW
		c.lastX = ev.t
		c.ei++
	}
	c.dynJ += c.dynW * float64(x-c.lastX) / 1e9
	c.lastX = x
	for c.bi < len(blocks) && blocks[c.bi].e <= x {
		c.extra += blocks[c.bi].extraW * float64(blocks[c.bi].e-blocks[c.bi].s) / 1e9
		c.bi++
	}
	ex := c.extra
	if c.bi < len(blocks) && blocks[c.bi].s < x {
		ex += blocks[c.bi].extraW * float64(x-blocks[c.bi].s) / 1e9
	}
	return c.pw.baseJ(x) + ex + c.dynJ + c.pw.bg.cumJ(x)
}

// idleTruth is each target's mean power over its idle phases (which have
// no requests of their own).
func idleTruth(cfg Config, sc schedule, pw *power) map[string]float64 {
	energyJ := map[string]float64{}
	seconds := map[string]float64{}
	for i, p := range sc.phases {
		if p.Name != runstore.PhaseIdle {
			continue
		}
		extra := cfg.Targets[sc.owner[i]].IdleExtraW
		energyJ[p.Target] += pw.baseJ(p.EndNs) - pw.baseJ(p.StartNs) + extra*float64(p.EndNs-p.StartNs)/1e9
		seconds[p.Target] += float64(p.EndNs-p.StartNs) / 1e9
	}
	idle := map[string]float64{}
	for _, tg := range cfg.Targets {
		if seconds[tg.Name] > 0 {
			idle[tg.Name] = energyJ[tg.Name] / seconds[tg.Name]
		}
	}
	return idle
}

// tick is one reading of meter (an index into Config.Meters) at t.
type tick struct {
	t     int64
	meter int
}

// meterTicks are every meter's reading times, from a second before start
// to a second after end, merged in time order as a recorder would write
// them.
func meterTicks(rng *rand.Rand, ms []Meter, start, end int64) []tick {
	var ticks []tick
	for mi, m := range ms {
		dt := 1e9 / m.RateHz
		for k := 0; ; k++ {
			x := start - int64(time.Second) + int64(float64(k)*dt)
			if m.JitterFrac > 0 && k > 0 {
				x += int64((rng.Float64()*2 - 1) * m.JitterFrac * dt)
			}
			if x > end+int64(time.Second) {
				break
			}
			ticks = append(ticks, tick{x, mi})
		}
	}
	slices.SortStableFunc(ticks, func(a, b tick) int { return cmp.Compare(a.t, b.t) })
	return ticks
}

// sample reads the energy at each tick and writes each meter's samples;
// a meter's first tick only starts it.
func sample(rng *rand.Rand, ms []Meter, ticks []tick, cum *cumulative) []runstore.Sample {
	type reading struct {
		started       bool
		firstJ, prevJ float64
		prevT         int64
	}
	state := make([]reading, len(ms))
	var samples []runstore.Sample
	for _, tk := range ticks {
		e := cum.at(tk.t)
		st := &state[tk.meter]
		if !st.started {
			*st = reading{started: true, firstJ: e, prevJ: e, prevT: tk.t}
			continue
		}
		w := (e - st.prevJ) / (float64(tk.t-st.prevT) / 1e9)
		st.prevJ, st.prevT = e, tk.t
		samples = channelSamples(samples, ms[tk.meter], tk.t, w, e-st.firstJ, rng.NormFloat64)
	}
	return samples
}

// channelSamples appends one reading of m at t to samples: the machine's
// interval power w and energy since the meter started split equally over
// the channels (noise gives each watts value its standard normal draw),
// and the nested channel with 0.6 of channel 0.
func channelSamples(samples []runstore.Sample, m Meter, t int64, w, sinceJ float64, noise func() float64) []runstore.Sample {
	nch := max(m.Channels, 1)
	for c := range nch {
		s := runstore.Sample{Meter: m.Name, Channel: c, TNs: t, Watts: math.NaN(), Joules: math.NaN()}
		if m.Watts {
			s.Watts = w/float64(nch) + m.NoiseW*noise()
		}
		if m.Joules {
			s.Joules = sinceJ / float64(nch)
		}
		samples = append(samples, s)
	}
	if m.Nested {
		s := runstore.Sample{Meter: m.Name, Channel: nch, TNs: t, Watts: math.NaN(), Joules: math.NaN()}
		if m.Watts {
			s.Watts = 0.6 * w / float64(nch)
		}
		if m.Joules {
			s.Joules = 0.6 * sinceJ / float64(nch)
		}
		samples = append(samples, s)
	}
	return samples
}

// meterMeta describes m in run.json.
func meterMeta(m Meter) runstore.MeterMeta {
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
	return mm
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
