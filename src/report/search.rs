//! A search's results: the front as rows, the recommendation and why, and the files
//! `pareto.csv`, `recommended.json` and `summary.md`.

use super::plot;
use crate::arch::{export_hf_config, Attention, Ffn};
use crate::device::DeviceProfile;
use crate::error::{Error, Result};
use crate::files::{json_bytes, write_atomic, write_atomic_with};
use crate::quality::Coverage;
use crate::search::{Candidate, Detail, Objective, Outcome, Scored, Scorer, SearchSpace};
use crate::units::si;
use serde::Serialize;
use std::fmt::Write as _;
use std::path::Path;

/// One front member: every architecture field and every figure.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FrontRow {
    pub index: u64,
    pub recommended: bool,
    pub attention: &'static str,
    pub layers: u32,
    pub hidden: u32,
    pub heads: u32,
    pub kv_heads: u32,
    pub head_dim: u32,
    pub kv_lora_rank: u32,
    pub q_lora_rank: u32,
    pub rope_head_dim: u32,
    pub v_head_dim: u32,
    pub ffn: &'static str,
    pub intermediate: u32,
    pub moe_experts: u32,
    pub moe_top_k: u32,
    pub moe_shared_experts: u32,
    pub moe_expert_intermediate: u32,
    pub moe_first_k_dense: u32,
    pub vocab: u32,
    pub tie_embeddings: bool,
    pub weights_dtype: String,
    pub activations_dtype: String,
    pub kv_dtype: String,
    pub parameters: u64,
    pub active_parameters: u64,
    pub weight_bytes: f64,
    pub kv_cache_bytes: f64,
    pub footprint_bytes: f64,
    pub prefill_intensity_flop_per_byte: f64,
    pub prefill_performance_flop_per_s: f64,
    pub decode_intensity_flop_per_byte: f64,
    pub decode_performance_flop_per_s: f64,
    pub intensity_flop_per_byte: f64,
    pub performance_flop_per_s: f64,
    pub ttft_s: f64,
    pub tpot_s: f64,
    pub prefill_tokens_per_s: f64,
    pub decode_tokens_per_s: f64,
    pub phi_paper: f64,
    pub phi_log: f64,
    pub rip: f64,
    pub attainment: f64,
    pub regime: &'static str,
    pub prefill_plan: String,
    pub decode_plan: String,
    pub non_embedding_params: u64,
    /// Training tokens the loss assumes.
    pub tokens: f64,
    /// Predicted pre-training loss, nats per token.
    pub predicted_loss: f64,
    /// `fitted`, or the fitted ranges the loss estimate extrapolates beyond.
    pub estimate_range: Coverage,
}

/// The architecture fields of a candidate as the front reports them (MLA's head_dim is its
/// no-RoPE query/key width; MoE's intermediate is the dense layers' width).
#[derive(Debug, Clone, Copy)]
struct Shape {
    attention: &'static str,
    heads: u32,
    kv_heads: u32,
    head_dim: u32,
    kv_lora_rank: u32,
    q_lora_rank: u32,
    rope_head_dim: u32,
    v_head_dim: u32,
    ffn: &'static str,
    intermediate: u32,
    moe_experts: u32,
    moe_top_k: u32,
    moe_shared_experts: u32,
    moe_expert_intermediate: u32,
    moe_first_k_dense: u32,
}

