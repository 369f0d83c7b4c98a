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
	"sync/atomic"
	"syscall"
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

// RAPL is a fixture sysfs tree whose energy_uj counters advance at known
// powers while the test runs. As the kernel computes a sysfs attribute when
// it is read, each energy_uj is a named pipe that a goroutine answers with
// the counter at the moment a reader opens it: node_exporter reads the
// value of that instant, never one a writer left behind, however busy the
// machine.
type RAPL struct {
	// Root is the sysfs root, for --path.sysfs.
	Root string
	stop atomic.Bool
	done sync.WaitGroup

	mu    sync.Mutex
	zones []movingZone
}

type movingZone struct {
	Zone
	start, max uint64
	t0         time.Time // when the counter was start
	path       string
}

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
	r := &RAPL{Root: filepath.Join(dir, "sys")}
	now := time.Now()
	for _, z := range zones {
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
		mz := movingZone{Zone: z, start: read("energy_uj"), max: read("max_energy_range_uj"), t0: now,
			path: filepath.Join(zd, "energy_uj")}
		if z.StartUJ != 0 {
			mz.start = z.StartUJ
		}
		if err := os.Remove(mz.path); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Mkfifo(mz.path, 0o444); err != nil {
			t.Fatalf("moving RAPL fixture: mkfifo %s: %v", mz.path, err)
		}
		r.zones = append(r.zones, mz)
	}
	for i := range r.zones {
		r.done.Add(1)
		go r.serve(t, i)
	}
	t.Cleanup(func() {
		r.stop.Store(true)
		done := make(chan struct{})
		go func() {
			r.done.Wait()
			close(done)
		}()
		for {
			// Open each pipe for reading, so that its server, blocked
			// until a reader comes, wakes and sees the stop; again
			// until all have, since a server may only now be about to
			// block.
			for _, z := range r.zones {
				if f, err := os.OpenFile(z.path, os.O_RDONLY|syscall.O_NONBLOCK, 0); err == nil {
					f.Close()
				}
			}
			select {
			case <-done:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	})
	return r
}

// serve answers every reader of zone i's energy_uj with the counter at the
// moment the reader opened it, until the test ends. A pipe has no
// readers of its own: after each answer serve waits until the reader has
// closed its end, or the next open would hand the same reader a second
// value. So each file takes one reader at a time, as node_exporter reads
// it: one program per fixture tree.
func (r *RAPL) serve(t testing.TB, i int) {
	defer r.done.Done()
	path := r.zones[i].path
	for !r.stop.Load() {
		// Blocks until a reader opens the pipe.
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			t.Errorf("moving RAPL fixture: %v", err)
			return
		}
		r.mu.Lock()
		v := r.zones[i].At(time.Since(r.zones[i].t0))
		r.mu.Unlock()
		// A reader that went away (the cleanup's) makes this fail with
		// EPIPE; nothing was waiting for the value.
		f.Write([]byte(strconv.FormatUint(v, 10) + "\n"))
		f.Close()
		// Until the reader closes, a writer may open without blocking;
		// once it has, the kernel refuses that (ENXIO).
		for !r.stop.Load() {
			g, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NONBLOCK, 0)
			if err != nil {
				break
			}
			g.Close()
			time.Sleep(100 * time.Microsecond)
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
