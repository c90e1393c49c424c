//! `thread`: a new OS thread per connection, blocking IO.
//!
//! The simplest model there is, and the one most code is written for: each connection's code reads
//! top to bottom, blocks where it waits, and cannot stall any other connection. The costs are a
//! thread creation per connection (tens of microseconds, visible under churn), a stack per
//! connection (reserved virtual memory; the resident part is small, 256 KiB reserved here), and a
//! context switch at every wait, which is what caps it when thousands of connections are busy at
//! once. A connection's thread blocks in a plain read, with no timeout: one reaper thread keeps
//! every connection's deadlines (header, body, keep-alive) and the graceful stop, by shutting the
//! input of a read past its deadline (or, on a stop, of an idle one), so a busy keep-alive request
//! costs a read and a write, and nothing else (see [`crate::blocking`]). What it cannot shed is
//! the switch: every request wakes a sleeping thread and switches to it, where an event loop kept
//! busy neither sleeps nor switches. What that costs depends on the machine, and most on a
//! virtual one (`loadtest compare` measures the price of such a hand-off before its cells, and
//! its anatomy reading puts it on this model's switches; `make bench-floor` runs this model beside
//! the least a thread per connection can do, `servers/examples/thread_floor.rs`). It breaks down
//! at very many concurrent connections (thread limits, scheduler load) rather than at slow ones: a
//! slow client only costs its own thread. It mirrors Python's `socketserver.ThreadingMixIn` and classic
//! one-thread-per-client servers. Over `--max-connections` a new connection gets 503 and is
//! closed.

use crate::acceptor::accept_loop;
use crate::blocking::{reap, reaper_tick, serve_reaped, Registry};
use crate::server::Ctx;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Instant;

/// Stack reserved for each connection's thread: the service needs little, and a small stack keeps
/// ten thousand threads within reason.
const STACK_SIZE: usize = 256 * 1024;

/// Serves until a graceful stop, then drains.
pub fn run(ctx: Arc<Ctx>, listener: TcpListener) {
    let registry = Arc::new(Registry::new());
    {
        let registry = registry.clone();
        let tick = reaper_tick(&ctx.limits);
        let spawned = std::thread::Builder::new()
            .name("reaper".into())
            .spawn(move || reap(&registry, tick, || {}));
        if let Err(e) = spawned {
            // Without it no deadline would be kept: serve nothing rather than hang on to clients.
            eprintln!("zoo: cannot start the reaper thread: {e}");
            return;
        }
    }
    accept_loop(&ctx, &listener, |stream, guard| {
        let ctx = ctx.clone();
        let registry = registry.clone();
        let spawned = std::thread::Builder::new()
            .name("conn".into())
            .stack_size(STACK_SIZE)
            .spawn(move || {
                let _guard = guard;
                serve_reaped(&ctx, stream, &registry);
            });
        if let Err(e) = spawned {
            // The closure (stream and guard with it) is dropped: the client sees a close.
            eprintln!("zoo: cannot start a thread: {e}");
        }
    });
    drop(listener);
    ctx.admission.wait_drained(Instant::now() + ctx.grace());
}
