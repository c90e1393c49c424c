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

use crate::results::{Cell, Results, Status};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::FontStyle;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Pixel size of every chart.
const SIZE: (u32, u32) = (1100, 620);
/// Width of the legend panel on the right.
const LEGEND_WIDTH: u32 = 230;
/// The font family name the charts ask for.
const FAMILY: &str = "sans-serif";
/// Where TTF fonts usually are.
const FONT_PATHS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/liberation-sans/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf",
    "/usr/share/fonts/noto/NotoSans-Regular.ttf",
    "/Library/Fonts/Arial.ttf",
];
/// Series colours (Tableau 10); after ten, the colours repeat with another marker.
const COLOURS: [(u8, u8, u8); 10] = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
];

/// A chart written to disk.
#[derive(Debug, Clone)]
pub struct Chart {
    /// The scenario it belongs to.
    pub scenario: String,
    /// Its title.
    pub title: String,
    /// The SVG, relative to the results directory.
    pub svg: String,
    /// The PNG, relative to the results directory, when it could be drawn.
    pub png: Option<String>,
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
        let cells: Vec<&Cell> = results
            .cells
            .iter()
            .filter(|c| c.scenario == info.name && c.status == Status::Ok && c.headline.is_some())
            .collect();
        if cells.is_empty() {
            continue;
        }
        let mut variants: Vec<&str> = Vec::new();
        for c in &cells {
            if !variants.contains(&c.variant.as_str()) {
                variants.push(&c.variant);
            }
        }
        let sweep = variants.len() > 1 && variants.iter().all(|v| v.starts_with("c="));
        if sweep {
            let throughput = throughput_series(&cells, &variants, &style_of);
            let labels: Vec<String> = variants
                .iter()
                .map(|v| v.trim_start_matches("c=").to_string())
                .collect();
            let title = format!("{}: throughput by concurrency", info.name);
            set.add(&charts_dir, &info.name, "throughput", &title, |root| {
                draw_throughput(root, &title, &labels, &throughput)
            });
        }
        // One latency chart per variant, except that a sweep shows the one at 64 connections
        // (or its middle point): many curves per chart already.
        let latency_variants: Vec<&str> = if sweep {
            let pick = variants
                .iter()
                .find(|v| **v == "c=64")
                .or_else(|| variants.get(variants.len() / 2))
                .copied();
            pick.into_iter().collect()
        } else {
            variants.clone()
        };
        for v in latency_variants {
            let series = latency_series(&cells, v, &style_of);
            let what = if variants.len() > 1 || sweep {
                format!(
                    "{} {}",
                    info.name,
                    v.replace("c=", "at ") + if sweep { " connections" } else { "" }
                )
            } else {
                info.name.clone()
            };
            let title = format!("{what}: latency by percentile");
            let stem = if variants.len() > 1 && !sweep {
                format!("{}-latency", file_part(v))
            } else {
                "latency".to_string()
            };
            set.add(&charts_dir, &info.name, &stem, &title, |root| {
                draw_latency(root, &title, &series)
            });
        }
        if info.name == "c10k" {
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
                    &charts_dir,
                    &info.name,
                    "memory-per-connection",
                    &title,
                    |root| draw_bars(root, &title, &y_desc, &bars),
                );
            }
        }
    }
    set
}

impl ChartSet {
    /// Draws one chart as SVG and PNG; a failure is noted, not fatal.
    fn add<F>(&mut self, dir: &Path, scenario: &str, stem: &str, title: &str, draw: F)
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
            scenario: scenario.to_string(),
            title: title.to_string(),
            svg: format!("charts/{base}.svg"),
            png: png.is_ok().then(|| format!("charts/{base}.png")),
        });
    }
}

