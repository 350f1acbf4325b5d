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

    #[error("{source_name}: model_type '{model_type}' is not supported (supported: {})", supported.join(", "))]
    UnsupportedModelType { source_name: String, model_type: String, supported: Vec<&'static str> },

    #[error("unknown device '{name}'{}; run `rooflinebench devices` for the list, or pass a profile file path", suggest(.suggestions))]
    UnknownDevice { name: String, suggestions: Vec<String> },

    #[error("{0}")]
    Usage(String),

    #[error("`{command}` needs libtorch: this binary was built without the `torch` feature. Build with `cargo build --release --features torch` (the Makefile does: `make calibrate`)")]
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
            got: got.to_string(),
        }
    }

    pub fn json(path: impl Into<PathBuf>, e: &serde_json::Error) -> Self {
        Error::Parse {
            path: path.into(),
            format: "JSON",
            line: e.line(),
            column: e.column(),
            message: strip_location(&e.to_string()),
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
