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
//!
//! Priorities. The parent's work per connection is small (an accept and a fork), but it is
//! serial, and the scheduler gives the parent a fair share beside every runnable child: when
//! hundreds of connections open at once, the children already forked keep their clients busy and
//! the last connections of the burst waited for the parent's turn, seconds in a bad run, not for
//! its work. So the parent runs well above its children: it raises itself when it may, and
//! otherwise the children lower themselves, by the same number of nice steps. A child still
//! competes with the rest of the machine at the priority the server was started with when the
//! parent could be raised. The README's Performance section has the measurement.

use crate::acceptor::{accept_loop_waking, Accepted};
use crate::admission::ConnGuard;
use crate::blocking::serve;
use crate::children::{Children, Exit};
use crate::server::Ctx;
use std::io;
use std::net::TcpListener;
use std::os::fd::AsRawFd;

/// How far the parent's priority is put above its children's, in nice steps (see the module
/// doc): the most there is, about 70 times the CPU share of a child when both want it.
const PARENT_LEAD: libc::c_int = 19;

/// Puts the parent `PARENT_LEAD` nice steps above the children it will fork, and returns the
/// children's nice value. The parent is raised if it may be (root, `CAP_SYS_NICE` or
/// `RLIMIT_NICE`), and the children keep the nice value the server was started with, so they
/// compete with the rest of the machine as any server would; otherwise the children are lowered.
fn set_priorities() -> libc::c_int {
    // SAFETY: plain FFI on integers, about this process only. getpriority's -1 is a valid value,
    // and a failure leaves the nice value alone: the result is only a priority.
    unsafe {
        let base = libc::getpriority(libc::PRIO_PROCESS, 0);
        let raised = (base - PARENT_LEAD).max(-20);
        if libc::setpriority(libc::PRIO_PROCESS, 0, raised) == 0 {
            base
        } else {
            (base + PARENT_LEAD).min(19)
        }
    }
}

/// Serves until a graceful stop, then stops the children.
pub fn run(ctx: &Ctx, listener: TcpListener) -> io::Result<()> {
    // Each child's connection is counted in the parent, by a guard kept until the child is reaped:
    // the count stays right even when a child is killed, and it is what `--max-connections` caps.
    let mut children: Children<ConnGuard> = Children::new()?;
    let listen_fd = listener.as_raw_fd();
    let wake = children.wake_fd();
    let child_nice = set_priorities();
    accept_loop_waking(ctx, &listener, Some(wake), |event| match event {
        Accepted::Woken => children.reap(child_gone),
        Accepted::Conn(stream, guard) => {
            let forked = children.spawn(guard, move || {
                // SAFETY: the child's inherited copy of the listener: only the parent accepts.
                // The listener value that owns the number is never dropped in the child.
                unsafe { libc::close(listen_fd) };
                // SAFETY: plain FFI on integers; it only lowers this process's priority (from the
                // parent's). A failure leaves the child at the parent's, which costs only latency.
                unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, child_nice) };
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
