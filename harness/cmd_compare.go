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

// cmdCompare is `harness compare [RUN_DIR...] [--runs DIR] [--reports DIR]
// [--json] [--force] [--hosts]`.
func cmdCompare(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	runsDir := fs.String("runs", "runs", "directory of run directories (used when no RUN_DIR is given)")
	reportsDir := fs.String("reports", "reports", "directory that receives compare-<runs>.html and index.html")
	asJSON := fs.Bool("json", false, "print the comparisons as JSON on stdout (warnings go to stderr)")
	force := fs.Bool("force", false, "compare sides that are not like for like anyway, keeping the warning in the output")
	hosts := fs.Bool("hosts", false, "the runs come from different hosts on purpose: state the difference instead of refusing")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), `Usage: harness compare [RUN_DIR...] [--runs DIR] [--reports DIR] [--json] [--force] [--hosts]

Puts targets and runs side by side, dynamic energy per request first, then
total energy per request and latency: each metric's ratio with its 95%
interval, Mann-Whitney U and Welch t p-values over the repetitions, and a
plain verdict.

Before any verdict it checks that the sides are like for like: same host,
same load and offered rate, same function and request, same meter, both
runs complete and valid. Where they differ it prints "not comparable: ..."
with each difference and gives no verdict (exit status 0). There is no
verdict with fewer than 3 repetitions a side, and no ratio whose
denominator is below the meter's resolution, not positive, or not told
from zero.

  no RUN_DIR   the targets of the latest run in --runs, and that run against
               the previous run of the same scenario; run directories that
               cannot be read or analysed are skipped with a warning
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
	warn := func(s string) { fmt.Fprintln(stderr, "harness compare: warning: "+s) }
	var runs []*report.Analysed
	var skipped []string
	if len(dirs) > 0 {
		for _, d := range dirs {
			a, err := report.LoadAnalysed(d)
			if err != nil {
				s := fmt.Sprintf("%s: %v", d, err)
				warn("skipped " + s)
				skipped = append(skipped, s)
				continue
			}
			runs = append(runs, a)
		}
	} else {
		var err error
		runs, skipped, err = latestRuns(*runsDir, warn)
		if err != nil {
			fmt.Fprintf(stderr, "harness compare: %v\n", err)
			return exitFail
		}
	}
	if len(runs) == 0 {
		fmt.Fprintln(stderr, "harness compare: nothing to compare: no run could be read")
		return exitFail
	}
	pairs := report.Pairs(runs)
	if len(pairs) == 0 {
		fmt.Fprintln(stderr, "harness compare: nothing to compare: the run has one target and no earlier run of its scenario shares a target")
		return exitFail
	}
	title := "Comparison of " + runs[len(runs)-1].Summary.Scenario
	c := report.Compare(title, pairs, report.Options{Force: *force, AcrossHosts: *hosts})
	c.Skipped = skipped
	if err := os.MkdirAll(*reportsDir, 0o755); err != nil {
		fmt.Fprintf(stderr, "harness compare: %v\n", err)
		return exitFail
	}
	path, err := report.WriteComparison(*reportsDir, c)
	if err != nil {
		fmt.Fprintf(stderr, "harness compare: %v\n", err)
		return exitFail
	}
	if *asJSON {
		if err := report.WriteComparisonJSON(stdout, c, path); err != nil {
			fmt.Fprintf(stderr, "harness compare: %v\n", err)
			return exitFail
		}
		return exitOK
	}
	report.PrintComparison(stdout, c)
	fmt.Fprintf(stdout, "\nReport: %s\n", path)
	return exitOK
}

// latestRuns is the latest run under runsDir that can be read and
// analysed and, before it, the previous such run of the same scenario
// when there is one. Run ids begin with their start time, so names sort
// by time. A directory that cannot be read or analysed (a run that
// failed before its first phase, a torn run.json) is skipped with a
// warning naming it, not a failure of the whole comparison.
func latestRuns(runsDir string, warn func(string)) ([]*report.Analysed, []string, error) {
	ents, err := os.ReadDir(runsDir)
	if err != nil {
		return nil, nil, fmt.Errorf("no runs to compare: %w", err)
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
		return nil, nil, errors.New("no runs to compare in " + runsDir)
	}
	sort.Strings(names)
	var out []*report.Analysed
	var skipped []string
	scen := ""
	for i := len(names) - 1; i >= 0 && len(out) < 2; i-- {
		if scen != "" && scenarioOf(names[i]) != scen {
			continue
		}
		dir := filepath.Join(runsDir, names[i])
		a, err := report.LoadAnalysed(dir)
		if err != nil {
			s := fmt.Sprintf("%s: %v", dir, err)
			warn("skipped " + s)
			skipped = append(skipped, s)
			continue
		}
		scen = scenarioOf(names[i])
		out = append([]*report.Analysed{a}, out...)
	}
	if len(out) == 0 {
		return nil, skipped, errors.New("no run in " + runsDir + " could be read")
	}
	return out, skipped, nil
}

// scenarioOf is the scenario part of a run id YYYYMMDD-HHMMSS-<scenario>.
func scenarioOf(id string) string {
	parts := strings.SplitN(id, "-", 3)
	if len(parts) < 3 {
		return id
	}
	return parts[2]
}
