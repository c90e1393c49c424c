//! The server side of one HTTP/1.1 connection, as a state machine with no IO in it.
//!
//! # Theory of operation
//!
//! The driver (a model in `servers/`) owns the socket; the [`Connection`] owns the protocol. The
//! calling order, repeated until [`Connection::want`] says [`Want::Close`]:
//!
//! 1. Read into [`Connection::read_buf`], then report the count with [`Connection::received`]
//!    (0 means the peer closed its side). [`Connection::feed`] does both from a slice.
//! 2. Take each complete request with [`Connection::next_request`], have the service answer it (in
//!    the model's own way: now, after a delay, after a CPU job) and hand the answer back with
//!    [`Connection::respond`]. At most one request is out at a time, so pipelined requests are
//!    answered in order; the next one is parsed only once the previous one has its answer.
//! 3. Write [`Connection::output`] and report what was written with
//!    [`Connection::consume_output`]. Everything answered so far goes out in one write.
//! 4. Sleep until readiness or [`Connection::poll_timeout`]; on the deadline call
//!    [`Connection::handle_timeout`].
//!
//! The states, one request at a time:
//!
//! - `Head`: bytes of a request head are awaited or arriving. With nothing buffered the connection
//!   is idle: its deadline is the keep-alive timeout (the header timeout for a new connection), and
//!   when it passes the connection closes without a word (an answer still queued is written
//!   first). Once a byte arrives the header timeout runs, once, from that byte; when it passes, 408.
//!   Each line is judged as its CRLF arrives (the request line on its own, at once), so the verdict
//!   never depends on how the bytes were split into reads. A complete head moves to `Body` (or
//!   straight to `Ready`); an invalid one queues an error response and moves to `Closing`.
//! - `Body`: the body is being de-framed. `Expect: 100-continue` queues `100 Continue` here, and
//!   only when the body is wanted (not for a 413) and none of it has arrived yet. The body
//!   timeout runs and restarts whenever bytes arrive; when it passes, 408.
//! - `Ready`: a complete request waits for [`Connection::next_request`].
//! - `Handling`: the service has the request. No deadline runs and no input is parsed.
//! - `Closing`: a last response is queued; once written, the connection is closed. Input that
//!   still arrives is dropped: nothing after a rejection or a close is ever parsed.
//! - `Closed`: nothing more to do.
//!
//! Keep-alive: HTTP/1.1 stays open unless either side says `Connection: close`; HTTP/1.0 closes
//! unless the client asked for `keep-alive`. After the peer's EOF the requests already buffered are
//! still answered (the last with `Connection: close`), then the connection closes.
//! [`Connection::shutdown`] (graceful server stop) closes a connection with no request begun at
//! once (after writing what is queued) and makes the answer to a request begun or in flight the
//! last. Any protocol error answers with its status and `Connection: close`, and closes.
//!
//! Drivers read when [`Connection::want`] says [`Want::Read`]. Input read at other times (while the
//! service has a request, say) is buffered without bound, so a driver that reads eagerly must cap
//! it; left in the socket, TCP flow control bounds it.

use crate::body::BodyDecoder;
use crate::date::DateCache;
use crate::encode::{encode_response, EncodeCtx, CONTINUE};
use crate::error::ProtoError;
use crate::head::{parse_head, scan_head, HeadLimits, HeadScan};
use crate::request::{Request, Version};
use crate::response::Response;
use std::time::{Duration, Instant, SystemTime};

/// The smallest free space [`Connection::read_buf`] offers.
const READ_CHUNK: usize = 8 * 1024;

/// Buffers that connections gave back ([`Connection::release_buffers_into`] when idle,
/// [`Connection::release_input_into`] once their input is consumed), kept for the next
/// connection that has input ([`Connection::reuse_buffers`]). A driver serving many connections
/// on one thread keeps one: a keep-alive connection goes idle between any two requests, and
/// without it each request would allocate, zero and free its buffers. Read buffers and output
/// buffers are kept apart: a read buffer is free again as soon as a request is parsed, so a few
/// serve a whole turn of a loop, while an output buffer stays with its connection until its
/// answer has left, which for a completion-based driver is a whole batch of connections at once;
/// they are small, so more of them are kept. Idle connections still cost no buffer.
#[derive(Debug, Default)]
pub struct Spare {
    reads: Vec<Vec<u8>>,
    outs: Vec<Vec<u8>>,
}

