package energy

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/academemes/harness/harness/internal/carbon"
	"github.com/academemes/harness/harness/internal/runstore"
	"github.com/academemes/harness/meters"
)

// Options are the analysis's parameters. DefaultOptions gives the ones
// Analyze uses.
type Options struct {
	// Confidence of every interval (0.95).
	Confidence float64
	// EdgeCut is the fraction of a measured phase cut at each end to leave
	// its steady window; at least twice the phase's p99 latency is cut, at
	// most a quarter of the phase.
	EdgeCut float64
	// SubWindow is the length of the windows of the marginal regression,
	// the idle noise check and the per-window values the report plots. It
	// grows to hold at least five samples of the meter. Sub-windows of one
	// phase are correlated, so they describe spread and never feed an
	// interval or a test.
	SubWindow time.Duration
	// MinReps is the fewest repetitions from which a figure gets an
	// interval (and compare a test): the repetition is the unit of
	// replication, and with fewer there is no honest estimate of its
	// spread.
	MinReps int
	// Thresholds for warnings.
	MinCoverage      float64       // sample coverage of a window
	NoisyIdleCV      float64       // coefficient of variation of idle power
	MaxClockResidual time.Duration // RMS residual of a device clock fit
	MaxErrorRate     float64       // failed requests in a phase
	// PowerPoints is the most points per meter in Detail.Power.
	PowerPoints int
	// MaxClockBound is the largest bound on a remote meter's sample
	// times (agent:), as a share of the median request's latency, that
	// passes without a warning: beyond it, which requests a sample
	// overlaps is uncertain.
	MaxClockBound float64
}

// DefaultOptions are the parameters Analyze uses.
func DefaultOptions() Options {
	return Options{
		Confidence:       0.95,
		EdgeCut:          0.05,
		SubWindow:        time.Second,
		MinReps:          3,
		MinCoverage:      0.9,
		NoisyIdleCV:      0.10,
		MaxClockResidual: time.Millisecond,
		MaxErrorRate:     0.01,
		PowerPoints:      1500,
		MaxClockBound:    0.1,
	}
}

// Detail is what the report plots beyond summary.json.
type Detail struct {
	Groups map[GroupKey]*GroupDetail
	// Power is each meter's total power over the run, binned.
	Power []PowerSeries
}

// GroupKey names one target's measured phase on one meter.
type GroupKey struct{ Target, Phase, Meter string }

// GroupDetail holds the values behind a phase's intervals and plots.
type GroupDetail struct {
	// PerRequestJ is the dynamic energy attributed to each successful
	// request wholly inside a steady window.
	PerRequestJ []float64
	// RepJ and RepDynamicJ are joules per request of each repetition.
	RepJ, RepDynamicJ []float64
	// Rate and Power are the sub-windows' request rate (1/s) and mean
	// power (W), this phase's and the target's idle ones.
	Rate, Power []float64
}

// PowerSeries is a meter's total power over time: W[i] is the mean power
// in the bin ending at T[i] (Unix ns).
type PowerSeries struct {
	Meter    string
	Label    string
	Estimate bool
	T        []int64
	W        []float64
}

// ErrNoData means a run holds nothing to analyse.
var ErrNoData = errors.New("energy: nothing to analyse")

// Analyze is AnalyzeDetail with DefaultOptions, for summary.json.
func Analyze(run *runstore.Run) (*Summary, error) {
	s, _, err := AnalyzeDetail(run, DefaultOptions())
	return s, err
}

