//! `config.json` export: each architecture is written as the family whose transformers class
//! builds exactly its layers and parameters, or refused with the field no class expresses.

use super::hybrid_family;
use crate::arch::{Architecture, Attention, Family, Ffn, Layer, Mixer};
use crate::error::{Error, Result};
use serde_json::{Map, Value};

/// Writes an architecture as a `config.json` that [`super::parse_hf_config`] reads back to the
/// same architecture and that transformers' `AutoConfig` loads as the same model: every key
/// whose transformers default would change the model is written out. Keys come out sorted, so
/// the bytes are deterministic. An architecture no transformers class builds exactly is refused
/// with a one-line error naming the field.
pub fn try_export_hf_config(arch: &Architecture) -> Result<Value> {
    let family = export_family(arch)?;
    if hybrid_family(family) {
        hybrid_config(arch, family)
    } else {
        Ok(classic_config(arch, family))
    }
}

/// [`try_export_hf_config`] for architectures known to be expressible (every uniform one is):
/// a refusal comes back as `{"error": "..."}`, which no transformers version loads as a model.
pub fn export_hf_config(arch: &Architecture) -> Value {
    try_export_hf_config(arch).unwrap_or_else(|e| serde_json::json!({ "error": e.to_string() }))
}

/// A refusal: `field` cannot be written as `family`'s config.
fn refuse(arch: &Architecture, field: &str, expected: impl Into<String>, got: impl std::fmt::Display) -> Error {
    Error::field(format!("export of '{}'", arch.name), field, expected.into(), got)
}

/// `ok`, or the refusal.
fn need(
    arch: &Architecture,
    ok: bool,
    field: &str,
    expected: impl Into<String>,
    got: impl std::fmt::Display,
) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(refuse(arch, field, expected, got))
    }
}

fn model_type(family: Family) -> (&'static str, &'static str) {
    match family {
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
    }
}

/// What the layers hold, for choosing and checking a family.
struct Kinds {
    window: Option<u32>,
    windowed: usize,
    nope: bool,
    no_ffn: bool,
    attention: usize,
    conv: Option<Mixer>,
    deltanet: Option<Mixer>,
    mamba: Option<Mixer>,
}

impl Kinds {
    fn of(arch: &Architecture) -> Result<Kinds> {
        let mut k = Kinds {
            window: None,
            windowed: 0,
            nope: false,
            no_ffn: false,
            attention: 0,
            conv: None,
            deltanet: None,
            mamba: None,
        };
        // One shape per recurrent kind and one window size: configs have one field for each.
        let same = |slot: &mut Option<Mixer>, m: Mixer, field: &str| -> Result<()> {
            match slot {
                Some(s) if *s != m => {
                    Err(refuse(arch, field, format!("one {} shape for every layer", m.label()), "several"))
                }
                _ => {
                    *slot = Some(m);
                    Ok(())
                }
            }
        };
        for l in &arch.layers {
            k.nope |= !l.rope && l.mixer.is_attention();
            k.no_ffn |= !l.ffn;
            match l.mixer {
                Mixer::Global => k.attention += 1,
                Mixer::Window { window } => {
                    k.attention += 1;
                    k.windowed += 1;
                    if k.window.is_some_and(|w| w != window) {
                        return Err(refuse(
                            arch,
                            "sliding_window",
                            "one window size for every windowed layer",
                            "several",
                        ));
                    }
                    k.window = Some(window);
                }
                m @ Mixer::ShortConv { .. } => same(&mut k.conv, m, "conv_L_cache")?,
                m @ Mixer::DeltaNet(_) => same(&mut k.deltanet, m, "linear_attention")?,
                m @ Mixer::Mamba2(_) => same(&mut k.mamba, m, "mamba")?,
            }
        }
        if arch.layers.is_empty() {
            k.attention = arch.num_layers as usize;
        }
        Ok(k)
    }
}

