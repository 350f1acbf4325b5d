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
/// for Llama, Mistral, Qwen and DeepSeek checkpoints).
pub const READABLE: [&str; 4] = ["llama", "qwen2", "qwen3", "deepseek2"];

/// The `config.json` a GGUF file was converted from, as far as the shape goes.
pub fn hf_config_of(c: &GgufContents, source: &str) -> Result<Value> {
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
    let key = |k: &str| format!("{arch}.{k}");
    let uint = |k: &str| -> Result<Option<u64>> {
        match c.metadata.get(&key(k)) {
            None => Ok(None),
            Some(v) => v.as_u64().map(Some).ok_or_else(|| Error::field(source, key(k), "an unsigned integer", v)),
        }
    };
    let need = |k: &str| -> Result<u64> {
        uint(k)?.ok_or_else(|| Error::field(source, key(k), "an unsigned integer", "nothing (key missing)"))
    };
    let float = |k: &str| c.metadata.get(&key(k)).and_then(Value::as_f64);
    let has = |t: &str| c.tensors.contains_key(t);

    let hidden = need("embedding_length")?;
    let heads = need("attention.head_count")?;
    let vocab = match uint("vocab_size")? {
        Some(v) => v,
        None => match c.tensors.get("token_embd.weight").map(Vec::as_slice) {
            Some([_, v, ..]) => *v,
            _ => {
                return Err(Error::field(
                    source,
                    key("vocab_size"),
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
    put("num_hidden_layers", need("block_count")?.into());
    put("vocab_size", vocab.into());
    put("num_attention_heads", heads.into());
    put("tie_word_embeddings", (!has("output.weight")).into());
    put("hidden_act", "silu".into());
    if let Some(n) = uint("context_length")? {
        put("max_position_embeddings", n.into());
    }
    if let Some(t) = float("rope.freq_base") {
        put("rope_theta", t.into());
    }
    if let Some(e) = float("attention.layer_norm_rms_epsilon") {
        put("rms_norm_eps", e.into());
    }

    if arch == "deepseek2" {
        // Files converted since llama.cpp's MLA support store the cache's shape in key_length
        // (latent + RoPE key) and the heads' in key_length_mla; older ones only the heads'.
        let rope = need("rope.dimension_count")?;
        let (qk, v) = match (uint("attention.key_length_mla")?, uint("attention.value_length_mla")?) {
            (Some(k), Some(v)) => (k, v),
            _ => (need("attention.key_length")?, need("attention.value_length")?),
        };
        if qk <= rope {
            return Err(Error::field(
                source,
                key("attention.key_length_mla"),
                format!("more than the RoPE part ({rope})"),
                qk,
            ));
        }
        let q_lora = uint("attention.q_lora_rank")?.filter(|&r| r > 0);
        let experts = uint("expert_count")?.unwrap_or(0);
        let v3 = c.tensors.keys().any(|t| t.ends_with("exp_probs_b.bias"));
        put("model_type", if v3 { "deepseek_v3" } else { "deepseek_v2" }.into());
        put("kv_lora_rank", need("attention.kv_lora_rank")?.into());
        put("q_lora_rank", q_lora.map_or(Value::Null, Value::from));
        put("qk_rope_head_dim", rope.into());
        put("qk_nope_head_dim", (qk - rope).into());
        put("v_head_dim", v.into());
        put("intermediate_size", need("feed_forward_length")?.into());
        put("n_routed_experts", experts.into());
        if experts > 0 {
            put("first_k_dense_replace", uint("leading_dense_block_count")?.unwrap_or(0).into());
            put("num_experts_per_tok", need("expert_used_count")?.into());
            put("n_shared_experts", uint("expert_shared_count")?.unwrap_or(0).into());
            put("moe_intermediate_size", need("expert_feed_forward_length")?.into());
        }
    } else {
        put("model_type", arch.clone().into());
        put("num_key_value_heads", uint("attention.head_count_kv")?.unwrap_or(heads).into());
        if let Some(d) = uint("attention.key_length")? {
            put("head_dim", d.into());
        }
        put("intermediate_size", need("feed_forward_length")?.into());
        if arch == "llama" {
            put("attention_bias", has("blk.0.attn_q.bias").into());
        }
    }
    Ok(json!(cfg))
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
