// Package rapl is the meter for Intel and AMD RAPL energy counters (Running
// Average Power Limit), read from the powercap sysfs tree or, where that is
// root-only but perf is allowed, through the perf "power" PMU.
//
// Channels are one per zone (package-N, core-N, uncore-N, dram-N, psys),
// with intel-rapl-mmio duplicates removed. The meter's total never counts a
// zone together with its subzones; see TotalRule for the rule. Counters
// wrap at max_energy_range_uj; Run undoes the wrap and samples often enough
// that at most one can happen between two readings.
//
// Spec: rapl[:sysfs=DIR,rate=HZ,psys=1,dram=1,backend=sysfs|perf].
package rapl

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/academemes/harness/clock"
	"github.com/academemes/harness/meters"
)

var (
	errUnavailable = meters.ErrUnavailable
	errPermission  = meters.ErrPermission
)

// Sampling limits and assumptions.
const (
	// DefaultRate is the default sampling rate. RAPL updates about every
	// millisecond; 100 Hz gives 10 updates per sample, so the interval
	// power is steady, and costs little.
	DefaultRate = 100.0
	// MaxRate is the highest rate allowed: faster than RAPL's ~1 ms update
	// only repeats readings.
	MaxRate = 1000.0
	// MaxPlausibleWatts bounds the power of one zone, for the longest
	// interval that still sees at most one wrap. Today's largest server
	// packages draw ~500 W; 1 kW leaves margin.
	MaxPlausibleWatts = 1000.0
)

// Name is the driver's name.
const Name = "rapl"

const usage = "rapl[:sysfs=DIR,rate=HZ,psys=1,dram=1,backend=sysfs|perf]  Intel/AMD RAPL counters (powercap sysfs or perf power PMU); rate default 100, up to 1000"

func init() {
	meters.Register(meters.Driver{
		Name:  Name,
		Usage: usage,
		Open:  func(sp meters.Spec, env meters.Env) (meters.Meter, error) { return Open(sp, env) },
		Check: func(sp meters.Spec) error {
			_, err := parseOptions(sp, meters.Env{}.WithDefaults())
			return err
		},
		Detect:   Detect,
		AutoRank: 10,
	})
}

// StuckAfter is how long Run waits for a totalled counter to move before
// it gives up on the meter. Real RAPL counters advance about every
// millisecond, and no powered package draws so little that a second passes
// without a count; some virtual machines, though, expose RAPL's perf events
// or powercap files and never count, and their 0 W must not be recorded as
// a measurement.
const StuckAfter = 2 * time.Second

// Meter is an open RAPL meter. Run may be called once; it closes the
// counters when it returns.
type Meter struct {
	name     string
	backend  string
	sysfs    string // the sysfs root read, for the description
	zones    []Zone
	inTotal  []bool
	wrap     []uint64  // counter modulus per channel; 0: none known (perf: 64-bit)
	scale    []float64 // joules per count per channel
	unit     []float64 // J per step of the hardware counter per channel; 0: unknown
	src      source
	interval time.Duration
	maxGap   time.Duration // longest gap that cannot hide a second wrap
	stuck    time.Duration // give up when no totalled counter moved for this long from the start; 0: never
	clock    clock.Func
	env      meters.Env
	notes    []string

	mu     sync.Mutex
	report meters.Report
}

var (
	_ meters.Meter    = (*Meter)(nil)
	_ meters.Reporter = (*Meter)(nil)
)

// options are the parsed spec options.
type options struct {
	sysfs   string
	rate    float64
	psys    bool
	dram    bool
	backend string
}

