//! `analyze`: where a model sits on a device's roofline.

use super::{emit, AnalyzeArgs, PrecisionArgs};
use crate::analysis::{analyze, operator_rows, Analysis, OpRow};
use crate::arch::{load_hf_config, Architecture};
use crate::device::{resolve, DeviceProfile};
use crate::dtype::{DType, Precisions};
use crate::error::{Error, Result};
use crate::files::{csv_bytes, json_bytes};
use crate::quality::Tokens;
use crate::report::{analysis_rows, operator_csv_rows, table, Format};
use crate::roofline::{PlanChoice, Scenario};
use crate::workload::{Plan, RunSettings};
use serde::Serialize;

/// A validated `analyze` request.
struct Request {
    models: Vec<Architecture>,
    devices: Vec<DeviceProfile>,
    scenarios: Vec<Scenario>,
    settings: RunSettings,
    plans: PlanChoice,
    tokens: Tokens,
}

impl PrecisionArgs {
    pub fn resolve(&self) -> Result<Precisions> {
        let parse = |flag: &str, s: &str| {
            s.parse::<DType>()
                .map_err(|e| Error::Usage(format!("--{flag}: expected {e}, got '{}'", crate::error::clip(s))))
        };
        let weights = parse("weights", &self.weights)?;
        let activations = parse("activations", &self.activations)?;
        if activations.is_block_quantised() {
            return Err(Error::Usage(format!(
                "--activations: {activations} is a weight-only block format; use f32, f16, bf16 or int8"
            )));
        }
        let kv_cache = match &self.kv {
            Some(s) => parse("kv", s)?,
            None => activations,
        };
        Ok(Precisions { weights, activations, kv_cache })
    }
}

pub(crate) fn scenarios_from(names: &[String], prompt: Option<u32>, generate: Option<u32>) -> Result<Vec<Scenario>> {
    if let (Some(p), Some(g)) = (prompt, generate) {
        return Ok(vec![Scenario::new(format!("p{p}g{g}"), p, g)?]);
    }
    if names.is_empty() || names.iter().any(|n| n.eq_ignore_ascii_case("all")) {
        return Ok(Scenario::all_named());
    }
    names.iter().map(|n| Scenario::named(n)).collect()
}

impl Request {
    fn from_args(a: &AnalyzeArgs) -> Result<Request> {
        let scenarios = scenarios_from(&a.scenario, a.prompt, a.generate)?;
        let precisions = a.precision.resolve()?;
        // With several models, one that cannot be read is skipped with a warning (the others
        // are still worth the answer); with one, its error is the answer.
        let mut models = Vec::new();
        let mut last_error = None;
        for p in &a.model {
            match load_hf_config(p) {
                Ok(m) => models.push(m),
                Err(e) if a.model.len() > 1 => {
                    eprintln!("warning: skipping {}: {e}", p.display());
                    last_error = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        if models.is_empty() {
            return Err(last_error.unwrap_or_else(|| Error::Usage("--model: no model given".into())));
        }
        let devices = a.device.iter().map(|d| resolve(d)).collect::<Result<Vec<_>>>()?;
        let plans = if a.plan == "naive" { PlanChoice::Fixed(Plan::NAIVE) } else { PlanChoice::Fastest };
        let settings = RunSettings { batch: a.batch, precisions, logits_for_all_prompt_tokens: a.logits_all };
        let positive = |flag: &str, v: f64| {
            if v > 0.0 && v.is_finite() {
                Ok(v)
            } else {
                Err(Error::Usage(format!("--{flag}: expected a positive number, got {v}")))
            }
        };
        let tokens = match (a.tokens, a.tokens_per_parameter) {
            (_, Some(k)) => Tokens::PerParameter(positive("tokens-per-parameter", k)?),
            (Some(d), None) => Tokens::Fixed(positive("tokens", d)?),
            (None, None) => Tokens::default(),
        };
        Ok(Request { models, devices, scenarios, settings, plans, tokens })
    }
}

#[derive(Serialize)]
struct JsonEntry<'a> {
    #[serde(flatten)]
    analysis: &'a Analysis,
    #[serde(skip_serializing_if = "Option::is_none")]
    operators: Option<&'a [OpRow]>,
}

pub fn run(args: AnalyzeArgs, out: &mut dyn std::io::Write) -> Result<()> {
    let req = Request::from_args(&args)?;
    let mut results: Vec<(Analysis, Vec<OpRow>)> = Vec::new();
    for arch in &req.models {
        for device in &req.devices {
            for s in &req.scenarios {
                let a = analyze(arch, device, s, &req.settings, req.plans).with_tokens(arch, req.tokens);
                let ops = if args.per_op { operator_rows(arch, device, s, &req.settings, &a) } else { Vec::new() };
                results.push((a, ops));
            }
        }
    }
    // Warnings go to stderr too, so they are seen whatever the format and wherever stdout goes.
    let mut said = std::collections::BTreeSet::new();
    for w in results.iter().flat_map(|(a, _)| a.warnings.iter()) {
        if said.insert(w.clone()) {
            eprintln!("warning: {w}");
        }
    }
    let bytes = match args.format {
        Format::Table => {
            let mut s = String::new();
            if req.models.len() > 1 {
                s.push_str(&table::compact(&results.iter().map(|(a, _)| a).collect::<Vec<_>>()));
                s.push('\n');
            }
            for (a, ops) in &results {
                s.push_str(&table::analysis(a));
                if args.per_op {
                    s.push_str(&table::operators(ops));
                }
                if args.explain_plan {
                    let arch = req.models.iter().find(|m| m.name == a.model).expect("analysed model");
                    let device = req.devices.iter().find(|d| d.name == a.device).expect("analysed device");
                    s.push_str(
                        "  execution plan (attention core of one layer, e-graph extraction by roofline time):\n",
                    );
                    let text = crate::plan::explain_text(
                        arch,
                        device,
                        &req.settings,
                        a.prompt_tokens as f64,
                        (a.prompt_tokens + a.generated_tokens) as f64,
                        &|phase| {
                            crate::analysis::explain_mixers(arch, device, &req.settings, phase, a.prompt_tokens as f64)
                        },
                    );
                    for line in text.lines() {
                        s.push_str("    ");
                        s.push_str(line);
                        s.push('\n');
                    }
                }
                s.push('\n');
            }
            s.into_bytes()
        }
        Format::Csv if args.per_op => {
            csv_bytes(&results.iter().flat_map(|(a, o)| operator_csv_rows(a, o)).collect::<Vec<_>>())
        }
        Format::Csv => csv_bytes(&results.iter().flat_map(|(a, _)| analysis_rows(a)).collect::<Vec<_>>()),
        Format::Json => {
            let entries: Vec<JsonEntry> = results
                .iter()
                .map(|(a, o)| JsonEntry { analysis: a, operators: args.per_op.then_some(o.as_slice()) })
                .collect();
            json_bytes(&entries)
        }
    };
    if let Some(o) = args.out.as_deref() {
        let inputs: Vec<&std::path::Path> =
            args.model.iter().map(|m| m.as_path()).chain(args.device.iter().map(std::path::Path::new)).collect();
        crate::files::write::refuse_input(o, &inputs)?;
    }
    emit(&bytes, args.out.as_deref(), out)
}
