package runner

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/academemes/harness/harness/internal/runstore"
	"github.com/academemes/harness/harness/internal/validity"
	"github.com/academemes/harness/meters"
)

// TestChecksPolicy runs a target that fails every request under each
// policy. Other processes' CPU is judged with a limit no machine reaches
// (101 %), so that what these tests see does not depend on what else this
// shared machine runs; the busy machine is the harness package's test.
func TestChecksPolicy(t *testing.T) {
	th := validity.Default()
	th.ForeignCPUShare = 1.01
	// The test meter is a goroutine ticking every 10 ms: on a loaded
	// machine it can stall for a third of a short phase, which says
	// nothing about the policy under test.
	th.GapShare = 1.01
	failing := []string{"targets=[{name: a, kind: fake, function: memes, options: {status: 500}}]"}
	cases := []struct {
		name     string
		sets     []string
		status   string
		err      bool
		phases   int // recorded
		invalid  []string
		recorded bool // validity and foreign CPU in run.json
	}{
		{name: "off records nothing", sets: append(slices.Clone(failing), "checks=off"), status: runstore.StatusComplete, phases: 8},
		{name: "warn completes and marks the run", sets: append(slices.Clone(failing), "checks=warn"), status: runstore.StatusComplete, phases: 8,
			invalid: []string{"a/load/0", "a/load/1"}, recorded: true},
		{name: "strict stops at the first invalid phase and fails", sets: append(slices.Clone(failing), "checks=strict"), status: runstore.StatusFailed, err: true, phases: 3,
			invalid: []string{"a/load/0"}, recorded: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sc := parse(t, scenarioYAML, c.sets...)
			var log strings.Builder
			res, err := Run(context.Background(), sc, Options{RunsDir: t.TempDir(), Log: &log, Thresholds: &th})
			if (err != nil) != c.err || (err != nil && !errors.Is(err, ErrInvalid)) {
				t.Fatalf("err = %v, want error %v\n%s", err, c.err, log.String())
			}
			if res.Status != c.status {
				t.Errorf("status %s, want %s", res.Status, c.status)
			}
			run, lerr := runstore.Load(res.Dir)
			if lerr != nil {
				t.Fatal(lerr)
			}
			if len(run.Meta.Phases) != c.phases {
				t.Errorf("%d phases recorded, want %d", len(run.Meta.Phases), c.phases)
			}
			if c.err && (run.Meta.Status != runstore.StatusFailed || !strings.Contains(run.Meta.Error, "requests failed")) {
				t.Errorf("run.json status %q error %q, want failed naming the failed requests", run.Meta.Status, run.Meta.Error)
			}
			if !c.recorded {
				if run.Meta.Validity != nil || res.Validity != nil {
					t.Errorf("validity recorded with checks off: %+v", run.Meta.Validity)
				}
				for _, p := range run.Meta.Phases {
					if p.Validity != nil || p.Foreign != nil {
						t.Errorf("phase %s: validity %+v foreign %+v recorded with checks off", validity.PhaseKey(p), p.Validity, p.Foreign)
					}
				}
				return
			}
			v := run.Meta.Validity
			if v == nil || v.Valid || res.Validity == nil || res.Validity.Valid {
				t.Fatalf("run validity %+v (result %+v), want invalid", v, res.Validity)
			}
			var got []string
			for _, p := range v.Problems {
				if p.Check == validity.CheckFailures {
					got = append(got, p.Phase)
				}
			}
			if !slices.Equal(got, c.invalid) {
				t.Errorf("failed-request problems in %q, want %q", got, c.invalid)
			}
			for _, p := range run.Meta.Phases {
				if p.Foreign == nil || p.Validity == nil {
					t.Errorf("phase %s: foreign %v validity %v, want both recorded", validity.PhaseKey(p), p.Foreign, p.Validity)
					continue
				}
				failed := slices.ContainsFunc(p.Validity.Problems, func(q runstore.Problem) bool { return q.Check == validity.CheckFailures })
				if failed != validity.IsLoad(p.Name) {
					t.Errorf("phase %s: failed-request problem %v, want it on load phases only", validity.PhaseKey(p), failed)
				}
			}
		})
	}
}

// quietProcfs is a /proc where nothing moves: one idle process and a
// machine that does no work, as a perfectly quiet machine would look.
func quietProcfs(t *testing.T) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "proc")
	files := map[string]string{
		"stat":     "cpu  100 0 100 10000 0 0 0 0 0 0\ncpu0 50 0 50 5000 0 0 0 0 0 0\ncpu1 50 0 50 5000 0 0 0 0 0 0\nbtime 1700000000\n",
		"1/stat":   "1 (init) S 0 1 1 0 -1 4194560 0 0 0 0 50 50 0 0 20 0 1 0 100 1000000 100 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n",
		"1/cgroup": "0::/\n",
		"loadavg":  "0.01 0.01 0.00 1/50 1\n",
		"meminfo":  "MemTotal: 1000000 kB\nSwapTotal: 0 kB\nSwapFree: 0 kB\n",
		"vmstat":   "pswpin 0\npswpout 0\n",
	}
	for name, data := range files {
		p := filepath.Join(root, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// On a quiet machine (a /proc where no other process runs) a healthy run
// is valid under the default thresholds, strict included, and records
// that no other process used CPU. Gaps are left out: the fake meter's
// 10 ms ticks run late on a loaded test machine, and gaps have their own
// tests in package validity.
func TestChecksQuietMachineValid(t *testing.T) {
	th := validity.Default()
	th.GapShare = 1
	sc := parse(t, scenarioYAML, "checks=strict", "targets=[{name: a, kind: fake, function: memes}]")
	var log strings.Builder
	res, err := Run(context.Background(), sc, Options{RunsDir: t.TempDir(), Log: &log, Thresholds: &th, Env: meters.Env{ProcfsRoot: quietProcfs(t)}})
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	run, err := runstore.Load(res.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != runstore.StatusComplete || run.Meta.Validity == nil || !run.Meta.Validity.Valid {
		t.Fatalf("status %s, validity %+v, want a complete valid run\n%s", res.Status, run.Meta.Validity, log.String())
	}
	for _, p := range run.Meta.Phases {
		if p.Foreign == nil || p.Foreign.CPUSeconds != 0 || p.Validity == nil || !p.Validity.Valid {
			t.Errorf("phase %s: foreign %+v validity %+v, want none and valid", validity.PhaseKey(p), p.Foreign, p.Validity)
		}
	}
}
