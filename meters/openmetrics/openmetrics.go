// Package openmetrics is the meter driver that scrapes an exporter's
// /metrics page directly and reads an energy counter from it: node_exporter's
// RAPL counters (node_rapl_package_joules_total), Scaphandre's
// (scaph_host_energy_microjoules), Kepler's node and container counters
// (kepler_node_package_joules_total, kepler_container_joules_total).
//
// Spec:
//
//	openmetrics:URL?metric=NAME[&labels=k=v+k2=v2][&rate=HZ][&unit=J|mJ|uJ|nJ|Wh|kWh][&wrap=N][&kind=measured|model][&timeout=D][&giveup=D]
//
// URL defaults to http:// and to the path /metrics ("openmetrics:127.0.0.1:9100?metric=..."
// reads http://127.0.0.1:9100/metrics). The page is parsed with the
// Prometheus text parser (github.com/prometheus/common/expfmt). Every series
// of the metric whose labels include all of labels= is followed on its own
// (package meters/internal/counter: resets and wraps undone) and their
// increases are summed into one channel, in the meter's total. The unit
// comes from the metric's name (_joules, _microjoules, ...) or unit=. A
// decrease is a reset to zero, as in Prometheus, unless wrap= gives the
// counter's modulus in its own unit (node_exporter passes RAPL's counter on
// as it is: wrap= max_energy_range_uj / 1e6).
//
// Each scrape is stamped on the harness clock at the midpoint of the HTTP
// request and its response headers, when the exporter read its counters.
// The time resolution is the scrape interval, or the exporter's own update
// interval where that is longer (Kepler refreshes every few seconds); the
// report says which was seen.
//
// A counter that splits a node's energy among containers, pods or
// processes by CPU share (Kepler's, Scaphandre's per-process) is a model,
// not a measurement: the meter's kind is then "model", and every output
// labels it so. kind= overrides the rule.
package openmetrics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/academemes/harness/meters"
	"github.com/academemes/harness/meters/internal/counter"
)

// Name is the driver's name.
const Name = "openmetrics"

// Defaults and limits of the spec's options.
const (
	// DefaultRate is one scrape a second: a whole node_exporter scrape
	// costs the measured machine milliseconds of CPU, and Kepler refreshes
	// its counters only every few seconds anyway.
	DefaultRate    = 1.0
	MaxRate        = 100.0
	DefaultTimeout = 5 * time.Second
	DefaultGiveUp  = 2 * time.Minute
	// MaxBody bounds one /metrics page. Kepler's, with a series per
	// container and zone, runs to megabytes on a busy node.
	MaxBody = 64 << 20
)

// Usage is the spec grammar in one line.
const Usage = "openmetrics:URL?metric=NAME[&labels=k=v+k2=v2&rate=HZ&unit=J|mJ|uJ&wrap=N&kind=measured|model&timeout=5s&giveup=2m]  an energy counter scraped from an exporter's /metrics (node_exporter, Scaphandre, Kepler); rate default 1"

func init() {
	meters.Register(meters.Driver{
		Name:  Name,
		Usage: Usage,
		Open:  func(sp meters.Spec, env meters.Env) (meters.Meter, error) { return Open(context.Background(), sp, env) },
		Check: func(sp meters.Spec) error {
			_, err := ParseConfig(sp)
			return err
		},
		// An exporter is a network service: named, never guessed.
		Detect:   nil,
		AutoRank: 0,
	})
}

// Config is a parsed openmetrics spec.
type Config struct {
	URL    *url.URL
	Metric string
	// Labels select the series: each must carry all of them.
	Labels map[string]string
	Rate   float64
	// UnitJ is the size of the counter's unit in joules; 0 until known
	// (from unit=, or from the metric's name).
	UnitJ float64
	// UnitFrom says where UnitJ came from: "unit=" or "the metric's name".
	UnitFrom string
	// Wrap is the counter's modulus in its own unit; 0: a fall is a reset.
	Wrap    float64
	Timeout time.Duration
	GiveUp  time.Duration
	// Kind is measured, or model for a counter that splits a node's
	// energy by CPU share (Kepler's per-container and per-pod counters):
	// kind=, else from the metric's name (counter.IsAttribution).
	Kind meters.Kind
}

// ParseKind reads a kind= option; "" leaves the default.
func ParseKind(v string, def meters.Kind) (meters.Kind, error) {
	switch meters.Kind(v) {
	case "":
		return def, nil
	case meters.Measured, meters.Model:
		return meters.Kind(v), nil
	}
	return def, fmt.Errorf("kind=%s: want measured or model", v)
}

