//! Numbers as people read them: SI prefixes and rates with sensible digits.

/// `1.23 G` style: three significant digits and an SI prefix.
pub fn si(value: f64, unit: &str) -> String {
    if !value.is_finite() || value == 0.0 {
        return format!("{value} {unit}");
    }
    const PREFIXES: [(f64, &str); 9] = [
        (1e15, "P"),
        (1e12, "T"),
        (1e9, "G"),
        (1e6, "M"),
        (1e3, "k"),
        (1.0, ""),
        (1e-3, "m"),
        (1e-6, "u"),
        (1e-9, "n"),
    ];
    let a = value.abs();
    let (scale, prefix) = PREFIXES.iter().copied().find(|(s, _)| a >= *s).unwrap_or((1e-9, "n"));
    let v = value / scale;
    let digits = if v.abs() >= 100.0 {
        0
    } else if v.abs() >= 10.0 {
        1
    } else {
        2
    };
    format!("{v:.digits$} {prefix}{unit}")
}

/// A rate in tokens/s: SI prefixes above a thousand, never below one (no milli-tokens).
pub fn rate(value: f64) -> String {
    let a = value.abs();
    if !value.is_finite() || a >= 1e4 {
        return si(value, "").trim_end().to_string();
    }
    let digits = if a >= 100.0 {
        0
    } else if a >= 10.0 {
        1
    } else if a >= 1.0 {
        2
    } else {
        3
    };
    format!("{value:.digits$}")
}
