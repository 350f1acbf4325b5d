//! When to stop timing rounds. This machine moves between fast and slow states for tens of
//! seconds (host-level memory noise), so a fixed number of rounds can time one half of a batch
//! in one state and the other half in another. Rounds repeat until the bandwidth probes around
//! the last rounds agree and those rounds' times agree, up to a cap in rounds and in seconds so
//! that a run never hangs; then only the rounds timed in the settled state are kept.
//!
//! The rule is a pure function of the probes, the times and the elapsed seconds, so the worker
//! applies it after each round and the tests check it on synthetic sequences.

use serde::{Deserialize, Serialize};

/// How many rounds to time, and when the machine counts as settled.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Rounds {
    /// Rounds always run.
    pub min: u32,
    /// Rounds at most (the round cap).
    pub max: u32,
    /// No round starts once the timed part would pass this many seconds, the mean round so far
    /// taken as the next one's length (the time cap); None: rounds only.
    pub max_seconds: Option<f64>,
    /// The last this many rounds must agree.
    pub window: u32,
    /// The probes bracketing the window's rounds: the highest at most this far above the
    /// lowest (0.10: 10%).
    pub probe_tolerance: f64,
    /// Over the tests, the median of each test's spread across the window's rounds ((max -
    /// min) / min): at most this.
    pub time_tolerance: f64,
}

impl Rounds {
    /// Exactly `n` rounds (`measure --repeats`): whether they settled is still reported.
    pub fn fixed(n: u32) -> Rounds {
        Rounds { min: n, max: n, ..Rounds::settling(n, n, None) }
    }

    /// From `min` up to `max` rounds (and `max_seconds` of timing): the last two must agree,
    /// probes and times within 10%.
    pub fn settling(min: u32, max: u32, max_seconds: Option<f64>) -> Rounds {
        Rounds { min, max: max.max(min), max_seconds, window: 2, probe_tolerance: 0.10, time_tolerance: 0.10 }
    }
}

/// Why the rounds stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stop {
    /// The last rounds' probes and times agreed.
    Settled,
    /// `max` rounds ran without settling.
    RoundCap,
    /// Another round would have passed `max_seconds` without settling.
    TimeCap,
}

impl Stop {
    /// In words, for warnings and reports.
    pub fn describe(self) -> &'static str {
        match self {
            Stop::Settled => "settled",
            Stop::RoundCap => "the round cap",
            Stop::TimeCap => "the time cap",
        }
    }
}

/// How a batch's rounds ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settling {
    /// Rounds timed.
    pub rounds: u32,
    pub stop: Stop,
    /// The rounds (from 0) whose times count: on settling, those whose bracketing probes both
    /// lie within the settled window's probe range; otherwise every round (no state is sounder
    /// than another).
    pub kept: Vec<u32>,
    /// The window's probes: highest / lowest - 1 (NaN before there is a window).
    pub probe_spread: f64,
    /// The window's times: the median over tests of (max - min) / min (NaN likewise).
    pub time_spread: f64,
}

