//! c10k: what 10,000 idle keep-alive connections cost a zoo server.
//!
//! For each model named (default: `epoll poll`) it starts `zoo`, opens the connections one by one
//! (each makes one request, then stays open and idle), and prints the server's resident memory
//! before and after (VmRSS from /proc) and the growth per connection, the CPU the server burns
//! while they sit idle, and the latency of a client on one more connection. It fails if that
//! client is not served, or if an idle connection costs 2 KiB or more.
//!
//! ```text
//! cargo bench -p servers --bench c10k -- [MODEL...] [--conns N]
//! cargo bench -p servers --bench c10k -- --target 127.0.0.1:8080 --pid PID [--conns N]
//! ```
//!
//! With `--target` it measures a zoo already running (started with `--max-connections` above N and
//! keep-alive and header timeouts long enough for the run). Client sockets are bound to source
//! addresses spread over 127.0.0.2-127.0.0.251, so repeated runs do not run out of ports while
//! the previous run's closed sockets sit in TIME_WAIT.

use common::ready::ReadyLine;
use socket2::{Domain, SockAddr, Socket, Type};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

/// The goal: an idle keep-alive connection costs the server less than this.
const GOAL_BYTES_PER_CONN: f64 = 2048.0;

struct Target {
    name: String,
    addr: SocketAddr,
    pid: u32,
    child: Option<Child>,
}

