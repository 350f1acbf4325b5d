//! Fitting an engine profile from whole-model runs: each run is explained by the operators the
//! analytic model predicts for it (the same arithmetic the search uses), and the engine's
//! rates are the non-negative least-squares solution over all runs, in relative error:
//!
//!   measured_s ~ sum over operators of  launches * t_fixed
//!                                     + routed expert products * t_expert
//!                                     + weight bytes / bandwidth of the weights' storage type (decode products)
//!                                     + FLOPs / FLOP rate of the weights' storage type (prefill products;
//!                                       routed experts' and MLA's per-head products at rates of their own)
//!                                     + FLOPs / attention rate (by launch size: decode, prefill)
//!                                     + bytes / bandwidth of everything else
//!
//! Which term of an operator's `max(compute, memory)` applies is decided from the current
//! estimate and refitted until it no longer changes. The solution becomes a profile (a peak,
//! the probed bandwidth, efficiency tables, a fixed cost per kernel) and every run is then
//! predicted again through the ordinary evaluator, so the reported residuals are the residuals
//! of the model the search will use. Used by `calibrate --engine llama.cpp` (runs made here) and
//! `devices fit` (llama-bench files from elsewhere).

pub mod agreement;
pub mod band;
pub mod llama_bench;
pub mod threads;

use crate::arch::Architecture;
use crate::device::{
    ComputeSize, DeviceProfile, EfficiencyCurve, EfficiencyPoint, EfficiencyTable, Engine, ScoreTail, MAX_CACHE_SPEEDUP,
};
use crate::dtype::{DType, Precisions, TensorType};
use crate::error::{Error, Result};
use crate::roofline::{BenchTest, Evaluator, PlanChoice};
use crate::workload::{operators, OpClass, Operator, Phase, RunSettings};
use serde::Serialize;
use std::collections::BTreeMap;

/// One measured run.
#[derive(Debug, Clone)]
pub struct Run {
    pub arch: Architecture,
    pub weights: DType,
    pub test: BenchTest,
    pub measured_s: f64,
}

/// A run's prediction after the fit.
#[derive(Debug, Clone, Serialize)]
pub struct Residual {
    pub model: String,
    pub weights: String,
    pub test: String,
    pub measured_s: f64,
    pub predicted_s: f64,
    /// (predicted - measured) / measured.
    pub error: f64,
}

/// A coefficient of the linear model: seconds per unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Feature {
    Launch,
    /// A routed expert's product (see `Operator::experts`): its fixed cost beyond its bytes.
    ExpertProducts,
    /// One forward pass (an engine call).
    Pass,
    /// Decode attention scores (query-key pairs times heads): a fixed cost per score (the
    /// exponential, the running maximum and the bookkeeping of a softmax one score at a time).
    DecodeScores,
    /// Decode attention FLOPs at a rate of their own: the dot products and value sums over whole
    /// heads, which grow with the head where the cost per score does not (see
    /// `DecodeTerms::attention_flops`).
    DecodeAttentionFlops,
    /// Decode attention scores times their key and value heads' elements past the kernel's
    /// last whole vector step (see `ScoreTail`): the elements CPU kernels handle one at a time.
    KeyTail,
    ValueTail,
    ProductBytes(TensorType),
    /// A product's weight bytes read past the weight cache (see `DecodeTerms::weight_cache`):
    /// a stall on top of the product's roofline time.
    PastCacheBytes(TensorType),
    /// Product FLOPs at a rows knot (1: decode's GEMV; prompt lengths: prefill's GEMM).
    ProductFlops(TensorType, u32),
    /// FLOPs of a routed expert's products over a prompt, by storage type: llama.cpp's CPU
    /// `mul_mat_id` runs them as row-by-row dot products for some types (f16, q8_0) where the
    /// type's dense products run a tiled GEMM, so they get a rate of their own.
    ExpertFlops(TensorType),
    /// FLOPs of per-head products over a prompt (MLA's absorbed queries and outputs: one small
    /// GEMM per head, as deep as a head), at a rate of their own: llama.cpp runs them several
    /// times slower than a layer's wide products (see `EfficiencyTable` of `BatchedMatmul`).
    HeadProductFlops,
    AttentionPrefillFlops,
    /// KV-cache bytes decode attention reads.
    KvBytes,
    /// KV-cache bytes decode attention's scores read, costed on top of each score.
    ScoreKvBytes,
    /// Decode attention scores past the cache step (see `EfficiencyTable::score_spill_s`).
    SpillScores,
    /// Recurrence FLOPs (DeltaNet, Mamba2): llama.cpp's CPU kernels step token by token, in
    /// prefill too, at a rate of their own.
    ScanFlops,
    /// Recurrent-state bytes a scan reads and writes (llama.cpp copies the state several times
    /// per step; the rate absorbs the copies).
    StateBytes,
    OtherBytes,
}

impl Feature {
    fn name(self) -> String {
        match self {
            Feature::Launch => "fixed cost per kernel".into(),
            Feature::ExpertProducts => "fixed cost per routed expert product".into(),
            Feature::Pass => "fixed cost per forward pass".into(),
            Feature::DecodeScores => "decode attention cost per score".into(),
            Feature::DecodeAttentionFlops => "decode attention FLOPs".into(),
            Feature::KeyTail => "decode attention cost per key-head element past the vector step".into(),
            Feature::ValueTail => "decode attention cost per value-head element past the vector step".into(),
            Feature::ProductBytes(t) => format!("{t} product bytes"),
            Feature::PastCacheBytes(t) => format!("{t} product weight bytes past the cache"),
            Feature::ProductFlops(t, rows) => format!("{t} product FLOPs at {rows} rows"),
            Feature::ExpertFlops(t) => format!("{t} routed expert product FLOPs over a prompt"),
            Feature::HeadProductFlops => "per-head product FLOPs over a prompt (MLA's absorbed form)".into(),
            Feature::KvBytes => "decode attention KV bytes".into(),
            Feature::ScoreKvBytes => "decode attention KV bytes read per query head".into(),
            Feature::SpillScores => "decode attention cost per score past the cache step".into(),
            Feature::AttentionPrefillFlops => "prefill attention FLOPs".into(),
            Feature::ScanFlops => "recurrence (scan) FLOPs".into(),
            Feature::StateBytes => "recurrent state bytes".into(),
            Feature::OtherBytes => "other kernels' bytes".into(),
        }
    }
}

fn is_product(op: &Operator) -> bool {
    op.weight_type.is_some() && matches!(op.class, OpClass::Matmul | OpClass::BatchedMatmul)
}

/// An operator's totals over the run's steps: (launches, FLOPs, bytes, scores visited).
fn totals(op: &Operator, first: f64, last: f64, engine: &Engine) -> (f64, f64, f64, f64) {
    let steps = last - first + 1.0;
    let c = op.count as f64;
    let (pieces, n) = op.pieces(first, last);
    let (mut flops, mut bytes, mut scores) = (0.0, 0.0, 0.0);
    let (padding, view) = (engine.padding_scores_factor(), engine.kv_view());
    for (piece, lo, hi) in &pieces[..n] {
        flops += piece.flops.sum(*lo, *hi);
        bytes += piece.bytes().sum(*lo, *hi);
        crate::roofline::for_visited(piece, *lo, *hi, padding, view, |a, b, visited| scores += visited.sum(a, b));
    }
    (c * steps, c * flops, c * bytes, c * scores)
}

/// Operators and the context range of a run under the engine's plan and formats.
fn run_ops(run: &Run, engine: &Engine) -> (Vec<Operator>, f64, f64) {
    let precisions = Precisions { weights: run.weights, activations: engine.activations, kv_cache: engine.kv_cache };
    let settings = RunSettings { batch: 1, precisions, logits_for_all_prompt_tokens: false };
    if run.test.is_prefill() {
        (operators(&run.arch, Phase::Prefill { prompt: run.test.prompt }, &settings, engine.plan), 0.0, 0.0)
    } else {
        let first = run.test.depth as f64 + 2.0;
        (operators(&run.arch, Phase::Decode, &settings, engine.plan), first, first + run.test.generate as f64 - 1.0)
    }
}

/// The pooled feature of a per-type one: every storage type shares one rate.
fn pooled(f: Feature) -> Feature {
    match f {
        Feature::ProductBytes(_) => Feature::ProductBytes(TensorType::F32),
        Feature::PastCacheBytes(_) => Feature::PastCacheBytes(TensorType::F32),
        Feature::ProductFlops(_, k) => Feature::ProductFlops(TensorType::F32, k),
        Feature::ExpertFlops(_) => Feature::ExpertFlops(TensorType::F32),
        other => other,
    }
}

/// Rows knots of the product compute curves: 1 (decode) and every prompt length fitted.
fn knots(runs: &[Run]) -> Vec<u32> {
    let mut k: Vec<u32> = std::iter::once(1).chain(runs.iter().map(|r| r.test.prompt).filter(|&p| p > 1)).collect();
    k.sort();
    k.dedup();
    k
}

