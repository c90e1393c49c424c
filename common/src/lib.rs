//! The shared heart of zoo: a sans-IO HTTP/1.1 server core, the [`Handler`] contract and the demo
//! service. Nothing here touches a socket, a runtime or the clock: every model in `servers/` drives
//! the same code, so a difference in the numbers is a difference of the model.
//!
//! - [`error`]: protocol errors, each with the status it deserves.
//! - [`head`]: request-head parsing on `httparse`, plus the strict RFC 9112 checks.
//! - [`body`]: request-body framing (Content-Length and chunked, with extensions and trailers).
//! - [`client`]: the client side, sans-IO: request encoding and response decoding.
//! - [`encode`]: response encoding (Content-Length or chunked, HEAD, keep-alive headers).
//! - [`conn`]: the connection state machine that ties them together ("Theory of operation").
//! - [`ready`]: the line a server prints once it listens, and its parser.
//! - [`date`]: the `Date` header, formatted at most once a second.
//! - [`request`], [`response`]: the owned request and response types handed to the service.
//! - [`handler`]: the [`Handler`] trait and [`Reply`], the contract between models and service.
//! - [`syntax`]: the grammar both sides read alike: tokens, CRLF lines, chunk sizes, fields.
//! - [`stats`]: server-wide counters, laid out so they can live in shared memory.
//! - [`service`]: the demo service, the same routes under every model.

#![forbid(unsafe_code)]

pub mod body;
pub mod client;
pub mod conn;
pub mod date;
pub mod encode;
pub mod error;
pub mod handler;
pub mod head;
pub mod ready;
pub mod request;
pub mod response;
pub mod service;
pub mod stats;
pub mod syntax;

pub use conn::{Connection, Limits, Spare, Want};
pub use error::ProtoError;
pub use handler::{Handler, Reply};
pub use request::{Request, Version};
pub use response::{Body, Response};
