package pmdusb

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/academemes/harness/meters"
	"github.com/academemes/harness/meters/serial"
	"github.com/academemes/harness/meters/serial/emulate"
)

func init() {
	meters.Register(meters.Driver{
		Name:     "pmd-usb",
		Usage:    "pmd-usb:PATH[?baud=115200|230400|460800|921600|1500000|2000000&channels=EPS1+EPS2&ts=4|2|0&mode=stream|poll]  ElmorLabs PMD-USB",
		Open:     open,
		Check:    check,
		Detect:   detect,
		AutoRank: 21,
	})
	meters.RegisterEmulator(emulate.PMDUSBEmulator())
}

func open(sp meters.Spec, env meters.Env) (meters.Meter, error) {
	o, err := parseSpec(sp)
	if err != nil {
		return nil, err
	}
	return New(sp.Raw, sp.Arg, o, env)
}

// check finds what is wrong with a spec without opening the port, so that
// `harness run --check` catches a bad baud rate before the run.
func check(sp meters.Spec) error {
	_, err := parseSpec(sp)
	return err
}

// parseSpec checks the device path and options and returns the options.
func parseSpec(sp meters.Spec) (Options, error) {
	if sp.Arg == "" {
		return Options{}, fmt.Errorf("%w %q: pmd-usb needs a device path, e.g. pmd-usb:/dev/ttyUSB0", meters.ErrSpec, sp.Raw)
	}
	if err := sp.Unknown("baud", "channels", "ts", "mode"); err != nil {
		return Options{}, err
	}
	o, err := parseOptions(sp.Options)
	if err != nil {
		return Options{}, fmt.Errorf("%w %q: %v", meters.ErrSpec, sp.Raw, err)
	}
	return o, nil
}

func parseOptions(opt map[string]string) (Options, error) {
	o := Options{Baud: defaultBaud, TSBytes: 4}
	if s := opt["baud"]; s != "" {
		b, err := strconv.Atoi(s)
		switch {
		case err != nil:
			return o, fmt.Errorf("baud %q is not a number", s)
		case b != 115200 && b != 230400 && b != 460800 && b != 921600 && b != 1500000 && b != 2000000:
			return o, fmt.Errorf("baud %d: the device takes 115200, 230400, 460800, 921600, 1500000 or 2000000", b)
		}
		o.Baud = b
	}
	if s := opt["ts"]; s != "" {
		switch s {
		case "0":
			o.TSBytes = NoTimestamps
		case "2", "4":
			o.TSBytes, _ = strconv.Atoi(s)
		default:
			return o, fmt.Errorf("ts %q: want 0, 2 or 4 timestamp bytes", s)
		}
	}
	switch opt["mode"] {
	case "", "stream":
	case "poll":
		o.Poll = true
	default:
		return o, fmt.Errorf("mode %q: want stream or poll", opt["mode"])
	}
	if s := opt["channels"]; s != "" && s != "all" {
		seen := map[int]bool{}
		for _, name := range strings.FieldsFunc(s, func(r rune) bool { return r == '+' || r == ' ' || r == ';' }) {
			var idx []int
			switch n := strings.ToUpper(name); n {
			case "EPS":
				idx = []int{EPS1, EPS2}
			case "PCIE":
				idx = []int{PCIE1, PCIE2}
			default:
				for i, pn := range PowerNames {
					if pn == n {
						idx = []int{i}
					}
				}
				if idx == nil {
					return o, fmt.Errorf("channel %q: want PCIE1, PCIE2, EPS1, EPS2, PCIE, EPS or all, joined with +", name)
				}
			}
			for _, i := range idx {
				if !seen[i] {
					seen[i] = true
					o.Channels = append(o.Channels, i)
				}
			}
		}
	}
	return o, nil
}

func detect(env meters.Env) []meters.Candidate {
	env = env.WithDefaults()
	return serial.Detect(serial.SysfsEnumerator{SysfsRoot: env.SysfsRoot, DevRoot: env.DevRoot}, serial.Match{
		Driver: "pmd-usb",
		IDs:    []serial.USBID{{VID: 0x1a86, PID: 0x7523}},
		What:   "CH340 USB-UART (ElmorLabs PMD-USB if it answers the handshake)",
		Shared: true,
	})
}
