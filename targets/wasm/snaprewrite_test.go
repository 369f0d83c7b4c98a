package wasm

import (
	"bytes"
	"context"
	"math"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/academemes/harness/functions"
)

// snapState is an instance's state as the snapshot mode reads it.
type snapState struct {
	mem    []byte // the whole memory; nil if the instance has none
	values []uint64
}

// snapRuntime returns a runtime (the interpreter, or the compiler where
// compiled) with the package's WASI and the "env" module of snap-env.wat
// instantiated.
func snapRuntime(t testing.TB, compiled bool) (context.Context, wazero.Runtime) {
	t.Helper()
	ctx := context.Background()
	rc := wazero.NewRuntimeConfigInterpreter()
	if compiled {
		rc = wazero.NewRuntimeConfigCompiler()
	}
	rt := wazero.NewRuntimeWithConfig(ctx, rc)
	t.Cleanup(func() { rt.Close(ctx) })
	if err := instantiateWASI(ctx, rt); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.InstantiateWithConfig(ctx, module(t, "snap-env"), wazero.NewModuleConfig().WithName("env")); err != nil {
		t.Fatal(err)
	}
	return ctx, rt
}

// instantiateSnap instantiates m anonymously, running the start functions
// named (none: only the start section, which always runs).
func instantiateSnap(t testing.TB, ctx context.Context, rt wazero.Runtime, m []byte, start ...string) api.Module {
	t.Helper()
	mod, err := rt.InstantiateWithConfig(ctx, m, wazero.NewModuleConfig().WithName("").WithStartFunctions(start...))
	if err != nil {
		t.Fatal(err)
	}
	return mod
}

// stateOf reads the memory of mod, made from exportGlobals(m) (wazero's
// Memory() of a module without one is a nil pointer in a non-nil
// interface, so m says whether it has one), and the values of globals; an
// immutable global's value is 0.
func stateOf(t testing.TB, mod api.Module, m []byte, globals []snapGlobal) snapState {
	t.Helper()
	var s snapState
	sm, err := parseSnapModule(m)
	if err != nil {
		t.Fatal(err)
	}
	if sm.mem != nil {
		mem := mod.Memory()
		b, ok := mem.Read(0, mem.Size())
		if !ok {
			t.Fatal("memory unreadable")
		}
		s.mem = bytes.Clone(b)
	}
	s.values = make([]uint64, len(globals))
	for i, g := range globals {
		if g.Export == "" {
			continue
		}
		eg := mod.ExportedGlobal(g.Export)
		if eg == nil {
			t.Fatalf("global %d not exported as %q", g.Index, g.Export)
		}
		if _, ok := eg.(api.MutableGlobal); !ok {
			t.Fatalf("global %d exported as immutable", g.Index)
		}
		s.values[i] = eg.Get()
	}
	return s
}

// takeSnapshot does what the platform does at deploy: it instantiates
// exportGlobals(m) running start and reads the state. It returns the
// instance (for more calls) too.
func takeSnapshot(t testing.TB, ctx context.Context, rt wazero.Runtime, m []byte, start ...string) (api.Module, []snapGlobal, snapState) {
	t.Helper()
	exp, globals, err := exportGlobals(m)
	if err != nil {
		t.Fatal(err)
	}
	mod := instantiateSnap(t, ctx, rt, exp, start...)
	return mod, globals, stateOf(t, mod, m, globals)
}

// restore bakes the snapshot into m, instantiates the result with no start
// function, and returns its state (read through exportGlobals of the baked
// module, whose globals must be the original's) and the baked bytes.
func restore(t testing.TB, ctx context.Context, rt wazero.Runtime, m []byte, image []byte, globals []snapGlobal, s snapState) (api.Module, snapState, []byte) {
	t.Helper()
	pages := uint32(len(s.mem) / 65536)
	baked, err := bakeSnapshot(m, pages, image, globals, s.values)
	if err != nil {
		t.Fatal(err)
	}
	// The baked module itself compiles and instantiates.
	instantiateSnap(t, ctx, rt, baked).Close(ctx)
	exp, g2, err := exportGlobals(baked)
	if err != nil {
		t.Fatalf("exportGlobals of the baked module: %v", err)
	}
	if !slices.Equal(g2, globals) {
		t.Fatalf("the baked module's globals %+v, the original's %+v", g2, globals)
	}
	mod := instantiateSnap(t, ctx, rt, exp)
	return mod, stateOf(t, mod, baked, globals), baked
}

