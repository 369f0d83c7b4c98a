package openmetrics

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/academemes/harness/meters"
)

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name, spec string
		check      func(t *testing.T, c Config)
		errs       []string // substrings of the error; nil: no error
	}{
		{name: "defaults", spec: "openmetrics:127.0.0.1:9100?metric=node_rapl_package_joules_total",
			check: func(t *testing.T, c Config) {
				if c.URL.String() != "http://127.0.0.1:9100/metrics" || c.Rate != DefaultRate || c.UnitJ != 1 || c.Wrap != 0 || len(c.Labels) != 0 {
					t.Errorf("got %+v", c)
				}
			}},
		{name: "all options", spec: "openmetrics:https://h:9102/x/metrics?metric=kepler_container_joules_total&labels=container_name=memes+pod_name=memes-1&rate=5&wrap=100&timeout=1s&giveup=10s",
			check: func(t *testing.T, c Config) {
				if c.URL.String() != "https://h:9102/x/metrics" || c.Rate != 5 || c.Wrap != 100 || c.Timeout != time.Second || c.GiveUp != 10*time.Second {
					t.Errorf("got %+v", c)
				}
				if len(c.Labels) != 2 || c.Labels["container_name"] != "memes" || c.Labels["pod_name"] != "memes-1" {
					t.Errorf("labels %v", c.Labels)
				}
			}},
		{name: "microjoules from the name", spec: "openmetrics:h:8080?metric=scaph_host_energy_microjoules",
			check: func(t *testing.T, c Config) {
				if c.UnitJ != 1e-6 || c.UnitFrom != "the metric's name" {
					t.Errorf("unit %g from %s", c.UnitJ, c.UnitFrom)
				}
			}},
		{name: "unit= for a name that does not say", spec: "openmetrics:h:1?metric=pdu_energy_total&unit=kWh",
			check: func(t *testing.T, c Config) {
				if c.UnitJ != 3.6e6 {
					t.Errorf("unit %g", c.UnitJ)
				}
			}},
		{name: "a literal plus in a label value", spec: "openmetrics:h:1?metric=x_joules&labels=k=a%2Bb",
			check: func(t *testing.T, c Config) {
				if c.Labels["k"] != "a+b" {
					t.Errorf("labels %v", c.Labels)
				}
			}},
		{name: "Kepler's container counter is a model", spec: "openmetrics:h:9102?metric=kepler_container_joules_total",
			check: func(t *testing.T, c Config) {
				if c.Kind != meters.Model {
					t.Errorf("kind %s; want model", c.Kind)
				}
			}},
		{name: "node counters are measured, kind= overrides", spec: "openmetrics:h:9102?metric=kepler_node_package_joules_total&kind=model",
			check: func(t *testing.T, c Config) {
				if c.Kind != meters.Model {
					t.Errorf("kind %s; want model", c.Kind)
				}
			}},
		{name: "RAPL is measured", spec: "openmetrics:h:9100?metric=node_rapl_package_joules_total",
			check: func(t *testing.T, c Config) {
				if c.Kind != meters.Measured {
					t.Errorf("kind %s; want measured", c.Kind)
				}
			}},
		{name: "bad kind", spec: "openmetrics:h:1?metric=x_joules&kind=guess", errs: []string{"kind=guess"}},
		{name: "no metric", spec: "openmetrics:h:1", errs: []string{"metric= is required"}},
		{name: "no URL", spec: "openmetrics:?metric=x_joules", errs: []string{"no URL"}},
		{name: "unit unknown", spec: "openmetrics:h:1?metric=pdu_energy_total", errs: []string{"does not say its unit", "unit="}},
		{name: "every problem at once", spec: "openmetrics:ftp://h?metric=x_joules&rate=0&wrap=-1&labels=9x=1&timeout=soon",
			errs: []string{`scheme "ftp"`, "rate=0", "wrap=-1", `"9x" is not a label name`, "timeout=soon"}},
		{name: "unknown option", spec: "openmetrics:h:1?metric=x_joules&every=1s", errs: []string{"unknown option(s) every"}},
		{name: "bad port", spec: "openmetrics:h:99999?metric=x_joules", errs: []string{"not a TCP port"}},
		{name: "bad unit", spec: "openmetrics:h:1?metric=x_joules&unit=W", errs: []string{"not an energy unit"}},
		{name: "labels not pairs", spec: "openmetrics:h:1?metric=x_joules&labels=index", errs: []string{`"index" is not name=value`}},
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

// exporter serves pages one per scrape, the last one again and again. A
// page "500" answers an HTTP error instead.
type exporter struct {
	mu    sync.Mutex
	pages []string
	n     int
}

func (e *exporter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	p := e.pages[min(e.n, len(e.pages)-1)]
	e.n++
	e.mu.Unlock()
	if p == "500" {
		http.Error(w, "collector failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	fmt.Fprint(w, p)
}

func (e *exporter) served() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.n
}

// kepler writes a Kepler-like page with one counter per container, in
// joules.
func kepler(values map[string]float64) string {
	var b strings.Builder
	b.WriteString("# HELP kepler_container_joules_total Aggregated value in joules\n# TYPE kepler_container_joules_total counter\n")
	for _, c := range []string{"memes", "sidecar", "other"} {
		if v, ok := values[c]; ok {
			fmt.Fprintf(&b, "kepler_container_joules_total{container_name=%q,pod_name=\"p\",mode=\"dynamic\"} %g\n", c, v)
		}
	}
	b.WriteString("# TYPE kepler_node_info gauge\nkepler_node_info{cpu_architecture=\"x\"} 1\n")
	return b.String()
}

// runPages opens spec against pages and records until every page was
// served (and one more scrape), returning the samples' joules and the
// report.
func runPages(t *testing.T, spec string, pages []string) ([]float64, meters.Report) {
	t.Helper()
	ex := &exporter{pages: pages}
	srv := httptest.NewServer(ex)
	defer srv.Close()
	sp, err := meters.ParseSpec(strings.Replace(spec, "URL", srv.URL, 1))
	if err != nil {
		t.Fatal(err)
	}
	m, err := Open(context.Background(), sp, meters.Env{})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var joules []float64
	done := make(chan error, 1)
	go func() {
		done <- m.Run(ctx, func(s meters.Sample) {
			joules = append(joules, s.Joules)
			// Open's scrape took the first page; stop once the last
			// one was read.
			if ex.served() > len(pages) {
				cancel()
			}
		})
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not stop")
	}
	return joules, m.Report()
}

func TestRunCounters(t *testing.T) {
	tests := []struct {
		name   string
		spec   string
		pages  []string
		joules []float64 // after Open's scrape of pages[0]
		counts map[string]int64
		warn   string // a substring of a warning; "" for none
	}{
		{name: "containers summed, each reset on its own",
			spec: "openmetrics:URL?metric=kepler_container_joules_total&labels=pod_name=p+mode=dynamic&rate=100",
			pages: []string{
				kepler(map[string]float64{"memes": 0}),
				kepler(map[string]float64{"memes": 100, "sidecar": 7}),
				kepler(map[string]float64{"memes": 110, "sidecar": 9}),
				kepler(map[string]float64{"memes": 4, "sidecar": 10}), // memes restarted
				kepler(map[string]float64{"memes": 6, "sidecar": 10, "other": 50}),
				kepler(map[string]float64{"memes": 6, "sidecar": 10, "other": 51}),
			},
			joules: []float64{0, 100, 112, 117, 119, 120},
			counts: map[string]int64{"resets": 1, "series": 3},
			warn:   "taken as reset to 0"},
		{name: "label filter picks one container",
			spec: "openmetrics:URL?metric=kepler_container_joules_total&labels=container_name=sidecar&rate=100",
			pages: []string{
				kepler(map[string]float64{"memes": 0, "sidecar": 1}),
				kepler(map[string]float64{"memes": 100, "sidecar": 3}),
			},
			joules: []float64{0, 2},
			counts: map[string]int64{"series": 1}},
		{name: "microjoules wrap undone",
			spec: "openmetrics:URL?metric=scaph_host_energy_microjoules&rate=100&wrap=1000000",
			pages: []string{
				"# TYPE scaph_host_energy_microjoules counter\nscaph_host_energy_microjoules 900000\n",
				"# TYPE scaph_host_energy_microjoules counter\nscaph_host_energy_microjoules 950000\n",
				"# TYPE scaph_host_energy_microjoules counter\nscaph_host_energy_microjoules 250000\n",
			},
			joules: []float64{0, 0.05, 0.35},
			counts: map[string]int64{"wraps": 1, "resets": 0}},
		{name: "RAPL passed on without wrap= is flagged",
			spec: "openmetrics:URL?metric=node_rapl_package_joules_total&rate=100",
			pages: []string{
				"node_rapl_package_joules_total{index=\"0\"} 262140\n",
				"node_rapl_package_joules_total{index=\"0\"} 2\n",
			},
			joules: []float64{0, 2},
			counts: map[string]int64{"resets": 1},
			warn:   "give wrap="},
		{name: "a failed scrape is a gap, not a reading",
			spec: "openmetrics:URL?metric=x_joules_total&rate=100",
			pages: []string{
				"x_joules_total 10\n",
				"500",
				"x_joules_total 12\n",
			},
			joules: []float64{0, 2},
			counts: map[string]int64{"failed_scrapes": 1}},
		{name: "no series matches yet: 0 J, said so",
			spec: "openmetrics:URL?metric=kepler_container_joules_total&labels=container_name=nope&rate=100",
			pages: []string{
				kepler(map[string]float64{"memes": 1}),
				kepler(map[string]float64{"memes": 5}),
			},
			joules: []float64{0, 0},
			warn:   "not a measurement"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Open read pages[0]; Run starts with it again so that its
			// baseline is the same reading.
			pages := append([]string{tt.pages[0]}, tt.pages...)
			got, rep := runPages(t, tt.spec, pages)
			if len(got) < len(tt.joules) {
				t.Fatalf("joules %v; want %v", got, tt.joules)
			}
			for i, want := range tt.joules {
				if math.Abs(got[i]-want) > 1e-9 {
					t.Fatalf("joules %v; want %v", got[:len(tt.joules)], tt.joules)
				}
			}
			for k, want := range tt.counts {
				if rep.Counters[k] != want {
					t.Errorf("counter %s = %d; want %d", k, rep.Counters[k], want)
				}
			}
			ws := strings.Join(rep.Warnings, "\n")
			if tt.warn == "" && ws != "" {
				t.Errorf("unexpected warnings: %s", ws)
			}
			if tt.warn != "" && !strings.Contains(ws, tt.warn) {
				t.Errorf("warnings %q lack %q", ws, tt.warn)
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	tests := []struct {
		name  string
		page  string
		spec  string
		unav  bool
		parts []string
	}{
		{"missing metric names the energy counters there", kepler(map[string]float64{"memes": 1}),
			"openmetrics:URL?metric=kepler_node_joules_total", true, []string{"no metric kepler_node_joules_total", "kepler_container_joules_total"}},
		{"a histogram is not a counter", "# TYPE x_joules histogram\nx_joules_bucket{le=\"1\"} 1\nx_joules_bucket{le=\"+Inf\"} 1\nx_joules_sum 1\nx_joules_count 1\n",
			"openmetrics:URL?metric=x_joules", false, []string{"is a histogram"}},
		{"not the text format", "<html>a login page</html>\n",
			"openmetrics:URL?metric=x_joules", false, []string{"not the Prometheus text format"}},
		{"HTTP error", "500", "openmetrics:URL?metric=x_joules", true, []string{"500"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(&exporter{pages: []string{tt.page}})
			defer srv.Close()
			sp, _ := meters.ParseSpec(strings.Replace(tt.spec, "URL", srv.URL, 1))
			_, err := Open(context.Background(), sp, meters.Env{})
			if err == nil {
				t.Fatal("opened")
			}
			if meters.IsUnavailable(err) != tt.unav {
				t.Errorf("unavailable = %v; want %v (%v)", meters.IsUnavailable(err), tt.unav, err)
			}
			for _, p := range tt.parts {
				if !strings.Contains(err.Error(), p) {
					t.Errorf("error %q lacks %q", err, p)
				}
			}
		})
	}
	t.Run("nothing listens", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		addr := srv.Listener.Addr().String()
		srv.Close()
		sp, _ := meters.ParseSpec("openmetrics:" + addr + "?metric=x_joules")
		_, err := Open(context.Background(), sp, meters.Env{})
		if !meters.IsUnavailable(err) || !strings.Contains(err.Error(), "connection refused") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestBodyLimit(t *testing.T) {
	// A page over the limit is refused, not parsed cut short.
	r := &limitedReader{r: strings.NewReader("x_joules 1\nx_joules 2\n"), n: 11}
	var b [64]byte
	n, _ := r.Read(b[:])
	if n != 11 || r.over {
		t.Fatalf("first read %d bytes, over %v", n, r.over)
	}
	if _, err := r.Read(b[:]); err == nil || !r.over {
		t.Fatalf("read past the limit: over %v, err %v", r.over, err)
	}
}
