package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/academemes/harness/harness/internal/energy"
	"github.com/academemes/harness/harness/internal/runstore"
	"github.com/academemes/harness/harness/internal/validity"
)

// hogName is the command name of the test's CPU hogs: a copy of /bin/sh
// under a name nothing else on the machine has, so that a problem naming
// it names them. The test process's PID is part of it: another copy of
// this test running at the same time (another checkout's) has hogs of
// its own, and they must not count as these.
var hogName = fmt.Sprintf("validityhog%04d", os.Getpid()%10000)

// startHogs starts n processes that spin on a CPU until stop is called (or
// the test ends).
func startHogs(t *testing.T, n int) (stop func()) {
	t.Helper()
	src, err := os.Open("/bin/sh")
	if err != nil {
		t.Skipf("no /bin/sh to spin with: %v", err)
	}
	defer src.Close()
	hog := filepath.Join(t.TempDir(), hogName)
	dst, err := os.OpenFile(hog, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	dst.Close()
	// The hogs must not be the test's children: the test binary is the
	// harness here, and the harness's descendants are its own work. A
	// shell starts each in the background and exits, so that they are
	// re-parented as any other program's processes are.
	var pids []int
	for range n {
		out, err := exec.Command("/bin/sh", "-c", hog+` -c 'while :; do :; done' </dev/null >/dev/null 2>&1 & echo $!`).Output()
		if err != nil {
			t.Fatal(err)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
		if err != nil {
			t.Fatalf("hog pid %q: %v", out, err)
		}
		pids = append(pids, pid)
	}
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		// A signal is delivered when the process next runs: on a busy
		// machine a hog may spin on until then. Wait until each has
		// ended (a zombie, or reaped) so that what follows runs
		// without them.
		for _, pid := range pids {
			for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
				stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
				if _, after, ok := strings.Cut(string(stat), ") "); err != nil || !ok || strings.HasPrefix(after, "Z") || strings.HasPrefix(after, "X") {
					break
				}
			}
		}
	}
	t.Cleanup(stop)
	return stop
}

// runColdstart runs the project's coldstart scenario with short phases on
// the wasm target alone (docker-node's container per request would make
// each run take minutes; the checks are the same for every target).
func runColdstart(t *testing.T, policy string) (code int, out string, run *runstore.Run) {
	t.Helper()
	runs, reports := t.TempDir(), t.TempDir()
	code, stdout, stderr := runCLI(t, "run", "../scenarios/coldstart.yaml", "--checks", policy,
		"--set", "repeat=1", "--set", "idle=1s", "--set", "warmup=1s", "--set", "cooldown=1s",
		"--set", "load.stages[0].duration=2s",
		"--set", "targets=[{name: wasm, kind: wasm, function: memes, mode: cold}]",
		"--runs", runs, "--reports", reports)
	out = stdout + stderr
	dirs, _ := filepath.Glob(filepath.Join(runs, "*-coldstart"))
	if len(dirs) != 1 {
		t.Fatalf("run directories %v\n%s", dirs, out)
	}
	run, err := runstore.Load(dirs[0])
	if err != nil {
		t.Fatal(err)
	}
	return code, out, run
}

