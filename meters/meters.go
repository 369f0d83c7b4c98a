// Package meters defines what a power or energy meter is to the harness, the
// spec strings that select one, and the registry of drivers behind them.
//
// A driver lives in a subpackage (rapl, estimate, serial/..., modbus) and
// registers itself from init; a program that wants every driver imports
// meters/all. The grammar of spec strings is documented on ParseSpec.
package meters

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/academemes/harness/clock"
)

// Kind says whether a meter measures or models.
type Kind string

const (
	// Measured meters read a physical sensor or a hardware counter.
	Measured Kind = "measured"
	// Model meters estimate power from something else (CPU utilisation).
	// Their figures are always labelled as estimates.
	Model Kind = "model"
)

// Channel describes one series a meter produces.
type Channel struct {
	// Name says what is measured: "package-0", "dram-0", "EPS 12V #1",
	// "outlet 1 AC".
	Name string `json:"name"`
	// InTotal reports whether the channel counts toward the meter's total.
	// Nested domains (a RAPL core zone inside its package) are not, so that
	// nothing is added twice.
	InTotal bool `json:"in_total"`
	// FullScaleW is the highest power the channel can report: a model's
	// ceiling, a sensor's full scale. A sample at or above it may be
	// clipped (the meter saturated). 0: unknown.
	FullScaleW float64 `json:"full_scale_w,omitempty"`
}

// Info describes a meter.
type Info struct {
	// Name is the spec the meter was opened with, as written in samples.csv.
	Name string `json:"name"`
	// Driver is the registered driver name ("rapl", "estimate", ...).
	Driver string `json:"driver"`
	Kind   Kind   `json:"kind"`
	// Description is a short human sentence: what is read, from where.
	Description string    `json:"description"`
	Channels    []Channel `json:"channels"`
	// Precision is what the meter can resolve and how far it may be off;
	// the analysis never claims more precision than this.
	Precision Precision `json:"precision"`
	// Host is the machine whose power the meter measures, as the driver
	// knows it: the address of a remote agent or device. "" is the
	// machine the harness runs on (RAPL, the estimate), or not known to
	// the driver (a PDU measures whatever is plugged into it: the
	// scenario says which machine).
	Host string `json:"host,omitempty"`
}

// Precision is a meter's resolution and stated accuracy, from its
// datasheet or, for a model, from the model's own validation. A zero field
// means "not stated": finer than anything the analysis resolves.
type Precision struct {
	// PowerStepW is the smallest step of a power reading (a Gude 1105
	// reports whole watts: 1).
	PowerStepW float64 `json:"power_step_w,omitempty"`
	// EnergyStepJ is the smallest step of an energy counter (Gude 1105:
	// 1 Wh = 3600 J; RAPL: its energy unit, about 15.3 uJ).
	EnergyStepJ float64 `json:"energy_step_j,omitempty"`
	// RelError is the stated relative accuracy of a reading as a fraction
	// (0.01 for 1 %), or a model's own relative error.
	RelError float64 `json:"rel_error,omitempty"`
	// Source says where the figures come from (a datasheet, a note).
	Source string `json:"source,omitempty"`
}

// String is the precision in one line for people: "power step 1 W,
// energy step 3600 J, accuracy not stated".
func (p Precision) String() string {
	var parts []string
	if p.PowerStepW > 0 {
		parts = append(parts, "power step "+siString(p.PowerStepW, "W"))
	}
	if p.EnergyStepJ > 0 {
		parts = append(parts, "energy step "+siString(p.EnergyStepJ, "J"))
	}
	if p.RelError > 0 {
		parts = append(parts, fmt.Sprintf("within ±%.3g %%", 100*p.RelError))
	} else {
		parts = append(parts, "accuracy not stated")
	}
	return strings.Join(parts, ", ")
}

// siString writes v with an SI prefix and 3 significant digits, whole
// numbers from 1000 up: 6.1035e-05 J is "61 µJ", 3600 J is "3600 J".
func siString(v float64, unit string) string {
	for _, p := range []struct {
		f float64
		s string
	}{{1, ""}, {1e-3, "m"}, {1e-6, "µ"}, {1e-9, "n"}} {
		switch x := v / p.f; {
		case x >= 1000:
			return fmt.Sprintf("%.0f %s%s", x, p.s, unit)
		case x >= 1:
			return fmt.Sprintf("%.3g %s%s", x, p.s, unit)
		}
	}
	return fmt.Sprintf("%.3g %s", v, unit)
}

// Label is how the meter is named to people: Label(i.Name, i.Kind).
func (i Info) Label() string { return Label(i.Name, i.Kind) }

// Label is the one rule for naming a meter, or a figure from it, to
// people: what a model gives says "estimate" and "model" in its name, so
// that it is never taken for a measurement. A name that says both already
// is kept, so labelling twice changes nothing.
func Label(name string, kind Kind) string {
	est, model := strings.Contains(name, "estimate"), strings.Contains(name, "model")
	switch {
	case kind != Model, est && model:
		return name
	case est:
		return name + " (model)"
	default:
		return name + " (estimate, model)"
	}
}

