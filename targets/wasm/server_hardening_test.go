package wasm

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// A request body grows as its bytes arrive: a declared Content-Length is
// never allocated up front (before: a 1 MB declaration reserved 1 MB).
func TestBodyGrowsAsBytesArrive(t *testing.T) {
	p, _, _ := newTestPlatform(t, Options{})
	r := httptest.NewRequest("POST", "/fn/x", strings.NewReader("ten bytes!"))
	r.ContentLength = 1_000_000 // declared, never sent
	body, release, err := p.readBody(httptest.NewRecorder(), r, 2_000_000)
	if err != nil {
		t.Fatal(err.msg)
	}
	if string(body) != "ten bytes!" || cap(body) > 4096 {
		t.Errorf("body %q in a buffer of %d bytes, want at most 4 KiB", body, cap(body))
	}
	if held := p.Memory().BodyBytes; held <= 0 || held > 4096 {
		t.Errorf("%d bytes of bodies counted while one of 10 bytes is held", held)
	}
	release()
	if held := p.Memory().BodyBytes; held != 0 {
		t.Errorf("%d bytes of bodies counted after release", held)
	}
}

// rawRequest opens a connection to srv and sends head and then body.
func rawRequest(t *testing.T, addr, head, body string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := io.WriteString(c, head+"\r\n"+body); err != nil {
		t.Fatal(err)
	}
	return c
}