/// How a product of `rows` rows shares its FLOPs between the knots around it (linear in log
/// rows, as the profile's curve interpolates; clamped outside).
fn knot_weights(rows: f64, knots: &[u32]) -> Vec<(u32, f64)> {
    let first = knots[0];
    let last = knots[knots.len() - 1];
    if rows <= first as f64 {
        return vec![(first, 1.0)];
    }
    if rows >= last as f64 {
        return vec![(last, 1.0)];
    }
    let i = knots.partition_point(|&k| (k as f64) <= rows);
    let (a, b) = (knots[i - 1], knots[i]);
    let w = (rows.ln() - (a as f64).ln()) / ((b as f64).ln() - (a as f64).ln());
    vec![(a, 1.0 - w), (b, w)]
}

/// The feature vector of one run, given which side of each operator's max applies.
fn features(
    run: &Run,
    engine: &Engine,
    knots: &[u32],
    coef: &BTreeMap<Feature, f64>,
    terms: DecodeTerms,
) -> BTreeMap<Feature, f64> {
    let (ops, first, last) = run_ops(run, engine);
    let mut x: BTreeMap<Feature, f64> = BTreeMap::new();
    let mut add = |f: Feature, v: f64| *x.entry(f).or_default() += v;
    add(Feature::Pass, last - first + 1.0);
    let miss = terms.weight_cache.map_or(0.0, |cache| weight_miss(run, cache));
    for op in &ops {
        let (launches, flops, bytes, scores) = totals(op, first, last, engine);
        add(Feature::Launch, launches);
        if op.experts > 0.0 {
            add(Feature::ExpertProducts, launches * op.experts);
        }
        let (compute, memory): (Vec<(Feature, f64)>, Feature) = if is_product(op) {
            let t = op.weight_type.expect("products have weights");
            let rows = op.rows.at((first + last) / 2.0);
            if miss > 0.0 {
                add(Feature::PastCacheBytes(t), launches * op.weight_bytes.base * miss);
            }
            if op.experts > 0.0 && rows > 1.0 {
                (vec![(Feature::ExpertFlops(t), 1.0)], Feature::ProductBytes(t))
            } else if op.class == OpClass::BatchedMatmul && rows > 1.0 {
                (vec![(Feature::HeadProductFlops, 1.0)], Feature::ProductBytes(t))
            } else {
                let split = knot_weights(rows, knots).into_iter().map(|(k, w)| (Feature::ProductFlops(t, k), w));
                (split.collect(), Feature::ProductBytes(t))
            }
        } else if op.class == OpClass::DecodeAttention {
            // One query row per head: the cost is per score visited (FLOPs per score are fixed by
            // the head sizes, so a FLOP rate would say the same twice), plus the KV bytes each
            // score reads, which GQA's groups share.
            add(Feature::DecodeScores, scores);
            if terms.attention_flops {
                add(Feature::DecodeAttentionFlops, flops);
            }
            add(Feature::ScoreKvBytes, scores * crate::roofline::kv_bytes_per_score(op));
            if let Some(step) = terms.tail_step {
                add(Feature::KeyTail, scores * ScoreTail::past_step(op.key_head, step) as f64);
                add(Feature::ValueTail, scores * ScoreTail::past_step(op.value_head, step) as f64);
            }
            // Past a layer's cache, the scores beyond the knee (the evaluator's arithmetic; a
            // windowed layer's saturated piece no longer grows, so it has none).
            if let Some(cache) = terms.spill {
                let (pieces, n) = op.pieces(first, last);
                let spilled: f64 = pieces[..n]
                    .iter()
                    .filter(|(p, _, _)| p.kv_read_bytes.per_ctx > 0.0)
                    .map(|(p, lo, hi)| crate::roofline::spilled_scores(p, cache / p.kv_read_bytes.per_ctx, *lo, *hi))
                    .sum();
                add(Feature::SpillScores, op.count as f64 * spilled);
            }
            continue;
        } else if op.class == OpClass::Attention {
            (vec![(Feature::AttentionPrefillFlops, 1.0)], Feature::OtherBytes)
        } else if op.class == OpClass::Scan {
            (vec![(Feature::ScanFlops, 1.0)], Feature::StateBytes)
        } else {
            add(Feature::OtherBytes, bytes);
            continue;
        };
        // The side that takes longer under the current estimate; before any estimate,
        // products and attention in prefill compute, everything in decode moves bytes.
        let c: f64 = compute.iter().map(|(f, w)| w * coef.get(f).copied().unwrap_or(0.0)).sum();
        let m = coef.get(&memory).copied().unwrap_or(0.0);
        let compute_side = if c > 0.0 || m > 0.0 {
            flops * c >= bytes * m
        } else {
            run.test.is_prefill() || matches!(op.class, OpClass::Attention | OpClass::DecodeAttention | OpClass::Scan)
        };
        if compute_side {
            for (f, w) in compute {
                add(f, w * flops);
            }
        } else {
            add(memory, bytes);
        }
    }
    x
}

/// What a fit found.
#[derive(Debug, Clone, Serialize)]
pub struct FitReport {
    pub runs: usize,
    /// Seconds per unit of each feature the fit kept (unit in the name).
    pub coefficients: BTreeMap<String, f64>,
    pub residuals: Vec<Residual>,
    pub median_abs_error: f64,
    pub p90_abs_error: f64,
    pub iterations: usize,
}

/// Fits `engine` on `base` (which supplies the name, memory, probed bandwidth and provenance)
/// to `runs`; returns the profile and the fit's report.
pub fn fit_engine(base: &DeviceProfile, engine: &Engine, runs: &[Run]) -> Result<(DeviceProfile, FitReport)> {
    fit_at_depth(base, engine, runs, &BTreeMap::new(), &BTreeMap::new(), PRIOR_WEIGHT, false)
}

/// [`fit_engine`], also trying a cache the model's weights stay in (see
/// `DeviceProfile::weight_cache_bytes`): for runs of models whose weights range from well within
/// a last-level cache to well past it (the full calibration's 1 MB to 430 MB; `--quick`'s 1 MB
/// to 430 MB too, since it times the 213 M and 98 M models' decode: before, its largest model
/// was 122 MB and its fit kept an 8 MiB cache on the strength of one 8.4 MB probe).
pub fn fit_engine_with_weight_cache(
    base: &DeviceProfile,
    engine: &Engine,
    runs: &[Run],
) -> Result<(DeviceProfile, FitReport)> {
    fit_at_depth(base, engine, runs, &BTreeMap::new(), &BTreeMap::new(), PRIOR_WEIGHT, true)
}

/// Cache sizes the decode attention step is tried at: 256 KiB to 128 MiB by factors of 2 (the
/// L2 of a small core to the last-level cache of a large chip).
pub const SPILL_CANDIDATES_BYTES: [f64; 10] =
    [262144.0, 524288.0, 1048576.0, 2097152.0, 4194304.0, 8388608.0, 16777216.0, 33554432.0, 67108864.0, 134217728.0];

/// How much a cache step must lower the fit's squared relative error to be kept: a step the
/// runs do not ask for stays out, so a profile fitted without decode at depth prices as before.
const SPILL_MIN_GAIN: f64 = 0.9;

/// Whether the runs can place a cache step: decode reaching two contexts or more, one of them
/// past `DEEP_CONTEXT` (`-d` runs, or long generations such as `tg 4096`, whose steps walk the
/// context up from the prompt).
pub fn has_decode_at_depth(runs: &[Run]) -> bool {
    let reach: std::collections::BTreeSet<u32> =
        runs.iter().filter(|r| !r.test.is_prefill()).map(|r| r.test.depth + r.test.generate).collect();
    reach.len() >= 2 && reach.iter().any(|&c| c >= DEEP_CONTEXT)
}

/// The context from which a decode run counts as at depth.
const DEEP_CONTEXT: u32 = 1024;

/// The decode attention terms a fit may add beyond a cost per score and per KV byte: a cache
/// step at a cache size, and a cost per head element past a vector step.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct DecodeTerms {
    spill: Option<f64>,
    tail_step: Option<u32>,
    /// The cache (bytes) a model's weights stay in between passes: weight bytes past it cost
    /// a stall of their own (see `DeviceProfile::weight_cache_bytes`).
    weight_cache: Option<f64>,
    /// Decode attention FLOPs at a fitted rate, beside the cost per score: for runs whose
    /// heads range from 64 to 576 elements, where a score's work grows with its head.
    attention_flops: bool,
}

/// The share of `run`'s model weight bytes past a weight cache of `cache` bytes, as the
/// evaluator computes it.
fn weight_miss(run: &Run, cache: f64) -> f64 {
    crate::device::miss_share(cache, run_weight_bytes(run))
}

/// The weight bytes a run's decode steps read (see `Architecture::streamed_weight_bytes_in`).
fn run_weight_bytes(run: &Run) -> f64 {
    run.arch.streamed_weight_bytes_in(run.weights, &run.arch.layer_groups())
}

