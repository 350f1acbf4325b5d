//! A search's `summary.md`.

use super::explain::explain;
use crate::search::{SearchReport, SearchSpace};
use crate::units::si;
use std::fmt::Write as _;

pub fn summary_markdown(r: &SearchReport, space: &SearchSpace) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Search `{}` on `{}`\n", r.space, r.device);
    if !space.description.is_empty() {
        let _ = writeln!(s, "{}\n", space.description);
    }
    let mix: Vec<String> = space
        .workload
        .mix
        .iter()
        .map(|(sc, w)| format!("{} ({}/{}) x {:.2}", sc.name, sc.prompt, sc.generate, w))
        .collect();
    let _ = writeln!(
        s,
        "Workload: {}, batch {}. Objective: {}.\n",
        mix.join(" + "),
        space.workload.batch,
        r.objective.describe()
    );
    let _ = writeln!(
        s,
        "Quality: predicted pre-training loss from scaling laws (Besiroglu et al. 2024, corrected for aspect ratio by Bian et al. 2025), {}.\n",
        match space.tokens {
            crate::quality::Tokens::Fixed(d) => format!("{} training tokens for every candidate", si(d, "")),
            crate::quality::Tokens::PerParameter(k) => format!("{k} training tokens per parameter"),
        }
    );
    let _ = writeln!(s, "```\n{}```\n", explain(r));
    let _ = writeln!(s, "## Candidates\n\n| outcome | count |\n|---|---:|");
    let _ = writeln!(s, "| enumerated | {} |\n| feasible | {} |", r.outcome.candidates, r.outcome.feasible);
    for (k, v) in &r.outcome.invalid {
        let _ = writeln!(s, "| skipped: {k} | {v} |");
    }
    for (k, v) in &r.outcome.rejected {
        let _ = writeln!(s, "| rejected by {k} | {v} |");
    }
    let _ = writeln!(
        s,
        "\n## Top {} by objective\n\n| candidate | params | rip | decode tok/s | TTFT | memory | regime | predicted loss |\n|---|---:|---:|---:|---:|---:|---|---:|",
        r.top.len()
    );
    for t in &r.top {
        let _ = writeln!(
            s,
            "| {}{} | {} | {:.4} | {:.1} | {} | {} | {} | {:.4} |",
            t.label(),
            if t.index == r.recommended.index { " (recommended)" } else { "" },
            si(t.parameters as f64, ""),
            t.rip,
            t.decode_tokens_per_s,
            si(t.ttft_s, "s"),
            si(t.footprint_bytes, "B"),
            t.regime,
            t.predicted_loss
        );
    }
    let _ = writeln!(
        s,
        "\nThe Pareto front (rip, parameters, decode tokens/s up; memory and predicted loss down) has {} members: `pareto.csv`; `quality.svg` plots their predicted loss against decode tokens/s.",
        r.outcome.front.len()
    );
    if let Some(res) = r.outcome.front_resolution {
        let _ = writeln!(
            s,
            "The space is too large to keep its exact front in bounded memory: the front is thinned to one member per box {}% wide in every objective (an epsilon-Pareto archive: a candidate within 0.5% of a member in every objective may be left out).",
            res * 100.0
        );
    }
    s
}
