// Package runstore is the run directory format: runs/<id>/ with
// scenario.yaml, run.json, requests.csv, samples.csv and summary.json.
//
// The raw files are the source of truth. They are written while the run
// goes, flushed at every phase boundary and at least once a second, so that
// a crash or Ctrl-C loses at most the last second; run.json is replaced
// atomically and says whether the run completed.
package runstore

import (
	"time"

	"github.com/academemes/harness/meters"
	"github.com/academemes/harness/targets"
)

// File names inside a run directory.
const (
	ScenarioFile = "scenario.yaml"
	RunFile      = "run.json"
	RequestsFile = "requests.csv"
	SamplesFile  = "samples.csv"
	SummaryFile  = "summary.json"
)

// RequestsHeader and SamplesHeader are the CSV header rows (a contract).
var (
	RequestsHeader = []string{"target", "phase", "rep", "seq", "start_ns", "latency_ns", "status", "bytes_in", "bytes_out", "cold", "start_up_ns", "error"}
	SamplesHeader  = []string{"meter", "channel", "t_ns", "watts", "joules"}
)

// Request is one row of requests.csv.
type Request struct {
	Target    string
	Phase     string
	Rep       int
	Seq       int64
	StartNs   int64 // Unix ns on the harness clock
	LatencyNs int64
	Status    int // HTTP status; 0 when no response came
	BytesIn   int64
	BytesOut  int64
	Cold      bool  // X-Cold-Start: 1
	StartUpNs int64 // X-Start-Ns; 0 when not reported
	Error     string
}

// EndNs is when the request completed.
func (r Request) EndNs() int64 { return r.StartNs + r.LatencyNs }

// OK reports whether the request succeeded (a 2xx or 3xx answer).
func (r Request) OK() bool { return r.Error == "" && r.Status >= 200 && r.Status < 400 }

// Sample is one row of samples.csv.
type Sample struct {
	Meter   string
	Channel int
	TNs     int64
	Watts   float64 // NaN when the meter gives none
	Joules  float64 // cumulative since the meter started; NaN when none
}

// Status of a run in run.json.
const (
	StatusRunning     = "running"
	StatusComplete    = "complete"
	StatusInterrupted = "interrupted"
	StatusFailed      = "failed"
)

// Meta is run.json.
type Meta struct {
	ID          string       `json:"id"`
	Scenario    string       `json:"scenario"`
	Description string       `json:"description,omitempty"`
	Version     string       `json:"harness_version"`
	Status      string       `json:"status"`
	Error       string       `json:"error,omitempty"`
	Started     time.Time    `json:"started"`
	Ended       time.Time    `json:"ended,omitzero"`
	Host        Host         `json:"host"`
	Targets     []TargetMeta `json:"targets"`
	Meters      []MeterMeta  `json:"meters"`
	Phases      []Phase      `json:"phases"`
	Load        LoadMeta     `json:"load"`
	Warnings    []string     `json:"warnings,omitempty"`
	Repeat      int          `json:"repeat"`
	// Order is the targets' turns in the order they ran, every
	// repetition's in turn (A B B A ... for two targets); OrderSeed is the
	// seed the per-repetition order was drawn from, 0 for the scenario's
	// fixed order.
	Order     []string `json:"order,omitempty"`
	OrderSeed uint64   `json:"order_seed"`
	// Validity says whether the run's numbers can be trusted: every
	// problem any phase had, and those of the run as a whole. Nil in runs
	// written before validity was recorded.
	Validity *Validity      `json:"validity,omitempty"`
	Extra    map[string]any `json:"extra,omitempty"`
}

// Validity is whether a run, or one phase of it, can be trusted, and why
// not. Checks are named by the Check* constants of the package that runs
// them; Observed and Limit are in Unit, so a reader sees how far off it was.
type Validity struct {
	Valid    bool      `json:"valid"`
	Problems []Problem `json:"problems"`
}

