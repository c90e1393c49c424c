//! One event loop: the connections of one thread, driven by what its [`Multiplexer`] reports. The
//! parent module has the theory of operation.

use super::inbox::{Inbox, Message};
use super::{Interest, Multiplexer, Token};
use crate::admission::{AcceptFailed, Backoff, ConnGuard};
use crate::server::{Conn, Ctx};
use crate::shutdown;
use common::handler::run_job;
use common::{Reply, Request, Response, Spare, Want};
use slab::Slab;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Tokens of the loop's own descriptors; connections use their slab keys, which never get this high.
const LISTENER: Token = usize::MAX;
const WAKER: Token = usize::MAX - 1;
const STOP: Token = usize::MAX - 2;

/// Reads one connection gets per turn (each followed by the answers it made ready) before the
/// others have theirs: a client that pipelines without pause cannot hold the loop. The rest waits
/// for the next pass, which then does not sleep.
const READS_PER_TURN: u32 = 16;

/// The loop's shared read buffer for idle connections, which hold none of their own.
const SCRATCH_BYTES: usize = 16 * 1024;

/// One connection. Kept small: ten thousand idle ones should cost a few megabytes.
struct Entry {
    stream: TcpStream,
    conn: Conn,
    /// What the multiplexer reports this socket for.
    interest: Interest,
    /// The earliest connection deadline this entry has in the timer heap.
    timer: Option<Instant>,
    /// The request the service has, while it has one; boxed so an idle connection pays a pointer.
    waiting: Option<Box<Waiting>>,
    _guard: ConnGuard,
}

/// A request out for its answer.
struct Waiting {
    req: Request,
    started: Instant,
    /// Tells a `Reply::Compute` answer for this request from one for an earlier connection that
    /// had the same slab key.
    serial: u64,
    /// `Reply::Delayed`: when to send what. `None` while a `Reply::Compute` job is out.
    delayed: Option<(Instant, Response)>,
}

/// An event loop over multiplexer `M`.
pub(super) struct Loop<M> {
    ctx: Arc<Ctx>,
    mux: M,
    /// This loop's place in `inboxes`.
    index: usize,
    inboxes: Arc<[Inbox]>,
    /// Loop 0 only, until the graceful stop.
    listener: Option<TcpListener>,
    /// The loop the next accepted connection is dealt to.
    next_loop: usize,
    /// Set while accepting is paused for lack of descriptors: until when. Accepting again at once
    /// would spin on a listener that stays readable; the clients wait in the backlog meanwhile.
    accept_paused: Option<Instant>,
    backoff: Backoff,
    conns: Slab<Entry>,
    /// Connection deadlines and `Reply::Delayed` due times, earliest first. Entries are never
    /// removed early: a stale one is recognised and skipped when it comes up.
    timers: BinaryHeap<Reverse<(Instant, usize)>>,
    /// Connections that used up their turn with input left: driven again before the next wait.
    again: Vec<usize>,
    mail: Vec<Message>,
    scratch: Box<[u8]>,
    /// Buffers idle connections gave back, lent to the next that has input.
    spare: Spare,
    /// Set once a graceful stop began: the time it must be over by.
    draining: Option<Instant>,
    /// Whether this pass did any IO (for [`Multiplexer::pass_done`]).
    found_work: bool,
    serial: u64,
    warned_fd_limit: bool,
}

impl<M: Multiplexer> Loop<M> {
    /// Loop number `index`; loop 0 gets the listener.
    pub(super) fn new(
        ctx: Arc<Ctx>,
        mux: M,
        index: usize,
        inboxes: Arc<[Inbox]>,
        listener: Option<TcpListener>,
    ) -> Loop<M> {
        Loop {
            ctx,
            mux,
            index,
            inboxes,
            listener,
            next_loop: 0,
            accept_paused: None,
            backoff: Backoff::default(),
            conns: Slab::new(),
            timers: BinaryHeap::new(),
            again: Vec::new(),
            mail: Vec::new(),
            scratch: vec![0; SCRATCH_BYTES].into_boxed_slice(),
            spare: Spare::new(),
            draining: None,
            found_work: true,
            serial: 0,
            warned_fd_limit: false,
        }
    }

