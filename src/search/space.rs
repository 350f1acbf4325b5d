//! Search-space files (TOML): the architecture dimensions, precisions, workload, constraints
//! and objective; and the enumeration of a space in a fixed, index-addressable order.
//!
//! A space is a union of blocks, one per (attention kind, FFN kind) pair, each the cartesian
//! product of only the dimensions that kind uses (an MHA candidate has no `kv_heads` digit), so
//! no two indices describe the same candidate. Index `i` decodes to one candidate in mixed radix,
//! which makes parallel chunks and `--shard K/N` slices deterministic.

use crate::arch::{
    Activation, Architecture, Attention, AttentionKind, DeltaNet, Family, Ffn, Layer, LayerGroups, Mamba2, Mixer, Mla,
    Moe,
};
use crate::dtype::{DType, Precisions};
use crate::error::{Error, Result};
use crate::files::plain_name;
use crate::quality::Tokens;
use crate::roofline::Scenario;
use serde::Deserialize;
use std::path::Path;

/// A list of values, or an arithmetic range `{ from, to, step }` (inclusive).
#[derive(Debug, Clone)]
pub enum Values<T> {
    List(Vec<T>),
    Range { from: T, to: T, step: T },
}

/// Values a dimension may take at most: a range is counted against this before it is expanded.
pub const MAX_VALUES: u64 = 100_000;

// By hand rather than `untagged`, so that a bad value says what it is and what was expected
// (`integer -1, expected u32`) instead of "did not match any variant".
impl<'de, T: Deserialize<'de>> Deserialize<'de> for Values<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for V<T> {
            type Value = Values<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list of values or a range { from, to, step }")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(x) = seq.next_element()? {
                    if out.len() as u64 >= MAX_VALUES {
                        return Err(serde::de::Error::custom(format!("at most {MAX_VALUES} values")));
                    }
                    out.push(x);
                }
                Ok(Values::List(out))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> std::result::Result<Self::Value, A::Error> {
                let (mut from, mut to, mut step) = (None, None, None);
                while let Some(key) = map.next_key::<String>()? {
                    let slot = match key.as_str() {
                        "from" => &mut from,
                        "to" => &mut to,
                        "step" => &mut step,
                        other => {
                            return Err(serde::de::Error::unknown_field(
                                &crate::error::clip(other),
                                &["from", "to", "step"],
                            ))
                        }
                    };
                    *slot = Some(map.next_value()?);
                }
                let need = |v: Option<T>, k: &'static str| v.ok_or_else(|| serde::de::Error::missing_field(k));
                Ok(Values::Range { from: need(from, "from")?, to: need(to, "to")?, step: need(step, "step")? })
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SpaceFile {
    name: Option<String>,
    description: Option<String>,
    architecture: ArchitectureFile,
    #[serde(default)]
    precision: PrecisionFile,
    workload: WorkloadFile,
    #[serde(default)]
    constraints: Constraints,
    #[serde(default)]
    objective: ObjectiveFile,
    #[serde(default)]
    training: TrainingFile,
}

/// `[training]`: the data the candidates would be trained on, for the loss estimate.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TrainingFile {
    /// The same number of tokens for every candidate ...
    tokens: Option<f64>,
    /// ... or this many per parameter. Neither: `quality::DEFAULT_TOKENS`.
    tokens_per_parameter: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ArchitectureFile {
    layers: Values<u32>,
    hidden: Values<u32>,
    heads: Values<u32>,
    /// Per-head size; absent means hidden / heads.
    head_dim: Option<Values<u32>>,
    attention: Vec<AttentionKind>,
    /// GQA key/value heads.
    kv_heads: Option<Values<u32>>,
    mla_kv_lora_rank: Option<Values<u32>>,
    /// 0 means no query compression.
    mla_q_lora_rank: Option<Values<u32>>,
    mla_rope_head_dim: Option<Values<u32>>,
    /// Absent means the head size.
    mla_nope_head_dim: Option<Values<u32>>,
    mla_v_head_dim: Option<Values<u32>>,
    #[serde(default = "default_ffn")]
    ffn: Vec<FfnKind>,
    /// Intermediate size as a multiple of hidden (rounded to a multiple of 64).
    ffn_multiplier: Values<f64>,
    moe_experts: Option<Values<u32>>,
    moe_top_k: Option<Values<u32>>,
    moe_shared_experts: Option<Values<u32>>,
    /// Expert width as a multiple of hidden.
    moe_expert_multiplier: Option<Values<f64>>,
    moe_first_k_dense: Option<Values<u32>>,
    vocab: Values<u32>,
    #[serde(default = "default_tie")]
    tie_embeddings: Vec<bool>,
    /// What the layers between global-attention ones are: `global` (a uniform stack),
    /// `window`, `conv`, `deltanet`, `mamba2`. Each kind searches as its own block.
    #[serde(default = "default_mixer")]
    mixer: Vec<MixerKind>,
    /// One global-attention layer per this many layers (at least 2), in hybrid blocks.
    global_every: Option<Values<u32>>,
    /// Where the global layer sits in each period: `last` (Gemma 3) or `first`.
    global_at: Option<Vec<GlobalAt>>,
    /// Sliding windows, tokens (`window` blocks).
    window: Option<Values<u32>>,
    /// Short-convolution taps (`conv` blocks; LFM2 uses 3).
    conv_kernel: Option<Values<u32>>,
    /// Gated DeltaNet heads (key and value) and their head size (`deltanet` blocks).
    deltanet_heads: Option<Values<u32>>,
    deltanet_head_dim: Option<Values<u32>>,
    /// Mamba2 head size and state size (`mamba2` blocks; inner width twice hidden).
    mamba_head_dim: Option<Values<u32>>,
    mamba_state: Option<Values<u32>>,
}

fn default_mixer() -> Vec<MixerKind> {
    vec![MixerKind::Global]
}

/// The layer kind a block mixes with global attention, and the family it exports as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MixerKind {
    /// Every layer global attention (llama, deepseek_v2).
    Global,
    /// Sliding-window attention (gemma3_text: GeGLU, four norms and q/k norms per layer).
    Window,
    /// Gated short convolutions (lfm2: q/k norms, heads of hidden / heads).
    Conv,
    /// Gated DeltaNet (qwen3_5_text: gated attention with q/k norms).
    Deltanet,
    /// Mamba2 (granitemoehybrid: attention without RoPE).
    Mamba2,
}

impl MixerKind {
    pub fn name(self) -> &'static str {
        match self {
            MixerKind::Global => "global",
            MixerKind::Window => "window",
            MixerKind::Conv => "conv",
            MixerKind::Deltanet => "deltanet",
            MixerKind::Mamba2 => "mamba2",
        }
    }
}

/// Where a hybrid's global-attention layer sits in its period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GlobalAt {
    Last,
    First,
}

fn default_ffn() -> Vec<FfnKind> {
    vec![FfnKind::Gated]
}

