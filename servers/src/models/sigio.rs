//! `sigio`: signal-driven readiness (IO model 4) feeding the reactor's event loop.
//!
//! Every socket is set to raise a queued real-time signal on each change (`O_ASYNC`, `F_SETSIG`,
//! `F_SETOWN_EX` to its loop's thread); the signal is blocked and taken synchronously with
//! `sigtimedwait` and a `signalfd`, and `si_fd` names the socket (see `reactor::backend_sigio`). Readiness is
//! edge-triggered: a signal per change, so the loop drains every socket until `WouldBlock` and tries
//! IO after every change of its own. The costs: four syscalls to set up each connection, one
//! signal queued per readiness change (more than epoll's one report per wait), and interest that
//! cannot be turned off (unwanted signals still arrive and are dropped). Where it breaks: the
//! signal queue is bounded by `RLIMIT_SIGPENDING`; when it overflows the kernel sends plain SIGIO
//! and readiness is lost, so the loop rescans every connection, as nginx's `rtsig` event method did
//! before epoll replaced it (nginx dropped it in 1.9.13). The wake-up descriptor is a pipe, as an
//! eventfd cannot raise a signal. No Python server uses it (`signal.set_wakeup_fd` is the nearest
//! relative). Over `--max-connections` a new connection gets 503 and is closed.

use crate::reactor::{self, backend_sigio::SigIo};
use crate::server::Ctx;
use std::io;
use std::net::TcpListener;
use std::sync::Arc;

/// Serves until a graceful stop, then drains.
pub fn run(ctx: Arc<Ctx>, listener: TcpListener) -> io::Result<()> {
    reactor::run::<SigIo>(ctx, listener)
}
