package report

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

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
	return &Analysed{run, s, d}, nil
}

// Side is one thing compared: a target's measured phase in a run.
type Side struct {
	Run    string `json:"run"`
	Target string `json:"target"`
	Phase  string `json:"phase"`
	Value  float64
	Lo, Hi float64
	N      int
}

// Name is how a side is named in verdicts: the target, with the run when
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
	Metric   string
	Unit     string // "J" or "ms"
	Meter    string // energy metrics only
	Estimate bool
	A, B     Side
	// Ratio is B/A with its bootstrap interval.
	Ratio, RatioLo, RatioHi float64
	PMannWhitney, PWelch    float64
	// Samples says what the tests compared: repetitions, sub-windows or
	// requests, and how many on each side.
	Samples string
	Verdict string
}

// Comparison is a set of rows and where they came from.
type Comparison struct {
	Title string
	Runs  []string
	Rows  []Row
}

// Pair names two sides to compare: a is the reference.
type Pair struct {
	A, B   *Analysed
	TA, TB string // targets
	Phase  string
}

// Pairs lists what compare puts side by side: every pair of targets
// serving the same function within the last run, and each target of each run against the same target
// in the run before it.
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
			// Targets serving different functions (nebula's wasm-fibonacci
			// and wasm-prime) are not alternatives to each other: only
			// platforms serving the same function are compared.
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

// Compare computes the rows of each pair: energy per request (total and
// dynamic) on every meter both sides have, and latency.
func Compare(title string, pairs []Pair, seed uint64) *Comparison {
	c := &Comparison{Title: title}
	seen := map[string]bool{}
	rng := rand.New(rand.NewPCG(seed, 0xc0))
	for _, p := range pairs {
		for _, r := range []*Analysed{p.A, p.B} {
			if !seen[r.Summary.RunID] {
				seen[r.Summary.RunID] = true
				c.Runs = append(c.Runs, r.Summary.RunID)
			}
		}
		cross := p.A != p.B
		pa, pb := p.A.Summary.Find(p.TA, p.Phase), p.B.Summary.Find(p.TB, p.Phase)
		for _, ea := range pa.Energy {
			eb := pb.Meter(ea.Meter)
			if eb == nil {
				continue
			}
			ga := p.A.Detail.Groups[energy.GroupKey{Target: p.TA, Phase: p.Phase, Meter: ea.Meter}]
			gb := p.B.Detail.Groups[energy.GroupKey{Target: p.TB, Phase: p.Phase, Meter: ea.Meter}]
			for _, dyn := range []bool{false, true} {
				metric := "energy per request"
				ia, ib := ea.JPerRequest, eb.JPerRequest
				sa, sb, what := ga.RepJ, gb.RepJ, "repetitions"
				if dyn {
					metric = "dynamic energy per request"
					ia, ib = ea.DynamicJPerRequest, eb.DynamicJPerRequest
					sa, sb = ga.RepDynamicJ, gb.RepDynamicJ
				}
				if min(len(sa), len(sb)) < energy.DefaultOptions().MinReps {
					// Too few repetitions for tests on them: compare the
					// 1-s windows, which miss run-to-run variation.
					sa, sb, what = ga.WindowJ, gb.WindowJ, windowsBasis
					if dyn {
						sa, sb = ga.WindowDynamicJ, gb.WindowDynamicJ
					}
				}
				row := Row{Metric: metric, Unit: "J", Meter: ea.Label, Estimate: ea.Estimate,
					A: side(p.A, p.TA, p.Phase, ia), B: side(p.B, p.TB, p.Phase, ib)}
				fill(&row, sa, sb, what, rng)
				row.Verdict = verdict(row, cross)
				c.Rows = append(c.Rows, row)
			}
		}
		la, lb := latencies(p.A.Run, p.TA, p.Phase), latencies(p.B.Run, p.TB, p.Phase)
		if len(la) > 1 && len(lb) > 1 {
			row := Row{Metric: "mean latency", Unit: "ms",
				A: Side{Run: p.A.Summary.RunID, Target: p.TA, Phase: p.Phase, Value: mean(la), Lo: math.NaN(), Hi: math.NaN(), N: len(la)},
				B: Side{Run: p.B.Summary.RunID, Target: p.TB, Phase: p.Phase, Value: mean(lb), Lo: math.NaN(), Hi: math.NaN(), N: len(lb)}}
			fill(&row, la, lb, "requests", rng)
			row.Verdict = verdict(row, cross)
			c.Rows = append(c.Rows, row)
		}
	}
	sort.Strings(c.Runs)
	return c
}

