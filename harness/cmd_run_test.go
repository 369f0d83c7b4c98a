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
