package runstore

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// Writer writes one run directory while the run goes. Its methods are safe
// for concurrent use: meters append samples from their own goroutines while
// the load generator appends requests.
type Writer struct {
	dir string

	mu       sync.Mutex
	meta     Meta
	reqFile  *os.File
	reqBuf   *bufio.Writer
	smpFile  *os.File
	smpBuf   *bufio.Writer
	rowBuf   []byte
	lastSync time.Time
	closed   bool
	// written counts the rows handed to the files' buffers, synced
	// those of them known to be on disk; run.json records synced
	// (meta.Written) so that it never claims more than the files hold.
	written, synced Written
}

// Create makes dir (which must not exist yet), writes the scenario as run
// and an initial run.json, and opens the CSV files with their headers.
func Create(dir string, scenario []byte, meta Meta) (*Writer, error) {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return nil, fmt.Errorf("runstore: %w", err)
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, fmt.Errorf("runstore: create run directory: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, ScenarioFile), scenario, 0o644); err != nil {
		return nil, fmt.Errorf("runstore: %w", err)
	}
	w := &Writer{dir: dir, meta: meta}
	w.meta.Format = Format
	w.meta.Written = &Written{}
	if w.meta.Status == "" {
		w.meta.Status = StatusRunning
	}
	var err error
	if w.reqFile, w.reqBuf, err = createCSV(filepath.Join(dir, RequestsFile), RequestsHeader); err != nil {
		return nil, err
	}
	if w.smpFile, w.smpBuf, err = createCSV(filepath.Join(dir, SamplesFile), SamplesHeader); err != nil {
		w.reqFile.Close()
		return nil, err
	}
	if err := WriteJSON(filepath.Join(dir, RunFile), w.meta); err != nil {
		return nil, err
	}
	return w, nil
}

func createCSV(path string, header []string) (*os.File, *bufio.Writer, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, nil, fmt.Errorf("runstore: %w", err)
	}
	b := bufio.NewWriterSize(f, 64<<10)
	cw := csv.NewWriter(b)
	if err := cw.Write(header); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("runstore: %w", err)
	}
	cw.Flush()
	return f, b, cw.Error()
}

// Dir is the run directory.
func (w *Writer) Dir() string { return w.dir }

// AddRequest appends one row to requests.csv.
func (w *Writer) AddRequest(r Request) error {
	return w.addRow(w.reqBuf, &w.written.Requests, func(b []byte) []byte { return appendRequestRow(b, r) })
}

// AddSample appends one row to samples.csv.
func (w *Writer) AddSample(s Sample) error {
	return w.addRow(w.smpBuf, &w.written.Samples, func(b []byte) []byte { return AppendSampleRow(b, s) })
}

// addRow formats one CSV row with row into the writer's reused buffer,
// appends it to dst (set once at Create) and counts it in n.
func (w *Writer) addRow(dst *bufio.Writer, n *int64, row func([]byte) []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return errClosed
	}
	w.rowBuf = row(w.rowBuf[:0])
	_, err := dst.Write(w.rowBuf)
	if err == nil {
		*n++
	}
	w.maybeSync()
	return err
}

// AppendSampleRow appends s to b as one samples.csv row, newline
// included. It is the one writer of that format: a run's samples.csv and
// a standalone recording (`harness meters record --out`) are written by it.
func AppendSampleRow(b []byte, s Sample) []byte {
	r := row{b: b}
	r.str(s.Meter)
	r.int(int64(s.Channel))
	r.int(s.TNs)
	r.float(s.Watts)
	r.float(s.Joules)
	return r.end()
}

// appendRequestRow appends q to b as one requests.csv row, newline
// included.
func appendRequestRow(b []byte, q Request) []byte {
	r := row{b: b}
	r.str(q.Target)
	r.str(q.Phase)
	r.int(int64(q.Rep))
	r.int(q.Seq)
	r.int(q.StartNs)
	r.int(q.LatencyNs)
	r.int(int64(q.Status))
	r.int(q.BytesIn)
	r.int(q.BytesOut)
	r.bool(q.Cold)
	r.int(q.StartUpNs)
	r.str(q.Error)
	return r.end()
}

