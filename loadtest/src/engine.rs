//! The engine: one thread, one epoll loop, many non-blocking connections (wrk's design). No task
//! or allocation per request: a connection is a slot with a socket, a response decoder and a
//! fixed ring of requests in flight; every request is the same bytes, written from one buffer.
//!
//! # Theory of operation
//!
//! Time is nanoseconds since the run began, read once per readiness event. Every request has an
//! *intended* send time and an *actual* one. In closed loop they are equal: a connection sends as
//! soon as its answers are in. In open loop (`--rate`) the thread owns a share of the rate and
//! its request `j` is due at `(j + phase) * period`; request `j` belongs to connection
//! `j mod connections`, so each connection runs its own schedule at absolute times. A due request
//! is sent when its connection has room (fewer than `--pipeline` in flight); if it cannot, it
//! goes late, and its latency still counts from the intended time: a stalled server shows in the
//! latency of every request it held back, not just the one it stalled on (coordinated omission,
//! as wrk2 corrects it). The time from the actual send is kept as service time.
//!
//! A connection's life: `Connecting` until writable, `Open` while requests go out and responses
//! come in, `Draining` once a response ends the connection (`--close`, or `Connection: close`
//! from the server): it waits for the server's FIN, so the TIME_WAIT stays on the server as it
//! would with real clients. Then it connects again. Requests already written behind a closing
//! response were never read by the server: they go again on the next connection (counted as
//! retried, with their intended times kept). A failure (connect, read, write, parse, timeout)
//! fails every request in flight on that connection, each counted once by kind; a failed
//! connect fails the request it was opened for, then the slot waits [`BACKOFF`] before retrying
//! so a dead server does not become a socket storm.
//!
//! In `--close` mode a request's service time includes its TCP handshake.
//!
//! Sockets are registered once, edge-triggered for both directions: no `epoll_ctl` per request.
//! A read shorter than the buffer drained the socket, so the next edge will come: one `read`
//! per readiness, no extra read for `EAGAIN`. Responses read together are answered with one
//! write of as many requests.
//!
//! The end: with `-d`, no request is issued (closed loop) or scheduled (open loop) at or after
//! the deadline, and the requests in flight are waited for (each within `--timeout`). With `-n`,
//! each thread has its share of the count. A request is measured when its intended time is at
//! or after the end of the warm-up.
//!
//! With `--engine uring` the same state machine runs on io_uring completions instead of epoll
//! readiness: a connect waits on a `POLL_ADD`, each open connection keeps one multishot receive
//! armed into the ring's provided buffers, and a write is a queued send whose completion sends
//! the rest or what is due next. Everything queued goes to the kernel in the one call that also
//! waits. The clock is read once per completion batch: the kernel produced the batch's
//! receives as the wait returned. A completion of a connection since closed is known by its
//! generation and dropped; closing a connection cancels what the ring has in flight on it.
//!
//! This file is longer than most on purpose: the slot, its states and the loop that moves them
//! are one state machine, and its rules read best side by side, as the theory above walks them.

use crate::stats::{ErrorKind, Recorder};
use crate::sys::{self, Completion, Op, Poller, Ring};
use common::client::{ClientError, ClientLimits, Event, ResponseDecoder};
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long a slot waits after a failed connect before it tries again.
pub const BACKOFF: Duration = Duration::from_millis(10);
/// How often timeouts, back-offs and the per-second figures are looked at.
const SWEEP_NS: u64 = 10_000_000;
/// Size of the thread's read buffer: one read takes many pipelined responses at once.
const READ_BUFFER: usize = 64 * 1024;
/// Most readiness events taken per wait.
const EVENTS: usize = 1024;
/// Size of each provided receive buffer with io_uring.
const RING_BUFFER: usize = 8 * 1024;
/// Provided receive buffers per connection with io_uring (within the bounds in [`Io::open`]).
const RING_BUFFERS_PER_CONN: usize = 2;

/// How the worker threads wait for the network and move bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Engine {
    /// Readiness from edge-triggered epoll; each read and write is a system call.
    Epoll,
    /// Completions from io_uring: the receives and sends of a batch go in one system call.
    Uring,
}

/// A worker's engine, opened.
pub enum Io {
    /// An epoll instance.
    Epoll(Poller),
    /// A ring, owning every buffer the kernel reads or writes.
    Uring(Box<Ring>),
}

