//! The `process_*` series of `/metrics` against what `/proc` says of the same processes: for a
//! one-process model (`epoll`), for `prefork` (live workers) and for `fork` (connection processes
//! that lived, burned CPU and were reaped before the scrape). Each check brackets the scrape
//! between two readings of `/proc`, so a figure that moves while the scrape runs stays inside.

mod support;

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use support::{process_tree, rss_kib, wait_for, Client, Server};

/// CPU work per request: tens of milliseconds in a debug build, enough to add up to many ticks.
const CPU_TARGET: &str = "/cpu?n=3000000";

/// What `/proc` says of the tree rooted at `root`.
#[derive(Debug, Clone, Copy)]
struct ProcView {
    /// utime + stime + cutime + cstime over the live processes, in seconds.
    cpu_s: f64,
    rss_bytes: u64,
    vsize_bytes: u64,
    open_fds: u64,
    processes: usize,
}

fn ticks_per_second() -> f64 {
    // SAFETY: sysconf with a constant name has no preconditions.
    (unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).max(1) as f64
}

/// The fields of /proc/PID/stat from the state on (index 0 is field 3 of proc(5)).
fn stat_fields(pid: u32) -> Option<Vec<i64>> {
    let line = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = line.rsplit_once(')')?;
    Some(
        rest.split_whitespace()
            .skip(1)
            .map(|f| f.parse().unwrap_or(0))
            .collect(),
    )
}

fn field(fields: &[i64], n: usize) -> i64 {
    // Field n of proc(5); the vector starts at field 4 (the ppid).
    fields[n - 4]
}

fn proc_view(root: u32) -> ProcView {
    let tree = process_tree(root);
    let mut ticks = 0;
    let mut vsize = 0;
    let mut fds = 0;
    for &pid in &tree {
        let Some(f) = stat_fields(pid) else { continue };
        ticks += field(&f, 14) + field(&f, 15) + field(&f, 16) + field(&f, 17);
        vsize += field(&f, 23) as u64;
        fds += std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count() as u64);
    }
    ProcView {
        cpu_s: ticks as f64 / ticks_per_second(),
        rss_bytes: rss_kib(root) * 1024,
        vsize_bytes: vsize,
        open_fds: fds,
        processes: tree.len(),
    }
}

/// The unlabelled samples of `/metrics`, by name, asked on `client`'s connection.
fn scrape(client: &mut Client<'_>) -> HashMap<String, f64> {
    let text = client.send("GET", "/metrics", "", b"").text();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.contains('{'))
        .filter_map(|l| {
            let (name, value) = l.split_once(' ')?;
            Some((name.to_string(), value.parse().ok()?))
        })
        .collect()
}

fn value(metrics: &HashMap<String, f64>, name: &str) -> f64 {
    *metrics
        .get(name)
        .unwrap_or_else(|| panic!("no {name} in /metrics: {metrics:?}"))
}

