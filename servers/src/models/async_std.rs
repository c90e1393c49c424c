//! `async-std`: an async-std task per connection. async-std is discontinued upstream: its
//! maintainers point users to smol, which zoo serves as a model of its own (`--model=smol`);
//! it stays here because people still compare against it.
//!
//! The strategy is tokio's (see `tokio.rs`): each connection is a future polled by an executor
//! and parked in a reactor while it waits, so idle and slow clients cost a small task each, not a
//! thread. Underneath, async-std is smol's parts behind a `std`-like API: the `async-io` reactor
//! (epoll) and timers, and `async-global-executor` running tasks on `--threads` worker threads
//! (set through `ASYNC_STD_THREAD_COUNT`, the only knob async-std has); the accept loop runs in
//! `block_on` on the main thread. Its costs are tokio's: a wake-up crosses threads, and every
//! timer goes through the reactor's locked timer queue. Where it breaks: blocking code, as in any
//! event loop; `/block` runs inline and stalls every task of its thread. It mirrors asyncio.
//! `Reply::Delayed` waits on `task::sleep`, `Reply::Compute` on rayon with a oneshot channel
//! back; SIGTERM reaches the reactor through the shutdown pipe, the accept loop stops, idle
//! connections close at once and busy ones after their answer, within `--grace`. Over
//! `--max-connections` a new connection gets 503 and is closed. The loops are shared with tokio
//! and smol in `async_conn.rs`.
//!
//! The sockets are `async_io::Async`, the very type async-std's `TcpStream` and `TcpListener`
//! wrap (an `Arc<Async<std::net::TcpStream>>` inside), taken directly because async-std's own
//! types have no readiness wait: the loops wait for input before they lend an idle connection a
//! buffer, and async-std could only do that with a one-byte `peek`, a syscall (and a second one
//! saying EAGAIN, and a re-arm) on top of the read. Through `Async::readable` a request costs what
//! it costs under smol: the re-arm of async-io's one-shot registration, the read, the write. The
//! tasks, `block_on` and the timers are async-std's.

use crate::async_conn::{serve, shutdown_signal_async_io, Runtime};
use crate::server::Ctx;
use async_io::Async;
use async_std::io::{ReadExt, WriteExt};
use async_std::task;
use std::future::Future;
use std::io;
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Instant;

/// Serves until a graceful stop, then drains.
pub fn run(ctx: Arc<Ctx>, listener: std::net::TcpListener) -> io::Result<()> {
    if let Some(threads) = ctx.opts.threads {
        // async-std reads this once, when its executor first starts, which is below. Setting the
        // environment is sound here: no other thread of ours exists yet to read it concurrently.
        std::env::set_var("ASYNC_STD_THREAD_COUNT", threads.max(1).to_string());
    }
    let listener = Async::new(listener)?;
    task::block_on(async {
        let spawn = |task| drop(task::spawn(task));
        serve::<AsyncStd>(ctx, listener, shutdown_signal_async_io(), spawn).await;
    });
    Ok(())
}

/// async-std's reactor sockets (see the module doc) and timer for the shared loops.
struct AsyncStd;

impl Runtime for AsyncStd {
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

    fn sleep_until(deadline: Instant) -> impl Future<Output = ()> + Send {
        task::sleep(deadline.saturating_duration_since(Instant::now()))
    }
}
