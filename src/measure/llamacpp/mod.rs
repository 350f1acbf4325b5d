//! llama.cpp, the engine people deploy small models with: whole models of random weights
//! written as GGUF, quantised by llama.cpp's own quantiser, and timed the way llama-bench times
//! them (`pp N`, `tg N`, `tg N @ depth d`). Everything that calls llama.cpp is in `ffi` and runs
//! in a worker process (`worker`); this module plans the jobs, starts the worker and reads its
//! answers. Without the `llamacpp` feature every job fails with a one-line error.

#[cfg(feature = "llamacpp")]
mod ffi;
pub mod rounds;
pub mod runs;
pub mod shapes;
pub mod verify;
// Gated as `measure/torch` is: the worker (with `ffi`) behind the feature, or its stub under
// the same name.
#[cfg(feature = "llamacpp")]
pub mod worker;
#[cfg(not(feature = "llamacpp"))]
#[path = "stub.rs"]
pub mod worker;
pub use worker::require;

use crate::arch::Architecture;
use crate::dtype::DType;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub use crate::roofline::BenchTest as Test;

/// What the worker is asked to do.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Job {
    /// Write `arch` as an f16 GGUF of random weights in `dir` and quantise it to `formats`.
    Build { arch: Architecture, context_length: u32, formats: Vec<DType>, dir: PathBuf, seed: u64, threads: i32 },
    /// Load and describe a GGUF file.
    Inspect { path: PathBuf },
    /// Read a GGUF file's metadata and tensor shapes (no weights are loaded).
    Contents { path: PathBuf },
    /// Create a context of `n_ctx` cells on a GGUF file and report the caches llama.cpp
    /// allocates for it.
    Caches { path: PathBuf, n_ctx: u32 },
    /// Time `tests` on every model, alternating models and tests each round, for as many rounds
    /// as `rounds` says (until the bandwidth probe settles, within its caps).
    Bench { models: Vec<PathBuf>, tests: Vec<Test>, rounds: rounds::Rounds, threads: i32 },
}

