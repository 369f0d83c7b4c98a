// Package prometheus is the meter driver that reads an energy counter back
// from a Prometheus server, the way a cluster user reads Kepler's per-pod
// or Scaphandre's per-host energy: range queries of the server's HTTP API,
// every few seconds during the run and once more after it.
//
// Spec:
//
//	prometheus:URL?query=PROMQL[&step=D][&poll=2s][&grace=D][&unit=J|mJ|uJ|nJ|Wh|kWh][&wrap=N][&kind=measured|model][&timeout=10s]
//
// URL is the server's base (http:// by default, a path prefix allowed).
// PROMQL selects one or more counter series, best a plain selector such as
// kepler_container_joules_total{pod_name="memes-1"}: each series is
// followed on its own (resets, or wraps at wrap=, undone; see
// meters/internal/counter) and their increases are summed into one channel,
// in the meter's total. Summing in PromQL (sum(...)) would turn one
// series' reset into a fall of the total; write the selector instead. A
// spec's options are split at "&" and ",", and "+" reads as a space, so
// write those in PROMQL as %26, %2C and %2B. The unit comes from the
// metric names in the query (_joules, _microjoules, ...) or unit=. A
// counter that splits a node's energy by CPU share (Kepler's per-pod and
// per-container ones) makes the meter a model, labelled so everywhere;
// kind= overrides the rule.
//
// # Time
//
// Prometheus stamps each sample with the moment its scrape began, in
// milliseconds of its own wall clock. For a plain selector the driver asks
// for timestamp(PROMQL) beside PROMQL, which gives those stamps, so every
// scrape comes back with its own time whatever the query step; for any
// other expression only the step times are known, and a scrape is placed
// at the first step that shows it (late by less than a step). The step is
// a tenth of the scrape interval found in the data (10 ms to 1 s; 100 ms
// until an interval is seen), or step=. Finer than the scrape interval the
// data say nothing: energy between two scrapes is interpolated, and the
// report says so with the interval found.
//
// Server time maps onto the harness clock by the offset that time()
// queries measure (NTP-style: the server's time against the midpoint of
// the request on the harness clock), taken again at every poll; the
// mapping uses the exchange with the shortest round trip of the last
// eight, and is good to half that round trip plus 0.5 ms. What it cannot
// see: the exporter reads its counters a little after the scrape began (an
// HTTP round trip and its collection time, milliseconds), and Kepler
// refreshes its counters on its own schedule, so its energy lags by up to
// that refresh.
package prometheus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/common/model"

	"github.com/academemes/harness/meters"
	"github.com/academemes/harness/meters/internal/counter"
	"github.com/academemes/harness/meters/openmetrics"
)

// Name is the driver's name.
const Name = "prometheus"

// Defaults and limits of the spec's options.
const (
	DefaultPoll    = 2 * time.Second
	DefaultTimeout = 10 * time.Second
	// MinStep and MaxStep bound the automatic step: Prometheus stamps to
	// the millisecond, and a step of a second is fine enough for the
	// scrape intervals clusters use (Kepler's default is 30 s... 3 s).
	MinStep = 10 * time.Millisecond
	MaxStep = time.Second
	// initialStep is the step until a scrape interval is seen.
	initialStep = 100 * time.Millisecond
	// maxPoints is the most steps one range query asks for: Prometheus
	// refuses more than 11,000 points per series.
	maxPoints = 10000
	// ingestLag is how far behind the server's now a poll stops: a
	// scrape's samples are stamped when it began but stored when it
	// ends, so the last moments may still be filling in.
	ingestLag = 500 * time.Millisecond
	// keepOffsets is how many clock exchanges the mapping chooses from.
	keepOffsets = 8
)

// Usage is the spec grammar in one line.
const Usage = "prometheus:URL?query=PROMQL[&step=D&poll=2s&grace=D&unit=J|mJ|uJ&wrap=N&kind=measured|model&timeout=10s]  an energy counter read back from a Prometheus server (range queries during and after the run); write , & + in PROMQL as %2C %26 %2B"

