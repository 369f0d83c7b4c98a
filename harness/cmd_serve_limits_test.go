package main

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestServeLimitFlags: --max-memory takes a size, and --invoke-token
// guards invocation (which is otherwise open) while the deploy token
// still guards the deploy API.
func TestServeLimitFlags(t *testing.T) {
	var out, errb bytes.Buffer
	if code := serve(context.Background(), []string{"--listen", "127.0.0.1:0", "--max-memory", "lots"}, &out, &errb, nil); code != exitUsage || !strings.Contains(errb.String(), "--max-memory") {
		t.Errorf("--max-memory lots: code %d, %q", code, errb.String())
	}

	dir := t.TempDir()
	echo, err := os.ReadFile("../targets/wasm/testdata/echo.wasm")
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(dir, "echo"), 0o755)
	os.WriteFile(filepath.Join(dir, "echo", "echo.wasm"), echo, 0o644)
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan int, 1)
	var sout, serr syncBuffer
	go func() {
		done <- serve(ctx, []string{"--listen", "127.0.0.1:0", "--functions", dir, "--token", "d", "--invoke-token", "i", "--max-memory", "256m", "--cache-dir", ""}, &sout, &serr, ready)
	}()
	var addr string
	select {
	case addr = <-ready:
	case code := <-done:
		t.Fatalf("serve exited %d: %s", code, serr.String())
	}
	defer func() {
		cancel()
		if code := <-done; code != exitOK {
			t.Errorf("serve exit code %d", code)
		}
	}()
	if !strings.Contains(sout.String(), "invocation needs the invoke token") || !strings.Contains(sout.String(), "may commit 256 MiB") {
		t.Errorf("stdout: %q", sout.String())
	}
	for _, c := range []struct {
		path, auth string
		status     int
	}{
		{"/fn/echo", "", 401},
		{"/fn/echo", "Bearer i", 200},
		{"/fn/echo", "Bearer d", 200},
		{"/functions", "Bearer i", 401},
		{"/functions", "Bearer d", 200},
	} {
		req, _ := http.NewRequest("POST", "http://"+addr+c.path, strings.NewReader("hi"))
		if c.path == "/functions" {
			req.Method = "GET"
		}
		if c.auth != "" {
			req.Header.Set("Authorization", c.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.status {
			t.Errorf("%s %s with %q: %d, want %d", req.Method, c.path, c.auth, resp.StatusCode, c.status)
		}
	}
}
