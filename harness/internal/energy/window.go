package energy

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/academemes/harness/harness/internal/runstore"
)

// A measured phase's energy on one meter is found in steps that each read
// alone: the steady window of every repetition (steady), its figures
// (repEnergy) and warnings (repWarnings), the sub-windows that describe
// spread and feed the marginal fit (subWindows), the attribution to
// requests (attributeWindow); then the repetitions' values become
// intervals (repInterval) and the per-request distribution
// (distribution). energy puts them together.

// window is a phase's steady window with its successful requests.
type window struct {
	rep   int
	s, e  int64
	spans []span
	reqs  *ramp // counts spans by overlap
	// latMs is the median latency of its successful requests (NaN when
	// none).
	latMs float64
}

// seconds is the window's length.
func (w window) seconds() float64 { return float64(w.e-w.s) / 1e9 }

// steady is repetition p's steady window: the phase less its ramp edges.
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
	return window{rep: p.Rep, s: p.StartNs + int64(cut), e: p.EndNs - int64(cut), spans: spans, reqs: newRamp(spans), latMs: quantile(lats, 0.5) / 1e6}
}

// windows is the steady windows of a measured phase's repetitions that
// have any length left.
func (a *analysis) windows(target, name string, phases []runstore.Phase) []window {
	var ws []window
	for _, p := range phases {
		if w := a.steady(target, name, p); w.e > w.s {
			ws = append(ws, w)
		}
	}
	return ws
}

// repEnergy is one repetition's figures on meter m, with idle power iw
// (NaN without an idle baseline, which makes the dynamic figures NaN).
func repEnergy(m *meterSeries, iw float64, w window) RepEnergy {
	dt := w.seconds()
	e := m.energy(w.s, w.e)
	n := w.reqs.count(w.s, w.e)
	r := RepEnergy{
		Rep: w.rep, StartNs: w.s, EndNs: w.e,
		Requests: Float(n), TotalJ: Float(e), IdleW: Float(iw), DynamicJ: Float(e - iw*dt),
		JPerRequest: nan, DynamicJPerRequest: nan,
		Coverage: Float(m.coverage(w.s, w.e)), Samples: m.samplesIn(w.s, w.e),
		ResolutionJ: Float(m.resolutionJ(dt)),
	}
	if res := float64(r.ResolutionJ); res > 0 && r.DynamicJ.OK() && math.Abs(float64(r.DynamicJ)) < res {
		r.BelowResolution = true
	}
	if n > 0 {
		r.JPerRequest = Float(e / n)
		r.DynamicJPerRequest = Float((e - iw*dt) / n)
	}
	return r
}

// repWarnings says what makes one repetition's window on m doubtful: low
// sample coverage, few samples, a gap the meter reported.
func (a *analysis) repWarnings(m *meterSeries, r RepEnergy) []string {
	var warn []string
	if cov := float64(r.Coverage); cov < a.opt.MinCoverage {
		warn = append(warn, fmt.Sprintf("meter %s covers %.0f%% of repetition %d's window (threshold %.0f%%)", m.meta.Name, 100*cov, r.Rep, 100*a.opt.MinCoverage))
	}
	if r.Samples < 10 {
		warn = append(warn, fmt.Sprintf("meter %s: only %d samples in repetition %d's window", m.meta.Name, r.Samples, r.Rep))
	}
	if rp := m.meta.Report; rp != nil {
		for _, gap := range rp.Gaps {
			if gap.Start.UnixNano() < r.EndNs && gap.End.UnixNano() > r.StartNs {
				warn = append(warn, fmt.Sprintf("meter %s: gap of %v in repetition %d's window (%s)", m.meta.Name, gap.End.Sub(gap.Start).Round(time.Millisecond), r.Rep, gap.Reason))
			}
		}
	}
	return warn
}

// subWindowValues are the request rate (1/s) and mean power (W) of each
// of a window's sub-windows: the points of the marginal regression.
type subWindowValues struct {
	rate, power []float64
}

// subWindows cuts w into sub-windows about sub ns long.
func subWindows(m *meterSeries, w window, sub int64) subWindowValues {
	var v subWindowValues
	for _, sw := range split(w.s, w.e, sub) {
		e := m.energy(sw[0], sw[1])
		n := w.reqs.count(sw[0], sw[1])
		dt := float64(sw[1]-sw[0]) / 1e9
		v.rate = append(v.rate, n/dt)
		v.power = append(v.power, e/dt)
	}
	return v
}

// attributeWindow shares w's dynamic energy (idle power iw) among its
// requests and returns the values of those wholly inside it.
func attributeWindow(m *meterSeries, w window, iw float64) ([]float64, attribution) {
	at := attribute(m.grid(w.s, w.e), m.at, iw, w.spans)
	var inside []float64
	for k, sp := range w.spans {
		if sp.s >= w.s && sp.e <= w.e {
			inside = append(inside, at.perRequest[k])
		}
	}
	return inside, at
}

