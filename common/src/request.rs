//! The owned request handed to the service. Its head is one copy of the bytes the client sent,
//! indexed by ranges, so a request costs two allocations however many headers it has, and it can
//! cross threads (to a pool, a timer, a rayon job) without borrowing from a read buffer.

use crate::head::split_absolute;
use std::ops::Range;

/// The HTTP version of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// HTTP/1.0: close after the response unless the client asks for keep-alive.
    Http10,
    /// HTTP/1.1: keep-alive unless either side says `Connection: close`.
    Http11,
}

/// A complete request: head and de-framed body.
#[derive(Debug, Clone)]
pub struct Request {
    pub(crate) head: Vec<u8>,
    pub(crate) method: Range<usize>,
    pub(crate) target: Range<usize>,
    pub(crate) headers: Vec<(Range<usize>, Range<usize>)>,
    pub(crate) version: Version,
    pub(crate) keep_alive: bool,
    /// The request body, with any chunked framing removed.
    pub body: Vec<u8>,
    /// Trailer fields of a chunked body, as (name, value).
    pub trailers: Vec<(String, Vec<u8>)>,
}

impl Request {
    /// The method, e.g. `GET`.
    pub fn method(&self) -> &str {
        self.str_at(&self.method)
    }

    /// The request target as sent, path and query.
    pub fn target(&self) -> &str {
        self.str_at(&self.target)
    }

    /// The path part of the target (before `?`). For an absolute-form target, the path after
    /// the authority (`/` when it is empty); for `*` and CONNECT's `host:port`, the target.
    pub fn path(&self) -> &str {
        self.path_and_query().0
    }

    /// The query string (after `?`), if any.
    pub fn query(&self) -> Option<&str> {
        self.path_and_query().1
    }

    /// The authority the request is for (RFC 9112 section 3.2.2): an absolute-form target's,
    /// which wins over Host; CONNECT's `host:port`; otherwise the Host header, `None` only for an
    /// HTTP/1.0 request without one.
    pub fn authority(&self) -> Option<&str> {
        let target = self.target();
        if !target.starts_with('/') {
            if let Some((authority, _)) = split_absolute(target) {
                return Some(authority);
            }
            if self.method() == "CONNECT" {
                return Some(target);
            }
        }
        self.header_str("host")
    }

    /// The target as path and query: the authority of an absolute-form target dropped. The
    /// parser lets no fragment through.
    fn path_and_query(&self) -> (&str, Option<&str>) {
        let target = self.target();
        let (rest, absolute) = if target.starts_with('/') {
            (target, false) // origin-form, as nearly every request has it
        } else {
            split_absolute(target).map_or((target, false), |(_, rest)| (rest, true))
        };
        let (path, query) = rest
            .split_once('?')
            .map_or((rest, None), |(p, q)| (p, Some(q)));
        // `http://a` and `http://a?q` name the root (RFC 3986 section 6.2.3).
        (
            if absolute && path.is_empty() {
                "/"
            } else {
                path
            },
            query,
        )
    }

    /// The value of query parameter `name`, undecoded.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query()?.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k == name).then_some(v)
        })
    }

    /// The version of the request.
    pub fn version(&self) -> Version {
        self.version
    }

    /// Whether the connection stays open after this request's response.
    pub fn keep_alive(&self) -> bool {
        self.keep_alive
    }

    /// The headers in the order sent, as (name, value).
    pub fn headers(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.headers
            .iter()
            .map(|(n, v)| (self.str_at(n), &self.head[v.clone()]))
    }

    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// The first header called `name`, if its value is UTF-8.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.header(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    fn str_at(&self, range: &Range<usize>) -> &str {
        // Method, target and header names were validated as ASCII tokens by the parser.
        std::str::from_utf8(&self.head[range.clone()]).unwrap_or("")
    }

    /// Builds a request directly, for tests of the service without the parser.
    pub fn build(method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Request {
        let mut head = Vec::new();
        let mut span = |bytes: &[u8]| {
            let start = head.len();
            head.extend_from_slice(bytes);
            start..head.len()
        };
        let method = span(method.as_bytes());
        let target = span(target.as_bytes());
        let headers = headers
            .iter()
            .map(|(n, v)| (span(n.as_bytes()), span(v.as_bytes())))
            .collect();
        Request {
            head,
            method,
            target,
            headers,
            version: Version::Http11,
            keep_alive: true,
            body: body.to_vec(),
            trailers: Vec::new(),
        }
    }
}