func parseOptions(sp meters.Spec, env meters.Env) (options, error) {
	o := options{sysfs: env.SysfsRoot, rate: DefaultRate, backend: "sysfs"}
	if err := sp.Unknown("sysfs", "rate", "psys", "dram", "backend"); err != nil {
		return o, err
	}
	if sp.Arg != "" {
		return o, fmt.Errorf("%w %q: rapl takes no argument, only options (%s)", meters.ErrSpec, sp.Raw, usage)
	}
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w %q: "+format, append([]any{meters.ErrSpec, sp.Raw}, args...)...))
	}
	if v, ok := sp.Options["sysfs"]; ok {
		o.sysfs = v
	}
	if v, ok := sp.Options["rate"]; ok {
		hz, err := strconv.ParseFloat(strings.TrimSuffix(strings.ToLower(v), "hz"), 64)
		if err != nil || !(hz > 0) || hz > MaxRate {
			bad("rate=%q: want samples per second in (0, %g]", v, MaxRate)
		} else {
			o.rate = hz
		}
	}
	boolOpt := func(key string) bool {
		v, ok := sp.Options[key]
		if !ok {
			return false
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			bad("%s=%q: want 1 or 0", key, v)
		}
		return b
	}
	o.psys = boolOpt("psys")
	o.dram = boolOpt("dram")
	if v, ok := sp.Options["backend"]; ok {
		if v != "sysfs" && v != "perf" {
			bad("backend=%q: want sysfs or perf", v)
		} else {
			o.backend = v
		}
	}
	return o, errors.Join(errs...)
}

// Open opens the RAPL meter sp describes: it finds the zones, works out the
// total, and opens every counter, so that a missing interface or a refused
// read is reported now (meters.ErrUnavailable, meters.ErrPermission with
// how to grant access), not in Run.
func Open(sp meters.Spec, env meters.Env) (*Meter, error) {
	return open(sp, env, os.Open)
}

func open(sp meters.Spec, env meters.Env, openFile openFunc) (*Meter, error) {
	env = env.WithDefaults()
	o, err := parseOptions(sp, env)
	if err != nil {
		return nil, err
	}
	m := &Meter{
		name:     sp.Raw,
		backend:  o.backend,
		sysfs:    o.sysfs,
		interval: time.Duration(float64(time.Second) / o.rate),
		clock:    env.Clock,
		env:      env,
	}
	if !env.Fixture {
		// A machine's counters move; only a fixture tree, which the
		// caller names as such, holds still. Whatever the root's path:
		// `--path.sysfs /host/sys` in a container is a machine too.
		m.stuck = StuckAfter
	}
	if m.name == "" {
		m.name = Name
	}
	switch o.backend {
	case "sysfs":
		zones, dropped, err := Discover(o.sysfs)
		if err != nil {
			return nil, fmt.Errorf("rapl: %w", err)
		}
		if len(dropped) > 0 {
			m.notes = append(m.notes, "dropped intel-rapl-mmio duplicates: "+strings.Join(dropped, ", "))
		}
		m.zones = zones
		for _, z := range zones {
			m.wrap = append(m.wrap, z.MaxUJ)
			m.scale = append(m.scale, 1e-6)
			m.unit = append(m.unit, energyUnitJ(z.MaxUJ))
			if z.MaxUJ == 0 {
				m.notes = append(m.notes, fmt.Sprintf("%s (%s) has no max_energy_range_uj: a wraparound in it cannot be undone and leaves a gap", z.Channel, z.Dir))
			}
		}
	case "perf":
		pmu, err := DiscoverPerf(o.sysfs)
		if err != nil {
			return nil, err
		}
		zones, cpus, events := perfZones(pmu)
		m.zones = zones
		for _, ev := range events {
			m.wrap = append(m.wrap, 0)
			m.scale = append(m.scale, ev.Scale)
		}
		m.unit = perfUnits(zones, o.sysfs)
		// The syscall comes last, after every check that fixtures can
		// exercise.
		if m.inTotal, err = totalFor(m.zones, o, sp); err != nil {
			return nil, err
		}
		if err := m.bound(sp, o); err != nil {
			return nil, err
		}
		src, err := openPerf(pmu, cpus, events)
		if err != nil {
			return nil, err
		}
		m.src = src
		return m, nil
	}
	if m.inTotal, err = totalFor(m.zones, o, sp); err != nil {
		return nil, err
	}
	if err := m.bound(sp, o); err != nil {
		return nil, err
	}
	src, err := openSysfs(m.zones, openFile)
	if err != nil {
		return nil, err
	}
	m.src = src
	return m, nil
}

