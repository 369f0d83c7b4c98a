package wasm

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"

	"github.com/academemes/harness/functions"
)

// Every build the project serves changes nothing outside its memory and
// globals, so each may be kept in snapshot mode; and the decoder really
// walks each one's code (its counts are logged).
func TestInstanceStateOutsideMemoryBuilds(t *testing.T) {
	fsys := functions.FS()
	names, err := functions.Names(fsys)
	if err != nil {
		t.Fatal(err)
	}
	modules := 0
	for _, name := range names {
		variants, err := functions.Variants(fsys, name)
		if err != nil {
			t.Fatal(err)
		}
		for _, variant := range append([]string{""}, variants...) {
			m, err := functions.Module(fsys, name, variant)
			if err != nil {
				t.Fatal(err)
			}
			modules++
			t.Run(name+"/"+variant, func(t *testing.T) {
				s, err := scanModule(m)
				if err != nil || s.finding != "" {
					t.Fatalf("finding %q, error %v", s.finding, err)
				}
				if s.functions == 0 || s.instructions == 0 {
					t.Fatalf("decoded %d functions, %d instructions", s.functions, s.instructions)
				}
				got, err := instanceStateOutsideMemory(m)
				if got != "" || err != nil {
					t.Fatalf("instanceStateOutsideMemory: %q, %v", got, err)
				}
				t.Logf("%d bytes: %d functions, %d instructions decoded", len(m), s.functions, s.instructions)
			})
		}
	}
	if modules < 4 {
		t.Fatalf("only %d embedded modules", modules)
	}
}

// The decoder counts as many instructions as wasm-objdump -d prints
// (wabt's disassembler, each body's final end included), in modules whose
// code uses most of the instruction set.
func TestCodeScanCountsLikeObjdump(t *testing.T) {
	objdump, err := exec.LookPath("wasm-objdump")
	if err != nil {
		t.Skip("wasm-objdump (wabt) is not installed")
	}
	cases := []struct{ name, variant, file string }{
		{name: "fibonacci", variant: functions.Small},
		{name: "memes", variant: functions.Small},
		{name: "memes", variant: functions.Rust},
		{name: "memes", variant: functions.Reactor}, // Go: ~2 s of wasm-objdump
		{file: "testdata/scan_clean.wasm"},
	}
	for _, c := range cases {
		label := c.name + "/" + c.variant
		if c.file != "" {
			label = filepath.Base(c.file)
		}
		t.Run(label, func(t *testing.T) {
			var m []byte
			var err error
			if c.file != "" {
				m, err = os.ReadFile(c.file)
			} else {
				m, err = functions.Module(functions.FS(), c.name, c.variant)
			}
			if err != nil {
				t.Fatal(err)
			}
			f := filepath.Join(t.TempDir(), "m.wasm")
			if err := os.WriteFile(f, m, 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(objdump, "-d", f).Output()
			if err != nil {
				t.Fatal(err)
			}
			want := objdumpInstructions(out)
			s, err := scanModule(m)
			if err != nil || s.finding != "" {
				t.Fatalf("finding %q, error %v", s.finding, err)
			}
			if s.instructions != want || want == 0 {
				t.Fatalf("decoded %d instructions, wasm-objdump -d shows %d", s.instructions, want)
			}
			t.Logf("%d instructions, as wasm-objdump -d", want)
		})
	}
}

// objdumpInstructions counts the instructions in wasm-objdump -d's
// output: lines " 00002a: 41 00 | i32.const 0", leaving out the local
// declarations ("| local[1] type=i64") and the continuations of long
// encodings (no text after '|').
func objdumpInstructions(out []byte) int {
	n := 0
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		addr, rest, ok := strings.Cut(line, ": ")
		if !ok || !strings.HasPrefix(addr, " ") {
			continue
		}
		_, text, ok := strings.Cut(rest, "|")
		text = strings.TrimSpace(text)
		if ok && text != "" && !strings.HasPrefix(text, "local[") {
			n++
		}
	}
	return n
}

