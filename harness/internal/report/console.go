package report

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/academemes/harness/harness/internal/energy"
)

var funcs = template.FuncMap{
	"joules":    fmtJ,
	"interval":  fmtInterval,
	"interval2": fmtInterval2,
	"num":       fmtNum,
	"ms":        func(f energy.Float) string { return fmtNum(f) + " ms" },
	"pct":       func(f energy.Float) string { return fmtPct(f) },
	"watts":     func(f energy.Float) string { return fmtW(f) },
	"slug":      slug,
	"join":      strings.Join,
	"pv":        fmtPv,
	"sidetext":  sideText,
	"ratiotext": ratioText,
	"secs":      func(s, e int64) float64 { return float64(e-s) / 1e9 },
	"nsms":      func(ns float64) float64 { return ns / 1e6 },
	"f":         func(v float64) energy.Float { return energy.Float(v) },
	"swatch":    swatch,
	"ratio":     fmtRatioCI,
	"minus":     func(a, b int) int { return a - b },
	"iv": func(v, lo, hi energy.Float) energy.Interval {
		return energy.Interval{Value: v, Lo: lo, Hi: hi}
	},
	"input":     inputOf,
	"uwh":       fmtUWh,
	"describe":  describe,
	"condense":  condense,
	"fact":      fmtFact,
	"neg":       func(f energy.Float) bool { return f.OK() && f < -zeroJ },
	"grams2":    fmtGInterval2,
	"intensity": fmtIntensity,
	"embodied":  embodiedText,
	"coldmode":  coldMode,
	"startup":   startUpText,
}

// swatch is a legend key drawn with CSS (not SVG, so that the page's only
// SVG elements are plots). The colour comes from css(), never from data.
func swatch(it LegendItem) template.HTML {
	c := template.HTMLEscapeString(it.Colour)
	var st string
	switch it.Shape {
	case "line":
		st = "width:18px;height:0;border-top:2px solid " + c + ";vertical-align:middle"
	case "dash":
		st = "width:18px;height:0;border-top:2px dashed " + c + ";vertical-align:middle"
	case "dot":
		st = "width:9px;height:9px;border-radius:50%;background:" + c
	case "square":
		st = "width:7px;height:7px;border:1.5px solid " + c
	case "triangle":
		st = "width:0;height:0;border-left:5px solid transparent;border-right:5px solid transparent;border-bottom:9px solid " + c
	case "cross":
		return template.HTML(`<span class="sw" style="color:` + c + `;font-weight:bold">×</span>`)
	default: // box
		st = "width:14px;height:10px;background:" + c
	}
	return template.HTML(`<span class="sw" style="display:inline-block;` + st + `"></span>`)
}

// jUnit picks a prefix for joules so that a magnitude a reads 1-999.
// Below a nanojoule nothing any meter resolves is left: such a value is
// floating-point residue and reads as zero (see fmtJ).
func jUnit(a float64) (scale float64, name string) { return prefixed(a, 1e-9, "J") }

// prefixed picks an SI prefix (k, none, m, µ, n) for unit so that a
// magnitude a reads 1-999; under zero, a reads as an unprefixed zero.
func prefixed(a, zero float64, unit string) (scale float64, name string) {
	a = math.Abs(a)
	switch {
	case a >= 1e3:
		return 1e-3, "k" + unit
	case a >= 1 || a < zero:
		return 1, unit
	case a >= 1e-3:
		return 1e3, "m" + unit
	case a >= 1e-6:
		return 1e6, "µ" + unit
	default:
		return 1e9, "n" + unit
	}
}

// zeroJ is the magnitude under which joules are shown as 0: far below the
// resolution of any meter, so only rounding residue of a subtraction.
const zeroJ = 1e-9

// sig is x with three significant digits and never in exponent form
// ("0.0123", "12.3", "1234"), so that columns of figures read alike.
func sig(x float64) string {
	return fixed(x, sigDecimals(x, 3))
}

// sigDecimals is how many decimals give x n significant digits.
func sigDecimals(x float64, n int) int {
	if x == 0 || math.IsNaN(x) || math.IsInf(x, 0) {
		return 0
	}
	return max(0, n-1-int(math.Floor(math.Log10(math.Abs(x)))))
}

// fixed formats x with d decimals; NaN and infinities are "–", and a
// rounded zero loses its sign.
func fixed(x float64, d int) string {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return "–"
	}
	s := strconv.FormatFloat(x, 'f', d, 64)
	if strings.Trim(s, "-0.") == "" {
		s = strings.TrimPrefix(s, "-")
	}
	return s
}

// fmtJ is joules with a prefix that makes them read 1-999 and three
// significant digits: "21.3 mJ", "-4.10 J", "0 J".
func fmtJ(f energy.Float) string {
	if !f.OK() {
		return "–"
	}
	v := float64(f)
	if math.Abs(v) < zeroJ {
		return "0 J"
	}
	k, u := jUnit(v)
	return sig(v*k) + " " + u
}

