//! The plain-words reading under each table of `report.md`, computed from the cells: who led
//! and by how much, who lost ground as connections grew, how close each model came to the ideal,
//! what offloading did, what an idle connection cost, who the slow clients starved, who failed.
//! Nothing here is canned: a sentence appears only when the figures behind it exist.
//!
//! - [`anatomy`]: the reading of the anatomy table (trips into the kernel by family).
//! - [`behind`]: the reading of the "Behind nginx" section.

mod anatomy;
mod behind;

pub use anatomy::anatomy;
pub use behind::behind;

use crate::compare::markdown::{capitalise, BASELINE};
use crate::compare::results::{Cell, Status};
use crate::compare::scenario::Scenario;
use crate::format::{format_us, kib, percent, ratio, thousands, whole_percent, whole_ratio};

/// Whether a scenario's load stalls an event loop by design (a blocking call in the handler):
/// then the reading names the models that served one request at a time.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stalls {
    Unexpected,
    Expected,
}

/// Whether the reading names the cheapest model per request: churn's requests each pay for a
/// connection, so CPU per request is the scenario's point.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Cost {
    Unsaid,
    PerConnection,
}

/// A measured cell's figures for sorting and comparing.
struct Fig<'a> {
    name: &'a str,
    rps: f64,
    p99: u64,
    cell: &'a Cell,
}

/// The reading of one scenario's table, sentence by sentence.
pub fn reading(scenario: Scenario, cells: &[&Cell]) -> Vec<String> {
    let variants = variants_of(cells);
    let mut out = match scenario {
        Scenario::Plaintext | Scenario::Json | Scenario::Pipelined => sweep(cells, &variants),
        Scenario::IoWait => against_ideal(cells, &variants, Stalls::Unexpected),
        Scenario::BlockingCall => against_ideal(cells, &variants, Stalls::Expected),
        Scenario::CpuMix => cpu_mix(cells, &variants),
        Scenario::C10k => c10k(cells, &variants),
        Scenario::Slowloris => slowloris(cells),
        Scenario::Churn => throughput(cells, &variants, Cost::PerConnection),
        Scenario::Upload => throughput(cells, &variants, Cost::Unsaid),
    };
    let failed: Vec<String> = cells
        .iter()
        .filter(|c| c.status == Status::Failed)
        .map(|c| {
            if variants.len() > 1 {
                format!("{} ({})", c.target, c.variant)
            } else {
                c.target.clone()
            }
        })
        .collect();
    if !failed.is_empty() {
        out.push(format!(
            "Failed: {} (reasons under the table).",
            failed.join(", ")
        ));
    }
    out
}

/// The sweeps: the leader at each concurrency, who fell from its best, the tail at the top.
fn sweep(cells: &[&Cell], variants: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    let leaders: Vec<String> = variants
        .iter()
        .filter_map(|v| {
            let s = leader_sentence(&ranked(cells, v))?;
            Some(format!("at {}, {s}", connections(v)))
        })
        .collect();
    if !leaders.is_empty() {
        out.push(format!("{}.", capitalise(&leaders.join("; "))));
    }
    let Some(last) = variants.last() else {
        return out;
    };
    // Who lost ground as connections grew: the top of the sweep against each model's own best.
    let mut fell = Vec::new();
    for f in ranked(cells, last) {
        let best = cells
            .iter()
            .filter(|c| c.target == f.name && c.status == Status::Ok)
            .filter_map(|c| c.headline.as_ref().map(|h| (h.requests_per_s, &c.variant)))
            .max_by(|a, b| a.0.total_cmp(&b.0));
        if let Some((best, at)) = best {
            if best > 0.0 && f.rps < 0.8 * best {
                fell.push(format!(
                    "{} ({} below its best, at {})",
                    f.name,
                    whole_percent(1.0 - f.rps / best),
                    connections(at)
                ));
            }
        }
    }
    if !fell.is_empty() {
        out.push(format!(
            "At {} throughput fell for {}.",
            connections(last),
            fell.join(", ")
        ));
    }
    let figs = ranked(cells, last);
    let lowest = figs.iter().min_by_key(|f| f.p99);
    let highest = figs.iter().max_by_key(|f| f.p99);
    if let (Some(lo), Some(hi)) = (lowest, highest) {
        if lo.name != hi.name {
            out.push(format!(
                "Tail latency at {}: the lowest p99 was {}'s ({}), the highest {}'s ({}).",
                connections(last),
                lo.name,
                format_us(lo.p99),
                hi.name,
                format_us(hi.p99)
            ));
        }
    }
    out.extend(baseline_sentence(cells, variants));
    out
}

