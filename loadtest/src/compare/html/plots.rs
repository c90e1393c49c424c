//! The charts of report.html, as data: the same set report.md draws with plotters
//! (throughput by concurrency for the sweeps, latency by percentile per variant, memory per
//! idle connection for c10k, syscalls per request by kind for the anatomy, stacked as the PNG
//! stacks it), each point, and each segment of a stacked bar, carrying the words of its tooltip.

use crate::compare::charts::{scenario_charts, ScenarioCharts};
use crate::compare::file_name as file_part;
use crate::compare::palette::kind_colour;
use crate::compare::results::{anatomy_headline, anatomy_kinds, Cell, Results};
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

/// Lines through points, or a bar per series, plain or stacked.
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    /// A line per series, markers on some points; the legend lists the series.
    Lines,
    /// One bar per series, at its single point; the legend lists the series.
    Bars,
    /// One bar per series at its single point, made of that point's
    /// [`segments`](Point::segments) stacked from the axis up in the order of `layers`; the
    /// legend lists the layers, top down as they are stacked.
    Stacked {
        /// What the bars are split into, bottom up.
        layers: Vec<Layer>,
    },
}

/// One part every stacked bar may have (a kind of syscall): its name and colour, an entry of
/// the legend.
#[derive(Debug, Clone, PartialEq)]
pub struct Layer {
    /// The name, the key of its segments (`data-kind`).
    pub name: String,
    /// The fill of its segments and its legend swatch.
    pub colour: &'static str,
}

