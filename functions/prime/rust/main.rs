// prime-rust: the prime function in Rust (std only); same bytes out as
// prime.wasm (functions/README.md).
#[path = "../../internal/rust/purify.rs"]
mod purify;

const MAX_N: i64 = 100000;

/// nth_prime tries every candidate c = 2, 3, 4, ... against every divisor
/// d = 2, 3, ... with d*d <= c; every build does exactly the same work.
fn nth_prime(n: i64) -> i64 {
    let mut count = 0;
    let mut c: i64 = 2;
    loop {
        let mut prime = true;
        let mut d: i64 = 2;
        while d * d <= c {
            if c % d == 0 {
                prime = false;
                break;
            }
            d += 1;
        }
        if prime {
            count += 1;
            if count == n {
                return c;
            }
        }
        c += 1;
    }
}

fn handle(req: &purify::Request) -> purify::Response {
    match purify::int(req, "n", 1, MAX_N) {
        Some(n) => purify::json(200, format!("{{\"n\":{},\"result\":{}}}\n", n, nth_prime(n)).into_bytes()),
        None => purify::error(400, r#"input must be JSON like {"n": 1000} with n an integer from 1 to 100000"#),
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
