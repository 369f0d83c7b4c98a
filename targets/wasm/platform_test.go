package wasm

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/academemes/harness/targets"
)

func module(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name + ".wasm")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// logBuf collects log lines for assertions.
type logBuf struct {
	mu    sync.Mutex
	lines []string
}

func (l *logBuf) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, strings.TrimSpace(sprintf(format, args...)))
}

func (l *logBuf) contains(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, x := range l.lines {
		if strings.Contains(x, s) {
			return true
		}
	}
	return false
}

func newTestPlatform(t testing.TB, opts Options) (*Platform, *httptest.Server, *logBuf) {
	t.Helper()
	lb := &logBuf{}
	if opts.Logf == nil {
		opts.Logf = lb.logf
	}
	p, err := NewPlatform(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p.Handler(HandlerOptions{Token: "s3cret"}))
	t.Cleanup(func() { srv.Close(); p.Close() })
	return p, srv, lb
}

// do sends a request with headers given as name, value pairs and returns
// the response and its body.
func do(t testing.TB, method, url, body string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func TestFaultsKeepServing(t *testing.T) {
	p, srv, lb := newTestPlatform(t, Options{})
	ctx := context.Background()
	if err := p.Deploy(ctx, "echo", module(t, "echo"), FunctionConfig{}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		module string
		cfg    FunctionConfig
		body   string
		status int
		fault  string
		msg    string
	}{
		{"trap", FunctionConfig{}, "", 502, "trap", "unreachable"},
		{"exit3", FunctionConfig{}, "", 502, "exit", "exited with code 3"},
		{"loop", FunctionConfig{Timeout: Duration(50 * time.Millisecond)}, "", 504, "timeout", "time limit"},
		{"bomb", FunctionConfig{MemoryPages: 64}, "", 502, "memory", "64 pages"},
		{"open", FunctionConfig{}, "", 502, "purity", `/etc/passwd`},
		{"sock", FunctionConfig{}, "", 502, "purity", "no network"},
		{"flood", FunctionConfig{MaxResponseBytes: 1 << 20}, "", 502, "too-large", "1048576-byte"},
		{"badheader", FunctionConfig{}, "", 502, "output", "bad Status"},
		{"echo", FunctionConfig{MaxRequestBytes: 8}, "123456789", 413, "too-large", "8-byte limit"},
	} {
		t.Run(c.module+"/"+c.fault, func(t *testing.T) {
			name := "f-" + c.module
			if err := p.Deploy(ctx, name, module(t, c.module), c.cfg); err != nil {
				t.Fatal(err)
			}
			resp, body := do(t, "POST", srv.URL+"/fn/"+name, c.body)
			if resp.StatusCode != c.status || resp.Header.Get("X-Purify-Fault") != c.fault || !strings.Contains(body, c.msg) {
				t.Errorf("got %d fault %q body %s; want %d fault %q containing %q", resp.StatusCode, resp.Header.Get("X-Purify-Fault"), body, c.status, c.fault, c.msg)
			}
			if c.status != 413 && !lb.contains(name+": "+c.fault+" fault") {
				t.Errorf("no log line for the fault; log: %q", lb.lines)
			}
			// The platform is unharmed.
			resp, body = do(t, "POST", srv.URL+"/fn/echo", "still here")
			if resp.StatusCode != 200 || body != "still here" {
				t.Fatalf("after the fault, echo answered %d %q", resp.StatusCode, body)
			}
		})
	}
	if !lb.contains("stderr: \"something went wrong\"") {
		t.Errorf("the exit fault's log line lacks the function's stderr: %q", lb.lines)
	}
}

func TestDeployRefusesBadModules(t *testing.T) {
	p, _, _ := newTestPlatform(t, Options{})
	ctx := context.Background()
	for _, c := range []struct {
		name string
		mod  []byte
		cfg  FunctionConfig
		want string
	}{
		{"garbage", []byte("not wasm at all"), FunctionConfig{}, "bad module"},
		{"empty", nil, FunctionConfig{}, "bad module"},
		{"truncated", module(t, "echo")[:40], FunctionConfig{}, "bad module"},
		{"warm without handler", module(t, "trap"), FunctionConfig{Mode: targets.Warm}, "purify_handle"},
		{"bad mode", module(t, "echo"), FunctionConfig{Mode: "lukewarm"}, "cold, prewarmed, snapshot or warm"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := p.Deploy(ctx, "x", c.mod, c.cfg)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Deploy = %v, want an error containing %q", err, c.want)
			}
		})
	}
}

