//! The `Date` header, formatted at most once per second. The caller passes the wall-clock time in:
//! the core never reads the clock.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// 9999-12-31T23:59:59Z, the last second an IMF-fixdate (and httpdate) can express.
const LAST_SECOND: u64 = 253_402_300_799;

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
        // httpdate panics outside 1970..=9999: a clock set absurdly must not take a server down.
        let second = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
            .min(LAST_SECOND);
        if second != self.second {
            self.second = second;
            let text = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(second));
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

    #[test]
    fn clocks_out_of_range_are_clamped() {
        let mut cache = DateCache::default();
        assert_eq!(
            cache.get(UNIX_EPOCH - Duration::from_secs(5)),
            b"Thu, 01 Jan 1970 00:00:00 GMT"
        );
        let far = UNIX_EPOCH + Duration::from_secs(LAST_SECOND * 2);
        assert_eq!(cache.get(far), b"Fri, 31 Dec 9999 23:59:59 GMT");
    }
}
