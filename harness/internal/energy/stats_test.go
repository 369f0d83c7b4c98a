package energy

import (
	"math"
	"testing"
)

func TestMannWhitneyU(t *testing.T) {
	tests := []struct {
		name string
		a, b []float64
		u, p float64
		tolP float64
	}{
		// Exact two-sided p-values: 2/C(6,3) and 2/C(10,5), as R's
		// wilcox.test gives.
		{"3 vs 3 separated", []float64{1, 2, 3}, []float64{4, 5, 6}, 0, 0.1, 1e-12},
		{"5 vs 5 separated", []float64{6, 7, 8, 9, 10}, []float64{1, 2, 3, 4, 5}, 25, 2.0 / 252, 1e-12},
		// R: wilcox.test(c(1.1,2.2,3.3,4.4), c(3.0,5.5,6.6,7.7,8.8)) W = 2, p = 0.06349.
		{"4 vs 5 overlapping", []float64{1.1, 2.2, 3.3, 4.4}, []float64{3.0, 5.5, 6.6, 7.7, 8.8}, 2, 0.06349, 1e-4},
		{"identical with ties", []float64{1, 1, 1}, []float64{1, 1, 1}, 4.5, 1, 1e-12},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u, p := MannWhitneyU(tc.a, tc.b)
			if u != tc.u || math.Abs(p-tc.p) > tc.tolP {
				t.Errorf("U, p = %v, %.6f; want %v, %.6f", u, p, tc.u, tc.p)
			}
		})
	}
}

func TestMannWhitneyULarge(t *testing.T) {
	// With large samples the normal approximation applies; shifted
	// samples must give a tiny p and equal ones a large p.
	var a, b, c []float64
	for i := range 200 {
		x := float64((i*7919)%200) / 200
		a = append(a, x)
		b = append(b, x+0.5)
		c = append(c, x+1e-9*float64(i%3))
	}
	if _, p := MannWhitneyU(a, b); p > 1e-6 {
		t.Errorf("shifted: p = %g, want < 1e-6", p)
	}
	if _, p := MannWhitneyU(a, c); p < 0.5 {
		t.Errorf("same: p = %g, want > 0.5", p)
	}
}

func TestWelchT(t *testing.T) {
	// R: t.test(c(1,2,3,4,5), c(2,4,6,8,10)): t = -1.8974, df = 5.8824, p = 0.1075.
	tt, df, p := WelchT([]float64{1, 2, 3, 4, 5}, []float64{2, 4, 6, 8, 10})
	if math.Abs(tt+1.8974) > 1e-4 || math.Abs(df-5.8824) > 1e-4 || math.Abs(p-0.1075) > 1e-4 {
		t.Errorf("t, df, p = %.4f, %.4f, %.4f; want -1.8974, 5.8824, 0.1075", tt, df, p)
	}
	if _, _, p := WelchT([]float64{1}, []float64{2, 3}); !math.IsNaN(p) {
		t.Errorf("one value: p = %v, want NaN", p)
	}
}

func TestFitLine(t *testing.T) {
	x := []float64{0, 1, 2, 3, 4}
	y := []float64{1, 3, 5, 7, 9}
	f, ok := fitLine(x, y, 0.95)
	if !ok || math.Abs(f.Slope-2) > 1e-12 || math.Abs(f.Intercept-1) > 1e-12 || math.Abs(f.R2-1) > 1e-12 {
		t.Errorf("fit = %+v, %v; want slope 2, intercept 1, R² 1", f, ok)
	}
	if _, ok := fitLine([]float64{1, 1, 1}, []float64{1, 2, 3}, 0.95); ok {
		t.Error("x without variation fitted")
	}
}

func TestQuantile(t *testing.T) {
	xs := []float64{1, 2, 3, 4, 5}
	for _, tc := range []struct{ q, want float64 }{{0, 1}, {0.5, 3}, {0.9, 4.6}, {1, 5}} {
		if got := quantile(xs, tc.q); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("quantile(%v) = %v, want %v", tc.q, got, tc.want)
		}
	}
	if !math.IsNaN(quantile(nil, 0.5)) {
		t.Error("quantile of nothing is not NaN")
	}
}
