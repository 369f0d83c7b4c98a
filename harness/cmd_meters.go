package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/academemes/harness/clock"
	"github.com/academemes/harness/harness/internal/runstore"
	"github.com/academemes/harness/meters"
)

// cmdMeters is `harness meters list|record|emulate`.
func cmdMeters(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		metersUsage(stderr)
		return exitUsage
	}
	switch args[0] {
	case "-h", "--help", "help":
		metersUsage(stdout)
		return exitOK
	case "list":
		return metersList(args[1:], stdout, stderr)
	case "record":
		return metersRecord(args[1:], stdout, stderr)
	case "emulate":
		return metersEmulate(args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "harness meters: unknown subcommand %q\n\n", args[0])
	metersUsage(stderr)
	return exitUsage
}

func metersUsage(w io.Writer) {
	fmt.Fprint(w, `Usage:
  harness meters list    [--path.sysfs DIR] [--path.procfs DIR] [--fixture]
      what every meter driver finds on this machine, and which one auto takes
  harness meters record  --meter SPEC [--duration D] [--out FILE.csv] [--path.sysfs DIR] [--path.procfs DIR] [--fixture]
      record from one meter; print mean power per channel and the total energy
  harness meters emulate NAME [flags]
      run a device emulator, so a driver can be tried without the device

Meter specs (driver[:arg][?key=value&...]; see the README for the grammar):
  auto  the best available: readable RAPL, then a serial meter, then the estimate
`)
	for _, d := range meters.Drivers() {
		fmt.Fprintf(w, "  %s\n", d.Usage)
	}
	fmt.Fprintln(w, "\nEmulators:")
	emus := meters.Emulators()
	if len(emus) == 0 {
		fmt.Fprintln(w, "  (none built in)")
	}
	for _, e := range emus {
		fmt.Fprintf(w, "  %-14s %s\n", e.Name, e.Usage)
	}
}

// envFlags adds the hardware-root flags every meters subcommand takes.
func envFlags(fs *flag.FlagSet) func() meters.Env {
	sysfs := fs.String("path.sysfs", "/sys", "sysfs root (/host/sys in a container; a fixture tree in tests)")
	procfs := fs.String("path.procfs", "/proc", "procfs root")
	fixture := fs.Bool("fixture", false, "the roots hold a fixture tree, not a machine: do not expect its counters to move (tests)")
	return func() meters.Env {
		return meters.Env{SysfsRoot: *sysfs, ProcfsRoot: *procfs, Fixture: *fixture}.WithDefaults()
	}
}

func metersList(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("harness meters list", flag.ContinueOnError)
	fs.SetOutput(stderr)
	env := envFlags(fs)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: harness meters list [flags]\n\nLists what every meter driver finds, usable or not and why, and which meter auto would take.\n\nFlags:")
		fs.PrintDefaults()
	}
	if code, ok := parseNoArgs(fs, args, stderr); !ok {
		return code
	}
	e := env()
	for _, d := range meters.Drivers() {
		rank := "not in auto"
		if d.AutoRank > 0 {
			rank = fmt.Sprintf("auto rank %d", d.AutoRank)
		}
		fmt.Fprintf(stdout, "%s (%s)\n", d.Name, rank)
		if d.Detect == nil {
			fmt.Fprintf(stdout, "  cannot detect (give its address): %s\n\n", d.Usage)
			continue
		}
		cands := d.Detect(e)
		if len(cands) == 0 {
			fmt.Fprintln(stdout, "  none found")
		}
		for _, c := range cands {
			state := "usable"
			if !c.Usable {
				state = "NOT usable"
			}
			fmt.Fprintf(stdout, "  %-24s %s: %s\n", c.Spec, state, c.Description)
			for _, line := range c.Details {
				fmt.Fprintf(stdout, "      %s\n", line)
			}
			if !c.Usable && c.Reason != "" {
				fmt.Fprintf(stdout, "    why: %s\n", strings.ReplaceAll(c.Reason, "\n", "\n         "))
			}
		}
		fmt.Fprintln(stdout)
	}
	m, notes, err := meters.Auto(e)
	if err != nil {
		fmt.Fprintf(stdout, "auto would take: nothing (%v)\n", err)
		return exitOK
	}
	fmt.Fprintf(stdout, "auto would take: %s\n", m.Info().Label())
	for _, n := range notes {
		fmt.Fprintf(stdout, "  %s\n", n)
	}
	return exitOK
}

