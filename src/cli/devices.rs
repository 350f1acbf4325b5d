//! `devices`: the built-in library.

use super::{emit, CheckArgs, DevicesAction, DevicesArgs, FitArgs, TransferArgs};
use crate::arch::{load_hf_config, Architecture};
use crate::device::{builtin, builtin_names, resolve, DeviceProfile, Summary};
use crate::device::{Engine, ErrorBands, Origin};
use crate::error::Error;
use crate::error::Result;
use crate::files::{csv_bytes, json_bytes};
use crate::fit::agreement::{agreement, factor_summary, median_factor, Agreement};
use crate::fit::{self, band, llama_bench};
use crate::report::Format;
use crate::units::{si, TextTable};
use std::fmt::Write;

pub fn run(args: DevicesArgs, out: &mut dyn std::io::Write) -> Result<()> {
    match args.action {
        Some(DevicesAction::Show { name }) => {
            let p = resolve(&name)?;
            return emit(p.to_json().as_bytes(), None, out);
        }
        Some(DevicesAction::Fit(a)) => return fit(a, out),
        Some(DevicesAction::Check(a)) => return check(a, out),
        Some(DevicesAction::Transfer(a)) => return transfer(a, out),
        None => {}
    }
    let rows: Vec<Summary> = builtin_names().map(|n| builtin(n).expect("listed names resolve").summary()).collect();
    let bytes = match args.format {
        Format::Csv => csv_bytes(&rows),
        Format::Json => json_bytes(&rows),
        Format::Table => {
            let mut t = TextTable::new("{<29} {<4} {<10} {>10} {>12} {>12} {>8} {>9}");
            t.header(&["name", "kind", "origin", "bandwidth", "f32 peak", "f16 peak", "ridge", "usable"]);
            for r in &rows {
                t.row(&[
                    &r.name,
                    &r.kind,
                    &r.origin,
                    &si(r.bandwidth_bytes_per_s, "B/s"),
                    &si(r.f32_flop_per_s, "FLOP/s"),
                    &si(r.f16_flop_per_s, "FLOP/s"),
                    &format!("{:.1}", r.ridge_f16_flop_per_byte),
                    &si(r.usable_memory_bytes, "B"),
                ]);
            }
            let mut s = t.finish();
            let _ =
                writeln!(s, "\nridge in FLOP/byte at f16; `rooflinebench devices show NAME` prints a whole profile.");
            s.into_bytes()
        }
    };
    emit(&bytes, None, out)
}

/// The models shipped in the repository's models/ folder (the path compiled in; nothing in the
/// current folder is read): its regular `.json` files, not links.
fn shipped_models() -> Vec<Architecture> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect()
        })
        .unwrap_or_default();
    paths.sort();
    paths.iter().filter_map(|p| load_hf_config(p).ok()).collect()
}

/// A `--model`: a config.json, or a GGUF file read by llama.cpp's own parser.
fn load_model(path: &std::path::Path) -> Result<Architecture> {
    if path.extension().is_some_and(|x| x.eq_ignore_ascii_case("gguf")) {
        // The worker opens it: a pipe or a device would hang it, anything else fail inside
        // llama.cpp. Only a regular file starting with GGUF goes there.
        let got = match std::fs::metadata(path) {
            Err(e) => return Err(Error::io(path, e)),
            Ok(m) if m.is_dir() => Some("a folder"),
            Ok(m) if !m.is_file() => Some("a device, pipe or socket"),
            Ok(_) if !crate::files::read::is_gguf(path) => Some("a file that does not start with GGUF"),
            Ok(_) => None,
        };
        if let Some(got) = got {
            return Err(Error::field(shown(path), "(file)", "a GGUF file (a regular file starting with GGUF)", got));
        }
        crate::measure::llamacpp::architecture_of(path)
    } else {
        load_hf_config(path)
    }
}

