package emulate

import (
	"bufio"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestReadCSV(t *testing.T) {
	cases := []struct {
		name, in string
		at       time.Duration
		ch       int
		want     float64
		bad      bool
	}{
		{"header and interpolation", "time,watts\n0,10\n2,30\n", time.Second, 0, 20, false},
		{"per channel columns", "0,10,100\n1,10,200\n", 500 * time.Millisecond, 1, 150, false},
		{"one column for every channel", "0,7\n", time.Hour, 3, 7, false},
		{"not increasing", "1,5\n0,5\n", 0, 0, 0, true},
		{"junk row", "0,5\nx,y\n", 0, 0, 0, true},
		{"watts not a number", "0,5\n1,NaN\n", 0, 0, 0, true},
		{"infinite watts", "0,+Inf\n", 0, 0, 0, true},
		{"negative watts", "0,5,-5\n", 0, 0, 0, true},
		{"time not a number", "NaN,5\n", 0, 0, 0, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tb, err := ReadCSV(strings.NewReader(tc.in))
			if tc.bad {
				if err == nil {
					t.Fatal("want an error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := tb.Watts(tc.at, tc.ch); got != tc.want {
				t.Errorf("Watts(%v, %d) = %v, want %v", tc.at, tc.ch, got, tc.want)
			}
		})
	}
}

func TestEmulatorPrintsPathAndAnswers(t *testing.T) {
	for _, e := range []struct {
		run           func(context.Context, []string, io.Writer, io.Writer) error
		query, answer string
	}{
		{PowerSensor3Emulator().Run, "V", "F411-1.6.1\r\n"},
		{PMDUSBEmulator().Run, "\x00", "ElmorLabs PMD-USB"},
	} {
		ctx, cancel := context.WithCancel(context.Background())
		pr, pw := io.Pipe()
		done := make(chan error, 1)
		go func() { done <- e.run(ctx, []string{"-watts", "10"}, pw, io.Discard) }()
		path, err := bufio.NewReader(pr).ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		f, err := os.OpenFile(strings.TrimSpace(path), os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write([]byte(e.query)); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, len(e.answer))
		if _, err := io.ReadFull(f, buf); err != nil || string(buf) != e.answer {
			t.Errorf("answer %q, %v; want %q", buf, err, e.answer)
		}
		f.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("emulator: %v", err)
		}
	}
}

func TestCRC16(t *testing.T) {
	if got := crc16([]byte("123456789")); got != 0x29B1 {
		t.Errorf("crc16 check value = %#04x, want 0x29b1", got)
	}
}

// TestParseWatts: the emulators' -watts takes what a supply rail can draw,
// and refuses what no device sends: negative power, NaN, infinities.
func TestParseWatts(t *testing.T) {
	cases := []struct {
		in   string
		want []float64 // nil: an error
	}{
		{"50,30,20,10", []float64{50, 30, 20, 10}},
		{"110W", []float64{110}},
		{"0", []float64{0}},
		{"-5", nil},
		{"NaN", nil},
		{"50,nan", nil},
		{"Inf", nil},
		{"-Inf", nil},
		{"1e308", nil},
		{"", nil},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseWatts(tc.in)
			if tc.want == nil {
				if err == nil {
					t.Fatalf("ParseWatts(%q) = %v, want an error", tc.in, got)
				}
				return
			}
			if err != nil || len(got) != len(tc.want) {
				t.Fatalf("ParseWatts(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("channel %d: %v, want %v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

// TestServeStopsWhenHostStopsReading: a host that started the stream and
// went away without stopping it leaves the emulator blocked writing to a
// full pty. Its context ending must still stop it: before, the write held
// on, Serve never returned, and the test that started it hung in its
// cleanup.
func TestServeStopsWhenHostStopsReading(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	link := filepath.Join(t.TempDir(), "tty")
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, &PowerSensor3{}, link, Faults{}, func(p string) { ready <- p }) }()
	host, err := os.OpenFile(<-ready, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := host.Write([]byte{'S'}); err != nil {
		t.Fatal(err)
	}
	// 360 kB/s and nobody reads: the pty's buffers fill within a second.
	time.Sleep(1500 * time.Millisecond)
	host.Close()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve = %v, want nil after its context ended", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Serve still running 30 s after its context ended: blocked writing to a host that stopped reading")
	}
}
