package serial

import (
	"fmt"
	"math"
	"slices"
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
//
// A device's oscillator runs within a few hundred ppm of its nominal rate
// (a quartz crystal within ±100 ppm, an untrimmed RC oscillator within
// ±1 to 2 %). A fitted drift beyond MaxDriftPPM is therefore no clock but
// timestamps that are wrong (a misread stream): the fit has failed. Until
// the minima span FitJudgeSpan the slope is only held within the bound,
// since a few bins of USB latency can tilt a short line; past it a slope
// beyond the bound fails the fit, and from then on (until Reset) Map
// follows the host clock: a device time is placed by its distance from the
// latest observation, which is taken to be read when it arrived, so that
// the samples keep to the time their bytes arrived. Failures lists each
// failure for the report.
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
	keep   []bool    // per bin: not late, so in the fit (see refit)
	hull   []int     // the lower hull's bins, for refit
	// heights is refit's buffer of bins' heights above the lower hull.
	heights []float64

	a, b   float64 // y = a + b*x
	points int     // observations ever added

	// failed: the fit failed; Map follows the host clock: hostY is y of
	// the latest observation.
	failed   bool
	hostY    float64
	failures []FitFailure // every failure, kept across Reset
}

// MaxDriftPPM is the largest drift a fit may find before it counts as
// failed: 2 %, beyond the ±1 % an untrimmed RC oscillator is specified to
// (the internal oscillators of STM32 microcontrollers, for example), and
// far beyond any crystal.
const MaxDriftPPM = 20000

// FitJudgeSpan is how much device time the fitted minima must span before
// their slope is judged: over two seconds, a few ms of USB latency tilt
// the line by a few thousand ppm at most.
const FitJudgeSpan = 2 * time.Second

// FitFailure is one failed clock fit: the drift the least-squares line
// found, over how much device time, after how many observations.
type FitFailure struct {
	DriftPPM float64
	Span     time.Duration
	Points   int
}

// String says what failed and what happens instead, for a report's
// warnings.
func (e FitFailure) String() string {
	return fmt.Sprintf("clock fit failed: the device's timestamps ran %+.0f ppm against the host clock over %v of device time (%d observations), "+
		"beyond the ±%d ppm any oscillator drifts, so they are not a clock; samples from then on are placed by the host clock (when their bytes arrived)",
		e.DriftPPM, e.Span.Round(time.Millisecond), e.Points, MaxDriftPPM)
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
	if f.failed {
		f.hostY = y
		return
	}
	if len(f.xs) < minRobustBins {
		f.a = f.envelope()
	}
}

// envelope is the offset of a line of the prior slope through the least
// delayed observation so far. Until there are minRobustBins bins the
// slope is not fitted (the prior is zero, or the drift kept across a
// Reset: within 100 ppm a crystal moves 80 µs in 800 ms) and the line
// goes there: latency is never negative, so the least delayed point is
// the best there is, where a mean of few bins is as late as the host was
// (a host that did not read for the first 150 ms put every sample of the
// start 150 ms late).
func (f *ClockFitter) envelope() float64 {
	a := math.Inf(1)
	for i := range f.xs {
		a = min(a, f.ys[i]-f.b*f.xs[i])
	}
	if f.binHas {
		a = min(a, f.binY-f.b*f.binX)
	}
	return a
}

func (f *ClockFitter) push(x, y float64) {
	if f.failed {
		return
	}
	f.xs = append(f.xs, x)
	f.ys = append(f.ys, y)
	if len(f.xs) > f.window {
		f.xs = f.xs[1:]
		f.ys = f.ys[1:]
	}
	f.refit()
}