/// Weight caches tried: 8 MiB to 512 MiB by factors of 2 (a phone's system cache to a server
/// chip's last level).
pub const WEIGHT_CACHE_CANDIDATES_BYTES: [f64; 7] =
    [8388608.0, 16777216.0, 33554432.0, 67108864.0, 134217728.0, 268435456.0, 536870912.0];

/// Vector steps (elements) the decode kernel's tails are tried at: f16 vectors of AVX2 and
/// NEON, AVX-512, and AVX-512 FP16.
pub const TAIL_STEP_CANDIDATES: [u32; 3] = [32, 64, 128];

/// `fit_with` without extra terms; where the runs decode at depth, with the terms of
/// [`with_depth_terms`]; then, where asked, with a weight cache at each candidate size: a term is
/// kept where it lowers the squared relative error most (by at least `SPILL_MIN_GAIN`).
fn fit_at_depth(
    base: &DeviceProfile,
    engine: &Engine,
    runs: &[Run],
    floors: &BTreeMap<Feature, f64>,
    fixed: &BTreeMap<Feature, f64>,
    prior_weight: f64,
    weight_cache: bool,
) -> Result<(DeviceProfile, FitReport)> {
    let fit = |terms: DecodeTerms| fit_with(base, engine, runs, floors, fixed, prior_weight, terms);
    let sse = |r: &FitReport| r.residuals.iter().map(|e| e.error * e.error).sum::<f64>();
    let (mut terms, mut best) = (DecodeTerms::default(), fit(DecodeTerms::default())?);
    if has_decode_at_depth(runs) {
        (terms, best) = with_depth_terms(&fit, runs, engine, best)?;
    }
    if !weight_cache {
        return Ok(best);
    }
    // A weight cache is tried at each size that two models' weights or more exceed and two or
    // more fit within (one model on a side would fit its own runs' error), last: decode at
    // depth's terms explain far more error, and a cache tried before them competed with their
    // absence. The size that lowers the error most is kept, by at least `SPILL_MIN_GAIN`.
    let sizes: Vec<(&str, f64)> = runs.iter().map(|r| (r.arch.name.as_str(), run_weight_bytes(r))).collect();
    let models = |above: bool, c: f64| {
        let names: std::collections::BTreeSet<&str> =
            sizes.iter().filter(|(_, w)| (*w > c) == above).map(|(n, _)| *n).collect();
        names.len()
    };
    let splits = |c: f64| models(true, c) >= 2 && models(false, c) >= 2;
    let mut bar = sse(&best.1) * SPILL_MIN_GAIN;
    for cache in WEIGHT_CACHE_CANDIDATES_BYTES.into_iter().filter(|&c| splits(c)) {
        let f = fit(DecodeTerms { weight_cache: Some(cache), ..terms })?;
        if f.0.weight_cache_bytes.is_some() && sse(&f.1) < bar {
            bar = sse(&f.1);
            best = f;
        }
    }
    Ok(best)
}

/// The decode-at-depth terms `fit` keeps on top of `plain` (its fit without them): each vector
/// step in turn, then with the best step a cache step at each candidate cache size; a term is
/// kept where it lowers the squared relative error most (by at least `SPILL_MIN_GAIN`).
fn with_depth_terms(
    fit: &dyn Fn(DecodeTerms) -> Result<(DeviceProfile, FitReport)>,
    runs: &[Run],
    engine: &Engine,
    plain: (DeviceProfile, FitReport),
) -> Result<(DecodeTerms, (DeviceProfile, FitReport))> {
    let sse = |r: &FitReport| r.residuals.iter().map(|e| e.error * e.error).sum::<f64>();
    // Whether a fit's decode attention table kept a term (read in place, not copied).
    let kept = |p: &DeviceProfile, term: fn(&EfficiencyTable) -> bool| {
        p.efficiency.get(&OpClass::DecodeAttention).is_some_and(term)
    };
    // The runs' decode attention heads (key, value), found once for every step tried.
    let heads: std::collections::BTreeSet<(u32, u32)> = runs
        .iter()
        .flat_map(|r| run_ops(r, engine).0)
        .filter(|op| op.class == OpClass::DecodeAttention)
        .map(|op| (op.key_head, op.value_head))
        .collect();
    // A step is tried where the runs' heads leave at least two different tails, one of them
    // not none: heads all of one size could not tell a tail from the cost per score (`--quick`
    // times heads of 64 only).
    let tails_at = |step: u32| {
        let past = |h| ScoreTail::past_step(h, step);
        let tails: std::collections::BTreeSet<(u32, u32)> = heads.iter().map(|&(k, v)| (past(k), past(v))).collect();
        tails.len() >= 2 && tails.iter().any(|&t| t != (0, 0))
    };
    let mut terms = DecodeTerms::default();
    let mut best = (sse(&plain.1), plain);
    for step in TAIL_STEP_CANDIDATES.into_iter().filter(|&s| tails_at(s)) {
        let stepped = DecodeTerms { tail_step: Some(step), ..terms };
        let f = fit(stepped)?;
        if kept(&f.0, |t| t.score_tail.is_some()) && sse(&f.1) < best.0 * SPILL_MIN_GAIN {
            terms = stepped;
            best = (sse(&f.1), f);
        }
    }
    if heads.len() >= 3 {
        let t = DecodeTerms { attention_flops: true, ..terms };
        let f = fit(t)?;
        let rated = f.1.coefficients.get(&Feature::DecodeAttentionFlops.name()).is_some_and(|c| *c > 0.0);
        if rated && sse(&f.1) < best.0 * SPILL_MIN_GAIN {
            terms = t;
            best = (sse(&f.1), f);
        }
    }
    let mut spilled: Option<(f64, DecodeTerms, (DeviceProfile, FitReport))> = None;
    for cache in SPILL_CANDIDATES_BYTES {
        let t = DecodeTerms { spill: Some(cache), ..terms };
        let f = fit(t)?;
        let bar = spilled.as_ref().map_or(best.0 * SPILL_MIN_GAIN, |(s, _, _)| *s);
        if kept(&f.0, |t| t.score_spill_s > 0.0) && sse(&f.1) < bar {
            spilled = Some((sse(&f.1), t, f));
        }
    }
    Ok(spilled.map_or((terms, best.1), |(_, t, f)| (t, f)))
}

/// Like [`fit_engine`], but no fitted rate may beat `base`'s roofs: every byte costs at least
/// 1 / bandwidth and every FLOP at least 1 / the fastest peak. For a few public runs of one or
/// two models, where a rate's split between bytes and FLOPs is not identifiable (a GEMV's FLOPs
/// are proportional to its bytes), this keeps the solution physical. A rate no run constrains stays at its roof (decode
/// attention reads the KV cache at the bandwidth at best), not free.
///
/// Fixed time goes to kernels, not to forward passes: public runs rarely vary depth at a fixed
/// width, so the two cannot be told apart, and what llama.cpp repeats per token (building the
/// graph on the CPU, launching or dispatching its nodes) scales with the number of kernels.
/// `launch_s`: a cost per kernel to use rather than fit (from a sibling device's fit on the
/// same backend), for runs of one model size that cannot separate it from bandwidth.
pub fn fit_engine_under_roofs(
    base: &DeviceProfile,
    engine: &Engine,
    runs: &[Run],
    launch_s: Option<f64>,
) -> Result<(DeviceProfile, FitReport)> {
    let per_byte = 1.0 / base.bandwidth_bytes_per_s;
    // Half-precision products run on the f16 peak; block-quantised ones may use int8 units
    // (llama.cpp's MMQ kernels), so their floor is the int8 peak where the device has one.
    let per_flop = 1.0 / base.peak_flops(DType::F16);
    let per_quant_flop = 1.0 / base.peak_flops(DType::Int8).max(base.peak_flops(DType::F16));
    let mut floors = BTreeMap::new();
    // Once, not per run and operator (that was quadratic in the runs: 30,000 rows took 30 s).
    let knots = knots(runs);
    // Recurrence rates only where a run has recurrent layers: otherwise a scan keeps the
    // elementwise table's rates (see `DeviceProfile::efficiency_table`), as before any fit.
    let mut scans = false;
    for r in runs {
        let (ops, _, _) = run_ops(r, engine);
        scans |= ops.iter().any(|op| op.class == OpClass::Scan);
        for op in ops.iter().filter(|op| is_product(op)) {
            let t = op.weight_type.expect("products have weights");
            let float = matches!(t, TensorType::F32 | TensorType::F16 | TensorType::Bf16);
            floors.insert(Feature::ProductBytes(t), per_byte);
            for &k in &knots {
                floors.insert(Feature::ProductFlops(t, k), if float { per_flop } else { per_quant_flop });
            }
        }
    }
    for f in [Feature::KvBytes, Feature::OtherBytes] {
        floors.insert(f, per_byte);
    }
    floors.insert(Feature::AttentionPrefillFlops, per_flop);
    if scans {
        floors.insert(Feature::ScanFlops, per_flop);
        floors.insert(Feature::StateBytes, per_byte);
    }
    let mut fixed = BTreeMap::from([(Feature::Pass, 0.0)]);
    if let Some(c) = launch_s {
        fixed.insert(Feature::Launch, c);
    }
    // No weight cache: public runs are a few models of sizes no design chose, too few to
    // place one (and a cache would move every expected profile's figures).
    fit_at_depth(base, engine, runs, &floors, &fixed, THIN_PRIOR_WEIGHT, false)
}

