//! Submissions: what each completion is about (its user_data), and queuing SQEs.

use io_uring::{squeue, IoUring};
use std::cell::RefCell;

/// What a completion is about: the low byte of its user_data (a connection key sits above it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Ring 0's accept on the listener.
    Accept,
    /// A connection dealt to this ring by ring 0 (the result is its descriptor).
    Handoff,
    /// Ring 0's side of a hand-off, seen only when it failed (the key is the descriptor).
    HandedOff,
    /// The poll on the shutdown pipe.
    Stop,
    /// The read on the eventfd that rayon writes.
    Wake,
    /// The end of `--grace` after a stop.
    Grace,
    /// The pause after an accept ran out of descriptors.
    Backoff,
    /// A connection's recv.
    Recv,
    /// A connection's send.
    Send,
    /// The timer of a `Reply::Delayed`.
    Delay,
    /// An `AsyncCancel` or `TimeoutRemove`: nothing to do when it completes.
    Cancel,
}

const OPS: [Op; 11] = [
    Op::Accept,
    Op::Handoff,
    Op::HandedOff,
    Op::Stop,
    Op::Wake,
    Op::Grace,
    Op::Backoff,
    Op::Recv,
    Op::Send,
    Op::Delay,
    Op::Cancel,
];

/// The user_data of a submission about `op` (for connection `key`, where there is one).
pub fn token(op: Op, key: usize) -> u64 {
    (key as u64) << 8 | op as u64
}

/// What a completion's user_data says it is about.
pub fn untoken(user_data: u64) -> (Op, usize) {
    let op = OPS.get((user_data & 0xff) as usize).copied();
    (op.unwrap_or(Op::Cancel), (user_data >> 8) as usize)
}

/// A completion as the loop handles it: user_data, result, flags.
pub type Cqe = (u64, i32, u32);

thread_local! {
    /// Completions [`push`] took off this thread's ring to make room, oldest first, for the loop
    /// to handle before the ring's own (each ring has a thread of its own).
    static REAPED: RefCell<Vec<Cqe>> = const { RefCell::new(Vec::new()) };
}

/// Queues SQEs (all or none), submitting first if the queue is full.
///
/// A submit refused with EBUSY means the completion queue is full and the kernel holds more
/// completions aside: it takes no more work until some are reaped. The loop that would reap them
/// is the caller of this function, so the completions are moved aside here, into [`take_reaped`],
/// and the submit tried again, instead of spinning until the kernel gives up.
///
/// # Safety
/// Every buffer, timespec and descriptor the SQEs name must stay valid until their completions.
pub unsafe fn push(ring: &mut IoUring, sqes: &[squeue::Entry]) {
    // SAFETY: the caller's promise covers the entries.
    while unsafe { ring.submission().push_multiple(sqes) }.is_err() {
        match ring.submit() {
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => reap_aside(ring),
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
            Err(e) => eprintln!("zoo: io_uring submit: {e}"),
            Ok(_) => {}
        }
    }
}

/// Moves the ring's completions aside (see [`push`]).
fn reap_aside(ring: &mut IoUring) {
    REAPED.with_borrow_mut(|reaped| {
        reaped.extend(
            ring.completion()
                .map(|c| (c.user_data(), c.result(), c.flags())),
        );
    });
}

/// Appends the completions [`push`] moved aside, oldest first, to `cqes`.
pub fn take_reaped(cqes: &mut Vec<Cqe>) {
    REAPED.with_borrow_mut(|reaped| cqes.append(reaped));
}

/// Whether [`push`] moved completions aside that the loop has yet to take.
pub fn has_reaped() -> bool {
    REAPED.with_borrow(|reaped| !reaped.is_empty())
}
