//! Scoring throughput: full scenario evaluations (prefill plus every decode step, in closed
//! form) of real 1B-class models (issue 24's target: 0.5 us per LILO scenario, on datasheet and
//! expected profiles alike), with layer figures shared across depths as a search shares them
//! and with nothing to share; whole-space search throughput; the per-layer MILP on a 32-layer,
//! 30-option instance.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rooflinebench::arch::{load_hf_config, Architecture, LayerGroups};
use rooflinebench::device::builtin;
use rooflinebench::roofline::{Evaluator, PlanChoice, Scenario};
use rooflinebench::workload::{AttentionForm, ElementwiseForm, MlaForm, Plan, RunSettings};
use std::hint::black_box;
use std::path::Path;

fn scenario_evaluation(c: &mut Criterion) {
    let models = ["Llama-3.2-1B", "DeepSeek-V2-Lite-Chat"];
    let fixed =
        Plan { mla: MlaForm::Absorbed, attention: AttentionForm::Fused, elementwise: ElementwiseForm::Separate };
    let mut group = c.benchmark_group("scenario_lilo");
    group.throughput(Throughput::Elements(1));
    for name in models {
        let arch =
            load_hf_config(&Path::new(env!("CARGO_MANIFEST_DIR")).join("models").join(format!("{name}.json"))).unwrap();
        let s = Scenario::named("lilo").unwrap();
        // A search's evaluator shares layer figures between the candidates it scores one after
        // another: `depths` scores the model at 8 depths in turn (what a search does, in tiles
        // of 8 depths per shape); `new-shape` a different width every time on a plain
        // evaluator (what `analyze` and Python's `predict` do: nothing to share).
        let depths: Vec<Architecture> =
            (0..8).map(|k| Architecture { num_layers: arch.num_layers - 4 + k, ..arch.clone() }).collect();
        let shapes: Vec<Architecture> =
            (0..2).map(|k| Architecture { hidden_size: arch.hidden_size + 64 * k, ..arch.clone() }).collect();
        for device_name in ["rtx3090-datasheet", "rpi5-datasheet", "rtx3090"] {
            let device = builtin(device_name).unwrap();
            for (plans, plan_label) in [(PlanChoice::Fixed(fixed), "one-plan"), (PlanChoice::Fastest, "fastest-plan")] {
                for (sharing, archs) in [("depths", &depths), ("new-shape", &shapes)] {
                    let ev = Evaluator::new(&device, RunSettings::default(), plans);
                    let mut ev = if sharing == "depths" { ev.sharing() } else { ev };
                    let id = BenchmarkId::new(format!("{name}/{plan_label}/{sharing}"), device_name);
                    let mut next = archs.iter().cycle();
                    group
                        .bench_function(id, |b| b.iter(|| black_box(ev.scenario(black_box(next.next().unwrap()), &s))));
                }
            }
        }
    }
    group.finish();
}

/// A search's depth runs: the 8 depths of `scenario_lilo`'s `depths` priced together
/// (`Evaluator::scenario_run`, each memo entry looked up once per run); per candidate.
fn depth_run_evaluation(c: &mut Criterion) {
    let mut group = c.benchmark_group("scenario_lilo_run");
    group.throughput(Throughput::Elements(8));
    for name in ["Llama-3.2-1B", "DeepSeek-V2-Lite-Chat"] {
        let arch =
            load_hf_config(&Path::new(env!("CARGO_MANIFEST_DIR")).join("models").join(format!("{name}.json"))).unwrap();
        let s = Scenario::named("lilo").unwrap();
        let depths: Vec<Architecture> =
            (0..8).map(|k| Architecture { num_layers: arch.num_layers - 4 + k, ..arch.clone() }).collect();
        let groups: Vec<LayerGroups> = depths.iter().map(Architecture::layer_groups).collect();
        let models: Vec<(&Architecture, &LayerGroups)> = depths.iter().zip(&groups).collect();
        for device_name in ["rtx3090-datasheet", "rpi5-datasheet", "rtx3090"] {
            let device = builtin(device_name).unwrap();
            let mut ev = Evaluator::new(&device, RunSettings::default(), PlanChoice::Fastest).sharing();
            let mut out = Vec::with_capacity(8);
            group.bench_function(BenchmarkId::new(format!("{name}/fastest-plan/depth-run"), device_name), |b| {
                b.iter(|| {
                    ev.scenario_run(black_box(&models), &s, &mut out);
                    black_box(&out);
                })
            });
        }
    }
    group.finish();
}

