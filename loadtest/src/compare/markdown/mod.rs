//! `report.md`: how the run was set up, then per scenario what it loads and shows, a table and
//! its reading in plain words ([`reading`](crate::compare::reading)), the charts; then the check of the
//! client's counts against the server's own, and the failures with their reasons.

mod anatomy;
mod behind;
pub mod mirrors;
mod table;

use crate::compare::charts::ChartSet;
use crate::compare::results::{Cell, Results, Status};
use crate::format::{format_us, gib, per_request, seconds, thousands};
use std::collections::BTreeMap;
use std::fmt::Write as _;
pub use table::baseline_rps;
use table::table;
pub use table::target_order;

/// The name of the baseline target.
pub const BASELINE: &str = "nginx";

/// The whole report.
pub fn render(r: &Results, charts: &ChartSet) -> String {
    let mut out = String::new();
    let models: Vec<&str> = r
        .targets
        .iter()
        .filter(|t| t.kind != "baseline" && t.kind != "behind")
        .map(|t| t.name.as_str())
        .collect();
    let kind = if r.setup.mode == "target" {
        "target"
    } else {
        "model"
    };
    let _ = writeln!(
        out,
        "# zoo compare: {} × {}\n",
        count(models.len(), kind),
        count(r.scenarios.len(), "scenario")
    );
    out += &preamble(r);
    for info in &r.scenarios {
        let cells: Vec<&Cell> = r.cells.iter().filter(|c| c.scenario == info.name).collect();
        let _ = writeln!(out, "## {}\n", info.name);
        let _ = writeln!(out, "**Load:** {}.  ", info.load);
        let _ = writeln!(out, "**Shows:** {}.\n", info.shows);
        if cells.is_empty() {
            out += "Not run.\n\n";
            continue;
        }
        out += &table(info.name, &cells, r);
        let reading = crate::compare::reading::reading(info.name, &cells);
        if !reading.is_empty() {
            let _ = writeln!(out, "**Reading.** {}\n", reading.join(" "));
        }
        for chart in charts
            .charts
            .iter()
            .filter(|c| c.scenario == info.name && !c.anatomy && c.pair.is_none())
        {
            let _ = writeln!(
                out,
                "![{}]({})\n",
                chart.title,
                chart.png.as_deref().unwrap_or(&chart.svg)
            );
        }
    }
    out += &anatomy::section(r, charts);
    out += &mirrors::section(r, charts);
    out += &behind::section(r);
    out += &rounds_section(r);
    out += &counts_section(r);
    out += &failures_section(r);
    if !charts.problems.is_empty() {
        out += "## Charts\n\n";
        for p in &charts.problems {
            let _ = writeln!(out, "- {p}");
        }
        out += "\n";
    }
    out
}

