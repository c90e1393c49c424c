//! Child processes for the process models (fork, prefork): forking only while single-threaded,
//! hearing SIGCHLD as a readable descriptor, reaping every child as it exits, and stopping them all
//! within the grace period.
//!
//! SIGCHLD writes a byte into a pipe, so a parent waits for "a child exited" in the same `poll` as
//! for its listener and the shutdown notice, and reaps at once: no zombie outlives the moment its
//! parent hears of it, whether or not another connection comes. The parent keeps each live child's
//! pid with the model's data about it (a connection guard, a worker slot). A pid in that table is
//! not reaped yet, so it cannot have been reused: signalling it always reaches our own child.
//! Each child gets a stop notice of its own (`shutdown::detach`, with SIGTERM and SIGINT held back
//! across the fork), so a signal to one child stops that child only, and the parent stops its
//! children by signalling each.

use crate::blocking::wait_any;
use crate::shutdown;
use libc::pid_t;
use std::collections::HashMap;
use std::fmt;
use std::io::{self, PipeReader, Read};
use std::os::fd::{AsRawFd, RawFd};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

/// How a child ended: its wait status.
#[derive(Debug, Clone, Copy)]
pub struct Exit(libc::c_int);

impl Exit {
    /// Whether it exited with status 0.
    pub fn success(self) -> bool {
        libc::WIFEXITED(self.0) && libc::WEXITSTATUS(self.0) == 0
    }
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if libc::WIFSIGNALED(self.0) {
            write!(f, "was killed by signal {}", libc::WTERMSIG(self.0))
        } else {
            write!(f, "exited with status {}", libc::WEXITSTATUS(self.0))
        }
    }
}

/// The live children of this process, each with the caller's data `T` about it.
pub struct Children<T> {
    live: HashMap<pid_t, T>,
    /// Readable when a SIGCHLD arrived since the last [`Children::reap`].
    wake: PipeReader,
    /// The write end, owned by the signal handler; closed in each child.
    wake_write: RawFd,
}

impl<T> Children<T> {
    /// Checks that this process may fork, and routes SIGCHLD to [`Children::wake_fd`].
    pub fn new() -> io::Result<Children<T>> {
        ensure_single_threaded()?;
        let (wake, write) = std::io::pipe()?;
        shutdown::set_nonblocking(wake.as_raw_fd())?;
        shutdown::set_nonblocking(write.as_raw_fd())?;
        let wake_write = write.as_raw_fd();
        signal_hook::low_level::pipe::register(libc::SIGCHLD, write)?;
        Ok(Children {
            live: HashMap::new(),
            wake,
            wake_write,
        })
    }

    /// A descriptor that is readable once a child has exited: wait on it, then [`Children::reap`].
    pub fn wake_fd(&self) -> RawFd {
        self.wake.as_raw_fd()
    }

