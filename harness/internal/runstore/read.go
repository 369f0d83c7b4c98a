package runstore

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
)

// Run is a run directory read back.
type Run struct {
	Dir      string
	Meta     Meta
	Scenario []byte
	Requests []Request // in file order
	Samples  []Sample  // in file order
	// Warnings about the files themselves, such as a last row cut short
	// by a crash.
	Warnings []string
}

// ErrNotRun means a directory is not a run directory.
var ErrNotRun = errors.New("not a run directory")

// ErrNewerFormat means a run directory was written in a format newer than
// this harness reads.
var ErrNewerFormat = errors.New("run directory format is newer than this harness reads")

// Load reads a run directory. A last CSV row cut short (the process was
// killed while writing) is dropped with a warning; any other malformed row
// is an error that names the file and line.
func Load(dir string) (*Run, error) {
	run := &Run{Dir: dir}
	data, err := os.ReadFile(filepath.Join(dir, RunFile))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s: %w (no %s)", dir, ErrNotRun, RunFile)
		}
		return nil, err
	}
	if err := json.Unmarshal(data, &run.Meta); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, RunFile), err)
	}
	switch f := run.Meta.Format; {
	case f == 0:
		run.Meta.Format = 1 // written before run.json said its format
	case f > Format:
		return nil, fmt.Errorf("%s: %w (format %d, this harness reads up to %d): use a newer harness", filepath.Join(dir, RunFile), ErrNewerFormat, f, Format)
	}
	run.Scenario, _ = os.ReadFile(filepath.Join(dir, ScenarioFile))
	if run.Requests, err = readCSV(run, RequestsFile, RequestsHeader, parseRequest); err != nil {
		return nil, err
	}
	if run.Samples, err = readCSV(run, SamplesFile, SamplesHeader, parseSample); err != nil {
		return nil, err
	}
	run.closeOpenPhases()
	return run, nil
}

// closeOpenPhases reads a run that run.json still calls running, because
// the harness was killed (or is still writing it), as interrupted: each
// phase left open ends at the last request or sample recorded after its
// start.
func (run *Run) closeOpenPhases() {
	if run.Meta.Status != StatusRunning {
		return
	}
	run.Meta.Status = StatusInterrupted
	run.Warnings = append(run.Warnings, "run.json still says running: the harness was killed before it finished this run (or is still writing it); read as interrupted at the last row recorded")
	for i := range run.Meta.Phases {
		p := &run.Meta.Phases[i]
		if p.EndNs != 0 {
			continue
		}
		p.EndNs, p.Interrupted = p.StartNs, true
		for _, r := range run.Requests {
			if r.StartNs >= p.StartNs {
				p.EndNs = max(p.EndNs, r.EndNs())
			}
		}
		for _, s := range run.Samples {
			if s.TNs >= p.StartNs {
				p.EndNs = max(p.EndNs, s.TNs)
			}
		}
		for j := range p.Stages {
			p.Stages[j].EndNs = min(p.Stages[j].EndNs, p.EndNs)
		}
	}
}

// readCSV reads the rows of the CSV file name of the run, each parsed by
// parse, in file order. A last row cut short is dropped with a warning on
// run.
func readCSV[T any](run *Run, name string, header []string, parse func([]string) (T, error)) ([]T, error) {
	path := filepath.Join(run.Dir, name)
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cr := csv.NewReader(bufio.NewReaderSize(f, 256<<10))
	cr.ReuseRecord = true
	cr.FieldsPerRecord = -1
	rec, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("%s: header: %w", path, err)
	}
	if !slices.Equal(rec, header) {
		return nil, fmt.Errorf("%s: header is %v, want %v", path, rec, header)
	}
	var rows []T
	var pending error
	pendingLine := 0
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		line, _ := cr.FieldPos(0)
		if pending != nil {
			// A bad row followed by more rows is corruption, not a crash.
			return nil, fmt.Errorf("%s:%d: %w", path, pendingLine, pending)
		}
		if err == nil && len(rec) != len(header) {
			err = fmt.Errorf("%d fields, want %d", len(rec), len(header))
		}
		if err == nil {
			var v T
			if v, err = parse(rec); err == nil {
				rows = append(rows, v)
			}
		}
		if err != nil {
			pending, pendingLine = err, line
		}
	}
	if pending != nil {
		run.Warnings = append(run.Warnings, fmt.Sprintf("%s:%d: last row cut short and dropped (%v)", name, pendingLine, pending))
	}
	return rows, nil
}

func parseRequest(rec []string) (Request, error) {
	if len(rec) != len(RequestsHeader) {
		return Request{}, fmt.Errorf("%d fields, want %d", len(rec), len(RequestsHeader))
	}
	var p parser
	r := Request{
		Target:    rec[0],
		Phase:     rec[1],
		Rep:       int(p.int(rec[2], "rep")),
		Seq:       p.int(rec[3], "seq"),
		StartNs:   p.int(rec[4], "start_ns"),
		LatencyNs: p.int(rec[5], "latency_ns"),
		Status:    int(p.int(rec[6], "status")),
		BytesIn:   p.int(rec[7], "bytes_in"),
		BytesOut:  p.int(rec[8], "bytes_out"),
		Cold:      rec[9] == "1" || rec[9] == "true",
		StartUpNs: p.int(rec[10], "start_up_ns"),
		Error:     rec[11],
	}
	return r, p.err
}

func parseSample(rec []string) (Sample, error) {
	if len(rec) != len(SamplesHeader) {
		return Sample{}, fmt.Errorf("%d fields, want %d", len(rec), len(SamplesHeader))
	}
	var p parser
	s := Sample{
		Meter:   rec[0],
		Channel: int(p.int(rec[1], "channel")),
		TNs:     p.int(rec[2], "t_ns"),
		Watts:   p.float(rec[3], "watts"),
		Joules:  p.float(rec[4], "joules"),
	}
	return s, p.err
}

// parser keeps the first error of a row's fields.
type parser struct{ err error }

func (p *parser) int(s, field string) int64 {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil && p.err == nil {
		p.err = fmt.Errorf("%s: %q is not an integer", field, s)
	}
	return v
}

func (p *parser) float(s, field string) float64 {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil && p.err == nil {
		p.err = fmt.Errorf("%s: %q is not a number", field, s)
	}
	return v
}
