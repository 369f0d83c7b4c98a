package runner

import (
	"fmt"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/academemes/harness/harness/internal/runstore"
)

// Observer is told what a run does while it goes, for a live view. The
// runner calls it from the meters' and the load's goroutines at once, so
// an implementation must be safe for concurrent use, and quick: it sits
// on the path of every sample and request.
type Observer interface {
	// RunStarted is called once, with run.json as it begins.
	RunStarted(meta runstore.Meta)
	// MeterStarted is called for each meter before its first sample.
	MeterStarted(m runstore.MeterMeta)
	// Sample and Request are each row as it is written.
	Sample(s runstore.Sample)
	Request(q runstore.Request)
	// PhaseStarted is called as each phase begins.
	PhaseStarted(p runstore.Phase)
	// Validity is the run's validity so far, after the system check and
	// each phase; nil with checks: off.
	Validity(v *runstore.Validity)
}

// noObserver is the Observer of a run that nobody watches.
type noObserver struct{}

func (noObserver) RunStarted(runstore.Meta)        {}
func (noObserver) MeterStarted(runstore.MeterMeta) {}
func (noObserver) Sample(runstore.Sample)          {}
func (noObserver) Request(runstore.Request)        {}
func (noObserver) PhaseStarted(runstore.Phase)     {}
func (noObserver) Validity(*runstore.Validity)     {}

var (
	_ Observer = noObserver{}
	_ Observer = (*Metrics)(nil)
)

// Metrics is a live view of a run in the Prometheus exposition format:
// requests, failures and latency by target and phase; power and energy by
// meter and channel; the phase and repetition under way; the validity
// problems found so far. It is built on the Prometheus client library
// and serves /metrics through Handler.
type Metrics struct {
	reg       *prometheus.Registry
	runInfo   *prometheus.GaugeVec
	requests  *prometheus.CounterVec
	failures  *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	meterInfo *prometheus.GaugeVec
	watts     *prometheus.GaugeVec
	joules    *prometheus.CounterVec
	phase     *prometheus.GaugeVec
	rep       prometheus.Gauge
	valid     prometheus.Gauge
	problems  *prometheus.GaugeVec

	mu       sync.Mutex
	channels map[string][]runstore.Channel // by meter
	last     map[chanKey]runstore.Sample   // each channel's previous sample
}

type chanKey struct {
	meter   string
	channel int
}

// latencyBuckets run from 100 µs (a warm Wasm request) to about 15 s (a
// cold container start on a busy machine), 2.5 times apart.
var latencyBuckets = prometheus.ExponentialBuckets(100e-6, 2.5, 14)

// NewMetrics makes a live view with its own registry, so that only the
// run's figures are served.
func NewMetrics() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		runInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "harness_run_info",
			Help: "The run under way (1), named by its id and scenario."}, []string{"run", "scenario"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "harness_requests_total",
			Help: "Requests completed (answered or failed), by target and phase."}, []string{"target", "phase"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "harness_request_errors_total",
			Help: "Requests that failed: no answer, or an HTTP status of 400 or more."}, []string{"target", "phase"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "harness_request_duration_seconds",
			Help: "Client-side latency of every completed request.", Buckets: latencyBuckets}, []string{"target", "phase"}),
		meterInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "harness_meter_info",
			Help: "Each meter (1): its driver, kind (measured, or model for an estimate) and label."}, []string{"meter", "driver", "kind", "label"}),
		watts: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "harness_meter_watts",
			Help: "Last power reading of each meter channel (from its energy counter where it gives no power); in_total=false marks a channel nested in another."}, []string{"meter", "channel", "in_total"}),
		joules: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "harness_meter_joules_total",
			Help: "Energy each meter channel has measured since the run began: its counter's increase, or its power integrated by the trapezoid rule."}, []string{"meter", "channel", "in_total"}),
		phase: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "harness_phase",
			Help: "The phase under way (1), by target and phase name."}, []string{"target", "phase"}),
		rep: prometheus.NewGauge(prometheus.GaugeOpts{Name: "harness_repetition",
			Help: "The repetition under way, counted from 0 as in run.json."}),
		valid: prometheus.NewGauge(prometheus.GaugeOpts{Name: "harness_valid",
			Help: "1 while every validity check so far has passed, 0 once one has failed; absent with checks: off."}),
		problems: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "harness_validity_problems",
			Help: "Validity problems found so far, by check (run.json validity.problems)."}, []string{"check"}),
		channels: map[string][]runstore.Channel{},
		last:     map[chanKey]runstore.Sample{},
	}
	m.reg.MustRegister(m.runInfo, m.requests, m.failures, m.latency, m.meterInfo, m.watts, m.joules, m.phase, m.rep, m.valid, m.problems)
	return m
}

