package scenario

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"

	"go.yaml.in/yaml/v3"

	"github.com/academemes/harness/harness/internal/carbon"
	"github.com/academemes/harness/harness/internal/runstore"
)

// The carbon: block. No default stands in for it: a grid's intensity
// differs tenfold between countries and hour by hour, so a run without
// it has no carbon figures rather than a made-up one.
//
//	carbon:
//	  intensity: 350            # gCO2e/kWh, or
//	  intensity_file: grid.csv  # timestamp,gCO2e/kWh rows, relative to the scenario
//	  embodied: {total_kg: 1200, lifetime_years: 4, share: 1}
//	  pue: 1.0

// Defaults and bounds of the carbon: block.
const (
	// DefaultPUE counts no facility overhead: the meter's energy is the
	// energy.
	DefaultPUE = 1.0
	// DefaultShare charges the run the whole machine's embodied
	// emissions for its time: a benchmark has the machine to itself.
	DefaultShare = 1.0
	maxPUE       = 3.0
	maxTotalKg   = 1e6
	maxLifetime  = 30.0
)

// carbonFields are the fields of the carbon: block.
var carbonFields = []string{"intensity", "intensity_file", "embodied", "pue"}

// source is where a node came from: the --set that gave it, or its
// file:line:col.
func (p *parser) source(n *yaml.Node) string {
	if o, ok := p.origin[n]; ok {
		return o
	}
	return fmt.Sprintf("%s:%d:%d", p.file, n.Line, n.Column)
}

// number parses a finite number.
func (p *parser) number(n *yaml.Node, path string) (float64, bool) {
	if n == nil {
		return 0, false
	}
	f, err := strconv.ParseFloat(n.Value, 64)
	if n.Kind != yaml.ScalarNode || err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		p.add(n, path, "must be a number, got %q", n.Value)
		return 0, false
	}
	return f, true
}

// sourced is a number with its source, checked to lie in [lo, hi]; why
// says what a value outside means.
func (p *parser) sourced(n *yaml.Node, path string, lo, hi float64, why string) (runstore.Sourced, bool) {
	v, ok := p.number(n, path)
	if !ok {
		return runstore.Sourced{}, false
	}
	if v < lo || v > hi {
		p.add(n, path, "%s, got %s", why, strconv.FormatFloat(v, 'g', -1, 64))
		return runstore.Sourced{}, false
	}
	return runstore.Sourced{Value: v, Source: p.source(n)}, true
}

// carbon decodes the carbon: block into run.json's record, every value
// with its source; nil when the scenario has none. An intensity file is
// read here, relative to the scenario, so that `harness run --check`
// reports its problems at their line and column.
func (p *parser) carbon(n *yaml.Node, path string) *runstore.Carbon {
	if n == nil {
		return nil
	}
	f := p.fields(n, path, carbonFields...)
	c := &runstore.Carbon{PUE: runstore.Sourced{Value: DefaultPUE, Source: "default: no facility overhead counted"}}
	in, file := f["intensity"], f["intensity_file"]
	switch {
	case in != nil && file != nil:
		p.add(file, path+".intensity_file", "give intensity: (a constant) or intensity_file: (a time series), not both")
	case in == nil && file == nil:
		p.add(n, path, "give the grid's carbon intensity: intensity: G (gCO2e/kWh) or intensity_file: FILE.csv (rows of timestamp,gCO2e/kWh)")
	case in != nil:
		if v, ok := p.sourced(in, path+".intensity", 0, carbon.MaxGPerKWh, fmt.Sprintf("must be gCO2e/kWh from 0 to %d (coal-fired generation is about 1000; is it per MWh?)", carbon.MaxGPerKWh)); ok {
			c.IntensityGPerKWh = &v
		}
	default:
		c.IntensityFile = p.intensityFile(file, path+".intensity_file")
	}
	if e := f["embodied"]; e != nil {
		c.Embodied = p.embodied(e, path+".embodied")
	}
	if n := f["pue"]; n != nil {
		if v, ok := p.sourced(n, path+".pue", 1, maxPUE, fmt.Sprintf("must be a power usage effectiveness from 1 (no overhead) to %g (surveys put the average data centre near 1.6)", maxPUE)); ok {
			c.PUE = v
		}
	}
	return c
}