/// After `probes.len() - 1` rounds, with `probes[i]` taken before round i and the last after
/// the last round, `times[test][round]` their times and `elapsed_s` the timing so far: None to
/// run another round, or how the rounds ended.
pub fn after_round(rule: &Rounds, probes: &[f64], times: &[Vec<f64>], elapsed_s: f64) -> Option<Settling> {
    let n = probes.len().saturating_sub(1);
    let w = (rule.window.max(1) as usize).min(n);
    let (probe_spread, time_spread, lo, hi) = if n >= rule.window.max(1) as usize {
        let window = &probes[n - w..=n];
        let lo = window.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = window.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let spreads = times.iter().filter(|t| t.len() >= n).map(|t| {
            let t = &t[n - w..n];
            let (a, b) = (t.iter().copied().fold(f64::INFINITY, f64::min), t.iter().copied().fold(0.0, f64::max));
            (b - a) / a
        });
        (hi / lo - 1.0, crate::fit::agreement::median(spreads), lo, hi)
    } else {
        (f64::NAN, f64::NAN, f64::NAN, f64::NAN)
    };
    let n32 = n as u32;
    if n32 < rule.min {
        return None;
    }
    // NaN spreads (no window yet, or no times) never settle.
    let settled = probe_spread <= rule.probe_tolerance && time_spread <= rule.time_tolerance;
    let end = |stop: Stop| {
        let kept = match stop {
            Stop::Settled => {
                let inside = |p: f64| (lo..=hi).contains(&p);
                (0..n).filter(|&i| inside(probes[i]) && inside(probes[i + 1])).map(|i| i as u32).collect()
            }
            _ => (0..n32).collect(),
        };
        Some(Settling { rounds: n32, stop, kept, probe_spread, time_spread })
    };
    if settled {
        return end(Stop::Settled);
    }
    if n32 >= rule.max {
        return end(Stop::RoundCap);
    }
    if rule.max_seconds.is_some_and(|cap| elapsed_s + elapsed_s / n as f64 > cap) {
        return end(Stop::TimeCap);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const GB: f64 = 1e9;

    /// Runs the rule round by round over a sequence, as the worker does; `times[test]` holds
    /// every round's time and `round_s` each round's length.
    fn replay(rule: &Rounds, probes: &[f64], times: &[Vec<f64>], round_s: f64) -> Settling {
        for n in 1..probes.len() {
            let so_far: Vec<Vec<f64>> = times.iter().map(|t| t[..n].to_vec()).collect();
            if let Some(s) = after_round(rule, &probes[..=n], &so_far, n as f64 * round_s) {
                return s;
            }
        }
        panic!("the sequence ended before the rule stopped");
    }

    #[test]
    fn settles_once_the_last_two_rounds_agree_and_keeps_only_the_rounds_inside() {
        // Probes (GB/s) before rounds 0..3 and after round 3: 20, 30, 31, 30.5, 30.
        // After round 1 the window is rounds 0-1, probes 20, 30, 31: 31/20 - 1 = 55% > 10%.
        // After round 2, rounds 1-2, probes 30, 31, 30.5: 31/30 - 1 = 3.3%; times of rounds 1-2:
        // test A 1.00 and 1.02 (2%), test B 0.50 and 0.51 (2%): median 2% <= 10%: settled at 3
        // rounds. Round 0 is bracketed by 20 and 30, and 20 lies outside [30, 31]: kept 1, 2.
        let rule = Rounds::settling(2, 6, None);
        let probes = [20.0 * GB, 30.0 * GB, 31.0 * GB, 30.5 * GB, 30.0 * GB];
        let times = vec![vec![2.0, 1.0, 1.02, 1.0], vec![1.5, 0.5, 0.51, 0.5]];
        let s = replay(&rule, &probes, &times, 1.0);
        assert_eq!(s.stop, Stop::Settled);
        assert_eq!(s.rounds, 3);
        assert_eq!(s.kept, vec![1, 2]);
        assert!((s.probe_spread - (31.0 / 30.0 - 1.0)).abs() < 1e-12, "{s:?}");
        assert!((s.time_spread - 0.02).abs() < 1e-12, "{s:?}");
    }

    #[test]
    fn a_quiet_machine_stops_at_the_minimum() {
        // 30, 30.3, 29.9 GB/s: 30.3/29.9 - 1 = 1.34%; times 1.00 and 1.01 (1%): two rounds,
        // both kept, as the fixed two rounds did before.
        let rule = Rounds::settling(2, 6, None);
        let s = replay(&rule, &[30.0 * GB, 30.3 * GB, 29.9 * GB], &[vec![1.0, 1.01]], 1.0);
        assert_eq!((s.stop, s.rounds, s.kept), (Stop::Settled, 2, vec![0, 1]));
    }

    #[test]
    fn a_machine_that_never_settles_stops_at_the_round_cap_keeping_every_round() {
        // The probe alternates 20 and 30 GB/s: every window spans 30/20 - 1 = 50%. At 5 rounds
        // (the cap) it stops, unsettled, and every round counts.
        let rule = Rounds::settling(2, 5, None);
        let probes = [20.0, 30.0, 20.0, 30.0, 20.0, 30.0, 20.0].map(|p| p * GB);
        let times = vec![vec![1.0; 6]];
        let s = replay(&rule, &probes, &times, 1.0);
        assert_eq!(s.stop, Stop::RoundCap);
        assert_eq!(s.rounds, 5);
        assert_eq!(s.kept, vec![0, 1, 2, 3, 4]);
        assert!((s.probe_spread - 0.5).abs() < 1e-12, "{s:?}");
    }

    #[test]
    fn steady_probes_with_scattered_times_do_not_settle() {
        // Probes within 1%, but the times alternate 1.0 and 1.2 s: each window's spread is
        // 0.2/1.0 = 20% > 10%. Three rounds at most: the round cap, all kept.
        let rule = Rounds::settling(2, 3, None);
        let s = replay(&rule, &[30.0 * GB; 4], &[vec![1.0, 1.2, 1.0]], 1.0);
        assert_eq!((s.stop, s.rounds), (Stop::RoundCap, 3));
        assert!((s.time_spread - 0.2).abs() < 1e-12, "{s:?}");
    }

    #[test]
    fn the_time_cap_stops_before_a_round_that_would_pass_it() {
        // Rounds of 8 s, cap 20 s: after round 2 (16 s) the next would end at 16 + 16/2 = 24 >
        // 20, so it stops there, unsettled (probes 20, 30, 20: 50%), with 2 of its 6 rounds.
        let rule = Rounds::settling(2, 6, Some(20.0));
        let probes = [20.0, 30.0, 20.0, 30.0, 20.0].map(|p| p * GB);
        let s = replay(&rule, &probes, &[vec![1.0; 4]], 8.0);
        assert_eq!((s.stop, s.rounds, s.kept), (Stop::TimeCap, 2, vec![0, 1]));
        // The minimum runs whatever the cap: 3 rounds of 8 s against a 10 s cap.
        let rule = Rounds::settling(3, 6, Some(10.0));
        let s = replay(&rule, &probes, &[vec![1.0; 4]], 8.0);
        assert_eq!((s.stop, s.rounds), (Stop::TimeCap, 3));
    }

    #[test]
    fn fixed_rounds_run_exactly_and_still_say_whether_they_settled() {
        let rule = Rounds::fixed(3);
        // After 2 rounds the probes agree (30, 30, 30) and the times too, but the minimum is 3.
        assert_eq!(after_round(&rule, &[30.0 * GB; 3], &[vec![1.0, 1.0]], 2.0), None);
        let s = after_round(&rule, &[30.0 * GB, 30.0 * GB, 30.0 * GB, 20.0 * GB], &[vec![1.0; 3]], 3.0).unwrap();
        assert_eq!((s.stop, s.rounds, s.kept), (Stop::RoundCap, 3, vec![0, 1, 2]));
    }
}
