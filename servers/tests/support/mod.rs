//! Test support: start the real `zoo` binary on `127.0.0.1:0`, read the address it prints, and talk
//! to it over raw sockets. No fixed ports, no sleeps to wait for readiness.

#![allow(dead_code)] // each test binary uses its own part of the support module

use common::ready::ReadyLine;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The models under test: `ZOO_MODELS` (comma-separated) or every model the binary lists.
pub fn models() -> Vec<String> {
    if let Ok(list) = std::env::var("ZOO_MODELS") {
        return list
            .split(',')
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .map(String::from)
            .collect();
    }
    let out = Command::new(env!("CARGO_BIN_EXE_zoo"))
        .arg("--list-models")
        .output()
        .expect("run zoo --list-models");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect()
}

/// A running `zoo`, killed when dropped.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    pub model: String,
}

/// Why a model did not start: it exited (or closed its stdout) before its ready line.
#[derive(Debug)]
pub struct NotStarted {
    pub model: String,
    /// How it exited, if it did.
    pub status: Option<ExitStatus>,
    /// What it said on stderr.
    pub stderr: String,
}

/// zoo's exit status when the kernel refuses what a model needs (EX_UNAVAILABLE; servers/main.rs).
const EXIT_UNAVAILABLE: i32 = 69;

impl NotStarted {
    /// The kernel's reason, when this is the one legitimate absence: `uring` where the kernel
    /// refuses io_uring (zoo exits 69 and says why, the errno by name). `None` for any other
    /// failure to start, which is a failure of the test.
    pub fn io_uring_refused(&self) -> Option<&str> {
        let unavailable = self.status.and_then(|s| s.code()) == Some(EXIT_UNAVAILABLE);
        let said = self
            .stderr
            .lines()
            .find_map(|l| l.strip_prefix("zoo: io_uring is not available here "))?;
        (self.model == "uring" && unavailable).then_some(said)
    }
}

impl std::fmt::Display for NotStarted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let status = self
            .status
            .map_or("no exit status".to_string(), |s| s.to_string());
        write!(
            f,
            "model {} did not start ({status}): {}",
            self.model, self.stderr
        )
    }
}

impl Server {
    /// Starts `zoo --model=MODEL` with `args`; `Err` when it exits before its ready line.
    pub fn try_start(model: &str, args: &[&str]) -> Result<Server, NotStarted> {
        Server::try_start_with(model, args, |_| {})
    }

