package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/academemes/harness/harness/internal/energy/synth"
)

// synthRun writes a synthetic run under runs and returns its directory.
func synthRun(t *testing.T, runs string, seed uint64, start time.Time) string {
	t.Helper()
	cfg := synth.Demo(seed)
	cfg.Start = start
	run, _ := synth.Generate(cfg)
	dir := filepath.Join(runs, run.Meta.ID)
	if err := synth.WriteDir(dir, run); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestCmdReport(t *testing.T) {
	tmp := t.TempDir()
	runs, reports := filepath.Join(tmp, "runs"), filepath.Join(tmp, "reports")
	dir := synthRun(t, runs, 1, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	tests := []struct {
		name string
		args []string
		code int
		out  string
	}{
		{"report with csv after the run", []string{"report", dir, "--reports", reports, "--csv"}, exitOK, "summary.csv"},
		{"report", []string{"report", "--reports", reports, dir}, exitOK, "Report: " + reports},
		{"help", []string{"report", "--help"}, exitOK, ""},
		{"no run dir", []string{"report"}, exitUsage, ""},
		{"two run dirs", []string{"report", dir, dir}, exitUsage, ""},
		{"not a run", []string{"report", tmp, "--reports", reports}, exitFail, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := run(tc.args, &out, &errb); code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, out.String(), errb.String())
			}
			if !strings.Contains(out.String(), tc.out) {
				t.Errorf("stdout lacks %q:\n%s", tc.out, out.String())
			}
		})
	}
	for _, f := range []string{filepath.Join(dir, "summary.json"), filepath.Join(dir, "summary.csv"), filepath.Join(reports, "index.html")} {
		if _, err := os.Stat(f); err != nil {
			t.Error(err)
		}
	}
}

// TestCmdReportFormat1 analyses a run directory of the first format (see
// runstore's testdata/format1) and writes its report.
func TestCmdReportFormat1(t *testing.T) {
	tmp := t.TempDir()
	dir, reports := filepath.Join(tmp, "20261204-202802-format1"), filepath.Join(tmp, "reports")
	if err := os.CopyFS(dir, os.DirFS(filepath.Join("internal", "runstore", "testdata", "format1"))); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runCLI(t, "report", dir, "--reports", reports)
	if code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	for _, w := range []string{"wasm-cold", "pmd-usb:/tmp/rsfix/pmd", "estimate:rate=10 (model)"} {
		if !strings.Contains(out, w) {
			t.Errorf("summary table lacks %q:\n%s", w, out)
		}
	}
	html, err := os.ReadFile(filepath.Join(reports, "20261204-202802-format1.html"))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"wasm-cold", "device lost: pmd-usb", "clock fit"} {
		if !bytes.Contains(html, []byte(w)) {
			t.Errorf("report lacks %q", w)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "summary.json")); err != nil {
		t.Error(err)
	}
}
