package wasm

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/academemes/harness/targets"
)

// HandlerOptions configure the HTTP face of a platform.
type HandlerOptions struct {
	// Token, when set, is required as "Authorization: Bearer TOKEN" on the
	// deploy API (/functions...). Without one the deploy API answers only
	// requests addressed to a loopback host (Host: localhost, 127.0.0.1,
	// [::1]), so that a web page cannot reach it by DNS rebinding; with or
	// without one it refuses cross-origin browser requests.
	Token string
	// InvokeToken, when set, is required as "Authorization: Bearer TOKEN"
	// on invocation (/fn/...), which is otherwise open, as on other
	// function platforms; the deploy token is accepted there too.
	InvokeToken string
}

// Timeouts of the server NewServer makes (README.md, "Purify").
const (
	// ReadHeaderTimeout bounds reading a request's headers.
	ReadHeaderTimeout = 10 * time.Second
	// ReadTimeout bounds reading a whole request, body included: the
	// largest module (64 MiB) must arrive at over 1 MiB/s.
	ReadTimeout = time.Minute
	// IdleTimeout bounds a kept-alive connection between requests.
	IdleTimeout = 2 * time.Minute
	// WriteTimeout bounds sending an answer, counted from when it is
	// ready (a function may run up to its own timeout before that).
	WriteTimeout = time.Minute
	// MaxHeaderBytes bounds a request's headers.
	MaxHeaderBytes = 64 << 10
)

// NewServer makes the HTTP server for h with the timeouts above, so that
// a client that sends slowly or not at all (a declared 1 MB body at one
// byte a second) holds a connection for a bounded time.
func NewServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
	}
}

