package emulate

import (
	"bytes"
	"context"
	"encoding/hex"
	"io"
	"math"
	"net"
	"strings"
	"testing"
	"time"

	mb "github.com/simonvetter/modbus"

	"github.com/academemes/harness/meters/modbus/regmap"
)

func TestReadTrace(t *testing.T) {
	tests := []struct {
		name    string
		csv     string
		at      time.Duration
		wantW   float64
		wantJ   float64
		wantErr string
	}{
		{"no header", "0,10\n2,30\n", time.Second, 20, 15, ""},
		{"t_s header, held after the end", "t_s,watts\n0,10\n2,30\n", 4 * time.Second, 30, 40 + 60, ""},
		{"times relative to the first row", "time_s,w\n100,5\n101,5\n", 500 * time.Millisecond, 5, 2.5, ""},
		{"samples.csv, first channel only, NaN skipped", "meter,channel,t_ns,watts,joules\nm,0,1000000000,40,NaN\nm,1,1000000000,NaN,0\nm,0,2000000000,40,NaN\nm,0,3000000000,NaN,5\n", time.Second, 40, 40, ""},
		{"comment lines", "# from a bench run\n0,7\n", time.Hour, 7, 7 * 3600, ""},
		{"empty", "", 0, 0, 0, "empty"},
		{"no power column", "t_s,volts\n0,230\n", 0, 0, 0, "no power column"},
		{"not a number", "t_s,watts\n0,abc\n", 0, 0, 0, "line 2"},
		{"backwards", "0,1\n2,1\n1,1\n", 0, 0, 0, "backwards"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := ReadTrace(strings.NewReader(tc.csv))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if w := tr.Power(tc.at); math.Abs(w-tc.wantW) > 1e-9 {
				t.Errorf("power at %v = %v, want %v", tc.at, w, tc.wantW)
			}
			if j := tr.Energy(tc.at); math.Abs(j-tc.wantJ) > 1e-9 {
				t.Errorf("energy to %v = %v, want %v", tc.at, j, tc.wantJ)
			}
		})
	}
}

func TestTraceEnergyMatchesNumericIntegral(t *testing.T) {
	tr, err := NewTrace([]time.Duration{time.Second, 3 * time.Second, 3 * time.Second, 7 * time.Second},
		[]float64{2, 6, 1, 9})
	if err != nil {
		t.Fatal(err)
	}
	const step = time.Millisecond
	var sum float64
	for d := time.Duration(0); d < 9*time.Second; d += step {
		sum += (tr.Power(d) + tr.Power(d+step)) / 2 * step.Seconds()
	}
	if got := tr.Energy(9 * time.Second); math.Abs(got-sum) > 0.01 {
		t.Errorf("Energy = %v, numeric integral %v", got, sum)
	}
}

// exchange sends one raw Modbus TCP frame to the emulator and returns the
// raw answer.
func exchange(t *testing.T, addr, req string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	b, _ := hex.DecodeString(req)
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	hdr := make([]byte, 6)
	if _, err := io.ReadFull(c, hdr); err != nil {
		t.Fatal(err)
	}
	rest := make([]byte, int(hdr[4])<<8|int(hdr[5]))
	if _, err := io.ReadFull(c, rest); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(append(hdr, rest...))
}

// The emulator's answers, byte for byte, as the Gude manuals lay them out:
// signed 32-bit values, high word first.
func TestWireAnswers(t *testing.T) {
	fixed := time.Unix(1_700_000_000, 0)
	srv, err := Start("127.0.0.1:0", Config{Trace: Constant(40), Voltage: 230, PowerFactor: 1, Frequency: 50,
		EnergyStartWh: 123456, Outlets: 2, Clock: func() time.Time { return fixed }})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	tests := []struct {
		name, req, want string
	}{
		{"line 1 block: 80 W, the sum of two outlets",
			"abcd00000006" + "01" + "04" + "0400" + "000c",
			"abcd0000001b" + "01" + "04" + "18" + "0001e240" + "00000050" + "000000e6" + "0000015c" + "00001388" + "000003e8"},
		{"outlet 2 power only, unit id echoed",
			"000200000006" + "09" + "04" + "3b22" + "0002",
			"000200000007" + "09" + "04" + "04" + "00000028"},
		{"info area: 2 ports, 2 metered, 0 banks, 1 line, 1 phase, 0 inputs",
			"000300000006" + "01" + "04" + "0000" + "0006",
			"00030000000f" + "01" + "04" + "0c" + "0002" + "0002" + "0000" + "0001" + "0001" + "0000"},
		{"unused field inside a block reads zero (power angle)",
			"000400000006" + "01" + "04" + "040c" + "0002",
			"000400000007" + "01" + "04" + "04" + "00000000"},
		{"no line 2: exception 2",
			"000500000006" + "01" + "04" + "0520" + "000c",
			"000500000003" + "01" + "84" + "02"},
		{"holding registers: exception 2",
			"000600000006" + "01" + "03" + "0400" + "0002",
			"000600000003" + "01" + "83" + "02"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := exchange(t, srv.Addr(), tc.req); got != tc.want {
				t.Errorf("answer\n %s\nwant\n %s", got, tc.want)
			}
		})
	}
	srv.SetException(mb.ErrServerDeviceBusy)
	if got, want := exchange(t, srv.Addr(), "000700000006010404000002"), "000700000003"+"01"+"84"+"06"; got != want {
		t.Errorf("busy answer %s, want %s", got, want)
	}
}

