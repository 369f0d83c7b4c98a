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
// a platform (Kind.Clean), so that a new kind needs no change here. Only
// what belongs to harness processes that are gone goes, by the rule every
// kind applies (targets.CleanOptions.Keep), unless --all: a run still
// going on the same engine keeps its containers.
func cmdClean(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("harness clean", flag.ContinueOnError)
	fs.SetOutput(stderr)
	runID := fs.String("run", "", "remove only what run `ID` created")
	dry := fs.Bool("dry-run", false, "list what would be removed, remove nothing")
	all := fs.Bool("all", false, "remove also what runs still going created, and what no process can be checked for")
	timeout := fs.Duration("timeout", 2*time.Minute, "give up after this long")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: harness clean [--run ID] [--all] [--dry-run]")
		fmt.Fprintln(stderr, "\nRemoves what crashed or killed runs left behind, and the cached function images, for each kind of target:")
		for _, k := range targets.Kinds() {
			if k.Clean != nil {
				fmt.Fprintf(stderr, "  %s: %s\n", k.Name, k.CleanDoc)
			}
		}
		fmt.Fprintln(stderr, "Everything carries the harness process that created it (host, pid and its start time): what belongs to a")
		fmt.Fprintln(stderr, "process still running, or to one that cannot be checked from here (another host, an older harness), is")
		fmt.Fprintln(stderr, "kept and listed with the reason; --all removes it too.\n\nFlags:")
		fs.PrintDefaults()
	}
	if code, ok := parseNoArgs(fs, args, stderr); !ok {
		return code
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	verb, keep := "removed", "kept"
	if *dry {
		verb, keep = "would remove", "would keep"
	}
	var tally, kept tally
	code := exitOK
	// A killed run's last requests to the engine may still be landing
	// (a container create sent just before the kill completes after our
	// listing), so clean again while a pass still finds something to
	// remove; what is kept is said once.
	for pass := 0; pass < 3; pass++ {
		removed := 0
		for _, k := range targets.Kinds() {
			if k.Clean == nil {
				continue
			}
			found, err := k.Clean(ctx, targets.CleanOptions{RunID: *runID, DryRun: *dry, All: *all})
			for _, l := range found {
				name := l.Name
				if l.ID != "" && l.ID != l.Name {
					name = strings.TrimSpace(shortID(l.ID) + " " + l.Name)
				}
				if l.Kept != "" {
					if pass == 0 {
						fmt.Fprintf(stdout, "%s %s %s (run %s, target %s): %s\n", keep, l.What, name, orDash(l.Run), orDash(l.Target), l.Kept)
						kept.add(l.What)
					}
					continue
				}
				fmt.Fprintf(stdout, "%s %s %s (run %s, target %s)\n", verb, l.What, name, orDash(l.Run), orDash(l.Target))
				tally.add(l.What)
				removed++
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
		if *dry || removed == 0 || code != exitOK {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if len(kept.whats) > 0 {
		fmt.Fprintf(stdout, "%s %s; %s %s (--all removes them)\n", verb, tally.String(), keep, kept.String())
	} else {
		fmt.Fprintf(stdout, "%s %s\n", verb, tally.String())
	}
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
