//! The charts of report.html, as data: the same set report.md draws with plotters
//! (throughput by concurrency for the sweeps, latency by percentile per variant, memory per
//! idle connection for c10k, syscalls per request for the anatomy), each point carrying the
//! words of its tooltip.

use crate::compare::charts::{scenario_charts, ScenarioCharts};
use crate::compare::file_name as file_part;
use crate::compare::results::{anatomy_headline, anatomy_kinds, Cell, Results, Status};
use crate::compare::scenario::{Crowd, Scenario};
use crate::format::{format_us, per_request, quantile_words, thousands};

/// What the y values are, for the axis labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Requests per second.
    Rps,
    /// Milliseconds.
    Ms,
    /// KiB.
    Kib,
    /// Syscalls per request.
    Syscalls,
}

/// How the y axis maps values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scale {
    /// From 0 to `max`.
    Linear {
        /// The top of the axis.
        max: f64,
    },
    /// From 10^`lo` to 10^`hi`.
    Log {
        /// log10 of the bottom.
        lo: f64,
        /// log10 of the top.
        hi: f64,
    },
}

/// Lines through points, or a bar per series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// A line per series, markers on some points.
    Lines,
    /// One bar per series, at its single point.
    Bars,
}

/// One point and what hovering it says.
#[derive(Debug, Clone)]
pub struct Point {
    /// In the x axis' units.
    pub x: f64,
    /// In the y axis' units (not logged).
    pub y: f64,
    /// The tooltip: target, x and y with units.
    pub tip: String,
    /// Whether it carries a visible marker (a curve of many points marks a few).
    pub marked: bool,
}

/// One target's points on a chart.
#[derive(Debug, Clone)]
pub struct Series {
    /// The target.
    pub target: String,
    /// Its points, by x.
    pub points: Vec<Point>,
}

/// One chart.
#[derive(Debug, Clone)]
pub struct Plot {
    /// The file stem report.md's chart has (`plaintext-throughput`): the element id.
    pub id: String,
    /// Its scenario.
    pub scenario: Scenario,
    /// Its title, as in report.md.
    pub title: String,
    /// Words under the x axis.
    pub x_label: String,
    /// Words beside the y axis.
    pub y_label: String,
    /// The x range shown.
    pub x_range: (f64, f64),
    /// Labelled x positions.
    pub x_ticks: Vec<(f64, String)>,
    /// The y axis.
    pub scale: Scale,
    /// The y values' unit.
    pub unit: Unit,
    /// Lines or bars.
    pub shape: Shape,
    /// A series per target.
    pub series: Vec<Series>,
    /// The (model, original) pair whose section it belongs to, if it is a pair's chart.
    pub pair: Option<(String, String)>,
}

/// Every chart `r` has data for, in report order.
pub fn plots(r: &Results) -> Vec<Plot> {
    let mut out = Vec::new();
    for info in &r.scenarios {
        let Some(ScenarioCharts {
            cells,
            variants,
            sweep,
            latency_variants,
        }) = scenario_charts(r, info.name)
        else {
            continue;
        };
        if sweep {
            out.push(throughput(r, info.name, &cells, &variants));
        }
        for v in latency_variants {
            let what = if variants.len() > 1 || sweep {
                format!(
                    "{} {}",
                    info.name,
                    v.replace("c=", "at ") + if sweep { " connections" } else { "" }
                )
            } else {
                info.name.to_string()
            };
            let id = if variants.len() > 1 && !sweep {
                format!("{}-{}-latency", info.name, file_part(v))
            } else {
                format!("{}-latency", info.name)
            };
            if let Some(p) = latency(
                r,
                info.name,
                &cells,
                v,
                id,
                format!("{what}: latency by percentile"),
            ) {
                out.push(p);
            }
        }
        // As report.md: the idle crowd's scenario has its memory chart.
        match info.name.crowd() {
            Some(Crowd::Idle) => out.extend(memory(r, info.name, &cells)),
            Some(Crowd::Slow) | None => {}
        }
    }
    out.extend(anatomy(r));
    out.extend(pairs(r));
    out
}

/// As report.md: one latency chart per mirror and original, in the cell
/// [`chart_cell`](crate::compare::markdown::mirrors::chart_cell) picks.
fn pairs(r: &Results) -> Vec<Plot> {
    use crate::compare::markdown::mirrors::{chart_cell, pairs};
    let mut out = Vec::new();
    for (model, original) in pairs(r) {
        let Some((scenario, variant)) = chart_cell(r, &model, &original) else {
            continue;
        };
        let cells: Vec<&Cell> = r
            .cells
            .iter()
            .filter(|c| c.scenario == scenario && (c.target == model || c.target == original))
            .filter(|c| c.status == Status::Ok && c.headline.is_some())
            .collect();
        let id = format!(
            "{scenario}-pair-{}-{}",
            file_part(&model),
            file_part(&original)
        );
        let title = format!("{model} and {original}, {scenario} {variant}: latency by percentile");
        if let Some(mut p) = latency(r, scenario, &cells, &variant, id, title) {
            p.pair = Some((model, original));
            out.push(p);
        }
    }
    out
}

