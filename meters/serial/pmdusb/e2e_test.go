package pmdusb

import (
	"context"
	"math"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/academemes/harness/meters"
	"github.com/academemes/harness/meters/serial/emulate"
)

// startEmulator serves dev behind a pty and returns the link to open.
func startEmulator(t *testing.T, dev emulate.Device, faults emulate.Faults) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	link := filepath.Join(t.TempDir(), "pmd")
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- emulate.Serve(ctx, dev, link, faults, func(p string) { ready <- p }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Logf("emulator: %v", err)
		}
	})
	select {
	case p := <-ready:
		return p
	case err := <-done:
		t.Fatalf("emulator did not start: %v", err)
	}
	return ""
}

type collector struct {
	mu      sync.Mutex
	samples []meters.Sample
}

func (c *collector) emit(s meters.Sample) {
	c.mu.Lock()
	c.samples = append(c.samples, s)
	c.mu.Unlock()
}

// meanWatts averages each channel's samples whose time falls after skip.
func (c *collector) meanWatts(nch int, from time.Time) []float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	sum := make([]float64, nch)
	n := make([]float64, nch)
	for _, s := range c.samples {
		if s.T.Before(from) {
			continue
		}
		sum[s.Channel] += s.Watts
		n[s.Channel]++
	}
	for i := range sum {
		sum[i] /= math.Max(n[i], 1)
	}
	return sum
}

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
			link := startEmulator(t, &emulate.PMDUSB{Trace: emulate.Constant(want), AdcOffset: [8]int8{1, -2, 0, 3, -1, 0, 2, -3}}, emulate.Faults{})
			m, err := New("pmd-usb:"+link, link, tc.opts, meters.Env{})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			var c collector
			start := time.Now()
			if err := m.Run(ctx, c.emit); err != nil {
				t.Fatal(err)
			}
			got := c.meanWatts(4, start)
			for ch := range want {
				if rel := math.Abs(got[ch]-want[ch]) / want[ch]; rel > 0.005 {
					t.Errorf("channel %d (%s): mean %.4f W, want %.4f W within 0.5%% (off by %.3f%%)", ch, m.Info().Channels[ch].Name, got[ch], want[ch], rel*100)
				}
			}
			r := m.Report()
			t.Logf("samples %d, counters %v, fit %+v", len(c.samples), r.Counters, r.ClockFit)
			if r.Counters["records"] < 500 {
				t.Errorf("records = %d in 3 s, want more", r.Counters["records"])
			}
		})
	}
}
