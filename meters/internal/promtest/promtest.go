// Package promtest holds what the tests of the openmetrics and prometheus
// drivers share: a RAPL fixture tree whose counters advance at known
// powers, and the real programs from Debian, prometheus-node-exporter
// reading that tree and prometheus scraping it, each on a free loopback
// port and stopped when the test ends. A missing program skips the test
// with the reason, and fails it under CI=true, so that CI never passes by
// skipping (.ci/run installs both).
package promtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/tools/txtar"
)

// Missing skips the test with the reason, or fails it under CI=true.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true needs this: "+format, args...)
	}
	t.Skipf("skipping: "+format, args...)
}

// Need returns the path of the first of names found on PATH, or skips the
// test (fails it under CI=true).
func Need(t testing.TB, pkg string, names ...string) string {
	t.Helper()
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	Missing(t, "no %s on PATH (Debian: apt-get install %s)", strings.Join(names, " or "), pkg)
	return ""
}

// Zone is one powercap zone of a moving fixture.
type Zone struct {
	Dir   string  // under class/powercap: "intel-rapl:0"
	Watts float64 // the power at which its energy_uj advances
	// StartUJ replaces the fixture's energy_uj at the start; 0 keeps it.
	// (RAPL.Restart sets it later.)
	StartUJ uint64
}

// RAPL is a fixture sysfs tree whose energy_uj files advance at known
// powers while the test runs, as the kernel's do: node_exporter reads them
// at each scrape.
type RAPL struct {
	// Root is the sysfs root, for --path.sysfs.
	Root string
	stop chan struct{}
	done sync.WaitGroup

	mu    sync.Mutex
	zones []movingZone
}

type movingZone struct {
	Zone
	start, max uint64
	t0         time.Time // when the counter was start
	path, tmp  string
}

// writeEvery is how often the counters are rewritten: node_exporter sees
// a value at most this old, 2 ms of energy at the zone's power.
const writeEvery = 2 * time.Millisecond

// MovingRAPL extracts the txtar fixture at archive (meters/rapl/testdata's
// layout: files under sys/) into a temporary directory and advances each
// zone's energy_uj at its power, wrapping at its max_energy_range_uj,
// until the test ends.
func MovingRAPL(t testing.TB, archive string, zones ...Zone) *RAPL {
	t.Helper()
	ar, err := txtar.ParseFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, f := range ar.Files {
		if f.Name == "MODES" {
			continue
		}
		p := filepath.Join(dir, filepath.FromSlash(f.Name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, f.Data, 0o444); err != nil {
			t.Fatal(err)
		}
	}
	r := &RAPL{Root: filepath.Join(dir, "sys"), stop: make(chan struct{})}
	tmp := filepath.Join(dir, "tmp")
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, z := range zones {
		zd := filepath.Join(r.Root, "class/powercap", z.Dir)
		read := func(name string) uint64 {
			b, err := os.ReadFile(filepath.Join(zd, name))
			if err != nil {
				t.Fatalf("fixture %s: zone %s: %v", archive, z.Dir, err)
			}
			v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
			if err != nil {
				t.Fatalf("fixture %s: zone %s: %s: %v", archive, z.Dir, name, err)
			}
			return v
		}
		mz := movingZone{Zone: z, start: read("energy_uj"), max: read("max_energy_range_uj"),
			path: filepath.Join(zd, "energy_uj"), tmp: filepath.Join(tmp, fmt.Sprintf("energy_uj.%d", i))}
		if z.StartUJ != 0 {
			mz.start = z.StartUJ
		}
		r.zones = append(r.zones, mz)
	}
	now := time.Now()
	for i := range r.zones {
		r.zones[i].t0 = now
	}
	if err := r.write(now); err != nil {
		t.Fatal(err)
	}
	r.done.Add(1)
	go r.advance(t)
	t.Cleanup(func() {
		close(r.stop)
		r.done.Wait()
	})
	return r
}

// advance rewrites the counters every writeEvery until the test ends.
func (r *RAPL) advance(t testing.TB) {
	defer r.done.Done()
	tick := time.NewTicker(writeEvery)
	defer tick.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-tick.C:
			// Now, not the tick's time: a tick that waited in the
			// channel may predate a Restart.
			if err := r.write(time.Now()); err != nil {
				t.Errorf("moving RAPL fixture: %v", err)
				return
			}
		}
	}
}

// Restart sets the zone's counter to uj now, from where it goes on at its
// power: a test that needs a wrap at a known moment (after the programs
// started, which takes a while) puts the counter just below
// max_energy_range_uj.
func (r *RAPL) Restart(t testing.TB, dir string, uj uint64) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range r.zones {
		if r.zones[i].Dir == dir {
			r.zones[i].start, r.zones[i].t0 = uj, time.Now()
			return
		}
	}
	t.Fatalf("moving RAPL fixture: no moving zone %s", dir)
}

