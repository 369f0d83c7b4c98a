package pmdusb

import (
	"context"
	"fmt"
	"time"

	"github.com/academemes/harness/meters"
	"github.com/academemes/harness/meters/serial"
)

// Options configure a Meter.
type Options struct {
	Baud     int   // line speed for streaming; the device starts at 115200 and is switched with command 08
	Channels []int // power channels (PCIE1..EPS2 indexes); default all four
	// TSBytes is the timestamp width in continuous mode: 4 or 2 bytes, or
	// NoTimestamps. 0 takes the default, 4: device timestamps are what
	// lets the driver find a lost byte and map records onto the host clock.
	TSBytes int
	Poll    bool // poll READ_ADC (06) instead of continuous transmit
	Open    serial.Opener
	Sleep   func(time.Duration)
	// Settle is how long the line is left to drain after stopping the
	// stream (default 250 ms).
	Settle     time.Duration
	RetryEvery time.Duration // default 250 ms
	StallAfter time.Duration // default 2 s
}

// NoTimestamps, as Options.TSBytes, streams records without a device
// timestamp (the spec's ts=0): the host stamps them on arrival.
const NoTimestamps = -1

// Meter is a PMD-USB on a serial port.
type Meter struct {
	path, name string
	opts       Options
	env        meters.Env
	info       meters.Info
	dev        DeviceInfo

	core *serial.Core
}

var (
	_ meters.Meter    = (*Meter)(nil)
	_ meters.Reporter = (*Meter)(nil)
)

// New probes the device at path (handshake at 115200) and closes it again;
// Run reopens it.
func New(name, path string, opts Options, env meters.Env) (*Meter, error) {
	env = env.WithDefaults()
	if opts.Open == nil {
		opts.Open = serial.OpenPort
	}
	if opts.Sleep == nil {
		opts.Sleep = time.Sleep
	}
	if opts.Baud == 0 {
		opts.Baud = defaultBaud
	}
	switch opts.TSBytes {
	case 0:
		opts.TSBytes = 4
	case NoTimestamps, 2, 4:
	default:
		return nil, fmt.Errorf("%w: pmd-usb %s: %d timestamp bytes: want 4, 2 or NoTimestamps", meters.ErrSpec, path, opts.TSBytes)
	}
	if opts.Settle <= 0 {
		opts.Settle = 250 * time.Millisecond
	}
	if opts.RetryEvery <= 0 {
		opts.RetryEvery = 250 * time.Millisecond
	}
	if opts.StallAfter <= 0 {
		opts.StallAfter = 2 * time.Second
	}
	if len(opts.Channels) == 0 {
		opts.Channels = []int{PCIE1, PCIE2, EPS1, EPS2}
	}
	p, err := opts.Open(path, defaultBaud)
	if err != nil {
		return nil, fmt.Errorf("pmd-usb %s: %w", path, err)
	}
	_ = p.SetReadTimeout(50 * time.Millisecond)
	dev, err := Handshake(p, opts.Sleep, opts.Settle)
	p.Close()
	if err != nil {
		return nil, fmt.Errorf("pmd-usb %s: %w", path, err)
	}
	m := &Meter{path: path, name: name, opts: opts, env: env, dev: dev, core: serial.NewCore()}
	mode := "continuous transmit"
	if opts.Poll {
		mode = "polling"
	}
	m.info = meters.Info{
		Name: name, Driver: "pmd-usb", Kind: meters.Measured,
		Precision: Precision,
	}
	m.info.Description = fmt.Sprintf("ElmorLabs PMD-USB fw %d at %s, %s at %d baud, V x I per 12 V connector with the stored ADC offsets; %s",
		dev.Firmware, path, mode, opts.Baud, m.info.Precision)
	for _, c := range opts.Channels {
		m.info.Channels = append(m.info.Channels, meters.Channel{Name: PowerNames[c] + " 12V", InTotal: true, FullScaleW: FullScaleW})
	}
	return m, nil
}

// The ADC's reach: ±2047 steps of the 12-bit code (METER-PROTOCOLS.md,
// 2.7), ±15.49 V and ±99.9 A.
const (
	fullVolts = 2047 * VoltLSB
	fullAmps  = 2047 * AmpLSB
	// FullScaleW is where a channel's current saturates on its 12 V rail:
	// 99.9 A × 12 V = 1199 W. Every PMD-USB channel is a 12 V connector;
	// a reading at or above this may be clipped.
	FullScaleW = fullAmps * 12
)

