//! How each target looks on every chart, and which family it belongs to.
//!
//! A series is told apart by three things at once: a colour, a marker and a dash pattern. The
//! colours are [`palette`](crate::compare::palette)'s, shared with the PNG charts of report.md
//! (the same model has the same colour in both): twenty distinct ones, seven markers and two
//! dashes, so twenty targets each have a colour of their own. The baseline is black with a dotted line, as the PNG charts dash it.

use crate::compare::results::{Results, TargetInfo};

/// Dash patterns, alternating from one target to the next.
const DASHES: [&str; 2] = ["none", "7 3"];

/// A group of targets that can be shown or hidden together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// A thread or a process per connection, or a pool of them.
    Threads,
    /// Green threads and async runtimes.
    Async,
    /// Hand-written reactors and the other IO models.
    Io,
    /// The Python servers the models mirror.
    Python,
    /// nginx and any other baseline.
    Baseline,
    /// A running target whose name says nothing of its model.
    Other,
}

impl Family {
    /// Every family, in the order of the toolbar.
    pub const ALL: [Family; 6] = [
        Family::Threads,
        Family::Async,
        Family::Io,
        Family::Python,
        Family::Baseline,
        Family::Other,
    ];

    /// The key in `data-family`.
    pub fn key(self) -> &'static str {
        match self {
            Family::Threads => "threads",
            Family::Async => "async",
            Family::Io => "io",
            Family::Python => "python",
            Family::Baseline => "baseline",
            Family::Other => "other",
        }
    }

    /// The words on its button.
    pub fn label(self) -> &'static str {
        match self {
            Family::Threads => "threads and processes",
            Family::Async => "green threads and async",
            Family::Io => "IO models",
            Family::Python => "Python originals",
            Family::Baseline => "baseline",
            Family::Other => "other targets",
        }
    }

    /// The family of a target: by kind, then by the `py-` prefix, then by its zoo model.
    pub fn of(t: &TargetInfo) -> Family {
        if t.kind == "baseline" {
            return Family::Baseline;
        }
        if t.name.starts_with("py-") {
            return Family::Python;
        }
        let model = t
            .model
            .as_deref()
            .unwrap_or_else(|| t.name.split(':').next().unwrap_or_default());
        match model {
            "thread" | "fork" | "prefork" | "pool" => Family::Threads,
            "coroutine" | "tokio" | "async-std" | "smol" => Family::Async,
            "select" | "poll" | "epoll" | "busy" | "nonblocking" | "sigio" | "uring" => Family::Io,
            _ => Family::Other,
        }
    }
}

/// The seven markers, drawn around the point they mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Marker {
    /// A filled circle.
    Circle,
    /// A filled square.
    Square,
    /// A filled triangle, point up.
    Triangle,
    /// A filled diamond.
    Diamond,
    /// A filled triangle, point down.
    TriangleDown,
    /// An upright cross, stroked.
    Plus,
    /// A diagonal cross, stroked (the baseline's).
    Cross,
}

impl Marker {
    const ALL: [Marker; 7] = [
        Marker::Circle,
        Marker::Square,
        Marker::Triangle,
        Marker::Diamond,
        Marker::TriangleDown,
        Marker::Plus,
        Marker::Cross,
    ];

    /// The path around (0, 0), and whether it is stroked rather than filled.
    pub fn path(self) -> (&'static str, bool) {
        match self {
            Marker::Circle => ("M-4.5,0a4.5,4.5 0 1,0 9,0a4.5,4.5 0 1,0 -9,0z", false),
            Marker::Square => ("M-4,-4h8v8h-8z", false),
            Marker::Triangle => ("M0,-5.5L5,3.5H-5z", false),
            Marker::Diamond => ("M0,-5.5L5,0L0,5.5L-5,0z", false),
            Marker::TriangleDown => ("M0,5.5L5,-3.5H-5z", false),
            Marker::Plus => ("M-5,0H5M0,-5V5", true),
            Marker::Cross => ("M-4,-4L4,4M-4,4L4,-4", true),
        }
    }
}