// Handler serves the metrics in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// RunStarted implements Observer.
func (m *Metrics) RunStarted(meta runstore.Meta) {
	m.runInfo.WithLabelValues(meta.ID, meta.Scenario).Set(1)
}

// MeterStarted implements Observer.
func (m *Metrics) MeterStarted(mm runstore.MeterMeta) {
	m.mu.Lock()
	m.channels[mm.Name] = mm.Channels
	m.mu.Unlock()
	m.meterInfo.WithLabelValues(mm.Name, mm.Driver, string(mm.Kind), mm.Label).Set(1)
}

// Sample implements Observer: the channel's power, and the energy since
// its previous sample added to its counter. A counter that went down (a
// reset) adds nothing.
func (m *Metrics) Sample(s runstore.Sample) {
	k := chanKey{s.Meter, s.Channel}
	m.mu.Lock()
	prev, seen := m.last[k]
	m.last[k] = s
	name, inTotal := strconv.Itoa(s.Channel), true
	if chs := m.channels[s.Meter]; s.Channel >= 0 && s.Channel < len(chs) {
		name, inTotal = chs[s.Channel].Name, chs[s.Channel].InTotal
	}
	m.mu.Unlock()
	labels := []string{s.Meter, name, strconv.FormatBool(inTotal)}
	j := m.joules.WithLabelValues(labels...)
	dt := float64(s.TNs-prev.TNs) / 1e9
	w := s.Watts
	switch {
	case !seen || dt <= 0:
	case !math.IsNaN(s.Joules) && !math.IsNaN(prev.Joules):
		if d := s.Joules - prev.Joules; d >= 0 {
			j.Add(d)
			if math.IsNaN(w) {
				w = d / dt
			}
		}
	case !math.IsNaN(w) && !math.IsNaN(prev.Watts):
		j.Add((w + prev.Watts) / 2 * dt)
	}
	if !math.IsNaN(w) {
		m.watts.WithLabelValues(labels...).Set(w)
	}
}

// Request implements Observer.
func (m *Metrics) Request(q runstore.Request) {
	m.requests.WithLabelValues(q.Target, q.Phase).Inc()
	if !q.OK() {
		m.failures.WithLabelValues(q.Target, q.Phase).Inc()
	} else {
		m.failures.WithLabelValues(q.Target, q.Phase).Add(0) // present, so rates divide
	}
	m.latency.WithLabelValues(q.Target, q.Phase).Observe(time.Duration(q.LatencyNs).Seconds())
}

// PhaseStarted implements Observer.
func (m *Metrics) PhaseStarted(p runstore.Phase) {
	m.phase.Reset()
	m.phase.WithLabelValues(p.Target, p.Name).Set(1)
	m.rep.Set(float64(p.Rep))
}

// Validity implements Observer.
func (m *Metrics) Validity(v *runstore.Validity) {
	if v == nil {
		return
	}
	ok := 0.0
	if v.Valid && len(v.Problems) == 0 {
		ok = 1
	}
	m.valid.Set(ok)
	m.problems.Reset()
	for _, p := range v.Problems {
		m.problems.WithLabelValues(p.Check).Inc()
	}
}

// MetricsAddr checks where --metrics-listen may serve: loopback unless
// allowRemote, since the metrics name the run's targets, host and timing
// to anyone who can reach the port. A bare port, or one without a host,
// is on 127.0.0.1 (Go's own listener would take every interface).
func MetricsAddr(addr string, allowRemote bool) (string, error) {
	if addr != "" && strings.Trim(addr, "0123456789") == "" {
		addr = ":" + addr
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("--metrics-listen %q: want HOST:PORT or PORT: %w", addr, err)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	addr = net.JoinHostPort(host, port)
	if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) || allowRemote {
		return addr, nil
	}
	return "", fmt.Errorf("--metrics-listen %s is not loopback: the metrics name the run's targets and host to anyone who can reach it; add --metrics-allow-remote to serve beyond this machine", addr)
}
