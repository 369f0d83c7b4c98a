package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/academemes/harness/harness/internal/validity"
	"github.com/academemes/harness/harness/internal/validity/machine"
	"github.com/academemes/harness/meters"
)

// cmdDoctor is `harness doctor`: the system check a run makes before its
// load, alone, as a table of what it found and how to fix each item.
func cmdDoctor(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("harness doctor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	meter := fs.String("meter", "auto", "the meter spec to check (readable and moving, and for the estimate its ceiling); \"\" leaves it out")
	env := envFlags(fs)
	fs.Usage = func() {
		fmt.Fprintln(stderr, `Usage: harness doctor [--meter SPEC] [--path.procfs DIR] [--path.sysfs DIR]

Checks, for about a second, whether this machine is fit to measure: other
processes using CPU, load average, containers the harness did not create,
frequency governor and turbo, swap, thermal throttling, the meter, and the
clock's synchronisation. Prints a table (item, found, status, fix).
Status: ok; warn (figures may vary more than they need to); busy (other
work would land in the figures: harness run --checks strict refuses to
start). Exit 0 when nothing is busy, 1 when something is.

Flags:`)
		fs.PrintDefaults()
	}
	if code, ok := parseNoArgs(fs, args, stderr); !ok {
		return code
	}
	e := env()
	ctx := context.Background()
	cfg := machine.Config{
		ProcFS: e.ProcfsRoot, SysFS: e.SysfsRoot, Thresholds: validity.Default(),
		// Alone, nothing but the doctor itself is the harness's own.
		Classifier: machine.Classifier{Self: os.Getpid()},
	}
	if eng, err := machine.ConnectEngine(ctx); err == nil {
		defer eng.Close()
		cfg.Engine = eng
	}
	if *meter != "" {
		sp, err := meters.ParseSpec(*meter)
		if err == nil && sp.Driver != "auto" {
			if _, ok := meters.Lookup(sp.Driver); !ok {
				err = fmt.Errorf("%w: unknown driver %q (harness meters --help lists them)", meters.ErrSpec, sp.Driver)
			}
		}
		if err != nil {
			fmt.Fprintf(stderr, "harness doctor: --meter: %v\n", err)
			return exitUsage
		}
		cfg.Meter = machine.OpenProbe([]string{*meter}, e, cfg.Thresholds.SaturationMargin)
	}
	rep, err := machine.Check(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "harness doctor: %v\n", err)
		return exitFail
	}
	rep.WriteTable(stdout)
	if busy := rep.Busy(); len(busy) > 0 {
		fmt.Fprintf(stdout, "\nbusy: a run now would measure other work too (harness run --checks strict refuses to start)\n")
		return exitFail
	}
	return exitOK
}