// The test modules (testdata/scan_*.wat, each saying what it holds): each
// instruction that changes a table or drops a segment, reported with its
// function and byte (both as wasm-objdump -d shows them); an imported or
// exported table and an imported global; a SIMD instruction, unknown; and
// modules whose immediates hold those instructions' bytes, or that only
// read a segment, with nothing to report.
func TestInstanceStateOutsideMemoryTestdata(t *testing.T) {
	cases := []struct {
		module       string
		want         string
		instructions int // decoded; 0: not checked
	}{
		{"scan_clean", "", 93},
		{"scan_memory_init", "", 7},
		{"scan_table_set", "table.set in function 2 at byte 0x39", 7},
		{"scan_table_fill", "table.fill in function 1 at byte 0x28", 5},
		{"scan_table_copy", "table.copy in function 0 at byte 0x2a", 7},
		{"scan_table_grow", "table.grow in function 3 at byte 0x40", 6},
		{"scan_table_init", "table.init in function 1 at byte 0x2e", 5},
		{"scan_elem_drop", "elem.drop in function 2 at byte 0x26", 3},
		{"scan_data_drop", "data.drop in function 1 at byte 0x34", 5},
		{"scan_import_table", `imported table "env" "tab"`, 0},
		{"scan_export_table", `exported table "tab"`, 0},
		{"scan_import_global", `imported global "env" "g"`, 0},
		{"scan_simd", "unknown instruction 0xfd 0x0c in function 1 at byte 0x1f", 2},
	}
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	defer rt.Close(ctx)
	for _, c := range cases {
		t.Run(c.module, func(t *testing.T) {
			m := module(t, c.module)
			// Each is a valid module (its imports left unresolved), so
			// what is reported is what a deploy would see.
			if _, err := rt.CompileModule(ctx, m); err != nil {
				t.Fatalf("wazero refuses it: %v", err)
			}
			s, err := scanModule(m)
			if err != nil {
				t.Fatal(err)
			}
			if s.finding != c.want {
				t.Errorf("finding %q, want %q", s.finding, c.want)
			}
			if c.instructions != 0 && s.instructions != c.instructions {
				t.Errorf("decoded %d instructions, want %d", s.instructions, c.instructions)
			}
		})
	}
}

// scanFuncModule is a module of one function of type [] -> [], with the
// given body (locals and instructions, its final end included), a memory,
// a table and a data count of 1.
func scanFuncModule(body ...byte) []byte {
	return shapeModule(
		sec(1, u32(1), []byte{0x60, 0, 0}),
		sec(3, u32(1), u32(0)),
		sec(4, u32(1), []byte{0x70, 0}, u32(1)),
		sec(5, u32(1), []byte{0}, u32(1)),
		sec(12, u32(1)),
		sec(10, u32(1), u32(uint32(len(body))), body),
	)
}

// Bodies of instructions the decoder does not know, or that reach past
// Wasm 2.0 through an immediate, are reported at the instruction's byte
// (the first in each body).
func TestInstanceStateOutsideMemoryUnknown(t *testing.T) {
	cases := []struct {
		name string
		body []byte
		want string
		at   int // the instruction's offset in body
	}{
		{"try (exceptions)", []byte{0, 0x06, 0x40, 0x0b, 0x0b}, "unknown instruction 0x06", 1},
		{"return_call (tail calls)", []byte{0, 0x12, 0, 0x0b}, "unknown instruction 0x12", 1},
		{"call_ref (function references)", []byte{0, 0x14, 0, 0x0b}, "unknown instruction 0x14", 1},
		{"atomic.fence (threads)", []byte{0, 0xfe, 0x03, 0, 0x0b}, "unknown instruction 0xfe 0x03", 1},
		{"struct.new (GC)", []byte{0, 0xfb, 0x00, 0, 0x0b}, "unknown instruction 0xfb 0x00", 1},
		{"a SIMD subopcode of two bytes", []byte{0, 0xfd, 0x80, 0x02, 0x0b}, "unknown instruction 0xfd 0x100", 1},
		{"0xfc 18", []byte{0, 0xfc, 18, 0x0b}, "unknown instruction 0xfc 0x12", 1},
		{"a load from memory 1 (multi-memory)", []byte{0, 0x41, 0, 0x28, 0x42, 1, 0, 0x1a, 0x0b}, "unknown instruction 0x28", 3},
		{"memory.size of memory 1", []byte{0, 0x3f, 1, 0x1a, 0x0b}, "unknown instruction 0x3f", 1},
		{"memory.fill of memory 1", []byte{0, 0x41, 0, 0x41, 0, 0x41, 0, 0xfc, 11, 1, 0x0b}, "unknown instruction 0xfc 0x0b with a memory index", 7},
		{"a block of a GC reference type", []byte{0, 0x02, 0x64, 0x70, 0x0b, 0x0b}, "unknown instruction 0x02", 1},
		{"ref.null of a heap type index", []byte{0, 0xd0, 0x00, 0x1a, 0x0b}, "unknown instruction 0xd0", 1},
		{"a local of a GC type", []byte{1, 1, 0x63, 0x70, 0x0b}, "unknown value type 0x63 of a local", 2},
		{"0x27, unassigned", []byte{0, 0x27, 0x0b}, "unknown instruction 0x27", 1},
		{"0xc5, past the numeric instructions", []byte{0, 0xc5, 0x0b}, "unknown instruction 0xc5", 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := scanFuncModule(c.body...)
			got, err := instanceStateOutsideMemory(m)
			if err != nil {
				t.Fatal(err)
			}
			at := len(m) - len(c.body) + c.at
			if want := fmt.Sprintf("%s in function 0 at byte %#x", c.want, at); got != want {
				t.Errorf("got %q, want %q", got, want)
			}
		})
	}
}

