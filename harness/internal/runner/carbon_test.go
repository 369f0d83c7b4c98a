package runner

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/academemes/harness/harness/internal/energy"
	"github.com/academemes/harness/harness/internal/runstore"
	"github.com/academemes/harness/harness/internal/scenario"
)

// TestRunRecordsCarbon: the scenario's carbon: block goes into run.json
// with every value's source, an intensity series cut to the points that
// cover the run, and the analysis finds carbon figures from it.
func TestRunRecordsCarbon(t *testing.T) {
	dir := t.TempDir()
	var csv strings.Builder
	csv.WriteString("timestamp,gco2e_per_kwh\n")
	hour := time.Now().UTC().Truncate(time.Hour)
	for h := -48; h <= 48; h++ {
		fmt.Fprintf(&csv, "%s,%d\n", hour.Add(time.Duration(h)*time.Hour).Format(time.RFC3339), 300+h)
	}
	if err := os.WriteFile(filepath.Join(dir, "grid.csv"), []byte(csv.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	sc := parseAt(t, filepath.Join(dir, "s.yaml"), scenarioYAML+"carbon: {intensity_file: grid.csv, embodied: {total_kg: 1000, lifetime_years: 4}}\n",
		"repeat=1", "checks=off", "carbon.pue=1.1")
	res, err := Run(context.Background(), sc, Options{RunsDir: t.TempDir(), Log: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	run, err := runstore.Load(res.Dir)
	if err != nil {
		t.Fatal(err)
	}
	c := run.Meta.Carbon
	if c == nil || c.IntensityFile == nil || c.Embodied == nil {
		t.Fatalf("run.json carbon = %+v", c)
	}
	f := c.IntensityFile
	if f.Rows != 97 || f.Path != "grid.csv" || !strings.HasPrefix(f.Source, filepath.Join(dir, "s.yaml")+":") {
		t.Errorf("intensity file %+v", f)
	}
	start, end := run.Meta.Started.UnixNano(), run.Meta.Ended.UnixNano()
	if n := len(f.Points); n == 0 || n > 2 || f.Points[0].TNs > start || f.EndNs < end {
		t.Errorf("%d points from %d until %d kept for the run [%d, %d], want the one or two that cover it", n, f.Points[0].TNs, f.EndNs, start, end)
	}
	if c.PUE.Value != 1.1 || c.PUE.Source != "--set carbon.pue=1.1" || !strings.HasPrefix(c.Embodied.Share.Source, "default") {
		t.Errorf("pue %+v, share %+v", c.PUE, c.Embodied.Share)
	}
	s, err := energy.Analyze(run)
	if err != nil {
		t.Fatal(err)
	}
	e := s.Find("a", runstore.PhaseLoad).Meter("fake")
	if e == nil || e.Carbon == nil || !e.Carbon.TotalSCIPerRequest.Value.OK() || !e.Carbon.EmbodiedCounted {
		t.Fatalf("carbon figures from the run: %+v", e)
	}
}

// parseAt parses a scenario as if read from path, so that files it names
// resolve beside it.
func parseAt(t *testing.T, path, yaml string, sets ...string) *scenario.Scenario {
	t.Helper()
	sc, err := scenario.Parse(path, []byte(yaml), sets)
	if err != nil {
		t.Fatal(err)
	}
	return sc
}
