package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/academemes/harness/targets"
	"github.com/academemes/harness/targets/dockernode"
	"github.com/academemes/harness/targets/openfaas"
)

// cmdClean removes the containers and images that earlier runs left in the
// Docker Engine: everything carrying the harness's label
// (io.academemes.harness=1), or one run's with --run.
func cmdClean(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("harness clean", flag.ContinueOnError)
	fs.SetOutput(stderr)
	runID := fs.String("run", "", "remove only what run `ID` created (label "+dockernode.LabelRun+")")
	dry := fs.Bool("dry-run", false, "list what would be removed, remove nothing")
	timeout := fs.Duration("timeout", 2*time.Minute, "give up after this long")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: harness clean [--run ID] [--dry-run]")
		fmt.Fprintln(stderr, "\nRemoves every container, then every image, that carries the harness's label "+
			dockernode.LabelHarness+"=1 in the Docker Engine named by DOCKER_HOST (the local socket by default):")
		fmt.Fprintln(stderr, "what a crashed or killed run left behind, and the cached function images;")
		fmt.Fprintln(stderr, "and the harness's functions on the OpenFaaS gateway named by OPENFAAS_URL, if one is set.")
		fmt.Fprintln(stderr, "Careful: without --run it also removes the containers of a run still going.\n\nFlags:")
		fs.PrintDefaults()
	}
	if code, ok := parseNoArgs(fs, args, stderr); !ok {
		return code
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	res, err := dockernode.Clean(ctx, dockernode.CleanOptions{RunID: *runID, DryRun: *dry})
	verb := "removed"
	if *dry {
		verb = "would remove"
	}
	for _, c := range res.Containers {
		fmt.Fprintf(stdout, "%s container %.12s %s (run %s, target %s)\n", verb, c.ID, c.Name, orDash(c.Run), orDash(c.Target))
	}
	for _, im := range res.Images {
		fmt.Fprintf(stdout, "%s image %.19s %s (run %s)\n", verb, im.ID, im.Name, orDash(im.Run))
	}
	// Functions left on a configured OpenFaaS gateway (OPENFAAS_URL); with
	// none configured this does nothing.
	if !*dry {
		fns, ferr := openfaas.Clean(ctx, *runID)
		for _, f := range fns {
			fmt.Fprintf(stdout, "removed OpenFaaS function %s\n", f)
		}
		if ferr != nil {
			fmt.Fprintf(stderr, "harness clean: OpenFaaS: %v\n", ferr)
			if err == nil {
				return exitFail
			}
		}
	}
	if err != nil {
		if errors.Is(err, targets.ErrUnavailable) {
			fmt.Fprintf(stderr, "harness clean: nothing cleaned: %v\n", err)
		} else {
			fmt.Fprintf(stderr, "harness clean: %v\n", err)
		}
		return exitFail
	}
	fmt.Fprintf(stdout, "%s %d containers and %d images\n", verb, len(res.Containers), len(res.Images))
	return exitOK
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
