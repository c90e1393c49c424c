//! The command line: `loadtest run URL [options]` and `loadtest merge HLOG...`. Each value is
//! checked as it is parsed, so a bad one is reported against its own flag; checks that involve
//! two flags happen in [`RunArgs::check`].

use crate::target::Target;
use clap::{Args, Parser, Subcommand};
use common::client::{check_header, EncodeError};
use std::path::PathBuf;
use std::time::Duration;

/// HTTP/1.1 load generator: wrk's engine, wrk2's corrected latency, HdrHistogram output.
#[derive(Debug, Parser)]
#[command(name = "loadtest", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
// Parsed once per process: the size of the larger variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Load one URL and report throughput, latency percentiles and errors.
    Run(RunArgs),
    /// Add up HdrHistogram interval logs (e.g. from several generator hosts) and print the
    /// combined percentiles.
    Merge(MergeArgs),
    /// Run every model through every scenario and write results.json, report.md and charts.
    Compare(CompareArgs),
    /// Render report.md and the charts again from a compare results directory.
    Report(ReportArgs),
}

/// Options of `loadtest run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Target: an http:// URL, host, optional port, path and query (plain HTTP/1.1 only).
    #[arg(value_name = "URL", value_parser = parse_target)]
    pub url: Target,

    /// Connections, over all threads.
    #[arg(short = 'c', long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub connections: u32,

    /// Generator threads, each with its own epoll loop [default: the smaller of -c and the CPU count].
    #[arg(short = 't', long, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub threads: Option<u32>,

    /// Measured duration, after the warm-up: 5s, 1m, 1500ms... [default: 10s unless -n].
    #[arg(short = 'd', long, value_parser = parse_positive_duration, conflicts_with = "requests")]
    pub duration: Option<Duration>,

    /// Measured requests to make instead of running for a duration.
    #[arg(short = 'n', long, value_parser = clap::value_parser!(u64).range(1..))]
    pub requests: Option<u64>,

    /// Open loop: requests per second in total, sent on a fixed schedule; latency counts from
    /// each request's intended send time (coordinated omission corrected, as wrk2 does).
    #[arg(short = 'R', long, value_parser = parse_rate, allow_negative_numbers = true)]
    pub rate: Option<f64>,

    /// A new connection for every request (sends Connection: close).
    #[arg(long)]
    pub close: bool,

    /// Requests in flight per connection (HTTP/1.1 pipelining).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub pipeline: u32,

    /// How the generator moves bytes: epoll (readiness, a system call per read and write) or
    /// uring (io_uring, one system call per batch) [default: epoll].
    #[arg(long, value_enum)]
    pub engine: Option<crate::engine::Engine>,

    /// Give up on a connect, or on a response, after this long.
    #[arg(long, default_value = "2s", value_parser = parse_positive_duration)]
    pub timeout: Duration,

    /// Load for this long before measuring; nothing from it counts.
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub warmup: Duration,

    /// Request method.
    #[arg(short = 'm', long, default_value = "GET", value_parser = parse_method)]
    pub method: String,

    /// Extra request header, 'Name: value' (repeatable).
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE", value_parser = parse_header)]
    pub headers: Vec<(String, String)>,

    /// Request body: the text itself, or @FILE to send a file's bytes.
    #[arg(long, value_name = "TEXT|@FILE", value_parser = parse_body)]
    pub body: Option<BodyArg>,

    /// Write the results as JSON (schema zoo-loadtest/1) to FILE, or to stdout with '-'.
    #[arg(long, value_name = "FILE|-")]
    pub json: Option<String>,

    /// Write per-second histograms to FILE in the HdrHistogram interval log format.
    #[arg(long, value_name = "FILE")]
    pub hlog: Option<PathBuf>,

    /// Also print the per-second figures.
    #[arg(long)]
    pub intervals: bool,
}

/// Options of `loadtest merge`.
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// Interval logs written by `loadtest run --hlog` (or any HdrHistogram tool).
    #[arg(value_name = "HLOG", required = true)]
    pub files: Vec<PathBuf>,

    /// Write the merged figures as JSON to FILE, or to stdout with '-'.
    #[arg(long, value_name = "FILE|-")]
    pub json: Option<String>,
}

