//! The families whose layers differ (gemma3_text, lfm2, smollm3, gpt_oss, qwen3_next,
//! qwen3_5_text, granitemoehybrid, mamba2), read as transformers 5 builds them: every absent
//! field takes its configuration class's default (`models/<family>/configuration_*.py`), and
//! every field that would build something the architecture cannot express is refused.

use super::{activation_named, head_dim_of, Fields};
use crate::arch::{Activation, Architecture, Attention, DeltaNet, Family, Ffn, Layer, Mamba2, Mixer, Moe};
use crate::error::{Error, Result};
use serde_json::Value;

/// Transformers' defaults of one family's configuration class.
struct Defaults {
    /// `None`: as many KV heads as query heads.
    kv_heads: Option<u32>,
    /// `None`: hidden / heads.
    head_dim: Option<u32>,
    tie: bool,
    rope_theta: f64,
    eps_key: &'static str,
    eps: f64,
    max_positions: u32,
}

fn defaults(family: Family) -> Defaults {
    let d = |kv_heads, head_dim, tie, rope_theta, eps_key, eps, max_positions| Defaults {
        kv_heads,
        head_dim,
        tie,
        rope_theta,
        eps_key,
        eps,
        max_positions,
    };
    match family {
        Family::Gemma3Text => d(Some(4), Some(256), true, 1e6, "rms_norm_eps", 1e-6, 131_072),
        Family::Lfm2 => d(Some(8), None, true, 1e6, "norm_eps", 1e-5, 128_000),
        Family::SmolLm3 => d(Some(4), None, true, 2e6, "rms_norm_eps", 1e-6, 32_768),
        Family::GptOss => d(Some(8), Some(64), false, 150_000.0, "rms_norm_eps", 1e-5, 131_072),
        Family::Qwen3Next => d(Some(2), Some(256), false, 10_000.0, "rms_norm_eps", 1e-6, 32_768),
        Family::Qwen35Text => d(Some(4), Some(256), false, 10_000.0, "rms_norm_eps", 1e-6, 32_768),
        Family::GraniteMoeHybrid => d(None, None, false, 10_000.0, "rms_norm_eps", 1e-6, 2048),
        // Mamba2Config has no attention and no context length: these are placeholders.
        _ => d(None, None, false, 10_000.0, "layer_norm_epsilon", 1e-5, 4096),
    }
}