func TestDeployAPI(t *testing.T) {
	_, srv, _ := newTestPlatform(t, Options{})
	auth := []string{"Authorization", "Bearer s3cret"}
	echo := string(module(t, "echo"))
	steps := []struct {
		name         string
		method, path string
		body         string
		hdr          []string
		status       int
		want         string
	}{
		{"deploy without token", "PUT", "/functions/echo", echo, nil, 401, "Bearer"},
		{"deploy wrong token", "PUT", "/functions/echo", echo, []string{"Authorization", "Bearer nope"}, 401, "Bearer"},
		{"list without token", "GET", "/functions", "", nil, 401, ""},
		{"deploy", "PUT", "/functions/echo", echo, append(auth, "X-Purify-Config", `{"mode":"prewarmed","pool":2}`), 201, `"mode": "prewarmed"`},
		{"invoke", "POST", "/fn/echo", "hello", nil, 200, "hello"},
		{"list", "GET", "/functions", "", auth, 200, `"name": "echo"`},
		{"describe", "GET", "/functions/echo", "", auth, 200, `"sha256"`},
		{"bad config", "PUT", "/functions/echo2", echo, append(auth, "X-Purify-Config", `{"mood":"warm"}`), 400, "unknown field"},
		{"random bytes", "PUT", "/functions/junk", "\x00asm\x01\x00\x00\x00\xff\xff", auth, 400, "bad module"},
		{"bad name", "PUT", "/functions/no.dots", echo, auth, 400, "function name"},
		{"scale to zero", "POST", "/functions/echo/scale-to-zero", "", auth, 204, ""},
		{"replace", "PUT", "/functions/echo", string(module(t, "trap")), auth, 201, ""},
		{"invoke replaced", "POST", "/fn/echo", "", nil, 502, "trapped"},
		{"delete", "DELETE", "/functions/echo", "", auth, 204, ""},
		{"delete again", "DELETE", "/functions/echo", "", auth, 404, "no such function"},
		{"invoke deleted", "POST", "/fn/echo", "", nil, 404, "no function named"},
		{"method", "PUT", "/fn/echo", "", nil, 404, ""},
		{"health", "GET", "/healthz", "", nil, 200, "ok"},
	}
	for _, s := range steps {
		resp, body := do(t, s.method, srv.URL+s.path, s.body, s.hdr...)
		if resp.StatusCode != s.status || !strings.Contains(body, s.want) {
			t.Errorf("%s: %s %s = %d %.300s; want %d containing %q", s.name, s.method, s.path, resp.StatusCode, body, s.status, s.want)
		}
	}
}

func TestCheckListen(t *testing.T) {
	for _, c := range []struct {
		addr, token string
		ok          bool
	}{
		{"127.0.0.1:8080", "", true},
		{"[::1]:0", "", true},
		{"localhost:8080", "", true},
		{"0.0.0.0:8080", "", false},
		{":8080", "", false},
		{"192.0.2.7:80", "", false},
		{"0.0.0.0:8080", "t", true},
		{"nonsense", "", false},
	} {
		if err := CheckListen(c.addr, c.token); (err == nil) != c.ok {
			t.Errorf("CheckListen(%q, %q) = %v, want ok=%v", c.addr, c.token, err, c.ok)
		}
	}
}

func TestSmallModuleModes(t *testing.T) {
	p, srv, _ := newTestPlatform(t, Options{})
	for _, mode := range []targets.Mode{targets.Cold, targets.Prewarmed, targets.Warm} {
		t.Run(string(mode), func(t *testing.T) {
			name := "echo-" + string(mode)
			if err := p.Deploy(context.Background(), name, module(t, "echo"), FunctionConfig{Mode: mode, Pool: 2}); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 5; i++ {
				// The pool refills in the background; wait for it before each
				// request so that a slow machine cannot turn a prewarmed
				// request into a cold one.
				waitReady(t, p, name, mode)
				msg := strings.Repeat("x", i*1000)
				resp, body := do(t, "POST", srv.URL+"/fn/"+name, msg)
				if resp.StatusCode != 200 || body != msg || resp.Header.Get("Content-Type") != "text/plain" {
					t.Fatalf("request %d: %d %q %q", i, resp.StatusCode, resp.Header.Get("Content-Type"), body)
				}
				wantCold := map[targets.Mode]string{targets.Cold: "1", targets.Prewarmed: "0", targets.Warm: "0"}[mode]
				if got := resp.Header.Get(targets.HeaderColdStart); got != wantCold {
					t.Errorf("request %d: cold start %q, want %q", i, got, wantCold)
				}
			}
		})
	}
}

