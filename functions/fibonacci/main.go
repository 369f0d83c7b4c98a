// Command fibonacci computes the nth Fibonacci number by naive recursion, the
// exponential-time workload of the original study. Input and output bytes
// are specified in functions/README.md.
package main

import (
	"strconv"

	"github.com/academemes/harness/functions/internal/fnio"
)

const maxN = 50

func init() { fnio.Register(handle) }

func main() { fnio.Main() }

func handle(req fnio.Request) fnio.Response {
	n, ok := fnio.Int(req, "n", 0, maxN)
	if !ok {
		return fnio.Error(400, `input must be JSON like {"n": 30} with n an integer from 0 to 50`)
	}
	return fnio.JSON(200, []byte(`{"n":`+strconv.FormatInt(n, 10)+`,"result":`+strconv.FormatInt(fib(n), 10)+"}\n"))
}

// fib is deliberately recursive: the cost is the point.
func fib(n int64) int64 {
	if n < 2 {
		return n
	}
	return fib(n-1) + fib(n-2)
}
