// Package validity decides whether a run's numbers can be trusted: the
// checks made on its recorded data (failed requests, the achieved against
// the offered rate, meter saturation and gaps, other processes' CPU time,
// phases cut short), the thresholds they are held to (Default, the one
// place their values are set) and the policy that says what a failed
// check does (Strict, Warn, Off).
//
// The checks are pure functions of a run: Evaluate judges a run directory
// read back (old runs too), and a Tracker judges each phase as the run
// goes, from the same code. What the machine was doing besides the run is
// read by package machine; this package only judges what it recorded.
package validity

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/academemes/harness/harness/internal/runstore"
)

// Check names, as written in run.json's problems.
const (
	// CheckForeignCPU: processes that are neither the harness nor a
	// target's own used CPU during a phase (or, with phase "", during
	// the system check before the load).
	CheckForeignCPU = "foreign_cpu"
	// CheckFailures: too many of a load phase's requests failed.
	CheckFailures = "failed_requests"
	// CheckNoRequests: a load phase recorded no request at all.
	CheckNoRequests = "no_requests"
	// CheckRate: the achieved request rate fell below the offered one.
	CheckRate = "achieved_rate"
	// CheckSaturation: a meter sat at its ceiling (a model's maximum, a
	// sensor's full scale).
	CheckSaturation = "meter_saturation"
	// CheckGaps: a meter delivered no samples for part of a phase.
	CheckGaps = "meter_gaps"
	// CheckInterrupted: a phase was cut short.
	CheckInterrupted = "interrupted"
	// CheckLoadAverage: the load average per CPU was high before the
	// run (a warning only).
	CheckLoadAverage = "load_average"
	// CheckClock: the system clock is not synchronised (a warning only).
	CheckClock = "clock_sync"
	// CheckHost: a target is served from a machine that none of the
	// run's meters measures (local RAPL with a remote target, or an
	// agent on another machine with a local one).
	CheckHost = "measured_host"
)

// Policies: what a failed check does, from the scenario's `checks:` field
// or `harness run --checks`.
const (
	// Strict refuses to start on a busy machine and fails the run (exit
	// 1, data kept) when a phase is invalid.
	Strict = "strict"
	// Warn completes the run but marks it invalid and says why.
	Warn = "warn"
	// Off checks and records nothing.
	Off = "off"
)

// Policies lists the policies, the default first.
var Policies = []string{Warn, Strict, Off}

// Units of Problem.Observed and Problem.Limit.
const (
	UnitShare   = "share"   // 0-1
	UnitSeconds = "s"       // seconds
	UnitPerCore = "per CPU" // load average per CPU
)

// PhaseKey names a phase in problems: "target/phase/rep" (rep as recorded,
// from 0), or "phase/rep" for a phase that belongs to no one target.
func PhaseKey(p runstore.Phase) string {
	if p.Target == "" {
		return p.Name + "/" + strconv.Itoa(p.Rep)
	}
	return p.Target + "/" + p.Name + "/" + strconv.Itoa(p.Rep)
}

// IsLoad reports whether a phase is a measured load phase ("load" or
// "load/<input>"); warmup is load too but is not scored, so not judged.
func IsLoad(name string) bool {
	return name == runstore.PhaseLoad || strings.HasPrefix(name, runstore.PhaseLoad+"/")
}

// Evaluate judges every phase of a run from its recorded data, and the run
// as a whole. perPhase is keyed by the index into run.Meta.Phases and holds
// a Validity for every phase. runWide holds the problems of the run as a
// whole that the data cannot show again (those with phase "" already in
// run.Meta.Validity: the system check before the load) and every phase's
// problems; it is valid when there are none. Checks that cannot be made on
// this run (no foreign-CPU record in a run written before it was watched, a
// meter with no known ceiling) are skipped: Unjudged says which.
func Evaluate(run *runstore.Run, t Thresholds) (runWide *runstore.Validity, perPhase map[int]*runstore.Validity) {
	idx := newIndex()
	for _, r := range run.Requests {
		idx.addRequest(r)
	}
	for _, s := range run.Samples {
		idx.addSample(s)
	}
	perPhase = make(map[int]*runstore.Validity, len(run.Meta.Phases))
	for i := range run.Meta.Phases {
		perPhase[i] = idx.phase(&run.Meta, i, t)
	}
	return Combine(run.Meta.Validity, run.Meta.Phases, perPhase), perPhase
}

