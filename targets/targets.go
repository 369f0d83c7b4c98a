// Package targets defines a serving platform under test (a Target), the
// per-request facts a target reports in response headers, and the registry
// of target kinds.
//
// A kind lives in a subpackage (wasm, dockernode, openfaas) and registers
// itself from init; a program that wants every kind imports targets/all.
package targets

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"sync"
)

// Mode says how a target treats instances between requests.
type Mode string

const (
	// Cold: every request pays a start (a fresh instance or container).
	Cold Mode = "cold"
	// Prewarmed: a fresh single-use instance per request, made ahead of time.
	Prewarmed Mode = "prewarmed"
	// Warm: long-lived instances serve many requests.
	Warm Mode = "warm"
	// Snapshot: a fresh single-use instance per request, restored from a
	// snapshot taken once after the function's initialisation, so that
	// every request starts from the same state without paying for it.
	Snapshot Mode = "snapshot"
)

// Valid reports whether m is one of the known modes.
func (m Mode) Valid() bool { return m == Cold || m == Prewarmed || m == Warm || m == Snapshot }

// Response headers by which a target reports server-side facts per request.
const (
	// HeaderColdStart is "1" when the request paid a start.
	HeaderColdStart = "X-Cold-Start"
	// HeaderStartNs is the start-up part of the request's latency in
	// nanoseconds, when known.
	HeaderStartNs = "X-Start-Ns"
)

// Info describes a target.
type Info struct {
	Name     string `json:"name"`
	Kind     string `json:"kind"`
	Mode     Mode   `json:"mode"`
	Function string `json:"function"`
	// Variant names the build of the function served: a variant of
	// package functions ("small", "rust", "reactor"), "go" for the Go
	// command build, "node" for the Node.js one; "" where the kind does
	// not say.
	Variant string `json:"variant,omitempty"`
	// Language is that build's language ("Go", "C", "Rust",
	// "JavaScript"), "" where unknown.
	Language string `json:"language,omitempty"`
}

// Target is a serving platform with one function deployed.
type Target interface {
	Info() Info
	// Start deploys or builds what is needed and waits until ready.
	Start(ctx context.Context) error
	// URL is where requests go. Valid after Start.
	URL() *url.URL
	// Reset scales to zero: the next request is a cold start.
	Reset(ctx context.Context) error
	// Stop removes everything Start created. It must be safe to call after
	// a failed or partial Start, and more than once.
	Stop(ctx context.Context) error
}

// Reporter is implemented by targets that have facts for run.json (image id
// and size, containers' CPU time, how cold starts were forced).
type Reporter interface {
	Report() map[string]any
}

// Spec is what a scenario says about one target.
type Spec struct {
	Name     string
	Kind     string
	Function string
	Mode     Mode
	// Options are the kind-specific settings from the scenario, decoded
	// from YAML (strings, numbers, bools, lists, maps).
	Options map[string]any
	// FunctionsDir is where function sources and builds are; "" means the
	// copies embedded in the binary (package functions).
	FunctionsDir string
	// RunID names the run, for labels on what the target creates.
	RunID string
	// Logf reports progress and problems to people; never nil after New.
	Logf func(format string, args ...any)
}

