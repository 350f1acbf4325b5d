//! Hugging Face `config.json` import and export. Every default is decided here, in one place.

use super::{Activation, Architecture, Attention, Family, Ffn, Layer, Mixer, Mla, Moe};
use crate::error::{Error, Result};
use serde_json::{Map, Value};
use std::path::Path;

pub const SUPPORTED_MODEL_TYPES: [&str; 8] =
    ["llama", "mistral", "qwen2", "qwen3", "phi3", "gemma2", "deepseek_v2", "deepseek_v3"];

/// Reads and resolves a `config.json`.
pub fn load_hf_config(path: &Path) -> Result<Architecture> {
    let text = crate::files::read_text(path, crate::files::read::MAX_JSON_BYTES)?;
    let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("model").trim_end_matches(".config");
    let name = if name == "config" {
        path.parent().and_then(|p| p.file_name()).and_then(|s| s.to_str()).unwrap_or("model")
    } else {
        name
    };
    parse_hf_config(&text, &path.display().to_string(), name)
}

/// Parses a `config.json` held in memory; `source` names it in errors.
pub fn parse_hf_config(text: &str, source: &str, name: &str) -> Result<Architecture> {
    let value: Value = serde_json::from_str(text).map_err(|e| Error::json(source, &e))?;
    let Value::Object(map) = value else {
        return Err(Error::field(source, "(top level)", "a JSON object", "another JSON value"));
    };
    let cfg = Fields { map: &map, source };
    let model_type = cfg.string("model_type")?;
    let family = family_of(&model_type, source)?;

    let hidden_size = cfg.positive("hidden_size")?;
    // Bounded before anything divides by or multiplies it (`validate` checks the rest).
    if hidden_size > super::limits::MAX_WIDTH {
        let max = super::limits::MAX_WIDTH;
        return Err(Error::field(source, "hidden_size", format!("an integer from 1 to {max}"), hidden_size));
    }
    let num_layers = cfg.positive("num_hidden_layers")?;
    let vocab_size = cfg.positive("vocab_size")?;
    let num_heads = cfg.positive("num_attention_heads")?;
    let deepseek = matches!(family, Family::DeepseekV2 | Family::DeepseekV3);

    let attention = attention_of(&cfg, deepseek, hidden_size, num_heads)?;

    let activation = activation_of(&cfg, family)?;

    let attention_bias = cfg.optional_bool("attention_bias")?.unwrap_or(false);
    if deepseek && attention_bias {
        return Err(Error::field(source, "attention_bias", "false (no DeepSeek MLA model uses it)", true));
    }
    let (qkv_bias, o_bias) = match family {
        Family::Qwen2 => (true, false),
        Family::Llama | Family::Qwen3 => (attention_bias, attention_bias),
        _ => (false, false),
    };

    let ffn = ffn_of(&cfg, family, num_layers, activation)?;

    // Transformers' defaults for tie_word_embeddings differ by family.
    let tie_default = family == Family::Gemma2;
    let arch = Architecture {
        name: name.to_string(),
        family,
        num_layers,
        hidden_size,
        vocab_size,
        tie_embeddings: cfg.optional_bool("tie_word_embeddings")?.unwrap_or(tie_default),
        attention,
        ffn,
        qkv_bias,
        o_bias,
        qk_norm: family == Family::Qwen3,
        attn_output_gate: false,
        attention_sinks: false,
        norms_per_layer: if family == Family::Gemma2 { 4 } else { 2 },
        max_position_embeddings: cfg.optional_positive("max_position_embeddings")?.unwrap_or(4096),
        layers: layers_of(&cfg, family, num_layers)?,
        // Transformers 5 moves rope_theta into rope_parameters.
        rope_theta: match cfg.optional_f64("rope_theta")? {
            Some(t) => t,
            None => cfg.rope_parameters_theta()?.unwrap_or(10000.0),
        },
        norm_eps: cfg.optional_f64("rms_norm_eps")?.unwrap_or(1e-6),
    };
    arch.validate(source)?;
    Ok(arch)
}

