//! `nonblocking`: non-blocking sockets polled in a loop with no multiplexer (IO model 2).
//!
//! The reactor's event loop (see `reactor`) with the kernel's readiness interface taken away: on
//! every pass it tries to accept, and tries to read (or write) every connection, and believes only
//! the answer: data, or `EAGAIN`. It is correct, since the loop treats readiness as a hint anyway,
//! and it shows what a multiplexer is for. The cost is a syscall per connection per pass whether or
//! not anything happened: with n connections, finding the one with a request takes n syscalls, and
//! a server with nothing to do still spins. To keep it from eating a whole CPU when idle and from
//! starving a load generator on the same CPU, a pass that found nothing is followed by a 1 ms nap
//! (`reactor::backend_scan::IDLE_NAP`): that adds up to 1 ms of latency to the first request after a quiet
//! spell. At ten thousand idle connections a pass takes about 3 ms here: every request waits for
//! one, and the idle server still burns three quarters of a CPU. Busy, it never naps and burns its
//! CPU by design. No Python server works this
//! way; it is the `sock.setblocking(False)` loop catching `BlockingIOError` from tutorials. Over
//! `--max-connections` a new connection gets 503 and is closed.

use crate::reactor::{self, backend_scan::Scan};
use crate::server::Ctx;
use std::io;
use std::net::TcpListener;
use std::sync::Arc;

/// Serves until a graceful stop, then drains.
pub fn run(ctx: Arc<Ctx>, listener: TcpListener) -> io::Result<()> {
    reactor::run::<Scan>(ctx, listener)
}
