//! A [`Plot`] drawn as inline SVG, on the server: the chart shows with JavaScript off, scales
//! with its `viewBox`, and every point carries a `<title>` (the browser's own tooltip; the page
//! script turns them into its own). Each target's marks sit in one `<g class="series">` keyed by
//! `data-series`, and each chart has a legend of the same keys, which the script makes buttons.
//!
//! Every SVG element is written with a closing tag: the HTML parser does not treat `<line>` as
//! empty inside `<svg>`.

use super::plots::{Plot, Point, Scale, Shape, Unit};
use super::styles::{Family, Style, Styles};
use crate::format::{format_ms, short_number};
use maud::{html, Markup};

/// Width of every chart's viewBox.
const WIDTH: f64 = 1000.0;
/// The plotting area's left and right edges, and its top.
const LEFT: f64 = 86.0;
const RIGHT: f64 = 750.0;
const TOP: f64 = 50.0;
/// Room under the plotting area for the x labels and their words.
const BELOW: f64 = 70.0;
/// Where the legend's entries start, and the height of one.
const LEGEND_X: f64 = 772.0;
const LEGEND_ROW: f64 = 22.0;

/// The chart as an `<svg>` element.
pub fn render(p: &Plot, styles: &Styles) -> Markup {
    let height = (TOP + 20.0 + LEGEND_ROW * p.series.len() as f64).max(470.0);
    let frame = Frame {
        bottom: height - BELOW,
        plot: p,
    };
    let x_mid = (LEFT + RIGHT) / 2.0;
    let y_mid = (TOP + frame.bottom) / 2.0;
    html! {
        svg.chart id=(format!("chart-{}", p.id)) viewBox=(format!("0 0 {WIDTH} {height}"))
            xmlns="http://www.w3.org/2000/svg" aria-label=(p.title) data-scenario=(p.scenario) {
            text.chart-title x=(n(WIDTH / 2.0)) y="28" text-anchor="middle" { (p.title) }
            rect.plot-area x=(n(LEFT)) y=(n(TOP)) width=(n(RIGHT - LEFT))
                height=(n(frame.bottom - TOP)) {}
            @for (y, label) in y_ticks(p) {
                @let py = frame.y(y);
                line class=(if label.is_some() { "grid major" } else { "grid" }) x1=(n(LEFT))
                    x2=(n(RIGHT)) y1=(n(py)) y2=(n(py)) {}
                @if let Some(label) = label {
                    text.tick x=(n(LEFT - 8.0)) y=(n(py + 4.0)) text-anchor="end" { (label) }
                }
            }
            @for (x, label) in &p.x_ticks {
                @let px = frame.x(*x);
                @if p.shape == Shape::Lines {
                    line.grid x1=(n(px)) x2=(n(px)) y1=(n(TOP)) y2=(n(frame.bottom)) {}
                }
                text.tick x=(n(px)) y=(n(frame.bottom + 20.0)) text-anchor="middle" { (label) }
            }
            text.axis-label x=(n(x_mid)) y=(n(frame.bottom + 50.0)) text-anchor="middle" {
                (p.x_label)
            }
            text.axis-label x="22" y=(n(y_mid)) text-anchor="middle"
                transform=(format!("rotate(-90 22 {})", n(y_mid))) { (p.y_label) }
            @for s in &p.series {
                @let style = styles.of(&s.target);
                g.series data-series=(s.target) data-family=(style.family.key()) {
                    @match p.shape {
                        Shape::Lines => (line(&frame, &s.points, &style)),
                        Shape::Bars => (bars(&frame, &s.points, &style)),
                    }
                }
            }
            @for (i, s) in p.series.iter().enumerate() {
                @let style = styles.of(&s.target);
                @let y = TOP + 10.0 + LEGEND_ROW * i as f64;
                g.legend-entry data-series=(s.target) data-family=(style.family.key())
                    tabindex="0" role="button" aria-pressed="true" {
                    title { "show or hide " (s.target) " on every chart" }
                    rect.legend-hit x=(n(LEGEND_X - 4.0)) y=(n(y - 10.0)) width="224"
                        height=(n(LEGEND_ROW - 2.0)) {}
                    @if p.shape == Shape::Bars {
                        rect x=(n(LEGEND_X + 9.0)) y=(n(y - 7.0)) width="16" height="14"
                            fill=(style.colour) {}
                    } @else {
                        line x1=(n(LEGEND_X)) x2=(n(LEGEND_X + 34.0)) y1=(n(y)) y2=(n(y))
                            stroke=(style.colour) stroke-width="2.5"
                            stroke-dasharray=(style.dash) {}
                        (marker(LEGEND_X + 17.0, y, &style))
                    }
                    text.legend-label x=(n(LEGEND_X + 42.0)) y=(n(y + 4.5)) {
                        (s.target)
                        @if style.family == Family::Baseline { " (baseline)" }
                    }
                }
            }
        }
    }
}

/// Coordinates of one chart.
struct Frame<'a> {
    bottom: f64,
    plot: &'a Plot,
}

impl Frame<'_> {
    fn x(&self, x: f64) -> f64 {
        let (x0, x1) = self.plot.x_range;
        LEFT + (x - x0) / (x1 - x0).max(f64::EPSILON) * (RIGHT - LEFT)
    }

    fn y(&self, y: f64) -> f64 {
        let share = match self.plot.scale {
            Scale::Linear { max } => y / max.max(f64::EPSILON),
            Scale::Log { lo, hi } => (y.max(f64::MIN_POSITIVE).log10() - lo) / (hi - lo),
        };
        self.bottom - share.clamp(0.0, 1.0) * (self.bottom - TOP)
    }
}

