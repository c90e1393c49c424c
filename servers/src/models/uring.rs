//! `uring`: completion-based IO on io_uring (IO model 5), one ring per thread.
//!
//! Every other model asks the kernel whether a socket is ready and then does the IO itself. This
//! one hands the kernel the IO to do (accept, recv, send, a timer) as submission queue entries
//! (SQEs) and later reaps what was done as completions (CQEs): one `io_uring_enter` submits the
//! whole batch and waits for the next completion. Each of `--threads` threads (default: one per
//! CPU) owns a ring and its connections, like nginx workers. Ring 0 holds the one multishot accept
//! (one SQE that keeps accepting; single-shot accepts should the kernel refuse that) and deals the
//! connections round-robin to the rings with `IORING_OP_MSG_RING`, which posts the descriptor
//! straight into the target ring's completion queue; ring 0 pays for every accept. An accept per
//! ring on the shared listener looked simpler, but the kernel wakes the first waiting accept every
//! time: measured here, every connection landed on one ring. `Reply::Delayed` is a `Timeout` SQE;
//! `Reply::Compute` runs on rayon, which queues the answer and writes an eventfd that the ring
//! keeps a read submitted on; the shutdown pipe has a `POLL_ADD`.
//!
//! Receiving: each connection has one multishot recv armed (Linux 6.0+; one recv per completion
//! where the kernel refuses that). It stays armed across requests, so a keep-alive request costs
//! one SQE (its send) and two CQEs (its bytes, the send's result). At most one send is in flight
//! per connection, and while it is the `Connection` is neither driven nor fed, so the output it
//! points into stays put; bytes that arrive meanwhile (or while the service takes its time) are
//! parked, a few buffers at most: past that the recv is cancelled, and TCP's flow control holds a
//! client that pipelines a flood until we read again.
//!
//! Deadlines (the header, keep-alive and body timeouts of `Connection::poll_timeout`, and a send's
//! body timeout) live in userland, in a lazy min-heap (`deadlines`) that costs about one push per
//! connection per keep-alive period, not one per request; the loop waits for a completion or the
//! earliest deadline (`io_uring_enter` with a timeout, `IORING_FEAT_EXT_ARG`). A passed deadline
//! is applied at once (408, or a quiet close that cancels the recv); a send out past its deadline
//! (a client that stopped reading) is cancelled and the connection closed. The first design, a
//! single-shot recv and send each with a `LinkTimeout`, took four SQEs and four CQEs per request
//! and the kernel's locking to arm and disarm the timeouts, which cost clearly more server CPU per
//! request than this design (`make bench` measures it).
//!
//! Buffers are the crux of a completion model: the kernel needs the memory a recv fills before
//! any data exists, so naively each of 10,000 idle keep-alive connections pins a buffer. Here a
//! recv names a provided-buffer ring instead (`IORING_REGISTER_PBUF_RING`, 512 KiB per ring): the
//! kernel picks a buffer only when bytes arrive, and we copy them into the connection and give the
//! buffer back at once. An idle connection holds no buffer, only its entry with the `Connection`'s
//! buffers released: a few hundred bytes, its deadline in the heap and its share of the buffer
//! pool included (the README's Performance section quotes the c10k figure). The `Connection`'s
//! buffers go to spare ones per ring ([`common::Spare`]) that the next connection with input
//! takes: its read buffer as soon as its answer is submitted (the send may be in flight for a whole
//! batch of other connections' completions), its output buffer once the send is done. So a client
//! sending one request after another costs no allocation per request for its buffers. The other way, a
//! `POLL_ADD` on idle connections and then a recv into a pooled buffer, avoids the copy but costs
//! every request one more trip through the ring.
//!
//! What it costs: that copy, and the most `unsafe` code in the zoo, because the kernel reads and
//! writes our memory after the call returned (each submission says why its memory outlives it).
//! Where it breaks: where the kernel refuses io_uring (Docker's default seccomp profile since 25.0,
//! `kernel.io_uring_disabled`, kernels before 5.19) `zoo --model=uring` exits at once with a
//! message saying so; and, as in every event loop, a blocking handler (`/block`) stalls every
//! connection of its ring. No Python server works this way; the nearest is asyncio's proactor
//! event loop on Windows (IOCP, the same completion model). Over `--max-connections` a new
//! connection gets 503 and is closed.
//!
//! - `worker`: one ring's loop: completions, taking connections in, the graceful stop.
//! - `accept`: the multishot accept on ring 0 and the dealing of connections to the rings.
//! - `entry`: what a ring keeps per connection; answering requests, arming recv, submitting send.
//! - `conn`: how completions and deadlines move a connection on, and closing it safely.
//! - `deadlines`: the lazy heap of connection deadlines the loop waits on.
//! - `bufring`: the provided-buffer ring that recvs take their buffers from, and parked buffers.
//! - `sqe`: what each completion is about, and queuing submissions.
//! - `wake`: how rayon hands `Reply::Compute` answers back through an eventfd.

