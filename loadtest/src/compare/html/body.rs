//! report.md turned into the body of report.html, whatever sections it has: headings get ids
//! (and the h2s make the contents), paragraphs, lists and quotes pass through pulldown-cmark's
//! writer, each table becomes a sortable one, and each chart image becomes its inline SVG.
//!
//! Everything in report.md is text: raw HTML in it (a failure's reason could hold anything a
//! server printed) is escaped, not passed through.

use super::plots::Plot;
use super::styles::Styles;
use super::svg;
use pulldown_cmark::{html::push_html, Event, HeadingLevel, Options, Parser, Tag, TagEnd};
use std::collections::HashSet;
use std::fmt::Write as _;

/// Where report.md's image links point for the chart with index N: `chart:N`.
pub const CHART_SCHEME: &str = "chart:";

/// The body, and what the page around it needs.
pub struct Body {
    /// The HTML.
    pub html: String,
    /// The text of the first h1.
    pub title: String,
    /// The first h1 as HTML, left out of `html` for the page to place above its contents.
    pub h1: String,
    /// The h2s: id and text.
    pub sections: Vec<(String, String)>,
}

/// Converts `markdown`; `plots[N]` replaces the image whose link is `chart:N`.
pub fn convert(markdown: &str, plots: &[Plot], styles: &Styles) -> Body {
    let mut w = Writer {
        out: String::new(),
        plots,
        styles,
        ids: HashSet::new(),
        section: String::new(),
        title: String::new(),
        h1: String::new(),
        sections: Vec::new(),
    };
    let events: Vec<Event<'_>> = Parser::new_ext(markdown, Options::ENABLE_TABLES)
        .map(text_only)
        .collect();
    let mut plain: Vec<Event<'_>> = Vec::new();
    let mut i = 0;
    while i < events.len() {
        let end = match &events[i] {
            Event::Start(Tag::Heading { .. }) => matching_end(&events, i),
            Event::Start(Tag::Table(_)) => matching_end(&events, i),
            Event::Start(Tag::Paragraph) if lone_image(&events, i).is_some() => {
                matching_end(&events, i)
            }
            _ => {
                plain.push(events[i].clone());
                i += 1;
                continue;
            }
        };
        push_html(&mut w.out, plain.drain(..));
        let block = &events[i..=end];
        match &events[i] {
            Event::Start(Tag::Heading { level, .. }) => w.heading(*level, block),
            Event::Start(Tag::Table(_)) => w.table(block),
            _ => w.figure(lone_image(&events, i).unwrap_or_default(), block),
        }
        i = end + 1;
    }
    push_html(&mut w.out, plain.into_iter());
    Body {
        html: w.out,
        title: w.title,
        h1: w.h1,
        sections: w.sections,
    }
}