impl Io {
    /// Opens `engine` for a thread of `plan` that owns `connections` slots.
    pub fn open(engine: Engine, plan: &Plan, connections: usize) -> io::Result<Io> {
        Ok(match engine {
            Engine::Epoll => Io::Epoll(Poller::new()?),
            Engine::Uring => {
                let buffers = (connections * RING_BUFFERS_PER_CONN).clamp(64, 8192) as u16;
                Io::Uring(Box::new(Ring::new(
                    connections,
                    buffers,
                    RING_BUFFER,
                    &plan.batch,
                )?))
            }
        })
    }
}

/// What every thread of a run does, fixed before it starts.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Where to connect.
    pub addr: SocketAddr,
    /// The request, repeated `pipeline` times: a write of `k` requests is a prefix of it.
    pub batch: Vec<u8>,
    /// Length of one request.
    pub request_len: usize,
    /// Most requests in flight per connection.
    pub pipeline: usize,
    /// The method is HEAD: responses have no body.
    pub head_request: bool,
    /// One connection per request.
    pub close: bool,
    /// Longest wait for a connection or a response, in ns.
    pub timeout: u64,
    /// End of the warm-up, in ns since the run began.
    pub measure_start: u64,
    /// With `-d`: no request is intended at or after this time (ns since the run began).
    pub stop_at: Option<u64>,
    /// With `-d`: the last per-second bin; the drain after the deadline counts in it.
    pub last_bin: Option<u64>,
    /// Number of threads.
    pub threads: usize,
}

/// One thread's part of the run.
#[derive(Debug, Clone, Copy)]
pub struct Share {
    /// The thread's index.
    pub index: usize,
    /// Connections it owns.
    pub connections: usize,
    /// Open loop: its requests per second.
    pub rate: Option<f64>,
    /// With `-n`: measured requests it issues.
    pub budget: Option<u64>,
}

/// The state of a connection slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// No socket.
    Idle,
    /// No socket; connect again at this time.
    Backoff(u64),
    /// Connect in progress.
    Connecting,
    /// Requests and responses flow.
    Open,
    /// The last response is in; waiting for the server to close.
    Draining,
}

/// A request written and not yet answered.
#[derive(Debug, Clone, Copy)]
struct InFlight {
    intended: u64,
    sent: u64,
    /// Open loop: the request's index on its connection's schedule.
    seq: u64,
    measured: bool,
}

struct Conn {
    stream: Option<TcpStream>,
    phase: Phase,
    /// When the phase began.
    since: u64,
    decoder: ResponseDecoder,
    /// Unconsumed bytes of a response cut by a read boundary (usually empty).
    carry: Vec<u8>,
    flight: VecDeque<InFlight>,
    /// Range of `Plan::batch` still to be written.
    write_from: usize,
    write_to: usize,
    /// Open loop: index of the next request of this connection's schedule.
    seq: u64,
    /// Counts the slot's connections, so that io_uring completions of an old one are known.
    generation: u32,
    /// io_uring: a send is in flight.
    sending: bool,
}

/// The open-loop schedule of one thread.
#[derive(Debug, Clone, Copy)]
struct Schedule {
    period_ns: f64,
    /// Offset in periods, so the threads' schedules interleave instead of coinciding.
    phase: f64,
    conns: u64,
    /// The next request not yet released.
    next: u64,
    /// Requests from this index on are never sent.
    limit: u64,
}

impl Schedule {
    fn at(&self, j: u64) -> u64 {
        ((j as f64 + self.phase) * self.period_ns) as u64
    }

    fn index(&self, conn: usize, seq: u64) -> u64 {
        conn as u64 + seq * self.conns
    }

    /// The first request intended at or after `t`.
    fn first_at(&self, t: u64) -> u64 {
        let mut j = (t as f64 / self.period_ns - self.phase).max(0.0) as u64;
        while self.at(j) < t {
            j += 1;
        }
        while j > 0 && self.at(j - 1) >= t {
            j -= 1;
        }
        j
    }
}

/// How the bytes of one read left a connection.
enum Verdict {
    /// More responses may follow.
    Continue,
    /// A response ended the connection.
    Closing,
    /// The connection failed.
    Failed(ErrorKind),
}

