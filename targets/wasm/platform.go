// Package wasm is Purify, the in-process WebAssembly function platform on
// wazero, and the "wasm" target kind that serves one function from it.
//
// Functions are WASI preview 1 modules that follow the ABI in
// functions/README.md: the request body on stdin, a CGI-like environment,
// and a CGI header block plus body on stdout. A Platform holds the
// deployed functions; Handler serves them over HTTP (invoke at /fn/{name},
// deploy at /functions/{name}); `harness serve` runs one on its own.
package wasm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"

	"github.com/academemes/harness/functions"
	"github.com/academemes/harness/targets"
)

// Options configure a Platform.
type Options struct {
	// CacheDir keeps compiled code on disk across restarts; "" keeps it in
	// memory only, shared by every Platform of the process (so two targets
	// serving one module compile it once).
	CacheDir string
	// Logf receives one line per fault and per deploy; nil discards.
	Logf func(format string, args ...any)
	// Now is the clock for start-up times and idle timeouts; nil is
	// time.Now.
	Now func() time.Time
	// JanitorEvery is how often idle pools are checked (default 1s).
	JanitorEvery time.Duration
	// Interpreter runs guests in wazero's interpreter instead of compiling
	// them: slow code, but no compile time (tests of many large modules,
	// platforms without the compiler).
	Interpreter bool
}

// Platform holds deployed functions and runs them.
type Platform struct {
	opts  Options
	cache wazero.CompilationCache

	mu  sync.RWMutex
	fns map[string]*function

	done chan struct{}
	wg   sync.WaitGroup
}

// Sentinel errors callers branch on.
var (
	// ErrNotFound: no function of that name is deployed.
	ErrNotFound = errors.New("no such function")
	// ErrBadModule: the bytes are not a usable WASI module.
	ErrBadModule = errors.New("bad module")
)

// NewPlatform makes an empty platform. Close it when done.
func NewPlatform(opts Options) (*Platform, error) {
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.JanitorEvery <= 0 {
		opts.JanitorEvery = time.Second
	}
	p := &Platform{opts: opts, fns: map[string]*function{}, done: make(chan struct{})}
	if opts.CacheDir != "" {
		c, err := wazero.NewCompilationCacheWithDir(opts.CacheDir)
		if err != nil {
			return nil, fmt.Errorf("purify: compilation cache in %s: %w", opts.CacheDir, err)
		}
		p.cache = c
	} else {
		p.cache = sharedCache()
	}
	p.wg.Add(1)
	go p.janitor()
	return p, nil
}

// Close stops every function and releases compiled code.
func (p *Platform) Close() error {
	select {
	case <-p.done:
		return nil
	default:
	}
	close(p.done)
	p.wg.Wait()
	p.mu.Lock()
	fns := p.fns
	p.fns = map[string]*function{}
	p.mu.Unlock()
	for _, f := range fns {
		f.close()
	}
	if p.opts.CacheDir != "" {
		return p.cache.Close(context.Background())
	}
	return nil
}

var sharedCache = sync.OnceValue(wazero.NewCompilationCache)

// DefaultCacheDir is where compiled code is kept across runs unless told
// otherwise: the user's cache directory ($XDG_CACHE_HOME, ~/.cache), so
// that a Go function's seconds of compiling are paid once per module and
// wazero version, not at every start. "" when there is no such directory.
func DefaultCacheDir() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "academemes-harness", "wazero")
}

// FunctionInfo describes a deployed function.
type FunctionInfo struct {
	Name      string         `json:"name"`
	Config    FunctionConfig `json:"config"`
	Bytes     int            `json:"bytes"`
	SHA256    string         `json:"sha256"`
	Handler   bool           `json:"warm_handler"`
	Requests  int64          `json:"requests"`
	Cold      int64          `json:"cold_starts"`
	Faults    int64          `json:"faults"`
	CacheHits int64          `json:"cache_hits"`
	Ready     int            `json:"ready_instances"`
	Deployed  time.Time      `json:"deployed"`
}

