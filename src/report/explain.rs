//! The recommendation explained in text: what was chosen, what it beat and why.

use crate::quality::Estimate;
use crate::search::{FrontRow, Objective, SearchReport};
use crate::units::si;
use std::fmt::Write as _;

fn differences(a: &FrontRow, b: &FrontRow) -> String {
    let mut d = Vec::new();
    macro_rules! cmp {
        ($f:ident) => {
            if a.$f != b.$f {
                d.push(format!("{} {} vs {}", stringify!($f), a.$f, b.$f));
            }
        };
    }
    cmp!(attention);
    cmp!(layers);
    cmp!(hidden);
    cmp!(heads);
    cmp!(kv_heads);
    cmp!(head_dim);
    cmp!(kv_lora_rank);
    cmp!(intermediate);
    cmp!(ffn);
    cmp!(moe_experts);
    cmp!(vocab);
    cmp!(weights_dtype);
    cmp!(kv_dtype);
    if d.is_empty() {
        "the same shape".into()
    } else {
        d.join(", ")
    }
}

/// The recommendation: its figures and why it was chosen.
fn recommended(s: &mut String, r: &SearchReport) {
    let rec = &r.recommended;
    let _ = writeln!(*s, "recommended: {}", rec.label());
    let _ = writeln!(
        *s,
        "  {} parameters, {} memory; {}-bound at {:.2} FLOP/B and {}; rip {:.4} (phi_log {:.3}), attainment {:.3}",
        si(rec.parameters as f64, ""),
        si(rec.footprint_bytes, "B"),
        rec.regime,
        rec.intensity_flop_per_byte,
        si(rec.performance_flop_per_s, "FLOP/s"),
        rec.rip,
        rec.phi_log,
        rec.attainment
    );
    let _ = writeln!(
        *s,
        "  TTFT {}, TPOT {}, decode {:.1} tok/s, prefill {:.1} tok/s; plans: prefill {}, decode {}",
        si(rec.ttft_s, "s"),
        si(rec.tpot_s, "s"),
        rec.decode_tokens_per_s,
        rec.prefill_tokens_per_s,
        rec.prefill_plan,
        rec.decode_plan
    );
    if let Some(basis) = &r.band_basis {
        let range = |lo: Option<f64>, hi: Option<f64>| match (lo, hi) {
            (Some(lo), Some(hi)) => format!("{lo:.1}-{hi:.1} tok/s"),
            _ => "none".to_string(),
        };
        let _ = writeln!(
            *s,
            "  80% band: decode {}, prefill {} ({basis})",
            range(rec.decode_tokens_per_s_low, rec.decode_tokens_per_s_high),
            range(rec.prefill_tokens_per_s_low, rec.prefill_tokens_per_s_high)
        );
    }
    if let Some(c) = &r.check_command {
        let _ = writeln!(*s, "  check on the device: {c}");
    }
    let quality = Estimate {
        non_embedding_params: rec.non_embedding_params,
        tokens: rec.tokens,
        predicted_loss: rec.predicted_loss,
        estimate_range: rec.estimate_range,
    };
    let _ = writeln!(*s, "{}", super::table::quality_line(&quality));
    let best = &r.best_by_objective;
    if r.objective == Objective::Rip {
        let _ = writeln!(
            *s,
            "  why: the fastest decoder among candidates within {:.1}% of the best rip ({:.4}, {})",
            100.0 * r.rip_margin,
            best.rip,
            best.label()
        );
    } else if r.objective == Objective::Loss {
        let _ = writeln!(
            *s,
            "  why: the lowest predicted loss of the feasible candidates (the fastest decoder of those tied: precision does not change it)"
        );
    } else {
        let _ = writeln!(*s, "  why: the best {} of the feasible candidates", r.objective.describe());
    }
}

/// The runner-up, the fastest decoder and the quality-first pick, each against the
/// recommendation.
fn alternatives(s: &mut String, r: &SearchReport) {
    let rec = &r.recommended;
    if let Some(ru) = &r.runner_up {
        let _ = writeln!(
            *s,
            "runner-up: {}: rip {:.4} ({:+.2}%), decode {:.1} tok/s ({:+.1}%), memory {}, predicted loss {:.4} ({:+.4})",
            ru.label(),
            ru.rip,
            100.0 * (ru.rip / rec.rip - 1.0),
            ru.decode_tokens_per_s,
            100.0 * (ru.decode_tokens_per_s / rec.decode_tokens_per_s - 1.0),
            si(ru.footprint_bytes, "B"),
            ru.predicted_loss,
            ru.predicted_loss - rec.predicted_loss
        );
        let _ = writeln!(*s, "  separated by: {}", differences(ru, rec));
    }
    {
        let fast = &r.fastest;
        if fast.index != rec.index {
            let _ = writeln!(
                *s,
                "fastest feasible decoder: {}: {:.1} tok/s ({:+.1}%), rip {:.4}, {} parameters, predicted loss {:.4} ({:+.4})",
                fast.label(),
                fast.decode_tokens_per_s,
                100.0 * (fast.decode_tokens_per_s / rec.decode_tokens_per_s - 1.0),
                fast.rip,
                si(fast.parameters as f64, ""),
                fast.predicted_loss,
                fast.predicted_loss - rec.predicted_loss
            );
        }
    }
    {
        let q = &r.quality_pick;
        let bound = format!("within +{:.0}% TPOT of the recommendation", 100.0 * r.quality_tpot_margin);
        if q.index == rec.index {
            let _ = writeln!(
                *s,
                "quality-first {bound}: the recommendation itself (no feasible candidate there predicts a lower loss)"
            );
        } else {
            let _ = writeln!(
                *s,
                "quality-first {bound}: {}: predicted loss {:.4} ({:+.4}), TPOT {} ({:+.1}%), decode {:.1} tok/s, rip {:.4}, {} parameters",
                q.label(),
                q.predicted_loss,
                q.predicted_loss - rec.predicted_loss,
                si(q.tpot_s, "s"),
                100.0 * (q.tpot_s / rec.tpot_s - 1.0),
                q.decode_tokens_per_s,
                q.rip,
                si(q.parameters as f64, "")
            );
        }
    }
}

/// The recommendation and why, for the terminal and for summary.md.
pub fn explain(r: &SearchReport) -> String {
    let mut s = String::new();
    let o = &r.outcome;
    let _ = writeln!(
        s,
        "{} on {}: {} candidates, {} feasible, front of {}",
        r.space,
        r.device,
        o.candidates,
        o.feasible,
        o.front.len()
    );
    if let Some(res) = o.front_resolution {
        let _ = writeln!(
            s,
            "front thinned: one member per box {}% wide in every objective (spaces over {} M candidates; see README)",
            res * 100.0,
            crate::search::EXACT_FRONT_CANDIDATES / 1_000_000
        );
    }
    let _ = writeln!(s, "profile: {}", r.profile);
    for w in &r.warnings {
        let _ = writeln!(s, "warning: {w}");
    }
    recommended(&mut s, r);
    alternatives(&mut s, r);
    let rips: Vec<f64> = r.top.iter().map(|t| t.rip).collect();
    if let (Some(hi), Some(lo)) = (rips.iter().cloned().reduce(f64::max), rips.iter().cloned().reduce(f64::min)) {
        let _ = writeln!(
            s,
            "margins: the top {} by objective span rip {:.4} to {:.4} ({:.1}% apart)",
            rips.len(),
            lo,
            hi,
            100.0 * (hi / lo - 1.0)
        );
    }
    s
}