impl Shape {
    fn of(a: &crate::arch::Architecture) -> Shape {
        let (heads, kv_heads, head_dim, kv_lora_rank, q_lora_rank, rope_head_dim, v_head_dim) = match a.attention {
            Attention::Grouped { num_heads, num_kv_heads, head_dim } => {
                (num_heads, num_kv_heads, head_dim, 0, 0, 0, head_dim)
            }
            Attention::Latent(m) => (
                m.num_heads,
                m.num_heads,
                m.qk_nope_head_dim,
                m.kv_lora_rank,
                m.q_lora_rank.unwrap_or(0),
                m.qk_rope_head_dim,
                m.v_head_dim,
            ),
        };
        let (ffn, intermediate, moe_experts, moe_top_k, moe_shared_experts, moe_expert_intermediate, moe_first_k_dense) =
            match a.ffn {
                Ffn::Dense { intermediate_size, .. } => ("gated", intermediate_size, 0, 0, 0, 0, 0),
                Ffn::Moe(m) => (
                    "moe",
                    m.dense_intermediate_size,
                    m.num_experts,
                    m.experts_per_token,
                    m.num_shared_experts,
                    m.expert_intermediate_size,
                    m.first_k_dense,
                ),
            };
        Shape {
            attention: a.attention_kind().name(),
            heads,
            kv_heads,
            head_dim,
            kv_lora_rank,
            q_lora_rank,
            rope_head_dim,
            v_head_dim,
            ffn,
            intermediate,
            moe_experts,
            moe_top_k,
            moe_shared_experts,
            moe_expert_intermediate,
            moe_first_k_dense,
        }
    }
}

/// A short name that tells any two candidates of a space apart: "#12 gqa heads 24/8 d64, L16
/// H1792, ffn 5376, vocab 32000, q4_k_m" (head sizes only when not hidden / heads, q-lora
/// only when used; "untied" and KV or activation formats only when they are not the usual).
#[allow(clippy::too_many_arguments)]
fn label_of(
    index: u64,
    s: &Shape,
    layers: u32,
    hidden: u32,
    vocab: u32,
    tied: bool,
    weights: &str,
    kv: &str,
) -> String {
    let natural = hidden % s.heads == 0 && s.head_dim == hidden / s.heads;
    let att = match s.attention {
        "mla" => {
            let mut t = format!("mla r{} heads {}", s.kv_lora_rank, s.heads);
            if s.q_lora_rank > 0 {
                let _ = write!(t, " q{}", s.q_lora_rank);
            }
            if !natural || s.v_head_dim != s.head_dim {
                let _ = write!(t, " d{}/{}/{}", s.head_dim, s.rope_head_dim, s.v_head_dim);
            } else if s.rope_head_dim != 64 {
                let _ = write!(t, " rope {}", s.rope_head_dim);
            }
            t
        }
        _ if natural => format!("{} heads {}/{}", s.attention, s.heads, s.kv_heads),
        _ => format!("{} heads {}/{} d{}", s.attention, s.heads, s.kv_heads, s.head_dim),
    };
    let ffn = if s.ffn == "moe" {
        let mut t = format!("moe {}x{} top{}", s.moe_experts, s.moe_expert_intermediate, s.moe_top_k);
        if s.moe_shared_experts > 0 {
            let _ = write!(t, " +{} shared", s.moe_shared_experts);
        }
        if s.moe_first_k_dense > 0 {
            let _ = write!(t, ", {} dense {}", s.moe_first_k_dense, s.intermediate);
        }
        t
    } else {
        format!("ffn {}", s.intermediate)
    };
    let mut t = format!("#{index} {att}, L{layers} H{hidden}, {ffn}, vocab {vocab}");
    if !tied {
        t.push_str(" untied");
    }
    let _ = write!(t, ", {weights}");
    if !kv.is_empty() {
        let _ = write!(t, " kv {kv}");
    }
    t
}

/// The Hugging Face `config.json` of a candidate: the architecture as transformers loads it, in
/// the format its activations compute in.
pub fn candidate_config(c: &Candidate) -> serde_json::Value {
    let mut config = export_hf_config(&c.arch);
    config["torch_dtype"] = serde_json::Value::from(match c.precisions.activations.name() {
        "f32" => "float32",
        "f16" => "float16",
        _ => "bfloat16",
    });
    config
}

