//! The request-head parser on raw bytes: `scan_head` to find the head, then `parse_head` on it,
//! under small limits (the first input byte picks them, see `zoo_fuzz::parser_limits`) so every
//! limit is within reach. Checks, beyond never panicking:
//!
//! - `scan_head` gives the same answer on the whole input as when the same bytes arrive one at a
//!   time (it resumes where it stopped, and partial input is never an error);
//! - a head it finds ends in CRLF CRLF and respects the request-line and head limits;
//! - an error's status is one the core documents, and every rejection carries a reason;
//! - a head `parse_head` accepts is one the rest of the server can trust: a method, a target,
//!   at most `max_headers` fields, no control bytes in values, one Host in HTTP/1.1 and no empty
//!   one, no fragment in the target and `*` only for OPTIONS, and framing that agrees with the
//!   Content-Length and Transfer-Encoding fields.

#![no_main]

use common::head::{parse_head, scan_head, Framing, HeadLimits, HeadScan};
use common::{ProtoError, Request, Version};
use libfuzzer_sys::fuzz_target;
use zoo_fuzz::parser_limits;

/// `scan_head` fed a buffer that grows one byte a call, as a trickling client makes it.
fn scan_bytewise(bytes: &[u8], limits: &HeadLimits) -> (Result<Option<usize>, ProtoError>, usize) {
    let mut scan = HeadScan::default();
    for end in 1..=bytes.len() {
        let found = scan_head(&bytes[..end], &mut scan, limits);
        if found != Ok(None) {
            return (found, scan.skipped());
        }
    }
    (Ok(None), scan.skipped())
}

/// The values of the fields called `name`, in order.
fn fields<'r>(req: &'r Request, name: &'r str) -> impl Iterator<Item = &'r [u8]> + 'r {
    req.headers()
        .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

fn check_error(e: ProtoError) {
    assert!(
        matches!(e.status(), 400 | 408 | 413 | 414 | 417 | 431 | 501 | 505),
        "{e:?} has status {}",
        e.status()
    );
    assert!(!e.reason().is_empty(), "{e:?} has no reason");
}

fuzz_target!(|raw: &[u8]| {
    let Some((&selector, bytes)) = raw.split_first() else {
        return;
    };
    let limits = parser_limits(selector);

    let mut scan = HeadScan::default();
    let whole = scan_head(bytes, &mut scan, &limits);
    let skipped = scan.skipped();
    let (bytewise, skipped_bytewise) = scan_bytewise(bytes, &limits);
    assert_eq!(
        whole, bytewise,
        "scan_head differs when the bytes come one at a time"
    );
    if whole.is_ok_and(|end| end.is_some()) {
        assert_eq!(
            skipped, skipped_bytewise,
            "leading empty lines counted differently"
        );
    }

    let end = match whole {
        Err(e) => return check_error(e),
        Ok(None) => return,
        Ok(Some(end)) => end,
    };
    assert!(
        end <= bytes.len() && skipped + 4 <= end,
        "head bounds {skipped}..{end}"
    );
    let head = &bytes[skipped..end];
    assert!(
        head.ends_with(b"\r\n\r\n"),
        "a head that does not end in CRLF CRLF"
    );
    assert!(head.len() <= limits.max_head_bytes, "a head over the limit");
    let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
    assert!(
        line.len() <= limits.max_request_line,
        "a request line over the limit"
    );

    let parsed = match parse_head(head, &limits) {
        Err(e) => return check_error(e),
        Ok(parsed) => parsed,
    };
    let req = &parsed.request;
    assert!(!req.method().is_empty(), "no method");
    assert!(!req.target().is_empty(), "no target");
    assert!(
        req.headers().count() <= limits.max_headers,
        "more fields than the limit"
    );
    for (name, value) in req.headers() {
        assert!(!name.is_empty(), "an empty field name");
        assert!(
            !value.iter().any(|&b| b != b'\t' && (b < 0x20 || b == 0x7f)),
            "a control byte in the value of {name}"
        );
    }
    if req.version() == Version::Http11 {
        assert_eq!(
            fields(req, "host").count(),
            1,
            "HTTP/1.1 without exactly one Host"
        );
    }
    assert!(
        fields(req, "host").all(|h| !h.trim_ascii().is_empty()),
        "an empty Host"
    );
    assert!(!req.target().contains('#'), "a fragment in the target");
    assert!(
        req.target() != "*" || req.method() == "OPTIONS",
        "asterisk-form with a method other than OPTIONS"
    );
    let lengths: Vec<&[u8]> = fields(req, "content-length").collect();
    let chunked = fields(req, "transfer-encoding").next().is_some();
    assert!(lengths.len() <= 1, "Content-Length repeated");
    assert!(
        !chunked || lengths.is_empty(),
        "both Content-Length and Transfer-Encoding"
    );
    let declared = lengths.first().map(|v| {
        let digits = std::str::from_utf8(v).expect("an accepted Content-Length is ASCII");
        digits
            .trim()
            .parse::<u64>()
            .expect("an accepted Content-Length is a number")
    });
    match parsed.framing {
        Framing::Chunked => {
            assert!(chunked, "chunked framing without Transfer-Encoding");
            assert_eq!(
                req.version(),
                Version::Http11,
                "chunked framing in HTTP/1.0"
            );
        }
        Framing::Length(n) => assert_eq!(declared, Some(n), "length framing differs"),
        Framing::Empty => assert!(
            !chunked && declared.unwrap_or(0) == 0,
            "no body although the fields declare one"
        ),
    }
    if parsed.expect_continue {
        assert_ne!(
            parsed.framing,
            Framing::Empty,
            "100-continue for a request with no body"
        );
    }
    let _ = (
        req.path(),
        req.query(),
        req.query_param("a"),
        req.keep_alive(),
    );
});
