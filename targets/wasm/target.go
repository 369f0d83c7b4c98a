package wasm

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
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/academemes/harness/functions"
	"github.com/academemes/harness/targets"
)

func init() {
	targets.Register(targets.Kind{
		Name:    "wasm",
		Doc:     "Purify: WASI modules on wazero, in process on a loopback HTTP server, or on a remote `harness serve`",
		Modes:   []targets.Mode{targets.Cold, targets.Prewarmed, targets.Snapshot, targets.Warm},
		Options: new(options).fields().Docs(),
		New:     newTarget,
		Check: func(spec targets.Spec) error {
			_, err := parseOptions(spec.Options, cmp.Or(spec.Mode, targets.Cold))
			return err
		},
		// A remote `harness serve` runs the function on its machine.
		Host: func(spec targets.Spec) string {
			if o, err := parseOptions(spec.Options, cmp.Or(spec.Mode, targets.Cold)); err == nil && o.Remote != nil {
				return o.Remote.Hostname()
			}
			return ""
		},
	})
}

// Target serves one function from Purify.
type Target struct {
	spec     targets.Spec
	cfg      FunctionConfig
	variant  string
	deployed string // name on the platform
	remote   *url.URL
	token    string
	cacheDir string
	// cacheDirSet: the scenario chose cache_dir; otherwise it is
	// DefaultCacheDir and a failure to use it is not fatal.
	cacheDirSet bool

	p      *Platform
	srv    *http.Server
	url    *url.URL
	client *http.Client
	final  *FunctionInfo // the function's counters as Stop found them
}

var (
	_ targets.Target   = (*Target)(nil)
	_ targets.Reporter = (*Target)(nil)
)

func newTarget(spec targets.Spec) (targets.Target, error) {
	o, err := parseOptions(spec.Options, cmp.Or(spec.Mode, targets.Cold))
	errs := []error{err}
	mode := cmp.Or(spec.Mode, targets.Cold)
	if !mode.Valid() {
		errs = append(errs, fmt.Errorf("mode %q: use cold, prewarmed, snapshot or warm", mode))
	}
	if spec.Function == "" {
		errs = append(errs, errors.New("function: name a function directory, e.g. memes"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("wasm target %s: %w", spec.Name, err)
	}
	t := &Target{spec: spec, cfg: o.Config, variant: o.Variant, remote: o.Remote, token: o.Token,
		client: &http.Client{Timeout: time.Minute}, cacheDir: DefaultCacheDir()}
	t.cfg.Mode = mode
	if _, t.cacheDirSet = spec.Options["cache_dir"]; t.cacheDirSet {
		t.cacheDir = o.CacheDir
		if t.cacheDir == "memory" {
			t.cacheDir = ""
		}
	}
	t.deployed = spec.Function
	if t.variant != "" {
		t.deployed += "-" + t.variant
	}
	return t, nil
}

// Info implements targets.Target; Variant and Language name the build
// deployed ("go" for the Go command build).
func (t *Target) Info() targets.Info {
	v := t.moduleVariant()
	return targets.Info{Name: t.spec.Name, Kind: "wasm", Mode: t.cfg.Mode, Function: t.spec.Function,
		Variant: cmp.Or(v, "go"), Language: functions.Language(v)}
}

// moduleVariant is the variant of the module to deploy: the reactor build
// in warm and snapshot mode unless a variant is named (the small and Rust
// builds serve every mode from one module).
func (t *Target) moduleVariant() string {
	if t.variant == "" && usesReactor(t.cfg.Mode) {
		return functions.Reactor
	}
	return t.variant
}

// module reads the bytes to deploy.
func (t *Target) module() ([]byte, error) {
	return functions.Module(functions.Open(t.spec.FunctionsDir), t.spec.Function, t.moduleVariant())
}

// Start implements targets.Target: deploys the function, in process on a
// fresh loopback server or on the remote platform.
func (t *Target) Start(ctx context.Context) error {
	mod, err := t.module()
	if err != nil {
		return fmt.Errorf("wasm target %s: %w", t.spec.Name, err)
	}
	if t.remote != nil {
		return t.startRemote(ctx, mod)
	}
	p, err := NewPlatform(Options{CacheDir: t.cacheDir, Logf: t.spec.Logf})
	if err != nil && !t.cacheDirSet && t.cacheDir != "" {
		// The default cache is a convenience: without it, compile anew.
		t.spec.Logf("wasm target %s: %v; keeping compiled code in memory only", t.spec.Name, err)
		t.cacheDir = ""
		p, err = NewPlatform(Options{Logf: t.spec.Logf})
	}
	if err != nil {
		return fmt.Errorf("wasm target %s: %w", t.spec.Name, err)
	}
	t.p = p
	if err := p.Deploy(ctx, t.deployed, mod, t.cfg); err != nil {
		t.Stop(ctx)
		return fmt.Errorf("wasm target %s: %w", t.spec.Name, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Stop(ctx)
		return fmt.Errorf("wasm target %s: listen: %w", t.spec.Name, err)
	}
	t.srv = NewServer(p.Handler(HandlerOptions{}))
	go t.srv.Serve(ln)
	t.url = &url.URL{Scheme: "http", Host: ln.Addr().String(), Path: "/fn/" + t.deployed}
	return t.waitReady(ctx)
}

// waitReady waits for a prewarmed pool to fill, so the first measured
// request does not pay for it.
func (t *Target) waitReady(ctx context.Context) error {
	if t.p == nil || t.cfg.Mode == targets.Cold || t.cfg.Mode == targets.Snapshot {
		return nil
	}
	want := t.cfg.withDefaults().Pool
	if t.cfg.Mode == targets.Warm {
		want = 1
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		info, err := t.p.Function(t.deployed)
		if err != nil {
			return err
		}
		if info.Ready >= want || time.Now().After(deadline) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func (t *Target) startRemote(ctx context.Context, mod []byte) error {
	cfgJSON, err := json.Marshal(t.cfg)
	if err != nil {
		return err
	}
	u := *t.remote
	u.Path = path.Join(u.Path, "/functions", t.deployed)
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, u.String(), bytes.NewReader(mod))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/wasm")
	req.Header.Set("X-Purify-Config", string(cfgJSON))
	if err := t.do(req, http.StatusCreated); err != nil {
		return fmt.Errorf("wasm target %s: deploy to %s: %w", t.spec.Name, t.remote, err)
	}
	fu := *t.remote
	fu.Path = path.Join(fu.Path, "/fn", t.deployed)
	t.url = &fu
	return nil
}

// do sends req to the remote platform with the token and wants status
// want; an unreachable platform is targets.ErrUnavailable.
func (t *Target) do(req *http.Request, want int) error { return t.doJSON(req, want, nil) }

// doJSON is do that decodes the answer into out (nil: discards it).
func (t *Target) doJSON(req *http.Request, want int, out any) error {
	if t.token != "" {
		req.Header.Set("Authorization", "Bearer "+t.token)
	}
	resp, err := t.client.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %v", targets.ErrUnavailable, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("%s %s: %s: %s", req.Method, req.URL.Path, resp.Status, strings.TrimSpace(string(body)))
	}
	if out == nil {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4096)) // so the connection is reused
		return nil
	}
	return json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(out)
}

// URL implements targets.Target.
func (t *Target) URL() *url.URL {
	if t.url == nil {
		return nil
	}
	u := *t.url
	return &u
}

// Reset implements targets.Target: scale to zero.
func (t *Target) Reset(ctx context.Context) error {
	if t.remote != nil {
		u := *t.remote
		u.Path = path.Join(u.Path, "/functions", t.deployed, "scale-to-zero")
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), nil)
		if err != nil {
			return err
		}
		return t.do(req, http.StatusNoContent)
	}
	if t.p == nil {
		return errors.New("wasm target: Reset before Start")
	}
	return t.p.ScaleToZero(t.deployed)
}

