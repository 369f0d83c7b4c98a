// Package energy turns a run's raw records into joules per request: it
// integrates meter samples into cumulative energy, subtracts the idle
// baseline, attributes energy to requests and puts intervals on the
// results. It does no I/O: the input is a runstore.Run, the output a
// Summary (written as summary.json by the report package).
//
// The method is the one in the project's architecture notes; Method in the
// Summary states the parameters used.
package energy

import (
	"encoding/json"
	"math"
	"strconv"

	"github.com/academemes/harness/harness/internal/runstore"
)

// SummaryVersion changes when summary.json changes incompatibly.
//
// Version 2: intervals only from three or more repetitions (no bootstrap of
// sub-windows), with the meter's resolution and accuracy; below-resolution
// figures; microwatt-hours per request; cold-start energy; validity.
const SummaryVersion = 2

// Float is a float64 that is written to JSON as null when it is NaN or
// infinite (JSON has no such numbers) and read back as NaN.
type Float float64

// MarshalJSON implements json.Marshaler.
func (f Float) MarshalJSON() ([]byte, error) {
	v := float64(f)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, v, 'g', 10, 64), nil
}

// UnmarshalJSON implements json.Unmarshaler.
func (f *Float) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*f = Float(math.NaN())
		return nil
	}
	var v float64
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*f = Float(v)
	return nil
}

// OK reports whether f is a finite number.
func (f Float) OK() bool { return !math.IsNaN(float64(f)) && !math.IsInf(float64(f), 0) }

var nan = Float(math.NaN())

// Summary is summary.json: the analysis of one run.
type Summary struct {
	Version  int    `json:"version"`
	RunID    string `json:"run_id"`
	Scenario string `json:"scenario"`
	Status   string `json:"status"`
	// Method states how the figures were found.
	Method  Method          `json:"method"`
	Meters  []MeterSummary  `json:"meters"`
	Targets []TargetSummary `json:"targets"`
	// ColdStarts is, for targets run both cold (or from a snapshot) and
	// warm (same kind and function), what a request that pays a start
	// costs beyond a warm one.
	ColdStarts []ColdStartEnergy `json:"cold_start_energy,omitempty"`
	// StartUpRatios is, for a function served by a Wasm target and by a
	// target of another kind whose requests each pay a start, how many
	// times longer the other's start-up is: one per pair, so that with a
	// cold and a snapshot Wasm target each says which it divides by.
	StartUpRatios []StartUpRatio `json:"start_up_ratios,omitempty"`
	// Validity is run.json's: whether the run's numbers can be trusted.
	// Nil where the run did not record it.
	Validity *runstore.Validity `json:"validity,omitempty"`
	// Carbon is what the carbon figures rest on, and their method; nil
	// when run.json records no carbon: block (and there are none).
	Carbon *CarbonSummary `json:"carbon,omitempty"`
	// Warnings concern the whole run; each phase has its own too.
	Warnings []string `json:"warnings,omitempty"`
}

// ColdStartEnergy is cold minus warm energy per request for one function
// on one kind of platform, in one phase, on one meter: what starting an
// instance for every request costs. The cold side is a target run cold
// or from a snapshot (Mode says which).
type ColdStartEnergy struct {
	Function string `json:"function"`
	Cold     string `json:"cold"` // target names
	// Mode is the cold side's: "cold" or "snapshot".
	Mode     string `json:"mode"`
	Warm     string `json:"warm"`
	Phase    string `json:"phase"`
	Meter    string `json:"meter"`
	Estimate bool   `json:"estimate"`
	// DynamicJPerRequest is cold minus warm dynamic joules per request.
	DynamicJPerRequest Interval `json:"dynamic_j_per_request"`
	// UWhPerRequest is cold minus warm whole-device energy per request
	// (no idle subtracted, so a warm platform's idle cost counts) in
	// microwatt-hours, the original study's unit. There is none when the
	// two ran at different offered rates: whole-device energy per request
	// is then mostly idle power over the rate.
	UWhPerRequest Interval `json:"uwh_per_request"`
}

// StartUpRatio is how many times longer one target's start-up (the
// X-Start-Ns part of its requests' latency) is than a Wasm target's, for
// the function both serve, in one phase: the docker-node/wasm start-up
// ratio. Each side is named with its mode, as a run may hold a cold and
// a snapshot Wasm target, whose start-ups differ by what they include.
type StartUpRatio struct {
	Function string `json:"function"`
	Phase    string `json:"phase"`
	// Target is the numerator: a target of another kind than wasm
	// (docker-node, openfaas) whose requests each pay a start.
	Target     string `json:"target"`
	TargetKind string `json:"target_kind"`
	TargetMode string `json:"target_mode"`
	// Wasm is the denominator: a wasm target run cold or from a
	// snapshot.
	Wasm     string `json:"wasm"`
	WasmMode string `json:"wasm_mode"`
	// Ratio is the geometric mean of the per-repetition ratios of the two
	// targets' median start-ups, with a t interval on their logarithms
	// (the two share each repetition's machine state, so the ratios are
	// paired); no interval with fewer than the minimum repetitions.
	Ratio Interval `json:"ratio"`
}

