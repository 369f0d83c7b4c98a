package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/academemes/harness/harness/internal/energy"
	"github.com/academemes/harness/harness/internal/runstore"
	"github.com/academemes/harness/harness/internal/validity"
)

// TestAttributionDockerNode is the acceptance test of attribution by CPU
// share: a short docker-node run (one target warm, so that its container
// lives through the load; one cold, so that dockerd works creating
// containers) records cpu.csv with the run's containers and dockerd at
// non-zero CPU time, and its report splits the warm target's dynamic energy
// among the container, dockerd and the harness (the load generator's
// process), labelled as a model on top of the meter.
func TestAttributionDockerNode(t *testing.T) {
	if testing.Short() {
		t.Skip("runs docker-node targets")
	}
	engineOrSkip(t)
	runs, reports := t.TempDir(), t.TempDir()
	code, stdout, stderr := runCLI(t, "run", "../scenarios/coldstart.yaml", "--checks", validity.Warn,
		"--set", "repeat=1", "--set", "idle=2s", "--set", "warmup=1s", "--set", "cooldown=0s",
		"--set", "load.stages[0].duration=3s", "--set", "load.stages[0].rate=10", "--set", "meters=[estimate]",
		"--set", "targets=[{name: node-warm, kind: docker-node, function: memes, mode: warm}, {name: node-cold, kind: docker-node, function: memes, mode: cold}]",
		"--runs", runs, "--reports", reports)
	out := stdout + stderr
	if code != exitOK {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	dirs, _ := filepath.Glob(filepath.Join(runs, "*-coldstart"))
	if len(dirs) != 1 {
		t.Fatalf("run directories %v\n%s", dirs, out)
	}
	run, err := runstore.Load(dirs[0])
	if err != nil {
		t.Fatal(err)
	}
	last := map[string]float64{}
	for _, c := range run.CPU {
		last[c.Group] = c.CPUS
	}
	for _, g := range []string{"target", "dockerd", "harness"} {
		if last[g] <= 0 {
			t.Errorf("cpu.csv: group %s at %v CPU-s, want more than 0 (all: %v)", g, last[g], last)
		}
	}
	sum, err := energy.Analyze(run)
	if err != nil {
		t.Fatal(err)
	}
	p := sum.Find("node-warm", "load")
	if p == nil || len(p.Energy) == 0 || p.Energy[0].CPUShares == nil {
		t.Fatalf("summary: node-warm load has no attribution by CPU share")
	}
	sh := p.Energy[0].CPUShares
	t.Logf("%s", sh.Model)
	shares := map[string]energy.GroupShare{}
	for _, g := range sh.Groups {
		shares[g.Group] = g
		t.Logf("  %-10s %6.3f CPU-s  CPU share %5.1f%%  energy share %5.1f%%", g.Group, g.CPUS, 100*g.CPUShare, 100*g.Share)
	}
	if !strings.Contains(sh.Model, "model on top of") || !strings.Contains(sh.Model, "estimate") {
		t.Errorf("model %q: not labelled as a model on the estimate", sh.Model)
	}
	if shares["target"].CPUS <= 0 || shares["harness"].CPUS <= 0 {
		t.Errorf("node-warm load: container %v CPU-s, harness %v CPU-s; want both above 0", shares["target"].CPUS, shares["harness"].CPUS)
	}
	if _, ok := shares["dockerd"]; !ok {
		t.Errorf("node-warm load: no dockerd group in %v", sh.Groups)
	}
}