/// Read buffers a [`Spare`] keeps.
const SPARE_READS: usize = 8;
/// Output buffers a [`Spare`] keeps: as many as a batch of answers in flight at 64 connections.
const SPARE_OUTS: usize = 64;
/// A read buffer that grew past this (a large head or body) is freed rather than kept.
const SPARE_MAX_BYTES: usize = 64 * 1024;
/// An output buffer that grew past this (a large answer) is freed rather than kept, so the
/// output buffers a spare holds stay within 256 KiB.
const SPARE_OUT_MAX_BYTES: usize = 4 * 1024;
/// The room a connection's first answer gets at once, so that encoding it does not grow the
/// buffer step by step: a status line, the framing headers and a short body.
const FIRST_OUTPUT: usize = 512;

impl Spare {
    /// An empty stash.
    pub fn new() -> Spare {
        Spare::default()
    }

    /// How many read buffers and how many output buffers it holds.
    pub fn held(&self) -> (usize, usize) {
        (self.reads.len(), self.outs.len())
    }

    fn keep_read(&mut self, buf: Vec<u8>) {
        if buf.capacity() > 0 && buf.capacity() <= SPARE_MAX_BYTES && self.reads.len() < SPARE_READS
        {
            // The read buffer keeps its length: its bytes are initialized, so reusing it costs no
            // zeroing (the connection tracks what is filled).
            self.reads.push(buf);
        }
    }

    fn keep_out(&mut self, mut out: Vec<u8>) {
        if out.capacity() > 0
            && out.capacity() <= SPARE_OUT_MAX_BYTES
            && self.outs.len() < SPARE_OUTS
        {
            out.clear();
            self.outs.push(out);
        }
    }
}

/// Limits and timeouts of one connection.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Head limits (request line, head bytes, header count).
    pub head: HeadLimits,
    /// Largest request body, decoded (413 beyond).
    pub max_body_bytes: u64,
    /// Time allowed to receive a whole head, from its first byte (or from accept).
    pub header_timeout: Duration,
    /// Time an idle keep-alive connection is kept open.
    pub keep_alive_timeout: Duration,
    /// Time allowed between two reads of a body before it is given up.
    pub body_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            head: HeadLimits::default(),
            max_body_bytes: 1024 * 1024,
            header_timeout: Duration::from_secs(5),
            keep_alive_timeout: Duration::from_secs(5),
            body_timeout: Duration::from_secs(10),
        }
    }
}

/// What the connection needs from its driver next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// Output is queued: write [`Connection::output`].
    Write,
    /// A request is ready: call [`Connection::next_request`].
    Handle,
    /// More input is needed.
    Read,
    /// The service has the request; wait for its answer.
    Wait,
    /// Close the connection.
    Close,
}

/// Where a connection stands. The request is boxed while it is read and waits: an idle
/// keep-alive connection (in `Head`) then costs its few words, not a request's 150 bytes, which
/// is a third of what 10,000 idle connections hold.
#[derive(Debug)]
enum State {
    Head(HeadScan),
    Body {
        request: Box<Request>,
        decoder: BodyDecoder,
        continued: bool,
    },
    Ready(Box<Request>),
    Handling {
        version: Version,
        head_only: bool,
        keep_alive: bool,
    },
    Closing,
    Closed,
}

/// The server side of one HTTP/1.1 connection. See the module docs for the calling order.
#[derive(Debug)]
pub struct Connection {
    limits: Limits,
    state: State,
    /// Input: `buf[start..filled]` is received and not yet consumed.
    buf: Vec<u8>,
    start: usize,
    filled: usize,
    out: Vec<u8>,
    out_pos: usize,
    deadline: Option<Instant>,
    peer_eof: bool,
    draining: bool,
    rejection: Option<ProtoError>,
    date: DateCache,
    /// Wall-clock time at `epoch`: the `Date` header follows `now` from there, so the core never
    /// reads the clock itself.
    wall: SystemTime,
    epoch: Instant,
}

