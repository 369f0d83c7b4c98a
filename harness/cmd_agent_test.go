package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// raplPowers are the powers at which advanceRAPL moves the zones of the
// intel-1socket fixture, by channel name.
var raplPowers = map[string]struct {
	dir   string
	watts float64
}{
	"package-0": {"intel-rapl:0", 25},
	"core-0":    {"intel-rapl:0:0", 12},
	"uncore-0":  {"intel-rapl:0:1", 3},
	"dram-0":    {"intel-rapl:0:2", 4},
}

// advanceRAPL moves the intel-1socket fixture's counters under root at
// raplPowers, every millisecond, from the clock, until the test ends: a
// machine under test whose power is known.
func advanceRAPL(t *testing.T, root string) {
	t.Helper()
	type zone struct {
		f     *os.File
		start uint64
		watts float64
	}
	var zones []zone
	for _, z := range raplPowers {
		p := filepath.Join(root, "class", "powercap", z.dir, "energy_uj")
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		start, err := strconv.ParseUint(strings.TrimSpace(string(data)), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, 0o644)
		f, err := os.OpenFile(p, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		zones = append(zones, zone{f, start, z.watts})
	}
	t0 := time.Now()
	write := func() {
		el := time.Since(t0).Seconds()
		for _, z := range zones {
			// Fixed width, in place: the meter keeps the file open.
			z.f.WriteAt([]byte(fmt.Sprintf("%020d\n", z.start+uint64(z.watts*el*1e6))), 0)
		}
	}
	write()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				write()
			}
		}
	}()
	t.Cleanup(func() {
		close(stop)
		wg.Wait()
		for _, z := range zones {
			z.f.Close()
		}
	})
}

// startAgentCLI runs `harness agent` with args until the test ends and
// returns the address it serves on.
func startAgentCLI(t *testing.T, args ...string) (addr string, stdout, stderr *bytes.Buffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan int, 1)
	stdout, stderr = &bytes.Buffer{}, &bytes.Buffer{}
	go func() { done <- runAgent(ctx, args, stdout, &lockedBuffer{b: stderr}, ready) }()
	select {
	case addr = <-ready:
	case code := <-done:
		t.Fatalf("harness agent exited %d:\n%s", code, stderr)
	}
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != exitOK {
			t.Errorf("harness agent exited %d", code)
		}
	})
	return addr, stdout, stderr
}

// lockedBuffer lets the agent's log goroutines share one buffer.
type lockedBuffer struct {
	mu sync.Mutex
	b  *bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// TestAgentRecordsFixture: an agent on 127.0.0.2 serves a RAPL fixture
// whose counters move at known powers, and `harness meters record` reads
// it through the agent meter: every channel's power within 1 %, the clock
// fit with its bound in the sidecar, and the token nowhere.
func TestAgentRecordsFixture(t *testing.T) {
	sysfs := raplFixture(t, "intel-1socket")
	advanceRAPL(t, sysfs)
	const token = "Tok-3f9a"
	addr, agentOut, agentErr := startAgentCLI(t, "--listen", "127.0.0.2:0", "--token", token, "--meter", "rapl:sysfs="+sysfs, "--fixture")
	if !strings.Contains(agentOut.String(), "meter rapl: rapl") || !strings.Contains(agentOut.String(), "requests need the token") {
		t.Errorf("agent's output:\n%s", agentOut)
	}
	out := filepath.Join(t.TempDir(), "agent.csv")
	code, stdout, stderr := runMeters("record", "--meter", "agent:"+addr+"?token="+token, "--duration", "3s", "--out", out)
	if code != exitOK {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr)
	}
	t.Logf("stdout:\n%s", stdout)
	for name, z := range raplPowers {
		m := regexp.MustCompile(`(?m)^` + name + `\s+\d+\s+([0-9.]+) W`).FindStringSubmatch(stdout)
		if m == nil {
			t.Errorf("no line for %s", name)
			continue
		}
		got, _ := strconv.ParseFloat(m[1], 64)
		if d := (got - z.watts) / z.watts; d > 0.01 || d < -0.01 {
			t.Errorf("%s: %.3f W, want %.0f W within 1 %%", name, got, z.watts)
		}
	}
	rec := readRecording(t, out)
	r := rec.Meter.Report
	if r == nil || r.ClockFit == nil || r.ClockFit.BoundNs <= 0 || rec.Meter.Driver != "agent" || rec.Meter.Name != "agent:"+addr {
		t.Fatalf("sidecar meter %+v, report %+v: want the agent meter with a bounded clock fit", rec.Meter, r)
	}
	if !strings.Contains(stdout, "clock fit: offset") || !strings.Contains(stdout, "(bound)") {
		t.Errorf("stdout lacks the clock fit and its bound:\n%s", stdout)
	}
	sidecar, _ := os.ReadFile(strings.TrimSuffix(out, ".csv") + ".meta.json")
	samples, _ := os.ReadFile(out)
	for what, s := range map[string]string{"stdout": stdout, "stderr": stderr, "sidecar": string(sidecar), "samples": string(samples), "agent's output": agentOut.String() + agentErr.String()} {
		if strings.Contains(s, token) {
			t.Errorf("the token appears in the %s", what)
		}
	}
}

func TestAgentFlags(t *testing.T) {
	t.Setenv("HARNESS_AGENT_TOKEN", "")
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"open to others without a token", []string{"--listen", "0.0.0.0:0"}, exitUsage, "is reachable from other machines: give a token"},
		{"bad listen address", []string{"--listen", "nowhere"}, exitUsage, "want HOST:PORT"},
		{"bad meter spec", []string{"--listen", "127.0.0.1:0", "--meter", "rapl:rate=0"}, exitUsage, "rate="},
		{"unknown driver", []string{"--listen", "127.0.0.1:0", "--meter", "nope"}, exitUsage, `unknown driver "nope"`},
		{"stray argument", []string{"--listen", "127.0.0.1:0", "extra"}, exitUsage, "unexpected arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := runAgent(context.Background(), tt.args, &out, &errb, nil)
			if code != tt.code || !strings.Contains(errb.String(), tt.want) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, errb.String(), tt.code, tt.want)
			}
		})
	}
}
