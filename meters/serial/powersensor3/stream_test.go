package powersensor3

import (
	"context"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/academemes/harness/meters"
	"github.com/academemes/harness/meters/serial"
	"github.com/academemes/harness/meters/serial/serialtest"
)

// Levels of the test pair: about 10 A and 12 V with the calibration of
// streamMeter.
const (
	levelAmps  = 310
	levelVolts = 372
)

// streamMeter is a Meter with pair 0 in use (current and voltage sensors
// of sensitivity 0.1, no offset), as New would build it, without a device.
func streamMeter(t *testing.T, rate float64) (*Meter, *[]meters.Sample) {
	t.Helper()
	var cfg Config
	for i, rec := range [][]byte{
		EncodeSensor("MLX10", "EPS", 0, 0.1, true),
		EncodeSensor("voltage", "EPS", 0, 0.1, true),
	} {
		s, err := ParseSensor(rec)
		if err != nil {
			t.Fatal(err)
		}
		cfg[i] = s
	}
	m := &Meter{
		path: "fake", name: "powersensor3:fake",
		opts:  Options{Rate: rate, Sleep: serialtest.NoSleep, StallAfter: time.Second},
		env:   meters.Env{}.WithDefaults(),
		pairs: []int{0},
		dev:   DeviceInfo{Version: "F411-1.6.1", Config: cfg},
		core:  serial.NewCore(),
	}
	var got []meters.Sample
	return m, &got
}

func newTestStream(m *Meter, got *[]meters.Sample) *stream {
	st := &streamState{m: m, emit: func(s meters.Sample) { *got = append(*got, s) },
		energy: make([]float64, len(m.pairs)), sum: make([]float64, len(m.pairs))}
	return newStream(m, st)
}

// frames encodes n frames 50 µs apart from device time startUs, with the
// test pair's levels; marked lists the frame indexes that carry a marker.
func frames(startUs, n int, marked ...int) []byte {
	var b []byte
	for k := range n {
		f := Frame{T: uint16((startUs + 50*k) & 0x3FF)}
		f.Levels[0], f.Levels[1] = levelAmps, levelVolts
		for _, mk := range marked {
			f.Marker = f.Marker || mk == k
		}
		b = EncodeFrame(b, f)
	}
	return b
}

func testWatts(m *Meter) float64 {
	f := Frame{}
	f.Levels[0], f.Levels[1] = levelAmps, levelVolts
	return m.dev.Config.Watts(&f, 0)
}

func TestSilenceUs(t *testing.T) {
	cases := []struct {
		name              string
		waited, sinceSent time.Duration
		bytes             int
		want              int64
	}{
		{"back to back", 2 * time.Millisecond, 2 * time.Millisecond, 10 * FrameSize, 0},
		{"100 ms is not yet a silence", 100 * time.Millisecond, 100 * time.Millisecond, 0, 0},
		{"a silence, no whole frame", 150 * time.Millisecond, 152 * time.Millisecond, FrameSize - 1, 152_000},
		{"a silence, then 10 frames sent at its end", 150 * time.Millisecond, 152 * time.Millisecond, 10 * FrameSize, 152_000 - 500},
		// The driver was away: the bytes waited for it.
		{"a host away 150 ms, its first read quick", time.Millisecond, 151 * time.Millisecond, 10 * FrameSize, 0},
		// Woken late inside a read: a full read is a backlog.
		{"a read woken 150 ms late, 4 KiB waiting", 150 * time.Millisecond, 151 * time.Millisecond, 4096, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := silenceUs(tc.waited, tc.sinceSent, tc.bytes); got != tc.want {
				t.Errorf("silenceUs(%v, %v, %d) = %d, want %d", tc.waited, tc.sinceSent, tc.bytes, got, tc.want)
			}
		})
	}
}