// ParseConfig checks a spec and reports every problem at once.
func ParseConfig(sp meters.Spec) (Config, error) {
	c := Config{Rate: DefaultRate, Timeout: DefaultTimeout, GiveUp: DefaultGiveUp, Labels: map[string]string{}}
	if err := sp.Unknown("metric", "labels", "rate", "unit", "wrap", "timeout", "giveup", "kind"); err != nil {
		return c, err
	}
	var bad []string
	o := sp.Options
	u, err := ParseURL(sp.Arg, "/metrics")
	if err != nil {
		bad = append(bad, err.Error())
	}
	c.URL = u
	c.Metric = o["metric"]
	switch {
	case c.Metric == "":
		bad = append(bad, "metric= is required: the energy counter to read, e.g. metric=node_rapl_package_joules_total")
	case !model.IsValidMetricName(model.LabelValue(c.Metric)):
		bad = append(bad, fmt.Sprintf("metric=%q is not a metric name", c.Metric))
	}
	if v, ok := o["labels"]; ok {
		ls, err := ParseLabels(v)
		if err != nil {
			bad = append(bad, err.Error())
		}
		c.Labels = ls
	}
	if v, ok := o["rate"]; ok {
		r, err := strconv.ParseFloat(strings.TrimSuffix(strings.ToLower(v), "hz"), 64)
		if err != nil || !(r > 0 && r <= MaxRate) {
			bad = append(bad, fmt.Sprintf("rate=%s: want scrapes per second in (0, %g]", v, MaxRate))
		} else {
			c.Rate = r
		}
	}
	if v, ok := o["unit"]; ok {
		j, err := counter.ParseUnit(v)
		if err != nil {
			bad = append(bad, "unit="+v+": "+err.Error())
		}
		c.UnitJ, c.UnitFrom = j, "unit="
	} else if j, ok := counter.UnitFromName(c.Metric); ok {
		c.UnitJ, c.UnitFrom = j, "the metric's name"
	} else if c.Metric != "" {
		bad = append(bad, fmt.Sprintf("metric %s does not say its unit in its name (_joules, _microjoules, ...): give unit=J, mJ, uJ, nJ, Wh or kWh", c.Metric))
	}
	if v, ok := o["wrap"]; ok {
		w, err := strconv.ParseFloat(v, 64)
		if err != nil || !(w > 0) || math.IsInf(w, 0) {
			bad = append(bad, fmt.Sprintf("wrap=%s: want the counter's modulus, a positive number in its own unit", v))
		} else {
			c.Wrap = w
		}
	}
	durOpt := func(key string, dst *time.Duration) {
		if v, ok := o[key]; ok {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				bad = append(bad, fmt.Sprintf("%s=%s: want a positive duration (500ms, 2s)", key, v))
				return
			}
			*dst = d
		}
	}
	durOpt("timeout", &c.Timeout)
	durOpt("giveup", &c.GiveUp)
	def := meters.Measured
	if counter.IsAttribution(c.Metric) {
		def = meters.Model
	}
	if c.Kind, err = ParseKind(o["kind"], def); err != nil {
		bad = append(bad, err.Error())
	}
	if len(bad) > 0 {
		return c, fmt.Errorf("%w %q: %s", meters.ErrSpec, sp.Raw, strings.Join(bad, "; "))
	}
	return c, nil
}

// ParseURL reads a spec's URL argument: http:// when no scheme is given,
// defPath when no path is (the prometheus driver passes "").
func ParseURL(arg, defPath string) (*url.URL, error) {
	arg = strings.TrimSpace(arg)
	if arg == "" {
		return nil, errors.New("no URL: write the exporter's address first, e.g. http://127.0.0.1:9100/metrics")
	}
	if !strings.Contains(arg, "://") {
		arg = "http://" + arg
	}
	u, err := url.Parse(arg)
	if err != nil {
		return nil, fmt.Errorf("URL %q: %w", arg, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("URL %q: scheme %q; want http or https", arg, u.Scheme)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("URL %q has no host", arg)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("URL %q: port %q is not a TCP port", arg, p)
		}
	}
	if u.Path == "" {
		u.Path = defPath
	}
	return u, nil
}