/// Reads a config of one of the families above (hidden size, layers and vocabulary already
/// read and bounded).
pub(super) fn parse(
    cfg: &Fields,
    family: Family,
    name: &str,
    hidden_size: u32,
    num_layers: u32,
    vocab_size: u32,
) -> Result<Architecture> {
    let source = cfg.source;
    let def = defaults(family);
    let attention = if family == Family::Mamba2 {
        // No attention layer: the shape is kept only so that an exported model reads back whole.
        let num_heads = cfg.optional_positive("num_attention_heads")?.unwrap_or(1);
        let num_kv_heads = cfg.optional_positive("num_key_value_heads")?.unwrap_or(num_heads);
        if hidden_size % num_heads != 0 {
            return Err(Error::field(
                source,
                "num_attention_heads",
                format!("a divisor of hidden_size ({hidden_size})"),
                num_heads,
            ));
        }
        Attention::Grouped { num_heads, num_kv_heads, head_dim: hidden_size / num_heads }
    } else {
        let num_heads = cfg.positive("num_attention_heads")?;
        let num_kv_heads = cfg.optional_positive("num_key_value_heads")?.or(def.kv_heads).unwrap_or(num_heads);
        Attention::Grouped {
            num_heads,
            num_kv_heads,
            head_dim: head_dim_of(cfg, hidden_size, num_heads, def.head_dim)?,
        }
    };
    // Gemma 3's activation has its own key; LFM2 and gpt-oss hard-code SiLU (gpt-oss clamps it).
    let activation = match family {
        Family::Gemma3Text => activation_named(cfg, "hidden_activation", "gelu_pytorch_tanh")?,
        Family::Lfm2 | Family::GptOss => Activation::Silu,
        _ => activation_named(cfg, "hidden_act", "silu")?,
    };
    let attention_bias = cfg.optional_bool("attention_bias")?.unwrap_or(family == Family::GptOss);
    if family == Family::Lfm2 && cfg.optional_bool("conv_bias")? == Some(true) {
        return Err(Error::field(source, "conv_bias", "false (no LFM2 model has convolution biases)", true));
    }
    let tie = match family {
        // LFM2 also takes `tie_embedding`, which wins.
        Family::Lfm2 => cfg.optional_bool("tie_embedding")?,
        _ => None,
    };
    let tie = match tie {
        Some(t) => t,
        None => cfg.optional_bool("tie_word_embeddings")?.unwrap_or(def.tie),
    };
    let layers = layers_of(cfg, family, num_layers, hidden_size)?;
    let ffn = ffn_of(cfg, family, num_layers, hidden_size, activation)?;
    let rope_theta = match family {
        Family::Gemma3Text => match cfg.optional_f64("rope_theta")? {
            Some(t) => Some(t),
            None => cfg.nested_f64("rope_parameters", "full_attention", "rope_theta")?,
        },
        _ => match cfg.optional_f64("rope_theta")? {
            Some(t) => Some(t),
            None => cfg.rope_parameters_theta()?,
        },
    };
    let arch = Architecture {
        name: name.to_string(),
        family,
        num_layers,
        hidden_size,
        vocab_size,
        tie_embeddings: tie,
        attention,
        ffn,
        qkv_bias: attention_bias,
        o_bias: attention_bias,
        qk_norm: matches!(family, Family::Gemma3Text | Family::Lfm2 | Family::Qwen3Next | Family::Qwen35Text),
        attn_output_gate: matches!(family, Family::Qwen3Next | Family::Qwen35Text),
        attention_sinks: family == Family::GptOss,
        norms_per_layer: if family == Family::Gemma3Text { 4 } else { 2 },
        max_position_embeddings: cfg.optional_positive("max_position_embeddings")?.unwrap_or(def.max_positions),
        layers,
        rope_theta: rope_theta.unwrap_or(def.rope_theta),
        norm_eps: cfg.optional_f64(def.eps_key)?.unwrap_or(def.eps),
    };
    if matches!(family, Family::Mamba2 | Family::Lfm2) && attention_bias {
        return Err(Error::field(source, "attention_bias", "false (this family's attention has no biases)", true));
    }
    arch.validate(source)?;
    Ok(arch)
}

/// `layer_types` as a list of one string per layer, or `None` when absent.
fn layer_types(cfg: &Fields, num_layers: u32) -> Result<Option<Vec<String>>> {
    let source = cfg.source;
    let Some(v) = cfg.get("layer_types") else { return Ok(None) };
    let list = v.as_array().ok_or_else(|| Error::field(source, "layer_types", "a list of layer kinds", v))?;
    if list.len() != num_layers as usize {
        return Err(Error::field(
            source,
            "layer_types",
            format!("one entry per layer ({num_layers})"),
            format!("{} entries", list.len()),
        ));
    }
    list.iter()
        .map(|t| t.as_str().map(str::to_string).ok_or_else(|| Error::field(source, "layer_types", "strings", t)))
        .collect::<Result<Vec<_>>>()
        .map(Some)
}

/// A list of non-negative integers (`full_attn_idxs`, `no_rope_layers`, `mlp_only_layers`).
fn int_list(cfg: &Fields, key: &str) -> Result<Option<Vec<u64>>> {
    let source = cfg.source;
    let Some(v) = cfg.get(key) else { return Ok(None) };
    let list = v.as_array().ok_or_else(|| Error::field(source, key, "a list of integers", v))?;
    list.iter()
        .map(|x| x.as_u64().ok_or_else(|| Error::field(source, key, "a list of non-negative integers", x)))
        .collect::<Result<Vec<_>>>()
        .map(Some)
}