/// io-wait and blocking-call: each model's share of the throughput of perfect parallelism.
fn against_ideal(cells: &[&Cell], variants: &[&str], stalls: Stalls) -> Vec<String> {
    let mut out = Vec::new();
    for v in variants {
        let figs = ranked(cells, v);
        let Some(first) = figs.first() else {
            continue;
        };
        let Some(ideal) = first.cell.ideal_rps else {
            continue;
        };
        let mut sentence = format!(
            "The ideal is {} req/s; {} came closest with {} ({} of it)",
            thousands(ideal),
            first.name,
            thousands(first.rps),
            percent(first.rps / ideal)
        );
        if let Some(worst) = figs.last().filter(|_| figs.len() > 1) {
            sentence += &format!(
                ", {} lowest with {} ({} fewer)",
                worst.name,
                thousands(worst.rps),
                whole_ratio(first.rps / worst.rps.max(1e-9))
            );
        }
        out.push(sentence + ".");
        if figs.len() > 2 {
            let shares: Vec<String> = figs
                .iter()
                .map(|f| format!("{} {}", f.name, percent(f.rps / ideal)))
                .collect();
            out.push(format!("Share of the ideal: {}.", shares.join(", ")));
        }
        if stalls == Stalls::Expected {
            // One request at a time per loop is the ideal spread over all the connections.
            let serial = ideal / first.cell.connections.max(1) as f64;
            let stalled: Vec<&str> = figs
                .iter()
                .filter(|f| f.rps < 1.5 * serial)
                .map(|f| f.name)
                .collect();
            if !stalled.is_empty() {
                out.push(format!(
                    "{} served about one /block at a time ({} req/s): the blocking call stopped \
                     the whole loop.",
                    stalled.join(", "),
                    thousands(serial)
                ));
            }
        }
    }
    out
}

/// cpu-mix: the cheap requests' p99, inline against offloaded, per model.
fn cpu_mix(cells: &[&Cell], variants: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    let mut lines = Vec::new();
    for name in names_of(cells) {
        let p99 = |v: &str| figure(cells, name, v).map(|h| h.p99_us);
        if let (Some(inline), Some(offload)) = (p99("inline"), p99("offload")) {
            let verdict = if (offload as f64) < 0.67 * inline as f64 {
                "offloading helped"
            } else if (offload as f64) > 1.5 * inline as f64 {
                "offloading hurt"
            } else {
                "about the same"
            };
            lines.push(format!(
                "{name} {} inline, {} offloaded ({verdict})",
                format_us(inline),
                format_us(offload)
            ));
        }
    }
    if !lines.is_empty() {
        out.push(format!(
            "p99 of the cheap requests beside the CPU work: {}.",
            lines.join("; ")
        ));
    }
    for v in variants {
        if let Some(best) = ranked(cells, v).iter().min_by_key(|f| f.p99) {
            out.push(format!(
                "{}: the lowest cheap p99 was {}'s ({}).",
                capitalise(v),
                best.name,
                format_us(best.p99)
            ));
        }
    }
    out
}