impl FrontRow {
    pub fn new(c: &Candidate, d: &Detail, recommended: bool) -> FrontRow {
        let a = &c.arch;
        let s = Shape::of(a);
        FrontRow {
            index: c.index,
            recommended,
            attention: s.attention,
            layers: a.num_layers,
            hidden: a.hidden_size,
            heads: s.heads,
            kv_heads: s.kv_heads,
            head_dim: s.head_dim,
            kv_lora_rank: s.kv_lora_rank,
            q_lora_rank: s.q_lora_rank,
            rope_head_dim: s.rope_head_dim,
            v_head_dim: s.v_head_dim,
            ffn: s.ffn,
            intermediate: s.intermediate,
            moe_experts: s.moe_experts,
            moe_top_k: s.moe_top_k,
            moe_shared_experts: s.moe_shared_experts,
            moe_expert_intermediate: s.moe_expert_intermediate,
            moe_first_k_dense: s.moe_first_k_dense,
            vocab: a.vocab_size,
            tie_embeddings: a.tie_embeddings,
            weights_dtype: c.precisions.weights.to_string(),
            activations_dtype: c.precisions.activations.to_string(),
            kv_dtype: c.precisions.kv_cache.to_string(),
            parameters: a.parameters(),
            active_parameters: a.active_parameters(),
            weight_bytes: d.footprint.weights_bytes,
            kv_cache_bytes: d.footprint.kv_cache_bytes,
            footprint_bytes: d.footprint.total_bytes,
            prefill_intensity_flop_per_byte: d.prefill.intensity_flop_per_byte(),
            prefill_performance_flop_per_s: d.prefill.performance_flop_per_s(),
            decode_intensity_flop_per_byte: d.decode.intensity_flop_per_byte(),
            decode_performance_flop_per_s: d.decode.performance_flop_per_s(),
            intensity_flop_per_byte: d.total.intensity_flop_per_byte(),
            performance_flop_per_s: d.total.performance_flop_per_s(),
            ttft_s: d.ttft_s,
            tpot_s: d.tpot_s,
            prefill_tokens_per_s: d.prefill_tokens_per_s,
            decode_tokens_per_s: d.decode_tokens_per_s,
            phi_paper: d.potential.phi_paper,
            phi_log: d.potential.phi_log,
            rip: d.potential.rip,
            attainment: d.potential.attainment,
            regime: d.potential.bound.name(),
            prefill_plan: d.plans.0.label(a),
            decode_plan: d.plans.1.label(a),
            non_embedding_params: d.quality.non_embedding_params,
            tokens: d.quality.tokens,
            predicted_loss: d.quality.predicted_loss,
            estimate_range: d.quality.estimate_range,
        }
    }

    fn shape(&self) -> Shape {
        Shape {
            attention: self.attention,
            heads: self.heads,
            kv_heads: self.kv_heads,
            head_dim: self.head_dim,
            kv_lora_rank: self.kv_lora_rank,
            q_lora_rank: self.q_lora_rank,
            rope_head_dim: self.rope_head_dim,
            v_head_dim: self.v_head_dim,
            ffn: self.ffn,
            intermediate: self.intermediate,
            moe_experts: self.moe_experts,
            moe_top_k: self.moe_top_k,
            moe_shared_experts: self.moe_shared_experts,
            moe_expert_intermediate: self.moe_expert_intermediate,
            moe_first_k_dense: self.moe_first_k_dense,
        }
    }

    /// A short name that tells candidates apart (see `label_of`).
    pub fn label(&self) -> String {
        let kv = if self.kv_dtype != self.activations_dtype { self.kv_dtype.as_str() } else { "" };
        label_of(
            self.index,
            &self.shape(),
            self.layers,
            self.hidden,
            self.vocab,
            self.tie_embeddings,
            &self.weights_dtype,
            kv,
        )
    }

    /// The same name for a candidate not yet scored.
    pub fn architecture_label(c: &Candidate) -> String {
        let (a, p) = (&c.arch, &c.precisions);
        let kv = if p.kv_cache != p.activations { p.kv_cache.to_string() } else { String::new() };
        let w = p.weights.to_string();
        label_of(c.index, &Shape::of(a), a.num_layers, a.hidden_size, a.vocab_size, a.tie_embeddings, &w, &kv)
    }
}

