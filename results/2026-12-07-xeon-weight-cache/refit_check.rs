// Scratch: refit a calibrated profile's own runs with the current fit and predict a validation
// CSV measured in the same session. Usage: refit_check PROFILE.json VALIDATION.csv...
use rooflinebench::fit::{self, Run};
use rooflinebench::measure::llamacpp::shapes;
use rooflinebench::roofline::BenchTest;
use std::collections::BTreeMap;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let profile = rooflinebench::device::resolve(&args[1]).unwrap();
    let records = fit::llama_bench::parse_file(std::path::Path::new(&args[1])).unwrap();
    let (mut runs, notes) = fit::runs_from_records(&records, &[]);
    if let Ok(drop) = std::env::var("DROP") {
        runs.retain(|r| !drop.split(',').any(|d| r.arch.name.starts_with(d)));
    }
    eprintln!("{} calibration runs ({notes:?})", runs.len());
    let mut base = profile.clone();
    base.efficiency.clear();
    base.product_efficiency.clear();
    let mut engine = profile.engine.clone().unwrap();
    if let Ok(pad) = std::env::var("KVPAD") {
        engine.kv_pad = pad.parse().unwrap();
    }
    if let Ok(split) = std::env::var("KVSPLIT") {
        engine.kv_split_min_cells = split.parse().unwrap();
    }
    let (fitted, report) =
        (if std::env::var("NOCACHE").is_ok() { fit::fit_engine } else { fit::fit_engine_with_weight_cache })(
            &base, &engine, &runs,
        )
        .unwrap();
    for r in &report.residuals {
        eprintln!("resid {:44} {:7} {:14} {:+6.1}%", r.model, r.weights, r.test, 100.0 * r.error);
    }
    if let Ok(out) = std::env::var("SAVE") {
        std::fs::write(out, serde_json::to_string_pretty(&fitted).unwrap()).unwrap();
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&fitted.efficiency.get(&rooflinebench::workload::OpClass::DecodeAttention))
            .unwrap()
    );
    for (k, v) in &report.coefficients {
        eprintln!("coef {k}: {v:.4e}");
    }
    let models: BTreeMap<String, _> =
        shapes::validation(false).into_iter().flat_map(|p| p.models).map(|m| (m.name.clone(), m)).collect();
    if let Ok(dir) = std::env::var("EXPORT") {
        for (name, m) in &models {
            std::fs::write(
                format!("{dir}/{name}.json"),
                serde_json::to_string_pretty(&rooflinebench::arch::export_hf_config(m)).unwrap(),
            )
            .unwrap();
        }
    }
    let mut errs: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for path in &args[2..] {
        let mut rd = csv::Reader::from_path(path).unwrap();
        for row in rd.deserialize::<BTreeMap<String, String>>() {
            let row = row.unwrap();
            let Some(arch) = models.get(&row["workload"]) else { continue };
            let test = BenchTest {
                prompt: row["prompt"].parse().unwrap(),
                generate: row["generate"].parse().unwrap(),
                depth: row["depth"].parse().unwrap(),
            };
            let run = Run {
                arch: arch.clone(),
                weights: row["weights"].parse().unwrap(),
                test,
                measured_s: row["measured_s"].parse().unwrap(),
            };
            let p = fit::predict(&fitted, &run);
            let e = p / run.measured_s - 1.0;
            let kind = if test.generate == 0 {
                "prefill"
            } else if test.depth == 0 {
                "decode short"
            } else {
                "decode depth"
            };
            let fam = row["workload"].split('-').next().unwrap().to_string();
            println!(
                "{:44} {:7} {:14} {:8.3} {:8.3} {:+6.1}%",
                row["workload"],
                row["weights"],
                row["test"],
                run.measured_s,
                p,
                100.0 * e
            );
            errs.entry(kind.into()).or_default().push(e.abs());
            errs.entry(format!("{kind} {fam}")).or_default().push(e.abs());
        }
    }
    for (k, mut v) in errs {
        v.sort_by(f64::total_cmp);
        let within = v.iter().filter(|e| **e <= 0.15).count() as f64 / v.len() as f64;
        println!(
            "{k:24} n={:3} median |err| {:5.1}%  within 15%: {:3.0}%",
            v.len(),
            100.0 * v[v.len() / 2],
            100.0 * within
        );
    }
}
