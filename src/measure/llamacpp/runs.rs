//! Calibration and validation on llama.cpp: build the synthetic models (cached), time them in
//! one worker with every model and test alternating each round, fit a profile (calibration) or
//! compare each run with the profile's prediction (validation).

use super::shapes::{self, Plan, FORMATS};
use super::{bench, build, BuiltFile, BACKEND, ENGINE_VERSION, OFFLOAD};
use crate::arch::Architecture;
use crate::device::{DeviceKind, DeviceProfile, Engine, Origin, Provenance};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::fit::{self, FitReport, Run};
use crate::measure::{available_memory_bytes, host, today, total_memory_bytes};
use crate::roofline::BenchTest;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Settings of an engine calibration or validation.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Fewer models and rounds (for tests and `make run`).
    pub quick: bool,
    pub threads: u32,
    /// Where built GGUF files are kept between runs (they are deterministic).
    pub cache_dir: PathBuf,
    /// Weight formats to build and run.
    pub formats: Vec<DType>,
}

impl EngineOptions {
    pub fn new(quick: bool, threads: Option<usize>) -> EngineOptions {
        let threads = threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())) as u32;
        EngineOptions { quick, threads, cache_dir: default_cache_dir(), formats: FORMATS.to_vec() }
    }
}

/// `$XDG_CACHE_HOME/rooflinebench/gguf` (or `~/.cache/...`), versioned by the engine build.
pub fn default_cache_dir() -> PathBuf {
    let root = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    root.join("rooflinebench").join("gguf").join("llama-cpp-sys-2-0.1.161")
}

/// llama.cpp as built here (see [`Engine::llama_cpp`]).
pub fn llama_cpp_engine(threads: u32, backend: String) -> Engine {
    Engine::llama_cpp(ENGINE_VERSION.into(), backend, Some(threads))
}

/// The GGUF files of `arch` in every format, built once and then read from the cache.
fn files_for(arch: &Architecture, opts: &EngineOptions) -> Result<Vec<BuiltFile>> {
    let dir = &opts.cache_dir;
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let path = |f: DType| dir.join(format!("{}.{}.gguf", arch.name, f.name()));
    let missing: Vec<DType> = opts.formats.iter().copied().filter(|&f| !path(f).exists()).collect();
    if !missing.is_empty() {
        // Build into a private folder and move in, so an interrupted build leaves nothing
        // half-written in the cache.
        let tmp = crate::files::temp::TempDir::beside(&dir.join(&arch.name))?;
        for f in build(arch, &missing, tmp.path(), 42, opts.threads as i32)? {
            let _guard = crate::files::interrupt::in_progress();
            std::fs::rename(&f.path, path(f.format)).map_err(|e| Error::io(path(f.format), e))?;
        }
    }
    opts.formats
        .iter()
        .map(|&f| {
            let p = path(f);
            let file_bytes = std::fs::metadata(&p).map_err(|e| Error::io(&p, e))?.len();
            Ok(BuiltFile {
                format: f,
                path: p,
                file_bytes,
                parameters: arch.parameters(),
                weight_bytes: 0,
                tensors: Vec::new(),
            })
        })
        .collect()
}

/// One measured test of one model file.
#[derive(Debug, Clone)]
pub struct Measured {
    pub arch: Architecture,
    pub weights: DType,
    pub test: BenchTest,
    /// Median over rounds, seconds.
    pub median_s: f64,
    /// Coefficient of variation over rounds.
    pub cv: f64,
}

/// What a batch of engine runs saw besides the times.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Conditions {
    pub system_info: String,
    pub threads: u32,
    pub wall_s: f64,
    /// Share of the CPU other processes used during the runs (worst batch).
    pub other_cpu_fraction: f64,
    /// Main-memory read bandwidth probed each round, bytes/s.
    pub probes_bytes_per_s: Vec<f64>,
}

/// Median (the mean of the middle two for an even count) and coefficient of variation.
pub fn median_cv(v: &[f64]) -> (f64, f64) {
    let median = crate::fit::agreement::median(v.iter().copied());
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len() as f64;
    (median, var.sqrt() / mean)
}

