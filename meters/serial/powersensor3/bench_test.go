package powersensor3

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/academemes/harness/meters"
	"github.com/academemes/harness/meters/serial"
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

// cpuMeter reads the CPU time of this process (getrusage) and of the
// emulator child (/proc/PID/stat), so that a benchmark can report each
// share of one core over its wall time.
type cpuMeter struct {
	child      int
	start      time.Time
	ru0        syscall.Rusage
	childTicks int64
	switches   int64
}

func startCPU(child int) *cpuMeter {
	c := &cpuMeter{child: child, childTicks: procTicks(child), switches: contextSwitches()}
	syscall.Getrusage(syscall.RUSAGE_SELF, &c.ru0)
	c.start = time.Now()
	return c
}

// report adds %core (user+sys), %user, %sys and, with a child, %emulator.
func (c *cpuMeter) report(b *testing.B) time.Duration {
	wall := time.Since(c.start)
	var ru1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	user := time.Duration(ru1.Utime.Nano() - c.ru0.Utime.Nano())
	sys := time.Duration(ru1.Stime.Nano() - c.ru0.Stime.Nano())
	b.ReportMetric(100*(user+sys).Seconds()/wall.Seconds(), "%core")
	b.ReportMetric(100*user.Seconds()/wall.Seconds(), "%user")
	b.ReportMetric(100*sys.Seconds()/wall.Seconds(), "%sys")
	b.ReportMetric(float64(contextSwitches()-c.switches)/wall.Seconds(), "switches/s")
	if c.child > 0 {
		// USER_HZ is 100 on Linux.
		b.ReportMetric(float64(procTicks(c.child)-c.childTicks)/wall.Seconds(), "%emulator")
	}
	return wall
}

// contextSwitches sums the voluntary and involuntary context switches of
// every thread of this process: how often its threads went to sleep and
// were woken, the wake-ups that cost most here.
func contextSwitches() int64 {
	tasks, _ := filepath.Glob("/proc/self/task/*/status")
	var n int64
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.HasSuffix(k, "ctxt_switches") {
				x, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				n += x
			}
		}
	}
	return n
}

// procTicks is utime+stime of pid in clock ticks, or 0.
func procTicks(pid int) int64 {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	u, _ := strconv.ParseInt(f[11], 10, 64)
	k, _ := strconv.ParseInt(f[12], 10, 64)
	return u + k
}

// startBenchEmulator runs the emulator (20,000 frames/s, 4 pairs) in a
// child process, so that getrusage here counts the host side only, and
// returns the device path and the child's pid.
func startBenchEmulator(b *testing.B) (string, int) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "PS3_BENCH_EMULATOR=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	path, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		b.Fatal(err)
	}
	return strings.TrimSpace(path), cmd.Process.Pid
}

// BenchmarkBaselineIdle is the floor: this process with nothing to do
// (sleeping), and a reader blocked in Read on a device that is connected
// but not streaming (the 50 ms read timeout of a session). b.N is seconds.
func BenchmarkBaselineIdle(b *testing.B) {
	b.Run("process", func(b *testing.B) {
		c := startCPU(0)
		time.Sleep(time.Duration(b.N) * time.Second)
		c.report(b)
	})
	b.Run("reader", func(b *testing.B) {
		path, pid := startBenchEmulator(b)
		port, err := serial.OpenPort(path, 115200)
		if err != nil {
			b.Fatal(err)
		}
		defer port.Close()
		_ = port.SetReadTimeout(50 * time.Millisecond)
		buf := make([]byte, 32*1024)
		c := startCPU(pid)
		for end := time.Now().Add(time.Duration(b.N) * time.Second); time.Now().Before(end); {
			if _, err := port.Read(buf); err != nil {
				b.Fatal(err)
			}
		}
		c.report(b)
	})
}

// BenchmarkBaselineRead is the emulator streaming 20,000 frames/s to a
// reader that only reads and discards: the cost of moving the bytes with
// go.bug.st/serial, without decoding. The variants read at once or sleep
// between reads to batch. b.N is seconds.
func BenchmarkBaselineRead(b *testing.B) {
	type variant struct {
		pause time.Duration
		sleep string // "go": time.Sleep (a runtime timer); "syscall": nanosleep in this thread
	}
	for _, v := range []variant{{0, "go"}, {3 * time.Millisecond, "go"}, {8 * time.Millisecond, "go"}, {3 * time.Millisecond, "syscall"}, {8 * time.Millisecond, "syscall"}} {
		pause := v.pause
		sleep := time.Sleep
		if v.sleep == "syscall" {
			sleep = nanosleep
		}
		b.Run(fmt.Sprintf("pause=%v/sleep=%s", pause, v.sleep), func(b *testing.B) {
			path, pid := startBenchEmulator(b)
			port, err := serial.OpenPort(path, 115200)
			if err != nil {
				b.Fatal(err)
			}
			defer port.Close()
			_ = port.SetReadTimeout(50 * time.Millisecond)
			if _, err := Handshake(port, time.Sleep); err != nil {
				b.Fatal(err)
			}
			if _, err := port.Write([]byte{cmdStart}); err != nil {
				b.Fatal(err)
			}
			buf := make([]byte, 32*1024)
			var bytes, reads int64
			c := startCPU(pid)
			for end := time.Now().Add(time.Duration(b.N) * time.Second); time.Now().Before(end); {
				n, err := port.Read(buf)
				if err != nil {
					b.Fatal(err)
				}
				bytes += int64(n)
				reads++
				if pause > 0 {
					sleep(pause)
				}
			}
			wall := c.report(b)
			_, _ = port.Write([]byte{cmdStopQuiet})
			b.ReportMetric(float64(bytes)/FrameSize/wall.Seconds(), "frames/s")
			b.ReportMetric(float64(bytes)/float64(reads), "B/read")
		})
	}
}

// nanosleep sleeps in a plain system call: the runtime sees a blocking
// call rather than a parked goroutine and a timer.
func nanosleep(d time.Duration) {
	ts := syscall.NsecToTimespec(int64(d))
	for syscall.Nanosleep(&ts, &ts) == syscall.EINTR {
	}
}

// BenchmarkDriverCPU streams 20,000 frames/s from an emulator in another
// process through a pty and reports the driver's share of one core.
func BenchmarkDriverCPU(b *testing.B) {
	path, pid := startBenchEmulator(b)
	m, err := New("powersensor3:"+path, path, Options{Rate: 1000}, meters.Env{})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	c := startCPU(pid)
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(b.N)*time.Second)
	defer cancel()
	n := 0
	if err := m.Run(ctx, func(meters.Sample) { n++ }); err != nil {
		b.Fatal(err)
	}
	wall := c.report(b)
	r := m.Report()
	b.ReportMetric(float64(r.Counters["frames"])/wall.Seconds(), "frames/s")
}
