package wasm

import (
	"errors"
	"math"
	"net/url"

	"github.com/academemes/harness/targets"
	"github.com/academemes/harness/targets/option"
)

// options are the settings of a scenario's wasm target: where the function
// is served and its FunctionConfig.
type options struct {
	Variant  string
	Remote   *url.URL
	Token    string
	CacheDir string
	Config   FunctionConfig
}

// fields lists the option keys of a scenario's wasm target, bound to o:
// the one place that names, documents and decodes them.
func (o *options) fields() option.List {
	c := &o.Config
	return option.List{
		option.String(&o.Variant, "variant", `which build to serve: "" the Go build (the reactor build in warm and snapshot mode), "small" the C build without a language runtime, "rust" the Rust build`),
		option.URL(&o.Remote, "remote", "base URL of a `harness serve` to deploy to and load instead of serving in process (http://HOST:PORT)"),
		option.String(&o.Token, "token", "bearer token for the remote deploy API"),
		option.Enum(&c.Restore, "restore", []string{RestoreReset, RestoreCOW, RestoreSegments}, "how snapshot mode starts each request from the snapshot: reset (a kept instance reset in place), cow (a fresh instance mapping the snapshot copy-on-write), segments (a fresh instance from data segments); default: the first that works for the module here"),
		option.String(&c.Warmup, "warmup", "snapshot mode: the body of a request run once before the snapshot is taken (a post-warm-up snapshot); default none"),
		option.Bool(&c.Impure, "impure", "give the function a real clock (default false: pure)"),
		option.Bool(&c.Cache, "cache", "answer repeated identical requests from a response cache (pure functions only)"),
		option.Size(&c.CacheBytes, "cache_bytes", "bound of the response cache: bytes or a size like 16m, up to 1g (default 16 MiB)"),
		option.Int(&c.MemoryPages, "memory_pages", 1, MaxMemoryPages, "linear memory limit in 64 KiB pages, 1 to 65536 (default 2048: 128 MiB)"),
		option.Duration(&c.Timeout, "timeout", Duration(MinTimeout), "time limit per request, 1ms to 10m (default 10s); past it the client gets 504"),
		// The upper bounds of these two are Validate's (parseOptions).
		option.Int(&c.Concurrency, "concurrency", 1, math.MaxInt, "most instances running at once, 1 to 1024 (default 64)"),
		option.Int(&c.Pool, "pool", 1, math.MaxInt, "instances kept ready in prewarmed mode, 1 to 256 (default 4)"),
		option.Duration(&c.IdleTimeout, "idle_timeout", math.MinInt64, "scale to zero after this long without requests, up to 24h (default 5m; negative: never)"),
		option.Bool(&c.NoInterrupt, "no_interrupt", "trusted code: skip close-on-context-done (faster guest code, timeouts no longer stop a loop)"),
		option.String(&o.CacheDir, "cache_dir", "directory for wazero's compilation cache, or memory (default: the user's cache directory, e.g. ~/.cache/academemes-harness/wazero)"),
	}
}

// parseOptions decodes the options of a target in mode and reports every
// problem at once, one *option.Error per key: the kind's Check. The
// decoded config then meets the checks a deploy makes (ranges the option
// types cannot say, such as a duration's upper bound, cache with impure,
// restore without snapshot).
func parseOptions(m map[string]any, mode targets.Mode) (options, error) {
	var o options
	err := o.fields().Decode(m)
	if mode.Valid() { // an invalid one is the scenario's error, not an option's
		o.Config.Mode = mode
	}
	return o, errors.Join(err, o.Config.Validate())
}