// fmtUWh is joules in microwatt-hours, the original study's unit, with a
// prefix that makes them read 1-999: "5.61 µWh", "1.17 mWh".
func fmtUWh(j energy.Float) string {
	if !j.OK() {
		return "–"
	}
	u := energy.UWh(float64(j))
	switch a := math.Abs(u); {
	case a < zeroJ/3.6e-3:
		return "0 µWh"
	case a >= 1e6:
		return sig(u/1e6) + " Wh"
	case a >= 1e3:
		return sig(u/1e3) + " mWh"
	case a < 1:
		return sig(u*1e3) + " nWh"
	}
	return sig(u) + " µWh"
}

// belowResolution is what a value the meter cannot resolve reads as,
// wherever it would be shown: never as a number.
const belowResolution = "below resolution"

// fmtInterval is "21.3 mJ [20.1, 22.6]"; see intervalParts.
func fmtInterval(iv energy.Interval) string {
	v, b := intervalParts(iv)
	if b == "" {
		return v
	}
	return v + " " + b
}

// fmtInterval2 is an interval on two lines for narrow table cells.
func fmtInterval2(iv energy.Interval) template.HTML {
	v, b := intervalParts(iv)
	if b == "" {
		return template.HTML(template.HTMLEscapeString(v))
	}
	return template.HTML(template.HTMLEscapeString(v) + `<br><small>` + template.HTMLEscapeString(b) + `</small>`)
}

// intervalParts is "21.3 mJ" and "[20.1, 22.6]": value and bounds in one
// unit (the largest magnitude's), rounded to the interval's precision (two
// significant digits of its half-width) and to at most three significant
// digits of the largest, so a value that the interval cannot tell from
// zero is not shown with false digits. Brackets keep negative bounds
// unambiguous.
func intervalParts(iv energy.Interval) (value, bounds string) {
	return intervalPartsIn(iv, joulesUnit)
}

// unit is how a quantity is shown: a prefix that makes a magnitude read
// 1-999, the magnitude below which it is rounding residue, and its
// formatter for one value.
type unit struct {
	scale func(float64) (float64, string)
	zero  float64
	zeroS string
	one   func(energy.Float) string
}

var joulesUnit = unit{scale: jUnit, zero: zeroJ, zeroS: "0 J", one: fmtJ}

// intervalPartsIn is intervalParts in unit u.
func intervalPartsIn(iv energy.Interval, u unit) (value, bounds string) {
	if iv.BelowResolution {
		return belowResolution, ""
	}
	if !iv.Value.OK() {
		return "–", ""
	}
	v, lo, hi := float64(iv.Value), float64(iv.Lo), float64(iv.Hi)
	if !iv.Lo.OK() || !iv.Hi.OK() {
		return u.one(iv.Value), ""
	}
	big := math.Max(math.Abs(v), math.Max(math.Abs(lo), math.Abs(hi)))
	if big < u.zero {
		return u.zeroS, "[0, 0]"
	}
	k, un := u.scale(big)
	d := sigDecimals(big*k, 3)
	if hw := (hi - lo) / 2 * k; hw > 0 {
		// The value keeps two significant digits of its own.
		d = min(d, max(sigDecimals(hw, 2), sigDecimals(v*k, 2)))
	}
	return fixed(v*k, d) + " " + un, "[" + fixed(lo*k, d) + ", " + fixed(hi*k, d) + "]"
}

func fmtNum(f energy.Float) string {
	if !f.OK() {
		return "–"
	}
	return sig(float64(f))
}

func fmtW(f energy.Float) string {
	if !f.OK() {
		return "–"
	}
	return sig(float64(f)) + " W"
}

func fmtPct(f energy.Float) string {
	if !f.OK() {
		return "–"
	}
	return strconv.FormatFloat(100*float64(f), 'f', 0, 64) + "%"
}