// AnalyzeDetail analyses a run: per target and measured phase, request
// and latency figures, and per meter the energy, idle power, joules per
// request with intervals, the marginal estimate and the per-request
// distribution.
func AnalyzeDetail(run *runstore.Run, opt Options) (*Summary, *Detail, error) {
	if run == nil {
		return nil, nil, fmt.Errorf("%w: no run", ErrNoData)
	}
	if len(run.Meta.Phases) == 0 {
		return nil, nil, fmt.Errorf("%w: run %s records no phases", ErrNoData, run.Meta.ID)
	}
	a := &analysis{run: run, opt: opt}
	a.meters = buildMeters(run.Meta.Meters, run.Samples)
	a.cpu = buildCPU(run.CPU)
	a.index()
	s := &Summary{
		Version:  SummaryVersion,
		RunID:    run.Meta.ID,
		Scenario: run.Meta.Scenario,
		Status:   run.Meta.Status,
		Method:   a.method(),
		Validity: run.Meta.Validity,
	}
	d := &Detail{Groups: map[GroupKey]*GroupDetail{}}
	s.Warnings = a.runWarnings()
	a.carbonSetup(s)
	for _, m := range a.meters {
		s.Meters = append(s.Meters, a.meterSummary(m))
	}
	for _, t := range a.targetList() {
		ts, groups := a.target(t)
		s.Targets = append(s.Targets, ts)
		maps.Copy(d.Groups, groups)
	}
	s.ColdStarts = coldStarts(s.Targets, run.Meta, a.opt)
	s.StartUpRatios = a.startUpRatios(s.Targets)
	for _, m := range a.meters {
		d.Power = append(d.Power, a.power(m))
	}
	return s, d, nil
}

type reqKey struct {
	target, phase string
	rep           int
}

type analysis struct {
	run    *runstore.Run
	opt    Options
	meters []*meterSeries
	// reqs indexes run.Requests by target, phase and repetition.
	reqs map[reqKey][]int
	// phases by target, in run order.
	phases map[string][]runstore.Phase
	// carbon is run.json's carbon: block; nil when it has none.
	carbon *carbon.Config
	// cpu is cpu.csv, the attribution model's input; nil without one.
	cpu *cpuSeries
}

func (a *analysis) index() {
	a.reqs = map[reqKey][]int{}
	for i, r := range a.run.Requests {
		k := reqKey{r.Target, r.Phase, r.Rep}
		a.reqs[k] = append(a.reqs[k], i)
	}
	a.phases = map[string][]runstore.Phase{}
	for _, p := range a.run.Meta.Phases {
		a.phases[p.Target] = append(a.phases[p.Target], p)
	}
}

func (a *analysis) method() Method {
	return Method{
		Energy:      "power samples integrated with the trapezoid rule, or the device's energy counter where it has one; window energy = C(end) - C(start), C interpolated linearly",
		Idle:        "mean power over the target's idle phase (edges cut), interpolated linearly in time between repetitions to follow drift",
		Window:      "each measured phase less its ramp edges: max(edge fraction, 2x p99 latency) at each end, at most a quarter of the phase",
		PerRequest:  "window energy / successful requests in the window, each request counted by the fraction of its time in flight that lies inside the window; dynamic = energy - idle power x window length",
		Attribution: "each sampling interval's dynamic energy shared among the requests in flight in proportion to their overlap; intervals with none in flight spread over the window's requests by their time in flight; the distribution is over requests wholly inside a steady window",
		Marginal:    "least-squares slope of sub-window power on request rate over the target's idle and this phase's sub-windows; its interval from the spread of each repetition's own slope",
		Interval:    fmt.Sprintf("the repetition is the unit of replication: t interval over the per-repetition values, none with fewer than %d repetitions; sub-windows of a phase are correlated and never feed an interval", a.opt.MinReps),
		Resolution:  "each meter's declared resolution and accuracy widen every interval: half-width + resolution per request (one counter step, or one power step over the window, divided by the window's requests) + relative error x value (a gain error, the same in every repetition, so added rather than averaged); a figure whose energy per window is smaller than the resolution is reported as below resolution, with no number",
		ColdStart:   "for targets of the same kind and function run cold (or from a snapshot) and warm: cold minus warm per request, Welch t interval over the two sets of repetitions, widened by both sides' resolution; whole-device uWh per request only where both ran at the same offered rate",
		StartUp:     "for a function served by a wasm target run cold or from a snapshot and by a target of another kind whose requests each pay a start: the other's median start-up (X-Start-Ns of requests marked X-Cold-Start) over the wasm target's, per repetition; the geometric mean of those ratios with a t interval on their logarithms",
		Confidence:  a.opt.Confidence,
		EdgeCut:     a.opt.EdgeCut,
		SubWindowS:  a.opt.SubWindow.Seconds(),
		MinCoverage: a.opt.MinCoverage,
	}
}

