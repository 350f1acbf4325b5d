//! Hugging Face `config.json` import and export. Every default is decided here, in one place.

use super::{Activation, Architecture, Attention, Family, Ffn, Layer, Mixer, Mla, Moe};
use crate::error::{Error, Result};
use serde_json::{Map, Value};
use std::path::Path;

mod export;
mod hybrid;

pub use export::{export_hf_config, try_export_hf_config};

pub const SUPPORTED_MODEL_TYPES: [&str; 18] = [
    "llama",
    "mistral",
    "qwen2",
    "qwen3",
    "phi3",
    "gemma2",
    "deepseek_v2",
    "deepseek_v3",
    "gemma3_text",
    "gemma3",
    "lfm2",
    "smollm3",
    "gpt_oss",
    "qwen3_next",
    "qwen3_5_text",
    "qwen3_5",
    "granitemoehybrid",
    "mamba2",
];

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
    parse_hf_value(&value, source, name)
}

/// Resolves a `config.json` already parsed (the Python binding's dicts).
pub fn parse_hf_value(value: &Value, source: &str, name: &str) -> Result<Architecture> {
    let Value::Object(map) = value else {
        return Err(Error::field(source, "(top level)", "a JSON object", "another JSON value"));
    };
    parse_map(map, source, name)
}

fn parse_map(map: &Map<String, Value>, source: &str, name: &str) -> Result<Architecture> {
    let cfg = Fields { map, source };
    let model_type = cfg.string("model_type")?;
    // Gemma 3 and Qwen3.5 checkpoints wrap the text model's config (and a vision tower's).
    if let Some(text_type) = match model_type.as_str() {
        "gemma3" => Some("gemma3_text"),
        "qwen3_5" => Some("qwen3_5_text"),
        _ => None,
    } {
        let Some(Value::Object(text)) = cfg.get("text_config") else {
            return Err(Error::field(source, "text_config", "an object (the text model's config)", "nothing"));
        };
        let mut text = text.clone();
        text.entry("model_type").or_insert_with(|| text_type.into());
        if let Some(tie) = cfg.get("tie_word_embeddings") {
            text.entry("tie_word_embeddings").or_insert_with(|| tie.clone());
        }
        if text.get("model_type").and_then(Value::as_str) != Some(text_type) {
            return Err(Error::field(source, "text_config.model_type", text_type, &text["model_type"]));
        }
        return parse_map(&text, source, name);
    }
    let family = family_of(&model_type, source)?;

    let hidden_size = cfg.positive("hidden_size")?;
    // Bounded before anything divides by or multiplies it (`validate` checks the rest).
    if hidden_size > super::limits::MAX_WIDTH {
        let max = super::limits::MAX_WIDTH;
        return Err(Error::field(source, "hidden_size", format!("an integer from 1 to {max}"), hidden_size));
    }
    let num_layers = cfg.positive("num_hidden_layers")?;
    // Bounded before per-layer lists are built from it (a fuzzed count asked for 120 GB).
    if num_layers > super::limits::MAX_LAYERS {
        let max = super::limits::MAX_LAYERS;
        return Err(Error::field(source, "num_hidden_layers", format!("an integer from 1 to {max}"), num_layers));
    }
    let vocab_size = cfg.positive("vocab_size")?;
    if hybrid_family(family) {
        return hybrid::parse(&cfg, family, name, hidden_size, num_layers, vocab_size);
    }
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
        "gemma3_text" => Family::Gemma3Text,
        "lfm2" => Family::Lfm2,
        "smollm3" => Family::SmolLm3,
        "gpt_oss" => Family::GptOss,
        "qwen3_next" => Family::Qwen3Next,
        "qwen3_5_text" => Family::Qwen35Text,
        "granitemoehybrid" => Family::GraniteMoeHybrid,
        "mamba2" => Family::Mamba2,
        other => {
            return Err(Error::UnsupportedModelType {
                source_name: source.to_string(),
                model_type: crate::error::clip(other),
                supported: SUPPORTED_MODEL_TYPES.to_vec(),
            })
        }
    })
}

/// The families `hybrid` reads.
fn hybrid_family(family: Family) -> bool {
    !matches!(
        family,
        Family::Llama
            | Family::Mistral
            | Family::Qwen2
            | Family::Qwen3
            | Family::Phi3
            | Family::Gemma2
            | Family::DeepseekV2
            | Family::DeepseekV3
    )
}

/// The attention: MLA for DeepSeek, grouped (MHA, GQA, MQA) otherwise.
fn attention_of(cfg: &Fields, deepseek: bool, hidden_size: u32, num_heads: u32) -> Result<Attention> {
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
        Attention::Grouped { num_heads, num_kv_heads, head_dim: head_dim_of(cfg, hidden_size, num_heads, None)? }
    })
}

/// `head_dim` from the config when given, else the class's `default`; hidden / heads is only
/// the fallback, refused when the heads do not divide the width.
fn head_dim_of(cfg: &Fields, hidden_size: u32, num_heads: u32, default: Option<u32>) -> Result<u32> {
    match cfg.optional_positive("head_dim")?.or(default) {
        Some(d) => Ok(d),
        None if hidden_size % num_heads == 0 => Ok(hidden_size / num_heads),
        None => Err(Error::field(
            cfg.source,
            "num_attention_heads",
            format!("a divisor of hidden_size ({hidden_size}) when head_dim is not given"),
            num_heads,
        )),
    }
}

/// The FFN's activation, under the family's field name and default.
fn activation_of(cfg: &Fields, family: Family) -> Result<Activation> {
    let act_field = if family == Family::Gemma2 { "hidden_activation" } else { "hidden_act" };
    let default_act = if family == Family::Gemma2 { "gelu_pytorch_tanh" } else { "silu" };
    activation_named(cfg, act_field, default_act)
}

/// The activation under `act_field`, `default_act` when absent.
fn activation_named(cfg: &Fields, act_field: &str, default_act: &str) -> Result<Activation> {
    let source = cfg.source;
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

    /// `outer.inner.key` (Gemma 3's per-layer-type `rope_parameters`).
    fn nested_f64(&self, outer: &str, inner: &str, key: &str) -> Result<Option<f64>> {
        match self.get(outer).and_then(|p| p.get(inner)).and_then(|p| p.get(key)) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_f64()
                .map(Some)
                .ok_or_else(|| Error::field(self.source, format!("{outer}.{inner}.{key}"), "a number", v)),
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