/// The anatomy's chart: syscalls per request of each model in the anatomy table's cell. The
/// PNG stacks each bar by kind; here a bar is the total and its tooltip gives the kinds.
fn anatomy(r: &Results) -> Option<Plot> {
    let (scenario, variant, cells) = anatomy_headline(r)?;
    let kinds = anatomy_kinds();
    let mut bars: Vec<(String, f64, String)> = cells
        .iter()
        .filter_map(|c| {
            let p = c.anatomy.as_ref()?.per_request.as_ref()?;
            let total = p.syscalls?;
            let split: Vec<String> = kinds
                .iter()
                .filter_map(|k| Some((k, p.kind(k)?)))
                .filter(|(_, v)| *v > 0.0)
                .map(|(k, v)| format!("{k} {}", per_request(v)))
                .collect();
            Some((c.target.clone(), total, split.join(", ")))
        })
        .collect();
    if bars.is_empty() {
        return None;
    }
    let at = |name: &str| r.targets.iter().position(|t| t.name == name);
    bars.sort_by_key(|b| at(&b.0).unwrap_or(usize::MAX));
    let max = bars.iter().map(|b| b.1).fold(0.0, f64::max).max(0.1);
    let n = bars.len();
    let what = variant.replace("c=", "at ")
        + if variant.starts_with("c=") {
            " connections"
        } else {
            ""
        };
    Some(Plot {
        id: format!("{scenario}-anatomy"),
        scenario,
        title: format!("{scenario} {what}: syscalls per request, by kind"),
        x_label: "model".into(),
        y_label: "syscalls per request".into(),
        x_range: (-0.5, n as f64 - 0.5),
        x_ticks: bars
            .iter()
            .enumerate()
            .map(|(i, b)| (i as f64, b.0.clone()))
            .collect(),
        scale: Scale::Linear { max: max * 1.2 },
        unit: Unit::Syscalls,
        shape: Shape::Bars,
        series: bars
            .into_iter()
            .enumerate()
            .map(|(i, (target, total, split))| Series {
                points: vec![Point {
                    x: i as f64,
                    y: total,
                    tip: format!(
                        "{target} · {} syscalls per request: {split}",
                        per_request(total)
                    ),
                    marked: false,
                }],
                target,
            })
            .collect(),
        pair: None,
    })
}

/// Targets in the order of `r.targets`, so legends list them alike on every chart.
fn ordered(r: &Results, mut series: Vec<Series>) -> Vec<Series> {
    let at = |name: &str| r.targets.iter().position(|t| t.name == name);
    series.sort_by_key(|s| at(&s.target).unwrap_or(usize::MAX));
    series
}

fn throughput(r: &Results, scenario: Scenario, cells: &[&Cell], variants: &[&str]) -> Plot {
    let mut series: Vec<Series> = Vec::new();
    for c in cells {
        let (Some(x), Some(h)) = (variants.iter().position(|v| *v == c.variant), &c.headline)
        else {
            continue;
        };
        let point = Point {
            x: x as f64,
            y: h.requests_per_s,
            tip: format!(
                "{} · {} connections · {} req/s",
                c.target,
                c.connections,
                thousands(h.requests_per_s)
            ),
            marked: true,
        };
        match series.iter_mut().find(|s| s.target == c.target) {
            Some(s) => s.points.push(point),
            None => series.push(Series {
                target: c.target.clone(),
                points: vec![point],
            }),
        }
    }
    for s in &mut series {
        s.points.sort_by(|a, b| a.x.total_cmp(&b.x));
    }
    let max = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.y))
        .fold(0.0, f64::max)
        .max(1.0)
        * 1.1;
    Plot {
        id: format!("{scenario}-throughput"),
        scenario,
        title: format!("{scenario}: throughput by concurrency"),
        x_label: "concurrent keep-alive connections".into(),
        y_label: "requests per second".into(),
        x_range: (-0.25, variants.len() as f64 - 0.75),
        x_ticks: variants
            .iter()
            .enumerate()
            .map(|(i, v)| (i as f64, v.trim_start_matches("c=").to_string()))
            .collect(),
        scale: Scale::Linear { max },
        unit: Unit::Rps,
        shape: Shape::Lines,
        series: ordered(r, series),
        pair: None,
    }
}

