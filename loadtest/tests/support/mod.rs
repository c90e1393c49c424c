//! Shared by the integration tests: a real nginx on a socket the test bound itself, tiny
//! hand-written servers for the faults nginx will not commit, and a way to run `loadtest`.
//!
//! No fixed ports and no sleeps: the test binds `127.0.0.1:0` and hands the listening socket to
//! nginx (nginx adopts sockets named in its `NGINX` environment variable, as in a binary
//! upgrade), so connections queue in the backlog until nginx accepts them. nginx runs with its
//! master process (1.22 crashes adopting a socket with `master_process off`) and one worker.

#![allow(dead_code)] // Each test file uses a different part of this module.

use serde_json::Value;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// Load tests of one test binary run one at a time: two at once on a small machine would
/// measure each other.
pub fn exclusive() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A fresh directory under the system temp dir, removed by [`TempDir`]'s drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(what: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("loadtest-{what}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create a temp dir");
        TempDir(dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Where nginx is, or a failure that says how to get it.
fn find_nginx() -> PathBuf {
    let mut candidates = vec![PathBuf::from("/usr/sbin/nginx")];
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path).map(|d| d.join("nginx")));
    }
    candidates
        .into_iter()
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "nginx is not installed: these tests load a real nginx started by the test \
             (Debian/Ubuntu: apt-get install nginx-light; CI installs it)"
            )
        })
}

/// An nginx serving on 127.0.0.1, one worker, everything in a temp dir.
///
/// Locations: `/hello` and `/` answer `200 Hello`, `/fail` answers `500`, `/ready` answers
/// `204` without logging. The access log has one line per request:
/// `$connection $connection_requests $status $content_length $http_x_test $request`.
/// `keepalive_requests 100` makes nginx close busy connections now and then, as it does in
/// production (where the default is 1000).
pub struct Nginx {
    child: Option<Child>,
    dir: TempDir,
    pub port: u16,
}

impl Nginx {
    pub fn start() -> Nginx {
        let bin = find_nginx();
        let dir = TempDir::new("nginx");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("bound address").port();
        let d = dir.0.display();
        let conf = format!(
            r#"daemon off;
master_process on;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log notice;
events {{ worker_connections 1024; }}
http {{
    log_format counted '$connection $connection_requests $status $content_length "$http_x_test" $request';
    access_log {d}/access.log counted;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    keepalive_requests 100;
    server {{
        listen 127.0.0.1:{port};
        location = /ready {{ access_log off; return 204; }}
        location = /fail {{ return 500 "failing on purpose"; }}
        location / {{ return 200 "Hello"; }}
    }}
}}
"#
        );
        std::fs::write(dir.path("nginx.conf"), conf).expect("write nginx.conf");
        let fd = listener.as_raw_fd();
        let mut cmd = Command::new(&bin);
        cmd.arg("-p")
            .arg(&dir.0)
            .arg("-c")
            .arg(dir.path("nginx.conf"))
            .arg("-e")
            .arg(dir.path("error.log"))
            .env("NGINX", format!("{fd};"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: runs in the child between fork and exec, calling only fcntl, which is
        // async-signal-safe; it lets the listening socket survive exec in this child alone.
        unsafe {
            cmd.pre_exec(move || {
                if libc::fcntl(fd, libc::F_SETFD, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()));
        drop(listener);
        let nginx = Nginx {
            child: Some(child),
            dir,
            port,
        };
        nginx.wait_ready();
        nginx
    }

    /// One request to `/ready`: it queues in the backlog until nginx accepts it, so its answer
    /// means nginx is serving.
    fn wait_ready(&self) {
        let answer = http_get(self.port, "/ready");
        assert!(
            answer.starts_with("HTTP/1.1 204"),
            "nginx did not start: {answer:?}\nerror.log:\n{}",
            std::fs::read_to_string(self.dir.path("error.log")).unwrap_or_default()
        );
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn dir(&self) -> &Path {
        &self.dir.0
    }

    /// Stops nginx and returns its access log, one entry per request it answered.
    pub fn stop_and_read_log(&mut self) -> Vec<LogLine> {
        self.stop();
        let log = std::fs::read_to_string(self.dir.path("access.log")).unwrap_or_default();
        log.lines().map(LogLine::parse).collect()
    }
}

impl Nginx {
    /// SIGTERM, not SIGKILL: the master then stops its worker before it exits itself.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: kill takes no pointers; the pid is our child, not yet reaped.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
            let _ = child.wait();
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One access-log line.
#[derive(Debug, Clone)]
pub struct LogLine {
    pub connection: u64,
    pub connection_requests: u64,
    pub status: u16,
    /// The request's Content-Length, `-` without one.
    pub content_length: String,
    pub x_test: String,
    pub request: String,
}

impl LogLine {
    fn parse(line: &str) -> LogLine {
        let mut f = line.splitn(6, ' ');
        let mut next = || f.next().unwrap_or_else(|| panic!("short log line: {line}"));
        let num = |s: &str| {
            s.parse::<u64>()
                .unwrap_or_else(|_| panic!("bad log line: {line}"))
        };
        LogLine {
            connection: num(next()),
            connection_requests: num(next()),
            status: num(next()) as u16,
            content_length: next().to_string(),
            x_test: next().trim_matches('"').to_string(),
            request: next().to_string(),
        }
    }
}

/// A blocking GET with a timeout, answer as text.
pub fn http_get(port: u16, path: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    answer
}

/// A server in threads, one per connection; `handle` gets each accepted stream. It lives as
/// long as the test process.
pub fn serve(handle: fn(TcpStream)) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let port = listener.local_addr().expect("bound address").port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || handle(stream));
        }
    });
    port
}

/// Reads from `stream` until one more request head is complete; false at EOF. `buf` keeps what
/// follows it (pipelined requests).
pub fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> bool {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            buf.drain(..end + 4);
            return true;
        }
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return false,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// What a run of `loadtest` produced.
pub struct Run {
    pub output: Output,
    pub json: Value,
}

impl Run {
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    /// A number at a JSON pointer such as `/errors/read`.
    pub fn num(&self, pointer: &str) -> f64 {
        self.json
            .pointer(pointer)
            .and_then(Value::as_f64)
            .unwrap_or_else(|| panic!("no number at {pointer} in {:#}", self.json))
    }

