use super::*;

#[test]
fn op_classes_are_listed_in_declaration_order() {
    // The evaluator indexes per-class tables by `class as usize`.
    for (i, c) in OpClass::ALL.iter().enumerate() {
        assert_eq!(*c as usize, i, "{c:?}");
    }
}

fn smollm() -> Architecture {
    let text = include_str!("../../models/SmolLM2-135M.json");
    crate::arch::parse_hf_config(text, "SmolLM2-135M.json", "SmolLM2-135M").unwrap()
}

fn decode_settings(weights: DType) -> RunSettings {
    RunSettings {
        batch: 1,
        precisions: Precisions { weights, activations: DType::F32, kv_cache: DType::F16 },
        logits_for_all_prompt_tokens: false,
    }
}

/// A Q4_K_M stack records the products whose bytes go by the depth, and sets them for another
/// depth as llama.cpp's quantiser stores them (`use_more_bits`: the first and last eighth of
/// the layers, and every third one between, get Q6_K).
#[test]
fn q4_k_m_products_are_set_for_another_depth_by_hand() {
    let arch = smollm();
    let (mut ops, mut bound) = (Vec::new(), DepthBound::default());
    let plan = (Plan::NAIVE, Part::All);
    layers_depth_bound_into(&arch, Phase::Decode, &decode_settings(DType::Q4KM), plan, &mut ops, &mut bound);
    assert!(bound.exact);
    let names: Vec<&str> = bound.products.iter().map(|p| ops[p.op].name).collect();
    assert_eq!(names, ["v_proj", "down_proj"]);
    let down = bound.products[1];
    // ffn_down is 1536 x 576 = 884,736 elements; Q4_K stores 256 in 144 B, Q6_K in 210 B.
    // 30 layers: 0-2, 26-29 and 5, 8, ..., 23 get Q6_K: 14 of 30.
    let at_30 = 884_736.0 * (16.0 * 144.0 + 14.0 * 210.0) / 256.0 / 30.0;
    let built = ops[down.op].weight_bytes.base;
    assert!((built / at_30 - 1.0).abs() < 1e-12, "{built} vs {at_30}");
    assert_eq!(down.at(30), (ops[down.op].weight_bytes, TensorType::Q4K));
    // 16 layers: 0-1, 14-15 and 4, 7, 10, 13: 8 of 16, so 177 B per 256 elements.
    assert_eq!(down.at(16), (Linear::constant(884_736.0 * 177.0 / 256.0), TensorType::Q4K));
    // Q4_0 stores every layer alike: nothing goes by the depth.
    layers_depth_bound_into(&arch, Phase::Decode, &decode_settings(DType::Q4_0), plan, &mut ops, &mut bound);
    assert!(bound.exact && bound.products.is_empty());
    // A MoE stack mixes its experts' `ffn_down` into one product: it is built again instead.
    let text = include_str!("../../models/DeepSeek-V2-Lite-Chat.json");
    let moe = crate::arch::parse_hf_config(text, "DeepSeek-V2-Lite-Chat.json", "DeepSeek-V2-Lite").unwrap();
    layers_depth_bound_into(&moe, Phase::Decode, &decode_settings(DType::Q4KM), plan, &mut ops, &mut bound);
    assert!(!bound.exact);
}
