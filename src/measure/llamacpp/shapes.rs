//! The synthetic models engine calibration and validation run. Calibration fits on its own
//! shapes and validation predicts shapes calibration never saw (other widths, depths, head
//! layouts, latent ranks and expert counts), so validation measures prediction, not fit.

use crate::arch::{Activation, Architecture, Attention, DeltaNet, Ffn, Mamba2, Mixer, Mla, Moe};
use crate::dtype::DType;
use crate::roofline::BenchTest;

/// The weight formats every engine calibration and validation covers.
pub const FORMATS: [DType; 5] = [DType::F16, DType::Bf16, DType::Q8_0, DType::Q4_0, DType::Q4KM];

/// Synthetic models are tied, llama or deepseek2 ([`Architecture::plain`]).
fn base(name: String, layers: u32, hidden: u32, vocab: u32, attention: Attention, ffn: Ffn) -> Architecture {
    Architecture::plain(name, layers, hidden, vocab, true, attention, ffn)
}

fn dense(intermediate: u32) -> Ffn {
    Ffn::swiglu(intermediate)
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
                expert_bias: false,
                shared_expert_gate: false,
            }),
            format!("-moe{experts}x{expert_ffn}top{top_k}"),
        ),
    };
    let name = format!("mla-L{layers}-H{hidden}-h{heads}-r{kv_lora}{tag}-v{vocab}");
    base(name, layers, hidden, vocab, attention, ffn_block)
}

/// `base` with the last layer of every `every` kept global attention and the others `mixer`
/// layers, in the family that publishes such stacks (`Architecture::hybrid`); the name says
/// which.
pub fn hybrid(base: Architecture, mixer: Mixer, every: u32) -> Architecture {
    let tag = match mixer {
        Mixer::Global => String::new(),
        Mixer::Window { window } => format!("win{window}"),
        Mixer::ShortConv { kernel } => format!("conv{kernel}"),
        Mixer::DeltaNet(g) => format!("dn{}x{}", g.value_heads, g.value_head_dim),
        Mixer::Mamba2(m) => format!("m2-{}x{}s{}", m.heads, m.head_dim, m.state_size),
    };
    let name = format!("{}-{tag}e{every}", base.name);
    Architecture { name, ..Architecture::hybrid(base, mixer, every, every - 1) }
}

/// Gated DeltaNet with as many key as value heads (as the search spaces make them).
pub fn delta_net(heads: u32, head_dim: u32) -> Mixer {
    Mixer::DeltaNet(DeltaNet {
        key_heads: heads,
        value_heads: heads,
        key_head_dim: head_dim,
        value_head_dim: head_dim,
        conv_kernel: 4,
    })
}

/// Mamba2 with an inner width of twice `hidden` (llama.cpp's granitehybrid needs it).
pub fn mamba2(hidden: u32, head_dim: u32, state: u32) -> Mixer {
    Mixer::Mamba2(Mamba2 {
        heads: 2 * hidden / head_dim,
        head_dim,
        state_size: state,
        groups: 1,
        conv_kernel: 4,
        conv_bias: true,
    })
}

/// Hybrid stacks of each layer kind at widths and depths of their own: what their scans,
/// convolutions and state copies cost (q8_0 only: the products are fitted on the plans above).
fn hybrid_probes() -> Plan {
    let base = || llama(6, 512, 8, 2, 64, 1536, 8192);
    Plan {
        models: vec![
            hybrid(base(), delta_net(8, 64), 3),
            hybrid(base(), mamba2(512, 64, 64), 3),
            hybrid(base(), Mixer::ShortConv { kernel: 3 }, 3),
            hybrid(base(), Mixer::Window { window: 128 }, 3),
        ],
        tests: vec![BenchTest::pp(64), BenchTest::pp(512), BenchTest::tg(16, 0), BenchTest::tg(16, 1024)],
        formats: Some(vec![DType::Q8_0]),
    }
}

/// A set of models and the tests each runs (in every weight format, or only `formats`).
pub struct Plan {
    pub models: Vec<Architecture>,
    pub tests: Vec<BenchTest>,
    pub formats: Option<Vec<DType>>,
}

impl Plan {
    pub fn new(models: Vec<Architecture>, tests: Vec<BenchTest>) -> Plan {
        Plan { models, tests, formats: None }
    }
}