// sectionsBut returns m's sections other than those of ids, as bytes.
func sectionsBut(t testing.TB, m []byte, ids ...byte) [][]byte {
	t.Helper()
	secs, err := splitSections(m)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, s := range secs {
		if !slices.Contains(ids, s.id) {
			out = append(out, m[s.head:s.end])
		}
	}
	return out
}

func TestExportGlobals(t *testing.T) {
	exp := func(i string) string { return snapGlobalPrefix + i }
	cases := []struct {
		file    string
		raw     []byte // the module, if not the file's
		globals []snapGlobal
		err     string // part of the refusal; "" for none
	}{
		{file: "snap-globals", globals: []snapGlobal{
			{1, valI32, true, exp("1")}, {2, valI64, true, exp("2")}, {3, valF32, true, exp("3")}, {4, valF64, true, exp("4")},
			{5, valI32, false, ""}, {6, valI64, false, ""}, {7, valF32, false, ""}, {8, valF64, false, ""}, {9, valV128, false, ""},
		}},
		{file: "snap-nomem", globals: []snapGlobal{{0, valI32, true, exp("0")}, {1, valI32, false, ""}, {2, valI64, true, exp("2")}}},
		{file: "snap-start"},
		{file: "snap-env", globals: []snapGlobal{{0, valI32, false, ""}}},
		{file: "echo"},

		{file: "snap-importmem", err: "the memory is imported"},
		{file: "snap-importmut", err: "global 0 is an imported mutable global"},
		{file: "snap-v128", err: "global 0 is a mutable v128"},
		{file: "snap-funcref", err: "global 0 is a mutable reference (type 0x70)"},
		{file: "snap-clash", err: `exports "purify.snapshot.global.0"`},
		{file: "snap-twomem", err: "2 memories"},
		{file: "snap-mem64", err: "64-bit"},
		{file: "snap-shared", err: "shared"},
		{file: "version 2", raw: []byte("\x00asm\x02\x00\x00\x00"), err: "not a version 1 wasm binary"},
		{file: "empty", raw: []byte{}, err: "not a version 1 wasm binary"},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			in := tc.raw
			if in == nil {
				in = module(t, tc.file)
			}
			out, globals, err := exportGlobals(in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want one saying %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(globals, tc.globals) {
				t.Errorf("globals %+v\nwant %+v", globals, tc.globals)
			}
			// Only the export section changes, and only by the exports
			// added: every section but it is as it was.
			if !slices.EqualFunc(sectionsBut(t, out, secExport), sectionsBut(t, in, secExport), bytes.Equal) {
				t.Error("a section other than the exports changed")
			}
			ctx, rt := snapRuntime(t, false)
			cin, err1 := rt.CompileModule(ctx, in)
			cout, err2 := rt.CompileModule(ctx, out)
			if err1 != nil || err2 != nil {
				t.Fatalf("compiling the original: %v; the output: %v", err1, err2)
			}
			if a, b := exportNames(cin), exportNames(cout); !slices.Equal(a, b) {
				t.Errorf("functions and memories exported %v, were %v", b, a)
			}
			mod := instantiateSnap(t, ctx, rt, out)
			for _, g := range tc.globals {
				if g.Export == "" {
					continue
				}
				eg := mod.ExportedGlobal(g.Export)
				if eg == nil {
					t.Errorf("no export %q", g.Export)
					continue
				}
				if _, ok := eg.(api.MutableGlobal); !ok || byte(eg.Type()) != g.Type {
					t.Errorf("%q: type %#x, mutable %v; want %#x, mutable", g.Export, eg.Type(), ok, g.Type)
				}
			}
		})
	}
}

// exportNames lists the functions and memories cm exports, sorted.
func exportNames(cm wazero.CompiledModule) []string {
	var names []string
	for name := range cm.ExportedFunctions() {
		names = append(names, "func "+name)
	}
	for name := range cm.ExportedMemories() {
		names = append(names, "memory "+name)
	}
	slices.Sort(names)
	return names
}

