//! One model on one device for one scenario: every figure a person asks for, from one
//! evaluation (the fastest plan per phase unless a plan is fixed).

use crate::arch::Architecture;
use crate::device::DeviceProfile;
use crate::quality::{estimate, Estimate, LossModel, Tokens};
use crate::roofline::{
    decode_contexts, footprint, potential, Evaluator, Footprint, PlanChoice, Point, Roof, Scenario, ScenarioEval,
};
use crate::workload::{operators, Phase, Plan, RunSettings};
use serde::Serialize;

pub mod columns;

/// A phase's (or a whole scenario's) point on the roofline and its potential.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseSummary {
    pub phase: &'static str,
    /// The execution plan evaluated (for the scenario row: prefill plan / decode plan).
    pub plan: String,
    pub flops: f64,
    pub bytes: f64,
    pub time_s: f64,
    pub intensity_flop_per_byte: f64,
    pub performance_flop_per_s: f64,
    pub bound: &'static str,
    pub phi_paper: f64,
    pub phi_log: f64,
    pub rip: f64,
    pub attainment: f64,
}

impl PhaseSummary {
    fn new(phase: &'static str, plan: String, point: Point, roof: &Roof) -> Self {
        let m = potential(&point, roof);
        PhaseSummary {
            phase,
            plan,
            flops: point.flops,
            bytes: point.bytes,
            time_s: point.time_s,
            intensity_flop_per_byte: point.intensity_flop_per_byte(),
            performance_flop_per_s: point.performance_flop_per_s(),
            bound: m.bound.name(),
            phi_paper: m.phi_paper,
            phi_log: m.phi_log,
            rip: m.rip,
            attainment: m.attainment,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Analysis {
    pub model: String,
    pub device: String,
    /// Which kind of profile produced the figures: "upper bound (datasheet)", "expected
    /// (llama.cpp, fitted from N public runs)", "calibrated here (llama.cpp)".
    pub profile: String,
    /// Traps this prediction falls into (see [`crate::warnings`]), one line each.
    pub warnings: Vec<String>,
    pub scenario: String,
    pub prompt_tokens: u32,
    pub generated_tokens: u32,
    pub batch: u32,
    pub weights_dtype: String,
    pub activations_dtype: String,
    pub kv_cache_dtype: String,
    pub parameters: u64,
    pub active_parameters: u64,
    pub kv_bytes_per_token: f64,
    pub peak_flop_per_s: f64,
    pub bandwidth_bytes_per_s: f64,
    pub ridge_flop_per_byte: f64,
    /// Time to first token: the prefill.
    pub ttft_s: f64,
    /// Mean time per decode step.
    pub tpot_s: f64,
    pub prefill_tokens_per_s: f64,
    pub decode_tokens_per_s: f64,
    /// Where measured tokens/s should fall, from the profile's error bands; None on profiles
    /// without (upper bounds, fits too thin to have any).
    pub error_band: Option<RateBand>,
    /// The llama-bench command that measures these figures on the device (profiles of
    /// llama.cpp, one sequence).
    pub check_command: Option<String>,
    pub prefill: PhaseSummary,
    pub decode: PhaseSummary,
    pub scenario_point: PhaseSummary,
    pub footprint: Footprint,
    /// Non-embedding parameters, training tokens and predicted loss (default tokens unless
    /// [`Analysis::with_tokens`] says otherwise).
    #[serde(flatten)]
    pub quality: Estimate,
    #[serde(skip)]
    pub plans: (Plan, Plan),
}

/// The profile's band around a prediction's rates: [low, high] tokens/s per phase.
#[derive(Debug, Clone, Serialize)]
pub struct RateBand {
    /// Share of runs the band is built to hold.
    pub coverage: f64,
    pub prefill_tokens_per_s: Option<[f64; 2]>,
    pub decode_tokens_per_s: Option<[f64; 2]>,
    /// What the band rests on (the profile's kind, how the runs were predicted unfitted).
    pub basis: String,
}

impl RateBand {
    fn of(device: &DeviceProfile, prefill_tokens_per_s: f64, decode_tokens_per_s: f64) -> Option<RateBand> {
        let b = device.error_bands.as_ref()?;
        let around = |band: Option<crate::device::Band>, rate: f64| band.map(|b| b.around(rate).into());
        Some(RateBand {
            coverage: b.coverage,
            prefill_tokens_per_s: around(b.prefill, prefill_tokens_per_s),
            decode_tokens_per_s: around(b.decode, decode_tokens_per_s),
            basis: band_basis(device)?,
        })
    }
}

/// What a profile's bands rest on, naming the profile: the same for every model it prices.
pub fn band_basis(device: &DeviceProfile) -> Option<String> {
    let b = device.error_bands.as_ref()?;
    Some(format!("{} profile {}: {}", device.kind_label(), device.name, b.basis))
}

/// `llama-bench` measuring a scenario on the device: pp{prompt} from an empty cache is the
/// prefill, tg{generate} at depth {prompt} the decode (it decodes through the same contexts).
/// Only for llama.cpp profiles and one sequence (llama-bench decodes one).
pub fn check_command(
    device: &DeviceProfile,
    model: &str,
    weights: &str,
    scenario: &Scenario,
    batch: u32,
) -> Option<String> {
    let engine = device.engine.as_ref().filter(|e| e.name == "llama.cpp")?;
    if batch != 1 {
        return None;
    }
    let mut c = format!(
        "llama-bench -m {model}.{weights}.gguf -p {} -n {} -d 0,{} -r 5",
        scenario.prompt, scenario.generate, scenario.prompt
    );
    match engine.threads {
        Some(t) => c.push_str(&format!(" -t {t}")),
        None => c.push_str(" -ngl 99"),
    }
    c.push_str(&format!(" (compare pp{} at d0 and tg{} at d{})", scenario.prompt, scenario.generate, scenario.prompt));
    Some(c)
}

impl Analysis {
    /// The same analysis with the loss estimated for `tokens` of training.
    pub fn with_tokens(mut self, arch: &Architecture, tokens: Tokens) -> Self {
        self.quality = estimate(arch, tokens);
        self
    }
}

pub fn analyze(
    arch: &Architecture,
    device: &DeviceProfile,
    scenario: &Scenario,
    settings: &RunSettings,
    plans: PlanChoice,
) -> Analysis {
    analyze_with(&mut Evaluator::new(device, *settings, plans), arch, scenario)
}

/// Every number of one analysis, before any text is made: [`Analysis`] and the column path
/// ([`columns`]) both start from it, so their figures agree bit for bit.
#[derive(Debug, Clone, Copy)]
pub struct Figures {
    pub eval: ScenarioEval,
    pub roof: Roof,
    pub parameters: u64,
    pub active_parameters: u64,
    pub kv_bytes_per_token: f64,
    pub ttft_s: f64,
    pub tpot_s: f64,
    pub prefill_tokens_per_s: f64,
    pub decode_tokens_per_s: f64,
    pub footprint: Footprint,
    pub quality: Estimate,
}

impl Figures {
    /// `arch` in `scenario` on the evaluator's device, the loss from `loss`.
    pub fn of(ev: &mut Evaluator, arch: &Architecture, scenario: &Scenario, loss: &LossModel) -> Figures {
        let device = ev.device;
        let eval = ev.scenario(arch, scenario);
        // The settings the device really runs (an engine fixes its activation and KV formats).
        let settings = &ev.settings;
        let b = settings.batch as f64;
        let parameters = arch.parameters();
        Figures {
            eval,
            roof: Roof::of(device, settings),
            parameters,
            active_parameters: arch.active_parameters(),
            kv_bytes_per_token: arch.kv_elements_per_token() as f64 * settings.precisions.kv_cache.bytes(),
            ttft_s: eval.prefill.point.time_s,
            tpot_s: eval.decode.point.time_s / scenario.generate as f64,
            prefill_tokens_per_s: b * scenario.prompt as f64 / eval.prefill.point.time_s,
            decode_tokens_per_s: b * scenario.generate as f64 / eval.decode.point.time_s,
            footprint: footprint(arch, scenario, settings, eval.prefill.live_bytes, device),
            quality: loss.estimate_of(arch, parameters),
        }
    }

    /// The point of a phase row: prefill, decode, or the whole scenario.
    pub fn point(&self, row: PhaseRow) -> Point {
        match row {
            PhaseRow::Prefill => self.eval.prefill.point,
            PhaseRow::Decode => self.eval.decode.point,
            PhaseRow::Scenario => self.eval.total(),
        }
    }
}

/// The rows `analyze --format csv` writes per analysis, in its order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhaseRow {
    Prefill,
    Decode,
    Scenario,
}

impl PhaseRow {
    pub const ALL: [PhaseRow; 3] = [PhaseRow::Prefill, PhaseRow::Decode, PhaseRow::Scenario];

    pub fn name(self) -> &'static str {
        match self {
            PhaseRow::Prefill => "prefill",
            PhaseRow::Decode => "decode",
            PhaseRow::Scenario => "scenario",
        }
    }

    /// `phase` as a person names it; errors name the argument `what`.
    pub fn named(phase: &str, what: &str) -> crate::Result<PhaseRow> {
        PhaseRow::ALL.into_iter().find(|r| r.name() == phase).ok_or_else(|| {
            crate::Error::Usage(format!(
                "{what}: expected prefill, decode or scenario, got '{}'",
                crate::error::clip(phase)
            ))
        })
    }

    /// The plan label of this row: a phase's own, or prefill's and decode's for the scenario.
    pub fn plan_label(self, arch: &Architecture, (prefill, decode): (Plan, Plan)) -> String {
        match self {
            PhaseRow::Prefill => prefill.label(arch),
            PhaseRow::Decode => decode.label(arch),
            PhaseRow::Scenario => format!("{} / {}", prefill.label(arch), decode.label(arch)),
        }
    }
}

/// [`analyze`] with an evaluator made once for many models: making one chooses the device's
/// elementwise plan by e-graph (tens of microseconds), far more than an analysis takes.
pub fn analyze_with(ev: &mut Evaluator, arch: &Architecture, scenario: &Scenario) -> Analysis {
    analysis_of(ev, arch, scenario, &LossModel::new(Tokens::default()))
}

/// The traps an analysis falls into (see [`crate::warnings`]), one line each.
pub fn warnings_of(ev: &Evaluator, arch: &Architecture, scenario: &Scenario) -> Vec<String> {
    let context = (scenario.prompt + scenario.generate) as u64;
    crate::warnings::check(ev.device, &crate::warnings::Run::of(arch, ev.settings.precisions.compute(), context))
}

/// How a CSV row (and a `predict` column) joins an analysis's warnings into one cell.
pub const WARNINGS_JOINED_BY: &str = " | ";

fn analysis_of(ev: &mut Evaluator, arch: &Architecture, scenario: &Scenario, loss: &LossModel) -> Analysis {
    let f = Figures::of(ev, arch, scenario, loss);
    let device = ev.device;
    let settings = &ev.settings;
    let plans = (f.eval.prefill.plan, f.eval.decode.plan);
    let p = &settings.precisions;
    let warnings = warnings_of(ev, arch, scenario);
    let phase = |row: PhaseRow| PhaseSummary::new(row.name(), row.plan_label(arch, plans), f.point(row), &f.roof);
    Analysis {
        profile: device.kind_label(),
        warnings,
        model: arch.name.clone(),
        device: device.name.clone(),
        scenario: scenario.name.clone(),
        prompt_tokens: scenario.prompt,
        generated_tokens: scenario.generate,
        batch: settings.batch,
        weights_dtype: p.weights.to_string(),
        activations_dtype: p.activations.to_string(),
        kv_cache_dtype: p.kv_cache.to_string(),
        parameters: f.parameters,
        active_parameters: f.active_parameters,
        kv_bytes_per_token: f.kv_bytes_per_token,
        peak_flop_per_s: f.roof.peak_flop_per_s,
        bandwidth_bytes_per_s: f.roof.bandwidth_bytes_per_s,
        ridge_flop_per_byte: f.roof.ridge_flop_per_byte(),
        ttft_s: f.ttft_s,
        tpot_s: f.tpot_s,
        prefill_tokens_per_s: f.prefill_tokens_per_s,
        decode_tokens_per_s: f.decode_tokens_per_s,
        error_band: RateBand::of(device, f.prefill_tokens_per_s, f.decode_tokens_per_s),
        check_command: check_command(device, &arch.name, &p.weights.to_string(), scenario, settings.batch),
        prefill: phase(PhaseRow::Prefill),
        decode: phase(PhaseRow::Decode),
        scenario_point: phase(PhaseRow::Scenario),
        footprint: f.footprint,
        quality: f.quality,
        plans,
    }
}

/// One entry of `analyze --format json`: the analysis, and its operator rows when asked for.
#[derive(Serialize)]
pub struct JsonEntry<'a> {
    #[serde(flatten)]
    pub analysis: &'a Analysis,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operators: Option<&'a [OpRow]>,
}

