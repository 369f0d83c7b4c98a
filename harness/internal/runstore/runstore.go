// Package runstore is the run directory format: runs/<id>/ with
// scenario.yaml, run.json, requests.csv, samples.csv and summary.json.
//
// The raw files are the source of truth. They are written while the run
// goes, flushed at every phase boundary and at least once a second, so that
// a crash or Ctrl-C loses at most the last second; run.json is replaced
// atomically and says whether the run completed.
package runstore

import "time"

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

// Format is the version of the run-directory format this package writes,
// recorded in run.json. Format 1 is a run.json without "format", written
// while run.json embedded the meters and targets packages' own types;
// format 2 has types of its own (TargetMeta, MeterMeta and theirs) with
// the same JSON names, so it reads format 1 as it is. Load refuses a
// newer format rather than misread it: a field it does not know would be
// dropped silently. Fields whose absence a reader already handles (such
// as Written: absent, the files are read unchecked) are added within a
// format, since an older reader that drops them reads the rest right.
const Format = 2

// Meta is run.json. Its types are the run directory's own, never a
// driver's: a file written today is read back by `harness report` long
// after the meters and targets packages have moved on. The conversions
// from theirs are in convert.go.
type Meta struct {
	// Format is the run-directory format (see Format); Load sets 1 for a
	// run.json without it.
	Format      int          `json:"format"`
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
	OrderSeed uint64   `json:"order_seed,omitempty"`
	// Validity says whether the run's numbers can be trusted: every
	// problem any phase had, and those of the run as a whole. Nil in runs
	// written before validity was recorded.
	Validity *Validity `json:"validity,omitempty"`
	// Written is how many rows requests.csv and samples.csv held, synced
	// to disk, when run.json was last written (at every phase boundary
	// and when the run ends), so that a reader can tell a file cut short
	// or altered after the fact from a short run. Nil in runs written
	// before it was recorded, which are then read unchecked.
	Written *Written `json:"written,omitempty"`
	// Carbon is the scenario's carbon: block as run, every value with
	// where it came from; nil when the scenario has none, since no
	// default can know the user's grid.
	Carbon *Carbon        `json:"carbon,omitempty"`
	Extra  map[string]any `json:"extra,omitempty"`
}

// Carbon is what the carbon figures rest on (the Software Carbon
// Intensity method): the grid's intensity, as a constant or a series,
// the hardware's embodied emissions, and the facility's power usage
// effectiveness. Each value says its source: the scenario file's
// "path:line:col", the "--set PATH=VALUE" it came from, or "default".
type Carbon struct {
	// IntensityGPerKWh is a constant grid intensity in gCO2e/kWh; nil
	// when a series is given instead.
	IntensityGPerKWh *Sourced `json:"intensity_g_per_kwh,omitempty"`
	// IntensityFile is an intensity series read from a file; nil when a
	// constant is given.
	IntensityFile *IntensityFile `json:"intensity_file,omitempty"`
	// Embodied is the hardware's embodied emissions; nil when not given
	// (M is then not counted, and every figure says so).
	Embodied *Embodied `json:"embodied,omitempty"`
	// PUE is the facility's power usage effectiveness, by which the
	// measured energy is multiplied (1: no facility overhead counted).
	PUE Sourced `json:"pue"`
}

// Sourced is a number with where it came from.
type Sourced struct {
	Value  float64 `json:"value"`
	Source string  `json:"source"`
}

// IntensityFile is an intensity series as read from a CSV file of
// timestamp,gCO2e/kWh rows. Points holds those that cover the run (each
// holds from its time until the next point's, the last until EndNs), so
// that the analysis can be redone without the file.
type IntensityFile struct {
	Path   string `json:"path"`   // as given in the scenario
	Source string `json:"source"` // where the path was given
	SHA256 string `json:"sha256"` // of the file's bytes
	Rows   int    `json:"rows"`   // data rows in the file
	// EndNs is when the file's last point stops holding (one median
	// spacing after it).
	EndNs  int64            `json:"end_ns"`
	Points []IntensityPoint `json:"points"`
}

// IntensityPoint is one value of an intensity series.
type IntensityPoint struct {
	TNs     int64   `json:"t_ns"`
	GPerKWh float64 `json:"g_per_kwh"`
}

// Embodied is the hardware's embodied emissions, charged to a run by
// time share: total x (time reserved / lifetime) x share.
type Embodied struct {
	TotalKg       Sourced `json:"total_kg"`       // kgCO2e over the hardware's life
	LifetimeYears Sourced `json:"lifetime_years"` // expected lifetime
	Share         Sourced `json:"share"`          // of the hardware reserved, 0-1
}

// Written counts the data rows (the header not counted) of a run's CSV
// files. The files may hold more rows than run.json says while the run
// goes, or when it was killed, since rows are flushed more often than
// run.json is written; never fewer.
type Written struct {
	Requests int64 `json:"requests"`
	Samples  int64 `json:"samples"`
}

