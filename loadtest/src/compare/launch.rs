//! Starting and stopping the servers compare measures: `zoo --model=M` on `127.0.0.1:0` (its
//! ready line names the address it bound), the Python originals the same way (`run.py`, with
//! the virtualenv's python), and nginx as the baseline or as the reverse proxy in
//! front of a target (`--behind nginx`, its site in [`proxy`](crate::compare::proxy)).
//!
//! Each server runs in a process group of its own, on the server CPUs, with its stderr in a log
//! file of the results directory (a model that fails to start is reported with those lines).
//! Stopping is SIGTERM and a wait for the graceful exit; a server still there after its grace
//! gets SIGKILL, its whole group with it.

use crate::compare::twins::{self, TwinSpec};
use crate::sys::{self, ChildSetup};
use common::ready::ReadyLine;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a server may take to say it is ready.
const READY_TIMEOUT: Duration = Duration::from_secs(15);
/// zoo's own grace on SIGTERM (`--grace`), and the margin compare gives it on top.
pub const GRACE: Duration = Duration::from_secs(5);
const GRACE_MARGIN: Duration = Duration::from_secs(5);
/// Lines of a failed server's stderr quoted in the report.
const STDERR_LINES: usize = 12;

/// A model as `--models` names it: `tokio` or `tokio:threads=1` (the extra settings become
/// `--threads 1`; a bare key becomes a flag).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelSpec {
    /// The name in the report: the spec as written.
    pub name: String,
    /// The model passed to `--model`.
    pub model: String,
    /// The extra command-line arguments.
    pub args: Vec<String>,
}

impl ModelSpec {
    /// Parses `model[:key=value...]`.
    pub fn parse(spec: &str) -> Result<ModelSpec, String> {
        let mut parts = spec.split(':');
        let model = parts.next().unwrap_or_default().trim();
        if model.is_empty()
            || !model
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(format!(
                "'{spec}': a model spec is NAME or NAME:key=value:..."
            ));
        }
        let mut args = Vec::new();
        for setting in parts {
            let (key, value) = match setting.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (setting, None),
            };
            let valid_key = !key.is_empty()
                && key
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !valid_key || value.is_some_and(str::is_empty) {
                return Err(format!(
                    "'{spec}': '{setting}' is not key=value (e.g. tokio:threads=1)"
                ));
            }
            args.push(format!("--{}", key.replace('_', "-")));
            if let Some(v) = value {
                args.push(v.to_string());
            }
        }
        Ok(ModelSpec {
            name: spec.to_string(),
            model: model.to_string(),
            args,
        })
    }
}

/// A server compare started.
pub struct Server {
    child: Option<Child>,
    /// Its pid: the root of the process tree that is sampled.
    pub pid: u32,
    /// Where it listens.
    pub addr: SocketAddr,
    /// The command line, for the report.
    pub command: Vec<String>,
    /// What zoo added to its ready line (e.g. that state is per process), if anything.
    pub note: String,
    log: PathBuf,
    /// Keeps nginx's temp directory (configuration, error log) until the server is stopped.
    _dir: Option<TempDir>,
}

/// How a server ended.
#[derive(Debug, Clone)]
pub struct Stopped {
    /// It exited on SIGTERM within its grace, with status 0.
    pub clean: bool,
    /// What happened, in words.
    pub how: String,
}

impl Server {
    /// Starts `zoo --model=M --listen 127.0.0.1:0` plus `extra` and waits for its ready line.
    pub fn start_zoo(
        zoo: &Path,
        spec: &ModelSpec,
        extra: &[String],
        cpus: Option<&[usize]>,
        log: &Path,
    ) -> Result<Server, String> {
        let mut args = vec![
            format!("--model={}", spec.model),
            "--listen".to_string(),
            "127.0.0.1:0".to_string(),
            "--grace".to_string(),
            GRACE.as_secs().to_string(),
        ];
        args.extend(spec.args.iter().cloned());
        args.extend(extra.iter().cloned());
        let mut cmd = Command::new(zoo);
        cmd.args(&args);
        let mut command = vec![zoo.display().to_string()];
        command.extend(args);
        let ready =
            |line: &str| ReadyLine::parse(line).map(|r| (r.addr, r.note.trim().to_string()));
        Server::start_with_ready_line(cmd, command, cpus, log, &ready)
    }

