//! Accounting rules (DESIGN.md section 3), each checked against a published count or a value
//! worked out by hand in the comment.

use crate::common::*;
use rooflinebench::arch::{parse_hf_config, Attention, AttentionKind};
use rooflinebench::dtype::{DType, Precisions};
use rooflinebench::workload::{operators, AttentionForm, ElementwiseForm, MlaForm, Phase, Plan, RunSettings};

/// (file, published total parameters, KV bytes per token at 16 bits over all layers), from the
/// checkpoints' own totals (shared/models/README.md).
const PUBLISHED: [(&str, u64, u64); 8] = [
    ("SmolLM2-135M", 134_515_008, 23_040),
    ("Qwen2.5-0.5B", 494_032_768, 12_288),
    ("Qwen3-0.6B", 596_049_920, 114_688),
    ("Llama-3.2-1B", 1_235_814_400, 32_768),
    ("Qwen2.5-1.5B-Instruct", 1_543_714_304, 28_672),
    ("SmolLM2-1.7B-Instruct", 1_711_376_384, 196_608),
    ("Llama-2-7b-hf", 6_738_415_616, 524_288),
    ("DeepSeek-V2-Lite-Chat", 15_706_484_224, 31_104),
];

#[test]
fn parameter_counts_equal_the_published_totals() {
    for (name, params, _) in PUBLISHED {
        assert_eq!(model(name).parameters(), params, "{name}");
    }
}

#[test]
fn kv_cache_bytes_per_token_match_the_published_figures() {
    for (name, _, kv) in PUBLISHED {
        assert_eq!(model(name).kv_elements_per_token() * 2, kv, "{name}");
    }
}

#[test]
fn mla_caches_one_latent_plus_one_rope_key_per_layer() {
    let a = model("DeepSeek-V2-Lite-Chat");
    let Attention::Latent(m) = a.attention else { panic!("MLA expected") };
    // (kv_lora_rank + qk_rope_head_dim) = 512 + 64 = 576 elements: not 2x, not per head.
    assert_eq!(a.attention.kv_elements_per_token(), 576);
    assert_eq!(m.kv_lora_rank + m.qk_rope_head_dim, 576);
    assert_eq!(a.attention_kind(), AttentionKind::Mla);
}

#[test]
fn head_dim_is_read_from_the_config_when_given() {
    // Qwen3-0.6B: hidden 1024 / 16 heads would give 64; the config says 128.
    let a = model("Qwen3-0.6B");
    assert!(matches!(a.attention, Attention::Grouped { head_dim: 128, .. }));
}

#[test]
fn other_families_reproduce_their_published_totals() {
    // Gemma-2-2B (2,614,341,888): V 256000, H 2304, 26 layers, 8/4 heads of 256, I 9216, tied,
    // four norms per layer. Phi-3-mini (3,821,079,552): V 32064, H 3072, 32 layers, I 8192, untied.
    let gemma = r#"{"model_type":"gemma2","vocab_size":256000,"hidden_size":2304,"num_hidden_layers":26,
        "num_attention_heads":8,"num_key_value_heads":4,"head_dim":256,"intermediate_size":9216,
        "hidden_activation":"gelu_pytorch_tanh"}"#;
    assert_eq!(parse_hf_config(gemma, "gemma", "gemma").unwrap().parameters(), 2_614_341_888);
    let phi = r#"{"model_type":"phi3","vocab_size":32064,"hidden_size":3072,"num_hidden_layers":32,
        "num_attention_heads":32,"num_key_value_heads":32,"intermediate_size":8192,"tie_word_embeddings":false}"#;
    assert_eq!(parse_hf_config(phi, "phi", "phi").unwrap().parameters(), 3_821_079_552);
}

#[test]
fn export_then_import_gives_the_same_architecture() {
    for (name, ..) in PUBLISHED {
        let a = model(name);
        let json = serde_json::to_string(&rooflinebench::arch::export_hf_config(&a)).unwrap();
        let b = parse_hf_config(&json, "export", name).unwrap();
        assert_eq!(a, b, "{name}");
    }
}

fn total(
    ops: &[rooflinebench::workload::Operator],
    n: f64,
    f: impl Fn(&rooflinebench::workload::Operator) -> f64,
) -> f64 {
    let _ = n;
    ops.iter().map(|o| o.count as f64 * f(o)).sum()
}

#[test]
fn causal_prefill_counts_n_n_plus_1_over_2_pairs() {
    // SmolLM2-135M, prompt 100, one sequence: per layer 9 heads x (100*101/2 = 5050) pairs x
    // (2*64 + 2*64 + 5 = 261 FLOPs) = 11,862,450; 30 layers = 355,873,500.
    let a = model("SmolLM2-135M");
    let plan =
        Plan { mla: MlaForm::Materialised, attention: AttentionForm::Fused, elementwise: ElementwiseForm::Separate };
    let ops = operators(&a, Phase::Prefill { prompt: 100 }, &RunSettings::default(), plan);
    let attn = ops.iter().find(|o| o.name == "attention").unwrap();
    assert_eq!(attn.count as f64 * attn.flops.base, 355_873_500.0);
}

