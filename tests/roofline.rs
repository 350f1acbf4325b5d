//! Roofline evaluation against hand arithmetic, and the closed-form decode sum against a
//! step-by-step loop.

use crate::common::*;
use proptest::prelude::*;
use rooflinebench::arch::{Activation, Architecture, Attention, Family, Ffn, Mla, Moe};
use rooflinebench::device::{builtin, DeviceProfile};
use rooflinebench::dtype::{DType, Precisions};
use rooflinebench::roofline::{op_totals, Evaluator, PlanChoice, Scenario};
use rooflinebench::workload::{operators, AttentionForm, ElementwiseForm, MlaForm, Phase, Plan, RunSettings};

/// A datasheet profile with 1555 GB/s and 312 TFLOP/s (A100 40GB).
fn a100() -> DeviceProfile {
    builtin("a100-40gb").unwrap()
}

const FUSED: Plan =
    Plan { mla: MlaForm::Materialised, attention: AttentionForm::Fused, elementwise: ElementwiseForm::Separate };

#[test]
fn memory_bound_decode_time_is_bytes_over_bandwidth_for_llama2_7b() {
    // Llama-2-7b, bf16, one decode step at context 1024 on 1555 GB/s:
    //   weights read: all 6,738,415,616 parameters but the 32000 x 4096 = 131,072,000-entry
    //   embedding table, of which one 4096-row is gathered: (6,607,343,616 + 4096) x 2 B
    //   = 13,214,695,424 B;
    //   KV cache read: 1024 tokens x 524,288 B = 536,870,912 B;
    //   (13,214,695,424 + 536,870,912) / 1555e9 = 8.8434 ms, about 9.0 ms.
    // Activations add a few MB, so the total lies within 0.5% of that.
    let arch = model("Llama-2-7b-hf");
    let device = a100();
    let ops = operators(&arch, Phase::Decode, &RunSettings::default(), FUSED);
    let (mut time, mut bytes) = (0.0, 0.0);
    for op in &ops {
        let t = op_totals(op, &device, 1024.0, 1024.0);
        // Every decode operator at batch 1 sits left of the 200 FLOP/B ridge.
        assert_eq!(t.compute_bound_s, 0.0, "{} is compute-bound", op.name);
        time += t.point.time_s;
        bytes += t.point.bytes;
    }
    assert!(close(time, bytes / 1555e9, 1e-12));
    let hand = (13_214_695_424.0 + 536_870_912.0) / 1555e9;
    assert!(close(time, hand, 0.005), "{time} vs {hand}");
    assert!((time - 9.0e-3).abs() < 0.3e-3);
}

#[test]
fn compute_bound_prefill_time_is_flops_over_peak() {
    // Llama-3.2-1B prefill of 2048 tokens on the A100: the matrix products dominate and are far
    // right of the ridge; q_proj alone: 2 x 2048 x 2048 x 2048 FLOPs / 312e12 = 55.06 us per layer.
    let arch = model("Llama-3.2-1B");
    let ops = operators(&arch, Phase::Prefill { prompt: 2048 }, &RunSettings::default(), FUSED);
    let q = ops.iter().find(|o| o.name == "q_proj").unwrap();
    let t = op_totals(q, &a100(), 0.0, 0.0);
    assert!(close(t.point.time_s, 16.0 * 2.0 * 2048f64.powi(3) / 312e12, 1e-12));
    assert_eq!(t.compute_bound_s, t.point.time_s);
}

#[test]
fn kernel_overhead_is_paid_once_per_launch() {
    let arch = model("SmolLM2-135M");
    let mut device = a100();
    let ops = operators(&arch, Phase::Decode, &RunSettings::default(), FUSED);
    let base: f64 = ops.iter().map(|o| op_totals(o, &device, 100.0, 199.0).point.time_s).sum();
    device.kernel_overhead_s = 1e-6;
    let with: f64 = ops.iter().map(|o| op_totals(o, &device, 100.0, 199.0).point.time_s).sum();
    let launches: u32 = ops.iter().map(|o| o.count).sum();
    // 100 steps x launches per step x 1 us.
    assert!(close(with - base, 100.0 * launches as f64 * 1e-6, 1e-9));
}

