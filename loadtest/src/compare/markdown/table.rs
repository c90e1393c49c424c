//! The table of one scenario: the common columns (req/s, latency, CPU, memory, the ratio to
//! nginx, the `/metrics` check) and the extra ones its [`Columns`] ask for.

use super::{server_answered, BASELINE};
use crate::compare::results::{Cell, FigureSource, IdleFigures, Results, Status};
use crate::compare::scenario::{Columns, Scenario};
use crate::format::{format_us, kib, mib, percent, ratio, thousands};
use std::fmt::Write as _;

/// The table of `scenario`'s cells, rows sorted by connections or by target and variant.
pub fn table(scenario: Scenario, cells: &[&Cell], r: &Results) -> String {
    let extra = scenario.columns();
    let sweep = cells.iter().any(|c| c.variant.starts_with("c="))
        && cells
            .iter()
            .map(|c| c.variant.as_str())
            .collect::<std::collections::BTreeSet<_>>()
            .len()
            > 1;
    let variants = cells
        .iter()
        .map(|c| c.variant.as_str())
        .collect::<std::collections::BTreeSet<_>>()
        .len()
        > 1;
    // slowloris' normal client sends at a fixed rate: its throughput is no comparison.
    let has_baseline = extra != Columns::Slow && cells.iter().any(|c| c.target == BASELINE);
    let mut head = vec!["model"];
    if sweep {
        head.push("conns");
    } else if variants {
        head.push("variant");
    }
    if extra == Columns::Slow {
        head.push("success");
    }
    head.extend(["req/s", "p50", "p99", "p99.9", "errors"]);
    match extra {
        Columns::Ideal => head.push("% of ideal"),
        Columns::Cpu => head.extend(["cpu req/s", "cpu p99"]),
        Columns::Idle => head.extend(["idle held", "memory/idle conn"]),
        Columns::Slow => head.push("slow conns at end"),
        Columns::None => {}
    }
    head.extend(["CPU µs/req", "RSS"]);
    if has_baseline {
        head.push("× nginx");
    }
    head.push("/metrics");

    let mut rows = cells.to_vec();
    // Sweeps read by connections first, so the models at one load sit together.
    if sweep {
        rows.sort_by_key(|c| (c.connections, target_order(r, &c.target)));
    } else {
        rows.sort_by_key(|c| (target_order(r, &c.target), variant_order(cells, &c.variant)));
    }
    let mut out = String::new();
    let _ = writeln!(out, "| {} |", head.join(" | "));
    let aligns: Vec<&str> = head
        .iter()
        .map(|h| {
            if matches!(*h, "model" | "variant") {
                "---"
            } else {
                "---:"
            }
        })
        .collect();
    let _ = writeln!(out, "|{}|", aligns.join("|"));
    let mut notes: Vec<String> = Vec::new();
    let mut from_series = false;
    for c in rows {
        let mut row: Vec<String> = vec![if c.target == BASELINE {
            format!("{} (baseline)", c.target)
        } else {
            c.target.clone()
        }];
        if sweep {
            row.push(c.connections.to_string());
        } else if variants {
            row.push(c.variant.clone());
        }
        let mark = match (&c.reason, c.status) {
            (Some(reason), status) => {
                notes.push(format!(
                    "{} {}: {}{reason}",
                    c.target,
                    c.variant,
                    match status {
                        Status::Failed => "**failed**: ",
                        Status::Skipped => "skipped: ",
                        Status::Ok => "",
                    }
                ));
                format!(" [{}]", notes.len())
            }
            (None, _) => String::new(),
        };
        let h = c.headline.as_ref();
        if extra == Columns::Slow {
            row.push(h.map_or("—".into(), |h| percent(h.success_rate)));
        }
        match h {
            Some(h) => {
                row.push(format!("{}{}", thousands(h.requests_per_s), failed_tag(c)));
                // With no response there is no latency to show, only the errors.
                let lat = |us: u64| {
                    if h.requests > 0 {
                        format_us(us)
                    } else {
                        "—".into()
                    }
                };
                row.push(lat(h.p50_us));
                row.push(lat(h.p99_us));
                row.push(lat(h.p99_9_us));
                row.push(format!(
                    "{}{mark}",
                    thousands((h.errors + h.non_2xx) as f64)
                ));
            }
            None => {
                row.push(match c.status {
                    Status::Skipped => "skipped".to_string(),
                    _ => "**failed**".to_string(),
                });
                row.extend(["—", "—", "—"].map(String::from));
                row.push(format!("—{mark}"));
            }
        }
        match extra {
            Columns::Ideal => row.push(match (h, c.ideal_rps) {
                (Some(h), Some(ideal)) if ideal > 0.0 => percent(h.requests_per_s / ideal),
                _ => "—".into(),
            }),
            Columns::Cpu => {
                let cpu = c.loads.iter().find(|l| l.role == "cpu");
                row.push(cpu.map_or("—".into(), |l| thousands(l.report.requests_per_s)));
                row.push(cpu.map_or("—".into(), |l| {
                    format_us(l.report.latency.percentiles.p99)
                }));
            }
            Columns::Idle => {
                let idle = c.idle.as_ref();
                row.push(idle.map_or("—".into(), |i| {
                    format!(
                        "{}/{}",
                        thousands(i.still_open_after as f64),
                        thousands(i.open.wanted as f64)
                    )
                }));
                row.push(
                    idle.and_then(IdleFigures::per_connection)
                        .map_or("—".into(), |(b, what)| format!("{} {what}", kib(b))),
                );
            }
            Columns::Slow => row.push(c.slow.as_ref().map_or("—".into(), |s| {
                format!("{}/{}", s.connected_at_end, s.clients)
            })),
            Columns::None => {}
        }
        let server = c.server.as_ref();
        let from = server.map_or("", |s| source_mark(s.source));
        from_series |= !from.is_empty();
        row.push(server.map_or("—".into(), |s| format!("{}{from}", cpu_cell(s))));
        row.push(server.map_or("—".into(), |s| {
            format!("{}{from}", mib(s.usage.rss_peak_kb))
        }));
        if has_baseline {
            row.push(match (h, baseline_rps(cells, &c.variant)) {
                (Some(h), Some(base)) if base > 0.0 && c.status == Status::Ok => {
                    ratio(h.requests_per_s / base)
                }
                _ => "—".into(),
            });
        }
        row.push(match c.metrics.as_ref().and_then(|m| m.agrees) {
            Some(true) => "✓".into(),
            Some(false) => format!(
                "✗ {}",
                c.metrics
                    .as_ref()
                    .and_then(server_answered)
                    .map_or("?".to_string(), |n| thousands(n as f64))
            ),
            None => "—".into(),
        });
        let _ = writeln!(out, "| {} |", row.join(" | "));
    }
    out += "\n";
    if from_series {
        let _ = writeln!(out, "{SERIES_NOTE}\n");
    }
    for (i, note) in notes.iter().enumerate() {
        let _ = writeln!(out, "[{}] {}  ", i + 1, note.replace('|', "\\|"));
    }
    if !notes.is_empty() {
        out += "\n";
    }
    out
}

