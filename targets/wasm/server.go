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
	"strconv"
	"strings"

	"github.com/academemes/harness/targets"
)

// HandlerOptions configure the HTTP face of a platform.
type HandlerOptions struct {
	// Token, when set, is required as "Authorization: Bearer TOKEN" on the
	// deploy API (/functions...). Invocation (/fn/...) is open, as on
	// other function platforms.
	Token string
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
	mux.HandleFunc("/fn/", p.serveInvoke)
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
	guarded := requireToken(o.Token, api)
	mux.Handle("/functions", guarded)
	mux.Handle("/functions/", guarded)
	return mux
}

func requireToken(token string, next http.Handler) http.Handler {
	if token == "" {
		return next
	}
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="purify"`)
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "the deploy API needs Authorization: Bearer TOKEN"})
			return
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
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxModuleBytes))
	if err != nil {
		writeJSON(w, http.StatusRequestEntityTooLarge, map[string]string{"error": fmt.Sprintf("module: %v (limit %d bytes)", err, maxModuleBytes)})
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
	body, err := readBody(r, f.cfg.MaxRequestBytes)
	if err != nil {
		writeFault(w, name, &Fault{Kind: "too-large", Status: 413, Msg: err.Error()})
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

func readBody(r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, fmt.Errorf("the request body of %d bytes is over the function's %d-byte limit", r.ContentLength, limit)
	}
	var buf bytes.Buffer
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength))
	}
	n, err := buf.ReadFrom(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("reading the request body: %w", err)
	}
	if n > limit {
		return nil, fmt.Errorf("the request body is over the function's %d-byte limit", limit)
	}
	return buf.Bytes(), nil
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
