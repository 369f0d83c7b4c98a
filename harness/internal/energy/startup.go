package energy

import (
	"fmt"
	"maps"
	"math"
	"slices"
)

// wasmKind is the kind name of Purify's targets (package targets/wasm),
// the denominator of every start-up ratio.
const wasmKind = "wasm"

// startUpRatios pairs every wasm target whose requests each pay a start
// (cold or snapshot) with every target of another kind that serves the
// same function and also pays a start per request, and gives, for each
// measured phase both ran, how many times longer the other's start-up is.
// A pair without start-ups on both sides (a target that does not report
// X-Start-Ns) gives none.
func (a *analysis) startUpRatios(ts []TargetSummary) []StartUpRatio {
	function := map[string]string{}
	for _, t := range a.run.Meta.Targets {
		function[t.Name] = t.Function
	}
	var out []StartUpRatio
	for _, o := range ts {
		if o.Skipped || o.Kind == wasmKind || !PaysStart(o.Mode) {
			continue
		}
		for _, w := range ts {
			if w.Skipped || w.Kind != wasmKind || !PaysStart(w.Mode) || function[w.Name] != function[o.Name] {
				continue
			}
			for _, op := range o.Phases {
				wp := findPhase(w.Phases, op.Phase)
				if op.StartUpMs == nil || wp == nil || wp.StartUpMs == nil {
					continue
				}
				out = append(out, StartUpRatio{
					Function: function[o.Name], Phase: op.Phase,
					Target: o.Name, TargetKind: o.Kind, TargetMode: o.Mode,
					Wasm: w.Name, WasmMode: w.Mode,
					Ratio: PairedRatio(a.startUpByRep(o.Name, op.Phase), a.startUpByRep(w.Name, op.Phase), a.opt),
				})
			}
		}
	}
	return out
}

// startUpByRep is the median start-up in milliseconds of a target's
// requests that paid a start in each repetition of a phase; a repetition
// without one is absent.
func (a *analysis) startUpByRep(target, phase string) map[int]float64 {
	out := map[int]float64{}
	for _, p := range a.phases[target] {
		if p.Name != phase {
			continue
		}
		var ms []float64
		for _, i := range a.reqs[reqKey{target, phase, p.Rep}] {
			if r := &a.run.Requests[i]; r.Cold && r.StartUpNs > 0 {
				ms = append(ms, float64(r.StartUpNs)/1e6)
			}
		}
		if len(ms) > 0 {
			slices.Sort(ms)
			out[p.Rep] = quantile(ms, 0.5)
		}
	}
	return out
}

// PairedRatio is num/den from the repetitions in which both have a
// positive value: the geometric mean of the per-repetition ratios, with a
// t interval on their logarithms from opt.MinReps repetitions on (the two
// sides share each repetition's machine state, so the ratios are paired).
func PairedRatio(num, den map[int]float64, opt Options) Interval {
	var logs []float64
	for _, rep := range slices.Sorted(maps.Keys(num)) {
		n, d := num[rep], den[rep]
		if n > 0 && d > 0 && !math.IsInf(n, 0) && !math.IsInf(d, 0) {
			logs = append(logs, math.Log(n/d))
		}
	}
	if len(logs) == 0 {
		return Interval{Value: nan, Lo: nan, Hi: nan, Method: "none", Reason: "no repetition has both sides positive"}
	}
	if len(logs) < opt.MinReps {
		return Interval{Value: Float(math.Exp(Mean(logs))), Lo: nan, Hi: nan, N: len(logs), Method: "none",
			Reason: fmt.Sprintf("%d repetition(s) with both sides positive: no interval", len(logs))}
	}
	m, lo, hi := TInterval(logs, opt.Confidence)
	return Interval{Value: Float(math.Exp(m)), Lo: Float(math.Exp(lo)), Hi: Float(math.Exp(hi)), N: len(logs),
		Method: fmt.Sprintf("geometric mean of %d per-repetition ratios, t interval on their logarithms", len(logs))}
}
