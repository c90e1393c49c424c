//! One ring on one thread: the completion loop, taking connections in, the way back from rayon,
//! and the graceful stop. Accepting is in `accept`, the connections are driven in `conn`.

use super::accept::Acceptor;
use super::bufring::BufRing;
use super::deadlines::Deadlines;
use super::entry::Entry;
use super::sqe::{has_reaped, push, take_reaped, token, untoken, Op};
use super::wake::Wake;
use super::{new_ring, Rings, BUFFER_GROUP, CQ_ENTRIES};
use crate::server::Ctx;
use crate::shutdown;
use common::Spare;
use io_uring::types::{CancelBuilder, Fd, SubmitArgs, Timespec};
use io_uring::{opcode, IoUring};
use slab::Slab;
use std::io;
use std::net::TcpStream;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One thread's ring and everything it serves. Field order is drop order: the ring closes before
/// the receive buffers it was lent go.
pub struct Worker<'a> {
    pub(super) ctx: &'a Ctx,
    pub(super) ring: IoUring,
    pub(super) bufs: BufRing,
    acceptor: Acceptor,
    pub(super) conns: Slab<Box<Entry>>,
    /// Buffers idle connections gave back, lent to the next that has input.
    pub(super) spare: Spare,
    /// Handed to each new entry, so the deadline heap can tell it from an earlier one.
    serial: u64,
    pub(super) deadlines: Deadlines,
    /// The time, read once per turn of the loop.
    pub(super) now: Instant,
    /// Until the kernel refuses it: recvs stay armed over many completions.
    pub(super) multishot_recv: bool,
    pub(super) wake: Arc<Wake>,
    /// Where the eventfd read lands: boxed, so it stays put while the read is in flight.
    wake_buf: Box<u64>,
    grace_ts: Box<Timespec>,
    pub(super) draining: bool,
    expired: bool,
}

