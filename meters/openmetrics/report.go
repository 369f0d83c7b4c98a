package openmetrics

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/academemes/harness/meters"
	"github.com/academemes/harness/meters/internal/counter"
)

// stat is a running summary of one quantity.
type stat struct {
	n             int
	sum, min, max float64
}

func (s *stat) add(v float64) {
	if s.n == 0 || v < s.min {
		s.min = v
	}
	if s.n == 0 || v > s.max {
		s.max = v
	}
	s.n++
	s.sum += v
}

func (s *stat) summary() map[string]any {
	if s.n == 0 {
		return map[string]any{"n": 0}
	}
	return map[string]any{"n": s.n, "min": s.min, "mean": s.sum / float64(s.n), "max": s.max}
}

// report accumulates what Report returns. Callers hold Meter.mu.
type report struct {
	scrapes, failed, readings, empty int64
	rtt                              stat // ms
	gaps                             []meters.Gap
	sum                              counter.Sum
	matched                          map[string]bool
	changes                          []time.Time // readings at which the total moved
	first, last                      time.Time
}

// observe records a good reading at which the total is j; moved says it
// differs from the reading before.
func (r *report) observe(sc scraped, j float64, moved bool) {
	if r.readings == 0 {
		r.first = sc.t
	}
	r.readings++
	r.last = sc.t
	if len(sc.values) == 0 {
		r.empty++
	}
	if r.matched == nil {
		r.matched = map[string]bool{}
	}
	for k := range sc.values {
		r.matched[k] = true
	}
	if moved {
		r.changes = append(r.changes, sc.t)
	}
}

// updateInterval is the median time between readings at which the total
// moved: the exporter's own refresh where it is longer than the scrape
// interval. 0 with fewer than two changes.
func (r *report) updateInterval() time.Duration {
	if len(r.changes) < 2 {
		return 0
	}
	d := make([]time.Duration, 0, len(r.changes)-1)
	for i := 1; i < len(r.changes); i++ {
		d = append(d, r.changes[i].Sub(r.changes[i-1]))
	}
	slices.Sort(d)
	return d[len(d)/2]
}

func (r *report) build(cfg Config) meters.Report {
	interval := time.Duration(float64(time.Second) / cfg.Rate)
	var series []string
	for k := range r.matched {
		series = append(series, k)
	}
	slices.Sort(series)
	rep := meters.Report{
		Gaps: slices.Clone(r.gaps),
		Counters: map[string]int64{
			"scrapes":           r.scrapes,
			"failed_scrapes":    r.failed,
			"readings":          r.readings,
			"readings_no_match": r.empty,
			"series":            int64(r.sum.Series),
			"resets":            int64(r.sum.Resets),
			"wraps":             int64(r.sum.Wraps),
			"invalid_values":    int64(r.sum.Invalid),
		},
		Details: map[string]any{
			"url":            cfg.URL.String(),
			"metric":         cfg.Metric,
			"labels":         cfg.Labels,
			"unit_j":         cfg.UnitJ,
			"unit_from":      cfg.UnitFrom,
			"wrap":           cfg.Wrap,
			"interval_s":     interval.Seconds(),
			"rtt_ms":         r.rtt.summary(),
			"series_matched": series,
			"joules_basis":   "counter increases per series (resets, or wraps at wrap=, undone), summed; stamped at the midpoint of each scrape's request",
		},
	}
	if u := r.updateInterval(); u > 0 {
		rep.Details["counter_moved_every_s"] = u.Seconds()
		if float64(u) > 1.5*float64(interval) {
			rep.Warnings = append(rep.Warnings, fmt.Sprintf("the exporter's counter moved only every %v (median) although scraped every %v: it refreshes on its own schedule, so energy is resolved to %v, not to the scrape interval", u.Round(time.Millisecond), interval, u.Round(time.Millisecond)))
		}
	}
	if r.readings > 0 && len(series) == 0 {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("no series of %s had the labels %s in any of %d readings: the energy recorded is 0, not a measurement", cfg.Metric, labelText(cfg.Labels), r.readings))
	}
	if r.sum.Resets > 0 {
		w := fmt.Sprintf("%s went down %d times and was taken as reset to 0 each time (an exporter restart)", cfg.Metric, r.sum.Resets)
		if cfg.Wrap == 0 && (strings.HasPrefix(cfg.Metric, "node_rapl_") || strings.HasPrefix(cfg.Metric, "scaph_")) {
			w += "; this counter is RAPL's passed on as it is, which wraps: give wrap= the zone's max_energy_range_uj in the metric's unit, or energy up to a wrap is lost"
		}
		rep.Warnings = append(rep.Warnings, w)
	}
	if r.sum.Invalid > 0 {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("%d values of %s were NaN, infinite or negative and were skipped", r.sum.Invalid, cfg.Metric))
	}
	if r.readings > 1 {
		rep.Details["mean_power_w"] = r.sum.Joules() / r.last.Sub(r.first).Seconds()
	}
	return rep
}
