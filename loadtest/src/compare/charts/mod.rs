//! The charts of the report, drawn with `plotters`, each as SVG and PNG in `charts/`:
//! throughput against connections per model (the sweeps), latency percentile curves per
//! scenario, and server memory per idle connection (c10k).
//!
//! Fonts: plotters lays text out with a TrueType font even for SVG, and with its `ab_glyph`
//! feature it has none built in and needs no system library (no fontconfig, no freetype): it
//! takes the bytes of any TTF. This module takes the first it finds of `ZOO_CHART_FONT`, a few
//! well-known paths (DejaVu Sans from `fonts-dejavu-core`, Liberation, Noto), and what
//! `fc-match sans-serif` names. With no font at all, no chart is drawn, and the report says so
//! and how to get one.

mod draw;

use crate::compare::file_name;
use crate::compare::results::{anatomy_headline, anatomy_kinds, Cell, Results, Status};
use crate::compare::scenario::{Crowd, Scenario};
use draw::{draw_bars, draw_latency, draw_stacked, draw_throughput, err, load_font, Area, Stack};
use plotters::prelude::*;
use std::path::Path;

/// Pixel size of every chart.
const SIZE: (u32, u32) = (1100, 620);
/// A chart written to disk.
#[derive(Debug, Clone)]
pub struct Chart {
    /// The scenario it belongs to.
    pub scenario: Scenario,
    /// Its title.
    pub title: String,
    /// The SVG, relative to the results directory.
    pub svg: String,
    /// The PNG, relative to the results directory, when it could be drawn.
    pub png: Option<String>,
    /// Whether it belongs to the anatomy section rather than to its scenario's.
    pub anatomy: bool,
    /// The (model, original) pair whose section it belongs to, if it is a pair's chart.
    pub pair: Option<(String, String)>,
}

/// The charts of a report, and what kept any from being drawn.
#[derive(Debug, Clone, Default)]
pub struct ChartSet {
    /// The charts written.
    pub charts: Vec<Chart>,
    /// Why some are missing.
    pub problems: Vec<String>,
}

/// One line of a chart.
struct Series {
    name: String,
    /// Index among the targets: the same model has the same colour on every chart.
    style: usize,
    baseline: bool,
    points: Vec<(f64, f64)>,
}

/// Draws every chart `results` has data for into `dir/charts`.
pub fn render_all(dir: &Path, results: &Results) -> ChartSet {
    let mut set = ChartSet::default();
    if let Err(problem) = load_font() {
        set.problems.push(problem);
        return set;
    }
    let charts_dir = dir.join("charts");
    if let Err(e) = std::fs::create_dir_all(&charts_dir) {
        set.problems
            .push(format!("cannot create {}: {e}", charts_dir.display()));
        return set;
    }
    let style_of = |name: &str| {
        results
            .targets
            .iter()
            .filter(|t| t.kind != "baseline")
            .position(|t| t.name == name)
            .unwrap_or(0)
    };
    for info in &results.scenarios {
        let Some(ScenarioCharts {
            cells,
            variants,
            sweep,
            latency_variants,
        }) = scenario_charts(results, info.name)
        else {
            continue;
        };
        if sweep {
            let throughput = throughput_series(&cells, &variants, &style_of);
            let labels: Vec<String> = variants
                .iter()
                .map(|v| v.trim_start_matches("c=").to_string())
                .collect();
            let title = format!("{}: throughput by concurrency", info.name);
            set.add(&charts_dir, info.name, "throughput", &title, |root| {
                draw_throughput(root, &title, &labels, &throughput)
            });
        }
        for v in latency_variants {
            let series = latency_series(&cells, v, &style_of);
            let what = if variants.len() > 1 || sweep {
                format!(
                    "{} {}",
                    info.name,
                    v.replace("c=", "at ") + if sweep { " connections" } else { "" }
                )
            } else {
                info.name.to_string()
            };
            let title = format!("{what}: latency by percentile");
            let stem = if variants.len() > 1 && !sweep {
                format!("{}-latency", file_name(v))
            } else {
                "latency".to_string()
            };
            set.add(&charts_dir, info.name, &stem, &title, |root| {
                draw_latency(root, &title, &series)
            });
        }
        // Which scenarios have a chart of their own besides throughput and latency.
        match info.name.crowd() {
            Some(Crowd::Idle) => memory_chart(&mut set, &charts_dir, results, &cells, &style_of),
            Some(Crowd::Slow) | None => {}
        }
    }
    anatomy_chart(&mut set, &charts_dir, results);
    pair_charts(&mut set, &charts_dir, results, &style_of);
    set
}

