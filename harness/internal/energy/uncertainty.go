package energy

import (
	"fmt"
	"math"
)

// Uncertainty. The repetition is the unit of replication: an interval is
// a t interval over per-repetition values, and with fewer than
// Options.MinReps of them there is none. The meter's own limits are added
// to it, since no spread of repetitions can show them: a resolution step
// or a calibration error is the same in every repetition.

// limits is what a meter adds to the uncertainty of one phase's figures
// beside the spread of the repetitions.
type limits struct {
	// windowJ is the smallest energy the meter resolves over one
	// repetition's window (the mean over the repetitions), 0 when the
	// meter states none.
	windowJ float64
	// perRequestJ is that resolution per request: the mean over the
	// repetitions of each window's resolution over its requests.
	perRequestJ float64
	// relErr is the meter's stated relative accuracy. It is taken as a
	// gain error, which scales every energy alike: total and dynamic
	// figures are off by the same fraction. (An offset error would cancel
	// in the dynamic energy; a datasheet's "% of reading" is a gain.)
	relErr float64
}

// meterLimits is the limits of a meter with relative accuracy relErr over
// the repetitions' windows, whose ResolutionJ is set.
func meterLimits(relErr float64, reps []RepEnergy) limits {
	l := limits{relErr: math.Abs(relErr)}
	var w, pr []float64
	for _, r := range reps {
		if !r.ResolutionJ.OK() {
			continue
		}
		w = append(w, float64(r.ResolutionJ))
		if r.Requests > 0 {
			pr = append(pr, float64(r.ResolutionJ)/float64(r.Requests))
		}
	}
	if len(w) > 0 {
		l.windowJ = Mean(w)
	}
	if len(pr) > 0 {
		l.perRequestJ = Mean(pr)
	}
	return l
}

// widen is how much the meter adds to each side of an interval on a
// per-request value: its resolution per request plus its relative error
// of the value. Both are bounds, not standard deviations, and systematic,
// so they are added to the statistical half-width, not in quadrature.
func (l limits) widen(value float64) float64 {
	return l.perRequestJ + l.relErr*math.Abs(value)
}

// repInterval is the mean of per-repetition values with its t interval at
// confidence conf, widened by the meter's limits. With fewer than minReps
// values it has a value but no interval, and Reason says why.
func repInterval(vals []float64, minReps int, conf float64, lim limits) Interval {
	iv := Interval{Value: nan, Lo: nan, Hi: nan, N: len(vals), Method: "none"}
	if len(vals) == 0 {
		iv.Reason = "no successful requests in the steady windows"
		return iv
	}
	m := Mean(vals)
	iv.Value = Float(m)
	if len(vals) < minReps {
		iv.Reason = fmt.Sprintf("fewer than %d repetitions: no interval (%d here)", minReps, len(vals))
		return iv
	}
	_, lo, hi := TInterval(vals, conf)
	w := lim.widen(m)
	iv.Lo, iv.Hi = Float(lo-w), Float(hi+w)
	iv.Method = fmt.Sprintf("t over %d repetitions", len(vals))
	if w > 0 {
		iv.Method += fmt.Sprintf(", widened by the meter's resolution and accuracy (±%.3g J)", w)
	}
	return iv
}

// screen takes the number out of iv when the energy it rests on, meanJ per
// repetition window, is smaller than the meter resolves over the window:
// such a figure would claim a precision the meter does not have.
func (l limits) screen(iv Interval, meanJ float64, what string) Interval {
	if l.windowJ <= 0 || math.IsNaN(meanJ) || math.Abs(meanJ) >= l.windowJ {
		return iv
	}
	return belowRes(iv, fmt.Sprintf("%s of %.3g J per repetition window, where the meter resolves %.3g J", what, meanJ, l.windowJ))
}

// diffInterval is mean(a) - mean(b) with Welch's t interval (unequal
// variances, Satterthwaite's degrees of freedom), for values of two
// targets on one meter. The meter's limits widen it: both sides'
// resolution per request (lim.perRequestJ is their sum), and its relative
// error of the difference, since one meter's gain error scales both sides
// alike.
func diffInterval(a, b []float64, minReps int, conf float64, lim limits) Interval {
	iv := Interval{Value: nan, Lo: nan, Hi: nan, N: min(len(a), len(b)), Method: "none"}
	if len(a) == 0 || len(b) == 0 {
		iv.Reason = "no successful requests on one side"
		return iv
	}
	d := Mean(a) - Mean(b)
	iv.Value = Float(d)
	if min(len(a), len(b)) < minReps {
		iv.Reason = fmt.Sprintf("fewer than %d repetitions: no interval (%d and %d here)", minReps, len(a), len(b))
		return iv
	}
	_, df, _ := WelchT(a, b)
	se := math.Sqrt(variance(a)/float64(len(a)) + variance(b)/float64(len(b)))
	h := 0.0
	if se > 0 {
		h = tQuantile(df, conf) * se
	}
	w := lim.widen(d)
	iv.Lo, iv.Hi = Float(d-h-w), Float(d+h+w)
	iv.Method = fmt.Sprintf("Welch t over %d and %d repetitions", len(a), len(b))
	if w > 0 {
		iv.Method += fmt.Sprintf(", widened by the meter's resolution and accuracy (±%.3g J)", w)
	}
	return iv
}

// UWh converts joules to microwatt-hours, the unit of the original study's
// tables (1 uWh = 3.6 mJ).
func UWh(j float64) float64 { return j * 1e6 / 3600 }

// uwhInterval is iv in microwatt-hours.
func uwhInterval(iv Interval) Interval {
	iv.Value = Float(UWh(float64(iv.Value)))
	iv.Lo = Float(UWh(float64(iv.Lo)))
	iv.Hi = Float(UWh(float64(iv.Hi)))
	return iv
}
