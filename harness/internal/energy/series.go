package energy

import (
	"math"
	"slices"
	"sort"

	"github.com/academemes/harness/harness/internal/runstore"
)

// Sources of a meter's energy.
const (
	SourceCounter = "counter" // the device's cumulative joules, as given
	SourcePower   = "power"   // watts integrated with the trapezoid rule
)

// channel is one channel's cumulative energy: cum[i] joules at t[i] (Unix
// ns), strictly increasing t. Only differences of cum mean anything.
type channel struct {
	index  int
	t      []int64
	cum    []float64
	source string
	// medianDt is the median sampling interval in ns; gapNs is the spacing
	// above which two samples are taken to have a hole between them.
	medianDt int64
	gapNs    int64
	// decreases counts counter values that went down (a reset the meter
	// did not undo).
	decreases int
}

// meterSeries is one meter's channels that count toward its total.
type meterSeries struct {
	meta     runstore.MeterMeta
	channels []*channel
	// ref is the channel whose sample times make the grid for attribution
	// and for the power-over-time plot.
	ref *channel
}

// buildChannel turns one channel's samples (in time order) into a
// cumulative series. Counters are preferred where the meter gives both.
func buildChannel(index int, ts []int64, watts, joules []float64) *channel {
	ch := &channel{index: index}
	hasJ := false
	for _, j := range joules {
		if !math.IsNaN(j) {
			hasJ = true
			break
		}
	}
	if hasJ {
		ch.source = SourceCounter
		ch.t = make([]int64, 0, len(ts))
		ch.cum = make([]float64, 0, len(ts))
		for i, j := range joules {
			if math.IsNaN(j) || (len(ch.t) > 0 && ts[i] <= ch.t[len(ch.t)-1]) {
				continue
			}
			if n := len(ch.cum); n > 0 && j < ch.cum[n-1] {
				ch.decreases++
			}
			ch.t = append(ch.t, ts[i])
			ch.cum = append(ch.cum, j)
		}
	} else {
		ch.source = SourcePower
		ch.t = make([]int64, 0, len(ts))
		ch.cum = make([]float64, 0, len(ts))
		var prevW float64
		for i, w := range watts {
			if math.IsNaN(w) || (len(ch.t) > 0 && ts[i] <= ch.t[len(ch.t)-1]) {
				continue
			}
			if n := len(ch.t); n == 0 {
				ch.cum = append(ch.cum, 0)
			} else {
				dt := float64(ts[i]-ch.t[n-1]) / 1e9
				ch.cum = append(ch.cum, ch.cum[n-1]+(prevW+w)/2*dt)
			}
			ch.t = append(ch.t, ts[i])
			prevW = w
		}
	}
	if len(ch.t) > 1 {
		d := make([]int64, len(ch.t)-1)
		for i := range d {
			d[i] = ch.t[i+1] - ch.t[i]
		}
		slices.Sort(d)
		ch.medianDt = d[len(d)/2]
		// A hole is a spacing well beyond the usual one: three times the
		// median tolerates jitter and a dropped sample or two.
		ch.gapNs = 3 * ch.medianDt
	}
	return ch
}

// at is the cumulative energy at t, interpolated linearly between samples
// and held flat beyond the first and last (coverage reports that case).
func (c *channel) at(t int64) float64 {
	n := len(c.t)
	if n == 0 {
		return 0
	}
	if t <= c.t[0] {
		return c.cum[0]
	}
	if t >= c.t[n-1] {
		return c.cum[n-1]
	}
	i := sort.Search(n, func(i int) bool { return c.t[i] > t }) // c.t[i-1] <= t < c.t[i]
	return interp(c.t[i-1], c.cum[i-1], c.t[i], c.cum[i], t)
}

func interp(t0 int64, y0 float64, t1 int64, y1 float64, t int64) float64 {
	if t1 == t0 {
		return y0
	}
	return y0 + (y1-y0)*float64(t-t0)/float64(t1-t0)
}

// coverage is the fraction of [a,b) that lies between two consecutive
// samples no further apart than the gap threshold.
func (c *channel) coverage(a, b int64) float64 {
	if b <= a || len(c.t) < 2 {
		return 0
	}
	i := sort.Search(len(c.t), func(i int) bool { return c.t[i] > a })
	if i > 0 {
		i--
	}
	var covered int64
	for ; i+1 < len(c.t) && c.t[i] < b; i++ {
		if c.t[i+1]-c.t[i] > c.gapNs {
			continue
		}
		lo, hi := max(c.t[i], a), min(c.t[i+1], b)
		if hi > lo {
			covered += hi - lo
		}
	}
	return float64(covered) / float64(b-a)
}