// Precision is the PMD-USB's: the largest change one ADC step of current
// and one of voltage make to a reading's power anywhere in the range,
// ΔI·V_full + ΔV·I_full = 1.51 W (at 12 V and 10 A one step of current is
// 0.59 W). The vendor states no accuracy.
var Precision = meters.Precision{
	PowerStepW: AmpLSB*fullVolts + VoltLSB*fullAmps,
	Source: "power step: one 12-bit ADC step of current (0.0488 A) and of voltage (0.007568 V) at full scale " +
		"(METER-PROTOCOLS.md 2.7, from the vendor's host code); accuracy not stated: the firmware and hardware documents are not public",
}

// Info describes the meter.
func (m *Meter) Info() meters.Info { return m.info }

// Layout is the continuous-transmit layout the meter asks for.
func (m *Meter) Layout() Layout {
	var mask byte
	for _, c := range m.opts.Channels {
		mask |= 3 << (2 * c)
	}
	return Layout{TSBytes: max(m.opts.TSBytes, 0), Mask: mask}
}

// Report returns gaps, counters and the clock fit.
func (m *Meter) Report() meters.Report {
	return m.core.Report(func() map[string]any {
		return map[string]any{"firmware": int(m.dev.Firmware), "adc_offset": m.dev.AdcOffset, "baud": m.opts.Baud}
	})
}

// Run streams until ctx is done; a vanished device leaves a gap and is
// looked for again every RetryEvery.
func (m *Meter) Run(ctx context.Context, emit func(meters.Sample)) error {
	st := &state{m: m, emit: emit, energy: make([]float64, len(m.opts.Channels))}
	return m.core.Run(ctx, serial.Reconnect{
		Driver: "pmd-usb", Path: m.path, Baud: defaultBaud, Open: m.opts.Open,
		RetryEvery: m.opts.RetryEvery, Env: m.env,
		LastSample: func() time.Time { return st.lastT },
	}, func(port serial.Port) error { return m.session(ctx, port, st) })
}

type state struct {
	m      *Meter
	emit   func(meters.Sample)
	energy []float64
	prevW  []float64
	prevT  time.Time
	lastT  time.Time
	// satWarned is set once a saturated record was reported.
	satWarned bool
}

// sample emits one reading of every channel at host time t.
func (st *state) sample(t time.Time, raw *[AdcChannels]int16, off [AdcChannels]int8) {
	if t.Before(st.lastT) {
		t = st.lastT
	}
	if st.m.core.CloseGap(t) {
		st.prevT = time.Time{} // no energy across the gap
	}
	if st.prevW == nil {
		st.prevW = make([]float64, len(st.energy))
	}
	dt := t.Sub(st.prevT).Seconds()
	sat := false
	for i, c := range st.m.opts.Channels {
		sat = sat || saturated(raw[2*c]) || saturated(raw[2*c+1])
		w := Convert(2*c, raw[2*c], off) * Convert(2*c+1, raw[2*c+1], off)
		if !st.prevT.IsZero() && dt > 0 && dt < 1 {
			st.energy[i] += (w + st.prevW[i]) / 2 * dt
		}
		st.prevW[i] = w
		st.emit(meters.Sample{Channel: i, T: t, Watts: w, Joules: st.energy[i]})
	}
	if sat {
		st.countSaturated(st.m.core)
	}
	st.prevT, st.lastT = t, t
}

// saturated reports whether a raw 12-bit code is at the end of the ADC's
// range, where the reading may be clipped.
func saturated(raw int16) bool { return raw >= 2047 || raw <= -2048 }

// countSaturated counts a record with a channel at the end of its range, and
// warns the first time.
func (st *state) countSaturated(core *serial.Core) {
	if !st.satWarned {
		st.satWarned = true
		core.Warn("pmd-usb: a channel read the end of the ADC's range (±2047 steps): those readings may be clipped; see the saturated_records counter")
	}
	core.Count("saturated_records", 1)
}

