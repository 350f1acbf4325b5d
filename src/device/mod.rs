//! Device profiles: ceilings, efficiency tables and provenance; the built-in library; loading
//! a profile by name or by file path.

mod band;
mod efficiency;
mod library;
pub mod transfer;

pub use band::{Band, ErrorBands};
pub use efficiency::{
    ComputeSize, EfficiencyCurve, EfficiencyPoint, EfficiencyTable, HeadCost, ScoreTail, MAX_CACHE_SPEEDUP,
};
pub use library::{builtin, builtin_names};
pub use transfer::transfer;

use crate::dtype::{DType, TensorType};
use crate::error::{Error, Result};
use crate::workload::OpClass;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceKind {
    Cpu,
    Gpu,
    /// A system on chip with unified memory (Apple silicon, phones).
    Soc,
    /// An edge module (Jetson).
    Edge,
}

/// Where a profile's figures come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// Vendor peak figures.
    Datasheet,
    /// Published micro-benchmark figures (e.g. the paper's Table 1).
    Measured,
    /// This tool's own kernel or engine runs on the device (libtorch or llama.cpp).
    Calibrated,
    /// A named engine on the device, fitted from public measurements of that engine.
    Expected,
}

impl Origin {
    /// How a report names a figure from a profile of this origin.
    pub fn label(self) -> &'static str {
        match self {
            Origin::Datasheet => "upper bound (datasheet)",
            Origin::Measured => "the paper's measured ceilings",
            Origin::Calibrated => "calibrated here",
            Origin::Expected => "expected",
        }
    }
}

/// The inference engine a profile describes, and what that engine does regardless of what a
/// search would prefer: its execution plan and the formats of its activations and KV cache.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Engine {
    /// `llama.cpp`.
    pub name: String,
    /// Version or build, as precise as known.
    pub version: String,
    /// Backend and build features (`CPU: AVX512 = 1 | ...`, `CUDA`, `Metal`).
    pub backend: String,
    /// Threads the runs used (CPU backends).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threads: Option<u32>,
    /// The plan the engine runs in every phase (it does not choose per device).
    pub plan: crate::workload::Plan,
    /// The format activations flow in between kernels.
    pub activations: DType,
    /// The format of the KV cache.
    pub kv_cache: DType,
    /// KV cells the engine's decode attention visits are the context rounded up to a multiple
    /// of this (llama.cpp: 256); masked cells still cost a visit.
    #[serde(default)]
    pub kv_pad: u32,
    /// From a view of this many KV cells, the engine's decode kernel splits a step's view
    /// across threads instead of its heads (llama.cpp's CPU kernel: 512, `use_split_kv_path`),
    /// and the first thread's share is all real cells: the step takes as long as if every cell
    /// of the padded view were real. Below it, or on one thread, each head skips the masked
    /// cells. Set (by calibration here): each step's view is counted exactly (see
    /// [`Engine::kv_view`]); 0: half a pad per step on average, as before.
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub kv_split_min_cells: u32,
    /// How the engine sizes sliding-window layers' caches, in words (the prediction uses
    /// `window_cells`); empty in profiles written before it was said.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub window_cache: String,
}

/// llama.cpp's default micro-batch (`n_ubatch`), which its window caches are sized with.
pub const LLAMA_CPP_UBATCH: u64 = 512;

impl Engine {
    /// llama.cpp as it runs every model: MLA absorbed in both phases (it caches the latent),
    /// flash attention (its CPU default), every norm and activation a kernel of its own, f32
    /// activations between kernels, an f16 KV cache, and decode attention over the context
    /// rounded up to 256 cells. The one description calibration and `devices fit` share.
    pub fn llama_cpp(version: String, backend: String, threads: Option<u32>) -> Engine {
        use crate::workload::{AttentionForm, ElementwiseForm, MlaForm, Plan};
        Engine {
            name: "llama.cpp".into(),
            version,
            backend,
            threads,
            plan: Plan {
                mla: MlaForm::Absorbed,
                attention: AttentionForm::Fused,
                elementwise: ElementwiseForm::Separate,
            },
            activations: DType::F32,
            kv_cache: DType::F16,
            kv_pad: 256,
            kv_split_min_cells: 0,
            window_cache: "swa_full off, as llama-cli, llama-server and llama-bench run it: a windowed layer \
                           caches its window plus one 512-token micro-batch, padded to 256 cells"
                .into(),
        }
    }