/// A finished search, ready to write.
#[derive(Debug, Clone)]
pub struct SearchReport {
    pub space: String,
    pub device: String,
    /// Which kind of profile produced the figures (see `DeviceProfile::kind_label`).
    pub profile: String,
    /// The recommendation's warnings (see [`crate::warnings`]), one line each.
    pub warnings: Vec<String>,
    pub outcome: Outcome,
    pub objective: Objective,
    pub rip_margin: f64,
    /// The fastest decoder of the front (decode tokens/s is one of its objectives).
    pub fastest: FrontRow,
    pub top: Vec<FrontRow>,
    pub recommended: FrontRow,
    pub runner_up: Option<FrontRow>,
    pub best_by_objective: FrontRow,
    pub recommended_config: serde_json::Value,
    /// The lowest predicted loss on the front among candidates whose TPOT is at most
    /// `quality_tpot_margin` above the recommendation's (the recommendation itself if none is).
    pub quality_pick: FrontRow,
    pub quality_tpot_margin: f64,
}

/// Which of the front the recommendation is: for `rip`, the fastest decoder whose rip is within
/// `margin` of the best (rip credits FLOPs, so the top rip is not always the best answer); for
/// `loss`, the fastest decoder of those tied at the lowest predicted loss; otherwise the best.
fn choose(outcome: &Outcome, objective: Objective, margin: f64) -> (Scored, Option<Scored>) {
    let best = outcome.top[0];
    if objective == Objective::Loss {
        // The loss does not see precision or how heads split the same parameters, so ties are
        // common: take the fastest decoder of those tied (the front holds one of each speed).
        let fastest_at = |above: f64, level: f64| {
            outcome
                .front
                .iter()
                .filter(|s| s.predicted_loss > above && s.predicted_loss <= level)
                .max_by(|a, b| a.decode_tokens_per_s.total_cmp(&b.decode_tokens_per_s).then(b.index.cmp(&a.index)))
                .copied()
        };
        let pick = fastest_at(f64::NEG_INFINITY, best.predicted_loss).unwrap_or(best);
        // The runner-up is the next loss down the list (its fastest decoder when the front holds
        // one), not the same model in another precision.
        let runner = outcome
            .top
            .iter()
            .find(|s| s.predicted_loss > pick.predicted_loss)
            .map(|next| fastest_at(pick.predicted_loss, next.predicted_loss).unwrap_or(*next))
            .or_else(|| outcome.top.iter().copied().find(|s| s.index != pick.index));
        return (pick, runner);
    }
    if objective != Objective::Rip {
        return (best, outcome.top.get(1).copied());
    }
    let threshold = best.rip * (1.0 - margin);
    let mut close: Vec<Scored> = outcome.front.iter().copied().filter(|s| s.rip >= threshold).collect();
    close.sort_by(|a, b| {
        b.decode_tokens_per_s
            .total_cmp(&a.decode_tokens_per_s)
            .then(b.rip.total_cmp(&a.rip))
            .then(a.index.cmp(&b.index))
    });
    let pick = close.first().copied().unwrap_or(best);
    let runner = if pick.index != best.index {
        Some(best)
    } else {
        close.get(1).copied().or_else(|| outcome.top.iter().copied().find(|s| s.index != pick.index))
    };
    (pick, runner)
}

/// What a quality-first user would pick: the lowest predicted loss among front members whose
/// TPOT is at most `margin` above `pick`'s, or `pick` itself when none predicts a strictly lower
/// loss. TPOT is batch / decode tokens/s, so the bound is on decode tokens/s; and since both are
/// objectives of the front, the best such candidate is on it.
fn quality_first(outcome: &Outcome, pick: &Scored, margin: f64) -> Scored {
    let floor = pick.decode_tokens_per_s / (1.0 + margin);
    outcome
        .front
        .iter()
        .filter(|s| s.decode_tokens_per_s >= floor && s.predicted_loss < pick.predicted_loss)
        .min_by(|a, b| {
            a.predicted_loss
                .total_cmp(&b.predicted_loss)
                .then(b.decode_tokens_per_s.total_cmp(&a.decode_tokens_per_s))
                .then(a.index.cmp(&b.index))
        })
        .copied()
        .unwrap_or(*pick)
}

/// "name 12, other 3", or "none".
fn counts(map: &std::collections::BTreeMap<String, u64>) -> String {
    if map.is_empty() {
        return "none".into();
    }
    map.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ")
}

