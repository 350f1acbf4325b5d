//! One integration-test binary. Each module covers one area:
//! - `accounting`: parameter counts, KV bytes and operator FLOPs/bytes against published or
//!   hand-derived values;
//! - `layers`: windowed, convolution, DeltaNet and Mamba2 layers: sizes, operators and sums by
//!   hand;
//! - `roofline`: times, closed-form sums and metrics against hand arithmetic;
//! - `cli`: the binary driven as a user would, exit codes and error text;
//! - `harden`: one regression test per defect of the bad-input, fault and concurrency sweep;
//! - `fuzz`: proptest fuzz suites of the four readers of user files (bounded here; longer runs
//!   with FUZZ_SECONDS);
//! - `report`: SVG plots and the paper reproduction;
//! - `quality`: predicted loss of published models by hand, its monotonicity, loss searches;
//! - `outputs`: exported configs, `export`, help and completions, CSV against JSON, report.html
//!   in headless Chromium;
//! - `search`: fronts, determinism across threads and shards, recommendations, bad spaces;
//! - `torch`: calibration and validation through libtorch (feature `torch`), or their absence;
//! - `families`: hybrid families (windows, convolutions, DeltaNet, Mamba2, NoPE, sinks) read
//!   against published totals, exported as the family that builds them, and refusals;
//! - `llamacpp`: GGUF files, engine runs and verification on llama.cpp (feature `llamacpp`), or
//!   their absence.

mod common;

mod accounting;
mod cli;
mod families;
mod fuzz;
mod harden;
mod harden_fit;
mod harden_outputs;
mod harden_sweep;
mod layers;
mod llamacpp;
mod outputs;
mod quality;
mod report;
mod roofline;
mod search;
mod structure;
mod torch;
