//! `poll`: the hand-written reactor (see `reactor`) waiting in `poll(2)`.
//!
//! The same event loop as `select` (non-blocking sockets, one loop per `--threads`, a timer heap
//! for deadlines and `/sleep`, rayon answers through an eventfd), with an array of `pollfd` in place
//! of the bitmaps: no `FD_SETSIZE` ceiling, so it holds ten thousand connections. What it keeps from
//! select is the cost per wait: the whole array goes into the kernel and back and is polled entry by
//! entry, ready or not, so with n connections open each wait costs O(n) even when one is active;
//! ten thousand idle keep-alive connections make every request pay for them. Like every event
//! loop, a handler that blocks (`/block`) stalls its whole loop. It mirrors Python's
//! `selectors.PollSelector` and Twisted's `pollreactor`. Over `--max-connections` a new connection
//! gets 503 and is closed.

use crate::reactor::{self, backend_poll::Poll};
use crate::server::Ctx;
use std::io;
use std::net::TcpListener;
use std::sync::Arc;

/// Serves until a graceful stop, then drains.
pub fn run(ctx: Arc<Ctx>, listener: TcpListener) -> io::Result<()> {
    reactor::run::<Poll>(ctx, listener)
}
