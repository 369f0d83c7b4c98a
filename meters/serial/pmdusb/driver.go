package pmdusb

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/academemes/harness/meters"
	"github.com/academemes/harness/meters/serial"
)

// Options configure a Meter.
type Options struct {
	Baud     int   // line speed for streaming; the device starts at 115200 and is switched with command 08
	Channels []int // power channels (PCIE1..EPS2 indexes); default all four
	TSBytes  int   // timestamp width in continuous mode: 0, 2 or 4 (default 4)
	Poll     bool  // poll READ_ADC (06) instead of continuous transmit
	Open     serial.Opener
	Sleep    func(time.Duration)
	// Settle is how long the line is left to drain after stopping the
	// stream (default 250 ms).
	Settle     time.Duration
	RetryEvery time.Duration // default 250 ms
	StallAfter time.Duration // default 2 s
}

// Meter is a PMD-USB on a serial port.
type Meter struct {
	path, name string
	opts       Options
	env        meters.Env
	info       meters.Info
	dev        DeviceInfo

	mu     sync.Mutex
	report meters.Report
	fit    *serial.ClockFitter
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
	m := &Meter{path: path, name: name, opts: opts, env: env, dev: dev, fit: serial.NewClockFitter(0, 0)}
	mode := "continuous transmit"
	if opts.Poll {
		mode = "polling"
	}
	m.info = meters.Info{
		Name: name, Driver: "pmd-usb", Kind: meters.Measured,
		Description: fmt.Sprintf("ElmorLabs PMD-USB fw %d at %s, %s at %d baud, V x I per 12 V connector with the stored ADC offsets", dev.Firmware, path, mode, opts.Baud),
	}
	for _, c := range opts.Channels {
		m.info.Channels = append(m.info.Channels, meters.Channel{Name: PowerNames[c] + " 12V", InTotal: true})
	}
	return m, nil
}

// Info describes the meter.
func (m *Meter) Info() meters.Info { return m.info }

// Layout is the continuous-transmit layout the meter asks for.
func (m *Meter) Layout() Layout {
	var mask byte
	for _, c := range m.opts.Channels {
		mask |= 3 << (2 * c)
	}
	return Layout{TSBytes: m.opts.TSBytes, Mask: mask}
}

// Report returns gaps, counters and the clock fit.
func (m *Meter) Report() meters.Report {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.report
	r.Counters = map[string]int64{}
	for k, v := range m.report.Counters {
		r.Counters[k] = v
	}
	if m.fit.Ready() {
		cf := m.fit.Fit()
		r.ClockFit = &cf
	}
	r.Details = map[string]any{"firmware": int(m.dev.Firmware), "adc_offset": m.dev.AdcOffset, "baud": m.opts.Baud}
	return r
}

func (m *Meter) count(k string, n int64) {
	m.mu.Lock()
	if m.report.Counters == nil {
		m.report.Counters = map[string]int64{}
	}
	m.report.Counters[k] += n
	m.mu.Unlock()
}

// Run streams until ctx is done; a vanished device leaves a gap and is
// looked for again every RetryEvery.
func (m *Meter) Run(ctx context.Context, emit func(meters.Sample)) error {
	st := &state{m: m, emit: emit, energy: make([]float64, len(m.opts.Channels))}
	var gap *meters.Gap
	for first := true; ; first = false {
		port, err := m.opts.Open(m.path, defaultBaud)
		if err == nil {
			err = m.session(ctx, port, st, &gap)
		} else if first {
			return fmt.Errorf("pmd-usb %s: %w", m.path, err)
		}
		if ctx.Err() != nil {
			m.closeGap(&gap, m.env.Clock())
			return nil
		}
		if gap == nil {
			start := st.lastT
			if start.IsZero() {
				start = m.env.Clock()
			}
			gap = &meters.Gap{Start: start, Reason: fmt.Sprintf("device lost: %v", err)}
			m.count("disconnects", 1)
			m.env.Logf("pmd-usb %s: %v; retrying every %v", m.path, err, m.opts.RetryEvery)
		}
		select {
		case <-ctx.Done():
			m.closeGap(&gap, m.env.Clock())
			return nil
		case <-time.After(m.opts.RetryEvery):
		}
	}
}

