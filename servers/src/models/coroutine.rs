//! `coroutine`: a stackful coroutine per connection on `may`, blocking-style code.
//!
//! The connection code reads like the `thread` model's, top to bottom, but every wait (socket
//! read and write, `may::coroutine::sleep` for `Reply::Delayed`, a `may::sync::mpsc` receive for
//! a `Reply::Compute` job on rayon) parks the coroutine and lets its worker thread run another.
//! may runs the coroutines on `--threads` workers with work stealing; each worker also runs an
//! epoll loop for its share of the sockets (by descriptor) and resumes a coroutine when its
//! socket is ready or its timer fires. That is gevent's model, with may's `net` types in place
//! of monkey-patched sockets. A coroutine costs a fixed stack (`--stack-size`, 64 KiB by default,
//! reserved, mostly not resident) and a switch at each wait, cheaper than a thread's. Where it
//! breaks: anything that blocks the thread instead of the coroutine. `/block` calls
//! `std::thread::sleep`, which stalls its worker, the coroutines queued there until another
//! worker steals them, and the readiness of that worker's share of the sockets, as an unpatched
//! blocking call stalls gevent's hub. Over `--max-connections` a new connection gets 503 and is
//! closed.
//!
//! may's caveats, and what this module does about them:
//!
//! - Thread-local storage. A coroutine can resume on another worker after any yield, while the
//!   compiler assumes a function never changes threads and may keep a thread-local's address
//!   across a call that yields. The only yields here are this file's may calls, and nothing
//!   thread-local lives across them: the Connection's `Date` cache is per connection, and the
//!   service, the access log and rayon's spawn (thread-locals, stderr's lock, the panic count)
//!   are entered through `#[inline(never)]` frames that return before the next yield. The
//!   service's `std::sync::Mutex`es are never held across a yield: the handler is synchronous.
//! - Stack overflow. may cannot grow a stack. Measured with may's stack census (an odd stack size
//!   in words), a request of any route used at most 7 KiB, a panicking handler printing its
//!   backtrace 24 KiB: 64 KiB leaves room. An overflow hits the guard page below the stack; may
//!   reports it and abandons that coroutine (its socket and counters leak), nothing else is hurt.
//!   `--stack-size` is rounded down to an even number of words so it never turns the census on.
//! - `may::coroutine::spawn` is `unsafe` for exactly those two reasons, which the compiler
//!   cannot check; with both handled as above, each spawn below is sound.
//! - Timeouts. Given a different remaining time at each read, may's socket read timeouts were
//!   seen to fire early and to get lost (a client sending half a head never got its 408), so read
//!   deadlines are kept here: before each read a connection publishes its deadline in a
//!   registry, and a reaper thread, ticking at a tenth of the shortest timeout (10 to 100 ms),
//!   shuts the input of each connection past its deadline. The read returns end of file, the
//!   connection finds its deadline passed and answers 408 or closes. Writes keep may's write
//!   timeout, a constant (the body timeout), so a client that stops reading is dropped.
//! - Graceful stop. The reaper waits on the shutdown pipe between ticks (may cannot wait on an
//!   arbitrary descriptor). On a stop it shuts the listener's input, which ends the listening
//!   state and wakes the accept coroutine with an error, and the input of every connection idle
//!   in a read. Busy connections see the stop after their answer; the main thread waits for them
//!   up to `--grace`. No coroutine is ever cancelled.
//! - Reads. may's read tries the socket before it parks, so after a read that emptied the socket
//!   (a short one) the next costs a syscall that can only say EAGAIN, one per request. A
//!   connection here parks on may's readiness first (`WaitIo::wait_io`, which hands back the
//!   epoll events that woke it) and then reads the socket itself: a read and a write per request,
//!   as nginx. may's readiness is edge-triggered, so an edge must never be thrown away unread:
//!   may's own read clears the events before it reads (one that came in between would be lost),
//!   this read clears them only in `wait_io`, and after events that said reset or hang-up it
//!   reads again without parking.

