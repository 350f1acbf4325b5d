//! Stacks with layers other than global attention, laid out for the llama.cpp architectures
//! that run them (names, shapes and keys as each `src/models/<arch>.cpp` of the pinned
//! llama.cpp loads them; see `shared/notes/hybrid-layers.md`):
//!
//! - `gemma3`: global and sliding-window attention (one window, any pattern), GeGLU, four
//!   norms per layer and q/k norms;
//! - `lfm2`: gated short convolutions and global GQA with q/k norms, SwiGLU;
//! - `qwen35`: Gated DeltaNet and gated global attention with q/k norms, SwiGLU;
//! - `granitehybrid`: Mamba2 and global attention (with or without RoPE), SwiGLU;
//! - `mamba2`: Mamba2 layers only, no FFN.
//!
//! Each refuses, with the reason, what its llama.cpp graph would not build as priced.

use super::{common_metadata, mix_context, output_tensors, unsupported, Builder, Fill, GgufLayout, MetaValue};
use crate::arch::{Activation, Architecture, Attention, DeltaNet, Family, Ffn, Layer, Mamba2, Mixer};
use crate::dtype::storage::Role;
use crate::error::Result;

/// State-space decay (`A = -exp(A_log)` at `A_log = 0`): keeps a random model's recurrent
/// state shrinking each step, as a trained one does.
const DECAY: Fill = Fill::Value(-1.0);

pub(super) fn layout(arch: &Architecture, context_length: u32) -> Result<GgufLayout> {
    let has = |f: &dyn Fn(&Mixer) -> bool| arch.layers.iter().any(|l| f(&l.mixer));
    if has(&|m| matches!(m, Mixer::Mamba2(_))) {
        mamba2(arch, context_length)
    } else if has(&|m| matches!(m, Mixer::DeltaNet(_))) {
        qwen35(arch, context_length)
    } else if has(&|m| matches!(m, Mixer::ShortConv { .. })) {
        lfm2(arch, context_length)
    } else if arch.family == Family::Gemma3Text || has(&|m| matches!(m, Mixer::Window { .. })) {
        gemma3(arch, context_length)
    } else {
        unsupported(arch, format!("a {:?} stack (layers: {})", arch.family, arch.stack_label()))
    }
}

/// The one mixer of `kind` in the stack, refusing stacks that mix two kinds or two shapes of
/// it (one GGUF key holds each shape).
fn only_mixer(arch: &Architecture, is_kind: impl Fn(&Mixer) -> bool) -> Result<Mixer> {
    let mut found: Option<Mixer> = None;
    for l in &arch.layers {
        if is_kind(&l.mixer) {
            match found {
                Some(m) if m != l.mixer => return unsupported(arch, "layers of one kind with different shapes"),
                _ => found = Some(l.mixer),
            }
        } else if l.mixer != Mixer::Global {
            return unsupported(
                arch,
                format!("{} layers beside {} layers", l.mixer.label(), found.map_or("other", |m| m.label())),
            );
        }
    }
    Ok(found.unwrap_or(Mixer::Global))
}

/// Grouped attention's (heads, kv heads, head size); MLA is not in these architectures.
fn grouped(arch: &Architecture) -> Result<(u32, u32, u32)> {
    match arch.attention {
        Attention::Grouped { num_heads, num_kv_heads, head_dim } => Ok((num_heads, num_kv_heads, head_dim)),
        Attention::Latent(_) => unsupported(arch, "latent attention in a hybrid stack"),
    }
}

/// A dense gated FFN with `activation`, no biases; its width.
fn dense_ffn_width(arch: &Architecture, activation: Activation) -> Result<u32> {
    match arch.ffn {
        Ffn::Dense { intermediate_size, gated: true, bias: false, activation: a } if a == activation => {
            Ok(intermediate_size)
        }
        _ => unsupported(
            arch,
            format!("an FFN other than a gated {activation:?} one without biases in a {:?} stack", arch.family),
        ),
    }
}