fn fit_with(
    base: &DeviceProfile,
    engine: &Engine,
    runs: &[Run],
    floors: &BTreeMap<Feature, f64>,
    fixed: &BTreeMap<Feature, f64>,
    prior_weight: f64,
    terms: DecodeTerms,
) -> Result<(DeviceProfile, FitReport)> {
    // A given coefficient is a floor the solver may not rise above.
    let mut floors = floors.clone();
    floors.extend(fixed.iter().map(|(f, c)| (*f, *c)));
    let floors = &floors;
    if runs.is_empty() {
        return Err(Error::Usage("no runs to fit".into()));
    }
    if let Some(r) = runs.iter().find(|r| !(r.measured_s.is_finite() && r.measured_s > 0.0)) {
        return Err(Error::field(&r.arch.name, "measured_s", "a positive time", r.measured_s));
    }
    let knots = knots(runs);
    let mut coef: BTreeMap<Feature, f64> = BTreeMap::new();
    let mut shared_rates: BTreeMap<Feature, f64> = BTreeMap::new();
    let mut iterations = 0;
    for it in 0..8 {
        iterations = it + 1;
        // A rate the last solve did not use still costs at least its floor: deciding an
        // operator's side with it keeps a dropped feature from staying dropped.
        let mut known = floors.clone();
        known.extend(coef.iter().map(|(f, c)| (*f, *c)));
        let rows: Vec<BTreeMap<Feature, f64>> =
            runs.iter().map(|r| features(r, engine, &knots, &known, terms)).collect();
        // First one rate for all storage types, then each type's own, pulled towards the
        // shared one: a type that little data sees keeps the shared rate instead of an
        // arbitrary (or infinite) one.
        let pooled_rows: Vec<BTreeMap<Feature, f64>> = rows
            .iter()
            .map(|r| {
                let mut p = BTreeMap::new();
                for (f, v) in r {
                    *p.entry(pooled(*f)).or_default() += v;
                }
                p
            })
            .collect();
        let pooled_floors: BTreeMap<Feature, f64> = floors.iter().map(|(f, v)| (pooled(*f), *v)).collect();
        let shared = solve(&pooled_rows, runs, &BTreeMap::new(), &pooled_floors, fixed, prior_weight);
        let prior: BTreeMap<Feature, f64> =
            rows.iter().flat_map(|r| r.keys()).filter_map(|&f| shared.get(&pooled(f)).map(|&c| (f, c))).collect();
        let mut next = solve(&rows, runs, &prior, floors, fixed, prior_weight);
        // A non-product rate no run exercised stays at its roof (a product type's stays
        // absent: the evaluator then prices it as the device does, not at an int8 floor).
        for (f, c) in floors.iter().filter(|(f, _)| !matches!(f, Feature::ProductBytes(_) | Feature::ProductFlops(..)))
        {
            next.entry(*f).or_insert(*c);
        }
        let stable = next.keys().eq(coef.keys())
            && next.iter().all(|(k, v)| coef.get(k).is_some_and(|c| (c - v).abs() <= 1e-9 * v.abs().max(1e-30)));
        coef = next;
        shared_rates = shared;
        if stable {
            break;
        }
    }
    hold_type_rates(&mut coef, &shared_rates);
    // A weight type no run stored gets the rates all types share, rather than whatever the
    // device would assume without an engine fit: a profile fitted on q4_k_m runs still prices
    // a q8_0 model like a quantised one.
    let mut priced = coef.clone();
    let seen: std::collections::BTreeSet<TensorType> = coef
        .keys()
        .filter_map(|f| match f {
            Feature::ProductBytes(t) | Feature::ProductFlops(t, _) => Some(*t),
            _ => None,
        })
        .collect();
    for t in TensorType::ALL.into_iter().filter(|t| !seen.contains(t)) {
        for (f, c) in &shared_rates {
            match f {
                Feature::ProductBytes(_) => priced.insert(Feature::ProductBytes(t), *c),
                Feature::ProductFlops(_, k) => priced.insert(Feature::ProductFlops(t, *k), *c),
                Feature::PastCacheBytes(_) => priced.insert(Feature::PastCacheBytes(t), *c),
                _ => None,
            };
        }
    }
    let profile = to_profile(base, engine, &priced, terms);
    let residuals: Vec<Residual> = runs
        .iter()
        .map(|r| {
            let predicted_s = predict(&profile, r);
            Residual {
                model: r.arch.name.clone(),
                weights: r.weights.name().to_string(),
                test: r.test.label(),
                measured_s: r.measured_s,
                predicted_s,
                error: (predicted_s - r.measured_s) / r.measured_s,
            }
        })
        .collect();
    let errors = agreement::ErrorSummary::of(residuals.iter().map(|r| r.error));
    let report = FitReport {
        runs: runs.len(),
        coefficients: coef.iter().map(|(f, v)| (f.name(), *v)).collect(),
        median_abs_error: errors.median_abs_error,
        p90_abs_error: errors.p90_abs_error,
        residuals,
        iterations,
    };
    Ok((profile, report))
}

/// The time the profile predicts for a run, through the evaluator every command uses.
pub fn predict(profile: &DeviceProfile, run: &Run) -> f64 {
    let precisions = Precisions::uniform(run.weights);
    let settings = RunSettings { batch: 1, precisions, logits_for_all_prompt_tokens: false };
    Evaluator::new(profile, settings, PlanChoice::Fastest).bench_test(&run.arch, run.test).point.time_s
}

/// Holds each storage type's product FLOP rate at `MAX_TYPE_SPEEDUP` times the rate all types
/// share at that size (`shared`, keyed by the pooled features): a faster one is a coefficient
/// the runs did not pin down, not a kernel (`--quick` once fitted q4_k products at 64 rows to
/// 8.09 TFLOP/s on 2 cores, which then set the peak and every rip). Coefficients are seconds
/// per FLOP, so a rate held is a coefficient raised.
fn hold_type_rates(coef: &mut BTreeMap<Feature, f64>, shared: &BTreeMap<Feature, f64>) {
    for (f, c) in coef.iter_mut() {
        if matches!(f, Feature::ProductFlops(..) | Feature::ExpertFlops(_)) {
            let s = shared.get(&pooled(*f)).copied().unwrap_or(0.0);
            if s > 0.0 && *c < s / MAX_TYPE_SPEEDUP {
                *c = s / MAX_TYPE_SPEEDUP;
            }
        }
    }
}

/// How much faster than the rate all types share one storage type's products may run: int8
/// dot products (VNNI, dotprod) do four multiply-adds per lane where f32 does one.
const MAX_TYPE_SPEEDUP: f64 = 4.0;

/// How strongly a per-type rate is pulled towards the shared one: deviating by half costs as
/// much as one run predicted 10% off.
const PRIOR_WEIGHT: f64 = 0.2;

/// The pull for a handful of public runs of one or two models: a weight type's own rate then
/// has to earn its difference from the shared one (deviating by half costs as much as one run
/// predicted 50% off), so what every type shares (fixed costs) is not absorbed into per-type
/// rates that one run each cannot tell apart.
const THIN_PRIOR_WEIGHT: f64 = 1.0;

