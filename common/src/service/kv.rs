//! `PUT`, `GET` and `DELETE /kv/{key}`: the idempotent methods on an in-memory store. Repeating
//! a PUT or a DELETE leaves the store as one did, which is what makes them safe to retry.
//!
//! The store is bounded in keys and bytes. A full store refuses new data with 507 rather than
//! dropping old data: a store that silently forgets is worse than one that says no.

use super::params::{lock, Reject};
use crate::Response;
use std::collections::HashMap;
use std::sync::Mutex;

/// The longest key, in bytes.
pub(super) const MAX_KEY_LEN: usize = 256;
/// The largest value, in bytes (the core's default body limit, which may be set higher).
pub(super) const MAX_VALUE_LEN: usize = 1 << 20;
/// The most keys the store holds.
pub(super) const MAX_KEYS: usize = 10_000;
/// The most bytes the store holds, keys and values together.
pub(super) const MAX_TOTAL_BYTES: usize = 64 << 20;

/// Insufficient Storage: the store is full.
const FULL: u16 = 507;

/// The key-value store of one process.
#[derive(Debug, Default)]
pub(super) struct KvStore {
    inner: Mutex<Entries>,
}

#[derive(Debug, Default)]
struct Entries {
    map: HashMap<String, Vec<u8>>,
    /// Bytes of every key and value in `map`.
    bytes: usize,
}

/// Checks a key: the rest of the path after `/kv/`, taken as sent (not percent-decoded).
pub(super) fn check_key(key: &str) -> Result<(), Reject> {
    if key.is_empty() || key.len() > MAX_KEY_LEN || key.contains('/') {
        let reason = format!("key must be 1 to {MAX_KEY_LEN} bytes without '/'");
        return Err(Reject::bad_request(reason));
    }
    Ok(())
}

impl KvStore {
    /// `PUT`: 201 when the key is new, 204 when its value was replaced.
    pub fn put(&self, key: &str, value: &[u8]) -> Result<Response, Reject> {
        if value.len() > MAX_VALUE_LEN {
            let reason = format!("value must be at most {MAX_VALUE_LEN} bytes");
            return Err(Reject::new(413, reason));
        }
        // Copy before locking, and drop a replaced value after unlocking: the lock covers only
        // the bookkeeping.
        let value = value.to_vec();
        let replaced = {
            let mut entries = lock(&self.inner);
            let old_len = entries.map.get(key).map(Vec::len);
            // `bytes` counts every entry, the old value too, so the subtraction cannot wrap.
            let bytes = match old_len {
                Some(old_len) => entries.bytes - old_len + value.len(),
                None => {
                    if entries.map.len() >= MAX_KEYS {
                        let reason = format!("kv store full: {MAX_KEYS} keys");
                        return Err(Reject::new(FULL, reason));
                    }
                    entries.bytes + key.len() + value.len()
                }
            };
            if bytes > MAX_TOTAL_BYTES {
                let reason = format!("kv store full: {MAX_TOTAL_BYTES} bytes");
                return Err(Reject::new(FULL, reason));
            }
            entries.bytes = bytes;
            entries.map.insert(key.to_owned(), value)
        };
        Ok(match replaced {
            Some(_) => Response::new(204, Vec::new()),
            None => Response::text(201, "created\n"),
        })
    }

    /// `GET`: 200 with the value, or 404.
    pub fn get(&self, key: &str) -> Response {
        let value = lock(&self.inner).map.get(key).cloned();
        match value {
            Some(value) => {
                Response::new(200, value).with_header("Content-Type", "application/octet-stream")
            }
            None => missing(),
        }
    }

    /// `DELETE`: 204, or 404 when there was nothing to delete.
    pub fn delete(&self, key: &str) -> Response {
        let removed = {
            let mut entries = lock(&self.inner);
            let removed = entries.map.remove(key);
            if let Some(value) = &removed {
                // The entry was counted when it went in.
                entries.bytes -= key.len() + value.len();
            }
            removed
        };
        match removed {
            Some(_) => Response::new(204, Vec::new()),
            None => missing(),
        }
    }
}

fn missing() -> Response {
    Response::text(404, "no such key\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_count_follows_puts_and_deletes() {
        let store = KvStore::default();
        assert_eq!(store.put("ab", b"123").unwrap().status, 201);
        assert_eq!(store.put("ab", b"1").unwrap().status, 204);
        assert_eq!(lock(&store.inner).bytes, 3);
        assert_eq!(store.delete("ab").status, 204);
        assert_eq!(lock(&store.inner).bytes, 0);
    }

    #[test]
    fn full_store_refuses_new_keys_but_serves_old_ones() {
        let store = KvStore::default();
        for i in 0..MAX_KEYS {
            assert_eq!(store.put(&i.to_string(), b"v").unwrap().status, 201);
        }
        let refused = store.put("one-more", b"v").unwrap_err();
        assert_eq!(refused.status, 507);
        assert!(refused.reason.contains("keys"), "{refused:?}");
        assert_eq!(store.put("7", b"new").unwrap().status, 204);
        assert_eq!(store.get("7").body_bytes(), b"new");
    }

    #[test]
    fn total_bytes_are_capped() {
        let store = KvStore::default();
        let value = vec![0; MAX_VALUE_LEN];
        let fits = MAX_TOTAL_BYTES / (MAX_VALUE_LEN + 2);
        for i in 0..fits {
            assert_eq!(store.put(&format!("{i:02}"), &value).unwrap().status, 201);
        }
        let refused = store.put("zz", &value).unwrap_err();
        assert_eq!(refused.status, 507);
        assert!(refused.reason.contains("bytes"), "{refused:?}");
        assert_eq!(
            store
                .put("big", &vec![0; MAX_VALUE_LEN + 1])
                .unwrap_err()
                .status,
            413
        );
    }
}
