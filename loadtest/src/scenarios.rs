//! The scenarios of `compare`: what each loads, what it shows, its variants, and how one cell
//! (a target, a scenario, a variant) is measured.
//!
//! Every cell follows the same steps: read the server's request counter (`/metrics`), start
//! sampling its process tree once the warm-up is over, run the load(s) in this process with
//! [`run::measure`], stop sampling, read the counter again. c10k opens its idle connections
//! and slowloris its slow clients before the counter is read, so that the server's count and
//! the client's cover the same requests; both close them before the second read.

use crate::idle::IdleCrowd;
use crate::markdown::thousands;
use crate::probe;
use crate::results::{
    Cell, Headline, IdleFigures, LoadResult, MetricsCheck, ScenarioInfo, ServerFigures, Status,
};
use crate::run::{self, Load, Tick};
use crate::sampling::{self, Sampler};
use crate::slowloris::Slowloris;
use common::client::{encode_request, Framing, RequestSpec};
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

/// A cell fails when more than this fraction of its requests failed or had a non-2xx answer.
pub const FAILURE_THRESHOLD: f64 = 0.01;
/// How long a read of `/metrics` may take.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(5);
/// io-wait: the wait of each request, and the connections waiting.
const SLEEP_MS: u64 = 20;
const SLEEP_CONNECTIONS: usize = 1000;
/// blocking-call: the blocking sleep inside the handler, and the connections.
const BLOCK_MS: u64 = 10;
const BLOCK_CONNECTIONS: usize = 64;
/// cpu-mix: units of work per CPU-heavy request (~1.4 ns each: about 3 ms) and its connections,
/// beside this many connections of cheap requests.
const CPU_UNITS: u64 = 2_000_000;
const CPU_CONNECTIONS: usize = 4;
const CHEAP_CONNECTIONS: usize = 64;
/// churn: connections, each used for one request.
const CHURN_CONNECTIONS: usize = 32;
/// c10k: connections of the active load beside the idle ones.
const ACTIVE_CONNECTIONS: usize = 64;
/// slowloris: milliseconds between two bytes of a slow client, and the normal client's rate
/// (requests per second, each on a new connection) over this many connection slots.
const TRICKLE_MS: u64 = 300;
const NORMAL_RATE: f64 = 100.0;
const NORMAL_SLOTS: usize = 10;
/// upload: body size, chunk size of the chunked variant, connections.
const UPLOAD_BYTES: usize = 64 * 1024;
const UPLOAD_CHUNK: usize = 8 * 1024;
const UPLOAD_CONNECTIONS: usize = 16;
/// pipelined: requests in flight on each connection (TechEmpower's plaintext test sends 16).
const PIPELINE_DEPTH: usize = 16;

/// The scenarios, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// `GET /plaintext` over a concurrency sweep.
    Plaintext,
    /// `GET /json` over a concurrency sweep.
    Json,
    /// `GET /plaintext` over the same sweep, 16 requests in flight per connection.
    Pipelined,
    /// `GET /sleep?ms=20` on a thousand connections.
    IoWait,
    /// `GET /block?ms=10`: a blocking call inside the handler.
    BlockingCall,
    /// CPU-heavy requests beside cheap ones, inline and offloaded.
    CpuMix,
    /// A new connection per request.
    Churn,
    /// Thousands of idle keep-alive connections beside an active load.
    C10k,
    /// Slow clients trickling their heads beside a normal client.
    Slowloris,
    /// 64 KiB request bodies, Content-Length and chunked.
    Upload,
}

impl Scenario {
    /// Every scenario, in order.
    pub const ALL: [Scenario; 10] = [
        Scenario::Plaintext,
        Scenario::Json,
        Scenario::Pipelined,
        Scenario::IoWait,
        Scenario::BlockingCall,
        Scenario::CpuMix,
        Scenario::Churn,
        Scenario::C10k,
        Scenario::Slowloris,
        Scenario::Upload,
    ];

