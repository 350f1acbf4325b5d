//! Architecture description: what a decoder-only transformer is made of, validated, with its
//! exact parameter count and KV-cache size.

pub mod gguf;
pub mod gguf_config;
mod hf;
pub mod layers;

/// Physical bounds on every dimension. Past them no model exists, and within them every size
/// and count this crate computes fits a u64: the largest product is experts (2^13 with the
/// shared ones) x 3 x hidden (2^17) x expert width (2^20) x layers (2^10) = 3 x 2^60.
pub mod limits {
    pub const MAX_LAYERS: u32 = 1 << 10;
    /// Hidden size, head sizes and MLA ranks.
    pub const MAX_WIDTH: u32 = 1 << 17;
    pub const MAX_HEADS: u32 = 1 << 12;
    pub const MAX_VOCAB: u32 = 1 << 22;
    /// FFN and expert widths.
    pub const MAX_INTERMEDIATE: u32 = 1 << 20;
    /// Routed experts, and shared experts.
    pub const MAX_EXPERTS: u32 = 1 << 12;
    /// Sliding windows, in tokens.
    pub const MAX_WINDOW: u32 = 1 << 24;
    /// Taps of a causal convolution.
    pub const MAX_CONV_KERNEL: u32 = 64;
    /// Per-head widths of recurrent states (key, value, SSM head and state sizes).
    pub const MAX_STATE_WIDTH: u32 = 1 << 12;
}

pub use hf::{
    export_hf_config, load_hf_config, parse_hf_config, parse_hf_value, try_export_hf_config, SUPPORTED_MODEL_TYPES,
};
pub use layers::{DeltaNet, Layer, LayerGroups, Mamba2, Mixer};

use crate::dtype::storage::{counter_split, LayerSplit, MixContext};
use crate::dtype::DType;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// The Hugging Face model family an architecture comes from (or is exported as).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    Llama,
    Mistral,
    Qwen2,
    Qwen3,
    Phi3,
    Gemma2,
    DeepseekV2,
    DeepseekV3,
    /// `gemma3_text`: 5 windowed layers per global one, GeGLU, four norms and q/k norms.
    Gemma3Text,
    /// `lfm2`: gated short convolutions and GQA with q/k norms.
    Lfm2,
    /// `smollm3`: every fourth layer without RoPE.
    SmolLm3,
    /// `gpt_oss`: alternating 128-token windows, attention sinks, biased MoE.
    GptOss,
    /// `qwen3_next`: Gated DeltaNet and gated attention, MoE with a gated shared expert.
    Qwen3Next,
    /// `qwen3_5_text`: Qwen3.5's dense Gated DeltaNet hybrid.
    Qwen35Text,
    /// `granitemoehybrid`: Mamba2 and attention layers (Granite 4.0-H), dense or MoE.
    GraniteMoeHybrid,
    /// `mamba2`: Mamba2 layers only, no FFN.
    Mamba2,
}

/// Self-attention. Grouped covers MHA (kv heads = heads), GQA and MQA (kv heads = 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Attention {
    Grouped {
        num_heads: u32,
        num_kv_heads: u32,
        /// Per-head size of queries, keys and values.
        head_dim: u32,
    },
    /// Multi-head Latent Attention (DeepSeek-V2): keys and values come from a shared latent of
    /// `kv_lora_rank`, cached together with one decoupled RoPE key of `qk_rope_head_dim`.
    Latent(Mla),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Mla {
    pub num_heads: u32,
    pub kv_lora_rank: u32,
    /// Low-rank query compression; `None` projects queries directly from the hidden state.
    pub q_lora_rank: Option<u32>,
    pub qk_nope_head_dim: u32,
    pub qk_rope_head_dim: u32,
    pub v_head_dim: u32,
}

impl Mla {
    pub fn qk_head_dim(&self) -> u32 {
        self.qk_nope_head_dim + self.qk_rope_head_dim
    }

    /// (heads, kv_lora_rank, qk_rope_head_dim, qk_nope_head_dim, v_head_dim) for size arithmetic.
    pub fn dims(&self) -> (u64, u64, u64, u64, u64) {
        let m = self;
        (
            m.num_heads as u64,
            m.kv_lora_rank as u64,
            m.qk_rope_head_dim as u64,
            m.qk_nope_head_dim as u64,
            m.v_head_dim as u64,
        )
    }

    /// `dims` as floats, for FLOP and byte arithmetic.
    pub fn dims_f64(&self) -> (f64, f64, f64, f64, f64) {
        let (nh, r, dr, dn, dv) = self.dims();
        (nh as f64, r as f64, dr as f64, dn as f64, dv as f64)
    }
}

/// The kind of attention, as a label for reports and search spaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttentionKind {
    Mha,
    Gqa,
    Mqa,
    Mla,
}

impl AttentionKind {
    pub fn name(self) -> &'static str {
        match self {
            AttentionKind::Mha => "mha",
            AttentionKind::Gqa => "gqa",
            AttentionKind::Mqa => "mqa",
            AttentionKind::Mla => "mla",
        }
    }
}

impl Attention {
    pub fn kind(&self) -> AttentionKind {
        match *self {
            Attention::Grouped { num_heads, num_kv_heads, .. } => {
                if num_kv_heads == num_heads {
                    AttentionKind::Mha
                } else if num_kv_heads == 1 {
                    AttentionKind::Mqa
                } else {
                    AttentionKind::Gqa
                }
            }
            Attention::Latent(_) => AttentionKind::Mla,
        }
    }

    pub fn num_heads(&self) -> u32 {
        match *self {
            Attention::Grouped { num_heads, .. } => num_heads,
            Attention::Latent(m) => m.num_heads,
        }
    }

    /// Elements cached per token per layer (keys and values, or latent and RoPE key).
    pub fn kv_elements_per_token(&self) -> u64 {
        match *self {
            Attention::Grouped { num_kv_heads, head_dim, .. } => 2 * num_kv_heads as u64 * head_dim as u64,
            // One latent vector plus one shared RoPE key: not 2x, not per head.
            Attention::Latent(m) => m.kv_lora_rank as u64 + m.qk_rope_head_dim as u64,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    Silu,
    Gelu,
    GeluTanh,
    Relu,
}

impl Activation {
    /// FLOPs per element, by the usual convention (exp, reciprocal and tanh counted as one each):
    /// silu x*sigmoid(x) = neg, exp, add, div, mul = 5; gelu (erf or tanh form) about 8; relu 1.
    pub fn flops_per_element(self) -> f64 {
        match self {
            Activation::Silu => 5.0,
            Activation::Gelu | Activation::GeluTanh => 8.0,
            Activation::Relu => 1.0,
        }
    }

    pub fn hf_name(self) -> &'static str {
        match self {
            Activation::Silu => "silu",
            Activation::Gelu => "gelu",
            Activation::GeluTanh => "gelu_pytorch_tanh",
            Activation::Relu => "relu",
        }
    }
}

/// The feed-forward block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Ffn {
    /// `gated`: SwiGLU-style, three `hidden x intermediate` matrices (gate, up, down);
    /// otherwise two (up, down).
    Dense {
        intermediate_size: u32,
        gated: bool,
        activation: Activation,
        bias: bool,
    },
    Moe(Moe),
}

