//! `devices`: the built-in library.

use super::{emit, CheckArgs, DevicesAction, DevicesArgs, FitArgs};
use crate::arch::{load_hf_config, Architecture};
use crate::device::{builtin, builtin_names, resolve, DeviceProfile};
use crate::device::{Engine, Origin};
use crate::dtype::DType;
use crate::error::Error;
use crate::error::Result;
use crate::measure::{fit, llama_bench};
use crate::files::{csv_bytes, json_bytes};
use crate::report::Format;
use crate::units::si;
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
        Some(DevicesAction::Check(a)) => return check(a, out),
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

/// A `--model`: a config.json, or a GGUF file read by llama.cpp's own parser.
fn load_model(path: &std::path::Path) -> Result<Architecture> {
    if path.extension().is_some_and(|x| x.eq_ignore_ascii_case("gguf")) {
        crate::measure::llamacpp::architecture_of(path)
    } else {
        load_hf_config(path)
    }
}

/// The records and runs of some llama-bench files, where they come from, and what could not
/// be used.
type Loaded = (Vec<llama_bench::Record>, Vec<fit::Run>, Vec<llama_bench::Origin>, Vec<String>);

fn load_runs(files: &[std::path::PathBuf], models: &[Architecture]) -> Result<Loaded> {
    let mut records = Vec::new();
    let mut origins = Vec::new();
    let mut notes = Vec::new();
    for f in files {
        let (r, o) = llama_bench::parse_file_with_origin(f)?;
        records.extend(r);
        origins.push(o);
    }
    // llama-bench's JSON names the model file: when it is here, its own metadata says the
    // architecture (otherwise the parameter count is matched against --model).
    let mut read: std::collections::BTreeMap<String, Option<serde_json::Value>> = Default::default();
    for r in records.iter_mut().filter(|r| r.config.is_none()) {
        let Some(file) = r.file.clone().filter(|f| std::path::Path::new(f).is_file()) else { continue };
        let config = read.entry(file.clone()).or_insert_with(|| {
            match crate::measure::llamacpp::architecture_of(std::path::Path::new(&file)) {
                Ok(arch) => Some(crate::arch::export_hf_config(&arch)),
                Err(e) => {
                    notes.push(format!("{file}: {e}; matched by parameter count instead"));
                    None
                }
            }
        });
        r.config = config.clone();
    }
    let (runs, mut skipped) = fit::runs_from_records(&records, models);
    skipped.extend(notes);
    Ok((records, runs, origins, skipped))
}

/// A usage error when no row of `files` could be used, saying why.
fn require_runs(runs: &[fit::Run], files: &[std::path::PathBuf], skipped: &[String]) -> Result<()> {
    if !runs.is_empty() {
        return Ok(());
    }
    Err(Error::Usage(format!(
        "no usable llama-bench rows in {} ({}); pass the models' config.json or GGUF with --model",
        files.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "),
        skipped.join("; ")
    )))
}

/// Predicted against measured tokens/s of one held-out run.
#[derive(Serialize)]
struct Agreement {
    model: String,
    weights: String,
    test: String,
    measured_tokens_per_s: f64,
    predicted_tokens_per_s: f64,
    /// predicted / measured.
    ratio: f64,
    prefill: bool,
}

/// The median of max(ratio, 1/ratio): how far off a typical prediction is, either way.
fn median_factor<'a>(rows: impl IntoIterator<Item = &'a Agreement>) -> f64 {
    let mut f: Vec<f64> = rows.into_iter().map(|a| a.ratio.max(1.0 / a.ratio)).collect();
    f.sort_by(f64::total_cmp);
    match f.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => f[n / 2],
        n => (f[n / 2 - 1] + f[n / 2]) / 2.0,
    }
}

/// The given models, then the shipped ones not given.
fn models_for(given: &[std::path::PathBuf]) -> Result<Vec<Architecture>> {
    let mut models = given.iter().map(|p| load_model(p)).collect::<Result<Vec<_>>>()?;
    let names: std::collections::BTreeSet<String> = models.iter().map(|m| m.name.clone()).collect();
    models.extend(shipped_models().into_iter().filter(|m| !names.contains(&m.name)));
    Ok(models)
}

