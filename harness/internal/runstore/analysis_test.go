package runstore_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/academemes/harness/harness/internal/energy"
	"github.com/academemes/harness/harness/internal/runstore"
)

// TestDamagedRunReachesAnalysis: a run whose requests.csv lost half of a
// phase's rows after the run does not give its (doubled) joules per
// request silently: the analysis carries the damage among its warnings,
// and run.json's validity, which the report and compare show, says the
// run is invalid.
func TestDamagedRunReachesAnalysis(t *testing.T) {
	dir := runstore.Rewrite(t, "testdata/format1")
	path := filepath.Join(dir, runstore.RequestsFile)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(data), "\n")
	// Lines 152-251 are wasm-cold's load phase: keep its first half.
	if err := os.WriteFile(path, []byte(strings.Join(lines[:201], "")), 0o644); err != nil {
		t.Fatal(err)
	}
	run, err := runstore.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := energy.Analyze(run)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, w := range sum.Warnings {
		found = found || strings.HasPrefix(w, "requests.csv is damaged: it holds 200 rows, but run.json records 250 written")
	}
	if !found {
		t.Errorf("summary warnings %q lack the damage", sum.Warnings)
	}
	if v := run.Meta.Validity; v == nil || v.Valid {
		t.Errorf("validity %+v, want invalid", v)
	}
}
