package wasm

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/academemes/harness/functions"
	"github.com/academemes/harness/targets"
)

// Benchmarks of the platform (see functions/README.md for the modes). The
// "small" module is memes-small (freestanding C, 55 KB), the "go" module
// memes built by Go for wasip1 (2.4 MB; its reactor build in warm mode).
// Goals on a 2-core machine: small cold p50 <= 100 us, warm >= 10k req/s,
// go cold p50 <= 6 ms; in snapshot mode, go p50 <= 1.3x warm's and
// >= 10x faster than cold's, req/s at 8 clients >= 0.9x warm's, start-up
// p50 < 100 us, and small no slower than small cold.
// `targets/wasm/bench.sh OUT.json` writes the figures and those ratios.
// BenchmarkColdBuilds (builds_bench_test.go) puts every function's Go,
// small C and Rust builds side by side in cold mode;
// BenchmarkConcurrentMemory (memory_bench_test.go) what 64 requests in
// flight hold in memory, mode by mode.

type benchModule struct{ name, variant string }

var benchModules = []benchModule{{"small", "small"}, {"go", ""}}

// benchModes are the modes every benchmark runs, side by side: the
// platform's own and the benchmark's (below), each one deployed as
// benchConfig says.
var benchModes = []targets.Mode{targets.Cold, targets.Prewarmed, targets.Snapshot, snapCOW, snapSegments, snapWarmup, targets.Warm, trusted, cached}

const (
	// trusted is warm mode with no_interrupt: what wazero's
	// close-on-context-done costs (timeouts can then no longer stop a
	// looping guest).
	trusted targets.Mode = "warm-trusted"
	// cached is cold mode with the response cache on: every benchmark
	// request repeats one input, so after the first all are hits, and the
	// difference to cold is what the cache saves on a repeated input.
	cached targets.Mode = "cold-cached"
	// The steps of snapshot mode's restoring, each on its own
	// (snapshot.go): targets.Snapshot is the default (the cheapest that
	// works for the module: a reset in place where the code is proven
	// not to keep state outside memory), snapCOW a fresh instance whose
	// memory maps the snapshot copy-on-write, snapSegments a fresh
	// instance whose data segments are the snapshot, snapWarmup the
	// default restore of a snapshot taken after one warm-up request.
	snapCOW      targets.Mode = "snapshot-cow"
	snapSegments targets.Mode = "snapshot-segments"
	snapWarmup   targets.Mode = "snapshot-warmup"
)

// benchWarmup is snapWarmup's warm-up request: another meme than the one
// the benchmarks ask for, so the snapshot does not hold their answer.
const benchWarmup = `{"id": 1}`

// benchConfig is how mode is deployed for the benchmarks.
func benchConfig(mode targets.Mode) FunctionConfig {
	cfg := FunctionConfig{Mode: mode, Pool: 16}
	switch mode {
	case trusted:
		cfg.Mode, cfg.NoInterrupt = targets.Warm, true
	case cached:
		cfg.Mode, cfg.Cache = targets.Cold, true
	case snapCOW:
		cfg.Mode, cfg.Restore = targets.Snapshot, RestoreCOW
	case snapSegments:
		cfg.Mode, cfg.Restore = targets.Snapshot, RestoreSegments
	case snapWarmup:
		cfg.Mode, cfg.Warmup = targets.Snapshot, benchWarmup
	}
	return cfg
}

// benchPlatform deploys memes in every mode for both modules, once per
// benchmark binary (compiling the Go builds takes seconds).
var benchPlatform = sync.OnceValues(func() (*Platform, error) {
	p, err := NewPlatform(Options{})
	if err != nil {
		return nil, err
	}
	for _, m := range benchModules {
		for _, mode := range benchModes {
			variant := m.variant
			cfg := benchConfig(mode)
			if variant == "" && usesReactor(cfg.Mode) {
				variant = "reactor"
			}
			mod, err := functions.Module(functions.FS(), "memes", variant)
			if err != nil {
				return nil, err
			}
			if err := p.Deploy(context.Background(), m.name+"-"+string(mode), mod, cfg); err != nil {
				return nil, err
			}
		}
	}
	return p, nil
})

func setupBench(b *testing.B) (*Platform, string) {
	b.Helper()
	p, err := benchPlatform()
	if err != nil {
		b.Fatal(err)
	}
	printRestores.Do(func() {
		// The default restore depends on the module and the machine: say
		// which one the "snapshot" figures are, as configuration lines
		// of the benchmark format ("restore-go-snapshot: reset"), which
		// bench.sh's JSON keeps.
		for _, fi := range p.Functions() {
			if s := fi.Snapshot; s != nil {
				fmt.Printf("restore-%s: %s%s\n", fi.Name, s.Restore, notReset(s.NotReset))
			}
		}
	})
	srv := httptest.NewServer(p.Handler(HandlerOptions{}))
	b.Cleanup(srv.Close)
	return p, srv.URL
}

var printRestores sync.Once

const benchBody = `{"id": 7}`

// eachBenchFunction runs bench as a sub-benchmark "MODULE/MODE" for every
// module and mode, with the function's URL once its instances are ready.
func eachBenchFunction(b *testing.B, bench func(b *testing.B, name, url string)) {
	p, base := setupBench(b)
	for _, m := range benchModules {
		for _, mode := range benchModes {
			name := m.name + "-" + string(mode)
			b.Run(m.name+"/"+string(mode), func(b *testing.B) {
				waitReady(b, p, name, baseMode(mode))
				bench(b, name, base+"/fn/"+name)
			})
		}
	}
}

