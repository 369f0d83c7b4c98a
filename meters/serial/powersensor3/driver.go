package powersensor3

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/academemes/harness/meters"
	"github.com/academemes/harness/meters/serial"
)

// Options configure a Meter.
type Options struct {
	// Rate is the samples per second per channel emitted: frames (about
	// 20,000/s on an F411) are averaged over windows of 1/Rate of device
	// time. 0 emits every frame.
	Rate float64
	// Open opens the port; nil means serial.OpenPort.
	Open serial.Opener
	// Sleep waits; nil means time.Sleep. Tests make it instant.
	Sleep func(time.Duration)
	// RetryEvery is how often a vanished device is looked for (default 250 ms).
	RetryEvery time.Duration
	// StallAfter is how long a silent stream counts as lost (default 2 s).
	StallAfter time.Duration
}

// Meter is a PowerSensor3 on a serial port.
type Meter struct {
	path  string
	name  string
	opts  Options
	env   meters.Env
	info  meters.Info
	pairs []int // active pairs, in channel order
	dev   DeviceInfo

	core    *serial.Core // its lock also guards port, labels and markers
	port    serial.Port  // while streaming, for Mark
	labels  []string     // marks sent, not yet seen in the stream
	markers []map[string]any
}

var (
	_ meters.Meter    = (*Meter)(nil)
	_ meters.Marker   = (*Meter)(nil)
	_ meters.Reporter = (*Meter)(nil)
)

// New opens the device at path once to read its version and calibration
// (which decide the channels), then closes it again; Run reopens it.
func New(name, path string, opts Options, env meters.Env) (*Meter, error) {
	env = env.WithDefaults()
	if opts.Open == nil {
		opts.Open = serial.OpenPort
	}
	if opts.Sleep == nil {
		opts.Sleep = time.Sleep
	}
	if opts.RetryEvery <= 0 {
		opts.RetryEvery = 250 * time.Millisecond
	}
	if opts.StallAfter <= 0 {
		opts.StallAfter = 2 * time.Second
	}
	p, err := opts.Open(path, 115200)
	if err != nil {
		return nil, fmt.Errorf("powersensor3 %s: %w", path, err)
	}
	_ = p.SetReadTimeout(100 * time.Millisecond)
	dev, err := Handshake(p, opts.Sleep)
	p.Close()
	if err != nil {
		return nil, fmt.Errorf("powersensor3 %s: %w", path, err)
	}
	m := &Meter{path: path, name: name, opts: opts, env: env, dev: dev, core: serial.NewCore()}
	pairs, warn := dev.Config.ActivePairs()
	if len(pairs) == 0 {
		return nil, fmt.Errorf("%w: powersensor3 %s (%s): no sensor pair is in use in the device's configuration; set one with psconfig", meters.ErrUnavailable, path, dev.Version)
	}
	m.pairs = pairs
	m.core.Warn(warn...)
	m.info = meters.Info{
		Name:   name,
		Driver: "powersensor3",
		Kind:   meters.Measured,
		Precision: meters.Precision{
			Source: "power step: one ADC step (3.3 V / 1023) of current and one of voltage at the pair's full scale, " +
				"from the stored calibration, the largest over the pairs; accuracy not stated in the sources examined: " +
				"it rests on the calibration set with psconfig (firmware-notes/powersensor3.md)",
		},
	}
	for _, p := range pairs {
		step, full := m.dev.Config.PairScale(p)
		m.info.Precision.PowerStepW = max(m.info.Precision.PowerStepW, step)
		m.info.Channels = append(m.info.Channels, meters.Channel{Name: m.dev.Config.PairName(p), InTotal: true, FullScaleW: full})
	}
	m.info.Description = fmt.Sprintf("PowerSensor3 %s at %s, %d sensor pair(s), current x voltage per pair from the device's stored calibration; %s",
		dev.Version, path, len(pairs), m.info.Precision)
	return m, nil
}

// Info describes the meter.
func (m *Meter) Info() meters.Info { return m.info }

// Device returns what the handshake read.
func (m *Meter) Device() DeviceInfo { return m.dev }