/// Non-negative least squares in relative error; features no run exercises are dropped. With
/// a prior, each per-type product rate is solved as a multiple of its shared rate and pulled
/// towards 1 (ridge rows).
/// `floors`: a coefficient's least value (the roof's cost per unit); the solver fits what lies
/// above it.
fn solve(
    rows: &[BTreeMap<Feature, f64>],
    runs: &[Run],
    prior: &BTreeMap<Feature, f64>,
    floors: &BTreeMap<Feature, f64>,
    fixed: &BTreeMap<Feature, f64>,
    prior_weight: f64,
) -> BTreeMap<Feature, f64> {
    let floor = |f: &Feature| floors.get(f).copied().unwrap_or(0.0);
    // A prior is pulled towards in the same shifted units (above the floor).
    let prior: BTreeMap<Feature, f64> =
        prior.iter().map(|(f, c)| (*f, c - floor(f))).filter(|(_, c)| *c > 0.0).collect();
    let prior = &prior;
    let mut names: Vec<Feature> = rows.iter().flat_map(|r| r.keys().copied()).collect();
    names.sort();
    names.dedup();
    // A feature must carry at least 1% of some run's predicted time to be identifiable: a
    // rough scale is 1 ns per unit for bytes/FLOPs-free launches, judged by column share.
    names.retain(|f| rows.iter().any(|r| r.get(f).copied().unwrap_or(0.0) > 0.0));
    // Given coefficients are not solved for: their whole cost is in the floor term below.
    let given: Vec<Feature> = names.iter().filter(|f| fixed.contains_key(f)).copied().collect();
    names.retain(|f| !fixed.contains_key(f));
    let ridge: Vec<usize> = names
        .iter()
        .enumerate()
        .filter(|(_, f)| matches!(f, Feature::ProductBytes(_) | Feature::ProductFlops(..)))
        // A routed expert's rate is not pulled: its kernel differs by type (llama.cpp's CPU
        // `mul_mat_id` runs f16 row by row, a third of bf16's rate here), which the pull hid.
        .filter(|(_, f)| prior.get(f).is_some_and(|&c| c > 0.0))
        .map(|(j, _)| j)
        .collect();
    let (m, n) = (rows.len(), names.len());
    let mut a = ndarray::Array2::<f64>::zeros((m + ridge.len(), n));
    let mut b = ndarray::Array1::<f64>::zeros(m + ridge.len());
    // Columns in units of the prior (so the ridge rows read `u = 1`), or scaled to unit norm
    // so the solver's tolerances mean the same for all.
    let mut scale = vec![0.0f64; n];
    for (i, (row, run)) in rows.iter().zip(runs).enumerate() {
        for (j, f) in names.iter().enumerate() {
            let v = row.get(f).copied().unwrap_or(0.0) / run.measured_s;
            a[[i, j]] = v;
            scale[j] += v * v;
        }
        b[i] = 1.0
            - names.iter().chain(&given).map(|f| floor(f) * row.get(f).copied().unwrap_or(0.0)).sum::<f64>()
                / run.measured_s;
    }
    for (j, s) in scale.iter_mut().enumerate() {
        *s = if ridge.contains(&j) { 1.0 / prior[&names[j]] } else { s.sqrt().max(1e-300) };
        for i in 0..m {
            a[[i, j]] /= *s;
        }
    }
    for (k, &j) in ridge.iter().enumerate() {
        a[[m + k, j]] = prior_weight;
        b[m + k] = prior_weight;
    }
    let (x, _) = nnls::nnls(a.view(), b.view());
    let solved = names.iter().enumerate().map(|(j, f)| (*f, floor(f) + x[j] / scale[j]));
    solved.chain(given.iter().map(|f| (*f, floor(f)))).collect()
}

/// The profile the coefficients describe: the fastest fitted FLOP rate is the peak, the probed
/// bandwidth the ceiling, and every rate an efficiency against them.
fn to_profile(
    base: &DeviceProfile,
    engine: &Engine,
    coef: &BTreeMap<Feature, f64>,
    terms: DecodeTerms,
) -> DeviceProfile {
    let rate = |f: Feature| coef.get(&f).filter(|&&c| c > 0.0).map(|c| 1.0 / c);
    let flop_rates: Vec<f64> = coef
        .keys()
        // The peak is the best prefill rate: a decode GEMV's compute knot is a cap on its
        // dequantisation, and a free (zero-cost) knot must not inflate the peak.
        .filter(|f| matches!(f, Feature::ProductFlops(_, k) if *k > 1) || **f == Feature::AttentionPrefillFlops)
        .filter_map(|&f| rate(f))
        .collect();
    let peak = flop_rates.iter().copied().fold(base.peak_flops(DType::F32), f64::max);
    let bw = base.bandwidth_bytes_per_s;
    // A rate the fit found free (a zero coefficient) is as fast as the model allows.
    let memory_eff =
        |f: Feature| EfficiencyCurve::constant(rate(f).map_or(MAX_CACHE_SPEEDUP, |r| (r / bw).min(MAX_CACHE_SPEEDUP)));
    let compute_eff = |f: Feature| EfficiencyCurve::constant(rate(f).map_or(1.0, |r| (r / peak).min(1.0)));

    let mut p = base.clone();
    p.peak_flops = [DType::F32, DType::F16, DType::Bf16].into_iter().map(|d| (d, peak)).collect();
    p.kernel_overhead_s = coef.get(&Feature::Launch).copied().unwrap_or(0.0);
    p.expert_overhead_s = coef.get(&Feature::ExpertProducts).copied().unwrap_or(0.0);
    p.pass_overhead_s = coef.get(&Feature::Pass).copied().unwrap_or(0.0);
    p.engine = Some(engine.clone());
    let past_cache = coef.iter().any(|(f, c)| matches!(f, Feature::PastCacheBytes(_)) && *c > 0.0);
    p.weight_cache_bytes = terms.weight_cache.filter(|_| past_cache);
    p.efficiency_by_format.clear();
    let types: std::collections::BTreeSet<TensorType> = coef
        .keys()
        .filter_map(|f| match f {
            Feature::ProductBytes(t) | Feature::ProductFlops(t, _) | Feature::PastCacheBytes(t) => Some(*t),
            _ => None,
        })
        .collect();
    p.product_efficiency = types
        .into_iter()
        .map(|t| {
            // The compute curve by rows: one point per knot the fit kept for this type.
            let points: Vec<EfficiencyPoint> = coef
                .keys()
                .filter_map(|f| match f {
                    Feature::ProductFlops(u, k) if *u == t => {
                        Some(EfficiencyPoint { size: *k as f64, efficiency: compute_eff(*f).points[0].efficiency })
                    }
                    _ => None,
                })
                .collect();
            let table = EfficiencyTable {
                score_s: 0.0,
                score_s_by_value_head: Vec::new(),
                score_tail: None,
                score_kv_byte_s: 0.0,
                score_spill_s: 0.0,
                spill_kv_bytes: None,
                past_cache_byte_s: coef.get(&Feature::PastCacheBytes(t)).copied().unwrap_or(0.0),
                compute: EfficiencyCurve { points },
                compute_by: ComputeSize::Rows,
                memory: memory_eff(Feature::ProductBytes(t)),
                routed: if coef.contains_key(&Feature::ExpertFlops(t)) {
                    compute_eff(Feature::ExpertFlops(t))
                } else {
                    EfficiencyCurve::default()
                },
            };
            (t, table)
        })
        .collect();
    let other = EfficiencyTable {
        score_s: 0.0,
        score_s_by_value_head: Vec::new(),
        score_tail: None,
        score_kv_byte_s: 0.0,
        score_spill_s: 0.0,
        spill_kv_bytes: None,
        compute: EfficiencyCurve::default(),
        compute_by: ComputeSize::Flops,
        memory: memory_eff(Feature::OtherBytes),
        past_cache_byte_s: 0.0,
        routed: EfficiencyCurve::default(),
    };
    p.efficiency = OpClass::ALL.iter().map(|&c| (c, other.clone())).collect();
    let coefficient = |f: Feature| coef.get(&f).copied().unwrap_or(0.0);
    let tail = terms.tail_step.map(|step| ScoreTail {
        step,
        key_s: coefficient(Feature::KeyTail),
        value_s: coefficient(Feature::ValueTail),
    });
    let spill_s = coefficient(Feature::SpillScores);
    p.efficiency.insert(
        OpClass::DecodeAttention,
        EfficiencyTable {
            score_s: coefficient(Feature::DecodeScores),
            score_s_by_value_head: Vec::new(),
            score_tail: tail.filter(|t| t.key_s > 0.0 || t.value_s > 0.0),
            compute: if terms.attention_flops {
                compute_eff(Feature::DecodeAttentionFlops)
            } else {
                EfficiencyCurve::default()
            },
            compute_by: ComputeSize::Flops,
            memory: memory_eff(Feature::KvBytes),
            score_kv_byte_s: coefficient(Feature::ScoreKvBytes),
            score_spill_s: spill_s,
            spill_kv_bytes: terms.spill.filter(|_| spill_s > 0.0),
            past_cache_byte_s: 0.0,
            routed: EfficiencyCurve::default(),
        },
    );
    // Only runs with recurrent layers say what a scan costs; without them scans keep the
    // fallback to the other kernels' table.
    if coef.contains_key(&Feature::ScanFlops) || coef.contains_key(&Feature::StateBytes) {
        p.efficiency.insert(
            OpClass::Scan,
            EfficiencyTable {
                score_s: 0.0,
                score_s_by_value_head: Vec::new(),
                score_tail: None,
                score_kv_byte_s: 0.0,
                score_spill_s: 0.0,
                spill_kv_bytes: None,
                compute: compute_eff(Feature::ScanFlops),
                compute_by: ComputeSize::Flops,
                memory: memory_eff(Feature::StateBytes),
                past_cache_byte_s: 0.0,
                routed: EfficiencyCurve::default(),
            },
        );
    }
    // Only runs with MLA prompts say what a per-head product costs; without them such products
    // keep their storage type's rate.
    if coef.contains_key(&Feature::HeadProductFlops) {
        p.efficiency.insert(
            OpClass::BatchedMatmul,
            EfficiencyTable { compute: compute_eff(Feature::HeadProductFlops), ..other.clone() },
        );
    }
    p.efficiency.insert(
        OpClass::Attention,
        EfficiencyTable {
            score_s: 0.0,
            score_s_by_value_head: Vec::new(),
            score_tail: None,
            score_kv_byte_s: 0.0,
            score_spill_s: 0.0,
            spill_kv_bytes: None,
            compute: compute_eff(Feature::AttentionPrefillFlops),
            compute_by: ComputeSize::Flops,
            memory: memory_eff(Feature::OtherBytes),
            past_cache_byte_s: 0.0,
            routed: EfficiencyCurve::default(),
        },
    );

    p
}

