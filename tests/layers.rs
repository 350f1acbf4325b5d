//! Layer kinds (windows, short convolutions, Gated DeltaNet, Mamba2): parameters, cache and
//! state sizes, and the operators' FLOPs and bytes, each against a count worked out by hand in
//! the comment or a published total.

use rooflinebench::arch::{Architecture, Attention, DeltaNet, Ffn, Layer, Mamba2, Mixer};
use rooflinebench::device::builtin;
use rooflinebench::dtype::{DType, Precisions};
use rooflinebench::roofline::{Evaluator, PlanChoice, Scenario};
use rooflinebench::workload::{operators, Operator, Phase, Plan, RunSettings};

fn gqa(heads: u32, kv_heads: u32, head_dim: u32) -> Attention {
    Attention::Grouped { num_heads: heads, num_kv_heads: kv_heads, head_dim }
}

/// A Gemma-3-270M-shaped stack: 6 layers of hidden 640, one KV head of 256, five windowed
/// layers of `window` then one global layer.
fn windowed(window: u32) -> Architecture {
    let w = Layer::of(Mixer::Window { window });
    Architecture {
        layers: vec![w, w, w, w, w, Layer::GLOBAL],
        ..Architecture::plain("w".into(), 6, 640, 1000, true, gqa(4, 1, 256), Ffn::swiglu(2048))
    }
}

fn f16_settings() -> RunSettings {
    let p = Precisions { weights: DType::F16, activations: DType::F16, kv_cache: DType::F16 };
    RunSettings { precisions: p, ..RunSettings::default() }
}

fn op<'a>(ops: &'a [Operator], name: &str, window: u32) -> &'a Operator {
    ops.iter().find(|o| o.name == name && o.window == window).unwrap_or_else(|| panic!("no {name} ({window})"))
}

#[test]
fn lfm2_350m_built_by_hand_has_its_published_count() {
    // LFM2-350M (model card: 354,483,968): hidden 1024, 16 layers, attention at 2, 5, 8, 10,
    // 12, 14 (16 q / 8 kv heads of 64, q/k norms), short convolutions of 3 taps elsewhere,
    // SwiGLU 4608, vocabulary 65536, tied.
    // By hand: embedding 65536 * 1024 = 67,108,864; conv layer 4 * 1024^2 + 3 * 1024 =
    // 4,197,376 (x10); attention layer 1024^2 * 3 + 128 = 3,145,856 (x6); FFN 3 * 1024 * 4608
    // = 14,155,776 and 2 norms of 1024 per layer (x16); final norm 1024. Total 354,483,968.
    let attention = [2, 5, 8, 10, 12, 14];
    let layers = (0..16)
        .map(|i| if attention.contains(&i) { Layer::GLOBAL } else { Layer::of(Mixer::ShortConv { kernel: 3 }) })
        .collect();
    let a = Architecture {
        layers,
        qk_norm: true,
        ..Architecture::plain("lfm2".into(), 16, 1024, 65536, true, gqa(16, 8, 64), Ffn::swiglu(4608))
    };
    a.validate("lfm2").unwrap();
    assert_eq!(a.parameters(), 354_483_968);
    assert_eq!(a.attention_layers(), 6);
    // KV per token: 6 layers x 2 x 8 x 64 elements x 2 bytes = 12,288 B; conv state per
    // sequence: 10 layers x 2 x 1024 f32 = 81,920 B.
    assert_eq!(a.kv_elements_per_token() * 2, 12_288);
    assert_eq!(a.state_elements() * 4, 81_920);
}

#[test]
fn state_sizes_per_layer_equal_the_hand_derivation() {
    // Short convolution of 3 taps at hidden 1024: the last 2 inputs, 2 * 1024 * 4 B = 8 KiB.
    assert_eq!(Mixer::ShortConv { kernel: 3 }.state_elements(1024) * 4, 8192);
    // Qwen3.5-0.8B's DeltaNet: 16 value heads of 128 x 128 f32 = 1,048,576 B; convolution of
    // 4 taps over q, k, v (2 * 2048 + 2048 = 6144 channels): 3 * 6144 * 4 = 73,728 B.
    let g = DeltaNet { key_heads: 16, value_heads: 16, key_head_dim: 128, value_head_dim: 128, conv_kernel: 4 };
    assert_eq!(Mixer::DeltaNet(g).state_elements(1024) * 4, 1_048_576 + 73_728);
    // Falcon-H1-0.5B's Mamba2: 24 heads of 64 (inner 1536), state 128, 1 group, 4 taps:
    // 1536 * 128 * 4 = 786,432 B and 3 * (1536 + 2 * 128) * 4 = 21,504 B: 789 KiB.
    let m = Mamba2 { heads: 24, head_dim: 64, state_size: 128, groups: 1, conv_kernel: 4, conv_bias: true };
    assert_eq!(Mixer::Mamba2(m).state_elements(1024) * 4, 807_936);
    // Its parameters (5.02 M per mixer in the note's table): in_proj 1024 * (2 * 1536 + 256 +
    // 24) = 3,432,448; conv 4 * 1792 + 1792 bias = 8,960; dt_bias, A, D 72; norm 1536;
    // out_proj 1536 * 1024 = 1,572,864. Sum 5,015,880.
    assert_eq!(Mixer::Mamba2(m).recurrent_params(1024), 5_015_880);
}

