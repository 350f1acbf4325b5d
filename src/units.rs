//! Numbers as people read them: SI prefixes and rates with sensible digits, and the text
//! tables they are printed in.

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

/// A plain-text table: every line laid out by one pattern, as `format!` would lay it out. The
/// pattern is literal text with a slot per cell: `{<N}` left-aligned and `{>N}` right-aligned
/// in N characters (a longer cell is not cut), `{}` as it comes. Cells come formatted (`{:.3}`,
/// [`si`]), so the header and the rows share the pattern:
///
/// ```text
/// let mut t = TextTable::new("  {<6} {>5}  {}");
/// t.header(&["name", "size", "note"]);   // "  name    size  note"
/// t.row(&[&"a", &12, &"ok"]);            // "  a         12  ok"
/// ```
#[derive(Debug, Clone)]
pub struct TextTable {
    pattern: Vec<Piece>,
    text: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Text(String),
    Left(usize),
    Right(usize),
}

impl TextTable {
    /// A table whose lines follow `pattern`. A malformed slot is a bug in the caller and panics.
    pub fn new(pattern: &str) -> TextTable {
        let mut pieces = Vec::new();
        let mut rest = pattern;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                pieces.push(Piece::Text(rest[..open].to_string()));
            }
            let close = open + rest[open..].find('}').expect("every slot is closed");
            let slot = &rest[open + 1..close];
            let width = |w: &str| w.parse::<usize>().expect("a slot's width is a number");
            pieces.push(match slot.split_at(slot.len().min(1)) {
                ("", "") => Piece::Left(0),
                ("<", w) => Piece::Left(width(w)),
                (">", w) => Piece::Right(width(w)),
                _ => panic!("table slot {{{slot}}}: expected {{<N}}, {{>N}} or {{}}"),
            });
            rest = &rest[close + 1..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_string()));
        }
        TextTable { pattern: pieces, text: String::new() }
    }

    /// One line of column names.
    pub fn header(&mut self, names: &[&str]) {
        let cells: Vec<&dyn std::fmt::Display> = names.iter().map(|n| n as &dyn std::fmt::Display).collect();
        self.row(&cells);
    }

    /// One line: `cells` in the pattern's slots, in order (one cell per slot).
    pub fn row(&mut self, cells: &[&dyn std::fmt::Display]) {
        use std::fmt::Write;
        let mut cells = cells.iter();
        let mut next = || cells.next().expect("one cell per slot");
        for piece in &self.pattern {
            let _ = match piece {
                Piece::Text(t) => self.text.write_str(t),
                Piece::Left(w) => write!(self.text, "{:<w$}", next()),
                Piece::Right(w) => write!(self.text, "{:>w$}", next()),
            };
        }
        debug_assert!(cells.next().is_none(), "more cells than slots");
        self.text.push('\n');
    }

    /// The lines written so far.
    pub fn finish(self) -> String {
        self.text
    }
}

#[cfg(test)]
mod tests {
    use super::TextTable;

    #[test]
    fn a_table_lays_out_cells_as_format_would() {
        let mut t = TextTable::new("  {<6} {>5}  {}");
        t.header(&["name", "size", "note"]);
        t.row(&[&"a", &12, &"ok"]);
        t.row(&[&"longer-name", &format!("{:+.1}%", 2.54), &""]);
        let mut expected = String::new();
        expected += &format!("  {:<6} {:>5}  {}\n", "name", "size", "note");
        expected += &format!("  {:<6} {:>5}  {}\n", "a", 12, "ok");
        expected += &format!("  {:<6} {:>+4.1}%  {}\n", "longer-name", 2.54f64, "");
        assert_eq!(t.finish(), expected);
    }
}
