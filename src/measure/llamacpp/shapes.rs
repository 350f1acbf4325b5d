//! The synthetic models engine calibration and validation run. Calibration fits on its own
//! shapes and validation predicts shapes calibration never saw (other widths, depths, head
//! layouts, latent ranks and expert counts), so validation measures prediction, not fit.

use crate::arch::{Activation, Architecture, Attention, Family, Ffn, Mla, Moe};
use crate::dtype::DType;
use crate::roofline::BenchTest;

/// The weight formats every engine calibration and validation covers.
pub const FORMATS: [DType; 5] = [DType::F16, DType::Bf16, DType::Q8_0, DType::Q4_0, DType::Q4KM];

fn base(name: String, layers: u32, hidden: u32, vocab: u32, attention: Attention, ffn: Ffn) -> Architecture {
    Architecture {
        name,
        family: if matches!(attention, Attention::Latent(_)) { Family::DeepseekV2 } else { Family::Llama },
        num_layers: layers,
        hidden_size: hidden,
        vocab_size: vocab,
        tie_embeddings: true,
        attention,
        ffn,
        qkv_bias: false,
        o_bias: false,
        qk_norm: false,
        norms_per_layer: 2,
        max_position_embeddings: 8192,
        rope_theta: 10000.0,
        norm_eps: 1e-6,
    }
}

fn dense(intermediate: u32) -> Ffn {
    Ffn::Dense { intermediate_size: intermediate, gated: true, activation: Activation::Silu, bias: false }
}

/// A llama-architecture model (MHA when `kv_heads == heads`, MQA at 1).
pub fn llama(layers: u32, hidden: u32, heads: u32, kv_heads: u32, head_dim: u32, ffn: u32, vocab: u32) -> Architecture {
    let kind = match kv_heads {
        1 => "mqa",
        k if k == heads => "mha",
        _ => "gqa",
    };
    let name = format!("{kind}-L{layers}-H{hidden}-h{heads}x{head_dim}-kv{kv_heads}-f{ffn}-v{vocab}");
    base(
        name,
        layers,
        hidden,
        vocab,
        Attention::Grouped { num_heads: heads, num_kv_heads: kv_heads, head_dim },
        dense(ffn),
    )
}

/// A deepseek2-architecture model with MLA (no q-lora), dense or with a mixture of experts.
#[allow(clippy::too_many_arguments)]
pub fn mla(
    layers: u32,
    hidden: u32,
    heads: u32,
    kv_lora: u32,
    rope: u32,
    nope: u32,
    ffn: u32,
    vocab: u32,
    moe: Option<(u32, u32, u32, u32)>,
) -> Architecture {
    let attention = Attention::Latent(Mla {
        num_heads: heads,
        kv_lora_rank: kv_lora,
        q_lora_rank: None,
        qk_nope_head_dim: nope,
        qk_rope_head_dim: rope,
        v_head_dim: nope,
    });
    let (ffn_block, tag) = match moe {
        None => (dense(ffn), String::new()),
        Some((experts, top_k, expert_ffn, first_dense)) => (
            Ffn::Moe(Moe {
                num_experts: experts,
                experts_per_token: top_k,
                num_shared_experts: 1,
                expert_intermediate_size: expert_ffn,
                dense_intermediate_size: ffn,
                first_k_dense: first_dense,
                activation: Activation::Silu,
                router_bias: false,
            }),
            format!("-moe{experts}x{expert_ffn}top{top_k}"),
        ),
    };
    let name = format!("mla-L{layers}-H{hidden}-h{heads}-r{kv_lora}{tag}-v{vocab}");
    base(name, layers, hidden, vocab, attention, ffn_block)
}

/// A set of models and the tests each runs.
pub struct Plan {
    pub models: Vec<Architecture>,
    pub tests: Vec<BenchTest>,
}

/// Calibration: widths 256, 640 and 1280, depths 4 to 10, one MLA and one MoE model; prompts
/// of 64 and 512 tokens (llama.cpp's micro-batch), decode at short and long context.
pub fn calibration(quick: bool) -> Vec<Plan> {
    let small = vec![
        llama(4, 256, 4, 2, 64, 768, 4096),
        llama(8, 640, 10, 10, 64, 1792, 16384),
        mla(6, 512, 8, 192, 32, 64, 1536, 8192, None),
    ];
    let mut plans = vec![Plan {
        models: small,
        tests: vec![BenchTest::pp(64), BenchTest::pp(512), BenchTest::tg(16, 0), BenchTest::tg(16, 1024)],
    }];
    if !quick {
        plans[0].models.push(mla(6, 512, 8, 128, 32, 64, 1024, 8192, Some((16, 2, 256, 1))));
        plans.push(Plan {
            models: vec![llama(10, 1280, 20, 4, 64, 3456, 32000)],
            tests: vec![BenchTest::pp(64), BenchTest::pp(512), BenchTest::tg(16, 0), BenchTest::tg(16, 256)],
        });
    }
    plans
}

/// Validation: widths 384 to 2048, 3 to 16 layers, MHA, GQA, MQA, MLA and MoE, prompts of 64
/// to 2048 and decode from short context to 4096.
pub fn validation(quick: bool) -> Vec<Plan> {
    let long = vec![
        BenchTest::pp(128),
        BenchTest::pp(512),
        BenchTest::tg(32, 0),
        BenchTest::tg(32, 2048),
        BenchTest::tg(32, 4096),
    ];
    let short = vec![BenchTest::pp(64), BenchTest::pp(1024), BenchTest::tg(32, 0), BenchTest::tg(32, 512)];
    if quick {
        return vec![Plan {
            models: vec![llama(6, 384, 6, 2, 64, 1024, 8000), mla(4, 768, 12, 256, 64, 128, 2048, 8000, None)],
            tests: vec![BenchTest::pp(128), BenchTest::tg(16, 0), BenchTest::tg(16, 1024)],
        }];
    }
    vec![
        Plan {
            models: vec![
                llama(12, 384, 6, 6, 64, 1024, 8000),
                llama(6, 768, 12, 4, 64, 2048, 32000),
                llama(16, 576, 9, 3, 64, 1536, 49152),
                mla(8, 768, 12, 256, 64, 128, 2048, 16000, None),
                mla(6, 640, 10, 160, 32, 64, 1024, 16000, Some((32, 4, 256, 1))),
            ],
            tests: long,
        },
        Plan {
            models: vec![
                llama(3, 2048, 16, 1, 128, 5632, 32000),
                llama(16, 1024, 16, 16, 64, 2816, 32000),
                llama(8, 1536, 24, 8, 64, 4096, 49152),
            ],
            tests: short,
        },
    ]
}
