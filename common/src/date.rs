//! The `Date` header, formatted at most once per second. The caller passes the wall-clock time in:
//! the core never reads the clock.

use std::time::{SystemTime, UNIX_EPOCH};

/// A cached IMF-fixdate, refreshed when the second changes.
#[derive(Debug, Clone)]
pub struct DateCache {
    second: u64,
    text: [u8; 29],
}

impl Default for DateCache {
    fn default() -> Self {
        DateCache {
            second: u64::MAX,
            text: [b' '; 29],
        }
    }
}

impl DateCache {
    /// The date for `now`, as the 29 bytes of an IMF-fixdate.
    pub fn get(&mut self, now: SystemTime) -> &[u8] {
        let second = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        if second != self.second {
            self.second = second;
            let text = httpdate::fmt_http_date(now);
            let bytes = text.as_bytes();
            let n = bytes.len().min(self.text.len());
            self.text[..n].copy_from_slice(&bytes[..n]);
        }
        &self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_and_caches_per_second() {
        let mut cache = DateCache::default();
        let t = UNIX_EPOCH + Duration::from_secs(784111777);
        assert_eq!(cache.get(t), b"Sun, 06 Nov 1994 08:49:37 GMT");
        let later = t + Duration::from_millis(900);
        assert_eq!(cache.get(later), b"Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(
            cache.get(t + Duration::from_secs(1)),
            b"Sun, 06 Nov 1994 08:49:38 GMT"
        );
    }
}
