//! Reading the input of a route: query parameters, form fields, cookies and the lock on a store.
//! Every failure becomes a [`Reject`], a 4xx (or 5xx) answer with a one-line reason, so a route
//! reads its input with `?` and never has to think about what bad input looks like.

use crate::{Request, Response};
use std::ops::RangeInclusive;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// Why a request was refused: the status and a one-line reason for the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Reject {
    /// The status to answer with: 4xx for bad input, 5xx when the server cannot oblige.
    pub status: u16,
    /// One line, without its newline.
    pub reason: String,
}

impl Reject {
    /// A refusal with `status`.
    pub fn new(status: u16, reason: impl Into<String>) -> Reject {
        Reject {
            status,
            reason: reason.into(),
        }
    }

    /// A 400: the input is malformed or out of bounds.
    pub fn bad_request(reason: impl Into<String>) -> Reject {
        Reject::new(400, reason)
    }

    /// The answer: the reason as one line of `text/plain`.
    pub fn into_response(mut self) -> Response {
        self.reason.push('\n');
        Response::text(self.status, self.reason)
    }
}

/// The query parameter `name`, a whole number in `range`; missing is an error.
pub(super) fn int_param(
    req: &Request,
    name: &str,
    range: RangeInclusive<u64>,
) -> Result<u64, Reject> {
    let raw = req
        .query_param(name)
        .ok_or_else(|| Reject::bad_request(format!("missing query parameter `{name}`")))?;
    parse_bounded(name, raw, range)
}

/// The query parameter `name`, a whole number in `range`, or `default` when it is absent.
pub(super) fn int_param_or(
    req: &Request,
    name: &str,
    default: u64,
    range: RangeInclusive<u64>,
) -> Result<u64, Reject> {
    req.query_param(name)
        .map_or(Ok(default), |raw| parse_bounded(name, raw, range))
}

fn parse_bounded(name: &str, raw: &str, range: RangeInclusive<u64>) -> Result<u64, Reject> {
    let out_of_range = || {
        let (min, max) = (range.start(), range.end());
        Reject::bad_request(format!(
            "query parameter `{name}` must be from {min} to {max}"
        ))
    };
    // Digits only: `u64::from_str` would also take a leading `+`, which no client means.
    if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
        let reason = format!("query parameter `{name}` must be a whole number");
        return Err(Reject::bad_request(reason));
    }
    // With only digits left, parsing fails on overflow alone: a number past any bound.
    let n: u64 = raw.parse().map_err(|_| out_of_range())?;
    if range.contains(&n) {
        Ok(n)
    } else {
        Err(out_of_range())
    }
}

/// Percent-decodes `raw`. Form bodies also spell a space as `+`; paths and most query values
/// do not, so the caller says which it reads.
pub(super) fn percent_decode(raw: &[u8], plus_is_space: bool) -> Result<Vec<u8>, Reject> {
    let mut out = Vec::with_capacity(raw.len());
    let mut rest = raw;
    loop {
        rest = match rest {
            [] => return Ok(out),
            [b'%', hi, lo, tail @ ..] => {
                let byte = hex_digit(*hi).zip(hex_digit(*lo)).map(|(h, l)| h << 4 | l);
                out.push(byte.ok_or_else(|| Reject::bad_request("bad percent-encoding"))?);
                tail
            }
            [b'%', ..] => return Err(Reject::bad_request("bad percent-encoding")),
            [b'+', tail @ ..] if plus_is_space => {
                out.push(b' ');
                tail
            }
            [b, tail @ ..] => {
                out.push(*b);
                tail
            }
        };
    }
}

fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The decoded value of field `name` in an `application/x-www-form-urlencoded` body, the first
/// if it is repeated.
pub(super) fn form_field(body: &[u8], name: &str) -> Result<Option<Vec<u8>>, Reject> {
    for pair in body.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
        let (key, value) = split_at_byte(pair, b'=').unwrap_or((pair, &[]));
        if percent_decode(key, true)? == name.as_bytes() {
            return percent_decode(value, true).map(Some);
        }
    }
    Ok(None)
}

/// The values of every cookie called `name`, across all `Cookie` headers, in the order sent.
/// Browsers send one header with pairs separated by `; `; tolerating several headers and loose
/// whitespace costs nothing.
pub(super) fn cookies<'r>(req: &'r Request, name: &'r str) -> impl Iterator<Item = &'r [u8]> {
    req.headers()
        .filter(|(n, _)| n.eq_ignore_ascii_case("cookie"))
        .flat_map(|(_, value)| value.split(|&b| b == b';'))
        .filter_map(move |pair| {
            let (key, value) = split_at_byte(pair, b'=')?;
            (trim_ows(key) == name.as_bytes()).then(|| unquote(trim_ows(value)))
        })
}

