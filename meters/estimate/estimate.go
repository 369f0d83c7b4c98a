// Package estimate is the model meter: it estimates whole-machine power from
// CPU utilisation read from /proc/stat. It measures nothing; every figure it
// gives is labelled "estimate (model)". It is what `auto` falls back to when
// no measured meter is readable, so that a run always has some energy axis.
//
// The model is linear in utilisation:
//
//	P(u) = idle + u × cores × max_per_core
//
// where u is the busy share of all CPUs over the last interval, idle the
// whole machine's power with every CPU idle, and max_per_core the power one
// fully busy core adds above idle. The defaults come from the Cloud Carbon
// Footprint methodology's per-vCPU figures (0.74 W at 0 % and 3.5 W at
// 100 %, averaged over SPECpower results); firmware-notes/estimate.md says
// more. A linear model is a rough one: real machines are not linear, turbo
// and memory traffic are invisible to it, and its idle figure is a guess.
//
// Spec: estimate[:idle=W,max_per_core=W|max=W,cores=N,rate=HZ,procfs=DIR].
package estimate

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/academemes/harness/clock"
	"github.com/academemes/harness/meters"
)

// Defaults of the model, per CPU as /proc/stat counts them (a hardware
// thread, a vCPU). Source: Cloud Carbon Footprint, "Methodology", compute
// coefficients: AWS average minimum 0.74 W and maximum 3.5 W per vCPU,
// derived from SPECpower_ssj2008 results (https://www.cloudcarbonfootprint.org/docs/methodology/).
const (
	// DefaultIdlePerCore is the idle power per CPU; idle defaults to this
	// times the CPU count.
	DefaultIdlePerCore meters.Watts = 0.74
	// DefaultMaxPerCore is what one fully busy CPU adds above idle:
	// 3.5 W - 0.74 W.
	DefaultMaxPerCore meters.Watts = 3.5 - 0.74
	// DefaultRate is the sampling rate. /proc/stat moves in 10 ms ticks, so
	// faster than 10 Hz gives few ticks per interval on a small machine.
	DefaultRate = 10.0
	// MaxRate is the highest rate allowed: one USER_HZ tick per sample.
	MaxRate = 100.0
	// MaxWatts bounds every power the model is given and the model's
	// ceiling: 100 kW, a full rack, far above any one machine, so that a
	// typo (idle=1e308) is refused rather than integrated to infinite
	// joules.
	MaxWatts meters.Watts = 100_000
	// MaxCores bounds cores=: more CPUs than any one kernel runs.
	MaxCores = 1 << 16
	// Tick is /proc/stat's unit of CPU time (USER_HZ = 100 on Linux).
	Tick = 10 * time.Millisecond
)

// RelError is the model's own relative error, stated conservatively as a
// factor of two either way (1.0 = ±100 %). No source states one: Cloud
// Carbon Footprint gives averages, not errors. Its own coefficients per
// CPU family show how far an average sits from a given machine: against
// the AWS averages of 0.74 W idle and 3.5 W full per vCPU, the families
// averaged run from 0.47 W (AMD EPYC 2nd gen) to 3.04 W (Ivy Bridge) idle
// and from 1.69 W to 8.58 W (Sandy Bridge) full, so the average is off by
// -76 % to +57 % at idle and -59 % to +107 % at full load
// (packages/aws/src/domain/AwsFootprintEstimationConstants.ts,
// cloud-carbon-footprint commit 3668d2e). That is for server CPUs alone,
// before what the model cannot see (memory, disks, fans, the power supply,
// frequency). Figures given with idle= and max= carry their own source's
// error, which the harness cannot know, so the same figure is kept.
const RelError = 1.0

// precisionSource says where RelError and the power step come from.
const precisionSource = "relative error: a conservative factor of two; Cloud Carbon Footprint states no error, and its own per-family " +
	"coefficients sit -76 % to +57 % (idle) and -59 % to +107 % (full load) from the averages the defaults use " +
	"(firmware-notes/estimate.md); power step: one 10 ms /proc/stat tick of CPU time in an interval"

// Driver name and spec options.
const (
	Name  = "estimate"
	usage = "estimate[:idle=W,max_per_core=W|max=W,cores=N,rate=HZ,procfs=DIR]  model from CPU utilisation (/proc/stat); defaults idle=0.74W x CPUs, max_per_core=2.76W, rate=10"
)

func init() {
	meters.Register(meters.Driver{
		Name:  Name,
		Usage: usage,
		Open:  func(sp meters.Spec, env meters.Env) (meters.Meter, error) { return Open(sp, env) },
		// Opening reads /proc/stat and nothing else; only a bad option
		// is the spec's fault.
		Check: func(sp meters.Spec) error {
			if _, err := Open(sp, meters.Env{}); errors.Is(err, meters.ErrSpec) {
				return err
			}
			return nil
		},
		Detect:   Detect,
		AutoRank: 100,
	})
}