    /// Cache cells the engine gives a sliding-window layer at `context` tokens. llama.cpp's
    /// iSWA cache (llama-kv-cache-iswa.cpp, as llama-cli, llama-server and llama-bench run it,
    /// `swa_full` off): the window plus one ubatch of 512, at most the context, padded to 256.
    pub fn window_cells(&self, window: u32, context: u64) -> u64 {
        if self.name == "llama.cpp" {
            let pad = self.kv_pad.max(1) as u64;
            context.min(window as u64 + LLAMA_CPP_UBATCH).div_ceil(pad) * pad
        } else {
            context.min(window as u64)
        }
    }

    /// Attention scores a decode step visits beyond the context itself, on average.
    pub fn padding_scores_factor(&self) -> f64 {
        self.kv_pad as f64 / 2.0
    }

    /// How the engine's decode kernel walks a padded view, where the profile says
    /// (`kv_split_min_cells`); one thread walks only the real cells at every view.
    pub fn kv_view(&self) -> Option<KvView> {
        (self.kv_split_min_cells > 0 && self.kv_pad > 0).then(|| KvView {
            pad: self.kv_pad as f64,
            split_min_cells: if self.threads == Some(1) { f64::INFINITY } else { self.kv_split_min_cells as f64 },
        })
    }
}

/// A decode kernel's padded KV view: `pad` cells per block, and the view from which every
/// cell of it costs a score (below it, only the real cells do).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KvView {
    pub pad: f64,
    pub split_min_cells: f64,
}

fn is_zero_u32(v: &u32) -> bool {
    *v == 0
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    pub origin: Origin,
    pub source: String,
    /// ISO date the figures were taken or published.
    pub date: String,
}

/// The machine a calibration ran on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Host {
    pub cpu_model: String,
    pub cores: u32,
    pub threads: u32,
    pub libtorch_version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cuda_device: Option<String>,
    /// What the measurements ran on: `cpu`, `cuda:0 (GPU name)`, `mps (chip)`, or a llama.cpp
    /// backend and its device. Profiles written before this field were all CPU runs.
    #[serde(default = "cpu")]
    pub device: String,
}

fn cpu() -> String {
    "cpu".into()
}