mod accept;
mod bufring;
mod conn;
mod deadlines;
mod entry;
mod sqe;
#[cfg(test)]
mod tests;
mod wake;
mod worker;

use crate::server::Ctx;
use bufring::BufRing;
use io_uring::IoUring;
use std::io;
use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::sync::atomic::AtomicI32;
use std::sync::{Arc, Barrier};
use worker::Worker;

/// Submission queue size; a fuller queue is submitted early.
const SQ_ENTRIES: u32 = 1024;
/// Completion queue size: room for a burst from thousands of connections (the kernel keeps any
/// overflow aside rather than dropping it).
const CQ_ENTRIES: u32 = 8192;
/// The buffer group of each ring's receive buffers.
const BUFFER_GROUP: u16 = 0;

/// A ring with the fast settings when the kernel has them (6.1+: only this thread submits, and
/// the kernel's completion work runs when we wait), plain otherwise.
fn new_ring() -> io::Result<IoUring> {
    let ring = IoUring::builder()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .setup_submit_all()
        .setup_cqsize(CQ_ENTRIES)
        .build(SQ_ENTRIES)
        .or_else(|_| {
            IoUring::builder()
                .setup_cqsize(CQ_ENTRIES)
                .build(SQ_ENTRIES)
        })?;
    if !ring.params().is_feature_submit_stable() {
        return Err(io::Error::other("kernel too old (needs Linux 5.19+)"));
    }
    Ok(ring)
}

/// Checks, before the ready line, that this kernel lets us use io_uring with what the model needs.
/// The reason names the kernel's errno (`EPERM`, `ENOSYS`...), which is what a test skipping
/// this model prints.
pub fn check_available() -> Result<(), String> {
    let refused = |what: &str, e: io::Error| {
        let reason = e.to_string();
        let reason = reason.split(" (os error").next().unwrap_or_default();
        let name = e.raw_os_error().map_or("", errno_name);
        format!("io_uring is not available here ({what}: {name} {reason}); try --model=epoll")
    };
    let ring = new_ring().map_err(|e| refused("io_uring_setup", e))?;
    let mut bufs = BufRing::register(&ring, BUFFER_GROUP)
        .map_err(|e| refused("provided buffer ring, Linux 5.19+", e))?;
    bufs.unregister(&ring);
    Ok(())
}

/// The name of an errno the kernel answers io_uring_setup or a registration with when it refuses.
fn errno_name(errno: i32) -> &'static str {
    match errno {
        libc::EPERM => "EPERM",
        libc::EACCES => "EACCES",
        libc::ENOSYS => "ENOSYS",
        libc::EINVAL => "EINVAL",
        libc::ENOMEM => "ENOMEM",
        libc::EMFILE => "EMFILE",
        libc::ENFILE => "ENFILE",
        libc::EFAULT => "EFAULT",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        _ => "errno",
    }
}

/// Serves until a graceful stop, then drains: one ring per thread, all on the one listener.
pub fn run(ctx: Arc<Ctx>, listener: TcpListener) -> io::Result<()> {
    let threads = ctx
        .opts
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let fd = listener.as_raw_fd();
    let rings = Rings {
        fds: (0..threads).map(|_| AtomicI32::new(-1)).collect(),
        ready: Barrier::new(threads),
    };
    std::thread::scope(|s| {
        let rings: Vec<_> = (0..threads)
            .map(|i| {
                let (ctx, rings) = (&ctx, &rings);
                std::thread::Builder::new()
                    .name(format!("ring-{i}"))
                    .spawn_scoped(s, move || match Worker::new(ctx, fd, i, rings)? {
                        Some(worker) => worker.serve(),
                        None => Ok(()),
                    })
            })
            .collect::<io::Result<_>>()?;
        for ring in rings {
            // A panic in a ring is a bug; pass it on rather than serve with a ring short.
            ring.join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p))?;
        }
        Ok(())
    })
}

/// The rings of one server, so that ring 0 can deal connections to the others.
struct Rings {
    /// Each ring's descriptor, -1 until it is up (or if it failed to come up).
    fds: Vec<AtomicI32>,
    /// Every ring waits here until all are up.
    ready: Barrier,
}