/// Either backend: the drawing code is written once, generic over it.
enum Area<'a> {
    Svg(DrawingArea<SVGBackend<'a>, Shift>),
    Png(DrawingArea<BitMapBackend<'a>, Shift>),
}

fn draw_throughput(
    area: &Area<'_>,
    title: &str,
    labels: &[String],
    series: &[Series],
) -> Result<(), String> {
    match area {
        Area::Svg(root) => throughput_on(root, title, labels, series),
        Area::Png(root) => throughput_on(root, title, labels, series),
    }
}

fn draw_latency(area: &Area<'_>, title: &str, series: &[Series]) -> Result<(), String> {
    match area {
        Area::Svg(root) => latency_on(root, title, series),
        Area::Png(root) => latency_on(root, title, series),
    }
}

fn draw_bars(
    area: &Area<'_>,
    title: &str,
    y_desc: &str,
    bars: &[(String, usize, bool, f64)],
) -> Result<(), String> {
    match area {
        Area::Svg(root) => bars_on(root, title, y_desc, bars),
        Area::Png(root) => bars_on(root, title, y_desc, bars),
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

fn colour(style: usize, baseline: bool) -> RGBColor {
    if baseline {
        return RGBColor(0, 0, 0);
    }
    let (r, g, b) = COLOURS[style % COLOURS.len()];
    RGBColor(r, g, b)
}

fn font(size: u32) -> TextStyle<'static> {
    (FAMILY, size).into_font().color(&BLACK)
}

/// A plotting area and the legend panel beside it.
type Split<DB> = (DrawingArea<DB, Shift>, DrawingArea<DB, Shift>);

/// Lays out the title, and splits off the legend panel on the right.
fn frame<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
) -> Result<Split<DB>, String> {
    root.fill(&WHITE).map_err(err)?;
    let root = root.titled(title, font(24)).map_err(err)?;
    let (w, _) = root.dim_in_pixel();
    Ok(root.split_horizontally(w.saturating_sub(LEGEND_WIDTH)))
}

fn legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    series: &[Series],
) -> Result<(), String> {
    let mut y = 40;
    for s in series {
        let c = colour(s.style, s.baseline);
        let line = ShapeStyle::from(&c).stroke_width(3);
        area.draw(&PathElement::new(vec![(8, y), (40, y)], line))
            .map_err(err)?;
        marker(area, (24, y), s, c)?;
        let label = if s.baseline {
            format!("{} (baseline)", s.name)
        } else {
            s.name.clone()
        };
        area.draw(&Text::new(label, (48, y - 9), font(16)))
            .map_err(err)?;
        y += 26;
    }
    Ok(())
}

/// The marker of a series, in pixel coordinates: circles for the first ten, then triangles,
/// then crosses (the baseline's too), so that repeated colours stay apart.
fn marker<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    at: (i32, i32),
    s: &Series,
    c: RGBColor,
) -> Result<(), String> {
    let fill = c.filled();
    let shape = if s.baseline {
        2
    } else {
        (s.style / COLOURS.len()) % 3
    };
    match shape {
        0 => area.draw(&Circle::new(at, 5, fill)),
        1 => area.draw(&TriangleMarker::new(at, 6, fill)),
        _ => area.draw(&Cross::new(at, 5, ShapeStyle::from(&c).stroke_width(2))),
    }
    .map_err(err)
}

fn throughput_on<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    labels: &[String],
    series: &[Series],
) -> Result<(), String> {
    let (plot, side) = frame(root, title)?;
    let ymax = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .fold(0.0, f64::max)
        .max(1.0)
        * 1.1;
    let n = labels.len();
    let mut chart = ChartBuilder::on(&plot)
        .margin(16)
        .x_label_area_size(56)
        .y_label_area_size(90)
        .build_cartesian_2d(-0.25f64..(n as f64 - 0.75), 0f64..ymax)
        .map_err(err)?;
    let keys: Vec<f64> = (0..n).map(|i| i as f64).collect();
    let x_fmt = |x: &f64| {
        let i = x.round();
        if (x - i).abs() < 1e-6 && i >= 0.0 {
            labels.get(i as usize).cloned().unwrap_or_default()
        } else {
            String::new()
        }
    };
    chart
        .configure_mesh()
        .x_labels(n)
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&|y| short_number(*y))
        .x_desc("concurrent keep-alive connections")
        .y_desc("requests per second")
        .axis_desc_style(font(18))
        .label_style(font(15))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(err)?;
    // The key points are drawn as faint verticals so each sweep point lines up with its label.
    for k in keys {
        chart
            .draw_series(LineSeries::new(
                vec![(k, 0.0), (k, ymax)],
                RGBColor(220, 220, 220),
            ))
            .map_err(err)?;
    }
    draw_series(&mut chart, series)?;
    legend(&side, series)
}

