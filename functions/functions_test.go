package functions

import (
	"io/fs"
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
	for _, p := range []string{"README.md", "memes/memes.json", "memes/main.go", "memes/small/main.c"} {
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
		{"memes", FS(), "memes", []string{Reactor, "small"}, true},
		{"fibonacci", FS(), "fibonacci", []string{Reactor, "small"}, true},
		{"prime", FS(), "prime", []string{Reactor}, true},
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
