//! The input of the `connection` target:
//!
//! ```text
//! byte 0         limits: even picks the server's defaults, odd the small ones of `small_limits`
//! byte 1         n, the length of the script
//! bytes 2..2+n   the script: one driver call a byte (see `Op::decode`)
//! the rest       the bytes the client sends, in order
//! ```
//!
//! Missing bytes read as zero, so every input is valid. The format is hand-made rather than
//! derived with `arbitrary` for two reasons: a seed is a plain request behind two zero bytes (an
//! empty script runs the ordinary driver: send it all, answer everything, write everything), so
//! the core's byte tables become seeds as they are; and the client's bytes sit at the end as one
//! run, where libFuzzer's mutations and dictionary keep them HTTP-shaped.

use common::head::HeadLimits;
use common::{Body, Limits, Request, Response};
use std::time::Duration;

/// `Feed` or `Read` sizes, and `Write` amounts: this many bytes, or all there are.
pub const ALL: usize = usize::MAX;

/// Sizes a `Feed` or `Read` op can send: every small size (bytewise and near-bytewise splits find
/// the resumption bugs) and the ones either side of the core's 8 KiB read chunk.
const FEED_SIZES: [usize; 32] = [
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 24, 31, 32, 63, 64, 100, 255, 256,
    1000, 1024, 4096, 8191, 8192, 8193, ALL,
];

/// Amounts a `Write` op reports written. 25 is the length of `100 Continue`, so partial writes
/// land just before, on and after the boundary between an interim and a final response.
const WRITE_SIZES: [usize; 32] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 16, 20, 24, 25, 26, 27, 28, 32, 40, 64, 100, 128, 200,
    256, 512, 1024, 4096, 8192, 16384, ALL,
];

/// Steps a `Wait` op moves the clock by: around the default timeouts (5 s header and keep-alive,
/// 10 s body) and the small ones (1, 2 and 3 s), and a nanosecond either side of them.
const DELAYS: [Duration; 16] = [
    Duration::ZERO,
    Duration::from_nanos(1),
    Duration::from_millis(10),
    Duration::from_millis(999),
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(3),
    Duration::from_secs(4),
    Duration::from_millis(4999),
    Duration::from_secs(5),
    Duration::from_millis(9999),
    Duration::from_secs(10),
    Duration::from_secs(30),
    Duration::from_secs(60),
    Duration::from_secs(3600),
    Duration::from_secs(86_400),
];

/// Where a `Wait` op moves the clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delay {
    /// Forward by this much.
    By(Duration),
    /// To the connection's deadline, if it has one and it lies ahead.
    ToDeadline,
    /// To a nanosecond before the deadline: the last instant it must not fire.
    JustBeforeDeadline,
}

/// One call the driver makes, as the script dictates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Send up to this many of the client's next bytes with `Connection::feed`.
    Feed(usize),
    /// The same through `read_buf` and `received`, the path of drivers that read in place.
    Read(usize),
    /// Take the next request unless one is held, then answer it with answer kind `answer`, or
    /// hold it (a service that takes its time) when `hold` is set.
    Serve {
        /// An answer kind, see [`answer`].
        answer: u8,
        /// Keep the request unanswered for now.
        hold: bool,
    },
    /// Report up to this many bytes of the output written.
    Write(usize),
    /// Move the clock, then call `handle_timeout`.
    Wait(Delay),
    /// The peer closes its side (`feed(&[])`); no client byte is sent after it.
    Eof,
    /// Graceful server stop: `shutdown`.
    Shutdown,
    /// `release_buffers`.
    Release,
}

impl Op {
    /// Decodes one script byte: the top three bits choose the call, the low five its argument.
    /// Feeding has two codes of eight because it is what most reaches new code; a stop or an EOF
    /// ends most of what can happen next, so they get a quarter of a code each.
    pub fn decode(byte: u8) -> Op {
        let arg = usize::from(byte & 31);
        match byte >> 5 {
            0 | 6 => Op::Feed(FEED_SIZES[arg]),
            1 => Op::Read(FEED_SIZES[arg]),
            2 | 3 => Op::Serve {
                answer: byte & 15,
                hold: byte & 16 != 0,
            },
            4 => Op::Write(WRITE_SIZES[arg]),
            5 => Op::Wait(match arg {
                0..=15 => Delay::By(DELAYS[arg]),
                16..=23 => Delay::ToDeadline,
                _ => Delay::JustBeforeDeadline,
            }),
            _ => match arg {
                0..=7 => Op::Eof,
                8..=15 => Op::Shutdown,
                _ => Op::Release,
            },
        }
    }

