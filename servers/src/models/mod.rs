//! One module per concurrency model; each opens with what it costs and where it breaks.

pub mod pool;
pub mod thread;
pub mod uring;