pub fn finish(space: &SearchSpace, device: &DeviceProfile, outcome: Outcome) -> Result<SearchReport> {
    if outcome.feasible == 0 {
        let (worst, n) = outcome
            .rejected
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
            .map(|(k, v)| (k.clone(), *v))
            .unwrap_or_else(|| ("invalid combinations".into(), outcome.invalid.values().sum()));
        return Err(Error::Infeasible {
            space: space.source_name.clone(),
            reason: format!(
                "{} candidates; the constraint '{worst}' rejected the most ({n}); rejections: {}; invalid: {}",
                outcome.candidates,
                counts(&outcome.rejected),
                counts(&outcome.invalid)
            ),
        });
    }
    let (pick, runner) = choose(&outcome, space.objective, space.rip_margin);
    let mut scorer = Scorer::new(space, device, crate::roofline::PlanChoice::Fastest);
    let mut row = |s: &Scored| -> FrontRow {
        let c = space.candidate(s.index).expect("scored candidates are valid");
        let d = scorer.detail(&c.arch, c.precision_index);
        FrontRow::new(&c, &d, s.index == pick.index)
    };
    let fastest = outcome
        .front
        .iter()
        .max_by(|a, b| a.decode_tokens_per_s.total_cmp(&b.decode_tokens_per_s).then(b.index.cmp(&a.index)))
        .map(&mut row)
        .expect("a feasible search has a front");
    let top: Vec<FrontRow> = outcome.top.iter().map(&mut row).collect();
    let recommended = row(&pick);
    let runner_up = runner.as_ref().map(&mut row);
    let best_by_objective = row(&outcome.top[0]);
    let quality_pick = row(&quality_first(&outcome, &pick, space.quality_tpot_margin));
    let mut c = space.candidate(pick.index).expect("valid");
    c.arch.name = format!("{}-{}-recommended", space.name, device.name);
    let compute = device.effective_precisions(c.precisions).compute();
    let warnings =
        crate::warnings::check(device, &crate::warnings::Run::of(&c.arch, compute, space.workload.max_context));
    let recommended_config = candidate_config(&c);
    Ok(SearchReport {
        space: space.name.clone(),
        device: device.name.clone(),
        profile: device.kind_label(),
        warnings,
        outcome,
        objective: space.objective,
        rip_margin: space.rip_margin,
        fastest,
        top,
        recommended,
        runner_up,
        best_by_objective,
        recommended_config,
        quality_pick,
        quality_tpot_margin: space.quality_tpot_margin,
    })
}

fn differences(a: &FrontRow, b: &FrontRow) -> String {
    let mut d = Vec::new();
    macro_rules! cmp {
        ($f:ident) => {
            if a.$f != b.$f {
                d.push(format!("{} {} vs {}", stringify!($f), a.$f, b.$f));
            }
        };
    }
    cmp!(attention);
    cmp!(layers);
    cmp!(hidden);
    cmp!(heads);
    cmp!(kv_heads);
    cmp!(head_dim);
    cmp!(kv_lora_rank);
    cmp!(intermediate);
    cmp!(ffn);
    cmp!(moe_experts);
    cmp!(vocab);
    cmp!(weights_dtype);
    cmp!(kv_dtype);
    if d.is_empty() {
        "the same shape".into()
    } else {
        d.join(", ")
    }
}

