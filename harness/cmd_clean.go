package main

import (
	"fmt"
	"io"
)

// cmdClean is a placeholder until its package lands; it says so and fails.
func cmdClean(args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "harness clean: not built yet")
	return exitFail
}
