package main

import (
	"fmt"
	"io"
)

// cmdServe is a placeholder until its package lands; it says so and fails.
func cmdServe(args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "harness serve: not built yet")
	return exitFail
}
