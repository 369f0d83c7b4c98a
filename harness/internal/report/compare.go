package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"math"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"gonum.org/v1/gonum/stat"
	"gonum.org/v1/gonum/stat/distuv"

	"github.com/academemes/harness/harness/internal/energy"
	"github.com/academemes/harness/harness/internal/runstore"
)

// Analysed is a run with its analysis, as compare needs it.
type Analysed struct {
	Run     *runstore.Run
	Summary *energy.Summary
	Detail  *energy.Detail
}

// LoadAnalysed reads and analyses a run directory.
func LoadAnalysed(dir string) (*Analysed, error) {
	run, err := runstore.Load(dir)
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	s, d, err := energy.AnalyzeDetail(run, energy.DefaultOptions())
	if err != nil {
		return nil, fmt.Errorf("report: analyse %s: %w", dir, err)
	}
	if s.Validity == nil {
		s.Validity = run.Meta.Validity
	}
	return &Analysed{run, s, d}, nil
}

// MinVerdictReps is the fewest repetitions a side needs for a verdict.
// The repetition is the unit of replication: with fewer than three a
// test cannot tell run-to-run variation from a difference.
const MinVerdictReps = 3

// Side is one thing compared: a target's measured phase in a run, on one
// meter for energy. Its value is the mean of its per-repetition values,
// with a t interval over them; the tests compare those values.
type Side struct {
	Run      string
	Target   string
	Phase    string
	Kind     string
	Mode     string
	Function string
	Value    float64
	Lo, Hi   float64
	// Values are the per-repetition values, one per repetition that has
	// one.
	Values []float64
	// BelowResolution is set when the analysis found the value smaller
	// than the meter resolves: it is then no number to divide by.
	BelowResolution bool
	// Carbon is the side's carbon figures, for a carbon row: its parts
	// are shown beside the value.
	Carbon *energy.Carbon
}

// N is the number of repetitions behind the side.
func (s Side) N() int { return len(s.Values) }

// name is how a side is named in verdicts: the target, with the run when
// the comparison spans runs.
func (s Side) name(withRun bool) string {
	n := s.Target
	if s.Phase != runstore.PhaseLoad {
		n += " " + s.Phase
	}
	if withRun {
		n += " (" + s.Run + ")"
	}
	return n
}

// Row is one metric compared between two sides.
type Row struct {
	Metric string
	// Note says how to read the metric, e.g. that total energy per
	// request under open-loop load is mostly idle power over the rate.
	Note     string
	Unit     string // "J", "gCO2e" or "ms"
	Meter    string // energy metrics only
	Estimate bool
	A, B     Side
	// Ratio is B/A with its 95% interval; NaN when there is none, and
	// NoRatio then says why.
	Ratio, RatioLo, RatioHi float64
	NoRatio                 string
	PMannWhitney, PWelch    float64
	// Samples says what the tests compared and how many on each side.
	Samples string
	// Comparable is false when the sides are not like for like; Reasons
	// names each difference.
	Comparable bool
	Reasons    []string
	// Forced is set when the row was compared although not comparable.
	Forced bool
	// Verdict is the plain sentence, "" when there is none; NoVerdict
	// then says why.
	Verdict   string
	NoVerdict string
}

// P is the larger of the two tests' p-values: a difference is claimed
// only when both find it.
func (r Row) P() float64 {
	if math.IsNaN(r.PMannWhitney) || math.IsNaN(r.PWelch) {
		return math.NaN()
	}
	return math.Max(r.PMannWhitney, r.PWelch)
}

// Text is the row's sentence: its verdict, or why it has none.
func (r Row) Text() string {
	cross := r.A.Run != r.B.Run
	if !r.Comparable && !r.Forced {
		return notComparable(r, cross)
	}
	s := r.Verdict
	if s == "" {
		s = fmt.Sprintf("no verdict on %s between %s and %s: %s", r.Metric, r.A.name(cross), r.B.name(cross), r.NoVerdict)
	}
	if r.Forced {
		s += " [compared with --force although " + notComparable(r, cross) + "]"
	}
	return s
}

func notComparable(r Row, cross bool) string {
	return fmt.Sprintf("not comparable: %s vs %s: %s", r.A.name(cross), r.B.name(cross), strings.Join(r.Reasons, "; "))
}

// RunInfo is what a comparison says about each run it draws on.
type RunInfo struct {
	ID       string
	Scenario string
	Status   string
	Started  time.Time
	Host     runstore.Host
	Load     string // "open" or "sequential"
	// Validity as run.json records it; ValidityKnown is false for runs
	// written before it was recorded.
	ValidityKnown bool
	Valid         bool
	Problems      []string
}

// Comparison is a set of rows and where they came from.
type Comparison struct {
	Title string
	Runs  []RunInfo
	Rows  []Row
	// Skipped names run directories left out, each with why.
	Skipped []string
	// Forced and AcrossHosts are the options it was made with.
	Forced, AcrossHosts bool
	// Replication holds, for each run of the original study's scenario,
	// its figures beside the study's (replication.go).
	Replication []*Replication
}

// RunLabel is a short name for a run in tables, "run 2", numbered as in
// Runs, so that wide run ids do not crowd the table.
func (c *Comparison) RunLabel(id string) string {
	for i, r := range c.Runs {
		if r.ID == id {
			return fmt.Sprintf("run %d", i+1)
		}
	}
	return id
}

