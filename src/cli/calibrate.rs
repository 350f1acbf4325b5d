//! `calibrate` and `validate`: measure this machine through libtorch kernels or llama.cpp
//! whole-model runs.

use super::{emit, CalibrateArgs, EngineChoice, ValidateArgs};
use crate::device::resolve;
use crate::error::{Error, Result};
use crate::files::{csv_bytes, write_atomic};
use crate::fit::agreement::ErrorSummary;
use crate::measure::llamacpp::{self, runs::EngineOptions};
use crate::measure::{calibrate, require, validate, MeasureOptions};
use crate::units::{si, TextTable};
use std::fmt::Write as _;

pub fn run_calibrate(args: CalibrateArgs, out: &mut dyn std::io::Write) -> Result<()> {
    if args.threads == Some(0) {
        return Err(Error::Usage("--threads: expected at least 1".into()));
    }
    let path = args.out.clone().unwrap_or_else(|| args.engine.default_profile().into());
    // Usage and a missing engine first: they are answered whatever else runs.
    scale_threads(&args)?;
    if args.engine == EngineChoice::LlamaCpp {
        no_on_for_engine(args.on)?;
        llamacpp::require("calibrate --engine llama.cpp")?;
    } else {
        require("calibrate")?;
    }
    // One calibration per profile at a time; refused now, not after the timing runs.
    crate::files::outdir::refuse_tool_file(&path)?;
    let _lock = crate::files::Lock::take(&path)?;
    crate::files::check_writable(&path)?;
    if args.engine == EngineChoice::LlamaCpp {
        no_on_for_engine(args.on)?;
        return calibrate_engine(&args, &path, out);
    }
    require("calibrate")?;
    let opts =
        MeasureOptions { quick: args.quick, threads: args.threads, progress: true, on: args.on.unwrap_or_default() };
    let start = std::time::Instant::now();
    let p = calibrate(&opts)?;
    let args = CalibrateArgs { out: Some(path), ..args };
    let out_path = args.out.as_ref().expect("set above");
    write_atomic(out_path, p.to_json().as_bytes())?;
    let mut s = String::new();
    let _ =
        writeln!(s, "calibrated {} in {:.1} s -> {}", p.description, start.elapsed().as_secs_f64(), out_path.display());
    let _ = writeln!(
        s,
        "  main-memory bandwidth {}, f32 peak {}, bf16 peak {}, fixed cost per kernel {}",
        si(p.bandwidth_bytes_per_s, "B/s"),
        si(p.peak_flops(crate::dtype::DType::F32), "FLOP/s"),
        si(p.peak_flops(crate::dtype::DType::Bf16), "FLOP/s"),
        si(p.kernel_overhead_s, "s")
    );
    if let Some(w) = p.notes.get("warnings").and_then(|w| w.as_array()) {
        for w in w {
            let _ = writeln!(s, "  warning: {}", w.as_str().unwrap_or_default());
        }
    }
    emit(s.as_bytes(), None, out)
}