/// Raw HTML becomes text (escaped when written); an image not alone in its paragraph becomes
/// its alt text.
fn text_only(e: Event<'_>) -> Event<'_> {
    match e {
        Event::Html(s) | Event::InlineHtml(s) => Event::Text(s),
        other => other,
    }
}

/// The index of the event that closes the one opened at `start`.
fn matching_end(events: &[Event<'_>], start: usize) -> usize {
    let mut depth = 0usize;
    for (i, e) in events.iter().enumerate().skip(start) {
        match e {
            Event::Start(_) => depth += 1,
            Event::End(_) => {
                depth -= 1;
                if depth == 0 {
                    return i;
                }
            }
            _ => {}
        }
    }
    events.len() - 1
}

/// The link of the image a paragraph at `start` holds alone, if it does.
fn lone_image(events: &[Event<'_>], start: usize) -> Option<String> {
    let Some(Event::Start(Tag::Image { dest_url, .. })) = events.get(start + 1) else {
        return None;
    };
    let image_end = matching_end(events, start + 1);
    matches!(
        events.get(image_end + 1),
        Some(Event::End(TagEnd::Paragraph))
    )
    .then(|| dest_url.to_string())
}

/// The text of a run of events, markup dropped.
fn plain_text(events: &[Event<'_>]) -> String {
    let mut s = String::new();
    for e in events {
        match e {
            Event::Text(t) | Event::Code(t) => s += t,
            Event::SoftBreak | Event::HardBreak => s.push(' '),
            _ => {}
        }
    }
    s
}

/// Inline events as HTML; images inside become their alt text.
fn inline_html(events: &[Event<'_>]) -> String {
    let mut out = String::new();
    let mut in_image = 0;
    let kept = events.iter().filter_map(|e| match e {
        Event::Start(Tag::Image { .. }) => {
            in_image += 1;
            None
        }
        Event::End(TagEnd::Image) => {
            in_image -= 1;
            None
        }
        e if in_image > 0 => match e {
            Event::Text(t) => Some(Event::Text(t.clone())),
            _ => None,
        },
        e => Some(e.clone()),
    });
    push_html(&mut out, kept);
    out
}

/// An id from words: lower case letters, digits and dashes.
pub fn slug(text: &str) -> String {
    let mut s = String::new();
    for c in text.trim().chars() {
        if c.is_alphanumeric() {
            s.extend(c.to_lowercase());
        } else if !s.ends_with('-') {
            s.push('-');
        }
    }
    let s = s.trim_matches('-').to_string();
    if s.is_empty() {
        "section".into()
    } else {
        s
    }
}

struct Writer<'a> {
    out: String,
    plots: &'a [Plot],
    styles: &'a Styles,
    ids: HashSet<String>,
    /// The slug of the h2 the writer is in: the tables below it take their id from it.
    section: String,
    title: String,
    h1: String,
    sections: Vec<(String, String)>,
}

impl Writer<'_> {
    /// `base`, or `base-2`, `base-3`... if it is taken.
    fn unique(&mut self, base: &str) -> String {
        let mut id = base.to_string();
        let mut n = 1;
        while !self.ids.insert(id.clone()) {
            n += 1;
            id = format!("{base}-{n}");
        }
        id
    }

    fn heading(&mut self, level: HeadingLevel, block: &[Event<'_>]) {
        let inner = &block[1..block.len() - 1];
        let text = plain_text(inner);
        let slug = slug(&text);
        let id = self.unique(&format!("sec-{slug}"));
        let html = format!("<{level} id=\"{id}\">{}</{level}>\n", inline_html(inner));
        match level {
            HeadingLevel::H1 if self.title.is_empty() => {
                self.title = text;
                self.h1 = html;
                return;
            }
            HeadingLevel::H2 => {
                self.section = slug;
                self.sections.push((id.clone(), text));
            }
            _ => {}
        }
        self.out += &html;
    }

    fn figure(&mut self, link: String, block: &[Event<'_>]) {
        let plot = link
            .strip_prefix(CHART_SCHEME)
            .and_then(|i| i.parse::<usize>().ok())
            .and_then(|i| self.plots.get(i));
        let Some(plot) = plot else {
            // No chart of this page: what the image says, as text.
            let _ = writeln!(
                self.out,
                "<p>{}</p>",
                inline_html(&block[1..block.len() - 1])
            );
            return;
        };
        let table = format!("table-{}", slug(&plot.scenario.to_string()));
        let markup = maud::html! {
            figure.chart-figure {
                (svg::render(plot, self.styles))
                figcaption {
                    a href=(format!("#{table}")) { "to the " (plot.scenario) " table" }
                }
            }
        };
        self.out += &markup.into_string();
        self.out.push('\n');
    }

    fn table(&mut self, block: &[Event<'_>]) {
        let base = if self.section.is_empty() {
            "table".to_string()
        } else {
            format!("table-{}", self.section)
        };
        let id = self.unique(&base);
        let mut head: Vec<Cell> = Vec::new();
        let mut rows: Vec<Vec<Cell>> = Vec::new();
        let mut in_head = false;
        let mut i = 1;
        while i < block.len() - 1 {
            match &block[i] {
                Event::Start(Tag::TableHead) => in_head = true,
                Event::End(TagEnd::TableHead) => in_head = false,
                Event::Start(Tag::TableRow) => rows.push(Vec::new()),
                Event::Start(Tag::TableCell) => {
                    let end = matching_end(block, i);
                    let inner = &block[i + 1..end];
                    let cell = Cell {
                        html: inline_html(inner),
                        text: plain_text(inner).trim().to_string(),
                    };
                    match rows.last_mut() {
                        Some(row) if !in_head => row.push(cell),
                        _ => head.push(cell),
                    }
                    i = end;
                }
                _ => {}
            }
            i += 1;
        }
        let _ = writeln!(
            self.out,
            "<div class=\"table-wrap\"><table class=\"data sortable\" id=\"{id}\">"
        );
        self.out += "<thead><tr>";
        for h in &head {
            let _ = write!(self.out, "<th scope=\"col\">{}</th>", h.html);
        }
        self.out += "</tr></thead>\n<tbody>\n";
        for row in &rows {
            let first = row.first().map_or("", |c| c.text.as_str());
            let mut classes = Vec::new();
            if first.ends_with("(baseline)") {
                classes.push("baseline");
            }
            if row.iter().any(|c| c.failed()) {
                classes.push("failed");
            }
            if row.iter().any(|c| c.text.starts_with('✗')) {
                classes.push("disagrees");
            }
            if classes.is_empty() {
                self.out += "<tr>";
            } else {
                let _ = write!(self.out, "<tr class=\"{}\">", classes.join(" "));
            }
            for c in row {
                let class = if c.failed() {
                    " class=\"bad\""
                } else if c.text.starts_with('✗') {
                    " class=\"disagree\""
                } else {
                    ""
                };
                match sort_value(&c.text) {
                    Some(v) => {
                        let _ = write!(self.out, "<td{class} data-v=\"{v}\">{}</td>", c.html);
                    }
                    None => {
                        let _ = write!(self.out, "<td{class}>{}</td>", c.html);
                    }
                }
            }
            self.out += "</tr>\n";
        }
        self.out += "</tbody></table></div>\n";
    }
}

/// One table cell: as HTML, and as text for the sort and the marks.
struct Cell {
    html: String,
    text: String,
}

impl Cell {
    /// Marked failed or skipped in the markdown (`**failed**`, `12 (failed)`, `skipped`).
    fn failed(&self) -> bool {
        self.text == "failed" || self.text == "skipped" || self.text.ends_with("(failed)")
    }
}

/// The number a cell sorts by, units folded in: times in microseconds, memory in KiB; a cell
/// with no leading number (`—`, a name) has none and sorts last.
pub fn sort_value(text: &str) -> Option<f64> {
    let t = text.trim().trim_start_matches(['~', '✗']).trim_start();
    let end = t
        .find(|c: char| !(c.is_ascii_digit() || c == ',' || c == '.'))
        .unwrap_or(t.len());
    let number: f64 = t[..end].replace(',', "").parse().ok()?;
    let unit = t[end..]
        .trim_start()
        .split(|c: char| c.is_whitespace() || c == '[' || c == '(')
        .next()
        .unwrap_or_default();
    let factor = match unit {
        "ms" => 1e3,
        "s" => 1e6,
        "B" => 1.0 / 1024.0,
        "MiB" | "MB" => 1024.0,
        "GiB" | "GB" => 1024.0 * 1024.0,
        _ => 1.0,
    };
    Some(number * factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_sort_by_their_units() {
        assert_eq!(sort_value("850us"), Some(850.0));
        assert_eq!(sort_value("1.50ms"), Some(1500.0));
        assert_eq!(sort_value("2.00s"), Some(2_000_000.0));
        assert_eq!(sort_value("12,345"), Some(12345.0));
        assert_eq!(sort_value("12,345 (failed)"), Some(12345.0));
        assert_eq!(sort_value("3 [1]"), Some(3.0));
        assert_eq!(sort_value("~12"), Some(12.0));
        assert_eq!(sort_value("✗ 1,001"), Some(1001.0));
        assert_eq!(sort_value("45.7%"), Some(45.7));
        assert_eq!(sort_value("0.52×"), Some(0.52));
        assert_eq!(sort_value("3.1 MiB"), Some(3.1 * 1024.0));
        assert_eq!(sort_value("1.5 KiB PSS"), Some(1.5));
        assert_eq!(sort_value("—"), None);
        assert_eq!(sort_value("nginx (baseline)"), None);
    }

    #[test]
    fn raw_html_is_text_and_tables_are_sortable() {
        let md = "# zoo <b>x</b>\n\n## plaintext\n\nA <script>alert(1)</script> reason.\n\n\
                  | model | p99 |\n|---|---:|\n| nginx (baseline) | 1.00ms |\n| pool | **failed** |\n";
        let body = convert(md, &[], &Styles::of_targets(&[]));
        assert!(!body.html.contains("<script>"), "{}", body.html);
        assert!(body.html.contains("&lt;script&gt;"), "{}", body.html);
        assert_eq!(body.title, "zoo <b>x</b>");
        assert_eq!(
            body.sections,
            vec![("sec-plaintext".to_string(), "plaintext".to_string())]
        );
        assert!(body
            .html
            .contains("<table class=\"data sortable\" id=\"table-plaintext\">"));
        assert!(body
            .html
            .contains("<tr class=\"baseline\"><td>nginx (baseline)</td><td data-v=\"1000\">"));
        assert!(
            body.html.contains(
                "<tr class=\"failed\"><td>pool</td><td class=\"bad\"><strong>failed</strong></td>"
            ),
            "{}",
            body.html
        );
    }
}
