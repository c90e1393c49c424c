//! `thread`: a new OS thread per connection, blocking IO.
//!
//! The simplest model there is, and the one most code is written for: each connection's code reads
//! top to bottom, blocks where it waits, and cannot stall any other connection. The costs are a
//! thread creation per connection (tens of microseconds, visible under churn), a stack per
//! connection (reserved virtual memory; the resident part is small, 256 KiB reserved here), and a
//! context switch at every wait, which is what caps it when thousands of connections are busy at
//! once. It breaks down at very many concurrent connections (thread limits, scheduler load) rather
//! than at slow ones: a slow client only costs its own thread. It mirrors Python's
//! `socketserver.ThreadingMixIn` and classic one-thread-per-client servers. Over
//! `--max-connections` a new connection gets 503 and is closed.

use crate::acceptor::accept_loop;
use crate::blocking::serve;
use crate::server::Ctx;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Instant;

/// Stack reserved for each connection's thread: the service needs little, and a small stack keeps
/// ten thousand threads within reason.
const STACK_SIZE: usize = 256 * 1024;

/// Serves until a graceful stop, then drains.
pub fn run(ctx: Arc<Ctx>, listener: TcpListener) {
    accept_loop(&ctx, &listener, |stream, guard| {
        let ctx = ctx.clone();
        let spawned = std::thread::Builder::new()
            .name("conn".into())
            .stack_size(STACK_SIZE)
            .spawn(move || {
                let _guard = guard;
                serve(&ctx, stream);
            });
        if let Err(e) = spawned {
            // The closure (stream and guard with it) is dropped: the client sees a close.
            eprintln!("zoo: cannot start a thread: {e}");
        }
    });
    drop(listener);
    ctx.admission.wait_drained(Instant::now() + ctx.grace());
}
