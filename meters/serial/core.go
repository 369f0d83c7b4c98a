package serial

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/academemes/harness/meters"
)

// Core is the bookkeeping both serial meters share: the report (warnings,
// gaps, counters), the clock fit, the gap left open by a lost device, and
// the loop that reopens the port. Its mutex guards all of it; a driver may
// take it (Lock/Unlock) for its own fields that Report reads as well.
type Core struct {
	sync.Mutex
	report meters.Report
	fit    *ClockFitter
	gap    *meters.Gap // open gap: the device is lost; nil while it streams
}

// NewCore returns a Core with a clock fitter of the default bin and span.
func NewCore() *Core { return &Core{fit: NewClockFitter(0, 0)} }

// Count adds n to counter k.
func (c *Core) Count(k string, n int64) {
	c.Lock()
	c.countLocked(k, n)
	c.Unlock()
}

func (c *Core) countLocked(k string, n int64) {
	if c.report.Counters == nil {
		c.report.Counters = map[string]int64{}
	}
	c.report.Counters[k] += n
}

// Tally adds several counters under one lock: add gets the counters map.
// Drivers call it once per chunk read, not per frame.
func (c *Core) Tally(add func(counters map[string]int64)) {
	c.Lock()
	if c.report.Counters == nil {
		c.report.Counters = map[string]int64{}
	}
	add(c.report.Counters)
	c.Unlock()
}

// Warn adds a warning to the report.
func (c *Core) Warn(w ...string) {
	c.Lock()
	c.report.Warnings = append(c.report.Warnings, w...)
	c.Unlock()
}

// Report returns a copy of the report with the clock fit, if one is ready,
// and the details that details returns (called with the lock held).
func (c *Core) Report(details func() map[string]any) meters.Report {
	c.Lock()
	defer c.Unlock()
	r := c.report
	r.Counters = make(map[string]int64, len(c.report.Counters))
	for k, v := range c.report.Counters {
		r.Counters[k] = v
	}
	if c.fit.Ready() {
		cf := c.fit.Fit()
		r.ClockFit = &cf
	}
	if fails := c.fit.Failures(); len(fails) > 0 {
		r.Counters["clock_fit_failures"] = int64(len(fails))
		r.Warnings = slices.Clip(r.Warnings)
		for _, e := range fails {
			r.Warnings = append(r.Warnings, e.String())
		}
	}
	if details != nil {
		r.Details = details()
	}
	return r
}

// ResetFit forgets the clock fit: a reconnected device restarts its clock.
func (c *Core) ResetFit() {
	c.Lock()
	c.fit.Reset()
	c.Unlock()
}

// FitReady reports whether the clock fit maps device times yet.
func (c *Core) FitReady() bool {
	c.Lock()
	defer c.Unlock()
	return c.fit.Ready()
}

// AddFitPoint adds one (device ns, host time) pair to the clock fit.
func (c *Core) AddFitPoint(devNs int64, host time.Time) {
	c.Lock()
	c.fit.Add(devNs, host)
	c.Unlock()
}

// MapTime maps a device time in ns to the harness clock.
func (c *Core) MapTime(devNs int64) time.Time {
	c.Lock()
	defer c.Unlock()
	return c.fit.Map(devNs)
}

// Fitter is the clock fitter; use it only with the lock held.
func (c *Core) Fitter() *ClockFitter { return c.fit }

// GapOpen reports whether a lost device left a gap that no sample has
// closed yet.
func (c *Core) GapOpen() bool {
	c.Lock()
	defer c.Unlock()
	return c.gap != nil
}

// CloseGap ends the open gap, if any, at end and records it. It reports
// whether there was one.
func (c *Core) CloseGap(end time.Time) bool {
	c.Lock()
	defer c.Unlock()
	if c.gap == nil {
		return false
	}
	c.gap.End = end
	c.report.Gaps = append(c.report.Gaps, *c.gap)
	c.gap = nil
	return true
}

// Reconnect says how to reach the device again.
type Reconnect struct {
	Driver     string // for messages: "powersensor3"
	Path       string
	Baud       int
	Open       Opener
	RetryEvery time.Duration
	Env        meters.Env
	// LastSample is when the last sample was emitted (zero: none yet): a
	// gap starts there, not when the loss was noticed.
	LastSample func() time.Time
}