func (a *analysis) runWarnings() []string {
	var w []string
	if st := a.run.Meta.Status; st != runstore.StatusComplete {
		w = append(w, fmt.Sprintf("run status is %q: figures cover only the phases recorded", st))
	}
	w = append(w, a.run.Warnings...)
	w = append(w, a.run.Meta.Warnings...)
	if len(a.meters) == 0 {
		w = append(w, "no meter samples: no energy figures")
	}
	for _, m := range a.meters {
		if m.meta.Kind == runstore.MeterModel {
			w = append(w, fmt.Sprintf("meter %s is a model: its figures are estimates, not measurements", m.meta.Name))
		}
		if m.meta.Error != "" {
			w = append(w, fmt.Sprintf("meter %s stopped early: %s", m.meta.Name, m.meta.Error))
		}
		if len(m.channels) == 0 {
			w = append(w, fmt.Sprintf("meter %s has no samples on channels counted in its total", m.meta.Name))
		}
		for _, c := range m.channels {
			if c.decreases > 0 {
				w = append(w, fmt.Sprintf("meter %s channel %d: the energy counter went down %d times (a reset or an undone wraparound); windows across it are wrong", m.meta.Name, c.index, c.decreases))
			}
		}
		if r := m.meta.Report; r != nil {
			for _, s := range r.Warnings {
				w = append(w, fmt.Sprintf("meter %s: %s", m.meta.Name, s))
			}
			if f := r.ClockFit; f != nil && f.ResidualRMSNs > float64(a.opt.MaxClockResidual) {
				w = append(w, fmt.Sprintf("meter %s: clock fit residual %.2f ms RMS (max %.2f ms) exceeds %v: sample times are uncertain", m.meta.Name, f.ResidualRMSNs/1e6, f.ResidualMaxNs/1e6, a.opt.MaxClockResidual))
			}
			if f := r.ClockFit; f != nil && f.BoundNs > 0 {
				if med, ok := a.medianLatencyNs(); ok && f.BoundNs > a.opt.MaxClockBound*med {
					w = append(w, fmt.Sprintf("meter %s: its sample times are known to ±%.3g ms (the bound of its clock fit), %.0f %% of the median request's %.3g ms: which requests a sample overlaps is uncertain, so the per-request distribution is blurred (whole-window figures are not)",
						m.meta.Name, f.BoundNs/1e6, 100*f.BoundNs/med, med/1e6))
				}
			}
		}
		w = append(w, a.hostWarnings(m.meta)...)
	}
	return w
}

// medianLatencyNs is the median latency of the run's successful requests.
func (a *analysis) medianLatencyNs() (float64, bool) {
	var lat []float64
	for _, r := range a.run.Requests {
		if r.OK() && r.LatencyNs > 0 {
			lat = append(lat, float64(r.LatencyNs))
		}
	}
	if len(lat) == 0 {
		return 0, false
	}
	slices.Sort(lat)
	return lat[len(lat)/2], true
}

// hostWarnings names the targets served from another machine than the
// one meter m measures: its figures for them are not their energy. (When
// no meter measures a target's machine, the run's validity says so.)
func (a *analysis) hostWarnings(m runstore.MeterMeta) []string {
	var w []string
	if m.Host == "" {
		return nil
	}
	for _, t := range a.run.Meta.Targets {
		// The null target serves from the load machine on purpose.
		if t.Host != "" && t.Host != m.Host && !t.Skipped && t.Kind != "null" {
			w = append(w, fmt.Sprintf("meter %s measures %s, but target %s is served from %s: the meter's figures for it are not its energy", m.Name, m.Host, t.Name, t.Host))
		}
	}
	return w
}

