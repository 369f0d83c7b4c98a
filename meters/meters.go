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
	// FullScaleW is the most the channel can read, in watts: a model's
	// ceiling (the estimate at full load), a sensor's full scale. Readings
	// at it are clipped. 0 means unknown.
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

// Label is how the meter is named to people. A model says so in its name.
func (i Info) Label() string {
	switch {
	case i.Kind != Model:
		return i.Name
	case strings.Contains(i.Name, "estimate"):
		return i.Name + " (model)"
	default:
		return i.Name + " (estimate, model)"
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
// host = device*(1+DriftPPM/1e6) + OffsetNs. Residuals say how well the
// straight line fits.
type ClockFit struct {
	OffsetNs      float64 `json:"offset_ns"`
	DriftPPM      float64 `json:"drift_ppm"`
	ResidualRMSNs float64 `json:"residual_rms_ns"`
	ResidualMaxNs float64 `json:"residual_max_ns"`
	Points        int     `json:"points"`
}

// Env is what a driver may need from its surroundings. Hardware is read
// under the roots given here, so a whole binary can run on fixtures.
type Env struct {
	Clock      clock.Func // defaults to clock.Now
	SysfsRoot  string     // defaults to "/sys"
	ProcfsRoot string     // defaults to "/proc"
	DevRoot    string     // defaults to "/dev"
	Log        io.Writer  // progress and warnings for people; defaults to io.Discard
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