// channelStats accumulates what `meters record` prints for one channel.
// Energy and time are summed per interval between consecutive samples, so
// that the intervals a gap spans can be left out once the meter's report
// lists its gaps: mean power is over the time the meter covered, never
// over a gap (a PMD-USB that vanished for 3 s of 5 would otherwise read
// at two fifths of its power).
type channelStats struct {
	n    int
	prev meters.Sample
	// Intervals shorter than gapCheckMin are summed as they come: a gap
	// that short could not move the figures by more than its length.
	// Longer ones are kept for the check against the gaps.
	shortJ float64
	short  time.Duration
	long   []interval
}

// gapCheckMin is the shortest interval checked against the meter's gaps.
// At 50 ms at most 20 intervals a second per channel are kept, however
// fast the meter samples.
const gapCheckMin = 50 * time.Millisecond

// interval is the energy between two consecutive samples of a channel.
type interval struct {
	start, end time.Time
	joules     float64
}

func (c *channelStats) add(s meters.Sample) {
	if c.n > 0 {
		if j, ok := intervalEnergy(c.prev, s); ok {
			if d := s.T.Sub(c.prev.T); d < gapCheckMin {
				c.shortJ += j
				c.short += d
			} else {
				c.long = append(c.long, interval{c.prev.T, s.T, j})
			}
		}
	}
	c.n++
	c.prev = s
}

// intervalEnergy is the energy between two samples of one channel: the
// difference of their cumulative joules when both have them (counters are
// taken as they are), else the trapezoid of their watts.
func intervalEnergy(a, b meters.Sample) (float64, bool) {
	if !b.T.After(a.T) {
		return 0, false
	}
	if !math.IsNaN(a.Joules) && !math.IsNaN(b.Joules) {
		return b.Joules - a.Joules, true
	}
	if !math.IsNaN(a.Watts) && !math.IsNaN(b.Watts) {
		return (a.Watts + b.Watts) / 2 * b.T.Sub(a.T).Seconds(), true
	}
	return 0, false
}

// energy is the channel's energy over the time it covered, and that time:
// every interval between two samples but those that overlap a gap.
func (c *channelStats) energy(gaps []meters.Gap) (joules float64, covered time.Duration, ok bool) {
	joules, covered = c.shortJ, c.short
	for _, iv := range c.long {
		if !overlapsGap(iv.start, iv.end, gaps) {
			joules += iv.joules
			covered += iv.end.Sub(iv.start)
		}
	}
	return joules, covered, covered > 0
}

func overlapsGap(start, end time.Time, gaps []meters.Gap) bool {
	for _, g := range gaps {
		if start.Before(g.End) && end.After(g.Start) {
			return true
		}
	}
	return false
}

func metersRecord(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("harness meters record", flag.ContinueOnError)
	fs.SetOutput(stderr)
	env := envFlags(fs)
	spec := fs.String("meter", "", "meter spec, e.g. rapl, estimate, auto, pmd-usb:/dev/ttyUSB0 (required)")
	duration := fs.Duration("duration", 5*time.Second, "how long to record")
	out := fs.String("out", "", "write every sample to this CSV file (the samples.csv format), and what its meter and channels are to FILE.meta.json beside it")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: harness meters record --meter SPEC [flags]\n\nRecords from one meter, then prints the mean power of each channel over the time the meter covered\n(gaps left out and listed) and the energy of the meter's total.\n\nFlags:")
		fs.PrintDefaults()
	}
	if code, ok := parseNoArgs(fs, args, stderr); !ok {
		return code
	}
	if *spec == "" {
		fmt.Fprintln(stderr, "harness meters record: --meter is required")
		fs.Usage()
		return exitUsage
	}
	if *duration <= 0 {
		fmt.Fprintf(stderr, "harness meters record: --duration %v: want a positive duration such as 5s\n", *duration)
		return exitUsage
	}
	e := env()
	e.Log = stderr
	m, notes, err := meters.Open(*spec, e)
	for _, n := range notes {
		fmt.Fprintln(stderr, n)
	}
	if err != nil {
		fmt.Fprintf(stderr, "harness meters record: %v\n", err)
		if errors.Is(err, meters.ErrSpec) {
			return exitUsage
		}
		return exitFail
	}
	info := m.Info()

	var rec *recordingFile
	if *out != "" {
		rec, err = createRecording(*out, info, notes)
		if err != nil {
			fmt.Fprintf(stderr, "harness meters record: %v\n", err)
			return exitFail
		}
		defer rec.close()
	}

	fmt.Fprintf(stderr, "recording %s for %v: %s\n", info.Label(), *duration, info.Description)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *duration)
	defer cancel()

	stats := make([]channelStats, len(info.Channels))
	start := clock.Now()
	nextProgress := start.Add(time.Second)
	total := 0
	emit := func(s meters.Sample) {
		if s.Channel < 0 || s.Channel >= len(stats) {
			return
		}
		stats[s.Channel].add(s)
		total++
		if rec != nil {
			rec.add(s)
		}
		if now := clock.Now(); now.After(nextProgress) {
			fmt.Fprintf(stderr, "  %v / %v, %d samples\n", now.Sub(start).Round(100*time.Millisecond), *duration, total)
			nextProgress = nextProgress.Add(time.Second)
		}
	}
	runErr := m.Run(ctx, emit)
	var rep meters.Report
	if r, ok := m.(meters.Reporter); ok {
		rep = r.Report()
	}
	printRecordSummary(stdout, info, stats, total, rep.Gaps)
	printMeterReport(stdout, rep)
	if rec != nil {
		if err := rec.finish(rep, runErr); err != nil {
			fmt.Fprintf(stderr, "harness meters record: %v\n", err)
			return exitFail
		}
		fmt.Fprintf(stdout, "samples written to %s, what its channels are to %s\n", *out, rec.metaPath)
	}
	if runErr != nil {
		fmt.Fprintf(stderr, "harness meters record: %s stopped: %v\n", info.Name, runErr)
		return exitFail
	}
	return exitOK
}