/// c10k: memory per idle connection, survivors, and the active load beside them.
fn c10k(cells: &[&Cell], variants: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    let mut per_conn: Vec<(&str, f64)> = cells
        .iter()
        .filter(|c| c.status == Status::Ok)
        .filter_map(|c| Some((c.target.as_str(), c.idle.as_ref()?.per_connection()?.0)))
        .collect();
    per_conn.sort_by(|a, b| a.1.total_cmp(&b.1));
    if let (Some(lo), Some(hi)) = (per_conn.first(), per_conn.last()) {
        out.push(if lo.0 == hi.0 {
            format!("An idle connection cost {} {} of memory.", lo.0, kib(lo.1))
        } else {
            format!(
                "An idle connection cost from {} ({}) to {} ({}) of server memory.",
                kib(lo.1),
                lo.0,
                kib(hi.1),
                hi.0
            )
        });
    }
    let lost: Vec<String> = cells
        .iter()
        .filter_map(|c| {
            let i = c.idle.as_ref()?;
            (i.still_open_after < i.open.wanted).then(|| {
                format!(
                    "{} held {} of {}",
                    c.target, i.still_open_after, i.open.wanted
                )
            })
        })
        .collect();
    if !lost.is_empty() {
        out.push(format!(
            "Not every idle connection survived: {}.",
            lost.join(", ")
        ));
    }
    for v in variants {
        let figs = ranked(cells, v);
        if let Some(s) = leader_sentence(&figs) {
            out.push(format!("Beside the idle crowd, {s}."));
        }
        if let Some(best) = figs.iter().min_by_key(|f| f.p99) {
            out.push(format!(
                "The lowest active p99 was {}'s ({}).",
                best.name,
                format_us(best.p99)
            ));
        }
    }
    out
}

/// slowloris: whom the normal client got through to, and who cut the slow clients off.
fn slowloris(cells: &[&Cell]) -> Vec<String> {
    let mut out = Vec::new();
    let mut rates: Vec<(&str, f64, u64)> = cells
        .iter()
        .filter(|c| c.target != BASELINE)
        .filter_map(|c| {
            let h = c.headline.as_ref()?;
            Some((c.target.as_str(), h.success_rate, h.p99_us))
        })
        .collect();
    rates.sort_by(|a, b| b.1.total_cmp(&a.1));
    let held: Vec<String> = rates
        .iter()
        .filter(|r| r.1 >= 0.99)
        .map(|r| format!("{} (p99 {})", r.0, format_us(r.2)))
        .collect();
    let starved: Vec<String> = rates
        .iter()
        .filter(|r| r.1 < 0.99)
        .map(|r| format!("{} ({} got through)", r.0, percent(r.1)))
        .collect();
    if !held.is_empty() {
        out.push(format!(
            "The normal client was served throughout by {}.",
            held.join(", ")
        ));
    }
    if !starved.is_empty() {
        out.push(format!("The slow clients starved {}.", starved.join(", ")));
    }
    let cut: Vec<String> = cells
        .iter()
        .filter_map(|c| {
            let s = c.slow.as_ref()?;
            (s.server_closes > 0)
                .then(|| format!("{} ({})", c.target, thousands(s.server_closes as f64)))
        })
        .collect();
    if !cut.is_empty() {
        out.push(format!(
            "Servers that cut slow clients off (a head timeout, 408): {}.",
            cut.join(", ")
        ));
    }
    out
}

/// The rest (churn, upload): the leader per variant, and what the scenario adds.
fn throughput(cells: &[&Cell], variants: &[&str], cost: Cost) -> Vec<String> {
    let mut out = Vec::new();
    for v in variants {
        if let Some(s) = leader_sentence(&ranked(cells, v)) {
            out.push(if variants.len() > 1 {
                format!("{}: {s}.", capitalise(v))
            } else {
                format!("Throughput: {s}.")
            });
        }
    }
    if cost == Cost::PerConnection {
        let figs = ranked(cells, variants.first().copied().unwrap_or(""));
        let cheapest = figs
            .iter()
            .filter_map(|f| Some((f.name, f.cell.server.as_ref()?.cpu_us_per_request?)))
            .min_by(|a, b| a.1.total_cmp(&b.1));
        if let Some((name, cpu)) = cheapest {
            out.push(format!(
                "The cheapest connection setup in server CPU was {name}'s ({cpu:.1} µs a request)."
            ));
        }
    }
    if let [first, second] = variants {
        let ratios: Vec<String> = names_of(cells)
            .into_iter()
            .filter_map(|name| {
                let a = figure(cells, name, first)?.requests_per_s;
                let b = figure(cells, name, second)?.requests_per_s;
                (a > 0.0).then(|| format!("{name} {}", ratio(b / a)))
            })
            .collect();
        if !ratios.is_empty() {
            out.push(format!(
                "{} against {} throughput: {}.",
                capitalise(second),
                first,
                ratios.join(", ")
            ));
        }
    }
    out.extend(baseline_sentence(cells, variants));
    out
}

