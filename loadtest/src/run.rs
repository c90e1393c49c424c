//! `loadtest run`: turns the options into a [`Load`]; [`measure`] turns a load into a [`Plan`],
//! starts one [`Worker`] per thread, adds up their reports while the caller's progress display
//! runs, checks the generator itself, and returns the report. `compare` calls [`measure`] too,
//! for every cell of its matrix, in this same process.

use crate::cli::RunArgs;
use crate::engine::{Engine, Io, Plan, Share, Worker};
use crate::format::format_us;
use crate::hlog;
use crate::report::{
    self, Config, Errors, Generator, IntervalOut, Latency, OpenLoop, RunReport, StatusClasses,
    ThreadOut,
};
use crate::stats::{Collector, Recorder, Report, Second, Tally};
use crate::sys::{self, Ring};
use common::client::{encode_request, EncodeError, RequestSpec};
use hdrhistogram::serialization::V2DeflateSerializer;
use indicatif::{ProgressBar, ProgressStyle};
use std::error::Error;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// A thread busier than this (CPU time over wall time) is reported as a likely bottleneck.
const BUSY_WARNING: f64 = 0.9;
/// Open loop: more late sends than this fraction earn a warning.
const LATE_WARNING: f64 = 0.01;
/// Open loop: a schedule lag above this earns a warning, in microseconds.
const LAG_WARNING_US: u64 = 10_000;
/// Without `-d` or `-n`, the run lasts this long, as wrk's does.
const DEFAULT_DURATION: Duration = Duration::from_secs(10);

/// One thread's progress counter, alone on its cache line so the threads never share one.
#[repr(align(64))]
#[derive(Default)]
struct Slot(AtomicU64);

/// One load, fully described: what `run` builds from its options, and what `compare` builds
/// for each cell of its matrix.
#[derive(Debug, Clone)]
pub struct Load {
    /// The target as the report names it.
    pub url: String,
    /// Where every connection goes.
    pub addr: SocketAddr,
    /// The request method (HEAD responses are read without a body).
    pub method: String,
    /// One request, encoded; sent as it is, so it may use any framing (e.g. chunked).
    pub request: Vec<u8>,
    /// Connections over all threads.
    pub connections: usize,
    /// Generator threads, at most `connections`.
    pub threads: usize,
    /// Measured duration (after the warm-up), or `None` to count requests.
    pub duration: Option<Duration>,
    /// Measured requests, with `duration` `None`.
    pub requests: Option<u64>,
    /// Open loop: requests per second in total.
    pub rate: Option<f64>,
    /// Requests in flight per connection.
    pub pipeline: usize,
    /// A new connection per request.
    pub close: bool,
    /// Longest wait for a connection or a response.
    pub timeout: Duration,
    /// Load before measuring; only `warmup_requests` counts it.
    pub warmup: Duration,
}

/// Where a run stands, handed to the caller's progress display every 100 ms.
#[derive(Debug, Clone, Copy)]
pub struct Tick {
    /// Since the run began, warm-up included.
    pub elapsed: Duration,
    /// Requests finished (answered or failed), warm-up included.
    pub done: u64,
}

