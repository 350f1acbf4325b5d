//! `verify`: build a search's recommendation, runner-up, fastest feasible decoder and members
//! of its front as GGUF files, run them on llama.cpp here, and say whether the prediction held:
//! the rank correlation of predicted and measured decode speed, and whether the recommendation
//! really is the fastest decoder within its rip margin.

use super::runs::{measure_plans, validation_rounds, Conditions, EngineOptions, Measured};
use super::shapes::Plan;
use crate::device::DeviceProfile;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::fit::agreement::ErrorSummary;
use crate::fit::{predict, Run};
use crate::roofline::BenchTest;
use crate::search::Scorer;
use crate::search::SearchSpace;
use crate::search::{finish, FrontRow, SearchReport};
use serde::Serialize;
use std::fmt::Write as _;
use std::path::Path;

/// What a search folder holds that verification needs.
pub struct SavedSearch {
    pub space: SearchSpace,
    pub device: DeviceProfile,
    pub report: SearchReport,
}

/// Reads a search's output folder, every file checked (see [`crate::search::saved`]).
pub fn load(dir: &Path) -> Result<SavedSearch> {
    let saved = crate::search::saved::load(dir)?;
    let report = finish(&saved.space, &saved.device, saved.outcome)?;
    Ok(SavedSearch { space: saved.space, device: saved.device, report })
}

/// One verified candidate.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyRow {
    /// recommended, runner-up, fastest, or front.
    pub role: String,
    pub candidate: u64,
    pub label: String,
    pub parameters: u64,
    pub weights: String,
    pub rip: f64,
    pub prefill_test: String,
    pub predicted_prefill_tokens_per_s: f64,
    pub measured_prefill_tokens_per_s: f64,
    pub prefill_error: f64,
    pub decode_test: String,
    pub predicted_decode_tokens_per_s: f64,
    pub measured_decode_tokens_per_s: f64,
    pub decode_error: f64,
    pub measured_cv: f64,
    /// Rounds its batch timed, and how many of them its medians use.
    pub rounds: u32,
    pub rounds_used: u32,
    /// Whether its batch's bandwidth probe settled.
    pub probe_settled: bool,
    /// The lowest and highest probe around its batch's rounds, bytes/s.
    pub probe_low_bytes_per_s: f64,
    pub probe_high_bytes_per_s: f64,
    /// Share of the CPU other processes used while its batch ran.
    pub other_cpu_fraction: f64,
}

/// The verdict.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    /// Kendall's tau-b between predicted and measured decode tokens/s.
    pub kendall_tau_decode: f64,
    pub kendall_tau_prefill: f64,
    /// Among the measured candidates within the rip margin of the best, the one that decoded
    /// fastest here.
    pub fastest_within_margin: String,
    pub recommendation_holds: bool,
    /// Measurements (prefill and decode of each candidate) inside the profile's 80% bands, and
    /// how many had a band; None on a profile without bands.
    pub within_band: Option<(usize, usize)>,
}

