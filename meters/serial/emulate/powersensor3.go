package emulate

import (
	"context"
	"encoding/binary"
	"io"
	"math"
	"time"
)

// PowerSensor3 emulates a PowerSensor3 with firmware F411-1.6.1 as
// firmware-notes/powersensor3.md describes it: single-byte commands, 41-byte
// sensor records with per-record acknowledgement, 18-byte frames of a
// 10-bit microsecond timestamp and 8 sensor levels, markers on sensor 0,
// and FF 3F FF 3F plus one trailing frame after 'X'.
type PowerSensor3 struct {
	Version string           // "F411-1.6.1"
	Config  [8][41]byte      // the stored sensor records
	Rate    float64          // frames per second (default 20,000: an F411)
	Trace   Trace            // watts per pair
	Volts   float64          // rail voltage of every pair (default 12)
	Drift   float64          // device clock error in ppm (micros() runs fast when > 0)
	Faults  Faults           // byte faults on the frame stream
	Now     func() time.Time // host clock; default time.Now
	// Start is the trace's time origin; zero means when Serve starts.
	Start time.Time
}

// DefaultPowerSensor3Config is four active pairs: MLX20 current sensors
// (62.5 mV/A around 1.65 V) and 12 V voltage dividers (gain 0.0877),
// named as the connectors of a workstation board. No byte is 0x0D, which a
// host that is not in raw mode would turn into 0x0A.
func DefaultPowerSensor3Config(pairs int) [8][41]byte {
	names := []string{"EPS12V-1", "EPS12V-2", "PCIE12V-1", "PCIE12V-2"}
	var c [8][41]byte
	for p := 0; p < 4; p++ {
		use := p < pairs
		copy(c[2*p][:], ps3Record("MLX20", names[p], 1.65, 0.0625, use))
		copy(c[2*p+1][:], ps3Record("voltage", names[p], 0, 0.0877, use))
	}
	return c
}

func ps3Record(typ, pair string, vref, sens float32, inUse bool) []byte {
	rec := make([]byte, 41)
	copy(rec[0:15], typ)
	copy(rec[16:31], pair)
	binary.LittleEndian.PutUint32(rec[32:], math.Float32bits(vref))
	binary.LittleEndian.PutUint32(rec[36:], math.Float32bits(sens))
	if inUse {
		rec[40] = 1
	}
	return rec
}

type ps3Sensor struct {
	vref, sens float32
	inUse      bool
}

