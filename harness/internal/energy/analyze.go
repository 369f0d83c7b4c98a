package energy

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"time"

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
	// SubWindow is the length of the windows used by the bootstrap, the
	// marginal regression and the idle noise check. It grows to hold at
	// least five samples of the meter.
	SubWindow time.Duration
	// MinReps is the number of repetitions from which intervals are
	// t-based; below it they come from a bootstrap over sub-windows.
	MinReps int
	// Bootstrap is the number of resamples; Seed makes them repeatable.
	Bootstrap int
	Seed      uint64
	// Thresholds for warnings.
	MinCoverage      float64       // sample coverage of a window
	NoisyIdleCV      float64       // coefficient of variation of idle power
	MaxClockResidual time.Duration // RMS residual of a device clock fit
	MaxErrorRate     float64       // failed requests in a phase
	// PowerPoints is the most points per meter in Detail.Power.
	PowerPoints int
}

// DefaultOptions are the parameters Analyze uses.
func DefaultOptions() Options {
	return Options{
		Confidence:       0.95,
		EdgeCut:          0.05,
		SubWindow:        time.Second,
		MinReps:          5,
		Bootstrap:        2000,
		Seed:             1,
		MinCoverage:      0.9,
		NoisyIdleCV:      0.10,
		MaxClockResidual: time.Millisecond,
		MaxErrorRate:     0.01,
		PowerPoints:      1500,
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
	// WindowJ and WindowDynamicJ are joules per request of each
	// sub-window with a request in it: the samples compare uses when there
	// are too few repetitions.
	WindowJ, WindowDynamicJ []float64
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
	a := &analysis{run: run, opt: opt, rng: rand.New(rand.NewPCG(opt.Seed, 0x5eed))}
	a.meters = buildMeters(run.Meta.Meters, run.Samples)
	a.index()
	s := &Summary{
		Version:  SummaryVersion,
		RunID:    run.Meta.ID,
		Scenario: run.Meta.Scenario,
		Status:   run.Meta.Status,
		Method:   a.method(),
	}
	d := &Detail{Groups: map[GroupKey]*GroupDetail{}}
	a.detail = d
	s.Warnings = a.runWarnings()
	for _, m := range a.meters {
		s.Meters = append(s.Meters, a.meterSummary(m))
	}
	for _, t := range a.targetList() {
		s.Targets = append(s.Targets, a.target(t))
	}
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
	rng    *rand.Rand
	meters []*meterSeries
	detail *Detail
	// reqs indexes run.Requests by target, phase and repetition.
	reqs map[reqKey][]int
	// phases by target, in run order.
	phases map[string][]runstore.Phase
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
		Marginal:    "least-squares slope of sub-window power on request rate over the target's idle and this phase's sub-windows",
		Interval:    fmt.Sprintf("t interval over repetitions when there are at least %d, else a percentile bootstrap of sub-windows stratified by repetition (%d resamples)", a.opt.MinReps, a.opt.Bootstrap),
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

// measured reports whether a phase is scored.
func measured(name string) bool {
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

func (a *analysis) target(t runstore.TargetMeta) TargetSummary {
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
				}
			}
			sortIdle(im)
		}
		idles[i] = im
		if len(im.w) > 0 {
			is := IdleSummary{Meter: m.meta.Name, Estimate: m.meta.Kind == runstore.MeterModel, W: Float(mean(im.w)), CV: Float(cv(im.sub))}
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
		if !measured(p.Name) {
			continue
		}
		if _, ok := byName[p.Name]; !ok {
			names = append(names, p.Name)
		}
		byName[p.Name] = append(byName[p.Name], p)
	}
	for _, name := range names {
		ts.Phases = append(ts.Phases, a.phase(t.Name, name, byName[name], idles))
	}
	return ts
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

func (a *analysis) phase(target, name string, phases []runstore.Phase, idles []*idleModel) PhaseSummary {
	ps := PhaseSummary{Phase: name, Reps: len(phases)}
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
		ps.LatencyMs.Mean = Float(mean(lat))
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
		e, w := a.energy(target, name, phases, m, idles[i])
		ps.Energy = append(ps.Energy, e)
		ps.Warnings = append(ps.Warnings, w...)
	}
	return ps
}

