package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/academemes/harness/clock"
	"github.com/academemes/harness/harness/internal/energy"
	"github.com/academemes/harness/harness/internal/runstore"
	"github.com/academemes/harness/meters"
	"github.com/academemes/harness/meters/agent"
	"github.com/academemes/harness/targets"
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
func advanceRAPL(t *testing.T, root string) { advanceRAPLWith(t, root, nil) }

// advanceRAPLWith is advanceRAPL with extraJ, when not nil, added to the
// package zone: energy the machine spent beyond its constant power.
func advanceRAPLWith(t *testing.T, root string, extraJ func() float64) {
	t.Helper()
	type zone struct {
		f     *os.File
		start uint64
		watts float64
		extra bool
	}
	var zones []zone
	for name, z := range raplPowers {
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
		zones = append(zones, zone{f, start, z.watts, name == "package-0" && extraJ != nil})
	}
	t0 := time.Now()
	write := func() {
		el := time.Since(t0).Seconds()
		for _, z := range zones {
			j := z.watts * el
			if z.extra {
				j += extraJ()
			}
			// Fixed width, in place: the meter keeps the file open.
			z.f.WriteAt([]byte(fmt.Sprintf("%020d\n", z.start+uint64(j*1e6))), 0)
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
	code, stdout, stderr := runMeters("record", "--meter", "agent:"+addr+"?token="+token, "--duration", "5s", "--out", out)
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

// busyEnergyJ is what each request to a "busy" target adds to the RAPL
// fixture's package counter, at the moment it is served.
const busyEnergyJ = 0.05

// busyServed counts the requests the busy targets served.
var busyServed atomic.Int64

// busyTarget is a test target whose every request costs busyEnergyJ on
// the fixture machine, so that the energy the analysis finds per request
// says whether samples and requests were put on one clock.
type busyTarget struct {
	spec targets.Spec
	srv  *httptest.Server
}

func (b *busyTarget) Info() targets.Info {
	return targets.Info{Name: b.spec.Name, Kind: "busy", Mode: targets.Warm, Function: b.spec.Function}
}
func (b *busyTarget) Start(context.Context) error {
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		busyServed.Add(1)
		io.WriteString(w, "ok")
	}))
	return nil
}
func (b *busyTarget) URL() *url.URL               { u, _ := url.Parse(b.srv.URL); return u }
func (b *busyTarget) Reset(context.Context) error { return nil }
func (b *busyTarget) Stop(context.Context) error  { b.srv.Close(); return nil }

func init() {
	targets.Register(targets.Kind{Name: "busy", Modes: []targets.Mode{targets.Warm},
		CheckFunction: func(string, string) error { return nil },
		New:           func(s targets.Spec) (targets.Target, error) { return &busyTarget{spec: s}, nil }})
}

// TestRunThroughAgent: a run whose meter is an agent with a clock 1.7 s
// ahead and 200 ppm fast. The fixture machine draws a constant 25 W and
// 0.05 J more for every request the busy target serves; the null target's
// requests cost it nothing. Only samples mapped onto the requests' clock
// give the busy target 0.05 J per request and the null target none: 1.7 s
// off, its load energy would fall into the cooldown and the next idle.
// The idle phase is 2 s: the fixture's counters are rewritten by a
// goroutine every millisecond, and on a loaded machine a stall of it
// moves the idle baseline by 25 W times the stall over the idle phase.
func TestRunThroughAgent(t *testing.T) {
	sysfs := raplFixture(t, "intel-1socket")
	advanceRAPLWith(t, sysfs, func() float64 { return busyEnergyJ * float64(busyServed.Load()) })
	sk := func() time.Time {
		d := clock.Now().Sub(clock.Start())
		return clock.Start().Add(1700*time.Millisecond + d + time.Duration(float64(d)*200e-6))
	}
	srv, err := agent.NewServer(agent.Config{Specs: []string{"rapl:sysfs=" + sysfs}, Token: "t0k", Env: meters.Env{Clock: sk, Fixture: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: srv.Handler()}
	go hs.Serve(ln)
	defer hs.Close()

	dir := t.TempDir()
	scenario := filepath.Join(dir, "agent.yaml")
	yaml := `name: agent
repeat: 1
idle: 2s
warmup: 0s
cooldown: 500ms
order: fixed
checks: off
meters: ["agent:` + ln.Addr().String() + `?token=t0k"]
targets:
  - {name: busy, kind: busy, function: memes}
  - {name: loadgen, kind: null, function: memes}
load:
  request: {method: POST, body: '{"id": 1}'}
  stages: [{rate: 50, duration: 2s}]
`
	if err := os.WriteFile(scenario, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	runs := filepath.Join(dir, "runs")
	code, out, errs := runCLI(t, "run", scenario, "--runs", runs, "--reports", filepath.Join(dir, "reports"))
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	if strings.Contains(out+errs, "t0k") {
		t.Error("the token appears in the run's output")
	}
	dirs, _ := filepath.Glob(filepath.Join(runs, "*-agent"))
	if len(dirs) != 1 {
		t.Fatalf("run directories %v", dirs)
	}
	run, err := runstore.Load(dirs[0])
	if err != nil {
		t.Fatal(err)
	}
	m := run.Meta.Meters[0]
	if m.Driver != "agent" || m.Host != runstore.HostLocal || m.Report == nil || m.Report.ClockFit == nil {
		t.Fatalf("meter in run.json: %+v", m)
	}
	f := m.Report.ClockFit
	// The true offset at the fit's reference is -1.7 s less the drift
	// accrued since the clock's start.
	at := time.Unix(0, f.AtNs).Sub(clock.Start().Add(1700 * time.Millisecond))
	trueOffset := -(1.7e9 + float64(at)*200e-6/(1+200e-6))
	if d := f.OffsetNs - trueOffset; d > f.BoundNs || -d > f.BoundNs {
		t.Errorf("offset %.0f ns, true %.0f ns, bound %.0f ns", f.OffsetNs, trueOffset, f.BoundNs)
	}
	t.Logf("offset %.0f ns off the true %.0f ns, drift %.3f ppm (true %.3f) ± %.3f, bound %.0f ns",
		f.OffsetNs-trueOffset, trueOffset, f.DriftPPM, (1/(1+200e-6)-1)*1e6, f.DriftBoundPPM, f.BoundNs)
	raw, err := os.ReadFile(filepath.Join(dirs[0], runstore.RunFile))
	if err != nil || strings.Contains(string(raw), "t0k") {
		t.Errorf("run.json holds the token (or cannot be read: %v)", err)
	}
	var sum energy.Summary
	data, err := os.ReadFile(filepath.Join(dirs[0], runstore.SummaryFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &sum); err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, ts := range sum.Targets {
		for _, p := range ts.Phases {
			if p.Phase == runstore.PhaseLoad && len(p.Energy) == 1 {
				got[ts.Name] = float64(p.Energy[0].DynamicJ) / float64(p.Energy[0].Requests)
				if c := p.Energy[0].Coverage; c < 0.9 {
					t.Errorf("%s: coverage %.2f", ts.Name, c)
				}
			}
		}
	}
	t.Logf("dynamic J per request %v; clock fit %+v", got, *f)
	if d := got["busy"]/busyEnergyJ - 1; !(d < 0.1 && d > -0.1) {
		t.Errorf("busy: %.4f J per request, want %.2f within 10 %%", got["busy"], busyEnergyJ)
	}
	if n, ok := got["loadgen"]; !ok || n > 0.1*busyEnergyJ || n < -0.1*busyEnergyJ {
		t.Errorf("loadgen (null): %.4f J per request, want about 0", n)
	}
}