/// Whether a record's parameter count is that of `a`: exactly (JSON's exact count) or within
/// 1% (markdown's rounded column).
fn params_close(r: &crate::fit::llama_bench::Record, p: u64) -> bool {
    let p = p as f64;
    if r.params_exact {
        p == r.params
    } else {
        (p - r.params).abs() <= 0.01 * r.params
    }
}

/// `a` as the record counts it: `a` itself when the counts agree, or `a` with untied embeddings
/// when a tied model's GGUF stores its output matrix separately (llama.cpp then counts it);
/// `None` when neither count is the record's.
pub fn matching_arch(r: &crate::fit::llama_bench::Record, a: &Architecture) -> Option<Architecture> {
    if params_close(r, a.parameters()) {
        return Some(a.clone());
    }
    let u = untied(a)?;
    params_close(r, u.parameters()).then_some(u)
}

/// A tied model with its output matrix counted apart.
fn untied(a: &Architecture) -> Option<Architecture> {
    a.tie_embeddings.then(|| {
        let mut u = a.clone();
        u.tie_embeddings = false;
        u
    })
}

/// The models by the parameter count llama.cpp would report for each (tied models also under
/// their untied count), built once so each record is matched by a lookup.
struct ByParams<'a> {
    counts: BTreeMap<u64, Vec<(usize, bool)>>,
    models: &'a [Architecture],
}

impl<'a> ByParams<'a> {
    fn new(models: &'a [Architecture]) -> Self {
        let mut counts: BTreeMap<u64, Vec<(usize, bool)>> = BTreeMap::new();
        for (i, a) in models.iter().enumerate() {
            counts.entry(a.parameters()).or_default().push((i, false));
            if let Some(u) = untied(a) {
                counts.entry(u.parameters()).or_default().push((i, true));
            }
        }
        ByParams { counts, models }
    }

    /// The single model (untied where that is what matched) whose count is the record's.
    fn find(&self, r: &crate::fit::llama_bench::Record) -> Option<Architecture> {
        let (lo, hi) = if r.params_exact { (r.params, r.params) } else { (0.99 * r.params, 1.01 * r.params) };
        if !(lo.is_finite() && hi.is_finite() && hi >= 0.0) {
            return None;
        }
        // Whole counts around [lo, hi] (a count past either end is dropped by `params_close`).
        let (lo, hi) = ((lo.max(0.0).floor() as u64).saturating_sub(1), (hi.ceil() as u64).saturating_add(1));
        let mut hits =
            self.counts.range(lo..=hi).filter(|(p, _)| params_close(r, **p)).flat_map(|(_, v)| v.iter().copied());
        let (i, untie) = hits.next()?;
        if hits.next().is_some() {
            return None;
        }
        let a = &self.models[i];
        if untie {
            untied(a)
        } else {
            Some(a.clone())
        }
    }
}

/// Runs from llama-bench records: each record's model is its embedded config, or the model of
/// `models` whose parameter count llama.cpp would report (exactly, from JSON; within 1% and
/// unambiguous, from markdown's rounded column). Records that cannot be resolved, or whose
/// weight format this tool does not model, are skipped and said (each model string clipped).
/// Linear in the records: models are indexed by parameter count once, and each distinct
/// embedded config is parsed once.
pub fn runs_from_records(
    records: &[crate::fit::llama_bench::Record],
    models: &[Architecture],
) -> (Vec<Run>, Vec<String>) {
    let clip = crate::error::clip;
    let index = ByParams::new(models);
    let mut parsed: std::collections::HashMap<(String, String), Option<Architecture>> = Default::default();
    let mut runs = Vec::new();
    let mut skipped: BTreeMap<String, usize> = BTreeMap::new();
    for r in records {
        let Some(weights) = r.weights else {
            *skipped.entry(format!("{}: weight type not modelled", clip(&r.model))).or_default() += 1;
            continue;
        };
        let arch = match &r.config {
            Some(c) => parsed
                .entry((r.model.clone(), c.to_string()))
                .or_insert_with_key(|(model, text)| {
                    let name = clip(model);
                    crate::arch::parse_hf_config(text, &name, &name).ok()
                })
                .clone(),
            None => index.find(r),
        };
        match arch {
            Some(arch) => runs.push(Run { arch, weights, test: r.test, measured_s: r.seconds }),
            None => {
                *skipped
                    .entry(format!(
                        "{} ({:.3e} parameters): no single --model config matches",
                        clip(&r.model),
                        r.params
                    ))
                    .or_default() += 1
            }
        }
    }
    let notes = skipped.into_iter().map(|(why, n)| format!("skipped {n} row(s) of {why}")).collect();
    (runs, notes)
}

/// The llama-bench JSON row of one of this tool's own runs (with the model's config, so
/// `devices fit` can refit it).
pub fn record_of(run: &Run, backend: &str, threads: u32) -> serde_json::Value {
    let w = match run.weights {
        DType::Q4KM => "Q4_K - Medium".to_string(),
        other => other.name().to_ascii_uppercase(),
    };
    serde_json::json!({
        "model_type": format!("{} {w}", run.arch.name),
        "model_n_params": run.arch.parameters(),
        "backends": backend,
        "n_threads": threads,
        "n_prompt": run.test.prompt,
        "n_gen": run.test.generate,
        "n_depth": run.test.depth,
        "avg_ns": (run.measured_s * 1e9).round(),
        "config": crate::arch::export_hf_config(&run.arch),
    })
}

#[cfg(test)]
mod depth_tests {
    use super::*;

    fn model(text: &str, name: &str) -> Architecture {
        crate::arch::parse_hf_config(text, name, name).unwrap()
    }

    /// DeepSeek-V2-Lite cut to `layers` layers and an 8,192-token vocabulary.
    fn small_deepseek(name: &str, layers: u32) -> Architecture {
        let mut a = model(include_str!("../../models/DeepSeek-V2-Lite-Chat.json"), name);
        (a.num_layers, a.vocab_size) = (layers, 8192);
        a
    }

    /// A 6-layer [`small_deepseek`] with `experts` routed experts of `width`, choosing `top_k`.
    fn small_moe(name: &str, experts: u32, top_k: u32, width: u32) -> Architecture {
        let mut a = small_deepseek(name, 6);
        if let crate::arch::Ffn::Moe(m) = &mut a.ffn {
            (m.num_experts, m.experts_per_token, m.expert_intermediate_size) = (experts, top_k, width);
        }
        a
    }

    /// Two dense models (SmolLM2-135M, Qwen2.5-0.5B) beside `others`.
    fn beside_dense(others: [Architecture; 2]) -> [Architecture; 4] {
        let [a, b] = others;
        [
            model(include_str!("../../models/SmolLM2-135M.json"), "SmolLM2-135M"),
            model(include_str!("../../models/Qwen2.5-0.5B.json"), "Qwen2.5-0.5B"),
            a,
            b,
        ]
    }

    /// Every model at every test in `weights`, timed as `truth` predicts it.
    fn runs_of(truth: &DeviceProfile, models: &[Architecture], tests: &[BenchTest], weights: DType) -> Vec<Run> {
        let mut runs = Vec::new();
        for arch in models {
            for &test in tests {
                let mut run = Run { arch: arch.clone(), weights, test, measured_s: 1.0 };
                run.measured_s = predict(truth, &run);
                runs.push(run);
            }
        }
        runs
    }

    /// Runs made up by a known profile with a cache step, at depths on both sides of it: the
    /// fit finds the step's cache size among the candidates and its cost per score.
    #[test]
    fn fit_recovers_a_known_cache_step() {
        let truth_s = 4e-8;
        let truth_bytes = 2097152.0;
        let mut truth = crate::device::builtin("rpi5").expect("rpi5");
        let t = truth.efficiency.get_mut(&OpClass::DecodeAttention).expect("decode attention table");
        t.score_spill_s = truth_s;
        t.spill_kv_bytes = Some(truth_bytes);
        let models = [
            model(include_str!("../../models/SmolLM2-135M.json"), "SmolLM2-135M"),
            model(include_str!("../../models/Qwen2.5-0.5B.json"), "Qwen2.5-0.5B"),
            model(include_str!("../../models/Llama-3.2-1B.json"), "Llama-3.2-1B"),
        ];
        let tests = [
            BenchTest::pp(512),
            BenchTest::tg(64, 0),
            BenchTest::tg(64, 1024),
            BenchTest::tg(64, 4096),
            BenchTest::tg(64, 8192),
        ];
        let runs = runs_of(&truth, &models, &tests, DType::Q4KM);
        assert!(has_decode_at_depth(&runs));
        let engine = truth.engine.clone().expect("an engine");
        let (fitted, report) = fit_engine(&truth, &engine, &runs).unwrap();
        let table = &fitted.efficiency[&OpClass::DecodeAttention];
        assert_eq!(table.spill_kv_bytes, Some(truth_bytes), "{:?}", report.coefficients);
        assert!((table.score_spill_s / truth_s - 1.0).abs() < 0.05, "{}", table.score_spill_s);
        assert!(report.median_abs_error < 0.01, "{}", report.median_abs_error);
        // Without runs at depth there is no step, and the profile is the one fitted before.
        let shallow: Vec<Run> = runs.iter().filter(|r| r.test.depth == 0).cloned().collect();
        let shallow: Vec<Run> = shallow.into_iter().filter(|r| r.test.generate < 1024).collect();
        assert!(!has_decode_at_depth(&shallow));
        let (plain, _) = fit_engine(&truth, &engine, &shallow).unwrap();
        assert_eq!(plain.efficiency[&OpClass::DecodeAttention].score_spill_s, 0.0);
    }