/// One layer's part of a stacked bar, and what hovering it says.
#[derive(Debug, Clone)]
pub struct Segment {
    /// Its layer, an index into the shape's `layers`.
    pub layer: usize,
    /// Its height, in the y axis' units.
    pub y: f64,
    /// The tooltip: target, layer, value, and the bar's total.
    pub tip: String,
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
    /// A stacked bar's parts, bottom up, by layer, none of them empty; their heights add up to
    /// `y`. Empty on other charts.
    pub segments: Vec<Segment>,
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
    use crate::compare::markdown::mirrors::{chart_cells, pairs};
    let mut out = Vec::new();
    for (model, original) in pairs(r) {
        let Some((scenario, variant, cells)) = chart_cells(r, &model, &original) else {
            continue;
        };
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

/// The anatomy's chart: syscalls per request of each model in the anatomy table's cell, each
/// bar stacked by kind as the PNG stacks it (the same order, the same colours). A kind no model
/// made is left out of the legend; the others keep their colours. Each segment's tooltip names
/// its kind; the total above a bar gives the whole split, the tiny segments' too.
fn anatomy(r: &Results) -> Option<Plot> {
    let (scenario, variant, mut cells) = anatomy_headline(r)?;
    cells.sort_by_key(|c| crate::compare::markdown::target_order(r, &c.target));
    let kinds = anatomy_kinds();
    // Each model's syscalls per request, one figure per kind in `kinds`' order.
    let bars: Vec<(String, Vec<f64>)> = cells
        .iter()
        .filter_map(|c| {
            let p = c.anatomy.as_ref()?.per_request.as_ref()?;
            p.syscalls?;
            let split = kinds.iter().map(|k| p.kind(k).unwrap_or(0.0)).collect();
            Some((c.target.clone(), split))
        })
        .collect();
    if bars.is_empty() {
        return None;
    }
    let present: Vec<usize> = (0..kinds.len())
        .filter(|&k| bars.iter().any(|b| b.1[k] > 0.0))
        .collect();
    let layers: Vec<Layer> = present
        .iter()
        .map(|&k| Layer {
            name: kinds[k].to_string(),
            colour: kind_colour(k),
        })
        .collect();
    // The total is what the segments add up to, so a bar is as tall as its parts.
    let total = |split: &[f64]| split.iter().sum::<f64>();
    let max = bars
        .iter()
        .map(|b| total(&b.1))
        .fold(0.0, f64::max)
        .max(0.1);
    let n = bars.len();
    let what = variant.replace("c=", "at ")
        + if variant.starts_with("c=") {
            " connections"
        } else {
            ""
        };
    let series = bars
        .iter()
        .enumerate()
        .map(|(i, (target, split))| {
            let sum = total(split);
            let parts: Vec<(usize, f64)> = present
                .iter()
                .enumerate()
                .map(|(layer, &k)| (layer, split[k]))
                .filter(|(_, v)| *v > 0.0)
                .collect();
            let words: Vec<String> = parts
                .iter()
                .map(|&(layer, v)| format!("{} {}", layers[layer].name, per_request(v)))
                .collect();
            Series {
                target: target.clone(),
                points: vec![Point {
                    x: i as f64,
                    y: sum,
                    tip: format!(
                        "{target} · {} syscalls per request: {}",
                        per_request(sum),
                        words.join(", ")
                    ),
                    marked: false,
                    segments: parts
                        .iter()
                        .map(|&(layer, v)| Segment {
                            layer,
                            y: v,
                            tip: format!(
                                "{target} · {} · {} syscalls per request, of {} in all",
                                layers[layer].name,
                                per_request(v),
                                per_request(sum)
                            ),
                        })
                        .collect(),
                }],
            }
        })
        .collect();
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
        shape: Shape::Stacked { layers },
        series,
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
            segments: Vec::new(),
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
                    segments: Vec::new(),
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
                    segments: Vec::new(),
                }],
                target,
            })
            .collect(),
        pair: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::anatomy::Anatomy;
    use crate::compare::results::{CellAnatomy, Machine, Setup, Status, TargetInfo, Versions};

    fn target(name: &str) -> TargetInfo {
        TargetInfo {
            name: name.to_string(),
            kind: "model".to_string(),
            model: Some(name.to_string()),
            args: Vec::new(),
            url: None,
            proxy: None,
            mirrors: Vec::new(),
        }
    }

    /// A plaintext cell at 64 connections whose server made `counts` syscalls by kind over
    /// `requests` requests.
    fn counted(target: &str, requests: u64, counts: &[(&str, u64)]) -> Cell {
        let mut cell = Cell::empty(
            target.to_string(),
            Scenario::Plaintext,
            "c=64".to_string(),
            64,
            Status::Ok,
            None,
        );
        let anatomy = Anatomy {
            syscalls: Some(counts.iter().map(|c| c.1).sum()),
            by_kind: counts.iter().map(|(k, n)| (k.to_string(), *n)).collect(),
            ..Anatomy::default()
        };
        cell.anatomy = Some(CellAnatomy::new(anatomy, requests, "server"));
        cell
    }

    fn results(targets: &[&str], cells: Vec<Cell>) -> Results {
        Results {
            schema: crate::compare::results::SCHEMA.to_string(),
            started: String::new(),
            finished: String::new(),
            command: Vec::new(),
            interrupted: false,
            machine: Machine::default(),
            versions: Versions::default(),
            setup: Setup::default(),
            scenarios: Vec::new(),
            targets: targets.iter().map(|t| target(t)).collect(),
            cells,
        }
    }

    #[test]
    fn the_anatomy_stacks_each_bar_by_kind() {
        let r = results(
            &["uring", "epoll", "idle"],
            vec![
                counted(
                    "epoll",
                    1000,
                    &[
                        ("read", 1000),
                        ("write", 1000),
                        ("wait", 170),
                        ("epoll_ctl", 3),
                        ("accept", 3),
                        ("other", 5),
                    ],
                ),
                counted(
                    "uring",
                    1000,
                    &[("io_uring_enter", 60), ("read", 1), ("other", 10)],
                ),
                // No request: no figures per request, so no bar.
                counted("idle", 0, &[("read", 5)]),
            ],
        );
        let p = anatomy(&r).expect("an anatomy chart");
        // The kinds some model made, in the PNG's order and with its colours.
        let kinds = anatomy_kinds();
        let want: Vec<Layer> = ["read", "write", "wait", "epoll_ctl", "io_uring_enter"]
            .into_iter()
            .chain(["accept", "other"])
            .map(|name| Layer {
                name: name.to_string(),
                colour: kind_colour(kinds.iter().position(|k| *k == name).expect("a kind")),
            })
            .collect();
        assert_eq!(
            p.shape,
            Shape::Stacked {
                layers: want.clone()
            }
        );
        // Bars in the order of the targets, each a segment per kind it made, bottom up.
        let names: Vec<&str> = p.series.iter().map(|s| s.target.as_str()).collect();
        assert_eq!(names, ["uring", "epoll"]);
        let layer_names = |s: &Series| -> Vec<String> {
            s.points[0]
                .segments
                .iter()
                .map(|g| want[g.layer].name.clone())
                .collect()
        };
        assert_eq!(
            layer_names(&p.series[0]),
            ["read", "io_uring_enter", "other"]
        );
        assert_eq!(
            layer_names(&p.series[1]),
            ["read", "write", "wait", "epoll_ctl", "accept", "other"]
        );
        let epoll = &p.series[1].points[0];
        let sum: f64 = epoll.segments.iter().map(|g| g.y).sum();
        assert!((epoll.y - 2.181).abs() < 1e-9, "{}", epoll.y);
        assert!((sum - epoll.y).abs() < 1e-9, "{sum} against {}", epoll.y);
        assert_eq!(
            epoll.segments[2].tip,
            "epoll · wait · 0.17 syscalls per request, of 2.18 in all"
        );
        assert!(epoll
            .tip
            .starts_with("epoll · 2.18 syscalls per request: read 1.00, "));
        // The axis fits the tallest total, with room for its label.
        match p.scale {
            Scale::Linear { max } => assert!(max > 2.181 && max < 3.0, "{max}"),
            Scale::Log { .. } => panic!("a log axis for stacked bars"),
        }
    }
}