/// The family a config is written as. Transformers' LlamaConfig and DeepseekV2Config reject a
/// hidden size that is not a multiple of the heads even with explicit head sizes; MistralConfig
/// and DeepseekV3Config take it and build the same layers (no sliding window, no biases; a dense
/// DeepSeek-V3 has no router), so such shapes are written as those. Layers the family cannot
/// build pick the family that can: Gated DeltaNet qwen3_5_text (dense) or qwen3_next (MoE),
/// Mamba2 granitemoehybrid (or mamba2 without FFNs), short convolutions lfm2, NoPE or a window
/// pattern on a llama-like stack smollm3, one window on every layer mistral.
pub fn export_family(arch: &Architecture) -> Result<Family> {
    let k = Kinds::of(arch)?;
    let n = arch.num_layers as usize;
    let uniform_window = k.windowed == n;
    let family = if k.deltanet.is_some() {
        match (arch.ffn, arch.family) {
            (Ffn::Moe(_), _) | (_, Family::Qwen3Next) => Family::Qwen3Next,
            _ => Family::Qwen35Text,
        }
    } else if k.mamba.is_some() {
        if k.attention == 0 && arch.layers.iter().all(|l| !l.ffn) {
            Family::Mamba2
        } else {
            Family::GraniteMoeHybrid
        }
    } else if k.conv.is_some() {
        Family::Lfm2
    } else {
        match arch.family {
            Family::Llama | Family::Mistral => {
                let biased = arch.qkv_bias || arch.o_bias || matches!(arch.ffn, Ffn::Dense { bias: true, .. });
                if k.nope || (k.windowed > 0 && (!uniform_window || biased)) {
                    Family::SmolLm3
                } else if k.windowed > 0 {
                    Family::Mistral
                } else {
                    classic_family(arch)
                }
            }
            // No layer needs Mamba2's own class any more: the attention-only stack it describes
            // is refused below.
            f if hybrid_family(f) => f,
            _ => classic_family(arch),
        }
    };
    check(arch, family, &k)?;
    Ok(family)
}

