//! The `process_*` series of `/metrics`, read from `/proc`: what the server has used, reported by
//! the server itself, so that a scraper that cannot see this host's `/proc` (a container, another
//! machine) still learns it.
//!
//! The root is the process that built the service, before anything forked: the only process of
//! the threaded and event-loop models, the master (the listener's owner) under `fork` and
//! `prefork`. A worker or connection process that answers a scrape reports the same tree as the
//! master would, because the root's pid is recorded before the fork.
//!
//! For the process models the figures cover the whole tree:
//!
//! - CPU: for every live process of the tree, `utime + stime` (all its threads) and
//!   `cutime + cstime` (children it has already reaped). A child that lived and died between two
//!   scrapes is counted through the master's wait; a live one through its own line. If the root
//!   reaped a child while the tree was being read, its time might be counted twice or not at all,
//!   so the root is read before and after, and the walk is redone when its reaped time moved.
//! - Memory: the sum of the resident (and virtual) sizes of the live processes. Pages shared
//!   between them (the binary, copy-on-write pages of the master) count once per process, as
//!   `loadtest compare` counts them from `/proc` in direct mode, so both columns mean the same.
//! - Descriptors: the sum over the live processes (one inherited by a child counts in each); the
//!   limit is the soft `RLIMIT_NOFILE`, the same in every process of the tree.
//! - Start time: the root's.

use common::service::{ProcessProbe, ProcessSample};
use std::collections::HashMap;
use std::fs;
use std::sync::OnceLock;

/// What is fixed for the server's lifetime, recorded by [`probe`] before any fork.
struct Root {
    pid: u32,
    /// Whether the tree holds other processes than the root (`fork`, `prefork`).
    tree: bool,
    start_time_seconds: f64,
    ticks_per_second: f64,
    page_size: u64,
}

static ROOT: OnceLock<Root> = OnceLock::new();

/// The probe for the service's `process_*` series, rooted at this process. `tree` is whether
/// the model forks (its children are then found and added). Call it before forking.
pub fn probe(tree: bool) -> ProcessProbe {
    // SAFETY: sysconf with constant names has no preconditions.
    let (ticks, page) = unsafe {
        (
            libc::sysconf(libc::_SC_CLK_TCK),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    let ticks_per_second = if ticks > 0 { ticks as f64 } else { 100.0 };
    let pid = std::process::id();
    let start_time_seconds = start_time(pid, ticks_per_second).unwrap_or(0.0);
    // The first server of the process keeps its root; a later one (tests) shares it.
    let _ = ROOT.set(Root {
        pid,
        tree,
        start_time_seconds,
        ticks_per_second,
        page_size: u64::try_from(page).unwrap_or(4096),
    });
    sample
}

/// One reading of the tree; `None` without `/proc` (the series are then left out).
fn sample() -> Option<ProcessSample> {
    let root = ROOT.get()?;
    let mut before = read_stat(root.pid)?;
    let mut members = Vec::new();
    // Three tries: a reap during every one of them would take a server forking flat out.
    for _ in 0..3 {
        members = if root.tree {
            descendants(root.pid)
        } else {
            Vec::new()
        };
        let after = read_stat(root.pid)?;
        let settled = after.reaped_ticks == before.reaped_ticks;
        before = after;
        if settled {
            break;
        }
    }
    let mut out = ProcessSample {
        max_fds: max_fds(),
        start_time_seconds: root.start_time_seconds,
        ..ProcessSample::default()
    };
    let mut ticks = 0;
    for (pid, stat) in std::iter::once((root.pid, before)).chain(members) {
        ticks += stat.own_ticks + stat.reaped_ticks;
        out.resident_bytes += stat.rss_pages * root.page_size;
        out.virtual_bytes += stat.vsize_bytes;
        out.open_fds += open_fds(pid);
    }
    out.cpu_seconds = ticks as f64 / root.ticks_per_second;
    Some(out)
}

/// The figures of one `/proc/PID/stat` line that the series need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stat {
    ppid: u32,
    /// `utime + stime`, in clock ticks.
    own_ticks: u64,
    /// `cutime + cstime`: children reaped, in clock ticks.
    reaped_ticks: u64,
    /// `starttime`: clock ticks after boot.
    start_ticks: u64,
    vsize_bytes: u64,
    rss_pages: u64,
}

/// Parses a `/proc/PID/stat` line. The command name sits in parentheses and may itself hold
/// spaces and parentheses, so the fields are counted from the last `)`.
fn parse_stat(line: &str) -> Option<Stat> {
    let rest = &line[line.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // The state is field 3 of proc(5), the first after the name: field N sits at index N - 3.
    let num = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    // cutime, cstime and rss are signed in the kernel's format.
    let signed = |n: usize| Some(fields.get(n - 3)?.parse::<i64>().ok()?.max(0) as u64);
    Some(Stat {
        ppid: u32::try_from(num(4)?).ok()?,
        own_ticks: num(14)? + num(15)?,
        reaped_ticks: signed(16)? + signed(17)?,
        start_ticks: num(22)?,
        vsize_bytes: num(23)?,
        rss_pages: signed(24)?,
    })
}

fn read_stat(pid: u32) -> Option<Stat> {
    parse_stat(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Every live descendant of `root`, found by the parent pids of all processes in `/proc`.
fn descendants(root: u32) -> Vec<(u32, Stat)> {
    let mut children: HashMap<u32, Vec<(u32, Stat)>> = HashMap::new();
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    for entry in dir.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        if pid == root {
            continue;
        }
        // A process may exit between the listing and the read: it is counted by its reaper.
        if let Some(stat) = read_stat(pid) {
            children.entry(stat.ppid).or_default().push((pid, stat));
        }
    }
    let mut found = Vec::new();
    let mut parents = vec![root];
    while let Some(parent) = parents.pop() {
        for (pid, stat) in children.remove(&parent).unwrap_or_default() {
            parents.push(pid);
            found.push((pid, stat));
        }
    }
    found
}

fn open_fds(pid: u32) -> u64 {
    fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |dir| dir.count() as u64)
}

fn max_fds() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes only the struct passed.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 {
        lim.rlim_cur
    } else {
        0
    }
}

/// When `pid` started, in seconds since the epoch: its `starttime` after the boot time (`btime`
/// of `/proc/stat`), as the Prometheus client libraries compute it.
fn start_time(pid: u32, ticks_per_second: f64) -> Option<f64> {
    let boot: u64 = fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime ")?.trim().parse().ok())?;
    let stat = read_stat(pid)?;
    Some(boot as f64 + stat.start_ticks as f64 / ticks_per_second)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_from_the_last_parenthesis() {
        let line = "42 (zoo (w) 1) S 7 42 42 0 -1 4194560 100 0 0 0 \
                    12 3 5 -1 20 0 1 0 9000 123456789 250 18446744073709551615";
        assert_eq!(
            parse_stat(line),
            Some(Stat {
                ppid: 7,
                own_ticks: 15,
                reaped_ticks: 5,
                start_ticks: 9000,
                vsize_bytes: 123_456_789,
                rss_pages: 250,
            })
        );
        assert_eq!(parse_stat("42 (zoo) S 7"), None);
    }

    #[test]
    fn this_process_reads_itself() {
        let _ = probe(false);
        let sample = sample().expect("/proc is readable here");
        assert!(sample.resident_bytes > 0 && sample.virtual_bytes >= sample.resident_bytes);
        assert!(sample.open_fds >= 3 && sample.max_fds >= sample.open_fds);
        assert!(sample.start_time_seconds > 1.0e9);
    }
}
