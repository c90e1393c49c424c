//! What every model shares: the service, the limits, the counters, binding the listener, the
//! answer to one request (panics caught, counted, logged), and load shedding.

use crate::cli::Options;
use common::handler::internal_error;
use common::service::{Service, ServiceConfig};
use common::stats::Counters;
use common::{Connection, Handler, Limits, Reply, Request, Response};
use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener};
use std::ops::{Deref, DerefMut};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

/// Where [`Conn`] counts rejections: the process's `zoo_rejected_total`, set by [`Ctx::new`].
static REJECTIONS: OnceLock<&'static AtomicU64> = OnceLock::new();

/// A [`Connection`] of this server: when it is dropped, however its driver ended it, a request
/// the protocol core refused on it (400, 408, 413, 431, 501, 505...) counts in
/// `zoo_rejected_total`. The service never sees those requests, so no driver has to remember to
/// count them, and nothing is added per connection (the counter is process-wide).
#[derive(Debug)]
pub struct Conn(Connection);

impl Deref for Conn {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        &self.0
    }
}

impl DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut Connection {
        &mut self.0
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        if self.0.rejection().is_some() {
            if let Some(rejected) = REJECTIONS.get() {
                rejected.fetch_add(1, Relaxed);
            }
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
        // The first server of the process names the counters a rejected connection counts in.
        let _ = REJECTIONS.set(&counters.rejected_total);
        Ctx {
            opts,
            limits,
            service,
            counters,
        }
    }

    /// A new connection, accepted now, that counts its rejection when it ends (see [`Conn`]).
    pub fn connection(&self, now: Instant) -> Conn {
        Conn(Connection::new(self.limits, now, SystemTime::now()))
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

/// The fixed answer to a connection over `--max-connections`.
pub const SHED_RESPONSE: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nServer: zoo\r\n\
Retry-After: 1\r\nContent-Type: text/plain\r\nContent-Length: 20\r\nConnection: close\r\n\r\n\
too many connections";

/// Sheds a connection: a best-effort 503 without blocking, then close.
pub fn shed(stream: &mut impl Write, counters: &Counters) {
    counters
        .shed_total
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    // Best effort: a client that cannot take 170 bytes at once gets a bare close instead.
    let _ = stream.write(SHED_RESPONSE);
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
    let _ = writeln!(
        out,
        "zoo {model} listening on http://{addr} (pid {}){note}",
        std::process::id()
    );
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

/// Whether an accept error means "out of descriptors or memory": back off, don't spin.
pub fn is_resource_error(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}
