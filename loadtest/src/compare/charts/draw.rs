//! Drawing with plotters: the frame, legend, markers and axes of each kind of chart, written
//! once over both backends (SVG and PNG), and the font every chart's text is laid out with.

use super::Series;
use crate::format::{bar_label, format_ms, short_number};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::FontStyle;
use std::path::PathBuf;
use std::sync::OnceLock;

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

/// Either backend: the drawing code is written once, generic over it.
pub enum Area<'a> {
    Svg(DrawingArea<SVGBackend<'a>, Shift>),
    Png(DrawingArea<BitMapBackend<'a>, Shift>),
}

pub fn draw_throughput(
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

pub fn draw_latency(area: &Area<'_>, title: &str, series: &[Series]) -> Result<(), String> {
    match area {
        Area::Svg(root) => latency_on(root, title, series),
        Area::Png(root) => latency_on(root, title, series),
    }
}

pub fn draw_bars(
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

/// One bar of a stacked chart: its label and its segments from the bottom up, in the order of
/// the chart's segment names (the anatomy's kinds, each coloured by
/// [`kind_colour`](crate::compare::palette::kind_colour) of its place).
pub type Stack = (String, Vec<f64>);

pub fn draw_stacked(
    area: &Area<'_>,
    title: &str,
    y_desc: &str,
    names: &[&str],
    bars: &[Stack],
) -> Result<(), String> {
    match area {
        Area::Svg(root) => stacked_on(root, title, y_desc, names, bars),
        Area::Png(root) => stacked_on(root, title, y_desc, names, bars),
    }
}

fn colour(style: usize, baseline: bool) -> RGBColor {
    if baseline {
        return RGBColor(0, 0, 0);
    }
    let (r, g, b) = crate::compare::palette::rgb(style);
    RGBColor(r, g, b)
}

/// The colour of a stacked bar's `k`th segment: the anatomy's kind `k`, as report.html has it.
fn segment_colour(k: usize) -> RGBColor {
    let (r, g, b) = crate::compare::palette::kind_rgb(k);
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

/// The marker of a series, in pixel coordinates: circle, triangle and cross in turn (the
/// baseline's is a cross), beside a colour of its own.
fn marker<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    at: (i32, i32),
    s: &Series,
    c: RGBColor,
) -> Result<(), String> {
    let fill = c.filled();
    let shape = if s.baseline { 2 } else { s.style % 3 };
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
        let shape = if s.baseline { 2 } else { s.style % 3 };
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
            let label = bar_label(b.3);
            Text::new(
                label,
                (i as f64, y(b.3) + (hi - lo) * 0.02),
                font(15).pos(Pos::new(HPos::Center, VPos::Bottom)),
            )
        }))
        .map_err(err)?;
    Ok(())
}

/// Bars of segments, a colour per segment name (listed in the legend), the total on top.
fn stacked_on<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    y_desc: &str,
    names: &[&str],
    bars: &[Stack],
) -> Result<(), String> {
    let (area, legend_area) = frame(root, title)?;
    let total = |b: &Stack| b.1.iter().sum::<f64>();
    let hi = bars.iter().map(total).fold(0.0, f64::max).max(0.1) * 1.15;
    let n = bars.len();
    let mut chart = ChartBuilder::on(&area)
        .margin(16)
        .x_label_area_size(60)
        .y_label_area_size(70)
        .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), 0f64..hi)
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
    let tenth = |v: &f64| format!("{v:.1}");
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n + 1)
        .x_label_formatter(&name_at)
        .y_label_formatter(&tenth)
        .x_desc("model")
        .y_desc(y_desc)
        .axis_desc_style(font(18))
        .label_style(font(15))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(err)?;
    for (i, (_, segments)) in bars.iter().enumerate() {
        let x = i as f64;
        let mut bottom = 0.0;
        for (k, v) in segments.iter().enumerate() {
            if *v > 0.0 {
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(x - 0.35, bottom), (x + 0.35, bottom + v)],
                        segment_colour(k).filled(),
                    )))
                    .map_err(err)?;
            }
            bottom += v;
        }
    }
    chart
        .draw_series(bars.iter().enumerate().map(|(i, b)| {
            Text::new(
                format!("{:.2}", total(b)),
                (i as f64, total(b) + hi * 0.01),
                font(15).pos(Pos::new(HPos::Center, VPos::Bottom)),
            )
        }))
        .map_err(err)?;
    // The legend lists the segments from the top of a bar down, as they are stacked.
    let mut y = 40;
    for (k, name) in names.iter().enumerate().rev() {
        legend_area
            .draw(&Rectangle::new(
                [(10, y - 8), (34, y + 8)],
                segment_colour(k).filled(),
            ))
            .map_err(err)?;
        legend_area
            .draw(&Text::new(name.to_string(), (48, y - 9), font(16)))
            .map_err(err)?;
        y += 26;
    }
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
pub fn load_font() -> Result<(), String> {
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

pub fn err<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}
