//! The series colours of every chart, PNG and SVG (plotters) and report.html alike: twenty
//! distinct ones (Tableau 20, the dark shade of each hue first), so a comparison of models and
//! their originals gives every target a colour of its own before any repeats.

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
    let hex = colour(i).trim_start_matches('#');
    let byte = |at: usize| u8::from_str_radix(&hex[at..at + 2], 16).unwrap_or(0);
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
}
