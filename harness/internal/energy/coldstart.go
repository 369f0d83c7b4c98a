package energy

import (
	"fmt"
	"math"
	"slices"

	"github.com/academemes/harness/harness/internal/runstore"
	"github.com/academemes/harness/targets"
)

// PaysStart reports whether every request to a target in mode pays a
// start: cold (a fresh instance that starts the function's language
// runtime) and snapshot (a fresh instance restored from a snapshot taken
// after one initialisation at deploy). Prewarmed makes its fresh
// instances ahead of the requests, and warm keeps them.
func PaysStart(mode string) bool {
	return mode == string(targets.Cold) || mode == string(targets.Snapshot)
}

// coldStarts pairs every target whose requests each pay a start (run cold
// or from a snapshot) with every target of the same kind and function run
// warm, and for each phase and meter both have, gives that target's minus
// the warm one's energy per request: what a start per request costs.
func coldStarts(ts []TargetSummary, meta runstore.Meta, opt Options) []ColdStartEnergy {
	function := map[string]string{}
	for _, t := range meta.Targets {
		function[t.Name] = t.Function
	}
	relErr := map[string]float64{}
	for _, m := range meta.Meters {
		relErr[m.Name] = m.Precision.RelError
	}
	var out []ColdStartEnergy
	for _, c := range ts {
		if c.Skipped || !PaysStart(c.Mode) {
			continue
		}
		for _, w := range ts {
			if w.Skipped || w.Mode != string(targets.Warm) || w.Kind != c.Kind || function[w.Name] != function[c.Name] {
				continue
			}
			for _, cp := range c.Phases {
				wp := findPhase(w.Phases, cp.Phase)
				if wp == nil {
					continue
				}
				sameRate := slices.Equal(offeredRates(meta.Phases, c.Name, cp.Phase), offeredRates(meta.Phases, w.Name, cp.Phase))
				for _, ce := range cp.Energy {
					we := wp.Meter(ce.Meter)
					if we == nil {
						continue
					}
					cs := coldMinusWarm(ce, *we, relErr[ce.Meter], sameRate, opt)
					cs.Function, cs.Cold, cs.Mode, cs.Warm, cs.Phase = function[c.Name], c.Name, c.Mode, w.Name, cp.Phase
					out = append(out, cs)
				}
			}
		}
	}
	return out
}

// coldMinusWarm is the difference of two targets' energy per request on
// one meter, from their repetitions.
func coldMinusWarm(cold, warm Energy, relErr float64, sameRate bool, opt Options) ColdStartEnergy {
	cs := ColdStartEnergy{Meter: cold.Meter, Estimate: cold.Estimate}
	lc, lw := meterLimits(relErr, cold.Reps), meterLimits(relErr, warm.Reps)
	lim := limits{perRequestJ: lc.perRequestJ + lw.perRequestJ, relErr: lc.relErr}
	perRep := func(reps []RepEnergy, f func(RepEnergy) Float) []float64 {
		var xs []float64
		for _, r := range reps {
			if v := f(r); v.OK() {
				xs = append(xs, float64(v))
			}
		}
		return xs
	}
	dyn := func(r RepEnergy) Float { return r.DynamicJPerRequest }
	total := func(r RepEnergy) Float { return r.JPerRequest }

	cs.DynamicJPerRequest = diffInterval(perRep(cold.Reps, dyn), perRep(warm.Reps, dyn), opt.MinReps, opt.Confidence, lim)
	switch {
	case cold.DynamicJPerRequest.BelowResolution || warm.DynamicJPerRequest.BelowResolution:
		cs.DynamicJPerRequest = belowRes(cs.DynamicJPerRequest, "the dynamic energy of one side is below the meter's resolution")
	case cs.DynamicJPerRequest.Value.OK() && lim.perRequestJ > 0 && math.Abs(float64(cs.DynamicJPerRequest.Value)) < lim.perRequestJ:
		cs.DynamicJPerRequest = belowRes(cs.DynamicJPerRequest, fmt.Sprintf("the difference, %.3g J per request, is smaller than the meter resolves per request (%.3g J)", float64(cs.DynamicJPerRequest.Value), lim.perRequestJ))
	}

	if !sameRate {
		cs.UWhPerRequest = Interval{Value: nan, Lo: nan, Hi: nan, Method: "none", Reason: "the two ran at different offered rates: whole-device energy per request is then mostly idle power over the rate"}
		return cs
	}
	iv := diffInterval(perRep(cold.Reps, total), perRep(warm.Reps, total), opt.MinReps, opt.Confidence, lim)
	if cold.JPerRequest.BelowResolution || warm.JPerRequest.BelowResolution {
		iv = belowRes(iv, "the energy of one side is below the meter's resolution")
	}
	cs.UWhPerRequest = uwhInterval(iv)
	return cs
}

// offeredRates is the stage rates of a target's phase over its
// repetitions, sorted and without repeats (0 for sequential load).
func offeredRates(phases []runstore.Phase, target, name string) []float64 {
	var rs []float64
	for _, p := range phases {
		if p.Target != target || p.Name != name {
			continue
		}
		for _, s := range p.Stages {
			rs = append(rs, s.Rate)
		}
	}
	slices.Sort(rs)
	return slices.Compact(rs)
}

func findPhase(ps []PhaseSummary, name string) *PhaseSummary {
	for i := range ps {
		if ps[i].Phase == name {
			return &ps[i]
		}
	}
	return nil
}

// belowRes is iv with its numbers taken out, saying why.
func belowRes(iv Interval, why string) Interval {
	return Interval{Value: nan, Lo: nan, Hi: nan, N: iv.N, Method: "none", BelowResolution: true, Reason: "below resolution: " + why}
}
