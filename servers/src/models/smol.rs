//! `smol`: a smol task per connection, on an executor driven by `--threads` threads.
//!
//! The strategy is tokio's (see `tokio.rs`), built from small crates: `async-io` is the reactor
//! (epoll) and the timers, `async-executor` runs the tasks. With `--threads 1` a `LocalExecutor`
//! (the same executor, kept to one thread) is run by `smol::block_on` on the main thread: one
//! event loop, asyncio's and Tornado's model. With more threads an `Executor` is shared by the
//! main thread and `--threads - 1` more, which take tasks from one global queue and from each
//! other; the accept loop is one of its tasks, so a thread stuck in `/block` does not stop
//! accepting. This is the runtime async-std's maintainers point to now that async-std is
//! discontinued. Its costs: a shared executor pays cross-thread wake-ups, and every timer goes
//! through the reactor's locked timer queue. Where it breaks: blocking code; `/block` runs inline
//! and stalls every task of its thread (with one thread, the whole server). It mirrors asyncio.
//! `Reply::Delayed` waits on a `smol::Timer`, `Reply::Compute` on rayon with a oneshot channel
//! back; SIGTERM reaches the reactor through the shutdown pipe, the accept loop stops, idle
//! connections close at once and busy ones after their answer, within `--grace`. Over
//! `--max-connections` a new connection gets 503 and is closed. The loops are shared with tokio
//! and async-std in `async_conn.rs`.

use crate::async_conn::{scheduler_threads, serve, shutdown_signal_async_io, Runtime};
use crate::server::Ctx;
use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::{Async, Executor, LocalExecutor, Timer};
use std::future::{pending, Future};
use std::io;
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Instant;

/// Serves until a graceful stop, then drains.
pub fn run(ctx: Arc<Ctx>, listener: TcpListener) -> io::Result<()> {
    let threads = scheduler_threads(&ctx);
    let listener = Async::new(listener)?;
    if threads == 1 {
        let ex = LocalExecutor::new();
        let spawn = |task| ex.spawn(task).detach();
        let server = serve::<Smol>(ctx, listener, shutdown_signal_async_io(), spawn);
        smol::block_on(ex.run(server));
        return Ok(());
    }
    let ex: &'static Executor = Box::leak(Box::new(Executor::new()));
    for i in 1..threads {
        // The helpers run until the process exits; the main thread decides when that is.
        std::thread::Builder::new()
            .name(format!("smol-{i}"))
            .spawn(|| smol::block_on(ex.run(pending::<()>())))?;
    }
    let spawn = |task| ex.spawn(task).detach();
    // The accept loop is a task too, so that a thread stuck in `/block` does not stop accepting.
    let server = ex.spawn(serve::<Smol>(
        ctx,
        listener,
        shutdown_signal_async_io(),
        spawn,
    ));
    smol::block_on(ex.run(server));
    Ok(())
}

/// smol's sockets and timer for the shared loops.
struct Smol;

impl Runtime for Smol {
    type Listener = Async<TcpListener>;
    type Stream = Async<TcpStream>;

    async fn accept(listener: &Self::Listener) -> io::Result<Self::Stream> {
        listener.accept().await.map(|(stream, _)| stream)
    }

    async fn readable(stream: &Self::Stream) -> io::Result<()> {
        stream.readable().await
    }

    fn read<'a>(
        stream: &'a mut Self::Stream,
        buf: &'a mut [u8],
    ) -> impl Future<Output = io::Result<usize>> + Send + 'a {
        stream.read(buf)
    }

    fn write<'a>(
        stream: &'a mut Self::Stream,
        buf: &'a [u8],
    ) -> impl Future<Output = io::Result<usize>> + Send + 'a {
        stream.write(buf)
    }

    async fn sleep_until(deadline: Instant) {
        Timer::at(deadline).await;
    }
}