/// The records and runs of some llama-bench files, where they come from, and what could not
/// be used.
type Loaded = (Vec<llama_bench::Record>, Vec<fit::Run>, Vec<llama_bench::Origin>, Vec<String>);

/// The models runs are matched against: every `--model` and shipped one, and the `--model`
/// files that are GGUFs (by their magic), by canonical path, which a row may name.
struct Models {
    all: Vec<Architecture>,
    ggufs: Vec<(std::path::PathBuf, Architecture)>,
}

/// The GGUF a llama-bench row's `model_filename` names, if it is one this tool may read: a
/// `--model` GGUF of that file name, or a GGUF of that file name in the llama-bench file's own
/// folder (only the name's last component is used: no `..`, no other folder, no link out).
enum ModelFile {
    Given(usize),
    Beside(std::path::PathBuf),
}

fn model_file(
    named: &str,
    folder: Option<&std::path::Path>,
    ggufs: &[(std::path::PathBuf, Architecture)],
) -> Option<ModelFile> {
    let name = std::path::Path::new(named).file_name()?;
    let given: Vec<usize> = (0..ggufs.len()).filter(|&i| ggufs[i].0.file_name() == Some(name)).collect();
    if let [one] = given.as_slice() {
        return Some(ModelFile::Given(*one));
    }
    let folder = folder?;
    let beside = folder.join(name).canonicalize().ok()?;
    if beside.parent() != Some(folder) || !crate::files::read::is_gguf(&beside) {
        return None;
    }
    match ggufs.iter().position(|(p, _)| *p == beside) {
        Some(i) => Some(ModelFile::Given(i)),
        None => Some(ModelFile::Beside(beside)),
    }
}

/// A path as messages name it: clipped to one short line.
fn shown(p: &std::path::Path) -> String {
    crate::error::clip(&p.display().to_string())
}

/// The rows of `files` (the ones `flag` names): at most [`llama_bench::MAX_LLAMA_BENCH_BYTES`]
/// across them, checked before any is read, and at most [`llama_bench::MAX_RECORDS`] rows.
fn load_runs(files: &[std::path::PathBuf], flag: &str, models: &Models) -> Result<Loaded> {
    llama_bench::check_total_size(files, flag)?;
    let mut records = Vec::new();
    let mut origins = Vec::new();
    let mut notes = std::collections::BTreeSet::new();
    // llama-bench's JSON names the model file: when it is a GGUF the user gave or one beside
    // the llama-bench file, its own metadata says the architecture (otherwise the parameter
    // count is matched against --model). Each file is read once; none of it is echoed.
    let mut read: std::collections::BTreeMap<std::path::PathBuf, Option<Architecture>> = Default::default();
    for f in files {
        let left = llama_bench::MAX_RECORDS - records.len();
        let (mut rows, o) = llama_bench::parse_file_with_origin_limited(f, left)?;
        let folder = f.canonicalize().ok().and_then(|c| c.parent().map(std::path::Path::to_path_buf));
        // Where each file name a row gives leads, looked up once per name.
        let mut found: std::collections::HashMap<String, Option<ModelFile>> = Default::default();
        for r in rows.iter_mut().filter(|r| r.config.is_none()) {
            let Some(named) = r.file.as_deref() else { continue };
            let at =
                found.entry(named.to_string()).or_insert_with_key(|n| model_file(n, folder.as_deref(), &models.ggufs));
            let (path, arch) = match at {
                None => continue,
                Some(ModelFile::Given(i)) => (&models.ggufs[*i].0, Some(&models.ggufs[*i].1)),
                Some(ModelFile::Beside(p)) => {
                    let arch =
                        read.entry(p.clone()).or_insert_with_key(|p| crate::measure::llamacpp::architecture_of(p).ok());
                    (&*p, arch.as_ref())
                }
            };
            let Some(arch) = arch else {
                notes.insert(format!(
                    "{}: not readable as a GGUF model here; matched by parameter count instead",
                    shown(path)
                ));
                continue;
            };
            match fit::matching_arch(r, arch) {
                Some(a) => r.config = Some(crate::arch::export_hf_config(&a)),
                None => {
                    notes.insert(format!(
                        "{}: its parameter count {} does not match the row's {}; matched by parameter count instead",
                        shown(path),
                        arch.parameters(),
                        r.params
                    ));
                }
            }
        }
        records.extend(rows);
        origins.push(o);
    }
    let (runs, mut skipped) = fit::runs_from_records(&records, &models.all);
    skipped.extend(notes);
    Ok((records, runs, origins, skipped))
}

