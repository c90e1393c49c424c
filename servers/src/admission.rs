//! Admission: what happens between `accept` and serving, written once for every model.
//!
//! Each model accepts in its own way (a blocking `accept`, a runtime's future, a reactor's
//! readiness, an io_uring completion) and then asks this module the same three questions:
//!
//! - May this connection in? [`Admission::admit`] checks `--max-connections` against the
//!   server's open connections and answers with a [`ConnGuard`], which counts the connection
//!   open for as long as it lives, or sheds it: a best-effort `503` ([`Admission::shed`]),
//!   encoded once at start by common's response encoder, then a close.
//! - The accept failed: what now? [`Backoff::on_error`] sorts the error: the backlog is empty,
//!   the peer gave up (accept again), or the process is out of descriptors or memory, when
//!   accepting again at once would spin on a listener that stays readable. Then the model pauses
//!   accepting for the time [`Backoff`] says, each model its own way (a sleep, a timer, a paused
//!   registration), and keeps serving its open connections meanwhile where it can.
//! - Stopping: how long to wait for the open connections? [`Admission::wait_drained`] (a thread)
//!   and [`Admission::drained`] (a task) wait until the last guard is dropped, woken by it, not
//!   polling, up to the grace period.
//!
//! The back-off policy: 10 ms, doubling at each failure in a row, at most 1 s, back to 10 ms at
//! the first accept that succeeds. Descriptors come back as connections close, which on a busy
//! server takes milliseconds: a short first pause loses little, and doubling stops a server
//! whose table stays full (a leak, a low `ulimit -n`) from waking a hundred times a second to
//! fail again and log it. The cap keeps the longest a backlogged client can wait for nothing
//! at one second once descriptors are back.