// ParseLabels reads labels=k=v+k2=v2. ParseSpec has already unescaped the
// value, which turns "+" into a space, so pairs are split at white space;
// a literal "+" in a value is written %2B, a "&" %26 and a "," %2C.
func ParseLabels(v string) (map[string]string, error) {
	out := map[string]string{}
	var bad []string
	for _, kv := range strings.Fields(v) {
		k, val, ok := strings.Cut(kv, "=")
		switch {
		case !ok:
			bad = append(bad, fmt.Sprintf("%q is not name=value", kv))
		case !model.LabelName(k).IsValid():
			bad = append(bad, fmt.Sprintf("%q is not a label name", k))
		default:
			if _, dup := out[k]; dup {
				bad = append(bad, fmt.Sprintf("label %s given twice", k))
			}
			out[k] = val
		}
	}
	if len(out) == 0 && len(bad) == 0 {
		bad = append(bad, "no label given")
	}
	if len(bad) > 0 {
		return out, fmt.Errorf("labels=%q: %s (pairs joined with +, e.g. labels=index=0+path=x)", v, strings.Join(bad, "; "))
	}
	return out, nil
}

// Meter reads one energy metric from an exporter.
type Meter struct {
	cfg    Config
	env    meters.Env
	client *http.Client
	info   meters.Info

	mu  sync.Mutex
	rep report
}

var (
	_ meters.Meter    = (*Meter)(nil)
	_ meters.Reporter = (*Meter)(nil)
)

// Open parses the spec and scrapes the exporter once, so that a wrong
// address, a missing metric or a label filter that matches nothing is
// reported before a run starts.
func Open(ctx context.Context, sp meters.Spec, env meters.Env) (*Meter, error) {
	env = env.WithDefaults()
	cfg, err := ParseConfig(sp)
	if err != nil {
		return nil, err
	}
	m := &Meter{cfg: cfg, env: env, client: &http.Client{Timeout: cfg.Timeout}}
	sc, err := m.scrape(ctx)
	if err != nil {
		return nil, err
	}
	if len(sc.values) == 0 {
		// A container that Kepler will count may not run yet: the
		// targets start after the meters. Its series counts from its
		// first reading; the report says if none ever matched.
		env.Logf("openmetrics %s: no series of %s has the labels %s yet; its series now: %s", cfg.URL, cfg.Metric, labelText(cfg.Labels), seriesList(sc.seen))
	}
	interval := time.Duration(float64(time.Second) / cfg.Rate)
	desc := fmt.Sprintf("energy counter %s from %s (%d series, %s, unit %s J from %s), every %v",
		cfg.Metric+labelText(cfg.Labels), cfg.URL, len(sc.values), sc.typ, strconv.FormatFloat(cfg.UnitJ, 'g', -1, 64), cfg.UnitFrom, interval)
	if cfg.Kind == meters.Model {
		desc += "; an attribution model (the node's energy split by CPU share), not a measurement"
	}
	m.info = meters.Info{
		Name:        sp.Raw,
		Driver:      Name,
		Kind:        cfg.Kind,
		Description: desc,
		Channels:    []meters.Channel{{Name: cfg.Metric + labelText(cfg.Labels), InTotal: true}},
		Precision:   Precision(cfg.Metric, interval),
	}
	return m, nil
}

// Precision is what an exporter's counter can be trusted to resolve: the
// exporter states neither its counter's step nor its accuracy, so both
// stay "not stated"; the time resolution is the scrape interval, which
// Source says.
func Precision(metric string, interval time.Duration) meters.Precision {
	src := "the exporter states neither its counter's step nor its accuracy"
	if strings.HasPrefix(metric, "node_rapl_") || strings.HasPrefix(metric, "scaph_") {
		src += " (this counter passes RAPL's on: RAPL's energy unit, 15.3 or 61 µJ, and RAPL's unstated accuracy)"
	}
	if strings.HasPrefix(metric, "kepler_") {
		src += " (Kepler's container counters are a model: RAPL's energy split by CPU share)"
	}
	src += fmt.Sprintf("; time resolution: one scrape every %v, or the exporter's own refresh where longer", interval)
	return meters.Precision{Source: src}
}

func labelText(ls map[string]string) string {
	if len(ls) == 0 {
		return ""
	}
	return model.LabelSet(toLabelSet(ls)).String()
}

func toLabelSet(ls map[string]string) model.LabelSet {
	out := model.LabelSet{}
	for k, v := range ls {
		out[model.LabelName(k)] = model.LabelValue(v)
	}
	return out
}

// Info implements meters.Meter.
func (m *Meter) Info() meters.Info { return m.info }

// Config returns the parsed spec.
func (m *Meter) Config() Config { return m.cfg }

