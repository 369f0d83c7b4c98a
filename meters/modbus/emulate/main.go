package emulate

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// Usage is the emulator's flags in one line, for `harness meters emulate`.
const Usage = "--listen HOST:PORT [--watts W | --trace FILE.csv] [--voltage V] [--pf X] [--frequency HZ] [--energy-start WH] [--outlets N] [--speed X] [--drop-every N --drop-for D] [--exception NAME|CODE]"

// Main parses args (the flags after the emulator's name), prints the
// address it serves on, and serves until ctx is done.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("gude-1105", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:1502", "`HOST:PORT` to listen on (port 0 picks a free one)")
	watts := fs.String("watts", "", "constant power `W` of the outlet (default 40 W)")
	trace := fs.String("trace", "", "power trace `FILE.csv` (t_s,watts, or a samples.csv) instead of --watts")
	voltage := fs.Float64("voltage", 230, "line voltage in `V`")
	pf := fs.Float64("pf", 1, "power factor")
	freq := fs.Float64("frequency", 50, "line frequency in `Hz`")
	estart := fs.Float64("energy-start", 1000, "absolute energy counter at start, in `Wh`")
	outlets := fs.Int("outlets", 1, "metered outlets, each serving the trace; the line serves their sum")
	speed := fs.Float64("speed", 1, "emulated time runs `X` times faster (the energy counter climbs faster)")
	dropEvery := fs.Int("drop-every", 0, "drop all connections after every `N`-th measurement request")
	dropFor := fs.Duration("drop-for", time.Second, "after a drop, refuse connections for this `duration`")
	exception := fs.String("exception", "", "answer every measurement request with this Modbus exception (`NAME or CODE`: busy, device-failure, illegal-address, 6, ...)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: harness meters emulate gude-1105 %s\n\nServes a power trace over Modbus TCP through the Gude Expert Power Control 1105 register map.\n\n", Usage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("gude-1105 emulator: unexpected argument %q", fs.Arg(0))
	}
	cfg := Config{Voltage: *voltage, PowerFactor: *pf, Frequency: *freq, EnergyStartWh: *estart,
		Outlets: *outlets, DropEvery: *dropEvery, DropFor: *dropFor, Log: stderr}
	var problems []string
	switch {
	case *watts != "" && *trace != "":
		problems = append(problems, "--watts and --trace exclude each other")
	case *trace != "":
		f, err := os.Open(*trace)
		if err != nil {
			problems = append(problems, err.Error())
			break
		}
		cfg.Trace, err = ReadTrace(f)
		f.Close()
		if err != nil {
			problems = append(problems, fmt.Sprintf("--trace %s: %v", *trace, err))
		}
	case *watts != "":
		w, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(*watts), "W"), 64)
		if err != nil {
			problems = append(problems, fmt.Sprintf("--watts %q is not a power in watts", *watts))
		}
		cfg.Trace = Constant(w)
	}
	if *exception != "" {
		e, err := ParseException(*exception)
		if err != nil {
			problems = append(problems, "--exception: "+err.Error())
		}
		cfg.Exception = e
	}
	if *speed <= 0 {
		problems = append(problems, "--speed must be positive")
	} else if *speed != 1 {
		t0, s := time.Now(), *speed
		cfg.Clock = func() time.Time { return t0.Add(time.Duration(float64(time.Since(t0)) * s)) }
	}
	if *voltage <= 0 || *pf <= 0 || *pf > 1 || *outlets <= 0 {
		problems = append(problems, "--voltage and --outlets must be positive and --pf in (0,1]")
	}
	if len(problems) > 0 {
		return fmt.Errorf("gude-1105 emulator: %s", strings.Join(problems, "; "))
	}
	srv, err := Start(*listen, cfg)
	if err != nil {
		return err
	}
	defer srv.Close()
	what := "40 W"
	if *trace != "" {
		what = "trace " + *trace
	} else if *watts != "" {
		what = strings.TrimSuffix(strings.TrimSpace(*watts), "W") + " W"
	}
	fmt.Fprintf(stdout, "gude-1105 emulator listening on %s (%s); meter spec: modbus:%s?map=gude-1105\n", srv.Addr(), what, srv.Addr())
	<-ctx.Done()
	return nil
}
