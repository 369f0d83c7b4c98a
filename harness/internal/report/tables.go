package report

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/academemes/harness/harness/internal/energy"
	"github.com/academemes/harness/harness/internal/runstore"
)

// energyTable is the summary's energy figures on one meter: one table per
// meter, so the meter is named once in its heading, not on every row.
type energyTable struct {
	ID    string
	Meter energy.MeterSummary
	Rows  []energyRow
}

type energyRow struct {
	Target, Mode, Phase string
	E                   *energy.Energy
}

func energyTables(sum *energy.Summary) []energyTable {
	var out []energyTable
	for i, m := range sum.Meters {
		et := energyTable{ID: "summary-table", Meter: m}
		if i > 0 {
			et.ID += "-" + slug(m.Name)
		}
		for _, t := range sum.Targets {
			for j := range t.Phases {
				if e := t.Phases[j].Meter(m.Name); e != nil {
					et.Rows = append(et.Rows, energyRow{t.Name, t.Mode, t.Phases[j].Phase, e})
				}
			}
		}
		if len(et.Rows) > 0 {
			out = append(out, et)
		}
	}
	return out
}

// functionTable puts platforms side by side per function and input, as
// the original study's tables did: one row per (function, input), per
// platform the start-up p50 and the joules per request (total and
// dynamic, with intervals), then each platform's ratio to the first.
// Targets pair up by the function they serve; the input is the measured
// phase's name after "load/".
type functionTable struct {
	ID        string
	Meter     energy.MeterSummary
	Platforms []string // the first is the reference of the ratios
	Rows      []functionRow
}

type functionRow struct {
	Function, Input string
	Cells           []functionCell // one per platform; Target "" where missing
	Ratios          []ratioCell    // platforms[1:] over platforms[0]
}

type functionCell struct {
	Target           string
	StartUpMs        energy.Float
	Total, Dynamic   energy.Interval
	Requests, Failed int
}

// ratioCell is B/A of dynamic and total joules per request with a
// bootstrap interval (as compare computes it); NaN where a side is not
// positive.
type ratioCell struct {
	Dynamic, DynamicLo, DynamicHi float64
	Total, TotalLo, TotalHi       float64
}

// platformOf names a target's platform: its kind, and its mode where the
// run has the same kind in several modes.
func platformOf(t runstore.TargetMeta, modes map[string]map[string]bool) string {
	if len(modes[t.Kind]) > 1 {
		return t.Kind + " (" + string(t.Mode) + ")"
	}
	return t.Kind
}

// inputOf is the input a measured phase ran: "n=10" for "load/n=10".
func inputOf(phase string) string {
	if in, ok := strings.CutPrefix(phase, runstore.PhaseLoad+"/"); ok {
		return in
	}
	return "–"
}

