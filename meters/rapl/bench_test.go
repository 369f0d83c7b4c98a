package rapl

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/academemes/harness/meters"
)

// BenchmarkSampleAllZones is the cost of one reading of every zone of the
// one-socket fixture (4 zones) through the sysfs backend. On fixture files
// this is the syscall and parsing cost; on real sysfs each read also runs
// the kernel's RAPL MSR read on a CPU of the zone's package.
func BenchmarkSampleAllZones(b *testing.B) {
	m, err := Open(spec(b, "rapl"), meters.Env{Fixture: true, SysfsRoot: loadFixture(b, "intel-1socket")})
	if err != nil {
		b.Fatal(err)
	}
	defer m.src.Close()
	dst := make([]uint64, len(m.zones))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := m.src.Read(dst); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCPUShare runs the meter on the one-socket fixture for one
// second per iteration, at 1 kHz (the highest rate) and at 100 Hz (the
// default), and reports the process's CPU time over that second (getrusage:
// user + system) as a share of one core. The goal at 1 kHz is under 1 %.
// The process is otherwise idle while it runs, so what it counts is the
// meter's loop, its reads and its emits (here to a no-op); compare with
// BenchmarkTicker1kHzBaseline, the cost of waking 1000 times a second at all.
func BenchmarkCPUShare(b *testing.B) {
	root := loadFixture(b, "intel-1socket")
	for _, rate := range []string{"1000", "100"} {
		b.Run(rate+"Hz", func(b *testing.B) {
			var cpu, wall time.Duration
			var readings int64
			for range b.N {
				m, err := Open(spec(b, "rapl:rate="+rate), meters.Env{Fixture: true, SysfsRoot: root})
				if err != nil {
					b.Fatal(err)
				}
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				before, start := rusage(b), time.Now()
				if err := m.Run(ctx, func(meters.Sample) {}); err != nil {
					b.Fatal(err)
				}
				wall += time.Since(start)
				cpu += rusage(b) - before
				cancel()
				readings += m.Report().Counters["readings"]
			}
			b.ReportMetric(100*cpu.Seconds()/wall.Seconds(), "%cpu-of-1-core")
			b.ReportMetric(float64(readings)/wall.Seconds(), "readings/s")
		})
	}
}

func rusage(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkTicker1kHzBaseline is the floor under BenchmarkCPUShare/1000Hz: a
// bare 1 kHz time.Ticker loop that does nothing, measured the same way.
func BenchmarkTicker1kHzBaseline(b *testing.B) {
	var cpu, wall time.Duration
	for range b.N {
		tick := time.NewTicker(time.Millisecond)
		stop := time.After(time.Second)
		before, start := rusage(b), time.Now()
	loop:
		for {
			select {
			case <-stop:
				break loop
			case <-tick.C:
			}
		}
		tick.Stop()
		wall += time.Since(start)
		cpu += rusage(b) - before
	}
	b.ReportMetric(100*cpu.Seconds()/wall.Seconds(), "%cpu-of-1-core")
}