// embodied decodes carbon.embodied.
func (p *parser) embodied(n *yaml.Node, path string) *runstore.Embodied {
	f := p.fields(n, path, "total_kg", "lifetime_years", "share")
	e := &runstore.Embodied{Share: runstore.Sourced{Value: DefaultShare, Source: "default: the whole machine is reserved for the run"}}
	ok := true
	for _, k := range []string{"total_kg", "lifetime_years"} {
		if f[k] == nil && n.Kind == yaml.MappingNode {
			p.add(n, path+"."+k, "missing: embodied needs total_kg (kgCO2e over the hardware's life) and lifetime_years")
			ok = false
		}
	}
	var good bool
	if f["total_kg"] != nil {
		e.TotalKg, good = p.sourced(f["total_kg"], path+".total_kg", math.SmallestNonzeroFloat64, maxTotalKg, fmt.Sprintf("must be kgCO2e above 0 and at most %g (a server is of the order of 1000; is it grams?)", maxTotalKg))
		ok = ok && good
	}
	if f["lifetime_years"] != nil {
		e.LifetimeYears, good = p.sourced(f["lifetime_years"], path+".lifetime_years", math.SmallestNonzeroFloat64, maxLifetime, fmt.Sprintf("must be years above 0 and at most %g", maxLifetime))
		ok = ok && good
	}
	if f["share"] != nil {
		e.Share, good = p.sourced(f["share"], path+".share", math.SmallestNonzeroFloat64, 1, "must be the fraction of the hardware reserved, above 0 and at most 1")
		ok = ok && good
	}
	if !ok {
		return nil
	}
	return e
}

// intensityFile reads and checks an intensity series, each problem at its
// line and column in the file.
func (p *parser) intensityFile(n *yaml.Node, path string) *runstore.IntensityFile {
	name := p.str(n, path)
	if name == "" {
		p.add(n, path, "must name a CSV file of timestamp,gCO2e/kWh rows")
		return nil
	}
	file := name
	if !filepath.IsAbs(file) {
		file = filepath.Join(filepath.Dir(p.file), file)
	}
	data, err := readBounded(file, carbon.MaxFileBytes)
	if err != nil {
		p.add(n, path, "%v", err)
		return nil
	}
	parsed, err := carbon.ParseCSV(bytes.NewReader(data))
	var pe *carbon.ParseErrors
	switch {
	case errors.As(err, &pe):
		for _, e := range pe.List {
			p.errs = append(p.errs, Error{File: file, Line: e.Line, Col: e.Col, Path: path, Msg: e.Msg})
		}
		if pe.More > 0 {
			p.errs = append(p.errs, Error{File: file, Path: path, Msg: fmt.Sprintf("and %d more problem(s)", pe.More)})
		}
		return nil
	case err != nil:
		p.add(n, path, "%v", err)
		return nil
	}
	sum := sha256.Sum256(data)
	rec := &runstore.IntensityFile{Path: name, Source: p.source(n), SHA256: hex.EncodeToString(sum[:]), Rows: parsed.Rows, EndNs: parsed.EndNs}
	for _, pt := range parsed.Points {
		rec.Points = append(rec.Points, runstore.IntensityPoint{TNs: pt.TNs, GPerKWh: pt.GPerKWh})
	}
	return rec
}

// readBounded reads a file of at most limit bytes; a larger one is an
// error, found without reading it all.
func readBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %v", path, unwrapPath(err))
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %v", path, unwrapPath(err))
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes: cut it to the time of the run (a day around it is plenty)", path, limit)
	}
	return data, nil
}
