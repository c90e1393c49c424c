//! The demo service: the same routes under every model, so that a difference in the numbers is a
//! difference of the model. [`Service`] routes a request by path, then by method (answering
//! `OPTIONS` itself from the route's `Allow`), and hands it to one small module:
//!
//! - `params`: query parameters, form fields and cookies; bad input becomes a 4xx.
//! - `work`: `/sleep`, `/block`, `/cpu` and `/stream`, the levers of the load tests.
//! - `reflect`: `/echo`, `/headers`, `/status/{code}` and `/redirect`.
//! - `kv`: `PUT`/`GET`/`DELETE /kv/{key}` on a bounded in-memory store.
//! - `counter`: `POST /counter`, made safe to retry by `Idempotency-Key`.
//! - `session`: `/login`, `/me` and `/logout` behind a server-side session.
//! - `bounded`: the capped map that keeps idempotency keys and sessions bounded.
//! - `metrics`: `/info` as JSON and `/metrics` in the Prometheus text format.
//!
//! The stores live in the process. Under `fork` and `prefork` each process has its own copy,
//! which `/info` reports as `per_process_state`; the request and connection [`Counters`] are the
//! server's own and may sit in shared memory.

mod bounded;
mod counter;
mod kv;
mod metrics;
mod params;
mod reflect;
mod session;
mod work;

#[cfg(test)]
mod tests;

pub use metrics::{ProcessProbe, ProcessSample};

use crate::stats::Counters;
use crate::{Handler, Reply, Request, Response};
use counter::Counter;
use kv::KvStore;
use params::Reject;
use session::Sessions;
use std::fmt;
use std::sync::atomic::Ordering::Relaxed;

/// How a server sets up its [`Service`].
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// The model's name (`pool`, `epoll`, ...), reported by `/info` and `/metrics`.
    pub model: String,
    /// The server's counters; the service counts requests into them and reports them.
    pub counters: &'static Counters,
    /// Whether the kv store, the counter and the sessions are per process (`fork`, `prefork`).
    pub per_process: bool,
    /// Whether the routes that exist only to test the servers answer (`GET /panic`); without it
    /// they are 404 like any unknown path, so a production server cannot be crashed on purpose.
    pub debug_routes: bool,
    /// Where `/metrics` gets the `process_*` series (CPU, memory, descriptors) from; `None`
    /// leaves them out.
    pub process: Option<ProcessProbe>,
}

/// The demo service. One value serves every connection and thread of a process.
pub struct Service {
    config: ServiceConfig,
    kv: KvStore,
    counter: Counter,
    sessions: Sessions,
}

impl Service {
    /// A service with empty stores.
    pub fn new(config: ServiceConfig) -> Service {
        Service {
            config,
            kv: KvStore::default(),
            counter: Counter::default(),
            sessions: Sessions::default(),
        }
    }

