package wasm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/academemes/harness/functions"
	"github.com/academemes/harness/targets"
)

func init() {
	targets.Register(targets.Kind{
		Name:  "wasm",
		Doc:   "Purify: WASI modules on wazero, in process on a loopback HTTP server, or on a remote `harness serve`",
		Modes: []targets.Mode{targets.Cold, targets.Prewarmed, targets.Warm},
		Options: map[string]string{
			"variant":      `which build to serve: "" the Go build (the reactor build in warm mode), "small" the build without a language runtime`,
			"remote":       "base URL of a `harness serve` to deploy to and load instead of serving in process (http://HOST:PORT)",
			"token":        "bearer token for the remote deploy API",
			"impure":       "give the function a real clock (default false: pure)",
			"cache":        "answer repeated identical requests from a response cache (pure functions only)",
			"cache_bytes":  "bound of the response cache in bytes (default 16 MiB)",
			"memory_pages": "linear memory limit in 64 KiB pages (default 2048)",
			"timeout":      "time limit per request, e.g. 2s (default 10s); past it the client gets 504",
			"concurrency":  "most instances running at once (default 64)",
			"pool":         "instances kept ready in prewarmed mode (default 4)",
			"idle_timeout": "scale to zero after this long without requests (default 5m)",
			"no_interrupt": "trusted code: skip close-on-context-done (faster guest code, timeouts no longer stop a loop)",
			"cache_dir":    "directory for wazero's compilation cache, or memory (default: the user's cache directory, e.g. ~/.cache/academemes-harness/wazero)",
		},
		New: newTarget,
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
	t := &Target{spec: spec, client: &http.Client{Timeout: time.Minute}, cacheDir: DefaultCacheDir()}
	var errs []error
	mode := spec.Mode
	if mode == "" {
		mode = targets.Cold
	}
	t.cfg.Mode = mode
	keys := make([]string, 0, len(spec.Options))
	for k := range spec.Options {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := t.option(k, spec.Options[k]); err != nil {
			errs = append(errs, fmt.Errorf("option %s: %w", k, err))
		}
	}
	if err := t.cfg.Validate(); err != nil {
		errs = append(errs, err)
	}
	if spec.Function == "" {
		errs = append(errs, errors.New("function: name a function directory, e.g. memes"))
	}
	t.deployed = spec.Function
	if t.variant != "" {
		t.deployed += "-" + t.variant
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("wasm target %s: %w", spec.Name, err)
	}
	return t, nil
}

func (t *Target) option(k string, v any) error {
	str := func() (string, error) {
		s, ok := v.(string)
		if !ok {
			return "", fmt.Errorf("want a string, got %T", v)
		}
		return s, nil
	}
	num := func() (int64, error) {
		switch n := v.(type) {
		case int:
			return int64(n), nil
		case int64:
			return n, nil
		case uint64:
			return int64(n), nil
		case float64:
			if n != float64(int64(n)) {
				return 0, fmt.Errorf("want a whole number, got %v", n)
			}
			return int64(n), nil
		}
		return 0, fmt.Errorf("want a number, got %T", v)
	}
	boolean := func() (bool, error) {
		b, ok := v.(bool)
		if !ok {
			return false, fmt.Errorf("want true or false, got %T", v)
		}
		return b, nil
	}
	dur := func() (Duration, error) {
		switch d := v.(type) {
		case string:
			x, err := time.ParseDuration(d)
			return Duration(x), err
		case time.Duration:
			return Duration(d), nil
		}
		return 0, fmt.Errorf("want a duration like 2s, got %T", v)
	}
	var err error
	var n int64
	switch k {
	case "variant":
		t.variant, err = str()
	case "remote":
		var s string
		if s, err = str(); err == nil {
			t.remote, err = url.Parse(strings.TrimSuffix(s, "/"))
			if err == nil && (t.remote.Scheme != "http" && t.remote.Scheme != "https" || t.remote.Host == "") {
				err = fmt.Errorf("%q: want http://HOST:PORT", s)
			}
		}
	case "token":
		t.token, err = str()
	case "cache_dir":
		t.cacheDir, err = str()
		t.cacheDirSet = true
		if t.cacheDir == "memory" {
			t.cacheDir = ""
		}
	case "impure":
		t.cfg.Impure, err = boolean()
	case "cache":
		t.cfg.Cache, err = boolean()
	case "no_interrupt":
		t.cfg.NoInterrupt, err = boolean()
	case "cache_bytes":
		t.cfg.CacheBytes, err = num()
	case "memory_pages":
		n, err = num()
		t.cfg.MemoryPages = uint32(n)
	case "concurrency":
		n, err = num()
		t.cfg.Concurrency = int(n)
	case "pool":
		n, err = num()
		t.cfg.Pool = int(n)
	case "timeout":
		t.cfg.Timeout, err = dur()
	case "idle_timeout":
		t.cfg.IdleTimeout, err = dur()
	default:
		err = errors.New("unknown option")
	}
	return err
}

// Info implements targets.Target.
func (t *Target) Info() targets.Info {
	return targets.Info{Name: t.spec.Name, Kind: "wasm", Mode: t.cfg.Mode, Function: t.spec.Function}
}

// module reads the bytes to deploy: the reactor build in warm mode unless a
// variant is named (the small builds serve every mode from one module).
func (t *Target) module() ([]byte, error) {
	fsys := functions.Open(t.spec.FunctionsDir)
	variant := t.variant
	if variant == "" && t.cfg.Mode == targets.Warm {
		variant = "reactor"
	}
	return functions.Module(fsys, t.spec.Function, variant)
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
	t.srv = &http.Server{Handler: p.Handler(HandlerOptions{}), ReadHeaderTimeout: 10 * time.Second}
	go t.srv.Serve(ln)
	t.url = &url.URL{Scheme: "http", Host: ln.Addr().String(), Path: "/fn/" + t.deployed}
	return t.waitReady(ctx)
}

// waitReady waits for a prewarmed pool to fill, so the first measured
// request does not pay for it.
func (t *Target) waitReady(ctx context.Context) error {
	if t.p == nil || t.cfg.Mode == targets.Cold {
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
