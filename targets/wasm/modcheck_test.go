package wasm

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/academemes/harness/functions"
)

// shapeModule is a module header followed by sections.
func shapeModule(sections ...[]byte) []byte {
	return append([]byte("\x00asm\x01\x00\x00\x00"), bytesJoin(sections)...)
}

func bytesJoin(parts [][]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// oneFunc is a type, function and code section for one function whose
// body is locals (already encoded) followed by end.
func oneFunc(locals []byte) [][]byte {
	body := append(append([]byte{}, locals...), 0x0b)
	return [][]byte{
		sec(1, u32(1), []byte{0x60, 0, 0}),
		sec(3, u32(1), u32(0)),
		sec(10, u32(1), u32(uint32(len(body))), body),
	}
}

// Modules whose declared counts would make wazero's decoder allocate far
// beyond their size (found by FuzzDeploy and FuzzMergeDataSegments: the
// first two stalled the fuzzer and killed the process with "fatal error:
// runtime: out of memory") are refused before wazero reads them.
func TestCheckModuleShapeRefuses(t *testing.T) {
	cases := []struct {
		name   string
		module []byte
		want   string
	}{
		{"2^28 function bodies in 6 bytes", shapeModule(sec(10, u32(0x0fffff80), []byte{0, 0x0b})), "function bodies"},
		{"2^30 imports", shapeModule(sec(2, u32(1<<30), name("m"), name("f"), []byte{0, 0})), "imports"},
		{"2^32-1 locals", shapeModule(oneFunc(append(u32(1), append(u32(1<<32-1), 0x7f)...))...), "more than 50000 locals"},
		{"50,001 locals in two declarations", shapeModule(oneFunc(append(u32(2), append(append(u32(50000), 0x7f), append(u32(1), 0x7e)...)...))...), "more than 50000 locals"},
		{"2^31 parameters", shapeModule(sec(1, u32(1), []byte{0x60}, u32(1<<31), []byte{0x7f})), "value types"},
		{"an export name of 4 GB", shapeModule(sec(7, u32(1), u32(1<<32-2), []byte("x"))), "bytes of a name"},
		{"a data segment of 4 GB", shapeModule(sec(11, u32(1), u32(1), u32(1<<32-16), []byte("x"))), "bytes of a data segment"},
		{"2^30 element indices", shapeModule(sec(9, u32(1), u32(1), []byte{0}, u32(1<<30), u32(0))), "element indices"},
		{"a table of 2^27 elements", shapeModule(sec(4, u32(1), []byte{0x70, 0}, u32(1<<27))), "a table of 134217728 elements"},
		{"2^30 function names", shapeModule(sec(0, name("name"), sec(1, u32(1<<30), u32(0), name("f")))), "function names"},
		{"2^30 local names of one function", shapeModule(sec(0, name("name"), sec(2, u32(1), u32(0), u32(1<<30)))), "local names"},
		{"a section longer than the module", shapeModule([]byte{1}, u32(1000), []byte{0}), "declares 1000 bytes"},
		{"a function body longer than its section", shapeModule(sec(10, u32(1), u32(1<<20), []byte{0, 0x0b})), "bytes declared"},
	}
	p, err := NewPlatform(Options{Interpreter: true})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := checkModuleShape(tc.module)
			if !errors.Is(err, ErrBadModule) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("checkModuleShape = %v, want ErrBadModule containing %q", err, tc.want)
			}
			// Deploy refuses it the same way (before the check, the first
			// cases ended the process).
			if err := p.Deploy(context.Background(), "x", tc.module, FunctionConfig{}); !errors.Is(err, ErrBadModule) {
				t.Errorf("Deploy = %v, want ErrBadModule", err)
			}
		})
	}
}

// Every module the project serves or tests with passes the check, and so
// do the limits themselves.
func TestCheckModuleShapeAccepts(t *testing.T) {
	modules := map[string][]byte{
		"50,000 locals": shapeModule(oneFunc(append(u32(2), append(append(u32(49999), 0x7f), append(u32(1), 0x7e)...)...))...),
		"a table of 2^20 elements and names": shapeModule(sec(4, u32(1), []byte{0x70, 0}, u32(1<<20)),
			sec(0, name("name"), sec(1, u32(1), u32(0), name("f")), sec(2, u32(1), u32(0), u32(1), u32(0), name("x")))),
		"data segments of every kind": testModule{minPages: 1, dataCount: true, initSeg: 1, initLen: 1, segs: []testSeg{
			active(0, "a"), {passive: true, init: []byte("p")}, {memIdx: 0, off: 2, init: []byte("b")},
		}}.bytes(),
	}
	err := fs.WalkDir(functions.FS(), ".", func(path string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(path, ".wasm") {
			modules[path], err = fs.ReadFile(functions.FS(), path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	testdata, _ := filepath.Glob("testdata/*.wasm")
	for _, path := range testdata {
		if modules[path], err = os.ReadFile(path); err != nil {
			t.Fatal(err)
		}
	}
	if len(modules) < 15 {
		t.Fatalf("only %d modules found", len(modules))
	}
	for path, m := range modules {
		if err := checkModuleShape(m); err != nil {
			t.Errorf("%s: %v", path, err)
		}
	}
}