/// The recommendation and why, for the terminal and for summary.md.
pub fn explain(r: &SearchReport) -> String {
    let mut s = String::new();
    let o = &r.outcome;
    let rec = &r.recommended;
    let _ = writeln!(
        s,
        "{} on {}: {} candidates, {} feasible, front of {}",
        r.space,
        r.device,
        o.candidates,
        o.feasible,
        o.front.len()
    );
    let _ = writeln!(s, "profile: {}", r.profile);
    for w in &r.warnings {
        let _ = writeln!(s, "warning: {w}");
    }
    let _ = writeln!(s, "recommended: {}", rec.label());
    let _ = writeln!(
        s,
        "  {} parameters, {} memory; {}-bound at {:.2} FLOP/B and {}; rip {:.4} (phi_log {:.3}), attainment {:.3}",
        si(rec.parameters as f64, ""),
        si(rec.footprint_bytes, "B"),
        rec.regime,
        rec.intensity_flop_per_byte,
        si(rec.performance_flop_per_s, "FLOP/s"),
        rec.rip,
        rec.phi_log,
        rec.attainment
    );
    let _ = writeln!(
        s,
        "  TTFT {}, TPOT {}, decode {:.1} tok/s, prefill {:.1} tok/s; plans: prefill {}, decode {}",
        si(rec.ttft_s, "s"),
        si(rec.tpot_s, "s"),
        rec.decode_tokens_per_s,
        rec.prefill_tokens_per_s,
        rec.prefill_plan,
        rec.decode_plan
    );
    let _ = writeln!(
        s,
        "  quality: predicted loss {:.4} after {} training tokens, {} non-embedding parameters; estimate range: {}",
        rec.predicted_loss,
        si(rec.tokens, ""),
        si(rec.non_embedding_params as f64, ""),
        rec.estimate_range
    );
    let best = &r.best_by_objective;
    if r.objective == Objective::Rip {
        let _ = writeln!(
            s,
            "  why: the fastest decoder among candidates within {:.1}% of the best rip ({:.4}, {})",
            100.0 * r.rip_margin,
            best.rip,
            best.label()
        );
    } else if r.objective == Objective::Loss {
        let _ = writeln!(
            s,
            "  why: the lowest predicted loss of the feasible candidates (the fastest decoder of those tied: precision does not change it)"
        );
    } else {
        let _ = writeln!(s, "  why: the best {} of the feasible candidates", r.objective.describe());
    }
    if let Some(ru) = &r.runner_up {
        let _ = writeln!(
            s,
            "runner-up: {}: rip {:.4} ({:+.2}%), decode {:.1} tok/s ({:+.1}%), memory {}, predicted loss {:.4} ({:+.4})",
            ru.label(),
            ru.rip,
            100.0 * (ru.rip / rec.rip - 1.0),
            ru.decode_tokens_per_s,
            100.0 * (ru.decode_tokens_per_s / rec.decode_tokens_per_s - 1.0),
            si(ru.footprint_bytes, "B"),
            ru.predicted_loss,
            ru.predicted_loss - rec.predicted_loss
        );
        let _ = writeln!(s, "  separated by: {}", differences(ru, rec));
    }
    {
        let fast = &r.fastest;
        if fast.index != rec.index {
            let _ = writeln!(
                s,
                "fastest feasible decoder: {}: {:.1} tok/s ({:+.1}%), rip {:.4}, {} parameters, predicted loss {:.4} ({:+.4})",
                fast.label(),
                fast.decode_tokens_per_s,
                100.0 * (fast.decode_tokens_per_s / rec.decode_tokens_per_s - 1.0),
                fast.rip,
                si(fast.parameters as f64, ""),
                fast.predicted_loss,
                fast.predicted_loss - rec.predicted_loss
            );
        }
    }
    {
        let q = &r.quality_pick;
        let bound = format!("within +{:.0}% TPOT of the recommendation", 100.0 * r.quality_tpot_margin);
        if q.index == rec.index {
            let _ = writeln!(
                s,
                "quality-first {bound}: the recommendation itself (no feasible candidate there predicts a lower loss)"
            );
        } else {
            let _ = writeln!(
                s,
                "quality-first {bound}: {}: predicted loss {:.4} ({:+.4}), TPOT {} ({:+.1}%), decode {:.1} tok/s, rip {:.4}, {} parameters",
                q.label(),
                q.predicted_loss,
                q.predicted_loss - rec.predicted_loss,
                si(q.tpot_s, "s"),
                100.0 * (q.tpot_s / rec.tpot_s - 1.0),
                q.decode_tokens_per_s,
                q.rip,
                si(q.parameters as f64, "")
            );
        }
    }
    let rips: Vec<f64> = r.top.iter().map(|t| t.rip).collect();
    if let (Some(hi), Some(lo)) = (rips.iter().cloned().reduce(f64::max), rips.iter().cloned().reduce(f64::min)) {
        let _ = writeln!(
            s,
            "margins: the top {} by objective span rip {:.4} to {:.4} ({:.1}% apart)",
            rips.len(),
            lo,
            hi,
            100.0 * (hi / lo - 1.0)
        );
    }
    s
}

