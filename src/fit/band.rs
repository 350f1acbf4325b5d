//! Error bands from runs a fit did not see: k-fold cross-validation of the fitted runs (each
//! run predicted by a profile fitted to the other folds), and a prediction interval over the
//! log of measured / predicted tokens/s, per phase.
//!
//! The interval treats the log errors as normal with unknown mean and spread: a new run falls
//! within mean +- t(n-1) * sd * sqrt(1 + 1/n) with the band's probability (Student's t, as for
//! any prediction interval from n observations). Its width therefore grows when few runs back
//! it, which is what a profile fitted from ten public runs should admit.

use super::agreement::{agreement, Agreement};
use super::Run;
use crate::device::{Band, DeviceProfile, ErrorBands};
use crate::error::Result;
use statrs::distribution::{ContinuousCDF, StudentsT};

/// The share of runs a band is built to hold.
pub const COVERAGE: f64 = 0.8;

/// Fewest runs of a phase a band is computed from: two give a spread with one degree of
/// freedom, which the t quantile (3.08 at 80%) makes uselessly wide, and one gives none.
pub const MIN_RUNS: usize = 3;

/// Folds of the cross-validation: leave-one-out up to ten runs, ten folds beyond.
const MAX_FOLDS: usize = 10;

/// The `coverage` prediction interval of measured / predicted tokens/s from the runs' factors;
/// None under [`MIN_RUNS`] runs.
pub fn band(factors: &[f64], coverage: f64) -> Option<Band> {
    let n = factors.len();
    if n < MIN_RUNS || factors.iter().any(|f| !(f.is_finite() && *f > 0.0)) {
        return None;
    }
    let logs: Vec<f64> = factors.iter().map(|f| f.ln()).collect();
    let nf = n as f64;
    let mean = logs.iter().sum::<f64>() / nf;
    let var = logs.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / (nf - 1.0);
    let t = StudentsT::new(0.0, 1.0, nf - 1.0).expect("n >= 3 gives a valid t").inverse_cdf(0.5 + coverage / 2.0);
    let half = t * var.sqrt() * (1.0 + 1.0 / nf).sqrt();
    Some(Band { low: (mean - half).exp(), high: (mean + half).exp(), runs: n as u32 })
}

/// How many of `runs` (measured and predicted seconds of the same work) fell inside `band`,
/// and of how many: tokens/s are tokens over seconds, so measured over predicted tokens/s is
/// predicted over measured seconds.
pub fn inside(band: &Band, runs: impl IntoIterator<Item = (f64, f64)>) -> (usize, usize) {
    let (mut inside, mut counted) = (0, 0);
    for (measured_s, predicted_s) in runs {
        counted += 1;
        inside += usize::from(band.holds(1.0 / measured_s, 1.0 / predicted_s));
    }
    (inside, counted)
}

/// measured / predicted tokens/s of one row (its `ratio` is measured / predicted time).
pub fn factor(row: &Agreement) -> f64 {
    1.0 / row.ratio
}

/// Bands per phase from rows no fit saw, with `basis` saying how they were predicted.
pub fn bands(rows: &[Agreement], basis: String) -> ErrorBands {
    let factors: Vec<(bool, f64)> = rows.iter().map(|r| (r.prefill, factor(r))).collect();
    bands_of(&factors, basis)
}

/// Bands per phase from (prefill?, measured / predicted tokens/s) of runs no fit saw.
pub fn bands_of(factors: &[(bool, f64)], basis: String) -> ErrorBands {
    let phase = |prefill: bool| {
        let f: Vec<f64> = factors.iter().filter(|(p, _)| *p == prefill).map(|(_, f)| *f).collect();
        band(&f, COVERAGE)
    };
    ErrorBands { coverage: COVERAGE, basis, prefill: phase(true), decode: phase(false) }
}

/// Each run predicted by a profile `refit` made from the other folds' runs (run i is in fold
/// i mod k), and the bands' basis in words ("10-fold cross-validation of the 24 {what}"). Runs a
/// fold's profile cannot predict (a fit that failed, or a rate only that run pinned down) are
/// left out, and the basis says how many.
pub fn cross_validate(
    runs: &[Run],
    source: &str,
    what: &str,
    refit: impl Fn(&[Run]) -> Result<DeviceProfile>,
) -> (Vec<Agreement>, String) {
    let k = runs.len().min(MAX_FOLDS);
    let (rows, lost) = if k < 2 { (Vec::new(), runs.len()) } else { predict_folds(runs, k, source, refit) };
    let lost = if lost > 0 { format!(", {lost} it could not predict left out") } else { String::new() };
    (rows, format!("{k}-fold cross-validation of the {} {what}{lost}", runs.len()))
}

