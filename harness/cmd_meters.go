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
	"slices"
	"strconv"
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

// parseOnly parses fs and refuses positional arguments. It returns the
// exit code to use, or -1 to go on.
func parseOnly(fs *flag.FlagSet, args []string, stderr io.Writer) int {
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "%s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		fs.Usage()
		return exitUsage
	}
	return -1
}

func metersList(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("harness meters list", flag.ContinueOnError)
	fs.SetOutput(stderr)
	env := envFlags(fs)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: harness meters list [flags]\n\nLists what every meter driver finds, usable or not and why, and which meter auto would take.\n\nFlags:")
		fs.PrintDefaults()
	}
	if code := parseOnly(fs, args, stderr); code >= 0 {
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
type channelStats struct {
	n              int
	firstT, lastT  time.Time
	firstJ, lastJ  float64 // first and last finite cumulative joules
	hasJ           bool
	integrated     float64 // trapezoid of watts, for meters that give no joules
	prevW          float64
	prevT          time.Time
	hasW           bool
	wattsOnlySince time.Time
}

func (c *channelStats) add(s meters.Sample) {
	if c.n == 0 {
		c.firstT = s.T
	}
	c.n++
	c.lastT = s.T
	if !math.IsNaN(s.Joules) {
		if !c.hasJ {
			c.firstJ, c.hasJ = s.Joules, true
		}
		c.lastJ = s.Joules
	}
	if !math.IsNaN(s.Watts) {
		if c.hasW {
			c.integrated += (c.prevW + s.Watts) / 2 * s.T.Sub(c.prevT).Seconds()
		} else {
			c.wattsOnlySince = s.T
		}
		c.prevW, c.prevT, c.hasW = s.Watts, s.T, true
	}
}

// energy is the channel's energy over the recording and the span it
// covers: from its cumulative joules when it has them (counters are taken
// as they are), else the trapezoid of its watts.
func (c *channelStats) energy() (joules float64, span time.Duration, ok bool) {
	if c.hasJ && c.lastT.After(c.firstT) {
		return c.lastJ - c.firstJ, c.lastT.Sub(c.firstT), true
	}
	if c.hasW && c.prevT.After(c.wattsOnlySince) {
		return c.integrated, c.prevT.Sub(c.wattsOnlySince), true
	}
	return 0, 0, false
}

func metersRecord(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("harness meters record", flag.ContinueOnError)
	fs.SetOutput(stderr)
	env := envFlags(fs)
	spec := fs.String("meter", "", "meter spec, e.g. rapl, estimate, auto, pmd-usb:/dev/ttyUSB0 (required)")
	duration := fs.Duration("duration", 5*time.Second, "how long to record")
	out := fs.String("out", "", "write every sample to this CSV file (the samples.csv format)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: harness meters record --meter SPEC [flags]\n\nRecords from one meter, then prints the mean power of each channel and the energy of the meter's total.\n\nFlags:")
		fs.PrintDefaults()
	}
	if code := parseOnly(fs, args, stderr); code >= 0 {
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

	var csvw *bufio.Writer
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			fmt.Fprintf(stderr, "harness meters record: %v\n", err)
			return exitFail
		}
		defer f.Close()
		csvw = bufio.NewWriter(f)
		fmt.Fprintln(csvw, strings.Join(runstore.SamplesHeader, ","))
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
	var row []byte
	emit := func(s meters.Sample) {
		if s.Channel < 0 || s.Channel >= len(stats) {
			return
		}
		stats[s.Channel].add(s)
		total++
		if csvw != nil {
			row = appendSampleRow(row[:0], info.Name, s)
			csvw.Write(row)
		}
		if now := clock.Now(); now.After(nextProgress) {
			fmt.Fprintf(stderr, "  %v / %v, %d samples\n", now.Sub(start).Round(100*time.Millisecond), *duration, total)
			nextProgress = nextProgress.Add(time.Second)
		}
	}
	runErr := m.Run(ctx, emit)
	if csvw != nil {
		if err := csvw.Flush(); err != nil {
			fmt.Fprintf(stderr, "harness meters record: writing %s: %v\n", *out, err)
			return exitFail
		}
	}
	printRecordSummary(stdout, info, stats, total)
	if r, ok := m.(meters.Reporter); ok {
		printMeterReport(stdout, r.Report())
	}
	if *out != "" {
		fmt.Fprintf(stdout, "samples written to %s\n", *out)
	}
	if runErr != nil {
		fmt.Fprintf(stderr, "harness meters record: %s stopped: %v\n", info.Name, runErr)
		return exitFail
	}
	return exitOK
}

// printMeterReport writes what the meter says of its own recording: gaps,
// the clock fit of a device with its own clock, counters and warnings, so
// that a recording's troubles show without opening run.json.
func printMeterReport(w io.Writer, rep meters.Report) {
	for _, g := range rep.Gaps {
		fmt.Fprintf(w, "gap: %v from %s: %s\n", g.End.Sub(g.Start).Round(time.Millisecond), g.Start.UTC().Format("15:04:05.000"), g.Reason)
	}
	if f := rep.ClockFit; f != nil {
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

// appendSampleRow appends one samples.csv row: meter,channel,t_ns,watts,joules.
// NaN is written as NaN, which pandas and R read as missing.
func appendSampleRow(b []byte, meter string, s meters.Sample) []byte {
	if strings.ContainsAny(meter, ",\"\n\r") {
		b = append(b, '"')
		b = append(b, strings.ReplaceAll(meter, `"`, `""`)...)
		b = append(b, '"')
	} else {
		b = append(b, meter...)
	}
	b = append(b, ',')
	b = strconv.AppendInt(b, int64(s.Channel), 10)
	b = append(b, ',')
	b = strconv.AppendInt(b, s.T.UnixNano(), 10)
	b = append(b, ',')
	b = strconv.AppendFloat(b, s.Watts, 'g', -1, 64) // NaN comes out as "NaN"
	b = append(b, ',')
	b = strconv.AppendFloat(b, s.Joules, 'g', -1, 64)
	return append(b, '\n')
}

func printRecordSummary(w io.Writer, info meters.Info, stats []channelStats, total int) {
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
	fmt.Fprintf(tw, "channel\tsamples\t%s\tenergy\tin total\n", power)
	var totJ float64
	var totSpan time.Duration
	var inTotal []string
	totOK := true
	for i, ch := range info.Channels {
		st := stats[i]
		j, span, ok := st.energy()
		mean, energy := "n/a", "n/a"
		if ok {
			mean = fmt.Sprintf("%.3f W", j/span.Seconds())
			energy = fmt.Sprintf("%.3f J", j)
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
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", ch.Name, st.n, mean, energy, yes)
	}
	tw.Flush()
	name := meters.Label("total", info.Kind)
	switch {
	case len(inTotal) == 0:
		fmt.Fprintf(w, "%s: no channel counts toward the total\n", name)
	case !totOK || totSpan <= 0:
		fmt.Fprintf(w, "%s (%s): not enough samples\n", name, strings.Join(inTotal, " + "))
	default:
		fmt.Fprintf(w, "%s (%s): %.3f J over %v, mean %.3f W\n", name, strings.Join(inTotal, " + "), totJ, totSpan.Round(time.Millisecond), totJ/totSpan.Seconds())
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
