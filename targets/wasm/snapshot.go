package wasm

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/sys"
)

// Snapshot mode (RATIONALE.md, "Snapshot starts").
//
// A language runtime's initialisation (Go's takes ~3 ms in wazero) is the
// same for every request of a pure function, so paying it per request
// measures the runtime, not the platform. Snapshot mode pays it once: at
// deploy the platform instantiates the module, runs its _initialize (a
// reactor; a module without one is snapshotted as instantiated), and
// keeps the instance's linear memory and every mutable global. Each
// request then starts from exactly that state and makes one
// purify_handle call. Restoring never runs guest code; it is one of
// three ways, each a step measured on its own (bench_test.go):
//
//   - RestoreSegments: a fresh instance of the module rewritten
//     (snaprewrite.go) so that its initial memory size, global
//     initialisers and data segments are the snapshot; wazero copies the
//     snapshot's non-zero bytes into fresh memory.
//   - RestoreCOW (Linux): a fresh instance whose memory is a private,
//     copy-on-write mapping of the snapshot kept in a sealed memfd
//     (snapimage_linux.go); the rewritten module has no data segments.
//   - RestoreReset (Linux): as RestoreCOW, but an instance that served a
//     request cleanly is kept, and before the next request it is reset
//     to the snapshot: the pages it wrote are copied back from the image,
//     its mutable globals set, its fake clocks rewound. wazero spends
//     most of a fresh instance of a Go module building its function
//     table (the element segment, ~5,800 entries), which a reset keeps.
//     It is used only where nothing else can carry state from one
//     request to the next: the code is decoded and must not change a
//     table or drop a segment (codescan.go), and an instance that
//     faulted, grew its memory, or touched the file table
//     (instantiateHost) is closed instead of kept.
//
// What _initialize reads is frozen in the snapshot, not refused: there is
// no request at deploy, so the environment and stdin read empty and
// randomness reads zeros (as warm mode's _initialize sees them), and a
// clock reads what it read at deploy (a pure function's fake clock then
// goes on in each request from where initialisation left it). Go's
// runtime reads all of these while it starts, so refusing them would
// refuse every Go module. The snapshot lists what was frozen
// (SnapshotInfo.Frozen). A filesystem or network call during _initialize
// is refused, as on any request.
//
// Warmup optionally runs one request through purify_handle before the
// snapshot is taken (a post-warm-up snapshot): a language runtime's first
// call does work its later calls do not (Go's: ~50 us of allocator set-up
// for memes), which a snapshot taken after _initialize alone makes every
// request pay. What the warm-up request leaves in memory is then part of
// every request's starting state; it is the same for every request, so
// nothing passes from one request to another.

// Ways snapshot mode restores an instance (FunctionConfig.Restore).
const (
	RestoreReset    = "reset"
	RestoreCOW      = "cow"
	RestoreSegments = "segments"
)

// SnapshotInfo describes a function's snapshot, in GET /functions/NAME and
// a wasm target's report in run.json.
type SnapshotInfo struct {
	// Restore is how instances are made from it: RestoreReset,
	// RestoreCOW or RestoreSegments.
	Restore string `json:"restore"`
	// NotReset says why instances are not reset in place where that was
	// not asked against ("" when they are, or when restore was chosen).
	NotReset string `json:"not_reset,omitempty"`
	// Initialized is whether the module's _initialize ran before it was
	// taken.
	Initialized bool `json:"initialized"`
	// Warmup is the body of the request run before it was taken, if any.
	Warmup string `json:"warmup,omitempty"`
	// MemoryBytes is the linear memory's size at the snapshot, and
	// DataBytes how many of its bytes are not zero.
	MemoryBytes int64 `json:"memory_bytes"`
	DataBytes   int64 `json:"data_bytes"`
	// Globals is how many mutable globals it holds.
	Globals int `json:"globals"`
	// Frozen lists what the module read while it was initialised, whose
	// values every request shares: "clock", "environment", "random",
	// "stdin".
	Frozen []string `json:"frozen,omitempty"`
	// TakeNs is how long taking it took (instantiation, _initialize and
	// the warm-up included; compiling not).
	TakeNs int64 `json:"take_ns"`
}

// snapshot is what a function in snapshot mode keeps.
type snapshot struct {
	info SnapshotInfo
	// image is the memory's contents for RestoreCOW and RestoreReset (nil
	// otherwise).
	image *memImage
	// nano, wall are the fake clocks' last readings during _initialize
	// (pure functions), from which each request's clocks go on.
	nano, wall int64
	// globals and values are the mutable globals and their values at the
	// snapshot, for RestoreReset (exported by the restoring module).
	globals []snapGlobal
	values  []uint64
}

// keeps reports whether instances restored from s are kept and reset.
func (s *snapshot) keeps() bool { return s != nil && s.info.Restore == RestoreReset }