fn default_tie() -> Vec<bool> {
    vec![true]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FfnKind {
    /// SwiGLU: gate, up and down matrices.
    Gated,
    /// DeepSeek-style mixture of experts (exports as deepseek_v2, so it needs MLA).
    Moe,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PrecisionFile {
    #[serde(default = "bf16")]
    weights: Vec<String>,
    #[serde(default = "bf16")]
    activations: Vec<String>,
    /// Absent: the activation format.
    kv: Option<Vec<String>>,
}

fn bf16() -> Vec<String> {
    vec!["bf16".into()]
}

impl Default for PrecisionFile {
    fn default() -> Self {
        PrecisionFile { weights: bf16(), activations: bf16(), kv: None }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WorkloadFile {
    /// One scenario by name (siso, silo, liso, lilo) ...
    scenario: Option<String>,
    /// ... or a weighted mix.
    mix: Option<Vec<MixEntry>>,
    #[serde(default = "one")]
    batch: u32,
    /// KV cache sized for this context instead of the longest scenario's.
    max_context: Option<u64>,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MixEntry {
    scenario: Option<String>,
    prompt: Option<u32>,
    generate: Option<u32>,
    weight: f64,
}

/// Limits a candidate must meet.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Constraints {
    /// Parameter band: the capacity proxy.
    pub min_params: Option<f64>,
    pub max_params: Option<f64>,
    /// Memory budget in bytes; absent means the device's usable memory.
    pub memory_budget_bytes: Option<f64>,
    /// Limits that every scenario of the mix must meet.
    pub max_ttft_s: Option<f64>,
    pub max_tpot_s: Option<f64>,
    pub min_decode_tokens_per_s: Option<f64>,
    /// Upper limit on the predicted pre-training loss (nats per token).
    pub max_loss: Option<f64>,
    /// Lower limit on the parameters outside the embedding (a size floor that vocabulary
    /// cannot meet).
    pub min_non_embedding_params: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Objective {
    /// Relative Inference Potential of the workload point (maximise).
    #[default]
    Rip,
    /// Decode tokens per second (maximise).
    DecodeTokensPerS,
    /// End-to-end time of the workload (minimise).
    Latency,
    /// rip per billion parameters (maximise).
    RipPerParam,
    /// Predicted pre-training loss (minimise).
    Loss,
}

impl Objective {
    /// The name a space file uses (`[objective] metric = ...`).
    pub fn name(self) -> &'static str {
        match self {
            Objective::Rip => "rip",
            Objective::DecodeTokensPerS => "decode_tokens_per_s",
            Objective::Latency => "latency",
            Objective::RipPerParam => "rip_per_param",
            Objective::Loss => "loss",
        }
    }

    /// What it means, for summaries.
    pub fn describe(self) -> &'static str {
        match self {
            Objective::Rip => "rip (relative inference potential of the workload, maximised)",
            Objective::DecodeTokensPerS => "decode tokens/s (maximised)",
            Objective::Latency => "end-to-end latency of the workload (minimised)",
            Objective::RipPerParam => "rip per billion parameters (maximised)",
            Objective::Loss => "predicted pre-training loss (minimised)",
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ObjectiveFile {
    #[serde(default)]
    metric: Objective,
    /// The recommendation is the fastest candidate whose rip is within this fraction of the best.
    #[serde(default = "default_margin")]
    rip_margin: f64,
    /// The summary names the lowest predicted loss among candidates whose TPOT is at most this
    /// fraction above the recommendation's.
    #[serde(default = "default_quality_margin")]
    quality_tpot_margin: f64,
}

fn default_margin() -> f64 {
    0.02
}

fn default_quality_margin() -> f64 {
    0.10
}

impl Default for ObjectiveFile {
    fn default() -> Self {
        ObjectiveFile {
            metric: Objective::Rip,
            rip_margin: default_margin(),
            quality_tpot_margin: default_quality_margin(),
        }
    }
}

/// Dimension lists of a resolved space.
#[derive(Debug, Clone)]
pub struct Dims {
    pub layers: Vec<u32>,
    pub hidden: Vec<u32>,
    pub heads: Vec<u32>,
    /// `None` = hidden / heads.
    pub head_dim: Vec<Option<u32>>,
    pub vocab: Vec<u32>,
    pub tie: Vec<bool>,
    pub precisions: Vec<Precisions>,
    pub kv_heads: Vec<u32>,
    pub kv_lora_rank: Vec<u32>,
    pub q_lora_rank: Vec<u32>,
    pub rope_head_dim: Vec<u32>,
    /// `None` = the head size.
    pub nope_head_dim: Vec<Option<u32>>,
    pub v_head_dim: Vec<Option<u32>>,
    pub ffn_multiplier: Vec<f64>,
    pub moe_experts: Vec<u32>,
    pub moe_top_k: Vec<u32>,
    pub moe_shared: Vec<u32>,
    pub moe_expert_multiplier: Vec<f64>,
    pub moe_first_k_dense: Vec<u32>,
    pub global_every: Vec<u32>,
    pub global_at: Vec<GlobalAt>,
    pub window: Vec<u32>,
    pub conv_kernel: Vec<u32>,
    pub deltanet_heads: Vec<u32>,
    pub deltanet_head_dim: Vec<u32>,
    pub mamba_head_dim: Vec<u32>,
    pub mamba_state: Vec<u32>,
}

/// One (layer kind, attention kind, FFN kind) block and its size.
#[derive(Debug, Clone)]
pub struct Block {
    pub mixer: MixerKind,
    pub attention: AttentionKind,
    pub ffn: FfnKind,
    radices: Vec<usize>,
    pub size: u64,
    /// Candidates per depth: the product of every radix but the depth's.
    shapes: u64,
    /// Dense FFNs and ascending depths: a deeper candidate of a shape is valid where the shape
    /// is, and has at least its parameters (see [`SearchSpace::depths_after`]).
    deepens: bool,
}

/// Where a position of the search's order falls: its block (whose candidates' indices start
/// at `offset`), the tile of depths holding it (from `first_depth`, `tile_depths` long), its
/// depth's place in the tile and its shape.
struct Place<'a> {
    block: &'a Block,
    offset: u64,
    first_depth: u64,
    tile_depths: u64,
    depth_in_tile: u64,
    shape: u64,
}

/// The digits of the last shape [`SearchSpace::candidate_in`] decoded (every axis but the
/// depth), and which block and shape they are.
#[derive(Debug, Clone, Default)]
pub struct ShapeDigits {
    shape: Option<(usize, u64)>,
    digits: [usize; 24],
    /// The last candidate decoded: its block, index in the block, depth and shape (the next
    /// depth of the same shape follows without a division).
    last: Option<(usize, u64, u64, u64)>,
}

/// A weighted workload: scenarios and weights (summing to 1).
#[derive(Debug, Clone, PartialEq)]
pub struct Workload {
    pub mix: Vec<(Scenario, f64)>,
    pub batch: u32,
    pub max_context: u64,
}

#[derive(Debug, Clone)]
pub struct SearchSpace {
    /// A plain file name: output folders are named after it.
    pub name: String,
    /// Where the space came from (its file), for messages.
    pub source_name: String,
    pub description: String,
    pub dims: Dims,
    pub blocks: Vec<Block>,
    pub workload: Workload,
    pub constraints: Constraints,
    pub objective: Objective,
    pub rip_margin: f64,
    /// The TOML text the space was read from (written beside a search's results, so the
    /// folder alone can rebuild any candidate: `verify`, `export`).
    pub source: String,
    /// See `[objective] quality_tpot_margin`.
    pub quality_tpot_margin: f64,
    /// Training tokens for the loss estimate.
    pub tokens: Tokens,
}

/// Why a candidate is skipped before scoring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Invalid {
    HeadsDoNotDivideHidden,
    KvHeadsNotAProperDivisor,
    TopKAboveExperts,
    FirstKDenseNotBelowLayers,
    MoeNeedsMla,
    MoeHeadsDoNotDivideHidden,
    /// Hybrid layer kinds come with grouped attention (MHA, GQA, MQA) and dense FFNs.
    HybridNeedsGroupedDense,
    GlobalEveryAboveLayers,
    /// LFM2 needs heads of hidden / heads; Mamba2's heads must divide its inner width.
    HybridHeadsDoNotFit,
    /// An index at or past `count()` (a hand-edited index).
    NotInSpace,
}

impl Invalid {
    pub fn describe(self) -> &'static str {
        match self {
            Invalid::HeadsDoNotDivideHidden => "heads do not divide hidden (no head_dim given)",
            Invalid::KvHeadsNotAProperDivisor => "kv_heads is not a divisor of heads below heads",
            Invalid::TopKAboveExperts => "moe_top_k above moe_experts",
            Invalid::FirstKDenseNotBelowLayers => "moe_first_k_dense not below layers",
            Invalid::MoeNeedsMla => "moe without mla (exports only as deepseek_v2)",
            Invalid::MoeHeadsDoNotDivideHidden => {
                "moe with heads not dividing hidden (transformers' DeepseekV2Config rejects it, and DeepSeek-V3 routes differently)"
            }
            Invalid::HybridNeedsGroupedDense => {
                "window, conv, deltanet and mamba2 layers with mla or moe (no family exports them)"
            }
            Invalid::GlobalEveryAboveLayers => "global_every above layers (no global-attention layer)",
            Invalid::HybridHeadsDoNotFit => {
                "conv with head_dim other than hidden / heads (lfm2), or mamba_head_dim not dividing 2 x hidden"
            }
            Invalid::NotInSpace => "no such candidate in the space",
        }
    }
}

/// A value a range can step through: counted exactly before anything is allocated.
trait Step: Copy + PartialOrd + std::fmt::Display + std::fmt::Debug {
    /// Values of `from..=to` by `step`, or `None` if that is not a finite count.
    fn count(from: Self, to: Self, step: Self) -> Option<u64>;
    /// The `n` values of a counted range.
    fn values(from: Self, to: Self, step: Self, n: u64) -> Vec<Self>;
    fn is_positive(self) -> bool;
    fn is_finite(self) -> bool;
}

impl Step for u32 {
    fn count(from: u32, to: u32, step: u32) -> Option<u64> {
        Some((to as u64 - from as u64) / step as u64 + 1)
    }
    fn values(from: u32, _: u32, step: u32, n: u64) -> Vec<u32> {
        // The i-th value is at most `to` for i below the count: no wrap.
        (0..n).map(|i| (from as u64 + i * step as u64) as u32).collect()
    }
    fn is_positive(self) -> bool {
        self > 0
    }
    fn is_finite(self) -> bool {
        true
    }
}

impl Step for f64 {
    fn count(from: f64, to: f64, step: f64) -> Option<u64> {
        let n = ((to - from) / step).floor() + 1.0;
        (n.is_finite() && n >= 1.0).then(|| n.min(u64::MAX as f64) as u64)
    }
    // Accumulated as ranges always were (the baseline's values depend on it), and bounded by
    // the count too: a step below the spacing of floats near `from` would stall.
    fn values(from: f64, to: f64, step: f64, n: u64) -> Vec<f64> {
        let mut out = Vec::with_capacity(n as usize);
        let mut x = from;
        while x <= to && (out.len() as u64) < n {
            out.push(x);
            x += step;
        }
        out
    }
    fn is_positive(self) -> bool {
        self > 0.0
    }
    fn is_finite(self) -> bool {
        f64::is_finite(self)
    }
}

fn expand<T: Step>(v: &Values<T>, src: &str, field: &str) -> Result<Vec<T>> {
    let out = match v {
        Values::List(l) => {
            if let Some(bad) = l.iter().find(|x| !x.is_finite()) {
                return Err(Error::field(src, field, "finite values", bad));
            }
            l.clone()
        }
        Values::Range { from, to, step } => {
            for (what, x) in [("from", from), ("to", to), ("step", step)] {
                if !x.is_finite() {
                    return Err(Error::field(src, format!("{field}.{what}"), "a finite number", x));
                }
            }
            if !step.is_positive() {
                return Err(Error::field(src, format!("{field}.step"), "a positive step", step));
            }
            if from > to {
                return Err(Error::field(src, format!("{field}.from"), format!("from <= to (to is {to:?})"), from));
            }
            let n = T::count(*from, *to, *step).filter(|&n| n <= MAX_VALUES).ok_or_else(|| {
                Error::field(
                    src,
                    format!("{field}.step"),
                    format!("a step giving at most {MAX_VALUES} values from {from:?} to {to:?}"),
                    step,
                )
            })?;
            T::values(*from, *to, *step, n)
        }
    };
    if out.is_empty() {
        return Err(Error::field(src, field, "at least one value", "an empty list"));
    }
    Ok(out)
}

/// Each value at most `max`: every later size is a product of these, and bounded ones cannot
/// overflow (see `arch::limits`).
fn at_most(v: Vec<u32>, max: u32, src: &str, field: &str) -> Result<Vec<u32>> {
    match v.iter().find(|&&x| x > max) {
        Some(x) => Err(Error::field(src, field, format!("values at most {max}"), x)),
        None => Ok(v),
    }
}

fn positive_list(v: Vec<u32>, src: &str, field: &str) -> Result<Vec<u32>> {
    match v.iter().find(|&&x| x == 0) {
        Some(_) => Err(Error::field(src, field, "positive values", 0)),
        None => Ok(v),
    }
}

fn opt<T: Step>(
    v: &Option<Values<T>>,
    src: &str,
    field: &str,
    needed_by: Option<&str>,
    default: Vec<T>,
) -> Result<Vec<T>> {
    match (v, needed_by) {
        (Some(v), _) => expand(v, src, field),
        (None, Some(kind)) if default.is_empty() => {
            Err(Error::field(src, field, format!("a list (required when {kind} is searched)"), "nothing"))
        }
        _ => Ok(default),
    }
}

fn scenario_of(e: &MixEntry, src: &str) -> Result<Scenario> {
    let bad = |field: &str, got: &dyn std::fmt::Display| {
        Error::field(
            src,
            format!("workload.mix.{field}"),
            "either scenario = NAME or positive prompt and generate",
            got,
        )
    };
    match (&e.scenario, e.prompt, e.generate) {
        (Some(n), None, None) => {
            Scenario::named(n).map_err(|_| Error::field(src, "workload.mix.scenario", "siso, silo, liso or lilo", n))
        }
        (Some(_), _, _) => Err(bad("scenario", &"a scenario and prompt/generate")),
        (None, Some(p), Some(g)) => {
            let max = crate::roofline::MAX_TOKENS;
            for (field, v) in [("prompt", p), ("generate", g)] {
                if !(1..=max).contains(&v) {
                    return Err(Error::field(
                        src,
                        format!("workload.mix.{field}"),
                        format!("tokens from 1 to {max}"),
                        v,
                    ));
                }
            }
            Scenario::new(format!("p{p}g{g}"), p, g)
        }
        (None, Some(_), None) => Err(bad("generate", &"nothing (prompt without generate)")),
        (None, None, Some(_)) => Err(bad("prompt", &"nothing (generate without prompt)")),
        (None, None, None) => Err(bad("scenario", &"nothing")),
    }
}

/// A width rounded to a multiple of 64 (at least 64).
#[inline]
pub(crate) fn round64(x: f64) -> u32 {
    ((x / 64.0).round() as u32).max(1) * 64
}

/// Every combination of the listed weight, activation and KV-cache formats.
fn precisions_of(p: &PrecisionFile, src: &str) -> Result<Vec<Precisions>> {
    let parse_dtypes = |field: &str, names: &[String]| -> Result<Vec<DType>> {
        if names.is_empty() {
            return Err(Error::field(src, field, "at least one precision", "an empty list"));
        }
        names.iter().map(|n| n.parse::<DType>().map_err(|e| Error::field(src, field, e, n))).collect()
    };
    let weights = parse_dtypes("precision.weights", &p.weights)?;
    let activations = parse_dtypes("precision.activations", &p.activations)?;
    if let Some(bad) = activations.iter().find(|d| d.is_block_quantised()) {
        return Err(Error::field(src, "precision.activations", "f32, f16, bf16 or int8", bad));
    }
    let kv = p.kv.as_ref().map(|k| parse_dtypes("precision.kv", k)).transpose()?;
    let mut precisions = Vec::new();
    for &w in &weights {
        for &act in &activations {
            for &k in kv.as_deref().unwrap_or(&[act]) {
                precisions.push(Precisions { weights: w, activations: act, kv_cache: k });
            }
        }
    }
    Ok(precisions)
}

/// Expands and checks the axes of one `[architecture]` table: `src` names the file.
struct Axes<'a> {
    src: &'a str,
}

impl Axes<'_> {
    /// `architecture.<field>`.
    fn full(field: &str) -> String {
        format!("architecture.{field}")
    }

    /// Positive and bounded: `field` names the key, `max` its physical limit.
    fn sized(&self, v: Vec<u32>, field: &str, max: u32) -> Result<Vec<u32>> {
        let full = Self::full(field);
        at_most(positive_list(v, self.src, &full)?, max, self.src, &full)
    }

    /// A required axis of sizes.
    fn required(&self, v: &Values<u32>, field: &str, max: u32) -> Result<Vec<u32>> {
        self.sized(expand(v, self.src, &Self::full(field))?, field, max)
    }

    /// An axis of sizes that may be absent (`None`: derived from the others).
    fn maybe(&self, v: &Option<Values<u32>>, field: &str, max: u32) -> Result<Vec<Option<u32>>> {
        Ok(match v {
            Some(v) => self.required(v, field, max)?.into_iter().map(Some).collect(),
            None => vec![None],
        })
    }

    /// An axis of sizes required when `kind` is searched, empty otherwise.
    fn needed_by(&self, v: &Option<Values<u32>>, field: &str, kind: Option<&str>, max: u32) -> Result<Vec<u32>> {
        self.sized(opt(v, self.src, &Self::full(field), kind, vec![])?, field, max)
    }

    /// An axis of sizes, `default` when absent.
    fn sizes_or(&self, v: &Option<Values<u32>>, field: &str, default: u32, max: u32) -> Result<Vec<u32>> {
        self.sized(opt(v, self.src, &Self::full(field), None, vec![default])?, field, max)
    }

    /// An axis of counts that may be zero, `default` when absent.
    fn counts_or(&self, v: &Option<Values<u32>>, field: &str, default: u32, max: u32) -> Result<Vec<u32>> {
        let full = Self::full(field);
        at_most(opt(v, self.src, &full, None, vec![default])?, max, self.src, &full)
    }

    /// Every value at least 2 (`global_every`, `conv_kernel`).
    fn at_least_two(&self, list: Vec<u32>, field: &str) -> Result<Vec<u32>> {
        match list.iter().find(|&&x| x < 2) {
            Some(x) => Err(Error::field(self.src, Self::full(field), "values of at least 2", x)),
            None => Ok(list),
        }
    }

    /// Width multipliers: positive, and at most what keeps `x widest` within the FFN limit.
    fn multipliers(&self, v: &Values<f64>, field: &str, widest: f64) -> Result<Vec<f64>> {
        let full = Self::full(field);
        let list = expand(v, self.src, &full)?;
        let max = crate::arch::limits::MAX_INTERMEDIATE;
        let cap = max as f64 / widest;
        match list.iter().find(|m| !(**m > 0.0 && **m <= cap)) {
            Some(m) => Err(Error::field(
                self.src,
                full,
                format!("positive multipliers at most {cap} (x hidden up to {max})"),
                m,
            )),
            None => Ok(list),
        }
    }

    /// A non-empty list of choices (`tie_embeddings`, `global_at`).
    fn choices<T: Clone>(&self, list: &[T], field: &str, expected: &str) -> Result<Vec<T>> {
        if list.is_empty() {
            return Err(Error::field(self.src, Self::full(field), expected, "an empty list"));
        }
        Ok(list.to_vec())
    }
}

/// The axes' values, each expanded and checked against its physical limit.
fn dims_of(a: &ArchitectureFile, precisions: Vec<Precisions>, src: &str) -> Result<Dims> {
    use crate::arch::limits::*;
    let has = |k| a.attention.contains(&k);
    let moe = a.ffn.contains(&FfnKind::Moe);
    let x = Axes { src };
    x.choices(&a.mixer, "mixer", "global, window, conv, deltanet and/or mamba2")?;
    let mixer = |k: MixerKind| a.mixer.contains(&k).then_some(k.name());
    let hybrid = a.mixer.iter().find(|k| **k != MixerKind::Global).map(|k| k.name());
    let hidden = x.required(&a.hidden, "hidden", MAX_WIDTH)?;
    let widest = *hidden.iter().max().expect("non-empty") as f64;
    let ffn_multiplier = x.multipliers(&a.ffn_multiplier, "ffn_multiplier", widest)?;
    let heads = x.required(&a.heads, "heads", MAX_HEADS)?;
    Ok(Dims {
        layers: x.required(&a.layers, "layers", MAX_LAYERS)?,
        head_dim: x.maybe(&a.head_dim, "head_dim", MAX_WIDTH)?,
        vocab: x.required(&a.vocab, "vocab", MAX_VOCAB)?,
        tie: x.choices(&a.tie_embeddings, "tie_embeddings", "true and/or false")?,
        precisions,
        kv_heads: x.needed_by(&a.kv_heads, "kv_heads", has(AttentionKind::Gqa).then_some("gqa"), MAX_HEADS)?,
        kv_lora_rank: x.needed_by(
            &a.mla_kv_lora_rank,
            "mla_kv_lora_rank",
            has(AttentionKind::Mla).then_some("mla"),
            MAX_WIDTH,
        )?,
        q_lora_rank: x.counts_or(&a.mla_q_lora_rank, "mla_q_lora_rank", 0, MAX_WIDTH)?,
        rope_head_dim: x.sizes_or(&a.mla_rope_head_dim, "mla_rope_head_dim", 64, MAX_WIDTH)?,
        nope_head_dim: x.maybe(&a.mla_nope_head_dim, "mla_nope_head_dim", MAX_WIDTH)?,
        v_head_dim: x.maybe(&a.mla_v_head_dim, "mla_v_head_dim", MAX_WIDTH)?,
        ffn_multiplier,
        moe_experts: x.needed_by(&a.moe_experts, "moe_experts", moe.then_some("moe"), MAX_EXPERTS)?,
        moe_top_k: x.needed_by(&a.moe_top_k, "moe_top_k", moe.then_some("moe"), MAX_EXPERTS)?,
        moe_shared: x.counts_or(&a.moe_shared_experts, "moe_shared_experts", 0, MAX_EXPERTS)?,
        moe_expert_multiplier: match (&a.moe_expert_multiplier, moe) {
            (Some(v), _) => x.multipliers(v, "moe_expert_multiplier", widest)?,
            (None, true) => {
                return Err(Error::field(
                    src,
                    "architecture.moe_expert_multiplier",
                    "a list (required when moe is searched)",
                    "nothing",
                ))
            }
            (None, false) => vec![],
        },
        moe_first_k_dense: x.counts_or(&a.moe_first_k_dense, "moe_first_k_dense", 0, MAX_LAYERS)?,
        global_every: x
            .at_least_two(x.needed_by(&a.global_every, "global_every", hybrid, MAX_LAYERS)?, "global_every")?,
        global_at: match &a.global_at {
            Some(l) => x.choices(l, "global_at", "last and/or first")?,
            None => vec![GlobalAt::Last],
        },
        window: x.needed_by(&a.window, "window", mixer(MixerKind::Window), MAX_WINDOW)?,
        conv_kernel: x.at_least_two(x.sizes_or(&a.conv_kernel, "conv_kernel", 3, MAX_CONV_KERNEL)?, "conv_kernel")?,
        deltanet_heads: x.needed_by(&a.deltanet_heads, "deltanet_heads", mixer(MixerKind::Deltanet), MAX_HEADS)?,
        deltanet_head_dim: x.sizes_or(&a.deltanet_head_dim, "deltanet_head_dim", 128, MAX_STATE_WIDTH)?,
        mamba_head_dim: x.sizes_or(&a.mamba_head_dim, "mamba_head_dim", 64, MAX_STATE_WIDTH)?,
        mamba_state: x.sizes_or(&a.mamba_state, "mamba_state", 128, MAX_STATE_WIDTH)?,
        hidden,
        heads,
    })
}

/// Depths a search scores one after the other for each shape (see `SearchSpace::index_at`),
/// priced together as a depth run: a shape's figures (a uniform stack's, or a hybrid's layer
/// groups') are looked up once per run, so longer tiles price each shape fewer times (tiles of
/// 32 searched the ten-million space 8-13% faster than tiles of 8, and the hybrid one 9%).
pub const DEPTH_TILE: u64 = 32;

/// One block per (attention kind, FFN kind) searched, with the radices of its axes.
fn blocks_of(a: &ArchitectureFile, dims: &Dims) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut attention = a.attention.clone();
    attention.sort();
    attention.dedup();
    let mut ffns = a.ffn.clone();
    ffns.sort();
    ffns.dedup();
    let mut mixers = a.mixer.clone();
    mixers.sort();
    mixers.dedup();
    for &mixer in &mixers {
        for &att in &attention {
            for &ffn in &ffns {
                let d = dims;
                let mut radices = vec![
                    d.layers.len(),
                    d.hidden.len(),
                    d.heads.len(),
                    d.head_dim.len(),
                    d.vocab.len(),
                    d.tie.len(),
                    d.precisions.len(),
                    d.ffn_multiplier.len(),
                ];
                match att {
                    AttentionKind::Gqa => radices.push(d.kv_heads.len()),
                    AttentionKind::Mla => radices.extend([
                        d.kv_lora_rank.len(),
                        d.q_lora_rank.len(),
                        d.rope_head_dim.len(),
                        d.nope_head_dim.len(),
                        d.v_head_dim.len(),
                    ]),
                    AttentionKind::Mha | AttentionKind::Mqa => {}
                }
                if ffn == FfnKind::Moe {
                    radices.extend([
                        d.moe_experts.len(),
                        d.moe_top_k.len(),
                        d.moe_shared.len(),
                        d.moe_expert_multiplier.len(),
                        d.moe_first_k_dense.len(),
                    ]);
                }
                if mixer != MixerKind::Global {
                    radices.extend([d.global_every.len(), d.global_at.len()]);
                }
                match mixer {
                    MixerKind::Global => {}
                    MixerKind::Window => radices.push(d.window.len()),
                    MixerKind::Conv => radices.push(d.conv_kernel.len()),
                    MixerKind::Deltanet => radices.extend([d.deltanet_heads.len(), d.deltanet_head_dim.len()]),
                    MixerKind::Mamba2 => radices.extend([d.mamba_head_dim.len(), d.mamba_state.len()]),
                }
                let size = radices.iter().try_fold(1u64, |acc, &r| acc.checked_mul(r as u64)).unwrap_or(u64::MAX);
                let shapes = size / radices[0].max(1) as u64;
                let deepens = ffn == FfnKind::Gated && d.layers.windows(2).all(|w| w[0] < w[1]);
                blocks.push(Block { mixer, attention: att, ffn, radices, size, shapes, deepens });
            }
        }
    }

    blocks
}

