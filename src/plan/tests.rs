//! E-graph plans against independent references: dynamic programming for matrix chains, the
//! workload module's closed forms for MLA, and byte lower bounds.

use super::*;
use crate::arch::load_hf_config;
use crate::roofline::op_totals;
use crate::workload::{operators, ElementwiseForm, Phase, RunSettings};
use proptest::prelude::*;

fn device(name: &str) -> DeviceProfile {
    crate::device::builtin(name).unwrap()
}

fn deepseek() -> Architecture {
    load_hf_config(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/DeepSeek-V2-Lite-Chat.json")).unwrap()
}

/// Minimum FLOPs of a matrix chain with dimensions `d`, by the textbook recurrence.
fn dp_min_flops(d: &[f64]) -> f64 {
    let n = d.len() - 1;
    let mut m = vec![vec![0.0; n]; n];
    for len in 2..=n {
        for i in 0..=n - len {
            let j = i + len - 1;
            m[i][j] =
                (i..j).map(|k| m[i][k] + m[k + 1][j] + 2.0 * d[i] * d[k + 1] * d[j + 1]).fold(f64::INFINITY, f64::min);
        }
    }
    m[0][n - 1]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn matrix_chain_order_is_optimal_against_dynamic_programming(dims in prop::collection::vec(1u32..200, 3..7)) {
        let d: Vec<f64> = dims.iter().map(|&x| x as f64).collect();
        let mut shapes = Shapes::default();
        let mut text = String::from("m0");
        for i in 0..d.len() - 1 {
            shapes.leaves.insert(Symbol::from(format!("m{i}")), Meta { shape: [1.0, d[i], d[i + 1]], home: Home::Weights, source: None });
            if i > 0 {
                text = format!("(mm {text} m{i})");
            }
        }
        let expr: RecExpr<PlanLang> = text.parse().unwrap();
        let runner: Runner<PlanLang, Shapes> = Runner::new(shapes).with_expr(&expr).with_iter_limit(30).with_node_limit(50_000).run(&rules(None, 4.0));
        // A compute-only device: time is FLOPs.
        let mut cost = RooflineTime { graph: &runner.egraph, peak_flop_per_s: 1.0, bandwidth_bytes_per_s: 1e300, overhead_s: 0.0, bytes_per_element: 4.0, allow_expanded_cache: false, efficiency: None, dtype: DType::F32 };
        let (best, _) = Extractor::new(&runner.egraph, RooflineTime { graph: &runner.egraph, ..cost }).find_best(runner.roots[0]);
        let _ = &mut cost;
        prop_assert!((best - dp_min_flops(&d)).abs() <= 1e-9 * best.max(1.0), "{} vs {}", best, dp_min_flops(&d));
        // Reassociation never changes the result's shape.
        prop_assert_eq!(runner.egraph[runner.roots[0]].data.shape, [1.0, d[0], d[d.len() - 1]]);
    }
}

#[test]
fn mla_absorbs_for_long_decode_and_materialises_for_prefill_on_a_gpu() {
    let (arch, gpu) = (deepseek(), device("rtx3090-datasheet"));
    let decode = explain(&arch, &gpu, DType::F16, 1.0, 4096.0);
    assert_eq!(decode.plan.mla, MlaForm::Absorbed, "{}", decode.best);
    let prefill = explain(&arch, &gpu, DType::F16, 4096.0, 4096.0);
    assert_eq!(prefill.plan.mla, MlaForm::Materialised, "{}", prefill.best);
}

/// Per-layer decode time of the plan-dependent operators under a plan, from the workload's
/// closed forms (an independent implementation of the same physics).
fn closed_form_core_s(arch: &Architecture, device: &DeviceProfile, plan: Plan, context: f64) -> f64 {
    let s = RunSettings { precisions: crate::dtype::Precisions::uniform(DType::F16), ..RunSettings::default() };
    let mut ops = Vec::new();
    crate::workload::operators_into(arch, Phase::Decode, &s, plan, crate::workload::Part::PlanDependent, &mut ops);
    ops.iter().map(|o| op_totals(o, device, context, context).point.time_s / o.count as f64).sum()
}

#[test]
fn the_e_graph_and_the_closed_forms_find_the_same_mla_crossover() {
    // Decode of DeepSeek-V2-Lite: materialised wins at short contexts (its per-step cost grows
    // by nh x (dn + dv) per key, absorbed's by r + rope but with fixed absorption products).
    let (arch, d) = (deepseek(), device("jetson-orin-nano-super-datasheet"));
    let grid: Vec<f64> = (0..=40).map(|i| 2f64.powf(i as f64 / 4.0)).collect(); // 1 .. 1024 keys
    let first_absorbed = |absorbed: &dyn Fn(f64) -> bool| grid.iter().copied().find(|&n| absorbed(n));
    let egraph = first_absorbed(&|n| explain(&arch, &d, DType::F16, 1.0, n.round()).plan.mla == MlaForm::Absorbed);
    let fused = |mla| Plan { mla, attention: AttentionForm::Fused, elementwise: ElementwiseForm::Separate };
    let closed = first_absorbed(&|n| {
        closed_form_core_s(&arch, &d, fused(MlaForm::Absorbed), n.round())
            < closed_form_core_s(&arch, &d, fused(MlaForm::Materialised), n.round())
    });
    let (e, c) = (egraph.expect("the e-graph absorbs somewhere"), closed.expect("the closed forms cross"));
    eprintln!("crossover: e-graph {e:.1} keys, closed forms {c:.1} keys");
    assert!(c > grid[0], "the crossover must lie inside the grid, not at its first point");
    // The e-graph expands keys and values in two products (the workload in one): allow one
    // quarter-octave step of the grid either way.
    assert!((e / c).log2().abs() <= 0.25 + 1e-9, "e-graph crossover {e} keys, closed forms {c} keys");
}

#[test]
fn fused_attention_wins_long_prefill_when_scores_exceed_on_chip_memory() {
    let arch =
        load_hf_config(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/Llama-3.2-1B.json")).unwrap();
    let mut gpu = device("rtx3090-datasheet");
    gpu.on_chip_bytes = Some(6.0 * 1024.0 * 1024.0);
    // 4096 x 4096 scores per head in f16 = 32 MiB per head, far past 6 MiB.
    let e = explain(&arch, &gpu, DType::F16, 4096.0, 4096.0);
    assert_eq!(e.plan.attention, AttentionForm::Fused, "{}", e.best);
    let unfused = e.alternatives.iter().find(|a| a.0 == "unfused").unwrap().2;
    assert!(e.best_time_s < unfused);
    // A device whose on-chip memory cannot hold one tile never fuses.
    gpu.on_chip_bytes = Some(1024.0);
    let e = explain(&arch, &gpu, DType::F16, 4096.0, 4096.0);
    assert_eq!(e.plan.attention, AttentionForm::Unfused);
    assert!(e.alternatives.iter().all(|a| a.0 != "fused"));
}

#[test]
fn no_plan_claims_fewer_bytes_than_its_weights_inputs_and_outputs() {
    let arch = deepseek();
    for (tokens, context) in [(1.0, 64.0), (1.0, 8192.0), (512.0, 512.0)] {
        let (expr, shapes) = attention_core(&arch, tokens, context);
        let runner: Runner<PlanLang, Shapes> =
            Runner::new(shapes.clone()).with_expr(&expr).with_iter_limit(12).run(&rules(None, 2.0));
        let g = &runner.egraph;
        let (best, _) = (
            Extractor::new(g, RooflineTime::new(g, &device("a100-40gb"), DType::F16)).find_best(runner.roots[0]).1,
            (),
        );
        let _ = &best;
        let out = g[runner.roots[0]].data.elements() * 2.0;
        for (label, text, ..) in named_forms(&arch, tokens, context) {
            let e: RecExpr<PlanLang> = text.parse().unwrap();
            // Every distinct tensor the form reads must be read at least once, and the output
            // written once.
            let mut sources: Vec<Symbol> = Vec::new();
            let mut leaves = 0.0;
            for node in e.as_ref() {
                if let PlanLang::Leaf(s) = node {
                    let m = &shapes.leaves[s];
                    let src = m.source.unwrap();
                    if !sources.contains(&src) {
                        sources.push(src);
                        leaves += m.elements() * 2.0;
                    }
                }
            }
            let (_, bytes) = dag_work(g, &e, 2.0);
            assert!(bytes >= leaves + out - 1e-6, "{label}: {bytes} < {}", leaves + out);
        }
    }
}

#[test]
fn the_e_graph_agrees_with_the_evaluators_plan_choice() {
    // The scoring path prices the same candidate plans in closed form; both must pick the same
    // MLA form per phase on datasheet profiles.
    let arch = deepseek();
    for name in ["rtx3090-datasheet", "rpi5-datasheet", "m1-pro-datasheet"] {
        let d = device(name);
        let s = crate::roofline::Scenario::named("liso").unwrap();
        let settings =
            RunSettings { precisions: crate::dtype::Precisions::uniform(DType::F16), ..RunSettings::default() };
        let ev =
            crate::roofline::Evaluator::new(&d, settings, crate::roofline::PlanChoice::Fastest).scenario(&arch, &s);
        let prefill = explain(&arch, &d, DType::F16, s.prompt as f64, s.prompt as f64);
        assert_eq!(prefill.plan.mla, ev.prefill.plan.mla, "{name} prefill");
        let decode = explain(&arch, &d, DType::F16, 1.0, (s.prompt + s.generate) as f64);
        assert_eq!(decode.plan.mla, ev.decode.plan.mla, "{name} decode");
    }
    let _ = operators;
}

/// FLOPs and bytes of an expression whose nodes are in `g`, each node once.
fn dag_work(g: &PlanGraph, e: &RecExpr<PlanLang>, bytes_per_element: f64) -> (f64, f64) {
    let mut ids: Vec<Id> = Vec::new();
    e.as_ref().iter().fold((0.0, 0.0), |(flops, bytes), n| {
        let m = n.clone().map_children(|c| ids[usize::from(c)]);
        ids.push(g.lookup(m.clone()).unwrap());
        let (w, q) = node_work(g, &m, bytes_per_element);
        (flops + w, bytes + q)
    })
}

/// Whether an extracted FFN block fused its norm and activation.
fn form_of(e: &RecExpr<PlanLang>) -> ElementwiseForm {
    if e.as_ref().iter().any(|n| matches!(n, PlanLang::MmNormGlu(_))) {
        ElementwiseForm::Fused
    } else {
        ElementwiseForm::Separate
    }
}

#[test]
fn a_gated_ffn_fuses_its_norm_and_activation_and_saves_their_round_trips() {
    // Llama-3.2-1B's FFN (2048 wide, 8192 intermediate), prefill of t = 2048 tokens in f16 on a
    // datasheet GPU. As eager code runs it, in elements: the norm reads and writes t*h; gate and
    // up each read t*h and write t*i; the activation reads and writes t*i; the gate multiply
    // reads 2 t*i and writes t*i; down reads t*i and writes t*h: 5 t*h + 8 t*i, plus 3 h*i of
    // weights. Fused: one kernel reads x (t*h) and both weights and writes the gated t*i; down
    // as before: 2 t*h + 2 t*i. Saved: 3 t*h + 6 t*i elements of 2 bytes.
    let (t, h, i) = (2048.0, 2048.0, 8192.0);
    let (expr, shapes) = ffn_block(h, i, t);
    let runner: Runner<PlanLang, Shapes> =
        Runner::new(shapes).with_expr(&expr).with_iter_limit(6).run(&rules(None, 2.0));
    let g = &runner.egraph;
    let (_, best) =
        Extractor::new(g, RooflineTime::new(g, &device("rtx3090-datasheet"), DType::F16)).find_best(runner.roots[0]);
    assert!(best.as_ref().iter().any(|n| matches!(n, PlanLang::MmNormGlu(_))), "{best}");
    assert_eq!(form_of(&best), ElementwiseForm::Fused);
    let ((eager_flops, eager_bytes), (fused_flops, fused_bytes)) = (dag_work(g, &expr, 2.0), dag_work(g, &best, 2.0));
    assert_eq!(eager_bytes - fused_bytes, (3.0 * t * h + 6.0 * t * i) * 2.0);
    // Fusion moves arithmetic between kernels; it neither adds nor removes any.
    assert_eq!(eager_flops, fused_flops);
    // And the extracted form is what `extract_ffn` reports, faster than the eager one.
    let (fused_s, _, eager_s) =
        extract_ffn(&expr, runner.egraph.analysis.clone(), &device("rtx3090-datasheet"), DType::F16);
    assert!(fused_s < eager_s, "{fused_s} vs {eager_s}");
}

#[test]
fn the_once_per_device_fusion_decision_holds_at_every_shape() {
    // Scoring asks once per device, format and phase (on a reference block); that is only sound
    // if the form it picks is the faster one at every shape. Check it over a grid.
    for name in crate::device::builtin_names() {
        let d = device(name);
        for dtype in [DType::F16, DType::Bf16, DType::F32] {
            for tokens in [1.0, 8.0, 512.0, 4096.0] {
                let reference = elementwise_form(&d, dtype, tokens);
                for (h, i) in [(256.0, 640.0), (576.0, 1536.0), (1024.0, 4096.0), (4096.0, 11008.0)] {
                    let (eager, fused) = ffn_forms_s(h, i, tokens, &d, dtype);
                    let fused = fused.expect("fusion applies on every built-in device");
                    let (chosen, other) = match reference {
                        ElementwiseForm::Fused => (fused, eager),
                        ElementwiseForm::Separate => (eager, fused),
                    };
                    assert!(
                        chosen <= other * (1.0 + 1e-12),
                        "{name} {dtype} {tokens} tokens, {h}x{i}: {chosen} vs {other}"
                    );
                }
            }
        }
    }
}

#[test]
fn an_expanded_cache_is_weighed_against_recomputing_from_the_latent() {
    // DeepSeek-V2-Lite decode at 4096 keys on a GPU: the expanded cache reads 16 x (128 + 128)
    // values per key (8 KiB at f16) against the latent's 576 (1.1 KiB) plus the absorption
    // products, so absorbed wins; but reading the expansion beats recomputing it from the
    // latent every step (the expansion reads the latent and writes the same 8 KiB per key).
    let arch = deepseek();
    let gpu = explain(&arch, &device("rtx3090-datasheet"), DType::F16, 1.0, 4096.0);
    let cached = gpu.alternatives.iter().find(|a| a.0 == "expanded K/V cache, fused").expect("the rule fired");
    let absorbed = gpu.alternatives.iter().find(|a| a.0 == "absorbed, fused").unwrap();
    assert!(absorbed.2 < cached.2);
    let recompute = gpu.alternatives.iter().find(|a| a.0 == "materialised, fused").unwrap();
    assert!(cached.2 < recompute.2, "reading the expansion is cheaper than recomputing it every step");
}

#[test]
fn calibrated_efficiencies_slow_the_kernels_they_cover() {
    // A profile whose attention kernels reach a quarter of the ceilings: the fused attention
    // node takes four times as long, and nothing else changes.
    use crate::device::{EfficiencyCurve, EfficiencyPoint, EfficiencyTable};
    let arch = deepseek();
    let plain = device("rtx3090-datasheet");
    let mut slow = plain.clone();
    let quarter = EfficiencyCurve { points: vec![EfficiencyPoint { size: 1.0, efficiency: 0.25 }] };
    slow.efficiency.insert(
        OpClass::Attention,
        EfficiencyTable { compute: quarter.clone(), memory: quarter, ..Default::default() },
    );
    let (expr, shapes) = attention_core(&arch, 1.0, 4096.0);
    let runner: Runner<PlanLang, Shapes> =
        Runner::new(shapes).with_expr(&expr).with_iter_limit(12).run(&rules(None, 2.0));
    let g = &runner.egraph;
    let flash: RecExpr<PlanLang> =
        "(mm (flash (mm q_nope w_uk_t) latent_t q_rope k_rope_t latent) w_uv)".parse().unwrap();
    let times = |d: &DeviceProfile| -> Vec<f64> {
        let c = RooflineTime::new(g, d, DType::F16);
        let mut ids: Vec<Id> = Vec::new();
        flash
            .as_ref()
            .iter()
            .map(|n| {
                let m = n.clone().map_children(|c| ids[usize::from(c)]);
                ids.push(g.lookup(m.clone()).unwrap());
                c.node_time(&m)
            })
            .collect()
    };
    let (a, b) = (times(&plain), times(&slow));
    for (i, node) in flash.as_ref().iter().enumerate() {
        let ratio = if a[i] > 0.0 { b[i] / a[i] } else { 1.0 };
        let want = if matches!(node, PlanLang::Flash(_)) { 4.0 } else { 1.0 };
        assert!((ratio - want).abs() < 1e-9, "{node:?}: {ratio}");
    }
}