/// The scrape against the readings before and after it. The scrape's connection is opened
/// first, so that under `fork` its process is in both readings, as it is in the scrape.
fn check_against_proc(server: &Server, what: &str) -> HashMap<String, f64> {
    let root = server.pid();
    let mut client = Client::new(server);
    assert_eq!(client.send("GET", "/healthz", "", b"").status, 200);
    let before = proc_view(root);
    let metrics = scrape(&mut client);
    let after = proc_view(root);
    eprintln!("{what}: /proc before {before:?}");
    eprintln!("{what}: /proc after  {after:?}");
    let mut series: Vec<_> = metrics
        .iter()
        .filter(|(k, _)| k.starts_with("process_"))
        .collect();
    series.sort_by(|a, b| a.0.cmp(b.0));
    eprintln!("{what}: /metrics {series:?}");

    // CPU: within two ticks of the bracket (the kernel's accounting unit), per process.
    let tick = 1.0 / ticks_per_second();
    let slack = 2.0 * tick * after.processes.max(before.processes) as f64;
    let cpu = value(&metrics, "process_cpu_seconds_total");
    assert!(
        cpu >= before.cpu_s - slack && cpu <= after.cpu_s + slack,
        "{what}: process_cpu_seconds_total {cpu} outside /proc's [{}, {}] ± {slack}",
        before.cpu_s,
        after.cpu_s
    );
    // Memory moves a little as the scrape itself allocates: 10% and 1 MiB of room.
    let within = |name: &str, lo: u64, hi: u64| {
        let v = value(&metrics, name);
        let (lo, hi) = (lo.min(hi) as f64, lo.max(hi) as f64);
        assert!(
            v >= lo * 0.9 - 1048576.0 && v <= hi * 1.1 + 1048576.0,
            "{what}: {name} {v} outside /proc's [{lo}, {hi}]"
        );
    };
    within(
        "process_resident_memory_bytes",
        before.rss_bytes,
        after.rss_bytes,
    );
    within(
        "process_virtual_memory_bytes",
        before.vsize_bytes,
        after.vsize_bytes,
    );
    // Descriptors: the scrape's own connection (and, under fork, its process) come and go.
    let fds = value(&metrics, "process_open_fds");
    let (lo, hi) = (
        before.open_fds.min(after.open_fds),
        before.open_fds.max(after.open_fds),
    );
    assert!(
        fds >= lo as f64 - 1.0 && fds <= hi as f64 + 8.0,
        "{what}: process_open_fds {fds} outside /proc's [{lo}, {hi}]"
    );
    let limits = std::fs::read_to_string(format!("/proc/{root}/limits")).expect("limits");
    let soft: f64 = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse().ok())
        .expect("Max open files in /proc/PID/limits");
    assert_eq!(value(&metrics, "process_max_fds"), soft, "{what}");
    // Start time: the root's, from its starttime after boot; it started during this test.
    let boot: f64 = std::fs::read_to_string("/proc/stat")
        .expect("/proc/stat")
        .lines()
        .find_map(|l| l.strip_prefix("btime ")?.trim().parse().ok())
        .expect("btime");
    let started = boot + field(&stat_fields(root).expect("root"), 22) as f64 / ticks_per_second();
    let start = value(&metrics, "process_start_time_seconds");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after the epoch")
        .as_secs_f64();
    assert!(
        (start - started).abs() < 0.02,
        "{what}: start {start} vs {started}"
    );
    assert!(
        start <= now + 1.0 && start > now - 600.0,
        "{what}: start {start}, now {now}"
    );
    metrics
}

/// `n` CPU-heavy requests on one keep-alive connection, then `n` on connections of their own.
fn load(server: &Server, n: usize) {
    let mut client = Client::new(server);
    for _ in 0..n {
        assert_eq!(client.send("GET", CPU_TARGET, "", b"").status, 200);
    }
    drop(client);
    for _ in 0..n {
        assert_eq!(server.get(CPU_TARGET).status, 200);
    }
}

#[test]
fn one_process_model_reports_what_proc_says() {
    let Some(server) = Server::start("epoll", &[]) else {
        panic!("epoll must start");
    };
    load(&server, 20);
    let metrics = check_against_proc(&server, "epoll");
    assert!(value(&metrics, "process_cpu_seconds_total") > 0.0);
}

#[test]
fn prefork_reports_its_workers() {
    let server = Server::start("prefork", &["--workers", "3"]).expect("prefork must start");
    wait_for(Duration::from_secs(10), || {
        (process_tree(server.pid()).len() == 4).then_some(())
    })
    .expect("three workers");
    load(&server, 20);
    let metrics = check_against_proc(&server, "prefork");
    // The work ran in the workers: the master alone is far below the total.
    let master = stat_fields(server.pid()).expect("master");
    let master_s = (field(&master, 14) + field(&master, 15)) as f64 / ticks_per_second();
    let cpu = value(&metrics, "process_cpu_seconds_total");
    assert!(
        cpu > master_s + 0.1,
        "tree {cpu} s, master alone {master_s} s"
    );
    // RSS is summed over the four processes: more than the master's alone.
    let master_rss = rss_kib_of(server.pid()) * 1024;
    assert!(value(&metrics, "process_resident_memory_bytes") > 2.0 * master_rss as f64);
}

#[test]
fn fork_counts_reaped_connection_processes() {
    let server = Server::start("fork", &[]).expect("fork must start");
    load(&server, 20);
    // Every connection process has exited and been reaped: only the master is left.
    wait_for(Duration::from_secs(10), || {
        (process_tree(server.pid()).len() == 1).then_some(())
    })
    .expect("connection processes reaped");
    let master = stat_fields(server.pid()).expect("master");
    let reaped_s = (field(&master, 16) + field(&master, 17)) as f64 / ticks_per_second();
    assert!(
        reaped_s > 0.1,
        "the children's work shows in cutime: {reaped_s} s"
    );
    let metrics = check_against_proc(&server, "fork");
    assert!(value(&metrics, "process_cpu_seconds_total") >= reaped_s);
}

/// VmRSS of one process, in KiB.
fn rss_kib_of(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| {
            l.strip_prefix("VmRSS:")?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .expect("VmRSS")
}
