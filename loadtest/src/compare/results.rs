//! `results.json` of `loadtest compare`, schema `zoo-compare/1`: every figure of every cell,
//! each load's whole `zoo-loadtest/1` report (histograms included), the server's cost and
//! counters, the machine and the versions. `loadtest report DIR` renders the report and the
//! charts from this file alone. Like the run schema, it only grows: a field is never renamed,
//! retyped or removed under the same name. `loadtest/README.md` documents the fields.

use crate::compare::anatomy::{Anatomy, KINDS};
use crate::compare::crowds::idle::OpenStats;
use crate::compare::crowds::slowloris::SlowStats;
use crate::compare::sampling::Usage;
use crate::compare::scenario::Scenario;
use crate::report::RunReport;
use serde::{Deserialize, Serialize};

/// The schema name.
pub const SCHEMA: &str = "zoo-compare/1";

/// The whole document.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Results {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// When the comparison began and ended, RFC 3339, UTC.
    pub started: String,
    /// See `started`.
    pub finished: String,
    /// The command line.
    pub command: Vec<String>,
    /// Whether it was interrupted (Ctrl-C): later cells are marked skipped.
    pub interrupted: bool,
    /// The machine it ran on.
    pub machine: Machine,
    /// Versions of the tools.
    pub versions: Versions,
    /// How it ran.
    pub setup: Setup,
    /// The scenarios, in the order they ran, with what each shows.
    pub scenarios: Vec<ScenarioInfo>,
    /// What was measured: started models, running targets, the baseline.
    pub targets: Vec<TargetInfo>,
    /// One entry per (target, scenario, variant).
    pub cells: Vec<Cell>,
}

/// The machine.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Machine {
    /// `model name` of /proc/cpuinfo.
    pub cpu_model: String,
    /// CPUs online.
    pub cpus_online: usize,
    /// CPUs this process may use (its affinity at start).
    pub cpus_allowed: Vec<usize>,
    /// Kernel release (`uname -r`).
    pub kernel: String,
    /// Memory, in KiB.
    pub memory_kb: u64,
    /// Host name.
    pub hostname: String,
    /// What the kernel charges here for a syscall and for a hand-off between threads, measured
    /// before the cells on the servers' CPU; absent in target mode and in older results.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prices: Option<crate::compare::prices::Prices>,
}

/// Versions of what ran.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Versions {
    /// This program.
    pub loadtest: String,
    /// `zoo --version`, when compare started the models.
    pub zoo: Option<String>,
    /// `nginx -v`, with `--baseline nginx`.
    pub nginx: Option<String>,
    /// The virtualenv's `python --version`, when Python originals ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub python: Option<String>,
}

/// How the comparison ran.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Setup {
    /// `start` (compare started each model) or `target` (running servers were given).
    pub mode: String,
    /// `--quick`.
    pub quick: bool,
    /// CPUs of the servers; null when not pinned.
    pub server_cpus: Option<Vec<usize>>,
    /// CPUs of the generator; null when not pinned.
    pub client_cpus: Option<Vec<usize>>,
    /// Generator threads per load (at most its connections).
    pub generator_threads: usize,
    /// Measured seconds per cell.
    pub duration_s: f64,
    /// Warm-up seconds before each measured run (its responses are counted apart).
    pub warmup_s: f64,
    /// The concurrency sweep of plaintext, json and pipelined.
    pub concurrency: Vec<usize>,
    /// Idle connections of c10k.
    pub idle_connections: usize,
    /// Slow clients of slowloris.
    pub slow_clients: usize,
    /// The zoo binary.
    pub zoo: Option<String>,
    /// The baseline, if any.
    pub baseline: Option<String>,
    /// The reverse proxy every target was also measured behind (`--behind`), if any.
    #[serde(default)]
    pub behind: Option<String>,
    /// Anything about the setup a reader should know (e.g. no pinning on one CPU).
    pub notes: Vec<String>,
    /// Rounds of every cell (`--rounds`); each cell reported is its median round.
    #[serde(default = "one")]
    pub rounds: u32,
    /// Why no cell's anatomy was counted (`--no-anatomy`, or target mode: the servers' processes
    /// are not here); null when compare counted it (each cell then says what it got).
    #[serde(default)]
    pub anatomy_off: Option<String>,
}

fn one() -> u32 {
    1
}

/// A scenario as the report introduces it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScenarioInfo {
    /// The scenario; its name on the command line in results.json.
    pub name: Scenario,
    /// One line: what the load is.
    pub load: String,
    /// What it shows.
    pub shows: String,
}

