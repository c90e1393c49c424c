//! The per-connection loop for blocking IO, shared by the models that give a connection a thread
//! or a process of its own (thread, fork, prefork) and by the pool's workers.
//!
//! Two ways to keep the deadlines of a blocked reader:
//!
//! - [`serve`] (fork, prefork, whose processes have one thread): each wait is a `poll(2)` on the
//!   socket and the shutdown pipe with the connection's own deadline as timeout, so a reader
//!   honours the header and keep-alive timeouts and hears a graceful stop at once, with no timer
//!   thread. It costs a syscall per request beside the read and the write.
//! - [`serve_reaped`] (thread): the read blocks with no timeout, and a [`Registry`] watched by one
//!   reaper thread ends the reads past their deadline and, on a stop, the idle ones, by shutting
//!   the socket's input. Publishing a deadline is an atomic store, so a busy keep-alive request
//!   costs a read and a write; deadlines are kept to a tick ([`reaper_tick`]) late at most.

use crate::server::Ctx;
use crate::shutdown;
use common::{Connection, Limits, Want};
use slab::Slab;
use std::io::{self, Read, Write};
use std::net::{Shutdown as Side, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// What a wait ended with.
#[derive(Debug, PartialEq, Eq)]
pub enum Woken {
    /// The socket has input (or EOF, or an error to read).
    Readable,
    /// The deadline passed.
    Timeout,
    /// A graceful stop was asked for.
    Shutdown,
}

/// How long a blocking driver keeps a connection open between requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeepAlive {
    /// As long as the client wants and the keep-alive timeout allows (thread, fork, pool).
    AsAsked,
    /// Only while a further request is already waiting, buffered or in the socket: the answer to
    /// the last one received says `Connection: close`, so an idle client never holds the worker
    /// (prefork, as gunicorn's sync worker).
    WhileWaiting,
}

/// Serves one connection to its end with blocking IO on the calling thread.
pub fn serve(ctx: &Ctx, stream: TcpStream) {
    serve_with(ctx, stream, KeepAlive::AsAsked);
}

/// [`serve`] with a keep-alive policy.
pub fn serve_with(ctx: &Ctx, mut stream: TcpStream, keep: KeepAlive) {
    // A client that stops reading our answers cannot pin this thread for longer than this.
    let _ = stream.set_write_timeout(Some(ctx.limits.body_timeout));
    let _ = stream.set_nodelay(true);
    let mut conn = ctx.connection(Instant::now());
    drive(ctx, &mut stream, &mut conn, keep);
    let _ = stream.shutdown(Side::Write);
}

/// [`serve`] with the deadlines and the graceful stop kept by the reaper of `registry` (see the
/// module doc): no wait beside the read itself.
pub fn serve_reaped(ctx: &Ctx, mut stream: TcpStream, registry: &Registry) {
    let _ = stream.set_write_timeout(Some(ctx.limits.body_timeout));
    let _ = stream.set_nodelay(true);
    let mut conn = ctx.connection(Instant::now());
    // Dropped (unregistered) before the socket is shut and closed.
    let slot = registry.insert(stream.as_raw_fd());
    let stop = shutdown::get();
    let mut draining = false;
    loop {
        answer_ready(ctx, &mut conn);
        if flush(&mut stream, &mut conn, ctx.limits.body_timeout).is_err() {
            break;
        }
        match conn.want() {
            Want::Close => break,
            Want::Read => {
                slot.arm(conn.poll_timeout(), conn.is_idle());
                if stop.requested() && !draining {
                    slot.disarm();
                    draining = true;
                    conn.shutdown();
                    continue;
                }
                let read = stream.read(conn.read_buf());
                slot.disarm();
                let now = Instant::now();
                if !take_read(&mut conn, read, now) {
                    break;
                }
            }
            // Every ready request was answered above.
            Want::Handle | Want::Wait | Want::Write => {}
        }
    }
    drop(slot);
    let _ = stream.shutdown(Side::Write);
}

/// Runs `conn` over `stream` until it wants to close.
pub fn drive(ctx: &Ctx, stream: &mut TcpStream, conn: &mut Connection, keep: KeepAlive) {
    let stop = shutdown::get();
    let fd = stream.as_raw_fd();
    let mut draining = false;
    loop {
        answer_ready_with(ctx, conn, |conn| {
            keep == KeepAlive::WhileWaiting && !conn.has_buffered_input() && !has_unread_input(fd)
        });
        if flush(stream, conn, ctx.limits.body_timeout).is_err() {
            return;
        }
        match conn.want() {
            Want::Close => return,
            Want::Read => {
                if stop.requested() && !draining {
                    draining = true;
                    conn.shutdown();
                    continue;
                }
                let watch = (!draining).then(|| stop.fd());
                match wait_readable(stream.as_raw_fd(), conn.poll_timeout(), watch) {
                    Ok(Woken::Readable) => {
                        if read_into(stream, conn).is_err() {
                            return;
                        }
                    }
                    Ok(Woken::Timeout) => conn.handle_timeout(Instant::now()),
                    Ok(Woken::Shutdown) => {
                        draining = true;
                        conn.shutdown();
                    }
                    Err(_) => return,
                }
            }
            // Blocking drivers answer every ready request above before they get here.
            Want::Handle | Want::Wait | Want::Write => {}
        }
    }
}

