package wasm

import (
	"testing"
	"time"

	"github.com/academemes/harness/targets"
)

func TestParseOptions(t *testing.T) {
	tests := []struct {
		name    string
		in      map[string]any
		check   func(o options) bool
		wantErr string
	}{
		{"nothing: the defaults apply later", nil, func(o options) bool { return o.Config == FunctionConfig{Mode: targets.Cold} && o.Remote == nil }, ""},
		{"every option", map[string]any{"variant": "small", "remote": "http://127.0.0.1:8088/", "token": "t", "impure": true,
			"cache_bytes": "1m", "memory_pages": 16, "timeout": "2s", "concurrency": 2, "pool": 3, "idle_timeout": "-1s",
			"no_interrupt": true, "cache_dir": "memory"},
			func(o options) bool {
				c := o.Config
				return o.Variant == "small" && o.Remote.String() == "http://127.0.0.1:8088" && o.Token == "t" && c.Impure &&
					c.CacheBytes == 1<<20 && c.MemoryPages == 16 && c.Timeout == Duration(2*time.Second) && c.Concurrency == 2 &&
					c.Pool == 3 && c.IdleTimeout == Duration(-time.Second) && c.NoInterrupt && o.CacheDir == "memory"
			}, ""},
		{"a word for a count", map[string]any{"concurrency": "lots"}, nil, `option concurrency: want a whole number of at least 1, got "lots"`},
		{"a bare number for a duration", map[string]any{"timeout": 5}, nil, "option timeout: want a duration like 30s, got 5"},
		{"too much memory", map[string]any{"memory_pages": 65537}, nil, "option memory_pages: want a whole number from 1 to 65536, got 65537"},
		{"restore outside snapshot mode", map[string]any{"restore": "cow"}, nil, "option restore: only mode snapshot restores from a snapshot (mode is cold)"},
		{"a restore that is not one", map[string]any{"restore": "fork"}, nil, `option restore: want one of reset, cow, segments, got "fork"`},
		{"a cache of an impure function", map[string]any{"cache": true, "impure": true}, nil, "option cache: only pure functions can be cached (impure is set)"},
		{"every problem, in key order", map[string]any{"pool": 0, "concurrency": -1, "remote": "nowhere"}, nil,
			"option concurrency: want a whole number of at least 1, got -1\n" +
				"option pool: want a whole number of at least 1, got 0\n" +
				`option remote: want a URL like http://HOST:PORT, got "nowhere"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, err := parseOptions(tc.in, targets.Cold)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("parseOptions(%v) error = %v, want %q", tc.in, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(o) {
				t.Errorf("parseOptions(%v) = %+v", tc.in, o)
			}
		})
	}
}

// TestKindChecksAndNewAgree: the registry's Check and New refuse the same
// options.
func TestKindChecksAndNewAgree(t *testing.T) {
	k, ok := targets.Lookup("wasm")
	if !ok || k.Check == nil {
		t.Fatal("wasm kind without Check")
	}
	spec := targets.Spec{Name: "w", Kind: "wasm", Function: "memes", Options: map[string]any{"concurrency": "lots"}}
	if err := k.Check(spec); err == nil {
		t.Error("Check passed concurrency: lots")
	}
	if _, err := targets.New(spec); err == nil {
		t.Error("New passed concurrency: lots")
	}
	for _, key := range []string{"variant", "remote", "concurrency", "cache_dir", "idle_timeout"} {
		if k.Options[key] == "" {
			t.Errorf("option %s undocumented", key)
		}
	}
}