func totalFor(zones []Zone, o options, sp meters.Spec) ([]bool, error) {
	in, err := TotalRule(zones, o.psys, o.dram)
	if errors.Is(err, errUnavailable) {
		// The machine lacks the zones, not the spec a word: no ErrSpec.
		return nil, fmt.Errorf("%s: %w", sp.Raw, err)
	}
	if err != nil {
		return nil, fmt.Errorf("%w %q: %w", meters.ErrSpec, sp.Raw, err)
	}
	if o.dram && !o.psys {
		found := false
		for _, z := range zones {
			found = found || z.Domain == "dram"
		}
		if !found {
			return nil, fmt.Errorf("%w %q: dram=1 asked for, but there is no dram zone (AMD and most client parts have none)", meters.ErrSpec, sp.Raw)
		}
	}
	return in, nil
}

// bound works out the longest safe gap between readings, and refuses a
// rate so low that a counter could wrap twice between two of them.
func (m *Meter) bound(sp meters.Spec, o options) error {
	m.maxGap = time.Duration(math.MaxInt64)
	for _, z := range m.zones {
		if z.MaxUJ == 0 {
			continue
		}
		// The counter spans MaxUJ µJ; at MaxPlausibleWatts it wraps once in
		// this long.
		gap := time.Duration(float64(z.MaxUJ) * 1e-6 / MaxPlausibleWatts * float64(time.Second))
		if gap < m.maxGap {
			m.maxGap = gap
		}
	}
	if m.interval > m.maxGap {
		return fmt.Errorf("%w %q: rate=%g is too low: a counter spanning %v at %g W could wrap twice between readings; use at least %.3g Hz",
			meters.ErrSpec, sp.Raw, o.rate, m.maxGap, MaxPlausibleWatts, 1/m.maxGap.Seconds())
	}
	return nil
}

// Notes returns what Open noticed that the user should know (duplicates
// dropped, zones without a range).
func (m *Meter) Notes() []string { return append([]string(nil), m.notes...) }

// Info implements meters.Meter.
func (m *Meter) Info() meters.Info {
	var ch []meters.Channel
	for i, z := range m.zones {
		ch = append(ch, meters.Channel{Name: z.Channel, InTotal: m.inTotal[i]})
	}
	src := "powercap sysfs (" + filepath.Join(m.sysfs, "class/powercap") + ")"
	if m.backend == "perf" {
		src = "perf power PMU (found under " + filepath.Join(m.sysfs, "bus/event_source/devices/power") + ")"
	}
	prec := m.precision()
	return meters.Info{
		Name:        m.name,
		Driver:      Name,
		Kind:        meters.Measured,
		Description: fmt.Sprintf("RAPL energy counters from %s, %d zones, every %v; %s", src, len(m.zones), m.interval, prec),
		Channels:    ch,
		Precision:   prec,
	}
}

// accuracySource is what is known of RAPL's accuracy: no vendor states a
// figure, so RelError stays 0 ("not stated").
const accuracySource = "accuracy not stated by Intel or AMD; modelled on Sandy Bridge, " +
	"measured with Haswell's integrated voltage regulators (Hackenberg et al., IPDPSW 2015, doi:10.1109/IPDPSW.2015.70); " +
	"DRAM readings offset differently per system (Desrochers et al., MEMSYS 2016)"

// precision is what the counters resolve: each moves in its zone's energy
// unit, so the total's step is the sum of the units of the zones in it, and
// one reading's power steps by that over the interval.
func (m *Meter) precision() meters.Precision {
	var step float64
	for i, in := range m.inTotal {
		if !in {
			continue
		}
		if m.unit[i] == 0 {
			return meters.Precision{Source: "energy unit unknown (" + m.zones[i].Channel + " has no max_energy_range_uj to derive it from); " + accuracySource}
		}
		step += m.unit[i]
	}
	return meters.Precision{
		EnergyStepJ: step,
		PowerStepW:  step / m.interval.Seconds(),
		Source: "energy step: the energy unit of each counter in the total, max_energy_range_uj / (2^32-1) " +
			"(the kernel's intel_rapl_common sets the range to 0xFFFFFFFF units), summed; power step: that over the interval; " + accuracySource,
	}
}

