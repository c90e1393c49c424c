//! The blocking accept loop shared by the models that accept on one thread and hand each
//! connection away (thread, fork): admission (the limit, shedding and back-off of
//! [`crate::admission`]) called the blocking way, and the graceful stop.

use crate::admission::{AcceptFailed, Backoff, ConnGuard};
use crate::blocking::wait_any;
use crate::server::Ctx;
use crate::shutdown;
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};

/// Accepts until a graceful stop is asked for, handing each connection under the limit to
/// `serve` with its guard. A connection over `--max-connections` gets a 503 and is closed at once.
pub fn accept_loop(ctx: &Ctx, listener: &TcpListener, mut serve: impl FnMut(TcpStream, ConnGuard)) {
    accept_loop_waking(ctx, listener, None, |event| {
        if let Accepted::Conn(stream, guard) = event {
            serve(stream, guard);
        }
    });
}

/// What [`accept_loop_waking`] hands its caller.
pub enum Accepted {
    /// A connection under the limit, to serve, and the guard that counts it open.
    Conn(TcpStream, ConnGuard),
    /// The `wake` descriptor is readable: the caller drains it (or the loop spins).
    Woken,
}

/// [`accept_loop`] that also wakes whenever `wake` becomes readable, before it checks the limit
/// (the fork model hears SIGCHLD there and reaps, so the count of live children is fresh).
pub fn accept_loop_waking(
    ctx: &Ctx,
    listener: &TcpListener,
    wake: Option<RawFd>,
    mut on: impl FnMut(Accepted),
) {
    let stop = shutdown::get();
    let mut backoff = Backoff::default();
    while !stop.requested() {
        let fds = [listener.as_raw_fd(), stop.fd(), wake.unwrap_or(-1)];
        let [incoming, stopped, woken] = match wait_any(fds, None) {
            Ok(ready) => ready,
            Err(e) => {
                eprintln!("zoo: poll on the listener failed: {e}");
                break;
            }
        };
        if woken {
            on(Accepted::Woken);
        }
        if stopped {
            break;
        }
        if !incoming {
            continue;
        }
        match listener.accept() {
            Ok((stream, _)) => {
                backoff.succeeded();
                if let Some(guard) = ctx.admission.admit(&stream) {
                    on(Accepted::Conn(stream, guard));
                }
            }
            Err(e) => {
                // Out of descriptors: the pending clients stay in the backlog meanwhile.
                if let AcceptFailed::Pause(pause) = backoff.on_error(&e) {
                    std::thread::sleep(pause);
                }
            }
        }
    }
}