    /// Runs until a graceful stop has drained this loop's connections or the grace period ended.
    pub(super) fn run(mut self) -> io::Result<()> {
        let stop = shutdown::get();
        self.mux
            .add(self.inboxes[self.index].fd(), WAKER, Interest::Read)?;
        self.mux.add(stop.fd(), STOP, Interest::Read)?;
        if let Some(listener) = &self.listener {
            self.mux
                .add(listener.as_raw_fd(), LISTENER, Interest::Read)?;
        }
        // Edge-triggered sources (sigio) report changes only: clients already in the backlog,
        // mail already sent and a stop already asked for before the registration would never be
        // reported, so try all three once.
        self.accept();
        self.take_mail();
        if stop.requested() {
            self.begin_drain();
        }
        let mut ready = Vec::new();
        loop {
            let now = Instant::now();
            if let Some(until) = self.draining {
                if self.conns.is_empty() || now >= until {
                    break;
                }
            }
            ready.clear();
            self.mux.wait(&mut ready, self.timeout(now))?;
            self.found_work = false;
            for key in std::mem::take(&mut self.again) {
                self.drive(key);
            }
            for &token in &ready {
                match token {
                    LISTENER => self.accept(),
                    WAKER => self.take_mail(),
                    STOP if stop.requested() => self.begin_drain(),
                    STOP => {}
                    key => self.drive(key),
                }
            }
            self.expire(Instant::now());
            self.mux.pass_done(self.found_work);
        }
        self.inboxes[self.index].close();
        Ok(())
    }

    /// How long the next wait may sleep: until the earliest timer, or not at all if some
    /// connection still has its turn to finish.
    fn timeout(&self, now: Instant) -> Option<Duration> {
        if !self.again.is_empty() {
            return Some(Duration::ZERO);
        }
        let heap = self.timers.peek().map(|Reverse((at, _))| *at);
        let next = [heap, self.accept_paused, self.draining]
            .into_iter()
            .flatten()
            .min();
        next.map(|at| at.saturating_duration_since(now))
    }

    /// Accepts until the listener would block.
    fn accept(&mut self) {
        let Some(fd) = self.listener.as_ref().map(AsRawFd::as_raw_fd) else {
            return;
        };
        while self.accept_paused.is_none() {
            let flags = libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
            // SAFETY: null address pointers ask for no peer address; the result is a new
            // descriptor or -1.
            let conn =
                unsafe { libc::accept4(fd, std::ptr::null_mut(), std::ptr::null_mut(), flags) };
            if conn >= 0 {
                self.found_work = true;
                self.backoff.succeeded();
                // SAFETY: a fresh descriptor that nothing else owns.
                self.admit(unsafe { TcpStream::from_raw_fd(conn) });
                continue;
            }
            let e = io::Error::last_os_error();
            match self.backoff.on_error(&e) {
                AcceptFailed::Drained => return,
                AcceptFailed::Again => {}
                AcceptFailed::Pause(pause) => self.pause_accept(pause),
                AcceptFailed::Other => {
                    eprintln!("zoo: accept: {e}");
                    return;
                }
            }
        }
    }

    /// Takes an accepted connection in, deals it to a loop, or sheds it with a 503: over
    /// `--max-connections`, or (select) when its descriptor number cannot be watched.
    fn admit(&mut self, stream: TcpStream) {
        let fd = stream.as_raw_fd();
        if M::FD_LIMIT.is_some_and(|limit| fd >= limit) {
            if !self.warned_fd_limit {
                self.warned_fd_limit = true;
                eprintln!(
                    "zoo: descriptor {fd} is beyond FD_SETSIZE: such connections get 503 \
                     (counted as shed, not logged again)"
                );
            }
            return self.ctx.admission.shed(&stream);
        }
        let Some(guard) = self.ctx.admission.admit(&stream) else {
            return;
        };
        let _ = stream.set_nodelay(true);
        let target = self.next_loop;
        self.next_loop = (target + 1) % self.inboxes.len();
        if target == self.index {
            self.insert(stream, guard);
        } else {
            self.inboxes[target].send(Message::Conn(stream, guard));
        }
    }

    /// Registers a connection of this loop and serves what it already has.
    fn insert(&mut self, stream: TcpStream, guard: ConnGuard) {
        if self.draining.is_some() {
            return; // dealt just before the stop: it closes unserved, as a backlogged one would
        }
        let conn = self.ctx.connection(Instant::now());
        let slot = self.conns.vacant_entry();
        let key = slot.key();
        if self
            .mux
            .add(stream.as_raw_fd(), key, Interest::Read)
            .is_err()
        {
            return; // the multiplexer is out of room: the client sees a close
        }
        slot.insert(Entry {
            stream,
            conn,
            interest: Interest::Read,
            timer: None,
            waiting: None,
            _guard: guard,
        });
        // Under sigio, input that came before the registration raised no signal: try it now.
        self.drive(key);
    }