// energy is one measured phase of target on meter m: the figures of each
// repetition, their intervals, the marginal estimate and the per-request
// distribution, with the values behind them (for the report) and
// warnings.
func (a *analysis) energy(target, name string, phases []runstore.Phase, m *meterSeries, idle *idleModel) (Energy, *GroupDetail, []string) {
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
	noIdle := len(idle.w) == 0
	if noIdle {
		warn = append(warn, fmt.Sprintf("meter %s: no idle phase, so no dynamic energy", m.meta.Name))
	}
	// The idle sub-windows anchor the marginal regression at zero rate.
	for _, p := range idle.sub {
		g.Rate = append(g.Rate, 0)
		g.Power = append(g.Power, p)
	}
	var slopes []float64 // each repetition's marginal slope
	var attributed, unattributed float64
	var lats []float64
	var byCPU *cpuSplit
	if a.cpu != nil && !noIdle {
		byCPU = &cpuSplit{cpuS: map[string]float64{}, joules: map[string]float64{}}
	}
	for _, w := range a.windows(target, name, phases) {
		iw := idle.at((w.s + w.e) / 2)
		if byCPU != nil {
			byCPU.add(a.cpu, m.at, iw, w.s, w.e)
		}
		r := repEnergy(m, iw, w)
		e.Reps = append(e.Reps, r)
		e.Coverage = Float(math.Min(float64(e.Coverage), float64(r.Coverage)))
		warn = append(warn, a.repWarnings(m, r)...)
		if r.Requests > 0 {
			g.RepJ = append(g.RepJ, float64(r.JPerRequest))
			if !noIdle {
				g.RepDynamicJ = append(g.RepDynamicJ, float64(r.DynamicJPerRequest))
			}
		}
		sv := subWindows(m, w, a.subWindow(m))
		g.Rate = append(g.Rate, sv.rate...)
		g.Power = append(g.Power, sv.power...)
		if s, ok := repSlope(idle.byRep[w.rep], sv, a.opt.Confidence); ok {
			slopes = append(slopes, s)
		}
		if !noIdle {
			vals, at := attributeWindow(m, w, iw)
			g.PerRequestJ = append(g.PerRequestJ, vals...)
			attributed += at.attributed
			unattributed += at.unattributed
			if !math.IsNaN(w.latMs) {
				lats = append(lats, w.latMs)
			}
		}
	}
	e.totals(noIdle)
	if byCPU != nil {
		under := e.Label
		if e.Estimate && !strings.Contains(under, "estimate") {
			under += " (itself an estimate)"
		}
		e.CPUShares = byCPU.shares(under)
	}
	lim := meterLimits(m.meta.Precision.RelError, e.Reps)
	e.ResolutionJ = Float(lim.windowJ)
	e.JPerRequest = repInterval(g.RepJ, a.opt.MinReps, a.opt.Confidence, lim)
	e.JPerRequest = lim.screen(e.JPerRequest, meanOf(e.Reps, func(r RepEnergy) Float { return r.TotalJ }), "energy")
	e.UWhPerRequest = uwhInterval(e.JPerRequest)
	e.DynamicJPerRequest = Interval{Value: nan, Lo: nan, Hi: nan, Method: "none", Reason: "no idle baseline: no dynamic energy"}
	if !noIdle {
		e.DynamicJPerRequest = repInterval(g.RepDynamicJ, a.opt.MinReps, a.opt.Confidence, lim)
		e.DynamicJPerRequest = lim.screen(e.DynamicJPerRequest, meanOf(e.Reps, func(r RepEnergy) Float { return r.DynamicJ }), "dynamic energy")
		if e.DynamicJPerRequest.BelowResolution {
			warn = append(warn, fmt.Sprintf("meter %s: dynamic energy is below the meter's resolution (%s): no figure", m.meta.Name, e.DynamicJPerRequest.Reason))
		} else if e.DynamicJPerRequest.Value < 0 {
			warn = append(warn, fmt.Sprintf("meter %s: dynamic energy per request is negative: the load cost less than the idle baseline, which is noisy or drifting", m.meta.Name))
		}
		e.PerRequest = distribution(g.PerRequestJ, attributed, unattributed, m, median(lats), e.DynamicJPerRequest.BelowResolution)
		if c := cv(idle.sub); c > a.opt.NoisyIdleCV {
			warn = append(warn, fmt.Sprintf("meter %s: idle power is noisy (coefficient of variation %.0f%% over %d windows)", m.meta.Name, 100*c, len(idle.sub)))
		}
	}
	e.Marginal = marginal(g.Rate, g.Power, slopes, a.opt.MinReps, a.opt.Confidence, lim)
	var cw []string
	e.Carbon, cw = a.carbonOf(m, &e, lim)
	warn = append(warn, cw...)
	if n := len(e.Reps); n < a.opt.MinReps && n > 0 {
		warn = append(warn, fmt.Sprintf("meter %s: %d repetition(s), fewer than %d: no interval and no comparison (repetitions are the unit of replication)", m.meta.Name, n, a.opt.MinReps))
	}
	return e, g, warn
}

