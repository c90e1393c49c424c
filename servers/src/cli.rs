//! The command line: every option also comes from a `ZOO_*` environment variable.

use clap::{Parser, ValueEnum};
use std::net::SocketAddr;

/// Which concurrency model serves the connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Model {
    /// A new OS thread per connection (classic servers, Python `threading`).
    Thread,
    /// A fixed thread pool fed with connections that have a whole request; idle ones wait in a
    /// poller (gunicorn gthread, Apache event).
    Pool,
    /// Stackful coroutines on `may`, one per connection, blocking-style code (gevent).
    Coroutine,
    /// A tokio task per connection; `--threads 1` is one event loop (asyncio, Tornado).
    Tokio,
    /// An async-std task per connection (asyncio). async-std is discontinued upstream in favour
    /// of smol: kept for comparison.
    AsyncStd,
    /// A smol task per connection, on an executor over `--threads` threads (asyncio).
    Smol,
    /// A new process per connection, forked after accept (inetd, Python `ForkingMixIn`).
    Fork,
    /// `--workers` processes share the listener, one connection each at a time (Apache prefork,
    /// gunicorn sync).
    Prefork,
    /// An event loop over `select(2)`; refuses connections beyond FD_SETSIZE (Python selectors).
    Select,
    /// An event loop over `poll(2)` (Python `selectors.PollSelector`).
    Poll,
    /// An event loop over level-triggered epoll (asyncio on Linux, Tornado, nginx).
    Epoll,
    /// Non-blocking sockets tried in a loop with no multiplexer (IO model 2).
    Nonblocking,
    /// Readiness from queued real-time signals, `O_ASYNC` + `F_SETSIG` (IO model 4).
    Sigio,
    /// Completion-based IO on io_uring, one ring per thread (IO model 5).
    Uring,
}

impl Model {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Model::Thread => "thread",
            Model::Pool => "pool",
            Model::Coroutine => "coroutine",
            Model::Tokio => "tokio",
            Model::AsyncStd => "async-std",
            Model::Smol => "smol",
            Model::Fork => "fork",
            Model::Prefork => "prefork",
            Model::Select => "select",
            Model::Poll => "poll",
            Model::Epoll => "epoll",
            Model::Nonblocking => "nonblocking",
            Model::Sigio => "sigio",
            Model::Uring => "uring",
        }
    }

    /// Whether the model serves from several processes: the counters then live in the shared
    /// scoreboard, and the kv store and sessions are per process.
    pub fn multi_process(self) -> bool {
        matches!(self, Model::Fork | Model::Prefork)
    }
}

/// One HTTP/1.1 service under many concurrency models.
#[derive(Debug, Clone, Parser)]
#[command(name = "zoo", version, about)]
pub struct Options {
    /// The concurrency model.
    #[arg(long, value_enum, env = "ZOO_MODEL", default_value = "thread")]
    pub model: Model,

    /// Print the name of every model, one a line, and exit (for scripts and tests).
    #[arg(long)]
    pub list_models: bool,

    /// Address to listen on; port 0 picks a free port (printed at start).
    #[arg(long, env = "ZOO_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Worker threads: the pool's size (default 4 per CPU), the scheduler's threads of coroutine,
    /// tokio, async-std and smol (default 1 per CPU), or reactor and ring loops (default 1).
    #[arg(long, env = "ZOO_THREADS")]
    pub threads: Option<usize>,

    /// Prefork only: worker processes (default: one per CPU).
    #[arg(long, env = "ZOO_WORKERS",
          value_parser = clap::value_parser!(u32).range(1..=crate::scoreboard::MAX_WORKERS as i64))]
    pub workers: Option<u32>,

    /// Most connections open at once; above it a new connection gets 503 and is closed.
    #[arg(long, env = "ZOO_MAX_CONNECTIONS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,

    /// Largest request head in bytes (431 beyond).
    #[arg(long, env = "ZOO_MAX_HEAD_BYTES", default_value_t = 16 * 1024,
          value_parser = clap::value_parser!(u32).range(256..=1_048_576))]
    pub max_head_bytes: u32,

    /// Largest request body in bytes (413 beyond).
    #[arg(long, env = "ZOO_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: u64,

    /// Seconds allowed to receive a request head (408 after).
    #[arg(long, env = "ZOO_HEADER_TIMEOUT", default_value_t = 5.0, value_parser = parse_seconds)]
    pub header_timeout: f64,

    /// Seconds an idle keep-alive connection is kept open.
    #[arg(long, env = "ZOO_KEEP_ALIVE_TIMEOUT", default_value_t = 5.0, value_parser = parse_seconds)]
    pub keep_alive_timeout: f64,

    /// Seconds allowed between two reads of a request body (408 after).
    #[arg(long, env = "ZOO_BODY_TIMEOUT", default_value_t = 10.0, value_parser = parse_seconds)]
    pub body_timeout: f64,

    /// Seconds to finish in-flight requests on SIGTERM/SIGINT before exiting anyway.
    #[arg(long, env = "ZOO_GRACE", default_value_t = 10.0, value_parser = parse_seconds)]
    pub grace: f64,

    /// Pool only: most connections waiting for a worker; beyond it the request gets 503.
    #[arg(long, env = "ZOO_QUEUE", default_value_t = 1024,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub queue: u32,

    /// Answer the routes that exist only for testing (`GET /panic`); 404 without it.
    #[arg(long, env = "ZOO_DEBUG_ROUTES")]
    pub debug_routes: bool,

    /// Coroutine only: bytes of stack per coroutine. may cannot grow a stack: an overflow hits a
    /// guard page and that connection's coroutine is abandoned.
    #[arg(long, env = "ZOO_STACK_SIZE", default_value_t = 64 * 1024,
          value_parser = clap::value_parser!(u32).range(16 * 1024..=16 * 1024 * 1024))]
    pub stack_size: u32,

    /// Log one line per request to stderr.
    #[arg(long, env = "ZOO_ACCESS_LOG")]
    pub access_log: bool,
}

fn parse_seconds(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("`{s}` is not a number of seconds"))?;
    if v.is_finite() && v > 0.0 && v <= 86_400.0 {
        Ok(v)
    } else {
        Err(format!(
            "`{s}` must be more than 0 and at most 86400 seconds"
        ))
    }
}