use crate::admission::{AcceptFailed, Backoff};
use crate::async_conn::scheduler_threads;
use crate::blocking::{flush, reap, reaper_tick, take_read, Registry};
use crate::server::Ctx;
use crate::shutdown;
use common::handler::{internal_error, run_job};
use common::{Connection, Reply, Request, Response, Want};
use may::io::WaitIo;
use may::net::{TcpListener, TcpStream};
use socket2::SockRef;
use std::io;
use std::net::Shutdown as Side;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd};
use std::sync::Arc;
use std::time::Instant;

/// Serves until a graceful stop, then drains.
pub fn run(ctx: Arc<Ctx>, listener: std::net::TcpListener) -> io::Result<()> {
    let words = (ctx.opts.stack_size as usize / size_of::<usize>()) & !1;
    may::config()
        .set_workers(scheduler_threads(&ctx))
        .set_stack_size(words);
    // may pins its workers to cores by default; zoo shares the machine with rayon and the load
    // generator, so the OS schedules them like every other model's threads.
    may::config().set_worker_pin(false);
    // SAFETY: `into_raw_fd` hands over the only owner of an open listening socket.
    let listener = Arc::new(unsafe { TcpListener::from_raw_fd(listener.into_raw_fd()) });
    let registry = Arc::new(Registry::new());
    {
        let tick = reaper_tick(&ctx.limits);
        let listener = listener.clone();
        let registry = registry.clone();
        std::thread::Builder::new()
            .name("reaper".into())
            .spawn(move || reap(&registry, tick, || stop_accepting(&listener)))?;
    }
    let accepting = {
        let ctx = ctx.clone();
        // SAFETY: the accept loop yields only in may's accept and sleep, holding no thread-local,
        // and its stack needs far less than the configured size (see the module docs).
        unsafe {
            may::coroutine::Builder::new().spawn(move || accept_loop(&ctx, &listener, &registry))
        }?
    };
    // An error here is a panic in the accept loop, already reported by may; drain all the same.
    let _ = accepting.join();
    ctx.admission.wait_drained(Instant::now() + ctx.grace());
    Ok(())
}

/// Accepts until a graceful stop, starting a coroutine per connection.
fn accept_loop(ctx: &Arc<Ctx>, listener: &TcpListener, registry: &Arc<Registry>) {
    let stop = shutdown::get();
    let mut backoff = Backoff::default();
    while !stop.requested() {
        match listener.accept() {
            Ok((stream, _)) => {
                backoff.succeeded();
                // may made the socket non-blocking: a 503 goes out now or not at all.
                let Some(guard) = ctx.admission.admit(stream.inner()) else {
                    continue;
                };
                let ctx = ctx.clone();
                let registry = registry.clone();
                // SAFETY: as for the accept loop: the connection's code yields only in may calls
                // of this file, with no thread-local held across them, within the stack size.
                let spawned = unsafe {
                    may::coroutine::Builder::new().spawn(move || {
                        let _guard = guard;
                        serve(&ctx, stream, &registry);
                    })
                };
                if let Err(e) = spawned {
                    // The closure (stream and guard with it) is dropped: the client sees a close.
                    eprintln!("zoo: cannot start a coroutine: {e}");
                }
            }
            // Out of descriptors: park this coroutine, the others go on serving. Any other error
            // is a peer that gave up, or the listener shut by the reaper (the loop ends).
            Err(e) => {
                if let AcceptFailed::Pause(pause) = backoff.on_error(&e) {
                    may::coroutine::sleep(pause);
                }
            }
        }
    }
}