// recordingFile is a standalone recording being written: the samples in
// the samples.csv format, and beside it the sidecar that says what they
// are (runstore.Recording).
type recordingFile struct {
	path, metaPath string
	f              *os.File
	w              *bufio.Writer
	row            []byte
	meta           runstore.Recording
}

// createRecording creates the samples file at path with its header, and
// its sidecar, at once: a recording cut short still says what it holds.
func createRecording(path string, info meters.Info, notes []string) (*recordingFile, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	r := &recordingFile{path: path, metaPath: runstore.RecordingPath(path), f: f, w: bufio.NewWriter(f)}
	r.meta = runstore.Recording{Format: runstore.Format, Samples: filepath.Base(path), Started: clock.Now(), Meter: runstore.MeterMetaFrom(info)}
	r.meta.Meter.Notes = notes
	r.w.WriteString(strings.Join(runstore.SamplesHeader, ",") + "\n")
	if err := runstore.WriteJSON(r.metaPath, r.meta); err != nil {
		f.Close()
		return nil, err
	}
	return r, nil
}

func (r *recordingFile) add(s meters.Sample) {
	r.row = runstore.AppendSampleRow(r.row[:0], runstore.SampleFrom(r.meta.Meter.Name, s))
	r.w.Write(r.row)
}

// finish writes the last samples, and the meter's report and how it
// stopped to the sidecar.
func (r *recordingFile) finish(rep meters.Report, runErr error) error {
	if err := errors.Join(r.w.Flush(), r.f.Close()); err != nil {
		return fmt.Errorf("writing %s: %w", r.path, err)
	}
	r.meta.Ended = clock.Now()
	r.meta.Meter.Report = runstore.MeterReportFrom(rep)
	if runErr != nil {
		r.meta.Meter.Error = runErr.Error()
	}
	return runstore.WriteJSON(r.metaPath, r.meta)
}

// close closes the samples file if finish did not.
func (r *recordingFile) close() { r.f.Close() }

// printMeterReport writes what the meter says of its own recording: gaps,
// the clock fit of a device with its own clock, counters and warnings, so
// that a recording's troubles show without opening run.json.
func printMeterReport(w io.Writer, rep meters.Report) {
	for _, g := range rep.Gaps {
		fmt.Fprintf(w, "gap: %v from %s: %s\n", g.End.Sub(g.Start).Round(time.Millisecond), g.Start.UTC().Format("15:04:05.000"), g.Reason)
	}
	if f := rep.ClockFit; f != nil && f.BoundNs > 0 {
		// A remote clock from round trips: what the bound says matters more
		// than the residual.
		fmt.Fprintf(w, "clock fit: offset %+.3f ms, drift %.2f ± %.2f ppm, every sample time within ± %.3f ms (bound), from %d exchanges\n",
			f.OffsetNs/1e6, f.DriftPPM, f.DriftBoundPPM, f.BoundNs/1e6, f.Points)
	} else if f != nil {
		fmt.Fprintf(w, "clock fit: drift %.2f ppm, residual %.3f ms RMS (max %.3f ms) over %d points\n", f.DriftPPM, f.ResidualRMSNs/1e6, f.ResidualMaxNs/1e6, f.Points)
	}
	if len(rep.Counters) > 0 {
		keys := slices.Sorted(maps.Keys(rep.Counters))
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = fmt.Sprintf("%s %d", k, rep.Counters[k])
		}
		fmt.Fprintf(w, "counters: %s\n", strings.Join(parts, ", "))
	}
	for _, warn := range rep.Warnings {
		fmt.Fprintf(w, "warning: %s\n", warn)
	}
}