/// Which layers attend through a sliding window, as transformers decides it per family: an
/// explicit `layer_types` list; Qwen2/Qwen3 from `max_window_layers` on when
/// `use_sliding_window` is set (their configs carry a window they do not use); Gemma 2 on every
/// other layer from the first; Mistral and Phi-3 on every layer. Empty: all global.
fn layers_of(cfg: &Fields, family: Family, num_layers: u32) -> Result<Vec<Layer>> {
    let source = cfg.source;
    if cfg.optional_bool("use_sliding_window")? == Some(false) {
        return Ok(Vec::new());
    }
    let Some(window) = cfg.optional_positive("sliding_window")? else {
        return Ok(Vec::new());
    };
    let windowed = Layer::of(Mixer::Window { window });
    let layers: Vec<Layer> = if let Some(types) = cfg.get("layer_types") {
        let Some(list) = types.as_array() else {
            return Err(Error::field(source, "layer_types", "a list of layer kinds", types));
        };
        list.iter()
            .map(|t| match t.as_str() {
                Some("full_attention") => Ok(Layer::GLOBAL),
                Some("sliding_attention") => Ok(windowed),
                _ => Err(Error::field(source, "layer_types", "full_attention or sliding_attention entries", t)),
            })
            .collect::<Result<_>>()?
    } else {
        match family {
            Family::Qwen2 | Family::Qwen3 => {
                let from = cfg.optional_u32("max_window_layers")?.unwrap_or(num_layers);
                (0..num_layers).map(|i| if i >= from { windowed } else { Layer::GLOBAL }).collect()
            }
            Family::Gemma2 => (0..num_layers).map(|i| if i % 2 == 0 { windowed } else { Layer::GLOBAL }).collect(),
            _ => vec![windowed; num_layers as usize],
        }
    };
    if layers.len() != num_layers as usize {
        return Err(Error::field(
            source,
            "layer_types",
            format!("one entry per layer ({num_layers})"),
            format!("{} entries", layers.len()),
        ));
    }
    // A window no shorter than the trained context changes nothing: keep such models uniform.
    Ok(if layers.iter().all(|l| *l == Layer::GLOBAL) { Vec::new() } else { layers })
}

/// The family a `model_type` names.
fn family_of(model_type: &str, source: &str) -> Result<Family> {
    Ok(match model_type {
        "llama" => Family::Llama,
        "mistral" => Family::Mistral,
        "qwen2" => Family::Qwen2,
        "qwen3" => Family::Qwen3,
        "phi3" => Family::Phi3,
        "gemma2" => Family::Gemma2,
        "deepseek_v2" => Family::DeepseekV2,
        "deepseek_v3" => Family::DeepseekV3,
        other => {
            return Err(Error::UnsupportedModelType {
                source_name: source.to_string(),
                model_type: crate::error::clip(other),
                supported: SUPPORTED_MODEL_TYPES.to_vec(),
            })
        }
    })
}

/// The attention: MLA for DeepSeek, grouped (MHA, GQA, MQA) otherwise.
fn attention_of(cfg: &Fields, deepseek: bool, hidden_size: u32, num_heads: u32) -> Result<Attention> {
    let source = cfg.source;
    Ok(if deepseek {
        Attention::Latent(Mla {
            num_heads,
            kv_lora_rank: cfg.positive("kv_lora_rank")?,
            q_lora_rank: cfg.optional_positive("q_lora_rank")?,
            qk_nope_head_dim: cfg.positive("qk_nope_head_dim")?,
            qk_rope_head_dim: cfg.positive("qk_rope_head_dim")?,
            v_head_dim: cfg.positive("v_head_dim")?,
        })
    } else {
        let num_kv_heads = cfg.optional_positive("num_key_value_heads")?.unwrap_or(num_heads);
        // head_dim comes from the config when given; hidden / heads is only the fallback.
        let head_dim = match cfg.optional_positive("head_dim")? {
            Some(d) => d,
            None if hidden_size % num_heads == 0 => hidden_size / num_heads,
            None => {
                return Err(Error::field(
                    source,
                    "num_attention_heads",
                    format!("a divisor of hidden_size ({hidden_size}) when head_dim is not given"),
                    num_heads,
                ))
            }
        };
        Attention::Grouped { num_heads, num_kv_heads, head_dim }
    })
}

