package pmdusb

import (
	"testing"
	"time"

	"github.com/academemes/harness/meters"
	"github.com/academemes/harness/meters/serial/emulate"
	"github.com/academemes/harness/meters/serial/serialtest"
)

func TestUnplugAndReturn(t *testing.T) {
	link := serialtest.StartEmulator(t, &emulate.PMDUSB{Trace: emulate.Constant{40}}, emulate.Faults{VanishAfter: 1500 * time.Millisecond, VanishFor: 700 * time.Millisecond})
	m, err := New("pmd-usb:"+link, link, Options{TSBytes: 4, RetryEvery: 100 * time.Millisecond, StallAfter: 300 * time.Millisecond}, meters.Env{})
	if err != nil {
		t.Fatal(err)
	}
	serialtest.UnplugAndReturn(t, m, 3500*time.Millisecond)
}