fn search_throughput(c: &mut Criterion) {
    use rooflinebench::search::{run, SearchOptions, SearchSpace};
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let space = SearchSpace::load(&root.join("benches/spaces/throughput.toml")).unwrap();
    let device = builtin("rtx3090").unwrap();
    let mut group = c.benchmark_group("search");
    group.sample_size(10);
    group.throughput(Throughput::Elements(space.count()));
    for threads in [1, 2] {
        let opts = SearchOptions { threads: Some(threads), ..SearchOptions::default() };
        group.bench_function(BenchmarkId::new("throughput-space-lilo", format!("{threads}-threads")), |b| {
            b.iter(|| black_box(run(&space, &device, &opts).unwrap()))
        });
    }
    // Plans off: one fixed plan for every candidate, the reference the plan search must stay
    // within 20% of.
    let opts = SearchOptions { threads: Some(2), plans: PlanChoice::Fixed(Plan::NAIVE), ..SearchOptions::default() };
    group.bench_function(BenchmarkId::new("throughput-space-lilo-plans-off", "2-threads"), |b| {
        b.iter(|| black_box(run(&space, &device, &opts).unwrap()))
    });
    group.finish();
}

fn per_layer_milp(c: &mut Criterion) {
    use rooflinebench::arch::{Activation, Attention, Ffn, Layer};
    use rooflinebench::search::milp::{solve, Instance, LayerOption};
    // 32 layers, 30 options with costs spread like real layer options (deterministic).
    let options: Vec<LayerOption> = (0..30)
        .map(|i| {
            let f = i as f64;
            LayerOption {
                label: format!("o{i}"),
                layer: Layer::GLOBAL,
                attention: Attention::Grouped { num_heads: 16, num_kv_heads: 1 + (i % 8), head_dim: 128 },
                ffn: Ffn::Dense {
                    intermediate_size: 4096 + 256 * (i % 5),
                    gated: true,
                    activation: Activation::Silu,
                    bias: false,
                },
                flops: (2.0 + (f * 0.37).sin().abs() * 3.0) * 1e11,
                time_s: 0.010 + (f * 0.11).cos().abs() * 0.02,
                params: (2.0 + (f * 0.53).sin().abs()) * 1e7,
                memory_bytes: (4.0 + (f * 0.29).cos().abs() * 2.0) * 1e7,
            }
        })
        .collect();
    let inst = Instance {
        layers: 32,
        options,
        fixed_flops: 1e11,
        fixed_time_s: 0.01,
        fixed_params: 1e8,
        fixed_memory_bytes: 2e8,
        memory_budget_bytes: 2e8 + 32.0 * 5.0e7,
        min_params: Some(1e8 + 32.0 * 2.5e7),
        max_params: None,
        max_time_s: None,
    };
    c.bench_function("milp/32-layers-30-options", |b| b.iter(|| black_box(solve(&inst).unwrap())));
}

fn plan_extraction(c: &mut Criterion) {
    use rooflinebench::dtype::DType;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let device = builtin("rtx3090").unwrap();
    for name in ["DeepSeek-V2-Lite-Chat", "Llama-3.2-1B"] {
        let arch = load_hf_config(&root.join("models").join(format!("{name}.json"))).unwrap();
        c.bench_function(&format!("plan/extract-one-shape/{name}"), |b| {
            b.iter(|| black_box(rooflinebench::plan::explain(&arch, &device, DType::F16, 1.0, 4096.0)))
        });
    }
}

criterion_group!(
    benches,
    scenario_evaluation,
    depth_run_evaluation,
    search_throughput,
    per_layer_milp,
    plan_extraction
);
criterion_main!(benches);