/// Each run predicted by `profile`.
fn agreement(profile: &DeviceProfile, runs: &[fit::Run]) -> Vec<Agreement> {
    runs.iter()
        .map(|r| {
            let predicted = fit::predict(profile, r);
            let tokens = r.test.tokens() as f64;
            Agreement {
                model: r.arch.name.clone(),
                weights: r.weights.name().to_string(),
                test: r.test.label(),
                measured_tokens_per_s: tokens / r.measured_s,
                predicted_tokens_per_s: tokens / predicted,
                ratio: r.measured_s / predicted,
                prefill: r.test.is_prefill(),
            }
        })
        .collect()
}

/// "median factor 1.12x (prefill 1.20x over 4 runs, decode 1.05x over 6)".
fn factor_summary(rows: &[Agreement]) -> String {
    let part = |prefill: bool| {
        let sub = || rows.iter().filter(move |r| r.prefill == prefill);
        let name = if prefill { "prefill" } else { "decode" };
        match sub().count() {
            0 => format!("no {name} runs"),
            n => format!("{name} {:.2}x over {n}", median_factor(sub())),
        }
    };
    format!("median factor {:.2}x ({}, {})", median_factor(rows), part(true), part(false))
}

/// `devices check`: a profile's predictions of llama-bench runs, nothing fitted.
fn check(a: CheckArgs, out: &mut dyn std::io::Write) -> Result<()> {
    let profile = resolve(&a.device)?;
    let models = models_for(&a.model)?;
    let (_, runs, _, skipped) = load_runs(&a.llama_bench, &models)?;
    require_runs(&runs, &a.llama_bench, &skipped)?;
    let rows = agreement(&profile, &runs);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} ({}): {} runs, {} between predicted and measured tokens/s",
        profile.name,
        profile.kind_label(),
        rows.len(),
        factor_summary(&rows)
    );
    for h in &rows {
        let _ = writeln!(
            s,
            "  {:<40} {:<7} {:<14} measured {:>9.1} tok/s predicted {:>9.1} tok/s {:>6.2}x",
            h.model, h.weights, h.test, h.measured_tokens_per_s, h.predicted_tokens_per_s, h.ratio
        );
    }
    for n in skipped {
        let _ = writeln!(s, "  note: {n}");
    }
    emit(s.as_bytes(), None, out)
}