    /// Does everything a connection can do without blocking: answer what it has ready, write,
    /// read, and again, until the socket would block or the service has the request.
    fn drive(&mut self, key: usize) {
        let mut reads = READS_PER_TURN;
        // A read that did not fill its buffer emptied the socket: reading again now would only
        // meet EAGAIN, one wasted syscall per request. A level-triggered multiplexer reports what
        // comes next (see `Multiplexer::LEVEL_TRIGGERED`).
        let mut drained = false;
        // One reading of the clock per turn, as nginx takes one per loop iteration: the turn
        // lasts microseconds, and deadlines are in seconds.
        let now = Instant::now();
        loop {
            self.answer_ready(key, now);
            let Some(entry) = self.conns.get_mut(key) else {
                return;
            };
            match entry.conn.want() {
                Want::Write => match write_out(entry) {
                    Ok(true) => self.found_work = true,
                    Ok(false) => break,
                    Err(_) => return self.close(key),
                },
                Want::Read if drained => break,
                Want::Read if reads == 0 => {
                    self.again.push(key);
                    break;
                }
                Want::Read => {
                    reads -= 1;
                    match read_in(entry, &mut self.scratch, &mut self.spare, now) {
                        Ok(Some(emptied)) => {
                            self.found_work = true;
                            drained = emptied && M::LEVEL_TRIGGERED;
                        }
                        Ok(None) => break,
                        Err(_) => return self.close(key),
                    }
                }
                // `answer_ready` leaves nothing to handle: the service has the request.
                Want::Handle | Want::Wait => break,
                Want::Close => return self.close(key),
            }
        }
        self.settle(key);
    }

    /// Answers the connection's ready requests in order, until one must wait for its answer.
    fn answer_ready(&mut self, key: usize, now: Instant) {
        let Some(entry) = self.conns.get_mut(key) else {
            return;
        };
        while let Some(req) = entry.conn.next_request() {
            let started = now;
            let delayed = match self.ctx.answer(&req) {
                Reply::Ready(resp) => {
                    self.ctx.record(&req, &resp, started);
                    entry.conn.respond(&resp, now);
                    continue;
                }
                Reply::Delayed(wait, resp) => {
                    let due = started + wait;
                    self.timers.push(Reverse((due, key)));
                    Some((due, resp))
                }
                Reply::Compute(job) => {
                    let inboxes = self.inboxes.clone();
                    let (index, serial) = (self.index, self.serial);
                    rayon::spawn(move || {
                        let resp = run_job(job);
                        inboxes[index].send(Message::Done(key, serial, resp));
                    });
                    None
                }
            };
            entry.waiting = Some(Box::new(Waiting {
                req,
                started,
                serial: self.serial,
                delayed,
            }));
            self.serial += 1;
        }
    }

    /// Sends the answer to the request a connection was waiting with, and carries on.
    fn finish(&mut self, key: usize, resp: Response) {
        let Some(entry) = self.conns.get_mut(key) else {
            return;
        };
        let Some(waiting) = entry.waiting.take() else {
            return;
        };
        self.ctx.record(&waiting.req, &resp, waiting.started);
        entry.conn.respond(&resp, Instant::now());
        self.found_work = true;
        self.drive(key);
    }

    /// After driving: registers the interest the connection has now, queues its deadline, and
    /// gives its buffers back if it is idle.
    fn settle(&mut self, key: usize) {
        let Some(entry) = self.conns.get_mut(key) else {
            return;
        };
        let interest = match entry.conn.want() {
            Want::Read => Interest::Read,
            Want::Write => Interest::Write,
            Want::Handle | Want::Wait | Want::Close => Interest::None,
        };
        if interest != entry.interest {
            let fd = entry.stream.as_raw_fd();
            if self.mux.modify(fd, key, entry.interest, interest).is_err() {
                return self.close(key);
            }
            entry.interest = interest;
        }
        // One deadline per connection in the heap: a later one (keep-alive after each request)
        // waits until the queued one comes up and is re-queued then, so the heap does not grow
        // with every request.
        if let Some(at) = entry.conn.poll_timeout() {
            if !matches!(entry.timer, Some(queued) if queued <= at) {
                entry.timer = Some(at);
                self.timers.push(Reverse((at, key)));
            }
        }
        entry.conn.release_buffers_into(&mut self.spare);
    }

    /// Fires every timer that is due: delayed answers, connection deadlines, the accept pause.
    fn expire(&mut self, now: Instant) {
        if self.accept_paused.is_some_and(|at| at <= now) {
            self.resume_accept();
        }
        while let Some(&Reverse((at, key))) = self.timers.peek() {
            if at > now {
                break;
            }
            self.timers.pop();
            let Some(entry) = self.conns.get_mut(key) else {
                continue;
            };
            if let Some(resp) = take_due_reply(entry, at) {
                self.finish(key, resp);
                continue;
            }
            if entry.timer != Some(at) {
                continue; // stale: an earlier deadline replaced it, or the key was reused
            }
            entry.timer = None;
            if entry
                .conn
                .poll_timeout()
                .is_some_and(|deadline| deadline <= now)
            {
                entry.conn.handle_timeout(now);
                self.found_work = true;
                self.drive(key);
            } else {
                self.settle(key); // the deadline moved on: queue the new one
            }
        }
    }