/// What a scenario's charts are drawn from, decided once for report.md's charts and
/// report.html's: its measured cells, its variants in run order, whether they are a
/// concurrency sweep, and the variants that get a latency chart (one per variant, except that a
/// sweep shows the one at 64 connections, or its middle point: many curves per chart already).
pub struct ScenarioCharts<'a> {
    /// The scenario's measured cells.
    pub cells: Vec<&'a Cell>,
    /// Its variants, in the order the cells ran them.
    pub variants: Vec<&'a str>,
    /// The variants are connection counts (`c=N`), more than one: a throughput chart.
    pub sweep: bool,
    /// The variants drawn as latency curves.
    pub latency_variants: Vec<&'a str>,
}

/// The charts plan of `scenario`; `None` when it has no measured cell.
pub fn scenario_charts(results: &Results, scenario: Scenario) -> Option<ScenarioCharts<'_>> {
    let cells: Vec<&Cell> = results
        .cells
        .iter()
        .filter(|c| c.scenario == scenario && c.status == Status::Ok && c.headline.is_some())
        .collect();
    if cells.is_empty() {
        return None;
    }
    let mut variants: Vec<&str> = Vec::new();
    for c in &cells {
        if !variants.contains(&c.variant.as_str()) {
            variants.push(&c.variant);
        }
    }
    let sweep = variants.len() > 1 && variants.iter().all(|v| v.starts_with("c="));
    let latency_variants = if sweep {
        variants
            .iter()
            .find(|v| **v == "c=64")
            .or_else(|| variants.get(variants.len() / 2))
            .copied()
            .into_iter()
            .collect()
    } else {
        variants.clone()
    };
    Some(ScenarioCharts {
        cells,
        variants,
        sweep,
        latency_variants,
    })
}

/// One chart per mirror and original: their latency curves in the cell
/// [`chart_cell`](crate::compare::markdown::mirrors::chart_cell) picks.
fn pair_charts(
    set: &mut ChartSet,
    charts_dir: &Path,
    results: &Results,
    style_of: &dyn Fn(&str) -> usize,
) {
    use crate::compare::markdown::mirrors::{chart_cells, pairs};
    for (model, original) in pairs(results) {
        let Some((scenario, variant, cells)) = chart_cells(results, &model, &original) else {
            continue;
        };
        let series = latency_series(&cells, &variant, style_of);
        let title = format!("{model} and {original}, {scenario} {variant}: latency by percentile");
        let stem = format!("pair-{}-{}", file_name(&model), file_name(&original));
        let before = set.charts.len();
        set.add(charts_dir, scenario, &stem, &title, |root| {
            draw_latency(root, &title, &series)
        });
        if let Some(chart) = set.charts.get_mut(before) {
            chart.pair = Some((model, original));
        }
    }
}

/// The anatomy's stacked bars: syscalls per request of each model, by kind, for the cell the
/// report's anatomy table shows (plaintext at 64 connections where it ran): one request with
/// nothing else in it, so each bar is a model's loop alone. Other cells are in results.json.
fn anatomy_chart(set: &mut ChartSet, charts_dir: &Path, results: &Results) {
    let Some((scenario, variant, mut cells)) = anatomy_headline(results) else {
        return;
    };
    cells.sort_by_key(|c| crate::compare::markdown::target_order(results, &c.target));
    let kinds = anatomy_kinds();
    let bars: Vec<Stack> = cells
        .iter()
        .filter_map(|c| {
            let p = c.anatomy.as_ref()?.per_request.as_ref()?;
            p.syscalls?;
            Some((
                c.target.clone(),
                kinds.iter().map(|k| p.kind(k).unwrap_or(0.0)).collect(),
            ))
        })
        .collect();
    if bars.is_empty() {
        return;
    }
    let title = format!(
        "{scenario} {}: syscalls per request, by kind",
        variant.replace("c=", "at ")
            + if variant.starts_with("c=") {
                " connections"
            } else {
                ""
            }
    );
    set.add(charts_dir, scenario, "anatomy", &title, |root| {
        draw_stacked(root, &title, "syscalls per request", &kinds, &bars)
    });
}