func functionTables(run *runstore.Run, sum *energy.Summary, det *energy.Detail) []functionTable {
	modes := map[string]map[string]bool{}
	for _, t := range run.Meta.Targets {
		if t.Skipped {
			continue
		}
		if modes[t.Kind] == nil {
			modes[t.Kind] = map[string]bool{}
		}
		modes[t.Kind][string(t.Mode)] = true
	}
	// function -> platform -> target, in the scenario's order.
	var functions, platforms []string
	byFn := map[string]map[string]string{}
	for _, t := range run.Meta.Targets {
		if t.Skipped || t.Function == "" {
			continue
		}
		pl := platformOf(t, modes)
		if byFn[t.Function] == nil {
			byFn[t.Function] = map[string]string{}
			functions = append(functions, t.Function)
		}
		if _, dup := byFn[t.Function][pl]; dup {
			continue // two targets of one platform and function: keep the first
		}
		byFn[t.Function][pl] = t.Name
		if !slices.Contains(platforms, pl) {
			platforms = append(platforms, pl)
		}
	}
	shared := false
	for _, fn := range functions {
		shared = shared || len(byFn[fn]) > 1
	}
	if !shared || len(platforms) < 2 {
		return nil
	}
	rng := rand.New(rand.NewPCG(1, 0xf7))
	var out []functionTable
	for i, m := range sum.Meters {
		ft := functionTable{ID: "function-table", Meter: m, Platforms: platforms}
		if i > 0 {
			ft.ID += "-" + slug(m.Name)
		}
		for _, fn := range functions {
			// Inputs in the order the first platform serving fn ran them.
			var phases []string
			for _, pl := range platforms {
				if tn, ok := byFn[fn][pl]; ok {
					for _, ts := range sum.Targets {
						if ts.Name != tn {
							continue
						}
						for _, ph := range ts.Phases {
							if !slices.Contains(phases, ph.Phase) {
								phases = append(phases, ph.Phase)
							}
						}
					}
				}
			}
			for _, phase := range phases {
				row := functionRow{Function: fn, Input: inputOf(phase)}
				for _, pl := range platforms {
					c := functionCell{StartUpMs: energy.Float(math.NaN()), Total: noInterval(), Dynamic: noInterval()}
					if tn, ok := byFn[fn][pl]; ok {
						if ps := sum.Find(tn, phase); ps != nil {
							c.Target = tn
							c.Requests, c.Failed = ps.Requests, ps.Requests-ps.Successes
							if ps.StartUpMs != nil {
								c.StartUpMs = ps.StartUpMs.P50
							}
							if e := ps.Meter(m.Name); e != nil {
								c.Total, c.Dynamic = e.JPerRequest, e.DynamicJPerRequest
							}
						}
					}
					row.Cells = append(row.Cells, c)
				}
				for k := 1; k < len(platforms); k++ {
					row.Ratios = append(row.Ratios, ratio(det, m.Name, phase, row.Cells[0], row.Cells[k], rng))
				}
				ft.Rows = append(ft.Rows, row)
			}
		}
		out = append(out, ft)
	}
	return out
}

func noInterval() energy.Interval {
	n := energy.Float(math.NaN())
	return energy.Interval{Value: n, Lo: n, Hi: n}
}

// ratio is b over a for dynamic and total joules per request, with the
// interval compare gives (bootstrap over repetitions, or over 1-s windows
// when there are fewer than five).
func ratio(det *energy.Detail, meter, phase string, a, b functionCell, rng *rand.Rand) ratioCell {
	n := math.NaN()
	rc := ratioCell{n, n, n, n, n, n}
	if a.Target == "" || b.Target == "" {
		return rc
	}
	ga := det.Groups[energy.GroupKey{Target: a.Target, Phase: phase, Meter: meter}]
	gb := det.Groups[energy.GroupKey{Target: b.Target, Phase: phase, Meter: meter}]
	if ga == nil || gb == nil {
		return rc
	}
	one := func(ia, ib energy.Interval, ra, rb, wa, wb []float64) (float64, float64, float64) {
		if !(ia.Value > 0) || !(ib.Value > 0) {
			return n, n, n
		}
		sa, sb := ra, rb
		if min(len(sa), len(sb)) < energy.DefaultOptions().MinReps {
			sa, sb = wa, wb
		}
		r := Row{A: Side{Value: float64(ia.Value)}, B: Side{Value: float64(ib.Value)}}
		fill(&r, sa, sb, "", rng)
		return r.Ratio, r.RatioLo, r.RatioHi
	}
	rc.Dynamic, rc.DynamicLo, rc.DynamicHi = one(a.Dynamic, b.Dynamic, ga.RepDynamicJ, gb.RepDynamicJ, ga.WindowDynamicJ, gb.WindowDynamicJ)
	rc.Total, rc.TotalLo, rc.TotalHi = one(a.Total, b.Total, ga.RepJ, gb.RepJ, ga.WindowJ, gb.WindowJ)
	return rc
}

// fmtRatioCI is "41× [30, 55]", "41× [unbounded]" or "–". A bound at or
// below zero means a side's resamples reached zero or below: the ratio
// then has no finite interval, and printing the negative bound would
// suggest one.
func fmtRatioCI(v, lo, hi float64) string {
	if math.IsNaN(v) {
		return "–"
	}
	s := fmtX(v) + "×"
	if lo <= 0 || hi <= 0 {
		return s + " [unbounded]"
	}
	if !math.IsNaN(lo) && !math.IsNaN(hi) {
		s += " [" + fmtX(lo) + ", " + fmtX(hi) + "]"
	}
	return s
}
