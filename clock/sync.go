package clock

import (
	"math"
	"slices"
	"time"
)

// Exchange is one NTP-style round trip between this clock (local) and a
// remote one: the local clock when the request left (T1) and when the
// answer came back (T4), and the remote clock, in its own nanoseconds,
// when the request arrived (T2) and when the answer left (T3).
//
// Whatever the network did, the remote clock read T2 at some moment
// between T1 and T4, so the offset local-remote at that moment lies within
// half the round trip of the exchange's midpoint offset. That hard
// interval is what Sync's bound is built on (RFC 5905, section 8).
type Exchange struct {
	Sent     time.Time // T1, local
	Received int64     // T2, remote ns
	Replied  int64     // T3, remote ns
	Returned time.Time // T4, local
}

// RoundTrip is the time the exchange spent on the way: (T4-T1)-(T3-T2).
func (e Exchange) RoundTrip() time.Duration {
	return e.Returned.Sub(e.Sent) - time.Duration(e.Replied-e.Received)
}

// offset is local minus remote at the exchange's midpoint, in ns:
// ((T1-T2) + (T4-T3)) / 2, computed in integers so that Unix-ns clocks
// keep their precision.
func (e Exchange) offset() float64 {
	return (float64(e.Sent.UnixNano()-e.Received) + float64(e.Returned.UnixNano()-e.Replied)) / 2
}

// valid reports whether the exchange can be used: time went forward on
// both sides and the remote did not take longer than the whole trip.
func (e Exchange) valid() bool {
	return !e.Returned.Before(e.Sent) && e.Replied >= e.Received && e.RoundTrip() >= 0
}

// MaxDriftPPM is the largest rate difference between two clocks that Sync
// assumes where its exchanges cannot say more: when it must extrapolate a
// single exchange. Quartz oscillators are specified to ±20-100 ppm; 500
// leaves room for a cheap board and temperature.
const MaxDriftPPM = 500.0

// MinDriftSpan is the shortest span of remote time over which Sync fits a
// drift. Over less, two exchanges' round trips say more about the network
// than about the clocks' rates (100 µs of jitter over 100 ms is 1000 ppm),
// so the drift stays 0 and only the offset is fitted.
const MinDriftSpan = time.Second

// Sync estimates a remote clock's offset and drift from exchanges and maps
// remote times onto the local clock, with a bound on the error of every
// time it mapped.
//
// Each burst of exchanges keeps only the one with the smallest round trip
// (the least delayed, as NTP's clock filter keeps); a straight line,
// local-remote = a + b*(remote-base), is fitted through the kept ones by
// least squares weighted by their round trips. Assuming the two clocks
// differ by a constant rate over the span, the line's error at a kept
// exchange is at most its residual plus half its round trip, and a straight
// line's error between two points is at most the larger of theirs; Bound
// turns that into a bound on the times Map returned, counting too how far
// the fit used at the time differs from the final one.
//
// The zero value is ready to use. Sync is not safe for concurrent use.
type Sync struct {
	pts    []syncPoint
	base   int64   // remote time of the first kept exchange: x origin
	a, b   float64 // local-remote = a + b*(x-base), ns
	epochs []epoch // the fits Map used, each with the remote times it mapped
}

// syncPoint is one kept exchange: remote midpoint x, offset y, half its
// round trip.
type syncPoint struct {
	x    int64
	y    float64
	half float64
}

// epoch is one fit as Map used it, and the span of remote times it mapped.
type epoch struct {
	a, b   float64
	lo, hi int64
	used   bool
}