#[test]
fn fused_attention_moves_fewer_bytes_than_unfused_at_long_context() {
    let a = model("Llama-3.2-1B");
    let s = RunSettings::default();
    for phase in [Phase::Prefill { prompt: 4096 }, Phase::Decode] {
        let bytes = |form| {
            let ops = operators(
                &a,
                phase,
                &s,
                Plan { mla: MlaForm::Materialised, attention: form, elementwise: ElementwiseForm::Separate },
            );
            total(&ops, 0.0, |o| o.bytes().at(4096.0))
        };
        assert!(bytes(AttentionForm::Fused) < bytes(AttentionForm::Unfused), "{phase:?}");
    }
}

#[test]
fn gated_ffn_has_three_matrices_and_the_activation_runs_over_intermediate() {
    // Llama-3.2-1B, one decode token: gate/up/down each 2 * 2048 * 8192 = 33,554,432 FLOPs;
    // silu runs over 8192 elements (5 FLOPs each = 40,960), not 2048.
    let a = model("Llama-3.2-1B");
    let ops = operators(&a, Phase::Decode, &RunSettings::default(), Plan::NAIVE);
    for name in ["gate_proj", "up_proj", "down_proj"] {
        let op = ops.iter().find(|o| o.name == name).unwrap();
        assert_eq!(op.flops.base, 33_554_432.0, "{name}");
        assert_eq!(op.weight_bytes.base, 2048.0 * 8192.0 * 2.0, "{name}");
    }
    assert_eq!(ops.iter().find(|o| o.name == "act").unwrap().flops.base, 40_960.0);
}

#[test]
fn lm_head_runs_on_the_last_prompt_token_and_embedding_has_no_flops() {
    // Qwen2.5-0.5B, prompt 512, batch 2: LM head 2 rows x 2 x 896 x 151936 = 544,538,624 FLOPs.
    let a = model("Qwen2.5-0.5B");
    let s = RunSettings { batch: 2, ..RunSettings::default() };
    let ops = operators(&a, Phase::Prefill { prompt: 512 }, &s, Plan::NAIVE);
    let head = ops.iter().find(|o| o.name == "lm_head").unwrap();
    assert_eq!(head.flops.base, 544_538_624.0);
    let emb = ops.iter().find(|o| o.name == "embedding").unwrap();
    assert_eq!(emb.flops.base, 0.0);
    // It gathers 1024 rows of 896 bf16 values.
    assert_eq!(emb.weight_bytes.base, 1024.0 * 896.0 * 2.0);
    let all = RunSettings { logits_for_all_prompt_tokens: true, ..s };
    let ops = operators(&a, Phase::Prefill { prompt: 512 }, &all, Plan::NAIVE);
    assert_eq!(ops.iter().find(|o| o.name == "lm_head").unwrap().flops.base, 544_538_624.0 * 512.0);
}

#[test]
fn moe_counts_active_experts_for_flops_and_touched_experts_for_bytes() {
    // DeepSeek-V2-Lite decode, batch 1: 6 routed experts of 3 x 2048 x 1408, so gate+up FLOPs
    // are 2 x 6 x 2048 x 2 x 1408 = 69,206,016 per MoE layer, and one token touches exactly 6
    // experts: 6 x 2 x 2048 x 1408 x 2 bytes = 69,206,016 bytes of gate+up weights.
    let a = model("DeepSeek-V2-Lite-Chat");
    let ops = operators(&a, Phase::Decode, &RunSettings::default(), Plan::NAIVE);
    let gu = ops.iter().find(|o| o.name == "experts_gate_up").unwrap();
    assert_eq!(gu.count, 26, "first_k_dense_replace = 1 leaves 26 MoE layers");
    assert!(close(gu.flops.base, 69_206_016.0, 1e-12));
    assert!(close(gu.weight_bytes.base, 69_206_016.0, 1e-12));
    // Six products of one row each: one per expert the token chose.
    assert_eq!((gu.experts, gu.rows.base), (6.0, 1.0));
    // A batch of 64 decode tokens touches 64 * (1 - (58/64)^64) = 63.8 experts, not 6 * 64.
    let s = RunSettings { batch: 64, ..RunSettings::default() };
    let ops = operators(&a, Phase::Decode, &s, Plan::NAIVE);
    let gu = ops.iter().find(|o| o.name == "experts_gate_up").unwrap();
    let touched = 64.0 * (1.0 - (58.0f64 / 64.0).powi(64));
    assert!(close(gu.weight_bytes.base, touched * 2.0 * 2048.0 * 1408.0 * 2.0, 1e-12));
    // 64 tokens x 6 = 384 routed rows shared by the 63.8 touched experts: about 6 rows each.
    let down = ops.iter().find(|o| o.name == "experts_down").unwrap();
    for op in [gu, down] {
        assert!(close(op.experts, touched, 1e-12) && close(op.rows.base, 384.0 / touched, 1e-12), "{op:?}");
    }
    // No other operator is a routed expert's.
    assert!(ops
        .iter()
        .filter(|o| !o.name.starts_with("experts_") || o.name == "experts_combine")
        .all(|o| o.experts == 0.0));
    // The dense first layer runs a 10944-wide gated FFN.
    let dense = ops.iter().find(|o| o.name == "gate_proj" && o.count == 1).unwrap();
    assert_eq!(dense.flops.base, 64.0 * 2.0 * 2048.0 * 10944.0);
}

