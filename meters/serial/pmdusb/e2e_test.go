package pmdusb

import (
	"testing"
	"time"

	"github.com/academemes/harness/meters"
	"github.com/academemes/harness/meters/serial/emulate"
	"github.com/academemes/harness/meters/serial/serialtest"
)

func TestEndToEndConstantTrace(t *testing.T) {
	want := []float64{50, 30, 120, 80}
	cases := []struct {
		name string
		opts Options
	}{
		{"stream 4-byte timestamps, baud switch", Options{Baud: 921600, TSBytes: 4}},
		{"stream without timestamps", Options{TSBytes: 0}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			link := serialtest.StartEmulator(t, &emulate.PMDUSB{Trace: emulate.Constant(want), AdcOffset: [8]int8{1, -2, 0, 3, -1, 0, 2, -3}}, emulate.Faults{})
			m, err := New("pmd-usb:"+link, link, tc.opts, meters.Env{})
			if err != nil {
				t.Fatal(err)
			}
			r := serialtest.ConstantTrace(t, m, want, 3*time.Second)
			if r.Counters["records"] < 500 {
				t.Errorf("records = %d in 3 s, want more", r.Counters["records"])
			}
		})
	}
}
