// purify.rs: the Purify function ABI (functions/README.md) for Rust on WASI
// preview 1, with the standard library only (Rust 1.63, as Debian ships it;
// no crates). A function's main.rs includes it as a module:
//
//     #[path = "../../internal/rust/purify.rs"]
//     mod purify;
//
// and defines `fn handle(req: &purify::Request) -> purify::Response`, an
// exported `purify_handle` that calls `purify::serve(handle)`, and a `main`
// that calls `purify_handle`. The module is a WASI command (`_start` runs
// main, for cold and prewarmed modes) that also exports `purify_handle`
// (warm mode); see functions/README.md, "Rust builds", for why one module
// serves both.
//
// The input rules are the Go builds' (functions/internal/fnio), number for
// number: a JSON number is read with `str::parse::<f64>`, which rounds
// correctly as Go's strconv.ParseFloat does, and then judged as a double.
// So, unlike the small C builds, a Rust build answers every input with the
// Go build's bytes.
//
// Request facts come from WASI directly, not from std::env or std::io: in
// warm mode the platform points the environment and stdin at each request
// in turn, and the C library under std reads the environment only once.

// Not every function uses every helper.
#![allow(dead_code)]

use std::fmt::Write as _;

// The WASI preview 1 calls the ABI needs. The Rust names differ from the
// import names so that they cannot clash with the C library's own.
#[link(wasm_import_module = "wasi_snapshot_preview1")]
extern "C" {
    #[link_name = "fd_read"]
    fn wasi_fd_read(fd: u32, iovs: *const Iovec, iovs_len: u32, nread: *mut u32) -> u16;
    #[link_name = "fd_write"]
    fn wasi_fd_write(fd: u32, iovs: *const Iovec, iovs_len: u32, nwritten: *mut u32) -> u16;
    #[link_name = "environ_sizes_get"]
    fn wasi_environ_sizes_get(count: *mut u32, size: *mut u32) -> u16;
    #[link_name = "environ_get"]
    fn wasi_environ_get(environ: *mut *mut u8, buf: *mut u8) -> u16;
}

/// Iovec is WASI's (buffer, length) pair; pointers are 32 bits on wasm32.
#[repr(C)]
struct Iovec {
    buf: *const u8,
    len: usize,
}

/// Request is what a function sees of one HTTP request.
pub struct Request {
    /// QUERY_STRING, undecoded.
    pub query: String,
    /// HTTP_ACCEPT, "" when absent.
    pub accept: String,
    /// stdin.
    pub body: Vec<u8>,
}

impl Request {
    /// param is the first value of query parameter name, form-decoded, or
    /// "" when absent.
    pub fn param(&self, name: &str) -> Vec<u8> {
        param(&self.query, name).unwrap_or_default()
    }
}

/// Response is a function's answer.
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

/// serve reads the current request, answers it with handle and writes the
/// response to stdout: one request, in either mode.
pub fn serve(handle: fn(&Request) -> Response) {
    let req = Request {
        query: env_var("QUERY_STRING"),
        accept: env_var("HTTP_ACCEPT"),
        body: read_stdin(),
    };
    let resp = handle(&req);
    let mut out = Vec::with_capacity(resp.body.len() + 64);
    let _ = write!(
        Buf(&mut out),
        "Status: {} {}\r\nContent-Type: {}\r\n\r\n",
        resp.status,
        status_text(resp.status),
        resp.content_type
    );
    out.extend_from_slice(&resp.body);
    write_stdout(&out);
}

/// Buf lets write! append to a Vec<u8> without std::io.
pub struct Buf<'a>(pub &'a mut Vec<u8>);

impl std::fmt::Write for Buf<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

fn status_text(code: u16) -> &'static str {
    match code {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        _ => "Status",
    }
}

/// json is a JSON response; body must already end with "\n".
pub fn json(status: u16, body: Vec<u8>) -> Response {
    Response { status, content_type: "application/json", body }
}

/// error is the ABI's error body {"error":"MSG"}\n, msg quoted as
/// JSON.stringify does (msg is printable ASCII).
pub fn error(status: u16, msg: &str) -> Response {
    let mut b = Vec::with_capacity(msg.len() + 16);
    b.extend_from_slice(b"{\"error\":\"");
    for &c in msg.as_bytes() {
        if c == b'"' || c == b'\\' {
            b.push(b'\\');
        }
        b.push(c);
    }
    b.extend_from_slice(b"\"}\n");
    json(status, b)
}

fn read_stdin() -> Vec<u8> {
    let mut body: Vec<u8> = Vec::new();
    loop {
        body.reserve(16384);
        let spare = body.capacity() - body.len();
        let iov = Iovec { buf: unsafe { body.as_mut_ptr().add(body.len()) }, len: spare };
        let mut n: u32 = 0;
        let errno = unsafe { wasi_fd_read(0, &iov, 1, &mut n) };
        if errno != 0 || n == 0 {
            break;
        }
        unsafe { body.set_len(body.len() + n as usize) };
    }
    body
}

