//! The pieces of HTTP/1.1 grammar both sides of a connection read alike: tokens, CRLF lines,
//! chunk-size lines with their extensions, and field lines (trailers). The server's body decoder
//! and the client's response decoder map these small errors to their own.

/// RFC 9110 token characters.
pub fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_tchar)
}

/// One RFC 9110 tchar.
pub fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Why a line could not be taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineError {
    /// A CR or LF that is not part of a CRLF.
    Bare,
    /// No CRLF within the longest line allowed.
    TooLong,
}

/// The next CRLF-terminated line of `input` (at most `max` bytes), without its CRLF; `None`
/// while incomplete.
pub fn take_line(input: &[u8], max: usize) -> Result<Option<&[u8]>, LineError> {
    let window = &input[..input.len().min(max + 2)];
    match window.iter().position(|&b| b == b'\n') {
        Some(i) if i > 0 && window[i - 1] == b'\r' => {
            let line = &window[..i - 1];
            if line.contains(&b'\r') {
                return Err(LineError::Bare);
            }
            Ok(Some(line))
        }
        Some(_) => Err(LineError::Bare),
        None if input.len() > max + 1 => Err(LineError::TooLong),
        // A CR anywhere but last can never become a CRLF.
        None => match window.iter().position(|&b| b == b'\r') {
            Some(i) if i + 1 < window.len() => Err(LineError::Bare),
            _ => Ok(None),
        },
    }
}

/// `chunk-size [ chunk-ext ]`: 1*HEXDIG, then `*( BWS ";" BWS name [ BWS "=" BWS value ] )`.
/// `None` for a malformed line or a size beyond `u64`. Whitespace is only allowed where the
/// grammar has BWS: trailing whitespace after the size or an extension is refused, as llhttp
/// does when strict, since a parser that trims it and one that does not would disagree on where
/// the size ends.
pub fn parse_chunk_size(line: &[u8]) -> Option<u64> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 {
        return None;
    }
    let size = line[..digits].iter().try_fold(0u64, |n, &d| {
        // Every byte here is a hex digit.
        let d = u64::from((d as char).to_digit(16)?);
        n.checked_mul(16)?.checked_add(d)
    })?;
    extensions_valid(&line[digits..]).then_some(size)
}

fn extensions_valid(mut ext: &[u8]) -> bool {
    let skip_ws = |s: &[u8]| s.iter().take_while(|&&b| b == b' ' || b == b'\t').count();
    let token_len = |s: &[u8]| s.iter().take_while(|&&b| is_tchar(b)).count();
    loop {
        let ws = skip_ws(ext);
        ext = &ext[ws..];
        match ext.first() {
            None if ws == 0 => return true,
            Some(b';') => ext = &ext[1..],
            _ => return false,
        }
        ext = &ext[skip_ws(ext)..];
        let name = token_len(ext);
        if name == 0 {
            return false;
        }
        ext = &ext[name..];
        let ws = skip_ws(ext);
        if ext.get(ws) != Some(&b'=') {
            continue;
        }
        ext = &ext[ws + 1..];
        ext = &ext[skip_ws(ext)..];
        let value = if ext.first() == Some(&b'"') {
            quoted_len(ext)
        } else {
            Some(token_len(ext)).filter(|&n| n > 0)
        };
        match value {
            Some(n) => ext = &ext[n..],
            None => return false,
        }
    }
}

/// Length of the quoted-string at the start of `s`, quotes included.
fn quoted_len(s: &[u8]) -> Option<usize> {
    // qdtext and quoted-pair both allow HTAB, SP, VCHAR and obs-text: no other control byte.
    let text = |b: u8| b == b'\t' || (b >= 0x20 && b != 0x7f);
    let mut i = 1;
    loop {
        match *s.get(i)? {
            b'"' => return Some(i + 1),
            b'\\' if s.get(i + 1).is_some_and(|&b| text(b)) => i += 2,
            b if text(b) && b != b'\\' => i += 1,
            _ => return None,
        }
    }
}

/// What is wrong with a field line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldError {
    /// The line starts with whitespace: obs-fold, refused.
    Fold,
    /// No colon, or a name that is not a token.
    Name,
    /// NUL, CR, LF or another control byte in the value.
    Value,
}

/// `field-name ":" OWS field-value OWS`, as (name, trimmed value).
pub fn split_field(line: &[u8]) -> Result<(&[u8], &[u8]), FieldError> {
    if matches!(line.first(), Some(b' ' | b'\t')) {
        return Err(FieldError::Fold);
    }
    let colon = line
        .iter()
        .position(|&b| b == b':')
        .ok_or(FieldError::Name)?;
    let name = &line[..colon];
    if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
        return Err(FieldError::Name);
    }
    let value = line[colon + 1..].trim_ascii();
    if value.iter().any(|&b| b != b'\t' && (b < 0x20 || b == 0x7f)) {
        return Err(FieldError::Value);
    }
    Ok((name, value))
}