/// Builds (or reuses) every plan's models and times them.
pub fn measure_plans(plans: &[Plan], rounds: u32, opts: &EngineOptions) -> Result<(Vec<Measured>, Conditions)> {
    let mut out = Vec::new();
    let mut cond = Conditions { threads: opts.threads, ..Conditions::default() };
    for plan in plans {
        let mut files: Vec<(Architecture, BuiltFile)> = Vec::new();
        let plan_opts = match &plan.formats {
            Some(f) => EngineOptions { formats: f.clone(), ..opts.clone() },
            None => opts.clone(),
        };
        for arch in &plan.models {
            for f in files_for(arch, &plan_opts)? {
                files.push((arch.clone(), f));
            }
        }
        let total: f64 = files.iter().map(|(_, f)| f.file_bytes as f64).sum();
        if total > 0.6 * available_memory_bytes() {
            return Err(Error::Engine(format!(
                "the models of one batch take {:.2} GB, more than 60% of the memory available ({:.2} GB)",
                total / 1e9,
                available_memory_bytes() / 1e9
            )));
        }
        let paths: Vec<PathBuf> = files.iter().map(|(_, f)| f.path.clone()).collect();
        let result = bench(&paths, &plan.tests, rounds, opts.threads as i32)?;
        cond.system_info = result.system_info.clone();
        cond.wall_s += result.wall_s;
        cond.other_cpu_fraction = cond.other_cpu_fraction.max(result.other_cpu_fraction);
        for s in &result.samples {
            let (arch, file) = files.iter().find(|(_, f)| f.path == s.model).expect("benchmarked files were built");
            let (median_s, cv) = median_cv(&s.seconds);
            out.push(Measured { arch: arch.clone(), weights: file.format, test: s.test, median_s, cv });
            if s.model == paths[0] && s.test == plan.tests[0] {
                cond.probes_bytes_per_s.extend(&s.probe_bytes_per_s);
            }
        }
    }
    Ok((out, cond))
}

/// Warnings about the conditions a measurement ran under.
pub fn condition_warnings(cond: &Conditions) -> Vec<String> {
    let mut w = Vec::new();
    if cond.other_cpu_fraction > 0.05 {
        w.push(format!(
            "other processes used {:.0}% of the CPU during the runs: the times are not those of an idle machine",
            100.0 * cond.other_cpu_fraction
        ));
    }
    let p = &cond.probes_bytes_per_s;
    if let (Some(lo), Some(hi)) = (p.iter().copied().reduce(f64::min), p.iter().copied().reduce(f64::max)) {
        if hi > 1.1 * lo {
            w.push(format!(
                "main-memory bandwidth moved from {:.1} to {:.1} GB/s between rounds (over 10%)",
                lo / 1e9,
                hi / 1e9
            ));
        }
    }
    w
}

/// `calibrate --engine llama.cpp`: times the calibration models and fits a profile.
pub fn calibrate(opts: &EngineOptions) -> Result<(DeviceProfile, FitReport, Conditions)> {
    let start = Instant::now();
    let plans = shapes::calibration(opts.quick);
    // Two rounds, alternated: the median of two is their mean; more rounds cost the budget.
    let rounds = 2;
    let (measured, cond) = measure_plans(&plans, rounds, opts)?;
    let runs: Vec<Run> = measured
        .iter()
        .map(|m| Run { arch: m.arch.clone(), weights: m.weights, test: m.test, measured_s: m.median_s })
        .collect();
    let bandwidth = {
        let (m, _) = median_cv(&cond.probes_bytes_per_s);
        if m.is_finite() && m > 0.0 {
            m
        } else {
            20e9
        }
    };
    let engine = llama_cpp_engine(opts.threads, format!("{BACKEND}: {}", cond.system_info));
    let mut host = host(opts.threads, ENGINE_VERSION);
    if OFFLOAD {
        host.device = format!("llama.cpp {BACKEND}: {}", cond.system_info.split(" | ").next().unwrap_or_default());
    }
    let memory = total_memory_bytes();
    let base = DeviceProfile {
        name: "this-machine-llamacpp".into(),
        description: if OFFLOAD {
            format!("{} running llama.cpp ({BACKEND}), calibrated here", host.device)
        } else {
            format!("{} ({} threads) running llama.cpp, calibrated here", host.cpu_model, opts.threads)
        },
        kind: match BACKEND {
            "CPU" => DeviceKind::Cpu,
            "Metal" => DeviceKind::Soc,
            _ => DeviceKind::Gpu,
        },
        memory_bytes: memory,
        usable_memory_bytes: 0.85 * memory,
        usable_memory_source: "85% of MemTotal (the OS and page cache keep the rest)".into(),
        bandwidth_bytes_per_s: bandwidth,
        peak_flops: [(DType::F32, 1e9)].into_iter().collect(),
        emulated_formats: Vec::new(),
        kernel_overhead_s: 0.0,
        pass_overhead_s: 0.0,
        on_chip_bytes: None,
        efficiency: BTreeMap::new(),
        efficiency_by_format: BTreeMap::new(),
        product_efficiency: BTreeMap::new(),
        engine: None,
        error_bands: None,
        thread_scaling: Vec::new(),
        provenance: Provenance {
            origin: Origin::Calibrated,
            source: format!(
                "rooflinebench calibrate --engine llama.cpp{}: {} whole-model runs of {} synthetic models \
                 (random weights, f16/q8_0/q4_0/q4_k_m), fitted by least squares on the predicted operators",
                if opts.quick { " --quick" } else { "" },
                runs.len(),
                plans.iter().map(|p| p.models.len()).sum::<usize>()
            ),
            date: today(),
        },
        host: Some(host),
        notes: BTreeMap::new(),
    };
    let (mut profile, report) = fit::fit_engine(&base, &engine, &runs)?;
    // Bands from each run predicted by a fit of the others (the validation workloads stay
    // unseen: they are `validate`'s, not calibration's).
    let (cv, basis) = fit::band::cross_validate(&runs, "calibration", "calibration runs on this machine", |sub| {
        fit::fit_engine(&base, &engine, sub).map(|(p, _)| p)
    });
    profile.error_bands = Some(fit::band::bands(&cv, basis));
    let records: Vec<serde_json::Value> = runs.iter().map(|r| fit::record_of(r, BACKEND, opts.threads)).collect();
    profile.notes.insert("runs".into(), serde_json::Value::from(records));
    profile.notes.insert("fit".into(), serde_json::to_value(&report).unwrap_or_default());
    profile.notes.insert("conditions".into(), serde_json::to_value(&cond).unwrap_or_default());
    profile.notes.insert("warnings".into(), serde_json::Value::from(condition_warnings(&cond)));
    profile.notes.insert("elapsed_s".into(), serde_json::Value::from(start.elapsed().as_secs_f64()));
    Ok((profile, report, cond))
}

