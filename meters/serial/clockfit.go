package serial

import (
	"math"
	"time"

	"github.com/academemes/harness/meters"
)

// ClockFitter maps a device's own timestamps onto the harness clock with a
// straight line, host = device*(1+drift) + offset, refitted as the run goes.
//
// Each observation pairs a device time with the host time at which the
// bytes carrying it were read. That host time is late by a variable USB and
// scheduling latency, never early. So the fitter keeps, per bin of device
// time, only the observation with the smallest host-minus-device difference
// (the least delayed one, as NTP's clock filter does) and fits the line
// through those minima by least squares over a sliding window. The zero
// value is not usable; call NewClockFitter.
type ClockFitter struct {
	bin    int64 // bin length in device ns
	window int   // bins kept

	started bool
	base    time.Time // host time of the first observation
	devBase int64     // device time of the first observation

	// current bin: the minimum y = hostRel - devRel seen, at x = devRel.
	binStart   int64
	binX, binY float64
	binHas     bool

	xs, ys []float64 // completed bins, oldest first

	a, b   float64 // y = a + b*x
	fitted bool
	points int // observations ever added
}

// NewClockFitter returns a fitter that keeps one point per bin of device
// time and fits over the last window bins (bin 100 ms, window 600: one
// minute of history).
func NewClockFitter(bin time.Duration, window int) *ClockFitter {
	if bin <= 0 {
		bin = 100 * time.Millisecond
	}
	if window < 2 {
		window = 600
	}
	return &ClockFitter{bin: int64(bin), window: window}
}

// Add records that device time devNs was read at host time host.
func (f *ClockFitter) Add(devNs int64, host time.Time) {
	f.points++
	if !f.started {
		f.started = true
		f.base = host
		f.devBase = devNs
		f.binStart = devNs
	}
	x := float64(devNs - f.devBase)
	y := float64(host.Sub(f.base)) - x
	if devNs-f.binStart >= f.bin && f.binHas {
		f.push(f.binX, f.binY)
		f.binStart = devNs
		f.binHas = false
	}
	if !f.binHas || y < f.binY {
		f.binX, f.binY, f.binHas = x, y, true
	}
	if !f.fitted && (len(f.xs) == 0) {
		// Until a bin completes, use the least delayed point with the prior
		// slope (zero, or the drift kept across a Reset).
		f.a = f.binY - f.b*f.binX
	}
}

func (f *ClockFitter) push(x, y float64) {
	f.xs = append(f.xs, x)
	f.ys = append(f.ys, y)
	if len(f.xs) > f.window {
		f.xs = f.xs[1:]
		f.ys = f.ys[1:]
	}
	f.refit()
}

// refit fits y = a + b*x; with one point only the offset moves.
func (f *ClockFitter) refit() {
	n := float64(len(f.xs))
	if n == 1 {
		f.a = f.ys[0] - f.b*f.xs[0]
		return
	}
	var sx, sy float64
	for i := range f.xs {
		sx += f.xs[i]
		sy += f.ys[i]
	}
	mx, my := sx/n, sy/n
	var sxx, sxy float64
	for i := range f.xs {
		dx := f.xs[i] - mx
		sxx += dx * dx
		sxy += dx * (f.ys[i] - my)
	}
	if sxx > 0 {
		f.b = sxy / sxx
	}
	f.a = my - f.b*mx
	f.fitted = true
}

// Ready reports whether at least one observation was added.
func (f *ClockFitter) Ready() bool { return f.started }

// Map returns the host time of device time devNs under the current fit.
func (f *ClockFitter) Map(devNs int64) time.Time {
	x := float64(devNs - f.devBase)
	return f.base.Add(time.Duration(x + f.a + f.b*x))
}

// Reset forgets the device clock's origin (the device restarted or was
// reconnected, so its counter started again) but keeps the drift as a
// prior for the new fit.
func (f *ClockFitter) Reset() {
	b, bin, window, points := f.b, f.bin, f.window, f.points
	*f = ClockFitter{bin: bin, window: window, b: b, points: points}
}

// Fit reports the current line and how well the bin minima fit it.
// OffsetNs is in Unix nanoseconds for a device time of zero.
func (f *ClockFitter) Fit() meters.ClockFit {
	cf := meters.ClockFit{DriftPPM: f.b * 1e6, Points: f.points}
	if !f.started {
		return cf
	}
	// host = base + x*(1+b) + a, x = dev - devBase
	cf.OffsetNs = float64(f.base.UnixNano()) + f.a - float64(f.devBase)*(1+f.b)
	var ss float64
	for i := range f.xs {
		r := f.ys[i] - (f.a + f.b*f.xs[i])
		ss += r * r
		cf.ResidualMaxNs = math.Max(cf.ResidualMaxNs, math.Abs(r))
	}
	if len(f.xs) > 0 {
		cf.ResidualRMSNs = math.Sqrt(ss / float64(len(f.xs)))
	}
	return cf
}
