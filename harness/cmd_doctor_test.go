package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// staticMachine writes a /proc and /sys where nothing moves: a quiet
// virtual machine with no cpufreq, swap or thermal counters.
func staticMachine(t *testing.T) (procfs, sysfs string) {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"proc/stat":                     "cpu  100 0 100 10000 0 0 0 0 0 0\ncpu0 50 0 50 5000 0 0 0 0 0 0\ncpu1 50 0 50 5000 0 0 0 0 0 0\nbtime 1700000000\n",
		"proc/1/stat":                   "1 (init) S 0 1 1 0 -1 4194560 0 0 0 0 50 50 0 0 20 0 1 0 100 1000000 100 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n",
		"proc/1/cgroup":                 "0::/\n",
		"proc/loadavg":                  "0.01 0.01 0.00 1/50 1\n",
		"proc/meminfo":                  "MemTotal: 1000000 kB\nSwapTotal: 0 kB\nSwapFree: 0 kB\n",
		"proc/vmstat":                   "pswpin 0\npswpout 0\n",
		"sys/devices/system/cpu/online": "0-1\n",
	}
	for name, data := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "proc"), filepath.Join(dir, "sys")
}

func TestDoctor(t *testing.T) {
	procfs, sysfs := staticMachine(t)
	for _, tc := range []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"quiet machine, estimate meter", []string{"--path.procfs", procfs, "--path.sysfs", sysfs, "--meter", "estimate"}, exitOK,
			[]string{"ITEM", "STATUS", "FIX", "other processes' CPU", "0.0 % of 2 CPUs", "load average", "containers", "CPU frequency governor", "not exposed", "swap", "no swap configured",
				"thermal throttling", "meter estimate (model)", "meter estimate (model) ceiling", "7 W (the model with every CPU busy: 1.48 W idle + 2.76 W x 2 CPUs)", "clock synchronisation"}},
		{"no meter", []string{"--path.procfs", procfs, "--path.sysfs", sysfs, "--meter", ""}, exitOK, []string{"other processes' CPU"}},
		{"bad meter spec", []string{"--meter", "?x"}, exitUsage, []string{"--meter"}},
		{"stray argument", []string{"now"}, exitUsage, []string{"unexpected arguments"}},
		{"help", []string{"--help"}, exitOK, []string{"Usage: harness doctor", "busy"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := runCLI(t, append([]string{"doctor"}, tc.args...)...)
			if code != tc.code {
				t.Errorf("exit %d, want %d\n%s%s", code, tc.code, out, errs)
			}
			for _, w := range tc.want {
				if !strings.Contains(out+errs, w) {
					t.Errorf("output lacks %q:\n%s%s", w, out, errs)
				}
			}
			if strings.Contains(out, "\nmeter ") && tc.name == "no meter" {
				t.Errorf("a meter was checked with --meter \"\":\n%s", out)
			}
		})
	}
}

// On this machine, with two hogs beside it, the doctor says busy, names
// them and exits 1.
func TestDoctorNamesHogs(t *testing.T) {
	startHogs(t, 2)
	code, out, errs := runCLI(t, "doctor", "--meter", "")
	if code != exitFail || !strings.Contains(out, hogName) || !strings.Contains(out, "busy") {
		t.Errorf("exit %d, want %d naming %s as busy:\n%s%s", code, exitFail, hogName, out, errs)
	}
}