/// The mark of a figure the server reported of itself.
pub const SERIES_MARK: &str = "ˢ";

/// The line under a table with figures marked [`SERIES_MARK`].
pub const SERIES_NOTE: &str = "ˢ from the server's own process_* series \
    (`process_cpu_seconds_total`, `process_resident_memory_bytes` on its /metrics), read before \
    and after the cell: CPU µs/req spans every response, warm-up included, and RSS is the larger \
    of the two readings.";

/// [`SERIES_MARK`] for figures from the process series, nothing for figures from /proc.
pub fn source_mark(source: FigureSource) -> &'static str {
    match source {
        FigureSource::ProcessSeries => SERIES_MARK,
        FigureSource::Proc => "",
    }
}

/// Ticks below which a CPU time is marked as rough.
const ROUGH_TICKS: f64 = 20.0;

/// CPU µs per request, marked `~` when it rests on a few of the kernel's 10 ms ticks.
pub fn cpu_cell(s: &crate::compare::results::ServerFigures) -> String {
    let Some(v) = s.cpu_us_per_request else {
        return "—".into();
    };
    let rough = s.usage.cpu_tick_s > 0.0 && s.usage.cpu_s < ROUGH_TICKS * s.usage.cpu_tick_s;
    if rough {
        format!("~{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

fn failed_tag(c: &Cell) -> &'static str {
    if c.status == Status::Failed {
        " (failed)"
    } else {
        ""
    }
}

/// Where a target stands in the report: the order of results.json's targets.
pub fn target_order(r: &Results, name: &str) -> usize {
    r.targets
        .iter()
        .position(|t| t.name == name)
        .unwrap_or(usize::MAX)
}

fn variant_order(cells: &[&Cell], variant: &str) -> usize {
    cells
        .iter()
        .position(|c| c.variant == variant)
        .unwrap_or(usize::MAX)
}

/// nginx's throughput in `variant`, when it measured.
pub fn baseline_rps(cells: &[&Cell], variant: &str) -> Option<f64> {
    cells
        .iter()
        .find(|c| c.target == BASELINE && c.variant == variant && c.status == Status::Ok)
        .and_then(|c| c.headline.as_ref())
        .map(|h| h.requests_per_s)
}
