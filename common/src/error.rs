//! Protocol errors. Each variant is one way a peer can get HTTP/1.1 wrong, and carries the status
//! the server should answer with before it closes the connection.

use std::fmt;

/// A request the server must reject; the connection is closed after the error response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtoError {
    /// The request line or a header line is malformed (bad token, stray whitespace).
    BadSyntax,
    /// A request-target in no form its method may use (RFC 9112 section 3.2), a bad authority in
    /// it, a fragment, or a byte outside ASCII.
    BadTarget,
    /// A method that runs past the request-line limit: longer than any this server implements.
    MethodTooLong,
    /// A bare CR or LF where CRLF is required.
    BareLineEnding,
    /// A header line continued onto the next line (obs-fold), forbidden in requests.
    ObsFold,
    /// A header name holds a byte that is not a token character.
    BadHeaderName,
    /// A header value holds NUL, CR, LF or another control byte.
    BadHeaderValue,
    /// An HTTP/1.1 request without a Host header, any request with more than one, or a Host that
    /// is not a valid authority (an empty one included).
    BadHost,
    /// A Content-Length that is not a plain decimal number, or several of them.
    BadContentLength,
    /// Both Content-Length and Transfer-Encoding: the framing would be ambiguous.
    LengthAndEncoding,
    /// A Transfer-Encoding whose final coding is not `chunked`, or that is malformed.
    BadTransferEncoding,
    /// A transfer coding this server does not implement.
    UnknownTransferEncoding,
    /// A malformed chunk size, chunk extension or chunk terminator.
    BadChunk,
    /// The request line is longer than the limit.
    RequestLineTooLong,
    /// The head is larger than the limit, or has too many header fields.
    HeadTooLarge,
    /// The body is larger than the limit.
    BodyTooLarge,
    /// A version this server does not speak (HTTP/2.0 as text, HTTP/1.2, ...).
    UnsupportedVersion,
    /// An `Expect` value other than `100-continue`.
    BadExpectation,
    /// The head did not arrive within the header timeout.
    HeadTimeout,
    /// The body stopped arriving for longer than the body timeout.
    BodyTimeout,
}

impl ProtoError {
    /// The status code to answer with.
    pub fn status(self) -> u16 {
        match self {
            ProtoError::RequestLineTooLong => 414,
            ProtoError::HeadTooLarge => 431,
            ProtoError::BodyTooLarge => 413,
            ProtoError::UnsupportedVersion => 505,
            ProtoError::UnknownTransferEncoding | ProtoError::MethodTooLong => 501,
            ProtoError::BadExpectation => 417,
            ProtoError::HeadTimeout | ProtoError::BodyTimeout => 408,
            _ => 400,
        }
    }

    /// A short reason, sent as the body of the error response.
    pub fn reason(self) -> &'static str {
        match self {
            ProtoError::BadSyntax => "malformed request line or header",
            ProtoError::BadTarget => "request-target not allowed for this method, or malformed",
            ProtoError::MethodTooLong => "method longer than any this server implements",
            ProtoError::BareLineEnding => "bare CR or LF where CRLF is required",
            ProtoError::ObsFold => "obsolete line folding is not allowed",
            ProtoError::BadHeaderName => "invalid character in header name",
            ProtoError::BadHeaderValue => "invalid character in header value",
            ProtoError::BadHost => "exactly one valid, non-empty Host header is required",
            ProtoError::BadContentLength => "invalid or repeated Content-Length",
            ProtoError::LengthAndEncoding => "both Content-Length and Transfer-Encoding",
            ProtoError::BadTransferEncoding => "final transfer coding must be chunked",
            ProtoError::UnknownTransferEncoding => "transfer coding not implemented",
            ProtoError::BadChunk => "invalid chunked framing",
            ProtoError::RequestLineTooLong => "request line too long",
            ProtoError::HeadTooLarge => "request header fields too large",
            ProtoError::BodyTooLarge => "request body too large",
            ProtoError::UnsupportedVersion => "HTTP version not supported",
            ProtoError::BadExpectation => "only 100-continue is supported",
            ProtoError::HeadTimeout => "request head not received in time",
            ProtoError::BodyTimeout => "request body not received in time",
        }
    }
}

impl fmt::Display for ProtoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status(), self.reason())
    }
}

impl std::error::Error for ProtoError {}