/// `[workload]`: one scenario or a weighted mix, the batch and the longest context.
fn workload_of(w: &WorkloadFile, src: &str) -> Result<Workload> {
    let mix = match (&w.scenario, &w.mix) {
        (Some(n), None) => vec![(
            Scenario::named(n).map_err(|_| Error::field(src, "workload.scenario", "siso, silo, liso or lilo", n))?,
            1.0,
        )],
        (None, Some(m)) if !m.is_empty() => {
            let total: f64 = m.iter().map(|e| e.weight).sum();
            if let Some(bad) = m.iter().find(|e| !(e.weight > 0.0 && e.weight.is_finite())) {
                return Err(Error::field(src, "workload.mix.weight", "positive, finite weights", bad.weight));
            }
            if !total.is_finite() {
                return Err(Error::field(src, "workload.mix.weight", "weights with a finite sum", total));
            }
            m.iter().map(|e| Ok((scenario_of(e, src)?, e.weight / total))).collect::<Result<Vec<_>>>()?
        }
        _ => {
            return Err(Error::field(
                src,
                "workload",
                "exactly one of scenario = NAME or a non-empty [[workload.mix]]",
                "neither or both",
            ))
        }
    };
    if !(1..=crate::roofline::MAX_BATCH).contains(&w.batch) {
        return Err(Error::field(
            src,
            "workload.batch",
            format!("a batch from 1 to {}", crate::roofline::MAX_BATCH),
            w.batch,
        ));
    }
    if let Some(m) = w.max_context.filter(|&m| m > 2 * crate::roofline::MAX_TOKENS as u64) {
        return Err(Error::field(
            src,
            "workload.max_context",
            format!("at most {} tokens", 2 * crate::roofline::MAX_TOKENS as u64),
            m,
        ));
    }
    let longest = mix.iter().map(|(s, _)| s.max_context()).max().unwrap_or(0);
    Ok(Workload { batch: w.batch, max_context: w.max_context.unwrap_or(longest).max(longest), mix })
}