/// Flags no hybrid architecture here builds.
fn refuse_flags(arch: &Architecture, norms: u32, gate: bool) -> Result<()> {
    if arch.norms_per_layer != norms {
        return unsupported(arch, format!("{} norms per layer (this architecture has {norms})", arch.norms_per_layer));
    }
    if arch.qkv_bias || arch.o_bias {
        return unsupported(arch, "attention biases in a hybrid stack");
    }
    if arch.attention_sinks {
        return unsupported(arch, "attention sinks");
    }
    if arch.attn_output_gate != gate {
        return unsupported(
            arch,
            if gate { "attention without an output gate (qwen35 always gates)" } else { "a gated attention output" },
        );
    }
    Ok(())
}

/// Every layer followed by an FFN.
fn ffn_everywhere(arch: &Architecture) -> Result<()> {
    if arch.layers.iter().any(|l| !l.ffn) {
        return unsupported(arch, format!("layers without an FFN in a {:?} stack", arch.family));
    }
    Ok(())
}

/// One layer's q, k, v (and q/k norms) and output projection of a grouped attention; the query
/// projection is `q_out` wide (twice the heads' width when it also emits the output gate).
fn attention(b: &mut Builder, arch: &Architecture, q_out: u64, norms: bool) -> Result<()> {
    let (heads, kv_heads, head_dim) = grouped(arch)?;
    let h = arch.hidden_size as u64;
    let (q, kv) = (heads as u64 * head_dim as u64, kv_heads as u64 * head_dim as u64);
    b.matrix("attn_q", Role::AttnQ, &[h, q_out]);
    b.matrix("attn_k", Role::AttnK, &[h, kv]);
    b.matrix("attn_v", Role::AttnV, &[h, kv]);
    if norms {
        b.vector("attn_q_norm", "weight", head_dim as u64);
        b.vector("attn_k_norm", "weight", head_dim as u64);
    }
    b.matrix("attn_output", Role::AttnOutput, &[q, h]);
    Ok(())
}

fn ffn(b: &mut Builder, h: u64, f: u64) {
    b.matrix("ffn_gate", Role::FfnGate, &[h, f]);
    b.matrix("ffn_up", Role::FfnUp, &[h, f]);
    b.matrix("ffn_down", Role::FfnDown, &[f, h]);
}

/// Head counts, head sizes and the FFN width, as every attention architecture here reads them;
/// KV heads one count for every layer, or per layer (`kv_heads_per_layer`).
fn attention_keys(
    arch: &Architecture,
    name: &str,
    ffn_width: u32,
    per_layer_kv: bool,
    meta: &mut Vec<(String, MetaValue)>,
) -> Result<()> {
    let (heads, kv_heads, head_dim) = grouped(arch)?;
    let key = |k: &str| format!("{name}.{k}");
    let kv = if per_layer_kv { kv_heads_per_layer(arch, kv_heads) } else { MetaValue::U32(kv_heads) };
    meta.push((key("attention.head_count"), MetaValue::U32(heads)));
    meta.push((key("attention.head_count_kv"), kv));
    // Set explicitly: llama.cpp's default (hidden / heads) is not Gemma's or Qwen3.5's.
    meta.push((key("attention.key_length"), MetaValue::U32(head_dim)));
    meta.push((key("attention.value_length"), MetaValue::U32(head_dim)));
    meta.push((key("feed_forward_length"), MetaValue::U32(ffn_width)));
    Ok(())
}

/// Per-layer KV head counts, 0 on the layers that are not attention (how `lfm2` and
/// `granitehybrid` tell the kinds apart).
fn kv_heads_per_layer(arch: &Architecture, kv_heads: u32) -> MetaValue {
    MetaValue::U32s(
        (0..arch.num_layers).map(|i| if arch.layer(i).mixer.is_attention() { kv_heads } else { 0 }).collect(),
    )
}

/// Every attention layer global, with RoPE as `rope` says.
fn global_attention_only(arch: &Architecture, rope: bool) -> Result<()> {
    for l in &arch.layers {
        match l.mixer {
            Mixer::Window { .. } => return unsupported(arch, "windowed attention in this architecture"),
            Mixer::Global if l.rope != rope => {
                return unsupported(
                    arch,
                    if rope { "attention without RoPE" } else { "attention layers with and without RoPE" },
                )
            }
            _ => {}
        }
    }
    Ok(())
}

