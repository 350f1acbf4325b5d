//! The reverse of `gguf`: a GGUF file's metadata and tensor shapes read back as the Hugging Face
//! `config.json` it was converted from, so a llama-bench run on any GGUF file (a downloaded
//! model, or a candidate exported by this tool) can be matched to its architecture without the
//! original config. The config goes through `parse_hf_config`, where every default is decided.
//!
//! Reading the file is the engine's job (llama.cpp's own GGUF parser, in the worker process);
//! this module only maps llama.cpp's keys to transformers' names.

use super::gguf::{GgufLayout, MetaValue};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// What a GGUF file says of its model: the metadata (the tokenizer's lists are left out: they
/// are long and say nothing of the shape; per-layer integer arrays are kept) and every
/// tensor's shape in ggml order (`ne[0]` first).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GgufContents {
    pub metadata: BTreeMap<String, Value>,
    pub tensors: BTreeMap<String, Vec<u64>>,
}

impl GgufContents {
    /// What a file written from `layout` holds.
    pub fn of_layout(layout: &GgufLayout) -> GgufContents {
        let metadata = layout
            .metadata
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    MetaValue::U32(x) => Value::from(*x),
                    MetaValue::F32(x) => f32_value(*x),
                    MetaValue::Bool(x) => Value::from(*x),
                    MetaValue::Str(x) => Value::from(x.clone()),
                    MetaValue::U32s(x) => Value::from(x.clone()),
                };
                (k.clone(), v)
            })
            .collect();
        let tensors = layout.tensors.iter().map(|t| (t.name.clone(), t.shape.clone())).collect();
        GgufContents { metadata, tensors }
    }
}

/// An f32 as the decimal it was written from (1e-5, not 9.999999747378752e-6).
pub fn f32_value(x: f32) -> Value {
    x.to_string().parse::<f64>().map_or(Value::Null, Value::from)
}

/// llama.cpp architectures this tool reads back (the ones it writes, and what converters write
/// for Llama, Mistral, Qwen, DeepSeek, Gemma 3, LFM2, Qwen3.5, Granite 4.0-H and Mamba2
/// checkpoints).
pub const READABLE: [&str; 9] =
    ["llama", "qwen2", "qwen3", "deepseek2", "gemma3", "lfm2", "qwen35", "granitehybrid", "mamba2"];

/// The `config.json` a GGUF file was converted from, as far as the shape goes.
pub fn hf_config_of(c: &GgufContents, source: &str) -> Result<Value> {
    let arch = readable_architecture(c, source)?;
    let k = Keys { c, arch: &arch, source };
    let hidden = k.checked_need("embedding_length")?;
    // A pure Mamba2 stack has no attention.
    let heads = if arch == "mamba2" {
        k.checked_uint("attention.head_count")?.unwrap_or(1)
    } else {
        k.checked_need("attention.head_count")?
    };
    let vocab = match k.checked_uint("vocab_size")? {
        Some(v) => v,
        None => match c.tensors.get("token_embd.weight").map(Vec::as_slice) {
            Some([_, v, ..]) => *v,
            _ => {
                return Err(Error::field(
                    source,
                    k.key("vocab_size"),
                    "the vocabulary size (or a token_embd.weight tensor)",
                    "nothing",
                ))
            }
        },
    };
    let mut cfg = Map::new();
    let mut put = |k: &str, v: Value| {
        cfg.insert(k.to_string(), v);
    };
    put("hidden_size", hidden.into());
    put("num_hidden_layers", k.checked_need("block_count")?.into());
    put("vocab_size", vocab.into());
    put("num_attention_heads", heads.into());
    put("tie_word_embeddings", (!c.tensors.contains_key("output.weight")).into());
    put("hidden_act", "silu".into());
    if let Some(n) = k.checked_uint("context_length")? {
        put("max_position_embeddings", n.into());
    }
    if let Some(t) = k.float("rope.freq_base") {
        put("rope_theta", t.into());
    }
    if let Some(e) = k.float("attention.layer_norm_rms_epsilon") {
        put("rms_norm_eps", e.into());
    }
    if let Some(hybrid) = hybrid_fields(c, &arch, source)? {
        cfg.extend(hybrid);
    } else if arch == "deepseek2" {
        deepseek_fields(&k, &mut cfg)?;
    } else {
        uniform_fields(&k, heads, &mut cfg)?;
    }
    Ok(json!(cfg))
}