/// The share of `weight_bytes` a pass that streams them all in one order reads past a cache of
/// `cache_bytes`, which keeps about its size of them: `max(0, 1 - cache / weights)`.
pub fn miss_share(cache_bytes: f64, weight_bytes: f64) -> f64 {
    if weight_bytes > cache_bytes {
        1.0 - cache_bytes / weight_bytes
    } else {
        0.0
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceProfile {
    pub name: String,
    pub description: String,
    pub kind: DeviceKind,
    /// Nominal memory, bytes.
    pub memory_bytes: f64,
    /// Memory a model may really use (OS, driver and wired-memory limits removed), bytes.
    pub usable_memory_bytes: f64,
    /// Why `usable_memory_bytes` is what it is.
    pub usable_memory_source: String,
    /// Main-memory bandwidth, bytes read plus written per second.
    pub bandwidth_bytes_per_s: f64,
    /// Dense peak FLOP/s per compute format; absent formats fall back (see `peak_flops`).
    pub peak_flops: BTreeMap<DType, f64>,
    /// Compute formats the device has no arithmetic for, which its software emulates (FP16 on
    /// a Cortex-A76 under PyTorch, BF16 on the same core): their peaks are far below f32's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub emulated_formats: Vec<DType>,
    /// Fixed cost of one kernel launch, seconds (0 on a datasheet profile).
    #[serde(default)]
    pub kernel_overhead_s: f64,
    /// Fixed cost of one routed expert's product beyond its bytes and FLOPs (llama.cpp's
    /// `mul_mat_id` gathers each expert's rows and runs a product per expert), seconds; 0
    /// where no fit measured it.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub expert_overhead_s: f64,
    /// Fixed cost of one forward pass beyond its kernels (an engine's per-call bookkeeping:
    /// building and scheduling the graph, copying logits), seconds.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub pass_overhead_s: f64,
    /// On-chip memory a fused kernel can tile into (shared memory / L2 / cache), bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_chip_bytes: Option<f64>,
    /// The cache a model's weights stay in from one forward pass to the next, bytes, where a
    /// fit found one: a decode step streams every weight it reads once (a MoE model's top-k
    /// experts, not its idle ones; see `Architecture::streamed_weight_bytes_in`), so a model
    /// whose weights fit reads them from the cache, and one larger than it misses on the share
    /// `1 - cache / weights` (see [`DeviceProfile::weight_miss`]) and pays each product type's
    /// `past_cache_byte_s` for those bytes. Absent: weights cost the same at every size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_cache_bytes: Option<f64>,
    /// Attained fraction of the ceilings by operator class and size, from calibration, for
    /// the format calibration measured first (f32 on a CPU); the fallback for other formats.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub efficiency: BTreeMap<OpClass, EfficiencyTable>,
    /// Tables measured in other compute formats (bf16 kernels behave nothing like f32 ones on
    /// a CPU: different libraries, different small-size overheads). A class absent here uses
    /// `efficiency`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub efficiency_by_format: BTreeMap<DType, BTreeMap<OpClass, EfficiencyTable>>,
    /// Products whose weights are stored in a given type (an engine's dequantising kernels):
    /// compute efficiency by FLOPs (prefill), memory efficiency by bytes (decode). Takes
    /// precedence over the class tables for products.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub product_efficiency: BTreeMap<TensorType, EfficiencyTable>,
    /// The engine the figures describe; absent for datasheet and kernel-level profiles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<Engine>,
    pub provenance: Provenance,
    /// How far its predictions fell from runs its fit did not see; absent on upper bounds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_bands: Option<ErrorBands>,
    /// A CPU engine profile's rates at other thread counts than its runs' (`engine.threads`),
    /// from runs of the same models at those counts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub thread_scaling: Vec<ThreadScaling>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<Host>,
    /// Free-form measurements a calibration records (spreads, probes, warnings).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub notes: BTreeMap<String, serde_json::Value>,
}

/// An engine's attained rates at `threads` against its profile's own thread count: prompt
/// processing (compute-bound) scales almost with the threads, decode (bandwidth-bound) does
/// not, and falls again once the cores contend for memory.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThreadScaling {
    pub threads: u32,
    /// Multiplies every FLOP rate.
    pub compute: f64,
    /// Multiplies every bandwidth, and divides the costs in seconds (see
    /// [`DeviceProfile::at_threads`]).
    pub memory: f64,
    /// Pairs of runs (the same model and test at both counts) behind the factors.
    pub runs: u32,
}

/// A profile in one line of `devices`: its kind, origin and headline figures.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub name: String,
    /// cpu, gpu, soc or edge.
    pub kind: String,
    /// datasheet, measured, calibrated or expected.
    pub origin: String,
    pub bandwidth_bytes_per_s: f64,
    pub f32_flop_per_s: f64,
    pub f16_flop_per_s: f64,
    pub ridge_f16_flop_per_byte: f64,
    pub memory_bytes: f64,
    pub usable_memory_bytes: f64,
    pub description: String,
}

