package pmdusb

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/academemes/harness/meters"
	"github.com/academemes/harness/meters/serial"
	"github.com/academemes/harness/meters/serial/serialtest"
)

// TestCheck runs the driver's Check, which `harness run --check` uses: a
// spec that Open would refuse must be refused here, without a device.
func TestCheck(t *testing.T) {
	d, ok := meters.Lookup("pmd-usb")
	if !ok {
		t.Fatal("pmd-usb is not registered")
	}
	if d.Check == nil {
		t.Fatal("pmd-usb registers no Check: a bad spec passes `harness run --check`")
	}
	cases := []struct {
		spec string
		want string // "" for a spec that passes
	}{
		{"pmd-usb:/dev/ttyUSB0", ""},
		{"pmd-usb:/dev/ttyUSB0?baud=460800&channels=EPS&ts=2&mode=poll", ""},
		{"pmd-usb:/dev/x?baud=9", "baud 9"},
		{"pmd-usb:/dev/x?baud=fast", "is not a number"},
		{"pmd-usb:/dev/x?ts=3", "ts \"3\""},
		{"pmd-usb:/dev/x?mode=burst", "mode \"burst\""},
		{"pmd-usb:/dev/x?channels=GPU", "channel \"GPU\""},
		{"pmd-usb:/dev/x?speed=2", "unknown option"},
		{"pmd-usb", "needs a device path"},
	}
	for _, tc := range cases {
		t.Run(tc.spec, func(t *testing.T) {
			sp, err := meters.ParseSpec(tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			err = d.Check(sp)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("Check: %v, want nil", err)
			case tc.want != "" && err == nil:
				t.Errorf("Check passed, want an error with %q", tc.want)
			case tc.want != "" && (!errors.Is(err, meters.ErrSpec) || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("Check: %v, want ErrSpec with %q", err, tc.want)
			}
		})
	}
}

// TestTimestampBytes checks what New makes of Options.TSBytes: the zero
// value is the documented default, 4, not "no timestamps".
func TestTimestampBytes(t *testing.T) {
	cases := []struct {
		name    string
		ts      int
		want    int // timestamp bytes in the streamed layout
		wantErr bool
	}{
		{"zero value: the default, 4", 0, 4, false},
		{"4", 4, 4, false},
		{"2", 2, 2, false},
		{"none", NoTimestamps, 0, false},
		{"3 is no width the device sends", 3, 0, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			port := &streamPort{}
			opts := Options{TSBytes: tc.ts, Sleep: serialtest.NoSleep,
				Open: func(string, int) (serial.Port, error) { return port, nil }}
			m, err := New("pmd-usb:fake", "fake", opts, meters.Env{Clock: port.Clock})
			if tc.wantErr {
				if !errors.Is(err, meters.ErrSpec) {
					t.Errorf("New: %v, want ErrSpec", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := m.Layout().TSBytes; got != tc.want {
				t.Errorf("layout has %d timestamp bytes, want %d", got, tc.want)
			}
		})
	}
}

// TestSpecTimestampBytes checks that the spec's ts=0 means no timestamps
// and that no ts gives the default.
func TestSpecTimestampBytes(t *testing.T) {
	for opt, want := range map[string]int{"": 4, "4": 4, "2": 2, "0": NoTimestamps} {
		o, err := parseOptions(map[string]string{"ts": opt})
		if err != nil {
			t.Fatal(err)
		}
		if o.TSBytes != want {
			t.Errorf("ts=%q: TSBytes %d, want %d", opt, o.TSBytes, want)
		}
	}
}

// fakeMeter is a Meter opened on a streamPort: the handshake answered,
// nothing streamed.
func fakeMeter(t *testing.T, opts Options) *Meter {
	t.Helper()
	port := &streamPort{}
	opts.Sleep = serialtest.NoSleep
	opts.Open = func(string, int) (serial.Port, error) { return port, nil }
	m, err := New("pmd-usb:fake", "fake", opts, meters.Env{Clock: port.Clock})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestPrecision: the step of one ADC code of current and voltage at full
// scale, and each channel's full scale on its 12 V rail.
func TestPrecision(t *testing.T) {
	m := fakeMeter(t, Options{Channels: []int{EPS1, PCIE2}})
	info := m.Info()
	// 0.0488 A × 15.49 V + 0.007568 V × 99.89 A
	if p := info.Precision; math.Abs(p.PowerStepW-1.51196) > 1e-4 || p.RelError != 0 || !strings.Contains(p.Source, "not stated") {
		t.Errorf("precision %+v; want a 1.512 W step, accuracy not stated", p)
	}
	if !strings.Contains(info.Description, info.Precision.String()) {
		t.Errorf("description %q does not give the precision", info.Description)
	}
	for _, ch := range info.Channels {
		if math.Abs(ch.FullScaleW-2047*0.0488*12) > 1e-6 {
			t.Errorf("%s: full scale %v W, want %v W (99.9 A at 12 V)", ch.Name, ch.FullScaleW, 2047*0.0488*12)
		}
	}
}

// TestSaturation: a record with a code at the end of the ADC's range, on a
// channel in use, is counted and warned about once.
func TestSaturation(t *testing.T) {
	m := fakeMeter(t, Options{Channels: []int{EPS1}})
	st := &state{m: m, emit: func(meters.Sample) {}, energy: make([]float64, 1)}
	t0 := time.Unix(1_700_000_000, 0)
	var off [AdcChannels]int8
	for i, raw := range [][AdcChannels]int16{
		{0, 0, 0, 0, 1585, 205, 0, 0},       // 12 V, 10 A
		{2047, 2047, 0, 0, 1585, 205, 0, 0}, // PCIE1 saturated, not in use
		{0, 0, 0, 0, 1585, 2047, 0, 0},      // EPS1 current at full scale
		{0, 0, 0, 0, -2048, 205, 0, 0},      // EPS1 voltage at the bottom
		{0, 0, 0, 0, 1585, 2046, 0, 0},      // one step below
	} {
		st.sample(t0.Add(time.Duration(i)*time.Millisecond), &raw, off)
	}
	r := m.Report()
	if r.Counters["saturated_records"] != 2 {
		t.Errorf("saturated_records = %d, want 2", r.Counters["saturated_records"])
	}
	if len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], "may be clipped") {
		t.Errorf("warnings %q, want one about clipped readings", r.Warnings)
	}
}
