//! Submissions: what each completion is about (its user_data), and queuing SQEs.

use io_uring::{squeue, IoUring};

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

/// Queues SQEs (all or none), submitting first if the queue is full.
///
/// # Safety
/// Every buffer, timespec and descriptor the SQEs name must stay valid until their completions.
pub unsafe fn push(ring: &mut IoUring, sqes: &[squeue::Entry]) {
    // SAFETY: the caller's promise covers the entries.
    while unsafe { ring.submission().push_multiple(sqes) }.is_err() {
        if let Err(e) = ring.submit() {
            if e.raw_os_error() != Some(libc::EINTR) && e.raw_os_error() != Some(libc::EBUSY) {
                eprintln!("zoo: io_uring submit: {e}");
            }
        }
    }
}
