//! `pool`: a fixed pool of worker threads fed with connections that have a whole request.
//!
//! One poller thread (epoll) holds every connection that is idle between requests or still
//! receiving a head or body, and accepts new ones. Only when a connection has a complete request
//! does it go, through a bounded queue, to a worker of the pool, which answers every request it
//! has ready with blocking waits, writes, and hands the connection back. So many keep-alive
//! clients, and slow clients trickling their heads, cost the poller a few hundred bytes each and
//! never pin a worker; only real work does. This is gunicorn's `gthread` worker, Apache's event
//! MPM and Puma. Its costs are two thread hand-offs per request (poller to worker and back) and a
//! ceiling of `--threads` requests in service at once: with `/block` or `/sleep` the pool fills,
//! and then the queue. When `--queue` connections already wait for a worker, a new ready request
//! is answered 503 with `Retry-After` at once (load shedding, not back-pressure: a waiting client
//! learns now instead of timing out later). Over `--max-connections` a new connection gets 503 and
//! is closed.
//!
//! # The trips into the kernel
//!
//! A keep-alive request costs three syscalls of its own, each needed by the design, and a share
//! of a few more per batch of requests:
//!
//! - the poller's `recv` of the request. A read that comes back shorter than its buffer emptied
//!   the socket, so the poller does not read again to hear `EAGAIN` (unless epoll said the peer
//!   hung up: then it reads on to the end of input, which that edge announced);
//! - the worker's `send` of the answer;
//! - the poller's re-arm, `EPOLL_CTL_MOD`, when the connection is back. Connections are
//!   registered `EPOLLONESHOT`: a connection out with a worker is reported to nobody (a pipelined
//!   request arriving meanwhile cannot make the poller spin), and the re-arm reports input that
//!   came while it was out. It replaces the delete and add around each hand-off.
//!
//! Per batch, not per request: the poller's `epoll_wait`; a worker's wake-up of the poller (an
//! eventfd write) when it hands a connection back while the poller sleeps, which only the first
//! hand-back after the poller went to sleep makes; and the futex pair of waking a worker, which
//! the poller does only when no worker is running, or when jobs it queued earlier are still
//! waiting (the running ones are behind). A worker about to block for an answer (`/sleep`,
//! `/compute`) wakes another first when jobs wait, so a slow request never holds up the queue.
//! Everything a connection does happens on the poller's thread but the answer, its write and,
//! when the connection ends there, its close: the workers never register or re-arm a descriptor,
//! and the poller never touches the socket of a connection a worker has (its slot stays taken
//! until the worker hands it back, or says it closed it), so no descriptor number is reused under
//! anyone's feet.

use crate::admission::{AcceptFailed, Backoff, ConnGuard};
use crate::blocking::flush;
use crate::server::{Conn, Ctx};
use crate::shutdown;
use common::{Reply, Want};
use slab::Slab;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

const LISTENER: u64 = u64::MAX - 1;
const WAKER: u64 = u64::MAX - 2;
const STOP: u64 = u64::MAX - 3;

/// The most readiness reports taken per wait; more stay queued for the next.
const MAX_EVENTS: usize = 1024;

/// A connection and what the poller knows of it.
struct Entry {
    stream: TcpStream,
    conn: Conn,
    /// The deadline last put in the heap, to avoid pushing the same one twice.
    queued_deadline: Option<Instant>,
    _guard: ConnGuard,
}

/// A place in the poller's table: the connection, or `None` while a worker has it.
type Slot = Option<Entry>;

/// A connection with a request, for a worker, under its key in the poller's table.
type Job = (usize, Entry);

/// A worker's hand-back: the key, and the connection unless the worker closed it.
type Back = (usize, Option<Entry>);

/// What the poller and the workers share.
struct Shared {
    ctx: Arc<Ctx>,
    queue: Queue,
    /// Connections handed to the pool (queued or in service) and not yet back or closed.
    in_pool: AtomicUsize,
    /// The poller's eventfd, registered edge-triggered: a write wakes its wait.
    waker: OwnedFd,
    /// Set by the poller before it waits, taken by the first worker that hands a connection back
    /// while it is set, which then wakes the poller.
    poller_asleep: AtomicBool,
    back: Mutex<Sender<Back>>,
}