func (d *PowerSensor3) defaults() {
	if d.Version == "" {
		d.Version = "F411-1.6.1"
	}
	if d.Rate <= 0 {
		d.Rate = 20000
	}
	if d.Trace == nil {
		d.Trace = Constant{0}
	}
	if d.Volts == 0 {
		d.Volts = 12
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	var zero [8][41]byte
	if d.Config == zero {
		d.Config = DefaultPowerSensor3Config(4)
	}
}

// Serve answers the host on rw until ctx is done or rw fails. Every call
// is a device fresh from reset (idle, counter 0).
func (d *PowerSensor3) Serve(ctx context.Context, rw io.ReadWriter) error {
	d.defaults()
	s := &ps3State{d: d, w: &wire{w: rw, f: d.Faults}, t0: d.Now()}
	if d.Start.IsZero() {
		d.Start = s.t0
	}
	return serveLoop(ctx, rw, "powersensor3", s)
}

type ps3State struct {
	d         *PowerSensor3
	w         *wire
	t0        time.Time
	streaming bool
	markers   int
	counter   uint32
	nextFrame int64 // index of the next frame on the device's frame grid
	sig       [8]sigma
	buf       []byte
}

// deviceUs is micros() now: host time since reset, scaled by the drift.
func (s *ps3State) deviceUs() float64 {
	return float64(s.d.Now().Sub(s.t0).Nanoseconds()) / 1e3 * (1 + s.d.Drift/1e6)
}

func (s *ps3State) period() float64 { return 1e6 / s.d.Rate }

// catchUp sends every frame whose time has come, in one write, as the USB
// CDC stack sends whole packets every millisecond.
func (s *ps3State) catchUp() error {
	if !s.streaming {
		return nil
	}
	now := s.deviceUs()
	s.buf = s.buf[:0]
	for float64(s.nextFrame)*s.period() <= now {
		s.buf = s.frame(s.buf)
	}
	if len(s.buf) == 0 {
		return nil
	}
	return s.w.stream(s.buf)
}

// frame appends the next frame of the grid.
func (s *ps3State) frame(dst []byte) []byte {
	us := float64(s.nextFrame) * s.period()
	s.nextFrame++
	s.counter += 8
	t := uint16(uint64(us)) & 0x3FF
	tt := s.t0.Sub(s.d.Start) + time.Duration(us/(1+s.d.Drift/1e6)*1e3)
	var levels [8]uint16
	for p := 0; p < 4; p++ {
		ci, cv := s.sensor(2*p), s.sensor(2*p+1)
		// The voltage level is fixed; the current level is dithered so that
		// current x decoded voltage averages to the trace's watts.
		lv := math.Round((s.d.Volts*float64(cv.sens) + float64(cv.vref)) * 1023 / 3.3)
		lv = math.Max(0, math.Min(lv, 1022))
		vdec := float64((float32(3.3)*float32(lv)/float32(1023) - cv.vref) / cv.sens)
		amps := 0.0
		if vdec > 0 {
			amps = s.d.Trace.Watts(tt, p) / vdec
		}
		li := s.sig[2*p].next((amps*float64(ci.sens) + float64(ci.vref)) * 1023 / 3.3)
		levels[2*p] = uint16(math.Max(0, math.Min(li, 1023)))
		levels[2*p+1] = uint16(lv)
	}
	dst = append(dst, 0xF0|byte(t>>6), 0x40|byte(t&0x3F))
	for i, l := range levels {
		lo := byte(l & 0x3F)
		if i == 0 && s.markers > 0 {
			lo |= 0x40
			s.markers--
		}
		dst = append(dst, 0x80|byte(i)<<4|byte(l>>6), lo)
	}
	return dst
}

func (s *ps3State) sensor(i int) ps3Sensor {
	rec := s.d.Config[i]
	return ps3Sensor{
		vref:  math.Float32frombits(binary.LittleEndian.Uint32(rec[32:])),
		sens:  math.Float32frombits(binary.LittleEndian.Uint32(rec[36:])),
		inUse: rec[40] != 0,
	}
}

// wait takes one host byte, or fails after the firmware's 2 s (where the
// real device resets itself).
func wait(in <-chan byte, d time.Duration) (byte, bool) {
	select {
	case b, ok := <-in:
		return b, ok
	case <-time.After(d):
		return 0, false
	}
}

func (s *ps3State) command(b byte, in <-chan byte) error {
	switch b {
	case 'R':
		for i := 0; i < 8; i++ {
			if err := s.w.send(s.d.Config[i][:]); err != nil {
				return err
			}
			if _, ok := wait(in, 2*time.Second); !ok {
				s.streaming = false // the firmware resets on this timeout
				return nil
			}
		}
		return s.w.send([]byte{'D'})
	case 'W':
		for i := 0; i < 8; i++ {
			var rec [41]byte
			for j := range rec {
				c, ok := wait(in, 2*time.Second)
				if !ok {
					s.streaming = false
					return nil
				}
				rec[j] = c
			}
			s.d.Config[i] = rec // verbatim, garbage after the NULs included
			if err := s.w.send([]byte{'S'}); err != nil {
				return err
			}
		}
		return s.w.send([]byte{'D'})
	case 'S':
		s.counter = 0
		if !s.streaming {
			s.streaming = true
			// The frame grid continues from now.
			s.nextFrame = int64(math.Ceil(s.deviceUs() / s.period()))
		}
	case 'T', 'X':
		was := s.streaming
		if was {
			// Pending markers go out before the stop; then the frame in
			// progress completes.
			s.buf = s.buf[:0]
			for s.markers > 0 {
				s.buf = s.frame(s.buf)
			}
			if err := s.w.stream(s.buf); err != nil {
				return err
			}
		}
		s.streaming = false
		if b == 'X' {
			time.Sleep(100 * time.Millisecond)
			if err := s.w.send([]byte{0xFF, 0x3F, 0xFF, 0x3F}); err != nil {
				return err
			}
		}
		if was {
			// The frame that was ready when the stop came is still sent.
			return s.w.stream(s.frame(nil))
		}
	case 'M':
		s.markers++
	case 'I':
		return s.w.stream(s.frame(nil))
	case 'Q':
		var q [4]byte
		binary.LittleEndian.PutUint32(q[:], s.counter)
		return s.w.send(q[:])
	case 'V':
		return s.w.send([]byte(s.d.Version + "\r\n"))
	case 'Z', 'Y':
		s.streaming, s.markers = false, 0
	}
	return nil
}
