package powersensor3

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/academemes/harness/meters/serial"
)

// stream is one connection's streaming: it decodes what the port gives,
// places frames in device time, turns them into samples and runs the stop
// handshake. What must survive a reconnect (energy so far, the last time
// emitted) lives in streamState; everything here starts afresh with the
// connection.
type stream struct {
	m      *Meter
	st     *streamState
	cfg    *Config
	period int64 // device µs per emitted sample; 0: every frame

	dec        Decoder
	unwrap     Unwrapper
	tallied    Stats // decoder counters already added to the report
	saturated  int64 // frames with a sensor of an active pair at the end of its range
	satTallied int64
	// floorW is, per channel, the least power a reading can plausibly
	// have (see ImpossibleSteps); impossible counts the readings below
	// it, or not numbers, and firstImpossible is the first of them.
	floorW          []float64
	impossible      int64
	impTallied      int64
	firstImpossible impossibleReading
	feedFn          func(Event, *Frame)

	// The previous frame, for the trapezoid.
	prevUs int64 // device µs; -1: no frame yet
	prevW  []float64
	watts  []float64 // the current frame's power per channel

	// The chunk being decoded.
	chunkHost  time.Time // harness-clock time it arrived
	hostGapUs  int64     // silence before it that the 10-bit timestamps cannot show, µs
	firstFrame bool      // the next frame is the chunk's first
	lastDevNs  int64     // device time of its latest frame
	gotFrame   bool      // it held a frame
	fitReady   bool      // the clock fit maps device times

	lastRead, lastChunk time.Time // wall time of the last read that brought bytes
	// waitFrom is when the driver began to wait on the line for the
	// next chunk: the start of the first read after the last chunk.
	waitFrom time.Time
	// holding: held is a chunk that may end a silence of the device,
	// not yet decoded (see decideHeld); heldNow and heldHost say when it
	// came, heldGapUs the silence it ends if the device was silent.
	holding           bool
	held              []byte
	heldNow, heldHost time.Time
	heldGapUs         int64
	frames            int64 // frames decoded on this stream

	// The stop handshake: 'X' sent, FF 3F seen, and until when to wait.
	stopping, stopped bool
	stopBy            time.Time
}

func newStream(m *Meter, st *streamState) *stream {
	s := &stream{
		m: m, st: st, cfg: &m.dev.Config,
		prevUs:   -1,
		prevW:    make([]float64, len(m.pairs)),
		watts:    make([]float64, len(m.pairs)),
		lastRead: time.Now(),
	}
	if m.opts.Rate > 0 {
		s.period = int64(1e6 / m.opts.Rate)
	}
	for _, p := range m.pairs {
		floor := math.Inf(-1) // no step known: only a reading that is no number is flagged
		if step, _ := s.cfg.PairScale(p); step > 0 {
			floor = -ImpossibleSteps * step
		}
		s.floorW = append(s.floorW, floor)
	}
	s.feedFn = s.feed
	st.reset()
	return s
}

// run reads until ctx ends (then stops the device and returns nil) or the
// device is lost (returning why).
func (s *stream) run(ctx context.Context, port serial.Port) error {
	buf := make([]byte, 32*1024)
	pacer := serial.Pacer{Sleep: s.m.opts.Sleep}
	for {
		if ctx.Err() != nil && !s.stopping {
			if err := s.requestStop(port); err != nil {
				return nil
			}
		}
		if s.stopped || (s.stopping && time.Now().After(s.stopBy)) {
			s.endStop(port)
			return nil
		}
		if s.waitFrom.IsZero() {
			s.waitFrom = time.Now()
		}
		n, err := port.Read(buf)
		now := time.Now()
		if err != nil {
			s.finish()
			return fmt.Errorf("powersensor3: read: %w", err)
		}
		if n == 0 {
			if now.Sub(s.lastRead) > s.m.opts.StallAfter {
				s.finish()
				return fmt.Errorf("powersensor3: no data for %v", s.m.opts.StallAfter)
			}
			continue
		}
		s.chunk(buf[:n], now, s.m.env.Clock())
		// The time of every frame comes from its device timestamp, not
		// from when it was read, so reads can wait for a batch; but not
		// when bytes are waiting (serial.FullRead), nor when a chunk is
		// held until the next one tells what it was.
		if n < serial.FullRead && !s.holding {
			pacer.Wait(now)
		}
	}
}