// waitFor polls cond a bounded number of times (no time is asserted).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; !cond(); i++ {
		if i > 20000 {
			t.Fatalf("never: %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// The request bodies held in memory at once are bounded: past the bound
// a request gets 503, and what a connection held is counted back when it
// goes (before: 1,500 connections trickling declared 1 MB bodies took the
// server from 107 MB to 2.13 GB).
func TestBodyMemoryBound(t *testing.T) {
	p, err := NewPlatform(Options{MaxBodyBytes: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p.Handler(HandlerOptions{}))
	defer func() { srv.Close(); p.Close() }()
	if err := p.Deploy(context.Background(), "echo", module(t, "echo"), FunctionConfig{}); err != nil {
		t.Fatal(err)
	}
	addr := strings.TrimPrefix(srv.URL, "http://")
	head := "POST /fn/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n"
	first := rawRequest(t, addr, head, strings.Repeat("a", 40<<10))
	waitFor(t, "the first body counted", func() bool { return p.Memory().BodyBytes >= 40<<10 })
	second := rawRequest(t, addr, head, strings.Repeat("b", 40<<10))
	resp, err := http.ReadResponse(bufio.NewReader(second), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 503 || resp.Header.Get("X-Purify-Fault") != "busy" {
		t.Errorf("past the bound: %d %s, want 503 busy", resp.StatusCode, resp.Header.Get("X-Purify-Fault"))
	}
	first.Close()
	second.Close()
	waitFor(t, "the bodies' bytes counted back", func() bool { return p.Memory().BodyBytes == 0 })
}

// A client that sends its body slowly is cut off at the read deadline
// (before: no deadline, the connection was held for as long as the client
// trickled).
func TestReadDeadline(t *testing.T) {
	p, _, _ := newTestPlatform(t, Options{})
	if err := p.Deploy(context.Background(), "echo", module(t, "echo"), FunctionConfig{}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(nil)
	srv.Config = NewServer(p.Handler(HandlerOptions{}))
	srv.Config.ReadTimeout = 100 * time.Millisecond // the test's, instead of a minute
	srv.Start()
	defer srv.Close()
	c := rawRequest(t, strings.TrimPrefix(srv.URL, "http://"), "POST /fn/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n", "a")
	done := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(c) // until the server closes the connection
		done <- string(b)
	}()
	got := hangGuard(t, done, "the server still waits for the trickled body")
	if got != "" && !strings.HasPrefix(got, "HTTP/1.1 408") {
		t.Errorf("cut off with %.60q, want 408 or a closed connection", got)
	}
	if NewServer(nil).ReadTimeout != ReadTimeout || NewServer(nil).ReadHeaderTimeout != ReadHeaderTimeout {
		t.Error("NewServer without its timeouts")
	}
}

// An invoke token, when set, guards invocation; the deploy token works
// there too; without one invocation stays open.
func TestInvokeToken(t *testing.T) {
	p, err := NewPlatform(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.Deploy(context.Background(), "echo", module(t, "echo"), FunctionConfig{}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		opts   HandlerOptions
		auth   string
		status int
	}{
		{"open without an invoke token", HandlerOptions{Token: "d"}, "", 200},
		{"guarded: no token", HandlerOptions{Token: "d", InvokeToken: "i"}, "", 401},
		{"guarded: wrong token", HandlerOptions{Token: "d", InvokeToken: "i"}, "Bearer x", 401},
		{"guarded: invoke token", HandlerOptions{Token: "d", InvokeToken: "i"}, "Bearer i", 200},
		{"guarded: deploy token", HandlerOptions{Token: "d", InvokeToken: "i"}, "Bearer d", 200},
		{"guarded, no deploy token: empty bearer", HandlerOptions{InvokeToken: "i"}, "Bearer ", 401},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/fn/echo", strings.NewReader("hi"))
			if c.auth != "" {
				r.Header.Set("Authorization", c.auth)
			}
			w := httptest.NewRecorder()
			p.Handler(c.opts).ServeHTTP(w, r)
			if w.Code != c.status {
				t.Errorf("%d %s, want %d", w.Code, w.Body, c.status)
			}
		})
	}
}

// The deploy API refuses DNS rebinding (a Host that is not loopback, on a
// server without a token) and cross-origin browser requests (before: a
// token-less server deployed a module sent with Host: attacker.example
// and a foreign Origin).
func TestDeployAPIRefusesOtherOrigins(t *testing.T) {
	p, err := NewPlatform(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	echo := string(module(t, "echo"))
	for _, c := range []struct {
		name   string
		token  string
		method string
		host   string
		hdr    []string
		status int
	}{
		{"rebound name", "", "PUT", "attacker.example:8080", nil, 403},
		{"rebound name, listing", "", "GET", "attacker.example", nil, 403},
		{"rebound name, scale to zero", "", "POST", "attacker.example", nil, 403},
		{"a LAN address", "", "PUT", "192.0.2.7:8080", nil, 403},
		{"localhost", "", "PUT", "localhost:8080", nil, 201},
		{"127.0.0.1", "", "PUT", "127.0.0.1:8080", nil, 201},
		{"[::1]", "", "PUT", "[::1]:8080", nil, 201},
		{"foreign Origin", "", "PUT", "127.0.0.1:8080", []string{"Origin", "http://attacker.example"}, 403},
		{"Origin of another port", "", "PUT", "127.0.0.1:8080", []string{"Origin", "http://127.0.0.1:9999"}, 403},
		{"same Origin", "", "PUT", "127.0.0.1:8080", []string{"Origin", "http://127.0.0.1:8080"}, 201},
		{"cross-site fetch", "", "PUT", "127.0.0.1:8080", []string{"Sec-Fetch-Site", "cross-site"}, 403},
		{"same-origin fetch", "", "PUT", "127.0.0.1:8080", []string{"Sec-Fetch-Site", "same-origin"}, 201},
		{"with a token, any Host", "t", "PUT", "purify.lab.example:8088", []string{"Authorization", "Bearer t"}, 201},
		{"with a token, foreign Origin", "t", "PUT", "purify.lab.example:8088", []string{"Authorization", "Bearer t", "Origin", "http://attacker.example"}, 403},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := "/functions/echo"
			switch c.method {
			case "GET":
				path = "/functions"
			case "POST":
				path = "/functions/echo/scale-to-zero"
			}
			r := httptest.NewRequest(c.method, path, strings.NewReader(echo))
			r.Host = c.host
			for i := 0; i+1 < len(c.hdr); i += 2 {
				r.Header.Set(c.hdr[i], c.hdr[i+1])
			}
			w := httptest.NewRecorder()
			p.Handler(HandlerOptions{Token: c.token}).ServeHTTP(w, r)
			if w.Code != c.status {
				t.Errorf("%s %s Host %s %v: %d %s, want %d", c.method, path, c.host, c.hdr, w.Code, w.Body, c.status)
			}
		})
	}
}
