//! The model in process, over real sockets. Each test skips, saying why, where the kernel refuses
//! io_uring. (The suite shared by every model lives in `servers/tests/`.)

use super::{check_available, run};
use crate::cli::Options;
use crate::server::{bind, Ctx};
use clap::Parser;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

/// Starts a server with `args` on a free port; `None` (after saying why) without io_uring. The
/// server runs until the test process ends.
fn start(args: &[&str]) -> Option<SocketAddr> {
    if let Err(why) = check_available() {
        eprintln!("skipping the uring test: {why}");
        return None;
    }
    let mut argv = vec!["zoo", "--model=uring", "--listen=127.0.0.1:0"];
    argv.extend_from_slice(args);
    let opts = Options::parse_from(argv);
    let listener = bind(opts.listen).expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("a bound address");
    let ctx = Arc::new(Ctx::new(opts, Box::leak(Box::default()), false));
    std::thread::spawn(move || run(ctx, listener));
    Some(addr)
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("set a read timeout");
    stream
}

/// Reads until the server closes the connection.
fn read_to_close(mut stream: TcpStream) -> String {
    let mut got = Vec::new();
    stream.read_to_end(&mut got).expect("read until close");
    String::from_utf8_lossy(&got).into_owned()
}

#[test]
fn answers_pipelined_requests_in_order_across_a_delay() {
    let Some(addr) = start(&["--threads=2"]) else {
        return;
    };
    // Several connections, so both rings get some.
    for _ in 0..4 {
        let mut stream = connect(addr);
        stream
            .write_all(
                b"GET / HTTP/1.1\r\nHost: x\r\n\r\n\
                  GET /sleep?ms=30 HTTP/1.1\r\nHost: x\r\n\r\n\
                  POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nlast!",
            )
            .expect("send");
        let got = read_to_close(stream);
        assert_eq!(got.matches("HTTP/1.1 200 OK").count(), 3, "{got}");
        let order = ["Hello, World!", "slept", "last!"].map(|s| got.find(s));
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{got}");
    }
}

#[test]
fn answers_a_pipelined_flood_sent_while_an_answer_cannot_leave() {
    let Some(addr) = start(&["--threads=1"]) else {
        return;
    };
    // A megabyte answer the client does not read yet, so its send stays in flight while the
    // rest arrives: more requests than the recv may park, which makes it stop and start again.
    let mut stream = connect(addr);
    let mut flood = b"GET /stream?chunks=1000&size=1000 HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
    for _ in 0..2000 {
        flood.extend_from_slice(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    }
    flood.extend_from_slice(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    stream.write_all(&flood).expect("send");
    std::thread::sleep(Duration::from_millis(300));
    let got = read_to_close(stream);
    assert_eq!(got.matches("HTTP/1.1 200 OK").count(), 2002);
    assert_eq!(got.matches("Hello, World!").count(), 2001);
}

#[test]
fn closes_a_client_that_stops_reading_after_the_body_timeout() {
    let Some(addr) = start(&["--body-timeout=0.3"]) else {
        return;
    };
    let mut stream = connect(addr);
    stream
        .write_all(b"GET /stream?chunks=10000&size=1000 HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("send");
    std::thread::sleep(Duration::from_secs(1));
    // What the kernels buffered arrives, then the end: the server gave up on the rest.
    let mut got = Vec::new();
    match stream.read_to_end(&mut got) {
        Ok(_) => {}
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
    }
    assert!(got.len() < 10_000_000, "all {} bytes came", got.len());
}

#[test]
fn answers_408_to_a_head_that_stops_arriving() {
    let Some(addr) = start(&["--header-timeout=0.2"]) else {
        return;
    };
    let mut stream = connect(addr);
    stream.write_all(b"GET / HTTP/1.1\r\nHo").expect("send");
    let got = read_to_close(stream);
    assert!(got.starts_with("HTTP/1.1 408 "), "{got}");
}

#[test]
fn closes_an_idle_keep_alive_connection_quietly() {
    let Some(addr) = start(&["--keep-alive-timeout=0.2"]) else {
        return;
    };
    let mut stream = connect(addr);
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("send");
    let got = read_to_close(stream);
    assert_eq!(got.matches("HTTP/1.1").count(), 1, "{got}");
}

#[test]
fn sheds_connections_over_the_limit_with_503() {
    let Some(addr) = start(&["--max-connections=1", "--threads=1"]) else {
        return;
    };
    let mut first = connect(addr);
    first
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("send");
    let mut head = [0u8; 12];
    first.read_exact(&mut head).expect("the first is served");
    assert_eq!(&head, b"HTTP/1.1 200");
    let got = read_to_close(connect(addr));
    assert!(got.starts_with("HTTP/1.1 503 "), "{got}");
}

#[test]
fn refused_io_uring_is_reported_plainly() {
    // Refuse io_uring_setup on one thread only, with a seccomp filter as Docker's profile does.
    let got = std::thread::spawn(|| {
        refuse_io_uring_setup();
        check_available()
    })
    .join()
    .expect("the probe does not panic");
    let why = got.expect_err("io_uring_setup is refused on that thread");
    assert_eq!(
        why,
        "io_uring is not available here (io_uring_setup: EPERM Operation not permitted); \
         try --model=epoll"
    );
}

/// Installs, on the calling thread only, a seccomp filter that fails io_uring_setup with EPERM.
fn refuse_io_uring_setup() {
    const IO_URING_SETUP: u32 = 425; // the same number on every architecture
    let stmt = |code: u32, k: u32| libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    };
    let mut filter = [
        stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0), // the syscall number
        libc::sock_filter {
            code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
            jt: 0,
            jf: 1,
            k: IO_URING_SETUP,
        },
        stmt(
            libc::BPF_RET | libc::BPF_K,
            libc::SECCOMP_RET_ERRNO | libc::EPERM as u32,
        ),
        stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW),
    ];
    let prog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_mut_ptr(),
    };
    // SAFETY: prctl reads the filter program during the call only; without TSYNC the filter
    // applies to this thread alone, which ends with the test.
    unsafe {
        assert_eq!(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
        assert_eq!(
            libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &prog as *const libc::sock_fprog
            ),
            0
        );
    }
}
