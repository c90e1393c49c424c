//! Soak: a million requests against each model, and the server's open descriptors and resident
//! memory before and after, side by side (`make soak`). A leak per connection or per request shows
//! as descriptors that do not come back or memory that climbs from round to round.
//!
//! Each model runs pinned to CPU 0 with `loadtest` on CPU 1 (when there are two). After a warm-up
//! (lazy pools, allocator arenas, first-use buffers), the requests go in ten rounds; each round is
//! mostly `GET /` on keep-alive connections, a tenth on a new connection per request (`--close`:
//! the path where a leaked socket or thread would pile up) and a tenth on one other route in turn
//! (a body, a rayon job, a timer, a chunked stream, JSON). Figures are taken at rest, once no
//! client connection is open: descriptors and RSS of the server's whole process tree (the master
//! and its workers or connection processes). The process exits non-zero when a model lost a
//! request or kept descriptors; memory is reported, with the per-round series, for a human to
//! judge (allocators keep freed pages, so a flat series, not an equal number, is the signal).
//!
//! Environment: `SOAK_REQUESTS` (default 1000000 per model), `ZOO_MODELS` (comma-separated;
//! default every model `zoo --list-models` prints). Needs `target/release/loadtest`
//! (`make soak` builds it).

#[path = "../tests/support/mod.rs"]
mod support;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;
use support::{models, open_fds, rss_kib, wait_for, Server};

const ROUNDS: u64 = 10;

/// The routes the side share of each round goes to, one a round in turn.
const SIDE_ROUTES: &[(&str, &[&str])] = &[
    (
        "/echo",
        &["-m", "POST", "--body", "0123456789abcdef0123456789abcdef"],
    ),
    ("/cpu?n=2000&offload=1", &[]),
    ("/sleep?ms=1", &[]),
    ("/stream?chunks=8&size=512", &[]),
    ("/json", &[]),
];

/// One sample of the server at rest.
#[derive(Clone, Copy)]
struct Sample {
    fds: usize,
    rss_kib: u64,
}

/// What one model did.
struct Soak {
    model: String,
    requests: u64,
    errors: u64,
    /// Time under load (loadtest's measured time, summed): the pauses to sample are left out.
    seconds: f64,
    before: Sample,
    after: Sample,
    rounds: Vec<Sample>,
}