/// The poller's state.
struct Poller {
    shared: Arc<Shared>,
    epfd: OwnedFd,
    listener: Option<TcpListener>,
    slots: Slab<Slot>,
    deadlines: BinaryHeap<Reverse<(Instant, usize)>>,
    back: Receiver<Back>,
    threads: usize,
    draining: Option<Instant>,
    /// Set when `accept` ran out of descriptors: when to try again. The listener is
    /// edge-triggered, so the connections already waiting in the backlog would otherwise wait
    /// for the next new one to arrive before anyone looked again.
    accept_retry: Option<Instant>,
    backoff: Backoff,
}

/// Serves until a graceful stop, then drains.
pub fn run(ctx: Arc<Ctx>, listener: TcpListener) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    // SAFETY: epoll_create1 and eventfd take flags and return a new descriptor or -1.
    let epfd = unsafe { owned(libc::epoll_create1(libc::EPOLL_CLOEXEC))? };
    // SAFETY: as above.
    let waker = unsafe { owned(libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC))? };
    // The listener is edge-triggered and drained to EAGAIN at each report, so that while
    // accepting is paused for lack of descriptors its pending clients do not wake the poller
    // over and over; the pause has its own timer.
    let edge = (libc::EPOLLIN | libc::EPOLLET) as u32;
    let listen_fd = listener.as_raw_fd();
    ctl(&epfd, libc::EPOLL_CTL_ADD, listen_fd, edge, LISTENER)?;
    ctl(&epfd, libc::EPOLL_CTL_ADD, waker.as_raw_fd(), edge, WAKER)?;
    let level = libc::EPOLLIN as u32;
    let stop_fd = shutdown::get().fd();
    ctl(&epfd, libc::EPOLL_CTL_ADD, stop_fd, level, STOP)?;
    let threads = ctx.opts.threads.unwrap_or_else(|| 4 * num_cpus()).max(1);
    let (back_tx, back_rx) = channel();
    let shared = Arc::new(Shared {
        ctx,
        queue: Queue::new(threads),
        in_pool: AtomicUsize::new(0),
        waker,
        poller_asleep: AtomicBool::new(false),
        back: Mutex::new(back_tx),
    });
    for _ in 0..threads {
        let shared = shared.clone();
        // The workers run until the process exits; the poller decides when that is.
        std::thread::Builder::new()
            .name("worker".into())
            .spawn(move || work(&shared))?;
    }
    let mut poller = Poller {
        shared,
        epfd,
        listener: Some(listener),
        slots: Slab::new(),
        deadlines: BinaryHeap::new(),
        back: back_rx,
        threads,
        draining: None,
        accept_retry: None,
        backoff: Backoff::default(),
    };
    poller.run()
}

