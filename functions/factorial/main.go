// Command factorial computes n! exactly (math/big) and answers it as a
// decimal string. Input and output bytes are specified in functions/README.md.
package main

import (
	"math/big"
	"strconv"

	"github.com/academemes/harness/functions/internal/fnio"
)

const maxN = 5000

func init() { fnio.Register(handle) }

func main() { fnio.Main() }

func handle(req fnio.Request) fnio.Response {
	n, ok := fnio.Int(req, "n", 0, maxN)
	if !ok {
		return fnio.Error(400, `input must be JSON like {"n": 20} with n an integer from 0 to 5000`)
	}
	return fnio.JSON(200, []byte(`{"n":`+strconv.FormatInt(n, 10)+`,"result":"`+factorial(n).String()+"\"}\n"))
}

// factorial multiplies 1*2*...*n in order, as the Node build does with
// BigInt, so both do the same work.
func factorial(n int64) *big.Int {
	r := big.NewInt(1)
	var k big.Int
	for i := int64(2); i <= n; i++ {
		r.Mul(r, k.SetInt64(i))
	}
	return r
}