// Deploy compiles module and makes it function name, replacing any
// function of that name. It fails with ErrBadModule for bytes that do not
// compile or that a mode cannot run.
func (p *Platform) Deploy(ctx context.Context, name string, module []byte, cfg FunctionConfig) error {
	if !functions.ValidName(name) {
		return fmt.Errorf("function name %q: use 1-64 letters, digits, '-' and '_'", name)
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("deploy %s: %w", name, err)
	}
	f, err := p.newFunction(ctx, name, module, cfg.withDefaults())
	if err != nil {
		return fmt.Errorf("deploy %s: %w", name, err)
	}
	p.mu.Lock()
	old := p.fns[name]
	p.fns[name] = f
	p.mu.Unlock()
	if old != nil {
		old.close()
	}
	p.opts.Logf("purify: deployed %s (%d bytes, %s, mode %s)", name, len(module), f.sha[:12], f.cfg.Mode)
	if f.cfg.Mode == targets.Prewarmed || f.cfg.Mode == targets.Warm {
		f.kick()
	}
	return nil
}

// Delete removes function name.
func (p *Platform) Delete(name string) error {
	p.mu.Lock()
	f := p.fns[name]
	delete(p.fns, name)
	p.mu.Unlock()
	if f == nil {
		return fmt.Errorf("delete %s: %w", name, ErrNotFound)
	}
	f.close()
	p.opts.Logf("purify: deleted %s", name)
	return nil
}