fn preamble(r: &Results) -> String {
    let mut out = String::new();
    let m = &r.machine;
    let s = &r.setup;
    let _ = writeln!(
        out,
        "Run {} to {}{}.  ",
        r.started,
        r.finished,
        if r.interrupted {
            " (interrupted: the cells after it are marked skipped)"
        } else {
            ""
        }
    );
    let _ = writeln!(
        out,
        "Machine: {}, {} CPUs online, {}, {} memory.  ",
        m.cpu_model,
        m.cpus_online,
        m.kernel,
        gib(m.memory_kb)
    );
    if let Some(p) = &m.prices {
        let _ = writeln!(
            out,
            "Kernel prices{}, measured before the cells: a syscall {} µs, a hand-off between two \
             threads on one CPU (a sleeping thread woken and switched to) {} µs{}.  ",
            p.cpu.map(|c| format!(" on CPU {c}")).unwrap_or_default(),
            per_request(p.syscall_ns / 1e3),
            per_request(p.handoff_ns / 1e3),
            p.ring
                .map(|r| format!(
                    ", {} µs among {} threads taking turns (each woken by the one before it)",
                    per_request(r.handoff_ns / 1e3),
                    r.threads
                ))
                .unwrap_or_default()
        );
    }
    let mut versions = vec![format!("loadtest {}", r.versions.loadtest)];
    versions.extend(r.versions.zoo.clone());
    versions.extend(r.versions.nginx.clone());
    versions.extend(r.versions.python.clone());
    let _ = writeln!(out, "Versions: {}.  ", versions.join(", "));
    let pin = |cpus: &Option<Vec<usize>>| match cpus {
        Some(c) => format!("CPU {}", cpu_list(c)),
        None => "unpinned".to_string(),
    };
    let _ = writeln!(
        out,
        "Pinning: servers {}, generator {} ({} thread{} per load).  ",
        pin(&s.server_cpus),
        pin(&s.client_cpus),
        s.generator_threads,
        if s.generator_threads == 1 { "" } else { "s" }
    );
    let _ = writeln!(
        out,
        "Each cell: {} measured after a {} warm-up{}{}{}.\n",
        seconds(s.duration_s),
        seconds(s.warmup_s),
        if s.quick { " (quick run)" } else { "" },
        if s.mode == "start" {
            "; every scenario gets a freshly started server"
        } else {
            "; running targets given with --target"
        },
        if s.rounds > 1 {
            format!(
                "; {} rounds, each through every target in turn, each starting a further \
                 part along the list so that no target is always measured last, and each cell \
                 is its median round by req/s (every round's figure under \"Rounds\" below)",
                s.rounds
            )
        } else {
            String::new()
        }
    );
    for note in &s.notes {
        let _ = writeln!(out, "> {note}\n");
    }
    let never: Vec<String> = r
        .targets
        .iter()
        .filter_map(|t| {
            let cells: Vec<&Cell> = r.cells.iter().filter(|c| c.target == t.name).collect();
            let all_failed = !cells.is_empty()
                && cells.iter().all(|c| {
                    c.status == Status::Failed
                        && c.reason
                            .as_deref()
                            .is_some_and(|w| w.starts_with("could not start"))
                });
            all_failed.then(|| {
                format!(
                    "{} ({})",
                    t.name,
                    cells[0]
                        .reason
                        .as_deref()
                        .unwrap_or("")
                        .trim_start_matches("could not start: ")
                )
            })
        })
        .collect();
    if !never.is_empty() {
        let _ = writeln!(out, "Could not start: {}.\n", never.join("; "));
    }
    out += "How to read the tables: **req/s** counts complete responses per second of measured \
            time; **p50/p99/p99.9** are latencies from sending a request to the end of its \
            response (slowloris: from its intended send time, so a stall counts in full); \
            **errors** are failed requests plus answers other than 2xx; **CPU µs/req** is the \
            server's CPU time (all its processes and threads, from /proc) per response, marked \
            ~ when it rests on fewer than 20 of the kernel's 10 ms ticks; **memory/idle conn** \
            (c10k) is the growth of the server's proportional set size (PSS) per idle \
            connection, RSS where PSS cannot be read; **RSS** is the server's peak resident \
            memory (summed over its processes: shared pages of forked workers count in each); \
            **× nginx** is req/s over nginx's in the same cell; **/metrics** compares the \
            client's count of answers with the server's own `zoo_requests_total` plus \
            `zoo_shed_total` (✓ agree, ✗ differ, — not read).\n\n";
    out
}

/// Every round's req/s of each cell, when there were several rounds: how much the machine moved.
fn rounds_section(r: &Results) -> String {
    if r.setup.rounds <= 1 {
        return String::new();
    }
    let mut out =
        "## Rounds\n\nreq/s of each round, in order; the table shows the median.\n\n".to_string();
    for c in r.cells.iter().filter(|c| c.rounds_rps.len() > 1) {
        let figures: Vec<String> = c.rounds_rps.iter().map(|&x| thousands(x)).collect();
        let _ = writeln!(
            out,
            "- {} · {} {}: {}",
            c.target,
            c.scenario,
            c.variant,
            figures.join(" / ")
        );
    }
    out.push('\n');
    out
}

