//! What only the process models promise: `fork` reaps every child and leaks no descriptor,
//! `prefork` restarts a killed worker and closes a connection once nothing more is waiting, both
//! count server-wide in the shared scoreboard, and both stop gracefully (and kill what outlives
//! the grace). The real binary on `127.0.0.1:0`; children are found in /proc.

mod support;

use std::collections::BTreeSet;
use std::io::Write;
use std::time::{Duration, Instant};
use support::{parse_responses, read_all, wait_for, Server};

/// The children of `parent` and their states (`R`, `S`, `Z`, ...), from /proc/*/stat.
fn children_of(parent: u32) -> Vec<(u32, char)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue; // gone meanwhile
        };
        // "pid (comm) state ppid ...": comm may hold anything, so split after its last ')'.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next().and_then(|s| s.chars().next()).unwrap_or('?');
        if fields.next().and_then(|p| p.parse().ok()) == Some(parent) {
            found.push((pid, state));
        }
    }
    found
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

fn metric(s: &Server, name: &str) -> u64 {
    let text = s.get("/metrics").text();
    let line = text
        .lines()
        .find(|l| l.split(' ').next() == Some(name))
        .unwrap_or_else(|| panic!("no {name} in /metrics:\n{text}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

fn pid_of(s: &Server) -> u32 {
    s.child.id()
}

fn kill(pid: u32, signal: i32) {
    // SAFETY: kill(2) on a process this test started (or one of its children).
    unsafe { libc::kill(pid as i32, signal) };
}

#[test]
fn fork_reaps_every_child_and_leaks_no_descriptor() {
    let s = Server::start("fork", &[]).expect("fork starts");
    let pid = pid_of(&s);
    // The ready line comes before the model's own setup (its SIGCHLD pipe): one answer first.
    assert_eq!(s.get("/").status, 200);
    let baseline = open_fds(pid);
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                for i in 0..25 {
                    if i % 5 == 4 {
                        drop(s.connect()); // connects and leaves without a word
                    } else {
                        assert_eq!(s.get("/").status, 200);
                    }
                }
            });
        }
    });
    // Keep-alive: one child serves several requests.
    let ex = s.exchange(
        b"GET / HTTP/1.1\r\nHost: t\r\n\r\nGET /json HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        Duration::from_secs(5),
    );
    assert_eq!(parse_responses(&ex.bytes, false).len(), 2);
    // No further connection comes: only SIGCHLD can get the last children reaped.
    let left = wait_for(Duration::from_secs(5), || {
        children_of(pid).is_empty().then_some(())
    });
    assert!(left.is_some(), "children left: {:?}", children_of(pid));
    assert_eq!(open_fds(pid), baseline, "the parent leaked descriptors");
}

#[test]
fn fork_sheds_over_max_connections_and_recovers_when_children_exit() {
    let s = Server::start("fork", &["--max-connections", "2"]).expect("fork starts");
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut c = s.connect();
        c.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        let ex = read_all(&mut c, Duration::from_millis(500));
        assert_eq!(parse_responses(&ex.bytes, false)[0].status, 200);
        held.push(c); // its child waits for the next request
    }
    let ex = s.exchange(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n", Duration::from_secs(2));
    assert!(
        ex.bytes.starts_with(b"HTTP/1.1 503"),
        "{ex:?}",
        ex = String::from_utf8_lossy(&ex.bytes)
    );
    drop(held);
    // The count drops when the parent reaps the children, which SIGCHLD makes prompt.
    let served = wait_for(Duration::from_secs(5), || {
        (s.get("/").status == 200).then_some(())
    });
    assert!(served.is_some(), "still shedding after the children exited");
}

