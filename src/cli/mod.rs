//! Defines rooflinebench's command line: the raw clap arguments, and `run`, which turns each
//! subcommand into a validated request before any work starts.

mod analyze;
mod devices;

use crate::error::Result;
use crate::report::Format;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "rooflinebench",
    version,
    about = "Which small-language-model architecture runs best on your device, and why"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Place a model's prefill, decode and scenario on a device's roofline.
    Analyze(AnalyzeArgs),
    /// List the built-in device profiles, or show one.
    Devices(DevicesArgs),
}

/// Precisions of weights, activations and KV cache.
#[derive(Debug, Args, Clone)]
pub struct PrecisionArgs {
    /// Weight format: f32, f16, bf16, int8, q8_0, q4_0, q4_k_m.
    #[arg(long, default_value = "bf16", value_name = "DTYPE")]
    pub weights: String,
    /// Activation format (what the arithmetic runs in): f32, f16, bf16, int8.
    #[arg(long, default_value = "bf16", value_name = "DTYPE")]
    pub activations: String,
    /// KV-cache format; defaults to the activation format.
    #[arg(long, value_name = "DTYPE")]
    pub kv: Option<String>,
}

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// Hugging Face config.json of the model (repeat or comma-separate for several).
    #[arg(long, required = true, value_delimiter = ',')]
    pub model: Vec<PathBuf>,
    /// Built-in device name or profile JSON path (repeat or comma-separate for several).
    #[arg(long, required = true, value_delimiter = ',')]
    pub device: Vec<String>,
    /// siso, silo, liso, lilo or all (comma-separate for several).
    #[arg(long, value_delimiter = ',', conflicts_with_all = ["prompt", "generate"])]
    pub scenario: Vec<String>,
    /// Custom scenario: prompt tokens (with --generate).
    #[arg(long, requires = "generate", allow_negative_numbers = true, value_parser = clap::value_parser!(u32).range(1..))]
    pub prompt: Option<u32>,
    /// Custom scenario: generated tokens (with --prompt).
    #[arg(long, requires = "prompt", allow_negative_numbers = true, value_parser = clap::value_parser!(u32).range(1..))]
    pub generate: Option<u32>,
    /// Sequences decoded together.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch: u32,
    #[command(flatten)]
    pub precision: PrecisionArgs,
    /// Compute logits for every prompt token in prefill (scoring), not only the last.
    #[arg(long)]
    pub logits_all: bool,
    /// `best`: the fastest plan per phase; `naive`: materialised MLA, unfused attention.
    #[arg(long, default_value = "best", value_parser = ["best", "naive"])]
    pub plan: String,
    /// Add one row per operator (decode rows sum every step of the scenario).
    #[arg(long)]
    pub per_op: bool,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Write to this file (atomically) instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DevicesArgs {
    #[command(subcommand)]
    pub action: Option<DevicesAction>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Debug, Subcommand)]
pub enum DevicesAction {
    /// Print one profile as JSON (a built-in name or a profile file).
    Show { name: String },
}

/// Runs a parsed command line; output goes to `out`.
pub fn run(cli: Cli, out: &mut dyn std::io::Write) -> Result<()> {
    match cli.command {
        Command::Analyze(args) => analyze::run(args, out),
        Command::Devices(args) => devices::run(args, out),
    }
}

/// Writes to `--out` atomically, or to standard output.
pub(crate) fn emit(bytes: &[u8], path: Option<&std::path::Path>, out: &mut dyn std::io::Write) -> Result<()> {
    match path {
        Some(p) => crate::report::write_atomic(p, bytes),
        None => out.write_all(bytes).map_err(|e| crate::Error::io("<stdout>", e)),
    }
}