// BenchmarkRoundTrip: one client, one request at a time, over loopback
// HTTP; reports the median round trip, and the median X-Start-Ns where
// requests paid a start.
func BenchmarkRoundTrip(b *testing.B) {
	client := benchClient()
	eachBenchFunction(b, func(b *testing.B, _, url string) {
		lat := make([]time.Duration, 0, b.N)
		var starts []int64
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			t0 := time.Now()
			resp, err := client.Post(url, "application/json", strings.NewReader(benchBody))
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			lat = append(lat, time.Since(t0))
			if resp.StatusCode != 200 {
				b.Fatalf("status %d", resp.StatusCode)
			}
			if ns, err := strconv.ParseInt(resp.Header.Get(targets.HeaderStartNs), 10, 64); err == nil {
				starts = append(starts, ns)
			}
		}
		b.StopTimer()
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1e3, "p50-us")
		b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1e3, "p99-us")
		if len(starts) > 0 {
			slices.Sort(starts)
			b.ReportMetric(float64(starts[len(starts)/2])/1e3, "start-p50-us")
		}
	})
}

// BenchmarkThroughput: 8 concurrent clients over loopback HTTP.
func BenchmarkThroughput(b *testing.B) {
	client := benchClient()
	eachBenchFunction(b, func(b *testing.B, _, url string) {
		b.SetParallelism(max(1, 8/runtime.GOMAXPROCS(0)))
		b.ReportAllocs()
		t0 := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				resp, err := client.Post(url, "application/json", strings.NewReader(benchBody))
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
		b.ReportMetric(float64(b.N)/time.Since(t0).Seconds(), "req/s")
	})
}

// BenchmarkServe: the platform alone, without the network and the client
// (allocations per request are the platform's).
func BenchmarkServe(b *testing.B) {
	p, _ := setupBench(b)
	h := p.Handler(HandlerOptions{})
	eachBenchFunction(b, func(b *testing.B, name, _ string) {
		body := []byte(benchBody)
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			req := httptest.NewRequest("POST", "/fn/"+name, bytes.NewReader(body))
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != 200 {
				b.Fatalf("status %d: %s", w.Code, w.Body)
			}
		}
	})
}

// BenchmarkStartup: making an instance alone (memory, data segments; no
// _start), what X-Start-Ns reports.
func BenchmarkStartup(b *testing.B) {
	p, _ := setupBench(b)
	for _, m := range benchModules {
		f := p.lookup(m.name + "-cold")
		b.Run(m.name, func(b *testing.B) {
			ctx := context.Background()
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				in, err := f.instantiate(ctx)
				if err != nil {
					b.Fatal(err)
				}
				in.mod.Close(ctx)
			}
		})
	}
}

// benchClient keeps its connections alive (idle connections for every
// concurrent client) and sends no Accept-Encoding (the platform does not
// compress; the benchmark measures the platform, not gzip negotiation).
func benchClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		MaxIdleConns:        64,
		MaxIdleConnsPerHost: 64,
		DisableCompression:  true,
	}}
}

// baseMode maps the benchmark's own modes to the modes they run in.
func baseMode(m targets.Mode) targets.Mode { return benchConfig(m).Mode }

// BenchmarkFibonacci30: fibonacci n=30 (naive recursion) in cold mode, the
// Go and the small build, interruptible (the default) and with
// no_interrupt: what wazero's check per call costs recursive code.
func BenchmarkFibonacci30(b *testing.B) {
	p, err := NewPlatform(Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	h := p.Handler(HandlerOptions{})
	for _, m := range benchModules {
		for _, trusted := range []bool{false, true} {
			name := "fibonacci-" + m.name + map[bool]string{false: "-interruptible", true: "-no_interrupt"}[trusted]
			mod, err := functions.Module(functions.FS(), "fibonacci", m.variant)
			if err != nil {
				b.Fatal(err)
			}
			if err := p.Deploy(context.Background(), name, mod, FunctionConfig{NoInterrupt: trusted, Timeout: Duration(time.Minute)}); err != nil {
				b.Fatal(err)
			}
			b.Run(strings.TrimPrefix(name, "fibonacci-"), func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					w := httptest.NewRecorder()
					h.ServeHTTP(w, httptest.NewRequest("POST", "/fn/"+name, strings.NewReader(`{"n":30}`)))
					if w.Code != 200 || !strings.Contains(w.Body.String(), `"result":832040`) {
						b.Fatalf("%d %s", w.Code, w.Body)
					}
				}
			})
		}
	}
}

// BenchmarkDeploy: deploying memes' Go build on a fresh platform, compiling
// it (an empty cache directory each time) or reading the compiled code
// from a cache directory a previous deploy filled: a target's Start with
// cache_dir: memory against the default.
func BenchmarkDeploy(b *testing.B) {
	mod, err := functions.Module(functions.FS(), "memes", "")
	if err != nil {
		b.Fatal(err)
	}
	deploy := func(b *testing.B, dir string) {
		p, err := NewPlatform(Options{CacheDir: dir})
		if err != nil {
			b.Fatal(err)
		}
		defer p.Close()
		if err := p.Deploy(context.Background(), "memes", mod, FunctionConfig{}); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("compile", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			deploy(b, b.TempDir())
		}
	})
	b.Run("disk-cache", func(b *testing.B) {
		dir := b.TempDir()
		deploy(b, dir)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			deploy(b, dir)
		}
	})
}