impl<'a> Worker<'a> {
    /// Sets up ring `index` on this thread and waits for the others: all come up or none serves.
    pub fn new(
        ctx: &'a Ctx,
        listener: RawFd,
        index: usize,
        rings: &Rings,
    ) -> io::Result<Option<Worker<'a>>> {
        let made = new_ring().and_then(|ring| {
            let bufs = BufRing::register(&ring, BUFFER_GROUP)?;
            Ok((ring, bufs, Wake::new()?))
        });
        if let Ok((ring, _, _)) = &made {
            rings.fds[index].store(ring.as_raw_fd(), Relaxed);
        }
        rings.ready.wait();
        let (ring, bufs, wake) = made?;
        let peers: Vec<RawFd> = rings.fds.iter().map(|fd| fd.load(Relaxed)).collect();
        if peers.contains(&-1) {
            return Ok(None); // the ring that failed reports why
        }
        Ok(Some(Worker {
            ctx,
            ring,
            bufs,
            acceptor: Acceptor::new(listener, if index == 0 { peers } else { Vec::new() }),
            conns: Slab::new(),
            spare: Spare::new(),
            serial: 0,
            deadlines: Deadlines::default(),
            now: Instant::now(),
            multishot_recv: true,
            wake: Arc::new(wake),
            wake_buf: Box::new(0),
            grace_ts: Box::new(ctx.grace().into()),
            draining: false,
            expired: false,
        }))
    }

    /// Serves until the graceful stop is over (or `--grace` ran out).
    pub fn serve(mut self) -> io::Result<()> {
        self.acceptor.arm(&mut self.ring);
        let stop = opcode::PollAdd::new(Fd(shutdown::get().fd()), libc::POLLIN as u32);
        // SAFETY: a poll names no memory; the shutdown pipe lives as long as the process.
        unsafe {
            push(
                &mut self.ring,
                &[stop.build().user_data(token(Op::Stop, 0))],
            )
        };
        self.arm_wake();
        let mut cqes = Vec::with_capacity(CQ_ENTRIES as usize);
        while !(self.expired || self.draining && self.conns.is_empty()) {
            // Submit, and wait for a completion or the next deadline. ETIME: the deadline came.
            // Completions moved aside to make room are waiting: submit, but do not wait.
            let waited = match self.deadlines.next() {
                _ if has_reaped() => self.ring.submit(),
                Some(at) => {
                    let ts = Timespec::from(at.saturating_duration_since(self.now));
                    let args = SubmitArgs::new().timespec(&ts);
                    self.ring.submitter().submit_with_args(1, &args)
                }
                None => self.ring.submit_and_wait(1),
            };
            if let Err(e) = waited {
                if !matches!(
                    e.raw_os_error(),
                    Some(libc::EINTR | libc::EBUSY | libc::ETIME)
                ) {
                    return Err(e);
                }
            }
            self.now = Instant::now();
            take_reaped(&mut cqes);
            cqes.extend(
                self.ring
                    .completion()
                    .map(|c| (c.user_data(), c.result(), c.flags())),
            );
            for (user_data, result, flags) in cqes.drain(..) {
                self.complete(user_data, result, flags);
            }
            self.expire(self.now);
        }
        self.finish();
        Ok(())
    }

    fn complete(&mut self, user_data: u64, result: i32, flags: u32) {
        let (op, key) = untoken(user_data);
        match op {
            Op::Accept => {
                let accepted = self.acceptor.on_accept(&mut self.ring, result, flags);
                if let Some(fd) = accepted.and_then(|fd| self.acceptor.deal(&mut self.ring, fd)) {
                    self.admit(fd);
                }
            }
            Op::Handoff if result >= 0 => {
                // SAFETY: ring 0 accepted the descriptor and handed it here; nobody else owns it.
                self.admit(unsafe { OwnedFd::from_raw_fd(result) })
            }
            Op::HandedOff if result < 0 => {
                // SAFETY: the hand-off failed, so the descriptor ring 0 accepted came back to it
                // and is owned by nobody else.
                self.admit(unsafe { OwnedFd::from_raw_fd(key as RawFd) })
            }
            Op::Handoff | Op::HandedOff => {}
            Op::Stop => self.begin_drain(),
            Op::Wake => {
                for (key, resp) in self.wake.take() {
                    self.on_compute(key, resp);
                }
                if result >= 0 || result == -libc::EINTR {
                    self.arm_wake();
                } else {
                    let e = io::Error::from_raw_os_error(-result);
                    eprintln!("zoo: reading the compute eventfd: {e}; compute answers are lost");
                }
            }
            Op::Grace => self.expired = true,
            Op::Backoff => self.acceptor.on_backoff(&mut self.ring),
            Op::Recv => self.on_recv(key, result, flags),
            Op::Send => self.on_send(key, result),
            Op::Delay => self.on_delay(key),
            Op::Cancel => {}
        }
    }

    /// Takes in a new connection, or sheds it over `--max-connections`.
    fn admit(&mut self, fd: OwnedFd) {
        let stream = TcpStream::from(fd);
        // A new connection's send buffer has room for the 503: it cannot block.
        let Some(guard) = self.ctx.admission.admit(&stream) else {
            return;
        };
        let _ = stream.set_nodelay(true);
        let conn = self.ctx.connection(self.now);
        self.serial += 1;
        let entry = Entry::new(stream, conn, self.serial, guard);
        let key = self.conns.insert(Box::new(entry));
        self.drive(key);
    }

    fn arm_wake(&mut self) {
        let read = opcode::Read::new(
            Fd(self.wake.fd.as_raw_fd()),
            &mut *self.wake_buf as *mut u64 as *mut u8,
            8,
        );
        // SAFETY: the read lands in `wake_buf`, boxed in the worker; `finish` cancels the read
        // (or leaks the box) before the worker goes.
        unsafe {
            push(
                &mut self.ring,
                &[read.build().user_data(token(Op::Wake, 0))],
            )
        };
    }

    /// Graceful stop: no more accepts, idle connections close, busy ones finish, within `--grace`.
    fn begin_drain(&mut self) {
        if self.draining {
            return;
        }
        self.draining = true;
        self.acceptor.stop(&mut self.ring);
        let grace = opcode::Timeout::new(&*self.grace_ts).build();
        // SAFETY: the grace timespec is boxed in the worker, which outlives the ring's requests.
        unsafe { push(&mut self.ring, &[grace.user_data(token(Op::Grace, 0))]) };
        let keys: Vec<usize> = self.conns.iter().map(|(key, _)| key).collect();
        for key in keys {
            self.stop_conn(key);
        }
    }

    /// Leaves the ring with nothing in flight that names our memory, then lets it all go.
    fn finish(mut self) {
        let _ = self.ring.submit();
        let wait = Timespec::from(Duration::from_secs(1));
        let cancelled = self
            .ring
            .submitter()
            .register_sync_cancel(Some(wait), CancelBuilder::any());
        match cancelled {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                // Some request may still write into a buffer: leak them all, the process is
                // about to exit anyway.
                std::mem::forget(std::mem::take(&mut self.conns));
                Box::leak(std::mem::replace(&mut self.wake_buf, Box::new(0)));
            }
            _ => self.bufs.unregister(&self.ring),
        }
    }
}
