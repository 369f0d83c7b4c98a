// Package null is the calibration target: a trivial HTTP endpoint served
// by the harness itself, on the machine that drives the load. Run like any
// other target, it shows what the load generator, the harness and the
// HTTP exchange cost per request with no function behind them: on a
// metered machine that also drives the load, that much of every other
// target's figure is the measurement's own cost.
//
// It answers every request with a fixed status and a fixed body after
// reading the request's body, so that the bytes on the wire can match the
// function's (response_bytes).
package null

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/academemes/harness/targets"
	"github.com/academemes/harness/targets/option"
)

// Kind is the kind's name in scenarios.
const Kind = "null"

func init() {
	targets.Register(targets.Kind{
		Name:    Kind,
		Doc:     "calibration: a trivial HTTP endpoint served by the harness itself on the load machine, so that the report shows what the load generator alone costs per request",
		Modes:   []targets.Mode{targets.Warm},
		Options: new(options).fields().Docs(),
		New:     newTarget,
		Check: func(spec targets.Spec) error {
			_, err := parseOptions(spec.Options)
			return err
		},
		// The function only names the target's rows beside the others'
		// (write the function they serve); nothing is loaded.
		CheckFunction: func(string, string) error { return nil },
	})
}

// options are a null target's settings.
type options struct {
	Status        int
	ResponseBytes int64
}

func (o *options) fields() option.List {
	return option.List{
		option.Int(&o.Status, "status", 200, 599, "HTTP status of every answer (default 200)"),
		option.Size(&o.ResponseBytes, "response_bytes", "size of every answer's body, to match the function's: bytes or a size like 4k (default 0)"),
	}
}

func parseOptions(m map[string]any) (options, error) {
	o := options{Status: http.StatusOK}
	err := o.fields().Decode(m)
	if o.ResponseBytes < 0 || o.ResponseBytes > math.MaxInt32 {
		err = errors.Join(err, option.Errorf("response_bytes", "want 0 to 2 GiB, got %d", o.ResponseBytes))
	}
	return o, err
}

// Target is a running null endpoint.
type Target struct {
	spec targets.Spec
	opt  options
	body []byte

	mu   sync.Mutex
	srv  *http.Server
	url  *url.URL
	reqs atomic.Int64
}

var (
	_ targets.Target   = (*Target)(nil)
	_ targets.Reporter = (*Target)(nil)
)

func newTarget(spec targets.Spec) (targets.Target, error) {
	o, err := parseOptions(spec.Options)
	if err != nil {
		return nil, fmt.Errorf("null target %s: %w", spec.Name, err)
	}
	if spec.Mode != "" && spec.Mode != targets.Warm {
		return nil, fmt.Errorf("null target %s: mode %q: it has only warm (nothing starts per request)", spec.Name, spec.Mode)
	}
	return &Target{spec: spec, opt: o, body: make([]byte, o.ResponseBytes)}, nil
}

// Info implements targets.Target.
func (t *Target) Info() targets.Info {
	return targets.Info{Name: t.spec.Name, Kind: Kind, Mode: targets.Warm, Function: t.spec.Function}
}

// Start implements targets.Target: it listens on a loopback port.
func (t *Target) Start(ctx context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.srv != nil {
		return nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("null target %s: %w", t.spec.Name, err)
	}
	t.srv = &http.Server{Handler: http.HandlerFunc(t.serve), ReadHeaderTimeout: 10 * time.Second}
	t.url = &url.URL{Scheme: "http", Host: ln.Addr().String(), Path: "/"}
	go t.srv.Serve(ln)
	t.spec.Logf("null endpoint on %s: the load generator's own cost, no function behind it", t.url)
	return nil
}

func (t *Target) serve(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	t.reqs.Add(1)
	w.Header().Set("Content-Length", fmt.Sprint(len(t.body)))
	w.WriteHeader(t.opt.Status)
	w.Write(t.body)
}

// URL implements targets.Target.
func (t *Target) URL() *url.URL {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.url == nil {
		return nil
	}
	u := *t.url
	return &u
}

// Reset implements targets.Target: there is nothing to scale to zero.
func (t *Target) Reset(context.Context) error { return nil }

// Stop implements targets.Target.
func (t *Target) Stop(ctx context.Context) error {
	t.mu.Lock()
	srv := t.srv
	t.srv = nil
	t.mu.Unlock()
	if srv == nil {
		return nil
	}
	if err := srv.Shutdown(ctx); err != nil {
		srv.Close()
		return fmt.Errorf("null target %s: %w", t.spec.Name, err)
	}
	return nil
}

// Report implements targets.Reporter.
func (t *Target) Report() map[string]any {
	return map[string]any{"requests_served": t.reqs.Load(), "status": t.opt.Status, "response_bytes": t.opt.ResponseBytes}
}
