// Package pmdusb reads an ElmorLabs PMD-USB (the EPS and PCIe 12 V power
// connectors, through a CH340 USB-UART) as a harness meter.
//
// The wire protocol is documented in firmware-notes/pmd-usb.md. The decoder
// here is pure; the driver runs the session over an io.ReadWriter.
package pmdusb

import (
	"encoding/binary"
	"math/bits"
	"slices"
)

// Channels of the ADC, in wire order: voltage and current per connector.
const (
	PCIE1 = iota // power channel indexes: PCIE1, PCIE2, EPS1, EPS2
	PCIE2
	EPS1
	EPS2
	PowerChannels = 4
	AdcChannels   = 8
	VoltLSB       = 0.007568 // V per 12-bit LSB
	AmpLSB        = 0.0488   // A per 12-bit LSB
)

// PowerNames names the power channels as the vendor GUI does.
var PowerNames = [PowerChannels]string{"PCIE1", "PCIE2", "EPS1", "EPS2"}

// Layout is a continuous-transmit record layout: command 07 01 TS MASK.
type Layout struct {
	TSBytes int  // 0, 1, 2 or 4
	Mask    byte // bit n: ADC channel n (even: voltage, odd: current)
}

// RecordLen is TSBytes + 2 per channel in Mask.
func (l Layout) RecordLen() int { return l.TSBytes + 2*bits.OnesCount8(l.Mask) }

// Record is one decoded record.
type Record struct {
	TS  uint32             // device timestamp, 3 MHz ticks, TSBytes wide
	Raw [AdcChannels]int16 // 12-bit signed codes for the channels in Mask
	// Relock marks the first record after the lock was found (again): its
	// timestamp's step from the record delivered before it was not
	// checked, and with 2-byte timestamps it may hide whole wraps.
	Relock bool
}

// Raw12 decodes a wire word: a 12-bit two's-complement value, left-justified.
func Raw12(lo, hi byte) int16 { return int16(uint16(lo)|uint16(hi)<<8) >> 4 }

// Stats counts the decoder's work and losses. Counters only grow.
type Stats struct {
	Bytes           int64
	Records         int64 // delivered
	DroppedBytes    int64 // skipped while hunting for a record boundary
	RejectedRecords int64 // records that failed the lock check (the lock is then lost)
	Locks           int64 // times a record boundary was found
	LateRecords     int64 // records further than 2 periods after the previous: records lost
	// Unconfirmed counts records that passed their own checks and were
	// dropped because the record after them did not confirm them: a late
	// timestamp that the next record does not follow on from (a corrupted
	// timestamp byte, which would otherwise move device time), or a record
	// followed by one that fails (a byte lost inside it shifts its tail,
	// which its own checks may not see).
	Unconfirmed int64
}

// Decoder finds record boundaries in a stream that has no sync word and no
// checksum, keeps the lock while the records stay consistent, and finds it
// again when they do not.
//
// Hunting: with LockRecords records buffered it tries every byte offset in
// [0, RecordLen) and keeps the one whose timestamp deltas are positive and
// steady and whose words vary least from record to record (a misaligned
// word is built from the low byte of one value and the high byte of the
// next, so it jumps). Once a period is known, a new hunt accepts only
// offsets whose median delta is within [period/2, 2 periods]: when a
// corrupted record spoils the right offset's window, the offset one byte
// early still has steady deltas (256 times the period) and would win.
// Locked: each record's timestamp delta must lie within [period/2, 2
// periods]; a record up to MaxGapPeriods late with plausible data is held
// back until the next record lands one period after it, and dropped if it
// does not (one corrupted timestamp byte must not move device time).
// Without timestamps, voltage words must stay non-negative and not jump by
// more than JumpLSB in JumpRun records running.
//
// No record is delivered before the record after it has passed too. A
// byte lost inside a record leaves its head, timestamp included, where it
// was and shifts its tail by one byte: a word then reads the high byte of
// one value and the low byte of the next (or of the next record's
// timestamp), often a plausible but wrong current. Nothing in the record
// shows it; the next record, read one byte late, does. So a record that
// passes is held, delivered when the next one passes, and dropped when the
// next one fails. Without timestamps a record only confirms those before it
// when its voltages did not jump, since a shifted record may still look
// plausible.
type Decoder struct {
	Layout      Layout
	LockRecords int // records examined per hunt (default 16, at least 2)
	Stats       Stats

	buf        []byte
	locked     bool
	relock     bool    // the next record that passes is the first since a lock
	period     float64 // timestamp ticks per record
	havePeriod bool    // period was learnt by an earlier lock: hunts must match it
	lastTS     uint32  // timestamp of the last record that passed
	haveLast   bool
	// held are records that passed, oldest first, waiting for a record
	// after them to confirm their alignment. With timestamps there is at
	// most one; without, the one before a run of voltage jumps and the
	// jumped ones.
	held  [JumpRun]Record
	nHeld int
	// heldStep is the timestamp step in ticks from the record delivered
	// last to the newest held one, when that one was checked against it
	// (heldFollows): the driver dates the read by it.
	heldStep    uint64
	heldFollows bool
	step        uint64 // the step check accepted for the record it passed
	stepOK      bool
	pending     Record // a late record waiting for the next one to confirm it
	hasPending  bool
	lastV       [AdcChannels]int16
	suspect     int
	chans       []int // channel indexes in Mask order
	rec         Record
	// huntRecs and huntDeltas are hunt's scratch, kept so that hunting
	// through garbage, which runs at every byte offset, allocates nothing.
	huntRecs   []Record
	huntDeltas []float64
	huntSorted []float64
}