func side(a *Analysed, target, phase string, iv energy.Interval) Side {
	return Side{Run: a.Summary.RunID, Target: target, Phase: phase, Value: float64(iv.Value), Lo: float64(iv.Lo), Hi: float64(iv.Hi), N: iv.N}
}

func latencies(run *runstore.Run, target, phase string) []float64 {
	var out []float64
	for _, r := range run.Requests {
		if r.Target == target && r.Phase == phase && r.OK() {
			out = append(out, float64(r.LatencyNs)/1e6)
		}
	}
	return out
}

func mean(xs []float64) float64 {
	var s float64
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

// fill sets the ratio B/A with a bootstrap interval (each side resampled
// on its own) and the p-values of both tests.
func fill(r *Row, a, b []float64, what string, rng *rand.Rand) {
	r.Samples = fmt.Sprintf("%s, %d vs %d", what, len(a), len(b))
	r.Ratio, r.RatioLo, r.RatioHi = math.NaN(), math.NaN(), math.NaN()
	r.PMannWhitney, r.PWelch = math.NaN(), math.NaN()
	// A ratio means something only between two positive quantities: a
	// negative dynamic energy (idle busier than load) has none, and its
	// bootstrap would straddle zero into nonsense.
	positive := r.A.Value > 0 && r.B.Value > 0
	if positive {
		r.Ratio = r.B.Value / r.A.Value
	}
	if len(a) < 2 || len(b) < 2 {
		return
	}
	_, r.PMannWhitney = energy.MannWhitneyU(a, b)
	_, _, r.PWelch = energy.WelchT(a, b)
	if !positive {
		return
	}
	const iters = 2000
	rs := make([]float64, 0, iters)
	for range iters {
		var sa, sb float64
		for range a {
			sa += a[rng.IntN(len(a))]
		}
		for range b {
			sb += b[rng.IntN(len(b))]
		}
		if sa != 0 {
			rs = append(rs, (sb/float64(len(b)))/(sa/float64(len(a))))
		}
	}
	if len(rs) > 0 && !math.IsNaN(r.Ratio) {
		sort.Float64s(rs)
		// The samples' own ratio of means can differ from the estimate
		// (windows weigh requests differently from the pooled ratio): the
		// interval is the bootstrap's spread around the estimate, taken
		// multiplicatively.
		plugin := mean(b) / mean(a)
		k := r.Ratio / plugin
		r.RatioLo, r.RatioHi = k*rs[int(0.025*float64(len(rs)))], k*rs[int(0.975*float64(len(rs)-1))]
	}
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

// windowsBasis names the samples of an energy comparison made over 1-s
// windows because there were too few repetitions to test.
const windowsBasis = "1-s windows"

// verdict says the row in one plain sentence, e.g. "wasm used 212x
// (190-236x) less energy per request than docker-node (p < 0.001)". The p
// is the larger of the two tests'; a difference is claimed only when it is
// below 0.05 and the ratio's interval excludes 1.
func verdict(r Row, cross bool) string {
	a, b := r.A.name(cross), r.B.name(cross)
	if !(r.A.Value > 0) || !(r.B.Value > 0) {
		return fmt.Sprintf("%s of %s and %s cannot be compared as a ratio: it is not positive for both (%s, %s); a noisy or drifting idle baseline does that", r.Metric, a, b, fmtValue(r.A.Value, r.Unit), fmtValue(r.B.Value, r.Unit))
	}
	p := math.Max(r.PMannWhitney, r.PWelch)
	if math.IsNaN(r.PMannWhitney) || math.IsNaN(r.PWelch) {
		p = math.NaN()
	}
	est := ""
	if r.Estimate {
		est = " (estimated by a model)"
	}

	pText := fmtP(p)
	if strings.HasPrefix(r.Samples, windowsBasis) && !math.IsNaN(p) {
		// Windows of one repetition are not independent draws of the
		// run: the p-value says nothing of how repetitions differ.
		pText += ", over 1-s windows of fewer than 5 repetitions: run-to-run variation left out"
	}
	clear := p < 0.05 && !(r.RatioLo <= 1 && r.RatioHi >= 1)
	if !clear {
		return fmt.Sprintf("no clear difference in %s%s between %s and %s (ratio %s, %s)", r.Metric, est, a, b, fmtX(r.Ratio), pText)
	}
	verb, what := "used", r.Metric
	more, less := "more", "less"
	if r.Unit == "ms" {
		verb, what, more, less = "had", strings.TrimPrefix(r.Metric, "mean ")+" on average", "higher", "lower"
		what = "mean latency"
	}
	if r.Ratio > 1 { // b is the larger
		return fmt.Sprintf("%s %s %sx (%s-%sx) %s %s%s than %s (%s)", a, verb, fmtX(r.Ratio), fmtX(r.RatioLo), fmtX(r.RatioHi), less, what, est, b, pText)
	}
	return fmt.Sprintf("%s %s %sx (%s-%sx) %s %s%s than %s (%s)", a, verb, fmtX(1/r.Ratio), fmtX(1/r.RatioHi), fmtX(1/r.RatioLo), more, what, est, b, pText)
}

// PrintComparison writes the comparison table and verdicts.
func PrintComparison(w io.Writer, c *Comparison) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "metric\tmeter\tA\tB\tA value\tB value\tB/A (95% CI)\tMann-Whitney p\tWelch p\tsamples")
	for _, r := range c.Rows {
		meter := r.Meter
		if r.Estimate && !strings.Contains(meter, "estimate") {
			meter += " (estimate)"
		}
		ratio := fmtRatio(r.Ratio)
		if !math.IsNaN(r.RatioLo) && !math.IsNaN(r.RatioHi) {
			ratio += " (" + fmtRatio(r.RatioLo) + "-" + fmtRatio(r.RatioHi) + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Metric, meter,
			r.A.name(r.A.Run != r.B.Run), r.B.name(r.A.Run != r.B.Run),
			fmtValue(r.A.Value, r.Unit), fmtValue(r.B.Value, r.Unit),
			ratio, fmtPv(r.PMannWhitney), fmtPv(r.PWelch), r.Samples)
	}
	tw.Flush()
	fmt.Fprintln(w)
	for _, r := range c.Rows {
		fmt.Fprintln(w, "- "+r.Verdict)
	}
}

func fmtValue(v float64, u string) string {
	if u == "J" {
		return fmtJ(energy.Float(v))
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

// ComparePath is where a comparison of these runs is written.
func ComparePath(reportsDir string, c *Comparison) string {
	return filepath.Join(reportsDir, "compare-"+strings.Join(c.Runs, "_vs_")+".html")
}

// WriteComparison renders c to reportsDir/compare-<runs>.html and
// refreshes the index.
func WriteComparison(reportsDir string, c *Comparison) (string, error) {
	var b bytes.Buffer
	err := templates.ExecuteTemplate(&b, "compare.html", map[string]any{
		"Title": c.Title, "Font": fontCSS(), "C": c, "Generated": time.Now().UTC().Format(time.RFC3339),
	})
	if err != nil {
		return "", fmt.Errorf("report: render comparison: %w", err)
	}
	path := ComparePath(reportsDir, c)
	if err := runstore.WriteFileAtomic(path, b.Bytes()); err != nil {
		return "", fmt.Errorf("report: %w", err)
	}
	return path, WriteIndex(reportsDir)
}
