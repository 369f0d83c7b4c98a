package wasm

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/academemes/harness/targets"
	"github.com/academemes/harness/targets/option"
)

// FunctionConfig is the small per-function configuration: in
// <dir>/<name>/purify.json (functions.ConfigFile) beside the module, in the
// X-Purify-Config header of a deploy, or from a scenario's target options.
// Zero fields take the defaults of Defaults.
type FunctionConfig struct {
	// Mode is cold (a fresh instance per request, made on the request
	// path), prewarmed (a fresh instance per request, made ahead of time),
	// snapshot (a fresh instance per request, restored from a snapshot
	// taken after the module's _initialize ran once at deploy) or warm
	// (one instance serves many requests through its exported
	// purify_handle).
	Mode targets.Mode `json:"mode,omitempty"`
	// Restore is how snapshot mode starts a request from the snapshot
	// (snapshot.go): RestoreReset resets a kept instance in place,
	// RestoreCOW makes a fresh instance whose memory maps the snapshot
	// copy-on-write (both Linux), RestoreSegments a fresh instance of a
	// module whose data segments and global initialisers are the
	// snapshot; "" takes the first of these that works for the module
	// here. Only for mode snapshot.
	Restore string `json:"restore,omitempty"`
	// Warmup, in snapshot mode, is the body of a request run once through
	// purify_handle before the snapshot is taken (a post-warm-up
	// snapshot; snapshot.go says what that changes); "" takes it right
	// after _initialize.
	Warmup string `json:"warmup,omitempty"`
	// Impure gives the function a real wall clock, monotonic clock and
	// sleep. Pure functions (the default) see a fixed fake clock.
	Impure bool `json:"impure,omitempty"`
	// MemoryPages caps linear memory in 64 KiB pages.
	MemoryPages uint32 `json:"memory_pages,omitempty"`
	// Timeout bounds one request; past it the instance is stopped and the
	// client gets 504.
	Timeout Duration `json:"timeout,omitempty"`
	// MaxRequestBytes and MaxResponseBytes bound the body in and the
	// function's stdout.
	MaxRequestBytes  int64 `json:"max_request_bytes,omitempty"`
	MaxResponseBytes int64 `json:"max_response_bytes,omitempty"`
	// Concurrency caps the instances running at once; more requests wait
	// (up to Timeout) and then get 503.
	Concurrency int `json:"concurrency,omitempty"`
	// Pool is how many instances prewarmed mode keeps ready.
	Pool int `json:"pool,omitempty"`
	// IdleTimeout is how long without requests before the ready and warm
	// instances are dropped (scale to zero); negative keeps them.
	IdleTimeout Duration `json:"idle_timeout,omitempty"`
	// Cache answers repeated identical requests of a pure function from
	// memory (bounded by CacheBytes) without running it.
	Cache      bool  `json:"cache,omitempty"`
	CacheBytes int64 `json:"cache_bytes,omitempty"`
	// NoInterrupt turns off wazero's close-on-context-done, which makes
	// guest code 3-6x slower but is what stops an endless loop. Only for
	// trusted functions: a request past its timeout then runs to its end.
	NoInterrupt bool `json:"no_interrupt,omitempty"`
}

// Ranges of FunctionConfig's numbers (README.md, "Purify"), checked at
// deploy (Validate) and by `harness run --check` (the scenario options
// decode with the same bounds). Zero always means the default; a
// negative IdleTimeout means never.
const (
	MaxMemoryPages = 65536 // 4 GiB, all a 32-bit memory can address
	MinTimeout     = time.Millisecond
	MaxTimeout     = 10 * time.Minute
	MaxBodyBytes   = 64 << 20 // max_request_bytes and max_response_bytes: a body is held in memory whole
	MaxConcurrency = 1024
	MaxPool        = 256
	MaxIdleTimeout = 24 * time.Hour
	MaxCacheBytes  = 1 << 30
)

// Defaults are the values a zero field takes.
var Defaults = FunctionConfig{
	Mode:             targets.Cold,
	MemoryPages:      2048, // 128 MiB
	Timeout:          Duration(10 * time.Second),
	MaxRequestBytes:  1 << 20,
	MaxResponseBytes: 8 << 20,
	Concurrency:      64,
	Pool:             4,
	IdleTimeout:      Duration(5 * time.Minute),
	CacheBytes:       16 << 20,
}