// scraped is one reading of the exporter.
type scraped struct {
	t      time.Time          // midpoint of request and response headers
	rtt    time.Duration      // request to response headers
	values map[string]float64 // per matched series, by its labels
	typ    string             // the metric's declared type
	seen   []string           // every series of the metric, matched or not
}

// errLost marks a scrape that failed for reasons that may pass (the
// exporter restarting, a timeout); Run records a gap and tries again.
var errLost = errors.New("scrape failed")

// scrape reads the exporter once and picks out the configured series.
func (m *Meter) scrape(ctx context.Context) (scraped, error) {
	var sc scraped
	where := "openmetrics " + m.cfg.URL.String()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.cfg.URL.String(), nil)
	if err != nil {
		return sc, fmt.Errorf("%s: %w", where, err)
	}
	// The classic text format, which expfmt's parser reads; exporters
	// answer it to Prometheus itself.
	req.Header.Set("Accept", "text/plain;version=0.0.4;q=1,*/*;q=0.1")
	t0 := m.env.Clock()
	resp, err := m.client.Do(req)
	t1 := m.env.Clock()
	sc.t, sc.rtt = t0.Add(t1.Sub(t0)/2), t1.Sub(t0)
	if err != nil {
		return sc, explain(where, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return sc, fmt.Errorf("%w: %s: %w: HTTP %s: %s", meters.ErrUnavailable, where, errLost, resp.Status, strings.TrimSpace(string(msg)))
	}
	body := &limitedReader{r: resp.Body, n: MaxBody}
	var p expfmt.TextParser
	fams, err := p.TextToMetricFamilies(body)
	if body.over {
		return sc, fmt.Errorf("%s: the page is larger than %d MiB; is this an exporter's /metrics?", where, MaxBody>>20)
	}
	if err != nil {
		if ctx.Err() != nil {
			return sc, ctx.Err()
		}
		return sc, fmt.Errorf("%s: %w: not the Prometheus text format (Content-Type %q): %w", where, errLost, resp.Header.Get("Content-Type"), err)
	}
	fam, ok := fams[m.cfg.Metric]
	if !ok {
		// Missing from the page: a collector that failed this once
		// (node_exporter leaves its metrics out) or the wrong name.
		return sc, m.notFound(where, fams)
	}
	sc.typ = strings.ToLower(fam.GetType().String())
	switch fam.GetType() {
	case dto.MetricType_COUNTER, dto.MetricType_GAUGE, dto.MetricType_UNTYPED:
	default:
		return sc, fmt.Errorf("%s: %s is a %s, not an energy counter", where, m.cfg.Metric, sc.typ)
	}
	sc.values = map[string]float64{}
	var seen []string
	for _, mt := range fam.GetMetric() {
		ls := model.LabelSet{}
		for _, l := range mt.GetLabel() {
			ls[model.LabelName(l.GetName())] = model.LabelValue(l.GetValue())
		}
		seen = append(seen, ls.String())
		if !matches(ls, m.cfg.Labels) {
			continue
		}
		var v float64
		switch fam.GetType() {
		case dto.MetricType_COUNTER:
			v = mt.GetCounter().GetValue()
		case dto.MetricType_GAUGE:
			v = mt.GetGauge().GetValue()
		default:
			v = mt.GetUntyped().GetValue()
		}
		sc.values[ls.String()] = v
	}
	sc.seen = seen
	return sc, nil
}

// notFound says that the metric is missing, and which energy counters the
// page has instead.
func (m *Meter) notFound(where string, fams map[string]*dto.MetricFamily) error {
	var names []string
	for n := range fams {
		names = append(names, n)
	}
	energy := counter.EnergyNames(names)
	hint := "it has no metric whose name says it counts energy"
	if len(energy) > 0 {
		if len(energy) > 12 {
			energy = append(energy[:12], fmt.Sprintf("... %d more", len(energy)-12))
		}
		hint = "energy counters there: " + strings.Join(energy, ", ")
	}
	extra := ""
	if strings.HasPrefix(m.cfg.Metric, "node_rapl_") {
		extra = "; node_exporter exports RAPL only where it can read /sys/class/powercap/*/energy_uj (root only since Linux 5.10) and its rapl collector is on"
	}
	return fmt.Errorf("%w: %s: %w: no metric %s on the page; %s%s", meters.ErrUnavailable, where, errLost, m.cfg.Metric, hint, extra)
}

