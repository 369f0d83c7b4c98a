package dockernode

import (
	"context"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/academemes/harness/targets"
	"github.com/academemes/harness/targets/internal/dockertest"
	_ "github.com/academemes/harness/targets/wasm" // the side-by-side baseline
)

// benchTarget starts a target of kind on the embedded memes function.
func benchTarget(b *testing.B, kind string, mode targets.Mode) targets.Target {
	b.Helper()
	if kind == Kind {
		dockertest.Engine(b)
	}
	tg, err := targets.New(targets.Spec{Name: "bench-" + kind, Kind: kind, Function: "memes", Mode: mode, RunID: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if err := tg.Start(ctx); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { tg.Stop(context.Background()) })
	return tg
}

// memesRequest is the scenarios' request: POST {"id": 7}.
func memesRequest(b *testing.B, c *http.Client, u string) http.Header {
	resp, err := c.Post(u, "application/json", strings.NewReader(`{"id": 7}`))
	if err != nil {
		b.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		b.Fatalf("status %s", resp.Status)
	}
	return resp.Header
}

// BenchmarkColdStart measures a cold request on docker-node (a container
// created, started, health-checked, asked and removed) and on the wasm
// target (a fresh instance) side by side, one request at a time. Besides
// ns/op (the whole request) it reports the start-up part from X-Start-Ns:
// start-p50-ms and start-p99-ms.
//
//	go test -run '^$' -bench ColdStart -benchtime 30x ./targets/dockernode
func BenchmarkColdStart(b *testing.B) {
	for _, kind := range []string{Kind, "wasm"} {
		b.Run(kind, func(b *testing.B) {
			tg := benchTarget(b, kind, targets.Cold)
			u := tg.URL().String()
			c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
			starts := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for b.Loop() {
				h := memesRequest(b, c, u)
				ns, err := strconv.ParseInt(h.Get(targets.HeaderStartNs), 10, 64)
				if h.Get(targets.HeaderColdStart) != "1" || err != nil {
					b.Fatalf("not a cold start: %v", h)
				}
				starts = append(starts, time.Duration(ns))
			}
			b.StopTimer()
			slices.Sort(starts)
			b.ReportMetric(float64(quantile(starts, 0.5))/1e6, "start-p50-ms")
			b.ReportMetric(float64(quantile(starts, 0.99))/1e6, "start-p99-ms")
		})
	}
}

// BenchmarkWarm measures the warm docker-node container: seq is one
// request at a time (latency, ns/op), par is 8 clients at once (req/s).
//
//	go test -run '^$' -bench Warm -benchtime 1s ./targets/dockernode
func BenchmarkWarm(b *testing.B) {
	for _, kind := range []string{Kind, "wasm"} {
		b.Run(kind, func(b *testing.B) {
			tg := benchTarget(b, kind, targets.Warm)
			u := tg.URL().String()
			c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			memesRequest(b, c, u) // the first request may compile
			b.Run("seq", func(b *testing.B) {
				for b.Loop() {
					memesRequest(b, c, u)
				}
			})
			b.Run("par", func(b *testing.B) {
				b.SetParallelism(4) // 4 x GOMAXPROCS clients
				t0 := time.Now()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						memesRequest(b, c, u)
					}
				})
				b.ReportMetric(float64(b.N)/time.Since(t0).Seconds(), "req/s")
			})
		})
	}
}
