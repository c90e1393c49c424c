//! What a ring keeps for one connection, and how it answers requests and submits its IO.
//!
//! The rule that keeps the kernel out of freed memory: an entry counts the completions still to
//! come for it (`inflight`, a compute job out on rayon counted too), and it leaves the slab only
//! once it is closing and that count is zero; closing cancels what is in flight, then waits. The
//! rule that keeps a send's bytes still: while a send is in flight the `Connection` is not driven
//! and not fed (feeding may queue a `100 Continue` or an error answer), so the output the send
//! points into does not move. The recv may stay armed meanwhile: it names no memory of ours, and
//! what it brings is parked until the send is back.

use super::bufring::{Parked, LEN};
use super::sqe::{push, token, Op};
use super::wake::Wake;
use crate::admission::ConnGuard;
use crate::server::Conn;
use crate::server::Ctx;
use common::handler::run_job;
use common::{Connection, Reply, Request, Response};
use io_uring::types::{Fd, Timespec};
use io_uring::{opcode, squeue::Flags, IoUring};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::ptr;
use std::sync::Arc;
use std::time::Instant;

/// A connection and what the ring has in flight for it. Boxed in the slab: a slab of 10,000
/// entries inline grows by copying, and the old copies stay resident (the c10k bench showed about
/// twice the bytes per idle connection). Nothing an SQE points at lives in it directly (the output a
/// send names is the connection's heap buffer, a delayed answer's timespec is in its `Pending`).
pub struct Entry {
    stream: TcpStream,
    pub(super) conn: Conn,
    /// Tells this entry from an earlier one under the same slab key, for the deadline heap.
    pub(super) serial: u64,
    pub(super) recv: Recv,
    /// A send is in flight.
    pub(super) sending: bool,
    /// When that send must be done: a client that stops reading cannot hold the connection for
    /// ever.
    pub(super) send_deadline: Option<Instant>,
    /// The deadline this entry is queued under in the worker's heap, if any.
    pub(super) queued: Option<Instant>,
    /// Buffers received that the connection cannot take yet.
    pub(super) parked: Parked,
    /// The peer's EOF arrived behind the parked buffers.
    pub(super) parked_eof: bool,
    /// Completions still to come, plus a compute job out on rayon.
    pub(super) inflight: u32,
    pub(super) closing: bool,
    /// The request the service is answering in its own time.
    pending: Option<Box<Pending>>,
    _guard: ConnGuard,
}

/// Where the connection's receiving stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recv {
    /// No recv in flight.
    Off,
    /// A recv is in flight (a multishot one stays armed over many completions).
    Armed,
    /// A recv is in flight and a cancel of it is on its way (too many buffers parked).
    Cancelling,
}

struct Pending {
    req: Request,
    started: Instant,
    answer: Answer,
    /// A `Reply::Delayed`'s wait, which its `Timeout` SQE points at.
    delay: Timespec,
}

enum Answer {
    /// `Reply::Delayed`: sent when its `Timeout` completes.
    Timer(Response),
    /// `Reply::Compute`: on rayon.
    Rayon,
    /// Ready to be handed to the connection.
    Done(Response),
}

impl Entry {
    /// A connection just accepted.
    pub fn new(stream: TcpStream, conn: Conn, serial: u64, guard: ConnGuard) -> Entry {
        Entry {
            stream,
            conn,
            serial,
            recv: Recv::Off,
            sending: false,
            send_deadline: None,
            queued: None,
            parked: Parked::default(),
            parked_eof: false,
            inflight: 0,
            closing: false,
            pending: None,
            _guard: guard,
        }
    }

    /// The deadline that now runs: the send's while one is in flight, else the connection's.
    pub(super) fn deadline(&self) -> Option<Instant> {
        if self.sending {
            self.send_deadline
        } else {
            self.conn.poll_timeout()
        }
    }

