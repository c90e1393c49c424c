//! Helpers shared by the core's tests: a driver that plays a model without a socket ([`Server`]),
//! a response parser that plays the client ([`parse_responses`]), a client/server pair
//! ([`Pair`], after h11's `ConnectionPair`) and a deterministic generator ([`XorShift`]).
//! Each test file uses a different subset, hence the `dead_code` allowance.
#![allow(dead_code)]

use common::{Connection, Limits, ProtoError, Request, Response, Version, Want};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The wall-clock moment every test connection starts at (RFC 9110's example date).
pub fn wall() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(784_111_777)
}

/// The `Date` value expected at [`wall`].
pub const WALL_DATE: &str = "Sun, 06 Nov 1994 08:49:37 GMT";

/// A request as the service saw it, owned so it outlives the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub method: String,
    pub target: String,
    pub version: Version,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
    pub trailers: Vec<(String, Vec<u8>)>,
    pub keep_alive: bool,
}

impl Seen {
    pub fn from_request(req: &Request) -> Seen {
        Seen {
            method: req.method().to_string(),
            target: req.target().to_string(),
            version: req.version(),
            headers: req
                .headers()
                .map(|(n, v)| (n.to_string(), v.to_vec()))
                .collect(),
            body: req.body.clone(),
            trailers: req.trailers.clone(),
            keep_alive: req.keep_alive(),
        }
    }

    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }
}

/// The service's part in a test: `200 ok` for everything unless a test says otherwise.
pub fn answer_ok(_: &Seen) -> Response {
    Response::text(200, "ok")
}

/// One connection driven the way every model drives it: feed, take and answer each ready
/// request, write everything queued. Time only moves when a test moves it.
pub struct Server {
    pub conn: Connection,
    pub start: Instant,
    pub now: Instant,
    /// Every request handed to the service, in order.
    pub seen: Vec<Seen>,
    /// Every byte the connection asked to write, in order.
    pub written: Vec<u8>,
    answer: fn(&Seen) -> Response,
}

impl Server {
    pub fn new(limits: Limits) -> Server {
        Server::with_answer(limits, answer_ok)
    }

    pub fn with_answer(limits: Limits, answer: fn(&Seen) -> Response) -> Server {
        let now = Instant::now();
        Server {
            conn: Connection::new(limits, now, wall()),
            start: now,
            now,
            seen: Vec::new(),
            written: Vec::new(),
            answer,
        }
    }

    /// One read of `bytes`, then the driver's loop: answer what is ready, write it all.
    pub fn read(&mut self, bytes: &[u8]) {
        self.conn.feed(bytes, self.now);
        self.serve();
        self.flush();
    }

    /// `bytes` one read per byte.
    pub fn read_bytewise(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.read(std::slice::from_ref(b));
        }
    }

    /// `bytes` whole or one byte at a time.
    pub fn read_split(&mut self, bytes: &[u8], split: Split) {
        match split {
            Split::Whole => self.read(bytes),
            Split::Bytewise => self.read_bytewise(bytes),
        }
    }

    /// The peer closed its side.
    pub fn read_eof(&mut self) {
        self.conn.feed(&[], self.now);
        self.serve();
        self.flush();
    }

    /// Takes and answers every ready request; answers stay queued (batched) until [`flush`].
    ///
    /// [`flush`]: Server::flush
    pub fn serve(&mut self) {
        while let Some(req) = self.conn.next_request() {
            let seen = Seen::from_request(&req);
            let resp = (self.answer)(&seen);
            self.seen.push(seen);
            self.conn.respond(&resp, self.now);
        }
    }

    /// Writes everything queued, as one write.
    pub fn flush(&mut self) {
        let n = self.conn.output().len();
        self.written.extend_from_slice(self.conn.output());
        self.conn.consume_output(n);
    }

    /// Moves the clock to the connection's deadline, applies it and writes what it queued.
    /// Returns whether there was a deadline.
    pub fn expire(&mut self) -> bool {
        let Some(deadline) = self.conn.poll_timeout() else {
            return false;
        };
        self.now = self.now.max(deadline);
        self.conn.handle_timeout(self.now);
        self.flush();
        true
    }

    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    pub fn want(&self) -> Want {
        self.conn.want()
    }

    pub fn rejection(&self) -> Option<ProtoError> {
        self.conn.rejection()
    }

    /// The responses written so far, parsed with the methods of the requests they answer.
    pub fn responses(&self) -> Vec<Resp> {
        let methods: Vec<&str> = self.seen.iter().map(|s| s.method.as_str()).collect();
        match parse_responses(&self.written, &methods) {
            Ok(resps) => resps,
            Err(e) => panic!(
                "unparsable output ({e}): {:?}",
                String::from_utf8_lossy(&self.written)
            ),
        }
    }
}

/// How input is cut into reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    Whole,
    Bytewise,
}