/// An `analyze` request as a person gives it, before it is checked: the command line's flags
/// and the Python binding's keywords, with the command line's defaults.
#[derive(Debug, Clone)]
pub struct Options {
    /// siso, silo, liso, lilo or all; none means all.
    pub scenarios: Vec<String>,
    /// A custom scenario's prompt tokens (with `generate`).
    pub prompt: Option<u32>,
    /// A custom scenario's generated tokens (with `prompt`).
    pub generate: Option<u32>,
    /// Sequences decoded together, at least 1.
    pub batch: u32,
    pub weights: String,
    pub activations: String,
    /// The KV cache's format; the activations' when absent.
    pub kv: Option<String>,
    pub logits_all: bool,
    /// `best` (the fastest plan per phase) or `naive`.
    pub plan: String,
    /// Training tokens for the predicted loss (default 2e12).
    pub tokens: Option<f64>,
    /// Training tokens per parameter, instead of `tokens`.
    pub tokens_per_parameter: Option<f64>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            scenarios: Vec::new(),
            prompt: None,
            generate: None,
            batch: 1,
            weights: "bf16".into(),
            activations: "bf16".into(),
            kv: None,
            logits_all: false,
            plan: "best".into(),
            tokens: None,
            tokens_per_parameter: None,
        }
    }
}

