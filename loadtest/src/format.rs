//! Numbers and units as loadtest prints them, in the terminal summary, the progress display,
//! `report.md` and the charts' axes: one home, so one figure reads the same everywhere.

use std::time::Duration;

/// `12us`, `1.23ms`, `2.50s`, as wrk prints latencies.
pub fn format_us(us: u64) -> String {
    match us {
        0..=999 => format!("{us}us"),
        1000..=999_999 => format!("{:.2}ms", us as f64 / 1e3),
        _ => format!("{:.2}s", us as f64 / 1e6),
    }
}

/// A latency axis label from milliseconds: `50us`, `1ms`, `2.5s`.
pub fn format_ms(ms: f64) -> String {
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

/// `250 ms`, `5 s`, `1.25 s`: a setting's duration in seconds.
pub fn seconds(s: f64) -> String {
    if s >= 1.0 {
        format!("{} s", (s * 100.0).round() / 100.0)
    } else {
        format!("{:.0} ms", s * 1000.0)
    }
}

/// `1m 20s`, `45s`: the time a run has left.
pub fn format_eta(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m {:02}s", s / 60, s % 60),
        _ => format!("{}h {:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// `512B`, `1.50KB`, `17.66MB`, in powers of 1024 as wrk prints sizes.
pub fn format_bytes(b: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut v = b;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{v:.0}B")
    } else {
        format!("{v:.2}{}", UNITS[unit])
    }
}

/// `5`, `0.25`: at most three decimals, trailing zeros dropped.
pub fn trim_float(v: f64) -> String {
    trim_float_to(v, 3)
}

/// `v` with `places` decimals, trailing zeros and a trailing point dropped.
fn trim_float_to(v: f64, places: usize) -> String {
    let s = format!("{v:.places$}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// `12.3 KiB`, from bytes.
pub fn kib(bytes: f64) -> String {
    format!("{:.1} KiB", bytes / 1024.0)
}

/// `1.9 GiB`, from KiB.
pub fn gib(kb: u64) -> String {
    format!("{:.1} GiB", kb as f64 / 1024.0 / 1024.0)
}

/// `45.6 MiB`, from KiB.
pub fn mib(kb: u64) -> String {
    format!("{:.1} MiB", kb as f64 / 1024.0)
}

/// `12,345` (no decimals).
pub fn thousands(v: f64) -> String {
    let n = v.round().max(0.0) as u64;
    let digits = n.to_string();
    let mut out = String::new();
    // Digits left before the next comma: the head group may be shorter than three.
    let mut until_comma = match digits.len() % 3 {
        0 => 3,
        head => head,
    };
    for ch in digits.chars() {
        if until_comma == 0 {
            out.push(',');
            until_comma = 3;
        }
        out.push(ch);
        until_comma -= 1;
    }
    out
}

/// `950`, `12k`, `1.5M`: a rate on a chart's axis.
pub fn short_number(v: f64) -> String {
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

/// `100%`, `45.7%`, `1.20%`.
pub fn percent(v: f64) -> String {
    if v >= 0.995 || v == 0.0 {
        format!("{:.0}%", v * 100.0)
    } else if v >= 0.1 {
        format!("{:.1}%", v * 100.0)
    } else {
        format!("{:.2}%", v * 100.0)
    }
}

/// `46%`: a share without decimals.
pub fn whole_percent(v: f64) -> String {
    format!("{:.0}%", v * 100.0)
}

/// `12×`: one figure over another, far apart.
pub fn whole_ratio(v: f64) -> String {
    format!("{v:.0}×")
}

/// `12` or `3.4`: a bar's value on a chart, one decimal below ten.
pub fn bar_label(v: f64) -> String {
    if v >= 10.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// `99.9` for 0.999, `50` for 0.5: a quantile as the percentile it names.
pub fn quantile_words(q: f64) -> String {
    trim_float_to(q * 100.0, 4)
}

/// `140`, `12.5`, `2.03`, `0.004`: a count per request, with the decimals its size needs.
pub fn per_request(v: f64) -> String {
    if v == 0.0 {
        "0".to_string()
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else if v >= 0.01 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// `0.85×`: one figure over another.
pub fn ratio(v: f64) -> String {
    format!("{v:.2}×")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.4), "999");
        assert_eq!(thousands(1234.0), "1,234");
        assert_eq!(thousands(1_234_567.0), "1,234,567");
        assert_eq!(percent(1.0), "100%");
        assert_eq!(percent(0.4567), "45.7%");
        assert_eq!(percent(0.012), "1.20%");
        assert_eq!(ratio(0.854), "0.85×");
        assert_eq!(quantile_words(0.5), "50");
        assert_eq!(quantile_words(0.999), "99.9");
        assert_eq!(quantile_words(0.99999), "99.999");
        assert_eq!(whole_ratio(11.6), "12×");
        assert_eq!(whole_percent(0.456), "46%");
        assert_eq!(gib(3 * 1024 * 1024 / 2), "1.5 GiB");
        assert_eq!(
            (bar_label(12.3), bar_label(3.45)),
            ("12".to_string(), "3.5".to_string())
        );
        assert_eq!(seconds(0.25), "250 ms");
        assert_eq!(seconds(5.0), "5 s");
        assert_eq!(mib(2048), "2.0 MiB");
        assert_eq!(kib(1536.0), "1.5 KiB");
    }

    #[test]
    fn times_and_sizes_read_as_wrk_prints_them() {
        assert_eq!(format_us(999), "999us");
        assert_eq!(format_us(1500), "1.50ms");
        assert_eq!(format_us(1234), "1.23ms");
        assert_eq!(format_us(2_500_000), "2.50s");
        assert_eq!(format_bytes(512.0), "512B");
        assert_eq!(format_bytes(1536.0), "1.50KB");
        assert_eq!(format_bytes(3.0 * 1024.0 * 1024.0), "3.00MB");
        assert_eq!(trim_float(5.0), "5");
        assert_eq!(trim_float(0.25), "0.25");
        assert_eq!(format_eta(Duration::from_secs(80)), "1m 20s");
        assert_eq!(format_eta(Duration::from_secs(7)), "7s");
        assert_eq!(format_eta(Duration::from_secs(3700)), "1h 01m");
    }

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
