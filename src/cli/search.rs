//! `search`, `batch` and `merge`: the main job, for one space or a folder of them.

use super::{BatchArgs, MergeArgs, SearchArgs};
use crate::device::DeviceProfile;
use crate::error::{Error, Result};
use crate::files::{check_writable, write_atomic};
use crate::files::{Lock, Staged};
use crate::report::check;
use crate::report::explain::explain;
use crate::report::folder::write;
use crate::roofline::PlanChoice;
use crate::search::{finish, SearchReport};
use crate::search::{run, shard, Outcome, SearchOptions, SearchSpace};
use crate::units::si;
use crate::workload::Plan;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

pub(crate) fn parse_shard(s: &str) -> Result<(u64, u64)> {
    let bad = || Error::Usage(format!("--shard: expected K/N with 0 <= K < N (e.g. 0/4), got '{s}'"));
    let (k, n) = s.split_once('/').ok_or_else(bad)?;
    let (k, n): (u64, u64) = (k.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
    if n == 0 || k >= n {
        return Err(bad());
    }
    Ok((k, n))
}

fn options(threads: Option<usize>, shard: Option<&str>, force: bool, max: u64, plan: &str) -> Result<SearchOptions> {
    if threads == Some(0) {
        return Err(Error::Usage("--threads: expected at least 1".into()));
    }
    Ok(SearchOptions {
        threads,
        shard: shard.map(parse_shard).transpose()?,
        max_candidates: max,
        force,
        progress: true,
        plans: if plan == "naive" { PlanChoice::Fixed(Plan::NAIVE) } else { PlanChoice::Fastest },
    })
}

fn shard_file(dir: &Path, (k, n): (u64, u64)) -> PathBuf {
    dir.join(format!("shard-{k}-of-{n}.json"))
}

/// Refuses an output path that exists as a file, before any long work.
fn check_out_dir(dir: &Path) -> Result<()> {
    if dir.exists() && !dir.is_dir() {
        return Err(Error::Usage(format!("--out {}: exists and is not a folder", dir.display())));
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))
}

pub fn run_search(args: SearchArgs, out: &mut dyn std::io::Write) -> Result<()> {
    let space = SearchSpace::load(&args.space)?;
    let device = super::device_at(&args.device, args.cpu_threads)?;
    let opts = options(args.threads, args.shard.as_deref(), args.force, args.max_candidates, &args.plan)?;
    // Without --out, never into results/ (the committed baseline): search-out/ beside it.
    let dir = args.out.unwrap_or_else(|| PathBuf::from("search-out").join(&space.name).join(&device.name));
    // Before the search: a folder that cannot be written, or that another run is writing, is
    // refused now rather than after the work.
    if let Some(shard) = opts.shard {
        check_out_dir(&dir)?;
        let path = shard_file(&dir, shard);
        shard::check_replaceable(&path)?;
        check_writable(&path)?;
        eprintln!("{}: {} candidates on {}", space.name, space.count(), device.name);
        let outcome = run(&space, &device, &opts)?;
        write_atomic(&path, &shard::to_json(&space, &device, &opts, shard, &outcome))?;
        return writeln!(out, "wrote shard {}/{} to {}", shard.0, shard.1, path.display())
            .map_err(|e| Error::io("<stdout>", e));
    }
    let staged = Staged::begin(&dir, "search")?;
    eprintln!("{}: {} candidates on {}", space.name, space.count(), device.name);
    let report = crate::report::folder::search_into(&space, &device, &opts, &staged)?;
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    let mut text = explain(&report);
    if args.per_layer {
        // The uniform search already succeeded; a per-layer failure is reported, not fatal.
        match super::per_layer::run(&space, &device, &report) {
            Ok((t, rows)) => {
                let md = format!("# Per-layer stack: `{}` on `{}`\n\n```\n{t}```\n", report.space, report.device);
                write_atomic(&staged.path().join("per_layer.md"), md.as_bytes())?;
                write_atomic(&staged.path().join("per_layer.csv"), &crate::files::csv_bytes(&rows))?;
                text.push_str(&t);
                text.push_str("  (per_layer.md, per_layer.csv)\n");
            }
            Err(e) => text.push_str(&format!("per-layer: {e}\n")),
        }
    }
    staged.commit()?;
    writeln!(out, "{text}wrote {}", dir.display()).map_err(|e| Error::io("<stdout>", e))
}