fn gemma3(arch: &Architecture, context_length: u32) -> Result<GgufLayout> {
    let name = "gemma3";
    refuse_flags(arch, 4, false)?;
    ffn_everywhere(arch)?;
    let width = dense_ffn_width(arch, Activation::GeluTanh)?;
    if !arch.qk_norm {
        return unsupported(arch, "gemma3 without q/k norms");
    }
    let window = match only_mixer(arch, |m| matches!(m, Mixer::Window { .. }))? {
        Mixer::Window { window } => Some(window),
        _ => None,
    };
    if arch.layers.iter().any(|l| !l.rope) {
        return unsupported(arch, "attention without RoPE in gemma3");
    }
    let (heads, _, head_dim) = grouped(arch)?;
    let h = arch.hidden_size as u64;
    let mut meta = common_metadata(arch, name, context_length);
    attention_keys(arch, name, width, false, &mut meta)?;
    if let Some(w) = window {
        let key = |k: &str| format!("{name}.{k}");
        meta.push((key("attention.sliding_window"), MetaValue::U32(w)));
        // Which layers are windowed, verbatim (llama.cpp's default is 5 windowed to 1 global).
        let pattern = (0..arch.num_layers).map(|i| u32::from(arch.layer(i).mixer.window().is_some())).collect();
        meta.push((key("attention.sliding_window_pattern"), MetaValue::U32s(pattern)));
        meta.push((key("rope.freq_base_swa"), MetaValue::F32(arch.rope_theta as f32)));
    }
    let mut b = Builder::new();
    b.matrix("token_embd", Role::TokenEmbedding, &[h, arch.vocab_size as u64]);
    for layer in 0..arch.num_layers {
        b.layer = layer;
        b.vector("attn_norm", "weight", h);
        attention(&mut b, arch, heads as u64 * head_dim as u64, true)?;
        b.vector("post_attention_norm", "weight", h);
        b.vector("ffn_norm", "weight", h);
        ffn(&mut b, h, width as u64);
        b.vector("post_ffw_norm", "weight", h);
    }
    output_tensors(&mut b, arch, "output_norm");
    Ok(b.finish(name, meta, mix_context(arch)))
}

fn lfm2(arch: &Architecture, context_length: u32) -> Result<GgufLayout> {
    let name = "lfm2";
    refuse_flags(arch, 2, false)?;
    ffn_everywhere(arch)?;
    let width = dense_ffn_width(arch, Activation::Silu)?;
    let Mixer::ShortConv { kernel } = only_mixer(arch, |m| matches!(m, Mixer::ShortConv { .. }))? else {
        unreachable!("lfm2 is chosen for stacks with a convolution")
    };
    global_attention_only(arch, true)?;
    let (heads, _, head_dim) = grouped(arch)?;
    if heads * head_dim != arch.hidden_size || !arch.qk_norm {
        return unsupported(arch, "lfm2 attention needs heads x head size = hidden size and q/k norms");
    }
    let h = arch.hidden_size as u64;
    let mut meta = common_metadata(arch, name, context_length);
    attention_keys(arch, name, width, true, &mut meta)?;
    let key = |k: &str| format!("{name}.{k}");
    meta.push((key("shortconv.l_cache"), MetaValue::U32(kernel)));
    let mut b = Builder::new();
    b.matrix("token_embd", Role::TokenEmbedding, &[h, arch.vocab_size as u64]);
    for layer in 0..arch.num_layers {
        b.layer = layer;
        b.vector("attn_norm", "weight", h);
        if arch.layer(layer).mixer.is_attention() {
            attention(&mut b, arch, h, true)?;
        } else {
            b.kept("shortconv.conv", "weight", &[kernel as u64, h], Fill::Noise);
            b.matrix("shortconv.in_proj", Role::AttnOther, &[h, 3 * h]);
            b.matrix("shortconv.out_proj", Role::AttnOther, &[h, h]);
        }
        b.vector("ffn_norm", "weight", h);
        ffn(&mut b, h, width as u64);
    }
    // llama.cpp names LFM2's final norm `token_embd_norm`.
    output_tensors(&mut b, arch, "token_embd_norm");
    Ok(b.finish(name, meta, mix_context(arch)))
}

