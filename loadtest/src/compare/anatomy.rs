//! The anatomy of a request: how many trips into the kernel a server makes, which ones, and how
//! often it is switched out, counted on the server's process tree over a cell's warm-up.
//!
//! Syscalls are counted by the kernel's tracepoints through `perf stat`, attached to every
//! process of the tree when counting starts (`-p`, which takes each process's threads). perf's
//! counters are inherited, so a thread or a process the server starts later (`fork`'s child per
//! connection, a pool growing) is counted too, until it exits. `raw_syscalls:sys_enter` gives
//! the total; one `syscalls:sys_enter_NAME` tracepoint per syscall that matters gives the split,
//! grouped into the few kinds a reader compares ([`KINDS`]). Nothing is estimated: where perf is
//! missing or may not attach (not root and `perf_event_paranoid` above 1), the figures are
//! absent and the reason is kept.
//!
//! Context switches (voluntary: the task waited; involuntary: it was preempted) and user and
//! system CPU come from `/proc`, summed over the live tasks of the tree at the start and at the
//! end. A process that came and went between the two looks (a `fork` child) is missed by the
//! switch counts; its CPU is not, since its parent reaps it (`cutime`, `cstime`). perf's own
//! `context-switches` event, inherited like the syscalls, gives the total that includes them.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The kinds of syscall a request's anatomy is told in, each with the syscalls it covers.
pub const KINDS: &[(&str, &[&str])] = &[
    ("read", &["read", "readv", "recvfrom", "recvmsg"]),
    (
        "write",
        &["write", "writev", "sendto", "sendmsg", "sendfile64"],
    ),
    (
        "wait",
        &[
            "epoll_wait",
            "epoll_pwait",
            "epoll_pwait2",
            "select",
            "pselect6",
            "poll",
            "ppoll",
            "rt_sigtimedwait",
        ],
    ),
    ("epoll_ctl", &["epoll_ctl"]),
    ("io_uring_enter", &["io_uring_enter"]),
    ("futex", &["futex"]),
    ("accept", &["accept", "accept4"]),
    ("clone", &["clone", "clone3", "fork", "vfork"]),
];

/// What a server did in the kernel over a counted span.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Anatomy {
    /// Wall time counted, in seconds.
    pub wall_s: f64,
    /// Every syscall entered, or `None` with the reason in `unavailable`.
    pub syscalls: Option<u64>,
    /// Syscalls by kind ([`KINDS`]), plus `other` for the rest of the total.
    pub by_kind: BTreeMap<String, u64>,
    /// Context switches of the tree, perf's inherited count (children that exited included).
    pub context_switches: Option<u64>,
    /// Voluntary context switches of the live tasks, from /proc.
    pub voluntary: u64,
    /// Involuntary context switches of the live tasks, from /proc.
    pub involuntary: u64,
    /// User CPU of the tree (reaped children included), in seconds.
    pub user_s: f64,
    /// System CPU of the tree (reaped children included), in seconds.
    pub system_s: f64,
    /// Why the syscall figures are missing, when they are.
    pub unavailable: Option<String>,
}

/// What `/proc` says of a tree at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct ProcLook {
    voluntary: u64,
    involuntary: u64,
    user_ticks: u64,
    system_ticks: u64,
}

/// Counting in progress on a server's tree.
pub struct Counting {
    root: u32,
    started: Instant,
    first: ProcLook,
    perf: Result<Perf, String>,
}

impl Counting {
    /// Starts counting on `root` and its descendants. It cannot fail: what cannot be counted is
    /// said in the result.
    pub fn start(root: u32) -> Counting {
        let first = look(root);
        let perf = start_perf(root);
        Counting {
            root,
            started: Instant::now(),
            first,
            perf,
        }
    }

    /// Stops counting and returns the figures.
    pub fn finish(self) -> Anatomy {
        let last = look(self.root);
        let wall_s = self.started.elapsed().as_secs_f64();
        let tick = 1.0 / crate::sys::clock_ticks() as f64;
        let mut anatomy = Anatomy {
            wall_s,
            voluntary: last.voluntary.saturating_sub(self.first.voluntary),
            involuntary: last.involuntary.saturating_sub(self.first.involuntary),
            user_s: last.user_ticks.saturating_sub(self.first.user_ticks) as f64 * tick,
            system_s: last.system_ticks.saturating_sub(self.first.system_ticks) as f64 * tick,
            ..Anatomy::default()
        };
        match self.perf.and_then(stop_perf) {
            Ok(counts) => fill(&mut anatomy, &counts),
            Err(why) => anatomy.unavailable = Some(why),
        }
        anatomy
    }
}