// verdict is what check makes of a record.
type verdict int

const (
	accept  verdict = iota // passes and confirms the records held
	jumped                 // passes, but a voltage jumped: confirms nothing
	hold                   // late: wait for the next record
	confirm                // follows on from the late record: deliver it too
	reject                 // the lock is lost
)

// JumpLSB, JumpRun and MaxGapPeriods are the lock checks' limits.
const (
	JumpLSB       = 200 // 1.5 V on a voltage channel
	JumpRun       = 3   // records running whose voltages jump drop a lock without timestamps
	MaxGapPeriods = 1000
)

func (d *Decoder) init() {
	if d.chans == nil {
		for ch := 0; ch < AdcChannels; ch++ {
			if d.Layout.Mask&(1<<ch) != 0 {
				d.chans = append(d.chans, ch)
			}
		}
	}
	switch {
	case d.LockRecords <= 0:
		d.LockRecords = 16
	case d.LockRecords < 2:
		d.LockRecords = 2 // a hunt needs a timestamp delta
	}
}

// Reset drops buffered bytes and the lock (after a restart of the stream).
func (d *Decoder) Reset() {
	d.Unlock()
	d.buf = d.buf[:0]
}

// Unlock drops the lock and the record period it learnt, so that the next
// record boundary is hunted afresh from the bytes still to come. The driver
// calls it when timestamps disagree with the host clock: a lock on the
// wrong byte offset can look steady, and a period learnt from it would keep
// later hunts on that offset.
func (d *Decoder) Unlock() {
	d.dropHeld()
	d.locked, d.haveLast, d.havePeriod, d.suspect = false, false, false, 0
}

// Held reports how many records have passed their own checks and wait for
// the record after them to confirm them. The driver dates a read's records
// back from its arrival, and these were on the line after the last one
// delivered. With timestamps, ticks is the step from the last record
// delivered to the newest held one, when ok: that one was checked against
// it (not so after a new lock, or without timestamps).
func (d *Decoder) Held() (n int, ticks uint64, ok bool) {
	n = d.nHeld
	if d.hasPending {
		n++
	}
	return n, d.heldStep, d.heldFollows && d.nHeld == 1 && d.Layout.TSBytes >= 2
}

// dropHeld drops the records that wait for confirmation: the record after
// them failed, or the lock is given up.
func (d *Decoder) dropHeld() {
	d.dropPending()
	d.Stats.Unconfirmed += int64(d.nHeld)
	d.nHeld, d.heldFollows = 0, false
}

func (d *Decoder) deliverHeld(fn func(*Record)) {
	for i := range d.nHeld {
		d.Stats.Records++
		fn(&d.held[i])
	}
	d.nHeld = 0
}

func (d *Decoder) dropPending() {
	if d.hasPending {
		d.Stats.Unconfirmed++
		d.hasPending = false
	}
}

