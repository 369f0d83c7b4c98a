package energy

import (
	"golang.org/x/perf/benchmath"
	"math"
	"math/rand/v2"
	"sort"

	"gonum.org/v1/gonum/stat"
	"gonum.org/v1/gonum/stat/distuv"
)

// Interval is an estimate with its 95% confidence interval and how the
// interval was found.
type Interval struct {
	Value Float `json:"value"`
	Lo    Float `json:"lo"`
	Hi    Float `json:"hi"`
	// N is the number of values the interval rests on (repetitions or
	// windows).
	N int `json:"n"`
	// Method names the interval: "t (5 repetitions)", "bootstrap over
	// 1s windows (2 repetitions, 2000 resamples)", "none (one value)".
	Method string `json:"method"`
	// BelowResolution is set when the value is smaller than the meter can
	// resolve: it is then no number to compare; Reason says why.
	BelowResolution bool   `json:"below_resolution,omitempty"`
	Reason          string `json:"reason,omitempty"`
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

// tInterval is mean ± t(n-1) · s/√n at the given confidence.
func tInterval(xs []float64, conf float64) (mean, lo, hi float64) {
	n := len(xs)
	mean = stat.Mean(xs, nil)
	if n < 2 {
		return mean, math.NaN(), math.NaN()
	}
	se := stat.StdDev(xs, nil) / math.Sqrt(float64(n))
	t := distuv.StudentsT{Mu: 0, Sigma: 1, Nu: float64(n - 1)}.Quantile(1 - (1-conf)/2)
	return mean, mean - t*se, mean + t*se
}

// bootRep is one repetition's data for the bootstrap: its steady
// window's sub-windows (energy J, requests, length s), the idle power used
// for it, and the sub-window powers of its idle phase.
type bootRep struct {
	load  [][3]float64
	idleW float64
	idle  []float64
}

// bootStat is joules per request over the repetitions: total, or dynamic
// with each repetition's idle power. With rng nil it is the estimate from
// the data as measured; with rng, from one resample, sub-windows and idle
// sub-windows drawn with replacement within each repetition. It returns
// the number of sub-windows too.
func bootStat(reps []bootRep, dynamic bool, rng *rand.Rand) (float64, int) {
	var num, den float64
	n := 0
	for _, r := range reps {
		idle := r.idleW
		if rng != nil && dynamic && len(r.idle) > 1 {
			// The idle baseline is uncertain too, and its error is shared
			// by every sub-window of the repetition: resample it as well,
			// as a shift from its measured mean.
			var s float64
			for range r.idle {
				s += r.idle[rng.IntN(len(r.idle))]
			}
			idle += s/float64(len(r.idle)) - mean(r.idle)
		}
		for range r.load {
			p := r.load[n%len(r.load)]
			if rng != nil {
				p = r.load[rng.IntN(len(r.load))]
			}
			n++
			e := p[0]
			if dynamic {
				e -= idle * p[2]
			}
			num += e
			den += p[1]
		}
	}
	if den <= 0 {
		return math.NaN(), n
	}
	return num / den, n
}

// bootstrap is the percentile interval of bootStat over resamples.
func bootstrap(reps []bootRep, dynamic bool, iters int, conf float64, rng *rand.Rand) (lo, hi float64) {
	stats := make([]float64, 0, iters)
	for range iters {
		if v, _ := bootStat(reps, dynamic, rng); !math.IsNaN(v) {
			stats = append(stats, v)
		}
	}
	if len(stats) == 0 {
		return math.NaN(), math.NaN()
	}
	sort.Float64s(stats)
	a := (1 - conf) / 2
	return quantile(stats, a), quantile(stats, 1-a)
}

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
