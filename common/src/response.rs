//! The response the service returns. The connection adds the framing headers (Content-Length or
//! Transfer-Encoding, Connection, Date, Server): the service never frames its own answer.

use std::borrow::Cow;

/// A response body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// A body of known length, sent with Content-Length (a fixed text needs no copy).
    Full(Cow<'static, [u8]>),
    /// A body sent in these chunks with chunked transfer coding (HTTP/1.1 clients), or joined
    /// with Content-Length (HTTP/1.0 clients).
    Chunked(Vec<Vec<u8>>),
}

/// A response: status, extra headers and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code (100-599).
    pub status: u16,
    /// Headers other than the framing ones, as (name, value).
    pub headers: Vec<(&'static str, Cow<'static, str>)>,
    /// The body.
    pub body: Body,
    /// Close the connection after this response, whatever the client asked for.
    pub close: bool,
}

impl Response {
    /// A response with no extra headers.
    pub fn new(status: u16, body: impl Into<Cow<'static, [u8]>>) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Body::Full(body.into()),
            close: false,
        }
    }

    /// A `text/plain` response.
    pub fn text(status: u16, body: impl Into<Cow<'static, str>>) -> Response {
        Response::new(status, str_bytes(body.into())).with_header("Content-Type", "text/plain")
    }

    /// An `application/json` response.
    pub fn json(status: u16, body: impl Into<Cow<'static, str>>) -> Response {
        Response::new(status, str_bytes(body.into()))
            .with_header("Content-Type", "application/json")
    }

    /// Adds a header.
    pub fn with_header(
        mut self,
        name: &'static str,
        value: impl Into<Cow<'static, str>>,
    ) -> Response {
        self.headers.push((name, value.into()));
        self
    }

    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_ref())
    }

    /// The body's length in bytes, chunks added up.
    pub fn body_len(&self) -> usize {
        match &self.body {
            Body::Full(b) => b.len(),
            Body::Chunked(chunks) => chunks.iter().map(Vec::len).sum(),
        }
    }

    /// The body's bytes, chunks joined.
    pub fn body_bytes(&self) -> Vec<u8> {
        match &self.body {
            Body::Full(b) => b.to_vec(),
            Body::Chunked(chunks) => chunks.concat(),
        }
    }
}

/// A text's bytes, borrowed when the text is.
fn str_bytes(text: Cow<'static, str>) -> Cow<'static, [u8]> {
    match text {
        Cow::Borrowed(s) => Cow::Borrowed(s.as_bytes()),
        Cow::Owned(s) => Cow::Owned(s.into_bytes()),
    }
}

/// The standard reason phrase of a status code.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        417 => "Expectation Failed",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        507 => "Insufficient Storage",
        _ => "",
    }
}