// CheckFiles is the validity check Load adds, to the run as a whole, when
// a CSV file holds fewer rows than run.json records written (a file cut
// short or altered after the run), or more than a finished run wrote.
// Observed and Limit are rows: the file's, and run.json's count.
const CheckFiles = "run_files"

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
	Name     string `json:"name"`
	Kind     string `json:"kind"` // a registered target kind: "wasm", "docker-node", ...
	Mode     string `json:"mode"` // how instances are treated: "cold", "prewarmed", "warm", ...
	Function string `json:"function"`
	// Variant and Language name the build of the function that the target
	// served ("rust", "Rust"; "go", "Go"; "node", "JavaScript"); absent in
	// runs written before they were recorded.
	Variant  string `json:"variant,omitempty"`
	Language string `json:"language,omitempty"`
	URL      string `json:"url,omitempty"`
	Skipped  bool   `json:"skipped,omitempty"`
	// SkipReason is why a skipped target did not run.
	SkipReason string `json:"skip_reason,omitempty"`
	// Report is what the target said of itself when it stopped (image,
	// CPU time, configuration): free-form, for people.
	Report map[string]any `json:"report,omitempty"`
	// Host is the machine that serves the target: HostLocal for the one
	// the harness runs on, else as the scenario names it. "" in runs
	// written before it was recorded.
	Host string `json:"host,omitempty"`
}

// MeterKind says whether a meter measures or models.
type MeterKind string

// Meter kinds in run.json.
const (
	// MeterMeasured: a physical sensor or a hardware counter.
	MeterMeasured MeterKind = "measured"
	// MeterModel: an estimate from something else (CPU utilisation),
	// labelled as an estimate wherever it is shown.
	MeterModel MeterKind = "model"
)

// MeterMeta describes one meter as run.
type MeterMeta struct {
	// Name is the spec the meter was opened with, as in samples.csv.
	Name string `json:"name"`
	// Driver is the driver that read it ("rapl", "estimate", ...).
	Driver string    `json:"driver"`
	Kind   MeterKind `json:"kind"`
	// Description says what was read, from where.
	Description string `json:"description"`
	// Channels are indexed by samples.csv's channel column.
	Channels []Channel `json:"channels"`
	// Precision is what the meter could resolve and how far it may be off.
	Precision Precision `json:"precision"`
	// Label is how the meter is named to people; a model says so in it.
	Label  string       `json:"label"`
	Notes  []string     `json:"notes,omitempty"` // how auto chose, etc.
	Report *MeterReport `json:"report,omitempty"`
	Error  string       `json:"error,omitempty"` // why it stopped early

	// Host is the machine whose power the meter measures: HostLocal for
	// the one the harness runs on, else as the scenario or the meter's
	// address names it. "" in runs written before it was recorded.
	Host string `json:"host,omitempty"`
}

// Channel is one series of a meter.
type Channel struct {
	// Name says what is measured: "package-0", "EPS 12V #1".
	Name string `json:"name"`
	// InTotal reports whether the channel counts toward the meter's total
	// (a nested RAPL domain does not).
	InTotal bool `json:"in_total"`
	// FullScaleW is the most the channel can report (a model's ceiling, a
	// sensor's full scale); 0 when unknown.
	FullScaleW float64 `json:"full_scale_w,omitempty"`
}

// Precision is a meter's resolution and stated accuracy; a zero field
// means "not stated". Runs written before it was recorded read as zero.
type Precision struct {
	PowerStepW  float64 `json:"power_step_w,omitempty"`  // smallest step of a power reading
	EnergyStepJ float64 `json:"energy_step_j,omitempty"` // smallest step of an energy counter
	RelError    float64 `json:"rel_error,omitempty"`     // relative accuracy as a fraction (0.01 for 1 %)
	Source      string  `json:"source,omitempty"`        // where the figures come from
}

// MeterReport is a meter's account of its run: gaps, counters, the fit
// of its clock to the harness clock, warnings.
type MeterReport struct {
	Gaps     []Gap            `json:"gaps,omitempty"`
	Counters map[string]int64 `json:"counters,omitempty"`
	ClockFit *ClockFit        `json:"clock_fit,omitempty"`
	Warnings []string         `json:"warnings,omitempty"`
	// Details are driver facts for people (firmware, baud); free-form.
	Details map[string]any `json:"details,omitempty"`
}

// Gap is a span in which a meter delivered no samples.
type Gap struct {
	Start  time.Time `json:"start"`
	End    time.Time `json:"end"`
	Reason string    `json:"reason"`
}

// ClockFit maps a device's own clock onto the harness clock:
// host = device + OffsetNs + (device-AtNs)*DriftPPM/1e6 (AtNs 0 in runs
// of serial meters and older runs: host = device*(1+DriftPPM/1e6) +
// OffsetNs).
type ClockFit struct {
	OffsetNs      float64 `json:"offset_ns"`
	DriftPPM      float64 `json:"drift_ppm"`
	ResidualRMSNs float64 `json:"residual_rms_ns"`
	ResidualMaxNs float64 `json:"residual_max_ns"`
	Points        int     `json:"points"`
	// AtNs is the device time at which OffsetNs holds.
	AtNs int64 `json:"at_ns,omitempty"`
	// BoundNs bounds the error of every sample time mapped (a remote
	// agent's clock, from round-trip exchanges); 0: no bound known.
	// DriftBoundPPM is what it allows of the drift.
	BoundNs       float64 `json:"bound_ns,omitempty"`
	DriftBoundPPM float64 `json:"drift_bound_ppm,omitempty"`
}

// HostLocal names, in TargetMeta.Host and MeterMeta.Host, the machine
// the harness runs on.
const HostLocal = "local"

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