// Sample is one reading of one channel.
type Sample struct {
	Channel int       // index into Info().Channels
	T       time.Time // harness clock (package clock), never a device's raw clock
	Watts   float64   // instantaneous or interval-average power, NaN if the device gives none
	Joules  float64   // cumulative energy since Run began, NaN if the device gives none
}

// NaN is a convenience for drivers that lack one of the two quantities.
var NaN = math.NaN()

// Meter is a source of samples.
type Meter interface {
	Info() Info
	// Run blocks until ctx is done (returning nil) or the device fails
	// beyond recovery (returning the reason). emit may be called from the
	// Run goroutine only.
	Run(ctx context.Context, emit func(Sample)) error
}

// Marker is implemented by meters whose device can place a marker in its
// own stream. The runner marks phase boundaries with it.
type Marker interface {
	Mark(label string) error
}

// Lagger is implemented by meters whose samples reach the harness a while
// after they were read: a remote agent's come over the network in
// batches. Lag is how long at most, in the normal course. The runner
// waits up to that long after a phase before judging it, so that the
// phase's last samples are in.
type Lagger interface {
	Lag() time.Duration
}

// Reporter is implemented by meters that have more to say than samples:
// gaps, error counters, a clock fit. The runner stores the report in
// run.json after the meter stops.
type Reporter interface {
	Report() Report
}

// Report is a meter's account of its run.
type Report struct {
	Gaps     []Gap            `json:"gaps,omitempty"`
	Counters map[string]int64 `json:"counters,omitempty"`
	ClockFit *ClockFit        `json:"clock_fit,omitempty"`
	Warnings []string         `json:"warnings,omitempty"`
	Details  map[string]any   `json:"details,omitempty"`
}

// Gap is a span in which a meter delivered no samples (device unplugged,
// connection lost).
type Gap struct {
	Start  time.Time `json:"start"`
	End    time.Time `json:"end"`
	Reason string    `json:"reason"`
}

// ClockFit is the mapping of a device's own clock onto the harness clock:
// host = device + OffsetNs + (device-AtNs)*DriftPPM/1e6, which with AtNs
// 0 is host = device*(1+DriftPPM/1e6) + OffsetNs. Residuals say how well
// the straight line fits.
type ClockFit struct {
	OffsetNs      float64 `json:"offset_ns"`
	DriftPPM      float64 `json:"drift_ppm"`
	ResidualRMSNs float64 `json:"residual_rms_ns"`
	ResidualMaxNs float64 `json:"residual_max_ns"`
	Points        int     `json:"points"`
	// AtNs is the device time at which OffsetNs holds; 0 for device time
	// zero. A remote clock in Unix ns gives its offset near the run, where
	// an extrapolation to 1970 would multiply the drift's error by 55
	// years.
	AtNs int64 `json:"at_ns,omitempty"`
	// BoundNs bounds the error of every sample time mapped with the fit,
	// from round-trip exchanges (meters/agent); 0 when the fit gives none.
	// DriftBoundPPM is the drift's share of it.
	BoundNs       float64 `json:"bound_ns,omitempty"`
	DriftBoundPPM float64 `json:"drift_bound_ppm,omitempty"`
}

// Env is what a driver may need from its surroundings. Hardware is read
// under the roots given here, so a whole binary can run on fixtures.
type Env struct {
	Clock      clock.Func // defaults to clock.Now
	SysfsRoot  string     // defaults to "/sys"
	ProcfsRoot string     // defaults to "/proc"
	DevRoot    string     // defaults to "/dev"
	Log        io.Writer  // progress and warnings for people; defaults to io.Discard
	// Fixture says the roots hold a fixture tree (tests), not a machine:
	// counters there never move, and device numbers in it (a perf PMU
	// type) are made up, so drivers neither expect movement nor open
	// kernel interfaces by those numbers. Only the caller knows this; a
	// root other than /sys (`--path.sysfs /host/sys` in a container) is
	// still a machine.
	Fixture bool
}

// WithDefaults fills the zero fields of e.
func (e Env) WithDefaults() Env {
	if e.Clock == nil {
		e.Clock = clock.Now
	}
	if e.SysfsRoot == "" {
		e.SysfsRoot = "/sys"
	}
	if e.ProcfsRoot == "" {
		e.ProcfsRoot = "/proc"
	}
	if e.DevRoot == "" {
		e.DevRoot = "/dev"
	}
	if e.Log == nil {
		e.Log = io.Discard
	}
	return e
}

// Logf writes one line to e.Log.
func (e Env) Logf(format string, args ...any) {
	if e.Log != nil {
		fmt.Fprintf(e.Log, format+"\n", args...)
	}
}

// Sentinel errors that callers branch on. Drivers wrap them with the
// specifics and, for ErrPermission, with how to grant access.
var (
	// ErrUnavailable: the device or interface is not there (no RAPL in a
	// virtual machine, no such serial port).
	ErrUnavailable = errors.New("meter unavailable")
	// ErrPermission: the device is there but this user may not read it.
	ErrPermission = errors.New("meter permission denied")
	// ErrSpec: the spec string is malformed or names an unknown driver.
	ErrSpec = errors.New("bad meter spec")
)
