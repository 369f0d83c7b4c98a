package main

import (
	"bytes"
	"encoding/csv"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/tools/txtar"

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
	for i, r := range rows[1:] {
		if _, err := strconv.ParseInt(r[2], 10, 64); err != nil {
			t.Errorf("row %d t_ns %q: %v", i+2, r[2], err)
		}
	}
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

func TestAppendSampleRow(t *testing.T) {
	tests := []struct {
		name  string
		meter string
		w, j  float64
		want  string
	}{
		{"plain", "rapl", 1.5, 0.25, "rapl,2,1000,1.5,0.25\n"},
		{"NaN", "rapl", math.NaN(), 0, "rapl,2,1000,NaN,0\n"},
		{"quoted meter", `modbus:h:502?a=1,b=2`, 1, 2, `"modbus:h:502?a=1,b=2",2,1000,1,2` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(appendSampleRow(nil, tt.meter, sampleAt(1000, tt.w, tt.j)))
			if got != tt.want {
				t.Errorf("row = %q, want %q", got, tt.want)
			}
		})
	}
}

func sampleAt(ns int64, w, j float64) meters.Sample {
	return meters.Sample{Channel: 2, T: time.Unix(0, ns), Watts: w, Joules: j}
}
