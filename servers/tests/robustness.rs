//! Robustness under slow clients, faults and overload, proved for every model (issue 9): slow
//! clients are cut at their timeouts and cannot starve a normal client; over `--max-connections` a
//! model sheds with 503 or stops accepting; out of descriptors, the accept loop backs off instead of
//! spinning and recovers; a panicking handler costs its client a 500 and nothing more; a client that
//! resets costs only its own connection; a graceful stop under load fails no request the server
//! had taken. `ZOO_MODELS=a,b` narrows the models; `--nocapture` shows the per-model figures.
//!
//! Where a model cannot do what the others do, the test says so by name (the lists below) and
//! checks the documented behaviour instead: it never passes by skipping.

mod support;

use std::io::Write;
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{
    cpu_seconds, for_each_model_with, parse_responses, raise_nofile_limit, read_all, wait_for,
    wait_until, Exchange, Server,
};

/// Models that give each connection one worker out of a fixed set, for as long as it is open
/// (prefork, as gunicorn's `sync` worker): a slow client holds a worker until `--header-timeout`,
/// so enough slow clients starve everyone else; over the limit they stop accepting and new
/// connections wait in the listen backlog instead of getting 503. Their module docs and the README
/// ("Slow clients and limits") say so; the tests check that behaviour for them.
const WORKER_PER_CONNECTION: &[&str] = &["prefork"];

/// Models whose every connection lives in a process of its own: no one process ever holds more
/// than one client's socket, so clients cannot run a process out of descriptors.
const PROCESS_PER_CONNECTION: &[&str] = &["fork", "prefork"];

fn holds_a_worker(model: &str) -> bool {
    WORKER_PER_CONNECTION.contains(&model)
}

/// `base` plus, for the models that need a worker per connection, `--workers N` (when `workers`
/// is given): enough workers for the connections a test holds on purpose.
fn args(model: &str, base: &[&str], workers: Option<u32>) -> Vec<String> {
    let mut out: Vec<String> = base.iter().map(|a| a.to_string()).collect();
    if let (true, Some(n)) = (holds_a_worker(model), workers) {
        out.extend(["--workers".to_string(), n.to_string()]);
    }
    out
}

const GET_CLOSE: &[u8] = b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";

/// The status of the first response in `bytes`, if a whole one is there.
fn status(bytes: &[u8]) -> Option<u16> {
    parse_responses(bytes, false).first().map(|r| r.status)
}

/// Closes `c` with a reset rather than a FIN: with SO_LINGER on and a zero timeout, close(2)
/// drops what is queued and sends RST, as a crashed or impatient client does.
fn reset(c: TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt reads one `linger` struct, valid for the call, on a socket we own.
    let rc = unsafe {
        libc::setsockopt(
            c.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "SO_LINGER: {}", std::io::Error::last_os_error());
    drop(c);
}

/// Opens `n` connections that each send part of a head and then nothing: each one holds whatever
/// the model gives a connection until its header timeout, or until the test drops it.
fn hold_partial_heads(s: &Server, n: usize) -> Vec<TcpStream> {
    (0..n)
        .map(|_| {
            let mut c = TcpStream::connect(s.addr).expect("connect a slow client");
            c.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nX-Slow: ")
                .expect("send a partial head");
            c
        })
        .collect()
}

// ---- 1. Slow clients ----------------------------------------------------------------------------

/// A head trickled one byte every 300 ms: each byte must not buy more time, so it is cut at the
/// header timeout. Returns how long until the server answered or closed, and what it sent.
fn trickle_head(s: &Server) -> (Duration, Exchange) {
    let mut c = s.connect();
    let head = b"GET / HTTP/1.1\r\nHost: t\r\nX-Trickle: ";
    let started = Instant::now();
    let mut sent = 0;
    loop {
        // The head never ends: after the fixed part, the header value grows forever.
        let byte = head.get(sent).copied().unwrap_or(b'a');
        sent += 1;
        // A failed write means the server closed; what it sent before is still there to read.
        let wrote = c.write_all(&[byte]).is_ok();
        let ex = read_all(&mut c, Duration::from_millis(300));
        if wrote && !ex.closed && ex.bytes.is_empty() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "a trickled head still open after 10 s"
            );
            continue;
        }
        let elapsed = started.elapsed();
        if ex.closed {
            return (elapsed, ex);
        }
        // The answer came: read on to the close.
        let rest = read_all(&mut c, Duration::from_secs(1));
        let bytes = [ex.bytes, rest.bytes].concat();
        return (
            elapsed,
            Exchange {
                bytes,
                closed: rest.closed,
            },
        );
    }
}

