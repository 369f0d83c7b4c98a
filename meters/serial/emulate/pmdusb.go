package emulate

import (
	"context"
	"encoding/binary"
	"io"
	"math"
	"math/bits"
	"time"
)

// PMDUSB emulates an ElmorLabs PMD-USB (firmware 6) as
// firmware-notes/pmd-usb.md describes it: one-byte commands with fixed
// reply lengths, the 34-byte config with its CRC, raw 12-bit left-justified
// ADC words, continuous transmit with a 3 MHz timestamp, and the baud
// switch. Records are paced by the UART: baud / (10 bits x record length).
type PMDUSB struct {
	FW         byte             // firmware version (6)
	AdcOffset  [8]int8          // stored per-channel offsets, 12-bit LSB
	Trace      Trace            // watts per power channel: PCIE1, PCIE2, EPS1, EPS2
	Volts      float64          // rail voltage (default 12)
	Drift      float64          // timestamp counter error in ppm
	Faults     Faults           // byte faults on the continuous stream
	MaxRecords float64          // cap on records/s besides the UART (0: none)
	Now        func() time.Time // host clock; default time.Now
	Start      time.Time        // trace origin; zero: when Serve starts
	// Baud is the line speed the device uses, changed by command 0x08. A
	// pty has no line speed; the emulator uses it for pacing only.
	Baud int
}

// PMD-USB scale factors per 12-bit LSB (firmware-notes/pmd-usb.md).
const (
	pmdVoltLSB = 0.007568
	pmdAmpLSB  = 0.0488
)

