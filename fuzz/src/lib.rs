//! What zoo's fuzz targets share with each other and with the seed generator, kept in one place
//! so that the seeds are written in exactly the format the targets read.
//!
//! - [`script`]: the input format of the `connection` target (limits, a script of driver calls,
//!   the client's bytes), its decoder and the encoder the seed generator uses.
//! - [`client`]: a client that reads everything the server wrote and holds each response to
//!   HTTP/1.1 framing, order and the answer it was given.
//! - [`parser_limits`]: the small head limits of the `request_parser` target, picked by one byte.

pub mod client;
pub mod script;

use common::head::HeadLimits;

/// Head limits small enough that libFuzzer reaches every limit check within a few hundred bytes:
/// the request line 16, 32, 64 or 128 bytes, the head 64, 128, 256 or 512, and 0 to 15 fields.
/// `0xff` gives the largest of each, room for every request of the seed tables.
pub fn parser_limits(selector: u8) -> HeadLimits {
    HeadLimits {
        max_request_line: 16 << (selector & 3),
        max_head_bytes: 64 << ((selector >> 2) & 3),
        max_headers: usize::from(selector >> 4),
    }
}
