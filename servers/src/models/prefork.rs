//! `prefork`: `--workers` processes, forked at start, share one listening socket; each serves one
//! connection at a time with blocking IO.
//!
//! This is Apache's prefork MPM and gunicorn's `sync` worker. A worker accepts, answers every
//! request the client has already sent (a pipelined batch included), and closes the connection as
//! soon as no further request is waiting: the last answer says `Connection: close`. Keeping an idle
//! keep-alive client would pin one of a handful of workers, as gunicorn's docs warn. The master
//! only watches: it restarts a worker that dies (a new pid in the same scoreboard slot), waits
//! before restarting when workers keep dying young (100 ms doubling to 5 s, logged), and on
//! SIGTERM/SIGINT shuts the shared listener down (new connections are refused at once, rather than
//! queued for workers that no longer accept), sends SIGTERM to each worker, which finishes its
//! in-flight request and exits 0, waits up to `--grace`, then kills the rest. Workers have their own kv store and sessions (the
//! server says so at start, `/info` shows it); the counters are server-wide, in the scoreboard.
//!
//! The costs: exactly `--workers` requests are served at once, so `/sleep` and `/block` cap the
//! throughput at workers / delay, a slow client holds a whole worker until `--header-timeout`, and
//! every keep-alive client reconnects after each request. Over `--workers` busy connections the
//! server stops accepting: new connections wait in the listen backlog (`--max-connections`, if
//! lower, lowers the worker count).
//!
//! The workers share an inherited listener rather than each binding its own with SO_REUSEPORT.
//! With SO_REUSEPORT the kernel hashes each connection to one socket's queue, whether or not its
//! worker is busy: behind a worker held by a slow client, connections wait while other workers
//! idle, and a killed worker's queued connections are reset. One shared queue is taken from by
//! whichever worker is free. The price is the thundering herd: every idle worker waits on the same
//! socket, and `poll` wakes them all for each connection, one wins `accept`, the others get
//! EAGAIN. A blocking `accept` wakes one waiter only, but it cannot wait for the stop notice as
//! well; so each worker waits in its own epoll set with the listener added `EPOLLEXCLUSIVE`
//! (Linux 4.5), which wakes one idle worker per connection, beside its stop notice.

use crate::admission::{AcceptFailed, Backoff};
use crate::blocking::{serve_with, wait_any, KeepAlive};
use crate::children::Children;
use crate::scoreboard::{Scoreboard, MAX_WORKERS};
use crate::server::Ctx;
use crate::shutdown;
use std::io;
use std::net::TcpListener;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

/// A worker that dies younger than this counts as dying in a loop: the next start waits.
const YOUNG: Duration = Duration::from_secs(1);
const FIRST_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_secs(5);

/// A worker, as the master knows it.
struct Worker {
    slot: usize,
    started: Instant,
}

/// Serves until a graceful stop, then stops the workers.
pub fn run(ctx: &Ctx, listener: TcpListener, board: &'static Scoreboard) -> io::Result<()> {
    // Several workers wake for one connection now and then; the losers must get EAGAIN from
    // accept, not block in it.
    listener.set_nonblocking(true)?;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let count = ctx.opts.workers.map_or(cpus, |n| n as usize);
    let count = count
        .min(ctx.opts.max_connections as usize)
        .min(MAX_WORKERS);
    let mut children: Children<Worker> = Children::new()?;
    let master = std::process::id();
    let stop = shutdown::get();
    // Slots without a worker, and when the next worker may start.
    let mut vacant: Vec<usize> = (0..count).rev().collect();
    let mut delay = Duration::ZERO;
    let mut next_start = Instant::now();
    while !stop.requested() {
        while Instant::now() >= next_start {
            let Some(slot) = vacant.pop() else { break };
            let worker = Worker {
                slot,
                started: Instant::now(),
            };
            let forked = children.spawn(worker, || work(ctx, &listener, board, slot, master));
            if let Err(e) = forked {
                vacant.push(slot);
                (delay, next_start) = back_off(delay);
                eprintln!("zoo: cannot start a worker: {e}; next try in {delay:?}");
            }
        }
        let deadline = (!vacant.is_empty()).then_some(next_start);
        match wait_any([stop.fd(), children.wake_fd()], deadline) {
            Ok([false, _]) => {}
            Ok([true, _]) => break,
            Err(e) => {
                eprintln!("zoo: master: poll failed: {e}; stopping");
                break;
            }
        }
        children.reap(|pid, worker, exit| {
            board.closed(worker.slot);
            vacant.push(worker.slot);
            if worker.started.elapsed() < YOUNG {
                (delay, next_start) = back_off(delay);
                eprintln!("zoo: worker {pid} {exit}; workers die young, next start in {delay:?}");
            } else {
                (delay, next_start) = (Duration::ZERO, Instant::now());
                eprintln!("zoo: worker {pid} {exit}; starting another");
            }
        });
    }
    stop_listening(&listener);
    children.stop(ctx.grace(), |pid, worker, exit| {
        board.closed(worker.slot);
        if !exit.success() {
            eprintln!("zoo: worker {pid} {exit}");
        }
    });
    Ok(())
}