/// Runs the load described by `args` and prints or writes the results.
pub fn run(args: &RunArgs) -> Result<(), Box<dyn Error>> {
    args.check()?;
    let target = &args.url;
    let headers: Vec<(&str, &str)> = args
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let spec = RequestSpec {
        headers: &headers,
        body: args.body.as_ref().map_or(&[][..], |b| &b.0),
        close: args.close,
        ..RequestSpec::new(&args.method, &target.path, &target.authority)
    };
    let mut request = Vec::new();
    encode_request(&spec, &mut request).map_err(|e| match e {
        EncodeError::BadMethod => format!("-m/--method: {e}"),
        EncodeError::BadTarget | EncodeError::BadHost => format!("<URL>: {e}"),
        _ => format!("-H/--header: {e}"),
    })?;
    let duration = match (args.duration, args.requests) {
        (Some(d), _) => Some(d),
        (None, Some(_)) => None,
        (None, None) => Some(DEFAULT_DURATION),
    };
    let load = Load {
        url: target.url.clone(),
        addr: target.resolve()?,
        method: args.method.clone(),
        request,
        connections: args.connections as usize,
        threads: args.thread_count(),
        duration,
        requests: args.requests,
        rate: args.rate,
        pipeline: args.pipeline as usize,
        close: args.close,
        timeout: args.timeout,
        warmup: args.warmup,
    };

    let interrupted = Arc::new(AtomicBool::new(false));
    // First Ctrl-C: stop and report what was measured; a second one exits at once.
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(signal, 130, Arc::clone(&interrupted))?;
        signal_hook::flag::register(signal, Arc::clone(&interrupted))?;
    }
    let progress = progress_bar(duration, load.warmup, args.requests);
    let mut on_tick = |tick: Tick| {
        if let Some(bar) = &progress {
            update_bar(bar, tick, load.warmup, args.requests.is_some());
        }
    };
    let engine = match args.engine {
        Some(Engine::Uring) => {
            if let Err(e) = Ring::new(1, 8, 64, b"") {
                return Err(format!("--engine uring: the kernel refused io_uring ({e})").into());
            }
            Engine::Uring
        }
        Some(Engine::Epoll) | None => Engine::Epoll,
    };
    let report = measure_with(
        &load,
        engine,
        args.hlog.as_deref(),
        &interrupted,
        &mut on_tick,
    );
    if let Some(bar) = &progress {
        bar.finish_and_clear();
    }
    let report = report?;

    let summary = report::summary(&report, args.intervals);
    let to_stdout = args.json.as_deref() == Some("-");
    if to_stdout {
        eprint!("{summary}");
    } else {
        print!("{summary}");
    }
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    if interrupted.load(Ordering::Relaxed) {
        eprintln!("note: interrupted; the figures cover the part that ran");
    }
    if let Some(dest) = &args.json {
        let text = serde_json::to_string_pretty(&report)?;
        if to_stdout {
            println!("{text}");
        } else {
            std::fs::write(dest, text + "\n").map_err(|e| format!("--json {dest}: {e}"))?;
        }
    }
    Ok(())
}

/// Runs `load` in this process and returns its report: one [`Worker`] per thread, their seconds
/// added up as they come (and written to `hlog` if given). `on_tick` is called every 100 ms;
/// setting `interrupted` stops the run early, and the report covers what ran.
pub fn measure(
    load: &Load,
    hlog: Option<&Path>,
    interrupted: &AtomicBool,
    on_tick: &mut dyn FnMut(Tick),
) -> Result<RunReport, Box<dyn Error>> {
    measure_with(load, Engine::Epoll, hlog, interrupted, on_tick)
}

