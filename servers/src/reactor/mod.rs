//! A hand-written reactor: non-blocking sockets, one event loop per thread, and the kernel's
//! readiness interface behind one small trait, so `select`, `poll`, `epoll`, signal-driven IO and
//! plain scanning all run the very same loop and differ only in how they learn what is ready.
//!
//! - [`event_loop`]: the loop itself: accept, read, answer, write, timers, graceful stop.
//! - [`inbox`]: the wake-up descriptor and inbox through which other threads hand a loop work.
//! - [`backend_select`], [`backend_poll`], [`backend_epoll`]: the three classic multiplexers.
//! - [`backend_sigio`]: readiness as queued real-time signals (`O_ASYNC`, `F_SETSIG`), nginx's
//!   old rtsig.
//! - [`backend_scan`]: no multiplexer at all: every descriptor is tried on every pass.
//!
//! The backends are named `backend_*` so they are not mistaken for the models of the same name
//! (`models/select.rs` is `--model=select`, which runs the loop over `backend_select`).
//!
//! # Theory of operation
//!
//! A loop owns its connections (a slab of small entries: the socket, the sans-IO
//! [`common::Connection`], the registered interest, a timer slot). It asks its multiplexer to wait
//! for readiness until the earliest timer, then *drives* each ready connection: answer every
//! request the connection has ready, write, read, and repeat until the socket says `WouldBlock`,
//! a read comes back short, or the connection waits for an answer. A short read (fewer bytes than
//! the buffer had room for) means the socket was empty at that moment, so the loop does not read
//! again to hear `WouldBlock`: bytes that come later are reported again, by level-triggered
//! readiness (select, poll, epoll) or by the next pass (the scan). That leaves two syscalls per
//! request, a read and a write, as nginx makes. Signals are edges: one queued for a reset that came
//! with the last bytes is spent with them, so sigio reads on until `WouldBlock`, three syscalls per
//! request. Readiness is only a hint otherwise: the loop tries the IO the connection wants next and
//! believes only `WouldBlock`, and a spurious wake-up costs one syscall.
//!
//! It registers for readability while the connection wants input, for writability only while
//! output is pending (a full socket buffer), and for nothing while the service has the request.
//! `Reply::Delayed` puts the response in the connection's entry and its due time in the loop's timer
//! heap, beside the connection deadlines (header, body, keep-alive). `Reply::Compute` runs on the
//! rayon pool, whose thread puts the answer in the loop's inbox and writes to the loop's wake-up
//! descriptor (an eventfd; a pipe under sigio, since eventfd cannot raise a signal). An idle
//! keep-alive connection gives its buffers back, so it costs its entry and a slot in the
//! multiplexer: a few hundred bytes of RSS in all (`cargo bench -p servers --bench c10k` measures it;
//! the README quotes a run). The loop
//! keeps a few of the buffers given back ([`common::Spare`]) for the next connection with input,
//! so a busy keep-alive connection, idle between any two requests, allocates nothing per request.
//!
//! # Several loops (`--threads N`, default 1)
//!
//! Loop 0 owns the listener and deals accepted connections round-robin to the loops through their
//! inboxes, as memcached's dispatcher does. The alternatives: one listener registered in every loop
//! wakes them all for each connection under select and poll (thundering herd), and lets whichever
//! loop wins take a whole burst, so wrk's 256 connections, opened at once, could all land in one
//! loop; `SO_REUSEPORT` listeners balance by hash but drop the connections queued on a listener
//! whose loop ends; and a signal-driven listener has exactly one owner thread anyway. Dealing costs
//! one hand-off per connection (a mutex push and an eventfd write) and makes loop 0 the only
//! acceptor, which shows under heavy connection churn; it balances connections, not requests.
//!
//! The shutdown pipe is registered in every loop; the first loop to hear it wakes the others (under
//! sigio only one thread can own the pipe's signal). Every loop then stops accepting, closes its
//! idle connections, answers what is in flight and ends when it has no connection left or the grace
//! period is over.

pub mod backend_epoll;
pub mod backend_poll;
pub mod backend_scan;
pub mod backend_select;
pub mod backend_sigio;
mod event_loop;
mod inbox;

use crate::server::Ctx;
use event_loop::Loop;
use inbox::Inbox;
use std::io;
use std::net::TcpListener;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::time::Duration;

/// What a registered descriptor is reported for. The loop tells the multiplexer its connection's
/// current interest; `None` watches nothing, not even errors, so a peer that resets while its
/// answer is pending cannot make a level-triggered loop spin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interest {
    /// Report nothing.
    None,
    /// Report when a read (or accept) would not block.
    Read,
    /// Report when a write would not block.
    Write,
}