/// A checked `analyze` request: what every model is evaluated with on each device.
#[derive(Debug, Clone)]
pub struct Request {
    pub scenarios: Vec<Scenario>,
    pub settings: RunSettings,
    pub plans: PlanChoice,
    pub tokens: Tokens,
}

impl Request {
    /// Checks `o`; errors name the flag, as the command line prints them.
    pub fn new(o: &Options) -> crate::Result<Request> {
        use crate::error::Error;
        let scenarios = Scenario::select(&o.scenarios, o.prompt, o.generate)?;
        let precisions = crate::dtype::Precisions::from_names(&o.weights, &o.activations, o.kv.as_deref())?;
        if o.batch == 0 {
            return Err(Error::Usage("--batch: expected at least 1 sequence, got 0".into()));
        }
        let plans = match o.plan.as_str() {
            "naive" => PlanChoice::Fixed(Plan::NAIVE),
            "best" => PlanChoice::Fastest,
            other => {
                return Err(Error::Usage(format!(
                    "--plan: expected best or naive, got '{}'",
                    crate::error::clip(other)
                )))
            }
        };
        let settings = RunSettings { batch: o.batch, precisions, logits_for_all_prompt_tokens: o.logits_all };
        let positive = |flag: &str, v: f64| {
            if v > 0.0 && v.is_finite() {
                Ok(v)
            } else {
                Err(Error::Usage(format!("--{flag}: expected a positive number, got {v}")))
            }
        };
        let tokens = match (o.tokens, o.tokens_per_parameter) {
            (Some(_), Some(_)) => {
                return Err(Error::Usage("--tokens: give --tokens or --tokens-per-parameter, not both".into()))
            }
            (_, Some(k)) => Tokens::PerParameter(positive("tokens-per-parameter", k)?),
            (Some(d), None) => Tokens::Fixed(positive("tokens", d)?),
            (None, None) => Tokens::default(),
        };
        Ok(Request { scenarios, settings, plans, tokens })
    }

