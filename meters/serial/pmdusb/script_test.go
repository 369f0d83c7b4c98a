package pmdusb

import (
	"bytes"
	"fmt"
	"time"
)

// script is an io.ReadWriter that plays a device transcript: each step is
// what the host must write next and what the device answers to it.
type script struct {
	steps []step
	i     int    // step being matched
	got   int    // bytes of steps[i].host matched so far
	out   []byte // device bytes not yet read
	wrote []byte // everything the host wrote
	err   error  // first mismatch
}

type step struct{ host, dev []byte }

func (s *script) Write(p []byte) (int, error) {
	s.wrote = append(s.wrote, p...)
	for _, b := range p {
		if s.i >= len(s.steps) {
			s.err = fmt.Errorf("host wrote %#02x after the transcript ended", b)
			return 0, s.err
		}
		st := s.steps[s.i]
		if st.host[s.got] != b {
			s.err = fmt.Errorf("step %d: host wrote %#02x, transcript has %#02x", s.i, b, st.host[s.got])
			return 0, s.err
		}
		s.got++
		if s.got == len(st.host) {
			s.out = append(s.out, st.dev...)
			s.i, s.got = s.i+1, 0
		}
	}
	return len(p), nil
}

func (s *script) Read(p []byte) (int, error) {
	if len(s.out) == 0 {
		return 0, fmt.Errorf("host read with nothing sent (step %d)", s.i)
	}
	n := copy(p, s.out)
	s.out = s.out[n:]
	return n, nil
}

// hostBytes is the whole transcript's host side.
func (s *script) hostBytes() []byte {
	var b bytes.Buffer
	for _, st := range s.steps {
		b.Write(st.host)
	}
	return b.Bytes()
}

func noSleep(time.Duration) {}