fn num_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Takes ownership of a descriptor a syscall returned, or of its error.
///
/// # Safety
///
/// `fd`, when not negative, must be a fresh descriptor that nothing else owns.
unsafe fn owned(fd: RawFd) -> io::Result<OwnedFd> {
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as the caller promises.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// One `epoll_ctl`.
fn ctl(epfd: &OwnedFd, op: libc::c_int, fd: RawFd, events: u32, token: u64) -> io::Result<()> {
    let mut event = libc::epoll_event { events, u64: token };
    // SAFETY: `event` lives across the call; the kernel copies it.
    if unsafe { libc::epoll_ctl(epfd.as_raw_fd(), op, fd, &mut event) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// What a connection is registered for: its next input, reported once, and a hang-up.
const CONN_EVENTS: u32 = (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLONESHOT) as u32;

/// Events that say the peer is gone or half gone: read on to the end.
const GONE: u32 = (libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32;

impl Poller {
    fn run(&mut self) -> io::Result<()> {
        let mut events: Vec<libc::epoll_event> = Vec::with_capacity(MAX_EVENTS);
        loop {
            let now = Instant::now();
            self.take_back();
            if let Some(until) = self.draining {
                let done = self.slots.is_empty() && self.shared.in_pool.load(SeqCst) == 0;
                if done || now >= until {
                    return Ok(());
                }
            }
            let timeout = self.next_timeout(now);
            // Asleep from here: a worker handing a connection back after this store wakes us;
            // one that did before it is seen by the second look at the channel.
            self.shared.poller_asleep.store(true, SeqCst);
            let timeout = if self.take_back() {
                Some(Duration::ZERO)
            } else {
                timeout
            };
            events.clear();
            // SAFETY: the buffer has room for MAX_EVENTS events; the kernel fills the first n.
            let n = unsafe {
                libc::epoll_wait(
                    self.epfd.as_raw_fd(),
                    events.as_mut_ptr(),
                    MAX_EVENTS as libc::c_int,
                    timeout_ms(timeout),
                )
            };
            self.shared.poller_asleep.store(false, SeqCst);
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            // SAFETY: epoll_wait initialised the first n (<= MAX_EVENTS <= capacity) events.
            unsafe { events.set_len(n as usize) };
            // Connections handed back before these reports came are in their slots first.
            self.take_back();
            let mut jobs = Vec::new();
            for event in &events {
                match event.u64 {
                    LISTENER => self.accept(&mut jobs),
                    STOP => self.begin_drain(&mut jobs),
                    WAKER => {}
                    key => self.on_readable(key as usize, event.events, &mut jobs),
                }
            }
            if self.accept_retry.is_some_and(|at| Instant::now() >= at) {
                self.accept_retry = None;
                self.accept(&mut jobs);
            }
            self.expire(Instant::now(), &mut jobs);
            self.shared.queue.push(jobs);
        }
    }

    /// How long the poll may sleep: until the earliest deadline, the accept retry, or the end
    /// of the grace period.
    fn next_timeout(&self, now: Instant) -> Option<Duration> {
        let timer = self.deadlines.peek().map(|Reverse((at, _))| *at);
        let until = [timer, self.accept_retry, self.draining]
            .into_iter()
            .flatten()
            .min();
        // Round up to whole milliseconds so an early wake-up does not spin.
        until.map(|at| at.saturating_duration_since(now) + Duration::from_millis(1))
    }

    fn accept(&mut self, jobs: &mut Vec<Job>) {
        while self.accept_retry.is_none() {
            let Some(listener) = &self.listener else {
                return;
            };
            let flags = libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
            // SAFETY: null address pointers ask for no peer address; the result is a new
            // descriptor or -1.
            let fd = unsafe {
                libc::accept4(
                    listener.as_raw_fd(),
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    flags,
                )
            };
            if fd >= 0 {
                self.backoff.succeeded();
                // SAFETY: a fresh descriptor that nothing else owns.
                let stream = unsafe { TcpStream::from_raw_fd(fd) };
                let Some(guard) = self.shared.ctx.admission.admit(&stream) else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let entry = Entry {
                    conn: self.shared.ctx.connection(Instant::now()),
                    stream,
                    queued_deadline: None,
                    _guard: guard,
                };
                let key = self.slots.insert(Some(entry));
                let registered = ctl(&self.epfd, libc::EPOLL_CTL_ADD, fd, CONN_EVENTS, key as u64);
                if registered.is_err() {
                    self.slots.remove(key);
                    continue;
                }
                self.dispatch(key, jobs);
                continue;
            }
            let e = io::Error::last_os_error();
            match self.backoff.on_error(&e) {
                AcceptFailed::Drained => return,
                AcceptFailed::Again | AcceptFailed::Other => {}
                // Out of descriptors: stop accepting for a moment (the backlog keeps the
                // clients) instead of spinning, and without sleeping: the connections already
                // open go on being served meanwhile.
                AcceptFailed::Pause(pause) => self.accept_retry = Some(Instant::now() + pause),
            }
        }
    }

    fn entry(&mut self, key: usize) -> Option<&mut Entry> {
        match self.slots.get_mut(key) {
            Some(Some(entry)) => Some(entry),
            _ => None,
        }
    }

    fn on_readable(&mut self, key: usize, events: u32, jobs: &mut Vec<Job>) {
        let Some(entry) = self.entry(key) else {
            return;
        };
        let gone = events & GONE != 0;
        loop {
            if entry.conn.want() != Want::Read {
                break;
            }
            let buf = entry.conn.read_buf();
            let room = buf.len();
            match entry.stream.read(buf) {
                Ok(n) => {
                    entry.conn.received(n, Instant::now());
                    // Short: the socket is empty now; what comes later is reported after the
                    // re-arm. After a hang-up report, on to the end of input.
                    if n == 0 || (n < room && !gone) {
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
        self.dispatch(key, jobs);
        self.rearm(key);
    }

    /// Re-arms the one-shot registration of a connection that waits for input here.
    fn rearm(&mut self, key: usize) {
        let Some(entry) = self.entry(key) else {
            return;
        };
        if entry.conn.want() != Want::Read {
            return;
        }
        let fd = entry.stream.as_raw_fd();
        if ctl(&self.epfd, libc::EPOLL_CTL_MOD, fd, CONN_EVENTS, key as u64).is_err() {
            self.close(key);
        }
    }

    /// Acts on what a connection wants: keep waiting here, go to a worker, or close.
    fn dispatch(&mut self, key: usize, jobs: &mut Vec<Job>) {
        let draining = self.draining.is_some();
        let Some(entry) = self.entry(key) else {
            return;
        };
        if draining {
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
            Want::Handle | Want::Write | Want::Wait => self.hand_to_worker(key, jobs),
        }
    }

    fn hand_to_worker(&mut self, key: usize, jobs: &mut Vec<Job>) {
        let Some(mut entry) = self.slots.get_mut(key).and_then(Option::take) else {
            return;
        };
        entry.queued_deadline = None;
        let limit = self.shared.ctx.opts.queue as usize + self.threads;
        if self.shared.in_pool.load(SeqCst) >= limit {
            self.shared.ctx.admission.shed(&entry.stream);
            self.slots.remove(key);
            return;
        }
        self.shared.in_pool.fetch_add(1, SeqCst);
        jobs.push((key, entry));
    }

    /// Puts the connections the workers handed back in their slots, each with its deadline, and
    /// re-arms them; frees the slots of those they closed. Says whether there were any.
    fn take_back(&mut self) -> bool {
        let mut any = false;
        let mut jobs = Vec::new();
        while let Ok((key, entry)) = self.back.try_recv() {
            any = true;
            let Some(entry) = entry else {
                self.slots.try_remove(key);
                continue;
            };
            if let Some(slot) = self.slots.get_mut(key) {
                *slot = Some(entry);
            }
            // During a stop an idle one closes here; one with input waits for it, re-armed.
            self.dispatch(key, &mut jobs);
            self.rearm(key);
        }
        self.shared.queue.push(jobs);
        any
    }

    /// Closes a connection that is here (never one a worker has: its slot stays until it is
    /// handed back). Closing the socket takes it out of the epoll set as well.
    fn close(&mut self, key: usize) {
        if let Some(Some(_)) = self.slots.get(key) {
            self.slots.remove(key);
        }
    }

    /// Drops the stale deadlines once they outnumber the live ones. Every request moves its
    /// connection's deadline and leaves the old entry in the heap until it would have fired, so
    /// without this the heap holds one entry per request of the last keep-alive period: megabytes
    /// at tens of thousands of requests a second, kept by the process for good (the soak showed it
    /// as RSS climbing from round to round). Compacting every ~1024 pushes is amortised O(1). The
    /// capacity is kept: shrinking it only to grow it again moved the vector up the heap each time
    /// and left the memory below it fragmented, which the soak showed as a slower climb.
    fn compact_deadlines(&mut self) {
        let limit = 2 * self.slots.len() + 1024;
        if self.deadlines.len() < limit {
            return;
        }
        let slots = &self.slots;
        self.deadlines.retain(|Reverse((at, key))| {
            matches!(slots.get(*key), Some(Some(e)) if e.queued_deadline == Some(*at))
        });
    }

    /// Applies every deadline that has passed.
    fn expire(&mut self, now: Instant, jobs: &mut Vec<Job>) {
        while let Some(&Reverse((at, key))) = self.deadlines.peek() {
            if at > now {
                break;
            }
            self.deadlines.pop();
            let Some(entry) = self.entry(key) else {
                continue;
            };
            if entry.queued_deadline != Some(at) {
                continue; // a stale heap entry: the connection has moved on
            }
            entry.queued_deadline = None;
            entry.conn.handle_timeout(now);
            if entry.conn.want() == Want::Write {
                // A 408: small enough for the socket buffer; best effort, then close.
                if let Ok(n) = entry.stream.write(entry.conn.output()) {
                    entry.conn.consume_output(n);
                }
                self.close(key);
            } else {
                self.dispatch(key, jobs);
            }
        }
    }

    /// Stops accepting and closes every idle connection; busy ones close after their answer.
    fn begin_drain(&mut self, jobs: &mut Vec<Job>) {
        if self.draining.is_some() {
            return;
        }
        self.draining = Some(Instant::now() + self.shared.ctx.grace());
        // Closing the listener takes it out of the epoll set.
        self.listener = None;
        let stop_fd = shutdown::get().fd();
        let _ = ctl(&self.epfd, libc::EPOLL_CTL_DEL, stop_fd, 0, 0);
        let keys: Vec<usize> = self.slots.iter().map(|(k, _)| k).collect();
        for key in keys {
            self.dispatch(key, jobs);
        }
    }
}

/// The wait's timeout in milliseconds for `epoll_wait`: -1 for none.
fn timeout_ms(timeout: Option<Duration>) -> libc::c_int {
    timeout.map_or(-1, |t| {
        t.as_millis().min(libc::c_int::MAX as u128) as libc::c_int
    })
}

/// A worker's life: take a job, serve it, hand the connection back; sleep when there is none.
fn work(shared: &Shared) {
    let mut state = shared.queue.lock();
    loop {
        if let Some(job) = state.jobs.pop_front() {
            drop(state);
            serve(shared, job);
            state = shared.queue.lock();
            continue;
        }
        state.running -= 1;
        state.sleeping += 1;
        while state.permits == 0 {
            state = shared
                .queue
                .ready
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        state.permits -= 1;
    }
}

/// Answers every ready request of a connection, writes, and hands it back or closes it.
fn serve(shared: &Shared, (key, mut entry): Job) {
    let ctx = &shared.ctx;
    while let Some(req) = entry.conn.next_request() {
        let started = Instant::now();
        let resp = match ctx.answer(&req) {
            Reply::Ready(resp) => resp,
            // About to block for the answer: whoever waits behind gets another worker.
            slow => {
                shared.queue.blocking();
                let resp = slow.wait_blocking();
                shared.queue.unblocked();
                resp
            }
        };
        ctx.record(&req, &resp, started);
        if shutdown::get().requested() {
            entry.conn.shutdown();
        }
        entry.conn.respond(&resp, Instant::now());
    }
    let written = flush(&mut entry.stream, &mut entry.conn, ctx.limits.body_timeout);
    // Back to the poller while it has more to read; otherwise dropped (closed) here. The slot
    // stays `Out` in the poller's table until a stop ends the process, or for good if the poller
    // is gone.
    let keep = written.is_ok() && entry.conn.want() == Want::Read;
    // A closed connection is closed here, before the poller hears of it, so its slot (and the
    // descriptor's number) is reused only once the socket is gone. If the poller is gone the
    // connection just closes.
    let back = if keep {
        Some(entry)
    } else {
        drop(entry);
        None
    };
    let _ = lock(&shared.back).send((key, back));
    // Counted out after the send: a draining poller that sees nothing in the pool has every
    // connection handed back in its channel.
    shared.in_pool.fetch_sub(1, SeqCst);
    // A closed one only frees a slot, which can wait for the poller's next wake-up, but during
    // a stop the poller waits for it.
    let wake = if keep {
        shared.poller_asleep.swap(false, SeqCst)
    } else {
        shutdown::get().requested()
    };
    if wake {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a valid u64 to our eventfd.
        unsafe { libc::write(shared.waker.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing panics while holding these locks; if it ever did, the data is still consistent.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The jobs for the workers, and who is awake to take them.
struct Queue {
    state: Mutex<QueueState>,
    ready: Condvar,
}

struct QueueState {
    jobs: VecDeque<Job>,
    /// Workers waiting for a permit.
    sleeping: usize,
    /// Workers awake and not blocked for an answer (counting those given a permit).
    running: usize,
    /// Wake-ups granted and not yet taken.
    permits: usize,
}

impl Queue {
    /// The queue of `workers` workers, each running until it first finds the queue empty.
    fn new(workers: usize) -> Queue {
        Queue {
            state: Mutex::new(QueueState {
                jobs: VecDeque::new(),
                sleeping: 0,
                running: workers,
                permits: 0,
            }),
            ready: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, QueueState> {
        lock(&self.state)
    }

    /// Queues a batch of jobs, waking a worker if none is running or the running ones are behind.
    fn push(&self, batch: Vec<Job>) {
        if batch.is_empty() {
            return;
        }
        let mut state = lock(&self.state);
        let behind = !state.jobs.is_empty();
        state.jobs.extend(batch);
        if state.running == 0 || behind {
            state.wake_one(&self.ready);
        }
    }

    /// A worker is about to block for an answer: wake another if jobs wait.
    fn blocking(&self) {
        let mut state = lock(&self.state);
        state.running -= 1;
        if !state.jobs.is_empty() {
            state.wake_one(&self.ready);
        }
    }

    /// A worker has its answer and runs again.
    fn unblocked(&self) {
        lock(&self.state).running += 1;
    }
}

impl QueueState {
    fn wake_one(&mut self, ready: &Condvar) {
        if self.sleeping > 0 {
            self.sleeping -= 1;
            self.running += 1;
            self.permits += 1;
            ready.notify_one();
        }
    }
}