fn main() -> ExitCode {
    // `cargo bench` passes `--bench`; without it this is `cargo test --benches` (or
    // `--all-targets`), which must not start a million requests.
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("soak: a benchmark; run it with `make soak` (or `cargo bench --bench soak`)");
        return ExitCode::SUCCESS;
    }
    let total: u64 = std::env::var("SOAK_REQUESTS")
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(1_000_000);
    let loadtest = PathBuf::from(env!("CARGO_BIN_EXE_zoo")).with_file_name("loadtest");
    if !loadtest.exists() {
        eprintln!(
            "soak: {} is missing; build it with `cargo build --release -p loadtest` (make soak does)",
            loadtest.display()
        );
        return ExitCode::FAILURE;
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (server_cpu, client_cpu) = if cpus >= 2 {
        (Some(0), Some(1))
    } else {
        (None, None)
    };
    eprintln!(
        "soak: {total} requests per model, server on CPU {server_cpu:?}, loadtest on CPU {client_cpu:?}"
    );
    let mut results = Vec::new();
    let mut failed = false;
    for model in models() {
        // `None` only for uring where the kernel refuses io_uring (said why); any other failure
        // to start stops the soak.
        let Some(server) = Server::start_with(&model, &[], |c| pin(c, server_cpu)) else {
            continue;
        };
        match soak(&server, &loadtest, total, client_cpu) {
            Ok(result) => {
                failed |= result.errors > 0 || result.after.fds > result.before.fds;
                print_row(&result, results.is_empty());
                results.push(result);
            }
            Err(e) => {
                eprintln!("soak: {model}: {e}");
                failed = true;
            }
        }
    }
    println!();
    print_series(&results);
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Warms the server up, samples it, runs the rounds sampling after each, and samples again.
fn soak(s: &Server, loadtest: &Path, total: u64, cpu: Option<usize>) -> Result<Soak, String> {
    let per_round = (total / ROUNDS).max(10);
    let warm_up = (total / 20).clamp(1000, 50_000);
    let url = |path: &str| format!("http://{}{path}", s.addr);
    // The warm-up touches every route once in volume, so that what is made on first use (the
    // rayon pool, buffers, arenas) is in the "before" figure.
    load(loadtest, &url("/"), warm_up, 64, &[], cpu)?;
    load(loadtest, &url("/"), warm_up / 10, 16, &["--close"], cpu)?;
    for (path, extra) in SIDE_ROUTES {
        load(loadtest, &url(path), warm_up / 10, 64, extra, cpu)?;
    }
    let before = at_rest(s)?;
    let mut rounds = Vec::new();
    let mut requests = 0;
    let mut errors = 0;
    let mut seconds = 0.0;
    for round in 0..ROUNDS as usize {
        let tenth = per_round / 10;
        let (path, extra) = SIDE_ROUTES[round % SIDE_ROUTES.len()];
        for (target, n, connections, args) in [
            (url("/"), per_round - 2 * tenth, 64, &[][..]),
            (url("/"), tenth, 16, &["--close"][..]),
            (url(path), tenth, 64, extra),
        ] {
            let run = load(loadtest, &target, n, connections, args, cpu)?;
            requests += run.requests;
            errors += run.errors;
            seconds += run.seconds;
        }
        rounds.push(at_rest(s)?);
    }
    let after = *rounds.last().expect("ROUNDS > 0");
    Ok(Soak {
        model: s.model.clone(),
        requests,
        errors,
        seconds,
        before,
        after,
        rounds,
    })
}

/// What one `loadtest` run reports.
struct Run {
    /// Responses of any status.
    requests: u64,
    /// Failed requests and answers other than 2xx.
    errors: u64,
    /// The measured time.
    seconds: f64,
}

/// Runs `loadtest run -n N -c C` from one thread.
fn load(
    loadtest: &Path,
    url: &str,
    n: u64,
    connections: u32,
    args: &[&str],
    cpu: Option<usize>,
) -> Result<Run, String> {
    let mut cmd = Command::new(loadtest);
    cmd.args(["run", "-t", "1", "-n", &n.to_string(), "--json", "-"])
        .args(["-c", &connections.to_string()])
        .args(args)
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    pin(&mut cmd, cpu);
    let out = cmd.output().map_err(|e| format!("loadtest: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "loadtest {url} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("loadtest JSON: {e}"))?;
    let requests = report["requests"].as_u64().unwrap_or(0);
    let errors = report["errors"]["total"].as_u64().unwrap_or(0);
    let not_2xx: u64 = ["1xx", "3xx", "4xx", "5xx"]
        .iter()
        .filter_map(|class| report["responses"][class].as_u64())
        .sum();
    if errors > 0 || not_2xx > 0 {
        eprintln!(
            "soak: {url}: errors {} responses {}",
            report["errors"], report["responses"]
        );
    }
    Ok(Run {
        requests,
        errors: errors + not_2xx,
        seconds: report["duration_s"].as_f64().unwrap_or(0.0),
    })
}

/// Waits until no client connection is open (the `/metrics` request asking is the one counted),
/// then samples the process tree.
fn at_rest(s: &Server) -> Result<Sample, String> {
    wait_for(Duration::from_secs(10), || {
        (s.try_metric("zoo_connections_active") == Ok(1)).then_some(())
    })
    .ok_or("connections still open 10 s after the load ended")?;
    // The asking connection's own thread or process ends a moment after it is answered.
    std::thread::sleep(Duration::from_millis(300));
    Ok(Sample {
        fds: open_fds(s.pid()),
        rss_kib: rss_kib(s.pid()),
    })
}

/// Pins the command to `cpu` once it has forked, before it runs.
fn pin(cmd: &mut Command, cpu: Option<usize>) {
    let Some(cpu) = cpu else { return };
    // SAFETY: runs in the forked child before exec, calling only sched_setaffinity (a system call)
    // on a set on its own stack.
    unsafe {
        cmd.pre_exec(move || {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu, &mut set);
            if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}

fn print_row(r: &Soak, header: bool) {
    if header {
        println!(
            "{:<12} {:>9} {:>7} {:>8} {:>6}  {:>10} {:>9}  {:>14} {:>13}",
            "model",
            "requests",
            "seconds",
            "req/s",
            "errors",
            "fds before",
            "fds after",
            "RSS before MiB",
            "RSS after MiB"
        );
    }
    println!(
        "{:<12} {:>9} {:>7.1} {:>8.0} {:>6}  {:>10} {:>9}  {:>14} {:>13}",
        r.model,
        r.requests,
        r.seconds,
        r.requests as f64 / r.seconds,
        r.errors,
        r.before.fds,
        r.after.fds,
        mib(r.before.rss_kib),
        mib(r.after.rss_kib)
    );
}

/// RSS after each round, per model: a leak climbs round after round; a plateau is the allocator.
fn print_series(results: &[Soak]) {
    println!("RSS (MiB) at rest after each of the {ROUNDS} rounds; descriptors in brackets");
    for r in results {
        let series: Vec<String> = r
            .rounds
            .iter()
            .map(|s| format!("{} [{}]", mib(s.rss_kib), s.fds))
            .collect();
        println!("{:<12} {}", r.model, series.join("  "));
    }
}
