//! Drives one `Connection` through its state machine the way a model would, in an order the input
//! chooses (see `zoo_fuzz::script` for the format): feeds cut where the input says, requests
//! taken and answered at once or held, partial writes, time moving to and around deadlines,
//! shutdown, peer EOF, released buffers. After every call it checks what must always hold:
//!
//! - no panic, whatever the bytes and whatever the order of the calls;
//! - `want()` agrees with the state: `Write` exactly when output is queued (so `Close` only with
//!   nothing left to write), `Wait` exactly while the service holds a request, `Handle` only when a
//!   request is ready, `Close` for good once said, and `Read` always with a deadline running (a
//!   connection that waits for bytes without one can be held open forever);
//! - after a rejection no request is ever returned, and the rejection never changes;
//! - a request's body is as long as its Content-Length, and within the body limit;
//! - the output stream read by a client (`zoo_fuzz::client`) is well framed, begins each
//!   response with `HTTP/1.1 `, carries the service's answers in order, and ends with the
//!   rejection's answer when there is one.
//!
//! Once the script is spent it runs the ordinary driver (send the rest, answer, write, peer EOF,
//! deadlines) and the connection must reach `Close` with every answer written. When the script
//! changed nothing but the cutting of input and output (no shutdown, no early EOF, no deadline
//! that fired), the requests served and the rejection must be the same as when the same bytes
//! arrive in one read: partial input is never an error.

#![no_main]

use common::{Connection, Limits, ProtoError, Request, Version, Want};
use libfuzzer_sys::fuzz_target;
use std::time::{Duration, Instant, UNIX_EPOCH};
use zoo_fuzz::client::{Client, Expected};
use zoo_fuzz::script::{answer, Delay, Input, Op, ALL};

/// The answer kind of the ordinary driver: the body echoed with Content-Length.
const PLAIN_ANSWER: u8 = 0;

/// A request as the service saw it, for comparing two runs over the same bytes.
#[derive(Debug, PartialEq, Eq)]
struct Served {
    method: String,
    target: String,
    version: Version,
    body: Vec<u8>,
    trailers: Vec<(String, Vec<u8>)>,
}

impl Served {
    fn of(req: &Request) -> Served {
        Served {
            method: req.method().to_string(),
            target: req.target().to_string(),
            version: req.version(),
            body: req.body.clone(),
            trailers: req.trailers.clone(),
        }
    }
}

/// One connection under test, with the driver's and the client's view of it.
struct Run<'a> {
    conn: Connection,
    limits: Limits,
    now: Instant,
    /// Client bytes not sent yet.
    data: &'a [u8],
    eof: bool,
    /// The request the service holds, taken and not yet answered.
    held: Option<Request>,
    client: Client,
    served: Vec<Served>,
    /// The answer kind given to each request, in order, for the one-read replay.
    answers: Vec<u8>,
    draining: bool,
    rejection: Option<ProtoError>,
    closed: bool,
    /// Only the cutting of input and output was the script's: the replay must agree.
    plain: bool,
}

