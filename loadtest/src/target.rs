//! The target: an `http://host[:port][/path][?query]` URL, taken apart and resolved once before
//! the run, so no lookup ever happens on the hot path.

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};

/// A parsed target URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The URL as given.
    pub url: String,
    /// Host name or address, IPv6 without brackets.
    pub host: String,
    /// TCP port (80 unless given).
    pub port: u16,
    /// The `Host` header value: host, bracketed if IPv6, with the port unless it is 80.
    pub authority: String,
    /// The request target in origin form (path and query).
    pub path: String,
}

/// Why a URL was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetError {
    /// `https://`: this generator speaks plain HTTP only.
    Https,
    /// Not `http://`.
    Scheme,
    /// No host, or a malformed one.
    Host,
    /// A port that is not a number in 1-65535.
    Port,
    /// A path or query with spaces or control bytes.
    Path,
    /// The name did not resolve.
    Resolve(String),
}

impl fmt::Display for TargetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetError::Https => f.write_str(
                "https is not supported: loadtest speaks plain HTTP/1.1; \
                 give an http:// URL (put a TLS terminator in front of the server if needed)",
            ),
            TargetError::Scheme => f.write_str("the URL must start with http://"),
            TargetError::Host => f.write_str("the URL has no valid host"),
            TargetError::Port => f.write_str("the port must be a number in 1-65535"),
            TargetError::Path => f.write_str("the path must not hold spaces or control bytes"),
            TargetError::Resolve(why) => write!(f, "cannot resolve the host: {why}"),
        }
    }
}

impl std::error::Error for TargetError {}

impl Target {
    /// Parses `url`; does not resolve it.
    pub fn parse(url: &str) -> Result<Target, TargetError> {
        let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
        if lower.starts_with("https://") {
            return Err(TargetError::Https);
        }
        if !lower.starts_with("http://") {
            return Err(TargetError::Scheme);
        }
        let rest = &url["http://".len()..];
        // A fragment never goes on the wire.
        let rest = rest.split('#').next().unwrap_or("");
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(split);
        let path = match path {
            "" => "/".to_string(),
            p if p.starts_with('?') => format!("/{p}"),
            p => p.to_string(),
        };
        if path.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(TargetError::Path);
        }
        if authority.contains('@') {
            return Err(TargetError::Host);
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or(TargetError::Host)?;
            match after {
                "" => (host, None),
                p => (host, Some(p.strip_prefix(':').ok_or(TargetError::Host)?)),
            }
        } else {
            match authority.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        let valid_host = |h: &str| {
            !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._:%".contains(&b))
        };
        if !valid_host(host) {
            return Err(TargetError::Host);
        }
        let port = match port {
            None => 80,
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                match p.parse::<u16>() {
                    Ok(p) if p > 0 => p,
                    _ => return Err(TargetError::Port),
                }
            }
            Some(_) => return Err(TargetError::Port),
        };
        let bracketed = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.to_string()
        };
        let authority = if port == 80 {
            bracketed
        } else {
            format!("{bracketed}:{port}")
        };
        Ok(Target {
            url: url.to_string(),
            host: host.to_string(),
            port,
            authority,
            path,
        })
    }

    /// Resolves the host; the first address is the one every connection uses.
    pub fn resolve(&self) -> Result<SocketAddr, TargetError> {
        let mut addrs = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|e| TargetError::Resolve(e.to_string()))?;
        addrs
            .next()
            .ok_or_else(|| TargetError::Resolve("no address".to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_taken_apart() {
        let table: &[(&str, &str, u16, &str, &str)] = &[
            (
                "http://127.0.0.1:8080/",
                "127.0.0.1",
                8080,
                "127.0.0.1:8080",
                "/",
            ),
            ("http://localhost", "localhost", 80, "localhost", "/"),
            (
                "HTTP://Example.test/a/b?c=d#frag",
                "Example.test",
                80,
                "Example.test",
                "/a/b?c=d",
            ),
            ("http://h:81?x=1", "h", 81, "h:81", "/?x=1"),
            ("http://[::1]:9000/p", "::1", 9000, "[::1]:9000", "/p"),
            ("http://[::1]/", "::1", 80, "[::1]", "/"),
        ];
        for &(url, host, port, authority, path) in table {
            let t = Target::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!(
                (
                    t.host.as_str(),
                    t.port,
                    t.authority.as_str(),
                    t.path.as_str()
                ),
                (host, port, authority, path),
                "{url}"
            );
        }
    }

    #[test]
    fn bad_urls_are_refused_with_the_reason() {
        let table: &[(&str, TargetError)] = &[
            ("https://example.test/", TargetError::Https),
            ("ftp://example.test/", TargetError::Scheme),
            ("example.test:80/", TargetError::Scheme),
            ("http:///path", TargetError::Host),
            ("http://user@host/", TargetError::Host),
            ("http://host:0/", TargetError::Port),
            ("http://host:99999/", TargetError::Port),
            ("http://host:+80/", TargetError::Port),
            ("http://host/a b", TargetError::Path),
            ("http://[::1/", TargetError::Host),
        ];
        for (url, err) in table {
            assert_eq!(Target::parse(url).as_ref(), Err(err), "{url}");
        }
        let https = TargetError::Https.to_string();
        assert!(
            https.contains("https") && https.contains("http://"),
            "{https}"
        );
    }
}