/// A server that was measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TargetInfo {
    /// The name in the tables: the model spec, the `--target` name, or `nginx`.
    pub name: String,
    /// `model`, `original` (a Python original from peers/python), `target`, `baseline`, or
    /// `behind` (a target measured through `--behind`'s proxy).
    pub kind: String,
    /// The zoo model, for started models; the twin's name for an original.
    pub model: Option<String>,
    /// Extra arguments from the spec (`tokio:threads=1` gives `--threads 1`).
    pub args: Vec<String>,
    /// The URL of a running target.
    pub url: Option<String>,
    /// Behind a proxy (kind `behind`): the proxy's binary; the other fields describe the
    /// target behind it.
    #[serde(default)]
    pub proxy: Option<String>,
    /// An original's mirrors as twins.json names them (model specs such as `tokio:threads=1`);
    /// empty for every other kind.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mirrors: Vec<String>,
}

/// Whether a cell produced figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Measured, with errors (if any) below the failure threshold.
    Ok,
    /// The server did not start, died, refused, or too many requests failed: `reason` says.
    Failed,
    /// Not run: interrupted.
    Skipped,
}

/// One (target, scenario, variant).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cell {
    /// The target's name.
    pub target: String,
    /// The scenario; its name in results.json.
    pub scenario: Scenario,
    /// The variant within the scenario, e.g. `c=64` or `chunked`.
    pub variant: String,
    /// Connections of the main load (the x axis of the sweeps).
    pub connections: usize,
    /// The outcome.
    pub status: Status,
    /// Why the cell failed, or what went wrong in one that did not.
    pub reason: Option<String>,
    /// The server's command line, when compare started it.
    pub server_command: Option<Vec<String>>,
    /// How the server ended after this cell's scenario, when that was not a clean exit.
    pub server_exit: Option<String>,
    /// The figures of the table.
    pub headline: Option<Headline>,
    /// The server's CPU and memory during the measured run: from /proc for started servers,
    /// from the server's own `process_*` series for a running target that exposes them.
    /// Behind a proxy (`--behind`), the server's tree and the proxy's, summed.
    pub server: Option<ServerFigures>,
    /// Behind a proxy: the proxy's own share of `server`.
    #[serde(default)]
    pub proxy: Option<ServerFigures>,
    /// The client's counts against the server's own counter.
    pub metrics: Option<MetricsCheck>,
    /// The loads, each with its whole run report.
    pub loads: Vec<LoadResult>,
    /// c10k: the idle connections.
    pub idle: Option<IdleFigures>,
    /// slowloris: the slow clients.
    pub slow: Option<SlowStats>,
    /// io-wait and blocking-call: requests per second if every connection waited in parallel.
    pub ideal_rps: Option<f64>,
    /// With `--rounds` above 1: the req/s of every round, in order (this cell is the median).
    #[serde(default)]
    pub rounds_rps: Vec<f64>,
    /// The anatomy of its requests: syscalls by kind, context switches, user and system CPU,
    /// over the whole load (warm-up included); null when not counted (see `Setup::anatomy_off`).
    #[serde(default)]
    pub anatomy: Option<CellAnatomy>,
}

impl Cell {
    /// A cell with no figures yet, in `status`.
    pub fn empty(
        target: String,
        scenario: Scenario,
        variant: String,
        connections: usize,
        status: Status,
        ideal_rps: Option<f64>,
    ) -> Cell {
        Cell {
            target,
            scenario,
            variant,
            connections,
            status,
            reason: None,
            server_command: None,
            server_exit: None,
            headline: None,
            server: None,
            proxy: None,
            metrics: None,
            loads: Vec::new(),
            idle: None,
            slow: None,
            ideal_rps,
            rounds_rps: Vec::new(),
            anatomy: None,
        }
    }
}

/// What a cell's server did in the kernel, in all and per request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CellAnatomy {
    /// The counts over the cell's warm-up: perf's from just before the load's first
    /// connection to the end of its warm-up, /proc's over the same span.
    pub counts: Anatomy,
    /// The requests the per-request figures divide by.
    pub requests: u64,
    /// Whose count `requests` is: `server` (zoo's `zoo_requests_total` over the same span) or
    /// `client` (the responses the generator received in the warm-up).
    pub requests_from: String,
    /// The counts over `requests`; null when there were none.
    pub per_request: Option<PerRequest>,
}

