package machine

import (
	"os"
	"testing"
)

// BenchmarkSampleLive is what one sample of this machine's processes costs
// the harness: the monitor takes one a second and two at every phase
// boundary.
func BenchmarkSampleLive(b *testing.B) {
	s, err := NewSampler("/proc", Classifier{Self: os.Getpid()})
	if err != nil {
		b.Skipf("no /proc: %v", err)
	}
	for b.Loop() {
		if err := s.Sample(); err != nil {
			b.Fatal(err)
		}
	}
}