// Method is the analysis's parameters, stated so a reader can redo it.
type Method struct {
	Energy      string  `json:"energy"`
	Idle        string  `json:"idle"`
	Window      string  `json:"window"`
	PerRequest  string  `json:"per_request"`
	Attribution string  `json:"attribution"`
	Marginal    string  `json:"marginal"`
	Interval    string  `json:"interval"`
	Resolution  string  `json:"resolution"`
	ColdStart   string  `json:"cold_start"`
	StartUp     string  `json:"start_up_ratio"`
	Confidence  float64 `json:"confidence"`
	EdgeCut     float64 `json:"edge_cut_fraction"`
	SubWindowS  float64 `json:"sub_window_s"`
	MinCoverage float64 `json:"min_coverage"`
}

// MeterSummary describes a meter as the analysis used it.
type MeterSummary struct {
	Name  string `json:"name"`
	Label string `json:"label"`
	Kind  string `json:"kind"`
	// Estimate is true for model meters: their figures are estimates.
	Estimate bool `json:"estimate"`
	// Source is "counter", "power" or "mixed" (per channel).
	Source   string   `json:"source"`
	Channels []string `json:"channels"` // those counted in the total
	Samples  int      `json:"samples"`
	// SampleIntervalMs is the median spacing of the reference channel.
	SampleIntervalMs Float `json:"sample_interval_ms"`
}

// TargetSummary is one target's results.
type TargetSummary struct {
	Name       string         `json:"name"`
	Kind       string         `json:"kind"`
	Mode       string         `json:"mode"`
	Skipped    bool           `json:"skipped,omitempty"`
	SkipReason string         `json:"skip_reason,omitempty"`
	Idle       []IdleSummary  `json:"idle,omitempty"`
	Phases     []PhaseSummary `json:"phases"`
}

// IdleSummary is a target's idle power on one meter.
type IdleSummary struct {
	Meter    string `json:"meter"`
	Estimate bool   `json:"estimate"`
	// W is the mean idle power over repetitions; CV the coefficient of
	// variation of 1-s idle power over all idle phases.
	W    Float   `json:"w"`
	CV   Float   `json:"cv"`
	PerW []Float `json:"per_rep_w"`
}

// PhaseSummary is one measured phase of one target, over all repetitions.
type PhaseSummary struct {
	Phase     string `json:"phase"`
	Reps      int    `json:"reps"`
	Requests  int    `json:"requests"`
	Successes int    `json:"successes"`
	// DurationS is the phases' total length; ThroughputRPS successes per
	// second over it.
	DurationS     Float      `json:"duration_s"`
	ThroughputRPS Float      `json:"throughput_rps"`
	LatencyMs     Latency    `json:"latency_ms"`
	ColdStarts    int        `json:"cold_starts"`
	StartUpMs     *StartUp   `json:"start_up_ms,omitempty"`
	Energy        []Energy   `json:"energy"`
	Warnings      []string   `json:"warnings,omitempty"`
	Errors        ErrorTally `json:"errors,omitempty"`
}

// ErrorTally counts failed requests by reason (status code or error text).
type ErrorTally map[string]int

// Latency is percentiles of successful requests' latency in milliseconds.
type Latency struct {
	P50  Float `json:"p50"`
	P90  Float `json:"p90"`
	P99  Float `json:"p99"`
	Max  Float `json:"max"`
	Mean Float `json:"mean"`
}

// StartUp is percentiles of the start-up part of cold requests'
// latency, as the target reported it.
type StartUp struct {
	N   int   `json:"n"`
	P50 Float `json:"p50"`
	P99 Float `json:"p99"`
}

