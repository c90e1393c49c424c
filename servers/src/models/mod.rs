//! One module per concurrency model; each opens with what it costs and where it breaks.

pub mod fork;
pub mod pool;
pub mod prefork;
pub mod thread;
pub mod uring;
