//! Output: the wrk-like summary on the terminal, and the JSON document of `--json`.
//!
//! The JSON schema is `zoo-loadtest/1`; `loadtest/README.md` documents every field. It only
//! grows: fields are never renamed or removed without a new schema name. Times are in the unit
//! their name says (`_s`, `_us`); latencies are microseconds.

use crate::format::{format_bytes, format_us, trim_float};
use crate::stats::{ErrorKind, LATE_NS};
use base64::Engine as _;
use hdrhistogram::serialization::{Serializer as _, V2DeflateSerializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// The schema name every document carries.
pub const SCHEMA: &str = "zoo-loadtest/1";

/// The whole result of a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunReport {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// The target URL.
    pub url: String,
    /// The options the run used.
    pub config: Config,
    /// Length of the measured part, in seconds.
    pub duration_s: f64,
    /// Complete responses, any status.
    pub requests: u64,
    /// `requests / duration_s`.
    pub requests_per_s: f64,
    /// Bytes read from the sockets.
    pub bytes_read: u64,
    /// `bytes_read / duration_s`.
    pub bytes_per_s: f64,
    /// Requests written, retries included.
    pub sent: u64,
    /// Requests sent again because the server closed before reading them.
    pub retried: u64,
    /// Responses to warm-up requests, which no other figure counts.
    #[serde(default)]
    pub warmup_requests: u64,
    /// Warm-up requests that failed once sent, which no other figure counts.
    #[serde(default)]
    pub warmup_errors: u64,
    /// Responses by status class.
    pub responses: StatusClasses,
    /// Failed requests by kind.
    pub errors: Errors,
    /// Whether `latency` counts from the intended send time (open loop).
    pub latency_corrected: bool,
    /// Latency; corrected for coordinated omission in open loop.
    pub latency: Latency,
    /// Service time from the actual send; open loop only (in closed loop it is `latency`).
    pub service_time: Option<Latency>,
    /// Open-loop schedule figures, or null in closed loop.
    pub open_loop: Option<OpenLoop>,
    /// One entry per second of the measured part.
    pub intervals: Vec<IntervalOut>,
    /// The generator's own cost.
    pub generator: Generator,
    /// Self-check findings; empty when the generator was not in the way.
    pub warnings: Vec<String>,
}

/// The options of a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    /// Request method.
    pub method: String,
    /// Connections over all threads.
    pub connections: usize,
    /// Generator threads.
    pub threads: usize,
    /// Measured duration (`-d`), or null with `-n`.
    pub duration_s: Option<f64>,
    /// Measured requests (`-n`), or null with `-d`.
    pub requests: Option<u64>,
    /// Open-loop rate in requests per second, or null in closed loop.
    pub rate: Option<f64>,
    /// Requests in flight per connection.
    pub pipeline: usize,
    /// A new connection per request.
    pub close: bool,
    /// Connect and response timeout.
    pub timeout_s: f64,
    /// Warm-up before measuring.
    pub warmup_s: f64,
}

/// Responses by status class.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusClasses {
    /// 1xx (only 101 ends a response).
    #[serde(rename = "1xx")]
    pub informational: u64,
    /// 2xx.
    #[serde(rename = "2xx")]
    pub success: u64,
    /// 3xx.
    #[serde(rename = "3xx")]
    pub redirection: u64,
    /// 4xx.
    #[serde(rename = "4xx")]
    pub client_error: u64,
    /// 5xx.
    #[serde(rename = "5xx")]
    pub server_error: u64,
}

impl StatusClasses {
    /// From counters in 1xx..5xx order.
    pub fn new(c: [u64; 5]) -> StatusClasses {
        StatusClasses {
            informational: c[0],
            success: c[1],
            redirection: c[2],
            client_error: c[3],
            server_error: c[4],
        }
    }
}

/// Failed requests by kind; see [`ErrorKind`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Errors {
    /// The connection could not be established.
    pub connect: u64,
    /// Read failed, or the server closed mid-response or before answering.
    pub read: u64,
    /// Write failed.
    pub write: u64,
    /// No connection or no complete response within the timeout.
    pub timeout: u64,
    /// Invalid HTTP/1.1, or a response to nothing.
    pub parse: u64,
    /// All of the above.
    pub total: u64,
}

impl Errors {
    /// From counters indexed by `ErrorKind as usize`.
    pub fn new(e: [u64; 5]) -> Errors {
        let at = |k: ErrorKind| e[k as usize];
        Errors {
            connect: at(ErrorKind::Connect),
            read: at(ErrorKind::Read),
            write: at(ErrorKind::Write),
            timeout: at(ErrorKind::Timeout),
            parse: at(ErrorKind::Parse),
            total: e.iter().sum(),
        }
    }
}

