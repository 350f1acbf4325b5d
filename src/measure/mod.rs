//! Measurements on the device through libtorch: `calibrate` (short kernel runs, written as a
//! device profile) and `validate` (real decoder layers, measured against predicted). The
//! libtorch code sits behind the `torch` feature; without it a stub with the same API
//! (`torch/stub.rs`) answers every call with `Error::NotCompiledWithTorch`, so the analytic core
//! builds anywhere. llama.cpp (`llamacpp/`) is gated the same way: its `worker` or its stub.

use crate::device::Host;
use serde::Serialize;

pub mod llamacpp;

// Both engines are gated one way: the module that calls the engine sits behind its feature,
// and without it `stub.rs` in the engine's folder takes the module's name, with the same API
// and every call a one-line error saying how to build it (`require` answers before any work).
#[cfg(feature = "torch")]
mod torch;
#[cfg(not(feature = "torch"))]
#[path = "torch/stub.rs"]
mod torch;
pub use torch::{calibrate, require, validate};

#[derive(Debug, Clone, Default)]
pub struct MeasureOptions {
    /// Fewer sizes and repeats: about a third of the time, for tests.
    pub quick: bool,
    /// libtorch intra-op threads (default: all cores).
    pub threads: Option<usize>,
    pub progress: bool,
    /// The device libtorch calibrates or validates on.
    pub on: On,
}

/// `--on`: where libtorch runs the kernels and layers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum On {
    /// The CPU.
    #[default]
    Cpu,
    /// The first NVIDIA GPU (libtorch's CUDA libraries: `scripts/setup-libtorch.sh --cuda`).
    Cuda,
    /// Apple silicon's GPU through Metal Performance Shaders.
    Mps,
    /// CUDA if present, else MPS if present, else the CPU.
    Auto,
}

impl On {
    pub fn name(self) -> &'static str {
        match self {
            On::Cpu => "cpu",
            On::Cuda => "cuda",
            On::Mps => "mps",
            On::Auto => "auto",
        }
    }
}

/// One validation workload: a real decoder layer, measured and predicted.
#[derive(Debug, Clone, Serialize)]
pub struct ValidationRow {
    pub workload: String,
    pub attention: String,
    /// The format weights, activations and the KV cache are in.
    pub dtype: String,
    pub phase: &'static str,
    pub hidden: u32,
    pub heads: u32,
    pub kv_heads: u32,
    pub kv_lora_rank: u32,
    /// Prompt tokens (prefill) or keys attended (decode).
    pub tokens: u32,
    pub measured_s: f64,
    /// Coefficient of variation of the measured repeats.
    pub measured_cv: f64,
    pub predicted_s: f64,
    /// (predicted - measured) / measured.
    pub error: f64,
}

/// The machine measurements run on; `runtime` names the library version (libtorch, llama.cpp).
pub(crate) fn host(threads: u32, runtime: &str) -> Host {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_string())
        // macOS has no /proc; Arm Linux names the board rather than the core.
        .or_else(|| sysctl("machdep.cpu.brand_string"))
        .or_else(|| {
            std::fs::read_to_string("/proc/device-tree/model").ok().map(|m| m.trim_end_matches('\0').trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    Host {
        cpu_model,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
        threads,
        libtorch_version: runtime.to_string(),
        cuda_device: None,
        device: "cpu".into(),
    }
}

/// A /proc/meminfo figure in bytes (`MemTotal`, `MemAvailable`).
fn meminfo_bytes(key: &str) -> Option<f64> {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| m.lines().find(|l| l.starts_with(key)).map(String::from))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<f64>().ok()))
        .map(|kb| kb * 1024.0)
}

/// A `sysctl -n KEY` value (macOS), trimmed; None elsewhere.
fn sysctl(key: &str) -> Option<String> {
    let out = std::process::Command::new("sysctl").args(["-n", key]).output().ok()?;
    let v = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !v.is_empty()).then_some(v)
}

pub(crate) fn total_memory_bytes() -> f64 {
    meminfo_bytes("MemTotal").or_else(|| sysctl("hw.memsize").and_then(|b| b.parse().ok())).unwrap_or(8e9)
}

/// Memory the OS could give a new process now.
pub(crate) fn available_memory_bytes() -> f64 {
    meminfo_bytes("MemAvailable").unwrap_or_else(|| total_memory_bytes() / 2.0)
}

/// Today's date (UTC), ISO 8601, from the system clock.
pub(crate) fn today() -> String {
    let days =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() / 86_400) as i64;
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// A progress bar on a terminal, nothing otherwise.
#[cfg_attr(not(feature = "torch"), allow(dead_code))]
pub(crate) fn progress(len: u64, show: bool) -> indicatif::ProgressBar {
    if show && std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        let bar = indicatif::ProgressBar::new(len);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{msg:30} [{bar:30}] {pos}/{len} {elapsed}")
                .expect("valid template"),
        );
        bar
    } else {
        indicatif::ProgressBar::hidden()
    }
}
