//! A search's output folder read back by `verify`, `export` and `plot front`. Nothing in it is
//! trusted: each file must be one this version of the tool wrote there, unchanged since (the
//! folder's marker holds their SHA-256), and the outcome is checked as `merge` checks a shard
//! (the same space and device, counts that add up, every index a candidate of the space, a
//! front and a top that are not empty), so a hand-edited folder is refused by name instead of
//! measuring or exporting other models.

use super::{shard, Outcome, SearchSpace};
use crate::device::DeviceProfile;
use crate::error::{Error, Result};
use crate::files::outdir::read_written;
use crate::files::read::{MAX_JSON_BYTES, MAX_SEARCH_FILE_BYTES, MAX_TOML_BYTES};
use crate::roofline::PlanChoice;
use std::path::Path;

/// Spaces up to this size are searched again when their folder is read (about a second on two
/// cores); larger ones are checked by re-scoring their front and top.
pub const RESEARCH_CANDIDATES: u64 = 1_000_000;

/// What a search folder holds.
pub struct Saved {
    pub space: SearchSpace,
    pub device: DeviceProfile,
    pub outcome: Outcome,
}

/// The space the search ran (its `space.toml`, checked).
pub fn space(dir: &Path) -> Result<SearchSpace> {
    let text = read_written(dir, "space.toml", MAX_TOML_BYTES)?;
    SearchSpace::parse(&text, &dir.join("space.toml").display().to_string(), "space")
}

/// `pareto.csv`'s text, checked.
pub fn front_csv(dir: &Path) -> Result<String> {
    read_written(dir, "pareto.csv", MAX_SEARCH_FILE_BYTES)
}

/// The space, profile and outcome of a search folder, checked.
pub fn load(dir: &Path) -> Result<Saved> {
    let space = space(dir)?;
    let device_path = dir.join("device.json");
    let device = DeviceProfile::from_json(
        &read_written(dir, "device.json", MAX_JSON_BYTES)?,
        &device_path.display().to_string(),
    )?;
    let outcome_path = dir.join("outcome.json");
    let outcome: Outcome = serde_json::from_str(&read_written(dir, "outcome.json", MAX_SEARCH_FILE_BYTES)?)
        .map_err(|e| Error::json(&outcome_path, &e))?;
    let src = outcome_path.display().to_string();
    shard::check_outcome(&outcome, &src, (0, 1), &space, &device)?;
    // The folder does not record `--plan`: a search ran under one of the two.
    let plans = [PlanChoice::Fastest, PlanChoice::Fixed(crate::workload::Plan::NAIVE)];
    shard::check_scores(&outcome, &src, &space, &device, &plans)?;
    // Spaces a search answers within a second here are searched again, whole: then no edit of
    // the space, the profile or the outcome passes, however its hashes were rewritten.
    if space.count() <= RESEARCH_CANDIDATES {
        let again = |plans| {
            let opts = super::SearchOptions { plans, progress: false, ..Default::default() };
            super::run(&space, &device, &opts).ok()
        };
        if !plans.iter().any(|&p| again(p).as_ref() == Some(&outcome)) {
            return Err(Error::field(
                &src,
                "(outcome)",
                format!("what searching {} on {} gives", space.name, device.name),
                "another outcome (the space, the profile or the outcome was changed after the search)",
            ));
        }
    }
    if outcome.feasible == 0 {
        return Err(Error::Usage(format!(
            "{}: the search found no feasible candidate; nothing to verify or export",
            outcome_path.display()
        )));
    }
    Ok(Saved { space, device, outcome })
}
