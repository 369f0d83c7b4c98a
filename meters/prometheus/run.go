package prometheus

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sort"
	"time"

	"github.com/prometheus/common/model"

	"github.com/academemes/harness/meters"
	"github.com/academemes/harness/meters/internal/counter"
)

// deduper keeps, of the points a range query returns, one per scrape: a
// plain selector's steps repeat a scrape's stamp until the next scrape,
// and an expression's steps repeat its value.
type deduper struct {
	series map[string]*seen
	// diffs are the times between successive scrapes kept, for the
	// scrape interval.
	diffs []time.Duration
}

type seen struct {
	ts     model.Time
	v      float64
	stepTS bool
	// seed: the series' first point, an expression's value at a step,
	// whose scrape happened at some unknown time before: its value is
	// the reference for the next change, its time is no sample's.
	seed bool
}

// add reports whether p shows a scrape not seen before: for a point with
// the scrape's own stamp, a later stamp; for one stamped with its step (an
// expression), a new value, placed at the first step that shows it.
func (d *deduper) add(p point) bool {
	if d.series == nil {
		d.series = map[string]*seen{}
	}
	s, ok := d.series[p.key]
	if !ok {
		d.series[p.key] = &seen{ts: p.ts, v: p.v, stepTS: p.stepTS, seed: p.stepTS}
		return !p.stepTS
	}
	if p.ts <= s.ts || (p.stepTS && p.v == s.v) {
		return false
	}
	if s.stepTS == p.stepTS && !s.seed {
		d.diffs = append(d.diffs, p.ts.Sub(s.ts))
	}
	*s = seen{ts: p.ts, v: p.v, stepTS: p.stepTS}
	return true
}

// state is what a run gathers for its report. The Meter's mu guards it.
type state struct {
	offsets []offsetSample
	// used are the exchanges the mapping took, in turn; their spread
	// around the last is the clock fit's residual.
	used      []offsetSample
	exchanges int
	intervals []time.Duration

	sum                               counter.Sum
	polls, failedPolls, kept, emitted int64
	late, scrapeStamps, stepStamps    int64
	serverWarnings                    []string
	lastErr                           string
	steps                             []time.Duration // steps used, distinct
	series                            map[string]bool
	first, last                       time.Time
	grace, finalWait                  time.Duration
	uncovered                         time.Duration // from the last scrape read back to the stop, when short
	finalComplete, finalRan           bool
}

func (st *state) init() { st.series = map[string]bool{} }

// maxIntervals bounds the scrape spacings kept for the median.
const maxIntervals = 1000

func (st *state) addIntervals(d []time.Duration) {
	st.intervals = append(st.intervals, d...)
	if n := len(st.intervals); n > maxIntervals {
		st.intervals = st.intervals[n-maxIntervals:]
	}
}

// interval is the median spacing of scrapes seen; 0 with fewer than
// three.
func (st *state) interval() time.Duration {
	if len(st.intervals) < 3 {
		return 0
	}
	d := slices.Clone(st.intervals)
	slices.Sort(d)
	return d[len(d)/2]
}

// run is one Run's moving parts.
type run struct {
	m      *Meter
	emit   func(meters.Sample)
	dd     deduper
	cursor model.Time // next step to evaluate, server time
	lastT  time.Time  // last sample emitted
	lastJ  float64
	any    bool
}

// Run polls the server every poll= for the span since the last poll (up
// to ingestLag before the server's now) and emits what it finds; when ctx
// is done it waits for the scrapes that straddle the stop (grace=) and
// fetches them. The first step is two scrape intervals before the run's
// start, so that the baseline (Joules 0) is a scrape before the start: a
// plain selector shows it with its own stamp; an expression's first value
// only serves to spot its next change, the first scrape it can place.
// A poll that fails is retried at the next one from where the last good
// one ended: the server keeps the data. Run returns an error only when the
// end of the run could not be read back.
func (m *Meter) Run(ctx context.Context, emit func(meters.Sample)) error {
	r := &run{m: m, emit: emit}
	m.mu.Lock()
	m.st.sum = counter.Sum{Wrap: m.cfg.Wrap, Scale: m.cfg.UnitJ}
	m.mu.Unlock()
	r.cursor = m.serverTime(m.env.Clock().Add(-2 * m.interval()))
	tick := time.NewTicker(m.cfg.Poll)
	defer tick.Stop()
	for {
		// The first poll comes at once: it finds the scrapes before the
		// start, so the baseline is there from the beginning.
		err := r.poll(ctx, m.env.Clock().Add(-ingestLag))
		if ctx.Err() != nil {
			return r.final()
		}
		r.count(err)
		select {
		case <-ctx.Done():
			return r.final()
		case <-tick.C:
		}
	}
}

// count records a poll's outcome.
func (r *run) count(err error) {
	m := r.m
	m.mu.Lock()
	defer m.mu.Unlock()
	m.st.polls++
	if err != nil {
		m.st.failedPolls++
		if m.st.lastErr != err.Error() {
			m.env.Logf("prometheus: %v; the next poll tries again", err)
		}
		m.st.lastErr = err.Error()
	}
}