// Combine makes the run-wide validity from the run-level problems of prior
// (those with phase "", kept; any others are recomputed) and each phase's
// validity, in phase order.
func Combine(prior *runstore.Validity, phases []runstore.Phase, perPhase map[int]*runstore.Validity) *runstore.Validity {
	v := &runstore.Validity{Problems: []runstore.Problem{}}
	if prior != nil {
		for _, p := range prior.Problems {
			if p.Phase == "" {
				v.Problems = append(v.Problems, p)
			}
		}
	}
	for i := range phases {
		if pv := perPhase[i]; pv != nil {
			v.Problems = append(v.Problems, pv.Problems...)
		}
	}
	v.Valid = len(v.Problems) == 0
	return v
}

// Unjudged lists, in words, the checks Evaluate could not make on a run and
// why, so that a valid verdict on an old run is not read as more than it is.
func Unjudged(run *runstore.Run) []string {
	var out []string
	watched := 0
	for _, p := range run.Meta.Phases {
		if p.Foreign != nil {
			watched++
		}
	}
	switch {
	case len(run.Meta.Phases) == 0:
	case watched == 0:
		out = append(out, CheckForeignCPU+": not judged: no phase has other processes' CPU time recorded (a run from before it was watched, or checks: off)")
	case watched < len(run.Meta.Phases):
		out = append(out, fmt.Sprintf("%s: not judged for %d of %d phases: not recorded", CheckForeignCPU, len(run.Meta.Phases)-watched, len(run.Meta.Phases)))
	}
	for _, m := range run.Meta.Meters {
		if Ceiling(m, 0) == 0 {
			out = append(out, fmt.Sprintf("%s: not judged for meter %s: its ceiling (full scale) is not known", CheckSaturation, m.Name))
		}
	}
	if run.Meta.Load.Model == "sequential" {
		out = append(out, CheckRate+": not judged: sequential (closed-loop) load has no offered rate")
	}
	return out
}

// reqKey names the requests of one phase.
type reqKey struct {
	target, phase string
	rep           int
}

// chanKey names one channel of one meter.
type chanKey struct {
	meter   string
	channel int
}

// index holds a run's requests by phase and samples by channel, in time
// order, so that a phase is judged without a pass over the whole run.
type index struct {
	reqs  map[reqKey][]runstore.Request
	chans map[chanKey][]runstore.Sample
}

func newIndex() *index {
	return &index{reqs: map[reqKey][]runstore.Request{}, chans: map[chanKey][]runstore.Sample{}}
}

func (x *index) addRequest(r runstore.Request) {
	k := reqKey{r.Target, r.Phase, r.Rep}
	x.reqs[k] = append(x.reqs[k], r)
}

// addSample keeps each channel in time order; a sample out of order (a
// device clock refitted) is inserted where it belongs.
func (x *index) addSample(s runstore.Sample) {
	k := chanKey{s.Meter, s.Channel}
	ss := x.chans[k]
	if n := len(ss); n == 0 || ss[n-1].TNs <= s.TNs {
		x.chans[k] = append(ss, s)
		return
	}
	i, _ := slices.BinarySearchFunc(ss, s.TNs, func(a runstore.Sample, t int64) int { return cmp.Compare(a.TNs, t) })
	x.chans[k] = slices.Insert(ss, i, s)
}