/// `[constraints]` and `[objective]`: every number finite and in its range.
fn check_limits(c: &Constraints, o: &ObjectiveFile, src: &str) -> Result<()> {
    for (field, v, positive) in [
        ("constraints.min_params", c.min_params, false),
        ("constraints.max_params", c.max_params, true),
        ("constraints.memory_budget_bytes", c.memory_budget_bytes, true),
        ("constraints.max_ttft_s", c.max_ttft_s, true),
        ("constraints.max_tpot_s", c.max_tpot_s, true),
        ("constraints.min_decode_tokens_per_s", c.min_decode_tokens_per_s, false),
    ] {
        if let Some(v) = v.filter(|v| !(v.is_finite() && (*v > 0.0 || (!positive && *v == 0.0)))) {
            let what = if positive { "a positive, finite number" } else { "a finite number >= 0" };
            return Err(Error::field(src, field, what, v));
        }
    }
    if let (Some(lo), Some(hi)) = (c.min_params, c.max_params) {
        if lo > hi {
            return Err(Error::field(src, "constraints.min_params", format!("at most max_params ({hi})"), lo));
        }
    }
    if !(o.rip_margin >= 0.0 && o.rip_margin < 1.0) {
        return Err(Error::field(src, "objective.rip_margin", "a fraction in [0, 1)", o.rip_margin));
    }
    let margin = o.quality_tpot_margin;
    // As a share of TPOT: 10 is a pick ten times slower, far past any useful trade.
    if !(0.0..=10.0).contains(&margin) {
        return Err(Error::field(src, "objective.quality_tpot_margin", "a fraction from 0 to 10", margin));
    }
    for (field, v) in
        [("constraints.max_loss", c.max_loss), ("constraints.min_non_embedding_params", c.min_non_embedding_params)]
    {
        if let Some(v) = v.filter(|v| !(*v >= 0.0 && v.is_finite())) {
            return Err(Error::field(src, field, "a finite number >= 0", v));
        }
    }
    Ok(())
}

