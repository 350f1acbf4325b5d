//! `plot`: SVG rooflines and fronts from models, devices or a search's saved output.

use super::{emit, PlotArgs, PlotWhat, PrecisionArgs};
use crate::analysis::analyze;
use crate::arch::load_hf_config;
use crate::device::resolve;
use crate::error::{Error, Result};
use crate::report::plot::{front_svg, roofline_svg_models, FrontPoint, RoofLine, RooflinePoint};
use crate::roofline::PlanChoice;
use crate::workload::RunSettings;
use std::path::{Path, PathBuf};

pub fn run(args: PlotArgs, out: &mut dyn std::io::Write) -> Result<()> {
    let path = match args.what {
        PlotWhat::Roofline { model, device, scenario, phases, precision, out } => {
            roofline(&model, &device, &scenario, phases, &precision, out)?
        }
        PlotWhat::Front { dir, out } => front(&dir, out)?,
    };
    emit(format!("wrote {}\n", path.display()).as_bytes(), None, out)
}

/// `plot roofline`: each model's scenarios (and phases) under each device's roof.
fn roofline(
    model: &[PathBuf],
    device: &[String],
    scenario: &[String],
    phases: bool,
    precision: &PrecisionArgs,
    out: PathBuf,
) -> Result<PathBuf> {
    let settings = RunSettings { precisions: precision.resolve()?, ..RunSettings::default() };
    let scenarios = crate::roofline::Scenario::select(scenario, None, None)?;
    let models = model.iter().map(|m| load_hf_config(m)).collect::<Result<Vec<_>>>()?;
    let devices = device.iter().map(|d| resolve(d)).collect::<Result<Vec<_>>>()?;
    let mut roofs = Vec::new();
    let mut points = Vec::new();
    for (i, d) in devices.iter().enumerate() {
        let r = crate::roofline::Roof::of(d, &settings);
        roofs.push(RoofLine {
            label: d.name.clone(),
            peak_flop_per_s: r.peak_flop_per_s,
            bandwidth_bytes_per_s: r.bandwidth_bytes_per_s,
        });
        for (mi, m) in models.iter().enumerate() {
            for s in &scenarios {
                let a = analyze(m, d, s, &settings, PlanChoice::Fastest);
                // Several models: colour and legend name the model, and only the first
                // model's points carry the scenario, so each cluster has one label.
                let tag = if models.len() > 1 && mi > 0 { String::new() } else { s.name.to_uppercase() };
                let mut add = |label: String, p: &crate::analysis::PhaseSummary| {
                    points.push(RooflinePoint {
                        label,
                        roof: i,
                        model: (models.len() > 1).then_some(mi),
                        intensity_flop_per_byte: p.intensity_flop_per_byte,
                        performance_flop_per_s: p.performance_flop_per_s,
                    })
                };
                add(tag.clone(), &a.scenario_point);
                if phases {
                    let named = |phase: &str| if tag.is_empty() { String::new() } else { format!("{tag} {phase}") };
                    add(named("prefill"), &a.prefill);
                    add(named("decode"), &a.decode);
                }
            }
        }
    }
    let names: Vec<&str> = models.iter().map(|m| m.name.as_str()).collect();
    let legend: Vec<String> = if models.len() > 1 { names.iter().map(|n| n.to_string()).collect() } else { Vec::new() };
    crate::files::outdir::refuse_tool_file(&out)?;
    let inputs: Vec<&Path> = model.iter().map(|m| m.as_path()).chain(device.iter().map(Path::new)).collect();
    crate::files::write::refuse_input(&out, &inputs)?;
    let _lock = crate::files::Lock::take(&out)?;
    roofline_svg_models(&out, &format!("{} on the roofline", names.join(", ")), &roofs, &points, &legend)?;
    Ok(out)
}

/// `plot front`: a saved search's Pareto front, by default into its own folder.
fn front(dir: &Path, out: Option<PathBuf>) -> Result<PathBuf> {
    let points = front_points(dir)?;
    let out = out.unwrap_or_else(|| dir.join("front.svg"));
    let title = format!("{}: Pareto front", dir.display());
    let own = dir.join("front.svg");
    if out == own {
        // The search folder's own plot: redrawn, and its hash in the marker kept true;
        // no search replaces the folder meanwhile.
        let _lock = crate::files::Lock::take(dir)?;
        let tmp = crate::files::temp::TempDir::beside(&own)?;
        let drawn = tmp.path().join("front.svg");
        front_svg(&drawn, &title, &points)?;
        let bytes = std::fs::read(&drawn).map_err(|e| Error::io(&drawn, e))?;
        crate::files::outdir::add_files(dir, &[("front.svg", &bytes)])?;
    } else {
        crate::files::outdir::refuse_tool_file(&out)?;
        let _lock = crate::files::Lock::take(&out)?;
        front_svg(&out, &title, &points)?;
    }
    Ok(out)
}

/// The members of a saved search's front, from its `pareto.csv`.
fn front_points(dir: &Path) -> Result<Vec<FrontPoint>> {
    let csv_path = dir.join("pareto.csv");
    let text = crate::search::saved::front_csv(dir)?;
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let bad = |e: csv::Error| Error::Usage(format!("{}: {e}", csv_path.display()));
    let headers = r.headers().map_err(bad)?.clone();
    let col = |name: &str| {
        headers.iter().position(|h| h == name).ok_or_else(|| {
            Error::field(csv_path.display().to_string(), name, "a column of pareto.csv", "no such column")
        })
    };
    let (p, rip, att, rec) = (col("parameters")?, col("rip")?, col("attention")?, col("recommended")?);
    let mut points = Vec::new();
    for row in r.records() {
        let row = row.map_err(bad)?;
        let num = |i: usize| {
            row[i].parse::<f64>().ok().filter(|v| v.is_finite()).ok_or_else(|| {
                Error::field(csv_path.display().to_string(), headers[i].to_string(), "a finite number", &row[i])
            })
        };
        points.push(FrontPoint {
            parameters: num(p)?,
            rip: num(rip)?,
            attention: match &row[att] {
                a @ ("mha" | "gqa" | "mqa" | "mla") => a.to_string(),
                other => {
                    return Err(Error::field(
                        csv_path.display().to_string(),
                        "attention",
                        "mha, gqa, mqa or mla",
                        crate::error::clip(other),
                    ))
                }
            },
            recommended: &row[rec] == "true",
        });
    }
    if points.is_empty() {
        return Err(Error::field(csv_path.display().to_string(), "(rows)", "at least one front member", "none"));
    }
    Ok(points)
}
