//! The series colours of every chart, PNG and SVG (plotters) and report.html alike: twenty
//! distinct ones (Tableau 20, the dark shade of each hue first), so a comparison of models and
//! their originals gives every target a colour of its own before any repeats. The anatomy's
//! stacked bars colour their segments from the same list, by kind ([`kind_colour`]).

/// The colours, as `#rrggbb`.
pub const COLOURS: [&str; 20] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94",
    "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5",
];

/// The colour of the `i`th series.
pub fn colour(i: usize) -> &'static str {
    COLOURS[i % COLOURS.len()]
}

/// The `i`th series' colour as red, green, blue.
pub fn rgb(i: usize) -> (u8, u8, u8) {
    to_rgb(colour(i))
}

/// The colour of the anatomy's `k`th kind of syscall, in
/// [`anatomy_kinds`](crate::compare::results::anatomy_kinds) order: a stacked bar's segment of
/// that kind, on report.md's chart and report.html's alike. The kinds take the series colours
/// in order, so the nine of them are distinct.
pub fn kind_colour(k: usize) -> &'static str {
    colour(k)
}

/// [`kind_colour`] as red, green, blue.
pub fn kind_rgb(k: usize) -> (u8, u8, u8) {
    to_rgb(kind_colour(k))
}

/// `#rrggbb` as red, green, blue (every colour here is well formed: a bad digit would read 0).
fn to_rgb(hex: &str) -> (u8, u8, u8) {
    let hex = hex.trim_start_matches('#');
    let byte = |at: usize| {
        hex.get(at..at + 2)
            .and_then(|b| u8::from_str_radix(b, 16).ok())
            .unwrap_or(0)
    };
    (byte(0), byte(2), byte(4))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twenty_series_have_twenty_colours() {
        let mut seen: Vec<(u8, u8, u8)> = (0..20).map(rgb).collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), 20);
        assert_eq!(rgb(0), (31, 119, 180));
    }

    #[test]
    fn every_kind_has_a_colour_of_its_own() {
        let kinds = crate::compare::results::anatomy_kinds();
        let mut seen: Vec<&str> = (0..kinds.len()).map(kind_colour).collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), kinds.len());
        assert_eq!(kind_rgb(1), (255, 127, 14));
    }
}