    /// [`Server::try_start`] with a last say on the command (a descriptor limit, a CPU pin, an
    /// environment variable) before it is spawned.
    pub fn try_start_with(
        model: &str,
        args: &[&str],
        configure: impl FnOnce(&mut Command),
    ) -> Result<Server, NotStarted> {
        let mut command = Command::new(env!("CARGO_BIN_EXE_zoo"));
        command
            .arg(format!("--model={model}"))
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        configure(&mut command);
        let mut child = command.spawn().expect("spawn zoo");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let ready = lines.next().and_then(Result::ok);
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let Some(ready) = ready.as_deref().and_then(ReadyLine::parse) else {
            let mut stderr = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut stderr);
            }
            let status = child.wait().ok();
            return Err(NotStarted {
                model: model.to_string(),
                status,
                stderr: stderr.trim().to_string(),
            });
        };
        let stderr = child.stderr.take().expect("piped stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[zoo] {line}");
            }
        });
        Ok(Server {
            child,
            addr: ready.addr,
            model: model.to_string(),
        })
    }

    /// Starts the model. `None` only for `uring` where the kernel refuses io_uring, after a line
    /// that says so with the kernel's reason; any other failure to start panics.
    pub fn start(model: &str, args: &[&str]) -> Option<Server> {
        Server::start_with(model, args, |_| {})
    }

    /// [`Server::start`] with a last say on the command (see [`Server::try_start_with`]).
    pub fn start_with(
        model: &str,
        args: &[&str],
        configure: impl FnOnce(&mut Command),
    ) -> Option<Server> {
        match Server::try_start_with(model, args, configure) {
            Ok(s) => Some(s),
            Err(e) => match e.io_uring_refused() {
                Some(why) => {
                    eprintln!("skipped: uring: the kernel refuses io_uring {why}");
                    None
                }
                None => panic!("{e}"),
            },
        }
    }

    /// The server's process id (the master, for the process models).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// One figure of `/metrics` (`zoo_connections_active`, ...), asked on a new connection, which
    /// itself counts in the connection figures while it is open.
    pub fn metric(&self, name: &str) -> i64 {
        self.try_metric(name)
            .unwrap_or_else(|text| panic!("no {name} in /metrics:\n{text}"))
    }

    /// [`Server::metric`], or what came instead (a 503 over `--max-connections`, say).
    pub fn try_metric(&self, name: &str) -> Result<i64, String> {
        let text = self.get("/metrics").text();
        text.lines()
            .find(|l| l.split(' ').next() == Some(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .ok_or(text)
    }

    /// A new connection with a read timeout.
    pub fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(self.addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        s
    }

    /// Sends `raw` on a new connection and reads until the server closes or `wait` passes.
    pub fn exchange(&self, raw: &[u8], wait: Duration) -> Exchange {
        let mut s = self.connect();
        s.write_all(raw).expect("write request");
        read_all(&mut s, wait)
    }

    /// One GET on a new connection, parsed.
    pub fn get(&self, target: &str) -> Resp {
        let raw = format!("GET {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        let ex = self.exchange(raw.as_bytes(), Duration::from_secs(10));
        parse_responses(&ex.bytes, false)
            .into_iter()
            .next()
            .expect("a response")
    }

    /// Sends SIGTERM and waits for the exit, at most `limit`.
    pub fn terminate(&mut self, limit: Duration) -> Option<ExitStatus> {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        self.wait_exit(limit)
    }

    /// Waits for the server to exit, at most `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let until = Instant::now() + limit;
        while Instant::now() < until {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What came back on a connection.
pub struct Exchange {
    pub bytes: Vec<u8>,
    /// The server closed the connection (EOF or reset) before the wait ran out.
    pub closed: bool,
}

/// Reads until EOF, an error, or `wait` without data.
pub fn read_all(s: &mut TcpStream, wait: Duration) -> Exchange {
    s.set_read_timeout(Some(wait)).expect("timeout");
    let mut bytes = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match s.read(&mut buf) {
            Ok(0) => {
                return Exchange {
                    bytes,
                    closed: true,
                }
            }
            Ok(n) => bytes.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Exchange {
                    bytes,
                    closed: false,
                }
            }
            Err(_) => {
                return Exchange {
                    bytes,
                    closed: true,
                }
            }
        }
    }
}

/// One parsed response.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Parses consecutive responses (Content-Length or chunked bodies; none after HEAD when
/// `head_only`), skipping interim 1xx ones.
pub fn parse_responses(mut bytes: &[u8], head_only: bool) -> Vec<Resp> {
    let mut out = Vec::new();
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut r = httparse::Response::new(&mut headers);
        let Ok(httparse::Status::Complete(n)) = r.parse(bytes) else {
            return out;
        };
        let status = r.code.unwrap_or(0);
        let hs: Vec<(String, String)> = r
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_string(),
                    String::from_utf8_lossy(h.value).into_owned(),
                )
            })
            .collect();
        bytes = &bytes[n..];
        let resp_header = |name: &str| {
            hs.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        let mut body = Vec::new();
        if status >= 200 && !head_only && status != 204 && status != 304 {
            if resp_header("transfer-encoding").is_some() {
                loop {
                    let Some(eol) = bytes.windows(2).position(|w| w == b"\r\n") else {
                        return out;
                    };
                    let size_text = String::from_utf8_lossy(&bytes[..eol]).to_string();
                    let size =
                        usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                            .expect("chunk size");
                    bytes = &bytes[eol + 2..];
                    if size == 0 {
                        let end = bytes.windows(2).position(|w| w == b"\r\n").expect("end");
                        bytes = &bytes[end + 2..];
                        break;
                    }
                    body.extend_from_slice(&bytes[..size]);
                    bytes = &bytes[size + 2..];
                }
            } else if let Some(len) = resp_header("content-length") {
                let len: usize = len.trim().parse().expect("content-length");
                if bytes.len() < len {
                    return out;
                }
                body = bytes[..len].to_vec();
                bytes = &bytes[len..];
            }
        }
        if status >= 200 {
            out.push(Resp {
                status,
                headers: hs,
                body,
            });
        }
    }
}

/// Runs `check` against every model, collecting failures so one bad model does not hide another.
pub fn for_each_model(args: &[&str], check: impl Fn(&Server)) {
    for_each_model_with(
        |_| args.iter().map(|a| a.to_string()).collect(),
        |s| check(s),
    );
}

