//! Single requests outside the load: reading a server's `/metrics`, waiting until a server
//! answers. A blocking socket with a deadline and the client side of the core's decoder; never
//! used on the hot path.

use common::client::{encode_request, ClientLimits, Event, RequestSpec, ResponseDecoder};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// A whole response: status and body.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

/// One `GET path` on a new connection, answered within `timeout`.
pub fn get(
    addr: SocketAddr,
    authority: &str,
    path: &str,
    timeout: Duration,
) -> Result<Answer, String> {
    let deadline = Instant::now() + timeout;
    let mut stream =
        TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("connect: {e}"))?;
    let _ = stream.set_nodelay(true);
    stream
        .set_write_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let spec = RequestSpec {
        close: true,
        ..RequestSpec::new("GET", path, authority)
    };
    let mut request = Vec::new();
    encode_request(&spec, &mut request).map_err(|e| format!("cannot encode the request: {e}"))?;
    stream
        .write_all(&request)
        .map_err(|e| format!("send: {e}"))?;
    let mut decoder = ResponseDecoder::new(ClientLimits::default());
    let mut input = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let mut status = None;
    let mut body = Vec::new();
    loop {
        // Decode what is buffered before reading more: one read may hold the whole answer.
        let mut pos = 0;
        loop {
            let (used, event) = decoder
                .decode(&input[pos..])
                .map_err(|e| format!("bad response: {}", e.reason()))?;
            pos += used;
            match event {
                None => break,
                Some(Event::Head(head)) if !head.is_interim() => status = Some(head.status),
                Some(Event::Data(data)) => body.extend_from_slice(data),
                Some(Event::End { status: s, .. }) => {
                    return Ok(Answer {
                        status: status.unwrap_or(s),
                        body,
                    })
                }
                Some(_) => {}
            }
        }
        input.drain(..pos);
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("no complete answer within {timeout:?}"));
        }
        stream
            .set_read_timeout(Some(left))
            .map_err(|e| e.to_string())?;
        match stream.read(&mut buf) {
            Ok(0) => {
                return match decoder.decode_eof(&input) {
                    Ok(Some(Event::End { status: s, .. })) => Ok(Answer {
                        status: status.unwrap_or(s),
                        body,
                    }),
                    _ => Err("the server closed before answering".to_string()),
                }
            }
            Ok(n) => input.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            // SO_RCVTIMEO expiring reads as WouldBlock.
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(format!("no complete answer within {timeout:?}"))
            }
            Err(e) => return Err(format!("read: {e}")),
        }
    }
}

/// The counters of zoo's `/metrics` that compare checks its own counts against.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ServerCounters {
    /// `zoo_requests_total`: requests the service answered.
    pub requests: u64,
    /// `zoo_connections_total`: connections accepted.
    pub connections: Option<u64>,
    /// `zoo_shed_total`: connections answered 503 over `--max-connections`, outside the
    /// service (so not in `requests`); each is one response to the client.
    pub shed: Option<u64>,
    /// The server's own cost, from the standard `process_*` series, when it exposes them.
    pub process: Option<ProcessCounters>,
    /// When the answer came.
    pub at: Instant,
}

/// The Prometheus process collector's series a server reports of itself: what compare reads
/// of a target it cannot see in /proc (a container, another host).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProcessCounters {
    /// `process_cpu_seconds_total`: user and system CPU time, in seconds.
    pub cpu_seconds: f64,
    /// `process_resident_memory_bytes`: resident memory, in bytes.
    pub resident_bytes: u64,
}

/// Reads zoo's counters from `/metrics` under `base` (the target's path prefix, "" for none).
pub fn scrape(
    addr: SocketAddr,
    authority: &str,
    base: &str,
    timeout: Duration,
) -> Result<ServerCounters, String> {
    let answer = get(addr, authority, &format!("{base}/metrics"), timeout)?;
    if answer.status != 200 {
        return Err(format!("/metrics answered {}", answer.status));
    }
    let text = String::from_utf8_lossy(&answer.body);
    let requests =
        sample(&text, "zoo_requests_total").ok_or("/metrics has no zoo_requests_total sample")?;
    Ok(ServerCounters {
        requests,
        connections: sample(&text, "zoo_connections_total"),
        shed: sample(&text, "zoo_shed_total"),
        process: process_counters(&text),
        at: Instant::now(),
    })
}

/// The `process_*` series of a scrape; `None` unless both CPU time and resident memory are
/// there.
pub fn process_counters(text: &str) -> Option<ProcessCounters> {
    Some(ProcessCounters {
        cpu_seconds: sample_f64(text, "process_cpu_seconds_total")?,
        resident_bytes: sample(text, "process_resident_memory_bytes")?,
    })
}

/// The value of the sample named `name`, as a finite non-negative number.
pub fn sample_f64(text: &str, name: &str) -> Option<f64> {
    let v: f64 = sample_value(text, name)?.parse().ok()?;
    (v.is_finite() && v >= 0.0).then_some(v)
}

/// The value of the sample named `name` (without labels) in Prometheus text format.
pub fn sample(text: &str, name: &str) -> Option<u64> {
    // A counter is an integer, but the format allows "12" or "12.0" or "1.2e3".
    let value = sample_value(text, name)?;
    value.parse::<u64>().ok().or_else(|| {
        let v: f64 = value.parse().ok()?;
        (v.is_finite() && v >= 0.0).then_some(v as u64)
    })
}

/// The value text of the first sample named exactly `name` (no labels), comments skipped.
fn sample_value<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (key, value) = line.trim().split_once(char::is_whitespace)?;
            (key == name).then(|| value.split_whitespace().next())?
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_found_by_exact_name() {
        let text = "# HELP zoo_requests_total Requests answered by the service.\n\
                    # TYPE zoo_requests_total counter\n\
                    zoo_requests_total_extra 99\n\
                    zoo_requests_total 1234\n\
                    zoo_responses_total{class=\"2xx\"} 1200\n\
                    zoo_connections_total 1.5e1 1700000000\n";
        assert_eq!(sample(text, "zoo_requests_total"), Some(1234));
        assert_eq!(sample(text, "zoo_connections_total"), Some(15));
        assert_eq!(sample(text, "zoo_responses_total"), None, "labelled only");
        assert_eq!(sample(text, "missing"), None);
    }

    #[test]
    fn process_series_need_both_cpu_and_memory() {
        let text = "# TYPE process_cpu_seconds_total counter\n\
                    process_cpu_seconds_total 12.34\n\
                    process_resident_memory_bytes 5.24288e6\n\
                    process_open_fds 9\n";
        let p = process_counters(text).expect("both series");
        assert!((p.cpu_seconds - 12.34).abs() < 1e-9);
        assert_eq!(p.resident_bytes, 5_242_880);
        assert_eq!(process_counters("process_cpu_seconds_total 1\n"), None);
        assert_eq!(
            sample_f64(
                "process_cpu_seconds_total NaN\n",
                "process_cpu_seconds_total"
            ),
            None
        );
    }
}
