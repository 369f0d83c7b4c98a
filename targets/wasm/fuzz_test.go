package wasm

import (
	"bytes"
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/academemes/harness/functions"
	"github.com/academemes/harness/targets"
)

// FuzzInvoke sends arbitrary bodies, queries and Accept headers to the
// small memes build (every mode of it) and checks that the platform always
// answers with a well-formed response and never faults on valid modules.
func FuzzInvoke(f *testing.F) {
	p, err := NewPlatform(Options{})
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
	if err := p.Deploy(context.Background(), "echo", module(f, "echo"), FunctionConfig{Mode: targets.Warm, MaxRequestBytes: 4096}); err != nil {
		f.Fatal(err)
	}
	h := p.Handler(HandlerOptions{})
	for _, s := range []struct{ q, body, accept string }{
		{"", `{"id": 3}`, ""}, {"id=4", "", "text/html"}, {"", `{"id":1e999}`, ""}, {"", `{"id":[{"a":"\u0000"}]}`, ""},
		{"id=%zz&id=1", "", ""}, {"", "\xff\xfe{", ""}, {"", strings.Repeat("[", 600), ""},
	} {
		f.Add(s.q, []byte(s.body), s.accept)
	}
	f.Fuzz(func(t *testing.T, query string, body []byte, accept string) {
		for _, name := range []string{"m-cold", "m-warm", "echo"} {
			req := httptest.NewRequest("POST", "/fn/"+name, bytes.NewReader(body))
			req.URL.RawQuery = query
			req.Header.Set("Accept", accept)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			switch {
			case name == "echo" && len(body) > 4096:
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
		}
	})
}

// FuzzDeploy deploys arbitrary bytes as a module: it must be refused with
// an error or deployed, never crash the platform, and leave it serving.
func FuzzDeploy(f *testing.F) {
	p, err := NewPlatform(Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { p.Close() })
	for _, name := range []string{"echo", "trap", "loop", "open", "bomb"} {
		f.Add(module(f, name))
	}
	f.Add([]byte("\x00asm\x01\x00\x00\x00"))
	f.Add([]byte{})
	h := p.Handler(HandlerOptions{})
	f.Fuzz(func(t *testing.T, mod []byte) {
		ctx := context.Background()
		cfg := FunctionConfig{Timeout: Duration(100e6), MemoryPages: 256, MaxResponseBytes: 1 << 16}
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