/// How one target is drawn.
#[derive(Debug, Clone)]
pub struct Style {
    /// The target's name, the key of its series on every chart.
    pub name: String,
    /// Its family.
    pub family: Family,
    /// Stroke and fill colour.
    pub colour: &'static str,
    /// `stroke-dasharray` of its lines.
    pub dash: &'static str,
    /// Its marker.
    pub marker: Marker,
}

/// The style of every target of a comparison.
#[derive(Debug, Clone)]
pub struct Styles(Vec<Style>);

impl Styles {
    /// A style per target. The index among non-baseline targets picks the colour, as the PNG
    /// charts do; the marker cycles with a period prime to the colours'.
    pub fn new(r: &Results) -> Styles {
        Styles::of_targets(&r.targets)
    }

    /// A style per target of `targets`, as [`Styles::new`].
    pub fn of_targets(targets: &[TargetInfo]) -> Styles {
        let mut styles = Vec::new();
        let mut i = 0;
        for t in targets {
            let family = Family::of(t);
            let style = if family == Family::Baseline {
                Style {
                    name: t.name.clone(),
                    family,
                    colour: "#000000",
                    dash: "2 3",
                    marker: Marker::Cross,
                }
            } else {
                let s = Style {
                    name: t.name.clone(),
                    family,
                    colour: crate::compare::palette::colour(i),
                    dash: DASHES[i % DASHES.len()],
                    marker: Marker::ALL[i % Marker::ALL.len()],
                };
                i += 1;
                s
            };
            styles.push(style);
        }
        Styles(styles)
    }

    /// The style of `name`; a name no target has (it cannot come from one results.json) is
    /// drawn grey.
    pub fn of(&self, name: &str) -> Style {
        self.0
            .iter()
            .find(|s| s.name == name)
            .cloned()
            .unwrap_or_else(|| Style {
                name: name.to_string(),
                family: Family::Other,
                colour: "#999999",
                dash: "none",
                marker: Marker::Circle,
            })
    }

    /// The families that have at least one target.
    pub fn families(&self) -> Vec<Family> {
        Family::ALL
            .into_iter()
            .filter(|f| self.0.iter().any(|s| s.family == *f))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(name: &str, kind: &str, model: Option<&str>) -> TargetInfo {
        TargetInfo {
            name: name.to_string(),
            kind: kind.to_string(),
            model: model.map(str::to_string),
            args: Vec::new(),
            url: None,
            proxy: None,
            mirrors: Vec::new(),
        }
    }

    #[test]
    fn families_follow_the_model() {
        assert_eq!(
            Family::of(&target("pool:threads=4", "model", Some("pool"))),
            Family::Threads
        );
        assert_eq!(Family::of(&target("smol", "target", None)), Family::Async);
        assert_eq!(
            Family::of(&target("sigio", "model", Some("sigio"))),
            Family::Io
        );
        assert_eq!(
            Family::of(&target("py-gevent", "model", None)),
            Family::Python
        );
        assert_eq!(
            Family::of(&target("nginx", "baseline", None)),
            Family::Baseline
        );
        assert_eq!(
            Family::of(&target("mystery", "target", None)),
            Family::Other
        );
    }

    #[test]
    fn twenty_targets_look_different() {
        let mut targets: Vec<TargetInfo> = (0..20)
            .map(|i| target(&format!("m{i}"), "model", Some("pool")))
            .collect();
        targets.push(target("nginx", "baseline", None));
        let styles = Styles::of_targets(&targets);
        let mut seen = std::collections::HashSet::new();
        for t in &targets {
            let s = styles.of(&t.name);
            assert!(
                seen.insert((s.colour, s.dash, s.marker)),
                "{} looks like another",
                t.name
            );
        }
        assert_eq!(styles.families(), vec![Family::Threads, Family::Baseline]);
    }
}