func init() {
	meters.Register(meters.Driver{
		Name:  Name,
		Usage: Usage,
		Open:  func(sp meters.Spec, env meters.Env) (meters.Meter, error) { return Open(context.Background(), sp, env) },
		Check: func(sp meters.Spec) error {
			_, err := ParseConfig(sp)
			return err
		},
		// A server is named, never guessed.
		Detect:   nil,
		AutoRank: 0,
	})
}

// Config is a parsed prometheus spec.
type Config struct {
	// URL is the server's base.
	URL   string
	Query string
	// Step is the range queries' step; 0: automatic.
	Step time.Duration
	Poll time.Duration
	// Grace is how long the final fetch waits for the scrapes that
	// straddle the stop; 0: two scrape intervals and a second.
	Grace time.Duration
	// UnitJ is the size of the counters' unit in joules; 0 until known
	// (Open then reads it from the series' names).
	UnitJ    float64
	UnitFrom string
	// Wrap is the counters' modulus in their own unit; 0: a fall is a
	// reset.
	Wrap    float64
	Timeout time.Duration
	// Kind is measured, or model when the query reads a counter that
	// splits a node's energy by CPU share (Kepler's per-pod counters):
	// kind=, else from the names in the query and in its series.
	Kind    meters.Kind
	kindSet bool // kind= was given
}

