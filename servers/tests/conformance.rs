//! Replays the external HTTP/1.1 conformance cases of `../shared/conformance` (llhttp's request
//! cases and the desync-guardian classification cases) against every model, and prints pass/fail
//! per case with totals. The data is read where it lies, never copied in; without it the test says
//! it skips, saying so, except under CI (`CI=true`), where it fails. `make conformance` runs this with the output shown.
//!
//! Judging (the folder's README): a case that must be rejected passes on a 4xx/5xx rejection and a
//! closed connection; a valid case passes on any answer that is not a framing rejection (routing's
//! 404/405 are fine), or on no answer yet with the connection open (it ends mid-message on purpose).
//! HTTP/0.9 lines and other protocols' versions (RTSP, ICE) may get 400 or 505. desync-guardian:
//! `Severe` must get 400 and close; `Compliant` is served, except that codings RFC 9112 no longer
//! has (`identity`) may get 501 or 400; `Acceptable` and `Ambiguous` may be served or rejected with
//! a 4xx/501, and are reported for information.

#[path = "../../common/tests/shared/llhttp.rs"]
mod llhttp;
mod support;

use llhttp::{judgement, with_host, Judgement};
use std::io::Write;
use std::sync::Mutex;
use std::time::Duration;
use support::{read_all, Server};
use yaml_rust2::{Yaml, YamlLoader};

/// Cases that end mid-message hold their connection until a timeout; under prefork each holds a
/// worker, so there are more workers than the 16 clients running cases at once.
const CONFORMANCE_ARGS: [&str; 6] = [
    "--header-timeout",
    "2",
    "--body-timeout",
    "2",
    "--workers",
    "32",
];

/// Statuses that mean "the framing was rejected".
const REJECTIONS: [u16; 8] = [400, 408, 413, 414, 417, 431, 501, 505];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Expect {
    /// Must be rejected and closed.
    Reject,
    /// Must not be rejected.
    Serve,
    /// Must not be rejected, but a 400/501 for a coding RFC 9112 removed is fine.
    ServeOrObsoleteCoding,
    /// Outside HTTP/1.x: served or 400/505 are both right.
    Foreign,
    /// Either outcome is allowed (desync-guardian's Acceptable/Ambiguous): served, or rejected
    /// with a 4xx, 501 or 505.
    Either,
    /// Any outcome is right for an origin server (llhttp's hand-overs to an embedder).
    Any,
    /// The first message is answered, then the connection closes.
    CloseAfterFirst,
}

struct Case {
    source: String,
    title: String,
    raw: Vec<u8>,
    expect: Expect,
    /// Give back up to two trimmed CRLFs while the server waits (see `run_case`).
    restore_crlf: bool,
    /// Go on giving them back once the head is complete (error cases: the error may be in the
    /// body); valid cases stop there, so a body is never corrupted by them.
    restore_in_body: bool,
}

/// The llhttp request cases, judged as the core's own conformance test judges them
/// (`common/tests/shared/llhttp.rs`). Error cases run as given and again with a Host added, so a
/// rejection never rests on the missing Host alone; valid cases run with a Host.
fn llhttp_cases(dir: &std::path::Path) -> Vec<Case> {
    let text = std::fs::read_to_string(dir.join("llhttp/cases.json")).expect("read cases.json");
    let all: Vec<serde_json::Value> = serde_json::from_str(&text).expect("cases.json is JSON");
    let mut cases = Vec::new();
    for c in all.iter().filter(|c| c["type"] == "request") {
        let raw = c["raw"].as_str().unwrap_or_default().as_bytes();
        let title = c["title"].as_str().unwrap_or("?");
        let error = c["error"].as_str().unwrap_or_default();
        let expect_error = c["expect_error"] == true;
        let (expect, error_like) = match judgement(title, expect_error, error, raw) {
            Judgement::Reject => (Expect::Reject, true),
            Judgement::Accept | Judgement::AcceptOrNotImplemented => (Expect::Serve, false),
            Judgement::AcceptOrVersion => (Expect::Foreign, false),
            Judgement::ServeFirstThenClose => (Expect::CloseAfterFirst, true),
            Judgement::Either => (Expect::Any, true),
        };
        let source = format!("llhttp/{}", c["file"].as_str().unwrap_or("?"));
        let mut runs = vec![("with Host", with_host(raw))];
        if error_like {
            runs.insert(0, ("as given", raw.to_vec()));
        }
        for (how, raw) in runs {
            // cases.json trims each block's trailing blank lines; an unfinished head (or, for
            // an error case, body) gets them back, as llhttp's originals have them.
            let head_open = !raw.windows(4).any(|w| w == b"\r\n\r\n");
            cases.push(Case {
                source: source.clone(),
                title: format!("{title} ({how})"),
                raw,
                expect,
                restore_crlf: error_like || head_open,
                restore_in_body: error_like,
            });
        }
    }
    cases
}