// refit fits y = a + b*x; with fewer than minRobustBins bins only the
// offset moves (envelope).
//
// A bin none of whose chunks was read promptly (the host did not read for
// a while and every chunk of that stretch waited in the kernel's buffers,
// or the device's frames came late in a burst) has its minimum above the
// line by that wait. Latency is never negative, so the clock lies under
// every bin: the line is fitted by least squares through the bins within
// lateBy of an edge of their lower convex hull (lowerLine), and the
// others are left out as late, however many they are. Least squares through every bin let one bin 100 ms late near the
// end of a 3 s fit tilt it by some 10,000 ppm; dropping only those far
// above a least-squares line still failed where the late bins were a
// third of them.
func (f *ClockFitter) refit() {
	n := len(f.xs)
	f.keep = f.keep[:0]
	for range n {
		f.keep = append(f.keep, true)
	}
	if n < minRobustBins {
		f.a = f.envelope()
		return
	}
	ha, hb := f.lowerLine()
	// The band above the line a bin may lie in: four times the median
	// height of those within lateBy, within [lateMin, lateBy]. Where the
	// bins' minima are steady (a quiet host) it is narrow, and a bin a
	// millisecond late at the end of a stretch of late ones does not tilt
	// the line.
	f.heights = f.heights[:0]
	for i := range f.xs {
		if r := f.ys[i] - (ha + hb*f.xs[i]); r <= float64(lateBy) {
			f.heights = append(f.heights, r)
		}
	}
	slices.Sort(f.heights)
	band := min(max(4*f.heights[len(f.heights)/2], float64(lateMin)), float64(lateBy))
	for i := range f.xs {
		f.keep[i] = f.ys[i]-(ha+hb*f.xs[i]) <= band
	}
	a, b := f.lsq()
	f.b = b
	const bound = MaxDriftPPM * 1e-6
	if math.Abs(f.b) > bound {
		if span := f.xs[len(f.xs)-1] - f.xs[0]; span >= float64(FitJudgeSpan) {
			f.fail(span)
			return
		}
		f.b = math.Copysign(bound, f.b)
		a = f.meanY() - f.b*f.meanX()
	}
	f.a = a
}

// minRobustBins is how many bins there must be before a slope is fitted
// and any bin judged late: with fewer, the line is too loose to judge by.
const minRobustBins = 8

// lateBy is how far above the lower hull a bin may lie and still be
// taken as read promptly: ordinary USB and scheduling latency vary a
// bin's minimum by well under a millisecond on an idle host and by a few
// on a busy one.
const lateBy = 2 * time.Millisecond

// lateMin is the narrowest band above the lower hull that a bin may lie
// in and count as read promptly (see refit).
const lateMin = 250 * time.Microsecond

// lowerLine is the line under the bins that the most of them lie just
// above (within lateBy): the edge of their lower convex hull, among those
// of a drift any oscillator can have, with the most bins along it (of
// two, the flatter). Bins read promptly lie along the clock's line and
// the late ones above it; late bins can outnumber the prompt ones at a
// time (a device late from the start and catching up over a second), and
// then an edge picked by where it lies (over the bins' mean, say) ran
// along them. Where no edge has a possible drift, it is the edge over the
// bins' mean device time, for refit to judge.
func (f *ClockFitter) lowerLine() (a, b float64) {
	h := f.hull[:0]
	for i := range f.xs {
		for len(h) >= 2 {
			o, p := h[len(h)-2], h[len(h)-1]
			if (f.xs[p]-f.xs[o])*(f.ys[i]-f.ys[o])-(f.ys[p]-f.ys[o])*(f.xs[i]-f.xs[o]) > 0 {
				break
			}
			h = h[:len(h)-1]
		}
		h = append(h, i)
	}
	f.hull = h
	const bound = MaxDriftPPM * 1e-6
	best := 0
	for k := 0; k+1 < len(h); k++ {
		i, j := h[k], h[k+1]
		eb := (f.ys[j] - f.ys[i]) / (f.xs[j] - f.xs[i])
		if math.Abs(eb) > bound {
			continue
		}
		ea := f.ys[i] - eb*f.xs[i]
		along := 0
		for m := range f.xs {
			if f.ys[m]-(ea+eb*f.xs[m]) <= float64(lateBy) {
				along++
			}
		}
		if along > best || (along == best && math.Abs(eb) < math.Abs(b)) {
			a, b, best = ea, eb, along
		}
	}
	if best > 0 {
		return a, b
	}
	var mx float64
	for _, x := range f.xs {
		mx += x
	}
	mx /= float64(len(f.xs))
	for k := 0; k+1 < len(h); k++ {
		i, j := h[k], h[k+1]
		if f.xs[j] >= mx || k+2 == len(h) {
			b = (f.ys[j] - f.ys[i]) / (f.xs[j] - f.xs[i])
			return f.ys[i] - b*f.xs[i], b
		}
	}
	return f.ys[0], f.b
}

