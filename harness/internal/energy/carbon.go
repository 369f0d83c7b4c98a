package energy

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/academemes/harness/harness/internal/carbon"
	"github.com/academemes/harness/harness/internal/runstore"
)

// Carbon per request by the Software Carbon Intensity method: each
// repetition's steady window gives ((E x I) + M) / R, the figure is their
// mean with a t interval, as for joules. The arithmetic is package
// carbon's; this file applies it to the windows and their meters.

// CarbonSummary is what a run's carbon figures rest on, and how they
// were found; summary.json has it only when run.json records a carbon:
// block.
type CarbonSummary struct {
	// Intensity says where the grid intensity came from.
	Intensity string `json:"intensity"`
	// PUE and Embodied are run.json's, with their sources; Embodied is
	// nil when none was given (M is then not counted).
	PUE      runstore.Sourced   `json:"pue"`
	Embodied *runstore.Embodied `json:"embodied,omitempty"`
	// Method is the method in one paragraph, citing the specification.
	Method string `json:"method"`
}

// Carbon is one measured phase's carbon per request on one meter, in
// grams of CO2 equivalent. Every figure comes from Meter's energy: with a
// model meter (Estimate) they are estimates too.
type Carbon struct {
	Estimate bool `json:"estimate"`
	// SCIPerRequest is ((E x I) + M) / R with E the dynamic energy (above
	// the idle baseline) times the PUE: the lead figure.
	SCIPerRequest      Interval `json:"sci_g_per_request"`
	SCIPer1000Requests Interval `json:"sci_g_per_1000_requests"`
	// OperationalPerRequest is its E x I part, EmbodiedPerRequest its M
	// part (no interval beyond the repetitions' spread of window length
	// over requests: M is a stated value, not a measurement).
	OperationalPerRequest Interval `json:"operational_g_per_request"`
	EmbodiedPerRequest    Interval `json:"embodied_g_per_request"`
	// TotalSCIPerRequest takes the whole device's energy, idle included,
	// as E: the figure for a machine that serves nothing else, whose idle
	// draw is then the software's too. TotalOperationalPerRequest is its
	// E x I part.
	TotalSCIPerRequest         Interval `json:"total_sci_g_per_request"`
	TotalOperationalPerRequest Interval `json:"total_operational_g_per_request"`
	// IntensityGPerKWh is the mean intensity the windows' energy met,
	// weighted by that energy; IntensityMin and IntensityMax the range
	// in force during them.
	IntensityGPerKWh Float `json:"intensity_g_per_kwh"`
	IntensityMin     Float `json:"intensity_min_g_per_kwh"`
	IntensityMax     Float `json:"intensity_max_g_per_kwh"`
	PUE              Float `json:"pue"`
	// EmbodiedCounted is false when the run gave no embodied emissions:
	// the SCI figures are then E x I alone.
	EmbodiedCounted bool        `json:"embodied_counted"`
	Reps            []RepCarbon `json:"reps"`
	// Reason says why there are no figures, "" when there are.
	Reason string `json:"reason,omitempty"`
}

// RepCarbon is one repetition's steady window: its emissions in gCO2e
// and per request.
type RepCarbon struct {
	Rep int `json:"rep"`
	// OperationalG is the dynamic energy's E x I over the window,
	// TotalOperationalG the whole device's; EmbodiedG is M for the
	// window's length.
	OperationalG       Float `json:"operational_g"`
	TotalOperationalG  Float `json:"total_operational_g"`
	EmbodiedG          Float `json:"embodied_g"`
	SCIPerRequest      Float `json:"sci_g_per_request"`
	TotalSCIPerRequest Float `json:"total_sci_g_per_request"`
}

// carbonSetup reads run.json's carbon record into the analysis; a record
// it cannot use becomes a warning and no carbon figures.
func (a *analysis) carbonSetup(s *Summary) {
	cfg, err := carbon.FromRecord(a.run.Meta.Carbon)
	if err != nil {
		s.Warnings = append(s.Warnings, fmt.Sprintf("no carbon figures: %v", err))
		return
	}
	if cfg == nil {
		return
	}
	a.carbon = cfg
	s.Carbon = &CarbonSummary{Intensity: cfg.Describe(), PUE: cfg.Record.PUE, Embodied: cfg.Record.Embodied, Method: CarbonMethod(cfg, a.opt.MinReps)}
}

