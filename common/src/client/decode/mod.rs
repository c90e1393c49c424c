//! Response decoding: a [`ResponseDecoder`] turns response bytes into [`Event`]s. It mirrors
//! [`head`](crate::head) and [`body`](crate::body), the server's side of the same grammar.
//!
//! # Calling order
//!
//! 1. Tell the decoder whether the request being answered is a HEAD with
//!    [`ResponseDecoder::set_head_request`]: its response carries no body whatever its headers say.
//! 2. Call [`ResponseDecoder::decode`] on the unconsumed bytes. It answers how many bytes it
//!    consumed and either an event (complete) or none (partial: keep the unconsumed tail, append
//!    the next read to it and call again), or an error (invalid: close the connection).
//! 3. A response is [`Event::Head`], any number of [`Event::Data`] and [`Event::Trailer`], then
//!    [`Event::End`]. Interim 1xx heads come before the final head and end nothing.
//! 4. When the peer closes, call [`ResponseDecoder::decode_eof`]: it ends a close-delimited body,
//!    and says whether the close cut a response short.
//!
//! After `End { keep_alive: false, .. }` the connection carries no more responses. Peer input
//! never panics; an error leaves the decoder unusable until [`ResponseDecoder::reset`].

use crate::request::Version;
use crate::syntax::{self, is_tchar};
use std::fmt;
use std::mem::MaybeUninit;

/// Most header fields a response head may carry; their storage lives on the stack.
pub const MAX_HEADERS: usize = 128;

/// Bounds on what a server may send.
#[derive(Debug, Clone, Copy)]
pub struct ClientLimits {
    /// Largest response head, leading empty lines included, in bytes.
    pub max_head_bytes: usize,
    /// Most header fields in one head (capped at [`MAX_HEADERS`]).
    pub max_headers: usize,
    /// Longest chunk-size or trailer line, in bytes.
    pub max_line: usize,
    /// Most bytes of trailer fields after a chunked body.
    pub max_trailer_bytes: usize,
}

impl Default for ClientLimits {
    fn default() -> Self {
        ClientLimits {
            max_head_bytes: 64 * 1024,
            max_headers: 100,
            max_line: 4096,
            max_trailer_bytes: 16 * 1024,
        }
    }
}

/// How the body of a response is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// No body: HEAD, 1xx, 204, 304.
    None,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
    /// Everything until the server closes the connection.
    UntilClose,
}

/// The parts of a response head a client acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseHead {
    /// The status code, 100-599.
    pub status: u16,
    /// The version of the status line.
    pub version: Version,
    /// How the body is delimited.
    pub body: BodyKind,
    /// Whether the server lets the connection carry another response after this one.
    pub keep_alive: bool,
    /// Bytes of the head, leading empty lines included: re-parse them to read other headers.
    pub len: usize,
}

impl ResponseHead {
    /// An informational head (1xx other than 101): the final head still follows.
    pub fn is_interim(&self) -> bool {
        self.status < 200 && self.status != 101
    }
}

/// What the decoder found in the bytes it was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// A response head, interim or final.
    Head(ResponseHead),
    /// A piece of the body, chunked framing removed.
    Data(&'a [u8]),
    /// One trailer field after a chunked body, value without surrounding whitespace.
    Trailer {
        /// The field name.
        name: &'a [u8],
        /// The field value.
        value: &'a [u8],
    },
    /// The response is complete.
    End {
        /// Status of the final head.
        status: u16,
        /// Whether another response may follow on this connection.
        keep_alive: bool,
    },
}