fn latency_on<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    series: &[Series],
) -> Result<(), String> {
    let (plot, side) = frame(root, title)?;
    let all = series.iter().flat_map(|s| s.points.iter());
    let (lo, hi, xmax) = all.fold((f64::MAX, 0.0f64, 1.0f64), |(lo, hi, xm), p| {
        (lo.min(p.1), hi.max(p.1), xm.max(p.0))
    });
    // The y axis is log10 of milliseconds, drawn on a linear scale: plotters' own log axis
    // labels only powers of ten, and a reader needs the 2s and 5s in between.
    let lo = (lo.max(0.001) / 1.3).log10();
    let hi = (hi * 1.3).log10().max(lo + 1.0);
    // Whole nines on the x axis: the minimum, 90%, 99%, 99.9%... up to what was measured.
    let nines = xmax.clamp(1.0, 5.0).ceil();
    let mut chart = ChartBuilder::on(&plot)
        .margin(16)
        .x_label_area_size(56)
        .y_label_area_size(90)
        .build_cartesian_2d(0f64..nines, lo..hi)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_labels(nines as usize + 1)
        .x_label_formatter(&|x| {
            let whole = x.round();
            if (x - whole).abs() > 1e-6 {
                return String::new();
            }
            if whole == 0.0 {
                return "min".to_string();
            }
            let q = 100.0 * (1.0 - 10f64.powf(-whole));
            let text = format!("{q:.4}");
            format!("{}%", text.trim_end_matches('0').trim_end_matches('.'))
        })
        .disable_y_mesh()
        .y_labels(0)
        .x_desc("percentile")
        .y_desc("latency (log scale)")
        .axis_desc_style(font(18))
        .label_style(font(15))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(err)?;
    log_grid(&mut chart, root, lo, hi, 0.0, nines, &format_ms)?;
    let logged: Vec<Series> = series
        .iter()
        .map(|s| Series {
            name: s.name.clone(),
            style: s.style,
            baseline: s.baseline,
            points: s.points.iter().map(|&(x, ms)| (x, ms.log10())).collect(),
        })
        .collect();
    draw_series(&mut chart, &logged)?;
    legend(&side, series)
}

fn draw_series<DB, X, Y>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<X, Y>>,
    series: &[Series],
) -> Result<(), String>
where
    DB: DrawingBackend,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    for s in series {
        let c = colour(s.style, s.baseline);
        let line = ShapeStyle::from(&c).stroke_width(2);
        if s.baseline {
            chart
                .draw_series(DashedLineSeries::new(s.points.iter().copied(), 10, 6, line))
                .map_err(err)?;
        } else {
            chart
                .draw_series(LineSeries::new(s.points.iter().copied(), line))
                .map_err(err)?;
        }
        let shape = if s.baseline {
            2
        } else {
            (s.style / COLOURS.len()) % 3
        };
        let fill = c.filled();
        // Markers only where there are few points (the sweep); a spectrum is a smooth curve.
        if s.points.len() <= 12 {
            match shape {
                0 => chart
                    .draw_series(s.points.iter().map(|p| Circle::new(*p, 5, fill)))
                    .map(|_| ()),
                1 => chart
                    .draw_series(s.points.iter().map(|p| TriangleMarker::new(*p, 6, fill)))
                    .map(|_| ()),
                _ => chart
                    .draw_series(
                        s.points
                            .iter()
                            .map(|p| Cross::new(*p, 5, ShapeStyle::from(&c).stroke_width(2))),
                    )
                    .map(|_| ()),
            }
            .map_err(err)?;
        }
    }
    Ok(())
}

fn bars_on<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    y_desc: &str,
    bars: &[(String, usize, bool, f64)],
) -> Result<(), String> {
    root.fill(&WHITE).map_err(err)?;
    let area = root.titled(title, font(24)).map_err(err)?;
    let max = bars.iter().map(|b| b.3).fold(0.0, f64::max).max(0.1);
    let min = bars.iter().map(|b| b.3).fold(f64::MAX, f64::min).max(0.01);
    // A thread or process per connection costs a thousand times an event loop's buffer: on a
    // linear axis the small bars vanish, so a wide spread gets a log axis.
    let log = max / min > 30.0;
    let (lo, hi) = if log {
        ((min / 2.0).log10().floor(), (max * 3.0).log10())
    } else {
        (0.0, max * 1.2)
    };
    let y = |v: f64| {
        if log {
            v.max(10f64.powf(lo)).log10()
        } else {
            v
        }
    };
    let n = bars.len();
    // Bar i is centred on x = i: whole numbers carry the model names, nothing else is labelled.
    let mut chart = ChartBuilder::on(&area)
        .margin(16)
        .x_label_area_size(60)
        .y_label_area_size(90)
        .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), lo..hi)
        .map_err(err)?;
    let name_at = |x: &f64| {
        let i = x.round();
        if (x - i).abs() > 1e-6 || i < 0.0 {
            return String::new();
        }
        bars.get(i as usize)
            .map(|b| b.0.clone())
            .unwrap_or_default()
    };
    let whole = |v: &f64| format!("{v:.0}");
    let mut mesh = chart.configure_mesh();
    mesh.disable_x_mesh()
        .x_labels(n + 1)
        .x_label_formatter(&name_at)
        .x_desc("model")
        .y_desc(if log {
            format!("{y_desc} (log scale)")
        } else {
            y_desc.to_string()
        })
        .axis_desc_style(font(18))
        .label_style(font(15))
        .light_line_style(RGBColor(235, 235, 235));
    if log {
        mesh.disable_y_mesh().y_labels(0);
    } else {
        mesh.y_label_formatter(&whole);
    }
    mesh.draw().map_err(err)?;
    if log {
        log_grid(&mut chart, root, lo, hi, -0.5, n as f64 - 0.5, &|v| {
            format!("{v}")
        })?;
    }
    chart
        .draw_series(bars.iter().enumerate().map(|(i, b)| {
            let x = i as f64;
            Rectangle::new(
                [(x - 0.35, lo), (x + 0.35, y(b.3))],
                colour(b.1, b.2).filled(),
            )
        }))
        .map_err(err)?;
    chart
        .draw_series(bars.iter().enumerate().map(|(i, b)| {
            let label = if b.3 >= 10.0 {
                format!("{:.0}", b.3)
            } else {
                format!("{:.1}", b.3)
            };
            Text::new(
                label,
                (i as f64, y(b.3) + (hi - lo) * 0.02),
                font(15).pos(Pos::new(HPos::Center, VPos::Bottom)),
            )
        }))
        .map_err(err)?;
    Ok(())
}