    /// Starts a Python original (`peers/python/run.py NAME --listen 127.0.0.1:0 ...`) with the
    /// virtualenv's python, from its folder: the same path as zoo's, its own ready line read,
    /// then `/healthz` asked, since the twin's framework may print before it answers.
    pub fn start_twin(
        spec: &TwinSpec,
        extra: &[String],
        cpus: Option<&[usize]>,
        log: &Path,
    ) -> Result<Server, String> {
        let args = spec.args(extra);
        let mut cmd = Command::new(&spec.python);
        cmd.args(&args).current_dir(&spec.dir);
        let mut command = vec![spec.python.display().to_string()];
        command.extend(args);
        let name = spec.twin.name.clone();
        let ready = move |line: &str| twins::ready_addr(line, &name).map(|a| (a, String::new()));
        let mut server = Server::start_with_ready_line(cmd, command, cpus, log, &ready)?;
        let addr = server.addr;
        match crate::compare::probe::get(addr, &addr.to_string(), "/healthz", READY_TIMEOUT) {
            Ok(answer) if answer.status == 200 => Ok(server),
            Ok(answer) => {
                server.kill();
                Err(server.failure(&format!("answered {} to /healthz", answer.status)))
            }
            Err(e) => {
                server.kill();
                Err(server.failure(&format!("did not answer /healthz: {e}")))
            }
        }
    }