// TestStreamWindows feeds 101 frames (5 ms of device time) in chunks and
// checks the samples: one per window of device time, the window's mean
// power, and the trapezoid energy up to the window's end.
func TestStreamWindows(t *testing.T) {
	cases := []struct {
		name    string
		rate    float64
		samples int
	}{
		{"every frame", 0, 101},
		{"1 ms windows", 1000, 5}, // frames at 1000, 2000, ... 5000 µs close them
		{"10 ms windows", 100, 1}, // the window is still open: only finish emits it
		{"windows per 2 frames", 10_000, 50},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, got := streamMeter(t, tc.rate)
			s := newTestStream(m, got)
			w := testWatts(m)
			t0 := time.Unix(1_700_000_000, 0)
			data := frames(0, 101)
			for i := 0; i < len(data); i += 7 * FrameSize / 2 { // chunks that split words and frames
				end := min(i+7*FrameSize/2, len(data))
				s.chunk(data[i:end], t0.Add(time.Duration(i)*time.Microsecond), t0)
			}
			s.finish() // the connection ends: every window held is emitted
			if len(*got) != tc.samples {
				t.Fatalf("%d samples, want %d", len(*got), tc.samples)
			}
			var prevT time.Time
			for i, smp := range *got {
				if math.Abs(smp.Watts-w) > 1e-9 {
					t.Errorf("sample %d: %v W, want %v", i, smp.Watts, w)
				}
				if smp.T.Before(prevT) {
					t.Errorf("sample %d at %v goes back from %v", i, smp.T, prevT)
				}
				prevT = smp.T
			}
			last := (*got)[len(*got)-1]
			if want := w * 5000e-6; math.Abs(last.Joules-want) > 1e-9 {
				t.Errorf("energy at the end %v J, want %v J (%v W over 5 ms)", last.Joules, want, w)
			}
			if c := m.core.Report(nil).Counters; c["frames"] != 101 || c["bytes"] != int64(len(data)) || c["timestamp_gaps"] != 0 {
				t.Errorf("counters %v, want 101 frames of %d bytes, no gaps", c, len(data))
			}
		})
	}
}

// TestStreamHoldsOnlyTheStart: the windows of a connection's first
// second wait for the clock fit (holdStartUs); after it, each window is
// emitted as it closes, so that a phase ending now has its samples now.
func TestStreamHoldsOnlyTheStart(t *testing.T) {
	m, got := streamMeter(t, 100) // 10 ms windows
	s := newTestStream(m, got)
	t0 := time.Unix(1_700_000_000, 0)
	const step = 200 // frames a chunk: 10 ms
	for k := range 150 {
		at := t0.Add(time.Duration(k*10+1) * time.Millisecond)
		s.chunk(frames(k*step*50, step), at, at)
		if emitted, start := len(*got) > 0, (k+1)*10 <= 1000; emitted == start {
			t.Fatalf("after %d ms of frames: %d samples; want none in the first second and every closed window after it", (k+1)*10, len(*got))
		}
	}
	// Windows close at 10, 20, ... 1490 ms: the one that 1500 ms
	// closes is still open.
	if len(*got) != 149 {
		t.Errorf("%d samples before the connection ends, want 149", len(*got))
	}
}

// TestStreamTimestampGap: frames lost between two read counts a gap; the
// step is still integrated (it is far below a stall).
func TestStreamTimestampGap(t *testing.T) {
	m, got := streamMeter(t, 0)
	s := newTestStream(m, got)
	t0 := time.Unix(1_700_000_000, 0)
	s.chunk(append(frames(0, 3), frames(400, 2)...), t0, t0)
	s.finish()
	if n := m.core.Report(nil).Counters["timestamp_gaps"]; n != 1 {
		t.Errorf("timestamp_gaps = %d, want 1", n)
	}
	if want := testWatts(m) * 450e-6; math.Abs((*got)[len(*got)-1].Joules-want) > 1e-9 {
		t.Errorf("energy %v J, want %v J", (*got)[len(*got)-1].Joules, want)
	}
}

// TestStreamMarkers: a marked frame takes the oldest label sent; one with
// no label left says "?".
func TestStreamMarkers(t *testing.T) {
	m, got := streamMeter(t, 0)
	s := newTestStream(m, got)
	m.labels = []string{"load 1"}
	t0 := time.Unix(1_700_000_000, 0)
	s.chunk(frames(0, 6, 2, 4), t0, t0)
	if len(m.markers) != 2 {
		t.Fatalf("markers %v, want 2", m.markers)
	}
	for i, want := range []struct {
		label string
		us    int64
	}{{"load 1", 100}, {"?", 200}} {
		if mk := m.markers[i]; mk["label"] != want.label || mk["device_us"] != want.us {
			t.Errorf("marker %d = %v, want label %q at %d µs", i, mk, want.label, want.us)
		}
	}
}

