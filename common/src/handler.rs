//! The contract between a model and the service: the model parses, the service answers, and the
//! model waits for the answer in its own native way.

use crate::{Request, Response};
use std::time::Duration;

/// What the service answers to one request.
pub enum Reply {
    /// Answer now.
    Ready(Response),
    /// A simulated downstream wait: the model waits its own way (a blocked thread, a coroutine
    /// sleep, a runtime timer, the reactor's timer heap), then sends the response.
    Delayed(Duration, Response),
    /// CPU-heavy work: run it on the shared rayon pool, then send what it returns.
    Compute(Box<dyn FnOnce() -> Response + Send>),
}

impl Reply {
    /// Waits for the answer by blocking the calling thread: the natural way for the thread, pool,
    /// fork and prefork models.
    pub fn wait_blocking(self) -> Response {
        match self {
            Reply::Ready(resp) => resp,
            Reply::Delayed(wait, resp) => {
                std::thread::sleep(wait);
                resp
            }
            Reply::Compute(job) => {
                let (tx, rx) = std::sync::mpsc::sync_channel(1);
                rayon::spawn(move || {
                    // The receiver waits below; a failed send means it is gone, nothing to do.
                    let _ = tx.send(run_job(job));
                });
                rx.recv().unwrap_or_else(|_| internal_error())
            }
        }
    }
}

/// Runs a CPU job of [`Reply::Compute`], turning a panic into a 500: rayon aborts the process on
/// a panic that escapes a spawned job, and one bad request must not take the server down.
pub fn run_job(job: Box<dyn FnOnce() -> Response + Send>) -> Response {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).unwrap_or_else(|_| internal_error())
}

/// The answer to a request whose handler panicked; the connection closes after it.
pub fn internal_error() -> Response {
    let mut resp = Response::text(500, "internal error\n");
    resp.close = true;
    resp
}

/// The service every model serves.
pub trait Handler: Send + Sync + 'static {
    /// Answers one complete request.
    fn handle(&self, req: &Request) -> Reply;
}
