//! One module per concurrency model; each opens with what it costs and where it breaks.
//! The code they share lives beside them: `crate::blocking` (blocking IO), `crate::async_conn`
//! (tokio, async-std, smol) and `crate::reactor` (select, poll, epoll, nonblocking, sigio).

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
