package prometheus_test

import (
	"context"
	"math"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/academemes/harness/meters"
	"github.com/academemes/harness/meters/internal/promtest"
	_ "github.com/academemes/harness/meters/prometheus"
)

const raplArchive = "../rapl/testdata/intel-1socket.txtar"

// TestPrometheusReadsNodeExporter runs the real programs: node_exporter
// reads a RAPL tree whose counters advance at known powers (package-0
// wrapping during the recording), Prometheus scrapes it every second, and
// the meter reads the counters back through the HTTP API while the
// recording runs and after it. The energy recorded must match power ×
// time on the meter's own stamps within 2 %.
func TestPrometheusReadsNodeExporter(t *testing.T) {
	const (
		pkgW, dramW, coreW = 18.0, 3.0, 7.0
		maxUJ              = 262143328850
		interval           = time.Second
	)
	fx := promtest.MovingRAPL(t, raplArchive,
		promtest.Zone{Dir: "intel-rapl:0", Watts: pkgW},
		promtest.Zone{Dir: "intel-rapl:0:0", Watts: coreW},
		promtest.Zone{Dir: "intel-rapl:0:2", Watts: dramW},
	)
	ne := promtest.NodeExporter(t, fx.Root)
	u, _ := url.Parse(ne)
	srv := promtest.Prometheus(t, interval, u.Host)
	// package-0 wraps 2.5 s from now, 1.3 s into the recording; the
	// scrape before the recording, its baseline, comes after the jump.
	fx.Restart(t, "intel-rapl:0", maxUJ-2_500_000*pkgW)
	time.Sleep(interval + 200*time.Millisecond)
	base := "prometheus:" + srv + "?query="
	tests := []struct {
		name   string
		spec   string
		watts  float64
		stamps string // the sample_times detail starts with this
	}{
		{"selector, wrap undone", base + `node_rapl_package_joules_total{index="0"}&wrap=262143.32885`, pkgW, "the scrapes' own stamps"},
		{"selector", base + "node_rapl_dram_joules_total", dramW, "the scrapes' own stamps"},
		// An expression gives only step times; a fine step keeps the
		// placement error small.
		{"expression at step times", base + "sum(node_rapl_core_joules_total)&step=20ms", coreW, "query steps"},
	}
	const d = 3 * time.Second
	type result struct {
		samples []meters.Sample
		rep     meters.Report
		err     error
		stop    time.Time
	}
	res := make([]result, len(tests))
	var wg sync.WaitGroup
	for i, tt := range tests {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m, _, err := meters.Open(tt.spec, meters.Env{})
			if err != nil {
				res[i].err = err
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), d)
			defer cancel()
			var mu sync.Mutex
			res[i].err = m.Run(ctx, func(s meters.Sample) {
				mu.Lock()
				res[i].samples = append(res[i].samples, s)
				mu.Unlock()
			})
			res[i].rep = m.(meters.Reporter).Report()
		}()
	}
	wg.Wait()
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := res[i]
			if r.err != nil {
				t.Fatal(r.err)
			}
			got := r.samples
			// 3 s at one scrape a second and a scrape after the
			// stop; a selector's baseline is the scrape before the
			// start, an expression's the first after it.
			if len(got) < 4 {
				t.Fatalf("%d samples: %+v", len(got), got)
			}
			for j := 1; j < len(got); j++ {
				if !got[j].T.After(got[j-1].T) || got[j].Joules < got[j-1].Joules {
					t.Fatalf("samples %d and %d out of order or falling: %+v, %+v", j-1, j, got[j-1], got[j])
				}
			}
			first, last := got[0], got[len(got)-1]
			span := last.T.Sub(first.T).Seconds()
			want := tt.watts * span
			rel := math.Abs(last.Joules-want) / want
			t.Logf("recorded %.4f J over %.3f s in %d samples; the fixture gave %.4f J: off by %.3f %%", last.Joules, span, len(got), want, 100*rel)
			if rel > 0.02 {
				t.Errorf("recorded %.4f J over %.3f s; the fixture gave %.4f J (%.1f W): off by %.2f %%", last.Joules, span, want, tt.watts, 100*rel)
			}
			if st, _ := r.rep.Details["sample_times"].(string); !strings.HasPrefix(st, tt.stamps) {
				t.Errorf("sample_times %q; want %q...", st, tt.stamps)
			}
			iv, _ := r.rep.Details["scrape_interval_s"].(float64)
			if math.Abs(iv-interval.Seconds()) > 0.05 {
				t.Errorf("scrape interval found %v s; want %v", iv, interval.Seconds())
			}
			if !strings.Contains(strings.Join(r.rep.Warnings, "\n"), "the scrape interval, not this meter, limits the time resolution") {
				t.Errorf("no word on the scrape interval in the warnings: %q", r.rep.Warnings)
			}
			if r.rep.Counters["resets"] != 0 {
				t.Errorf("%d resets", r.rep.Counters["resets"])
			}
			if f := r.rep.ClockFit; f == nil || math.Abs(f.OffsetNs) > float64(50*time.Millisecond) {
				// Same machine, same clock: the offset is the
				// harness clock's own distance from the wall, small.
				t.Errorf("clock fit %+v; want an offset near 0 on one machine", f)
			}
		})
	}
	if n := res[0].rep.Counters["wraps"]; n != 1 {
		t.Errorf("package: %d wraps; want 1", n)
	}
}