/// A period (`sliding_window_pattern`, `full_attention_interval`, ...): positive, default `d`.
fn period(cfg: &Fields, key: &str, d: u32) -> Result<u32> {
    Ok(cfg.optional_positive(key)?.unwrap_or(d))
}

/// The sliding window: `default` when the key is absent, none when it is null.
fn window(cfg: &Fields, default: Option<u32>) -> Result<Option<u32>> {
    if cfg.map.contains_key("sliding_window") {
        cfg.optional_positive("sliding_window")
    } else {
        Ok(default)
    }
}

/// Maps `layer_types` entries through `kind`, naming the accepted values on a stray one.
fn map_types(
    cfg: &Fields,
    types: &[String],
    accepted: &str,
    kind: impl Fn(&str) -> Option<Layer>,
) -> Result<Vec<Layer>> {
    types
        .iter()
        .map(|t| kind(t).ok_or_else(|| Error::field(cfg.source, "layer_types", format!("{accepted} entries"), t)))
        .collect()
}

/// Each layer's kind, as the family's configuration class derives it; empty when every layer is
/// global attention with RoPE and an FFN.
fn layers_of(cfg: &Fields, family: Family, num_layers: u32, hidden: u32) -> Result<Vec<Layer>> {
    let types = layer_types(cfg, num_layers)?;
    let layers: Vec<Layer> = match family {
        Family::Gemma3Text | Family::GptOss => windowed_layers(cfg, family, num_layers, types)?,
        Family::Lfm2 => lfm2_layers(cfg, num_layers, types)?,
        Family::SmolLm3 => smollm3_layers(cfg, num_layers, types)?,
        Family::Qwen3Next | Family::Qwen35Text => deltanet_layers(cfg, num_layers, types)?,
        Family::GraniteMoeHybrid => granite_layers(cfg, num_layers, hidden, types)?,
        Family::Mamba2 => mamba2_layers(cfg, num_layers, hidden)?,
        other => return Err(not_hybrid(cfg, other)),
    };
    Ok(if layers.iter().all(|l| *l == Layer::GLOBAL) { Vec::new() } else { layers })
}

/// `full_attention` and `sliding_attention` entries: global, or windowed when a window is set.
fn attention_kind(window: Option<u32>) -> impl Fn(&str) -> Option<Layer> {
    move |t: &str| match t {
        "full_attention" => Some(Layer::GLOBAL),
        "sliding_attention" => Some(window.map_or(Layer::GLOBAL, |w| Layer::of(Mixer::Window { window: w }))),
        _ => None,
    }
}

/// Gemma 3 and gpt-oss: windowed attention with a full layer every `period` layers.
fn windowed_layers(cfg: &Fields, family: Family, num_layers: u32, types: Option<Vec<String>>) -> Result<Vec<Layer>> {
    let n = num_layers as usize;
    if cfg.optional_bool("use_bidirectional_attention")? == Some(true) {
        return Err(Error::field(cfg.source, "use_bidirectional_attention", "false (a causal decoder)", true));
    }
    let (w, period) = if family == Family::GptOss {
        (window(cfg, Some(128))?, 2)
    } else {
        (window(cfg, Some(4096))?, period(cfg, "sliding_window_pattern", 6)?)
    };
    let types = types.unwrap_or_else(|| {
        (0..n)
            .map(|i| if (i + 1) % period as usize != 0 { "sliding_attention" } else { "full_attention" }.into())
            .collect()
    });
    map_types(cfg, &types, "full_attention or sliding_attention", attention_kind(w))
}

