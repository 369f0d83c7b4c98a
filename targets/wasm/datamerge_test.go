package wasm

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/academemes/harness/functions"
)

// A small builder of test modules in the binary format, so each case says
// exactly which sections and segments it has.

type testSeg struct {
	passive bool
	memIdx  int    // -1: flags 0 (memory 0 implied); else flags 2 with this index
	offset  []byte // the offset expression without its end; nil: i32.const off
	off     int32
	init    []byte
}

type testModule struct {
	importMemory bool
	memFlags     byte // limits flags of the memory (0: min only)
	minPages     uint32
	dataCount    bool
	global       bool   // one immutable i32 global, 1024
	initSeg      int    // >= 0: export "init" doing memory.init of this segment at 60000
	initLen      uint32 // bytes memory.init copies
	segs         []testSeg
}

func u32(v uint32) []byte  { return appendU32(nil, v) }
func name(s string) []byte { return append(u32(uint32(len(s))), s...) }
func sec(id byte, body ...[]byte) []byte {
	b := bytes.Join(body, nil)
	return append(append([]byte{id}, u32(uint32(len(b)))...), b...)
}

func (t testModule) bytes() []byte {
	out := []byte("\x00asm\x01\x00\x00\x00")
	out = append(out, sec(1, u32(1), []byte{0x60, 0, 0})...)
	limits := append([]byte{t.memFlags}, u32(t.minPages)...)
	if t.memFlags&1 != 0 {
		limits = append(limits, u32(t.minPages+10)...)
	}
	if t.importMemory {
		out = append(out, sec(2, u32(1), name("env"), name("memory"), []byte{2}, limits)...)
	}
	out = append(out, sec(3, u32(1), u32(0))...)
	if !t.importMemory {
		out = append(out, sec(5, u32(1), limits)...)
	}
	if t.global {
		out = append(out, sec(6, u32(1), []byte{0x7f, 0, 0x41}, appendS32(nil, 1024), []byte{0x0b})...)
	}
	out = append(out, sec(7, u32(2), name("memory"), []byte{2, 0}, name("init"), []byte{0, 0})...)
	if t.dataCount {
		out = append(out, sec(12, u32(uint32(len(t.segs))))...)
	}
	var body []byte
	if t.initSeg >= 0 {
		body = append(body, 0x41)
		body = appendS32(body, 60000)
		body = append(body, 0x41, 0, 0x41)
		body = appendS32(body, int32(t.initLen))
		body = append(append(append(body, 0xfc, 0x08), u32(uint32(t.initSeg))...), 0)
	}
	fn := append(append([]byte{0}, body...), 0x0b) // no locals
	out = append(out, sec(10, u32(1), u32(uint32(len(fn))), fn)...)
	segs := [][]byte{u32(uint32(len(t.segs)))}
	for _, s := range t.segs {
		var b []byte
		switch {
		case s.passive:
			b = []byte{1}
		case s.memIdx >= 0:
			b = append([]byte{2}, u32(uint32(s.memIdx))...)
		default:
			b = []byte{0}
		}
		if !s.passive {
			if s.offset != nil {
				b = append(b, s.offset...)
			} else {
				b = appendS32(append(b, 0x41), s.off)
			}
			b = append(b, 0x0b)
		}
		b = append(append(b, u32(uint32(len(s.init)))...), s.init...)
		segs = append(segs, b)
	}
	return append(out, sec(11, segs...)...)
}

func active(off int32, init string) testSeg { return testSeg{memIdx: -1, off: off, init: []byte(init)} }

// memoryAfter instantiates module, calls its "init" when it does
// memory.init, and returns its memory, or the error of either step.
func memoryAfter(t *testing.T, module []byte, callInit bool) ([]byte, error) {
	t.Helper()
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	defer rt.Close(ctx)
	mod, err := rt.InstantiateWithConfig(ctx, module, wazero.NewModuleConfig().WithName(""))
	if err != nil {
		return nil, err
	}
	if callInit {
		if _, err := mod.ExportedFunction("init").Call(ctx); err != nil {
			return nil, err
		}
	}
	mem, _ := mod.Memory().Read(0, mod.Memory().Size())
	return bytes.Clone(mem), nil
}