pub fn summary_markdown(r: &SearchReport, space: &SearchSpace) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Search `{}` on `{}`\n", r.space, r.device);
    if !space.description.is_empty() {
        let _ = writeln!(s, "{}\n", space.description);
    }
    let mix: Vec<String> = space
        .workload
        .mix
        .iter()
        .map(|(sc, w)| format!("{} ({}/{}) x {:.2}", sc.name, sc.prompt, sc.generate, w))
        .collect();
    let _ = writeln!(
        s,
        "Workload: {}, batch {}. Objective: {}.\n",
        mix.join(" + "),
        space.workload.batch,
        r.objective.describe()
    );
    let _ = writeln!(
        s,
        "Quality: predicted pre-training loss from scaling laws (Besiroglu et al. 2024, corrected for aspect ratio by Bian et al. 2025), {}.\n",
        match space.tokens {
            crate::quality::Tokens::Fixed(d) => format!("{} training tokens for every candidate", si(d, "")),
            crate::quality::Tokens::PerParameter(k) => format!("{k} training tokens per parameter"),
        }
    );
    let _ = writeln!(s, "```\n{}```\n", explain(r));
    let _ = writeln!(s, "## Candidates\n\n| outcome | count |\n|---|---:|");
    let _ = writeln!(s, "| enumerated | {} |\n| feasible | {} |", r.outcome.candidates, r.outcome.feasible);
    for (k, v) in &r.outcome.invalid {
        let _ = writeln!(s, "| skipped: {k} | {v} |");
    }
    for (k, v) in &r.outcome.rejected {
        let _ = writeln!(s, "| rejected by {k} | {v} |");
    }
    let _ = writeln!(
        s,
        "\n## Top {} by objective\n\n| candidate | params | rip | decode tok/s | TTFT | memory | regime | predicted loss |\n|---|---:|---:|---:|---:|---:|---|---:|",
        r.top.len()
    );
    for t in &r.top {
        let _ = writeln!(
            s,
            "| {}{} | {} | {:.4} | {:.1} | {} | {} | {} | {:.4} |",
            t.label(),
            if t.index == r.recommended.index { " (recommended)" } else { "" },
            si(t.parameters as f64, ""),
            t.rip,
            t.decode_tokens_per_s,
            si(t.ttft_s, "s"),
            si(t.footprint_bytes, "B"),
            t.regime,
            t.predicted_loss
        );
    }
    let _ = writeln!(
        s,
        "\nThe Pareto front (rip, parameters, decode tokens/s up; memory and predicted loss down) has {} members: `pareto.csv`; `quality.svg` plots their predicted loss against decode tokens/s.",
        r.outcome.front.len()
    );
    s
}

/// Writes pareto.csv, recommended.json, summary.md, report.html, outcome.json, front.svg,
/// quality.svg and roofline.svg into `dir`. Front rows are computed one at a time as they stream out: a front can hold
/// hundreds of thousands.
/// The candidates `quality.svg` labels, one mark per candidate (roles joined).
fn marks(r: &SearchReport) -> Vec<plot::Marked> {
    let mut roles: Vec<(&FrontRow, String)> = Vec::new();
    let quality = format!("quality-first (+{:.0}% TPOT)", 100.0 * r.quality_tpot_margin);
    let candidates = [
        Some((&r.recommended, "recommended")),
        r.runner_up.as_ref().map(|ru| (ru, "runner-up")),
        Some((&r.fastest, "fastest decoder")),
        Some((&r.quality_pick, quality.as_str())),
    ];
    for (row, role) in candidates.into_iter().flatten() {
        match roles.iter_mut().find(|(x, _)| x.index == row.index) {
            Some((_, label)) => {
                label.push_str(", ");
                label.push_str(role);
            }
            None => roles.push((row, role.to_string())),
        }
    }
    roles
        .into_iter()
        .map(|(row, label)| plot::Marked {
            label: format!("{label}: #{}", row.index),
            decode_tokens_per_s: row.decode_tokens_per_s,
            predicted_loss: row.predicted_loss,
        })
        .collect()
}