// window is a phase's steady window with its successful requests.
type window struct {
	rep   int
	s, e  int64
	spans []span
}

func (a *analysis) steady(target, name string, p runstore.Phase) window {
	var spans []span
	var lats []float64
	for _, i := range a.reqs[reqKey{target, name, p.Rep}] {
		r := &a.run.Requests[i]
		if r.OK() {
			spans = append(spans, span{r.StartNs, r.StartNs + max(r.LatencyNs, 1)})
			lats = append(lats, float64(r.LatencyNs))
		}
	}
	slices.Sort(lats)
	d := float64(p.EndNs - p.StartNs)
	cut := a.opt.EdgeCut * d
	if len(lats) > 0 {
		cut = math.Max(cut, 2*quantile(lats, 0.99))
	}
	cut = math.Min(cut, d/4)
	return window{rep: p.Rep, s: p.StartNs + int64(cut), e: p.EndNs - int64(cut), spans: spans}
}

func (a *analysis) energy(target, name string, phases []runstore.Phase, m *meterSeries, idle *idleModel) (Energy, []string) {
	e := Energy{
		Meter:    m.meta.Name,
		Label:    label(m.meta),
		Estimate: m.meta.Kind == runstore.MeterModel,
		Source:   m.source(),
		IdleW:    nan,
		DynamicJ: nan,
		Coverage: Float(1),
	}
	var warn []string
	g := &GroupDetail{}
	a.detail.Groups[GroupKey{target, name, m.meta.Name}] = g
	conf := a.opt.Confidence
	sub := a.subWindow(m)
	var winS, reqs, total, dyn, idleWSum float64
	var boot []bootRep
	var attributed, unattributed float64
	noIdle := len(idle.w) == 0
	if noIdle {
		warn = append(warn, fmt.Sprintf("meter %s: no idle phase, so no dynamic energy", m.meta.Name))
	}
	// The idle sub-windows anchor the marginal regression at zero rate.
	for _, p := range idle.sub {
		g.Rate = append(g.Rate, 0)
		g.Power = append(g.Power, p)
	}
	for _, p := range phases {
		w := a.steady(target, name, p)
		if w.e <= w.s {
			continue
		}
		ramp := newRamp(w.spans)
		dt := float64(w.e-w.s) / 1e9
		E := m.energy(w.s, w.e)
		n := ramp.count(w.s, w.e)
		iw := idle.at((w.s + w.e) / 2)
		cov := m.coverage(w.s, w.e)
		rep := RepEnergy{
			Rep: w.rep, StartNs: w.s, EndNs: w.e,
			Requests: Float(n), TotalJ: Float(E), IdleW: Float(iw),
			DynamicJ: Float(E - iw*dt), JPerRequest: nan, DynamicJPerRequest: nan,
			Coverage: Float(cov), Samples: m.samplesIn(w.s, w.e),
		}
		if n > 0 {
			rep.JPerRequest = Float(E / n)
			rep.DynamicJPerRequest = Float((E - iw*dt) / n)
			g.RepJ = append(g.RepJ, E/n)
			if !noIdle {
				g.RepDynamicJ = append(g.RepDynamicJ, (E-iw*dt)/n)
			}
		}
		e.Reps = append(e.Reps, rep)
		e.Coverage = Float(math.Min(float64(e.Coverage), cov))
		if cov < a.opt.MinCoverage {
			warn = append(warn, fmt.Sprintf("meter %s covers %.0f%% of repetition %d's window (threshold %.0f%%)", m.meta.Name, 100*cov, w.rep, 100*a.opt.MinCoverage))
		}
		if rep.Samples < 10 {
			warn = append(warn, fmt.Sprintf("meter %s: only %d samples in repetition %d's window", m.meta.Name, rep.Samples, w.rep))
		}
		if r := m.meta.Report; r != nil {
			for _, gap := range r.Gaps {
				if gap.Start.UnixNano() < w.e && gap.End.UnixNano() > w.s {
					warn = append(warn, fmt.Sprintf("meter %s: gap of %v in repetition %d's window (%s)", m.meta.Name, gap.End.Sub(gap.Start).Round(time.Millisecond), w.rep, gap.Reason))
				}
			}
		}
		winS += dt
		reqs += n
		total += E
		dyn += E - iw*dt
		idleWSum += iw * dt
		br := bootRep{idleW: iw, idle: idle.byRep[w.rep]}
		for _, sw := range split(w.s, w.e, sub) {
			se := m.energy(sw[0], sw[1])
			sn := ramp.count(sw[0], sw[1])
			sdt := float64(sw[1]-sw[0]) / 1e9
			br.load = append(br.load, [3]float64{se, sn, sdt})
			g.Rate = append(g.Rate, sn/sdt)
			g.Power = append(g.Power, se/sdt)
			if sn > 0 {
				g.WindowJ = append(g.WindowJ, se/sn)
				g.WindowDynamicJ = append(g.WindowDynamicJ, (se-iw*sdt)/sn)
			}
		}
		boot = append(boot, br)
		if !noIdle {
			at := attribute(m.grid(w.s, w.e), m.at, iw, w.spans)
			attributed += at.attributed
			unattributed += at.unattributed
			for k, sp := range w.spans {
				if sp.s >= w.s && sp.e <= w.e {
					g.PerRequestJ = append(g.PerRequestJ, at.perRequest[k])
				}
			}
		}
	}
	e.WindowS, e.Requests, e.TotalJ = Float(winS), Float(reqs), Float(total)
	if !noIdle && winS > 0 {
		e.IdleW = Float(idleWSum / winS)
		e.DynamicJ = Float(dyn)
	}
	e.JPerRequest = a.interval(g.RepJ, boot, false, conf)
	e.DynamicJPerRequest = Interval{Value: nan, Lo: nan, Hi: nan, Method: "none (no idle baseline)"}
	if !noIdle {
		e.DynamicJPerRequest = a.interval(g.RepDynamicJ, boot, true, conf)
		if e.DynamicJPerRequest.Value < 0 {
			warn = append(warn, fmt.Sprintf("meter %s: dynamic energy per request is negative: the load cost less than the idle baseline, which is noisy or drifting", m.meta.Name))
		}
		if len(g.PerRequestJ) > 0 {
			pr := slices.Clone(g.PerRequestJ)
			slices.Sort(pr)
			e.PerRequest = &Distribution{
				N: len(pr), Mean: Float(mean(pr)),
				P10: Float(quantile(pr, 0.1)), P50: Float(quantile(pr, 0.5)),
				P90: Float(quantile(pr, 0.9)), P99: Float(quantile(pr, 0.99)),
				AttributedJ: Float(attributed), UnattributedJ: Float(unattributed),
			}
		}
		if cv(idle.sub) > a.opt.NoisyIdleCV {
			warn = append(warn, fmt.Sprintf("meter %s: idle power is noisy (coefficient of variation %.0f%% over %d windows)", m.meta.Name, 100*cv(idle.sub), len(idle.sub)))
		}
	}
	if f, ok := fitLine(g.Rate, g.Power, conf); ok {
		e.Marginal = &Marginal{
			JPerRequest: Float(f.Slope), Lo: Float(f.SlopeLo), Hi: Float(f.SlopeHi),
			InterceptW: Float(f.Intercept), R2: Float(f.R2), Points: f.N,
		}
	}
	if len(phases) < a.opt.MinReps && len(phases) > 0 {
		warn = append(warn, fmt.Sprintf("meter %s: %d repetition(s): the interval comes from sub-windows and misses run-to-run variation", m.meta.Name, len(phases)))
	}
	return e, warn
}