impl DeviceProfile {
    /// Its line in `devices`.
    pub fn summary(&self) -> Summary {
        let lower = |v: &dyn std::fmt::Debug| format!("{v:?}").to_lowercase();
        Summary {
            name: self.name.clone(),
            kind: lower(&self.kind),
            origin: lower(&self.provenance.origin),
            bandwidth_bytes_per_s: self.bandwidth_bytes_per_s,
            f32_flop_per_s: self.peak_flops(DType::F32),
            f16_flop_per_s: self.peak_flops(DType::F16),
            ridge_f16_flop_per_byte: self.ridge_flop_per_byte(DType::F16),
            memory_bytes: self.memory_bytes,
            usable_memory_bytes: self.usable_memory_bytes,
            description: self.description.clone(),
        }
    }

    /// How the profile predicted runs it was not fitted to (`devices fit --holdout`: the median
    /// factor, per phase, and each run), when it was checked so; absent for datasheet profiles.
    pub fn held_out_agreement(&self) -> Option<&serde_json::Value> {
        self.notes.get("held_out_agreement")
    }

    /// The profile as llama.cpp runs with `threads` threads (`-t`): its own when it is the
    /// runs' count, else its rates scaled by the fitted factors for that count (its FLOP rates
    /// by the prompt runs' factor, its bandwidth and costs in seconds by the decode runs'). A count it has
    /// no factors for is refused, naming those it has.
    pub fn at_threads(&self, threads: u32) -> Result<DeviceProfile> {
        let own = self.engine.as_ref().and_then(|e| e.threads);
        if own == Some(threads) {
            return Ok(self.clone());
        }
        let known: Vec<String> =
            own.into_iter().chain(self.thread_scaling.iter().map(|t| t.threads)).map(|t| t.to_string()).collect();
        let Some(s) = self.thread_scaling.iter().find(|t| t.threads == threads) else {
            let got = if known.is_empty() {
                format!("{}, a profile with no thread count", self.name)
            } else {
                format!("{} ({} threads known)", self.name, known.join(", "))
            };
            return Err(Error::Usage(format!(
                "--cpu-threads {threads}: expected a thread count the profile was fitted or scaled for, got {got}"
            )));
        };
        let mut p = self.clone();
        p.peak_flops.values_mut().for_each(|v| *v *= s.compute);
        p.bandwidth_bytes_per_s *= s.memory;
        // The costs in seconds (per kernel, expert product and pass; per decode-attention
        // score and KV byte it reads) are decode's in the main, fitted from decode runs: they
        // scale as decode does. Left alone, a 1-thread profile predicted decode slowing 1.3x
        // where it slowed 1.7x (`results/2026-12-07-xeon-threads/`).
        let per_decode = 1.0 / s.memory;
        p.kernel_overhead_s *= per_decode;
        p.expert_overhead_s *= per_decode;
        p.pass_overhead_s *= per_decode;
        let tables = p.efficiency.values_mut().chain(p.efficiency_by_format.values_mut().flat_map(|t| t.values_mut()));
        for t in tables.chain(p.product_efficiency.values_mut()) {
            t.scale_score_work_s(per_decode);
            t.score_kv_byte_s *= per_decode;
            t.score_spill_s *= per_decode;
            t.past_cache_byte_s *= per_decode;
        }
        if let Some(e) = p.engine.as_mut() {
            e.threads = Some(threads);
        }
        p.description = format!("{} at {threads} threads (scaled from {})", p.description, own.unwrap_or(0));
        Ok(p)
    }

    /// Peak FLOP/s for a compute format. Missing formats fall back to the nearest one the
    /// device has: f16 and bf16 to each other, int8 to f16, and everything last to f32.
    pub fn peak_flops(&self, dtype: DType) -> f64 {
        let chain: &[DType] = match dtype {
            DType::F16 => &[DType::F16, DType::Bf16, DType::F32],
            DType::Bf16 => &[DType::Bf16, DType::F16, DType::F32],
            DType::Int8 => &[DType::Int8, DType::F16, DType::Bf16, DType::F32],
            _ => &[DType::F32],
        };
        chain.iter().find_map(|d| self.peak_flops.get(d).copied()).unwrap_or(f64::NAN)
    }

