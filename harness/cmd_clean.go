package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/academemes/harness/targets"
)

// cmdClean removes what earlier runs left behind (everything, or one run's
// with --run): it asks every registered target kind that leaves things on
// a platform (Kind.Clean), so that a new kind needs no change here.
func cmdClean(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("harness clean", flag.ContinueOnError)
	fs.SetOutput(stderr)
	runID := fs.String("run", "", "remove only what run `ID` created")
	dry := fs.Bool("dry-run", false, "list what would be removed, remove nothing")
	timeout := fs.Duration("timeout", 2*time.Minute, "give up after this long")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: harness clean [--run ID] [--dry-run]")
		fmt.Fprintln(stderr, "\nRemoves what crashed or killed runs left behind, and the cached function images, for each kind of target:")
		for _, k := range targets.Kinds() {
			if k.Clean != nil {
				fmt.Fprintf(stderr, "  %s: %s\n", k.Name, k.CleanDoc)
			}
		}
		fmt.Fprintln(stderr, "Careful: without --run it also removes what a run still going created.\n\nFlags:")
		fs.PrintDefaults()
	}
	if code, ok := parseNoArgs(fs, args, stderr); !ok {
		return code
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	verb := "removed"
	if *dry {
		verb = "would remove"
	}
	var tally tally
	code := exitOK
	for _, k := range targets.Kinds() {
		if k.Clean == nil {
			continue
		}
		found, err := k.Clean(ctx, targets.CleanOptions{RunID: *runID, DryRun: *dry})
		for _, l := range found {
			name := l.Name
			if l.ID != "" && l.ID != l.Name {
				name = strings.TrimSpace(shortID(l.ID) + " " + l.Name)
			}
			fmt.Fprintf(stdout, "%s %s %s (run %s, target %s)\n", verb, l.What, name, orDash(l.Run), orDash(l.Target))
			tally.add(l.What)
		}
		if err != nil {
			code = exitFail
			if errors.Is(err, targets.ErrUnavailable) {
				fmt.Fprintf(stderr, "harness clean: %s: nothing cleaned: %v\n", k.Name, err)
			} else {
				fmt.Fprintf(stderr, "harness clean: %s: %v\n", k.Name, err)
			}
		}
	}
	fmt.Fprintf(stdout, "%s %s\n", verb, tally.String())
	return code
}

// shortID shortens a container or image id as docker ps and docker images
// show it.
func shortID(id string) string {
	prefix := ""
	if rest, ok := strings.CutPrefix(id, "sha256:"); ok {
		prefix, id = "sha256:", rest
	}
	return prefix + id[:min(len(id), 12)]
}

// tally counts what Clean found, by what it is, in the order first seen.
type tally struct {
	whats []string
	n     map[string]int
}

func (t *tally) add(what string) {
	if t.n == nil {
		t.n = map[string]int{}
	}
	if t.n[what] == 0 {
		t.whats = append(t.whats, what)
	}
	t.n[what]++
}

// String says "nothing", or "3 containers, 1 image".
func (t tally) String() string {
	if len(t.whats) == 0 {
		return "nothing"
	}
	var parts []string
	for _, w := range t.whats {
		n := t.n[w]
		if n != 1 {
			w += "s"
		}
		parts = append(parts, fmt.Sprintf("%d %s", n, w))
	}
	return strings.Join(parts, ", ")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