fn qwen35(arch: &Architecture, context_length: u32) -> Result<GgufLayout> {
    let name = "qwen35";
    refuse_flags(arch, 2, true)?;
    ffn_everywhere(arch)?;
    let width = dense_ffn_width(arch, Activation::Silu)?;
    let Mixer::DeltaNet(g) = only_mixer(arch, |m| matches!(m, Mixer::DeltaNet(_)))? else {
        unreachable!("qwen35 is chosen for stacks with a DeltaNet")
    };
    let DeltaNet { key_heads, value_heads, key_head_dim, value_head_dim, conv_kernel } = g;
    if key_head_dim != value_head_dim || value_heads % key_heads != 0 {
        return unsupported(
            arch,
            "a DeltaNet whose key and value heads differ in size, or value heads not a multiple of key heads",
        );
    }
    global_attention_only(arch, true)?;
    if !arch.qk_norm {
        return unsupported(arch, "qwen35 attention without q/k norms");
    }
    let (heads, _, head_dim) = grouped(arch)?;
    let h = arch.hidden_size as u64;
    let mut meta = common_metadata(arch, name, context_length);
    attention_keys(arch, name, width, false, &mut meta)?;
    let key = |k: &str| format!("{name}.{k}");
    // Qwen3.5 rotates a quarter of each head, in multimodal sections that text positions
    // (one position per token) make plain RoPE.
    let rot = (head_dim / 4).max(2);
    meta.push((key("rope.dimension_count"), MetaValue::U32(rot)));
    meta.push((key("rope.dimension_sections"), MetaValue::U32s(vec![rot / 2, 0, 0, 0])));
    meta.push((key("ssm.conv_kernel"), MetaValue::U32(conv_kernel)));
    meta.push((key("ssm.inner_size"), MetaValue::U32(value_heads * value_head_dim)));
    meta.push((key("ssm.state_size"), MetaValue::U32(key_head_dim)));
    meta.push((key("ssm.time_step_rank"), MetaValue::U32(value_heads)));
    meta.push((key("ssm.group_count"), MetaValue::U32(key_heads)));
    let recurrent = (0..arch.num_layers).map(|i| u32::from(!arch.layer(i).mixer.is_attention())).collect();
    meta.push((key("attention.recurrent_layers"), MetaValue::U32s(recurrent)));
    let mut b = Builder::new();
    b.matrix("token_embd", Role::TokenEmbedding, &[h, arch.vocab_size as u64]);
    let (value, conv, hv) = (g.value_dim(), g.conv_dim(), value_heads as u64);
    for layer in 0..arch.num_layers {
        b.layer = layer;
        b.vector("attn_norm", "weight", h);
        if arch.layer(layer).mixer.is_attention() {
            attention(&mut b, arch, 2 * heads as u64 * head_dim as u64, true)?;
        } else {
            // `attn_qkv` is on the quantiser's `attn_v` counter.
            b.matrix("attn_qkv", Role::AttnV, &[h, conv]);
            b.matrix("attn_gate", Role::AttnOther, &[h, value]);
            b.kept("ssm_conv1d", "weight", &[conv_kernel as u64, conv], Fill::Noise);
            b.kept("ssm_dt", "bias", &[hv], Fill::Value(1.0));
            b.kept("ssm_a", "", &[hv], DECAY);
            b.matrix("ssm_beta", Role::AttnOther, &[h, hv]);
            b.matrix("ssm_alpha", Role::AttnOther, &[h, hv]);
            b.vector("ssm_norm", "weight", value_head_dim as u64);
            b.matrix("ssm_out", Role::AttnOther, &[value, h]);
        }
        b.vector("post_attention_norm", "weight", h);
        ffn(&mut b, h, width as u64);
    }
    output_tensors(&mut b, arch, "output_norm");
    Ok(b.finish(name, meta, mix_context(arch)))
}

