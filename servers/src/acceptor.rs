//! The blocking accept loop shared by the models that accept on one thread and hand each
//! connection away (thread, fork): load shedding over `--max-connections`, back-off when the
//! process is out of descriptors, and the graceful stop.

use crate::blocking::{wait_readable, Woken};
use crate::server::{is_resource_error, shed, Ctx};
use crate::shutdown;
use common::stats::Counters;
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
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
    let stop = shutdown::get();
    let mut backoff = Duration::from_millis(10);
    while !stop.requested() {
        match wait_readable(listener.as_raw_fd(), None, Some(stop.fd())) {
            Ok(Woken::Readable) => {}
            Ok(_) => break,
            Err(e) => {
                eprintln!("zoo: poll on the listener failed: {e}");
                break;
            }
        }
        match listener.accept() {
            Ok((mut stream, _)) => {
                backoff = Duration::from_millis(10);
                let active = ctx.counters.connections_active.load(Relaxed);
                if active >= i64::from(ctx.opts.max_connections) {
                    shed(&mut stream, ctx.counters);
                    continue;
                }
                serve(stream);
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