/// DeepSeek-style mixture of experts: gated experts, optional always-on shared experts, and
/// the first `first_k_dense` layers dense.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Moe {
    pub num_experts: u32,
    pub experts_per_token: u32,
    pub num_shared_experts: u32,
    pub expert_intermediate_size: u32,
    /// Width of the dense FFN in the dense-first layers.
    pub dense_intermediate_size: u32,
    pub first_k_dense: u32,
    pub activation: Activation,
    /// DeepSeek-V3's router carries a bias per expert (`e_score_correction_bias`).
    pub router_bias: bool,
    /// Biases on every expert's projections (gpt-oss).
    #[serde(default, skip_serializing_if = "is_false")]
    pub expert_bias: bool,
    /// A sigmoid gate (one weight vector) on the shared experts' output (Qwen3-Next).
    #[serde(default, skip_serializing_if = "is_false")]
    pub shared_expert_gate: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl Ffn {
    /// A SwiGLU FFN without biases (every llama-like model).
    pub fn swiglu(intermediate_size: u32) -> Ffn {
        Ffn::Dense { intermediate_size, gated: true, activation: Activation::Silu, bias: false }
    }

    pub fn is_moe(&self) -> bool {
        matches!(self, Ffn::Moe(_))
    }
}

/// A decoder-only transformer with identical layers (MoE dense-first layers excepted).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Architecture {
    pub name: String,
    pub family: Family,
    pub num_layers: u32,
    pub hidden_size: u32,
    pub vocab_size: u32,
    /// The LM head shares the embedding matrix (stored once).
    pub tie_embeddings: bool,
    pub attention: Attention,
    pub ffn: Ffn,
    /// Biases on the Q, K and V projections (Qwen2).
    pub qkv_bias: bool,
    /// Bias on the attention output projection.
    pub o_bias: bool,
    /// RMSNorm on each query and key head (Qwen3).
    pub qk_norm: bool,
    /// A sigmoid gate on the attention output, computed by the query projection (which emits
    /// twice the query width: Qwen3-Next, Qwen3.5).
    #[serde(default, skip_serializing_if = "is_false")]
    pub attn_output_gate: bool,
    /// A learned sink logit per query head (gpt-oss).
    #[serde(default, skip_serializing_if = "is_false")]
    pub attention_sinks: bool,
    /// Norms per layer: 2 (before attention and FFN) or 4 (Gemma 2 adds two after).
    pub norms_per_layer: u32,
    pub max_position_embeddings: u32,
    /// Each layer's kind, when the layers are not all global attention with RoPE and an FFN
    /// (windows, convolutions, linear attention, state spaces, NoPE): one entry per layer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<Layer>,
    pub rope_theta: f64,
    pub norm_eps: f64,
}

impl Architecture {
    /// A pre-norm decoder without biases or q/k norms, with full attention: llama for grouped
    /// attention, deepseek_v2 for MLA (the synthetic models, search candidates and examples);
    /// an 8192-token trained context, RoPE base 10000 and norm epsilon 1e-6. Override the rest
    /// with struct update syntax.
    pub fn plain(
        name: String,
        num_layers: u32,
        hidden_size: u32,
        vocab_size: u32,
        tie_embeddings: bool,
        attention: Attention,
        ffn: Ffn,
    ) -> Architecture {
        Architecture {
            name,
            family: if matches!(attention, Attention::Latent(_)) { Family::DeepseekV2 } else { Family::Llama },
            num_layers,
            hidden_size,
            vocab_size,
            tie_embeddings,
            attention,
            ffn,
            qkv_bias: false,
            o_bias: false,
            qk_norm: false,
            attn_output_gate: false,
            attention_sinks: false,
            norms_per_layer: 2,
            max_position_embeddings: 8192,
            layers: Vec::new(),
            rope_theta: 10000.0,
            norm_eps: 1e-6,
        }
    }

    /// Checks the invariants every later stage relies on. `source` names the file or space.
    pub fn validate(&self, source: &str) -> Result<()> {
        use limits::*;
        // Positive and at most the field's physical limit.
        let within = |field: &str, v: u32, max: u32| -> Result<()> {
            if v == 0 || v > max {
                Err(Error::field(source, field, format!("an integer from 1 to {max}"), v))
            } else {
                Ok(())
            }
        };
        let positive = |field: &str, v: u32| {
            let max = match field {
                "num_hidden_layers" => MAX_LAYERS,
                "vocab_size" => MAX_VOCAB,
                "num_attention_heads" | "num_key_value_heads" => MAX_HEADS,
                "intermediate_size" | "moe_intermediate_size" => MAX_INTERMEDIATE,
                "n_routed_experts" | "num_experts_per_tok" => MAX_EXPERTS,
                _ => MAX_WIDTH,
            };
            within(field, v, max)
        };
        if !(self.norm_eps.is_finite() && self.norm_eps > 0.0 && self.norm_eps < 1.0) {
            return Err(Error::field(source, "rms_norm_eps", "a number in (0, 1)", self.norm_eps));
        }
        if !(self.rope_theta.is_finite() && self.rope_theta > 0.0) {
            return Err(Error::field(source, "rope_theta", "a positive, finite number", self.rope_theta));
        }
        positive("num_hidden_layers", self.num_layers)?;
        positive("hidden_size", self.hidden_size)?;
        positive("vocab_size", self.vocab_size)?;
        match self.attention {
            Attention::Grouped { num_heads, num_kv_heads, head_dim } => {
                positive("num_attention_heads", num_heads)?;
                positive("num_key_value_heads", num_kv_heads)?;
                positive("head_dim", head_dim)?;
                if num_heads % num_kv_heads != 0 {
                    return Err(Error::field(
                        source,
                        "num_key_value_heads",
                        format!("a divisor of num_attention_heads ({num_heads})"),
                        num_kv_heads,
                    ));
                }
            }
            Attention::Latent(m) => {
                positive("num_attention_heads", m.num_heads)?;
                positive("kv_lora_rank", m.kv_lora_rank)?;
                positive("qk_nope_head_dim", m.qk_nope_head_dim)?;
                positive("qk_rope_head_dim", m.qk_rope_head_dim)?;
                positive("v_head_dim", m.v_head_dim)?;
                if let Some(q) = m.q_lora_rank {
                    positive("q_lora_rank", q)?;
                }
            }
        }
        match self.ffn {
            Ffn::Dense { intermediate_size, .. } => positive("intermediate_size", intermediate_size)?,
            Ffn::Moe(m) => {
                positive("n_routed_experts", m.num_experts)?;
                positive("num_experts_per_tok", m.experts_per_token)?;
                positive("moe_intermediate_size", m.expert_intermediate_size)?;
                if m.num_shared_experts > MAX_EXPERTS {
                    return Err(Error::field(
                        source,
                        "n_shared_experts",
                        format!("at most {MAX_EXPERTS}"),
                        m.num_shared_experts,
                    ));
                }
                if m.dense_intermediate_size > MAX_INTERMEDIATE {
                    return Err(Error::field(
                        source,
                        "intermediate_size",
                        format!("at most {MAX_INTERMEDIATE}"),
                        m.dense_intermediate_size,
                    ));
                }
                if m.experts_per_token > m.num_experts {
                    return Err(Error::field(
                        source,
                        "num_experts_per_tok",
                        format!("at most n_routed_experts ({})", m.num_experts),
                        m.experts_per_token,
                    ));
                }
                if m.first_k_dense > 0 {
                    positive("intermediate_size", m.dense_intermediate_size)?;
                }
                if m.first_k_dense > self.num_layers {
                    return Err(Error::field(
                        source,
                        "first_k_dense_replace",
                        format!("at most num_hidden_layers ({})", self.num_layers),
                        m.first_k_dense,
                    ));
                }
            }
        }
        self.validate_layers(source)
    }