// phase judges phase i of meta.
func (x *index) phase(meta *runstore.Meta, i int, t Thresholds) *runstore.Validity {
	p := meta.Phases[i]
	key := PhaseKey(p)
	var probs []runstore.Problem
	add := func(check string, observed, limit float64, unit, format string, args ...any) {
		probs = append(probs, runstore.Problem{Phase: key, Check: check, Observed: finite(observed), Limit: finite(limit), Unit: unit, Message: fmt.Sprintf(format, args...)})
	}
	dur := float64(p.EndNs-p.StartNs) / 1e9

	if p.Interrupted {
		planned := 0.0
		for _, s := range p.Stages {
			planned += float64(s.EndNs-s.StartNs) / 1e9
		}
		add(CheckInterrupted, dur, planned, UnitSeconds, "the phase was cut short after %.1f s", dur)
	}

	if f := p.Foreign; f != nil && f.Share > t.ForeignCPUShare {
		add(CheckForeignCPU, f.Share, t.ForeignCPUShare, UnitShare, "other processes used %s of the CPUs (%.2f CPU-s; limit %s)%s",
			pct(f.Share), f.CPUSeconds, pct(t.ForeignCPUShare), topList(f.Top, t.ForeignCPUShare))
	}

	if IsLoad(p.Name) {
		reqs := x.reqs[reqKey{p.Target, p.Name, p.Rep}]
		failed := 0
		for _, r := range reqs {
			if !r.OK() {
				failed++
			}
		}
		switch {
		case len(reqs) == 0:
			add(CheckNoRequests, 0, 1, "requests", "no request was recorded in this load phase")
		case float64(failed)/float64(len(reqs)) > t.FailedShare:
			share := float64(failed) / float64(len(reqs))
			add(CheckFailures, share, t.FailedShare, UnitShare, "%d of %d requests failed (%s; limit %s)%s", failed, len(reqs), pct(share), pct(t.FailedShare), firstError(reqs))
		}
		for si, s := range p.Stages {
			if s.Rate <= 0 {
				continue // sequential: no offered rate
			}
			end := s.EndNs
			if p.EndNs > 0 && p.EndNs < end {
				end = p.EndNs
			}
			secs := float64(end-s.StartNs) / 1e9
			if secs <= 0 {
				continue
			}
			n := 0
			for _, r := range reqs {
				if r.StartNs >= s.StartNs && r.StartNs < end {
					n++
				}
			}
			want := s.Rate * secs
			if float64(n) < want*(1-t.RateShortfall)-1 {
				short := 1 - float64(n)/want
				add(CheckRate, short, t.RateShortfall, UnitShare, "stage %d: %.3g req/s achieved against %.3g offered (%s short; limit %s)",
					si+1, float64(n)/secs, s.Rate, pct(short), pct(t.RateShortfall))
			}
		}
	}

	if p.Target != "" {
		judgeHost(meta, p.Target, add)
	}
	for _, m := range meta.Meters {
		x.judgeMeter(m, p, t, add)
	}
	if probs == nil {
		probs = []runstore.Problem{}
	}
	return &runstore.Validity{Valid: len(probs) == 0, Problems: probs}
}

// judgeMeter checks one meter over phase p: saturation and gaps, each as
// the worst of its channels.
func (x *index) judgeMeter(m runstore.MeterMeta, p runstore.Phase, t Thresholds, add func(string, float64, float64, string, string, ...any)) {
	nch := max(len(m.Channels), 1)
	worstSat, satAt, satN, satCeil := 0.0, 0, 0, 0.0
	worstGap := 0.0
	for ch := range nch {
		ss := x.chans[chanKey{m.Name, ch}]
		lo, hi := window(ss, p.StartNs, p.EndNs)
		if c := Ceiling(m, ch); c > 0 {
			at, n := 0, 0
			for _, s := range ss[lo:hi] {
				if math.IsNaN(s.Watts) {
					continue
				}
				n++
				if s.Watts >= c*(1-t.SaturationMargin) {
					at++
				}
			}
			if n > 0 && float64(at)/float64(n) > worstSat {
				worstSat, satAt, satN, satCeil = float64(at)/float64(n), at, n, c
			}
		}
		worstGap = max(worstGap, gapShare(ss, lo, hi, p.StartNs, p.EndNs, reportedGaps(m), t.GapFactor))
	}
	label := m.Label
	if label == "" {
		label = m.Name
	}
	if worstSat > t.SaturatedShare {
		what := "full scale"
		if IsModel(m) {
			what = "the model's maximum"
		}
		add(CheckSaturation, worstSat, t.SaturatedShare, UnitShare, "meter %s: %d of %d samples at its ceiling of %.4g W (%s; limit %s): readings clipped at %s, so the power above it is missing",
			label, satAt, satN, satCeil, pct(worstSat), pct(t.SaturatedShare), what)
	}
	if worstGap > t.GapShare {
		add(CheckGaps, worstGap, t.GapShare, UnitShare, "meter %s: no samples for %s of the phase (limit %s); the energy there is interpolated",
			label, pct(worstGap), pct(t.GapShare))
	}
}