// Add adds a burst of exchanges and keeps the one with the smallest round
// trip. It reports whether one was kept (none is when every exchange of
// the burst is inconsistent, or the burst is empty).
func (s *Sync) Add(burst ...Exchange) bool {
	best := -1
	for i, e := range burst {
		if e.valid() && (best < 0 || e.RoundTrip() < burst[best].RoundTrip()) {
			best = i
		}
	}
	if best < 0 {
		return false
	}
	e := burst[best]
	p := syncPoint{x: e.Received + (e.Replied-e.Received)/2, y: e.offset(), half: float64(e.RoundTrip()) / 2}
	if len(s.pts) == 0 {
		s.base = p.x
	}
	s.pts = append(s.pts, p)
	s.refit()
	return true
}

// Points is how many exchanges were kept.
func (s *Sync) Points() int { return len(s.pts) }

// Ready reports whether Map can map: one exchange was kept.
func (s *Sync) Ready() bool { return len(s.pts) > 0 }

// refit fits the line through the kept points; with less than
// MinDriftSpan between them only the offset is fitted. Weights are
// 1/half², so an exchange delayed ten times as long counts a hundredth.
func (s *Sync) refit() {
	var sw, sx, sy float64
	lo, hi := s.pts[0].x, s.pts[0].x
	for _, p := range s.pts {
		w := weight(p)
		x := float64(p.x - s.base)
		sw += w
		sx += w * x
		sy += w * p.y
		lo, hi = min(lo, p.x), max(hi, p.x)
	}
	mx, my := sx/sw, sy/sw
	b := 0.0
	if time.Duration(hi-lo) >= MinDriftSpan {
		var sxx, sxy float64
		for _, p := range s.pts {
			w := weight(p)
			dx := float64(p.x-s.base) - mx
			sxx += w * dx * dx
			sxy += w * dx * (p.y - my)
		}
		if sxx > 0 {
			b = sxy / sxx
		}
	}
	s.a, s.b = my-b*mx, b
	s.epochs = append(s.epochs, epoch{a: s.a, b: s.b})
}

func weight(p syncPoint) float64 {
	h := math.Max(p.half, 1000) // 1 µs: no exchange is that exact
	return 1 / (h * h)
}

// at is the fitted offset local-remote at remote time x.
func (s *Sync) at(a, b float64, x int64) float64 { return a + b*float64(x-s.base) }

// Map returns the local time of remote time remoteNs under the current
// fit, and remembers the fit it used for Bound. It is the zero time
// before any exchange was kept.
func (s *Sync) Map(remoteNs int64) time.Time {
	if len(s.pts) == 0 {
		return time.Time{}
	}
	ep := &s.epochs[len(s.epochs)-1]
	if !ep.used {
		ep.lo, ep.hi, ep.used = remoteNs, remoteNs, true
	} else {
		ep.lo, ep.hi = min(ep.lo, remoteNs), max(ep.hi, remoteNs)
	}
	return time.Unix(0, remoteNs+int64(math.Round(s.at(s.a, s.b, remoteNs))))
}

// Fit is a Sync's estimate: local = remote + OffsetNs +
// (remote-AtNs)*DriftPPM/1e6, in nanoseconds.
type Fit struct {
	// OffsetNs is local minus remote at remote time AtNs (the first kept
	// exchange).
	OffsetNs float64
	AtNs     int64
	// DriftPPM is how much faster the local clock runs than the remote
	// one, in parts per million: a remote clock running 200 ppm fast
	// gives about -200.
	DriftPPM float64
	// BoundNs bounds the error of every time Map returned (or, before
	// any, of the fit over the exchanges' span), given clocks whose rates
	// differ by a constant. DriftBoundPPM is what that bound allows of
	// the drift over the span.
	BoundNs       float64
	DriftBoundPPM float64
	// Points is the number of exchanges kept; RoundTripMin and
	// RoundTripMedian are their round trips.
	Points          int
	RoundTripMin    time.Duration
	RoundTripMedian time.Duration
	// SpanNs is the remote time from the first kept exchange to the last.
	SpanNs int64
	// ResidualRMSNs and ResidualMaxNs say how far the kept exchanges'
	// offsets lie from the line.
	ResidualRMSNs float64
	ResidualMaxNs float64
}

