package wasm

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/academemes/harness/targets"
)

// hangGuard waits for done, failing the test with why if it has not come
// within a minute: what the test asserts is that it comes at all (the
// behaviour before the fixes was to never come).
func hangGuard[T any](t *testing.T, done <-chan T, why string) T {
	t.Helper()
	select {
	case v := <-done:
		return v
	case <-time.After(time.Minute):
		t.Fatalf("still waiting a minute later: %s", why)
		panic("unreachable")
	}
}

// heldSleep is an Options.Sleep that tells the test a guest is asleep and
// holds it there until the test releases it (or the call is cancelled).
type heldSleep struct {
	asleep  chan struct{}
	release chan struct{}
}

func newHeldSleep() *heldSleep {
	return &heldSleep{asleep: make(chan struct{}, 16), release: make(chan struct{})}
}

func (h *heldSleep) sleep(ctx context.Context, _ time.Duration) {
	h.asleep <- struct{}{}
	select {
	case <-h.release:
	case <-ctx.Done():
	}
}

type result struct {
	status int
	body   string
	fault  string
}

// invokeAsync posts body to function name and sends the result.
func invokeAsync(t *testing.T, url, name, body string) <-chan result {
	t.Helper()
	out := make(chan result, 1)
	go func() {
		resp, err := http.Post(url+"/fn/"+name, "text/plain", strings.NewReader(body))
		if err != nil {
			out <- result{status: -1, body: err.Error()}
			return
		}
		defer resp.Body.Close()
		b := new(strings.Builder)
		_, err = fmt.Fprint(b, readAll(resp))
		out <- result{status: resp.StatusCode, body: b.String(), fault: resp.Header.Get("X-Purify-Fault")}
	}()
	return out
}

func readAll(resp *http.Response) string {
	var sb strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			return sb.String()
		}
	}
}

// A request in flight when its function is deleted or replaced finishes
// on the version it started with: 200 with its whole body (before: 200
// with an empty body, the runtime closed under it).
func TestInFlightRequestOutlivesItsVersion(t *testing.T) {
	for _, mode := range []targets.Mode{targets.Cold, targets.Prewarmed, targets.Warm} {
		for _, action := range []string{"delete", "replace"} {
			t.Run(string(mode)+"/"+action, func(t *testing.T) {
				held := newHeldSleep()
				p, srv, _ := newTestPlatform(t, Options{Sleep: held.sleep})
				ctx := context.Background()
				cfg := FunctionConfig{Mode: mode, Impure: true, Timeout: Duration(time.Minute), Pool: 1}
				if err := p.Deploy(ctx, "s", module(t, "sleep"), cfg); err != nil {
					t.Fatal(err)
				}
				old := p.lookup("s")
				res := invokeAsync(t, srv.URL, "s", "")
				hangGuard(t, held.asleep, "the request never reached its sleep")
				switch action {
				case "delete":
					if err := p.Delete("s"); err != nil {
						t.Fatal(err)
					}
				case "replace":
					if err := p.Deploy(ctx, "s", module(t, "echo"), FunctionConfig{}); err != nil {
						t.Fatal(err)
					}
				}
				select {
				case <-old.closed:
					t.Fatal("the old version's runtime closed with a request in flight")
				default:
				}
				close(held.release)
				r := hangGuard(t, res, "the request never ended")
				if r.status != 200 || !strings.HasSuffix(r.body, "awake") {
					t.Errorf("in flight across %s: %d %q (fault %q), want 200 ending in \"awake\"", action, r.status, r.body, r.fault)
				}
				// The last request gone, the old version closes.
				hangGuard(t, old.closed, "the old version's runtime was never closed")
			})
		}
	}
}

// Under concurrent requests and redeploys, no answer is a 200 with a wrong
// body (before: 33 of 8,433 were empty 200s and 40 were 502 "already
// closed"). Counts are bounded; nothing is timed.
func TestRequestsAcrossRedeploys(t *testing.T) {
	p, srv, _ := newTestPlatform(t, Options{})
	ctx := context.Background()
	modes := []targets.Mode{targets.Cold, targets.Prewarmed, targets.Warm}
	if err := p.Deploy(ctx, "e", module(t, "echo"), FunctionConfig{Mode: targets.Warm}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	bad := make(chan string, 100)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 60 {
				body := fmt.Sprintf("client %d request %d", w, i)
				resp, got := do(t, "POST", srv.URL+"/fn/e", body)
				if resp.StatusCode == 200 && got != body {
					bad <- fmt.Sprintf("200 with %q for %q", got, body)
				}
				if resp.StatusCode != 200 && resp.Header.Get("X-Purify-Fault") == "" {
					bad <- fmt.Sprintf("%d without a fault kind: %s", resp.StatusCode, got)
				}
			}
		}()
	}
	for i := range 12 {
		if err := p.Deploy(ctx, "e", module(t, "echo"), FunctionConfig{Mode: modes[i%3], Pool: 2}); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	close(bad)
	for b := range bad {
		t.Error(b)
	}
}

