package wasm

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/academemes/harness/targets"
	"github.com/academemes/harness/targets/option"
)

// Every number of a function's config has a range, checked at deploy (the
// JSON of X-Purify-Config and purify.json) and by --check (the scenario's
// options), each problem naming its key. Before, {"mode":"prewarmed",
// "pool":1000000000000} ended the process ("fatal error: runtime: out of
// memory" making the pool's channel) and {"mode":"warm",
// "concurrency":1000000000} was accepted and grew to 7.9 GB.
func TestConfigRanges(t *testing.T) {
	cases := []struct {
		name string
		json string
		key  string // the key the error names; "" for a config that is fine
		want string
	}{
		{"a pool of 10^12", `{"mode":"prewarmed","pool":1000000000000}`, "pool", "from 1 to 256"},
		{"a concurrency of 10^9", `{"mode":"warm","concurrency":1000000000}`, "concurrency", "from 1 to 1024"},
		{"memory past 4 GiB", `{"memory_pages":99999999}`, "memory_pages", "from 1 to 65536"},
		{"a negative timeout", `{"timeout":"-5s"}`, "timeout", "from 1ms to 10m0s"},
		{"a timeout of an hour", `{"timeout":"1h"}`, "timeout", "got 1h0m0s"},
		{"a nanosecond timeout", `{"timeout":"1ns"}`, "timeout", "from 1ms"},
		{"an idle timeout of a week", `{"idle_timeout":"168h"}`, "idle_timeout", "at most 24h0m0s"},
		{"a request bound of 1 GiB", `{"max_request_bytes":1073741824}`, "max_request_bytes", "from 1 to 67108864"},
		{"a negative response bound", `{"max_response_bytes":-1}`, "max_response_bytes", "got -1"},
		{"a cache of 2 GiB", `{"cache_bytes":2147483648}`, "cache_bytes", "from 1 to 1073741824"},
		{"the edges", `{"memory_pages":65536,"timeout":"10m","concurrency":1024,"pool":256,"idle_timeout":"24h","cache_bytes":1073741824,"max_request_bytes":67108864}`, "", ""},
		{"never idle", `{"idle_timeout":"-1s"}`, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseFunctionConfig([]byte(tc.json))
			if tc.key == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var oe *option.Error
			if !errors.As(err, &oe) || oe.Key != tc.key || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ParseFunctionConfig(%s) = %v; want an error for %s containing %q", tc.json, err, tc.key, tc.want)
			}
		})
	}
}

// A deploy refuses the same configs as the parser, so a caller of
// Platform.Deploy cannot skip the ranges.
func TestDeployRefusesOutOfRange(t *testing.T) {
	p, _, _ := newTestPlatform(t, Options{})
	for _, cfg := range []FunctionConfig{{Mode: targets.Prewarmed, Pool: 1e12}, {Mode: targets.Warm, Concurrency: 1e9}} {
		if err := p.Deploy(context.Background(), "echo", module(t, "echo"), cfg); err == nil {
			t.Errorf("Deploy(%+v) accepted", cfg)
		}
	}
}

// --check sees the same ranges: the kind's Check reports each bad option
// as an *option.Error naming its key (which the scenario validator turns
// into file:line:col), including bounds only the deploy check knows.
func TestCheckReportsRanges(t *testing.T) {
	k, _ := targets.Lookup("wasm")
	spec := targets.Spec{Name: "w", Kind: "wasm", Function: "memes", Options: map[string]any{
		"pool": 1000000000000, "concurrency": 1000000000, "memory_pages": 99999999, "timeout": "1h", "cache_bytes": "2g", "idle_timeout": "-5s",
	}}
	got := map[string]string{}
	for _, e := range option.Errors(k.Check(spec)) {
		var oe *option.Error
		if !errors.As(e, &oe) {
			t.Fatalf("an error without its key: %v", e)
		}
		got[oe.Key] = oe.Err.Error()
	}
	for _, key := range []string{"pool", "concurrency", "memory_pages", "timeout", "cache_bytes"} {
		if got[key] == "" {
			t.Errorf("%s: no error; got %v", key, got)
		}
	}
	if got["idle_timeout"] != "" {
		t.Errorf("idle_timeout -5s (never) refused: %s", got["idle_timeout"])
	}
}