func (a *analysis) meterSummary(m *meterSeries) MeterSummary {
	ms := MeterSummary{
		Name:             m.meta.Name,
		Label:            label(m.meta),
		Kind:             string(m.meta.Kind),
		Estimate:         m.meta.Kind == runstore.MeterModel,
		Source:           m.source(),
		SampleIntervalMs: nan,
	}
	for _, c := range m.channels {
		ms.Samples += len(c.t)
		name := fmt.Sprintf("channel %d", c.index)
		if c.index < len(m.meta.Channels) {
			name = m.meta.Channels[c.index].Name
		}
		ms.Channels = append(ms.Channels, name)
	}
	if m.ref != nil && m.ref.medianDt > 0 {
		ms.SampleIntervalMs = Float(float64(m.ref.medianDt) / 1e6)
	}
	return ms
}

// label is how a meter is named to people; a model always says so.
func label(m runstore.MeterMeta) string {
	l := m.Label
	if l == "" {
		l = m.Name
	}
	return meters.Label(l, meters.Kind(m.Kind))
}

// targetList is the targets of run.json, then any that only phases name.
func (a *analysis) targetList() []runstore.TargetMeta {
	ts := slices.Clone(a.run.Meta.Targets)
	seen := map[string]bool{}
	for _, t := range ts {
		seen[t.Name] = true
	}
	for _, p := range a.run.Meta.Phases {
		if !seen[p.Target] {
			seen[p.Target] = true
			var t runstore.TargetMeta
			t.Name = p.Target
			ts = append(ts, t)
		}
	}
	return ts
}

// Measured reports whether a phase is scored: "load", or "load/<input>"
// when a scenario gives inputs.
func Measured(name string) bool {
	return name == runstore.PhaseLoad || strings.HasPrefix(name, runstore.PhaseLoad+"/")
}

// idleModel is a target's idle power on one meter over time.
type idleModel struct {
	mid []int64   // idle phase midpoints, increasing
	w   []float64 // idle power there
	sub []float64 // sub-window powers of all idle phases
	// byRep holds the sub-window powers of each repetition's idle phase,
	// which the bootstrap resamples.
	byRep map[int][]float64
}

// at is idle power at t: linear between the idle phases around t, the
// nearest one's outside them, NaN when there is none.
func (m *idleModel) at(t int64) float64 {
	n := len(m.mid)
	switch {
	case n == 0:
		return math.NaN()
	case t <= m.mid[0]:
		return m.w[0]
	case t >= m.mid[n-1]:
		return m.w[n-1]
	}
	i := sort.Search(n, func(i int) bool { return m.mid[i] > t })
	return m.w[i-1] + (m.w[i]-m.w[i-1])*float64(t-m.mid[i-1])/float64(m.mid[i]-m.mid[i-1])
}

func (a *analysis) subWindow(m *meterSeries) int64 {
	sub := int64(a.opt.SubWindow)
	if m.ref != nil && 5*m.ref.medianDt > sub {
		sub = 5 * m.ref.medianDt
	}
	return max(sub, 1)
}

// split cuts [s,e) into equal sub-windows about sub long (at least one).
func split(s, e, sub int64) [][2]int64 {
	k := max(int64(1), (e-s)/sub)
	out := make([][2]int64, 0, k)
	for i := range k {
		out = append(out, [2]int64{s + (e-s)*i/k, s + (e-s)*(i+1)/k})
	}
	return out
}

