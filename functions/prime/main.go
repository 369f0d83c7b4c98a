// Command prime finds the nth prime by trial division. Input and output
// bytes are specified in functions/README.md.
package main

import (
	"strconv"

	"github.com/academemes/harness/functions/internal/fnio"
)

const maxN = 100000

func init() { fnio.Register(handle) }

func main() { fnio.Main() }

func handle(req fnio.Request) fnio.Response {
	n, ok := fnio.Int(req, "n", 1, maxN)
	if !ok {
		return fnio.Error(400, `input must be JSON like {"n": 1000} with n an integer from 1 to 100000`)
	}
	return fnio.JSON(200, []byte(`{"n":`+strconv.FormatInt(n, 10)+`,"result":`+strconv.FormatInt(nthPrime(n), 10)+"}\n"))
}

// nthPrime tries every candidate c = 2, 3, 4, ... against every divisor
// d = 2, 3, ... with d*d <= c; the Node build does exactly the same work.
func nthPrime(n int64) int64 {
	count := int64(0)
	for c := int64(2); ; c++ {
		prime := true
		for d := int64(2); d*d <= c; d++ {
			if c%d == 0 {
				prime = false
				break
			}
		}
		if prime {
			count++
			if count == n {
				return c
			}
		}
	}
}
