//! One module per concurrency model; each opens with what it costs and where it breaks.
//! `async_conn` is no model: it holds the loops that tokio, async-std and smol share.

pub mod async_conn;
pub mod async_std;
pub mod coroutine;
pub mod pool;
pub mod smol;
pub mod thread;
pub mod tokio;
