package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/academemes/harness/functions"
	"github.com/academemes/harness/targets"
)

func TestServeUsage(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"help", []string{"--help"}, exitOK, "--listen"},
		{"off loopback without token", []string{"--listen", "0.0.0.0:0"}, exitUsage, "bearer token is required"},
		{"missing dir", []string{"--listen", "127.0.0.1:0", "--functions", filepath.Join(dir, "nope")}, exitUsage, "not a directory"},
		{"stray argument", []string{"extra"}, exitUsage, "unexpected arguments"},
		{"bad flag", []string{"--bogus"}, exitUsage, "bogus"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := serve(context.Background(), c.args, &out, &errb, nil)
			if code != c.code || !strings.Contains(out.String()+errb.String(), c.want) {
				t.Errorf("code %d, output %q; want %d containing %q", code, out.String()+errb.String(), c.code, c.want)
			}
		})
	}
}

// TestServeWithRemoteTarget runs `harness serve` on a functions directory
// and points a wasm target at it, as a load machine would.
func TestServeWithRemoteTarget(t *testing.T) {
	dir := t.TempDir()
	echo, err := os.ReadFile("../targets/wasm/testdata/echo.wasm")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "echo"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "echo", "echo.wasm"), echo, 0o644)
	os.WriteFile(filepath.Join(dir, "echo", "echo.json"), []byte(`["data, not a config"]`), 0o644)
	os.WriteFile(filepath.Join(dir, "echo", "purify.json"), []byte(`{"mode":"warm"}`), 0o644)
	os.MkdirAll(filepath.Join(dir, "broken"), 0o755)
	os.WriteFile(filepath.Join(dir, "broken", "broken.wasm"), []byte("not a module"), 0o644)

	addr, out, errb := startServe(t, "--listen", "127.0.0.1:0", "--functions", dir, "--token", "tok")
	if !strings.Contains(errb.String(), "skipping broken") {
		t.Errorf("the broken module was not logged: %s", errb.String())
	}
	if !strings.Contains(out.String(), "serving echo (warm)") {
		t.Errorf("stdout: %q", out.String())
	}
	resp, err := http.Post("http://"+addr+"/fn/echo", "text/plain", strings.NewReader("hi"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "hi" {
		t.Errorf("echo answered %q", b)
	}

	for _, c := range []struct {
		name, token string
		ok          bool
	}{{"wrong token", "nope", false}, {"token", "tok", true}} {
		t.Run(c.name, func(t *testing.T) {
			tg, err := targets.New(targets.Spec{Name: "remote", Kind: "wasm", Function: "memes", Mode: targets.Cold,
				Options: map[string]any{"remote": "http://" + addr, "token": c.token, "variant": "small"}, Logf: t.Logf})
			if err != nil {
				t.Fatal(err)
			}
			err = tg.Start(context.Background())
			defer tg.Stop(context.Background())
			if (err == nil) != c.ok {
				t.Fatalf("Start = %v, want ok=%v", err, c.ok)
			}
			if !c.ok {
				return
			}
			resp, err := http.Post(tg.URL().String(), "application/json", strings.NewReader(`{"id": 2}`))
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !strings.HasPrefix(string(b), `{"id":2,`) || resp.Header.Get(targets.HeaderColdStart) != "1" {
				t.Errorf("remote memes: %d %s %.60q", resp.StatusCode, resp.Header.Get(targets.HeaderColdStart), b)
			}
			if err := tg.Reset(context.Background()); err != nil {
				t.Errorf("Reset: %v", err)
			}
			if err := tg.Stop(context.Background()); err != nil {
				t.Errorf("Stop: %v", err)
			}
			// The runner reports after Stop: the remote's counters must
			// have been kept.
			if rep := tg.(targets.Reporter).Report(); rep["requests"] != int64(1) || rep["module_sha256"] == "" {
				t.Errorf("report after Stop: requests %v, sha256 %v; want 1 and the module's", rep["requests"], rep["module_sha256"])
			}
			resp, _ = http.Post("http://"+addr+"/fn/memes-small", "application/json", nil)
			if resp.StatusCode != 404 {
				t.Errorf("after Stop the function still answers %d", resp.StatusCode)
			}
		})
	}
}

// startServe runs `harness serve` with args until the test ends and
// returns the address it listens on and its output so far.
func startServe(t *testing.T, args ...string) (addr string, stdout, stderr *syncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan int, 1)
	stdout, stderr = &syncBuffer{}, &syncBuffer{}
	go func() { done <- serve(ctx, args, stdout, stderr, ready) }()
	select {
	case addr = <-ready:
	case code := <-done:
		cancel()
		t.Fatalf("serve exited %d: %s", code, stderr.String())
	}
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != exitOK {
			t.Errorf("serve exit code %d", code)
		}
	})
	return addr, stdout, stderr
}