/// One generator thread.
pub struct Worker<'a> {
    plan: &'a Plan,
    base: Instant,
    io: Io,
    events: Vec<sys::Event>,
    done: Vec<Completion>,
    conns: Vec<Conn>,
    buf: Vec<u8>,
    rec: Recorder,
    schedule: Option<Schedule>,
    /// Closed loop with `-n`: measured requests still to issue.
    tickets: Option<u64>,
    /// Closed loop: new requests may still be issued.
    issuing: bool,
    interrupted: &'a AtomicBool,
    progress: &'a AtomicU64,
}

impl<'a> Worker<'a> {
    /// A worker for `share` of `plan`; `base` is the instant the run began.
    pub fn new(
        plan: &'a Plan,
        share: Share,
        base: Instant,
        io: Io,
        rec: Recorder,
        interrupted: &'a AtomicBool,
        progress: &'a AtomicU64,
    ) -> Worker<'a> {
        let limits = ClientLimits::default();
        let conns = (0..share.connections)
            .map(|_| {
                let mut decoder = ResponseDecoder::new(limits);
                decoder.set_head_request(plan.head_request);
                Conn {
                    stream: None,
                    phase: Phase::Idle,
                    since: 0,
                    decoder,
                    carry: Vec::new(),
                    flight: VecDeque::with_capacity(plan.pipeline),
                    write_from: 0,
                    write_to: 0,
                    seq: 0,
                    generation: 0,
                    sending: false,
                }
            })
            .collect();
        let schedule = share.rate.map(|rate| {
            let mut s = Schedule {
                period_ns: 1e9 / rate,
                phase: share.index as f64 / plan.threads as f64,
                conns: share.connections as u64,
                next: 0,
                limit: u64::MAX,
            };
            if let Some(stop) = plan.stop_at {
                s.limit = s.first_at(stop);
            }
            if let Some(n) = share.budget {
                s.limit = s
                    .limit
                    .min(s.first_at(plan.measure_start).saturating_add(n));
            }
            s
        });
        Worker {
            plan,
            base,
            io,
            events: Vec::with_capacity(EVENTS),
            done: Vec::with_capacity(EVENTS),
            conns,
            buf: vec![0; READ_BUFFER],
            rec,
            schedule,
            tickets: if share.rate.is_none() {
                share.budget
            } else {
                None
            },
            issuing: share.rate.is_none(),
            interrupted,
            progress,
        }
    }

    fn now(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64
    }

    /// Runs until the thread's share is done (or the run is interrupted), then reports.
    pub fn run(mut self) -> io::Result<()> {
        let cpu_start = sys::thread_cpu();
        let started = Instant::now();
        let now = self.now();
        // Open loop with --close connects when a request is due; otherwise connect up front, so
        // the first requests do not pay for handshakes.
        if !(self.plan.close && self.schedule.is_some()) {
            for i in 0..self.conns.len() {
                self.connect(i, now);
            }
        }
        let outcome = self.event_loop(now);
        let stopped = self.now();
        let cpu = sys::thread_cpu().since(cpu_start);
        self.rec.finish(cpu, started.elapsed(), stopped);
        outcome
    }

    fn event_loop(&mut self, now: u64) -> io::Result<()> {
        let mut next_sweep = now + SWEEP_NS;
        loop {
            let now = self.now();
            if self.interrupted.load(Ordering::Relaxed) {
                return Ok(());
            }
            self.check_deadline(now);
            self.release_due(now);
            if now >= next_sweep {
                self.sweep(now);
                next_sweep = now + SWEEP_NS;
            }
            self.rec.tick(now);
            self.progress.store(
                self.rec.tally.responses + self.rec.tally.error_total(),
                Ordering::Relaxed,
            );
            if self.finished() {
                return Ok(());
            }
            let wait = Duration::from_nanos(self.next_wake(now, next_sweep).saturating_sub(now));
            match &mut self.io {
                Io::Epoll(poller) => {
                    poller.wait(&mut self.events, wait)?;
                    for k in 0..self.events.len() {
                        let event = self.events[k];
                        let (token, flags) = (event.u64, event.events);
                        self.on_event(token as usize, flags);
                    }
                }
                Io::Uring(ring) => {
                    ring.wait(&mut self.done, wait)?;
                    // The kernel produced this batch's receives as the wait returned, and its
                    // sends leave at the next wait: one clock read stands for all of them.
                    let now = self.now();
                    for k in 0..self.done.len() {
                        self.on_completion(self.done[k], now);
                    }
                }
            }
        }
    }

    /// Closed loop with `-d`: nothing new is issued from the deadline on.
    fn check_deadline(&mut self, now: u64) {
        if self.plan.stop_at.is_some_and(|stop| now >= stop) {
            self.issuing = false;
        }
    }

    /// Whether everything this thread will ever send has been answered or has failed.
    fn finished(&self) -> bool {
        match &self.schedule {
            None => !self.issuing && self.conns.iter().all(|c| c.flight.is_empty()),
            Some(s) => {
                s.next >= s.limit
                    && self
                        .conns
                        .iter()
                        .enumerate()
                        .all(|(i, c)| c.flight.is_empty() && s.index(i, c.seq) >= s.limit)
            }
        }
    }

    fn next_wake(&self, now: u64, next_sweep: u64) -> u64 {
        let mut wake = next_sweep;
        if let Some(s) = &self.schedule {
            if s.next < s.limit {
                wake = wake.min(s.at(s.next));
            }
        } else if let Some(stop) = self.plan.stop_at.filter(|_| self.issuing) {
            wake = wake.min(stop);
        }
        wake.max(now)
    }

    /// Open loop: wakes the connection of every request that has come due.
    fn release_due(&mut self, now: u64) {
        loop {
            let Some(s) = self.schedule.as_mut() else {
                return;
            };
            if s.next >= s.limit || s.at(s.next) > now {
                return;
            }
            let c = (s.next % s.conns) as usize;
            s.next += 1;
            match self.conns[c].phase {
                Phase::Open => self.send_due(c, now),
                Phase::Idle => self.connect(c, now),
                _ => {}
            }
        }
    }

    fn on_event(&mut self, i: usize, flags: u32) {
        let Some(conn) = self.conns.get(i) else {
            return;
        };
        let now = self.now();
        match conn.phase {
            Phase::Connecting if flags & sys::FAILED != 0 => {
                self.connect_failed(i, ErrorKind::Connect, now)
            }
            Phase::Connecting if flags & sys::WRITABLE != 0 => {
                self.conns[i].phase = Phase::Open;
                self.arm_receive(i, now);
                self.send_due(i, now);
            }
            Phase::Open => {
                if flags & sys::READABLE != 0 {
                    self.read_ready(i, flags, now);
                }
                let conn = &self.conns[i];
                if conn.phase == Phase::Open
                    && flags & sys::WRITABLE != 0
                    && conn.write_from < conn.write_to
                {
                    self.flush(i, now);
                }
            }
            Phase::Draining => self.drain(i, flags, now),
            _ => {}
        }
    }

    /// io_uring: what came back for slot `i`; its buffer, if any, goes back to the kernel once
    /// its bytes are decoded. A completion of a connection already dropped is ignored.
    fn on_completion(&mut self, c: Completion, now: u64) {
        self.complete(c, now);
        if let (Some(bid), Io::Uring(ring)) = (c.buffer, &mut self.io) {
            ring.recycle(bid);
        }
    }

    fn complete(&mut self, c: Completion, now: u64) {
        let i = c.slot;
        let Some(conn) = self.conns.get(i) else {
            return;
        };
        if conn.stream.is_none() || !Ring::same_generation(conn.generation, c.generation) {
            return;
        }
        match (c.op, conn.phase) {
            // A poll's result is the readiness mask, in the bits epoll uses too.
            (Op::Connected, Phase::Connecting) if c.result < 0 => self.on_event(i, sys::FAILED),
            (Op::Connected, Phase::Connecting) => self.on_event(i, c.result as u32),
            // The buffers ran out (a burst larger than they hold): the receive ended; arm it
            // again, the buffers of this batch go back before the next wait.
            (Op::Received, Phase::Open | Phase::Draining) if c.result == -libc::ENOBUFS => {
                self.arm_receive(i, now)
            }
            (Op::Received, Phase::Open) => self.received(i, c.result, c.buffer, now),
            (Op::Received, Phase::Draining) if c.result > 0 => self.arm_receive(i, now),
            (Op::Received, Phase::Draining) => {
                self.close(i);
                self.reopen(i, now);
            }
            (Op::Sent, Phase::Open) => self.sent(i, c.result, now),
            _ => {}
        }
    }

    /// io_uring: keeps a receive in flight on slot `i` (epoll needs nothing: readiness comes).
    fn arm_receive(&mut self, i: usize, now: u64) {
        let conn = &self.conns[i];
        let (Io::Uring(ring), Some(_)) = (&mut self.io, conn.stream.as_ref()) else {
            return;
        };
        if ring.receive(i, conn.generation).is_err() {
            self.fail(i, ErrorKind::Read, now);
        }
    }

    /// io_uring: a receive on open slot `i` returned `result`.
    fn received(&mut self, i: usize, result: i32, buffer: Option<u16>, now: u64) {
        if result < 0 {
            return self.fail(i, ErrorKind::Read, now);
        }
        if result == 0 {
            return self.end_of_stream(i, now);
        }
        let n = result as usize;
        if now >= self.plan.measure_start {
            self.rec.bytes(n, now);
        }
        let Some(bid) = buffer else {
            // Bytes without a buffer: the kernel broke the provided-buffer contract.
            return self.fail(i, ErrorKind::Read, now);
        };
        match self.absorb(i, n, bid, now) {
            Verdict::Continue => {}
            Verdict::Closing => {
                self.begin_drain(i, 0, n, now);
                return self.arm_receive(i, now);
            }
            Verdict::Failed(kind) => return self.fail(i, kind, now),
        }
        self.arm_receive(i, now);
        self.send_due(i, now);
    }

    /// io_uring: a send on open slot `i` returned `result`.
    fn sent(&mut self, i: usize, result: i32, now: u64) {
        let conn = &mut self.conns[i];
        conn.sending = false;
        if result <= 0 {
            return self.fail(i, ErrorKind::Write, now);
        }
        conn.write_from += result as usize;
        if conn.write_from < conn.write_to {
            return self.flush(i, now);
        }
        conn.write_from = 0;
        conn.write_to = 0;
        self.send_due(i, now);
    }

    /// Opens slot `i`'s connection.
    fn connect(&mut self, i: usize, now: u64) {
        match sys::connect(&self.plan.addr) {
            Ok(stream) => {
                let conn = &mut self.conns[i];
                conn.generation = conn.generation.wrapping_add(1);
                let fd = stream.as_raw_fd();
                let watched = match &mut self.io {
                    Io::Epoll(poller) => poller.add(fd, i as u64),
                    Io::Uring(ring) => ring.poll_connected(i, conn.generation, fd),
                };
                if watched.is_err() {
                    return self.connect_failed(i, ErrorKind::Connect, now);
                }
                let conn = &mut self.conns[i];
                conn.stream = Some(stream);
                conn.phase = Phase::Connecting;
                conn.since = now;
                conn.decoder.reset();
                conn.carry.clear();
            }
            Err(_) => self.connect_failed(i, ErrorKind::Connect, now),
        }
    }

    /// Reads what slot `i` has, feeding the decoder; then sends what is due.
    fn read_ready(&mut self, i: usize, flags: u32, now: u64) {
        loop {
            let Some(stream) = self.conns[i].stream.as_ref() else {
                return;
            };
            match (&*stream).read(&mut self.buf) {
                Ok(0) => return self.end_of_stream(i, now),
                Ok(n) => {
                    if now >= self.plan.measure_start {
                        self.rec.bytes(n, now);
                    }
                    match self.absorb(i, n, 0, now) {
                        Verdict::Continue => {}
                        Verdict::Closing => return self.begin_drain(i, flags, n, now),
                        Verdict::Failed(kind) => return self.fail(i, kind, now),
                    }
                    if n < self.buf.len() {
                        if flags & sys::PEER_CLOSED != 0 {
                            return self.end_of_stream(i, now);
                        }
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return self.fail(i, ErrorKind::Read, now),
            }
        }
        self.send_due(i, now);
    }

    /// Decodes the `n` bytes just read (after any carried tail) and records each response;
    /// with io_uring they are in provided buffer `bid`.
    fn absorb(&mut self, i: usize, n: usize, bid: u16, now: u64) -> Verdict {
        let Worker {
            conns,
            buf,
            rec,
            plan,
            io,
            ..
        } = self;
        let conn = &mut conns[i];
        let data: &[u8] = match io {
            Io::Epoll(_) => &buf[..n],
            Io::Uring(ring) => ring.received(bid, n),
        };
        let mut carry = std::mem::take(&mut conn.carry);
        let carried = !carry.is_empty();
        if carried {
            carry.extend_from_slice(data);
        }
        let input: &[u8] = if carried { &carry } else { data };
        let mut pos = 0;
        let mut verdict = Verdict::Continue;
        while pos <= input.len() {
            let (used, event) = match conn.decoder.decode(&input[pos..]) {
                Ok(step) => step,
                Err(e) => {
                    verdict = Verdict::Failed(error_kind(e));
                    break;
                }
            };
            pos += used;
            match event {
                None => break,
                // A response nobody asked for: the stream is out of step.
                Some(Event::Head(_)) if conn.flight.is_empty() => {
                    verdict = Verdict::Failed(ErrorKind::Parse);
                    break;
                }
                Some(Event::End { status, keep_alive }) => {
                    if let Some(req) = conn.flight.pop_front() {
                        if req.measured {
                            rec.response(req.intended, req.sent, now, status);
                        } else {
                            rec.tally.warmup_responses += 1;
                        }
                    }
                    if !keep_alive || plan.close {
                        verdict = Verdict::Closing;
                        break;
                    }
                }
                Some(_) => {}
            }
        }
        let input_len = input.len();
        match verdict {
            Verdict::Continue if pos < input_len => {
                if carried {
                    carry.drain(..pos);
                } else {
                    carry.extend_from_slice(&data[pos..]);
                }
            }
            _ => carry.clear(),
        }
        conn.carry = carry;
        verdict
    }

    /// The server closed its side of slot `i`.
    fn end_of_stream(&mut self, i: usize, now: u64) {
        let conn = &mut self.conns[i];
        match conn.decoder.decode_eof(&conn.carry) {
            // A close-delimited response: the server meant to close, as with Connection: close.
            Ok(Some(Event::End { status, .. })) => {
                if let Some(req) = conn.flight.pop_front() {
                    if req.measured {
                        self.rec.response(req.intended, req.sent, now, status);
                    } else {
                        self.rec.tally.warmup_responses += 1;
                    }
                }
                self.requeue(i);
            }
            Ok(_) => {}
            Err(_) => return self.fail(i, ErrorKind::Read, now),
        }
        // Requests still in flight were sent, and the server closed without a word about them.
        if self.conns[i].flight.is_empty() {
            self.close(i);
            self.reopen(i, now);
        } else {
            self.fail(i, ErrorKind::Read, now);
        }
    }

    /// A response ended slot `i`'s connection: put back what the server never read, then wait
    /// for its FIN (at once if it is already here).
    fn begin_drain(&mut self, i: usize, flags: u32, n: usize, now: u64) {
        self.requeue(i);
        let conn = &mut self.conns[i];
        conn.phase = Phase::Draining;
        conn.since = now;
        conn.write_from = 0;
        conn.write_to = 0;
        if flags & sys::PEER_CLOSED != 0 && n < self.buf.len() {
            self.close(i);
            self.reopen(i, now);
        }
    }

    /// Reads and drops what follows a closing response until the server's FIN.
    fn drain(&mut self, i: usize, flags: u32, now: u64) {
        if flags & sys::READABLE == 0 {
            return;
        }
        loop {
            let Some(stream) = self.conns[i].stream.as_ref() else {
                return;
            };
            match (&*stream).read(&mut self.buf) {
                Ok(n) if n == self.buf.len() => {}
                Ok(0) => break,
                Ok(_) if flags & sys::PEER_CLOSED != 0 => break,
                Ok(_) => return,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        self.close(i);
        self.reopen(i, now);
    }

    /// Requests written behind a response that closed the connection go out again later.
    fn requeue(&mut self, i: usize) {
        let conn = &mut self.conns[i];
        let Some(first) = conn.flight.front().copied() else {
            return;
        };
        let measured = conn.flight.iter().filter(|r| r.measured).count() as u64;
        self.rec.tally.retried += conn.flight.len() as u64;
        match (&self.schedule, &mut self.tickets) {
            (Some(_), _) => conn.seq = first.seq,
            (None, Some(tickets)) => *tickets += measured,
            (None, None) => {}
        }
        if self.schedule.is_none() && self.plan.stop_at.is_none() {
            self.issuing = true;
        }
        conn.flight.clear();
    }

    /// Slot `i` failed: every request in flight fails with `kind`; the slot starts over.
    fn fail(&mut self, i: usize, kind: ErrorKind, now: u64) {
        let conn = &mut self.conns[i];
        for req in conn.flight.drain(..) {
            if req.measured {
                self.rec.error(kind, now);
            } else {
                self.rec.tally.warmup_errors += 1;
            }
        }
        self.close(i);
        self.reopen(i, now);
    }

    /// A connect to slot `i` failed (or timed out): it fails the request it was for.
    fn connect_failed(&mut self, i: usize, kind: ErrorKind, now: u64) {
        self.close(i);
        let measured = match (&self.schedule, &mut self.tickets) {
            (Some(s), _) => {
                let conn = &mut self.conns[i];
                let j = s.index(i, conn.seq);
                let due = j < s.limit && s.at(j) <= now;
                if due {
                    conn.seq += 1;
                }
                due && s.at(j) >= self.plan.measure_start
            }
            (None, _) if !self.issuing => false,
            (None, Some(0)) => false,
            (None, Some(tickets)) if now >= self.plan.measure_start => {
                *tickets -= 1;
                true
            }
            (None, _) => now >= self.plan.measure_start,
        };
        if measured {
            self.rec.error(kind, now);
        }
        if self.tickets == Some(0) {
            self.issuing = false;
        }
        let conn = &mut self.conns[i];
        conn.phase = Phase::Backoff(now + BACKOFF.as_nanos() as u64);
        conn.since = now;
    }

    /// Drops slot `i`'s socket (which also takes it out of the epoll set, or cancels what the
    /// ring has in flight on it).
    fn close(&mut self, i: usize) {
        let conn = &mut self.conns[i];
        if let (Io::Uring(ring), Some(_)) = (&mut self.io, conn.stream.as_ref()) {
            // An error here leaves the operations to complete on their own; their buffers
            // stay with the ring, and the generation check drops their results.
            let _ = ring.forget(i);
        }
        conn.sending = false;
        conn.stream = None;
        conn.phase = Phase::Idle;
        conn.carry.clear();
        conn.write_from = 0;
        conn.write_to = 0;
        conn.decoder.reset();
    }

    /// Connects slot `i` again if it has more to send.
    fn reopen(&mut self, i: usize, now: u64) {
        if self.interrupted.load(Ordering::Relaxed) {
            return;
        }
        let wanted = match &self.schedule {
            None => self.issuing,
            Some(s) => {
                let j = s.index(i, self.conns[i].seq);
                j < s.limit && (!self.plan.close || s.at(j) <= now)
            }
        };
        if wanted {
            self.connect(i, now);
        }
    }

    /// Writes as many requests as slot `i` may send now, in one write.
    fn send_due(&mut self, i: usize, now: u64) {
        let plan = self.plan;
        self.check_deadline(now);
        let conn = &mut self.conns[i];
        if conn.phase != Phase::Open || conn.write_from < conn.write_to {
            return;
        }
        let room = plan.pipeline - conn.flight.len();
        let mut count = 0;
        match &self.schedule {
            None => {
                // In --close mode the request's time includes the connection it opened.
                let sent = if plan.close { conn.since } else { now };
                let measured = sent >= plan.measure_start;
                while count < room && self.issuing {
                    if let (true, Some(tickets)) = (measured, &mut self.tickets) {
                        if *tickets == 0 {
                            self.issuing = false;
                            break;
                        }
                        *tickets -= 1;
                    }
                    conn.flight.push_back(InFlight {
                        intended: sent,
                        sent,
                        seq: 0,
                        measured,
                    });
                    if measured {
                        self.rec.sent(0);
                    }
                    count += 1;
                }
            }
            Some(s) => {
                while count < room {
                    let j = s.index(i, conn.seq);
                    let intended = s.at(j);
                    if j >= s.limit || intended > now {
                        break;
                    }
                    let sent = if plan.close {
                        conn.since.max(intended)
                    } else {
                        now
                    };
                    let measured = intended >= plan.measure_start;
                    if measured {
                        self.rec.sent(sent - intended);
                    }
                    conn.flight.push_back(InFlight {
                        intended,
                        sent,
                        seq: conn.seq,
                        measured,
                    });
                    conn.seq += 1;
                    count += 1;
                }
            }
        }
        if count > 0 {
            conn.write_from = 0;
            conn.write_to = count * plan.request_len;
            self.flush(i, now);
        }
    }

    /// Writes slot `i`'s pending bytes until done or the socket is full; with io_uring, queues
    /// one send of them (its completion sends the rest, or what is due next).
    fn flush(&mut self, i: usize, now: u64) {
        let conn = &mut self.conns[i];
        let Some(stream) = conn.stream.as_ref() else {
            return;
        };
        if let Io::Uring(ring) = &mut self.io {
            if conn.sending || conn.write_from >= conn.write_to {
                return;
            }
            let range = conn.write_from..conn.write_to;
            if ring.send(i, conn.generation, range).is_err() {
                return self.fail(i, ErrorKind::Write, now);
            }
            conn.sending = true;
            return;
        }
        while conn.write_from < conn.write_to {
            match (&*stream).write(&self.plan.batch[conn.write_from..conn.write_to]) {
                Ok(0) => return self.fail(i, ErrorKind::Write, now),
                Ok(n) => conn.write_from += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return self.fail(i, ErrorKind::Write, now),
            }
        }
        conn.write_from = 0;
        conn.write_to = 0;
    }

    /// Times out what waited too long, and retries slots whose back-off is over.
    fn sweep(&mut self, now: u64) {
        let timeout = self.plan.timeout;
        for i in 0..self.conns.len() {
            let conn = &self.conns[i];
            let waited = now.saturating_sub(conn.since);
            match conn.phase {
                Phase::Open
                    if conn
                        .flight
                        .front()
                        .is_some_and(|r| now.saturating_sub(r.sent) > timeout) =>
                {
                    self.fail(i, ErrorKind::Timeout, now)
                }
                Phase::Connecting if waited > timeout => {
                    self.connect_failed(i, ErrorKind::Timeout, now)
                }
                Phase::Draining if waited > timeout => {
                    self.close(i);
                    self.reopen(i, now);
                }
                Phase::Backoff(until) if now >= until => {
                    self.conns[i].phase = Phase::Idle;
                    self.reopen(i, now);
                }
                // A slot left idle (its connect could not even start) tries again.
                Phase::Idle if self.schedule.is_none() && self.issuing => self.connect(i, now),
                _ => {}
            }
        }
    }
}

/// The error class of a response the decoder refused.
fn error_kind(e: ClientError) -> ErrorKind {
    match e {
        ClientError::UnexpectedEof => ErrorKind::Read,
        _ => ErrorKind::Parse,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_interleaves_connections_at_absolute_times() {
        let s = Schedule {
            period_ns: 1e9 / 1000.0,
            phase: 0.5,
            conns: 4,
            next: 0,
            limit: u64::MAX,
        };
        // Request j of the thread is due at (j + 0.5) ms; connection c gets j = c, c+4, ...
        assert_eq!(s.at(0), 500_000);
        assert_eq!(s.at(3), 3_500_000);
        assert_eq!(s.index(1, 2), 9);
        assert_eq!(s.at(s.index(1, 2)), 9_500_000);
        for t in [0, 499_999, 500_000, 500_001, 7_000_000, 1_000_000_000] {
            let j = s.first_at(t);
            assert!(s.at(j) >= t, "{t}");
            assert!(j == 0 || s.at(j - 1) < t, "{t}");
        }
        // A 2 s run at 1000/s schedules exactly 2000 requests.
        let end = s.first_at(2_000_000_000);
        assert_eq!(end, 2000);
    }

    #[test]
    fn only_a_clean_close_mid_response_is_a_read_error() {
        assert_eq!(error_kind(ClientError::UnexpectedEof), ErrorKind::Read);
        assert_eq!(error_kind(ClientError::BadChunk), ErrorKind::Parse);
        assert_eq!(error_kind(ClientError::DataAfterClose), ErrorKind::Parse);
    }
}
