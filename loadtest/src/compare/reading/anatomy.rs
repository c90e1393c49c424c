//! The reading of the anatomy table.

use crate::compare::markdown::capitalise;
use crate::compare::prices::Prices;
use crate::compare::results::{Cell, PerRequest};
use crate::format::{per_request, ratio, whole_percent, whole_ratio};

/// A family's name, its models, their syscalls and their context switches per request.
type Family<'a> = (&'static str, Vec<&'a str>, Vec<f64>, Vec<f64>);

/// How a model serves its connections, for the anatomy's comparison of families.
fn family(target: &str) -> Option<&'static str> {
    let model = target.split(':').next().unwrap_or(target);
    Some(match model {
        "thread" | "pool" => "threads",
        "fork" | "prefork" => "processes",
        "coroutine" => "green threads",
        "select" | "poll" | "epoll" | "tokio" | "async-std" | "smol" | "sigio" | "nonblocking"
        | "busy" => "event loops",
        "uring" => "completions",
        _ => return None,
    })
}

/// `1.45×` or `54×`: one figure over another, with decimals only where they are small.
fn times(v: f64) -> String {
    if v >= 10.0 {
        whole_ratio(v)
    } else {
        ratio(v)
    }
}

/// `2.1` or `1.9–4.0`: the range of some figures.
fn range(values: &[f64]) -> String {
    let lo = values.iter().copied().fold(f64::MAX, f64::min);
    let hi = values.iter().copied().fold(0.0, f64::max);
    if (hi - lo).abs() < 0.005 {
        per_request(lo)
    } else {
        format!("{}–{}", per_request(lo), per_request(hi))
    }
}

