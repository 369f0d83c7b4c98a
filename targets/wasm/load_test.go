package wasm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/academemes/harness/functions"
	"github.com/academemes/harness/targets"
)

func TestLoadFS(t *testing.T) {
	file := func(b []byte) *fstest.MapFile { return &fstest.MapFile{Data: b} }
	text := func(s string) *fstest.MapFile { return file([]byte(s)) }
	echo, exit3 := file(module(t, "echo")), file(module(t, "exit3"))
	for _, c := range []struct {
		name    string
		fsys    fstest.MapFS
		want    map[string]targets.Mode // deployed functions and their modes
		sha     map[string][]byte       // the module each must run, where it matters
		wantErr string                  // "" for none
		log     string                  // a log line must contain this
		noLog   string                  // and none may contain this
	}{
		{"data named after the function is not a config",
			fstest.MapFS{"echo/echo.wasm": echo, "echo/echo.json": text(`[{"id":1,"caption":"a meme"}]`)},
			map[string]targets.Mode{"echo": targets.Cold}, nil, "", "", "skipping"},
		{"purify.json configures",
			fstest.MapFS{"echo/echo.wasm": echo, "echo/purify.json": text(`{"mode":"warm"}`)},
			map[string]targets.Mode{"echo": targets.Warm}, nil, "", "", "skipping"},
		{"warm serves the reactor build",
			fstest.MapFS{"echo/echo.wasm": exit3, "echo/echo.reactor.wasm": echo, "echo/purify.json": text(`{"mode":"warm"}`)},
			map[string]targets.Mode{"echo": targets.Warm}, map[string][]byte{"echo": echo.Data}, "", "", "skipping"},
		{"cold serves the command build",
			fstest.MapFS{"echo/echo.wasm": exit3, "echo/echo.reactor.wasm": echo},
			map[string]targets.Mode{"echo": targets.Cold}, map[string][]byte{"echo": exit3.Data}, "", "", "skipping"},
		{"every variant but the reactor, with the config",
			fstest.MapFS{"echo/echo.wasm": echo, "echo/echo.reactor.wasm": echo, "echo/echo-small.wasm": echo, "echo/echo.fast.wasm": echo, "echo/purify.json": text(`{"mode":"prewarmed"}`)},
			map[string]targets.Mode{"echo": targets.Prewarmed, "echo-small": targets.Prewarmed, "echo-fast": targets.Prewarmed}, nil, "", "", "skipping"},
		{"a bad config skips the function and its variants",
			fstest.MapFS{"echo/echo.wasm": echo, "echo/echo-small.wasm": echo, "echo/purify.json": text(`{"mode":"hot"}`), "other/other.wasm": echo},
			map[string]targets.Mode{"other": targets.Cold}, nil, `echo: function config: option mode: want cold, prewarmed, snapshot or warm, got "hot"`, "skipping echo and its variants", ""},
		{"a config where configs were read once is named in the log",
			fstest.MapFS{"echo/echo.wasm": echo, "echo/echo.json": text(`{"mode":"warm"}`)},
			map[string]targets.Mode{"echo": targets.Cold}, nil, "", "echo/echo.json looks like a function config, which is read from echo/purify.json now", ""},
		{"a broken module skips only itself",
			fstest.MapFS{"echo/echo.wasm": echo, "echo/echo-small.wasm": text("not a module"), "broken/broken.wasm": text("nope")},
			map[string]targets.Mode{"echo": targets.Cold}, nil, "broken", "skipping echo-small", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, _, lb := newTestPlatform(t, Options{})
			err := p.LoadFS(context.Background(), c.fsys)
			if (err == nil) != (c.wantErr == "") || err != nil && !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("LoadFS = %v, want an error containing %q", err, c.wantErr)
			}
			got := map[string]targets.Mode{}
			for _, f := range p.Functions() {
				got[f.Name] = f.Config.Mode
				if want, ok := c.sha[f.Name]; ok {
					if sum := sha256.Sum256(want); f.SHA256 != hex.EncodeToString(sum[:]) {
						t.Errorf("%s runs the wrong module", f.Name)
					}
				}
			}
			if !maps.Equal(got, c.want) {
				t.Errorf("deployed %v, want %v", got, c.want)
			}
			if c.log != "" && !lb.contains(c.log) {
				t.Errorf("no log line contains %q: %q", c.log, lb.lines)
			}
			if c.noLog != "" && lb.contains(c.noLog) {
				t.Errorf("a log line contains %q: %q", c.noLog, lb.lines)
			}
		})
	}
}

// TestLoadFSBuiltIn loads the functions built into the harness: every
// function and every variant a wasm target can name must load.
func TestLoadFSBuiltIn(t *testing.T) {
	if testing.Short() {
		t.Skip("loads every Go build (-short)")
	}
	// The interpreter: loading needs no speed.
	p, _, lb := newTestPlatform(t, Options{Interpreter: true})
	fsys := functions.FS()
	if err := p.LoadFS(context.Background(), fsys); err != nil {
		t.Errorf("LoadFS: %v", err)
	}
	var want []string
	names, err := functions.Names(fsys)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		want = append(want, name)
		variants, err := functions.Variants(fsys, name)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range variants {
			if v != functions.Reactor {
				want = append(want, name+"-"+v)
			}
		}
	}
	var got []string
	for _, f := range p.Functions() {
		got = append(got, f.Name)
	}
	slices.Sort(want)
	if !slices.Equal(got, want) || len(want) < len(names)+2 {
		t.Errorf("deployed %v, want %v", got, want)
	}
	if lb.contains("skipping") || lb.contains("config") {
		t.Errorf("log: %q", lb.lines)
	}
}
