//! One module per concurrency model; each opens with what it costs and where it breaks.

pub mod epoll;
pub mod fork;
pub mod nonblocking;
pub mod poll;
pub mod pool;
pub mod prefork;
pub mod select;
pub mod sigio;
pub mod thread;
pub mod uring;