/// The FFN's activation, under the family's field name and default.
fn activation_of(cfg: &Fields, family: Family) -> Result<Activation> {
    let source = cfg.source;
    let act_field = if family == Family::Gemma2 { "hidden_activation" } else { "hidden_act" };
    let default_act = if family == Family::Gemma2 { "gelu_pytorch_tanh" } else { "silu" };
    let act_name = cfg.optional_string(act_field)?.unwrap_or_else(|| default_act.to_string());
    Ok(match act_name.as_str() {
        "silu" | "swish" => Activation::Silu,
        "gelu" => Activation::Gelu,
        "gelu_pytorch_tanh" | "gelu_new" | "gelu_fast" => Activation::GeluTanh,
        "relu" => Activation::Relu,
        other => return Err(Error::field(source, act_field, "one of silu, gelu, gelu_pytorch_tanh, relu", other)),
    })
}

/// The FFN: dense, or DeepSeek's routed experts read as transformers reads them.
fn ffn_of(cfg: &Fields, family: Family, num_layers: u32, activation: Activation) -> Result<Ffn> {
    let source = cfg.source;
    let deepseek = matches!(family, Family::DeepseekV2 | Family::DeepseekV3);
    let intermediate = cfg.positive("intermediate_size");
    // Transformers builds a DeepSeek layer as MoE from `first_k_dense_replace` on (default 0)
    // whenever it has routed experts (default 64), so an absent count is not "dense": it is read
    // as transformers reads it, and 0 experts or all layers dense is a dense model.
    let routed = if deepseek { cfg.optional_u32("n_routed_experts")? } else { None };
    let first_k_dense = cfg.optional_u32("first_k_dense_replace")?.unwrap_or(0);
    let moe_layers = deepseek && first_k_dense < num_layers && routed != Some(0);
    Ok(if moe_layers {
        let Some(num_experts) = routed else {
            return Err(Error::field(
                source,
                "n_routed_experts",
                "an explicit count (transformers would build its default of 64 routed experts from layer \
                 first_k_dense_replace on; 0, or first_k_dense_replace = num_hidden_layers, for a dense model)",
                "nothing (field missing)",
            ));
        };
        let freq = cfg.optional_positive("moe_layer_freq")?.unwrap_or(1);
        if freq != 1 {
            return Err(Error::field(source, "moe_layer_freq", "1 (every layer past the dense ones)", freq));
        }
        // Transformers' default shared experts: 2 in DeepSeek-V2, 1 in V3.
        let shared_default = if family == Family::DeepseekV3 { 1 } else { 2 };
        Ffn::Moe(Moe {
            num_experts,
            experts_per_token: cfg.positive("num_experts_per_tok")?,
            num_shared_experts: cfg.optional_u32("n_shared_experts")?.unwrap_or(shared_default),
            expert_intermediate_size: cfg.positive("moe_intermediate_size")?,
            dense_intermediate_size: if first_k_dense > 0 {
                intermediate?
            } else {
                cfg.optional_u32("intermediate_size")?.unwrap_or(0)
            },
            first_k_dense,
            activation,
            router_bias: family == Family::DeepseekV3,
            expert_bias: false,
            shared_expert_gate: false,
        })
    } else {
        Ffn::Dense {
            intermediate_size: intermediate?,
            gated: true,
            activation,
            bias: family == Family::Llama && cfg.optional_bool("mlp_bias")?.unwrap_or(false),
        }
    })
}