func (m *Meter) closeGap(g **meters.Gap, end time.Time) {
	if *g == nil {
		return
	}
	(*g).End = end
	m.mu.Lock()
	m.report.Gaps = append(m.report.Gaps, **g)
	m.mu.Unlock()
	*g = nil
}

type state struct {
	m      *Meter
	emit   func(meters.Sample)
	energy []float64
	prevW  []float64
	prevT  time.Time
	lastT  time.Time
}

// sample emits one reading of every channel at host time t.
func (st *state) sample(t time.Time, raw *[AdcChannels]int16, off [AdcChannels]int8, gap **meters.Gap) {
	if t.Before(st.lastT) {
		t = st.lastT
	}
	if *gap != nil {
		st.m.closeGap(gap, t)
		st.prevT = time.Time{}
	}
	if st.prevW == nil {
		st.prevW = make([]float64, len(st.energy))
	}
	dt := t.Sub(st.prevT).Seconds()
	for i, c := range st.m.opts.Channels {
		w := Convert(2*c, raw[2*c], off) * Convert(2*c+1, raw[2*c+1], off)
		if !st.prevT.IsZero() && dt > 0 && dt < 1 {
			st.energy[i] += (w + st.prevW[i]) / 2 * dt
		}
		st.prevW[i] = w
		st.emit(meters.Sample{Channel: i, T: t, Watts: w, Joules: st.energy[i]})
	}
	st.prevT, st.lastT = t, t
}

func (m *Meter) session(ctx context.Context, port serial.Port, st *state, gap **meters.Gap) error {
	defer port.Close()
	_ = port.SetReadTimeout(50 * time.Millisecond)
	l := link{rw: port, sleep: m.opts.Sleep}
	dev, err := Handshake(port, m.opts.Sleep, m.opts.Settle)
	if err != nil {
		return err
	}
	m.dev = dev
	baud := defaultBaud
	if m.opts.Baud != defaultBaud {
		if err := l.write("baud change", UARTCommand(m.opts.Baud)...); err != nil {
			return err
		}
		m.opts.Sleep(100 * time.Millisecond)
		if err := port.SetBaud(m.opts.Baud); err != nil {
			return fmt.Errorf("pmd-usb: set host baud %d: %w", m.opts.Baud, err)
		}
		baud = m.opts.Baud
		l.flush()
		if err := l.write("welcome request", cmdWelcome); err != nil {
			return err
		}
		w := make([]byte, len(welcome))
		if err := l.readFull("welcome after baud change", w, replyTimeout); err != nil || string(w) != welcome {
			return fmt.Errorf("pmd-usb: no welcome at %d baud after the switch: %v", baud, err)
		}
	}
	defer func() {
		// Leave the device as found: stream off, 115200.
		_ = l.write("stream off", cmdContTX, 0, 0, 0)
		if baud != defaultBaud {
			_ = l.write("baud restore", UARTCommand(defaultBaud)...)
			m.opts.Sleep(100 * time.Millisecond)
		}
	}()
	m.mu.Lock()
	m.fit.Reset()
	m.mu.Unlock()
	if m.opts.Poll {
		return m.poll(ctx, l, st, gap)
	}
	return m.stream(ctx, port, l, st, gap, baud)
}

// poll reads READ_ADC (06) replies: self-aligned, host-stamped.
func (m *Meter) poll(ctx context.Context, l link, st *state, gap **meters.Gap) error {
	buf := make([]byte, 16)
	var raw [AdcChannels]int16
	for ctx.Err() == nil {
		l.flush()
		if err := l.write("adc request", cmdReadADC); err != nil {
			return err
		}
		if err := l.readFull("adc", buf, replyTimeout); err != nil {
			return err
		}
		t := m.env.Clock()
		for ch := range raw {
			raw[ch] = Raw12(buf[2*ch], buf[2*ch+1])
		}
		m.count("polls", 1)
		st.sample(t, &raw, m.dev.AdcOffset, gap)
	}
	return nil
}