/// A response the client cannot accept; the connection must be closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientError {
    /// The status line or a header field is malformed.
    BadHead,
    /// The status line names a version other than HTTP/1.0 or HTTP/1.1.
    BadVersion,
    /// A status code outside 100-599.
    BadStatus,
    /// More header fields than the limit.
    TooManyHeaders,
    /// A head larger than the limit.
    HeadTooLarge,
    /// A Content-Length that is not a decimal number, or several that differ.
    BadContentLength,
    /// Both Content-Length and Transfer-Encoding: the framing is ambiguous.
    LengthAndEncoding,
    /// A malformed Transfer-Encoding, chunked twice or not last, or any in an HTTP/1.0 response.
    BadTransferEncoding,
    /// A malformed chunk-size line, an over-long one, or chunk data not followed by CRLF.
    BadChunk,
    /// A malformed trailer field, or too many trailer bytes.
    BadTrailer,
    /// The connection closed in the middle of a response.
    UnexpectedEof,
    /// Bytes arrived after a response that ended the connection.
    DataAfterClose,
}

impl ClientError {
    /// A short reason, for logs and reports.
    pub fn reason(self) -> &'static str {
        match self {
            ClientError::BadHead => "malformed status line or header",
            ClientError::BadVersion => "not an HTTP/1.x response",
            ClientError::BadStatus => "status code outside 100-599",
            ClientError::TooManyHeaders => "too many header fields",
            ClientError::HeadTooLarge => "response head too large",
            ClientError::BadContentLength => "invalid or conflicting Content-Length",
            ClientError::LengthAndEncoding => "both Content-Length and Transfer-Encoding",
            ClientError::BadTransferEncoding => "invalid Transfer-Encoding",
            ClientError::BadChunk => "invalid chunked framing",
            ClientError::BadTrailer => "invalid or too large trailer",
            ClientError::UnexpectedEof => "connection closed mid-response",
            ClientError::DataAfterClose => "data after the last response",
        }
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for ClientError {}

/// Where the decoder stands within the response stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Awaiting a head; `scanned` bytes are known to hold no end of head.
    Head { scanned: usize },
    /// A Content-Length body with this many bytes to come.
    Length(u64),
    /// Expecting a chunk-size line.
    ChunkSize,
    /// Inside chunk data, this many bytes to come.
    ChunkData(u64),
    /// Expecting the CRLF after chunk data.
    ChunkEnd,
    /// Reading trailer fields, this many bytes of them so far.
    Trailers(usize),
    /// A close-delimited body.
    UntilClose,
    /// The body is complete; `End` is yet to be returned.
    End,
    /// No further response can arrive.
    Closed,
}

/// Decodes the responses of one connection. See the module docs for the calling order.
#[derive(Debug, Clone)]
pub struct ResponseDecoder {
    state: State,
    limits: ClientLimits,
    head_request: bool,
    status: u16,
    keep_alive: bool,
}

impl ResponseDecoder {
    /// A decoder awaiting the first response of a connection.
    pub fn new(limits: ClientLimits) -> ResponseDecoder {
        ResponseDecoder {
            state: State::Head { scanned: 0 },
            limits,
            head_request: false,
            status: 0,
            keep_alive: false,
        }
    }

    /// Says whether the responses from the next head on answer HEAD requests.
    pub fn set_head_request(&mut self, head: bool) {
        self.head_request = head;
    }

    /// Starts over for a new connection, keeping the limits and the HEAD setting.
    pub fn reset(&mut self) {
        self.state = State::Head { scanned: 0 };
    }

    /// Whether the decoder is between responses (nothing of a response seen yet).
    pub fn is_idle(&self) -> bool {
        matches!(self.state, State::Head { scanned: 0 })
    }

