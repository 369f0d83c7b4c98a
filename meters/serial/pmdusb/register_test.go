package pmdusb

import (
	"errors"
	"strings"
	"testing"

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
