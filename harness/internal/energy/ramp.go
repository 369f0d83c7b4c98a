package energy

import (
	"slices"
	"sort"
)

// ramp counts requests by overlap: each request adds the fraction of its
// time in flight that lies inside a window.
type ramp struct {
	s, e       []float64 // sorted starts and ends, seconds from origin
	ws, we     []float64 // weights 1/latency in the same orders
	pws, pwe   []float64 // prefix sums of weights
	pwss, pwee []float64 // prefix sums of weight × time
	origin     int64
}

func newRamp(spans []span) *ramp {
	r := &ramp{}
	if len(spans) == 0 {
		return r
	}
	r.origin = spans[0].s
	type tw struct{ t, w float64 }
	ss := make([]tw, len(spans))
	es := make([]tw, len(spans))
	for i, sp := range spans {
		w := 1 / (float64(sp.e-sp.s) / 1e9)
		ss[i] = tw{float64(sp.s-r.origin) / 1e9, w}
		es[i] = tw{float64(sp.e-r.origin) / 1e9, w}
	}
	cmp := func(a, b tw) int {
		switch {
		case a.t < b.t:
			return -1
		case a.t > b.t:
			return 1
		}
		return 0
	}
	slices.SortFunc(ss, cmp)
	slices.SortFunc(es, cmp)
	prefix := func(xs []tw) (t, pw, pwt []float64) {
		t = make([]float64, len(xs))
		pw = make([]float64, len(xs)+1)
		pwt = make([]float64, len(xs)+1)
		for i, x := range xs {
			t[i] = x.t
			pw[i+1] = pw[i] + x.w
			pwt[i+1] = pwt[i] + x.w*x.t
		}
		return
	}
	r.s, r.pws, r.pwss = prefix(ss)
	r.e, r.pwe, r.pwee = prefix(es)
	return r
}

// f is Σ over requests of the fraction of each one's span before t.
func (r *ramp) f(t int64) float64 {
	if len(r.s) == 0 {
		return 0
	}
	x := float64(t-r.origin) / 1e9
	i := sort.SearchFloat64s(r.s, x) // starts < x
	j := sort.SearchFloat64s(r.e, x)
	return (x*r.pws[i] - r.pwss[i]) - (x*r.pwe[j] - r.pwee[j])
}

// count is the requests in [s,e), counted by overlap.
func (r *ramp) count(s, e int64) float64 { return r.f(e) - r.f(s) }