pub fn run_validate(args: ValidateArgs, out: &mut dyn std::io::Write) -> Result<()> {
    if args.threads == Some(0) {
        return Err(Error::Usage("--threads: expected at least 1".into()));
    }
    let device = args.device.clone().unwrap_or_else(|| args.engine.default_profile().into());
    let default_csv = if args.engine == EngineChoice::LlamaCpp {
        "results/validation-llamacpp.csv"
    } else {
        "results/validation.csv"
    };
    let csv = args.out.clone().unwrap_or_else(|| default_csv.into());
    // Usage and a missing engine first: they are answered whatever else runs.
    if args.engine == EngineChoice::LlamaCpp {
        no_on_for_engine(args.on)?;
        llamacpp::require("validate --engine llama.cpp")?;
    } else {
        require("validate")?;
    }
    crate::files::outdir::refuse_tool_file(&csv)?;
    let _lock = crate::files::Lock::take(&csv)?;
    crate::files::check_writable(&csv)?;
    if args.engine == EngineChoice::LlamaCpp {
        no_on_for_engine(args.on)?;
        return validate_engine(&args, &device, &csv, out);
    }
    if args.only.is_some() {
        return Err(Error::Usage(
            "--only applies to --engine llama.cpp (libtorch validates layers, not stacks)".into(),
        ));
    }
    require("validate")?;
    let profile = resolve(&device)?;
    let opts =
        MeasureOptions { quick: args.quick, threads: args.threads, progress: true, on: args.on.unwrap_or_default() };
    let (rows, notes) = validate(&profile, &opts)?;
    let args = ValidateArgs { out: Some(csv), ..args };
    write_atomic(args.out.as_ref().expect("set above"), &csv_bytes(&rows))?;
    let mut t = TextTable::new("{<44} {<8} {>6} {>10} {>10} {>8}");
    t.header(&["workload", "phase", "tokens", "measured", "predicted", "error"]);
    for r in &rows {
        t.row(&[
            &r.workload,
            &r.phase,
            &r.tokens,
            &si(r.measured_s, "s"),
            &si(r.predicted_s, "s"),
            &format!("{:+.1}%", 100.0 * r.error),
        ]);
    }
    let mut s = t.finish();
    for phase in ["prefill", "decode"] {
        let a = ErrorSummary::of(rows.iter().filter(|r| r.phase == phase).map(|r| r.error));
        let _ = writeln!(
            s,
            "{phase}: {} workloads, median |error| {:.1}%, 90th percentile {:.1}%, {:.0}% within 10%, {:.0}% within 15%",
            a.runs,
            100.0 * a.median_abs_error,
            100.0 * a.p90_abs_error,
            100.0 * a.within_10pct,
            100.0 * a.within_15pct
        );
    }
    for n in notes {
        let _ = writeln!(s, "{n}");
    }
    let _ = writeln!(s, "wrote {}", args.out.as_ref().expect("set above").display());
    emit(s.as_bytes(), None, out)
}

/// The other thread counts a llama.cpp calibration times (`--scale-threads`, or the default
/// ones on a full calibration of a CPU build): each at most this machine's cores and none the
/// profile's own.
fn scale_threads(args: &CalibrateArgs) -> Result<Vec<u32>> {
    let cores = llamacpp::runs::machine_cores();
    let own = args.threads.map_or(cores, |t| t as u32);
    let Some(given) = &args.scale_threads else {
        // Not by default with `--quick`, which is for a profile in half a minute. (Before it
        // timed the 213 M and 98 M models, its two small models ran as fast at one thread as
        // at two here: compute x0.99-1.00, bandwidth x0.88-0.94, where the full calibration's
        // models scale x0.53 and x0.57.)
        let cpu = args.engine == EngineChoice::LlamaCpp && !llamacpp::OFFLOAD && !args.quick;
        return Ok(if cpu { llamacpp::runs::default_scale_threads(own, cores) } else { Vec::new() });
    };
    if args.engine != EngineChoice::LlamaCpp {
        return Err(Error::Usage(
            "--scale-threads: applies to --engine llama.cpp (libtorch calibrates its kernels at one count)".into(),
        ));
    }
    if llamacpp::OFFLOAD && !given.0.is_empty() {
        return Err(Error::Usage(format!(
            "--scale-threads: applies to llama.cpp on the CPU; this build offloads every layer to {}",
            llamacpp::BACKEND
        )));
    }
    if let Some(t) = given.0.iter().find(|&&t| t > cores) {
        return Err(Error::Usage(format!(
            "--scale-threads {t}: expected thread counts from 1 to this machine's {cores} cores"
        )));
    }
    if given.0.contains(&own) {
        return Err(Error::Usage(format!(
            "--scale-threads {own}: expected counts other than the profile's own (--threads {own}), which calibration times anyway"
        )));
    }
    Ok(given.0.clone())
}

