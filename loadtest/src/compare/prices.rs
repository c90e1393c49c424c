//! What the kernel charges on this machine for the two things a request's anatomy counts: a
//! trip into the kernel, and a hand-off from one thread to another on the same CPU. Measured
//! once before the cells run, on the CPU the servers will use, so that the anatomy's counts can
//! be read as time: a model's syscalls per request times the price of one, its context switches
//! times the price of a hand-off.
//!
//! - A syscall: `getppid`, which does no work in the kernel, through `syscall(2)` (libc could
//!   answer some calls without entering the kernel).
//! - A hand-off: two threads bound to one CPU pass a byte back and forth through two pipes, each
//!   blocking in its read until the other writes (a ring of two). Each hop is a write, a read,
//!   and what a thread-per-connection server pays when a request wakes its thread: the wake-up
//!   of a sleeping thread and the switch to it. The same write and read timed on one thread,
//!   where nothing blocks, are taken off each hop, and what is left is the hand-off.
//! - A hand-off among many: as many threads as a thread per connection has at the connection
//!   count the anatomy is read at, bound to one CPU, pass a byte around a ring of pipes, each
//!   woken by the one before it. Two threads are the cheapest case there is: the price of a
//!   switch grows with the number of threads that take turns (their stacks and scheduler state
//!   go cold between turns), and this is the price such a server pays per request.
//!
//! Each price is the median of a few timed batches, so that a burst of other work on a shared
//! machine moves it little. They are the machine's prices, not the models': virtual machines
//! charge far more for a switch than bare metal does, which is what a thread per connection
//! feels.

use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use std::time::Instant;

/// The machine's prices, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Prices {
    /// The CPU they were measured on, if the measuring threads could be bound to one.
    pub cpu: Option<usize>,
    /// One syscall that does nothing in the kernel.
    pub syscall_ns: f64,
    /// One hand-off between two threads on one CPU: a sleeping thread woken and switched to.
    pub handoff_ns: f64,
    /// One hand-off among more threads taking turns on that CPU; absent in older results and
    /// where the count asked for was two or fewer, or more than [`RING_MAX`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ring: Option<Ring>,
}

/// The price of a hand-off when `threads` threads take turns on one CPU, each woken by the one
/// before it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Ring {
    /// Threads in the ring.
    pub threads: usize,
    /// One hand-off, in nanoseconds: a sleeping thread woken and switched to.
    pub handoff_ns: f64,
}

/// Timed batches per price; the median is kept.
const BATCHES: usize = 5;
/// Syscalls per batch.
const SYSCALLS: u32 = 100_000;
/// Pipe write-and-read pairs per batch, on one thread.
const PIPE_OPS: u32 = 20_000;
/// Hand-offs per batch in a ring (whole laps, at least one); two threads are a ring of two.
const RING_HOPS: usize = 10_000;
/// The most threads a ring is measured with.
pub const RING_MAX: usize = 4096;
/// Stack reserved for each thread of a ring: it only reads and writes one byte.
const RING_STACK: usize = 64 * 1024;

/// Measures the prices on `cpu` (or wherever the scheduler puts the threads, if `None` or the
/// CPU refuses them), the hand-off among many in a ring of `ring_threads` when that is more than
/// two and at most [`RING_MAX`]. Takes about half a second on a machine where a hand-off costs a
/// few microseconds. Fails only if a thread or a pipe cannot be had.
pub fn measure(cpu: Option<usize>, ring_threads: usize) -> Result<Prices, String> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let bound = cpu.filter(|&c| crate::sys::pin_current_thread(&[c]).is_ok());
                let syscall_ns = median(|| time_syscalls(SYSCALLS));
                let pipe_ns = median(|| time_pipe(PIPE_OPS).unwrap_or(f64::NAN));
                // The partner threads are started from this one, so they are bound to its CPU.
                let hop_ns = |threads| median(|| time_ring(threads).unwrap_or(f64::NAN));
                // Each hop is a write and a read beside the hand-off.
                let handoff_ns = (hop_ns(2) - pipe_ns).max(0.0);
                let ring = (2 < ring_threads && ring_threads <= RING_MAX).then(|| Ring {
                    threads: ring_threads,
                    handoff_ns: (hop_ns(ring_threads) - pipe_ns).max(0.0),
                });
                if pipe_ns.is_nan()
                    || handoff_ns.is_nan()
                    || ring.is_some_and(|r| r.handoff_ns.is_nan())
                {
                    return Err("a pipe or a thread could not be had".to_string());
                }
                Ok(Prices {
                    cpu: bound,
                    syscall_ns,
                    handoff_ns,
                    ring,
                })
            })
            .join()
            .map_err(|_| "the measuring thread failed".to_string())?
    })
}

