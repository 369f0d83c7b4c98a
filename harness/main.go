// Command harness measures how many joules a web request costs on one
// serving platform against another. See the README for the commands.
package main

import (
	"fmt"
	"io"
	"os"
	"sort"

	_ "github.com/academemes/harness/meters/all"
	_ "github.com/academemes/harness/targets/all"
)

// Exit codes.
const (
	exitOK    = 0 // done
	exitFail  = 1 // the run (or command) failed
	exitUsage = 2 // usage or scenario error
)

// command is one subcommand: it parses its own flags from args (which do
// not include the subcommand's name) and returns an exit code.
type command struct {
	summary string
	run     func(args []string, stdout, stderr io.Writer) int
}

func commands() map[string]command {
	return map[string]command{
		"agent":   {"serve this machine's meters to a harness on another machine: harness agent --listen ADDR --token T [--meter SPEC]...", cmdAgent},
		"run":     {"run a scenario: harness run SCENARIO [--set PATH=VALUE]...", cmdRun},
		"report":  {"analyse a run directory again and write its report: harness report RUN_DIR", cmdReport},
		"compare": {"put targets and runs side by side: harness compare [RUN_DIR...]", cmdCompare},
		"meters":  {"list, record from and emulate meters: harness meters list|record|emulate", cmdMeters},
		"serve":   {"run the Purify Wasm function platform on its own: harness serve --listen ADDR --functions DIR", cmdServe},
		"clean":   {"remove containers and images left by earlier runs: harness clean", cmdClean},
		"doctor":  {"check whether this machine is fit to measure now: harness doctor [--meter SPEC]", cmdDoctor},
		"version": {"print the harness version", cmdVersion},
	}
}

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	cmd, ok := commands()[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "harness: unknown command %q\n\n", args[0])
		usage(stderr)
		return exitUsage
	}
	return cmd.run(args[1:], stdout, stderr)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "harness: energy per request of web functions on different serving platforms")
	fmt.Fprintln(w, "\nUsage: harness COMMAND [flags]   (harness COMMAND --help for each)")
	fmt.Fprintln(w, "\nCommands:")
	cmds := commands()
	var names []string
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-8s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintln(w, "\nExit codes: 0 done, 1 the run failed, 2 usage or scenario error.")
}
