// exponential-rust: the exponential function in Rust (std only); same
// bytes out as exponential.wasm (functions/README.md).
#[path = "../../internal/rust/purify.rs"]
mod purify;

const MAX_N: i64 = 709; // e^710 overflows a double

/// exp is the series sum of x^k/k!, one double operation at a time in
/// the order functions/README.md gives (term * (x / k)): Wasm has no fused
/// multiply-add, so every build gets the same bits.
fn exp(x: f64) -> (f64, u32) {
    let mut sum = 0.0f64;
    let mut term = 1.0f64;
    let mut k: u32 = 1;
    loop {
        let next = sum + term;
        if next == sum {
            return (sum, k - 1);
        }
        sum = next;
        term = term * (x / k as f64);
        k += 1;
    }
}

fn handle(req: &purify::Request) -> purify::Response {
    match purify::int(req, "n", 0, MAX_N) {
        Some(n) => {
            let (sum, terms) = exp(n as f64);
            let body = format!("{{\"n\":{},\"terms\":{},\"result\":{}}}\n", n, terms, purify::format_number(sum));
            purify::json(200, body.into_bytes())
        }
        None => purify::error(400, r#"input must be JSON like {"n": 10} with n an integer from 0 to 709"#),
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
