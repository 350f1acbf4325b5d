//! Output formats: human tables, CSV, JSON, SVG. Files are written whole or not at all.

pub mod check;
pub mod explain;
pub mod folder;
pub mod html;
pub mod plot;
pub mod summary;
pub mod table;

use crate::analysis::{Analysis, PhaseSummary};
use crate::quality::Coverage;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Json,
}

/// One CSV row per phase of an analysis (prefill, decode, whole scenario): every field of the
/// JSON form, the phase's own and the analysis's (footprint fields prefixed `footprint_`).
#[derive(Debug, Clone, Serialize)]
pub struct AnalysisRow<'a> {
    pub model: &'a str,
    pub device: &'a str,
    pub profile: &'a str,
    pub scenario: &'a str,
    pub prompt_tokens: u32,
    pub generated_tokens: u32,
    pub batch: u32,
    pub weights_dtype: &'a str,
    pub activations_dtype: &'a str,
    pub kv_cache_dtype: &'a str,
    pub parameters: u64,
    pub active_parameters: u64,
    pub kv_bytes_per_token: f64,
    pub peak_flop_per_s: f64,
    pub bandwidth_bytes_per_s: f64,
    pub phase: &'a str,
    pub plan: &'a str,
    pub flops: f64,
    pub bytes: f64,
    pub time_s: f64,
    pub intensity_flop_per_byte: f64,
    pub performance_flop_per_s: f64,
    pub ridge_flop_per_byte: f64,
    pub bound: &'a str,
    pub phi_paper: f64,
    pub phi_log: f64,
    pub rip: f64,
    pub attainment: f64,
    pub ttft_s: f64,
    pub tpot_s: f64,
    pub prefill_tokens_per_s: f64,
    pub decode_tokens_per_s: f64,
    /// The profile's error band around the rates (empty without one).
    pub band_coverage: Option<f64>,
    pub prefill_tokens_per_s_low: Option<f64>,
    pub prefill_tokens_per_s_high: Option<f64>,
    pub decode_tokens_per_s_low: Option<f64>,
    pub decode_tokens_per_s_high: Option<f64>,
    pub band_basis: Option<&'a str>,
    pub check_command: Option<&'a str>,
    pub footprint_bytes: f64,
    pub footprint_weights_bytes: f64,
    pub footprint_kv_cache_bytes: f64,
    pub footprint_workspace_bytes: f64,
    pub usable_memory_bytes: f64,
    pub fits: bool,
    pub non_embedding_params: u64,
    /// Training tokens the loss assumes.
    pub tokens: f64,
    /// Predicted pre-training loss, nats per token.
    pub predicted_loss: f64,
    pub estimate_range: Coverage,
    /// The prediction's warnings, joined by " | ".
    pub warnings: String,
}

pub fn analysis_rows(a: &Analysis) -> Vec<AnalysisRow<'_>> {
    let row = |p| phase_row(a, p);
    vec![row(&a.prefill), row(&a.decode), row(&a.scenario_point)]
}