/// `general.architecture`, one this tool reads back.
fn readable_architecture(c: &GgufContents, source: &str) -> Result<String> {
    let arch = match c.metadata.get("general.architecture") {
        Some(Value::String(a)) => a.clone(),
        other => {
            return Err(Error::field(
                source,
                "general.architecture",
                "a string",
                other.map_or("nothing (key missing)".to_string(), Value::to_string),
            ))
        }
    };
    if !READABLE.contains(&arch.as_str()) {
        return Err(Error::field(
            source,
            "general.architecture",
            format!("one of {}", READABLE.join(", ")),
            crate::error::clip(&arch),
        ));
    }
    Ok(arch)
}

/// DeepSeek's MLA and experts. Files converted since llama.cpp's MLA support store the cache's
/// shape in key_length (latent + RoPE key) and the heads' in key_length_mla; older ones only
/// the heads'.
fn deepseek_fields(k: &Keys, cfg: &mut Map<String, Value>) -> Result<()> {
    let mut put = |key: &str, v: Value| {
        cfg.insert(key.to_string(), v);
    };
    let rope = k.checked_need("rope.dimension_count")?;
    let (qk, v) = match (k.checked_uint("attention.key_length_mla")?, k.checked_uint("attention.value_length_mla")?) {
        (Some(qk), Some(v)) => (qk, v),
        _ => (k.checked_need("attention.key_length")?, k.checked_need("attention.value_length")?),
    };
    if qk <= rope {
        return Err(Error::field(
            k.source,
            k.key("attention.key_length_mla"),
            format!("more than the RoPE part ({rope})"),
            qk,
        ));
    }
    let q_lora = k.checked_uint("attention.q_lora_rank")?.filter(|&r| r > 0);
    let experts = k.checked_uint("expert_count")?.unwrap_or(0);
    let v3 = k.c.tensors.keys().any(|t| t.ends_with("exp_probs_b.bias"));
    put("model_type", if v3 { "deepseek_v3" } else { "deepseek_v2" }.into());
    put("kv_lora_rank", k.checked_need("attention.kv_lora_rank")?.into());
    put("q_lora_rank", q_lora.map_or(Value::Null, Value::from));
    put("qk_rope_head_dim", rope.into());
    put("qk_nope_head_dim", (qk - rope).into());
    put("v_head_dim", v.into());
    put("intermediate_size", k.checked_need("feed_forward_length")?.into());
    put("n_routed_experts", experts.into());
    if experts > 0 {
        put("first_k_dense_replace", k.checked_uint("leading_dense_block_count")?.unwrap_or(0).into());
        put("num_experts_per_tok", k.checked_need("expert_used_count")?.into());
        put("n_shared_experts", k.checked_uint("expert_shared_count")?.unwrap_or(0).into());
        put("moe_intermediate_size", k.checked_need("expert_feed_forward_length")?.into());
    }
    Ok(())
}

/// Llama-like grouped attention and a dense FFN.
fn uniform_fields(k: &Keys, heads: u64, cfg: &mut Map<String, Value>) -> Result<()> {
    let mut put = |key: &str, v: Value| {
        cfg.insert(key.to_string(), v);
    };
    put("model_type", k.arch.into());
    put("num_key_value_heads", k.checked_uint("attention.head_count_kv")?.unwrap_or(heads).into());
    if let Some(d) = k.checked_uint("attention.key_length")? {
        put("head_dim", d.into());
    }
    put("intermediate_size", k.checked_need("feed_forward_length")?.into());
    if k.arch == "llama" {
        put("attention_bias", k.c.tensors.contains_key("blk.0.attn_q.bias").into());
    }
    Ok(())
}

