package emulate

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/academemes/harness/meters"
)

// Device is a device model that serves one connection.
type Device interface {
	Serve(ctx context.Context, rw io.ReadWriter) error
}

// Serve runs dev behind a pty linked at link, and calls ready with the
// link once the device is reachable. With faults.VanishAfter set, the pty
// closes after that long, and a fresh one (a device just powered up)
// appears at the same link faults.VanishFor later; this repeats.
func Serve(ctx context.Context, dev Device, link string, faults Faults, ready func(path string)) error {
	for first := true; ; first = false {
		p, err := OpenPty(link)
		if err != nil {
			return err
		}
		if first && ready != nil {
			ready(p.Link)
		}
		sctx, cancel := ctx, context.CancelFunc(func() {})
		if faults.VanishAfter > 0 {
			sctx, cancel = context.WithTimeout(ctx, faults.VanishAfter)
		}
		done := make(chan error, 1)
		go func() { done <- dev.Serve(sctx, p.Master) }()
		var serr error
		select {
		case serr = <-done:
		case <-sctx.Done():
			p.Master.Close() // unblock a write to a host that stopped reading
			serr = <-done
		}
		cancel()
		p.Close()
		if ctx.Err() != nil {
			return nil
		}
		if faults.VanishAfter <= 0 {
			return serr
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(faults.VanishFor):
		}
	}
}

// common flags of both emulators.
type flags struct {
	fs                     *flag.FlagSet
	link, watts, csv       string
	drop, corrupt          int
	vanishAfter, vanishFor time.Duration
	drift                  float64
}

func newFlags(name string, stderr io.Writer) *flags {
	f := &flags{fs: flag.NewFlagSet("emulate "+name, flag.ContinueOnError)}
	f.fs.SetOutput(stderr)
	f.fs.StringVar(&f.link, "link", "", "stable path (symbolic link) for the device; default a fresh temporary path")
	f.fs.StringVar(&f.watts, "watts", "50,30,20,10", "constant watts per channel, comma-separated (the last repeats)")
	f.fs.StringVar(&f.csv, "trace", "", "CSV trace: time_s,watts[,watts...] per row (overrides -watts)")
	f.fs.IntVar(&f.drop, "drop", 0, "drop one streamed byte in every N (0: none)")
	f.fs.IntVar(&f.corrupt, "corrupt", 0, "corrupt one streamed byte in every N (0: none)")
	f.fs.DurationVar(&f.vanishAfter, "vanish-after", 0, "the device disappears after this long (0: never)")
	f.fs.DurationVar(&f.vanishFor, "vanish-for", 2*time.Second, "and reappears at the same path after this long")
	f.fs.Float64Var(&f.drift, "drift-ppm", 0, "device clock error in ppm")
	return f
}

func (f *flags) parse(args []string) (Trace, Faults, error) {
	if err := f.fs.Parse(args); err != nil {
		return nil, Faults{}, err
	}
	if f.fs.NArg() > 0 {
		return nil, Faults{}, fmt.Errorf("unexpected arguments: %v", f.fs.Args())
	}
	faults := Faults{DropEvery: f.drop, CorruptEvery: f.corrupt, VanishAfter: f.vanishAfter, VanishFor: f.vanishFor}
	if f.csv != "" {
		fh, err := os.Open(f.csv)
		if err != nil {
			return nil, faults, fmt.Errorf("trace: %w", err)
		}
		defer fh.Close()
		tb, err := ReadCSV(fh)
		return tb, faults, err
	}
	c, err := ParseWatts(f.watts)
	return c, faults, err
}

func (f *flags) linkPath(name string) (string, func(), error) {
	if f.link != "" {
		return f.link, func() {}, nil
	}
	dir, err := os.MkdirTemp("", "harness-emulate-")
	if err != nil {
		return "", nil, err
	}
	return filepath.Join(dir, name), func() { os.RemoveAll(dir) }, nil
}

func run(ctx context.Context, name string, dev Device, f *flags, faults Faults, stdout io.Writer) error {
	link, cleanup, err := f.linkPath(name)
	if err != nil {
		return err
	}
	defer cleanup()
	err = Serve(ctx, dev, link, faults, func(path string) {
		fmt.Fprintln(stdout, path)
		if fl, ok := stdout.(interface{ Sync() error }); ok {
			_ = fl.Sync()
		}
	})
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// PowerSensor3Emulator is `harness meters emulate powersensor3`.
func PowerSensor3Emulator() meters.Emulator {
	return meters.Emulator{
		Name:  "powersensor3",
		Usage: "[-watts 50,30,20,10 | -trace FILE.csv] [-pairs 4] [-rate 20000] [-drop N] [-corrupt N] [-vanish-after D -vanish-for D] [-drift-ppm X] [-link PATH]",
		Run: func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
			f := newFlags("powersensor3", stderr)
			pairs := f.fs.Int("pairs", 4, "active sensor pairs (1-4)")
			rate := f.fs.Float64("rate", 20000, "frames per second")
			tr, faults, err := f.parse(args)
			if err != nil {
				return err
			}
			if *pairs < 1 || *pairs > 4 || *rate <= 0 {
				return fmt.Errorf("emulate powersensor3: -pairs must be 1-4 and -rate > 0")
			}
			dev := &PowerSensor3{Config: DefaultPowerSensor3Config(*pairs), Rate: *rate, Trace: tr, Drift: f.drift, Faults: faults}
			return run(ctx, "powersensor3", dev, f, faults, stdout)
		},
	}
}

// PMDUSBEmulator is `harness meters emulate pmd-usb`.
func PMDUSBEmulator() meters.Emulator {
	return meters.Emulator{
		Name:  "pmd-usb",
		Usage: "[-watts 50,30,20,10 | -trace FILE.csv] [-offsets 0,0,0,0,0,0,0,0] [-drop N] [-corrupt N] [-vanish-after D -vanish-for D] [-drift-ppm X] [-link PATH]",
		Run: func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
			f := newFlags("pmd-usb", stderr)
			offs := f.fs.String("offsets", "", "ADC offsets stored in the config, 8 comma-separated int8 in LSB")
			tr, faults, err := f.parse(args)
			if err != nil {
				return err
			}
			dev := &PMDUSB{Trace: tr, Drift: f.drift, Faults: faults}
			if *offs != "" {
				var o [8]int
				if n, err := fmt.Sscanf(*offs, "%d,%d,%d,%d,%d,%d,%d,%d", &o[0], &o[1], &o[2], &o[3], &o[4], &o[5], &o[6], &o[7]); n != 8 || err != nil {
					return fmt.Errorf("emulate pmd-usb: -offsets wants 8 comma-separated integers")
				}
				for i, v := range o {
					dev.AdcOffset[i] = int8(v)
				}
			}
			return run(ctx, "pmd-usb", dev, f, faults, stdout)
		},
	}
}