func (m *Meter) session(ctx context.Context, port serial.Port, st *state) error {
	defer port.Close()
	_ = port.SetReadTimeout(50 * time.Millisecond)
	l := newLink(port, m.opts.Sleep)
	dev, err := Handshake(port, m.opts.Sleep, m.opts.Settle)
	if err != nil {
		return err
	}
	m.core.Lock() // Report reads dev
	m.dev = dev
	m.core.Unlock()
	baud := defaultBaud
	if m.opts.Baud != defaultBaud {
		if err := l.Write("baud change", UARTCommand(m.opts.Baud)...); err != nil {
			return err
		}
		m.opts.Sleep(100 * time.Millisecond)
		if err := port.SetBaud(m.opts.Baud); err != nil {
			return fmt.Errorf("pmd-usb: set host baud %d: %w", m.opts.Baud, err)
		}
		baud = m.opts.Baud
		l.Flush()
		if err := l.Write("welcome request", cmdWelcome); err != nil {
			return err
		}
		w := make([]byte, len(welcome))
		if err := l.ReadFull("welcome after baud change", w, replyTimeout); err != nil || string(w) != welcome {
			return fmt.Errorf("pmd-usb: no welcome at %d baud after the switch: %v", baud, err)
		}
	}
	defer func() {
		// Leave the device as found: stream off, 115200.
		_ = l.Write("stream off", cmdContTX, 0, 0, 0)
		if baud != defaultBaud {
			_ = l.Write("baud restore", UARTCommand(defaultBaud)...)
			m.opts.Sleep(100 * time.Millisecond)
		}
	}()
	m.core.ResetFit()
	if m.opts.Poll {
		return m.poll(ctx, l, st)
	}
	return m.stream(ctx, port, l, st, baud)
}

// poll reads READ_ADC (06) replies: self-aligned, host-stamped.
func (m *Meter) poll(ctx context.Context, l serial.Link, st *state) error {
	buf := make([]byte, 16)
	var raw [AdcChannels]int16
	for ctx.Err() == nil {
		l.Flush()
		if err := l.Write("adc request", cmdReadADC); err != nil {
			return err
		}
		if err := l.ReadFull("adc", buf, replyTimeout); err != nil {
			return err
		}
		t := m.env.Clock()
		for ch := range raw {
			raw[ch] = Raw12(buf[2*ch], buf[2*ch+1])
		}
		m.core.Count("polls", 1)
		st.sample(t, &raw, m.dev.AdcOffset)
	}
	return nil
}

// stream runs continuous transmit; without a lock for StallAfter it falls
// back to polling.
func (m *Meter) stream(ctx context.Context, port serial.Port, l serial.Link, st *state, baud int) error {
	lay := m.Layout()
	if err := l.Write("stream on", cmdContTX, 1, byte(lay.TSBytes), lay.Mask); err != nil {
		return err
	}
	sr := &streamer{m: m, st: st, lay: lay, dec: Decoder{Layout: lay}, tl: newTimeline(lay.TSBytes),
		recPeriod: time.Duration(float64(time.Second) * 10 * float64(lay.RecordLen()) / float64(baud))}
	var (
		buf      = make([]byte, 16*1024)
		lastData = time.Now()
		lastRec  = time.Now()
		pacer    serial.Pacer
	)
	for ctx.Err() == nil {
		n, err := port.Read(buf)
		now := time.Now()
		if err != nil {
			return fmt.Errorf("pmd-usb: read: %w", err)
		}
		if n > 0 {
			lastData = now
			if sr.chunk(buf[:n], m.env.Clock()) > 0 {
				lastRec = now
			}
		} else if now.Sub(lastData) > m.opts.StallAfter {
			return fmt.Errorf("pmd-usb: no data for %v", m.opts.StallAfter)
		}
		// Checked on every read: bytes that never make a record (a line
		// that loses a byte in every lock window) stall the stream as
		// surely as silence, and never give an empty read.
		if now.Sub(lastRec) > m.opts.StallAfter {
			m.core.Count("fallback_to_polling", 1)
			w := fmt.Sprintf("pmd-usb %s: continuous transmit gave no usable record for %v (%d bytes read); polling READ_ADC instead, host-stamped", m.path, m.opts.StallAfter, sr.dec.Stats.Bytes)
			m.core.Warn(w)
			m.env.Logf("%s", w)
			if err := stopStream(l, m.opts.Settle); err != nil {
				return err
			}
			return m.poll(ctx, l, st)
		}
		if n > 0 && lay.TSBytes >= 2 {
			// Timestamped records can wait for a batch; without timestamps
			// their times come from the chunk's arrival, so read at once.
			pacer.Wait(now)
		}
	}
	return nil
}

