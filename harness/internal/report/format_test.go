package report

import (
	"math"
	"math/rand/v2"
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
			fts := functionTables(a.Run, a.Summary, a.Detail)
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

func TestFillRatioOnlyBetweenPositives(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct {
		name   string
		a, b   float64
		ratio  bool
		as, bs []float64
	}{
		{"both positive", 2, 6, true, []float64{1.9, 2, 2.1}, []float64{5.9, 6, 6.1}},
		{"a negative", -0.05, 0.5, false, []float64{-0.1, 0, -0.05}, []float64{0.4, 0.5, 0.6}},
		{"b zero", 1, 0, false, []float64{1, 1, 1}, []float64{0, 0, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Row{A: Side{Value: tc.a}, B: Side{Value: tc.b}}
			fill(&r, tc.as, tc.bs, "test", rng)
			if got := !math.IsNaN(r.Ratio) && !math.IsNaN(r.RatioLo) && !math.IsNaN(r.RatioHi); got != tc.ratio {
				t.Errorf("ratio %v [%v, %v]: present %v, want %v", r.Ratio, r.RatioLo, r.RatioHi, got, tc.ratio)
			}
			if tc.ratio && !(r.RatioLo <= r.Ratio && r.Ratio <= r.RatioHi) {
				t.Errorf("ratio %v outside its interval [%v, %v]", r.Ratio, r.RatioLo, r.RatioHi)
			}
			if math.IsNaN(r.PMannWhitney) || math.IsNaN(r.PWelch) {
				t.Errorf("the tests should run whatever the sign: %v %v", r.PMannWhitney, r.PWelch)
			}
		})
	}
}
