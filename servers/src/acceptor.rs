//! The blocking accept loop shared by the models that accept on one thread and hand each
//! connection away (thread, fork): load shedding over `--max-connections`, back-off when the
//! process is out of descriptors, and the graceful stop.

use crate::blocking::wait_any;
use crate::server::{is_resource_error, shed, Ctx};
use crate::shutdown;
use common::stats::Counters;
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

/// Counts a connection open for as long as it lives.
pub struct ConnGuard(&'static Counters);

impl ConnGuard {
    /// Counts a new connection.
    pub fn new(counters: &'static Counters) -> ConnGuard {
        counters.connection_opened();
        ConnGuard(counters)
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.0.connection_closed();
    }
}

/// Accepts until a graceful stop is asked for, handing each connection under the limit to
/// `serve`. A connection over `--max-connections` gets a 503 and is closed at once.
pub fn accept_loop(ctx: &Ctx, listener: &TcpListener, mut serve: impl FnMut(TcpStream)) {
    accept_loop_waking(ctx, listener, None, |event| {
        if let Accepted::Conn(stream) = event {
            serve(stream);
        }
    });
}

/// What [`accept_loop_waking`] hands its caller.
pub enum Accepted {
    /// A connection under the limit, to serve.
    Conn(TcpStream),
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
    let mut backoff = Duration::from_millis(10);
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
            Ok((mut stream, _)) => {
                backoff = Duration::from_millis(10);
                let active = ctx.counters.connections_active.load(Relaxed);
                if active >= i64::from(ctx.opts.max_connections) {
                    shed(&mut stream, ctx.counters);
                    continue;
                }
                on(Accepted::Conn(stream));
            }
            Err(e) if is_resource_error(&e) => {
                // Out of descriptors: accepting again at once would spin. Wait for connections
                // to close; the pending ones stay in the backlog meanwhile.
                eprintln!("zoo: accept: {e}; backing off {backoff:?}");
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
            // ECONNABORTED and friends: the peer gave up before we accepted it.
            Err(_) => {}
        }
    }
}

/// After the accept loop ends: waits for open connections to finish, up to the grace period.
pub fn wait_for_drain(ctx: &Ctx) {
    let until = Instant::now() + ctx.grace();
    while ctx.counters.connections_active.load(Relaxed) > 0 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(5));
    }
}
