//! `poll(2)`: an array of `pollfd` handed to the kernel on every wait.
//!
//! No `FD_SETSIZE` ceiling, but each wait still copies the whole array in and out and the kernel
//! polls every descriptor in it, ready or not: O(connections) per wait, which ten thousand idle
//! keep-alive connections make plain. The loop then scans the array for non-zero `revents`.

use super::{fd_index, timeout_ms, wait_error, Interest, Multiplexer, Token};
use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

/// No slot: a descriptor that is not in the array.
const NO_SLOT: u32 = u32::MAX;

/// The poll(2) multiplexer.
#[derive(Debug, Default)]
pub struct Poll {
    /// What the kernel is asked about. A descriptor with no interest is stored negated: poll(2)
    /// skips negative descriptors, so not even an error is reported for it.
    fds: Vec<libc::pollfd>,
    /// The token of each entry of `fds`.
    tokens: Vec<Token>,
    /// Where each descriptor sits in `fds`, indexed by descriptor number.
    slots: Vec<u32>,
}

fn events(interest: Interest) -> libc::c_short {
    match interest {
        Interest::Read => libc::POLLIN,
        Interest::Write => libc::POLLOUT,
        Interest::None => 0,
    }
}

/// The descriptor as stored in a `pollfd` (`!fd` is negative for every open descriptor).
fn stored(fd: RawFd, interest: Interest) -> RawFd {
    match interest {
        Interest::None => !fd,
        _ => fd,
    }
}

impl Poll {
    fn slot(&self, fd: RawFd) -> io::Result<usize> {
        match self.slots.get(fd_index(fd)) {
            Some(&slot) if slot != NO_SLOT => Ok(slot as usize),
            _ => Err(io::Error::from_raw_os_error(libc::ENOENT)),
        }
    }
}

impl Multiplexer for Poll {
    fn new() -> io::Result<Poll> {
        Ok(Poll::default())
    }

    fn add(&mut self, fd: RawFd, token: Token, interest: Interest) -> io::Result<()> {
        let i = fd_index(fd);
        if i >= self.slots.len() {
            self.slots.resize(i + 1, NO_SLOT);
        }
        let slot = u32::try_from(self.fds.len())
            .map_err(|_| io::Error::from_raw_os_error(libc::ENOSPC))?;
        self.slots[i] = slot;
        self.fds.push(libc::pollfd {
            fd: stored(fd, interest),
            events: events(interest),
            revents: 0,
        });
        self.tokens.push(token);
        Ok(())
    }

    fn modify(&mut self, fd: RawFd, token: Token, _old: Interest, new: Interest) -> io::Result<()> {
        let slot = self.slot(fd)?;
        self.fds[slot].fd = stored(fd, new);
        self.fds[slot].events = events(new);
        self.tokens[slot] = token;
        Ok(())
    }

    fn delete(&mut self, fd: RawFd, _interest: Interest) -> io::Result<()> {
        let slot = self.slot(fd)?;
        self.slots[fd_index(fd)] = NO_SLOT;
        self.fds.swap_remove(slot);
        self.tokens.swap_remove(slot);
        // The last entry moved into the hole: point its descriptor at the new place.
        if let Some(moved) = self.fds.get(slot) {
            let moved_fd = if moved.fd < 0 { !moved.fd } else { moved.fd };
            // `slot` indexed `fds`, whose length fits a u32 (checked in `add`).
            self.slots[fd_index(moved_fd)] = slot as u32;
        }
        Ok(())
    }

    fn wait(&mut self, ready: &mut Vec<Token>, timeout: Option<Duration>) -> io::Result<()> {
        let len = self.fds.len() as libc::nfds_t;
        // SAFETY: `fds` holds `len` initialised pollfd for the duration of the call.
        let n = unsafe { libc::poll(self.fds.as_mut_ptr(), len, timeout_ms(timeout)) };
        if n < 0 {
            return wait_error();
        }
        let mut left = n;
        for (pfd, &token) in self.fds.iter().zip(&self.tokens) {
            if left == 0 {
                break;
            }
            if pfd.revents != 0 {
                ready.push(token);
                left -= 1;
            }
        }
        Ok(())
    }
}
