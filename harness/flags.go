package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
)

// parseNoArgs parses the flags of a command that takes no positional
// arguments. When ok is false the command returns code at once: 0 after
// --help, 2 for a bad flag or a stray argument.
func parseNoArgs(fs *flag.FlagSet, args []string, stderr io.Writer) (code int, ok bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK, false
		}
		return exitUsage, false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "%s: unexpected arguments %q\n", fs.Name(), fs.Args())
		fs.Usage()
		return exitUsage, false
	}
	return 0, true
}

// parseInterspersed parses flags that may come before or after the
// positional arguments, as users type them (`harness run x.yaml --set
// a=b`, `harness report RUN --csv`), and returns the positional ones. The
// flag package stops at the first non-flag; this parses again after it,
// so the flag set itself says which flags take a value. After "--"
// everything is positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}