    /// Spawns `cmd` in its own group on `cpus`, its stderr in `log`, and waits for the first
    /// line of its stdout, which `ready` must read as the bound address (and a note).
    fn start_with_ready_line(
        mut cmd: Command,
        command: Vec<String>,
        cpus: Option<&[usize]>,
        log: &Path,
        ready: &dyn Fn(&str) -> Option<(SocketAddr, String)>,
    ) -> Result<Server, String> {
        let setup = ChildSetup {
            cpus: cpus.map(<[usize]>::to_vec),
            keep_fd: None,
        };
        let mut child = spawn(&mut cmd, &setup, log, true)?;
        let pid = child.id();
        let Some(stdout) = child.stdout.take() else {
            return Err("no stdout pipe".to_string());
        };
        // A thread reads the ready line, then keeps draining stdout so the server never blocks
        // on it.
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let first = lines.next().and_then(Result::ok);
            let _ = tx.send(first);
            for _ in lines {}
        });
        let mut server = Server {
            child: Some(child),
            pid,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            command,
            note: String::new(),
            log: log.to_path_buf(),
            _dir: None,
        };
        let line = match rx.recv_timeout(READY_TIMEOUT) {
            Ok(Some(line)) => line,
            Ok(None) => {
                let status = server.reap(Duration::from_secs(2));
                return Err(server.failure(&format!("exited before it was ready ({status})")));
            }
            Err(_) => {
                server.kill();
                return Err(server.failure(&format!(
                    "printed no ready line within {}s",
                    READY_TIMEOUT.as_secs()
                )));
            }
        };
        match ready(&line) {
            Some((addr, note)) => {
                server.addr = addr;
                server.note = note;
                Ok(server)
            }
            None => {
                server.kill();
                Err(server.failure(&format!("unexpected ready line: {line:?}")))
            }
        }
    }

    /// Starts nginx with one worker, serving `site` (the baseline's own plaintext and json
    /// routes, or a reverse proxy in front of another server), on a socket bound here and
    /// inherited (nginx adopts the sockets named in its `NGINX`
    /// environment variable): no port is guessed, and connections wait in the backlog until
    /// nginx accepts them, so the first answer means it is ready.
    pub fn start_nginx(
        nginx: &Path,
        site: &NginxSite,
        cpus: Option<&[usize]>,
        log: &Path,
    ) -> Result<Server, String> {
        let dir = TempDir::new("nginx")?;
        let listener =
            TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind 127.0.0.1:0: {e}"))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let conf = dir.0.join("nginx.conf");
        std::fs::write(&conf, nginx_config(&dir.0, addr, site))
            .map_err(|e| format!("write {}: {e}", conf.display()))?;
        let fd = listener.as_raw_fd();
        let args = vec![
            "-p".to_string(),
            dir.0.display().to_string(),
            "-c".to_string(),
            conf.display().to_string(),
            "-e".to_string(),
            "stderr".to_string(),
        ];
        let mut cmd = Command::new(nginx);
        cmd.args(&args).env("NGINX", format!("{fd};"));
        let mut command = vec![nginx.display().to_string()];
        command.extend(args);
        let setup = ChildSetup {
            cpus: cpus.map(<[usize]>::to_vec),
            keep_fd: Some(fd),
        };
        let child = spawn(&mut cmd, &setup, log, false)?;
        drop(listener);
        let pid = child.id();
        let mut server = Server {
            child: Some(child),
            pid,
            addr,
            command,
            note: String::new(),
            log: log.to_path_buf(),
            _dir: Some(dir),
        };
        match crate::compare::probe::get(addr, &addr.to_string(), "/healthz", READY_TIMEOUT) {
            Ok(answer) if site.ready(answer.status) => Ok(server),
            Ok(answer) => {
                server.kill();
                Err(server.failure(&format!("answered {} to /healthz", answer.status)))
            }
            Err(e) => {
                server.kill();
                Err(server.failure(&format!("did not answer: {e}")))
            }
        }
    }

    /// Whether the server is still running (if not, it is reaped and the reason returned).
    pub fn exited(&mut self) -> Option<String> {
        let child = self.child.as_mut()?;
        match child.try_wait() {
            Ok(Some(status)) => {
                self.child = None;
                Some(self.failure(&format!("exited during the run ({status})")))
            }
            Ok(None) => None,
            Err(e) => Some(e.to_string()),
        }
    }

    /// SIGTERM, then a wait for the graceful exit; SIGKILL to the group after the grace.
    pub fn stop(mut self) -> Stopped {
        let Some(child) = self.child.as_ref() else {
            return Stopped {
                clean: false,
                how: "had already exited".to_string(),
            };
        };
        let started = Instant::now();
        if let Err(e) = sys::send_signal(child.id(), false, libc::SIGTERM) {
            return Stopped {
                clean: false,
                how: format!("SIGTERM failed: {e}"),
            };
        }
        let status = self.reap(GRACE + GRACE_MARGIN);
        let took = started.elapsed().as_secs_f64();
        Stopped {
            clean: status == "exit status: 0",
            how: format!("{status} {took:.2}s after SIGTERM"),
        }
    }

    /// Waits up to `limit` for the exit, killing the group after it; says how it ended.
    ///
    /// The exit is noticed without reaping (`WNOWAIT`): until the server is reaped its pid, and
    /// so its process group's id, cannot be reused, and a SIGKILL to the group can only reach
    /// what the server left behind (workers of a forking model whose master is gone).
    fn reap(&mut self, limit: Duration) -> String {
        let Some(mut child) = self.child.take() else {
            return "already reaped".to_string();
        };
        let until = Instant::now() + limit;
        let mut outcome = None;
        loop {
            match sys::has_exited(self.pid) {
                Ok(true) => break,
                Ok(false) if Instant::now() < until => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                Ok(false) => {
                    outcome = Some(format!("still running after {}s: killed", limit.as_secs()));
                    break;
                }
                Err(e) => {
                    outcome = Some(format!("wait failed: {e}"));
                    break;
                }
            }
        }
        let _ = sys::send_signal(self.pid, true, libc::SIGKILL);
        let status = child.wait();
        match (outcome, status) {
            (Some(outcome), _) => outcome,
            (None, Ok(status)) => status.to_string(),
            (None, Err(e)) => format!("wait failed: {e}"),
        }
    }

    /// SIGKILL to the whole group; the server is not reaped yet, so the group is still its own.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = sys::send_signal(self.pid, true, libc::SIGKILL);
            let _ = child.wait();
        }
    }

    /// `what`, followed by the last lines the server wrote to stderr.
    fn failure(&self, what: &str) -> String {
        let mut text = String::new();
        if let Ok(mut f) = File::open(&self.log) {
            let _ = f.read_to_string(&mut text);
        }
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        let tail = &lines[lines.len().saturating_sub(STDERR_LINES)..];
        if tail.is_empty() {
            what.to_string()
        } else {
            format!("{what}: {}", tail.join(" / "))
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Only reached when a run is torn down early (an error, a panic): no server may be
        // left behind.
        self.kill();
    }
}