/// The figures of `name`'s measured cell of `variant`.
fn figure<'a>(
    cells: &[&'a Cell],
    name: &str,
    variant: &str,
) -> Option<&'a crate::compare::results::Headline> {
    cells
        .iter()
        .find(|c| c.target == name && c.variant == variant && c.status == Status::Ok)
        .and_then(|c| c.headline.as_ref())
}

/// The measured cells of `variant` (the baseline aside), best throughput first.
fn ranked<'a>(cells: &[&'a Cell], variant: &str) -> Vec<Fig<'a>> {
    let mut figs: Vec<Fig<'a>> = cells
        .iter()
        .filter(|c| c.variant == variant && c.target != BASELINE && c.status == Status::Ok)
        .filter_map(|c| {
            let h = c.headline.as_ref()?;
            Some(Fig {
                name: &c.target,
                rps: h.requests_per_s,
                p99: h.p99_us,
                cell: c,
            })
        })
        .collect();
    figs.sort_by(|a, b| b.rps.total_cmp(&a.rps));
    figs
}

/// The variants in the order the cells ran them.
fn variants_of<'a>(cells: &[&'a Cell]) -> Vec<&'a str> {
    let mut seen: Vec<&str> = Vec::new();
    for c in cells {
        if !seen.contains(&c.variant.as_str()) {
            seen.push(&c.variant);
        }
    }
    seen
}

/// The models, baseline aside, in the order they ran.
fn names_of<'a>(cells: &[&'a Cell]) -> Vec<&'a str> {
    let mut names: Vec<&str> = Vec::new();
    for c in cells {
        if c.target != BASELINE && !names.contains(&c.target.as_str()) {
            names.push(&c.target);
        }
    }
    names
}

