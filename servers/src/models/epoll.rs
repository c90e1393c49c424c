//! `epoll`: the hand-written reactor (see `reactor`) waiting in `epoll_wait(2)`, level-triggered.
//!
//! The same event loop as `select` and `poll` (non-blocking sockets, `--threads N` loops with loop 0
//! dealing connections round-robin, like nginx workers; a timer heap for deadlines and `/sleep`;
//! rayon answers through an eventfd). The interest list lives in the kernel, so registering or
//! changing interest is a syscall (`epoll_ctl`), but a wait costs O(ready), not O(connections): ten
//! thousand idle keep-alive connections cost their memory (a few hundred bytes each, with their
//! buffers given back while idle) and nothing per wait. Level-triggered rather than edge-triggered:
//! the loop drains to `WouldBlock` either way, a plain request changes no interest so both modes
//! make the same syscalls for it, and level-triggered keeps select, poll and epoll on identical
//! semantics (the reactor module says more). Where it breaks: one slow handler (`/block`, inline
//! `/cpu`) stalls every connection of its loop, and a single loop uses one CPU. It mirrors asyncio's
//! default loop on Linux (`selectors.EpollSelector`), Tornado's IOLoop and nginx's event loop. Over
//! `--max-connections` a new connection gets 503 and is closed.

use crate::reactor::{self, backend_epoll::Epoll};
use crate::server::Ctx;
use std::io;
use std::net::TcpListener;
use std::sync::Arc;

/// Serves until a graceful stop, then drains.
pub fn run(ctx: Arc<Ctx>, listener: TcpListener) -> io::Result<()> {
    reactor::run::<Epoll>(ctx, listener)
}