/// How many reasons an error lists before saying how many more there are.
const REASONS_SHOWN: usize = 5;

/// A usage error when no row of `files` could be used, saying why (a few reasons, clipped).
fn require_runs(runs: &[fit::Run], files: &[std::path::PathBuf], skipped: &[String]) -> Result<()> {
    if !runs.is_empty() {
        return Ok(());
    }
    let mut why: Vec<String> = skipped.iter().take(REASONS_SHOWN).map(|s| crate::error::clip_line(s)).collect();
    if skipped.len() > REASONS_SHOWN {
        why.push(format!("and {} more", skipped.len() - REASONS_SHOWN));
    }
    let mut named: Vec<String> = files.iter().take(REASONS_SHOWN).map(|p| shown(p)).collect();
    if files.len() > REASONS_SHOWN {
        named.push(format!("and {} more", files.len() - REASONS_SHOWN));
    }
    Err(Error::Usage(format!(
        "no usable llama-bench rows in {} ({}); pass the models' config.json or GGUF with --model",
        named.join(", "),
        if why.is_empty() { "no rows".to_string() } else { why.join("; ") }
    )))
}

/// The given models, then the shipped ones not given; and which given ones are GGUF files.
fn models_for(given: &[std::path::PathBuf]) -> Result<Models> {
    let mut models = given.iter().map(|p| load_model(p)).collect::<Result<Vec<_>>>()?;
    let ggufs = given
        .iter()
        .zip(&models)
        .filter(|(p, _)| crate::files::read::is_gguf(p))
        .filter_map(|(p, a)| p.canonicalize().ok().map(|c| (c, a.clone())))
        .collect();
    let names: std::collections::BTreeSet<String> = models.iter().map(|m| m.name.clone()).collect();
    models.extend(shipped_models().into_iter().filter(|m| !names.contains(&m.name)));
    Ok(Models { all: models, ggufs })
}

/// `devices check`: a profile's predictions of llama-bench runs, nothing fitted.
fn check(a: CheckArgs, out: &mut dyn std::io::Write) -> Result<()> {
    let profile = super::device_at(&a.device, a.cpu_threads)?;
    let models = models_for(&a.model)?;
    let (_, runs, _, skipped) = load_runs(&a.llama_bench, "--llama-bench", &models)?;
    require_runs(&runs, &a.llama_bench, &skipped)?;
    let rows = agreement(&profile, &a.device, &runs)?;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} ({}): {} runs, {} between predicted and measured tokens/s",
        profile.name,
        profile.kind_label(),
        rows.len(),
        factor_summary(&rows)
    );
    match (&profile.error_bands, within_line(profile.error_bands.as_ref(), &rows)) {
        (Some(b), Some(w)) => {
            let _ = writeln!(s, "  {w} ({}; {})", band::describe(b), b.basis);
        }
        _ => {
            let _ = writeln!(s, "  no error band: the profile has none for these runs' phases");
        }
    }
    agreement_lines(&mut s, &rows);
    for n in skipped {
        let _ = writeln!(s, "  note: {}", crate::error::clip_line(&n));
    }
    emit(s.as_bytes(), None, out)
}

