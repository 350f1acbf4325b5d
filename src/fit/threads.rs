//! Thread counts on CPU profiles: a profile's rates at another count than its runs', from runs
//! of the same models and tests at both counts. One rule for `devices fit --threads-from`
//! (llama-bench files) and `calibrate --engine llama.cpp` (runs timed here): per phase, the
//! median ratio of measured times, which multiplies every FLOP rate (prompt runs) and every
//! bandwidth (generation runs); checked by predicting each model's runs at the other count with
//! factors from the other models' pairs.

use super::agreement::{agreement, factor_summary, Agreement};
use super::Run;
use crate::device::{DeviceProfile, ThreadScaling};
use crate::error::Result;
use std::collections::{BTreeMap, BTreeSet};

/// The same model, weights and test: what pairs a run at one count with a run at another.
fn pair_key(r: &Run) -> (String, String, String) {
    (r.arch.name.clone(), r.weights.name().to_string(), r.test.label())
}

/// Each run of `other` with the first of `fitted` of the same model, weights and test (runs
/// without one are left out): (run at the profile's count, run at the other).
pub fn pairs<'a>(fitted: &'a [Run], other: &'a [Run]) -> Vec<(&'a Run, &'a Run)> {
    let mut by_key: BTreeMap<_, &Run> = BTreeMap::new();
    for r in fitted {
        by_key.entry(pair_key(r)).or_insert(r);
    }
    other.iter().filter_map(|r| by_key.get(&pair_key(r)).map(|&base| (base, r))).collect()
}

/// The median of measured_s at the profile's count over measured_s at the other, per phase
/// (prefill, decode); None for a phase without pairs.
pub fn scale_factors(pairs: &[(&Run, &Run)]) -> (Option<f64>, Option<f64>) {
    let median = |prefill: bool| {
        let f: Vec<f64> = pairs
            .iter()
            .filter(|(a, _)| a.test.is_prefill() == prefill)
            .map(|(a, b)| a.measured_s / b.measured_s)
            .collect();
        (!f.is_empty()).then(|| super::agreement::median(f))
    };
    (median(true), median(false))
}

/// The factors at one count and how well the rule predicts runs it did not use.
#[derive(Clone)]
pub struct ThreadFit {
    pub scaling: ThreadScaling,
    /// Each model's runs at the count, predicted with factors from the other models' pairs.
    pub held_out: Vec<Agreement>,
    /// That check in words ("no check: one model only" without a second model).
    pub check: String,
}

impl ThreadFit {
    /// What `devices fit` and `calibrate` print for the count.
    pub fn line(&self, own: u32) -> String {
        let t = &self.scaling;
        format!(
            "{} threads: compute x{:.3}, bandwidth x{:.3} against {own} ({} pairs); {}",
            t.threads, t.compute, t.memory, t.runs, self.check
        )
    }
}

/// `profile`'s factors at `threads` from `pairs` (see [`pairs`]), with the leave-one-model-out
/// check; None when a phase has no pair. `source` names the runs in errors.
pub fn fit_threads(
    profile: &DeviceProfile,
    threads: u32,
    pairs: &[(&Run, &Run)],
    source: &str,
) -> Result<Option<ThreadFit>> {
    let (Some(compute), Some(memory)) = scale_factors(pairs) else {
        return Ok(None);
    };
    let scaling = ThreadScaling { threads, compute, memory, runs: pairs.len() as u32 };
    // Leave one model out: its runs at this count predicted with the others' factors.
    let mut held_out = Vec::new();
    let names: BTreeSet<&str> = pairs.iter().map(|(b, _)| b.arch.name.as_str()).collect();
    for name in &names {
        let rest: Vec<_> = pairs.iter().filter(|(b, _)| b.arch.name != *name).copied().collect();
        let (Some(c), Some(m)) = scale_factors(&rest) else { continue };
        let mut scaled = profile.clone();
        scaled.thread_scaling = vec![ThreadScaling { threads, compute: c, memory: m, runs: 0 }];
        let scaled = scaled.at_threads(threads)?;
        let own_runs: Vec<Run> =
            pairs.iter().filter(|(b, _)| b.arch.name == *name).map(|(_, r)| (*r).clone()).collect();
        held_out.extend(agreement(&scaled, source, &own_runs)?);
    }
    let check = if held_out.is_empty() {
        "no check: one model only".to_string()
    } else {
        format!("each model predicted with the other models' factors: {}", factor_summary(&held_out))
    };
    Ok(Some(ThreadFit { scaling, held_out, check }))
}