/// Which candidates to build: the recommendation, the runner-up, the fastest feasible decoder,
/// and `k` front members spread evenly along decode speed.
fn chosen(r: &SearchReport, k: usize) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = vec![("recommended".into(), r.recommended.index)];
    if let Some(ru) = &r.runner_up {
        out.push(("runner-up".into(), ru.index));
    }
    out.push(("fastest".into(), r.fastest.index));
    let mut front: Vec<_> = r.outcome.front.clone();
    front.sort_by(|a, b| a.decode_tokens_per_s.total_cmp(&b.decode_tokens_per_s).then(a.index.cmp(&b.index)));
    if k > 0 && !front.is_empty() {
        for i in 0..k {
            let at = if k == 1 { front.len() / 2 } else { i * (front.len() - 1) / (k - 1) };
            out.push(("front".into(), front[at].index));
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    out.retain(|(_, i)| seen.insert(*i));
    out
}

/// Builds and measures the chosen candidates; `quick` shortens the decode test.
pub fn verify(saved: &SavedSearch, top: usize, opts: &EngineOptions) -> Result<(Vec<VerifyRow>, Verdict, Conditions)> {
    let (scenario, _) =
        saved.space.workload.mix.first().cloned().ok_or_else(|| Error::Usage("empty workload".into()))?;
    let generate = scenario.generate.clamp(1, if opts.quick { 16 } else { 64 });
    let tests = vec![BenchTest::pp(scenario.prompt), BenchTest::tg(generate, scenario.prompt)];
    let picks = chosen(&saved.report, top);
    let mut models = Vec::new();
    let mut formats = Vec::new();
    for (_, index) in &picks {
        let c = saved
            .space
            .candidate(*index)
            .map_err(|e| Error::Usage(format!("candidate #{index} of {}: {}", saved.space.name, e.describe())))?;
        if !(c.precisions.weights == DType::F16
            || c.precisions.weights == DType::Bf16
            || c.precisions.weights.is_block_quantised())
        {
            return Err(Error::Usage(format!(
                "candidate #{index}: {} weights have no GGUF type llama.cpp runs",
                c.precisions.weights
            )));
        }
        let mut arch = c.arch.clone();
        arch.name = format!("{}-{index}", saved.space.name);
        formats.push(c.precisions.weights);
        models.push(arch);
    }
    // One batch per format, each model in its candidate's format only.
    let mut measured: Vec<Measured> = Vec::new();
    let mut cond = Conditions::default();
    let mut distinct: Vec<DType> = formats.clone();
    distinct.sort();
    distinct.dedup();
    for f in distinct {
        let batch: Vec<_> = models.iter().zip(&formats).filter(|(_, &g)| g == f).map(|(m, _)| m.clone()).collect();
        let plan = Plan::new(batch, tests.clone());
        let only_f = EngineOptions { formats: vec![f], ..opts.clone() };
        let (m, c) = measure_plans(&[plan], validation_rounds(opts.quick), &only_f)?;
        // Batches are numbered within each call: renumber them into the whole.
        let offset = cond.batches.len();
        measured.extend(m.into_iter().map(|m| Measured { batch: m.batch + offset, ..m }));
        cond.extend(c);
    }
    let mut scorer = Scorer::new(&saved.space, &saved.device, crate::roofline::PlanChoice::Fastest);
    let mut rows = Vec::new();
    for ((role, index), arch) in picks.iter().zip(&models) {
        let c = saved.space.candidate(*index).expect("checked above");
        let front_row = FrontRow::new(&c, &scorer.detail(&c.arch, c.precision_index), role == "recommended");
        let find = |t: BenchTest| measured.iter().find(|m| m.arch.name == arch.name && m.test == t);
        let (Some(pp), Some(tg)) = (find(tests[0]), find(tests[1])) else { continue };
        let tokens_per_s = |t: BenchTest, seconds: f64| t.tokens() as f64 / seconds;
        let predicted = |t: BenchTest| {
            let run = Run { arch: arch.clone(), weights: c.precisions.weights, test: t, measured_s: 1.0 };
            tokens_per_s(t, predict(&saved.device, &run))
        };
        let (pp_pred, tg_pred) = (predicted(tests[0]), predicted(tests[1]));
        let (pp_meas, tg_meas) = (tokens_per_s(tests[0], pp.median_s), tokens_per_s(tests[1], tg.median_s));
        let b = &cond.batches[tg.batch];
        rows.push(VerifyRow {
            role: role.clone(),
            candidate: *index,
            label: front_row.label(),
            parameters: c.arch.parameters(),
            weights: c.precisions.weights.name().into(),
            rip: front_row.rip,
            prefill_test: tests[0].label(),
            predicted_prefill_tokens_per_s: pp_pred,
            measured_prefill_tokens_per_s: pp_meas,
            prefill_error: (pp_pred - pp_meas) / pp_meas,
            decode_test: tests[1].label(),
            predicted_decode_tokens_per_s: tg_pred,
            measured_decode_tokens_per_s: tg_meas,
            decode_error: (tg_pred - tg_meas) / tg_meas,
            measured_cv: tg.cv,
            rounds: b.rounds,
            rounds_used: b.rounds_used,
            probe_settled: b.settled(),
            probe_low_bytes_per_s: b.probe_low_bytes_per_s,
            probe_high_bytes_per_s: b.probe_high_bytes_per_s,
            other_cpu_fraction: b.other_cpu_fraction,
        });
    }
    let col = |f: fn(&VerifyRow) -> f64| rows.iter().map(f).collect::<Vec<f64>>();
    let best_rip = saved.report.outcome.top.first().map_or(f64::NAN, |s| s.rip);
    let threshold = best_rip * (1.0 - saved.report.rip_margin);
    let fastest = rows
        .iter()
        .filter(|r| r.rip >= threshold)
        .max_by(|a, b| a.measured_decode_tokens_per_s.total_cmp(&b.measured_decode_tokens_per_s));
    let verdict = Verdict {
        kendall_tau_decode: ErrorSummary::kendall_tau(
            &col(|r| r.predicted_decode_tokens_per_s),
            &col(|r| r.measured_decode_tokens_per_s),
        ),
        kendall_tau_prefill: ErrorSummary::kendall_tau(
            &col(|r| r.predicted_prefill_tokens_per_s),
            &col(|r| r.measured_prefill_tokens_per_s),
        ),
        fastest_within_margin: fastest.map_or("none measured".into(), |r| r.label.clone()),
        recommendation_holds: fastest.is_some_and(|r| r.role == "recommended"),
        within_band: saved.device.error_bands.as_ref().map(|b| {
            let checks = rows.iter().flat_map(|r| {
                [
                    (b.prefill, r.measured_prefill_tokens_per_s, r.predicted_prefill_tokens_per_s),
                    (b.decode, r.measured_decode_tokens_per_s, r.predicted_decode_tokens_per_s),
                ]
            });
            let banded: Vec<bool> = checks.filter_map(|(band, m, p)| band.map(|band| band.holds(m, p))).collect();
            (banded.iter().filter(|&&x| x).count(), banded.len())
        }),
    };
    Ok((rows, verdict, cond))
}

/// verify.md: the table and the verdict in words.
pub fn markdown(saved: &SavedSearch, rows: &[VerifyRow], v: &Verdict, cond: &Conditions) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Verification of {} on {}\n", saved.space.name, saved.device.name);
    let _ = writeln!(
        s,
        "Each candidate was built as a GGUF file of random weights and run on llama.cpp on this machine \
         ({}; {} threads); predictions come from the search's profile `{}` ({}).\n",
        cond.system_info.trim_end_matches(['|', ' ']),
        cond.threads,
        saved.device.name,
        saved.device.kind_label()
    );
    let _ = writeln!(s, "| role | candidate | weights | rip | prefill tok/s predicted | measured | decode tok/s predicted | measured | error |");
    let _ = writeln!(s, "|---|---|---|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.4} | {:.1} | {:.1} | {:.1} | {:.1} | {:+.1}% |",
            r.role,
            r.label,
            r.weights,
            r.rip,
            r.predicted_prefill_tokens_per_s,
            r.measured_prefill_tokens_per_s,
            r.predicted_decode_tokens_per_s,
            r.measured_decode_tokens_per_s,
            100.0 * r.decode_error
        );
    }
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "- Rank agreement (Kendall tau-b, predicted against measured): decode {:.2}, prefill {:.2} over {} candidates.",
        v.kendall_tau_decode,
        v.kendall_tau_prefill,
        rows.len()
    );
    let _ = writeln!(
        s,
        "- Fastest measured decoder within {:.1}% of the best rip: {}. The recommendation {}.",
        100.0 * saved.report.rip_margin,
        v.fastest_within_margin,
        if v.recommendation_holds {
            "holds"
        } else {
            "does not hold: another candidate within the margin decoded faster here"
        }
    );
    if let (Some((inside, counted)), Some(b)) = (v.within_band, &saved.device.error_bands) {
        let _ = writeln!(
            s,
            "- {inside} of {counted} measurements inside the profile's {:.0}% bands ({}; {}).",
            100.0 * b.coverage,
            crate::fit::band::describe(b),
            b.basis
        );
    }
    let _ = writeln!(s, "- The machine: {}.", cond.summary());
    for w in super::runs::condition_warnings(cond) {
        let _ = writeln!(s, "- Warning: {w}.");
    }
    s
}
