package pmdusb

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/academemes/harness/meters"
	"github.com/academemes/harness/meters/serial"
	"github.com/academemes/harness/meters/serial/serialtest"
)

// fakeFit maps device ns to host time at base, with no drift.
type fakeFit struct {
	base  time.Time
	ready bool
}

func (f fakeFit) FitReady() bool              { return f.ready }
func (f fakeFit) MapTime(ns int64) time.Time  { return f.base.Add(time.Duration(ns)) }
func at(base time.Time, ms float64) time.Time { return base.Add(time.Duration(ms * 1e6)) }

func TestTimelinePlace(t *testing.T) {
	base := time.Unix(1000, 0)
	fit := fakeFit{base: base, ready: true}
	const ms = 3000 // ticks per ms
	cases := []struct {
		name     string
		tsBytes  int
		ts       uint32 // second record's timestamp; the first is 1000*ms
		relock   bool
		arriveMs float64 // arrival of the second record after the first was sent
		fit      fakeFit
		wantHow  placement
		wantMs   float64 // its device time after the first record's
	}{
		{"one period on", 4, 1000*ms + 5208, false, 2, fit, placed, 5208.0 / ms},
		{"after a relock, u32: the step is known", 4, 1040 * ms, true, 41, fit, placed, 40},
		{"a restarted counter would unwrap to +1431 s", 4, 10 * ms, true, 41, fit, implausible, 0},
		{"40 s ahead", 4, 41000 * ms, true, 41, fit, implausible, 0},
		{"ahead by less than the slack", 4, 1300 * ms, false, 41, fit, placed, 300},
		{"no fit yet: one period on", 4, 1000*ms + 5208, false, 2, fakeFit{base: base}, placed, 5208.0 / ms},
		// Before the fit has a point, a step is checked against the first
		// record's sending: trusted, a corrupted one put the fit's first
		// point, and every sample after it, up to 1431 s off.
		{"no fit yet: 40 s ahead", 4, 41000 * ms, true, 41, fakeFit{base: base}, implausible, 0},
		{"no fit yet: after a relock, u16: re-anchored", 2, 1000*ms + 100, true, 41, fakeFit{base: base}, anchored, 41},
		{"after a relock, u16: re-anchored", 2, 1000*ms + 100, true, 41, fit, anchored, 41},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tl := newTimeline(tc.tsBytes)
			mask := uint32(tl.wrap - 1)
			if _, how := tl.place(1000*ms&mask, false, base, base, tc.fit); how != first {
				t.Fatalf("first record: %v", how)
			}
			arrived := at(base, tc.arriveMs)
			ns, how := tl.place(tc.ts&mask, tc.relock, arrived, arrived, tc.fit)
			if how != tc.wantHow {
				t.Fatalf("placement %v, want %v", how, tc.wantHow)
			}
			if got := float64(ns) / 1e6; how != implausible && (got < tc.wantMs-0.01 || got > tc.wantMs+0.01) {
				t.Errorf("device time %.3f ms, want %.3f ms", got, tc.wantMs)
			}
			if how == implausible {
				// The next record is placed from the host clock.
				later := at(base, tc.arriveMs+10)
				ns, how := tl.place(tc.ts&mask+5208, false, later, later, tc.fit)
				if how != anchored || time.Duration(ns) != 51*time.Millisecond {
					t.Errorf("next record: %v at %v, want anchored at 51ms", how, time.Duration(ns))
				}
			}
		})
	}
}

// streamPort answers the handshake and then streams prepared chunks, each
// read advancing the host clock to the chunk's arrival.
type streamPort struct {
	mu      sync.Mutex
	in      []byte // host bytes not yet parsed
	out     []byte // replies not yet read
	on      bool
	chunks  [][]byte
	arrive  []time.Time
	now     time.Time
	done    func()
	started time.Time
	// lastArrival is when the last chunk read arrived.
	lastArrival time.Time
}

func (p *streamPort) Clock() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.now
}

