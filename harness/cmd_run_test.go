package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRunNothingMeasured: a run that ends before its first phase says
// what happened, and does not send people to `harness report`, which has
// nothing to report either.
func TestRunNothingMeasured(t *testing.T) {
	// A gateway nobody listens on, on loopback: the platform is not there.
	const unreachable = `{name: faas, kind: openfaas, function: fibonacci, mode: warm, options: {gateway: "http://127.0.0.1:1"}}`
	const wasm = `{name: wasm, kind: wasm, function: fibonacci, mode: warm}`
	tests := []struct {
		name   string
		meter  string
		target string
		want   []string
	}{
		{"no target starts", "estimate", unreachable, []string{
			"no target could be started, so nothing was measured", "  faas: ", "127.0.0.1:1", "run.json records the run as failed",
		}},
		{"the meter is not there", "rapl", wasm, []string{
			"harness run: meter rapl: ", "the run recorded no phase, so there is no report", "run.json records how it ended",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			scenario := filepath.Join(t.TempDir(), "none.yaml")
			yaml := "name: none\nrepeat: 1\nidle: 1s\nmeters: [" + tt.meter + "]\ntargets:\n  - " + tt.target + `
load:
  request: {method: POST, body: '{"n": 3}'}
  stages:
    - {rate: 5, duration: 1s}
`
			if err := os.WriteFile(scenario, []byte(yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			runs := t.TempDir()
			code, out, errs := runCLI(t, "run", scenario, "--runs", runs, "--reports", t.TempDir(), "--path.sysfs", t.TempDir())
			if code != exitFail {
				t.Errorf("exit %d, want %d", code, exitFail)
			}
			for _, w := range tt.want {
				if !strings.Contains(errs, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errs)
				}
			}
			if strings.Contains(out+errs, "harness report") {
				t.Errorf("output sends people to harness report:\n%s%s", out, errs)
			}
			dirs, _ := filepath.Glob(filepath.Join(runs, "*-none"))
			if len(dirs) != 1 {
				t.Fatalf("run directories: %v", dirs)
			}
			var meta struct {
				Status string `json:"status"`
				Error  string `json:"error"`
			}
			data, _ := os.ReadFile(filepath.Join(dirs[0], "run.json"))
			if err := json.Unmarshal(data, &meta); err != nil || meta.Status != "failed" || meta.Error == "" {
				t.Errorf("run.json: %s (%v); want failed, with the error", data, err)
			}
		})
	}
}

// TestRunRefusesBeforeRunDir: what the run would choke on is a usage
// error (exit 2) of --check and of the run alike, and the run makes no
// run directory. Each of these passed --check before, and the run then
// grew to gigabytes (/dev/zero, a repeat count past memory), sent thousands
// of requests at a rate of 1e-300/s, or failed with exit 1 after writing a
// run directory (a directory as body, a path as function).
func TestRunRefusesBeforeRunDir(t *testing.T) {
	cases := []struct {
		name, set, want string
	}{
		{"a device as body", "load.request.body_file=/dev/zero", "/dev/zero is outside the scenario's directory"},
		{"a directory as body", "load.request.body_file=.", "is a directory"},
		{"a path as function", "targets[0].function=../../../etc/passwd", `"../../../etc/passwd" is not a function name`},
		{"a repeat count past memory", "repeat=9223372036854775807", "repeat: must be a whole number from 1 to 1000"},
		{"a rate whose interval overflows", "load.stages[0].rate=1e-300", "load.stages[0].rate: must be a positive number of requests per second from 0.000278 to 1000000"},
		{"an estimate of NaN watts", "meters[0]=estimate:idle=NaN", `power "NaN": want a finite number`},
		{"a modbus host with an open bracket", "meters[0]=modbus:[::1", `host "[::1": an IPv6 address goes in brackets`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			scenario := filepath.Join(dir, "bad.yaml")
			yaml := `name: bad
repeat: 1
idle: 1s
meters: [estimate]
targets:
  - {name: wasm, kind: wasm, function: fibonacci, mode: warm}
load:
  request: {method: POST}
  stages:
    - {rate: 5, duration: 1s}
`
			if err := os.WriteFile(scenario, []byte(yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			runs := filepath.Join(dir, "runs")
			for _, check := range []bool{true, false} {
				args := []string{"run", scenario, "--runs", runs, "--reports", filepath.Join(dir, "reports"), "--set", tc.set}
				if check {
					args = append(args, "--check")
				}
				code, _, errs := runCLI(t, args...)
				if code != exitUsage || !strings.Contains(errs, tc.want) {
					t.Errorf("check %v: exit %d, stderr\n%s\nwant exit %d saying %q", check, code, errs, exitUsage, tc.want)
				}
			}
			if _, err := os.Stat(runs); !os.IsNotExist(err) {
				t.Errorf("a run directory was made: %v", err)
			}
		})
	}
}

// TestRunMetricsListen: the live view serves on loopback unless asked
// otherwise, and a refusal says how to ask, before anything runs.
func TestRunMetricsListen(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"all interfaces refused", []string{"--metrics-listen", "0.0.0.0:9464"}, exitUsage, "is not loopback"},
		{"a LAN address refused", []string{"--metrics-listen", "192.168.1.5:9464"}, exitUsage, "add --metrics-allow-remote"},
		{"no port", []string{"--metrics-listen", "localhost"}, exitUsage, "want HOST:PORT or PORT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			runs := t.TempDir()
			args := append([]string{"run", filepath.Join("..", "scenarios", "coldstart.yaml"), "--runs", runs}, tt.args...)
			code, _, errs := runCLI(t, args...)
			if code != tt.code || !strings.Contains(errs, tt.want) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, errs, tt.code, tt.want)
			}
			if dirs, _ := os.ReadDir(runs); len(dirs) != 0 {
				t.Errorf("a refused run made %v", dirs)
			}
		})
	}
}

// TestRunReportErrorOnce: a report that cannot be written says so once:
// "harness run: report: report: mkdir ..." stuttered.
func TestRunReportErrorOnce(t *testing.T) {
	dir := t.TempDir()
	scenario := filepath.Join(dir, "r.yaml")
	yaml := `name: r
repeat: 1
idle: 500ms
warmup: 0s
cooldown: 0s
meters: [estimate]
targets:
  - {name: wasm, kind: wasm, function: fibonacci, mode: warm}
load:
  request: {method: POST, body: '{"n": 3}'}
  stages:
    - {rate: 5, duration: 500ms}
`
	if err := os.WriteFile(scenario, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	notADir := filepath.Join(dir, "reports")
	if err := os.WriteFile(notADir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errs := runCLI(t, "run", scenario, "--runs", filepath.Join(dir, "runs"), "--reports", notADir)
	if code != exitFail || !strings.Contains(errs, "harness run: report: mkdir "+notADir) || strings.Contains(errs, "report: report:") {
		t.Errorf("exit %d, stderr\n%s\nwant exit %d and one \"report:\" before the mkdir error", code, errs, exitFail)
	}
}
