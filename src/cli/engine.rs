//! `measure`: run models on llama.cpp here and print what llama-bench would (tokens/s per test).

use super::{emit, MeasureArgs};
use crate::arch::load_hf_config;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::measure::llamacpp::{self, Test};
use std::fmt::Write as _;

/// Parses `pp512`, `tg128`, `tg128@d4096` (spaces allowed around `@`).
pub fn parse_test(s: &str) -> Result<Test> {
    let bad = || Error::Usage(format!("--test: expected ppN, tgN or tgN@dD (as llama-bench names them), got '{s}'"));
    let compact: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    let (head, depth) = match compact.split_once('@') {
        Some((h, d)) => (h.to_string(), d.strip_prefix('d').and_then(|d| d.parse::<u32>().ok()).ok_or_else(bad)?),
        None => (compact.clone(), 0),
    };
    let n = |p: &str| head.strip_prefix(p).and_then(|n| n.parse::<u32>().ok()).filter(|&n| n > 0 && n <= 65_536);
    if let Some(n) = n("pp") {
        Ok(Test { prompt: n, generate: 0, depth })
    } else if let Some(n) = n("tg") {
        Ok(Test::tg(n, depth))
    } else {
        Err(bad())
    }
}

pub fn run_measure(args: MeasureArgs, out: &mut dyn std::io::Write) -> Result<()> {
    llamacpp::require("measure")?;
    let tests = args.test.iter().map(|t| parse_test(t)).collect::<Result<Vec<_>>>()?;
    let formats = args
        .weights
        .iter()
        .map(|w| w.parse::<DType>().map_err(|e| Error::Usage(format!("--weights: {e}"))))
        .collect::<Result<Vec<_>>>()?;
    let threads = args.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())) as i32;
    let dir =
        tempfile::Builder::new().prefix("rooflinebench-gguf-").tempdir().map_err(|e| Error::io("<temp dir>", e))?;
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
    let bench = llamacpp::bench(&paths, &tests, args.repeats, threads)?;
    let _ = writeln!(
        s,
        "{}; {} threads; {:.1} s; other processes used {:.1}% of the CPU",
        bench.system_info,
        bench.threads,
        bench.wall_s,
        100.0 * bench.other_cpu_fraction
    );
    let _ =
        writeln!(s, "{:<28} {:<8} {:<14} {:>12} {:>10} {:>7}", "model", "weights", "test", "median s", "tok/s", "cv");
    for sample in &bench.samples {
        let (name, file) = models.iter().find(|(_, f)| f.path == sample.model).expect("sampled models were built");
        let mut v = sample.seconds.clone();
        v.sort_by(f64::total_cmp);
        let median = v[v.len() / 2];
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        let cv = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len() as f64).sqrt() / mean;
        let _ = writeln!(
            s,
            "{:<28} {:<8} {:<14} {:>12.6} {:>10.1} {:>6.1}%",
            name,
            file.format.name(),
            sample.test.label(),
            median,
            sample.test.tokens() as f64 / median,
            100.0 * cv
        );
    }
    emit(s.as_bytes(), None, out)
}
