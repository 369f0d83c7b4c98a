package dockernode

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"

	"github.com/academemes/harness/functions"
	"github.com/academemes/harness/targets"
	"github.com/academemes/harness/targets/internal/nodeimage"
)

// functionsDir is the repository's functions tree.
const functionsDir = "../../functions"

// input is one request given to both builds.
type input struct {
	name   string
	query  string // raw query string
	body   string // "" sends none
	accept string
}

// answerBytes is what must be identical between the builds.
type answerBytes struct {
	Status      int
	ContentType string
	Body        string
}

// bad are inputs every numeric function must refuse (or, for memes, treat
// alike); FIELD stands for the function's input field.
var bad = []input{
	{name: "no input"},
	{name: "string value", body: `{"FIELD":"5"}`},
	{name: "null value", body: `{"FIELD":null}`},
	{name: "fraction", body: `{"FIELD":2.5}`},
	{name: "huge", body: `{"FIELD":1e400}`},
	{name: "array body", body: `[1]`},
	{name: "null body", body: `null`},
	{name: "broken json", body: `{"FIELD":`},
	{name: "other field", body: `{"x":3}`},
	{name: "query fraction", query: "FIELD=1.5"},
	{name: "query word", query: "FIELD=abc"},
	{name: "query empty", query: "FIELD="},
	{name: "query semicolon", query: "x=1;y=2&FIELD=3"},
	{name: "query bad escape", query: "FIELD=3&y=%zz"},
	{name: "query negative zero", query: "FIELD=-0"},
	{name: "query plus", query: "FIELD=+3"},
	{name: "blank body takes query", body: " \n\t", query: "FIELD=3"},
	{name: "last duplicate wins", body: `{"FIELD":3,"FIELD":4}`},
	{name: "first query value", query: "FIELD=2&FIELD=3"},
	{name: "escaped name", query: "%46IELD=2"},
	{name: "escaped digit", query: "FIELD=%33"},
	{name: "trailing percent", query: "FIELD=3%"},
	{name: "plus in value", query: "FIELD=3+"},
	{name: "escaped key in json", body: `{"FIELD":1,"F\u0049ELD":2}`},
	{name: "exponent", body: `{"FIELD":2e0}`},
	{name: "negative", body: `{"FIELD":-3}`},
}

// conformanceCases are per function: the input field and valid inputs.
var conformanceCases = []struct {
	fn     string
	field  string
	inputs []input
}{
	{"fibonacci", "n", []input{{query: "n=0"}, {query: "n=1"}, {query: "n=2"}, {query: "n=20"}, {body: `{"n": 24}`}, {query: "n=51"}}},
	{"factorial", "n", []input{{query: "n=0"}, {query: "n=1"}, {query: "n=21"}, {body: `{"n":170}`}, {query: "n=5000"}, {query: "n=5001"}}},
	{"prime", "n", []input{{query: "n=0"}, {query: "n=1"}, {query: "n=2"}, {query: "n=1000"}, {body: `{"n":10000}`}, {query: "n=100001"}}},
	{"exponential", "n", []input{{query: "n=0"}, {query: "n=1"}, {query: "n=10"}, {query: "n=30"}, {body: `{"n":100}`}, {query: "n=500"}, {query: "n=707"}, {query: "n=708"}, {query: "n=709"}, {query: "n=710"}}},
	{"memes", "id", []input{{query: "id=1"}, {query: "id=2"}, {body: `{"id":3}`}, {query: "id=4", accept: "text/html,application/xhtml+xml"},
		{accept: "text/html"}, {query: "id=0"}, {query: "id=100000"}, {query: "id=-7"}, {query: "id=9007199254740991"}, {query: "id=9007199254740992"}}},
}