/// A GGUF file as llama.cpp sees it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BuiltFile {
    pub format: DType,
    pub path: PathBuf,
    pub file_bytes: u64,
    /// llama.cpp's own parameter count (`llama_model_n_params`).
    pub parameters: u64,
    /// llama.cpp's weight bytes (`llama_model_size`).
    pub weight_bytes: u64,
    /// (name, stored type, data bytes) of every tensor.
    pub tensors: Vec<(String, String, u64)>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sample {
    pub model: PathBuf,
    pub test: Test,
    /// Seconds of the timed part, one per round.
    pub seconds: Vec<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchResult {
    pub samples: Vec<Sample>,
    /// ggml's CPU features ("AVX2 = 1 | ...").
    pub system_info: String,
    pub threads: i32,
    pub wall_s: f64,
    /// Share of the machine's CPU time used by other processes during the run.
    pub other_cpu_fraction: f64,
    /// Main-memory read bandwidth probed before each round and after the last, bytes/s.
    pub probes_bytes_per_s: Vec<f64>,
    /// How the rounds ended, and which of them count.
    pub settling: rounds::Settling,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum JobResult {
    Built(Vec<BuiltFile>),
    Bench(BenchResult),
    Contents(crate::arch::gguf_config::GgufContents),
    Caches(Vec<CacheReport>),
}

/// One cache as llama.cpp reports it when it allocates it: a KV cache (an iSWA model has two,
/// the global layers' and the windowed layers') or the recurrent states.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CacheReport {
    /// "kv" or "recurrent".
    pub kind: String,
    /// KV cells (tokens), or recurrent cells (sequences).
    pub cells: u64,
    /// Its size in MiB, as llama.cpp prints it (two decimals).
    pub mib: f64,
    /// The line it was read from.
    pub line: String,
}

impl CacheReport {
    /// Reads `llama_kv_cache: size = X MiB (N cells, ...` or `llama_memory_recurrent: size = X
    /// MiB (N cells, ...`.
    pub fn parse(line: &str) -> Option<CacheReport> {
        let kind = if line.starts_with("llama_kv_cache:") {
            "kv"
        } else if line.starts_with("llama_memory_recurrent:") {
            "recurrent"
        } else {
            return None;
        };
        let after = line.split_once("size =")?.1.trim_start();
        let (mib, rest) = after.split_once("MiB (")?;
        let cells = rest.trim_start().split_once(" cells")?.0.trim();
        Some(CacheReport {
            kind: kind.into(),
            cells: cells.parse().ok()?,
            mib: mib.trim().parse().ok()?,
            line: line.to_string(),
        })
    }
}

/// The caches llama.cpp allocates for `path` at a context of `n_ctx` cells (one sequence,
/// micro-batch 512, window caches as llama-cli sizes them).
pub fn cache_report(path: &Path, n_ctx: u32) -> Result<Vec<CacheReport>> {
    match run_job(&Job::Caches { path: path.to_path_buf(), n_ctx })? {
        JobResult::Caches(c) => Ok(c),
        _ => Err(Error::Engine("the worker answered a cache report with something else".into())),
    }
}

/// The backend llama.cpp was built with (features `llamacpp-cuda`, `-metal`, `-vulkan`).
pub const BACKEND: &str = if cfg!(feature = "llamacpp-cuda") {
    "CUDA"
} else if cfg!(feature = "llamacpp-metal") {
    "Metal"
} else if cfg!(feature = "llamacpp-vulkan") {
    "Vulkan"
} else {
    "CPU"
};

/// Whether models go to the GPU: every layer, as llama-bench's default `-ngl 99` does.
pub const OFFLOAD: bool = cfg!(any(feature = "llamacpp-cuda", feature = "llamacpp-metal", feature = "llamacpp-vulkan"));

/// The engine and version this build measures.
pub const ENGINE_VERSION: &str = if cfg!(feature = "llamacpp-cuda") {
    "llama.cpp as vendored by llama-cpp-sys-2 0.1.161 (CUDA backend, all layers offloaded)"
} else if cfg!(feature = "llamacpp-metal") {
    "llama.cpp as vendored by llama-cpp-sys-2 0.1.161 (Metal backend, all layers offloaded)"
} else if cfg!(feature = "llamacpp-vulkan") {
    "llama.cpp as vendored by llama-cpp-sys-2 0.1.161 (Vulkan backend, all layers offloaded)"
} else {
    "llama.cpp as vendored by llama-cpp-sys-2 0.1.161 (CPU backend, OpenMP)"
};

/// The `rooflinebench` binary that runs jobs: this executable, or `ROOFLINEBENCH_BIN` (tests
/// run from their own harness binaries).
fn worker_binary() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("ROOFLINEBENCH_BIN") {
        return Ok(PathBuf::from(p));
    }
    std::env::current_exe().map_err(|e| Error::io("<current executable>", e))
}

/// Runs one job in a worker process and returns its result; any failure (a file llama.cpp
/// cannot load, an abort inside ggml, a kill) becomes a one-line error.
pub fn run_job(job: &Job) -> Result<JobResult> {
    require("the llama.cpp engine")?;
    let bin = worker_binary()?;
    let child = Command::new(&bin)
        .arg("engine-worker")
        // ggml prints a gdb backtrace on abort; the assertion line is what explains it.
        .env("GGML_NO_BACKTRACE", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::io(&bin, e))?;
    // An interrupt of this process stops the worker too, until it has been waited for.
    let pid = child.id();
    crate::files::interrupt::register_child(pid);
    let out = feed_and_wait(child, job);
    crate::files::interrupt::forget_child(pid);
    let out = out?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        let lines: Vec<&str> = stderr.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
        // A ggml assertion names the failed check; otherwise the worker's last line says why.
        let reason = lines
            .iter()
            .find(|l| l.contains("GGML_ASSERT") || l.contains("GGML_ABORT"))
            .or(lines.last())
            .map_or("no message".to_string(), |l| l.rsplit("llama.cpp/").next().unwrap_or(l).to_string());
        let how = match out.status.code() {
            Some(c) => format!("exit code {c}"),
            None => "killed by a signal".to_string(),
        };
        return Err(Error::Engine(format!("{reason} (worker {how})")));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| Error::Engine(format!("unreadable worker answer: {e}")))
}

