//! An architecture as llama.cpp lays it out in a GGUF file: the architecture name, the metadata
//! keys its loader reads and every tensor with its shape (ggml order: `ne[0]` is the row, the
//! input width of a product). The engine module writes files from this; the workload prices
//! each product in the type the quantiser stores it in (see `dtype::storage`).
//!
//! Uniform stacks go to `llama` (MHA, GQA, MQA, any head size, tied or untied embeddings),
//! `qwen2` (q/k/v biases), `qwen3` (per-head q/k norms) and `deepseek2` (MLA with a free latent
//! rank, optional q-lora, dense or DeepSeek-style MoE with shared experts and dense first
//! layers); stacks with other layer kinds to the architectures of `hybrid`.

mod hybrid;

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
    /// A u32 per layer (llama.cpp reads per-layer head counts and layer kinds from these).
    U32s(Vec<u32>),
}

/// What a tensor of random weights is filled with. Values keep a random model's activations
/// and recurrent states in range (no overflow, no subnormals that would slow the CPU down).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fill {
    /// Uniform noise, small enough that products keep their inputs' scale.
    Noise,
    /// Every element this value (norm weights at 1, state-space decays negative).
    Value(f32),
}

#[derive(Debug, Clone, PartialEq)]
pub struct GgufTensor {
    pub name: String,
    /// ggml `ne`: `ne[0]` is the row length.
    pub shape: Vec<u64>,
    /// The role of a weight matrix; `None` for tensors kept in f32 (norms, biases, convolution
    /// kernels, state-space decays), which the quantiser leaves as written.
    pub role: Option<Role>,
    pub layer: u32,
    /// Position among the tensors the quantiser counts together: `attn_v` and `attn_qkv`
    /// share one counter, whose position decides which get more bits in Q4_K_M.
    pub rank: u32,
    pub fill: Fill,
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
    /// Tensors on the quantiser's `attn_v` counter (`attn_v` and `attn_qkv`).
    pub attn_v_tensors: u32,
}

impl GgufLayout {
    /// Parameters: every element of every tensor (a tied embedding is stored once).
    pub fn parameters(&self) -> u64 {
        self.tensors.iter().map(GgufTensor::elements).sum()
    }

    /// The type a tensor is written in before quantisation: f32 for tensors without a role and
    /// the router (as llama.cpp's converters write them), f16 for the rest.
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
            // Counted over the tensors on the counter, whichever layers hold them.
            Some(Role::AttnV) => storage_type(
                format,
                Role::AttnV,
                t.row(),
                t.rank,
                MixContext { layers: self.attn_v_tensors, ..self.mix },
            ),
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
    fn new() -> Builder {
        Builder { tensors: Vec::new(), layer: 0 }
    }

    fn push(&mut self, name: String, shape: &[u64], role: Option<Role>, fill: Fill) {
        self.tensors.push(GgufTensor { name, shape: shape.to_vec(), role, layer: self.layer, rank: 0, fill });
    }

    fn matrix(&mut self, name: &str, role: Role, shape: &[u64]) {
        self.push(self.name(name, "weight"), shape, Some(role), Fill::Noise);
    }

    /// A norm weight (at 1) or another 1-D tensor kept in f32.
    fn vector(&mut self, name: &str, suffix: &str, len: u64) {
        self.push(self.name(name, suffix), &[len], None, Fill::Value(1.0));
    }

    /// A tensor kept in f32 whatever the format: `suffix` "" for llama.cpp's unsuffixed names
    /// (`ssm_a`, `ssm_d`).
    fn kept(&mut self, name: &str, suffix: &str, shape: &[u64], fill: Fill) {
        let name = if suffix.is_empty() { format!("blk.{}.{name}", self.layer) } else { self.name(name, suffix) };
        self.push(name, shape, None, fill);
    }

    fn name(&self, name: &str, suffix: &str) -> String {
        if name.starts_with("token_embd") || name.starts_with("output") {
            format!("{name}.{suffix}")
        } else {
            format!("blk.{}.{name}.{suffix}", self.layer)
        }
    }

    /// The layout, with the quantiser's `attn_v` counter numbered in file order.
    fn finish(mut self, arch: &'static str, metadata: Vec<(String, MetaValue)>, mix: MixContext) -> GgufLayout {
        let mut counter = 0;
        for t in &mut self.tensors {
            if t.role == Some(Role::AttnV) {
                t.rank = counter;
                counter += 1;
            }
        }
        GgufLayout { arch, metadata, tensors: self.tensors, mix, attn_v_tensors: counter }
    }
}