// requestStop asks the device for its stop sequence. It leaves >= 1 ms
// after a marker before stopping (firmware race, see
// firmware-notes/powersensor3.md).
func (s *stream) requestStop(port serial.Port) error {
	s.m.opts.Sleep(2 * time.Millisecond)
	if _, err := port.Write([]byte{cmdStopMarker}); err != nil {
		return err
	}
	s.stopping, s.stopBy = true, time.Now().Add(time.Second)
	return nil
}

// endStop ends the stream once the stop word came or the wait for it ran
// out: one trailing frame follows the stop sequence, so it drains the
// line, then makes sure the device is silent, and emits the last window.
func (s *stream) endStop(port serial.Port) {
	if !s.stopped {
		s.m.core.Count("stop_not_acknowledged", 1)
	}
	s.m.opts.Sleep(20 * time.Millisecond)
	if f, ok := port.(interface{ ResetInputBuffer() error }); ok {
		_ = f.ResetInputBuffer()
	}
	_, _ = port.Write([]byte{cmdStopQuiet})
	s.finish()
}

// finish decodes a chunk still held and emits what is left of the
// averaging window.
func (s *stream) finish() {
	s.decideHeld(false)
	s.st.finish(s.m, s.prevUs)
}

// chunk takes the bytes of one read, which came at wall time now and
// harness-clock time host. A chunk that may end a silence of the device
// is held until the next one tells (see decideHeld); the others are
// decoded at once.
func (s *stream) chunk(p []byte, now, host time.Time) {
	waitFrom := s.lastChunk
	if s.waitFrom.After(waitFrom) {
		waitFrom = s.waitFrom
	}
	s.waitFrom = time.Time{}
	s.lastRead, s.lastChunk = now, now
	if s.holding {
		// Frames that span more device time than the host time since
		// the held chunk came, or more than one read takes, were
		// waiting: a burst, not a device resuming after a silence.
		span := time.Duration(int64(len(p)/FrameSize)*s.frameUs()) * time.Microsecond
		s.decideHeld(len(p) < serial.FullRead && span <= now.Sub(s.heldNow)+heldSlack)
		s.decode(p, now, host, 0)
		return
	}
	// After 'X' the firmware is silent for ~100 ms before its stop word,
	// and nothing after the word is data: no silence to look for.
	if !waitFrom.IsZero() && s.prevUs >= 0 && !s.stopping {
		if gap := silenceUs(now.Sub(waitFrom), host.Sub(s.m.core.MapTime(s.prevUs*1000)), len(p)); gap > 0 {
			s.held = append(s.held[:0], p...)
			s.holding, s.heldNow, s.heldHost, s.heldGapUs = true, now, host, gap
			return
		}
	}
	s.decode(p, now, host, 0)
}

// heldSlack is how much more device time the chunk after a held one may
// span than the host time between their reads: the held chunk's newest
// frame arrived a little after it was sent.
const heldSlack = 2 * time.Millisecond

// decideHeld decodes the chunk held as the end of a silence, with the
// silence if silent, without it if the device was not.
//
// A device whose frames wait in a burst (an emulator on a busy machine
// that did not run for 150 ms writes those 150 ms at once; a USB stack
// that held back its packets) has the driver, waiting on the line, take
// the burst's first bytes as a device resuming: small, after a long wait.
// The chunk after it tells them apart: a resuming device sends in real
// time, so its frames span no more device time than the host time
// between the two reads; a burst's frames span far more.
func (s *stream) decideHeld(silent bool) {
	if !s.holding {
		return
	}
	gap := int64(0)
	if silent {
		gap = s.heldGapUs
	}
	s.holding = false
	s.decode(s.held, s.heldNow, s.heldHost, gap)
}

