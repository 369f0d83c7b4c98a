package serial

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/academemes/harness/meters"
)

// sysfsTree builds the links a real /sys has for a ttyACM (CDC) and a
// ttyUSB (usb-serial) device, and a virtual tty without a device.
func sysfsTree(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	mk := func(dir string, files map[string]string) {
		if err := os.MkdirAll(filepath.Join(root, dir), 0o755); err != nil {
			t.Fatal(err)
		}
		for k, v := range files {
			if err := os.WriteFile(filepath.Join(root, dir, k), []byte(v+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	link := func(target, name string) {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(root, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	acm := "devices/pci0000:00/usb1/1-1"
	mk(acm, map[string]string{"idVendor": "0483", "idProduct": "5740", "product": "BLACKPILL_F411CE", "serial": "123"})
	mk(acm+"/1-1:1.0/tty/ttyACM0", nil)
	link("../../../1-1:1.0", acm+"/1-1:1.0/tty/ttyACM0/device")
	link("../../"+acm+"/1-1:1.0/tty/ttyACM0", "class/tty/ttyACM0")
	ch := "devices/pci0000:00/usb1/1-2"
	mk(ch, map[string]string{"idVendor": "1a86", "idProduct": "7523", "product": "USB Serial"})
	mk(ch+"/1-2:1.0/ttyUSB0/tty/ttyUSB0", nil)
	link("../../../ttyUSB0", ch+"/1-2:1.0/ttyUSB0/tty/ttyUSB0/device")
	link("../../"+ch+"/1-2:1.0/ttyUSB0/tty/ttyUSB0", "class/tty/ttyUSB0")
	mk("devices/virtual/tty/tty1", nil)
	link("../../devices/virtual/tty/tty1", "class/tty/tty1")
	return root
}

func TestSysfsEnumerator(t *testing.T) {
	root := sysfsTree(t)
	ports, err := SysfsEnumerator{SysfsRoot: root, DevRoot: "/dev"}.Ports()
	if err != nil {
		t.Fatal(err)
	}
	if len(ports) != 2 {
		t.Fatalf("ports = %+v, want ttyACM0 and ttyUSB0", ports)
	}
	if p := ports[0]; p.Name != "ttyACM0" || p.ID() != "0483:5740" || p.Product != "BLACKPILL_F411CE" || p.Path != "/dev/ttyACM0" {
		t.Errorf("ttyACM0: %+v", p)
	}
	if p := ports[1]; p.Name != "ttyUSB0" || p.ID() != "1a86:7523" {
		t.Errorf("ttyUSB0: %+v", p)
	}
	if _, err := (SysfsEnumerator{SysfsRoot: t.TempDir()}).Ports(); err == nil {
		t.Error("no class/tty: want an error")
	}
}

func TestDetect(t *testing.T) {
	root := sysfsTree(t)
	dev := t.TempDir() // no device nodes: found but not usable
	cases := []struct {
		name string
		ids  []USBID
		want int
	}{
		{"pmd-usb", []USBID{{0x1a86, 0x7523}}, 1},
		{"powersensor3", []USBID{{0x0483, 0x5740}}, 1},
		{"nothing", []USBID{{0x1234, 0x5678}}, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := Detect(SysfsEnumerator{SysfsRoot: root, DevRoot: dev}, Match{Driver: tc.name, IDs: tc.ids, What: tc.name})
			if len(c) != tc.want {
				t.Fatalf("candidates %+v, want %d", c, tc.want)
			}
			if tc.want > 0 && (c[0].Usable || c[0].Reason == "") {
				t.Errorf("missing node should be unusable with a reason: %+v", c[0])
			}
		})
	}
}

func TestClassifyOpenError(t *testing.T) {
	if err := ClassifyOpenError("/dev/x", os.ErrPermission); !errors.Is(err, meters.ErrPermission) {
		t.Errorf("permission: %v", err)
	}
	if err := ClassifyOpenError("/dev/x", os.ErrNotExist); !errors.Is(err, meters.ErrUnavailable) {
		t.Errorf("missing: %v", err)
	}
	if _, err := OpenPort(filepath.Join(t.TempDir(), "none"), 115200); !errors.Is(err, meters.ErrUnavailable) {
		t.Errorf("OpenPort of a missing path: %v", err)
	}
}

// TestClockFit: a device clock 50 ppm fast, read with 0-3 ms of latency,
// maps back onto the host clock within the latency floor.
func TestClockFit(t *testing.T) {
	f := NewClockFitter(100*time.Millisecond, 600)
	base := time.Unix(1_700_000_000, 0)
	for i := 0; i < 20000; i++ {
		host := time.Duration(i) * time.Millisecond
		dev := int64(float64(host) * (1 + 50e-6))
		lat := time.Duration((i*7919)%3000) * time.Microsecond
		f.Add(dev, base.Add(host+lat))
	}
	fit := f.Fit()
	if math.Abs(fit.DriftPPM-(-50)) > 1 {
		t.Errorf("drift %.2f ppm, want about -50 (host = device*(1-50e-6))", fit.DriftPPM)
	}
	ten := 10 * time.Second
	dev := int64(float64(ten) * (1 + 50e-6))
	if err := f.Map(dev).Sub(base.Add(10 * time.Second)); err < 0 || err > 100*time.Microsecond {
		t.Errorf("Map error %v, want within 100 µs", err)
	}
	if fit.Points != 20000 || fit.ResidualMaxNs > 1e5 {
		t.Errorf("fit %+v", fit)
	}
}

// TestClockFitLateBins: where the host did not read for a while, every
// observation of that stretch arrives late (the bytes waited in the
// kernel's buffers), and the bins it covers have their minima late by up
// to the whole wait. Those bins are latency, not the clock: the fit must
// keep to the device's drift and map device times as without them.
func TestClockFitLateBins(t *testing.T) {
	base := time.Unix(1_700_000_000, 0)
	// stalled: the host reads nothing from each [0] for [1]; what was
	// sent meanwhile is read when it comes back.
	stalled := func(stalls ...[2]time.Duration) func(time.Duration) time.Duration {
		return func(at time.Duration) time.Duration {
			for _, st := range stalls {
				if at >= st[0] && at < st[0]+st[1] {
					return st[0] + st[1] - at
				}
			}
			return 0
		}
	}
	cases := []struct {
		name  string
		total time.Duration
		late  func(at time.Duration) time.Duration // extra delay of what was sent at at
	}{
		{"3 s, a 150 ms stall early on", 3 * time.Second, stalled([2]time.Duration{400 * time.Millisecond, 150 * time.Millisecond})},
		{"3 s, a 150 ms stall near the end", 3 * time.Second, stalled([2]time.Duration{2700 * time.Millisecond, 150 * time.Millisecond})},
		{"20 s, a stall of 60-250 ms every 2 s", 20 * time.Second, func() func(time.Duration) time.Duration {
			var s [][2]time.Duration
			for k := range 9 {
				s = append(s, [2]time.Duration{time.Duration(2*k+1) * time.Second, time.Duration(60+k*25) * time.Millisecond})
			}
			return stalled(s...)
		}()},
		// The device's frames came late from the start, 500 ms at first,
		// catching up over 1.2 s: the first 40 % of the bins.
		{"3 s, late from the start, catching up over 1.2 s", 3 * time.Second, func(at time.Duration) time.Duration {
			return max(500*time.Millisecond-at*500/1200, 0)
		}},
		// A reader short of CPU falls behind, 4 % more each second, for
		// half the recording, then catches up at once.
		{"3 s, falling behind for half of it", 3 * time.Second, func(at time.Duration) time.Duration {
			if at < time.Second || at >= 2500*time.Millisecond {
				return 0
			}
			return (at - time.Second) * 4 / 100
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := NewClockFitter(100*time.Millisecond, 600)
			for i := 0; i < int(tc.total/time.Millisecond); i++ {
				host := time.Duration(i) * time.Millisecond
				dev := int64(float64(host) * (1 + 50e-6))
				f.Add(dev, base.Add(host+tc.late(host)+time.Duration((i*7919)%3000)*time.Microsecond))
			}
			fit := f.Fit()
			if math.Abs(fit.DriftPPM-(-50)) > 10 || f.Failed() {
				t.Errorf("drift %.2f ppm (failed %v), want about -50", fit.DriftPPM, f.Failed())
			}
			end := tc.total - time.Millisecond
			dev := int64(float64(end) * (1 + 50e-6))
			if err := f.Map(dev).Sub(base.Add(end)); err < 0 || err > 200*time.Microsecond {
				t.Errorf("Map error %v at the end, want within 200 µs", err)
			}
			if fit.ResidualMaxNs > 1e6 {
				t.Errorf("residual max %.3f ms, want the late bins left out", fit.ResidualMaxNs/1e6)
			}
		})
	}
}

// TestClockFitFails: timestamps that run far from the host clock are no
// clock. A fit of them must fail once it spans FitJudgeSpan, say so, and
// place device times by the host clock from then on; before that its slope
// stays within MaxDriftPPM. Latency 0-3 ms as in TestClockFit.
func TestClockFitFails(t *testing.T) {
	base := time.Unix(1_700_000_000, 0)
	cases := []struct {
		name     string
		rate     float64 // device ns per host ns
		wantFail bool
	}{
		{"a crystal 50 ppm fast", 1 + 50e-6, false},
		{"an RC oscillator 1 % slow", 0.99, false},
		{"timestamps half again too fast (drift -333333 ppm)", 1.5, true},
		{"timestamps at half speed (drift +1000000 ppm)", 0.5, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := NewClockFitter(100*time.Millisecond, 600)
			var c Core
			c.fit = f
			dev := func(ms int) int64 { return int64(float64(time.Duration(ms)*time.Millisecond) * tc.rate) }
			lat := func(i int) time.Duration { return time.Duration((i*7919)%3000) * time.Microsecond }
			for i := 0; i < 5000; i++ {
				f.Add(dev(i), base.Add(time.Duration(i)*time.Millisecond+lat(i)))
				if i == 500 && math.Abs(f.Fit().DriftPPM) > MaxDriftPPM {
					t.Errorf("after 500 ms: drift %.0f ppm, want it held within ±%d ppm until judged", f.Fit().DriftPPM, MaxDriftPPM)
				}
			}
			r := c.Report(nil)
			if f.Failed() != tc.wantFail || (r.Counters["clock_fit_failures"] == 1) != tc.wantFail || (len(r.Warnings) == 1) != tc.wantFail {
				t.Fatalf("failed %v, counters %v, warnings %q; want failed %v", f.Failed(), r.Counters, r.Warnings, tc.wantFail)
			}
			if !tc.wantFail {
				return
			}
			if want := (1/tc.rate - 1) * 1e6; math.Abs(f.Failures()[0].DriftPPM-want) > 0.05*math.Abs(want) {
				t.Errorf("failure %+v, want drift about %.0f ppm", f.Failures()[0], want)
			}
			if !strings.Contains(r.Warnings[0], "clock fit failed") || !strings.Contains(r.Warnings[0], "host clock") {
				t.Errorf("warning %q", r.Warnings[0])
			}
			// The last observation was read at 4999 ms: its device time
			// maps there, within the latency, not where the line would.
			got := f.Map(dev(4999)).Sub(base)
			if d := got - 4999*time.Millisecond; d < -5*time.Millisecond || d > 5*time.Millisecond {
				t.Errorf("device time of the last observation maps to %v, want 4.999s within 5 ms", got)
			}
			// A reconnect starts a fresh fit, keeping the failure on record.
			f.Reset()
			if f.Failed() || len(f.Failures()) != 1 {
				t.Errorf("after Reset: failed %v, failures %d; want a fresh fit and the failure kept", f.Failed(), len(f.Failures()))
			}
		})
	}
}