    pub fn count(&self, pointer: &str) -> u64 {
        self.json
            .pointer(pointer)
            .and_then(Value::as_u64)
            .unwrap_or_else(|| panic!("no count at {pointer} in {:#}", self.json))
    }
}

/// The engines of `loadtest run --engine`: the tests of the engine loop run under each.
pub const ENGINES: [&str; 2] = ["epoll", "uring"];

/// Runs the built `loadtest` binary with `args`.
pub fn loadtest_raw(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_loadtest"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run loadtest")
}

/// Runs `loadtest run` with `args` plus `--json`, and checks it succeeded.
pub fn loadtest_run(args: &[&str]) -> Run {
    let dir = TempDir::new("json");
    let json_path = dir.path("out.json");
    let mut all = vec![
        "run",
        "--json",
        json_path.to_str().expect("utf-8 temp path"),
    ];
    all.extend_from_slice(args);
    let output = loadtest_raw(&all);
    assert!(
        output.status.success(),
        "loadtest {all:?} failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let text = std::fs::read_to_string(&json_path).expect("--json wrote its file");
    let json = serde_json::from_str(&text).expect("--json is valid JSON");
    Run { output, json }
}

/// The target directory of this build (`target/debug` for `target/debug/deps/NAME-...`).
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let deps = exe.parent().expect("deps dir");
    deps.parent().expect("profile dir").to_path_buf()
}

/// zoo, fresh from this workspace, built for this test's profile (`ZOO_BIN` names another).
pub fn zoo() -> PathBuf {
    if let Some(path) = std::env::var_os("ZOO_BIN") {
        return PathBuf::from(path);
    }
    let dir = profile_dir();
    let profile = dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("debug")
        .to_string();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--quiet", "-p", "servers", "--bin", "zoo"]);
    match profile.as_str() {
        "debug" => {}
        "release" => {
            cmd.arg("--release");
        }
        other => {
            cmd.args(["--profile", other]);
        }
    }
    let status = cmd.status().expect("run cargo build -p servers");
    assert!(status.success(), "cargo build -p servers --bin zoo failed");
    let zoo = dir.join("zoo");
    assert!(zoo.is_file(), "{} was not built", zoo.display());
    zoo
}
