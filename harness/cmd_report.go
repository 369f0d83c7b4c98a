package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/academemes/harness/harness/internal/report"
)

// cmdReport is `harness report RUN_DIR [--reports DIR] [--csv]`: analyse a
// run directory again, write its summary.json and its HTML report.
func cmdReport(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	reportsDir := fs.String("reports", "reports", "directory that receives <id>.html and index.html")
	asCSV := fs.Bool("csv", false, "also write the summary as RUN_DIR/summary.csv (one row per target, phase and meter) for pandas and R")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: harness report RUN_DIR [--reports DIR] [--csv]\n\nAnalyses a run directory again from its raw files: writes RUN_DIR/summary.json,\nREPORTS/<id>.html and REPORTS/index.html, and prints the summary table.\n\nFlags:")
		fs.PrintDefaults()
	}
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if len(pos) != 1 {
		fmt.Fprintln(stderr, "harness report: want one RUN_DIR")
		fs.Usage()
		return exitUsage
	}
	dir := pos[0]
	res, err := report.Generate(dir, *reportsDir)
	if err != nil {
		fmt.Fprintf(stderr, "harness report: %v\n", err)
		return exitFail
	}
	report.PrintSummary(stdout, res.Summary)
	if *asCSV {
		path := filepath.Join(dir, "summary.csv")
		f, err := os.Create(path)
		if err != nil {
			fmt.Fprintf(stderr, "harness report: %v\n", err)
			return exitFail
		}
		err = report.WriteCSV(f, res.Summary)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			fmt.Fprintf(stderr, "harness report: write %s: %v\n", path, err)
			return exitFail
		}
		fmt.Fprintf(stdout, "CSV: %s\n", path)
	}
	fmt.Fprintf(stdout, "Report: %s\n", res.HTMLPath)
	return exitOK
}
