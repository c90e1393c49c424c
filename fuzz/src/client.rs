//! A client that reads, as it is written, everything the server sends and panics (a finding, for
//! libFuzzer) on the first thing a real client could not live with: a response that does not
//! parse or does not begin with `HTTP/1.1 `, a body framed wrong, an answer out of order or
//! different from the one the service gave, a byte after `Connection: close`, a final response
//! nobody asked for.

use common::ProtoError;
use std::collections::VecDeque;

/// The interim response the server sends before reading a body the client held back.
const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// What the next final response must be: the answer the service handed to `respond`.
#[derive(Debug, Clone)]
pub struct Expected {
    /// Its status.
    pub status: u16,
    /// It answers a HEAD: headers only.
    pub head_only: bool,
    /// The body the service gave (joined, when chunked); `None` for a rejection, whose wording
    /// is the core's business.
    pub body: Option<Vec<u8>>,
    /// The connection must close after it (the service, the request or a shutdown said so).
    pub must_close: bool,
}

/// The client's side of one connection.
#[derive(Debug, Default)]
pub struct Client {
    /// Everything the server wrote so far.
    received: Vec<u8>,
    /// `received[..parsed]` is whole responses, all checked.
    parsed: usize,
    /// Answers handed to the server and not yet read back, oldest first.
    expected: VecDeque<Expected>,
    /// A response said `Connection: close`: nothing may follow it.
    closed: bool,
    /// The last final response read was the rejection of the request that followed.
    rejection_read: bool,
    /// Final responses read.
    pub finals: usize,
}

impl Client {
    /// Notes that the service answered the request it was given; answers come back in order.
    pub fn expect(&mut self, expected: Expected) {
        self.expected.push_back(expected);
    }

    /// Whether everything received so far is whole responses, so the next byte starts one.
    pub fn at_boundary(&self) -> bool {
        self.parsed == self.received.len()
    }

    /// Takes `bytes` the server wrote and checks each response they complete. `rejection` is the
    /// connection's at this moment: a final response beyond the answers the service gave must be
    /// the rejection's.
    pub fn receive(&mut self, bytes: &[u8], rejection: Option<ProtoError>) {
        self.received.extend_from_slice(bytes);
        while self.read_response(rejection) {}
    }

    /// Checks, once the server is done, that nothing was left half written, every answer went
    /// out, and a rejection was the last thing said.
    pub fn finish(&self, rejection: Option<ProtoError>) {
        let rest = &self.received[self.parsed..];
        assert!(
            rest.is_empty(),
            "the server left a response unfinished: {:?}",
            String::from_utf8_lossy(rest)
        );
        assert!(
            self.expected.is_empty(),
            "answers never written: {:?}",
            self.expected
        );
        if let Some(e) = rejection {
            assert!(
                self.rejection_read,
                "the {} answer to {e:?} was never written",
                e.status()
            );
        }
    }

