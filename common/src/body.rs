//! Request-body framing: a decoder fed from the connection's read buffer. It consumes only whole
//! framing units (a chunk-size line, a trailer line) and any amount of data, so the caller keeps
//! the unconsumed tail and feeds it again with more bytes. Partial input is never an error.

use crate::error::ProtoError;
use crate::head::{is_tchar, Framing};

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
    let window = &input[..input.len().min(MAX_LINE + 2)];
    match window.iter().position(|&b| b == b'\n') {
        Some(0) => Err(ProtoError::BareLineEnding),
        Some(i) if window[i - 1] == b'\r' => {
            let line = &window[..i - 1];
            if line.contains(&b'\r') {
                return Err(ProtoError::BareLineEnding);
            }
            Ok(Some(line))
        }
        Some(_) => Err(ProtoError::BareLineEnding),
        None if input.len() > MAX_LINE + 1 => Err(ProtoError::BadChunk),
        None => {
            // A CR anywhere but last can never become a CRLF.
            match window.iter().position(|&b| b == b'\r') {
                Some(i) if i + 1 < window.len() => Err(ProtoError::BareLineEnding),
                _ => Ok(None),
            }
        }
    }
}

/// `chunk-size [ chunk-ext ]`: 1*HEXDIG, then `*( BWS ";" BWS name [ BWS "=" BWS value ] )`.
/// A size beyond `u64` is malformed; one that fits is left to the body limit (413).
fn parse_chunk_line(line: &[u8]) -> Result<u64, ProtoError> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 {
        return Err(ProtoError::BadChunk);
    }
    let size = line[..digits].iter().try_fold(0u64, |n, &d| {
        // Every byte here is a hex digit, so `to_digit` cannot fail.
        let d = u64::from((d as char).to_digit(16).unwrap_or(0));
        n.checked_mul(16)
            .and_then(|n| n.checked_add(d))
            .ok_or(ProtoError::BadChunk)
    })?;
    check_extensions(&line[digits..])?;
    Ok(size)
}

/// Whitespace is only allowed where the grammar has BWS: before `;` and around `=`. Trailing
/// whitespace after the size or an extension is rejected, as llhttp does when strict: a parser
/// that trims it and one that does not would disagree on where the size ends.
fn check_extensions(mut ext: &[u8]) -> Result<(), ProtoError> {
    let skip_ws = |s: &[u8]| s.iter().take_while(|&&b| b == b' ' || b == b'\t').count();
    let token_len = |s: &[u8]| s.iter().take_while(|&&b| is_tchar(b)).count();
    loop {
        let ws = skip_ws(ext);
        ext = &ext[ws..];
        match ext.first() {
            None if ws == 0 => return Ok(()),
            Some(b';') => ext = &ext[1..],
            _ => return Err(ProtoError::BadChunk),
        }
        ext = &ext[skip_ws(ext)..];
        let name = token_len(ext);
        if name == 0 {
            return Err(ProtoError::BadChunk);
        }
        ext = &ext[name..];
        let ws = skip_ws(ext);
        if ext.get(ws) != Some(&b'=') {
            continue;
        }
        ext = &ext[ws + 1..];
        ext = &ext[skip_ws(ext)..];
        if ext.first() == Some(&b'"') {
            ext = &ext[quoted_len(ext)?..];
        } else {
            let value = token_len(ext);
            if value == 0 {
                return Err(ProtoError::BadChunk);
            }
            ext = &ext[value..];
        }
    }
}

/// Length of the quoted-string at the start of `s`, quotes included.
fn quoted_len(s: &[u8]) -> Result<usize, ProtoError> {
    // qdtext and quoted-pair both allow HTAB, SP, VCHAR and obs-text: no other control byte.
    let text = |b: u8| b == b'\t' || (b >= 0x20 && b != 0x7f);
    let mut i = 1;
    loop {
        match s.get(i) {
            Some(b'"') => return Ok(i + 1),
            Some(b'\\') => match s.get(i + 1) {
                Some(&b) if text(b) => i += 2,
                _ => return Err(ProtoError::BadChunk),
            },
            Some(&b) if text(b) => i += 1,
            _ => return Err(ProtoError::BadChunk),
        }
    }
}

fn parse_trailer(line: &[u8]) -> Result<(String, Vec<u8>), ProtoError> {
    if line[0] == b' ' || line[0] == b'\t' {
        return Err(ProtoError::ObsFold);
    }
    let colon = line
        .iter()
        .position(|&b| b == b':')
        .ok_or(ProtoError::BadHeaderName)?;
    let name = &line[..colon];
    if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
        return Err(ProtoError::BadHeaderName);
    }
    let value = line[colon + 1..].trim_ascii();
    if value.iter().any(|&b| b != b'\t' && (b < 0x20 || b == 0x7f)) {
        return Err(ProtoError::BadHeaderValue);
    }
    // Token bytes are ASCII.
    Ok((String::from_utf8_lossy(name).into_owned(), value.to_vec()))
}