    /// The name on the command line and in the report.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Plaintext => "plaintext",
            Scenario::Json => "json",
            Scenario::Pipelined => "pipelined",
            Scenario::IoWait => "io-wait",
            Scenario::BlockingCall => "blocking-call",
            Scenario::CpuMix => "cpu-mix",
            Scenario::Churn => "churn",
            Scenario::C10k => "c10k",
            Scenario::Slowloris => "slowloris",
            Scenario::Upload => "upload",
        }
    }

    /// The scenario called `name`.
    pub fn parse(name: &str) -> Option<Scenario> {
        Scenario::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Whether nginx can serve it (static answers only): the baseline runs these.
    pub fn baseline_applies(self) -> bool {
        matches!(
            self,
            Scenario::Plaintext
                | Scenario::Json
                | Scenario::Pipelined
                | Scenario::Churn
                | Scenario::C10k
                | Scenario::Slowloris
        )
    }

    /// Extra zoo arguments for this scenario's server.
    pub fn server_args(self) -> Vec<String> {
        match self {
            // Above --max-connections zoo sheds with 503, and an idle connection must outlive
            // the opening of the others and the active load.
            Scenario::C10k => ["--max-connections", "20000", "--keep-alive-timeout", "120"]
                .map(String::from)
                .to_vec(),
            _ => Vec::new(),
        }
    }

    /// What the report says about it.
    pub fn info(self, s: &Settings) -> ScenarioInfo {
        let (load, shows) = match self {
            Scenario::Plaintext => (
                format!(
                    "`GET /plaintext` (13 bytes) over keep-alive connections, closed loop, at {} \
                     connections",
                    list(&s.concurrency)
                ),
                "the cost of the model itself: the handler does nothing, so throughput and \
                 latency are the accept, read, parse, write and scheduling of each model, and \
                 how they hold up as connections grow"
                    .to_string(),
            ),
            Scenario::Json => (
                format!(
                    "`GET /json` over keep-alive connections, closed loop, at {} connections",
                    list(&s.concurrency)
                ),
                "the same as plaintext with a JSON body: a second look at the per-request cost"
                    .to_string(),
            ),
            Scenario::Pipelined => (
                format!(
                    "`GET /plaintext` over keep-alive connections, each keeping \
                     {PIPELINE_DEPTH} requests in flight (HTTP/1.1 pipelining, as in \
                     TechEmpower's plaintext test), at {} connections",
                    list(&s.concurrency)
                ),
                "whether a server answers a batch of pipelined requests with one write or \
                 with a write per answer: the generator's cost per request falls a lot under \
                 pipelining, so here the server, not the generator, sets the rate"
                    .to_string(),
            ),
            Scenario::IoWait => (
                format!(
                    "`GET /sleep?ms={SLEEP_MS}` on {SLEEP_CONNECTIONS} connections: every \
                     request waits {SLEEP_MS} ms for a simulated downstream"
                ),
                format!(
                    "how many waits a model can hold at once: if every connection waits in \
                     parallel the ideal is {SLEEP_CONNECTIONS} / {SLEEP_MS} ms = {} req/s; a \
                     model that ties a thread to each wait is capped by its threads",
                    thousands(ideal(SLEEP_CONNECTIONS, SLEEP_MS))
                ),
            ),
            Scenario::BlockingCall => (
                format!(
                    "`GET /block?ms={BLOCK_MS}` on {BLOCK_CONNECTIONS} connections: the handler \
                     calls a blocking sleep"
                ),
                format!(
                    "what one blocking call does to each model: threads absorb it (ideal \
                     {} req/s), an event loop stops for it, serving one request per \
                     {BLOCK_MS} ms per loop thread",
                    thousands(ideal(BLOCK_CONNECTIONS, BLOCK_MS))
                ),
            ),
            Scenario::CpuMix => (
                format!(
                    "{CPU_CONNECTIONS} connections on `/cpu?n={CPU_UNITS}` (about 3 ms of CPU \
                     each) beside {CHEAP_CONNECTIONS} on `/plaintext`; `inline` computes in \
                     the handler, `offload` adds `&offload=1` (the shared rayon pool)"
                ),
                "whether CPU-heavy requests hold up cheap ones: the figures are the cheap \
                 requests' (their p99 above all); the heavy requests' rate is beside them"
                    .to_string(),
            ),
            Scenario::Churn => (
                format!(
                    "`GET /plaintext` with `Connection: close` on {CHURN_CONNECTIONS} \
                     connections: a new TCP connection for every request"
                ),
                "the cost of accepting and setting up a connection (a thread, a process, a \
                 task) when nothing is reused; latency includes the handshake"
                    .to_string(),
            ),
            Scenario::C10k => (
                format!(
                    "{} idle keep-alive connections (each made one request), then \
                     `GET /plaintext` on {ACTIVE_CONNECTIONS} more",
                    s.idle
                ),
                "what an idle connection costs (server memory per connection) and whether the \
                 active clients still get fast answers beside thousands of idle ones"
                    .to_string(),
            ),
            Scenario::Slowloris => (
                format!(
                    "{} slow clients each send a request line, then one header byte every \
                     {TRICKLE_MS} ms, never finishing; beside them a normal client asks \
                     `GET /plaintext` {NORMAL_RATE:.0} times a second, each on a new connection",
                    s.slow_clients
                ),
                "whether slow clients can starve a server: the figures are the normal \
                 client's, its success rate first (a model that gives each connection a worker \
                 until its head is in runs out of workers)"
                    .to_string(),
            ),
            Scenario::Upload => (
                format!(
                    "`POST /echo` with a {} KiB body on {UPLOAD_CONNECTIONS} connections, sent \
                     with Content-Length, or chunked in {} KiB chunks; the body comes back",
                    UPLOAD_BYTES / 1024,
                    UPLOAD_CHUNK / 1024
                ),
                "request bodies: reading and framing 64 KiB in and out per request".to_string(),
            ),
        };
        ScenarioInfo {
            name: self.name().to_string(),
            load,
            shows,
        }
    }

    /// The cells of this scenario: a label and the main load's connections.
    pub fn variants(self, s: &Settings) -> Vec<(String, usize)> {
        match self {
            Scenario::Plaintext | Scenario::Json | Scenario::Pipelined => s
                .concurrency
                .iter()
                .map(|&c| (format!("c={c}"), c))
                .collect(),
            Scenario::IoWait => vec![(format!("c={SLEEP_CONNECTIONS}"), SLEEP_CONNECTIONS)],
            Scenario::BlockingCall => vec![(format!("c={BLOCK_CONNECTIONS}"), BLOCK_CONNECTIONS)],
            Scenario::CpuMix => vec![
                ("inline".to_string(), CHEAP_CONNECTIONS),
                ("offload".to_string(), CHEAP_CONNECTIONS),
            ],
            Scenario::Churn => vec![(format!("c={CHURN_CONNECTIONS}"), CHURN_CONNECTIONS)],
            Scenario::C10k => vec![(format!("idle={}", s.idle), ACTIVE_CONNECTIONS)],
            Scenario::Slowloris => vec![(format!("slow={}", s.slow_clients), NORMAL_SLOTS)],
            Scenario::Upload => vec![
                ("content-length".to_string(), UPLOAD_CONNECTIONS),
                ("chunked".to_string(), UPLOAD_CONNECTIONS),
            ],
        }
    }

    /// About how long a cell takes, for the time-left estimate.
    pub fn estimate(self, s: &Settings) -> Duration {
        let base = s.warmup + s.duration + Duration::from_millis(150);
        match self {
            Scenario::C10k => base + Duration::from_micros(150 * s.idle as u64),
            Scenario::Slowloris => base + Duration::from_millis(300),
            _ => base,
        }
    }

    /// The requests/s if every connection's wait ran in parallel (io-wait, blocking-call).
    pub fn ideal_rps(self) -> Option<f64> {
        match self {
            Scenario::IoWait => Some(ideal(SLEEP_CONNECTIONS, SLEEP_MS)),
            Scenario::BlockingCall => Some(ideal(BLOCK_CONNECTIONS, BLOCK_MS)),
            _ => None,
        }
    }
}