// waitReady waits (without a time assertion) until the background filler
// made the instances a mode keeps ready. Cold and snapshot mode keep none
// ahead of a request (snapshot mode's kept instances are the ones that
// served one).
func waitReady(t testing.TB, p *Platform, name string, mode targets.Mode) {
	t.Helper()
	if mode == targets.Cold || mode == targets.Snapshot {
		return
	}
	for i := 0; ; i++ {
		info, err := p.Function(name)
		if err != nil {
			t.Fatal(err)
		}
		if info.Ready > 0 {
			return
		}
		if i > 10000 {
			t.Fatalf("%s: no instance became ready", name)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestScaleToZeroAfterIdle(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	p, srv, lb := newTestPlatform(t, Options{Now: clock, JanitorEvery: time.Millisecond})
	for _, mode := range []targets.Mode{targets.Prewarmed, targets.Warm} {
		t.Run(string(mode), func(t *testing.T) {
			name := "echo-" + string(mode)
			cfg := FunctionConfig{Mode: mode, Pool: 2, IdleTimeout: Duration(time.Minute)}
			if err := p.Deploy(context.Background(), name, module(t, "echo"), cfg); err != nil {
				t.Fatal(err)
			}
			waitReady(t, p, name, mode)
			resp, _ := do(t, "POST", srv.URL+"/fn/"+name, "a")
			if resp.Header.Get(targets.HeaderColdStart) != "0" {
				t.Fatalf("before idle: cold start %q", resp.Header.Get(targets.HeaderColdStart))
			}
			now.Add(int64(2 * time.Minute)) // idle past the timeout
			for i := 0; ; i++ {
				if info, _ := p.Function(name); info.Ready == 0 && lb.contains(name+" scaled to zero") {
					break
				}
				if i > 10000 {
					t.Fatal("not scaled to zero")
				}
				time.Sleep(time.Millisecond)
			}
			resp, _ = do(t, "POST", srv.URL+"/fn/"+name, "b")
			if resp.Header.Get(targets.HeaderColdStart) != "1" || resp.Header.Get(targets.HeaderStartNs) == "" {
				t.Errorf("first request after scale to zero: %s=%q %s=%q", targets.HeaderColdStart, resp.Header.Get(targets.HeaderColdStart), targets.HeaderStartNs, resp.Header.Get(targets.HeaderStartNs))
			}
			waitReady(t, p, name, mode)
			resp, _ = do(t, "POST", srv.URL+"/fn/"+name, "c")
			if resp.Header.Get(targets.HeaderColdStart) != "0" {
				t.Errorf("after refill: cold start %q", resp.Header.Get(targets.HeaderColdStart))
			}
		})
	}
}

func TestResponseCache(t *testing.T) {
	p, srv, _ := newTestPlatform(t, Options{})
	if err := p.Deploy(context.Background(), "echo", module(t, "echo"), FunctionConfig{Cache: true, CacheBytes: 4096}); err != nil {
		t.Fatal(err)
	}
	for i, c := range []struct{ body, cache string }{{"one", "miss"}, {"one", "hit"}, {"two", "miss"}, {"one", "hit"}, {strings.Repeat("z", 5000), "miss"}, {strings.Repeat("z", 5000), "miss"}} {
		resp, body := do(t, "POST", srv.URL+"/fn/echo", c.body)
		if body != c.body || resp.Header.Get("X-Purify-Cache") != c.cache {
			t.Errorf("request %d: %q cache %q, want %q", i, body, resp.Header.Get("X-Purify-Cache"), c.cache)
		}
	}
	info, _ := p.Function("echo")
	if info.CacheHits != 2 {
		t.Errorf("cache hits = %d, want 2", info.CacheHits)
	}
	if err := (FunctionConfig{Cache: true, Impure: true}).Validate(); err == nil {
		t.Error("an impure function with a cache was accepted")
	}
}

func TestConfigJSON(t *testing.T) {
	c, err := ParseFunctionConfig([]byte(`{"mode":"warm","timeout":"250ms","idle_timeout":30,"memory_pages":100}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Mode != targets.Warm || time.Duration(c.Timeout) != 250*time.Millisecond || time.Duration(c.IdleTimeout) != 30*time.Second {
		t.Errorf("parsed %+v", c)
	}
	b, _ := json.Marshal(c)
	if !bytes.Contains(b, []byte(`"timeout":"250ms"`)) {
		t.Errorf("marshal: %s", b)
	}
	for _, bad := range []string{`{"timeout":"soon"}`, `{"pool":-1}`, `{"extra":1}`, `[1]`} {
		if _, err := ParseFunctionConfig([]byte(bad)); err == nil {
			t.Errorf("ParseFunctionConfig(%s) accepted", bad)
		}
	}
}

// TestStartNsIncludesGuestStart: on a cold request X-Start-Ns covers the
// instantiation and the guest's own start up to its first I/O (a language
// runtime's init inside _start), the ground a container's create-to-ready
// covers. A clock that moves 1 ms per reading makes each part one step.
func TestStartNsIncludesGuestStart(t *testing.T) {
	var ticks atomic.Int64
	clock := func() time.Time { return time.Unix(0, ticks.Add(1)*int64(time.Millisecond)) }
	p, srv, _ := newTestPlatform(t, Options{Now: clock, JanitorEvery: time.Hour})
	if err := p.Deploy(context.Background(), "echo", module(t, "echo"), FunctionConfig{Mode: targets.Cold}); err != nil {
		t.Fatal(err)
	}
	resp, body := do(t, "POST", srv.URL+"/fn/echo", "hi")
	// Readings: instantiation starts, ends (1 ms); _start entered, first
	// write (1 ms).
	if body != "hi" || resp.Header.Get(targets.HeaderStartNs) != fmt.Sprint(2*time.Millisecond.Nanoseconds()) {
		t.Errorf("%q with %s = %q; want 2 ms: instantiation and the guest's start",
			body, targets.HeaderStartNs, resp.Header.Get(targets.HeaderStartNs))
	}
}

// TestPurityDeterminism: a pure function's randomness and clock are the
// same for the same input, its randomness differs for another input, and
// an impure function sees the real clock.
func TestPurityDeterminism(t *testing.T) {
	p, srv, _ := newTestPlatform(t, Options{})
	ctx := context.Background()
	if err := p.Deploy(ctx, "pure", module(t, "entropy"), FunctionConfig{}); err != nil {
		t.Fatal(err)
	}
	if err := p.Deploy(ctx, "impure", module(t, "entropy"), FunctionConfig{Impure: true}); err != nil {
		t.Fatal(err)
	}
	call := func(name, input string) (random, clock string) {
		t.Helper()
		resp, body := do(t, "POST", srv.URL+"/fn/"+name, input)
		if resp.StatusCode != 200 || len(body) != 24 {
			t.Fatalf("%s: %d, %d bytes %q", name, resp.StatusCode, len(body), body)
		}
		return body[:16], body[16:]
	}
	r1, c1 := call("pure", "a")
	r2, c2 := call("pure", "a")
	r3, _ := call("pure", "b")
	if r1 != r2 || c1 != c2 {
		t.Errorf("pure: the same input gave random %x, %x and clock %x, %x", r1, r2, c1, c2)
	}
	if r1 == r3 {
		t.Errorf("pure: inputs a and b gave the same random bytes %x", r1)
	}
	_, i1 := call("impure", "a")
	_, i2 := call("impure", "a")
	now := uint64(time.Now().UnixNano())
	ns := binary.LittleEndian.Uint64([]byte(i2))
	if i1 == i2 || ns > now || now-ns > uint64(time.Minute) {
		t.Errorf("impure: clock %x then %x (%d ns, now %d): want the real clock", i1, i2, ns, now)
	}
}
