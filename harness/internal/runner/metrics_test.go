package runner

import (
	"context"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/academemes/harness/harness/internal/runstore"
	"github.com/academemes/harness/meters"
)

// demandMeter emits a sample only when asked, with the cumulative joules
// it is given, so that a test knows what the meter has said at each
// moment without waiting on a clock. It emits one sample at 0 J as it
// starts.
type demandMeter struct {
	demand chan float64
	done   chan struct{}
}

var demand = &demandMeter{demand: make(chan float64), done: make(chan struct{})}

func (*demandMeter) Info() meters.Info {
	return meters.Info{Name: "demand", Driver: "demand", Kind: meters.Measured, Channels: []meters.Channel{{Name: "board", InTotal: true}}}
}

func (d *demandMeter) Run(ctx context.Context, emit func(meters.Sample)) error {
	emit(meters.Sample{T: time.Now(), Watts: meters.NaN, Joules: 0})
	for {
		select {
		case <-ctx.Done():
			return nil
		case j := <-d.demand:
			emit(meters.Sample{T: time.Now(), Watts: meters.NaN, Joules: j})
			d.done <- struct{}{}
		}
	}
}

func init() {
	meters.Register(meters.Driver{Name: "demand", Open: func(meters.Spec, meters.Env) (meters.Meter, error) { return demand, nil }})
}

// scrape reads /metrics with the Prometheus text parser.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Error(err)
		return nil
	}
	defer resp.Body.Close()
	var p expfmt.TextParser
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Errorf("parse /metrics: %v", err)
	}
	return fams
}

// value is the value of the family's series whose labels include want;
// NaN when there is none.
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	f := fams[name]
	if f == nil {
		return math.NaN()
	}
