//! The routes that simulate work, the levers the load tester pulls: a downstream wait the model
//! sleeps through its own way (`/sleep`), a blocking call inside the handler (`/block`), CPU work
//! inline or on the rayon pool (`/cpu`), and a long body sent in pieces (`/stream`). Every size is
//! bounded so that one request cannot hold a worker, the CPU or the memory for long.

use super::params::{int_param, int_param_or, Reject};
use crate::{Body, Reply, Request, Response};
use std::time::Duration;

/// The longest wait `/sleep` and `/block` accept, in milliseconds.
pub(super) const MAX_SLEEP_MS: u64 = 60_000;
/// The most rounds `/cpu` runs: some 70 ms of one core in a release build of today.
pub(super) const MAX_CPU_ROUNDS: u64 = 50_000_000;
/// The most chunks `/stream` sends.
pub(super) const MAX_CHUNKS: u64 = 10_000;
/// The largest chunk `/stream` sends.
pub(super) const MAX_CHUNK_SIZE: u64 = 1 << 20;
/// The largest body `/stream` sends, all chunks together.
pub(super) const MAX_STREAM_BYTES: u64 = 64 << 20;

/// `GET /sleep?ms=N`: the model waits N ms its own way, then answers.
pub(super) fn sleep(req: &Request) -> Result<Reply, Reject> {
    let ms = int_param(req, "ms", 0..=MAX_SLEEP_MS)?;
    Ok(Reply::Delayed(Duration::from_millis(ms), slept(ms)))
}

/// `GET /block?ms=N`: sleeps in the calling thread, as a careless blocking call in a handler does.
pub(super) fn block(req: &Request) -> Result<Reply, Reject> {
    let ms = int_param(req, "ms", 0..=MAX_SLEEP_MS)?;
    // Blocking on purpose: under an event loop this stalls every other connection of the loop,
    // which is what the route is there to show.
    std::thread::sleep(Duration::from_millis(ms));
    Ok(Reply::Ready(slept(ms)))
}

fn slept(ms: u64) -> Response {
    Response::text(200, format!("slept {ms} ms\n"))
}

/// `GET /cpu?n=N[&offload=1]`: N rounds of CPU work, inline or as a job for the rayon pool.
pub(super) fn cpu(req: &Request) -> Result<Reply, Reject> {
    let rounds = int_param(req, "n", 0..=MAX_CPU_ROUNDS)?;
    let offload = match req.query_param("offload") {
        None | Some("0") => false,
        Some("1") => true,
        Some(_) => {
            return Err(Reject::bad_request(
                "query parameter `offload` must be 0 or 1",
            ))
        }
    };
    Ok(if offload {
        Reply::Compute(Box::new(move || computed(rounds)))
    } else {
        Reply::Ready(computed(rounds))
    })
}

fn computed(rounds: u64) -> Response {
    let result = mix_rounds(rounds);
    Response::text(200, format!("cpu n={rounds} result={result:016x}\n"))
}

/// Runs `rounds` steps of a 64-bit mixer (an LCG step, then an xorshift). Each step needs the one
/// before, so the loop can be neither vectorised nor skipped, and the result goes into the answer
/// so the compiler cannot drop the work.
fn mix_rounds(rounds: u64) -> u64 {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..rounds {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        x ^= x >> 29;
    }
    x
}

/// `GET /stream?chunks=N&size=B`: N chunks of B bytes (10 of 16 by default).
pub(super) fn stream(req: &Request) -> Result<Response, Reject> {
    let chunks = int_param_or(req, "chunks", 10, 1..=MAX_CHUNKS)?;
    let size = int_param_or(req, "size", 16, 1..=MAX_CHUNK_SIZE)?;
    // Both are bounded well below 2^32, so the product cannot overflow.
    if chunks * size > MAX_STREAM_BYTES {
        let reason = format!("chunks * size must be at most {MAX_STREAM_BYTES} bytes");
        return Err(Reject::bad_request(reason));
    }
    // The alphabet over and over, so that a client that loses or shifts a byte can see where.
    let chunk: Vec<u8> = (b'a'..=b'z').cycle().take(size as usize).collect();
    let mut response = Response::text(200, String::new());
    response.body = Body::Chunked(vec![chunk; chunks as usize]);
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixer_depends_on_every_round() {
        assert_eq!(mix_rounds(0), 0x9e37_79b9_7f4a_7c15);
        let values: Vec<u64> = (0..64).map(mix_rounds).collect();
        let mut unique = values.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), values.len());
    }
}