func TestMergeDataSegments(t *testing.T) {
	long := strings.Repeat("\x00", mergeGap+10)
	cases := []struct {
		name   string
		m      testModule
		after  int    // active segments after; 0: left alone
		reason string // when left alone, part of the reason
	}{
		{name: "small gaps merge into one", after: 1, m: testModule{minPages: 1, initSeg: -1, segs: []testSeg{
			active(100, "abc"), active(110, "def"), active(104, "\x00x"), active(1000, "tail"),
		}}},
		{name: "later segment overwrites earlier, also with zeros", after: 1, m: testModule{minPages: 1, initSeg: -1, segs: []testSeg{
			active(200, "hello world"), active(205, "\x00\x00\x00"), active(203, "LL"), active(190, "zz"),
		}}},
		{name: "long zero runs are left out", after: 4, m: testModule{minPages: 2, initSeg: -1, segs: []testSeg{
			active(0, "x"), active(2, "y"), active(10, "a"+long+"b"), active(int32(3*mergeGap), "\x00\x00c\x00"), active(int32(5*mergeGap), "dd"),
		}}},
		{name: "zero bytes at a segment's ends are trimmed", after: 1, m: testModule{minPages: 1, initSeg: -1, segs: []testSeg{
			active(10, "\x00\x00ab\x00"), active(40, "\x00cd\x00\x00"),
		}}},
		{name: "flags 2 for memory 0 and a max", after: 1, m: testModule{minPages: 1, memFlags: 1, initSeg: -1, segs: []testSeg{
			{memIdx: 0, off: 8, init: []byte("xy")}, active(12, "z"),
		}}},
		{name: "offset at the very end of memory", after: 1, m: testModule{minPages: 1, initSeg: -1, segs: []testSeg{
			active(65536-4, "end!"), active(65536-10, "e"), active(65536, ""),
		}}},
		{name: "passive segments keep their indices (data count)", after: 1, m: testModule{
			minPages: 1, dataCount: true, initSeg: 2, initLen: 7, segs: []testSeg{
				active(0, "one"), {passive: true, init: []byte("passive0")}, {passive: true, init: []byte("passive")},
				active(5, "two"), active(9, "three"),
			}}},
		{name: "memory.init of zero bytes from a former active segment", after: 1, m: testModule{
			minPages: 1, dataCount: true, initSeg: 0, initLen: 0, segs: []testSeg{
				active(0, "one"), active(5, "two"), {passive: true, init: []byte("p")},
			}}},
		{name: "passive without a data count", after: 1, m: testModule{minPages: 1, initSeg: -1, segs: []testSeg{
			{passive: true, init: []byte("p")}, active(0, "a"), active(3, "b"),
		}}},

		{name: "one segment already", reason: "would not lower", m: testModule{minPages: 1, initSeg: -1, segs: []testSeg{
			active(0, "abc"),
		}}},
		{name: "offset from a global", reason: "not an i32.const", m: testModule{minPages: 1, global: true, initSeg: -1, segs: []testSeg{
			active(0, "a"), {memIdx: -1, offset: []byte{0x23, 0}, init: []byte("b")},
		}}},
		{name: "extended constant offset", reason: "more than one i32.const", m: testModule{minPages: 1, initSeg: -1, segs: []testSeg{
			active(0, "a"), {memIdx: -1, offset: []byte{0x41, 1, 0x41, 2, 0x6a}, init: []byte("b")},
		}}},
		{name: "segment past the initial memory", reason: "outside the initial memory", m: testModule{minPages: 1, initSeg: -1, segs: []testSeg{
			active(0, "a"), active(65535, "bc"),
		}}},
		{name: "negative offset", reason: "outside the initial memory", m: testModule{minPages: 1, initSeg: -1, segs: []testSeg{
			active(0, "a"), active(-1, "b"),
		}}},
		{name: "imported memory", reason: "imported", m: testModule{importMemory: true, minPages: 1, initSeg: -1, segs: []testSeg{
			active(0, "a"), active(2, "b"),
		}}},
		{name: "shared memory", reason: "shared", m: testModule{minPages: 1, memFlags: 3, initSeg: -1, segs: []testSeg{
			active(0, "a"), active(2, "b"),
		}}},
		{name: "segment for memory 1", reason: "memory 1", m: testModule{minPages: 1, initSeg: -1, segs: []testSeg{
			active(0, "a"), {memIdx: 1, off: 2, init: []byte("b")},
		}}},
		{name: "only empty active segments", reason: "no active segment with bytes", m: testModule{minPages: 1, initSeg: -1, segs: []testSeg{
			active(0, ""), active(3, ""),
		}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.m.bytes()
			out, st := mergeDataSegments(in)
			if tc.after == 0 {
				if st.Skipped == "" || !strings.Contains(st.Skipped, tc.reason) {
					t.Fatalf("rewritten (%+v), want left alone because %q", st, tc.reason)
				}
				if !bytes.Equal(out, in) {
					t.Fatal("a module left alone came back changed")
				}
				return
			}
			if st.Skipped != "" {
				t.Fatalf("left alone: %s", st.Skipped)
			}
			if st.After != tc.after || st.Before != countActive(tc.m.segs) {
				t.Errorf("segments %d -> %d, want %d -> %d", st.Before, st.After, countActive(tc.m.segs), tc.after)
			}
			callInit := tc.m.initSeg >= 0
			want, werr := memoryAfter(t, in, callInit)
			got, gerr := memoryAfter(t, out, callInit)
			if werr != nil || gerr != nil {
				t.Fatalf("original: %v; rewritten: %v", werr, gerr)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("memory differs after the rewrite")
			}
			// Rewriting again finds nothing left to merge.
			if _, st2 := mergeDataSegments(out); st2.Skipped == "" {
				t.Errorf("a merged module merged again: %+v", st2)
			}
		})
	}
}