// TestChecksOnBusyMachine is the acceptance test of validity: with two
// CPU-bound processes beside it, a strict run refuses to start and names
// them, a warn run completes but is marked invalid in every phase, naming
// them; without them the run is valid on a quiet machine.
func TestChecksOnBusyMachine(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the coldstart scenario three times")
	}
	stop := startHogs(t, 2)

	code, out, run := runColdstart(t, validity.Strict)
	if code != exitFail || !strings.Contains(out, hogName) || !strings.Contains(out, "busy") {
		t.Errorf("strict on a busy machine: exit %d, want %d naming %s as busy:\n%s", code, exitFail, hogName, out)
	}
	if run.Meta.Status != runstore.StatusFailed || len(run.Meta.Phases) != 0 || len(run.Requests) != 0 {
		t.Errorf("strict: status %s with %d phases and %d requests, want failed before any load", run.Meta.Status, len(run.Meta.Phases), len(run.Requests))
	}
	if v := run.Meta.Validity; v == nil || v.Valid || len(v.Problems) == 0 ||
		v.Problems[0].Phase != "" || v.Problems[0].Check != validity.CheckForeignCPU || !strings.Contains(v.Problems[0].Message, hogName) {
		t.Errorf("strict: validity %s, want invalid with the system check's problem naming %s", js(v), hogName)
	}

	code, out, run = runColdstart(t, validity.Warn)
	if code != exitOK || run.Meta.Status != runstore.StatusComplete {
		t.Fatalf("warn on a busy machine: exit %d, status %s, want a complete run:\n%s", code, run.Meta.Status, out)
	}
	if v := run.Meta.Validity; v == nil || v.Valid {
		t.Errorf("warn: validity %s, want invalid", js(v))
	}
	if !strings.Contains(out, "INVALID") || !strings.Contains(out, hogName) {
		t.Errorf("warn: the console output does not end with the problems naming %s:\n%s", hogName, out)
	}
	if len(run.Meta.Phases) != 4 {
		t.Errorf("warn: %d phases, want idle, warmup, load, cooldown", len(run.Meta.Phases))
	}
	// The hogs ran through every phase, so every phase is marked, and its
	// record names them: it holds every process with 1 % of the machine
	// or more, however much other work shares it.
	for _, p := range run.Meta.Phases {
		key := validity.PhaseKey(p)
		if !hasForeign(p.Validity, "") || !hasForeign(run.Meta.Validity, key) {
			t.Errorf("warn: phase %s: validity %s, want a foreign-CPU problem, also in the run's", key, js(p.Validity))
		}
		if p.Foreign == nil || !slices.ContainsFunc(p.Foreign.Top, func(q runstore.Process) bool { return q.Name == hogName }) {
			t.Errorf("warn: phase %s: other processes' CPU %s does not name %s", key, js(p.Foreign), hogName)
		}
	}

	// The same sampling feeds cpu.csv: the hogs' time is the rest of the
	// machine's, the load generator's (with Purify, in-process) the
	// harness's, and the analysis splits the wasm load phase between them.
	last := map[string]float64{}
	for _, c := range run.CPU {
		last[c.Group] = c.CPUS
	}
	if last["other"] <= 0 || last["harness"] <= 0 {
		t.Errorf("warn: cpu.csv ends at %v, want the hogs under other and the load under harness", last)
	}
	if sum, err := energy.Analyze(run); err != nil {
		t.Error(err)
	} else if p := sum.Find("wasm", "load"); p == nil || len(p.Energy) == 0 || p.Energy[0].CPUShares == nil || len(p.Energy[0].CPUShares.Groups) < 2 {
		t.Errorf("warn: the wasm load phase has no attribution by CPU share")
	}

	// Without the hogs. The tests of other packages, and anything else,
	// may share this machine, and they do land in the meter's figures: a
	// run here is valid only when nothing else ran. So what must hold
	// whatever the machine does is that no problem names the hogs (they
	// are gone) and that every problem is one other work explains: other
	// processes' CPU, or, in a phase where other processes were busy, a
	// meter saturated or late, or a load generator that fell behind. On a quiet machine there is none of those, and
	// then the run must be valid; on a busy one the test says so and does
	// not fail for it.
	stop()
	code, out, run = runColdstart(t, validity.Warn)
	if code != exitOK || run.Meta.Status != runstore.StatusComplete {
		t.Fatalf("without hogs: exit %d, status %s:\n%s", code, run.Meta.Status, out)
	}
	v := run.Meta.Validity
	if v == nil {
		t.Fatal("without hogs: no validity recorded")
	}
	busyPhases := map[string]bool{}
	for _, p := range v.Problems {
		if p.Check == validity.CheckForeignCPU {
			busyPhases[p.Phase] = true
		}
	}
	for _, p := range v.Problems {
		switch {
		case strings.Contains(p.Message, hogName):
			t.Errorf("without hogs: a problem names them: %+v", p)
		case p.Check == validity.CheckForeignCPU:
		case (p.Check == validity.CheckSaturation || p.Check == validity.CheckGaps || p.Check == validity.CheckRate) && busyPhases[p.Phase]:
		default:
			t.Errorf("without hogs: a problem that other work does not explain: %+v", p)
		}
	}
	if len(busyPhases) > 0 {
		t.Logf("the machine was not quiet (other processes used CPU in %d phase(s)), so the run is rightly invalid; the valid case was not seen", len(busyPhases))
	} else if !v.Valid {
		t.Errorf("on a quiet machine the run is invalid: %s", js(v))
	}
}

// hasForeign reports whether v has a foreign-CPU problem, in phase when
// not "".
func hasForeign(v *runstore.Validity, phase string) bool {
	if v == nil {
		return false
	}
	for _, p := range v.Problems {
		if p.Check == validity.CheckForeignCPU && (phase == "" || p.Phase == phase) {
			return true
		}
	}
	return false
}

func js(v any) string {
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b)
}
