package powersensor3

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/academemes/harness/meters"
	"github.com/academemes/harness/meters/serial/emulate"
)

// TestMain doubles as the emulator process for BenchmarkDriverCPU, so that
// getrusage in the benchmark counts the driver's CPU only.
func TestMain(m *testing.M) {
	if os.Getenv("PS3_BENCH_EMULATOR") == "1" {
		e := emulate.PowerSensor3Emulator()
		if err := e.Run(context.Background(), []string{"-watts", "50,30,20,10"}, os.Stdout, os.Stderr); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func BenchmarkDecode(b *testing.B) {
	var stream []byte
	for i := 0; i < 4096; i++ {
		f := Frame{T: uint16(i * 50 & 0x3FF)}
		for s := range f.Levels {
			f.Levels[s] = uint16((i + s*100) % 1000)
		}
		stream = EncodeFrame(stream, f)
	}
	b.SetBytes(int64(len(stream)))
	b.ResetTimer()
	var d Decoder
	frames := 0
	for i := 0; i < b.N; i++ {
		d.Feed(stream, func(ev Event, f *Frame) { frames++ })
	}
	b.ReportMetric(float64(frames)/b.Elapsed().Seconds(), "frames/s")
	b.ReportMetric(float64(frames*Sensors)/b.Elapsed().Seconds(), "samples/s")
}

// BenchmarkDriverCPU streams 20,000 frames/s from an emulator in another
// process through a pty and reports the driver's share of one core.
func BenchmarkDriverCPU(b *testing.B) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "PS3_BENCH_EMULATOR=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	path, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		b.Fatal(err)
	}
	path = strings.TrimSpace(path)
	m, err := New("powersensor3:"+path, path, Options{Rate: 1000}, meters.Env{})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	var ru0, ru1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(b.N)*time.Second)
	defer cancel()
	n := 0
	if err := m.Run(ctx, func(meters.Sample) { n++ }); err != nil {
		b.Fatal(err)
	}
	wall := time.Since(start)
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	cpu := time.Duration(ru1.Utime.Nano()-ru0.Utime.Nano()) + time.Duration(ru1.Stime.Nano()-ru0.Stime.Nano())
	r := m.Report()
	b.ReportMetric(100*cpu.Seconds()/wall.Seconds(), "%core")
	b.ReportMetric(float64(r.Counters["frames"])/wall.Seconds(), "frames/s")
}
