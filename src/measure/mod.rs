//! Measurements on the device through libtorch: `calibrate` (short kernel runs, written as a
//! device profile) and `validate` (real decoder layers, measured against predicted). The
//! libtorch code sits behind the `torch` feature; without it a stub with the same API answers
//! every call with `Error::NotCompiledWithTorch`, so the analytic core builds anywhere.

use serde::Serialize;

pub mod llamacpp;

#[cfg(feature = "torch")]
mod torch;
#[cfg(feature = "torch")]
pub use torch::{calibrate, require, validate};

#[cfg(not(feature = "torch"))]
mod stub;
#[cfg(not(feature = "torch"))]
pub use stub::{calibrate, require, validate};

#[derive(Debug, Clone, Default)]
pub struct MeasureOptions {
    /// Fewer sizes and repeats: about a third of the time, for tests.
    pub quick: bool,
    /// libtorch intra-op threads (default: all cores).
    pub threads: Option<usize>,
    pub progress: bool,
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

/// Accuracy over one phase's workloads.
#[derive(Debug, Clone, Serialize)]
pub struct Accuracy {
    pub phase: &'static str,
    pub workloads: usize,
    pub median_abs_error: f64,
    pub p90_abs_error: f64,
    pub within_10pct: f64,
    pub within_15pct: f64,
}

pub fn accuracy(rows: &[ValidationRow], phase: &'static str) -> Accuracy {
    let mut e: Vec<f64> = rows.iter().filter(|r| r.phase == phase).map(|r| r.error.abs()).collect();
    e.sort_by(f64::total_cmp);
    let q = |p: f64| if e.is_empty() { f64::NAN } else { e[((e.len() - 1) as f64 * p).round() as usize] };
    let share = |t: f64| e.iter().filter(|&&x| x <= t).count() as f64 / e.len().max(1) as f64;
    Accuracy {
        phase,
        workloads: e.len(),
        median_abs_error: q(0.5),
        p90_abs_error: q(0.9),
        within_10pct: share(0.10),
        within_15pct: share(0.15),
    }
}