// stream runs continuous transmit; without a lock for StallAfter it falls
// back to polling.
func (m *Meter) stream(ctx context.Context, port serial.Port, l link, st *state, gap **meters.Gap, baud int) error {
	lay := m.Layout()
	if err := l.write("stream on", cmdContTX, 1, byte(lay.TSBytes), lay.Mask); err != nil {
		return err
	}
	dec := Decoder{Layout: lay}
	var (
		buf       = make([]byte, 16*1024)
		lastData  = time.Now()
		lastRec   = time.Now()
		prev      Stats
		epoch     uint32
		haveEpoch bool
		devTicks  int64 // unwrapped 3 MHz ticks
		lastTS    uint32
		recPeriod = time.Duration(float64(time.Second) * 10 * float64(lay.RecordLen()) / float64(baud))
	)
	wrap := uint64(1) << (8 * lay.TSBytes)
	for ctx.Err() == nil {
		n, err := port.Read(buf)
		now := time.Now()
		if err != nil {
			return fmt.Errorf("pmd-usb: read: %w", err)
		}
		if n == 0 {
			if now.Sub(lastData) > m.opts.StallAfter {
				return fmt.Errorf("pmd-usb: no data for %v", m.opts.StallAfter)
			}
			if now.Sub(lastRec) > m.opts.StallAfter && !m.opts.Poll {
				m.count("fallback_to_polling", 1)
				m.env.Logf("pmd-usb %s: continuous transmit gave no usable records; polling instead", m.path)
				if err := l.stopStream(m.opts.Settle); err != nil {
					return err
				}
				return m.poll(ctx, l, st, gap)
			}
			continue
		}
		lastData = now
		host := m.env.Clock()
		// Records in this chunk: without timestamps, stamp them back from
		// the chunk's arrival at the line's record period.
		var recs [][AdcChannels]int16
		var ticks []int64
		dec.Feed(buf[:n], func(r *Record) {
			recs = append(recs, r.Raw)
			if lay.TSBytes >= 2 {
				if !haveEpoch {
					epoch, haveEpoch, lastTS = r.TS, true, r.TS
				}
				devTicks += int64(uint64(r.TS-lastTS) & (wrap - 1))
				lastTS = r.TS
				ticks = append(ticks, devTicks)
			}
		})
		_ = epoch
		if len(recs) > 0 {
			lastRec = now
		}
		if lay.TSBytes >= 2 && len(ticks) > 0 {
			m.mu.Lock()
			m.fit.Add(ticks[len(ticks)-1]*1000/3, host)
			m.mu.Unlock()
		}
		for i := range recs {
			var t time.Time
			if lay.TSBytes >= 2 {
				m.mu.Lock()
				t = m.fit.Map(ticks[i] * 1000 / 3)
				m.mu.Unlock()
			} else {
				t = host.Add(-time.Duration(len(recs)-1-i) * recPeriod)
			}
			st.sample(t, &recs[i], m.dev.AdcOffset, gap)
		}
		s := dec.Stats
		m.mu.Lock()
		if m.report.Counters == nil {
			m.report.Counters = map[string]int64{}
		}
		c := m.report.Counters
		c["bytes"] += s.Bytes - prev.Bytes
		c["records"] += s.Records - prev.Records
		c["dropped_bytes"] += s.DroppedBytes - prev.DroppedBytes
		c["rejected_records"] += s.RejectedRecords - prev.RejectedRecords
		c["locks"] += s.Locks - prev.Locks
		c["late_records"] += s.LateRecords - prev.LateRecords
		m.mu.Unlock()
		prev = s
	}
	return nil
}