/// [`measure`] with the given engine ([`measure`] takes epoll, the cheaper of the two on
/// loopback as `make bench-loadgen` measures them).
pub fn measure_with(
    load: &Load,
    engine: Engine,
    hlog: Option<&Path>,
    interrupted: &AtomicBool,
    on_tick: &mut dyn FnMut(Tick),
) -> Result<RunReport, Box<dyn Error>> {
    let threads = load.threads.clamp(1, load.connections.max(1));
    let connections = load.connections;
    // A socket per connection, an epoll per thread, and a few to spare for stdio and files.
    let wanted = connections as u64 + threads as u64 + 32;
    let limit = sys::raise_fd_limit(wanted)?;
    if limit < wanted {
        return Err(format!(
            "-c/--connections {connections} needs {wanted} open files, but the limit is {limit}; \
             raise it (ulimit -n) or use fewer connections"
        )
        .into());
    }
    let pipeline = load.pipeline.max(1);
    let warmup = load.warmup.as_nanos() as u64;
    let plan = Plan {
        addr: load.addr,
        batch: load.request.repeat(pipeline),
        request_len: load.request.len(),
        pipeline,
        head_request: load.method.eq_ignore_ascii_case("HEAD"),
        close: load.close,
        timeout: load.timeout.as_nanos() as u64,
        measure_start: warmup,
        stop_at: load.duration.map(|d| warmup + d.as_nanos() as u64),
        last_bin: load
            .duration
            .map(|d| d.as_secs_f64().ceil().max(1.0) as u64 - 1),
        threads,
    };
    let slots: Vec<Slot> = (0..threads).map(|_| Slot::default()).collect();

    let mut hlog_file = match hlog {
        Some(path) => Some(BufWriter::new(
            std::fs::File::create(path).map_err(|e| format!("--hlog {}: {e}", path.display()))?,
        )),
        None => None,
    };
    let mut serializer = V2DeflateSerializer::new();
    let wall_start = SystemTime::now();
    let cpu_start = sys::process_cpu();
    let base = Instant::now();
    let mut hlog_writer = match hlog_file.as_mut() {
        Some(file) => Some(hlog::begin(
            file,
            &mut serializer,
            wall_start + load.warmup,
            &format!("loadtest run {}", load.url),
        )?),
        None => None,
    };
    let mut hlog_error: Option<io::Error> = None;
    let mut sink = |s: &Second| {
        if let Some(log) = hlog_writer.as_mut() {
            let written =
                hlog::write_interval(log, s.bin as f64, s.length, &s.latency, s.service.as_ref());
            if let Err(e) = written {
                hlog_error.get_or_insert(e);
            }
        }
    };

    let open_loop = load.rate.is_some();
    let mut collector = Collector::new(threads, open_loop);
    let (tx, rx) = mpsc::channel::<Report>();
    let mut thread_errors = Vec::new();
    std::thread::scope(|scope| {
        let mut handles = Vec::new();
        for (index, slot) in slots.iter().enumerate() {
            let share = Share {
                index,
                connections: split(connections as u64, threads, index) as usize,
                rate: load.rate.map(|r| {
                    r * split(connections as u64, threads, index) as f64 / connections as f64
                }),
                budget: load.requests.map(|n| split(n, threads, index)),
            };
            let rec = Recorder::new(index, open_loop, warmup, plan.last_bin, tx.clone());
            let (plan, slot) = (&plan, &slot.0);
            handles.push(scope.spawn(move || -> io::Result<()> {
                let io = match Io::open(engine, plan, share.connections) {
                    Ok(io) => io,
                    Err(e) => {
                        rec.finish(sys::CpuTime::default(), Duration::ZERO, 0);
                        return Err(e);
                    }
                };
                Worker::new(plan, share, base, io, rec, interrupted, slot).run()
            }));
        }
        drop(tx);
        loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(report) => collector.absorb(report, &mut sink),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {}
            }
            let done: u64 = slots.iter().map(|s| s.0.load(Ordering::Relaxed)).sum();
            on_tick(Tick {
                elapsed: base.elapsed(),
                done,
            });
        }
        for handle in handles {
            match handle.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => thread_errors.push(e.to_string()),
                Err(_) => thread_errors.push("a generator thread panicked".to_string()),
            }
        }
    });
    if let Some(e) = thread_errors.first() {
        return Err(format!("generator thread failed: {e}").into());
    }

    let was_interrupted = interrupted.load(Ordering::Relaxed);
    let stopped_ns = collector
        .threads
        .iter()
        .flatten()
        .map(|t| t.stopped_ns)
        .max()
        .unwrap_or(0);
    let ran_s = stopped_ns.saturating_sub(warmup) as f64 / 1e9;
    let measured_s = match load.duration {
        Some(d) if !was_interrupted => d.as_secs_f64(),
        Some(d) => ran_s.min(d.as_secs_f64()),
        None => ran_s,
    }
    .max(1e-9);
    collector.finish(measured_s, &mut sink);
    if let Some(mut file) = hlog_file {
        file.flush()?;
    }
    if let Some(e) = hlog_error {
        return Err(format!("--hlog: {e}").into());
    }
    let cpu = sys::process_cpu().since(cpu_start);
    Ok(build_report(load, threads, measured_s, &collector, cpu))
}

/// Part `index` of `total` split over `parts` as evenly as possible.
fn split(total: u64, parts: usize, index: usize) -> u64 {
    let parts = parts as u64;
    total / parts + u64::from((index as u64) < total % parts)
}

fn progress_bar(
    duration: Option<Duration>,
    warmup: Duration,
    requests: Option<u64>,
) -> Option<ProgressBar> {
    if !io::stderr().is_terminal() {
        return None;
    }
    let (len, template) = match (duration, requests) {
        (Some(d), _) => (
            (warmup + d).as_millis() as u64,
            "{spinner} {elapsed:>4} [{wide_bar}] {msg}",
        ),
        (None, Some(n)) => (n, "{spinner} {elapsed:>4} [{wide_bar}] {pos}/{len} {msg}"),
        (None, None) => (0, "{spinner} {elapsed:>4} {msg}"),
    };
    // The templates above are constant and valid.
    let style = ProgressStyle::with_template(template)
        .ok()?
        .progress_chars("=> ");
    Some(ProgressBar::new(len).with_style(style))
}

fn update_bar(bar: &ProgressBar, tick: Tick, warmup: Duration, by_count: bool) {
    if by_count {
        bar.set_position(tick.done);
    } else {
        bar.set_position(tick.elapsed.as_millis() as u64);
    }
    let measured_s = tick.elapsed.saturating_sub(warmup).as_secs_f64();
    if tick.elapsed < warmup {
        bar.set_message("warming up");
    } else if measured_s > 0.0 {
        bar.set_message(format!("{:.0} req/s", tick.done as f64 / measured_s));
    }
}

