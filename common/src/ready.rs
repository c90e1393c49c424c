//! The ready line zoo prints once it listens, `zoo MODEL listening on http://ADDR (pid N)NOTE`,
//! and its parser: the server prints with [`ReadyLine`]'s `Display`, and tests, benches and
//! `loadtest` read it back with [`ReadyLine::parse`], so the two cannot drift apart.

use std::fmt;
use std::net::SocketAddr;

/// What a server announces when it is ready to serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadyLine {
    /// The model's name, as `--model` spells it.
    pub model: String,
    /// The bound address.
    pub addr: SocketAddr,
    /// The server's process id.
    pub pid: u32,
    /// Anything after the pid, e.g. `; state is per process`; empty for none.
    pub note: String,
}

impl fmt::Display for ReadyLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "zoo {} listening on http://{} (pid {}){}",
            self.model, self.addr, self.pid, self.note
        )
    }
}

impl ReadyLine {
    /// Reads a ready line (trailing whitespace ignored); `None` for any other line.
    pub fn parse(line: &str) -> Option<ReadyLine> {
        let rest = line.trim_end().strip_prefix("zoo ")?;
        let (model, rest) = rest.split_once(" listening on http://")?;
        let (addr, rest) = rest.split_once(" (pid ")?;
        let (pid, note) = rest.split_once(')')?;
        Some(ReadyLine {
            model: model.to_string(),
            addr: addr.parse().ok()?,
            pid: pid.parse().ok()?,
            note: note.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printed_lines_read_back() {
        for (model, addr, note) in [
            ("pool", "127.0.0.1:38413", ""),
            ("prefork", "[::1]:80", "; state is per process"),
            (
                "tokio:threads=1",
                "0.0.0.0:8080",
                " (note) with parentheses",
            ),
        ] {
            let line = ReadyLine {
                model: model.to_string(),
                addr: addr.parse().expect("address"),
                pid: 4758,
                note: note.to_string(),
            };
            let text = line.to_string();
            assert_eq!(ReadyLine::parse(&text), Some(line.clone()), "{text}");
            assert_eq!(ReadyLine::parse(&format!("{text}\n")), Some(line), "{text}");
        }
        assert_eq!(
            ReadyLine::parse("zoo pool listening on http://127.0.0.1:38413 (pid 4758)").map(|l| (
                l.model,
                l.addr.port(),
                l.pid
            )),
            Some(("pool".to_string(), 38413, 4758))
        );
    }

    #[test]
    fn other_lines_are_not_ready_lines() {
        for line in [
            "",
            "zoo: cannot listen on 127.0.0.1:80: permission denied",
            "zoo pool listening on http://127.0.0.1 (pid 1)",
            "zoo pool listening on http://127.0.0.1:80 (pid x)",
            "zoo pool listening on http://127.0.0.1:80 (pid 1",
            "nginx pool listening on http://127.0.0.1:80 (pid 1)",
            "zoo pool listening on https://127.0.0.1:80 (pid 1)",
        ] {
            assert_eq!(ReadyLine::parse(line), None, "{line:?}");
        }
    }
}
