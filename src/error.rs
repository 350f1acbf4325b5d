//! User-facing errors. Every variant names where the bad value came from and what was expected.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{path}: malformed {format} at line {line}, column {column}: {message}")]
    Parse { path: PathBuf, format: &'static str, line: usize, column: usize, message: String },

    #[error("{source_name}: field '{field}': expected {expected}, got {got}")]
    InvalidField { source_name: String, field: String, expected: String, got: String },

    #[error("{source_name}: field 'model_type': '{model_type}' is not supported ({})", near_or_all(.model_type, .supported))]
    UnsupportedModelType { source_name: String, model_type: String, supported: Vec<&'static str> },

    #[error("unknown device '{name}'{}; run `rooflinebench devices` for the list, or pass a profile file path", suggest(.suggestions))]
    UnknownDevice { name: String, suggestions: Vec<String> },

    #[error("{0}")]
    Usage(String),

    #[error("`{command}` needs libtorch: this binary was built without the `torch` feature and no rooflinebench-torch is beside it. `make build` builds both (or `cargo build --release --features torch`)")]
    NotCompiledWithTorch { command: &'static str },

    #[error("`{command}` needs llama.cpp: this binary was built without the `llamacpp` feature. Build with `cargo build --release --features llamacpp` (the Makefile does)")]
    NotCompiledWithLlamaCpp { command: &'static str },

    #[error("llama.cpp: {0}")]
    Engine(String),

    #[error("libtorch: {0}")]
    Torch(String),

    #[error("solver: {0}")]
    Solver(String),

    #[error("no feasible candidate in {space}: {reason}")]
    Infeasible { space: String, reason: String },

    /// A regression check found differences; exit code 1 (not a usage error).
    #[error("regression check failed:\n{0}")]
    Regression(String),
}

/// The near name when there is one ("did you mean llama?"), else every supported name.
fn near_or_all(got: &str, supported: &[&'static str]) -> String {
    match nearest(got, supported.iter().copied()) {
        Some(n) => format!("did you mean '{n}'?"),
        None => format!("supported: {}", supported.join(", ")),
    }
}

/// The candidate closest to `got` by Jaro-Winkler similarity, when it is close enough to be a
/// likely misspelling.
pub fn nearest<'a>(got: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let got = got.to_lowercase();
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(&c.to_lowercase(), &got), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0).then(b.1.cmp(a.1)))
        .map(|(_, c)| c)
}

/// A float that prints as hundreds of digits (1e-300) in exponent form; anything else as is.
fn compact_number(s: String) -> String {
    match s.parse::<f64>() {
        Ok(x) if s.len() > 24 => format!("{x:?}"),
        _ => s,
    }
}

/// Longest echo of a user's value in a message: a 10 MB string is named, not printed.
pub const ECHO_CHARS: usize = 80;

/// `s` cut to [`ECHO_CHARS`] characters (saying how long it was), on one line.
pub fn clip(s: &str) -> String {
    let one_line: String = s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let n = one_line.chars().count();
    if n <= ECHO_CHARS {
        one_line
    } else {
        let head: String = one_line.chars().take(ECHO_CHARS).collect();
        format!("{head}... ({n} characters)")
    }
}

/// serde's "unknown field `x`, expected one of `a`, `b`, ..." (and "unknown variant") become
/// "unknown field `x` (did you mean `a`?)" when a listed name is near, and every echoed name is
/// clipped.
fn tidy_serde_message(message: &str) -> String {
    for kind in ["unknown field `", "unknown variant `"] {
        let Some(start) = message.find(kind) else { continue };
        let rest = &message[start + kind.len()..];
        let Some(end) = rest.find('`') else { continue };
        let got = &rest[..end];
        let tail = &rest[end + 1..];
        let listed: Vec<&str> = tail.split('`').skip(1).step_by(2).collect();
        let what = &kind[..kind.len() - 2];
        let hint = match nearest(got, listed.iter().copied()) {
            Some(n) => format!(" (did you mean `{n}`?)"),
            None if listed.is_empty() => clip(tail),
            None => format!(", expected one of {}", clip(&listed.join(", "))),
        };
        return format!("{}{what} `{}`{hint}", &message[..start], clip(got));
    }
    clip_long(message)
}

/// A whole message cut to a few echo lengths (clap echoes arguments whole).
pub fn clip_line(message: &str) -> String {
    clip_long(message)
}

/// A message built by a parser, with any very long run (an echoed value) cut.
fn clip_long(message: &str) -> String {
    let one_line: String = message.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let n = one_line.chars().count();
    if n <= 4 * ECHO_CHARS {
        return one_line;
    }
    let head: String = one_line.chars().take(4 * ECHO_CHARS).collect();
    format!("{head}... ({n} characters)")
}

/// The longest error line printed, in characters.
pub const MAX_MESSAGE_CHARS: usize = 990;

/// An error's text as printed: its lines joined with "; ", every other control character (ESC,
/// CR, TAB, ...) as `?`, and at most [`MAX_MESSAGE_CHARS`] characters, keeping the start and
/// the end (`head ... (N characters) ... tail`).
pub fn printable(s: &str) -> String {
    let joined = s.lines().collect::<Vec<_>>().join("; ");
    let clean: Vec<char> = joined.chars().map(|c| if c.is_control() { '?' } else { c }).collect();
    let n = clean.len();
    if n <= MAX_MESSAGE_CHARS {
        return clean.into_iter().collect();
    }
    let middle = format!(" ... ({n} characters) ... ");
    let keep = MAX_MESSAGE_CHARS.saturating_sub(middle.chars().count());
    let head: String = clean[..keep / 2].iter().collect();
    let tail: String = clean[n - (keep - keep / 2)..].iter().collect();
    format!("{head}{middle}{tail}")
}

fn suggest(suggestions: &[String]) -> String {
    if suggestions.is_empty() {
        String::new()
    } else {
        format!(" (did you mean {}?)", suggestions.join(", "))
    }
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }

    pub fn field(
        source_name: impl Into<String>,
        field: impl Into<String>,
        expected: impl Into<String>,
        got: impl std::fmt::Display,
    ) -> Self {
        Error::InvalidField {
            source_name: source_name.into(),
            field: field.into(),
            expected: expected.into(),
            got: clip(&compact_number(got.to_string())),
        }
    }

    /// A parse error of `format` at a byte `offset` of `text`, naming the field there when the
    /// line has one (`layers = [-1]` under `[architecture]`: `architecture.layers`).
    pub fn parse_at(
        path: impl Into<PathBuf>,
        format: &'static str,
        text: &str,
        offset: Option<usize>,
        message: &str,
    ) -> Self {
        let (line, column) = offset.map(|o| line_col(text, o)).unwrap_or((0, 0));
        let message = tidy_serde_message(message);
        let message = match offset.and_then(|o| toml_key_at(text, o)) {
            Some(key) if format == "TOML" => format!("field '{}': {message}", clip(&key)),
            _ => message,
        };
        Error::Parse { path: path.into(), format, line, column, message }
    }

    pub fn json(path: impl Into<PathBuf>, e: &serde_json::Error) -> Self {
        Error::Parse {
            path: path.into(),
            format: "JSON",
            line: e.line(),
            column: e.column(),
            message: tidy_serde_message(&strip_location(&e.to_string())),
        }
    }

    /// The process exit code: 1 for a failed regression check, 2 for everything a user must fix.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Regression(_) => 1,
            _ => 2,
        }
    }
}

/// serde's messages end in " at line L column C", which our own message already gives.
fn strip_location(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

/// 1-based line and column of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before[before.rfind('\n').map_or(0, |i| i + 1)..].chars().count() + 1;
    (line, column)
}

/// The dotted key of the TOML line holding `offset`: the last `[table]` header above it and the
/// line's own `key =`, when both read plainly (inline tables and arrays of tables keep theirs).
fn toml_key_at(text: &str, offset: usize) -> Option<String> {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line = text[start..].lines().next().unwrap_or("");
    let key = line.split_once('=')?.0.trim();
    let plain = |k: &str| !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
    if !plain(key) {
        return None;
    }
    let table = text[..start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|l| l.trim_start_matches('[').split(']').next().unwrap_or("").trim().to_string());
    Some(match table {
        Some(t) if plain(&t) => format!("{t}.{key}"),
        _ => key.to_string(),
    })
}