func countActive(segs []testSeg) int {
	n := 0
	for _, s := range segs {
		if !s.passive {
			n++
		}
	}
	return n
}

// A segment that traps when applied must still trap: the module is left
// alone, so instantiation fails as before.
func TestMergeLeavesFailingModuleFailing(t *testing.T) {
	in := testModule{minPages: 1, initSeg: -1, segs: []testSeg{active(0, "a"), active(65535, "bc")}}.bytes()
	out, _ := mergeDataSegments(in)
	if _, err := memoryAfter(t, out, false); err == nil {
		t.Fatal("a module with a segment past its memory instantiated")
	}
}

// Random layouts (overlaps, zero runs around mergeGap, zeros inside)
// give the same memory before and after.
func TestMergeRandomLayouts(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 60 {
		m := testModule{minPages: 3, initSeg: -1, dataCount: i%3 == 0}
		for range 2 + r.IntN(40) {
			if r.IntN(8) == 0 {
				m.segs = append(m.segs, testSeg{passive: true, init: []byte("p")})
				continue
			}
			b := make([]byte, r.IntN(3*mergeGap/2))
			for k := range b {
				if r.IntN(3) == 0 {
					b[k] = byte(r.IntN(256))
				}
			}
			if len(b) > 10 && r.IntN(2) == 0 {
				clear(b[len(b)/3 : len(b)-2]) // a long zero run inside
			}
			m.segs = append(m.segs, active(int32(r.IntN(3*65536-len(b)+1)), string(b)))
		}
		in := m.bytes()
		out, st := mergeDataSegments(in)
		want, werr := memoryAfter(t, in, false)
		got, gerr := memoryAfter(t, out, false)
		if werr != nil || gerr != nil {
			t.Fatalf("layout %d (%+v): original: %v; rewritten: %v", i, st, werr, gerr)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("layout %d (%+v): memory differs after the rewrite", i, st)
		}
	}
}