/// LFM2: short convolutions, with attention where `layer_types` or `full_attn_idxs` says.
fn lfm2_layers(cfg: &Fields, num_layers: u32, types: Option<Vec<String>>) -> Result<Vec<Layer>> {
    let n = num_layers as usize;
    let conv = Layer::of(Mixer::ShortConv { kernel: period(cfg, "conv_L_cache", 3)? });
    Ok(match (types, int_list(cfg, "full_attn_idxs")?) {
        (Some(types), _) => map_types(cfg, &types, "conv or full_attention", |t| match t {
            "conv" => Some(conv),
            "full_attention" => Some(Layer::GLOBAL),
            _ => None,
        })?,
        (None, Some(idxs)) => {
            if let Some(&bad) = idxs.iter().find(|&&i| i >= num_layers as u64) {
                return Err(Error::field(
                    cfg.source,
                    "full_attn_idxs",
                    format!("layer indices below num_hidden_layers ({num_layers})"),
                    bad,
                ));
            }
            (0..n).map(|i| if idxs.contains(&(i as u64)) { Layer::GLOBAL } else { conv }).collect()
        }
        // Neither: transformers makes every layer attention.
        (None, None) => vec![Layer::GLOBAL; n],
    })
}

/// SmolLM3: NoPE layers from `no_rope_layers` (or every `no_rope_layer_interval`-th), windows
/// only where `use_sliding_window` is set and the layer is a sliding one.
fn smollm3_layers(cfg: &Fields, num_layers: u32, types: Option<Vec<String>>) -> Result<Vec<Layer>> {
    let n = num_layers as usize;
    let rope: Vec<bool> = match int_list(cfg, "no_rope_layers")? {
        Some(list) => {
            if list.len() < n || list.iter().any(|&x| x > 1) {
                return Err(Error::field(
                    cfg.source,
                    "no_rope_layers",
                    format!("at least {n} entries of 0 (NoPE) or 1 (RoPE)"),
                    cfg.get("no_rope_layers").unwrap(),
                ));
            }
            list.iter().take(n).map(|&x| x == 1).collect()
        }
        None => {
            let every = period(cfg, "no_rope_layer_interval", 4)? as usize;
            (0..n).map(|i| (i + 1) % every != 0).collect()
        }
    };
    let sliding = cfg.optional_bool("use_sliding_window")?.unwrap_or(false);
    let w = window(cfg, None)?.filter(|_| sliding);
    let types = types.unwrap_or_else(|| {
        rope.iter().map(|&r| if w.is_some() && !r { "sliding_attention" } else { "full_attention" }.into()).collect()
    });
    let mut layers = map_types(cfg, &types, "full_attention or sliding_attention", attention_kind(w))?;
    for (l, r) in layers.iter_mut().zip(rope) {
        l.rope = r;
    }
    Ok(layers)
}

/// Qwen3-Next and Qwen3.5: Gated DeltaNet with a full attention layer every
/// `full_attention_interval` layers.
fn deltanet_layers(cfg: &Fields, num_layers: u32, types: Option<Vec<String>>) -> Result<Vec<Layer>> {
    let g = DeltaNet {
        key_heads: period(cfg, "linear_num_key_heads", 16)?,
        value_heads: period(cfg, "linear_num_value_heads", 32)?,
        key_head_dim: period(cfg, "linear_key_head_dim", 128)?,
        value_head_dim: period(cfg, "linear_value_head_dim", 128)?,
        conv_kernel: period(cfg, "linear_conv_kernel_dim", 4)?,
    };
    let linear = Layer::of(Mixer::DeltaNet(g));
    Ok(match types {
        Some(types) => map_types(cfg, &types, "linear_attention or full_attention", |t| match t {
            "linear_attention" => Some(linear),
            "full_attention" => Some(Layer::GLOBAL),
            _ => None,
        })?,
        None => {
            let every = period(cfg, "full_attention_interval", 4)? as usize;
            (0..num_layers as usize).map(|i| if (i + 1) % every != 0 { linear } else { Layer::GLOBAL }).collect()
        }
    })
}