    /// Forks a child that runs `child` and exits with the status it returns (101 if it panics);
    /// the parent records it with `data`. The child never returns from here and runs no
    /// destructor of the parent's values (it leaves with `_exit`); the parent drops `child` unrun,
    /// which closes what it captured (the connection, under fork).
    pub fn spawn(&mut self, data: T, child: impl FnOnce() -> i32) -> io::Result<pid_t> {
        let old = block_stop_signals();
        // SAFETY: the process has a single thread (checked in `new`, and the models start none),
        // so the child inherits no lock held by a thread that does not exist in it.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let code = match self.become_child(&old) {
                Ok(()) => catch_unwind(AssertUnwindSafe(child)).unwrap_or(101),
                Err(e) => {
                    eprintln!("zoo: child process setup failed: {e}");
                    1
                }
            };
            // SAFETY: _exit ends the child at once, skipping atexit handlers and the buffered
            // stdout it shares with the parent, which must not be flushed twice.
            unsafe { libc::_exit(code) };
        }
        let forked = if pid < 0 {
            Err(io::Error::last_os_error())
        } else {
            self.live.insert(pid, data);
            Ok(pid)
        };
        restore_signals(&old);
        forked
    }

    /// In the child just forked: its own stop notice, no SIGCHLD routing, signals back on.
    fn become_child(&self, old: &libc::sigset_t) -> io::Result<()> {
        shutdown::detach()?;
        // SAFETY: the child has one thread; the pipe's two descriptors belong to this module,
        // whose values the child never drops (it leaves with `_exit`), so nothing closes them
        // twice. Default SIGCHLD first, so the handler never writes to a closed descriptor.
        unsafe {
            libc::signal(libc::SIGCHLD, libc::SIG_DFL);
            libc::close(self.wake.as_raw_fd());
            libc::close(self.wake_write);
        }
        restore_signals(old);
        Ok(())
    }

    /// Reaps every child that has exited, handing each one's data and exit to `gone`.
    pub fn reap(&mut self, mut gone: impl FnMut(pid_t, T, Exit)) {
        // Drain the wake-ups first: a child exiting after the waitpid below leaves a fresh byte.
        let mut sink = [0u8; 64];
        while matches!(self.wake.read(&mut sink), Ok(n) if n > 0) {}
        loop {
            let mut status = 0;
            // SAFETY: waitpid writes the status through a valid pointer.
            let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if pid <= 0 {
                return; // 0: none exited yet; -1: no child left
            }
            if let Some(data) = self.live.remove(&pid) {
                gone(pid, data, Exit(status));
            }
        }
    }

    /// Sends `signal` to every live child.
    pub fn signal_all(&self, signal: libc::c_int) {
        for &pid in self.live.keys() {
            // SAFETY: kill(2) on a child not reaped yet, so the pid is still ours.
            unsafe { libc::kill(pid, signal) };
        }
    }

    /// Graceful stop: SIGTERM to every child, then waits up to `grace` for them to finish and
    /// exit; those still running are killed (SIGKILL) and reaped.
    pub fn stop(&mut self, grace: Duration, mut gone: impl FnMut(pid_t, T, Exit)) {
        self.signal_all(libc::SIGTERM);
        let until = Instant::now() + grace;
        loop {
            self.reap(&mut gone);
            if self.live.is_empty() {
                return;
            }
            if Instant::now() >= until {
                break;
            }
            if let Err(e) = wait_any([self.wake_fd()], Some(until)) {
                eprintln!("zoo: poll while waiting for child processes: {e}");
                break;
            }
        }
        eprintln!(
            "zoo: {} child process(es) still running after the grace period; killing them",
            self.live.len()
        );
        self.signal_all(libc::SIGKILL);
        for (pid, data) in self.live.drain() {
            let mut status = 0;
            // SAFETY: waitpid on our own child, status written through a valid pointer. SIGKILL
            // cannot be caught, so the blocking wait ends.
            while unsafe { libc::waitpid(pid, &mut status, 0) } < 0
                && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted
            {}
            gone(pid, data, Exit(status));
        }
    }
}

/// Refuses to go on when this process already runs more than one thread: a forked child has only
/// the thread that forked, and a lock another thread held then (the allocator's, stdout's) would
/// stay locked in the child for good. Rayon's pool starts lazily, on a process's first offloaded
/// job, so the parent never has it; a child may start its own.
pub fn ensure_single_threaded() -> io::Result<()> {
    // Without /proc there is nothing to count; the models start no thread before they fork.
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Ok(());
    };
    let threads = tasks.count();
    if threads > 1 {
        return Err(io::Error::other(format!(
            "cannot fork safely: the process already runs {threads} threads"
        )));
    }
    Ok(())
}

/// Blocks SIGTERM and SIGINT, returning the mask to restore: a stop signal that arrives while a
/// child is being set up waits, and then reaches the child's own stop notice.
fn block_stop_signals() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data, initialised by sigemptyset before use; the mask calls only
    // read and write the sets we pass.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
        old
    }
}

fn restore_signals(old: &libc::sigset_t) {
    // SAFETY: sets the mask saved by `block_stop_signals`.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, old, std::ptr::null_mut()) };
}