next:
	for _, m := range f.Metric {
		got := map[string]string{}
		for _, l := range m.Label {
			got[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if got[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return math.NaN()
}

// scrapingObserver is the live view, scraped over HTTP from inside the
// run: at the 3rd load request, and at the 8th after the meter has
// measured 5 J more.
type scrapingObserver struct {
	*Metrics
	t      *testing.T
	url    string
	n      int
	scrape []map[string]*dto.MetricFamily
}

func (o *scrapingObserver) Request(q runstore.Request) {
	o.Metrics.Request(q)
	if q.Phase != runstore.PhaseLoad {
		return
	}
	o.n++
	switch o.n {
	case 3:
		o.scrape = append(o.scrape, scrape(o.t, o.url))
	case 8:
		demand.demand <- 5
		<-demand.done
		o.scrape = append(o.scrape, scrape(o.t, o.url))
	}
}

// TestMetricsDuringRun scrapes /metrics while a run goes: the request
// count rises, the meter's joules counter increases, and the phase, the
// repetition and the latency histogram are there.
func TestMetricsDuringRun(t *testing.T) {
	sc := parse(t, `name: live
repeat: 1
idle: 10ms
warmup: 0s
cooldown: 0s
checks: off
meters: [demand]
targets: [{name: a, kind: fake, function: memes}]
load:
  sequential: {requests: 10}
`)
	m := NewMetrics()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	obs := &scrapingObserver{Metrics: m, t: t, url: srv.URL}
	res, err := Run(context.Background(), sc, Options{RunsDir: t.TempDir(), Log: io.Discard, Observer: obs})
	if err != nil || res.Status != runstore.StatusComplete {
		t.Fatalf("run: %v, %+v", err, res)
	}
	if len(obs.scrape) != 2 {
		t.Fatalf("%d scrapes during the run, want 2", len(obs.scrape))
	}
	a, b := obs.scrape[0], obs.scrape[1]
	load := map[string]string{"target": "a", "phase": "load"}
	if ra, rb := value(a, "harness_requests_total", load), value(b, "harness_requests_total", load); !(ra == 3 && rb == 8) {
		t.Errorf("harness_requests_total{target=a,phase=load}: %v then %v, want 3 then 8 (rising)", ra, rb)
	}
	ch := map[string]string{"meter": "demand", "channel": "board", "in_total": "true"}
	ja, jb := value(a, "harness_meter_joules_total", ch), value(b, "harness_meter_joules_total", ch)
	if !(jb > ja) || math.Abs(jb-ja-5) > 1e-9 {
		t.Errorf("harness_meter_joules_total: %v then %v, want an increase of 5 J", ja, jb)
	}
	if w := value(b, "harness_meter_watts", ch); !(w > 0) {
		t.Errorf("harness_meter_watts = %v, want the power from the counter's step", w)
	}
	if v := value(b, "harness_phase", load); v != 1 {
		t.Errorf("harness_phase{target=a,phase=load} = %v, want 1 while the load runs", v)
	}
	if v := value(b, "harness_phase", map[string]string{"phase": "idle"}); !math.IsNaN(v) {
		t.Errorf("the idle phase is still marked under way: %v", v)
	}
	if v := value(b, "harness_repetition", nil); v != 0 {
		t.Errorf("harness_repetition = %v, want 0", v)
	}
	if n := value(b, "harness_request_duration_seconds", load); n != 8 {
		t.Errorf("latency histogram holds %v requests, want 8", n)
	}
	if v := value(b, "harness_run_info", map[string]string{"run": res.ID, "scenario": "live"}); v != 1 {
		t.Errorf("harness_run_info for %s = %v", res.ID, v)
	}
	if v := value(b, "harness_meter_info", map[string]string{"meter": "demand", "kind": "measured"}); v != 1 {
		t.Errorf("harness_meter_info = %v", v)
	}
}

// TestMetricsValidity: the problems found so far, by check, and whether
// the run is still valid.
func TestMetricsValidity(t *testing.T) {
	m := NewMetrics()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	m.Validity(&runstore.Validity{Valid: true})
	if v := value(scrape(t, srv.URL), "harness_valid", nil); v != 1 {
		t.Errorf("harness_valid = %v with no problem, want 1", v)
	}
	m.Validity(&runstore.Validity{Valid: false, Problems: []runstore.Problem{
		{Phase: "a/load/0", Check: "foreign_cpu"}, {Phase: "a/load/1", Check: "foreign_cpu"}, {Phase: "b/load/0", Check: "achieved_rate"},
	}})
	fams := scrape(t, srv.URL)
	if v := value(fams, "harness_valid", nil); v != 0 {
		t.Errorf("harness_valid = %v after problems, want 0", v)
	}
	if v := value(fams, "harness_validity_problems", map[string]string{"check": "foreign_cpu"}); v != 2 {
		t.Errorf("foreign_cpu problems = %v, want 2", v)
	}
	if v := value(fams, "harness_validity_problems", map[string]string{"check": "achieved_rate"}); v != 1 {
		t.Errorf("achieved_rate problems = %v, want 1", v)
	}
}

// TestMetricsJoulesFromPower: a meter that gives only power has its
// energy integrated by the trapezoid rule; a counter that goes down adds
// nothing.
func TestMetricsJoulesFromPower(t *testing.T) {
	m := NewMetrics()
	m.MeterStarted(runstore.MeterMeta{Name: "p", Channels: []runstore.Channel{{Name: "in", InTotal: true}, {Name: "nested", InTotal: false}}})
	nan := math.NaN()
	for _, s := range []runstore.Sample{
		{Meter: "p", Channel: 0, TNs: 0, Watts: 10, Joules: nan},
		{Meter: "p", Channel: 0, TNs: 2e9, Watts: 20, Joules: nan}, // 30 J
		{Meter: "p", Channel: 1, TNs: 0, Watts: nan, Joules: 100},
		{Meter: "p", Channel: 1, TNs: 1e9, Watts: nan, Joules: 104}, // 4 J
		{Meter: "p", Channel: 1, TNs: 2e9, Watts: nan, Joules: 1},   // a reset
		{Meter: "p", Channel: 1, TNs: 3e9, Watts: nan, Joules: 3},   // 2 J
	} {
		m.Sample(s)
	}
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	fams := scrape(t, srv.URL)
	if v := value(fams, "harness_meter_joules_total", map[string]string{"channel": "in", "in_total": "true"}); v != 30 {
		t.Errorf("joules from power = %v, want 30", v)
	}
	if v := value(fams, "harness_meter_joules_total", map[string]string{"channel": "nested", "in_total": "false"}); v != 6 {
		t.Errorf("joules from a counter with a reset = %v, want 6", v)
	}
	if v := value(fams, "harness_meter_watts", map[string]string{"channel": "in"}); v != 20 {
		t.Errorf("watts = %v, want the last reading, 20", v)
	}
}

func TestMetricsAddr(t *testing.T) {
	tests := []struct {
		name   string
		addr   string
		remote bool
		want   string
		errHas string
	}{
		{"bare port is loopback", "9464", false, "127.0.0.1:9464", ""},
		{"no host is loopback", ":9464", false, "127.0.0.1:9464", ""},
		{"localhost", "localhost:9464", false, "localhost:9464", ""},
		{"IPv6 loopback", "[::1]:9464", false, "[::1]:9464", ""},
		{"all interfaces refused", "0.0.0.0:9464", false, "", "not loopback"},
		{"a LAN address refused", "192.168.1.5:9464", false, "", "--metrics-allow-remote"},
		{"allowed when asked", "0.0.0.0:9464", true, "0.0.0.0:9464", ""},
		{"no port", "127.0.0.1", false, "", "want HOST:PORT or PORT"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := MetricsAddr(tc.addr, tc.remote)
			if tc.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errHas) {
					t.Errorf("MetricsAddr(%q) = %q, %v; want an error with %q", tc.addr, got, err, tc.errHas)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("MetricsAddr(%q) = %q, %v; want %q", tc.addr, got, err, tc.want)
			}
		})
	}
}
