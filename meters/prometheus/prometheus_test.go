package prometheus

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/academemes/harness/meters"
)

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name, spec string
		check      func(t *testing.T, c Config)
		errs       []string
	}{
		{name: "selector, unit from its name", spec: `prometheus:127.0.0.1:9090?query=kepler_container_joules_total{pod_name="memes-1"}`,
			check: func(t *testing.T, c Config) {
				if c.URL != "http://127.0.0.1:9090" || c.UnitJ != 1 || c.Poll != DefaultPoll || c.Step != 0 {
					t.Errorf("got %+v", c)
				}
			}},
		{name: "escaped comma and plus, microjoules", spec: `prometheus:https://prom.example/p?query=scaph_process_energy_microjoules{exe="node"%2Cpid="1"}%2B0&step=50ms&poll=1s&grace=5s`,
			check: func(t *testing.T, c Config) {
				if c.Query != `scaph_process_energy_microjoules{exe="node",pid="1"}+0` || c.UnitJ != 1e-6 || c.Step != 50*time.Millisecond || c.Poll != time.Second || c.Grace != 5*time.Second || c.URL != "https://prom.example/p" {
					t.Errorf("got %+v", c)
				}
			}},
		{name: "a name inside a string says nothing", spec: `prometheus:h:9090?query={__name__="x_joules_total"}`,
			check: func(t *testing.T, c Config) {
				if c.UnitJ != 0 {
					t.Errorf("unit %g from %s; want it left to Open", c.UnitJ, c.UnitFrom)
				}
			}},
		{name: "unit= wins", spec: `prometheus:h:9090?query=pdu_energy_total&unit=Wh`,
			check: func(t *testing.T, c Config) {
				if c.UnitJ != 3600 {
					t.Errorf("unit %g", c.UnitJ)
				}
			}},
		{name: "a per-pod counter is a model", spec: `prometheus:h:9090?query=kepler_pod_cpu_joules_total{pod_name="memes-1"%2Czone="package"}`,
			check: func(t *testing.T, c Config) {
				if c.Kind != meters.Model {
					t.Errorf("kind %s; want model", c.Kind)
				}
			}},
		{name: "a label value naming a pod counter says nothing", spec: `prometheus:h:9090?query=node_rapl_package_joules_total{job="kepler_pod_x"}`,
			check: func(t *testing.T, c Config) {
				if c.Kind != meters.Measured {
					t.Errorf("kind %s; want measured", c.Kind)
				}
			}},
		{name: "no query", spec: "prometheus:h:9090", errs: []string{"query= is required"}},
		{name: "no URL", spec: "prometheus:?query=x_joules", errs: []string{"no URL", "the server's base"}},
		{name: "mixed units", spec: "prometheus:h?query=a_joules_total%2Bb_microjoules", errs: []string{"mixes energy units"}},
		{name: "every problem at once", spec: "prometheus:h?query=x_joules&step=0s&poll=1ms&wrap=x&timeout=-1s",
			errs: []string{"step=0s", "poll=1ms", "wrap=x", "timeout=-1s"}},
		{name: "unknown option", spec: "prometheus:h?query=x_joules&rate=1", errs: []string{"unknown option(s) rate"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sp, err := meters.ParseSpec(tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			c, err := ParseConfig(sp)
			if tt.errs == nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				tt.check(t, c)
				return
			}
			if !errors.Is(err, meters.ErrSpec) {
				t.Fatalf("err = %v; want ErrSpec", err)
			}
			for _, s := range tt.errs {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q lacks %q", err, s)
				}
			}
		})
	}
}

func TestDeduper(t *testing.T) {
	// One scrape every 1000 ms at 300, 1300, 2300; steps every 250 ms
	// from 0.
	raw := func(step, ts model.Time, v float64) point { return point{key: "a", ts: ts, v: v} }
	expr := func(step model.Time, v float64) point { return point{key: "e", ts: step, v: v, stepTS: true} }
	tests := []struct {
		name  string
		in    []point
		kept  []model.Time
		diffs []time.Duration
	}{
		{"selector: one point per scrape stamp", []point{
			raw(0, -700, 1), raw(250, 300, 2), raw(500, 300, 2), raw(750, 300, 2), raw(1000, 300, 2),
			raw(1250, 300, 2), raw(1500, 1300, 2), raw(1750, 1300, 2), raw(2500, 2300, 5),
		}, []model.Time{-700, 300, 1300, 2300}, []time.Duration{time.Second, time.Second, time.Second}},
		{"expression: the first value is only a seed, then changes at their first step", []point{
			expr(0, 1), expr(250, 1), expr(500, 2), expr(750, 2), expr(1000, 2), expr(1250, 2), expr(1500, 3), expr(1750, 3),
		}, []model.Time{500, 1500}, []time.Duration{time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d deduper
			var kept []model.Time
			for _, p := range tt.in {
				if d.add(p) {
					kept = append(kept, p.ts)
				}
			}
			if fmt.Sprint(kept) != fmt.Sprint(tt.kept) || fmt.Sprint(d.diffs) != fmt.Sprint(tt.diffs) {
				t.Errorf("kept %v, diffs %v; want %v, %v", kept, d.diffs, tt.kept, tt.diffs)
			}
		})
	}
}

