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
	"cmp"
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
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/sys"

	"github.com/academemes/harness/functions"
	"github.com/academemes/harness/targets"
	"github.com/academemes/harness/targets/option"
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
	// MaxMemoryBytes bounds the linear memory all instances together may
	// commit: a memory.grow past it fails as at the function's own limit,
	// an instance that would not fit is not made (503), and a function
	// whose memory_pages alone exceed it is refused at deploy. 0 is
	// DefaultMaxMemory().
	MaxMemoryBytes int64
	// MaxBodyBytes bounds the request bodies held in memory at once,
	// invocations and deploys together; a request whose body would pass
	// it gets 503. 0 is DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// Sleep is how an impure function's sleep waits (poll_oneoff); nil
	// waits for the duration or until the request's deadline, whichever
	// comes first. Tests use it to hold a request in flight.
	Sleep func(ctx context.Context, d time.Duration)
}

// DefaultMaxBodyBytes is the default of Options.MaxBodyBytes: 256 MiB,
// 256 requests at the default max_request_bytes or four deploys of the
// largest module.
const DefaultMaxBodyBytes = 256 << 20

// DefaultMaxMemory is the default of Options.MaxMemoryBytes: half of the
// machine's memory, or 4 GiB where that cannot be read.
func DefaultMaxMemory() int64 {
	if m := physicalMemory(); m > 0 {
		return m / 2
	}
	return 4 << 30
}

// Platform holds deployed functions and runs them.
//
// A deployed version of a function is reference-counted: the platform's
// table holds one reference, each request in flight one, and the pool's
// refiller one while it runs. Deleting or replacing a function takes it
// out of the table and cancels what it does in the background, but its
// runtime closes only when the last reference goes, so a request in
// flight finishes on the version it started with (before, closing the
// runtime under it answered 200 with an empty or cut body).
type Platform struct {
	opts   Options
	cache  wazero.CompilationCache
	mem    memBudget // linear memory of every instance
	bodies memBudget // request bodies held in memory

	// ctx is cancelled by Shutdown: every instantiation and call stops.
	ctx    context.Context
	cancel context.CancelFunc

	mu     sync.RWMutex
	fns    map[string]*function
	closed bool

	wg   sync.WaitGroup // the janitor and the refillers
	live sync.WaitGroup // functions whose runtime is not closed yet
}

// Sentinel errors callers branch on.
var (
	// ErrNotFound: no function of that name is deployed.
	ErrNotFound = errors.New("no such function")
	// ErrBadModule: the bytes are not a usable WASI module.
	ErrBadModule = errors.New("bad module")
	// ErrClosed: the platform is shut down.
	ErrClosed = errors.New("platform closed")
	// errMemoryBound: an instance's initial memory does not fit in what
	// the platform may still commit.
	errMemoryBound = errors.New("the platform's memory bound is reached")
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
	opts.MaxMemoryBytes = cmp.Or(opts.MaxMemoryBytes, DefaultMaxMemory())
	opts.MaxBodyBytes = cmp.Or(opts.MaxBodyBytes, DefaultMaxBodyBytes)
	p := &Platform{opts: opts, fns: map[string]*function{}}
	p.mem.max, p.bodies.max = opts.MaxMemoryBytes, opts.MaxBodyBytes
	p.ctx, p.cancel = context.WithCancel(context.Background())
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

// Close is Shutdown with a deadline of 10 s.
func (p *Platform) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return p.Shutdown(ctx)
}

// Shutdown stops the platform: it removes every function, cancels every
// instantiation and call in progress (their clients get 503), and waits
// until each function's runtime is closed, or until ctx is done. Only a
// guest that cannot be interrupted (no_interrupt) outlasts the deadline;
// it is then left running and Shutdown says so.
func (p *Platform) Shutdown(ctx context.Context) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	fns := p.fns
	p.fns = map[string]*function{}
	p.mu.Unlock()
	p.cancel()
	for _, f := range fns {
		f.retire()
	}
	done := make(chan struct{})
	go func() {
		p.wg.Wait()
		p.live.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("purify: shut down with functions still running (only a no_interrupt guest cannot be stopped): %w", ctx.Err())
	}
	if p.opts.CacheDir != "" {
		return p.cache.Close(context.Background())
	}
	return nil
}