    /// An evaluator for `device` under this request's settings, to reuse across models.
    pub fn evaluator<'a>(&self, device: &'a DeviceProfile) -> Evaluator<'a> {
        Evaluator::new(device, self.settings, self.plans)
    }

    /// `arch` in `scenario` on the evaluator's device, the loss for this request's tokens.
    pub fn analyze(&self, ev: &mut Evaluator, arch: &Architecture, scenario: &Scenario) -> Analysis {
        analysis_of(ev, arch, scenario, &LossModel::new(self.tokens))
    }
}

/// One operator's share of a phase (decode: summed over every step of the scenario).
#[derive(Debug, Clone, Serialize)]
pub struct OpRow {
    pub model: String,
    pub device: String,
    pub scenario: String,
    pub phase: &'static str,
    pub op: &'static str,
    pub class: &'static str,
    /// Layers that run it (1 for embedding, final norm and LM head).
    pub layers: u32,
    pub compute_dtype: String,
    pub flops: f64,
    pub weight_bytes: f64,
    pub act_read_bytes: f64,
    pub act_write_bytes: f64,
    pub kv_read_bytes: f64,
    pub kv_write_bytes: f64,
    pub time_s: f64,
    pub bound: &'static str,
    pub share_of_phase_time: f64,
}

/// Per-operator rows for an analysis, under the plans it chose.
pub fn operator_rows(
    arch: &Architecture,
    device: &DeviceProfile,
    scenario: &Scenario,
    settings: &RunSettings,
    a: &Analysis,
) -> Vec<OpRow> {
    let mut rows = Vec::new();
    let (first, last) = decode_contexts(scenario);
    let phases = [
        ("prefill", Phase::Prefill { prompt: scenario.prompt }, a.plans.0, (0.0, 0.0), a.prefill.time_s),
        ("decode", Phase::Decode, a.plans.1, (first, last), a.decode.time_s),
    ];
    let miss = crate::roofline::weight_miss_of(arch, &arch.layer_groups(), settings.precisions.weights, device);
    for (name, phase, plan, (lo, hi), phase_time) in phases {
        for op in operators(arch, phase, settings, plan) {
            let t = crate::roofline::op_totals_missing(&op, device, miss, lo, hi);
            // Sum each byte kind over the same contexts as the totals (a window saturates).
            let (pieces, n) = op.pieces(lo, hi);
            let sum = |kind: fn(&crate::workload::Operator) -> crate::workload::Linear| {
                op.count as f64 * pieces[..n].iter().map(|(p, a, b)| kind(p).sum(*a, *b)).sum::<f64>()
            };
            rows.push(OpRow {
                model: arch.name.clone(),
                device: device.name.clone(),
                scenario: scenario.name.clone(),
                phase: name,
                op: op.name,
                class: op.class.name(),
                layers: op.count,
                compute_dtype: op.compute.to_string(),
                flops: t.point.flops,
                weight_bytes: sum(|o| o.weight_bytes),
                act_read_bytes: sum(|o| o.act_read_bytes),
                act_write_bytes: sum(|o| o.act_write_bytes),
                kv_read_bytes: sum(|o| o.kv_read_bytes),
                kv_write_bytes: sum(|o| o.kv_write_bytes),
                time_s: t.point.time_s,
                bound: if t.compute_bound_s * 2.0 >= t.point.time_s { "compute" } else { "memory" },
                share_of_phase_time: t.point.time_s / phase_time,
            });
        }
    }
    rows
}