/// Options of `loadtest compare`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Models to start, comma-separated, each NAME or NAME:key=value:... (tokio:threads=1
    /// passes --threads 1); `all` is every model `zoo --list-models` prints. A name starting
    /// `py-` is a Python original from peers/python/twins.json (py-gunicorn-sync:workers=2).
    #[arg(
        long,
        default_value = "all",
        value_name = "LIST|all",
        conflicts_with = "targets"
    )]
    pub models: String,

    /// Scenarios, comma-separated, or `all`: plaintext, json, pipelined, io-wait, blocking-call,
    /// cpu-mix, churn, c10k, slowloris, upload.
    #[arg(long, default_value = "all", value_name = "LIST|all")]
    pub scenarios: String,

    /// A short run: about a second per cell, a reduced sweep and crowds.
    #[arg(long)]
    pub quick: bool,

    /// Do not count each cell's anatomy (syscalls by kind with perf stat on the server's
    /// process tree, context switches and user/system CPU from /proc): to measure perf's own
    /// cost, or where perf is unwanted.
    #[arg(long)]
    pub no_anatomy: bool,

    /// Where to write results.json, report.md and charts/ [default: results/<UTC time>].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// A running server to measure instead of starting models: NAME=http://host:port
    /// (repeatable). Its CPU and memory are not sampled; /metrics is read if it is zoo.
    #[arg(long = "target", value_name = "NAME=URL", value_parser = parse_named_target)]
    pub targets: Vec<(String, Target)>,

    /// CPUs for the servers, e.g. 0 or 0-1 or 0,2 [default: the first half of this process's
    /// CPUs; with --target: not pinned].
    #[arg(long, value_name = "LIST", value_parser = parse_cpus)]
    pub server_cpus: Option<Numbers>,

    /// CPUs for the load generator [default: the second half; with --target: as inherited].
    #[arg(long, value_name = "LIST", value_parser = parse_cpus)]
    pub client_cpus: Option<Numbers>,

    /// Also run the scenarios nginx can serve against nginx (one worker, same pinning), the
    /// reference every figure is read against.
    #[arg(long, value_enum, value_name = "nginx")]
    pub baseline: Option<Baseline>,

    /// Also measure every target through a reverse proxy started in front of it (nginx, one
    /// worker on the server CPUs, keep-alive to the upstream), as `NAME+nginx` beside `NAME`.
    #[arg(long, value_enum, value_name = "nginx")]
    pub behind: Option<Behind>,

    /// Also run the Python original of every selected model (twins.json's mirrors), with the
    /// model's --workers/--threads where the original takes them.
    #[arg(long, conflicts_with = "targets")]
    pub twins: bool,

    /// The virtualenv that runs the Python originals [default: $ZOO_TWINS_VENV, else
    /// peers/python/.venv, made by `make twins`].
    #[arg(long, value_name = "DIR", conflicts_with = "targets")]
    pub twins_venv: Option<PathBuf>,

    /// The zoo binary [default: `zoo` next to this program, else on PATH].
    #[arg(long, value_name = "PATH")]
    pub zoo: Option<PathBuf>,

    /// The nginx binary for --baseline and --behind [default: /usr/sbin/nginx, else on PATH].
    #[arg(long, value_name = "PATH")]
    pub nginx: Option<PathBuf>,

    /// Measured time per cell [default: 5s, with --quick 1s].
    #[arg(long, value_parser = parse_positive_duration)]
    pub duration: Option<Duration>,

    /// Warm-up before each measured run [default: 1s, with --quick 250ms].
    #[arg(long, value_parser = parse_duration)]
    pub warmup: Option<Duration>,

    /// Connections of the plaintext, json and pipelined sweep, comma-separated [default:
    /// 1,16,64,256,1024; with --quick 1,64,1024].
    #[arg(long, value_name = "LIST", value_parser = parse_counts)]
    pub concurrency: Option<Numbers>,

    /// Idle connections of c10k [default: 10000, with --quick 2000].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=60_000))]
    pub idle: Option<u32>,

    /// Slow clients of slowloris [default: 500, with --quick 200].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub slow_clients: Option<u32>,

    /// Run every cell this many times, each round going through every target once (so a slow
    /// minute of a noisy machine falls on all of them), and report each cell's median round by
    /// req/s; results.json keeps every round's req/s
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub rounds: u32,
}

