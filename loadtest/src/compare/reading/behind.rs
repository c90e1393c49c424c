//! The reading of the "Behind nginx" section.

use crate::compare::markdown::capitalise;
use crate::compare::proxy::{Hop, PROXY};
use crate::compare::scenario::Scenario;
use crate::format::{format_us, percent, thousands};

/// The "Behind nginx" section: what the hop cost each target per request, where the proxy
/// changed its throughput, and whether it kept slowloris' normal client served.
pub fn behind(hops: &[Hop<'_>]) -> Vec<String> {
    let mut out = Vec::new();
    let mut targets: Vec<&str> = Vec::new();
    for hop in hops {
        if !targets.contains(&hop.target()) {
            targets.push(hop.target());
        }
    }
    // slowloris' normal client sends at a fixed rate and its latency is the crowd's doing:
    // the cost of the hop is read from the other cells.
    let costed = |t: &str| -> Vec<&Hop<'_>> {
        hops.iter()
            .filter(|h| h.target() == t && h.measured())
            .filter(|h| h.direct.scenario != Scenario::Slowloris)
            .collect()
    };
    let mut costs = Vec::new();
    for &t in &targets {
        let mine = costed(t);
        let cpu = median(mine.iter().filter_map(|h| h.cpu_us()).collect());
        let proxy = median(mine.iter().filter_map(|h| h.proxy_cpu_us()).collect());
        let p50 = median(
            mine.iter()
                .filter_map(|h| h.p50_us())
                .map(|v| v as f64)
                .collect(),
        );
        let mut parts = Vec::new();
        if let Some(cpu) = cpu {
            parts.push(match proxy {
                Some(p) => format!("{cpu:+.1} µs of CPU ({PROXY}'s own {p:.1})"),
                None => format!("{cpu:+.1} µs of CPU"),
            });
        }
        if let Some(p50) = p50 {
            let sign = if p50 < 0.0 { "-" } else { "+" };
            parts.push(format!(
                "{sign}{} at the median",
                format_us(p50.abs().round() as u64)
            ));
        }
        if !parts.is_empty() {
            costs.push(format!("{t} {}", parts.join(" and ")));
        }
    }
    if !costs.is_empty() {
        out.push(format!(
            "Per request, the hop through {PROXY} cost (median over the cells): {}.",
            costs.join("; ")
        ));
    }
    let faster: Vec<String> = hops
        .iter()
        .filter(|h| h.measured() && h.direct.scenario != Scenario::Slowloris)
        .filter_map(|h| {
            let d = h.direct.headline.as_ref()?.requests_per_s;
            let b = h.behind.headline.as_ref()?.requests_per_s;
            (d > 0.0 && b > 1.1 * d).then(|| {
                format!(
                    "{} in {} {} ({} → {} req/s)",
                    h.target(),
                    h.direct.scenario,
                    h.direct.variant,
                    thousands(d),
                    thousands(b)
                )
            })
        })
        .collect();
    if !faster.is_empty() {
        out.push(format!(
            "{} raised the throughput of {}.",
            capitalise(PROXY),
            faster.join(", ")
        ));
    }
    for h in hops
        .iter()
        .filter(|h| h.direct.scenario == Scenario::Slowloris)
    {
        let Some((direct, behind)) = h.success() else {
            continue;
        };
        let t = h.target();
        out.push(match (direct >= 0.99, behind >= 0.99) {
            (false, true) => format!(
                "Under slowloris {t} served {} of the normal client's requests direct, {} \
                 behind {PROXY}: {PROXY} held the slow clients' unfinished heads itself and \
                 passed on only whole requests.",
                percent(direct),
                percent(behind)
            ),
            (false, false) => format!(
                "Under slowloris {t} served {} of the normal client's requests direct and still \
                 only {} behind {PROXY}: the proxy did not shield it.",
                percent(direct),
                percent(behind)
            ),
            (true, false) => format!(
                "Under slowloris {t} served the normal client direct ({}) but only {} behind \
                 {PROXY}.",
                percent(direct),
                percent(behind)
            ),
            (true, true) => format!(
                "Under slowloris {t} served the normal client direct and behind {PROXY} ({} and \
                 {}).",
                percent(direct),
                percent(behind)
            ),
        });
    }
    out
}

/// The median of `values`; `None` for none.
fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    Some(if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    })
}