/// The keys every architecture starts with.
fn common_metadata(arch: &Architecture, name: &str, context_length: u32) -> Vec<(String, MetaValue)> {
    let key = |k: &str| format!("{name}.{k}");
    vec![
        ("general.architecture".into(), MetaValue::Str(name.into())),
        ("general.name".into(), MetaValue::Str(arch.name.clone())),
        (key("context_length"), MetaValue::U32(context_length)),
        (key("embedding_length"), MetaValue::U32(arch.hidden_size)),
        (key("block_count"), MetaValue::U32(arch.num_layers)),
        (key("attention.layer_norm_rms_epsilon"), MetaValue::F32(arch.norm_eps as f32)),
        (key("rope.freq_base"), MetaValue::F32(arch.rope_theta as f32)),
        (key("vocab_size"), MetaValue::U32(arch.vocab_size)),
        // No tokenizer: the engine is fed token ids directly.
        ("tokenizer.ggml.model".into(), MetaValue::Str("none".into())),
    ]
}

/// What a uniform or hybrid layout needs of the model's FFN before it lays anything out.
fn unsupported<T>(arch: &Architecture, what: impl Into<String>) -> Result<T> {
    let source = format!("{} (GGUF export)", arch.name);
    Err(Error::field(&source, "architecture", "a shape llama.cpp runs", what.into()))
}

/// The GGUF layout of `arch`, with `context_length` as the model's trained context.
pub fn gguf_layout(arch: &Architecture, context_length: u32) -> Result<GgufLayout> {
    if !arch.layers.is_empty() || arch.norms_per_layer != 2 || arch.attn_output_gate || arch.attention_sinks {
        return hybrid::layout(arch, context_length);
    }
    let ffn_ok = match arch.ffn {
        Ffn::Dense { gated, bias, activation, .. } => gated && !bias && activation == super::Activation::Silu,
        Ffn::Moe(m) => m.activation == super::Activation::Silu && !m.expert_bias && !m.shared_expert_gate,
    };
    if !ffn_ok {
        return unsupported(arch, "an FFN other than SwiGLU without biases");
    }
    let h = arch.hidden_size as u64;
    let name = match (arch.attention, arch.ffn) {
        (Attention::Latent(_), _) => "deepseek2",
        (Attention::Grouped { .. }, Ffn::Moe(_)) => {
            return unsupported(arch, "grouped attention with a mixture of experts (no llama.cpp architecture)")
        }
        (Attention::Grouped { .. }, Ffn::Dense { .. }) if arch.qk_norm => "qwen3",
        (Attention::Grouped { .. }, Ffn::Dense { .. }) if arch.qkv_bias => "qwen2",
        (Attention::Grouped { .. }, Ffn::Dense { .. }) => "llama",
    };
    if arch.o_bias {
        return unsupported(arch, "a bias on the attention output");
    }
    if name == "qwen3" && arch.qkv_bias {
        return unsupported(arch, "q/k norms together with q/k/v biases");
    }
    let mut meta = common_metadata(arch, name, context_length);
    let mut b = Builder::new();
    b.matrix("token_embd", Role::TokenEmbedding, &[h, arch.vocab_size as u64]);
    for layer in 0..arch.num_layers {
        b.layer = layer;
        b.vector("attn_norm", "weight", h);
        attention_tensors(&mut b, arch, h);
        b.vector("ffn_norm", "weight", h);
        ffn_tensors(&mut b, arch, layer, h);
    }
    output_tensors(&mut b, arch, "output_norm");
    attention_metadata(arch, name, &mut meta)?;
    Ok(b.finish(name, meta, mix_context(arch)))
}

/// The facts the quantiser's choices depend on.
fn mix_context(arch: &Architecture) -> MixContext {
    let experts = match arch.ffn {
        Ffn::Moe(m) => m.num_experts,
        Ffn::Dense { .. } => 0,
    };
    MixContext { layers: arch.num_layers, experts, tied_embeddings: arch.tie_embeddings }
}