/// Writes an architecture as a `config.json` that [`parse_hf_config`] reads back to the same
/// architecture and that transformers' `AutoConfig` loads as the same model: every key whose
/// transformers default would change the model is written out. Keys come out sorted, so the
/// bytes are deterministic.
pub fn export_hf_config(arch: &Architecture) -> Value {
    let mut m = Map::new();
    let mut put = |k: &str, v: Value| {
        m.insert(k.to_string(), v);
    };
    let family = export_family(arch);
    let (model_type, class) = match family {
        Family::Llama => ("llama", "LlamaForCausalLM"),
        Family::Mistral => ("mistral", "MistralForCausalLM"),
        Family::Qwen2 => ("qwen2", "Qwen2ForCausalLM"),
        Family::Qwen3 => ("qwen3", "Qwen3ForCausalLM"),
        Family::Phi3 => ("phi3", "Phi3ForCausalLM"),
        Family::Gemma2 => ("gemma2", "Gemma2ForCausalLM"),
        Family::DeepseekV2 => ("deepseek_v2", "DeepseekV2ForCausalLM"),
        Family::DeepseekV3 => ("deepseek_v3", "DeepseekV3ForCausalLM"),
        Family::Gemma3Text => ("gemma3_text", "Gemma3ForCausalLM"),
        Family::Lfm2 => ("lfm2", "Lfm2ForCausalLM"),
        Family::SmolLm3 => ("smollm3", "SmolLM3ForCausalLM"),
        Family::GptOss => ("gpt_oss", "GptOssForCausalLM"),
        Family::Qwen3Next => ("qwen3_next", "Qwen3NextForCausalLM"),
        Family::Qwen35Text => ("qwen3_5_text", "Qwen3_5ForCausalLM"),
        Family::GraniteMoeHybrid => ("granitemoehybrid", "GraniteMoeHybridForCausalLM"),
        Family::Mamba2 => ("mamba2", "Mamba2ForCausalLM"),
    };
    put("model_type", model_type.into());
    put("architectures", Value::Array(vec![class.into()]));
    put("hidden_size", arch.hidden_size.into());
    put("num_hidden_layers", arch.num_layers.into());
    put("vocab_size", arch.vocab_size.into());
    put("tie_word_embeddings", arch.tie_embeddings.into());
    put("max_position_embeddings", arch.max_position_embeddings.into());
    let windows: Vec<Option<u32>> = arch.layers.iter().map(|l| l.mixer.window()).collect();
    if let Some(w) = windows.iter().flatten().next() {
        put("sliding_window", (*w).into());
        if windows.iter().any(|x| x.is_none()) {
            let types = windows.iter().map(|x| if x.is_some() { "sliding_attention" } else { "full_attention" });
            put("layer_types", Value::Array(types.map(Value::from).collect()));
        }
    }
    put("rope_theta", arch.rope_theta.into());
    put("rms_norm_eps", arch.norm_eps.into());
    put("torch_dtype", "bfloat16".into());
    match arch.attention {
        Attention::Grouped { num_heads, num_kv_heads, head_dim } => {
            put("num_attention_heads", num_heads.into());
            put("num_key_value_heads", num_kv_heads.into());
            put("head_dim", head_dim.into());
        }
        Attention::Latent(mla) => {
            put("num_attention_heads", mla.num_heads.into());
            put("num_key_value_heads", mla.num_heads.into());
            put("kv_lora_rank", mla.kv_lora_rank.into());
            put("q_lora_rank", mla.q_lora_rank.map_or(Value::Null, Value::from));
            put("qk_nope_head_dim", mla.qk_nope_head_dim.into());
            put("qk_rope_head_dim", mla.qk_rope_head_dim.into());
            put("v_head_dim", mla.v_head_dim.into());
            put("attention_bias", false.into());
        }
    }
    if matches!(family, Family::Llama | Family::Qwen3) {
        put("attention_bias", arch.qkv_bias.into());
    }
    // Mistral and Qwen attend through a sliding window by default in some versions: none here.
    if matches!(family, Family::Mistral | Family::Qwen2 | Family::Qwen3) && windows.is_empty() {
        put("sliding_window", Value::Null);
        if family != Family::Mistral {
            put("use_sliding_window", false.into());
        }
    }
    let act_key = if family == Family::Gemma2 { "hidden_activation" } else { "hidden_act" };
    let deepseek = matches!(family, Family::DeepseekV2 | Family::DeepseekV3);
    match arch.ffn {
        Ffn::Dense { intermediate_size, activation, bias, .. } => {
            put("intermediate_size", intermediate_size.into());
            put(act_key, activation.hf_name().into());
            if matches!(family, Family::Llama | Family::DeepseekV2 | Family::DeepseekV3) {
                put("mlp_bias", bias.into());
            }
            if deepseek {
                // Transformers' DeepSeek defaults are 64 routed and 2 shared experts from layer
                // 0 on: a dense model says "no experts, every layer dense" in so many words.
                put("n_routed_experts", 0.into());
                put("n_shared_experts", 0.into());
                put("first_k_dense_replace", arch.num_layers.into());
                put("moe_layer_freq", 1.into());
            }
        }
        Ffn::Moe(moe) => {
            put("intermediate_size", moe.dense_intermediate_size.into());
            put(act_key, moe.activation.hf_name().into());
            put("n_routed_experts", moe.num_experts.into());
            put("num_experts_per_tok", moe.experts_per_token.into());
            put("n_shared_experts", moe.num_shared_experts.into());
            put("moe_intermediate_size", moe.expert_intermediate_size.into());
            put("first_k_dense_replace", moe.first_k_dense.into());
            put("moe_layer_freq", 1.into());
            put("mlp_bias", false.into());
        }
    }
    Value::Object(m)
}

