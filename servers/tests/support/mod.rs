//! Test support: start the real `zoo` binary on `127.0.0.1:0`, read the address it prints, and talk
//! to it over raw sockets. No fixed ports, no sleeps to wait for readiness.

#![allow(dead_code)] // each test binary uses its own part of the support module

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

/// Why a model could not start (io_uring refused by the kernel, for one).
pub struct Unavailable(pub String);

impl Server {
    /// Starts `zoo --model=MODEL` with `args`; `Err` when it exits before its ready line.
    pub fn try_start(model: &str, args: &[&str]) -> Result<Server, Unavailable> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_zoo"))
            .arg(format!("--model={model}"))
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn zoo");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let ready = lines.next().and_then(Result::ok);
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let Some(line) = ready.filter(|l| l.contains("listening on http://")) else {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            let _ = child.wait();
            return Err(Unavailable(err.trim().to_string()));
        };
        let stderr = child.stderr.take().expect("piped stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[zoo] {line}");
            }
        });
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no address in ready line: {line}"));
        Ok(Server {
            child,
            addr,
            model: model.to_string(),
        })
    }

    /// Starts the model, or returns `None` after printing why it is skipped.
    pub fn start(model: &str, args: &[&str]) -> Option<Server> {
        match Server::try_start(model, args) {
            Ok(s) => Some(s),
            Err(Unavailable(why)) => {
                eprintln!("skipped: model {model} is not available here: {why}");
                None
            }
        }
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
    let mut failed = Vec::new();
    for model in models() {
        let Some(server) = Server::start(&model, args) else {
            continue;
        };
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&server)));
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
