//! Measuring one cell (a target, a scenario, a variant).
//!
//! Every cell follows the same steps: read the server's request counter (`/metrics`), start
//! sampling its process tree once the warm-up is over, run the load(s) in this process with
//! [`run::measure`], stop sampling, read the counter again. c10k opens its idle connections
//! and slowloris its slow clients before the counter is read, so that the server's count and
//! the client's cover the same requests; both close them before the second read.
//!
//! The anatomy of the requests ([`anatomy`](crate::compare::anatomy)) is counted over the
//! warm-up of the load, from just before its first connection opens (a thread per connection
//! pays its `clone` then, and that belongs to the anatomy too) to the end of the warm-up, with
//! the server's counter read at both ends: perf's own cost then stays out of the figures
//! measured after it.

use super::*;
use crate::compare::anatomy::WarmUp;
use crate::compare::crowds;
use crate::compare::probe;
use crate::compare::results::{
    Cell, CellAnatomy, FigureSource, Headline, LoadResult, MetricsCheck, ServerFigures, Status,
};
use crate::compare::sampling::{Measured, Samplers, Usage};
use crate::run::{self, Load, Tick};
use common::client::{encode_request, Framing, RequestSpec};
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;

/// Where a cell's load goes.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The name in the tables.
    pub name: String,
    /// The server's address.
    pub addr: SocketAddr,
    /// The `Host` header.
    pub authority: String,
    /// A path prefix of a `--target` URL ("" for none).
    pub base: String,
    /// The root of the server's process tree, when it runs here.
    pub pid: Option<u32>,
    /// Whether it is zoo (it has `/metrics`).
    pub zoo: bool,
    /// The root of the reverse proxy's process tree, when the load goes through one
    /// (`--behind`): `addr` is then the proxy's.
    pub proxy_pid: Option<u32>,
}