// frameUs is the device time between frames: measured on this stream
// once it has a second of frames, ~50 µs (an F411) before.
func (s *stream) frameUs() int64 {
	if s.frames > 1 && s.prevUs >= 1_000_000 {
		return max(s.prevUs/(s.frames-1), 1)
	}
	return 50
}

// decode decodes the bytes of one read, which came at wall time now and
// harness-clock time host after a silence of the device of gapUs, and
// feeds the clock fit with its newest frame.
func (s *stream) decode(p []byte, now, host time.Time, gapUs int64) {
	s.chunkHost, s.st.arrived = host, host
	s.hostGapUs = gapUs
	s.firstFrame = true
	s.gotFrame = false
	s.fitReady = s.m.core.FitReady()
	s.dec.Feed(p, s.feedFn)
	if s.gotFrame {
		s.m.core.Lock()
		if len(p) < serial.FullRead {
			// A full read's newest frame may have waited any time
			// behind it: a driver short of CPU, reading less than the
			// device sends, read every frame later than the one before,
			// and a fit of those arrivals drifted by as much (+8 % in a
			// test on a loaded machine: the fit failed). The read that
			// empties the line is the prompt one.
			s.m.core.Fitter().Add(s.lastDevNs, s.chunkHost)
		}
		end := s.m.core.Fitter().Map(s.lastDevNs)
		s.m.core.Unlock()
		s.m.core.CloseGap(end)
	}
	s.tally()
}

// silenceChunkMax is the most a chunk that ends a silence may hold: half
// of n_tty's 4 KiB read buffer, about 5.7 ms of an F411's frames. The
// driver waiting on the line is woken by the first packet after a
// silence; a read that returns more took bytes that were waiting.
const silenceChunkMax = 2048

// silenceUs is the device's silence before a chunk of n bytes, in µs,
// where it may hide whole 1024 µs wraps of the 10-bit timestamp; 0 where
// nothing shows that the device was silent.
//
// The host's time tells when bytes arrived, not when they were sent: a
// host that did not read for 150 ms (descheduled, or woken late) finds
// the frames of those 150 ms waiting in the kernel's buffers, their
// timestamps 50 µs apart, and adding wraps for its own absence would put
// the device 150 ms ahead of its clock. So a silence is taken only where
// the driver waited on the line for over 100 ms (waited: since its first
// read after the previous chunk began) and the chunk that ended the wait
// is small (silenceChunkMax): a device that resumes is read as it sends.
// Its length is then sinceSent, the host time since the previous frame
// was sent as the clock fit places it, less the span of the chunk's
// frames (sent at the silence's end, ~50 µs apart).
func silenceUs(waited, sinceSent time.Duration, n int) int64 {
	if waited <= 100*time.Millisecond || n > silenceChunkMax {
		return 0
	}
	return max(sinceSent.Microseconds()-int64(n/FrameSize)*50, 0)
}

// feed is the decoder's callback for each frame or stop word.
func (s *stream) feed(ev Event, f *Frame) {
	if ev == EventFrame && !s.fitReady {
		// The fit must be current before the first frame is mapped.
		s.m.core.Lock()
		s.m.core.Fitter().Add(unwrapPeek(&s.unwrap, f.T)*1000, s.chunkHost)
		s.fitReady = s.m.core.Fitter().Ready()
		s.m.core.Unlock()
	}
	if ev == EventStop {
		s.stopWord()
		return
	}
	s.frame(f)
}

// stopWord handles FF 3F: the end of the stream once 'X' was sent, a
// miscount otherwise.
func (s *stream) stopWord() {
	if s.stopping {
		s.stopped = true
		return
	}
	s.m.core.Count("unexpected_stop_words", 1)
}

// frame turns one frame into power, energy and, at the end of a window,
// samples.
func (s *stream) frame(f *Frame) {
	if s.stopped {
		// The trailing frame the firmware sends after the stop word
		// comes after ~100 ms of silence: as data it would stretch the
		// recording's last interval by that silence and lower its mean
		// power.
		return
	}
	us := s.deviceTime(f)
	s.frames++
	if f.Marker {
		s.m.markSeen(us)
	}
	s.integrate(f, us)
	s.st.add(s.m, us, s.period, s.watts)
}