/// Names a registered descriptor in the readiness list: a connection's slab key, or one of the
/// loop's own descriptors.
pub type Token = usize;

/// A readiness source: the one part that differs between the reactor models.
pub trait Multiplexer: Sized + Send + 'static {
    /// Descriptors from this number up cannot be watched (select's `FD_SETSIZE`); the acceptor
    /// refuses connections that get one.
    const FD_LIMIT: Option<RawFd> = None;
    /// Whether the wake-up descriptor must be a pipe rather than an eventfd (signal-driven
    /// readiness needs a descriptor whose driver can raise SIGIO; eventfd's cannot).
    const PIPE_WAKER: bool = false;
    /// Whether readiness that still holds is reported again at the next wait (level-triggered).
    /// Then a read that came back short ends the connection's turn: anything that happens to the
    /// socket later, a peer's reset included, is seen at the next wait. Edge-triggered readiness
    /// (sigio) may have reported a reset together with the bytes just read, so it reads on to
    /// `WouldBlock`.
    const LEVEL_TRIGGERED: bool = true;

    /// A new, empty multiplexer. Called on the thread that starts the loops, before any of them
    /// starts (sigio blocks its signals there, so every loop thread inherits the mask).
    fn new() -> io::Result<Self>;

    /// Starts watching `fd` for `interest`; it is reported as `token`.
    fn add(&mut self, fd: RawFd, token: Token, interest: Interest) -> io::Result<()>;

    /// Changes what a watched `fd` is reported for, from `old` to `new`.
    fn modify(&mut self, fd: RawFd, token: Token, old: Interest, new: Interest) -> io::Result<()>;

    /// Stops watching `fd` (before it is closed).
    fn delete(&mut self, fd: RawFd, interest: Interest) -> io::Result<()>;

    /// Waits until something is ready or `timeout` passes (`None`: no limit), and appends the
    /// tokens of what may be ready to `ready`. An interrupted wait returns early with nothing: the
    /// loop just waits again.
    fn wait(&mut self, ready: &mut Vec<Token>, timeout: Option<Duration>) -> io::Result<()>;

    /// Told after every pass whether it did any work. Only [`backend_scan::Scan`], which cannot sleep in
    /// the kernel, needs it.
    fn pass_done(&mut self, _found_work: bool) {}
}

/// Serves on `listener` with `--threads` event loops (default 1) on multiplexer `M`, until a
/// graceful stop has drained them all.
pub fn run<M: Multiplexer>(ctx: Arc<Ctx>, listener: TcpListener) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let count = ctx.opts.threads.unwrap_or(1).max(1);
    let inboxes = (0..count)
        .map(|_| Inbox::new(M::PIPE_WAKER))
        .collect::<io::Result<Vec<_>>>()?;
    let inboxes: Arc<[Inbox]> = inboxes.into();
    let mut muxes = (0..count)
        .map(|_| M::new())
        .collect::<io::Result<Vec<_>>>()?;
    let first = muxes.remove(0);
    let mut threads = Vec::new();
    for (i, mux) in muxes.into_iter().enumerate() {
        let index = i + 1;
        let event_loop = Loop::new(ctx.clone(), mux, index, inboxes.clone(), None);
        let spawned = std::thread::Builder::new()
            .name(format!("loop-{index}"))
            .spawn(move || {
                if let Err(e) = event_loop.run() {
                    // A loop that dies would strand the connections dealt to it: stop loudly.
                    eprintln!("zoo: event loop {index} failed: {e}");
                    std::process::exit(1);
                }
            })?;
        threads.push(spawned);
    }
    Loop::new(ctx, first, 0, inboxes, Some(listener)).run()?;
    for thread in threads {
        if thread.join().is_err() {
            eprintln!("zoo: an event loop panicked");
        }
    }
    Ok(())
}

/// The token and interest of each watched descriptor, indexed by descriptor number: the bookkeeping
/// of the multiplexers that keep their own (select, sigio, scan). Descriptor numbers are dense (the
/// kernel hands out the lowest free one), so a vector beats a map.
#[derive(Debug, Default)]
struct FdTable {
    slots: Vec<Option<(Token, Interest)>>,
}

impl FdTable {
    fn set(&mut self, fd: RawFd, token: Token, interest: Interest) {
        let i = fd_index(fd);
        if i >= self.slots.len() {
            self.slots.resize(i + 1, None);
        }
        self.slots[i] = Some((token, interest));
    }

    fn get(&self, fd: RawFd) -> Option<(Token, Interest)> {
        self.slots.get(fd_index(fd)).copied().flatten()
    }

    fn remove(&mut self, fd: RawFd) {
        if let Some(slot) = self.slots.get_mut(fd_index(fd)) {
            *slot = None;
        }
        while let Some(None) = self.slots.last() {
            self.slots.pop();
        }
    }