    /// Operational intensity of the ridge for a compute format, FLOP/byte.
    pub fn ridge_flop_per_byte(&self, dtype: DType) -> f64 {
        self.peak_flops(dtype) / self.bandwidth_bytes_per_s
    }

    /// The share of a model's weight bytes a forward pass reads past the weight cache, for a
    /// model storing `weight_bytes`: `max(0, 1 - cache / weights)` (a pass streams them all in
    /// the same order, and the cache keeps about its size of them), 0 without a cache.
    pub fn weight_miss(&self, weight_bytes: f64) -> f64 {
        self.weight_cache_bytes.map_or(0.0, |cache| miss_share(cache, weight_bytes))
    }

    pub fn has_efficiency_tables(&self) -> bool {
        !self.efficiency.is_empty() || !self.efficiency_by_format.is_empty() || !self.product_efficiency.is_empty()
    }

    /// The precisions a run really uses on this profile: an engine fixes its activations and
    /// KV cache whatever a search space asks for.
    pub fn effective_precisions(&self, p: crate::dtype::Precisions) -> crate::dtype::Precisions {
        match &self.engine {
            Some(e) => {
                crate::dtype::Precisions { weights: p.weights, activations: e.activations, kv_cache: e.kv_cache }
            }
            None => p,
        }
    }

    /// How a report names figures from this profile: "upper bound (datasheet)", "expected
    /// (llama.cpp, fitted from 4 public runs)", "calibrated here (llama.cpp)".
    pub fn kind_label(&self) -> String {
        let origin = self.provenance.origin.label();
        if let (Some(e), Some(from)) = (&self.engine, self.notes.get("transferred_from").and_then(|n| n.as_str())) {
            return format!("{origin} ({}, transferred from {from})", e.name);
        }
        match (&self.engine, self.notes.get("fitted_runs").and_then(|n| n.as_u64())) {
            (Some(e), Some(n)) if self.provenance.origin == Origin::Expected => match e.threads {
                Some(t) if !self.thread_scaling.is_empty() => {
                    let s = if t == 1 { "" } else { "s" };
                    format!("{origin} ({}, fitted from {n} public runs, {t} thread{s})", e.name)
                }
                _ => format!("{origin} ({}, fitted from {n} public runs)", e.name),
            },
            (Some(e), _) => format!("{origin} ({})", e.name),
            (None, _) => origin.to_string(),
        }
    }

    /// A ceiling profile: peaks and bandwidth with no engine costs (datasheet or measured
    /// micro-benchmarks), so every prediction from it is an upper bound on speed.
    pub fn is_upper_bound(&self) -> bool {
        matches!(self.provenance.origin, Origin::Datasheet | Origin::Measured)
            && self.kernel_overhead_s == 0.0
            && !self.has_efficiency_tables()
    }

    /// The efficiency table of an operator class computing in `dtype`: the format's own when
    /// calibration measured it, the default tables otherwise.
    pub fn efficiency_table(&self, dtype: DType, class: OpClass) -> Option<&EfficiencyTable> {
        let find = |c: OpClass| {
            self.efficiency_by_format.get(&dtype).and_then(|t| t.get(&c)).or_else(|| self.efficiency.get(&c))
        };
        match class {
            OpClass::DecodeAttention => find(class).or_else(|| find(OpClass::Attention)),
            // A scan is a small kernel over activations and its state until it has a table.
            OpClass::Scan => find(class).or_else(|| find(OpClass::Elementwise)),
            _ => find(class),
        }
    }

    /// The table of an operator: its weights' storage type first (products), then its class.
    pub fn operator_table(&self, op: &crate::workload::Operator) -> Option<&EfficiencyTable> {
        op.weight_type
            .and_then(|t| self.product_efficiency.get(&t))
            .or_else(|| self.efficiency_table(op.compute, op.class))
    }