// Bytes that are not a module are an error, wherever they are, and never
// a panic; and a body must end with its final end exactly at its size.
func TestInstanceStateOutsideMemoryMalformed(t *testing.T) {
	body := func(b ...byte) []byte { return scanFuncModule(b...) }
	cases := []struct {
		name   string
		module []byte
		want   string
	}{
		{"empty", nil, "not a version 1 wasm binary"},
		{"version 2", []byte("\x00asm\x02\x00\x00\x00"), "not a version 1"},
		{"a section past the end", shapeModule([]byte{1}, u32(100), []byte{0}), "declares 100 bytes"},
		{"a section size of 6 bytes", shapeModule([]byte{1, 0x80, 0x80, 0x80, 0x80, 0x80, 0}), "bad u32"},
		{"an unknown section", shapeModule(sec(14)), "unknown section 14"},
		{"sections out of order", shapeModule(sec(3, u32(0)), sec(1, u32(0))), "out of order"},
		{"a section twice", shapeModule(sec(3, u32(0)), sec(3, u32(0))), "out of order"},
		{"a custom section's name past its end", shapeModule(sec(0, u32(5), []byte("ab"))), "5 bytes at byte"},
		{"an import kind 5", shapeModule(sec(2, u32(1), name("m"), name("n"), []byte{5})), "import kind 0x5"},
		{"an import name past its section", shapeModule(sec(2, u32(1), u32(9), []byte("m"))), "9 bytes at byte"},
		{"memory limits flags 8", shapeModule(sec(2, u32(1), name("m"), name("n"), []byte{2, 8, 0})), "limits flags 0x8"},
		{"an export kind 5", shapeModule(sec(7, u32(1), name("e"), []byte{5, 0})), "export kind 0x5"},
		{"bytes left in the import section", shapeModule(sec(2, u32(0), []byte{0})), "1 bytes left over"},
		{"a code section of 2 bodies for 1 function", shapeModule(sec(1, u32(1), []byte{0x60, 0, 0}), sec(3, u32(1), u32(0)), sec(10, u32(2), u32(2), []byte{0, 0x0b}, u32(2), []byte{0, 0x0b})), "2 function bodies for 1 functions"},
		{"functions and no code", shapeModule(sec(1, u32(1), []byte{0x60, 0, 0}), sec(3, u32(1), u32(0))), "no code section"},
		{"a body past its section", shapeModule(sec(1, u32(1), []byte{0x60, 0, 0}), sec(3, u32(1), u32(0)), sec(10, u32(1), u32(9), []byte{0, 0x0b})), "9 bytes at byte"},
		{"bytes left after the bodies", shapeModule(sec(1, u32(1), []byte{0x60, 0, 0}), sec(3, u32(1), u32(0)), sec(10, u32(1), u32(2), []byte{0, 0x0b, 0x01})), "1 bytes left over"},
		{"an empty body", body(), "unexpected end"},
		{"a body without its end", body(0, 0x41, 1, 0x1a), "ends inside 1 blocks"},
		{"a block without its end", body(0, 0x02, 0x40, 0x01, 0x0b), "ends inside 1 blocks"},
		{"an end too many", body(0, 0x0b, 0x0b), "1 bytes before its size"},
		{"an else outside an if", body(0, 0x02, 0x40, 0x05, 0x0b, 0x0b), "else outside an if"},
		{"two elses", body(0, 0x41, 0, 0x04, 0x40, 0x05, 0x05, 0x0b, 0x0b), "else outside an if"},
		{"50,001 locals", body(2, 0xd0, 0x86, 0x03, 0x7f, 1, 0x7e, 0x0b), "more than 50000 locals"},
		{"2^32-1 locals", body(1, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x7f, 0x0b), "more than 50000 locals"},
		{"an i32.const of 6 bytes", body(0, 0x41, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00, 0x1a, 0x0b), "bad s32"},
		{"an i32.const with bits past the 32nd", body(0, 0x41, 0x80, 0x80, 0x80, 0x80, 0x10, 0x1a, 0x0b), "bad s32"},
		{"an i64.const of 11 bytes", body(0, 0x42, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00, 0x1a, 0x0b), "bad s64"},
		{"an i64.const cut off", body(0, 0x42, 0x80), "bad s64"},
		{"a block type of 6 bytes", body(0, 0x02, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00, 0x0b, 0x0b), "bad s33"},
		{"a local.get index of 6 bytes", body(0, 0x20, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00, 0x0b), "bad u32"},
		{"a br_table cut off", body(0, 0x41, 0, 0x0e, 0x05, 0, 0), "unexpected end"},
		{"a br_table of 2^32-1 labels", body(0, 0x41, 0, 0x0e, 0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0x0b), "unexpected end"},
		{"an f64.const cut off", body(0, 0x44, 0, 0, 0, 0x0b), "8 bytes at byte"},
		{"a memarg cut off", body(0, 0x41, 0, 0x28, 0x02), "unexpected end"},
		{"a 0xfc subopcode of 6 bytes", body(0, 0xfc, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00, 0x0b), "bad u32"},
		{"a memory.copy cut off", body(0, 0xfc, 10, 0), "unexpected end"},
		{"a SIMD subopcode of 6 bytes", body(0, 0xfd, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00, 0x0b), "bad u32"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := instanceStateOutsideMemory(c.module)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("finding %q, error %v; want an error with %q", got, err, c.want)
			}
			if got != "" {
				t.Errorf("finding %q with the error", got)
			}
			// No prefix of it may panic (the test fails if one does).
			for n := range c.module {
				instanceStateOutsideMemory(c.module[:n])
			}
		})
	}
}