// CarbonMethod is the method of the carbon figures in one paragraph.
func CarbonMethod(cfg *carbon.Config, minReps int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Carbon per request follows the %s: SCI = ((E x I) + M) per R, with R one successful request. ", carbon.Spec)
	fmt.Fprintf(&b, "E is the energy the software consumed: the dynamic energy of each repetition's steady window (what serving the requests drew above the idle baseline, the part that differs between platforms) times the facility's PUE (%s, %s); ", strconv.FormatFloat(cfg.PUE, 'g', -1, 64), cfg.Record.PUE.Source)
	b.WriteString("beside it, the whole device's energy over the window, idle included, gives a total figure, the one to use when the machine serves nothing else and its idle draw is the software's too. ")
	if cfg.Intensity.IsConstant() {
		fmt.Fprintf(&b, "I is the grid's carbon intensity, %s. ", cfg.Describe())
	} else {
		fmt.Fprintf(&b, "I is the grid's carbon intensity, a %s: the energy between each pair of samples is weighted by the value in force at its time, and a stretch over a change of value is split where it changes. ", cfg.Describe())
	}
	if e := cfg.Record.Embodied; e != nil {
		fmt.Fprintf(&b, "M is the time share of the hardware's embodied emissions: %s kgCO2e (%s) x window length / %s years (%s) x share %s (%s). ",
			num(e.TotalKg.Value), e.TotalKg.Source, num(e.LifetimeYears.Value), e.LifetimeYears.Source, num(e.Share.Value), e.Share.Source)
	} else {
		b.WriteString("M, the hardware's embodied emissions, was not given (carbon.embodied), so it is not counted: the figures are E x I alone. ")
	}
	fmt.Fprintf(&b, "Each repetition gives one value, ((E x I) + M) / R; the figure is their mean with a t interval over them (none with fewer than %d repetitions: the repetition is the unit of replication), widened by the meter's resolution and accuracy carried through I; the carbon of an energy below the meter's resolution is reported as below resolution. Units are grams of CO2 equivalent (gCO2e) per request, and per 1,000 requests. With a model meter (the estimate) E, and so every carbon figure, is an estimate.", minReps)
	return b.String()
}

func num(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }

// carbonOf is the carbon of e's repetitions on meter m, or nil when the
// run gave no carbon: block. lim is the meter's limits as the energy
// figures used them.
func (a *analysis) carbonOf(m *meterSeries, e *Energy, lim limits) (*Carbon, []string) {
	cfg := a.carbon
	if cfg == nil {
		return nil, nil
	}
	c := &Carbon{
		Estimate: e.Estimate, PUE: Float(cfg.PUE), EmbodiedCounted: cfg.Embodied != nil,
		IntensityGPerKWh: nan, IntensityMin: nan, IntensityMax: nan,
	}
	none := func(why string) {
		iv := Interval{Value: nan, Lo: nan, Hi: nan, Method: "none", Reason: why}
		c.SCIPerRequest, c.SCIPer1000Requests, c.OperationalPerRequest, c.EmbodiedPerRequest = iv, iv, iv, iv
		c.TotalSCIPerRequest, c.TotalOperationalPerRequest = iv, iv
		c.Reason = why
	}
	var sci, op, emb, tsci, top []float64
	var weighted, totalJ float64
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, r := range e.Reps {
		rc := RepCarbon{Rep: r.Rep, OperationalG: nan, TotalOperationalG: nan, EmbodiedG: Float(0), SCIPerRequest: nan, TotalSCIPerRequest: nan}
		tg, err := carbon.Operational(m.at, 0, r.StartNs, r.EndNs, cfg.Intensity, cfg.PUE)
		if errors.Is(err, carbon.ErrNotCovered) {
			why := fmt.Sprintf("the intensity series (%s) does not cover repetition %d's window", cfg.Describe(), r.Rep)
			none(why)
			return c, []string{fmt.Sprintf("meter %s: no carbon figures: %s", m.meta.Name, why)}
		}
		l, h, _ := cfg.Intensity.Range(r.StartNs, r.EndNs)
		lo, hi = math.Min(lo, l), math.Max(hi, h)
		if j := float64(r.TotalJ); j != 0 && !math.IsNaN(j) {
			weighted += tg / cfg.PUE * carbon.JoulesPerKWh
			totalJ += j
		}
		dg := math.NaN()
		if r.IdleW.OK() {
			dg, _ = carbon.Operational(m.at, float64(r.IdleW), r.StartNs, r.EndNs, cfg.Intensity, cfg.PUE)
		}
		mg := 0.0
		if cfg.Embodied != nil {
			mg = cfg.Embodied.Grams(float64(r.EndNs-r.StartNs) / 1e9)
		}
		rc.TotalOperationalG, rc.OperationalG, rc.EmbodiedG = Float(tg), Float(dg), Float(mg)
		if n := float64(r.Requests); n > 0 {
			rc.TotalSCIPerRequest = Float((tg + mg) / n)
			top = append(top, tg/n)
			tsci = append(tsci, (tg+mg)/n)
			emb = append(emb, mg/n)
			if !math.IsNaN(dg) {
				rc.SCIPerRequest = Float((dg + mg) / n)
				op = append(op, dg/n)
				sci = append(sci, (dg+mg)/n)
			}
		}
		c.Reps = append(c.Reps, rc)
	}
	if len(c.Reps) == 0 {
		none("no steady windows")
		return c, nil
	}
	c.IntensityMin, c.IntensityMax = Float(lo), Float(hi)
	switch {
	case lo == hi:
		c.IntensityGPerKWh = Float(lo) // a constant, free of rounding
	case totalJ != 0:
		c.IntensityGPerKWh = Float(weighted / totalJ)
	}
	// The meter's limits, carried through I: its resolution per request
	// at the highest intensity in force, and its relative error of the
	// operational part (M has no meter error).
	resG := carbon.Grams(lim.perRequestJ*cfg.PUE, hi)
	widen := func(opMean float64) float64 { return resG + lim.relErr*math.Abs(opMean) }
	conf, minReps := a.opt.Confidence, a.opt.MinReps
	c.OperationalPerRequest = gInterval(op, minReps, conf, widen(Mean(op)))
	c.SCIPerRequest = gInterval(sci, minReps, conf, widen(Mean(op)))
	c.TotalOperationalPerRequest = gInterval(top, minReps, conf, widen(Mean(top)))
	c.TotalSCIPerRequest = gInterval(tsci, minReps, conf, widen(Mean(top)))
	c.EmbodiedPerRequest = gInterval(emb, minReps, conf, 0)
	if !e.DynamicJPerRequest.Value.OK() && !e.DynamicJPerRequest.BelowResolution {
		why := e.DynamicJPerRequest.Reason // no idle baseline, or no requests
		c.SCIPerRequest.Reason, c.OperationalPerRequest.Reason = why, why
	}
	// The carbon of an energy the meter does not resolve is not resolved
	// either.
	if e.DynamicJPerRequest.BelowResolution {
		why := "the dynamic energy it rests on is " + strings.TrimPrefix(e.DynamicJPerRequest.Reason, "below resolution: ")
		c.SCIPerRequest = belowRes(c.SCIPerRequest, why)
		c.OperationalPerRequest = belowRes(c.OperationalPerRequest, why)
	}
	if e.JPerRequest.BelowResolution {
		why := "the energy it rests on is " + strings.TrimPrefix(e.JPerRequest.Reason, "below resolution: ")
		c.TotalSCIPerRequest = belowRes(c.TotalSCIPerRequest, why)
		c.TotalOperationalPerRequest = belowRes(c.TotalOperationalPerRequest, why)
	}
	c.SCIPer1000Requests = scaleInterval(c.SCIPerRequest, 1000)
	return c, nil
}

// gInterval is the mean of per-repetition grams with a t interval at
// confidence conf, widened by w grams each side; with fewer than minReps
// values it has a value but no interval, and Reason says why.
func gInterval(vals []float64, minReps int, conf, w float64) Interval {
	iv := Interval{Value: nan, Lo: nan, Hi: nan, N: len(vals), Method: "none"}
	if len(vals) == 0 {
		iv.Reason = "no successful requests in the steady windows"
		return iv
	}
	iv.Value = Float(Mean(vals))
	if len(vals) < minReps {
		iv.Reason = fmt.Sprintf("fewer than %d repetitions: no interval (%d here)", minReps, len(vals))
		return iv
	}
	_, lo, hi := TInterval(vals, conf)
	iv.Lo, iv.Hi = Float(lo-w), Float(hi+w)
	iv.Method = fmt.Sprintf("t over %d repetitions", len(vals))
	if w > 0 {
		iv.Method += fmt.Sprintf(", widened by the meter's resolution and accuracy (±%.3g g)", w)
	}
	return iv
}

// scaleInterval is iv with its numbers multiplied by k.
func scaleInterval(iv Interval, k float64) Interval {
	iv.Value, iv.Lo, iv.Hi = iv.Value*Float(k), iv.Lo*Float(k), iv.Hi*Float(k)
	return iv
}