// PrintSummary writes the console table the runner prints at the end: one
// row per target, measured phase and meter, dynamic energy first, with
// failed requests and whether the validity checks passed for the phase.
// Estimates say so in the meter column and in a note under the table;
// under it come what starts cost (cold-start energy, start-up ratios, and
// what the Wasm modes mean where a Wasm target starts per request), and
// an invalid run says so, naming each problem.
func PrintSummary(w io.Writer, s *energy.Summary) {
	v := validity{Valid: true}
	if s.Validity != nil {
		v = validity{Known: true, Valid: s.Validity.Valid, Problems: s.Validity.Problems}
		v.Valid = v.Valid && len(v.Problems) == 0
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "target\tmode\tphase\tmeter\tdynamic J/request (95% CI)\ttotal J/request (95% CI)\tlatency p50\tp99\tthroughput\tfailed\tcold starts\tvalid")
	estimate := false
	var skipped []string
	for _, t := range s.Targets {
		if t.Skipped {
			fmt.Fprintf(tw, "%s\t%s\t\t(skipped)\t\t\t\t\t\t\t\t\n", t.Name, t.Mode)
			skipped = append(skipped, t.Name+": "+t.SkipReason)
			continue
		}
		for _, p := range t.Phases {
			rows := p.Energy
			if len(rows) == 0 {
				rows = []energy.Energy{{Label: "(no meter)", JPerRequest: energy.Interval{Value: energy.Float(math.NaN())}, DynamicJPerRequest: energy.Interval{Value: energy.Float(math.NaN())}}}
			}
			valid := "-"
			if v.Known {
				valid = "yes"
				switch {
				case len(v.problemsOf(t.Name, p.Phase, 0)) > 0:
					valid = "NO"
				case v.hasRunProblem():
					valid = "NO (run)"
				}
			}
			failed := "0"
			if f := p.Requests - p.Successes; f > 0 {
				failed = fmt.Sprintf("%d (%.1f%%)", f, 100*float64(f)/float64(p.Requests))
			}
			for _, e := range rows {
				label := e.Label
				if e.Estimate {
					estimate = true
					if !strings.Contains(label, "estimate") {
						label += " (estimate)"
					}
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s/s\t%s\t%d/%d\t%s\n",
					t.Name, t.Mode, p.Phase, label,
					fmtInterval(e.DynamicJPerRequest), fmtInterval(e.JPerRequest),
					fmtNum(p.LatencyMs.P50)+" ms", fmtNum(p.LatencyMs.P99)+" ms",
					fmtNum(p.ThroughputRPS), failed, p.ColdStarts, p.Requests, valid)
			}
		}
	}
	tw.Flush()
	for _, sk := range skipped {
		fmt.Fprintln(w, "Skipped "+sk)
	}
	if estimate {
		fmt.Fprintln(w, "Figures from a meter marked (estimate) come from a model of power, not from a measurement.")
	}
	printStartUps(w, s)
	printCarbon(w, s)
	switch {
	case !v.Known:
		fmt.Fprintln(w, "Validity: not recorded for this run.")
	case v.Valid:
		fmt.Fprintln(w, "Validity: every check passed.")
	default:
		fmt.Fprintf(w, "INVALID RUN: %d problem(s); figures marked NO above cannot be trusted:\n", len(v.Problems))
		for _, line := range condense(v.Problems) {
			fmt.Fprintln(w, "  - "+line)
		}
	}
	n := len(s.Warnings)
	for _, t := range s.Targets {
		for _, p := range t.Phases {
			n += len(p.Warnings)
		}
	}
	if n > 0 {
		fmt.Fprintf(w, "%d warning(s); see the report.\n", n)
	}
}

// CSVHeader is the header of the summary CSV: one row per target, phase
// and meter, in units named in the column names; the carbon columns
// (CarbonCSVHeader) come last.
var CSVHeader = append([]string{
	"run_id", "target", "kind", "mode", "phase", "meter", "estimate", "source",
	"reps", "requests", "successes", "throughput_rps",
	"latency_p50_ms", "latency_p90_ms", "latency_p99_ms", "latency_max_ms",
	"cold_starts", "start_up_p50_ms", "start_up_p99_ms",
	"window_s", "total_j", "idle_w", "dynamic_j",
	"j_per_request", "j_per_request_lo", "j_per_request_hi",
	"dynamic_j_per_request", "dynamic_j_per_request_lo", "dynamic_j_per_request_hi", "interval_method",
	"marginal_j_per_request", "marginal_lo", "marginal_hi",
	"per_request_p50_j", "per_request_p90_j", "coverage",
	"dynamic_uwh_per_request", "dynamic_uwh_per_request_lo", "dynamic_uwh_per_request_hi", "uwh_per_request",
	"below_resolution", "resolution_j", "per_request_limited_by_meter",
	"cold_start_dynamic_j_per_request", "cold_start_lo", "cold_start_hi", "cold_start_uwh_per_request",
	"valid", "validity_problems",
}, CarbonCSVHeader...)

