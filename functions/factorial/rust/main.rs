// factorial-rust: the factorial function in Rust (std only); same bytes
// out as factorial.wasm (functions/README.md).
#[path = "../../internal/rust/purify.rs"]
mod purify;

const MAX_N: i64 = 5000;

/// BASE is the radix of a limb: 10^9, so that the decimal string is the
/// limbs printed in turn and a limb times n (at most 5000) plus a carry
/// fits in 64 bits.
const BASE: u64 = 1_000_000_000;

/// factorial multiplies 1*2*...*n in order, as the Go (math/big) and Node
/// (BigInt) builds do, into little-endian limbs of BASE.
fn factorial(n: i64) -> Vec<u32> {
    let mut limbs: Vec<u32> = vec![1];
    for k in 2..=n as u64 {
        let mut carry: u64 = 0;
        for limb in limbs.iter_mut() {
            let x = *limb as u64 * k + carry;
            *limb = (x % BASE) as u32;
            carry = x / BASE;
        }
        while carry > 0 {
            limbs.push((carry % BASE) as u32);
            carry /= BASE;
        }
    }
    limbs
}

/// decimal appends the number's decimal digits to out: the top limb as it
/// is, every other limb padded to nine digits.
fn decimal(limbs: &[u32], out: &mut String) {
    use std::fmt::Write as _;
    let mut it = limbs.iter().rev();
    if let Some(top) = it.next() {
        let _ = write!(out, "{}", top);
    }
    for limb in it {
        let _ = write!(out, "{:09}", limb);
    }
}

fn handle(req: &purify::Request) -> purify::Response {
    match purify::int(req, "n", 0, MAX_N) {
        Some(n) => {
            let mut s = format!("{{\"n\":{},\"result\":\"", n);
            decimal(&factorial(n), &mut s);
            s.push_str("\"}\n");
            purify::json(200, s.into_bytes())
        }
        None => purify::error(400, r#"input must be JSON like {"n": 20} with n an integer from 0 to 5000"#),
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