// TestServeServesEveryBuild runs `harness serve` on the built-in functions
// and on the functions directory of the source tree (`--functions
// functions` from the repository root, the README's example) and asks
// every function and variant that a wasm target serves in process (package
// functions' Names and Variants, what the target reads its module with)
// for one answer: serve must give the target's status, type and bytes.
func TestServeServesEveryBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles every built function (-short)")
	}
	cache := t.TempDir() // one compilation per module for serve and targets
	for _, c := range []struct{ name, dir string }{{"built-in", ""}, {"--functions functions", "../functions"}} {
		t.Run(c.name, func(t *testing.T) {
			args := []string{"--listen", "127.0.0.1:0", "--cache-dir", cache}
			if c.dir != "" {
				args = append(args, "--functions", c.dir)
			}
			addr, out, errb := startServe(t, args...)
			if strings.Contains(errb.String(), "skipping") || strings.Contains(errb.String(), "not loaded") {
				t.Errorf("serve skipped functions:\n%s", errb.String())
			}
			builds := servable(t, functions.Open(c.dir))
			if len(builds) < 7 {
				t.Fatalf("only %d builds: %v", len(builds), builds)
			}
			for _, b := range builds {
				t.Run(b.deployed(), func(t *testing.T) {
					if !strings.Contains(out.String(), "serving "+b.deployed()+" (") {
						t.Errorf("stdout does not list %s: %q", b.deployed(), out.String())
					}
					want := inProcessAnswer(t, b, c.dir, cache)
					got := answer(t, "http://"+addr+"/fn/"+b.deployed())
					if got != want {
						t.Errorf("harness serve answered %.200q\nthe in-process target %.200q", got, want)
					}
				})
			}
		})
	}
}

// build is one function and variant a wasm target can serve.
type build struct{ function, variant string }

// deployed is the name the target and serve give it.
func (b build) deployed() string {
	if b.variant == "" {
		return b.function
	}
	return b.function + "-" + b.variant
}

// servable lists every build of fsys a wasm target serves with its
// variant option: each function's own, and each variant but the reactor
// (which the target serves for variant "" in warm mode).
func servable(t *testing.T, fsys fs.FS) []build {
	t.Helper()
	names, err := functions.Names(fsys)
	if err != nil {
		t.Fatal(err)
	}
	var out []build
	for _, name := range names {
		out = append(out, build{name, ""})
		variants, err := functions.Variants(fsys, name)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range variants {
			if v != functions.Reactor {
				out = append(out, build{name, v})
			}
		}
	}
	return out
}

// answerQuery is one valid input for every function: memes reads id,
// the others n.
const answerQuery = "?n=7&id=3"

// inProcessAnswer starts an in-process wasm target for b and returns its
// answer to answerQuery.
func inProcessAnswer(t *testing.T, b build, dir, cache string) string {
	t.Helper()
	tg, err := targets.New(targets.Spec{Name: "ref", Kind: "wasm", Function: b.function, FunctionsDir: dir, Mode: targets.Cold,
		Options: map[string]any{"variant": b.variant, "cache_dir": cache}, Logf: func(string, ...any) {}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := tg.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer tg.Stop(ctx)
	return answer(t, tg.URL().String())
}

// answer GETs url with answerQuery and returns status, type and body; only
// a 200 is an answer.
func answer(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url + answerQuery)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || len(b) == 0 {
		t.Errorf("%s: %s %q", url, resp.Status, b)
	}
	return fmt.Sprintf("%d %s\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
}

// syncBuffer is a bytes.Buffer safe for the server goroutine and the test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
