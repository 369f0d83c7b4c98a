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
)

// FunctionConfig is the small per-function configuration: in
// <dir>/<name>/purify.json (functions.ConfigFile) beside the module, in the
// X-Purify-Config header of a deploy, or from a scenario's target options.
// Zero fields take the defaults of Defaults.
type FunctionConfig struct {
	// Mode is cold (a fresh instance per request, made on the request
	// path), prewarmed (a fresh instance per request, made ahead of time)
	// or warm (one instance serves many requests through its exported
	// purify_handle).
	Mode targets.Mode `json:"mode,omitempty"`
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

// Validate reports every problem at once.
func (c FunctionConfig) Validate() error {
	var errs []error
	if c.Mode != "" && !c.Mode.Valid() {
		errs = append(errs, fmt.Errorf("mode %q: use cold, prewarmed or warm", c.Mode))
	}
	if c.MemoryPages > 65536 {
		errs = append(errs, fmt.Errorf("memory_pages %d: at most 65536 (4 GiB)", c.MemoryPages))
	}
	for _, f := range []struct {
		name string
		v    int64
	}{{"timeout", int64(c.Timeout)}, {"max_request_bytes", c.MaxRequestBytes}, {"max_response_bytes", c.MaxResponseBytes},
		{"concurrency", int64(c.Concurrency)}, {"pool", int64(c.Pool)}, {"cache_bytes", c.CacheBytes}} {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("%s %d: must not be negative", f.name, f.v))
		}
	}
	if c.Cache && c.Impure {
		errs = append(errs, errors.New("cache: only pure functions can be cached (impure is set)"))
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
