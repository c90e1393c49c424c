//! Response encoding: status line, the service's headers, then the framing headers the connection
//! owns (Content-Length or Transfer-Encoding, Connection, Date, Server), then the body. The
//! service's copies of the owned headers are dropped, and its values cannot break a line.

use crate::request::Version;
use crate::response::{reason_phrase, Body, Response};

/// What the encoder needs to know about the request being answered.
#[derive(Debug, Clone, Copy)]
pub struct EncodeCtx<'a> {
    /// The request's version: HTTP/1.0 clients get no chunked coding.
    pub version: Version,
    /// The request was HEAD: same headers, no body.
    pub head_only: bool,
    /// The connection stays open after this response.
    pub keep_alive: bool,
    /// The `Date` value (an IMF-fixdate); empty for none, as in an answer encoded once and
    /// reused, which would carry a stale one (RFC 9110 6.6.1 lets 1xx and 5xx answers go without).
    pub date: &'a [u8],
}

/// Appends `resp`, framed for `ctx`, to `out`.
pub fn encode_response(resp: &Response, ctx: EncodeCtx<'_>, out: &mut Vec<u8>) {
    let mut num = itoa::Buffer::new();
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(num.format(resp.status).as_bytes());
    out.push(b' ');
    out.extend_from_slice(reason_phrase(resp.status).as_bytes());
    out.extend_from_slice(b"\r\nServer: zoo\r\n");
    if !ctx.date.is_empty() {
        out.extend_from_slice(b"Date: ");
        out.extend_from_slice(ctx.date);
        out.extend_from_slice(b"\r\n");
    }
    for (name, value) in &resp.headers {
        if OWNED.iter().any(|owned| name.eq_ignore_ascii_case(owned)) {
            continue;
        }
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        push_value(out, value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !ctx.keep_alive {
        out.extend_from_slice(b"Connection: close\r\n");
    } else if ctx.version == Version::Http10 {
        out.extend_from_slice(b"Connection: keep-alive\r\n");
    }
    let bodiless = resp.status < 200 || resp.status == 204 || resp.status == 304;
    match &resp.body {
        _ if bodiless => out.extend_from_slice(b"\r\n"),
        Body::Full(body) => {
            content_length(out, body.len());
            if !ctx.head_only {
                out.extend_from_slice(body);
            }
        }
        Body::Chunked(chunks) if ctx.version == Version::Http10 => {
            content_length(out, chunks.iter().map(Vec::len).sum());
            if !ctx.head_only {
                chunks.iter().for_each(|c| out.extend_from_slice(c));
            }
        }
        Body::Chunked(chunks) => {
            out.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
            if ctx.head_only {
                return;
            }
            // An empty chunk would read as the last one: skip it.
            for chunk in chunks.iter().filter(|c| !c.is_empty()) {
                push_hex(out, chunk.len());
                out.extend_from_slice(b"\r\n");
                out.extend_from_slice(chunk);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"0\r\n\r\n");
        }
    }
}

/// Headers the connection writes itself: one from the service would frame the answer twice.
const OWNED: [&str; 5] = [
    "content-length",
    "transfer-encoding",
    "connection",
    "date",
    "server",
];

/// Appends a header value; CR, LF and NUL become spaces, so no value (a `Location` built from a
/// query, say) can end the header line and start another: no response splitting.
fn push_value(out: &mut Vec<u8>, value: &[u8]) {
    if value.iter().any(|&b| matches!(b, b'\r' | b'\n' | 0)) {
        out.extend(value.iter().map(|&b| match b {
            b'\r' | b'\n' | 0 => b' ',
            b => b,
        }));
    } else {
        out.extend_from_slice(value);
    }
}

/// Appends `n` in lower-case hex, without allocating.
fn push_hex(out: &mut Vec<u8>, mut n: usize) {
    let mut digits = [0u8; 2 * std::mem::size_of::<usize>()];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b"0123456789abcdef"[n & 0xf];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

fn content_length(out: &mut Vec<u8>, len: usize) {
    out.extend_from_slice(b"Content-Length: ");
    out.extend_from_slice(itoa::Buffer::new().format(len).as_bytes());
    out.extend_from_slice(b"\r\n\r\n");
}

/// The interim `100 Continue` response.
pub const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";