/// The engine the runs describe: llama.cpp (its one plan), with the runs' backend, build and
/// threads.
fn engine_of(records: &[llama_bench::Record], origins: &[llama_bench::Origin]) -> Engine {
    let backend = records.iter().map(|r| r.backend.clone()).find(|b| !b.is_empty()).unwrap_or_else(|| "unknown".into());
    let build = records
        .iter()
        .find_map(|r| r.build.clone())
        .or_else(|| origins.iter().find_map(|o| o.build.clone()))
        .unwrap_or_else(|| "unknown build".into());
    Engine::llama_cpp(build, backend, records.iter().find_map(|r| r.threads))
}

/// The profile a fit starts from: `base`'s memory and ceilings, named and described as an
/// expected profile of `engine`, with where its runs came from.
fn fitted_base(
    base: &DeviceProfile,
    name: String,
    engine: &Engine,
    runs: usize,
    origins: &[llama_bench::Origin],
) -> DeviceProfile {
    let mut p = base.clone();
    p.name = name;
    let plain = base.description.trim_end_matches(", datasheet").trim_end_matches(" (datasheet)");
    p.description =
        format!("{plain} running llama.cpp ({}), fitted from {runs} public llama-bench runs", engine.backend);
    p.provenance.origin = Origin::Expected;
    let urls: Vec<String> = origins.iter().map(|o| o.source.clone().unwrap_or_else(|| o.file.clone())).collect();
    p.provenance.source = format!(
        "rooflinebench devices fit: {runs} llama-bench runs ({}) on the {} profile's memory and bandwidth",
        urls.join("; "),
        base.name
    );
    if let Some(d) = origins.iter().filter_map(|o| o.date.clone()).max() {
        p.provenance.date = d;
    }
    p
}

/// `--fixed-cost-from NAME`: a profile of the same engine whose cost per kernel was fitted.
fn fixed_cost_donor(name: &str, engine: &Engine) -> Result<DeviceProfile> {
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
    Ok(d)
}