/// Checks a slow client's fate: cut between `at` and `at` + slack, with `expect` as the first
/// status (or no byte at all for `None`), and closed.
fn assert_cut(
    model: &str,
    what: &str,
    (elapsed, ex): &(Duration, Exchange),
    at: f64,
    expect: Option<u16>,
) {
    let text = String::from_utf8_lossy(&ex.bytes);
    assert!(
        ex.closed,
        "{model}: {what}: still open after {elapsed:?}: {text:?}"
    );
    assert_eq!(status(&ex.bytes), expect, "{model}: {what}: {text:?}");
    let secs = elapsed.as_secs_f64();
    // The lower bound: no timeout fires early. The upper one is generous for a loaded 2-core box
    // but well under what an unenforced timeout (the test's own 5-10 s waits) would show.
    assert!(
        (at - 0.1..at + 1.5).contains(&secs),
        "{model}: {what}: closed after {secs:.2} s, expected about {at} s"
    );
}

#[test]
fn slow_clients_are_cut_at_their_timeouts() {
    let timeouts = [
        "--header-timeout",
        "1",
        "--keep-alive-timeout",
        "1",
        "--body-timeout",
        "1",
    ];
    // Four slow clients at once: prefork gets a worker for each, or they would queue.
    for_each_model_with(
        |m| args(m, &timeouts, Some(8)),
        |s| {
            let (trickled, silent, idle, stalled) = std::thread::scope(|scope| {
                let trickled = scope.spawn(|| trickle_head(s));
                let silent = scope.spawn(|| {
                    let mut c = s.connect();
                    let t = Instant::now();
                    let ex = read_all(&mut c, Duration::from_secs(5));
                    (t.elapsed(), ex)
                });
                let idle = scope.spawn(|| {
                    let mut c = s.connect();
                    let t = Instant::now();
                    c.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
                    let ex = read_all(&mut c, Duration::from_secs(5));
                    (t.elapsed(), ex)
                });
                let stalled = scope.spawn(|| {
                    let mut c = s.connect();
                    c.write_all(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n")
                        .unwrap();
                    let t = Instant::now();
                    c.write_all(b"0123456789").unwrap();
                    let ex = read_all(&mut c, Duration::from_secs(5));
                    (t.elapsed(), ex)
                });
                let join = |h: std::thread::ScopedJoinHandle<'_, _>| h.join().expect("client");
                (join(trickled), join(silent), join(idle), join(stalled))
            });
            let m = s.model.as_str();
            assert_cut(m, "trickled head", &trickled, 1.0, Some(408));
            // No request was begun: nothing to answer, the connection just closes.
            assert_cut(m, "silent connection", &silent, 1.0, None);
            assert_cut(m, "stalled body", &stalled, 1.0, Some(408));
            if holds_a_worker(m) {
                // Closed right after its answer, which says so: an idle client never holds one of
                // the few workers.
                let (elapsed, ex) = &idle;
                let r = &parse_responses(&ex.bytes, false)[0];
                assert_eq!(
                    (r.status, r.header("connection")),
                    (200, Some("close")),
                    "{m}"
                );
                assert!(
                    ex.closed && *elapsed < Duration::from_millis(500),
                    "{m}: {elapsed:?}"
                );
            } else {
                assert_cut(m, "idle keep-alive", &idle, 1.0, Some(200));
            }
            eprintln!(
                "slow clients {m}: trickled head 408 after {:.2} s, silent closed after {:.2} s, \
                 idle keep-alive closed after {:.2} s, stalled body 408 after {:.2} s",
                trickled.0.as_secs_f64(),
                silent.0.as_secs_f64(),
                idle.0.as_secs_f64(),
                stalled.0.as_secs_f64()
            );
        },
    );
}

const SLOW_CLIENTS: usize = 500;
const NORMAL_REQUESTS: usize = 100;
/// How long the normal client may take for one request while the slow ones are held.
const SERVED_WITHIN: Duration = Duration::from_secs(2);

/// One request from a normal client on a new connection: its latency, or `None` when it was not
/// answered 200 within [`SERVED_WITHIN`].
fn normal_request(s: &Server) -> Option<Duration> {
    let t = Instant::now();
    let mut c = TcpStream::connect(s.addr).ok()?;
    c.write_all(GET_CLOSE).ok()?;
    let ex = read_all(&mut c, SERVED_WITHIN);
    let elapsed = t.elapsed();
    (status(&ex.bytes) == Some(200) && elapsed < SERVED_WITHIN).then_some(elapsed)
}

#[test]
fn a_normal_client_is_served_beside_500_slow_ones() {
    // 500 sockets here, and as many in the server (which raises its own limit).
    assert!(
        raise_nofile_limit() >= 2 * SLOW_CLIENTS as u64,
        "RLIMIT_NOFILE too low"
    );
    // The header timeout is longer than the test: the slow clients stay held throughout.
    for_each_model_with(
        |m| args(m, &["--header-timeout", "30"], None),
        |s| {
            let m = s.model.as_str();
            let slow = hold_partial_heads(s, SLOW_CLIENTS);
            if holds_a_worker(m) {
                // Documented: every worker is held by a slow client, and the normal client waits in
                // the backlog behind the rest of them until they are gone (or time out).
                let mut c = s.connect();
                c.write_all(GET_CLOSE).unwrap();
                let ex = read_all(&mut c, SERVED_WITHIN);
                assert!(
                    ex.bytes.is_empty() && !ex.closed,
                    "{m}: expected to be starved by {SLOW_CLIENTS} slow clients (a worker each), \
                     but answered: if the model changed, update WORKER_PER_CONNECTION and the README"
                );
                drop(slow);
                let ex = read_all(&mut c, Duration::from_secs(5));
                assert_eq!(
                    status(&ex.bytes),
                    Some(200),
                    "{m}: not served once they left"
                );
                eprintln!(
                    "slowloris {m}: normal client 0/1 served within {SERVED_WITHIN:?} while \
                     {SLOW_CLIENTS} slow clients hold the workers (documented); served once they left"
                );
                return;
            }
            // All of them are really held: each is an open connection of the server.
            let held = wait_for(Duration::from_secs(5), || {
                (s.metric("zoo_connections_active") > SLOW_CLIENTS as i64).then_some(())
            });
            assert!(
                held.is_some(),
                "{m}: the slow clients were not all accepted"
            );
            let mut latencies: Vec<Duration> = (0..NORMAL_REQUESTS)
                .filter_map(|_| normal_request(s))
                .collect();
            let served = latencies.len();
            latencies.sort();
            let p99 = latencies
                .get((served * 99).div_ceil(100).saturating_sub(1))
                .copied()
                .unwrap_or(SERVED_WITHIN);
            eprintln!(
                "slowloris {m}: normal client {served}/{NORMAL_REQUESTS} served within \
                 {SERVED_WITHIN:?} beside {SLOW_CLIENTS} slow clients, p99 {:.2} ms",
                p99.as_secs_f64() * 1e3
            );
            assert_eq!(served, NORMAL_REQUESTS, "{m}: normal client starved");
            drop(slow);
        },
    );
}

// ---- 2. Load shedding and running out of descriptors --------------------------------------------

#[test]
fn over_max_connections_a_model_sheds_or_stops_accepting() {
    const LIMIT: usize = 4;
    let limit = LIMIT.to_string();
    let base = ["--max-connections", &limit, "--header-timeout", "10"];
    for_each_model_with(
        |m| args(m, &base, Some(LIMIT as u32)),
        |s| {
            let m = s.model.as_str();
            let mut held = hold_partial_heads(s, LIMIT);
            // The server takes all of them before the one over the limit comes.
            let deadline = Instant::now() + Duration::from_secs(5);
            assert!(
                wait_until(deadline, || s.accepted().len() >= LIMIT),
                "{m}: {} of {LIMIT} connections accepted",
                s.accepted().len()
            );
            let mut over = s.connect();
            over.write_all(GET_CLOSE).unwrap();
            let ex = read_all(&mut over, Duration::from_millis(1500));
            let text = String::from_utf8_lossy(&ex.bytes).into_owned();
            if holds_a_worker(m) {
                // Documented: over the limit it stops accepting; the connection waits.
                assert!(
                    ex.bytes.is_empty() && !ex.closed,
                    "{m}: expected to wait in the backlog, got {text:?}"
                );
            } else {
                let r = parse_responses(&ex.bytes, false);
                let r = r
                    .first()
                    .unwrap_or_else(|| panic!("{m}: no answer: {text:?}"));
                assert_eq!(r.status, 503, "{m}: {text:?}");
                assert!(r.header("retry-after").is_some(), "{m}: no Retry-After");
                assert!(ex.closed, "{m}: a shed connection must be closed");
            }
            // One held connection finishes its request: room for one more.
            let mut done = held.pop().unwrap();
            done.write_all(b"a\r\nConnection: close\r\n\r\n").unwrap();
            let ex = read_all(&mut done, Duration::from_secs(3));
            assert_eq!(status(&ex.bytes), Some(200), "{m}: a held connection");
            if holds_a_worker(m) {
                // The waiting connection gets the freed worker.
                let ex = read_all(&mut over, Duration::from_secs(3));
                assert_eq!(
                    status(&ex.bytes),
                    Some(200),
                    "{m}: the waiting one not served"
                );
                eprintln!("max-connections {m}: stops accepting; the waiting client was served when a slot freed");
            } else {
                let served = wait_for(Duration::from_secs(3), || {
                    let mut c = s.connect();
                    c.write_all(GET_CLOSE).ok()?;
                    (status(&read_all(&mut c, Duration::from_secs(2)).bytes) == Some(200))
                        .then_some(())
                });
                assert!(
                    served.is_some(),
                    "{m}: still shedding after a connection closed"
                );
                // Room for the metrics request itself: the process models uncount a connection
                // only once its process is reaped, a moment after the client saw it close.
                drop(held);
                let shed = wait_for(Duration::from_secs(3), || {
                    s.try_metric("zoo_shed_total").ok()
                })
                .unwrap_or_else(|| panic!("{m}: /metrics shed for 3 s after every client left"));
                assert!(shed >= 1, "{m}: zoo_shed_total {shed}");
                eprintln!("max-connections {m}: 503 with Retry-After and close; served again when one closed");
            }
        },
    );
}

/// The descriptor limit the server runs under in the EMFILE test, soft and hard.
const LOW_NOFILE: u64 = 64;

/// Runs the child under RLIMIT_NOFILE = [`LOW_NOFILE`] (both limits: zoo raises its soft limit to
/// the hard one at start).
fn low_nofile(cmd: &mut Command) {
    // SAFETY: the hook runs in the forked child before exec and only calls setrlimit, which is
    // async-signal-safe, on a struct on its own stack.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: LOW_NOFILE,
                rlim_max: LOW_NOFILE,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[test]
fn out_of_descriptors_the_accept_loop_backs_off_and_recovers() {
    raise_nofile_limit();
    let holders = LOW_NOFILE as usize + 40;
    // The server `for_each_model_with` starts (no limit) shows the model is available here; the
    // one under test runs under the low limit and must start too.
    for_each_model_with(
        |_| Vec::new(),
        |probe| {
            let m = probe.model.as_str();
            let s = Server::try_start_with(m, &["--header-timeout", "30"], low_nofile)
                .unwrap_or_else(|e| panic!("{m}: cannot start with {LOW_NOFILE} descriptors: {e}"));
            assert_eq!(s.get("/").status, 200, "{m}");
            let held = hold_partial_heads(&s, holders);
            let own_fds = || {
                std::fs::read_dir(format!("/proc/{}/fd", s.pid()))
                    .map(|d| d.count())
                    .unwrap_or(0)
            };
            // The server takes all it can: the one process runs out of descriptors; a prefork
            // worker each takes one; fork takes every client, a child each.
            let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
            let deadline = Instant::now() + Duration::from_secs(5);
            let full = wait_until(deadline, || match m {
                "prefork" => s.accepted().len() >= cpus,
                "fork" => s.accepted().len() >= holders,
                _ => own_fds() as u64 >= LOW_NOFILE - 2,
            });
            assert!(full, "{m}: {} connections accepted", s.accepted().len());
            let own_fds = own_fds();
            if !PROCESS_PER_CONNECTION.contains(&m) {
                // The test really ran the one process out of descriptors.
                assert!(
                    own_fds as u64 >= LOW_NOFILE - 2,
                    "{m}: only {own_fds} descriptors open with {holders} clients"
                );
            }
            // A client arriving now waits in the backlog where the one process has no descriptor
            // left to accept it with.
            let mut waiter = s.connect();
            waiter.write_all(GET_CLOSE).unwrap();
            let before = cpu_seconds(s.pid());
            std::thread::sleep(Duration::from_secs(1));
            let busy = cpu_seconds(s.pid()) - before;
            assert!(
                busy < 0.5,
                "{m}: {busy:.2} s of CPU in 1 s while out of descriptors: spinning"
            );
            drop(held);
            let t = Instant::now();
            let ex = read_all(&mut waiter, Duration::from_secs(4));
            assert_eq!(
                status(&ex.bytes),
                Some(200),
                "{m}: the client that waited was not served once descriptors freed"
            );
            let recovered = t.elapsed();
            assert_eq!(s.get("/").status, 200, "{m}: a new client after recovery");
            eprintln!(
                "emfile {m}: {own_fds} descriptors in the main process with {holders} clients, \
                 {:.0}% of a core while exhausted, waiting client served {:.2} s after they closed",
                busy * 100.0,
                recovered.as_secs_f64()
            );
        },
    );
}

// ---- 3. Faults ----------------------------------------------------------------------------------

#[test]
fn a_panicking_handler_costs_its_client_a_500() {
    for_each_model_with(
        |_| vec!["--debug-routes".to_string()],
        |s| {
            let m = s.model.as_str();
            for target in ["/panic", "/panic?offload=1"] {
                let r = s.get(target);
                assert_eq!(r.status, 500, "{m}: {target}");
                // The server goes on, and keeps going on: the same again, then a normal request.
                assert_eq!(s.get(target).status, 500, "{m}: {target} twice");
                assert_eq!(s.get("/").status, 200, "{m}: after {target}");
            }
            // Pipelined behind a panic: the 500 closes the connection, the rest is not answered.
            let raw = b"GET /panic HTTP/1.1\r\nHost: t\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n";
            let ex = s.exchange(raw, Duration::from_secs(3));
            let rs = parse_responses(&ex.bytes, false);
            assert_eq!(
                rs.iter().map(|r| r.status).collect::<Vec<_>>(),
                [500],
                "{m}"
            );
            assert!(ex.closed, "{m}: a 500 from a panic closes the connection");
            eprintln!("panic {m}: 500 inline and offloaded; the server goes on");
        },
    );
    // Without the flag the route does not exist.
    for_each_model_with(
        |_| Vec::new(),
        |s| assert_eq!(s.get("/panic").status, 404, "{}", s.model),
    );
}

#[test]
fn resets_mid_request_and_mid_response_cost_only_their_connection() {
    for_each_model_with(
        |m| args(m, &[], Some(4)),
        |s| {
            let m = s.model.as_str();
            let baseline = s.metric("zoo_connections_active");
            // Mid-request: in the head, and in the body.
            for partial in [
                &b"GET / HTTP/1.1\r\nHost: t\r\nX-Half: "[..],
                b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n0123456789",
            ] {
                for _ in 0..5 {
                    let mut c = s.connect();
                    c.write_all(partial).unwrap();
                    reset(c);
                }
            }
            // Mid-response: 10 MB on the way, a little read, then a reset.
            for _ in 0..5 {
                let mut c = s.connect();
                c.write_all(b"GET /stream?chunks=10000&size=1000 HTTP/1.1\r\nHost: t\r\n\r\n")
                    .unwrap();
                let mut first = [0u8; 4096];
                let n = std::io::Read::read(&mut c, &mut first).unwrap();
                assert!(
                    first[..n].starts_with(b"HTTP/1.1 200"),
                    "{m}: stream answer"
                );
                reset(c);
            }
            assert_eq!(s.get("/").status, 200, "{m}: serving after the resets");
            // Each reset connection is closed and uncounted; none is left behind.
            let back = wait_for(Duration::from_secs(5), || {
                let active = s.metric("zoo_connections_active");
                (active == baseline).then_some(active)
            });
            assert!(
                back.is_some(),
                "{m}: connections_active {} after the resets, {baseline} before",
                s.metric("zoo_connections_active")
            );
            eprintln!("resets {m}: 15 resets, serving on, connections_active back to {baseline}");
        },
    );
}

// ---- 4. Graceful shutdown under load ------------------------------------------------------------

/// The workspace's load generator, built beside `zoo` by `cargo test --workspace`.
fn loadtest_bin() -> PathBuf {
    let path = PathBuf::from(env!("CARGO_BIN_EXE_zoo")).with_file_name("loadtest");
    assert!(
        path.exists(),
        "{} is missing: `cargo test --workspace` builds it (or `cargo build -p loadtest`)",
        path.display()
    );
    path
}

/// SIGTERM in the middle of a steady `loadtest run`. loadtest's taxonomy cannot tell a request the
/// server had taken from one a client wrote after the signal into a connection the server was
/// closing (both are `read` errors), so the proof is in three parts: raw probe requests in flight
/// at the signal must all be answered 200; loadtest must see no error at all in the seconds before
/// the signal and no 5xx, timeout or cut-short response after it; and a client connecting after
/// the signal must be refused, never let in and reset later.
#[test]
fn graceful_stop_under_load_fails_no_request_the_server_had_taken() {
    const GRACE: f64 = 3.0;
    const PROBES: usize = 4;
    let loadtest = loadtest_bin();
    let grace = GRACE.to_string();
    // Prefork: workers enough for the probes beside the load.
    for_each_model_with(
        |m| args(m, &["--grace", &grace], Some(8)),
        |s| {
            let m = s.model.clone();
            let m = m.as_str();
            let url = format!("http://{}/", s.addr);
            let started = Instant::now();
            let load = Command::new(&loadtest)
                .args(["run", "-c", "32", "-d", "2500ms", "--rate", "2000"])
                .args(["--timeout", "2s", "--json", "-", &url])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn loadtest");
            // Read its output while it runs, so a full pipe never stalls it.
            let load = std::thread::spawn(move || load.wait_with_output().expect("loadtest"));
            // Not a wait for a state: the scenario is a signal 1.5 s into a 2.5 s run, so at
            // least one whole second of it ends before the signal (checked below).
            std::thread::sleep(Duration::from_millis(1500));
            // Requests in flight at the signal: sent well before it, still being answered after.
            let mut probes: Vec<TcpStream> = (0..PROBES)
                .map(|_| {
                    let mut c = s.connect();
                    c.write_all(b"GET /sleep?ms=600 HTTP/1.1\r\nHost: t\r\n\r\n")
                        .unwrap();
                    c
                })
                .collect();
            // In flight: each probe accepted and its request read (prefork: once a worker is free).
            let deadline = Instant::now() + Duration::from_secs(2);
            let taken_by = Instant::now();
            assert!(
                wait_until(deadline, || s.has_taken(&probes)),
                "{m}: the probes were not all taken within 2 s"
            );
            eprintln!("graceful {m}: probes taken in {:?}", taken_by.elapsed());
            let signalled = started.elapsed();
            // SAFETY: kill(2) on the server this test started.
            unsafe { libc::kill(s.pid() as i32, libc::SIGTERM) };
            // While the probes are still being answered, a new client must be refused: a listener
            // left open takes connections (and their requests) that nobody will accept, and they
            // are reset at exit, when the client can no longer tell whether its request ran. The
            // signal takes a moment to be heard: poll until refused, well within the probes' 600 ms.
            let mut late = TcpStream::connect(s.addr).map(|c| c.peer_addr());
            let deadline = Instant::now() + Duration::from_millis(300);
            let refused = |late: &std::io::Result<_>| matches!(late, Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused);
            wait_until(deadline, || {
                late = TcpStream::connect(s.addr).map(|c| c.peer_addr());
                refused(&late)
            });
            assert!(
                refused(&late),
                "{m}: a connection 300 ms after SIGTERM was let in ({late:?}), while requests are \
                 still in flight: the listener is still open"
            );
            let exit = s.wait_exit(Duration::from_secs_f64(GRACE + 1.0));
            let stopped_after = started.elapsed() - signalled;
            let exit = exit.unwrap_or_else(|| panic!("{m}: still running {GRACE} s after SIGTERM"));
            assert!(exit.success(), "{m}: exit {exit:?} after SIGTERM");
            assert!(
                stopped_after.as_secs_f64() <= GRACE,
                "{m}: exited {stopped_after:?} after SIGTERM, past the {GRACE} s grace"
            );
            for (i, c) in probes.iter_mut().enumerate() {
                let ex = read_all(c, Duration::from_secs(2));
                assert_eq!(
                    status(&ex.bytes),
                    Some(200),
                    "{m}: request {i} in flight at the signal failed: {:?}",
                    String::from_utf8_lossy(&ex.bytes)
                );
            }
            let out = load.join().expect("loadtest thread");
            assert!(
                out.status.success(),
                "{m}: loadtest failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let report: serde_json::Value =
                serde_json::from_slice(&out.stdout).expect("loadtest JSON");
            let count = |path: &str| report.pointer(path).and_then(|v| v.as_u64()).unwrap_or(0);
            let errors = |kind: &str| count(&format!("/errors/{kind}"));
            assert!(
                count("/requests") >= 1000,
                "{m}: only {} requests",
                count("/requests")
            );
            assert_eq!(count("/responses/5xx"), 0, "{m}: 5xx under a graceful stop");
            assert_eq!(errors("timeout"), 0, "{m}: requests left hanging");
            assert_eq!(errors("parse"), 0, "{m}: a response cut short or garbled");
            // Every error comes after the signal: the seconds of the run that ended before it have
            // none. loadtest's clock starts after its own start-up, so its seconds end later than
            // ours; the margin covers a start-up of up to 300 ms.
            let intervals = report["intervals"].as_array().cloned().unwrap_or_default();
            let mut before_signal = 0;
            for iv in &intervals {
                let end =
                    iv["second"].as_f64().unwrap_or(0.0) + iv["length_s"].as_f64().unwrap_or(1.0);
                if end < signalled.as_secs_f64() - 0.3 {
                    assert_eq!(
                        iv["errors"].as_u64(),
                        Some(0),
                        "{m}: errors before the signal: {iv}"
                    );
                    before_signal += 1;
                }
            }
            assert!(
                before_signal > 0,
                "{m}: no second of the run ended before the signal"
            );
            eprintln!(
                "graceful {m}: exit 0 {:.2} s after SIGTERM; {PROBES}/{PROBES} in-flight probes 200; \
                 loadtest {} responses, 5xx 0, errors after the signal: connect {} read {} write {}",
                stopped_after.as_secs_f64(),
                count("/requests"),
                errors("connect"),
                errors("read"),
                errors("write")
            );
        },
    );
}
