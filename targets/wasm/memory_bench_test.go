package wasm

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetratelabs/wazero/sys"

	"github.com/academemes/harness/targets"
)

// inFlight is how many requests BenchmarkConcurrentMemory holds at once.
const inFlight = 64

// memoryBenchModes are the modes whose memory is compared: cold against
// each step of snapshot mode, and warm for reference (prewarmed holds
// what cold holds, and the pseudo-modes what their base modes hold).
var memoryBenchModes = []targets.Mode{targets.Cold, targets.Snapshot, snapCOW, snapSegments, snapWarmup, targets.Warm}

// BenchmarkConcurrentMemory: what 64 requests in flight at once hold in
// memory, for each module and mode: the process's resident memory while
// they are held, less what it was before they started (rss-MB), and the
// same for its proportional set size (pss-MB), both in MiB for all 64.
//
// Method. memes does not sleep, and on two cores 64 clients do not keep 64
// of its requests in flight at once (each runs to its end in its time
// slice), so sampling the memory under load would measure the scheduler.
// Instead each of the 64 requests is made as the platform makes one (a
// fresh instance from f.instantiate, as invoke makes it on the request
// path; for a reset the same memory, since a reset copies pages back
// rather than dropping them) and runs until it writes its response: the
// call's clock (call.now, which the platform reads on a guest's reads and
// writes until it answers) holds it there, inside fd_write, until all 64
// are held. So every instance has started (a Go command has run its
// runtime's initialisation; a snapshot's has been restored) and computed
// its answer: all a request's memory is in use. Then the Go heap's free
// pages are returned to the kernel (debug.FreeOSMemory, as before the
// baseline), /proc/self/smaps_rollup is read, and the requests go on to
// their ends.
//
// RSS counts a page once per mapping: a snapshot's image, mapped
// copy-on-write by 64 instances, counts 64 times in RSS though it is in
// memory once. PSS divides each page among the mappings that share it, so
// pss-MB is what the 64 instances really cost the machine.
func BenchmarkConcurrentMemory(b *testing.B) {
	if _, err := os.Stat("/proc/self/smaps_rollup"); err != nil {
		b.Skipf("no /proc/self/smaps_rollup to read the memory from: %v", err)
	}
	p, _ := setupBench(b)
	for _, m := range benchModules {
		for _, mode := range memoryBenchModes {
			f := p.lookup(m.name + "-" + string(mode))
			b.Run(m.name+"/"+string(mode), func(b *testing.B) {
				var grew memUsage
				for i := 0; i < b.N; i++ {
					d, err := holdInFlight(context.Background(), f, inFlight, []byte(benchBody))
					if err != nil {
						b.Fatal(err)
					}
					grew = grew.max(d)
				}
				b.ReportMetric(float64(grew.rss)/(1<<20), "rss-MB")
				b.ReportMetric(float64(grew.pss)/(1<<20), "pss-MB")
			})
		}
	}
}

// holdInFlight runs n requests with body on f at once, holds each at its
// first write (see BenchmarkConcurrentMemory), and returns how much the
// process's memory grew while all n were held.
func holdInFlight(ctx context.Context, f *function, n int, body []byte) (memUsage, error) {
	runtime.GC()
	debug.FreeOSMemory()
	before, err := readMemUsage()
	if err != nil {
		return memUsage{}, err
	}
	held, release := make(chan struct{}, n), make(chan struct{})
	done := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() { done <- runHeld(ctx, f, body, held, release) })
	}
	var during memUsage
	for got := 0; got < n && err == nil; {
		select {
		case <-held:
			got++
		case err = <-done:
			if err == nil {
				err = errors.New("a request ended without writing a response")
			}
		}
	}
	if err == nil {
		debug.FreeOSMemory()
		during, err = readMemUsage()
	}
	close(release)
	wg.Wait()
	close(done)
	for e := range done {
		err = errors.Join(err, e)
	}
	if err != nil {
		return memUsage{}, err
	}
	return memUsage{rss: during.rss - before.rss, pss: during.pss - before.pss}, nil
}