// energy is the meter's total energy in [a,b).
func (m *meterSeries) energy(a, b int64) float64 {
	var e float64
	for _, c := range m.channels {
		e += c.at(b) - c.at(a)
	}
	return e
}

// resolutionJ is the smallest energy the meter resolves over a window of
// d seconds, from the precision its driver declares: for each channel in
// its total, one step of the counter where the energy comes from a
// counter (a window's energy is a difference of two readings), and one
// step of its power readings held over the window where it comes from
// power (a change of mean power smaller than a step need not show at
// all: a steady 40.4 W reads 40 W on a 1 W meter for ever). 0 when the
// driver declares nothing.
func (m *meterSeries) resolutionJ(d float64) float64 {
	p := m.meta.Precision
	var r float64
	for _, c := range m.channels {
		if c.source == SourceCounter {
			r += p.EnergyStepJ
		} else {
			r += p.PowerStepW * d
		}
	}
	return r
}

// coverage is the lowest coverage of any of the meter's channels.
func (m *meterSeries) coverage(a, b int64) float64 {
	cov := math.Inf(1)
	for _, c := range m.channels {
		cov = math.Min(cov, c.coverage(a, b))
	}
	if math.IsInf(cov, 1) {
		return 0
	}
	return cov
}

// source is how the meter's energy was found: counter, power, or mixed.
func (m *meterSeries) source() string {
	s := ""
	for _, c := range m.channels {
		if s == "" {
			s = c.source
		} else if s != c.source {
			return "mixed"
		}
	}
	return s
}

// grid is the sample times of the reference channel inside (a,b), with a
// and b added: the intervals over which energy is attributed.
func (m *meterSeries) grid(a, b int64) []int64 {
	g := []int64{a}
	if m.ref != nil {
		t := m.ref.t
		i := sort.Search(len(t), func(i int) bool { return t[i] > a })
		for ; i < len(t) && t[i] < b; i++ {
			g = append(g, t[i])
		}
	}
	return append(g, b)
}

// buildMeters groups samples by meter and channel and makes each meter's
// series. Meters named in run.json keep that order; a meter found only in
// samples.csv is added after them, all its channels counted.
func buildMeters(meta []runstore.MeterMeta, samples []runstore.Sample) []*meterSeries {
	type key struct {
		meter   string
		channel int
	}
	type cols struct {
		t      []int64
		w, j   []float64
		sorted bool
	}
	byKey := map[key]*cols{}
	var order []key
	for _, s := range samples {
		k := key{s.Meter, s.Channel}
		c := byKey[k]
		if c == nil {
			c = &cols{sorted: true}
			byKey[k] = c
			order = append(order, k)
		}
		if n := len(c.t); n > 0 && s.TNs < c.t[n-1] {
			c.sorted = false
		}
		c.t = append(c.t, s.TNs)
		c.w = append(c.w, s.Watts)
		c.j = append(c.j, s.Joules)
	}
	metas := slices.Clone(meta)
	known := map[string]bool{}
	for _, m := range metas {
		known[m.Name] = true
	}
	for _, k := range order {
		if !known[k.meter] {
			known[k.meter] = true
			var mm runstore.MeterMeta
			mm.Name, mm.Label, mm.Kind = k.meter, k.meter, runstore.MeterMeasured
			metas = append(metas, mm)
		}
	}
	var out []*meterSeries
	for _, mm := range metas {
		ms := &meterSeries{meta: mm}
		if ms.meta.Label == "" {
			ms.meta.Label = label(mm)
		}
		var idx []int
		if len(mm.Channels) == 0 {
			for _, k := range order {
				if k.meter == mm.Name {
					idx = append(idx, k.channel)
				}
			}
			slices.Sort(idx)
		} else {
			for i, ch := range mm.Channels {
				if ch.InTotal {
					idx = append(idx, i)
				}
			}
		}
		for _, i := range idx {
			c := byKey[key{mm.Name, i}]
			if c == nil {
				continue
			}
			if !c.sorted {
				p := make([]int, len(c.t))
				for i := range p {
					p[i] = i
				}
				sort.SliceStable(p, func(a, b int) bool { return c.t[p[a]] < c.t[p[b]] })
				t, w, j := make([]int64, len(p)), make([]float64, len(p)), make([]float64, len(p))
				for n, i := range p {
					t[n], w[n], j[n] = c.t[i], c.w[i], c.j[i]
				}
				c.t, c.w, c.j = t, w, j
			}
			ch := buildChannel(i, c.t, c.w, c.j)
			ms.channels = append(ms.channels, ch)
			if ms.ref == nil || len(ch.t) > len(ms.ref.t) {
				ms.ref = ch
			}
		}
		out = append(out, ms)
	}
	return out
}