// WriteCSV writes the summary as CSV for pandas and R: NaN for missing.
// A figure below the meter's resolution is NaN with below_resolution
// true, never a number; µWh columns give the original study's unit
// beside joules; valid is empty where the run recorded no validity.
func WriteCSV(w io.Writer, s *energy.Summary) error {
	v := validity{}
	if s.Validity != nil {
		v = validity{Known: true, Valid: s.Validity.Valid && len(s.Validity.Problems) == 0, Problems: s.Validity.Problems}
	}
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVHeader); err != nil {
		return err
	}
	f := func(v energy.Float) string { return strconv.FormatFloat(float64(v), 'g', -1, 64) }
	for _, t := range s.Targets {
		for _, p := range t.Phases {
			su50, su99 := energy.Float(math.NaN()), energy.Float(math.NaN())
			if p.StartUpMs != nil {
				su50, su99 = p.StartUpMs.P50, p.StartUpMs.P99
			}
			base := []string{s.RunID, t.Name, t.Kind, t.Mode, p.Phase}
			req := []string{strconv.Itoa(p.Reps), strconv.Itoa(p.Requests), strconv.Itoa(p.Successes), f(p.ThroughputRPS),
				f(p.LatencyMs.P50), f(p.LatencyMs.P90), f(p.LatencyMs.P99), f(p.LatencyMs.Max),
				strconv.Itoa(p.ColdStarts), f(su50), f(su99)}
			rows := p.Energy
			if len(rows) == 0 {
				rows = []energy.Energy{{}}
			}
			for _, e := range rows {
				nanF := energy.Float(math.NaN())
				m50, m90 := nanF, nanF
				if e.PerRequest != nil {
					m50, m90 = e.PerRequest.P50, e.PerRequest.P90
				}
				mj, mlo, mhi := nanF, nanF, nanF
				if e.Marginal != nil {
					mj, mlo, mhi = e.Marginal.JPerRequest, e.Marginal.Lo, e.Marginal.Hi
				}
				rec := append(append(append([]string{}, base...), e.Meter, strconv.FormatBool(e.Estimate), e.Source), req...)
				tot, dyn := resolved(e.JPerRequest), resolved(e.DynamicJPerRequest)
				uwh := func(x energy.Float) string { return f(energy.Float(energy.UWh(float64(x)))) }
				limited := false
				if e.PerRequest != nil {
					limited = e.PerRequest.LimitedByMeter
				}
				cs, clo, chi := nanF, nanF, nanF
				for _, c := range s.ColdStarts {
					if c.Cold == t.Name && c.Phase == p.Phase && c.Meter == e.Meter {
						iv := resolved(c.DynamicJPerRequest)
						cs, clo, chi = iv.Value, iv.Lo, iv.Hi
					}
				}
				if e.Meter == "" {
					rec = append(rec, "NaN", "NaN", "NaN", "NaN", "NaN", "NaN", "NaN", "NaN", "NaN", "NaN", "", "NaN", "NaN", "NaN", "NaN", "NaN", "NaN",
						"NaN", "NaN", "NaN", "NaN", "false", "NaN", "false", "NaN", "NaN", "NaN", "NaN")
				} else {
					rec = append(rec, f(e.WindowS), f(e.TotalJ), f(e.IdleW), f(e.DynamicJ),
						f(tot.Value), f(tot.Lo), f(tot.Hi),
						f(dyn.Value), f(dyn.Lo), f(dyn.Hi), e.DynamicJPerRequest.Method,
						f(mj), f(mlo), f(mhi), f(m50), f(m90), f(e.Coverage),
						uwh(dyn.Value), uwh(dyn.Lo), uwh(dyn.Hi), uwh(tot.Value),
						strconv.FormatBool(e.DynamicJPerRequest.BelowResolution), f(e.ResolutionJ), strconv.FormatBool(limited),
						f(cs), f(clo), f(chi), uwh(cs))
				}
				valid := ""
				var problems []string
				if v.Known {
					ps := v.problemsOf(t.Name, p.Phase, 0)
					for _, pr := range v.Problems {
						if pr.Phase == "" {
							ps = append(ps, pr)
						}
					}
					valid = strconv.FormatBool(len(ps) == 0)
					for _, pr := range ps {
						problems = append(problems, describe(pr))
					}
				}
				rec = append(rec, valid, strings.Join(problems, " | "))
				rec = append(rec, carbonCSV(e.Carbon)...)
				if err := cw.Write(rec); err != nil {
					return err
				}
			}
		}
	}
	cw.Flush()
	return cw.Error()
}

// resolved is iv, or NaN throughout when it is below the meter's
// resolution: such a value is not a number to compute with.
func resolved(iv energy.Interval) energy.Interval {
	if iv.BelowResolution {
		n := energy.Float(math.NaN())
		iv.Value, iv.Lo, iv.Hi = n, n, n
	}
	return iv
}

// fmtFact shows one value of a target's report (run.json's
// targets[].report): numbers and text as they are, anything nested as
// compact JSON.
func fmtFact(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case float64:
		if v == math.Trunc(v) && math.Abs(v) < 1e15 {
			return strconv.FormatInt(int64(v), 10) // counts and nanoseconds, not 5.58e+09
		}
		return strconv.FormatFloat(v, 'g', -1, 64)
	case nil:
		return ""
	}
	if b, err := json.Marshal(v); err == nil {
		return string(b)
	}
	return fmt.Sprint(v)
}