// Model is the linear power model.
type Model struct {
	Idle       meters.Watts // whole machine, all CPUs idle
	MaxPerCore meters.Watts // added by one fully busy CPU
	Cores      int
}

// Power is the model's power at utilisation u in [0, 1] of all CPUs.
func (m Model) Power(u float64) meters.Watts {
	return m.Idle + meters.Watts(u*float64(m.Cores))*m.MaxPerCore
}

// Max is the model's power with every CPU busy.
func (m Model) Max() meters.Watts { return m.Power(1) }

// Meter is the estimate meter.
type Meter struct {
	name     string
	model    Model
	cpus     int // CPUs /proc/stat counts, whose ticks make up the utilisation
	interval time.Duration
	path     string // of the stat file, for messages
	clock    clock.Func
	// readStat returns the content of /proc/stat; tests replace it.
	readStat func() ([]byte, error)

	mu     sync.Mutex
	report meters.Report
}

var (
	_ meters.Meter    = (*Meter)(nil)
	_ meters.Reporter = (*Meter)(nil)
)

// Open opens the estimate meter from sp. It reads /proc/stat once, to count
// the CPUs and to fail now rather than in Run when it is unreadable.
func Open(sp meters.Spec, env meters.Env) (*Meter, error) {
	env = env.WithDefaults()
	if err := sp.Unknown("idle", "max_per_core", "max", "cores", "rate", "procfs"); err != nil {
		return nil, err
	}
	root := env.ProcfsRoot
	if v, ok := sp.Options["procfs"]; ok {
		root = v
	}
	path := filepath.Join(root, "stat")
	m := &Meter{
		name:     sp.Raw,
		interval: time.Duration(float64(time.Second) / DefaultRate),
		path:     path,
		clock:    env.Clock,
		readStat: func() ([]byte, error) { return os.ReadFile(path) },
	}
	if m.name == "" {
		m.name = Name
	}
	data, err := m.readStat()
	if err != nil {
		return nil, statError(path, err)
	}
	st, err := ParseStat(data)
	if err != nil {
		return nil, fmt.Errorf("%w: estimate: %s: %w", meters.ErrUnavailable, path, err)
	}

	// Collect every problem with the options at once.
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w %q: "+format, append([]any{meters.ErrSpec, sp.Raw}, args...)...))
	}
	m.model.Cores = st.Cores
	m.cpus = st.Cores
	if v, ok := sp.Options["cores"]; ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxCores {
			bad("cores=%q: want a whole number of CPUs from 1 to %d", v, MaxCores)
		} else {
			m.model.Cores = n
		}
	}
	m.model.Idle = DefaultIdlePerCore * meters.Watts(m.model.Cores)
	m.model.MaxPerCore = DefaultMaxPerCore
	watts := func(key string) (meters.Watts, bool) {
		v, ok := sp.Options[key]
		if !ok {
			return 0, false
		}
		w, err := meters.ParseWatts(v)
		if err != nil {
			bad("%s: %v", key, err)
			return 0, false
		}
		if w < 0 {
			bad("%s=%s: power cannot be negative", key, v)
			return 0, false
		}
		if w > MaxWatts {
			bad("%s=%s: want at most %g W", key, v, float64(MaxWatts))
			return 0, false
		}
		return w, true
	}
	if w, ok := watts("idle"); ok {
		m.model.Idle = w
	}
	_, hasPer := sp.Options["max_per_core"]
	_, hasMax := sp.Options["max"]
	if hasPer && hasMax {
		bad("give max_per_core (per CPU, above idle) or max (whole machine at full load), not both")
	}
	if w, ok := watts("max_per_core"); ok {
		m.model.MaxPerCore = w
	}
	if w, ok := watts("max"); ok && !hasPer {
		if w < m.model.Idle {
			bad("max=%v is below idle=%v", w, m.model.Idle)
		} else {
			m.model.MaxPerCore = (w - m.model.Idle) / meters.Watts(m.model.Cores)
		}
	}
	if mx := m.model.Max(); len(errs) == 0 && !(mx <= MaxWatts) {
		bad("the model reaches %v with every CPU busy (idle %v + %d CPUs × %v); want at most %g W", mx, m.model.Idle, m.model.Cores, m.model.MaxPerCore, float64(MaxWatts))
	}
	if v, ok := sp.Options["rate"]; ok {
		hz, err := strconv.ParseFloat(v, 64)
		if err != nil || !(hz > 0) || hz > MaxRate {
			bad("rate=%q: want samples per second in (0, %g]; /proc/stat moves in 10 ms ticks", v, MaxRate)
		} else {
			m.interval = time.Duration(float64(time.Second) / hz)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return m, nil
}

// statError turns a failed read of /proc/stat into the sentinel callers
// branch on.
func statError(path string, err error) error {
	if errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("%w: estimate: %s: %w", meters.ErrPermission, path, err)
	}
	return fmt.Errorf("%w: estimate: cannot read %s: %w", meters.ErrUnavailable, path, err)
}