/// Whether a `Content-Type` value names `media_type`, whatever its parameters (`; charset=...`).
pub(super) fn is_media_type(content_type: &[u8], media_type: &str) -> bool {
    let essence = split_at_byte(content_type, b';').map_or(content_type, |(e, _)| e);
    trim_ows(essence).eq_ignore_ascii_case(media_type.as_bytes())
}

/// Locks a store. A panic while the lock was held would poison it; no store code panics, and
/// each leaves its data consistent at every step, so the data is taken back rather than every
/// later request failing.
pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn split_at_byte(bytes: &[u8], sep: u8) -> Option<(&[u8], &[u8])> {
    let at = bytes.iter().position(|&b| b == sep)?;
    Some((&bytes[..at], &bytes[at + 1..]))
}

fn trim_ows(bytes: &[u8]) -> &[u8] {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = bytes.iter().position(|b| !is_ows(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !is_ows(b))
        .map_or(start, |i| i + 1);
    &bytes[start..end]
}

/// RFC 6265 allows a cookie value in double quotes; the quotes are not part of it.
fn unquote(value: &[u8]) -> &[u8] {
    match value {
        [b'"', inner @ .., b'"'] => inner,
        _ => value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decode_handles_escapes_plus_and_bad_input() {
        assert_eq!(percent_decode(b"a%20b%2Fc", false).unwrap(), b"a b/c");
        assert_eq!(percent_decode(b"a+b", true).unwrap(), b"a b");
        assert_eq!(percent_decode(b"a+b", false).unwrap(), b"a+b");
        assert_eq!(percent_decode(b"%e2%82%AC", false).unwrap(), "€".as_bytes());
        for bad in [&b"%"[..], b"%4", b"%zz", b"ab%g1", b"%%41"] {
            let err = percent_decode(bad, false).unwrap_err();
            assert_eq!(err.status, 400, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn int_params_are_bounded_digits() {
        let req = Request::build(
            "GET",
            "/x?a=5&b=&c=%2B5&d=99999999999999999999999&e=+1",
            &[],
            b"",
        );
        assert_eq!(int_param(&req, "a", 0..=10), Ok(5));
        assert_eq!(int_param(&req, "a", 6..=10).unwrap_err().status, 400);
        for name in ["b", "c", "d", "e", "missing"] {
            let err = int_param(&req, name, 0..=u64::MAX).unwrap_err();
            assert!(err.reason.contains(&format!("`{name}`")), "{err:?}");
        }
        assert_eq!(int_param_or(&req, "missing", 7, 0..=10), Ok(7));
        assert!(int_param_or(&req, "d", 7, 0..=10).is_err());
    }

    #[test]
    fn form_fields_are_decoded_and_first_wins() {
        let body = b"x=1&&user=J%C3%B6rg+M&user=second";
        assert_eq!(
            form_field(body, "user").unwrap().unwrap(),
            "Jörg M".as_bytes()
        );
        assert_eq!(form_field(body, "nope").unwrap(), None);
        assert_eq!(form_field(b"flag&user=", "user").unwrap().unwrap(), b"");
        assert!(form_field(b"us%er=1", "user").is_err());
    }

    #[test]
    fn cookies_are_split_trimmed_and_unquoted() {
        let req = Request::build(
            "GET",
            "/",
            &[
                ("Cookie", "a=1; sid=abc;theme=dark"),
                ("X-Other", "sid=no"),
                ("cookie", " sid = \"def\" ; junk"),
            ],
            b"",
        );
        let found: Vec<&[u8]> = cookies(&req, "sid").collect();
        assert_eq!(found, [&b"abc"[..], b"def"]);
        assert_eq!(cookies(&req, "theme").collect::<Vec<_>>(), [b"dark"]);
        assert_eq!(cookies(&req, "junk").count(), 0);
    }

    #[test]
    fn media_types_ignore_parameters_and_case() {
        let form = "application/x-www-form-urlencoded";
        assert!(is_media_type(b"application/x-www-form-urlencoded", form));
        assert!(is_media_type(
            b"Application/X-WWW-Form-Urlencoded ; charset=utf-8",
            form
        ));
        assert!(!is_media_type(b"multipart/form-data; boundary=x", form));
    }
}
