package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/academemes/harness/clock"
	"github.com/academemes/harness/meters"
)

// testWatts are the powers of the test meter's channels.
var testWatts = []float64{20, 4}

// testStart is the agent time of the test meter's latest first reading;
// testEmitted counts the samples its latest recording emitted.
var testStart, testEmitted atomic.Int64

// testMeter reads "agenttest": two channels at testWatts, a reading every
// 10 ms stamped with the agent's clock, joules counted from the powers
// and the agent's time. failafter=N makes it fail after N readings.
type testMeter struct {
	env       meters.Env
	failAfter int
}

func (m *testMeter) Info() meters.Info {
	return meters.Info{Name: "agenttest", Driver: "agenttest", Kind: meters.Measured, Description: "constant powers",
		Channels:  []meters.Channel{{Name: "pkg", InTotal: true}, {Name: "dram", InTotal: true, FullScaleW: 50}},
		Precision: meters.Precision{PowerStepW: 0.5, Source: "made up"}}
}

func (m *testMeter) Run(ctx context.Context, emit func(meters.Sample)) error {
	var t0 time.Time
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for n := 0; ; n++ {
		if m.failAfter > 0 && n == m.failAfter {
			return errors.New("sensor unplugged")
		}
		now := m.env.Clock()
		if n == 0 {
			t0 = now
			testStart.Store(now.UnixNano())
			testEmitted.Store(0)
		}
		for ch, w := range testWatts {
			emit(meters.Sample{Channel: ch, T: now, Watts: w, Joules: w * now.Sub(t0).Seconds()})
			testEmitted.Add(1)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

func init() {
	meters.Register(meters.Driver{Name: "agenttest", Open: func(sp meters.Spec, env meters.Env) (meters.Meter, error) {
		m := &testMeter{env: env}
		if v := sp.Options["failafter"]; v != "" {
			m.failAfter, _ = strconv.Atoi(v)
		}
		return m, nil
	}})
}

// skew is an agent clock offset and drifting against the harness clock:
// agent = t0 + offset + d*(1+drift) where d is the harness time since t0.
type skew struct {
	offset time.Duration
	drift  float64
}

var t0 = clock.Now()

func (s skew) clock() clock.Func {
	return func() time.Time {
		d := clock.Now().Sub(t0)
		return t0.Add(s.offset + d + time.Duration(float64(d)*s.drift))
	}
}

// harness is the harness time at which the agent's clock read a.
func (s skew) harness(a time.Time) float64 {
	return float64(t0.UnixNano()) + float64(a.Sub(t0)-s.offset)/(1+s.drift)
}

// agentProc is an agent serving on a fixed address, that a test can kill
// and start again.
type agentProc struct {
	t    *testing.T
	addr string
	cfg  Config
	srv  *http.Server
	a    *Server
}

func startAgent(t *testing.T, addr string, cfg Config) *agentProc {
	t.Helper()
	p := &agentProc{t: t, addr: addr, cfg: cfg}
	p.start()
	t.Cleanup(p.kill)
	return p
}

func (p *agentProc) start() {
	p.t.Helper()
	if p.cfg.Specs == nil {
		p.cfg.Specs = []string{"agenttest"}
	}
	a, err := NewServer(p.cfg)
	if err != nil {
		p.t.Fatal(err)
	}
	var ln net.Listener
	for i := 0; ; i++ {
		ln, err = net.Listen("tcp", p.addr)
		if err == nil || i == 50 {
			break
		}
		time.Sleep(20 * time.Millisecond) // the old one's port is being released
	}
	if err != nil {
		p.t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	p.a, p.srv = a, &http.Server{Handler: a.Handler()}
	go p.srv.Serve(ln)
}

// kill stops the agent as a crash would: connections dropped, recordings
// gone.
func (p *agentProc) kill() {
	if p.srv != nil {
		p.srv.Close()
		p.a.Close()
		p.srv = nil
	}
}

// syncLog is a log writer for concurrent use.
type syncLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// openMeter opens the agent meter with short timings for tests.
func openMeter(t *testing.T, spec string, log io.Writer) *Meter {
	t.Helper()
	sp, err := meters.ParseSpec(spec)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Open(sp, meters.Env{Log: log})
	if err != nil {
		t.Fatal(err)
	}
	m.syncEvery, m.retryEvery, m.staleAfter = 200*time.Millisecond, 50*time.Millisecond, time.Second
	return m
}

// record runs m for d, or until stop is closed after d, and returns what
// it emitted.
func record(t *testing.T, m *Meter, during func(ctx context.Context)) ([]meters.Sample, error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var samples []meters.Sample
	done := make(chan error, 1)
	go func() {
		done <- m.Run(ctx, func(s meters.Sample) { samples = append(samples, s) })
	}()
	during(ctx)
	cancel()
	select {
	case err := <-done:
		return samples, err
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return 30 s after its context ended")
	}
	return nil, nil
}

func sleep(d time.Duration) func(context.Context) {
	return func(context.Context) { time.Sleep(d) }
}

// TestRecordThroughAgent records through an agent whose clock is the
// harness clock, and through one 1.7 s ahead and running 200 ppm fast:
// the samples carry the agent meter's powers, every mapped time is
// within the recorded bound of the harness time at which the agent read
// it, and the fit recovers the offset and the drift within their bounds.
func TestRecordThroughAgent(t *testing.T) {
	tests := []struct {
		name string
		skew skew
	}{
		{"same clock", skew{}},
		{"1.7 s ahead, 200 ppm fast", skew{offset: 1700 * time.Millisecond, drift: 200e-6}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := startAgent(t, "127.0.0.1:0", Config{Token: "s3cret-token", Env: meters.Env{Clock: tt.skew.clock()}})
			var log syncLog
			m := openMeter(t, "agent:"+p.addr+"?token=s3cret-token", &log)
			samples, err := record(t, m, sleep(2500*time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			rep := m.Report()
			f := rep.ClockFit
			if f == nil {
				t.Fatal("no clock fit in the report")
			}
			t.Logf("%d samples; fit offset %.0f ns at %d, drift %.2f ± %.2f ppm, bound %.0f ns, %d points, counters %v",
				len(samples), f.OffsetNs, f.AtNs, f.DriftPPM, f.DriftBoundPPM, f.BoundNs, f.Points, rep.Counters)
			if n := testEmitted.Load(); len(samples) != int(n) || n < 20 {
				t.Fatalf("%d samples of the %d the agent's meter read", len(samples), n)
			}
			if len(rep.Gaps) > 0 {
				t.Errorf("gaps %+v in an undisturbed recording", rep.Gaps)
			}
			worst := 0.0
			first, last := map[int]meters.Sample{}, map[int]meters.Sample{}
			for _, s := range samples {
				if _, ok := first[s.Channel]; !ok {
					first[s.Channel] = s
				}
				last[s.Channel] = s
			}
			for ch, w := range testWatts {
				a, b := first[ch], last[ch]
				got := (b.Joules - a.Joules) / b.T.Sub(a.T).Seconds()
				if math.Abs(got-w)/w > 0.01 {
					t.Errorf("channel %d: %.3f W, want %.1f W within 1 %%", ch, got, w)
				}
			}
			trueOffset := func(agentNs int64) float64 {
				return tt.skew.harness(time.Unix(0, agentNs)) - float64(agentNs)
			}
			if d := math.Abs(f.OffsetNs - trueOffset(f.AtNs)); d > f.BoundNs {
				t.Errorf("offset %.0f ns is %.0f ns from the true %.0f ns: beyond the bound %.0f ns", f.OffsetNs, d, trueOffset(f.AtNs), f.BoundNs)
			}
			trueDrift := (1/(1+tt.skew.drift) - 1) * 1e6
			if d := math.Abs(f.DriftPPM - trueDrift); d > f.DriftBoundPPM {
				t.Errorf("drift %.3f ppm is %.3f ppm from the true %.3f ppm: beyond the bound %.3f ppm", f.DriftPPM, d, trueDrift, f.DriftBoundPPM)
			}
			// Every sample: its joules say the agent time it was read at
			// (J = W * (a - a0), a0 the agent time of the first reading),
			// from which the skew gives the harness time; the mapping
			// must be within the bound of it.
			a0 := testStart.Load()
			for _, s := range samples {
				if s.Channel != 0 {
					continue
				}
				a := a0 + int64(math.Round(s.Joules/testWatts[0]*1e9))
				worst = math.Max(worst, math.Abs(float64(s.T.UnixNano())-tt.skew.harness(time.Unix(0, a))))
			}
			// The joules carry the float rounding of a product of
			// nanoseconds: allow 1 µs beside the bound.
			if worst > f.BoundNs+1000 {
				t.Errorf("a sample is %.0f ns from the harness time it was read at, beyond the bound %.0f ns", worst, f.BoundNs)
			}
			for _, out := range []string{m.Info().Name, log.String(), mustJSON(t, rep)} {
				if strings.Contains(out, "s3cret") {
					t.Errorf("the token appears in %q", out)
				}
			}
			if want := "agent:" + p.addr; m.Info().Name != want {
				t.Errorf("name %q, want %q", m.Info().Name, want)
			}
			if f.BoundNs <= 0 || f.BoundNs > float64(50*time.Millisecond) {
				t.Errorf("bound %.0f ns: want a positive bound, and on loopback well under 50 ms", f.BoundNs)
			}
		})
	}
}

func mustJSON(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestOpenErrors: each way of not reaching a meter says what is wrong and
// what to do, and wraps the sentinel callers branch on.
func TestOpenErrors(t *testing.T) {
	p := startAgent(t, "127.0.0.1:0", Config{Token: "right"})
	closed := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return ln.Addr().String()
	}()
	t.Setenv(TokenEnv, "")
	tests := []struct {
		name   string
		spec   string
		env    string // $HARNESS_AGENT_TOKEN
		is     error
		want   []string
		absent []string
	}{
		{"wrong token", "agent:" + p.addr + "?token=wrong", "", meters.ErrPermission, []string{"refused the token", "give the token the agent was started with"}, []string{"wrong", "right"}},
		{"no token", "agent:" + p.addr, "", meters.ErrPermission, []string{"refused the token", "it wants one", TokenEnv}, nil},
		{"token from the environment", "agent:" + p.addr + "?meter=nope", "right", meters.ErrUnavailable, []string{`has no meter "nope"`, "it serves: agenttest"}, []string{"right"}},
		{"unreachable", "agent:" + closed, "", meters.ErrUnavailable, []string{"cannot be reached", "connection refused", "harness agent --listen " + closed}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(TokenEnv, tt.env)
			sp, err := meters.ParseSpec(tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			_, err = Open(sp, meters.Env{})
			if !errors.Is(err, tt.is) {
				t.Fatalf("error %v, want one wrapping %v", err, tt.is)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			for _, w := range tt.absent {
				if strings.Contains(err.Error(), w) {
					t.Errorf("error %q gives away %q", err, w)
				}
			}
		})
	}
}

func TestCheck(t *testing.T) {
	tests := []struct {
		spec, want string
	}{
		{"agent:127.0.0.1:9100", ""},
		{"agent:[::1]:9100?meter=rapl&token=x", ""},
		{"agent:pi.local:9100?meter=rapl-2", ""},
		{"agent:", "want agent:HOST:PORT"},
		{"agent:pi.local", "want agent:HOST:PORT"},
		{"agent::9100", "want agent:HOST:PORT"},
		{"agent:pi:0", `port "0"`},
		{"agent:pi:http", `port "http"`},
		{"agent:pi:9100?rate=5&token=abc", "unknown option(s) rate"},
	}
	d, ok := meters.Lookup(Name)
	if !ok {
		t.Fatal("driver not registered")
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			sp, err := meters.ParseSpec(tt.spec)
			if err == nil {
				err = d.Check(sp)
			}
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, meters.ErrSpec) {
				t.Fatalf("Check error %v, want a spec error with %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "abc") {
				t.Errorf("error %q shows the token", err)
			}
		})
	}
}

// TestAgentKilledAndRestarted: the agent dies mid-recording and comes back
// (another process: another boot, another clock offset). The readings
// before are kept, the time between is one gap, the energy goes on rising
// from where it was, and the log says what happened.
func TestAgentKilledAndRestarted(t *testing.T) {
	p := startAgent(t, "127.0.0.1:0", Config{Env: meters.Env{Clock: skew{offset: 300 * time.Millisecond}.clock()}})
	var log syncLog
	m := openMeter(t, "agent:"+p.addr, &log)
	var killed, restarted time.Time
	samples, err := record(t, m, func(context.Context) {
		time.Sleep(800 * time.Millisecond)
		p.kill()
		killed = clock.Now() // every reading of the first agent is before
		time.Sleep(700 * time.Millisecond)
		p.cfg.Env.Clock = skew{offset: -2 * time.Second, drift: 50e-6}.clock()
		restarted = clock.Now() // and every reading of the second after
		p.start()
		time.Sleep(800 * time.Millisecond)
	})
	if err != nil {
		t.Fatal(err)
	}
	rep := m.Report()
	t.Logf("log:\n%s\nreport: %s", log.String(), mustJSON(t, rep))
	if len(rep.Gaps) != 1 {
		t.Fatalf("gaps %+v, want one", rep.Gaps)
	}
	g := rep.Gaps[0]
	if g.Start.After(killed) || g.End.Before(restarted) || !strings.Contains(g.Reason, "restarted") {
		t.Errorf("gap %v to %v (%s), want one from before the kill at %v to after the restart at %v", g.Start, g.End, g.Reason, killed, restarted)
	}
	var before, after int
	lastJ := map[int]float64{}
	for _, s := range samples {
		if s.T.Before(g.Start) || s.T.Equal(g.Start) {
			before++
		}
		if !s.T.Before(g.End) {
			after++
		}
		if j, ok := lastJ[s.Channel]; ok && s.Joules < j {
			t.Fatalf("channel %d: energy fell from %v J to %v J", s.Channel, j, s.Joules)
		}
		lastJ[s.Channel] = s.Joules
	}
	if before < 10 || after < 10 || after != int(testEmitted.Load()) {
		t.Errorf("%d samples before the gap and %d after, of the %d the second agent read: want readings on both sides, and all of the second's", before, after, testEmitted.Load())
	}
	if rep.Counters["agent_restarts"] != 1 {
		t.Errorf("counters %v, want one restart", rep.Counters)
	}
	for _, w := range []string{"cannot be reached", "restarted after"} {
		if !strings.Contains(log.String(), w) {
			t.Errorf("log lacks %q:\n%s", w, log.String())
		}
	}
	if !strings.Contains(strings.Join(rep.Warnings, "\n"), "2 clock fits") {
		t.Errorf("warnings %q lack the two clock fits", rep.Warnings)
	}
}

// cutter is a TCP proxy whose connections a test can cut, as a network
// failure would, while the agent behind it goes on.
type cutter struct {
	ln      net.Listener
	target  string
	mu      sync.Mutex
	conns   []net.Conn
	refused bool
}

func newCutter(t *testing.T, target string) *cutter {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &cutter{ln: ln, target: target}
	t.Cleanup(func() { ln.Close(); c.cut(false) })
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			c.mu.Lock()
			if c.refused {
				c.mu.Unlock()
				in.Close()
				continue
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				c.mu.Unlock()
				in.Close()
				continue
			}
			c.conns = append(c.conns, in, out)
			c.mu.Unlock()
			go func() { io.Copy(out, in); out.Close() }()
			go func() { io.Copy(in, out); in.Close() }()
		}
	}()
	return c
}

// cut drops every connection; refuse keeps refusing new ones until cut
// is called again with false.
func (c *cutter) cut(refuse bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, x := range c.conns {
		x.Close()
	}
	c.conns = nil
	c.refused = refuse
}

// TestShortDisconnection: the network fails for a while and comes back;
// the agent kept recording, so the meter fetches what it missed and the
// record has no gap. With a buffer too small for the outage, the
// readings the agent dropped are a gap.
func TestShortDisconnection(t *testing.T) {
	tests := []struct {
		name    string
		buffer  int
		wantGap bool
	}{
		{"buffer holds the outage", 0, false},
		{"buffer overflows", 100, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := startAgent(t, "127.0.0.1:0", Config{Buffer: tt.buffer})
			c := newCutter(t, p.addr)
			var log syncLog
			m := openMeter(t, "agent:"+c.ln.Addr().String(), &log)
			samples, err := record(t, m, func(context.Context) {
				time.Sleep(600 * time.Millisecond)
				c.cut(true)
				time.Sleep(700 * time.Millisecond)
				c.cut(false)
				time.Sleep(800 * time.Millisecond)
			})
			if err != nil {
				t.Fatal(err)
			}
			rep := m.Report()
			t.Logf("log:\n%s\ncounters %v, gaps %+v", log.String(), rep.Counters, rep.Gaps)
			if rep.Counters["agent_disconnects"] < 1 {
				t.Errorf("counters %v: the cut was not noticed", rep.Counters)
			}
			// The longest silence between two readings of a channel.
			var longest time.Duration
			prev := map[int]time.Time{}
			for _, s := range samples {
				if p, ok := prev[s.Channel]; ok {
					longest = max(longest, s.T.Sub(p))
				}
				prev[s.Channel] = s.T
			}
			emitted := testEmitted.Load()
			if !tt.wantGap {
				if len(rep.Gaps) != 0 || int64(len(samples)) != emitted {
					t.Errorf("gaps %+v, %d samples of the %d read: the readings of the outage were not all fetched", rep.Gaps, len(samples), emitted)
				}
				if !strings.Contains(log.String(), "fetching the readings it kept") {
					t.Errorf("log lacks the reconnection:\n%s", log.String())
				}
				return
			}
			dropped := rep.Counters["agent_readings_dropped"]
			if len(rep.Gaps) != 1 || !strings.Contains(rep.Gaps[0].Reason, "dropped") || dropped == 0 || int64(len(samples))+dropped != emitted {
				t.Fatalf("gaps %+v, counters %v, %d samples of %d read: want one gap for the dropped readings, and the rest fetched", rep.Gaps, rep.Counters, len(samples), emitted)
			}
			if gl := rep.Gaps[0].End.Sub(rep.Gaps[0].Start); gl < longest-20*time.Millisecond {
				t.Errorf("gap of %v is shorter than the silence of %v", gl, longest)
			}
		})
	}
}

// TestRemoteMeterFails: a meter that fails on the agent ends the run with
// its reason, keeping what it delivered.
func TestRemoteMeterFails(t *testing.T) {
	p := startAgent(t, "127.0.0.1:0", Config{Specs: []string{"agenttest:failafter=30"}})
	m := openMeter(t, "agent:"+p.addr, io.Discard)
	samples, err := record(t, m, sleep(3*time.Second))
	if err == nil || !strings.Contains(err.Error(), "sensor unplugged") {
		t.Fatalf("Run error %v, want the remote meter's reason", err)
	}
	if len(samples) != 2*30 {
		t.Errorf("%d samples, want the 60 read before the failure", len(samples))
	}
}

// TestServerAPI checks the agent's answers as a client other than the
// meter would see them.
func TestServerAPI(t *testing.T) {
	p := startAgent(t, "127.0.0.1:0", Config{Token: "zebra-42", Lease: 300 * time.Millisecond, Specs: []string{"agenttest", "agenttest"}})
	do := func(method, path, token string, body any) (int, string) {
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, _ := http.NewRequest(method, "http://"+p.addr+path, rd)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := do("GET", pathMeters, "", nil); code != 401 || strings.Contains(body, "zebra") {
		t.Errorf("no token: %d %s", code, body)
	}
	if code, _ := do("GET", pathMeters, "zebra-43", nil); code != 401 {
		t.Errorf("wrong token: %d", code)
	}
	code, body := do("GET", pathMeters, "zebra-42", nil)
	if code != 200 || !strings.Contains(body, `"name":"agenttest"`) || !strings.Contains(body, `"name":"agenttest-2"`) {
		t.Errorf("meters: %d %s", code, body)
	}
	if code, body := do("POST", pathRecordings, "zebra-42", StartRequest{Meter: "x"}); code != 404 || !strings.Contains(body, "agenttest, agenttest-2") {
		t.Errorf("unknown meter: %d %s", code, body)
	}
	code, body = do("POST", pathRecordings, "zebra-42", StartRequest{Meter: "agenttest-2"})
	var st Started
	if code != 201 || json.Unmarshal([]byte(body), &st) != nil || st.ID == "" {
		t.Fatalf("start: %d %s", code, body)
	}
	var c Chunk
	for range 100 { // until the meter has read three
		code, body = do("GET", fmt.Sprintf("%s/%s/samples?from=0&max=3", pathRecordings, st.ID), "zebra-42", nil)
		if code != 200 || json.Unmarshal([]byte(body), &c) != nil || len(c.Readings) == 3 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code != 200 || len(c.Readings) != 3 || c.From != 0 || c.Next != 3 || c.Done {
		t.Fatalf("chunk: %d %s", code, body)
	}
	// Left alone longer than its lease, the recording is dropped.
	for i := 0; i < 100 && p.a.recording(st.ID) != nil; i++ {
		time.Sleep(50 * time.Millisecond)
	}
	if code, body := do("GET", fmt.Sprintf("%s/%s/samples?from=3", pathRecordings, st.ID), "zebra-42", nil); code != 404 || !strings.Contains(body, "expired") {
		t.Errorf("after the lease: %d %s", code, body)
	}
}

func TestReadingJSON(t *testing.T) {
	tests := []struct {
		name string
		r    Reading
		json string
	}{
		{"both", Reading{Channel: 1, TNs: 1764160000123456789, Watts: 12.5, Joules: 3.25}, `[1,1764160000123456789,12.5,3.25]`},
		{"no watts", Reading{Channel: 0, TNs: 5, Watts: math.NaN(), Joules: 0}, `[0,5,null,0]`},
		{"no joules", Reading{Channel: 2, TNs: -1, Watts: 1e-7, Joules: math.NaN()}, `[2,-1,1e-07,null]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(tt.r)
			if err != nil || string(b) != tt.json {
				t.Fatalf("marshal: %s, %v; want %s", b, err, tt.json)
			}
			var back Reading
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			same := func(a, b float64) bool { return a == b || math.IsNaN(a) && math.IsNaN(b) }
			if back.Channel != tt.r.Channel || back.TNs != tt.r.TNs || !same(back.Watts, tt.r.Watts) || !same(back.Joules, tt.r.Joules) {
				t.Errorf("round trip %+v, want %+v", back, tt.r)
			}
		})
	}
	var r Reading
	if err := json.Unmarshal([]byte(`[1,1.5e18,1,1]`), &r); err == nil {
		t.Error("a float time was accepted: it would lose nanoseconds")
	}
}

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:9100": true, "127.0.0.2:9100": true, "[::1]:9100": true, "localhost:9100": true,
		":9100": false, "0.0.0.0:9100": false, "192.0.2.7:9100": false, "pi.local:9100": false, "nonsense": false,
	} {
		if got := IsLoopback(addr); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", addr, got, want)
		}
	}
}

func TestTokenOK(t *testing.T) {
	if !tokenOK("abc", "abc") || tokenOK("abd", "abc") || tokenOK("", "abc") || tokenOK("abcd", "abc") {
		t.Error("tokenOK compares wrongly")
	}
}