#[test]
fn windowed_layers_cache_their_window_only() {
    let a = windowed(512);
    // Per token per layer: 2 x 1 x 256 elements x 2 B = 1024 B. At 4096 tokens: the global
    // layer 4096 * 1024 = 4,194,304 B, five windowed layers 5 * 512 * 1024 = 2,621,440 B.
    assert_eq!(a.cache_bytes(1, 4096, 2.0), 6_815_744.0);
    // Below the window every layer holds every token: 6 * 100 * 1024 = 614,400 B.
    assert_eq!(a.cache_bytes(1, 100, 2.0), 614_400.0);
    // Two sequences hold twice as much.
    assert_eq!(a.cache_bytes(2, 4096, 2.0), 2.0 * 6_815_744.0);
}

#[test]
fn windowed_prefill_attends_to_the_window() {
    // Fused attention of a 4096-token prompt: a windowed layer computes W(W+1)/2 + (N-W)W =
    // 131,328 + 3584 * 512 = 1,966,336 query-key pairs, a global one N(N+1)/2 = 8,390,656.
    // Each pair costs 4 heads x (2 * 256 + 2 * 256 + 5) = 4116 FLOPs.
    let ops = operators(&windowed(512), Phase::Prefill { prompt: 4096 }, &f16_settings(), Plan::NAIVE);
    let fused = Plan { attention: rooflinebench::workload::AttentionForm::Fused, ..Plan::NAIVE };
    let ops_fused = operators(&windowed(512), Phase::Prefill { prompt: 4096 }, &f16_settings(), fused);
    let local = op(&ops_fused, "attention", 512);
    let global = op(&ops_fused, "attention", 0);
    assert_eq!((local.count, global.count), (5, 1));
    assert_eq!(local.flops.base, 1_966_336.0 * 4116.0);
    assert_eq!(global.flops.base, 8_390_656.0 * 4116.0);
    // Unfused, an eager kernel still computes the dense (masked) score matrix: N^2 per head.
    let scores = op(&ops, "attn_scores", 512);
    assert_eq!(scores.flops.base, 4096.0 * 4096.0 * 4.0 * 2.0 * 256.0);
}

#[test]
fn windowed_decode_reads_at_most_the_window_and_sums_split_there() {
    // SILO (prompt 128, 4096 generated): steps attend to n = 129 ..= 4224 keys; a window of
    // 512 reads min(n, 512): (129 + 512)(512 - 129 + 1)/2 + (4224 - 512) * 512 = 123,072 +
    // 1,900,544 = 2,023,616 tokens, each 2 x 256 elements x 2 B = 1024 B per layer.
    let fused = Plan { attention: rooflinebench::workload::AttentionForm::Fused, ..Plan::NAIVE };
    let ops = operators(&windowed(512), Phase::Decode, &f16_settings(), fused);
    let local = op(&ops, "attention", 512);
    let (pieces, n) = local.pieces(129.0, 4224.0);
    let read: f64 = pieces[..n].iter().map(|(p, lo, hi)| p.kv_read_bytes.sum(*lo, *hi)).sum();
    assert_eq!(read, 2_023_616.0 * 1024.0);
    // The global layer reads every key: (129 + 4224) * 4096 / 2 = 8,914,944 tokens.
    let global = op(&ops, "attention", 0);
    assert_eq!(global.kv_read_bytes.sum(129.0, 4224.0), 8_914_944.0 * 1024.0);
    // The whole scenario's decode time: a window wider than every context costs exactly what
    // global attention does, and a 512 window costs less.
    let device = builtin("rpi5").unwrap();
    let s = Scenario::new("silo", 128, 4096).unwrap();
    let time = |a: &Architecture| {
        Evaluator::new(&device, f16_settings(), PlanChoice::Fastest).scenario(a, &s).decode.point.time_s
    };
    let all_global = Architecture { layers: Vec::new(), ..windowed(512) };
    // (Equal up to rounding: six layers priced as one group or as five and one.)
    let (wide, global) = (time(&windowed(1 << 20)), time(&all_global));
    assert!((wide - global).abs() <= 1e-12 * global, "{wide} {global}");
    assert!(time(&windowed(512)) < time(&all_global));
}