/// One validation row.
#[derive(Debug, Clone, Serialize)]
pub struct EngineRow {
    pub engine: String,
    /// The model (its name spells out its shape).
    pub workload: String,
    /// The attention kind, and the other layer kind of a hybrid ("gqa+deltanet").
    pub attention: String,
    pub ffn: String,
    pub layers: u32,
    pub hidden: u32,
    pub parameters: u64,
    pub phase: &'static str,
    pub weights: String,
    pub test: String,
    pub prompt: u32,
    pub generate: u32,
    pub depth: u32,
    pub measured_s: f64,
    pub measured_cv: f64,
    pub predicted_s: f64,
    /// (predicted - measured) / measured.
    pub error: f64,
}

/// Rows comparing measured runs with a profile's predictions.
pub fn compare(profile: &DeviceProfile, measured: &[Measured]) -> Vec<EngineRow> {
    measured
        .iter()
        .map(|m| {
            let run = Run { arch: m.arch.clone(), weights: m.weights, test: m.test, measured_s: m.median_s };
            let predicted_s = fit::predict(profile, &run);
            EngineRow {
                engine: "llama.cpp".into(),
                workload: m.arch.name.clone(),
                attention: m.arch.stack_kind().into(),
                ffn: if m.arch.ffn.is_moe() { "moe" } else { "dense" }.into(),
                layers: m.arch.num_layers,
                hidden: m.arch.hidden_size,
                parameters: m.arch.parameters(),
                phase: if m.test.is_prefill() { "prefill" } else { "decode" },
                weights: m.weights.name().into(),
                test: m.test.label(),
                prompt: m.test.prompt,
                generate: m.test.generate,
                depth: m.test.depth,
                measured_s: m.median_s,
                measured_cv: m.cv,
                predicted_s,
                error: (predicted_s - m.median_s) / m.median_s,
            }
        })
        .collect()
}

/// `validate --engine llama.cpp`: times the validation models (the hybrid stacks only, the
/// uniform ones only, or both) and compares with `profile`.
pub fn validate(
    profile: &DeviceProfile,
    opts: &EngineOptions,
    hybrid: Option<bool>,
) -> Result<(Vec<EngineRow>, Conditions)> {
    if profile.engine.as_ref().is_none_or(|e| e.name != "llama.cpp") {
        return Err(Error::Usage(format!(
            "{}: not a llama.cpp profile (make one with `rooflinebench calibrate --engine llama.cpp`)",
            profile.name
        )));
    }
    let mut plans = shapes::validation(opts.quick);
    if let Some(hybrid) = hybrid {
        for p in &mut plans {
            p.models.retain(|m| m.layers.is_empty() != hybrid);
        }
        plans.retain(|p| !p.models.is_empty());
    }
    if plans.is_empty() {
        return Err(Error::Usage("no validation model of that kind in this mode (hybrids run without --quick)".into()));
    }
    let rounds = if opts.quick { 2 } else { 3 };
    let (measured, cond) = measure_plans(&plans, rounds, opts)?;
    Ok((compare(profile, &measured), cond))
}

/// Removes the cached GGUF files (`--rebuild`).
pub fn clear_cache(dir: &Path) -> Result<()> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(dir, e)),
    }
}