// energyUnitJ is the step in which a zone's counter moves, the CPU's
// energy status unit, from its range: the kernel sets max_energy_range_uj
// to the 32-bit counter's span, 0xFFFFFFFF units (intel_rapl_common.c,
// get_max_energy_counter). That is 61 µJ (2^-14 J) on the Intel client
// fixture and 15.3 µJ (2^-16 J) on AMD and on Intel DRAM zones; never
// finer than energy_uj's 1 µJ. 0: no range, unit unknown.
func energyUnitJ(maxUJ uint64) float64 {
	if maxUJ == 0 {
		return 0
	}
	return max(float64(maxUJ)/math.MaxUint32, 1) * 1e-6
}

// perfUnits finds the energy unit of each perf channel from the powercap
// zone of the same name, whose max_energy_range_uj stays world-readable
// where energy_uj is not. perf scales counts to 2^-32 J, but each still
// moves in the hardware's unit. 0 where there is no such zone.
func perfUnits(zones []Zone, sysfs string) []float64 {
	units := make([]float64, len(zones))
	sz, _, err := Discover(sysfs)
	if err != nil {
		return units
	}
	for i, z := range zones {
		for _, s := range sz {
			if s.Channel == z.Channel {
				units[i] = energyUnitJ(s.MaxUJ)
			}
		}
	}
	return units
}

// Run implements meters.Meter. It emits, per channel, a first sample at the
// start with Joules 0 and Watts NaN (no interval yet), then one per tick
// with the interval's mean power and the cumulative energy since the start,
// wraparound undone. All channels of one reading share its time stamp,
// taken when the reading completes.
func (m *Meter) Run(ctx context.Context, emit func(meters.Sample)) error {
	if m.src == nil {
		return errors.New("rapl: Run called twice (the meter closes its counters when Run returns)")
	}
	defer func() {
		m.src.Close()
		m.src = nil
	}()
	n := len(m.zones)
	prev := make([]uint64, n)
	cur := make([]uint64, n)
	joules := make([]float64, n)
	var st runStats
	defer func() { m.setReport(st) }()

	if err := m.src.Read(prev); err != nil {
		return err
	}
	prevT := m.clock()
	startT, first, moved := prevT, slices.Clone(prev), false
	for i := range n {
		emit(meters.Sample{Channel: i, T: prevT, Watts: meters.NaN, Joules: 0})
	}
	tick := time.NewTicker(m.interval)
	defer tick.Stop()
	consecutiveErrs := 0
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		if err := m.src.Read(cur); err != nil {
			st.readErrors++
			consecutiveErrs++
			if errors.Is(err, errPermission) || consecutiveErrs >= 100 {
				return err
			}
			continue
		}
		consecutiveErrs = 0
		t := m.clock()
		gap := t.Sub(prevT)
		dt := gap.Seconds()
		if dt <= 0 {
			continue // two readings in one clock tick: nothing to divide by
		}
		if gap > 2*m.interval {
			st.late++
			if st.late == 1 {
				m.env.Logf("rapl: falling behind: %v between readings, asked for %v", gap.Round(time.Microsecond), m.interval)
			}
			if gap > st.worstGap {
				st.worstGap = gap
			}
		}
		if gap > m.maxGap {
			st.overGap++
		}
		if gap > m.maxGap && st.overGap == 1 {
			m.env.Logf("rapl: %v between readings exceeds %v: a counter may have wrapped more than once, energy may be short", gap.Round(time.Millisecond), m.maxGap)
		}
		for i := range n {
			d, ok := delta(prev[i], cur[i], m.wrap[i])
			w := meters.NaN
			if ok {
				if cur[i] < prev[i] {
					st.wraps++
				}
				e := float64(d) * m.scale[i]
				joules[i] += e
				w = e / dt
			} else {
				st.unwrappable++
			}
			emit(meters.Sample{Channel: i, T: t, Watts: w, Joules: joules[i]})
		}
		st.samples++
		if !moved {
			moved = m.totalMoved(first, cur)
			if !moved && m.stuck > 0 && t.Sub(startT) >= m.stuck {
				return fmt.Errorf("%w: %s: no counter in the total moved in %v of readings; this machine exposes RAPL but does not count (seen on virtual machines), so its 0 W would not be a measurement", errUnavailable, m.name, t.Sub(startT).Round(time.Millisecond))
			}
		}
		prev, cur = cur, prev
		prevT = t
	}
}