pub fn write(r: &SearchReport, space: &SearchSpace, device: &DeviceProfile, dir: &Path) -> Result<()> {
    let mut scorer = Scorer::new(space, device, crate::roofline::PlanChoice::Fastest);
    let mut front_points = Vec::with_capacity(r.outcome.front.len());
    let mut quality_points = Vec::with_capacity(r.outcome.front.len());
    write_atomic_with(&dir.join("pareto.csv"), |w| {
        let mut csv = csv::Writer::from_writer(w);
        for s in &r.outcome.front {
            let c = space.candidate(s.index).expect("scored candidates are valid");
            front_points.push(plot::FrontPoint {
                parameters: s.parameters,
                rip: s.rip,
                attention: c.arch.attention_kind().name().to_string(),
                recommended: s.index == r.recommended.index,
            });
            quality_points.push(plot::QualityPoint {
                decode_tokens_per_s: s.decode_tokens_per_s,
                predicted_loss: s.predicted_loss,
                attention: c.arch.attention_kind().name().to_string(),
            });
            let d = scorer.detail(&c.arch, c.precision_index);
            csv.serialize(FrontRow::new(&c, &d, s.index == r.recommended.index))?;
        }
        csv.flush()
    })?;
    plot::front_svg(&dir.join("front.svg"), &format!("{} on {}: Pareto front", r.space, r.device), &front_points)?;
    plot::quality_svg(
        &dir.join("quality.svg"),
        &format!("{} on {}: predicted loss against decode speed", r.space, r.device),
        &quality_points,
        &marks(r),
    )?;
    let rec = &r.recommended;
    let roof = plot::RoofLine {
        label: device.name.clone(),
        peak_flop_per_s: device.peak_flops(space.candidate(rec.index).expect("valid").precisions.compute()),
        bandwidth_bytes_per_s: device.bandwidth_bytes_per_s,
    };
    let point = |label: &str, i: f64, p: f64| plot::RooflinePoint {
        label: label.to_string(),
        roof: 0,
        model: None,
        intensity_flop_per_byte: i,
        performance_flop_per_s: p,
    };
    plot::roofline_svg(
        &dir.join("roofline.svg"),
        &format!("{} on {}: the recommendation", r.space, r.device),
        &[roof],
        &[
            point("prefill", rec.prefill_intensity_flop_per_byte, rec.prefill_performance_flop_per_s),
            point("decode", rec.decode_intensity_flop_per_byte, rec.decode_performance_flop_per_s),
            point("workload", rec.intensity_flop_per_byte, rec.performance_flop_per_s),
        ],
    )?;
    write_atomic(&dir.join("recommended.json"), &json_bytes(&r.recommended_config))?;
    // The space and the profile as they were: the folder alone rebuilds any candidate and its
    // prediction (`verify`).
    write_atomic(&dir.join("space.toml"), space.source.as_bytes())?;
    write_atomic(&dir.join("device.json"), device.to_json().as_bytes())?;
    write_atomic(&dir.join("summary.md"), summary_markdown(r, space).as_bytes())?;
    // The page inlines the plots just written, so it needs nothing beside it to render.
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).map_err(|e| Error::io(dir.join(name), e));
    let svgs = [
        ("The Pareto front: rip against parameters, by attention kind (front.svg)", read("front.svg")?),
        ("Predicted loss against decode speed, the picks marked (quality.svg)", read("quality.svg")?),
        ("The recommendation on the device's roofline (roofline.svg)", read("roofline.svg")?),
    ];
    write_atomic(&dir.join("report.html"), super::html::report_html(r, space, &svgs).as_bytes())?;
    write_atomic_with(&dir.join("outcome.json"), |w| {
        serde_json::to_writer_pretty(&mut *w, &r.outcome)?;
        w.write_all(b"\n")
    })?;
    Ok(())
}
