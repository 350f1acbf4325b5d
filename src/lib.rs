//! rooflinebench: which small-language-model architecture runs best on a device, and why.
//!
//! Data flows one way: [`arch`] (what the model is) -> [`workload`] (the operators a phase runs,
//! with FLOPs and bytes) -> [`roofline`] (their time on a [`device`], scenario points, Phi and
//! rip) -> [`search`] (the best architecture under constraints) -> [`report`] (tables, CSV,
//! JSON, SVG). Beside the roofline, [`quality`] predicts each architecture's pre-training loss
//! from published scaling laws, so a search can trade quality against speed.

pub mod analysis;
pub mod arch;
pub mod cli;
pub mod device;
pub mod dtype;
pub mod error;
pub mod files;
pub mod fit;
pub mod measure;
pub mod plan;
pub mod quality;
pub mod report;
pub mod reproduce;
pub mod roofline;
pub mod search;
pub mod units;
pub mod warnings;
pub mod workload;

pub use error::{Error, Result};