    /// The per-layer kinds: one per layer, each mixer's sizes within the physical limits.
    fn validate_layers(&self, source: &str) -> Result<()> {
        use limits::*;
        if self.layers.is_empty() {
            return Ok(());
        }
        if self.layers.len() != self.num_layers as usize {
            return Err(Error::field(
                source,
                "layer_types",
                format!("one entry per layer ({})", self.num_layers),
                format!("{} entries", self.layers.len()),
            ));
        }
        let within = |field: &str, v: u32, min: u32, max: u32| -> Result<()> {
            if v < min || v > max {
                Err(Error::field(source, field, format!("an integer from {min} to {max}"), v))
            } else {
                Ok(())
            }
        };
        for layer in &self.layers {
            match layer.mixer {
                Mixer::Global => {}
                Mixer::Window { window } => within("sliding_window", window, 1, MAX_WINDOW)?,
                Mixer::ShortConv { kernel } => within("conv_L_cache", kernel, 2, MAX_CONV_KERNEL)?,
                Mixer::DeltaNet(g) => {
                    within("linear_num_key_heads", g.key_heads, 1, MAX_HEADS)?;
                    within("linear_num_value_heads", g.value_heads, 1, MAX_HEADS)?;
                    within("linear_key_head_dim", g.key_head_dim, 1, MAX_STATE_WIDTH)?;
                    within("linear_value_head_dim", g.value_head_dim, 1, MAX_STATE_WIDTH)?;
                    within("linear_conv_kernel_dim", g.conv_kernel, 2, MAX_CONV_KERNEL)?;
                    if g.value_heads % g.key_heads != 0 {
                        return Err(Error::field(
                            source,
                            "linear_num_value_heads",
                            format!("a multiple of linear_num_key_heads ({})", g.key_heads),
                            g.value_heads,
                        ));
                    }
                }
                Mixer::Mamba2(m) => {
                    within("mamba_n_heads", m.heads, 1, MAX_HEADS)?;
                    within("mamba_d_head", m.head_dim, 1, MAX_STATE_WIDTH)?;
                    within("mamba_d_state", m.state_size, 1, MAX_STATE_WIDTH)?;
                    within("mamba_n_groups", m.groups, 1, MAX_HEADS)?;
                    within("mamba_d_conv", m.conv_kernel, 2, MAX_CONV_KERNEL)?;
                    if m.heads % m.groups != 0 {
                        return Err(Error::field(
                            source,
                            "mamba_n_groups",
                            format!("a divisor of mamba_n_heads ({})", m.heads),
                            m.groups,
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// The attention kind, and the first other mixer a hybrid has: "gqa", "gqa+window",
    /// "mha+conv", "mla+deltanet" (fronts and plots group candidates by it).
    pub fn stack_kind(&self) -> &'static str {
        const KINDS: [[&str; 5]; 4] = [
            ["mha", "mha+window", "mha+conv", "mha+deltanet", "mha+mamba2"],
            ["gqa", "gqa+window", "gqa+conv", "gqa+deltanet", "gqa+mamba2"],
            ["mqa", "mqa+window", "mqa+conv", "mqa+deltanet", "mqa+mamba2"],
            ["mla", "mla+window", "mla+conv", "mla+deltanet", "mla+mamba2"],
        ];
        let other = match self.layers.iter().map(|l| l.mixer).find(|m| *m != Mixer::Global) {
            None | Some(Mixer::Global) => 0,
            Some(Mixer::Window { .. }) => 1,
            Some(Mixer::ShortConv { .. }) => 2,
            Some(Mixer::DeltaNet(_)) => 3,
            Some(Mixer::Mamba2(_)) => 4,
        };
        KINDS[self.attention_kind() as usize][other]
    }

    /// The attention kind and, for a hybrid, how its layers differ: "gqa", "gqa+window512 x15".
    pub fn stack_label(&self) -> String {
        let kind = self.attention_kind().name();
        match self.pattern_label() {
            p if p.is_empty() => kind.to_string(),
            p => format!("{kind}+{p}"),
        }
    }

    /// How the layers differ from global attention with RoPE, group by group, for labels:
    /// "" (uniform), "window512 x15", "conv3 x10", "deltanet 16/16x128 x18, nope x9".
    pub fn pattern_label(&self) -> String {
        // Groups differ by RoPE or FFN too: add up the counts of each mixer.
        let mut parts: Vec<(String, u32)> = Vec::new();
        for &(layer, count) in self.layer_groups().as_slice() {
            let part = match layer.mixer {
                Mixer::Global => continue,
                Mixer::Window { window } => format!("window{window}"),
                Mixer::ShortConv { kernel } => format!("conv{kernel}"),
                Mixer::DeltaNet(g) => {
                    format!("deltanet {}/{}x{}", g.key_heads, g.value_heads, g.key_head_dim.max(g.value_head_dim))
                }
                Mixer::Mamba2(m) => format!("mamba2 {}x{} s{}", m.heads, m.head_dim, m.state_size),
            };
            match parts.iter_mut().find(|(p, _)| *p == part) {
                Some((_, n)) => *n += count,
                None => parts.push((part, count)),
            }
        }
        let mut parts: Vec<String> = parts.into_iter().map(|(p, n)| format!("{p} x{n}")).collect();
        let nope = self.layers.iter().filter(|l| l.mixer.is_attention() && !l.rope).count();
        if nope > 0 {
            parts.push(format!("nope x{nope}"));
        }
        parts.join(", ")
    }

    /// The layer at `index` (0-based).
    pub fn layer(&self, index: u32) -> Layer {
        self.layers.get(index as usize).copied().unwrap_or(Layer::GLOBAL)
    }

    /// The distinct layers and how many of each.
    pub fn layer_groups(&self) -> LayerGroups {
        LayerGroups::of(&self.layers, self.num_layers)
    }

    /// Layers that attend over cached keys and values (global or windowed).
    pub fn attention_layers(&self) -> u32 {
        if self.layers.is_empty() {
            return self.num_layers;
        }
        self.layers.iter().filter(|l| l.mixer.is_attention()).count() as u32
    }

    /// Layers with an FFN.
    pub fn ffn_layers(&self) -> u32 {
        if self.layers.is_empty() {
            return self.num_layers;
        }
        self.layers.iter().filter(|l| l.ffn).count() as u32
    }

    pub fn attention_kind(&self) -> AttentionKind {
        self.attention.kind()
    }

    /// Layers whose FFN is a mixture of experts (FFN layers from `first_k_dense` on; the rest
    /// of the FFN layers are dense).
    pub fn moe_layers(&self) -> u32 {
        match self.ffn {
            Ffn::Moe(m) if self.layers.is_empty() => self.num_layers - m.first_k_dense,
            Ffn::Moe(m) => self.layers.iter().skip(m.first_k_dense as usize).filter(|l| l.ffn).count() as u32,
            Ffn::Dense { .. } => 0,
        }
    }

    /// Parameters of one attention block (projections, biases, q/k norms and latent norms).
    pub fn attention_params(&self) -> u64 {
        let h = self.hidden_size as u64;
        match self.attention {
            Attention::Grouped { num_heads, num_kv_heads, head_dim } => {
                let (q, kv) = (num_heads as u64 * head_dim as u64, num_kv_heads as u64 * head_dim as u64);
                let mut p = h * q + 2 * h * kv + q * h;
                if self.qkv_bias {
                    p += q + 2 * kv;
                }
                if self.attn_output_gate {
                    p += h * q;
                }
                if self.attention_sinks {
                    p += num_heads as u64;
                }
                if self.o_bias {
                    p += h;
                }
                if self.qk_norm {
                    p += 2 * head_dim as u64;
                }
                p
            }
            Attention::Latent(m) => {
                let nh = m.num_heads as u64;
                let q_out = nh * m.qk_head_dim() as u64;
                let q = match m.q_lora_rank {
                    // q_a_proj, q_a_layernorm, q_b_proj
                    Some(r) => h * r as u64 + r as u64 + r as u64 * q_out,
                    None => h * q_out,
                };
                let r = m.kv_lora_rank as u64;
                // kv_a_proj_with_mqa, kv_a_layernorm, kv_b_proj, o_proj
                let kv = h * (r + m.qk_rope_head_dim as u64) + r + r * nh * (m.qk_nope_head_dim + m.v_head_dim) as u64;
                let o = nh * m.v_head_dim as u64 * h;
                q + kv + o + if self.o_bias { h } else { 0 }
            }
        }
    }

    /// Parameters of the FFN of a dense layer and of a MoE layer.
    fn ffn_params(&self) -> (u64, u64) {
        let h = self.hidden_size as u64;
        match self.ffn {
            Ffn::Dense { intermediate_size, gated, bias, .. } => {
                let i = intermediate_size as u64;
                let mats = if gated { 3 } else { 2 };
                let b = if bias { (mats - 1) * i + h } else { 0 };
                (mats * h * i + b, 0)
            }
            Ffn::Moe(m) => {
                let dense = 3 * h * m.dense_intermediate_size as u64;
                let e = m.expert_intermediate_size as u64;
                let experts = (m.num_experts + m.num_shared_experts) as u64 * 3 * h * e;
                let router = m.num_experts as u64 * h + if m.router_bias { m.num_experts as u64 } else { 0 };
                let biases = if m.expert_bias { m.num_experts as u64 * (2 * e + h) } else { 0 };
                let gate = if m.shared_expert_gate { h } else { 0 };
                (dense, experts + router + biases + gate)
            }
        }
    }

    /// Parameters of the embedding (and of the LM head when untied).
    pub fn embedding_params(&self) -> u64 {
        let e = self.vocab_size as u64 * self.hidden_size as u64;
        if self.tie_embeddings {
            e
        } else {
            2 * e
        }
    }

    /// Total parameters, tied embeddings counted once.
    pub fn parameters(&self) -> u64 {
        self.parameters_in(&self.layer_groups())
    }

    /// [`Architecture::parameters`] with the stack's layer groups (`layer_groups`) found
    /// already: a search finds them once per candidate for its count, footprint and pricing.
    pub fn parameters_in(&self, groups: &LayerGroups) -> u64 {
        debug_assert_eq!(*groups, self.layer_groups());
        let h = self.hidden_size as u64;
        let (dense_ffn, moe_ffn) = self.ffn_params();
        let moe_layers = self.moe_layers() as u64;
        let dense_layers = groups.ffn_layers() as u64 - moe_layers;
        let mut mixers = 0;
        for &(layer, count) in groups.as_slice() {
            let mixer = match layer.mixer {
                Mixer::Global | Mixer::Window { .. } => self.attention_params(),
                other => other.recurrent_params(h),
            };
            mixers += count as u64 * (mixer + self.norms_of(layer) as u64 * h);
        }
        mixers + dense_layers * dense_ffn + moe_layers * moe_ffn + self.embedding_params() + h
        // final norm
    }

    /// Norm vectors of a layer: `norms_per_layer`, half of them in a layer without an FFN.
    pub fn norms_of(&self, layer: Layer) -> u32 {
        if layer.ffn {
            self.norms_per_layer
        } else {
            self.norms_per_layer / 2
        }
    }

    /// Parameters one token actually uses (MoE: top-k and shared experts only).
    pub fn active_parameters(&self) -> u64 {
        match self.ffn {
            Ffn::Dense { .. } => self.parameters(),
            Ffn::Moe(m) => {
                let h = self.hidden_size as u64;
                let e = m.expert_intermediate_size as u64;
                let per_expert = 3 * h * e + if m.expert_bias { 2 * e + h } else { 0 };
                let idle = (m.num_experts - m.experts_per_token) as u64 * per_expert;
                self.parameters() - self.moe_layers() as u64 * idle
            }
        }
    }

    /// Bytes of the weights as stored in `format`: each matrix in the type llama.cpp's quantiser
    /// gives it (see `dtype::storage`), norms and biases in f32 for GGUF formats (in `format`
    /// otherwise). Equals the data of a GGUF file of that format (tested against the layout and
    /// against llama.cpp's files).
    pub fn stored_weight_bytes(&self, format: DType) -> f64 {
        self.stored_weight_bytes_in(format, &self.layer_groups())
    }

    /// [`Architecture::stored_weight_bytes`] with the stack's layer groups found already.
    pub fn stored_weight_bytes_in(&self, format: DType, groups: &LayerGroups) -> f64 {
        debug_assert_eq!(*groups, self.layer_groups());
        self.weight_bytes_of(format, groups, false)
    }

    /// The weight bytes one decode step reads, as stored in `format`: all of them but a MoE
    /// model's idle experts (each MoE layer reads its top-k routed experts, its shared ones and
    /// its router). What a weight cache is compared against: a step that picks the same experts
    /// as the last (llama-bench's generation repeats one token) finds them where it left them.
    pub fn streamed_weight_bytes_in(&self, format: DType, groups: &LayerGroups) -> f64 {
        debug_assert_eq!(*groups, self.layer_groups());
        self.weight_bytes_of(format, groups, true)
    }

    /// [`Architecture::stored_weight_bytes_in`] as a sum over layer groups, for the stacks of
    /// this shape with layer groups of `groups`' kinds (a search's depth run): what the
    /// embedding, the head and the final norm take, and what one layer of each group takes;
    /// for a uniform Q4_K_M stack, also what each layer with more bits adds (llama.cpp's
    /// `use_more_bits` layers store `attn_v` and `ffn_down` wider). `None` where the bytes are
    /// not such a sum (a Q4_K_M hybrid numbers its attention and FFN tensors over different
    /// layers, or shares a counter with DeltaNet's; a MoE stack's dense layers go by its depth),
    /// or where a figure is not a whole number of bytes: every figure is then a whole number
    /// below 2^53, exact in any order of addition, so the sum is bit for bit the figure worked
    /// out for each stack.
    pub fn stored_weight_bytes_by_group(&self, format: DType, groups: &LayerGroups) -> Option<GroupBytes> {
        let by_position = format == DType::Q4KM;
        if self.ffn.is_moe() || (by_position && !matches!(groups, LayerGroups::Uniform(_))) {
            return None;
        }
        let kinds = groups.as_slice();
        let with = |one: Option<usize>, count: u32| {
            let counts =
                kinds.iter().enumerate().map(|(i, &(layer, _))| (layer, if one == Some(i) { count } else { 0 }));
            self.weight_bytes_of(format, &LayerGroups::Mixed(counts.collect()), false)
        };
        let base = with(None, 0);
        let per_layer: Vec<f64> = (0..kinds.len()).map(|i| with(Some(i), 1) - base).collect();
        // Q4_K_M, uniform: one layer has more bits at depths 1 and 2 (the first at 1, the
        // second at 2: `use_more_bits`), so the second layer adds a layer without them.
        let (per_layer, more) = match by_position {
            true => {
                let plain = with(Some(0), 2) - base - per_layer[0];
                (vec![plain], per_layer[0] - plain)
            }
            false => (per_layer, 0.0),
        };
        let whole = whole_bytes(base) && whole_bytes(more) && per_layer.iter().all(|&b| whole_bytes(b));
        let per_layer = kinds.iter().map(|&(layer, _)| layer).zip(per_layer).collect();
        whole.then_some(GroupBytes { base, per_layer, more_bits: by_position.then_some(more) })
    }

    /// Stored weight bytes, with only each MoE layer's top-k routed experts where `active`.
    /// `groups` are `self`'s, or (for [`Architecture::stored_weight_bytes_by_group`]) groups
    /// of its kinds with other counts.
    fn weight_bytes_of(&self, format: DType, groups: &LayerGroups, active: bool) -> f64 {
        use crate::dtype::storage::{layer_split, Role};
        let experts = match self.ffn {
            Ffn::Moe(m) => m.num_experts,
            Ffn::Dense { .. } => 0,
        };
        // The quantiser numbers each tensor kind over the layers that have it: attention
        // tensors over the attention layers, FFN tensors over the FFN layers.
        let (l, la, lf) = (self.num_layers, groups.attention_layers(), groups.ffn_layers());
        let ctx = |layers: u32| MixContext { layers, experts, tied_embeddings: self.tie_embeddings };
        // Elements of a matrix with rows of `row` over layers `from..to` of `of`, stored by role.
        let matrix = |role: Role, row: u64, elements: u64, from: u32, to: u32, of: u32| -> f64 {
            let s = layer_split(format, role, row, from, to, ctx(of));
            elements as f64
                * (s.common.bytes_per_element() * s.common_layers as f64
                    + s.more.bytes_per_element() * s.more_layers as f64)
        };
        let gguf = format.is_block_quantised() || matches!(format, DType::F16 | DType::Bf16);
        let vector_bytes = if gguf { 4.0 } else { format.bytes() };
        let (h, v) = (self.hidden_size as u64, self.vocab_size as u64);
        let mut bytes = matrix(Role::TokenEmbedding, h, h * v, 0, 1, l);
        if !self.tie_embeddings {
            bytes += matrix(Role::Output, h, h * v, 0, 1, l);
        }
        let mut vectors = h;
        for &(layer, count) in groups.as_slice() {
            vectors += count as u64 * self.norms_of(layer) as u64 * h;
        }
        let splits = self.attn_v_splits(format);
        vectors += self.attention_weight_bytes(la as u64, &mut bytes, &|role, row, elements| match splits {
            Some((attention, _)) if role == Role::AttnV => attention.bytes(elements),
            _ => matrix(role, row, elements, 0, la, la),
        });
        vectors += self.mixer_weight_bytes(groups, splits.is_some(), &mut bytes, &|row, elements, layers| {
            matrix(Role::AttnOther, row, elements, 0, layers, l)
        });
        if let Some((_, delta_net)) = splits {
            // Their q, k and v, left out of `mixer_weight_bytes` (see there).
            for &(layer, _) in groups.as_slice() {
                if let Mixer::DeltaNet(g) = layer.mixer {
                    bytes += delta_net.bytes(h * g.conv_dim());
                }
            }
        }
        let dense = |f: u64, from: u32, to: u32| {
            matrix(Role::FfnGate, h, h * f, from, to, lf)
                + matrix(Role::FfnUp, h, h * f, from, to, lf)
                + matrix(Role::FfnDown, f, f * h, from, to, lf)
        };
        match self.ffn {
            Ffn::Dense { intermediate_size, gated, bias, .. } => {
                let f = intermediate_size as u64;
                bytes += if gated {
                    dense(f, 0, lf)
                } else {
                    matrix(Role::FfnUp, h, h * f, 0, lf, lf) + matrix(Role::FfnDown, f, f * h, 0, lf, lf)
                };
                if bias {
                    vectors += lf as u64 * (if gated { 2 * f } else { f } + h);
                }
            }
            Ffn::Moe(m) => {
                let (e, f) = (m.num_experts as u64, m.expert_intermediate_size as u64);
                // The routed experts counted: all, or the top-k one step reads.
                let routed = if active { m.experts_per_token as u64 } else { e };
                // FFN layers before the first MoE one are dense.
                let k = lf - self.moe_layers();
                bytes += dense(m.dense_intermediate_size as u64, 0, k);
                let shared = m.num_shared_experts as u64 * f;
                bytes += matrix(Role::Router, h, h * e, k, lf, lf)
                    + matrix(Role::FfnGate, h, h * f * routed, k, lf, lf)
                    + matrix(Role::FfnUp, h, h * f * routed, k, lf, lf)
                    + matrix(Role::FfnDown, f, f * h * routed, k, lf, lf)
                    + matrix(Role::FfnGate, h, h * shared, k, lf, lf)
                    + matrix(Role::FfnUp, h, h * shared, k, lf, lf)
                    + matrix(Role::FfnDown, shared, shared * h, k, lf, lf);
                if m.router_bias {
                    vectors += (lf - k) as u64 * e;
                }
                if m.expert_bias {
                    vectors += (lf - k) as u64 * routed * (2 * f + h);
                }
                if m.shared_expert_gate {
                    vectors += (lf - k) as u64 * h;
                }
            }
        }
        bytes + vectors as f64 * vector_bytes
    }

    /// Adds the bytes of the attention layers' matrices to `bytes` (`matrix(role, row,
    /// elements)` prices one over every attention layer), in a fixed order so that sums stay
    /// bit for bit; returns their vector elements.
    /// Q4_K_M only: with DeltaNet layers, llama.cpp's `attn_qkv` (their q, k and v) shares the
    /// quantiser's `attn_v` counter with the attention layers' `attn_v`, one tensor per layer,
    /// so which get more bits goes by layer position: (attention layers, DeltaNet layers).
    pub fn attn_v_splits(&self, format: DType) -> Option<(LayerSplit, LayerSplit)> {
        use crate::dtype::storage::{layer_split, Role};
        if format != DType::Q4KM || !self.layers.iter().any(|l| matches!(l.mixer, Mixer::DeltaNet(_))) {
            return None;
        }
        let experts = match self.ffn {
            Ffn::Moe(m) => m.num_experts,
            Ffn::Dense { .. } => 0,
        };
        let ctx = MixContext { layers: self.num_layers, experts, tied_embeddings: self.tie_embeddings };
        let (l, h) = (self.num_layers, self.hidden_size as u64);
        // Every layer has one tensor on the counter: the DeltaNet layers are the positions the
        // attention layers leave (one walk of the layers finds both).
        let attention = (0..l).zip(&self.layers).filter(|(_, layer)| layer.mixer.is_attention()).map(|(i, _)| i);
        let attention = counter_split(format, h, attention, l, ctx);
        // Every position of the counter: how a role stored one per layer goes.
        let all = layer_split(format, Role::AttnV, h, 0, l, ctx);
        let delta_net = LayerSplit {
            common_layers: all.common_layers - attention.common_layers,
            more_layers: all.more_layers - attention.more_layers,
            ..all
        };
        Some((attention, delta_net))
    }

    fn attention_weight_bytes(
        &self,
        la: u64,
        bytes: &mut f64,
        matrix: &dyn Fn(crate::dtype::storage::Role, u64, u64) -> f64,
    ) -> u64 {
        use crate::dtype::storage::Role;
        let h = self.hidden_size as u64;
        let mut vectors = 0;
        match self.attention {
            Attention::Grouped { num_heads, num_kv_heads, head_dim } => {
                let (q, kv) = (num_heads as u64 * head_dim as u64, num_kv_heads as u64 * head_dim as u64);
                *bytes += matrix(Role::AttnQ, h, h * q)
                    + matrix(Role::AttnK, h, h * kv)
                    + matrix(Role::AttnV, h, h * kv)
                    + matrix(Role::AttnOutput, q, q * h);
                if self.attn_output_gate {
                    *bytes += matrix(Role::AttnQ, h, h * q);
                }
                if self.qkv_bias {
                    vectors += la * (q + 2 * kv);
                }
                if self.qk_norm {
                    vectors += la * 2 * head_dim as u64;
                }
                if self.attention_sinks {
                    vectors += la * num_heads as u64;
                }
            }
            Attention::Latent(m) => {
                let (nh, r, dr, dn, dv) = m.dims();
                let q_out = nh * (dn + dr);
                *bytes += match m.q_lora_rank {
                    Some(rq) => {
                        vectors += la * rq as u64;
                        matrix(Role::AttnOther, h, h * rq as u64)
                            + matrix(Role::AttnOther, rq as u64, rq as u64 * q_out)
                    }
                    None => matrix(Role::AttnQ, h, h * q_out),
                };
                vectors += la * r;
                *bytes += matrix(Role::AttnOther, h, h * (r + dr))
                    + matrix(Role::AttnOther, dn, dn * r * nh)
                    + matrix(Role::AttnOther, r, r * dv * nh)
                    + matrix(Role::AttnOutput, nh * dv, nh * dv * h);
            }
        }
        if self.o_bias {
            vectors += la * h;
        }
        vectors
    }

    /// Bytes of the convolution and recurrent mixers' projections (`matrix(row, elements,
    /// layers)`, stored in the default type: llama.cpp's quantiser has no rule for them) and
    /// their f32 vector elements (kernels, decay and skip terms, norms: never quantised).
    /// Adds the bytes of the convolution and recurrent mixers' matrices to `bytes`, DeltaNet's
    /// q, k and v left out when `qkv_apart`; returns their vector elements.
    fn mixer_weight_bytes(
        &self,
        groups: &LayerGroups,
        qkv_apart: bool,
        bytes: &mut f64,
        matrix: &dyn Fn(u64, u64, u32) -> f64,
    ) -> u64 {
        let h = self.hidden_size as u64;
        let mut vectors = 0;
        for &(layer, count) in groups.as_slice() {
            let n = count as u64;
            match layer.mixer {
                Mixer::Global | Mixer::Window { .. } => {}
                Mixer::ShortConv { kernel } => {
                    *bytes += matrix(h, 3 * h * h, count) + matrix(h, h * h, count);
                    vectors += n * kernel as u64 * h;
                }
                Mixer::DeltaNet(g) => {
                    // Q4_K_M stores q, k and v (`attn_qkv`) by layer position: the caller adds them.
                    let in_proj = if qkv_apart { g.in_proj_dim() - g.conv_dim() } else { g.in_proj_dim() };
                    *bytes += matrix(h, h * in_proj, count) + matrix(g.value_dim(), g.value_dim() * h, count);
                    vectors += n * (g.params(h) - h * g.in_proj_dim() - g.value_dim() * h);
                }
                Mixer::Mamba2(m) => {
                    *bytes += matrix(h, h * m.in_proj_dim(), count) + matrix(m.inner(), m.inner() * h, count);
                    vectors += n * (m.params(h) - h * m.in_proj_dim() - m.inner() * h);
                }
            }
        }
        vectors
    }

    /// KV-cache elements each token adds, over all attention layers (windowed ones until their
    /// window fills).
    pub fn kv_elements_per_token(&self) -> u64 {
        self.attention_layers() as u64 * self.attention.kv_elements_per_token()
    }

    /// KV-cache elements one sequence holds at `context` tokens: global layers keep every
    /// token, windowed layers `window_cells(window, context)` (the window itself, or what an
    /// engine allocates for it). A float: tokens times layers times a layer's elements can
    /// pass 2^64 at the physical limits.
    pub fn kv_cache_elements(&self, context: u64, window_cells: &dyn Fn(u32, u64) -> u64) -> f64 {
        self.kv_cache_elements_in(&self.layer_groups(), context, window_cells)
    }

    /// [`Architecture::kv_cache_elements`] with `self`'s layer groups found already.
    fn kv_cache_elements_in(&self, groups: &LayerGroups, context: u64, window_cells: &dyn Fn(u32, u64) -> u64) -> f64 {
        let per = self.attention.kv_elements_per_token() as f64;
        if self.layers.is_empty() {
            return self.num_layers as f64 * per * context as f64;
        }
        // At most 2^10 layers of 2^25 tokens each: the token sum fits (and, in integers, is
        // the same summed per group).
        let tokens: u64 = groups
            .as_slice()
            .iter()
            .map(|&(l, count)| {
                count as u64
                    * match l.mixer {
                        Mixer::Global => context,
                        Mixer::Window { window } => window_cells(window, context),
                        _ => 0,
                    }
            })
            .sum();
        tokens as f64 * per
    }

    /// Bytes of KV cache and recurrent state `batch` sequences hold at `context` tokens, the
    /// cache at `kv_bytes` per element, states in f32; a windowed layer keeps its window.
    pub fn cache_bytes(&self, batch: u32, context: u64, kv_bytes: f64) -> f64 {
        self.cache_bytes_with(batch, context, kv_bytes, &window_cells)
    }

    /// `cache_bytes` with windowed layers holding `window_cells(window, context)` tokens.
    pub fn cache_bytes_with(
        &self,
        batch: u32,
        context: u64,
        kv_bytes: f64,
        window_cells: &dyn Fn(u32, u64) -> u64,
    ) -> f64 {
        self.cache_bytes_in(&self.layer_groups(), batch, context, kv_bytes, window_cells)
    }

    /// [`Architecture::cache_bytes_with`] with `self`'s layer groups found already (a search
    /// finds them once per candidate).
    pub fn cache_bytes_in(
        &self,
        groups: &LayerGroups,
        batch: u32,
        context: u64,
        kv_bytes: f64,
        window_cells: &dyn Fn(u32, u64) -> u64,
    ) -> f64 {
        debug_assert_eq!(*groups, self.layer_groups());
        if self.layers.is_empty() {
            return batch as f64 * context as f64 * self.kv_elements_per_token() as f64 * kv_bytes;
        }
        let kv = self.kv_cache_elements_in(groups, context, window_cells) * kv_bytes;
        batch as f64 * (kv + self.state_elements_in(groups) as f64 * 4.0)
    }

    /// f32 state elements one sequence keeps, whatever its context (convolution tails and
    /// recurrent states).
    pub fn state_elements(&self) -> u64 {
        self.state_elements_in(&self.layer_groups())
    }

    /// [`Architecture::state_elements`] with `self`'s layer groups found already (an integer
    /// sum: the same per group as per layer).
    fn state_elements_in(&self, groups: &LayerGroups) -> u64 {
        let h = self.hidden_size as u64;
        groups.as_slice().iter().map(|&(l, count)| count as u64 * l.mixer.state_elements(h)).sum()
    }
}

/// Cells a windowed layer's cache holds at `context` tokens: the window, once it is full.
pub fn window_cells(window: u32, context: u64) -> u64 {
    context.min(window as u64)
}

/// Whether `v` is a whole number of bytes below 2^53 (where every sum of such numbers is
/// exact).
fn whole_bytes(v: f64) -> bool {
    v.fract() == 0.0 && v.abs() < 2f64.powi(53)
}

/// Stored weight bytes of a shape's stacks as a sum over their layer groups (see
/// [`Architecture::stored_weight_bytes_by_group`]).
#[derive(Debug, Clone, PartialEq)]
pub struct GroupBytes {
    base: f64,
    /// Each group's kind of layer and the bytes one such layer takes.
    per_layer: Vec<(Layer, f64)>,
    /// Q4_K_M (a uniform stack): the bytes each layer with more bits adds.
    more_bits: Option<f64>,
}

impl GroupBytes {
    /// The stored weight bytes of the stack of this shape with `groups`: `None` where they are
    /// not of the kinds these were worked out for, or past 2^53 bytes (where the sum would no
    /// longer be exact).
    pub fn of(&self, groups: &LayerGroups) -> Option<f64> {
        let groups = groups.as_slice();
        if groups.len() != self.per_layer.len() {
            return None;
        }
        let mut bytes = self.base;
        for (&(kind, per_layer), &(layer, count)) in self.per_layer.iter().zip(groups) {
            if kind != layer {
                return None;
            }
            bytes += count as f64 * per_layer;
            if let Some(more) = self.more_bits {
                bytes += crate::dtype::storage::more_bits_layers(0, count, count) as f64 * more;
            }
        }
        whole_bytes(bytes).then_some(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Q4_K_M's shared `attn_v` counter with DeltaNet layers: 16 layers, attention in layers 3,
    /// 7, 11 and 15. llama.cpp's `use_more_bits` picks layers 0-1 (the first eighth), 14-15 (the
    /// last) and every third one between (4, 7, 10, 13): 2 of the 4 attention layers (7 and 15)
    /// and 6 of the 12 DeltaNet ones. Other depths and patterns: as counting layer by layer.
    #[test]
    fn attn_v_splits_count_the_counter_positions_of_each_side() {
        use crate::dtype::storage::use_more_bits;
        let attention = Attention::Grouped { num_heads: 4, num_kv_heads: 2, head_dim: 64 };
        let ffn = Ffn::Dense { intermediate_size: 512, gated: true, activation: Activation::Silu, bias: false };
        let delta_net = Mixer::DeltaNet(DeltaNet {
            key_heads: 2,
            value_heads: 4,
            key_head_dim: 64,
            value_head_dim: 64,
            conv_kernel: 4,
        });
        let at = |depth, every, first| {
            let base = Architecture::plain("t".into(), depth, 256, 1024, false, attention, ffn);
            Architecture::hybrid(base, delta_net, every, first)
        };
        let counts = |s: LayerSplit| (s.common_layers, s.more_layers);
        let (a, d) = at(16, 4, 3).attn_v_splits(DType::Q4KM).unwrap();
        assert_eq!((counts(a), counts(d)), ((2, 2), (6, 6)));
        for depth in 3..60 {
            for every in 2..=6.min(depth) {
                for first in 0..every {
                    let arch = at(depth, every, first);
                    let side = |attention: bool| {
                        let on = (0..depth).filter(|&i| arch.layers[i as usize].mixer.is_attention() == attention);
                        let more = on.clone().filter(|&i| use_more_bits(i, depth)).count() as u32;
                        (on.count() as u32 - more, more)
                    };
                    let (a, d) = arch.attn_v_splits(DType::Q4KM).unwrap();
                    assert_eq!((counts(a), counts(d)), (side(true), side(false)), "{depth} {every} {first}");
                }
            }
        }
    }

    /// A run's stored weight bytes as a sum over layer groups, against hand sums: hidden 256, 4
    /// heads of 64, 2 KV heads, FFN 512, vocabulary 1,024, untied.
    /// - Uniform, Q8_0 (34 bytes per 32 elements): a layer's matrices are 589,824 elements
    ///   (q and o 65,536 each, k and v 32,768 each, gate, up and down 131,072 each), 626,688
    ///   bytes, and its 2 norms 512 f32, 2,048 bytes: 628,736. The embedding and the head
    ///   (Q8_0 too) 278,528 each, the final norm 1,024: 558,080.
    /// - Windows in every other layer, Q4_0 (18 bytes per 32): the layers' matrices 331,776
    ///   bytes, their 4 norms and q/k norms (Gemma 3) 1,152 f32, 4,608 bytes: 336,384 for either
    ///   kind. The embedding 147,456, the head in Q6_K (210 bytes per 256) 215,040, the final
    ///   norm 1,024: 363,520.
    /// - Uniform, Q4_K_M: a layer's matrices in Q4_K (144 bytes per 256) 331,776 bytes, with its
    ///   norms 333,824; a layer with more bits stores `attn_v` and `ffn_down` (163,840
    ///   elements) in Q6_K, 42,240 bytes more. The ends as for Q4_0: 363,520. At 16 layers, 8
    ///   have more bits (0, 1, 4, 7, 10, 13, 14, 15): 6,042,624 bytes.
    #[test]
    fn stored_weight_bytes_by_group_are_hand_sums_and_the_whole_stack_figure() {
        let attention = Attention::Grouped { num_heads: 4, num_kv_heads: 2, head_dim: 64 };
        let ffn = Ffn::Dense { intermediate_size: 512, gated: true, activation: Activation::Silu, bias: false };
        let at = |depth| Architecture::plain("t".into(), depth, 256, 1024, false, attention, ffn);
        let window = Mixer::Window { window: 64 };
        let delta_net = Mixer::DeltaNet(DeltaNet {
            key_heads: 2,
            value_heads: 4,
            key_head_dim: 32,
            value_head_dim: 32,
            conv_kernel: 4,
        });
        // Each case: its stack at a depth, a format, and the hand sums (base, per layer).
        type Case<'a> = (&'a dyn Fn(u32) -> Architecture, DType, Option<(f64, f64)>);
        let cases: [Case; 4] = [
            (&at, DType::Q8_0, Some((558_080.0, 628_736.0))),
            (&at, DType::Q4KM, None),
            (&|d| Architecture::hybrid(at(d), window, 2, 1), DType::Q4_0, Some((363_520.0, 336_384.0))),
            (&|d| Architecture::hybrid(at(d), delta_net, 3, 2), DType::Q8_0, None),
        ];
        for (arch, format, hand) in cases {
            let first = arch(4);
            let by_group = first.stored_weight_bytes_by_group(format, &first.layer_groups()).unwrap();
            for depth in (1..=96).chain([1000]) {
                let a = arch(depth);
                let Some(got) = by_group.of(&a.layer_groups()) else {
                    // A hybrid too shallow for its pattern has other kinds of groups.
                    assert_ne!(a.layer_groups().as_slice().len(), first.layer_groups().as_slice().len());
                    continue;
                };
                assert_eq!(got.to_bits(), a.stored_weight_bytes(format).to_bits(), "{format:?} at depth {depth}");
                if let Some((base, per_layer)) = hand {
                    assert_eq!(got, base + depth as f64 * per_layer, "{format:?} at depth {depth}");
                }
            }
        }
        let q4_k_m = at(4).stored_weight_bytes_by_group(DType::Q4KM, &at(4).layer_groups()).unwrap();
        assert_eq!(q4_k_m.of(&at(16).layer_groups()), Some(6_042_624.0));
        // A Q4_K_M hybrid numbers its tensors over other layers, and a pattern of other kinds is
        // refused.
        let hybrid = Architecture::hybrid(at(8), window, 2, 1);
        assert_eq!(hybrid.stored_weight_bytes_by_group(DType::Q4KM, &hybrid.layer_groups()), None);
        let dense = at(8);
        let by_group = dense.stored_weight_bytes_by_group(DType::Q8_0, &dense.layer_groups()).unwrap();
        assert_eq!(by_group.of(&hybrid.layer_groups()), None);
    }

    /// A decode step of DeepSeek-V2-Lite reads 6 of each MoE layer's 64 routed experts: the
    /// 58 idle ones, 3 matrices of 2,048 x 1,408 each, in 26 MoE layers, are 13,045,334,016
    /// elements, 26,090,668,032 bytes in f16, that the stored weights have and a step does not
    /// read. A dense model reads all its weights.
    #[test]
    fn a_decode_step_streams_only_the_routed_experts_it_picks() {
        let text = include_str!("../../models/DeepSeek-V2-Lite-Chat.json");
        let moe = crate::arch::parse_hf_config(text, "DeepSeek-V2-Lite-Chat.json", "DeepSeek-V2-Lite").unwrap();
        let groups = moe.layer_groups();
        let idle = moe.stored_weight_bytes_in(DType::F16, &groups) - moe.streamed_weight_bytes_in(DType::F16, &groups);
        assert_eq!(idle, 26_090_668_032.0);
        let dense = tiny();
        let g = dense.layer_groups();
        assert_eq!(dense.streamed_weight_bytes_in(DType::Q4KM, &g), dense.stored_weight_bytes_in(DType::Q4KM, &g));
    }

    pub(crate) fn tiny() -> Architecture {
        Architecture {
            name: "tiny".into(),
            family: Family::Llama,
            num_layers: 2,
            hidden_size: 64,
            vocab_size: 100,
            tie_embeddings: true,
            attention: Attention::Grouped { num_heads: 4, num_kv_heads: 2, head_dim: 16 },
            ffn: Ffn::Dense { intermediate_size: 128, gated: true, activation: Activation::Silu, bias: false },
            qkv_bias: false,
            o_bias: false,
            qk_norm: false,
            attn_output_gate: false,
            attention_sinks: false,
            norms_per_layer: 2,
            max_position_embeddings: 2048,
            layers: Vec::new(),
            rope_theta: 10000.0,
            norm_eps: 1e-5,
        }
    }

    #[test]
    fn tiny_parameter_count_by_hand() {
        // embed 100*64 = 6400; per layer: q 64*64 + k,v 2*64*32 + o 64*64 = 12288,
        // mlp 3*64*128 = 24576, norms 128 -> 36992; x2 = 73984; final norm 64. Total 80448.
        assert_eq!(tiny().parameters(), 80_448);
    }

    #[test]
    fn kind_follows_head_counts() {
        let mut a = tiny();
        assert_eq!(a.attention_kind(), AttentionKind::Gqa);
        a.attention = Attention::Grouped { num_heads: 4, num_kv_heads: 4, head_dim: 16 };
        assert_eq!(a.attention_kind(), AttentionKind::Mha);
        a.attention = Attention::Grouped { num_heads: 4, num_kv_heads: 1, head_dim: 16 };
        assert_eq!(a.attention_kind(), AttentionKind::Mqa);
    }

    #[test]
    fn validation_rejects_non_dividing_kv_heads() {
        let mut a = tiny();
        a.attention = Attention::Grouped { num_heads: 4, num_kv_heads: 3, head_dim: 16 };
        let e = a.validate("x.json").unwrap_err().to_string();
        assert!(e.contains("num_key_value_heads") && e.contains("x.json"), "{e}");
    }
}
