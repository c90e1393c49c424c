//! The accept loop and the per-connection loop of the async models (tokio, async-std, smol),
//! written once over a small [`Runtime`] trait: a runtime lends its listener, its socket reads and
//! writes and its timer, and the caller says how to spawn a task. The loops are those of
//! `blocking.rs` with every wait turned into an `.await`:
//!
//! - Between requests a connection gives its buffers back (to a few spare ones per thread, taken
//!   by the next connection with input, so a busy connection does not allocate per request) and
//!   waits for readiness, not for a read, so an idle connection holds no buffer.
//! - Each wait on input races three futures, in this order: the read, the graceful-stop notice
//!   and the connection's deadline ([`Connection::poll_timeout`], a `timeout_at` on the runtime's
//!   timer). Later ones are created only when the earlier are pending, so a read that finds bytes
//!   at once costs neither a timer nor a waiter. A runtime's socket read is cancel-safe (it has
//!   read or it has not), so dropping the losers loses nothing.
//! - `Reply::Delayed` sleeps on the runtime's timer; `Reply::Compute` runs on rayon and wakes the
//!   task through a `tokio::sync::oneshot` (tokio's sync types need no tokio runtime: they are
//!   plain wakers, so async-std and smol use them too).
//! - The service is called inline on the executor thread: `/block` stalls every task of that
//!   thread, which is the lesson of an event loop, not something to hide behind `spawn_blocking`.
//! - Graceful stop: the caller passes a future that completes on SIGTERM/SIGINT (the runtime
//!   watching the shutdown pipe in its reactor). The accept loop then stops accepting, tells every
//!   connection through a `watch` channel (idle ones close at once, busy ones after their answer),
//!   and waits for them up to `--grace`.
//! - Admission ([`crate::admission`]) the async way: over `--max-connections` a new connection
//!   gets a best-effort 503 and is closed; out of descriptors, the accept loop sleeps on the
//!   runtime's timer; at the stop it waits for the last connection's guard to wake it.

use crate::admission::{AcceptFailed, Backoff};
use crate::server::Ctx;
use crate::shutdown;
use common::handler::{internal_error, run_job};
use common::{Connection, Reply, Spare, Want};
use socket2::SockRef;
use std::cell::RefCell;
use std::future::{pending, poll_fn, Future};
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, watch};

/// What the loops need from a runtime: accept, readiness, read, write and a timer.
pub trait Runtime: 'static {
    /// The runtime's listening socket.
    type Listener;
    /// The runtime's connected socket (non-blocking underneath, as every runtime makes it).
    type Stream: AsFd + Send + Unpin + 'static;

    /// Accepts one connection.
    fn accept(listener: &Self::Listener) -> impl Future<Output = io::Result<Self::Stream>> + '_;

    /// Completes when the socket has input (or end of input) to read.
    fn readable(stream: &Self::Stream) -> impl Future<Output = io::Result<()>> + Send + '_;

    /// Reads once into `buf`; 0 is end of input.
    fn read<'a>(
        stream: &'a mut Self::Stream,
        buf: &'a mut [u8],
    ) -> impl Future<Output = io::Result<usize>> + Send + 'a;

    /// Writes once from `buf`, returning how much was taken.
    fn write<'a>(
        stream: &'a mut Self::Stream,
        buf: &'a [u8],
    ) -> impl Future<Output = io::Result<usize>> + Send + 'a;

    /// Completes at `deadline`.
    fn sleep_until(deadline: Instant) -> impl Future<Output = ()> + Send;
}

/// A connection's task, boxed so that each runtime's spawn can take it.
pub type Task = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Threads of a model that runs its own scheduler (coroutine, tokio, smol): `--threads`, or one
/// per CPU.
pub fn scheduler_threads(ctx: &Ctx) -> usize {
    let cpus = || std::thread::available_parallelism().map_or(1, |n| n.get());
    ctx.opts.threads.unwrap_or_else(cpus).max(1)
}