fn ideal(connections: usize, ms: u64) -> f64 {
    connections as f64 * 1000.0 / ms as f64
}

fn list(values: &[usize]) -> String {
    let items: Vec<String> = values.iter().map(usize::to_string).collect();
    items.join(", ")
}

/// What every cell of a comparison shares.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Measured time of a load.
    pub duration: Duration,
    /// Warm-up before it, in the same run.
    pub warmup: Duration,
    /// Generator threads per load (at most its connections).
    pub threads: usize,
    /// The sweep of plaintext, json and pipelined.
    pub concurrency: Vec<usize>,
    /// c10k's idle connections.
    pub idle: usize,
    /// slowloris' slow clients.
    pub slow_clients: usize,
    /// How often the server's process tree is sampled.
    pub sample_period: Duration,
}

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
}

impl Endpoint {
    fn url(&self, path: &str) -> String {
        format!("http://{}{}{path}", self.authority, self.base)
    }

    fn path(&self, path: &str) -> String {
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
        scenario.name(),
        variant.to_string(),
        connections,
        Status::Ok,
        scenario.ideal_rps(),
    );
    let outcome = match scenario {
        Scenario::C10k => run_c10k(&mut cell, ep, s, interrupted, on_tick),
        Scenario::Slowloris => run_slowloris(&mut cell, ep, s, interrupted, on_tick),
        _ => {
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
fn plain_loads(
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
fn load(
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
fn measure_cell(
    cell: &mut Cell,
    ep: &Endpoint,
    s: &Settings,
    loads: Vec<(&'static str, Load)>,
    interrupted: &AtomicBool,
    on_tick: OnTick<'_>,
) -> Result<(), String> {
    let before = scrape(ep);
    let sampler = ep
        .pid
        .map(|pid| Sampler::start(pid, s.warmup, s.sample_period));
    let measured = run_loads(loads, interrupted, on_tick);
    let usage = sampler.and_then(Sampler::finish);
    let results = measured?;
    let after = scrape(ep);
    finish_cell(cell, ep, results, usage, before, after);
    Ok(())
}

/// Runs the loads at the same time (the first on this thread, with the progress display), and
/// returns their reports in order.
fn run_loads(
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

fn scrape(ep: &Endpoint) -> Option<Result<probe::ServerCounters, String>> {
    ep.zoo
        .then(|| probe::scrape(ep.addr, &ep.authority, &ep.base, SCRAPE_TIMEOUT))
}

/// Fills in the figures of a measured cell.
fn finish_cell(
    cell: &mut Cell,
    ep: &Endpoint,
    loads: Vec<LoadResult>,
    usage: Option<sampling::Usage>,
    before: Option<Result<probe::ServerCounters, String>>,
    after: Option<Result<probe::ServerCounters, String>>,
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
    cell.server = usage.map(|usage| ServerFigures {
        cpu_us_per_request: (measured > 0).then(|| usage.cpu_s * 1e6 / measured as f64),
        usage,
    });
    // A running target is not ours alone: its orchestrator's health checks (docker's
    // HEALTHCHECK hits /healthz) are counted too. Allow one such request per second of the cell.
    let others = match ep.pid {
        Some(_) => 0,
        None => {
            loads
                .iter()
                .map(|l| l.report.duration_s)
                .fold(0.0, f64::max)
                .ceil() as u64
                + 1
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

fn headline(r: &crate::report::RunReport) -> Headline {
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
fn judge(cell: &mut Cell) {
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

/// c10k: open the idle crowd, measure the active load beside it, count what survived.
fn run_c10k(
    cell: &mut Cell,
    ep: &Endpoint,
    s: &Settings,
    interrupted: &AtomicBool,
    on_tick: OnTick<'_>,
) -> Result<(), String> {
    let rss = |pid: Option<u32>| pid.and_then(sampling::sample_tree);
    let pss = |pid: Option<u32>| pid.and_then(sampling::pss_tree);
    let before = rss(ep.pid);
    let pss_before = pss(ep.pid);
    // Ten thousand connects at 256 in flight take a second or two; a model that holds them up
    // gets a generous bound before it counts as failed.
    let deadline = Duration::from_secs(10) + Duration::from_millis(3 * s.idle as u64);
    let mut crowd = IdleCrowd::open(
        ep.addr,
        &ep.authority,
        &ep.path("/plaintext"),
        s.idle,
        Duration::from_secs(5),
        deadline,
        interrupted,
    )
    .map_err(|e| format!("opening the idle connections: {e}"))?;
    // The kernel frees and the server settles its per-connection state shortly after the
    // last answer; measure memory when it has.
    std::thread::sleep(Duration::from_millis(200));
    let with_idle = rss(ep.pid);
    let pss_with_idle = pss(ep.pid);
    let opened = crowd.stats().clone();
    let idle = opened.idle;
    let loads = vec![(
        "main",
        load(
            ep,
            s,
            "GET",
            "/plaintext",
            &[],
            ACTIVE_CONNECTIONS,
            false,
            5,
        )?,
    )];
    let counters_before = scrape(ep);
    let sampler = ep
        .pid
        .map(|pid| Sampler::start(pid, s.warmup, s.sample_period));
    let measured = run_loads(loads, interrupted, on_tick);
    let usage = sampler.and_then(Sampler::finish);
    let still_open = crowd.still_open();
    drop(crowd);
    let results = measured?;
    let counters_after = scrape(ep);
    finish_cell(cell, ep, results, usage, counters_before, counters_after);
    let per_connection = match (before, with_idle) {
        (Some(b), Some(w)) if idle > 0 => {
            Some((w.rss_bytes as f64 - b.rss_bytes as f64) / idle as f64)
        }
        _ => None,
    };
    let pss_per_connection = match (pss_before, pss_with_idle) {
        (Some(b), Some(w)) if idle > 0 => Some((w as f64 - b as f64) / idle as f64),
        _ => None,
    };
    cell.idle = Some(IdleFigures {
        rss_before_kb: before.map(|b| b.rss_bytes / 1024),
        rss_with_idle_kb: with_idle.map(|w| w.rss_bytes / 1024),
        rss_per_connection_bytes: per_connection,
        pss_before_kb: pss_before.map(|b| b / 1024),
        pss_with_idle_kb: pss_with_idle.map(|w| w / 1024),
        pss_per_connection_bytes: pss_per_connection,
        threads_with_idle: with_idle.map(|w| w.threads),
        still_open_after: still_open,
        open: opened.clone(),
    });
    let mut notes = Vec::new();
    if opened.failed > 0 {
        let mut why = Vec::new();
        if opened.not_kept_alive > 0 {
            why.push(format!(
                "{} closed by the server after their answer: no keep-alive",
                opened.not_kept_alive
            ));
        }
        if opened.non_2xx > 0 {
            why.push(format!("{} answered other than 2xx", opened.non_2xx));
        }
        notes.push(format!(
            "{} of {} idle connections failed to open{}",
            opened.failed,
            opened.wanted,
            if why.is_empty() {
                String::new()
            } else {
                format!(" ({})", why.join("; "))
            }
        ));
    }
    if still_open < idle {
        notes.push(format!(
            "the server closed {} of {idle} idle connections during the load",
            idle - still_open
        ));
    }
    if !notes.is_empty() {
        cell.reason = Some(notes.join("; "));
    }
    // A model that could hold fewer than nine in ten of the idle crowd failed the scenario,
    // whatever the active clients saw.
    if (idle as f64) < 0.9 * s.idle as f64 {
        cell.status = Status::Failed;
        let held = format!("held only {idle} of {} idle connections", s.idle);
        cell.reason = Some(match cell.reason.take() {
            Some(notes) => format!("{held}: {notes}"),
            None => held,
        });
    }
    Ok(())
}

/// slowloris: start the slow crowd, measure the normal client beside it, stop the crowd.
fn run_slowloris(
    cell: &mut Cell,
    ep: &Endpoint,
    s: &Settings,
    interrupted: &AtomicBool,
    on_tick: OnTick<'_>,
) -> Result<(), String> {
    let mut normal = load(ep, s, "GET", "/plaintext", &[], NORMAL_SLOTS, true, 2)?;
    normal.rate = Some(NORMAL_RATE);
    // Read the counter before the crowd arrives: a starved server could not answer it after.
    let counters_before = scrape(ep);
    let crowd = Slowloris::start(
        ep.addr,
        &ep.authority,
        &ep.path("/plaintext"),
        s.slow_clients,
        Duration::from_millis(TRICKLE_MS),
    );
    crowd.wait_connected(s.slow_clients as u64, Duration::from_secs(3));
    let sampler = ep
        .pid
        .map(|pid| Sampler::start(pid, s.warmup, s.sample_period));
    let measured = run_loads(vec![("main", normal)], interrupted, on_tick);
    let usage = sampler.and_then(Sampler::finish);
    let slow = crowd.stop();
    let results = measured?;
    // The server needs a moment to notice the crowd has gone before it can answer again.
    std::thread::sleep(Duration::from_millis(100));
    let counters_after = scrape(ep);
    finish_cell(cell, ep, results, usage, counters_before, counters_after);
    cell.slow = Some(slow?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::ServerCounters;

    fn counted(requests: u64) -> Result<ServerCounters, String> {
        Ok(ServerCounters {
            requests,
            connections: None,
            shed: None,
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

    fn settings() -> Settings {
        Settings {
            duration: Duration::from_secs(1),
            warmup: Duration::ZERO,
            threads: 1,
            concurrency: vec![1, 64],
            idle: 100,
            slow_clients: 10,
            sample_period: Duration::from_millis(100),
        }
    }

    #[test]
    fn every_scenario_has_a_name_variants_and_words() {
        let s = settings();
        for scenario in Scenario::ALL {
            assert_eq!(Scenario::parse(scenario.name()), Some(scenario));
            assert!(!scenario.variants(&s).is_empty());
            let info = scenario.info(&s);
            assert!(!info.load.is_empty() && !info.shows.is_empty());
        }
        assert_eq!(Scenario::ALL.len(), 10);
        assert_eq!(Scenario::Plaintext.variants(&s).len(), 2);
        assert_eq!(Scenario::Pipelined.variants(&s).len(), 2);
        assert_eq!(Scenario::parse("nope"), None);
    }
}