fn write_stdout(mut b: &[u8]) {
    while !b.is_empty() {
        let iov = Iovec { buf: b.as_ptr(), len: b.len() };
        let mut n: u32 = 0;
        let errno = unsafe { wasi_fd_write(1, &iov, 1, &mut n) };
        if errno != 0 || n == 0 {
            return;
        }
        b = &b[n as usize..];
    }
}

/// env_var is the value of the environment variable key as the platform
/// set it for this request, "" when absent.
fn env_var(key: &str) -> String {
    let (mut count, mut size) = (0u32, 0u32);
    if unsafe { wasi_environ_sizes_get(&mut count, &mut size) } != 0 {
        return String::new();
    }
    let mut ptrs: Vec<*mut u8> = vec![std::ptr::null_mut(); count as usize];
    let mut buf = vec![0u8; size as usize];
    if unsafe { wasi_environ_get(ptrs.as_mut_ptr(), buf.as_mut_ptr()) } != 0 {
        return String::new();
    }
    // Each entry is KEY=VALUE followed by a NUL, one after the other in buf.
    for entry in buf.split(|&c| c == 0) {
        if entry.len() > key.len() && entry.starts_with(key.as_bytes()) && entry[key.len()] == b'=' {
            return String::from_utf8_lossy(&entry[key.len() + 1..]).into_owned();
        }
    }
    String::new()
}

// ---- input: the rules of functions/README.md, "Input" ----

fn is_space(c: u8) -> bool {
    c == b' ' || c == b'\t' || c == b'\r' || c == b'\n'
}

/// blank reports whether b holds only JSON whitespace.
pub fn blank(b: &[u8]) -> bool {
    b.iter().all(|&c| is_space(c))
}

/// number is the input field name as a double, by the rules of
/// functions/README.md (fnio.Number).
pub fn number(req: &Request, name: &str) -> Option<f64> {
    if !blank(&req.body) {
        let raw = member(&req.body, name)?;
        if raw.is_empty() || !(raw[0] == b'-' || raw[0].is_ascii_digit()) {
            return None;
        }
        // raw is a JSON number (the parser checked its grammar), which
        // Rust's float syntax accepts as it is; too large a number reads
        // as an infinity, as in Go.
        return std::str::from_utf8(raw).ok()?.parse::<f64>().ok();
    }
    let s = param(&req.query, name).unwrap_or_default();
    let digits = if s.first() == Some(&b'-') { &s[1..] } else { &s[..] };
    if digits.is_empty() || !digits.iter().all(|c| c.is_ascii_digit()) {
        return None;
    }
    std::str::from_utf8(&s).ok()?.parse::<f64>().ok()
}

/// int is the input field name when it is an integer in [min, max]
/// (fnio.Int).
pub fn int(req: &Request, name: &str, min: i64, max: i64) -> Option<i64> {
    let v = number(req, name)?;
    if v != v.trunc() || v < min as f64 || v > max as f64 {
        return None;
    }
    Some(v as i64)
}

/// member parses doc as one JSON value and, if it is an object, returns
/// the raw text of the last member called name.
fn member<'a>(doc: &'a [u8], name: &str) -> Option<&'a [u8]> {
    let mut p = Parser { b: doc, i: 0 };
    p.space();
    if p.peek() != b'{' {
        return None;
    }
    p.i += 1;
    p.space();
    let mut found = None;
    if p.peek() == b'}' {
        p.i += 1;
    } else {
        loop {
            p.space();
            let key = p.str()?;
            p.space();
            if p.peek() != b':' {
                return None;
            }
            p.i += 1;
            p.space();
            let start = p.i;
            if !p.value(0) {
                return None;
            }
            if key == name.as_bytes() {
                found = Some(&doc[start..p.i]);
            }
            p.space();
            let c = p.peek();
            p.i += 1;
            if c == b'}' {
                break;
            }
            if c != b',' {
                return None;
            }
        }
    }
    p.space();
    if p.i != doc.len() {
        return None;
    }
    found
}

struct Parser<'a> {
    b: &'a [u8],
    i: usize,
}

/// MAX_DEPTH bounds recursion on hostile input (as fnio's maxDepth).
const MAX_DEPTH: u32 = 512;