/// [`for_each_model`] with arguments chosen per model (`--workers` for prefork, say), and the
/// server lent mutably (to stop it, say).
pub fn for_each_model_with(args: impl Fn(&str) -> Vec<String>, check: impl Fn(&mut Server)) {
    let mut failed = Vec::new();
    for model in models() {
        let args = args(&model);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        // Only io_uring refused by the kernel skips a model; any other failure to start fails.
        let mut server = match Server::try_start(&model, &args) {
            Ok(server) => server,
            Err(e) => {
                match e.io_uring_refused() {
                    Some(why) => eprintln!("skipped: uring: the kernel refuses io_uring {why}"),
                    None => failed.push(e.to_string()),
                }
                continue;
            }
        };
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&mut server)));
        if let Err(e) = result {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failed.push(format!("{model}: {msg}"));
        }
    }
    assert!(failed.is_empty(), "failed under: {failed:#?}");
}

/// A client that keeps one connection open across requests and reconnects only when the server
/// closes it: per-process state (fork, prefork) stays in one process this way, as long as the
/// model keeps the connection (fork) or has a single worker (prefork with `--workers 1`).
pub struct Client<'a> {
    server: &'a Server,
    stream: Option<TcpStream>,
}

impl<'a> Client<'a> {
    pub fn new(server: &'a Server) -> Client<'a> {
        Client {
            server,
            stream: None,
        }
    }

    /// Sends one request (`head` without its final CRLF; Host is added) and reads its answer.
    pub fn send(&mut self, method: &str, target: &str, headers: &str, body: &[u8]) -> Resp {
        let mut raw = format!("{method} {target} HTTP/1.1\r\nHost: t\r\n{headers}");
        raw.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        let mut raw = raw.into_bytes();
        raw.extend_from_slice(body);
        let stream = self.stream.get_or_insert_with(|| self.server.connect());
        stream.write_all(&raw).expect("write request");
        let mut bytes = Vec::new();
        let mut buf = [0u8; 65536];
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(resp) = parse_responses(&bytes, method == "HEAD").into_iter().next() {
                if resp
                    .header("connection")
                    .is_some_and(|c| c.eq_ignore_ascii_case("close"))
                {
                    self.stream = None;
                }
                return resp;
            }
            assert!(Instant::now() < until, "no answer to {method} {target}");
            match stream.read(&mut buf) {
                Ok(0) => panic!("closed before answering {method} {target}"),
                Ok(n) => bytes.extend_from_slice(&buf[..n]),
                Err(e) => panic!("reading the answer to {method} {target}: {e}"),
            }
        }
    }
}

/// Polls `cond` every 10 ms until it holds (`true`) or `deadline` passes (`false`): how a test
/// waits for a state (a figure of `/metrics`, the process table), never a fixed sleep.
pub fn wait_until(deadline: Instant, mut cond: impl FnMut() -> bool) -> bool {
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// One accepted connection as the kernel's tables show it.
#[derive(Debug, Clone, Copy)]
pub struct Accepted {
    /// The client's port.
    pub peer_port: u16,
    /// Bytes received and not yet read by the server.
    pub unread: u64,
}

/// The connections the server has accepted and holds open now, from the process table: the
/// established TCP sockets on its `port` held by `pid` or a descendant (a forked child's
/// connection counts once). A connection still in the listen backlog is held by nobody.
pub fn accepted(pid: u32, port: u16) -> Vec<Accepted> {
    let mut held = std::collections::HashSet::new();
    for p in process_tree(pid) {
        let Ok(fds) = std::fs::read_dir(format!("/proc/{p}/fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(link) = std::fs::read_link(fd.path()) else {
                continue;
            };
            let link = link.to_string_lossy();
            if let Some(inode) = link
                .strip_prefix("socket:[")
                .and_then(|l| l.strip_suffix(']'))
            {
                held.insert(inode.to_string());
            }
        }
    }
    match established_by_netlink(port) {
        Some(sockets) => sockets
            .into_iter()
            .filter(|(inode, _)| held.contains(inode))
            .map(|(_, a)| a)
            .collect(),
        None => established_from_proc(port, &held),
    }
}

/// The established sockets on local `port` as (inode, figures), asked of the kernel through
/// `ss` (sock_diag over netlink, filtered in the kernel by state and port). `None` where `ss`
/// is missing. /proc/net/tcp lists every socket of the machine, TIME_WAIT ones included: after a
/// few seconds of a model that closes each connection (prefork) it has tens of thousands of
/// lines and one read takes longer than the states a test waits for.
fn established_by_netlink(port: u16) -> Option<Vec<(String, Accepted)>> {
    let out = std::process::Command::new("ss")
        .args(["-tnHe", "state", "established"])
        .arg(format!("( sport = :{port} )"))
        .stderr(std::process::Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut sockets = Vec::new();
    // Recv-Q Send-Q Local:Port Peer:Port ino:N sk:... (the state is the filter's, not shown)
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (Some(unread), Some(peer), Some(inode)) = (
            f.first().and_then(|q| q.parse::<u64>().ok()),
            f.get(3)
                .and_then(|p| p.rsplit(':').next())
                .and_then(|p| p.parse::<u16>().ok()),
            f.iter().find_map(|x| x.strip_prefix("ino:")),
        ) else {
            continue;
        };
        sockets.push((
            inode.to_string(),
            Accepted {
                peer_port: peer,
                unread,
            },
        ));
    }
    Some(sockets)
}

/// The same from /proc/net/tcp and tcp6, where `ss` is missing.
fn established_from_proc(port: u16, held: &std::collections::HashSet<String>) -> Vec<Accepted> {
    let port_of = |addr: &str| {
        addr.rsplit(':')
            .next()
            .and_then(|p| u16::from_str_radix(p, 16).ok())
    };
    let mut out = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        // sl local_address rem_address st tx_queue:rx_queue tr:when retrnsmt uid timeout inode
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(remote), Some(state), Some(queues), Some(inode)) =
                (f.get(1), f.get(2), f.get(3), f.get(4), f.get(9))
            else {
                continue;
            };
            if port_of(local) != Some(port) || *state != "01" || !held.contains(*inode) {
                continue;
            }
            let unread = queues
                .split(':')
                .nth(1)
                .and_then(|q| u64::from_str_radix(q, 16).ok())
                .unwrap_or(0);
            if let Some(peer_port) = port_of(remote) {
                out.push(Accepted { peer_port, unread });
            }
        }
    }
    out
}