/// Serves one connection to its end.
fn serve(ctx: &Ctx, mut stream: TcpStream, registry: &Registry) {
    // A client that stops reading our answers is dropped after this long.
    let _ = stream.set_write_timeout(Some(ctx.limits.body_timeout));
    let _ = stream.set_nodelay(true);
    // Declared after `stream`, so dropped (unregistered) before the socket closes.
    let slot = registry.insert(stream.as_raw_fd());
    let mut conn = ctx.connection(Instant::now());
    let stop = shutdown::get();
    let mut draining = false;
    let mut reader = Reader { wait_first: false };
    loop {
        answer_ready(ctx, &mut conn);
        if flush(&mut stream, &mut conn, ctx.limits.body_timeout).is_err() {
            return;
        }
        match conn.want() {
            Want::Close => return,
            Want::Read => {
                // Published before the check of the stop flag, which is set before the reaper
                // looks: either we see the stop here, or the reaper sees us idle.
                slot.arm(conn.poll_timeout(), conn.is_idle());
                if stop.requested() && !draining {
                    draining = true;
                    conn.shutdown();
                    continue;
                }
                let read = reader.read(&stream, conn.read_buf());
                slot.disarm();
                let now = Instant::now();
                if !take_read(&mut conn, read, now) {
                    return;
                }
            }
            // Every ready request was answered above.
            Want::Handle | Want::Wait | Want::Write => {}
        }
    }
}

/// A connection's reads: parks on may's readiness, then reads (see the module doc).
struct Reader {
    /// Park before reading: the last read emptied the socket, or met EAGAIN.
    wait_first: bool,
}

impl Reader {
    /// Reads once into `buf`, parking the coroutine until the socket has input.
    fn read(&mut self, stream: &TcpStream, buf: &mut [u8]) -> io::Result<usize> {
        const GONE: usize = (libc::EPOLLERR | libc::EPOLLHUP | libc::EPOLLRDHUP) as usize;
        loop {
            // A reset or a hang-up reported with the bytes about to be read has spent its edge:
            // the read after them must not park, or it would wait for an edge that never comes.
            let mut gone = false;
            if self.wait_first {
                gone = stream.wait_io() & GONE != 0;
            }
            // SAFETY: receives at most `buf.len()` bytes into `buf`, from our own socket.
            let n = unsafe {
                libc::recv(
                    stream.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT,
                )
            };
            if let Ok(n) = usize::try_from(n) {
                self.wait_first = n < buf.len() && !gone;
                return Ok(n);
            }
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::WouldBlock => self.wait_first = true,
                io::ErrorKind::Interrupted => {}
                _ => return Err(e),
            }
        }
    }
}

/// Answers every request the connection has ready, parking the coroutine for each wait.
fn answer_ready(ctx: &Ctx, conn: &mut Connection) {
    while let Some(req) = conn.next_request() {
        let started = Instant::now();
        let resp = match answer(ctx, &req) {
            Reply::Ready(resp) => resp,
            Reply::Delayed(wait, resp) => {
                may::coroutine::sleep(wait);
                resp
            }
            Reply::Compute(job) => {
                let (tx, rx) = may::sync::mpsc::channel();
                start_job(job, tx);
                rx.recv().unwrap_or_else(|_| internal_error())
            }
        };
        record(ctx, &req, &resp, started);
        if shutdown::get().requested() {
            conn.shutdown();
        }
        conn.respond(&resp, Instant::now());
    }
}

// The three calls that touch thread-locals, each in a frame of its own that returns before the
// coroutine yields again (see the module docs).

#[inline(never)]
fn answer(ctx: &Ctx, req: &Request) -> Reply {
    ctx.answer(req)
}

#[inline(never)]
fn record(ctx: &Ctx, req: &Request, resp: &Response, started: Instant) {
    ctx.record(req, resp, started);
}

#[inline(never)]
fn start_job(job: Box<dyn FnOnce() -> Response + Send>, tx: may::sync::mpsc::Sender<Response>) {
    rayon::spawn(move || {
        // A failed send means the coroutine is gone: nothing to do.
        let _ = tx.send(run_job(job));
    });
}

/// What the reaper does on a stop besides ending the idle reads: end the accept loop.
fn stop_accepting(listener: &TcpListener) {
    // On Linux this ends the listening state: new connections are refused and the blocked
    // accept returns an error, after which the accept loop sees the stop.
    let _ = SockRef::from(listener.inner()).shutdown(Side::Read);
}
