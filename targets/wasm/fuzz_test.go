package wasm

import (
	"bytes"
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/academemes/harness/functions"
	"github.com/academemes/harness/targets"
)

// The fuzz targets keep each input cheap and small, and their coverage
// the input's own. Go's fuzzer minimizes every input that finds new
// coverage before going on, for up to -fuzzminimizetime (60 s by
// default), and its minimizer is quadratic in the input's length (it
// tries removing every range of bytes), none of those runs shown in
// "execs": a 600-byte input at a millisecond a run is 180,000 runs, and
// the fuzzer shows 0 runs/s for the minute it takes. So: one request per
// input, no background work that would make coverage vary between runs
// (pool refills, the janitor's tick), short timeouts, and inputs bounded
// (larger ones return at once, find nothing, and are never minimized), so
// that a minimization is a few seconds at most.

// maxInvokeInput and maxDeployInput bound an input's bytes, all its
// arguments together.
const (
	maxInvokeInput = 256
	maxDeployInput = 384
)

// FuzzInvoke sends arbitrary bodies, queries and Accept headers to one of
// the small memes build (cold or warm) or the echo module (warm), as the
// input chooses, and checks that the platform always answers with a
// well-formed response and never faults on valid modules.
func FuzzInvoke(f *testing.F) {
	p, err := NewPlatform(Options{JanitorEvery: time.Hour})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { p.Close() })
	mod, err := functions.Module(functions.FS(), "memes", "small")
	if err != nil {
		f.Fatal(err)
	}
	for _, mode := range []targets.Mode{targets.Cold, targets.Warm} {
		if err := p.Deploy(context.Background(), "m-"+string(mode), mod, FunctionConfig{Mode: mode}); err != nil {
			f.Fatal(err)
		}
	}
	if err := p.Deploy(context.Background(), "echo", module(f, "echo"), FunctionConfig{Mode: targets.Warm, MaxRequestBytes: 64}); err != nil {
		f.Fatal(err)
	}
	// The warm functions' first instances are made in the background:
	// wait for them, so that no refill runs while inputs do.
	for _, name := range []string{"m-warm", "echo"} {
		waitReady(f, p, name, targets.Warm)
	}
	names := []string{"m-cold", "m-warm", "echo"}
	h := p.Handler(HandlerOptions{})
	for i, s := range []struct{ q, body, accept string }{
		{"", `{"id": 3}`, ""}, {"id=4", "", "text/html"}, {"", `{"id":1e999}`, ""}, {"", `{"id":[{"a":"\u0000"}]}`, ""},
		{"id=%zz&id=1", "", ""}, {"", "\xff\xfe{", ""}, {"", strings.Repeat("[", 200), ""}, {"", strings.Repeat("e", 65), ""},
	} {
		f.Add(uint8(i), s.q, []byte(s.body), s.accept)
	}
	f.Fuzz(func(t *testing.T, which uint8, query string, body []byte, accept string) {
		if len(query)+len(body)+len(accept) > maxInvokeInput {
			return
		}
		name := names[int(which)%len(names)]
		req := httptest.NewRequest("POST", "/fn/"+name, bytes.NewReader(body))
		req.URL.RawQuery = query
		req.Header.Set("Accept", accept)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		switch {
		case name == "echo" && len(body) > 64:
			if w.Code != 413 {
				t.Fatalf("echo of %d bytes: %d", len(body), w.Code)
			}
		case name == "echo":
			if w.Code != 200 || !bytes.Equal(w.Body.Bytes(), body) {
				t.Fatalf("echo: %d %q, want 200 %q", w.Code, w.Body.Bytes(), body)
			}
		case w.Code != 200 && w.Code != 400 && w.Code != 404:
			t.Fatalf("%s query %q body %q: status %d: %s", name, query, body, w.Code, w.Body)
		}
	})
}

// FuzzDeploy deploys arbitrary bytes as a module: it must be refused with
// an error or deployed, never crash the platform, and leave it serving.
// The interpreter compiles it (decoding, validation and the platform's own
// checks and rewriting are the same as with the compiler, at a fraction of
// the cost), and a deployed module gets 1 ms to answer.
func FuzzDeploy(f *testing.F) {
	p, err := NewPlatform(Options{Interpreter: true, JanitorEvery: time.Hour})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { p.Close() })
	for _, name := range []string{"echo", "trap", "loop", "open", "bomb", "sleep", "startloop"} {
		f.Add(module(f, name))
	}
	f.Add([]byte("\x00asm\x01\x00\x00\x00"))
	f.Add([]byte{})
	h := p.Handler(HandlerOptions{})
	f.Fuzz(func(t *testing.T, mod []byte) {
		if len(mod) > maxDeployInput {
			return
		}
		ctx := context.Background()
		cfg := FunctionConfig{Timeout: Duration(MinTimeout), MemoryPages: 256, MaxResponseBytes: 1 << 16, Impure: true}
		if err := p.Deploy(ctx, "fuzzed", mod, cfg); err != nil {
			return // refused: fine
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("POST", "/fn/fuzzed", strings.NewReader("x")))
		if w.Code >= 500 && w.Header().Get("X-Purify-Fault") == "" {
			t.Fatalf("a 5xx without a fault kind: %d %s", w.Code, w.Body)
		}
		if err := p.Delete("fuzzed"); err != nil {
			t.Fatal(err)
		}
	})
}
