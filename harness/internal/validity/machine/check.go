package machine

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/academemes/harness/harness/internal/runstore"
	"github.com/academemes/harness/harness/internal/validity"
)

// Status of one item of the system check.
type Status string

const (
	// OK: nothing to do.
	OK Status = "ok"
	// Warn: the figures may vary more than they need to, or something
	// is not as it should be; the run goes on and says so.
	Warn Status = "warn"
	// Busy: the machine is doing other work that would land in the
	// figures. A strict run refuses to start.
	Busy Status = "busy"
)

// Item is one line of the system check.
type Item struct {
	Name   string // what was looked at
	Found  string // what was found
	Status Status
	Fix    string // how to fix it; "" when ok
	// Check, Observed, Limit and Unit say which validity check a busy
	// item fails, as run.json records it.
	Check           string
	Observed, Limit float64
	Unit            string
}

// Report is the system check's result.
type Report struct {
	Items []Item
	// Foreign is other processes' CPU time over the check's window.
	Foreign *runstore.ForeignCPU
}

// Busy returns the items that say the machine is busy.
func (r Report) Busy() []Item {
	var out []Item
	for _, it := range r.Items {
		if it.Status == Busy {
			out = append(out, it)
		}
	}
	return out
}

// Problems returns the busy items as problems of the run as a whole
// (phase ""), as run.json records them.
func (r Report) Problems() []runstore.Problem {
	var out []runstore.Problem
	for _, it := range r.Busy() {
		out = append(out, runstore.Problem{Check: it.Check, Observed: it.Observed, Limit: it.Limit, Unit: it.Unit,
			Message: "before the load: " + it.Name + ": " + it.Found})
	}
	return out
}

// Warnings returns the warn items as sentences for run.json's warnings.
func (r Report) Warnings() []string {
	var out []string
	for _, it := range r.Items {
		if it.Status == Warn {
			out = append(out, fmt.Sprintf("system check: %s: %s (fix: %s)", it.Name, it.Found, it.Fix))
		}
	}
	return out
}