#[test]
fn recurrent_layers_read_and_write_their_state_every_step() {
    // One DeltaNet layer (Qwen3.5-0.8B's shape) at hidden 1024: each decode step reads and
    // writes the 1 MiB state and the 72 KiB convolution tail, whatever the context.
    let g = DeltaNet { key_heads: 16, value_heads: 16, key_head_dim: 128, value_head_dim: 128, conv_kernel: 4 };
    let a = Architecture {
        layers: vec![Layer::of(Mixer::DeltaNet(g)), Layer::GLOBAL],
        ..Architecture::plain("gdn".into(), 2, 1024, 1000, true, gqa(8, 2, 128), Ffn::swiglu(3584))
    };
    let ops = operators(&a, Phase::Decode, &f16_settings(), Plan::NAIVE);
    let scan = op(&ops, "deltanet_scan", 0);
    assert_eq!((scan.kv_read_bytes.base, scan.kv_read_bytes.per_ctx), (1_048_576.0, 0.0));
    assert_eq!(scan.kv_write_bytes.base, 1_048_576.0);
    // 7 FLOPs per state element per token (decay, S^T k, rank-1 update, S^T q) + 10 per head:
    // 7 * 262,144 + 160 = 1,835,168.
    assert_eq!(scan.flops.base, 1_835_168.0);
    let conv = op(&ops, "deltanet_conv", 0);
    assert_eq!(conv.kv_read_bytes.base, 73_728.0);
    // in_proj: 1024 x (6144 + 2048 + 32) at 2 B per weight, 2 FLOPs per weight.
    let in_proj = op(&ops, "deltanet_in_proj", 0);
    assert_eq!(in_proj.flops.base, 2.0 * 1024.0 * 8224.0);
    // The footprint adds the states to one layer's KV: 1000 tokens x 2 x 2 x 128 x 2 B =
    // 1,024,000 B, and 1,048,576 + 73,728 = 1,122,304 B per sequence.
    assert_eq!(a.cache_bytes(1, 1000, 2.0), 1_024_000.0 + 1_122_304.0);
}

#[test]
fn nope_layers_skip_rope_and_pure_mamba_layers_have_no_ffn() {
    let mut a = windowed(512);
    a.layers = vec![Layer::GLOBAL; 6];
    a.layers[3].rope = false;
    let ops = operators(&a, Phase::Decode, &f16_settings(), Plan::NAIVE);
    let rope: u32 = ops.iter().filter(|o| o.name == "rope").map(|o| o.count).sum();
    assert_eq!(rope, 5);
    let m = Mamba2 { heads: 24, head_dim: 64, state_size: 128, groups: 1, conv_kernel: 4, conv_bias: true };
    let mamba = Layer { mixer: Mixer::Mamba2(m), rope: false, ffn: false };
    let pure = Architecture {
        layers: vec![mamba; 4],
        ..Architecture::plain("m".into(), 4, 768, 1000, true, gqa(12, 12, 64), Ffn::swiglu(2048))
    };
    let ops = operators(&pure, Phase::Decode, &f16_settings(), Plan::NAIVE);
    assert!(ops.iter().all(|o| !o.name.contains("proj") || o.name.starts_with("mamba")), "{ops:?}");
    // One norm per layer, the mixers and the final norm, embeddings tied:
    // 4 x (768 + mixer) + 768 + 1000 x 768.
    let mixer = Mixer::Mamba2(m).recurrent_params(768);
    assert_eq!(pure.parameters(), 4 * (768 + mixer) + 768 + 768_000);
}

#[test]
fn explain_plan_describes_recurrent_mixers() {
    let g = DeltaNet { key_heads: 16, value_heads: 16, key_head_dim: 128, value_head_dim: 128, conv_kernel: 4 };
    let a = Architecture {
        layers: vec![Layer::of(Mixer::DeltaNet(g)), Layer::of(Mixer::DeltaNet(g)), Layer::GLOBAL],
        ..Architecture::plain("gdn".into(), 3, 1024, 1000, true, gqa(8, 2, 128), Ffn::swiglu(3584))
    };
    let device = builtin("rpi5").unwrap();
    let text = rooflinebench::analysis::explain_mixers(&a, &device, &f16_settings(), "decode", 128.0);
    // Two DeltaNet layers, six kernels (in_proj, conv, q/k norm, scan, gated norm, out_proj),
    // and the state of 1,048,576 + 73,728 B.
    assert!(text.contains("2 deltanet layers"), "{text}");
    assert!(text.contains("6 kernels") && text.contains("deltanet_scan"), "{text}");
    assert!(text.contains("state 1.12 MB per sequence"), "{text}");
}

