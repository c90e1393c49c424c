//! Request encoding: [`encode_request`] appends one request to a buffer the caller owns, framed
//! with Content-Length or chunked as [`RequestSpec::framing`] says; [`encode_unfinished_head`]
//! writes a head without the empty line that ends it (a slow client's head); [`check_header`]
//! is the rule a header field must pass, for callers that check fields before they encode.

use crate::syntax;
use std::fmt;

/// How a request's body is framed on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `Content-Length`, sent when there is a body or the method expects one.
    Length,
    /// `Transfer-Encoding: chunked`, the body cut into chunks of at most this many bytes.
    Chunked(usize),
}

/// A request to encode. The encoder adds `Host` (unless among `headers`), the framing header
/// ([`Framing`]) and `Connection: close` when `close` is set.
#[derive(Debug, Clone, Copy)]
pub struct RequestSpec<'a> {
    /// The method, e.g. `GET`.
    pub method: &'a str,
    /// The request target in origin form, e.g. `/path?query`.
    pub target: &'a str,
    /// The `Host` value, e.g. `127.0.0.1:8080`.
    pub host: &'a str,
    /// Extra header fields as (name, value).
    pub headers: &'a [(&'a str, &'a str)],
    /// The body; empty for none.
    pub body: &'a [u8],
    /// How the body is framed.
    pub framing: Framing,
    /// Ask the server to close the connection after its response.
    pub close: bool,
}

impl<'a> RequestSpec<'a> {
    /// A request with no extra headers, no body, Content-Length framing, kept alive.
    pub const fn new(method: &'a str, target: &'a str, host: &'a str) -> RequestSpec<'a> {
        RequestSpec {
            method,
            target,
            host,
            headers: &[],
            body: b"",
            framing: Framing::Length,
            close: false,
        }
    }
}

/// A request that cannot be encoded as given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodeError {
    /// The method is not a token.
    BadMethod,
    /// The target is empty or holds whitespace or control bytes.
    BadTarget,
    /// The host is empty or holds whitespace or control bytes.
    BadHost,
    /// A header name is not a token.
    BadHeaderName,
    /// A header value holds CR, LF or another control byte.
    BadHeaderValue,
    /// A Content-Length or Transfer-Encoding header: the encoder owns the framing.
    FramingHeader,
    /// Chunked framing with chunks of zero bytes: a zero-size chunk ends the body.
    ZeroChunk,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EncodeError::BadMethod => {
                "the method must be a token (letters, digits, !#$%&'*+-.^_`|~)"
            }
            EncodeError::BadTarget => "the target must be non-empty, without spaces or controls",
            EncodeError::BadHost => "the host must be non-empty, without spaces or controls",
            EncodeError::BadHeaderName => "a header name must be a token",
            EncodeError::BadHeaderValue => "a header value must not hold CR, LF or controls",
            EncodeError::FramingHeader => {
                "Content-Length and Transfer-Encoding are set from the body"
            }
            EncodeError::ZeroChunk => "chunks must hold at least one byte",
        })
    }
}

impl std::error::Error for EncodeError {}

/// Whether `name: value` may go into a request as given: a token name, a value without CR, LF
/// or other controls (tab allowed), and not a framing header, which the encoder owns.
pub fn check_header(name: &str, value: &str) -> Result<(), EncodeError> {
    if !syntax::is_token(name) {
        return Err(EncodeError::BadHeaderName);
    }
    if value.bytes().any(|b| b != b'\t' && (b < 0x20 || b == 0x7f)) {
        return Err(EncodeError::BadHeaderValue);
    }
    if name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("transfer-encoding")
    {
        return Err(EncodeError::FramingHeader);
    }
    Ok(())
}