func (p *streamPort) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.in = append(p.in, b...)
	for len(p.in) > 0 {
		switch p.in[0] {
		case cmdWelcome:
			p.out = append(p.out, welcome...)
		case cmdReadID:
			p.out = append(p.out, vendorElmor, productPMD, 6)
		case cmdReadCfg:
			p.out = append(p.out, make([]byte, 34)...)
		case cmdContTX:
			if len(p.in) < 4 {
				return len(b), nil
			}
			p.on = p.in[1] == 1
			p.in = p.in[3:]
		}
		p.in = p.in[1:]
	}
	return len(b), nil
}

func (p *streamPort) Read(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.out) > 0 {
		n := copy(b, p.out)
		p.out = p.out[n:]
		return n, nil
	}
	if !p.on {
		return 0, nil
	}
	if len(p.chunks) == 0 {
		p.done()
		return 0, nil
	}
	n := copy(b, p.chunks[0])
	p.now, p.lastArrival = p.arrive[0], p.arrive[0]
	p.chunks, p.arrive = p.chunks[1:], p.arrive[1:]
	return n, nil
}

func (p *streamPort) Close() error                       { return nil }
func (p *streamPort) SetReadTimeout(time.Duration) error { return nil }
func (p *streamPort) SetBaud(int) error                  { return nil }
func (p *streamPort) ResetInputBuffer() error {
	p.mu.Lock()
	p.out = nil
	p.mu.Unlock()
	return nil
}

// TestStreamDeviceTime runs the driver on records whose timestamps jump
// where the decoder must find its lock again, and checks that the samples
// still fall when the records were sent: a step across the jump must not be
// unwrapped as counter ticks (a restarted u32 counter used to put the rest
// of the run 1431 s ahead), nor lose the wraps a u16 hides.
func TestStreamDeviceTime(t *testing.T) {
	cases := []struct {
		name     string
		tsBytes  int
		channels []int
		edit     func(i int, ts uint32) (uint32, bool) // timestamp of record i, and whether it is sent
		resyncs  bool
		// firstWithin: how near the first record's sending the first
		// sample must be (0: 5 ms).
		firstWithin time.Duration
		fitFails    bool
	}{
		{"clean", 4, nil, func(i int, ts uint32) (uint32, bool) { return ts, true }, false, 0, false},
		{"counter restarts", 4, nil, func(i int, ts uint32) (uint32, bool) {
			if i >= 700 {
				return uint32(i-700) * 5208, true
			}
			return ts, true
		}, true, 0, false},
		{"counter jumps 40 s ahead", 4, nil, func(i int, ts uint32) (uint32, bool) {
			if i >= 700 {
				return ts + 40*3_000_000, true
			}
			return ts, true
		}, true, 0, false},
		{"u16, 100 records lost (2 wraps hidden)", 2, []int{EPS1}, func(i int, ts uint32) (uint32, bool) { return ts, i < 700 || i >= 800 }, true, 0, false},
		// Before the fit has a point, the step was trusted: the fit's first
		// point, and the whole recording, landed 40 s early. The records
		// before the jump are lost while the decoder finds its lock.
		{"counter jumps 40 s ahead in the first chunk", 4, nil, func(i int, ts uint32) (uint32, bool) {
			if i >= 5 {
				return ts + 40*3_000_000, true
			}
			return ts, true
		}, true, 50 * time.Millisecond, false},
		// Within StepSlack the step passes, but the samples after it must
		// not be stamped after their bytes arrived; the jump tilts the
		// fit beyond any oscillator's drift, so it fails.
		{"counter jumps 300 ms ahead", 4, nil, func(i int, ts uint32) (uint32, bool) {
			if i >= 1400 {
				return ts + 300*3_000, true
			}
			return ts, true
		}, false, 0, true},
		// Timestamps that run half again as fast as the line sends are no
		// clock: the fit fails, says so, and the samples follow the host
		// (those of the first chunk were mapped by its first point).
		{"timestamps half again too fast", 4, nil, func(i int, ts uint32) (uint32, bool) {
			return ts + (ts-0x01000000)/2, true
		}, false, 50 * time.Millisecond, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, port, sent := streamMeter(t, tc.tsBytes, tc.channels, 1500, tc.edit)
			ctx, cancel := context.WithCancel(context.Background())
			port.done = cancel
			var c serialtest.Collector
			if err := m.Run(ctx, c.Emit); err != nil {
				t.Fatal(err)
			}
			s := c.Samples()
			if len(s) == 0 {
				t.Fatal("no samples")
			}
			r := m.Report()
			t.Logf("%d samples, counters %v", len(s), r.Counters)
			// The fit's offset is the latency of the chunks (1 ms); allow
			// a few ms more.
			first, last := s[0].T, s[len(s)-1].T
			within := cmp.Or(tc.firstWithin, 5*time.Millisecond)
			if d := first.Sub(sent[0]); d < -within || d > within {
				t.Errorf("first sample at %v from the first record's sending, want within %v", d, within)
			}
			if d := last.Sub(sent[len(sent)-1]); d < -5*time.Millisecond || d > 5*time.Millisecond {
				t.Errorf("last sample at %v from the last record's sending, want within 5ms (span %v, sent over %v)", d, last.Sub(first), sent[len(sent)-1].Sub(sent[0]))
			}
			if arrived := port.lastArrival; last.After(arrived) {
				t.Errorf("last sample at %v, after the last bytes arrived (%v)", last.Sub(sent[0]), arrived.Sub(sent[0]))
			}
			if got := r.Counters["timestamp_resyncs"] > 0; got != tc.resyncs {
				t.Errorf("timestamp_resyncs %d, want resyncs %v", r.Counters["timestamp_resyncs"], tc.resyncs)
			}
			failed := slices.ContainsFunc(r.Warnings, func(w string) bool { return strings.Contains(w, "clock fit failed") })
			if r.Counters["clock_fit_failures"] > 0 != tc.fitFails || failed != tc.fitFails {
				t.Errorf("clock_fit_failures %d, warnings %q; want a failed fit %v", r.Counters["clock_fit_failures"], r.Warnings, tc.fitFails)
			}
		})
	}
}