/// llama.cpp runs where its build put it: `--on` is libtorch's.
fn no_on_for_engine(on: Option<crate::measure::On>) -> Result<()> {
    match on {
        None => Ok(()),
        Some(on) => Err(Error::Usage(format!(
            "--on {}: applies to --engine libtorch; llama.cpp runs on the backend it was built with ({}; features llamacpp-cuda, llamacpp-metal, llamacpp-vulkan)",
            on.name(),
            llamacpp::BACKEND
        ))),
    }
}

fn calibrate_engine(args: &CalibrateArgs, path: &std::path::Path, out: &mut dyn std::io::Write) -> Result<()> {
    llamacpp::require("calibrate --engine llama.cpp")?;
    crate::files::check_writable(path)?;
    let opts = EngineOptions { scale_threads: scale_threads(args)?, ..EngineOptions::new(args.quick, args.threads) };
    if args.rebuild {
        llamacpp::runs::clear_cache(&opts.cache_dir)?;
    }
    let start = std::time::Instant::now();
    let cal = llamacpp::runs::calibrate(&opts)?;
    let (p, report, cond) = (&cal.profile, &cal.report, &cal.conditions);
    write_atomic(path, p.to_json().as_bytes())?;
    let mut s = String::new();
    let _ = writeln!(s, "calibrated {} in {:.1} s -> {}", p.description, start.elapsed().as_secs_f64(), path.display());
    let _ = writeln!(
        s,
        "  {} runs ({:.1} s timed); fit: median |error| {:.1}%, 90th percentile {:.1}%",
        report.runs,
        cond.wall_s,
        100.0 * report.median_abs_error,
        100.0 * report.p90_abs_error
    );
    let _ = writeln!(
        s,
        "  main-memory bandwidth {} (probed), fixed cost per kernel {}, peak {}",
        si(p.bandwidth_bytes_per_s, "B/s"),
        si(p.kernel_overhead_s, "s"),
        si(p.peak_flops(crate::dtype::DType::F32), "FLOP/s")
    );
    for (name, c) in &report.coefficients {
        // A zero coefficient: the runs could not tell this cost from the others (it is folded
        // into them), not an infinitely fast kernel.
        if *c <= 0.0 {
            let _ = writeln!(s, "  {name}: not separable from the other costs in these runs");
        } else if name.contains("bytes") {
            let _ = writeln!(s, "  {name}: {}", si(1.0 / c, "B/s"));
        } else if name.contains("FLOPs") {
            let _ = writeln!(s, "  {name}: {}", si(1.0 / c, "FLOP/s"));
        } else if name.contains("cost") {
            let _ = writeln!(s, "  {name}: {}", si(*c, "s"));
        }
    }
    if let Some(t) = p.efficiency.get(&crate::workload::OpClass::DecodeAttention).and_then(|t| t.score_tail) {
        let _ =
            writeln!(s, "  decode attention vector step: {} elements (head elements past it cost the above)", t.step);
    }
    if let Some(c) = p.weight_cache_bytes {
        let _ = writeln!(s, "  weight cache: {} (the weight bytes past it cost the above)", si(c, "B"));
    }
    // What the machine was doing at each count, then the factors at the other counts.
    let _ = writeln!(s, "  machine at {}: {}", llamacpp::runs::threads_word(opts.threads), cond.summary());
    for (fit, c) in &cal.threads {
        let _ = writeln!(s, "  machine at {}: {}", llamacpp::runs::threads_word(fit.scaling.threads), c.summary());
    }
    for (fit, c) in &cal.threads {
        let _ = writeln!(s, "  {} (uniform models' pp64 and tg16, {} rounds)", fit.line(opts.threads), c.rounds);
    }
    if let Some(w) = p.notes.get("warnings").and_then(|w| w.as_array()) {
        for w in w {
            let _ = writeln!(s, "  warning: {}", w.as_str().unwrap_or_default());
        }
    }
    emit(s.as_bytes(), None, out)
}

