//! Defines rooflinebench's command line: the raw clap arguments, and `run`, which turns each
//! subcommand into a validated request before any work starts.

pub(crate) mod analyze;
mod calibrate;
mod devices;
pub mod entry;
mod export;
mod per_layer;
mod plot;
mod search;
mod verify;

use crate::error::Result;
use crate::measure::On;
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

impl Cli {
    /// Whether the command runs libtorch: `calibrate` and `validate` without `--engine llama.cpp`.
    pub fn needs_torch(&self) -> bool {
        match &self.command {
            Command::Calibrate(a) => a.engine != EngineChoice::LlamaCpp,
            Command::Validate(a) => a.engine != EngineChoice::LlamaCpp,
            _ => false,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Place a model's prefill, decode and scenario on a device's roofline.
    Analyze(AnalyzeArgs),
    /// List the built-in device profiles, or show one.
    Devices(DevicesArgs),
    /// Find the architecture of a search space with the best objective on a device.
    Search(SearchArgs),
    /// Run every search space of a folder on every listed device (CI), optionally checking
    /// the results against a baseline.
    Batch(BatchArgs),
    /// Combine shard outputs of `batch --shard K/N` into the files a single run writes.
    Merge(MergeArgs),
    /// Time libtorch kernels on this machine and write a calibrated device profile.
    Calibrate(CalibrateArgs),
    /// Run real decoder layers in libtorch and compare measured with predicted times.
    Validate(ValidateArgs),
    /// Draw SVG plots: a roofline of models on devices, or a search's Pareto front.
    Plot(PlotArgs),
    /// Redo the paper's experiments with correct accounting; write CSV, SVG, REPRODUCTION.md.
    Reproduce(ReproduceArgs),
    /// Build models as GGUF files of random weights and time them on llama.cpp here
    /// (llama-bench's pp/tg tests).
    Measure(MeasureArgs),
    /// Build a search's recommendation, runner-up, fastest decoder and front members, run them
    /// on llama.cpp here, and check the prediction (verify.csv, verify.svg, verify.md).
    Verify(VerifyArgs),
    /// Write any candidate of a saved search (or of a space file) as a Hugging Face config.json,
    /// or as a GGUF file of random weights for llama-bench on a real device.
    Export(ExportArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) to standard output.
    Completions {
        /// The shell: bash, zsh, fish, elvish or powershell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Internal: runs one llama.cpp job read from stdin (the engine runs in its own process).
    #[command(hide = true)]
    EngineWorker,
}

#[derive(Debug, Args)]
pub struct PlotArgs {
    #[command(subcommand)]
    pub what: PlotWhat,
}

#[derive(Debug, Subcommand)]
pub enum PlotWhat {
    /// Devices' roofs (several on one chart) with each model's scenario points.
    Roofline {
        /// Hugging Face config.json files of the models (comma-separated); each gets a colour.
        #[arg(long, required = true, value_delimiter = ',')]
        model: Vec<PathBuf>,
        /// Built-in device names or profile files (comma-separated); one roof each.
        #[arg(long, required = true, value_delimiter = ',')]
        device: Vec<String>,
        /// siso, silo, liso, lilo or all.
        #[arg(long, value_delimiter = ',')]
        scenario: Vec<String>,
        /// Also plot each scenario's prefill and decode points.
        #[arg(long)]
        phases: bool,
        #[command(flatten)]
        precision: PrecisionArgs,
        /// The SVG file to write.
        #[arg(long, default_value = "roofline.svg")]
        out: PathBuf,
    },
    /// rip against parameters for a search's output folder (reads its pareto.csv).
    Front {
        /// A search's output folder (with pareto.csv).
        dir: PathBuf,
        /// The SVG file to write (default DIR/front.svg).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct ReproduceArgs {
    /// Folder for the CSV, SVG and REPRODUCTION.md files.
    #[arg(long, default_value = "results/paper")]
    pub out: PathBuf,
}

/// What a calibration or validation measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EngineChoice {
    /// Kernels of eager PyTorch (libtorch, feature `torch`).
    Libtorch,
    /// Whole models on llama.cpp (feature `llamacpp`).
    #[value(name = "llama.cpp", alias = "llamacpp")]
    LlamaCpp,
}

impl EngineChoice {
    fn default_profile(self) -> &'static str {
        match self {
            EngineChoice::Libtorch => "devices/this-machine.json",
            EngineChoice::LlamaCpp => "devices/this-machine-llamacpp.json",
        }
    }
}

#[derive(Debug, Args)]
pub struct CalibrateArgs {
    /// Where to write the profile (default devices/this-machine.json, or
    /// devices/this-machine-llamacpp.json with --engine llama.cpp).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// What to calibrate: libtorch kernels, or whole models on llama.cpp.
    #[arg(long, value_enum, default_value_t = EngineChoice::Libtorch)]
    pub engine: EngineChoice,
    /// Fewer shapes and repeats (libtorch about 10 s; llama.cpp about 30 s once its models are built).
    #[arg(long)]
    pub quick: bool,
    /// Threads (default: all cores).
    #[arg(long, allow_negative_numbers = true, value_parser = parse_threads)]
    pub threads: Option<usize>,
    /// llama.cpp on a CPU: other thread counts to time the uniform calibration models at
    /// (their 64-token prompts and short decode), for the profile's factors at those counts
    /// (`--cpu-threads`); comma-separated, at most the machine's cores, or `none`. Default: 1
    /// and each power of two up to the cores, and the cores, besides --threads (none with
    /// --quick, whose models are too small to scale as real ones do).
    #[arg(long, value_name = "COUNTS", value_parser = parse_thread_counts)]
    pub scale_threads: Option<ThreadCounts>,
    /// llama.cpp: rebuild the cached GGUF files of the calibration models.
    #[arg(long)]
    pub rebuild: bool,
    /// libtorch: the device to calibrate (default cpu; auto: cuda, else mps, else cpu).
    #[arg(long, value_enum)]
    pub on: Option<On>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// A search's output folder (with space.toml, device.json and outcome.json).
    pub dir: PathBuf,
    /// Front members to add, spread evenly along decode speed (at most 1000: each is built and
    /// run).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(0..=1000))]
    pub top: u16,
    /// The engine to run them on.
    #[arg(long, value_enum, default_value_t = EngineChoice::LlamaCpp)]
    pub engine: EngineChoice,
    /// Where to write verify.csv, verify.svg and verify.md (default: the search folder).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Shorter decode tests and two rounds.
    #[arg(long)]
    pub quick: bool,
    /// Threads llama.cpp uses (default: all cores).
    #[arg(long, allow_negative_numbers = true, value_parser = parse_threads)]
    pub threads: Option<usize>,
}

#[derive(Debug, Args)]
pub struct MeasureArgs {
    /// Hugging Face config.json files of the models (comma-separated).
    #[arg(long, required = true, value_delimiter = ',')]
    pub model: Vec<PathBuf>,
    /// Weight formats: f16, q8_0, q4_0, q4_k_m (comma-separated).
    #[arg(long, default_value = "q4_k_m", value_delimiter = ',')]
    pub weights: Vec<String>,
    /// Tests as llama-bench names them: pp512, tg128, tg128@d4096 (comma-separated).
    #[arg(long, default_value = "pp512,tg128", value_delimiter = ',')]
    pub test: Vec<String>,
    /// Rounds; every round runs every model and test once, alternating.
    #[arg(long, default_value_t = 3)]
    pub repeats: u32,
    /// Threads llama.cpp uses (default: all cores).
    #[arg(long, allow_negative_numbers = true, value_parser = parse_threads)]
    pub threads: Option<usize>,
    /// Keep the GGUF files in this folder (default: a temporary folder, removed after).
    #[arg(long)]
    pub keep: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The calibrated profile to check (a file path, or a built-in name; default the profile
    /// `calibrate` writes for the engine).
    #[arg(long)]
    pub device: Option<String>,
    /// What to run: real decoder layers in libtorch, or whole models on llama.cpp.
    #[arg(long, value_enum, default_value_t = EngineChoice::Libtorch)]
    pub engine: EngineChoice,
    /// Fewer workloads (for tests).
    #[arg(long)]
    pub quick: bool,
    /// Threads (default: all cores).
    #[arg(long, allow_negative_numbers = true, value_parser = parse_threads)]
    pub threads: Option<usize>,
    /// The workload table (default results/validation.csv, or results/validation-llamacpp.csv).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// libtorch: the device to run the layers on (default cpu; auto: cuda, else mps, else cpu).
    #[arg(long, value_enum)]
    pub on: Option<On>,
    /// llama.cpp: only the uniform models, only the hybrid stacks (windows, convolutions,
    /// DeltaNet, Mamba2), only those with routed experts (moe) or with latent attention (mla);
    /// default all.
    #[arg(long, value_enum)]
    pub only: Option<Stacks>,
}

/// Which validation models to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Stacks {
    Uniform,
    Hybrid,
    Moe,
    Mla,
}

impl Stacks {
    /// Whether `arch` is a model of this kind.
    pub fn has(self, arch: &crate::arch::Architecture) -> bool {
        match self {
            Stacks::Uniform => arch.layers.is_empty(),
            Stacks::Hybrid => !arch.layers.is_empty(),
            Stacks::Moe => arch.ffn.is_moe(),
            Stacks::Mla => matches!(arch.attention, crate::arch::Attention::Latent(_)),
        }
    }
}

#[derive(Debug, Args)]
pub struct SearchArgs {
    /// Search-space TOML file.
    pub space: PathBuf,
    /// Built-in device name or profile JSON path.
    #[arg(long)]
    pub device: String,
    /// Threads llama.cpp runs with on a CPU profile (`-t`): the profile's rates at that count,
    /// for counts its fit saw (default: the profile's own).
    #[arg(long = "cpu-threads", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub cpu_threads: Option<u32>,
    /// Output folder (default search-out/<space>/<device> under the current folder; results/
    /// holds the committed baseline and is written only when named).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Worker threads (default: all cores). Outputs do not depend on it.
    #[arg(long, allow_negative_numbers = true, value_parser = parse_threads)]
    pub threads: Option<usize>,
    /// Run slice K of N (0-based) and write shard-K-of-N.json; combine with `merge`.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<String>,
    /// Enumerate a space larger than --max-candidates.
    #[arg(long)]
    pub force: bool,
    /// Refuse spaces with more candidates than this, unless --force.
    #[arg(long, default_value_t = 100_000_000)]
    pub max_candidates: u64,
    /// `best`: each candidate at its fastest plan; `naive`: materialised MLA, unfused attention.
    #[arg(long, default_value = "best", value_parser = ["best", "naive"])]
    pub plan: String,
    /// Also solve for the best per-layer (heterogeneous) stack with a MILP.
    #[arg(long)]
    pub per_layer: bool,
}

#[derive(Debug, Args)]
pub struct BatchArgs {
    /// Folder of search-space TOML files.
    pub spaces: PathBuf,
    /// Devices (comma-separated names or profile paths).
    #[arg(long, required = true, value_delimiter = ',')]
    pub devices: Vec<String>,
    /// Threads llama.cpp runs with on a CPU profile (`-t`): the profile's rates at that count,
    /// for counts its fit saw (default: the profile's own).
    #[arg(long = "cpu-threads", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub cpu_threads: Option<u32>,
    /// Output folder: one <space>/<device> folder per run and summary.md.
    #[arg(long, default_value = "results")]
    pub out: PathBuf,
    /// Compare with committed results in this folder; exit 1 naming what moved.
    #[arg(long)]
    pub check: Option<PathBuf>,
    /// Relative tolerance of the check for numeric columns (a fraction, at most 0.1).
    #[arg(long, default_value_t = 1e-6, allow_negative_numbers = true, value_parser = parse_tolerance)]
    pub tolerance: f64,
    /// Run slice K of N (0-based) of every search and write shard files; combine with `merge`.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<String>,
    /// Worker threads (default: all cores). Outputs do not depend on it.
    #[arg(long, allow_negative_numbers = true, value_parser = parse_threads)]
    pub threads: Option<usize>,
    /// Enumerate spaces larger than --max-candidates.
    #[arg(long)]
    pub force: bool,
    /// Refuse spaces with more candidates than this, unless --force.
    #[arg(long, default_value_t = 100_000_000)]
    pub max_candidates: u64,
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// Folder of the search-space TOML files the shards ran.
    pub spaces: PathBuf,
    /// Devices the shards ran on (comma-separated names or profile paths), as given to `batch`.
    #[arg(long, required = true, value_delimiter = ',')]
    pub devices: Vec<String>,
    /// Folders holding shard outputs (each laid out as <space>/<device>/shard-K-of-N.json).
    #[arg(long, required = true, value_delimiter = ',')]
    pub shards: Vec<PathBuf>,
    /// Output folder, laid out as `batch --out` lays it.
    #[arg(long, default_value = "results")]
    pub out: PathBuf,
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
    /// Threads llama.cpp runs with on a CPU profile (`-t`): the profile's rates at that count,
    /// for counts its fit saw (default: the profile's own).
    #[arg(long = "cpu-threads", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub cpu_threads: Option<u32>,
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
    /// Print the e-graph's chosen plan per phase, the alternatives it weighed and their costs.
    #[arg(long)]
    pub explain_plan: bool,
    /// Training tokens for the predicted loss (default 2e12).
    #[arg(long, value_name = "N", conflicts_with = "tokens_per_parameter")]
    pub tokens: Option<f64>,
    /// Training tokens per parameter for the predicted loss, instead of --tokens.
    #[arg(long, value_name = "K")]
    pub tokens_per_parameter: Option<f64>,
    /// Output format: a table for reading, CSV or JSON for tools.
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
    /// Output format of the list.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Debug, Subcommand)]
pub enum DevicesAction {
    /// Print one profile as JSON (a built-in name or a profile file).
    Show {
        /// A built-in device name or a profile file path.
        name: String,
    },
    /// Fit a llama.cpp profile for a device from llama-bench results run on it.
    Fit(FitArgs),
    /// Predict llama-bench results with a profile, unfitted: how far a built-in or fitted
    /// profile is from runs on the device.
    Check(CheckArgs),
    /// Carry a sibling's engine profile (same engine and backend) onto a device's datasheet
    /// ceilings, for a device without public runs of its own.
    Transfer(TransferArgs),
}

#[derive(Debug, Args)]
pub struct TransferArgs {
    /// The sibling's engine profile (built-in name or file): an expected or calibrated one.
    #[arg(long)]
    pub from: String,
    /// The sibling's datasheet profile (default: FROM-datasheet): its fit's peaks are scaled by
    /// the two datasheets' ratio.
    #[arg(long = "from-datasheet", value_name = "PROFILE")]
    pub from_datasheet: Option<String>,
    /// The device's datasheet profile (built-in name or file): the ceilings kept.
    #[arg(long)]
    pub base: String,
    /// Name of the transferred profile (default: BASE without `-datasheet`).
    #[arg(long)]
    pub name: Option<String>,
    /// llama-bench files run on the device: predicted by the transferred profile and compared
    /// (nothing is fitted to them).
    #[arg(long, value_delimiter = ',')]
    pub holdout: Vec<PathBuf>,
    /// Profiles transferred the same way to devices with runs of their own (and checked with
    /// --holdout): their measured / predicted factors make the transferred profile's bands.
    #[arg(long = "band-from", value_delimiter = ',', value_name = "PROFILE")]
    pub band_from: Vec<String>,
    /// The models the runs used (config.json or GGUF files), as for `devices fit`.
    #[arg(long, value_delimiter = ',')]
    pub model: Vec<PathBuf>,
    /// Where to write the profile.
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// llama-bench output files (`-o json`, `-o jsonl` or the markdown table).
    #[arg(long = "llama-bench", required = true, value_delimiter = ',')]
    pub llama_bench: Vec<PathBuf>,
    /// The profile to check (built-in name or file).
    #[arg(long)]
    pub device: String,
    /// Threads llama.cpp runs with on a CPU profile (`-t`): the profile's rates at that count,
    /// for counts its fit saw (default: the profile's own).
    #[arg(long = "cpu-threads", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub cpu_threads: Option<u32>,
    /// The models the runs used (config.json or GGUF files), as for `devices fit`.
    #[arg(long, value_delimiter = ',')]
    pub model: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct FitArgs {
    /// llama-bench output files: `-o json`, `-o jsonl` or the markdown table (or a profile
    /// calibrated by this tool, whose runs it keeps).
    #[arg(long = "llama-bench", required = true, value_delimiter = ',')]
    pub llama_bench: Vec<PathBuf>,
    /// The models the runs used: config.json files, or GGUF files (read by llama.cpp's parser),
    /// matched by llama.cpp's parameter count (the models under models/ are always tried; a
    /// JSON row's model_filename is read when it is a GGUF beside the llama-bench file, or one
    /// given here, and its parameter count is the row's).
    #[arg(long, value_delimiter = ',')]
    pub model: Vec<PathBuf>,
    /// The device's datasheet profile (built-in name or file): its memory and bandwidth.
    #[arg(long)]
    pub base: String,
    /// Name of the fitted profile (default: BASE-llamacpp).
    #[arg(long)]
    pub name: Option<String>,
    /// llama-bench files kept out of the fit: predicted with the fitted profile and compared,
    /// so the profile's agreement is measured on runs it has not seen.
    #[arg(long, value_delimiter = ',')]
    pub holdout: Vec<PathBuf>,
    /// llama-bench runs of the fitted models at other thread counts (`-t`), one count per file:
    /// paired with the fitted runs of the same model and test, they give the profile's rates at
    /// those counts (`--cpu-threads`).
    #[arg(long = "threads-from", value_delimiter = ',')]
    pub threads_from: Vec<PathBuf>,
    /// Take the cost per kernel from this profile (built-in name or file: a fit of the same
    /// engine and backend on another device) instead of fitting it, for runs of one model size,
    /// which cannot separate a fixed cost from bandwidth.
    #[arg(long, value_name = "PROFILE")]
    pub fixed_cost_from: Option<String>,
    /// Where to write the profile.
    #[arg(long)]
    pub out: PathBuf,
}

/// What `export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// A Hugging Face config.json (transformers' AutoConfig loads it as the same model).
    Hf,
    /// A GGUF file of random weights, quantised by llama.cpp (feature `llamacpp`).
    Gguf,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// A search's output folder (with space.toml), or a search-space TOML file.
    pub source: PathBuf,
    /// The candidate: '#INDEX' as pareto.csv and summary.md number them (quote the #), or
    /// `recommended` (a search folder's recommendation).
    pub candidate: String,
    /// hf: config.json; gguf: a GGUF file of random weights.
    #[arg(long, value_enum, default_value_t = ExportFormat::Hf)]
    pub format: ExportFormat,
    /// GGUF weight format: f16, bf16, q8_0, q4_0 or q4_k_m (default: the candidate's own).
    #[arg(long, value_name = "DTYPE")]
    pub weights: Option<String>,
    /// The file to write, or an existing folder to write config.json (or NAME.FORMAT.gguf) into.
    #[arg(long)]
    pub out: PathBuf,
}

/// A device by name or profile file, as llama.cpp runs on it with `cpu_threads` when given.
pub fn device_at(name: &str, cpu_threads: Option<u32>) -> Result<crate::device::DeviceProfile> {
    let p = crate::device::resolve(name)?;
    match cpu_threads {
        Some(t) => p.at_threads(t),
        None => Ok(p),
    }
}

/// Threads a run may ask for: more only slows it (each spawns and sets up a worker).
pub const MAX_THREADS: usize = 256;

fn parse_threads(s: &str) -> std::result::Result<usize, String> {
    match s.trim().parse::<i64>() {
        Ok(n) if (1..=MAX_THREADS as i64).contains(&n) => Ok(n as usize),
        _ => Err(format!("expected a number of threads from 1 to {MAX_THREADS}, got '{}'", crate::error::clip(s))),
    }
}

/// Thread counts given as `1,3` (or `none`: an empty list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadCounts(pub Vec<u32>);

fn parse_thread_counts(s: &str) -> std::result::Result<ThreadCounts, String> {
    if s.trim() == "none" {
        return Ok(ThreadCounts(Vec::new()));
    }
    let mut counts =
        s.split(',').map(|c| parse_threads(c).map(|n| n as u32)).collect::<std::result::Result<Vec<_>, _>>()?;
    counts.sort_unstable();
    counts.dedup();
    Ok(ThreadCounts(counts))
}

fn parse_tolerance(s: &str) -> std::result::Result<f64, String> {
    match s.trim().parse::<f64>() {
        // A loose check passes anything: 1e300 would accept a doubled parameter count.
        Ok(t) if (0.0..=0.1).contains(&t) => Ok(t),
        _ => Err(format!("expected a relative tolerance from 0 to 0.1, got '{}'", crate::error::clip(s))),
    }
}

/// Runs a parsed command line; output goes to `out`.
pub fn run(cli: Cli, out: &mut dyn std::io::Write) -> Result<()> {
    match cli.command {
        Command::Analyze(args) => analyze::run(args, out),
        Command::Devices(args) => devices::run(args, out),
        Command::Search(args) => search::run_search(args, out),
        Command::Batch(args) => search::run_batch(args, out),
        Command::Merge(args) => search::run_merge(args, out),
        Command::Calibrate(args) => calibrate::run_calibrate(args, out),
        Command::Validate(args) => calibrate::run_validate(args, out),
        Command::Plot(args) => plot::run(args, out),
        Command::Measure(args) => verify::run_measure(args, out),
        Command::Verify(args) => verify::run_verify(args, out),
        Command::Export(args) => export::run(args, out),
        Command::Completions { shell } => {
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut <Cli as clap::CommandFactory>::command(), "rooflinebench", &mut buf);
            emit(&buf, None, out)
        }
        Command::EngineWorker => std::process::exit(crate::measure::llamacpp::worker::main()?),
        Command::Reproduce(args) => {
            let md = crate::reproduce::reproduce(&args.out)?;
            emit(format!("{md}\nwrote {}\n", args.out.display()).as_bytes(), None, out)
        }
    }
}

/// Writes to `--out` atomically, or to standard output.
pub(crate) fn emit(bytes: &[u8], path: Option<&std::path::Path>, out: &mut dyn std::io::Write) -> Result<()> {
    match path {
        Some(p) => {
            crate::files::outdir::refuse_tool_file(p)?;
            let _lock = crate::files::Lock::take(p)?;
            crate::files::write_atomic(p, bytes)
        }
        None => out.write_all(bytes).map_err(|e| crate::Error::io("<stdout>", e)),
    }
}