// metricName finds the names in a PromQL text once its string literals
// are taken out.
var (
	stringLit  = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`")
	metricName = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
)

// namesInQuery returns the names in a PromQL text outside its strings:
// metric names, and functions and keywords, which no rule here mistakes
// for a metric.
func namesInQuery(query string) []string {
	return metricName.FindAllString(stringLit.ReplaceAllString(query, `""`), -1)
}

// unitsInQuery returns the distinct units that the metric names in query
// say, by size in joules, with one name for each.
func unitsInQuery(query string) map[float64]string {
	out := map[float64]string{}
	for _, n := range namesInQuery(query) {
		if j, ok := counter.UnitFromName(n); ok {
			if _, seen := out[j]; !seen {
				out[j] = n
			}
		}
	}
	return out
}

// ParseConfig checks a spec and reports every problem at once. A unit
// that neither unit= nor a name in the query gives is left for Open, which
// sees the series' names.
func ParseConfig(sp meters.Spec) (Config, error) {
	c := Config{Poll: DefaultPoll, Timeout: DefaultTimeout}
	if err := sp.Unknown("query", "step", "poll", "grace", "unit", "wrap", "timeout", "kind"); err != nil {
		return c, err
	}
	var bad []string
	o := sp.Options
	u, err := openmetrics.ParseURL(sp.Arg, "")
	if err != nil {
		bad = append(bad, strings.Replace(err.Error(), "the exporter's address first, e.g. http://127.0.0.1:9100/metrics", "the server's base first, e.g. http://127.0.0.1:9090", 1))
	} else {
		u.RawQuery, u.Fragment = "", ""
		c.URL = u.String()
	}
	c.Query = strings.TrimSpace(o["query"])
	if c.Query == "" {
		bad = append(bad, `query= is required: the PromQL of the energy counter, e.g. query=kepler_container_joules_total{pod_name="memes-1"}`)
	}
	if v, ok := o["unit"]; ok {
		j, err := counter.ParseUnit(v)
		if err != nil {
			bad = append(bad, "unit="+v+": "+err.Error())
		}
		c.UnitJ, c.UnitFrom = j, "unit="
	} else if us := unitsInQuery(c.Query); len(us) == 1 {
		for j, n := range us {
			c.UnitJ, c.UnitFrom = j, "the name "+n
		}
	} else if len(us) > 1 {
		var names []string
		for _, n := range us {
			names = append(names, n)
		}
		sort.Strings(names)
		bad = append(bad, fmt.Sprintf("the query mixes energy units (%s): read one unit per meter, or give unit= for what the query returns", strings.Join(names, ", ")))
	}
	if v, ok := o["wrap"]; ok {
		w, err := strconv.ParseFloat(v, 64)
		if err != nil || !(w > 0) || math.IsInf(w, 0) {
			bad = append(bad, fmt.Sprintf("wrap=%s: want the counter's modulus, a positive number in its own unit", v))
		} else {
			c.Wrap = w
		}
	}
	durOpt := func(key string, dst *time.Duration, lo, hi time.Duration) {
		v, ok := o[key]
		if !ok {
			return
		}
		d, err := time.ParseDuration(v)
		if err != nil || d < lo || d > hi {
			bad = append(bad, fmt.Sprintf("%s=%s: want a duration from %v to %v", key, v, lo, hi))
			return
		}
		*dst = d
	}
	durOpt("step", &c.Step, time.Millisecond, time.Hour)
	durOpt("poll", &c.Poll, 100*time.Millisecond, time.Hour)
	durOpt("grace", &c.Grace, time.Millisecond, time.Hour)
	durOpt("timeout", &c.Timeout, 10*time.Millisecond, 10*time.Minute)
	def := meters.Measured
	for _, n := range namesInQuery(c.Query) {
		if counter.IsAttribution(n) {
			def = meters.Model
		}
	}
	c.Kind, err = openmetrics.ParseKind(o["kind"], def)
	if err != nil {
		bad = append(bad, err.Error())
	}
	_, c.kindSet = o["kind"]
	if len(bad) > 0 {
		return c, fmt.Errorf("%w %q: %s", meters.ErrSpec, sp.Raw, strings.Join(bad, "; "))
	}
	return c, nil
}

// Meter reads an energy counter back from a Prometheus server.
type Meter struct {
	cfg  Config
	env  meters.Env
	api  *api
	info meters.Info

	mu sync.Mutex
	st state
}

var (
	_ meters.Meter    = (*Meter)(nil)
	_ meters.Reporter = (*Meter)(nil)
)

// Open parses the spec, measures the server's clock, and evaluates the
// query once, so that an unreachable server, a query the server refuses
// or one that returns a range is reported before a run starts. A query
// that matches no series yet is accepted: the pod it names may start with
// the run.
func Open(ctx context.Context, sp meters.Spec, env meters.Env) (*Meter, error) {
	env = env.WithDefaults()
	cfg, err := ParseConfig(sp)
	if err != nil {
		return nil, err
	}
	base, _ := openmetrics.ParseURL(cfg.URL, "")
	m := &Meter{cfg: cfg, env: env, api: &api{base: base, client: &http.Client{Timeout: cfg.Timeout}}}
	m.st.init()
	for range 3 {
		if err := m.measureClock(ctx); err != nil {
			return nil, err
		}
	}
	r, _, err := m.api.instant(ctx, cfg.Query)
	if errors.Is(err, errQuery) {
		return nil, fmt.Errorf("%w %q: %w", meters.ErrSpec, sp.Raw, err)
	}
	if err != nil {
		return nil, err
	}
	switch r.ResultType {
	case "vector", "scalar":
	default:
		return nil, fmt.Errorf("%w %q: the query gives a %s; it must give an instant vector (a counter's current value: drop any [range] and rate())", meters.ErrSpec, sp.Raw, r.ResultType)
	}
	names, err := seriesNames(r)
	if err != nil {
		return nil, fmt.Errorf("prometheus %s: the query's answer: %w", cfg.URL, err)
	}
	if m.cfg.UnitJ == 0 {
		if err := m.unitFromSeries(sp, names); err != nil {
			return nil, err
		}
	}
	for _, n := range names {
		if !cfg.kindSet && counter.IsAttribution(n) {
			m.cfg.Kind = meters.Model
		}
	}
	m.probeInterval(ctx)
	desc := fmt.Sprintf("energy counter %s read back from Prometheus at %s (unit %s J from %s), polled every %v",
		cfg.Query, cfg.URL, strconv.FormatFloat(m.cfg.UnitJ, 'g', -1, 64), m.cfg.UnitFrom, cfg.Poll)
	if m.cfg.Kind == meters.Model {
		desc += "; an attribution model (the node's energy split by CPU share), not a measurement"
	}
	m.info = meters.Info{
		Name:        sp.Raw,
		Driver:      Name,
		Kind:        m.cfg.Kind,
		Description: desc,
		Channels:    []meters.Channel{{Name: cfg.Query, InTotal: true}},
		Precision:   m.precision(),
	}
	return m, nil
}

// seriesNames lists the __name__ of each series of an instant query's
// answer (none for a scalar, or where a function dropped the name).
func seriesNames(r result) ([]string, error) {
	if r.ResultType != "vector" {
		return nil, nil
	}
	var v model.Vector
	if err := json.Unmarshal(r.Result, &v); err != nil {
		return nil, err
	}
	var out []string
	for _, s := range v {
		if n := string(s.Metric[model.MetricNameLabel]); n != "" {
			out = append(out, n)
		}
	}
	return out, nil
}

// unitFromSeries takes the unit from the names of the series the query
// returns, when the query's text did not say it.
func (m *Meter) unitFromSeries(sp meters.Spec, names []string) error {
	us := map[float64]string{}
	for _, n := range names {
		if j, ok := counter.UnitFromName(n); ok {
			us[j] = n
		}
	}
	if len(us) != 1 {
		what := "returns no series whose name says it"
		if len(us) > 1 {
			what = "returns series of several energy units"
		}
		return fmt.Errorf("%w %q: cannot tell the counter's unit: no metric name in the query says it (_joules, _microjoules, ...) and the query %s; give unit=J, mJ, uJ, nJ, Wh or kWh", meters.ErrSpec, sp.Raw, what)
	}
	for j, n := range us {
		m.cfg.UnitJ, m.cfg.UnitFrom = j, "the series' name "+n
	}
	return nil
}

// probeInterval looks at the last half minute of the series for the
// scrape interval, so that the first step of the run is fitting. What it
// cannot see, the run will.
func (m *Meter) probeInterval(ctx context.Context) {
	end := m.serverTime(m.env.Clock()).Add(-ingestLag)
	start := end.Add(-30 * time.Second)
	step := initialStep
	if m.cfg.Step > 0 {
		step = max(m.cfg.Step, 30*time.Second/maxPoints)
	}
	pts, _, err := m.fetchRange(ctx, start, end, step)
	if err != nil {
		return
	}
	var d deduper
	for _, p := range pts {
		d.add(p)
	}
	m.mu.Lock()
	m.st.addIntervals(d.diffs)
	m.mu.Unlock()
}

// precision is what the meter resolves: the counters' step and accuracy
// are the exporter's, which Prometheus does not carry, so both stay "not
// stated"; the time resolution is the scrape interval.
func (m *Meter) precision() meters.Precision {
	src := "the exporter behind Prometheus states neither its counter's step nor its accuracy"
	if strings.Contains(m.cfg.Query, "kepler_") {
		src += " (Kepler's container and pod counters are a model: RAPL's energy split by CPU share)"
	}
	if iv := m.interval(); iv > 0 {
		src += fmt.Sprintf("; time resolution: the scrape interval, %v as seen at open", iv.Round(time.Millisecond))
	} else {
		src += "; time resolution: the scrape interval"
	}
	src += "; sample times: Prometheus's scrape stamps (ms) mapped by the server's clock offset, good to half a time() round trip plus 0.5 ms"
	return meters.Precision{Source: src}
}

// Info implements meters.Meter.
func (m *Meter) Info() meters.Info { return m.info }

// Config returns the parsed spec.
func (m *Meter) Config() Config { return m.cfg }

// offsetSample is one clock exchange: host = server + offset, within
// ±bound.
type offsetSample struct {
	offset, rtt time.Duration
}

// measureClock makes one clock exchange and keeps it.
func (m *Meter) measureClock(ctx context.Context) error {
	srv, t0, t1, err := m.api.serverNow(ctx, m.env.Clock)
	if err != nil {
		return err
	}
	// The server truncates its now to the millisecond: its true time lies
	// in [srv, srv+1ms), so its middle is the estimate.
	mid := t0.Add(t1.Sub(t0) / 2)
	off := mid.Sub(srv.Time().Add(500 * time.Microsecond))
	m.mu.Lock()
	defer m.mu.Unlock()
	m.st.offsets = append(m.st.offsets, offsetSample{offset: off, rtt: t1.Sub(t0)})
	m.st.exchanges++
	if best := m.st.offset(); len(m.st.used) == 0 || m.st.used[len(m.st.used)-1] != best {
		m.st.used = append(m.st.used, best)
	}
	return nil
}

// offset is the mapping in force: the exchange with the shortest round
// trip among the last keepOffsets. Callers hold m.mu.
func (st *state) offset() offsetSample {
	recent := st.offsets[max(0, len(st.offsets)-keepOffsets):]
	best := recent[0]
	for _, o := range recent[1:] {
		if o.rtt < best.rtt {
			best = o
		}
	}
	return best
}

// serverTime maps a harness time onto the server's clock.
func (m *Meter) serverTime(host time.Time) model.Time {
	m.mu.Lock()
	off := m.st.offset().offset
	m.mu.Unlock()
	return model.TimeFromUnixNano(host.Add(-off).UnixNano())
}

// hostTime maps a server time onto the harness clock.
func (m *Meter) hostTime(t model.Time) time.Time {
	m.mu.Lock()
	off := m.st.offset().offset
	m.mu.Unlock()
	return t.Time().Add(off)
}

// interval is the scrape interval seen so far: the median time between
// two scrapes of a series. 0 when none is known.
func (m *Meter) interval() time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.st.interval()
}

// step is the range queries' step now.
func (m *Meter) step() time.Duration {
	if m.cfg.Step > 0 {
		return m.cfg.Step
	}
	iv := m.interval()
	if iv == 0 {
		return initialStep
	}
	return min(max(iv/10, MinStep), MaxStep).Round(time.Millisecond)
}

// point is one reading of one series: its value at a scrape, stamped with
// the scrape's time (or the step's, for an expression).
type point struct {
	key    string
	ts     model.Time // server time of the scrape, or of the step
	v      float64
	stepTS bool // ts is a step time, not the scrape's own
}

// fetchRange runs the range queries for [start, end] and returns each
// series' points at the scrapes they show, in time order per series, and
// the last step evaluated. The query is asked twice, as it is and inside
// timestamp(), which gives each step the time of the scrape it shows
// when the query is a plain selector (and the step's own time otherwise).
func (m *Meter) fetchRange(ctx context.Context, start, end model.Time, step time.Duration) ([]point, model.Time, error) {
	if end < start {
		return nil, start.Add(-step), nil // nothing evaluated yet
	}
	if n := int64(end.Sub(start) / step); n > maxPoints {
		end = start.Add(time.Duration(maxPoints) * step)
	}
	vals, w1, err := m.api.rangeQuery(ctx, m.cfg.Query, start, end, step)
	if err != nil {
		return nil, start, err
	}
	stamps, w2, err := m.api.rangeQuery(ctx, "timestamp("+m.cfg.Query+")", start, end, step)
	if err != nil {
		return nil, start, err
	}
	m.warnOnce(append(w1, w2...))
	// timestamp() drops the metric name: match the two on the other
	// labels. Two series alike but for their names cannot be told apart
	// there; they keep their step times.
	byLabels := map[string]*model.SampleStream{}
	clash := map[string]bool{}
	for _, s := range stamps {
		k := labelsKey(s.Metric, false)
		if _, dup := byLabels[k]; dup {
			clash[k] = true
		}
		byLabels[k] = s
	}
	var pts []point
	for _, s := range vals {
		key := labelsKey(s.Metric, true)
		lk := labelsKey(s.Metric, false)
		ts := map[model.Time]model.Time{}
		if st, ok := byLabels[lk]; ok && !clash[lk] {
			for _, p := range st.Values {
				ts[p.Timestamp] = model.Time(math.Round(float64(p.Value) * 1000))
			}
		}
		for _, p := range s.Values {
			pt := point{key: key, ts: p.Timestamp, v: float64(p.Value), stepTS: true}
			if at, ok := ts[p.Timestamp]; ok && at != p.Timestamp {
				pt.ts, pt.stepTS = at, false
			}
			pts = append(pts, pt)
		}
	}
	// The last step the queries evaluated.
	last := start.Add(time.Duration(int64(end.Sub(start)/step)) * step)
	return pts, last, nil
}

// labelsKey names a series by its labels, with or without its name.
func labelsKey(mt model.Metric, withName bool) string {
	if withName {
		return mt.String()
	}
	c := mt.Clone()
	delete(c, model.MetricNameLabel)
	return c.String()
}

// warnOnce keeps the server's warnings about the query for the report.
func (m *Meter) warnOnce(ws []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, w := range ws {
		if !slices.Contains(m.st.serverWarnings, w) && len(m.st.serverWarnings) < 10 {
			m.st.serverWarnings = append(m.st.serverWarnings, w)
		}
	}
}
