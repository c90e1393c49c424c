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
        limit_crossed(buf, eol, scan, limits)?;
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
                // `limit_crossed` above has already refused a line over the limit.
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
    limit_crossed(buf, scan.scanned, scan, limits)?;
    Ok(None)
}

/// Whether the first `len` bytes of `buf` cross a limit; when both are crossed, the one crossed
/// first answers, as it would have with the bytes arriving one at a time.
fn limit_crossed(
    buf: &[u8],
    len: usize,
    scan: &HeadScan,
    limits: &HeadLimits,
) -> Result<(), ProtoError> {
    // The first buffer length at which each limit is exceeded.
    let line_at = (!scan.line_done).then(|| scan.line_start + limits.max_request_line + 1);
    let head_at = scan.skipped + limits.max_head_bytes + 1;
    match line_at {
        Some(line_at) if line_at <= len && line_at <= head_at => {
            Err(overlong_line(&buf[scan.line_start..line_at]))
        }
        _ if head_at <= len => Err(ProtoError::HeadTooLarge),
        _ => Ok(()),
    }
}

/// What a request line cut at its limit is: 414 is about the target, so it needs the method's SP
/// to have come; a method still running is 501 (RFC 9112 section 3: longer than any this server
/// implements), or 400 once a byte shows it is no token at all. Only the bytes up to the limit
/// are looked at, so the verdict does not depend on how they arrive.
fn overlong_line(line: &[u8]) -> ProtoError {
    match line.iter().position(|&b| !is_tchar(b)) {
        None => ProtoError::MethodTooLong,
        Some(i) if line[i] == b' ' && i > 0 => ProtoError::RequestLineTooLong,
        Some(_) => ProtoError::BadSyntax,
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
            // Even beside an absolute-form target, which it does not name (RFC 9112 3.2.2).
            if !is_authority(h.value, false) {
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

/// The request-target forms of RFC 9112 section 3.2, each with the methods that may use it:
/// origin-form (`/path?query`) and absolute-form (`http://authority/path?query`, its authority
/// checked as a Host value is) for every method but CONNECT, asterisk-form (`*`) for OPTIONS
/// only, authority-form (`host:port`) for CONNECT only. The target must be ASCII (RFC 3986: other
/// bytes travel percent-encoded) and hold no `#`: a fragment is the client's business, it is no
/// part of any form, and a client never sends one.
fn check_target(method: &str, target: &str) -> Result<(), ProtoError> {
    let bytes = target.as_bytes();
    let form_ok = if method == "CONNECT" {
        is_authority(bytes, true)
    } else if bytes.first() == Some(&b'/') {
        bytes.get(1) != Some(&b'/')
    } else if bytes == b"*" {
        method == "OPTIONS"
    } else {
        split_absolute(target)
            .is_some_and(|(authority, _)| is_authority(authority.as_bytes(), false))
    };
    if form_ok && bytes.iter().all(|&b| b < 0x80 && b != b'#') {
        Ok(())
    } else {
        Err(ProtoError::BadTarget)
    }
}

/// An absolute-form target (`http://` or `https://`, in any case) split into its authority and
/// the rest, path then query (either may be empty); `None` for any other target.
pub(crate) fn split_absolute(target: &str) -> Option<(&str, &str)> {
    let scheme = if target.get(..7)?.eq_ignore_ascii_case("http://") {
        7
    } else if target.get(..8)?.eq_ignore_ascii_case("https://") {
        8
    } else {
        return None;
    };
    let rest = &target[scheme..];
    Some(rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len())))
}

/// `uri-host [ ":" port ]` (RFC 3986 section 3.2), the value of Host and the authority of the
/// other target forms: an IP literal in brackets, or a non-empty reg-name or IPv4 address, then
/// a port of digits (required when `need_port`, as CONNECT's authority-form has it). An empty
/// host is invalid for `http` (RFC 9110 section 4.2.1), and so is userinfo, which RFC 9110
/// section 4.2.4 has a recipient treat as an error.
fn is_authority(value: &[u8], need_port: bool) -> bool {
    let host_end = if value.first() == Some(&b'[') {
        match value.iter().position(|&b| b == b']') {
            Some(close) if close > 1 && is_host_text(&value[1..close], true) => close + 1,
            _ => return false,
        }
    } else {
        let end = value.iter().position(|&b| b == b':').unwrap_or(value.len());
        if end == 0 || !is_host_text(&value[..end], false) {
            return false;
        }
        end
    };
    match &value[host_end..] {
        [] => !need_port,
        [b':', port @ ..] => !(need_port && port.is_empty()) && port.iter().all(u8::is_ascii_digit),
        _ => false,
    }
}

/// Unreserved, sub-delims and percent-encoded bytes (a reg-name, an IPv4 address), and colons
/// too inside an IP literal's brackets (IPv6, IPvFuture, a zone as `%25`).
fn is_host_text(text: &[u8], literal: bool) -> bool {
    let mut i = 0;
    while let Some(&b) = text.get(i) {
        i += match b {
            b'%' if text
                .get(i + 1..i + 3)
                .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) =>
            {
                3
            }
            b':' if literal => 1,
            _ if REG_NAME[usize::from(b)] => 1,
            _ => return false,
        };
    }
    true
}

/// The bytes of a reg-name but `%`, as a table: every request has a Host, and a byte test per
/// byte is cheaper than a search of the punctuation list.
const REG_NAME: [bool; 256] = {
    let mut table = [false; 256];
    let punctuation = b"-._~!$&'()*+,;=";
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