/// Small models that differ in attention's value head size (64 to 512) and in how many query
/// heads share a KV head (1, 4, 8): the decode kernel's cost per score depends on the first
/// (CPU kernels accumulate values in fixed-width vectors) and on the KV bytes a score reads,
/// which a group shares.
fn attention_probes(quick: bool) -> Plan {
    let mut models = vec![llama(4, 512, 8, 8, 64, 512, 1024), llama(4, 512, 8, 2, 64, 512, 1024)];
    if !quick {
        // Heads that leave different remainders past 32-, 64- and 128-wide vector steps (see
        // `ScoreTail`): 64 and 128 tell a 128-wide step from a 64-wide one, and latent keys of
        // 224 + 32 fill whole steps where their values do not (the value head's remainder is
        // what costs: 124 ns per score here, against 30 ns for 256 + 64). `--quick` keeps its
        // two probes: its few runs cannot pin these terms (with them, its fit once priced
        // short-context scores at nothing and a cache step at everything).
        models.extend([
            llama(4, 512, 8, 8, 128, 512, 1024),
            llama(4, 512, 8, 2, 128, 512, 1024),
            mla(4, 512, 8, 192, 32, 64, 512, 1024, None),
            mla(4, 512, 8, 224, 32, 64, 512, 1024, None),
            mla(4, 512, 8, 320, 64, 64, 512, 1024, None),
            mla(4, 512, 8, 512, 32, 64, 512, 1024, None),
        ]);
    }
    // Two long contexts: their difference is the attention; the weights are a small share. A
    // third, deeper one (not in `--quick`) places the step where a layer's KV cache outgrows the
    // caches: a layer holds 2 KiB per position under MHA (8 KV heads of 64, f16 K and V) and
    // 512 B under GQA, so 0.5 to 8 MiB across the three depths and two groupings.
    let mut tests = vec![BenchTest::tg(16, 1024), BenchTest::tg(16, 2048)];
    if !quick {
        tests.push(BenchTest::tg(16, 4096));
    }
    Plan { models, tests, formats: Some(vec![DType::Q8_0]) }
}

/// A 213 M model whose weights stream from main memory in every format (q4_0 120 MB, f16
/// 430 MB).
fn streams() -> Architecture {
    llama(10, 1280, 20, 4, 64, 3456, 32000)
}

/// A 98 M model whose weights straddle the caches by format (q4_0 55 MB, q8_0 104 MB, f16
/// 196 MB).
fn straddles() -> Architecture {
    llama(10, 896, 14, 2, 64, 2432, 16000)
}

/// Calibration: a model so small that its fixed costs dominate (hidden 64, 16 layers), widths
/// 512 and 640 with MHA, MLA (one of them with 16 heads, for the per-head products of its
/// prompts) and two MoE shapes, a 213M model that streams from main memory, and the
/// attention probes; prompts of 64 and 512 tokens (llama.cpp's micro-batch), decode at short
/// and long context, and a 98 M model whose weights straddle the caches. About 60 s of runs here
/// (`--quick`: about 30 s; it keeps the 213 M and 98 M models' decode, which place the weight
/// cache and what a byte past it costs).
pub fn calibration(quick: bool) -> Vec<Plan> {
    let overhead = llama(16, 64, 1, 1, 64, 128, 512);
    let mha = llama(8, 640, 10, 10, 64, 1792, 16384);
    let (pp, tg) = (BenchTest::pp, BenchTest::tg);
    // MLA's absorbed per-head products run at a rate of their own over a prompt (small GEMMs,
    // one per head, as deep as a head): 16 heads of a 256-wide latent over a narrow FFN make
    // them a third of a prompt's product time, so the fit pins that rate.
    let heads_probe = Plan::new(vec![mla(4, 512, 16, 256, 32, 64, 512, 8192, None)], vec![pp(64), pp(512), tg(16, 0)]);
    if quick {
        return vec![
            // A 512-token prompt on the overhead model pins prefill attention's rate (a 64-token
            // one leaves it free: a quick fit put it at 1.7 GFLOP/s, and MLA prefill 4x slow).
            Plan::new(vec![overhead], vec![pp(64), pp(512), tg(16, 0)]),
            Plan::new(vec![mha], vec![pp(64), tg(16, 0)]),
            heads_probe,
            attention_probes(true),
            // Decodes that stream from main memory and straddle the caches: without them the
            // byte rates came from models within the caches, and a quick profile priced the
            // 60-130 M models of `make run`'s verify 22-75% fast. The 98 M model's prompt keeps
            // quick prefill within 10% on them (without it, 14-18% fast).
            Plan::new(vec![streams()], vec![tg(16, 0)]),
            Plan::new(vec![straddles()], vec![pp(64), tg(16, 0)]),
        ];
    }
    // The overhead model runs no long context: with a single head, llama.cpp's decode attention
    // costs a quarter per score of what several heads cost, so it would skew the attention fit.
    // A 512-token prompt on the 213M model shows the rate of large products at llama.cpp's
    // micro-batch, which small models' prompts do not reach.
    vec![
        Plan::new(vec![overhead], vec![pp(64), pp(512), tg(16, 0)]),
        Plan::new(vec![mha], vec![pp(64), tg(16, 0), tg(16, 512)]),
        Plan::new(vec![mla(6, 512, 8, 192, 32, 64, 1536, 8192, None)], vec![pp(64), tg(16, 0)]),
        heads_probe,
        // Two MoE shapes whose expert products differ eightfold in number and fourfold in size
        // (16 experts of 256 choosing 2, 64 of 128 choosing 8), so a fixed cost per expert
        // product separates from the products' bytes and FLOPs.
        Plan::new(
            vec![
                mla(6, 512, 8, 128, 32, 64, 1024, 8192, Some((16, 2, 256, 1))),
                mla(6, 512, 8, 128, 32, 64, 1024, 8192, Some((64, 8, 128, 1))),
            ],
            vec![pp(64), pp(512), tg(16, 0)],
        ),
        Plan::new(vec![streams()], vec![pp(64), pp(512), tg(16, 0)]),
        // The 98 M model straddles the caches by format: between the small models (all within)
        // and the 213 M one (all past), it places the weight cache. Without it, two fits of this machine a few minutes apart put the
        // cache at 64 and at 16 MiB, and the second priced 60-85 M validation models' q4
        // decode 50-90% slow.
        Plan::new(vec![straddles()], vec![pp(64), tg(16, 0)]),
        attention_probes(false),
        hybrid_probes(),
    ]
}