func (d *Decoder) decode(p []byte, r *Record) {
	switch d.Layout.TSBytes {
	case 1:
		r.TS = uint32(p[0])
	case 2:
		r.TS = uint32(binary.LittleEndian.Uint16(p))
	case 4:
		r.TS = binary.LittleEndian.Uint32(p)
	default:
		r.TS = 0
	}
	r.Relock = false
	q := p[d.Layout.TSBytes:]
	for i, ch := range d.chans {
		r.Raw[ch] = Raw12(q[2*i], q[2*i+1])
	}
}

func (d *Decoder) tsDelta(a, b uint32) uint64 {
	w := uint(8 * d.Layout.TSBytes)
	return uint64(b-a) & (1<<w - 1)
}

func (d *Decoder) wrap() uint64 { return 1 << uint(8*d.Layout.TSBytes) }

// Feed decodes p and calls fn for every record accepted, in order. The
// *Record is reused.
func (d *Decoder) Feed(p []byte, fn func(*Record)) {
	d.init()
	R := d.Layout.RecordLen()
	if R == 0 {
		return
	}
	d.Stats.Bytes += int64(len(p))
	d.buf = append(d.buf, p...)
	pos := 0
	for {
		if !d.locked {
			need := (d.LockRecords + 1) * R
			if len(d.buf)-pos < need {
				break
			}
			o, ok := d.hunt(d.buf[pos:pos+need], R)
			if !ok {
				d.Stats.DroppedBytes += int64(R)
				pos += R
				continue
			}
			d.Stats.DroppedBytes += int64(o)
			pos += o
			d.locked, d.haveLast, d.suspect, d.relock = true, false, 0, true
			d.Stats.Locks++
		}
		if len(d.buf)-pos < R {
			break
		}
		d.decode(d.buf[pos:pos+R], &d.rec)
		v := d.check(&d.rec)
		if v == reject {
			// The records held may end in the bytes that put this one
			// out of line.
			d.Stats.RejectedRecords++
			d.dropHeld()
			d.locked = false
			continue // hunt again from this record's first byte
		}
		pos += R
		d.rec.Relock, d.relock = d.relock, false
		switch v {
		case hold:
			d.pending, d.hasPending = d.rec, true
			continue
		case confirm:
			d.deliverHeld(fn)
			d.hasPending = false
			d.Stats.Records++
			d.Stats.LateRecords++
			fn(&d.pending)
		case accept:
			d.deliverHeld(fn)
		}
		d.held[d.nHeld] = d.rec
		d.nHeld++
		d.heldStep, d.heldFollows = d.step, d.stepOK
	}
	n := copy(d.buf, d.buf[pos:])
	d.buf = d.buf[:n]
}

// steady reports whether a timestamp delta is one record period.
func (d *Decoder) steady(dt float64) bool { return dt >= d.period/2 && dt <= 2*d.period }

// check applies the locked-state tests to r and updates the running state.
//
// A late timestamp is either records lost on the line or a corrupted
// timestamp byte (a flipped bit in byte 1 of a u32 moves it by up to
// 42,240 ticks, within MaxGapPeriods). Only the next record tells them
// apart: lost records leave it one period after the late one; a corrupted
// byte leaves it one or two periods after the record before.
func (d *Decoder) check(r *Record) verdict {
	if d.Layout.TSBytes >= 2 {
		if !d.plausible(r) {
			d.dropPending()
			return reject
		}
		if !d.haveLast {
			d.lastTS, d.haveLast, d.stepOK = r.TS, true, false
			return accept
		}
		if d.hasPending {
			if dp := d.tsDelta(d.pending.TS, r.TS); d.steady(float64(dp)) {
				d.period += (float64(dp) - d.period) / 64
				d.lastTS = r.TS
				d.step, d.stepOK = dp, true
				return confirm
			}
			d.dropPending() // judge r against the last record that passed
		}
		step := d.tsDelta(d.lastTS, r.TS)
		dt := float64(step)
		limit := min(MaxGapPeriods*d.period, float64(d.wrap())/4)
		switch {
		case d.steady(dt):
			d.period += (dt - d.period) / 64
			d.lastTS = r.TS
			d.step, d.stepOK = step, true
			return accept
		case dt > 2*d.period && dt <= limit:
			return hold
		default:
			return reject
		}
	}
	if !d.plausible(r) {
		return reject
	}
	jump := false
	for _, ch := range d.chans {
		if ch%2 == 0 && d.haveLast && abs16(r.Raw[ch]-d.lastV[ch]) > JumpLSB {
			jump = true
		}
	}
	d.stepOK = false
	if jump {
		d.suspect++
		if d.suspect >= JumpRun {
			return reject
		}
		d.lastV = r.Raw
		return jumped
	}
	d.suspect = 0
	d.lastV, d.haveLast = r.Raw, true
	return accept
}