    /// Decodes the next event from `input`, the bytes not consumed so far. Returns the bytes
    /// consumed and the event, or `None` when `input` holds no complete event yet.
    pub fn decode<'a>(
        &mut self,
        input: &'a [u8],
    ) -> Result<(usize, Option<Event<'a>>), ClientError> {
        let mut pos = 0;
        loop {
            let rest = &input[pos..];
            match self.state {
                State::Head { scanned } => {
                    let (used, event) = self.decode_head(rest, scanned)?;
                    return Ok((pos + used, event));
                }
                State::Length(left) | State::ChunkData(left) => {
                    if rest.is_empty() {
                        return Ok((pos, None));
                    }
                    let take = left.min(rest.len() as u64);
                    let left = left - take;
                    self.state = match (self.state, left) {
                        (State::Length(_), 0) => State::End,
                        (State::Length(_), _) => State::Length(left),
                        (_, 0) => State::ChunkEnd,
                        _ => State::ChunkData(left),
                    };
                    // take <= rest.len(), so it fits a usize.
                    let take = take as usize;
                    return Ok((pos + take, Some(Event::Data(&rest[..take]))));
                }
                State::ChunkEnd => match rest {
                    [b'\r', b'\n', ..] => {
                        pos += 2;
                        self.state = State::ChunkSize;
                    }
                    [] | [b'\r'] => return Ok((pos, None)),
                    _ => return Err(ClientError::BadChunk),
                },
                State::ChunkSize => {
                    let Some(line) = take_line(rest, self.limits.max_line, ClientError::BadChunk)?
                    else {
                        return Ok((pos, None));
                    };
                    pos += line.len() + 2;
                    self.state = match parse_chunk_size(line)? {
                        0 => State::Trailers(0),
                        n => State::ChunkData(n),
                    };
                }
                State::Trailers(seen) => {
                    let max = self.limits.max_line;
                    let Some(line) = take_line(rest, max, ClientError::BadTrailer)? else {
                        return Ok((pos, None));
                    };
                    pos += line.len() + 2;
                    if line.is_empty() {
                        self.state = State::End;
                        continue;
                    }
                    let seen = seen + line.len() + 2;
                    if seen > self.limits.max_trailer_bytes {
                        return Err(ClientError::BadTrailer);
                    }
                    self.state = State::Trailers(seen);
                    let (name, value) = parse_trailer(line)?;
                    return Ok((pos, Some(Event::Trailer { name, value })));
                }
                State::UntilClose => {
                    if rest.is_empty() {
                        return Ok((pos, None));
                    }
                    return Ok((input.len(), Some(Event::Data(rest))));
                }
                State::End => return Ok((pos, Some(self.finish()))),
                State::Closed if rest.is_empty() => return Ok((pos, None)),
                State::Closed => return Err(ClientError::DataAfterClose),
            }
        }
    }

    /// The peer closed the connection; `rest` is what [`decode`](Self::decode) left unconsumed.
    /// Returns the `End` of a close-delimited body, `None` when the close fell between responses,
    /// or [`ClientError::UnexpectedEof`] when it cut a response short.
    pub fn decode_eof(&mut self, rest: &[u8]) -> Result<Option<Event<'static>>, ClientError> {
        match self.state {
            State::UntilClose | State::End => Ok(Some(self.finish())),
            State::Closed => Ok(None),
            State::Head { .. } if rest.is_empty() => {
                self.state = State::Closed;
                Ok(None)
            }
            _ => Err(ClientError::UnexpectedEof),
        }
    }

    fn finish(&mut self) -> Event<'static> {
        self.state = if self.keep_alive {
            State::Head { scanned: 0 }
        } else {
            State::Closed
        };
        Event::End {
            status: self.status,
            keep_alive: self.keep_alive,
        }
    }

    fn decode_head<'a>(
        &mut self,
        input: &'a [u8],
        scanned: usize,
    ) -> Result<(usize, Option<Event<'a>>), ClientError> {
        // Empty lines before a status line are tolerated, as httparse does; find where it starts.
        let mut start = 0;
        loop {
            match &input[start..] {
                [b'\n', ..] => start += 1,
                [b'\r', b'\n', ..] => start += 2,
                [b'\r'] => return Ok((0, None)),
                _ => break,
            }
            if start > self.limits.max_head_bytes {
                return Err(ClientError::HeadTooLarge);
            }
        }
        if start == input.len() {
            // Nothing of a head yet (the usual end of a read: the last response was whole).
            return Ok((0, None));
        }
        // The usual case: the whole head came at once, and one pass of the parser finds both its
        // end and its fields. A head still incomplete, or one the parser refuses, is judged as
        // one that came in pieces is, once its end is here or the limit is crossed, so that the
        // verdict does not depend on how the bytes arrived.
        let whole = if scanned == 0 {
            self.parse_head(&input[start..], start).ok().flatten()
        } else {
            None
        };
        let head = match whole {
            Some(head) if head.len <= self.limits.max_head_bytes => head,
            _ => match self.head_in_pieces(input, start, scanned.max(start))? {
                Some(head) => head,
                None => return Ok((0, None)),
            },
        };
        self.status = head.status;
        self.keep_alive = head.keep_alive;
        self.state = match head.body {
            _ if head.is_interim() => State::Head { scanned: 0 },
            BodyKind::None | BodyKind::Length(0) => State::End,
            BodyKind::Length(n) => State::Length(n),
            BodyKind::Chunked => State::ChunkSize,
            BodyKind::UntilClose => State::UntilClose,
        };
        Ok((head.len, Some(Event::Head(head))))
    }

    /// Looks for the end of the head that starts at `start`, from `from` on (so that no piece
    /// of a head that comes in pieces is searched twice), and parses it once it is all here:
    /// `None`, with where to resume, while it is incomplete.
    fn head_in_pieces(
        &mut self,
        input: &[u8],
        start: usize,
        from: usize,
    ) -> Result<Option<ResponseHead>, ClientError> {
        let end = match find_head_end(input, from) {
            Ok(end) => end,
            Err(_) if input.len() > self.limits.max_head_bytes => {
                return Err(ClientError::HeadTooLarge)
            }
            Err(resume) => {
                self.state = State::Head { scanned: resume };
                return Ok(None);
            }
        };
        if end > self.limits.max_head_bytes {
            return Err(ClientError::HeadTooLarge);
        }
        match self.parse_head(&input[start..end], start)? {
            Some(head) if head.len == end => Ok(Some(head)),
            _ => Err(ClientError::BadHead),
        }
    }

    /// Parses the head at the start of `head` (leading empty lines already skipped, `skipped`
    /// bytes of them): `None` while it is incomplete.
    fn parse_head(&self, head: &[u8], skipped: usize) -> Result<Option<ResponseHead>, ClientError> {
        let mut storage = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
        let storage = &mut storage[..self.limits.max_headers.min(MAX_HEADERS)];
        let mut parsed = httparse::Response::new(&mut []);
        let status = httparse::ParserConfig::default().parse_response_with_uninit_headers(
            &mut parsed,
            head,
            storage,
        );
        let len = match status {
            Ok(httparse::Status::Complete(n)) => skipped + n,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(httparse::Error::TooManyHeaders) => return Err(ClientError::TooManyHeaders),
            Err(httparse::Error::Version) => return Err(ClientError::BadVersion),
            Err(_) => return Err(ClientError::BadHead),
        };
        let status = parsed.code.ok_or(ClientError::BadHead)?;
        if !(100..=599).contains(&status) {
            return Err(ClientError::BadStatus);
        }
        let version = match parsed.version {
            Some(1) => Version::Http11,
            Some(0) => Version::Http10,
            _ => return Err(ClientError::BadVersion),
        };

        let mut length: Option<u64> = None;
        let mut codings = Codings::default();
        let mut close = false;
        let mut keep_alive = false;
        for h in parsed.headers.iter() {
            let name = h.name.as_bytes();
            if name.eq_ignore_ascii_case(b"content-length") {
                for item in h.value.split(|&b| b == b',') {
                    let n = parse_length(item)?;
                    if length.is_some_and(|m| m != n) {
                        return Err(ClientError::BadContentLength);
                    }
                    length = Some(n);
                }
            } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
                codings.add(h.value)?;
            } else if name.eq_ignore_ascii_case(b"connection") {
                for token in h.value.split(|&b| b == b',') {
                    let token = token.trim_ascii();
                    close |= token.eq_ignore_ascii_case(b"close");
                    keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
                }
            }
        }
        if codings.seen {
            if version == Version::Http10 {
                return Err(ClientError::BadTransferEncoding);
            }
            if length.is_some() {
                return Err(ClientError::LengthAndEncoding);
            }
        }
        let bodiless = status < 200 || status == 204 || status == 304 || self.head_request;
        let body = if bodiless {
            BodyKind::None
        } else if codings.seen {
            if codings.chunked {
                BodyKind::Chunked
            } else {
                BodyKind::UntilClose
            }
        } else {
            length.map_or(BodyKind::UntilClose, BodyKind::Length)
        };
        let keep_alive = match version {
            Version::Http11 => !close,
            Version::Http10 => keep_alive && !close,
        } && body != BodyKind::UntilClose
            && status != 101;
        Ok(Some(ResponseHead {
            status,
            version,
            body,
            keep_alive,
            len,
        }))
    }
}