// The first finding ends the scan: the sections after it are not read,
// so a malformed or misordered one there is not an error (the doc comment
// of instanceStateOutsideMemory says so), while one before it is.
func TestInstanceStateOutsideMemoryStopsAtFinding(t *testing.T) {
	table := sec(2, u32(1), name("m"), name("t"), []byte{1, 0x70, 0, 0}) // an imported table
	cases := []struct {
		name    string
		module  []byte
		finding string
		err     string
	}{
		{"then sections out of order", shapeModule(table, sec(3, u32(0)), sec(1, u32(0))), `imported table "m" "t"`, ""},
		{"then an unknown section", shapeModule(table, sec(14)), `imported table "m" "t"`, ""},
		{"then a section past the end", shapeModule(table, []byte{1}, u32(100), []byte{0}), `imported table "m" "t"`, ""},
		{"after an unknown section", shapeModule(sec(14), table), "", "unknown section 14 at byte 0x8"},
		{"after a section out of order", shapeModule(sec(3, u32(0)), table), "", "section 2 at byte 0xb is out of order"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := instanceStateOutsideMemory(c.module)
			if got != c.finding || (err == nil) != (c.err == "") || err != nil && !strings.Contains(err.Error(), c.err) {
				t.Fatalf("finding %q, error %v; want %q, error %q", got, err, c.finding, c.err)
			}
		})
	}
}

