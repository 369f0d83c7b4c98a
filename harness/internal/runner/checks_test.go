package runner

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/academemes/harness/harness/internal/runstore"
	"github.com/academemes/harness/harness/internal/validity"
)

// TestChecksPolicy runs a target that fails every request under each
// policy. Other processes' CPU is judged with a limit no machine reaches
// (101 %), so that what these tests see does not depend on what else this
// shared machine runs; the busy machine is the harness package's test.
func TestChecksPolicy(t *testing.T) {
	th := validity.Default()
	th.ForeignCPUShare = 1.01
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
