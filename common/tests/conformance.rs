//! The llhttp request cases of `../shared/conformance/llhttp/cases.json`, read against the core
//! directly (no socket, no service): a case that llhttp rejects must be rejected with a 4xx/5xx and
//! a close, a valid case must not be rejected (a request or waiting for more input both pass).
//!
//! Two facts about the data shape the runner:
//! - `cases.json` keeps each llhttp block with its trailing blank lines trimmed (compare
//!   `Missing last-chunk` with its block in `transfer-encoding.md`: the final empty line, where
//!   llhttp finds the error, is gone). So while the core still waits for the end of a head, up to
//!   two CRLFs are given back; an error case gets them back in a body too, since its error may
//!   sit there. Without this most heads would never end and "waiting" would pass untested.
//! - Many valid cases have no `Host:`, which HTTP/1.1 requires: one is added after each request
//!   line whose message lacks it. Error cases run as given and again with the Host added, so a
//!   rejection never rests only on the missing Host.
//!
//! Where llhttp's verdict is not an origin server's, the case is judged otherwise, and
//! [`judgement`] says why; the list is kept short.

#[path = "shared/llhttp.rs"]
mod llhttp;
mod support;

use common::{Limits, Want};
use llhttp::{judgement, with_host, Judgement};
use std::time::Duration;
use support::Server;

const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(7);
const BODY_TIMEOUT: Duration = Duration::from_secs(11);

/// Distinct timeouts, so the running deadline tells which phase the connection is in.
fn limits() -> Limits {
    Limits {
        header_timeout: HEADER_TIMEOUT,
        keep_alive_timeout: KEEP_ALIVE_TIMEOUT,
        body_timeout: BODY_TIMEOUT,
        ..Limits::default()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for a request, nothing begun.
    Idle,
    /// A head is arriving.
    Head,
    /// A body is arriving.
    Body,
    /// Closed or closing.
    Closed,
}

fn phase(s: &Server) -> Phase {
    if s.want() == Want::Close {
        return Phase::Closed;
    }
    assert_eq!(
        s.want(),
        Want::Read,
        "the driver answered and wrote everything"
    );
    if s.conn.is_idle() {
        return Phase::Idle;
    }
    match s.conn.poll_timeout().map(|t| t - s.now) {
        Some(HEADER_TIMEOUT) => Phase::Head,
        Some(BODY_TIMEOUT) => Phase::Body,
        other => panic!("unexpected deadline {other:?}"),
    }
}

/// What became of one input.
#[derive(Debug)]
struct Outcome {
    served: usize,
    /// Status of the rejection, if the core rejected the input.
    rejected: Option<u16>,
    phase: Phase,
}

/// Feeds `input`, then gives back trimmed CRLFs while the core waits in one of `restore`.
fn run(input: &[u8], restore: &[Phase]) -> Outcome {
    let mut s = Server::new(limits());
    s.read(input);
    for _ in 0..2 {
        if !restore.contains(&phase(&s)) {
            break;
        }
        s.read(b"\r\n");
    }
    // The client can parse everything written: a rejection never breaks the framing.
    let resps = s.responses();
    let rejected = s.rejection().map(|e| e.status());
    if let Some(status) = rejected {
        assert_eq!(resps.last().map(|r| r.status), Some(status));
        assert!(resps.last().is_some_and(|r| r.closes()));
    }
    Outcome {
        served: s.seen.len(),
        rejected,
        phase: phase(&s),
    }
}

/// Checks one case; `Err` says what went wrong.
fn check(title: &str, raw: &[u8], judgement: Judgement) -> Result<(), String> {
    let is_error = matches!(
        judgement,
        Judgement::Reject | Judgement::ServeFirstThenClose | Judgement::Either
    );
    let runs: Vec<(&str, Vec<u8>)> = if is_error {
        vec![("as given", raw.to_vec()), ("with Host", with_host(raw))]
    } else {
        vec![("with Host", with_host(raw))]
    };
    let restore: &[Phase] = if is_error {
        &[Phase::Head, Phase::Body]
    } else {
        &[Phase::Head]
    };
    for (how, input) in runs {
        let out = run(&input, restore);
        let fail = |why: &str| Err(format!("{title} ({how}): {why}: {out:?}"));
        match judgement {
            Judgement::Reject => {
                if !out.rejected.is_some_and(|s| (400..600).contains(&s)) {
                    return fail("not rejected");
                }
                if out.phase != Phase::Closed {
                    return fail("not closed");
                }
            }
            Judgement::Accept => {
                if out.rejected.is_some() {
                    return fail("rejected");
                }
            }
            Judgement::AcceptOrNotImplemented => {
                if out.rejected.is_some_and(|s| s != 501) {
                    return fail("rejected with a status other than 501");
                }
            }
            Judgement::AcceptOrVersion => {
                if out.rejected.is_some_and(|s| s != 400 && s != 505) {
                    return fail("rejected with a status other than 400 or 505");
                }
            }
            Judgement::ServeFirstThenClose => {
                if out.served != 1 || out.rejected.is_some() || out.phase != Phase::Closed {
                    return fail("not served once then closed");
                }
            }
            Judgement::Either => {}
        }
    }
    Ok(())
}

#[test]
fn llhttp_request_cases() {
    let Some(dir) = llhttp::conformance_dir() else {
        return;
    };
    let path = dir.join("llhttp/cases.json");
    let text = std::fs::read_to_string(&path).expect("read llhttp/cases.json");
    let cases: serde_json::Value = serde_json::from_str(&text).expect("cases.json is JSON");
    let cases = cases.as_array().expect("cases.json is a list");
    let mut failures = Vec::new();
    let mut counts = std::collections::BTreeMap::new();
    for case in cases {
        if case["type"] != "request" {
            continue;
        }
        let title = case["title"].as_str().unwrap_or("?");
        let raw = case["raw"].as_str().unwrap_or("").as_bytes();
        let expect_error = case["expect_error"].as_bool().unwrap_or(false);
        let error = case["error"].as_str().unwrap_or("");
        let judgement = judgement(title, expect_error, error, raw);
        *counts.entry(format!("{judgement:?}")).or_insert(0) += 1;
        if let Err(why) = check(title, raw, judgement) {
            failures.push(why);
        }
    }
    let total: usize = counts.values().sum();
    println!("llhttp request cases: {total}, by judgement: {counts:?}");
    for failure in &failures {
        println!("FAIL {failure}");
    }
    println!("passed {} of {total}", total - failures.len());
    assert!(
        failures.is_empty(),
        "{} failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn host_is_added_after_each_request_line() {
    let raw = b"POST /a HTTP/1.1\r\nContent-Length: 1\r\n\r\nx\r\nGET /b HTTP/1.1\r\nhost: h\r\n\r\nGET /c HTTP/1.0\r\nX: y";
    let expected = b"POST /a HTTP/1.1\r\nHost: example.com\r\nContent-Length: 1\r\n\r\nx\r\nGET /b HTTP/1.1\r\nhost: h\r\n\r\nGET /c HTTP/1.0\r\nHost: example.com\r\nX: y";
    assert_eq!(with_host(raw), expected.to_vec());
    assert_eq!(
        with_host(b"GET /\r\n"),
        b"GET /\r\n".to_vec(),
        "no version, no Host"
    );
}