/// Answers every request the connection has ready, waiting for each answer on this thread.
pub fn answer_ready(ctx: &Ctx, conn: &mut Connection) {
    answer_ready_with(ctx, conn, |_| false);
}

/// [`answer_ready`], making an answer the connection's last when `last(conn)` says so (asked
/// once the answer is known, just before it is queued).
pub fn answer_ready_with(ctx: &Ctx, conn: &mut Connection, last: impl Fn(&Connection) -> bool) {
    while let Some(req) = conn.next_request() {
        let started = Instant::now();
        let resp = ctx.answer(&req).wait_blocking();
        ctx.record(&req, &resp, started);
        if shutdown::get().requested() || last(conn) {
            conn.shutdown();
        }
        conn.respond(&resp, Instant::now());
    }
}

/// Whether the socket holds received bytes not yet read (FIONREAD; an error counts as none).
fn has_unread_input(fd: RawFd) -> bool {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one c_int through the pointer, which is valid for the call.
    let rc = unsafe { libc::ioctl(fd, libc::FIONREAD, &mut n) };
    rc == 0 && n > 0
}

/// Reads once into the connection. An error is final for the connection.
pub fn read_into(stream: &mut impl Read, conn: &mut Connection) -> io::Result<()> {
    loop {
        match stream.read(conn.read_buf()) {
            Ok(n) => {
                conn.received(n, Instant::now());
                return Ok(());
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Writes all queued output, in one write when the socket takes it. On a non-blocking socket, a
/// client that takes nothing for `timeout` (the body timeout) is given up with `TimedOut`.
pub fn flush<S: Write + AsRawFd>(
    stream: &mut S,
    conn: &mut Connection,
    timeout: Duration,
) -> io::Result<()> {
    while !conn.output().is_empty() {
        match stream.write(conn.output()) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => conn.consume_output(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                wait_writable(stream.as_raw_fd(), timeout)?;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Waits until `fd` is readable, `deadline` passes, or (when given) `stop` becomes readable.
pub fn wait_readable(
    fd: RawFd,
    deadline: Option<Instant>,
    stop: Option<RawFd>,
) -> io::Result<Woken> {
    let [readable, stopped] = wait_any([fd, stop.unwrap_or(-1)], deadline)?;
    Ok(if readable {
        Woken::Readable
    } else if stopped {
        Woken::Shutdown
    } else {
        Woken::Timeout
    })
}

/// Waits until one of `fds` is readable (or at EOF or in error) or `deadline` passes, and says
/// which are; all `false` means the deadline passed. A negative descriptor is never ready.
pub fn wait_any<const N: usize>(
    fds: [RawFd; N],
    deadline: Option<Instant>,
) -> io::Result<[bool; N]> {
    let mut pfds = fds.map(|fd| libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    });
    loop {
        let timeout = match deadline {
            None => -1,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                // Round up so we never wake a hair before the deadline and spin.
                left.as_millis().min(i32::MAX as u128) as i32 + i32::from(left.as_nanos() > 0)
            }
        };
        // SAFETY: `pfds` is a valid array of N pollfd for the duration of the call; a negative
        // fd is ignored by poll(2).
        let n = unsafe { libc::poll(pfds.as_mut_ptr(), N as libc::nfds_t, timeout) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        return Ok(pfds.map(|p| p.revents != 0));
    }
}

/// Waits until `fd` can take more output (for sockets in non-blocking mode), at most `timeout`.
pub fn wait_writable(fd: RawFd, timeout: Duration) -> io::Result<()> {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLOUT,
        revents: 0,
    };
    let until = Instant::now() + timeout;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        // Rounded up, so a wait never ends a hair early; an interrupted wait goes on with the rest.
        let ms = left.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
        // SAFETY: one valid pollfd for the duration of the call.
        let n = unsafe { libc::poll(&mut pfd, 1, ms) };
        match n {
            0 => return Err(io::ErrorKind::TimedOut.into()),
            n if n > 0 => return Ok(()),
            _ => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
}

/// How often a reaper looks for reads past their deadline: a tenth of the shortest timeout, kept
/// between 10 and 100 ms, so a deadline is kept to within a tenth of its length.
pub fn reaper_tick(limits: &Limits) -> Duration {
    let shortest = limits
        .header_timeout
        .min(limits.keep_alive_timeout)
        .min(limits.body_timeout);
    (shortest / 10).clamp(Duration::from_millis(10), Duration::from_millis(100))
}

/// The reaper's loop, for a thread of its own: every `tick` it ends the reads that are past their
/// deadline. On SIGTERM/SIGINT it calls `on_stop` (the model's own part of the stop) and ends the
/// reads of the idle connections, then goes on keeping the deadlines of those still reading a
/// head or body while they drain. It never returns: the process ends when the model is done.
pub fn reap(registry: &Registry, tick: Duration, on_stop: impl FnOnce()) {
    let stop = shutdown::get();
    while !stop.requested() {
        match wait_readable(stop.fd(), Some(Instant::now() + tick), None) {
            Ok(Woken::Timeout) => registry.expire(Instant::now()),
            Ok(_) => {}
            Err(_) => std::thread::sleep(tick),
        }
    }
    on_stop();
    registry.close_idle();
    loop {
        std::thread::sleep(tick);
        registry.expire(Instant::now());
    }
}

/// The open connections' sockets and their read deadlines, for a reaper: a connection blocked in
/// a plain read has no timeout of its own, and the reaper ends the read by shutting the socket's
/// input (the read returns end of file, writes still go out). Publishing a deadline is two atomic
/// stores, no syscall. The lock is held for a slab operation or a scan.
pub struct Registry {
    conns: Mutex<Slab<Arc<Slot>>>,
    /// Deadlines are kept as nanoseconds after this instant, so that they fit an atomic.
    epoch: Instant,
}

/// One connection as the reaper sees it.
struct Slot {
    fd: RawFd,
    /// Waiting for a new request with nothing buffered: a graceful stop closes it at once.
    idle: AtomicBool,
    /// When its read must end, in nanoseconds after the epoch; 0 while it is not reading.
    deadline: AtomicU64,
}

/// A connection's place in the [`Registry`], given back on drop. Drop it before the socket
/// closes, so the reaper never shuts a descriptor number that has been reused.
pub struct Registered<'a> {
    registry: &'a Registry,
    key: usize,
    slot: Arc<Slot>,
}

impl Default for Registry {
    fn default() -> Registry {
        Registry::new()
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Registry {
        Registry {
            conns: Mutex::new(Slab::new()),
            epoch: Instant::now(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Slab<Arc<Slot>>> {
        // Nothing panics while holding the lock; if it ever did, the slab is still consistent.
        self.conns.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `at` as nanoseconds after the epoch, never 0 (which means "no deadline").
    fn nanos(&self, at: Instant) -> u64 {
        let nanos = at.saturating_duration_since(self.epoch).as_nanos();
        u64::try_from(nanos).unwrap_or(u64::MAX).max(1)
    }

    /// Registers the socket `fd`, not reading yet.
    pub fn insert(&self, fd: RawFd) -> Registered<'_> {
        let slot = Arc::new(Slot {
            fd,
            idle: AtomicBool::new(false),
            deadline: AtomicU64::new(0),
        });
        let key = self.lock().insert(slot.clone());
        Registered {
            registry: self,
            key,
            slot,
        }
    }

    /// Shuts the input of every connection whose read is past its deadline.
    pub fn expire(&self, now: Instant) {
        let now = self.nanos(now);
        for (_, slot) in self.lock().iter() {
            let at = slot.deadline.load(Relaxed);
            // The exchange fails if the connection moved on meanwhile: then it is left alone.
            if at != 0
                && at <= now
                && slot
                    .deadline
                    .compare_exchange(at, 0, Relaxed, Relaxed)
                    .is_ok()
            {
                shut_input(slot.fd);
            }
        }
    }

    /// Shuts the input of every idle connection: its blocked read returns end of file.
    pub fn close_idle(&self) {
        for (_, slot) in self.lock().iter() {
            if slot.idle.load(SeqCst) {
                shut_input(slot.fd);
            }
        }
    }
}

/// Ends a connection's input: a blocked read returns end of file, writes still go out.
fn shut_input(fd: RawFd) {
    // SAFETY: plain FFI on an integer. The descriptor is a live connection's: it is only called
    // under the registry's lock, and a slot leaves the registry, under that lock, before its
    // socket is closed.
    unsafe { libc::shutdown(fd, libc::SHUT_RD) };
}

impl Registered<'_> {
    /// Publishes the read about to start: its deadline, and whether the connection is idle.
    /// Call it before checking the stop flag: the flag is set before the reaper looks, so either
    /// the caller sees the stop, or the reaper sees the connection idle.
    pub fn arm(&self, deadline: Option<Instant>, idle: bool) {
        let at = deadline.map_or(0, |at| self.registry.nanos(at));
        self.slot.deadline.store(at, Relaxed);
        self.slot.idle.store(idle, SeqCst);
    }

    /// The read is over: nothing for the reaper to end.
    pub fn disarm(&self) {
        self.slot.deadline.store(0, Relaxed);
        self.slot.idle.store(false, SeqCst);
    }
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.registry.lock().remove(self.key);
    }
}

/// What a blocking read that the reaper may cut short gave the connection: bytes, its deadline
/// (the reaper shut the input, so an empty read before the deadline is the peer's end, after it
/// a timeout: 408 or close), or an end. `false` when the connection is done.
pub(crate) fn take_read(conn: &mut Connection, read: io::Result<usize>, now: Instant) -> bool {
    match read {
        Ok(0) if conn.poll_timeout().is_some_and(|at| at <= now) => conn.handle_timeout(now),
        Ok(n) => conn.received(n, now),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
        Err(_) => return false,
    }
    true
}
