// fibonacci-rust: the fibonacci function in Rust (std only), the study's
// own language; same bytes out as fibonacci.wasm (functions/README.md).
#[path = "../../internal/rust/purify.rs"]
mod purify;

const MAX_N: i64 = 50;

/// fib is deliberately recursive: the cost is the point.
fn fib(n: i64) -> i64 {
    if n < 2 {
        n
    } else {
        fib(n - 1) + fib(n - 2)
    }
}

fn handle(req: &purify::Request) -> purify::Response {
    match purify::int(req, "n", 0, MAX_N) {
        Some(n) => purify::json(200, format!("{{\"n\":{},\"result\":{}}}\n", n, fib(n)).into_bytes()),
        None => purify::error(400, r#"input must be JSON like {"n": 30} with n an integer from 0 to 50"#),
    }
}

/// purify_handle serves one request: warm mode calls it on a kept
/// instance, and main (cold and prewarmed modes, through _start) once.
#[no_mangle]
pub extern "C" fn purify_handle() {
    purify::serve(handle)
}

fn main() {
    purify_handle()
}