    #[test]
    fn a_type_rate_is_held_at_four_times_the_shared_rate() {
        let flops = |t, k| Feature::ProductFlops(t, k);
        // Shared: 100 GFLOP/s at 64 rows, 50 GFLOP/s at 1 row (1e-11 and 2e-11 s per FLOP).
        let shared = BTreeMap::from([(flops(TensorType::F32, 64), 1e-11), (flops(TensorType::F32, 1), 2e-11)]);
        let mut coef = BTreeMap::from([
            // 10 TFLOP/s: held at 400 GFLOP/s (2.5e-12 s per FLOP).
            (flops(TensorType::Q4K, 64), 1e-13),
            // 300 GFLOP/s, 3x the shared rate: kept.
            (flops(TensorType::Q8_0, 64), 1.0 / 300e9),
            // 1 TFLOP/s at 1 row against 50 GFLOP/s shared: held at 200 GFLOP/s.
            (flops(TensorType::Q4_0, 1), 1e-12),
            // No shared rate at 512 rows: nothing to hold against.
            (flops(TensorType::Q4_0, 512), 1e-13),
            // Bytes are not FLOPs.
            (Feature::ProductBytes(TensorType::Q4_0), 1e-13),
        ]);
        hold_type_rates(&mut coef, &shared);
        assert_eq!(coef[&flops(TensorType::Q4K, 64)], 2.5e-12);
        assert_eq!(coef[&flops(TensorType::Q8_0, 64)], 1.0 / 300e9);
        assert_eq!(coef[&flops(TensorType::Q4_0, 1)], 5e-12);
        assert_eq!(coef[&flops(TensorType::Q4_0, 512)], 1e-13);
        assert_eq!(coef[&Feature::ProductBytes(TensorType::Q4_0)], 1e-13);
    }

    /// Runs made up by a known profile whose decode kernel pays per head element past a
    /// 64-wide vector step, of heads of 64 to 128 and latent heads at depth: the fit finds the
    /// step among the candidates and the costs per element; without runs at depth it adds none.
    #[test]
    fn fit_recovers_a_known_vector_tail() {
        use crate::measure::llamacpp::shapes::{llama, mla};
        let tail = ScoreTail { step: 64, key_s: 2e-10, value_s: 2e-9 };
        let mut truth = crate::device::builtin("rpi5").expect("rpi5");
        let t = truth.efficiency.get_mut(&OpClass::DecodeAttention).expect("decode attention table");
        (t.score_s, t.score_s_by_value_head, t.score_tail) = (2e-8, Vec::new(), Some(tail));
        let models = [
            llama(4, 512, 8, 8, 64, 512, 1024),
            llama(4, 512, 8, 8, 96, 512, 1024),
            llama(4, 512, 8, 2, 128, 512, 1024),
            mla(4, 512, 8, 160, 32, 64, 512, 1024, None),
            mla(4, 512, 8, 224, 32, 64, 512, 1024, None),
        ];
        let tests = [BenchTest::pp(64), BenchTest::tg(16, 0), BenchTest::tg(16, 1024), BenchTest::tg(16, 4096)];
        let runs = runs_of(&truth, &models, &tests, DType::Q8_0);
        let engine = truth.engine.clone().expect("an engine");
        let (fitted, report) = fit_engine(&truth, &engine, &runs).unwrap();
        let found = fitted.efficiency[&OpClass::DecodeAttention].score_tail.expect("a tail");
        assert_eq!(found.step, 64, "{:?}", report.coefficients);
        assert!((found.value_s / tail.value_s - 1.0).abs() < 0.05, "{found:?}");
        assert!((found.key_s / tail.key_s - 1.0).abs() < 0.2, "{found:?}");
        assert!(report.median_abs_error < 0.01, "{}", report.median_abs_error);
        let shallow: Vec<Run> = runs.into_iter().filter(|r| r.test.depth == 0).collect();
        let (plain, _) = fit_engine(&truth, &engine, &shallow).unwrap();
        assert_eq!(plain.efficiency[&OpClass::DecodeAttention].score_tail, None);
    }

    /// Runs made up by a known profile whose decode attention pays a FLOP rate beside its cost
    /// per score and its tails, of heads of 64 to 544 elements at depth: the fit finds the rate;
    /// heads of one size could not tell it from the cost per score, and a fit of them has none.
    #[test]
    fn fit_recovers_a_known_decode_attention_flop_rate() {
        use crate::measure::llamacpp::shapes::{llama, mla};
        let mut truth = crate::device::builtin("rpi5").expect("rpi5");
        // 40 GFLOP/s against the profile's f32 peak.
        let efficiency = 40e9 / truth.peak_flops(DType::F32);
        let t = truth.efficiency.get_mut(&OpClass::DecodeAttention).expect("decode attention table");
        (t.score_s, t.score_s_by_value_head) = (1e-8, Vec::new());
        t.score_tail = Some(ScoreTail { step: 64, key_s: 2e-10, value_s: 2e-9 });
        t.compute = EfficiencyCurve::constant(efficiency);
        t.compute_by = ComputeSize::Flops;
        let models = [
            llama(4, 512, 8, 8, 64, 512, 1024),
            llama(4, 512, 8, 8, 96, 512, 1024),
            llama(4, 512, 8, 2, 128, 512, 1024),
            mla(4, 512, 8, 160, 32, 64, 512, 1024, None),
            mla(4, 512, 8, 512, 32, 64, 512, 1024, None),
        ];
        let tests = [BenchTest::pp(64), BenchTest::tg(16, 0), BenchTest::tg(16, 1024), BenchTest::tg(16, 4096)];
        let runs = runs_of(&truth, &models, &tests, DType::Q8_0);
        let engine = truth.engine.clone().expect("an engine");
        let (fitted, report) = fit_engine(&truth, &engine, &runs).unwrap();
        let rate = report.coefficients.get(&Feature::DecodeAttentionFlops.name()).map(|c| 1.0 / c);
        assert!(rate.is_some_and(|r| (r / 40e9 - 1.0).abs() < 0.05), "{rate:?} {:?}", report.coefficients);
        let table = &fitted.efficiency[&OpClass::DecodeAttention];
        assert!((table.score_s / 1e-8 - 1.0).abs() < 0.1, "{}", table.score_s);
        assert!(report.median_abs_error < 0.01, "{}", report.median_abs_error);
        let one_head: Vec<Run> =
            runs.iter().filter(|r| r.arch.name.starts_with("mha-L4-H512-h8x64")).cloned().collect();
        let (plain, report) = fit_engine(&truth, &engine, &one_head).unwrap();
        assert!(!report.coefficients.contains_key(&Feature::DecodeAttentionFlops.name()));
        assert!(plain.efficiency[&OpClass::DecodeAttention].compute.points.is_empty());
    }

    /// Runs made up by a known profile whose kernel walks whole padded views once it splits
    /// them (and only real cells below): the fit counts the cells as the evaluator does, so it
    /// finds the cost per score and explains every run.
    #[test]
    fn fit_counts_a_split_view_as_the_evaluator_does() {
        use crate::measure::llamacpp::shapes::llama;
        let mut truth = crate::device::builtin("rpi5").expect("rpi5");
        truth.engine.as_mut().expect("llama.cpp").kv_split_min_cells = 512;
        let t = truth.efficiency.get_mut(&OpClass::DecodeAttention).expect("decode attention table");
        (t.score_s, t.score_s_by_value_head, t.score_tail) = (5e-8, Vec::new(), None);
        let models = [
            llama(4, 512, 8, 8, 64, 512, 1024),
            llama(4, 512, 8, 2, 64, 512, 1024),
            llama(8, 640, 10, 10, 64, 1792, 16384),
        ];
        let tests = [
            BenchTest::pp(64),
            BenchTest::tg(16, 0),
            BenchTest::tg(16, 200),
            BenchTest::tg(16, 1024),
            BenchTest::tg(16, 1200),
        ];
        let runs = runs_of(&truth, &models, &tests, DType::Q8_0);
        // Depths 1,024 and 1,200 visit the same 1,280 cells (only FLOPs and KV bytes, a small
        // share, grow with the real context); depth 200 visits 256 cells, 200 of them real.
        let at = |d: u32| runs.iter().find(|r| r.test.depth == d).expect("a run").measured_s;
        assert!((at(1200) / at(1024) - 1.0).abs() < 0.01, "{} {}", at(1024), at(1200));
        let engine = truth.engine.clone().expect("an engine");
        let (fitted, report) = fit_engine(&truth, &engine, &runs).unwrap();
        let found = fitted.efficiency[&OpClass::DecodeAttention].score_s;
        assert!((found / 5e-8 - 1.0).abs() < 0.05, "{found} {:?}", report.coefficients);
        assert!(report.median_abs_error < 0.01, "{}", report.median_abs_error);
    }