/// Granite 4.0-H: Mamba2 layers and attention layers that all use RoPE or none does.
fn granite_layers(cfg: &Fields, num_layers: u32, hidden: u32, types: Option<Vec<String>>) -> Result<Vec<Layer>> {
    let m = granite_mamba(cfg, hidden)?;
    let rope = match cfg.optional_string("position_embedding_type")?.as_deref() {
        Some("rope") => true,
        None | Some("nope") => false,
        Some(other) => return Err(Error::field(cfg.source, "position_embedding_type", "rope, nope or null", other)),
    };
    let mamba = Layer::of(Mixer::Mamba2(m));
    let attn = Layer { mixer: Mixer::Global, rope, ffn: true };
    Ok(match types {
        Some(types) => {
            map_types(cfg, &types, "mamba or attention (linear_attention or full_attention)", |t| match t {
                "mamba" | "linear_attention" => Some(mamba),
                "attention" | "full_attention" => Some(attn),
                _ => None,
            })?
        }
        // Transformers' default: every layer Mamba2.
        None => vec![mamba; num_layers as usize],
    })
}

/// Mamba2: every layer the same Mamba2 mixer, without an FFN.
fn mamba2_layers(cfg: &Fields, num_layers: u32, hidden: u32) -> Result<Vec<Layer>> {
    let source = cfg.source;
    let expand = period(cfg, "expand", 2)?;
    let m = Mamba2 {
        heads: period(cfg, "num_heads", 128)?,
        head_dim: period(cfg, "head_dim", 64)?,
        state_size: period(cfg, "state_size", 128)?,
        groups: period(cfg, "n_groups", 8)?,
        conv_kernel: period(cfg, "conv_kernel", 4)?,
        conv_bias: cfg.optional_bool("use_conv_bias")?.unwrap_or(true),
    };
    if cfg.optional_bool("use_bias")? == Some(true) {
        return Err(Error::field(source, "use_bias", "false (projections without biases)", true));
    }
    if m.inner() != hidden as u64 * expand as u64 {
        return Err(Error::field(
            source,
            "num_heads",
            format!("num_heads x head_dim = hidden_size x expand ({})", hidden as u64 * expand as u64),
            format!("{} x {}", m.heads, m.head_dim),
        ));
    }
    Ok(vec![Layer { mixer: Mixer::Mamba2(m), rope: true, ffn: false }; num_layers as usize])
}

/// Granite 4.0-H's Mamba2 mixer: inner width `mamba_expand x hidden`, split in `mamba_n_heads`.
fn granite_mamba(cfg: &Fields, hidden: u32) -> Result<Mamba2> {
    let source = cfg.source;
    if cfg.optional_bool("mamba_proj_bias")? == Some(true) {
        return Err(Error::field(source, "mamba_proj_bias", "false (projections without biases)", true));
    }
    let expand = period(cfg, "mamba_expand", 2)? as u64;
    let heads = period(cfg, "mamba_n_heads", 128)?;
    let inner = expand * hidden as u64;
    if inner % heads as u64 != 0 {
        return Err(Error::field(
            source,
            "mamba_n_heads",
            format!("a divisor of mamba_expand x hidden_size ({inner})"),
            heads,
        ));
    }
    let head_dim = match cfg.get("mamba_d_head") {
        None => (inner / heads as u64) as u32,
        Some(Value::String(s)) if s == "auto" => (inner / heads as u64) as u32,
        Some(_) => cfg.positive("mamba_d_head")?,
    };
    if head_dim as u64 * heads as u64 != inner {
        return Err(Error::field(
            source,
            "mamba_d_head",
            format!("mamba_expand x hidden_size / mamba_n_heads ({})", inner / heads as u64),
            head_dim,
        ));
    }
    Ok(Mamba2 {
        heads,
        head_dim,
        state_size: period(cfg, "mamba_d_state", 256)?,
        groups: period(cfg, "mamba_n_groups", 1)?,
        conv_kernel: period(cfg, "mamba_d_conv", 4)?,
        conv_bias: cfg.optional_bool("mamba_conv_bias")?.unwrap_or(true),
    })
}