/// One architecture's keys of a GGUF file (`<arch>.<key>`), read with the file named in errors.
struct Keys<'a> {
    c: &'a GgufContents,
    arch: &'a str,
    source: &'a str,
}

impl Keys<'_> {
    fn key(&self, k: &str) -> String {
        format!("{}.{k}", self.arch)
    }

    fn uint(&self, k: &str) -> Option<u64> {
        self.c.metadata.get(&self.key(k)).and_then(Value::as_u64)
    }

    /// An unsigned integer, or `None` when absent; another type is an error.
    fn checked_uint(&self, k: &str) -> Result<Option<u64>> {
        match self.c.metadata.get(&self.key(k)) {
            None => Ok(None),
            Some(v) => {
                v.as_u64().map(Some).ok_or_else(|| Error::field(self.source, self.key(k), "an unsigned integer", v))
            }
        }
    }

    /// [`Keys::checked_uint`], required.
    fn checked_need(&self, k: &str) -> Result<u64> {
        self.checked_uint(k)?
            .ok_or_else(|| Error::field(self.source, self.key(k), "an unsigned integer", "nothing (key missing)"))
    }

    fn float(&self, k: &str) -> Option<f64> {
        self.c.metadata.get(&self.key(k)).and_then(Value::as_f64)
    }

    fn need(&self, k: &str) -> Result<u64> {
        self.uint(k)
            .ok_or_else(|| Error::field(self.source, self.key(k), "an unsigned integer", "nothing (key missing)"))
    }

    /// A per-layer integer array of `n` entries, or a scalar for every layer.
    fn per_layer(&self, k: &str, n: usize) -> Result<Option<Vec<u64>>> {
        let key = self.key(k);
        let bad = |v: &Value| Error::field(self.source, &key, format!("{n} unsigned integers (one per layer)"), v);
        match self.c.metadata.get(&key) {
            None => Ok(None),
            Some(Value::Array(a)) if a.len() == n => {
                a.iter().map(|x| x.as_u64().ok_or_else(|| bad(x))).collect::<Result<_>>().map(Some)
            }
            Some(v) => v.as_u64().map(|x| Some(vec![x; n])).ok_or_else(|| bad(v)),
        }
    }

    /// A state-space mixer's inner width and head count, checked to divide.
    fn ssm_widths(&self) -> Result<(u64, u64)> {
        let (inner, heads) = (self.need("ssm.inner_size")?, self.need("ssm.time_step_rank")?);
        if heads == 0 || inner % heads != 0 {
            let want = format!("a divisor of ssm.inner_size ({inner})");
            return Err(Error::field(self.source, self.key("ssm.time_step_rank"), want, heads));
        }
        Ok((inner, heads))
    }
}

/// Layer kinds as a config's `layer_types` list: `yes` where `is` holds, `no` elsewhere.
fn layer_types(is: impl Iterator<Item = bool>, yes: &str, no: &str) -> Value {
    Value::from(is.map(|b| if b { yes } else { no }).collect::<Vec<_>>())
}

