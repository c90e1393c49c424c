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
use std::time::{Instant, SystemTime};

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

/// Serves one connection to its end with blocking IO on the calling thread.
pub fn serve(ctx: &Ctx, mut stream: TcpStream) {
    // A client that stops reading our answers cannot pin this thread for longer than this.
    let _ = stream.set_write_timeout(Some(ctx.limits.body_timeout));
    let _ = stream.set_nodelay(true);
    let mut conn = Connection::new(ctx.limits, Instant::now(), SystemTime::now());
    drive(ctx, &mut stream, &mut conn);
    let _ = stream.shutdown(Side::Write);
}

/// Runs `conn` over `stream` until it wants to close.
pub fn drive(ctx: &Ctx, stream: &mut TcpStream, conn: &mut Connection) {
    let stop = shutdown::get();
    let mut draining = false;
    loop {
        answer_ready(ctx, conn);
        if flush(stream, conn).is_err() {
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
    while let Some(req) = conn.next_request() {
        let started = Instant::now();
        let resp = ctx.answer(&req).wait_blocking();
        ctx.record(&req, &resp, started);
        if shutdown::get().requested() {
            conn.shutdown();
        }
        conn.respond(&resp, Instant::now());
    }
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

/// Writes all queued output, in one write when the socket takes it.
pub fn flush<S: Write + AsRawFd>(stream: &mut S, conn: &mut Connection) -> io::Result<()> {
    while !conn.output().is_empty() {
        match stream.write(conn.output()) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => conn.consume_output(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                wait_writable(stream.as_raw_fd())?;
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
    let mut fds = [
        libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: stop.unwrap_or(-1),
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    loop {
        let timeout = match deadline {
            None => -1,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                // Round up so we never wake a hair before the deadline and spin.
                left.as_millis().min(i32::MAX as u128) as i32 + i32::from(left.as_nanos() > 0)
            }
        };
        // SAFETY: `fds` is a valid array of two pollfd for the duration of the call; a negative
        // fd is ignored by poll(2).
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, timeout) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if fds[0].revents != 0 {
            return Ok(Woken::Readable);
        }
        if fds[1].revents != 0 {
            return Ok(Woken::Shutdown);
        }
        if n == 0 {
            return Ok(Woken::Timeout);
        }
    }
}

/// Waits until `fd` can take more output (for sockets in non-blocking mode).
pub fn wait_writable(fd: RawFd) -> io::Result<()> {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLOUT,
        revents: 0,
    };
    loop {
        // SAFETY: one valid pollfd for the duration of the call.
        let n = unsafe { libc::poll(&mut pfd, 1, 10_000) };
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
