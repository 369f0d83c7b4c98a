package meters

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
)

// Driver is a registered kind of meter.
type Driver struct {
	// Name is the spec's driver part: "rapl", "powersensor3", ...
	Name string
	// Usage is one line: the spec grammar for this driver and its options.
	Usage string
	// Open opens a meter from a spec whose Driver is Name. It does not start
	// sampling; Run does.
	Open func(spec Spec, env Env) (Meter, error)
	// Check finds what is wrong with a spec's argument and options
	// (errors wrapping ErrSpec) without opening a device, so that a
	// scenario is checked before its run starts. Nil: only the driver's
	// name is checked before Open.
	Check func(spec Spec) error
	// Detect lists what this driver finds on the machine, usable or not,
	// for `auto` and `harness meters list`. Nil if the driver cannot detect
	// (a network meter).
	Detect func(env Env) []Candidate
	// AutoRank orders drivers for `auto`: lower is tried first; 0 keeps the
	// driver out of auto. RAPL 10, serial meters 20-29, estimate 100.
	AutoRank int
}

// Candidate is one meter a driver found (or looked for and did not find).
type Candidate struct {
	Spec        string   // the spec that opens it, e.g. "pmd-usb:/dev/ttyUSB0"
	Description string   // what it is
	Usable      bool     // readable now
	Reason      string   // why not usable, and how to fix it
	Details     []string // further lines for `meters list` (zones, ranges)
}

var (
	mu        sync.RWMutex
	drivers   = map[string]Driver{}
	emulators = map[string]Emulator{}
)

// Register makes a driver available by name. It panics on a duplicate, as
// database/sql does, because that is a programming error.
func Register(d Driver) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := drivers[d.Name]; dup {
		panic("meters: driver registered twice: " + d.Name)
	}
	drivers[d.Name] = d
}

// Drivers returns the registered drivers sorted by name.
func Drivers() []Driver {
	mu.RLock()
	defer mu.RUnlock()
	out := make([]Driver, 0, len(drivers))
	for _, d := range drivers {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Lookup returns the driver named name.
func Lookup(name string) (Driver, bool) {
	mu.RLock()
	defer mu.RUnlock()
	d, ok := drivers[name]
	return d, ok
}

// Open opens the meter a spec names. "auto" picks the best available meter
// (see Auto); notes then say what was tried and why the choice fell where
// it did.
func Open(spec string, env Env) (m Meter, notes []string, err error) {
	env = env.WithDefaults()
	sp, err := ParseSpec(spec)
	if err != nil {
		return nil, nil, err
	}
	if sp.Driver == "auto" {
		if err := sp.CheckAuto(); err != nil {
			return nil, nil, err
		}
		return Auto(env)
	}
	d, ok := Lookup(sp.Driver)
	if !ok {
		return nil, nil, fmt.Errorf("%w %q: unknown driver %q; known: auto, %s", ErrSpec, spec, sp.Driver, strings.Join(names(), ", "))
	}
	m, err = d.Open(sp, env)
	return m, nil, err
}

// Auto takes the best available meter: readable RAPL, then a detected
// serial meter, then the estimate. Each driver that was passed over leaves a
// note saying why.
func Auto(env Env) (Meter, []string, error) {
	env = env.WithDefaults()
	var ranked []Driver
	for _, d := range Drivers() {
		if d.AutoRank > 0 && d.Detect != nil {
			ranked = append(ranked, d)
		}
	}
	sort.SliceStable(ranked, func(i, j int) bool { return ranked[i].AutoRank < ranked[j].AutoRank })
	var notes []string
	for _, d := range ranked {
		cands := d.Detect(env)
		if len(cands) == 0 {
			notes = append(notes, fmt.Sprintf("auto: %s: none found", d.Name))
			continue
		}
		for _, c := range cands {
			if !c.Usable {
				notes = append(notes, fmt.Sprintf("auto: %s: %s", c.Spec, c.Reason))
				continue
			}
			sp, err := ParseSpec(c.Spec)
			if err != nil {
				return nil, notes, err
			}
			m, err := d.Open(sp, env)
			if err != nil {
				notes = append(notes, fmt.Sprintf("auto: %s: %v", c.Spec, err))
				continue
			}
			notes = append(notes, fmt.Sprintf("auto: chose %s (%s)", m.Info().Label(), c.Description))
			return m, notes, nil
		}
	}
	return nil, notes, fmt.Errorf("%w: auto found no usable meter", ErrUnavailable)
}

func names() []string {
	var n []string
	for _, d := range Drivers() {
		n = append(n, d.Name)
	}
	return n
}

// Emulator is a device emulator that `harness meters emulate NAME` runs, so
// that a user without the device can try a driver, and tests can too.
type Emulator struct {
	Name  string // "powersensor3", "pmd-usb", "gude-1105"
	Usage string // one line: flags
	// Run parses args (flags after the name), prints where the emulated
	// device can be reached on stdout, and serves until ctx is done.
	Run func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// RegisterEmulator makes an emulator available by name.
func RegisterEmulator(e Emulator) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := emulators[e.Name]; dup {
		panic("meters: emulator registered twice: " + e.Name)
	}
	emulators[e.Name] = e
}

// Emulators returns the registered emulators sorted by name.
func Emulators() []Emulator {
	mu.RLock()
	defer mu.RUnlock()
	out := make([]Emulator, 0, len(emulators))
	for _, e := range emulators {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// IsUnavailable reports whether err means the meter is simply not there.
func IsUnavailable(err error) bool { return errors.Is(err, ErrUnavailable) }
