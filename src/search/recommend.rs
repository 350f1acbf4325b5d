//! The recommendation policy: which member of the front to recommend (and the runner-up, the
//! fastest decoder and the quality-first pick), decided here; `report` only formats it.

use super::row::{candidate_config, FrontRow};
use super::{Objective, Outcome, Scored, Scorer, SearchSpace};
use crate::device::DeviceProfile;
use crate::error::{Error, Result};

/// A finished search, ready to write.
#[derive(Debug, Clone)]
pub struct SearchReport {
    pub space: String,
    pub device: String,
    /// Which kind of profile produced the figures (see `DeviceProfile::kind_label`).
    pub profile: String,
    /// The recommendation's warnings (see [`crate::warnings`]), one line each.
    pub warnings: Vec<String>,
    pub outcome: Outcome,
    pub objective: Objective,
    pub rip_margin: f64,
    /// The fastest decoder of the front (decode tokens/s is one of its objectives).
    pub fastest: FrontRow,
    pub top: Vec<FrontRow>,
    pub recommended: FrontRow,
    pub runner_up: Option<FrontRow>,
    pub best_by_objective: FrontRow,
    pub recommended_config: serde_json::Value,
    /// The lowest predicted loss on the front among candidates whose TPOT is at most
    /// `quality_tpot_margin` above the recommendation's (the recommendation itself if none is).
    pub quality_pick: FrontRow,
    pub quality_tpot_margin: f64,
    /// What the profile's error bands rest on, when it has them.
    pub band_basis: Option<String>,
    /// The llama-bench command that checks the recommendation's first scenario on the device.
    pub check_command: Option<String>,
}

impl SearchReport {
    /// The front as pareto.csv lists it, one row at a time (a front can hold hundreds of
    /// thousands).
    pub fn front_rows<'a>(
        &'a self,
        space: &'a SearchSpace,
        device: &'a DeviceProfile,
    ) -> impl Iterator<Item = FrontRow> + 'a {
        let mut scorer = Scorer::new(space, device, crate::roofline::PlanChoice::Fastest);
        self.outcome.front.iter().map(move |s| {
            let c = space.candidate(s.index).expect("scored candidates are valid");
            let d = scorer.detail(&c.arch, c.precision_index);
            FrontRow::new(&c, &d, s.index == self.recommended.index)
        })
    }
}

/// Which of the front the recommendation is: for `rip`, the fastest decoder whose rip is within
/// `margin` of the best (rip credits FLOPs, so the top rip is not always the best answer); for
/// `loss`, the fastest decoder of those tied at the lowest predicted loss; otherwise the best.
fn choose(outcome: &Outcome, objective: Objective, margin: f64) -> (Scored, Option<Scored>) {
    let best = outcome.top[0];
    if objective == Objective::Loss {
        // The loss does not see precision or how heads split the same parameters, so ties are
        // common: take the fastest decoder of those tied (the front holds one of each speed).
        let fastest_at = |above: f64, level: f64| {
            outcome
                .front
                .iter()
                .filter(|s| s.predicted_loss > above && s.predicted_loss <= level)
                .max_by(|a, b| a.decode_tokens_per_s.total_cmp(&b.decode_tokens_per_s).then(b.index.cmp(&a.index)))
                .copied()
        };
        let pick = fastest_at(f64::NEG_INFINITY, best.predicted_loss).unwrap_or(best);
        // The runner-up is the next loss down the list (its fastest decoder when the front holds
        // one), not the same model in another precision.
        let runner = outcome
            .top
            .iter()
            .find(|s| s.predicted_loss > pick.predicted_loss)
            .map(|next| fastest_at(pick.predicted_loss, next.predicted_loss).unwrap_or(*next))
            .or_else(|| outcome.top.iter().copied().find(|s| s.index != pick.index));
        return (pick, runner);
    }
    if objective != Objective::Rip {
        return (best, outcome.top.get(1).copied());
    }
    let threshold = best.rip * (1.0 - margin);
    let mut close: Vec<Scored> = outcome.front.iter().copied().filter(|s| s.rip >= threshold).collect();
    close.sort_by(|a, b| {
        b.decode_tokens_per_s
            .total_cmp(&a.decode_tokens_per_s)
            .then(b.rip.total_cmp(&a.rip))
            .then(a.index.cmp(&b.index))
    });
    let pick = close.first().copied().unwrap_or(best);
    let runner = if pick.index != best.index {
        Some(best)
    } else {
        close.get(1).copied().or_else(|| outcome.top.iter().copied().find(|s| s.index != pick.index))
    };
    (pick, runner)
}

