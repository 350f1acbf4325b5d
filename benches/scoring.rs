//! Scoring throughput: full scenario evaluations (prefill plus every decode step, in closed
//! form) of real 1B-class models. Issue 2's target: 1,000,000 LILO evaluations per second per
//! core in release builds.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rooflinebench::arch::load_hf_config;
use rooflinebench::device::builtin;
use rooflinebench::roofline::{Evaluator, PlanChoice, Scenario};
use rooflinebench::workload::{AttentionForm, MlaForm, Plan, RunSettings};
use std::hint::black_box;
use std::path::Path;

fn scenario_evaluation(c: &mut Criterion) {
    let models = ["Llama-3.2-1B", "DeepSeek-V2-Lite-Chat"];
    let fixed = Plan { mla: MlaForm::Absorbed, attention: AttentionForm::Fused };
    let mut group = c.benchmark_group("scenario_lilo");
    group.throughput(Throughput::Elements(1));
    for name in models {
        let arch =
            load_hf_config(&Path::new(env!("CARGO_MANIFEST_DIR")).join("models").join(format!("{name}.json"))).unwrap();
        let s = Scenario::named("lilo").unwrap();
        for (device_name, label) in [("rtx3090", "datasheet"), ("rpi5", "datasheet")] {
            let device = builtin(device_name).unwrap();
            for (plans, plan_label) in [(PlanChoice::Fixed(fixed), "one-plan"), (PlanChoice::Fastest, "fastest-plan")] {
                let mut ev = Evaluator::new(&device, RunSettings::default(), plans);
                let id = BenchmarkId::new(format!("{name}/{plan_label}"), format!("{device_name}-{label}"));
                group.bench_function(id, |b| b.iter(|| black_box(ev.scenario(black_box(&arch), &s))));
            }
        }
    }
    group.finish();
}

criterion_group!(benches, scenario_evaluation);
criterion_main!(benches);