// MemoryStats says how much linear memory the platform's instances have
// committed, at most and now, against its bound.
type MemoryStats struct {
	CommittedBytes int64 `json:"committed_bytes"`
	PeakBytes      int64 `json:"peak_bytes"`
	LimitBytes     int64 `json:"limit_bytes"`
	// BodyBytes are the request bodies held in memory now.
	BodyBytes int64 `json:"body_bytes"`
}

// Memory reports the platform's memory.
func (p *Platform) Memory() MemoryStats {
	return MemoryStats{CommittedBytes: p.mem.used.Load(), PeakBytes: p.mem.peak.Load(), LimitBytes: p.mem.max, BodyBytes: p.bodies.used.Load()}
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
	// Snapshot describes the snapshot of a function in snapshot mode.
	Snapshot *SnapshotInfo `json:"snapshot,omitempty"`
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
	cfg = cfg.withDefaults()
	if b := int64(cfg.MemoryPages) << 16; b > p.mem.max {
		return fmt.Errorf("deploy %s: %w", name, option.Errorf("memory_pages", "%d pages (%d MiB) are more than the platform may commit in all (%d MiB)", cfg.MemoryPages, b>>20, p.mem.max>>20))
	}
	f, err := p.newFunction(ctx, name, module, cfg)
	if err != nil {
		return fmt.Errorf("deploy %s: %w", name, err)
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		f.retire()
		return fmt.Errorf("deploy %s: %w", name, ErrClosed)
	}
	old := p.fns[name]
	p.fns[name] = f
	p.mu.Unlock()
	if old != nil {
		old.retire() // requests in flight finish on it
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
	f.retire() // requests in flight finish on it
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

// lookup returns function name without taking a reference: to describe
// it, not to run requests on it (see acquire).
func (p *Platform) lookup(name string) *function {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.fns[name]
}

// acquire returns function name with a reference taken for a request,
// or nil; the caller releases it.
func (p *Platform) acquire(name string) *function {
	p.mu.RLock()
	defer p.mu.RUnlock()
	f := p.fns[name]
	if f != nil {
		f.refs.Add(1)
	}
	return f
}

// janitor scales idle functions to zero.
func (p *Platform) janitor() {
	defer p.wg.Done()
	t := time.NewTicker(p.opts.JanitorEvery)
	defer t.Stop()
	for {
		select {
		case <-p.ctx.Done():
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

	sem    chan struct{}  // one token per running instance
	ready  chan *instance // prewarmed: fresh instances; warm: idle instances
	kickc  chan struct{}
	zero   atomic.Bool // scaled to zero: do not refill until the next request
	sleep  sleeper     // an impure function's sleep; nil: sleeps do not wait
	minMem int64       // bytes of an instance's initial memory
	snap   *snapshot   // snapshot mode: what instances are restored from

	lastUse                          atomic.Int64
	requests, cold, faults, cacheHit atomic.Int64
	cache                            *respCache

	// ctx is cancelled when the function is retired (deleted, replaced,
	// or the platform shut down): the refiller and its instantiations
	// stop. Requests in flight are not cancelled by it.
	ctx    context.Context
	cancel context.CancelFunc
	// refs counts the table's reference, the requests in flight and the
	// refiller; the runtime closes when it drops to zero.
	refs   atomic.Int64
	closed chan struct{} // closed with the runtime
}

type instance struct {
	mod api.Module
	mem interface{ refused() bool } // its linear memory; nil if it has none

	// Snapshot mode: the fake clocks, and for a kept instance what a
	// reset needs (snapshot.go).
	clock   *snapClock
	globals []keptGlobal
	pagemap []byte
}

// close closes the instance, which frees its memory at once.
func (in *instance) close() { in.mod.Close(context.Background()) }

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
	// The module as deployed (bytes, sha256) is what the API reports; the
	// runtime gets it with its data segments merged (datamerge.go), and in
	// snapshot mode with its globals exported, to be read once
	// initialised (snapshot.go).
	merged, ms := mergeDataSegments(module)
	compiled, globals := merged, []snapGlobal(nil)
	if cfg.Mode == targets.Snapshot {
		var err error
		if compiled, globals, err = exportGlobals(merged); err != nil {
			return fail(fmt.Errorf("%w: snapshot mode cannot capture this module: %v", ErrBadModule, err))
		}
	}
	cm, err := compile(ctx, rt, compiled)
	if err != nil {
		return fail(fmt.Errorf("%w: %v", ErrBadModule, err))
	}
	exports := cm.ExportedFunctions()
	f := &function{
		p: p, name: name, cfg: cfg, bytes: len(module), deployed: p.opts.Now(),
		rt: rt, compiled: cm,
		sem:    make(chan struct{}, cfg.Concurrency),
		kickc:  make(chan struct{}, 1),
		closed: make(chan struct{}),
	}
	for _, m := range cm.ExportedMemories() {
		f.minMem = int64(m.Min()) << 16
	}
	sum := sha256.Sum256(module)
	f.sha = hex.EncodeToString(sum[:])
	// WithRandSource: random_get is ours (wasi.go) and never reads it, but
	// without one wazero seeds a math/rand source for every instance,
	// which was a fifth of a small module's cold request.
	mc := wazero.NewModuleConfig().WithName("").WithArgs(name).WithRandSource(zeroReader{})
	if cfg.Impure {
		// Sleeps go through poll_oneoff (wasi.go), which waits with
		// f.sleep and so honours the request's deadline.
		mc = mc.WithSysWalltime().WithSysNanotime()
		f.sleep = sleepFor
		if p.opts.Sleep != nil {
			f.sleep = p.opts.Sleep
		}
	}
	_, hasStart := exports["_start"]
	_, hasHandler := exports["purify_handle"]
	_, hasInit := exports["_initialize"]
	switch {
	case usesReactor(cfg.Mode) && !hasHandler:
		return fail(fmt.Errorf("%w: mode %s needs an exported purify_handle (functions/README.md, \"Warm mode\"); this module exports none", ErrBadModule, cfg.Mode))
	case cfg.Mode == targets.Snapshot:
		f.entry = "purify_handle"
		mc = mc.WithStartFunctions()                    // the snapshot holds what _initialize did
		f.ready = make(chan *instance, cfg.Concurrency) // kept instances (RestoreReset)
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
	// The host functions last: building them is half the cost of a deploy,
	// not to be paid for a module refused above.
	if err := instantiateHost(ctx, rt, cfg.Mode == targets.Snapshot); err != nil {
		return fail(fmt.Errorf("wasi: %w", err))
	}
	if ms.Skipped == "" {
		p.opts.Logf("purify: %s: merged %d data segments into %d", name, ms.Before, ms.After)
	}
	if cfg.Mode == targets.Snapshot {
		snap, baked, err := f.takeSnapshot(ctx, cm, merged, globals, hasInit)
		cm.Close(ctx)
		if err != nil {
			return fail(err)
		}
		f.snap, f.compiled = snap, baked
		f.minMem = snap.info.MemoryBytes
		p.opts.Logf("purify: %s: snapshot of %d KiB (%d KiB not zero, %d globals) taken in %s, restored by %s%s",
			name, snap.info.MemoryBytes>>10, snap.info.DataBytes>>10, snap.info.Globals, time.Duration(snap.info.TakeNs), snap.info.Restore,
			notReset(snap.info.NotReset))
	}
	if cfg.Cache && !cfg.Impure {
		f.cache = newRespCache(cfg.CacheBytes)
	}
	f.lastUse.Store(p.opts.Now().UnixNano())
	f.ctx, f.cancel = context.WithCancel(p.ctx)
	f.refs.Store(1)
	p.live.Add(1)
	if cfg.Mode != targets.Cold && cfg.Mode != targets.Snapshot {
		p.wg.Add(1)
		f.refs.Add(1)
		go f.refiller()
	}
	return f, nil
}

// compile compiles module in rt, turning a panic of wazero's into an
// error: wazero's validator has indexed past a slice on a malformed
// function (found by FuzzDeploy), and a deploy must not take the process
// with it.
func compile(ctx context.Context, rt wazero.Runtime, module []byte) (cm wazero.CompiledModule, err error) {
	defer func() {
		if r := recover(); r != nil {
			cm, err = nil, fmt.Errorf("wazero failed on it: %v", r)
		}
	}()
	return rt.CompileModule(ctx, module)
}

func (f *function) info() FunctionInfo {
	fi := FunctionInfo{
		Name: f.name, Config: f.cfg, Bytes: f.bytes, SHA256: f.sha, Handler: f.entry == "purify_handle",
		Requests: f.requests.Load(), Cold: f.cold.Load(), Faults: f.faults.Load(), CacheHits: f.cacheHit.Load(),
		Ready: len(f.ready), Deployed: f.deployed,
	}
	if f.snap != nil {
		si := f.snap.info
		fi.Snapshot = &si
	}
	return fi
}

// retire takes the function out of service once it has left the table:
// the refiller and its instantiation stop, the ready instances close, and
// the table's reference goes.
func (f *function) retire() {
	f.cancel()
	f.drain()
	f.release()
}

// release drops a reference; the last one closes the runtime.
func (f *function) release() {
	if f.refs.Add(-1) != 0 {
		return
	}
	f.drain()
	f.rt.Close(context.Background())
	f.snap.close()
	close(f.closed)
	f.p.live.Done()
}

// drain closes the ready instances and marks the function scaled to zero.
func (f *function) drain() {
	f.zero.Store(true)
	for {
		select {
		case in := <-f.ready:
			in.close()
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
// ready) in the background, except while scaled to zero. Each
// instantiation (the module's start section, _initialize) runs under the
// function's timeout and stops when the function is retired: a start
// section that loops no longer keeps a core busy after DELETE or keeps
// the process from shutting down.
func (f *function) refiller() {
	defer f.p.wg.Done()
	defer f.release()
	want := f.cfg.Pool
	if f.cfg.Mode == targets.Warm {
		want = 1
	}
	for {
		select {
		case <-f.ctx.Done():
			return
		case <-f.kickc:
		}
		for len(f.ready) < want && !f.zero.Load() && f.ctx.Err() == nil {
			ctx, cancel := context.WithTimeout(f.ctx, time.Duration(f.cfg.Timeout))
			in, err := f.instantiate(ctx)
			cancel()
			if err != nil {
				if f.ctx.Err() == nil {
					f.p.opts.Logf("purify: %s: prewarming an instance: %v", f.name, err)
				}
				break
			}
			select {
			case f.ready <- in:
			default:
				in.close()
			}
		}
	}
}

// instantiate makes an instance of f under ctx: from its snapshot in
// snapshot mode, else as the module starts.
func (f *function) instantiate(ctx context.Context) (*instance, error) {
	mc, in := f.modCfg, &instance{}
	if f.snap != nil && !f.cfg.Impure {
		// Clocks of its own: every request reads the same times.
		in.clock = &snapClock{nano: f.snap.nano, wall: f.snap.wall}
		mc = mc.WithWalltime(in.clock.walltime, sys.ClockResolution(time.Microsecond)).WithNanotime(in.clock.nanotime, sys.ClockResolution(1))
	}
	return f.instantiateWith(ctx, f.compiled, mc, in)
}

// instantiateWith makes in an instance of cm with mc under ctx, its memory
// counted against the platform's bound (and mapped from the snapshot's
// image where f has one). A panic of wazero's is an error, as in compile.
func (f *function) instantiateWith(ctx context.Context, cm wazero.CompiledModule, mc wazero.ModuleConfig, in *instance) (_ *instance, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("wazero failed making an instance: %v", r)
		}
	}()
	if !f.p.mem.room(f.minMem) {
		return nil, errMemoryBound
	}
	alloc := f.snap.allocator(&f.p.mem, in) // nil while it is taken
	if alloc == nil {
		alloc = experimental.MemoryAllocatorFunc(func(_, max uint64) experimental.LinearMemory {
			m := f.p.mem.newMemory(max)
			in.mem = m
			return m
		})
	}
	ctx = experimental.WithMemoryAllocator(ctx, alloc)
	if f.sleep != nil {
		ctx = context.WithValue(ctx, sleepKey{}, f.sleep)
	}
	mod, err := f.rt.InstantiateModule(ctx, cm, mc)
	if err != nil {
		return nil, err
	}
	in.mod = mod
	return in, nil
}

// notReset formats why a snapshot's instances are not reset in place.
func notReset(why string) string {
	if why == "" {
		return ""
	}
	return " (not reset in place: " + why + ")"
}

// usesReactor reports whether mode calls an exported purify_handle rather
// than _start: warm, and snapshot, whose instances start initialised.
func usesReactor(mode targets.Mode) bool { return mode == targets.Warm || mode == targets.Snapshot }

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
	Kind   string // trap, exit, timeout, memory, purity, output, busy, canceled, too-large, start
	Status int    // the HTTP status the client gets
	Msg    string
	Stderr string // what the function wrote to stderr, bounded
}

func (e *Fault) Error() string { return e.Kind + ": " + e.Msg }

// invoke runs c on f in f's mode. The caller holds a reference to f.
func (f *function) invoke(ctx context.Context, c *call) outcome {
	now := f.p.opts.Now
	f.requests.Add(1)
	f.lastUse.Store(now().UnixNano())
	if f.zero.Swap(false) && (f.cfg.Mode == targets.Prewarmed || f.cfg.Mode == targets.Warm) {
		defer f.kick()
	}
	ctx, cancel := context.WithTimeout(ctx, time.Duration(f.cfg.Timeout))
	defer cancel()
	defer context.AfterFunc(f.p.ctx, cancel)() // shutdown stops the call
	select {
	case f.sem <- struct{}{}:
	case <-ctx.Done():
		return outcome{fault: &Fault{Kind: "busy", Status: 503, Msg: fmt.Sprintf("all %d instances stayed busy for %s", f.cfg.Concurrency, time.Duration(f.cfg.Timeout))}}
	}
	defer func() { <-f.sem }()
	ctx = context.WithValue(ctx, callKey{}, c)
	if f.sleep != nil {
		ctx = context.WithValue(ctx, sleepKey{}, f.sleep)
	}

	var o outcome
	var in *instance
	select {
	case in = <-f.ready:
		if f.cfg.Mode == targets.Prewarmed {
			f.kick()
		}
	default:
	}
	if in != nil && f.snap.keeps() {
		// A kept instance, reset to the snapshot: this request's start.
		t0 := now()
		err := f.snap.reset(in)
		o.cold, o.startNs = true, now().Sub(t0).Nanoseconds()
		if err != nil {
			f.p.opts.Logf("purify: %s: resetting a kept instance: %v (making a fresh one)", f.name, err)
			in.close()
			in = nil
		} else {
			f.cold.Add(1)
		}
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
	if err == nil && ctx.Err() != nil {
		// Done past the deadline (a guest that cannot be interrupted) or
		// after a cancellation: not an answer in time.
		err = ctx.Err()
	}
	if err == nil && c.violation == "" && !c.stdoutOver && !in.mod.IsClosed() && f.keepsAfter(in, c) && f.ctx.Err() == nil {
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
		in.close()
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

// keepsAfter reports whether in, having served c without a fault, is kept
// for another request: always in warm mode; in snapshot mode if it can
// be reset (RestoreReset), that is if c left no state a reset cannot undo.
func (f *function) keepsAfter(in *instance, c *call) bool {
	switch {
	case f.cfg.Mode == targets.Warm:
		return true
	case !f.snap.keeps() || c.fileTable:
		return false
	}
	// A snapshot whose instances are kept has memory (chooseRestore).
	return int64(in.mod.Memory().Size()) == f.snap.info.MemoryBytes
}

// classify turns a failed run into a Fault with a clear message.
func (f *function) classify(ctx context.Context, in *instance, c *call, err error) *Fault {
	fa := &Fault{Status: 502, Stderr: string(c.stderr)}
	var ee *sys.ExitError
	isExit := errors.As(err, &ee)
	atLimit, platformBound := false, false
	if in != nil && memoryOf(in.mod) != nil {
		pages := in.mod.Memory().Size() / 65536
		// wazero does not say that a memory.grow was refused; a guest that
		// failed while holding most of its allowed memory is taken to have
		// run out (a refused grow is at least one step short of the limit).
		atLimit = uint64(pages)*4 >= uint64(f.cfg.MemoryPages)*3
		platformBound = in.mem != nil && in.mem.refused()
	}
	switch {
	case ctx.Err() == context.DeadlineExceeded || isExit && ee.ExitCode() == sys.ExitCodeDeadlineExceeded:
		fa.Kind, fa.Status = "timeout", 504
		fa.Msg = fmt.Sprintf("the function ran past its %s time limit and was stopped", time.Duration(f.cfg.Timeout))
	case ctx.Err() == context.Canceled || isExit && ee.ExitCode() == sys.ExitCodeContextCanceled:
		fa.Kind, fa.Status = "canceled", 503
		fa.Msg = "the request was canceled: the client went away or the platform is shutting down"
	case errors.Is(err, errMemoryBound):
		fa.Kind, fa.Status = "busy", 503
		fa.Msg = fmt.Sprintf("no room for another instance: the platform's instances have committed %d of the %d MiB it may (try again later)", f.p.mem.used.Load()>>20, f.p.mem.max>>20)
	case platformBound:
		fa.Kind, fa.Status = "memory", 503
		fa.Msg = fmt.Sprintf("the function could not grow its memory: the platform's instances have committed the %d MiB it may in all (try again later): %v", f.p.mem.max>>20, err)
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