fn predict_folds(
    runs: &[Run],
    k: usize,
    source: &str,
    refit: impl Fn(&[Run]) -> Result<DeviceProfile>,
) -> (Vec<Agreement>, usize) {
    let mut rows = Vec::new();
    let mut lost = 0;
    for fold in 0..k {
        let train: Vec<Run> = runs.iter().enumerate().filter(|(i, _)| i % k != fold).map(|(_, r)| r.clone()).collect();
        let test: Vec<Run> = runs.iter().enumerate().filter(|(i, _)| i % k == fold).map(|(_, r)| r.clone()).collect();
        let Ok(profile) = refit(&train) else {
            lost += test.len();
            continue;
        };
        for r in &test {
            match agreement(&profile, source, std::slice::from_ref(r)) {
                Ok(mut one) => rows.append(&mut one),
                Err(_) => lost += 1,
            }
        }
    }
    (rows, lost)
}

/// How many `rows` fall inside `bands` (rows of a phase without a band are not counted), and how
/// many were counted.
pub fn within(bands: &ErrorBands, rows: &[Agreement]) -> (usize, usize) {
    let mut inside = 0;
    let mut counted = 0;
    for r in rows {
        if let Some(b) = bands.phase(r.prefill) {
            counted += 1;
            inside += b.holds(r.measured_tokens_per_s, r.predicted_tokens_per_s) as usize;
        }
    }
    (inside, counted)
}

/// "80% band: prefill 0.82-1.21x (12 runs), decode 0.90-1.08x (12 runs)".
pub fn describe(b: &ErrorBands) -> String {
    let part = |name: &str, band: Option<Band>| match band {
        Some(b) => format!("{name} {:.2}-{:.2}x ({} runs)", b.low, b.high, b.runs),
        None => format!("{name} none (under {MIN_RUNS} runs)"),
    };
    format!("{:.0}% band: {}, {}", 100.0 * b.coverage, part("prefill", b.prefill), part("decode", b.decode))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn band_is_the_t_prediction_interval_of_the_log_factors() {
        // ln factors -0.1, 0, +0.1: mean 0, sd 0.1 (n-1 = 2). t(0.9, 2) = 1.8856 (published
        // tables), so half-width = 1.8856 * 0.1 * sqrt(4/3) = 0.21773.
        let b = band(&[(-0.1f64).exp(), 1.0, 0.1f64.exp()], 0.8).unwrap();
        assert!((b.low - (-0.21773f64).exp()).abs() < 1e-4, "{b:?}");
        assert!((b.high - 0.21773f64.exp()).abs() < 1e-4, "{b:?}");
        assert_eq!(b.runs, 3);
        // A constant bias shifts the band: every run measured 10% faster than predicted.
        let b = band(&[1.1, 1.1, 1.1, 1.1], 0.8).unwrap();
        assert!((b.low - 1.1).abs() < 1e-12 && (b.high - 1.1).abs() < 1e-12);
    }

    #[test]
    fn runs_inside_a_band_are_counted_by_their_rates() {
        let b = Band { low: 0.8, high: 1.25, runs: 10 };
        // Measured 1 s: predicted 0.75 s is a measured rate 0.75x the predicted (outside), 0.8 s
        // 0.8x and 1.25 s 1.25x (the edges, inside), 1.3 s 1.3x (outside).
        let runs = [(1.0, 0.75), (1.0, 0.8), (1.0, 1.0), (1.0, 1.25), (1.0, 1.3)];
        assert_eq!(inside(&b, runs), (3, 5));
        assert_eq!(inside(&b, []), (0, 0));
    }

    #[test]
    fn too_few_runs_or_a_broken_factor_give_no_band() {
        assert!(band(&[1.0, 1.2], 0.8).is_none());
        assert!(band(&[1.0, 1.2, f64::NAN], 0.8).is_none());
        assert!(band(&[1.0, 1.2, 0.0], 0.8).is_none());
    }
}