/// Appends the request described by `spec` to `out`; on error `out` is left as it was.
pub fn encode_request(spec: &RequestSpec<'_>, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    write_head(spec, out)?;
    out.extend_from_slice(b"\r\n");
    match spec.framing {
        Framing::Length => out.extend_from_slice(spec.body),
        Framing::Chunked(size) => {
            let mut hex = [0u8; 16];
            for chunk in spec.body.chunks(size) {
                out.extend_from_slice(format_hex(chunk.len(), &mut hex));
                out.extend_from_slice(b"\r\n");
                out.extend_from_slice(chunk);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"0\r\n\r\n");
        }
    }
    Ok(())
}

/// Appends the request line and header fields of `spec` to `out`, without the empty line that
/// would end the head and without the body: what a client that never finishes its head sends.
/// On error `out` is left as it was.
pub fn encode_unfinished_head(
    spec: &RequestSpec<'_>,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    write_head(spec, out)
}

/// Checks `spec` and writes its request line and fields, each ending in CRLF.
fn write_head(spec: &RequestSpec<'_>, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let visible = |s: &str| !s.is_empty() && s.bytes().all(|b| b > 0x20 && b != 0x7f);
    if !syntax::is_token(spec.method) {
        return Err(EncodeError::BadMethod);
    }
    if !visible(spec.target) {
        return Err(EncodeError::BadTarget);
    }
    if spec.framing == Framing::Chunked(0) {
        return Err(EncodeError::ZeroChunk);
    }
    let mut has_host = false;
    let mut has_connection = false;
    for &(name, value) in spec.headers {
        check_header(name, value)?;
        has_host |= name.eq_ignore_ascii_case("host");
        has_connection |= name.eq_ignore_ascii_case("connection");
    }
    if !has_host && !visible(spec.host) {
        return Err(EncodeError::BadHost);
    }

    out.extend_from_slice(spec.method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(spec.target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    if !has_host {
        out.extend_from_slice(b"Host: ");
        out.extend_from_slice(spec.host.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    for &(name, value) in spec.headers {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.trim().as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    match spec.framing {
        Framing::Chunked(_) => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
        Framing::Length => {
            let expects_body = matches!(spec.method, "POST" | "PUT" | "PATCH");
            if !spec.body.is_empty() || expects_body {
                out.extend_from_slice(b"Content-Length: ");
                out.extend_from_slice(itoa::Buffer::new().format(spec.body.len()).as_bytes());
                out.extend_from_slice(b"\r\n");
            }
        }
    }
    if spec.close && !has_connection {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    Ok(())
}

/// `n` in lower-case hexadecimal, without leading zeros, written into `buf`.
fn format_hex(mut n: usize, buf: &mut [u8; 16]) -> &[u8] {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b"0123456789abcdef"[n % 16];
        n /= 16;
        if n == 0 {
            return &buf[at..];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (name, spec, expected bytes or error).
    type EncodeCase = (
        &'static str,
        RequestSpec<'static>,
        Result<&'static [u8], EncodeError>,
    );

    fn spec(method: &'static str, target: &'static str) -> RequestSpec<'static> {
        RequestSpec::new(method, target, "example.test:8080")
    }

    fn encode_cases() -> Vec<EncodeCase> {
        vec![
            (
                "plain get",
                spec("GET", "/"),
                Ok(b"GET / HTTP/1.1\r\nHost: example.test:8080\r\n\r\n"),
            ),
            (
                "post with body and close",
                RequestSpec {
                    body: b"abc",
                    close: true,
                    ..spec("POST", "/echo")
                },
                Ok(b"POST /echo HTTP/1.1\r\nHost: example.test:8080\r\nContent-Length: 3\r\n\
                     Connection: close\r\n\r\nabc"),
            ),
            (
                "empty post still has a length",
                spec("POST", "/counter"),
                Ok(b"POST /counter HTTP/1.1\r\nHost: example.test:8080\r\nContent-Length: 0\r\n\r\n"),
            ),
            (
                "caller's host and headers",
                RequestSpec {
                    headers: &[("host", "other"), ("X-A", " 1 ")],
                    ..spec("GET", "/q?a=1")
                },
                Ok(b"GET /q?a=1 HTTP/1.1\r\nhost: other\r\nX-A: 1\r\n\r\n"),
            ),
            (
                "caller's connection header wins",
                RequestSpec {
                    headers: &[("Connection", "keep-alive")],
                    close: true,
                    ..spec("GET", "/")
                },
                Ok(b"GET / HTTP/1.1\r\nHost: example.test:8080\r\nConnection: keep-alive\r\n\r\n"),
            ),
            (
                "chunked body",
                RequestSpec {
                    body: b"abcdefghijklmnopq",
                    framing: Framing::Chunked(16),
                    ..spec("POST", "/echo")
                },
                Ok(b"POST /echo HTTP/1.1\r\nHost: example.test:8080\r\nTransfer-Encoding: chunked\r\n\r\n\
                     10\r\nabcdefghijklmnop\r\n1\r\nq\r\n0\r\n\r\n"),
            ),
            (
                "empty chunked body is the last chunk alone",
                RequestSpec {
                    framing: Framing::Chunked(4),
                    close: true,
                    ..spec("PUT", "/kv/a")
                },
                Ok(b"PUT /kv/a HTTP/1.1\r\nHost: example.test:8080\r\nTransfer-Encoding: chunked\r\n\
                     Connection: close\r\n\r\n0\r\n\r\n"),
            ),
            (
                "zero-byte chunks",
                RequestSpec {
                    body: b"a",
                    framing: Framing::Chunked(0),
                    ..spec("POST", "/echo")
                },
                Err(EncodeError::ZeroChunk),
            ),
            ("bad method", spec("GE T", "/"), Err(EncodeError::BadMethod)),
            ("bad target", spec("GET", "/a b"), Err(EncodeError::BadTarget)),
            (
                "empty host",
                RequestSpec {
                    host: "",
                    ..spec("GET", "/")
                },
                Err(EncodeError::BadHost),
            ),
            (
                "header injection",
                RequestSpec {
                    headers: &[("X-A", "1\r\nX-B: 2")],
                    ..spec("GET", "/")
                },
                Err(EncodeError::BadHeaderValue),
            ),
            (
                "bad header name",
                RequestSpec {
                    headers: &[("X A", "1")],
                    ..spec("GET", "/")
                },
                Err(EncodeError::BadHeaderName),
            ),
            (
                "framing header from the caller",
                RequestSpec {
                    headers: &[("Content-Length", "9")],
                    ..spec("POST", "/")
                },
                Err(EncodeError::FramingHeader),
            ),
        ]
    }

    #[test]
    fn request_encoding_table() {
        for (name, spec, expect) in encode_cases() {
            let mut out = b"prefix".to_vec();
            let got = encode_request(&spec, &mut out);
            match expect {
                Ok(bytes) => {
                    assert_eq!(got, Ok(()), "{name}");
                    assert_eq!(
                        &out[6..],
                        bytes,
                        "{name}: {}",
                        String::from_utf8_lossy(&out)
                    );
                }
                Err(e) => {
                    assert_eq!(got, Err(e), "{name}");
                    assert_eq!(out, b"prefix", "{name}: output untouched on error");
                }
            }
        }
    }

    #[test]
    fn unfinished_heads_stop_before_the_empty_line() {
        let mut out = Vec::new();
        encode_unfinished_head(&spec("GET", "/"), &mut out).expect("valid spec");
        assert_eq!(out, b"GET / HTTP/1.1\r\nHost: example.test:8080\r\n");
        let bad = RequestSpec {
            headers: &[("X-A", "\n")],
            ..spec("GET", "/")
        };
        assert_eq!(
            encode_unfinished_head(&bad, &mut out),
            Err(EncodeError::BadHeaderValue)
        );
    }

    #[test]
    fn hex_sizes_have_no_leading_zeros() {
        let mut buf = [0u8; 16];
        for (n, hex) in [(0, "0"), (9, "9"), (10, "a"), (255, "ff"), (4096, "1000")] {
            assert_eq!(format_hex(n, &mut buf), hex.as_bytes());
        }
        assert_eq!(format_hex(usize::MAX, &mut buf).len(), 16);
    }
}
