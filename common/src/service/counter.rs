//! `POST /counter`: the non-idempotent method. Each POST adds one, so a client that retries after
//! a lost answer counts twice, unless it sends an `Idempotency-Key` header: a repeat with the same
//! key gets the first answer again (same status and body, plus `Idempotent-Replayed: true`) and
//! adds nothing.
//!
//! The keys are remembered in a [`BoundedMap`]: once it holds [`MAX_IDEMPOTENCY_KEYS`], each new
//! key makes the oldest one forgotten, and a retry with a forgotten key counts again. Payment
//! APIs do the same with a time window; this one has no clock, so the window is a count.

use super::bounded::BoundedMap;
use super::params::{lock, Reject};
use crate::{Request, Response};
use std::sync::Mutex;

/// The most idempotency keys remembered at once.
pub(super) const MAX_IDEMPOTENCY_KEYS: usize = 10_000;
/// The longest idempotency key, in bytes.
pub(super) const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

/// The counter of one process and the answers given to idempotency keys.
#[derive(Debug)]
pub(super) struct Counter {
    inner: Mutex<State>,
}

#[derive(Debug)]
struct State {
    value: u64,
    /// The value first answered to each key: the whole first response follows from it.
    answered: BoundedMap<String, u64>,
}

impl Default for Counter {
    fn default() -> Self {
        Counter {
            inner: Mutex::new(State {
                value: 0,
                answered: BoundedMap::new(MAX_IDEMPOTENCY_KEYS),
            }),
        }
    }
}

impl Counter {
    /// `POST /counter`: the new value, or the first answer to a repeated idempotency key.
    pub fn post(&self, req: &Request) -> Result<Response, Reject> {
        let key = req.header("idempotency-key").map(check_key).transpose()?;
        // Lookup, increment and record under one lock, so that two concurrent requests with one
        // key cannot both count.
        let mut state = lock(&self.inner);
        if let Some(&value) = key.and_then(|k| state.answered.get(k)) {
            return Ok(counted(value).with_header("Idempotent-Replayed", "true"));
        }
        // 2^64 POSTs are out of reach; saturating keeps even that from panicking.
        state.value = state.value.saturating_add(1);
        let value = state.value;
        if let Some(key) = key {
            state.answered.insert(key.to_owned(), value);
        }
        Ok(counted(value))
    }
}

fn counted(value: u64) -> Response {
    Response::text(200, format!("{value}\n"))
}

/// An idempotency key is opaque, but must be 1 to 255 bytes of printable ASCII or spaces.
fn check_key(raw: &[u8]) -> Result<&str, Reject> {
    let printable = raw.iter().all(|&b| b == b' ' || b.is_ascii_graphic());
    match std::str::from_utf8(raw) {
        Ok(key) if printable && !key.is_empty() && key.len() <= MAX_IDEMPOTENCY_KEY_LEN => Ok(key),
        _ => Err(Reject::bad_request(format!(
            "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} printable ASCII characters"
        ))),
    }
}
