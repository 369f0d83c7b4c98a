package powersensor3

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/academemes/harness/meters/serial"
	"github.com/academemes/harness/meters/serial/serialtest"
)

// hostStall is a time the host does not read: from at (host time since
// the stream began), for long. inRead: the driver was inside a read that
// the scheduler woke late; otherwise it was away from the port.
type hostStall struct {
	at, long time.Duration
	inRead   bool
}

// transcript is a device streaming frames 50 µs apart, stamped with its
// own clock (exact here), and a host reading them as the driver does
// (every 8 ms, plus an unpaced read every 50 ms), each read taking what
// arrived (1 ms after it was sent) up to n_tty's 4 KiB.
type transcript struct {
	total   time.Duration
	stalls  []hostStall
	silence [2]time.Duration // the device sends nothing from [0] for [1]
	// The driver, short of CPU, takes 12 ms a pass from slow[0] for
	// slow[1]: it reads 4 KiB a pass, less than the device sends.
	slow [2]time.Duration
	// The frames sent from burst[0] for burst[1] arrive at its end, all
	// at once (an emulator that did not run for that long writes them in
	// one go), a microsecond apart.
	burst [2]time.Duration
	// The device's frames come lateStart[0] late at first, catching up
	// by lateStart[1] (an emulator starved as the test starts).
	lateStart [2]time.Duration
	seed      uint64
}

// play feeds the transcript to s through chunk, with the read start,
// arrival and harness-clock times the driver would see.
func (tr transcript) play(s *stream) {
	const period = 50 * time.Microsecond
	const usb = time.Millisecond
	t0 := time.Unix(1_700_000_000, 0)
	var data []byte
	var arrive []time.Duration // when each frame arrived at the host
	for d := time.Duration(0); d < tr.total; d += period {
		if d >= tr.silence[0] && d < tr.silence[0]+tr.silence[1] {
			continue
		}
		f := Frame{T: uint16(d.Microseconds() & 0x3FF)}
		f.Levels[0], f.Levels[1] = levelAmps, levelVolts
		data = EncodeFrame(data, f)
		at := d + usb
		if l0, by := tr.lateStart[0], tr.lateStart[1]; d < by {
			at += l0 - time.Duration(float64(l0)*float64(d)/float64(by))
		}
		if end := tr.burst[0] + tr.burst[1]; d >= tr.burst[0] && d < end {
			at = end + usb + time.Duration(d-tr.burst[0])/period*time.Microsecond
		}
		if len(arrive) > 0 {
			at = max(at, arrive[len(arrive)-1])
		}
		arrive = append(arrive, at)
	}
	arrived := func(upTo time.Duration) int { // bytes arrived by upTo
		lo, hi := 0, len(arrive)
		for lo < hi {
			mid := (lo + hi) / 2
			if arrive[mid] <= upTo {
				lo = mid + 1
			} else {
				hi = mid
			}
		}
		return lo * FrameSize
	}
	rng := rand.New(rand.NewPCG(tr.seed, 7))
	var r, fresh time.Duration // r: when the next read starts
	read, si := 0, 0
	for read < len(data) {
		start, now := r, r
		if si < len(tr.stalls) && r >= tr.stalls[si].at {
			if tr.stalls[si].inRead {
				now += tr.stalls[si].long
			} else {
				start += tr.stalls[si].long
				now = start
			}
			si++
		}
		if arrived(now) <= read {
			// Nothing there: the read blocks until the next packet.
			now = max(now, arrive[read/FrameSize]+100*time.Microsecond)
		}
		n := min(arrived(now)-read, 4096)
		s.waitFrom = t0.Add(start)
		s.chunk(data[read:read+n], t0.Add(now), t0.Add(now))
		read += n
		switch r = now; {
		case r >= tr.slow[0] && r < tr.slow[0]+tr.slow[1]:
			r += 12 * time.Millisecond
		case n >= serial.FullRead || s.holding: // bytes are waiting, or a chunk is held: read again at once
			r += 100 * time.Microsecond
		case r-fresh >= 50*time.Millisecond: // the pacer's unpaced read
			fresh = r
			r += 100 * time.Microsecond
		default:
			r += 8*time.Millisecond + time.Duration(rng.IntN(2000))*time.Microsecond
		}
	}
	s.finish()
}

