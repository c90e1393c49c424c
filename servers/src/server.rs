//! What every model shares: the service, the limits, the counters, binding the listener, the
//! answer to one request (panics caught, counted, logged).

use crate::admission::Admission;
use crate::cli::Options;
use common::handler::internal_error;
use common::ready::ReadyLine;
use common::service::{Service, ServiceConfig};
use common::stats::Counters;
use common::{Connection, Handler, Limits, Reply, Request, Response};
use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener};
use std::ops::{Deref, DerefMut};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant, SystemTime};

/// A [`Connection`] of this server: when it is dropped, however its driver ended it, a request
/// the protocol core refused on it (400, 408, 413, 431, 501, 505...) counts in its server's
/// `zoo_rejected_total`. The service never sees those requests, so no driver has to remember to
/// count them.
#[derive(Debug)]
pub struct Conn {
    conn: Connection,
    rejected: &'static AtomicU64,
}

impl Deref for Conn {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        &self.conn
    }
}

impl DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        if self.conn.rejection().is_some() {
            self.rejected.fetch_add(1, Relaxed);
        }
    }
}

/// The immutable state of one server, shared by all its threads.
pub struct Ctx {
    /// The options it was started with.
    pub opts: Options,
    /// The connection limits and timeouts handed to every [`common::Connection`].
    pub limits: Limits,
    /// The demo service.
    pub service: Service,
    /// Server-wide counters (in shared memory under the process models).
    pub counters: &'static Counters,
    /// The connection limit, the shed answer, the per-connection guards and the drain.
    pub admission: &'static Admission,
}

impl Ctx {
    /// Builds the shared state. `counters` must outlive every thread: it is leaked or mapped.
    pub fn new(opts: Options, counters: &'static Counters, per_process: bool) -> Ctx {
        let limits = Limits {
            head: common::head::HeadLimits {
                max_request_line: (opts.max_head_bytes as usize).min(8 * 1024),
                max_head_bytes: opts.max_head_bytes as usize,
                max_headers: 100,
            },
            max_body_bytes: opts.max_body_bytes,
            header_timeout: Duration::from_secs_f64(opts.header_timeout),
            keep_alive_timeout: Duration::from_secs_f64(opts.keep_alive_timeout),
            body_timeout: Duration::from_secs_f64(opts.body_timeout),
        };
        let service = Service::new(ServiceConfig {
            model: opts.model.name().to_string(),
            counters,
            per_process,
            debug_routes: opts.debug_routes,
            process: Some(crate::process::probe(per_process)),
        });
        // Leaked, as the counters are: one per server, and every connection's guard points at it.
        let admission = Box::leak(Box::new(Admission::new(counters, opts.max_connections)));
        Ctx {
            opts,
            limits,
            service,
            counters,
            admission,
        }
    }

    /// A new connection, accepted now, that counts its rejection when it ends (see [`Conn`]).
    pub fn connection(&self, now: Instant) -> Conn {
        Conn {
            conn: Connection::new(self.limits, now, SystemTime::now()),
            rejected: &self.counters.rejected_total,
        }
    }

    /// Asks the service for the answer to `req`. A panicking handler costs its client a 500 and
    /// nothing else.
    pub fn answer(&self, req: &Request) -> Reply {
        catch_unwind(AssertUnwindSafe(|| self.service.handle(req)))
            .unwrap_or_else(|_| Reply::Ready(internal_error()))
    }

    /// Counts and logs a response about to be queued.
    pub fn record(&self, req: &Request, resp: &Response, started: Instant) {
        self.counters.response_sent(resp.status);
        if self.opts.access_log {
            let body = resp.body_len();
            eprintln!(
                "{} {} {} {} {}us",
                req.method(),
                req.target(),
                resp.status,
                body,
                started.elapsed().as_micros()
            );
        }
    }

    /// The grace period for shutdown.
    pub fn grace(&self) -> Duration {
        Duration::from_secs_f64(self.opts.grace)
    }
}

/// Binds the listening socket with a deep backlog (c10k bursts) and SO_REUSEADDR.
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(4096)?;
    Ok(socket.into())
}

/// Prints the ready line that tests and `loadtest compare` wait for.
pub fn announce(model: &str, addr: SocketAddr, note: &str) {
    let mut out = io::stdout().lock();
    // A closed stdout only loses the banner; serving goes on.
    let line = ReadyLine {
        model: model.to_string(),
        addr,
        pid: std::process::id(),
        note: note.to_string(),
    };
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Raises the soft descriptor limit to the hard one, as servers that hold many connections do.
pub fn raise_nofile_limit() {
    // SAFETY: getrlimit/setrlimit write/read only the struct we pass.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}
