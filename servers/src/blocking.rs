//! The per-connection loop for blocking IO, shared by the models that give a connection a thread
//! or a process of its own (thread, fork, prefork) and by the pool's workers.
//!
//! Each wait is a `poll(2)` on the socket and the shutdown pipe with the connection's own deadline
//! as timeout: that is how a blocked reader still honours the header and keep-alive timeouts and
//! hears a graceful stop at once, without a timer thread or a wake-up interval.

use crate::server::Ctx;
use crate::shutdown;
use common::{Connection, Want};
use std::io::{self, Read, Write};
use std::net::{Shutdown as Side, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
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