/// A cell's anatomy per request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PerRequest {
    /// Syscalls of every kind; null when perf could not count (`counts.unavailable` says why).
    pub syscalls: Option<f64>,
    /// Syscalls by kind (`read`, `write`, `wait`, `epoll_ctl`, `io_uring_enter`, `futex`,
    /// `accept`, `clone`, `other`); they add up to `syscalls`. Empty when perf could not count.
    pub by_kind: std::collections::BTreeMap<String, f64>,
    /// Context switches of the tree, perf's count (exited children included); null without perf.
    pub context_switches: Option<f64>,
    /// Voluntary context switches of the live tasks, from /proc.
    pub voluntary: f64,
    /// Involuntary context switches of the live tasks, from /proc.
    pub involuntary: f64,
    /// User CPU, in microseconds.
    pub user_us: f64,
    /// System CPU, in microseconds.
    pub system_us: f64,
}

impl CellAnatomy {
    /// The anatomy of `counts` over `requests` counted by `requests_from`.
    pub fn new(counts: Anatomy, requests: u64, requests_from: &str) -> CellAnatomy {
        let per = |n: u64| n as f64 / requests as f64;
        let per_request = (requests > 0).then(|| PerRequest {
            syscalls: counts.syscalls.map(per),
            by_kind: counts
                .by_kind
                .iter()
                .map(|(kind, &n)| (kind.clone(), per(n)))
                .collect(),
            context_switches: counts.context_switches.map(per),
            voluntary: per(counts.voluntary),
            involuntary: per(counts.involuntary),
            user_us: counts.user_s * 1e6 / requests as f64,
            system_us: counts.system_s * 1e6 / requests as f64,
        });
        CellAnatomy {
            counts,
            requests,
            requests_from: requests_from.to_string(),
            per_request,
        }
    }
}

impl PerRequest {
    /// Syscalls per request of `kind` (one of [`KINDS`] or `other`), when perf counted.
    pub fn kind(&self, kind: &str) -> Option<f64> {
        self.syscalls?;
        Some(self.by_kind.get(kind).copied().unwrap_or(0.0))
    }
}

/// The cells the report tells the anatomy of: plaintext's at 64 connections (its middle point
/// without 64), else the first scenario's first variant that has anatomy. Keep-alive plaintext
/// is the request with nothing else in it, so its syscalls are the model's loop alone.
pub fn anatomy_headline(r: &Results) -> Option<(Scenario, &str, Vec<&Cell>)> {
    let counted = |c: &&Cell| c.status == Status::Ok && c.anatomy.is_some();
    let scenario = if r
        .cells
        .iter()
        .filter(counted)
        .any(|c| c.scenario == Scenario::Plaintext)
    {
        Scenario::Plaintext
    } else {
        r.scenarios
            .iter()
            .map(|i| i.name)
            .find(|&s| r.cells.iter().filter(counted).any(|c| c.scenario == s))?
    };
    let mut variants: Vec<&str> = Vec::new();
    for c in r
        .cells
        .iter()
        .filter(counted)
        .filter(|c| c.scenario == scenario)
    {
        if !variants.contains(&c.variant.as_str()) {
            variants.push(&c.variant);
        }
    }
    // A sweep of connection counts is read at its headline count; anything else at its first.
    let counts: Option<Vec<usize>> = variants
        .iter()
        .map(|v| v.strip_prefix("c=")?.parse().ok())
        .collect();
    let variant = match counts {
        Some(counts) => {
            let headline = headline_concurrency(&counts)?;
            variants[counts.iter().position(|&c| c == headline)?]
        }
        None => variants.first().copied()?,
    };
    let cells = r
        .cells
        .iter()
        .filter(counted)
        .filter(|c| c.scenario == scenario && c.variant == variant)
        .collect();
    Some((scenario, variant, cells))
}

/// The connection count a sweep's anatomy is read at: 64 where the sweep has it (the count the
/// benchmarks here use), else the middle one.
pub fn headline_concurrency(counts: &[usize]) -> Option<usize> {
    counts
        .iter()
        .copied()
        .find(|&c| c == 64)
        .or_else(|| counts.get(counts.len() / 2).copied())
}

/// The kinds of syscall in the order of the tables and charts: [`KINDS`], then `other`.
pub fn anatomy_kinds() -> Vec<&'static str> {
    KINDS.iter().map(|(k, _)| *k).chain(["other"]).collect()
}