// Kind is a registered kind of target.
type Kind struct {
	Name string
	// Doc is one line for --help and the README.
	Doc string
	// Options lists the kind-specific option keys with one line of doc
	// each. The scenario validator rejects keys not listed here. Kinds
	// derive it from their option.List, which also decodes the options.
	Options map[string]string
	// Modes lists the modes this kind supports.
	Modes []Mode
	// New makes a target. It should check options and fail early; it
	// should not start anything.
	New func(spec Spec) (Target, error)
	// Check, when set, finds what is wrong with a spec's options without
	// making a target or reading the environment, so that `harness run
	// --check` reports a bad value before a run starts. A problem with
	// one option is an *option.Error naming its key (errors.Join them),
	// from which the scenario validator gives the option's file:line:col.
	Check func(spec Spec) error
	// CheckFunction, when set, reports whether function names something
	// this kind can serve; baseDir is the scenario's directory, against
	// which relative paths resolve. The scenario validator calls it so that
	// a missing function file is reported with its file:line:col.
	CheckFunction func(function, baseDir string) error
	// Clean, when set, finds what runs of this kind left behind (after a
	// crash or a kill: containers, images, functions on a gateway) and,
	// unless opts.DryRun, removes it. What it creates carries its
	// Owner's labels (Self().Labels()); before removing anything Clean
	// asks opts.Keep, and returns what it kept with the reason in
	// Leftover.Kept. `harness clean` calls the Clean of every kind. A
	// platform that is not there gives an error wrapping ErrUnavailable;
	// a platform that is not configured, nothing.
	Clean func(ctx context.Context, opts CleanOptions) ([]Leftover, error)
	// CleanDoc says in one line what Clean looks for, and where.
	CleanDoc string
	// Host, when set, names the machine a target with these options is
	// served from, where the scenario's host: does not say: a wasm target
	// with options.remote is served from the remote's host. "" (or no
	// Host) is the machine the harness runs on. run.json records it, and
	// a run whose meters measure another machine is not valid.
	Host func(spec Spec) string
}

// CleanOptions selects what Kind.Clean removes.
type CleanOptions struct {
	// RunID limits Clean to what one run created; "" is what any run did.
	RunID string
	// DryRun lists what would be removed and removes nothing.
	DryRun bool
	// All removes what runs still going created too. Without it, Clean
	// removes only what belongs to harness processes that are gone (see
	// Keep), so that cleaning never pulls a live run's containers.
	All bool
}

// Leftover is one thing a run left behind, found (and, unless DryRun,
// removed) by Kind.Clean.
type Leftover struct {
	What   string // "container", "image", "OpenFaaS function", ...
	ID     string // the platform's id; may equal Name
	Name   string
	Run    string // the run that created it, when known
	Target string // the target it belonged to, when known
	// Owner is the harness process that created it, from its labels.
	Owner Owner
	// Kept is why Clean left it in place (CleanOptions.Keep); "" when it
	// was removed (or, with DryRun, would be).
	Kept string
}

// ErrUnavailable means the platform behind a target is not there (no
// Docker Engine, no OpenFaaS gateway configured or none answering). The
// runner skips such a target with the reason, unless the scenario requires
// it; every other error of New or Start fails the run.
var ErrUnavailable = errors.New("target platform unavailable")

var (
	mu    sync.RWMutex
	kinds = map[string]Kind{}
)

// Register makes a target kind available. It panics on a duplicate.
func Register(k Kind) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := kinds[k.Name]; dup {
		panic("targets: kind registered twice: " + k.Name)
	}
	kinds[k.Name] = k
}

// Lookup returns the kind named name.
func Lookup(name string) (Kind, bool) {
	mu.RLock()
	defer mu.RUnlock()
	k, ok := kinds[name]
	return k, ok
}

// Kinds returns the registered kinds sorted by name.
func Kinds() []Kind {
	mu.RLock()
	defer mu.RUnlock()
	out := make([]Kind, 0, len(kinds))
	for _, k := range kinds {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// KindNames returns the registered kind names, sorted.
func KindNames() []string {
	var n []string
	for _, k := range Kinds() {
		n = append(n, k.Name)
	}
	return n
}

// New makes a target from a spec.
func New(spec Spec) (Target, error) {
	k, ok := Lookup(spec.Kind)
	if !ok {
		return nil, fmt.Errorf("unknown target kind %q; known: %s", spec.Kind, strings.Join(KindNames(), ", "))
	}
	if spec.Logf == nil {
		spec.Logf = func(string, ...any) {}
	}
	if spec.Options == nil {
		spec.Options = map[string]any{}
	}
	return k.New(spec)
}