// Mark asks the device to flag its next frame; the frame's time is kept
// with label in the report's details ("markers").
func (m *Meter) Mark(label string) error {
	m.core.Lock()
	defer m.core.Unlock()
	if m.port == nil {
		return fmt.Errorf("powersensor3 %s: mark %q: not streaming", m.path, label)
	}
	if _, err := m.port.Write([]byte{cmdMarker}); err != nil {
		return fmt.Errorf("powersensor3 %s: mark %q: %w", m.path, label, err)
	}
	m.labels = append(m.labels, label)
	return nil
}

// Report returns gaps, counters, the clock fit and the markers seen.
func (m *Meter) Report() meters.Report {
	return m.core.Report(func() map[string]any {
		return map[string]any{"firmware": m.dev.Version, "markers": append([]map[string]any(nil), m.markers...)}
	})
}

// Run streams until ctx is done. A device that vanishes leaves a gap; Run
// looks for it again every RetryEvery and resumes when it answers.
func (m *Meter) Run(ctx context.Context, emit func(meters.Sample)) error {
	st := &streamState{m: m, emit: emit, energy: make([]float64, len(m.pairs)), sum: make([]float64, len(m.pairs))}
	return m.core.Run(ctx, serial.Reconnect{
		Driver: "powersensor3", Path: m.path, Baud: 115200, Open: m.opts.Open,
		RetryEvery: m.opts.RetryEvery, Env: m.env,
		LastSample: func() time.Time { return st.lastT },
	}, func(port serial.Port) error { return m.session(ctx, port, st) })
}

// streamState is what survives a reconnect: energy so far, the last time
// emitted, the averaging window.
type streamState struct {
	m      *Meter
	emit   func(meters.Sample)
	energy []float64 // J per channel since Run began
	sum    []float64 // W summed over the current window
	n      int
	winEnd int64 // device µs at which the window closes
	lastT  time.Time
	// arrived is when the chunk being decoded arrived: no sample is
	// stamped later.
	arrived time.Time
	// The windows closed but not yet stamped and emitted (see
	// holdStartUs),
	// oldest first from head: each one's device µs, its chunk's arrival,
	// and per channel its mean watts then its energy (2 values a channel).
	heldUs   []int64
	heldArr  []time.Time
	heldVals []float64
	head     int
	// impossibleWarned: the report has warned of an impossible reading.
	impossibleWarned bool
}

// session runs one connection: handshake, start, stream, stop. It returns
// nil when ctx ended it, or why the device was lost.
func (m *Meter) session(ctx context.Context, port serial.Port, st *streamState) error {
	defer port.Close()
	_ = port.SetReadTimeout(50 * time.Millisecond)
	if err := m.rehandshake(port); err != nil {
		return err
	}
	m.core.ResetFit()
	if _, err := port.Write([]byte{cmdStart}); err != nil {
		return fmt.Errorf("powersensor3: write start: %w", err)
	}
	m.setPort(port)
	defer m.setPort(nil)
	return newStream(m, st).run(ctx, port)
}

// rehandshake identifies the device again on a new connection and takes
// its calibration, which someone may have changed in between.
func (m *Meter) rehandshake(port serial.Port) error {
	dev, err := Handshake(port, m.opts.Sleep)
	if err != nil {
		return err
	}
	if dev.Config != m.dev.Config {
		m.core.Warn("powersensor3: the device's calibration changed after the meter was opened; the new one is used")
		m.core.Lock()
		m.dev.Config = dev.Config
		m.core.Unlock()
	}
	return nil
}

// setPort makes port the one Mark writes to (nil: not streaming) and
// forgets the labels of marks a previous connection did not deliver.
func (m *Meter) setPort(port serial.Port) {
	m.core.Lock()
	m.port, m.labels = port, nil
	m.core.Unlock()
}

// markSeen pairs the marker on the frame at device time us with the
// oldest label sent and keeps both in the report's markers.
func (m *Meter) markSeen(us int64) {
	m.core.Lock()
	defer m.core.Unlock()
	label := "?"
	if len(m.labels) > 0 {
		label, m.labels = m.labels[0], m.labels[1:]
	}
	m.markers = append(m.markers, map[string]any{"label": label, "device_us": us, "t_ns": m.core.Fitter().Map(us * 1000).UnixNano()})
}