// fakeEpochNanos is wazero's fake wall clock's first reading (midnight
// UTC 2022-01-01), so that a snapshot's fake clock starts where cold
// mode's does.
const fakeEpochNanos = 1640995200 * int64(time.Second)

// snapClock is an instance's fake clocks in snapshot mode, 1 ms per
// reading as wazero's. While the snapshot is taken they start where
// wazero's do, note that they were read, and for an impure function read
// the real time; in a request they go on from the snapshot's last
// readings and are rewound when their instance is reset, so that every
// request reads the same times.
type snapClock struct {
	nano, wall   int64
	impure, read bool
}

// newSnapshotClock is the clock of the instance a snapshot is taken of.
func newSnapshotClock(impure bool) *snapClock {
	return &snapClock{nano: -int64(time.Millisecond), wall: fakeEpochNanos - int64(time.Millisecond), impure: impure}
}

func (c *snapClock) walltime() (int64, int32) {
	c.read = true
	c.wall += int64(time.Millisecond)
	t := c.wall
	if c.impure {
		t = time.Now().UnixNano()
	}
	return t / 1e9, int32(t % 1e9)
}

func (c *snapClock) nanotime() int64 {
	c.read = true
	if c.impure {
		return time.Now().UnixNano()
	}
	c.nano += int64(time.Millisecond)
	return c.nano
}

// takeSnapshot instantiates cm (module with its mutable globals exported:
// exportGlobals) once, runs its _initialize if it has one (and the
// warm-up request if configured), and returns the snapshot with the
// module that restores it, compiled. f's runtime, module config and
// memory budget are set; f.compiled is not.
func (f *function) takeSnapshot(ctx context.Context, cm wazero.CompiledModule, module []byte, globals []snapGlobal, hasInit bool) (*snapshot, wazero.CompiledModule, error) {
	clocks := newSnapshotClock(f.cfg.Impure)
	mc := f.modCfg.WithWalltime(clocks.walltime, sys.ClockResolution(time.Microsecond)).
		WithNanotime(clocks.nanotime, sys.ClockResolution(1))
	if hasInit {
		mc = mc.WithStartFunctions("_initialize")
	}
	c := &call{maxOut: int(f.cfg.MaxResponseBytes), snapshotting: true}
	ictx, cancel := context.WithTimeout(context.WithValue(ctx, callKey{}, c), time.Duration(f.cfg.Timeout))
	defer cancel()
	t0 := time.Now()
	in, err := f.instantiateWith(ictx, cm, mc, &instance{})
	if err == nil && c.violation != "" {
		in.close()
		err = errors.New(c.violation)
	}
	if err != nil {
		if ictx.Err() != nil {
			err = fmt.Errorf("it ran past the %s time limit", time.Duration(f.cfg.Timeout))
		}
		return nil, nil, fmt.Errorf("%w: snapshot: instantiating the module and running its _initialize failed: %v%s", ErrBadModule, err, stderrTail(c.stderr))
	}
	defer in.close()
	s := &snapshot{info: SnapshotInfo{Initialized: hasInit, Warmup: f.cfg.Warmup}}
	s.info.Frozen = c.frozen
	if f.cfg.Warmup != "" {
		if err := f.warmUp(ictx, in); err != nil {
			return nil, nil, fmt.Errorf("%w: snapshot: the warm-up request failed: %v", ErrBadModule, err)
		}
	}
	s.info.TakeNs = time.Since(t0).Nanoseconds()

	var image []byte
	var pages uint32
	if mem := memoryOf(in.mod); mem != nil {
		b, _ := mem.Read(0, mem.Size())
		image = slices.Clone(b)
		pages = uint32(len(image) >> 16)
	}
	values := make([]uint64, len(globals))
	for i, g := range globals {
		if !g.Mutable {
			continue
		}
		eg := in.mod.ExportedGlobal(g.Export)
		if eg == nil {
			return nil, nil, fmt.Errorf("snapshot: global %d is not exported after rewriting (a bug)", g.Index)
		}
		values[i] = eg.Get()
		s.info.Globals++
	}
	s.globals, s.values = globals, values
	s.info.MemoryBytes = int64(len(image))
	for _, r := range nonZeroRuns(image, 1) {
		s.info.DataBytes += int64(r[1] - r[0])
	}
	if clocks.read {
		s.info.Frozen = append(s.info.Frozen, "clock")
	}
	slices.Sort(s.info.Frozen)
	s.nano, s.wall = clocks.nano, clocks.wall

	if err := s.chooseRestore(f.name, f.cfg.Restore, image, module); err != nil {
		return nil, nil, fmt.Errorf("snapshot: restore %s: %w", f.cfg.Restore, err)
	}
	bakeImage := image
	if s.image != nil {
		bakeImage = nil // the mapping holds the memory's contents
	}
	baked, err := bakeSnapshot(module, pages, bakeImage, globals, values)
	if err == nil && s.keeps() {
		baked, _, err = exportGlobals(baked) // a reset sets them
	}
	if err == nil {
		var bcm wazero.CompiledModule
		if bcm, err = compile(ctx, f.rt, baked); err == nil {
			return s, bcm, nil
		}
	}
	s.close()
	return nil, nil, fmt.Errorf("snapshot: the module that restores it: %v", err)
}

