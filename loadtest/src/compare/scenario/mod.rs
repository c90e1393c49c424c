//! The catalogue of `compare`'s scenarios: what each loads, what it shows, its variants and
//! how long it takes. Measuring one cell is [`cell`]'s job; the crowds of c10k and slowloris
//! are [`crowds`](super::crowds)'.

pub mod cell;

use super::results::ScenarioInfo;
use crate::format::thousands;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::time::Duration;

/// A cell fails when more than this fraction of its requests failed or had a non-2xx answer.
pub const FAILURE_THRESHOLD: f64 = 0.01;
/// How long a read of `/metrics` may take.
pub const SCRAPE_TIMEOUT: Duration = Duration::from_secs(5);
/// io-wait: the wait of each request, and the connections waiting.
pub const SLEEP_MS: u64 = 20;
pub const SLEEP_CONNECTIONS: usize = 1000;
/// blocking-call: the blocking sleep inside the handler, and the connections.
pub const BLOCK_MS: u64 = 10;
pub const BLOCK_CONNECTIONS: usize = 64;
/// cpu-mix: units of work per CPU-heavy request (~1.4 ns each: about 3 ms) and its connections,
/// beside this many connections of cheap requests.
pub const CPU_UNITS: u64 = 2_000_000;
pub const CPU_CONNECTIONS: usize = 4;
pub const CHEAP_CONNECTIONS: usize = 64;
/// churn: connections, each used for one request.
pub const CHURN_CONNECTIONS: usize = 32;
/// c10k: connections of the active load beside the idle ones.
pub const ACTIVE_CONNECTIONS: usize = 64;
/// slowloris: milliseconds between two bytes of a slow client, and the normal client's rate
/// (requests per second, each on a new connection) over this many connection slots.
pub const TRICKLE_MS: u64 = 300;
pub const NORMAL_RATE: f64 = 100.0;
pub const NORMAL_SLOTS: usize = 10;
/// upload: body size, chunk size of the chunked variant, connections.
pub const UPLOAD_BYTES: usize = 64 * 1024;
pub const UPLOAD_CHUNK: usize = 8 * 1024;
pub const UPLOAD_CONNECTIONS: usize = 16;
/// pipelined: requests in flight on each connection (TechEmpower's plaintext test sends 16).
pub const PIPELINE_DEPTH: usize = 16;

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

    /// The crowd it holds open beside its measured load, if any.
    pub fn crowd(self) -> Option<Crowd> {
        match self {
            Scenario::C10k => Some(Crowd::Idle),
            Scenario::Slowloris => Some(Crowd::Slow),
            Scenario::Plaintext
            | Scenario::Json
            | Scenario::Pipelined
            | Scenario::IoWait
            | Scenario::BlockingCall
            | Scenario::CpuMix
            | Scenario::Churn
            | Scenario::Upload => None,
        }
    }

    /// Extra columns its table has beside the common ones.
    pub fn columns(self) -> Columns {
        match self {
            Scenario::IoWait | Scenario::BlockingCall => Columns::Ideal,
            Scenario::CpuMix => Columns::Cpu,
            Scenario::C10k => Columns::Idle,
            Scenario::Slowloris => Columns::Slow,
            Scenario::Plaintext
            | Scenario::Json
            | Scenario::Pipelined
            | Scenario::Churn
            | Scenario::Upload => Columns::None,
        }
    }

    /// Whether nginx can serve it (static answers only): the baseline runs these.
    pub fn baseline_applies(self) -> bool {
        match self {
            Scenario::Plaintext
            | Scenario::Json
            | Scenario::Pipelined
            | Scenario::Churn
            | Scenario::C10k
            | Scenario::Slowloris => true,
            Scenario::IoWait | Scenario::BlockingCall | Scenario::CpuMix | Scenario::Upload => {
                false
            }
        }
    }

    /// Extra zoo arguments for this scenario's server.
    pub fn server_args(self) -> Vec<String> {
        match self.crowd() {
            // Above --max-connections zoo sheds with 503, and an idle connection must outlive
            // the opening of the others and the active load.
            Some(Crowd::Idle) => ["--max-connections", "20000", "--keep-alive-timeout", "120"]
                .map(String::from)
                .to_vec(),
            Some(Crowd::Slow) | None => Vec::new(),
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
            name: self,
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
        match self.crowd() {
            Some(Crowd::Idle) => base + Duration::from_micros(150 * s.idle as u64),
            Some(Crowd::Slow) => base + Duration::from_millis(300),
            None => base,
        }
    }

    /// The requests/s if every connection's wait ran in parallel (io-wait, blocking-call).
    pub fn ideal_rps(self) -> Option<f64> {
        match self {
            Scenario::IoWait => Some(ideal(SLEEP_CONNECTIONS, SLEEP_MS)),
            Scenario::BlockingCall => Some(ideal(BLOCK_CONNECTIONS, BLOCK_MS)),
            Scenario::Plaintext
            | Scenario::Json
            | Scenario::Pipelined
            | Scenario::CpuMix
            | Scenario::Churn
            | Scenario::C10k
            | Scenario::Slowloris
            | Scenario::Upload => None,
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

/// A crowd of clients held open beside a scenario's measured load ([`crowds`](super::crowds)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Crowd {
    /// Idle keep-alive connections (c10k).
    Idle,
    /// Slow clients trickling heads (slowloris).
    Slow,
}

/// The columns a scenario's table adds to the common ones (req/s, latency, CPU, memory).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Columns {
    /// None.
    None,
    /// The ideal req/s and the share of it reached (io-wait, blocking-call).
    Ideal,
    /// The p99 of the CPU-heavy requests (cpu-mix).
    Cpu,
    /// Memory per idle connection and idle connections held (c10k).
    Idle,
    /// What the slow clients got (slowloris).
    Slow,
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for Scenario {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Scenario {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Scenario, D::Error> {
        let name = String::deserialize(deserializer)?;
        Scenario::parse(&name).ok_or_else(|| {
            let known: Vec<&str> = Scenario::ALL.iter().map(|s| s.name()).collect();
            D::Error::custom(format!(
                "no scenario '{name}'; this loadtest knows {}",
                known.join(", ")
            ))
        })
    }
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
    /// Whether each cell's anatomy is counted (perf and /proc); `--no-anatomy` turns it off.
    pub anatomy: bool,
}

/// Small settings for tests of scenarios and cells.
#[cfg(test)]
pub fn test_settings() -> Settings {
    Settings {
        duration: Duration::from_secs(1),
        warmup: Duration::ZERO,
        threads: 1,
        concurrency: vec![1, 64],
        idle: 100,
        slow_clients: 10,
        sample_period: Duration::from_millis(100),
        anatomy: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        test_settings()
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

    #[test]
    fn results_name_scenarios_and_refuse_unknown_names() {
        for scenario in Scenario::ALL {
            let json = serde_json::to_string(&scenario).expect("serialises");
            assert_eq!(json, format!("\"{}\"", scenario.name()));
            let back: Scenario = serde_json::from_str(&json).expect("reads back");
            assert_eq!(back, scenario);
        }
        let err = serde_json::from_str::<Scenario>("\"nope\"").expect_err("unknown");
        assert!(err.to_string().contains("no scenario 'nope'"), "{err}");
    }
}