#[test]
fn precisions_are_separate_for_weights_activations_and_kv() {
    // Llama-2-7b decode at context 1000 with q4_0 weights and an int8 cache: v_proj weights
    // 4096 x 4096 x 18/32 bytes; fused attention reads 1000 x 2 x 4096 x 1 byte of cache.
    let a = model("Llama-2-7b-hf");
    let s = RunSettings {
        precisions: Precisions { weights: DType::Q4_0, activations: DType::F16, kv_cache: DType::Int8 },
        ..RunSettings::default()
    };
    let plan =
        Plan { mla: MlaForm::Materialised, attention: AttentionForm::Fused, elementwise: ElementwiseForm::Separate };
    let ops = operators(&a, Phase::Decode, &s, plan);
    let v = ops.iter().find(|o| o.name == "v_proj").unwrap();
    assert_eq!(v.weight_bytes.base, 4096.0 * 4096.0 * 18.0 / 32.0);
    let attn = ops.iter().find(|o| o.name == "attention").unwrap();
    assert_eq!(attn.kv_read_bytes.at(1000.0), 1000.0 * 2.0 * 4096.0);
    assert_eq!(attn.compute, DType::F16);
}

#[test]
fn absorbed_mla_reads_the_latent_once_for_all_heads_in_decode() {
    // DeepSeek-V2-Lite, context 2048, bf16 cache: absorbed attention reads 2048 x 576 x 2 bytes
    // per layer; materialised expands the latent to 16 heads x (128 + 128) per token instead.
    let a = model("DeepSeek-V2-Lite-Chat");
    let s = RunSettings::default();
    let absorbed = operators(
        &a,
        Phase::Decode,
        &s,
        Plan { mla: MlaForm::Absorbed, attention: AttentionForm::Fused, elementwise: ElementwiseForm::Separate },
    );
    let attn = absorbed.iter().find(|o| o.name == "attention").unwrap();
    assert_eq!(attn.kv_read_bytes.at(2048.0), 2048.0 * 576.0 * 2.0);
    let mat = operators(
        &a,
        Phase::Decode,
        &s,
        Plan { mla: MlaForm::Materialised, attention: AttentionForm::Fused, elementwise: ElementwiseForm::Separate },
    );
    let expand = mat.iter().find(|o| o.name == "kv_b_expand").unwrap();
    assert_eq!(expand.flops.at(2048.0), 2048.0 * 2.0 * 512.0 * 16.0 * 256.0);
}

#[test]
fn fused_norms_and_activations_drop_exactly_their_round_trips() {
    // Llama-3.2-1B decode, batch 1 (t = 1), bf16 activations (2 bytes), h = 2048, i = 8192,
    // 16 layers. Fusing removes, per layer: the attention and FFN norms' write and re-read of
    // t*h (2 x 2 t*h); the FFN reads its input once instead of twice (t*h); gate and up no
    // longer write t*i each, the activation no longer reads and writes t*i, the gate multiply
    // no longer reads 2 t*i and writes t*i, and the fused kernel writes t*i once: 6 t*i. The
    // final norm's 2 t*h goes too. FLOPs are the same: the arithmetic only changes kernel.
    let a = model("Llama-3.2-1B");
    let s = RunSettings { precisions: Precisions::uniform(DType::Bf16), ..RunSettings::default() };
    let separate =
        Plan { mla: MlaForm::Materialised, attention: AttentionForm::Fused, elementwise: ElementwiseForm::Separate };
    let fused = separate.with_elementwise(ElementwiseForm::Fused);
    let total = |plan| {
        let ops = operators(&a, Phase::Decode, &s, plan);
        let flops: f64 = ops.iter().map(|o| o.count as f64 * o.flops.at(100.0)).sum();
        let bytes: f64 = ops.iter().map(|o| o.count as f64 * o.bytes().at(100.0)).sum();
        let launches: u32 = ops.iter().map(|o| o.count).sum();
        (flops, bytes, launches)
    };
    let ((f0, b0, l0), (f1, b1, l1)) = (total(separate), total(fused));
    let (t, h, i, layers) = (1.0, 2048.0, 8192.0, 16.0);
    let per_layer = 2.0 * 2.0 * t * h + t * h + 6.0 * t * i;
    assert_eq!(b0 - b1, (layers * per_layer + 2.0 * t * h) * 2.0);
    assert_eq!(f0, f1);
    // Per layer: two norms, the activation, the gate multiply and one of the two products
    // are no longer separate kernels (5); the final norm goes too.
    assert_eq!(l0 - l1, 16 * 5 + 1);
}
