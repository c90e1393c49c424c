//! The provided-buffer ring (`IORING_REGISTER_PBUF_RING`): receive buffers that belong to the
//! ring, not to a connection.
//!
//! A recv submitted with `BUFFER_SELECT` names a buffer group instead of a buffer. The kernel takes
//! a free buffer from the group only when data arrives and says which one in the completion's
//! flags, so a connection waiting in a recv holds no buffer at all. The ring of buffer descriptors
//! is memory shared with the kernel: it takes buffers at the head, we give them back at the tail.
//!
//! A buffer that arrives while its connection cannot take the bytes (a send of its output is in
//! flight) is parked: kept out of the kernel's hands, in a queue per connection threaded through
//! one link per buffer here, so parking never allocates and costs an entry six bytes.

use io_uring::types::BufRingEntry;
use io_uring::IoUring;
use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::io;
use std::sync::atomic::{AtomicU16, Ordering};

/// Buffers in one ring: more than the recvs of one batch of completions usually need. A recv that
/// finds none fails with ENOBUFS and is simply submitted again, once the batch gave them back.
pub const COUNT: u16 = 512;
/// Bytes per buffer: a usual request head fits (nginx reads heads into 1 KiB first too), a larger
/// head or body arrives over several recvs. The kernel takes the buffers in turn, so over time
/// every one of them is resident: 4 KiB ones made the pool 2 MiB, 200 bytes more per connection
/// with 10,000 idle (the c10k figure); 1 KiB ones make it 512 KiB.
pub const LEN: usize = 1024;
const _: () = assert!(LEN <= u16::MAX as usize, "a parked length fits a u16");
/// The page size the kernel wants the descriptor ring aligned to.
const PAGE: usize = 4096;

/// One ring's receive buffers, registered as one buffer group.
pub struct BufRing {
    group: u16,
    /// `COUNT` descriptors; the ring's tail is the `resv` field of the first one.
    descriptors: *mut BufRingEntry,
    /// `COUNT` buffers of `LEN` bytes, written by the kernel, read by us.
    memory: *mut u8,
    /// Our copy of the tail: descriptors below it are the kernel's.
    tail: u16,
    registered: bool,
    /// Per buffer, while parked: the next buffer of the same queue, and how many bytes it holds.
    links: Box<[(u16, u16)]>,
}

/// The buffers one connection received and could not take yet, oldest first.
#[derive(Debug, Default)]
pub struct Parked {
    first: u16,
    last: u16,
    count: u16,
}

impl Parked {
    /// How many buffers wait.
    pub fn len(&self) -> usize {
        self.count as usize
    }
}

fn descriptor_layout() -> Layout {
    let size = COUNT as usize * std::mem::size_of::<BufRingEntry>();
    // Constant and valid: a multiple of the page size, aligned to a power of two.
    Layout::from_size_align(size.next_multiple_of(PAGE), PAGE).expect("constant layout")
}

fn memory_layout() -> Layout {
    Layout::from_size_align(COUNT as usize * LEN, PAGE).expect("constant layout")
}

impl BufRing {
    /// Allocates the buffers, registers them with `uring` as buffer group `group` and hands them
    /// all to the kernel.
    pub fn register(uring: &IoUring, group: u16) -> io::Result<BufRing> {
        // SAFETY: both layouts have a non-zero size; a null result is checked below.
        let (descriptors, memory) = unsafe {
            (
                alloc_zeroed(descriptor_layout()),
                alloc_zeroed(memory_layout()),
            )
        };
        let mut ring = BufRing {
            group,
            descriptors: descriptors.cast(),
            memory,
            tail: 0,
            registered: false,
            links: vec![(0, 0); COUNT as usize].into_boxed_slice(),
        };
        if descriptors.is_null() || memory.is_null() {
            return Err(io::ErrorKind::OutOfMemory.into());
        }
        // SAFETY: the descriptors are page-aligned, zeroed and `COUNT` long, and they stay
        // allocated while registered: `Drop` leaks them instead of freeing a registered ring.
        unsafe {
            uring.submitter().register_buf_ring_with_flags(
                ring.descriptors as u64,
                COUNT,
                group,
                0,
            )?;
        }
        ring.registered = true;
        for id in 0..COUNT {
            ring.give_back(id);
        }
        Ok(ring)
    }

    /// The buffer group to name in a recv with `BUFFER_SELECT`.
    pub fn group(&self) -> u16 {
        self.group
    }

    /// The first `n` bytes of buffer `id`, which a completion has just handed to us.
    pub fn get(&self, id: u16, n: usize) -> &[u8] {
        assert!(
            id < COUNT && n <= LEN,
            "the kernel keeps to the ring it was given"
        );
        // SAFETY: in bounds (checked above). The kernel wrote these bytes before posting the
        // completion and does not touch the buffer again until `give_back` returns it.
        unsafe { std::slice::from_raw_parts(self.memory.add(id as usize * LEN), n) }
    }

    /// Returns buffer `id` to the kernel, to be picked by a later recv.
    pub fn give_back(&mut self, id: u16) {
        let slot = (self.tail % COUNT) as usize;
        // SAFETY: `slot < COUNT`; the descriptor at our tail is not the kernel's until the tail
        // moves past it. Setting address, length and id leaves `resv` (the tail) alone.
        let descriptor = unsafe { &mut *self.descriptors.add(slot) };
        descriptor.set_addr(self.memory as u64 + u64::from(id) * LEN as u64);
        descriptor.set_len(LEN as u32);
        descriptor.set_bid(id);
        self.tail = self.tail.wrapping_add(1);
        // SAFETY: the tail is the `resv` field of the first descriptor: a u16 inside our
        // allocation, aligned to 2, that the kernel only reads. The release store publishes the
        // descriptor written above before the new tail.
        let tail = unsafe { &*BufRingEntry::tail(self.descriptors).cast::<AtomicU16>() };
        tail.store(self.tail, Ordering::Release);
    }

    /// Keeps the first `n` bytes of buffer `id`, just handed to us, at the end of `queue`.
    pub fn park(&mut self, queue: &mut Parked, id: u16, n: usize) {
        // `n <= LEN`, which fits a u16 (checked at compile time below).
        self.links[id as usize] = (id, n as u16);
        if queue.count > 0 {
            self.links[queue.last as usize].0 = id;
        } else {
            queue.first = id;
        }
        queue.last = id;
        queue.count += 1;
    }

    /// The oldest buffer of `queue` and its length, taken off the queue (still ours: feed it,
    /// then `give_back`).
    pub fn unpark(&mut self, queue: &mut Parked) -> Option<(u16, usize)> {
        if queue.count == 0 {
            return None;
        }
        let id = queue.first;
        let (next, n) = self.links[id as usize];
        queue.first = next;
        queue.count -= 1;
        Some((id, n as usize))
    }

    /// Unregisters the group; only then may its memory be freed. Call with no recv in flight.
    pub fn unregister(&mut self, uring: &IoUring) {
        if self.registered && uring.submitter().unregister_buf_ring(self.group).is_ok() {
            self.registered = false;
        }
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        if self.registered {
            // The kernel may still write into the buffers. Leak them: this only happens when the
            // process is on its way out.
            return;
        }
        // SAFETY: allocated in `register` with these layouts, not registered, freed once.
        unsafe {
            if !self.descriptors.is_null() {
                dealloc(self.descriptors.cast(), descriptor_layout());
            }
            if !self.memory.is_null() {
                dealloc(self.memory, memory_layout());
            }
        }
    }
}
