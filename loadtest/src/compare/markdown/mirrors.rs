//! "Mirrors and their originals": each zoo model beside the Python original it mirrors, per
//! scenario and variant, and a sentence computed from both rows on whether the original breaks
//! where the mirror breaks.

use crate::compare::charts::ChartSet;
use crate::compare::launch::ModelSpec;
use crate::compare::results::{Cell, Results, Status};
use crate::compare::scenario::{Scenario, BLOCK_MS, SLEEP_MS};
use crate::compare::twins::mirrored_by;
use crate::format::{format_us, per_request, percent, ratio, thousands};
use std::fmt::Write as _;

/// Within this factor of a ceiling, a figure is "at" it.
const NEAR: f64 = 1.5;

/// The (model, original) pairs of a run: every original beside each model it names as mirror.
pub fn pairs(r: &Results) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for original in r.targets.iter().filter(|t| t.kind == "original") {
        for model in r.targets.iter().filter(|t| t.kind == "model") {
            let Ok(spec) = ModelSpec::parse(&model.name) else {
                continue;
            };
            if mirrored_by(&original.mirrors, &spec) {
                out.push((model.name.clone(), original.name.clone()));
            }
        }
    }
    out
}

/// The pair's chart: the cell [`chart_cell`] picks, and the measured cells of both targets in
/// its scenario, for report.md's PNG and report.html's plot alike.
pub fn chart_cells<'r>(
    r: &'r Results,
    model: &str,
    original: &str,
) -> Option<(Scenario, String, Vec<&'r Cell>)> {
    let (scenario, variant) = chart_cell(r, model, original)?;
    let cells = r
        .cells
        .iter()
        .filter(|c| c.scenario == scenario && (c.target == model || c.target == original))
        .filter(|c| c.status == Status::Ok && c.headline.is_some())
        .collect();
    Some((scenario, variant, cells))
}

/// The cell a pair's chart shows: the first of blocking-call, io-wait, plaintext (its variant
/// at 64 connections, or the middle of the sweep), then any scenario, that both ran and
/// measured. The chart is the two latency curves of that cell.
pub fn chart_cell(r: &Results, model: &str, original: &str) -> Option<(Scenario, String)> {
    let measured = |t: &str, s: Scenario| -> Vec<String> {
        r.cells
            .iter()
            .filter(|c| c.target == t && c.scenario == s)
            .filter(|c| c.status == Status::Ok && c.headline.is_some())
            .map(|c| c.variant.clone())
            .collect()
    };
    let mut order = vec![
        Scenario::BlockingCall,
        Scenario::IoWait,
        Scenario::Plaintext,
    ];
    order.extend(r.scenarios.iter().map(|i| i.name));
    for s in order {
        let theirs = measured(original, s);
        let both: Vec<String> = measured(model, s)
            .into_iter()
            .filter(|v| theirs.contains(v))
            .collect();
        let pick = both
            .iter()
            .find(|v| *v == "c=64")
            .or_else(|| both.get(both.len() / 2));
        if let Some(v) = pick {
            return Some((s, v.clone()));
        }
    }
    None
}

/// The section, empty when the run has no pair.
pub fn section(r: &Results, charts: &ChartSet) -> String {
    let pairs = pairs(r);
    if pairs.is_empty() {
        return String::new();
    }
    let mut out = String::from("## Mirrors and their originals\n\n");
    out += "Each model beside the Python original it mirrors; the ratio is the original's \
            figure over the model's.\n\n";
    for (model, original) in &pairs {
        let _ = writeln!(out, "### `{model}` and `{original}`\n");
        out += "| scenario | variant | target | req/s | p99 | CPU µs/req | idle conn | ok |\n";
        out += "|---|---|---|--:|--:|--:|--:|--:|\n";
        let mut sentences = Vec::new();
        for info in &r.scenarios {
            let of = |t: &str| -> Vec<&Cell> {
                r.cells
                    .iter()
                    .filter(|c| c.target == t && c.scenario == info.name)
                    .collect()
            };
            for m in of(model) {
                let Some(o) = of(original).into_iter().find(|o| o.variant == m.variant) else {
                    continue;
                };
                for c in [m, o] {
                    let _ = writeln!(
                        out,
                        "| {} | {} | {} | {} | {} | {} | {} | {} |",
                        info.name,
                        c.variant,
                        c.target,
                        rps(c).map_or("-".into(), thousands),
                        c.headline
                            .as_ref()
                            .map_or("-".into(), |h| format_us(h.p99_us)),
                        cpu(c).map_or("-".into(), per_request),
                        idle(c).map_or("-".into(), |b| format!("{} B", thousands(b))),
                        c.headline
                            .as_ref()
                            .map_or("-".into(), |h| percent(h.success_rate)),
                    );
                }
                let r = match (rps(m), rps(o)) {
                    (Some(a), Some(b)) if a > 0.0 => ratio(b / a),
                    _ => "-".to_string(),
                };
                let _ = writeln!(out, "| | | ratio | {r} | | | | |");
                sentences.push(format!(
                    "**{} {}:** {}",
                    info.name,
                    m.variant,
                    verdict(info.name, m, o)
                ));
            }
        }
        out += "\n";
        for s in sentences {
            let _ = writeln!(out, "- {s}");
        }
        out += "\n";
        let pair = Some((model.clone(), original.clone()));
        for chart in charts.charts.iter().filter(|c| c.pair == pair) {
            let _ = writeln!(
                out,
                "![{}]({})\n",
                chart.title,
                chart.png.as_deref().unwrap_or(&chart.svg)
            );
        }
    }
    out
}

