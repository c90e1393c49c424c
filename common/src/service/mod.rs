//! Temporary stand-in for the demo service, replaced by the real router on merge.

use crate::stats::Counters;
use crate::{Handler, Reply, Request, Response};
use std::time::Duration;

/// How the service is set up.
pub struct ServiceConfig {
    /// The model's name, shown by /info.
    pub model: String,
    /// The server-wide counters.
    pub counters: &'static Counters,
    /// Whether each process has its own stores.
    pub per_process: bool,
}

/// The demo service.
pub struct Service {
    config: ServiceConfig,
}

impl Service {
    /// A new service.
    pub fn new(config: ServiceConfig) -> Service {
        Service { config }
    }
}

impl Handler for Service {
    fn handle(&self, req: &Request) -> Reply {
        self.config
            .counters
            .requests_total
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match req.path() {
            "/sleep" => Reply::Delayed(Duration::from_millis(50), Response::text(200, "slept\n")),
            "/echo" => Reply::Ready(Response::new(200, req.body.clone())),
            _ => Reply::Ready(Response::text(200, "Hello, World!")),
        }
    }
}
