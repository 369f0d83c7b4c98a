package report

import (
	"math"
	"strings"
	"testing"

	"github.com/academemes/harness/harness/internal/energy"
)

func TestFmtJ(t *testing.T) {
	for _, c := range []struct {
		name string
		v    float64
		want string
	}{
		{"millijoules", 0.0213, "21.3 mJ"},
		{"negative joules", -4.1, "-4.10 J"},
		{"kilojoules", 1234, "1.23 kJ"},
		{"nanojoules", 5e-7, "500 nJ"},
		{"rounding residue is zero", -3.55e-15, "0 J"},
		{"zero", 0, "0 J"},
		{"NaN", math.NaN(), "–"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := fmtJ(energy.Float(c.v)); got != c.want {
				t.Errorf("fmtJ(%g) = %q, want %q", c.v, got, c.want)
			}
		})
	}
}

func TestFmtInterval(t *testing.T) {
	for _, c := range []struct {
		name      string
		v, lo, hi float64
		want      string
	}{
		{"narrow", 0.0213, 0.0201, 0.0226, "21.3 mJ [20.1, 22.6]"},
		{"wide, across zero: rounded to the interval", 0.00797, -0.00325, 0.0173, "8.0 mJ [-3.2, 17.3]"},
		{"negative value", -0.00164, -0.00492, 7.99e-15, "-1.6 mJ [-4.9, 0.0]"},
		{"unit of the largest bound", 5e-6, -2e-3, 3e-3, "0.01 mJ [-2.00, 3.00]"},
		{"no bounds", 0.5, math.NaN(), math.NaN(), "500 mJ"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := fmtInterval(energy.Interval{Value: energy.Float(c.v), Lo: energy.Float(c.lo), Hi: energy.Float(c.hi)})
			if got != c.want {
				t.Errorf("got %q, want %q", got, c.want)
			}
			if strings.Contains(got, "e-") || strings.Contains(got, "e+") {
				t.Errorf("%q is in exponent form", got)
			}
		})
	}
}

func TestTicks(t *testing.T) {
	for _, c := range []struct {
		name     string
		lo, hi   float64
		log      bool
		min, max int // labelled ticks
	}{
		{"nearly constant power", 6.95, 7.05, false, 3, 11},
		{"watts", 0, 40, false, 3, 11},
		{"microjoules", -5e-6, 17e-6, false, 3, 11},
		{"log within a decade", 3.5, 4.3, true, 3, 11},
		{"log over decades", 0.01, 2000, true, 4, 11},
		{"a range that once stepped by 2.5", 0, 12, false, 3, 11},
		{"a small range that once stepped by 0.25", 0.1, 1.3, false, 3, 11},
	} {
		t.Run(c.name, func(t *testing.T) {
			var labels []string
			var ts = linTicks{}.Ticks(c.lo, c.hi)
			if c.log {
				ts = logTicks{}.Ticks(c.lo, c.hi)
			}
			for _, tk := range ts {
				if tk.Label != "" {
					labels = append(labels, tk.Label)
				}
			}
			if len(labels) < c.min || len(labels) > c.max {
				t.Errorf("%d labels %q, want %d-%d", len(labels), labels, c.min, c.max)
			}
			if !c.log {
				// No stray decimals: every label of a linear axis has as
				// many decimals as the others ("5.0" beside "2.5" has one
				// too many).
				dec := func(l string) int {
					if i := strings.IndexByte(l, '.'); i >= 0 {
						return len(l) - i - 1
					}
					return 0
				}
				for _, l := range labels {
					if dec(l) != dec(labels[0]) {
						t.Errorf("labels %q carry different decimals", labels)
					}
				}
				// Steps of 1, 2 or 5 times a power of ten: with 2.5 the
				// labels read "0.0 2.5 5.0 7.5 10.0", decimals that the
				// round ones do not need.
				var vs []float64
				for _, tk := range ts {
					if tk.Label != "" {
						vs = append(vs, tk.Value)
					}
				}
				if len(vs) > 1 {
					step := vs[1] - vs[0]
					m := step / math.Pow(10, math.Floor(math.Log10(step)+1e-9))
					if math.Abs(m-1) > 1e-6 && math.Abs(m-2) > 1e-6 && math.Abs(m-5) > 1e-6 {
						t.Errorf("labels %q step by %g", labels, step)
					}
				}
			}
			seen := map[string]bool{}
			for _, l := range labels {
				if seen[l] {
					t.Errorf("label %q repeats: %q", l, labels)
				}
				seen[l] = true
			}
		})
	}
}

// TestIntegerTicks: axes of counts (requests in a histogram bin,
// requests per second) have no ticks between whole numbers.
func TestIntegerTicks(t *testing.T) {
	for _, hi := range []float64{1, 2, 3, 7, 40} {
		for _, tk := range (linTicks{Integer: true}).Ticks(0, hi) {
			if tk.Value != math.Trunc(tk.Value) || strings.Contains(tk.Label, ".") {
				t.Errorf("0-%g: tick %+v", hi, tk)
			}
		}
	}
}