impl SearchSpace {
    pub fn load(path: &Path) -> Result<SearchSpace> {
        let text = crate::files::read_text(path, crate::files::read::MAX_TOML_BYTES)?;
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("space");
        Self::parse(&text, &path.display().to_string(), stem)
    }

    pub fn parse(text: &str, src: &str, default_name: &str) -> Result<SearchSpace> {
        let file: SpaceFile = toml::from_str(text)
            .map_err(|e| Error::parse_at(src, "TOML", text, e.span().map(|s| s.start), e.message()))?;
        let a = &file.architecture;
        if a.attention.is_empty() {
            return Err(Error::field(
                src,
                "architecture.attention",
                "at least one of mha, gqa, mqa, mla",
                "an empty list",
            ));
        }
        if a.ffn.is_empty() {
            return Err(Error::field(src, "architecture.ffn", "at least one of gated, moe", "an empty list"));
        }
        let precisions = precisions_of(&file.precision, src)?;
        let dims = dims_of(a, precisions, src)?;
        let blocks = blocks_of(a, &dims);
        let workload = workload_of(&file.workload, src)?;
        check_limits(&file.constraints, &file.objective, src)?;

        let tokens = training_tokens(&file.training, src)?;
        let name = match file.name {
            Some(n) => plain_name(&n, src, "name")?,
            None => plain_name(default_name, src, "name (from the file name)")?,
        };
        Ok(SearchSpace {
            name,
            source_name: src.to_string(),
            description: file.description.unwrap_or_default(),
            dims,
            blocks,
            workload,
            constraints: file.constraints,
            objective: file.objective.metric,
            rip_margin: file.objective.rip_margin,
            source: text.to_string(),
            quality_tpot_margin: file.objective.quality_tpot_margin,
            tokens,
        })
    }