// chooseRestore sets how instances are restored: the one asked for
// (failing if it cannot be had), or else the cheapest that can, with the
// reason a reset cannot where it cannot.
func (s *snapshot) chooseRestore(name, want string, image []byte, module []byte) error {
	s.info.Restore = RestoreSegments
	if want == RestoreSegments || len(image) == 0 {
		if want != "" && want != RestoreSegments {
			return errors.New("the module has no memory to map")
		}
		return nil
	}
	var err error
	if s.image, err = newMemImage(name, image); err != nil {
		if want != "" {
			return err
		}
		s.info.NotReset = err.Error()
		return nil
	}
	s.info.Restore = RestoreCOW
	if want == RestoreCOW {
		return nil
	}
	why := s.image.resettable()
	if why == "" {
		var err error
		if why, err = instanceStateOutsideMemory(module); err != nil {
			why = err.Error()
		} else if why != "" {
			why = "the code may change state a reset does not restore: " + why
		}
	}
	if why != "" {
		if want == RestoreReset {
			s.close()
			return errors.New(why)
		}
		s.info.NotReset = why
		return nil
	}
	s.info.Restore = RestoreReset
	return nil
}

// warmUp runs the configured warm-up request on in, which must answer
// without a fault (any status).
func (f *function) warmUp(ctx context.Context, in *instance) error {
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, "/fn/"+f.name, nil)
	if err != nil {
		return err
	}
	c := newCall(f.name, r, []byte(f.cfg.Warmup), int(f.cfg.MaxResponseBytes))
	_, err = in.mod.ExportedFunction(f.entry).Call(context.WithValue(ctx, callKey{}, c))
	if ee := (*sys.ExitError)(nil); errors.As(err, &ee) && ee.ExitCode() == 0 {
		err = nil
	}
	switch {
	case err != nil:
		return fmt.Errorf("%v%s", err, stderrTail(c.stderr))
	case c.violation != "":
		return errors.New(c.violation)
	case c.fileTable:
		return errors.New("it closed or re-flagged stdin, stdout or stderr")
	}
	_, err = parseOutput(c.stdout)
	return err
}

// reset puts in, an instance restored from s that served a request
// cleanly (keepsAfter), back to the snapshot: memory, mutable globals, clocks.
func (s *snapshot) reset(in *instance) error {
	// keepsAfter kept it only with its memory at the snapshot's size.
	mem := in.mod.Memory()
	buf, _ := mem.Read(0, mem.Size())
	var err error
	if _, in.pagemap, err = s.image.reset(buf, in.pagemap); err != nil {
		return err
	}
	if in.globals == nil {
		for i, g := range s.globals {
			if !g.Mutable {
				continue
			}
			mg, ok := in.mod.ExportedGlobal(g.Export).(api.MutableGlobal)
			if !ok {
				return fmt.Errorf("global %d is not exported mutable (a bug)", g.Index)
			}
			in.globals = append(in.globals, keptGlobal{mg, s.values[i]})
		}
	}
	for _, g := range in.globals {
		g.Set(g.value)
	}
	if in.clock != nil {
		in.clock.nano, in.clock.wall = s.nano, s.wall
	}
	return nil
}

// keptGlobal is a kept instance's mutable global and its snapshot value.
type keptGlobal struct {
	api.MutableGlobal
	value uint64
}

// memoryOf is mod's memory, or nil: wazero answers a module without one
// with a nil pointer in a non-nil interface.
func memoryOf(mod api.Module) api.Memory {
	m := mod.Memory()
	if m == nil || reflect.ValueOf(m).IsNil() {
		return nil
	}
	return m
}

// close releases what the snapshot holds outside the Go heap.
func (s *snapshot) close() {
	if s != nil && s.image != nil {
		s.image.close()
	}
}

// stderrTail formats what a guest wrote to stderr for an error message.
func stderrTail(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	const max = 512
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return fmt.Sprintf(" (stderr: %q)", b)
}

// allocator is the memory allocator of an instance restored from s: a
// copy-on-write mapping of its image, or nil for a fresh memory.
func (s *snapshot) allocator(b *memBudget, in *instance) experimental.MemoryAllocator {
	if s == nil || s.image == nil {
		return nil
	}
	return experimental.MemoryAllocatorFunc(func(_, max uint64) experimental.LinearMemory {
		m := s.image.newMemory(b, max)
		in.mem = m
		return m
	})
}