// Problem is one failed validity check.
type Problem struct {
	// Phase names where it was seen, "target/phase/rep" (e.g.
	// "wasm/load/2"), "idle/1" for an idle phase shared by all targets,
	// or "" for the run as a whole (the system check before the load).
	Phase    string  `json:"phase"`
	Check    string  `json:"check"`
	Observed float64 `json:"observed"`
	Limit    float64 `json:"limit"`
	Unit     string  `json:"unit,omitempty"`
	Message  string  `json:"message"`
}

// Host is what was read about the machine under test.
type Host struct {
	Hostname  string `json:"hostname"`
	OS        string `json:"os"`
	Arch      string `json:"arch"`
	Kernel    string `json:"kernel,omitempty"`
	CPUModel  string `json:"cpu_model,omitempty"`
	Cores     int    `json:"cores"`
	Governor  string `json:"governor,omitempty"`
	Turbo     string `json:"turbo,omitempty"`
	MemoryMB  int64  `json:"memory_mb,omitempty"`
	Virtual   string `json:"virtualization,omitempty"`
	GoVersion string `json:"go_version"`
}

// TargetMeta describes one target as run.
type TargetMeta struct {
	targets.Info
	URL        string         `json:"url,omitempty"`
	Skipped    bool           `json:"skipped,omitempty"`
	SkipReason string         `json:"skip_reason,omitempty"`
	Report     map[string]any `json:"report,omitempty"`
}

// MeterMeta describes one meter as run.
type MeterMeta struct {
	meters.Info
	Label  string         `json:"label"`
	Notes  []string       `json:"notes,omitempty"` // how auto chose, etc.
	Report *meters.Report `json:"report,omitempty"`
	Error  string         `json:"error,omitempty"` // why it stopped early
}

// Phase names.
const (
	PhaseIdle     = "idle"
	PhaseWarmup   = "warmup"
	PhaseLoad     = "load"
	PhaseCooldown = "cooldown"
)

// Phase is one phase of one target in one repetition, [StartNs, EndNs).
type Phase struct {
	Target  string  `json:"target"`
	Name    string  `json:"phase"`
	Rep     int     `json:"rep"`
	StartNs int64   `json:"start_ns"`
	EndNs   int64   `json:"end_ns"`
	Stages  []Stage `json:"stages,omitempty"` // load phase: the stages in order
	// Interrupted is set when the phase was cut short (Ctrl-C, failure).
	Interrupted bool `json:"interrupted,omitempty"`
	// Foreign is the CPU time other processes used during the phase, as
	// sampled while it ran; nil when it was not watched.
	Foreign *ForeignCPU `json:"foreign_cpu,omitempty"`
	// Validity is this phase's own checks; nil when none were made.
	Validity *Validity `json:"validity,omitempty"`
}

// ForeignCPU is the CPU time, during one phase, of processes that are
// neither the harness nor a target's own (its containers, its server):
// energy they cost lands in the meter's figures.
type ForeignCPU struct {
	// CPUSeconds is their CPU time over the phase; Share is that over the
	// machine's capacity in the phase (cores x duration), 0-1.
	CPUSeconds float64   `json:"cpu_s"`
	Share      float64   `json:"share"`
	Top        []Process `json:"top,omitempty"` // the busiest, most first
}

// Process is one process's CPU use over a phase.
type Process struct {
	PID        int     `json:"pid"`
	Name       string  `json:"name"`
	CPUSeconds float64 `json:"cpu_s"`
	Share      float64 `json:"share"`
}

// Stage is one constant-rate stage inside a load phase, or the sequential
// loop.
type Stage struct {
	Rate    float64 `json:"rate,omitempty"` // requests per second; 0 for sequential
	StartNs int64   `json:"start_ns"`
	EndNs   int64   `json:"end_ns"`
}

// LoadMeta records how load was generated.
type LoadMeta struct {
	Model   string `json:"model"` // "open" (constant arrival rate) or "sequential"
	Method  string `json:"method"`
	Path    string `json:"path,omitempty"`
	Workers uint64 `json:"workers,omitempty"`
}
