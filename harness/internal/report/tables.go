package report

import (
	"fmt"
	"math"
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
	Mark                mark
}

func energyTables(sum *energy.Summary, v validity) []energyTable {
	var out []energyTable
	for i, m := range sum.Meters {
		et := energyTable{ID: "summary-table", Meter: m}
		if i > 0 {
			et.ID += "-" + slug(m.Name)
		}
		for _, t := range sum.Targets {
			for j := range t.Phases {
				if e := t.Phases[j].Meter(m.Name); e != nil {
					et.Rows = append(et.Rows, energyRow{t.Name, t.Mode, t.Phases[j].Phase, e, v.Mark(t.Name, t.Phases[j].Phase, 0)})
				}
			}
		}
		if len(et.Rows) > 0 {
			out = append(out, et)
		}
	}
	return out
}

// coldStartRow is one line of the cold-start energy table.
type coldStartRow struct {
	energy.ColdStartEnergy
	Label string // the meter's
}

func coldStartRows(sum *energy.Summary) []coldStartRow {
	var out []coldStartRow
	for _, c := range sum.ColdStarts {
		out = append(out, coldStartRow{c, meterLabel(sum, c.Meter)})
	}
	return out
}

// notDrawn says, per phase, why its per-request distribution is not
// drawn: the meter samples less often than a request lasts, so the
// energy of one request cannot be told from its neighbours'.
func notDrawn(sum *energy.Summary) []string {
	var out []string
	for _, t := range sum.Targets {
		for _, ph := range t.Phases {
			for _, e := range ph.Energy {
				d := e.PerRequest
				if d == nil || !d.LimitedByMeter {
					continue
				}
				s := fmt.Sprintf("%s %s on %s: the meter samples every %s, longer than a typical request (%s)", t.Name, ph.Phase, e.Label, fmtNum(d.SampleIntervalMs)+" ms", fmtNum(d.TypicalLatencyMs)+" ms")
				if d.Note != "" {
					s += ": " + d.Note
				}
				out = append(out, s)
			}
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
	E                *energy.Energy
	Mark             mark
}

// ratioCell is B/A of dynamic and total joules per request with an
// interval, as compare computes them from the repetitions; NaN where
// there is none, and Why... then says why.
type ratioCell struct {
	Dynamic, DynamicLo, DynamicHi float64
	Total, TotalLo, TotalHi       float64
	WhyDynamic, WhyTotal          string
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

func functionTables(run *runstore.Run, sum *energy.Summary, v validity) []functionTable {
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
								c.Total, c.Dynamic, c.E = e.JPerRequest, e.DynamicJPerRequest, e
							}
							c.Mark = v.Mark(tn, phase, 0)
						}
					}
					row.Cells = append(row.Cells, c)
				}
				for k := 1; k < len(platforms); k++ {
					row.Ratios = append(row.Ratios, ratio(phase, row.Cells[0], row.Cells[k]))
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

// ratio is b over a for dynamic and total joules per request, from the
// repetitions as compare computes it: none where a side cannot be a
// denominator (below resolution, not positive, not told from zero).
func ratio(phase string, a, b functionCell) ratioCell {
	n := math.NaN()
	rc := ratioCell{n, n, n, n, n, n, "", ""}
	if a.E == nil || b.E == nil {
		rc.WhyDynamic, rc.WhyTotal = "a platform has no figure", "a platform has no figure"
		return rc
	}
	side := func(c functionCell, dyn bool) Side {
		return withReps(Side{Run: "-", Target: c.Target, Phase: phase}, c.E, dyn)
	}
	rc.Dynamic, rc.DynamicLo, rc.DynamicHi, rc.WhyDynamic = ratioOf(side(a, true), side(b, true), "J")
	rc.Total, rc.TotalLo, rc.TotalHi, rc.WhyTotal = ratioOf(side(a, false), side(b, false), "J")
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