#[test]
fn prefork_restarts_a_killed_worker_and_keeps_serving() {
    let mut s = Server::start("prefork", &["--workers", "2"]).expect("prefork starts");
    let master = pid_of(&s);
    let workers = |n: usize| {
        wait_for(Duration::from_secs(5), || {
            let pids: BTreeSet<u32> = children_of(master).iter().map(|c| c.0).collect();
            (pids.len() == n).then_some(pids)
        })
    };
    let before = workers(2).expect("two workers");
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (served, failed) = std::thread::scope(|scope| {
        let load: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(|| {
                    let (mut ok, mut bad) = (0u32, 0u32);
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let ex = s
                            .exchange(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n", Duration::from_secs(3));
                        match parse_responses(&ex.bytes, false).first() {
                            Some(r) if r.status == 200 => ok += 1,
                            _ => bad += 1,
                        }
                    }
                    (ok, bad)
                })
            })
            .collect();
        let victim = *before.iter().next().unwrap();
        kill(victim, libc::SIGKILL);
        let after = wait_for(Duration::from_secs(5), || {
            let pids: BTreeSet<u32> = children_of(master).iter().map(|c| c.0).collect();
            (pids.len() == 2 && !pids.contains(&victim)).then_some(pids)
        });
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(after.is_some(), "no new worker: {:?}", children_of(master));
        load.into_iter()
            .map(|h| h.join().unwrap())
            .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
    });
    // At most the connection the victim was serving is lost.
    assert!(failed <= 1, "{failed} requests failed, {served} served");
    for _ in 0..20 {
        assert_eq!(s.get("/").status, 200);
    }
    assert!(s.child.try_wait().unwrap().is_none(), "the master died");
}

#[test]
fn a_signal_to_one_process_does_not_stop_the_server() {
    for (model, args) in [("fork", &[][..]), ("prefork", &["--workers", "2"][..])] {
        let s = Server::start(model, args).expect("starts");
        let master = pid_of(&s);
        // A child of fork lives as long as its connection: hold one open.
        let mut held = s.connect();
        held.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        let _ = read_all(&mut held, Duration::from_millis(300));
        let child = wait_for(Duration::from_secs(5), || {
            children_of(master).first().map(|c| c.0)
        })
        .expect("a child process");
        kill(child, libc::SIGTERM);
        let gone = wait_for(Duration::from_secs(5), || {
            (!children_of(master).iter().any(|c| c.0 == child)).then_some(())
        });
        assert!(gone.is_some(), "{model}: the signalled child did not exit");
        assert_eq!(
            s.get("/").status,
            200,
            "{model}: the server stopped with its child"
        );
    }
}

#[test]
fn prefork_answers_what_is_waiting_then_closes() {
    let s = Server::start("prefork", &["--workers", "1"]).expect("prefork starts");
    let one = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n";
    let ex = s.exchange(&[&one[..], one, one].concat(), Duration::from_secs(3));
    let rs = parse_responses(&ex.bytes, false);
    assert_eq!(rs.len(), 3, "the pipelined batch is answered whole");
    let closing: Vec<_> = rs
        .iter()
        .map(|r| r.header("connection") == Some("close"))
        .collect();
    assert_eq!(closing, [false, false, true], "only the last answer closes");
    assert!(ex.closed);
    // A lone keep-alive request is answered with close: an idle client never holds the worker.
    let ex = s.exchange(one, Duration::from_secs(3));
    assert_eq!(
        parse_responses(&ex.bytes, false)[0].header("connection"),
        Some("close")
    );
    assert!(ex.closed);
    // A second request whose head is still arriving is waited for, then answered.
    let mut c = s.connect();
    c.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\nGET /json HTTP/1.1\r\nHo")
        .unwrap();
    let first = read_all(&mut c, Duration::from_millis(300));
    assert_eq!(parse_responses(&first.bytes, false).len(), 1);
    c.write_all(b"st: t\r\n\r\n").unwrap();
    let rest = read_all(&mut c, Duration::from_secs(3));
    let rs = parse_responses(&rest.bytes, false);
    assert_eq!((rs.len(), rs[0].header("connection")), (1, Some("close")));
    assert!(rest.closed);
}

