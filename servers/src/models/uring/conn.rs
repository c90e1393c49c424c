//! How completions move a connection on: recv and send results, deadlines, delayed and computed
//! answers, the graceful stop, and closing (cancel what is in flight, free when all is back).

use super::entry::Recv;
use super::sqe::{push, token, Op};
use super::worker::Worker;
use common::{Response, Want};
use io_uring::{cqueue, opcode};
use std::time::Instant;

/// Buffers a connection may park before its recv is cancelled: a client that pipelines a flood
/// while its answers cannot leave meets TCP's flow control, not a growing queue here.
const MAX_PARKED: usize = 4;

impl Worker<'_> {
    /// Moves a connection on until it waits for a completion: answers what it can, then submits
    /// the send or arms the recv, or closes; then makes sure its deadline is queued.
    pub(super) fn drive(&mut self, key: usize) {
        loop {
            let Some(e) = self.conns.get_mut(key) else {
                return;
            };
            if e.closing || e.sending {
                return; // the completion will drive it
            }
            if self.draining {
                e.conn.shutdown();
            }
            e.answer_ready(self.ctx, &mut self.ring, &self.wake, key, self.now);
            match e.conn.want() {
                Want::Write => {
                    let deadline = self.now.checked_add(self.ctx.limits.body_timeout);
                    e.submit_send(&mut self.ring, key, deadline);
                    // The answer is out of the read buffer's way: it serves the next connection
                    // with input while this one's send is in flight.
                    e.conn.release_input_into(&mut self.spare);
                }
                Want::Read if e.parked.len() > 0 || e.parked_eof => {
                    // What came while the connection could not take it, in order.
                    e.conn.reuse_buffers(&mut self.spare);
                    while let Some((id, n)) = self.bufs.unpark(&mut e.parked) {
                        e.conn.feed(self.bufs.get(id, n), self.now);
                        self.bufs.give_back(id);
                    }
                    if std::mem::take(&mut e.parked_eof) {
                        e.conn.received(0, self.now);
                    }
                    continue;
                }
                Want::Read => {
                    if e.conn.poll_timeout().is_some_and(|at| at <= self.now) {
                        e.conn.handle_timeout(self.now);
                        continue;
                    }
                    if e.recv == Recv::Off {
                        let group = self.bufs.group();
                        e.submit_recv(&mut self.ring, group, key, self.multishot_recv);
                    }
                    // Idle between requests: the read and write buffers go back, to the spare
                    // ones the next connection with input takes.
                    e.conn.release_buffers_into(&mut self.spare);
                }
                Want::Close => return self.close(key),
                Want::Wait | Want::Handle => {}
            }
            let at = e.deadline();
            return self.deadlines.schedule(&mut e.queued, at, key, e.serial);
        }
    }

    /// Applies the deadlines that have passed by `now`.
    pub(super) fn expire(&mut self, now: Instant) {
        while let Some((at, key, serial)) = self.deadlines.pop_due(now) {
            let Some(e) = self.conns.get_mut(key) else {
                continue;
            };
            if e.serial != serial || e.queued != Some(at) || e.closing {
                continue; // a stale item: the entry is gone, or queued again since
            }
            e.queued = None;
            match e.deadline() {
                // A send out for a whole body timeout: the client stopped reading.
                Some(at) if at <= now && e.sending => self.close(key),
                // The connection applies its own (408, or a quiet close when idle).
                Some(at) if at <= now => self.drive(key),
                later => self.deadlines.schedule(&mut e.queued, later, key, serial),
            }
        }
    }

    /// A recv completed (a multishot one says whether it is still armed): feed the bytes in, or
    /// park them while the connection cannot take them.
    pub(super) fn on_recv(&mut self, key: usize, result: i32, flags: u32) {
        let buffer = cqueue::buffer_select(flags);
        let Some(e) = self.conns.get_mut(key) else {
            // Cannot happen (an entry outlives its completions), but never lose a buffer.
            if let Some(id) = buffer {
                self.bufs.give_back(id);
            }
            return;
        };
        if !cqueue::more(flags) {
            e.recv = Recv::Off;
            e.inflight -= 1;
        }
        if e.closing {
            if let Some(id) = buffer {
                self.bufs.give_back(id);
            }
            return self.release(key);
        }
        // A completion that names a buffer hands it to us, whatever its result.
        let buffer = match buffer {
            Some(id) if result <= 0 => {
                self.bufs.give_back(id);
                None
            }
            buffer => buffer,
        };
        // A send in flight points into the output, which feeding may append to; and while the
        // service has a request, pipelined bytes would only pile up in the connection.
        let hold = e.sending || e.conn.want() != Want::Read || e.parked.len() > 0;
        match (result, buffer) {
            (n, Some(id)) if n > 0 && hold => {
                self.bufs.park(&mut e.parked, id, n as usize);
                if e.parked.len() > MAX_PARKED && e.recv == Recv::Armed {
                    e.recv = Recv::Cancelling;
                    let cancel = opcode::AsyncCancel::new(token(Op::Recv, key)).build();
                    // SAFETY: a cancel names no memory.
                    unsafe { push(&mut self.ring, &[cancel.user_data(token(Op::Cancel, key))]) };
                }
                return; // the send's completion or the answer drives it
            }
            (n, Some(id)) if n > 0 => {
                e.conn.reuse_buffers(&mut self.spare);
                e.conn.feed(self.bufs.get(id, n as usize), self.now);
                self.bufs.give_back(id);
            }
            (0, _) if hold => {
                e.parked_eof = true;
                return;
            }
            (0, _) => e.conn.received(0, self.now),
            // Cancelled for back-pressure, no free buffer in this batch, or interrupted: the recv
            // is armed again once the connection reads.
            (r, _)
                if r == -libc::ECANCELED
                    || r == -libc::ENOBUFS
                    || r == -libc::EINTR
                    || r == -libc::EAGAIN => {}
            // A kernel without multishot recv (before 6.0): one recv per completion from now on.
            (r, _) if r == -libc::EINVAL && self.multishot_recv => self.multishot_recv = false,
            // A reset or other error: nothing more can be said to this peer.
            _ => return self.close(key),
        }
        self.drive(key);
    }

    /// A send completed: some or all of the output is written.
    pub(super) fn on_send(&mut self, key: usize, result: i32) {
        let Some(e) = self.conns.get_mut(key) else {
            return;
        };
        e.sending = false;
        e.send_deadline = None;
        e.inflight -= 1;
        if e.closing {
            return self.release(key);
        }
        match result {
            n if n > 0 => e.conn.consume_output(n as usize),
            r if r == -libc::EINTR || r == -libc::EAGAIN => {}
            // The peer went away.
            _ => return self.close(key),
        }
        self.drive(key);
    }

    /// The timer of a `Reply::Delayed` completed: its answer can go.
    pub(super) fn on_delay(&mut self, key: usize) {
        let Some(e) = self.conns.get_mut(key) else {
            return;
        };
        e.inflight -= 1;
        e.delay_over();
        self.release(key);
        self.drive(key);
    }

    /// A `Reply::Compute` answer came back from rayon.
    pub(super) fn on_compute(&mut self, key: usize, resp: Response) {
        let Some(e) = self.conns.get_mut(key) else {
            return;
        };
        e.inflight -= 1;
        e.computed(resp);
        self.release(key);
        self.drive(key);
    }

    /// Graceful stop for one connection: idle closes now, busy finishes its answer.
    pub(super) fn stop_conn(&mut self, key: usize) {
        let Some(e) = self.conns.get_mut(key) else {
            return;
        };
        // Safe with a recv or send in flight: it changes the state, not the buffers.
        e.conn.shutdown();
        if e.conn.want() == Want::Close {
            self.close(key);
        } else {
            self.drive(key);
        }
    }

    /// Closes a connection: cancels what is in flight, and frees it once all has completed.
    pub(super) fn close(&mut self, key: usize) {
        let Some(e) = self.conns.get_mut(key) else {
            return;
        };
        if e.closing {
            return;
        }
        e.closing = true;
        while let Some((id, _)) = self.bufs.unpark(&mut e.parked) {
            self.bufs.give_back(id);
        }
        // A recv already being cancelled needs no second cancel.
        let recv = (e.recv == Recv::Armed).then_some(Op::Recv);
        let send = e.sending.then_some(Op::Send);
        for op in recv.into_iter().chain(send) {
            let cancel = opcode::AsyncCancel::new(token(op, key)).build();
            // SAFETY: a cancel names no memory.
            unsafe { push(&mut self.ring, &[cancel.user_data(token(Op::Cancel, key))]) };
        }
        if e.timer_running() {
            let remove = opcode::TimeoutRemove::new(token(Op::Delay, key)).build();
            // SAFETY: a timeout removal names no memory.
            unsafe { push(&mut self.ring, &[remove.user_data(token(Op::Cancel, key))]) };
        }
        self.release(key);
    }

    /// Frees a closing entry once nothing in flight can still name it.
    fn release(&mut self, key: usize) {
        if self
            .conns
            .get(key)
            .is_some_and(|e| e.closing && e.inflight == 0)
        {
            self.conns.remove(key);
        }
    }
}