// row builds one CSV row in a byte slice: the fields in order, commas
// between them, a newline at the end. It formats by hand what
// encoding/csv would, without its allocations, at tens of thousands of
// samples a second.
type row struct {
	b []byte
	n int // fields so far
}

func (r *row) sep() {
	if r.n > 0 {
		r.b = append(r.b, ',')
	}
	r.n++
}

func (r *row) str(s string) { r.sep(); r.b = appendField(r.b, s) }

func (r *row) int(v int64) { r.sep(); r.b = strconv.AppendInt(r.b, v, 10) }

func (r *row) float(f float64) { r.sep(); r.b = appendFloat(r.b, f) }

// bool writes 1 or 0, which pandas, R and Load all read as a boolean.
func (r *row) bool(v bool) {
	r.sep()
	if v {
		r.b = append(r.b, '1')
	} else {
		r.b = append(r.b, '0')
	}
}

func (r *row) end() []byte { return append(r.b, '\n') }

var errClosed = errors.New("runstore: writer closed")

// maybeSync flushes the buffers to the OS at most once a second, so that a
// killed process loses at most a second of data. Called with w.mu held.
func (w *Writer) maybeSync() {
	if now := time.Now(); now.Sub(w.lastSync) >= time.Second {
		w.lastSync = now
		w.reqBuf.Flush()
		w.smpBuf.Flush()
	}
}

// Update changes run.json in memory through fn and writes it out
// atomically, flushing and syncing the CSV files first so that run.json
// never claims more than the files hold: neither phases nor rows
// (meta.Written, set here and not by fn).
func (w *Writer) Update(fn func(*Meta)) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if fn != nil {
		fn(&w.meta)
	}
	if !w.closed {
		if err := w.flushLocked(); err != nil {
			return err
		}
	}
	return w.writeMetaLocked()
}

// writeMetaLocked writes run.json with the rows last synced to disk.
func (w *Writer) writeMetaLocked() error {
	synced := w.synced
	w.meta.Written = &synced
	return WriteJSON(filepath.Join(w.dir, RunFile), w.meta)
}

// Meta returns a copy of run.json as it stands.
func (w *Writer) Meta() Meta {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.meta
}

// Flush writes buffered rows to the files and syncs them to disk.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.flushLocked()
}

func (w *Writer) flushLocked() error {
	if w.closed {
		return nil
	}
	w.lastSync = time.Now()
	err := errors.Join(w.reqBuf.Flush(), w.smpBuf.Flush(), w.reqFile.Sync(), w.smpFile.Sync())
	if err == nil {
		w.synced = w.written
	}
	return err
}

// Close flushes and closes the CSV files and writes run.json a last time.
// It is safe to call more than once.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	err := w.flushLocked()
	w.closed = true
	err = errors.Join(err, w.reqFile.Close(), w.smpFile.Close())
	return errors.Join(err, w.writeMetaLocked())
}

// WriteJSON writes v as indented JSON to path atomically (a temporary file
// renamed over the old one), so a reader never sees half a file.
func WriteJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("runstore: encode %s: %w", filepath.Base(path), err)
	}
	data = append(data, '\n')
	return WriteFileAtomic(path, data)
}

// WriteFileAtomic writes data to path through a temporary file in the same
// directory and a rename.
func WriteFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("runstore: %w", err)
	}
	_, err = tmp.Write(data)
	// CreateTemp makes the file 0600; results are for others to read too.
	err = errors.Join(err, tmp.Chmod(0o644), tmp.Sync(), tmp.Close())
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("runstore: write %s: %w", path, err)
	}
	return nil
}

// appendField appends s as one CSV field, quoted only when it must be.
func appendField(b []byte, s string) []byte {
	needs := false
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case ',', '"', '\n', '\r':
			needs = true
		}
	}
	if s != "" && (s[0] == ' ' || s[0] == '\t') {
		needs = true
	}
	if !needs {
		return append(b, s...)
	}
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' {
			b = append(b, '"')
		}
		b = append(b, s[i])
	}
	return append(b, '"')
}

// appendFloat writes NaN as "NaN", which pandas and R both read as a
// missing number, and other values in the shortest exact form.
func appendFloat(b []byte, f float64) []byte {
	if math.IsNaN(f) {
		return append(b, "NaN"...)
	}
	return strconv.AppendFloat(b, f, 'g', -1, 64)
}
