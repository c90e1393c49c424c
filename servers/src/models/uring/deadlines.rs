//! Connection deadlines kept in userland: a lazy min-heap the loop waits on.
//!
//! A deadline moves with nearly every request (the keep-alive deadline restarts with each
//! answer), and a heap that followed every move would be worked on every request. So the heap is
//! lazy: an entry is queued under one deadline at a time (`Entry::queued`) and is queued again
//! only when its deadline moves earlier. When an item comes due, the entry's current deadline is
//! looked at: still ahead, the entry goes back in under it; passed, it is applied. An entry thus
//! costs about one heap push per keep-alive period, not one per request. Items whose entry is
//! gone, or was queued again since, are dropped as they come up: the serial number tells an entry
//! from a later one that reuses its slab key, and `queued` tells the live item from older ones.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

/// When, which slab key, and which entry under that key.
type Item = (Instant, usize, u64);

/// The deadlines of one ring's connections.
#[derive(Default)]
pub struct Deadlines {
    heap: BinaryHeap<Reverse<Item>>,
}

impl Deadlines {
    /// Makes sure entry `key` (serial `serial`), queued under `queued`, comes up by `at`.
    pub fn schedule(
        &mut self,
        queued: &mut Option<Instant>,
        at: Option<Instant>,
        key: usize,
        serial: u64,
    ) {
        let Some(at) = at else {
            return; // an item queued earlier comes up and finds nothing due: harmless
        };
        if !matches!(*queued, Some(q) if q <= at) {
            *queued = Some(at);
            self.heap.push(Reverse((at, key, serial)));
        }
    }

    /// The earliest item's time: the loop wakes up then, at the latest.
    pub fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _, _))| *at)
    }

    /// Takes the earliest item if it is due at `now`: (its time, key, serial). The caller checks
    /// it against the entry.
    pub fn pop_due(&mut self, now: Instant) -> Option<Item> {
        if self.next()? > now {
            return None;
        }
        self.heap.pop().map(|Reverse(item)| item)
    }
}
