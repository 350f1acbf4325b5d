//! `devices`: the built-in library.

use super::{emit, DevicesAction, DevicesArgs, FitArgs};
use crate::arch::{load_hf_config, Architecture};
use crate::device::{builtin, builtin_names, resolve, DeviceProfile};
use crate::device::{Engine, Origin};
use crate::dtype::DType;
use crate::error::Error;
use crate::error::Result;
use crate::measure::{fit, llama_bench};
use crate::report::{csv_bytes, json_bytes, table::si, Format};
use crate::workload::{AttentionForm, ElementwiseForm, MlaForm, Plan};
use serde::Serialize;
use std::fmt::Write;

#[derive(Serialize)]
struct Row {
    name: String,
    kind: String,
    origin: String,
    bandwidth_bytes_per_s: f64,
    f32_flop_per_s: f64,
    f16_flop_per_s: f64,
    ridge_f16_flop_per_byte: f64,
    memory_bytes: f64,
    usable_memory_bytes: f64,
    description: String,
}

fn row(p: &DeviceProfile) -> Row {
    let lower = |v: &dyn std::fmt::Debug| format!("{v:?}").to_lowercase();
    Row {
        name: p.name.clone(),
        kind: lower(&p.kind),
        origin: lower(&p.provenance.origin),
        bandwidth_bytes_per_s: p.bandwidth_bytes_per_s,
        f32_flop_per_s: p.peak_flops(DType::F32),
        f16_flop_per_s: p.peak_flops(DType::F16),
        ridge_f16_flop_per_byte: p.ridge_flop_per_byte(DType::F16),
        memory_bytes: p.memory_bytes,
        usable_memory_bytes: p.usable_memory_bytes,
        description: p.description.clone(),
    }
}

pub fn run(args: DevicesArgs, out: &mut dyn std::io::Write) -> Result<()> {
    match args.action {
        Some(DevicesAction::Show { name }) => {
            let p = resolve(&name)?;
            return emit(p.to_json().as_bytes(), None, out);
        }
        Some(DevicesAction::Fit(a)) => return fit(a, out),
        None => {}
    }
    let rows: Vec<Row> = builtin_names().map(|n| row(&builtin(n).expect("listed names resolve"))).collect();
    let bytes = match args.format {
        Format::Csv => csv_bytes(&rows),
        Format::Json => json_bytes(&rows),
        Format::Table => {
            let mut s = String::new();
            let _ = writeln!(
                s,
                "{:<29} {:<4} {:<10} {:>10} {:>12} {:>12} {:>8} {:>9}",
                "name", "kind", "origin", "bandwidth", "f32 peak", "f16 peak", "ridge", "usable"
            );
            for r in &rows {
                let _ = writeln!(
                    s,
                    "{:<29} {:<4} {:<10} {:>10} {:>12} {:>12} {:>8.1} {:>9}",
                    r.name,
                    r.kind,
                    r.origin,
                    si(r.bandwidth_bytes_per_s, "B/s"),
                    si(r.f32_flop_per_s, "FLOP/s"),
                    si(r.f16_flop_per_s, "FLOP/s"),
                    r.ridge_f16_flop_per_byte,
                    si(r.usable_memory_bytes, "B")
                );
            }
            let _ =
                writeln!(s, "\nridge in FLOP/byte at f16; `rooflinebench devices show NAME` prints a whole profile.");
            s.into_bytes()
        }
    };
    emit(&bytes, None, out)
}

/// The models shipped under models/ (the repository's, or the current folder's).
fn shipped_models() -> Vec<Architecture> {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    let dir = if repo.is_dir() { repo } else { std::path::PathBuf::from("models") };
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == "json")).collect()
        })
        .unwrap_or_default();
    paths.sort();
    paths.iter().filter_map(|p| load_hf_config(p).ok()).collect()
}

/// `devices fit`: a llama.cpp profile for a device from llama-bench results run on it.
fn fit(a: FitArgs, out: &mut dyn std::io::Write) -> Result<()> {
    let base = resolve(&a.base)?;
    crate::report::check_writable(&a.out)?;
    let mut models = a.model.iter().map(|p| load_hf_config(p)).collect::<Result<Vec<_>>>()?;
    models.extend(shipped_models());
    let mut records = Vec::new();
    for f in &a.llama_bench {
        records.extend(llama_bench::parse_file(f)?);
    }
    let (runs, skipped) = fit::runs_from_records(&records, &models);
    if runs.is_empty() {
        return Err(Error::Usage(format!(
            "no usable llama-bench rows in {} ({}); pass the models' config.json with --model",
            a.llama_bench.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "),
            skipped.join("; ")
        )));
    }
    let backend = records.iter().map(|r| r.backend.clone()).find(|b| !b.is_empty()).unwrap_or_else(|| "unknown".into());
    let build = records.iter().find_map(|r| r.build.clone()).unwrap_or_else(|| "unknown build".into());
    let engine = Engine {
        name: "llama.cpp".into(),
        version: build,
        backend,
        threads: records.iter().find_map(|r| r.threads),
        plan: Plan { mla: MlaForm::Absorbed, attention: AttentionForm::Fused, elementwise: ElementwiseForm::Separate },
        activations: DType::F32,
        kv_cache: DType::F16,
        kv_pad: 256,
    };
    let mut fitted_base = base.clone();
    fitted_base.name = a.name.clone().unwrap_or_else(|| format!("{}-llamacpp", base.name));
    fitted_base.description =
        format!("{} running llama.cpp ({}), fitted from llama-bench runs", base.description, engine.backend);
    fitted_base.provenance.origin = Origin::Expected;
    fitted_base.provenance.source = format!(
        "rooflinebench devices fit: {} llama-bench runs from {} on the {} profile's memory and bandwidth",
        runs.len(),
        a.llama_bench.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "),
        base.name
    );
    let (profile, report) = fit::fit_engine(&fitted_base, &engine, &runs)?;
    crate::report::write_atomic(&a.out, profile.to_json().as_bytes())?;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "fitted {} from {} runs: median |error| {:.1}%, 90th percentile {:.1}% -> {}",
        profile.name,
        report.runs,
        100.0 * report.median_abs_error,
        100.0 * report.p90_abs_error,
        a.out.display()
    );
    for r in &report.residuals {
        let _ = writeln!(
            s,
            "  {:<40} {:<7} {:<14} measured {:>10} predicted {:>10} {:>+7.1}%",
            r.model,
            r.weights,
            r.test,
            si(r.measured_s, "s"),
            si(r.predicted_s, "s"),
            100.0 * r.error
        );
    }
    for n in skipped {
        let _ = writeln!(s, "  note: {n}");
    }
    emit(s.as_bytes(), None, out)
}
