//! Request-body framing: a decoder fed from the connection's read buffer. It consumes only whole
//! framing units (a chunk-size line, a trailer line) and any amount of data, so the caller keeps
//! the unconsumed tail and feeds it again with more bytes. Partial input is never an error.

use crate::error::ProtoError;
use crate::head::Framing;
use crate::syntax::{self, FieldError, LineError};

/// Longest chunk-size line or trailer line accepted.
const MAX_LINE: usize = 4096;

/// Where a body decoder stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyDecoder {
    /// A Content-Length body with this many bytes still to come.
    Length(u64),
    /// Expecting a chunk-size line.
    ChunkSize,
    /// Inside chunk data, this many bytes still to come.
    ChunkData(u64),
    /// Expecting the CRLF that ends chunk data.
    ChunkEnd,
    /// Reading trailer fields, this many bytes of them so far.
    Trailers(usize),
    /// The body is complete.
    Done,
}

/// What one call to [`BodyDecoder::decode`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Bytes of input consumed.
    pub consumed: usize,
    /// The body is complete.
    pub done: bool,
}

impl BodyDecoder {
    /// A decoder for a body framed as `framing`.
    pub fn new(framing: Framing) -> BodyDecoder {
        match framing {
            Framing::Empty | Framing::Length(0) => BodyDecoder::Done,
            Framing::Length(n) => BodyDecoder::Length(n),
            Framing::Chunked => BodyDecoder::ChunkSize,
        }
    }

    /// Decodes as much of `input` as forms whole units, appending data to `body` and trailer
    /// fields to `trailers`. `max_body` bounds the decoded body; `max_trailers` the trailer bytes.
    pub fn decode(
        &mut self,
        input: &[u8],
        body: &mut Vec<u8>,
        trailers: &mut Vec<(String, Vec<u8>)>,
        max_body: u64,
        max_trailers: usize,
    ) -> Result<Progress, ProtoError> {
        let mut pos = 0;
        loop {
            let rest = &input[pos..];
            match *self {
                BodyDecoder::Done => {
                    return Ok(Progress {
                        consumed: pos,
                        done: true,
                    })
                }
                BodyDecoder::Length(n) | BodyDecoder::ChunkData(n) => {
                    let take = (rest.len() as u64).min(n) as usize;
                    if take == 0 {
                        break;
                    }
                    body.extend_from_slice(&rest[..take]);
                    pos += take;
                    let left = n - take as u64;
                    *self = match (&*self, left) {
                        (BodyDecoder::Length(_), 0) => BodyDecoder::Done,
                        (BodyDecoder::Length(_), _) => BodyDecoder::Length(left),
                        (_, 0) => BodyDecoder::ChunkEnd,
                        _ => BodyDecoder::ChunkData(left),
                    };
                }
                BodyDecoder::ChunkEnd => match rest {
                    [b'\r', b'\n', ..] => {
                        pos += 2;
                        *self = BodyDecoder::ChunkSize;
                    }
                    [] | [b'\r'] => break,
                    _ => return Err(ProtoError::BadChunk),
                },
                BodyDecoder::ChunkSize => {
                    let Some(line) = take_line(rest)? else { break };
                    pos += line.len() + 2;
                    let size = parse_chunk_line(line)?;
                    if (body.len() as u64).saturating_add(size) > max_body {
                        return Err(ProtoError::BodyTooLarge);
                    }
                    *self = match size {
                        0 => BodyDecoder::Trailers(0),
                        n => BodyDecoder::ChunkData(n),
                    };
                }
                BodyDecoder::Trailers(seen) => {
                    let Some(line) = take_line(rest)? else { break };
                    pos += line.len() + 2;
                    if line.is_empty() {
                        *self = BodyDecoder::Done;
                        continue;
                    }
                    let seen = seen + line.len() + 2;
                    if seen > max_trailers {
                        return Err(ProtoError::HeadTooLarge);
                    }
                    trailers.push(parse_trailer(line)?);
                    *self = BodyDecoder::Trailers(seen);
                }
            }
        }
        Ok(Progress {
            consumed: pos,
            done: *self == BodyDecoder::Done,
        })
    }
}

/// The next CRLF-terminated line of `input`, without its CRLF; `None` while incomplete.
fn take_line(input: &[u8]) -> Result<Option<&[u8]>, ProtoError> {
    syntax::take_line(input, MAX_LINE).map_err(|e| match e {
        LineError::Bare => ProtoError::BareLineEnding,
        LineError::TooLong => ProtoError::BadChunk,
    })
}

/// A chunk-size line; a size beyond `u64` is malformed, one that fits is left to the body
/// limit (413).
fn parse_chunk_line(line: &[u8]) -> Result<u64, ProtoError> {
    syntax::parse_chunk_size(line).ok_or(ProtoError::BadChunk)
}

fn parse_trailer(line: &[u8]) -> Result<(String, Vec<u8>), ProtoError> {
    let (name, value) = syntax::split_field(line).map_err(|e| match e {
        FieldError::Fold => ProtoError::ObsFold,
        FieldError::Name => ProtoError::BadHeaderName,
        FieldError::Value => ProtoError::BadHeaderValue,
    })?;
    // Token bytes are ASCII.
    Ok((String::from_utf8_lossy(name).into_owned(), value.to_vec()))
}