// runHeld runs one request on a fresh instance of f, signals held at its
// first write of output and waits there for release.
func runHeld(ctx context.Context, f *function, body []byte, held chan<- struct{}, release <-chan struct{}) error {
	in, err := f.instantiate(ctx)
	if err != nil {
		return fmt.Errorf("instantiate: %w", err)
	}
	defer in.close()
	c := newCall(f.name, httptest.NewRequest("POST", "/fn/"+f.name, nil), body, int(f.cfg.MaxResponseBytes))
	// The platform reads the call's clock on each read and write of the
	// guest until it returns a time; a zero time lets the reads of the
	// input pass.
	c.now = func() time.Time {
		if !calledFrom(".fdWrite") {
			return time.Time{}
		}
		held <- struct{}{}
		<-release
		return time.Now()
	}
	_, err = in.mod.ExportedFunction(f.entry).Call(context.WithValue(ctx, callKey{}, c))
	if ee := (*sys.ExitError)(nil); errors.As(err, &ee) && ee.ExitCode() == 0 {
		err = nil
	}
	if err != nil {
		return fmt.Errorf("call %s: %w%s", f.entry, err, stderrTail(c.stderr))
	}
	if c.ioAt.IsZero() {
		return nil // never wrote: holdInFlight reports it
	}
	resp, err := parseOutput(c.stdout)
	if err == nil && resp.status != 200 {
		err = fmt.Errorf("status %d", resp.status)
	}
	return err
}

// calledFrom reports whether a function whose name ends in suffix is on
// the caller's stack.
func calledFrom(suffix string) bool {
	pcs := make([]uintptr, 32)
	frames := runtime.CallersFrames(pcs[:runtime.Callers(2, pcs)])
	for {
		fr, more := frames.Next()
		if strings.HasSuffix(fr.Function, suffix) {
			return true
		}
		if !more {
			return false
		}
	}
}

// memUsage is resident memory in bytes: rss counts a page once per mapping
// of it, pss divides each page among the mappings that share it.
type memUsage struct{ rss, pss int64 }

func (m memUsage) max(o memUsage) memUsage {
	return memUsage{rss: max(m.rss, o.rss), pss: max(m.pss, o.pss)}
}

// readMemUsage reads the process's memory from /proc/self/smaps_rollup
// (Linux 4.14+, Documentation/filesystems/proc.rst).
func readMemUsage() (memUsage, error) {
	b, err := os.ReadFile("/proc/self/smaps_rollup")
	if err != nil {
		return memUsage{}, err
	}
	return parseSmapsRollup(b)
}

// parseSmapsRollup takes the Rss and Pss lines of smaps_rollup's content
// ("Rss:   1234 kB").
func parseSmapsRollup(b []byte) (memUsage, error) {
	var m memUsage
	var seen int
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		key, rest, ok := strings.Cut(sc.Text(), ":")
		var dst *int64
		switch key {
		case "Rss":
			dst = &m.rss
		case "Pss":
			dst = &m.pss
		}
		if !ok || dst == nil {
			continue
		}
		num, unit, _ := strings.Cut(strings.TrimSpace(rest), " ")
		kb, err := strconv.ParseInt(num, 10, 64)
		if err != nil || unit != "kB" {
			return memUsage{}, fmt.Errorf("smaps_rollup: %s: want a number of kB, got %q", key, strings.TrimSpace(rest))
		}
		*dst = kb << 10
		seen++
	}
	if seen != 2 {
		return memUsage{}, errors.New("smaps_rollup: no Rss and Pss lines")
	}
	return m, nil
}

func TestParseSmapsRollup(t *testing.T) {
	for _, c := range []struct {
		name, in string
		want     memUsage
		err      bool
	}{
		{"linux 6", "55d0c0a00000-7ffd5a5f1000 ---p 00000000 00:00 0                          [rollup]\n" +
			"Rss:              123456 kB\nPss:               65432 kB\nPss_Dirty:         60000 kB\nPss_Anon:          50000 kB\n" +
			"Shared_Clean:      10000 kB\n", memUsage{rss: 123456 << 10, pss: 65432 << 10}, false},
		{"no pss", "Rss:              123456 kB\n", memUsage{}, true},
		{"empty", "", memUsage{}, true},
		{"not a number", "Rss: many kB\nPss: 1 kB\n", memUsage{}, true},
		{"other unit", "Rss: 1 MB\nPss: 1 kB\n", memUsage{}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := parseSmapsRollup([]byte(c.in))
			if (err != nil) != c.err || got != c.want {
				t.Errorf("parseSmapsRollup = %+v, %v; want %+v, error %v", got, err, c.want, c.err)
			}
		})
	}
}
