//! What a ring keeps for one connection, and how it answers requests and submits its IO.
//!
//! The rule that keeps the kernel out of freed memory: an entry counts the completions still to
//! come for it (`inflight`, a compute job out on rayon counted too), and it leaves the slab only
//! once it is closing and that count is zero; closing cancels what is in flight, then waits. The
//! rule that keeps a send's bytes still: at most one recv or send is in flight per connection
//! (`io`), and while one is, the `Connection` is not driven, so the output a send points into does
//! not move.

use super::bufring::LEN;
use super::sqe::{push, token, Op};
use super::wake::Wake;
use crate::acceptor::ConnGuard;
use crate::server::Ctx;
use common::handler::run_job;
use common::{Connection, Reply, Request, Response};
use io_uring::types::{Fd, Timespec};
use io_uring::{opcode, squeue::Flags, IoUring};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::ptr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A connection and what the ring has in flight for it. Boxed in the slab, so the timespecs the
/// SQEs point at stay put while the slab grows.
pub struct Entry {
    stream: TcpStream,
    pub(super) conn: Connection,
    /// The recv or send in flight, if any (its link timeout rides along).
    pub(super) io: Option<Op>,
    /// Completions still to come, plus a compute job out on rayon.
    pub(super) inflight: u32,
    pub(super) closing: bool,
    /// The request the service is answering in its own time.
    pending: Option<Box<Pending>>,
    io_ts: Timespec,
    delay_ts: Timespec,
    _guard: ConnGuard,
}

struct Pending {
    req: Request,
    started: Instant,
    answer: Answer,
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
    pub fn new(stream: TcpStream, conn: Connection, guard: ConnGuard) -> Entry {
        Entry {
            stream,
            conn,
            io: None,
            inflight: 0,
            closing: false,
            pending: None,
            io_ts: Timespec::new(),
            delay_ts: Timespec::new(),
            _guard: guard,
        }
    }

    /// Hands in an answer that has come, then answers every ready request the service answers at
    /// once, so pipelined answers leave in one send. Stops at an answer that takes its time.
    pub(super) fn answer_ready(
        &mut self,
        ctx: &Ctx,
        ring: &mut IoUring,
        wake: &Arc<Wake>,
        key: usize,
    ) {
        if let Some(p) = self
            .pending
            .take_if(|p| matches!(p.answer, Answer::Done(_)))
        {
            let Answer::Done(resp) = p.answer else {
                unreachable!("matched just above");
            };
            respond(ctx, &mut self.conn, &p.req, &resp, p.started);
        }
        while self.pending.is_none() {
            let Some(req) = self.conn.next_request() else {
                return;
            };
            let started = Instant::now();
            let answer = match ctx.answer(&req) {
                Reply::Ready(resp) => {
                    respond(ctx, &mut self.conn, &req, &resp, started);
                    continue;
                }
                Reply::Delayed(wait, resp) => {
                    self.delay_ts = wait.into();
                    self.inflight += 1;
                    let timer = opcode::Timeout::new(&self.delay_ts).build();
                    // SAFETY: the timespec lives in the boxed entry, freed only after this
                    // timer's completion (and the kernel copies it at submission anyway).
                    unsafe { push(ring, &[timer.user_data(token(Op::Delay, key))]) };
                    Answer::Timer(resp)
                }
                Reply::Compute(job) => {
                    self.inflight += 1;
                    let wake = wake.clone();
                    rayon::spawn(move || wake.post(key, run_job(job)));
                    Answer::Rayon
                }
            };
            self.pending = Some(Box::new(Pending {
                req,
                started,
                answer,
            }));
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

    /// Submits a send of all the output, with a timeout: a client that stops reading cannot
    /// hold the connection for ever.
    pub(super) fn submit_send(&mut self, ring: &mut IoUring, key: usize, timeout: Duration) {
        let out = self.conn.output();
        let len = out.len().min(u32::MAX as usize) as u32;
        let send = opcode::Send::new(Fd(self.stream.as_raw_fd()), out.as_ptr(), len)
            .flags(libc::MSG_NOSIGNAL)
            .build()
            .flags(Flags::IO_LINK)
            .user_data(token(Op::Send, key));
        self.io_ts = timeout.into();
        let expire = opcode::LinkTimeout::new(&self.io_ts).build();
        self.io = Some(Op::Send);
        self.inflight += 2;
        // SAFETY: the bytes are the connection's output, in the boxed entry; nothing changes
        // that output until the send's completion clears `io`. The timespec lives in the same
        // entry, which is freed only after both completions.
        unsafe { push(ring, &[send, expire.user_data(token(Op::Expire, key))]) };
    }

    /// Submits a recv into a buffer of the ring's group, with the connection's deadline.
    pub(super) fn submit_recv(&mut self, ring: &mut IoUring, group: u16, key: usize, now: Instant) {
        let recv = opcode::Recv::new(Fd(self.stream.as_raw_fd()), ptr::null_mut(), LEN as u32)
            .buf_group(group)
            .build()
            .flags(Flags::BUFFER_SELECT)
            .user_data(token(Op::Recv, key));
        self.io = Some(Op::Recv);
        let Some(at) = self.conn.poll_timeout() else {
            self.inflight += 1;
            // SAFETY: the recv names no memory of ours: the kernel picks a buffer of the
            // registered group, which stays registered while the ring has requests.
            return unsafe { push(ring, &[recv]) };
        };
        self.io_ts = at.saturating_duration_since(now).into();
        let expire = opcode::LinkTimeout::new(&self.io_ts).build();
        self.inflight += 2;
        // SAFETY: the recv names no memory of ours (as above); the timespec lives in the boxed
        // entry, which is freed only after both completions.
        unsafe {
            push(
                ring,
                &[
                    recv.flags(Flags::IO_LINK),
                    expire.user_data(token(Op::Expire, key)),
                ],
            )
        };
    }
}

/// Counts and queues one answer (the last one, Connection: close, when stopping).
fn respond(ctx: &Ctx, conn: &mut Connection, req: &Request, resp: &Response, started: Instant) {
    ctx.record(req, resp, started);
    if crate::shutdown::get().requested() {
        conn.shutdown();
    }
    conn.respond(resp, Instant::now());
}
