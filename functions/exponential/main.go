// Command exponential computes e^n by summing its Taylor series in float64
// until a term no longer changes the sum. Input and output bytes are
// specified in functions/README.md.
package main

import (
	"strconv"

	"github.com/academemes/harness/functions/internal/fnio"
)

const maxN = 709 // e^710 overflows float64

func init() { fnio.Register(handle) }

func main() { fnio.Main() }

func handle(req fnio.Request) fnio.Response {
	n, ok := fnio.Int(req, "n", 0, maxN)
	if !ok {
		return fnio.Error(400, `input must be JSON like {"n": 10} with n an integer from 0 to 709`)
	}
	sum, terms := exp(float64(n))
	return fnio.JSON(200, []byte(`{"n":`+strconv.FormatInt(n, 10)+`,"terms":`+strconv.Itoa(terms)+
		`,"result":`+fnio.FormatNumber(sum)+"}\n"))
}

// exp is the series sum of x^k/k!. Every operation is a single IEEE 754
// double operation in a fixed order (no fused multiply-add: Wasm has none,
// and the assignments round), so the Node build gets the same bits. The
// next term is term·(x/k), not (term·x)/k: near k = x the largest term is
// close to e^x, and multiplying it by x first overflows to +Inf for n ≥ 708.
func exp(x float64) (sum float64, terms int) {
	term := 1.0
	for k := 1; ; k++ {
		next := sum + term
		if next == sum {
			return sum, k - 1
		}
		sum = next
		term = term * (x / float64(k))
	}
}