fn main() -> ExitCode {
    let mut models = Vec::new();
    let mut conns = 10_000usize;
    let mut target = None;
    let mut pid = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--bench" => {} // passed by `cargo bench`
            "--conns" => conns = args.next().and_then(|v| v.parse().ok()).expect("--conns N"),
            "--target" => target = args.next().and_then(|v| v.parse().ok()),
            "--pid" => pid = args.next().and_then(|v| v.parse().ok()),
            _ if arg.starts_with('-') => panic!("unknown option {arg}"),
            _ => models.push(arg),
        }
    }
    let limit = raise_nofile();
    if (limit as usize) < conns + 64 {
        eprintln!(
            "c10k: RLIMIT_NOFILE is {limit}; {conns} connections need {}",
            conns + 64
        );
        return ExitCode::FAILURE;
    }
    let targets: Vec<Box<dyn Fn() -> Target>> = match (target, pid) {
        (Some(addr), Some(pid)) => vec![Box::new(move || Target {
            name: format!("pid {pid}"),
            addr,
            pid,
            child: None,
        })],
        (None, None) => {
            if models.is_empty() {
                models = vec!["epoll".into(), "poll".into()];
            }
            models
                .into_iter()
                .map(|m| Box::new(move || start_zoo(&m, conns)) as Box<dyn Fn() -> Target>)
                .collect()
        }
        _ => panic!("--target and --pid go together"),
    };
    let mut ok = true;
    for make in targets {
        ok &= run(make(), conns);
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn run(mut target: Target, conns: usize) -> bool {
    // Warm up: the first requests allocate what every later one reuses.
    for _ in 0..4 {
        let mut s = connect(target.addr, 0);
        get(&mut s);
    }
    std::thread::sleep(Duration::from_millis(200));
    let before = rss_kib(target.pid);

    let started = Instant::now();
    let mut idle = Vec::with_capacity(conns);
    for i in 0..conns {
        let mut s = connect(target.addr, i);
        let status = get(&mut s);
        if status != 200 {
            println!("{}: connection {} answered {status}", target.name, i + 1);
            return false;
        }
        idle.push(s);
    }
    let opened = started.elapsed();
    std::thread::sleep(Duration::from_millis(500));
    let after = rss_kib(target.pid);
    let per_conn = (after.saturating_sub(before) * 1024) as f64 / conns as f64;
    let cpu = cpu_share(target.pid, Duration::from_secs(1));

    // One more client, on a fresh connection, beside the idle ones.
    let mut extra = connect(target.addr, conns);
    let mut worst = Duration::ZERO;
    let mut total = Duration::ZERO;
    let rounds = 200;
    let mut served = true;
    for _ in 0..rounds {
        let t = Instant::now();
        served &= get(&mut extra) == 200;
        let took = t.elapsed();
        total += took;
        worst = worst.max(took);
    }
    // And the idle ones are still there.
    for s in idle.iter_mut().step_by(conns.div_ceil(20).max(1)) {
        served &= get(s) == 200;
    }
    let good = served && per_conn < GOAL_BYTES_PER_CONN;
    println!(
        "{:<12} {conns} idle keep-alive connections (opened in {:.2}s): RSS {} KiB -> {} KiB, \
         {:.0} bytes per connection (goal < {GOAL_BYTES_PER_CONN:.0}); idle CPU {:.0}%; \
         client #{}: {} ({rounds} requests, mean {:.0} us, max {:.0} us) -> {}",
        target.name,
        opened.as_secs_f64(),
        before,
        after,
        per_conn,
        cpu * 100.0,
        conns + 1,
        if served { "served" } else { "NOT SERVED" },
        total.as_secs_f64() * 1e6 / rounds as f64,
        worst.as_secs_f64() * 1e6,
        if good { "ok" } else { "FAIL" },
    );
    drop(idle);
    if let Some(mut child) = target.child.take() {
        // SAFETY: kill(2) with a pid we started and an integer signal.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        let _ = child.wait();
    }
    good
}

fn start_zoo(model: &str, conns: usize) -> Target {
    let mut child = Command::new(env!("CARGO_BIN_EXE_zoo"))
        .args(["--model", model, "--listen", "127.0.0.1:0"])
        .arg(format!("--max-connections={}", conns + 64))
        .args(["--keep-alive-timeout=600", "--header-timeout=600"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("zoo starts");
    let mut line = String::new();
    let stdout = child.stdout.take().expect("stdout is piped");
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("zoo prints its ready line");
    let ready = ReadyLine::parse(&line).unwrap_or_else(|| panic!("not a ready line: {line:?}"));
    Target {
        name: model.to_string(),
        addr: ready.addr,
        pid: child.id(),
        child: Some(child),
    }
}

/// Connection number `i`, from source address 127.0.0.(2 + i % 250).
fn connect(addr: SocketAddr, i: usize) -> TcpStream {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    let source = Ipv4Addr::new(127, 0, 0, 2 + (i % 250) as u8);
    socket
        .bind(&SockAddr::from(SocketAddrV4::new(source, 0)))
        .expect("bind a source address");
    socket.connect(&addr.into()).expect("connect");
    let stream: TcpStream = socket.into();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    stream
}

/// Sends `GET /` and reads the whole response; returns its status.
fn get(stream: &mut TcpStream) -> u16 {
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: zoo\r\n\r\n")
        .expect("request written");
    let mut data = Vec::new();
    let mut chunk = [0u8; 512];
    let head_end = loop {
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match stream.read(&mut chunk) {
            Ok(n) if n > 0 => data.extend_from_slice(&chunk[..n]),
            _ => return 0,
        }
    };
    let head = String::from_utf8_lossy(&data[..head_end]).to_string();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    while data.len() < head_end + length {
        match stream.read(&mut chunk) {
            Ok(n) if n > 0 => data.extend_from_slice(&chunk[..n]),
            _ => return 0,
        }
    }
    head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0)
}

/// The process's resident set size in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmRSS")
}

/// The share of one CPU the process uses over `span`.
fn cpu_share(pid: u32, span: Duration) -> f64 {
    let ticks = || -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc stat");
        // Fields after the command name (which may hold spaces): utime and stime are 14 and 15.
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let fields: Vec<&str> = rest.split_whitespace().collect();
        fields[11].parse::<u64>().unwrap_or(0) + fields[12].parse::<u64>().unwrap_or(0)
    };
    // SAFETY: sysconf takes an integer name.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let start = ticks();
    std::thread::sleep(span);
    (ticks() - start) as f64 / hz / span.as_secs_f64()
}

/// Raises this process's soft descriptor limit to the hard one; returns the result.
fn raise_nofile() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write only the struct we pass.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
    }
    lim.rlim_cur
}