fn line(frame: &Frame<'_>, points: &[Point], style: &Style) -> Markup {
    let mut d = String::new();
    for (i, p) in points.iter().enumerate() {
        let cmd = if i == 0 { 'M' } else { 'L' };
        d += &format!("{cmd}{},{} ", n(frame.x(p.x)), n(frame.y(p.y)));
    }
    html! {
        path.line d=(d.trim_end()) stroke=(style.colour) stroke-dasharray=(style.dash) {}
        @for p in points.iter().filter(|p| p.marked) {
            (marker(frame.x(p.x), frame.y(p.y), style))
        }
        @for p in points {
            circle.hit cx=(n(frame.x(p.x))) cy=(n(frame.y(p.y))) r="6" { title { (p.tip) } }
        }
    }
}

fn bars(frame: &Frame<'_>, points: &[Point], style: &Style) -> Markup {
    let (x0, x1) = frame.plot.x_range;
    let half = 0.35 / (x1 - x0).max(f64::EPSILON) * (RIGHT - LEFT);
    html! {
        @for p in points {
            @let top = frame.y(p.y);
            rect.bar x=(n(frame.x(p.x) - half)) y=(n(top)) width=(n(2.0 * half))
                height=(n(frame.bottom - top)) fill=(style.colour) { title { (p.tip) } }
            text.bar-value x=(n(frame.x(p.x))) y=(n(top - 6.0)) text-anchor="middle" {
                (if p.y >= 10.0 { format!("{:.0}", p.y) } else { format!("{:.1}", p.y) })
            }
        }
    }
}

fn marker(x: f64, y: f64, style: &Style) -> Markup {
    let (d, stroked) = style.marker.path();
    let at = format!("translate({} {})", n(x), n(y));
    html! {
        @if stroked {
            path.marker d=(d) transform=(at) fill="none" stroke=(style.colour) stroke-width="2" {}
        } @else {
            path.marker d=(d) transform=(at) fill=(style.colour) {}
        }
    }
}

/// Grid lines of the y axis, labelled or not: a linear axis every 1, 2 or 5 × 10^k; a log axis
/// at every 1..9 × 10^k, labelled at 1, 2 and 5.
fn y_ticks(p: &Plot) -> Vec<(f64, Option<String>)> {
    let label = |v: f64| match p.unit {
        Unit::Rps => short_number(v),
        Unit::Ms => format_ms(v),
        Unit::Kib | Unit::Syscalls => {
            let s = format!("{v:.2}");
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        }
    };
    match p.scale {
        Scale::Linear { max } => {
            let raw = max / 5.0;
            let magnitude = 10f64.powf(raw.log10().floor());
            let step = [1.0, 2.0, 5.0, 10.0]
                .into_iter()
                .map(|m| m * magnitude)
                .find(|s| *s >= raw)
                .unwrap_or(raw);
            (0..)
                .map(|i| f64::from(i) * step)
                .take_while(|v| *v <= max)
                .map(|v| (v, Some(label(v))))
                .collect()
        }
        Scale::Log { lo, hi } => {
            let mut out = Vec::new();
            for decade in lo.floor() as i32..=hi.ceil() as i32 {
                for m in 1..=9 {
                    let v = f64::from(m) * 10f64.powi(decade);
                    if (lo..=hi).contains(&v.log10()) {
                        out.push((v, matches!(m, 1 | 2 | 5).then(|| label(v))));
                    }
                }
            }
            out
        }
    }
}

/// A coordinate with one decimal, as short as it goes.
fn n(v: f64) -> String {
    let s = format!("{v:.1}");
    s.strip_suffix(".0").map(str::to_string).unwrap_or(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plot(scale: Scale, unit: Unit) -> Plot {
        Plot {
            id: "x".into(),
            scenario: crate::compare::scenario::Scenario::Plaintext,
            title: "x".into(),
            x_label: String::new(),
            y_label: String::new(),
            x_range: (0.0, 1.0),
            x_ticks: Vec::new(),
            scale,
            unit,
            shape: Shape::Lines,
            series: Vec::new(),
            pair: None,
        }
    }

    #[test]
    fn axes_step_by_one_two_five() {
        let linear = y_ticks(&plot(Scale::Linear { max: 91_000.0 }, Unit::Rps));
        let labels: Vec<String> = linear.into_iter().filter_map(|t| t.1).collect();
        assert_eq!(labels, ["0", "20k", "40k", "60k", "80k"]);
        // 0.25 ms to 32 ms: every 1..9 × 10^k drawn, the 1s, 2s and 5s labelled.
        let log = y_ticks(&plot(Scale::Log { lo: -0.6, hi: 1.5 }, Unit::Ms));
        let labels: Vec<String> = log.iter().filter_map(|t| t.1.clone()).collect();
        assert_eq!(labels, ["500us", "1ms", "2ms", "5ms", "10ms", "20ms"]);
        assert_eq!(log.len(), 7 + 9 + 3);
    }

    #[test]
    fn coordinates_are_short() {
        assert_eq!(n(12.0), "12");
        assert_eq!(n(12.34), "12.3");
    }
}