// The modules served here: the Go builds go from tens of thousands of
// segments to a few, with the same memory at instantiation.
func TestMergeFunctionModules(t *testing.T) {
	if testing.Short() {
		t.Skip("instantiates the 2.4 MB Go modules in the interpreter")
	}
	for _, c := range []struct{ fn, variant string }{{"memes", ""}, {"memes", "reactor"}, {"fibonacci", ""}} {
		t.Run(c.fn+"/"+c.variant, func(t *testing.T) {
			in, err := functions.Module(functions.FS(), c.fn, c.variant)
			if err != nil {
				t.Fatal(err)
			}
			out, st := mergeDataSegments(in)
			if st.Skipped != "" || st.Before < 1000 || st.After > 16 {
				t.Fatalf("merge: %+v; want thousands of segments down to a few", st)
			}
			// The figures of RATIONALE.md ("Merged data segments").
			before, after := dataShapeOf(t, in), dataShapeOf(t, out)
			if before.segments != st.Before || after.segments != st.After {
				t.Errorf("shape %d -> %d segments, stats %+v", before.segments, after.segments, st)
			}
			t.Logf("%s: %s -> %s", c.fn+"/"+c.variant, before, after)
			ctx := context.Background()
			rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
			defer rt.Close(ctx)
			wasi_snapshot_preview1.MustInstantiate(ctx, rt)
			var mems [][]byte
			for _, b := range [][]byte{in, out} {
				// No start function: the memory as instantiation leaves it.
				mod, err := rt.InstantiateWithConfig(ctx, b, wazero.NewModuleConfig().WithName("").WithStartFunctions())
				if err != nil {
					t.Fatal(err)
				}
				mem, _ := mod.Memory().Read(0, mod.Memory().Size())
				mems = append(mems, bytes.Clone(mem))
			}
			if !bytes.Equal(mems[0], mems[1]) {
				t.Fatal("memory differs after the rewrite")
			}
		})
	}
}

func TestMergeMalformed(t *testing.T) {
	good := testModule{minPages: 1, initSeg: -1, segs: []testSeg{active(0, "a"), active(2, "b")}}.bytes()
	for i := range len(good) {
		// Every truncation is either left alone or still a valid rewrite
		// of what the compiler would refuse anyway; it never panics.
		out, st := mergeDataSegments(good[:i])
		if st.Skipped == "" {
			t.Errorf("truncated at %d: rewritten", i)
		}
		if !bytes.Equal(out, good[:i]) {
			t.Errorf("truncated at %d: changed", i)
		}
	}
}

func FuzzMergeDataSegments(f *testing.F) {
	f.Add(testModule{minPages: 1, initSeg: -1, segs: []testSeg{active(0, "a"), active(2, "b")}}.bytes())
	f.Add(testModule{minPages: 1, dataCount: true, initSeg: 1, initLen: 1, segs: []testSeg{active(0, "a"), {passive: true, init: []byte("p")}, active(2, "b")}}.bytes())
	f.Fuzz(func(t *testing.T, in []byte) {
		out, st := mergeDataSegments(in)
		// The platform merges only modules that pass the shape check;
		// wazero cannot be asked about the others (it may allocate
		// gigabytes for them, see modcheck.go).
		if st.Skipped != "" || checkModuleShape(in) != nil {
			return
		}
		// A rewritten module instantiates exactly when the original does,
		// with the same memory.
		want, werr := memoryAfter(t, in, false)
		got, gerr := memoryAfter(t, out, false)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("original: %v; rewritten: %v", werr, gerr)
		}
		if werr == nil && !bytes.Equal(got, want) {
			t.Fatal("memory differs after the rewrite")
		}
	})
}