    /// The script byte for this op; its sizes and delays must be ones the tables hold.
    pub fn encode(self) -> u8 {
        let index = |table: &[usize], n: usize| {
            let i = table.iter().position(|&s| s == n);
            i.unwrap_or_else(|| panic!("{n} is not in the size table")) as u8
        };
        match self {
            Op::Feed(n) => index(&FEED_SIZES, n),
            Op::Read(n) => 1 << 5 | index(&FEED_SIZES, n),
            Op::Serve { answer, hold } => 2 << 5 | u8::from(hold) << 4 | (answer & 15),
            Op::Write(n) => 4 << 5 | index(&WRITE_SIZES, n),
            Op::Wait(Delay::By(d)) => {
                let i = DELAYS.iter().position(|&s| s == d);
                5 << 5 | i.unwrap_or_else(|| panic!("{d:?} is not in the delay table")) as u8
            }
            Op::Wait(Delay::ToDeadline) => 5 << 5 | 16,
            Op::Wait(Delay::JustBeforeDeadline) => 5 << 5 | 24,
            Op::Eof => 7 << 5,
            Op::Shutdown => 7 << 5 | 8,
            Op::Release => 7 << 5 | 16,
        }
    }
}

/// A decoded input of the `connection` target.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    /// The connection's limits.
    pub limits: Limits,
    /// The script, one op a byte.
    pub script: &'a [u8],
    /// The bytes the client sends.
    pub data: &'a [u8],
}

impl<'a> Input<'a> {
    /// Splits raw fuzz input into limits, script and client bytes; never fails.
    pub fn decode(raw: &'a [u8]) -> Input<'a> {
        let selector = raw.first().copied().unwrap_or(0);
        let rest = raw.get(1..).unwrap_or(&[]);
        let len = usize::from(rest.first().copied().unwrap_or(0));
        let rest = rest.get(1..).unwrap_or(&[]);
        let (script, data) = rest.split_at(len.min(rest.len()));
        let limits = if selector & 1 == 0 {
            Limits::default()
        } else {
            small_limits()
        };
        Input {
            limits,
            script,
            data,
        }
    }

    /// The script's ops, in order.
    pub fn ops(&self) -> impl Iterator<Item = Op> + 'a {
        self.script.iter().map(|&b| Op::decode(b))
    }
}

/// Writes an input: `small` picks the small limits; at most 255 ops fit a script.
pub fn encode_input(small: bool, ops: &[Op], data: &[u8]) -> Vec<u8> {
    assert!(ops.len() <= 255, "a script holds at most 255 ops");
    let mut out = vec![u8::from(small), ops.len() as u8];
    out.extend(ops.iter().map(|op| op.encode()));
    out.extend_from_slice(data);
    out
}

/// Limits that every limit check can reach in a short input, with timeouts that differ from one
/// another so a wrong one is told apart.
pub fn small_limits() -> Limits {
    Limits {
        head: HeadLimits {
            max_request_line: 64,
            max_head_bytes: 256,
            max_headers: 8,
        },
        max_body_bytes: 128,
        header_timeout: Duration::from_secs(1),
        keep_alive_timeout: Duration::from_secs(2),
        body_timeout: Duration::from_secs(3),
    }
}

/// The service's answer of kind `kind` (0-15) to `req`. The low two bits shape the body: the
/// request body echoed whole, the same echoed in chunks (an empty chunk among them, which the
/// encoder must skip), empty, or chunked with nothing in it. Bit 2 closes the connection; bit 3
/// swaps 200 for 204, 304, 404 or 503, so bodiless statuses meet every body shape.
pub fn answer(kind: u8, req: &Request) -> Response {
    let shape = kind & 3;
    let body = match shape {
        0 => Body::Full(req.body.clone().into()),
        1 => {
            let mut chunks = vec![Vec::new()];
            // Uneven chunk sizes, from the body itself, so no two echoes are framed alike.
            let size = 1 + req.body.len() % 7;
            chunks.extend(req.body.chunks(size).map(<[u8]>::to_vec));
            Body::Chunked(chunks)
        }
        2 => Body::Full(Vec::new().into()),
        _ => Body::Chunked(vec![Vec::new(), Vec::new()]),
    };
    let status = if kind & 8 == 0 {
        200
    } else {
        [204, 304, 404, 503][usize::from(shape)]
    };
    Response {
        status,
        headers: vec![("X-Kind", kind.to_string().into())],
        body,
        close: kind & 4 != 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_op_encodes_to_a_byte_that_decodes_to_it() {
        for byte in 0..=255u8 {
            let op = Op::decode(byte);
            assert_eq!(Op::decode(op.encode()), op, "byte {byte:#04x}");
        }
    }
}