/// The fields of a hybrid architecture's config (`None` for the uniform ones), in the names
/// its transformers class reads; the common fields (width, depth, vocabulary, heads) are
/// already set.
fn hybrid_fields(c: &GgufContents, arch: &str, source: &str) -> Result<Option<Map<String, Value>>> {
    if !["gemma3", "lfm2", "qwen35", "granitehybrid", "mamba2"].contains(&arch) {
        return Ok(None);
    }
    let k = Keys { c, arch, source };
    let layers = k.need("block_count")? as usize;
    let mut m = Map::new();
    // Attention layers' KV heads per layer, 0 where the layer is recurrent.
    let kv = k.per_layer("attention.head_count_kv", layers)?;
    let kv_heads = kv.as_ref().and_then(|k| k.iter().copied().max()).unwrap_or(1);
    let kv = kv.unwrap_or_else(|| vec![kv_heads; layers]);
    if arch != "mamba2" {
        m.insert("num_key_value_heads".into(), kv_heads.into());
        if let Some(d) = k.uint("attention.key_length") {
            m.insert("head_dim".into(), d.into());
        }
        m.insert("intermediate_size".into(), k.need("feed_forward_length")?.into());
    }
    let fields = match arch {
        "gemma3" => gemma3_fields(&k, layers)?,
        "lfm2" => vec![
            ("model_type", "lfm2".into()),
            ("layer_types", layer_types(kv.iter().map(|&h| h > 0), "full_attention", "conv")),
            ("conv_L_cache", k.need("shortconv.l_cache")?.into()),
            ("block_auto_adjust_ff_dim", false.into()),
            ("block_ff_dim", k.need("feed_forward_length")?.into()),
        ],
        "qwen35" => qwen35_fields(&k, layers)?,
        _ => mamba2_fields(&k, &kv)?,
    };
    m.extend(fields.into_iter().map(|(key, v)| (key.to_string(), v)));
    Ok(Some(m))
}

fn gemma3_fields(k: &Keys, layers: usize) -> Result<Vec<(&'static str, Value)>> {
    let window = k.uint("attention.sliding_window").filter(|&w| w > 0);
    let pattern = "attention.sliding_window_pattern";
    let windowed: Vec<bool> = match window {
        None => vec![false; layers],
        // Verbatim per layer, or a period n (llama.cpp's default 6): layer i is windowed iff
        // i % n < n - 1.
        Some(_) if k.c.metadata.get(&k.key(pattern)).is_some_and(Value::is_array) => {
            k.per_layer(pattern, layers)?.unwrap_or_default().iter().map(|&x| x != 0).collect()
        }
        Some(_) => {
            let n = k.uint(pattern).unwrap_or(6) as usize;
            (0..layers).map(|i| n == 0 || i % n < n - 1).collect()
        }
    };
    let mut f = vec![
        ("model_type", "gemma3_text".into()),
        ("hidden_activation", "gelu_pytorch_tanh".into()),
        ("layer_types", layer_types(windowed.into_iter(), "sliding_attention", "full_attention")),
    ];
    if let Some(w) = window {
        f.push(("sliding_window", w.into()));
    }
    Ok(f)
}

fn qwen35_fields(k: &Keys, layers: usize) -> Result<Vec<(&'static str, Value)>> {
    let recurrent: Vec<bool> = match k.per_layer("attention.recurrent_layers", layers)? {
        Some(r) => r.iter().map(|&x| x != 0).collect(),
        None => {
            let n = k.uint("full_attention_interval").unwrap_or(4).max(1) as usize;
            (0..layers).map(|i| (i + 1) % n != 0).collect()
        }
    };
    let (inner, heads) = k.ssm_widths()?;
    Ok(vec![
        ("model_type", "qwen3_5_text".into()),
        ("layer_types", layer_types(recurrent.into_iter(), "linear_attention", "full_attention")),
        ("linear_conv_kernel_dim", k.need("ssm.conv_kernel")?.into()),
        ("linear_num_value_heads", heads.into()),
        ("linear_num_key_heads", k.need("ssm.group_count")?.into()),
        ("linear_key_head_dim", k.need("ssm.state_size")?.into()),
        ("linear_value_head_dim", (inner / heads).into()),
    ])
}