// plausible: voltage words are at least -20 LSB (a rail reads >= 0 V).
func (d *Decoder) plausible(r *Record) bool {
	for _, ch := range d.chans {
		if ch%2 == 0 && r.Raw[ch] < -20 {
			return false
		}
		if ch%2 == 1 && r.Raw[ch] < -100 {
			return false
		}
	}
	return true
}

func abs16(v int16) int16 {
	if v < 0 {
		return -v
	}
	return v
}

// hunt scores every offset of window and returns the best acceptable one.
//
// With timestamps, the smallest steady median delta wins: any misalignment
// moves real timestamp bytes up the word (a 1-byte shift multiplies the
// delta by 256), or builds the "timestamp" from ADC words, whose deltas are
// not steady. Ties, and streams without timestamps, go to the offset whose
// voltage words look most like 12 V rails (1300..1800 LSB, 9.8..13.6 V) and
// whose words vary least from record to record: a rotation by one word puts
// current words in voltage slots, a 1-byte shift mixes bytes of two words.
func (d *Decoder) hunt(window []byte, R int) (int, bool) {
	best := -1
	var bestMed, bestScore float64
	n := d.LockRecords
	if cap(d.huntRecs) < n {
		d.huntRecs = make([]Record, n)
		d.huntDeltas = make([]float64, 0, n)
		d.huntSorted = make([]float64, 0, n)
	}
	recs := d.huntRecs[:n]
offsets:
	for o := 0; o < R; o++ {
		// An implausible record rules the offset out, and on garbage
		// most offsets have one among their first records: decoding and
		// testing record by record stops there, rather than after all n
		// (resynchronising costs a few decodes a byte, not n).
		for k := 0; k < n; k++ {
			d.decode(window[o+k*R:o+(k+1)*R], &recs[k])
			if !d.plausible(&recs[k]) {
				continue offsets
			}
		}
		med, score := 0.0, 0.0
		if d.Layout.TSBytes >= 2 {
			deltas := d.huntDeltas[:0]
			for k := 1; k < n; k++ {
				deltas = append(deltas, float64(d.tsDelta(recs[k-1].TS, recs[k].TS)))
			}
			sorted := append(d.huntSorted[:0], deltas...)
			slices.Sort(sorted)
			med = sorted[len(sorted)/2]
			if med <= 0 || med > float64(d.wrap())/8 {
				continue
			}
			if d.havePeriod && (med < d.period/2 || med > 2*d.period) {
				continue
			}
			for _, dt := range deltas {
				if dt < med/2 || dt > 2*med {
					continue offsets
				}
			}
		}
		for k := 0; k < n; k++ {
			for _, ch := range d.chans {
				if v := recs[k].Raw[ch]; ch%2 == 0 && (v < 1300 || v > 1800) {
					score += 1e4
				}
				if k > 0 {
					score += abs(float64(recs[k].Raw[ch] - recs[k-1].Raw[ch]))
				}
			}
		}
		if best < 0 || med < bestMed || (med == bestMed && score < bestScore) {
			best, bestMed, bestScore = o, med, score
		}
	}
	if best >= 0 && d.Layout.TSBytes >= 2 {
		d.period, d.havePeriod = bestMed, true
	}
	return best, best >= 0
}

func abs(v float64) float64 {
	if v < 0 {
		return -v
	}
	return v
}

// EncodeRecord appends the wire bytes of r under layout l.
func EncodeRecord(dst []byte, l Layout, r *Record) []byte {
	var ts [4]byte
	binary.LittleEndian.PutUint32(ts[:], r.TS)
	dst = append(dst, ts[:l.TSBytes]...)
	for ch := 0; ch < AdcChannels; ch++ {
		if l.Mask&(1<<ch) != 0 {
			w := uint16(r.Raw[ch] << 4)
			dst = append(dst, byte(w), byte(w>>8))
		}
	}
	return dst
}