fn arch_from(layers: u32, hidden_mult: u32, heads: u32, kv_div: u32, mla: bool, moe: bool) -> Architecture {
    let head_dim = 64;
    let hidden = hidden_mult * 64;
    let attention = if mla {
        Attention::Latent(Mla {
            num_heads: heads,
            kv_lora_rank: 128,
            q_lora_rank: None,
            qk_nope_head_dim: 64,
            qk_rope_head_dim: 32,
            v_head_dim: 64,
        })
    } else {
        let kv = (heads / kv_div).max(1);
        let kv = if heads % kv == 0 { kv } else { 1 };
        Attention::Grouped { num_heads: heads, num_kv_heads: kv, head_dim }
    };
    let ffn = if moe {
        Ffn::Moe(Moe {
            num_experts: 16,
            experts_per_token: 2,
            num_shared_experts: 1,
            expert_intermediate_size: 256,
            dense_intermediate_size: 1024,
            first_k_dense: 1,
            activation: Activation::Silu,
            router_bias: false,
            expert_bias: false,
            shared_expert_gate: false,
        })
    } else {
        Ffn::Dense { intermediate_size: hidden * 3, gated: true, activation: Activation::Silu, bias: false }
    };
    Architecture {
        name: "random".into(),
        family: if mla { Family::DeepseekV2 } else { Family::Llama },
        num_layers: layers,
        hidden_size: hidden,
        vocab_size: 32000,
        tie_embeddings: true,
        attention,
        ffn,
        qkv_bias: false,
        o_bias: false,
        qk_norm: false,
        attn_output_gate: false,
        attention_sinks: false,
        norms_per_layer: 2,
        max_position_embeddings: 8192,
        layers: Vec::new(),
        rope_theta: 1e4,
        norm_eps: 1e-5,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn closed_form_decode_sum_equals_the_step_by_step_sum(
        layers in 1u32..8, hidden_mult in 2u32..24, heads in 1u32..16, kv_div in 1u32..8,
        mla: bool, moe: bool, batch in 1u32..16, prompt in 1u32..3000, generate in 1u32..600,
        device_index in 0usize..4, unfused: bool, absorbed: bool, fused_norm_act: bool, overhead_us in 0.0f64..5.0,
    ) {
        let arch = arch_from(layers, hidden_mult, heads, kv_div, mla, moe);
        let names = ["rpi5-datasheet", "rtx3090-datasheet", "m1-pro-paper", "jetson-orin-nano-super-datasheet"];
        let mut device = builtin(names[device_index]).unwrap();
        device.kernel_overhead_s = overhead_us * 1e-6;
        let plan = Plan {
            mla: if absorbed { MlaForm::Absorbed } else { MlaForm::Materialised },
            attention: if unfused { AttentionForm::Unfused } else { AttentionForm::Fused },
            elementwise: if fused_norm_act { ElementwiseForm::Fused } else { ElementwiseForm::Separate },
        };
        let settings = RunSettings { batch, precisions: Precisions::uniform(DType::F16), ..RunSettings::default() };
        let s = Scenario::new("random", prompt, generate).unwrap();
        let mut ev = Evaluator::new(&device, settings, PlanChoice::Fixed(plan));
        let closed = ev.decode(&arch, &s).point;
        // Step by step: one decode pass at each context prompt+1 ..= prompt+generate.
        let ops = operators(&arch, Phase::Decode, &settings, plan);
        let (mut time, mut flops, mut bytes) = (0.0, 0.0, 0.0);
        for n in (prompt + 1)..=(prompt + generate) {
            for op in &ops {
                let t = op_totals(op, &device, n as f64, n as f64).point;
                time += t.time_s;
                flops += t.flops;
                bytes += t.bytes;
            }
        }
        prop_assert!(close(closed.time_s, time, 1e-9), "time {} vs {}", closed.time_s, time);
        prop_assert!(close(closed.flops, flops, 1e-9));
        prop_assert!(close(closed.bytes, bytes, 1e-9));
    }
}

#[test]
fn the_fastest_plan_is_never_slower_than_a_fixed_one() {
    let arch = model("DeepSeek-V2-Lite-Chat");
    let device = builtin("rtx3090-datasheet").unwrap();
    let s = Scenario::named("lilo").unwrap();
    let best = Evaluator::new(&device, RunSettings::default(), PlanChoice::Fastest).scenario(&arch, &s);
    for &plan in Plan::candidates(&arch) {
        let fixed = Evaluator::new(&device, RunSettings::default(), PlanChoice::Fixed(plan)).scenario(&arch, &s);
        assert!(best.total().time_s <= fixed.total().time_s);
    }
    // Long-context MLA decode runs absorbed; prefill stays materialised.
    assert_eq!(best.decode.plan.mla, MlaForm::Absorbed);
    assert_eq!(best.prefill.plan.mla, MlaForm::Materialised);
}

#[test]
fn fastest_equals_the_best_fixed_plan_for_every_attention_kind() {
    // Found when the plan-dependent part of grouped attention was silently empty: the fastest
    // plan must price every candidate, so it equals the minimum over fixed plans, per phase.
    for name in ["SmolLM2-135M", "Qwen2.5-0.5B", "DeepSeek-V2-Lite-Chat"] {
        let arch = model(name);
        for device in ["rpi5-datasheet", "rtx3090-datasheet"] {
            let device = builtin(device).unwrap();
            for s in Scenario::all_named() {
                let best = Evaluator::new(&device, RunSettings::default(), PlanChoice::Fastest).scenario(&arch, &s);
                let fixed: Vec<_> = Plan::candidates(&arch)
                    .iter()
                    .flat_map(|&p| [ElementwiseForm::Separate, ElementwiseForm::Fused].map(|f| p.with_elementwise(f)))
                    .map(|p| Evaluator::new(&device, RunSettings::default(), PlanChoice::Fixed(p)).scenario(&arch, &s))
                    .collect();
                let min_prefill = fixed.iter().map(|e| e.prefill.point.time_s).fold(f64::INFINITY, f64::min);
                let min_decode = fixed.iter().map(|e| e.decode.point.time_s).fold(f64::INFINITY, f64::min);
                assert!(close(best.prefill.point.time_s, min_prefill, 1e-12), "{name} {}", s.name);
                assert!(close(best.decode.point.time_s, min_decode, 1e-12), "{name} {}", s.name);
                // And a plan's shared part plus its core equals building it whole.
                let whole = fixed.iter().find(|e| e.decode.plan == best.decode.plan).unwrap();
                assert!(close(best.decode.point.bytes, whole.decode.point.bytes, 1e-12));
            }
        }
    }
}

#[test]
fn each_routed_expert_product_pays_the_profiles_expert_cost() {
    // DeepSeek-V2-Lite decoding 10 tokens after a 100-token prompt, batch 1: 26 MoE layers x 2
    // expert products (gate+up, down) x 6 experts x 10 steps = 3,120 expert products; at 2 us
    // each, 6.24 ms more than with no such cost, and nothing else moves.
    let arch = model("DeepSeek-V2-Lite-Chat");
    let mut device = builtin("rpi5").unwrap();
    assert_eq!(device.expert_overhead_s, 0.0, "no shipped profile has the cost yet");
    let s = Scenario::new("x", 100, 10).unwrap();
    let settings = RunSettings { precisions: Precisions::uniform(DType::Q4_0), ..RunSettings::default() };
    let plan = device.engine.as_ref().unwrap().plan;
    let time = |d: &DeviceProfile| Evaluator::new(d, settings, PlanChoice::Fixed(plan)).decode(&arch, &s).point;
    let before = time(&device);
    device.expert_overhead_s = 2e-6;
    let after = time(&device);
    assert!(close(after.time_s - before.time_s, 3120.0 * 2e-6, 1e-9), "{before:?} {after:?}");
    assert_eq!((after.flops, after.bytes), (before.flops, before.bytes));
    // A dense model pays nothing.
    let dense = model("Llama-3.2-1B");
    let d0 = builtin("rpi5").unwrap();
    let one = |d: &DeviceProfile| Evaluator::new(d, settings, PlanChoice::Fixed(plan)).decode(&dense, &s).point.time_s;
    assert_eq!(one(&d0).to_bits(), one(&device).to_bits());
}
