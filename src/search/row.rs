//! A candidate as a row of the front: every architecture field and every figure, the label
//! people read it by, and its Hugging Face `config.json`.

use super::{Candidate, Detail};
use crate::arch::{try_export_hf_config, Attention, Ffn};
use crate::quality::Coverage;
use serde::Serialize;
use std::fmt::Write as _;

/// One front member: every architecture field and every figure.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FrontRow {
    pub index: u64,
    pub recommended: bool,
    /// The attention kind, with a hybrid's other layers: "gqa", "gqa+window512 x15".
    pub attention: String,
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
    /// The profile's error band around the rates (empty on profiles without one).
    pub prefill_tokens_per_s_low: Option<f64>,
    pub prefill_tokens_per_s_high: Option<f64>,
    pub decode_tokens_per_s_low: Option<f64>,
    pub decode_tokens_per_s_high: Option<f64>,
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
#[derive(Debug, Clone)]
struct Shape {
    attention: String,
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
            attention: a.stack_label(),
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
    let att = match s.attention.as_str() {
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
/// the format its activations compute in. Every candidate of a space is expressible (the space
/// builds each in a family that expresses it); the error says why one is not.
pub fn candidate_config(c: &Candidate) -> crate::Result<serde_json::Value> {
    let mut config = try_export_hf_config(&c.arch)?;
    config["torch_dtype"] = serde_json::Value::from(match c.precisions.activations.name() {
        "f32" => "float32",
        "f16" => "float16",
        _ => "bfloat16",
    });
    Ok(config)
}

impl FrontRow {
    pub fn new(c: &Candidate, d: &Detail, recommended: bool) -> FrontRow {
        let a = &c.arch;
        let s = Shape::of(a);
        FrontRow {
            index: c.index,
            recommended,
            attention: s.attention.clone(),
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
            prefill_tokens_per_s_low: d.prefill_band.map(|b| b.around(d.prefill_tokens_per_s).0),
            prefill_tokens_per_s_high: d.prefill_band.map(|b| b.around(d.prefill_tokens_per_s).1),
            decode_tokens_per_s_low: d.decode_band.map(|b| b.around(d.decode_tokens_per_s).0),
            decode_tokens_per_s_high: d.decode_band.map(|b| b.around(d.decode_tokens_per_s).1),
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
            attention: self.attention.clone(),
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
