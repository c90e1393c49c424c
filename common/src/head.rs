//! Request-head parsing: `httparse` does the tokenising, this module adds what RFC 9112 requires of
//! a strict origin server and `httparse` leaves to its caller (line endings, obs-fold, Host, the
//! framing headers, limits with the right status).
//!
//! Calling order: [`scan_head`] as bytes arrive (it finds the end of the head and rejects bad line
//! endings early, resuming where it stopped), then [`parse_head`] once on the complete head.

use crate::error::ProtoError;
use crate::request::{Request, Version};
pub use crate::syntax::{is_tchar, is_token};
use std::mem::MaybeUninit;

/// Limits applied while a head is parsed.
#[derive(Debug, Clone, Copy)]
pub struct HeadLimits {
    /// Longest request line, in bytes (414 beyond).
    pub max_request_line: usize,
    /// Largest head, request line included, in bytes (431 beyond).
    pub max_head_bytes: usize,
    /// Most header fields (431 beyond).
    pub max_headers: usize,
}

impl Default for HeadLimits {
    fn default() -> Self {
        HeadLimits {
            max_request_line: 8 * 1024,
            max_head_bytes: 16 * 1024,
            max_headers: 100,
        }
    }
}

/// How the body of a request is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body.
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
}

/// A parsed head: the request without its body, and what the connection needs to read the body.
#[derive(Debug)]
pub struct Head {
    /// The request, body still empty.
    pub request: Request,
    /// How the body is framed.
    pub framing: Framing,
    /// The client sent `Expect: 100-continue`.
    pub expect_continue: bool,
}

/// Progress of [`scan_head`] over a buffer that grows between calls.
#[derive(Debug, Default, Clone, Copy)]
pub struct HeadScan {
    /// Bytes already checked: everything before `scanned` needs no second look.
    scanned: usize,
    /// Where the line being scanned starts.
    line_start: usize,
    /// Leading empty lines skipped before the request line (RFC 9112 section 2.2).
    skipped: usize,
    /// Whether the request line has been seen complete.
    line_done: bool,
}

impl HeadScan {
    /// Bytes of leading empty lines that precede the request line.
    pub fn skipped(&self) -> usize {
        self.skipped
    }
}

/// Looks for the end of the head in `buf`, checking line endings as it goes. Returns the length of
/// the head including its final CRLF CRLF (and any skipped leading empty lines), `None` while it
/// is still incomplete. `buf` must start where the first call's did: `scan` holds offsets into it.
///
/// Each line is judged when its CRLF arrives, so a read may end anywhere (even between CR and LF)
/// without changing the verdict. The request line is checked as soon as it is complete, so a
/// client that opens with garbage is answered at once rather than at the header timeout.
pub fn scan_head(
    buf: &[u8],
    scan: &mut HeadScan,
    limits: &HeadLimits,
) -> Result<Option<usize>, ProtoError> {
    loop {
        let rest = &buf[scan.scanned..];
        let Some(at) = rest.iter().position(|&b| b == b'\r' || b == b'\n') else {
            scan.scanned = buf.len();
            break;
        };
        let eol = scan.scanned + at;
        // A limit is crossed where it is crossed: whatever comes after the limit (a bad byte
        // included) is never looked at, so the answer does not depend on how the bytes arrive.
        limit_crossed(eol, scan, limits)?;
        if buf[eol] == b'\n' {
            return Err(ProtoError::BareLineEnding);
        }
        match buf.get(eol + 1) {
            // Wait at the CR: the LF may come with the next read.
            None => {
                scan.scanned = eol;
                break;
            }
            Some(b'\n') => {}
            Some(_) => return Err(ProtoError::BareLineEnding),
        }
        let line = &buf[scan.line_start..eol];
        let next = eol + 2;
        if !scan.line_done {
            if line.is_empty() {
                // An empty line before the request line is ignored; bound them like a head.
                scan.skipped = next;
                if scan.skipped > limits.max_head_bytes {
                    return Err(ProtoError::HeadTooLarge);
                }
            } else {
                if line.len() > limits.max_request_line {
                    return Err(ProtoError::RequestLineTooLong);
                }
                check_request_line(&buf[scan.line_start..next])?;
                scan.line_done = true;
            }
        } else if line.is_empty() {
            if next - scan.skipped > limits.max_head_bytes {
                return Err(ProtoError::HeadTooLarge);
            }
            scan.scanned = next;
            scan.line_start = next;
            return Ok(Some(next));
        } else if matches!(line[0], b' ' | b'\t') {
            // A line that starts with whitespace continues the previous one: obs-fold.
            return Err(ProtoError::ObsFold);
        }
        scan.line_start = next;
        scan.scanned = next;
    }
    // Incomplete: the bytes so far already count against the limits, except a CR still waiting
    // for its LF (`scanned` stops before it): it ends the line rather than lengthening it.
    limit_crossed(scan.scanned, scan, limits)?;
    Ok(None)
}

