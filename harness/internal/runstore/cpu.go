package runstore

import (
	"bufio"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"
)

// CPUFile holds the CPU time of each attribution group through the run:
// the input of the attribution model (energy split by CPU-time share), a
// model on top of the meters. Runs without it (checks: off, no /proc, runs
// written before it existed) have no attribution.
const CPUFile = "cpu.csv"

// CPUHeader is cpu.csv's header row (a contract).
var CPUHeader = []string{"t_ns", "group", "cpu_s"}

// CPU is one row of cpu.csv: a group's CPU time (user + system, all its
// processes) from the first sample of the run up to TNs. The groups of one
// sample share its TNs.
type CPU struct {
	TNs   int64
	Group string
	CPUS  float64 // seconds, cumulative
}

// CPUWriter appends to a run's cpu.csv. Safe for concurrent use.
type CPUWriter struct {
	mu   sync.Mutex
	f    *os.File
	b    *bufio.Writer
	row  []byte
	done bool
}

// CreateCPU creates cpu.csv in the run directory dir, with its header.
func CreateCPU(dir string) (*CPUWriter, error) {
	f, b, err := createCSV(filepath.Join(dir, CPUFile), CPUHeader)
	if err != nil {
		return nil, err
	}
	return &CPUWriter{f: f, b: b}, nil
}

// Add appends rows and hands them to the OS, so that a crash loses at most
// the sample being written (they come once a second or slower).
func (w *CPUWriter) Add(rows ...CPU) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return errClosed
	}
	for _, c := range rows {
		r := row{b: w.row[:0]}
		r.int(c.TNs)
		r.str(c.Group)
		r.float(c.CPUS)
		w.row = r.end()
		if _, err := w.b.Write(w.row); err != nil {
			return fmt.Errorf("runstore: %s: %w", CPUFile, err)
		}
	}
	return w.b.Flush()
}

// Close flushes, syncs and closes cpu.csv; safe to call more than once.
func (w *CPUWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return nil
	}
	w.done = true
	return errors.Join(w.b.Flush(), w.f.Sync(), w.f.Close())
}

// readCPU reads cpu.csv into run.CPU when the run has one.
func (run *Run) readCPU() error {
	if _, err := os.Stat(filepath.Join(run.Dir, CPUFile)); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	rows, _, err := readCSV(run, CPUFile, CPUHeader, parseCPU, func(c CPU, line int) bool {
		if c.CPUS < 0 || math.IsNaN(c.CPUS) || c.Group == "" {
			run.Warnings = append(run.Warnings, fmt.Sprintf("%s:%d: excluded (no group, or CPU time negative or NaN)", CPUFile, line))
			return false
		}
		return true
	})
	run.CPU = rows
	return err
}

func parseCPU(rec []string) (CPU, error) {
	var p parser
	c := CPU{TNs: p.int(rec[0], "t_ns"), Group: rec[1], CPUS: p.float(rec[2], "cpu_s")}
	return c, p.err
}