    /// Takes what other threads sent: dealt connections and `Reply::Compute` answers.
    fn take_mail(&mut self) {
        let mut mail = std::mem::take(&mut self.mail);
        self.inboxes[self.index].take(&mut mail);
        self.found_work |= !mail.is_empty();
        for msg in mail.drain(..) {
            match msg {
                Message::Conn(stream, guard) => self.insert(stream, guard),
                Message::Done(key, serial, resp) => {
                    let ours = self.conns.get(key).and_then(|e| e.waiting.as_ref());
                    if ours.is_some_and(|w| w.serial == serial && w.delayed.is_none()) {
                        self.finish(key, resp);
                    }
                }
            }
        }
        self.mail = mail;
        // Under sigio only one loop hears the shutdown pipe; it wakes the others this way.
        if shutdown::get().requested() {
            self.begin_drain();
        }
    }

    fn pause_accept(&mut self, pause: Duration) {
        if let Some(listener) = &self.listener {
            let fd = listener.as_raw_fd();
            let _ = self
                .mux
                .modify(fd, LISTENER, Interest::Read, Interest::None);
            self.accept_paused = Some(Instant::now() + pause);
        }
    }

    fn resume_accept(&mut self) {
        self.accept_paused = None;
        if let Some(listener) = &self.listener {
            let fd = listener.as_raw_fd();
            let _ = self
                .mux
                .modify(fd, LISTENER, Interest::None, Interest::Read);
            // Connections that came meanwhile raised no readiness we listened to.
            self.accept();
        }
    }

    /// Graceful stop: no more accepting, idle connections closed, the others finish their
    /// current answer and close.
    fn begin_drain(&mut self) {
        if self.draining.is_some() {
            return;
        }
        self.draining = Some(Instant::now() + self.ctx.grace());
        let _ = self.mux.delete(shutdown::get().fd(), Interest::Read);
        if let Some(listener) = self.listener.take() {
            let interest = match self.accept_paused.take() {
                Some(_) => Interest::None,
                None => Interest::Read,
            };
            let _ = self.mux.delete(listener.as_raw_fd(), interest);
        }
        for (i, inbox) in self.inboxes.iter().enumerate() {
            if i != self.index {
                inbox.wake();
            }
        }
        let keys: Vec<usize> = self.conns.iter().map(|(key, _)| key).collect();
        for key in keys {
            if let Some(entry) = self.conns.get_mut(key) {
                entry.conn.shutdown();
            }
            self.drive(key);
        }
    }

    /// Forgets a connection; dropping its entry closes the socket and counts it closed.
    fn close(&mut self, key: usize) {
        if let Some(entry) = self.conns.try_remove(key) {
            let _ = self.mux.delete(entry.stream.as_raw_fd(), entry.interest);
        }
    }
}

/// The delayed answer of `entry`, if `at` is its due time.
fn take_due_reply(entry: &mut Entry, at: Instant) -> Option<Response> {
    let waiting = entry.waiting.as_mut()?;
    match waiting.delayed {
        Some((due, _)) if due == at => waiting.delayed.take().map(|(_, resp)| resp),
        _ => None,
    }
}

/// Reads once. `Ok(None)`: nothing to read now; `Ok(Some(emptied))`: bytes (or the peer's EOF)
/// came, and `emptied` says the read did not fill its buffer, so the socket has nothing more for
/// now. An idle connection holds no buffer: it borrows the loop's spare buffers, or, when there
/// are none, reads into the loop's scratch space and the bytes are copied in only if some came:
/// checking an idle socket allocates nothing.
fn read_in(
    entry: &mut Entry,
    scratch: &mut [u8],
    spare: &mut Spare,
    now: Instant,
) -> io::Result<Option<bool>> {
    loop {
        let idle = entry.conn.is_idle() && !entry.conn.reuse_buffers(spare);
        let (read, room) = if idle {
            (entry.stream.read(scratch), scratch.len())
        } else {
            let buf = entry.conn.read_buf();
            let room = buf.len();
            (entry.stream.read(buf), room)
        };
        match read {
            Ok(n) if idle => entry.conn.feed(&scratch[..n], now),
            Ok(n) => entry.conn.received(n, now),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        return Ok(Some(read.is_ok_and(|n| n < room)));
    }
}

/// Writes the connection's output. `Ok(true)`: all of it went; `Ok(false)`: the socket is full.
fn write_out(entry: &mut Entry) -> io::Result<bool> {
    while !entry.conn.output().is_empty() {
        match entry.stream.write(entry.conn.output()) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => entry.conn.consume_output(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}