    /// Candidates in the space, invalid combinations included.
    pub fn count(&self) -> u64 {
        self.blocks.iter().fold(0u64, |acc, b| acc.saturating_add(b.size))
    }

    /// The index of the candidate at `position` of the order a search scores them in: the
    /// blocks in turn; within a block, tiles of [`DEPTH_TILE`] depths (indices vary the depth
    /// slowest), and within a tile every shape with its depths one after the other. Neighbours
    /// in this order share their layers, which the evaluator prices once for all depths, while
    /// a slice of the order still holds many shapes at each depth, which is what rejects most
    /// of its candidates before they meet the worker's front. Positions past the space map to
    /// themselves.
    pub fn index_at(&self, position: u64) -> u64 {
        match self.place_of(position) {
            Some(t) => t.offset + (t.first_depth + t.depth_in_tile) * t.block.shapes + t.shape,
            None => position,
        }
    }

    /// Where `position` of the search's order falls (see [`SearchSpace::index_at`]); `None`
    /// past the space.
    fn place_of(&self, position: u64) -> Option<Place<'_>> {
        let mut offset = 0;
        for block in &self.blocks {
            if position - offset < block.size {
                let (depths, shapes, tile_len) = (block.radices[0] as u64, block.shapes, DEPTH_TILE);
                let q = position - offset;
                let tile = q / (tile_len * shapes);
                let r = q - tile * tile_len * shapes;
                let tile_depths = tile_len.min(depths - tile * tile_len);
                return Some(Place {
                    block,
                    offset,
                    first_depth: tile * tile_len,
                    tile_depths,
                    depth_in_tile: r % tile_depths,
                    shape: r / tile_depths,
                });
            }
            offset += block.size;
        }
        None
    }

    /// How many positions after `position` hold the same shape deeper, in the same tile of the
    /// search's order (see [`SearchSpace::index_at`]), where the block's FFNs are dense and the
    /// depths ascend: there a deeper candidate of a shape is valid where the shape is (a hybrid
    /// pattern's only check on the depth is `global_every` at most the depth), and has at least
    /// its parameters (every layer kind's count grows or stays with the depth, under either
    /// `global_at`). `None` elsewhere (a MoE block's dense layers and experts go by the depth).
    pub fn depths_after(&self, position: u64) -> Option<u64> {
        let t = self.place_of(position)?;
        t.block.deepens.then_some(t.tile_depths - 1 - t.depth_in_tile)
    }

    /// How far apart the indices of a shape's consecutive depths are where `position` is (the
    /// next position of its tile holds the next depth at this step).
    pub fn depth_step(&self, position: u64) -> u64 {
        self.place_of(position).map_or(1, |t| t.block.shapes)
    }

    /// The position of candidate `index` in the search's order (the inverse of `index_at`).
    pub fn position_of(&self, index: u64) -> u64 {
        let mut offset = 0;
        for b in &self.blocks {
            if index - offset < b.size {
                let (depths, shapes, tile_len) = (b.radices[0] as u64, b.shapes, DEPTH_TILE);
                let i = index - offset;
                let (depth, shape) = (i / shapes, i % shapes);
                let tile = depth / tile_len;
                let tile_depths = tile_len.min(depths - tile * tile_len);
                return offset + tile * tile_len * shapes + shape * tile_depths + (depth - tile * tile_len);
            }
            offset += b.size;
        }
        index
    }

    /// The candidate at `index` (0-based, below `count()`).
    pub fn candidate(&self, index: u64) -> std::result::Result<Candidate, Invalid> {
        self.candidate_in(index, &mut ShapeDigits::default())
    }

    /// [`SearchSpace::candidate`], with the digits of the last shape decoded kept in `last`: a
    /// search decodes each shape's depths one after the other, and those share all but the
    /// depth's digit (the rest are a chain of divisions, a tenth of a search).
    pub fn candidate_in(&self, index: u64, last: &mut ShapeDigits) -> std::result::Result<Candidate, Invalid> {
        let mut cand = Candidate::placeholder();
        self.candidate_into(index, last, &mut cand).map(|()| cand)
    }

    /// [`SearchSpace::candidate_in`] built in `out`, whose buffers (a hybrid's layers and
    /// layer groups) it reuses: a search builds each candidate where it scores it (a candidate
    /// moved is 200 bytes copied, a few percent of a search). `out` is left as it was where the
    /// index is invalid.
    pub fn candidate_into(
        &self,
        index: u64,
        last: &mut ShapeDigits,
        out: &mut Candidate,
    ) -> std::result::Result<(), Invalid> {
        let (block, digits) = self.digits_of(index, last)?;
        let d = &self.dims;
        let (layers, hidden, heads) = (d.layers[digits[0]], d.hidden[digits[1]], d.heads[digits[2]]);
        let head_dim = match d.head_dim[digits[3]] {
            Some(hd) => hd,
            None if hidden % heads == 0 => hidden / heads,
            None => return Err(Invalid::HeadsDoNotDivideHidden),
        };
        let (vocab, tie, precisions) = (d.vocab[digits[4]], d.tie[digits[5]], d.precisions[digits[6]]);
        let intermediate = round64(d.ffn_multiplier[digits[7]] * hidden as f64);
        let (attention, k) = self.attention_at(block.attention, &digits, heads, head_dim)?;
        let ffn = match block.ffn {
            FfnKind::Gated => {
                Ffn::Dense { intermediate_size: intermediate, gated: true, activation: Activation::Silu, bias: false }
            }
            FfnKind::Moe => {
                if !matches!(attention, Attention::Latent(_)) {
                    return Err(Invalid::MoeNeedsMla);
                }
                if hidden % heads != 0 {
                    return Err(Invalid::MoeHeadsDoNotDivideHidden);
                }
                Ffn::Moe(self.moe_at(&digits[k..], layers, hidden, intermediate)?)
            }
        };
        // MLA (with dense or MoE FFNs) exports as DeepSeek-V2, grouped attention as Llama. When
        // heads do not divide hidden, transformers' LlamaConfig and DeepseekV2Config reject the
        // shape even with explicit head sizes; MistralConfig and DeepseekV3Config take it and
        // build the same layers (a dense DeepSeek-V3 has no router; MoE is excluded above).
        let family = match attention {
            Attention::Latent(_) if hidden % heads != 0 => Family::DeepseekV3,
            Attention::Latent(_) => Family::DeepseekV2,
            Attention::Grouped { .. } if hidden % heads != 0 => Family::Mistral,
            Attention::Grouped { .. } => Family::Llama,
        };
        let base = Architecture {
            family,
            // The longest sequence the workload runs (prompt plus generated tokens).
            max_position_embeddings: self.workload.max_context.clamp(1, u32::MAX as u64) as u32,
            norm_eps: 1e-5,
            ..Architecture::plain(String::new(), layers, hidden, vocab, tie, attention, ffn)
        };
        match block.mixer {
            MixerKind::Global => {
                out.arch = base;
                out.groups = LayerGroups::Uniform([(Layer::GLOBAL, layers)]);
            }
            kind => self.hybrid(base, kind, &digits[k..], out)?,
        }
        (out.index, out.precisions, out.precision_index) = (index, precisions, digits[6]);
        Ok(())
    }

    /// The block holding `index` and the digits of its axes: mixed radix, the first dimension
    /// (the depth) varying slowest. The other digits are `last`'s where it holds the same shape.
    #[inline]
    fn digits_of(&self, index: u64, last: &mut ShapeDigits) -> std::result::Result<(&Block, [usize; 24]), Invalid> {
        let mut i = index;
        let at = self
            .blocks
            .iter()
            .position(|b| {
                if i < b.size {
                    true
                } else {
                    i -= b.size;
                    false
                }
            })
            .ok_or(Invalid::NotInSpace)?;
        let block = &self.blocks[at];
        let (depth, shape) = match last.last {
            Some((was_at, was, depth, shape)) if was_at == at && i == was + block.shapes => (depth + 1, shape),
            _ => (i / block.shapes, i % block.shapes),
        };
        last.last = Some((at, i, depth, shape));
        if last.shape != Some((at, shape)) {
            let mut digits = [0usize; 24];
            let mut i = shape;
            for k in (1..block.radices.len()).rev() {
                let r = block.radices[k] as u64;
                // Axes of one value (most of a space's) leave digit 0 and skip a division.
                if r > 1 {
                    digits[k] = (i % r) as usize;
                    i /= r;
                }
            }
            (last.shape, last.digits) = (Some((at, shape)), digits);
        }
        let mut digits = last.digits;
        digits[0] = depth as usize;
        Ok((block, digits))
    }

    /// The attention of `kind` from its digits (after the eight shared axes), and the index of
    /// the first digit after them.
    #[inline]
    fn attention_at(
        &self,
        kind: AttentionKind,
        digits: &[usize],
        heads: u32,
        head_dim: u32,
    ) -> std::result::Result<(Attention, usize), Invalid> {
        let d = &self.dims;
        let k = 8;
        Ok(match kind {
            AttentionKind::Mha => (Attention::Grouped { num_heads: heads, num_kv_heads: heads, head_dim }, k),
            AttentionKind::Mqa => (Attention::Grouped { num_heads: heads, num_kv_heads: 1, head_dim }, k),
            AttentionKind::Gqa => {
                let kv = d.kv_heads[digits[k]];
                if kv >= heads || heads % kv != 0 || kv == 1 {
                    return Err(Invalid::KvHeadsNotAProperDivisor);
                }
                (Attention::Grouped { num_heads: heads, num_kv_heads: kv, head_dim }, k + 1)
            }
            AttentionKind::Mla => {
                let q = d.q_lora_rank[digits[k + 1]];
                let m = Mla {
                    num_heads: heads,
                    kv_lora_rank: d.kv_lora_rank[digits[k]],
                    q_lora_rank: (q > 0).then_some(q),
                    qk_rope_head_dim: d.rope_head_dim[digits[k + 2]],
                    qk_nope_head_dim: d.nope_head_dim[digits[k + 3]].unwrap_or(head_dim),
                    v_head_dim: d.v_head_dim[digits[k + 4]].unwrap_or(head_dim),
                };
                (Attention::Latent(m), k + 5)
            }
        })
    }

    /// The experts from their five digits.
    #[inline]
    fn moe_at(
        &self,
        digits: &[usize],
        layers: u32,
        hidden: u32,
        intermediate: u32,
    ) -> std::result::Result<Moe, Invalid> {
        let d = &self.dims;
        let (experts, top_k) = (d.moe_experts[digits[0]], d.moe_top_k[digits[1]]);
        let first_k_dense = d.moe_first_k_dense[digits[4]];
        if top_k > experts {
            return Err(Invalid::TopKAboveExperts);
        }
        if first_k_dense >= layers {
            return Err(Invalid::FirstKDenseNotBelowLayers);
        }
        Ok(Moe {
            num_experts: experts,
            experts_per_token: top_k,
            num_shared_experts: d.moe_shared[digits[2]],
            expert_intermediate_size: round64(d.moe_expert_multiplier[digits[3]] * hidden as f64),
            dense_intermediate_size: intermediate,
            first_k_dense,
            activation: Activation::Silu,
            router_bias: false,
            expert_bias: false,
            shared_expert_gate: false,
        })
    }

    /// Sets `out`'s architecture to a hybrid of `base`'s attention with layers of `kind`, from
    /// the block's pattern digits, and its layer groups, in `out`'s buffers.
    fn hybrid(
        &self,
        base: Architecture,
        kind: MixerKind,
        digits: &[usize],
        out: &mut Candidate,
    ) -> std::result::Result<(), Invalid> {
        let d = &self.dims;
        let Attention::Grouped { num_heads, head_dim, .. } = base.attention else {
            return Err(Invalid::HybridNeedsGroupedDense);
        };
        if base.ffn.is_moe() {
            return Err(Invalid::HybridNeedsGroupedDense);
        }
        let (every, at) = (d.global_every[digits[0]], d.global_at[digits[1]]);
        if every > base.num_layers {
            return Err(Invalid::GlobalEveryAboveLayers);
        }
        let hidden = base.hidden_size;
        let mixer = match kind {
            MixerKind::Global => {
                out.groups = LayerGroups::Uniform([(Layer::GLOBAL, base.num_layers)]);
                out.arch = base;
                return Ok(());
            }
            MixerKind::Window => Mixer::Window { window: d.window[digits[2]] },
            MixerKind::Conv => {
                if hidden % num_heads != 0 || head_dim != hidden / num_heads {
                    return Err(Invalid::HybridHeadsDoNotFit);
                }
                Mixer::ShortConv { kernel: d.conv_kernel[digits[2]] }
            }
            MixerKind::Deltanet => {
                let (heads, dim) = (d.deltanet_heads[digits[2]], d.deltanet_head_dim[digits[3]]);
                let g = DeltaNet {
                    key_heads: heads,
                    value_heads: heads,
                    key_head_dim: dim,
                    value_head_dim: dim,
                    conv_kernel: 4,
                };
                Mixer::DeltaNet(g)
            }
            MixerKind::Mamba2 => {
                let (dim, state) = (d.mamba_head_dim[digits[2]], d.mamba_state[digits[3]]);
                if (2 * hidden) % dim != 0 {
                    return Err(Invalid::HybridHeadsDoNotFit);
                }
                let m = Mamba2 {
                    heads: 2 * hidden / dim,
                    head_dim: dim,
                    state_size: state,
                    groups: 1,
                    conv_kernel: 4,
                    conv_bias: true,
                };
                Mixer::Mamba2(m)
            }
        };
        let first_global = match at {
            GlobalAt::Last => every - 1,
            GlobalAt::First => 0,
        };
        // The buffers of `out`'s last hybrid, if it was one.
        let layers = std::mem::take(&mut out.arch.layers);
        let mut groups = match std::mem::replace(&mut out.groups, LayerGroups::Uniform([(Layer::GLOBAL, 0)])) {
            LayerGroups::Mixed(groups) => groups,
            LayerGroups::Uniform(_) => Vec::new(),
        };
        out.arch = Architecture { layers, ..base };
        out.arch.make_hybrid(mixer, (every, first_global));
        let arch = &out.arch;
        // Its groups in closed form (walking the layers was a tenth of a hybrid search): every
        // `every`-th layer global, the first of them the last (or the first) of the first
        // `every` layers; groups in order of first appearance.
        let layers = arch.num_layers;
        let globals = match at {
            GlobalAt::Last => layers / every,
            GlobalAt::First => layers.div_ceil(every),
        };
        let global = arch.layer(if at == GlobalAt::First { 0 } else { every - 1 });
        let other = arch.layer(if at == GlobalAt::First { 1 } else { 0 });
        groups.clear();
        match at {
            GlobalAt::First => groups.extend([(global, globals), (other, layers - globals)]),
            GlobalAt::Last => groups.extend([(other, layers - globals), (global, globals)]),
        }
        out.groups = LayerGroups::Mixed(groups);
        Ok(())
    }
}

