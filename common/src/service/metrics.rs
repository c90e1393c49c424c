//! `GET /info` (JSON, for people and tests) and `GET /metrics` (the Prometheus text format, for
//! scrapers). Both read the server's [`Counters`](crate::stats::Counters), which under `fork` and
//! `prefork` sit in shared memory, so every process reports the figures of the whole server; the
//! pid and thread in `/info` show which process and thread answered.
//!
//! `/metrics` also carries the Prometheus process collector's standard series (`process_*`),
//! so a scraper or `loadtest compare --target` learns what the server costs without seeing its
//! `/proc`. The service reads no `/proc` itself (the core is sans-IO): the server hands it a
//! [`ProcessProbe`] in [`ServiceConfig::process`], and the series are left out without one.

use super::ServiceConfig;
use crate::Response;
use std::fmt::{Display, Write};
use std::sync::atomic::Ordering::Relaxed;

/// What a server's processes have used, as the Prometheus process collector reports it. Under
/// the process models (`fork`, `prefork`) it covers the whole tree: the server's probe sums its
/// processes (servers/src/process.rs says how).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcessSample {
    /// User and system CPU time spent, in seconds (`process_cpu_seconds_total`).
    pub cpu_seconds: f64,
    /// Resident memory, in bytes (`process_resident_memory_bytes`).
    pub resident_bytes: u64,
    /// Virtual memory, in bytes (`process_virtual_memory_bytes`).
    pub virtual_bytes: u64,
    /// Open file descriptors (`process_open_fds`).
    pub open_fds: u64,
    /// The soft limit on open file descriptors (`process_max_fds`).
    pub max_fds: u64,
    /// When the server started, in seconds since the UNIX epoch (`process_start_time_seconds`).
    pub start_time_seconds: f64,
}

/// How the service asks the server for a [`ProcessSample`] at each scrape; `None` when the
/// figures cannot be read right now (the series are then left out of that scrape).
pub type ProcessProbe = fn() -> Option<ProcessSample>;

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
    if let Some(sample) = config.process.and_then(|probe| probe()) {
        push_process(&mut out, &sample);
    }
    Response::new(200, out.into_bytes()).with_header("Content-Type", "text/plain; version=0.0.4")
}

/// The process collector's series, with the names, types and HELP lines of the Prometheus
/// client libraries, so dashboards built for them read these unchanged.
fn push_process(out: &mut String, sample: &ProcessSample) {
    let series: [(&str, &str, &str, &dyn Display); 6] = [
        (
            "process_cpu_seconds_total",
            "counter",
            "Total user and system CPU time spent in seconds.",
            &sample.cpu_seconds,
        ),
        (
            "process_open_fds",
            "gauge",
            "Number of open file descriptors.",
            &sample.open_fds,
        ),
        (
            "process_max_fds",
            "gauge",
            "Maximum number of open file descriptors.",
            &sample.max_fds,
        ),
        (
            "process_virtual_memory_bytes",
            "gauge",
            "Virtual memory size in bytes.",
            &sample.virtual_bytes,
        ),
        (
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
            &sample.resident_bytes,
        ),
        (
            "process_start_time_seconds",
            "gauge",
            "Start time of the process since unix epoch in seconds.",
            &sample.start_time_seconds,
        ),
    ];
    for (name, kind, help, value) in series {
        push_family(out, name, kind, help);
        let _ = writeln!(out, "{name} {value}");
    }
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

    fn config(process: Option<ProcessProbe>) -> ServiceConfig {
        ServiceConfig {
            model: "epoll".to_owned(),
            counters: Box::leak(Box::default()),
            per_process: false,
            debug_routes: false,
            process,
        }
    }

    fn body(config: &ServiceConfig) -> String {
        String::from_utf8(metrics(config).body_bytes()).expect("metrics are text")
    }

    #[test]
    fn process_series_come_from_the_probe() {
        fn probe() -> Option<ProcessSample> {
            Some(ProcessSample {
                cpu_seconds: 1.25,
                resident_bytes: 4096,
                virtual_bytes: 8192,
                open_fds: 7,
                max_fds: 1024,
                start_time_seconds: 1_700_000_000.5,
            })
        }
        let text = body(&config(Some(probe)));
        for line in [
            "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.",
            "# TYPE process_cpu_seconds_total counter",
            "process_cpu_seconds_total 1.25",
            "# TYPE process_resident_memory_bytes gauge",
            "process_resident_memory_bytes 4096",
            "process_virtual_memory_bytes 8192",
            "process_open_fds 7",
            "process_max_fds 1024",
            "# TYPE process_start_time_seconds gauge",
            "process_start_time_seconds 1700000000.5",
        ] {
            assert!(text.lines().any(|l| l == line), "{text} lacks {line}");
        }
    }

    #[test]
    fn process_series_are_left_out_without_a_probe_or_a_sample() {
        fn fails() -> Option<ProcessSample> {
            None
        }
        assert!(!body(&config(None)).contains("\nprocess_"));
        assert!(!body(&config(Some(fails))).contains("\nprocess_"));
    }

    #[test]
    fn strings_are_escaped() {
        assert_eq!(json_string("a\"b\\c\n\u{1}é"), r#""a\"b\\c\n\u0001é""#);
        assert_eq!(label_value("a\"b\\c\nd"), r#"a\"b\\c\nd"#);
    }
}