/// Search spaces in a folder, sorted by file name.
fn spaces_in(dir: &Path) -> Result<Vec<SearchSpace>> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    if paths.is_empty() {
        return Err(Error::Usage(format!("{}: no .toml search spaces", dir.display())));
    }
    paths.iter().map(|p| SearchSpace::load(p)).collect()
}

fn devices(list: &[String], cpu_threads: Option<u32>) -> Result<Vec<DeviceProfile>> {
    list.iter().map(|d| super::device_at(d, cpu_threads)).collect()
}

fn batch_summary(reports: &[&SearchReport]) -> String {
    let mut s = String::from("# Batch summary\n\n| space | device | profile | recommended | params | rip | decode tok/s | TTFT | memory | predicted loss | feasible | front | plots |\n|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n");
    for r in reports {
        let c = &r.recommended;
        let _ = writeln!(
            s,
            "| [{}]({}/{}/summary.md) | {} | {} | {} | {} | {:.4} | {:.1} | {} | {} | {:.4} | {} | {} | [front]({1}/{2}/front.svg), [quality]({1}/{2}/quality.svg), [roofline]({1}/{2}/roofline.svg) |",
            r.space,
            r.space,
            r.device,
            r.device,
            r.profile,
            c.label(),
            si(c.parameters as f64, ""),
            c.rip,
            c.decode_tokens_per_s,
            si(c.ttft_s, "s"),
            si(c.footprint_bytes, "B"),
            c.predicted_loss,
            r.outcome.feasible,
            r.outcome.front.len()
        );
    }
    let warned: Vec<String> = reports
        .iter()
        .flat_map(|r| r.warnings.iter().map(move |w| format!("- {}/{}: {w}", r.space, r.device)))
        .collect();
    if !warned.is_empty() {
        let _ = writeln!(s, "\nWarnings:\n\n{}", warned.join("\n"));
    }
    s
}

/// Writes every report and the summary, then runs the regression check if asked.
fn publish(
    reports: Vec<(SearchReport, SearchSpace, DeviceProfile, Staged)>,
    out_dir: &Path,
    check_against: Option<&Path>,
    tolerance: f64,
    out: &mut dyn std::io::Write,
) -> Result<()> {
    let mut problems = Vec::new();
    for (r, space, device, staged) in reports.iter() {
        for w in &r.warnings {
            eprintln!("warning: {}/{}: {w}", r.space, r.device);
        }
        write(r, space, device, &staged.path())?;
    }
    let mut finished = Vec::new();
    for (r, space, device, staged) in reports {
        staged.commit()?;
        finished.push((r, space, device));
    }
    for (r, ..) in &finished {
        let dir = out_dir.join(&r.space).join(&r.device);
        if let Some(base) = check_against {
            let label = format!("{}/{}", r.space, r.device);
            problems.extend(check::compare(&label, &dir, &base.join(&r.space).join(&r.device), tolerance)?);
        }
    }
    let reports = finished;
    let summary = batch_summary(&reports.iter().map(|(r, ..)| r).collect::<Vec<_>>());
    crate::files::outdir::write_recorded(out_dir, "batch", "summary.md", summary.as_bytes())?;
    out.write_all(summary.as_bytes()).map_err(|e| Error::io("<stdout>", e))?;
    if let Some(base) = check_against {
        if !problems.is_empty() {
            return Err(Error::Regression(problems.join("\n")));
        }
        writeln!(out, "\ncheck: {} runs match {} (tolerance {tolerance})", reports.len(), base.display())
            .map_err(|e| Error::io("<stdout>", e))?;
    }
    Ok(())
}

