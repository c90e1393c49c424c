//! The scoreboard: server-wide figures for the process models (fork, prefork), in memory that
//! every process of the server shares, as Apache's scoreboard is.
//!
//! It is one anonymous `MAP_SHARED` mapping, made before the first `fork`: each child inherits the
//! mapping, not a copy, so a request counted by any process shows in `/info` and `/metrics`
//! whichever process answers them. It holds the [`Counters`] (atomics only, `repr(C)`) and one
//! slot per prefork worker saying whether that worker has a connection open, so that the master
//! can close the count of a connection whose worker was killed in the middle of it. Atomic
//! read-modify-write works across processes on a shared mapping as it does across threads,
//! provided the atomics are lock-free, which the `cfg` below checks at build time.

use common::stats::Counters;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};

#[cfg(not(all(target_has_atomic = "64", target_has_atomic = "8")))]
compile_error!("the scoreboard needs lock-free 64-bit atomics to be shared between processes");

/// Most prefork workers, one scoreboard slot each.
pub const MAX_WORKERS: usize = 1024;

/// Figures shared by every process of one server.
#[repr(C)]
pub struct Scoreboard {
    /// The server-wide counters the service reports.
    pub counters: Counters,
    /// Per prefork worker slot: whether that worker has a connection open.
    busy: [AtomicBool; MAX_WORKERS],
}

impl Scoreboard {
    /// Maps a zeroed scoreboard shared with every process forked after this call. It lives as long
    /// as the process (it is never unmapped).
    pub fn create() -> io::Result<&'static Scoreboard> {
        let size = std::mem::size_of::<Scoreboard>();
        // SAFETY: a fresh anonymous mapping; no existing memory is touched.
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                size,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if addr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the mapping is page-aligned (more than the struct's alignment), `size` bytes
        // long, zero-filled (all zeros is a valid value of every atomic in it), and never
        // unmapped, so a shared `'static` reference to it is sound.
        Ok(unsafe { &*addr.cast::<Scoreboard>() })
    }

    /// Worker `slot` accepted a connection.
    pub fn opened(&self, slot: usize) {
        self.counters.connection_opened();
        self.busy[slot].store(true, SeqCst);
    }

    /// Worker `slot` closed its connection, or died: the master calls this for a dead worker, so a
    /// connection it had open is not counted forever. (A worker killed between the two steps of
    /// [`Scoreboard::opened`], a few instructions, stays counted: the figure is for display, and
    /// nothing is refused on it.)
    pub fn closed(&self, slot: usize) {
        if self.busy[slot].swap(false, SeqCst) {
            self.counters.connection_closed();
        }
    }
}
