//! A [`Plot`] drawn as inline SVG, on the server: the chart shows with JavaScript off, scales
//! with its `viewBox`, and every point carries a `<title>` (the browser's own tooltip; the page
//! script turns them into its own). Each target's marks sit in one `<g class="series">` keyed by
//! `data-series`, and each chart has a legend of the same keys, which the script makes buttons.
//! A stacked chart's legend lists its layers instead, keyed by `data-kind` as their segments
//! are; each bar is a `<g class="stack">` of segments, bottom up, and its total.
//!
//! Every SVG element is written with a closing tag: the HTML parser does not treat `<line>` as
//! empty inside `<svg>`.

use super::plots::{Layer, Plot, Point, Scale, Segment, Shape, Unit};
use super::styles::{Family, Style, Styles};
use crate::format::{bar_label, format_ms, short_number};
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
    let rows = match &p.shape {
        Shape::Lines | Shape::Bars => p.series.len(),
        Shape::Stacked { layers } => layers.len(),
    };
    let height = (TOP + 20.0 + LEGEND_ROW * rows as f64).max(470.0);
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
                    @match &p.shape {
                        Shape::Lines => (line(&frame, &s.points, &style)),
                        Shape::Bars => (bars(&frame, &s.points, &style)),
                        Shape::Stacked { layers } => (stacks(&frame, &s.points, layers)),
                    }
                }
            }
            @match &p.shape {
                Shape::Lines | Shape::Bars => (series_legend(p, styles)),
                Shape::Stacked { layers } => (layer_legend(layers)),
            }
        }
    }
}