// seriesList is a few series' labels for a message.
func seriesList(seen []string) string {
	if len(seen) == 0 {
		return "none"
	}
	seen = append([]string(nil), seen...)
	sort.Strings(seen)
	if len(seen) > 10 {
		seen = append(seen[:10], fmt.Sprintf("... %d more", len(seen)-10))
	}
	return strings.Join(seen, ", ")
}

func matches(ls model.LabelSet, want map[string]string) bool {
	for k, v := range want {
		if got, ok := ls[model.LabelName(k)]; !ok || string(got) != v {
			return false
		}
	}
	return true
}

// limitedReader is io.LimitReader that remembers whether the limit cut the
// body short, so that a cut page is not parsed as a whole one.
type limitedReader struct {
	r    io.Reader
	n    int64
	over bool
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		var one [1]byte
		if n, _ := l.r.Read(one[:]); n > 0 {
			l.over = true
		}
		return 0, io.EOF
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}

// explain says what a failed request means. Every network failure wraps
// meters.ErrUnavailable and errLost: the exporter may come back.
func explain(where string, err error) error {
	var dns *net.DNSError
	var ne net.Error
	switch {
	case errors.Is(err, context.Canceled):
		return err
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("%w: %s: %w: connection refused: nothing listens there; is the exporter running, and on this port? %w", meters.ErrUnavailable, where, errLost, err)
	case errors.As(err, &dns):
		return fmt.Errorf("%w: %s: %w: cannot resolve the host: %w", meters.ErrUnavailable, where, errLost, err)
	case errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("%w: %s: %w: no answer in time (timeout=): %w", meters.ErrUnavailable, where, errLost, err)
	}
	return fmt.Errorf("%w: %s: %w: %w", meters.ErrUnavailable, where, errLost, err)
}

// Run scrapes at the configured rate until ctx is done. The first scrape
// is the baseline (Joules 0, Watts NaN); each later one gives the energy
// since it and the mean power since the previous scrape. A failed scrape
// opens a gap, which closes at the next good one; Run gives up when the
// exporter stays away longer than giveup.
func (m *Meter) Run(ctx context.Context, emit func(meters.Sample)) error {
	interval := time.Duration(float64(time.Second) / m.cfg.Rate)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	sum := counter.Sum{Wrap: m.cfg.Wrap, Scale: m.cfg.UnitJ}
	var (
		prevT, gapStart time.Time
		prevJ           float64
		started, inGap  bool
		gapReason       string
	)
	runStart := m.env.Clock()
	defer func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		m.rep.sum = sum
		if inGap {
			m.rep.gaps = append(m.rep.gaps, meters.Gap{Start: gapStart, End: m.env.Clock(), Reason: gapReason + " (not recovered before the meter stopped)"})
		}
	}()
	for {
		sc, err := m.scrape(ctx)
		if ctx.Err() != nil {
			return nil
		}
		m.mu.Lock()
		m.rep.scrapes++
		m.rep.rtt.add(sc.rtt.Seconds() * 1000)
		switch {
		case err == nil && inGap:
			m.rep.gaps = append(m.rep.gaps, meters.Gap{Start: gapStart, End: sc.t, Reason: gapReason})
			inGap = false
		case err != nil:
			m.rep.failed++
			if !inGap {
				inGap, gapReason, gapStart = true, err.Error(), prevT
				if gapStart.IsZero() {
					gapStart = runStart
				}
				m.env.Logf("openmetrics: %v; retrying", err)
			}
		}
		m.mu.Unlock()
		if err != nil {
			if !errors.Is(err, errLost) && !meters.IsUnavailable(err) {
				return err
			}
			if m.env.Clock().Sub(gapStart) > m.cfg.GiveUp {
				return fmt.Errorf("openmetrics %s: gave up after %v without a reading: %w", m.cfg.URL, m.cfg.GiveUp, err)
			}
		} else {
			keys := make([]string, 0, len(sc.values))
			for k := range sc.values {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			var j float64
			for _, k := range keys {
				j = sum.Add(k, sc.values[k])
			}
			w := meters.NaN
			if started {
				if dt := sc.t.Sub(prevT).Seconds(); dt > 0 {
					w = (j - prevJ) / dt
				}
			}
			m.mu.Lock()
			m.rep.observe(sc, j, started && j != prevJ)
			m.mu.Unlock()
			emit(meters.Sample{Channel: 0, T: sc.t, Watts: w, Joules: j})
			started, prevT, prevJ = true, sc.t, j
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// Report implements meters.Reporter.
func (m *Meter) Report() meters.Report {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.rep.build(m.cfg)
}