    /// Checks what every later stage relies on; `source` names the file.
    pub fn validate(&self, source: &str) -> Result<()> {
        // Every figure within a physical range: a bandwidth of 1e-300 B/s passes "positive" and
        // then makes every time infinite (and a plot's axes endless).
        let within = |field: &str, v: f64, lo: f64, hi: f64| {
            if v.is_finite() && v >= lo && v <= hi {
                Ok(())
            } else {
                Err(Error::field(source, field, format!("a positive number from {lo:e} to {hi:e}"), v))
            }
        };
        crate::files::plain_name(&self.name, source, "name")?;
        within("memory_bytes", self.memory_bytes, 1e6, 1e15)?;
        within("usable_memory_bytes", self.usable_memory_bytes, 1e6, 1e15)?;
        within("bandwidth_bytes_per_s", self.bandwidth_bytes_per_s, 1e6, 1e15)?;
        if self.usable_memory_bytes > self.memory_bytes {
            return Err(Error::field(
                source,
                "usable_memory_bytes",
                format!("at most memory_bytes ({})", self.memory_bytes),
                self.usable_memory_bytes,
            ));
        }
        if !self.peak_flops.contains_key(&DType::F32) {
            return Err(Error::field(source, "peak_flops.f32", "a peak for f32 (the fallback format)", "nothing"));
        }
        for (d, v) in &self.peak_flops {
            within(&format!("peak_flops.{d}"), *v, 1e6, 1e19)?;
        }
        if let Some(b) = self.on_chip_bytes {
            within("on_chip_bytes", b, 1.0, 1e12)?;
        }
        if let Some(b) = self.weight_cache_bytes {
            within("weight_cache_bytes", b, 1.0, 1e12)?;
        }
        if let Some(e) = &self.engine {
            if e.kv_pad > 1 << 20 {
                return Err(Error::field(source, "engine.kv_pad", "at most 1048576 cells", e.kv_pad));
            }
            if e.kv_split_min_cells > 1 << 20 {
                let v = e.kv_split_min_cells;
                return Err(Error::field(source, "engine.kv_split_min_cells", "at most 1048576 cells", v));
            }
        }
        if !(self.pass_overhead_s.is_finite() && (0.0..1.0).contains(&self.pass_overhead_s)) {
            return Err(Error::field(source, "pass_overhead_s", "seconds in [0, 1)", self.pass_overhead_s));
        }
        if !(self.kernel_overhead_s.is_finite() && (0.0..1.0).contains(&self.kernel_overhead_s)) {
            return Err(Error::field(source, "kernel_overhead_s", "seconds in [0, 1)", self.kernel_overhead_s));
        }
        if !(self.expert_overhead_s.is_finite() && (0.0..1.0).contains(&self.expert_overhead_s)) {
            return Err(Error::field(source, "expert_overhead_s", "seconds in [0, 1)", self.expert_overhead_s));
        }
        if let Some(b) = &self.error_bands {
            b.validate(source)?;
        }
        for (i, t) in self.thread_scaling.iter().enumerate() {
            let here = format!("thread_scaling[{i}]");
            if !(1..=1024).contains(&t.threads) {
                return Err(Error::field(source, format!("{here}.threads"), "threads from 1 to 1024", t.threads));
            }
            for (name, v) in [("compute", t.compute), ("memory", t.memory)] {
                if !(v.is_finite() && v > 0.0 && v <= 1024.0) {
                    return Err(Error::field(source, format!("{here}.{name}"), "a factor in (0, 1024]", v));
                }
            }
        }
        for (class, table) in &self.efficiency {
            table.validate(source, &format!("efficiency.{}", class.name()))?;
        }
        for (ty, table) in &self.product_efficiency {
            table.validate(source, &format!("product_efficiency.{ty}"))?;
        }
        for (dtype, tables) in &self.efficiency_by_format {
            for (class, table) in tables {
                table.validate(source, &format!("efficiency_by_format.{dtype}.{}", class.name()))?;
            }
        }
        Ok(())
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("profiles always serialise") + "\n"
    }