// TestConformance runs each function's Wasm builds (the committed
// functions/<name>/<name>.wasm and every variant beside it but the
// reactor: the small C and the Rust builds, on wazero, as a CGI-like
// command) and its Node build (index.js, in a docker-node container, or on the local node
// when no engine is reachable and CI is not set) on the same inputs and
// requires the same status, Content-Type and body bytes. Floating-point
// results (exponential) must be byte-identical too; where they are not,
// the test reports whether they at least agree to 12 significant digits,
// and fails either way.
func TestConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("conformance builds every function; skipped with -short")
	}
	wasm := newWasmRunner(t)
	for _, fc := range conformanceCases {
		t.Run(fc.fn, func(t *testing.T) {
			mod := filepath.Join(functionsDir, fc.fn, fc.fn+".wasm")
			if _, err := os.Stat(mod); err != nil {
				t.Skipf("no Wasm build to compare with: %v", err)
			}
			if _, err := os.Stat(filepath.Join(functionsDir, fc.fn, "index.js")); err != nil {
				t.Fatalf("no Node build: %v", err)
			}
			node := nodeRunner(t, fc.fn)
			inputs := fc.inputs
			for _, b := range bad {
				b.query = strings.ReplaceAll(b.query, "FIELD", fc.field)
				b.body = strings.ReplaceAll(b.body, "FIELD", fc.field)
				inputs = append(inputs, b)
			}
			variants, err := functions.Variants(os.DirFS(functionsDir), fc.fn)
			if err != nil {
				t.Fatal(err)
			}
			builds := []string{""} // the Go command build
			for _, v := range variants {
				if v != functions.Reactor {
					builds = append(builds, v)
				}
			}
			for _, in := range inputs {
				n, err := node(in)
				if err != nil {
					t.Fatalf("%+v: node: %v", in, err)
				}
				for _, variant := range builds {
					name := in.name
					if name == "" {
						name = "q=" + in.query + " body=" + in.body + " accept=" + in.accept
					}
					name = cmp.Or(variant, "go") + ": " + name
					w, err := wasm.run(fc.fn, variant, in)
					if err != nil {
						t.Fatalf("%s: wasm: %v", name, err)
					}
					conform(t, name, w, n)
				}
			}
		})
	}
}

// conform reports how a Wasm build's answer w differs from the Node
// build's n, if it does.
func conform(t *testing.T, name string, w, n answerBytes) {
	t.Helper()
	if w.ContentType == "application/json" && !json.Valid([]byte(w.Body)) {
		t.Errorf("%s: the answer is not valid JSON: %q", name, clip(w.Body))
	}
	if w == n {
		return
	}
	if w.Status == n.Status && w.ContentType == n.ContentType && equal12(w.Body, n.Body) {
		t.Errorf("%s: bodies differ in bytes but agree to 12 significant digits:\nwasm %q\nnode %q", name, w.Body, n.Body)
		return
	}
	t.Errorf("%s:\nwasm %d %q %q\nnode %d %q %q", name, w.Status, w.ContentType, clip(w.Body), n.Status, n.ContentType, clip(n.Body))
}

func clip(s string) string {
	if len(s) > 300 {
		return s[:300] + "..."
	}
	return s
}

// equal12 reports whether two JSON bodies are equal once every number is
// rounded to 12 significant digits.
func equal12(a, b string) bool {
	var x, y any
	da, db := json.NewDecoder(strings.NewReader(a)), json.NewDecoder(strings.NewReader(b))
	da.UseNumber()
	db.UseNumber()
	if da.Decode(&x) != nil || db.Decode(&y) != nil {
		return false
	}
	return fmt.Sprint(round12(x)) == fmt.Sprint(round12(y))
}

func round12(v any) any {
	switch x := v.(type) {
	case json.Number:
		f, err := x.Float64()
		if err != nil {
			return x.String()
		}
		return strconv.FormatFloat(f, 'g', 12, 64)
	case map[string]any:
		for k, e := range x {
			x[k] = round12(e)
		}
	case []any:
		for i, e := range x {
			x[i] = round12(e)
		}
	}
	return v
}

