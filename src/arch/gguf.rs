//! An architecture as llama.cpp lays it out in a GGUF file: the architecture name, the metadata
//! keys its loader reads and every tensor with its shape (ggml order: `ne[0]` is the row, the
//! input width of a product). The engine module writes files from this; the workload prices
//! each product in the type the quantiser stores it in (see `dtype::storage`).
//!
//! Three llama.cpp architectures cover what the search produces: `llama` (MHA, GQA, MQA, any
//! head size, tied or untied embeddings), `qwen3` (per-head q/k norms) and `deepseek2` (MLA with
//! a free latent rank, optional q-lora, dense or DeepSeek-style MoE with shared experts and
//! dense first layers).

use super::{Architecture, Attention, Ffn};
use crate::dtype::storage::{storage_type, MixContext, Role};
use crate::dtype::{DType, TensorType};
use crate::error::{Error, Result};

/// A metadata value, typed as the GGUF key expects it.
#[derive(Debug, Clone, PartialEq)]
pub enum MetaValue {
    U32(u32),
    F32(f32),
    Bool(bool),
    Str(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct GgufTensor {
    pub name: String,
    /// ggml `ne`: `ne[0]` is the row length.
    pub shape: Vec<u64>,
    /// The role of a weight matrix; `None` for 1-D tensors (norms, biases), kept in f32.
    pub role: Option<Role>,
    pub layer: u32,
}

impl GgufTensor {
    pub fn elements(&self) -> u64 {
        self.shape.iter().product()
    }

    pub fn row(&self) -> u64 {
        self.shape[0]
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct GgufLayout {
    /// llama.cpp's architecture name (`general.architecture`).
    pub arch: &'static str,
    pub metadata: Vec<(String, MetaValue)>,
    pub tensors: Vec<GgufTensor>,
    pub mix: MixContext,
}

impl GgufLayout {
    /// Parameters: every element of every tensor (a tied embedding is stored once).
    pub fn parameters(&self) -> u64 {
        self.tensors.iter().map(GgufTensor::elements).sum()
    }

    /// The type a tensor is written in before quantisation: f32 for 1-D tensors and the router
    /// (as llama.cpp's converter writes them), f16 for the rest.
    pub fn written_type(t: &GgufTensor) -> TensorType {
        match t.role {
            None | Some(Role::Router) => TensorType::F32,
            Some(_) => TensorType::F16,
        }
    }

    /// The type llama.cpp's quantiser stores a tensor in for a nominal format.
    pub fn stored_type(&self, t: &GgufTensor, format: DType) -> TensorType {
        match t.role {
            None => TensorType::F32,
            Some(role) => storage_type(format, role, t.row(), t.layer, self.mix),
        }
    }

    /// Bytes of tensor data in a file of this format (alignment padding excluded).
    pub fn data_bytes(&self, format: DType) -> u64 {
        self.tensors.iter().map(|t| self.stored_type(t, format).bytes(t.elements())).sum()
    }
}

/// The GGUF `general.file_type` (llama.cpp's `llama_ftype`) of a nominal weight format.
pub fn file_type(format: DType) -> Option<u32> {
    match format {
        DType::F32 => Some(0),
        DType::F16 => Some(1),
        DType::Q4_0 => Some(2),
        DType::Q8_0 => Some(7),
        DType::Q4KM => Some(15),
        DType::Bf16 => Some(32),
        DType::Int8 => None,
    }
}

struct Builder {
    tensors: Vec<GgufTensor>,
    layer: u32,
}

impl Builder {
    fn matrix(&mut self, name: &str, role: Role, shape: &[u64]) {
        let name = self.name(name, "weight");
        self.tensors.push(GgufTensor { name, shape: shape.to_vec(), role: Some(role), layer: self.layer });
    }

    fn vector(&mut self, name: &str, suffix: &str, len: u64) {
        let name = self.name(name, suffix);
        self.tensors.push(GgufTensor { name, shape: vec![len], role: None, layer: self.layer });
    }

    fn name(&self, name: &str, suffix: &str) -> String {
        if name.starts_with("token_embd") || name.starts_with("output") {
            format!("{name}.{suffix}")
        } else {
            format!("blk.{}.{name}.{suffix}", self.layer)
        }
    }
}

/// The GGUF layout of `arch`, with `context_length` as the model's trained context.
pub fn gguf_layout(arch: &Architecture, context_length: u32) -> Result<GgufLayout> {
    let source = format!("{} (GGUF export)", arch.name);
    let unsupported = |what: String| Err(Error::field(&source, "architecture", "a shape llama.cpp runs", what));
    if arch.norms_per_layer != 2 {
        return unsupported(format!("{} norms per layer (only pre-norm models: 2)", arch.norms_per_layer));
    }
    let ffn_ok = match arch.ffn {
        Ffn::Dense { gated, bias, activation, .. } => gated && !bias && activation == super::Activation::Silu,
        Ffn::Moe(m) => m.activation == super::Activation::Silu,
    };
    if !ffn_ok {
        return unsupported("an FFN other than SwiGLU without biases".into());
    }
    let (h, v) = (arch.hidden_size as u64, arch.vocab_size as u64);
    let experts = match arch.ffn {
        Ffn::Moe(m) => m.num_experts,
        Ffn::Dense { .. } => 0,
    };
    let mix = MixContext { layers: arch.num_layers, experts, tied_embeddings: arch.tie_embeddings };
    let mut b = Builder { tensors: Vec::new(), layer: 0 };
    let mut meta: Vec<(String, MetaValue)> = Vec::new();

    let name = match (arch.attention, arch.ffn) {
        (Attention::Latent(_), _) => "deepseek2",
        (Attention::Grouped { .. }, Ffn::Moe(_)) => {
            return unsupported("grouped attention with a mixture of experts (no llama.cpp architecture)".into())
        }
        (Attention::Grouped { .. }, Ffn::Dense { .. }) if arch.qk_norm => "qwen3",
        (Attention::Grouped { .. }, Ffn::Dense { .. }) if arch.qkv_bias => "qwen2",
        (Attention::Grouped { .. }, Ffn::Dense { .. }) => "llama",
    };
    if arch.o_bias {
        return unsupported("a bias on the attention output".into());
    }
    if name == "qwen3" && arch.qkv_bias {
        return unsupported("q/k norms together with q/k/v biases".into());
    }
    let key = |k: &str| format!("{name}.{k}");
    meta.push(("general.architecture".into(), MetaValue::Str(name.into())));
    meta.push(("general.name".into(), MetaValue::Str(arch.name.clone())));
    meta.push((key("context_length"), MetaValue::U32(context_length)));
    meta.push((key("embedding_length"), MetaValue::U32(arch.hidden_size)));
    meta.push((key("block_count"), MetaValue::U32(arch.num_layers)));
    meta.push((key("attention.layer_norm_rms_epsilon"), MetaValue::F32(arch.norm_eps as f32)));
    meta.push((key("rope.freq_base"), MetaValue::F32(arch.rope_theta as f32)));
    meta.push((key("vocab_size"), MetaValue::U32(arch.vocab_size)));
    // No tokenizer: the engine is fed token ids directly.
    meta.push(("tokenizer.ggml.model".into(), MetaValue::Str("none".into())));

    b.matrix("token_embd", Role::TokenEmbedding, &[h, v]);
    for layer in 0..arch.num_layers {
        b.layer = layer;
        b.vector("attn_norm", "weight", h);
        attention_tensors(&mut b, arch, h);
        b.vector("ffn_norm", "weight", h);
        ffn_tensors(&mut b, arch, layer, h);
    }
    b.layer = 0;
    b.vector("output_norm", "weight", h);
    if !arch.tie_embeddings {
        b.matrix("output", Role::Output, &[h, v]);
    }

    attention_metadata(arch, name, &mut meta)?;
    Ok(GgufLayout { arch: name, metadata: meta, tensors: b.tensors, mix })
}

/// One layer's attention tensors.
fn attention_tensors(b: &mut Builder, arch: &Architecture, h: u64) {
    match arch.attention {
        Attention::Grouped { num_heads, num_kv_heads, head_dim } => {
            let (q, kv) = (num_heads as u64 * head_dim as u64, num_kv_heads as u64 * head_dim as u64);
            b.matrix("attn_q", Role::AttnQ, &[h, q]);
            b.matrix("attn_k", Role::AttnK, &[h, kv]);
            b.matrix("attn_v", Role::AttnV, &[h, kv]);
            if arch.qkv_bias {
                b.vector("attn_q", "bias", q);
                b.vector("attn_k", "bias", kv);
                b.vector("attn_v", "bias", kv);
            }
            if arch.qk_norm {
                b.vector("attn_q_norm", "weight", head_dim as u64);
                b.vector("attn_k_norm", "weight", head_dim as u64);
            }
            b.matrix("attn_output", Role::AttnOutput, &[q, h]);
        }
        Attention::Latent(m) => {
            let (nh, r, dr, dn, dv) = m.dims();
            match m.q_lora_rank {
                Some(rq) => {
                    b.matrix("attn_q_a", Role::AttnOther, &[h, rq as u64]);
                    b.vector("attn_q_a_norm", "weight", rq as u64);
                    b.matrix("attn_q_b", Role::AttnOther, &[rq as u64, nh * (dn + dr)]);
                }
                None => b.matrix("attn_q", Role::AttnQ, &[h, nh * (dn + dr)]),
            }
            b.matrix("attn_kv_a_mqa", Role::AttnOther, &[h, r + dr]);
            b.vector("attn_kv_a_norm", "weight", r);
            b.matrix("attn_k_b", Role::AttnOther, &[dn, r, nh]);
            b.matrix("attn_v_b", Role::AttnOther, &[r, dv, nh]);
            b.matrix("attn_output", Role::AttnOutput, &[nh * dv, h]);
        }
    }
}

/// One layer's FFN tensors: dense, or routed and shared experts.
fn ffn_tensors(b: &mut Builder, arch: &Architecture, layer: u32, h: u64) {
    match arch.ffn {
        Ffn::Dense { intermediate_size, .. } => dense_ffn(b, h, intermediate_size as u64),
        Ffn::Moe(m) if layer < m.first_k_dense => dense_ffn(b, h, m.dense_intermediate_size as u64),
        Ffn::Moe(m) => {
            let (e, f) = (m.num_experts as u64, m.expert_intermediate_size as u64);
            b.matrix("ffn_gate_inp", Role::Router, &[h, e]);
            if m.router_bias {
                b.vector("exp_probs_b", "bias", e);
            }
            b.matrix("ffn_gate_exps", Role::FfnGate, &[h, f, e]);
            b.matrix("ffn_down_exps", Role::FfnDown, &[f, h, e]);
            b.matrix("ffn_up_exps", Role::FfnUp, &[h, f, e]);
            let shared = m.num_shared_experts as u64 * f;
            b.matrix("ffn_gate_shexp", Role::FfnGate, &[h, shared]);
            b.matrix("ffn_down_shexp", Role::FfnDown, &[shared, h]);
            b.matrix("ffn_up_shexp", Role::FfnUp, &[h, shared]);
        }
    }
}

/// The attention's (and, for deepseek2, the experts') metadata, after the tensors.
fn attention_metadata(arch: &Architecture, name: &str, meta: &mut Vec<(String, MetaValue)>) -> Result<()> {
    let source = format!("{} (GGUF export)", arch.name);
    let unsupported = |what: String| Err(Error::field(&source, "architecture", "a shape llama.cpp runs", what));
    let key = |k: &str| format!("{name}.{k}");
    match arch.attention {
        Attention::Grouped { num_heads, num_kv_heads, head_dim } => {
            meta.push((key("attention.head_count"), MetaValue::U32(num_heads)));
            meta.push((key("attention.head_count_kv"), MetaValue::U32(num_kv_heads)));
            meta.push((key("attention.key_length"), MetaValue::U32(head_dim)));
            meta.push((key("attention.value_length"), MetaValue::U32(head_dim)));
            meta.push((key("rope.dimension_count"), MetaValue::U32(head_dim)));
            let Ffn::Dense { intermediate_size, .. } = arch.ffn else { unreachable!("checked above") };
            meta.push((key("feed_forward_length"), MetaValue::U32(intermediate_size)));
        }
        Attention::Latent(m) => {
            if m.q_lora_rank.is_some() && matches!(arch.num_layers, 26 | 27) {
                // llama.cpp treats 26- and 27-layer deepseek2 models as DeepSeek-V2-Lite and then
                // ignores q_lora_rank, so such a file would not load.
                return unsupported(format!(
                    "MLA with q_lora_rank at {} layers (llama.cpp's V2-Lite heuristic drops q-lora there)",
                    arch.num_layers
                ));
            }
            if m.qk_nope_head_dim == 0 {
                return unsupported("MLA without a no-RoPE query/key part (qk_nope_head_dim 0)".into());
            }
            meta.push((key("attention.head_count"), MetaValue::U32(m.num_heads)));
            // The MLA cache is one latent "head": key = latent + RoPE key, value = latent.
            meta.push((key("attention.head_count_kv"), MetaValue::U32(1)));
            meta.push((key("attention.q_lora_rank"), MetaValue::U32(m.q_lora_rank.unwrap_or(0))));
            meta.push((key("attention.kv_lora_rank"), MetaValue::U32(m.kv_lora_rank)));
            meta.push((key("attention.key_length"), MetaValue::U32(m.kv_lora_rank + m.qk_rope_head_dim)));
            meta.push((key("attention.value_length"), MetaValue::U32(m.kv_lora_rank)));
            meta.push((key("attention.key_length_mla"), MetaValue::U32(m.qk_head_dim())));
            meta.push((key("attention.value_length_mla"), MetaValue::U32(m.v_head_dim)));
            meta.push((key("rope.dimension_count"), MetaValue::U32(m.qk_rope_head_dim)));
            let (dense, moe) = match arch.ffn {
                Ffn::Dense { intermediate_size, .. } => (intermediate_size, None),
                Ffn::Moe(m) => (m.dense_intermediate_size, Some(m)),
            };
            meta.push((key("feed_forward_length"), MetaValue::U32(dense)));
            match moe {
                None => {
                    meta.push((key("leading_dense_block_count"), MetaValue::U32(arch.num_layers)));
                    meta.push((key("expert_feed_forward_length"), MetaValue::U32(0)));
                    meta.push((key("expert_shared_count"), MetaValue::U32(0)));
                    meta.push((key("expert_count"), MetaValue::U32(0)));
                    meta.push((key("expert_used_count"), MetaValue::U32(0)));
                }
                Some(m) => {
                    if m.num_shared_experts == 0 {
                        return unsupported("a deepseek2 MoE without shared experts".into());
                    }
                    meta.push((key("leading_dense_block_count"), MetaValue::U32(m.first_k_dense)));
                    meta.push((key("expert_feed_forward_length"), MetaValue::U32(m.expert_intermediate_size)));
                    meta.push((key("expert_shared_count"), MetaValue::U32(m.num_shared_experts)));
                    meta.push((key("expert_count"), MetaValue::U32(m.num_experts)));
                    meta.push((key("expert_used_count"), MetaValue::U32(m.experts_per_token)));
                    meta.push((key("expert_weights_scale"), MetaValue::F32(1.0)));
                    meta.push((key("expert_weights_norm"), MetaValue::Bool(false)));
                    // 1 = softmax, 2 = sigmoid (DeepSeek-V3's router, which carries the bias).
                    let gating = if m.router_bias { 2 } else { 1 };
                    meta.push((key("expert_gating_func"), MetaValue::U32(gating)));
                }
            }
        }
    }
    Ok(())
}

fn dense_ffn(b: &mut Builder, h: u64, f: u64) {
    b.matrix("ffn_gate", Role::FfnGate, &[h, f]);
    b.matrix("ffn_down", Role::FfnDown, &[f, h]);
    b.matrix("ffn_up", Role::FfnUp, &[h, f]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::parse_hf_config;

    fn model(file: &str) -> Architecture {
        let path = format!("{}/models/{file}", env!("CARGO_MANIFEST_DIR"));
        crate::arch::load_hf_config(std::path::Path::new(&path)).unwrap()
    }

    #[test]
    fn layouts_hold_exactly_the_parameters_of_the_architecture() {
        for file in [
            "SmolLM2-135M.json",
            "Llama-3.2-1B.json",
            "Qwen3-0.6B.json",
            "Qwen2.5-0.5B.json",
            "DeepSeek-V2-Lite-Chat.json",
        ] {
            let arch = model(file);
            let layout = gguf_layout(&arch, 4096);
            let Ok(layout) = layout else {
                // DeepSeek-V2-Lite has 27 layers and no q-lora: it must lay out.
                panic!("{file}: {:?}", layout.unwrap_err().to_string());
            };
            assert_eq!(layout.parameters(), arch.parameters(), "{file}");
            for format in [DType::F16, DType::Q8_0, DType::Q4_0, DType::Q4KM] {
                let closed_form = arch.stored_weight_bytes(format);
                assert_eq!(closed_form, layout.data_bytes(format) as f64, "{file} {format}");
            }
        }
    }

    #[test]
    fn smollm2_135m_q4_k_m_data_bytes_by_hand() {
        // SmolLM2-135M: h 576, 30 layers, 9 heads / 3 KV heads of 64, FFN 1536, vocab 49152, tied.
        // token_embd (tied -> output rule): 576 % 256 != 0 -> Q8_0: 576*49152/32*34 = 30,081,024.
        // attn_q/attn_output 576x576, attn_k 576x192 rows of 576 -> Q5_0 (22/32 bytes):
        //   q + o = 2*331,776*22/32 = 456,192; k = 110,592*22/32 = 76,032.
        // attn_v (576x192): Q6_K wanted in 14 layers -> falls back to Q8_0 (34/32): 117,504;
        //   Q5_0 in the other 16: 76,032.
        // ffn_gate/up 576x1536, rows of 576 -> Q5_0: 2*884,736*22/32 = 1,216,512.
        // ffn_down rows of 1536: Q6_K (210/256) in 14 layers: 725,760; Q4_K (144/256) in 16: 497,664.
        // norms: 2*576*4 = 4,608 per layer; output_norm 2,304.
        let per_layer_fixed: u64 = 456_192 + 76_032 + 1_216_512 + 4_608;
        let want = 30_081_024 + 30 * per_layer_fixed + 14 * (117_504 + 725_760) + 16 * (76_032 + 497_664) + 2_304;
        let layout = gguf_layout(&model("SmolLM2-135M.json"), 8192).unwrap();
        assert_eq!(layout.data_bytes(DType::Q4KM), want);
    }

    #[test]
    fn refuses_what_llama_cpp_cannot_load() {
        let mut arch = model("DeepSeek-V2-Lite-Chat.json");
        if let Attention::Latent(ref mut m) = arch.attention {
            m.q_lora_rank = Some(256);
        }
        let e = gguf_layout(&arch, 4096).unwrap_err().to_string();
        assert!(e.contains("q_lora_rank") && e.contains("27 layers"), "{e}");
        let gemma = parse_hf_config(
            r#"{"model_type":"gemma2","hidden_size":64,"num_hidden_layers":2,"vocab_size":100,"num_attention_heads":4,"intermediate_size":128}"#,
            "g.json",
            "g",
        )
        .unwrap();
        assert!(gguf_layout(&gemma, 4096).is_err());
    }
}
