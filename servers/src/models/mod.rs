//! One module per concurrency model; each opens with what it costs and where it breaks.
//! `async_conn` is no model: it holds the loops that tokio, async-std and smol share.

pub mod async_conn;
pub mod async_std;
pub mod coroutine;
pub mod epoll;
pub mod fork;
pub mod nonblocking;
pub mod poll;
pub mod pool;
pub mod prefork;
pub mod select;
pub mod sigio;
pub mod smol;
pub mod thread;
pub mod tokio;
pub mod uring;