/// What the fit did, in the profile's notes.
fn note_fit(
    profile: &mut DeviceProfile,
    report: &fit::FitReport,
    origins: &[llama_bench::Origin],
    donor: Option<&DeviceProfile>,
) {
    if let Some(d) = donor {
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
    profile.notes.insert("fitted_runs".into(), serde_json::Value::from(report.runs));
    profile.notes.insert("fit_coefficients".into(), serde_json::to_value(&report.coefficients).expect("numbers"));
    profile.notes.insert("fitted_sources".into(), serde_json::to_value(origins).expect("origins serialise"));
    profile.notes.insert(
        "fit_residuals".into(),
        serde_json::Value::from(
            report
                .residuals
                .iter()
                .map(|r| format!("{} {} {}: {:+.1}%", crate::error::clip(&r.model), r.weights, r.test, 100.0 * r.error))
                .collect::<Vec<_>>(),
        ),
    );
}

/// "7 of 10 within the 80% band", when `bands` cover these rows' phases.
fn within_line(bands: Option<&ErrorBands>, rows: &[Agreement]) -> Option<String> {
    let b = bands?;
    let (inside, counted) = band::within(b, rows);
    (counted > 0).then(|| format!("{inside} of {counted} within the {:.0}% band", 100.0 * b.coverage))
}

/// The held-out runs, file by file, predicted by the fitted profile.
struct HeldOut {
    files: Vec<Vec<Agreement>>,
    origins: Vec<llama_bench::Origin>,
    skipped: Vec<String>,
}

impl HeldOut {
    fn load(
        files: &[std::path::PathBuf],
        out: &std::path::Path,
        models: &Models,
        profile: &DeviceProfile,
    ) -> Result<HeldOut> {
        llama_bench::check_total_size(files, "--holdout")?;
        let mut held = HeldOut { files: Vec::new(), origins: Vec::new(), skipped: Vec::new() };
        for f in files {
            let (_, runs, origins, skipped) = load_runs(std::slice::from_ref(f), "--holdout", models)?;
            held.files.push(agreement(profile, &shown(out), &runs)?);
            held.origins.extend(origins);
            held.skipped.extend(skipped);
        }
        Ok(held)
    }

    fn rows(&self) -> Vec<&Agreement> {
        self.files.iter().flatten().collect()
    }

    /// How the bands fare on each file when that file's runs are left out of them: the check a
    /// new source of runs would make.
    fn within_leaving_each_out(&self, cv: &[Agreement], basis: &str) -> Option<String> {
        let (mut inside, mut counted) = (0, 0);
        for (i, file) in self.files.iter().enumerate() {
            let others: Vec<Agreement> = cv
                .iter()
                .chain(self.files.iter().enumerate().filter(|(j, _)| *j != i).flat_map(|(_, f)| f))
                .cloned()
                .collect();
            let (n, c) = band::within(&band::bands(&others, basis.to_string()), file);
            inside += n;
            counted += c;
        }
        (counted > 0).then(|| {
            format!("{inside} of {counted} within the {:.0}% band made without their own file", 100.0 * band::COVERAGE)
        })
    }
}

/// Bands from every out-of-sample prediction: the cross-validated fitted runs and the held-out
/// files; and the held-out agreement, with each file checked against bands made without it, in
/// the profile's notes. Returns the held-out rows and the notes on rows that could not be used.
fn bands_and_held_out(
    a: &FitArgs,
    models: &Models,
    profile: &mut DeviceProfile,
    cv: (Vec<Agreement>, String),
) -> Result<(Vec<Agreement>, Vec<String>, Option<String>)> {
    let (cv, cv_basis) = cv;
    if a.holdout.is_empty() {
        profile.error_bands = Some(band::bands(&cv, cv_basis));
        return Ok((Vec::new(), Vec::new(), None));
    }
    let held = HeldOut::load(&a.holdout, &a.out, models, profile)?;
    let rows: Vec<Agreement> = held.rows().into_iter().cloned().collect();
    let basis = format!(
        "{cv_basis}, and {} held-out runs from {} other sources, each predicted without being fitted",
        rows.len(),
        held.files.len()
    );
    let all: Vec<Agreement> = cv.iter().chain(&rows).cloned().collect();
    profile.error_bands = Some(band::bands(&all, basis.clone()));
    let within = held.within_leaving_each_out(&cv, &basis);
    note_held_out(profile, &held, &rows, within.clone());
    Ok((rows, held.skipped, within))
}

/// The held-out runs' agreement in the profile's notes: the summary, each run in words, each
/// run's measured / predicted tokens/s (what `--band-from` reads), and how many fell in band.
fn note_held_out(profile: &mut DeviceProfile, held: &HeldOut, rows: &[Agreement], within: Option<String>) {
    profile.notes.insert("held_out_sources".into(), serde_json::to_value(&held.origins).expect("origins serialise"));
    let agreement = if rows.is_empty() {
        let why: Vec<String> = held.skipped.iter().take(REASONS_SHOWN).map(|n| crate::error::clip_line(n)).collect();
        serde_json::json!({ "runs": 0, "note": format!("no held-out row could be used: {}", why.join("; ")) })
    } else {
        serde_json::json!({
            "runs": rows.len(),
            "median_factor": median_factor(rows),
            "summary": factor_summary(rows),
            "within_band": within,
            "rows": rows.iter().map(|h| format!(
                "{} {} {}: measured {:.1} tok/s, predicted {:.1} tok/s ({:.2}x)",
                h.model, h.weights, h.test, h.measured_tokens_per_s, h.predicted_tokens_per_s, h.ratio
            )).collect::<Vec<_>>(),
            "factors": rows.iter().map(|h| serde_json::json!({
                "test": h.test, "prefill": h.prefill, "factor": band::factor(h)
            })).collect::<Vec<_>>(),
        })
    };
    profile.notes.insert("held_out_agreement".into(), agreement);
}

/// (prefill?, measured / predicted tokens/s) of the held-out runs a profile's notes record.
fn noted_factors(p: &DeviceProfile, flag: &str) -> Result<Vec<(bool, f64)>> {
    let missing = || {
        Error::field(
            crate::error::clip(&p.name),
            "notes.held_out_agreement.factors",
            format!("held-out runs predicted by a transferred profile ({flag} takes profiles made with --holdout)"),
            "none",
        )
    };
    let rows = p.held_out_agreement().and_then(|h| h.get("factors")).and_then(|f| f.as_array()).ok_or_else(missing)?;
    let pair = |r: &serde_json::Value| Some((r.get("prefill")?.as_bool()?, r.get("factor")?.as_f64()?));
    let factors: Vec<(bool, f64)> = rows.iter().filter_map(pair).collect();
    if factors.len() != rows.len() || factors.is_empty() {
        return Err(missing());
    }
    Ok(factors)
}

/// `devices transfer`: a sibling's engine profile on a device's datasheet ceilings.
fn transfer(a: TransferArgs, out: &mut dyn std::io::Write) -> Result<()> {
    let sibling = resolve(&a.from)?;
    // Before its datasheet is looked up: a sibling without an engine has none to give.
    crate::device::transfer::engine_of(&sibling)?;
    let sibling_datasheet = resolve(a.from_datasheet.as_deref().unwrap_or(&format!("{}-datasheet", sibling.name)))?;
    let base = resolve(&a.base)?;
    let name = match &a.name {
        Some(n) => crate::files::plain_name(n, "--name", "name")?,
        None => base.name.trim_end_matches("-datasheet").to_string(),
    };
    crate::files::outdir::refuse_tool_file(&a.out)?;
    let inputs: Vec<&std::path::Path> = a
        .holdout
        .iter()
        .chain(&a.model)
        .map(|p| p.as_path())
        .chain(
            [a.from.as_str(), a.base.as_str()]
                .into_iter()
                .chain(a.from_datasheet.as_deref())
                .chain(a.band_from.iter().map(|s| s.as_str()))
                .map(std::path::Path::new),
        )
        .collect();
    crate::files::write::refuse_input(&a.out, &inputs)?;
    let _lock = crate::files::Lock::take(&a.out)?;
    crate::files::check_writable(&a.out)?;
    let mut profile = crate::device::transfer(&sibling, &sibling_datasheet, &base, name)?;
    if !a.band_from.is_empty() {
        let mut factors = Vec::new();
        let mut pairs = Vec::new();
        for f in &a.band_from {
            let p = resolve(f)?;
            let Some(from) = p.notes.get("transferred_from").and_then(|v| v.as_str()) else {
                return Err(Error::Usage(format!(
                    "--band-from {f}: expected a transferred profile (made by devices transfer --holdout), got {}",
                    p.kind_label()
                )));
            };
            factors.extend(noted_factors(&p, "--band-from")?);
            pairs.push(format!("{} from {from}", p.name));
        }
        let basis = format!(
            "{} runs on {} other devices predicted by profiles transferred the same way, nothing fitted: {}",
            factors.len(),
            pairs.len(),
            pairs.join(", ")
        );
        profile.error_bands = Some(band::bands_of(&factors, basis));
    }
    let mut s = String::new();
    let _ = writeln!(s, "{} ({}) -> {}", profile.name, profile.kind_label(), a.out.display());
    if let Some(b) = &profile.error_bands {
        let _ = writeln!(s, "{} ({})", band::describe(b), b.basis);
    }
    if !a.holdout.is_empty() {
        let models = models_for(&a.model)?;
        let held = HeldOut::load(&a.holdout, &a.out, &models, &profile)?;
        let rows: Vec<Agreement> = held.rows().into_iter().cloned().collect();
        let within = within_line(profile.error_bands.as_ref(), &rows);
        note_held_out(&mut profile, &held, &rows, within.clone());
        let _ = writeln!(
            s,
            "runs on the device ({}, nothing fitted): {}{}",
            rows.len(),
            if rows.is_empty() { "none usable".to_string() } else { factor_summary(&rows) },
            within.map(|w| format!("; {w}")).unwrap_or_default()
        );
        agreement_lines(&mut s, &rows);
        for n in &held.skipped {
            let _ = writeln!(s, "  note: {}", crate::error::clip_line(n));
        }
    }
    let text = profile.to_json();
    DeviceProfile::from_json(&text, &shown(&a.out))?;
    crate::files::write_atomic(&a.out, text.as_bytes())?;
    emit(s.as_bytes(), None, out)
}

/// `--threads-from`: the profile's rates at each other thread count, from the runs there paired
/// with the fitted runs (the first of each model and test: files in the order given, a sweep's
/// own session first), checked model by model (`fit::threads`). Returns the lines that say what
/// it found.
fn thread_scaling(
    a: &FitArgs,
    models: &Models,
    fitted: &[fit::Run],
    profile: &mut DeviceProfile,
) -> Result<Vec<String>> {
    if a.threads_from.is_empty() {
        return Ok(Vec::new());
    }
    let own = profile.engine.as_ref().and_then(|e| e.threads).ok_or_else(|| {
        Error::Usage("--threads-from: expected fitted runs that say their thread count (a CPU backend's)".into())
    })?;
    let mut fits = Vec::new();
    let mut lines = Vec::new();
    for f in &a.threads_from {
        let (records, runs, _, _) = load_runs(std::slice::from_ref(f), "--threads-from", models)?;
        let counts: std::collections::BTreeSet<u32> = records.iter().filter_map(|r| r.threads).collect();
        let [threads] = counts.into_iter().collect::<Vec<_>>()[..] else {
            return Err(Error::field(
                shown(f),
                "threads",
                "one thread count in every row of the file",
                "several or none",
            ));
        };
        if threads == own {
            return Err(Error::field(
                shown(f),
                "threads",
                format!("a count other than the fitted runs' {own}"),
                threads,
            ));
        }
        let pairs = fit::threads::pairs(fitted, &runs);
        let Some(found) = fit::threads::fit_threads(profile, threads, &pairs, &shown(f))? else {
            return Err(Error::field(
                shown(f),
                "(rows)",
                "prompt and generation runs of models and tests the fitted files also ran",
                format!("{} pairs", pairs.len()),
            ));
        };
        lines.push(found.line(own));
        fits.push(found);
    }
    // A later file at the same count replaces an earlier one's factors.
    fit::threads::record(profile, &fits);
    Ok(lines)
}

/// The profile's JSON, once the profile reader's own checks accept it: what is written must load.
fn checked_json(profile: &DeviceProfile, report: &fit::FitReport, out: &std::path::Path) -> Result<String> {
    if let Some(r) = report.residuals.iter().find(|r| !(r.predicted_s.is_finite() && r.predicted_s > 0.0)) {
        return Err(Error::field(
            shown(out),
            "(fit)",
            format!("a positive finite predicted time for {} {} {}", crate::error::clip(&r.model), r.weights, r.test),
            format!("{} s", r.predicted_s),
        ));
    }
    let text = profile.to_json();
    DeviceProfile::from_json(&text, &shown(out)).map_err(|e| {
        Error::Usage(format!(
            "the fitted profile would not load, so it was not written: {}",
            crate::error::clip_line(&e.to_string())
        ))
    })?;
    Ok(text)
}

/// One line per run: measured and predicted tokens/s and their ratio.
fn agreement_lines(s: &mut String, rows: &[Agreement]) {
    let mut t = TextTable::new("  {<40} {<7} {<14} measured {>9} tok/s predicted {>9} tok/s {>6}x");
    for h in rows {
        t.row(&[
            &h.model,
            &h.weights,
            &h.test,
            &format!("{:.1}", h.measured_tokens_per_s),
            &format!("{:.1}", h.predicted_tokens_per_s),
            &format!("{:.2}", h.ratio),
        ]);
    }
    *s += &t.finish();
}

/// `devices fit`: a llama.cpp profile for a device from llama-bench results run on it.
fn fit(a: FitArgs, out: &mut dyn std::io::Write) -> Result<()> {
    let base = resolve(&a.base)?;
    let name = match &a.name {
        Some(n) => crate::files::plain_name(n, "--name", "name")?,
        None => format!("{}-llamacpp", base.name),
    };
    crate::files::outdir::refuse_tool_file(&a.out)?;
    let inputs: Vec<&std::path::Path> = a
        .llama_bench
        .iter()
        .chain(&a.holdout)
        .chain(&a.threads_from)
        .chain(&a.model)
        .map(|p| p.as_path())
        .chain([a.base.as_str()].into_iter().chain(a.fixed_cost_from.as_deref()).map(std::path::Path::new))
        .collect();
    crate::files::write::refuse_input(&a.out, &inputs)?;
    let _lock = crate::files::Lock::take(&a.out)?;
    crate::files::check_writable(&a.out)?;
    let models = models_for(&a.model)?;
    let (records, runs, origins, skipped) = load_runs(&a.llama_bench, "--llama-bench", &models)?;
    require_runs(&runs, &a.llama_bench, &skipped)?;
    let engine = engine_of(&records, &origins);
    let fitted_base = fitted_base(&base, name, &engine, runs.len(), &origins);
    let donor = a.fixed_cost_from.as_deref().map(|n| fixed_cost_donor(n, &engine)).transpose()?;
    let launch = donor.as_ref().map(|d| d.kernel_overhead_s);
    let (mut profile, report) = fit::fit_engine_under_roofs(&fitted_base, &engine, &runs, launch)?;
    note_fit(&mut profile, &report, &origins, donor.as_ref());
    let cv = band::cross_validate(&runs, &shown(&a.out), "fitted runs", |sub| {
        fit::fit_engine_under_roofs(&fitted_base, &engine, sub, launch).map(|(p, _)| p)
    });
    let (held, held_skipped, within) = bands_and_held_out(&a, &models, &mut profile, cv)?;
    let threads_said = thread_scaling(&a, &models, &runs, &mut profile)?;
    crate::files::write_atomic(&a.out, checked_json(&profile, &report, &a.out)?.as_bytes())?;
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
    if let Some(b) = &profile.error_bands {
        let _ = writeln!(s, "{} ({})", band::describe(b), b.basis);
    }
    for line in threads_said {
        let _ = writeln!(s, "{line}");
    }
    let mut t = TextTable::new("  {<40} {<7} {<14} measured {>10} predicted {>10} {>8}");
    for r in &report.residuals {
        t.row(&[
            &crate::error::clip(&r.model),
            &r.weights,
            &r.test,
            &si(r.measured_s, "s"),
            &si(r.predicted_s, "s"),
            &format!("{:+.1}%", 100.0 * r.error),
        ]);
    }
    s += &t.finish();
    for n in skipped {
        let _ = writeln!(s, "  note: {}", crate::error::clip_line(&n));
    }
    if !a.holdout.is_empty() && held.is_empty() {
        let _ = writeln!(s, "held out: no usable row in {} file(s)", a.holdout.len());
    } else if !a.holdout.is_empty() {
        let _ = writeln!(
            s,
            "held out ({} runs, not fitted): {} between predicted and measured tokens/s{}",
            held.len(),
            factor_summary(&held),
            within.map(|w| format!("; {w}")).unwrap_or_default()
        );
        agreement_lines(&mut s, &held);
        for n in held_skipped {
            let _ = writeln!(s, "  note: {}", crate::error::clip_line(&n));
        }
    }
    emit(s.as_bytes(), None, out)
}