func TestEnergyCounterIntegrates(t *testing.T) {
	now := time.Unix(0, 0)
	srv, err := Start("127.0.0.1:0", Config{Trace: Constant(40), EnergyStartWh: 10, Clock: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	tests := []struct {
		after time.Duration
		want  float64
	}{
		{0, 10},
		{89 * time.Second, 10}, // 0.99 Wh: not yet a whole one
		{90 * time.Second, 11}, // 1 Wh
		{time.Hour, 50},        // 40 Wh
		{90 * time.Minute, 70}, // 60 Wh
	}
	for _, tc := range tests {
		rd := srv.Reading(regmap.Line, now.Add(tc.after))
		if rd[regmap.ActiveEnergy] != tc.want {
			t.Errorf("after %v: counter %v Wh, want %v", tc.after, rd[regmap.ActiveEnergy], tc.want)
		}
	}
}

func TestMainCLI(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"watts and trace", []string{"--watts", "5", "--trace", "x.csv"}, "exclude each other"},
		{"bad watts", []string{"--watts", "lots"}, "not a power"},
		{"missing trace", []string{"--trace", "/nonexistent/trace.csv"}, "no such file"},
		{"bad exception", []string{"--exception", "sleepy"}, "unknown exception"},
		{"bad speed", []string{"--speed", "0"}, "--speed"},
		{"stray argument", []string{"extra"}, "unexpected argument"},
		{"bad flag", []string{"--nope"}, "not defined"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			err := Main(context.Background(), tc.args, &out, &errb)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
		})
	}
	t.Run("help", func(t *testing.T) {
		var out, errb bytes.Buffer
		if err := Main(context.Background(), []string{"--help"}, &out, &errb); err != nil || !strings.Contains(errb.String(), "--listen") {
			t.Errorf("err %v, usage %q", err, errb.String())
		}
	})
	t.Run("serves until cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		pr, pw := io.Pipe()
		done := make(chan error, 1)
		go func() {
			done <- Main(ctx, []string{"--listen", "127.0.0.1:0", "--watts", "12.5W", "--exception", "6"}, pw, io.Discard)
			pw.Close()
		}()
		line := make([]byte, 200)
		n, _ := pr.Read(line)
		s := string(line[:n])
		if !strings.Contains(s, "listening on 127.0.0.1:") || !strings.Contains(s, "12.5 W") {
			t.Errorf("first output %q", s)
		}
		addr := strings.Fields(s[strings.Index(s, "listening on ")+len("listening on "):])[0]
		if got := exchange(t, addr, "000100000006010404000002"); got != "000100000003018406" {
			t.Errorf("answer %s, want exception 6 as --exception 6 asked", got)
		}
		cancel()
		go io.Copy(io.Discard, pr)
		if err := <-done; err != nil {
			t.Errorf("Main returned %v", err)
		}
	})
}

func TestParseException(t *testing.T) {
	for in, want := range map[string]error{"busy": mb.ErrServerDeviceBusy, "2": mb.ErrIllegalDataAddress, "11": mb.ErrGWTargetFailedToRespond} {
		if got, err := ParseException(in); err != nil || got != want {
			t.Errorf("ParseException(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "5", "12", "nap"} {
		if _, err := ParseException(in); err == nil {
			t.Errorf("ParseException(%q): no error", in)
		}
	}
}