/// Which validation rows a summary line covers.
type RowFilter<'a> = &'a dyn Fn(&llamacpp::runs::EngineRow) -> bool;

fn validate_engine(
    args: &ValidateArgs,
    device: &str,
    csv: &std::path::Path,
    out: &mut dyn std::io::Write,
) -> Result<()> {
    llamacpp::require("validate --engine llama.cpp")?;
    let profile = resolve(device)?;
    crate::files::check_writable(csv)?;
    let opts = EngineOptions::new(args.quick, args.threads);
    let only = args.only.map(|o| move |arch: &crate::arch::Architecture| o.has(arch));
    let (rows, cond) = llamacpp::runs::validate(&profile, &opts, only.as_ref().map(|f| f as _))?;
    write_atomic(csv, &csv_bytes(&rows))?;
    let mut t = TextTable::new("{<44} {<7} {<14} {>10} {>10} {>8}");
    t.header(&["model", "weights", "test", "measured", "predicted", "error"]);
    for r in &rows {
        t.row(&[
            &r.workload,
            &r.weights,
            &r.test,
            &si(r.measured_s, "s"),
            &si(r.predicted_s, "s"),
            &format!("{:+.1}%", 100.0 * r.error),
        ]);
    }
    let mut s = t.finish();
    let errors = |keep: &dyn Fn(&llamacpp::runs::EngineRow) -> bool| {
        ErrorSummary::of(rows.iter().filter(|r| keep(r)).map(|r| r.error))
    };
    for phase in ["prefill", "decode"] {
        let _ = writeln!(s, "{}", errors(&|r| r.phase == phase).line(phase));
        for w in llamacpp::shapes::FORMATS.map(|f| f.name()) {
            let _ = writeln!(s, "  {}", errors(&|r| r.phase == phase && r.weights == w).line(w));
        }
        // The size and the context are where an engine's cost departs from a roofline's.
        let split: [(&str, RowFilter); 2] = if phase == "prefill" {
            [("up to 128 tokens", &|r| r.prompt <= 128), ("512 tokens or more", &|r| r.prompt >= 512)]
        } else {
            [("short context", &|r| r.depth == 0), ("at depth 512 to 4096", &|r| r.depth > 0)]
        };
        for (name, keep) in split {
            let _ = writeln!(s, "  {}", errors(&|r| r.phase == phase && keep(r)).line(name));
        }
        // Hybrids by the kind of their other layers.
        for kind in ["window", "conv", "deltanet", "mamba2"] {
            let of_kind = |r: &llamacpp::runs::EngineRow| r.attention.ends_with(&format!("+{kind}"));
            if rows.iter().any(of_kind) {
                let _ = writeln!(s, "  {}", errors(&|r| r.phase == phase && of_kind(r)).line(kind));
            }
        }
    }
    // How many runs no fit saw fell inside the bands the profile gives every prediction.
    if let Some(b) = &profile.error_bands {
        for phase in ["prefill", "decode"] {
            let Some(band) = b.phase(phase == "prefill") else { continue };
            let times = rows.iter().filter(|r| r.phase == phase).map(|r| (r.measured_s, r.predicted_s));
            let (inside, counted) = crate::fit::band::inside(&band, times);
            let _ = writeln!(
                s,
                "{phase}: {inside} of {counted} inside the profile's {:.0}% band ({:.2}-{:.2}x the predicted tokens/s)",
                100.0 * b.coverage,
                band.low,
                band.high
            );
        }
    }
    let _ = writeln!(s, "machine: {}", cond.summary());
    for w in llamacpp::runs::condition_warnings(&cond) {
        let _ = writeln!(s, "warning: {w}");
    }
    let _ = writeln!(s, "wrote {}", csv.display());
    emit(s.as_bytes(), None, out)
}