fn yaml_text(y: &Yaml) -> String {
    match y {
        Yaml::String(s) => s.clone(),
        Yaml::Integer(i) => i.to_string(),
        Yaml::Real(r) => r.clone(),
        Yaml::Boolean(b) => b.to_string(),
        _ => String::new(),
    }
}

fn desync_cases(dir: &std::path::Path) -> Vec<Case> {
    let mut cases = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(dir.join("desync-guardian"))
        .expect("read desync-guardian")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    for path in files {
        let text = std::fs::read_to_string(&path).expect("read yaml");
        let docs = YamlLoader::load_from_str(&text).expect("parse yaml");
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        for case in docs.iter().filter_map(|d| d.as_vec()).flatten() {
            let tier = yaml_text(&case["expected"]["tier"]);
            let mut head = format!(
                "{} {} {}\r\nHost: conformance\r\n",
                yaml_text(&case["method"]),
                yaml_text(&case["uri"]),
                yaml_text(&case["version"])
            );
            let mut coding_removed = false;
            for h in case["headers"].as_vec().map(Vec::as_slice).unwrap_or(&[]) {
                let (n, v) = (yaml_text(&h["name"]), yaml_text(&h["value"]));
                coding_removed |= n.eq_ignore_ascii_case("transfer-encoding")
                    && v.to_ascii_lowercase().contains("identity");
                head.push_str(&format!("{n}: {v}\r\n"));
            }
            head.push_str("\r\n");
            let expect = match tier.as_str() {
                "Severe" => Expect::Reject,
                // "Empty URI": `GET  HTTP/1.1` has no request-target, which the request line
                // requires (RFC 9112 section 3); a 400 is what an origin server owes it.
                "Compliant" if yaml_text(&case["uri"]).is_empty() => Expect::Either,
                "Compliant" if coding_removed => Expect::ServeOrObsoleteCoding,
                "Compliant" => Expect::Serve,
                _ => Expect::Either,
            };
            cases.push(Case {
                source: format!("desync-guardian/{name} [{tier}]"),
                title: yaml_text(&case["name"]),
                // YAML's \xNN escapes are bytes: send chars up to U+00FF as one byte each.
                raw: head
                    .chars()
                    .map(|c| {
                        if (c as u32) < 256 {
                            c as u32 as u8
                        } else {
                            b'?'
                        }
                    })
                    .collect(),
                expect,
                restore_crlf: false,
                restore_in_body: false,
            });
        }
    }
    cases
}

/// What the server did with one case.
#[derive(Debug)]
struct Outcome {
    /// The first final status.
    status: Option<u16>,
    /// The last final status (after any answered pipelined requests).
    last_status: Option<u16>,
    /// How many final responses came back.
    count: usize,
    closed: bool,
}

