//! `report.html`: report.md as one page to explore, written next to it from the same
//! `results.json`. One self-contained file: styles and script inline, charts as inline SVG
//! drawn here, nothing fetched when it is opened. With JavaScript off every table and chart is
//! there (and each point's value in its `<title>`); with it, legend entries and family buttons
//! show and hide series on every chart (the anatomy's legend, of kinds, the segments of its
//! stacked bars), a point's value follows the pointer, and tables sort by any column with the
//! baseline rows pinned on top.
//!
//! - [`styles`]: each target's colour, marker and dash, and its family.
//! - [`plots`]: the charts as data, with each point's tooltip.
//! - [`svg`]: a chart drawn as SVG.
//! - [`body`]: report.md turned into HTML: sortable tables, charts in place of images.

mod body;
mod plots;
mod styles;
mod svg;

use crate::compare::charts::{Chart, ChartSet};
use crate::compare::results::Results;
use maud::{html, PreEscaped, DOCTYPE};
use std::path::{Path, PathBuf};
use styles::Styles;

/// The page's style sheet.
const CSS: &str = include_str!("report.css");
/// The page's script: toggles, tooltips, sorting.
const JS: &str = include_str!("report.js");

/// Writes `dir/report.html`.
pub fn write(dir: &Path, results: &Results) -> Result<PathBuf, String> {
    let path = dir.join("report.html");
    std::fs::write(&path, render(results)).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

/// The whole page.
pub fn render(r: &Results) -> String {
    let styles = Styles::new(r);
    let plots = plots::plots(r);
    // report.md is rendered with a chart set of this page's charts, so its images stand
    // exactly where the charts belong, each linking to `chart:N`.
    let set = ChartSet {
        charts: plots
            .iter()
            .enumerate()
            .map(|(i, p)| Chart {
                scenario: p.scenario,
                title: p.title.clone(),
                svg: format!("{}{i}", body::CHART_SCHEME),
                png: None,
                anatomy: p.id.ends_with("-anatomy"),
                pair: p.pair.clone(),
            })
            .collect(),
        problems: Vec::new(),
    };
    let markdown = crate::compare::markdown::render(r, &set);
    let body = body::convert(&markdown, &plots, &styles);
    let families = styles.families();
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (body.title) }
                style { (PreEscaped(CSS)) }
            }
            body {
                div.toolbar hidden {
                    span.toolbar-label { "Show or hide:" }
                    @for f in &families {
                        button type="button" data-family=(f.key()) aria-pressed="true" {
                            (f.label())
                        }
                    }
                    button type="button" data-show-all="" { "show all" }
                    span.toolbar-hint {
                        "Click a legend entry to hide a series on every chart; click a column \
                         heading to sort."
                    }
                }
                (PreEscaped(&body.h1))
                @if !body.sections.is_empty() {
                    nav.contents {
                        "Contents: "
                        @for (i, (id, text)) in body.sections.iter().enumerate() {
                            @if i > 0 { " · " }
                            a href=(format!("#{id}")) { (text) }
                        }
                    }
                }
                main { (PreEscaped(body.html)) }
                div #tip role="tooltip" hidden {}
                script { (PreEscaped(JS)) }
            }
        }
    }
    .into_string()
}