// Fit returns the current estimate and its bound.
func (s *Sync) Fit() Fit {
	f := Fit{Points: len(s.pts)}
	if len(s.pts) == 0 {
		return f
	}
	f.AtNs = s.base
	f.OffsetNs = s.a
	f.DriftPPM = s.b * 1e6
	rts := make([]float64, len(s.pts))
	lo, hi := s.pts[0].x, s.pts[0].x
	var ss float64
	for i, p := range s.pts {
		rts[i] = 2 * p.half
		lo, hi = min(lo, p.x), max(hi, p.x)
		r := math.Abs(s.at(s.a, s.b, p.x) - p.y)
		ss += r * r
		f.ResidualMaxNs = math.Max(f.ResidualMaxNs, r)
	}
	f.ResidualRMSNs = math.Sqrt(ss / float64(len(s.pts)))
	slices.Sort(rts)
	f.RoundTripMin = time.Duration(rts[0])
	f.RoundTripMedian = time.Duration(rts[len(rts)/2])
	f.SpanNs = hi - lo
	mapped := false
	for _, ep := range s.epochs {
		if !ep.used {
			continue
		}
		mapped = true
		over := s.boundOver(ep.lo, ep.hi)
		for _, x := range []int64{ep.lo, ep.hi} {
			f.BoundNs = math.Max(f.BoundNs, math.Abs(s.at(ep.a, ep.b, x)-s.at(s.a, s.b, x))+over)
		}
	}
	if !mapped {
		f.BoundNs = s.boundOver(lo, hi)
	}
	if f.SpanNs > 0 && time.Duration(f.SpanNs) >= MinDriftSpan {
		f.DriftBoundPPM = 2 * s.boundOver(lo, hi) / float64(f.SpanNs) * 1e6
	} else {
		f.DriftBoundPPM = MaxDriftPPM
	}
	return f
}

// boundOver bounds |fit - true| over the remote times [lo, hi]: the
// difference of two straight lines is largest at an end.
func (s *Sync) boundOver(lo, hi int64) float64 {
	return math.Max(s.boundAt(lo), s.boundAt(hi))
}

// boundAt bounds |fit - true| at remote time x. At a kept exchange the
// bound is its residual plus half its round trip (its error e); between
// two exchanges p <= x <= q, the larger of their e, the smallest such
// pair chosen. Beyond the last (or before the first) exchange the error
// grows with the distance, by the slope two exchanges allow or, with one,
// by the fit's drift plus MaxDriftPPM, whichever is less.
func (s *Sync) boundAt(x int64) float64 {
	left, right := math.Inf(1), math.Inf(1)
	var first, last *syncPoint
	for i := range s.pts {
		p := &s.pts[i]
		e := s.errAt(*p)
		if p.x <= x {
			left = math.Min(left, e)
		}
		if p.x >= x {
			right = math.Min(right, e)
		}
		if first == nil || p.x < first.x {
			first = p
		}
		if last == nil || p.x > last.x {
			last = p
		}
	}
	if !math.IsInf(left, 1) && !math.IsInf(right, 1) {
		return math.Max(left, right)
	}
	near, far := last, first // x is after every exchange
	if math.IsInf(left, 1) {
		near, far = first, last // x is before every exchange
	}
	dist := math.Abs(float64(x - near.x))
	bound := s.errAt(*near) + (math.Abs(s.b)+MaxDriftPPM/1e6)*dist
	if span := math.Abs(float64(near.x - far.x)); span > 0 {
		bound = math.Min(bound, s.errAt(*near)+(s.errAt(*near)+s.errAt(*far))*dist/span)
	}
	return bound
}

// errAt is the bound on |fit - true| at a kept exchange.
func (s *Sync) errAt(p syncPoint) float64 {
	return math.Abs(s.at(s.a, s.b, p.x)-p.y) + p.half
}