// Detect reports the estimate as usable when /proc/stat is readable and
// parses.
func Detect(env meters.Env) []meters.Candidate {
	env = env.WithDefaults()
	c := meters.Candidate{Spec: Name, Description: "estimate (model) from CPU utilisation in /proc/stat"}
	m, err := Open(meters.Spec{Raw: Name, Driver: Name, Options: map[string]string{}}, env)
	if err != nil {
		c.Reason = err.Error()
		return []meters.Candidate{c}
	}
	c.Usable = true
	c.Description = m.Info().Description
	c.Details = []string{
		fmt.Sprintf("CPUs %d, idle %v, +%v per busy CPU, %v at full load (the ceiling)", m.model.Cores, m.model.Idle, m.model.MaxPerCore, m.model.Max()),
		fmt.Sprintf("read from %s every %v", m.path, m.interval),
		"precision: " + m.precision().String(),
	}
	return []meters.Candidate{c}
}

// Model returns the model the meter uses.
func (m *Meter) Model() Model { return m.model }

// Info implements meters.Meter.
func (m *Meter) Info() meters.Info {
	return meters.Info{
		Name:   m.name,
		Driver: Name,
		Kind:   meters.Model,
		Description: fmt.Sprintf("estimate (model): CPU utilisation from %s, %d CPUs, %v idle + %v per busy CPU (%v at full load); not a measurement",
			m.path, m.model.Cores, m.model.Idle, m.model.MaxPerCore, m.model.Max()),
		Channels:  []meters.Channel{{Name: "machine (model)", InTotal: true, FullScaleW: float64(m.model.Max())}},
		Precision: m.precision(),
	}
}

// precision is the model's step and error. Utilisation moves in whole
// ticks of CPU time: one tick in an interval of all the CPUs' ticks moves
// the power by cores × max_per_core / (cpus × ticks per interval).
func (m *Meter) precision() meters.Precision {
	ticks := float64(m.cpus) * float64(m.interval) / float64(Tick)
	return meters.Precision{
		PowerStepW: float64(m.model.Cores) * float64(m.model.MaxPerCore) / ticks,
		RelError:   RelError,
		Source:     precisionSource,
	}
}

// Run implements meters.Meter. Each sample carries the model's power over
// the interval that ended at its time stamp and the cumulative energy: the
// first interval's power times its length, then the trapezoid rule over the
// meter's own samples, as the analysis would integrate them.
func (m *Meter) Run(ctx context.Context, emit func(meters.Sample)) error {
	data, err := m.readStat()
	if err != nil {
		return statError(m.path, err)
	}
	prev, err := ParseStat(data)
	if err != nil {
		return fmt.Errorf("estimate: %s: %w", m.path, err)
	}
	prevT := m.clock()
	tick := time.NewTicker(m.interval)
	defer tick.Stop()
	var (
		joules float64
		prevW  float64
		u      float64
		n      int64
	)
	for {
		select {
		case <-ctx.Done():
			m.setReport(n)
			return nil
		case <-tick.C:
		}
		data, err := m.readStat()
		if err != nil {
			m.setReport(n)
			return statError(m.path, err)
		}
		cur, err := ParseStat(data)
		if err != nil {
			m.setReport(n)
			return fmt.Errorf("estimate: %s: %w", m.path, err)
		}
		t := m.clock()
		if nu, ok := Utilisation(prev.Total, cur.Total); ok {
			u = nu
		}
		w := float64(m.model.Power(u))
		dt := t.Sub(prevT).Seconds()
		if n == 0 {
			joules = w * dt
		} else {
			joules += (w + prevW) / 2 * dt
		}
		emit(meters.Sample{Channel: 0, T: t, Watts: w, Joules: joules})
		n++
		prev, prevT, prevW = cur, t, w
	}
}

func (m *Meter) setReport(samples int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.report = meters.Report{
		Counters: map[string]int64{"samples": samples},
		Warnings: []string{"estimate (model): power is modelled from CPU utilisation, not measured"},
		Details: map[string]any{
			"model":              "P = idle + utilisation x cpus x max_per_core",
			"idle_w":             float64(m.model.Idle),
			"max_per_core_w":     float64(m.model.MaxPerCore),
			"cpus":               m.model.Cores,
			"interval_s":         m.interval.Seconds(),
			"source_of_defaults": "Cloud Carbon Footprint per-vCPU coefficients (0.74 W idle, 3.5 W full), from SPECpower",
		},
	}
}

// Report implements meters.Reporter.
func (m *Meter) Report() meters.Report {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.report
}