// Options says how Compare treats sides that are not like for like.
type Options struct {
	// Force compares sides that are not like for like anyway; the
	// reasons stay in every output.
	Force bool
	// AcrossHosts says the runs come from different hosts on purpose: a
	// difference of host is then stated, not a reason to refuse.
	AcrossHosts bool
}

// Pair names two sides to compare: A is the reference.
type Pair struct {
	A, B   *Analysed
	TA, TB string // targets
	Phase  string
}

// Pairs lists what compare puts side by side: every pair of targets
// serving the same function within the last run, and each target of each
// run against the same target in the run before it. Targets serving
// different functions in one run (nebula's wasm-fibonacci and wasm-prime)
// are not alternatives to each other and are not paired; across runs a
// target of the same name is, and a changed function is then a reason the
// pair is not comparable.
func Pairs(runs []*Analysed) []Pair {
	var out []Pair
	if len(runs) == 0 {
		return nil
	}
	last := runs[len(runs)-1]
	ts := last.Summary.Targets
	fn := map[string]string{}
	for _, t := range last.Run.Meta.Targets {
		fn[t.Name] = t.Function
	}
	for i := range ts {
		for j := i + 1; j < len(ts); j++ {
			if a, b := fn[ts[i].Name], fn[ts[j].Name]; a != "" && b != "" && a != b {
				continue
			}
			for _, p := range ts[i].Phases {
				if last.Summary.Find(ts[j].Name, p.Phase) != nil {
					out = append(out, Pair{last, last, ts[i].Name, ts[j].Name, p.Phase})
				}
			}
		}
	}
	for k := 1; k < len(runs); k++ {
		prev, cur := runs[k-1], runs[k]
		for _, t := range cur.Summary.Targets {
			for _, p := range t.Phases {
				if prev.Summary.Find(t.Name, p.Phase) != nil {
					out = append(out, Pair{prev, cur, t.Name, t.Name, p.Phase})
				}
			}
		}
	}
	return out
}

// Compare computes the rows of each pair after checking that its sides
// are like for like: dynamic energy per request first, then total energy
// per request on every meter both sides have, then latency.
func Compare(title string, pairs []Pair, opt Options) *Comparison {
	c := &Comparison{Title: title, Forced: opt.Force, AcrossHosts: opt.AcrossHosts}
	seen := map[string]bool{}
	for _, p := range pairs {
		for _, r := range []*Analysed{p.A, p.B} {
			if !seen[r.Summary.RunID] {
				seen[r.Summary.RunID] = true
				c.Runs = append(c.Runs, runInfo(r))
				if rp := Replicate(r.Run, r.Summary); rp != nil {
					c.Replication = append(c.Replication, rp)
				}
			}
		}
		cross := p.A != p.B
		base := likeForLike(p, opt)
		pa, pb := p.A.Summary.Find(p.TA, p.Phase), p.B.Summary.Find(p.TB, p.Phase)
		if pa == nil || pb == nil {
			continue
		}
		for _, mp := range meterPairs(p, pa, pb) {
			for _, dyn := range []bool{true, false} {
				row := Row{Metric: "dynamic energy per request", Unit: "J", Meter: mp.label, Estimate: mp.a.Estimate || mp.b.Estimate,
					Note: "energy above the idle baseline: what serving the requests added"}
				if !dyn {
					row.Metric = "total energy per request"
					row.Note = totalNote(p.A.Run.Meta.Load.Model)
				}
				row.A = energySide(p.A, p.TA, p.Phase, mp.a, dyn)
				row.B = energySide(p.B, p.TB, p.Phase, mp.b, dyn)
				row.Reasons = append(slices.Clone(base), mp.reasons...)
				finish(&row, opt, cross)
				c.Rows = append(c.Rows, row)
			}
			if mp.a.Carbon != nil && mp.b.Carbon != nil {
				row := Row{Metric: carbonMetric, Unit: "gCO2e", Meter: mp.label, Estimate: mp.a.Estimate || mp.b.Estimate,
					Note: "((E x I) + M) per request, E the dynamic energy (Software Carbon Intensity, ISO/IEC 21031:2024)",
					A:    carbonSide(p.A, p.TA, p.Phase, mp.a), B: carbonSide(p.B, p.TB, p.Phase, mp.b)}
				row.Reasons = append(slices.Clone(base), mp.reasons...)
				if ka, kb := carbonKey(p.A.Run.Meta.Carbon), carbonKey(p.B.Run.Meta.Carbon); ka != kb {
					row.Reasons = append(row.Reasons, fmt.Sprintf("different carbon settings: %s vs %s", ka, kb))
				}
				finish(&row, opt, cross)
				c.Rows = append(c.Rows, row)
			}
		}
		la, lb := latencySide(p.A, p.TA, p.Phase), latencySide(p.B, p.TB, p.Phase)
		if la.N() > 0 && lb.N() > 0 {
			row := Row{Metric: "mean latency", Unit: "ms", A: la, B: lb, Reasons: slices.Clone(base)}
			finish(&row, opt, cross)
			c.Rows = append(c.Rows, row)
		}
	}
	sort.Slice(c.Runs, func(i, j int) bool { return c.Runs[i].ID < c.Runs[j].ID })
	return c
}

// carbonMetric names the carbon rows of a comparison.
const carbonMetric = "carbon per request (SCI)"