// interval is the t interval over repetitions when there are enough, else
// the stratified bootstrap of sub-windows.
func (a *analysis) interval(reps []float64, boot []bootRep, dynamic bool, conf float64) Interval {
	iv := Interval{Value: nan, Lo: nan, Hi: nan, N: len(reps)}
	if len(reps) >= a.opt.MinReps {
		m, lo, hi := tInterval(reps, conf)
		iv.Value, iv.Lo, iv.Hi = Float(m), Float(lo), Float(hi)
		iv.Method = fmt.Sprintf("t over %d repetitions", len(reps))
		return iv
	}
	est, n := bootStat(boot, dynamic, nil)
	if math.IsNaN(est) {
		iv.Method = "none (no requests)"
		return iv
	}
	iv.Value = Float(est)
	iv.N = n
	if n < 2 {
		iv.Method = "none (one window)"
		return iv
	}
	// A repetition with one sub-window has nothing to resample: with
	// none that has two, the bootstrap would return a zero-width interval
	// that claims a precision the data do not have. The repetitions are
	// then the only spread there is.
	most := 0
	for _, b := range boot {
		most = max(most, len(b.load))
	}
	if most < 2 {
		if len(reps) >= 2 {
			_, lo, hi := tInterval(reps, conf)
			iv.Lo, iv.Hi = Float(lo), Float(hi)
			iv.Method = fmt.Sprintf("t over %d repetitions (windows too short for a bootstrap of sub-windows)", len(reps))
			return iv
		}
		iv.Method = "none (one sub-window per repetition)"
		return iv
	}
	lo, hi := bootstrap(boot, dynamic, a.opt.Bootstrap, conf, a.rng)
	iv.Lo, iv.Hi = Float(lo), Float(hi)
	iv.Method = fmt.Sprintf("bootstrap over %d sub-windows in %d repetition(s), %d resamples", n, len(boot), a.opt.Bootstrap)
	return iv
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

func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	var s float64
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

// cv is the coefficient of variation (sample standard deviation / mean).
func cv(xs []float64) float64 {
	if len(xs) < 2 {
		return math.NaN()
	}
	m := mean(xs)
	var ss float64
	for _, x := range xs {
		ss += (x - m) * (x - m)
	}
	return math.Sqrt(ss/float64(len(xs)-1)) / math.Abs(m)
}

// ramp counts requests by overlap: each request adds the fraction of its
// time in flight that lies inside a window.
type ramp struct {
	s, e       []float64 // sorted starts and ends, seconds from origin
	ws, we     []float64 // weights 1/latency in the same orders
	pws, pwe   []float64 // prefix sums of weights
	pwss, pwee []float64 // prefix sums of weight × time
	origin     int64
}

func newRamp(spans []span) *ramp {
	r := &ramp{}
	if len(spans) == 0 {
		return r
	}
	r.origin = spans[0].s
	type tw struct{ t, w float64 }
	ss := make([]tw, len(spans))
	es := make([]tw, len(spans))
	for i, sp := range spans {
		w := 1 / (float64(sp.e-sp.s) / 1e9)
		ss[i] = tw{float64(sp.s-r.origin) / 1e9, w}
		es[i] = tw{float64(sp.e-r.origin) / 1e9, w}
	}
	cmp := func(a, b tw) int {
		switch {
		case a.t < b.t:
			return -1
		case a.t > b.t:
			return 1
		}
		return 0
	}
	slices.SortFunc(ss, cmp)
	slices.SortFunc(es, cmp)
	prefix := func(xs []tw) (t, pw, pwt []float64) {
		t = make([]float64, len(xs))
		pw = make([]float64, len(xs)+1)
		pwt = make([]float64, len(xs)+1)
		for i, x := range xs {
			t[i] = x.t
			pw[i+1] = pw[i] + x.w
			pwt[i+1] = pwt[i] + x.w*x.t
		}
		return
	}
	r.s, r.pws, r.pwss = prefix(ss)
	r.e, r.pwe, r.pwee = prefix(es)
	return r
}

// f is Σ over requests of the fraction of each one's span before t.
func (r *ramp) f(t int64) float64 {
	if len(r.s) == 0 {
		return 0
	}
	x := float64(t-r.origin) / 1e9
	i := sort.SearchFloat64s(r.s, x) // starts < x
	j := sort.SearchFloat64s(r.e, x)
	return (x*r.pws[i] - r.pwss[i]) - (x*r.pwe[j] - r.pwee[j])
}

// count is the requests in [s,e), counted by overlap.
func (r *ramp) count(s, e int64) float64 { return r.f(e) - r.f(s) }
