//! `analyze`: where a model sits on a device's roofline.

use super::{emit, AnalyzeArgs, PrecisionArgs};
use crate::analysis::{self, operator_rows, Analysis, JsonEntry, OpRow};
use crate::arch::{load_hf_config, Architecture};
use crate::device::DeviceProfile;
use crate::dtype::Precisions;
use crate::error::{Error, Result};
use crate::files::{csv_bytes, json_bytes};
use crate::report::{analysis_rows, operator_csv_rows, table, Format};

/// A validated `analyze` request.
struct Request {
    models: Vec<Architecture>,
    devices: Vec<DeviceProfile>,
    question: analysis::Request,
}

impl PrecisionArgs {
    pub fn resolve(&self) -> Result<Precisions> {
        Precisions::from_names(&self.weights, &self.activations, self.kv.as_deref())
    }
}

impl Request {
    fn from_args(a: &AnalyzeArgs) -> Result<Request> {
        let question = analysis::Request::new(&analysis::Options {
            scenarios: a.scenario.clone(),
            prompt: a.prompt,
            generate: a.generate,
            batch: a.batch,
            weights: a.precision.weights.clone(),
            activations: a.precision.activations.clone(),
            kv: a.precision.kv.clone(),
            logits_all: a.logits_all,
            plan: a.plan.clone(),
            tokens: a.tokens,
            tokens_per_parameter: a.tokens_per_parameter,
        })?;
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
        let devices = a.device.iter().map(|d| super::device_at(d, a.cpu_threads)).collect::<Result<Vec<_>>>()?;
        Ok(Request { models, devices, question })
    }
}

pub fn run(args: AnalyzeArgs, out: &mut dyn std::io::Write) -> Result<()> {
    let req = Request::from_args(&args)?;
    let q = &req.question;
    let mut results: Vec<(Analysis, Vec<OpRow>)> = Vec::new();
    for arch in &req.models {
        for device in &req.devices {
            let mut ev = q.evaluator(device);
            for s in &q.scenarios {
                let a = q.analyze(&mut ev, arch, s);
                let ops = if args.per_op { operator_rows(arch, device, s, &q.settings, &a) } else { Vec::new() };
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
                        &q.settings,
                        a.prompt_tokens as f64,
                        (a.prompt_tokens + a.generated_tokens) as f64,
                        &|phase| {
                            crate::analysis::explain_mixers(arch, device, &q.settings, phase, a.prompt_tokens as f64)
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