// readSigned takes what the specification's sN encodings allow, and
// nothing else.
func TestReadSigned(t *testing.T) {
	cases := []struct {
		in   []byte
		bits int
		want int64
		ok   bool
	}{
		{[]byte{0x26}, 32, 38, true},
		{[]byte{0x7f}, 32, -1, true},
		{[]byte{0xfc, 0x0f}, 64, 2044, true},
		{[]byte{0x80, 0x7f}, 32, -128, true},
		{[]byte{0xff, 0xff, 0xff, 0xff, 0x07}, 32, 1<<31 - 1, true},
		{[]byte{0x80, 0x80, 0x80, 0x80, 0x78}, 32, -1 << 31, true},
		{[]byte{0x80, 0x80, 0x80, 0x80, 0x08}, 32, 0, false}, // 2^31: too large
		{[]byte{0x80, 0x80, 0x80, 0x80, 0x70}, 32, 0, false}, // bits that do not extend the sign
		{[]byte{0xff, 0xff, 0xff, 0xff, 0x0f}, 33, 1<<32 - 1, true},
		{[]byte{0x80, 0x80, 0x80, 0x80, 0x70}, 33, -1 << 32, true},
		{[]byte{0x80, 0x80, 0x80, 0x80, 0x10}, 33, 0, false},
		{[]byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x00}, 33, 0, false},
		{[]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00}, 64, 1<<63 - 1, true},
		{[]byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x7f}, 64, -1 << 63, true},
		{[]byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}, 64, 0, false},
		{[]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7e}, 64, 0, false},
		{[]byte{0x80}, 64, 0, false},
		{nil, 32, 0, false},
	}
	for _, c := range cases {
		v, next, err := readSigned(c.in, 0, c.bits)
		if (err == nil) != c.ok || c.ok && (v != c.want || next != len(c.in)) {
			t.Errorf("s%d % x: %d, %d, %v; want %d, ok %v", c.bits, c.in, v, next, err, c.want, c.ok)
		}
	}
}

// maxScanFuzzInput bounds the inputs that are also compiled by wazero
// (fuzz_test.go says why inputs are kept small).
const maxScanFuzzInput = 1 << 10

// FuzzInstanceStateOutsideMemory checks that no input makes the decoder
// panic, that it answers the same twice, and that a module wazero
// compiles is never an error to it (it decodes all that wazero does).
func FuzzInstanceStateOutsideMemory(f *testing.F) {
	seeds, err := filepath.Glob("testdata/*.wasm")
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add(scanFuncModule(0, 0x41, 0xfc, 0x0f, 0x1a, 0x0b))
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	f.Cleanup(func() { rt.Close(ctx) })
	f.Fuzz(func(t *testing.T, in []byte) {
		got, err := instanceStateOutsideMemory(in)
		again, err2 := instanceStateOutsideMemory(in)
		if got != again || (err == nil) != (err2 == nil) || err != nil && err.Error() != err2.Error() {
			t.Fatalf("%q, %v; then %q, %v", got, err, again, err2)
		}
		if err != nil && got != "" {
			t.Fatalf("finding %q with error %v", got, err)
		}
		// wazero is asked only about modules the platform would give it
		// (modcheck.go) and small enough to fuzz quickly.
		if len(in) > maxScanFuzzInput || checkModuleShape(in) != nil {
			return
		}
		cm, cerr := rt.CompileModule(ctx, in)
		if cerr != nil {
			return
		}
		defer cm.Close(ctx)
		if err != nil {
			t.Fatalf("wazero compiles it; the decoder: %v", err)
		}
	})
}

// BenchmarkCodeScan decodes the Go memes reactor build (2.4 MB, most of
// it code), as a snapshot-mode deploy would.
func BenchmarkCodeScan(b *testing.B) {
	m, err := functions.Module(functions.FS(), "memes", functions.Reactor)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(m)))
	b.ReportAllocs()
	var s moduleScan
	for b.Loop() {
		if s, err = scanModule(m); err != nil || s.finding != "" {
			b.Fatalf("finding %q, error %v", s.finding, err)
		}
	}
	b.ReportMetric(float64(s.instructions), "instructions")
}