/// Looks for the empty line that ends a head, from `from` on: the length of the head with its
/// final empty line, or where to resume the search once more bytes have arrived.
fn find_head_end(input: &[u8], from: usize) -> Result<usize, usize> {
    let mut i = from;
    while let Some(off) = input[i..].iter().position(|&b| b == b'\n') {
        let nl = i + off;
        match &input[nl + 1..] {
            [b'\n', ..] => return Ok(nl + 2),
            [b'\r', b'\n', ..] => return Ok(nl + 3),
            // The line after this LF may yet turn out empty.
            [] | [b'\r'] => return Err(nl),
            _ => i = nl + 1,
        }
    }
    Err(input.len())
}

/// The transfer codings named so far, as far as framing cares.
#[derive(Debug, Default)]
struct Codings {
    /// Any Transfer-Encoding field was present.
    seen: bool,
    /// The last coding named is chunked.
    chunked: bool,
}

impl Codings {
    fn add(&mut self, value: &[u8]) -> Result<(), ClientError> {
        let mut any = false;
        for coding in value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
            if coding.is_empty() {
                continue;
            }
            // Chunked must be the last coding, and applied once.
            if self.chunked || !coding.iter().all(|&b| is_tchar(b)) {
                return Err(ClientError::BadTransferEncoding);
            }
            self.chunked = coding.eq_ignore_ascii_case(b"chunked");
            any = true;
        }
        if !any {
            return Err(ClientError::BadTransferEncoding);
        }
        self.seen = true;
        Ok(())
    }
}

