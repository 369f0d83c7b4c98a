package wasm

import (
	"context"
	"io"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/academemes/harness/functions"
	"github.com/academemes/harness/targets"
)

// coldBuildInputs is a light input per function: the benchmark measures
// what a cold request costs each build, start-up first, not the workload.
var coldBuildInputs = map[string]string{
	"memes": `{"id":7}`, "fibonacci": `{"n":10}`, "factorial": `{"n":100}`, "prime": `{"n":100}`, "exponential": `{"n":10}`,
}

// BenchmarkColdBuilds: every function in cold mode, each of its builds (Go,
// the small C build where there is one, Rust) side by side in one run: the
// median round trip over loopback HTTP (p50-us) and the median start-up the
// platform reports (start-p50-us). The sub-benchmarks are FUNCTION/BUILD,
// so `benchstat -col /build` (or bench.sh's JSON) puts the builds beside
// each other per function.
func BenchmarkColdBuilds(b *testing.B) {
	p, err := NewPlatform(Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	srv := httptest.NewServer(p.Handler(HandlerOptions{}))
	defer srv.Close()
	client := benchClient()
	names, err := functions.Names(functions.FS())
	if err != nil {
		b.Fatal(err)
	}
	for _, fn := range names {
		for _, build := range []struct{ name, variant string }{{"go", ""}, {"small", functions.Small}, {"rust", functions.Rust}} {
			mod, err := functions.Module(functions.FS(), fn, build.variant)
			if err != nil {
				continue // this function has no such build
			}
			name := fn + "-" + build.name + "-cold"
			if err := p.Deploy(context.Background(), name, mod, FunctionConfig{Mode: targets.Cold, Timeout: Duration(time.Minute)}); err != nil {
				b.Fatal(err)
			}
			b.Run(fn+"/build="+build.name, func(b *testing.B) {
				lat := make([]time.Duration, 0, b.N)
				var starts []int64
				for i := 0; i < b.N; i++ {
					t0 := time.Now()
					resp, err := client.Post(srv.URL+"/fn/"+name, "application/json", strings.NewReader(coldBuildInputs[fn]))
					if err != nil {
						b.Fatal(err)
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					lat = append(lat, time.Since(t0))
					if resp.StatusCode != 200 || resp.Header.Get(targets.HeaderColdStart) != "1" {
						b.Fatalf("status %d, cold %q", resp.StatusCode, resp.Header.Get(targets.HeaderColdStart))
					}
					if ns, err := strconv.ParseInt(resp.Header.Get(targets.HeaderStartNs), 10, 64); err == nil {
						starts = append(starts, ns)
					}
				}
				b.StopTimer()
				slices.Sort(lat)
				b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1e3, "p50-us")
				if len(starts) > 0 {
					slices.Sort(starts)
					b.ReportMetric(float64(starts[len(starts)/2])/1e3, "start-p50-us")
				}
			})
		}
	}
}