// streamMeter builds a meter on a streamPort holding n records at 115200
// baud, 20 to a chunk, each chunk arriving 1 ms after its last record was
// sent. It returns the send times of the records sent.
func streamMeter(t *testing.T, tsBytes int, channels []int, n int, edit func(int, uint32) (uint32, bool)) (*Meter, *streamPort, []time.Time) {
	t.Helper()
	t0 := time.Unix(1_700_000_000, 0)
	port := &streamPort{now: t0}
	opts := Options{TSBytes: tsBytes, Channels: channels, Sleep: serialtest.NoSleep,
		Open: func(string, int) (serial.Port, error) { return port, nil }}
	m, err := New("pmd-usb:fake", "fake", opts, meters.Env{Clock: port.Clock})
	if err != nil {
		t.Fatal(err)
	}
	l := m.Layout()
	period := time.Duration(float64(time.Second) * 10 * float64(l.RecordLen()) / defaultBaud)
	ticks := uint32(3e6 * period.Seconds())
	var sent []time.Time
	var chunk []byte
	for i := 0; i < n; i++ {
		ts, ok := edit(i, 0x01000000+uint32(i)*ticks)
		if ok {
			r := Record{TS: ts, Raw: [AdcChannels]int16{1585, 85, 1585, 51, 1585, 34, 1585, 17}}
			chunk = EncodeRecord(chunk, l, &r)
			sent = append(sent, t0.Add(time.Duration(i)*period))
		}
		if (i+1)%20 == 0 || i == n-1 {
			port.chunks = append(port.chunks, chunk)
			port.arrive = append(port.arrive, t0.Add(time.Duration(i)*period+time.Millisecond))
			chunk = nil
		}
	}
	return m, port, sent
}