/// A latency distribution, in microseconds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Latency {
    /// Always `"us"`.
    pub unit: String,
    /// Values recorded.
    pub count: u64,
    /// Smallest value.
    pub min: u64,
    /// Arithmetic mean.
    pub mean: f64,
    /// Standard deviation.
    pub stdev: f64,
    /// Largest value (to the histogram's precision).
    pub max: u64,
    /// The fixed percentiles.
    pub percentiles: Percentiles,
    /// The percentile spectrum (HdrHistogram's, five steps per halving of the tail).
    pub spectrum: Vec<SpectrumPoint>,
    /// The whole histogram: base64 of its V2 compressed encoding, as in an interval log line.
    pub histogram: String,
}

/// The fixed percentiles, in microseconds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Percentiles {
    /// Median.
    #[serde(rename = "50")]
    pub p50: u64,
    /// 90th.
    #[serde(rename = "90")]
    pub p90: u64,
    /// 99th.
    #[serde(rename = "99")]
    pub p99: u64,
    /// 99.9th.
    #[serde(rename = "99.9")]
    pub p99_9: u64,
    /// 99.99th.
    #[serde(rename = "99.99")]
    pub p99_99: u64,
}

/// One point of the spectrum.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SpectrumPoint {
    /// Quantile, 0-1.
    pub quantile: f64,
    /// Value at that quantile, in microseconds.
    pub value_us: u64,
    /// Values recorded up to this point.
    pub count: u64,
}

impl Latency {
    /// Summarises `h`.
    pub fn of(h: &Histogram<u64>) -> Latency {
        let q = |q: f64| h.value_at_quantile(q);
        let mut encoded = Vec::new();
        // Serialising into a Vec cannot fail for an in-bounds histogram.
        let histogram = match V2DeflateSerializer::new().serialize(h, &mut encoded) {
            Ok(_) => base64::engine::general_purpose::STANDARD.encode(&encoded),
            Err(_) => String::new(),
        };
        let spectrum = if h.is_empty() {
            Vec::new()
        } else {
            h.iter_quantiles(5)
                .map(|v| SpectrumPoint {
                    quantile: v.quantile_iterated_to(),
                    value_us: h.highest_equivalent(v.value_iterated_to()),
                    count: v.count_since_last_iteration(),
                })
                .scan(0, |total, mut p| {
                    *total += p.count;
                    p.count = *total;
                    Some(p)
                })
                .collect()
        };
        Latency {
            unit: "us".to_string(),
            count: h.len(),
            min: h.min(),
            mean: h.mean(),
            stdev: h.stdev(),
            max: h.max(),
            percentiles: Percentiles {
                p50: q(0.5),
                p90: q(0.9),
                p99: q(0.99),
                p99_9: q(0.999),
                p99_99: q(0.9999),
            },
            spectrum,
            histogram,
        }
    }
}

/// Open-loop figures.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OpenLoop {
    /// The asked rate, requests per second.
    pub rate: f64,
    /// `requests / duration_s`, to compare with `rate`.
    pub achieved_rate: f64,
    /// Measured requests sent.
    pub sent: u64,
    /// Sends later than `late_threshold_us` after their intended time.
    pub late_sends: u64,
    /// The lateness from which a send counts as late.
    pub late_threshold_us: u64,
    /// The largest delay between an intended and an actual send.
    pub max_lag_us: u64,
}

/// One second of the measured part.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IntervalOut {
    /// Seconds since the end of the warm-up.
    pub second: u64,
    /// Length in seconds (the last one may be shorter).
    pub length_s: f64,
    /// Responses completed in it.
    pub requests: u64,
    /// `requests / length_s`.
    pub requests_per_s: f64,
    /// Requests that failed in it.
    pub errors: u64,
    /// Bytes read in it.
    pub bytes: u64,
    /// 99th percentile latency of its responses, or null if none.
    pub p99_us: Option<u64>,
}

/// The generator's own cost.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Generator {
    /// CPU time of the whole process in user space.
    pub cpu_user_s: f64,
    /// CPU time of the whole process in the kernel.
    pub cpu_system_s: f64,
    /// Process CPU time per response, in microseconds.
    pub cpu_us_per_request: f64,
    /// Each generator thread.
    pub threads: Vec<ThreadOut>,
}

/// One generator thread's cost.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ThreadOut {
    /// Index.
    pub thread: usize,
    /// CPU time it used.
    pub cpu_s: f64,
    /// Wall time it ran.
    pub wall_s: f64,
    /// `cpu_s / wall_s`: near 1 means the thread was the bottleneck.
    pub busy: f64,
}

/// The percentile rows of one distribution, wrk style.
pub fn percentile_lines(label: &str, l: &Latency) -> String {
    let p = &l.percentiles;
    let cells = [
        ("p50", p.p50),
        ("p90", p.p90),
        ("p99", p.p99),
        ("p99.9", p.p99_9),
        ("p99.99", p.p99_99),
        ("max", l.max),
    ];
    if l.count == 0 {
        return format!("  {label:<12}no responses\n");
    }
    let mut head = format!("  {label:<12}");
    let mut row = format!("  {:<12}", "");
    for (name, v) in cells {
        let _ = write!(head, "{name:>10}");
        let _ = write!(row, "{:>10}", format_us(v));
    }
    format!("{head}\n{row}\n")
}