/// What a quality-first user would pick: the lowest predicted loss among front members whose
/// TPOT is at most `margin` above `pick`'s, or `pick` itself when none predicts a strictly lower
/// loss. TPOT is batch / decode tokens/s, so the bound is on decode tokens/s; and since both are
/// objectives of the front, the best such candidate is on it.
fn quality_first(outcome: &Outcome, pick: &Scored, margin: f64) -> Scored {
    let floor = pick.decode_tokens_per_s / (1.0 + margin);
    outcome
        .front
        .iter()
        .filter(|s| s.decode_tokens_per_s >= floor && s.predicted_loss < pick.predicted_loss)
        .min_by(|a, b| {
            a.predicted_loss
                .total_cmp(&b.predicted_loss)
                .then(b.decode_tokens_per_s.total_cmp(&a.decode_tokens_per_s))
                .then(a.index.cmp(&b.index))
        })
        .copied()
        .unwrap_or(*pick)
}

/// "name 12, other 3", or "none".
fn counts(map: &std::collections::BTreeMap<String, u64>) -> String {
    if map.is_empty() {
        return "none".into();
    }
    map.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ")
}

pub fn finish(space: &SearchSpace, device: &DeviceProfile, outcome: Outcome) -> Result<SearchReport> {
    if outcome.feasible == 0 {
        let (worst, n) = outcome
            .rejected
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
            .map(|(k, v)| (k.clone(), *v))
            .unwrap_or_else(|| ("invalid combinations".into(), outcome.invalid.values().sum()));
        return Err(Error::Infeasible {
            space: space.source_name.clone(),
            reason: format!(
                "{} candidates; the constraint '{worst}' rejected the most ({n}); rejections: {}; invalid: {}",
                outcome.candidates,
                counts(&outcome.rejected),
                counts(&outcome.invalid)
            ),
        });
    }
    let (pick, runner) = choose(&outcome, space.objective, space.rip_margin);
    let mut scorer = Scorer::new(space, device, crate::roofline::PlanChoice::Fastest);
    let mut row = |s: &Scored| -> FrontRow {
        let c = space.candidate(s.index).expect("scored candidates are valid");
        let d = scorer.detail(&c.arch, c.precision_index);
        FrontRow::new(&c, &d, s.index == pick.index)
    };
    let fastest = outcome
        .front
        .iter()
        .max_by(|a, b| a.decode_tokens_per_s.total_cmp(&b.decode_tokens_per_s).then(b.index.cmp(&a.index)))
        .map(&mut row)
        .expect("a feasible search has a front");
    let top: Vec<FrontRow> = outcome.top.iter().map(&mut row).collect();
    let recommended = row(&pick);
    let runner_up = runner.as_ref().map(&mut row);
    let best_by_objective = row(&outcome.top[0]);
    let quality_pick = row(&quality_first(&outcome, &pick, space.quality_tpot_margin));
    let mut c = space.candidate(pick.index).expect("valid");
    c.arch.name = format!("{}-{}-recommended", space.name, device.name);
    let compute = device.effective_precisions(c.precisions).compute();
    let warnings =
        crate::warnings::check(device, &crate::warnings::Run::of(&c.arch, compute, space.workload.max_context));
    let recommended_config = candidate_config(&c)?;
    let band_basis = device.error_bands.as_ref().map(|b| format!("{}: {}", device.kind_label(), b.basis));
    let first = &space.workload.mix[0].0;
    let weights = c.precisions.weights.to_string();
    let check_command = crate::analysis::check_command(device, &c.arch.name, &weights, first, space.workload.batch);
    Ok(SearchReport {
        space: space.name.clone(),
        device: device.name.clone(),
        profile: device.kind_label(),
        warnings,
        outcome,
        objective: space.objective,
        rip_margin: space.rip_margin,
        fastest,
        top,
        recommended,
        runner_up,
        best_by_objective,
        recommended_config,
        quality_pick,
        quality_tpot_margin: space.quality_tpot_margin,
        band_basis,
        check_command,
    })
}