// dataOf returns m's data segments (none without a data section).
func dataOf(t testing.TB, m []byte) []dataSeg {
	t.Helper()
	secs, err := splitSections(m)
	if err != nil {
		t.Fatal(err)
	}
	s := findSection(secs, secData)
	if s == nil {
		return nil
	}
	segs, err := parseData(m[s.start:s.end])
	if err != nil {
		t.Fatal(err)
	}
	return segs
}

// imageOf lays m's active data segments out in n bytes of zeros.
func imageOf(t testing.TB, m []byte, n int) []byte {
	t.Helper()
	img := make([]byte, n)
	for _, s := range dataOf(t, m) {
		if s.active {
			if int(s.offset)+len(s.init) > n {
				t.Fatalf("a segment at %d of %d bytes, past %d", s.offset, len(s.init), n)
			}
			copy(img[s.offset:], s.init)
		}
	}
	return img
}

func isZero(b []byte) bool { return !slices.ContainsFunc(b, func(c byte) bool { return c != 0 }) }

// A snapshot taken after initialisation and baked into the module gives,
// with no guest code run, an instance with the same memory and globals:
// with the memory image as data segments, or (image nil) a zeroed memory
// of the right size for the host to fill. The start function and
// _initialize do not run again (each counts its runs in memory or a
// global), and what the rewrite does not touch is byte for byte the
// original.
func TestSnapshotRestoresState(t *testing.T) {
	cases := []struct {
		file  string
		start []string
		pages int
		runs  int // active segments baked from the image
	}{
		{"snap-globals", []string{"_initialize"}, 3, 3},
		{"snap-nomem", nil, 0, 0},
		{"snap-start", []string{"_initialize"}, 2, 3},
	}
	for _, tc := range cases {
		for _, run := range []struct {
			withImage, compiled bool
		}{{true, false}, {false, false}, {true, true}, {false, true}} {
			withImage := run.withImage
			name := tc.file + map[bool]string{true: "/image", false: "/nil"}[withImage] + map[bool]string{true: "/compiler", false: "/interpreter"}[run.compiled]
			t.Run(name, func(t *testing.T) {
				ctx, rt := snapRuntime(t, run.compiled)
				in := module(t, tc.file)
				_, globals, snap := takeSnapshot(t, ctx, rt, in, tc.start...)
				if len(snap.mem) != tc.pages*65536 {
					t.Fatalf("snapshot of %d bytes, want %d pages", len(snap.mem), tc.pages)
				}
				var image []byte
				if withImage {
					image = snap.mem
				}
				_, got, baked := restore(t, ctx, rt, in, image, globals, snap)
				if !slices.Equal(got.values, snap.values) {
					t.Errorf("globals %#x after the restore, %#x in the snapshot", got.values, snap.values)
				}
				switch {
				case len(got.mem) != len(snap.mem):
					t.Errorf("memory of %d bytes after the restore, %d in the snapshot", len(got.mem), len(snap.mem))
				case withImage && !bytes.Equal(got.mem, snap.mem):
					t.Error("memory differs from the snapshot")
				case !withImage && !isZero(got.mem):
					t.Error("memory not zero with no image (a segment or the start function wrote it)")
				}
				active := 0
				for _, s := range dataOf(t, baked) {
					if s.active {
						active++
					}
				}
				if want := tc.runs * btoi(withImage); active != want {
					t.Errorf("%d active segments baked, want %d", active, want)
				}
				// What the rewrite is not to touch is as it was.
				touched := []byte{secMemory, secGlobal, secStart, secDataCount, secData}
				if !slices.EqualFunc(sectionsBut(t, baked, touched...), sectionsBut(t, in, touched...), bytes.Equal) {
					t.Error("a section the rewrite is not to touch changed")
				}
				secs, _ := splitSections(baked)
				if findSection(secs, secStart) != nil {
					t.Error("the start section is still there")
				}
				if last := secs[len(secs)-1]; tc.file != "snap-nomem" && last.id != secCustom {
					t.Errorf("the last section is %d, not the name section", last.id)
				}
			})
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// The main test module in detail: the values _initialize set, raw bits
// of a NaN included; the start function's and _initialize's counters; the
// maximum of the memory kept; passive segments kept with their indices
// (memory.init of the passive one copies it, of a former active one
// traps); immutable globals
// and the table as they were.
func TestSnapshotGlobalsModule(t *testing.T) {
	for _, compiled := range []bool{false, true} {
		t.Run(map[bool]string{true: "compiler", false: "interpreter"}[compiled], func(t *testing.T) {
			testSnapshotGlobalsModule(t, compiled)
		})
	}
}

func testSnapshotGlobalsModule(t *testing.T, compiled bool) {
	ctx, rt := snapRuntime(t, compiled)
	in := module(t, "snap-globals")
	warm, globals, snap := takeSnapshot(t, ctx, rt, in, "_initialize")
	want := []uint64{uint64(uint32(0xff_ff_ff_ff - 123456789 + 1)), uint64(0xfedcba9876543210), 0xffa00001, math.Float64bits(-1.5e300)}
	if !slices.Equal(snap.values[:4], want) {
		t.Fatalf("snapshot globals %#x, want %#x (the test module changed?)", snap.values[:4], want)
	}
	restored, got, baked := restore(t, ctx, rt, in, snap.mem, globals, snap)
	if !slices.Equal(got.values, snap.values) {
		t.Errorf("globals %#x after the restore, %#x in the snapshot", got.values, snap.values)
	}
	for _, at := range []uint32{16, 20} {
		for name, mod := range map[string]api.Module{"snapshot": warm, "restored": restored} {
			if n, _ := mod.Memory().ReadUint32Le(at); n != 1 {
				t.Errorf("%s: the counter at %d is %d, want 1", name, at, n)
			}
		}
	}
	cm, err := rt.CompileModule(ctx, baked)
	if err != nil {
		t.Fatal(err)
	}
	mem := cm.ExportedMemories()["memory"]
	if max, ok := mem.Max(); mem.Min() != 3 || !ok || max != 8 {
		t.Errorf("memory limits %d..%d (%v), want 3..8", mem.Min(), max, ok)
	}
	segs := dataOf(t, baked)
	if len(segs) < 3 || segs[0].active || len(segs[0].init) != 0 || segs[1].active || string(segs[1].init) != "passive bytes" || segs[2].active || len(segs[2].init) != 0 {
		t.Errorf("the first 3 segments %+v: want empty passive, the passive one, empty passive", segs[:min(3, len(segs))])
	}
	// The specification drops an active segment once applied, so that
	// memory.init of it traps. wazero keeps its bytes (applyData), so the
	// instance snapshotted copies them; the restored one traps, as the
	// specification's would.
	if _, err := restored.ExportedFunction("init_hello").Call(ctx); err == nil {
		t.Error("memory.init of a former active segment did not trap")
	}
	for name, mod := range map[string]api.Module{"snapshot": warm, "restored": restored} {
		if _, err := mod.ExportedFunction("init_p").Call(ctx, 190000); err != nil {
			t.Errorf("%s: init_p: %v", name, err)
		} else if b, _ := mod.Memory().Read(190000, 13); string(b) != "passive bytes" {
			t.Errorf("%s: init_p copied %q", name, b)
		}
		for i, want := range []uint64{10, 15} {
			if r, err := mod.ExportedFunction("call").Call(ctx, uint64(i), 5); err != nil || r[0] != want {
				t.Errorf("%s: call(%d, 5) = %v, %v; want %d", name, i, r, err, want)
			}
		}
		r, err := mod.ExportedFunction("consts").Call(ctx)
		wantConsts := []uint64{4096, uint64(0xffff_ffff_ffff_fffb), uint64(math.Float32bits(6.5)), math.Float64bits(7.75), 4}
		if err != nil || !slices.Equal(r, wantConsts) {
			t.Errorf("%s: consts = %#x, %v; want %#x", name, r, err, wantConsts)
		}
	}
}

func TestBakeSnapshotRefuses(t *testing.T) {
	globalsMod := module(t, "snap-globals")
	exported, g, err := exportGlobals(globalsMod)
	if err != nil {
		t.Fatal(err)
	}
	vals := make([]uint64, len(g))
	nomem := module(t, "snap-nomem")
	_, gn, err := exportGlobals(nomem)
	if err != nil {
		t.Fatal(err)
	}
	retyped := slices.Clone(g)
	retyped[0].Type = valI64
	three := testModule{minPages: 1, dataCount: true, initSeg: -1, segs: []testSeg{active(0, "a"), active(2, "b"), active(4, "c")}}
	cases := []struct {
		name    string
		m       func(t *testing.T) []byte
		pages   uint32
		image   []byte
		globals []snapGlobal
		values  []uint64
		err     string
	}{
		{"pages over the maximum", func(*testing.T) []byte { return globalsMod }, 9, nil, g, vals, "over the memory's maximum of 8"},
		{"pages over a 32-bit memory", func(t *testing.T) []byte { return module(t, "snap-start") }, 65537, nil, nil, nil, "over the 65536"},
		{"pages below the initial size", func(t *testing.T) []byte { return module(t, "snap-start") }, 1, nil, nil, nil, "below the module's initial 2"},
		{"an image larger than the pages", func(*testing.T) []byte { return globalsMod }, 1, make([]byte, 65537), g, vals, "image of 65537 bytes in 1 pages"},
		{"pages of a module without memory", func(*testing.T) []byte { return nomem }, 1, nil, gn, make([]uint64, len(gn)), "with no memory"},
		{"an image of a module without memory", func(*testing.T) []byte { return nomem }, 0, []byte{1}, gn, make([]uint64, len(gn)), "image of 1 bytes in 0 pages"},
		{"globals of another module", func(*testing.T) []byte { return globalsMod }, 3, nil, gn, make([]uint64, len(gn)), "not the module's"},
		{"a global's type changed", func(*testing.T) []byte { return globalsMod }, 3, nil, retyped, vals, "not the module's"},
		{"values missing", func(*testing.T) []byte { return globalsMod }, 3, nil, g, vals[:3], "3 values for 9 globals"},
		{"imported memory", func(t *testing.T) []byte { return module(t, "snap-importmem") }, 1, nil, nil, nil, "the memory is imported"},
		{"a mutable v128", func(t *testing.T) []byte { return module(t, "snap-v128") }, 1, nil, nil, nil, "mutable v128"},
		{"a clashing export", func(t *testing.T) []byte { return module(t, "snap-clash") }, 0, nil, nil, nil, "names beginning with"},
		{"the exportGlobals output", func(*testing.T) []byte { return exported }, 3, nil, g, vals, "are the snapshot's"},
		{"truncated", func(*testing.T) []byte { return globalsMod[:len(globalsMod)-20] }, 3, nil, g, vals, "remain"},
		{"a garbled global section", func(t *testing.T) []byte {
			secs, _ := splitSections(globalsMod)
			m := bytes.Clone(globalsMod)
			m[findSection(secs, secGlobal).start+1] = 0x01 // the first global's type
			return m
		}, 3, nil, g, vals, "value type 0x1"},
		{"a data count that is not the segments'", func(t *testing.T) []byte { return replaceSection(t, three.bytes(), secDataCount, u32(9)) }, 1, nil, nil, nil, "declares 9 segments"},
		{"memory.init past the data count", func(t *testing.T) []byte {
			return testModule{minPages: 1, dataCount: true, initSeg: 3, initLen: 1, segs: three.segs}.bytes()
		}, 1, nil, nil, nil, "may name data segment 3"},
		{"a segment the instantiation fails on", func(t *testing.T) []byte {
			return testModule{minPages: 1, initSeg: -1, segs: []testSeg{active(65535, "ab")}}.bytes()
		}, 2, nil, nil, nil, "outside the initial memory"},
		{"a segment with a global offset", func(t *testing.T) []byte {
			return testModule{minPages: 1, global: true, initSeg: -1, segs: []testSeg{{memIdx: -1, offset: []byte{0x23, 0}, init: []byte("b")}}}.bytes()
		}, 1, nil, []snapGlobal{{0, valI32, false, ""}}, []uint64{0}, "not an i32.const"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := bakeSnapshot(tc.m(t), tc.pages, tc.image, tc.globals, tc.values)
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("err = %v, want one saying %q", err, tc.err)
			}
			if out != nil {
				t.Error("a module with the error")
			}
		})
	}
}

// Truncated and garbled modules (each byte of the main test module
// replaced by a few others) never make the rewrites panic, and the
// rewrites never change whether the compiler accepts a module: exportGlobals'
// output compiles exactly when its input does, and bakeSnapshot's output
// of a module that compiles compiles.
func TestSnapRewritesMalformed(t *testing.T) {
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	defer rt.Close(ctx)
	compiles := func(m []byte) bool {
		// wazero may allocate gigabytes for a module the shape check
		// refuses (modcheck.go): such a module is taken as not compiling.
		if checkModuleShape(m) != nil {
			return false
		}
		cm, err := compile(ctx, rt, m)
		if err == nil {
			cm.Close(ctx)
		}
		return err == nil
	}
	good := module(t, "snap-globals")
	var inputs [][]byte
	for i := range len(good) {
		inputs = append(inputs, good[:i])
		for _, b := range []byte{0x00, 0xff, good[i] ^ 0x80, good[i] + 1} {
			m := bytes.Clone(good)
			m[i] = b
			inputs = append(inputs, m)
		}
	}
	accepted, baked := 0, 0
	for _, in := range inputs {
		out, globals, err := exportGlobals(in)
		if err != nil {
			continue
		}
		accepted++
		ok := compiles(in)
		if compiles(out) != ok {
			t.Errorf("exportGlobals changed whether the module compiles (%v before)\n%x", ok, in)
		}
		sm, _ := parseSnapModule(in)
		pages := uint32(0)
		if sm.mem != nil {
			pages = sm.mem.min
		}
		image := []byte{0, 1, 2, 3}[:min(4, int(pages)*65536)]
		b, err := bakeSnapshot(in, pages, image, globals, make([]uint64, len(globals)))
		if err != nil {
			continue
		}
		baked++
		if ok && !compiles(b) {
			t.Errorf("bakeSnapshot of a module that compiles does not compile\n%x", in)
		}
	}
	t.Logf("%d inputs: exportGlobals accepted %d, bakeSnapshot %d", len(inputs), accepted, baked)
	if accepted == 0 || baked == 0 {
		t.Error("no input accepted: the test checks nothing")
	}
}

// The Go reactor build of memes (the platform's warm build): a snapshot
// after _initialize, baked into the module as deployed (data segments
// merged), restores the same memory and globals, and answers requests with
// the same bytes as the instance it was taken from.
func TestSnapshotGoReactor(t *testing.T) {
	if testing.Short() {
		t.Skip("initialises the 2.4 MB Go reactor in the interpreter (-short)")
	}
	in, err := functions.Module(functions.FS(), "memes", functions.Reactor)
	if err != nil {
		t.Fatal(err)
	}
	merged, ms := mergeDataSegments(in)
	if ms.Skipped != "" {
		t.Fatalf("merge: %s", ms.Skipped)
	}
	// The interpreter: compiling the module takes a small machine most of
	// a minute, and the rewrite is the same for both engines.
	ctx, rt := snapRuntime(t, false)
	warm, globals, snap := takeSnapshot(t, ctx, rt, merged, "_initialize")
	mutable := 0
	for _, g := range globals {
		mutable += btoi(g.Mutable)
	}
	if mutable == 0 {
		t.Fatal("no mutable global: Go keeps its stack pointer in one")
	}
	restored, got, baked := restore(t, ctx, rt, merged, snap.mem, globals, snap)
	if !bytes.Equal(got.mem, snap.mem) || !slices.Equal(got.values, snap.values) {
		t.Fatalf("restored: same memory %v, globals %#x, snapshot's %#x", bytes.Equal(got.mem, snap.mem), got.values, snap.values)
	}
	bare, gotNil, bakedNil := restore(t, ctx, rt, merged, nil, globals, snap)
	if len(gotNil.mem) != len(snap.mem) || !isZero(gotNil.mem) || !slices.Equal(gotNil.values, snap.values) {
		t.Fatalf("restored with no image: %d bytes of memory (zero: %v), globals %#x", len(gotNil.mem), isZero(gotNil.mem), gotNil.values)
	}
	bare.Close(ctx)

	nonZero := 0
	for _, c := range snap.mem {
		nonZero += btoi(c != 0)
	}
	runs := nonZeroRuns(snap.mem, mergeGap)
	inRuns := 0
	for _, r := range runs {
		inRuns += r[1] - r[0]
	}
	t.Logf("memes reactor: %d globals (%d mutable); snapshot memory %d bytes (%d pages), %d non-zero, %d runs of %d bytes (mergeGap %d); module %d bytes as built, %d merged, baked %d with the image, %d without",
		len(globals), mutable, len(snap.mem), len(snap.mem)/65536, nonZero, len(runs), inRuns, mergeGap, len(in), len(merged), len(baked), len(bakedNil))

	for _, req := range []struct{ query, body, accept string }{
		{"", `{"id": 3}`, ""}, {"id=44", "", "text/html"}, {"", `{"id":"x"}`, ""}, {"", `{"id": 3}`, ""},
	} {
		var outs [2]string
		for i, mod := range []api.Module{warm, restored} {
			r := httptest.NewRequest("POST", "/fn/memes?"+req.query, strings.NewReader(req.body))
			if req.accept != "" {
				r.Header.Set("Accept", req.accept)
			}
			c := newCall("memes", r, []byte(req.body), 1<<20)
			if _, err := mod.ExportedFunction("purify_handle").Call(context.WithValue(ctx, callKey{}, c)); err != nil {
				t.Fatalf("%+v: %v (stderr %q)", req, err, c.stderr)
			}
			outs[i] = string(c.stdout)
		}
		if outs[0] != outs[1] || !strings.Contains(outs[0], "Content-Type") {
			t.Errorf("%+v: the instance snapshotted answered\n%.300q\nthe restored one\n%.300q", req, outs[0], outs[1])
		}
	}
}

// FuzzBakeSnapshot: no input makes the rewrites panic, and a baked module
// is one exportGlobals reads back with the same globals, whose active
// segments lay out the image given.
func FuzzBakeSnapshot(f *testing.F) {
	for _, name := range []string{"snap-globals", "snap-nomem", "snap-start"} {
		b, err := os.ReadFile("testdata/" + name + ".wasm")
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, uint32(3), []byte("\x00\x01\x00\x00\x02"))
	}
	f.Add(testModule{minPages: 1, dataCount: true, initSeg: 1, initLen: 1, segs: []testSeg{active(0, "a"), {passive: true, init: []byte("p")}}}.bytes(), uint32(1), []byte{})
	f.Fuzz(func(t *testing.T, in []byte, pages uint32, image []byte) {
		if len(in) > 4096 || len(image) > 1<<16 {
			return
		}
		_, globals, err := exportGlobals(in)
		if err != nil {
			return
		}
		values := make([]uint64, len(globals))
		for i := range values {
			values[i] = uint64(i) * 0x9e3779b97f4a7c15
		}
		out, err := bakeSnapshot(in, pages, image, globals, values)
		if err != nil {
			return
		}
		_, again, err := exportGlobals(out)
		if err != nil || !slices.Equal(again, globals) {
			t.Fatalf("the baked module reads back as %+v, %v; want %+v", again, err, globals)
		}
		if img := imageOf(t, out, len(image)); !bytes.Equal(img, image) {
			t.Fatal("the baked segments do not lay out the image")
		}
	})
}

// Every build of the functions served here is one the rewrites accept
// (none refused, none with a data count whose code scan could refuse it
// wrongly), so the snapshot mode can serve each.
func TestSnapshotAcceptsEveryBuild(t *testing.T) {
	fsys := functions.FS()
	names, err := functions.Names(fsys)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		variants, err := functions.Variants(fsys, name)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range append([]string{""}, variants...) {
			m, err := functions.Module(fsys, name, v)
			if err != nil {
				t.Fatal(err)
			}
			_, globals, err := exportGlobals(m)
			if err != nil {
				t.Errorf("%s %q: exportGlobals: %v", name, v, err)
				continue
			}
			sm, err := parseSnapModule(m)
			if err != nil || sm.mem == nil {
				t.Fatalf("%s %q: %v, memory %v", name, v, err, sm.mem)
			}
			if _, err := bakeSnapshot(m, sm.mem.min, []byte{1}, globals, make([]uint64, len(globals))); err != nil {
				t.Errorf("%s %q: bakeSnapshot: %v", name, v, err)
			}
		}
	}
}