use common::encode::{encode_response, EncodeCtx};
use common::stats::Counters;
use common::{Response, Version};
use std::io::{self, Write};
use std::pin::pin;
use std::sync::atomic::{fence, AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// The admission of one server: its connection limit, its shed answer, and its drain.
pub struct Admission {
    counters: &'static Counters,
    max_connections: i64,
    /// The `503` a shed connection gets, encoded once.
    shed_response: Vec<u8>,
    /// Set once a drain wait began: from then on each closing connection wakes the waiters.
    draining: AtomicBool,
    /// Held only to check or wake; blocking drain waiters sleep on `closed`.
    lock: Mutex<()>,
    closed: Condvar,
    /// What async drain waiters sleep on (a plain waker list: it needs no tokio runtime).
    closed_async: Notify,
}

impl Admission {
    /// The admission of a server counting in `counters`, with `max_connections` open at most.
    pub fn new(counters: &'static Counters, max_connections: u32) -> Admission {
        Admission {
            counters,
            max_connections: i64::from(max_connections),
            shed_response: encode_shed_response(),
            draining: AtomicBool::new(false),
            lock: Mutex::new(()),
            closed: Condvar::new(),
            closed_async: Notify::new(),
        }
    }

    /// Connections open now.
    pub fn active(&self) -> i64 {
        self.counters.connections_active.load(Ordering::Relaxed)
    }

    /// Admits a connection just accepted: a guard that counts it open, or `None` when the server
    /// is at `--max-connections`, after the connection was shed (see [`Admission::shed`]).
    pub fn admit(&'static self, stream: impl Write) -> Option<ConnGuard> {
        if self.active() >= self.max_connections {
            self.shed(stream);
            return None;
        }
        Some(ConnGuard::new(self))
    }

    /// Sheds a connection: counts it, writes the `503` once without waiting for room, and leaves
    /// the close to the caller (dropping the socket). Call it on a non-blocking socket, or one
    /// with room for the answer, which a new connection's send buffer always has.
    pub fn shed(&self, mut stream: impl Write) {
        self.counters.shed_total.fetch_add(1, Ordering::Relaxed);
        // Best effort: a client that cannot take the answer at once gets a bare close instead.
        let _ = stream.write(&self.shed_response);
    }

    /// Blocks the calling thread until every connection is closed or `until` passes.
    pub fn wait_drained(&self, until: Instant) {
        self.draining.store(true, Ordering::SeqCst);
        let mut held = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        while self.active() > 0 {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            held = self
                .closed
                .wait_timeout(held, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Completes once every connection is closed (race it with the grace period's timer).
    pub async fn drained(&self) {
        self.draining.store(true, Ordering::SeqCst);
        loop {
            let mut notified = pin!(self.closed_async.notified());
            // Registered before the check, so a close between the two still wakes us.
            notified.as_mut().enable();
            if self.active() <= 0 {
                return;
            }
            notified.await;
        }
    }

    /// A guard was dropped: wake the drain waiters, if there are any.
    fn on_closed(&self) {
        // Pairs with the SeqCst store of `draining`: either the waiter sees this close in its
        // count, or we see it waiting (the waiter stores before it counts, we count before we
        // look).
        fence(Ordering::SeqCst);
        if self.draining.load(Ordering::Relaxed) {
            drop(self.lock.lock().unwrap_or_else(PoisonError::into_inner));
            self.closed.notify_all();
            self.closed_async.notify_waiters();
        }
    }
}

/// The answer to a connection over the limit, through the encoder every other answer takes. It
/// carries no `Date`: the bytes are made once and would go stale, and RFC 9110 (6.6.1) lets a
/// 5xx go without one.
fn encode_shed_response() -> Vec<u8> {
    let resp = Response::text(503, "too many connections").with_header("Retry-After", "1");
    let ctx = EncodeCtx {
        version: Version::Http11,
        head_only: false,
        keep_alive: false,
        date: b"",
    };
    let mut out = Vec::with_capacity(160);
    encode_response(&resp, ctx, &mut out);
    out
}

/// Counts a connection open for as long as it lives, and wakes a drain wait when it goes.
pub struct ConnGuard(&'static Admission);

impl ConnGuard {
    /// Counts a new connection. [`Admission::admit`] is the way in; the process models, which
    /// count a child's connection in the parent, come here once they decided to serve it.
    fn new(admission: &'static Admission) -> ConnGuard {
        admission.counters.connection_opened();
        ConnGuard(admission)
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.0.counters.connection_closed();
        self.0.on_closed();
    }
}

/// What a failed accept means for the accept loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcceptFailed {
    /// Nothing left in the backlog (EAGAIN): wait for readiness.
    Drained,
    /// The peer gave up before we took it, or a signal came (ECONNABORTED, EINTR...): accept
    /// again. Routine, so not logged.
    Again,
    /// Out of descriptors or memory: stop accepting for this long (already logged). The clients
    /// wait in the backlog meanwhile.
    Pause(Duration),
    /// Anything else (the listener shut down at a stop, say): the caller decides.
    Other,
}

/// The one back-off policy for accepts that fail for lack of resources (see the module doc):
/// one per accept loop, told of every accept's outcome.
#[derive(Debug)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            next: Backoff::FIRST,
        }
    }
}

impl Backoff {
    /// The first pause after a success.
    pub const FIRST: Duration = Duration::from_millis(10);
    /// The longest pause.
    pub const MAX: Duration = Duration::from_secs(1);

    /// An accept succeeded: the next failure pauses briefly again.
    pub fn succeeded(&mut self) {
        self.next = Backoff::FIRST;
    }

    /// Sorts a failed accept; for a lack of resources, logs it and says how long to pause.
    pub fn on_error(&mut self, e: &io::Error) -> AcceptFailed {
        match e.raw_os_error() {
            Some(libc::EAGAIN) => AcceptFailed::Drained, // EWOULDBLOCK is the same number
            Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM) => {
                let pause = self.next;
                self.next = (pause * 2).min(Backoff::MAX);
                eprintln!("zoo: accept: {e}; pausing accepts for {pause:?}");
                AcceptFailed::Pause(pause)
            }
            Some(
                libc::EINTR
                | libc::ECONNABORTED
                | libc::EPROTO
                | libc::EPERM
                | libc::ENETDOWN
                | libc::ENETUNREACH
                | libc::EHOSTUNREACH
                | libc::ENOPROTOOPT
                | libc::EHOSTDOWN
                | libc::ENONET
                | libc::EOPNOTSUPP,
            ) => AcceptFailed::Again,
            _ => AcceptFailed::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admission(max: u32) -> &'static Admission {
        Box::leak(Box::new(Admission::new(Box::leak(Box::default()), max)))
    }

    #[test]
    fn the_shed_answer_is_a_complete_503_that_closes() {
        let bytes = admission(1).shed_response.clone();
        let text = String::from_utf8(bytes).expect("ASCII");
        assert!(
            text.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
            "{text}"
        );
        assert!(text.contains("\r\nRetry-After: 1\r\n"), "{text}");
        assert!(text.contains("\r\nConnection: close\r\n"), "{text}");
        assert!(text.contains("\r\nContent-Length: 20\r\n"), "{text}");
        assert!(!text.contains("Date:"), "{text}");
        assert!(text.ends_with("\r\n\r\ntoo many connections"), "{text}");
    }

    #[test]
    fn admits_up_to_the_limit_then_sheds() {
        let a = admission(2);
        let mut out = Vec::new();
        let first = a.admit(&mut out).expect("first admitted");
        let _second = a.admit(&mut out).expect("second admitted");
        assert!(out.is_empty());
        assert!(a.admit(&mut out).is_none());
        assert_eq!(out, a.shed_response);
        assert_eq!(a.counters.shed_total.load(Ordering::Relaxed), 1);
        drop(first);
        assert!(a.admit(&mut Vec::new()).is_some());
    }

    #[test]
    fn back_off_doubles_to_its_cap_and_resets_on_success() {
        let mut b = Backoff::default();
        let emfile = io::Error::from_raw_os_error(libc::EMFILE);
        let pauses: Vec<_> = (0..9).map(|_| b.on_error(&emfile)).collect();
        let ms = |n| AcceptFailed::Pause(Duration::from_millis(n));
        assert_eq!(pauses[..4], [ms(10), ms(20), ms(40), ms(80)]);
        assert_eq!(pauses[7..], [ms(1000), ms(1000)]);
        b.succeeded();
        assert_eq!(b.on_error(&emfile), ms(10));
        let aborted = io::Error::from_raw_os_error(libc::ECONNABORTED);
        assert_eq!(b.on_error(&aborted), AcceptFailed::Again);
        let again = io::Error::from_raw_os_error(libc::EAGAIN);
        assert_eq!(b.on_error(&again), AcceptFailed::Drained);
    }

    #[test]
    fn a_drain_wait_is_woken_by_the_last_close() {
        let a = admission(10);
        let guard = a.admit(Vec::new()).expect("admitted");
        let closer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            drop(guard);
        });
        let started = Instant::now();
        a.wait_drained(started + Duration::from_secs(10));
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(a.active(), 0);
        closer.join().expect("closer");
    }
}