/// A response as a client parses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The body came with chunked framing.
    pub chunked: bool,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn count(&self, name: &str) -> usize {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .count()
    }

    pub fn closes(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }
}

/// Parses a stream of responses. `methods` are those of the requests answered, in order (HEAD
/// answers have no body); answers beyond the list are taken as answers to a GET (a rejection).
/// Interim (1xx) responses are returned too and answer no request.
pub fn parse_responses(mut bytes: &[u8], methods: &[&str]) -> Result<Vec<Resp>, String> {
    let mut out = Vec::new();
    let mut answered = 0;
    while !bytes.is_empty() {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut parsed = httparse::Response::new(&mut headers);
        let head_len = match parsed.parse(bytes) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => return Err("truncated head".into()),
            Err(e) => return Err(format!("bad head: {e}")),
        };
        let status = parsed.code.ok_or("no status")?;
        let headers: Vec<(String, String)> = parsed
            .headers
            .iter()
            .map(|h| {
                let value = String::from_utf8_lossy(h.value).into_owned();
                (h.name.to_string(), value)
            })
            .collect();
        bytes = &bytes[head_len..];
        let mut resp = Resp {
            status,
            headers,
            body: Vec::new(),
            chunked: false,
        };
        let interim = (100..200).contains(&status);
        let head_only = !interim && methods.get(answered) == Some(&"HEAD");
        if !interim {
            answered += 1;
        }
        let bodiless = interim || status == 204 || status == 304 || head_only;
        if bodiless {
            // Nothing to read.
        } else if resp
            .header("transfer-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
        {
            resp.chunked = true;
            bytes = read_chunked(bytes, &mut resp.body)?;
        } else if let Some(len) = resp.header("content-length") {
            let len: usize = len.parse().map_err(|_| "bad content-length")?;
            if bytes.len() < len {
                return Err("truncated body".into());
            }
            resp.body = bytes[..len].to_vec();
            bytes = &bytes[len..];
        } else {
            // Delimited by close.
            resp.body = bytes.to_vec();
            bytes = &[];
        }
        out.push(resp);
    }
    Ok(out)
}

fn read_chunked<'a>(mut bytes: &'a [u8], body: &mut Vec<u8>) -> Result<&'a [u8], String> {
    loop {
        let eol = find(bytes, b"\r\n").ok_or("truncated chunk size")?;
        let size = std::str::from_utf8(&bytes[..eol]).map_err(|_| "bad chunk size")?;
        let size = usize::from_str_radix(size, 16).map_err(|_| "bad chunk size")?;
        bytes = &bytes[eol + 2..];
        if size == 0 {
            // No trailers from this server: the empty line follows at once.
            return bytes
                .strip_prefix(b"\r\n")
                .ok_or_else(|| "missing final CRLF".to_string());
        }
        if bytes.len() < size + 2 || &bytes[size..size + 2] != b"\r\n" {
            return Err("bad chunk data".into());
        }
        body.extend_from_slice(&bytes[..size]);
        bytes = &bytes[size + 2..];
    }
}

pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A client and a server without sockets: the client writes requests, the server answers, the
/// client parses what came back. Each call is one round trip.
pub struct Pair {
    pub server: Server,
    /// Methods of the requests sent, for the parser.
    methods: Vec<String>,
    /// Responses already handed to the test.
    answered: usize,
}

impl Pair {
    pub fn new(limits: Limits, answer: fn(&Seen) -> Response) -> Pair {
        Pair {
            server: Server::with_answer(limits, answer),
            methods: Vec::new(),
            answered: 0,
        }
    }

    /// Sends `request` (method taken from its first word) and returns the responses that
    /// arrived since the last call, interim ones included.
    pub fn send(&mut self, request: &[u8]) -> Vec<Resp> {
        let method = request.split(|&b| b == b' ').next().unwrap_or(b"");
        self.methods
            .push(String::from_utf8_lossy(method).into_owned());
        self.server.read(request);
        self.receive()
    }

    /// Sends more bytes of the request already begun (a body after `100 Continue`).
    pub fn send_more(&mut self, bytes: &[u8]) -> Vec<Resp> {
        self.server.read(bytes);
        self.receive()
    }

    /// Responses that arrived since the last call.
    pub fn receive(&mut self) -> Vec<Resp> {
        let methods: Vec<&str> = self.methods.iter().map(String::as_str).collect();
        let all = match parse_responses(&self.server.written, &methods) {
            Ok(all) => all,
            Err(e) => panic!("client cannot parse: {e}"),
        };
        let fresh = all[self.answered..].to_vec();
        self.answered = all.len();
        fresh
    }
}

/// xorshift64*: a deterministic source of test input, so a failure reproduces.
pub struct XorShift(u64);

impl XorShift {
    pub fn new(seed: u64) -> XorShift {
        XorShift(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}