/// Accepts until `stopped` completes, spawning a task per connection, then drains.
pub async fn serve<R: Runtime>(
    ctx: Arc<Ctx>,
    listener: R::Listener,
    stopped: impl Future<Output = ()>,
    spawn: impl Fn(Task),
) {
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut stopped = pin!(stopped);
    let mut backoff = Backoff::default();
    loop {
        match race(R::accept(&listener), pending(), stopped.as_mut()).await {
            Woken::Done(Ok(stream)) => {
                backoff.succeeded();
                // The socket is non-blocking: a 503 goes out now or not at all.
                let Some(guard) = ctx.admission.admit(&*SockRef::from(&stream)) else {
                    continue;
                };
                let ctx = ctx.clone();
                let stop = stop_rx.clone();
                spawn(Box::pin(async move {
                    let _guard = guard;
                    serve_conn::<R>(&ctx, stream, stop).await;
                }));
            }
            Woken::Done(Err(e)) => {
                // Out of descriptors: the backlog keeps the clients while connections close.
                if let AcceptFailed::Pause(pause) = backoff.on_error(&e) {
                    R::sleep_until(Instant::now() + pause).await;
                }
            }
            Woken::Stop | Woken::Timeout => break,
        }
    }
    drop(listener);
    // Receivers outlive the sender's drop too, but a sent value is clearer than a closed channel.
    let _ = stop_tx.send(true);
    let grace = R::sleep_until(Instant::now() + ctx.grace());
    race(ctx.admission.drained(), grace, pending()).await;
}

thread_local! {
    /// Buffers that idle connections of this executor thread gave back, for the next connection
    /// that has input (a task may resume on another thread: buffers are only memory).
    static SPARE: RefCell<Spare> = RefCell::new(Spare::new());
}

/// Serves one connection to its end.
async fn serve_conn<R: Runtime>(ctx: &Ctx, mut stream: R::Stream, mut stop: watch::Receiver<bool>) {
    let _ = SockRef::from(&stream).set_nodelay(true);
    let mut conn = ctx.connection(Instant::now());
    let mut draining = false;
    // Both kept for the connection's life, so a request costs no timer and no waiter of its own.
    let mut stop_notice = pin!(stop_notice(&mut stop));
    let mut timer = Timer::<R>::default();
    loop {
        answer_ready::<R>(ctx, &mut conn).await;
        if flush::<R>(ctx, &mut stream, &mut conn).await.is_err() {
            return;
        }
        match conn.want() {
            Want::Close => return,
            Want::Read => {
                if shutdown::get().requested() && !draining {
                    draining = true;
                    conn.shutdown();
                    continue;
                }
                timer.arm(conn.poll_timeout());
                // Once draining, the notice stays set: watching it would end every wait at once.
                let mut stopped = poll_fn(|cx| match draining {
                    true => Poll::Pending,
                    false => stop_notice.as_mut().poll(cx),
                });
                let mut woken = Woken::Done(Ok(()));
                if conn.is_idle() {
                    // Between requests, wait for input with no buffer: an idle connection holds
                    // a few hundred bytes, not its 8 KiB of buffers.
                    SPARE.with_borrow_mut(|spare| conn.release_buffers_into(spare));
                    let ready = R::readable(&stream);
                    woken = race(ready, timer.fired(), &mut stopped).await;
                }
                let woken = match woken {
                    Woken::Done(Ok(())) => {
                        SPARE.with_borrow_mut(|spare| conn.reuse_buffers(spare));
                        let read = R::read(&mut stream, conn.read_buf());
                        race(read, timer.fired(), &mut stopped).await
                    }
                    Woken::Done(Err(e)) => Woken::Done(Err(e)),
                    Woken::Timeout => Woken::Timeout,
                    Woken::Stop => Woken::Stop,
                };
                match woken {
                    Woken::Done(Ok(n)) => conn.received(n, Instant::now()),
                    Woken::Done(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                    Woken::Done(Err(_)) => return,
                    // The timer may have been set for an earlier deadline than the one running
                    // now: only a deadline that passed counts.
                    Woken::Timeout => conn.handle_timeout(Instant::now()),
                    Woken::Stop => {
                        draining = true;
                        conn.shutdown();
                    }
                }
            }
            // Every ready request was answered above.
            Want::Handle | Want::Wait | Want::Write => {}
        }
    }
}

/// A runtime's timer, boxed so that any runtime's fits.
type Sleep = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A connection's deadline timer, kept across requests. Each request moves the deadline later
/// (the keep-alive timeout counts from the last answer), and setting a runtime's timer for each
/// would cost a timer-wheel update per request; so the timer is set again only for an earlier
/// deadline than the one it is set for, and when it fires before the connection's deadline the
/// connection just finds nothing due and waits again (the nginx way with its timer tree).
struct Timer<R: Runtime> {
    armed: Option<(Instant, Sleep)>,
    runtime: std::marker::PhantomData<fn() -> R>,
}

impl<R: Runtime> Default for Timer<R> {
    fn default() -> Self {
        Timer {
            armed: None,
            runtime: std::marker::PhantomData,
        }
    }
}

impl<R: Runtime> Timer<R> {
    /// Makes sure the timer fires no later than `deadline`.
    fn arm(&mut self, deadline: Option<Instant>) {
        let Some(at) = deadline else {
            self.armed = None;
            return;
        };
        if !matches!(&self.armed, Some((set, _)) if *set <= at) {
            self.armed = Some((at, Box::pin(R::sleep_until(at))));
        }
    }

    /// Completes when the timer fires (never, when it is not armed); it is then disarmed.
    fn fired(&mut self) -> impl Future<Output = ()> + '_ {
        poll_fn(|cx| match &mut self.armed {
            Some((_, sleep)) => {
                let fired = sleep.as_mut().poll(cx);
                if fired.is_ready() {
                    self.armed = None;
                }
                fired
            }
            None => Poll::Pending,
        })
    }
}