    /// One more than the highest watched descriptor (select's `nfds`).
    fn end(&self) -> usize {
        self.slots.len()
    }

    /// Every watched descriptor with its token and interest.
    fn iter(&self) -> impl Iterator<Item = (RawFd, Token, Interest)> + '_ {
        self.slots.iter().enumerate().filter_map(|(fd, slot)| {
            // `fd` came from a RawFd, so it fits one.
            slot.map(|(token, interest)| (fd as RawFd, token, interest))
        })
    }
}

/// A descriptor as an index. Descriptors handed to a multiplexer are open, hence never negative.
fn fd_index(fd: RawFd) -> usize {
    usize::try_from(fd).unwrap_or(usize::MAX)
}

/// `timeout` in whole milliseconds for poll(2) and epoll_wait(2), rounded up so the loop never
/// wakes a hair early and spins; -1 waits without limit.
fn timeout_ms(timeout: Option<Duration>) -> libc::c_int {
    match timeout {
        None => -1,
        Some(d) => d
            .as_nanos()
            .div_ceil(1_000_000)
            .min(libc::c_int::MAX as u128) as libc::c_int,
    }
}

/// The last OS error, unless it is EINTR: a wait cut short by a signal is not a failure.
fn wait_error() -> io::Result<()> {
    let e = io::Error::last_os_error();
    if e.kind() == io::ErrorKind::Interrupted {
        Ok(())
    } else {
        Err(e)
    }
}

#[cfg(test)]
mod tests {
    //! Every multiplexer over a socket pair: registration, interest changes, timeouts.

    use super::*;
    use std::io::Write;
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;
    use std::time::Instant;

    fn ready_after<M: Multiplexer>(mux: &mut M, timeout: Duration) -> Vec<Token> {
        let mut ready = Vec::new();
        let until = Instant::now() + timeout;
        // A wait may return early and empty (EINTR, or scan's pass): wait again until something
        // shows or the time is up.
        while ready.is_empty() && Instant::now() < until {
            mux.wait(&mut ready, Some(until - Instant::now())).unwrap();
        }
        ready
    }

    fn exercise<M: Multiplexer>() {
        let mut mux = M::new().unwrap();
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        ours.set_nonblocking(true).unwrap();
        let fd = ours.as_raw_fd();
        mux.add(fd, 7, Interest::Read).unwrap();
        let short = Duration::from_millis(30);

        theirs.write_all(b"x").unwrap();
        assert_eq!(ready_after(&mut mux, Duration::from_secs(2)), vec![7]);

        // Interest in nothing: the pending byte is not reported.
        mux.modify(fd, 7, Interest::Read, Interest::None).unwrap();
        mux.pass_done(false);
        assert!(ready_after(&mut mux, short).is_empty());

        // A socket with room in its buffer is writable at once (sigio reports readiness only on
        // a change, so it is exempt).
        if !M::PIPE_WAKER {
            mux.modify(fd, 7, Interest::None, Interest::Write).unwrap();
            assert_eq!(ready_after(&mut mux, Duration::from_secs(2)), vec![7]);
        }
        mux.delete(fd, Interest::Write).unwrap();
        mux.pass_done(false);
        theirs.write_all(b"y").unwrap();
        assert!(ready_after(&mut mux, short).is_empty());
        drop(ours);
        let _ = theirs.flush();
    }

    #[test]
    fn select_reports_readiness() {
        exercise::<backend_select::Select>();
    }

    #[test]
    fn poll_reports_readiness() {
        exercise::<backend_poll::Poll>();
    }

    #[test]
    fn epoll_reports_readiness() {
        exercise::<backend_epoll::Epoll>();
    }

    #[test]
    fn sigio_reports_readiness() {
        exercise::<backend_sigio::SigIo>();
    }

    #[test]
    fn scan_reports_every_watched_descriptor() {
        exercise::<backend_scan::Scan>();
    }

    #[test]
    fn select_refuses_descriptors_beyond_fd_setsize() {
        let mut mux = backend_select::Select::new().unwrap();
        let fd = libc::FD_SETSIZE as RawFd;
        assert!(mux.add(fd, 1, Interest::Read).is_err());
        assert!(mux.modify(fd, 1, Interest::Read, Interest::Write).is_err());
        mux.delete(fd, Interest::Read).unwrap();
    }

    #[test]
    fn timeouts_round_up_to_milliseconds() {
        assert_eq!(timeout_ms(None), -1);
        assert_eq!(timeout_ms(Some(Duration::ZERO)), 0);
        assert_eq!(timeout_ms(Some(Duration::from_micros(1))), 1);
        assert_eq!(timeout_ms(Some(Duration::from_millis(5))), 5);
    }
}
