//! `search --per-layer`: the best heterogeneous stack beside the best uniform one.

use crate::device::DeviceProfile;
use crate::error::Result;
use crate::search::milp::{instance_for, solve, Instance, Stack};
use crate::search::SearchReport;
use crate::search::SearchSpace;
use crate::units::si;
use serde::Serialize;
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

/// One layer of the heterogeneous and the uniform stack (per_layer.csv).
#[derive(Debug, Clone, Serialize)]
pub struct LayerRow {
    pub stack: &'static str,
    pub layer: usize,
    pub option: String,
    pub flops: f64,
    pub time_s: f64,
    pub parameters: f64,
    pub memory_bytes: f64,
}

fn layer_rows(inst: &Instance, name: &'static str, s: &Stack) -> Vec<LayerRow> {
    s.choice
        .iter()
        .enumerate()
        .map(|(layer, &o)| {
            let opt = &inst.options[o];
            LayerRow {
                stack: name,
                layer,
                option: opt.label.clone(),
                flops: opt.flops,
                time_s: opt.time_s,
                parameters: opt.params,
                memory_bytes: opt.memory_bytes,
            }
        })
        .collect()
}

/// The per-layer result as text (for the terminal and per_layer.md) and as one CSV row per
/// layer of each stack (per_layer.csv).
pub fn run(space: &SearchSpace, device: &DeviceProfile, report: &SearchReport) -> Result<(String, Vec<LayerRow>)> {
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
    let mut rows = layer_rows(&inst, "heterogeneous", &solved.stack);
    match inst.best_uniform() {
        Some(u) => {
            rows.extend(layer_rows(&inst, "uniform", &u));
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
    Ok((s, rows))
}
