//! The "Anatomy of a request" section of report.md: per model, for the headline cell
//! ([`anatomy_headline`]), the syscalls a request costs by kind, the context switches, and user
//! and system CPU; then its reading and chart. Every cell's figures are in results.json.

use crate::compare::charts::ChartSet;
use crate::compare::results::{anatomy_headline, anatomy_kinds, Cell, Results};
use crate::format::per_request;
use std::fmt::Write as _;

use super::table::target_order;

/// The section, or why there are no figures.
pub fn section(r: &Results, charts: &ChartSet) -> String {
    let mut out = "## Anatomy of a request\n\n".to_string();
    if let Some(why) = &r.setup.anatomy_off {
        let _ = writeln!(out, "Not counted: {why}.\n");
        return out;
    }
    let Some((scenario, variant, mut cells)) = anatomy_headline(r) else {
        out += "Not counted: no cell was measured on a server compare started.\n\n";
        return out;
    };
    cells.sort_by_key(|c| target_order(r, &c.target));
    let _ = writeln!(
        out,
        "Per request of {scenario} {}: syscalls entered by the server's whole process tree, \
         counted by the kernel's tracepoints through `perf stat` (threads and processes it \
         starts later included), by kind (**read**: read, readv, recvfrom, recvmsg; **write**: \
         write, writev, sendto, sendmsg, sendfile; **wait**: epoll_wait, select, poll and their \
         p-forms, rt_sigtimedwait; **accept**; **clone**: clone, clone3, fork, vfork; **other**: \
         the rest); **cs** is perf's count of context switches, **vol** and **invol** the \
         voluntary (the task waited) and involuntary (it was preempted) ones of the live tasks \
         from /proc; **user** and **sys** are CPU µs from /proc. They are counted over each \
         cell's warm-up, the same load from its first connection, so a connection's setup \
         (accept, a thread's clone) is in them, while perf's own cost (its tracepoints slow \
         every syscall and switch) stays out of the figures measured after; every cell's \
         figures are in results.json.\n",
        variant.replace("c=", "at ")
            + if variant.starts_with("c=") {
                " connections"
            } else {
                ""
            }
    );
    let reasons = unavailable(&cells);
    if !reasons.is_empty() {
        let _ = writeln!(
            out,
            "> perf could not count syscalls, so those columns are empty (never estimated): {}.\n",
            reasons.join("; ")
        );
    }
    let kinds = anatomy_kinds();
    out += "| model | syscalls/req |";
    for k in &kinds {
        let _ = write!(out, " {k} |");
    }
    out += " cs/req | vol/req | invol/req | user µs/req | sys µs/req | requests |\n|---|";
    out += &"---:|".repeat(kinds.len() + 7);
    out += "\n";
    let opt = |v: Option<f64>| v.map_or("—".to_string(), per_request);
    for c in &cells {
        let (Some(a), Some(p)) = (
            &c.anatomy,
            c.anatomy.as_ref().and_then(|a| a.per_request.as_ref()),
        ) else {
            continue;
        };
        let _ = write!(out, "| {} | {} |", c.target, opt(p.syscalls));
        for k in &kinds {
            let _ = write!(out, " {} |", opt(p.kind(k)));
        }
        let _ = writeln!(
            out,
            " {} | {} | {} | {} | {} | {} ({}) |",
            opt(p.context_switches),
            per_request(p.voluntary),
            per_request(p.involuntary),
            per_request(p.user_us),
            per_request(p.system_us),
            a.requests,
            a.requests_from
        );
    }
    out += "\n**requests** is what each figure is divided by: the server's own count through \
            /metrics over the warm-up (server), or the responses the client received in it \
            (client) where the server has no /metrics.\n\n";
    let reading = crate::compare::reading::anatomy(&cells, r.machine.prices.as_ref());
    if !reading.is_empty() {
        let _ = writeln!(out, "**Reading.** {}\n", reading.join(" "));
    }
    for chart in charts.charts.iter().filter(|c| c.anatomy) {
        let _ = writeln!(
            out,
            "![{}]({})\n",
            chart.title,
            chart.png.as_deref().unwrap_or(&chart.svg)
        );
    }
    out
}

/// The reasons perf gave, each once.
fn unavailable(cells: &[&Cell]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for why in cells
        .iter()
        .filter_map(|c| c.anatomy.as_ref()?.counts.unavailable.clone())
    {
        if !out.contains(&why) {
            out.push(why);
        }
    }
    out
}
