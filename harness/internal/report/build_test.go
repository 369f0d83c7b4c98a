package report

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/academemes/harness/harness/internal/runstore"
)

// TestReportNamesBuild: the Targets section names each target's build and
// language from run.json, and says nothing of them for a run that did not
// record them.
func TestReportNamesBuild(t *testing.T) {
	dir := t.TempDir()
	rd := demoRun(t, dir, 1, nil)
	reports := filepath.Join(dir, "reports")
	res, err := Generate(rd, reports)
	if err != nil {
		t.Fatal(err)
	}
	old, _ := os.ReadFile(res.HTMLPath)
	if strings.Contains(string(old), ", build ") {
		t.Errorf("a run without builds recorded names one")
	}
	run, err := runstore.Load(rd)
	if err != nil {
		t.Fatal(err)
	}
	run.Meta.Targets[0].Variant, run.Meta.Targets[0].Language = "rust", "Rust"
	run.Meta.Targets[1].Variant, run.Meta.Targets[1].Language = "node", "JavaScript"
	if err := runstore.WriteJSON(filepath.Join(rd, runstore.RunFile), run.Meta); err != nil {
		t.Fatal(err)
	}
	if res, err = Generate(rd, reports); err != nil {
		t.Fatal(err)
	}
	html, _ := os.ReadFile(res.HTMLPath)
	for _, want := range []string{", build rust (Rust)</small>", ", build node (JavaScript)</small>"} {
		if !strings.Contains(string(html), want) {
			t.Errorf("report lacks %q", want)
		}
	}
}
