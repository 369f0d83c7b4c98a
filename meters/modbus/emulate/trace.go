package emulate

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Trace is a power trace: power at each point in time since the emulator
// started, linear between points, held before the first point and after
// the last. Energy integrates it exactly (trapezoids on a piecewise-linear
// curve), so that an emulated energy counter agrees with the power it
// serves.
type Trace struct {
	t   []time.Duration
	w   []float64
	cum []float64 // joules from t[0] to t[i]
}

// Constant is a trace of w watts forever.
func Constant(w float64) *Trace {
	return &Trace{t: []time.Duration{0}, w: []float64{w}, cum: []float64{0}}
}

// NewTrace makes a trace from points (time since start, watts). Times must
// not decrease.
func NewTrace(t []time.Duration, w []float64) (*Trace, error) {
	if len(t) == 0 || len(t) != len(w) {
		return nil, fmt.Errorf("trace: %d times and %d powers; need at least one of each, as many of one as of the other", len(t), len(w))
	}
	tr := &Trace{t: t, w: w, cum: make([]float64, len(t))}
	for i := 1; i < len(t); i++ {
		if t[i] < t[i-1] {
			return nil, fmt.Errorf("trace: time goes backwards at point %d (%v after %v)", i+1, t[i], t[i-1])
		}
		tr.cum[i] = tr.cum[i-1] + (w[i]+w[i-1])/2*(t[i]-t[i-1]).Seconds()
	}
	for i, v := range w {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("trace: point %d has no finite power", i+1)
		}
	}
	return tr, nil
}

// Power is the trace's power at d.
func (tr *Trace) Power(d time.Duration) float64 {
	i := sort.Search(len(tr.t), func(i int) bool { return tr.t[i] > d })
	switch {
	case i == 0:
		return tr.w[0]
	case i == len(tr.t):
		return tr.w[len(tr.w)-1]
	}
	f := float64(d-tr.t[i-1]) / float64(tr.t[i]-tr.t[i-1])
	return tr.w[i-1] + f*(tr.w[i]-tr.w[i-1])
}

// Energy is the trace's energy in joules from 0 to d.
func (tr *Trace) Energy(d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	// Before the first point the power is held at the first value.
	pre := math.Min(d.Seconds(), tr.t[0].Seconds()) * tr.w[0]
	if d <= tr.t[0] {
		return pre
	}
	i := sort.Search(len(tr.t), func(i int) bool { return tr.t[i] > d }) - 1
	p := tr.Power(d)
	return pre + tr.cum[i] + (tr.w[i]+p)/2*(d-tr.t[i]).Seconds()
}

// ReadTrace reads a trace from CSV. The first row may be a header naming a
// time column (t_s or time_s in seconds, t_ns in nanoseconds, as in the
// harness's samples.csv) and a power column (watts, w or power_w); without a
// header the columns are seconds, watts. Times are taken relative to the
// first row. Where a "channel" column exists, only the first channel seen is
// used, so a samples.csv of a one-meter run can be replayed as it is.
func ReadTrace(r io.Reader) (*Trace, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.Comment = '#'
	rows, err := cr.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("trace: %w", err)
	}
	if len(rows) == 0 {
		return nil, errors.New("trace: empty file")
	}
	tcol, wcol, ccol, scale := 0, 1, -1, float64(time.Second)
	start := 0
	if _, err := strconv.ParseFloat(strings.TrimSpace(rows[0][0]), 64); err != nil {
		tcol, wcol = -1, -1
		for i, h := range rows[0] {
			switch strings.ToLower(strings.TrimSpace(h)) {
			case "t_s", "time_s", "t", "seconds":
				tcol, scale = i, float64(time.Second)
			case "t_ns":
				tcol, scale = i, 1
			case "watts", "w", "power_w":
				wcol = i
			case "channel":
				ccol = i
			}
		}
		if tcol < 0 || wcol < 0 {
			return nil, fmt.Errorf("trace: header %q names no time column (t_s, t_ns) or no power column (watts)", strings.Join(rows[0], ","))
		}
		start = 1
	}
	var ts []time.Duration
	var ws []float64
	var t0 float64
	channel := ""
	for n, row := range rows[start:] {
		line := n + start + 1
		if tcol >= len(row) || wcol >= len(row) || (ccol >= 0 && ccol >= len(row)) {
			return nil, fmt.Errorf("trace: line %d: too few columns", line)
		}
		if ccol >= 0 {
			if channel == "" {
				channel = row[ccol]
			}
			if row[ccol] != channel {
				continue
			}
		}
		tv, err1 := strconv.ParseFloat(strings.TrimSpace(row[tcol]), 64)
		wv, err2 := strconv.ParseFloat(strings.TrimSpace(row[wcol]), 64)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("trace: line %d: time %q or power %q is not a number", line, row[tcol], row[wcol])
		}
		if math.IsNaN(wv) {
			continue // samples.csv writes NaN where a meter had no power
		}
		if len(ts) == 0 {
			t0 = tv
		}
		ts = append(ts, time.Duration((tv-t0)*scale))
		ws = append(ws, wv)
	}
	tr, err := NewTrace(ts, ws)
	if err != nil {
		return nil, err
	}
	return tr, nil
}