fn counts_section(r: &Results) -> String {
    let checked: Vec<&Cell> = r
        .cells
        .iter()
        .filter(|c| c.metrics.as_ref().is_some_and(|m| m.agrees.is_some()))
        .collect();
    let unread: Vec<&Cell> = r
        .cells
        .iter()
        .filter(|c| c.metrics.as_ref().is_some_and(|m| m.agrees.is_none()))
        .collect();
    let mut out = "## Counts against the server's /metrics\n\n".to_string();
    if checked.is_empty() && unread.is_empty() {
        out += "No cell was checked (no zoo target answered /metrics).\n\n";
        return out;
    }
    let disagree: Vec<&&Cell> = checked
        .iter()
        .filter(|c| c.metrics.as_ref().and_then(|m| m.agrees) == Some(false))
        .collect();
    let total_client: u64 = checked
        .iter()
        .filter_map(|c| c.metrics.as_ref().map(|m| m.client_responses))
        .sum();
    let total_server: u64 = checked
        .iter()
        .filter_map(|c| c.metrics.as_ref().and_then(server_answered))
        .sum();
    let _ = writeln!(
        out,
        "For every cell, zoo's `zoo_requests_total` and `zoo_shed_total` were read before and \
         after; the requests (less the one reading counted inside them) plus the connections \
         shed with a 503 are set against the responses the client received, warm-up included. \
         {} of {} checked cells agree; over them all the client counted {} responses and the \
         servers {}.\n",
        checked.len() - disagree.len(),
        checked.len(),
        thousands(total_client as f64),
        thousands(total_server as f64)
    );
    if !disagree.is_empty() {
        out += "**Disagreements:**\n\n| model | scenario | variant | client responses | client \
                errors | server requests | server shed |\n|---|---|---|---:|---:|---:|---:|\n";
        let num = |v: Option<u64>| v.map_or("?".to_string(), |v| v.to_string());
        for c in &disagree {
            if let Some(m) = &c.metrics {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} | {} | {} |",
                    c.target,
                    c.scenario,
                    c.variant,
                    m.client_responses,
                    m.client_errors,
                    num(m.server_requests),
                    num(m.server_shed)
                );
            }
        }
        out += "\n";
    }
    if !unread.is_empty() {
        let list: Vec<String> = unread
            .iter()
            .map(|c| {
                format!(
                    "{} {} {} ({})",
                    c.target,
                    c.scenario,
                    c.variant,
                    c.metrics
                        .as_ref()
                        .and_then(|m| m.note.clone())
                        .unwrap_or_default()
                )
            })
            .collect();
        let _ = writeln!(out, "Not read: {}.\n", list.join("; "));
    }
    out
}

/// What the server says it answered: requests through the service and connections shed.
pub fn server_answered(m: &crate::compare::results::MetricsCheck) -> Option<u64> {
    Some(m.server_requests? + m.server_shed.unwrap_or(0))
}

fn failures_section(r: &Results) -> String {
    let failed: Vec<&Cell> = r
        .cells
        .iter()
        .filter(|c| c.status != Status::Ok || c.server_exit.is_some())
        .collect();
    if failed.is_empty() {
        return "## Failures\n\nNone: every cell measured, every server stopped cleanly.\n\n"
            .to_string();
    }
    let mut out = "## Failures and notes\n\n".to_string();
    let mut by_target: BTreeMap<usize, Vec<&Cell>> = BTreeMap::new();
    let mut cut_short = 0;
    for c in failed {
        // The cells an interruption skipped say nothing one by one: they are counted.
        if c.status == Status::Skipped && c.reason.as_deref() == Some("interrupted") {
            cut_short += 1;
            continue;
        }
        by_target
            .entry(target_order(r, &c.target))
            .or_default()
            .push(c);
    }
    if cut_short > 0 {
        let _ = writeln!(out, "- {cut_short} cells skipped: the run was interrupted");
    }
    for cells in by_target.values() {
        for c in cells {
            let what = match c.status {
                Status::Failed => "failed",
                Status::Skipped => "skipped",
                Status::Ok => "note",
            };
            let mut why = c.reason.clone().unwrap_or_default();
            if let Some(exit) = &c.server_exit {
                if !why.is_empty() {
                    why += "; ";
                }
                why += &format!("server stop: {exit}");
            }
            let _ = writeln!(
                out,
                "- {} · {} {} · {what}: {why}",
                c.target, c.scenario, c.variant
            );
        }
    }
    out += "\n";
    out
}

/// A one-line summary of a finished cell, for the progress display.
pub fn one_line(c: &Cell) -> String {
    let figures = c.headline.as_ref().map(|h| {
        format!(
            "{} req/s, p99 {}, {} errors",
            thousands(h.requests_per_s),
            format_us(h.p99_us),
            h.errors + h.non_2xx
        )
    });
    let counts = match c.metrics.as_ref().and_then(|m| m.agrees) {
        Some(false) => ", /metrics DISAGREES",
        _ => "",
    };
    match (c.status, figures) {
        (Status::Ok, Some(f)) => format!("{f}{counts}"),
        (status, f) => format!(
            "{}{}{}",
            if status == Status::Skipped {
                "skipped"
            } else {
                "FAILED"
            },
            f.map_or(String::new(), |f| format!(" ({f})")),
            c.reason
                .as_deref()
                .map_or(String::new(), |r| format!(": {}", shorten(r, 160)))
        ),
    }
}

fn shorten(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

fn cpu_list(cpus: &[usize]) -> String {
    let items: Vec<String> = cpus.iter().map(usize::to_string).collect();
    items.join(",")
}

/// `1 model`, `3 models`.
fn count(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// The first letter in upper case.
pub fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().collect::<String>() + chars.as_str(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(capitalise("inline"), "Inline");
        assert_eq!(shorten("abcdef", 3), "abc…");
    }
}