// judgeHost checks that some meter measures the machine that serves
// target. Runs from before hosts were recorded ("" on either side) are
// not judged.
func judgeHost(meta *runstore.Meta, target string, add func(string, float64, float64, string, string, ...any)) {
	host := ""
	for _, tm := range meta.Targets {
		if tm.Name == target {
			host = tm.Host
			if tm.Kind == "null" {
				// The null target is served on the load machine on
				// purpose: it measures what the load generator costs
				// the metered machine, wherever that is.
				return
			}
		}
	}
	if host == "" {
		return
	}
	var measured []string
	for _, m := range meta.Meters {
		if m.Host == "" {
			return
		}
		if m.Host == host {
			return
		}
		measured = append(measured, fmt.Sprintf("%s (%s)", m.Host, m.Name))
	}
	if len(measured) == 0 {
		return
	}
	add(CheckHost, 0, 1, "meters", "target %s is served from %s, but the meters measure %s: their figures are not its energy; measure %s (harness agent there, meter agent:HOST:PORT) or say where things run (host: on the target or meter)",
		target, host, strings.Join(measured, ", "), host)
}

// window returns the samples in [a, b) of a time-ordered channel.
func window(ss []runstore.Sample, a, b int64) (lo, hi int) {
	lo, _ = slices.BinarySearchFunc(ss, a, func(s runstore.Sample, t int64) int { return cmp.Compare(s.TNs, t) })
	hi, _ = slices.BinarySearchFunc(ss, b, func(s runstore.Sample, t int64) int { return cmp.Compare(s.TNs, t) })
	return lo, max(lo, hi)
}

// gapShare is the share of [a, b) in which the channel was silent: between
// two samples further apart than factor times the channel's median interval
// (the time beyond one interval counts), before its first and after its
// last sample, and in the gaps the meter itself reported.
func gapShare(ss []runstore.Sample, lo, hi int, a, b int64, reported [][2]int64, factor float64) float64 {
	if b <= a {
		return 0
	}
	if len(ss) == 0 {
		return 1
	}
	med := medianInterval(ss, lo, hi)
	var spans [][2]int64
	if med > 0 {
		// Pairs that straddle the window count too: one sample before it
		// and one after it with nothing between is a gap over all of it.
		from, to := max(lo-1, 0), min(hi+1, len(ss))
		limit := int64(factor * float64(med))
		for i := from + 1; i < to; i++ {
			if d := ss[i].TNs - ss[i-1].TNs; d > limit {
				spans = append(spans, [2]int64{ss[i-1].TNs + med, ss[i].TNs})
			}
		}
		if last := ss[len(ss)-1].TNs; b-last > limit {
			spans = append(spans, [2]int64{last + med, b})
		}
		if first := ss[0].TNs; first-a > limit {
			spans = append(spans, [2]int64{a, first})
		}
	} else if hi-lo < 2 {
		// Too few samples to know the meter's rhythm: silent if none at
		// all fell in the window.
		if hi == lo {
			return 1
		}
	}
	spans = append(spans, reported...)
	return float64(covered(spans, a, b)) / float64(b-a)
}

// medianInterval is the median time between samples in [lo, hi) and their
// neighbours, or, with too few there, over the channel's start.
func medianInterval(ss []runstore.Sample, lo, hi int) int64 {
	from, to := max(lo-1, 0), min(hi+1, len(ss))
	if to-from < 3 {
		from, to = 0, min(len(ss), 4097)
	}
	if to-from < 2 {
		return 0
	}
	d := make([]int64, 0, to-from-1)
	for i := from + 1; i < to; i++ {
		d = append(d, ss[i].TNs-ss[i-1].TNs)
	}
	slices.Sort(d)
	return d[len(d)/2]
}