/// c10k's bars: server memory per idle connection, by target.
fn memory_chart(
    set: &mut ChartSet,
    charts_dir: &Path,
    results: &Results,
    cells: &[&Cell],
    style_of: &dyn Fn(&str) -> usize,
) {
    let mut measures = Vec::new();
    let bars: Vec<(String, usize, bool, f64)> = cells
        .iter()
        .filter_map(|c| {
            let (bytes, what) = c.idle.as_ref()?.per_connection()?;
            if !measures.contains(&what) {
                measures.push(what);
            }
            Some((
                c.target.clone(),
                style_of(&c.target),
                c.target == "nginx",
                bytes / 1024.0,
            ))
        })
        .collect();
    let y_desc = format!("KiB of {} per idle connection", measures.join(" or "));
    if !bars.is_empty() {
        let idle = results.setup.idle_connections;
        let title = format!("c10k: server memory per idle connection ({idle} idle)");
        set.add(
            charts_dir,
            Scenario::C10k,
            "memory-per-connection",
            &title,
            |root| draw_bars(root, &title, &y_desc, &bars),
        );
    }
}

impl ChartSet {
    /// Draws one chart as SVG and PNG; a failure is noted, not fatal.
    fn add<F>(&mut self, dir: &Path, scenario: Scenario, stem: &str, title: &str, draw: F)
    where
        F: Fn(&Area<'_>) -> Result<(), String>,
    {
        let base = format!("{scenario}-{stem}");
        let svg_path = dir.join(format!("{base}.svg"));
        let png_path = dir.join(format!("{base}.png"));
        let svg = {
            let root = SVGBackend::new(&svg_path, SIZE).into_drawing_area();
            draw(&Area::Svg(root.clone())).and_then(|_| root.present().map_err(err))
        };
        if let Err(e) = svg {
            self.problems.push(format!("{}: {e}", svg_path.display()));
            return;
        }
        let png = {
            let root = BitMapBackend::new(&png_path, SIZE).into_drawing_area();
            draw(&Area::Png(root.clone())).and_then(|_| root.present().map_err(err))
        };
        if let Err(e) = &png {
            self.problems.push(format!("{}: {e}", png_path.display()));
        }
        self.charts.push(Chart {
            scenario,
            title: title.to_string(),
            svg: format!("charts/{base}.svg"),
            png: png.is_ok().then(|| format!("charts/{base}.png")),
            anatomy: stem == "anatomy",
            pair: None,
        });
    }
}

fn throughput_series(
    cells: &[&Cell],
    variants: &[&str],
    style_of: &dyn Fn(&str) -> usize,
) -> Vec<Series> {
    let mut out: Vec<Series> = Vec::new();
    for c in cells {
        let Some(x) = variants.iter().position(|v| *v == c.variant) else {
            continue;
        };
        let Some(h) = &c.headline else {
            continue;
        };
        let point = (x as f64, h.requests_per_s);
        match out.iter_mut().find(|s| s.name == c.target) {
            Some(s) => s.points.push(point),
            None => out.push(Series {
                name: c.target.clone(),
                style: style_of(&c.target),
                baseline: c.target == "nginx",
                points: vec![point],
            }),
        }
    }
    for s in &mut out {
        s.points.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    out
}

/// Percentile curves on a "nines" axis: x = -log10(1 - q), so the minimum is 0, 90% is 1, 99%
/// is 2, 99.9% is 3: the tail gets as much room as the body.
fn latency_series(cells: &[&Cell], variant: &str, style_of: &dyn Fn(&str) -> usize) -> Vec<Series> {
    cells
        .iter()
        .filter(|c| c.variant == variant)
        .filter_map(|c| {
            let main = c.loads.iter().find(|l| l.role == "main")?;
            let points: Vec<(f64, f64)> = main
                .report
                .latency
                .spectrum
                .iter()
                .filter(|p| p.quantile < 1.0)
                .map(|p| {
                    (
                        -(1.0 - p.quantile).log10(),
                        (p.value_us.max(1)) as f64 / 1000.0,
                    )
                })
                .filter(|(x, _)| *x <= 5.0)
                .collect();
            (!points.is_empty()).then(|| Series {
                name: c.target.clone(),
                style: style_of(&c.target),
                baseline: c.target == "nginx",
                points,
            })
        })
        .collect()
}
