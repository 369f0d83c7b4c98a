package validity

import (
	"fmt"
	"strings"
	"time"
)

// Thresholds are the limits the checks hold a run to. Default is the one
// place their values are set; each field says why its value is what it is,
// and Table renders them for the README and `harness doctor`.
type Thresholds struct {
	// ForeignCPUShare is the most CPU, as a share of the machine (all
	// cores over the phase), that processes other than the harness and
	// the targets' own may use during a phase, and during the system
	// check before the load. 0.05: an idle desktop or server's daemons
	// use well under 2 %, so 5 % is clearly someone else's work; on the
	// 2-CPU estimate model (2.76 W per busy CPU) it is 0.28 W, as much as
	// a 2 req/s cold Wasm load adds, so anything above it moves the
	// figures by their own size.
	ForeignCPUShare float64
	// LoadPerCore is the 1-minute load average per CPU above which the
	// system check warns. 1.0: more runnable tasks than CPUs. It only
	// warns and never refuses a start: the load average decays over
	// minutes and still counts work that has just ended, while the
	// foreign-CPU sample says what is running now.
	LoadPerCore float64
	// FailedShare is the most requests of a load phase that may fail
	// (an error or a status outside 2xx/3xx). 0.05, as the study's
	// method states: beyond it the energy is shared among fewer
	// successful requests than were offered and joules per request are
	// no longer those of the function.
	FailedShare float64
	// RateShortfall is how far the achieved request rate (requests sent
	// per second within a stage) may fall below the offered rate. 0.05,
	// as the study's method states: with open-model load the idle power
	// is divided by the rate, so a rate 5 % short already moves total
	// joules per request by 5 %. One request of slack is allowed per
	// stage, so that a stage of a few seconds at 2 req/s is not invalid
	// for where its first and last request fell.
	RateShortfall float64
	// SaturatedShare is the most samples of a phase that may be at a
	// meter's ceiling: a model at its maximum, a sensor at its full
	// scale. 0.05: one sample in twenty at a transient peak is normal;
	// more means the reading is clipped (the power above the ceiling
	// is not in the figures) or, for the model, that the machine was
	// fully busy, so its idle baseline is no baseline.
	SaturatedShare float64
	// SaturationMargin is how close to the ceiling a sample counts as at
	// it, as a share of the ceiling. 0.01: within the model's own
	// step (one busy tick of 100 per CPU moves it by about 0.5 %) and
	// well inside a sensor's stated accuracy.
	SaturationMargin float64
	// GapShare is the most of a phase a meter may have been silent for.
	// 0.05: the energy in a gap is interpolated, not measured; 5 % of a
	// phase interpolated is within the other uncertainties, more is not.
	GapShare float64
	// GapFactor says when the time between two samples is a gap: more
	// than this many times the meter's median interval. 3: a late
	// sample or two (a busy machine delays a 10 Hz reader by tens of
	// milliseconds) is not a gap; three intervals without a sample are.
	GapFactor float64
	// SystemWindow is how long the system check samples the machine's
	// processes, and reads the meter. 1 s: long enough for /proc's
	// 10 ms CPU ticks to resolve a 1 % share on a 2-CPU machine (two
	// ticks), short enough to run before every measurement.
	SystemWindow time.Duration
	// MonitorInterval is how often processes are sampled during a run,
	// besides at every phase boundary. 1 s: a process that starts and
	// ends between two samples is seen only through its parent's
	// children's CPU time, so shorter catches more of them; each
	// sample costs the harness a few milliseconds of CPU.
	MonitorInterval time.Duration
}

// Default returns the thresholds the harness uses.
func Default() Thresholds {
	return Thresholds{
		ForeignCPUShare:  0.05,
		LoadPerCore:      1.0,
		FailedShare:      0.05,
		RateShortfall:    0.05,
		SaturatedShare:   0.05,
		SaturationMargin: 0.01,
		GapShare:         0.05,
		GapFactor:        3,
		SystemWindow:     time.Second,
		MonitorInterval:  time.Second,
	}
}

// Row is one threshold as people read it.
type Row struct {
	Check string // a Check* constant, or what is watched
	Limit string // the value with its unit
	Why   string // one sentence
	Fails string // what crossing it does: "invalid" or "warning"
}

// Table lists the thresholds t holds, for the README and the doctor.
func (t Thresholds) Table() []Row {
	pct := func(f float64) string { return strings.TrimSuffix(fmt.Sprintf("%.1f", f*100), ".0") + " %" }
	return []Row{
		{CheckForeignCPU, "> " + pct(t.ForeignCPUShare) + " of all CPUs", "other processes' work lands in the meter's figures; idle daemons use well under 2 %", "invalid (strict: refuses to start, or stops at the phase)"},
		{CheckFailures, "> " + pct(t.FailedShare) + " of a load phase's requests", "energy shared among fewer requests than were offered", "invalid"},
		{CheckNoRequests, "a load phase with no request", "nothing to share the energy among", "invalid"},
		{CheckRate, "> " + pct(t.RateShortfall) + " below the offered rate (1 request slack per stage)", "idle power is divided by the rate, so a short rate moves J/request as much", "invalid"},
		{CheckSaturation, "> " + pct(t.SaturatedShare) + " of samples within " + pct(t.SaturationMargin) + " of the ceiling", "a clipped reading misses the power above it; a model at its maximum means a fully busy machine", "invalid"},
		{CheckGaps, "> " + pct(t.GapShare) + " of a phase without samples (a gap: > " + fmt.Sprint(t.GapFactor) + "x the median interval)", "energy in a gap is interpolated, not measured", "invalid"},
		{CheckInterrupted, "a phase cut short", "its rate and baseline are not those planned", "invalid"},
		{CheckLoadAverage, "> " + fmt.Sprint(t.LoadPerCore) + " per CPU (1-minute)", "more runnable tasks than CPUs; lags by minutes, so it only warns", "warning"},
		{CheckClock, "not synchronised (adjtimex)", "a drifting wall clock misplaces remote meters' samples and run dates", "warning"},
		{CheckHost, "a target served from a machine that no meter measures", "the meters' figures are another machine's energy (run.json records where each target runs and what each meter measures)", "invalid"},
	}
}

// Markdown renders the table as the README shows it.
func (t Thresholds) Markdown() string {
	var b strings.Builder
	b.WriteString("| check | limit | why | crossing it |\n|---|---|---|---|\n")
	for _, r := range t.Table() {
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", r.Check, r.Limit, r.Why, r.Fails)
	}
	return b.String()
}
