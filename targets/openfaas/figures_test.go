package openfaas_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/academemes/harness/targets"
	_ "github.com/academemes/harness/targets/dockernode"
	"github.com/academemes/harness/targets/internal/nodeimage"
	_ "github.com/academemes/harness/targets/openfaas"
	"github.com/academemes/harness/targets/openfaas/internal/faastest"
	_ "github.com/academemes/harness/targets/wasm"
)

// TestFigures measures cold-start and warm latency of the memes function
// on wasm, docker-node and openfaas (the stand-in provider on the local
// Docker Engine) in one go, one request at a time. It prints a table and
// asserts nothing about speed. Run it with
//
//	HARNESS_FIGURES=1 go test -count=1 -run TestFigures -v ./targets/openfaas/
func TestFigures(t *testing.T) {
	if os.Getenv("HARNESS_FIGURES") == "" {
		t.Skip("set HARNESS_FIGURES=1 to measure the platforms side by side")
	}
	ctx := context.Background()
	cli, err := nodeimage.Connect(ctx)
	if err != nil {
		t.Skipf("no Docker Engine: %v", err)
	}
	defer cli.Close()
	p, err := faastest.Start(faastest.Config{Docker: cli, User: "admin", Password: "figures"})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	const cold, warm = 20, 300
	body := []byte(`{"id": 7}`)
	ofOpts := func(method string) map[string]any {
		return map[string]any{"gateway": p.URL.String(), "username": "admin", "password": "figures",
			"image_source": "local-node", "cold_start_method": method}
	}
	cases := []struct {
		name, kind string
		mode       targets.Mode
		opts       map[string]any
		n          int
	}{
		{"wasm", "wasm", targets.Cold, nil, cold},
		{"docker-node", "docker-node", targets.Cold, map[string]any{"image_source": "local-node"}, cold},
		{"openfaas scale-to-zero", "openfaas", targets.Cold, ofOpts("scale-to-zero"), cold},
		{"openfaas remove-container", "openfaas", targets.Cold, ofOpts("remove-container"), cold},
		{"openfaas redeploy", "openfaas", targets.Cold, ofOpts("redeploy"), cold},
		{"wasm", "wasm", targets.Warm, nil, warm},
		{"docker-node", "docker-node", targets.Warm, map[string]any{"image_source": "local-node"}, warm},
		{"openfaas", "openfaas", targets.Warm, ofOpts("auto"), warm},
	}
	fmt.Printf("%-28s %-5s %5s %10s %10s %10s %12s\n", "target", "mode", "n", "p50 ms", "p90 ms", "max ms", "start p50 ms")
	for _, c := range cases {
		tg, err := targets.New(targets.Spec{Name: "fig-" + c.kind, Kind: c.kind, Function: "memes", Mode: c.mode,
			Options: c.opts, FunctionsDir: "../../functions", RunID: "figures"})
		if err != nil {
			t.Fatal(err)
		}
		if err := tg.Start(ctx); err != nil {
			tg.Stop(ctx)
			t.Fatalf("%s: %v", c.name, err)
		}
		var lat, starts []float64
		for i := 0; i < c.n; i++ {
			if c.mode == targets.Cold {
				// Let the target take the function down after the last
				// request, as a sequential load with a pause would.
				time.Sleep(300 * time.Millisecond)
			}
			t0 := time.Now()
			resp, err := http.Post(tg.URL().String(), "application/json", bytes.NewReader(body))
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			lat = append(lat, float64(time.Since(t0).Microseconds())/1000)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("%s: %s", c.name, resp.Status)
			}
			var ns int64
			if _, err := fmt.Sscan(resp.Header.Get(targets.HeaderStartNs), &ns); err == nil {
				starts = append(starts, float64(ns)/1e6)
			}
		}
		if r, ok := tg.(targets.Reporter); ok && c.kind == "openfaas" {
			t.Logf("%s report: cold_start_method=%v", c.name, r.Report()["cold_start_method"])
		}
		if err := tg.Stop(ctx); err != nil {
			t.Errorf("%s: stop: %v", c.name, err)
		}
		slices.Sort(lat)
		slices.Sort(starts)
		sp := "-"
		if len(starts) > 0 {
			sp = fmt.Sprintf("%.2f", q(starts, 0.5))
		}
		fmt.Printf("%-28s %-5s %5d %10.3f %10.3f %10.3f %12s\n", c.name, c.mode, c.n, q(lat, 0.5), q(lat, 0.9), lat[len(lat)-1], sp)
	}
}

// q is the p-quantile of sorted xs (nearest rank).
func q(xs []float64, p float64) float64 {
	i := int(p*float64(len(xs))+0.5) - 1
	return xs[max(0, min(i, len(xs)-1))]
}

// TestServeStandIn runs the stand-in provider for a while, so that
// `harness run` can be pointed at it (an OpenFaaS installation on this
// machine's Docker Engine, for trying the openfaas target without one):
//
//	HARNESS_STANDIN_FOR=10m go test -count=1 -run TestServeStandIn -v ./targets/openfaas/ &
//	# it prints OPENFAAS_URL=... and the credentials; then
//	OPENFAAS_URL=... OPENFAAS_PASSWORD=standin harness run scenarios/openfaas.yaml
func TestServeStandIn(t *testing.T) {
	d, err := time.ParseDuration(os.Getenv("HARNESS_STANDIN_FOR"))
	if err != nil {
		t.Skip("set HARNESS_STANDIN_FOR=10m to serve a stand-in OpenFaaS provider for that long")
	}
	ctx := context.Background()
	cli, err := nodeimage.Connect(ctx)
	if err != nil {
		t.Skipf("no Docker Engine: %v", err)
	}
	defer cli.Close()
	p, err := faastest.Start(faastest.Config{Docker: cli, User: "admin", Password: "standin",
		RefuseZero: os.Getenv("HARNESS_STANDIN_REFUSE_ZERO") != ""})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	fmt.Printf("OPENFAAS_URL=%s OPENFAAS_USERNAME=admin OPENFAAS_PASSWORD=standin\n", p.URL)
	if f := os.Getenv("HARNESS_STANDIN_URL_FILE"); f != "" {
		if err := os.WriteFile(f, []byte(p.URL.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(d)
}
