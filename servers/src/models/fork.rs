//! `fork`: a new process per connection, forked after `accept`.
//!
//! The parent only accepts: for each connection it forks, closes its own copy of the socket and
//! goes back to `accept`; the child serves the connection with blocking IO (keep-alive included)
//! and exits. This is the oldest design there is (inetd, the CGI-era servers, Python's
//! `socketserver.ForkingMixIn`), and its lesson is isolation: a child that crashes or leaks takes
//! nothing else with it, and each child has its own copy of everything, the kv store and the
//! sessions included, so they are per process (the server says so at start, `/info` shows it). The
//! request and connection counters are the server's, in the shared scoreboard. The costs: a `fork`
//! per connection (copying page tables; tens to hundreds of microseconds, which `churn` shows), a
//! process per open connection (memory, and the scheduler's load once thousands are busy), and a
//! fresh rayon pool in every child that offloads CPU work. It breaks down under connection churn and
//! at many concurrent connections, not with slow clients: a slow client only costs its own child.
//! The parent must fork with one thread only, so it starts none, rayon's pool included (that pool
//! starts lazily; a child may start its own). SIGCHLD wakes the accept loop, which reaps at once:
//! no zombies. Over `--max-connections` live children a new connection gets 503 and is closed. On
//! SIGTERM/SIGINT the parent stops accepting, sends SIGTERM to each child (which finishes its
//! request and closes), waits up to `--grace`, then kills the rest.

use crate::acceptor::{accept_loop_waking, Accepted};
use crate::admission::ConnGuard;
use crate::blocking::serve;
use crate::children::{Children, Exit};
use crate::server::Ctx;
use std::io;
use std::net::TcpListener;
use std::os::fd::AsRawFd;

/// The nice value of a connection's process (the parent keeps its own): below the parent's
/// priority, so that the parent, which only accepts and forks, gets the CPU as soon as a
/// connection waits, however many children are busy (see the module doc).
const CHILD_NICE: libc::c_int = 10;

/// Serves until a graceful stop, then stops the children.
pub fn run(ctx: &Ctx, listener: TcpListener) -> io::Result<()> {
    // Each child's connection is counted in the parent, by a guard kept until the child is reaped:
    // the count stays right even when a child is killed, and it is what `--max-connections` caps.
    let mut children: Children<ConnGuard> = Children::new()?;
    let listen_fd = listener.as_raw_fd();
    let wake = children.wake_fd();
    accept_loop_waking(ctx, &listener, Some(wake), |event| match event {
        Accepted::Woken => children.reap(child_gone),
        Accepted::Conn(stream, guard) => {
            let forked = children.spawn(guard, move || {
                // SAFETY: the child's inherited copy of the listener: only the parent accepts.
                // The listener value that owns the number is never dropped in the child.
                unsafe { libc::close(listen_fd) };
                // SAFETY: plain FFI on integers; it only lowers this process's priority. A
                // failure leaves the child at the parent's priority, which only costs latency.
                unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, CHILD_NICE) };
                serve(ctx, stream);
                0
            });
            if let Err(e) = forked {
                // The connection closes with the unrun closure; the guard went with it.
                eprintln!("zoo: cannot fork for a connection: {e}");
            }
        }
    });
    drop(listener);
    children.stop(ctx.grace(), child_gone);
    Ok(())
}

/// A child was reaped: its connection is closed; an abnormal end is worth a line in the log.
fn child_gone(pid: libc::pid_t, guard: ConnGuard, exit: Exit) {
    drop(guard);
    if !exit.success() {
        eprintln!("zoo: connection process {pid} {exit}");
    }
}