/// The median of [`BATCHES`] runs of `batch`, each giving nanoseconds per operation.
fn median(mut batch: impl FnMut() -> f64) -> f64 {
    let mut runs: Vec<f64> = (0..BATCHES).map(|_| batch()).collect();
    if runs.iter().any(|r| r.is_nan()) {
        return f64::NAN;
    }
    runs.sort_by(f64::total_cmp);
    runs[BATCHES / 2]
}

/// Nanoseconds per `getppid` syscall over `n` of them.
fn time_syscalls(n: u32) -> f64 {
    let start = Instant::now();
    for _ in 0..n {
        // SAFETY: getppid takes no arguments and cannot fail.
        std::hint::black_box(unsafe { libc::syscall(libc::SYS_getppid) });
    }
    start.elapsed().as_nanos() as f64 / f64::from(n)
}

/// Nanoseconds per one-byte pipe write followed by its read, on one thread (nothing blocks).
fn time_pipe(n: u32) -> std::io::Result<f64> {
    let (mut reader, mut writer) = std::io::pipe()?;
    let mut byte = [0u8; 1];
    let start = Instant::now();
    for _ in 0..n {
        writer.write_all(&byte)?;
        reader.read_exact(&mut byte)?;
    }
    Ok(start.elapsed().as_nanos() as f64 / f64::from(n))
}

/// Nanoseconds per hop of one byte around a ring of `threads` threads (this one and partners it
/// starts), each blocking in a read of its own pipe until the one before it writes.
fn time_ring(threads: usize) -> std::io::Result<f64> {
    let laps = RING_HOPS.div_ceil(threads);
    let (readers, mut writers): (Vec<_>, Vec<_>) = (0..threads)
        .map(|_| std::io::pipe())
        .collect::<std::io::Result<Vec<_>>>()?
        .into_iter()
        .unzip();
    // Thread i reads pipe i and writes pipe i + 1; the last writes pipe 0, this thread's.
    writers.rotate_left(1);
    let mut links = readers.into_iter().zip(writers);
    let (mut from_last, mut to_first) = links.next().expect("a ring has threads");
    std::thread::scope(|scope| {
        let mut partners = Vec::with_capacity(threads - 1);
        for (mut from, mut to) in links {
            // If a spawn fails, returning drops `to_first`: the partners started so far read end
            // of file one after the other and end, so the scope does not wait forever.
            let partner = std::thread::Builder::new()
                .stack_size(RING_STACK)
                .spawn_scoped(scope, move || -> std::io::Result<()> {
                    let mut byte = [0u8; 1];
                    for _ in 0..laps {
                        from.read_exact(&mut byte)?;
                        to.write_all(&byte)?;
                    }
                    Ok(())
                })?;
            partners.push(partner);
        }
        let mut byte = [0u8; 1];
        let start = Instant::now();
        for _ in 0..laps {
            to_first.write_all(&byte)?;
            from_last.read_exact(&mut byte)?;
        }
        let took = start.elapsed();
        for partner in partners {
            partner
                .join()
                .map_err(|_| std::io::Error::other("a ring thread panicked"))??;
        }
        Ok(took.as_nanos() as f64 / (laps * threads) as f64)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_are_measured_and_plausible() {
        let cpu = crate::sys::allowed_cpus()
            .ok()
            .and_then(|c| c.first().copied());
        let p = measure(cpu, 16).expect("threads and pipes are available");
        assert_eq!(p.cpu, cpu, "binding to an allowed CPU works");
        // A syscall costs tens of nanoseconds to a few microseconds on anything that runs this;
        // a hand-off wakes a thread and switches to it, which is never cheaper than a syscall.
        assert!(
            p.syscall_ns > 10.0 && p.syscall_ns < 20_000.0,
            "syscall {p:?}"
        );
        assert!(
            p.handoff_ns > p.syscall_ns && p.handoff_ns < 1_000_000.0,
            "hand-off {p:?}"
        );
        let ring = p.ring.expect("a ring of 16 is measured");
        assert_eq!(ring.threads, 16);
        assert!(
            ring.handoff_ns > p.syscall_ns && ring.handoff_ns < 1_000_000.0,
            "ring {p:?}"
        );
    }

    #[test]
    fn a_ring_is_measured_only_between_three_and_its_most_threads() {
        for threads in [0, 1, 2, RING_MAX + 1] {
            let p = measure(None, threads).expect("threads and pipes are available");
            assert_eq!(p.ring, None, "{threads} threads");
        }
        let p = measure(None, 3).expect("threads and pipes are available");
        assert_eq!(p.ring.map(|r| r.threads), Some(3));
    }

    #[test]
    fn the_median_ignores_one_outlier_and_refuses_a_failed_batch() {
        let mut runs = [5.0, 1.0, 900.0, 2.0, 3.0].into_iter();
        assert_eq!(median(|| runs.next().unwrap()), 3.0);
        let mut runs = [5.0, f64::NAN, 1.0, 2.0, 3.0].into_iter();
        assert!(median(|| runs.next().unwrap()).is_nan());
    }
}
