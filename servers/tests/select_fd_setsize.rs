//! `zoo --model=select` and FD_SETSIZE: a connection whose descriptor cannot go into an `fd_set`
//! is refused with a 503 and closed, the connections already open keep being served, and once
//! some close, new ones are served again.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const FD_SETSIZE: usize = 1024;

/// Raises this process's soft descriptor limit as far as the hard one allows; returns the result.
fn raise_nofile() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write only the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 0;
        }
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
    }
    lim.rlim_cur
}

/// A running zoo, killed when dropped.
struct Zoo {
    child: Child,
    addr: String,
}

impl Drop for Zoo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_zoo(args: &[&str]) -> Zoo {
    let mut child = Command::new(env!("CARGO_BIN_EXE_zoo"))
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("zoo starts");
    let mut line = String::new();
    let stdout = child.stdout.take().expect("stdout is piped");
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("zoo prints its ready line");
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();
    Zoo { child, addr }
}

/// Sends `GET /` and reads the response; returns its status and whether the server then closed.
fn get(stream: &mut TcpStream) -> (u16, bool) {
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: zoo\r\n\r\n")
        .expect("request written");
    let mut data = Vec::new();
    let mut chunk = [0u8; 1024];
    let head_end = loop {
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).expect("response read");
        assert!(n > 0, "closed before a response: {data:?}");
        data.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&data[..head_end]).to_string();
    let status: u16 = head[9..12].parse().expect("a status code");
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .expect("a Content-Length");
    while data.len() < head_end + length {
        let n = stream.read(&mut chunk).expect("body read");
        assert!(n > 0, "closed inside the body");
        data.extend_from_slice(&chunk[..n]);
    }
    let closed = head.to_ascii_lowercase().contains("connection: close")
        && matches!(stream.read(&mut chunk), Ok(0) | Err(_));
    (status, closed)
}

#[test]
fn select_refuses_connection_beyond_fd_setsize_and_serves_the_rest() {
    let limit = raise_nofile();
    if limit < FD_SETSIZE as u64 + 128 {
        eprintln!("skipped: RLIMIT_NOFILE is {limit}, too low to open FD_SETSIZE + 1 connections");
        return;
    }
    let zoo = start_zoo(&[
        "--model=select",
        "--max-connections=5000",
        "--keep-alive-timeout=300",
        "--header-timeout=300",
    ]);
    let connect = || {
        let s = TcpStream::connect(&zoo.addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s
    };

    let mut served = Vec::new();
    let mut first_refused = None;
    for i in 0..FD_SETSIZE + 32 {
        let mut s = connect();
        match get(&mut s) {
            (200, _) => {
                assert!(
                    first_refused.is_none(),
                    "connection {i} served after a refusal"
                );
                served.push(s);
            }
            (503, closed) => {
                assert!(
                    closed,
                    "connection {i}: the refusal must close the connection"
                );
                first_refused.get_or_insert(i);
            }
            (status, _) => panic!("connection {i}: unexpected status {status}"),
        }
    }
    // Connection number FD_SETSIZE + 1 (index FD_SETSIZE) is refused at the latest; the server's
    // own descriptors (stdio, listener, shutdown pipe, wake-up descriptor) bring it a few earlier.
    let refused = first_refused.expect("no connection was refused");
    eprintln!(
        "select: connections 1..={refused} served, connection {} refused with 503 (FD_SETSIZE {FD_SETSIZE})",
        refused + 1
    );
    assert!(
        (FD_SETSIZE - 16..=FD_SETSIZE).contains(&refused),
        "first refusal at connection index {refused}"
    );

    // Every connection opened before keeps being served.
    for (i, s) in served.iter_mut().enumerate() {
        assert_eq!(get(s).0, 200, "connection {i} is no longer served");
    }

    // Closing some frees low descriptors: new connections are served again once the server has
    // seen the closes.
    served.drain(..8);
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, _) = get(&mut connect());
        if status == 200 {
            break;
        }
        assert!(
            Instant::now() < until,
            "no connection served after others closed"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}