/// One Content-Length value: 1*DIGIT, surrounding whitespace allowed.
fn parse_length(value: &[u8]) -> Result<u64, ClientError> {
    let value = value.trim_ascii();
    if value.is_empty() || value.len() > 18 || !value.iter().all(u8::is_ascii_digit) {
        return Err(ClientError::BadContentLength);
    }
    // At most 18 digits: always fits a u64.
    Ok(value.iter().fold(0, |n, d| n * 10 + u64::from(d - b'0')))
}

/// The next CRLF-terminated line without its CRLF; `None` while incomplete. A line over `max`
/// bytes or a bare CR or LF is `err`.
fn take_line(input: &[u8], max: usize, err: ClientError) -> Result<Option<&[u8]>, ClientError> {
    syntax::take_line(input, max).map_err(|_| err)
}

/// `chunk-size [ chunk-ext ]`, extensions checked and ignored.
fn parse_chunk_size(line: &[u8]) -> Result<u64, ClientError> {
    syntax::parse_chunk_size(line).ok_or(ClientError::BadChunk)
}

/// `field-name ":" OWS field-value OWS`; obs-fold is refused.
fn parse_trailer(line: &[u8]) -> Result<(&[u8], &[u8]), ClientError> {
    syntax::split_field(line).map_err(|_| ClientError::BadTrailer)
}

#[cfg(test)]
mod tests;