    fn dispatch(&self, route: Route<'_>, req: &Request) -> Result<Reply, Reject> {
        let response = match route {
            Route::Hello => Response::text(200, "Hello, World!"),
            Route::Json => Response::json(200, r#"{"message":"Hello, World!"}"#),
            Route::Sleep => return work::sleep(req),
            Route::Block => return work::block(req),
            Route::Cpu => return work::cpu(req),
            Route::Stream => work::stream(req)?,
            Route::Echo => reflect::echo(req),
            Route::Headers => reflect::headers(req),
            Route::Status(code) => reflect::status(code)?,
            Route::Redirect => reflect::redirect(req)?,
            Route::Kv(key) => {
                kv::check_key(key)?;
                match req.method() {
                    "PUT" => self.kv.put(key, &req.body)?,
                    "DELETE" => self.kv.delete(key),
                    // Only GET and HEAD are left once the method passed `Route::allow`.
                    _ => self.kv.get(key),
                }
            }
            Route::Counter => self.counter.post(req)?,
            Route::Login => self.sessions.login(req)?,
            Route::Me => self.sessions.me(req),
            Route::Logout => self.sessions.logout(req),
            Route::Info => metrics::info(&self.config),
            Route::Metrics => metrics::metrics(&self.config),
            Route::Healthz => Response::text(200, "ok"),
            Route::Panic => return Ok(work::panic(req)),
        };
        Ok(Reply::Ready(response))
    }
}

impl Handler for Service {
    fn handle(&self, req: &Request) -> Reply {
        self.config.counters.requests_total.fetch_add(1, Relaxed);
        let route =
            Route::parse(req.path()).filter(|r| *r != Route::Panic || self.config.debug_routes);
        let Some(route) = route else {
            return Reply::Ready(unrouted(req));
        };
        let allow = route.allow();
        let method = req.method();
        if !allow.split(',').any(|m| m.trim_start() == method) {
            let reason = format!("method not allowed: this path answers {allow}\n");
            return Reply::Ready(Response::text(405, reason).with_header("Allow", allow));
        }
        if method == "OPTIONS" {
            // Any body was read and dropped by the connection, per its framing.
            return Reply::Ready(Response::new(204, &b""[..]).with_header("Allow", allow));
        }
        self.dispatch(route, req)
            .unwrap_or_else(|reject| Reply::Ready(reject.into_response()))
    }
}

/// Every method some route answers, as `OPTIONS *` and a refused CONNECT list them: the union of
/// [`Route::allow`] over the routes (a test holds the two together).
const SERVER_ALLOW: &str = "GET, HEAD, POST, PUT, DELETE, OPTIONS";

/// The answer when the target names no resource of the service. `OPTIONS *` asks about the server
/// itself (RFC 9110 section 9.3.7). CONNECT asks for a tunnel, which an origin server that is no
/// proxy refuses, saying what it does answer; it then closes, since a client may send the
/// tunnel's bytes without waiting. Anything else is 404.
fn unrouted(req: &Request) -> Response {
    match (req.method(), req.target()) {
        ("OPTIONS", "*") => Response::new(204, &b""[..]).with_header("Allow", SERVER_ALLOW),
        ("CONNECT", _) => {
            let reason = "method not allowed: this server is no proxy and opens no tunnel\n";
            let mut resp = Response::text(405, reason).with_header("Allow", SERVER_ALLOW);
            resp.close = true;
            resp
        }
        _ => Response::text(404, "not found: no route for this path\n"),
    }
}

impl fmt::Debug for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Service")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The resource a path names, before the method is looked at. A status code or a kv key is the
/// rest of the path, checked by its route so that a bad one is a 400, not a 404.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route<'p> {
    Hello,
    Json,
    Sleep,
    Block,
    Cpu,
    Stream,
    Echo,
    Headers,
    Status(&'p str),
    Redirect,
    Kv(&'p str),
    Counter,
    Login,
    Me,
    Logout,
    Info,
    Metrics,
    Healthz,
    /// `GET /panic[?offload=1]`, only with `debug_routes`: a handler (or a compute job) that
    /// panics, so the tests can prove a panic costs one client a 500 and nothing more.
    Panic,
}

impl<'p> Route<'p> {
    fn parse(path: &'p str) -> Option<Route<'p>> {
        let route = match path {
            "/" | "/plaintext" => Route::Hello,
            "/json" => Route::Json,
            "/sleep" => Route::Sleep,
            "/block" => Route::Block,
            "/cpu" => Route::Cpu,
            "/stream" => Route::Stream,
            "/echo" => Route::Echo,
            "/headers" => Route::Headers,
            "/redirect" => Route::Redirect,
            "/counter" => Route::Counter,
            "/login" => Route::Login,
            "/me" => Route::Me,
            "/logout" => Route::Logout,
            "/info" => Route::Info,
            "/metrics" => Route::Metrics,
            "/healthz" => Route::Healthz,
            "/panic" => Route::Panic,
            _ => {
                if let Some(code) = path.strip_prefix("/status/") {
                    Route::Status(code)
                } else if let Some(key) = path.strip_prefix("/kv/") {
                    Route::Kv(key)
                } else {
                    return None;
                }
            }
        };
        Some(route)
    }

    /// The methods the route answers, spelled as the `Allow` header lists them: the one list
    /// behind a 405 and an `OPTIONS` answer. HEAD goes wherever GET does (the connection sends
    /// the same head and drops the body), OPTIONS everywhere.
    fn allow(self) -> &'static str {
        match self {
            Route::Echo | Route::Counter | Route::Login | Route::Logout => "POST, OPTIONS",
            Route::Kv(_) => "GET, HEAD, PUT, DELETE, OPTIONS",
            Route::Hello
            | Route::Json
            | Route::Sleep
            | Route::Block
            | Route::Cpu
            | Route::Stream
            | Route::Headers
            | Route::Status(_)
            | Route::Redirect
            | Route::Me
            | Route::Info
            | Route::Metrics
            | Route::Healthz
            | Route::Panic => "GET, HEAD, OPTIONS",
        }
    }
}
