package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/academemes/harness/harness/internal/report"
	"github.com/academemes/harness/harness/internal/runstore"
)

// cmdCompare is `harness compare [RUN_DIR...] [--runs DIR] [--reports DIR]`.
func cmdCompare(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	runsDir := fs.String("runs", "runs", "directory of run directories (used when no RUN_DIR is given)")
	reportsDir := fs.String("reports", "reports", "directory that receives compare-<runs>.html and index.html")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), `Usage: harness compare [RUN_DIR...] [--runs DIR] [--reports DIR]

Puts targets and runs side by side: each metric's ratio with its 95% interval,
Mann-Whitney U and Welch t p-values, and a plain verdict.

  no RUN_DIR   the targets of the latest run in --runs, and that run against
               the previous run of the same scenario
  one RUN_DIR  the targets of that run
  several      the targets of the last, and each run against the one before

Flags:`)
		fs.PrintDefaults()
	}
	dirs, err := parseInterspersed(fs, args)
	if err != nil {
		if err == flag.ErrHelp {
			return exitOK
		}
		return exitUsage
	}
	if len(dirs) == 0 {
		dirs, err = latestRuns(*runsDir)
		if err != nil {
			fmt.Fprintf(stderr, "harness compare: %v\n", err)
			return exitFail
		}
	}
	var runs []*report.Analysed
	for _, d := range dirs {
		a, err := report.LoadAnalysed(d)
		if err != nil {
			fmt.Fprintf(stderr, "harness compare: %v\n", err)
			return exitFail
		}
		runs = append(runs, a)
	}
	pairs := report.Pairs(runs)
	if len(pairs) == 0 {
		fmt.Fprintln(stderr, "harness compare: nothing to compare: the run has one target and no earlier run of its scenario shares a target")
		return exitFail
	}
	title := "Comparison of " + runs[len(runs)-1].Summary.Scenario
	c := report.Compare(title, pairs, 1)
	report.PrintComparison(stdout, c)
	if err := os.MkdirAll(*reportsDir, 0o755); err != nil {
		fmt.Fprintf(stderr, "harness compare: %v\n", err)
		return exitFail
	}
	path, err := report.WriteComparison(*reportsDir, c)
	if err != nil {
		fmt.Fprintf(stderr, "harness compare: %v\n", err)
		return exitFail
	}
	fmt.Fprintf(stdout, "\nReport: %s\n", path)
	return exitOK
}

// latestRuns is the latest run directory under runsDir and, before it,
// the previous run of the same scenario when there is one. Run ids begin
// with their start time, so names sort by time.
func latestRuns(runsDir string) ([]string, error) {
	ents, err := os.ReadDir(runsDir)
	if err != nil {
		return nil, fmt.Errorf("no runs to compare: %w", err)
	}
	var names []string
	for _, e := range ents {
		if e.IsDir() {
			if _, err := os.Stat(filepath.Join(runsDir, e.Name(), runstore.RunFile)); err == nil {
				names = append(names, e.Name())
			}
		}
	}
	if len(names) == 0 {
		return nil, errors.New("no runs to compare in " + runsDir)
	}
	sort.Strings(names)
	latest := names[len(names)-1]
	scen := scenarioOf(latest)
	for i := len(names) - 2; i >= 0; i-- {
		if scenarioOf(names[i]) == scen {
			return []string{filepath.Join(runsDir, names[i]), filepath.Join(runsDir, latest)}, nil
		}
	}
	return []string{filepath.Join(runsDir, latest)}, nil
}

// scenarioOf is the scenario part of a run id YYYYMMDD-HHMMSS-<scenario>.
func scenarioOf(id string) string {
	parts := strings.SplitN(id, "-", 3)
	if len(parts) < 3 {
		return id
	}
	return parts[2]
}
