//! Accepting on ring 0 and dealing the connections round-robin to every ring.
//!
//! One multishot accept (Linux 5.19+) keeps accepting until cancelled or until an error ends it;
//! older kernels refuse it with EINVAL, and then one single-shot accept is submitted per
//! connection. Out of descriptors (EMFILE), the accept is cancelled and a `Timeout` on the ring
//! brings it back after the pause [`Backoff`] says (the one policy of `admission`), so a full
//! table does not spin the loop. Each new descriptor goes to
//! the next ring in turn: to this one directly, to another through `IORING_OP_MSG_RING`, which
//! posts a completion carrying the descriptor straight into that ring's queue.

use super::sqe::{push, token, Op};
use crate::admission::{AcceptFailed, Backoff};
use io_uring::types::{Fd, Timespec};
use io_uring::{cqueue, opcode, squeue, IoUring};
use std::io;
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd, RawFd};

/// The accepting side of one ring (only ring 0 accepts).
pub struct Acceptor {
    listener: RawFd,
    /// The descriptors of all rings, this one first; empty on rings that do not accept.
    rings: Vec<RawFd>,
    next: usize,
    multishot: bool,
    accepting: bool,
    armed: bool,
    backing_off: bool,
    backoff: Backoff,
    /// The pause of the back-off timer in flight; boxed, so it stays put meanwhile.
    pause: Box<Timespec>,
}

impl Acceptor {
    /// Accepts on `listener` and deals to `rings` (this ring first), or, with no rings, never
    /// accepts.
    pub fn new(listener: RawFd, rings: Vec<RawFd>) -> Acceptor {
        Acceptor {
            listener,
            accepting: !rings.is_empty(),
            rings,
            next: 0,
            multishot: true,
            armed: false,
            backing_off: false,
            backoff: Backoff::default(),
            pause: Box::new(Timespec::new()),
        }
    }

    /// Submits the accept, unless one is armed, accepting stopped, or it is backing off.
    pub fn arm(&mut self, ring: &mut IoUring) {
        if !self.accepting || self.armed || self.backing_off {
            return;
        }
        let fd = Fd(self.listener);
        let sqe = if self.multishot {
            opcode::AcceptMulti::new(fd)
                .flags(libc::SOCK_CLOEXEC)
                .build()
        } else {
            opcode::Accept::new(fd, std::ptr::null_mut(), std::ptr::null_mut())
                .flags(libc::SOCK_CLOEXEC)
                .build()
        };
        self.armed = true;
        // SAFETY: no peer address is asked for, so the accept writes no memory of ours; the
        // listener outlives every ring.
        unsafe { push(ring, &[sqe.user_data(token(Op::Accept, 0))]) };
    }

    /// An accept completed: the new connection, if it brought one. Submits the next accept.
    pub fn on_accept(&mut self, ring: &mut IoUring, result: i32, flags: u32) -> Option<OwnedFd> {
        self.armed = self.multishot && cqueue::more(flags);
        let mut accepted = None;
        if result >= 0 {
            self.backoff.succeeded();
            // SAFETY: a successful accept's result is a new descriptor that nothing else owns.
            accepted = Some(unsafe { OwnedFd::from_raw_fd(result) });
        } else if result == -libc::EINVAL && self.multishot {
            self.multishot = false; // a kernel without multishot accept: one SQE per accept
        } else if result == -libc::EINVAL && self.accepting {
            eprintln!("zoo: accept: the listener refuses io_uring accepts; no longer accepting");
            self.accepting = false;
        } else if !self.backing_off {
            let e = io::Error::from_raw_os_error(-result);
            if let AcceptFailed::Pause(pause) = self.backoff.on_error(&e) {
                // Out of descriptors: accepting again at once would spin. The backlog keeps the
                // clients meanwhile.
                self.backing_off = true;
                self.cancel(ring);
                *self.pause = pause.into();
                let timer = opcode::Timeout::new(&*self.pause).build();
                // SAFETY: the timespec is boxed in the acceptor, which outlives the ring's
                // requests, and is not written again until this timer completed.
                unsafe { push(ring, &[timer.user_data(token(Op::Backoff, 0))]) };
            }
        }
        // Other errors (ECONNABORTED, ECANCELED on a stop): the peer or we gave up; go on.
        self.arm(ring);
        accepted
    }

    /// The back-off after EMFILE is over: accept again.
    pub fn on_backoff(&mut self, ring: &mut IoUring) {
        self.backing_off = false;
        self.arm(ring);
    }

    /// Stops accepting for good (graceful stop).
    pub fn stop(&mut self, ring: &mut IoUring) {
        self.accepting = false;
        self.cancel(ring);
        // Cancelling the accept is not enough: the kernel would still complete handshakes into
        // the backlog, and those clients would be reset at exit. Shutting the listener's read
        // side refuses them now, as the other models' closed listeners do.
        // SAFETY: shutdown(2) on the listening descriptor, which outlives every ring.
        unsafe { libc::shutdown(self.listener, libc::SHUT_RD) };
    }

    fn cancel(&mut self, ring: &mut IoUring) {
        if self.armed {
            let cancel = opcode::AsyncCancel::new(token(Op::Accept, 0)).build();
            // SAFETY: a cancel names no memory.
            unsafe { push(ring, &[cancel.user_data(token(Op::Cancel, 0))]) };
        }
    }

    /// Deals a new connection to the next ring in turn: returns it when it is this ring's turn,
    /// otherwise sends it on.
    pub fn deal(&mut self, ring: &mut IoUring, fd: OwnedFd) -> Option<OwnedFd> {
        let turn = self.next;
        self.next = (turn + 1) % self.rings.len().max(1);
        if turn == 0 {
            return Some(fd);
        }
        let fd = fd.into_raw_fd();
        let handoff =
            opcode::MsgRingData::new(Fd(self.rings[turn]), fd, token(Op::Handoff, 0), None)
                .build()
                .flags(squeue::Flags::SKIP_SUCCESS)
                .user_data(token(Op::HandedOff, fd as usize));
        // SAFETY: a message names no memory: the target ring gets the SQE's fields only. If the
        // target is gone, the failure completes here (`Op::HandedOff`) and this ring serves it.
        unsafe { push(ring, &[handoff]) };
        None
    }
}