// TestStreamStopWords: a stop word before 'X' was sent is counted and the
// stream goes on; after 'X' it ends the stream, and the trailing frame the
// firmware sends after it is not data.
func TestStreamStopWords(t *testing.T) {
	m, got := streamMeter(t, 0)
	s := newTestStream(m, got)
	t0 := time.Unix(1_700_000_000, 0)
	s.chunk(append(frames(0, 2), 0xFF, 0x3F), t0, t0)
	s.chunk(frames(100, 2), t0, t0)
	if n := m.core.Report(nil).Counters["unexpected_stop_words"]; n != 1 || s.stopped || s.prevUs != 150 {
		t.Fatalf("unexpected stop word: counted %d, stopped %v, last frame at %d µs; want 1, false, 150", n, s.stopped, s.prevUs)
	}
	port := &fakePort{}
	if err := s.requestStop(port); err != nil {
		t.Fatal(err)
	}
	s.chunk(append([]byte{0xFF, 0x3F, 0xFF, 0x3F}, frames(5000, 1)...), t0, t0)
	if !s.stopped {
		t.Fatal("the stop word after 'X' did not end the stream")
	}
	s.endStop(port)
	if len(*got) != 4 {
		t.Errorf("%d samples, want 4: the trailing frame is not data", len(*got))
	}
	if w := string(port.written()); w != "XT" {
		t.Errorf("host wrote %q, want \"XT\"", w)
	}
	if n := m.core.Report(nil).Counters["stop_not_acknowledged"]; n != 0 {
		t.Errorf("stop_not_acknowledged = %d, want 0", n)
	}
}

// TestStreamStopAfterSilence: after 'X' the firmware is silent for ~100
// ms, then sends its stop word and one frame. The driver waited on the
// line all that time, and the chunk is small: it must end the stream at
// once, not be held as the end of a device's silence until the wait for
// the stop word runs out.
func TestStreamStopAfterSilence(t *testing.T) {
	m, got := streamMeter(t, 1000)
	s := newTestStream(m, got)
	t0 := time.Unix(1_700_000_000, 0)
	s.chunk(frames(0, 40), t0, t0)
	if err := s.requestStop(&fakePort{}); err != nil {
		t.Fatal(err)
	}
	s.waitFrom = t0.Add(time.Millisecond)
	at := t0.Add(150 * time.Millisecond)
	s.chunk(append([]byte{0xFF, 0x3F, 0xFF, 0x3F}, frames(0, 1)...), at, at)
	if !s.stopped || s.holding {
		t.Errorf("stopped %v, holding %v; want the stop word taken at once", s.stopped, s.holding)
	}
}

// TestStreamRun runs the read loop on a fake port: frames, then (ctx
// ended) the stop handshake; a failing read ends it with the error; a
// silent port with a stall.
func TestStreamRun(t *testing.T) {
	t.Run("stop when ctx ends", func(t *testing.T) {
		m, got := streamMeter(t, 1000)
		s := newTestStream(m, got)
		ctx, cancel := context.WithCancel(context.Background())
		port := &fakePort{chunks: [][]byte{frames(0, 41)}, onEmpty: cancel,
			onWrite: map[byte][]byte{cmdStopMarker: append([]byte{0xFF, 0x3F, 0xFF, 0x3F}, frames(3000, 1)...)}}
		if err := s.run(ctx, port); err != nil {
			t.Fatal(err)
		}
		if w := string(port.written()); w != "XT" {
			t.Errorf("host wrote %q, want \"XT\"", w)
		}
		if len(*got) != 2 || (*got)[1].Joules <= 0 {
			t.Errorf("samples %+v, want 2 windows with energy", *got)
		}
	})
	t.Run("read error", func(t *testing.T) {
		m, got := streamMeter(t, 1000)
		s := newTestStream(m, got)
		boom := errors.New("unplugged")
		port := &fakePort{chunks: [][]byte{frames(0, 30)}, err: boom}
		if err := s.run(context.Background(), port); !errors.Is(err, boom) {
			t.Fatalf("run = %v, want %v", err, boom)
		}
		if len(*got) != 2 {
			t.Errorf("%d samples, want the closed window and the one finish emits", len(*got))
		}
	})
	t.Run("stall", func(t *testing.T) {
		m, got := streamMeter(t, 1000)
		m.opts.StallAfter = time.Millisecond
		s := newTestStream(m, got)
		if err := s.run(context.Background(), &fakePort{}); err == nil || !strings.Contains(err.Error(), "no data for") {
			t.Fatalf("run = %v, want a stall", err)
		}
	})
}