#[test]
fn every_kind_of_hybrid_candidate_exports_as_the_same_model() {
    use rooflinebench::arch::{parse_hf_config, try_export_hf_config};
    use rooflinebench::search::SearchSpace;
    let space = SearchSpace::load(&crate::common::repo().join("search-spaces/around-350m-hybrid.toml")).unwrap();
    let mut kinds = std::collections::BTreeMap::new();
    // Every 97th candidate: all five blocks, every axis value many times over.
    for index in (0..space.count()).step_by(97) {
        let Ok(c) = space.candidate(index) else { continue };
        let config = try_export_hf_config(&c.arch).unwrap_or_else(|e| panic!("#{index} {}: {e}", c.arch.stack_label()));
        let back = parse_hf_config(&config.to_string(), "exported", "x").unwrap();
        assert_eq!(back.parameters(), c.arch.parameters(), "#{index} {}", c.arch.stack_label());
        assert_eq!(back.layers, c.arch.layers, "#{index}");
        *kinds.entry(c.arch.stack_kind()).or_insert(0) += 1;
    }
    let names: Vec<_> = kinds.keys().copied().collect();
    for kind in ["gqa", "gqa+conv", "gqa+deltanet", "gqa+mamba2", "gqa+window", "mqa", "mqa+window"] {
        assert!(names.contains(&kind), "{kind} missing from {names:?}");
    }
}

#[test]
fn the_reproduction_changes_only_the_layer_kind() {
    let base = crate::common::model("Llama-3.2-1B");
    let stacks = rooflinebench::reproduce::hybrid_stacks(&base);
    let params = |label: &str| stacks.iter().find(|(l, _)| *l == label).unwrap().1.parameters();
    // A window changes no parameter: 1,235,814,400 (the published total).
    assert_eq!(params("global"), 1_235_814_400);
    assert_eq!(params("window512"), 1_235_814_400);
    // 12 of 16 layers become short convolutions: attention 2048 x (2048 + 512 + 512 + 2048) =
    // 10,485,760 out, 4 x 2048^2 + 3 x 2048 = 16,783,360 in: +6,297,600 x 12 = 75,571,200.
    assert_eq!(params("conv3"), 1_235_814_400 + 75_571_200);
    for (label, a) in &stacks[1..] {
        // Windowed layers attend too; the others leave attention to layers 3, 7, 11 and 15.
        assert_eq!(a.attention_layers(), if *label == "window512" { 16 } else { 4 }, "{}", a.name);
        assert_eq!((a.hidden_size, a.ffn), (base.hidden_size, base.ffn));
    }
}

#[test]
fn llama_cpp_sizes_window_caches_as_its_iswa_cache_does() {
    // shared/notes/hybrid-layers.md 2.3: GGML_PAD(min(n_ctx, n_swa + n_ubatch), 256) cells with
    // n_ubatch 512: W = 512 -> 1024 cells, W = 1024 -> 1536, gpt-oss's W = 128 -> 768.
    let engine = builtin("rpi5").unwrap().engine.unwrap();
    assert_eq!(engine.window_cells(512, 4224), 1024);
    assert_eq!(engine.window_cells(1024, 4224), 1536);
    assert_eq!(engine.window_cells(128, 4224), 768);
    // A context shorter than the window plus a ubatch: the context, padded to 256.
    assert_eq!(engine.window_cells(512, 300), 512);
    // So a Gemma-3-270M-shaped stack (5 windowed layers, 1024 B per token each, and one global
    // layer) holds at 4224 tokens 4224 x 1024 + 5 x 1024 x 1024 B on llama.cpp, against
    // 4224 x 1024 + 5 x 512 x 1024 B by the window alone.
    let a = windowed(512);
    let cells = |w: u32, c: u64| engine.window_cells(w, c);
    assert_eq!(a.cache_bytes_with(1, 4224, 2.0, &cells), (4224.0 + 5.0 * 1024.0) * 1024.0);
    assert_eq!(a.cache_bytes(1, 4224, 2.0), (4224.0 + 5.0 * 512.0) * 1024.0);
}

#[test]
fn a_huge_layer_count_is_refused_before_any_per_layer_list_is_built() {
    // Found by the config fuzzer: a windowed config with 4e9 layers allocated 120 GB and aborted.
    let text = r#"{"model_type": "mistral", "hidden_size": 64, "intermediate_size": 128,
        "num_hidden_layers": 4000000000, "num_attention_heads": 4, "vocab_size": 100, "sliding_window": 16}"#;
    let e = rooflinebench::arch::parse_hf_config(text, "huge.json", "huge").unwrap_err().to_string();
    assert!(e.contains("huge.json") && e.contains("num_hidden_layers") && e.contains("1024"), "{e}");
}
