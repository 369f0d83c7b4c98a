package carbon

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/academemes/harness/harness/internal/runstore"
)

// Config is what the carbon figures of a run rest on, as read back from
// run.json.
type Config struct {
	Intensity Intensity
	PUE       float64
	// Embodied is nil when the run gave none: M is then not counted.
	Embodied *Embodied
	// Record is run.json's record, sources and all.
	Record runstore.Carbon
}

// FromRecord reads run.json's carbon record; nil, nil when there is none.
func FromRecord(rec *runstore.Carbon) (*Config, error) {
	if rec == nil {
		return nil, nil
	}
	c := &Config{PUE: rec.PUE.Value, Record: *rec}
	if c.PUE == 0 {
		c.PUE = 1
	}
	switch {
	case rec.IntensityGPerKWh != nil && rec.IntensityFile != nil:
		return nil, errors.New("carbon: run.json gives both a constant intensity and a series")
	case rec.IntensityGPerKWh != nil:
		c.Intensity = Constant(rec.IntensityGPerKWh.Value)
	case rec.IntensityFile != nil:
		ps := make([]Point, len(rec.IntensityFile.Points))
		for i, p := range rec.IntensityFile.Points {
			ps[i] = Point{TNs: p.TNs, GPerKWh: p.GPerKWh}
		}
		in, err := Series(ps, rec.IntensityFile.EndNs)
		if err != nil {
			return nil, fmt.Errorf("carbon: run.json's intensity series from %s: %w", rec.IntensityFile.Path, err)
		}
		c.Intensity = in
	default:
		return nil, errors.New("carbon: run.json's carbon record gives no intensity")
	}
	if e := rec.Embodied; e != nil {
		c.Embodied = &Embodied{TotalKg: e.TotalKg.Value, LifetimeYears: e.LifetimeYears.Value, Share: e.Share.Value}
	}
	return c, nil
}

// Horizon is how far past a run's start the intensity points recorded
// at its start reach: run.json is rewritten at every phase, so a long
// file is not carried through the run, and no run lasts a week. The
// runner cuts them to the run's own span when it ends.
const Horizon = 7 * 24 * time.Hour

// Trimmed is a copy of rec whose series keeps only the points that cover
// [s, e): the one in force at s and those after it up to e. A constant is
// copied as it is; nil stays nil.
func Trimmed(rec *runstore.Carbon, s, e int64) *runstore.Carbon {
	if rec == nil {
		return nil
	}
	out := *rec
	if rec.IntensityFile == nil {
		return &out
	}
	f := *rec.IntensityFile
	out.IntensityFile = &f
	ps := f.Points
	i := sort.Search(len(ps), func(i int) bool { return ps[i].TNs > s }) - 1
	i = max(i, 0)
	j := sort.Search(len(ps), func(j int) bool { return ps[j].TNs >= e })
	if j < i {
		j = i
	}
	if j < len(ps) {
		f.EndNs = ps[j].TNs // the first point dropped ends the last one kept
	}
	f.Points = append([]runstore.IntensityPoint(nil), ps[i:j]...)
	return &out
}

// Describe says in a few words where the intensity comes from:
// "400 gCO2e/kWh (--set carbon.intensity=400)", "series from grid.csv
// (scenarios/x.yaml:14:19)".
func (c *Config) Describe() string {
	r := c.Record
	if r.IntensityGPerKWh != nil {
		return fmt.Sprintf("%s gCO2e/kWh, constant (%s)", strconv.FormatFloat(r.IntensityGPerKWh.Value, 'g', -1, 64), r.IntensityGPerKWh.Source)
	}
	if f := r.IntensityFile; f != nil {
		return fmt.Sprintf("time series from %s, %d rows, applied to each stretch of energy by its time (%s)", f.Path, f.Rows, f.Source)
	}
	return "none"
}