fn run_case(server: &Server, case: &Case) -> Outcome {
    let mut s = server.connect();
    let _ = s.write_all(&case.raw);
    let mut ex = read_all(&mut s, Duration::from_millis(300));
    let mut sent = case.raw.clone();
    for _ in 0..2 {
        let head_done = sent.windows(4).any(|w| w == b"\r\n\r\n");
        if !case.restore_crlf || (head_done && !case.restore_in_body) {
            break;
        }
        if ex.closed || !ex.bytes.is_empty() {
            break;
        }
        sent.extend_from_slice(b"\r\n");
        let _ = s.write_all(b"\r\n");
        let more = read_all(&mut s, Duration::from_millis(300));
        ex.bytes.extend_from_slice(&more.bytes);
        ex.closed = more.closed;
    }
    // Status lines only: bodies here are short text that never starts a line with "HTTP/1.1 ".
    let statuses: Vec<u16> = ex
        .bytes
        .windows(12)
        .filter(|w| w.starts_with(b"HTTP/1.1 "))
        .filter_map(|w| std::str::from_utf8(&w[9..12]).ok()?.parse().ok())
        .filter(|&s| s >= 200)
        .collect();
    Outcome {
        status: statuses.first().copied(),
        last_status: statuses.last().copied(),
        count: statuses.len(),
        closed: ex.closed,
    }
}

fn judge(case: &Case, o: &Outcome) -> bool {
    let rejected = o.status.is_some_and(|s| REJECTIONS.contains(&s));
    // Not framing rejections: a body over the server's limit, or a transfer coding it does not
    // implement (RFC 9112 section 6.1 asks for 501 there).
    let limit_or_coding = match o.status {
        Some(413) => true,
        Some(501) => has_other_coding(&case.raw),
        _ => false,
    };
    match case.expect {
        Expect::Reject => o.last_status.is_some_and(|s| s >= 400) && o.closed,
        Expect::CloseAfterFirst => o.closed && o.count == 1 && !rejected,
        Expect::Any => true,
        Expect::Serve => !rejected || limit_or_coding,
        Expect::ServeOrObsoleteCoding => !rejected || matches!(o.status, Some(400 | 501)),
        Expect::Foreign => !rejected || matches!(o.status, Some(400 | 505)),
        Expect::Either => o.status.is_none_or(|s| s < 500 || REJECTIONS.contains(&s)),
    }
}

/// Whether the request names a transfer coding other than chunked.
fn has_other_coding(raw: &[u8]) -> bool {
    let text = String::from_utf8_lossy(raw).to_ascii_lowercase();
    text.lines()
        .filter_map(|l| l.strip_prefix("transfer-encoding:"))
        .flat_map(|v| v.split(','))
        .map(|c| c.split(';').next().unwrap_or("").trim().to_string())
        .any(|c| !c.is_empty() && c != "chunked")
}

#[test]
fn conformance_cases_against_every_model() {
    let Some(dir) = llhttp::conformance_dir() else {
        return;
    };
    let mut cases = llhttp_cases(&dir);
    cases.extend(desync_cases(&dir));
    let mut failures = Vec::new();
    for model in support::models() {
        let Some(server) = Server::start(&model, &CONFORMANCE_ARGS) else {
            continue; // uring, where the kernel refuses io_uring (said why)
        };
        let results = Mutex::new(
            (0..cases.len())
                .map(|_| None)
                .collect::<Vec<Option<Outcome>>>(),
        );
        std::thread::scope(|scope| {
            for worker in 0..16 {
                let (server, cases, results) = (&server, &cases, &results);
                scope.spawn(move || {
                    for i in (worker..cases.len()).step_by(16) {
                        let o = run_case(server, &cases[i]);
                        results.lock().unwrap()[i] = Some(o);
                    }
                });
            }
        });
        let results = results.into_inner().unwrap();
        let mut totals = std::collections::BTreeMap::<String, (u32, u32)>::new();
        for (case, o) in cases.iter().zip(results.iter().flatten()) {
            let pass = judge(case, o);
            let group = case.source.split('/').next().unwrap_or("?").to_string();
            let t = totals.entry(group).or_default();
            if pass {
                t.0 += 1;
            } else {
                t.1 += 1;
                failures.push(format!(
                    "{model}: {} / {}: expected {:?}, got {o:?}",
                    case.source, case.title, case.expect
                ));
            }
            println!(
                "{model:<10} {} {:<45} {:<60} {:?}",
                if pass { "pass" } else { "FAIL" },
                case.source,
                case.title.chars().take(60).collect::<String>(),
                o.status
            );
        }
        for (group, (pass, fail)) in &totals {
            println!("{model}: {group}: {pass} passed, {fail} failed");
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