    /// Reads one response from `received[parsed..]` if it is all there; false if not.
    fn read_response(&mut self, rejection: Option<ProtoError>) -> bool {
        let rest = &self.received[self.parsed..];
        if rest.is_empty() {
            return false;
        }
        assert!(
            !self.closed,
            "bytes after Connection: close: {:?}",
            String::from_utf8_lossy(rest)
        );
        let prefix = &b"HTTP/1.1 "[..rest.len().min(9)];
        assert!(
            rest.starts_with(prefix),
            "a response must begin with HTTP/1.1: {:?}",
            String::from_utf8_lossy(rest)
        );
        let mut storage = [httparse::EMPTY_HEADER; 16];
        let mut head = httparse::Response::new(&mut storage);
        let head_len = match head.parse(rest) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => return false,
            Err(e) => panic!(
                "unparsable response ({e}): {:?}",
                String::from_utf8_lossy(rest)
            ),
        };
        let status = head.code.unwrap_or(0);
        let header = |name: &str| {
            let mut values = head
                .headers
                .iter()
                .filter(|h| h.name.eq_ignore_ascii_case(name));
            let first = values.next().map(|h| h.value);
            assert!(values.next().is_none(), "{name} sent twice");
            first
        };
        if (100..200).contains(&status) {
            // The core's only interim response, always whole and bare.
            assert_eq!(
                &rest[..head_len],
                CONTINUE,
                "an interim response other than 100"
            );
            self.parsed += head_len;
            return true;
        }
        assert!(header("date").is_some(), "no Date");
        assert_eq!(header("server"), Some(&b"zoo"[..]), "no Server");
        let closes = header("connection").is_some_and(|v| v.eq_ignore_ascii_case(b"close"));
        let chunked = header("transfer-encoding").map(|v| {
            assert_eq!(v, b"chunked", "the only transfer coding sent is chunked");
        });
        let length = header("content-length").map(|v| {
            let digits = std::str::from_utf8(v).expect("Content-Length is ASCII");
            digits.parse::<usize>().expect("Content-Length is a number")
        });

        let expected = self.expected.front().cloned().unwrap_or_else(|| {
            let e = rejection.unwrap_or_else(|| panic!("a {status} response nobody asked for"));
            Expected {
                status: e.status(),
                head_only: false,
                body: None,
                must_close: true,
            }
        });
        assert_eq!(
            status, expected.status,
            "answers out of order, or a status changed"
        );
        let bodiless = status == 204 || status == 304;
        assert!(
            !(chunked.is_some() && length.is_some()),
            "both Content-Length and Transfer-Encoding"
        );
        if bodiless {
            assert!(
                chunked.is_none() && length.is_none(),
                "{status} with body framing"
            );
        } else if chunked.is_none() {
            let n = length.expect("neither Content-Length nor chunked");
            if let Some(body) = &expected.body {
                assert_eq!(n, body.len(), "Content-Length of the answer");
            }
        }
        let body_start = head_len;
        let (body, body_len) = if bodiless || expected.head_only {
            (Vec::new(), 0)
        } else if chunked.is_some() {
            match read_chunked(&rest[body_start..]) {
                Some(found) => found,
                None => return false,
            }
        } else {
            // Checked just above: a body that is neither bodiless nor chunked has a length.
            let n = length.unwrap_or(0);
            match rest.get(body_start..body_start + n) {
                Some(body) => (body.to_vec(), n),
                None => return false,
            }
        };
        match &expected.body {
            Some(given) if !bodiless && !expected.head_only => {
                assert_eq!(&body, given, "the body differs from the answer given")
            }
            _ => {}
        }
        if expected.must_close {
            assert!(closes, "the connection should close after this {status}");
        }
        self.closed = closes;
        self.rejection_read = self.expected.pop_front().is_none();
        self.parsed += body_start + body_len;
        self.finals += 1;
        true
    }
}

/// Decodes a chunked body as this server writes it (no extensions, no trailers): the body and
/// the bytes it took, or `None` if it is not all there yet.
fn read_chunked(mut bytes: &[u8]) -> Option<(Vec<u8>, usize)> {
    let total = bytes.len();
    let mut body = Vec::new();
    loop {
        let eol = bytes.windows(2).position(|w| w == b"\r\n")?;
        let digits = std::str::from_utf8(&bytes[..eol]).expect("chunk size is ASCII");
        let size = usize::from_str_radix(digits, 16).expect("chunk size is hex");
        bytes = &bytes[eol + 2..];
        if size == 0 {
            let rest = bytes.get(..2)?;
            assert_eq!(rest, b"\r\n", "trailers or junk after the last chunk");
            return Some((body, total - bytes.len() + 2));
        }
        let data = bytes.get(..size + 2)?;
        assert_eq!(&data[size..], b"\r\n", "chunk data not followed by CRLF");
        body.extend_from_slice(&data[..size]);
        bytes = &bytes[size + 2..];
    }
}