fn build_report(
    load: &Load,
    threads: usize,
    measured_s: f64,
    c: &Collector,
    cpu: sys::CpuTime,
) -> RunReport {
    let t: &Tally = &c.tally;
    let latency = Latency::of(&c.latency);
    let service_time = c.service.as_ref().map(Latency::of);
    let open_loop = load.rate.map(|rate| OpenLoop {
        rate,
        achieved_rate: t.responses as f64 / measured_s,
        sent: t.sent,
        late_sends: t.late,
        late_threshold_us: crate::stats::LATE_NS / 1000,
        max_lag_us: t.max_lag_ns / 1000,
    });
    let thread_out: Vec<ThreadOut> = c
        .threads
        .iter()
        .flatten()
        .map(|d| {
            let cpu_s = d.cpu.total().as_secs_f64();
            let wall_s = d.wall.as_secs_f64();
            ThreadOut {
                thread: d.thread,
                cpu_s,
                wall_s,
                busy: if wall_s > 0.0 { cpu_s / wall_s } else { 0.0 },
            }
        })
        .collect();
    let mut warnings = Vec::new();
    for th in &thread_out {
        if th.busy >= BUSY_WARNING {
            warnings.push(format!(
                "generator thread {} was on the CPU {:.0}% of its time: the generator may be \
                 the bottleneck; add threads (-t), CPUs, or generator hosts (see loadtest merge)",
                th.thread,
                th.busy * 100.0
            ));
        }
    }
    if let Some(o) = &open_loop {
        let late_fraction = if o.sent > 0 {
            o.late_sends as f64 / o.sent as f64
        } else {
            0.0
        };
        if late_fraction > LATE_WARNING || o.max_lag_us > LAG_WARNING_US {
            warnings.push(format!(
                "{} of {} sends ({:.1}%) left more than {} late, the latest by {}: the schedule \
                 slipped, because connections were still waiting for answers (add -c), or the \
                 generator did not get a CPU in time (saturated, or other load on this machine); \
                 corrected latency includes the slip",
                o.late_sends,
                o.sent,
                late_fraction * 100.0,
                format_us(o.late_threshold_us),
                format_us(o.max_lag_us)
            ));
        }
        if o.achieved_rate < 0.98 * o.rate {
            warnings.push(format!(
                "achieved {:.1} req/s of the {:.1} asked",
                o.achieved_rate, o.rate
            ));
        }
    }
    if t.clamped > 0 {
        warnings.push(format!(
            "{} latencies above one hour were recorded as one hour",
            t.clamped
        ));
    }
    let intervals = c
        .seconds
        .iter()
        .map(|s| IntervalOut {
            second: s.bin,
            length_s: s.length,
            requests: s.responses,
            requests_per_s: s.responses as f64 / s.length,
            errors: s.errors,
            bytes: s.bytes,
            p99_us: s.p99_us,
        })
        .collect();
    RunReport {
        schema: report::SCHEMA.to_string(),
        url: load.url.clone(),
        config: Config {
            method: load.method.clone(),
            connections: load.connections,
            threads,
            duration_s: load.duration.map(|d| d.as_secs_f64()),
            requests: load.requests,
            rate: load.rate,
            pipeline: load.pipeline,
            close: load.close,
            timeout_s: load.timeout.as_secs_f64(),
            warmup_s: load.warmup.as_secs_f64(),
        },
        duration_s: measured_s,
        requests: t.responses,
        requests_per_s: t.responses as f64 / measured_s,
        bytes_read: t.bytes,
        bytes_per_s: t.bytes as f64 / measured_s,
        sent: t.sent,
        retried: t.retried,
        warmup_requests: t.warmup_responses,
        warmup_errors: t.warmup_errors,
        responses: StatusClasses::new(t.status),
        errors: Errors::new(t.errors),
        latency_corrected: load.rate.is_some(),
        latency,
        service_time,
        open_loop,
        intervals,
        generator: Generator {
            cpu_user_s: cpu.user.as_secs_f64(),
            cpu_system_s: cpu.system.as_secs_f64(),
            cpu_us_per_request: if t.responses > 0 {
                cpu.total().as_secs_f64() * 1e6 / t.responses as f64
            } else {
                0.0
            },
            threads: thread_out,
        },
        warnings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up_to_the_whole() {
        for (total, parts) in [(10u64, 3usize), (2, 2), (1, 4), (1000, 7)] {
            let shares: Vec<u64> = (0..parts).map(|i| split(total, parts, i)).collect();
            assert_eq!(shares.iter().sum::<u64>(), total, "{total}/{parts}");
            let spread = shares.iter().max().unwrap_or(&0) - shares.iter().min().unwrap_or(&0);
            assert!(spread <= 1, "{shares:?}");
        }
    }
}