/// Counting over a cell's warm-up: perf is attached when the load starts and detached when its
/// warm-up ends, so that perf's own cost stays out of the figures measured after it. With its
/// tracepoints attached every syscall and every context switch of the server costs more (10-20%
/// of a server's CPU per request at 64 connections on loopback, more for a thread per
/// connection), which would otherwise be charged to the model. The warm-up runs the same load, so
/// its anatomy is the cell's.
pub struct WarmUp {
    reads: u64,
    stop: Arc<AtomicBool>,
    handle: JoinHandle<(Anatomy, Option<u64>)>,
}

impl WarmUp {
    /// Starts counting `root`'s tree for `span` (the warm-up), reading the server's request
    /// counter with `requests` (`None` where it has none) at both ends of the span.
    pub fn start(
        root: u32,
        span: Duration,
        requests: impl Fn() -> Option<u64> + Send + 'static,
    ) -> WarmUp {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        if span.is_zero() {
            let handle = std::thread::spawn(|| {
                let anatomy = Anatomy {
                    unavailable: Some(
                        "not counted: the anatomy is counted in the warm-up, and there is none \
                         (--warmup 0s)"
                            .into(),
                    ),
                    ..Anatomy::default()
                };
                (anatomy, None)
            });
            return WarmUp {
                reads: 0,
                stop,
                handle,
            };
        }
        // Attached before the caller starts its load, so that the load is counted from its
        // first connection.
        let counting = Counting::start(root);
        let before = requests();
        let end = Instant::now() + span;
        let handle = std::thread::spawn(move || {
            // Short steps, so that a cell that ends early ends the count at once.
            while Instant::now() < end && !flag.load(Ordering::Relaxed) {
                std::thread::sleep((end - Instant::now()).min(Duration::from_millis(20)));
            }
            let after = requests();
            let anatomy = counting.finish();
            // The first read is itself a request, counted once it was answered.
            let server = after.zip(before).and_then(|(a, b)| a.checked_sub(b + 1));
            (anatomy, server)
        });
        WarmUp {
            reads: 2,
            stop,
            handle,
        }
    }

    /// How many requests the count itself makes of the server (its two reads of the counter,
    /// where the server has one).
    pub fn reads(&self) -> u64 {
        self.reads
    }

    /// The figures, and the requests the server counted over the same span. Ends the count now
    /// if the span is not over (a cell that failed early).
    pub fn finish(self) -> (Anatomy, Option<u64>) {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().unwrap_or_else(|_| {
            let anatomy = Anatomy {
                unavailable: Some("the counting thread failed".into()),
                ..Anatomy::default()
            };
            (anatomy, None)
        })
    }
}

/// The events perf is asked for: the total, the context switches, then one per syscall named.
fn events() -> Vec<String> {
    let mut events = vec![
        "raw_syscalls:sys_enter".to_string(),
        "context-switches".to_string(),
    ];
    for (_, names) in KINDS {
        events.extend(names.iter().map(|n| format!("syscalls:sys_enter_{n}")));
    }
    events
}

/// perf stat attached to a tree: the child, the file it writes its counts to, and the write end
/// of its control pipe, held open for as long as it counts (a closed control pipe would read as
/// a hang-up).
struct Perf {
    child: Child,
    out: PathBuf,
    _control: io::PipeWriter,
}

/// How long perf may take to open its counters: reading the tracepoints' formats on a cold
/// machine can take a second or more.
const PERF_READY: Duration = Duration::from_secs(10);

/// How many times perf is started on a tree before its failure is taken as the answer: a process
/// of the tree that exits between the look at the tree and perf's attach (a `fork` child, a
/// shell's command) makes perf refuse the whole list, and the next look no longer has it. A tree
/// whose short-lived processes are alive half the time loses a try about one time in two (the
/// anatomy test's shell did, and failed 1 run in 13 with 5 tries), so the bound is generous; a
/// try takes tens of milliseconds.
const PERF_TRIES: usize = 20;

