//! `--behind nginx`: every target measured a second time through an nginx reverse proxy, as
//! services are deployed. The proxy is started by [`Server::start_nginx`] (the baseline's
//! launcher, with [`NginxSite::Proxy`]) on the server CPUs, one worker, in front of the target
//! compare started (or the running one it was given). Its site is the usual production one:
//! keep-alive to the upstream (`keepalive` connections cached per worker, HTTP/1.1, the
//! `Connection` header cleared), the client's `Host` passed on, proxy buffering on (nginx's
//! default), so nginx reads whole requests before it passes them on and whole responses before
//! it frees the upstream connection.
//!
//! A behind target is named `NAME+nginx` and measured in the same cells as `NAME`; its CPU and
//! memory are the target's tree plus nginx's ([`Samplers`](crate::compare::sampling::Samplers)),
//! and nginx's share is kept apart in the cell (`proxy`), so the report can say what the hop
//! costs per request.

use crate::compare::launch::{NginxSite, Server};
use crate::compare::results::{Cell, Status};
use std::net::SocketAddr;
use std::path::Path;

/// What `--behind` puts in front of each target.
pub const PROXY: &str = "nginx";

/// Upstream connections each nginx worker keeps open to the target.
pub const UPSTREAM_KEEPALIVE: usize = 64;

/// The name of `target` measured behind the proxy.
pub fn behind_name(target: &str) -> String {
    format!("{target}+{PROXY}")
}

/// The direct target's name of a name [`behind_name`] made, if it is one.
pub fn direct_name(name: &str) -> Option<&str> {
    name.strip_suffix(&format!("+{PROXY}"))
        .filter(|n| !n.is_empty())
}

/// One cell measured direct and behind the proxy.
#[derive(Debug, Clone, Copy)]
pub struct Hop<'a> {
    /// The target as it is.
    pub direct: &'a Cell,
    /// The same target, scenario and variant through the proxy.
    pub behind: &'a Cell,
}

impl Hop<'_> {
    /// The direct target's name.
    pub fn target(&self) -> &str {
        &self.direct.target
    }

    /// Whether both were measured.
    pub fn measured(&self) -> bool {
        [self.direct, self.behind]
            .iter()
            .all(|c| c.status == Status::Ok && c.headline.is_some())
    }

    /// CPU µs per request the hop adds: the target's and the proxy's together behind it, less
    /// the target's alone direct.
    pub fn cpu_us(&self) -> Option<f64> {
        let cpu = |c: &Cell| c.server.as_ref()?.cpu_us_per_request;
        Some(cpu(self.behind)? - cpu(self.direct)?)
    }

    /// The proxy's own CPU µs per request.
    pub fn proxy_cpu_us(&self) -> Option<f64> {
        self.behind.proxy.as_ref()?.cpu_us_per_request
    }

    /// Microseconds the hop adds to the median latency (negative if it took some away).
    pub fn p50_us(&self) -> Option<i64> {
        let p50 = |c: &Cell| c.headline.as_ref().map(|h| h.p50_us as i64);
        Some(p50(self.behind)? - p50(self.direct)?)
    }

    /// Successful answers over attempts, direct and behind.
    pub fn success(&self) -> Option<(f64, f64)> {
        let rate = |c: &Cell| c.headline.as_ref().map(|h| h.success_rate);
        Some((rate(self.direct)?, rate(self.behind)?))
    }
}

/// Every cell with its counterpart behind the proxy, in the order of `cells`.
pub fn hops(cells: &[Cell]) -> Vec<Hop<'_>> {
    cells
        .iter()
        .filter_map(|behind| {
            let name = direct_name(&behind.target)?;
            let direct = cells.iter().find(|c| {
                c.target == name && c.scenario == behind.scenario && c.variant == behind.variant
            })?;
            Some(Hop { direct, behind })
        })
        .collect()
}

/// Starts nginx as the proxy in front of `upstream`.
pub fn start_proxy(
    nginx: &Path,
    upstream: SocketAddr,
    cpus: Option<&[usize]>,
    log: &Path,
) -> Result<Server, String> {
    Server::start_nginx(nginx, &NginxSite::Proxy(upstream), cpus, log)
        .map_err(|e| format!("the proxy: {e}"))
}

/// The upstream and server blocks of the proxy listening on `addr` in front of `upstream`.
pub fn server_block(addr: SocketAddr, upstream: SocketAddr) -> String {
    format!(
        r#"    upstream target {{
        server {upstream};
        keepalive {UPSTREAM_KEEPALIVE};
        keepalive_requests 1000000000;
        keepalive_timeout 120s;
    }}
    server {{
        listen {addr};
        client_max_body_size 64m;
        location / {{
            proxy_pass http://target;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_read_timeout 60s;
        }}
    }}
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behind_names_go_both_ways() {
        assert_eq!(behind_name("tokio:threads=1"), "tokio:threads=1+nginx");
        assert_eq!(
            direct_name("tokio:threads=1+nginx"),
            Some("tokio:threads=1")
        );
        assert_eq!(direct_name("prefork"), None);
        assert_eq!(direct_name("+nginx"), None);
    }

    #[test]
    fn the_proxy_keeps_upstream_connections_alive() {
        let block = server_block(
            "127.0.0.1:8081".parse().expect("address"),
            "127.0.0.1:9000".parse().expect("address"),
        );
        for line in [
            "server 127.0.0.1:9000;",
            "keepalive 64;",
            "listen 127.0.0.1:8081;",
            "proxy_http_version 1.1;",
            "proxy_set_header Connection \"\";",
            "proxy_pass http://target;",
        ] {
            assert!(block.contains(line), "{line} missing from:\n{block}");
        }
        assert!(!block.contains("proxy_buffering off"), "buffering stays on");
    }
}
