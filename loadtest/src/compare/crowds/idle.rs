//! The idle crowd of the c10k scenario: thousands of keep-alive connections, each of which made
//! one request and then stays open, silent, while other clients load the server.
//!
//! Connections are opened a few hundred at a time (a burst of ten thousand SYNs would overflow
//! the listen backlog and turn into retransmissions a second later); each sends one GET, reads
//! its answer, and goes quiet. The sockets stay registered with an epoll instance, so that at
//! the end one look tells how many the server has closed meanwhile (its keep-alive timeout, or
//! a limit).

use crate::sys::{self, Poller};
use common::client::{encode_request, ClientLimits, Event, RequestSpec, ResponseDecoder};
use serde::{Deserialize, Serialize};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Connects in flight at once while opening.
const OPENING: usize = 256;

/// How the opening went.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct OpenStats {
    /// Connections asked for.
    pub wanted: u64,
    /// Connections that got their answer and went idle.
    pub idle: u64,
    /// Connections that failed: refused, reset, closed, timed out, or a non-2xx answer.
    pub failed: u64,
    /// Of the failures, answers with a status other than 2xx (e.g. 503 from load shedding).
    pub non_2xx: u64,
    /// Of the failures, answers that closed the connection (no keep-alive: prefork's way).
    #[serde(default)]
    pub not_kept_alive: u64,
    /// How long the opening took, in seconds.
    pub seconds: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Waiting,
    Connecting,
    Answering,
    Idle,
    Failed,
}

struct Slot {
    stream: Option<TcpStream>,
    state: State,
    since: Instant,
    decoder: ResponseDecoder,
    carry: Vec<u8>,
}

/// A set of idle keep-alive connections; dropping it closes them all.
pub struct IdleCrowd {
    addr: SocketAddr,
    request: Vec<u8>,
    poller: Poller,
    slots: Vec<Slot>,
    stats: OpenStats,
}

impl IdleCrowd {
    /// Opens `n` connections to `addr`, each answered once by `GET path`; gives up on a
    /// connection that takes longer than `timeout`, and on the rest after `deadline`.
    pub fn open(
        addr: SocketAddr,
        authority: &str,
        path: &str,
        n: usize,
        timeout: Duration,
        deadline: Duration,
        interrupted: &AtomicBool,
    ) -> io::Result<IdleCrowd> {
        let started = Instant::now();
        let mut request = Vec::new();
        encode_request(&RequestSpec::new("GET", path, authority), &mut request)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let mut crowd = IdleCrowd {
            addr,
            request,
            poller: Poller::new()?,
            slots: (0..n)
                .map(|_| Slot {
                    stream: None,
                    state: State::Waiting,
                    since: started,
                    decoder: ResponseDecoder::new(ClientLimits::default()),
                    carry: Vec::new(),
                })
                .collect(),
            stats: OpenStats {
                wanted: n as u64,
                ..OpenStats::default()
            },
        };
        let mut events = Vec::with_capacity(1024);
        let mut buf = vec![0u8; 16 * 1024];
        let mut next = 0;
        loop {
            let busy = crowd.count_busy();
            let until = n.min(next + OPENING.saturating_sub(busy));
            for i in next..until {
                crowd.connect(i);
            }
            next = until;
            if next >= n && crowd.count_busy() == 0 {
                break;
            }
            let now = Instant::now();
            let give_up =
                now.duration_since(started) > deadline || interrupted.load(Ordering::Relaxed);
            for i in 0..next {
                let slot = &crowd.slots[i];
                if matches!(slot.state, State::Connecting | State::Answering)
                    && (give_up || now.duration_since(slot.since) > timeout)
                {
                    crowd.fail(i);
                }
            }
            if give_up {
                crowd.stats.failed += (n - next) as u64;
                break;
            }
            crowd.poller.wait(&mut events, Duration::from_millis(10))?;
            for event in &events {
                let (token, flags) = (event.u64 as usize, event.events);
                crowd.on_event(token, flags, &mut buf);
            }
        }
        crowd.stats.idle = crowd.count(State::Idle);
        crowd.stats.seconds = started.elapsed().as_secs_f64();
        Ok(crowd)
    }

    /// How the opening went.
    pub fn stats(&self) -> &OpenStats {
        &self.stats
    }

