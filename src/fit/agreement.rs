//! How far a profile's predictions are from measured runs it did not fit: per run, the ratio of
//! measured to predicted time; over runs, the median factor either way, by phase.

use super::Run;
use crate::device::DeviceProfile;
use crate::error::{Error, Result};
use serde::Serialize;

/// Predicted against measured tokens/s of one held-out run.
#[derive(Clone, Serialize)]
pub struct Agreement {
    pub model: String,
    pub weights: String,
    pub test: String,
    pub measured_tokens_per_s: f64,
    pub predicted_tokens_per_s: f64,
    /// predicted / measured.
    pub ratio: f64,
    pub prefill: bool,
}

/// The median of max(ratio, 1/ratio): how far off a typical prediction is, either way.
pub fn median_factor<'a>(rows: impl IntoIterator<Item = &'a Agreement>) -> f64 {
    let mut f: Vec<f64> = rows.into_iter().map(|a| a.ratio.max(1.0 / a.ratio)).collect();
    f.sort_by(f64::total_cmp);
    match f.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => f[n / 2],
        n => (f[n / 2 - 1] + f[n / 2]) / 2.0,
    }
}

/// Each run predicted by `profile` (named `source`: the argument or file it came from); a
/// prediction that is not a positive finite time (a profile whose rates overflow) is an error,
/// not an infinite rate.
pub fn agreement(profile: &DeviceProfile, source: &str, runs: &[Run]) -> Result<Vec<Agreement>> {
    runs.iter()
        .map(|r| {
            let predicted = super::predict(profile, r);
            let tokens = r.test.tokens() as f64;
            let row = Agreement {
                model: crate::error::clip(&r.arch.name),
                weights: r.weights.name().to_string(),
                test: r.test.label(),
                measured_tokens_per_s: tokens / r.measured_s,
                predicted_tokens_per_s: tokens / predicted,
                ratio: r.measured_s / predicted,
                prefill: r.test.is_prefill(),
            };
            let finite = [predicted, row.measured_tokens_per_s, row.predicted_tokens_per_s, row.ratio]
                .iter()
                .all(|v| v.is_finite() && *v > 0.0);
            if !finite {
                return Err(Error::field(
                    crate::error::clip(source),
                    "(prediction)",
                    format!("a positive finite time for {} {} {}", row.model, row.weights, row.test),
                    format!("{predicted} s"),
                ));
            }
            Ok(row)
        })
        .collect()
}

/// "median factor 1.12x (prefill 1.20x over 4 runs, decode 1.05x over 6)".
pub fn factor_summary(rows: &[Agreement]) -> String {
    let part = |prefill: bool| {
        let sub = || rows.iter().filter(move |r| r.prefill == prefill);
        let name = if prefill { "prefill" } else { "decode" };
        match sub().count() {
            0 => format!("no {name} runs"),
            n => format!("{name} {:.2}x over {n}", median_factor(sub())),
        }
    };
    format!("median factor {:.2}x ({}, {})", median_factor(rows), part(true), part(false))
}
