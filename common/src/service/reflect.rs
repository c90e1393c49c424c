//! The routes that answer from the request itself: `/echo`, `/headers`, `/status/{code}` and
//! `/redirect`. Whatever the client sent is copied into the answer only where it cannot break
//! the response: a header value must be printable, and a redirect must stay on this server.

use super::params::{percent_decode, Reject};
use crate::response::reason_phrase;
use crate::{Request, Response};

/// The longest `Location` `/redirect` sends.
pub(super) const MAX_REDIRECT_LEN: usize = 2048;

/// `POST /echo`: the body back, with the request's `Content-Type` if it has a usable one.
pub(super) fn echo(req: &Request) -> Response {
    // The parser already refuses control bytes in header values; requests built in tests or by
    // another front end may not have been through it, and a CR here would split the response.
    let content_type = req
        .header_str("content-type")
        .filter(|v| !v.is_empty() && v.bytes().all(|b| b == b' ' || b.is_ascii_graphic()))
        .unwrap_or("application/octet-stream")
        .to_string();
    Response::new(200, req.body.clone()).with_header("Content-Type", content_type)
}

/// `GET /headers`: the request's headers, one `Name: value` a line, as they arrived.
pub(super) fn headers(req: &Request) -> Response {
    let mut body = Vec::new();
    for (name, value) in req.headers() {
        body.extend_from_slice(name.as_bytes());
        body.extend_from_slice(b": ");
        body.extend_from_slice(value);
        body.push(b'\n');
    }
    Response::new(200, body).with_header("Content-Type", "text/plain")
}

/// `GET /status/{code}`: an answer with that status, 200 to 599.
pub(super) fn status(code: &str) -> Result<Response, Reject> {
    // Exactly three digits: `parse` alone would also take `+200` and `0200`.
    let status = Some(code)
        .filter(|c| c.len() == 3 && c.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|c| c.parse::<u16>().ok())
        .filter(|s| (200..=599).contains(s))
        .ok_or_else(|| Reject::bad_request("status code must be a number from 200 to 599"))?;
    let body = match reason_phrase(status) {
        "" => format!("{status}\n"),
        reason => format!("{status} {reason}\n"),
    };
    Ok(Response::text(status, body))
}

/// `GET /redirect?to=/path`: 302 to a path on this server, never elsewhere.
pub(super) fn redirect(req: &Request) -> Result<Response, Reject> {
    let raw = req
        .query_param("to")
        .ok_or_else(|| Reject::bad_request("missing query parameter `to`"))?;
    let target = percent_decode(raw.as_bytes(), false)?;
    if !is_local_path(&target) {
        return Err(Reject::bad_request(
            "`to` must be a local path: one leading '/', printable ASCII, no '\\'",
        ));
    }
    // `is_local_path` admitted ASCII only, which is always UTF-8.
    let target = String::from_utf8(target)
        .map_err(|_| Reject::bad_request("`to` must be printable ASCII"))?;
    let body = format!("redirecting to {target}\n");
    Ok(Response::text(302, body).with_header("Location", target))
}

/// Whether a `Location` can only lead to this server. `//host` is a scheme-relative URL to
/// another host; browsers read `\` as `/` (so `/\host` is `//host`) and drop tabs and newlines
/// (so `/<TAB>/host` is too); CR and LF would also split the header. Printable ASCII without `\`,
/// after one leading `/` not followed by another, leaves none of these open.
fn is_local_path(target: &[u8]) -> bool {
    target.len() <= MAX_REDIRECT_LEN
        && target.first() == Some(&b'/')
        && target.get(1) != Some(&b'/')
        && target.iter().all(|&b| b.is_ascii_graphic() && b != b'\\')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_pass() {
        for good in ["/", "/a", "/a/b?c=d#e", "/a//b", "/%2F/evil.example"] {
            assert!(is_local_path(good.as_bytes()), "{good:?}");
        }
        let long = format!("/{}", "a".repeat(MAX_REDIRECT_LEN));
        for bad in [
            "",
            "a",
            "//evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "/\t/evil.example",
            "/a\r\nSet-Cookie: x=1",
            "/ a",
            "/caf\u{e9}",
            "https://evil.example",
            "javascript:alert(1)",
            long.as_str(),
        ] {
            assert!(!is_local_path(bad.as_bytes()), "{bad:?}");
        }
    }
}