fn start_perf(root: u32) -> Result<Perf, String> {
    mount_tracefs();
    // A kernel without a tracepoint makes perf refuse the whole list; only those it has are
    // asked for.
    let events: Vec<String> = events().into_iter().filter(|e| has_event(e)).collect();
    if !events.iter().any(|e| e == "raw_syscalls:sys_enter") {
        return Err(
            "the kernel has no raw_syscalls tracepoints (or tracefs is not mounted)".into(),
        );
    }
    let mut tries = 0;
    loop {
        tries += 1;
        let pids: Vec<u32> = crate::compare::sampling::tree(root)
            .ok_or_else(|| format!("process {root} is gone"))?
            .iter()
            .map(|&(pid, _)| pid)
            .collect();
        match attach_perf(&pids, &events) {
            Ok(perf) => return Ok(perf),
            Err(why) => {
                let vanished = pids
                    .iter()
                    .any(|pid| fs::metadata(format!("/proc/{pid}")).is_err());
                if !vanished || tries == PERF_TRIES {
                    return Err(why);
                }
            }
        }
    }
}

/// Starts perf stat on `pids` (each with its threads) and returns once it counts.
fn attach_perf(pids: &[u32], events: &[String]) -> Result<Perf, String> {
    static RUNS: AtomicU64 = AtomicU64::new(0);
    let out = std::env::temp_dir().join(format!(
        "loadtest-perf-{}-{}.csv",
        std::process::id(),
        RUNS.fetch_add(1, Ordering::Relaxed)
    ));
    let pids: Vec<String> = pids.iter().map(u32::to_string).collect();
    // perf opens its counters disabled (`-D -1`) and enables them when told to on its control
    // pipe, then acknowledges: once the ack is read, every counter is open and counting, and
    // perf's SIGINT handler (installed before) will make it write the counts. No guessed delay.
    let pipe = |what| io::pipe().map_err(|e| format!("no pipe for perf's {what}: {e}"));
    let (perf_ctl, mut ctl) = pipe("control")?;
    let (mut ack, perf_ack) = pipe("acknowledgements")?;
    let mut cmd = Command::new("perf");
    cmd.args(["stat", "-x", ",", "--no-big-num", "-D", "-1", "-o"])
        .arg(&out)
        .arg("-e")
        .arg(events.join(","))
        .arg("--control")
        .arg(format!(
            "fd:{},{}",
            perf_ctl.as_raw_fd(),
            perf_ack.as_raw_fd()
        ))
        .arg("-p")
        .arg(pids.join(","))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    crate::sys::keep_across_exec(&mut cmd, vec![perf_ctl.as_raw_fd(), perf_ack.as_raw_fd()]);
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("perf could not be started ({e}): install linux-perf"))?;
    // perf's ends, closed here so that its exit reads as the end of the ack pipe.
    drop((perf_ctl, perf_ack));
    let acked = io::Write::write_all(&mut ctl, b"enable\n")
        .map_err(|e| e.to_string())
        .and_then(|()| read_ack(&mut ack, PERF_READY));
    if let Err(what) = acked {
        let _ = child.kill();
        let status = child.wait().map_err(|e| format!("waiting for perf: {e}"))?;
        let mut why = String::new();
        if let Some(mut err) = child.stderr.take() {
            let _ = io::Read::read_to_string(&mut err, &mut why);
        }
        let _ = fs::remove_file(&out);
        return Err(format!(
            "perf stat did not start counting ({what}; {status}): {}",
            first_line(&why)
        ));
    }
    Ok(Perf {
        child,
        out,
        _control: ctl,
    })
}

/// Reads perf's `ack` line (perf sends it with its terminating NUL) within `limit`; what came
/// instead is the error.
fn read_ack(from: &mut io::PipeReader, limit: Duration) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    let mut got = Vec::new();
    while !got.contains(&b'\n') {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut poll = libc::pollfd {
            fd: from.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = libc::c_int::try_from(left.as_millis()).unwrap_or(libc::c_int::MAX);
        // SAFETY: one valid pollfd, for the length given.
        let ready = unsafe { libc::poll(&mut poll, 1, ms) };
        if ready < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(format!("waiting for its ack: {e}"));
        }
        if ready == 0 {
            return Err(format!("no ack within {limit:?}"));
        }
        let mut buf = [0u8; 64];
        match io::Read::read(from, &mut buf) {
            Ok(0) => return Err("it exited before its ack".into()),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("reading its ack: {e}")),
        }
    }
    let said = String::from_utf8_lossy(&got);
    if said.trim_matches(|c: char| c == '\0' || c.is_whitespace()) == "ack" {
        Ok(())
    } else {
        Err(format!("it answered {said:?} instead of an ack"))
    }
}

