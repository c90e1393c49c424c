//! `select(2)`: two bitmaps of descriptor numbers, copied into the kernel and back on every wait.
//!
//! An `fd_set` is a fixed array of `FD_SETSIZE` (1024) bits, and `FD_SET` on a larger descriptor
//! writes past its end: a memory corruption, not an error. So [`Select::add`] refuses such a
//! descriptor, and the acceptor, told by [`Multiplexer::FD_LIMIT`], answers its connection 503
//! before it gets here. Each wait costs O(highest descriptor) twice: the kernel walks the bitmaps,
//! then the loop walks its table to find what is set.

use super::{wait_error, FdTable, Interest, Multiplexer, Token};
use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

/// The select(2) multiplexer.
pub struct Select {
    table: FdTable,
    /// The descriptors to watch for reading and writing; select(2) overwrites its arguments, so
    /// each wait hands it copies.
    read: libc::fd_set,
    write: libc::fd_set,
}

impl Select {
    /// Whether `fd` fits in an `fd_set`.
    fn fits(fd: RawFd) -> bool {
        usize::try_from(fd).is_ok_and(|fd| fd < libc::FD_SETSIZE)
    }

    /// Puts `fd` in the sets that `interest` asks for and out of the other.
    fn mark(&mut self, fd: RawFd, interest: Interest) -> io::Result<()> {
        if !Self::fits(fd) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "descriptor beyond FD_SETSIZE",
            ));
        }
        // SAFETY: `fd` is within FD_SETSIZE (checked above), so these touch only bits of the sets.
        unsafe {
            libc::FD_CLR(fd, &mut self.read);
            libc::FD_CLR(fd, &mut self.write);
            match interest {
                Interest::Read => libc::FD_SET(fd, &mut self.read),
                Interest::Write => libc::FD_SET(fd, &mut self.write),
                Interest::None => {}
            }
        }
        Ok(())
    }
}

impl Multiplexer for Select {
    const FD_LIMIT: Option<RawFd> = Some(libc::FD_SETSIZE as RawFd);

    fn new() -> io::Result<Select> {
        // SAFETY: an all-zero fd_set is the empty set (FD_ZERO does the same).
        let empty: libc::fd_set = unsafe { std::mem::zeroed() };
        Ok(Select {
            table: FdTable::default(),
            read: empty,
            write: empty,
        })
    }

    fn add(&mut self, fd: RawFd, token: Token, interest: Interest) -> io::Result<()> {
        self.mark(fd, interest)?;
        self.table.set(fd, token, interest);
        Ok(())
    }

    fn modify(&mut self, fd: RawFd, token: Token, _old: Interest, new: Interest) -> io::Result<()> {
        self.add(fd, token, new)
    }

    fn delete(&mut self, fd: RawFd, _interest: Interest) -> io::Result<()> {
        if Self::fits(fd) {
            self.mark(fd, Interest::None)?;
            self.table.remove(fd);
        }
        Ok(())
    }

    fn wait(&mut self, ready: &mut Vec<Token>, timeout: Option<Duration>) -> io::Result<()> {
        let mut read = self.read;
        let mut write = self.write;
        let mut tv = timeout.map(|d| {
            // Round up to the microsecond: waking early would only spin.
            let micros = d.as_nanos().div_ceil(1000);
            libc::timeval {
                tv_sec: (micros / 1_000_000).min(libc::time_t::MAX as u128) as libc::time_t,
                tv_usec: (micros % 1_000_000) as libc::suseconds_t,
            }
        });
        let tv_ptr = tv
            .as_mut()
            .map_or(std::ptr::null_mut(), |tv| tv as *mut libc::timeval);
        // The table ends at the highest watched descriptor + 1, which `mark` keeps within
        // FD_SETSIZE.
        let nfds = self.table.end() as libc::c_int;
        // SAFETY: the sets and the timeval live across the call; nfds <= FD_SETSIZE.
        let n = unsafe { libc::select(nfds, &mut read, &mut write, std::ptr::null_mut(), tv_ptr) };
        if n < 0 {
            return wait_error();
        }
        if n > 0 {
            for (fd, token, _) in self.table.iter() {
                // SAFETY: every descriptor in the table passed `fits`.
                if unsafe { libc::FD_ISSET(fd, &read) || libc::FD_ISSET(fd, &write) } {
                    ready.push(token);
                }
            }
        }
        Ok(())
    }
}