// A module whose start section loops is stopped by DELETE and by
// shutdown, in every place an instance is made (before: the pool's
// refiller spun forever after DELETE, and the process could not exit).
func TestLoopingStartIsStopped(t *testing.T) {
	t.Run("cold request", func(t *testing.T) {
		p, srv, _ := newTestPlatform(t, Options{})
		if err := p.Deploy(context.Background(), "l", module(t, "startloop"), FunctionConfig{Timeout: Duration(50 * time.Millisecond)}); err != nil {
			t.Fatal(err)
		}
		resp, body := do(t, "POST", srv.URL+"/fn/l", "")
		if resp.StatusCode != 504 || resp.Header.Get("X-Purify-Fault") != "timeout" {
			t.Errorf("%d %s, want 504 timeout", resp.StatusCode, body)
		}
	})
	for _, mode := range []targets.Mode{targets.Prewarmed} {
		t.Run(string(mode)+" refill, then delete", func(t *testing.T) {
			p, _, _ := newTestPlatform(t, Options{})
			// A timeout far beyond the test: only the cancellation stops it.
			cfg := FunctionConfig{Mode: mode, Pool: 1, Timeout: Duration(MaxTimeout)}
			if err := p.Deploy(context.Background(), "l", module(t, "startloop"), cfg); err != nil {
				t.Fatal(err)
			}
			f := p.lookup("l")
			if err := p.Delete("l"); err != nil {
				t.Fatal(err)
			}
			hangGuard(t, f.closed, "the refiller's instantiation was not stopped by DELETE")
		})
		t.Run(string(mode)+" refill, then shutdown", func(t *testing.T) {
			p, _, _ := newTestPlatform(t, Options{})
			cfg := FunctionConfig{Mode: mode, Pool: 1, Timeout: Duration(MaxTimeout)}
			if err := p.Deploy(context.Background(), "l", module(t, "startloop"), cfg); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- p.Shutdown(context.Background()) }()
			if err := hangGuard(t, done, "shutdown waited on the looping instantiation"); err != nil {
				t.Error(err)
			}
		})
	}
}

// Shutdown cancels a call in progress (its client gets 503), and a call
// that cannot be stopped (a trusted no_interrupt loop) makes it return at
// its deadline with an error rather than hang.
func TestShutdownCancelsCalls(t *testing.T) {
	t.Run("sleeping", func(t *testing.T) {
		held := newHeldSleep()
		p, srv, _ := newTestPlatform(t, Options{Sleep: held.sleep})
		if err := p.Deploy(context.Background(), "s", module(t, "sleep"), FunctionConfig{Impure: true, Timeout: Duration(MaxTimeout)}); err != nil {
			t.Fatal(err)
		}
		res := invokeAsync(t, srv.URL, "s", "")
		hangGuard(t, held.asleep, "the request never reached its sleep")
		done := make(chan error, 1)
		go func() { done <- p.Shutdown(context.Background()) }()
		if err := hangGuard(t, done, "shutdown waited on a sleeping call"); err != nil {
			t.Error(err)
		}
		if r := hangGuard(t, res, "the request never ended"); r.status != 503 || r.fault != "canceled" {
			t.Errorf("a call cut by shutdown: %d %q %s, want 503 canceled", r.status, r.fault, r.body)
		}
	})
	t.Run("a call that will not end", func(t *testing.T) {
		// A reference held as by a guest that cannot be stopped (a trusted
		// no_interrupt loop): Shutdown returns at its deadline, saying so.
		p, _, _ := newTestPlatform(t, Options{})
		if err := p.Deploy(context.Background(), "e", module(t, "echo"), FunctionConfig{}); err != nil {
			t.Fatal(err)
		}
		f := p.acquire("e")
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- p.Shutdown(ctx) }()
		if err := hangGuard(t, done, "shutdown ignored its deadline"); err == nil || !strings.Contains(err.Error(), "no_interrupt") {
			t.Errorf("Shutdown = %v, want an error naming what it could not stop", err)
		}
		f.release()
		hangGuard(t, f.closed, "the runtime did not close with its last reference")
	})
}

// An impure function's sleep ends at its timeout (before: a 60 s sleep
// under "timeout": "2s" answered 504 after 60 s; this one sleeps an hour),
// and a pure function's sleep does not wait (its clock is fake).
func TestSleepHonoursTimeout(t *testing.T) {
	p, srv, _ := newTestPlatform(t, Options{})
	ctx := context.Background()
	if err := p.Deploy(ctx, "impure", module(t, "sleep"), FunctionConfig{Impure: true, Timeout: Duration(100 * time.Millisecond)}); err != nil {
		t.Fatal(err)
	}
	if err := p.Deploy(ctx, "pure", module(t, "sleep"), FunctionConfig{Timeout: Duration(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	r := hangGuard(t, invokeAsync(t, srv.URL, "impure", ""), "the hour's sleep was not cut at the 100 ms timeout")
	if r.status != 504 || r.fault != "timeout" {
		t.Errorf("impure sleep past its timeout: %d %q %s, want 504 timeout", r.status, r.fault, r.body)
	}
	r = hangGuard(t, invokeAsync(t, srv.URL, "pure", ""), "a pure function's sleep waited")
	if r.status != 200 || r.body != "awake" {
		t.Errorf("pure sleep: %d %q, want 200 awake", r.status, r.body)
	}
}