// poll measures the clock and fetches every step from the cursor up to
// the harness time upTo.
func (r *run) poll(ctx context.Context, upTo time.Time) error {
	m := r.m
	if err := m.measureClock(ctx); err != nil {
		return err
	}
	step := m.step()
	m.mu.Lock()
	if !slices.Contains(m.st.steps, step) {
		m.st.steps = append(m.st.steps, step)
	}
	m.mu.Unlock()
	end := m.serverTime(upTo)
	for r.cursor <= end {
		pts, last, err := m.fetchRange(ctx, r.cursor, end, step)
		if err != nil {
			return err
		}
		r.take(pts)
		r.cursor = last.Add(step)
	}
	return nil
}

// take keeps the new scrapes among pts and emits them in time order, the
// series at one stamp together.
func (r *run) take(pts []point) {
	m := r.m
	var kept []point
	for _, p := range pts {
		if r.dd.add(p) {
			kept = append(kept, p)
		}
	}
	sort.SliceStable(kept, func(i, j int) bool { return kept[i].ts < kept[j].ts })
	var out []meters.Sample
	defer func() {
		// Outside the lock: emit may take its time.
		for _, s := range out {
			r.emit(s)
		}
	}()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.st.addIntervals(r.dd.diffs)
	r.dd.diffs = r.dd.diffs[:0]
	for i := 0; i < len(kept); {
		ts := kept[i].ts
		var j float64
		for ; i < len(kept) && kept[i].ts == ts; i++ {
			p := kept[i]
			j = m.st.sum.Add(p.key, p.v)
			m.st.kept++
			m.st.series[p.key] = true
			if p.stepTS {
				m.st.stepStamps++
			} else {
				m.st.scrapeStamps++
			}
		}
		t := ts.Time().Add(m.st.offset().offset)
		w := meters.NaN
		switch {
		case !r.any:
			m.st.first = t
		case !t.After(r.lastT):
			// A scrape stored after a later one of another series
			// was already sent: keep its energy, a moment after.
			m.st.late++
			t = r.lastT.Add(time.Microsecond)
		default:
			w = (j - r.lastJ) / t.Sub(r.lastT).Seconds()
		}
		out = append(out, meters.Sample{Channel: 0, T: t, Watts: w, Joules: j})
		m.st.emitted++
		m.st.last = t
		r.any, r.lastT, r.lastJ = true, t, j
	}
}

// final reads back the end of the run: it waits up to grace for a scrape
// of every series that was being scraped to land after the stop, polling
// every 250 ms.
func (r *run) final() error {
	m := r.m
	stop := m.env.Clock()
	iv := m.interval()
	grace := m.cfg.Grace
	if grace == 0 {
		grace = time.Second + ingestLag
		if iv > 0 {
			grace += 2 * iv
		}
		grace = min(grace, 2*time.Minute)
	}
	deadline := stop.Add(grace)
	ctx, cancel := context.WithTimeout(context.Background(), grace+m.cfg.Timeout)
	defer cancel()
	var err error
	complete := false
	for {
		wait := min(250*time.Millisecond, max(0, deadline.Sub(m.env.Clock())))
		time.Sleep(wait)
		now := m.env.Clock()
		err = r.poll(ctx, now.Add(-ingestLag))
		r.count(err)
		if err == nil && r.complete(stop, iv) {
			complete = true
			break
		}
		if !now.Before(deadline) {
			break
		}
	}
	m.mu.Lock()
	m.st.grace, m.st.finalWait, m.st.finalComplete, m.st.finalRan = grace, m.env.Clock().Sub(stop), complete, true
	if r.any && r.lastT.Before(stop) {
		m.st.uncovered = stop.Sub(r.lastT)
	}
	m.mu.Unlock()
	if err != nil {
		return fmt.Errorf("prometheus %s: could not read back the end of the run within %v: %w", m.cfg.URL, grace, err)
	}
	return nil
}

// complete reports whether the data read cover the stop: every series
// with a scrape in the last three intervals before it has one at or after
// it, or the steps evaluated reach an interval past it (an expression, or
// series that stopped being scraped).
func (r *run) complete(stop time.Time, iv time.Duration) bool {
	m := r.m
	st := m.serverTime(stop)
	evaluated := r.cursor.Add(-time.Nanosecond)
	if iv > 0 && evaluated >= st.Add(iv) {
		return true
	}
	if evaluated < st {
		return false
	}
	recent := 0
	for _, s := range r.dd.series {
		if s.stepTS || (iv > 0 && s.ts < st.Add(-3*iv)) {
			continue
		}
		if s.ts < st {
			return false
		}
		recent++
	}
	return recent > 0
}