// printRecordSummary prints each channel's mean power and energy over the
// time it covered, and the meter's total; the time lost in gaps is said
// beside the total, and each gap is listed by printMeterReport.
func printRecordSummary(w io.Writer, info meters.Info, stats []channelStats, total int, gaps []meters.Gap) {
	label := info.Label() // a model says "(estimate, model)" itself
	if info.Kind != meters.Model {
		label += " (" + string(info.Kind) + ")"
	}
	fmt.Fprintf(w, "meter %s: %d samples\n", label, total)
	fmt.Fprintf(w, "precision: %s\n", info.Precision)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	power := "mean power"
	if info.Kind == meters.Model {
		power = "mean power (estimate)"
	}
	fmt.Fprintf(tw, "channel\tsamples\t%s\tenergy\tcovered\tin total\n", power)
	var totJ float64
	var totSpan time.Duration
	var inTotal []string
	totOK := true
	for i, ch := range info.Channels {
		st := stats[i]
		j, span, ok := st.energy(gaps)
		mean, energy, covered := "n/a", "n/a", "n/a"
		if ok {
			mean = fmt.Sprintf("%.3f W", j/span.Seconds())
			energy = fmt.Sprintf("%.3f J", j)
			covered = span.Round(time.Millisecond).String()
		}
		yes := "no"
		if ch.InTotal {
			yes = "yes"
			inTotal = append(inTotal, ch.Name)
			if ok {
				totJ += j
				totSpan = max(totSpan, span)
			} else {
				totOK = false
			}
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", ch.Name, st.n, mean, energy, covered, yes)
	}
	tw.Flush()
	name := meters.Label("total", info.Kind)
	var lost time.Duration
	for _, g := range gaps {
		lost += g.End.Sub(g.Start)
	}
	inGaps := ""
	if len(gaps) > 0 {
		inGaps = fmt.Sprintf("; %v in %d gap(s) left out (below)", lost.Round(time.Millisecond), len(gaps))
	}
	switch {
	case len(inTotal) == 0:
		fmt.Fprintf(w, "%s: no channel counts toward the total\n", name)
	case !totOK || totSpan <= 0:
		fmt.Fprintf(w, "%s (%s): not enough samples%s\n", name, strings.Join(inTotal, " + "), inGaps)
	default:
		fmt.Fprintf(w, "%s (%s): %.3f J over %v covered, mean %.3f W%s\n", name, strings.Join(inTotal, " + "), totJ, totSpan.Round(time.Millisecond), totJ/totSpan.Seconds(), inGaps)
	}
}

func metersEmulate(args []string, stdout, stderr io.Writer) int {
	emus := meters.Emulators()
	var names []string
	for _, e := range emus {
		names = append(names, e.Name)
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		w := stdout
		if len(args) == 0 {
			w = stderr
		}
		fmt.Fprintln(w, "Usage: harness meters emulate NAME [flags]   (NAME --help for its flags)\n\nEmulators:")
		for _, e := range emus {
			fmt.Fprintf(w, "  %-14s %s\n", e.Name, e.Usage)
		}
		if len(emus) == 0 {
			fmt.Fprintln(w, "  (none built in)")
		}
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	for _, e := range emus {
		if e.Name != args[0] {
			continue
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		err := e.Run(ctx, args[1:], stdout, stderr)
		switch {
		case err == nil, errors.Is(err, context.Canceled):
			return exitOK
		case errors.Is(err, flag.ErrHelp):
			return exitOK
		}
		fmt.Fprintf(stderr, "harness meters emulate %s: %v\n", e.Name, err)
		return exitFail
	}
	fmt.Fprintf(stderr, "harness meters emulate: unknown emulator %q; known: %s\n", args[0], strings.Join(names, ", "))
	return exitUsage
}
