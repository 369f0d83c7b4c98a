package energy

import (
	"slices"
	"sort"
)

// span is one request's time in flight, [s, e) in ns.
type span struct{ s, e int64 }

// attribution is the result of sharing a window's dynamic energy among
// the requests in flight.
type attribution struct {
	// perRequest[i] is the dynamic energy attributed to spans[i] (only the
	// part of the request inside the window), its share of unattributed
	// included; the values add up to the window's dynamic energy.
	perRequest []float64
	// attributed + unattributed = dynamic energy of the window.
	attributed   float64
	unattributed float64
}

// attribute shares the dynamic energy of each grid interval of [a,b)
// (interval energy minus idle power × its length) among the requests in
// flight, in proportion to each one's overlap with the interval. Energy of
// an interval with no request in flight (work a request leaves behind, such
// as a container's removal or a collector, and noise) is unattributed: it
// is spread over all the window's requests by their time in flight, so
// that no dynamic energy is lost from the per-request figures.
//
// It runs in O((R + G) log R) for R requests and G grid points: the
// request-seconds in flight up to any time come from prefix sums over the
// sorted clipped starts and ends, and each request's share is the
// difference of one piecewise-linear cumulative function at its ends.
func attribute(grid []int64, energyAt func(int64) float64, idleW float64, spans []span) attribution {
	a, b := grid[0], grid[len(grid)-1]
	starts := make([]int64, 0, len(spans))
	ends := make([]int64, 0, len(spans))
	for _, sp := range spans {
		s, e := max(sp.s, a), min(sp.e, b)
		if e > s {
			starts = append(starts, s)
			ends = append(ends, e)
		}
	}
	slices.Sort(starts)
	slices.Sort(ends)
	// inflight(t) = ∫_a^t n(u) du = Σ_{s<t}(t-s) - Σ_{e<t}(t-e), evaluated
	// at increasing t with moving pointers.
	var si, ei int
	var sumS, sumE float64 // sums of (s-a) and (e-a) seconds passed
	inflight := func(t int64) float64 {
		for si < len(starts) && starts[si] < t {
			sumS += float64(starts[si]-a) / 1e9
			si++
		}
		for ei < len(ends) && ends[ei] < t {
			sumE += float64(ends[ei]-a) / 1e9
			ei++
		}
		x := float64(t-a) / 1e9
		return (float64(si)*x - sumS) - (float64(ei)*x - sumE)
	}
	// q[i] is dynamic joules per request-second in interval i; Q[i] the
	// cumulative per-request energy at grid[i].
	Q := make([]float64, len(grid))
	q := make([]float64, len(grid)-1)
	var res attribution
	prevE := energyAt(grid[0])
	prevN := inflight(grid[0])
	for i := 0; i+1 < len(grid); i++ {
		e := energyAt(grid[i+1])
		n := inflight(grid[i+1])
		dt := float64(grid[i+1]-grid[i]) / 1e9
		dyn := (e - prevE) - idleW*dt
		if s := n - prevN; s > 1e-15 {
			q[i] = dyn / s
			res.attributed += dyn
		} else {
			res.unattributed += dyn
		}
		Q[i+1] = Q[i] + q[i]*dt
		prevE, prevN = e, n
	}
	cum := func(t int64) float64 {
		i := sort.Search(len(grid), func(i int) bool { return grid[i] > t }) - 1
		if i < 0 {
			return 0
		}
		if i >= len(grid)-1 {
			return Q[len(grid)-1]
		}
		return Q[i] + q[i]*float64(t-grid[i])/1e9
	}
	res.perRequest = make([]float64, len(spans))
	var flight float64 // request-ns in flight inside the window
	for k, sp := range spans {
		s, e := max(sp.s, a), min(sp.e, b)
		if e > s {
			res.perRequest[k] = cum(e) - cum(s)
			flight += float64(e - s)
		}
	}
	if flight > 0 && res.unattributed != 0 {
		for k, sp := range spans {
			if s, e := max(sp.s, a), min(sp.e, b); e > s {
				res.perRequest[k] += res.unattributed * float64(e-s) / flight
			}
		}
	}
	return res
}