/// Uniform (or windowed) stacks of the first eight families, as before.
fn classic_family(arch: &Architecture) -> Family {
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

/// Refuses what `family`'s transformers class would build differently.
fn check(arch: &Architecture, family: Family, k: &Kinds) -> Result<()> {
    let (mt, _) = model_type(family);
    let at = |what: &str| format!("{what} ({mt})");
    check_layers(arch, family, k, &at)?;
    if !hybrid_family(family) {
        // Checked as before: the first eight families' exports are unchanged.
        return Ok(());
    }
    check_hybrid_attention(arch, family, k, &at)?;
    check_hybrid_ffn(arch, family, &at)
}

/// [`check`]'s layers: only the kinds the class builds.
fn check_layers(arch: &Architecture, family: Family, k: &Kinds, at: &dyn Fn(&str) -> String) -> Result<()> {
    let n = arch.num_layers as usize;
    let windows_ok = match family {
        Family::Gemma3Text | Family::GptOss | Family::SmolLm3 | Family::Qwen2 | Family::Qwen3 | Family::Gemma2 => true,
        Family::Mistral | Family::Phi3 => k.windowed == 0 || k.windowed == n,
        _ => false,
    };
    need(
        arch,
        k.windowed == 0 || windows_ok,
        "sliding_window",
        at("no windowed layers, or a window on every layer only"),
        k.windowed,
    )?;
    let nope_ok = match family {
        Family::SmolLm3 => true,
        // Granite turns RoPE on or off for every attention layer at once.
        Family::GraniteMoeHybrid => {
            let ropes: Vec<bool> = arch.layers.iter().filter(|l| l.mixer.is_attention()).map(|l| l.rope).collect();
            ropes.iter().all(|&r| r == ropes[0])
        }
        _ => !k.nope,
    };
    need(arch, nope_ok, "layers.rope", at("RoPE on every attention layer, or on none"), "NoPE layers")?;
    need(
        arch,
        !k.no_ffn || family == Family::Mamba2,
        "layers.ffn",
        at("an FFN after every mixer"),
        "layers without one",
    )?;
    if family == Family::Mamba2 {
        let only_mamba = k.mamba.is_some() && k.attention == 0;
        need(arch, only_mamba, "layers", at("Mamba2 layers only"), "other layers")?;
        need(arch, arch.layers.iter().all(|l| !l.ffn && l.rope), "layers.ffn", at("no FFN in any layer"), "some")?;
    }
    let recurrent_ok = |slot: &Option<Mixer>, fam: &[Family]| slot.is_none() || fam.contains(&family);
    need(arch, recurrent_ok(&k.conv, &[Family::Lfm2]), "layers", at("no short convolutions"), "conv layers")?;
    need(
        arch,
        recurrent_ok(&k.deltanet, &[Family::Qwen3Next, Family::Qwen35Text]),
        "layers",
        at("no Gated DeltaNet"),
        "deltanet layers",
    )?;
    need(
        arch,
        recurrent_ok(&k.mamba, &[Family::GraniteMoeHybrid, Family::Mamba2]),
        "layers",
        at("no Mamba2 layers"),
        "mamba2 layers",
    )?;
    Ok(())
}

/// [`check`]'s attention, norms and biases for the hybrid families.
fn check_hybrid_attention(arch: &Architecture, family: Family, k: &Kinds, at: &dyn Fn(&str) -> String) -> Result<()> {
    let Attention::Grouped { num_heads, head_dim, .. } = arch.attention else {
        return Err(refuse(arch, "attention", at("grouped attention (no MLA)"), "mla"));
    };
    let wants_qk_norm = matches!(family, Family::Gemma3Text | Family::Lfm2 | Family::Qwen3Next | Family::Qwen35Text);
    need(arch, arch.qk_norm == wants_qk_norm, "qk_norm", at(&wants_qk_norm.to_string()), arch.qk_norm)?;
    let wants_gate = matches!(family, Family::Qwen3Next | Family::Qwen35Text);
    need(
        arch,
        arch.attn_output_gate == wants_gate,
        "attn_output_gate",
        at(&wants_gate.to_string()),
        arch.attn_output_gate,
    )?;
    let wants_sinks = family == Family::GptOss;
    need(
        arch,
        arch.attention_sinks == wants_sinks,
        "attention_sinks",
        at(&wants_sinks.to_string()),
        arch.attention_sinks,
    )?;
    let norms = if family == Family::Gemma3Text { 4 } else { 2 };
    need(arch, arch.norms_per_layer == norms, "norms_per_layer", at(&norms.to_string()), arch.norms_per_layer)?;
    // attention_bias covers q, k, v and o together; LFM2 and Mamba2 have none.
    let bias_ok = if matches!(family, Family::Lfm2 | Family::Mamba2) {
        !arch.qkv_bias && !arch.o_bias
    } else {
        arch.qkv_bias == arch.o_bias
    };
    need(arch, bias_ok, "qkv_bias", at("the same as o_bias (one attention_bias)"), arch.qkv_bias)?;
    if family == Family::Gemma3Text {
        need(
            arch,
            arch.hidden_size % num_heads == 0,
            "num_attention_heads",
            at("a divisor of hidden_size"),
            num_heads,
        )?;
    }
    if family == Family::Mamba2 {
        need(
            arch,
            arch.hidden_size % num_heads == 0 && head_dim == arch.hidden_size / num_heads,
            "head_dim",
            at("hidden_size / num_attention_heads (mamba2 has no attention head size)"),
            head_dim,
        )?;
    }
    if let Some(Mixer::Mamba2(m)) = k.mamba {
        {
            need(
                arch,
                m.inner() % arch.hidden_size as u64 == 0,
                "mamba_expand",
                at("an integer: Mamba2's inner width a multiple of hidden_size"),
                format!("{} / {}", m.inner(), arch.hidden_size),
            )?;
        }
    }
    Ok(())
}

/// [`check`]'s FFN for the hybrid families: dense, or the experts the class builds.
fn check_hybrid_ffn(arch: &Architecture, family: Family, at: &dyn Fn(&str) -> String) -> Result<()> {
    match arch.ffn {
        Ffn::Dense { gated, bias, activation, .. } => {
            need(arch, gated, "ffn.gated", at("a gated FFN"), gated)?;
            need(arch, !bias || family == Family::SmolLm3, "ffn.bias", at("no FFN biases"), bias)?;
            need(arch, family != Family::GptOss, "ffn", at("mixture of experts"), "dense")?;
            let silu = matches!(family, Family::Lfm2) && activation != crate::arch::Activation::Silu;
            need(arch, !silu, "hidden_act", at("silu"), activation.hf_name())?;
        }
        Ffn::Moe(m) => {
            let (router, experts, shared, gate, dense_first) = match family {
                Family::GptOss => (true, true, false, false, false),
                Family::Qwen3Next => (false, false, true, true, true),
                Family::GraniteMoeHybrid => (false, false, true, false, false),
                _ => return Err(refuse(arch, "ffn", at("a dense FFN"), "mixture of experts")),
            };
            need(arch, m.router_bias == router, "router_bias", at(&router.to_string()), m.router_bias)?;
            need(arch, m.expert_bias == experts, "expert_bias", at(&experts.to_string()), m.expert_bias)?;
            need(
                arch,
                m.shared_expert_gate == gate,
                "shared_expert_gate",
                at(&gate.to_string()),
                m.shared_expert_gate,
            )?;
            let shared_ok = if shared { m.num_shared_experts > 0 } else { m.num_shared_experts == 0 };
            let want = if shared { "at least one shared expert" } else { "no shared experts" };
            need(arch, shared_ok, "num_shared_experts", at(want), m.num_shared_experts)?;
            need(arch, dense_first || m.first_k_dense == 0, "first_k_dense", at("0"), m.first_k_dense)?;
            let unused = dense_first || m.dense_intermediate_size == 0;
            need(arch, unused, "dense_intermediate_size", at("0 (no dense layers)"), m.dense_intermediate_size)?;
            let silu = family == Family::GptOss && m.activation != crate::arch::Activation::Silu;
            need(arch, !silu, "hidden_act", at("silu"), m.activation.hf_name())?;
        }
    }
    Ok(())
}

fn put(m: &mut Map<String, Value>, k: &str, v: impl Into<Value>) {
    m.insert(k.to_string(), v.into());
}

/// One `layer_types` entry per layer.
fn types(arch: &Architecture, name: impl Fn(Layer) -> &'static str) -> Value {
    Value::Array((0..arch.num_layers).map(|i| Value::from(name(arch.layer(i)))).collect())
}

/// The keys every family writes the same way: its class, sizes and embeddings.
fn common_keys(arch: &Architecture, family: Family) -> Map<String, Value> {
    let mut m = Map::new();
    let (model_type, class) = model_type(family);
    put(&mut m, "model_type", model_type);
    put(&mut m, "architectures", Value::Array(vec![class.into()]));
    put(&mut m, "hidden_size", arch.hidden_size);
    put(&mut m, "num_hidden_layers", arch.num_layers);
    put(&mut m, "vocab_size", arch.vocab_size);
    put(&mut m, "tie_word_embeddings", arch.tie_embeddings);
    put(&mut m, "max_position_embeddings", arch.max_position_embeddings);
    m
}

/// The eight families read before hybrids: unchanged for uniform stacks; windows written so
/// that transformers builds them.
fn classic_config(arch: &Architecture, family: Family) -> Value {
    let mut m = common_keys(arch, family);
    let windows: Vec<Option<u32>> = arch.layers.iter().map(|l| l.mixer.window()).collect();
    let window_types =
        || types(arch, |l| if l.mixer.window().is_some() { "sliding_attention" } else { "full_attention" });
    if let Some(w) = windows.iter().flatten().next() {
        put(&mut m, "sliding_window", *w);
        // Qwen turns windows on with use_sliding_window; Gemma 2 alternates unless told.
        if matches!(family, Family::Qwen2 | Family::Qwen3 | Family::Gemma2) {
            put(&mut m, "layer_types", window_types());
            if family != Family::Gemma2 {
                put(&mut m, "use_sliding_window", true);
                let first = windows.iter().position(|w| w.is_some()).unwrap_or(0);
                put(&mut m, "max_window_layers", first as u32);
            }
        } else if windows.iter().any(|x| x.is_none()) {
            put(&mut m, "layer_types", window_types());
        }
    } else if family == Family::Gemma2 {
        // Gemma 2's defaults are a 4096 window on every other layer.
        put(&mut m, "sliding_window", Value::Null);
        put(&mut m, "layer_types", window_types());
    }
    put(&mut m, "rope_theta", arch.rope_theta);
    put(&mut m, "rms_norm_eps", arch.norm_eps);
    put(&mut m, "torch_dtype", "bfloat16");
    match arch.attention {
        Attention::Grouped { num_heads, num_kv_heads, head_dim } => {
            put(&mut m, "num_attention_heads", num_heads);
            put(&mut m, "num_key_value_heads", num_kv_heads);
            put(&mut m, "head_dim", head_dim);
        }
        Attention::Latent(mla) => {
            put(&mut m, "num_attention_heads", mla.num_heads);
            put(&mut m, "num_key_value_heads", mla.num_heads);
            put(&mut m, "kv_lora_rank", mla.kv_lora_rank);
            put(&mut m, "q_lora_rank", mla.q_lora_rank.map_or(Value::Null, Value::from));
            put(&mut m, "qk_nope_head_dim", mla.qk_nope_head_dim);
            put(&mut m, "qk_rope_head_dim", mla.qk_rope_head_dim);
            put(&mut m, "v_head_dim", mla.v_head_dim);
            put(&mut m, "attention_bias", false);
        }
    }
    if matches!(family, Family::Llama | Family::Qwen3) {
        put(&mut m, "attention_bias", arch.qkv_bias);
    }
    // Mistral and Qwen attend through a sliding window by default in some versions: none here.
    if matches!(family, Family::Mistral | Family::Qwen2 | Family::Qwen3) && windows.is_empty() {
        put(&mut m, "sliding_window", Value::Null);
        if family != Family::Mistral {
            put(&mut m, "use_sliding_window", false);
        }
    }
    let act_key = if family == Family::Gemma2 { "hidden_activation" } else { "hidden_act" };
    let deepseek = matches!(family, Family::DeepseekV2 | Family::DeepseekV3);
    match arch.ffn {
        Ffn::Dense { intermediate_size, activation, bias, .. } => {
            put(&mut m, "intermediate_size", intermediate_size);
            put(&mut m, act_key, activation.hf_name());
            if matches!(family, Family::Llama | Family::DeepseekV2 | Family::DeepseekV3) {
                put(&mut m, "mlp_bias", bias);
            }
            if deepseek {
                // Transformers' DeepSeek defaults are 64 routed and 2 shared experts from layer
                // 0 on: a dense model says "no experts, every layer dense" in so many words.
                put(&mut m, "n_routed_experts", 0);
                put(&mut m, "n_shared_experts", 0);
                put(&mut m, "first_k_dense_replace", arch.num_layers);
                put(&mut m, "moe_layer_freq", 1);
            }
        }
        Ffn::Moe(moe) => {
            put(&mut m, "intermediate_size", moe.dense_intermediate_size);
            put(&mut m, act_key, moe.activation.hf_name());
            put(&mut m, "n_routed_experts", moe.num_experts);
            put(&mut m, "num_experts_per_tok", moe.experts_per_token);
            put(&mut m, "n_shared_experts", moe.num_shared_experts);
            put(&mut m, "moe_intermediate_size", moe.expert_intermediate_size);
            put(&mut m, "first_k_dense_replace", moe.first_k_dense);
            put(&mut m, "moe_layer_freq", 1);
            put(&mut m, "mlp_bias", false);
        }
    }
    Value::Object(m)
}

/// The hybrid families (checked by [`check`] first).
fn hybrid_config(arch: &Architecture, family: Family) -> Result<Value> {
    let mut m = common_keys(arch, family);
    put(&mut m, "rope_theta", arch.rope_theta);
    let eps_key = match family {
        Family::Lfm2 => "norm_eps",
        Family::Mamba2 => "layer_norm_epsilon",
        _ => "rms_norm_eps",
    };
    put(&mut m, eps_key, arch.norm_eps);
    put(&mut m, "torch_dtype", "bfloat16");
    let Attention::Grouped { num_heads, num_kv_heads, head_dim } = arch.attention else {
        return Err(refuse(arch, "attention", "grouped attention", "mla"));
    };
    put(&mut m, "num_attention_heads", num_heads);
    put(&mut m, "num_key_value_heads", num_kv_heads);
    if family != Family::Mamba2 {
        put(&mut m, "head_dim", head_dim);
    }
    if !matches!(family, Family::Lfm2 | Family::Mamba2) {
        put(&mut m, "attention_bias", arch.qkv_bias);
    }
    let activation = match arch.ffn {
        Ffn::Dense { activation, .. } => activation,
        Ffn::Moe(moe) => moe.activation,
    };
    let act_key = if family == Family::Gemma3Text { "hidden_activation" } else { "hidden_act" };
    put(&mut m, act_key, activation.hf_name());
    put_hybrid_layers(&mut m, arch, family);
    put_hybrid_ffn(&mut m, arch, family);
    Ok(Value::Object(m))
}

/// The hybrid families' layer pattern and the shapes of their recurrent mixers.
fn put_hybrid_layers(m: &mut Map<String, Value>, arch: &Architecture, family: Family) {
    let window = arch.layers.iter().find_map(|l| l.mixer.window());
    let window_types =
        || types(arch, |l| if l.mixer.window().is_some() { "sliding_attention" } else { "full_attention" });
    match family {
        Family::Gemma3Text | Family::GptOss => {
            put(m, "sliding_window", window.map_or(Value::Null, Value::from));
            put(m, "layer_types", window_types());
        }
        Family::SmolLm3 => {
            put(m, "sliding_window", window.map_or(Value::Null, Value::from));
            put(m, "use_sliding_window", window.is_some());
            put(m, "layer_types", window_types());
            let rope = (0..arch.num_layers).map(|i| Value::from(arch.layer(i).rope as u32)).collect();
            put(m, "no_rope_layers", Value::Array(rope));
        }
        Family::Lfm2 => {
            put(m, "layer_types", types(arch, |l| if l.mixer.is_attention() { "full_attention" } else { "conv" }));
            let kernel = arch.layers.iter().find_map(|l| match l.mixer {
                Mixer::ShortConv { kernel } => Some(kernel),
                _ => None,
            });
            put(m, "conv_L_cache", kernel.unwrap_or(3));
            put(m, "conv_bias", false);
            put(m, "block_auto_adjust_ff_dim", false);
        }
        Family::Qwen3Next | Family::Qwen35Text => {
            put(
                m,
                "layer_types",
                types(arch, |l| if l.mixer.is_attention() { "full_attention" } else { "linear_attention" }),
            );
            if let Some(g) = arch.layers.iter().find_map(|l| match l.mixer {
                Mixer::DeltaNet(g) => Some(g),
                _ => None,
            }) {
                put(m, "linear_num_key_heads", g.key_heads);
                put(m, "linear_num_value_heads", g.value_heads);
                put(m, "linear_key_head_dim", g.key_head_dim);
                put(m, "linear_value_head_dim", g.value_head_dim);
                put(m, "linear_conv_kernel_dim", g.conv_kernel);
            }
        }
        Family::GraniteMoeHybrid => {
            put(m, "layer_types", types(arch, |l| if l.mixer.is_attention() { "attention" } else { "mamba" }));
            let rope = arch.layers.iter().filter(|l| l.mixer.is_attention()).all(|l| l.rope);
            put(m, "position_embedding_type", if rope { "rope" } else { "nope" });
            let mamba = arch.layers.iter().find_map(|l| match l.mixer {
                Mixer::Mamba2(x) => Some(x),
                _ => None,
            });
            // Without Mamba2 layers the class still checks its Mamba2 shape: a valid one.
            let (heads, head_dim, state, groups, conv, bias, expand) = match mamba {
                Some(x) => (
                    x.heads,
                    x.head_dim,
                    x.state_size,
                    x.groups,
                    x.conv_kernel,
                    x.conv_bias,
                    (x.inner() / arch.hidden_size as u64) as u32,
                ),
                None => (1, arch.hidden_size, 128, 1, 4, true, 1),
            };
            put(m, "mamba_n_heads", heads);
            put(m, "mamba_d_head", head_dim);
            put(m, "mamba_d_state", state);
            put(m, "mamba_n_groups", groups);
            put(m, "mamba_d_conv", conv);
            put(m, "mamba_conv_bias", bias);
            put(m, "mamba_expand", expand);
            put(m, "mamba_proj_bias", false);
        }
        Family::Mamba2 => {
            if let Some(Mixer::Mamba2(x)) = arch.layers.first().map(|l| l.mixer) {
                put(m, "num_heads", x.heads);
                put(m, "head_dim", x.head_dim);
                put(m, "state_size", x.state_size);
                put(m, "n_groups", x.groups);
                put(m, "conv_kernel", x.conv_kernel);
                put(m, "use_conv_bias", x.conv_bias);
                put(m, "expand", (x.inner() / arch.hidden_size as u64) as u32);
                put(m, "use_bias", false);
            }
        }
        _ => {}
    }
}

/// The hybrid families' FFN: dense sizes, or experts under each class's names.
fn put_hybrid_ffn(m: &mut Map<String, Value>, arch: &Architecture, family: Family) {
    match arch.ffn {
        Ffn::Dense { intermediate_size, bias, .. } => match family {
            Family::GraniteMoeHybrid => {
                put(m, "num_local_experts", 0);
                put(m, "num_experts_per_tok", 0);
                put(m, "shared_intermediate_size", intermediate_size);
                put(m, "intermediate_size", intermediate_size);
            }
            Family::Qwen3Next => {
                put(m, "num_experts", 0);
                put(m, "intermediate_size", intermediate_size);
            }
            Family::SmolLm3 => {
                put(m, "intermediate_size", intermediate_size);
                put(m, "mlp_bias", bias);
            }
            _ => put(m, "intermediate_size", intermediate_size),
        },
        Ffn::Moe(moe) => {
            let shared = moe.num_shared_experts * moe.expert_intermediate_size;
            put(m, "num_experts_per_tok", moe.experts_per_token);
            match family {
                Family::GptOss => {
                    put(m, "num_local_experts", moe.num_experts);
                    put(m, "intermediate_size", moe.expert_intermediate_size);
                }
                Family::Qwen3Next => {
                    put(m, "num_experts", moe.num_experts);
                    put(m, "moe_intermediate_size", moe.expert_intermediate_size);
                    put(m, "shared_expert_intermediate_size", shared);
                    put(m, "intermediate_size", moe.dense_intermediate_size);
                    put(m, "decoder_sparse_step", 1);
                    put(m, "mlp_only_layers", Value::Array((0..moe.first_k_dense).map(Value::from).collect()));
                }
                _ => {
                    put(m, "num_local_experts", moe.num_experts);
                    put(m, "intermediate_size", moe.expert_intermediate_size);
                    put(m, "shared_intermediate_size", shared);
                }
            }
        }
    }
}
