//! A search's output folder: pareto.csv, the plots, recommended.json, summary.md, report.html
//! and outcome.json, written into the staged folder the caller commits.

use super::plot;
use crate::device::DeviceProfile;
use crate::error::{Error, Result};
use crate::files::{json_bytes, write_atomic, write_atomic_with};
use crate::search::{FrontRow, Scorer, SearchReport, SearchSpace};
use std::path::Path;

/// The candidates `quality.svg` labels, one mark per candidate (roles joined).
fn marks(r: &SearchReport) -> Vec<plot::Marked> {
    let mut roles: Vec<(&FrontRow, String)> = Vec::new();
    let quality = format!("quality-first (+{:.0}% TPOT)", 100.0 * r.quality_tpot_margin);
    let candidates = [
        Some((&r.recommended, "recommended")),
        r.runner_up.as_ref().map(|ru| (ru, "runner-up")),
        Some((&r.fastest, "fastest decoder")),
        Some((&r.quality_pick, quality.as_str())),
    ];
    for (row, role) in candidates.into_iter().flatten() {
        match roles.iter_mut().find(|(x, _)| x.index == row.index) {
            Some((_, label)) => {
                label.push_str(", ");
                label.push_str(role);
            }
            None => roles.push((row, role.to_string())),
        }
    }
    roles
        .into_iter()
        .map(|(row, label)| plot::Marked {
            label: format!("{label}: #{}", row.index),
            decode_tokens_per_s: row.decode_tokens_per_s,
            predicted_loss: row.predicted_loss,
        })
        .collect()
}

/// Writes pareto.csv, recommended.json, summary.md, report.html, outcome.json, front.svg,
/// quality.svg and roofline.svg into `dir`. Front rows are computed one at a time as they
/// stream out: a front can hold hundreds of thousands.
pub fn write(r: &SearchReport, space: &SearchSpace, device: &DeviceProfile, dir: &Path) -> Result<()> {
    let mut scorer = Scorer::new(space, device, crate::roofline::PlanChoice::Fastest);
    let mut front_points = Vec::with_capacity(r.outcome.front.len());
    let mut quality_points = Vec::with_capacity(r.outcome.front.len());
    write_atomic_with(&dir.join("pareto.csv"), |w| {
        let mut csv = csv::Writer::from_writer(w);
        for s in &r.outcome.front {
            let c = space.candidate(s.index).expect("scored candidates are valid");
            front_points.push(plot::FrontPoint {
                parameters: s.parameters,
                rip: s.rip,
                attention: c.arch.stack_kind().to_string(),
                recommended: s.index == r.recommended.index,
            });
            quality_points.push(plot::QualityPoint {
                decode_tokens_per_s: s.decode_tokens_per_s,
                predicted_loss: s.predicted_loss,
                attention: c.arch.stack_kind().to_string(),
            });
            let d = scorer.detail(&c.arch, c.precision_index);
            csv.serialize(FrontRow::new(&c, &d, s.index == r.recommended.index))?;
        }
        csv.flush()
    })?;
    plot::front_svg(&dir.join("front.svg"), &format!("{} on {}: Pareto front", r.space, r.device), &front_points)?;
    plot::quality_svg(
        &dir.join("quality.svg"),
        &format!("{} on {}: predicted loss against decode speed", r.space, r.device),
        &quality_points,
        &marks(r),
    )?;
    let rec = &r.recommended;
    let roof = plot::RoofLine {
        label: device.name.clone(),
        peak_flop_per_s: device.peak_flops(space.candidate(rec.index).expect("valid").precisions.compute()),
        bandwidth_bytes_per_s: device.bandwidth_bytes_per_s,
    };
    let point = |label: &str, i: f64, p: f64| plot::RooflinePoint {
        label: label.to_string(),
        roof: 0,
        model: None,
        intensity_flop_per_byte: i,
        performance_flop_per_s: p,
    };
    plot::roofline_svg(
        &dir.join("roofline.svg"),
        &format!("{} on {}: the recommendation", r.space, r.device),
        &[roof],
        &[
            point("prefill", rec.prefill_intensity_flop_per_byte, rec.prefill_performance_flop_per_s),
            point("decode", rec.decode_intensity_flop_per_byte, rec.decode_performance_flop_per_s),
            point("workload", rec.intensity_flop_per_byte, rec.performance_flop_per_s),
        ],
    )?;
    write_atomic(&dir.join("recommended.json"), &json_bytes(&r.recommended_config))?;
    // The space and the profile as they were: the folder alone rebuilds any candidate and its
    // prediction (`verify`).
    write_atomic(&dir.join("space.toml"), space.source.as_bytes())?;
    write_atomic(&dir.join("device.json"), device.to_json().as_bytes())?;
    write_atomic(&dir.join("summary.md"), super::summary::summary_markdown(r, space).as_bytes())?;
    // The page inlines the plots just written, so it needs nothing beside it to render.
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).map_err(|e| Error::io(dir.join(name), e));
    let svgs = [
        ("The Pareto front: rip against parameters, by attention kind (front.svg)", read("front.svg")?),
        ("Predicted loss against decode speed, the picks marked (quality.svg)", read("quality.svg")?),
        ("The recommendation on the device's roofline (roofline.svg)", read("roofline.svg")?),
    ];
    write_atomic(&dir.join("report.html"), super::html::report_html(r, space, &svgs).as_bytes())?;
    write_atomic_with(&dir.join("outcome.json"), |w| {
        serde_json::to_writer_pretty(&mut *w, &r.outcome)?;
        w.write_all(b"\n")
    })?;
    Ok(())
}

/// `search --out DIR`: runs `space` on `device` and writes every file [`write`] writes into the
/// folder `staged` (begun by the caller before the work, so a folder that cannot be replaced
/// is refused first; the caller adds its own files, then commits it).
pub fn search_into(
    space: &SearchSpace,
    device: &DeviceProfile,
    opts: &crate::search::SearchOptions,
    staged: &crate::files::Staged,
) -> Result<SearchReport> {
    let outcome = crate::search::run(space, device, opts)?;
    let report = crate::search::finish(space, device, outcome)?;
    write(&report, space, device, &staged.path())?;
    Ok(report)
}
