package meters

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestParseSpec(t *testing.T) {
	for _, tc := range []struct {
		in      string
		driver  string
		arg     string
		opts    map[string]string
		wantErr string
	}{
		{in: "auto", driver: "auto"},
		{in: "RAPL", driver: "rapl"},
		{in: "rapl:sysfs=/tmp/x,rate=1000", driver: "rapl", opts: map[string]string{"sysfs": "/tmp/x", "rate": "1000"}},
		{in: "powersensor3:/dev/ttyACM0", driver: "powersensor3", arg: "/dev/ttyACM0"},
		{in: "pmd-usb:/dev/ttyUSB0?baud=460800&channels=eps1,eps2", driver: "pmd-usb", arg: "/dev/ttyUSB0", opts: map[string]string{"baud": "460800", "channels": "eps1", "eps2": ""}, wantErr: "not key=value"},
		{in: "modbus:192.0.2.7:502?unit=1&outlet=2", driver: "modbus", arg: "192.0.2.7:502", opts: map[string]string{"unit": "1", "outlet": "2"}},
		{in: "estimate:idle=2W&idle=3W", wantErr: "given twice"},
		{in: "", wantErr: "empty spec"},
		{in: ":x", wantErr: "no driver name"},
		// Options without an argument may follow the name after '?': the
		// name ends there.
		{in: "auto?x=1", driver: "auto", opts: map[string]string{"x": "1"}},
		{in: "rapl?rate=10", driver: "rapl", opts: map[string]string{"rate": "10"}},
		{in: "watt meter:/dev/x", wantErr: `"watt meter" is not a driver name`},
		{in: "../../x:y", wantErr: "is not a driver name"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			sp, err := ParseSpec(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, ErrSpec) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if sp.Driver != tc.driver || sp.Arg != tc.arg || len(sp.Options) != len(tc.opts) {
				t.Fatalf("spec = %+v", sp)
			}
			for k, v := range tc.opts {
				if sp.Options[k] != v {
					t.Errorf("option %s = %q, want %q", k, sp.Options[k], v)
				}
			}
		})
	}
	sp, _ := ParseSpec("x:rate=1,bogus=2")
	if err := sp.Unknown("rate"); err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Errorf("Unknown = %v", err)
	}
}

type stubMeter struct{ info Info }

func (s stubMeter) Info() Info                              { return s.info }
func (s stubMeter) Run(context.Context, func(Sample)) error { return nil }

func TestAutoOrder(t *testing.T) {
	mk := func(name string, rank int, usable bool, kind Kind) Driver {
		return Driver{
			Name: name, AutoRank: rank,
			Detect: func(Env) []Candidate {
				return []Candidate{{Spec: name, Usable: usable, Reason: name + " is not readable"}}
			},
			Open: func(sp Spec, _ Env) (Meter, error) { return stubMeter{Info{Name: sp.Raw, Kind: kind}}, nil },
		}
	}
	for _, d := range []Driver{mk("t-best", 1, false, Measured), mk("t-next", 2, true, Measured), mk("t-model", 3, true, Model)} {
		Register(d)
		// The registry is the process's: leave it as found, so that the
		// test can run again (-count) and others do not see the stubs.
		t.Cleanup(func() {
			mu.Lock()
			delete(drivers, d.Name)
			mu.Unlock()
		})
	}
	m, notes, err := Open("auto", Env{})
	if err != nil {
		t.Fatal(err)
	}
	if m.Info().Name != "t-next" {
		t.Errorf("auto chose %s, want t-next", m.Info().Name)
	}
	joined := strings.Join(notes, "\n")
	if !strings.Contains(joined, "t-best is not readable") || !strings.Contains(joined, "chose t-next") {
		t.Errorf("notes = %v", notes)
	}
	if _, _, err := Open("nosuch", Env{}); err == nil || !strings.Contains(err.Error(), `unknown driver "nosuch"`) {
		t.Errorf("err = %v", err)
	}
}

func TestLabel(t *testing.T) {
	cases := []struct {
		name string
		kind Kind
		want string
	}{
		{"rapl", Measured, "rapl"},
		{"a model without the word", Model, "a model without the word (estimate, model)"},
		{"estimate", Model, "estimate (model)"},
		{"estimate:idle=2W", Model, "estimate:idle=2W (model)"},
		{"total", Model, "total (estimate, model)"},
		{"labelled twice: estimate (model)", Model, "labelled twice: estimate (model)"},
		{"t-model (estimate, model)", Model, "t-model (estimate, model)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := Label(tc.name, tc.kind); got != tc.want {
				t.Errorf("Label(%q, %s) = %q, want %q", tc.name, tc.kind, got, tc.want)
			}
			if got := (Info{Name: tc.name, Kind: tc.kind}).Label(); got != tc.want {
				t.Errorf("Info.Label = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestPrecisionString(t *testing.T) {
	cases := []struct {
		name string
		p    Precision
		want string
	}{
		{"nothing stated", Precision{}, "accuracy not stated"},
		{"gude 1105", Precision{PowerStepW: 1, EnergyStepJ: 3600}, "power step 1 W, energy step 3600 J, accuracy not stated"},
		{"rapl", Precision{PowerStepW: 0.0061035, EnergyStepJ: 61.035e-6}, "power step 6.1 mW, energy step 61 µJ, accuracy not stated"},
		{"a model", Precision{PowerStepW: 0.276, RelError: 1}, "power step 276 mW, within ±100 %"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.p.String(); got != tc.want {
				t.Errorf("String = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestOpenAutoRefusesOptions: auto picks the driver, so a setting given to
// it would be dropped silently; it is an error that says to name the
// driver.
func TestOpenAutoRefusesOptions(t *testing.T) {
	for _, spec := range []string{"auto?x=1", "auto:rate=10", "auto:/dev/ttyUSB0"} {
		t.Run(spec, func(t *testing.T) {
			_, _, err := Open(spec, Env{})
			if err == nil || !errors.Is(err, ErrSpec) || !strings.Contains(err.Error(), "auto takes no argument or options") {
				t.Errorf("Open(%q) = %v, want a spec error saying auto takes no options", spec, err)
			}
		})
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"agent:pi:9190?token=s3cret":            "agent:pi:9190?token=***",
		"agent:pi:9190?meter=rapl&token=s3cret": "agent:pi:9190?meter=rapl&token=***",
		"agent:pi:9190?token=s3cret&meter=rapl": "agent:pi:9190?token=***&meter=rapl",
		"openmetrics:x?Password=p,rate=2":       "openmetrics:x?Password=***,rate=2",
		"rapl:sysfs=/tmp/token=x":               "rapl:sysfs=/tmp/token=x",
		"agent:pi:9190?meter=tokenizer":         "agent:pi:9190?meter=tokenizer",
		"estimate:idle=2W":                      "estimate:idle=2W",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}