/// Only the families above come here.
fn not_hybrid(cfg: &Fields, family: Family) -> Error {
    Error::field(cfg.source, "model_type", "a hybrid family", format!("{family:?}"))
}

/// A SwiGLU-style dense FFN without biases.
fn dense(intermediate_size: u32, activation: Activation) -> Ffn {
    Ffn::Dense { intermediate_size, gated: true, activation, bias: false }
}

/// The shared experts a shared MLP of `width` amounts to, in experts of `expert` channels.
fn shared_experts(cfg: &Fields, key: &str, width: u32, expert: u32) -> Result<u32> {
    if width == 0 || width % expert != 0 {
        return Err(Error::field(
            cfg.source,
            key,
            format!("a positive multiple of the expert width ({expert})"),
            width,
        ));
    }
    Ok(width / expert)
}

/// An FFN width: positive, `d` when absent.
fn width(cfg: &Fields, key: &str, d: u32) -> Result<u32> {
    Ok(cfg.optional_positive(key)?.unwrap_or(d))
}

fn ffn_of(cfg: &Fields, family: Family, num_layers: u32, hidden: u32, activation: Activation) -> Result<Ffn> {
    Ok(match family {
        Family::Gemma3Text => dense(width(cfg, "intermediate_size", 9216)?, activation),
        Family::Qwen35Text => dense(width(cfg, "intermediate_size", 12288)?, activation),
        Family::Mamba2 => dense(width(cfg, "intermediate_size", 4 * hidden)?, activation),
        Family::SmolLm3 => Ffn::Dense {
            intermediate_size: width(cfg, "intermediate_size", 11008)?,
            gated: true,
            activation,
            bias: cfg.optional_bool("mlp_bias")?.unwrap_or(false),
        },
        Family::Lfm2 => dense(lfm2_ff_width(cfg)?, activation),
        Family::GptOss => gpt_oss_ffn(cfg, activation)?,
        Family::Qwen3Next => qwen3_next_ffn(cfg, num_layers, activation)?,
        Family::GraniteMoeHybrid => granite_ffn(cfg, activation)?,
        other => return Err(not_hybrid(cfg, other)),
    })
}

/// LFM2's FFN width: `block_ff_dim` overrides `intermediate_size`; then the auto-adjust rule
/// ff = multiple_of * ceil(int(multiplier * int(2 ff / 3)) / multiple_of).
fn lfm2_ff_width(cfg: &Fields) -> Result<u32> {
    let source = cfg.source;
    let mut ff = match cfg.optional_positive("block_ff_dim")? {
        Some(f) => f,
        None => width(cfg, "intermediate_size", 12288)?,
    } as u64;
    if cfg.optional_bool("block_auto_adjust_ff_dim")?.unwrap_or(true) {
        ff = 2 * ff / 3;
        let multiplier = if cfg.map.contains_key("block_ffn_dim_multiplier") {
            cfg.optional_f64("block_ffn_dim_multiplier")?
        } else {
            Some(1.0)
        };
        if let Some(m) = multiplier {
            if !(m.is_finite() && m > 0.0) {
                return Err(Error::field(source, "block_ffn_dim_multiplier", "a positive number", m));
            }
            ff = (m * ff as f64).floor() as u64;
            let of = width(cfg, "block_multiple_of", 256)? as u64;
            ff = ff.div_ceil(of) * of;
        }
    }
    if ff == 0 || ff > crate::arch::limits::MAX_INTERMEDIATE as u64 {
        let max = crate::arch::limits::MAX_INTERMEDIATE;
        return Err(Error::field(source, "block_ff_dim", format!("an FFN width from 1 to {max} after adjustment"), ff));
    }
    Ok(ff as u32)
}

