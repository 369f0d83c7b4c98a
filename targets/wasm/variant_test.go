package wasm

import (
	"testing"

	"github.com/academemes/harness/targets"
)

// TestInfoNamesBuild: a wasm target names the build it deploys and its
// language, which run.json records for every target.
func TestInfoNamesBuild(t *testing.T) {
	for _, tc := range []struct {
		name, variant   string
		mode            targets.Mode
		build, language string
	}{
		{"go cold", "", targets.Cold, "go", "Go"},
		{"go prewarmed", "", targets.Prewarmed, "go", "Go"},
		{"go warm serves the reactor", "", targets.Warm, "reactor", "Go"},
		{"small", "small", targets.Cold, "small", "C"},
		{"small warm", "small", targets.Warm, "small", "C"},
		{"rust cold", "rust", targets.Cold, "rust", "Rust"},
		{"rust warm", "rust", targets.Warm, "rust", "Rust"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := map[string]any{}
			if tc.variant != "" {
				opts["variant"] = tc.variant
			}
			tg, err := targets.New(targets.Spec{Name: "w", Kind: "wasm", Function: "fibonacci", Mode: tc.mode, Options: opts, Logf: t.Logf})
			if err != nil {
				t.Fatal(err)
			}
			info := tg.Info()
			if info.Variant != tc.build || info.Language != tc.language {
				t.Errorf("Info() = %+v, want variant %q language %q", info, tc.build, tc.language)
			}
			if _, err := tg.(*Target).module(); err != nil {
				t.Errorf("the build it names is not there: %v", err)
			}
		})
	}
}
