package powersensor3

import (
	"fmt"

	"github.com/academemes/harness/meters"
	"github.com/academemes/harness/meters/serial"
	"github.com/academemes/harness/meters/serial/emulate"
)

// USB ids: the STM32 virtual COM port that STM32duino's CDC stack presents.
// It is generic (BENCHLAB and many boards share it), so the handshake on
// open is what confirms a PowerSensor3.
var usbIDs = []serial.USBID{{VID: 0x0483, PID: 0x5740}}

func init() {
	meters.Register(meters.Driver{
		Name:     "powersensor3",
		Usage:    "powersensor3:PATH[?rate=HZ|max]  PowerSensor3 on a USB serial port; rate: samples/s per pair (default 1000, max = every frame)",
		Open:     open,
		Check:    check,
		Detect:   detect,
		AutoRank: 20,
	})
	meters.RegisterEmulator(emulate.PowerSensor3Emulator())
}

func open(sp meters.Spec, env meters.Env) (meters.Meter, error) {
	rate, err := parseSpec(sp)
	if err != nil {
		return nil, err
	}
	return New(sp.Raw, sp.Arg, Options{Rate: rate}, env)
}

func check(sp meters.Spec) error {
	_, err := parseSpec(sp)
	return err
}

// parseSpec checks the device path and options and returns the rate.
func parseSpec(sp meters.Spec) (float64, error) {
	if sp.Arg == "" {
		return 0, fmt.Errorf("%w %q: powersensor3 needs a device path, e.g. powersensor3:/dev/ttyACM0", meters.ErrSpec, sp.Raw)
	}
	if err := sp.Unknown("rate"); err != nil {
		return 0, err
	}
	rate, err := parseRate(sp.Options["rate"])
	if err != nil {
		return 0, fmt.Errorf("%w %q: %v", meters.ErrSpec, sp.Raw, err)
	}
	return rate, nil
}

func detect(env meters.Env) []meters.Candidate {
	env = env.WithDefaults()
	return serial.Detect(serial.SysfsEnumerator{SysfsRoot: env.SysfsRoot, DevRoot: env.DevRoot}, serial.Match{
		Driver: "powersensor3",
		IDs:    usbIDs,
		What:   "STM32 virtual COM port (PowerSensor3 if it answers the handshake)",
		Shared: true,
	})
}
