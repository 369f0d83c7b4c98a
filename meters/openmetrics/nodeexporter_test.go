package openmetrics_test

import (
	"context"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/academemes/harness/meters"
	"github.com/academemes/harness/meters/internal/promtest"
	_ "github.com/academemes/harness/meters/openmetrics"
)

// raplArchive is the rapl driver's fixture of an Intel client part:
// package-0 with core, uncore and dram zones, ranges 262143328850 µJ.
const raplArchive = "../rapl/testdata/intel-1socket.txtar"

// recordFor runs the meter spec for d and returns its samples and report.
func recordFor(t *testing.T, spec string, d time.Duration) ([]meters.Sample, meters.Report) {
	t.Helper()
	m, _, err := meters.Open(spec, meters.Env{})
	if err != nil {
		t.Fatalf("open %s: %v", spec, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var got []meters.Sample
	if err := m.Run(ctx, func(s meters.Sample) { got = append(got, s) }); err != nil {
		t.Fatalf("run %s: %v", spec, err)
	}
	var rep meters.Report
	if r, ok := m.(meters.Reporter); ok {
		rep = r.Report()
	}
	return got, rep
}

// TestNodeExporterRAPL scrapes the real node_exporter reading a RAPL tree
// whose counters advance at known powers, one of them wrapping during the
// recording, and checks the energy recorded against power × time on the
// meter's own stamps, within 2 %.
func TestNodeExporterRAPL(t *testing.T) {
	const (
		pkgW, dramW = 18.0, 3.0
		maxUJ       = 262143328850 // the fixture's max_energy_range_uj
	)
	// One node_exporter per meter: each fixture file takes one reader
	// at a time, and two meters scraping one exporter would read it at
	// once.
	exporter := func() (*promtest.RAPL, string) {
		fx := promtest.MovingRAPL(t, raplArchive,
			promtest.Zone{Dir: "intel-rapl:0", Watts: pkgW},
			promtest.Zone{Dir: "intel-rapl:0:2", Watts: dramW},
		)
		return fx, "openmetrics:" + promtest.NodeExporter(t, fx.Root)
	}
	fx, wrapping := exporter()
	_, plain := exporter()
	// package-0 wraps 1.5 s from now, in the middle of the recording.
	fx.Restart(t, "intel-rapl:0", maxUJ-1_500_000*pkgW)
	tests := []struct {
		name  string
		spec  string
		watts float64
	}{
		{"package wraps, wrap= undoes it", wrapping + "?metric=node_rapl_package_joules_total&labels=index=0&rate=10&wrap=262143.32885", pkgW},
		{"dram, no label filter", plain + "?metric=node_rapl_dram_joules_total&rate=10", dramW},
	}
	const d = 3 * time.Second
	var wg sync.WaitGroup
	results := make([][]meters.Sample, len(tests))
	reports := make([]meters.Report, len(tests))
	for i, tt := range tests {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], reports[i] = recordFor(t, tt.spec, d)
		}()
	}
	wg.Wait()
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := results[i]
			if len(got) < 10 {
				t.Fatalf("%d samples in %v at 10 Hz", len(got), d)
			}
			first, last := got[0], got[len(got)-1]
			if first.Joules != 0 || !math.IsNaN(first.Watts) {
				t.Errorf("first sample %+v: want Joules 0 and Watts NaN", first)
			}
			span := last.T.Sub(first.T).Seconds()
			want := tt.watts * span
			rel := math.Abs(last.Joules-want) / want
			t.Logf("recorded %.4f J over %.3f s in %d samples; the fixture gave %.4f J: off by %.3f %%", last.Joules, span, len(got), want, 100*rel)
			if rel > 0.02 {
				t.Errorf("recorded %.4f J over %.3f s; the fixture gave %.4f J (%.2f W): off by %.2f %%", last.Joules, span, want, tt.watts, 100*rel)
			}
			for j := 1; j < len(got); j++ {
				if got[j].Joules < got[j-1].Joules {
					t.Fatalf("energy went down at sample %d: %g then %g J", j, got[j-1].Joules, got[j].Joules)
				}
			}
			if n := reports[i].Counters["resets"]; n != 0 {
				t.Errorf("%d resets counted; want 0 (wrap= given or no wrap)", n)
			}
		})
	}
	if n := reports[0].Counters["wraps"]; n != 1 {
		t.Errorf("package: %d wraps counted; want 1", n)
	}
}

// TestNodeExporterMissingMetric opens a metric the exporter lacks and
// wants the error to name what it has.
func TestNodeExporterMissingMetric(t *testing.T) {
	fx := promtest.MovingRAPL(t, raplArchive)
	url := promtest.NodeExporter(t, fx.Root)
	_, _, err := meters.Open("openmetrics:"+url+"?metric=node_rapl_psys_joules_total", meters.Env{})
	if err == nil || !meters.IsUnavailable(err) || !strings.Contains(err.Error(), "node_rapl_package_joules_total") {
		t.Fatalf("err = %v; want unavailable, naming the energy counters that are there", err)
	}
}