// streamer is one continuous-transmit session's decoding state.
type streamer struct {
	m         *Meter
	st        *state
	lay       Layout
	dec       Decoder
	tl        timeline
	prev      Stats
	recPeriod time.Duration // one record's time on the line
	recs      []record
	devNs     []int64
}

type record struct {
	raw    [AdcChannels]int16
	ts     uint32
	relock bool
}

// chunk decodes the bytes of one read, which arrived at host time host,
// emits their records and returns how many it emitted.
func (sr *streamer) chunk(p []byte, host time.Time) int {
	m := sr.m
	sr.recs = sr.recs[:0]
	sr.dec.Feed(p, func(r *Record) { sr.recs = append(sr.recs, record{r.Raw, r.TS, r.Relock}) })
	recs := sr.recs
	// The decoder holds the newest records back until the one after them
	// confirms them, so the chunk's arrival comes that many records after
	// the last one delivered.
	held, heldTicks, heldOK := sr.dec.Held()
	if sr.lay.TSBytes >= 2 {
		sr.devNs = sr.devNs[:0]
		uncheckedAt := -1
		for i, r := range recs {
			// When it was sent, taking the line as busy with the records
			// after it until the chunk arrived; used only to re-anchor.
			est := host.Add(-time.Duration(len(recs)-1-i+held) * sr.recPeriod)
			ns, how := sr.tl.place(r.ts, r.relock, est, host, m.core)
			if how == implausible {
				// The lock, or the timestamp before, cannot be trusted:
				// drop what is left of the chunk and hunt again. A record
				// just before whose step could not be checked (the first,
				// or one placed from the host clock) began the same lock,
				// which this step shows wrong (an offset whose
				// "timestamps" are other bytes can look steady): its data
				// are no reading either.
				cut := i
				if i > 0 && uncheckedAt == i-1 {
					cut = i - 1
				}
				m.core.Count("implausible_steps", 1)
				m.core.Count("resync_dropped_records", int64(len(recs)-cut))
				sr.dec.Unlock()
				recs, held = recs[:cut], 0
				sr.devNs = sr.devNs[:cut]
				break
			}
			if how == anchored {
				m.core.Count("timestamp_resyncs", 1)
			}
			if how.unchecked() {
				uncheckedAt = i
			}
			sr.devNs = append(sr.devNs, ns)
		}
		if n := len(sr.devNs); n > 0 {
			// Pair the arrival with the newest record read: by its
			// timestamp where it was checked against the last one
			// delivered, else by the line's record time.
			switch {
			case held == 0:
				m.core.AddFitPoint(sr.devNs[n-1], host)
			case heldOK:
				m.core.AddFitPoint(sr.devNs[n-1]+ticksToNs(int64(heldTicks)), host)
			default:
				m.core.AddFitPoint(sr.devNs[n-1], host.Add(-time.Duration(held)*sr.recPeriod))
			}
		}
	}
	for i := range recs {
		var t time.Time
		if sr.lay.TSBytes >= 2 {
			// No record was sent after its bytes arrived: the fit's
			// error (within StepSlack) must not stretch a recording past
			// the time it took.
			t = m.core.MapTime(sr.devNs[i])
			if t.After(host) {
				t = host
			}
		} else {
			// Without timestamps, stamp the records back from the chunk's
			// arrival at the line's record period.
			t = host.Add(-time.Duration(len(recs)-1-i+held) * sr.recPeriod)
		}
		sr.st.sample(t, &recs[i].raw, m.dev.AdcOffset)
	}
	s := sr.dec.Stats
	prev := sr.prev
	m.core.Tally(func(c map[string]int64) {
		c["bytes"] += s.Bytes - prev.Bytes
		c["records"] += s.Records - prev.Records
		c["dropped_bytes"] += s.DroppedBytes - prev.DroppedBytes
		c["rejected_records"] += s.RejectedRecords - prev.RejectedRecords
		c["locks"] += s.Locks - prev.Locks
		c["late_records"] += s.LateRecords - prev.LateRecords
		c["unconfirmed_records"] += s.Unconfirmed - prev.Unconfirmed
	})
	sr.prev = s
	return len(recs)
}
