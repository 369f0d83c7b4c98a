package openfaas

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/academemes/harness/targets"
)

// coldProxy is the cold-mode front: a loopback server that makes every
// request a cold start of the OpenFaaS function. Requests go one at a
// time (one function, one replica). After each response the function is
// taken down again (scaled to zero, its container removed, or deleted),
// while the load generator waits for its next request; a request that
// arrives before that is done waits for it.
//
// Responses carry X-Cold-Start: 1. X-Start-Ns is set where the start is
// timed here (redeploy: deploy to ready); with scale-to-zero and
// remove-container the gateway scales from zero inside the request and
// the start-up part is not separable, so the header is left as the
// function gave it.
type coldProxy struct {
	t   *Target
	url *url.URL
	srv *http.Server
	// invoke is the gateway's URL of the function; client forwards to it.
	invoke *url.URL
	client *http.Client

	// turn is held from the start of a request until the function is cold
	// again after it.
	turn chan struct{}

	mu       sync.Mutex
	requests int
	failures int
	lastErr  string
}

func startColdProxy(t *Target) (*coldProxy, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*t.opts.ReadyTimeout)
	defer cancel()
	// Decide the method now and leave the function cold for the first
	// request.
	if err := t.makeCold(ctx, false); err != nil {
		return nil, fmt.Errorf("cold mode: first cold start: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("cold mode: listen on loopback: %w", err)
	}
	p := &coldProxy{
		t:    t,
		url:  &url.URL{Scheme: "http", Host: ln.Addr().String()},
		turn: make(chan struct{}, 1),
	}
	p.invoke = t.api.InvokeURL(t.service)
	p.client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	go p.srv.Serve(ln)
	return p, nil
}

// ServeHTTP forwards one request to a cold function.
func (p *coldProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	select {
	case p.turn <- struct{}{}:
	case <-r.Context().Done():
		return
	}
	t := p.t
	var startNs int64 = -1
	if t.Method() == MethodRedeploy {
		t0 := time.Now()
		if err := t.bringUp(r.Context()); err != nil {
			p.fail(err)
			// Leave it deleted for the next try.
			_ = t.undeploy(context.Background())
			<-p.turn
			http.Error(w, "openfaas cold start: "+err.Error(), http.StatusBadGateway)
			return
		}
		startNs = time.Since(t0).Nanoseconds()
	}
	w.Header().Set(targets.HeaderColdStart, "1")
	if startNs >= 0 {
		w.Header().Set(targets.HeaderStartNs, strconv.FormatInt(startNs, 10))
	}
	if err := p.forward(w, r); err != nil {
		p.fail(err)
	}
	p.mu.Lock()
	p.requests++
	p.mu.Unlock()
	go func() {
		defer func() { <-p.turn }()
		ctx, cancel := context.WithTimeout(context.Background(), 2*t.opts.ReadyTimeout)
		defer cancel()
		if err := t.makeCold(ctx, false); err != nil {
			p.fail(err)
		}
	}()
}

// forward sends r to the gateway and copies the answer to w.
func (p *coldProxy) forward(w http.ResponseWriter, r *http.Request) error {
	u := p.invoke.JoinPath(r.URL.Path)
	u.RawQuery = r.URL.RawQuery
	out, err := http.NewRequestWithContext(r.Context(), r.Method, u.String(), r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return err
	}
	out.ContentLength = r.ContentLength
	for k, vs := range r.Header {
		if k != "Connection" && k != "Keep-Alive" && k != "Te" && k != "Upgrade" && k != "Proxy-Connection" {
			out.Header[k] = vs
		}
	}
	resp, err := p.client.Do(out)
	if err != nil {
		http.Error(w, "openfaas gateway: "+err.Error(), http.StatusBadGateway)
		return err
	}
	defer resp.Body.Close()
	for k, vs := range resp.Header {
		if k == targets.HeaderColdStart || k == targets.HeaderStartNs && w.Header().Get(k) != "" {
			continue
		}
		w.Header()[k] = vs
	}
	w.WriteHeader(resp.StatusCode)
	_, err = io.Copy(w, resp.Body)
	return err
}

// exclusive runs f while no request or teardown is in flight.
func (p *coldProxy) exclusive(ctx context.Context, f func() error) error {
	select {
	case p.turn <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-p.turn }()
	return f()
}

func (p *coldProxy) fail(err error) {
	p.mu.Lock()
	p.failures++
	p.lastErr = err.Error()
	p.mu.Unlock()
	p.t.spec.Logf("openfaas: cold mode: %v", err)
}

// close stops the front after the last teardown.
func (p *coldProxy) close(ctx context.Context) error {
	select {
	case p.turn <- struct{}{}:
	case <-ctx.Done():
	}
	return p.srv.Shutdown(ctx)
}

func (p *coldProxy) report() map[string]any {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := map[string]any{"cold_requests": p.requests, "cold_failures": p.failures}
	if p.lastErr != "" {
		r["cold_last_error"] = p.lastErr
	}
	return r
}
