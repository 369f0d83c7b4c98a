// Package powersensor3 reads a PowerSensor3 (open-hardware sensors on power
// pins, USB CDC, firmware v1.6.x) as a harness meter.
//
// The wire protocol is documented in firmware-notes/powersensor3.md. The
// decoder here is pure (bytes in, frames out); the driver runs the session
// over an io.ReadWriter; the port comes from package meters/serial.
package powersensor3

// Sensors is the number of sensor words in every frame; Pairs the number of
// (current, voltage) pairs they form.
const (
	Sensors   = 8
	Pairs     = 4
	FrameSize = 2 * (1 + Sensors) // timestamp word + 8 sensor words
)

// Frame is one acquisition: a 10-bit device timestamp and 8 raw levels.
type Frame struct {
	// T is micros() modulo 1024 at the end of the averaging window.
	T uint16
	// Levels are raw 10-bit ADC codes for sensors 0..7.
	Levels [Sensors]uint16
	// Marker is set when the device placed a marker ('M') on this frame.
	Marker bool
}

// Stats counts what the decoder threw away. All counters only grow.
type Stats struct {
	Bytes         int64 // bytes fed
	Frames        int64 // complete frames delivered
	DroppedBytes  int64 // bytes skipped to regain word sync (top-bit rule)
	RejectedWords int64 // well-formed words outside a frame (before the first timestamp, after a broken frame)
	BrokenFrames  int64 // frames abandoned because a sensor word was missing or out of order
	Stops         int64 // stop words (FF 3F where a timestamp was due)
}

// Decoder turns the byte stream into frames. It keeps partial words and
// frames across calls, so bytes may arrive in any chunking. Its zero value
// is ready to use.
//
// Sync follows the host library: the first byte of a word has bit 7 set,
// the second has it clear; on a mismatch one byte is dropped. On top of
// that, a frame must be a timestamp word followed by sensors 0..7 in order,
// which the official host does not check.
type Decoder struct {
	Stats Stats

	hi      byte
	haveHi  bool
	inFrame bool // a timestamp word started the current frame
	next    int  // id of the sensor word expected next
	cur     Frame
}

// Event is what Feed reports besides frames.
type Event int

const (
	// EventFrame: a complete frame.
	EventFrame Event = iota
	// EventStop: the stop word FF 3F arrived where a timestamp was due.
	EventStop
)

// Feed decodes p and calls fn for each complete frame or stop word, in
// stream order. The *Frame passed to fn is reused: copy it to keep it.
func (d *Decoder) Feed(p []byte, fn func(Event, *Frame)) {
	d.Stats.Bytes += int64(len(p))
	for _, b := range p {
		if !d.haveHi {
			if b&0x80 == 0 {
				d.Stats.DroppedBytes++ // a second byte with no first byte
				continue
			}
			d.hi, d.haveHi = b, true
			continue
		}
		if b&0x80 != 0 {
			// Two first bytes in a row: the earlier one lost its partner.
			d.Stats.DroppedBytes++
			d.hi = b
			continue
		}
		d.haveHi = false
		d.word(d.hi, b, fn)
	}
}

func (d *Decoder) word(hi, lo byte, fn func(Event, *Frame)) {
	level := uint16(hi&0x0F)<<6 | uint16(lo&0x3F)
	if hi&0xF0 == 0xF0 && lo&0x40 != 0 {
		// Timestamp word: sensor id 7 with the marker bit, which a real
		// sensor-7 word never carries. It starts a frame.
		if d.inFrame && d.next != 0 {
			d.Stats.BrokenFrames++
		}
		d.cur = Frame{T: level}
		d.inFrame, d.next = true, 0
		return
	}
	id := int(hi>>4) & 7
	if hi == 0xFF && lo == 0x3F && !(d.inFrame && d.next == 7) {
		// FF 3F is both "sensor 7 at 1023" and the stop word; where a
		// sensor-7 word is not due it is the stop.
		if d.inFrame && d.next != 0 {
			d.Stats.BrokenFrames++
		}
		d.inFrame, d.next = false, 0
		d.Stats.Stops++
		fn(EventStop, nil)
		return
	}
	if !d.inFrame {
		d.Stats.RejectedWords++
		return
	}
	if id != d.next {
		// A lost word: the frame is unusable. Wait for the next timestamp.
		d.Stats.BrokenFrames++
		d.Stats.RejectedWords++
		d.inFrame, d.next = false, 0
		return
	}
	d.cur.Levels[id] = level
	if id == 0 && lo&0x40 != 0 {
		d.cur.Marker = true
	}
	d.next++
	if d.next == Sensors {
		d.Stats.Frames++
		d.inFrame, d.next = false, 0
		fn(EventFrame, &d.cur)
	}
}

// EncodeFrame appends the 18 wire bytes of f to dst, as the firmware
// sends them. Sensor 7 at 1023 would read as the stop word; callers that
// want a well-formed stream keep it at 1022 or below.
func EncodeFrame(dst []byte, f Frame) []byte {
	t := f.T & 0x3FF
	dst = append(dst, 0xF0|byte(t>>6), 0x40|byte(t&0x3F))
	for i, l := range f.Levels {
		l &= 0x3FF
		lo := byte(l & 0x3F)
		if i == 0 && f.Marker {
			lo |= 0x40
		}
		dst = append(dst, 0x80|byte(i)<<4|byte(l>>6), lo)
	}
	return dst
}

// Unwrapper turns 10-bit microsecond timestamps into a running count.
// Consecutive frames must be less than 1024 µs apart; where the host knows
// more time passed (a stall), Next takes the host's elapsed time and adds
// the whole wraps the 10-bit difference cannot show.
type Unwrapper struct {
	last    uint16
	started bool
	abs     int64 // µs since the first frame
}

// Next returns the unwrapped time in µs of a frame stamped t. hostGapUs is
// the host time since the previous frame when known to exceed a wrap
// (pass 0 when frames arrive back to back).
func (u *Unwrapper) Next(t uint16, hostGapUs int64) int64 {
	t &= 0x3FF
	if !u.started {
		u.started, u.last = true, t
		return 0
	}
	delta := int64((t - u.last) & 0x3FF)
	if hostGapUs > 1024 {
		delta += 1024 * ((hostGapUs - delta + 512) / 1024)
	}
	u.last = t
	u.abs += delta
	return u.abs
}

// Reset starts counting again from the next frame.
func (u *Unwrapper) Reset() { *u = Unwrapper{} }