fn phase_row<'a>(a: &'a Analysis, p: &'a PhaseSummary) -> AnalysisRow<'a> {
    let band = a.error_band.as_ref();
    AnalysisRow {
        model: &a.model,
        device: &a.device,
        profile: &a.profile,
        scenario: &a.scenario,
        prompt_tokens: a.prompt_tokens,
        generated_tokens: a.generated_tokens,
        batch: a.batch,
        weights_dtype: &a.weights_dtype,
        activations_dtype: &a.activations_dtype,
        kv_cache_dtype: &a.kv_cache_dtype,
        parameters: a.parameters,
        active_parameters: a.active_parameters,
        kv_bytes_per_token: a.kv_bytes_per_token,
        peak_flop_per_s: a.peak_flop_per_s,
        bandwidth_bytes_per_s: a.bandwidth_bytes_per_s,
        phase: p.phase,
        plan: &p.plan,
        flops: p.flops,
        bytes: p.bytes,
        time_s: p.time_s,
        intensity_flop_per_byte: p.intensity_flop_per_byte,
        performance_flop_per_s: p.performance_flop_per_s,
        ridge_flop_per_byte: a.ridge_flop_per_byte,
        bound: p.bound,
        phi_paper: p.phi_paper,
        phi_log: p.phi_log,
        rip: p.rip,
        attainment: p.attainment,
        ttft_s: a.ttft_s,
        tpot_s: a.tpot_s,
        prefill_tokens_per_s: a.prefill_tokens_per_s,
        decode_tokens_per_s: a.decode_tokens_per_s,
        band_coverage: band.map(|b| b.coverage),
        prefill_tokens_per_s_low: band.and_then(|b| b.prefill_tokens_per_s).map(|r| r[0]),
        prefill_tokens_per_s_high: band.and_then(|b| b.prefill_tokens_per_s).map(|r| r[1]),
        decode_tokens_per_s_low: band.and_then(|b| b.decode_tokens_per_s).map(|r| r[0]),
        decode_tokens_per_s_high: band.and_then(|b| b.decode_tokens_per_s).map(|r| r[1]),
        band_basis: band.map(|b| b.basis.as_str()),
        check_command: a.check_command.as_deref(),
        footprint_bytes: a.footprint.total_bytes,
        footprint_weights_bytes: a.footprint.weights_bytes,
        footprint_kv_cache_bytes: a.footprint.kv_cache_bytes,
        footprint_workspace_bytes: a.footprint.workspace_bytes,
        usable_memory_bytes: a.footprint.usable_bytes,
        fits: a.footprint.fits,
        non_embedding_params: a.quality.non_embedding_params,
        tokens: a.quality.tokens,
        predicted_loss: a.quality.predicted_loss,
        estimate_range: a.quality.estimate_range,
        warnings: a.warnings.join(crate::analysis::WARNINGS_JOINED_BY),
    }
}

/// One CSV row of `analyze --per-op`: an operator's share of a phase, or (`op` = "total",
/// `class` = "phase") the phase itself, so the operator rows can be checked against their sum.
#[derive(Debug, Clone, Serialize)]
pub struct OperatorCsvRow<'a> {
    pub model: &'a str,
    pub device: &'a str,
    pub scenario: &'a str,
    pub phase: &'a str,
    pub op: &'a str,
    pub class: &'a str,
    /// Layers that run it (empty on phase rows).
    pub layers: Option<u32>,
    pub compute_dtype: &'a str,
    pub flops: f64,
    /// Bytes to and from memory: the sum of the five kinds on operator rows.
    pub bytes: f64,
    pub weight_bytes: Option<f64>,
    pub act_read_bytes: Option<f64>,
    pub act_write_bytes: Option<f64>,
    pub kv_read_bytes: Option<f64>,
    pub kv_write_bytes: Option<f64>,
    pub time_s: f64,
    pub bound: &'a str,
    pub share_of_phase_time: f64,
    /// The plan of the phase (phase rows).
    pub plan: &'a str,
}

/// Phase rows and their operator rows, phase by phase.
pub fn operator_csv_rows<'a>(a: &'a Analysis, ops: &'a [crate::analysis::OpRow]) -> Vec<OperatorCsvRow<'a>> {
    let mut rows = Vec::new();
    for p in [&a.prefill, &a.decode] {
        rows.push(OperatorCsvRow {
            model: &a.model,
            device: &a.device,
            scenario: &a.scenario,
            phase: p.phase,
            op: "total",
            class: "phase",
            layers: None,
            compute_dtype: &a.activations_dtype,
            flops: p.flops,
            bytes: p.bytes,
            weight_bytes: None,
            act_read_bytes: None,
            act_write_bytes: None,
            kv_read_bytes: None,
            kv_write_bytes: None,
            time_s: p.time_s,
            bound: p.bound,
            share_of_phase_time: 1.0,
            plan: &p.plan,
        });
        for o in ops.iter().filter(|o| o.phase == p.phase) {
            rows.push(OperatorCsvRow {
                model: &o.model,
                device: &o.device,
                scenario: &o.scenario,
                phase: o.phase,
                op: o.op,
                class: o.class,
                layers: Some(o.layers),
                compute_dtype: &o.compute_dtype,
                flops: o.flops,
                bytes: o.weight_bytes + o.act_read_bytes + o.act_write_bytes + o.kv_read_bytes + o.kv_write_bytes,
                weight_bytes: Some(o.weight_bytes),
                act_read_bytes: Some(o.act_read_bytes),
                act_write_bytes: Some(o.act_write_bytes),
                kv_read_bytes: Some(o.kv_read_bytes),
                kv_write_bytes: Some(o.kv_write_bytes),
                time_s: o.time_s,
                bound: o.bound,
                share_of_phase_time: o.share_of_phase_time,
                plan: "",
            });
        }
    }
    rows
}
