package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/term"

	"github.com/academemes/harness/harness/internal/energy"
	"github.com/academemes/harness/harness/internal/report"
	"github.com/academemes/harness/harness/internal/runner"
	"github.com/academemes/harness/harness/internal/runstore"
	"github.com/academemes/harness/harness/internal/scenario"
	"github.com/academemes/harness/harness/internal/validity"
	"github.com/academemes/harness/meters"
)

// setFlags collects repeated --set PATH=VALUE flags.
type setFlags []string

func (s *setFlags) String() string     { return strings.Join(*s, " ") }
func (s *setFlags) Set(v string) error { *s = append(*s, v); return nil }

func cmdRun(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("harness run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var sets setFlags
	fs.Var(&sets, "set", "override a scenario field: PATH=VALUE, e.g. load.stages[0].duration=3s (repeatable)")
	runsDir := fs.String("runs", "runs", "directory that receives runs/<id>/")
	reportsDir := fs.String("reports", "reports", "directory that receives the HTML reports")
	functionsDir := fs.String("functions", "", "directory of functions to serve (default: the copies built into harness)")
	sysfs := fs.String("path.sysfs", "/sys", "sysfs root, for meters and host facts (fixtures in tests)")
	procfs := fs.String("path.procfs", "/proc", "procfs root, for meters and host facts")
	check := fs.Bool("check", false, "only read and validate the scenario, then exit")
	checks := fs.String("checks", "", "validity policy, overriding the scenario's checks: strict (refuse a busy machine, fail an invalid run), warn (mark it), off")
	metricsListen := fs.String("metrics-listen", "", "serve a live view of the run in the Prometheus format at http://`ADDR`/metrics while it goes (HOST:PORT, or PORT on 127.0.0.1)")
	metricsRemote := fs.Bool("metrics-allow-remote", false, "let --metrics-listen serve beyond loopback")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: harness run SCENARIO [flags]\n\nRuns a scenario and writes runs/<id>/ and reports/<id>.html.\n\nFlags:")
		fs.PrintDefaults()
	}
	pos, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		return exitUsage
	}
	if len(pos) != 1 {
		fmt.Fprintln(stderr, "harness run: give exactly one scenario file")
		fs.Usage()
		return exitUsage
	}
	if *checks != "" {
		if !slices.Contains(validity.Policies, *checks) {
			fmt.Fprintf(stderr, "harness run: --checks %q: allowed: strict, warn, off\n", *checks)
			return exitUsage
		}
		sets = append(sets, "checks="+*checks)
	}
	metricsAddr := ""
	if *metricsListen != "" {
		if metricsAddr, err = runner.MetricsAddr(*metricsListen, *metricsRemote); err != nil {
			fmt.Fprintf(stderr, "harness run: %v\n", err)
			return exitUsage
		}
	}
	sc, err := scenario.ReadFile(pos[0], sets)
	if err != nil {
		fmt.Fprintf(stderr, "harness run: the scenario has problems:\n%v\n", err)
		return exitUsage
	}
	if *check {
		fmt.Fprintf(stdout, "%s: ok (%d targets, %d meters, repeat %d)\n", pos[0], len(sc.Targets), len(sc.Meters), sc.Repeat)
		return exitOK
	}

	// The first Ctrl-C (or SIGTERM) cancels the run, which then stops the
	// load, keeps what was recorded and removes what it created; after it
	// the default handling is back, so a second Ctrl-C ends the process.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	finished := make(chan struct{})
	defer close(finished)
	go func() {
		select {
		case <-sigs:
			signal.Stop(sigs)
			fmt.Fprintln(stderr, "\ninterrupted: stopping load, keeping what was recorded, removing what the run created (Ctrl-C again to abort)")
			cancel()
		case <-finished:
		}
	}()
	var observer runner.Observer
	if metricsAddr != "" {
		m, stop, err := serveMetrics(metricsAddr, stderr)
		if err != nil {
			fmt.Fprintf(stderr, "harness run: %v\n", err)
			return exitFail
		}
		defer stop()
		observer = m
	}
	res, err := runner.Run(ctx, sc, runner.Options{
		RunsDir:      *runsDir,
		FunctionsDir: *functionsDir,
		Version:      version(),
		Env:          meters.Env{SysfsRoot: *sysfs, ProcfsRoot: *procfs},
		Log:          stderr,
		Terminal:     isTerminal(stderr),
		Observer:     observer,
	})
	if res == nil {
		fmt.Fprintf(stderr, "harness run: %v\n", err)
		if errors.Is(err, runner.ErrScenario) {
			return exitUsage // and no run directory was made
		}
		return exitFail
	}
	if errors.Is(err, runner.ErrNoTargets) {
		// Nothing was measured: there is no report to make, and `harness
		// report` on the directory would fail the same way.
		fmt.Fprintln(stderr, "harness run: no target could be started, so nothing was measured and there is no report:")
		for _, s := range res.Skipped {
			fmt.Fprintf(stderr, "  %s\n", s)
		}
		fmt.Fprintf(stderr, "%s/%s records the run as %s, with these reasons.\n", res.Dir, runstore.RunFile, res.Status)
		return exitFail
	}
	code := exitOK
	if err != nil {
		fmt.Fprintf(stderr, "harness run: %v\n", err)
		code = exitFail
	}
	if res.Status == runstore.StatusInterrupted {
		code = exitFail
	}
	if res.Refused {
		fmt.Fprintf(stdout, "run:    %s (%s: refused to start on a busy machine; no report)\n", res.Dir, res.Status)
		printValidity(stdout, res.Validity)
		return code
	}
	rep, rerr := report.Generate(res.Dir, *reportsDir)
	switch {
	case errors.Is(rerr, energy.ErrNoData):
		// The run ended before its first phase (a meter or the plan
		// failed): the error above says why, and a retry would not help.
		fmt.Fprintf(stderr, "harness run: the run recorded no phase, so there is no report; %s/%s records how it ended\n", res.Dir, runstore.RunFile)
		return exitFail
	case rerr != nil:
		// rerr says "report: ..." itself.
		fmt.Fprintf(stderr, "harness run: %v (the raw data is in %s; retry with harness report %s)\n", rerr, res.Dir, res.Dir)
		return exitFail
	}
	report.PrintSummary(stdout, rep.Summary)
	for _, s := range res.Skipped {
		fmt.Fprintf(stdout, "skipped %s\n", s)
	}
	// The summary above already ends with the validity problems.
	fmt.Fprintf(stdout, "run:    %s (%s)\nreport: %s\n", res.Dir, res.Status, rep.HTMLPath)
	return code
}

// printValidity ends the console output with the run's validity problems,
// so that an invalid run cannot be read as a valid one.
func printValidity(w io.Writer, v *runstore.Validity) {
	if v == nil || v.Valid {
		return
	}
	fmt.Fprintf(w, "\nINVALID: %d validity problem(s); the figures above cannot be trusted as they are:\n", len(v.Problems))
	for _, p := range v.Problems {
		where := p.Phase
		if where == "" {
			where = "run"
		}
		fmt.Fprintf(w, "  %s: %s: %s\n", where, p.Check, p.Message)
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// serveMetrics serves the run's live view at http://addr/metrics until
// stop is called. Each scrape costs the harness a little CPU, which lands
// in the figures like any other work of the harness: scrape every few
// seconds, not faster.
func serveMetrics(addr string, log io.Writer) (*runner.Metrics, func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("--metrics-listen: %w", err)
	}
	m := runner.NewMetrics()
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	fmt.Fprintf(log, "live metrics: http://%s/metrics\n", ln.Addr())
	return m, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}, nil
}