    /// Runs made up by a known profile with a 64 MiB weight cache and a stall per q8_0 weight
    /// byte past it, of models from 7 MB to 530 MB: the fit finds the cache among the candidates
    /// and the stall; the plain fit and one of two models below the cache add none.
    #[test]
    fn fit_recovers_a_known_weight_cache() {
        use crate::measure::llamacpp::shapes::llama;
        let (cache, stall) = (67108864.0, 5e-11);
        let mut truth = crate::device::builtin("rpi5").expect("rpi5");
        truth.weight_cache_bytes = Some(cache);
        truth.product_efficiency.get_mut(&TensorType::Q8_0).expect("a q8_0 table").past_cache_byte_s = stall;
        let models = [
            llama(4, 512, 8, 8, 64, 512, 1024),
            llama(8, 640, 10, 10, 64, 1792, 16384),
            model(include_str!("../../models/SmolLM2-135M.json"), "SmolLM2-135M"),
            model(include_str!("../../models/Qwen2.5-0.5B.json"), "Qwen2.5-0.5B"),
        ];
        let tests = [BenchTest::pp(64), BenchTest::pp(512), BenchTest::tg(16, 0)];
        let runs = runs_of(&truth, &models, &tests, DType::Q8_0);
        // Two models each side of 64 MiB: 7.7 and 54 MB, 145 and 530 MB of q8_0.
        let (below, above): (Vec<f64>, Vec<f64>) = runs.iter().map(run_weight_bytes).partition(|&w| w <= cache);
        assert!(below.iter().all(|&w| w < 60e6) && above.iter().all(|&w| w > 140e6));
        let engine = truth.engine.clone().expect("an engine");
        let (fitted, report) = fit_engine_with_weight_cache(&truth, &engine, &runs).unwrap();
        assert_eq!(fitted.weight_cache_bytes, Some(cache), "{:?}", report.coefficients);
        let found = fitted.product_efficiency[&TensorType::Q8_0].past_cache_byte_s;
        assert!((found / stall - 1.0).abs() < 0.05, "{found}");
        assert!(report.median_abs_error < 0.01, "{}", report.median_abs_error);
        assert_eq!(fit_engine(&truth, &engine, &runs).unwrap().0.weight_cache_bytes, None);
        // One model past any cache that another fits within is too few to place one.
        let few: Vec<Run> = runs.iter().filter(|r| r.arch.name != "Qwen2.5-0.5B").cloned().collect();
        let (plain, _) = fit_engine_with_weight_cache(&truth, &engine, &few).unwrap();
        assert_eq!(plain.weight_cache_bytes, None);
    }

    /// Runs made up by a profile whose routed experts' products over a prompt run at 3% of the
    /// peak in f16 and 12% in q8_0 (llama.cpp's `mul_mat_id` kernels differ by type): the fit
    /// finds each type's rate from MoE prompts, not pulled towards the other's.
    #[test]
    fn fit_recovers_known_routed_expert_rates_per_type() {
        let mut truth = crate::device::builtin("rpi5").expect("rpi5");
        let peak = truth.peak_flops(DType::F32);
        let rates = [(TensorType::F16, 0.03), (TensorType::Q8_0, 0.12)];
        for (t, e) in rates {
            let table = truth.product_efficiency.get_mut(&t).expect("a product table");
            table.routed = EfficiencyCurve::constant(e);
        }
        let models = beside_dense([small_moe("moe-16x512-top2", 16, 2, 512), small_moe("moe-64x256-top8", 64, 8, 256)]);
        let tests = [BenchTest::pp(64), BenchTest::pp(512), BenchTest::tg(16, 0)];
        let mut runs = runs_of(&truth, &models, &tests, DType::F16);
        runs.extend(runs_of(&truth, &models, &tests, DType::Q8_0));
        let engine = truth.engine.clone().expect("an engine");
        let (fitted, report) = fit_engine(&truth, &engine, &runs).unwrap();
        for (t, e) in rates {
            let table = fitted.product_efficiency.get(&t).expect("a fitted product table");
            let rate = fitted.peak_flops(DType::F32) * table.routed.at(1.0);
            assert!((rate / (e * peak) - 1.0).abs() < 0.05, "{t}: {rate} vs {} ({:?})", e * peak, report.coefficients);
        }
        assert!(report.median_abs_error < 0.01, "{}", report.median_abs_error);
        // Without MoE runs no type has a routed rate.
        let dense: Vec<Run> = runs.iter().filter(|r| !r.arch.ffn.is_moe()).cloned().collect();
        let (without, _) = fit_engine(&truth, &engine, &dense).unwrap();
        assert!(without.product_efficiency.values().all(|t| t.routed.is_empty()));
    }

    /// Runs made up by a profile whose per-head products over a prompt (MLA's absorbed form)
    /// run at 2% of the peak: the fit finds that rate from MLA prompts, and leaves products
    /// without one where no run has MLA.
    #[test]
    fn fit_recovers_a_known_per_head_product_rate() {
        let mut truth = crate::device::builtin("rpi5").expect("rpi5");
        let peak = truth.peak_flops(DType::F32);
        let compute = EfficiencyCurve::constant(0.02);
        truth.efficiency.insert(OpClass::BatchedMatmul, EfficiencyTable { compute, ..Default::default() });
        let mla = |name: &str, layers: u32, rank: u32| {
            let mut a = small_deepseek(name, layers);
            if let crate::arch::Attention::Latent(m) = &mut a.attention {
                m.kv_lora_rank = rank;
            }
            a
        };
        let models = beside_dense([mla("mla-4-256", 4, 256), mla("mla-6-512", 6, 512)]);
        let tests = [BenchTest::pp(64), BenchTest::pp(512), BenchTest::tg(16, 0)];
        let runs = runs_of(&truth, &models, &tests, DType::Q8_0);
        let engine = truth.engine.clone().expect("an engine");
        let (fitted, report) = fit_engine(&truth, &engine, &runs).unwrap();
        let table = fitted.efficiency.get(&OpClass::BatchedMatmul).expect("a per-head table");
        let rate = fitted.peak_flops(DType::F32) * table.compute.at(1.0);
        assert!((rate / (0.02 * peak) - 1.0).abs() < 0.05, "{rate} vs {} ({:?})", 0.02 * peak, report.coefficients);
        assert!(report.median_abs_error < 0.01, "{}", report.median_abs_error);
        let plain: Vec<Run> = runs.iter().filter(|r| !r.arch.name.starts_with("mla")).cloned().collect();
        let (without, _) = fit_engine(&truth, &engine, &plain).unwrap();
        assert!(without.efficiency.get(&OpClass::BatchedMatmul).is_none_or(|t| t.compute.points.is_empty()));
    }

    /// Runs made up by a known profile with a cost per routed expert product, of MoE models
    /// with few and many small experts beside dense ones: the fit finds that cost, and a fit
    /// of dense runs alone has none.
    #[test]
    fn fit_recovers_a_known_cost_per_expert_product() {
        let truth_s = 3e-6;
        let mut truth = crate::device::builtin("rpi5").expect("rpi5");
        truth.expert_overhead_s = truth_s;
        let models = beside_dense([small_moe("moe-16x512-top2", 16, 2, 512), small_moe("moe-64x128-top8", 64, 8, 128)]);
        let tests = [BenchTest::pp(64), BenchTest::pp(512), BenchTest::tg(16, 0)];
        let runs = runs_of(&truth, &models, &tests, DType::Q8_0);
        let engine = truth.engine.clone().expect("an engine");
        let (fitted, report) = fit_engine(&truth, &engine, &runs).unwrap();
        assert!((fitted.expert_overhead_s / truth_s - 1.0).abs() < 0.05, "{:?}", report.coefficients);
        assert!(report.median_abs_error < 0.01, "{}", report.median_abs_error);
        let dense: Vec<Run> = runs.iter().filter(|r| !r.arch.ffn.is_moe()).cloned().collect();
        assert_eq!(fit_engine(&truth, &engine, &dense).unwrap().0.expert_overhead_s, 0.0);
    }
}
