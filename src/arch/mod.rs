//! Architecture description: what a decoder-only transformer is made of, validated, with its
//! exact parameter count and KV-cache size.

pub mod gguf;
pub mod gguf_config;
mod hf;

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
}

pub use hf::{export_hf_config, load_hf_config, parse_hf_config, SUPPORTED_MODEL_TYPES};

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
    /// Norms per layer: 2 (before attention and FFN) or 4 (Gemma 2 adds two after).
    pub norms_per_layer: u32,
    pub max_position_embeddings: u32,
    /// Tokens a sliding-window attention layer sees (Gemma 2, Mistral); `None`: full attention.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sliding_window: Option<u32>,
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
            norms_per_layer: 2,
            max_position_embeddings: 8192,
            sliding_window: None,
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
        Ok(())
    }

    pub fn attention_kind(&self) -> AttentionKind {
        self.attention.kind()
    }

    /// Layers whose FFN is a mixture of experts (the rest are dense).
    pub fn moe_layers(&self) -> u32 {
        match self.ffn {
            Ffn::Moe(m) => self.num_layers - m.first_k_dense,
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
                (dense, experts + router)
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
        let h = self.hidden_size as u64;
        let (dense_ffn, moe_ffn) = self.ffn_params();
        let moe_layers = self.moe_layers() as u64;
        let dense_layers = self.num_layers as u64 - moe_layers;
        let per_layer_common = self.attention_params() + self.norms_per_layer as u64 * h;
        self.num_layers as u64 * per_layer_common
            + dense_layers * dense_ffn
            + moe_layers * moe_ffn
            + self.embedding_params()
            + h // final norm
    }

    /// Parameters one token actually uses (MoE: top-k and shared experts only).
    pub fn active_parameters(&self) -> u64 {
        match self.ffn {
            Ffn::Dense { .. } => self.parameters(),
            Ffn::Moe(m) => {
                let h = self.hidden_size as u64;
                let idle = (m.num_experts - m.experts_per_token) as u64 * 3 * h * m.expert_intermediate_size as u64;
                self.parameters() - self.moe_layers() as u64 * idle
            }
        }
    }

    /// Bytes of the weights as stored in `format`: each matrix in the type llama.cpp's quantiser
    /// gives it (see `dtype::storage`), norms and biases in f32 for GGUF formats (in `format`
    /// otherwise). Equals the data of a GGUF file of that format (tested against the layout and
    /// against llama.cpp's files).
    pub fn stored_weight_bytes(&self, format: DType) -> f64 {
        use crate::dtype::storage::{layer_split, MixContext, Role};
        let experts = match self.ffn {
            Ffn::Moe(m) => m.num_experts,
            Ffn::Dense { .. } => 0,
        };
        let ctx = MixContext { layers: self.num_layers, experts, tied_embeddings: self.tie_embeddings };
        // Elements of a matrix with rows of `row` over layers `from..to`, stored by role.
        let matrix = |role: Role, row: u64, elements: u64, from: u32, to: u32| -> f64 {
            let s = layer_split(format, role, row, from, to, ctx);
            elements as f64
                * (s.common.bytes_per_element() * s.common_layers as f64
                    + s.more.bytes_per_element() * s.more_layers as f64)
        };
        let gguf = format.is_block_quantised() || matches!(format, DType::F16 | DType::Bf16);
        let vector_bytes = if gguf { 4.0 } else { format.bytes() };
        let (h, v, l) = (self.hidden_size as u64, self.vocab_size as u64, self.num_layers);
        let mut bytes = matrix(Role::TokenEmbedding, h, h * v, 0, 1);
        if !self.tie_embeddings {
            bytes += matrix(Role::Output, h, h * v, 0, 1);
        }
        let mut vectors = h + l as u64 * self.norms_per_layer as u64 * h;
        match self.attention {
            Attention::Grouped { num_heads, num_kv_heads, head_dim } => {
                let (q, kv) = (num_heads as u64 * head_dim as u64, num_kv_heads as u64 * head_dim as u64);
                bytes += matrix(Role::AttnQ, h, h * q, 0, l)
                    + matrix(Role::AttnK, h, h * kv, 0, l)
                    + matrix(Role::AttnV, h, h * kv, 0, l)
                    + matrix(Role::AttnOutput, q, q * h, 0, l);
                if self.qkv_bias {
                    vectors += l as u64 * (q + 2 * kv);
                }
                if self.qk_norm {
                    vectors += l as u64 * 2 * head_dim as u64;
                }
            }
            Attention::Latent(m) => {
                let (nh, r, dr, dn, dv) = (
                    m.num_heads as u64,
                    m.kv_lora_rank as u64,
                    m.qk_rope_head_dim as u64,
                    m.qk_nope_head_dim as u64,
                    m.v_head_dim as u64,
                );
                let q_out = nh * (dn + dr);
                bytes += match m.q_lora_rank {
                    Some(rq) => {
                        vectors += l as u64 * rq as u64;
                        matrix(Role::AttnOther, h, h * rq as u64, 0, l)
                            + matrix(Role::AttnOther, rq as u64, rq as u64 * q_out, 0, l)
                    }
                    None => matrix(Role::AttnQ, h, h * q_out, 0, l),
                };
                vectors += l as u64 * r;
                bytes += matrix(Role::AttnOther, h, h * (r + dr), 0, l)
                    + matrix(Role::AttnOther, dn, dn * r * nh, 0, l)
                    + matrix(Role::AttnOther, r, r * dv * nh, 0, l)
                    + matrix(Role::AttnOutput, nh * dv, nh * dv * h, 0, l);
            }
        }
        if self.o_bias {
            vectors += l as u64 * h;
        }
        let dense = |f: u64, from: u32, to: u32| {
            matrix(Role::FfnGate, h, h * f, from, to)
                + matrix(Role::FfnUp, h, h * f, from, to)
                + matrix(Role::FfnDown, f, f * h, from, to)
        };
        match self.ffn {
            Ffn::Dense { intermediate_size, gated, bias, .. } => {
                let f = intermediate_size as u64;
                bytes += if gated {
                    dense(f, 0, l)
                } else {
                    matrix(Role::FfnUp, h, h * f, 0, l) + matrix(Role::FfnDown, f, f * h, 0, l)
                };
                if bias {
                    vectors += l as u64 * (if gated { 2 * f } else { f } + h);
                }
            }
            Ffn::Moe(m) => {
                let (k, e, f) = (m.first_k_dense, m.num_experts as u64, m.expert_intermediate_size as u64);
                bytes += dense(m.dense_intermediate_size as u64, 0, k);
                let shared = m.num_shared_experts as u64 * f;
                bytes += matrix(Role::Router, h, h * e, k, l)
                    + matrix(Role::FfnGate, h, h * f * e, k, l)
                    + matrix(Role::FfnUp, h, h * f * e, k, l)
                    + matrix(Role::FfnDown, f, f * h * e, k, l)
                    + matrix(Role::FfnGate, h, h * shared, k, l)
                    + matrix(Role::FfnUp, h, h * shared, k, l)
                    + matrix(Role::FfnDown, shared, shared * h, k, l);
                if m.router_bias {
                    vectors += (l - k) as u64 * e;
                }
            }
        }
        bytes + vectors as f64 * vector_bytes
    }

    /// KV-cache elements per token over all layers.
    pub fn kv_elements_per_token(&self) -> u64 {
        self.num_layers as u64 * self.attention.kv_elements_per_token()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            norms_per_layer: 2,
            max_position_embeddings: 2048,
            sliding_window: None,
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
