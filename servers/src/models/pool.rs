//! `pool`: a fixed pool of worker threads fed with connections that have a whole request.
//!
//! One poller thread (epoll through `mio`) holds every connection that is idle between requests or
//! still receiving a head or body, and accepts new ones. Only when a connection has a complete
//! request does it go, through a bounded queue, to a worker of the `threadpool` pool, which answers
//! every request it has ready with blocking waits, writes, and hands the connection back. So many
//! keep-alive clients, and slow clients trickling their heads, cost the poller a few hundred bytes
//! each and never pin a worker; only real work does. This is gunicorn's `gthread` worker, Apache's
//! event MPM and Puma. Its costs are two thread hand-offs per request (poller to worker and back)
//! and a ceiling of `--threads` requests in service at once: with `/block` or `/sleep` the pool
//! fills, and then the queue. When `--queue` connections already wait for a worker, a new ready
//! request is answered 503 with `Retry-After` at once (load shedding, not back-pressure: a waiting
//! client learns now instead of timing out later). Over `--max-connections` a new connection gets
//! 503 and is closed.

use crate::admission::{AcceptFailed, Backoff, ConnGuard};
use crate::blocking::{answer_ready, flush};
use crate::server::{Conn, Ctx};
use crate::shutdown;
use common::Want;
use mio::net::{TcpListener, TcpStream};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{self, Read};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};
use threadpool::ThreadPool;

const LISTENER: Token = Token(usize::MAX - 1);
const WAKER: Token = Token(usize::MAX - 2);
const STOP: Token = Token(usize::MAX - 3);

/// A connection and what the poller knows of it.
struct Entry {
    stream: TcpStream,
    conn: Conn,
    /// The deadline last put in the heap, to avoid pushing the same one twice.
    queued_deadline: Option<Instant>,
    _guard: ConnGuard,
}

/// The poller's state.
struct Poller {
    ctx: Arc<Ctx>,
    poll: Poll,
    listener: Option<TcpListener>,
    entries: Slab<Entry>,
    deadlines: BinaryHeap<Reverse<(Instant, usize)>>,
    workers: ThreadPool,
    /// Connections handed to the pool and not yet back or closed.
    in_pool: Arc<AtomicUsize>,
    waker: Arc<Waker>,
    back_tx: Sender<Entry>,
    back_rx: Receiver<Entry>,
    draining: Option<Instant>,
    /// Set when `accept` ran out of descriptors: when to try again. The listener is
    /// edge-triggered, so the connections already waiting in the backlog would otherwise wait
    /// for the next new one to arrive before anyone looked again.
    accept_retry: Option<Instant>,
    backoff: Backoff,
}

/// Serves until a graceful stop, then drains.
pub fn run(ctx: Arc<Ctx>, listener: std::net::TcpListener) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let mut listener = TcpListener::from_std(listener);
    let poll = Poll::new()?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let stop_fd = shutdown::get().fd();
    poll.registry()
        .register(&mut SourceFd(&stop_fd), STOP, Interest::READABLE)?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
    let threads = ctx.opts.threads.unwrap_or_else(|| 4 * num_cpus());
    let (back_tx, back_rx) = channel();
    let mut poller = Poller {
        workers: ThreadPool::with_name("worker".into(), threads),
        ctx,
        poll,
        listener: Some(listener),
        entries: Slab::new(),
        deadlines: BinaryHeap::new(),
        in_pool: Arc::new(AtomicUsize::new(0)),
        waker,
        back_tx,
        back_rx,
        draining: None,
        accept_retry: None,
        backoff: Backoff::default(),
    };
    poller.run()
}

fn num_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

