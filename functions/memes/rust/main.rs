// memes-rust: the memes function in Rust (std only); same bytes out as
// memes.wasm for the same request (functions/README.md).
#[path = "../../internal/rust/purify.rs"]
mod purify;
mod memes_data;

use memes_data::COLLECTION;

/// MAX_SAFE is JavaScript's Number.MAX_SAFE_INTEGER: ids beyond it cannot
/// be printed the same way by every build, so they are bad input.
const MAX_SAFE: i64 = (1 << 53) - 1;

fn handle(req: &purify::Request) -> purify::Response {
    let mut id: i64 = 1; // a person browsing /fn/memes starts at the first meme
    if !purify::blank(&req.body) || !req.param("id").is_empty() {
        match purify::int(req, "id", -MAX_SAFE, MAX_SAFE) {
            Some(v) => id = v,
            None => return purify::error(400, r#"input must be JSON like {"id": 7} with id an integer"#),
        }
    }
    let n = COLLECTION.len() as i64;
    if id < 1 || id > n {
        return purify::error(404, &format!("no meme with id {}", id));
    }
    let m = &COLLECTION[(id - 1) as usize];
    let mut out = Vec::with_capacity(m.svg.len() + m.caption.len() + m.alt.len() + 400);
    if req.accept.contains("text/html") {
        let (prev, next) = ((id + n - 2) % n + 1, id % n + 1);
        out.extend_from_slice(b"<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Academemes #");
        out.extend_from_slice(id.to_string().as_bytes());
        out.extend_from_slice(b"</title><style>body{font-family:sans-serif;max-width:40rem;margin:2rem auto;text-align:center}nav a{margin:0 1rem}</style></head>\n");
        out.extend_from_slice(b"<body><h1>Academemes</h1><figure>");
        out.extend_from_slice(m.svg.as_bytes());
        out.extend_from_slice(b"<figcaption>");
        out.extend_from_slice(m.caption_html.as_bytes());
        out.extend_from_slice(b"</figcaption></figure>\n<nav><a href=\"?id=");
        out.extend_from_slice(prev.to_string().as_bytes());
        out.extend_from_slice(b"\">previous</a><a href=\"?id=");
        out.extend_from_slice(next.to_string().as_bytes());
        out.extend_from_slice(b"\">next</a></nav></body></html>\n");
        return purify::Response { status: 200, content_type: "text/html; charset=utf-8", body: out };
    }
    // memegen refuses '"', '\\' and control characters in every field, so
    // each quotes as itself.
    out.extend_from_slice(b"{\"id\":");
    out.extend_from_slice(id.to_string().as_bytes());
    out.extend_from_slice(b",\"caption\":\"");
    out.extend_from_slice(m.caption.as_bytes());
    out.extend_from_slice(b"\",\"alt\":\"");
    out.extend_from_slice(m.alt.as_bytes());
    out.extend_from_slice(b"\",\"svg\":\"");
    out.extend_from_slice(m.svg.as_bytes());
    out.extend_from_slice(b"\"}\n");
    purify::json(200, out)
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