#[test]
fn the_scoreboard_counts_across_processes() {
    for (model, args) in [("fork", &[][..]), ("prefork", &["--workers", "3"][..])] {
        let s = Server::start(model, args).expect("starts");
        const N: u64 = 60;
        std::thread::scope(|scope| {
            for _ in 0..6 {
                scope.spawn(|| {
                    for _ in 0..N / 6 {
                        assert_eq!(s.get("/sleep?ms=5").status, 200);
                    }
                });
            }
        });
        let mut pids = BTreeSet::new();
        for _ in 0..4 {
            let info = s.get("/info");
            let v: serde_json::Value = serde_json::from_slice(&info.body).unwrap();
            assert_eq!(v["per_process_state"], true, "{model}");
            pids.insert(v["pid"].as_u64().unwrap());
        }
        assert!(
            !pids.contains(&u64::from(pid_of(&s))),
            "{model}: the master answered"
        );
        if model == "fork" {
            assert_eq!(pids.len(), 4, "fork: a new process per connection");
        }
        // Every request counted once, whichever process answered it: N, four /info and this one.
        assert_eq!(metric(&s, "zoo_requests_total"), N + 5, "{model}");
        assert_eq!(metric(&s, "zoo_connections_total"), N + 6, "{model}");
    }
}

#[test]
fn graceful_stop_finishes_the_request_in_flight() {
    for (model, args) in [("fork", &[][..]), ("prefork", &["--workers", "2"][..])] {
        let mut s = Server::start(model, &[args, &["--grace", "5"]].concat()).expect("starts");
        let mut busy = s.connect();
        busy.write_all(b"GET /sleep?ms=500 HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        // In flight once the service has counted it (each look at /metrics counts itself too).
        let mut looks = 0;
        let counted = wait_for(Duration::from_secs(5), || {
            looks += 1;
            (metric(&s, "zoo_requests_total") > looks).then_some(())
        });
        assert!(
            counted.is_some(),
            "{model}: the request never reached the service"
        );
        let t = Instant::now();
        let status = s
            .terminate(Duration::from_secs(5))
            .expect("exits within the grace");
        assert!(status.success(), "{model}: {status:?}");
        let ex = read_all(&mut busy, Duration::from_secs(2));
        let rs = parse_responses(&ex.bytes, false);
        assert_eq!(
            rs.first().map(|r| r.status),
            Some(200),
            "{model}: request lost"
        );
        assert_eq!(rs[0].header("connection"), Some("close"), "{model}");
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "{model}: {:?}",
            t.elapsed()
        );
    }
}

#[test]
fn what_outlives_the_grace_is_killed() {
    // Two workers: one is held by the request, the other answers /metrics.
    for (model, args) in [("fork", &[][..]), ("prefork", &["--workers", "2"][..])] {
        let mut s = Server::start(model, &[args, &["--grace", "1"]].concat()).expect("starts");
        let master = pid_of(&s);
        let mut busy = s.connect();
        busy.write_all(b"GET /block?ms=10000 HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        let mut looks = 0;
        let counted = wait_for(Duration::from_secs(5), || {
            looks += 1;
            (metric(&s, "zoo_requests_total") > looks).then_some(())
        });
        assert!(
            counted.is_some(),
            "{model}: the request never reached the service"
        );
        let kids: Vec<u32> = children_of(master).iter().map(|c| c.0).collect();
        let t = Instant::now();
        let status = s
            .terminate(Duration::from_secs(5))
            .expect("exits after the grace");
        assert!(status.success(), "{model}: {status:?}");
        assert!(
            t.elapsed() >= Duration::from_millis(900),
            "{model}: {:?}",
            t.elapsed()
        );
        let ex = read_all(&mut busy, Duration::from_secs(2));
        assert!(
            ex.closed && ex.bytes.is_empty(),
            "{model}: the killed request got an answer"
        );
        for kid in kids {
            assert!(
                !std::path::Path::new(&format!("/proc/{kid}")).exists(),
                "{model}: child {kid} survived"
            );
        }
    }
}