/// Adds `fits` to the profile: its factors (replacing any at the same count, sorted by count)
/// and each count's check under `notes.thread_scaling_check`.
pub fn record(profile: &mut DeviceProfile, fits: &[ThreadFit]) {
    let mut checks = match profile.notes.remove("thread_scaling_check") {
        Some(serde_json::Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    };
    for f in fits {
        profile.thread_scaling.retain(|t| t.threads != f.scaling.threads);
        profile.thread_scaling.push(f.scaling);
        checks.insert(f.scaling.threads.to_string(), serde_json::Value::from(f.check.clone()));
    }
    profile.thread_scaling.sort_by_key(|t| t.threads);
    profile.notes.insert("thread_scaling_check".into(), serde_json::Value::Object(checks));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::Architecture;
    use crate::dtype::DType;
    use crate::roofline::BenchTest;

    fn run(arch: &Architecture, test: BenchTest, measured_s: f64) -> Run {
        Run { arch: arch.clone(), weights: DType::Q8_0, test, measured_s }
    }

    /// Two models, a prompt and a short decode, and each model's runs at 2 threads.
    fn two_models() -> (Architecture, Architecture, BenchTest, BenchTest, Vec<Run>) {
        let a = crate::measure::llamacpp::shapes::llama(4, 256, 4, 4, 64, 512, 1024);
        let b = crate::measure::llamacpp::shapes::llama(4, 512, 8, 2, 64, 1024, 1024);
        let (pp, tg) = (BenchTest::pp(64), BenchTest::tg(16, 0));
        let at2 = vec![run(&a, pp, 0.010), run(&a, tg, 0.100), run(&b, pp, 0.040), run(&b, tg, 0.300)];
        (a, b, pp, tg, at2)
    }

    /// Two models at 2 threads (the profile's) and at 1: the factors are medians of the time
    /// ratios per phase, worked by hand.
    #[test]
    fn factors_are_the_median_time_ratios_per_phase_of_paired_runs() {
        let (a, b, pp, tg, at2) = two_models();
        // At 1 thread: a's prompt 0.019 s, b's 0.080 s; a's decode 0.110 s, b's 0.300 s. A run
        // with no partner (a tg at depth) is left out.
        let at1 = vec![
            run(&a, pp, 0.019),
            run(&a, tg, 0.110),
            run(&b, pp, 0.080),
            run(&b, tg, 0.300),
            run(&a, BenchTest::tg(16, 512), 0.2),
        ];
        let p = pairs(&at2, &at1);
        assert_eq!(p.len(), 4);
        // Prefill: 0.010/0.019 = 0.526316 and 0.040/0.080 = 0.5, median (even count: the mean)
        // 0.513158. Decode: 0.100/0.110 = 0.909091 and 0.300/0.300 = 1, median 0.954545.
        let (c, m) = scale_factors(&p);
        assert!((c.unwrap() - (0.010 / 0.019 + 0.5) / 2.0).abs() < 1e-12, "{c:?}");
        assert!((m.unwrap() - (0.100 / 0.110 + 1.0) / 2.0).abs() < 1e-12, "{m:?}");
        // Without generation pairs there is no bandwidth factor, so no fit.
        let prompts: Vec<_> = p.iter().filter(|(x, _)| x.test.is_prefill()).copied().collect();
        assert_eq!(scale_factors(&prompts).1, None);
    }

    /// The factors that `fit_threads` stores are the same medians, and its check predicts each
    /// model with the other model's factors alone: model a at 1 thread is predicted from b's
    /// ratios (prefill 0.5, decode 1.0), so its prediction is the 2-thread prediction scaled
    /// by those, and the check's ratio is measured over predicted time.
    #[test]
    fn the_check_leaves_each_model_out() {
        let (a, b, pp, tg, at2) = two_models();
        let at1 = vec![run(&a, pp, 0.019), run(&a, tg, 0.110), run(&b, pp, 0.080), run(&b, tg, 0.300)];
        let mut profile = crate::device::resolve("rpi5").unwrap();
        profile.thread_scaling.clear();
        let own = profile.engine.as_ref().unwrap().threads.unwrap();
        assert_ne!(own, 3);
        let fit = fit_threads(&profile, 3, &pairs(&at2, &at1), "test").unwrap().unwrap();
        assert!((fit.scaling.compute - (0.010 / 0.019 + 0.5) / 2.0).abs() < 1e-12);
        assert_eq!((fit.scaling.threads, fit.scaling.runs), (3, 4));
        assert_eq!(fit.held_out.len(), 4);
        assert!(fit.check.starts_with("each model predicted with the other models' factors: median factor"));
        // a's prompt with b's prefill factor 0.5: FLOP rates halved.
        let mut by_b = profile.clone();
        by_b.thread_scaling = vec![ThreadScaling { threads: 3, compute: 0.5, memory: 1.0, runs: 0 }];
        let predicted = crate::fit::predict(&by_b.at_threads(3).unwrap(), &at1[0]);
        let row = fit.held_out.iter().find(|r| r.model == a.name && r.prefill).unwrap();
        assert!((row.ratio - 0.019 / predicted).abs() < 1e-9, "{} {}", row.ratio, 0.019 / predicted);
        let mut recorded = profile.clone();
        record(&mut recorded, std::slice::from_ref(&fit));
        assert_eq!(recorded.thread_scaling, vec![fit.scaling]);
        assert_eq!(recorded.notes["thread_scaling_check"]["3"], serde_json::Value::from(fit.check.clone()));
        let one = fit_threads(&profile, 3, &pairs(&at2[..2], &at1[..2]), "test").unwrap().unwrap();
        assert_eq!(one.check, "no check: one model only");
    }
}