fn first_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("no reason given")
        .to_string()
}

/// Where the kernel lists its tracepoints, once tracefs is mounted.
const EVENT_ROOTS: [&str; 2] = [
    "/sys/kernel/tracing/events",
    "/sys/kernel/debug/tracing/events",
];

fn has_event(event: &str) -> bool {
    match event.split_once(':') {
        Some((group, name)) => EVENT_ROOTS
            .iter()
            .any(|root| fs::metadata(format!("{root}/{group}/{name}")).is_ok()),
        None => true,
    }
}

/// Makes the tracepoints visible where a fresh machine has not mounted tracefs yet. perf mounts
/// it the first time it needs a tracepoint (as root), so a count of `true`'s syscalls is asked
/// for once; without that, every tracepoint would look missing to [`has_event`] and the counts
/// would be called unavailable on a machine where perf can take them. Where perf cannot mount
/// it, nothing changes and the look that follows says so.
fn mount_tracefs() {
    if EVENT_ROOTS.iter().any(|root| fs::metadata(root).is_ok()) {
        return;
    }
    let _ = Command::new("perf")
        .args([
            "stat",
            "-x,",
            "-o",
            "/dev/null",
            "-e",
            "raw_syscalls:sys_enter",
            "--",
            "true",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

fn stop_perf(perf: Perf) -> Result<BTreeMap<String, u64>, String> {
    let Perf { mut child, out, .. } = perf;
    // perf stat prints its counts when interrupted, as it does on Ctrl-C.
    crate::sys::send_signal(child.id(), false, libc::SIGINT)
        .map_err(|e| format!("could not interrupt perf: {e}"))?;
    let status = child.wait().map_err(|e| format!("waiting for perf: {e}"))?;
    let text = fs::read_to_string(&out);
    let _ = fs::remove_file(&out);
    let text = text.map_err(|e| format!("perf wrote no counts ({status}): {e}"))?;
    let counts = parse_csv(&text);
    if !counts.contains_key("raw_syscalls:sys_enter") {
        return Err(format!(
            "perf did not count raw_syscalls:sys_enter ({status}): {}",
            first_line(&text)
        ));
    }
    Ok(counts)
}

/// Reads perf stat's `-x ,` lines: `value,unit,event,...`. Lines perf could not count
/// (`<not counted>`, `<not supported>`) are left out.
fn parse_csv(text: &str) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let mut fields = line.split(',');
        let (Some(value), Some(_unit), Some(event)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        if let Ok(v) = value.trim().parse::<u64>() {
            *counts.entry(event.trim().to_string()).or_insert(0) += v;
        }
    }
    counts
}

fn fill(anatomy: &mut Anatomy, counts: &BTreeMap<String, u64>) {
    let total = counts.get("raw_syscalls:sys_enter").copied();
    anatomy.syscalls = total;
    anatomy.context_switches = counts.get("context-switches").copied();
    let mut named = 0;
    for (kind, names) in KINDS {
        let n: u64 = names
            .iter()
            .filter_map(|name| counts.get(&format!("syscalls:sys_enter_{name}")))
            .sum();
        named += n;
        anatomy.by_kind.insert((*kind).to_string(), n);
    }
    if let Some(total) = total {
        anatomy
            .by_kind
            .insert("other".into(), total.saturating_sub(named));
    }
}

/// Sums the context switches and CPU of the tree's live tasks.
fn look(root: u32) -> ProcLook {
    let mut sum = ProcLook::default();
    for (pid, stat) in crate::compare::sampling::tree(root).unwrap_or_default() {
        sum.user_ticks += stat.user_ticks;
        sum.system_ticks += stat.system_ticks;
        let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            if let Ok(status) = fs::read_to_string(task.path().join("status")) {
                let (v, i) = parse_switches(&status);
                sum.voluntary += v;
                sum.involuntary += i;
            }
        }
    }
    sum
}

/// The two context-switch lines of a `/proc/PID/task/TID/status`.
fn parse_switches(status: &str) -> (u64, u64) {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    (
        field("voluntary_ctxt_switches:"),
        field("nonvoluntary_ctxt_switches:"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// perf's ack as perf 6.1 writes it (with its C string's NUL), written in two pieces, and
    /// what else may come: an end without it, nothing in time, another answer.
    #[test]
    fn perf_acks_are_read_with_their_nul_and_anything_else_is_refused() {
        let (mut from, mut to) = io::pipe().expect("pipe");
        io::Write::write_all(&mut to, b"ac").expect("write");
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            io::Write::write_all(&mut to, b"k\n\0").expect("write");
            to
        });
        assert_eq!(read_ack(&mut from, Duration::from_secs(5)), Ok(()));
        let to = writer.join().expect("writer");

        let limit = Duration::from_millis(50);
        let late = read_ack(&mut from, limit).expect_err("nothing was written");
        assert!(late.contains("no ack within"), "{late}");

        let mut to = to;
        io::Write::write_all(&mut to, b"nack\n").expect("write");
        let other = read_ack(&mut from, limit).expect_err("not an ack");
        assert!(other.contains("\"nack\\n\""), "{other}");

        drop(to);
        let gone = read_ack(&mut from, limit).expect_err("the writer is gone");
        assert!(gone.contains("exited before its ack"), "{gone}");
    }

    #[test]
    fn perf_csv_lines_are_summed_by_event_and_uncounted_ones_dropped() {
        let text = "# started on Thu Dec  3\n\n\
                    1200,,raw_syscalls:sys_enter,5000,100.00,,\n\
                    40,,context-switches,5000,100.00,,\n\
                    500,,syscalls:sys_enter_read,5000,100.00,,\n\
                    <not counted>,,syscalls:sys_enter_futex,0,100.00,,\n\
                    300,,syscalls:sys_enter_write,5000,100.00,,\n\
                    100,,syscalls:sys_enter_writev,5000,100.00,,\n";
        let counts = parse_csv(text);
        assert_eq!(counts.get("raw_syscalls:sys_enter"), Some(&1200));
        assert!(!counts.contains_key("syscalls:sys_enter_futex"));
        let mut a = Anatomy::default();
        fill(&mut a, &counts);
        assert_eq!(a.syscalls, Some(1200));
        assert_eq!(a.context_switches, Some(40));
        assert_eq!(a.by_kind["read"], 500);
        assert_eq!(a.by_kind["write"], 400);
        assert_eq!(a.by_kind["futex"], 0);
        assert_eq!(a.by_kind["other"], 300);
    }

    #[test]
    fn status_switch_lines_are_read() {
        let status = "Name:\tzoo\nvoluntary_ctxt_switches:\t17\nnonvoluntary_ctxt_switches:\t4\n";
        assert_eq!(parse_switches(status), (17, 4));
        assert_eq!(parse_switches("Name:\tzoo\n"), (0, 0));
    }

    /// perf on a real child: a shell loop that makes a known kind of syscall. Where perf may
    /// not attach here, the reason must be given instead of figures.
    #[test]
    fn a_real_process_is_counted_or_the_reason_is_said() {
        let mut child = Command::new("sh")
            // The shell counts to 100 between two commands, so that most of the time its tree is
            // the shell alone; perf retries when a command exits as it attaches.
            .args([
                "-c",
                "while :; do cat /proc/self/stat >/dev/null; i=0; \
             while [ $i -lt 100 ]; do i=$((i+1)); done; done",
            ])
            .spawn()
            .expect("sh");
        std::thread::sleep(Duration::from_millis(100));
        let counting = Counting::start(child.id());
        std::thread::sleep(Duration::from_millis(500));
        let a = counting.finish();
        let _ = child.kill();
        let _ = child.wait();
        match (a.syscalls, &a.unavailable) {
            (Some(n), None) => {
                // Each cat is a fork (clone), an exec, reads and writes: thousands in half a second.
                assert!(n > 100, "only {n} syscalls counted: {a:?}");
                assert!(a.by_kind["clone"] > 0, "the forks were not counted: {a:?}");
                assert!(a.by_kind["read"] > 0, "the reads were not counted: {a:?}");
                let kinds: u64 = a.by_kind.values().sum();
                assert_eq!(kinds, n, "the kinds must add up to the total: {a:?}");
            }
            (None, Some(why)) => {
                assert!(
                    std::env::var("CI").ok().as_deref() != Some("true"),
                    "under CI perf must count: {why}"
                );
                eprintln!("perf unavailable here: {why}");
            }
            other => panic!("figures and a reason at once, or neither: {other:?}"),
        }
        assert!(a.wall_s >= 0.4, "{a:?}");
        assert!(
            a.user_s + a.system_s > 0.0,
            "the loop's CPU was not seen: {a:?}"
        );
    }
}
