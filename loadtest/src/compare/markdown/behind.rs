//! The "Behind nginx" section of `report.md` (`--behind nginx`): for each target, scenario and
//! variant, the direct figures beside the ones through the proxy, what the hop cost per request
//! (CPU and median latency) and, in the reading, what it fixed.

use super::table::{cpu_cell, source_mark, SERIES_NOTE};
use crate::compare::proxy::{hops, PROXY};
use crate::compare::results::{Cell, Results};
use crate::format::{format_us, percent, thousands};
use std::fmt::Write as _;

/// The section, or nothing when no target was measured behind a proxy.
pub fn section(r: &Results) -> String {
    let hops = hops(&r.cells);
    if hops.is_empty() {
        return String::new();
    }
    let mut out = format!("## Behind {PROXY}\n\n");
    let _ = writeln!(
        out,
        "Each target again through an {PROXY} reverse proxy in front of it (one worker on the \
         server CPUs, keep-alive to the upstream, proxy buffering on), as `NAME+{PROXY}`. \
         **CPU behind** is the target's and the proxy's together, with the proxy's share in \
         brackets; **hop CPU** is CPU behind less CPU direct, and **hop p50** the change of the \
         median latency: what the extra hop costs per request. **success** is the share of \
         requests answered 2xx, direct → behind.\n"
    );
    out += "| target | scenario | variant | req/s direct | req/s behind | p99 direct | p99 behind \
            | CPU µs/req direct | CPU µs/req behind (proxy) | hop CPU µs/req | hop p50 | success |\n\
            |---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
    let mut from_series = false;
    for hop in &hops {
        let rps = |c: &Cell| {
            c.headline
                .as_ref()
                .map_or("—".into(), |h| thousands(h.requests_per_s))
        };
        let p99 = |c: &Cell| {
            c.headline
                .as_ref()
                .filter(|h| h.requests > 0)
                .map_or("—".into(), |h| format_us(h.p99_us))
        };
        let cpu = |c: &Cell| {
            c.server.as_ref().map_or("—".into(), |s| {
                format!("{}{}", cpu_cell(s), source_mark(s.source))
            })
        };
        from_series |= [hop.direct, hop.behind].iter().any(|c| {
            c.server
                .as_ref()
                .is_some_and(|s| !source_mark(s.source).is_empty())
        });
        let behind_cpu = match hop.proxy_cpu_us() {
            Some(p) => format!("{} ({p:.1})", cpu(hop.behind)),
            None => cpu(hop.behind),
        };
        let (hop_cpu, hop_p50) = if hop.measured() {
            (
                hop.cpu_us().map_or("—".into(), |v| format!("{v:+.1}")),
                hop.p50_us().map_or("—".into(), signed_us),
            )
        } else {
            ("—".into(), "—".into())
        };
        let success = hop.success().map_or("—".into(), |(d, b)| {
            format!("{} → {}", percent(d), percent(b))
        });
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            hop.target(),
            hop.direct.scenario,
            hop.direct.variant,
            rps(hop.direct),
            rps(hop.behind),
            p99(hop.direct),
            p99(hop.behind),
            cpu(hop.direct),
            behind_cpu,
            hop_cpu,
            hop_p50,
            success
        );
    }
    out += "\n";
    if from_series {
        let _ = writeln!(out, "{SERIES_NOTE}\n");
    }
    let reading = crate::compare::reading::behind(&hops);
    if !reading.is_empty() {
        let _ = writeln!(out, "**Reading.** {}\n", reading.join(" "));
    }
    out
}

/// `+85us`, `-1.20ms`.
fn signed_us(us: i64) -> String {
    let sign = if us < 0 { "-" } else { "+" };
    format!("{sign}{}", format_us(us.unsigned_abs()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_are_shown() {
        assert_eq!(signed_us(85), "+85us");
        assert_eq!(signed_us(-1200), "-1.20ms");
        assert_eq!(signed_us(0), "+0us");
    }
}