/// Percentile curves on a "nines" axis, x = -log10(1 - q): 90% is 1, 99% is 2, 99.9% is 3.
fn latency(
    r: &Results,
    scenario: Scenario,
    cells: &[&Cell],
    variant: &str,
    id: String,
    title: String,
) -> Option<Plot> {
    let mut series = Vec::new();
    for c in cells.iter().filter(|c| c.variant == variant) {
        let Some(main) = c.loads.iter().find(|l| l.role == "main") else {
            continue;
        };
        let mut points: Vec<Point> = main
            .report
            .latency
            .spectrum
            .iter()
            .filter(|p| p.quantile < 1.0)
            .map(|p| {
                let us = p.value_us.max(1);
                Point {
                    x: -(1.0 - p.quantile).log10(),
                    y: us as f64 / 1000.0,
                    tip: format!(
                        "{} · p{} · {}",
                        c.target,
                        quantile_words(p.quantile),
                        format_us(us)
                    ),
                    marked: false,
                }
            })
            .filter(|p| p.x <= 5.0)
            .collect();
        // A marker at the point nearest each whole nine, so a curve is known by its marker.
        for nine in 0..=5 {
            let nearest = points.iter_mut().min_by(|a, b| {
                (a.x - nine as f64)
                    .abs()
                    .total_cmp(&(b.x - nine as f64).abs())
            });
            if let Some(p) = nearest.filter(|p| (p.x - nine as f64).abs() < 0.5) {
                p.marked = true;
            }
        }
        if !points.is_empty() {
            series.push(Series {
                target: c.target.clone(),
                points,
            });
        }
    }
    if series.is_empty() {
        return None;
    }
    let all = series.iter().flat_map(|s| s.points.iter());
    let (lo, hi, xmax) = all.fold((f64::MAX, 0.0f64, 1.0f64), |(lo, hi, xm), p| {
        (lo.min(p.y), hi.max(p.y), xm.max(p.x))
    });
    let lo = (lo.max(0.001) / 1.3).log10();
    let hi = (hi * 1.3).log10().max(lo + 1.0);
    let nines = xmax.clamp(1.0, 5.0).ceil();
    let x_ticks = (0..=nines as u32)
        .map(|n| {
            let label = if n == 0 {
                "min".to_string()
            } else {
                format!("{}%", quantile_words(1.0 - 10f64.powi(-(n as i32))))
            };
            (f64::from(n), label)
        })
        .collect();
    Some(Plot {
        id,
        scenario,
        title,
        x_label: "percentile".into(),
        y_label: "latency (log scale)".into(),
        x_range: (0.0, nines),
        x_ticks,
        scale: Scale::Log { lo, hi },
        unit: Unit::Ms,
        shape: Shape::Lines,
        series: ordered(r, series),
        pair: None,
    })
}

fn memory(r: &Results, scenario: Scenario, cells: &[&Cell]) -> Option<Plot> {
    let mut measures: Vec<&str> = Vec::new();
    let mut bars: Vec<(String, f64, &str)> = Vec::new();
    for c in cells {
        if let Some((bytes, what)) = c.idle.as_ref().and_then(|i| i.per_connection()) {
            if !measures.contains(&what) {
                measures.push(what);
            }
            bars.push((c.target.clone(), bytes / 1024.0, what));
        }
    }
    if bars.is_empty() {
        return None;
    }
    let at = |name: &str| r.targets.iter().position(|t| t.name == name);
    bars.sort_by_key(|b| at(&b.0).unwrap_or(usize::MAX));
    let max = bars.iter().map(|b| b.1).fold(0.0, f64::max).max(0.1);
    let min = bars.iter().map(|b| b.1).fold(f64::MAX, f64::min).max(0.01);
    // A wide spread on a linear axis makes the small bars vanish, as in the PNG chart.
    let log = max / min > 30.0;
    let scale = if log {
        Scale::Log {
            lo: (min / 2.0).log10().floor(),
            hi: (max * 3.0).log10(),
        }
    } else {
        Scale::Linear { max: max * 1.2 }
    };
    let y_label = format!(
        "KiB of {} per idle connection{}",
        measures.join(" or "),
        if log { " (log scale)" } else { "" }
    );
    let n = bars.len();
    Some(Plot {
        id: format!("{scenario}-memory-per-connection"),
        scenario,
        title: format!(
            "{scenario}: server memory per idle connection ({} idle)",
            r.setup.idle_connections
        ),
        x_label: "model".into(),
        y_label,
        x_range: (-0.5, n as f64 - 0.5),
        x_ticks: bars
            .iter()
            .enumerate()
            .map(|(i, b)| (i as f64, b.0.clone()))
            .collect(),
        scale,
        unit: Unit::Kib,
        shape: Shape::Bars,
        series: bars
            .into_iter()
            .enumerate()
            .map(|(i, (target, kib, what))| Series {
                points: vec![Point {
                    x: i as f64,
                    y: kib,
                    tip: format!("{target} · {kib:.1} KiB of {what} per idle connection"),
                    marked: false,
                }],
                target,
            })
            .collect(),
        pair: None,
    })
}