pub fn run_batch(args: BatchArgs, out: &mut dyn std::io::Write) -> Result<()> {
    let spaces = spaces_in(&args.spaces)?;
    let devices = devices(&args.devices, args.cpu_threads)?;
    let opts = options(args.threads, args.shard.as_deref(), args.force, args.max_candidates, "best")?;
    if let Some(b) = &args.check {
        if !b.is_dir() {
            return Err(Error::Usage(format!("--check {}: not a folder of baseline results", b.display())));
        }
    }
    check_out_dir(&args.out)?;
    // Shards of one batch may run at once into one folder (each writes its own files whole).
    let _lock = if opts.shard.is_none() { Some(Lock::take(&args.out)?) } else { None };
    crate::files::outdir::check_file_replaceable(&args.out, "summary.md", "batch")?;
    let mut reports = Vec::new();
    for space in spaces {
        for device in &devices {
            let dir = args.out.join(&space.name).join(&device.name);
            if let Some(shard) = opts.shard {
                check_out_dir(&dir)?;
                let path = shard_file(&dir, shard);
                shard::check_replaceable(&path)?;
                check_writable(&path)?;
                let outcome = run(&space, device, &opts)?;
                write_atomic(&path, &shard::to_json(&space, device, &opts, shard, &outcome))?;
                continue;
            }
            let staged = Staged::begin(&dir, "search")?;
            let outcome = run(&space, device, &opts)?;
            reports.push((finish(&space, device, outcome)?, space.clone(), device.clone(), staged));
        }
    }
    if let Some(shard) = opts.shard {
        return writeln!(out, "wrote shard {}/{} under {}", shard.0, shard.1, args.out.display())
            .map_err(|e| Error::io("<stdout>", e));
    }
    publish(reports, &args.out, args.check.as_deref(), args.tolerance, out)
}

pub fn run_merge(args: MergeArgs, out: &mut dyn std::io::Write) -> Result<()> {
    let spaces = spaces_in(&args.spaces)?;
    let devices = devices(&args.devices, None)?;
    check_out_dir(&args.out)?;
    let _lock = Lock::take(&args.out)?;
    crate::files::outdir::check_file_replaceable(&args.out, "summary.md", "batch")?;
    let mut reports = Vec::new();
    for space in spaces {
        for device in &devices {
            // Shard files by (K, N), each read and checked against the space as it is now.
            let mut found: std::collections::BTreeMap<(u64, u64), PathBuf> = Default::default();
            for root in &args.shards {
                let dir = root.join(&space.name).join(&device.name);
                let Ok(entries) = std::fs::read_dir(&dir) else { continue };
                for f in entries.filter_map(|e| e.ok().map(|e| e.path())) {
                    let name = f.file_name().and_then(|n| n.to_str()).unwrap_or("");
                    let Some(kn) = name.strip_prefix("shard-").and_then(|s| s.strip_suffix(".json")) else { continue };
                    let shard = parse_shard(&kn.replace("-of-", "/"))
                        .map_err(|_| Error::field(f.display().to_string(), "(file name)", "shard-K-of-N.json", name))?;
                    if let Some(other) = found.insert(shard, f.clone()) {
                        return Err(Error::Usage(format!(
                            "{}: shard {}/{} also in {}; keep one",
                            f.display(),
                            shard.0,
                            shard.1,
                            other.display()
                        )));
                    }
                }
            }
            let n = found.keys().next().map(|s| s.1).unwrap_or(0);
            if n == 0 || found.len() as u64 != n || found.keys().any(|s| s.1 != n) {
                return Err(Error::Usage(format!(
                    "{}/{}: incomplete shards under {}: found {:?}, expected 0/N .. N-1/N",
                    space.name,
                    device.name,
                    args.shards.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "),
                    found.keys().map(|(k, n)| format!("{k}/{n}")).collect::<Vec<_>>()
                )));
            }
            let staged = Staged::begin(&args.out.join(&space.name).join(&device.name), "search")?;
            let mut merged: Option<Outcome> = None;
            for (&shard, f) in &found {
                let o = shard::read(f, shard, &space, device, PlanChoice::Fastest)?;
                merged = Some(match merged {
                    None => o,
                    Some(m) => m.merge(o),
                });
            }
            let outcome = merged.expect("at least one shard");
            reports.push((finish(&space, device, outcome)?, space.clone(), device.clone(), staged));
        }
    }
    publish(reports, &args.out, None, 0.0, out)
}