// reset starts a new averaging window: a new connection starts with an
// empty one.
func (st *streamState) reset() {
	st.n, st.winEnd = 0, -1
	for i := range st.sum {
		st.sum[i] = 0
	}
}

// add adds one frame's power per channel, at device time us, to the
// window, and emits the window when us reaches its end. period is the
// window's length in device µs; 0 emits every frame.
func (st *streamState) add(m *Meter, us, period int64, watts []float64) {
	for c, w := range watts {
		st.sum[c] += w
	}
	st.n++
	if st.winEnd < 0 {
		st.winEnd = us + period
	}
	if us >= st.winEnd {
		st.flush(m, us)
		for st.winEnd <= us {
			st.winEnd += max(period, 1)
		}
	}
}

// holdStartUs is how much of a connection's device time its windows are
// held for before they are stamped on the harness clock and emitted, all
// at once; later windows are emitted as they close. The clock fit places
// device time by the least delayed chunks; a window stamped at once
// takes the fit of that moment, and at the start the fit has only the
// first chunks: where the host did not read them at once (a busy
// machine, starting its work too), they were all late, and so were the
// windows' stamps, by as much: 40 ms late at the start of a 3 s recording
// raised its mean power from energy over time by 1.3 %. A second later
// the fit has some 20 chunks read promptly (the pacer's unpaced reads).
// Only the start is held: the runner judges a phase by the samples it has
// when the phase ends, and a phase that ended before its last windows
// were emitted would show a gap there.
const holdStartUs = 1_000_000

// flush closes the averaged window that ended at device time us and,
// past the start, emits it with any held.
func (st *streamState) flush(m *Meter, us int64) {
	if st.n == 0 {
		return
	}
	st.heldUs = append(st.heldUs, us)
	st.heldArr = append(st.heldArr, st.arrived)
	for c := range st.sum {
		st.heldVals = append(st.heldVals, st.sum[c]/float64(st.n), st.energy[c])
		st.sum[c] = 0
	}
	st.n = 0
	if us >= holdStartUs {
		st.release(m, math.MaxInt64)
	}
}

// release stamps and emits the held windows that ended at or before
// device time upTo.
func (st *streamState) release(m *Meter, upTo int64) {
	nch := len(st.sum)
	for ; st.head < len(st.heldUs) && st.heldUs[st.head] <= upTo; st.head++ {
		i := st.head
		t := m.core.MapTime(st.heldUs[i] * 1000)
		if a := st.heldArr[i]; !a.IsZero() && t.After(a) {
			t = a // no frame was sent after its bytes arrived
		}
		if t.Before(st.lastT) {
			t = st.lastT // refits may move the line a little; never go back
		}
		st.lastT = t
		v := st.heldVals[i*2*nch : (i+1)*2*nch]
		for c := range nch {
			st.emit(meters.Sample{Channel: c, T: t, Watts: v[2*c], Joules: v[2*c+1]})
		}
	}
	if st.head == len(st.heldUs) || st.head > 4096 {
		k := copy(st.heldUs, st.heldUs[st.head:])
		copy(st.heldArr, st.heldArr[st.head:])
		copy(st.heldVals, st.heldVals[st.head*2*nch:])
		st.heldUs, st.heldArr, st.heldVals = st.heldUs[:k], st.heldArr[:k], st.heldVals[:k*2*nch]
		st.head = 0
	}
}

// finish closes the window at device time us (-1: no frame) and emits
// every window held: the connection ends, and the clock fit with it.
func (st *streamState) finish(m *Meter, us int64) {
	if us >= 0 {
		st.flush(m, us)
	}
	st.release(m, math.MaxInt64)
}

// MaxRate bounds the rate option: above the fastest firmware's frames
// (about 34,000/s on an F407) every frame is emitted anyway.
const MaxRate = 100_000

// parseRate reads the rate option: "max" or 0 for every frame.
func parseRate(s string) (float64, error) {
	if s == "" {
		return 1000, nil
	}
	if s == "max" {
		return 0, nil
	}
	r, err := strconv.ParseFloat(s, 64)
	if err != nil || !(r >= 0 && r <= MaxRate) {
		return 0, fmt.Errorf("rate %q: want samples per second per channel from 0 to %d (0 or max: every frame)", s, MaxRate)
	}
	return r, nil
}
