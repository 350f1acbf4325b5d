//! The hybrid families read from their published configs (counts against the published totals
//! of tests/fixtures/hybrid/README.md), exported as the family that expresses them, read back
//! unchanged, and refused where no transformers class builds them.

use crate::common::repo;
use rooflinebench::arch::{
    load_hf_config, parse_hf_config, try_export_hf_config, Architecture, DeltaNet, Family, Ffn, Layer, Mamba2, Mixer,
};
use std::path::PathBuf;

fn fixture_path(name: &str) -> PathBuf {
    repo().join("tests/fixtures/hybrid").join(format!("{name}.json"))
}

fn fixture(name: &str) -> Architecture {
    load_hf_config(&fixture_path(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Published totals (README, "published total parameters", exact).
const EXACT: [(&str, u64); 8] = [
    ("gemma-3-270m", 268_098_176),
    ("gemma-3-1b-it", 999_885_952),
    ("LFM2-350M", 354_483_968),
    ("LFM2-1.2B", 1_170_340_608),
    ("SmolLM3-3B", 3_075_098_624),
    ("gpt-oss-20b", 20_914_757_184),
    ("Mistral-7B-v0.1", 7_241_732_096),
    ("gemma-2-2b", 2_614_341_888),
];

#[test]
fn published_totals_exactly() {
    for (name, total) in EXACT {
        assert_eq!(fixture(name).parameters(), total, "{name}");
    }
}

#[test]
fn rounded_totals_within_their_rounding() {
    // Qwen3-Next-80B-A3B: "80B" on the card, rounded to 1 B.
    let p = fixture("Qwen3-Next-80B-A3B-Instruct").parameters();
    assert!((79_500_000_000..80_500_000_000).contains(&p), "{p}");
    // Granite 4.0-H-350M: "350M" by name, "340M" by a guide: between the two roundings.
    let p = fixture("granite-4.0-h-350m").parameters();
    assert!((335_000_000..355_000_000).contains(&p), "{p}");
}

fn attention_at(a: &Architecture) -> Vec<u32> {
    (0..a.num_layers).filter(|&i| a.layer(i).mixer == Mixer::Global).collect()
}

#[test]
fn layer_kinds_as_published() {
    // Gemma 3: full attention at (i + 1) % 6 == 0, a 512 window elsewhere; from layer_types
    // (270M) and from sliding_window_pattern (1B).
    assert_eq!(attention_at(&fixture("gemma-3-270m")), [5, 11, 17]);
    let g = fixture("gemma-3-1b-it");
    assert_eq!(attention_at(&g), [5, 11, 17, 23]);
    assert_eq!(g.layer(0).mixer, Mixer::Window { window: 512 });
    assert_eq!((g.norms_per_layer, g.qk_norm, g.tie_embeddings), (4, true, true));
    // LFM2: attention at full_attn_idxs, convolutions of 3 taps elsewhere; FFN width 6656 ->
    // int(2 x 6656 / 3) = 4437 -> up to a multiple of 256 = 4608; 12288 -> 8192.
    for (name, ff) in [("LFM2-350M", 4608), ("LFM2-1.2B", 8192)] {
        let a = fixture(name);
        assert_eq!(attention_at(&a), [2, 5, 8, 10, 12, 14], "{name}");
        assert_eq!(a.layer(0).mixer, Mixer::ShortConv { kernel: 3 });
        assert!(matches!(a.ffn, Ffn::Dense { intermediate_size, .. } if intermediate_size == ff), "{name}");
    }
    // SmolLM3: NoPE at 3, 7, ..., 35, all global.
    let s = fixture("SmolLM3-3B");
    let nope: Vec<u32> = (0..36).filter(|&i| !s.layer(i).rope).collect();
    assert_eq!(nope, (0..9).map(|k| 4 * k + 3).collect::<Vec<_>>());
    assert_eq!(s.attention_layers(), 36);
    // gpt-oss: 128-token windows on even layers, sinks, biased MoE.
    let o = fixture("gpt-oss-20b");
    assert_eq!(attention_at(&o), (0..12).map(|k| 2 * k + 1).collect::<Vec<_>>());
    assert_eq!(o.layer(0).mixer, Mixer::Window { window: 128 });
    let Ffn::Moe(m) = o.ffn else { panic!("gpt-oss is MoE") };
    assert_eq!((m.num_experts, m.experts_per_token, m.num_shared_experts), (32, 4, 0));
    assert!(m.expert_bias && m.router_bias && o.attention_sinks && o.qkv_bias && o.o_bias);
    // Granite 4.0-H: attention at 10, 13, 17, 27 without RoPE, Mamba2 elsewhere, dense 2048.
    let g = fixture("granite-4.0-h-350m");
    let at: Vec<u32> = (0..32).filter(|&i| g.layer(i).mixer.is_attention()).collect();
    assert_eq!(at, [10, 13, 17, 27]);
    assert!(!g.layer(10).rope);
    let mamba = Mamba2 { heads: 48, head_dim: 32, state_size: 128, groups: 1, conv_kernel: 4, conv_bias: true };
    assert_eq!(g.layer(0).mixer, Mixer::Mamba2(mamba));
    assert!(matches!(g.ffn, Ffn::Dense { intermediate_size: 2048, .. }));
    // Qwen3-Next: full attention every fourth layer, gated, 512 experts with one shared.
    let q = fixture("Qwen3-Next-80B-A3B-Instruct");
    assert_eq!(attention_at(&q), (0..12).map(|k| 4 * k + 3).collect::<Vec<_>>());
    let g = DeltaNet { key_heads: 16, value_heads: 32, key_head_dim: 128, value_head_dim: 128, conv_kernel: 4 };
    assert_eq!(q.layer(0).mixer, Mixer::DeltaNet(g));
    assert!(q.attn_output_gate && q.qk_norm);
    let Ffn::Moe(m) = q.ffn else { panic!("Qwen3-Next is MoE") };
    assert_eq!((m.num_experts, m.experts_per_token, m.num_shared_experts, m.shared_expert_gate), (512, 10, 1, true));
}

/// Reads `text` as `name`'s config.
fn parse(text: &str) -> Architecture {
    parse_hf_config(text, "t.json", "t").unwrap_or_else(|e| panic!("{e}"))
}

fn parse_err(text: &str) -> String {
    parse_hf_config(text, "t.json", "t").unwrap_err().to_string()
}

#[test]
fn small_hybrids_by_hand() {
    // Pure Mamba2: d 64, 2 layers, vocab 100, untied (transformers' default); 4 heads x 32 =
    // 128 = 2 x 64, state 16, 1 group, kernel 4 with bias. in_proj 64 x (128 + 160 + 4) =
    // 18688; conv_dim 128 + 32 = 160: kernel 640 + bias 160; dt_bias, A_log, D 12; gated norm
    // 128; out_proj 8192; block norm 64: 27884 per layer, 55768. Embedding and head 12800,
    // final norm 64: 68632.
    let m = parse(
        r#"{"model_type":"mamba2","hidden_size":64,"num_hidden_layers":2,"vocab_size":100,"num_heads":4,
            "head_dim":32,"state_size":16,"n_groups":1,"conv_kernel":4,"expand":2}"#,
    );
    assert_eq!(m.parameters(), 68_632);
    assert_eq!(m.attention_layers(), 0);
    // Dense Qwen3.5 text: d 64, layers [linear, full], vocab 100, untied; attention 4/2 heads x
    // 16 gated: q 64 x 128 + k, v 2 x 64 x 32 + o 64 x 64 + q/k norms 32 = 16416; DeltaNet 2/4
    // heads x 8/16, kernel 4: key 16, value 64, conv 96; in_proj 64 x (96 + 64 + 8) = 10752,
    // conv 384, A_log and dt_bias 8, norm 16, out_proj 4096 = 15256; FFN 3 x 64 x 96 = 18432
    // per layer; norms 128 per layer. 16416 + 15256 + 2 x (18432 + 128) + 12800 + 64 = 81656.
    let q = parse(
        r#"{"model_type":"qwen3_5","text_config":{"hidden_size":64,"num_hidden_layers":2,"vocab_size":100,
            "num_attention_heads":4,"num_key_value_heads":2,"head_dim":16,"intermediate_size":96,
            "layer_types":["linear_attention","full_attention"],"linear_num_key_heads":2,
            "linear_num_value_heads":4,"linear_key_head_dim":8,"linear_value_head_dim":16}}"#,
    );
    assert_eq!(q.family, Family::Qwen35Text);
    assert_eq!(q.parameters(), 81_656);
}