impl<'a> Run<'a> {
    fn new(limits: Limits, data: &'a [u8]) -> Run<'a> {
        let now = Instant::now();
        // A fixed wall clock: the Date header does not depend on when the fuzzer runs.
        let wall = UNIX_EPOCH + Duration::from_secs(784_111_777);
        Run {
            conn: Connection::new(limits, now, wall),
            limits,
            now,
            data,
            eof: false,
            held: None,
            client: Client::default(),
            served: Vec::new(),
            answers: Vec::new(),
            draining: false,
            rejection: None,
            closed: false,
            plain: true,
        }
    }

    fn step(&mut self, op: Op) {
        match op {
            Op::Feed(n) => self.feed(n),
            Op::Read(n) => self.read(n),
            Op::Serve { answer, hold } => {
                // `take` runs whether or not the answer is held: holding is taking without answering.
                if (self.held.is_some() || self.take()) && !hold {
                    self.respond(answer);
                }
            }
            Op::Write(n) => self.write(n),
            Op::Wait(delay) => self.wait(delay),
            Op::Eof => {
                self.plain &= self.data.is_empty();
                self.eof = true;
                self.conn.feed(&[], self.now);
            }
            Op::Shutdown => {
                self.plain = false;
                self.draining = true;
                self.conn.shutdown();
            }
            Op::Release => self.conn.release_buffers(),
        }
        self.check();
    }

    fn feed(&mut self, n: usize) {
        let n = n.min(self.data.len());
        // An empty feed means EOF, and nothing is read after the peer's EOF.
        if n == 0 || self.eof {
            return;
        }
        let (sent, rest) = self.data.split_at(n);
        self.conn.feed(sent, self.now);
        self.data = rest;
    }

    fn read(&mut self, n: usize) {
        if self.data.is_empty() || self.eof {
            return;
        }
        let space = self.conn.read_buf();
        assert!(!space.is_empty(), "read_buf offered no room");
        let n = n.min(self.data.len()).min(space.len());
        space[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        self.conn.received(n, self.now);
    }

    /// Takes the next request if there is one, checking `want()` promised it rightly.
    fn take(&mut self) -> bool {
        let want = self.conn.want();
        let Some(req) = self.conn.next_request() else {
            assert_ne!(
                want,
                Want::Handle,
                "want() said Handle, next_request gave nothing"
            );
            return false;
        };
        assert!(
            self.rejection.is_none(),
            "a request after the rejection {:?}",
            self.rejection
        );
        assert!(
            matches!(want, Want::Handle | Want::Write),
            "a request came while want() said {want:?}"
        );
        self.check_request(&req);
        self.served.push(Served::of(&req));
        self.held = Some(req);
        true
    }

    fn check_request(&self, req: &Request) {
        let body = req.body.len() as u64;
        assert!(body <= self.limits.max_body_bytes, "a body over the limit");
        if let Some(value) = req.header("content-length") {
            let declared = std::str::from_utf8(value)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .expect("an accepted Content-Length is a number");
            assert_eq!(body, declared, "body length differs from Content-Length");
            assert!(
                req.header("transfer-encoding").is_none(),
                "both framings accepted"
            );
        }
        if req.header("transfer-encoding").is_none() {
            assert!(req.trailers.is_empty(), "trailers without chunked coding");
        }
        let hosts = req
            .headers()
            .filter(|(n, _)| n.eq_ignore_ascii_case("host"));
        match req.version() {
            Version::Http11 => assert_eq!(hosts.count(), 1, "HTTP/1.1 needs one Host"),
            Version::Http10 => assert!(hosts.count() <= 1, "more than one Host"),
        }
        // The accessors the service uses must cope with whatever the parser let through.
        let _ = (
            req.path(),
            req.query(),
            req.query_param("a"),
            req.header_str("host"),
            req.authority(),
        );
    }

    fn respond(&mut self, kind: u8) {
        let Some(req) = self.held.take() else { return };
        let resp = answer(kind, &req);
        self.client.expect(Expected {
            status: resp.status,
            head_only: req.method() == "HEAD",
            body: Some(resp.body_bytes()),
            must_close: resp.close || !req.keep_alive() || self.draining,
        });
        self.answers.push(kind);
        self.conn.respond(&resp, self.now);
    }

    fn write(&mut self, n: usize) {
        let out = self.conn.output();
        if self.client.at_boundary() && !out.is_empty() {
            assert!(
                out.starts_with(b"HTTP/1.1 "),
                "output at a response boundary: {:?}",
                String::from_utf8_lossy(out)
            );
        }
        let n = n.min(out.len());
        self.client.receive(&out[..n], self.conn.rejection());
        self.conn.consume_output(n);
    }

    fn wait(&mut self, delay: Delay) {
        let deadline = self.conn.poll_timeout();
        match (delay, deadline) {
            (Delay::By(d), _) => self.now += d,
            (Delay::ToDeadline, Some(t)) => self.now = self.now.max(t),
            (Delay::JustBeforeDeadline, Some(t)) => {
                let before = t.checked_sub(Duration::from_nanos(1)).unwrap_or(t);
                self.now = self.now.max(before);
            }
            (_, None) => {}
        }
        if deadline.is_some_and(|t| self.now >= t) {
            self.plain = false;
        }
        self.conn.handle_timeout(self.now);
    }

    /// What must hold between any two calls.
    fn check(&mut self) {
        let want = self.conn.want();
        let queued = !self.conn.output().is_empty();
        assert_eq!(
            want == Want::Write,
            queued,
            "want() {want:?} with output queued: {queued}"
        );
        if self.closed {
            assert_eq!(want, Want::Close, "want() went back on Close");
        }
        self.closed = want == Want::Close;
        assert_eq!(
            want == Want::Wait,
            self.held.is_some() && !queued,
            "want() {want:?} while the service holds a request: {}",
            self.held.is_some()
        );
        if self.held.is_some() {
            assert_eq!(
                self.conn.poll_timeout(),
                None,
                "a deadline while the service works"
            );
        }
        if want == Want::Read {
            assert!(
                self.conn.poll_timeout().is_some(),
                "waiting for input with no deadline"
            );
        }
        match (self.rejection, self.conn.rejection()) {
            (Some(before), now) => assert_eq!(now, Some(before), "the rejection changed"),
            (None, Some(e)) => {
                assert!(
                    self.held.is_none(),
                    "{e:?} while the service held a request"
                );
                self.rejection = Some(e);
            }
            (None, None) => {}
        }
        if self.rejection.is_some() {
            assert!(
                matches!(want, Want::Write | Want::Close),
                "want() {want:?} after rejection"
            );
        }
    }

    /// The ordinary driver: answer everything ready with the plain answer, write it all.
    fn serve_all(&mut self) {
        while self.held.is_some() || self.take() {
            self.respond(PLAIN_ANSWER);
            self.check();
        }
        self.write(ALL);
        self.check();
    }

    /// After the script: send the rest, serve, the peer's EOF, serve, then let deadlines pass.
    /// The connection must close, with every answer written.
    fn finish(&mut self) {
        self.feed(ALL);
        self.check();
        self.serve_all();
        if !self.eof {
            self.eof = true;
            self.conn.feed(&[], self.now);
            self.check();
        }
        self.serve_all();
        // Each deadline either closes the connection or queues a 408 that the next round
        // writes; a third round is one to spare.
        for _ in 0..3 {
            if let Some(deadline) = self.conn.poll_timeout() {
                self.now = self.now.max(deadline);
                self.conn.handle_timeout(self.now);
                self.check();
            }
            self.serve_all();
        }
        assert_eq!(
            self.conn.want(),
            Want::Close,
            "no Close after the peer's EOF"
        );
        self.client.finish(self.rejection);
    }
}

/// The same bytes in one read, answered with the same kinds: what was served and how it ended.
fn replay(limits: Limits, data: &[u8], answers: &[u8]) -> (Vec<Served>, Option<u16>) {
    let mut run = Run::new(limits, data);
    run.feed(ALL);
    run.conn.feed(&[], run.now);
    while run.take() {
        let kind = answers
            .get(run.answers.len())
            .copied()
            .unwrap_or(PLAIN_ANSWER);
        run.respond(kind);
    }
    (run.served, run.conn.rejection().map(ProtoError::status))
}

fuzz_target!(|raw: &[u8]| {
    let input = Input::decode(raw);
    let mut run = Run::new(input.limits, input.data);
    run.check();
    for op in input.ops() {
        run.step(op);
    }
    run.finish();
    if run.plain {
        let (served, rejected) = replay(input.limits, input.data, &run.answers);
        assert_eq!(
            run.served, served,
            "served differently when the bytes come in one read"
        );
        assert_eq!(
            run.rejection.map(ProtoError::status),
            rejected,
            "rejected differently when the bytes come in one read"
        );
    }
});