func (d *PMDUSB) defaults() {
	if d.FW == 0 {
		d.FW = 6
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
	if d.Baud == 0 {
		d.Baud = 115200
	}
}

// Serve answers the host on rw until ctx is done or rw fails. Each call is
// a device fresh from power-up (115200 baud, not streaming).
func (d *PMDUSB) Serve(ctx context.Context, rw io.ReadWriter) error {
	d.defaults()
	d.Baud = 115200
	s := &pmdState{d: d, w: &wire{w: rw, f: d.Faults}, t0: d.Now()}
	if d.Start.IsZero() {
		d.Start = s.t0
	}
	return serveLoop(ctx, rw, "pmd-usb", s)
}

type pmdState struct {
	d        *PMDUSB
	w        *wire
	t0       time.Time
	cont     bool
	tsBytes  int
	mask     byte
	next     float64 // device time (s) of the next record
	sig      [8]sigma
	cfgExtra [34]byte // bytes of the config the emulator does not interpret
	buf      []byte
}

func (s *pmdState) recLen() int { return s.tsBytes + 2*bits.OnesCount8(s.mask) }

func (s *pmdState) interval() float64 {
	r := float64(s.d.Baud) / (10 * float64(max(s.recLen(), 1)))
	if s.d.MaxRecords > 0 {
		r = math.Min(r, s.d.MaxRecords)
	}
	return 1 / r
}

func (s *pmdState) elapsed() float64 { return s.d.Now().Sub(s.t0).Seconds() }

// raw returns the 8 channels' 12-bit codes at host time t (seconds since
// reset), with the stored offsets taken out, as the ADC would read them.
func (s *pmdState) raw(t float64, dither bool) [8]int {
	var out [8]int
	tt := s.t0.Sub(s.d.Start) + time.Duration(t*1e9)
	for p := 0; p < 4; p++ {
		vcode := math.Round(s.d.Volts/pmdVoltLSB) - float64(s.d.AdcOffset[2*p])
		vdec := (vcode + float64(s.d.AdcOffset[2*p])) * pmdVoltLSB
		amps := s.d.Trace.Watts(tt, p) / vdec
		target := amps/pmdAmpLSB - float64(s.d.AdcOffset[2*p+1])
		icode := math.Round(target)
		if dither {
			icode = s.sig[2*p+1].next(target)
		}
		out[2*p] = clamp12(vcode)
		out[2*p+1] = clamp12(icode)
	}
	return out
}

func clamp12(v float64) int { return int(math.Max(-2048, math.Min(2047, v))) }

func word(code int) []byte {
	w := uint16(int16(code) << 4) // left-justified; the low nibble is 0
	return []byte{byte(w), byte(w >> 8)}
}

func (s *pmdState) catchUp() error {
	if !s.cont {
		return nil
	}
	now := s.elapsed()
	s.buf = s.buf[:0]
	for s.next <= now {
		ts := uint32(uint64(s.next * 3e6 * (1 + s.d.Drift/1e6)))
		var tb [4]byte
		binary.LittleEndian.PutUint32(tb[:], ts)
		s.buf = append(s.buf, tb[:s.tsBytes]...)
		codes := s.raw(s.next, true)
		for ch := 0; ch < 8; ch++ {
			if s.mask&(1<<ch) != 0 {
				s.buf = append(s.buf, word(codes[ch])...)
			}
		}
		s.next += s.interval()
	}
	if len(s.buf) == 0 {
		return nil
	}
	return s.w.stream(s.buf)
}

// payload reads n bytes that follow a command; hosts send them in the same
// write, or after a pause of about 10 ms.
func payload(in <-chan byte, n int) ([]byte, bool) {
	p := make([]byte, n)
	for i := range p {
		b, ok := wait(in, 500*time.Millisecond)
		if !ok {
			return nil, false
		}
		p[i] = b
	}
	return p, true
}

func (s *pmdState) config() []byte {
	c := make([]byte, 34)
	copy(c, s.cfgExtra[:])
	if c[0] == 0 {
		c[0] = 5
		c[14] = 60 // TimeoutCount
		c[22] = 1  // Averaging: 1.87 ms
	}
	for i, o := range s.d.AdcOffset {
		c[4+i] = byte(o)
	}
	binary.LittleEndian.PutUint16(c[2:], crc16(c[4:31]))
	return c
}

// crc16 is CRC-16/CCITT-FALSE as the vendor GUI computes it.
func crc16(p []byte) uint16 {
	crc := uint16(0xFFFF)
	for _, d := range p {
		x := byte(crc>>8) ^ d
		x ^= x >> 4
		crc = crc<<8 ^ uint16(x)<<12 ^ uint16(x)<<5 ^ uint16(x)
	}
	return crc
}

func (s *pmdState) command(b byte, in <-chan byte) error {
	switch b {
	case 0x00:
		return s.w.send([]byte("ElmorLabs PMD-USB"))
	case 0x01:
		return s.w.send([]byte{0xEE, 0x0A, s.d.FW})
	case 0x02:
		names := []string{"PCIE1 ", "PCIE2 ", "EPS1  ", "EPS2  "}
		codes := s.raw(s.elapsed(), false)
		var out []byte
		for p := 0; p < 4; p++ {
			v := float64(codes[2*p]+int(s.d.AdcOffset[2*p])) * pmdVoltLSB
			i := float64(codes[2*p+1]+int(s.d.AdcOffset[2*p+1])) * pmdAmpLSB
			out = append(out, names[p]...)
			out = binary.LittleEndian.AppendUint16(out, uint16(math.Round(v*100)))
			out = binary.LittleEndian.AppendUint16(out, uint16(math.Round(i*10)))
			out = binary.LittleEndian.AppendUint16(out, uint16(math.Round(v*i)))
		}
		return s.w.send(out)
	case 0x03:
		codes := s.raw(s.elapsed(), false)
		var out []byte
		for p := 0; p < 4; p++ {
			v := float64(codes[2*p]+int(s.d.AdcOffset[2*p])) * pmdVoltLSB
			i := float64(codes[2*p+1]+int(s.d.AdcOffset[2*p+1])) * pmdAmpLSB
			out = binary.LittleEndian.AppendUint16(out, uint16(int16(math.Round(v*100))))
			out = binary.LittleEndian.AppendUint16(out, uint16(int16(math.Round(i*10))))
		}
		return s.w.send(out)
	case 0x04:
		c := s.config()
		if s.d.FW < 6 {
			c = c[:26]
		}
		return s.w.send(c)
	case 0x05:
		n := 34
		if s.d.FW < 6 {
			n = 26
		}
		p, ok := payload(in, n)
		if !ok {
			return nil
		}
		copy(s.cfgExtra[:], p)
		for i := range s.d.AdcOffset {
			s.d.AdcOffset[i] = int8(p[4+i])
		}
	case 0x06:
		codes := s.raw(s.elapsed(), true)
		var out []byte
		for _, c := range codes {
			out = append(out, word(c)...)
		}
		return s.w.send(out)
	case 0x07:
		p, ok := payload(in, 3)
		if !ok {
			return nil
		}
		if p[0] == 0 {
			s.cont = false
			return nil
		}
		ts := int(p[1])
		if ts != 0 && ts != 1 && ts != 2 && ts != 4 {
			ts = 0 // [INFER] other widths: no timestamp
		}
		s.cont, s.tsBytes, s.mask = true, ts, p[2]
		s.next = s.elapsed()
	case 0x08:
		p, ok := payload(in, 16)
		if !ok {
			return nil
		}
		if baud := binary.LittleEndian.Uint32(p); baud >= 9600 && baud <= 4_000_000 {
			s.d.Baud = int(baud)
		}
	case 0xF0:
		s.cont = false
		s.d.Baud = 115200
	}
	return nil
}