fn rps(c: &Cell) -> Option<f64> {
    (c.status == Status::Ok || c.headline.is_some())
        .then(|| c.headline.as_ref().map(|h| h.requests_per_s))
        .flatten()
}

fn cpu(c: &Cell) -> Option<f64> {
    c.server.as_ref().and_then(|s| s.cpu_us_per_request)
}

fn idle(c: &Cell) -> Option<f64> {
    c.idle
        .as_ref()
        .and_then(|i| i.pss_per_connection_bytes.or(i.rss_per_connection_bytes))
}

fn success(c: &Cell) -> Option<f64> {
    c.headline.as_ref().map(|h| h.success_rate)
}

/// Whether `rps` is at the rate of one request at a time with a wait of `ms`.
fn one_at_a_time(rps: f64, ms: u64) -> bool {
    rps <= NEAR * 1000.0 / ms as f64
}

/// The sentence on one pair of cells, from their figures.
pub fn verdict(scenario: Scenario, m: &Cell, o: &Cell) -> String {
    let (mn, on) = (&m.target, &o.target);
    let (Some(mr), Some(or)) = (rps(m), rps(o)) else {
        return format!("one of `{mn}` and `{on}` has no figures here (see the failures).");
    };
    if m.status == Status::Failed && o.status == Status::Failed {
        return format!("both `{mn}` and `{on}` fail here (see the failures): they break alike.");
    }
    match scenario {
        Scenario::BlockingCall => {
            let serial = 1000.0 / BLOCK_MS as f64;
            let (ms, os) = (one_at_a_time(mr, BLOCK_MS), one_at_a_time(or, BLOCK_MS));
            let say = |name: &str, rps: f64, stalls: bool| {
                format!(
                    "`{name}` serves {} req/s ({} blocked request at a time)",
                    thousands(rps),
                    if stalls { "about one" } else { "more than one" }
                )
            };
            let head = format!(
                "{}; {}; one at a time is {} req/s.",
                say(mn, mr, ms),
                say(on, or, os),
                thousands(serial)
            );
            match (ms, os) {
                (true, true) | (false, false) => format!("{head} The mirror holds: both {}.", if ms { "stall on the blocking call" } else { "absorb it" }),
                (true, false) => format!("{head} They disagree: the original does not stall where the mirror does (a patched or threaded sleep hides the block from it)."),
                (false, true) => format!("{head} They disagree: the original stalls where the mirror does not."),
            }
        }
        Scenario::IoWait => {
            let serial = 1000.0 / SLEEP_MS as f64;
            format!(
                "`{mn}` {} req/s, `{on}` {} req/s ({} of the mirror's); {} req/s is one wait \
                 per {SLEEP_MS} ms, so each holds about {} and {} waits at once{}.",
                thousands(mr),
                thousands(or),
                ratio(or / mr.max(1.0)),
                thousands(serial),
                thousands(mr / serial),
                thousands(or / serial),
                if (or / mr.max(1.0) - 1.0).abs() < 0.5 {
                    ": the mirror holds"
                } else {
                    ": the mirror does not hold here"
                }
            )
        }
        Scenario::Slowloris => {
            let (ms, os) = (success(m).unwrap_or(0.0), success(o).unwrap_or(0.0));
            let starved = |s: f64| s < 0.9;
            let head = format!(
                "the normal client's success is {} against `{mn}` and {} against `{on}`.",
                percent(ms),
                percent(os)
            );
            match (starved(ms), starved(os)) {
                (true, true) => format!("{head} Both starve under slow clients: the mirror holds."),
                (false, false) => format!("{head} Neither starves: the mirror holds."),
                (true, false) => {
                    format!("{head} They disagree: the mirror starves, the original does not.")
                }
                (false, true) => {
                    format!("{head} They disagree: the original starves, the mirror does not.")
                }
            }
        }
        Scenario::C10k => match (idle(m), idle(o)) {
            (Some(a), Some(b)) => format!(
                "an idle connection costs `{mn}` {} B and `{on}` {} B ({} of the mirror's).",
                thousands(a),
                thousands(b),
                ratio(b / a.max(1.0))
            ),
            _ => "the memory per idle connection was not measured for both.".to_string(),
        },
        Scenario::CpuMix
        | Scenario::Plaintext
        | Scenario::Json
        | Scenario::Pipelined
        | Scenario::Churn
        | Scenario::Upload => format!(
            "`{on}` serves {} of `{mn}`'s rate ({} against {} req/s): the same shape at the \
             cost of the interpreter.",
            ratio(or / mr.max(1.0)),
            thousands(or),
            thousands(mr)
        ),
    }
}