/// `devices fit`: a llama.cpp profile for a device from llama-bench results run on it.
fn fit(a: FitArgs, out: &mut dyn std::io::Write) -> Result<()> {
    let base = resolve(&a.base)?;
    crate::files::check_writable(&a.out)?;
    let models = models_for(&a.model)?;
    let (records, runs, origins, skipped) = load_runs(&a.llama_bench, &models)?;
    require_runs(&runs, &a.llama_bench, &skipped)?;
    let backend = records.iter().map(|r| r.backend.clone()).find(|b| !b.is_empty()).unwrap_or_else(|| "unknown".into());
    let build = records
        .iter()
        .find_map(|r| r.build.clone())
        .or_else(|| origins.iter().find_map(|o| o.build.clone()))
        .unwrap_or_else(|| "unknown build".into());
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
    let plain = base.description.trim_end_matches(", datasheet").trim_end_matches(" (datasheet)");
    fitted_base.description =
        format!("{plain} running llama.cpp ({}), fitted from {} public llama-bench runs", engine.backend, runs.len());
    fitted_base.provenance.origin = Origin::Expected;
    let urls: Vec<String> = origins.iter().map(|o| o.source.clone().unwrap_or_else(|| o.file.clone())).collect();
    fitted_base.provenance.source = format!(
        "rooflinebench devices fit: {} llama-bench runs ({}) on the {} profile's memory and bandwidth",
        runs.len(),
        urls.join("; "),
        base.name
    );
    if let Some(d) = origins.iter().filter_map(|o| o.date.clone()).max() {
        fitted_base.provenance.date = d;
    }
    let donor = match &a.fixed_cost_from {
        None => None,
        Some(name) => {
            let d = resolve(name)?;
            let fitted = d.engine.as_ref().is_some_and(|e| e.name == engine.name) && d.kernel_overhead_s > 0.0;
            if !fitted {
                return Err(Error::Usage(format!(
                    "--fixed-cost-from {name}: expected a profile of {} with a fitted cost per kernel, got {} ({} per kernel)",
                    engine.name,
                    d.provenance.origin.label(),
                    d.kernel_overhead_s
                )));
            }
            Some(d)
        }
    };
    let launch = donor.as_ref().map(|d| d.kernel_overhead_s);
    let (mut profile, report) = fit::fit_engine_under_roofs(&fitted_base, &engine, &runs, launch)?;
    if let Some(d) = &donor {
        let backend = d.engine.as_ref().map_or("", |e| e.backend.as_str());
        profile.notes.insert(
            "fixed_cost_from".into(),
            serde_json::Value::from(format!(
                "cost per kernel {:.2} us taken from {} ({} backend), not fitted: these runs are of one model size",
                d.kernel_overhead_s * 1e6,
                d.name,
                backend
            )),
        );
    }
    profile.notes.insert("fitted_runs".into(), serde_json::Value::from(runs.len()));
    profile.notes.insert("fit_coefficients".into(), serde_json::to_value(&report.coefficients).expect("numbers"));
    profile.notes.insert("fitted_sources".into(), serde_json::to_value(&origins).expect("origins serialise"));
    profile.notes.insert(
        "fit_residuals".into(),
        serde_json::Value::from(
            report
                .residuals
                .iter()
                .map(|r| format!("{} {} {}: {:+.1}%", r.model, r.weights, r.test, 100.0 * r.error))
                .collect::<Vec<_>>(),
        ),
    );
    let mut held = Vec::new();
    let mut held_skipped = Vec::new();
    if !a.holdout.is_empty() {
        let (_, hruns, horigins, hskipped) = load_runs(&a.holdout, &models)?;
        held_skipped = hskipped;
        held = agreement(&profile, &hruns);
        profile.notes.insert("held_out_sources".into(), serde_json::to_value(&horigins).expect("origins serialise"));
        let agreement = if held.is_empty() {
            serde_json::json!({ "runs": 0, "note": format!("no held-out row could be used: {}", held_skipped.join("; ")) })
        } else {
            serde_json::json!({
                "runs": held.len(),
                "median_factor": median_factor(&held),
                "summary": factor_summary(&held),
                "rows": held.iter().map(|h| format!(
                    "{} {} {}: measured {:.1} tok/s, predicted {:.1} tok/s ({:.2}x)",
                    h.model, h.weights, h.test, h.measured_tokens_per_s, h.predicted_tokens_per_s, h.ratio
                )).collect::<Vec<_>>(),
            })
        };
        profile.notes.insert("held_out_agreement".into(), agreement);
    }
    crate::files::write_atomic(&a.out, profile.to_json().as_bytes())?;
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
    if !a.holdout.is_empty() && held.is_empty() {
        let _ = writeln!(s, "held out: no usable row in {} file(s)", a.holdout.len());
    } else if !a.holdout.is_empty() {
        let _ = writeln!(
            s,
            "held out ({} runs, not fitted): {} between predicted and measured tokens/s",
            held.len(),
            factor_summary(&held)
        );
        for h in &held {
            let _ = writeln!(
                s,
                "  {:<40} {:<7} {:<14} measured {:>9.1} tok/s predicted {:>9.1} tok/s {:>6.2}x",
                h.model, h.weights, h.test, h.measured_tokens_per_s, h.predicted_tokens_per_s, h.ratio
            );
        }
        for n in held_skipped {
            let _ = writeln!(s, "  note: {n}");
        }
    }
    emit(s.as_bytes(), None, out)
}