    /// Hands in an answer that has come, then answers every ready request the service answers at
    /// once, so pipelined answers leave in one send. Stops at an answer that takes its time.
    /// `now` is the loop's time for this batch of completions: it starts the next deadline, dates
    /// the answers, and times them for the access log.
    pub(super) fn answer_ready(
        &mut self,
        ctx: &Ctx,
        ring: &mut IoUring,
        wake: &Arc<Wake>,
        key: usize,
        now: Instant,
    ) {
        if let Some(p) = self
            .pending
            .take_if(|p| matches!(p.answer, Answer::Done(_)))
        {
            let Answer::Done(resp) = p.answer else {
                unreachable!("matched just above");
            };
            respond(ctx, &mut self.conn, &p.req, &resp, p.started, now);
        }
        while self.pending.is_none() {
            let Some(req) = self.conn.next_request() else {
                return;
            };
            let started = now;
            let (answer, delay) = match ctx.answer(&req) {
                Reply::Ready(resp) => {
                    respond(ctx, &mut self.conn, &req, &resp, started, now);
                    continue;
                }
                Reply::Delayed(wait, resp) => (Answer::Timer(resp), Some(wait)),
                Reply::Compute(job) => {
                    self.inflight += 1;
                    let wake = wake.clone();
                    rayon::spawn(move || wake.post(key, run_job(job)));
                    (Answer::Rayon, None)
                }
            };
            let pending = self.pending.insert(Box::new(Pending {
                req,
                started,
                answer,
                delay: delay.map_or_else(Timespec::new, Timespec::from),
            }));
            if delay.is_some() {
                self.inflight += 1;
                let timer = opcode::Timeout::new(&pending.delay).build();
                // SAFETY: the timespec is in the boxed `Pending`, which stays until this timer
                // has completed (its answer is taken only then, and the entry goes only once
                // nothing is in flight); the kernel copies it at submission anyway.
                unsafe { push(ring, &[timer.user_data(token(Op::Delay, key))]) };
            }
        }
    }

    /// The timer of a `Reply::Delayed` completed: its answer can go.
    pub(super) fn delay_over(&mut self) {
        if let Some(p) = self.pending.as_mut() {
            if let Answer::Timer(resp) = std::mem::replace(&mut p.answer, Answer::Rayon) {
                p.answer = Answer::Done(resp);
            }
        }
    }

    /// The answer of a `Reply::Compute` came back from rayon.
    pub(super) fn computed(&mut self, resp: Response) {
        if let Some(p) = self.pending.as_mut() {
            p.answer = Answer::Done(resp);
        }
    }

    /// Whether the timer of a `Reply::Delayed` is in flight.
    pub(super) fn timer_running(&self) -> bool {
        matches!(
            self.pending.as_deref(),
            Some(Pending {
                answer: Answer::Timer(_),
                ..
            })
        )
    }

    /// Submits a send of all the output, to be done by `deadline`.
    pub(super) fn submit_send(
        &mut self,
        ring: &mut IoUring,
        key: usize,
        deadline: Option<Instant>,
    ) {
        let out = self.conn.output();
        let len = out.len().min(u32::MAX as usize) as u32;
        let send = opcode::Send::new(Fd(self.stream.as_raw_fd()), out.as_ptr(), len)
            .flags(libc::MSG_NOSIGNAL)
            .build()
            .user_data(token(Op::Send, key));
        self.sending = true;
        self.send_deadline = deadline;
        self.inflight += 1;
        // SAFETY: the bytes are the connection's output, a heap buffer that stays put when the
        // entry moves; nothing changes that output until the send's completion clears `sending`.
        unsafe { push(ring, &[send]) };
    }

    /// Arms a recv into buffers of the ring's group: multishot (it stays armed until it fails,
    /// is cancelled or the peer closes), or one recv where the kernel refuses that.
    pub(super) fn submit_recv(&mut self, ring: &mut IoUring, group: u16, key: usize, multi: bool) {
        let fd = Fd(self.stream.as_raw_fd());
        let recv = if multi {
            opcode::RecvMulti::new(fd, group).build()
        } else {
            opcode::Recv::new(fd, ptr::null_mut(), LEN as u32)
                .buf_group(group)
                .build()
                .flags(Flags::BUFFER_SELECT)
        };
        self.recv = Recv::Armed;
        self.inflight += 1;
        // SAFETY: the recv names no memory of ours: the kernel picks a buffer of the registered
        // group, which stays registered while the ring has requests.
        unsafe { push(ring, &[recv.user_data(token(Op::Recv, key))]) };
    }
}

/// Counts and queues one answer (the last one, Connection: close, when stopping).
fn respond(
    ctx: &Ctx,
    conn: &mut Connection,
    req: &Request,
    resp: &Response,
    started: Instant,
    now: Instant,
) {
    ctx.record(req, resp, started);
    if crate::shutdown::get().requested() {
        conn.shutdown();
    }
    conn.respond(resp, now);
}
