package energy

import (
	"math"

	"golang.org/x/perf/benchmath"

	"gonum.org/v1/gonum/stat"
	"gonum.org/v1/gonum/stat/distuv"
)

// Interval is an estimate with its 95% confidence interval and how the
// interval was found. Where there is no interval, Lo and Hi are NaN (null
// in JSON) and Reason says why; where the meter cannot resolve the energy
// the figure rests on, BelowResolution is set and there is no number at
// all.
type Interval struct {
	Value Float `json:"value"`
	Lo    Float `json:"lo"`
	Hi    Float `json:"hi"`
	// N is the number of repetitions the interval rests on.
	N int `json:"n"`
	// Method names the interval: "t over 5 repetitions", with the
	// meter's share of its width where there is one, or "none".
	Method string `json:"method"`
	// BelowResolution is set when the energy is smaller than the meter
	// resolves over a repetition's window: Value, Lo and Hi are NaN.
	BelowResolution bool `json:"below_resolution,omitempty"`
	// Reason says why there is no interval (or no value), e.g. "fewer
	// than 3 repetitions: no interval".
	Reason string `json:"reason,omitempty"`
}

// quantile is the q-quantile of sorted xs by linear interpolation between
// order statistics (R type 7, numpy's default), NaN for no values.
func quantile(sorted []float64, q float64) float64 {
	n := len(sorted)
	if n == 0 {
		return math.NaN()
	}
	h := q * float64(n-1)
	i := int(math.Floor(h))
	if i >= n-1 {
		return sorted[n-1]
	}
	return sorted[i] + (h-float64(i))*(sorted[i+1]-sorted[i])
}

// Mean is the arithmetic mean of xs, NaN for none.
func Mean(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	var s float64
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

// cv is the coefficient of variation (sample standard deviation / mean).
func cv(xs []float64) float64 {
	if len(xs) < 2 {
		return math.NaN()
	}
	m := Mean(xs)
	var ss float64
	for _, x := range xs {
		ss += (x - m) * (x - m)
	}
	return math.Sqrt(ss/float64(len(xs)-1)) / math.Abs(m)
}

// TInterval is mean ± t(n-1) · s/√n at the given confidence.
func TInterval(xs []float64, conf float64) (mean, lo, hi float64) {
	n := len(xs)
	mean = stat.Mean(xs, nil)
	if n < 2 {
		return mean, math.NaN(), math.NaN()
	}
	se := stat.StdDev(xs, nil) / math.Sqrt(float64(n))
	t := tQuantile(float64(n-1), conf)
	return mean, mean - t*se, mean + t*se
}

// tQuantile is the two-sided critical value of Student's t with df
// degrees of freedom at confidence conf.
func tQuantile(df, conf float64) float64 {
	return distuv.StudentsT{Mu: 0, Sigma: 1, Nu: df}.Quantile(1 - (1-conf)/2)
}

// variance is the sample variance (n-1).
func variance(xs []float64) float64 { return stat.Variance(xs, nil) }

// Fit is a straight line y = Intercept + Slope·x fitted by least squares.
type Fit struct {
	Slope     float64
	SlopeLo   float64
	SlopeHi   float64
	Intercept float64
	R2        float64
	N         int
}

// fitLine fits y on x by ordinary least squares with a t interval on the
// slope. It returns ok=false when x does not vary or there are fewer than
// three points.
func fitLine(xs, ys []float64, conf float64) (Fit, bool) {
	n := len(xs)
	if n < 3 {
		return Fit{N: n}, false
	}
	mx, my := stat.Mean(xs, nil), stat.Mean(ys, nil)
	var sxx, sxy, syy float64
	for i := range xs {
		dx, dy := xs[i]-mx, ys[i]-my
		sxx += dx * dx
		sxy += dx * dy
		syy += dy * dy
	}
	if sxx == 0 {
		return Fit{N: n}, false
	}
	b := sxy / sxx
	a := my - b*mx
	sse := syy - b*sxy
	if sse < 0 {
		sse = 0
	}
	se := math.Sqrt(sse / float64(n-2) / sxx)
	t := distuv.StudentsT{Mu: 0, Sigma: 1, Nu: float64(n - 2)}.Quantile(1 - (1-conf)/2)
	r2 := math.NaN()
	if syy > 0 {
		r2 = 1 - sse/syy
	}
	return Fit{Slope: b, SlopeLo: b - t*se, SlopeHi: b + t*se, Intercept: a, R2: r2, N: n}, true
}

// WelchT is Welch's two-sample t-test (unequal variances), two-sided. It
// returns p = NaN when either sample has fewer than two values.
func WelchT(a, b []float64) (t, df, p float64) {
	na, nb := float64(len(a)), float64(len(b))
	if na < 2 || nb < 2 {
		return math.NaN(), math.NaN(), math.NaN()
	}
	va, vb := stat.Variance(a, nil)/na, stat.Variance(b, nil)/nb
	d := stat.Mean(a, nil) - stat.Mean(b, nil)
	if va+vb == 0 {
		if d == 0 {
			return 0, math.Inf(1), 1
		}
		return math.Inf(int(math.Copysign(1, d))), math.Inf(1), 0
	}
	t = d / math.Sqrt(va+vb)
	df = (va + vb) * (va + vb) / (va*va/(na-1) + vb*vb/(nb-1))
	p = 2 * distuv.StudentsT{Mu: 0, Sigma: 1, Nu: df}.Survival(math.Abs(t))
	return t, df, p
}

// MannWhitneyU is the Mann-Whitney U (Wilcoxon rank-sum) test, two-sided,
// as benchstat runs it: golang.org/x/perf/benchmath, which computes the
// exact distribution of U for small samples (ties included) and the normal
// approximation for large ones. U is the statistic of a: the number of
// pairs in which a's value is larger, ties counting one half.
func MannWhitneyU(a, b []float64) (u, p float64) {
	if len(a) == 0 || len(b) == 0 {
		return math.NaN(), math.NaN()
	}
	for _, x := range a {
		for _, y := range b {
			switch {
			case x > y:
				u++
			case x == y:
				u += 0.5
			}
		}
	}
	th := benchmath.DefaultThresholds
	c := benchmath.AssumeNothing.Compare(benchmath.NewSample(a, &th), benchmath.NewSample(b, &th))
	return u, c.P
}