// TestStreamReadsBacklogAtOnce: a read that took all n_tty holds
// (serial.FullRead) left bytes waiting, and the next read goes at once;
// only a read that emptied the line is followed by the pacer's pause.
// Pacing full reads capped the driver at 4 KiB a pause, barely more than
// the device sends: on a busy machine it fell behind for good.
func TestStreamReadsBacklogAtOnce(t *testing.T) {
	m, got := streamMeter(t, 1000)
	// Reads of 4096 bytes (more waiting) and of 100 (the line emptied),
	// the frames running on across them.
	data := frames(0, 20*4096/FrameSize)
	var chunks [][]byte
	for i, k := 0, 0; i < len(data); k++ {
		n := 4096
		if k%3 == 0 {
			n = 100
		}
		n = min(n, len(data)-i)
		chunks = append(chunks, data[i:i+n])
		i += n
	}
	port := &fakePort{chunks: chunks}
	// Each pause is put down to the read before it.
	var pausedAfter []int
	m.opts.Sleep = func(d time.Duration) {
		if d > 2*time.Millisecond && d <= serial.ReadEvery { // not the stop's 2 and 20 ms
			pausedAfter = append(pausedAfter, port.lastRead())
		}
	}
	s := newTestStream(m, got)
	ctx, cancel := context.WithCancel(context.Background())
	port.onEmpty = cancel
	port.onWrite = map[byte][]byte{cmdStopMarker: {0xFF, 0x3F, 0xFF, 0x3F}}
	if err := s.run(ctx, port); err != nil {
		t.Fatal(err)
	}
	if len(*got) == 0 || len(pausedAfter) == 0 {
		t.Fatalf("%d samples, paused after reads of %v; want samples and pauses after short reads", len(*got), pausedAfter)
	}
	for _, n := range pausedAfter {
		if n >= serial.FullRead {
			t.Errorf("paused after reads of %v bytes; want no pause after a full read (%d)", pausedAfter, serial.FullRead)
			break
		}
	}
}

// fakePort gives chunks one read at a time, then empty reads (calling
// onEmpty) or err; a byte written that onWrite names queues its reply.
type fakePort struct {
	mu      sync.Mutex
	chunks  [][]byte
	onWrite map[byte][]byte
	onEmpty func()
	err     error
	wrote   []byte
	last    int // bytes the last read returned
}

func (p *fakePort) lastRead() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.last
}

func (p *fakePort) Read(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.chunks) == 0 {
		if p.err != nil {
			return 0, p.err
		}
		if p.onEmpty != nil {
			p.onEmpty()
		}
		return 0, nil
	}
	n := copy(b, p.chunks[0])
	p.last = n
	if n == len(p.chunks[0]) {
		p.chunks = p.chunks[1:]
	} else {
		p.chunks[0] = p.chunks[0][n:]
	}
	return n, nil
}

func (p *fakePort) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.wrote = append(p.wrote, b...)
	for _, c := range b {
		if r, ok := p.onWrite[c]; ok {
			p.chunks = append(p.chunks, r)
		}
	}
	return len(b), nil
}

func (p *fakePort) written() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]byte(nil), p.wrote...)
}

func (p *fakePort) Close() error                       { return nil }
func (p *fakePort) SetReadTimeout(time.Duration) error { return nil }
func (p *fakePort) SetBaud(int) error                  { return nil }
func (p *fakePort) ResetInputBuffer() error {
	p.mu.Lock()
	p.chunks = nil
	p.mu.Unlock()
	return nil
}

func TestPairScale(t *testing.T) {
	sensor := func(vref, sens float32) Sensor { return Sensor{Vref: vref, Sensitivity: sens, InUse: true} }
	lsb := 3.3 / 1023
	cases := []struct {
		name       string
		cur, volt  Sensor
		step, full float64
	}{
		{"MLX10 around 1.65 V, 0.0877 divider", sensor(1.65, 0.12), sensor(0, 0.0877),
			lsb/0.12*(3.3/0.0877) + lsb/0.0877*(1.65/0.12), (1.65 / 0.12) * (3.3 / 0.0877)},
		{"inverted polarity reads the same span", sensor(1.65, -0.12), sensor(0, 0.0877),
			lsb/0.12*(3.3/0.0877) + lsb/0.0877*(1.65/0.12), (1.65 / 0.12) * (3.3 / 0.0877)},
		{"off-centre zero: the longer side is the full scale", sensor(0.5, 0.1), sensor(0, 0.1),
			lsb/0.1*33 + lsb/0.1*28, 28 * 33},
		{"no sensitivity: unknown", sensor(1.65, 0), sensor(0, 0.0877), 0, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var c Config
			c[0], c[1] = tc.cur, tc.volt
			step, full := c.PairScale(0)
			// The calibration is float32: compare to 1 part in 10^6.
			if math.Abs(step-tc.step) > 1e-6*tc.step || math.Abs(full-tc.full) > 1e-6*tc.full {
				t.Errorf("PairScale = %.6g W step, %.6g W full; want %.6g, %.6g", step, full, tc.step, tc.full)
			}
		})
	}
}