// withDefaults fills zero fields from Defaults.
func (c FunctionConfig) withDefaults() FunctionConfig {
	d := Defaults
	c.Mode = cmp.Or(c.Mode, d.Mode)
	c.MemoryPages = cmp.Or(c.MemoryPages, d.MemoryPages)
	c.Timeout = cmp.Or(c.Timeout, d.Timeout)
	c.MaxRequestBytes = cmp.Or(c.MaxRequestBytes, d.MaxRequestBytes)
	c.MaxResponseBytes = cmp.Or(c.MaxResponseBytes, d.MaxResponseBytes)
	c.Concurrency = cmp.Or(c.Concurrency, d.Concurrency)
	c.Pool = cmp.Or(c.Pool, d.Pool)
	c.IdleTimeout = cmp.Or(c.IdleTimeout, d.IdleTimeout)
	c.CacheBytes = cmp.Or(c.CacheBytes, d.CacheBytes)
	return c
}

// Validate reports every problem at once, each an *option.Error naming
// the field's JSON key (which is also its scenario option), so that the
// scenario validator places it at its file:line:col.
func (c FunctionConfig) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) { errs = append(errs, option.Errorf(key, format, args...)) }
	if c.Mode != "" && !c.Mode.Valid() {
		bad("mode", "want cold, prewarmed, snapshot or warm, got %q", c.Mode)
	}
	switch {
	case c.Restore != "" && c.Restore != RestoreReset && c.Restore != RestoreCOW && c.Restore != RestoreSegments:
		bad("restore", "want %s, %s or %s, got %q", RestoreReset, RestoreCOW, RestoreSegments, c.Restore)
	case c.Restore != "" && c.Mode != targets.Snapshot:
		bad("restore", "only mode snapshot restores from a snapshot (mode is %s)", cmp.Or(c.Mode, Defaults.Mode))
	}
	if c.Warmup != "" && c.Mode != targets.Snapshot {
		bad("warmup", "only mode snapshot takes a snapshot to warm up (mode is %s)", cmp.Or(c.Mode, Defaults.Mode))
	}
	if c.MemoryPages > MaxMemoryPages {
		bad("memory_pages", "want a whole number from 1 to %d (64 KiB pages, 4 GiB), got %d", MaxMemoryPages, c.MemoryPages)
	}
	for _, f := range []struct {
		key   string
		v, hi int64
	}{
		{"max_request_bytes", c.MaxRequestBytes, MaxBodyBytes},
		{"max_response_bytes", c.MaxResponseBytes, MaxBodyBytes},
		{"concurrency", int64(c.Concurrency), MaxConcurrency},
		{"pool", int64(c.Pool), MaxPool},
		{"cache_bytes", c.CacheBytes, MaxCacheBytes},
	} {
		if f.v < 0 || f.v > f.hi {
			bad(f.key, "want a whole number from 1 to %d, got %d", f.hi, f.v)
		}
	}
	if t := time.Duration(c.Timeout); t != 0 && (t < MinTimeout || t > MaxTimeout) {
		bad("timeout", "want a duration from %s to %s, got %s", MinTimeout, MaxTimeout, t)
	}
	if t := time.Duration(c.IdleTimeout); t > MaxIdleTimeout {
		bad("idle_timeout", "want a duration of at most %s (negative: never), got %s", MaxIdleTimeout, t)
	}
	if c.Cache && c.Impure {
		bad("cache", "only pure functions can be cached (impure is set)")
	}
	return errors.Join(errs...)
}

// ParseFunctionConfig decodes JSON strictly (unknown fields are errors) and
// validates.
func ParseFunctionConfig(b []byte) (FunctionConfig, error) {
	var c FunctionConfig
	if len(strings.TrimSpace(string(b))) == 0 {
		return c, nil
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return c, fmt.Errorf("function config: %w", err)
	}
	if err := c.Validate(); err != nil {
		return c, fmt.Errorf("function config: %w", err)
	}
	return c, nil
}

// Duration is a time.Duration that reads and writes JSON as "1.5s".
type Duration time.Duration

// MarshalJSON writes d as a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads a Go duration string ("250ms") or a number of
// seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("duration %q: %w", s, err)
		}
		*d = Duration(v)
		return nil
	}
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return fmt.Errorf("duration %s: use a string like \"2s\" or a number of seconds", b)
	}
	// Compared before converting: 1e300 seconds came out as
	// -9223372036854775808 ns, "must not be negative".
	if ns := f * float64(time.Second); ns >= math.MaxInt64 || ns < math.MinInt64 {
		return fmt.Errorf("duration %s s: beyond what a duration holds (about 292 years)", b)
	}
	*d = Duration(f * float64(time.Second))
	return nil
}
