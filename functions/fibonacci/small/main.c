/* fibonacci-small: the fibonacci function without a language runtime
 * (freestanding C for WASI); same bytes out as fibonacci.wasm. */
#include "../../internal/small/purify.h"

static int64_t fib(int64_t n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }

static void handle(void) {
	int64_t n;
	if (!input_int("n", 0, 50, &n)) {
		error_json(400, "input must be JSON like {\\\"n\\\": 30} with n an integer from 0 to 50");
		return;
	}
	head(200, "application/json");
	out_str("{\"n\":"); out_int(n); out_str(",\"result\":"); out_int(fib(n)); out_str("}\n");
}