/// `granitehybrid` when attention or FFN layers are present, `mamba2` for a pure stack.
fn mamba2(arch: &Architecture, context_length: u32) -> Result<GgufLayout> {
    let Mixer::Mamba2(m) = only_mixer(arch, |m| matches!(m, Mixer::Mamba2(_)))? else {
        unreachable!("chosen for stacks with Mamba2 layers")
    };
    let pure = arch.layers.iter().all(|l| *l == Layer { mixer: Mixer::Mamba2(m), rope: l.rope, ffn: false });
    let name = if pure { "mamba2" } else { "granitehybrid" };
    refuse_flags(arch, 2, false)?;
    let Mamba2 { heads, state_size, groups, conv_kernel, conv_bias, .. } = m;
    let h = arch.hidden_size as u64;
    if m.inner() != 2 * h && !pure {
        return unsupported(arch, "granitehybrid Mamba2 layers need an inner width of twice the hidden size");
    }
    if !conv_bias && pure {
        return unsupported(arch, "mamba2 without a convolution bias");
    }
    let mut meta = common_metadata(arch, name, context_length);
    let key = |k: &str| format!("{name}.{k}");
    let mut width = 0;
    if !pure {
        ffn_everywhere(arch)?;
        width = dense_ffn_width(arch, Activation::Silu)?;
        let rope = arch.layers.iter().find(|l| l.mixer.is_attention()).is_none_or(|l| l.rope);
        global_attention_only(arch, rope)?;
        if arch.qk_norm {
            return unsupported(arch, "granitehybrid attention with q/k norms");
        }
        attention_keys(arch, name, width, true, &mut meta)?;
        // Granite's switch for RoPE: off for Granite 4.0-H, whose attention has none.
        meta.push((key("rope.scaling.finetuned"), MetaValue::Bool(rope)));
    }
    meta.push((key("ssm.conv_kernel"), MetaValue::U32(conv_kernel)));
    meta.push((key("ssm.inner_size"), MetaValue::U32(m.inner() as u32)));
    meta.push((key("ssm.state_size"), MetaValue::U32(state_size)));
    meta.push((key("ssm.time_step_rank"), MetaValue::U32(heads)));
    meta.push((key("ssm.group_count"), MetaValue::U32(groups)));
    let mut b = Builder::new();
    b.matrix("token_embd", Role::TokenEmbedding, &[h, arch.vocab_size as u64]);
    let (inner, conv, nh) = (m.inner(), m.conv_dim(), heads as u64);
    for layer in 0..arch.num_layers {
        b.layer = layer;
        b.vector("attn_norm", "weight", h);
        if arch.layer(layer).mixer.is_attention() {
            let (heads, _, head_dim) = grouped(arch)?;
            attention(&mut b, arch, heads as u64 * head_dim as u64, false)?;
        } else {
            b.matrix("ssm_in", Role::AttnOther, &[h, m.in_proj_dim()]);
            b.kept("ssm_conv1d", "weight", &[conv_kernel as u64, conv], Fill::Noise);
            if conv_bias {
                b.kept("ssm_conv1d", "bias", &[conv], Fill::Value(0.0));
            }
            b.kept("ssm_dt", "bias", &[nh], Fill::Value(1.0));
            b.kept("ssm_a", "", &[1, nh], DECAY);
            b.kept("ssm_d", "", &[1, nh], Fill::Value(1.0));
            b.kept("ssm_norm", "weight", &[inner / groups as u64, groups as u64], Fill::Value(1.0));
            b.matrix("ssm_out", Role::AttnOther, &[inner, h]);
        }
        if !pure {
            b.vector("ffn_norm", "weight", h);
            ffn(&mut b, h, width as u64);
        }
    }
    output_tensors(&mut b, arch, "output_norm");
    Ok(b.finish(name, meta, mix_context(arch)))
}
