//! How far predictions are from measurements, the one place every command summarises it:
//! [`ErrorSummary`] over relative errors (the median and 90th percentile of |error|, the shares
//! within 10% and 15%: `calibrate`, `validate`, `devices fit`), its [median
//! factor](ErrorSummary::median_factor) either way (runs held out of a fit: `devices fit`,
//! `devices check`) and its [rank agreement](ErrorSummary::kendall_tau) (`verify`); and per run,
//! a profile's prediction against a measured run it did not fit ([`Agreement`]).

use super::Run;
use crate::device::DeviceProfile;
use crate::error::{Error, Result};
use serde::Serialize;

/// The median (the mean of the middle two for an even count); NaN without values.
pub fn median(values: impl IntoIterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.into_iter().collect();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

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

/// Predictions against measurements over a set of runs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ErrorSummary {
    pub runs: usize,
    /// Quantiles of |relative error| (the nearest rank; NaN without runs).
    pub median_abs_error: f64,
    pub p90_abs_error: f64,
    /// Shares of runs within 10% and 15% (0 without runs).
    pub within_10pct: f64,
    pub within_15pct: f64,
}

impl ErrorSummary {
    /// From relative errors, (predicted - measured) / measured.
    pub fn of(errors: impl IntoIterator<Item = f64>) -> ErrorSummary {
        let mut e: Vec<f64> = errors.into_iter().map(f64::abs).collect();
        e.sort_by(f64::total_cmp);
        let q = |p: f64| if e.is_empty() { f64::NAN } else { e[((e.len() - 1) as f64 * p).round() as usize] };
        let share = |t: f64| e.iter().filter(|&&x| x <= t).count() as f64 / e.len().max(1) as f64;
        ErrorSummary {
            runs: e.len(),
            median_abs_error: q(0.5),
            p90_abs_error: q(0.9),
            within_10pct: share(0.10),
            within_15pct: share(0.15),
        }
    }

    /// `name: N runs, median |error| X%, 90th percentile Y%, A% within 10%, B% within 15%`, or
    /// `name: no runs`.
    pub fn line(&self, name: &str) -> String {
        if self.runs == 0 {
            return format!("{name}: no runs");
        }
        format!(
            "{name}: {} runs, median |error| {:.1}%, 90th percentile {:.1}%, {:.0}% within 10%, {:.0}% within 15%",
            self.runs,
            100.0 * self.median_abs_error,
            100.0 * self.p90_abs_error,
            100.0 * self.within_10pct,
            100.0 * self.within_15pct
        )
    }

    /// The median of max(ratio, 1/ratio) over ratios of predicted to measured speed: how far
    /// off a typical prediction is, either way (NaN without runs).
    pub fn median_factor(ratios: impl IntoIterator<Item = f64>) -> f64 {
        median(ratios.into_iter().map(|r| r.max(1.0 / r)))
    }

    /// Kendall's tau-b of predicted against measured values, equally long (ties in either
    /// count against neither): whether the predictions rank runs as the measurements do.
    pub fn kendall_tau(x: &[f64], y: &[f64]) -> f64 {
        let (mut concordant, mut discordant, mut tx, mut ty) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
        for i in 0..x.len() {
            for j in i + 1..x.len() {
                let (a, b) = ((x[i] - x[j]).signum(), (y[i] - y[j]).signum());
                let (dx, dy) = (x[i] == x[j], y[i] == y[j]);
                if dx && dy {
                    continue;
                } else if dx {
                    tx += 1.0;
                } else if dy {
                    ty += 1.0;
                } else if a == b {
                    concordant += 1.0;
                } else {
                    discordant += 1.0;
                }
            }
        }
        let n = concordant + discordant;
        let denom = ((n + tx) * (n + ty)).sqrt();
        if denom == 0.0 {
            f64::NAN
        } else {
            (concordant - discordant) / denom
        }
    }
}

/// [`ErrorSummary::median_factor`] of held-out runs.
pub fn median_factor<'a>(rows: impl IntoIterator<Item = &'a Agreement>) -> f64 {
    ErrorSummary::median_factor(rows.into_iter().map(|a| a.ratio))
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

#[cfg(test)]
mod tests {
    use super::ErrorSummary;

    #[test]
    fn kendall_tau_by_hand() {
        let kendall_tau = ErrorSummary::kendall_tau;
        // Identical order: +1; reversed: -1.
        assert_eq!(kendall_tau(&[1.0, 2.0, 3.0], &[10.0, 20.0, 30.0]), 1.0);
        assert_eq!(kendall_tau(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]), -1.0);
        // 4 items, one swapped pair (3,4): 5 concordant, 1 discordant -> 4/6.
        assert!((kendall_tau(&[1.0, 2.0, 3.0, 4.0], &[1.0, 2.0, 4.0, 3.0]) - 4.0 / 6.0).abs() < 1e-12);
    }

    #[test]
    fn an_error_summary_takes_the_nearest_rank_and_counts_shares() {
        let s = ErrorSummary::of([0.05, -0.12, 0.30, -0.01]);
        assert_eq!((s.runs, s.median_abs_error, s.p90_abs_error), (4, 0.12, 0.30));
        assert_eq!((s.within_10pct, s.within_15pct), (0.5, 0.75));
        let none = ErrorSummary::of([]);
        assert!(none.median_abs_error.is_nan() && none.within_15pct == 0.0);
        assert_eq!(none.line("decode"), "decode: no runs");
        assert_eq!(ErrorSummary::median_factor([2.0, 0.5, 1.0, 1.25]), 1.625);
    }
}