// Functions lists the deployed functions by name.
func (p *Platform) Functions() []FunctionInfo {
	p.mu.RLock()
	defer p.mu.RUnlock()
	out := make([]FunctionInfo, 0, len(p.fns))
	for _, f := range p.fns {
		out = append(out, f.info())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Function describes function name.
func (p *Platform) Function(name string) (FunctionInfo, error) {
	f := p.lookup(name)
	if f == nil {
		return FunctionInfo{}, fmt.Errorf("%s: %w", name, ErrNotFound)
	}
	return f.info(), nil
}

// ScaleToZero drops the ready and warm instances of function name (every
// function when name is ""), so that its next request is a cold start.
func (p *Platform) ScaleToZero(name string) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if name == "" {
		for _, f := range p.fns {
			f.drain()
		}
		return nil
	}
	f := p.fns[name]
	if f == nil {
		return fmt.Errorf("scale %s to zero: %w", name, ErrNotFound)
	}
	f.drain()
	return nil
}

func (p *Platform) lookup(name string) *function {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.fns[name]
}

// janitor scales idle functions to zero.
func (p *Platform) janitor() {
	defer p.wg.Done()
	t := time.NewTicker(p.opts.JanitorEvery)
	defer t.Stop()
	for {
		select {
		case <-p.done:
			return
		case <-t.C:
		}
		now := p.opts.Now().UnixNano()
		p.mu.RLock()
		for _, f := range p.fns {
			if idle := time.Duration(f.cfg.IdleTimeout); idle > 0 && now-f.lastUse.Load() > int64(idle) && !f.zero.Load() {
				f.drain()
				p.opts.Logf("purify: %s scaled to zero after %s idle", f.name, idle)
			}
		}
		p.mu.RUnlock()
	}
}

// function is one deployed module with its runtime (limits are per
// runtime in wazero) and its instances.
type function struct {
	p        *Platform
	name     string
	cfg      FunctionConfig
	bytes    int
	sha      string
	deployed time.Time

	rt       wazero.Runtime
	compiled wazero.CompiledModule
	modCfg   wazero.ModuleConfig
	entry    string // "_start" (command) or "purify_handle" (warm handler)

	sem   chan struct{}  // one token per running instance
	ready chan *instance // prewarmed: fresh instances; warm: idle instances
	kickc chan struct{}
	zero  atomic.Bool // scaled to zero: do not refill until the next request

	lastUse                          atomic.Int64
	requests, cold, faults, cacheHit atomic.Int64
	cache                            *respCache

	closeOnce sync.Once
	done      chan struct{}
}

type instance struct {
	mod api.Module
}

func (p *Platform) newFunction(ctx context.Context, name string, module []byte, cfg FunctionConfig) (*function, error) {
	if err := checkModuleShape(module); err != nil {
		return nil, err
	}
	rc := wazero.NewRuntimeConfig()
	if p.opts.Interpreter {
		rc = wazero.NewRuntimeConfigInterpreter()
	}
	rc = rc.WithCompilationCache(p.cache).
		WithMemoryLimitPages(cfg.MemoryPages).
		WithCloseOnContextDone(!cfg.NoInterrupt)
	rt := wazero.NewRuntimeWithConfig(ctx, rc)
	fail := func(err error) (*function, error) {
		rt.Close(ctx)
		return nil, err
	}
	if err := instantiateWASI(ctx, rt); err != nil {
		return fail(fmt.Errorf("wasi: %w", err))
	}
	// The module as deployed (bytes, sha256) is what the API reports; the
	// runtime gets it with its data segments merged (datamerge.go).
	merged, ms := mergeDataSegments(module)
	cm, err := rt.CompileModule(ctx, merged)
	if err != nil {
		return fail(fmt.Errorf("%w: %v", ErrBadModule, err))
	}
	exports := cm.ExportedFunctions()
	f := &function{
		p: p, name: name, cfg: cfg, bytes: len(module), deployed: p.opts.Now(),
		rt: rt, compiled: cm,
		sem:   make(chan struct{}, cfg.Concurrency),
		kickc: make(chan struct{}, 1),
		done:  make(chan struct{}),
	}
	sum := sha256.Sum256(module)
	f.sha = hex.EncodeToString(sum[:])
	// WithRandSource: random_get is ours (wasi.go) and never reads it, but
	// without one wazero seeds a math/rand source for every instance,
	// which was a fifth of a small module's cold request.
	mc := wazero.NewModuleConfig().WithName("").WithArgs(name).WithRandSource(zeroReader{})
	if cfg.Impure {
		mc = mc.WithSysWalltime().WithSysNanotime().WithSysNanosleep()
	}
	_, hasStart := exports["_start"]
	_, hasHandler := exports["purify_handle"]
	_, hasInit := exports["_initialize"]
	switch {
	case cfg.Mode == targets.Warm && !hasHandler:
		return fail(fmt.Errorf("%w: mode warm needs an exported purify_handle (functions/README.md, \"Warm mode\"); this module exports none", ErrBadModule))
	case cfg.Mode == targets.Warm:
		f.entry = "purify_handle"
		if hasInit {
			mc = mc.WithStartFunctions("_initialize")
		} else {
			mc = mc.WithStartFunctions()
		}
		f.ready = make(chan *instance, cfg.Concurrency)
	case !hasStart:
		return fail(fmt.Errorf("%w: mode %s needs a WASI command module exporting _start; this module exports none", ErrBadModule, cfg.Mode))
	default:
		f.entry = "_start"
		mc = mc.WithStartFunctions() // _start runs on the request, after the start-up is timed
		f.ready = make(chan *instance, max(cfg.Pool, 1))
	}
	if def, ok := exports[f.entry]; ok && (len(def.ParamTypes()) != 0 || len(def.ResultTypes()) > 1) {
		return fail(fmt.Errorf("%w: %s must take no parameters and return nothing or one i32", ErrBadModule, f.entry))
	}
	f.modCfg = mc
	if ms.Skipped == "" {
		p.opts.Logf("purify: %s: merged %d data segments into %d", name, ms.Before, ms.After)
	}
	if cfg.Cache && !cfg.Impure {
		f.cache = newRespCache(cfg.CacheBytes)
	}
	f.lastUse.Store(p.opts.Now().UnixNano())
	if cfg.Mode != targets.Cold {
		p.wg.Add(1)
		go f.refiller()
	}
	return f, nil
}

func (f *function) info() FunctionInfo {
	return FunctionInfo{
		Name: f.name, Config: f.cfg, Bytes: f.bytes, SHA256: f.sha, Handler: f.entry == "purify_handle",
		Requests: f.requests.Load(), Cold: f.cold.Load(), Faults: f.faults.Load(), CacheHits: f.cacheHit.Load(),
		Ready: len(f.ready), Deployed: f.deployed,
	}
}

func (f *function) close() {
	f.closeOnce.Do(func() {
		close(f.done)
		f.drain()
		f.rt.Close(context.Background())
	})
}

// drain closes the ready instances and marks the function scaled to zero.
func (f *function) drain() {
	f.zero.Store(true)
	for {
		select {
		case in := <-f.ready:
			in.mod.Close(context.Background())
		default:
			return
		}
	}
}

// kick asks the refiller to top up the pool.
func (f *function) kick() {
	select {
	case f.kickc <- struct{}{}:
	default:
	}
}

// refiller keeps the prewarmed pool full (and, in warm mode, one instance
// ready) in the background, except while scaled to zero.
func (f *function) refiller() {
	defer f.p.wg.Done()
	want := f.cfg.Pool
	if f.cfg.Mode == targets.Warm {
		want = 1
	}
	for {
		select {
		case <-f.done:
			return
		case <-f.p.done:
			return
		case <-f.kickc:
		}
		for len(f.ready) < want && !f.zero.Load() {
			in, err := f.instantiate(context.Background())
			if err != nil {
				f.p.opts.Logf("purify: %s: prewarming an instance: %v", f.name, err)
				break
			}
			select {
			case f.ready <- in:
			default:
				in.mod.Close(context.Background())
			}
			select {
			case <-f.done:
				f.drain()
				return
			default:
			}
		}
	}
}

func (f *function) instantiate(ctx context.Context) (*instance, error) {
	mod, err := f.rt.InstantiateModule(ctx, f.compiled, f.modCfg)
	if err != nil {
		return nil, err
	}
	return &instance{mod: mod}, nil
}

// outcome is the result of running one request.
type outcome struct {
	resp    response
	cold    bool
	startNs int64
	cached  bool
	fault   *Fault
}

// Fault is a request that failed because of the function (or its limits),
// not because of the platform.
type Fault struct {
	Kind   string // trap, exit, timeout, memory, purity, output, busy, too-large
	Status int    // the HTTP status the client gets
	Msg    string
	Stderr string // what the function wrote to stderr, bounded
}

func (e *Fault) Error() string { return e.Kind + ": " + e.Msg }

// invoke runs c on f in f's mode.
func (f *function) invoke(ctx context.Context, c *call) outcome {
	now := f.p.opts.Now
	f.requests.Add(1)
	f.lastUse.Store(now().UnixNano())
	if f.zero.Swap(false) && f.cfg.Mode != targets.Cold {
		defer f.kick()
	}
	ctx, cancel := context.WithTimeout(ctx, time.Duration(f.cfg.Timeout))
	defer cancel()
	select {
	case f.sem <- struct{}{}:
	case <-ctx.Done():
		return outcome{fault: &Fault{Kind: "busy", Status: 503, Msg: fmt.Sprintf("all %d instances stayed busy for %s", f.cfg.Concurrency, time.Duration(f.cfg.Timeout))}}
	}
	defer func() { <-f.sem }()
	ctx = context.WithValue(ctx, callKey{}, c)

	var o outcome
	var in *instance
	select {
	case in = <-f.ready:
		if f.cfg.Mode == targets.Prewarmed {
			f.kick()
		}
	default:
	}
	if in == nil {
		t0 := now()
		var err error
		in, err = f.instantiate(ctx)
		o.cold, o.startNs = true, now().Sub(t0).Nanoseconds()
		f.cold.Add(1)
		if err != nil {
			o.fault = f.classify(ctx, nil, c, err)
			return o
		}
	}
	c.now = now
	entered := now()
	_, err := in.mod.ExportedFunction(f.entry).Call(ctx)
	if o.cold && f.entry == "_start" && !c.ioAt.IsZero() {
		// A command module's runtime starts inside _start, before the
		// guest reads its input: start-up too, as a container's start
		// lasts until its server answers.
		o.startNs += c.ioAt.Sub(entered).Nanoseconds()
	}
	if ee := (*sys.ExitError)(nil); errors.As(err, &ee) && ee.ExitCode() == 0 {
		err = nil
	}
	if err == nil && c.violation == "" && !c.stdoutOver && f.cfg.Mode == targets.Warm && !in.mod.IsClosed() {
		select {
		case f.ready <- in:
			in = nil
		default:
		}
	}
	if err != nil || c.violation != "" || c.stdoutOver {
		o.fault = f.classify(ctx, in, c, err)
	}
	if in != nil {
		in.mod.Close(context.Background())
	}
	if o.fault != nil {
		return o
	}
	resp, perr := parseOutput(c.stdout)
	if perr != nil {
		o.fault = &Fault{Kind: "output", Status: 502, Msg: perr.Error()}
		return o
	}
	o.resp = resp
	return o
}

// classify turns a failed run into a Fault with a clear message.
func (f *function) classify(ctx context.Context, in *instance, c *call, err error) *Fault {
	fa := &Fault{Status: 502, Stderr: string(c.stderr)}
	var ee *sys.ExitError
	isExit := errors.As(err, &ee)
	atLimit := false
	if in != nil && in.mod.Memory() != nil {
		pages := in.mod.Memory().Size() / 65536
		// wazero does not say that a memory.grow was refused; a guest that
		// failed while holding most of its allowed memory is taken to have
		// run out (a refused grow is at least one step short of the limit).
		atLimit = uint64(pages)*4 >= uint64(f.cfg.MemoryPages)*3
	}
	switch {
	case ctx.Err() == context.DeadlineExceeded || isExit && ee.ExitCode() == sys.ExitCodeDeadlineExceeded:
		fa.Kind, fa.Status = "timeout", 504
		fa.Msg = fmt.Sprintf("the function ran past its %s time limit and was stopped", time.Duration(f.cfg.Timeout))
	case c.violation != "":
		fa.Kind, fa.Msg = "purity", c.violation+" (pure functions get no filesystem, network, clock or randomness beyond an input seed)"
	case c.stdoutOver:
		fa.Kind, fa.Msg = "too-large", fmt.Sprintf("the response is larger than the %d-byte limit", f.cfg.MaxResponseBytes)
	case atLimit || errors.Is(err, errOutOfMemory) || containsOOM(c.stderr):
		fa.Kind, fa.Msg = "memory", fmt.Sprintf("the function ran out of memory at its limit of %d pages (%d MiB): %v", f.cfg.MemoryPages, f.cfg.MemoryPages/16, err)
	case isExit:
		fa.Kind, fa.Msg = "exit", fmt.Sprintf("the function exited with code %d", ee.ExitCode())
	case in == nil:
		fa.Kind, fa.Msg = "start", fmt.Sprintf("instantiating the module failed: %v", err)
	default:
		fa.Kind, fa.Msg = "trap", fmt.Sprintf("the function trapped: %v", err)
	}
	return fa
}

// zeroReader reads zeros: the rand source wazero holds for each instance,
// unused because random_get is overridden (wasi.go).
type zeroReader struct{}

func (zeroReader) Read(b []byte) (int, error) {
	clear(b)
	return len(b), nil
}

var errOutOfMemory = errors.New("out of memory")

func containsOOM(stderr []byte) bool {
	return len(stderr) > 0 && (bytesContains(stderr, "out of memory") || bytesContains(stderr, "memory allocation failed"))
}