/// A list of numbers taken as one value (clap would read a `Vec` as a repeated flag).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Numbers(pub Vec<usize>);

/// The reference server of `--baseline`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Baseline {
    /// nginx with one worker process.
    Nginx,
}

/// The reverse proxy of `--behind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Behind {
    /// nginx with one worker process.
    Nginx,
}

/// Options of `loadtest report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A directory written by `loadtest compare` (it holds results.json).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

/// A request body read from the command line or a file.
#[derive(Debug, Clone)]
pub struct BodyArg(pub Vec<u8>);

impl RunArgs {
    /// Checks the options that constrain each other; the error names the flags.
    pub fn check(&self) -> Result<(), String> {
        if let Some(t) = self.threads {
            if t > self.connections {
                return Err(format!(
                    "-t/--threads ({t}) must not exceed -c/--connections ({}): \
                     every thread needs a connection",
                    self.connections
                ));
            }
        }
        if self.close && self.pipeline > 1 {
            return Err("--close cannot be combined with --pipeline above 1: \
                        a connection that closes after one response cannot carry more"
                .to_string());
        }
        Ok(())
    }

    /// The thread count: as given, or the smaller of the connections and the CPUs.
    pub fn thread_count(&self) -> usize {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        match self.threads {
            Some(t) => t as usize,
            None => cpus.min(self.connections as usize),
        }
    }
}

fn parse_named_target(s: &str) -> Result<(String, Target), String> {
    let (name, url) = s.split_once('=').ok_or("expected NAME=http://host:port")?;
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:+".contains(&b));
    if !valid {
        return Err(format!(
            "'{name}' is not a name (letters, digits, - _ . : +)"
        ));
    }
    Ok((name.to_string(), parse_target(url)?))
}

/// A CPU list as taskset and cpuset take it: `0`, `0-3`, `0,2,4-5`.
pub fn parse_cpu_list(s: &str) -> Result<Vec<usize>, String> {
    let mut cpus = Vec::new();
    for part in s.split(',').map(str::trim) {
        let number = |t: &str| {
            t.trim()
                .parse::<usize>()
                .map_err(|_| format!("'{t}' is not a CPU number (write 0, 0-3 or 0,2)"))
        };
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (number(a)?, number(b)?);
                if a > b || b >= 1024 {
                    return Err(format!("'{part}' is not a range of CPUs"));
                }
                cpus.extend(a..=b);
            }
            None => cpus.push(number(part)?),
        }
    }
    cpus.sort_unstable();
    cpus.dedup();
    Ok(cpus)
}

fn parse_cpus(s: &str) -> Result<Numbers, String> {
    parse_cpu_list(s).map(Numbers)
}

fn parse_counts(s: &str) -> Result<Numbers, String> {
    let counts = s
        .split(',')
        .map(|t| match t.trim().parse::<usize>() {
            Ok(n) if (1..=100_000).contains(&n) => Ok(n),
            _ => Err(format!("'{t}' is not a connection count in 1-100000")),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Numbers(counts))
}

fn parse_target(s: &str) -> Result<Target, String> {
    Target::parse(s).map_err(|e| e.to_string())
}

/// A humantime duration (`5s`, `1m`, `250ms`, `1h 30m`), zero allowed.
fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e} (write it like 5s, 1m, 1500ms)"))
}

fn parse_positive_duration(s: &str) -> Result<Duration, String> {
    match parse_duration(s)? {
        d if d.is_zero() => Err("must be longer than zero".to_string()),
        d => Ok(d),
    }
}

fn parse_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 => Ok(r),
        _ => Err("must be a positive number of requests per second".to_string()),
    }
}

fn parse_method(s: &str) -> Result<String, String> {
    if common::head::is_token(s) {
        Ok(s.to_string())
    } else {
        Err("must be a token such as GET, POST or HEAD".to_string())
    }
}

fn parse_header(s: &str) -> Result<(String, String), String> {
    let Some((name, value)) = s.split_once(':') else {
        return Err("expected 'Name: value'".to_string());
    };
    check_header(name, value).map_err(|e| match e {
        EncodeError::BadHeaderName => format!("'{name}' is not a valid header name"),
        EncodeError::FramingHeader => format!("{name} is set from --body; leave it out"),
        _ => "the value must not hold control characters".to_string(),
    })?;
    Ok((name.to_string(), value.trim().to_string()))
}

