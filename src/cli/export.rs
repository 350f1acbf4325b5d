//! `export`: any candidate of a saved search (or of a space file) as a Hugging Face
//! `config.json`, or as a GGUF file of random weights quantised by llama.cpp.

use super::{emit, ExportArgs, ExportFormat};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::files::{json_bytes, write_atomic};
use crate::search::{candidate_config, FrontRow};
use crate::search::{Candidate, SearchSpace};
use crate::units::si;
use std::path::{Path, PathBuf};

/// The space a source names: a search's output folder or a space TOML file; for a folder also
/// its recommendation. The whole folder is checked once (files against the marker, the outcome
/// re-scored or searched again), so an edited space.toml cannot pass for the searched one.
fn space_of(source: &Path) -> Result<(SearchSpace, Option<u64>)> {
    if source.is_dir() {
        let saved = crate::search::saved::load(source)?;
        // The recommendation as the search decided it, from its checked outcome (not a flag in
        // pareto.csv, which a hand edit could move).
        let recommended = crate::search::finish(&saved.space, &saved.device, saved.outcome)?.recommended.index;
        Ok((saved.space, Some(recommended)))
    } else {
        Ok((SearchSpace::load(source)?, None))
    }
}

/// `#123`, `123`, or `recommended` (a search folder's recommendation).
fn index_of(candidate: &str, source: &Path, space: &SearchSpace, recommended: Option<u64>) -> Result<u64> {
    let text = candidate.trim();
    if text == "recommended" {
        return recommended.ok_or_else(|| {
            Error::Usage(format!(
                "{}: `recommended` needs a search's output folder (or give '#INDEX')",
                source.display()
            ))
        });
    }
    let digits = text.strip_prefix('#').unwrap_or(text);
    let index: u64 = digits.parse().map_err(|_| {
        Error::Usage(format!(
            "candidate: expected '#INDEX' (as in pareto.csv and summary.md) or 'recommended', got '{candidate}'"
        ))
    })?;
    if index >= space.count() {
        return Err(Error::Usage(format!(
            "candidate #{index}: space '{}' has {} candidates (#0 to #{})",
            space.name,
            space.count(),
            space.count().saturating_sub(1)
        )));
    }
    Ok(index)
}

fn candidate(space: &SearchSpace, index: u64) -> Result<Candidate> {
    space.candidate(index).map_err(|why| {
        Error::Usage(format!(
            "{}: candidate #{index} of '{}' is not a valid model: {}",
            space.source_name,
            space.name,
            why.describe()
        ))
    })
}

/// `--out` names a file (replaced if it is there, as `-o` does), or a folder to write the
/// default file name into, where a file of that name is never replaced: nobody named it.
fn out_path(out: &Path, default_name: &str) -> Result<PathBuf> {
    if out.is_dir() || out.as_os_str().to_string_lossy().ends_with('/') {
        let path = out.join(default_name);
        if std::fs::symlink_metadata(&path).is_ok() {
            return Err(Error::Usage(format!(
                "{}: exists; to replace it, name it with --out {}",
                crate::error::clip(&path.display().to_string()),
                crate::error::clip(&path.display().to_string())
            )));
        }
        Ok(path)
    } else {
        Ok(out.to_path_buf())
    }
}

pub fn run(args: ExportArgs, out: &mut dyn std::io::Write) -> Result<()> {
    if args.format == ExportFormat::Gguf {
        // Without the engine, say how to build it before reading anything.
        crate::measure::llamacpp::require("export --format gguf")?;
    }
    let (space, recommended) = space_of(&args.source)?;
    let index = index_of(&args.candidate, &args.source, &space, recommended)?;
    let mut c = candidate(&space, index)?;
    c.arch.name = format!("{}-{index}", space.name);
    let label = FrontRow::architecture_label(&c);
    match args.format {
        ExportFormat::Hf => {
            if args.weights.is_some() {
                return Err(Error::Usage("--weights applies to --format gguf (a config.json holds no weights)".into()));
            }
            let config = candidate_config(&c)?;
            let path = out_path(&args.out, "config.json")?;
            crate::files::outdir::refuse_tool_file(&path)?;
            crate::files::write::refuse_input(&path, &[&args.source])?;
            let _lock = crate::files::Lock::take(&path)?;
            write_atomic(&path, &json_bytes(&config))?;
            let model_type = config["model_type"].as_str().unwrap_or("?");
            let text = format!(
                "wrote {}: {label} as {model_type}, {} parameters ({})\n",
                path.display(),
                c.arch.parameters(),
                si(c.arch.parameters() as f64, "")
            );
            emit(text.as_bytes(), None, out)
        }
        ExportFormat::Gguf => {
            let format = match &args.weights {
                Some(w) => w.parse::<DType>().map_err(|e| Error::Usage(format!("--weights: {e}")))?,
                None => c.precisions.weights,
            };
            if crate::arch::gguf::file_type(format).is_none() {
                return Err(Error::Usage(format!(
                    "--weights: {format} has no GGUF type llama.cpp runs (use f16, bf16, q8_0, q4_0 or q4_k_m)"
                )));
            }
            let path = out_path(&args.out, &format!("{}.{}.gguf", c.arch.name, format.name()))?;
            crate::files::write::refuse_special(&path)?;
            crate::files::outdir::refuse_tool_file(&path)?;
            crate::files::write::refuse_input(&path, &[&args.source])?;
            let _lock = crate::files::Lock::take(&path)?;
            // Built beside the destination, then renamed: never a half-written file at --out,
            // and an interrupt (or the next run, after a kill) removes the temporary.
            let work = crate::files::temp::TempDir::beside(&path)?;
            let threads = std::thread::available_parallelism().map_or(1, |n| n.get()) as i32;
            let files = crate::measure::llamacpp::build(&c.arch, &[format], work.path(), 42, threads)?;
            let f = files.into_iter().next().ok_or_else(|| Error::Engine("the build wrote no file".into()))?;
            {
                let _guard = crate::files::interrupt::in_progress();
                std::fs::rename(&f.path, &path).map_err(|e| Error::io(&path, e))?;
            }
            let text = format!(
                "wrote {}: {label}, {format} weights (random), {:.1} MB; llama.cpp counts {} parameters (ours {})\n",
                path.display(),
                f.file_bytes as f64 / 1e6,
                f.parameters,
                c.arch.parameters()
            );
            emit(text.as_bytes(), None, out)
        }
    }
}