// totalNote says what total energy per request is under the run's load.
func totalNote(model string) string {
	if model == "sequential" {
		return "all the machine's energy over the requests, idle power included: shown second, dynamic energy leads"
	}
	return "under open-loop load mostly idle power divided by the offered rate: shown second, dynamic energy leads"
}

func runInfo(a *Analysed) RunInfo {
	m := a.Run.Meta
	ri := RunInfo{ID: a.Summary.RunID, Scenario: m.Scenario, Status: m.Status, Started: m.Started, Host: m.Host, Load: m.Load.Model}
	v := readValidity(&m)
	ri.ValidityKnown, ri.Valid = v.Known, v.Valid
	for _, p := range v.Problems {
		ri.Problems = append(ri.Problems, describe(p))
	}
	return ri
}

// finish sets a row's comparability, ratio, tests and verdict.
func finish(r *Row, opt Options, cross bool) {
	r.Comparable = len(r.Reasons) == 0
	if r.Reasons == nil {
		r.Reasons = []string{}
	}
	r.Forced = !r.Comparable && opt.Force
	r.Ratio, r.RatioLo, r.RatioHi = math.NaN(), math.NaN(), math.NaN()
	r.PMannWhitney, r.PWelch = math.NaN(), math.NaN()
	r.Samples = fmt.Sprintf("repetitions, %d vs %d", r.A.N(), r.B.N())
	if !r.Comparable && !opt.Force {
		r.NoRatio, r.NoVerdict = "not comparable", "not comparable"
		return
	}
	r.Ratio, r.RatioLo, r.RatioHi, r.NoRatio = ratioOf(r.A, r.B, r.Unit)
	enough := min(r.A.N(), r.B.N()) >= MinVerdictReps
	if enough {
		_, r.PMannWhitney = energy.MannWhitneyU(r.A.Values, r.B.Values)
		_, _, r.PWelch = energy.WelchT(r.A.Values, r.B.Values)
	}
	switch {
	case !enough:
		r.NoVerdict = fmt.Sprintf("%d vs %d repetitions; a verdict needs at least %d a side, since the repetition is the unit of replication and fewer cannot tell run-to-run variation from a difference", r.A.N(), r.B.N(), MinVerdictReps)
	case r.NoRatio != "":
		r.NoVerdict = r.NoRatio
	default:
		r.Verdict = verdict(*r, cross)
	}
}

// meterPair is one meter's energy on each side, and what differs between
// the two meters.
type meterPair struct {
	a, b    *energy.Energy
	label   string
	reasons []string
}

// meterPairs matches the sides' meters by name. Two runs with no meter in
// common still give one pair, of their first meters, which is not
// comparable: the difference is stated rather than left unsaid.
func meterPairs(p Pair, pa, pb *energy.PhaseSummary) []meterPair {
	var out []meterPair
	for i := range pa.Energy {
		ea := &pa.Energy[i]
		eb := pb.Meter(ea.Meter)
		if eb == nil {
			continue
		}
		mp := meterPair{a: ea, b: eb, label: ea.Label}
		ma, mb := meterMeta(p.A.Run, ea.Meter), meterMeta(p.B.Run, eb.Meter)
		if ma != nil && mb != nil && p.A != p.B {
			switch {
			case ma.Driver != mb.Driver:
				mp.reasons = append(mp.reasons, fmt.Sprintf("meter %s is a different device: %s vs %s", ea.Meter, ma.Driver, mb.Driver))
			case ma.Kind != mb.Kind:
				mp.reasons = append(mp.reasons, fmt.Sprintf("meter %s is %s vs %s", ea.Meter, ma.Kind, mb.Kind))
			case !slices.Equal(channelsInTotal(ma), channelsInTotal(mb)):
				mp.reasons = append(mp.reasons, fmt.Sprintf("meter %s totals different channels: %s vs %s", ea.Meter, strings.Join(channelsInTotal(ma), ", "), strings.Join(channelsInTotal(mb), ", ")))
			}
		}
		out = append(out, mp)
	}
	if len(out) == 0 && len(pa.Energy) > 0 && len(pb.Energy) > 0 {
		ea, eb := &pa.Energy[0], &pb.Energy[0]
		out = append(out, meterPair{a: ea, b: eb, label: ea.Label + " vs " + eb.Label,
			reasons: []string{fmt.Sprintf("different meters: %s vs %s", ea.Label, eb.Label)}})
	}
	return out
}

func meterMeta(run *runstore.Run, name string) *runstore.MeterMeta {
	for i := range run.Meta.Meters {
		if run.Meta.Meters[i].Name == name {
			return &run.Meta.Meters[i]
		}
	}
	return nil
}

func channelsInTotal(m *runstore.MeterMeta) []string {
	var out []string
	for _, c := range m.Channels {
		if c.InTotal {
			out = append(out, c.Name)
		}
	}
	return out
}

func targetMeta(run *runstore.Run, name string) *runstore.TargetMeta {
	for i := range run.Meta.Targets {
		if run.Meta.Targets[i].Name == name {
			return &run.Meta.Targets[i]
		}
	}
	return nil
}