/// "pool led with 45,000 req/s, 1.32× the next, thread (34,000)".
fn leader_sentence(figs: &[Fig<'_>]) -> Option<String> {
    let first = figs.first()?;
    Some(match figs.get(1) {
        Some(second) if second.rps > 0.0 => format!(
            "{} led with {} req/s, {} the next, {} ({})",
            first.name,
            thousands(first.rps),
            ratio(first.rps / second.rps),
            second.name,
            thousands(second.rps)
        ),
        _ => format!("{} measured {} req/s", first.name, thousands(first.rps)),
    })
}

/// How close the best model came to nginx, where nginx ran.
fn baseline_sentence(cells: &[&Cell], variants: &[&str]) -> Option<String> {
    let mut best: Option<(f64, &str, &str)> = None;
    for v in variants {
        let Some(base) = crate::compare::markdown::baseline_rps(cells, v) else {
            continue;
        };
        if let Some(f) = ranked(cells, v).first() {
            let times = f.rps / base;
            let better = match best {
                Some((b, _, _)) => times > b,
                None => true,
            };
            if better {
                best = Some((times, f.name, v));
            }
        }
    }
    let (times, name, v) = best?;
    let at = match v.strip_prefix("c=") {
        Some(_) if variants.len() > 1 => format!(" at {}", connections(v)),
        _ if variants.len() > 1 => format!(" ({v})"),
        _ => String::new(),
    };
    let verdict = if times >= 1.0 {
        "the best was"
    } else {
        "the closest was"
    };
    Some(format!(
        "Against nginx, {verdict} {name}, at {} its throughput{at}.",
        ratio(times)
    ))
}

/// `c=1` reads "1 connection", `c=64` "64 connections".
fn connections(variant: &str) -> String {
    match variant.trim_start_matches("c=") {
        "1" => "1 connection".to_string(),
        n => format!("{n} connections"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::results::Headline;

    fn cell(target: &str, variant: &str, rps: f64, p99_us: u64) -> Cell {
        Cell {
            target: target.to_string(),
            scenario: Scenario::Plaintext,
            variant: variant.to_string(),
            connections: variant.trim_start_matches("c=").parse().unwrap_or(1),
            status: Status::Ok,
            reason: None,
            server_command: None,
            server_exit: None,
            headline: Some(Headline {
                requests: rps as u64,
                requests_per_s: rps,
                p99_us,
                success_rate: 1.0,
                ..Headline::default()
            }),
            server: None,
            proxy: None,
            metrics: None,
            loads: Vec::new(),
            idle: None,
            slow: None,
            ideal_rps: None,
            rounds_rps: Vec::new(),
            anatomy: None,
        }
    }

    fn costed(mut c: Cell, scenario: Scenario, success: f64, cpu: f64, proxy: f64) -> Cell {
        use crate::compare::results::{FigureSource, ServerFigures};
        use crate::compare::sampling::Usage;
        c.scenario = scenario;
        if let Some(h) = c.headline.as_mut() {
            h.success_rate = success;
            h.p50_us = h.p99_us / 2;
        }
        let figures = |us: f64| ServerFigures {
            usage: Usage {
                cpu_s: 1.0,
                cpu_tick_s: 0.01,
                wall_s: 1.0,
                cpu_busy: 1.0,
                rss_start_kb: 0,
                rss_end_kb: 0,
                rss_peak_kb: 0,
                threads_peak: 0,
                processes_peak: 0,
                samples: 2,
            },
            cpu_us_per_request: Some(us),
            source: FigureSource::Proc,
        };
        c.server = Some(figures(cpu));
        c.proxy = (proxy > 0.0).then(|| figures(proxy));
        c
    }

    /// `target` with an anatomy of `syscalls` (half reads, half writes) and `switches` per
    /// request over 1000 requests and `cpu_us` of CPU per request.
    fn counted(target: &str, syscalls: u64, switches: u64, cpu_us: f64) -> Cell {
        use crate::compare::anatomy::Anatomy;
        use crate::compare::results::CellAnatomy;
        let mut c = cell(target, "c=64", 1000.0, 900);
        let counts = Anatomy {
            wall_s: 1.0,
            syscalls: Some(syscalls * 1000),
            by_kind: [("read", syscalls * 500), ("write", syscalls * 500)]
                .into_iter()
                .map(|(k, n)| (k.to_string(), n))
                .collect(),
            context_switches: Some(switches * 1000),
            system_s: cpu_us * 1e-3,
            ..Anatomy::default()
        };
        c.anatomy = Some(CellAnatomy::new(counts, 1000, "server"));
        c
    }

    #[test]
    fn the_anatomy_reading_prices_the_switches_and_the_entries() {
        use crate::compare::prices::Prices;
        let mut event_loop = counted("epoll", 4, 0, 10.0);
        // One switch in a hundred requests, so that thread has a loop to be compared with.
        if let Some(a) = event_loop.anatomy.as_mut() {
            a.counts.context_switches = Some(10);
            *a = crate::compare::results::CellAnatomy::new(a.counts.clone(), 1000, "server");
        }
        let cells = [counted("thread", 2, 1, 13.0), event_loop];
        let refs: Vec<&Cell> = cells.iter().collect();
        // Without prices no time is put on the counts.
        let plain = anatomy(&refs, None).join(" ");
        assert!(!plain.contains("µs"), "{plain}");
        let prices = Prices {
            cpu: Some(0),
            syscall_ns: 250.0,
            handoff_ns: 2500.0,
            ring: None,
        };
        let text = anatomy(&refs, Some(&prices)).join(" ");
        assert!(
            text.contains(
                "(2.50 µs, measured before the cells), those switches are 2.50 µs of the 13.0 µs"
            ),
            "{text}"
        );
        assert!(text.contains("against 10.0 µs in all for epoll"), "{text}");
        // epoll makes the most syscalls: 4 at 0.25 µs are 1 µs of its 10.
        assert!(
            text.contains(
                "epoll's 4.00 syscalls per request, the most, take 1.00 µs of its 10.0 µs"
            ),
            "{text}"
        );
        assert!(text.contains("(10%): a trip's price is mostly"), "{text}");
        // Measured among as many threads as thread has connections (64), the ring's price is the
        // one its switches are read at; measured among another count, the two threads' still is.
        use crate::compare::prices::Ring;
        let ring = |threads| Prices {
            ring: Some(Ring {
                threads,
                handoff_ns: 4000.0,
            }),
            ..prices
        };
        let text = anatomy(&refs, Some(&ring(64))).join(" ");
        assert!(
            text.contains(
                "a hand-off among 64 threads taking turns on one CPU (4.00 µs, against 2.50 µs \
                 between two; measured before the cells), those switches are 4.00 µs of the \
                 13.0 µs"
            ),
            "{text}"
        );
        let text = anatomy(&refs, Some(&ring(16))).join(" ");
        assert!(
            text.contains("(2.50 µs, measured before the cells), those switches are 2.50 µs"),
            "{text}"
        );
    }

    #[test]
    fn the_behind_reading_says_what_the_hop_cost_and_fixed() {
        let cells = vec![
            costed(
                cell("prefork", "c=1", 5_000.0, 400),
                Scenario::Plaintext,
                1.0,
                80.0,
                0.0,
            ),
            costed(
                cell("prefork+nginx", "c=1", 4_000.0, 600),
                Scenario::Plaintext,
                1.0,
                200.0,
                110.0,
            ),
            costed(
                cell("prefork", "slow=100", 0.0, 0),
                Scenario::Slowloris,
                0.0,
                0.0,
                0.0,
            ),
            costed(
                cell("prefork+nginx", "slow=100", 100.0, 6_000),
                Scenario::Slowloris,
                1.0,
                700.0,
                500.0,
            ),
            costed(
                cell("epoll", "slow=100", 100.0, 4_000),
                Scenario::Slowloris,
                1.0,
                400.0,
                0.0,
            ),
            costed(
                cell("epoll+nginx", "slow=100", 100.0, 5_000),
                Scenario::Slowloris,
                0.5,
                400.0,
                300.0,
            ),
        ];
        let hops = crate::compare::proxy::hops(&cells);
        assert_eq!(hops.len(), 3, "one hop per behind cell");
        let text = behind(&hops).join(" ");
        assert!(
            text.contains("prefork +120.0 µs of CPU (nginx's own 110.0) and +100us at the median"),
            "{text}"
        );
        assert!(
            text.contains(
                "Under slowloris prefork served 0% of the normal client's requests \
                 direct, 100% behind nginx"
            ),
            "{text}"
        );
        assert!(
            text.contains("epoll served the normal client direct (100%) but only 50.0% behind"),
            "{text}"
        );
        assert!(!text.contains("raised the throughput"), "{text}");
    }

    #[test]
    fn the_reading_follows_the_figures() {
        let cells = [
            cell("nginx", "c=1", 10_000.0, 100),
            cell("thread", "c=1", 8_000.0, 200),
            cell("pool", "c=1", 9_000.0, 150),
            cell("nginx", "c=64", 200_000.0, 1_000),
            cell("thread", "c=64", 100_000.0, 9_000),
            cell("pool", "c=64", 150_000.0, 2_000),
        ];
        let refs: Vec<&Cell> = cells.iter().collect();
        let text = reading(Scenario::Plaintext, &refs).join(" ");
        assert!(
            text.contains("At 1 connection, pool led with 9,000 req/s, 1.12× the next, thread"),
            "{text}"
        );
        assert!(
            text.contains("at 64 connections, pool led with 150,000 req/s, 1.50×"),
            "{text}"
        );
        assert!(
            text.contains("the lowest p99 was pool's (2.00ms), the highest thread's (9.00ms)"),
            "{text}"
        );
        assert!(
            text.contains(
                "Against nginx, the closest was pool, at 0.90× its throughput at 1 connection"
            ),
            "{text}"
        );
        assert!(!text.contains("nginx led"), "the baseline is no contestant");
    }

    #[test]
    fn a_fall_from_the_best_is_named() {
        let cells = [
            cell("thread", "c=64", 100_000.0, 1_000),
            cell("thread", "c=1024", 50_000.0, 9_000),
        ];
        let refs: Vec<&Cell> = cells.iter().collect();
        let text = reading(Scenario::Plaintext, &refs).join(" ");
        assert!(
            text.contains("At 1024 connections throughput fell for thread (50% below its best, at 64 connections)"),
            "{text}"
        );
    }
}
