//! How the llhttp request cases of `../shared/conformance/llhttp/cases.json` are read and judged,
//! shared by the core's conformance test (`common/tests/conformance.rs`, no sockets) and the
//! servers' (`servers/tests/conformance.rs`, every model over a real socket), so both hold every
//! case to the same verdict.

#![allow(dead_code)] // each test binary uses its own part

use std::path::PathBuf;

/// The external conformance data: `../shared/conformance` beside the repository, or the folder
/// `ZOO_CONFORMANCE_DIR` names (a missing one shows what happens without the data). Absent, it
/// fails the test under CI (`CI=true`), where a suite that replays nothing must not pass; outside
/// CI it is `None`, after a line saying the suite skipped and why.
pub fn conformance_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("ZOO_CONFORMANCE_DIR") {
        Some(dir) => PathBuf::from(dir),
        // Both crates sit one level below the repository, so the path is the same from either.
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance"),
    };
    if dir.join("llhttp/cases.json").is_file() {
        return Some(dir);
    }
    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    assert!(
        !ci,
        "the conformance data is missing: {} has no llhttp/cases.json (CI=true, so this fails)",
        dir.display()
    );
    println!(
        "skipped: the conformance data is missing ({} has no llhttp/cases.json); \
         not under CI, so the suite passes without replaying anything",
        dir.display()
    );
    None
}

/// Whether `line` is an HTTP/1.x request line: `token SP target SP HTTP/1.d`.
pub fn is_request_line(line: &[u8]) -> bool {
    let parts: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
    matches!(parts.as_slice(), [method, target, version]
        if !method.is_empty() && !target.is_empty() && version.len() == 8
            && version.starts_with(b"HTTP/1."))
}

/// Adds `Host: example.com` after each request line whose message has no Host.
pub fn with_host(raw: &[u8]) -> Vec<u8> {
    let lines: Vec<&[u8]> = split_crlf(raw);
    let mut out: Vec<u8> = Vec::with_capacity(raw.len() + 40);
    for (i, line) in lines.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(line);
        if is_request_line(line) {
            let has_host = lines[i + 1..]
                .iter()
                .take_while(|l| !l.is_empty())
                .any(|l| l.len() >= 5 && l[..5].eq_ignore_ascii_case(b"host:"));
            if !has_host {
                out.extend_from_slice(b"\r\nHost: example.com");
            }
        }
    }
    out
}

pub fn split_crlf(raw: &[u8]) -> Vec<&[u8]> {
    let mut lines = Vec::new();
    let mut rest = raw;
    while let Some(i) = rest.windows(2).position(|w| w == b"\r\n") {
        lines.push(&rest[..i]);
        rest = &rest[i + 2..];
    }
    lines.push(rest);
    lines
}

/// Whether the first request line names a protocol other than HTTP/1.x (RTSP, ICE) or none
/// (HTTP/0.9): outside HTTP/1.1, where a 400 or 505 is the right answer.
pub fn other_protocol(raw: &[u8]) -> bool {
    let first = split_crlf(raw).into_iter().find(|l| !l.is_empty());
    !first.is_some_and(|l| l.ends_with(b" HTTP/1.0") || l.ends_with(b" HTTP/1.1"))
}

/// Whether a Transfer-Encoding line lists a coding other than chunked.
pub fn lists_other_coding(raw: &[u8]) -> bool {
    split_crlf(raw).into_iter().any(|line| {
        let Some((name, value)) = std::str::from_utf8(line)
            .ok()
            .and_then(|l| l.split_once(':'))
        else {
            return false;
        };
        name.eq_ignore_ascii_case("transfer-encoding")
            && value
                .split(',')
                .map(str::trim)
                .any(|c| !c.is_empty() && !c.eq_ignore_ascii_case("chunked"))
    })
}

/// How a case is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Judgement {
    /// Must end rejected with a 4xx/5xx and closed.
    Reject,
    /// Must not be rejected (a request, or still waiting).
    Accept,
    /// Outside HTTP/1.x: may also be rejected with 400 or 505.
    AcceptOrVersion,
    /// A transfer coding besides chunked: llhttp only frames the body, but a server must decode
    /// what it accepts, and RFC 9112 section 6.1 answers a coding it does not implement with 501.
    /// That is no rejection of the framing, which was understood: 501 is the only other pass.
    AcceptOrNotImplemented,
    /// llhttp flags data after a closing message; an origin server answers the first request,
    /// closes, and never reads the rest: exactly one request served, then closed.
    ServeFirstThenClose,
    /// Either outcome is right for an origin server; only the absence of panics and a well-framed
    /// output are checked.
    Either,
}

pub fn judgement(title: &str, expect_error: bool, error: &str, raw: &[u8]) -> Judgement {
    if expect_error {
        if error.contains("Pause on") {
            // llhttp pauses to hand the connection to its embedder (Upgrade, CONNECT, PRI), which
            // is no parse error. An origin server that implements neither may ignore Upgrade
            // (RFC 9110 section 7.8) and answer CONNECT itself, or reject them.
            return Judgement::Either;
        }
        if error.contains("Data after `Connection: close`") {
            return Judgement::ServeFirstThenClose;
        }
        if title == "Invalid method" || title == "HTTP protocol and ANNOUNCE method" {
            // llhttp only knows a fixed list of methods. RFC 9110 section 9.1 makes a method any
            // token and leaves an unknown one to the origin server (501 or 405): the service's
            // routing answers it, not the framing core.
            return Judgement::Either;
        }
        return Judgement::Reject;
    }
    if title == "M-SEARCH request" {
        // SSDP's `M-SEARCH *` travels over UDP multicast, not HTTP over TCP; RFC 9112 section
        // 3.2.4 allows the asterisk-form for OPTIONS only, and this server rejects it elsewhere.
        return Judgement::AcceptOrVersion;
    }
    if other_protocol(raw) {
        return Judgement::AcceptOrVersion;
    }
    if lists_other_coding(raw) {
        return Judgement::AcceptOrNotImplemented;
    }
    Judgement::Accept
}