/// The reading of the anatomy table: who makes the fewest trips into the kernel and what
/// they are, threads against processes against multiplexing in syscalls and context switches,
/// what io_uring's batching saves, where the CPU goes. Only what the cells' figures hold, and,
/// where the machine's `prices` were measured, what the counts cost at those prices.
pub fn anatomy(cells: &[&Cell], prices: Option<&Prices>) -> Vec<String> {
    let per: Vec<(&str, &PerRequest)> = cells
        .iter()
        .filter_map(|c| Some((c.target.as_str(), c.anatomy.as_ref()?.per_request.as_ref()?)))
        .collect();
    let mut out = Vec::new();
    let mut counted: Vec<(&str, &PerRequest, f64)> = per
        .iter()
        .filter_map(|&(n, p)| Some((n, p, p.syscalls?)))
        .collect();
    counted.sort_by(|a, b| a.2.total_cmp(&b.2));
    if let (Some(low), Some(high)) = (counted.first(), counted.last()) {
        let (name, p, total) = low;
        let mut s = format!(
            "{} makes the fewest trips into the kernel: {} syscalls per request ({} read, {} \
             write, {} wait)",
            capitalise(name),
            per_request(*total),
            per_request(p.kind("read").unwrap_or(0.0)),
            per_request(p.kind("write").unwrap_or(0.0)),
            per_request(p.kind("wait").unwrap_or(0.0)),
        );
        if counted.len() > 1 && high.2 > 0.0 {
            s += &format!(
                "; {} makes the most, {} ({} as many)",
                high.0,
                per_request(high.2),
                times(high.2 / total.max(1e-9))
            );
        }
        out.push(s + ".");
    }
    // Families: the same request served by threads, processes, green threads, a loop, a ring.
    let mut families: Vec<Family<'_>> = Vec::new();
    for &(name, p) in &per {
        let Some(f) = family(name) else { continue };
        let cs = p.context_switches.unwrap_or(p.voluntary + p.involuntary);
        let i = match families.iter().position(|e| e.0 == f) {
            Some(i) => i,
            None => {
                families.push((f, Vec::new(), Vec::new(), Vec::new()));
                families.len() - 1
            }
        };
        families[i].1.push(name);
        families[i].2.extend(p.syscalls);
        families[i].3.push(cs);
    }
    if families.len() > 1 {
        let parts: Vec<String> = families
            .iter()
            .map(|(f, names, sys, cs)| {
                let sys = if sys.is_empty() {
                    String::new()
                } else {
                    format!("{} syscalls and ", range(sys))
                };
                format!(
                    "{f} ({}) {sys}{} context switches",
                    names.join(", "),
                    range(cs)
                )
            })
            .collect();
        out.push(format!("Per request, {}.", parts.join("; ")));
    }
    let cs_of = |name: &str| {
        per.iter()
            .find(|(n, _)| *n == name)
            .map(|(_, p)| p.context_switches.unwrap_or(p.voluntary + p.involuntary))
    };
    let loops: Vec<(&str, f64)> = per
        .iter()
        .filter(|(n, _)| family(n) == Some("event loops"))
        .filter_map(|(n, _)| Some((*n, cs_of(n)?)))
        .collect();
    if let (Some(thread), Some(best)) = (
        cs_of("thread"),
        loops.iter().min_by(|a, b| a.1.total_cmp(&b.1)),
    ) {
        if best.1 > 0.0 {
            let mut s = format!(
                "A thread per connection pays {} context switches per request, {} those of the \
                 cheapest event loop ({}, {})",
                per_request(thread),
                times(thread / best.1),
                best.0,
                per_request(best.1)
            );
            let connections = cells
                .iter()
                .find(|c| c.target == "thread")
                .map(|c| c.connections);
            let cpu_of = |name: &str| {
                per.iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, p)| p.user_us + p.system_us)
                    .filter(|&us| us > 0.0)
            };
            if let (Some(prices), Some(thread_us), Some(best_us)) =
                (prices, cpu_of("thread"), cpu_of(best.0))
            {
                // A thread per connection at n busy connections has n threads taking turns: the
                // ring's price where it was measured at that count, else the two threads'.
                let (handoff_ns, price) = match prices.ring {
                    Some(r) if Some(r.threads) == connections => (
                        r.handoff_ns,
                        format!(
                            "a hand-off among {} threads taking turns on one CPU ({} µs, against \
                             {} µs between two; measured before the cells)",
                            r.threads,
                            per_request(r.handoff_ns / 1e3),
                            per_request(prices.handoff_ns / 1e3)
                        ),
                    ),
                    _ => (
                        prices.handoff_ns,
                        format!(
                            "a hand-off between threads ({} µs, measured before the cells)",
                            per_request(prices.handoff_ns / 1e3)
                        ),
                    ),
                };
                let switches_us = thread * handoff_ns / 1e3;
                s += &format!(
                    ". At this machine's price of {price}, those switches are {} µs of the {} µs \
                     of CPU thread spends per request, against {} µs in all for {}",
                    per_request(switches_us),
                    per_request(thread_us),
                    per_request(best_us),
                    best.0
                );
            }
            out.push(s + ".");
        }
    }
    if let (Some(prices), Some((name, p, total))) = (prices, counted.last()) {
        let cpu_us = p.user_us + p.system_us;
        if cpu_us > 0.0 {
            let entries_us = total * prices.syscall_ns / 1e3;
            out.push(format!(
                "Entering the kernel costs {} µs here (a syscall that does nothing): {}'s {} \
                 syscalls per request, the most, take {} µs of its {} µs of CPU in entries \
                 alone ({}){}.",
                per_request(prices.syscall_ns / 1e3),
                name,
                per_request(*total),
                per_request(entries_us),
                per_request(cpu_us),
                whole_percent(entries_us / cpu_us),
                if entries_us < 0.5 * cpu_us {
                    ": a trip's price is mostly the work done inside it"
                } else {
                    ""
                }
            ));
        }
    }
    let find = |name: &str| counted.iter().find(|(n, _, _)| *n == name);
    if let Some((_, p, total)) = find("uring") {
        let enter = p.kind("io_uring_enter").unwrap_or(0.0);
        let mut s = format!(
            "uring enters the kernel with io_uring_enter {} times per request and reads or \
             writes through plain syscalls {} times, {} syscalls in all",
            per_request(enter),
            per_request(p.kind("read").unwrap_or(0.0) + p.kind("write").unwrap_or(0.0)),
            per_request(*total)
        );
        if let Some((_, _, epoll)) = find("epoll") {
            s += &format!(" against epoll's {}", per_request(*epoll));
        }
        out.push(s + ": its reads and writes ride in the ring, several per enter.");
    }
    // Only a multiplexer's wait hands back several connections; a blocking model's poll (if
    // any) is one connection's.
    let waits: Vec<(&str, f64)> = counted
        .iter()
        .filter(|(n, _, _)| family(n) == Some("event loops"))
        .filter_map(|(n, p, _)| Some((*n, p.kind("wait")?)))
        .filter(|(_, w)| *w > 0.0)
        .collect();
    if let Some((name, w)) = waits.iter().min_by(|a, b| a.1.total_cmp(&b.1)) {
        if *w < 1.0 {
            out.push(format!(
                "{}'s one wait serves {} requests on average: the multiplexer hands back \
                 several ready connections per call.",
                capitalise(name),
                per_request(1.0 / w)
            ));
        }
    }
    let sys_share: Vec<f64> = per
        .iter()
        .filter(|(_, p)| p.user_us + p.system_us > 0.0)
        .map(|(_, p)| p.system_us / (p.user_us + p.system_us))
        .collect();
    if !sys_share.is_empty() {
        let lo = sys_share.iter().copied().fold(1.0, f64::min);
        let hi = sys_share.iter().copied().fold(0.0, f64::max);
        out.push(format!(
            "The kernel's share of the server's CPU is {} to {}{}.",
            whole_percent(lo),
            whole_percent(hi),
            if lo > 0.5 {
                ": on loopback a request costs mostly the trips into the kernel counted here"
            } else {
                ""
            }
        ));
    }
    out
}
