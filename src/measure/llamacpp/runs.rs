//! Calibration and validation on llama.cpp: build the synthetic models (cached), time them in
//! one worker with every model and test alternating each round, fit a profile (calibration) or
//! compare each run with the profile's prediction (validation).

use super::rounds::{Rounds, Stop};
use super::shapes::{self, Plan, FORMATS};
use super::{bench, build, BuiltFile, BACKEND, ENGINE_VERSION, OFFLOAD};
use crate::arch::Architecture;
use crate::device::{DeviceKind, DeviceProfile, Engine, Origin, Provenance};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::fit::threads::ThreadFit;
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
    /// Calibration: the other thread counts to time the uniform models at, for the profile's
    /// `thread_scaling` (empty: none).
    pub scale_threads: Vec<u32>,
}

impl EngineOptions {
    pub fn new(quick: bool, threads: Option<usize>) -> EngineOptions {
        let threads = threads.unwrap_or_else(|| machine_cores() as usize) as u32;
        EngineOptions {
            quick,
            threads,
            cache_dir: default_cache_dir(),
            formats: FORMATS.to_vec(),
            scale_threads: Vec::new(),
        }
    }
}

/// "1 thread", "2 threads".
pub fn threads_word(t: u32) -> String {
    if t == 1 {
        "1 thread".into()
    } else {
        format!("{t} threads")
    }
}

/// The cores this process may use (what `--threads` defaults to).
pub fn machine_cores() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| n.get()) as u32
}

/// The thread counts calibration also times by default besides `own`: 1 and each power of two
/// up to the cores, and the cores themselves (1 on a 2-core machine calibrated at 2).
pub fn default_scale_threads(own: u32, cores: u32) -> Vec<u32> {
    let mut counts: Vec<u32> =
        std::iter::successors(Some(1u32), |t| t.checked_mul(2)).take_while(|&t| t <= cores).collect();
    counts.push(cores);
    counts.sort_unstable();
    counts.dedup();
    counts.retain(|&t| t != own);
    counts
}

/// Rounds of calibration batches: two at least (a quiet machine costs what the fixed two did),
/// up to five until the probe settles, and no round past two minutes of one batch's timing
/// (`--quick`: three rounds, 20 s).
pub fn calibration_rounds(quick: bool) -> Rounds {
    if quick {
        Rounds::settling(2, 3, Some(20.0))
    } else {
        Rounds::settling(2, 5, Some(120.0))
    }
}

/// Rounds of validation and `verify` batches: three at least (two with `--quick`), up to five
/// (three), and no round past 15 minutes of one batch's timing (30 s).
pub fn validation_rounds(quick: bool) -> Rounds {
    if quick {
        Rounds::settling(2, 3, Some(30.0))
    } else {
        Rounds::settling(3, 5, Some(900.0))
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
    let mut engine = Engine::llama_cpp(ENGINE_VERSION.into(), backend, Some(threads));
    // The CPU kernel's split of a step's KV view across threads (ops.cpp, `use_split_kv_path`:
    // a view of 512 cells or more). Here, `tg16` at depths 1,024, 1,100 and 1,200 took the same
    // time (all visit 1,280 cells), and at depths 16 to 200 (256 cells) time grew with the real
    // context alone (`results/2026-12-07-xeon-weight-cache/probes-padding.txt`).
    if BACKEND == "CPU" {
        engine.kv_split_min_cells = 512;
    }
    engine
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
    /// Its batch in [`Conditions::batches`].
    pub batch: usize,
}

/// What the machine was doing while one batch (one worker, its models and tests alternating)
/// ran.
#[derive(Debug, Clone, Serialize)]
pub struct BatchConditions {
    /// Its models and tests, in a few words.
    pub batch: String,
    pub threads: u32,
    /// Rounds timed.
    pub rounds: u32,
    /// Rounds whose times the medians use (the settled ones; every round when unsettled).
    pub rounds_used: u32,
    /// settled, round_cap or time_cap.
    pub stop: Stop,
    /// The lowest and highest main-memory probe around its rounds, bytes/s.
    pub probe_low_bytes_per_s: f64,
    pub probe_high_bytes_per_s: f64,
    /// Share of the machine's CPU other processes used while it ran.
    pub other_cpu_fraction: f64,
    pub wall_s: f64,
}

impl BatchConditions {
    pub fn settled(&self) -> bool {
        self.stop == Stop::Settled
    }
}

/// What a set of engine batches saw besides the times.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Conditions {
    pub system_info: String,
    pub threads: u32,
    pub wall_s: f64,
    /// Share of the CPU other processes used during the runs (worst batch).
    pub other_cpu_fraction: f64,
    /// Main-memory read bandwidth probed before each round and after each batch's last, bytes/s.
    pub probes_bytes_per_s: Vec<f64>,
    /// Batches whose probe settled, of all.
    pub batches_settled: usize,
    /// Rounds timed over all batches.
    pub rounds: u32,
    pub batches: Vec<BatchConditions>,
}

