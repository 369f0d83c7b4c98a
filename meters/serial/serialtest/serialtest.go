// Package serialtest holds what the serial meters' tests share: a device
// emulator behind a pty, a sample collector, a transcript player for
// handshakes, and the unplug-and-return check. It is imported by tests
// only.
package serialtest

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/academemes/harness/meters"
	"github.com/academemes/harness/meters/serial/emulate"
)

// StartEmulator serves dev behind a pty and returns the link to open. The
// emulator stops when the test ends.
func StartEmulator(t testing.TB, dev emulate.Device, faults emulate.Faults) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	link := filepath.Join(t.TempDir(), "tty")
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

// Collector keeps every sample a meter emits.
type Collector struct {
	mu      sync.Mutex
	samples []meters.Sample
}

// Emit is the emit function to pass to Meter.Run.
func (c *Collector) Emit(s meters.Sample) {
	c.mu.Lock()
	c.samples = append(c.samples, s)
	c.mu.Unlock()
}

// Samples returns the samples so far.
func (c *Collector) Samples() []meters.Sample {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]meters.Sample(nil), c.samples...)
}

// MeanWatts averages each of nch channels' samples whose time is not
// before from.
func (c *Collector) MeanWatts(nch int, from time.Time) []float64 {
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

// EnergyMeanWatts is each of nch channels' mean power from its cumulative
// energy: the joules between its first and last sample over the time
// between them, which is what the analysis and `meters record` use. A
// sample stamped late, or energy integrated across a silence, shows here
// when the mean of the samples' watts hides it.
func (c *Collector) EnergyMeanWatts(nch int) []float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	first := make([]*meters.Sample, nch)
	last := make([]*meters.Sample, nch)
	for i := range c.samples {
		s := &c.samples[i]
		if math.IsNaN(s.Joules) {
			continue
		}
		if first[s.Channel] == nil {
			first[s.Channel] = s
		}
		last[s.Channel] = s
	}
	out := make([]float64, nch)
	for ch := range out {
		if first[ch] == nil || !last[ch].T.After(first[ch].T) {
			out[ch] = math.NaN()
			continue
		}
		out[ch] = (last[ch].Joules - first[ch].Joules) / last[ch].T.Sub(first[ch].T).Seconds()
	}
	return out
}

// Meter is what the checks need of a serial meter.
type Meter interface {
	meters.Meter
	meters.Reporter
}

// ConstantTrace runs m for d and checks that each channel's mean watts
// is want's within 0.5%. It returns the report.
func ConstantTrace(t *testing.T, m Meter, want []float64, d time.Duration) meters.Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var c Collector
	start := time.Now()
	if err := m.Run(ctx, c.Emit); err != nil {
		t.Fatal(err)
	}
	got := c.MeanWatts(len(want), start)
	fromEnergy := c.EnergyMeanWatts(len(want))
	for ch := range want {
		if rel := math.Abs(got[ch]-want[ch]) / want[ch]; rel > 0.005 {
			t.Errorf("channel %d (%s): mean %.4f W, want %.4f W within 0.5%% (off by %.3f%%)", ch, m.Info().Channels[ch].Name, got[ch], want[ch], rel*100)
		}
		if rel := math.Abs(fromEnergy[ch]-want[ch]) / want[ch]; !(rel <= 0.005) {
			t.Errorf("channel %d (%s): energy over time %.4f W, want %.4f W within 0.5%% (off by %.3f%%)", ch, m.Info().Channels[ch].Name, fromEnergy[ch], want[ch], rel*100)
		}
	}
	r := m.Report()
	t.Logf("samples %d, counters %v, fit %+v", len(c.Samples()), r.Counters, r.ClockFit)
	return r
}

// UnplugAndReturn runs m for d against an emulator that vanishes and
// returns, and checks that the report has a non-empty gap, that no sample
// falls inside it, and that samples come after it.
func UnplugAndReturn(t *testing.T, m Meter, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var c Collector
	if err := m.Run(ctx, c.Emit); err != nil {
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
	for _, s := range c.Samples() {
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

// Script is an io.ReadWriter that plays a device transcript: each step is
// what the host must write next and what the device answers to it.
type Script struct {
	Steps []Step
	i     int    // step being matched
	got   int    // bytes of Steps[i].Host matched so far
	out   []byte // device bytes not yet read
	Wrote []byte // everything the host wrote
	Err   error  // first mismatch
}

// Step is one exchange of a transcript.
type Step struct{ Host, Dev []byte }

// Write checks p against the transcript and queues the device's answers.
func (s *Script) Write(p []byte) (int, error) {
	s.Wrote = append(s.Wrote, p...)
	for _, b := range p {
		if s.i >= len(s.Steps) {
			s.Err = fmt.Errorf("host wrote %#02x after the transcript ended", b)
			return 0, s.Err
		}
		st := s.Steps[s.i]
		if st.Host[s.got] != b {
			s.Err = fmt.Errorf("step %d: host wrote %#02x, transcript has %#02x", s.i, b, st.Host[s.got])
			return 0, s.Err
		}
		s.got++
		if s.got == len(st.Host) {
			s.out = append(s.out, st.Dev...)
			s.i, s.got = s.i+1, 0
		}
	}
	return len(p), nil
}

// Read returns queued device bytes; reading with none queued is an error
// (the host waits for an answer it did not ask for).
func (s *Script) Read(p []byte) (int, error) {
	if len(s.out) == 0 {
		return 0, fmt.Errorf("host read with nothing sent (step %d)", s.i)
	}
	n := copy(p, s.out)
	s.out = s.out[n:]
	return n, nil
}

// HostBytes is the whole transcript's host side.
func (s *Script) HostBytes() []byte {
	var b bytes.Buffer
	for _, st := range s.Steps {
		b.Write(st.Host)
	}
	return b.Bytes()
}

// NoSleep is a sleep that returns at once.
func NoSleep(time.Duration) {}