// likeForLike lists every way the two sides of a pair differ that makes a
// ratio between them say something other than what it seems to: host,
// load model and offered rate, function and input, and whether each run
// is complete and valid for the phase compared. Meters are checked per
// meter (meterPairs).
func likeForLike(p Pair, opt Options) []string {
	var rs []string
	ra, rb := p.A.Run, p.B.Run
	cross := p.A != p.B
	if cross && !opt.AcrossHosts {
		if d := hostDiff(ra.Meta.Host, rb.Meta.Host); d != "" {
			rs = append(rs, "different hosts ("+d+"); --hosts compares them on purpose")
		}
	}
	if ma, mb := ra.Meta.Load.Model, rb.Meta.Load.Model; ma != mb {
		rs = append(rs, fmt.Sprintf("different load: %s vs %s", loadName(ma), loadName(mb)))
	} else if a, b := offered(ra, p.TA, p.Phase), offered(rb, p.TB, p.Phase); !sameRates(a, b) {
		rs = append(rs, fmt.Sprintf("different offered rate: %s vs %s", fmtRates(a), fmtRates(b)))
	}
	ta, tb := targetMeta(ra, p.TA), targetMeta(rb, p.TB)
	if ta != nil && tb != nil && ta.Function != tb.Function {
		rs = append(rs, fmt.Sprintf("different function: %s vs %s", orNone(ta.Function), orNone(tb.Function)))
	}
	if ia, ib := ra.Meta.Load.Method+" "+ra.Meta.Load.Path, rb.Meta.Load.Method+" "+rb.Meta.Load.Path; cross && ia != ib {
		rs = append(rs, fmt.Sprintf("different request: %s vs %s", ia, ib))
	}
	rs = append(rs, runComplete(ra)...)
	if cross {
		rs = append(rs, runComplete(rb)...)
	}
	rs = append(rs, phaseTrusted(ra, p.TA, p.Phase)...)
	rs = append(rs, phaseTrusted(rb, p.TB, p.Phase)...)
	return dedupe(rs)
}

// runComplete is why a run as a whole cannot stand in a comparison: it
// did not complete, or was found invalid without naming where.
func runComplete(run *runstore.Run) []string {
	var rs []string
	if st := run.Meta.Status; st != runstore.StatusComplete {
		rs = append(rs, fmt.Sprintf("run %s is %s, not complete", run.Meta.ID, orNone(st)))
	}
	if v := readValidity(&run.Meta); v.Known && !v.Valid && len(v.Problems) == 0 {
		rs = append(rs, fmt.Sprintf("run %s is marked invalid", run.Meta.ID))
	}
	return rs
}

// phaseTrusted is why one side cannot stand in a comparison: a
// repetition of its phase was cut short, or the validity checks found a
// problem bearing on it (the whole run's, its idle baseline's or the
// phase's own).
func phaseTrusted(run *runstore.Run, target, phase string) []string {
	var rs []string
	id := run.Meta.ID
	var cut []string
	for _, ph := range run.Meta.Phases {
		if ph.Target == target && ph.Name == phase && ph.Interrupted {
			cut = append(cut, fmt.Sprint(ph.Rep))
		}
	}
	if len(cut) > 0 {
		rs = append(rs, fmt.Sprintf("%s %s in run %s was cut short in repetition %s", target, phase, id, strings.Join(cut, ", ")))
	}
	var bearing []runstore.Problem
	for _, pr := range readValidity(&run.Meta).Problems {
		if affects(pr, target, phase, 0) {
			bearing = append(bearing, pr)
		}
	}
	// One reason per failed check: a busy machine fails the same check in
	// every phase, and the report lists them all.
	for _, line := range condense(bearing) {
		rs = append(rs, fmt.Sprintf("run %s is invalid: %s", id, line))
	}
	return rs
}

