package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/tools/txtar"

	"github.com/academemes/harness/harness/internal/runstore"
	"github.com/academemes/harness/meters"
)

// raplFixture extracts one of the RAPL driver's fixture trees and returns
// its sysfs root.
func raplFixture(t *testing.T, name string) string {
	t.Helper()
	ar, err := txtar.ParseFile(filepath.Join("..", "meters", "rapl", "testdata", name+".txtar"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, f := range ar.Files {
		if f.Name == "MODES" {
			continue
		}
		p := filepath.Join(dir, filepath.FromSlash(f.Name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, f.Data, 0o444); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "sys")
}

// procFixture writes a /proc/stat of a two-CPU machine and returns the
// procfs root.
func procFixture(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	stat := "cpu  100 0 100 800 0 0 0 0 0 0\ncpu0 50 0 50 400 0 0 0 0 0 0\ncpu1 50 0 50 400 0 0 0 0 0 0\nctxt 1\n"
	if err := os.WriteFile(filepath.Join(dir, "stat"), []byte(stat), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func runMeters(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = cmdMeters(args, &o, &e)
	return code, o.String(), e.String()
}

func TestMetersList(t *testing.T) {
	tests := []struct {
		name     string
		sysfs    func(t *testing.T) string
		want     []string
		wantNot  []string
		wantCode int
	}{
		{
			name:  "rapl fixture",
			sysfs: func(t *testing.T) string { return raplFixture(t, "intel-1socket") },
			want: []string{
				"rapl (auto rank 10)", "usable: RAPL energy counters, powercap sysfs, 4 zones",
				"package-0  intel-rapl:0     readable, range 262143.33 J, in total",
				"precision: power step 6.1 mW, energy step 61 µJ, accuracy not stated",
				"estimate (auto rank 100)", "auto would take: rapl",
			},
		},
		{
			name:  "mmio duplicate",
			sysfs: func(t *testing.T) string { return raplFixture(t, "intel-mmio") },
			want:  []string{"dropped intel-rapl-mmio duplicates: intel-rapl-mmio:0"},
		},
		{
			name:  "no RAPL: auto falls back to the estimate",
			sysfs: func(t *testing.T) string { return t.TempDir() },
			want: []string{
				"NOT usable", "no powercap interface",
				"auto would take: estimate (model)", "auto: chose estimate",
			},
			wantNot: []string{"auto would take: rapl"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runMeters("list", "--fixture", "--path.sysfs", tt.sysfs(t), "--path.procfs", procFixture(t))
			if code != exitOK {
				t.Fatalf("exit %d, stderr %s", code, errOut)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			for _, w := range tt.wantNot {
				if strings.Contains(out, w) {
					t.Errorf("output has %q:\n%s", w, out)
				}
			}
		})
	}
}

func TestMetersRecordRAPL(t *testing.T) {
	out := filepath.Join(t.TempDir(), "samples.csv")
	code, stdout, stderr := runMeters("record", "--meter", "rapl:rate=200", "--duration", "300ms",
		"--out", out, "--fixture", "--path.sysfs", raplFixture(t, "intel-2socket"))
	if code != exitOK {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr)
	}
	for _, w := range []string{"meter rapl:rate=200 (measured)", "package-0", "dram-1", "total (package-0 + package-1): 0.000 J", "samples written to", "counters: late_readings ", "read_errors 0, readings ", "precision: power step 24.4 mW, energy step 122 µJ, accuracy not stated"} {
		if !strings.Contains(stdout, w) {
			t.Errorf("output lacks %q:\n%s", w, stdout)
		}
	}
	if !strings.Contains(stderr, "recording rapl:rate=200") {
		t.Errorf("stderr lacks the recording line:\n%s", stderr)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) < 1+2*4 {
		t.Fatalf("CSV has %d rows, want a header and at least two readings of 4 channels", len(rows))
	}
	if got := strings.Join(rows[0], ","); got != "meter,channel,t_ns,watts,joules" {
		t.Errorf("header = %q", got)
	}
	// The first reading has no interval yet: watts NaN, joules 0.
	if rows[1][0] != "rapl:rate=200" || rows[1][1] != "0" || rows[1][3] != "NaN" || rows[1][4] != "0" {
		t.Errorf("first row = %v, want rapl:rate=200,0,T,NaN,0", rows[1])
	}
	// The channel indexes are named in the sidecar, FILE.meta.json.
	rec := readRecording(t, out)
	if rec.Samples != "samples.csv" || rec.Meter.Name != "rapl:rate=200" || rec.Meter.Kind != runstore.MeterMeasured || rec.Meter.Report == nil || rec.Ended.IsZero() {
		t.Errorf("sidecar = %+v", rec)
	}
	var names []string
	for _, c := range rec.Meter.Channels {
		names = append(names, c.Name)
	}
	if want := []string{"package-0", "dram-0", "package-1", "dram-1"}; !slices.Equal(names, want) {
		t.Errorf("sidecar channels %q, want %q", names, want)
	}
	for i, r := range rows[1:] {
		if _, err := strconv.ParseInt(r[2], 10, 64); err != nil {
			t.Errorf("row %d t_ns %q: %v", i+2, r[2], err)
		}
		if c, err := strconv.Atoi(r[1]); err != nil || c < 0 || c >= len(names) {
			t.Errorf("row %d channel %q is not one the sidecar names", i+2, r[1])
		}
	}
}

// readRecording reads the sidecar of the samples file at path.
func readRecording(t *testing.T, path string) runstore.Recording {
	t.Helper()
	var rec runstore.Recording
	data, err := os.ReadFile(filepath.Join(filepath.Dir(path), strings.TrimSuffix(filepath.Base(path), ".csv")+".meta.json"))
	if err != nil {
		t.Fatalf("sidecar: %v", err)
	}
	if err := json.Unmarshal(data, &rec); err != nil {
		t.Fatalf("sidecar: %v", err)
	}
	return rec
}

func TestMetersRecordEstimate(t *testing.T) {
	code, stdout, stderr := runMeters("record", "--meter", "estimate:idle=2W,rate=50", "--duration", "300ms",
		"--path.procfs", procFixture(t))
	if code != exitOK {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr)
	}
	// /proc/stat does not move, so the model stays at idle: 2 W exactly.
	for _, w := range []string{"(estimate, model)", "mean power (estimate)", "machine (model)", "2.000 W", "total (estimate, model) (machine (model)):", "mean 2.000 W", "precision: power step 1.38 W, within ±100 %"} {
		if !strings.Contains(stdout, w) {
			t.Errorf("output lacks %q:\n%s", w, stdout)
		}
	}
}

func TestMetersRecordErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no meter", []string{"record"}, exitUsage, "--meter is required"},
		{"bad duration", []string{"record", "--meter", "estimate", "--duration", "soon"}, exitUsage, "invalid value"},
		{"negative duration", []string{"record", "--meter", "estimate", "--duration", "-1s"}, exitUsage, "positive duration"},
		{"unknown driver", []string{"record", "--meter", "teapot"}, exitUsage, "unknown driver"},
		{"bad option", []string{"record", "--meter", "rapl:speed=2"}, exitUsage, "unknown option"},
		{"no RAPL here", []string{"record", "--meter", "rapl", "--path.sysfs", "/nonexistent/sys"}, exitFail, "no powercap interface"},
		{"stray argument", []string{"record", "--meter", "rapl", "extra"}, exitUsage, "unexpected argument"},
		{"unknown subcommand", []string{"frobnicate"}, exitUsage, "unknown subcommand"},
		{"no subcommand", nil, exitUsage, "harness meters list"},
		{"unknown emulator", []string{"emulate", "teapot"}, exitUsage, "unknown emulator"},
		{"emulate without a name", []string{"emulate"}, exitUsage, "Usage: harness meters emulate NAME"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runMeters(tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d", code, tt.code)
			}
			if !strings.Contains(stdout+stderr, tt.want) {
				t.Errorf("output lacks %q:\nstdout %s\nstderr %s", tt.want, stdout, stderr)
			}
		})
	}
}

func TestMetersHelp(t *testing.T) {
	code, stdout, _ := runMeters("--help")
	if code != exitOK {
		t.Fatalf("exit %d", code)
	}
	for _, w := range []string{"rapl[:sysfs=DIR", "estimate[:idle=W", "Emulators:"} {
		if !strings.Contains(stdout, w) {
			t.Errorf("help lacks %q:\n%s", w, stdout)
		}
	}
}

// gapMeter is a meter of one channel, "EPS1 12V", that loses its device
// for 3 s and reports the gap, as a PMD-USB does. It runs on a clock of
// its own, so the test is quick and its figures exact: samples every
// 10 ms at beforeW for before, none for 3 s, then at afterW for after.
// With counter set it keeps cumulative joules that do not grow in the
// gap (PMD-USB's); without, it gives watts only.
type gapMeter struct {
	counter         bool
	beforeW, afterW float64
	before, after   time.Duration
}

var gapStart = time.Unix(1_000_000, 0)

func (g gapMeter) Info() meters.Info {
	return meters.Info{Name: "gaptest", Driver: "gaptest", Kind: meters.Measured, Channels: []meters.Channel{{Name: "EPS1 12V", InTotal: true}}}
}

func (g gapMeter) gap() meters.Gap {
	t := gapStart.Add(g.before)
	return meters.Gap{Start: t, End: t.Add(3 * time.Second), Reason: "device lost: unplugged"}
}

func (g gapMeter) Run(ctx context.Context, emit func(meters.Sample)) error {
	const step = 10 * time.Millisecond
	joules := 0.0
	series := func(from time.Time, d time.Duration, w float64) {
		for t := from; !t.After(from.Add(d)); t = t.Add(step) {
			if t.After(from) {
				joules += w * step.Seconds()
			}
			s := meters.Sample{T: t, Watts: w, Joules: math.NaN()}
			if g.counter {
				s.Joules = joules
			}
			emit(s)
		}
	}
	series(gapStart, g.before, g.beforeW)
	series(g.gap().End, g.after, g.afterW)
	return nil
}

func (g gapMeter) Report() meters.Report { return meters.Report{Gaps: []meters.Gap{g.gap()}} }

var gapMeters = map[string]gapMeter{
	"counter": {counter: true, beforeW: 110, afterW: 110, before: 2 * time.Second, after: 2 * time.Second},
	"watts":   {beforeW: 100, afterW: 120, before: time.Second, after: 3 * time.Second},
}

func init() {
	meters.Register(meters.Driver{
		Name:  "gaptest",
		Usage: "gaptest:counter|watts   a test meter that loses its device for 3 s",
		Open: func(sp meters.Spec, _ meters.Env) (meters.Meter, error) {
			return gapMeters[sp.Arg], nil
		},
	})
}

// TestMetersRecordGap: mean power is over the time the meter covered, and
// the gap is said beside it; the gap's 3 s count in neither.
func TestMetersRecordGap(t *testing.T) {
	tests := []struct {
		name string
		spec string
		want []string
	}{
		{"constant 110 W, counter paused in the gap", "gaptest:counter", []string{
			"EPS1 12V  402      110.000 W   440.000 J  4s       yes",
			"total (EPS1 12V): 440.000 J over 4s covered, mean 110.000 W; 3s in 1 gap(s) left out (below)",
			"gap: 3s from ", "device lost: unplugged",
		}},
		{"watts only, 100 W before and 120 W after", "gaptest:watts", []string{
			"460.000 J over 4s covered, mean 115.000 W; 3s in 1 gap(s)",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "rec.csv")
			code, stdout, stderr := runMeters("record", "--meter", tt.spec, "--duration", "1s", "--out", out)
			if code != exitOK {
				t.Fatalf("exit %d; stderr:\n%s", code, stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(stdout, w) {
					t.Errorf("output lacks %q:\n%s", w, stdout)
				}
			}
			rec := readRecording(t, out)
			if r := rec.Meter.Report; r == nil || len(r.Gaps) != 1 || r.Gaps[0].Reason != "device lost: unplugged" {
				t.Errorf("sidecar report = %+v, want the gap", r)
			}
		})
	}
}
