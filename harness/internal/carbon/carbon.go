// Package carbon is the carbon arithmetic of the Software Carbon
// Intensity specification (Green Software Foundation, ISO/IEC
// 21031:2024): SCI = ((E x I) + M) per R, with E the energy the software
// consumed, I the grid's carbon intensity where and when it was consumed,
// M the share of the hardware's embodied emissions, and R the functional
// unit (here a request).
//
// It holds pure functions over energy figures and an intensity series:
// no I/O beyond parsing a reader, no clock. The analysis (package energy)
// applies them to each repetition's window.
package carbon

import (
	"errors"
	"fmt"
	"math"
	"sort"
)

// JoulesPerKWh converts joules to kilowatt-hours, the unit grid
// intensities are given per.
const JoulesPerKWh = 3.6e6

// SecondsPerYear is a Julian year, the length SCI's expected lifetime is
// counted in when it is given in years.
const SecondsPerYear = 365.25 * 24 * 3600

// Grams is the emissions, in gCO2e, of joules of energy drawn at an
// intensity of gPerKWh.
func Grams(joules, gPerKWh float64) float64 { return joules * gPerKWh / JoulesPerKWh }

// Point is one value of an intensity series: from TNs (Unix ns) until the
// next point, the grid emitted GPerKWh grams of CO2e per kWh.
type Point struct {
	TNs     int64
	GPerKWh float64
}

// Intensity is the grid's carbon intensity over time: a constant, or a
// step function of time as grid operators and Electricity Maps publish
// it (each value holds for its period, from its timestamp until the next).
// The zero Intensity covers nothing.
type Intensity struct {
	points []Point
	endNs  int64 // the last point holds until here
}

// Constant is an intensity of gPerKWh at all times.
func Constant(gPerKWh float64) Intensity {
	return Intensity{points: []Point{{TNs: math.MinInt64, GPerKWh: gPerKWh}}, endNs: math.MaxInt64}
}

// ErrNotCovered means an intensity series does not cover a window.
var ErrNotCovered = errors.New("carbon: the intensity series does not cover the window")

// Series is an intensity that takes each point's value from its time
// until the next point's, and the last point's until endNs. Points must be
// in increasing time order, finite and not negative.
func Series(points []Point, endNs int64) (Intensity, error) {
	if len(points) == 0 {
		return Intensity{}, errors.New("carbon: an intensity series needs at least one point")
	}
	for i, p := range points {
		if math.IsNaN(p.GPerKWh) || math.IsInf(p.GPerKWh, 0) || p.GPerKWh < 0 {
			return Intensity{}, fmt.Errorf("carbon: point %d: intensity %v is not a number of gCO2e/kWh of 0 or more", i, p.GPerKWh)
		}
		if i > 0 && p.TNs <= points[i-1].TNs {
			return Intensity{}, fmt.Errorf("carbon: point %d is not after point %d", i, i-1)
		}
	}
	if endNs <= points[len(points)-1].TNs {
		return Intensity{}, errors.New("carbon: the series must end after its last point")
	}
	return Intensity{points: append([]Point(nil), points...), endNs: endNs}, nil
}

// IsConstant reports whether in is the same at all times.
func (in Intensity) IsConstant() bool {
	return len(in.points) == 1 && in.points[0].TNs == math.MinInt64 && in.endNs == math.MaxInt64
}

// Points is the series' points (one, at the earliest time, for a
// constant) and the time the last one holds until.
func (in Intensity) Points() ([]Point, int64) { return append([]Point(nil), in.points...), in.endNs }

// Piece is a span [S, E) of constant intensity.
type Piece struct {
	S, E    int64
	GPerKWh float64
}

// Pieces cuts [s, e) where the intensity changes, each piece with its
// value; ErrNotCovered when part of [s, e) lies before the first point or
// after the series' end.
func (in Intensity) Pieces(s, e int64) ([]Piece, error) {
	if e <= s {
		return nil, nil
	}
	n := len(in.points)
	if n == 0 || s < in.points[0].TNs || e > in.endNs {
		return nil, ErrNotCovered
	}
	// The point in force at s: the last one at or before it.
	i := sort.Search(n, func(i int) bool { return in.points[i].TNs > s }) - 1
	var out []Piece
	for at := s; at < e; i++ {
		end := in.endNs
		if i+1 < n {
			end = in.points[i+1].TNs
		}
		out = append(out, Piece{S: at, E: min(end, e), GPerKWh: in.points[i].GPerKWh})
		at = min(end, e)
	}
	return out, nil
}

// Range is the lowest and highest intensity in [s, e).
func (in Intensity) Range(s, e int64) (lo, hi float64, err error) {
	ps, err := in.Pieces(s, e)
	if err != nil {
		return math.NaN(), math.NaN(), err
	}
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, p := range ps {
		lo, hi = math.Min(lo, p.GPerKWh), math.Max(hi, p.GPerKWh)
	}
	return lo, hi, nil
}

// Operational is SCI's E x I for the window [s, e) (Unix ns), in gCO2e:
// the energy the meter saw, less idleW watts held over the window (0 for
// the whole device's energy), times the facility's pue, each stretch at
// the intensity in force then. cum is the meter's cumulative energy in
// joules at a time, as the analysis interpolates it between samples, so
// every sampling interval's energy is weighted by the intensity at its
// time, and an interval that spans a change of intensity is split where
// it changes.
func Operational(cum func(tNs int64) float64, idleW float64, s, e int64, in Intensity, pue float64) (float64, error) {
	ps, err := in.Pieces(s, e)
	if err != nil {
		return math.NaN(), err
	}
	var g float64
	for _, p := range ps {
		j := cum(p.E) - cum(p.S) - idleW*float64(p.E-p.S)/1e9
		g += Grams(j*pue, p.GPerKWh)
	}
	return g, nil
}

// Embodied is the hardware's embodied emissions and the share of them a
// workload is charged by SCI's time-share method: M = TE x (TiR / EL) x
// (RR / ToR), with TE the total embodied emissions, TiR the time the
// hardware was reserved, EL its expected lifetime, and RR/ToR the share
// of its resources reserved.
type Embodied struct {
	TotalKg       float64 // TE, kgCO2e over the hardware's life
	LifetimeYears float64 // EL
	Share         float64 // RR / ToR, 0-1: 1 for a machine reserved whole
}

// Grams is M in gCO2e for a reservation of seconds.
func (m Embodied) Grams(seconds float64) float64 {
	if m.LifetimeYears <= 0 {
		return math.NaN()
	}
	return m.TotalKg * 1000 * seconds / (m.LifetimeYears * SecondsPerYear) * m.Share
}

// Spec names the specification the method follows.
const Spec = "Software Carbon Intensity (SCI) specification, Green Software Foundation, ISO/IEC 21031:2024"