func (a *analysis) idle(target string, m *meterSeries) *idleModel {
	im := &idleModel{byRep: map[int][]float64{}}
	for _, p := range a.phases[target] {
		if p.Name != runstore.PhaseIdle || p.EndNs <= p.StartNs {
			continue
		}
		cut := int64(float64(p.EndNs-p.StartNs) * a.opt.EdgeCut)
		s, e := p.StartNs+cut, p.EndNs-cut
		im.mid = append(im.mid, (s+e)/2)
		im.w = append(im.w, m.energy(s, e)/(float64(e-s)/1e9))
		for _, sw := range split(s, e, a.subWindow(m)) {
			w := m.energy(sw[0], sw[1]) / (float64(sw[1]-sw[0]) / 1e9)
			im.sub = append(im.sub, w)
			im.byRep[p.Rep] = append(im.byRep[p.Rep], w)
		}
	}
	return im
}

// target is one target's summary, with the values behind each measured
// phase's figures on each meter.
func (a *analysis) target(t runstore.TargetMeta) (TargetSummary, map[GroupKey]*GroupDetail) {
	ts := TargetSummary{Name: t.Name, Kind: t.Kind, Mode: string(t.Mode), Skipped: t.Skipped, SkipReason: t.SkipReason}
	idles := make([]*idleModel, len(a.meters))
	for i, m := range a.meters {
		im := a.idle(t.Name, m)
		if len(im.mid) == 0 {
			// Without its own idle phase, a target borrows every other
			// target's: the machine's idle, less exact.
			for _, other := range a.targetList() {
				if other.Name != t.Name {
					o := a.idle(other.Name, m)
					im.mid = append(im.mid, o.mid...)
					im.w = append(im.w, o.w...)
					im.sub = append(im.sub, o.sub...)
					for rep, v := range o.byRep {
						im.byRep[rep] = append(im.byRep[rep], v...)
					}
				}
			}
			sortIdle(im)
		}
		idles[i] = im
		if len(im.w) > 0 {
			is := IdleSummary{Meter: m.meta.Name, Estimate: m.meta.Kind == runstore.MeterModel, W: Float(Mean(im.w)), CV: Float(cv(im.sub))}
			for _, w := range im.w {
				is.PerW = append(is.PerW, Float(w))
			}
			ts.Idle = append(ts.Idle, is)
		}
	}
	// Measured phases in the order they first appear.
	var names []string
	byName := map[string][]runstore.Phase{}
	for _, p := range a.phases[t.Name] {
		if !Measured(p.Name) {
			continue
		}
		if _, ok := byName[p.Name]; !ok {
			names = append(names, p.Name)
		}
		byName[p.Name] = append(byName[p.Name], p)
	}
	groups := map[GroupKey]*GroupDetail{}
	for _, name := range names {
		ps, gs := a.phase(t.Name, name, byName[name], idles)
		ts.Phases = append(ts.Phases, ps)
		for i, g := range gs {
			groups[GroupKey{t.Name, name, ps.Energy[i].Meter}] = g
		}
	}
	return ts, groups
}

func sortIdle(im *idleModel) {
	p := make([]int, len(im.mid))
	for i := range p {
		p[i] = i
	}
	sort.Slice(p, func(i, j int) bool { return im.mid[p[i]] < im.mid[p[j]] })
	mid, w := make([]int64, len(p)), make([]float64, len(p))
	for n, i := range p {
		mid[n], w[n] = im.mid[i], im.w[i]
	}
	im.mid, im.w = mid, w
}

