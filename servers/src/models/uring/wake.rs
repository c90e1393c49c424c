//! The way back from rayon: `Reply::Compute` answers come home to their ring through an eventfd.

use common::Response;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::{Mutex, PoisonError};

/// How rayon hands a `Reply::Compute` answer back to its ring: a list, and an eventfd the ring
/// has a read submitted on.
pub struct Wake {
    /// The eventfd the ring keeps a read submitted on.
    pub fd: OwnedFd,
    done: Mutex<Vec<(usize, Response)>>,
}

impl Wake {
    /// A new eventfd and an empty list.
    pub fn new() -> io::Result<Wake> {
        // SAFETY: eventfd takes integers and returns a new descriptor or -1.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Wake {
            fd,
            done: Mutex::new(Vec::new()),
        })
    }

    /// Called on a rayon thread: queues the answer for connection `key` and wakes the ring.
    pub fn post(&self, key: usize, resp: Response) {
        let mut done = self.done.lock().unwrap_or_else(PoisonError::into_inner);
        done.push((key, resp));
        drop(done);
        let one = 1u64;
        // SAFETY: writes 8 bytes from a live u64 to our eventfd; it cannot fail short of a
        // counter overflow, and the ring reads the counter back to zero.
        unsafe { libc::write(self.fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }

    /// The answers posted since the last call.
    pub fn take(&self) -> Vec<(usize, Response)> {
        std::mem::take(&mut *self.done.lock().unwrap_or_else(PoisonError::into_inner))
    }
}