func dedupe(xs []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, x := range xs {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func loadName(model string) string {
	if model == "sequential" {
		return "closed loop (one request at a time)"
	}
	return "open loop (" + orNone(model) + ")"
}

// hostDiff names the host facts that differ, "" when none do. Governor
// and turbo change the energy of the same work, so they count.
func hostDiff(a, b runstore.Host) string {
	var d []string
	add := func(what, x, y string) {
		if x != y {
			d = append(d, fmt.Sprintf("%s %s vs %s", what, orNone(x), orNone(y)))
		}
	}
	add("host", a.Hostname, b.Hostname)
	add("CPU", a.CPUModel, b.CPUModel)
	add("cores", fmt.Sprint(a.Cores), fmt.Sprint(b.Cores))
	add("governor", a.Governor, b.Governor)
	add("turbo", a.Turbo, b.Turbo)
	return strings.Join(d, ", ")
}

// offered is the distinct offered rates (requests/s) of a target's
// measured phase over its repetitions; 0 stands for sequential load.
func offered(run *runstore.Run, target, phase string) []float64 {
	var rates []float64
	for _, ph := range run.Meta.Phases {
		if ph.Target != target || ph.Name != phase {
			continue
		}
		for _, s := range ph.Stages {
			if !slices.ContainsFunc(rates, func(r float64) bool { return closeRate(r, s.Rate) }) {
				rates = append(rates, s.Rate)
			}
		}
	}
	slices.Sort(rates)
	return rates
}

func closeRate(a, b float64) bool { return math.Abs(a-b) <= 0.01*math.Max(math.Abs(a), math.Abs(b)) }

func sameRates(a, b []float64) bool {
	return len(a) == len(b) && !slices.ContainsFunc(a, func(x float64) bool {
		return !slices.ContainsFunc(b, func(y float64) bool { return closeRate(x, y) })
	})
}

func fmtRates(rs []float64) string {
	if len(rs) == 0 {
		return "not recorded"
	}
	var s []string
	for _, r := range rs {
		if r == 0 {
			s = append(s, "sequential")
		} else {
			s = append(s, strconv.FormatFloat(r, 'f', -1, 64)+"/s")
		}
	}
	return strings.Join(s, ", ")
}

// energySide is a side's per-repetition joules per request, total or
// dynamic, on one meter.
func energySide(a *Analysed, target, phase string, e *energy.Energy, dynamic bool) Side {
	return withReps(baseSide(a, target, phase), e, dynamic)
}

// withReps fills s with e's per-repetition joules per request, total or
// dynamic, their mean and t interval, and whether the analysis found the
// figure below the meter's resolution.
func withReps(s Side, e *energy.Energy, dynamic bool) Side {
	s.Values = nil
	for _, r := range e.Reps {
		v := r.JPerRequest
		if dynamic {
			v = r.DynamicJPerRequest
		}
		if v.OK() {
			s.Values = append(s.Values, float64(v))
		}
	}
	iv := e.JPerRequest
	if dynamic {
		iv = e.DynamicJPerRequest
	}
	s.BelowResolution = iv.BelowResolution
	s.Value, s.Lo, s.Hi = energy.TInterval(s.Values, 0.95)
	return s
}

// latencySide is a side's mean latency of successful requests per
// repetition, in ms.
func latencySide(a *Analysed, target, phase string) Side {
	s := baseSide(a, target, phase)
	sum, n := map[int]float64{}, map[int]int{}
	var reps []int
	for _, r := range a.Run.Requests {
		if r.Target == target && r.Phase == phase && r.OK() {
			if n[r.Rep] == 0 {
				reps = append(reps, r.Rep)
			}
			sum[r.Rep] += float64(r.LatencyNs) / 1e6
			n[r.Rep]++
		}
	}
	slices.Sort(reps)
	for _, rep := range reps {
		s.Values = append(s.Values, sum[rep]/float64(n[rep]))
	}
	s.Value, s.Lo, s.Hi = energy.TInterval(s.Values, 0.95)
	return s
}

func baseSide(a *Analysed, target, phase string) Side {
	s := Side{Run: a.Summary.RunID, Target: target, Phase: phase}
	if t := targetMeta(a.Run, target); t != nil {
		s.Kind, s.Mode, s.Function = t.Kind, string(t.Mode), t.Function
	}
	return s
}

// denominatorProblem is why a side's value cannot stand in a ratio, ""
// when it can: it must be a positive number the meter resolves and that
// its interval tells from zero. A ratio over anything less is noise
// divided by noise (a dynamic energy of 2e-15 J once gave a ratio of 2e13).
func denominatorProblem(s Side, unit string, cross bool) string {
	n := s.name(cross)
	switch {
	case s.BelowResolution:
		return n + " is below the meter's resolution"
	case math.IsNaN(s.Value) || math.IsInf(s.Value, 0):
		return n + " has no value"
	case unit == "J" && math.Abs(s.Value) < zeroJ, unit == "gCO2e" && math.Abs(s.Value) < zeroG:
		return fmt.Sprintf("%s is indistinguishable from zero (%s)", n, fmtValue(s.Value, unit))
	case s.Value <= 0:
		return fmt.Sprintf("%s is not positive (%s): the load drew no more than the idle baseline", n, fmtValue(s.Value, unit))
	case s.N() < 2:
		return n + " has one repetition, so nothing tells it from zero"
	case unit != "ms" && !(s.Lo > 0):
		// Energy above idle can be zero or less; a latency cannot, and its
		// symmetric interval reaching zero says only that it is spread.
		return fmt.Sprintf("%s cannot be told from zero: its interval is [%s, %s]", n, fmtValue(s.Lo, unit), fmtValue(s.Hi, unit))
	}
	return ""
}

// ratioOf is B/A of the sides' means with a 95% interval for it: the log
// ratio's standard error by the delta method, with Welch's degrees of
// freedom, so a skewed ratio of two small samples keeps its asymmetry.
// A ratio is made only when both sides could be its denominator (the
// verdict may read it either way round); otherwise why names the side.
func ratioOf(a, b Side, unit string) (r, lo, hi float64, why string) {
	nan := math.NaN()
	cross := a.Run != b.Run
	for _, s := range []Side{a, b} {
		if p := denominatorProblem(s, unit, cross); p != "" {
			return nan, nan, nan, p
		}
	}
	r = b.Value / a.Value
	na, nb := float64(a.N()), float64(b.N())
	va := stat.Variance(a.Values, nil) / (na * a.Value * a.Value)
	vb := stat.Variance(b.Values, nil) / (nb * b.Value * b.Value)
	if va+vb == 0 {
		return r, r, r, ""
	}
	df := (va + vb) * (va + vb) / (va*va/(na-1) + vb*vb/(nb-1))
	t := distuv.StudentsT{Mu: 0, Sigma: 1, Nu: df}.Quantile(0.975)
	se := math.Sqrt(va + vb)
	return r, r * math.Exp(-t*se), r * math.Exp(t*se), ""
}

// fmtP is "p < 0.001" or "p = 0.03".
func fmtP(p float64) string {
	switch {
	case math.IsNaN(p):
		return "p n/a"
	case p < 0.001:
		return "p < 0.001"
	default:
		return fmt.Sprintf("p = %.2g", p)
	}
}

func fmtX(x float64) string {
	switch {
	case math.IsNaN(x) || math.IsInf(x, 0):
		return "?"
	case x >= 10:
		return fmt.Sprintf("%.0f", x)
	default:
		return fmt.Sprintf("%.3g", x)
	}
}

// minMannWhitneyP is the smallest two-sided p the exact Mann-Whitney test
// can give for samples of na and nb: 2 / C(na+nb, na). With three
// repetitions a side it is 0.1, so no difference can be claimed.
func minMannWhitneyP(na, nb int) float64 {
	c := 1.0
	for i := 1; i <= na; i++ {
		c = c * float64(nb+i) / float64(i)
	}
	return 2 / c
}

// verdict says the row in one plain sentence, e.g. "wasm used 212x
// (190-236x) less dynamic energy per request than docker-node (p <
// 0.001)". The p is the larger of the two tests'; a difference is claimed
// only when it is below 0.05 and the ratio's interval excludes 1.
func verdict(r Row, cross bool) string {
	a, b := r.A.name(cross), r.B.name(cross)
	p := r.P()
	est := ""
	if r.Estimate {
		est = " (estimated by a model)"
	}
	metric := r.Metric
	if r.Metric == "total energy per request" && r.Note != "" {
		metric += " (" + strings.SplitN(r.Note, ":", 2)[0] + ")"
	}
	pText := fmtP(p)
	clear := p < 0.05 && !(r.RatioLo <= 1 && r.RatioHi >= 1)
	if !clear {
		s := fmt.Sprintf("no clear difference in %s%s between %s and %s (ratio %s, %s)", metric, est, a, b, fmtX(r.Ratio), pText)
		if m := minMannWhitneyP(r.A.N(), r.B.N()); m >= 0.05 {
			s += fmt.Sprintf("; with %d and %d repetitions the Mann-Whitney test cannot go below p = %.2g, so more repetitions are needed to claim one", r.A.N(), r.B.N(), m)
		}
		return s
	}
	verb, what := "used", metric
	more, less := "more", "less"
	switch r.Unit {
	case "ms":
		verb, what, more, less = "had", "mean latency", "higher", "lower"
	case "gCO2e":
		verb = "emitted"
	}
	if r.Ratio > 1 { // b is the larger
		return fmt.Sprintf("%s %s %sx (%s-%sx) %s %s%s than %s (%s)", a, verb, fmtX(r.Ratio), fmtX(r.RatioLo), fmtX(r.RatioHi), less, what, est, b, pText)
	}
	return fmt.Sprintf("%s %s %sx (%s-%sx) %s %s%s than %s (%s)", a, verb, fmtX(1/r.Ratio), fmtX(1/r.RatioHi), fmtX(1/r.RatioLo), more, what, est, b, pText)
}

// PrintComparison writes the comparison table and a sentence per row:
// its verdict, why it has none, or why the sides are not comparable.
func PrintComparison(w io.Writer, c *Comparison) {
	fmt.Fprintln(w, c.Title)
	for _, ri := range c.Runs {
		fmt.Fprintf(w, "  run %s: %s, %s, host %s\n", ri.ID, orNone(ri.Status), validityWord(ri), hostLine(ri.Host))
	}
	for _, s := range c.Skipped {
		fmt.Fprintln(w, "  skipped "+s)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "metric\tmeter\tA\tB\tA value (95% CI)\tB value (95% CI)\tB/A (95% CI)\tMann-Whitney p\tWelch p\tsamples")
	total := false
	for _, r := range c.Rows {
		meter := r.Meter
		if r.Estimate && !strings.Contains(meter, "estimate") {
			meter += " (estimate)"
		}
		metric := r.Metric
		if r.Metric == "total energy per request" {
			metric += " *"
			total = true
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", metric, meter,
			r.A.name(r.A.Run != r.B.Run), r.B.name(r.A.Run != r.B.Run),
			sideText(r.A, r.Unit), sideText(r.B, r.Unit),
			ratioText(r), fmtPv(r.PMannWhitney), fmtPv(r.PWelch), r.Samples)
	}
	tw.Flush()
	if total {
		fmt.Fprintln(w, "* "+totalNote(firstLoad(c)))
	}
	fmt.Fprintln(w)
	last := ""
	for _, r := range c.Rows {
		if t := r.Text(); t != last {
			fmt.Fprintln(w, "- "+t)
			last = t
		}
	}
	if !c.Forced {
		for _, r := range c.Rows {
			if !r.Comparable {
				fmt.Fprintln(w, "\nSides that are not comparable get no ratio and no verdict; --force compares them anyway and keeps the warning.")
				break
			}
		}
	}
	for _, rp := range c.Replication {
		PrintReplication(w, rp)
	}
}

func firstLoad(c *Comparison) string {
	if len(c.Runs) > 0 {
		return c.Runs[0].Load
	}
	return ""
}

func validityWord(ri RunInfo) string {
	switch {
	case !ri.ValidityKnown:
		return "validity not recorded"
	case ri.Valid:
		return "valid"
	}
	return fmt.Sprintf("INVALID (%d problem(s))", len(ri.Problems))
}

func hostLine(h runstore.Host) string {
	s := orNone(h.Hostname)
	var f []string
	if h.CPUModel != "" {
		f = append(f, h.CPUModel)
	}
	if h.Cores > 0 {
		f = append(f, fmt.Sprintf("%d cores", h.Cores))
	}
	if h.Governor != "" {
		f = append(f, "governor "+h.Governor)
	}
	if h.Turbo != "" {
		f = append(f, "turbo "+h.Turbo)
	}
	if len(f) > 0 {
		s += " (" + strings.Join(f, ", ") + ")"
	}
	return s
}

// sideText is a side's value with its interval, or "below resolution".
func sideText(s Side, u string) string {
	if s.BelowResolution {
		return "below resolution"
	}
	v := fmtValue(s.Value, u)
	if !math.IsNaN(s.Lo) && !math.IsNaN(s.Hi) {
		v += " (" + fmtValue(s.Lo, u) + " to " + fmtValue(s.Hi, u) + ")"
	}
	if s.Carbon != nil {
		v += " = " + carbonParts(s.Carbon)
	}
	return v
}

// ratioText is the ratio with its interval, or why there is none.
func ratioText(r Row) string {
	switch {
	case !r.Comparable && !r.Forced:
		return "not comparable"
	case math.IsNaN(r.Ratio):
		return "none"
	}
	s := fmtRatio(r.Ratio)
	if !math.IsNaN(r.RatioLo) && !math.IsNaN(r.RatioHi) {
		s += " (" + fmtRatio(r.RatioLo) + "-" + fmtRatio(r.RatioHi) + ")"
	}
	return s
}

func fmtValue(v float64, u string) string {
	switch u {
	case "J":
		return fmtJ(energy.Float(v))
	case "gCO2e":
		return fmtG(energy.Float(v))
	}
	return fmtNum(energy.Float(v)) + " " + u
}

func fmtRatio(x float64) string { return fmtNum(energy.Float(x)) }

func fmtPv(p float64) string {
	if math.IsNaN(p) {
		return "–"
	}
	if p < 0.001 {
		return "<0.001"
	}
	return fmt.Sprintf("%.3g", p)
}

// jsonSide, jsonRow and jsonComparison are the shape of `harness compare
// --json`: numbers that do not exist are null, never NaN.
type jsonSide struct {
	Run             string         `json:"run"`
	Target          string         `json:"target"`
	Phase           string         `json:"phase"`
	Kind            string         `json:"kind,omitempty"`
	Mode            string         `json:"mode,omitempty"`
	Function        string         `json:"function,omitempty"`
	Value           energy.Float   `json:"value"`
	Interval        []energy.Float `json:"interval"`
	Repetitions     int            `json:"repetitions"`
	Values          []energy.Float `json:"values"`
	BelowResolution bool           `json:"below_resolution"`
	// Carbon is a carbon row's parts, per request in gCO2e.
	Carbon *jsonCarbon `json:"carbon,omitempty"`
}

// jsonCarbon is a carbon side's parts: E x I and M per request, and SCI
// per 1,000 requests; null where below resolution (or M not given).
type jsonCarbon struct {
	OperationalPerRequest energy.Float `json:"operational_g_per_request"`
	EmbodiedPerRequest    energy.Float `json:"embodied_g_per_request"`
	Per1000Requests       energy.Float `json:"sci_g_per_1000_requests"`
	IntensityGPerKWh      energy.Float `json:"intensity_g_per_kwh"`
}

type jsonRow struct {
	Metric       string         `json:"metric"`
	Note         string         `json:"note,omitempty"`
	Unit         string         `json:"unit"`
	Meter        string         `json:"meter,omitempty"`
	Estimate     bool           `json:"estimate"`
	Sides        []jsonSide     `json:"sides"`
	Ratio        energy.Float   `json:"ratio"`
	Interval     []energy.Float `json:"interval"`
	NoRatio      string         `json:"no_ratio,omitempty"`
	PValue       energy.Float   `json:"p_value"`
	PMannWhitney energy.Float   `json:"p_mann_whitney"`
	PWelch       energy.Float   `json:"p_welch"`
	Verdict      *string        `json:"verdict"`
	NoVerdict    string         `json:"no_verdict,omitempty"`
	Comparable   bool           `json:"comparable"`
	Reasons      []string       `json:"reasons"`
	Forced       bool           `json:"forced"`
	Text         string         `json:"text"`
}

type jsonRun struct {
	ID       string        `json:"id"`
	Scenario string        `json:"scenario"`
	Status   string        `json:"status"`
	Started  time.Time     `json:"started"`
	Host     runstore.Host `json:"host"`
	Load     string        `json:"load"`
	Valid    *bool         `json:"valid"`
	Problems []string      `json:"problems"`
}

type jsonComparison struct {
	Title       string    `json:"title"`
	Runs        []jsonRun `json:"runs"`
	Skipped     []string  `json:"skipped"`
	Forced      bool      `json:"forced"`
	AcrossHosts bool      `json:"across_hosts"`
	Report      string    `json:"report,omitempty"`
	Comparisons []jsonRow `json:"comparisons"`
	// Replication is the study's figures beside a run of its scenario.
	Replication []*Replication `json:"replication,omitempty"`
}

func floats(xs ...float64) []energy.Float {
	out := make([]energy.Float, len(xs))
	for i, x := range xs {
		out[i] = energy.Float(x)
	}
	return out
}

func interval(lo, hi float64) []energy.Float {
	if math.IsNaN(lo) || math.IsNaN(hi) {
		return nil
	}
	return floats(lo, hi)
}

func toJSONSide(s Side) jsonSide {
	js := jsonSide{Run: s.Run, Target: s.Target, Phase: s.Phase, Kind: s.Kind, Mode: s.Mode, Function: s.Function,
		Value: energy.Float(s.Value), Interval: interval(s.Lo, s.Hi), Repetitions: s.N(), Values: floats(s.Values...),
		BelowResolution: s.BelowResolution}
	if s.BelowResolution {
		js.Value, js.Interval = energy.Float(math.NaN()), nil
	}
	if c := s.Carbon; c != nil {
		js.Carbon = &jsonCarbon{OperationalPerRequest: resolved(c.OperationalPerRequest).Value, EmbodiedPerRequest: c.EmbodiedPerRequest.Value,
			Per1000Requests: resolved(c.SCIPer1000Requests).Value, IntensityGPerKWh: c.IntensityGPerKWh}
		if !c.EmbodiedCounted {
			js.Carbon.EmbodiedPerRequest = energy.Float(math.NaN())
		}
	}
	return js
}

// WriteComparisonJSON writes c as `harness compare --json` prints it:
// each comparison with its sides, metric, ratio, interval, p-value,
// verdict (null when there is none), whether it is comparable and why
// not. report is the HTML page's path, "" when none was written.
func WriteComparisonJSON(w io.Writer, c *Comparison, report string) error {
	out := jsonComparison{Title: c.Title, Skipped: c.Skipped, Forced: c.Forced, AcrossHosts: c.AcrossHosts, Report: report,
		Runs: []jsonRun{}, Comparisons: []jsonRow{}, Replication: c.Replication}
	if out.Skipped == nil {
		out.Skipped = []string{}
	}
	for _, ri := range c.Runs {
		jr := jsonRun{ID: ri.ID, Scenario: ri.Scenario, Status: ri.Status, Started: ri.Started, Host: ri.Host, Load: ri.Load, Problems: ri.Problems}
		if ri.ValidityKnown {
			v := ri.Valid
			jr.Valid = &v
		}
		if jr.Problems == nil {
			jr.Problems = []string{}
		}
		out.Runs = append(out.Runs, jr)
	}
	for _, r := range c.Rows {
		jr := jsonRow{Metric: r.Metric, Note: r.Note, Unit: r.Unit, Meter: r.Meter, Estimate: r.Estimate,
			Sides: []jsonSide{toJSONSide(r.A), toJSONSide(r.B)}, Ratio: energy.Float(r.Ratio),
			Interval: interval(r.RatioLo, r.RatioHi), NoRatio: r.NoRatio, PValue: energy.Float(r.P()),
			PMannWhitney: energy.Float(r.PMannWhitney), PWelch: energy.Float(r.PWelch), NoVerdict: r.NoVerdict,
			Comparable: r.Comparable, Reasons: r.Reasons, Forced: r.Forced, Text: r.Text()}
		if r.Verdict != "" {
			v := r.Verdict
			jr.Verdict = &v
		}
		if jr.Reasons == nil {
			jr.Reasons = []string{}
		}
		out.Comparisons = append(out.Comparisons, jr)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return fmt.Errorf("report: comparison as JSON: %w", err)
	}
	return nil
}

// ComparePath is where a comparison of these runs is written.
func ComparePath(reportsDir string, c *Comparison) string {
	ids := make([]string, len(c.Runs))
	for i, r := range c.Runs {
		ids[i] = r.ID
	}
	return filepath.Join(reportsDir, "compare-"+strings.Join(ids, "_vs_")+".html")
}

// comparePage is the data of templates/compare.html.
type comparePage struct {
	Title     string
	Generated string
	Font      template.CSS
	Index     string
	C         *Comparison
	// NotComparable lists each pair that is not like for like once, with
	// its reasons.
	NotComparable []refusal
	// Verdicts counts the rows with a sentence to show under Verdicts.
	Verdicts int
	Invalid  []RunInfo
}

// refusal is a pair that is not like for like, with each difference.
type refusal struct {
	Pair    string
	Reasons []string
}

// WriteComparison renders c to reportsDir/compare-<runs>.html and
// refreshes the index.
func WriteComparison(reportsDir string, c *Comparison) (string, error) {
	pg := comparePage{Title: c.Title, Font: fontCSS(), C: c, Generated: time.Now().UTC().Format(time.RFC3339)}
	seen := map[string]bool{}
	for _, r := range c.Rows {
		if r.Comparable || r.Forced {
			pg.Verdicts++
		}
		if r.Comparable {
			continue
		}
		cross := r.A.Run != r.B.Run
		rf := refusal{Pair: r.A.name(cross) + " vs " + r.B.name(cross), Reasons: r.Reasons}
		if k := rf.Pair + strings.Join(rf.Reasons, "\n"); !seen[k] {
			seen[k] = true
			pg.NotComparable = append(pg.NotComparable, rf)
		}
	}
	for _, ri := range c.Runs {
		if ri.ValidityKnown && !ri.Valid {
			pg.Invalid = append(pg.Invalid, ri)
		}
	}
	meta, err := indexMeta(compareEntry(c))
	if err != nil {
		return "", err
	}
	pg.Index = meta
	var b bytes.Buffer
	if err := templates.ExecuteTemplate(&b, "compare.html", pg); err != nil {
		return "", fmt.Errorf("report: render comparison: %w", err)
	}
	path := ComparePath(reportsDir, c)
	if err := runstore.WriteFileAtomic(path, b.Bytes()); err != nil {
		return "", fmt.Errorf("report: %w", err)
	}
	return path, WriteIndex(reportsDir)
}