/// The final norm (named `norm`) and, when not tied, the LM head.
fn output_tensors(b: &mut Builder, arch: &Architecture, norm: &str) {
    let h = arch.hidden_size as u64;
    b.layer = 0;
    b.vector(norm, "weight", h);
    if !arch.tie_embeddings {
        b.matrix("output", Role::Output, &[h, arch.vocab_size as u64]);
    }
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
    let unsupported = |what: String| unsupported(arch, what);
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

    fn hybrid(file: &str) -> Architecture {
        let path = format!("{}/tests/fixtures/hybrid/{file}", env!("CARGO_MANIFEST_DIR"));
        crate::arch::load_hf_config(std::path::Path::new(&path)).unwrap()
    }

    #[test]
    fn hybrid_layouts_hold_exactly_the_published_parameters() {
        // Published totals (tests/fixtures/hybrid/README.md), not our count.
        for (file, arch_name, published) in [
            ("gemma-3-270m.json", "gemma3", 268_098_176),
            ("gemma-3-1b-it.json", "gemma3", 999_885_952),
            ("LFM2-350M.json", "lfm2", 354_483_968),
            ("LFM2-1.2B.json", "lfm2", 1_170_340_608),
        ] {
            let layout = gguf_layout(&hybrid(file), 4096).unwrap_or_else(|e| panic!("{file}: {e}"));
            assert_eq!((layout.arch, layout.parameters()), (arch_name, published), "{file}");
        }
    }

    #[test]
    fn hybrid_layouts_name_what_llama_cpp_reads() {
        let names = |file: &str| -> Vec<String> {
            gguf_layout(&hybrid(file), 4096).unwrap().tensors.into_iter().map(|t| t.name).collect()
        };
        let lfm2 = names("LFM2-350M.json");
        // LFM2-350M: attention at layers 2, 5, 8, 10, 12, 14; convolutions elsewhere.
        assert!(lfm2.contains(&"blk.0.shortconv.in_proj.weight".to_string()));
        assert!(lfm2.contains(&"blk.2.attn_q_norm.weight".to_string()));
        assert!(!lfm2.contains(&"blk.2.shortconv.conv.weight".to_string()));
        assert!(lfm2.contains(&"token_embd_norm.weight".to_string()));
        let layout = gguf_layout(&hybrid("LFM2-350M.json"), 4096).unwrap();
        let kv = layout.metadata.iter().find(|(k, _)| k == "lfm2.attention.head_count_kv").unwrap();
        assert_eq!(kv.1, MetaValue::U32s(vec![0, 0, 8, 0, 0, 8, 0, 0, 8, 0, 8, 0, 8, 0, 8, 0]));
        // Gemma 3 270M: full attention at 5, 11, 17; windows of 512 elsewhere.
        let gemma = gguf_layout(&hybrid("gemma-3-270m.json"), 4096).unwrap();
        let pattern = gemma.metadata.iter().find(|(k, _)| k == "gemma3.attention.sliding_window_pattern").unwrap();
        let want: Vec<u32> = (0..18).map(|i| u32::from(i % 6 != 5)).collect();
        assert_eq!(pattern.1, MetaValue::U32s(want));
        // Granite 4.0-H 350M: Mamba2 with attention at 10, 13, 17, 27, no RoPE.
        let granite = gguf_layout(&hybrid("granite-4.0-h-350m.json"), 4096).unwrap();
        assert_eq!(granite.arch, "granitehybrid");
        let rope = granite.metadata.iter().find(|(k, _)| k == "granitehybrid.rope.scaling.finetuned").unwrap();
        assert_eq!(rope.1, MetaValue::Bool(false));
        let a = granite.tensors.iter().find(|t| t.name == "blk.0.ssm_a").unwrap();
        assert_eq!((a.shape.clone(), a.fill), (vec![1, 48], Fill::Value(-1.0)));
    }

    #[test]
    fn synthetic_hybrids_lay_out_with_their_parameters_or_say_why_not() {
        let dir = format!("{}/tests/fixtures/hybrid/exported", env!("CARGO_MANIFEST_DIR"));
        let mut laid_out = Vec::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let arch = crate::arch::load_hf_config(&path).unwrap();
            match gguf_layout(&arch, 4096) {
                Ok(layout) => {
                    assert_eq!(layout.parameters(), arch.parameters(), "{}", path.display());
                    for format in [DType::F16, DType::Q8_0, DType::Q4_0, DType::Q4KM] {
                        let closed_form = arch.stored_weight_bytes(format);
                        assert_eq!(closed_form, layout.data_bytes(format) as f64, "{} {format}", path.display());
                    }
                    laid_out.push(layout.arch);
                }
                Err(e) => {
                    let e = e.to_string();
                    assert!(e.contains("a shape llama.cpp runs") && !e.contains('\n'), "{e}");
                }
            }
        }
        // llama.cpp's mamba2 needs a convolution bias, which that fixture has not.
        let json = std::fs::read_to_string(format!("{dir}/mamba2-only.json")).unwrap();
        let json = json.replace(r#""use_conv_bias": false"#, r#""use_conv_bias": true"#);
        let arch = parse_hf_config(&json, "mamba2-only.json", "m").unwrap();
        assert!(gguf_layout(&hybrid("exported/mamba2-only.json"), 4096).unwrap_err().to_string().contains("bias"));
        let layout = gguf_layout(&arch, 4096).unwrap();
        assert_eq!(layout.parameters(), arch.parameters());
        laid_out.push(layout.arch);
        laid_out.sort();
        laid_out.dedup();
        for want in ["gemma3", "granitehybrid", "lfm2", "mamba2", "qwen35"] {
            assert!(laid_out.contains(&want), "{want} in {laid_out:?}");
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