/// Writes `job` to the worker and waits for it to end, whatever happens (a worker that stops
/// reading is still waited for, so it is never left running or unreaped).
fn feed_and_wait(mut child: std::process::Child, job: &Job) -> Result<std::process::Output> {
    let input = serde_json::to_vec(job).expect("jobs serialise");
    let written = match child.stdin.take() {
        // Dropped after writing: the worker reads to the end of its input.
        Some(mut stdin) => stdin.write_all(&input),
        None => Ok(()),
    };
    let out = child.wait_with_output().map_err(|e| Error::io("<engine worker>", e))?;
    match written {
        // A worker that ended before reading says why on its stderr.
        Err(_) if !out.status.success() => Ok(out),
        // Not an I/O error of ours: a broken pipe here is no `| head`.
        Err(e) => Err(Error::Engine(format!("could not send the job to the worker: {e}"))),
        Ok(()) => Ok(out),
    }
}

/// Builds `arch` as GGUF files of `formats` in `dir`. Refuses, before writing anything, a model
/// whose f16 file would not fit in half the memory available now (the engine maps it whole).
pub fn build(arch: &Architecture, formats: &[DType], dir: &Path, seed: u64, threads: i32) -> Result<Vec<BuiltFile>> {
    require("building GGUF files")?;
    crate::arch::gguf::gguf_layout(arch, arch.max_position_embeddings)?;
    let need = arch.stored_weight_bytes(DType::F16);
    let available = crate::measure::available_memory_bytes();
    if need > 0.5 * available {
        return Err(Error::Engine(format!(
            "{}: its f16 GGUF file would be {:.2} GB, more than half the memory available now ({:.2} GB); \
             refusing before writing it",
            arch.name,
            need / 1e9,
            available / 1e9
        )));
    }
    if let Some(f) = formats.iter().find(|f| crate::arch::gguf::file_type(**f).is_none()) {
        return Err(Error::Usage(format!(
            "{f} weights have no GGUF type llama.cpp runs (use f16, bf16, q8_0, q4_0 or q4_k_m)"
        )));
    }
    let job = Job::Build {
        arch: arch.clone(),
        context_length: arch.max_position_embeddings,
        formats: formats.to_vec(),
        dir: dir.to_path_buf(),
        seed,
        threads,
    };
    match run_job(&job)? {
        JobResult::Built(files) => Ok(files),
        _ => Err(Error::Engine("the worker answered a build with something else".into())),
    }
}

/// Times tests on models (see `Job::Bench`).
pub fn bench(models: &[PathBuf], tests: &[Test], rounds: rounds::Rounds, threads: i32) -> Result<BenchResult> {
    let job = Job::Bench { models: models.to_vec(), tests: tests.to_vec(), rounds, threads };
    match run_job(&job)? {
        JobResult::Bench(b) => Ok(b),
        _ => Err(Error::Engine("the worker answered a benchmark with something else".into())),
    }
}

/// The architecture of a GGUF file, from its metadata as llama.cpp's parser reads it: what lets
/// `devices fit` match llama-bench runs of downloaded or exported models without their
/// config.json.
pub fn architecture_of(path: &Path) -> Result<Architecture> {
    let source = path.display().to_string();
    let contents = match run_job(&Job::Contents { path: path.to_path_buf() })? {
        JobResult::Contents(c) => c,
        _ => return Err(Error::Engine("the worker answered a metadata read with something else".into())),
    };
    let cfg = crate::arch::gguf_config::hf_config_of(&contents, &source)?;
    let name = match contents.metadata.get("general.name").and_then(|v| v.as_str()) {
        Some(n) if !n.trim().is_empty() => n.trim().to_string(),
        _ => path.file_stem().and_then(|s| s.to_str()).unwrap_or("model").to_string(),
    };
    crate::arch::parse_hf_config(&cfg.to_string(), &source, &name)
}