    pub fn from_json(text: &str, source: &str) -> Result<DeviceProfile> {
        let profile: DeviceProfile = serde_json::from_str(text).map_err(|e| Error::json(source, &e))?;
        profile.validate(source)?;
        Ok(profile)
    }
}

fn is_zero(v: &f64) -> bool {
    *v == 0.0
}

/// A built-in device by name, or a profile file by path.
pub fn resolve(name_or_path: &str) -> Result<DeviceProfile> {
    if let Some(p) = builtin(name_or_path) {
        return Ok(p);
    }
    let path = Path::new(name_or_path);
    if path.exists() || name_or_path.ends_with(".json") || name_or_path.contains('/') {
        let text = crate::files::read_text(path, crate::files::read::MAX_JSON_BYTES)?;
        return DeviceProfile::from_json(&text, name_or_path);
    }
    let mut near: Vec<(f64, &str)> = builtin_names()
        .map(|n| (strsim::jaro_winkler(&n.to_lowercase(), &name_or_path.to_lowercase()), n))
        .filter(|(score, _)| *score > 0.75)
        .collect();
    near.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
    Err(Error::UnknownDevice {
        name: crate::error::clip(name_or_path),
        suggestions: near.into_iter().take(3).map(|(_, n)| n.to_string()).collect(),
    })
}

#[cfg(test)]
mod weight_cache_tests {
    use super::*;

    #[test]
    fn the_share_past_a_weight_cache_is_what_the_cache_cannot_hold() {
        // 256 MiB of weights against 64 MiB: three quarters stream from memory.
        assert_eq!(miss_share(67108864.0, 268435456.0), 0.75);
        // Within the cache, or exactly its size: none.
        assert_eq!(miss_share(67108864.0, 33554432.0), 0.0);
        assert_eq!(miss_share(67108864.0, 67108864.0), 0.0);
        let mut p = builtin("rpi5").expect("rpi5");
        assert_eq!(p.weight_miss(1e12), 0.0, "no cache, no misses");
        p.weight_cache_bytes = Some(67108864.0);
        assert_eq!(p.weight_miss(268435456.0), 0.75);
    }
}

#[cfg(test)]
mod thread_tests {
    use super::*;

    /// A count's factors: FLOP rates times the prompt factor, bandwidth times the decode
    /// factor, and every cost in seconds divided by the decode factor (hand arithmetic).
    #[test]
    fn another_thread_count_scales_rates_and_costs_in_seconds() {
        let mut p = builtin("rpi5").unwrap();
        p.thread_scaling = vec![ThreadScaling { threads: 1, compute: 0.25, memory: 0.5, runs: 2 }];
        (p.kernel_overhead_s, p.expert_overhead_s, p.pass_overhead_s) = (1e-6, 3e-6, 2e-5);
        let table = p.efficiency.get_mut(&OpClass::DecodeAttention).unwrap();
        (table.score_s, table.score_kv_byte_s, table.score_spill_s) = (1e-8, 1e-11, 4e-8);
        table.score_s_by_value_head = vec![HeadCost { value_head: 64, seconds: 5e-9 }];
        let one = p.at_threads(1).unwrap();
        assert_eq!(one.bandwidth_bytes_per_s, p.bandwidth_bytes_per_s * 0.5);
        assert_eq!(one.peak_flops(DType::F32), p.peak_flops(DType::F32) * 0.25);
        assert_eq!((one.kernel_overhead_s, one.expert_overhead_s, one.pass_overhead_s), (2e-6, 6e-6, 4e-5));
        let t = &one.efficiency[&OpClass::DecodeAttention];
        assert_eq!((t.score_s, t.score_kv_byte_s, t.score_spill_s), (2e-8, 2e-11, 8e-8));
        assert_eq!(t.score_s_by_value_head[0].seconds, 1e-8);
        // Efficiencies are fractions of the scaled ceilings: unchanged.
        assert_eq!(t.compute, p.efficiency[&OpClass::DecodeAttention].compute);
    }
}