// CheckListen refuses to serve the deploy API off loopback without a token.
func CheckListen(addr, token string) error {
	if token != "" {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("listen address %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("listen address %q is not loopback: a bearer token is required (--token) to protect the deploy API", addr)
}

// Handler serves the platform's HTTP API (functions/README.md, "HTTP API"):
//
//	POST|GET  /fn/{name}[/...]           invoke
//	GET       /functions                 list
//	GET       /functions/{name}          describe
//	PUT       /functions/{name}          deploy module bytes (config in X-Purify-Config)
//	DELETE    /functions/{name}          remove
//	POST      /functions/{name}/scale-to-zero
//	GET       /healthz
func (p *Platform) Handler(o HandlerOptions) http.Handler {
	mux := http.NewServeMux()
	invoke := http.Handler(http.HandlerFunc(p.serveInvoke))
	if o.InvokeToken != "" {
		invoke = requireToken(invoke, "invocation", o.InvokeToken, o.Token)
	}
	mux.Handle("/fn/", invoke)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	api := http.NewServeMux()
	api.HandleFunc("GET /functions", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, p.Functions()) })
	api.HandleFunc("GET /functions/{name}", func(w http.ResponseWriter, r *http.Request) {
		info, err := p.Function(r.PathValue("name"))
		if err != nil {
			apiError(w, err)
			return
		}
		writeJSON(w, 200, info)
	})
	api.HandleFunc("PUT /functions/{name}", p.serveDeploy)
	api.HandleFunc("DELETE /functions/{name}", func(w http.ResponseWriter, r *http.Request) {
		if err := p.Delete(r.PathValue("name")); err != nil {
			apiError(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	api.HandleFunc("POST /functions/{name}/scale-to-zero", func(w http.ResponseWriter, r *http.Request) {
		if err := p.ScaleToZero(r.PathValue("name")); err != nil {
			apiError(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	guarded := sameOrigin(api)
	if o.Token != "" {
		guarded = requireToken(guarded, "the deploy API", o.Token)
	} else {
		guarded = loopbackHost(guarded)
	}
	mux.Handle("/functions", guarded)
	mux.Handle("/functions/", guarded)
	return mux
}

// requireToken lets through requests bearing one of tokens.
func requireToken(next http.Handler, what string, tokens ...string) http.Handler {
	var wants [][]byte
	for _, t := range tokens {
		if t != "" {
			wants = append(wants, []byte("Bearer "+t))
		}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := []byte(r.Header.Get("Authorization"))
		ok := 0
		for _, want := range wants {
			ok |= subtle.ConstantTimeCompare(got, want)
		}
		if ok != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="purify"`)
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": what + " needs Authorization: Bearer TOKEN"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// loopbackHost lets through requests addressed to a loopback host: a
// token-less deploy API listens on loopback only (CheckListen), and a
// page that rebinds its own name to 127.0.0.1 still sends that name.
func loopbackHost(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		ip := net.ParseIP(strings.Trim(host, "[]"))
		if !strings.EqualFold(host, "localhost") && (ip == nil || !ip.IsLoopback()) {
			writeJSON(w, http.StatusForbidden, map[string]string{"error": fmt.Sprintf("the deploy API answers requests to localhost only, not to Host %q (without a token it is loopback-only)", r.Host)})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// sameOrigin refuses what a browser sends from another origin: an Origin
// header that is not this server, or Sec-Fetch-Site saying cross-site or
// same-site. Clients that are not browsers send neither.
func sameOrigin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
			writeJSON(w, http.StatusForbidden, map[string]string{"error": "the deploy API refuses cross-origin browser requests (Sec-Fetch-Site: " + site + ")"})
			return
		}
		if origin := r.Header.Get("Origin"); origin != "" {
			u, err := url.Parse(origin)
			if err != nil || u.Host != r.Host || u.Scheme != "http" && u.Scheme != "https" {
				writeJSON(w, http.StatusForbidden, map[string]string{"error": fmt.Sprintf("the deploy API refuses cross-origin browser requests (Origin %q)", origin)})
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// maxModuleBytes bounds a deployed module.
const maxModuleBytes = 64 << 20

func (p *Platform) serveDeploy(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	cfg, err := ParseFunctionConfig([]byte(r.Header.Get("X-Purify-Config")))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	body, release, berr := p.readBody(w, r, maxModuleBytes)
	defer release()
	if berr != nil {
		writeJSON(w, berr.status, map[string]string{"error": "module: " + berr.msg})
		return
	}
	if err := p.Deploy(r.Context(), name, body, cfg); err != nil {
		p.opts.Logf("purify: deploy %s refused: %v", name, err)
		apiError(w, err)
		return
	}
	info, _ := p.Function(name)
	writeJSON(w, http.StatusCreated, info)
}

func apiError(w http.ResponseWriter, err error) {
	status := http.StatusBadRequest
	if errors.Is(err, ErrNotFound) {
		status = http.StatusNotFound
	}
	writeJSON(w, status, map[string]string{"error": err.Error()})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func (p *Platform) serveInvoke(w http.ResponseWriter, r *http.Request) {
	name, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/fn/"), "/")
	f := p.acquire(name)
	if f == nil {
		writeFault(w, name, &Fault{Kind: "not-found", Status: 404, Msg: "no function named " + strconv.Quote(name) + " is deployed"})
		return
	}
	defer f.release() // the version this request started on stays until it ends
	if r.Method != http.MethodGet && r.Method != http.MethodPost && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD, POST")
		writeFault(w, name, &Fault{Kind: "method", Status: 405, Msg: "invoke with POST (body on stdin) or GET (query)"})
		return
	}
	body, release, berr := p.readBody(w, r, f.cfg.MaxRequestBytes)
	defer release()
	if berr != nil {
		writeFault(w, name, &Fault{Kind: berr.kind, Status: berr.status, Msg: berr.msg})
		return
	}
	c := newCall(name, r, body, int(f.cfg.MaxResponseBytes))
	var key [32]byte
	if f.cache != nil {
		key = cacheKey(c)
		if resp, ok := f.cache.get(key); ok {
			f.requests.Add(1)
			f.cacheHit.Add(1)
			w.Header().Set("X-Purify-Cache", "hit")
			writeResponse(w, r, outcome{resp: resp})
			return
		}
	}
	o := f.invoke(r.Context(), c)
	// The answer is ready: the client has WriteTimeout to take it.
	http.NewResponseController(w).SetWriteDeadline(time.Now().Add(WriteTimeout))
	if o.fault != nil {
		f.faults.Add(1)
		if o.cold {
			w.Header().Set(targets.HeaderColdStart, "1")
			w.Header().Set(targets.HeaderStartNs, strconv.FormatInt(o.startNs, 10))
		}
		line := fmt.Sprintf("purify: %s: %s fault: %s", name, o.fault.Kind, o.fault.Msg)
		if s := strings.TrimSpace(o.fault.Stderr); s != "" {
			line += " (stderr: " + strconv.Quote(tail(s, 512)) + ")"
		}
		p.opts.Logf("%s", line)
		writeFault(w, name, o.fault)
		return
	}
	if f.cache != nil {
		f.cache.put(key, o.resp)
		w.Header().Set("X-Purify-Cache", "miss")
	}
	writeResponse(w, r, o)
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

// bodyError is why a request body was not read, as a status.
type bodyError struct {
	kind   string // the fault kind of an invocation
	status int
	msg    string
}

// readBody reads r's body of at most limit bytes into a buffer that grows
// as bytes arrive (never sized from the declared Content-Length), each
// growth counted against the platform's bound on bodies in memory. The
// caller calls release when done with the body, error or not.
func (p *Platform) readBody(w http.ResponseWriter, r *http.Request, limit int64) (body []byte, release func(), berr *bodyError) {
	var held int64
	release = func() { p.bodies.give(held) }
	defer func() {
		if berr != nil {
			// What is left of the body is not read: close the connection
			// after the answer rather than wait for the rest.
			w.Header().Set("Connection", "close")
		}
	}()
	if r.ContentLength > limit {
		return nil, release, &bodyError{"too-large", http.StatusRequestEntityTooLarge,
			fmt.Sprintf("the request body of %d bytes is over the %d-byte limit", r.ContentLength, limit)}
	}
	rd := http.MaxBytesReader(w, r.Body, limit)
	var buf []byte
	for {
		if len(buf) == cap(buf) {
			grow := int64(min(max(2*cap(buf), 512), int(limit)+1)) - int64(cap(buf))
			if !p.bodies.take(grow, false) {
				return nil, release, &bodyError{"busy", http.StatusServiceUnavailable,
					fmt.Sprintf("the server holds its bound of %d MiB of request bodies (try again later)", p.bodies.max>>20)}
			}
			held += grow
			nb := make([]byte, len(buf), cap(buf)+int(grow))
			copy(nb, buf)
			buf = nb
		}
		n, err := rd.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf[:len(buf):len(buf)], release, nil
		}
		var tooLarge *http.MaxBytesError
		var timeout interface{ Timeout() bool }
		switch {
		case err == nil:
		case errors.As(err, &tooLarge):
			return nil, release, &bodyError{"too-large", http.StatusRequestEntityTooLarge, fmt.Sprintf("the request body is over the %d-byte limit", limit)}
		case errors.As(err, &timeout) && timeout.Timeout():
			return nil, release, &bodyError{"timeout", http.StatusRequestTimeout, fmt.Sprintf("the request body did not arrive within %s", ReadTimeout)}
		default:
			return nil, release, &bodyError{"body", http.StatusBadRequest, "reading the request body: " + err.Error()}
		}
	}
}

func writeResponse(w http.ResponseWriter, r *http.Request, o outcome) {
	h := w.Header()
	for k, v := range o.resp.header {
		h[k] = v
	}
	if o.cold {
		h.Set(targets.HeaderColdStart, "1")
		h.Set(targets.HeaderStartNs, strconv.FormatInt(o.startNs, 10))
	} else {
		h.Set(targets.HeaderColdStart, "0")
	}
	h.Set("Content-Length", strconv.Itoa(len(o.resp.body)))
	w.WriteHeader(o.resp.status)
	if r.Method != http.MethodHead {
		w.Write(o.resp.body)
	}
}

func writeFault(w http.ResponseWriter, name string, f *Fault) {
	w.Header().Set("X-Purify-Fault", f.Kind)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(f.Status)
	b, _ := json.Marshal(map[string]string{"error": f.Msg, "fault": f.Kind, "function": name})
	w.Write(append(b, '\n'))
}

func bytesContains(b []byte, s string) bool { return bytes.Contains(b, []byte(s)) }