// totals sums the repetitions' windows into the phase's figures.
func (e *Energy) totals(noIdle bool) {
	var winS, reqs, total, dyn, idleJ float64
	for _, r := range e.Reps {
		dt := float64(r.EndNs-r.StartNs) / 1e9
		winS += dt
		reqs += float64(r.Requests)
		total += float64(r.TotalJ)
		dyn += float64(r.DynamicJ)
		idleJ += float64(r.IdleW) * dt
	}
	e.WindowS, e.Requests, e.TotalJ = Float(winS), Float(reqs), Float(total)
	if !noIdle && winS > 0 {
		e.IdleW = Float(idleJ / winS)
		e.DynamicJ = Float(dyn)
	}
}

// meanOf is the mean of f over the repetitions, NaN for none.
func meanOf(reps []RepEnergy, f func(RepEnergy) Float) float64 {
	xs := make([]float64, 0, len(reps))
	for _, r := range reps {
		xs = append(xs, float64(f(r)))
	}
	return Mean(xs)
}

// median is the median of xs, NaN for none.
func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return quantile(s, 0.5)
}

// distribution summarises the dynamic energy attributed to each request
// and says where the meter limits what it means: a meter that samples
// less often than a typical request lasts sees many requests in one
// interval, so each value is that interval's energy shared out, not a
// measurement of the request; and a value below zero is an interval whose
// power fell under the idle baseline.
func distribution(vals []float64, attributed, unattributed float64, m *meterSeries, latMs float64, belowRes bool) *Distribution {
	if len(vals) == 0 {
		return nil
	}
	pr := slices.Clone(vals)
	slices.Sort(pr)
	d := &Distribution{
		N: len(pr), Mean: Float(Mean(pr)),
		P10: Float(quantile(pr, 0.1)), P50: Float(quantile(pr, 0.5)),
		P90: Float(quantile(pr, 0.9)), P99: Float(quantile(pr, 0.99)),
		AttributedJ: Float(attributed), UnattributedJ: Float(unattributed),
		SampleIntervalMs: nan, TypicalLatencyMs: Float(latMs),
	}
	var notes []string
	if m.ref != nil && m.ref.medianDt > 0 {
		d.SampleIntervalMs = Float(float64(m.ref.medianDt) / 1e6)
		if !math.IsNaN(latMs) && float64(d.SampleIntervalMs) > latMs {
			d.LimitedByMeter = true
			notes = append(notes, fmt.Sprintf("limited by the meter: it samples every %.3g ms and a typical request takes %.3g ms, so each value is a sampling interval's energy shared among the requests in flight, not a measurement of one request", float64(d.SampleIntervalMs), latMs))
		}
	}
	if belowRes {
		d.LimitedByMeter = true
		notes = append(notes, "limited by the meter: the phase's dynamic energy is below its resolution, so the values are noise")
	}
	if neg := countBelow(pr, 0); neg > 0 {
		notes = append(notes, fmt.Sprintf("%d of %d values are negative: in their sampling intervals the meter read less than the idle baseline (noise, or drift of the baseline), and the attribution passes that on unchanged so that the values add up to the dynamic energy", neg, len(pr)))
	}
	d.Note = strings.Join(notes, "; ")
	return d
}

func countBelow(sorted []float64, x float64) int {
	i, _ := slices.BinarySearch(sorted, x)
	return i
}

// repSlope is the least-squares slope of power on request rate within one
// repetition: its own idle sub-windows at rate zero and its load
// sub-windows.
func repSlope(idle []float64, sv subWindowValues, conf float64) (float64, bool) {
	rate := make([]float64, len(idle), len(idle)+len(sv.rate))
	power := append(slices.Clone(idle), sv.power...)
	rate = append(rate, sv.rate...)
	f, ok := fitLine(rate, power, conf)
	return f.Slope, ok
}

// marginal is the least-squares line of power on request rate over all
// sub-windows (the line the report draws) with an interval from the
// spread of the repetitions' own slopes: sub-windows of one phase are
// correlated, so their count says nothing about the slope's precision.
func marginal(rate, power, slopes []float64, minReps int, conf float64, lim limits) *Marginal {
	f, ok := fitLine(rate, power, conf)
	if !ok {
		return nil
	}
	mg := &Marginal{
		JPerRequest: Float(f.Slope), Lo: nan, Hi: nan,
		InterceptW: Float(f.Intercept), R2: Float(f.R2), Points: f.N, Reps: len(slopes),
	}
	iv := repInterval(slopes, minReps, conf, lim)
	if iv.Reason != "" {
		mg.Method = "least-squares slope over all sub-windows; no interval: " + iv.Reason
		return mg
	}
	h := (float64(iv.Hi) - float64(iv.Lo)) / 2
	mg.Lo, mg.Hi = Float(f.Slope-h), Float(f.Slope+h)
	mg.Method = "least-squares slope over all sub-windows; interval from each repetition's own slope: " + iv.Method
	return mg
}