/// `analyze --explain-plan` for convolution and recurrent mixers, which have no plan to
/// choose: their kernels in `phase`, each one's time per layer on the device, and the state
/// they carry.
pub fn explain_mixers(
    arch: &Architecture,
    device: &DeviceProfile,
    settings: &RunSettings,
    phase: &str,
    prompt: f64,
) -> String {
    use crate::arch::Mixer;
    use std::fmt::Write as _;
    let mut s = String::new();
    let (workload_phase, n) = match phase {
        "prefill" => (Phase::Prefill { prompt: prompt as u32 }, 0.0),
        _ => (Phase::Decode, prompt + 1.0),
    };
    let h = arch.hidden_size as u64;
    for &(layer, count) in arch.layer_groups().as_slice().iter().filter(|(l, _)| !l.mixer.is_attention()) {
        let prefix = match layer.mixer {
            Mixer::ShortConv { .. } => "conv",
            Mixer::DeltaNet(_) => "deltanet",
            Mixer::Mamba2(_) => "mamba",
            Mixer::Global | Mixer::Window { .. } => continue,
        };
        let one = Architecture { num_layers: 1, layers: vec![layer], ..arch.clone() };
        let ops = operators(&one, workload_phase, settings, Plan::NAIVE);
        let kernels: Vec<(&str, f64)> = ops
            .iter()
            .filter(|o| o.name.starts_with(prefix) || o.name == "short_conv")
            .map(|o| (o.name, crate::roofline::launch_time_s(o, device, n)))
            .collect();
        let total: f64 = kernels.iter().map(|(_, t)| t).sum();
        let shares: Vec<String> = kernels
            .iter()
            .map(|(name, t)| format!("{name} {:.0}%", 100.0 * t / total.max(f64::MIN_POSITIVE)))
            .collect();
        let _ = writeln!(
            s,
            "{phase}: {count} {} layers, no attention core: {} kernels in {total:.3e} s per layer ({}); state {} per sequence, read and written once per pass",
            layer.mixer.label(),
            kernels.len(),
            shares.join(", "),
            crate::units::si(layer.mixer.state_elements(h) as f64 * crate::workload::STATE_BYTES, "B"),
        );
    }
    s
}