#[test]
fn defaults_are_transformers_defaults() {
    // LFM2 with neither layer_types nor full_attn_idxs: every layer attention.
    let a = parse(
        r#"{"model_type":"lfm2","hidden_size":64,"num_hidden_layers":3,"vocab_size":100,"num_attention_heads":4,
            "num_key_value_heads":2,"intermediate_size":96,"block_auto_adjust_ff_dim":false}"#,
    );
    assert_eq!(a.attention_layers(), 3);
    assert!(a.tie_embeddings && a.qk_norm);
    // gpt-oss without layer_types: windows of 128 from layer 0, every other layer.
    let o = parse(
        r#"{"model_type":"gpt_oss","hidden_size":64,"num_hidden_layers":4,"vocab_size":100,"num_attention_heads":4,
            "num_key_value_heads":2,"num_local_experts":4,"intermediate_size":32}"#,
    );
    assert_eq!(attention_at(&o), [1, 3]);
    assert_eq!(o.layer(0).mixer, Mixer::Window { window: 128 });
    // SmolLM3 from no_rope_layer_interval: NoPE at 2 and 5 for an interval of 3.
    let s = parse(
        r#"{"model_type":"smollm3","hidden_size":64,"num_hidden_layers":6,"vocab_size":100,"num_attention_heads":4,
            "intermediate_size":96,"no_rope_layer_interval":3}"#,
    );
    assert_eq!((0..6).filter(|&i| !s.layer(i).rope).collect::<Vec<_>>(), [2, 5]);
}