/// The family a config is written as. Transformers' LlamaConfig and DeepseekV2Config reject a
/// hidden size that is not a multiple of the heads even with explicit head sizes; MistralConfig
/// and DeepseekV3Config take it and build the same layers (no sliding window, no biases; a dense
/// DeepSeek-V3 has no router), so such shapes are written as those.
pub fn export_family(arch: &Architecture) -> Family {
    match arch.attention {
        Attention::Grouped { num_heads, .. } if arch.family == Family::Llama && arch.hidden_size % num_heads != 0 => {
            Family::Mistral
        }
        Attention::Latent(m)
            if arch.family == Family::DeepseekV2 && arch.hidden_size % m.num_heads != 0 && !arch.ffn.is_moe() =>
        {
            Family::DeepseekV3
        }
        _ => arch.family,
    }
}

/// Typed access to a config's fields, each error naming the file and the field.
struct Fields<'a> {
    map: &'a Map<String, Value>,
    source: &'a str,
}

impl Fields<'_> {
    fn get(&self, key: &str) -> Option<&Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn missing(&self, key: &str, expected: &str) -> Error {
        Error::field(self.source, key, expected, "nothing (field missing)")
    }

    fn string(&self, key: &str) -> Result<String> {
        self.optional_string(key)?.ok_or_else(|| self.missing(key, "a string"))
    }

    fn optional_string(&self, key: &str) -> Result<Option<String>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(v) => Err(Error::field(self.source, key, "a string", v)),
        }
    }

    fn optional_u32(&self, key: &str) -> Result<Option<u32>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => match v.as_u64().filter(|&n| n <= u32::MAX as u64) {
                Some(n) => Ok(Some(n as u32)),
                None => Err(Error::field(self.source, key, "a non-negative integer", v)),
            },
        }
    }

    fn optional_positive(&self, key: &str) -> Result<Option<u32>> {
        match self.optional_u32(key) {
            Ok(Some(0)) => Err(Error::field(self.source, key, "a positive integer", 0)),
            Err(_) => Err(Error::field(self.source, key, "a positive integer", self.get(key).unwrap())),
            ok => ok,
        }
    }

    fn positive(&self, key: &str) -> Result<u32> {
        self.optional_positive(key)?.ok_or_else(|| self.missing(key, "a positive integer"))
    }

    fn optional_bool(&self, key: &str) -> Result<Option<bool>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(Error::field(self.source, key, "true or false", v)),
        }
    }

    fn rope_parameters_theta(&self) -> Result<Option<f64>> {
        match self.get("rope_parameters").and_then(|p| p.get("rope_theta")) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_f64()
                .map(Some)
                .ok_or_else(|| Error::field(self.source, "rope_parameters.rope_theta", "a number", v)),
        }
    }

    fn optional_f64(&self, key: &str) -> Result<Option<f64>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.as_f64().map(Some).ok_or_else(|| Error::field(self.source, key, "a number", v)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(extra: &str) -> Architecture {
        let text = format!(
            r#"{{"model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
               "num_attention_heads": 4, "vocab_size": 100{extra}}}"#
        );
        parse_hf_config(&text, "t.json", "t").unwrap()
    }

    #[test]
    fn a_sliding_window_counts_only_when_used() {
        let window = |a: &Architecture| a.layers.first().and_then(|l| l.mixer.window());
        assert_eq!(window(&with("")), None);
        assert_eq!(window(&with(r#", "sliding_window": 4096"#)), Some(4096));
        // Qwen2 configs carry a window they do not use.
        assert_eq!(window(&with(r#", "sliding_window": 32768, "use_sliding_window": false"#)), None);
        assert_eq!(window(&with(r#", "sliding_window": null"#)), None);
        // And it survives the export.
        let a = with(r#", "sliding_window": 4096"#);
        let back = parse_hf_config(&export_hf_config(&a).to_string(), "e.json", "t").unwrap();
        assert_eq!(back.layers, a.layers);
    }
}
