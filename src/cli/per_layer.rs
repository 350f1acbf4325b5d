//! `search --per-layer`: the best heterogeneous stack beside the best uniform one.

use crate::device::DeviceProfile;
use crate::error::Result;
use crate::report::search::SearchReport;
use crate::report::table::si;
use crate::search::milp::{instance_for, solve, Instance, Stack};
use crate::search::SearchSpace;
use std::collections::BTreeMap;
use std::fmt::Write;

fn describe(inst: &Instance, s: &Stack) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for &o in &s.choice {
        *counts.entry(inst.options[o].label.as_str()).or_default() += 1;
    }
    let parts: Vec<String> = counts.iter().map(|(l, n)| format!("{n} x {l}")).collect();
    format!(
        "{}: {} attained, {} per pass of the workload, {} parameters, {} memory",
        parts.join(" + "),
        si(s.performance_flop_per_s(), "FLOP/s"),
        si(s.time_s, "s"),
        si(s.params, ""),
        si(s.memory_bytes, "B")
    )
}

pub fn run(space: &SearchSpace, device: &DeviceProfile, report: &SearchReport) -> Result<String> {
    let base = space.candidate(report.recommended.index).expect("recommended candidates are valid");
    let inst = instance_for(space, device, &base.arch, base.precision_index);
    let start = std::time::Instant::now();
    let solved = solve(&inst)?;
    let elapsed = start.elapsed();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "per-layer (around the recommendation's width and heads: {} layers x {} options, MILP with microlp, {} Dinkelbach steps, {:.1} ms):",
        inst.layers,
        inst.options.len(),
        solved.iterations,
        elapsed.as_secs_f64() * 1e3
    );
    let _ = writeln!(s, "  heterogeneous: {}", describe(&inst, &solved.stack));
    match inst.best_uniform() {
        Some(u) => {
            let _ = writeln!(s, "  uniform:       {}", describe(&inst, &u));
            let _ = writeln!(
                s,
                "  gain: {:+.2}% attained performance",
                100.0 * (solved.stack.performance_flop_per_s() / u.performance_flop_per_s() - 1.0)
            );
        }
        None => {
            let _ = writeln!(s, "  uniform: no uniform stack of these options meets the constraints");
        }
    }
    Ok(s)
}
