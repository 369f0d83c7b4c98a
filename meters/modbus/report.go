package modbus

import (
	"fmt"
	"math"
	"time"

	"github.com/academemes/harness/meters"
	"github.com/academemes/harness/meters/modbus/regmap"
)

// stat is a running summary of one quantity.
type stat struct {
	n             int
	sum, min, max float64
}

func (s *stat) add(v float64) {
	if math.IsNaN(v) {
		return
	}
	if s.n == 0 || v < s.min {
		s.min = v
	}
	if s.n == 0 || v > s.max {
		s.max = v
	}
	s.n++
	s.sum += v
}

func (s *stat) mean() float64 {
	if s.n == 0 {
		return math.NaN()
	}
	return s.sum / float64(s.n)
}

func (s *stat) summary() map[string]any {
	if s.n == 0 {
		return map[string]any{"n": 0}
	}
	return map[string]any{"n": s.n, "min": s.min, "mean": s.mean(), "max": s.max}
}

// report accumulates what Report returns. Callers hold Meter.mu.
type report struct {
	requests, reconnects, lost, exceptions, samples int64
	gaps                                            []meters.Gap
	latency                                         stat // ms
	fields                                          map[regmap.Field]*stat

	counter0, counterPrev float64 // Wh: first reading, previous reading
	counterBase           float64 // Wh added for counter resets seen
	counterJ              float64 // last cumulative joules from the counter
	resets                int
	first, last           time.Time
	prevP                 float64
	powerJ                float64 // trapezoid over power samples
}

func (r *report) init() {
	r.fields = map[regmap.Field]*stat{}
	for _, f := range []regmap.Field{regmap.ActivePower, regmap.Voltage, regmap.Current, regmap.PowerFactor, regmap.Frequency} {
		r.fields[f] = &stat{}
	}
}

// add takes a reading stamped t and returns the counter's joules since the
// first reading and the active power.
func (r *report) add(rd regmap.Reading, t time.Time) (counterJ, watts float64) {
	e, p := rd[regmap.ActiveEnergy], rd[regmap.ActivePower]
	if r.samples == 0 {
		r.counter0, r.counterPrev, r.first = e, e, t
	} else {
		if e < r.counterPrev {
			// The absolute counter should never fall; if it does (reset,
			// replaced device, wrap of the signed 32-bit register), carry
			// on from where it was so the cumulative series stays
			// monotonic.
			r.counterBase += r.counterPrev - e
			r.resets++
		}
		r.powerJ += (p + r.prevP) / 2 * t.Sub(r.last).Seconds()
	}
	r.samples++
	r.counterPrev, r.prevP, r.last = e, p, t
	for f, s := range r.fields {
		s.add(rd[f])
	}
	r.counterJ = (e + r.counterBase - r.counter0) * 3600
	return r.counterJ, p
}

func (r *report) build(c Config) meters.Report {
	out := meters.Report{
		Gaps: append([]meters.Gap(nil), r.gaps...),
		Counters: map[string]int64{
			"requests":         r.requests,
			"samples":          r.samples,
			"connection_lost":  r.lost,
			"reconnects":       r.reconnects,
			"exceptions":       r.exceptions,
			"counter_resets":   int64(r.resets),
			"gaps":             int64(len(r.gaps)),
			"requests_no_data": r.requests - r.samples,
		},
	}
	base, _ := c.Map.Base(c.Kind, c.Index, c.Phase)
	pw := r.fields[regmap.ActivePower]
	preg, _ := c.Map.Register(regmap.ActivePower)
	ereg, _ := c.Map.Register(regmap.ActiveEnergy)
	stepJ := ereg.Scale * 3600
	mean := pw.mean()
	d := map[string]any{
		"map":                c.Map.Name,
		"model":              c.Map.Model,
		"address":            c.Addr,
		"unit":               c.Unit,
		"block":              c.Block(),
		"first_register":     fmt.Sprintf("0x%04x", base),
		"rate_hz":            c.Rate,
		"timestamps":         "midpoint of request and response, harness clock",
		"energy_source":      c.Energy,
		"power_resolution_w": preg.Scale,
		"counter_step_j":     stepJ,
		"power_w":            pw.summary(),
		"voltage_v":          r.fields[regmap.Voltage].summary(),
		"current_a":          r.fields[regmap.Current].summary(),
		"power_factor":       r.fields[regmap.PowerFactor].summary(),
		"frequency_hz":       r.fields[regmap.Frequency].summary(),
		"request_ms":         r.latency.summary(),
	}
	// Why this energy source: the counter's step against the energy of a
	// window. A window needs about 100 steps for the counter's
	// quantisation to stay under 1%.
	why := ""
	if mean > 0 {
		window := time.Duration(100 * stepJ / mean * float64(time.Second)).Round(time.Second)
		d["counter_1pct_window"] = window.String()
		if c.Energy == EnergyFromPower {
			why = fmt.Sprintf("power samples: the energy counter steps by %g J; at the mean %.3g W it steps every %v, so only windows over %v would carry under 1%% quantisation from it; power samples at %g Hz resolve shorter windows. The counter is kept on the channel \"%s AC energy counter\" (not in the total); energy=counter uses it for long runs.",
				stepJ, mean, time.Duration(stepJ/mean*float64(time.Second)).Round(time.Second), window, c.Rate, c.Block())
		} else {
			why = fmt.Sprintf("energy counter (energy=counter): it steps by %g J; at the mean %.3g W windows under %v carry more than 1%% quantisation from it.",
				stepJ, mean, window)
		}
	} else if c.Energy == EnergyFromPower {
		why = fmt.Sprintf("power samples (default): the energy counter steps by %g J, too coarse for windows of seconds or minutes.", stepJ)
	} else {
		why = "energy counter (energy=counter)."
	}
	d["energy_source_why"] = why
	if r.samples > 1 {
		d["counter_delta_j"] = r.counterJ
		d["power_integrated_j"] = r.powerJ
		d["span_s"] = r.last.Sub(r.first).Seconds()
		// The counter may lag the true energy by up to one step at either
		// end, and a 1 W power register may be off by half a watt on
		// average: disagreement beyond that is worth a word.
		tol := 2*stepJ + preg.Scale/2*r.last.Sub(r.first).Seconds() + 0.02*math.Abs(r.powerJ)
		if diff := r.counterJ - r.powerJ; math.Abs(diff) > tol {
			out.Warnings = append(out.Warnings, fmt.Sprintf("energy counter (%.0f J) and integrated power (%.0f J) differ by %.0f J, more than their resolutions allow (%.0f J)", r.counterJ, r.powerJ, diff, tol))
		}
	}
	// Rounding to the register's resolution errs by up to half a step
	// per sample, and by as much on average when the power is steady
	// (nothing dithers it): worth a word above 2% of the mean.
	if mean > 0 && preg.Scale/2/mean > 0.02 {
		out.Warnings = append(out.Warnings, fmt.Sprintf("the active power register resolves %g W: rounding errs by up to %.1f%% of the mean power of %.3g W per sample, and by as much over a window where the power is steady", preg.Scale, 100*preg.Scale/2/mean, mean))
	}
	if r.resets > 0 {
		out.Warnings = append(out.Warnings, fmt.Sprintf("the absolute energy counter fell %d time(s) during the run; the series was carried on across each fall", r.resets))
	}
	out.Details = d
	return out
}