impl Conditions {
    /// Adds another set's batches (`verify` measures one batch per weight format).
    pub fn extend(&mut self, other: Conditions) {
        self.system_info = other.system_info;
        self.threads = other.threads;
        self.wall_s += other.wall_s;
        self.other_cpu_fraction = self.other_cpu_fraction.max(other.other_cpu_fraction);
        self.probes_bytes_per_s.extend(other.probes_bytes_per_s);
        self.batches_settled += other.batches_settled;
        self.rounds += other.rounds;
        self.batches.extend(other.batches);
    }

    /// What the machine was doing, in one line of fixed structure: the CPU others used, the
    /// probe's range, how many batches settled and the rounds they took.
    pub fn summary(&self) -> String {
        let (lo, hi) = probe_range(&self.probes_bytes_per_s);
        let (fewest, most) = (
            self.batches.iter().map(|b| b.rounds).min().unwrap_or(0),
            self.batches.iter().map(|b| b.rounds).max().unwrap_or(0),
        );
        format!(
            "other processes used {:.1}% of the CPU (worst batch); main-memory probe {:.1}-{:.1} GB/s; \
             settled in {} of {} batches; {} rounds ({}-{} per batch)",
            100.0 * self.other_cpu_fraction,
            lo / 1e9,
            hi / 1e9,
            self.batches_settled,
            self.batches.len(),
            self.rounds,
            fewest,
            most
        )
    }
}

/// The lowest and highest of `probes` (NaN without any).
fn probe_range(probes: &[f64]) -> (f64, f64) {
    let lo = probes.iter().copied().reduce(f64::min).unwrap_or(f64::NAN);
    let hi = probes.iter().copied().reduce(f64::max).unwrap_or(f64::NAN);
    (lo, hi)
}

/// A batch in a few words: its first model (and how many more), the formats and the tests.
fn describe_batch(models: &[Architecture], formats: usize, tests: &[BenchTest]) -> String {
    let first = models.first().map_or("no model", |m| m.name.as_str());
    let more = if models.len() > 1 { format!(" and {} more", models.len() - 1) } else { String::new() };
    let tests: Vec<String> = tests.iter().map(BenchTest::label).collect();
    let s = if formats == 1 { "" } else { "s" };
    format!("{first}{more} in {formats} format{s}: {}", tests.join(", "))
}

/// Median (the mean of the middle two for an even count) and coefficient of variation.
pub fn median_cv(v: &[f64]) -> (f64, f64) {
    let median = crate::fit::agreement::median(v.iter().copied());
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len() as f64;
    (median, var.sqrt() / mean)
}