type runStats struct {
	samples, readErrors, late, overGap, wraps, unwrappable int64
	worstGap                                               time.Duration
}

func (m *Meter) setReport(st runStats) {
	r := meters.Report{
		Counters: map[string]int64{
			"readings":         st.samples,
			"read_errors":      st.readErrors,
			"late_readings":    st.late,
			"wraps":            st.wraps,
			"unwrappable_gaps": st.unwrappable,
		},
		Details: map[string]any{
			"backend":      m.backend,
			"interval_s":   m.interval.Seconds(),
			"max_gap_s":    m.maxGap.Seconds(),
			"total_rule":   totalRuleText(m.zones, m.inTotal),
			"zones":        zoneDetails(m.zones),
			"open_notes":   m.notes,
			"max_plaus_w":  MaxPlausibleWatts,
			"joules_basis": "counter deltas (wraparound undone), not integrated power",
		},
	}
	if st.late > 0 {
		r.Warnings = append(r.Warnings, fmt.Sprintf("rapl fell behind: %d of %d readings came more than twice the %v interval after the previous one (worst %v)",
			st.late, st.samples, m.interval, st.worstGap.Round(time.Microsecond)))
	}
	if st.overGap > 0 {
		r.Warnings = append(r.Warnings, fmt.Sprintf("rapl: %d gaps between readings exceeded %v, in which a counter could wrap twice; energy may be short", st.overGap, m.maxGap))
	}
	if st.unwrappable > 0 {
		r.Warnings = append(r.Warnings, fmt.Sprintf("rapl: %d intervals of zones without max_energy_range_uj went backwards and have no figure", st.unwrappable))
	}
	m.mu.Lock()
	m.report = r
	m.mu.Unlock()
}

func totalRuleText(zones []Zone, in []bool) string {
	var parts []string
	for i, z := range zones {
		if in[i] {
			parts = append(parts, z.Channel)
		}
	}
	return "total = " + strings.Join(parts, " + ")
}

func zoneDetails(zones []Zone) []string {
	var out []string
	for _, z := range zones {
		out = append(out, fmt.Sprintf("%s=%s", z.Channel, z.Dir))
	}
	return out
}

// Report implements meters.Reporter.
func (m *Meter) Report() meters.Report {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.report
}

// Detect implements the driver's detection for `auto` and `meters list`:
// one candidate for the sysfs backend with a line per zone, and, when sysfs
// is not usable but the perf power PMU exists, one for the perf backend.
func Detect(env meters.Env) []meters.Candidate {
	return detect(env, os.Open)
}