/// What calibration also times at other thread counts (`thread_scaling`): the dense uniform
/// models (those it runs in every format) in one batch, their 64-token prompt and short-context decode
/// only, tests the calibration plans also ran, so every run pairs with a fitted one. Prompts
/// of 512 tokens and decode at depth stay out: at one thread they would cost more than the
/// rest together, and the factors are medians over every model and format anyway.
pub fn thread_scaling(quick: bool) -> Plan {
    // Dense models only: the MoE shapes are there to separate the cost per expert product,
    // which thread counts scale like any other product.
    let tests = [BenchTest::pp(64), BenchTest::tg(16, 0)];
    let models = calibration(quick)
        .into_iter()
        .filter(|p| p.formats.is_none() && tests.iter().all(|t| p.tests.contains(t)))
        .flat_map(|p| p.models)
        .filter(|m| !m.ffn.is_moe())
        .collect();
    Plan::new(models, tests.to_vec())
}

/// Validation: widths 384 to 2048, 3 to 16 layers, MHA, GQA, MQA, MLA and MoE, prompts of 64
/// to 2048 and decode from short context to 4096; hybrids of every layer kind at widths,
/// depths, head sizes, states and windows calibration never saw.
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
        return vec![Plan::new(
            vec![llama(6, 384, 6, 2, 64, 1024, 8000), mla(4, 768, 12, 256, 64, 128, 2048, 8000, None)],
            vec![BenchTest::pp(128), BenchTest::tg(16, 0), BenchTest::tg(16, 1024)],
        )];
    }
    vec![
        Plan::new(
            vec![
                llama(12, 384, 6, 6, 64, 1024, 8000),
                llama(6, 768, 12, 4, 64, 2048, 32000),
                llama(16, 576, 9, 3, 64, 1536, 49152),
                mla(8, 768, 12, 256, 64, 128, 2048, 16000, None),
                mla(6, 640, 10, 160, 32, 64, 1024, 16000, Some((32, 4, 256, 1))),
            ],
            long,
        ),
        Plan::new(
            vec![
                llama(3, 2048, 16, 1, 128, 5632, 32000),
                llama(16, 1024, 16, 16, 64, 2816, 32000),
                llama(8, 1536, 24, 8, 64, 4096, 49152),
            ],
            short,
        ),
        hybrid_validation(),
    ]
}

/// Hybrids calibration never saw: wider, deeper, other head sizes, states, windows and
/// patterns, in the two weight formats people run most.
fn hybrid_validation() -> Plan {
    Plan {
        models: vec![
            hybrid(llama(8, 768, 12, 4, 64, 2048, 16000), delta_net(8, 128), 4),
            hybrid(llama(8, 768, 12, 4, 64, 2048, 16000), mamba2(768, 64, 128), 4),
            hybrid(llama(10, 768, 12, 4, 64, 2048, 16000), Mixer::ShortConv { kernel: 3 }, 2),
            hybrid(llama(8, 640, 10, 2, 64, 1792, 16000), Mixer::Window { window: 256 }, 4),
        ],
        tests: vec![BenchTest::pp(128), BenchTest::pp(512), BenchTest::tg(32, 0), BenchTest::tg(32, 2048)],
        formats: Some(vec![DType::Q8_0, DType::Q4KM]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every run at another thread count pairs with a calibration run of the same model and
    /// test, in every weight format: the uniform models, none of the probes.
    #[test]
    fn thread_scaling_runs_are_calibration_runs_of_uniform_models() {
        for quick in [true, false] {
            let plan = thread_scaling(quick);
            let plans = calibration(quick);
            // Full calibration: the overhead model, MHA, two dense MLA, the 213M and the 98M
            // models (its two MoE shapes stay out); quick: the overhead model, MHA, the MLA
            // probe of per-head products and the 98M model (its 213M model runs no prompt).
            assert_eq!((plan.models.len(), plan.formats.clone()), (if quick { 4 } else { 6 }, None));
            for m in &plan.models {
                assert!(m.layers.is_empty() && !m.ffn.is_moe(), "{}", m.name);
                let own = plans.iter().find(|p| p.models.iter().any(|x| x.name == m.name)).unwrap();
                assert!(plan.tests.iter().all(|t| own.tests.contains(t)), "{}", m.name);
            }
        }
    }
}
