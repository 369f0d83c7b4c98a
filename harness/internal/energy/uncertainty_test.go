package energy

import (
	"math"
	"strings"
	"testing"
)

func TestRepInterval(t *testing.T) {
	five := []float64{0.9, 1.1, 1.0, 1.2, 0.8}
	// t(0.975, 4) = 2.776445; s/sqrt(5) = 0.0707107.
	const half = 2.776445105 * 0.07071067812
	tests := []struct {
		name       string
		vals       []float64
		lim        limits
		value      float64
		lo, hi     float64 // NaN: no interval
		reason     string
		methodHave string
	}{
		{"no values", nil, limits{}, math.NaN(), math.NaN(), math.NaN(), "no successful requests", "none"},
		{"one repetition", []float64{1}, limits{}, 1, math.NaN(), math.NaN(), "fewer than 3 repetitions: no interval (1 here)", "none"},
		{"two repetitions", []float64{1, 2}, limits{}, 1.5, math.NaN(), math.NaN(), "fewer than 3 repetitions: no interval (2 here)", "none"},
		{"five repetitions", five, limits{}, 1, 1 - half, 1 + half, "", "t over 5 repetitions"},
		{"widened by resolution", five, limits{perRequestJ: 0.01}, 1, 1 - half - 0.01, 1 + half + 0.01, "", "(±0.01 J)"},
		{"widened by relative error", five, limits{relErr: 0.05}, 1, 1 - half - 0.05, 1 + half + 0.05, "", "meter's resolution and accuracy"},
		{"both", five, limits{perRequestJ: 0.01, relErr: 0.05}, 1, 1 - half - 0.06, 1 + half + 0.06, "", "(±0.06 J)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			iv := repInterval(tc.vals, 3, 0.95, tc.lim)
			if !same(float64(iv.Value), tc.value) || !same(float64(iv.Lo), tc.lo) || !same(float64(iv.Hi), tc.hi) {
				t.Errorf("interval %v [%v, %v], want %v [%v, %v]", iv.Value, iv.Lo, iv.Hi, tc.value, tc.lo, tc.hi)
			}
			if !strings.Contains(iv.Reason, tc.reason) || (tc.reason == "") != (iv.Reason == "") {
				t.Errorf("reason %q, want %q", iv.Reason, tc.reason)
			}
			if !strings.Contains(iv.Method, tc.methodHave) {
				t.Errorf("method %q lacks %q", iv.Method, tc.methodHave)
			}
			if iv.N != len(tc.vals) {
				t.Errorf("n = %d, want %d", iv.N, len(tc.vals))
			}
		})
	}
}

// same compares with a tolerance, NaN equal to NaN.
func same(a, b float64) bool {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.IsNaN(a) && math.IsNaN(b)
	}
	return math.Abs(a-b) <= 1e-6*math.Max(1, math.Abs(b))
}

func TestScreen(t *testing.T) {
	iv := Interval{Value: 0.002, Lo: 0.001, Hi: 0.003, N: 5, Method: "t over 5 repetitions"}
	tests := []struct {
		name  string
		lim   limits
		meanJ float64
		below bool
	}{
		{"meter states no resolution", limits{}, 1e-9, false},
		{"energy well above resolution", limits{windowJ: 1}, 30, false},
		{"energy below resolution", limits{windowJ: 10}, 0.4, true},
		{"negative energy below resolution", limits{windowJ: 10}, -3, true},
		{"negative energy beyond resolution keeps its number", limits{windowJ: 10}, -30, false},
		{"no energy figure", limits{windowJ: 10}, math.NaN(), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.lim.screen(iv, tc.meanJ, "dynamic energy")
			if got.BelowResolution != tc.below {
				t.Fatalf("below resolution = %v, want %v (%+v)", got.BelowResolution, tc.below, got)
			}
			if tc.below {
				if got.Value.OK() || got.Lo.OK() || got.Hi.OK() {
					t.Errorf("a below-resolution figure carries numbers: %+v", got)
				}
				if !strings.HasPrefix(got.Reason, "below resolution") || got.N != 5 {
					t.Errorf("reason %q, n %d", got.Reason, got.N)
				}
			} else if got != iv {
				t.Errorf("changed an interval above resolution: %+v", got)
			}
		})
	}
}

func TestDiffInterval(t *testing.T) {
	a, b := []float64{1, 2, 3, 4, 5}, []float64{2, 4, 6, 8, 10}
	// Welch: df 5.882353, t(0.975, df) 2.458824, se sqrt(2.5): the
	// interval [-6.887742, 0.887742], found independently by integrating
	// Student's t density numerically.
	tests := []struct {
		name          string
		a, b          []float64
		lim           limits
		value, lo, hi float64
		reason        string
	}{
		{"welch", a, b, limits{}, -3, -6.887742, 0.887742, ""},
		{"widened", a, b, limits{perRequestJ: 0.5, relErr: 0.1}, -3, -6.887742 - 0.8, 0.887742 + 0.8, ""},
		{"too few on one side", a, b[:2], limits{}, 0, math.NaN(), math.NaN(), "fewer than 3 repetitions"},
		{"nothing on one side", a, nil, limits{}, math.NaN(), math.NaN(), math.NaN(), "no successful requests"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			iv := diffInterval(tc.a, tc.b, 3, 0.95, tc.lim)
			if !same(float64(iv.Value), tc.value) || !same(float64(iv.Lo), tc.lo) || !same(float64(iv.Hi), tc.hi) {
				t.Errorf("interval %v [%v, %v], want %v [%v, %v]", iv.Value, iv.Lo, iv.Hi, tc.value, tc.lo, tc.hi)
			}
			if !strings.Contains(iv.Reason, tc.reason) || (tc.reason == "") != (iv.Reason == "") {
				t.Errorf("reason %q, want %q", iv.Reason, tc.reason)
			}
		})
	}
}

func TestMeterLimits(t *testing.T) {
	reps := []RepEnergy{
		{Requests: 100, ResolutionJ: 10},
		{Requests: 50, ResolutionJ: 10},
		{Requests: 0, ResolutionJ: 10},
		{Requests: 10, ResolutionJ: nan},
	}
	l := meterLimits(-0.02, reps)
	if l.windowJ != 10 || !same(l.perRequestJ, (0.1+0.2)/2) || l.relErr != 0.02 {
		t.Errorf("limits %+v, want window 10 J, 0.15 J per request, relative error 0.02", l)
	}
	if l := meterLimits(0, nil); l.windowJ != 0 || l.perRequestJ != 0 {
		t.Errorf("no repetitions: %+v, want zero limits", l)
	}
}

func TestUWh(t *testing.T) {
	tests := []struct{ j, uwh float64 }{{0.0036, 1}, {3.6, 1000}, {0, 0}, {-0.0072, -2}}
	for _, tc := range tests {
		if got := UWh(tc.j); !same(got, tc.uwh) {
			t.Errorf("UWh(%v) = %v, want %v", tc.j, got, tc.uwh)
		}
	}
	iv := uwhInterval(Interval{Value: 0.0036, Lo: 0.0018, Hi: nan, N: 4, Method: "m", Reason: "r"})
	if !same(float64(iv.Value), 1) || !same(float64(iv.Lo), 0.5) || iv.Hi.OK() || iv.N != 4 || iv.Method != "m" || iv.Reason != "r" {
		t.Errorf("uwhInterval = %+v", iv)
	}
}