// covered is how much of [a, b) the spans cover, overlaps counted once.
func covered(spans [][2]int64, a, b int64) int64 {
	slices.SortFunc(spans, func(x, y [2]int64) int { return cmp.Compare(x[0], y[0]) })
	var total int64
	cur := a
	for _, s := range spans {
		lo, hi := max(s[0], cur), min(s[1], b)
		if hi > lo {
			total += hi - lo
			cur = hi
		}
	}
	return total
}

// reportedGaps are the spans the meter itself reported silent, in Unix ns.
func reportedGaps(m runstore.MeterMeta) [][2]int64 {
	if m.Report == nil {
		return nil
	}
	var out [][2]int64
	for _, g := range m.Report.Gaps {
		out = append(out, [2]int64{g.Start.UnixNano(), g.End.UnixNano()})
	}
	return out
}

// IsModel reports whether a meter is a model (the estimate), whose
// figures are estimates rather than measurements.
func IsModel(m runstore.MeterMeta) bool { return string(m.Kind) == "model" }

// Ceiling is the most a meter's channel can read, in watts; 0 when not
// known. Runs written before meters declared it (FullScaleW) still have
// the estimate model's parameters in its report.
func Ceiling(m runstore.MeterMeta, ch int) float64 {
	if ch < len(m.Channels) && m.Channels[ch].FullScaleW > 0 {
		return m.Channels[ch].FullScaleW
	}
	if m.Driver == "estimate" && m.Report != nil {
		idle, ok1 := m.Report.Details["idle_w"].(float64)
		per, ok2 := m.Report.Details["max_per_core_w"].(float64)
		cpus, ok3 := number(m.Report.Details["cpus"])
		if ok1 && ok2 && ok3 {
			return idle + per*cpus
		}
	}
	return 0
}

func number(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case int:
		return float64(x), true
	}
	return 0, false
}

// topList names the foreign processes as ProcessList does, after ": ".
func topList(top []runstore.Process, limit float64) string {
	if len(top) == 0 {
		return ""
	}
	return ": " + ProcessList(top, limit)
}

// NamedShare is the share of the machine's CPU time from which a foreign
// process is always named in a problem's message, however many there
// are (and recorded in run.json, so that the message can name it): one
// percent, twenty times what an idle daemon uses. On a machine loaded by
// a dozen others, two processes that make it busy may each have less than
// the limit and less than eight others; a fixed number of names left
// them out.
const NamedShare = 0.01

// Below NamedShare (and the limit), the busiest are named down to half a
// percent, eight names in all.
const (
	namedAtLeast = 8
	namedFloor   = 0.005
)

// ProcessList names the foreign processes of top, busiest first, as a
// problem's message does: "sh (pid 12) 24 %, ...". It names every process
// with NamedShare of the machine or more (or above limit, where that is
// lower), and the busiest others down to half a percent, eight names in
// all. top is sorted, most first.
func ProcessList(top []runstore.Process, limit float64) string {
	always := min(NamedShare, limit)
	var parts []string
	for i, p := range top {
		if p.Share < always && (i >= namedAtLeast || p.Share < namedFloor) {
			break
		}
		parts = append(parts, fmt.Sprintf("%s (pid %d) %s", p.Name, p.PID, pct(p.Share)))
	}
	return strings.Join(parts, ", ")
}

// firstError quotes the first failure's error or status, so the reader
// knows what kind of failure it was.
func firstError(reqs []runstore.Request) string {
	for _, r := range reqs {
		if r.OK() {
			continue
		}
		if r.Error != "" {
			return fmt.Sprintf("; first: %q", r.Error)
		}
		return fmt.Sprintf("; first: HTTP %d", r.Status)
	}
	return ""
}

func pct(f float64) string {
	switch {
	case f >= 0.1:
		return fmt.Sprintf("%.0f %%", f*100)
	default:
		return fmt.Sprintf("%.1f %%", f*100)
	}
}

// finite keeps run.json writable: JSON has no NaN or infinity.
func finite(f float64) float64 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0
	}
	return f
}