// Run opens the port and runs session on it until ctx ends. When session
// returns while ctx is still live, the device is lost: a gap opens (from
// the last sample) unless one is open already, "disconnects" counts it,
// and the port is opened again every RetryEvery. The session closes the
// gap at its first sample. A port that cannot be opened the first time is
// an error; later it is one more retry.
func (c *Core) Run(ctx context.Context, rc Reconnect, session func(Port) error) error {
	for first := true; ; first = false {
		port, err := rc.Open(rc.Path, rc.Baud)
		if err == nil {
			err = session(port)
		} else if first {
			return fmt.Errorf("%s %s: %w", rc.Driver, rc.Path, err)
		}
		if ctx.Err() != nil {
			c.CloseGap(rc.Env.Clock())
			return nil
		}
		if !c.GapOpen() {
			start := rc.LastSample()
			if start.IsZero() {
				start = rc.Env.Clock()
			}
			c.Lock()
			c.gap = &meters.Gap{Start: start, Reason: fmt.Sprintf("device lost: %v", err)}
			c.countLocked("disconnects", 1)
			c.Unlock()
			rc.Env.Logf("%s %s: %v; retrying every %v", rc.Driver, rc.Path, err, rc.RetryEvery)
		}
		select {
		case <-ctx.Done():
			c.CloseGap(rc.Env.Clock())
			return nil
		case <-time.After(rc.RetryEvery):
		}
	}
}

// Link runs the request/response part of a session over any
// io.ReadWriter. A Read that returns 0, nil is a poll timeout (as
// go.bug.st/serial reports one); a deadline bounds how long it retries.
type Link struct {
	RW    io.ReadWriter
	Sleep func(time.Duration)
	// Name prefixes errors ("powersensor3"); ErrTimeout is what a reply
	// that does not come in time wraps.
	Name       string
	ErrTimeout error
}

// Write sends b; what names it in an error.
func (l Link) Write(what string, b ...byte) error {
	if _, err := l.RW.Write(b); err != nil {
		return fmt.Errorf("%s: write %s: %w", l.Name, what, err)
	}
	return nil
}

// ReadFull fills buf, or fails when no byte came for timeout.
func (l Link) ReadFull(what string, buf []byte, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for got := 0; got < len(buf); {
		n, err := l.RW.Read(buf[got:])
		got += n
		if err != nil {
			return fmt.Errorf("%s: read %s (%d of %d bytes): %w", l.Name, what, got, len(buf), err)
		}
		if n == 0 && time.Now().After(deadline) {
			return fmt.Errorf("%w: %s: %d of %d bytes after %v", l.ErrTimeout, what, got, len(buf), timeout)
		}
	}
	return nil
}

// Flush discards pending input where the port can (tcflush); a script or a
// plain io.ReadWriter has nothing to flush.
func (l Link) Flush() {
	if f, ok := l.RW.(interface{ ResetInputBuffer() error }); ok {
		_ = f.ResetInputBuffer()
	}
}

// ReadEvery paces a stream's reads when its samples carry device
// timestamps. At the PowerSensor3's ~20,000 frames/s (360 kB/s) 8 ms is
// ~2.9 KB a read (a PMD-USB at 2 Mbaud sends less): inside the 4 KiB the
// kernel's tty line discipline holds before it throttles the device
// (n_tty's buffer), with room for a late wake-up. On a 2-core VM every
// read cost ~100 µs of CPU in thread wake-ups whatever it carried, so the
// CPU share follows the reads per second: reading every 3 ms cost 2.9% of
// a core, every 8 ms 1.2% (powersensor3's BenchmarkBaselineRead).
const ReadEvery = 8 * time.Millisecond

// FullRead is a read that took all the kernel's tty line discipline holds
// at once (n_tty's 4 KiB buffer gives 4095 or 4096 bytes): more bytes
// were waiting behind it. A stream that paced such reads could read at
// most 4 KiB a ReadEvery plus its own time, barely more than a
// PowerSensor3 sends; on a busy machine, where each pass of the read loop
// took longer, the driver fell behind for good, and every frame arrived
// later than the one before.
const FullRead = 4095

// Pacer paces a stream's reads to one every ReadEvery, except that every
// 50 ms it lets two reads through at once: the first takes what is
// buffered, the second waits for the next data and so sees it as soon as
// it arrives. That fresh chunk gives the clock fit (which keeps the
// lowest-latency point of each 100 ms bin) a point without the pause in
// it. Paced reads alone would lag the data by up to ReadEvery, and by a
// lag that wanders slowly when the device's packet period divides
// ReadEvery, which bent the fit by ~100 ppm in a test.
type Pacer struct {
	// Sleep waits; nil means time.Sleep.
	Sleep func(time.Duration)
	fresh time.Time // when the last pair of unpaced reads began
	free  int       // unpaced reads left in the pair
}

// Wait is called after each read that started at start.
func (p *Pacer) Wait(start time.Time) {
	if p.free > 0 {
		p.free--
		return
	}
	if start.Sub(p.fresh) >= 50*time.Millisecond {
		p.fresh, p.free = start, 1
		return
	}
	if d := ReadEvery - time.Since(start); d > 0 {
		if p.Sleep != nil {
			p.Sleep(d)
		} else {
			time.Sleep(d)
		}
	}
}
