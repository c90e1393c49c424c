//! The client side of HTTP/1.1, sans-IO, for load generators and tests: [`encode_request`]
//! writes a request into a buffer the caller owns, and a [`ResponseDecoder`] turns response
//! bytes into [`Event`]s.
//!
//! - [`encode`]: requests, with a Content-Length or a chunked body, and unfinished heads.
//! - [`decode`]: responses, one connection's stream of them ("Calling order").

pub mod decode;
pub mod encode;

pub use decode::{
    BodyKind, ClientError, ClientLimits, Event, ResponseDecoder, ResponseHead, MAX_HEADERS,
};
pub use encode::{
    check_header, encode_request, encode_unfinished_head, EncodeError, Framing, RequestSpec,
};
