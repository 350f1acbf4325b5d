//! `measure` and `verify`: run models on llama.cpp here; print what llama-bench would
//! (tokens/s per test), or check a search's predictions against the runs.

use super::{emit, EngineChoice, MeasureArgs, VerifyArgs};
use crate::arch::load_hf_config;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::files::temp::TempDir;
use crate::files::{check_writable, csv_bytes, Lock};
use crate::measure::llamacpp::runs::EngineOptions;
use crate::measure::llamacpp::verify;
use crate::measure::llamacpp::{self, Test};
use crate::report::plot::{agreement_svg, AgreementPoint};
use crate::units::TextTable;
use std::fmt::Write as _;

pub fn run_measure(args: MeasureArgs, out: &mut dyn std::io::Write) -> Result<()> {
    llamacpp::require("measure")?;
    let tests = args
        .test
        .iter()
        .map(|t| Test::parse(t).map_err(|e| Error::Usage(format!("--test: {e}"))))
        .collect::<Result<Vec<_>>>()?;
    let formats = args
        .weights
        .iter()
        .map(|w| {
            w.parse::<DType>()
                .map_err(|e| Error::Usage(format!("--weights: expected {e}, got '{}'", crate::error::clip(w))))
        })
        .collect::<Result<Vec<_>>>()?;
    let threads = args.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())) as i32;
    let dir =
        tempfile::Builder::new().prefix("rooflinebench-gguf-").tempdir().map_err(|e| Error::io("<temp dir>", e))?;
    // An interrupt removes it too (a drop does not run then).
    crate::files::interrupt::register(dir.path());
    let keep = args.keep.clone();
    let work = keep.clone().unwrap_or_else(|| dir.path().to_path_buf());
    std::fs::create_dir_all(&work).map_err(|e| Error::io(&work, e))?;
    let mut models = Vec::new();
    let mut s = String::new();
    for path in &args.model {
        let arch = load_hf_config(path)?;
        let files = llamacpp::build(&arch, &formats, &work, 42, threads)?;
        for f in files {
            let _ = writeln!(
                s,
                "{} {}: {} parameters (ours {}), {:.1} MB of weights",
                arch.name,
                f.format,
                f.parameters,
                arch.parameters(),
                f.weight_bytes as f64 / 1e6
            );
            models.push((arch.name.clone(), f));
        }
    }
    let paths: Vec<_> = models.iter().map(|(_, f)| f.path.clone()).collect();
    let bench = llamacpp::bench(&paths, &tests, llamacpp::rounds::Rounds::fixed(args.repeats), threads)?;
    let probes = &bench.probes_bytes_per_s;
    let _ = writeln!(
        s,
        "{}; {} threads; {:.1} s; other processes used {:.1}% of the CPU; main-memory probe {:.1}-{:.1} GB/s over {} rounds ({})",
        bench.system_info,
        bench.threads,
        bench.wall_s,
        100.0 * bench.other_cpu_fraction,
        probes.iter().copied().fold(f64::INFINITY, f64::min) / 1e9,
        probes.iter().copied().fold(0.0, f64::max) / 1e9,
        bench.settling.rounds,
        if bench.settling.stop == llamacpp::rounds::Stop::Settled { "settled" } else { "did not settle" }
    );
    let mut t = TextTable::new("{<28} {<8} {<14} {>12} {>10} {>7}");
    t.header(&["model", "weights", "test", "median s", "tok/s", "cv"]);
    for sample in &bench.samples {
        let (name, file) = models.iter().find(|(_, f)| f.path == sample.model).expect("sampled models were built");
        let (median, cv) = crate::measure::llamacpp::runs::median_cv(&sample.seconds);
        t.row(&[
            name,
            &file.format.name(),
            &sample.test.label(),
            &format!("{median:.6}"),
            &format!("{:.1}", sample.test.tokens() as f64 / median),
            &format!("{:.1}%", 100.0 * cv),
        ]);
    }
    s += &t.finish();
    emit(s.as_bytes(), None, out)
}

pub fn run_verify(args: VerifyArgs, out: &mut dyn std::io::Write) -> Result<()> {
    if args.engine != EngineChoice::LlamaCpp {
        return Err(Error::Usage("--engine: verify runs whole models, on llama.cpp only".into()));
    }
    llamacpp::require("verify")?;
    // The search folder stays as it is while it is read and verified: a search into it waits.
    let _lock = Lock::take(&args.dir)?;
    let saved = verify::load(&args.dir)?;
    let dir = args.out.clone().unwrap_or_else(|| args.dir.clone());
    let same = |a: &std::path::Path, b: &std::path::Path| {
        a == b || std::fs::canonicalize(a).ok().is_some_and(|c| std::fs::canonicalize(b).ok() == Some(c))
    };
    let elsewhere = args.out.as_deref().is_some_and(|o| !same(o, &args.dir));
    let _out_lock = if elsewhere { Some(Lock::take(&dir)?) } else { None };
    let command = crate::files::outdir::marker_of(&dir).map_or_else(|| "verify".to_string(), |m| m.command);
    for name in ["verify.csv", "verify.svg", "verify.md"] {
        crate::files::outdir::check_file_replaceable(&dir, name, &command)?;
    }
    check_writable(&dir.join("verify.csv"))?;
    let opts = EngineOptions::new(args.quick, args.threads);
    let (rows, verdict, cond) = verify::verify(&saved, args.top.into(), &opts)?;
    if rows.is_empty() {
        return Err(Error::Engine("no candidate could be measured".into()));
    }
    let points: Vec<AgreementPoint> = rows
        .iter()
        .map(|r| AgreementPoint {
            label: format!("{} #{}", r.role, r.candidate),
            predicted: r.predicted_decode_tokens_per_s,
            measured: r.measured_decode_tokens_per_s,
            highlight: r.role == "recommended",
        })
        .collect();
    let title =
        format!("{} on {}: decode measured on llama.cpp here vs predicted", saved.space.name, saved.device.name);
    // The plot is drawn to a temporary, then all three files go in together.
    let svg_tmp = TempDir::beside(&dir.join("verify.svg"))?;
    agreement_svg(&svg_tmp.path().join("verify.svg"), &title, "tokens/s", &points)?;
    let svg = std::fs::read(svg_tmp.path().join("verify.svg")).map_err(|e| Error::io(&dir, e))?;
    let md = verify::markdown(&saved, &rows, &verdict, &cond);
    let csv = csv_bytes(&rows);
    let files: [(&str, &[u8]); 3] = [("verify.csv", &csv), ("verify.svg", &svg), ("verify.md", md.as_bytes())];
    // Listed in the folder's marker (the search folder's, or one of their own), so a later
    // run may replace them, and a file a user put there is never replaced.
    crate::files::outdir::write_files_recorded(&dir, &command, &files)?;
    emit(format!("{md}\nwrote {}\n", dir.join("verify.{csv,svg,md}").display()).as_bytes(), None, out)
}
