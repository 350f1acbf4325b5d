//! Error bands: how far measured tokens/s fell from a profile's predictions on runs its fit did
//! not see, as a range of factors a prediction is multiplied by. A profile carries them; every
//! report shows them beside the figures they qualify.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// Measured tokens/s lay within `low`..`high` times the predicted tokens/s for the share of runs
/// the bands were built for.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Band {
    pub low: f64,
    pub high: f64,
    /// Runs the band rests on.
    pub runs: u32,
}

impl Band {
    /// The range a predicted rate of `tokens_per_s` stands for.
    pub fn around(&self, tokens_per_s: f64) -> (f64, f64) {
        (tokens_per_s * self.low, tokens_per_s * self.high)
    }

    /// Whether a measured rate lies inside the band around its prediction.
    pub fn holds(&self, measured_tokens_per_s: f64, predicted_tokens_per_s: f64) -> bool {
        let f = measured_tokens_per_s / predicted_tokens_per_s;
        (self.low..=self.high).contains(&f)
    }
}

/// A profile's bands per phase, and what they rest on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorBands {
    /// Share of runs a band is built to hold (0.8 for an 80% band).
    pub coverage: f64,
    /// How the runs behind the bands were predicted without being fitted, in words.
    pub basis: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefill: Option<Band>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decode: Option<Band>,
}

impl ErrorBands {
    pub fn phase(&self, prefill: bool) -> Option<Band> {
        if prefill {
            self.prefill
        } else {
            self.decode
        }
    }

    pub fn validate(&self, source: &str) -> Result<()> {
        if !(self.coverage > 0.0 && self.coverage < 1.0) {
            return Err(Error::field(source, "error_bands.coverage", "a share in (0, 1)", self.coverage));
        }
        for (name, band) in [("prefill", self.prefill), ("decode", self.decode)] {
            let Some(b) = band else { continue };
            let field = format!("error_bands.{name}");
            // Factors beyond 1000 either way say the profile predicts nothing.
            let factor = |v: f64| v.is_finite() && (1e-3..=1e3).contains(&v);
            if !factor(b.low) {
                return Err(Error::field(source, format!("{field}.low"), "a factor from 0.001 to 1000", b.low));
            }
            if !(factor(b.high) && b.high >= b.low) {
                return Err(Error::field(
                    source,
                    format!("{field}.high"),
                    format!("a factor from low ({}) to 1000", b.low),
                    b.high,
                ));
            }
        }
        Ok(())
    }
}