/// Whether `len` bytes of buffer cross a limit; when both are crossed, the one crossed first
/// answers, as it would have with the bytes arriving one at a time.
fn limit_crossed(len: usize, scan: &HeadScan, limits: &HeadLimits) -> Result<(), ProtoError> {
    // The first buffer length at which each limit is exceeded.
    let line_at = (!scan.line_done).then(|| scan.line_start + limits.max_request_line + 1);
    let head_at = scan.skipped + limits.max_head_bytes + 1;
    match line_at {
        Some(line_at) if line_at <= len && line_at <= head_at => {
            Err(ProtoError::RequestLineTooLong)
        }
        _ if head_at <= len => Err(ProtoError::HeadTooLarge),
        _ => Ok(()),
    }
}

/// Checks a complete request line (with its CRLF) on its own, before the headers arrive.
fn check_request_line(line: &[u8]) -> Result<(), ProtoError> {
    let mut no_headers: [httparse::Header<'_>; 0] = [];
    let mut parsed = httparse::Request::new(&mut no_headers);
    match parsed.parse(line) {
        // Partial: the line is fine and the headers are still to come.
        Ok(_) => {}
        Err(e) => return Err(classify(e, line)),
    }
    match (parsed.method, parsed.path) {
        (Some(method), Some(target)) => check_target(method, target),
        _ => Err(ProtoError::BadSyntax),
    }
}

/// Header slots kept on the stack while parsing: the default `max_headers`.
const STACK_HEADERS: usize = 100;

/// Parses a complete head (as found by [`scan_head`], without the skipped leading empty lines).
pub fn parse_head(head: &[u8], limits: &HeadLimits) -> Result<Head, ProtoError> {
    // Room for the headers: on the stack up to the default limit, uninitialized (httparse writes
    // before it reads), so a request costs neither an allocation nor 3 KiB of zeroing.
    let mut on_stack = [const { MaybeUninit::<httparse::Header>::uninit() }; STACK_HEADERS];
    let mut on_heap = Vec::new();
    let storage = if limits.max_headers <= STACK_HEADERS {
        &mut on_stack[..limits.max_headers]
    } else {
        on_heap.resize_with(limits.max_headers, MaybeUninit::uninit);
        &mut on_heap[..]
    };
    let mut parsed = httparse::Request::new(&mut []);
    match parsed.parse_with_uninit_headers(head, storage) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err(ProtoError::BadSyntax),
        Err(e) => return Err(classify(e, head)),
    }
    let version = match parsed.version {
        Some(0) => Version::Http10,
        Some(1) => Version::Http11,
        _ => return Err(ProtoError::UnsupportedVersion),
    };
    let base = head.as_ptr() as usize;
    let span = |s: &[u8]| {
        let start = s.as_ptr() as usize - base;
        start..start + s.len()
    };
    let method = parsed.method.ok_or(ProtoError::BadSyntax)?;
    let target = parsed.path.ok_or(ProtoError::BadSyntax)?;
    check_target(method, target)?;

    let mut hosts = 0;
    let mut length: Option<u64> = None;
    let mut codings: Option<Vec<String>> = None;
    let mut close = false;
    let mut keep_alive = false;
    let mut expect_continue = false;
    let mut headers = Vec::with_capacity(parsed.headers.len());
    for h in parsed.headers.iter() {
        if h.value
            .iter()
            .any(|&b| b != b'\t' && (b < 0x20 || b == 0x7f))
        {
            return Err(ProtoError::BadHeaderValue);
        }
        headers.push((span(h.name.as_bytes()), span(h.value)));
        let name = h.name;
        if name.eq_ignore_ascii_case("host") {
            hosts += 1;
            if !is_host(h.value) {
                return Err(ProtoError::BadHost);
            }
        } else if name.eq_ignore_ascii_case("content-length") {
            if length.is_some() {
                return Err(ProtoError::BadContentLength);
            }
            length = Some(parse_length(h.value)?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            let list = codings.get_or_insert_with(Vec::new);
            let value =
                std::str::from_utf8(h.value).map_err(|_| ProtoError::BadTransferEncoding)?;
            if value.trim().is_empty() {
                return Err(ProtoError::BadTransferEncoding);
            }
            // A coding may carry parameters (`token *( OWS ";" OWS parameter )`); none is
            // defined for chunked and they never change the framing, so only the name counts.
            list.extend(
                value
                    .split(',')
                    .map(|c| {
                        c.split(';')
                            .next()
                            .unwrap_or("")
                            .trim()
                            .to_ascii_lowercase()
                    })
                    .filter(|c| !c.is_empty()),
            );
        } else if name.eq_ignore_ascii_case("connection") {
            for token in h.value.split(|&b| b == b',') {
                let token = token.trim_ascii();
                close |= token.eq_ignore_ascii_case(b"close");
                keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if name.eq_ignore_ascii_case("expect") {
            if h.value.trim_ascii().eq_ignore_ascii_case(b"100-continue") {
                expect_continue = version == Version::Http11;
            } else {
                return Err(ProtoError::BadExpectation);
            }
        }
    }
    if hosts > 1 || (hosts == 0 && version == Version::Http11) {
        return Err(ProtoError::BadHost);
    }
    let framing = match (codings, length) {
        (Some(_), Some(_)) => return Err(ProtoError::LengthAndEncoding),
        (Some(_), None) if version == Version::Http10 => {
            return Err(ProtoError::BadTransferEncoding)
        }
        (Some(list), None) => check_codings(&list)?,
        (None, Some(0)) | (None, None) => Framing::Empty,
        (None, Some(n)) => Framing::Length(n),
    };
    let keep_alive = match version {
        Version::Http11 => !close,
        Version::Http10 => keep_alive && !close,
    };
    let request = Request {
        method: span(method.as_bytes()),
        target: span(target.as_bytes()),
        headers,
        version,
        keep_alive,
        head: head.to_vec(),
        body: Vec::new(),
        trailers: Vec::new(),
    };
    let expect_continue = expect_continue && framing != Framing::Empty;
    Ok(Head {
        request,
        framing,
        expect_continue,
    })
}

/// Maps an `httparse` error to ours; a well-formed but unsupported version gets 505.
fn classify(e: httparse::Error, head: &[u8]) -> ProtoError {
    match e {
        httparse::Error::TooManyHeaders => ProtoError::HeadTooLarge,
        httparse::Error::HeaderName => ProtoError::BadHeaderName,
        httparse::Error::HeaderValue => ProtoError::BadHeaderValue,
        httparse::Error::NewLine => ProtoError::BareLineEnding,
        httparse::Error::Version if is_other_version(head) => ProtoError::UnsupportedVersion,
        _ => ProtoError::BadSyntax,
    }
}

/// Whether the request line ends in a well-formed `HTTP/d.d` that is not 1.0 or 1.1.
fn is_other_version(head: &[u8]) -> bool {
    let line = head.split(|&b| b == b'\r').next().unwrap_or(b"");
    let mut parts = line.split(|&b| b == b' ');
    let (Some(_), Some(_), Some(v), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    matches!(v, [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
        if major.is_ascii_digit() && minor.is_ascii_digit())
}

/// Accepts origin-form, absolute-form (http/https), `*` for OPTIONS, authority-form for CONNECT.
/// The target must be ASCII (RFC 3986: other bytes travel percent-encoded). A fragment is
/// tolerated, as most servers do: it is not part of the grammar, but it cannot change framing.
fn check_target(method: &str, target: &str) -> Result<(), ProtoError> {
    let ok = if method == "CONNECT" {
        // Authority-form, and only it: `host:port` (RFC 9112 section 3.2.3).
        target.rsplit_once(':').is_some_and(|(host, port)| {
            !host.is_empty()
                && is_host(host.as_bytes())
                && !port.is_empty()
                && port.bytes().all(|b| b.is_ascii_digit())
        })
    } else if target.starts_with('/') {
        !target.starts_with("//")
    } else if target == "*" {
        method == "OPTIONS"
    } else {
        let lower = target.get(..8).unwrap_or(target).to_ascii_lowercase();
        lower.starts_with("http://") || lower.starts_with("https://")
    };
    if ok && target.is_ascii() {
        Ok(())
    } else {
        Err(ProtoError::BadSyntax)
    }
}

/// A Host value is `uri-host [ ":" port ]` (RFC 9112 section 3.2: an invalid one is a 400): the
/// bytes of reg-name, IP literals and percent-encoding only. Empty is allowed (no authority).
fn is_host(value: &[u8]) -> bool {
    value.iter().all(|&b| HOST_BYTES[usize::from(b)])
}

/// The bytes [`is_host`] accepts, as a table: every request has a Host, and a byte test per byte
/// is cheaper than a search of the punctuation list.
const HOST_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let punctuation = b"-._~!$&'()*+,;=:[]%";
    let mut i = 0;
    while i < punctuation.len() {
        table[punctuation[i] as usize] = true;
        i += 1;
    }
    let mut b = 0;
    while b < 256 {
        if (b as u8).is_ascii_alphanumeric() {
            table[b] = true;
        }
        b += 1;
    }
    table
};

/// Content-Length is 1*DIGIT: no sign, no list, no spaces inside. A number beyond `u64` is as
/// malformed as a letter (and no body of that size can be accepted anyway).
fn parse_length(value: &[u8]) -> Result<u64, ProtoError> {
    let value = value.trim_ascii();
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return Err(ProtoError::BadContentLength);
    }
    value.iter().try_fold(0u64, |n, d| {
        n.checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(d - b'0')))
            .ok_or(ProtoError::BadContentLength)
    })
}

/// The final coding must be chunked, once; any other coding is one this server does not decode.
fn check_codings(list: &[String]) -> Result<Framing, ProtoError> {
    match list.split_last() {
        Some((last, rest)) if last == "chunked" => {
            // Chunked twice, or a malformed coding: the framing itself is in doubt (400).
            if rest.iter().any(|c| c == "chunked" || !is_token(c)) {
                Err(ProtoError::BadTransferEncoding)
            } else if rest.is_empty() {
                Ok(Framing::Chunked)
            } else {
                Err(ProtoError::UnknownTransferEncoding)
            }
        }
        _ => Err(ProtoError::BadTransferEncoding),
    }
}