impl Parser<'_> {
    fn peek(&self) -> u8 {
        if self.i < self.b.len() {
            self.b[self.i]
        } else {
            0
        }
    }

    fn space(&mut self) {
        while self.i < self.b.len() && is_space(self.b[self.i]) {
            self.i += 1;
        }
    }

    fn value(&mut self, depth: u32) -> bool {
        if depth > MAX_DEPTH {
            return false;
        }
        match self.peek() {
            b'{' => {
                self.i += 1;
                self.elements(b'}', |p| {
                    if p.str().is_none() {
                        return false;
                    }
                    p.space();
                    if p.peek() != b':' {
                        return false;
                    }
                    p.i += 1;
                    p.space();
                    p.value(depth + 1)
                })
            }
            b'[' => {
                self.i += 1;
                self.elements(b']', |p| p.value(depth + 1))
            }
            b'"' => self.str().is_some(),
            b'-' | b'0'..=b'9' => self.number(),
            b't' => self.lit(b"true"),
            b'f' => self.lit(b"false"),
            b'n' => self.lit(b"null"),
            _ => false,
        }
    }

    /// elements reads the comma-separated members of an object or elements
    /// of an array, the opening byte already read, through end.
    fn elements(&mut self, end: u8, mut elem: impl FnMut(&mut Self) -> bool) -> bool {
        self.space();
        if self.peek() == end {
            self.i += 1;
            return true;
        }
        loop {
            self.space();
            if !elem(self) {
                return false;
            }
            self.space();
            let c = self.peek();
            self.i += 1;
            if c == end {
                return true;
            }
            if c != b',' {
                return false;
            }
        }
    }

    fn lit(&mut self, s: &[u8]) -> bool {
        if self.b.len() - self.i < s.len() || &self.b[self.i..self.i + s.len()] != s {
            return false;
        }
        self.i += s.len();
        true
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while self.i < self.b.len() && self.b[self.i].is_ascii_digit() {
            self.i += 1;
        }
        self.i - start
    }

    fn number(&mut self) -> bool {
        if self.peek() == b'-' {
            self.i += 1;
        }
        if self.peek() == b'0' {
            self.i += 1;
        } else if self.digits() == 0 {
            return false;
        }
        if self.peek() == b'.' {
            self.i += 1;
            if self.digits() == 0 {
                return false;
            }
        }
        if self.peek() == b'e' || self.peek() == b'E' {
            self.i += 1;
            if self.peek() == b'+' || self.peek() == b'-' {
                self.i += 1;
            }
            if self.digits() == 0 {
                return false;
            }
        }
        true
    }

    /// str parses a string and returns it with escapes decoded; a \u
    /// escape beyond ASCII is kept as three bytes that no ASCII name can
    /// equal (as fnio does).
    fn str(&mut self) -> Option<Vec<u8>> {
        if self.peek() != b'"' {
            return None;
        }
        self.i += 1;
        let mut out = Vec::new();
        while self.i < self.b.len() {
            let c = self.b[self.i];
            self.i += 1;
            match c {
                b'"' => return Some(out),
                0..=0x1f => return None,
                b'\\' => {
                    let e = self.peek();
                    self.i += 1;
                    match e {
                        b'"' | b'\\' | b'/' => out.push(e),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'u' => {
                            if self.b.len() - self.i < 4 {
                                return None;
                            }
                            let mut v: u32 = 0;
                            for k in 0..4 {
                                v = v * 16 + unhex(self.b[self.i + k])? as u32;
                            }
                            self.i += 4;
                            if v < 0x80 {
                                out.push(v as u8);
                            } else {
                                out.extend_from_slice(&[0xff, (v >> 8) as u8, v as u8]);
                            }
                        }
                        _ => return None,
                    }
                }
                _ => out.push(c),
            }
        }
        None
    }
}

fn unhex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// param is the first value of the query parameter name, decoded as
/// application/x-www-form-urlencoded, or None when absent (fnio.Param).
fn param(query: &str, name: &str) -> Option<Vec<u8>> {
    for kv in query.as_bytes().split(|&c| c == b'&') {
        let (k, v) = match kv.iter().position(|&c| c == b'=') {
            Some(i) => (&kv[..i], &kv[i + 1..]),
            None => (kv, &kv[kv.len()..]),
        };
        if unescape(k) == name.as_bytes() {
            return Some(unescape(v));
        }
    }
    None
}

/// unescape decodes '+' and %XX; a malformed escape is kept as it is.
fn unescape(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let mut c = s[i];
        if c == b'+' {
            c = b' ';
        } else if c == b'%' && i + 2 < s.len() {
            if let (Some(h), Some(l)) = (unhex(s[i + 1]), unhex(s[i + 2])) {
                c = h << 4 | l;
                i += 2;
            }
        }
        out.push(c);
        i += 1;
    }
    out
}

/// format_number formats a finite double as JavaScript's Number#toString
/// (and so JSON.stringify) does, as fnio.FormatNumber: the shortest digits
/// that read back as the same double, plain for 1e-6 <= |v| < 1e21 and
/// with an exponent outside ("1e+21", "1.5e-7"). Rust's Display and
/// LowerExp give the shortest digits; JavaScript writes a '+' before a
/// positive exponent, Rust does not.
pub fn format_number(v: f64) -> String {
    if v == 0.0 {
        return "0".to_string();
    }
    let a = v.abs();
    if (1e-6..1e21).contains(&a) {
        return format!("{}", v);
    }
    let s = format!("{:e}", v);
    match s.find('e') {
        Some(i) if s.as_bytes().get(i + 1) != Some(&b'-') => format!("{}e+{}", &s[..i], &s[i + 1..]),
        _ => s,
    }
}
