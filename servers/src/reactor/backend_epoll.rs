//! `epoll(7)`: the interest list lives in the kernel, and a wait returns only what is ready.
//!
//! Registration is a syscall (`epoll_ctl`), but a wait costs O(ready), not O(watched): ten thousand
//! idle connections cost nothing per wait. Used level-triggered, the same semantics as select and
//! poll, so the three models differ in the multiplexer alone. The loop drains reads and writes to
//! `WouldBlock` anyway (it must, for sigio), so edge-triggered mode would save only the interest
//! changes: the `epoll_ctl` when a request waits for a delayed or computed answer and when it comes
//! back, and the pair around a full socket buffer; a plain request changes no interest, so for it
//! the two modes cost the same syscalls. Level-triggered forgives a missed drain with a repeated
//! report instead of a connection hung forever. "No interest" removes the descriptor from the
//! kernel's list (`EPOLL_CTL_DEL`): epoll always reports errors and hang-ups, and level-triggered
//! it would report a reset peer over and over while its answer is pending.

use super::{timeout_ms, wait_error, Interest, Multiplexer, Token};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// The most readiness reports taken per wait; more stay queued for the next.
const MAX_EVENTS: usize = 1024;

/// The epoll multiplexer, level-triggered.
pub struct Epoll {
    epfd: OwnedFd,
    events: Vec<libc::epoll_event>,
}

impl Epoll {
    fn ctl(&self, op: libc::c_int, fd: RawFd, token: Token, interest: Interest) -> io::Result<()> {
        let events = match interest {
            Interest::Read => libc::EPOLLIN,
            Interest::Write => libc::EPOLLOUT,
            Interest::None => 0,
        };
        let mut event = libc::epoll_event {
            events: events as u32,
            u64: token as u64,
        };
        // SAFETY: `event` lives across the call; the kernel copies it.
        if unsafe { libc::epoll_ctl(self.epfd.as_raw_fd(), op, fd, &mut event) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

impl Multiplexer for Epoll {
    fn new() -> io::Result<Epoll> {
        // SAFETY: epoll_create1 takes a flag and returns a new descriptor or -1.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Epoll {
            // SAFETY: a fresh descriptor that nothing else owns.
            epfd: unsafe { OwnedFd::from_raw_fd(fd) },
            events: Vec::with_capacity(MAX_EVENTS),
        })
    }

    fn add(&mut self, fd: RawFd, token: Token, interest: Interest) -> io::Result<()> {
        match interest {
            Interest::None => Ok(()),
            _ => self.ctl(libc::EPOLL_CTL_ADD, fd, token, interest),
        }
    }

    fn modify(&mut self, fd: RawFd, token: Token, old: Interest, new: Interest) -> io::Result<()> {
        match (old, new) {
            (Interest::None, _) => self.add(fd, token, new),
            (_, Interest::None) => self.delete(fd, old),
            _ => self.ctl(libc::EPOLL_CTL_MOD, fd, token, new),
        }
    }

    fn delete(&mut self, fd: RawFd, interest: Interest) -> io::Result<()> {
        match interest {
            Interest::None => Ok(()), // not in the kernel's list
            _ => self.ctl(libc::EPOLL_CTL_DEL, fd, 0, Interest::None),
        }
    }

    fn wait(&mut self, ready: &mut Vec<Token>, timeout: Option<Duration>) -> io::Result<()> {
        self.events.clear();
        // SAFETY: the buffer has room for MAX_EVENTS events; the kernel fills the first n.
        let n = unsafe {
            libc::epoll_wait(
                self.epfd.as_raw_fd(),
                self.events.as_mut_ptr(),
                MAX_EVENTS as libc::c_int,
                timeout_ms(timeout),
            )
        };
        if n < 0 {
            return wait_error();
        }
        // SAFETY: epoll_wait initialised the first n (<= MAX_EVENTS <= capacity) events.
        unsafe { self.events.set_len(n as usize) };
        ready.extend(self.events.iter().map(|e| e.u64 as Token));
        Ok(())
    }
}
