package pmdusb

import "time"

// StepSlack is how far past its arrival a record's device time, mapped to
// the host clock by the clock fit, may fall before its timestamp step is
// called implausible. A record cannot have been sent after it was read, so
// only the fit's error (a few ms) and the latency of the chunk the fit
// started from need room; a u32 wrap (1431 s), a lock one byte early (each
// step 256 periods) or a restarted counter lands far beyond it.
const StepSlack = 500 * time.Millisecond

// clockMap is the clock fit as the timeline reads it (serial.Core).
type clockMap interface {
	FitReady() bool
	MapTime(devNs int64) time.Time
}

// placement says how the timeline placed a record.
type placement int

const (
	placed      placement = iota // by its timestamp's step from the last record
	anchored                     // from the host clock: the step was unknown
	implausible                  // not placed: the step would put it after its arrival
	first                        // the session's first record, at device time 0
)

// unchecked reports whether a record so placed had no step to check: the
// step after it is the first test of its lock.
func (p placement) unchecked() bool { return p == anchored || p == first }

// timeline turns record timestamps (3 MHz ticks, TSBytes wide) into a
// running device time for the clock fit.
//
// A step between timestamps is taken modulo the timestamp's width, so a
// timestamp that is wrong, or a record from a wrong lock, can move device
// time by up to a whole wrap (1431 s for u32) and bend the clock fit with
// it. So a step is checked against the host clock through the fit: a
// record that would map later than StepSlack after its chunk arrived is
// implausible. The caller drops it (and the rest of its chunk) and makes the
// decoder hunt again, and the next record is re-anchored: its device time
// is the host's estimate of when it was sent. With 2-byte timestamps (a
// wrap every 21.8 ms) the records lost while the decoder hunted may hide
// whole wraps, so the first record after a lock is re-anchored too.
type timeline struct {
	wrap    uint64 // 2^(8 TSBytes)
	started bool
	anchor  bool   // place the next record from the host clock
	last    uint32 // timestamp of the last record placed
	ticks   int64  // its device time in 3 MHz ticks since the first record
	// firstSent is when the first record was sent, as estimated from its
	// chunk's arrival: until the clock fit has a point, the records of
	// the first chunk are checked against it.
	firstSent time.Time
}

func newTimeline(tsBytes int) timeline { return timeline{wrap: 1 << (8 * uint(tsBytes))} }

func ticksToNs(t int64) int64 { return t * 1000 / 3 }

// place returns the device time in ns of a record stamped ts, the first
// after a lock if relock, read in a chunk that arrived at host time arrived
// and estimated to have been sent at est.
func (tl *timeline) place(ts uint32, relock bool, est, arrived time.Time, fit clockMap) (int64, placement) {
	if !tl.started {
		tl.started, tl.last, tl.ticks, tl.firstSent = true, ts, 0, est
		return 0, first
	}
	// Device time read on the host clock: through the fit once it has a
	// point; before that (the first chunk) from the first record's
	// estimated sending. A step trusted unchecked would move the fit's
	// first point, and with it every sample of the session, by as much as
	// a whole wrap.
	onHost := func(ns int64) time.Time { return tl.firstSent.Add(time.Duration(ns)) }
	if fit.FitReady() {
		onHost = fit.MapTime
	}
	if tl.anchor || (relock && tl.wrap < 1<<32) {
		d := est.Sub(onHost(ticksToNs(tl.ticks)))
		tl.ticks += max(d.Nanoseconds()*3/1000, 1)
		tl.last, tl.anchor = ts, false
		return ticksToNs(tl.ticks), anchored
	}
	ticks := tl.ticks + int64(uint64(ts-tl.last)&(tl.wrap-1))
	if onHost(ticksToNs(ticks)).After(arrived.Add(StepSlack)) {
		tl.anchor = true
		return 0, implausible
	}
	tl.ticks, tl.last = ticks, ts
	return ticksToNs(ticks), placed
}