// write sets every zone's energy_uj for time now, taken under the lock
// that Restart takes. Each file is replaced
// whole by a rename, so that a reader never sees one half written.
func (r *RAPL) write(now time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, z := range r.zones {
		v := z.At(now.Sub(z.t0))
		if err := os.WriteFile(z.tmp, []byte(strconv.FormatUint(v, 10)+"\n"), 0o444); err != nil {
			return err
		}
		if err := os.Rename(z.tmp, z.path); err != nil {
			return err
		}
	}
	return nil
}

// At is the zone's energy_uj after d.
func (z movingZone) At(d time.Duration) uint64 {
	d = max(d, 0)
	e := z.start + uint64(math.Round(z.Watts*d.Seconds()*1e6))
	if z.max > 0 {
		e %= z.max
	}
	return e
}

// NodeExporter starts the Debian prometheus-node-exporter (or an upstream
// node_exporter) with only its RAPL collector, reading sysfs, and returns
// its /metrics URL once RAPL metrics are served.
func NodeExporter(t testing.TB, sysfs string) string {
	t.Helper()
	bin := Need(t, "prometheus-node-exporter", "prometheus-node-exporter", "node_exporter")
	addr := FreeAddr(t)
	Start(t, bin, "--path.sysfs="+sysfs, "--web.listen-address="+addr,
		"--collector.disable-defaults", "--collector.rapl")
	u := "http://" + addr + "/metrics"
	WaitFor(t, 15*time.Second, "node_exporter serving RAPL at "+u, func() error {
		body, err := get(u)
		if err == nil && !strings.Contains(body, "node_rapl_") {
			err = fmt.Errorf("no node_rapl_ metric on the page")
		}
		return err
	})
	return u
}

// Prometheus starts the Debian prometheus with a generated configuration
// that scrapes each of targets (HOST:PORT, path /metrics) every interval,
// its data in a temporary directory, and returns its base URL once every
// target has been scraped.
func Prometheus(t testing.TB, interval time.Duration, targets ...string) string {
	t.Helper()
	bin := Need(t, "prometheus", "prometheus")
	dir := t.TempDir()
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "global:\n  scrape_interval: %s\n  scrape_timeout: %s\n  evaluation_interval: 1m\n", promDuration(interval), promDuration(interval))
	fmt.Fprintf(&cfg, "scrape_configs:\n  - job_name: rapl\n    static_configs:\n      - targets: [%s]\n", strings.Join(targets, ", "))
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := FreeAddr(t)
	Start(t, bin, "--config.file="+cfgPath, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	base := "http://" + addr
	WaitFor(t, 30*time.Second, "prometheus ready at "+base, func() error {
		_, err := get(base + "/-/ready")
		return err
	})
	WaitFor(t, 10*time.Second+3*interval, "prometheus's first scrape of "+strings.Join(targets, ", "), func() error {
		body, err := get(base + "/api/v1/query?query=" + url.QueryEscape("count(up == 1)"))
		if err != nil {
			return err
		}
		var r struct {
			Data struct {
				Result []struct {
					Value [2]any `json:"value"`
				} `json:"result"`
			} `json:"data"`
		}
		if err := json.Unmarshal([]byte(body), &r); err != nil {
			return err
		}
		if len(r.Data.Result) == 0 || r.Data.Result[0].Value[1] != strconv.Itoa(len(targets)) {
			return fmt.Errorf("not every target is up yet: %s", body)
		}
		return nil
	})
	return base
}

// promDuration writes d in Prometheus's duration syntax (whole
// milliseconds: "1s", "250ms").
func promDuration(d time.Duration) string {
	if d%time.Second == 0 {
		return fmt.Sprintf("%ds", d/time.Second)
	}
	return fmt.Sprintf("%dms", d/time.Millisecond)
}

// FreeAddr returns a loopback address with a port that was free a moment
// ago, for a program that takes its listen address as a flag.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Start runs a program until the test ends; its output is logged if the
// test fails.
func Start(t testing.TB, bin string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, args...)
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("%s: %v", bin, err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		cancel()
		<-exited
		if t.Failed() {
			t.Logf("%s %s:\n%s", filepath.Base(bin), strings.Join(args, " "), out.String())
		}
	})
}

// WaitFor polls check every 20 ms until it returns nil, and fails the test
// with its last error after limit.
func WaitFor(t testing.TB, limit time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s: %v", limit, what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func get(u string) (string, error) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(u)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return string(b), fmt.Errorf("%s: HTTP %s", u, resp.Status)
	}
	return string(b), nil
}

// syncBuffer is a bytes.Buffer that a program's output and the test may
// use at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
