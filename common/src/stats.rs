//! Server-wide counters behind `/info` and `/metrics`. The struct is `repr(C)` and made of atomics
//! only, so the fork and prefork models can place one in a shared anonymous mapping before they
//! fork, and every process counts into the same figures (Apache's scoreboard does the same).

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

/// Counters shared by every thread (and, in shared memory, every process) of one server.
#[repr(C)]
#[derive(Debug, Default)]
pub struct Counters {
    /// Connections accepted since start.
    pub connections_total: AtomicU64,
    /// Connections open now.
    pub connections_active: AtomicI64,
    /// Requests answered by the service.
    pub requests_total: AtomicU64,
    /// Requests rejected by the protocol core (4xx/5xx before the service saw them).
    pub rejected_total: AtomicU64,
    /// Connections refused by load shedding.
    pub shed_total: AtomicU64,
    /// Responses by status class: index 0 is 1xx ... index 4 is 5xx.
    pub responses_by_class: [AtomicU64; 5],
}

impl Counters {
    /// Counts an accepted connection.
    pub fn connection_opened(&self) {
        self.connections_total.fetch_add(1, Relaxed);
        self.connections_active.fetch_add(1, Relaxed);
    }

    /// Counts a closed connection.
    pub fn connection_closed(&self) {
        self.connections_active.fetch_sub(1, Relaxed);
    }

    /// Counts a response sent with `status`.
    pub fn response_sent(&self, status: u16) {
        let class = (status / 100).clamp(1, 5) as usize - 1;
        self.responses_by_class[class].fetch_add(1, Relaxed);
    }
}