/// A legend entry per series: a button that shows or hides that target on every chart.
fn series_legend(p: &Plot, styles: &Styles) -> Markup {
    html! {
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

/// A legend entry per layer, the top one first as the bars stack them: a button that shows or
/// hides that layer's segments, the rest of each bar closing up.
fn layer_legend(layers: &[Layer]) -> Markup {
    html! {
        @for (i, layer) in layers.iter().rev().enumerate() {
            @let y = TOP + 10.0 + LEGEND_ROW * i as f64;
            g.legend-entry data-kind=(layer.name) tabindex="0" role="button" aria-pressed="true" {
                title { "show or hide " (layer.name) " in the bars" }
                rect.legend-hit x=(n(LEGEND_X - 4.0)) y=(n(y - 10.0)) width="224"
                    height=(n(LEGEND_ROW - 2.0)) {}
                rect x=(n(LEGEND_X + 9.0)) y=(n(y - 7.0)) width="16" height="14"
                    fill=(layer.colour) {}
                text.legend-label x=(n(LEGEND_X + 42.0)) y=(n(y + 4.5)) { (layer.name) }
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

/// Half a bar's width: bars 0.7 of an x unit wide, as the PNG draws them.
fn bar_half(frame: &Frame<'_>) -> f64 {
    let (x0, x1) = frame.plot.x_range;
    0.35 / (x1 - x0).max(f64::EPSILON) * (RIGHT - LEFT)
}

fn bars(frame: &Frame<'_>, points: &[Point], style: &Style) -> Markup {
    let half = bar_half(frame);
    html! {
        @for p in points {
            @let top = frame.y(p.y);
            rect.bar x=(n(frame.x(p.x) - half)) y=(n(top)) width=(n(2.0 * half))
                height=(n(frame.bottom - top)) fill=(style.colour) { title { (p.tip) } }
            text.bar-value x=(n(frame.x(p.x))) y=(n(top - 6.0)) text-anchor="middle" {
                (bar_label(p.y))
            }
        }
    }
}

/// Each point's segments stacked from the axis up, in its layer's colour, the total on top. The
/// script reads `data-bottom` and the segments' heights to close a bar up when a layer is hidden,
/// and `data-v` to say what is left.
fn stacks(frame: &Frame<'_>, points: &[Point], layers: &[Layer]) -> Markup {
    let half = bar_half(frame);
    html! {
        @for p in points {
            @let spans = segment_spans(frame, &p.segments);
            @let top = spans.last().map_or(frame.bottom, |s| s.0);
            g.stack data-bottom=(n(frame.bottom)) {
                @for (s, (y, height)) in p.segments.iter().zip(spans) {
                    @if let Some(layer) = layers.get(s.layer) {
                        rect.bar.segment data-kind=(layer.name) data-v=(s.y)
                            x=(n(frame.x(p.x) - half)) y=(n(y)) width=(n(2.0 * half))
                            height=(n(height)) fill=(layer.colour) { title { (s.tip) } }
                    }
                }
                text.bar-value.stack-total x=(n(frame.x(p.x))) y=(n(top - 6.0))
                    text-anchor="middle" { title { (p.tip) } (bar_label(p.y)) }
            }
        }
    }
}

/// The top and height of each segment, bottom up. Both come from the edges between segments,
/// each rounded once as it is written, so the segments tile the bar without a gap and their
/// heights add up to the whole bar's.
fn segment_spans(frame: &Frame<'_>, segments: &[Segment]) -> Vec<(f64, f64)> {
    let round = |v: f64| (v * 10.0).round() / 10.0;
    let mut below = round(frame.bottom);
    let mut sum = 0.0;
    segments
        .iter()
        .map(|s| {
            sum += s.y;
            let top = round(frame.y(sum));
            let span = (top, below - top);
            below = top;
            span
        })
        .collect()
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

    /// The value of attribute `name` in the element that starts `tag`.
    fn attr<'a>(tag: &'a str, name: &str) -> &'a str {
        let key = format!(" {name}=\"");
        let at = tag
            .find(&key)
            .unwrap_or_else(|| panic!("no {name} in {tag}"))
            + key.len();
        let len = tag[at..].find('"').expect("a closing quote");
        &tag[at..at + len]
    }

    /// The opening tags of the elements of class `class`.
    fn tags<'a>(svg: &'a str, class: &str) -> Vec<&'a str> {
        let open = format!("class=\"{class}\"");
        svg.match_indices(&open)
            .map(|(at, _)| {
                let start = svg[..at].rfind('<').expect("an element");
                let end = at + svg[at..].find('>').expect("a tag end");
                &svg[start..end]
            })
            .collect()
    }

    #[test]
    fn stacked_segments_tile_their_bar() {
        let layers: Vec<Layer> = ["read", "write", "futex"]
            .into_iter()
            .enumerate()
            .map(|(k, name)| Layer {
                name: name.to_string(),
                colour: crate::compare::palette::kind_colour(k),
            })
            .collect();
        let segment = |layer: usize, y: f64| Segment {
            layer,
            y,
            tip: format!("m · {} · {y}", layers[layer].name),
        };
        let mut p = plot(Scale::Linear { max: 3.0 }, Unit::Syscalls);
        p.x_range = (-0.5, 0.5);
        p.shape = Shape::Stacked {
            layers: layers.clone(),
        };
        // A tiny segment between two tall ones: each edge is rounded once, so none drifts.
        let segments = vec![segment(0, 1.0), segment(1, 0.004), segment(2, 1.2)];
        p.series = vec![super::super::plots::Series {
            target: "m".into(),
            points: vec![Point {
                x: 0.0,
                y: 2.204,
                tip: "m · 2.20 in all".into(),
                marked: false,
                segments,
            }],
        }];
        let svg = render(&p, &Styles::of_targets(&[])).into_string();
        let frame = Frame {
            bottom: 470.0 - BELOW,
            plot: &p,
        };
        let rects = tags(&svg, "bar segment");
        let kinds: Vec<&str> = rects.iter().map(|r| attr(r, "data-kind")).collect();
        assert_eq!(kinds, ["read", "write", "futex"], "{svg}");
        let mut below = frame.bottom;
        let mut heights = 0.0;
        for (r, layer) in rects.iter().zip(&layers) {
            let y: f64 = attr(r, "y").parse().expect("a number");
            let h: f64 = attr(r, "height").parse().expect("a number");
            assert!((y + h - below).abs() < 1e-6, "a gap under {r}");
            assert_eq!(attr(r, "fill"), layer.colour);
            below = y;
            heights += h;
        }
        let whole = frame.bottom - frame.y(2.204);
        assert!((heights - whole).abs() <= 0.1, "{heights} against {whole}");
        assert!(svg.contains("<title>m · write · 0.004</title>"), "{svg}");
        assert!(
            svg.contains("<title>m · 2.20 in all</title>2.2</text>"),
            "{svg}"
        );
        // The legend names the layers, the top one first, and no target.
        let legend: Vec<&str> = tags(&svg, "legend-entry")
            .iter()
            .map(|e| attr(e, "data-kind"))
            .collect();
        assert_eq!(legend, ["futex", "write", "read"]);
        assert!(!svg.contains("legend-entry\" data-series"), "{svg}");
        assert!(
            svg.contains("<g class=\"series\" data-series=\"m\""),
            "{svg}"
        );
    }

    #[test]
    fn coordinates_are_short() {
        assert_eq!(n(12.0), "12");
        assert_eq!(n(12.34), "12.3");
    }
}