impl Endpoint {
    /// The URL of `path` on this endpoint.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}{path}", self.authority, self.base)
    }

    /// `path` under the endpoint's prefix.
    pub fn path(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// The progress display's view of a cell.
pub type OnTick<'a> = &'a mut dyn FnMut(Tick);

/// Runs one cell and returns it with every figure, or failed with the reason.
pub fn run_cell(
    scenario: Scenario,
    variant: &str,
    connections: usize,
    ep: &Endpoint,
    s: &Settings,
    interrupted: &AtomicBool,
    on_tick: OnTick<'_>,
) -> Cell {
    let mut cell = Cell::empty(
        ep.name.clone(),
        scenario,
        variant.to_string(),
        connections,
        Status::Ok,
        scenario.ideal_rps(),
    );
    let outcome = match scenario.crowd() {
        Some(Crowd::Idle) => crowds::run_c10k(&mut cell, ep, s, interrupted, on_tick),
        Some(Crowd::Slow) => crowds::run_slowloris(&mut cell, ep, s, interrupted, on_tick),
        None => {
            let loads = plain_loads(scenario, variant, connections, ep, s);
            loads.and_then(|loads| measure_cell(&mut cell, ep, s, loads, interrupted, on_tick))
        }
    };
    if let Err(reason) = outcome {
        cell.status = Status::Failed;
        cell.reason = Some(reason);
        return cell;
    }
    judge(&mut cell);
    cell
}

/// The loads of the scenarios that are nothing but loads.
pub fn plain_loads(
    scenario: Scenario,
    variant: &str,
    connections: usize,
    ep: &Endpoint,
    s: &Settings,
) -> Result<Vec<(&'static str, Load)>, String> {
    let get = |path: &str, conns: usize, close: bool, timeout: u64| {
        load(ep, s, "GET", path, &[], conns, close, timeout)
    };
    Ok(match scenario {
        Scenario::Plaintext => vec![("main", get("/plaintext", connections, false, 5)?)],
        Scenario::Json => vec![("main", get("/json", connections, false, 5)?)],
        Scenario::Pipelined => {
            let mut pipelined = get("/plaintext", connections, false, 5)?;
            pipelined.pipeline = PIPELINE_DEPTH;
            vec![("main", pipelined)]
        }
        Scenario::IoWait => vec![(
            "main",
            get(&format!("/sleep?ms={SLEEP_MS}"), connections, false, 10)?,
        )],
        Scenario::BlockingCall => vec![(
            "main",
            get(&format!("/block?ms={BLOCK_MS}"), connections, false, 10)?,
        )],
        Scenario::CpuMix => {
            let offload = if variant == "offload" {
                "&offload=1"
            } else {
                ""
            };
            vec![
                ("main", get("/plaintext", connections, false, 10)?),
                (
                    "cpu",
                    get(
                        &format!("/cpu?n={CPU_UNITS}{offload}"),
                        CPU_CONNECTIONS,
                        false,
                        10,
                    )?,
                ),
            ]
        }
        Scenario::Churn => vec![("main", get("/plaintext", connections, true, 5)?)],
        Scenario::Upload => {
            let body: Vec<u8> = (0..UPLOAD_BYTES).map(|i| b'a' + (i % 26) as u8).collect();
            let mut upload = load(ep, s, "POST", "/echo", &body, connections, false, 5)?;
            if variant == "chunked" {
                upload.request = chunked_request(&ep.path("/echo"), &ep.authority, &body)?;
            }
            vec![("main", upload)]
        }
        Scenario::C10k | Scenario::Slowloris => {
            return Err(format!("{} is not a plain load", scenario.name()))
        }
    })
}

/// A closed-loop load of `connections` on `path`, with the cell's duration and warm-up.
#[allow(clippy::too_many_arguments)]
pub fn load(
    ep: &Endpoint,
    s: &Settings,
    method: &str,
    path: &str,
    body: &[u8],
    connections: usize,
    close: bool,
    timeout_s: u64,
) -> Result<Load, String> {
    let target = ep.path(path);
    let spec = RequestSpec {
        body,
        close,
        ..RequestSpec::new(method, &target, &ep.authority)
    };
    let mut request = Vec::new();
    encode_request(&spec, &mut request).map_err(|e| format!("cannot encode the request: {e}"))?;
    Ok(Load {
        url: ep.url(path),
        addr: ep.addr,
        method: method.to_string(),
        request,
        connections,
        threads: s.threads.min(connections).max(1),
        duration: Some(s.duration),
        requests: None,
        rate: None,
        pipeline: 1,
        close,
        timeout: Duration::from_secs(timeout_s),
        warmup: s.warmup,
    })
}

/// `POST target` with `body` sent in chunks of [`UPLOAD_CHUNK`] bytes.
pub fn chunked_request(target: &str, authority: &str, body: &[u8]) -> Result<Vec<u8>, String> {
    let spec = RequestSpec {
        headers: &[("Content-Type", "application/octet-stream")],
        body,
        framing: Framing::Chunked(UPLOAD_CHUNK),
        ..RequestSpec::new("POST", target, authority)
    };
    let mut request = Vec::new();
    encode_request(&spec, &mut request).map_err(|e| format!("cannot encode the request: {e}"))?;
    Ok(request)
}

/// The standard cell: counter, sampler, loads, sampler, counter.
pub fn measure_cell(
    cell: &mut Cell,
    ep: &Endpoint,
    s: &Settings,
    loads: Vec<(&'static str, Load)>,
    interrupted: &AtomicBool,
    on_tick: OnTick<'_>,
) -> Result<(), String> {
    let before = scrape(ep);
    let counting = start_anatomy(ep, s);
    let sampler = Samplers::start(ep.pid, ep.proxy_pid, s.warmup, s.sample_period);
    let measured = run_loads(loads, interrupted, on_tick);
    let usage = sampler.finish();
    let results = match measured {
        Ok(results) => results,
        Err(e) => {
            // perf is stopped either way: it must not outlive the cell.
            counting.map(WarmUp::finish);
            return Err(e);
        }
    };
    let after = scrape(ep);
    finish_cell(cell, ep, results, usage, before, after, counting.as_ref());
    put_anatomy(cell, counting);
    Ok(())
}

/// Starts counting a cell's anatomy over its warm-up ([`WarmUp`]), where it is counted: on a
/// server compare started (so its pid is known), unless `--no-anatomy` turned it off. Called
/// just before the cell's loads start.
pub fn start_anatomy(ep: &Endpoint, s: &Settings) -> Option<WarmUp> {
    if !s.anatomy {
        return None;
    }
    let pid = ep.pid?;
    let ep = ep.clone();
    Some(WarmUp::start(pid, s.warmup, move || {
        scrape(&ep).and_then(Result::ok).map(|c| c.requests)
    }))
}

/// Puts the counts in a finished cell, per request over what the server counted through
/// `/metrics` over the same span, else over the responses the client received in its warm-up.
pub fn put_anatomy(cell: &mut Cell, counted: Option<WarmUp>) {
    let Some((counts, server)) = counted.map(WarmUp::finish) else {
        return;
    };
    let (requests, from) = match server {
        Some(n) => (n, "server"),
        None => (
            cell.loads.iter().map(|l| l.report.warmup_requests).sum(),
            "client",
        ),
    };
    cell.anatomy = Some(CellAnatomy::new(counts, requests, from));
}

/// Runs the loads at the same time (the first on this thread, with the progress display), and
/// returns their reports in order.
pub fn run_loads(
    loads: Vec<(&'static str, Load)>,
    interrupted: &AtomicBool,
    on_tick: OnTick<'_>,
) -> Result<Vec<LoadResult>, String> {
    let mut loads = loads.into_iter();
    let Some((role, first)) = loads.next() else {
        return Ok(Vec::new());
    };
    let rest: Vec<(&str, Load)> = loads.collect();
    std::thread::scope(|scope| {
        let others: Vec<_> = rest
            .iter()
            .map(|(role, load)| {
                scope.spawn(move || {
                    run::measure(load, None, interrupted, &mut |_| {})
                        .map(|report| LoadResult {
                            role: role.to_string(),
                            report,
                        })
                        .map_err(|e| e.to_string())
                })
            })
            .collect();
        let main = run::measure(&first, None, interrupted, on_tick)
            .map(|report| LoadResult {
                role: role.to_string(),
                report,
            })
            .map_err(|e| e.to_string());
        let mut all = vec![main];
        for handle in others {
            all.push(
                handle
                    .join()
                    .unwrap_or_else(|_| Err("a load thread panicked".to_string())),
            );
        }
        all.into_iter().collect()
    })
}

pub fn scrape(ep: &Endpoint) -> Option<Result<probe::ServerCounters, String>> {
    ep.zoo
        .then(|| probe::scrape(ep.addr, &ep.authority, &ep.base, SCRAPE_TIMEOUT))
}

/// Fills in the figures of a measured cell.
pub fn finish_cell(
    cell: &mut Cell,
    ep: &Endpoint,
    loads: Vec<LoadResult>,
    usage: Measured,
    before: Option<Result<probe::ServerCounters, String>>,
    after: Option<Result<probe::ServerCounters, String>>,
    counting: Option<&WarmUp>,
) {
    let measured: u64 = loads.iter().map(|l| l.report.requests).sum();
    let client_responses: u64 = loads
        .iter()
        .map(|l| l.report.requests + l.report.warmup_requests)
        .sum();
    let client_errors: u64 = loads
        .iter()
        .map(|l| l.report.errors.total + l.report.warmup_errors)
        .sum();
    cell.headline = loads.first().map(|l| headline(&l.report));
    let figures = |usage: Usage, count: u64, source| ServerFigures {
        cpu_us_per_request: (count > 0).then(|| usage.cpu_s * 1e6 / count as f64),
        usage,
        source,
    };
    // Sampled here when the server runs here; else its own process series, read with the
    // counters before and after the whole cell, so over every response, warm-up included.
    let own = match (&usage.server, &before, &after) {
        (Some(u), _, _) => Some(figures(u.clone(), measured, FigureSource::Proc)),
        (None, Some(Ok(b)), Some(Ok(a))) => match (&b.process, &a.process) {
            (Some(pb), Some(pa)) => Usage::between(pb, pa, a.at.duration_since(b.at))
                .map(|u| figures(u, client_responses, FigureSource::ProcessSeries)),
            _ => None,
        },
        _ => None,
    };
    cell.proxy = usage
        .proxy
        .map(|u| figures(u, measured, FigureSource::Proc));
    cell.server = match (own, &cell.proxy) {
        (Some(own), Some(proxy)) => Some(ServerFigures {
            usage: own.usage.plus(&proxy.usage),
            cpu_us_per_request: own
                .cpu_us_per_request
                .zip(proxy.cpu_us_per_request)
                .map(|(a, b)| a + b),
            source: own.source,
        }),
        (own, _) => own,
    };
    // A running target is not ours alone: its orchestrator's health checks (docker's
    // HEALTHCHECK hits /healthz) are counted too. Allow one such request per second of the cell.
    // The anatomy's own reads of the counter are requests too.
    let own = counting.map_or(0, WarmUp::reads);
    let others = match ep.pid {
        Some(_) => own,
        None => {
            loads
                .iter()
                .map(|l| l.report.duration_s)
                .fold(0.0, f64::max)
                .ceil() as u64
                + 1
                + own
        }
    };
    cell.metrics = match (before, after) {
        (Some(before), Some(after)) => Some(check_counts_with(
            client_responses,
            client_errors,
            others,
            before,
            after,
        )),
        _ if !ep.zoo => None,
        _ => Some(check_counts(
            client_responses,
            client_errors,
            Err("not read".to_string()),
            Err("not read".to_string()),
        )),
    };
    cell.loads = loads;
}

/// The server's request count between two scrapes against the client's responses. The second
/// scrape counts itself (zoo counts a request as the service takes it), hence the one.
pub fn check_counts(
    client_responses: u64,
    client_errors: u64,
    before: Result<probe::ServerCounters, String>,
    after: Result<probe::ServerCounters, String>,
) -> MetricsCheck {
    check_counts_with(client_responses, client_errors, 0, before, after)
}

/// [`check_counts`], tolerating up to `others` requests from other clients of the server.
pub fn check_counts_with(
    client_responses: u64,
    client_errors: u64,
    others: u64,
    before: Result<probe::ServerCounters, String>,
    after: Result<probe::ServerCounters, String>,
) -> MetricsCheck {
    let mut check = MetricsCheck {
        client_responses,
        client_errors,
        server_before: before.as_ref().ok().map(|c| c.requests),
        server_after: after.as_ref().ok().map(|c| c.requests),
        server_requests: None,
        server_shed: None,
        agrees: None,
        note: None,
    };
    match (before, after) {
        (Ok(b), Ok(a)) => {
            let Some(server) = a.requests.checked_sub(b.requests + 1) else {
                check.note = Some(format!(
                    "the counter went from {} to {}: the server restarted?",
                    b.requests, a.requests
                ));
                check.agrees = Some(false);
                return check;
            };
            check.server_requests = Some(server);
            let shed = match (b.shed, a.shed) {
                (Some(b), Some(a)) => a.saturating_sub(b),
                _ => 0,
            };
            check.server_shed = Some(shed);
            // A request the client gave up on may still have been answered by the server.
            let answered = server + shed;
            let most = client_responses + client_errors + others;
            let agrees = (client_responses..=most).contains(&answered);
            check.agrees = Some(agrees);
            if agrees && answered > client_responses + client_errors {
                check.note = Some(format!(
                    "{} requests from other clients (health checks) counted by the server",
                    answered - client_responses - client_errors
                ));
            }
            if !agrees {
                check.note = Some(format!(
                    "the server counted {server} requests and {shed} shed connections, the \
                     client {client_responses} responses and {client_errors} errors"
                ));
            }
        }
        (Err(e), _) | (_, Err(e)) => check.note = Some(format!("/metrics: {e}")),
    }
    check
}

pub fn headline(r: &crate::report::RunReport) -> Headline {
    let ok = r.responses.success;
    let attempts = r.requests + r.errors.total;
    Headline {
        requests: r.requests,
        requests_per_s: r.requests_per_s,
        p50_us: r.latency.percentiles.p50,
        p99_us: r.latency.percentiles.p99,
        p99_9_us: r.latency.percentiles.p99_9,
        errors: r.errors.total,
        non_2xx: r.requests - ok,
        success_rate: if attempts > 0 {
            ok as f64 / attempts as f64
        } else {
            0.0
        },
    }
}

/// Marks a measured cell failed when too few of its requests succeeded, and says why.
pub fn judge(cell: &mut Cell) {
    let mut problems = Vec::new();
    let mut failed = false;
    for l in &cell.loads {
        let r = &l.report;
        let attempts = r.requests + r.errors.total;
        let bad = r.errors.total + (r.requests - r.responses.success);
        if bad == 0 {
            continue;
        }
        let e = &r.errors;
        let mut kinds: Vec<String> = [
            ("connect", e.connect),
            ("read", e.read),
            ("write", e.write),
            ("timeout", e.timeout),
            ("parse", e.parse),
        ]
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| format!("{n} {k}"))
        .collect();
        let s = &r.responses;
        for (class, n) in [
            ("1xx", s.informational),
            ("3xx", s.redirection),
            ("4xx", s.client_error),
            ("5xx", s.server_error),
        ] {
            if n > 0 {
                kinds.push(format!("{n} answered {class}"));
            }
        }
        let share = if attempts > 0 {
            bad as f64 / attempts as f64
        } else {
            1.0
        };
        failed |= r.requests == 0 || share > FAILURE_THRESHOLD;
        let who = if l.role == "main" {
            String::new()
        } else {
            format!("{} load: ", l.role)
        };
        problems.push(format!(
            "{who}{bad} of {attempts} requests failed ({:.1}%: {})",
            share * 100.0,
            kinds.join(", ")
        ));
    }
    if cell.loads.iter().all(|l| l.report.requests == 0) {
        failed = true;
        problems.push("no responses".to_string());
    }
    if failed {
        cell.status = Status::Failed;
    }
    if !problems.is_empty() {
        let mut reason = problems.join("; ");
        if let Some(old) = cell.reason.take() {
            reason = format!("{old}; {reason}");
        }
        cell.reason = Some(reason);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::probe::ServerCounters;

    fn settings() -> Settings {
        test_settings()
    }

    fn counted(requests: u64) -> Result<ServerCounters, String> {
        Ok(ServerCounters {
            requests,
            connections: None,
            shed: None,
            process: None,
            at: std::time::Instant::now(),
        })
    }

    #[test]
    fn a_shared_target_may_count_a_few_requests_from_others() {
        // Two health checks during the cell: fine against a target, not against our own server.
        let c = check_counts_with(50, 0, 3, counted(100), counted(153));
        assert_eq!(c.agrees, Some(true));
        assert!(c
            .note
            .is_some_and(|n| n.starts_with("2 requests from other clients")));
        let c = check_counts_with(50, 0, 3, counted(100), counted(155));
        assert_eq!(c.agrees, Some(false));
    }

    #[test]
    fn counts_agree_when_the_server_saw_what_the_client_got() {
        // 100 before; the load's 50 and the second scrape itself make 151.
        let c = check_counts(50, 0, counted(100), counted(151));
        assert_eq!((c.server_requests, c.agrees), (Some(50), Some(true)));
        let c = check_counts(50, 0, counted(100), counted(152));
        assert_eq!(c.agrees, Some(false));
        assert!(c.note.is_some());
        // Two timeouts: the server may have answered them after the client gave up.
        let c = check_counts(50, 2, counted(100), counted(153));
        assert_eq!(c.agrees, Some(true));
        let c = check_counts(50, 0, Err("refused".into()), counted(153));
        assert_eq!(c.agrees, None);
        let c = check_counts(50, 0, counted(100), counted(3));
        assert_eq!(c.agrees, Some(false), "a restart is a disagreement");
        // Ten connections shed with a 503: answers the client got, outside the service.
        let shed = |requests, shed| {
            Ok(ServerCounters {
                requests,
                connections: None,
                shed: Some(shed),
                process: None,
                at: std::time::Instant::now(),
            })
        };
        let c = check_counts(50, 0, shed(100, 5), shed(141, 15));
        assert_eq!((c.server_requests, c.server_shed), (Some(40), Some(10)));
        assert_eq!(c.agrees, Some(true));
    }

    #[test]
    fn chunked_uploads_are_sent_in_upload_chunks() {
        let body = vec![b'x'; UPLOAD_CHUNK + 3];
        let req = chunked_request("/echo", "h:1", &body).expect("valid request");
        let text = String::from_utf8_lossy(&req);
        assert!(text.starts_with("POST /echo HTTP/1.1\r\nHost: h:1\r\n"));
        assert!(text.contains("Transfer-Encoding: chunked\r\n\r\n2000\r\n"));
        assert!(text.ends_with("\r\n3\r\nxxx\r\n0\r\n\r\n"));
    }

    #[test]
    fn only_pipelined_keeps_many_requests_in_flight() {
        let ep = Endpoint {
            name: "zoo".to_string(),
            addr: "127.0.0.1:8080".parse().expect("valid address"),
            authority: "127.0.0.1:8080".to_string(),
            base: String::new(),
            pid: None,
            zoo: true,
            proxy_pid: None,
        };
        let s = settings();
        let depth = |scenario| {
            let loads = plain_loads(scenario, "c=64", 64, &ep, &s).expect("a plain load");
            assert_eq!(loads.len(), 1);
            let (_, load) = &loads[0];
            assert!(load.request.starts_with(b"GET /plaintext HTTP/1.1\r\n"));
            assert!(!load.close);
            load.pipeline
        };
        assert_eq!(depth(Scenario::Plaintext), 1);
        assert_eq!(depth(Scenario::Pipelined), PIPELINE_DEPTH);
    }
}