    /// Connections still idle and open: takes in what happened since (a close by the server
    /// shows as readable) and counts the rest.
    pub fn still_open(&mut self) -> u64 {
        let mut events = Vec::with_capacity(1024);
        let mut buf = vec![0u8; 4096];
        // Edge-triggered: each close was reported once; take every report queued so far.
        while let Ok(n) = self.poller.wait(&mut events, Duration::ZERO) {
            if n == 0 {
                break;
            }
            for event in &events {
                let (i, flags) = (event.u64 as usize, event.events);
                if flags & sys::READABLE == 0 {
                    continue;
                }
                let Some(slot) = self.slots.get_mut(i) else {
                    continue;
                };
                if slot.state != State::Idle {
                    continue;
                }
                // Nothing was asked on an idle connection: whatever comes (an EOF, a 408, a
                // reset) means the server is finished with it. Nothing to read is a stale
                // edge from the answer's own arrival.
                let idle = match slot.stream.as_ref().map(|s| (&*s).read(&mut buf)) {
                    Some(Err(e)) => e.kind() == io::ErrorKind::WouldBlock,
                    _ => false,
                };
                if !idle {
                    slot.stream = None;
                    slot.state = State::Failed;
                }
            }
        }
        self.count(State::Idle)
    }

    /// Connections still opening or waiting for their answer.
    fn count_busy(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| matches!(s.state, State::Connecting | State::Answering))
            .count()
    }

    fn count(&self, state: State) -> u64 {
        self.slots.iter().filter(|s| s.state == state).count() as u64
    }

    fn connect(&mut self, i: usize) {
        let outcome = sys::connect(&self.addr).and_then(|stream| {
            self.poller
                .add(stream.as_raw_fd(), i as u64)
                .map(|_| stream)
        });
        match outcome {
            Ok(stream) => {
                let slot = &mut self.slots[i];
                slot.stream = Some(stream);
                slot.state = State::Connecting;
                slot.since = Instant::now();
            }
            Err(_) => self.fail(i),
        }
    }

    fn fail(&mut self, i: usize) {
        let slot = &mut self.slots[i];
        slot.stream = None;
        slot.state = State::Failed;
        self.stats.failed += 1;
    }

    fn on_event(&mut self, i: usize, flags: u32, buf: &mut [u8]) {
        let Some(slot) = self.slots.get(i) else {
            return;
        };
        match slot.state {
            State::Connecting if flags & sys::FAILED != 0 => self.fail(i),
            State::Connecting if flags & sys::WRITABLE != 0 => {
                // The request is a few dozen bytes: an empty socket buffer takes it whole.
                let written = slot.stream.as_ref().map(|s| (&*s).write(&self.request));
                match written {
                    Some(Ok(n)) if n == self.request.len() => {
                        self.slots[i].state = State::Answering;
                        // The answer may have raced the writable event into this one.
                        if flags & sys::READABLE != 0 {
                            self.read_answer(i, buf);
                        }
                    }
                    _ => self.fail(i),
                }
            }
            State::Answering if flags & sys::READABLE != 0 => self.read_answer(i, buf),
            _ => {}
        }
    }

    fn read_answer(&mut self, i: usize, buf: &mut [u8]) {
        loop {
            let slot = &mut self.slots[i];
            let Some(stream) = slot.stream.as_ref() else {
                return;
            };
            let n = match (&*stream).read(buf) {
                Ok(0) => return self.fail(i),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return self.fail(i),
            };
            slot.carry.extend_from_slice(&buf[..n]);
            let mut pos = 0;
            let mut end = None;
            loop {
                match slot.decoder.decode(&slot.carry[pos..]) {
                    Ok((used, event)) => {
                        pos += used;
                        match event {
                            None => break,
                            Some(Event::End { status, keep_alive }) => {
                                end = Some((status, keep_alive));
                                break;
                            }
                            Some(_) => {}
                        }
                    }
                    Err(_) => return self.fail(i),
                }
            }
            slot.carry.drain(..pos);
            match end {
                Some((status, true)) if (200..300).contains(&status) => {
                    slot.state = State::Idle;
                    slot.carry = Vec::new();
                    return;
                }
                Some((status, _)) => {
                    if !(200..300).contains(&status) {
                        self.stats.non_2xx += 1;
                    } else {
                        self.stats.not_kept_alive += 1;
                    }
                    return self.fail(i);
                }
                None => {}
            }
        }
    }
}