/// Answers every request the connection has ready, each in its own way.
async fn answer_ready<R: Runtime>(ctx: &Ctx, conn: &mut Connection) {
    while let Some(req) = conn.next_request() {
        let started = Instant::now();
        let resp = match ctx.answer(&req) {
            Reply::Ready(resp) => resp,
            Reply::Delayed(wait, resp) => {
                R::sleep_until(Instant::now() + wait).await;
                resp
            }
            Reply::Compute(job) => {
                let (tx, rx) = oneshot::channel();
                rayon::spawn(move || {
                    // A failed send means the connection's task is gone: nothing to do.
                    let _ = tx.send(run_job(job));
                });
                rx.await.unwrap_or_else(|_| internal_error())
            }
        };
        ctx.record(&req, &resp, started);
        if shutdown::get().requested() {
            conn.shutdown();
        }
        conn.respond(&resp, Instant::now());
    }
}

/// Writes all queued output. A client that takes nothing for a body timeout is dropped.
async fn flush<R: Runtime>(
    ctx: &Ctx,
    stream: &mut R::Stream,
    conn: &mut Connection,
) -> io::Result<()> {
    while !conn.output().is_empty() {
        let timeout = ctx.limits.body_timeout;
        let write = R::write(stream, conn.output());
        // A timer polled, so set (and the clock read), only once the socket is found full.
        let timer = async move { R::sleep_until(Instant::now() + timeout).await };
        match race(write, timer, pending::<()>()).await {
            Woken::Done(Ok(0)) => return Err(io::ErrorKind::WriteZero.into()),
            Woken::Done(Ok(n)) => conn.consume_output(n),
            Woken::Done(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
            Woken::Done(Err(e)) => return Err(e),
            Woken::Timeout | Woken::Stop => return Err(io::ErrorKind::TimedOut.into()),
        }
    }
    Ok(())
}

/// Completes when the graceful-stop notice is set.
async fn stop_notice(stop: &mut watch::Receiver<bool>) {
    // An error means the sender is gone: the server is stopping all the same.
    drop(stop.wait_for(|stop| *stop).await);
}

/// What a [`race`] ended with.
enum Woken<T> {
    Done(T),
    Timeout,
    Stop,
}

/// Runs `work` until it completes, `timer` fires or `stop` completes, whichever is first (checked
/// in that order). The timer and the stop future are only polled, and so only registered with the
/// runtime, once `work` has been found pending.
async fn race<T>(
    work: impl Future<Output = T>,
    timer: impl Future<Output = ()>,
    stop: impl Future<Output = ()>,
) -> Woken<T> {
    let mut work = pin!(work);
    let mut stop = pin!(stop);
    let mut timer = pin!(timer);
    poll_fn(|cx| {
        if let Poll::Ready(out) = work.as_mut().poll(cx) {
            return Poll::Ready(Woken::Done(out));
        }
        if stop.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Woken::Stop);
        }
        if timer.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Woken::Timeout);
        }
        Poll::Pending
    })
    .await
}

/// Completes when a graceful stop is asked for, for the runtimes that run on async-io's reactor
/// (smol, and async-std underneath): the shutdown pipe is registered with the reactor like any
/// socket, so the stop wakes the loop at once.
pub async fn shutdown_signal_async_io() {
    // SAFETY: the pipe's read end belongs to the process-wide shutdown notice, which lives in a
    // static and is never closed, so the borrow cannot outlive the descriptor.
    let fd = unsafe { BorrowedFd::borrow_raw(shutdown::get().fd()) };
    match async_io::Async::new(fd) {
        Ok(pipe) => drop(pipe.readable().await),
        Err(e) => {
            eprintln!("zoo: cannot watch the shutdown pipe ({e}): checking every 100 ms instead");
            while !shutdown::get().requested() {
                async_io::Timer::after(Duration::from_millis(100)).await;
            }
        }
    }
}
