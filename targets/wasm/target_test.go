package wasm

import (
	"context"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/academemes/harness/targets"
)

// startTarget starts a wasm target through the registry, as the runner does.
func startTarget(t *testing.T, function string, mode targets.Mode, opts map[string]any) targets.Target {
	t.Helper()
	tg, err := targets.New(targets.Spec{Name: "w", Kind: "wasm", Function: function, Mode: mode, Options: opts, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := tg.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := tg.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return tg
}

func TestTargetMemesColdEndToEnd(t *testing.T) {
	tg := startTarget(t, "memes", targets.Cold, nil)
	if got := tg.URL().Path; got != "/fn/memes" {
		t.Fatalf("URL path = %q, want /fn/memes", got)
	}
	cases := []struct {
		name, body string
		status     int
		want       string
	}{
		{"known id", `{"id": 3}`, 200, `{"id":3,"caption":"The deadline is in six hours / Perfect time to reformat every figure"`},
		{"unknown id", `{"id": 999}`, 404, `{"error":"no meme with id 999"}` + "\n"},
		{"bad input", `{"id": "x"}`, 400, `{"error":"input must be JSON like {\"id\": 7} with id an integer"}` + "\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := do(t, http.MethodPost, tg.URL().String(), c.body, "Content-Type", "application/json")
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d; body %s", resp.StatusCode, c.status, body)
			}
			if !strings.HasPrefix(body, c.want) {
				t.Errorf("body = %.200q, want prefix %q", body, c.want)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			if resp.Header.Get(targets.HeaderColdStart) != "1" || resp.Header.Get(targets.HeaderStartNs) == "" {
				t.Errorf("cold mode: headers %s=%q %s=%q", targets.HeaderColdStart, resp.Header.Get(targets.HeaderColdStart),
					targets.HeaderStartNs, resp.Header.Get(targets.HeaderStartNs))
			}
		})
	}
}

// TestTargetReportAfterStop: the runner reports a target after Stop, so
// the counters must outlive the platform.
func TestTargetReportAfterStop(t *testing.T) {
	tg, err := targets.New(targets.Spec{Name: "w", Kind: "wasm", Function: "memes", Mode: targets.Cold, Options: map[string]any{"variant": "small"}, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := tg.Start(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		resp, _ := do(t, http.MethodPost, tg.URL().String(), fmt.Sprintf(`{"id": %d}`, i+1))
		if resp.StatusCode != 200 {
			t.Fatalf("request %d: %d", i, resp.StatusCode)
		}
	}
	if err := tg.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	rep := tg.(targets.Reporter).Report()
	if rep["requests"] != int64(3) || rep["cold_starts"] != int64(3) || rep["module_bytes"] == nil {
		t.Errorf("report after Stop = %v; want 3 requests, 3 cold starts and the module's size", rep)
	}
}

// TestTargetCompilationCacheOnDisk: compiled code goes to the user's cache
// directory unless the scenario says cache_dir: memory; a default that
// cannot be used falls back to memory instead of failing the target.
func TestTargetCompilationCacheOnDisk(t *testing.T) {
	start := func(t *testing.T, opts map[string]any) {
		t.Helper()
		opts["variant"] = "small"
		tg, err := targets.New(targets.Spec{Name: "w", Kind: "wasm", Function: "memes", Mode: targets.Cold, Options: opts, Logf: t.Logf})
		if err != nil {
			t.Fatal(err)
		}
		if err := tg.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := tg.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	cached := func(root string) int {
		n := 0
		filepath.WalkDir(root, func(_ string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				n++
			}
			return nil
		})
		return n
	}
	t.Run("default", func(t *testing.T) {
		home := t.TempDir()
		t.Setenv("XDG_CACHE_HOME", home)
		start(t, map[string]any{})
		if cached(filepath.Join(home, "academemes-harness", "wazero")) == 0 {
			t.Error("no compiled code in the user's cache directory")
		}
	})
	t.Run("memory", func(t *testing.T) {
		home := t.TempDir()
		t.Setenv("XDG_CACHE_HOME", home)
		start(t, map[string]any{"cache_dir": "memory"})
		if n := cached(home); n != 0 {
			t.Errorf("cache_dir: memory wrote %d files", n)
		}
	})
	t.Run("unusable default", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "not-a-dir")
		os.WriteFile(file, nil, 0o644)
		t.Setenv("XDG_CACHE_HOME", file)
		start(t, map[string]any{})
	})
}

// TestTargetSnapshot: a scenario's wasm target in snapshot mode serves the
// Go memes reactor from its snapshot, every response a start, and its
// report (run.json) says how instances were restored.
func TestTargetSnapshot(t *testing.T) {
	tg := startTarget(t, "memes", targets.Snapshot, map[string]any{"restore": "segments", "cache_dir": "memory"})
	if info := tg.Info(); info.Variant != "reactor" || info.Mode != targets.Snapshot {
		t.Errorf("info = %+v, want the reactor build in snapshot mode", info)
	}
	for i := range 3 {
		resp, body := do(t, http.MethodPost, tg.URL().String(), `{"id": 3}`, "Content-Type", "application/json")
		if resp.StatusCode != 200 || !strings.HasPrefix(body, `{"id":3,"caption":"The deadline is in six hours`) {
			t.Fatalf("request %d: %d %.100q", i, resp.StatusCode, body)
		}
		if resp.Header.Get(targets.HeaderColdStart) != "1" || resp.Header.Get(targets.HeaderStartNs) == "" {
			t.Errorf("request %d: %s=%q %s=%q, want a start", i, targets.HeaderColdStart, resp.Header.Get(targets.HeaderColdStart),
				targets.HeaderStartNs, resp.Header.Get(targets.HeaderStartNs))
		}
	}
	rep := tg.(targets.Reporter).Report()
	s, ok := rep["snapshot"].(*SnapshotInfo)
	if !ok || s.Restore != RestoreSegments || !s.Initialized || s.Globals == 0 {
		t.Fatalf("report snapshot = %#v, want restore segments after _initialize", rep["snapshot"])
	}
	if _, err := targets.New(targets.Spec{Name: "w", Kind: "wasm", Function: "memes", Mode: targets.Cold, Options: map[string]any{"restore": "cow"}}); err == nil || !strings.Contains(err.Error(), "only mode snapshot") {
		t.Errorf("restore in cold mode: %v, want refused", err)
	}
}