// TestStreamSaturation: frames where a sensor of an active pair reads 0
// or 1023 are counted, and the report warns once.
func TestStreamSaturation(t *testing.T) {
	m, got := streamMeter(t, 0)
	s := newTestStream(m, got)
	t0 := time.Unix(1_700_000_000, 0)
	data := frames(0, 4)
	var b []byte
	for k, lv := range [][2]uint16{{1023, levelVolts}, {levelAmps, 0}} {
		f := Frame{T: uint16(200 + 50*k)}
		f.Levels[0], f.Levels[1] = lv[0], lv[1]
		f.Levels[2] = 1023 // sensor 2 belongs to pair 1, not in use
		b = EncodeFrame(b, f)
	}
	s.chunk(append(data, b...), t0, t0)
	s.chunk(frames(300, 2), t0, t0)
	r := m.core.Report(nil)
	if r.Counters["saturated_frames"] != 2 {
		t.Errorf("saturated_frames = %d, want 2", r.Counters["saturated_frames"])
	}
	if len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], "may be clipped") {
		t.Errorf("warnings %q, want one about clipped readings", r.Warnings)
	}
}

// TestStreamImpossiblePower: a supply rail's power is never negative. A
// reading more than ImpossibleSteps power steps below zero is flagged
// (counted, and the report warns once, naming the pair and the reading);
// the noise of a sensor near zero is not. The current sensor here is
// bidirectional (Vref 1.65 V, 0.1 V/A): level 0 reads -16.5 A, -198 W at
// 12 V; level 200 -10 A; level 500 -0.4 A, -4.6 W, within 10 steps of 1.6 W.
func TestStreamImpossiblePower(t *testing.T) {
	m, got := streamMeter(t, 0)
	for i, rec := range [][]byte{
		EncodeSensor("MLX10", "EPS", 1.65, 0.1, true),
		EncodeSensor("voltage", "EPS", 0, 0.1, true),
	} {
		s, err := ParseSensor(rec)
		if err != nil {
			t.Fatal(err)
		}
		m.dev.Config[i] = s
	}
	s := newTestStream(m, got)
	t0 := time.Unix(1_700_000_000, 0)
	chunk := func(startUs int, amps ...uint16) []byte {
		var b []byte
		for k, a := range amps {
			f := Frame{T: uint16((startUs + 50*k) & 0x3FF)}
			f.Levels[0], f.Levels[1] = a, levelVolts
			b = EncodeFrame(b, f)
		}
		return b
	}
	s.chunk(chunk(0, 600, 500, 511), t0, t0)
	if r := m.core.Report(nil); r.Counters["impossible_readings"] != 0 || len(r.Warnings) != 0 {
		t.Fatalf("readings near zero: counters %v, warnings %q; want none flagged", r.Counters, r.Warnings)
	}
	s.chunk(chunk(150, 200, 0, 600), t0, t0)
	s.chunk(chunk(300, 100), t0, t0)
	r := m.core.Report(nil)
	if r.Counters["impossible_readings"] != 3 {
		t.Errorf("impossible_readings = %d, want 3", r.Counters["impossible_readings"])
	}
	var flagged []string
	for _, w := range r.Warnings {
		if strings.Contains(w, "impossible_readings") {
			flagged = append(flagged, w)
		}
	}
	if len(flagged) != 1 || !strings.Contains(flagged[0], "EPS read -120.") {
		t.Errorf("warnings %q, want one naming the pair and its first impossible reading (-120.x W)", r.Warnings)
	}
}

// TestStreamNotAfterArrival: a frame cannot have been sent after the bytes
// carrying it arrived. Where the clock fit's error maps frames later (here
// a fit of one point 350 µs off), the samples are stamped no later than
// their chunk's arrival, so that a recording never spans more than the
// time it took.
func TestStreamNotAfterArrival(t *testing.T) {
	m, got := streamMeter(t, 0)
	s := newTestStream(m, got)
	t0 := time.Unix(1_700_000_000, 0)
	m.core.AddFitPoint(0, t0)
	arrived := t0.Add(100 * time.Microsecond)
	s.chunk(frames(0, 10), arrived, arrived)
	s.finish()
	if len(*got) == 0 {
		t.Fatal("no samples")
	}
	for i, smp := range *got {
		if smp.T.After(arrived) {
			t.Errorf("sample %d at %v, after its chunk arrived at %v", i, smp.T.Sub(t0), arrived.Sub(t0))
		}
	}
}