/// Log paper on a chart whose y values are log10 of the data: a line at every 1..9 × 10^k,
/// darker at 1, 2 and 5, which carry labels (drawn on `root`, left of the plotting area).
fn log_grid<DB: DrawingBackend>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    root: &DrawingArea<DB, Shift>,
    lo: f64,
    hi: f64,
    x0: f64,
    x1: f64,
    label: &dyn Fn(f64) -> String,
) -> Result<(), String> {
    for decade in lo.floor() as i32..=hi.ceil() as i32 {
        for m in 1..=9 {
            let value = f64::from(m) * 10f64.powi(decade);
            let y = value.log10();
            if y < lo || y > hi {
                continue;
            }
            let labelled = matches!(m, 1 | 2 | 5);
            let grey = if m == 1 {
                200
            } else if labelled {
                225
            } else {
                242
            };
            chart
                .draw_series(LineSeries::new(
                    vec![(x0, y), (x1, y)],
                    RGBColor(grey, grey, grey),
                ))
                .map_err(err)?;
            if labelled {
                let (px, py) = chart.backend_coord(&(x0, y));
                root.draw(&Text::new(
                    label(value),
                    (px - 8, py),
                    font(15).pos(Pos::new(HPos::Right, VPos::Center)),
                ))
                .map_err(err)?;
            }
        }
    }
    Ok(())
}

/// Registers the first TrueType font found, once per process.
fn load_font() -> Result<(), String> {
    static LOADED: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    LOADED
        .get_or_init(|| {
            let candidates = std::env::var_os("ZOO_CHART_FONT")
                .map(PathBuf::from)
                .into_iter()
                .chain(FONT_PATHS.iter().map(PathBuf::from))
                .chain(fc_match());
            for path in candidates {
                let Ok(bytes) = std::fs::read(&path) else {
                    continue;
                };
                // plotters keeps fonts for the life of the process: the bytes must be too.
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                if plotters::style::register_font(FAMILY, FontStyle::Normal, bytes).is_ok() {
                    return Ok(path);
                }
            }
            Err(
                "no charts: no TrueType font found (install fonts-dejavu-core, or set \
                 ZOO_CHART_FONT=/path/to/font.ttf, then run `loadtest report DIR`)"
                    .to_string(),
            )
        })
        .as_ref()
        .map(|_| ())
        .map_err(Clone::clone)
}

/// What fontconfig would pick for sans-serif, if its command-line tool is here.
fn fc_match() -> Option<PathBuf> {
    let out = std::process::Command::new("fc-match")
        .args(["--format=%{file}", "sans-serif"])
        .output()
        .ok()?;
    let path = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
    let ttf = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("ttf") || e.eq_ignore_ascii_case("otf"));
    ttf.then_some(path)
}

fn err<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// `950`, `12k`, `1.5M`.
pub(crate) fn short_number(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if v >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if v >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

/// A latency axis label from milliseconds: `50us`, `1ms`, `2.5s`.
pub(crate) fn format_ms(ms: f64) -> String {
    if ms < 1.0 {
        format!("{:.0}us", ms * 1000.0)
    } else if ms < 1000.0 {
        let s = format!("{ms:.1}");
        format!("{}ms", s.trim_end_matches('0').trim_end_matches('.'))
    } else {
        let s = format!("{:.1}", ms / 1000.0);
        format!("{}s", s.trim_end_matches('0').trim_end_matches('.'))
    }
}

pub(crate) fn file_part(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_labels_are_short() {
        assert_eq!(short_number(950.0), "950");
        assert_eq!(short_number(1500.0), "1.5k");
        assert_eq!(short_number(45_000.0), "45k");
        assert_eq!(short_number(2_500_000.0), "2.5M");
        assert_eq!(format_ms(0.05), "50us");
        assert_eq!(format_ms(1.0), "1ms");
        assert_eq!(format_ms(2.5), "2.5ms");
        assert_eq!(format_ms(2500.0), "2.5s");
        assert_eq!(format_ms(1000.0), "1s");
    }
}