// lsq fits a line by least squares through the kept bins.
func (f *ClockFitter) lsq() (a, b float64) {
	mx, my := f.meanX(), f.meanY()
	var sxx, sxy float64
	for i := range f.xs {
		if !f.keep[i] {
			continue
		}
		dx := f.xs[i] - mx
		sxx += dx * dx
		sxy += dx * (f.ys[i] - my)
	}
	b = f.b
	if sxx > 0 {
		b = sxy / sxx
	}
	return my - b*mx, b
}

func (f *ClockFitter) meanX() float64 { return f.keptMean(f.xs) }
func (f *ClockFitter) meanY() float64 { return f.keptMean(f.ys) }

func (f *ClockFitter) keptMean(v []float64) float64 {
	var s, n float64
	for i := range v {
		if f.keep[i] {
			s += v[i]
			n++
		}
	}
	return s / n
}

// fail gives up the fit after a slope beyond the bound over span device ns.
func (f *ClockFitter) fail(span float64) {
	f.failures = append(f.failures, FitFailure{DriftPPM: f.b * 1e6, Span: time.Duration(span), Points: f.points})
	f.failed, f.b = true, 0
	f.hostY = f.binY
	f.xs, f.ys = f.xs[:0], f.ys[:0]
}

// Failed reports whether the fit failed (since the last Reset) and Map
// follows the host clock.
func (f *ClockFitter) Failed() bool { return f.failed }

// Failures lists every failure since the fitter was made.
func (f *ClockFitter) Failures() []FitFailure { return f.failures }

// Ready reports whether at least one observation was added.
func (f *ClockFitter) Ready() bool { return f.started }

// Map returns the host time of device time devNs under the current fit.
func (f *ClockFitter) Map(devNs int64) time.Time {
	x := float64(devNs - f.devBase)
	if f.failed {
		return f.base.Add(time.Duration(x + f.hostY))
	}
	return f.base.Add(time.Duration(x + f.a + f.b*x))
}

// Reset forgets the device clock's origin (the device restarted or was
// reconnected, so its counter started again) but keeps the drift as a
// prior for the new fit.
func (f *ClockFitter) Reset() {
	b, bin, window, points, failures := f.b, f.bin, f.window, f.points, f.failures
	*f = ClockFitter{bin: bin, window: window, b: b, points: points, failures: failures}
}

// Fit reports the current line and how well the bin minima fit it.
// OffsetNs is in Unix nanoseconds for a device time of zero.
func (f *ClockFitter) Fit() meters.ClockFit {
	cf := meters.ClockFit{DriftPPM: f.b * 1e6, Points: f.points}
	if !f.started {
		return cf
	}
	if f.failed {
		cf.OffsetNs = float64(f.base.UnixNano()) + f.hostY - float64(f.devBase)
		return cf
	}
	// host = base + x*(1+b) + a, x = dev - devBase
	cf.OffsetNs = float64(f.base.UnixNano()) + f.a - float64(f.devBase)*(1+f.b)
	var ss float64
	kept := 0
	for i := range f.xs {
		if i < len(f.keep) && !f.keep[i] {
			continue // a late bin: latency, not the clock
		}
		r := f.ys[i] - (f.a + f.b*f.xs[i])
		ss += r * r
		cf.ResidualMaxNs = math.Max(cf.ResidualMaxNs, math.Abs(r))
		kept++
	}
	if kept > 0 {
		cf.ResidualRMSNs = math.Sqrt(ss / float64(kept))
	}
	return cf
}