func TestEqual12(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{`{"r":2.718281828459045}`, `{"r":2.7182818284590455}`, true},
		{`{"r":2.718281828459045}`, `{"r":2.71828182846}`, true},
		{`{"r":2.718281828459045}`, `{"r":2.7182818285}`, false},
		{`{"r":1}`, `{"r":2}`, false},
		{`{"r":1}`, `not json`, false},
	}
	for _, tc := range tests {
		if got := equal12(tc.a, tc.b); got != tc.want {
			t.Errorf("equal12(%s, %s) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

// wasmRunner runs the functions' Wasm command builds as the ABI says:
// request facts in the environment, the body on stdin, a CGI header block
// and the body on stdout.
type wasmRunner struct {
	rt       wazero.Runtime
	compiled map[string]wazero.CompiledModule
}

func newWasmRunner(t *testing.T) *wasmRunner {
	ctx := context.Background()
	cfg := wazero.NewRuntimeConfig()
	// A cache shared by test runs: a Go module takes about a second to
	// compile, and there are five.
	if cache, err := wazero.NewCompilationCacheWithDir(filepath.Join(os.TempDir(), "academemes-test-wazero-cache")); err == nil {
		cfg = cfg.WithCompilationCache(cache)
	}
	rt := wazero.NewRuntimeWithConfig(ctx, cfg)
	wasi_snapshot_preview1.MustInstantiate(ctx, rt)
	t.Cleanup(func() { rt.Close(ctx) })
	return &wasmRunner{rt: rt, compiled: map[string]wazero.CompiledModule{}}
}

// run runs build variant of fn ("" the Go build) on one input.
func (w *wasmRunner) run(fn, variant string, in input) (answerBytes, error) {
	ctx := context.Background()
	key := fn + "-" + variant
	cm := w.compiled[key]
	if cm == nil {
		b, err := functions.Module(os.DirFS(functionsDir), fn, variant)
		if err != nil {
			return answerBytes{}, err
		}
		if cm, err = w.rt.CompileModule(ctx, b); err != nil {
			return answerBytes{}, fmt.Errorf("compiling %s: %w", key, err)
		}
		w.compiled[key] = cm
	}
	method, ctype := "GET", ""
	if in.body != "" {
		method, ctype = "POST", "application/json"
	}
	var out bytes.Buffer
	cfg := wazero.NewModuleConfig().WithName("").WithArgs(fn).
		WithEnv("REQUEST_METHOD", method).WithEnv("QUERY_STRING", in.query).
		WithEnv("CONTENT_TYPE", ctype).WithEnv("HTTP_ACCEPT", in.accept).
		WithStdin(strings.NewReader(in.body)).WithStdout(&out).WithStderr(io.Discard)
	mod, err := w.rt.InstantiateModule(ctx, cm, cfg)
	if mod != nil {
		mod.Close(ctx)
	}
	var exit *sys.ExitError
	if err != nil && !(errors.As(err, &exit) && exit.ExitCode() == 0) {
		return answerBytes{}, fmt.Errorf("running %s: %w", fn, err)
	}
	return parseCGI(out.Bytes())
}

// parseCGI reads "Status: 200 OK\r\nContent-Type: ...\r\n\r\nBODY".
func parseCGI(b []byte) (answerBytes, error) {
	head, body, ok := bytes.Cut(b, []byte("\r\n\r\n"))
	if !ok {
		return answerBytes{}, fmt.Errorf("no CGI header block in %q", clip(string(b)))
	}
	a := answerBytes{Body: string(body)}
	for _, line := range strings.Split(string(head), "\r\n") {
		k, v, _ := strings.Cut(line, ": ")
		switch strings.ToLower(k) {
		case "status":
			code, _, _ := strings.Cut(v, " ")
			a.Status, _ = strconv.Atoi(code)
		case "content-type":
			a.ContentType = v
		}
	}
	return a, nil
}

// nodeRunner serves fn's Node build and returns a function that asks it.
// It uses a docker-node warm container when an engine answers (always
// under CI=true), else the local node with the same server files.
func nodeRunner(t *testing.T, fn string) func(input) (answerBytes, error) {
	base := nodeOnEngine(t, fn)
	if base == "" {
		base = nodeOnHost(t, fn)
	}
	c := &http.Client{Timeout: time.Minute}
	return func(in input) (answerBytes, error) {
		method, body := http.MethodGet, io.Reader(nil)
		if in.body != "" {
			method, body = http.MethodPost, strings.NewReader(in.body)
		}
		u := base + "/"
		if in.query != "" {
			u += "?" + in.query
		}
		req, err := http.NewRequest(method, u, body)
		if err != nil {
			return answerBytes{}, err
		}
		if in.body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		if in.accept != "" {
			req.Header.Set("Accept", in.accept)
		}
		resp, err := c.Do(req)
		if err != nil {
			return answerBytes{}, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return answerBytes{Status: resp.StatusCode, ContentType: resp.Header.Get("Content-Type"), Body: string(b)}, err
	}
}

func nodeOnEngine(t *testing.T, fn string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cli, err := nodeimage.Connect(ctx)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true needs a Docker Engine: %v", err)
		}
		t.Logf("no Docker Engine (%v): running the Node build on the local node", err)
		return ""
	}
	cli.Close()
	tg, err := New(targets.Spec{Name: "conf-" + fn, Kind: Kind, Function: fn, Mode: targets.Warm,
		FunctionsDir: functionsDir, RunID: "test-conformance", Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := tg.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	sctx, scancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer scancel()
	if err := tg.Start(sctx); err != nil {
		t.Fatal(err)
	}
	return tg.URL().String()
}

// nodeOnHost lays the image's /app out in a temporary directory and runs
// server.js with the local node.
func nodeOnHost(t *testing.T, fn string) string {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skipf("neither a Docker Engine nor a local node to run the Node build: %v", err)
	}
	app := t.TempDir()
	for name, data := range nodeimage.Runtime() {
		if err := os.WriteFile(filepath.Join(app, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.CopyFS(filepath.Join(app, "function"), os.DirFS(filepath.Join(functionsDir, fn))); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command(node, filepath.Join(app, "server.js"))
	cmd.Env = append(os.Environ(), "PORT="+strconv.Itoa(port))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(base + nodeimage.HealthPath)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return base
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("local node server for %s not ready: %v", fn, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