// phase is one measured phase of a target over its repetitions: request
// and latency figures, and its energy on each meter with the values behind
// it (groups[i] belongs to Energy[i]).
func (a *analysis) phase(target, name string, phases []runstore.Phase, idles []*idleModel) (ps PhaseSummary, groups []*GroupDetail) {
	ps = PhaseSummary{Phase: name, Reps: len(phases)}
	var lat, startUp []float64
	var dur int64
	for _, p := range phases {
		dur += p.EndNs - p.StartNs
		if p.Interrupted {
			ps.Warnings = append(ps.Warnings, fmt.Sprintf("repetition %d was cut short", p.Rep))
		}
		for _, i := range a.reqs[reqKey{target, name, p.Rep}] {
			r := &a.run.Requests[i]
			ps.Requests++
			if r.Cold {
				ps.ColdStarts++
				if r.StartUpNs > 0 {
					startUp = append(startUp, float64(r.StartUpNs)/1e6)
				}
			}
			if !r.OK() {
				if ps.Errors == nil {
					ps.Errors = ErrorTally{}
				}
				reason := r.Error
				if reason == "" {
					reason = fmt.Sprintf("status %d", r.Status)
				}
				ps.Errors[reason]++
				continue
			}
			ps.Successes++
			lat = append(lat, float64(r.LatencyNs)/1e6)
		}
	}
	ps.DurationS = Float(float64(dur) / 1e9)
	ps.ThroughputRPS = nan
	if dur > 0 {
		ps.ThroughputRPS = Float(float64(ps.Successes) / (float64(dur) / 1e9))
	}
	slices.Sort(lat)
	ps.LatencyMs = Latency{P50: Float(quantile(lat, 0.5)), P90: Float(quantile(lat, 0.9)), P99: Float(quantile(lat, 0.99)), Max: nan, Mean: nan}
	if len(lat) > 0 {
		ps.LatencyMs.Max = Float(lat[len(lat)-1])
		ps.LatencyMs.Mean = Float(Mean(lat))
	}
	if len(startUp) > 0 {
		slices.Sort(startUp)
		ps.StartUpMs = &StartUp{N: len(startUp), P50: Float(quantile(startUp, 0.5)), P99: Float(quantile(startUp, 0.99))}
	}
	if ps.Requests == 0 {
		ps.Warnings = append(ps.Warnings, "no requests recorded")
	} else if f := float64(ps.Requests-ps.Successes) / float64(ps.Requests); f > a.opt.MaxErrorRate {
		ps.Warnings = append(ps.Warnings, fmt.Sprintf("%.1f%% of requests failed; joules per request counts successful requests only", 100*f))
	}
	for i, m := range a.meters {
		if len(m.channels) == 0 {
			continue
		}
		e, g, w := a.energy(target, name, phases, m, idles[i])
		ps.Energy = append(ps.Energy, e)
		groups = append(groups, g)
		ps.Warnings = append(ps.Warnings, w...)
	}
	return ps, groups
}

// at is the meter's total cumulative energy at t.
func (m *meterSeries) at(t int64) float64 {
	var e float64
	for _, c := range m.channels {
		e += c.at(t)
	}
	return e
}

func (m *meterSeries) samplesIn(s, e int64) int {
	if m.ref == nil {
		return 0
	}
	t := m.ref.t
	i := sort.Search(len(t), func(i int) bool { return t[i] >= s })
	j := sort.Search(len(t), func(i int) bool { return t[i] >= e })
	return j - i
}

// power bins a meter's total power over the run for plotting.
func (a *analysis) power(m *meterSeries) PowerSeries {
	ps := PowerSeries{Meter: m.meta.Name, Label: label(m.meta), Estimate: m.meta.Kind == runstore.MeterModel}
	if m.ref == nil || len(m.ref.t) < 2 {
		return ps
	}
	s, e := m.ref.t[0], m.ref.t[len(m.ref.t)-1]
	n := min(a.opt.PowerPoints, len(m.ref.t)-1)
	prev := m.at(s)
	for i := 1; i <= n; i++ {
		t := s + (e-s)*int64(i)/int64(n)
		c := m.at(t)
		bin := s + (e-s)*int64(i-1)/int64(n)
		if t > bin {
			ps.T = append(ps.T, t)
			ps.W = append(ps.W, (c-prev)/(float64(t-bin)/1e9))
		}
		prev = c
	}
	return ps
}
