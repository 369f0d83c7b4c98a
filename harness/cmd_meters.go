package main

import (
	"fmt"
	"io"
)

// cmdMeters is a placeholder until its package lands; it says so and fails.
func cmdMeters(args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "harness meters: not built yet")
	return exitFail
}