impl Connection {
    /// A connection just accepted at `now` (`wall` is the same moment on the wall clock): the
    /// header timeout starts at once, so a client that connects and sends nothing is closed.
    pub fn new(limits: Limits, now: Instant, wall: SystemTime) -> Connection {
        Connection {
            limits,
            state: State::Head(HeadScan::default()),
            buf: Vec::new(),
            start: 0,
            filled: 0,
            out: Vec::new(),
            out_pos: 0,
            deadline: now.checked_add(limits.header_timeout),
            peer_eof: false,
            draining: false,
            rejection: None,
            date: DateCache::default(),
            wall,
            epoch: now,
        }
    }

    /// Free space to read into; report what was read with [`Connection::received`].
    pub fn read_buf(&mut self) -> &mut [u8] {
        if self.start == self.filled {
            self.start = 0;
            self.filled = 0;
        }
        if self.buf.len() - self.filled < READ_CHUNK {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.filled, 0);
                self.filled -= self.start;
                self.start = 0;
            }
            if self.buf.len() - self.filled < READ_CHUNK {
                self.buf.resize(self.filled + READ_CHUNK, 0);
            }
        }
        &mut self.buf[self.filled..]
    }

    /// Reports `n` bytes read into [`Connection::read_buf`]; 0 means the peer closed its side.
    pub fn received(&mut self, n: usize, now: Instant) {
        if n == 0 {
            self.peer_eof = true;
        } else {
            self.filled += n;
            match self.state {
                State::Body { .. } => self.deadline = now.checked_add(self.limits.body_timeout),
                State::Head(_) if self.filled - self.start == n && self.deadline_is_idle() => {
                    self.deadline = now.checked_add(self.limits.header_timeout);
                }
                // Nothing more is read once the connection is closing: drop it, so a peer that
                // keeps sending cannot grow the buffer.
                State::Closing | State::Closed => self.start = self.filled,
                _ => {}
            }
        }
        self.advance(now);
    }

    /// Copies `bytes` in as if read from the socket (empty means EOF).
    pub fn feed(&mut self, mut bytes: &[u8], now: Instant) {
        if bytes.is_empty() {
            return self.received(0, now);
        }
        while !bytes.is_empty() {
            let space = self.read_buf();
            let n = space.len().min(bytes.len());
            space[..n].copy_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
            self.received(n, now);
        }
    }

    /// The next complete request, if one is ready.
    pub fn next_request(&mut self) -> Option<Request> {
        if !matches!(self.state, State::Ready(_)) {
            return None;
        }
        let State::Ready(request) = std::mem::replace(&mut self.state, State::Closed) else {
            unreachable!("checked just above");
        };
        self.state = State::Handling {
            version: request.version,
            head_only: request.method() == "HEAD",
            keep_alive: request.keep_alive,
        };
        self.deadline = None;
        Some(*request)
    }

    /// Queues the answer to the request last taken with [`Connection::next_request`]; `now`
    /// dates it and starts the next deadline.
    pub fn respond(&mut self, resp: &Response, now: Instant) {
        let State::Handling {
            version,
            head_only,
            keep_alive,
        } = self.state
        else {
            return;
        };
        // After the peer's EOF with nothing left buffered, this answer is certainly the last.
        let last = self.peer_eof && self.start == self.filled;
        let keep_alive = keep_alive && !resp.close && !self.draining && !last;
        let wall = self.wall_at(now);
        self.prepare_output();
        let ctx = EncodeCtx {
            version,
            head_only,
            keep_alive,
            date: self.date.get(wall),
        };
        encode_response(resp, ctx, &mut self.out);
        if keep_alive {
            self.state = State::Head(HeadScan::default());
            let wait = if self.filled > self.start {
                self.limits.header_timeout
            } else {
                self.limits.keep_alive_timeout
            };
            self.deadline = now.checked_add(wait);
            self.advance(now);
        } else {
            self.state = State::Closing;
            self.deadline = None;
        }
    }

    /// Bytes waiting to be written.
    pub fn output(&self) -> &[u8] {
        &self.out[self.out_pos..]
    }

    /// Reports `n` bytes of [`Connection::output`] written.
    pub fn consume_output(&mut self, n: usize) {
        self.out_pos = (self.out_pos + n).min(self.out.len());
        if self.out_pos == self.out.len() {
            self.out.clear();
            self.out_pos = 0;
            if matches!(self.state, State::Closing) {
                self.state = State::Closed;
            }
        }
    }

    /// What the driver should do next.
    pub fn want(&self) -> Want {
        if self.out_pos < self.out.len() {
            return Want::Write;
        }
        match self.state {
            State::Ready(_) => Want::Handle,
            State::Handling { .. } => Want::Wait,
            State::Head(_) | State::Body { .. } => Want::Read,
            State::Closing | State::Closed => Want::Close,
        }
    }

    /// When [`Connection::handle_timeout`] should be called, if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }

    /// Applies the deadline if `now` has reached it: a connection with no request begun closes
    /// quietly (after writing what is queued), a head or body that stopped arriving gets 408 and
    /// closes.
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(deadline) = self.deadline else {
            return;
        };
        if now < deadline {
            return;
        }
        self.deadline = None;
        match self.state {
            // An answer may still be queued (a client slow to read): it is written, then the
            // connection closes; no 408 follows it, since no request was begun.
            State::Head(_) if self.start == self.filled => self.state = State::Closed,
            State::Head(_) => self.reject(ProtoError::HeadTimeout, now),
            State::Body { .. } => self.reject(ProtoError::BodyTimeout, now),
            _ => {}
        }
    }

    /// Graceful stop: a connection with no request begun closes now (once its queued output is
    /// written), a busy one after its current answer.
    pub fn shutdown(&mut self) {
        self.draining = true;
        if matches!(self.state, State::Head(_)) && self.start == self.filled {
            self.state = State::Closed;
            self.deadline = None;
        }
    }

    /// Whether the connection waits for a new request with nothing buffered and nothing to write.
    pub fn is_idle(&self) -> bool {
        matches!(self.state, State::Head(_))
            && self.start == self.filled
            && self.out_pos == self.out.len()
    }

    /// Whether received bytes wait that no request has taken yet: while the service has a request,
    /// these are the start of the next, pipelined one. A driver that keeps a connection only while
    /// more is waiting (prefork, as gunicorn's sync worker) asks this before it answers.
    pub fn has_buffered_input(&self) -> bool {
        self.filled > self.start
    }

    /// Gives the buffers' memory back while the connection is idle (nginx does the same), so an
    /// idle keep-alive connection costs a few hundred bytes.
    pub fn release_buffers(&mut self) {
        if self.is_idle() {
            self.buf = Vec::new();
            self.out = Vec::new();
            self.start = 0;
            self.filled = 0;
            self.out_pos = 0;
        }
    }

    /// As [`Connection::release_buffers`], but keeps the buffers in `spare` for the next
    /// connection of this driver that has input (up to what `spare` holds; beyond, they are freed).
    pub fn release_buffers_into(&mut self, spare: &mut Spare) {
        if self.is_idle() && (self.buf.capacity() > 0 || self.out.capacity() > 0) {
            spare.keep_read(std::mem::take(&mut self.buf));
            spare.keep_out(std::mem::take(&mut self.out));
            self.release_buffers();
        }
    }

    /// Gives the read buffer to `spare` when every byte in it has been consumed, whatever the
    /// connection waits for: a driver whose answer stays in flight for a while (a send submitted
    /// to io_uring) calls it once the answer is queued, so the read buffer serves the next
    /// connection meanwhile. Take it back with [`Connection::reuse_buffers`] before reading.
    pub fn release_input_into(&mut self, spare: &mut Spare) {
        if self.start == self.filled && self.buf.capacity() > 0 {
            spare.keep_read(std::mem::take(&mut self.buf));
            self.start = 0;
            self.filled = 0;
        }
    }

    /// Takes buffers from `spare` where this connection has none: a driver calls it before reading
    /// for a connection that gave its buffers back. Returns whether the connection now has a read
    /// buffer, that is whether [`Connection::read_buf`] is free of an allocation.
    pub fn reuse_buffers(&mut self, spare: &mut Spare) -> bool {
        if self.buf.capacity() == 0 {
            if let Some(buf) = spare.reads.pop() {
                self.buf = buf;
            }
        }
        if self.out.capacity() == 0 {
            if let Some(out) = spare.outs.pop() {
                self.out = out;
            }
        }
        self.buf.capacity() > 0
    }

    /// The protocol error that closed this connection, if one did.
    pub fn rejection(&self) -> Option<ProtoError> {
        self.rejection
    }

    fn wall_at(&self, now: Instant) -> SystemTime {
        let since = now.saturating_duration_since(self.epoch);
        self.wall.checked_add(since).unwrap_or(self.wall)
    }

    /// Whether the deadline now running is the idle one (no request begun).
    fn deadline_is_idle(&self) -> bool {
        matches!(self.state, State::Head(scan) if scan.skipped() == 0)
    }

    fn compact_output(&mut self) {
        if self.out_pos > 0 {
            self.out.drain(..self.out_pos);
            self.out_pos = 0;
        }
    }

    /// Makes room for an answer: what has been sent goes, and a connection without an output
    /// buffer gets one large enough for a short answer at once.
    fn prepare_output(&mut self) {
        self.compact_output();
        if self.out.capacity() == 0 {
            self.out.reserve(FIRST_OUTPUT);
        }
    }

    /// Moves the state machine forward over buffered input as far as it can go.
    fn advance(&mut self, now: Instant) {
        loop {
            match &mut self.state {
                State::Head(scan) => {
                    let input = &self.buf[self.start..self.filled];
                    let mut scan_now = *scan;
                    let found = scan_head(input, &mut scan_now, &self.limits.head);
                    *scan = scan_now;
                    match found {
                        Err(e) => return self.reject(e, now),
                        Ok(None) => {
                            if self.peer_eof {
                                self.state = State::Closed;
                            }
                            return;
                        }
                        Ok(Some(end)) => {
                            let skipped = scan_now.skipped();
                            let head_bytes = &self.buf[self.start + skipped..self.start + end];
                            let head = match parse_head(head_bytes, &self.limits.head) {
                                Ok(head) => head,
                                Err(e) => return self.reject(e, now),
                            };
                            self.start += end;
                            if let crate::head::Framing::Length(n) = head.framing {
                                if n > self.limits.max_body_bytes {
                                    return self.reject(ProtoError::BodyTooLarge, now);
                                }
                            }
                            self.state = State::Body {
                                request: Box::new(head.request),
                                decoder: BodyDecoder::new(head.framing),
                                continued: !head.expect_continue,
                            };
                            self.deadline = now.checked_add(self.limits.body_timeout);
                        }
                    }
                }
                State::Body {
                    request,
                    decoder,
                    continued,
                } => {
                    let input = &self.buf[self.start..self.filled];
                    let progress = decoder.decode(
                        input,
                        &mut request.body,
                        &mut request.trailers,
                        self.limits.max_body_bytes,
                        self.limits.head.max_head_bytes,
                    );
                    match progress {
                        Err(e) => return self.reject(e, now),
                        Ok(p) => {
                            self.start += p.consumed;
                            if p.done {
                                let State::Body { request, .. } =
                                    std::mem::replace(&mut self.state, State::Closed)
                                else {
                                    unreachable!("matched above");
                                };
                                self.state = State::Ready(request);
                                self.deadline = None;
                            } else if self.peer_eof {
                                self.state = State::Closed;
                                return;
                            } else {
                                if !*continued {
                                    *continued = true;
                                    // Body bytes already here: the client did not wait for us.
                                    if p.consumed == 0 && self.start == self.filled {
                                        self.compact_output();
                                        self.out.extend_from_slice(CONTINUE);
                                    }
                                }
                                return;
                            }
                        }
                    }
                }
                _ => return,
            }
        }
    }

    /// Queues the error response for `e`, drops the rest of the input, and heads for close.
    fn reject(&mut self, e: ProtoError, now: Instant) {
        self.rejection = Some(e);
        self.start = self.filled;
        self.deadline = None;
        let resp = Response::text(e.status(), format!("{}\n", e.reason()));
        let wall = self.wall_at(now);
        self.prepare_output();
        let ctx = EncodeCtx {
            version: Version::Http11,
            head_only: false,
            keep_alive: false,
            date: self.date.get(wall),
        };
        encode_response(&resp, ctx, &mut self.out);
        self.state = State::Closing;
    }
}
