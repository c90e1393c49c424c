//! `tokio`: a tokio task per connection, native async IO on epoll.
//!
//! Each connection is a future: it runs until it would wait (for input, a timer, a CPU job), hands
//! its thread back to the scheduler, and is polled again when the reactor says it can go on. A
//! waiting connection costs a task, not a thread, and gives its buffers back between requests
//! (a small fraction of what a thread per connection costs: the README's Performance section
//! has the measured figures), so ten
//! thousand idle clients are cheap and a slow client costs nobody else anything.
//! `--threads 1` builds the current-thread runtime: one thread is the event loop, the model of
//! asyncio and Tornado, with no locks to pay and no parallelism either. More threads build the
//! multi-threaded work-stealing runtime with that many workers (the accept loop runs in
//! `block_on` on the main thread, as under `#[tokio::main]`), which adds parallelism and costs
//! cross-thread wake-ups. `Reply::Delayed` waits on a tokio timer, `Reply::Compute` on rayon with a
//! oneshot channel back. Where it breaks: code that blocks. The service runs inline on the
//! executor thread, so `/block` stalls every connection of that thread for the whole call, and
//! with `--threads 1` the whole server; that is the lesson of an event loop, shown, not hidden
//! behind `spawn_blocking`. Deadlines are `timeout_at` the Connection's own deadline; SIGTERM is
//! heard by the reactor through the shutdown pipe (an `AsyncFd`), then the accept loop stops,
//! idle connections close at once and busy ones after their answer, within `--grace`. Over
//! `--max-connections` a new connection gets 503 and is closed. The loops themselves are shared
//! with async-std and smol in `async_conn.rs`.

use crate::async_conn::{scheduler_threads, serve, Runtime};
use crate::server::Ctx;
use crate::shutdown;
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Builder;

/// Serves until a graceful stop, then drains.
pub fn run(ctx: Arc<Ctx>, listener: std::net::TcpListener) -> io::Result<()> {
    let threads = scheduler_threads(&ctx);
    let mut builder = if threads == 1 {
        Builder::new_current_thread()
    } else {
        let mut builder = Builder::new_multi_thread();
        builder.worker_threads(threads);
        builder
    };
    let rt = builder.enable_all().build()?;
    rt.block_on(async {
        listener.set_nonblocking(true)?;
        let listener = TcpListener::from_std(listener)?;
        let spawn = |task| drop(tokio::spawn(task));
        serve::<Tokio>(ctx, listener, shutdown_signal(), spawn).await;
        Ok::<_, io::Error>(())
    })?;
    // Past the grace period: drop what is left rather than wait for a task stuck in `/block`.
    rt.shutdown_background();
    Ok(())
}

/// Completes on SIGTERM/SIGINT: the shutdown pipe becomes readable in tokio's reactor.
async fn shutdown_signal() {
    let stop = shutdown::get();
    // SAFETY: the pipe's read end belongs to the process-wide shutdown notice, which lives in a
    // static and is never closed, so it outlives this registration.
    match unsafe { AsyncFd::register_with_interest(stop.fd(), Interest::READABLE) } {
        Ok(pipe) => drop(pipe.readable().await),
        Err(e) => {
            eprintln!("zoo: cannot watch the shutdown pipe ({e}): checking every 100 ms instead");
            while !stop.requested() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Tokio's sockets and timer for the shared loops.
struct Tokio;

impl Runtime for Tokio {
    type Listener = TcpListener;
    type Stream = TcpStream;

    async fn accept(listener: &TcpListener) -> io::Result<TcpStream> {
        listener.accept().await.map(|(stream, _)| stream)
    }

    async fn readable(stream: &TcpStream) -> io::Result<()> {
        stream.readable().await
    }

    fn read<'a>(
        stream: &'a mut TcpStream,
        buf: &'a mut [u8],
    ) -> impl Future<Output = io::Result<usize>> + Send + 'a {
        stream.read(buf)
    }

    fn write<'a>(
        stream: &'a mut TcpStream,
        buf: &'a [u8],
    ) -> impl Future<Output = io::Result<usize>> + Send + 'a {
        stream.write(buf)
    }

    fn sleep_until(deadline: Instant) -> impl Future<Output = ()> + Send {
        tokio::time::sleep_until(deadline.into())
    }
}
