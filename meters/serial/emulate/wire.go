package emulate

import (
	"context"
	"fmt"
	"io"
	"math"
	"time"
)

// Faults are what an emulator does wrong on purpose. Byte faults apply to
// streamed data only (the sample stream is where a real link loses bytes:
// an overfull USB CDC queue, a UART overrun), so handshakes stay clean.
type Faults struct {
	DropEvery    int // drop one streamed byte in this many (0: never)
	CorruptEvery int // flip bits of one streamed byte in this many
	// VanishAfter, VanishFor: the device disappears (the pty closes) after
	// VanishAfter and a fresh one appears at the same link VanishFor later.
	VanishAfter time.Duration
	VanishFor   time.Duration
}

// wire writes to the host, applying byte faults to streamed data.
type wire struct {
	w      io.Writer
	f      Faults
	n      int64
	buf    []byte
	Stream int64 // streamed bytes offered
}

func (w *wire) send(p []byte) error {
	_, err := w.w.Write(p)
	return err
}

func (w *wire) stream(p []byte) error {
	if w.f.DropEvery <= 0 && w.f.CorruptEvery <= 0 {
		w.Stream += int64(len(p))
		return w.send(p)
	}
	w.buf = w.buf[:0]
	for _, b := range p {
		w.n++
		if w.f.DropEvery > 0 && w.n%int64(w.f.DropEvery) == 0 {
			continue
		}
		if w.f.CorruptEvery > 0 && w.n%int64(w.f.CorruptEvery) == 0 {
			b ^= 0xA5
		}
		w.buf = append(w.buf, b)
	}
	w.Stream += int64(len(p))
	return w.send(w.buf)
}

// machine is a device model's state for one connection.
type machine interface {
	// command handles one host byte; in has the bytes after it.
	command(b byte, in <-chan byte) error
	// catchUp sends what the device has streamed since the last call.
	catchUp() error
}

// serveLoop feeds the host's bytes to s and lets it stream every 2 ms, as
// a USB device sends packets every millisecond or so, until ctx is done or
// the host side fails.
func serveLoop(ctx context.Context, rw io.ReadWriter, name string, s machine) error {
	done := make(chan struct{})
	defer close(done)
	in := reader(rw, done)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case b, ok := <-in:
			if !ok {
				return fmt.Errorf("emulate %s: host side closed", name)
			}
			if err := s.command(b, in); err != nil {
				return err
			}
		case <-tick.C:
			if err := s.catchUp(); err != nil {
				return err
			}
		}
	}
}

// reader delivers the host's bytes one by one on a channel, so that a
// device loop can wait for a byte with a timeout.
func reader(r io.Reader, done <-chan struct{}) <-chan byte {
	ch := make(chan byte, 4096)
	go func() {
		defer close(ch)
		buf := make([]byte, 256)
		for {
			n, err := r.Read(buf)
			for _, b := range buf[:n] {
				select {
				case ch <- b:
				case <-done:
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	return ch
}

// sigma is first-order error diffusion: a quantiser whose outputs average
// to the exact target, as sensor noise makes a real ADC's do.
type sigma struct{ acc float64 }

func (s *sigma) next(target float64) float64 {
	s.acc += target
	q := math.Floor(s.acc + 0.5)
	s.acc -= q
	return q
}