// fakeAPI answers time() with the server's now, and every other query
// with the answer given for it (or a bad_data error).
func fakeAPI(t *testing.T, skew time.Duration, answers map[string]string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query().Get("query")
		w.Header().Set("Content-Type", "application/json")
		if q == "time()" {
			now := float64(time.Now().Add(skew).UnixMilli()) / 1000
			fmt.Fprintf(w, `{"status":"success","data":{"resultType":"scalar","result":[%.3f,"%.3f"]}}`, now, now)
			return
		}
		if a, ok := answers[r.URL.Path+" "+q]; ok {
			fmt.Fprint(w, a)
			return
		}
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"status":"error","errorType":"bad_data","error":"1:1: parse error: unexpected end of input"}`)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestOpen(t *testing.T) {
	emptyMatrix := `{"status":"success","data":{"resultType":"matrix","result":[]}}`
	vector := func(name string) string {
		return `{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"` + name + `","instance":"a"},"value":[1,"5"]}]}}`
	}
	tests := []struct {
		name    string
		query   string
		answers map[string]string
		spec    bool // the error wraps ErrSpec
		parts   []string
		unitJ   float64
		kind    meters.Kind
	}{
		{name: "unit from the series' name", query: `{__name__="x_microjoules_total"}`, unitJ: 1e-6, kind: meters.Measured, answers: map[string]string{
			`/api/v1/query {__name__="x_microjoules_total"}`: vector("x_microjoules_total"),
		}},
		{name: "a model by the series' name", query: `{__name__=~"kepler_pod_cpu_joules_total"}`, unitJ: 1, kind: meters.Model, answers: map[string]string{
			`/api/v1/query {__name__=~"kepler_pod_cpu_joules_total"}`: vector("kepler_pod_cpu_joules_total"),
		}},
		{name: "refused query", query: "x_joules{", spec: true, parts: []string{"the server refused the query", "parse error"}},
		{name: "a range is not a counter's value", query: "x_joules[5m]", spec: true, parts: []string{"gives a matrix", "drop any [range]"},
			answers: map[string]string{"/api/v1/query x_joules[5m]": emptyMatrix}},
		{name: "no unit anywhere", query: "up", spec: true, parts: []string{"cannot tell the counter's unit", "give unit="},
			answers: map[string]string{"/api/v1/query up": vector("up")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := fakeAPI(t, 0, tt.answers)
			sp, err := meters.ParseSpec("prometheus:" + srv.URL + "?query=" + tt.query)
			if err != nil {
				t.Fatal(err)
			}
			m, err := Open(context.Background(), sp, meters.Env{})
			if tt.parts == nil {
				if err != nil {
					t.Fatal(err)
				}
				if m.Config().UnitJ != tt.unitJ || m.Info().Kind != tt.kind {
					t.Errorf("unit %g J, kind %s; want %g, %s", m.Config().UnitJ, m.Info().Kind, tt.unitJ, tt.kind)
				}
				return
			}
			if err == nil || errors.Is(err, meters.ErrSpec) != tt.spec {
				t.Fatalf("err = %v; want ErrSpec %v", err, tt.spec)
			}
			for _, p := range tt.parts {
				if !strings.Contains(err.Error(), p) {
					t.Errorf("error %q lacks %q", err, p)
				}
			}
		})
	}
	t.Run("not Prometheus", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, "<html>Grafana</html>")
		}))
		defer srv.Close()
		sp, _ := meters.ParseSpec("prometheus:" + srv.URL + "?query=x_joules")
		_, err := Open(context.Background(), sp, meters.Env{})
		if !meters.IsUnavailable(err) || !strings.Contains(err.Error(), "not an answer of Prometheus's API") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("nothing listens", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		addr := srv.Listener.Addr().String()
		srv.Close()
		sp, _ := meters.ParseSpec("prometheus:" + addr + "?query=x_joules")
		_, err := Open(context.Background(), sp, meters.Env{})
		if !meters.IsUnavailable(err) || !strings.Contains(err.Error(), "connection refused") {
			t.Fatalf("err = %v", err)
		}
	})
}

// TestClockOffset measures a server whose clock is 1.7 s ahead and wants
// its samples mapped back onto the harness clock.
func TestClockOffset(t *testing.T) {
	const skew = 1700 * time.Millisecond
	srv := fakeAPI(t, skew, map[string]string{
		"/api/v1/query x_joules": `{"status":"success","data":{"resultType":"vector","result":[]}}`,
	})
	sp, _ := meters.ParseSpec("prometheus:" + srv.URL + "?query=x_joules")
	m, err := Open(context.Background(), sp, meters.Env{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	srvNow := model.TimeFromUnixNano(now.Add(skew).UnixNano())
	// The harness clock is the wall clock here (clock.Now, read near
	// the wall): the mapping must undo the skew to within the exchange's
	// bound, a few ms on loopback.
	if d := m.hostTime(srvNow).Sub(now); d < -20*time.Millisecond || d > 20*time.Millisecond {
		t.Errorf("server time %v maps to %v off the harness clock; want near 0", srvNow, d)
	}
	rep := m.Report()
	if rep.ClockFit == nil || (rep.ClockFit.OffsetNs+float64(skew)) > float64(20*time.Millisecond) || (rep.ClockFit.OffsetNs+float64(skew)) < -float64(20*time.Millisecond) {
		t.Errorf("clock fit %+v; want an offset near %v", rep.ClockFit, -skew)
	}
}