fn parse_body(s: &str) -> Result<BodyArg, String> {
    match s.strip_prefix('@') {
        Some(path) => std::fs::read(path)
            .map(BodyArg)
            .map_err(|e| format!("cannot read {path}: {e}")),
        None => Ok(BodyArg(s.as_bytes().to_vec())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<RunArgs, String> {
        let mut argv = vec!["loadtest", "run"];
        argv.extend_from_slice(args);
        let cli = Cli::try_parse_from(argv).map_err(|e| e.to_string())?;
        let Command::Run(run) = cli.command else {
            return Err("not run".to_string());
        };
        run.check()?;
        Ok(run)
    }

    #[test]
    fn defaults_follow_wrk() {
        let run = parse(&["http://127.0.0.1:1/"]).expect("valid");
        assert_eq!(run.connections, 10);
        assert_eq!(run.duration, None);
        assert_eq!(run.timeout, Duration::from_secs(2));
        assert_eq!(run.pipeline, 1);
        assert_eq!(run.method, "GET");
        assert!(run.thread_count() >= 1 && run.thread_count() <= 10);
    }

    #[test]
    fn bad_values_name_their_flag() {
        let table: &[(&[&str], &str)] = &[
            (&["https://x/"], "<URL>"),
            (&["http://x/", "-c", "0"], "--connections"),
            (&["http://x/", "-d", "soon"], "--duration"),
            (&["http://x/", "-d", "0s"], "--duration"),
            (&["http://x/", "-d", "1s", "-n", "5"], "--requests"),
            (&["http://x/", "--rate", "-5"], "--rate"),
            (&["http://x/", "--rate", "0"], "--rate"),
            (&["http://x/", "--pipeline", "0"], "--pipeline"),
            (&["http://x/", "-H", "NoColon"], "--header"),
            (&["http://x/", "-H", "Content-Length: 3"], "--header"),
            (&["http://x/", "-m", "G T"], "--method"),
            (&["http://x/", "--body", "@/nonexistent/file"], "--body"),
            (&["http://x/", "-c", "2", "-t", "3"], "--threads"),
            (&["http://x/", "--close", "--pipeline", "4"], "--pipeline"),
        ];
        for (args, flag) in table {
            let err = parse(args).expect_err(&format!("{args:?} must be refused"));
            assert!(err.contains(flag), "{args:?}: {err}");
        }
    }

    #[test]
    fn cpu_lists_read_like_taskset() {
        assert_eq!(parse_cpu_list("1"), Ok(vec![1]));
        assert_eq!(parse_cpu_list("0-2,5,1"), Ok(vec![0, 1, 2, 5]));
        for bad in ["", "a", "3-1", "1-", "0-5000"] {
            assert!(parse_cpu_list(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn compare_options_parse() {
        let cli = Cli::try_parse_from([
            "loadtest",
            "compare",
            "--target",
            "m=http://m:8080",
            "--target",
            "n=http://n:8080/",
            "--scenarios",
            "plaintext,c10k",
            "--quick",
            "--concurrency",
            "1,8",
        ])
        .expect("valid");
        let Command::Compare(c) = cli.command else {
            panic!("not compare");
        };
        assert_eq!(c.targets.len(), 2);
        assert_eq!(c.targets[0].0, "m");
        assert_eq!(c.targets[0].1.port, 8080);
        assert_eq!(c.concurrency, Some(Numbers(vec![1, 8])));
        let both = Cli::try_parse_from([
            "loadtest",
            "compare",
            "--models",
            "pool",
            "--target",
            "m=http://m:1",
        ]);
        assert!(both.is_err(), "--models and --target exclude each other");
        let bad = Cli::try_parse_from(["loadtest", "compare", "--target", "http://m:1"]);
        assert!(bad.is_err(), "a target needs a name");
    }

    #[test]
    fn headers_and_bodies_parse() {
        let run = parse(&[
            "http://x/",
            "-H",
            "X-A:  1 ",
            "-H",
            "Accept: */*",
            "--body",
            "hi",
            "-m",
            "POST",
        ])
        .expect("valid");
        assert_eq!(
            run.headers,
            vec![("X-A".into(), "1".into()), ("Accept".into(), "*/*".into())]
        );
        assert_eq!(run.body.map(|b| b.0), Some(b"hi".to_vec()));
    }
}