/// The figures of a cell's table row, from its main load.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Headline {
    /// Complete responses in the measured time.
    pub requests: u64,
    /// Per second.
    pub requests_per_s: f64,
    /// Latency percentiles, microseconds.
    pub p50_us: u64,
    /// See `p50_us`.
    pub p99_us: u64,
    /// See `p50_us`.
    pub p99_9_us: u64,
    /// Failed requests (connect, read, write, timeout, parse).
    pub errors: u64,
    /// Responses with a status other than 2xx.
    pub non_2xx: u64,
    /// 2xx responses over all attempts (2xx, other statuses, failures).
    pub success_rate: f64,
}

/// The server's cost during a cell.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerFigures {
    /// CPU and memory from /proc.
    pub usage: Usage,
    /// Server CPU time per response of every load, in microseconds.
    pub cpu_us_per_request: Option<f64>,
    /// Where the figures come from.
    #[serde(default)]
    pub source: FigureSource,
}

/// Where a cell's CPU and memory figures were read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FigureSource {
    /// compare sampled the process tree in /proc during the measured run.
    #[default]
    Proc,
    /// The server's own `process_cpu_seconds_total` and `process_resident_memory_bytes`, read
    /// from its `/metrics` before and after the cell (warm-up included): peaks between the two
    /// reads are not seen.
    ProcessSeries,
}

/// The client's count against zoo's `zoo_requests_total`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MetricsCheck {
    /// Responses the client received, warm-up included, over every load of the cell.
    pub client_responses: u64,
    /// Requests the client gave up on (the server may have answered them too late).
    pub client_errors: u64,
    /// `zoo_requests_total` before the cell, or null if it could not be read.
    pub server_before: Option<u64>,
    /// `zoo_requests_total` after the cell.
    pub server_after: Option<u64>,
    /// The difference, minus the one scrape counted inside it.
    pub server_requests: Option<u64>,
    /// `zoo_shed_total`'s difference: 503s sent over `--max-connections`, outside the service.
    #[serde(default)]
    pub server_shed: Option<u64>,
    /// Whether the two agree: the server's requests plus shed connections equal the client's
    /// responses, or with client errors, lie between its responses and its responses plus
    /// errors (the server may have answered a request the client had given up on).
    pub agrees: Option<bool>,
    /// Why there is no verdict, when there is none.
    pub note: Option<String>,
}

/// One load of a cell.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoadResult {
    /// Its role: `main`, or `cpu` (cpu-mix's heavy requests).
    pub role: String,
    /// The whole `loadtest run` report.
    pub report: RunReport,
}

impl IdleFigures {
    /// Memory per idle connection in bytes, and which measure it is: PSS where it was read,
    /// else RSS.
    pub fn per_connection(&self) -> Option<(f64, &'static str)> {
        self.pss_per_connection_bytes
            .map(|b| (b, "PSS"))
            .or_else(|| self.rss_per_connection_bytes.map(|b| (b, "RSS")))
    }
}

/// c10k's idle connections.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdleFigures {
    /// How the opening went.
    pub open: OpenStats,
    /// Server memory before they were opened, in KiB.
    pub rss_before_kb: Option<u64>,
    /// Server memory with them open, in KiB.
    pub rss_with_idle_kb: Option<u64>,
    /// `(rss_with_idle - rss_before) / idle`, in bytes.
    pub rss_per_connection_bytes: Option<f64>,
    /// Proportional set size before and with the idle connections (shared pages divided among
    /// the processes sharing them), in KiB, where /proc shows it.
    #[serde(default)]
    pub pss_before_kb: Option<u64>,
    /// See `pss_before_kb`.
    #[serde(default)]
    pub pss_with_idle_kb: Option<u64>,
    /// `(pss_with_idle - pss_before) / idle`, in bytes: the figure of the report, which does
    /// not charge forked processes for the pages they share.
    #[serde(default)]
    pub pss_per_connection_bytes: Option<f64>,
    /// Server threads with them open (a thread per connection shows here).
    pub threads_with_idle: Option<u64>,
    /// Idle connections still open after the active load.
    pub still_open_after: u64,
}

#[cfg(test)]
mod tests {
    use super::headline_concurrency;

    #[test]
    fn the_headline_count_is_64_else_the_middle_of_the_sweep() {
        assert_eq!(headline_concurrency(&[1, 64, 1024]), Some(64));
        assert_eq!(headline_concurrency(&[64]), Some(64));
        assert_eq!(headline_concurrency(&[1, 16, 256]), Some(16));
        assert_eq!(headline_concurrency(&[1, 16, 256, 1024]), Some(256));
        assert_eq!(headline_concurrency(&[]), None);
    }
}
