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
	Requests []Request // in file order, less the rows excluded
	Samples  []Sample  // in file order, less the rows excluded
	// CPU is cpu.csv, the attribution model's input; nil when the run
	// has none.
	CPU []CPU
	// Warnings about the files themselves: a last row cut short by a
	// crash, rows excluded because they hold what no run writes (each
	// warning names them), a file that holds fewer rows than run.json
	// records written. The analysis carries them into its summary.
	Warnings []string
}

// ErrNotRun means a directory is not a run directory.
var ErrNotRun = errors.New("not a run directory")

// ErrNewerFormat means a run directory was written in a format newer than
// this harness reads.
var ErrNewerFormat = errors.New("run directory format is newer than this harness reads")

// Load reads a run directory. A last CSV row cut short (the process was
// killed while writing) is dropped with a warning; any other malformed row
// is an error that names the file and line. Rows that parse but hold what
// no run writes (a negative latency, watts that are infinite or negative,
// a meter or target run.json does not declare; see checks.go) are
// excluded with a warning that names their lines. A file that holds
// fewer rows than run.json records written, or a finished run's file
// that holds more, was damaged after the fact: Load warns and adds a
// CheckFiles problem to the run's validity, which the report and compare
// show as an invalid run.
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
	chk := newChecker(&run.Meta)
	var nReq, nSmp int64
	if run.Requests, nReq, err = readCSV(run, RequestsFile, RequestsHeader, parseRequest, chk.request); err != nil {
		return nil, err
	}
	if run.Samples, nSmp, err = readCSV(run, SamplesFile, SamplesHeader, parseSample, chk.sample); err != nil {
		return nil, err
	}
	if err := run.readCPU(); err != nil {
		return nil, err
	}
	run.Warnings = append(run.Warnings, chk.warnings()...)
	run.checkWritten(nReq, nSmp)
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
// parse, in file order, and keeps those that keep passes (given the row
// and its line in the file). It returns them and the number of complete
// rows the file holds, kept or not. A last row cut short is dropped with a
// warning on run.
func readCSV[T any](run *Run, name string, header []string, parse func([]string) (T, error), keep func(T, int) bool) ([]T, int64, error) {
	path := filepath.Join(run.Dir, name)
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	cr := csv.NewReader(bufio.NewReaderSize(f, 256<<10))
	cr.ReuseRecord = true
	cr.FieldsPerRecord = -1
	rec, err := cr.Read()
	if err != nil {
		return nil, 0, fmt.Errorf("%s: header: %w", path, err)
	}
	if !slices.Equal(rec, header) {
		return nil, 0, fmt.Errorf("%s: header is %v, want %v", path, rec, header)
	}
	var rows []T
	var n int64
	var pending error
	pendingLine := 0
	// The last row parsed is held until it is known to be whole: a row
	// cut short inside a number still parses ("7134705" cut to "71"), and
	// only the newline every row ends with tells it apart.
	var held T
	heldLine, haveHeld := 0, false
	take := func() {
		if haveHeld {
			n++
			if keep(held, heldLine) {
				rows = append(rows, held)
			}
			haveHeld = false
		}
	}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		line, _ := cr.FieldPos(0)
		if pending != nil {
			// A bad row followed by more rows is corruption, not a crash.
			return nil, 0, fmt.Errorf("%s:%d: %w", path, pendingLine, pending)
		}
		if err == nil && len(rec) != len(header) {
			err = fmt.Errorf("%d fields, want %d", len(rec), len(header))
		}
		if err == nil {
			var v T
			if v, err = parse(rec); err == nil {
				take()
				held, heldLine, haveHeld = v, line, true
			}
		}
		if err != nil {
			pending, pendingLine = err, line
		}
	}
	switch {
	case pending != nil:
		take()
		run.Warnings = append(run.Warnings, fmt.Sprintf("%s:%d: last row cut short and dropped (%v)", name, pendingLine, pending))
	case haveHeld && !endsWithNewline(f):
		run.Warnings = append(run.Warnings, fmt.Sprintf("%s:%d: last row cut short and dropped (no newline at its end)", name, heldLine))
	default:
		take()
	}
	return rows, n, nil
}

// endsWithNewline reports whether the file's last byte is a newline, as
// every row the writer writes ends with one.
func endsWithNewline(f *os.File) bool {
	fi, err := f.Stat()
	if err != nil || fi.Size() == 0 {
		return false
	}
	var b [1]byte
	_, err = f.ReadAt(b[:], fi.Size()-1)
	return err == nil && (b[0] == '\n' || b[0] == '\r')
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
