package pmdusb

import (
	"context"
	"testing"
	"time"

	"github.com/academemes/harness/meters"
	"github.com/academemes/harness/meters/serial/emulate"
)

func TestUnplugAndReturn(t *testing.T) {
	link := startEmulator(t, &emulate.PMDUSB{Trace: emulate.Constant{40}}, emulate.Faults{VanishAfter: 1500 * time.Millisecond, VanishFor: 700 * time.Millisecond})
	m, err := New("pmd-usb:"+link, link, Options{TSBytes: 4, RetryEvery: 100 * time.Millisecond, StallAfter: 300 * time.Millisecond}, meters.Env{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3500*time.Millisecond)
	defer cancel()
	var c collector
	if err := m.Run(ctx, c.emit); err != nil {
		t.Fatal(err)
	}
	r := m.Report()
	t.Logf("gaps %+v counters %v", r.Gaps, r.Counters)
	if len(r.Gaps) == 0 || r.Counters["disconnects"] == 0 {
		t.Fatalf("no gap recorded for the unplug: %+v", r)
	}
	g := r.Gaps[0]
	if !g.End.After(g.Start) {
		t.Errorf("gap %v..%v is empty", g.Start, g.End)
	}
	after := 0
	for _, s := range c.samples {
		if s.T.After(g.End) {
			after++
		}
		if s.T.After(g.Start) && s.T.Before(g.End) {
			t.Errorf("sample at %v inside the gap", s.T)
		}
	}
	if after == 0 {
		t.Error("no samples after the device returned")
	}
}