/// Stops the listening socket for every process at once. It is one socket shared by the master
/// and all workers, so closing the master's copy would change nothing while a busy worker still
/// holds one: clients would go on connecting into a backlog that nobody accepts any more, send
/// their requests, and be reset when the last worker exits. `shutdown(2)` on a listening socket
/// (Linux) stops the socket itself: new connections are refused from now on (a client knows its
/// request was never sent), and the workers' `accept` fails with EINVAL, which they take as the
/// stop.
fn stop_listening(listener: &TcpListener) {
    // SAFETY: shutdown(2) on a descriptor this function borrows; it closes nothing.
    unsafe { libc::shutdown(listener.as_raw_fd(), libc::SHUT_RD) };
}

/// The next delay before a worker starts, and when that is.
fn back_off(delay: Duration) -> (Duration, Instant) {
    let delay = (delay * 2).clamp(FIRST_DELAY, MAX_DELAY);
    (delay, Instant::now() + delay)
}

/// A worker's life: accept, serve that connection to its end, again, until told to stop.
fn work(ctx: &Ctx, listener: &TcpListener, board: &Scoreboard, slot: usize, master: u32) -> i32 {
    // A worker that outlives its master would serve on unsupervised: the kernel sends it SIGTERM
    // when the master dies, and it drains like at a normal stop.
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) };
    if std::os::unix::process::parent_id() != master {
        return 0; // the master died before the line above
    }
    let stop = shutdown::get();
    let mut backoff = Backoff::default();
    let waiter = match Waiter::new(listener.as_raw_fd(), stop.fd()) {
        Ok(waiter) => waiter,
        Err(e) => {
            eprintln!("zoo: worker cannot wait for connections: {e}");
            return 1;
        }
    };
    while !stop.requested() {
        match waiter.wait() {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                eprintln!("zoo: worker: epoll_wait: {e}");
                return 1;
            }
        }
        match listener.accept() {
            Ok((stream, _)) => {
                backoff.succeeded();
                board.opened(slot);
                serve_with(ctx, stream, KeepAlive::WhileWaiting);
                board.closed(slot);
            }
            Err(e) => match backoff.on_error(&e) {
                // Another worker took it, or the peer gave up before we accepted it.
                AcceptFailed::Drained | AcceptFailed::Again => {}
                // The listener stays readable: without a pause this worker would spin.
                AcceptFailed::Pause(pause) => std::thread::sleep(pause),
                // The master shut the listener down: the server is stopping (our SIGTERM follows).
                AcceptFailed::Other if e.raw_os_error() == Some(libc::EINVAL) => break,
                AcceptFailed::Other => {}
            },
        }
    }
    0
}

const LISTENER: u64 = 0;
const STOP: u64 = 1;

/// One worker's wait for "a connection may be waiting" or "stop": its own epoll set.
struct Waiter(OwnedFd);

impl Waiter {
    fn new(listener: RawFd, stop: RawFd) -> io::Result<Waiter> {
        // SAFETY: epoll_create1 takes a flag and returns a new descriptor or -1.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a new descriptor that nothing else owns.
        let waiter = Waiter(unsafe { OwnedFd::from_raw_fd(fd) });
        let exclusive = (libc::EPOLLIN | libc::EPOLLEXCLUSIVE) as u32;
        if let Err(e) = waiter.add(listener, exclusive, LISTENER) {
            // Kernels before 4.5 refuse the flag: wake the whole herd then.
            if e.raw_os_error() != Some(libc::EINVAL) {
                return Err(e);
            }
            waiter.add(listener, libc::EPOLLIN as u32, LISTENER)?;
        }
        waiter.add(stop, libc::EPOLLIN as u32, STOP)?;
        Ok(waiter)
    }

    fn add(&self, fd: RawFd, events: u32, token: u64) -> io::Result<()> {
        let mut event = libc::epoll_event { events, u64: token };
        // SAFETY: epoll_ctl reads one valid epoll_event; both descriptors are open.
        let rc =
            unsafe { libc::epoll_ctl(self.0.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut event) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Blocks until the listener is readable (`true`) or a stop is asked for (`false`).
    fn wait(&self) -> io::Result<bool> {
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; 2];
        loop {
            // SAFETY: `events` has room for the 2 events we ask for, for the whole call.
            let n = unsafe { libc::epoll_wait(self.0.as_raw_fd(), events.as_mut_ptr(), 2, -1) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            let ready = &events[..n as usize];
            // Copy the field out: epoll_event is packed on x86-64, so no reference to it.
            if ready.iter().any(|e| { e.u64 } == STOP) {
                return Ok(false);
            }
            if !ready.is_empty() {
                return Ok(true);
            }
        }
    }
}