/// `mamba2`, or `granitehybrid` (its attention layers have KV heads, its Mamba2 layers none).
fn mamba2_fields(k: &Keys, kv: &[u64]) -> Result<Vec<(&'static str, Value)>> {
    let (inner, heads) = k.ssm_widths()?;
    let hidden = k.need("embedding_length")?;
    if hidden == 0 || inner % hidden != 0 {
        let want = format!("a multiple of the width ({hidden})");
        return Err(Error::field(k.source, k.key("ssm.inner_size"), want, inner));
    }
    let first_mamba = if k.arch == "mamba2" { 0 } else { kv.iter().position(|&x| x == 0).unwrap_or(0) };
    let bias = k.c.tensors.contains_key(&format!("blk.{first_mamba}.ssm_conv1d.bias"));
    let (state, groups, conv) = (k.need("ssm.state_size")?, k.need("ssm.group_count")?, k.need("ssm.conv_kernel")?);
    if k.arch == "mamba2" {
        let mut f = vec![
            ("model_type", "mamba2".into()),
            ("num_heads", heads.into()),
            ("head_dim", (inner / heads).into()),
            ("state_size", state.into()),
            ("n_groups", groups.into()),
            ("conv_kernel", conv.into()),
            ("expand", (inner / hidden).into()),
            ("use_conv_bias", bias.into()),
        ];
        if let Some(e) = k.c.metadata.get(&k.key("attention.layer_norm_rms_epsilon")).and_then(Value::as_f64) {
            f.push(("layer_norm_epsilon", e.into()));
        }
        return Ok(f);
    }
    let rope = k.c.metadata.get(&k.key("rope.scaling.finetuned")).and_then(Value::as_bool).unwrap_or(true);
    Ok(vec![
        ("model_type", "granitemoehybrid".into()),
        ("layer_types", layer_types(kv.iter().map(|&h| h > 0), "attention", "mamba")),
        ("mamba_n_heads", heads.into()),
        ("mamba_d_head", (inner / heads).into()),
        ("mamba_d_state", state.into()),
        ("mamba_n_groups", groups.into()),
        ("mamba_d_conv", conv.into()),
        ("mamba_expand", (inner / hidden).into()),
        ("mamba_conv_bias", bias.into()),
        ("num_local_experts", 0.into()),
        ("shared_intermediate_size", k.need("feed_forward_length")?.into()),
        ("position_embedding_type", if rope { "rope" } else { "nope" }.into()),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::gguf::gguf_layout;
    use crate::arch::{load_hf_config, parse_hf_config};

    fn model(file: &str) -> crate::arch::Architecture {
        let path = format!("{}/models/{file}", env!("CARGO_MANIFEST_DIR"));
        load_hf_config(std::path::Path::new(&path)).unwrap()
    }

    #[test]
    fn a_written_layout_reads_back_as_the_same_model() {
        for file in [
            "SmolLM2-135M.json",
            "Llama-3.2-1B.json",
            "Qwen3-0.6B.json",
            "Qwen2.5-0.5B.json",
            "Llama-2-7b-hf.json",
            "DeepSeek-V2-Lite-Chat.json",
        ] {
            let arch = model(file);
            let layout = gguf_layout(&arch, arch.max_position_embeddings).unwrap();
            let cfg = hf_config_of(&GgufContents::of_layout(&layout), file).unwrap();
            let back = parse_hf_config(&cfg.to_string(), file, &arch.name).unwrap();
            assert_eq!(back.parameters(), arch.parameters(), "{file}");
            assert_eq!(back.attention, arch.attention, "{file}");
            assert_eq!(back.ffn, arch.ffn, "{file}");
            assert_eq!(back.tie_embeddings, arch.tie_embeddings, "{file}");
            assert_eq!((back.qkv_bias, back.qk_norm), (arch.qkv_bias, arch.qk_norm), "{file}");
        }
    }

    #[test]
    fn a_written_hybrid_layout_reads_back_as_the_same_stack() {
        let dir = format!("{}/tests/fixtures/hybrid", env!("CARGO_MANIFEST_DIR"));
        let mamba = std::fs::read_to_string(format!("{dir}/exported/mamba2-only.json")).unwrap();
        let mamba = mamba.replace(r#""use_conv_bias": false"#, r#""use_conv_bias": true"#);
        let mut archs: Vec<crate::arch::Architecture> =
            ["gemma-3-270m.json", "LFM2-350M.json", "granite-4.0-h-350m.json", "exported/deltanet-dense.json"]
                .iter()
                .map(|f| load_hf_config(std::path::Path::new(&format!("{dir}/{f}"))).unwrap())
                .collect();
        archs.push(parse_hf_config(&mamba, "mamba2-only.json", "mamba2-only").unwrap());
        for arch in archs {
            let layout = gguf_layout(&arch, 4096).unwrap();
            let cfg = hf_config_of(&GgufContents::of_layout(&layout), &arch.name).unwrap();
            let back =
                parse_hf_config(&cfg.to_string(), &arch.name, &arch.name).unwrap_or_else(|e| panic!("{e}\n{cfg}"));
            assert_eq!(back.parameters(), arch.parameters(), "{}", arch.name);
            assert_eq!(back.layers, arch.layers, "{}", arch.name);
            assert_eq!(back.family, arch.family, "{}", arch.name);
            if arch.family != crate::arch::Family::Mamba2 {
                // A pure Mamba2 stack has neither (the fields are placeholders).
                assert_eq!((back.attention, back.ffn), (arch.attention, arch.ffn), "{}", arch.name);
            }
            assert_eq!((back.qk_norm, back.attn_output_gate), (arch.qk_norm, arch.attn_output_gate), "{}", arch.name);
        }
    }

    #[test]
    fn reads_a_file_converted_before_mla_support() {
        // DeepSeek-V2-Lite as llama.cpp's converter wrote it in 2024: key/value lengths are the
        // heads' (192 = 128 + 64, 128), no *_mla keys. Published in its config.json: 15.7B.
        let meta = [
            ("general.architecture", json!("deepseek2")),
            ("deepseek2.embedding_length", json!(2048)),
            ("deepseek2.block_count", json!(27)),
            ("deepseek2.vocab_size", json!(102400)),
            ("deepseek2.attention.head_count", json!(16)),
            ("deepseek2.attention.head_count_kv", json!(16)),
            ("deepseek2.attention.kv_lora_rank", json!(512)),
            ("deepseek2.attention.q_lora_rank", json!(0)),
            ("deepseek2.attention.key_length", json!(192)),
            ("deepseek2.attention.value_length", json!(128)),
            ("deepseek2.rope.dimension_count", json!(64)),
            ("deepseek2.feed_forward_length", json!(10944)),
            ("deepseek2.leading_dense_block_count", json!(1)),
            ("deepseek2.expert_count", json!(64)),
            ("deepseek2.expert_used_count", json!(6)),
            ("deepseek2.expert_shared_count", json!(2)),
            ("deepseek2.expert_feed_forward_length", json!(1408)),
        ];
        let c = GgufContents {
            metadata: meta.iter().map(|(k, v)| (k.to_string(), v.clone())).collect(),
            tensors: [("output.weight".to_string(), vec![2048, 102400])].into_iter().collect(),
        };
        let cfg = hf_config_of(&c, "lite.gguf").unwrap();
        let arch = parse_hf_config(&cfg.to_string(), "lite.gguf", "lite").unwrap();
        assert_eq!(arch.parameters(), model("DeepSeek-V2-Lite-Chat.json").parameters());
    }

    #[test]
    fn an_unknown_architecture_is_named() {
        let c = GgufContents {
            metadata: [("general.architecture".to_string(), json!("mamba"))].into_iter().collect(),
            tensors: BTreeMap::new(),
        };
        let e = hf_config_of(&c, "m.gguf").unwrap_err().to_string();
        assert!(e.contains("m.gguf") && e.contains("general.architecture") && e.contains("mamba"), "{e}");
    }
}