// TestStreamArrivalJitter: the device's own timestamps are right, and the
// host reads them late by varying amounts. The mean power from energy
// over time must be the device's, the clock fit must find no drift, and
// no frame may be taken as lost: host time tells when bytes arrived, not
// when they were sent.
func TestStreamArrivalJitter(t *testing.T) {
	cases := []struct {
		name string
		tr   transcript
		gaps int64
	}{
		{"reads on time", transcript{total: 3 * time.Second}, 0},
		{"the driver away 150 ms, then 120 ms", transcript{total: 3 * time.Second,
			stalls: []hostStall{{at: time.Second, long: 150 * time.Millisecond}, {at: 2 * time.Second, long: 120 * time.Millisecond}}}, 0},
		{"the driver away 150 ms early on", transcript{total: 3 * time.Second,
			stalls: []hostStall{{at: 400 * time.Millisecond, long: 150 * time.Millisecond}}}, 0},
		{"a read woken 150 ms late", transcript{total: 3 * time.Second,
			stalls: []hostStall{{at: 1500 * time.Millisecond, long: 150 * time.Millisecond, inRead: true}}}, 0},
		{"the driver away 60 ms, often", transcript{total: 3 * time.Second, stalls: []hostStall{
			{at: 300 * time.Millisecond, long: 60 * time.Millisecond}, {at: 900 * time.Millisecond, long: 70 * time.Millisecond},
			{at: 1600 * time.Millisecond, long: 80 * time.Millisecond}, {at: 2500 * time.Millisecond, long: 90 * time.Millisecond}}}, 0},
		{"the driver away 40 ms at the start", transcript{total: 3 * time.Second,
			stalls: []hostStall{{at: 0, long: 40 * time.Millisecond}}}, 0},
		{"the driver away 150 ms at the start", transcript{total: 3 * time.Second,
			stalls: []hostStall{{at: 0, long: 150 * time.Millisecond}}}, 0},
		{"the driver short of CPU for 1.5 s, falling behind", transcript{total: 3 * time.Second,
			slow: [2]time.Duration{500 * time.Millisecond, 1500 * time.Millisecond}}, 0},
		{"the device's frames of 150 ms in one burst, the driver waiting", transcript{total: 3 * time.Second,
			burst: [2]time.Duration{1200 * time.Millisecond, 150 * time.Millisecond}}, 0},
		{"a burst of 150 ms, the driver away 120 ms right after its first bytes", transcript{total: 3 * time.Second,
			burst:  [2]time.Duration{1200 * time.Millisecond, 150 * time.Millisecond},
			stalls: []hostStall{{at: 1351 * time.Millisecond, long: 120 * time.Millisecond}}}, 0},
		// An emulator starved as the test starts: its frames come late
		// until it catches up, within the second the start is held for
		// (holdStartUs). Later than that, nothing read so far tells.
		{"the device's frames 80 ms late at first, catching up over 500 ms", transcript{total: 3 * time.Second,
			lateStart: [2]time.Duration{80 * time.Millisecond, 500 * time.Millisecond}}, 0},
		// A true silence: the driver waits on the line and the device's
		// first frames after it arrive at once. The whole wraps it hid
		// come from the host's time.
		{"the device silent 200 ms", transcript{total: 3 * time.Second, silence: [2]time.Duration{1200 * time.Millisecond, 200 * time.Millisecond}}, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, _ := streamMeter(t, 100)
			var c serialtest.Collector
			st := &streamState{m: m, emit: c.Emit, energy: make([]float64, len(m.pairs)), sum: make([]float64, len(m.pairs))}
			s := newStream(m, st)
			tc.tr.seed = 1
			tc.tr.play(s)
			w := testWatts(m)
			if tc.tr.silence[1] > 0 {
				// No energy while the device was silent.
				span := c.Samples()[len(c.Samples())-1].T.Sub(c.Samples()[0].T)
				w *= 1 - tc.tr.silence[1].Seconds()/span.Seconds()
			}
			got := c.EnergyMeanWatts(1)[0]
			r := m.core.Report(nil)
			if rel := math.Abs(got/w - 1); !(rel <= 0.0005) {
				t.Errorf("energy over time %.4f W, want %.4f W within 0.05 %% (off by %.3f %%)", got, w, rel*100)
			}
			if fit := r.ClockFit; fit == nil || math.Abs(fit.DriftPPM) > 50 || r.Counters["clock_fit_failures"] != 0 {
				t.Errorf("clock fit %+v, %d failures; want no drift (the device clock is exact)", fit, r.Counters["clock_fit_failures"])
			}
			if r.Counters["timestamp_gaps"] != tc.gaps {
				t.Errorf("timestamp_gaps = %d, want %d", r.Counters["timestamp_gaps"], tc.gaps)
			}
			t.Logf("counters %v, fit %+v", r.Counters, r.ClockFit)
		})
	}
}