/// Builds (or reuses) every plan's models and times them, each plan one batch whose rounds
/// repeat as `rounds` says; a test's median and spread are over its batch's kept rounds.
pub fn measure_plans(plans: &[Plan], rounds: Rounds, opts: &EngineOptions) -> Result<(Vec<Measured>, Conditions)> {
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
        let batch = cond.batches.len();
        let kept = &result.settling.kept;
        for s in &result.samples {
            let (arch, file) = files.iter().find(|(_, f)| f.path == s.model).expect("benchmarked files were built");
            let times: Vec<f64> = kept.iter().filter_map(|&i| s.seconds.get(i as usize).copied()).collect();
            let (median_s, cv) = median_cv(&times);
            out.push(Measured { arch: arch.clone(), weights: file.format, test: s.test, median_s, cv, batch });
        }
        let (lo, hi) = probe_range(&result.probes_bytes_per_s);
        let settled = result.settling.stop == Stop::Settled;
        cond.extend(Conditions {
            system_info: result.system_info.clone(),
            threads: opts.threads,
            wall_s: result.wall_s,
            other_cpu_fraction: result.other_cpu_fraction,
            probes_bytes_per_s: result.probes_bytes_per_s.clone(),
            batches_settled: usize::from(settled),
            rounds: result.settling.rounds,
            batches: vec![BatchConditions {
                batch: describe_batch(&plan.models, plan_opts.formats.len(), &plan.tests),
                threads: opts.threads,
                rounds: result.settling.rounds,
                rounds_used: kept.len() as u32,
                stop: result.settling.stop,
                probe_low_bytes_per_s: lo,
                probe_high_bytes_per_s: hi,
                other_cpu_fraction: result.other_cpu_fraction,
                wall_s: result.wall_s,
            }],
        });
    }
    Ok((out, cond))
}

/// Warnings about the conditions a measurement ran under, one line each.
pub fn condition_warnings(cond: &Conditions) -> Vec<String> {
    let mut w = Vec::new();
    if cond.other_cpu_fraction > 0.05 {
        w.push(format!(
            "other processes used {:.0}% of the CPU during the runs: the times are not those of an idle machine",
            100.0 * cond.other_cpu_fraction
        ));
    }
    let unsettled: Vec<&BatchConditions> = cond.batches.iter().filter(|b| !b.settled()).collect();
    if let Some(first) = unsettled.first() {
        let more = match unsettled.len() {
            1 => String::new(),
            n => format!("; and {} more", n - 1),
        };
        w.push(format!(
            "the bandwidth probe did not settle in {} of {} batches ({}: {:.1}-{:.1} GB/s over {} rounds, stopped at {}{more}): \
             their times are medians of every round, taken while the machine moved",
            unsettled.len(),
            cond.batches.len(),
            first.batch,
            first.probe_low_bytes_per_s / 1e9,
            first.probe_high_bytes_per_s / 1e9,
            first.rounds,
            first.stop.describe()
        ));
    }
    let (lo, hi) = probe_range(&cond.probes_bytes_per_s);
    if hi > 1.1 * lo {
        w.push(format!(
            "main-memory bandwidth moved from {:.1} to {:.1} GB/s over the run (over 10%)",
            lo / 1e9,
            hi / 1e9
        ));
    }
    w
}

/// What `calibrate --engine llama.cpp` made and saw.
pub struct Calibration {
    pub profile: DeviceProfile,
    pub report: FitReport,
    /// At the profile's own thread count.
    pub conditions: Conditions,
    /// Each other count timed: its factors and check, and what the machine did meanwhile.
    pub threads: Vec<(ThreadFit, Conditions)>,
}

/// `calibrate --engine llama.cpp`: times the calibration models and fits a profile; then, for
/// each of `opts.scale_threads`, times the uniform models' short tests at that count and
/// derives the profile's factors there by `devices fit --threads-from`'s rule.
pub fn calibrate(opts: &EngineOptions) -> Result<Calibration> {
    let start = Instant::now();
    let plans = shapes::calibration(opts.quick);
    let (measured, cond) = measure_plans(&plans, calibration_rounds(opts.quick), opts)?;
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
        expert_overhead_s: 0.0,
        pass_overhead_s: 0.0,
        on_chip_bytes: None,
        weight_cache_bytes: None,
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
    // Both sets of models span the caches (see `fit_engine_with_weight_cache`).
    let fit = fit::fit_engine_with_weight_cache;
    let (mut profile, report) = fit(&base, &engine, &runs)?;
    // Bands from each run predicted by a fit of the others (the validation workloads stay
    // unseen: they are `validate`'s, not calibration's).
    let (cv, basis) = fit::band::cross_validate(&runs, "calibration", "calibration runs on this machine", |sub| {
        fit(&base, &engine, sub).map(|(p, _)| p)
    });
    profile.error_bands = Some(fit::band::bands(&cv, basis));
    let records: Vec<serde_json::Value> = runs.iter().map(|r| fit::record_of(r, BACKEND, opts.threads)).collect();
    profile.notes.insert("runs".into(), serde_json::Value::from(records));
    profile.notes.insert("fit".into(), serde_json::to_value(&report).unwrap_or_default());
    let threads = scale_threads(&mut profile, &runs, opts)?;
    let mut warnings = condition_warnings(&cond);
    let mut machine = serde_json::Map::new();
    machine.insert(opts.threads.to_string(), serde_json::Value::from(cond.summary()));
    let mut other_conditions = serde_json::Map::new();
    for (fit, c) in &threads {
        let t = fit.scaling.threads;
        warnings.extend(condition_warnings(c).into_iter().map(|w| format!("at {}: {w}", threads_word(t))));
        machine.insert(t.to_string(), serde_json::Value::from(c.summary()));
        other_conditions.insert(t.to_string(), serde_json::to_value(c).unwrap_or_default());
    }
    profile.notes.insert("conditions".into(), serde_json::to_value(&cond).unwrap_or_default());
    if !threads.is_empty() {
        profile.notes.insert("thread_scaling_conditions".into(), serde_json::Value::Object(other_conditions));
    }
    // What the machine was doing, per thread count, in the words calibrate printed.
    profile.notes.insert("machine".into(), serde_json::Value::Object(machine));
    profile.notes.insert("warnings".into(), serde_json::Value::from(warnings));
    profile.notes.insert("elapsed_s".into(), serde_json::Value::from(start.elapsed().as_secs_f64()));
    Ok(Calibration { profile, report, conditions: cond, threads })
}