/// gpt-oss: experts with biased routers and experts, no shared expert.
fn gpt_oss_ffn(cfg: &Fields, activation: Activation) -> Result<Ffn> {
    let top_k = width(cfg, "num_experts_per_tok", 4)?;
    if let Some(k) = cfg.optional_u32("experts_per_token")? {
        if k != top_k {
            return Err(Error::field(
                cfg.source,
                "experts_per_token",
                format!("num_experts_per_tok ({top_k}), which transformers uses"),
                k,
            ));
        }
    }
    let experts = match cfg.optional_positive("num_local_experts")? {
        Some(e) => e,
        None => width(cfg, "num_experts", 128)?,
    };
    Ok(Ffn::Moe(Moe {
        num_experts: experts,
        experts_per_token: top_k,
        num_shared_experts: 0,
        expert_intermediate_size: width(cfg, "intermediate_size", 2880)?,
        dense_intermediate_size: 0,
        first_k_dense: 0,
        activation,
        router_bias: true,
        expert_bias: true,
        shared_expert_gate: false,
    }))
}

/// Qwen3-Next: experts with a gated shared expert after the first dense layers, or dense.
fn qwen3_next_ffn(cfg: &Fields, num_layers: u32, activation: Activation) -> Result<Ffn> {
    let experts = cfg.optional_u32("num_experts")?.unwrap_or(512);
    let step = period(cfg, "decoder_sparse_step", 1)?;
    let mlp_only = int_list(cfg, "mlp_only_layers")?.unwrap_or_default();
    let sparse: Vec<bool> =
        (0..num_layers as u64).map(|i| !mlp_only.contains(&i) && experts > 0 && (i + 1) % step as u64 == 0).collect();
    let first = sparse.iter().position(|&s| s).unwrap_or(sparse.len());
    if sparse[first..].iter().any(|&s| !s) {
        let field = if step != 1 { "decoder_sparse_step" } else { "mlp_only_layers" };
        let got = if step != 1 { Value::from(step) } else { cfg.get("mlp_only_layers").cloned().unwrap_or_default() };
        return Err(Error::field(
            cfg.source,
            field,
            "dense layers only before the first MoE layer (decoder_sparse_step 1, mlp_only_layers 0..k)",
            got,
        ));
    }
    if first == sparse.len() {
        return Ok(dense(width(cfg, "intermediate_size", 5632)?, activation));
    }
    let expert = width(cfg, "moe_intermediate_size", 512)?;
    let shared = cfg.optional_u32("shared_expert_intermediate_size")?.unwrap_or(512);
    Ok(Ffn::Moe(Moe {
        num_experts: experts,
        experts_per_token: width(cfg, "num_experts_per_tok", 10)?,
        num_shared_experts: shared_experts(cfg, "shared_expert_intermediate_size", shared, expert)?,
        expert_intermediate_size: expert,
        dense_intermediate_size: if first > 0 {
            width(cfg, "intermediate_size", 5632)?
        } else {
            cfg.optional_u32("intermediate_size")?.unwrap_or(0)
        },
        first_k_dense: first as u32,
        activation,
        router_bias: false,
        expert_bias: false,
        shared_expert_gate: true,
    }))
}

/// Granite 4.0-H: experts with shared experts, or the shared MLP alone when there are none.
fn granite_ffn(cfg: &Fields, activation: Activation) -> Result<Ffn> {
    let experts = cfg.optional_u32("num_local_experts")?.unwrap_or(8);
    let shared = cfg.optional_u32("shared_intermediate_size")?.unwrap_or(1024);
    if experts == 0 {
        if shared == 0 {
            return Err(Error::field(cfg.source, "shared_intermediate_size", "a positive integer", 0));
        }
        return Ok(dense(shared, activation));
    }
    let expert = width(cfg, "intermediate_size", 11008)?;
    Ok(Ffn::Moe(Moe {
        num_experts: experts,
        experts_per_token: width(cfg, "num_experts_per_tok", 2)?,
        num_shared_experts: shared_experts(cfg, "shared_intermediate_size", shared, expert)?,
        expert_intermediate_size: expert,
        dense_intermediate_size: 0,
        first_k_dense: 0,
        activation,
        router_bias: false,
        expert_bias: false,
        shared_expert_gate: false,
    }))
}