// WriteTable prints the items as a table: item, found, status, fix.
func (r Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ITEM\tFOUND\tSTATUS\tFIX")
	for _, it := range r.Items {
		fix := it.Fix
		if fix == "" {
			fix = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", it.Name, it.Found, it.Status, fix)
	}
	return tw.Flush()
}

// MeterFinding is what reading one meter for the check's window showed.
type MeterFinding struct {
	Label   string
	Err     error // it could not be opened or read
	Samples int
	MinW    float64 // NaN when no sample had watts
	MaxW    float64
	// JoulesMoved: an energy counter advanced in the window.
	JoulesMoved bool
	// Model: the meter is a model (the estimate), not a measurement.
	Model bool
	// CeilingW is the most it can read (a model's maximum, a sensor's
	// full scale); 0 when unknown. AtCeiling counts samples at it.
	CeilingW  float64
	AtCeiling int
	// CeilingWhy says where the ceiling comes from.
	CeilingWhy string
}

// MeterProbe reads the chosen meters for a window and says what it saw.
type MeterProbe func(ctx context.Context, window time.Duration) []MeterFinding

// Config is what the system check looks at, and where.
type Config struct {
	ProcFS, SysFS string // "/proc", "/sys" on a live machine
	Classifier    Classifier
	Thresholds    validity.Thresholds
	// Engine is the container engine to ask about containers; nil when
	// none is reachable. RunID names the run whose containers are its
	// own; "" when the check runs alone.
	Engine Engine
	RunID  string
	// Meter reads the meters; nil leaves them out.
	Meter MeterProbe
	// Clock reads the kernel's clock synchronisation state; nil uses
	// adjtimex(2).
	Clock func() (ClockState, error)
	// Wait waits out the window; nil sleeps. Tests change the fixture
	// tree here, as time would change a live one.
	Wait func(ctx context.Context, d time.Duration) error
}

// Check looks at the machine for Thresholds.SystemWindow and returns what
// it found. It fails only when /proc cannot be read at all or ctx ends.
func Check(ctx context.Context, cfg Config) (Report, error) {
	if cfg.ProcFS == "" {
		cfg.ProcFS = "/proc"
	}
	if cfg.SysFS == "" {
		cfg.SysFS = "/sys"
	}
	if cfg.Wait == nil {
		cfg.Wait = sleep
	}
	if cfg.Clock == nil {
		cfg.Clock = readClock
	}
	th := cfg.Thresholds
	window := th.SystemWindow
	sampler, err := NewSampler(cfg.ProcFS, cfg.Classifier)
	if err != nil {
		return Report{}, err
	}
	if err := sampler.Sample(); err != nil {
		return Report{}, err
	}
	from := sampler.Totals()
	swapBefore, swapErr := readSwapped(cfg.ProcFS)
	throttleBefore, throttleN := readThrottle(cfg.SysFS)

	var findings []MeterFinding
	var wg sync.WaitGroup
	if cfg.Meter != nil {
		wg.Go(func() { findings = cfg.Meter(ctx, window) })
	}
	werr := cfg.Wait(ctx, window)
	wg.Wait()
	if werr != nil {
		return Report{}, werr
	}
	if err := sampler.Sample(); err != nil {
		return Report{}, err
	}
	to := sampler.Totals()
	cpus := max(to.CPUs, 1)

	var rep Report
	add := func(it Item) { rep.Items = append(rep.Items, it) }

	// Other processes' CPU.
	rep.Foreign = sampler.Foreign(from, to, window.Seconds(), TopProcesses)
	add(foreignItem(rep.Foreign, cpus, th))

	// Load average.
	if la, err := sampler.fs.LoadAvg(); err == nil {
		per := la.Load1 / float64(cpus)
		it := Item{Name: "load average", Found: fmt.Sprintf("%.2f over the last minute (%.2f per CPU)", la.Load1, per), Status: OK,
			Check: validity.CheckLoadAverage, Observed: per, Limit: th.LoadPerCore, Unit: validity.UnitPerCore}
		if per > th.LoadPerCore {
			it.Status = Warn
			it.Found += fmt.Sprintf("; above %.2g per CPU", th.LoadPerCore)
			it.Fix = "wait for other work to finish; the average lags by minutes, so it may stay high after work has ended"
		}
		add(it)
	} else {
		add(Item{Name: "load average", Found: "not readable: " + err.Error(), Status: Warn, Fix: "check that " + cfg.ProcFS + " is a mounted procfs"})
	}

	add(containersItem(ctx, cfg.Engine, cfg.RunID))
	add(governorItem(cfg.SysFS))
	add(turboItem(cfg.SysFS))

	// Swap.
	if swapErr == nil {
		swapAfter, _ := readSwapped(cfg.ProcFS)
		add(swapItem(cfg.ProcFS, swapAfter-swapBefore))
	} else {
		add(Item{Name: "swap", Found: "not readable: " + swapErr.Error(), Status: OK})
	}

	// Thermal throttling.
	throttleAfter, _ := readThrottle(cfg.SysFS)
	switch {
	case throttleN == 0:
		add(Item{Name: "thermal throttling", Found: "no throttle counters exposed (thermal_throttle: Intel, bare metal)", Status: OK})
	case throttleAfter > throttleBefore:
		add(Item{Name: "thermal throttling", Found: fmt.Sprintf("%d throttling events during the check", throttleAfter-throttleBefore), Status: Warn,
			Fix: "let the machine cool and check its fans: a throttled CPU runs slower, so figures differ from run to run"})
	default:
		add(Item{Name: "thermal throttling", Found: fmt.Sprintf("none during the check (%d events since boot)", throttleAfter), Status: OK})
	}

	for _, f := range findings {
		for _, it := range meterItems(f, th) {
			add(it)
		}
	}

	add(clockItem(cfg.Clock))
	return rep, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func foreignItem(f *runstore.ForeignCPU, cpus int, th validity.Thresholds) Item {
	it := Item{Name: "other processes' CPU", Status: OK, Check: validity.CheckForeignCPU, Observed: f.Share, Limit: th.ForeignCPUShare, Unit: validity.UnitShare}
	it.Found = fmt.Sprintf("%s of %d CPUs", pct(f.Share), cpus)
	if names := validity.ProcessList(f.Top, th.ForeignCPUShare); names != "" {
		it.Found += ": " + names
	}
	if f.Share > th.ForeignCPUShare {
		it.Status = Busy
		it.Found += fmt.Sprintf("; above %s", pct(th.ForeignCPUShare))
		it.Fix = "stop or pause them (kill PID, or wait until they finish); --checks warn runs anyway and marks the run invalid"
	}
	return it
}

func containersItem(ctx context.Context, eng Engine, runID string) Item {
	it := Item{Name: "containers", Status: OK}
	if eng == nil {
		it.Found = "no container engine reachable"
		return it
	}
	foreign, leftovers, err := otherContainers(ctx, eng, runID)
	if err != nil {
		it.Found = "cannot list: " + err.Error()
		it.Status = Warn
		it.Fix = "check the Docker Engine (docker ps)"
		return it
	}
	switch {
	case len(foreign) == 0 && len(leftovers) == 0 && runID == "":
		it.Found = "none running"
	case len(foreign) == 0 && len(leftovers) == 0:
		it.Found = "none running besides the run's own"
	default:
		it.Status = Warn
		var parts, fixes []string
		if len(leftovers) > 0 {
			parts = append(parts, fmt.Sprintf("%d left by earlier harness runs (%s)", len(leftovers), list(leftovers)))
			fixes = append(fixes, "harness clean")
		}
		if len(foreign) > 0 {
			parts = append(parts, fmt.Sprintf("%d others running (%s)", len(foreign), list(foreign)))
			fixes = append(fixes, "docker stop "+strings.Join(foreign[:min(len(foreign), 3)], " "))
		}
		it.Found = strings.Join(parts, "; ")
		it.Fix = strings.Join(fixes, "; ") + " (idle containers cost little; busy ones show in other processes' CPU)"
	}
	return it
}

func list(names []string) string {
	if len(names) > 5 {
		return strings.Join(names[:5], ", ") + ", ..."
	}
	return strings.Join(names, ", ")
}

func governorItem(sysfs string) Item {
	it := Item{Name: "CPU frequency governor", Status: OK}
	paths, _ := filepath.Glob(filepath.Join(sysfs, "devices/system/cpu/cpu[0-9]*/cpufreq/scaling_governor"))
	count := map[string]int{}
	for _, p := range paths {
		if g := readTrim(p); g != "" {
			count[g]++
		}
	}
	if len(count) == 0 {
		it.Found = "not exposed (no cpufreq here: a virtual machine, or frequency run by the firmware)"
		return it
	}
	var parts []string
	for _, g := range sortedKeys(count) {
		parts = append(parts, fmt.Sprintf("%s on %d CPUs", g, count[g]))
	}
	it.Found = strings.Join(parts, ", ")
	if len(count) > 1 || count["performance"] == 0 {
		it.Status = Warn
		it.Fix = "for repeatable figures: sudo cpupower frequency-set -g performance (the frequency then does not follow the load)"
	}
	return it
}

func turboItem(sysfs string) Item {
	it := Item{Name: "turbo / boost", Status: OK}
	switch {
	case readTrim(filepath.Join(sysfs, "devices/system/cpu/intel_pstate/no_turbo")) == "0":
		it.Found, it.Status = "on (intel_pstate)", Warn
		it.Fix = "for repeatable figures: echo 1 | sudo tee /sys/devices/system/cpu/intel_pstate/no_turbo"
	case readTrim(filepath.Join(sysfs, "devices/system/cpu/intel_pstate/no_turbo")) == "1":
		it.Found = "off (intel_pstate)"
	case readTrim(filepath.Join(sysfs, "devices/system/cpu/cpufreq/boost")) == "1":
		it.Found, it.Status = "on (cpufreq boost)", Warn
		it.Fix = "for repeatable figures: echo 0 | sudo tee /sys/devices/system/cpu/cpufreq/boost"
	case readTrim(filepath.Join(sysfs, "devices/system/cpu/cpufreq/boost")) == "0":
		it.Found = "off (cpufreq boost)"
	default:
		it.Found = "not exposed"
	}
	if it.Status == Warn {
		it.Found += ": the frequency depends on temperature and on how many cores are busy"
	}
	return it
}

func swapItem(procfs string, moved int64) Item {
	it := Item{Name: "swap", Status: OK}
	total, free, err := readSwapKB(procfs)
	switch {
	case err != nil:
		it.Found = "not readable: " + err.Error()
	case total == 0:
		it.Found = "no swap configured"
	default:
		it.Found = fmt.Sprintf("%d MiB of %d MiB in use", (total-free)/1024, total/1024)
	}
	if moved > 0 {
		it.Status = Warn
		it.Found += fmt.Sprintf("; %d pages swapped during the check", moved)
		it.Fix = "free memory (stop other programs): swapping costs time and energy that belong to no target"
	} else if err == nil && total > free {
		it.Found += ", none moved during the check"
	}
	return it
}

func meterItems(f MeterFinding, th validity.Thresholds) []Item {
	it := Item{Name: "meter " + f.Label, Status: OK}
	switch {
	case f.Err != nil:
		it.Status, it.Found = Warn, "cannot read: "+f.Err.Error()
		it.Fix = "see harness meters list for what is readable and how to grant access"
		return []Item{it}
	case f.Samples == 0:
		it.Status, it.Found = Warn, fmt.Sprintf("no samples in %v", th.SystemWindow)
		it.Fix = "check the device's connection (harness meters record --meter SPEC --duration 5s)"
		return []Item{it}
	}
	rng := "no power readings"
	if !math.IsNaN(f.MinW) {
		rng = fmt.Sprintf("%.3g-%.3g W", f.MinW, f.MaxW)
	}
	it.Found = fmt.Sprintf("%d samples in %v, %s", f.Samples, th.SystemWindow, rng)
	if f.Samples >= 2 && !f.JoulesMoved && (math.IsNaN(f.MinW) || f.MinW == f.MaxW) && !f.Model {
		it.Status = Warn
		it.Found += "; readings did not change"
		it.Fix = "a stuck meter reads the same value: check the device and its driver"
	}
	out := []Item{it}
	if f.Model || f.CeilingW > 0 {
		c := Item{Name: "meter " + f.Label + " ceiling", Status: OK}
		switch {
		case f.CeilingW <= 0:
			c.Found = "not known: saturation cannot be checked"
		default:
			c.Found = fmt.Sprintf("%.3g W (%s)", f.CeilingW, f.CeilingWhy)
			if share := float64(f.AtCeiling) / float64(f.Samples); share > th.SaturatedShare {
				c.Status = Warn
				c.Found += fmt.Sprintf("; %d of %d samples at it now", f.AtCeiling, f.Samples)
				c.Fix = "the reading is clipped now: for a model, the machine is fully busy, so an idle baseline would be full load"
			}
		}
		out = append(out, c)
	}
	return out
}

// ClockState is the kernel's view of the clock's synchronisation.
type ClockState struct {
	Synchronised bool
	MaxErrorUs   int64 // the kernel's maximum error estimate, microseconds
	EstErrorUs   int64
}

func clockItem(read func() (ClockState, error)) Item {
	it := Item{Name: "clock synchronisation", Status: OK}
	st, err := read()
	switch {
	case err != nil:
		it.Found = "not readable: " + err.Error()
	case st.Synchronised:
		it.Found = fmt.Sprintf("synchronised (estimated error %s)", us(st.EstErrorUs))
	default:
		it.Status = Warn
		it.Found = fmt.Sprintf("not synchronised (maximum error %s): remote meters' samples and run dates may be off", us(st.MaxErrorUs))
		it.Fix = "enable time synchronisation: sudo timedatectl set-ntp true (or start chronyd / ntpd)"
	}
	return it
}

func us(v int64) string {
	return (time.Duration(v) * time.Microsecond).String()
}

// readSwapped is the number of pages swapped in and out since boot
// (/proc/vmstat pswpin + pswpout).
func readSwapped(procfs string) (int64, error) {
	f, err := os.Open(filepath.Join(procfs, "vmstat"))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var n int64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), " ")
		if k == "pswpin" || k == "pswpout" {
			x, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			n += x
		}
	}
	return n, sc.Err()
}

func readSwapKB(procfs string) (total, free int64, err error) {
	f, err := os.Open(filepath.Join(procfs, "meminfo"))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	found := 0
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		x, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "SwapTotal":
			total, found = x, found+1
		case "SwapFree":
			free, found = x, found+1
		}
	}
	if found < 2 && sc.Err() == nil {
		return 0, 0, errors.New("no SwapTotal/SwapFree in meminfo")
	}
	return total, free, sc.Err()
}

// readThrottle sums the thermal throttling counters of every CPU and says
// how many counters it found.
func readThrottle(sysfs string) (events int64, counters int) {
	paths, _ := filepath.Glob(filepath.Join(sysfs, "devices/system/cpu/cpu[0-9]*/thermal_throttle/*_throttle_count"))
	for _, p := range paths {
		if v, err := strconv.ParseInt(readTrim(p), 10, 64); err == nil {
			events += v
			counters++
		}
	}
	return events, counters
}

func readTrim(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func sortedKeys(m map[string]int) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func pct(f float64) string {
	if f >= 0.1 {
		return fmt.Sprintf("%.0f %%", f*100)
	}
	return fmt.Sprintf("%.1f %%", f*100)
}