func TestFunctionTableAndPairs(t *testing.T) {
	dir := t.TempDir()
	a, err := LoadAnalysed(demoRun(t, dir, 1, nil))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		functions []string // per target, in run order
		tables    int
		pairs     int
	}{
		{"same function: side by side and compared", []string{"memes", "memes"}, 1, 1},
		{"different functions: neither", []string{"fibonacci", "prime"}, 0, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			for i := range a.Run.Meta.Targets {
				a.Run.Meta.Targets[i].Function = c.functions[i%len(c.functions)]
			}
			fts := functionTables(a.Run, a.Summary, validity{})
			if got := len(fts); got != len(a.Summary.Meters)*c.tables {
				t.Fatalf("%d function tables, want %d per meter", got, c.tables)
			}
			for _, ft := range fts {
				if len(ft.Platforms) != 2 || len(ft.Rows) == 0 {
					t.Fatalf("platforms %q, %d rows", ft.Platforms, len(ft.Rows))
				}
				r := ft.Rows[0]
				if r.Function != "memes" || r.Cells[0].Target == "" || r.Cells[1].Target == "" || !r.Cells[1].Dynamic.Value.OK() {
					t.Errorf("row %+v lacks a platform's figures", r)
				}
				if math.IsNaN(r.Ratios[0].Dynamic) || !(r.Ratios[0].DynamicLo <= r.Ratios[0].Dynamic && r.Ratios[0].Dynamic <= r.Ratios[0].DynamicHi) {
					t.Errorf("ratio %+v is missing or outside its interval", r.Ratios[0])
				}
			}
			if got := len(Pairs([]*Analysed{a})); got != c.pairs {
				t.Errorf("%d pairs, want %d", got, c.pairs)
			}
		})
	}
}

func TestGroupWarnings(t *testing.T) {
	sum := &energy.Summary{Targets: []energy.TargetSummary{
		{Name: "a", Phases: []energy.PhaseSummary{{Phase: "load/n=1", Warnings: []string{"only 7 samples in repetition 1's window", "odd one"}}}},
		{Name: "b", Phases: []energy.PhaseSummary{{Phase: "load", Warnings: []string{"only 9 samples in repetition 2's window"}}}},
	}}
	got := groupWarnings(sum)
	want := []string{
		"a load/n=1: only 7 samples in repetition 1's window (the same kind of warning in 1 more phase(s): b load)",
		"a load/n=1: odd one",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("groupWarnings =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestRatioOnlyOverResolvedPositives: a ratio is made only between two
// positive values that the meter resolves and that their repetitions
// tell from zero; a dynamic energy of 2e-15 J once became a ratio of
// 22,500,560,526,167.
func TestRatioOnlyOverResolvedPositives(t *testing.T) {
	side := func(below bool, vs ...float64) Side {
		s := Side{Target: "x", Phase: "load", Values: vs, BelowResolution: below}
		s.Value, s.Lo, s.Hi = energy.TInterval(vs, 0.95)
		return s
	}
	good := side(false, 1.9, 2, 2.1)
	for _, tc := range []struct {
		name  string
		a, b  Side
		ratio bool
		why   string
		unit  string
	}{
		{"both positive", good, side(false, 5.9, 6, 6.1), true, "", ""},
		{"a spread latency: positive whatever its interval", side(false, 1, 2, 25), good, true, "", "ms"},
		{"a spread energy: not told from zero", side(false, 1, 2, 25), good, false, "cannot be told from zero", ""},
		{"rounding residue", side(false, 2e-15, 2.1e-15, 1.9e-15), good, false, "indistinguishable from zero", ""},
		{"interval reaches zero", side(false, 1e-3, -1e-3, 3e-3), good, false, "cannot be told from zero", ""},
		{"negative", side(false, -0.1, -0.05, -0.02), good, false, "not positive", ""},
		{"zero", side(false, 0, 0, 0), good, false, "indistinguishable from zero", ""},
		{"below resolution", side(true, 1, 1.1, 0.9), good, false, "below the meter's resolution", ""},
		{"one repetition", side(false, 2), good, false, "one repetition", ""},
		{"numerator below resolution too", good, side(true, 1, 1.1, 0.9), false, "below the meter's resolution", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			unit := tc.unit
			if unit == "" {
				unit = "J"
			}
			r, lo, hi, why := ratioOf(tc.a, tc.b, unit)
			if got := !math.IsNaN(r); got != tc.ratio {
				t.Fatalf("ratio %v [%v, %v] (%q): present %v, want %v", r, lo, hi, why, got, tc.ratio)
			}
			if tc.ratio && !(lo <= r && r <= hi && lo > 0) {
				t.Errorf("ratio %v outside its interval [%v, %v]", r, lo, hi)
			}
			if !strings.Contains(why, tc.why) {
				t.Errorf("why %q, want it to say %q", why, tc.why)
			}
		})
	}
}