/// Times the uniform calibration models' short tests at each of `opts.scale_threads` and adds
/// the factors (and their runs, apart from the fitted ones) to `profile`.
fn scale_threads(
    profile: &mut DeviceProfile,
    fitted: &[Run],
    opts: &EngineOptions,
) -> Result<Vec<(ThreadFit, Conditions)>> {
    let mut out = Vec::new();
    let mut records = serde_json::Map::new();
    for &t in &opts.scale_threads {
        let at = EngineOptions { threads: t, ..opts.clone() };
        let (measured, cond) =
            measure_plans(&[shapes::thread_scaling(opts.quick)], calibration_rounds(opts.quick), &at)?;
        let runs: Vec<Run> = measured
            .iter()
            .map(|m| Run { arch: m.arch.clone(), weights: m.weights, test: m.test, measured_s: m.median_s })
            .collect();
        let pairs = fit::threads::pairs(fitted, &runs);
        let source = format!("calibration runs at {t} threads");
        let found = fit::threads::fit_threads(profile, t, &pairs, &source)?.ok_or_else(|| {
            Error::Engine(format!("{source}: no prompt and generation runs pair with the fitted runs"))
        })?;
        records.insert(
            t.to_string(),
            serde_json::Value::from(runs.iter().map(|r| fit::record_of(r, BACKEND, t)).collect::<Vec<_>>()),
        );
        out.push((found, cond));
    }
    if !out.is_empty() {
        let fits: Vec<ThreadFit> = out.iter().map(|(f, _)| f.clone()).collect();
        fit::threads::record(profile, &fits);
        // Kept apart from `runs`, which `devices fit --llama-bench PROFILE.json` refits at one count.
        profile.notes.insert("thread_scaling_runs".into(), serde_json::Value::Object(records));
    }
    Ok(out)
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
    /// Rounds its batch timed, and how many of them its median uses.
    pub rounds: u32,
    pub rounds_used: u32,
    /// Whether its batch's bandwidth probe settled.
    pub probe_settled: bool,
    /// The lowest and highest probe around its batch's rounds, bytes/s.
    pub probe_low_bytes_per_s: f64,
    pub probe_high_bytes_per_s: f64,
    /// Share of the CPU other processes used while its batch ran.
    pub other_cpu_fraction: f64,
}

/// Rows comparing measured runs with a profile's predictions, each with its batch's conditions.
pub fn compare(profile: &DeviceProfile, measured: &[Measured], cond: &Conditions) -> Vec<EngineRow> {
    measured
        .iter()
        .map(|m| {
            let b = &cond.batches[m.batch];
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
                rounds: b.rounds,
                rounds_used: b.rounds_used,
                probe_settled: b.settled(),
                probe_low_bytes_per_s: b.probe_low_bytes_per_s,
                probe_high_bytes_per_s: b.probe_high_bytes_per_s,
                other_cpu_fraction: b.other_cpu_fraction,
            }
        })
        .collect()
}

