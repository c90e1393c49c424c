//! The server's cost, read from /proc: CPU time and resident memory of a whole process tree.
//!
//! A model may be one process with many threads (`thread`, `pool`, `tokio`), or a master with
//! worker processes (`prefork`), or a process per connection (`fork`). So a sample walks the
//! tree: the root and every descendant, found by scanning `/proc/*/stat` for parent pids. Per
//! process it adds `utime + stime` (all its threads) and `cutime + cstime` (children it has
//! already reaped: a `fork` child that lived and died between two samples is counted through
//! its parent's wait). A child that is neither alive nor reaped at a sample is missed until it
//! is reaped, which is why the last sample comes after the load has stopped.
//!
//! Memory is the sum of the resident sets. Pages shared between processes (the binary and
//! copy-on-write memory of forked workers) count once per process, so for the forking models
//! the sum overstates what the tree uses together.
//!
//! A [`Sampler`] runs on its own thread during a measured run: it waits out the warm-up, takes
//! the first sample, then one every period for the peak, and the last when it is stopped, once
//! the tree has settled.

use crate::compare::probe::ProcessCounters;
use crate::sys;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The figures of one process, from one line of `/proc/PID/stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    /// The parent's pid.
    pub ppid: u32,
    /// CPU time of the process and of the children it reaped, in clock ticks.
    pub cpu_ticks: u64,
    /// The user-mode part of `cpu_ticks`.
    pub user_ticks: u64,
    /// The kernel-mode part of `cpu_ticks`.
    pub system_ticks: u64,
    /// Threads.
    pub threads: u64,
    /// Resident pages.
    pub rss_pages: u64,
}

/// Parses a `/proc/PID/stat` line. The command name sits in parentheses and may itself hold
/// spaces and parentheses, so the fields are counted from the last `)`.
pub fn parse_stat(line: &str) -> Option<ProcStat> {
    let rest = &line[line.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3 of proc(5), so field N sits at index N - 3.
    let num = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    let signed = |n: usize| {
        fields
            .get(n - 3)?
            .parse::<i64>()
            .ok()
            .map(|v| v.max(0) as u64)
    };
    let user_ticks = num(14)? + signed(16)?;
    let system_ticks = num(15)? + signed(17)?;
    Some(ProcStat {
        ppid: u32::try_from(num(4)?).ok()?,
        cpu_ticks: user_ticks + system_ticks,
        user_ticks,
        system_ticks,
        threads: num(20)?,
        rss_pages: signed(24)?,
    })
}

/// One look at a process tree.
#[derive(Debug, Clone, Copy)]
pub struct TreeSample {
    /// When it was taken.
    pub at: Instant,
    /// CPU time of the tree, in clock ticks.
    pub cpu_ticks: u64,
    /// Resident memory, summed over the processes, in bytes.
    pub rss_bytes: u64,
    /// Threads over the processes.
    pub threads: u64,
    /// Processes in the tree.
    pub processes: u64,
}

/// Samples `root` and all its descendants; `None` once `root` is gone.
pub fn sample_tree(root: u32) -> Option<TreeSample> {
    let at = Instant::now();
    let page = sys::page_size();
    let mut sample = TreeSample {
        at,
        cpu_ticks: 0,
        rss_bytes: 0,
        threads: 0,
        processes: 0,
    };
    for (_, stat) in tree(root)? {
        sample.cpu_ticks += stat.cpu_ticks;
        sample.rss_bytes += stat.rss_pages * page;
        sample.threads += stat.threads;
        sample.processes += 1;
    }
    Some(sample)
}

/// The proportional set size of the tree, in bytes: each page shared by n processes counts
/// 1/n in each, so forked workers are not charged n times for the pages they share. `None`
/// where `/proc/PID/smaps_rollup` cannot be read (kernels before 4.14, another user's
/// process). The kernel walks every mapping to answer, so this is for single moments (c10k's
/// before and after), not for the sampler's period.
pub fn pss_tree(root: u32) -> Option<u64> {
    let mut total = 0;
    for (pid, _) in tree(root)? {
        match read_pss(pid) {
            Some(kb) => total += kb * 1024,
            // The root must answer; a child may just have exited.
            None if pid == root => return None,
            None => {}
        }
    }
    Some(total)
}

fn read_pss(pid: u32) -> Option<u64> {
    let text = fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    text.lines().find_map(|l| {
        l.strip_prefix("Pss:")?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()
    })
}

/// `root` and every descendant, with their figures; `None` once `root` is gone.
pub fn tree(root: u32) -> Option<Vec<(u32, ProcStat)>> {
    let root_stat = read_stat(root)?;
    let mut children: HashMap<u32, Vec<(u32, ProcStat)>> = HashMap::new();
    if let Ok(dir) = fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            if pid == root {
                continue;
            }
            // A process may exit between the listing and the read: it is simply not counted.
            if let Some(stat) = read_stat(pid) {
                children.entry(stat.ppid).or_default().push((pid, stat));
            }
        }
    }
    let mut found = Vec::new();
    let mut pending = vec![(root, root_stat)];
    while let Some((pid, stat)) = pending.pop() {
        found.push((pid, stat));
        if let Some(kids) = children.remove(&pid) {
            pending.extend(kids);
        }
    }
    Some(found)
}

fn read_stat(pid: u32) -> Option<ProcStat> {
    parse_stat(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// What the server tree used during a measured run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Usage {
    /// CPU time between the first and the last sample, in seconds.
    pub cpu_s: f64,
    /// The kernel's unit of CPU time in /proc, in seconds (1/USER_HZ, usually 10 ms): a
    /// `cpu_s` of a few such ticks is only roughly known.
    #[serde(default)]
    pub cpu_tick_s: f64,
    /// Wall time between the first and the last sample, in seconds.
    pub wall_s: f64,
    /// `cpu_s / wall_s`: how many CPUs the server kept busy.
    pub cpu_busy: f64,
    /// Resident memory at the first sample, in KiB.
    pub rss_start_kb: u64,
    /// Resident memory at the last sample, in KiB.
    pub rss_end_kb: u64,
    /// The largest resident memory seen, in KiB.
    pub rss_peak_kb: u64,
    /// The most threads seen over the tree.
    pub threads_peak: u64,
    /// The most processes seen in the tree.
    pub processes_peak: u64,
    /// Samples taken.
    pub samples: u64,
}

impl Usage {
    /// The usage of two trees measured over the same run (a server and the proxy in front of
    /// it): CPU time, memory and counts added, the longer wall time kept.
    pub fn plus(&self, other: &Usage) -> Usage {
        let cpu_s = self.cpu_s + other.cpu_s;
        let wall_s = self.wall_s.max(other.wall_s);
        Usage {
            cpu_s,
            cpu_tick_s: self.cpu_tick_s.max(other.cpu_tick_s),
            wall_s,
            cpu_busy: if wall_s > 0.0 { cpu_s / wall_s } else { 0.0 },
            rss_start_kb: self.rss_start_kb + other.rss_start_kb,
            rss_end_kb: self.rss_end_kb + other.rss_end_kb,
            rss_peak_kb: self.rss_peak_kb + other.rss_peak_kb,
            threads_peak: self.threads_peak + other.threads_peak,
            processes_peak: self.processes_peak + other.processes_peak,
            samples: self.samples.min(other.samples),
        }
    }

    /// The usage between two readings of a server's own process series: CPU time is the
    /// difference, memory the two readings (the peak is the larger of them). Threads and
    /// processes are not in those series and stay 0.
    pub fn between(
        before: &ProcessCounters,
        after: &ProcessCounters,
        wall: Duration,
    ) -> Option<Usage> {
        let cpu_s = after.cpu_seconds - before.cpu_seconds;
        if cpu_s < 0.0 {
            // The counter went back: the server restarted between the readings.
            return None;
        }
        let wall_s = wall.as_secs_f64();
        let (start, end) = (before.resident_bytes / 1024, after.resident_bytes / 1024);
        Some(Usage {
            cpu_s,
            cpu_tick_s: 1.0 / sys::clock_ticks() as f64,
            wall_s,
            cpu_busy: if wall_s > 0.0 { cpu_s / wall_s } else { 0.0 },
            rss_start_kb: start,
            rss_end_kb: end,
            rss_peak_kb: start.max(end),
            threads_peak: 0,
            processes_peak: 0,
            samples: 2,
        })
    }
}

/// Samples a process tree on its own thread while a run goes on.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Option<Usage>>,
}

impl Sampler {
    /// Starts sampling `root` after `delay` (the warm-up), then every `period`.
    pub fn start(root: u32, delay: Duration, period: Duration) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let handle = std::thread::spawn(move || {
            let begin = Instant::now() + delay;
            // Sleep in short steps so that a stop during the warm-up is seen at once.
            while Instant::now() < begin && !flag.load(Ordering::Relaxed) {
                std::thread::sleep((begin - Instant::now()).min(Duration::from_millis(20)));
            }
            let first = sample_tree(root)?;
            let mut track = Track::new(first);
            let mut next = first.at + period;
            while !flag.load(Ordering::Relaxed) {
                let now = Instant::now();
                if now >= next {
                    if let Some(s) = sample_tree(root) {
                        track.add(s);
                    }
                    next = now + period;
                }
                std::thread::sleep((next - Instant::now()).min(Duration::from_millis(20)));
            }
            if let Some(s) = settled(root) {
                track.add(s);
            }
            Some(track.usage())
        });
        Sampler { stop, handle }
    }

    /// Takes the last sample and returns the usage; `None` if the tree was gone throughout.
    pub fn finish(self) -> Option<Usage> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().ok().flatten()
    }
}

/// The samplers of one cell: the server's tree and, behind a proxy, the proxy's.
pub struct Samplers {
    server: Option<Sampler>,
    proxy: Option<Sampler>,
}

/// What [`Samplers`] measured.
#[derive(Debug, Clone, Default)]
pub struct Measured {
    /// The server's tree, when it runs here.
    pub server: Option<Usage>,
    /// The proxy's, when there is one.
    pub proxy: Option<Usage>,
}

impl Samplers {
    /// Starts a [`Sampler`] on each root there is.
    pub fn start(
        server: Option<u32>,
        proxy: Option<u32>,
        delay: Duration,
        period: Duration,
    ) -> Samplers {
        let start = |root: Option<u32>| root.map(|pid| Sampler::start(pid, delay, period));
        Samplers {
            server: start(server),
            proxy: start(proxy),
        }
    }

    /// Stops them all and returns what each measured.
    pub fn finish(self) -> Measured {
        Measured {
            server: self.server.and_then(Sampler::finish),
            proxy: self.proxy.and_then(Sampler::finish),
        }
    }
}

/// How long the last sample waits for a forking server's tree to settle.
const SETTLE: Duration = Duration::from_secs(2);

/// A sample of a tree that has stopped changing. When the load ends, a forking server's
/// children exit all at once; a walk of /proc that reads the parent before a child is reaped
/// and looks for the child after would miss its time (in neither the child's own figures nor
/// the parent's `cutime` yet). Once two walks 50 ms apart find the same processes, none was
/// in flight.
fn settled(root: u32) -> Option<TreeSample> {
    let until = Instant::now() + SETTLE;
    let mut last = sample_tree(root)?;
    loop {
        std::thread::sleep(Duration::from_millis(50));
        let Some(next) = sample_tree(root) else {
            return Some(last);
        };
        let stable = next.processes == last.processes;
        last = next;
        if stable || Instant::now() >= until {
            return Some(last);
        }
    }
}

/// The first and last samples and the peaks in between.
struct Track {
    first: TreeSample,
    last: TreeSample,
    rss_peak: u64,
    threads_peak: u64,
    processes_peak: u64,
    samples: u64,
}

impl Track {
    fn new(first: TreeSample) -> Track {
        Track {
            first,
            last: first,
            rss_peak: first.rss_bytes,
            threads_peak: first.threads,
            processes_peak: first.processes,
            samples: 1,
        }
    }

    fn add(&mut self, s: TreeSample) {
        self.last = s;
        self.rss_peak = self.rss_peak.max(s.rss_bytes);
        self.threads_peak = self.threads_peak.max(s.threads);
        self.processes_peak = self.processes_peak.max(s.processes);
        self.samples += 1;
    }

    fn usage(&self) -> Usage {
        let cpu_s = self.last.cpu_ticks.saturating_sub(self.first.cpu_ticks) as f64
            / sys::clock_ticks() as f64;
        let wall_s = self.last.at.duration_since(self.first.at).as_secs_f64();
        Usage {
            cpu_s,
            cpu_tick_s: 1.0 / sys::clock_ticks() as f64,
            wall_s,
            cpu_busy: if wall_s > 0.0 { cpu_s / wall_s } else { 0.0 },
            rss_start_kb: self.first.rss_bytes / 1024,
            rss_end_kb: self.last.rss_bytes / 1024,
            rss_peak_kb: self.rss_peak / 1024,
            threads_peak: self.threads_peak,
            processes_peak: self.processes_peak,
            samples: self.samples,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_count_from_the_last_parenthesis() {
        // A command name with a space and a parenthesis, as a process may name itself.
        let line = "4242 (zoo (w) 1) S 4200 4242 4200 0 -1 4194560 1200 0 0 0 \
                    150 50 7 3 20 0 9 0 12345 987654 321 18446744073709551615";
        let stat = parse_stat(line).expect("valid line");
        assert_eq!(
            stat,
            ProcStat {
                ppid: 4200,
                cpu_ticks: 150 + 50 + 7 + 3,
                user_ticks: 150 + 7,
                system_ticks: 50 + 3,
                threads: 9,
                rss_pages: 321,
            }
        );
        assert_eq!(parse_stat("4242 (zoo) S"), None, "a short line is refused");
        assert_eq!(parse_stat("no parenthesis at all"), None);
    }

    #[test]
    fn this_process_is_a_tree_of_one_with_threads_and_memory() {
        let me = std::process::id();
        let s = sample_tree(me).expect("our own /proc entry");
        assert!(s.processes >= 1);
        assert!(s.threads >= 1);
        assert!(s.rss_bytes > 0);
        if let Some(pss) = pss_tree(me) {
            assert!(
                pss > 0 && pss <= s.rss_bytes + 1024 * 1024,
                "{pss} {}",
                s.rss_bytes
            );
        }
        let worker = std::thread::spawn(|| {
            // Burn a little CPU so the sampler sees it move.
            let start = Instant::now();
            let mut x = 0u64;
            while start.elapsed() < Duration::from_millis(60) {
                x = x.wrapping_mul(31).wrapping_add(7);
            }
            x
        });
        let sampler = Sampler::start(me, Duration::ZERO, Duration::from_millis(10));
        let _ = worker.join();
        let usage = sampler.finish().expect("we are alive");
        assert!(usage.samples >= 2, "{usage:?}");
        assert!(usage.rss_peak_kb >= usage.rss_start_kb.min(usage.rss_end_kb));
        assert!(usage.threads_peak >= 2, "the sampler's own thread counts");
    }
}
