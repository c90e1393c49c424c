//! How completions move a connection on: recv and send results, timeouts, delayed and computed
//! answers, the graceful stop, and closing (cancel what is in flight, free when all is back).

use super::sqe::{push, token, Op};
use super::worker::Worker;
use common::{Response, Want};
use io_uring::{cqueue, opcode};
use std::time::Instant;

impl Worker<'_> {
    /// Moves a connection on until it waits for a completion: answers what it can, then submits
    /// the send or the recv, or closes.
    pub(super) fn drive(&mut self, key: usize) {
        loop {
            let Some(e) = self.conns.get_mut(key) else {
                return;
            };
            if e.closing || e.io.is_some() {
                return; // the completion will drive it
            }
            if self.draining {
                e.conn.shutdown();
            }
            e.answer_ready(self.ctx, &mut self.ring, &self.wake, key);
            match e.conn.want() {
                Want::Write => e.submit_send(&mut self.ring, key, self.ctx.limits.body_timeout),
                Want::Read => {
                    let now = Instant::now();
                    if e.conn.poll_timeout().is_some_and(|at| at <= now) {
                        e.conn.handle_timeout(now);
                        continue;
                    }
                    e.submit_recv(&mut self.ring, self.bufs.group(), key, now);
                    // Idle between requests: give the read and write buffers back.
                    e.conn.release_buffers();
                }
                Want::Close => self.close(key),
                Want::Wait | Want::Handle => {}
            }
            return;
        }
    }

    /// A recv completed: feed the bytes in, or apply the timeout that cancelled it.
    pub(super) fn on_recv(&mut self, key: usize, result: i32, flags: u32) {
        let buffer = cqueue::buffer_select(flags);
        let Some(e) = self.conns.get_mut(key) else {
            // Cannot happen (an entry outlives its completions), but never lose a buffer.
            if let Some(id) = buffer {
                self.bufs.give_back(id);
            }
            return;
        };
        e.io = None;
        e.inflight -= 1;
        let now = Instant::now();
        if e.closing {
            if let Some(id) = buffer {
                self.bufs.give_back(id);
            }
            return self.release(key);
        }
        match (result, buffer) {
            (n, Some(id)) if n > 0 => {
                e.conn.feed(self.bufs.get(id, n as usize), now);
                self.bufs.give_back(id);
            }
            (0, _) => e.conn.received(0, now),
            // Our link timeout fired: the connection decides (408, or a quiet close when idle).
            (r, _) if r == -libc::ECANCELED => e.conn.handle_timeout(now),
            // No free buffer in this batch, or interrupted: just submit the recv again.
            (r, _) if r == -libc::ENOBUFS || r == -libc::EINTR || r == -libc::EAGAIN => {}
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
        e.io = None;
        e.inflight -= 1;
        if e.closing {
            return self.release(key);
        }
        match result {
            n if n > 0 => e.conn.consume_output(n as usize),
            r if r == -libc::EINTR || r == -libc::EAGAIN => {}
            // The peer went away, or did not read for a whole body timeout.
            _ => return self.close(key),
        }
        self.drive(key);
    }

    /// The link timeout of a recv or send completed (fired or cancelled): only counted; the
    /// IO's own completion says what happened.
    pub(super) fn on_expire(&mut self, key: usize) {
        if let Some(e) = self.conns.get_mut(key) {
            e.inflight -= 1;
            self.release(key);
        }
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
        if let Some(op) = e.io {
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
