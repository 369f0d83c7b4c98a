package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestInterruptKeepsDataAndCleansUp runs the real binary, sends it SIGINT
// during the docker-node target's load, and checks what a user relies on:
// exit 1, run.json says interrupted, the requests so far are kept, a report
// is still written, and no container of the run is left behind.
func TestInterruptKeepsDataAndCleansUp(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the harness binary")
	}
	engineOrSkip(t)
	bin := filepath.Join(t.TempDir(), "harness")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	runs, reports := t.TempDir(), t.TempDir()
	cmd := exec.Command(bin, "run", "../scenarios/coldstart.yaml",
		"--set", "repeat=1", "--set", "idle=1s", "--set", "warmup=0s", "--set", "cooldown=1s",
		"--set", "load.stages[0].duration=60s", "--set", "order=fixed", // docker-node first
		"--set", "targets=[{name: docker-node, kind: docker-node, function: memes, mode: cold}, {name: wasm, kind: wasm, function: memes, mode: cold}]",
		"--runs", runs, "--reports", reports)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	// Wait until docker-node's load phase has recorded a few requests.
	var dir string
	deadline := time.Now().Add(2 * time.Minute)
	for dir == "" || countRows(t, filepath.Join(dir, "requests.csv"), "docker-node,load,") < 3 {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("no docker-node load requests recorded in time:\n%s", out.String())
		}
		select {
		case err := <-done:
			t.Fatalf("harness exited early: %v\n%s", err, out.String())
		case <-time.After(200 * time.Millisecond):
		}
		if m, _ := filepath.Glob(filepath.Join(runs, "*-coldstart")); len(m) == 1 {
			dir = m[0]
		}
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	var err error
	select {
	case err = <-done:
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		t.Fatalf("harness did not stop after SIGINT:\n%s", out.String())
	}
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != exitFail {
		t.Errorf("exit: %v, want code %d\n%s", err, exitFail, out.String())
	}
	if !strings.Contains(out.String(), "interrupted") {
		t.Errorf("output does not say it was interrupted:\n%s", out.String())
	}
	var meta struct {
		ID     string `json:"id"`
		Status string `json:"status"`
		Phases []struct {
			Target      string `json:"target"`
			Phase       string `json:"phase"`
			Interrupted bool   `json:"interrupted"`
		} `json:"phases"`
	}
	data, _ := os.ReadFile(filepath.Join(dir, "run.json"))
	if err := json.Unmarshal(data, &meta); err != nil {
		t.Fatal(err)
	}
	if meta.Status != "interrupted" {
		t.Errorf("run.json status %q, want interrupted", meta.Status)
	}
	if n := len(meta.Phases); n == 0 || !meta.Phases[n-1].Interrupted || meta.Phases[n-1].Target != "docker-node" {
		t.Errorf("last phase should be docker-node's, marked interrupted: %+v", meta.Phases)
	}
	if n := countRows(t, filepath.Join(dir, "requests.csv"), "docker-node,load,"); n < 3 {
		t.Errorf("kept %d docker-node requests, want at least 3", n)
	}
	if _, err := os.Stat(filepath.Join(reports, meta.ID+".html")); err != nil {
		t.Errorf("no report for the interrupted run: %v", err)
	}
	if containers, _ := leftovers(t, meta.ID); containers > 0 {
		t.Errorf("%d containers left behind after SIGINT", containers)
	}
}

func countRows(t *testing.T, path, prefix string) int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	n := 0
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, prefix) {
			n++
		}
	}
	return n
}
