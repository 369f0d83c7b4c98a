// Package functions holds the functions the harness serves: per function a
// directory with its sources (Go, and the Node.js build's index.js) and its
// built Wasm modules, all embedded in the harness binary so that a machine
// without the toolchains still runs them. The ABI a function follows is in
// README.md.
//
// Rebuild the modules with build.sh (or functions.mk); the built .wasm files
// are committed.
package functions

import (
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"sort"
	"strings"
)

// The directories are named, not the files, so that whatever a build or
// another language adds to a function's directory (index.js, package.json)
// is embedded too. Files starting with '.' or '_' are left out by go:embed.
//
//go:embed README.md memes fibonacci factorial prime exponential
var files embed.FS

// ConfigFile is the name, in every function's directory, of the platform's
// configuration of that function (JSON; see README.md). The name is the
// platform's, not the function's, so that a function's own data, which is
// often named after it (memes/memes.json), is never read as configuration;
// no function may use it for anything else.
const ConfigFile = "purify.json"

// Reactor is the variant that holds a function's warm-mode build (a WASI
// reactor exporting purify_handle). It is not a variant of its own: a
// platform serves it for the function's Go build when the mode is warm.
const Reactor = "reactor"

// Variants of the builds this project makes (functions/README.md): the
// files <name>-<variant>.wasm beside the Go build <name>.wasm.
const (
	// Small is the build without a language runtime: freestanding C.
	Small = "small"
	// Rust is the Rust build (std only, wasm32-wasi), the original study's
	// language.
	Rust = "rust"
)

// Language names the language of a build: the Go builds (variant "" and
// Reactor) "Go", Small "C", Rust "Rust"; "" for a variant of a
// functions tree that this package does not know.
func Language(variant string) string {
	switch variant {
	case "", Reactor:
		return "Go"
	case Small:
		return "C"
	case Rust:
		return "Rust"
	}
	return ""
}

// FS returns the embedded tree: one directory per function, as in the
// source tree.
func FS() fs.FS { return files }

// Open returns the functions tree at dir, or the embedded one when dir is "".
func Open(dir string) fs.FS {
	if dir == "" {
		return files
	}
	return os.DirFS(dir)
}

// Names lists the function directories of fsys (directories holding a
// module named after them, <name>/<name>.wasm), sorted.
func Names(fsys fs.FS) ([]string, error) {
	ents, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("list functions: %w", err)
	}
	var names []string
	for _, e := range ents {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") || e.Name() == "internal" {
			continue
		}
		if _, err := fs.Stat(fsys, path.Join(e.Name(), e.Name()+".wasm")); err == nil {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names, nil
}

// Module reads the built module of function name from fsys. variant ""
// is the Go command build <name>.wasm; other variants name the file
// <name>.<variant>.wasm or <name>-<variant>.wasm (Reactor, "small"; see
// Variants).
func Module(fsys fs.FS, name, variant string) ([]byte, error) {
	if !ValidName(name) {
		return nil, fmt.Errorf("function name %q: use letters, digits, '-' and '_'", name)
	}
	candidates := []string{path.Join(name, name+".wasm")}
	if variant != "" {
		candidates = []string{path.Join(name, name+"."+variant+".wasm"), path.Join(name, name+"-"+variant+".wasm")}
	}
	var firstErr error
	for _, c := range candidates {
		b, err := fs.ReadFile(fsys, c)
		if err == nil {
			return b, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return nil, fmt.Errorf("function %q variant %q: %w", name, variant, firstErr)
}

// Variants lists the variants of function name in fsys (the builds beside
// <name>/<name>.wasm, named <name>.<variant>.wasm or <name>-<variant>.wasm,
// Reactor among them), sorted: each is a variant Module reads.
func Variants(fsys fs.FS, name string) ([]string, error) {
	if !ValidName(name) {
		return nil, fmt.Errorf("function name %q: use letters, digits, '-' and '_'", name)
	}
	ents, err := fs.ReadDir(fsys, name)
	if err != nil {
		return nil, fmt.Errorf("function %q: %w", name, err)
	}
	var variants []string
	for _, e := range ents {
		base, ok := strings.CutSuffix(e.Name(), ".wasm")
		if !ok || e.IsDir() {
			continue
		}
		for _, sep := range []string{".", "-"} {
			if v, ok := strings.CutPrefix(base, name+sep); ok && ValidName(v) && !slices.Contains(variants, v) {
				variants = append(variants, v)
			}
		}
	}
	sort.Strings(variants)
	return variants, nil
}

// ValidName reports whether s can name a function: 1 to 64 letters,
// digits, '-' and '_'. Names become directory names, URL path segments and
// platform names, so they must hold nothing else.
func ValidName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