impl Server {
    /// Connections this server has accepted and holds open now (see [`accepted`]).
    pub fn accepted(&self) -> Vec<Accepted> {
        accepted(self.pid(), self.addr.port())
    }

    /// Whether the server has accepted every one of `clients` and read everything they sent.
    pub fn has_taken(&self, clients: &[TcpStream]) -> bool {
        let accepted = self.accepted();
        clients.iter().all(|c| {
            let port = c.local_addr().map(|a| a.port()).ok();
            accepted
                .iter()
                .any(|a| Some(a.peer_port) == port && a.unread == 0)
        })
    }
}

/// Polls `check` every 20 ms until it gives a value or `limit` passes.
pub fn wait_for<T>(limit: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let until = Instant::now() + limit;
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if Instant::now() >= until {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `pid` and every live descendant of it, from /proc (the workers or connection processes of the
/// process models, the process alone otherwise).
pub fn process_tree(pid: u32) -> Vec<u32> {
    let mut parents = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Some(stat) = proc_stat(child) {
            // The field after the state is the parent pid.
            if let Some(ppid) = stat.get(1).and_then(|p| p.parse::<u32>().ok()) {
                parents.push((child, ppid));
            }
        }
    }
    let mut tree = vec![pid];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(
            parents
                .iter()
                .filter(|(_, p)| *p == parent)
                .map(|(c, _)| *c),
        );
        i += 1;
    }
    tree
}

/// The fields of /proc/PID/stat after the command name (state first), or `None` once it is gone.
fn proc_stat(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) state ...": comm may hold anything, so split after its last ')'.
    let (_, rest) = stat.rsplit_once(')')?;
    Some(rest.split_whitespace().map(String::from).collect())
}

/// CPU time (user + system) used so far by `pid` and its live descendants, in seconds.
pub fn cpu_seconds(pid: u32) -> f64 {
    // SAFETY: sysconf with a constant name has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let used: u64 = process_tree(pid)
        .into_iter()
        .filter_map(proc_stat)
        // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after the state.
        .map(|f| f[11].parse::<u64>().unwrap_or(0) + f[12].parse::<u64>().unwrap_or(0))
        .sum();
    used as f64 / ticks
}

/// Open descriptors of `pid` and its live descendants.
pub fn open_fds(pid: u32) -> usize {
    process_tree(pid)
        .into_iter()
        .filter_map(|p| std::fs::read_dir(format!("/proc/{p}/fd")).ok())
        .map(|dir| dir.count())
        .sum()
}

/// Resident memory of `pid` and its live descendants, in KiB (VmRSS from /proc/PID/status; pages
/// shared between a parent and its forked children count in each).
pub fn rss_kib(pid: u32) -> u64 {
    process_tree(pid)
        .into_iter()
        .filter_map(|p| std::fs::read_to_string(format!("/proc/{p}/status")).ok())
        .filter_map(|status| {
            let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .sum()
}

/// Raises this process's soft descriptor limit to its hard limit (tests holding hundreds of
/// sockets open); returns the new soft limit.
pub fn raise_nofile_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write only the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
    lim.rlim_cur
}
