package main

import (
	"fmt"
	"io"
)

// cmdCompare is a placeholder until its package lands; it says so and fails.
func cmdCompare(args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "harness compare: not built yet")
	return exitFail
}
