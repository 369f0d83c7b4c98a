package functions

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

func TestEmbedded(t *testing.T) {
	names, err := Names(FS())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"exponential", "factorial", "fibonacci", "memes", "prime"}
	if len(names) != len(want) {
		t.Fatalf("Names = %v, want %v", names, want)
	}
	for i := range want {
		if names[i] != want[i] {
			t.Fatalf("Names = %v, want %v", names, want)
		}
	}
	for _, c := range []struct {
		name, variant string
		ok            bool
	}{
		{"memes", "", true}, {"memes", "reactor", true}, {"memes", "small", true}, {"fibonacci", "small", true},
		{"prime", "small", false}, {"nope", "", false}, {"../etc", "", false},
		{"memes", "rust", true}, {"fibonacci", "rust", true}, {"factorial", "rust", true}, {"prime", "rust", true}, {"exponential", "rust", true},
	} {
		b, err := Module(FS(), c.name, c.variant)
		if (err == nil) != c.ok {
			t.Errorf("Module(%s, %q) error = %v, want ok=%v", c.name, c.variant, err, c.ok)
		}
		if err == nil && string(b[:4]) != "\x00asm" {
			t.Errorf("Module(%s, %q) is not Wasm", c.name, c.variant)
		}
	}
	// The directories are embedded whole: sources and data ride along.
	for _, p := range []string{"README.md", "memes/memes.json", "memes/main.go", "memes/small/main.c", "memes/rust/main.rs"} {
		if _, err := fs.Stat(FS(), p); err != nil {
			t.Errorf("%s not embedded: %v", p, err)
		}
	}
}

func TestValidName(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want bool
	}{
		{"a function", "memes", true},
		{"with a variant", "memes-small", true},
		{"upper case and underscore", "Fib_2", true},
		{"64 characters", strings.Repeat("x", 64), true},
		{"empty", "", false},
		{"65 characters", strings.Repeat("x", 65), false},
		{"a path", "../memes", false},
		{"a space", "a b", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ValidName(tc.in); got != tc.want {
				t.Errorf("ValidName(%q) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

func TestVariants(t *testing.T) {
	wasm := &fstest.MapFile{Data: []byte("\x00asm")}
	odd := fstest.MapFS{
		"f/f.wasm": wasm, "f/f.fast.wasm": wasm, "f/f-fast.wasm": wasm, "f/f-small.wasm": wasm,
		"f/f-a.b.wasm": wasm, "f/g-x.wasm": wasm, "f/f.json": &fstest.MapFile{}, "f/f-dir.wasm/x": wasm, "f/ff.wasm": wasm,
	}
	for _, c := range []struct {
		name string
		fsys fs.FS
		fn   string
		want []string
		ok   bool
	}{
		{"memes", FS(), "memes", []string{Reactor, "rust", "small"}, true},
		{"fibonacci", FS(), "fibonacci", []string{Reactor, "rust", "small"}, true},
		{"prime", FS(), "prime", []string{Reactor, "rust"}, true},
		{"only the function's own builds, each once", odd, "f", []string{"fast", "small"}, true},
		{"no such function", FS(), "nope", nil, false},
		{"bad name", FS(), "../etc", nil, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := Variants(c.fsys, c.fn)
			if (err == nil) != c.ok || !slices.Equal(got, c.want) {
				t.Fatalf("Variants = %v, %v; want %v, ok=%v", got, err, c.want, c.ok)
			}
			for _, v := range got {
				if _, err := Module(c.fsys, c.fn, v); err != nil {
					t.Errorf("variant %s listed but Module fails: %v", v, err)
				}
			}
		})
	}
}

func TestLanguage(t *testing.T) {
	for _, tc := range []struct{ variant, want string }{
		{"", "Go"}, {Reactor, "Go"}, {Small, "C"}, {Rust, "Rust"}, {"fast", ""},
	} {
		t.Run(cmp.Or(tc.variant, "go"), func(t *testing.T) {
			if got := Language(tc.variant); got != tc.want {
				t.Errorf("Language(%q) = %q, want %q", tc.variant, got, tc.want)
			}
		})
	}
	// Every build in the tree has a known language.
	names, _ := Names(FS())
	for _, n := range names {
		vs, _ := Variants(FS(), n)
		for _, v := range vs {
			if Language(v) == "" {
				t.Errorf("%s-%s: no language", n, v)
			}
		}
	}
}

// TestRustBuildsReproduce rebuilds the Rust modules with build.sh in a
// temporary copy of their sources and requires the committed bytes: the
// builds are reproducible, and the committed ones are built from the
// committed sources. It needs Debian's rustc 1.63 with the wasm32-wasi
// standard library, which the test suite does not install (the modules
// are committed so that nothing else needs it), and skips without it,
// under CI=true too.
func TestRustBuildsReproduce(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles five Rust modules (-short)")
	}
	rustc := "/usr/bin/rustc"
	out, err := exec.Command(rustc, "--version").Output()
	if err != nil || !strings.HasPrefix(string(out), "rustc 1.63.") {
		t.Skipf("no Debian rustc 1.63 at %s (%v %s): apt-get install rustc libstd-rust-dev-wasm32 to check the Rust builds", rustc, err, out)
	}
	sysroot, err := exec.Command(rustc, "--print", "sysroot").Output()
	if _, serr := os.Stat(filepath.Join(strings.TrimSpace(string(sysroot)), "lib/rustlib/wasm32-wasi")); err != nil || serr != nil {
		t.Skipf("%s has no wasm32-wasi standard library: apt-get install libstd-rust-dev-wasm32", rustc)
	}
	dir := t.TempDir()
	copyTree := func(from string) {
		err := filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			dst := filepath.Join(dir, p)
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return err
			}
			return os.WriteFile(dst, b, 0o755)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	names, err := Names(FS())
	if err != nil {
		t.Fatal(err)
	}
	copyTree("build.sh")
	copyTree("internal/rust")
	for _, n := range names {
		copyTree(filepath.Join(n, "rust"))
	}
	cmd := exec.Command("sh", filepath.Join(dir, "build.sh"))
	cmd.Env = append(os.Environ(), "BUILDS=rust", "RUSTC="+rustc)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build.sh: %v\n%s", err, out)
	}
	for _, n := range names {
		want, err := Module(FS(), n, Rust)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(dir, n, n+"-rust.wasm"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s-rust.wasm: rebuilt %d bytes sha256 %x, committed %d bytes sha256 %x", n, len(got), sha256.Sum256(got), len(want), sha256.Sum256(want))
		}
	}
}