/// One point of a space.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub index: u64,
    pub arch: Architecture,
    /// `arch`'s layer groups (`Architecture::layer_groups`).
    pub groups: LayerGroups,
    pub precisions: Precisions,
    /// Position of `precisions` in the space's precision list.
    pub precision_index: usize,
}

impl Candidate {
    /// A slot to build candidates in (see [`SearchSpace::candidate_into`]): an empty uniform
    /// stack.
    pub fn placeholder() -> Candidate {
        let attention = Attention::Grouped { num_heads: 1, num_kv_heads: 1, head_dim: 1 };
        let ffn = Ffn::Dense { intermediate_size: 1, gated: true, activation: Activation::Silu, bias: false };
        Candidate {
            index: 0,
            arch: Architecture::plain(String::new(), 0, 1, 1, true, attention, ffn),
            groups: LayerGroups::Uniform([(Layer::GLOBAL, 0)]),
            precisions: Precisions::uniform(DType::F16),
            precision_index: 0,
        }
    }
}

/// The training tokens of `[training]`: a fixed count, a count per parameter, or the default.
fn training_tokens(t: &TrainingFile, src: &str) -> Result<Tokens> {
    let positive = |field: &str, v: f64| {
        if v > 0.0 && v.is_finite() {
            Ok(v)
        } else {
            Err(Error::field(src, field, "a positive number", v))
        }
    };
    match (t.tokens, t.tokens_per_parameter) {
        (Some(_), Some(_)) => Err(Error::field(src, "training", "one of tokens or tokens_per_parameter", "both")),
        (Some(d), None) => Ok(Tokens::Fixed(positive("training.tokens", d)?)),
        (None, Some(k)) => Ok(Tokens::PerParameter(positive("training.tokens_per_parameter", k)?)),
        (None, None) => Ok(Tokens::default()),
    }
}