/// `validate --engine llama.cpp`: times the validation models (those `only` keeps, or all) and
/// compares with `profile`.
pub fn validate(
    profile: &DeviceProfile,
    opts: &EngineOptions,
    only: Option<&dyn Fn(&Architecture) -> bool>,
) -> Result<(Vec<EngineRow>, Conditions)> {
    if profile.engine.as_ref().is_none_or(|e| e.name != "llama.cpp") {
        return Err(Error::Usage(format!(
            "{}: not a llama.cpp profile (make one with `rooflinebench calibrate --engine llama.cpp`)",
            profile.name
        )));
    }
    let mut plans = shapes::validation(opts.quick);
    if let Some(keep) = only {
        for p in &mut plans {
            p.models.retain(|m| keep(m));
        }
        plans.retain(|p| !p.models.is_empty());
    }
    if plans.is_empty() {
        return Err(Error::Usage("no validation model of that kind in this mode (hybrids run without --quick)".into()));
    }
    let (measured, cond) = measure_plans(&plans, validation_rounds(opts.quick), opts)?;
    Ok((compare(profile, &measured, &cond), cond))
}

/// Removes the cached GGUF files (`--rebuild`).
pub fn clear_cache(dir: &Path) -> Result<()> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(dir, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_thread_counts_are_one_and_powers_of_two_up_to_the_cores() {
        // This 2-core machine calibrated at 2 also times 1; at 1, also 2.
        assert_eq!(default_scale_threads(2, 2), vec![1]);
        assert_eq!(default_scale_threads(1, 2), vec![2]);
        assert_eq!(default_scale_threads(16, 16), vec![1, 2, 4, 8]);
        // 6 cores: 1, 2, 4 and the cores themselves, less the profile's own 4.
        assert_eq!(default_scale_threads(4, 6), vec![1, 2, 6]);
        assert_eq!(default_scale_threads(1, 1), Vec::<u32>::new());
    }

    fn batch(rounds: u32, stop: Stop, lo: f64, hi: f64, other: f64) -> BatchConditions {
        BatchConditions {
            batch: format!("m{rounds} in 5 formats: pp64, tg16"),
            threads: 2,
            rounds,
            rounds_used: if stop == Stop::Settled { 2 } else { rounds },
            stop,
            probe_low_bytes_per_s: lo,
            probe_high_bytes_per_s: hi,
            other_cpu_fraction: other,
            wall_s: 1.0,
        }
    }

    /// The summary line and the warnings from two batches, one settled after 3 rounds at
    /// 29-31 GB/s, one stopped by the round cap after 5 at 20-30 GB/s; 8 rounds in all.
    #[test]
    fn conditions_say_what_the_machine_did_in_lines_of_fixed_structure() {
        let mut c = Conditions::default();
        for (b, probes) in [
            (batch(3, Stop::Settled, 29e9, 31e9, 0.01), vec![29e9, 31e9]),
            (batch(5, Stop::RoundCap, 20e9, 30e9, 0.08), vec![20e9, 30e9]),
        ] {
            c.extend(Conditions {
                wall_s: 1.0,
                other_cpu_fraction: b.other_cpu_fraction,
                probes_bytes_per_s: probes,
                batches_settled: usize::from(b.settled()),
                rounds: b.rounds,
                batches: vec![b],
                ..Conditions::default()
            });
        }
        assert_eq!(
            c.summary(),
            "other processes used 8.0% of the CPU (worst batch); main-memory probe 20.0-31.0 GB/s; \
             settled in 1 of 2 batches; 8 rounds (3-5 per batch)"
        );
        assert_eq!(
            condition_warnings(&c),
            vec![
                "other processes used 8% of the CPU during the runs: the times are not those of an idle machine"
                    .to_string(),
                "the bandwidth probe did not settle in 1 of 2 batches (m5 in 5 formats: pp64, tg16: 20.0-30.0 GB/s \
                 over 5 rounds, stopped at the round cap): their times are medians of every round, taken while the \
                 machine moved"
                    .to_string(),
                "main-memory bandwidth moved from 20.0 to 31.0 GB/s over the run (over 10%)".to_string(),
            ]
        );
    }
}