// Report implements meters.Reporter.
func (m *Meter) Report() meters.Report {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := &m.st
	iv := st.interval()
	var series []string
	for k := range st.series {
		series = append(series, k)
	}
	sort.Strings(series)
	if len(series) > 20 {
		series = append(series[:20], fmt.Sprintf("... %d more", len(series)-20))
	}
	rep := meters.Report{
		Counters: map[string]int64{
			"polls":           st.polls,
			"failed_polls":    st.failedPolls,
			"clock_exchanges": int64(st.exchanges),
			"scrapes":         st.kept,
			"samples":         st.emitted,
			"series":          int64(st.sum.Series),
			"resets":          int64(st.sum.Resets),
			"wraps":           int64(st.sum.Wraps),
			"invalid_values":  int64(st.sum.Invalid),
			"late_scrapes":    st.late,
		},
		Details: map[string]any{
			"url":          m.cfg.URL,
			"query":        m.cfg.Query,
			"unit_j":       m.cfg.UnitJ,
			"unit_from":    m.cfg.UnitFrom,
			"wrap":         m.cfg.Wrap,
			"poll_s":       m.cfg.Poll.Seconds(),
			"series":       series,
			"joules_basis": "counter increases per series (resets, or wraps at wrap=, undone), summed; one sample per scrape",
		},
	}
	var steps []float64
	for _, s := range st.steps {
		steps = append(steps, s.Seconds())
	}
	rep.Details["steps_s"] = steps
	if iv > 0 {
		rep.Details["scrape_interval_s"] = iv.Seconds()
	}
	switch {
	case st.scrapeStamps > 0 && st.stepStamps == 0:
		rep.Details["sample_times"] = "the scrapes' own stamps (timestamp() of the selector)"
	case st.stepStamps > 0 && st.scrapeStamps == 0:
		rep.Details["sample_times"] = "query steps (the query is an expression, not a plain selector)"
	case st.stepStamps > 0:
		rep.Details["sample_times"] = "mixed: scrape stamps, and query steps for series timestamp() could not match"
	}
	if len(st.offsets) > 0 {
		best := st.offset()
		var ss, mx float64
		for _, o := range st.used {
			d := float64(o.offset - best.offset)
			ss += d * d
			mx = math.Max(mx, math.Abs(d))
		}
		minRTT, maxRTT := st.offsets[0].rtt, st.offsets[0].rtt
		for _, o := range st.offsets {
			minRTT, maxRTT = min(minRTT, o.rtt), max(maxRTT, o.rtt)
		}
		rep.ClockFit = &meters.ClockFit{
			OffsetNs:      float64(best.offset),
			ResidualRMSNs: math.Sqrt(ss / float64(len(st.used))),
			ResidualMaxNs: mx,
			Points:        len(st.offsets),
		}
		rep.Details["clock"] = map[string]any{
			"method":       "time() queries: host = server + offset, offset = midpoint of the request on the harness clock minus the server's time; the shortest round trip of the last 8 is used; no drift is fitted; residuals: the offsets used in turn against the last",
			"offsets_used": len(st.used),
			"offset_ms":    float64(best.offset) / 1e6,
			"bound_ms":     float64(best.rtt/2+500*time.Microsecond) / 1e6,
			"rtt_ms":       map[string]float64{"min": float64(minRTT) / 1e6, "max": float64(maxRTT) / 1e6},
		}
	}
	if st.finalRan {
		rep.Details["final_wait_s"] = st.finalWait.Seconds()
		rep.Details["grace_s"] = st.grace.Seconds()
	}
	if len(st.serverWarnings) > 0 {
		rep.Details["server_warnings"] = st.serverWarnings
	}
	if iv > 0 {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("Prometheus holds one sample every %v (the scrape interval) for this query: energy between two scrapes is interpolated, so a phase edge is placed to within %v and a window of a few intervals or less, let alone one request, is not resolved; the scrape interval, not this meter, limits the time resolution", iv.Round(time.Millisecond), iv.Round(time.Millisecond)))
	}
	if st.stepStamps > 0 {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("%d of %d scrapes are placed at query steps (late by up to a step of %v), not at their own stamps: the query is not a plain selector; select the series and let the meter sum them", st.stepStamps, st.kept, time.Duration(slices.Max(append(st.steps, 0)))))
	}
	if st.finalRan && len(series) > 0 && !st.finalComplete {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("no scrape after the stop was read back within %v (grace=): the last %v before the stop are not covered", st.grace, st.uncovered.Round(time.Millisecond)))
	}
	if st.polls > 0 && len(series) == 0 {
		rep.Warnings = append(rep.Warnings, "the query matched no series during the run: the energy recorded is 0, not a measurement")
	}
	if st.sum.Resets > 0 {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("a counter went down %d times and was taken as reset to 0 each time (an exporter or container restart); if it wraps instead (RAPL passed on as it is), give wrap=", st.sum.Resets))
	}
	if st.late > 0 {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("%d scrapes were stored after later ones of other series had been read back; their energy was kept, a moment after", st.late))
	}
	if st.failedPolls > 0 {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("%d of %d polls failed (last: %s); the polls after them read the same span again", st.failedPolls, st.polls, st.lastErr))
	}
	return rep
}
