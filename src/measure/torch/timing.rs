//! Timing kernels: warm-up, repeats within a time budget, the median and the spread.

use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub median_s: f64,
    /// Coefficient of variation of the repeats.
    pub cv: f64,
}

/// Runs `f` `warmup` times, then up to `max_repeats` times (at least 5) or until `budget`
/// is spent. Libtorch CPU calls are synchronous, so the clock stops when `f` returns.
pub fn time(mut f: impl FnMut(), warmup: usize, max_repeats: usize, budget: Duration) -> Timing {
    for _ in 0..warmup {
        f();
    }
    let start = Instant::now();
    let mut samples = Vec::with_capacity(max_repeats);
    while samples.len() < max_repeats && (samples.len() < 5 || start.elapsed() < budget) {
        let t = Instant::now();
        f();
        samples.push(t.elapsed().as_secs_f64());
    }
    samples.sort_by(f64::total_cmp);
    let median_s = samples[samples.len() / 2];
    let mean = samples.iter().sum::<f64>() / samples.len() as f64;
    let var = samples.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / samples.len() as f64;
    Timing { median_s, cv: var.sqrt() / mean }
}