// deviceTime unwraps the frame's timestamp to device µs since the stream
// began, taking the host's gap before a chunk's first frame, and counts
// lost frames.
func (s *stream) deviceTime(f *Frame) int64 {
	gu := int64(0)
	if s.firstFrame {
		gu, s.firstFrame = s.hostGapUs, false
	}
	us := s.unwrap.Next(f.T, gu)
	if s.prevUs >= 0 && us-s.prevUs > 150 {
		s.m.core.Count("timestamp_gaps", 1) // frames lost between these two (F411 frames are ~50 µs apart)
	}
	s.lastDevNs, s.gotFrame = us*1000, true
	return us
}

// integrate works out each channel's power in the frame at device time
// us and adds the trapezoid since the previous frame to its energy.
func (s *stream) integrate(f *Frame, us int64) {
	sat := false
	for c, p := range s.m.pairs {
		sat = sat || s.cfg.Saturated(f, p)
		w := s.cfg.Watts(f, p)
		if s.prevUs >= 0 {
			// A stall-sized step is not integrated across.
			if dt := us - s.prevUs; dt > 0 && dt < 100_000 {
				s.st.energy[c] += (w + s.prevW[c]) / 2 * float64(dt) * 1e-6
			}
		}
		s.prevW[c] = w
		s.watts[c] = w
		if !(w >= s.floorW[c]) || math.IsInf(w, 1) {
			if s.impossible == 0 {
				s.firstImpossible = impossibleReading{pair: p, watts: w}
			}
			s.impossible++
		}
	}
	if sat {
		s.saturated++
	}
	s.prevUs = us
}

// tally adds what the decoder counted since the last chunk to the report.
func (s *stream) tally() {
	cur, prev := s.dec.Stats, s.tallied
	sat := s.saturated - s.satTallied
	if sat > 0 && s.satTallied == 0 {
		s.m.core.Warn("powersensor3: a sensor read the end of its range (level 0 or 1023): those readings may be clipped; see the saturated_frames counter")
	}
	imp := s.impossible - s.impTallied
	if imp > 0 && !s.st.impossibleWarned {
		s.st.impossibleWarned = true
		s.m.core.Warn(fmt.Sprintf("powersensor3: %s read %.1f W, and a supply rail's power is neither negative beyond its sensors' noise (%d power steps) nor other than a number: "+
			"its sensors misread or their calibration is wrong; such readings are kept as read and counted in impossible_readings",
			s.cfg.PairName(s.firstImpossible.pair), s.firstImpossible.watts, ImpossibleSteps))
	}
	s.m.core.Tally(func(c map[string]int64) {
		if sat > 0 {
			c["saturated_frames"] += sat
		}
		if imp > 0 {
			c["impossible_readings"] += imp
		}
		c["bytes"] += cur.Bytes - prev.Bytes
		c["frames"] += cur.Frames - prev.Frames
		c["dropped_bytes"] += cur.DroppedBytes - prev.DroppedBytes
		c["rejected_words"] += cur.RejectedWords - prev.RejectedWords
		c["broken_frames"] += cur.BrokenFrames - prev.BrokenFrames
	})
	s.tallied, s.satTallied, s.impTallied = cur, s.saturated, s.impossible
}

// ImpossibleSteps is how many power steps (Config.PairScale) below zero a
// reading may fall before it is flagged: a 12 V rail feeds its load, so
// its power is never negative, and a Hall sensor's noise and offset at no
// load stay within a few steps of zero.
const ImpossibleSteps = 10

// impossibleReading is a reading flagged as physically impossible.
type impossibleReading struct {
	pair  int
	watts float64
}

// unwrapPeek returns what Next would return without advancing.
func unwrapPeek(u *Unwrapper, t uint16) int64 {
	c := *u
	return c.Next(t, 0)
}
