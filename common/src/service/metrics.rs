//! `GET /info` (JSON, for people and tests) and `GET /metrics` (the Prometheus text format, for
//! scrapers). Both read the server's [`Counters`](crate::stats::Counters), which under `fork` and
//! `prefork` sit in shared memory, so every process reports the figures of the whole server; the
//! pid and thread in `/info` show which process and thread answered.

use super::ServiceConfig;
use crate::Response;
use std::fmt::{Display, Write};
use std::sync::atomic::Ordering::Relaxed;

/// `GET /info`: who answered, and the server's counters.
pub(super) fn info(config: &ServiceConfig) -> Response {
    let counters = config.counters;
    let thread = std::thread::current();
    let thread = match thread.name() {
        Some(name) => name.to_owned(),
        None => format!("{:?}", thread.id()),
    };
    let body = format!(
        concat!(
            "{{\"model\":{},\"pid\":{},\"thread\":{},\"connections_total\":{},",
            "\"connections_active\":{},\"requests_total\":{},\"per_process_state\":{}}}\n"
        ),
        json_string(&config.model),
        std::process::id(),
        json_string(&thread),
        counters.connections_total.load(Relaxed),
        counters.connections_active.load(Relaxed),
        counters.requests_total.load(Relaxed),
        config.per_process,
    );
    Response::json(200, body)
}

/// `GET /metrics`: the counters in the Prometheus text exposition format (version 0.0.4). The
/// model is a label of `zoo_info` only, as Prometheus recommends for constant facts: a query
/// joins on it when it needs it.
pub(super) fn metrics(config: &ServiceConfig) -> Response {
    let counters = config.counters;
    let mut out = String::with_capacity(1536);
    push_family(
        &mut out,
        "zoo_info",
        "gauge",
        "The model serving; per_process_state is true when kv, counter and sessions are per process.",
    );
    // Writing to a String cannot fail.
    let _ = writeln!(
        out,
        "zoo_info{{model=\"{}\",per_process_state=\"{}\"}} 1",
        label_value(&config.model),
        config.per_process
    );
    let singles: [(&str, &str, &str, &dyn Display); 5] = [
        (
            "zoo_requests_total",
            "counter",
            "Requests answered by the service.",
            &counters.requests_total.load(Relaxed),
        ),
        (
            "zoo_connections_total",
            "counter",
            "Connections accepted since start.",
            &counters.connections_total.load(Relaxed),
        ),
        (
            "zoo_connections_active",
            "gauge",
            "Connections open now.",
            &counters.connections_active.load(Relaxed),
        ),
        (
            "zoo_rejected_total",
            "counter",
            "Requests the protocol core rejected before the service saw them.",
            &counters.rejected_total.load(Relaxed),
        ),
        (
            "zoo_shed_total",
            "counter",
            "Connections refused by load shedding.",
            &counters.shed_total.load(Relaxed),
        ),
    ];
    for (name, kind, help, value) in singles {
        push_family(&mut out, name, kind, help);
        let _ = writeln!(out, "{name} {value}");
    }
    push_family(
        &mut out,
        "zoo_responses_total",
        "counter",
        "Responses sent, by status class.",
    );
    for (class, count) in counters.responses_by_class.iter().enumerate() {
        let class = class + 1;
        let _ = writeln!(
            out,
            "zoo_responses_total{{class=\"{class}xx\"}} {}",
            count.load(Relaxed)
        );
    }
    Response::new(200, out.into_bytes()).with_header("Content-Type", "text/plain; version=0.0.4")
}

fn push_family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// A Prometheus label value: backslash, double quote and newline are escaped.
fn label_value(value: &str) -> String {
    value
        .replace('\\', r"\\")
        .replace('"', r#"\""#)
        .replace('\n', r"\n")
}

/// A JSON string literal, quotes included.
fn json_string(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str(r#"\""#),
            '\\' => out.push_str(r"\\"),
            '\n' => out.push_str(r"\n"),
            '\r' => out.push_str(r"\r"),
            '\t' => out.push_str(r"\t"),
            c if c < ' ' => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped() {
        assert_eq!(json_string("a\"b\\c\n\u{1}é"), r#""a\"b\\c\n\u0001é""#);
        assert_eq!(label_value("a\"b\\c\nd"), r#"a\"b\\c\nd"#);
    }
}
