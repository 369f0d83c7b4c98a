package report

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/academemes/harness/harness/internal/energy/synth"
	"github.com/academemes/harness/harness/internal/runstore"
)

// TestIndex: reports/index.html has one row per run, newest first, with
// its date, scenario, status, validity, meter and headline figures, read
// back from the pages themselves; a page from before pages carried their
// entry still gets a row from its name.
func TestIndex(t *testing.T) {
	dir := t.TempDir()
	reports := filepath.Join(dir, "reports")
	var ids []string
	for i, change := range []func(*runstore.Run){
		nil,
		func(r *runstore.Run) { r.Meta.Validity = invalidProblems() },
		func(r *runstore.Run) {
			r.Meta.Status = runstore.StatusInterrupted
			r.Meta.Validity = &runstore.Validity{Valid: true}
		},
	} {
		cfg := synth.Demo(uint64(i + 1))
		cfg.Start = time.Date(2026, 1, 2, 3+i, 0, 0, 0, time.UTC)
		if i == 2 {
			cfg.Name = "warm"
		}
		run, _ := synth.Generate(cfg)
		if change != nil {
			change(run)
		}
		rd := filepath.Join(dir, "runs", run.Meta.ID)
		if err := synth.WriteDir(rd, run); err != nil {
			t.Fatal(err)
		}
		if _, err := Generate(rd, reports); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, run.Meta.ID)
	}
	// A page written before index entries: no meta tag.
	if err := os.WriteFile(filepath.Join(reports, "20250101-120000-old.html"), []byte("<html><body>old</body></html>"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteIndex(reports); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(reports, "index.html"))
	if err != nil {
		t.Fatal(err)
	}
	rows := rowsOf(t, string(data), "runs")
	if len(rows) != 4 {
		t.Fatalf("%d rows, want 4", len(rows))
	}
	want := []struct {
		id     string
		fields []string
	}{
		{ids[2], []string{"2026-01-02 05:00", ">warm<", "<b>interrupted</b>", `<span class="ok">valid</span>`, "rapl", "wasm: <b>", "docker-node: <b>", "µWh"}},
		{ids[1], []string{"2026-01-02 04:00", ">coldstart<", "complete", "INVALID", "2 problem(s)", `<span class="bad">invalid</span>`, "failed"}},
		{ids[0], []string{"2026-01-02 03:00", "complete", "not recorded", "wasm: <b>"}},
		{"20250101-120000-old", []string{"2025-01-01 12:00", ">old<"}},
	}
	for i, w := range want {
		if !strings.Contains(rows[i], ">"+w.id+"<") {
			t.Errorf("row %d is not %s (newest first):\n%s", i, w.id, rows[i])
			continue
		}
		for _, f := range w.fields {
			if !strings.Contains(rows[i], f) {
				t.Errorf("row of %s lacks %q:\n%s", w.id, f, rows[i])
			}
		}
	}
	// The headline is the dynamic energy per request with its interval.
	if !regexp.MustCompile(`wasm: <b>[\d.]+ mJ \[[\d.]+, [\d.]+\]</b>`).MatchString(rows[2]) {
		t.Errorf("headline:\n%s", rows[2])
	}
}