/// The terminal summary.
pub fn summary(r: &RunReport, show_intervals: bool) -> String {
    let c = &r.config;
    let mut out = String::new();
    let span = match (c.duration_s, c.requests) {
        (Some(d), _) => format!("{}s", trim_float(d)),
        (None, Some(n)) => format!("{n}-request"),
        (None, None) => "interrupted".to_string(),
    };
    let _ = writeln!(out, "Running {span} test @ {}", r.url);
    let mode = match c.rate {
        Some(rate) => format!("open loop at {} req/s", trim_float(rate)),
        None => "closed loop".to_string(),
    };
    let conn_mode = if c.close {
        "new connection per request".to_string()
    } else if c.pipeline > 1 {
        format!("keep-alive, pipeline {}", c.pipeline)
    } else {
        "keep-alive".to_string()
    };
    let _ = writeln!(
        out,
        "  {} threads and {} connections, {mode}, {conn_mode}{}",
        c.threads,
        c.connections,
        if c.warmup_s > 0.0 {
            format!(", {}s warm-up excluded", trim_float(c.warmup_s))
        } else {
            String::new()
        }
    );
    match &r.service_time {
        Some(service) => {
            out += &percentile_lines("Latency", &r.latency);
            let _ = writeln!(
                out,
                "    (corrected: from each request's intended send time)"
            );
            out += &percentile_lines("Service", service);
            let _ = writeln!(out, "    (from the actual send)");
        }
        None => out += &percentile_lines("Latency", &r.latency),
    }
    let _ = writeln!(
        out,
        "  {} requests in {:.2}s, {} read",
        r.requests,
        r.duration_s,
        format_bytes(r.bytes_read as f64)
    );
    let s = &r.responses;
    let classes = [
        ("1xx", s.informational),
        ("2xx", s.success),
        ("3xx", s.redirection),
        ("4xx", s.client_error),
        ("5xx", s.server_error),
    ];
    let shown: Vec<String> = classes
        .iter()
        .filter(|(name, n)| *n > 0 || *name == "2xx")
        .map(|(name, n)| format!("{name} {n}"))
        .collect();
    let _ = writeln!(out, "  Responses: {}", shown.join(", "));
    let e = &r.errors;
    if e.total == 0 {
        let _ = writeln!(out, "  Errors: none");
    } else {
        let _ = writeln!(
            out,
            "  Errors: connect {}, read {}, write {}, timeout {}, parse {}",
            e.connect, e.read, e.write, e.timeout, e.parse
        );
    }
    if r.retried > 0 {
        let _ = writeln!(out, "  Retried after a server close: {}", r.retried);
    }
    if let Some(o) = &r.open_loop {
        let _ = writeln!(
            out,
            "  Schedule: {} sent, {} late (>{}), max lag {}",
            o.sent,
            o.late_sends,
            format_us(LATE_NS / 1000),
            format_us(o.max_lag_us)
        );
    }
    if show_intervals {
        let _ = writeln!(
            out,
            "  {:>6} {:>12} {:>8} {:>10}",
            "second", "req/s", "errors", "p99"
        );
        for iv in &r.intervals {
            let _ = writeln!(
                out,
                "  {:>6} {:>12.1} {:>8} {:>10}",
                iv.second,
                iv.requests_per_s,
                iv.errors,
                iv.p99_us.map_or("-".to_string(), format_us)
            );
        }
    }
    let _ = writeln!(out, "Requests/sec: {:>12.2}", r.requests_per_s);
    let _ = writeln!(out, "Transfer/sec: {:>12}", format_bytes(r.bytes_per_s));
    let g = &r.generator;
    let busiest = g.threads.iter().map(|t| t.busy).fold(0.0, f64::max);
    let _ = writeln!(
        out,
        "Generator CPU: {:.2}s user + {:.2}s sys, {:.2}us/request, busiest thread {:.0}%",
        g.cpu_user_s,
        g.cpu_system_s,
        g.cpu_us_per_request,
        busiest * 100.0
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::new_histogram;

    #[test]
    fn latency_summary_keeps_the_whole_histogram() {
        let mut h = new_histogram();
        for v in 1..=1000u64 {
            h.record(v).expect("in bounds");
        }
        let l = Latency::of(&h);
        assert_eq!(l.count, 1000);
        assert_eq!(l.percentiles.p50, 500);
        assert_eq!(l.percentiles.p99, 990);
        let last = l.spectrum.last().expect("non-empty spectrum");
        assert_eq!(last.count, 1000);
        assert_eq!(last.quantile, 1.0);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&l.histogram)
            .expect("valid base64");
        let back: Histogram<u64> = hdrhistogram::serialization::Deserializer::new()
            .deserialize(&mut &bytes[..])
            .expect("valid V2 histogram");
        assert_eq!(back, h);
    }
}
