package main

import (
	"fmt"
	"io"
)

// cmdReport is a placeholder until its package lands; it says so and fails.
func cmdReport(args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "harness report: not built yet")
	return exitFail
}
