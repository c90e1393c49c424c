//! The floor of a thread per connection: the least such a server can do per request, measured
//! beside `zoo --model=thread` by `make bench-floor` (servers/bench-floor.sh).
//!
//! Each accepted connection gets a thread (with the stack `thread` reserves) that reads, counts
//! the request ends (`\r\n\r\n`) in what it read, and writes one fixed answer per end, blocking in
//! both. There is no parsing, no routing, no deadline, no metrics and no graceful stop, so it is
//! not an HTTP server: it is what a blocking thread per connection costs before any of that, the
//! read, the write and the switch to a woken thread. A request end split across two reads is
//! missed; the benchmark's small GETs arrive whole.
//!
//! ```text
//! cargo run --release -p servers --example thread_floor -- 127.0.0.1:9100
//! ```

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};

/// The answer to every request: the bytes `zoo` answers to `/`, with a fixed date.
const ANSWER: &[u8] = b"HTTP/1.1 200 OK\r\nServer: zoo\r\nDate: Thu, 01 Jan 2026 00:00:00 GMT\r\n\
    Content-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!";

/// The stack reserved for each connection's thread, as `zoo --model=thread` reserves.
const STACK_SIZE: usize = 256 * 1024;

fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9100".into());
    let listener = match TcpListener::bind(&addr) {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("thread_floor: cannot listen on {addr}: {e}");
            std::process::exit(1);
        }
    };
    println!("thread_floor: listening on {addr}");
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let spawned = std::thread::Builder::new()
            .stack_size(STACK_SIZE)
            .spawn(move || serve(stream));
        if let Err(e) = spawned {
            eprintln!("thread_floor: cannot start a thread: {e}");
        }
    }
}

/// Answers every request end read from `stream` until the peer closes or an error.
fn serve(mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let mut buf = [0u8; 4096];
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let ends = buf[..n].windows(4).filter(|w| w == b"\r\n\r\n").count();
        for _ in 0..ends {
            if stream.write_all(ANSWER).is_err() {
                return;
            }
        }
    }
}