impl Poller {
    fn run(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        loop {
            let now = Instant::now();
            if let Some(until) = self.draining {
                let done = self.entries.is_empty() && self.in_pool.load(Relaxed) == 0;
                if done || now >= until {
                    return Ok(());
                }
            }
            let timeout = self.next_timeout(now);
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept(),
                    STOP => self.begin_drain()?,
                    WAKER => self.take_back(),
                    Token(key) => self.on_readable(key),
                }
            }
            if self.accept_retry.is_some_and(|at| Instant::now() >= at) {
                self.accept_retry = None;
                self.accept();
            }
            self.expire(Instant::now());
        }
    }

    /// How long the poll may sleep: until the earliest deadline, or the end of the grace period.
    fn next_timeout(&self, now: Instant) -> Option<Duration> {
        let timer = self.deadlines.peek().map(|Reverse((at, _))| *at);
        let timer = match (timer, self.accept_retry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let until = match (timer, self.draining) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        // Round up to whole milliseconds so an early wake-up does not spin.
        until.map(|at| at.saturating_duration_since(now) + Duration::from_millis(1))
    }

    fn accept(&mut self) {
        loop {
            let Some(listener) = &self.listener else {
                return;
            };
            match listener.accept() {
                Ok((stream, _)) => {
                    self.backoff.succeeded();
                    let Some(guard) = self.ctx.admission.admit(&stream) else {
                        continue;
                    };
                    let _ = stream.set_nodelay(true);
                    let conn = self.ctx.connection(Instant::now());
                    let entry = Entry {
                        stream,
                        conn,
                        queued_deadline: None,
                        _guard: guard,
                    };
                    self.insert(entry);
                }
                Err(e) => match self.backoff.on_error(&e) {
                    AcceptFailed::Drained => return,
                    AcceptFailed::Again | AcceptFailed::Other => {}
                    AcceptFailed::Pause(pause) => {
                        // Out of descriptors: stop accepting for a moment (the backlog keeps the
                        // clients) instead of spinning, and without sleeping: the connections
                        // already open go on being served meanwhile.
                        self.accept_retry = Some(Instant::now() + pause);
                        return;
                    }
                },
            }
        }
    }

    /// Registers a connection with the poller and acts on what it already has.
    fn insert(&mut self, entry: Entry) {
        let slot = self.entries.vacant_entry();
        let key = slot.key();
        let entry = slot.insert(entry);
        let registered =
            self.poll
                .registry()
                .register(&mut entry.stream, Token(key), Interest::READABLE);
        if registered.is_err() {
            self.entries.remove(key);
            return;
        }
        self.dispatch(key);
    }

    fn on_readable(&mut self, key: usize) {
        let Some(entry) = self.entries.get_mut(key) else {
            return;
        };
        // Edge-triggered: read until the socket has nothing more, or the connection has a
        // request to hand over.
        loop {
            if entry.conn.want() != Want::Read {
                break;
            }
            match entry.stream.read(entry.conn.read_buf()) {
                Ok(n) => {
                    entry.conn.received(n, Instant::now());
                    if n == 0 {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.close(key);
                    return;
                }
            }
        }
        self.dispatch(key);
    }

    /// Acts on what a connection wants: keep waiting here, go to a worker, or close.
    fn dispatch(&mut self, key: usize) {
        let Some(entry) = self.entries.get_mut(key) else {
            return;
        };
        if self.draining.is_some() {
            entry.conn.shutdown();
        }
        match entry.conn.want() {
            Want::Read => {
                let deadline = entry.conn.poll_timeout();
                if deadline != entry.queued_deadline {
                    entry.queued_deadline = deadline;
                    if let Some(at) = deadline {
                        self.deadlines.push(Reverse((at, key)));
                        self.compact_deadlines();
                    }
                }
            }
            Want::Close => self.close(key),
            Want::Handle | Want::Write | Want::Wait => self.hand_to_worker(key),
        }
    }

    fn hand_to_worker(&mut self, key: usize) {
        let mut entry = self.entries.remove(key);
        let _ = self.poll.registry().deregister(&mut entry.stream);
        entry.queued_deadline = None;
        if self.in_pool.load(Relaxed) >= self.ctx.opts.queue as usize + self.workers.max_count() {
            self.ctx.admission.shed(&entry.stream);
            return;
        }
        self.in_pool.fetch_add(1, Relaxed);
        let ctx = self.ctx.clone();
        let back = self.back_tx.clone();
        let waker = self.waker.clone();
        let in_pool = self.in_pool.clone();
        self.workers.execute(move || {
            answer_ready(&ctx, &mut entry.conn);
            let written = flush(&mut entry.stream, &mut entry.conn, ctx.limits.body_timeout);
            // Back to the poller while it has more to read; otherwise dropped (closed) here.
            // The poller outlives the pool's jobs; if it is gone the connection just closes.
            let sent_back =
                written.is_ok() && entry.conn.want() == Want::Read && back.send(entry).is_ok();
            // Counted out before the wake: a draining poller wakes, sees nothing left in the pool
            // and exits, rather than sleeping out the rest of the grace period.
            in_pool.fetch_sub(1, Relaxed);
            if sent_back || shutdown::get().requested() {
                let _ = waker.wake();
            }
        });
    }

    fn take_back(&mut self) {
        while let Ok(entry) = self.back_rx.try_recv() {
            self.insert(entry);
        }
    }

    fn close(&mut self, key: usize) {
        let mut entry = self.entries.remove(key);
        let _ = self.poll.registry().deregister(&mut entry.stream);
    }

    /// Drops the stale deadlines once they outnumber the live ones. Every request moves its
    /// connection's deadline and leaves the old entry in the heap until it would have fired, so
    /// without this the heap holds one entry per request of the last keep-alive period: megabytes
    /// at tens of thousands of requests a second, kept by the process for good (the soak showed it
    /// as RSS climbing from round to round). Compacting every ~1024 pushes is amortised O(1). The
    /// capacity is kept: shrinking it only to grow it again moved the vector up the heap each time
    /// and left the memory below it fragmented, which the soak showed as a slower climb.
    fn compact_deadlines(&mut self) {
        let limit = 2 * self.entries.len() + 1024;
        if self.deadlines.len() < limit {
            return;
        }
        let entries = &self.entries;
        self.deadlines.retain(|Reverse((at, key))| {
            entries
                .get(*key)
                .is_some_and(|e| e.queued_deadline == Some(*at))
        });
    }

    /// Applies every deadline that has passed.
    fn expire(&mut self, now: Instant) {
        while let Some(&Reverse((at, key))) = self.deadlines.peek() {
            if at > now {
                break;
            }
            self.deadlines.pop();
            let Some(entry) = self.entries.get_mut(key) else {
                continue;
            };
            if entry.queued_deadline != Some(at) {
                continue; // a stale heap entry: the connection has moved on
            }
            entry.queued_deadline = None;
            entry.conn.handle_timeout(now);
            if entry.conn.want() == Want::Write {
                // A 408: small enough for the socket buffer; best effort, then close.
                let _ = flush_nonblocking(entry);
                self.close(key);
            } else {
                self.dispatch(key);
            }
        }
    }

    /// Stops accepting and closes every idle connection; busy ones close after their answer.
    fn begin_drain(&mut self) -> io::Result<()> {
        if self.draining.is_some() {
            return Ok(());
        }
        self.draining = Some(Instant::now() + self.ctx.grace());
        if let Some(mut listener) = self.listener.take() {
            self.poll.registry().deregister(&mut listener)?;
        }
        let stop_fd = shutdown::get().fd();
        self.poll.registry().deregister(&mut SourceFd(&stop_fd))?;
        let keys: Vec<usize> = self.entries.iter().map(|(k, _)| k).collect();
        for key in keys {
            self.dispatch(key);
        }
        Ok(())
    }
}

fn flush_nonblocking(entry: &mut Entry) -> io::Result<()> {
    use std::io::Write;
    let n = entry.stream.write(entry.conn.output())?;
    entry.conn.consume_output(n);
    Ok(())
}