func detect(env meters.Env, openFile openFunc) []meters.Candidate {
	env = env.WithDefaults()
	c := meters.Candidate{Spec: Name, Description: "RAPL energy counters, powercap sysfs"}
	zones, dropped, err := Discover(env.SysfsRoot)
	if err != nil {
		c.Reason = err.Error()
		return append([]meters.Candidate{c}, detectPerf(env)...)
	}
	in, _ := TotalRule(zones, false, false)
	readable := 0
	for i, z := range zones {
		state := "readable"
		if s, err := openSysfs([]Zone{z}, openFile); err != nil {
			state = "NOT readable"
			if errors.Is(err, errPermission) {
				state += " (permission denied)"
			}
		} else {
			s.Close()
			readable++
		}
		rng := "range unknown (no max_energy_range_uj)"
		if z.MaxUJ > 0 {
			rng = fmt.Sprintf("range %.2f J", float64(z.MaxUJ)*1e-6)
		}
		total := ""
		if in != nil && in[i] {
			total = ", in total"
		}
		c.Details = append(c.Details, fmt.Sprintf("%-10s %-16s %s, %s%s", z.Channel, z.Dir, state, rng, total))
	}
	if len(dropped) > 0 {
		c.Details = append(c.Details, "dropped intel-rapl-mmio duplicates: "+strings.Join(dropped, ", "))
	}
	c.Description = fmt.Sprintf("RAPL energy counters, powercap sysfs, %d zones", len(zones))
	m, err := open(meters.Spec{Raw: Name, Driver: Name, Options: map[string]string{}}, env, openFile)
	if err != nil {
		c.Reason = err.Error()
		if readable == 0 {
			return append([]meters.Candidate{c}, detectPerf(env)...)
		}
		return []meters.Candidate{c}
	}
	defer m.src.Close()
	c.Details = append(c.Details, "precision: "+m.precision().String())
	if err := m.probe(env); err != nil {
		c.Reason = err.Error()
		return []meters.Candidate{c}
	}
	c.Usable = true
	return []meters.Candidate{c}
}

// probeFor is how long detection waits for a counter to move: about a
// hundred of RAPL's millisecond updates.
const probeFor = 100 * time.Millisecond

// probe checks, on a machine, that a counter in the total moves within
// probeFor, so that auto passes over a machine that exposes RAPL but does
// not count (Run would give up on it after StuckAfter). A fixture's
// counters never move, so a tree the caller calls a fixture is not probed.
func (m *Meter) probe(env meters.Env) error {
	if env.Fixture {
		return nil
	}
	return m.moves(probeFor, time.Millisecond)
}

// moves reads the counters every poll until one in the total differs from
// the first reading, or fails after wait.
func (m *Meter) moves(wait, poll time.Duration) error {
	first := make([]uint64, len(m.zones))
	cur := make([]uint64, len(m.zones))
	if err := m.src.Read(first); err != nil {
		return err
	}
	for deadline := time.Now().Add(wait); ; {
		if err := m.src.Read(cur); err != nil {
			return err
		}
		if m.totalMoved(first, cur) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: no counter in the total moved in %v: this machine exposes RAPL but does not count (seen on virtual machines)", errUnavailable, wait)
		}
		time.Sleep(poll)
	}
}

// detectPerf offers the perf backend. It opens events only on a machine:
// on a fixture tree the PMU type number is made up, and opening it would
// count something else or fail for reasons that say nothing.
func detectPerf(env meters.Env) []meters.Candidate {
	pmu, err := DiscoverPerf(env.SysfsRoot)
	if err != nil {
		return nil
	}
	c := meters.Candidate{Spec: Name + ":backend=perf", Description: fmt.Sprintf("RAPL through the perf power PMU (type %d), %d events on CPUs %v", pmu.Type, len(pmu.Events), pmu.CPUs)}
	for _, ev := range pmu.Events {
		c.Details = append(c.Details, fmt.Sprintf("%-12s %-8s config %#x, %.4g J per count", ev.Name, ev.Domain, ev.Config, ev.Scale))
	}
	if env.Fixture {
		c.Reason = "not tried: the sysfs root is a fixture tree, so the PMU found is not this machine's"
		return []meters.Candidate{c}
	}
	m, err := Open(meters.Spec{Raw: c.Spec, Driver: Name, Options: map[string]string{"backend": "perf"}}, env)
	if err != nil {
		c.Reason = err.Error()
		return []meters.Candidate{c}
	}
	defer m.src.Close()
	if err := m.probe(env); err != nil {
		c.Reason = err.Error()
		return []meters.Candidate{c}
	}
	c.Usable = true
	return []meters.Candidate{c}
}

// totalMoved reports whether a counter in the total differs between two
// readings: a machine that exposes RAPL but does not count never does.
func (m *Meter) totalMoved(first, cur []uint64) bool {
	for i := range cur {
		if m.inTotal[i] && cur[i] != first[i] {
			return true
		}
	}
	return false
}
