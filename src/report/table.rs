//! Human-readable tables with SI-prefixed units.

use crate::analysis::{Analysis, OpRow, PhaseSummary};
use crate::quality::Estimate;
use crate::units::{rate, si, TextTable};
use std::fmt::Write;

/// The phases' table: one line per phase and one for the whole scenario.
const PHASES: &str = "  {<9} {>11} {>11} {>10} {>13} {>12}  {<7} {>7} {>6} {>6}  {}";

fn phase_line(t: &mut TextTable, p: &PhaseSummary) {
    t.row(&[
        &p.phase,
        &si(p.flops, "FLOP"),
        &si(p.bytes, "B"),
        &si(p.time_s, "s"),
        &format!("{:.3} FLOP/B", p.intensity_flop_per_byte),
        &si(p.performance_flop_per_s, "FLOP/s"),
        &p.bound,
        &format!("{:.3}", p.phi_log),
        &format!("{:.3}", p.rip),
        &format!("{:.3}", p.attainment),
        &p.plan,
    ]);
}

pub fn analysis(a: &Analysis) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} on {} | {} ({} prompt / {} generated tokens, batch {}) | weights {}, activations {}, KV {}",
        a.model,
        a.device,
        a.scenario,
        a.prompt_tokens,
        a.generated_tokens,
        a.batch,
        a.weights_dtype,
        a.activations_dtype,
        a.kv_cache_dtype
    );
    let _ = writeln!(s, "  profile: {}", a.profile);
    for w in &a.warnings {
        let _ = writeln!(s, "  warning: {w}");
    }
    let _ = writeln!(
        s,
        "  {} parameters ({} active), KV cache {}/token | roof: {}, {}, ridge {:.1} FLOP/B",
        si(a.parameters as f64, ""),
        si(a.active_parameters as f64, ""),
        si(a.kv_bytes_per_token, "B"),
        si(a.peak_flop_per_s, "FLOP/s"),
        si(a.bandwidth_bytes_per_s, "B/s"),
        a.ridge_flop_per_byte
    );
    let mut t = TextTable::new(PHASES);
    t.header(&[
        "phase",
        "work",
        "traffic",
        "time",
        "intensity",
        "attained",
        "bound",
        "phi_log",
        "rip",
        "attain",
        "plan",
    ]);
    for p in [&a.prefill, &a.decode, &a.scenario_point] {
        phase_line(&mut t, p);
    }
    s += &t.finish();
    let f = &a.footprint;
    let _ = writeln!(
        s,
        "  TTFT {} | TPOT {} | prefill {} tok/s | decode {} tok/s",
        si(a.ttft_s, "s"),
        si(a.tpot_s, "s"),
        rate(a.prefill_tokens_per_s),
        rate(a.decode_tokens_per_s)
    );
    if let Some(b) = &a.error_band {
        let range = |r: Option<[f64; 2]>| match r {
            Some([lo, hi]) => format!("{}-{} tok/s", rate(lo), rate(hi)),
            None => "none".to_string(),
        };
        let _ = writeln!(
            s,
            "  {:.0}% band: prefill {}, decode {} ({})",
            100.0 * b.coverage,
            range(b.prefill_tokens_per_s),
            range(b.decode_tokens_per_s),
            b.basis
        );
    }
    if let Some(c) = &a.check_command {
        let _ = writeln!(s, "  check on the device: {c}");
    }
    let _ = writeln!(
        s,
        "  memory {} = weights {} + KV {} + workspace {}; usable {}: {}",
        si(f.total_bytes, "B"),
        si(f.weights_bytes, "B"),
        si(f.kv_cache_bytes, "B"),
        si(f.workspace_bytes, "B"),
        si(f.usable_bytes, "B"),
        if f.fits { "fits" } else { "DOES NOT FIT" }
    );
    let _ = writeln!(s, "{}", quality_line(&a.quality));
    s
}

/// The predicted loss and what it assumes, as an analysis and a recommendation print it.
pub(crate) fn quality_line(q: &Estimate) -> String {
    format!(
        "  quality: predicted loss {:.4} after {} training tokens, {} non-embedding parameters; estimate range: {}",
        q.predicted_loss,
        si(q.tokens, ""),
        si(q.non_embedding_params as f64, ""),
        q.estimate_range
    )
}

/// One row per analysis: the models side by side.
pub fn compact(rows: &[&Analysis]) -> String {
    let name = rows.iter().map(|a| a.model.len()).max().unwrap_or(5).max(5);
    // The model column as wide as the longest name.
    let pattern = format!("{{<{name}}}") + "  {<12} {<8} {>9} {>10} {>10} {>13} {>14} {>7}  {<7} {>9}  {}";
    let mut t = TextTable::new(&pattern);
    t.header(&[
        "model",
        "device",
        "scenario",
        "params",
        "TTFT",
        "TPOT",
        "decode tok/s",
        "prefill tok/s",
        "rip",
        "bound",
        "memory",
        "fits",
    ]);
    for a in rows {
        t.row(&[
            &a.model,
            &a.device,
            &a.scenario,
            &si(a.parameters as f64, ""),
            &si(a.ttft_s, "s"),
            &si(a.tpot_s, "s"),
            &rate(a.decode_tokens_per_s),
            &rate(a.prefill_tokens_per_s),
            &format!("{:.4}", a.scenario_point.rip),
            &a.scenario_point.bound,
            &si(a.footprint.total_bytes, "B"),
            &if a.footprint.fits { "yes" } else { "NO" },
        ]);
    }
    t.finish()
}

pub fn operators(rows: &[OpRow]) -> String {
    let mut t = TextTable::new("  {<8} {<16} {>6} {>11} {>11} {>11} {>11} {>10} {<7} {>6}");
    t.header(&["phase", "operator", "layers", "work", "weights", "act r+w", "kv r+w", "time", "bound", "share"]);
    for r in rows {
        t.row(&[
            &r.phase,
            &r.op,
            &r.layers,
            &si(r.flops, "FLOP"),
            &si(r.weight_bytes, "B"),
            &si(r.act_read_bytes + r.act_write_bytes, "B"),
            &si(r.kv_read_bytes + r.kv_write_bytes, "B"),
            &si(r.time_s, "s"),
            &r.bound,
            &format!("{:.1}%", 100.0 * r.share_of_phase_time),
        ]);
    }
    t.finish()
}

#[cfg(test)]
mod tests {
    use super::{rate, si};

    #[test]
    fn rates_have_no_milli_tokens() {
        assert_eq!(rate(0.232), "0.232");
        assert_eq!(rate(31.24), "31.2");
        assert_eq!(rate(2500.0), "2500");
        assert_eq!(rate(25_000.0), "25.0 k");
    }

    #[test]
    fn si_prefixes() {
        assert_eq!(si(1.234e9, "FLOP"), "1.23 GFLOP");
        assert_eq!(si(0.009, "s"), "9.00 ms");
        assert_eq!(si(512.0, "B"), "512 B");
    }
}
