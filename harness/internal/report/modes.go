package report

import (
	"fmt"
	"io"
	"math"

	"github.com/academemes/harness/harness/internal/energy"
	"github.com/academemes/harness/targets"
)

// WasmModes is what tells apart Purify's two modes that start every
// request from pristine state. Their start-up and energy figures differ by what
// the start includes, so a run with either says it beside its figures.
const WasmModes = "cold: the function's language runtime is initialised on every request; " +
	"snapshot: initialised once at deploy and restored from a snapshot on every request; " +
	"both start every request from a pristine instance (no state passes from one request to the next)."

// wasmModesNote is WasmModes where the run has a wasm target that ran
// cold or from a snapshot, and "" where it has none.
func wasmModesNote(sum *energy.Summary) string {
	for _, t := range sum.Targets {
		if !t.Skipped && t.Kind == "wasm" && (t.Mode == string(targets.Cold) || t.Mode == string(targets.Snapshot)) {
			return WasmModes
		}
	}
	return ""
}

// coldMode is a cold-start figure's cold side's mode; summaries written
// before snapshot existed do not record it, and then it was cold.
func coldMode(c energy.ColdStartEnergy) string {
	if c.Mode == "" {
		return string(targets.Cold)
	}
	return c.Mode
}

// startUpRow is one line of the start-up ratio table: the ratio and each
// side's median start-up over the phase.
type startUpRow struct {
	energy.StartUpRatio
	TargetMs, WasmMs energy.Float
}

func startUpRows(sum *energy.Summary) []startUpRow {
	var out []startUpRow
	p50 := func(target, phase string) energy.Float {
		if ps := sum.Find(target, phase); ps != nil && ps.StartUpMs != nil {
			return ps.StartUpMs.P50
		}
		return energy.Float(math.NaN())
	}
	for _, r := range sum.StartUpRatios {
		out = append(out, startUpRow{r, p50(r.Target, r.Phase), p50(r.Wasm, r.Phase)})
	}
	return out
}

// startUpText is a ratio as the console and the report's table show it:
// "292× [265, 321]", or "–" and why there is none.
func startUpText(r energy.StartUpRatio) string {
	iv := r.Ratio
	s := fmtRatioCI(float64(iv.Value), float64(iv.Lo), float64(iv.Hi))
	if iv.Reason != "" {
		s += " (" + iv.Reason + ")"
	}
	return s
}

// printStartUps writes the console's lines on what starts cost: each
// cold-start energy figure, then each start-up ratio, naming the Wasm
// target it divides by and its mode, then what the Wasm modes mean.
func printStartUps(w io.Writer, s *energy.Summary) {
	for _, c := range s.ColdStarts {
		fmt.Fprintf(w, "Cold start of %s (%s, %s; %s, %s): %s per request more than warm (%s), %s\n",
			c.Function, c.Cold, coldMode(c), c.Phase, c.Meter, fmtInterval(c.DynamicJPerRequest), c.Warm, fmtUWh(c.DynamicJPerRequest.Value))
	}
	for _, r := range s.StartUpRatios {
		fmt.Fprintf(w, "Start-up ratio of %s (%s): %s (%s) / %s (%s) = %s\n",
			r.Function, r.Phase, r.Target, r.TargetMode, r.Wasm, r.WasmMode, startUpText(r))
	}
	if note := wasmModesNote(s); note != "" {
		fmt.Fprintln(w, "Wasm modes: "+note)
	}
}
