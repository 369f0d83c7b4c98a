package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

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
	os.WriteFile(filepath.Join(dir, "echo", "echo.json"), []byte(`{"mode":"warm"}`), 0o644)
	os.MkdirAll(filepath.Join(dir, "broken"), 0o755)
	os.WriteFile(filepath.Join(dir, "broken", "broken.wasm"), []byte("not a module"), 0o644)

	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan int, 1)
	var out, errb syncBuffer
	go func() {
		done <- serve(ctx, []string{"--listen", "127.0.0.1:0", "--functions", dir, "--token", "tok"}, &out, &errb, ready)
	}()
	var addr string
	select {
	case addr = <-ready:
	case code := <-done:
		t.Fatalf("serve exited %d: %s", code, errb.String())
	}
	defer func() {
		cancel()
		if code := <-done; code != exitOK {
			t.Errorf("serve exit code %d", code)
		}
		if !strings.Contains(errb.String(), "skipping broken") {
			t.Errorf("the broken module was not logged: %s", errb.String())
		}
	}()
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