#[test]
fn inexpressible_configs_are_refused_naming_the_field() {
    let base = r#""hidden_size":64,"num_hidden_layers":4,"vocab_size":100,"num_attention_heads":4"#;
    for (text, field) in [
        (format!(r#"{{"model_type":"lfm2",{base},"conv_bias":true}}"#), "conv_bias"),
        (format!(r#"{{"model_type":"qwen3_next",{base},"decoder_sparse_step":2}}"#), "decoder_sparse_step"),
        (format!(r#"{{"model_type":"qwen3_next",{base},"mlp_only_layers":[2]}}"#), "mlp_only_layers"),
        (
            format!(r#"{{"model_type":"granitemoehybrid",{base},"mamba_proj_bias":true,"mamba_n_heads":4}}"#),
            "mamba_proj_bias",
        ),
        (format!(r#"{{"model_type":"granitemoehybrid",{base},"mamba_n_heads":5}}"#), "mamba_n_heads"),
        (
            format!(r#"{{"model_type":"gpt_oss",{base},"num_experts_per_tok":2,"experts_per_token":4}}"#),
            "experts_per_token",
        ),
        (format!(r#"{{"model_type":"mamba2",{base},"num_heads":3,"head_dim":32}}"#), "num_heads"),
        (format!(r#"{{"model_type":"smollm3",{base},"no_rope_layers":[1,1]}}"#), "no_rope_layers"),
        (
            format!(r#"{{"model_type":"gemma3_text",{base},"layer_types":["conv","conv","conv","conv"]}}"#),
            "layer_types",
        ),
    ] {
        let e = parse_err(&text);
        assert!(e.starts_with(&format!("t.json: field '{field}'")) && !e.contains('\n'), "{field}: {e}");
    }
}

/// Structural equality: everything but the name and the family (the label of the class it came
/// from; an export may name another class that builds the same model).
fn same(a: &Architecture, b: &Architecture) -> bool {
    let mut b = b.clone();
    b.name = a.name.clone();
    b.family = a.family;
    *a == b
}

/// Exports `a`, reads it back, checks it is `a` written as `family`; returns the config.
fn round_trip(a: &Architecture, family: &str) -> serde_json::Value {
    let config = try_export_hf_config(a).unwrap_or_else(|e| panic!("{}: {e}", a.name));
    assert_eq!(config["model_type"], family, "{}", a.name);
    let back = parse_hf_config(&config.to_string(), "export", &a.name).unwrap();
    assert!(same(a, &back), "{}:\n{a:?}\n{back:?}", a.name);
    config
}

#[test]
fn every_fixture_survives_its_export() {
    for (name, family) in [
        ("gemma-3-270m", "gemma3_text"),
        ("gemma-3-1b-it", "gemma3_text"),
        ("LFM2-350M", "lfm2"),
        ("LFM2-1.2B", "lfm2"),
        ("SmolLM3-3B", "smollm3"),
        ("gpt-oss-20b", "gpt_oss"),
        ("Mistral-7B-v0.1", "mistral"),
        ("gemma-2-2b", "gemma2"),
        ("granite-4.0-h-350m", "granitemoehybrid"),
        ("Qwen3-Next-80B-A3B-Instruct", "qwen3_next"),
    ] {
        let config = round_trip(&fixture(name), family);
        // Keys sorted, bytes deterministic.
        let keys: Vec<&String> = config.as_object().unwrap().keys().collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "{name}");
    }
    // LFM2's width is written as priced, not through the auto-adjust rule.
    let c = round_trip(&fixture("LFM2-350M"), "lfm2");
    assert_eq!((c["intermediate_size"].as_u64(), c["block_auto_adjust_ff_dim"].as_bool()), (Some(4608), Some(false)));
}

/// A llama-like stack of `n` layers (d 64, 4/2 heads, FFN 96).
fn llama(n: u32) -> Architecture {
    parse(&format!(
        r#"{{"model_type":"llama","hidden_size":64,"num_hidden_layers":{n},"vocab_size":100,"num_attention_heads":4,
            "num_key_value_heads":2,"intermediate_size":96}}"#
    ))
}

/// Synthetic hybrids, each written as the one family whose class builds it.
pub fn synthetic() -> Vec<(Architecture, &'static str)> {
    let window = Layer::of(Mixer::Window { window: 256 });
    let named = |mut a: Architecture, name: &str| {
        a.name = name.into();
        a
    };
    // 5 windowed : 1 global.
    let mut five_one = llama(12);
    five_one.layers = (0..12).map(|i| if (i + 1) % 6 == 0 { Layer::GLOBAL } else { window }).collect();
    // One window on every layer.
    let mut uniform = llama(4);
    uniform.layers = vec![window; 4];
    // NoPE every third layer.
    let mut nope = llama(6);
    nope.layers = (0..6).map(|i| Layer { rope: i % 3 != 2, ..Layer::GLOBAL }).collect();
    // Convolutions with attention every third layer, as LFM2 builds them.
    let mut conv = fixture("LFM2-350M");
    conv.num_layers = 6;
    conv.layers =
        (0..6).map(|i| if i % 3 == 2 { Layer::GLOBAL } else { Layer::of(Mixer::ShortConv { kernel: 4 }) }).collect();
    // Dense Gated DeltaNet 3:1 (Qwen3.5 text) and the MoE one (Qwen3-Next, two dense layers first).
    let g = DeltaNet { key_heads: 2, value_heads: 4, key_head_dim: 16, value_head_dim: 16, conv_kernel: 4 };
    let delta =
        |n: u32| (0..n).map(|i| if (i + 1) % 4 == 0 { Layer::GLOBAL } else { Layer::of(Mixer::DeltaNet(g)) }).collect();
    let mut qwen35 = llama(8);
    qwen35.layers = delta(8);
    qwen35.qk_norm = true;
    qwen35.attn_output_gate = true;
    let mut next = fixture("Qwen3-Next-80B-A3B-Instruct");
    next.num_layers = 8;
    next.layers = delta(8);
    if let Ffn::Moe(ref mut m) = next.ffn {
        m.first_k_dense = 2;
        m.dense_intermediate_size = 1024;
        m.num_shared_experts = 2;
    }
    // Mamba2 with attention (Granite 4.0-H style, with RoPE), and pure Mamba2.
    let m = Mamba2 { heads: 8, head_dim: 16, state_size: 32, groups: 2, conv_kernel: 4, conv_bias: false };
    let mut granite = llama(6);
    granite.layers = (0..6).map(|i| if i == 3 { Layer::GLOBAL } else { Layer::of(Mixer::Mamba2(m)) }).collect();
    let mut mamba = llama(3);
    mamba.layers = vec![Layer { mixer: Mixer::Mamba2(m), rope: true, ffn: false }; 3];
    mamba.attention = rooflinebench::arch::Attention::Grouped { num_heads: 4, num_kv_heads: 4, head_dim: 16 };
    vec![
        (named(five_one, "llama-5to1-windows"), "smollm3"),
        (named(uniform, "llama-uniform-window"), "mistral"),
        (named(nope, "llama-nope"), "smollm3"),
        (named(conv, "conv-hybrid"), "lfm2"),
        (named(qwen35, "deltanet-dense"), "qwen3_5_text"),
        (named(next, "deltanet-moe"), "qwen3_next"),
        (named(granite, "mamba2-attention"), "granitemoehybrid"),
        (named(mamba, "mamba2-only"), "mamba2"),
    ]
}

#[test]
fn synthetic_hybrids_survive_their_export() {
    for (a, family) in synthetic() {
        a.validate("synthetic").unwrap();
        round_trip(&a, family);
    }
}

#[test]
fn exports_no_class_builds_are_refused_naming_the_field() {
    let conv = Layer::of(Mixer::ShortConv { kernel: 3 });
    let mut cases: Vec<(Architecture, &str)> = Vec::new();
    // Convolutions without LFM2's q/k norms.
    let mut a = llama(3);
    a.layers = vec![conv, conv, Layer::GLOBAL];
    cases.push((a, "qk_norm"));
    // Two window sizes.
    let mut a = llama(2);
    a.layers = vec![Layer::of(Mixer::Window { window: 64 }), Layer::of(Mixer::Window { window: 128 })];
    cases.push((a, "sliding_window"));
    // DeltaNet without the gated attention of Qwen3-Next / Qwen3.5.
    let (mut a, _) = synthetic().into_iter().find(|(a, _)| a.name == "deltanet-dense").unwrap();
    a.attn_output_gate = false;
    cases.push((a, "attn_output_gate"));
    // Mamba2 layers without FFNs beside attention.
    let (mut a, _) = synthetic().into_iter().find(|(a, _)| a.name == "mamba2-attention").unwrap();
    a.layers[0].ffn = false;
    cases.push((a, "layers.ffn"));
    // NoPE in a Qwen3 stack.
    let mut a = llama(2);
    a.family = Family::Qwen3;
    a.qk_norm = true;
    a.layers = vec![Layer { rope: false, ..Layer::GLOBAL }, Layer::GLOBAL];
    cases.push((a, "layers.rope"));
    for (a, field) in cases {
        let e = try_export_hf_config(&a).unwrap_err().to_string();
        assert!(e.contains(&format!("field '{field}'")) && !e.contains('\n'), "{field}: {e}");
    }
}

/// The configs `scripts/hf_roundtrip.py` loads in transformers: every hybrid fixture and every
/// synthetic hybrid as exported, committed under tests/fixtures/hybrid/exported/ and kept
/// equal to what export writes now (`UPDATE_EXPORTS=1` rewrites them).
#[test]
fn exported_configs_for_transformers_are_current() {
    let dir = repo().join("tests/fixtures/hybrid/exported");
    let mut all: Vec<Architecture> =
        ["gemma-3-270m", "LFM2-350M", "SmolLM3-3B", "gpt-oss-20b", "granite-4.0-h-350m", "Qwen3-Next-80B-A3B-Instruct"]
            .iter()
            .map(|n| fixture(n))
            .collect();
    all.extend(synthetic().into_iter().map(|(a, _)| a));
    let update = std::env::var_os("UPDATE_EXPORTS").is_some();
    for a in all {
        let path = dir.join(format!("{}.json", a.name));
        let mut text = serde_json::to_string_pretty(&try_export_hf_config(&a).unwrap()).unwrap();
        text.push('\n');
        if update {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &text).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(committed == text, "{} differs from the export (UPDATE_EXPORTS=1 rewrites it)", path.display());
    }
}