fn spawn(cmd: &mut Command, setup: &ChildSetup, log: &Path, stdout: bool) -> Result<Child, String> {
    let err = File::create(log).map_err(|e| format!("create {}: {e}", log.display()))?;
    sys::prepare_child(cmd, setup).map_err(|e| format!("--server-cpus: {e}"))?;
    cmd.stdin(Stdio::null())
        .stdout(if stdout {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stderr(Stdio::from(err));
    cmd.spawn()
        .map_err(|e| format!("cannot run {}: {e}", cmd.get_program().to_string_lossy()))
}

/// What an nginx compare starts serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NginxSite {
    /// The baseline: the routes of the plaintext scenarios, answered by nginx itself.
    Baseline,
    /// A reverse proxy in front of the server at this address (`--behind nginx`).
    Proxy(SocketAddr),
}

impl NginxSite {
    /// Whether nginx's answer to `/healthz` means it serves: the baseline answers it itself;
    /// a proxy passes it on, and any answer but nginx's own "no upstream" ones means the
    /// upstream was reached (a server without the route answers 404 through it).
    fn ready(self, status: u16) -> bool {
        match self {
            NginxSite::Baseline => status == 200,
            NginxSite::Proxy(_) => !matches!(status, 502..=504),
        }
    }

    /// The `http` block's server (and upstream) lines.
    fn server_block(self, addr: SocketAddr) -> String {
        match self {
            NginxSite::Baseline => format!(
                r#"    server {{
        listen {addr};
        location = /json {{ default_type application/json; return 200 '{{"message":"Hello, World!"}}'; }}
        location = /healthz {{ default_type text/plain; return 200 "ok"; }}
        location / {{ default_type text/plain; return 200 "Hello, World!"; }}
    }}
"#
            ),
            NginxSite::Proxy(upstream) => crate::compare::proxy::server_block(addr, upstream),
        }
    }
}

/// The configuration of compare's nginx: one worker, no access log, the limits the scenarios
/// need (c10k's idle connections, slowloris' head timeout equal to zoo's 5 s), and the server
/// block of `site`.
fn nginx_config(dir: &Path, addr: SocketAddr, site: &NginxSite) -> String {
    let d = dir.display();
    let server = site.server_block(addr);
    format!(
        r#"daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile 20000;
pid {d}/nginx.pid;
error_log stderr warn;
events {{ worker_connections 16384; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    keepalive_requests 1000000000;
    keepalive_timeout 120s;
    client_header_timeout 5s;
    server_tokens off;
{server}}}
"#
    )
}

/// A directory of its own under the system temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(what: &str) -> Result<TempDir, String> {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir =
            std::env::temp_dir().join(format!("loadtest-{what}-{}-{stamp}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        Ok(TempDir(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_specs_become_arguments() {
        let spec = ModelSpec::parse("tokio:threads=1").expect("valid");
        assert_eq!(spec.model, "tokio");
        assert_eq!(spec.name, "tokio:threads=1");
        assert_eq!(spec.args, ["--threads", "1"]);
        let spec =
            ModelSpec::parse("pool:threads=4:max_connections=20000:access-log").expect("valid");
        assert_eq!(
            spec.args,
            [
                "--threads",
                "4",
                "--max-connections",
                "20000",
                "--access-log"
            ]
        );
        assert_eq!(ModelSpec::parse("thread").expect("valid").args.len(), 0);
        for bad in [
            "",
            ":threads=1",
            "pool:",
            "pool:threads=",
            "po ol",
            "pool:x y=1",
        ] {
            assert!(ModelSpec::parse(bad).is_err(), "{bad:?} must be refused");
        }
    }
}