// Energy is one phase's energy on one meter. Every figure here came from
// Meter; when Estimate is true they are a model's estimates.
type Energy struct {
	Meter    string `json:"meter"`
	Label    string `json:"label"`
	Estimate bool   `json:"estimate"`
	Source   string `json:"source"`
	// Over the steady windows of all repetitions together:
	WindowS  Float `json:"window_s"`
	Requests Float `json:"requests"` // successful requests counted by overlap
	TotalJ   Float `json:"total_j"`
	IdleW    Float `json:"idle_w"`
	DynamicJ Float `json:"dynamic_j"`
	// ResolutionJ is the smallest energy the meter resolves over one
	// repetition's window (the mean over the repetitions); 0 when its
	// driver declares no resolution.
	ResolutionJ Float `json:"resolution_j"`
	// Joules per request with 95% intervals over the repetitions.
	JPerRequest        Interval `json:"j_per_request"`
	DynamicJPerRequest Interval `json:"dynamic_j_per_request"`
	// UWhPerRequest is JPerRequest in microwatt-hours: whole-device
	// energy per request, no idle subtracted, in the original study's
	// unit.
	UWhPerRequest Interval `json:"uwh_per_request"`
	// Marginal is the slope of power on request rate (J per request).
	Marginal *Marginal `json:"marginal,omitempty"`
	// PerRequest is the distribution of attributed dynamic energy.
	PerRequest *Distribution `json:"per_request,omitempty"`
	// Coverage is the lowest sample coverage of any window (0-1).
	Coverage Float       `json:"coverage"`
	Reps     []RepEnergy `json:"reps"`
	// CPUShares splits DynamicJ among groups of processes by CPU time, a
	// model on top of this meter; nil when the run has no cpu.csv.
	CPUShares *CPUShares `json:"cpu_shares,omitempty"`
	// Carbon is this energy's carbon per request by the SCI method; nil
	// when the run gave no carbon: block.
	Carbon *Carbon `json:"carbon,omitempty"`
}

// RepEnergy is one repetition's steady window on one meter.
type RepEnergy struct {
	Rep                int   `json:"rep"`
	StartNs            int64 `json:"start_ns"`
	EndNs              int64 `json:"end_ns"`
	Requests           Float `json:"requests"`
	TotalJ             Float `json:"total_j"`
	IdleW              Float `json:"idle_w"`
	DynamicJ           Float `json:"dynamic_j"`
	JPerRequest        Float `json:"j_per_request"`
	DynamicJPerRequest Float `json:"dynamic_j_per_request"`
	Coverage           Float `json:"coverage"`
	Samples            int   `json:"samples"`
	// ResolutionJ is the smallest energy the meter resolves over this
	// window; BelowResolution is set when the window's dynamic energy is
	// smaller than that (its dynamic figures are then not resolved).
	ResolutionJ     Float `json:"resolution_j"`
	BelowResolution bool  `json:"below_resolution,omitempty"`
}

// Marginal is the regression of window power on request rate over 1-s
// windows of the idle phases and of this phase: its slope is the energy
// one more request costs. Lo and Hi come from the spread of each
// repetition's own slope (NaN with fewer than three), not from the
// sub-windows, which are correlated.
type Marginal struct {
	JPerRequest Float  `json:"j_per_request"`
	Lo          Float  `json:"lo"`
	Hi          Float  `json:"hi"`
	InterceptW  Float  `json:"intercept_w"`
	R2          Float  `json:"r2"`
	Points      int    `json:"points"`
	Reps        int    `json:"reps"`
	Method      string `json:"method"`
}

// Distribution summarises the dynamic energy attributed to each request
// that lies wholly inside a steady window.
type Distribution struct {
	N    int   `json:"n"`
	Mean Float `json:"mean_j"`
	P10  Float `json:"p10_j"`
	P50  Float `json:"p50_j"`
	P90  Float `json:"p90_j"`
	P99  Float `json:"p99_j"`
	// AttributedJ + UnattributedJ = DynamicJ; UnattributedJ is dynamic
	// energy of intervals with no request in flight, spread over the
	// window's requests by their time in flight (each value above holds
	// its share), so that the values add up to the dynamic energy.
	AttributedJ   Float `json:"attributed_j"`
	UnattributedJ Float `json:"unattributed_j"`
	// LimitedByMeter is set when the meter cannot tell requests apart:
	// it samples less often than a typical request lasts (SampleIntervalMs
	// > TypicalLatencyMs), or the dynamic energy is below its
	// resolution. The values are then a model's shares, not
	// measurements; Note says which, and why any value is negative.
	LimitedByMeter   bool   `json:"limited_by_meter,omitempty"`
	SampleIntervalMs Float  `json:"sample_interval_ms"`
	TypicalLatencyMs Float  `json:"typical_latency_ms"`
	Note             string `json:"note,omitempty"`
}

// Find returns the summary of target's phase, or nil.
func (s *Summary) Find(target, phase string) *PhaseSummary {
	for i := range s.Targets {
		if s.Targets[i].Name != target {
			continue
		}
		for j := range s.Targets[i].Phases {
			if s.Targets[i].Phases[j].Phase == phase {
				return &s.Targets[i].Phases[j]
			}
		}
	}
	return nil
}

// Meter returns the phase's energy on the named meter, or nil.
func (p *PhaseSummary) Meter(name string) *Energy {
	for i := range p.Energy {
		if p.Energy[i].Meter == name {
			return &p.Energy[i]
		}
	}
	return nil
}
