package scenario

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// withCarbon is the good scenario with a carbon: block appended.
func withCarbon(block string) string { return good + block }

func TestCarbonBlock(t *testing.T) {
	dir := t.TempDir()
	grid := filepath.Join(dir, "grid.csv")
	if err := os.WriteFile(grid, []byte("datetime,gco2_per_kwh\n2026-12-04T10:00:00Z,300\n2026-12-04T11:00:00Z,420\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	scen := filepath.Join(dir, "s.yaml")
	lines := strings.Count(good, "\n")
	t.Run("constant from the file", func(t *testing.T) {
		sc, err := Parse(scen, []byte(withCarbon("carbon: {intensity: 350, embodied: {total_kg: 1200, lifetime_years: 4}, pue: 1.2}\n")), nil)
		if err != nil {
			t.Fatal(err)
		}
		c := sc.Carbon
		if c == nil || c.IntensityGPerKWh == nil || c.IntensityGPerKWh.Value != 350 || c.IntensityFile != nil {
			t.Fatalf("carbon %+v", c)
		}
		want := scen + ":" + strconv.Itoa(lines+1) + ":21"
		if c.IntensityGPerKWh.Source != want {
			t.Errorf("intensity source %q, want %q", c.IntensityGPerKWh.Source, want)
		}
		if c.PUE.Value != 1.2 || !strings.HasPrefix(c.PUE.Source, scen+":") {
			t.Errorf("pue %+v", c.PUE)
		}
		e := c.Embodied
		if e == nil || e.TotalKg.Value != 1200 || e.LifetimeYears.Value != 4 || e.Share.Value != 1 || !strings.HasPrefix(e.Share.Source, "default") {
			t.Errorf("embodied %+v", e)
		}
	})
	t.Run("constant from --set, PUE by default", func(t *testing.T) {
		sc, err := Parse(scen, []byte(good), []string{"carbon.intensity=400"})
		if err != nil {
			t.Fatal(err)
		}
		c := sc.Carbon
		if c == nil || c.IntensityGPerKWh.Value != 400 || c.IntensityGPerKWh.Source != "--set carbon.intensity=400" {
			t.Fatalf("carbon %+v", c)
		}
		if c.PUE.Value != 1 || !strings.HasPrefix(c.PUE.Source, "default") || c.Embodied != nil {
			t.Errorf("pue %+v, embodied %+v", c.PUE, c.Embodied)
		}
		if !strings.Contains(string(sc.Source), "intensity: 400") {
			t.Errorf("the scenario as run lacks the override:\n%s", sc.Source)
		}
	})
	t.Run("series from a file beside the scenario", func(t *testing.T) {
		sc, err := Parse(scen, []byte(withCarbon("carbon:\n  intensity_file: grid.csv\n")), nil)
		if err != nil {
			t.Fatal(err)
		}
		f := sc.Carbon.IntensityFile
		if f == nil || f.Path != "grid.csv" || f.Rows != 2 || len(f.Points) != 2 || len(f.SHA256) != 64 {
			t.Fatalf("intensity file %+v", f)
		}
		t10 := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC).UnixNano()
		if f.Points[0].TNs != t10 || f.Points[1].GPerKWh != 420 || f.EndNs != t10+2*int64(time.Hour) {
			t.Errorf("points %+v until %d", f.Points, f.EndNs)
		}
		if f.Source != scen+":"+strconv.Itoa(lines+2)+":19" {
			t.Errorf("source %q", f.Source)
		}
	})
	t.Run("no block, no carbon", func(t *testing.T) {
		sc, err := Parse(scen, []byte(good), nil)
		if err != nil || sc.Carbon != nil {
			t.Errorf("carbon %+v, %v", sc.Carbon, err)
		}
	})
}

func TestCarbonErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("bad.csv", "t,g\n2026-12-04T10:00:00Z,300\n2026-12-04T09:00:00Z,200\n2026-12-04T11:00:00Z,x\n")
	write("big.csv", strings.Repeat("#\n", 600000))
	scen := filepath.Join(dir, "s.yaml")
	tests := []struct {
		name  string
		block string
		sets  []string
		want  []string
	}{
		{"neither", "carbon: {pue: 1.1}\n", nil, []string{"carbon: give the grid's carbon intensity"}},
		{"both", "carbon: {intensity: 1, intensity_file: bad.csv}\n", nil, []string{"carbon.intensity_file: give intensity: (a constant) or intensity_file:"}},
		{"negative", "carbon: {intensity: -5}\n", nil, []string{"carbon.intensity: must be gCO2e/kWh from 0 to 5000"}},
		{"per MWh", "", []string{"carbon.intensity=350000"}, []string{"--set carbon.intensity=350000: carbon.intensity: must be gCO2e/kWh"}},
		{"not a number", "carbon: {intensity: lots}\n", nil, []string{"carbon.intensity: must be a number"}},
		{"PUE below 1", "carbon: {intensity: 1, pue: 0.9}\n", nil, []string{"carbon.pue: must be a power usage effectiveness from 1"}},
		{"unknown field", "carbon: {intensity: 1, grid: DE}\n", nil, []string{"carbon.grid: unknown field; allowed here: intensity, intensity_file, embodied, pue"}},
		{"embodied incomplete", "carbon: {intensity: 1, embodied: {total_kg: 1000}}\n", nil, []string{"carbon.embodied.lifetime_years: missing"}},
		{"share above 1", "carbon: {intensity: 1, embodied: {total_kg: 1000, lifetime_years: 4, share: 2}}\n", nil, []string{"carbon.embodied.share: must be the fraction"}},
		{"file missing", "carbon: {intensity_file: none.csv}\n", nil, []string{"carbon.intensity_file: cannot read " + filepath.Join(dir, "none.csv")}},
		{"file too large", "carbon: {intensity_file: big.csv}\n", nil, []string{"big.csv is larger than 1048576 bytes"}},
		{"bad rows, at their line and column in the file", "carbon: {intensity_file: bad.csv}\n", nil, []string{
			filepath.Join(dir, "bad.csv") + ":3:1: carbon.intensity_file: timestamp 2026-12-04T09:00:00Z is not after",
			filepath.Join(dir, "bad.csv") + ":4:22: carbon.intensity_file: \"x\" is not a number",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(scen, []byte(withCarbon(tc.block)), tc.sets)
			var es *Errors
			if !errors.As(err, &es) {
				t.Fatalf("error %v, want scenario errors", err)
			}
			if len(es.List) != len(tc.want) {
				t.Fatalf("%d errors, want %d:\n%v", len(es.List), len(tc.want), err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("errors\n%v\nwant one containing %q", err, w)
				}
			}
		})
	}
}