// dataShape describes a module's active data segments.
type dataShape struct {
	segments     int
	bytes        int    // in the segments
	shortGaps    int    // bytes between consecutive segments, in gaps under mergeGap
	longGaps     int    // and in longer ones
	gapP         [3]int // 10th, 50th and 90th percentile of the gaps' lengths
	sectionBytes int    // the data section's contents
	moduleBytes  int
}

func (d dataShape) String() string {
	return fmt.Sprintf("%d segments (%d bytes in them; gaps %d bytes under %d, %d longer; gap p10/p50/p90 %v bytes); data section %d bytes, module %d",
		d.segments, d.bytes, d.shortGaps, mergeGap, d.longGaps, d.gapP, d.sectionBytes, d.moduleBytes)
}

// dataShapeOf parses m's data section.
func dataShapeOf(t testing.TB, m []byte) dataShape {
	t.Helper()
	d := dataShape{moduleBytes: len(m)}
	for i := 8; i < len(m); {
		n, k, err := readU32(m, i+1)
		if err != nil {
			t.Fatal(err)
		}
		if m[i] == secData {
			segs, err := parseData(m[k : k+int(n)])
			if err != nil {
				t.Fatal(err)
			}
			d.sectionBytes = int(n)
			segs = slices.DeleteFunc(segs, func(s dataSeg) bool { return !s.active })
			slices.SortStableFunc(segs, func(a, b dataSeg) int { return cmp.Compare(a.offset, b.offset) })
			var gaps []int
			end := -1
			for _, s := range segs {
				d.segments++
				d.bytes += len(s.init)
				if gap := int(s.offset) - end; end >= 0 && gap > 0 {
					gaps = append(gaps, gap)
					if gap < mergeGap {
						d.shortGaps += gap
					} else {
						d.longGaps += gap
					}
				}
				end = max(end, int(s.offset)+len(s.init))
			}
			if len(gaps) > 0 {
				slices.Sort(gaps)
				d.gapP = [3]int{gaps[len(gaps)/10], gaps[len(gaps)/2], gaps[len(gaps)*9/10]}
			}
		}
		i = k + int(n)
	}
	return d
}

// BenchmarkInstantiate: making an instance (memory and data; no start
// functions) in a wazero runtime with the compiler. memes' Go build as
// built and with its data segments merged (datamerge.go); memes-small with
// wazero's default rand source (seeded per instance) and with the zero
// reader Purify gives it.
func BenchmarkInstantiate(b *testing.B) {
	memes, err := functions.Module(functions.FS(), "memes", "")
	if err != nil {
		b.Fatal(err)
	}
	small, err := functions.Module(functions.FS(), "memes", "small")
	if err != nil {
		b.Fatal(err)
	}
	merged, _ := mergeDataSegments(memes)
	base := wazero.NewModuleConfig().WithName("").WithStartFunctions()
	for _, c := range []struct {
		name string
		mod  []byte
		cfg  wazero.ModuleConfig
	}{
		{"go/as-built", memes, base.WithRandSource(zeroReader{})},
		{"go/merged", merged, base.WithRandSource(zeroReader{})},
		{"small/rand-default", small, base},
		{"small/rand-zero", small, base.WithRandSource(zeroReader{})},
	} {
		b.Run(c.name, func(b *testing.B) {
			ctx := context.Background()
			rt := wazero.NewRuntime(ctx)
			defer rt.Close(ctx)
			wasi_snapshot_preview1.MustInstantiate(ctx, rt)
			cm, err := rt.CompileModule(ctx, c.mod)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				mod, err := rt.InstantiateModule(ctx, cm, c.cfg)
				if err != nil {
					b.Fatal(err)
				}
				mod.Close(ctx)
			}
		})
	}
}
