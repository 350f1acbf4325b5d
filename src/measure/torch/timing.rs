//! Timing kernels: warm-up, repeats within a time budget, the median and the spread.

use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub median_s: f64,
    /// Coefficient of variation of the repeats.
    pub cv: f64,
}

/// Runs `f` `warmup` times (at most for half the budget), then up to `max_repeats` times (at
/// least 5, or 3 once the budget is spent: a 0.2 s product needs no more to give a stable
/// median) or until `budget` is spent. Libtorch CPU calls are synchronous, so the clock stops
/// when `f` returns.
pub fn time(mut f: impl FnMut(), warmup: usize, max_repeats: usize, budget: Duration) -> Timing {
    let warm = Instant::now();
    for i in 0..warmup {
        if i >= 1 && warm.elapsed() > budget / 2 {
            break;
        }
        f();
    }
    let start = Instant::now();
    let mut samples = Vec::with_capacity(max_repeats);
    let enough =
        |n: usize, spent: Duration| n >= max_repeats || (n >= 5 && spent >= budget) || (n >= 3 && spent >= 2 * budget);
    while !enough(samples.len(), start.elapsed()) {
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