// Stop implements targets.Target.
func (t *Target) Stop(ctx context.Context) error {
	var errs []error
	// Keep the counters: the runner reports a target after stopping it,
	// when the platform (or the remote function) is gone.
	if info, err := t.info(ctx); err == nil {
		t.final = &info
	}
	if t.remote != nil && t.url != nil {
		u := *t.remote
		u.Path = path.Join(u.Path, "/functions", t.deployed)
		req, err := http.NewRequestWithContext(ctx, http.MethodDelete, u.String(), nil)
		if err == nil {
			err = t.do(req, http.StatusNoContent)
		}
		if err != nil {
			errs = append(errs, err)
		}
		t.url = nil
	}
	if t.srv != nil {
		errs = append(errs, t.srv.Close())
		t.srv = nil
	}
	if t.p != nil {
		errs = append(errs, t.p.Close())
		t.p = nil
	}
	return errors.Join(errs...)
}

// Report implements targets.Reporter.
func (t *Target) Report() map[string]any {
	r := map[string]any{"platform": "purify (wazero)", "deployed_as": t.deployed, "variant": t.variant, "config": t.cfg.withDefaults()}
	if t.remote != nil {
		r["remote"] = t.remote.String()
	}
	info, err := t.info(context.Background())
	if err != nil && t.final != nil {
		info, err = *t.final, nil
	}
	if err == nil {
		r["module_bytes"] = info.Bytes
		r["module_sha256"] = info.SHA256
		r["requests"] = info.Requests
		r["cold_starts"] = info.Cold
		r["faults"] = info.Faults
		r["cache_hits"] = info.CacheHits
		if info.Snapshot != nil {
			r["snapshot"] = info.Snapshot // how its instances were restored
		}
	}
	return r
}

// info is the deployed function's description and counters, from the
// in-process platform or the remote one.
func (t *Target) info(ctx context.Context) (FunctionInfo, error) {
	switch {
	case t.p != nil:
		return t.p.Function(t.deployed)
	case t.remote != nil && t.url != nil:
		u := *t.remote
		u.Path = path.Join(u.Path, "/functions", t.deployed)
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			return FunctionInfo{}, err
		}
		var info FunctionInfo
		err = t.doJSON(req, http.StatusOK, &info)
		return info, err
	}
	return FunctionInfo{}, errors.New("wasm target: not started")
}
