//! `analyze --format csv`'s rows for many models at once, as typed columns (what the Python
//! package's `predict` returns). Each model is scored in parallel by the evaluator the search
//! uses, into the same [`Figures`] an [`super::Analysis`] is made of, so every value equals
//! `analyze`'s bit for bit; only the columns asked for are filled, and text is made only where
//! a column needs it (a whole analysis per model made `predict` five times slower).

use super::{check_command, warnings_of, Figures, PhaseRow, Request, WARNINGS_JOINED_BY};
use crate::arch::Architecture;
use crate::device::DeviceProfile;
use crate::error::{Error, Result};
use crate::quality::LossModel;
use crate::roofline::{potential, Evaluator, Potential};
use rayon::prelude::*;
use std::borrow::Cow;
use std::sync::Mutex;

/// What a column holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    F64,
    U64,
    Bool,
    Text,
    /// Empty where the profile has nothing to give (its error band, its check command).
    MaybeF64,
    MaybeText,
}

macro_rules! columns {
    ($($variant:ident = $name:literal $kind:ident),* $(,)?) => {
        /// A column of `analyze --format csv`, in its order (the fields of
        /// [`crate::report::AnalysisRow`]), then `index`: the model's position in the input.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Column { $($variant),* }

        impl Column {
            pub const ALL: &'static [Column] = &[$(Column::$variant),*];

            pub fn name(self) -> &'static str {
                match self { $(Column::$variant => $name),* }
            }

            pub fn kind(self) -> Kind {
                match self { $(Column::$variant => Kind::$kind),* }
            }
        }
    };
}

columns! {
    Model = "model" Text,
    Device = "device" Text,
    Profile = "profile" Text,
    Scenario = "scenario" Text,
    PromptTokens = "prompt_tokens" U64,
    GeneratedTokens = "generated_tokens" U64,
    Batch = "batch" U64,
    WeightsDtype = "weights_dtype" Text,
    ActivationsDtype = "activations_dtype" Text,
    KvCacheDtype = "kv_cache_dtype" Text,
    Parameters = "parameters" U64,
    ActiveParameters = "active_parameters" U64,
    KvBytesPerToken = "kv_bytes_per_token" F64,
    PeakFlopPerS = "peak_flop_per_s" F64,
    BandwidthBytesPerS = "bandwidth_bytes_per_s" F64,
    Phase = "phase" Text,
    Plan = "plan" Text,
    Flops = "flops" F64,
    Bytes = "bytes" F64,
    TimeS = "time_s" F64,
    IntensityFlopPerByte = "intensity_flop_per_byte" F64,
    PerformanceFlopPerS = "performance_flop_per_s" F64,
    RidgeFlopPerByte = "ridge_flop_per_byte" F64,
    Bound = "bound" Text,
    PhiPaper = "phi_paper" F64,
    PhiLog = "phi_log" F64,
    Rip = "rip" F64,
    Attainment = "attainment" F64,
    TtftS = "ttft_s" F64,
    TpotS = "tpot_s" F64,
    PrefillTokensPerS = "prefill_tokens_per_s" F64,
    DecodeTokensPerS = "decode_tokens_per_s" F64,
    BandCoverage = "band_coverage" MaybeF64,
    PrefillTokensPerSLow = "prefill_tokens_per_s_low" MaybeF64,
    PrefillTokensPerSHigh = "prefill_tokens_per_s_high" MaybeF64,
    DecodeTokensPerSLow = "decode_tokens_per_s_low" MaybeF64,
    DecodeTokensPerSHigh = "decode_tokens_per_s_high" MaybeF64,
    BandBasis = "band_basis" MaybeText,
    CheckCommand = "check_command" MaybeText,
    FootprintBytes = "footprint_bytes" F64,
    FootprintWeightsBytes = "footprint_weights_bytes" F64,
    FootprintKvCacheBytes = "footprint_kv_cache_bytes" F64,
    FootprintWorkspaceBytes = "footprint_workspace_bytes" F64,
    UsableMemoryBytes = "usable_memory_bytes" F64,
    Fits = "fits" Bool,
    NonEmbeddingParams = "non_embedding_params" U64,
    Tokens = "tokens" F64,
    PredictedLoss = "predicted_loss" F64,
    EstimateRange = "estimate_range" Text,
    Warnings = "warnings" Text,
    Index = "index" U64,
}

impl Column {
    /// The columns named, in the order given; every column when `None`.
    pub fn select(names: Option<&[String]>) -> Result<Vec<Column>> {
        let Some(names) = names else { return Ok(Column::ALL.to_vec()) };
        names
            .iter()
            .map(|n| {
                Column::ALL.iter().copied().find(|c| c.name() == n).ok_or_else(|| {
                    let all: Vec<&str> = Column::ALL.iter().map(|c| c.name()).collect();
                    Error::Usage(format!(
                        "columns: no column '{}' (the columns are {})",
                        crate::error::clip(n),
                        all.join(", ")
                    ))
                })
            })
            .collect()
    }

    /// Whether the column needs the row's potential (a few logarithms).
    fn needs_potential(self) -> bool {
        matches!(self, Column::Bound | Column::PhiPaper | Column::PhiLog | Column::Rip | Column::Attainment)
    }
}

/// One column's values, a row per model and scenario.
#[derive(Debug, Clone, PartialEq)]
pub enum Values<'a> {
    F64(Vec<f64>),
    U64(Vec<u64>),
    Bool(Vec<bool>),
    /// Borrowed where the text is the same on many rows (the device, the scenario, a loaded
    /// model's name), made per row otherwise (plans, warnings).
    Text(Vec<Cow<'a, str>>),
    MaybeF64(Vec<Option<f64>>),
    MaybeText(Vec<Option<Cow<'a, str>>>),
}

impl<'a> Values<'a> {
    fn with_capacity(kind: Kind, n: usize) -> Self {
        match kind {
            Kind::F64 => Values::F64(Vec::with_capacity(n)),
            Kind::U64 => Values::U64(Vec::with_capacity(n)),
            Kind::Bool => Values::Bool(Vec::with_capacity(n)),
            Kind::Text => Values::Text(Vec::with_capacity(n)),
            Kind::MaybeF64 => Values::MaybeF64(Vec::with_capacity(n)),
            Kind::MaybeText => Values::MaybeText(Vec::with_capacity(n)),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Values::F64(v) => v.len(),
            Values::U64(v) => v.len(),
            Values::Bool(v) => v.len(),
            Values::Text(v) => v.len(),
            Values::MaybeF64(v) => v.len(),
            Values::MaybeText(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn append(&mut self, other: Values<'a>) {
        match (self, other) {
            (Values::F64(a), Values::F64(b)) => a.extend(b),
            (Values::U64(a), Values::U64(b)) => a.extend(b),
            (Values::Bool(a), Values::Bool(b)) => a.extend(b),
            (Values::Text(a), Values::Text(b)) => a.extend(b),
            (Values::MaybeF64(a), Values::MaybeF64(b)) => a.extend(b),
            (Values::MaybeText(a), Values::MaybeText(b)) => a.extend(b),
            _ => unreachable!("a column keeps its kind"),
        }
    }

    fn f64(&mut self, v: f64) {
        let Values::F64(a) = self else { unreachable!("a column keeps its kind") };
        a.push(v);
    }

    fn u64(&mut self, v: u64) {
        let Values::U64(a) = self else { unreachable!("a column keeps its kind") };
        a.push(v);
    }

    fn bool(&mut self, v: bool) {
        let Values::Bool(a) = self else { unreachable!("a column keeps its kind") };
        a.push(v);
    }

    fn text(&mut self, v: Cow<'a, str>) {
        let Values::Text(a) = self else { unreachable!("a column keeps its kind") };
        a.push(v);
    }

    fn maybe_f64(&mut self, v: Option<f64>) {
        let Values::MaybeF64(a) = self else { unreachable!("a column keeps its kind") };
        a.push(v);
    }

    fn maybe_text(&mut self, v: Option<Cow<'a, str>>) {
        let Values::MaybeText(a) = self else { unreachable!("a column keeps its kind") };
        a.push(v);
    }
}

/// Models per parallel task: each task makes an evaluator (an e-graph choice, tens of us).
const CHUNK: usize = 2048;

/// One call's rows: the request, the device, which row of each analysis, the columns, and the
/// text every row shares (made once).
pub struct Table<'a> {
    request: &'a Request,
    device: &'a DeviceProfile,
    row: PhaseRow,
    columns: Vec<Column>,
    potential: bool,
    profile: String,
    /// Weights, activations and KV cache formats as the device runs them.
    formats: [String; 3],
    /// The profile's error bands and what they rest on, as `analyze` words it.
    bands: Option<crate::device::ErrorBands>,
    band_basis: Option<String>,
}

impl<'a> Table<'a> {
    pub fn new(request: &'a Request, device: &'a DeviceProfile, row: PhaseRow, columns: Vec<Column>) -> Self {
        let p = request.evaluator(device).settings.precisions;
        Table {
            request,
            device,
            row,
            potential: columns.iter().any(|c| c.needs_potential()),
            columns,
            profile: device.kind_label(),
            formats: [p.weights.to_string(), p.activations.to_string(), p.kv_cache.to_string()],
            bands: device.error_bands.clone(),
            band_basis: super::band_basis(device),
        }
    }

    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// The low (`end` 0) or high (1) end of a phase's band around `rate`, as `analyze` has it.
    fn band(&self, prefill: bool, rate: f64, end: usize) -> Option<f64> {
        let (lo, hi) = self.bands.as_ref()?.phase(prefill)?.around(rate);
        Some([lo, hi][end])
    }

    /// Scores models in every scenario of the request (rows model by model, scenarios in the
    /// request's order) on `threads` workers (rayon's pool when `None`). `next` hands over the
    /// models a batch at a time, on the calling thread, while the workers score the batches
    /// before (the Python binding reads dicts under the GIL meanwhile); `resolve(i, model)`
    /// turns the i-th into its architecture, on a worker, and drops what the model held there.
    /// The error is the first batch's `next` failed on, unless a model of an earlier batch
    /// failed to resolve first: the first such model's.
    pub fn fill<'m, M, F>(
        &'m self,
        mut next: impl FnMut() -> Result<Option<Vec<M>>>,
        resolve: F,
        threads: Option<usize>,
    ) -> Result<Vec<Values<'m>>>
    where
        M: Send,
        F: Fn(usize, M) -> Result<Cow<'m, Architecture>> + Sync,
    {
        let done: Mutex<Vec<(usize, Result<Vec<Values<'m>>>)>> = Mutex::new(Vec::new());
        let (done_ref, resolve) = (&done, &resolve);
        let read = in_scope(threads, |scope| -> Result<()> {
            let mut first = 0;
            while let Some(batch) = next()? {
                let mut batch = batch.into_iter().peekable();
                while batch.peek().is_some() {
                    let chunk: Vec<M> = batch.by_ref().take(CHUNK).collect();
                    let start = first;
                    first += chunk.len();
                    scope.spawn(move |_| {
                        let mut ev = self.request.evaluator(self.device);
                        let loss = LossModel::new(self.request.tokens);
                        let part = self.chunk(&mut ev, &loss, start, chunk, resolve);
                        done_ref.lock().expect("no worker panics holding it").push((start, part));
                    });
                }
            }
            Ok(())
        })?;
        let mut parts = done.into_inner().expect("no worker panics holding it");
        parts.sort_by_key(|(start, _)| *start);
        // Sized once: growing a column by doubling copied it several times over.
        let rows = parts.iter().map(|(_, p)| p.as_ref().map_or(0, |p| p.first().map_or(0, Values::len))).sum();
        let mut out: Vec<Values> = self.columns.iter().map(|c| Values::with_capacity(c.kind(), rows)).collect();
        for (_, part) in parts {
            for (all, some) in out.iter_mut().zip(part?) {
                all.append(some);
            }
        }
        read?;
        Ok(out)
    }

    fn chunk<'m, M, F>(
        &'m self,
        ev: &mut Evaluator,
        loss: &LossModel,
        first: usize,
        models: Vec<M>,
        resolve: &F,
    ) -> Result<Vec<Values<'m>>>
    where
        F: Fn(usize, M) -> Result<Cow<'m, Architecture>>,
    {
        let rows = models.len() * self.request.scenarios.len();
        let mut out: Vec<Values> = self.columns.iter().map(|c| Values::with_capacity(c.kind(), rows)).collect();
        for (i, m) in (first..).zip(models) {
            let arch = resolve(i, m)?;
            for s in &self.request.scenarios {
                let f = Figures::of(ev, &arch, s, loss);
                let point = f.point(self.row);
                let pot = if self.potential { potential(&point, &f.roof) } else { NO_POTENTIAL };
                for (c, v) in self.columns.iter().zip(&mut out) {
                    match c {
                        Column::Model => v.text(match &arch {
                            Cow::Borrowed(a) => {
                                let a: &'m Architecture = a;
                                Cow::Borrowed(a.name.as_str())
                            }
                            Cow::Owned(a) => Cow::Owned(a.name.clone()),
                        }),
                        Column::Device => v.text(Cow::Borrowed(&self.device.name)),
                        Column::Profile => v.text(Cow::Borrowed(&self.profile)),
                        Column::Scenario => v.text(Cow::Borrowed(&s.name)),
                        Column::PromptTokens => v.u64(s.prompt.into()),
                        Column::GeneratedTokens => v.u64(s.generate.into()),
                        Column::Batch => v.u64(ev.settings.batch.into()),
                        Column::WeightsDtype => v.text(Cow::Borrowed(&self.formats[0])),
                        Column::ActivationsDtype => v.text(Cow::Borrowed(&self.formats[1])),
                        Column::KvCacheDtype => v.text(Cow::Borrowed(&self.formats[2])),
                        Column::Parameters => v.u64(f.parameters),
                        Column::ActiveParameters => v.u64(f.active_parameters),
                        Column::KvBytesPerToken => v.f64(f.kv_bytes_per_token),
                        Column::PeakFlopPerS => v.f64(f.roof.peak_flop_per_s),
                        Column::BandwidthBytesPerS => v.f64(f.roof.bandwidth_bytes_per_s),
                        Column::Phase => v.text(Cow::Borrowed(self.row.name())),
                        Column::Plan => {
                            v.text(Cow::Owned(self.row.plan_label(&arch, (f.eval.prefill.plan, f.eval.decode.plan))))
                        }
                        Column::Flops => v.f64(point.flops),
                        Column::Bytes => v.f64(point.bytes),
                        Column::TimeS => v.f64(point.time_s),
                        Column::IntensityFlopPerByte => v.f64(point.intensity_flop_per_byte()),
                        Column::PerformanceFlopPerS => v.f64(point.performance_flop_per_s()),
                        Column::RidgeFlopPerByte => v.f64(f.roof.ridge_flop_per_byte()),
                        Column::Bound => v.text(Cow::Borrowed(pot.bound.name())),
                        Column::PhiPaper => v.f64(pot.phi_paper),
                        Column::PhiLog => v.f64(pot.phi_log),
                        Column::Rip => v.f64(pot.rip),
                        Column::Attainment => v.f64(pot.attainment),
                        Column::TtftS => v.f64(f.ttft_s),
                        Column::TpotS => v.f64(f.tpot_s),
                        Column::PrefillTokensPerS => v.f64(f.prefill_tokens_per_s),
                        Column::DecodeTokensPerS => v.f64(f.decode_tokens_per_s),
                        Column::BandCoverage => v.maybe_f64(self.bands.as_ref().map(|b| b.coverage)),
                        Column::PrefillTokensPerSLow => v.maybe_f64(self.band(true, f.prefill_tokens_per_s, 0)),
                        Column::PrefillTokensPerSHigh => v.maybe_f64(self.band(true, f.prefill_tokens_per_s, 1)),
                        Column::DecodeTokensPerSLow => v.maybe_f64(self.band(false, f.decode_tokens_per_s, 0)),
                        Column::DecodeTokensPerSHigh => v.maybe_f64(self.band(false, f.decode_tokens_per_s, 1)),
                        Column::BandBasis => v.maybe_text(self.band_basis.as_deref().map(Cow::Borrowed)),
                        Column::CheckCommand => v.maybe_text(
                            check_command(self.device, &arch.name, &self.formats[0], s, ev.settings.batch)
                                .map(Cow::Owned),
                        ),
                        Column::FootprintBytes => v.f64(f.footprint.total_bytes),
                        Column::FootprintWeightsBytes => v.f64(f.footprint.weights_bytes),
                        Column::FootprintKvCacheBytes => v.f64(f.footprint.kv_cache_bytes),
                        Column::FootprintWorkspaceBytes => v.f64(f.footprint.workspace_bytes),
                        Column::UsableMemoryBytes => v.f64(f.footprint.usable_bytes),
                        Column::Fits => v.bool(f.footprint.fits),
                        Column::NonEmbeddingParams => v.u64(f.quality.non_embedding_params),
                        Column::Tokens => v.f64(f.quality.tokens),
                        Column::PredictedLoss => v.f64(f.quality.predicted_loss),
                        Column::EstimateRange => v.text(Cow::Owned(f.quality.estimate_range.to_string())),
                        Column::Warnings => v.text(Cow::Owned(warnings_of(ev, &arch, s).join(WARNINGS_JOINED_BY))),
                        Column::Index => v.u64(i as u64),
                    }
                }
            }
        }
        Ok(out)
    }

    /// The reference the column path is measured against (`python/bench.py`): the search's
    /// evaluator alone on the same models and scenarios, nothing kept but a sum of times (so
    /// the work is not optimised away), on the same workers.
    pub fn evaluate_only(&self, models: &[&Architecture], threads: Option<usize>) -> Result<f64> {
        let work = || {
            models
                .par_chunks(CHUNK)
                .map_init(
                    || self.request.evaluator(self.device),
                    |ev, chunk| {
                        let mut sum = 0.0;
                        for arch in chunk {
                            for s in &self.request.scenarios {
                                sum += ev.scenario(arch, s).total().time_s;
                            }
                        }
                        sum
                    },
                )
                .sum()
        };
        match threads {
            Some(n) => Ok(pool(n)?.install(work)),
            None => Ok(work()),
        }
    }
}

fn pool(threads: usize) -> Result<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| Error::Usage(format!("--threads {threads}: {e}")))
}

/// `op` in a scope of `threads` workers (rayon's pool when `None`), run on this thread: what
/// it spawns runs on the workers meanwhile.
fn in_scope<'s, R>(threads: Option<usize>, op: impl FnOnce(&rayon::Scope<'s>) -> R) -> Result<R> {
    match threads {
        Some(n) => Ok(pool(n)?.in_place_scope(op)),
        None => Ok(rayon::in_place_scope(op)),
    }
}

/// Stands in where no column needs the potential (never read).
const NO_POTENTIAL: Potential =
    Potential { bound: crate::roofline::Bound::Memory, phi_paper: 0.0, phi_log: 0.0, rip: 0.0, attainment: 0.0 };

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::Options;
    use crate::report::analysis_rows;

    fn models() -> Vec<Architecture> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        ["models/Llama-3.2-1B.json", "models/DeepSeek-V2-Lite-Chat.json", "tests/fixtures/hybrid/LFM2-350M.json"]
            .iter()
            .map(|p| crate::arch::load_hf_config(&root.join(p)).unwrap())
            .collect()
    }

    /// Every column of every row equals the CSV row `analyze` writes (its text written by the
    /// csv crate from `AnalysisRow`, so names and order come from there too).
    #[test]
    fn columns_equal_analyze_csv_rows() {
        let models = models();
        let options =
            Options { scenarios: vec!["siso".into(), "lilo".into()], weights: "q4_k_m".into(), ..Options::default() };
        let request = Request::new(&options).unwrap();
        for device in ["rpi5", "rtx3090-datasheet"] {
            let device = crate::device::resolve(device).unwrap();
            for (k, row) in PhaseRow::ALL.into_iter().enumerate() {
                let table = Table::new(&request, &device, row, Column::ALL.to_vec());
                let values =
                    table.fill(batches(models.iter().collect(), 2), |_, a| Ok(Cow::Borrowed(a)), Some(2)).unwrap();
                let mut ev = request.evaluator(&device);
                let mut expected = csv::Writer::from_writer(Vec::new());
                for arch in &models {
                    for s in &request.scenarios {
                        expected.serialize(&analysis_rows(&request.analyze(&mut ev, arch, s))[k]).unwrap();
                    }
                }
                let expected = String::from_utf8(expected.into_inner().unwrap()).unwrap();
                let mut lines = expected.lines();
                let header: Vec<&str> = Column::ALL.iter().map(|c| c.name()).filter(|n| *n != "index").collect();
                assert_eq!(lines.next().unwrap(), header.join(","));
                let mut got = csv::Writer::from_writer(Vec::new());
                for r in 0..values[0].len() {
                    let cells: Vec<String> = values[..values.len() - 1]
                        .iter()
                        .map(|v| match v {
                            // As the csv crate writes them (shortest round-trip floats).
                            Values::F64(v) => {
                                let mut w = csv::Writer::from_writer(Vec::new());
                                w.serialize([v[r]]).unwrap();
                                String::from_utf8(w.into_inner().unwrap()).unwrap().trim_end().to_string()
                            }
                            Values::U64(v) => v[r].to_string(),
                            Values::Bool(v) => v[r].to_string(),
                            Values::Text(v) => v[r].to_string(),
                            Values::MaybeF64(v) => v[r].map_or(String::new(), |x| {
                                let mut w = csv::Writer::from_writer(Vec::new());
                                w.serialize([x]).unwrap();
                                String::from_utf8(w.into_inner().unwrap()).unwrap().trim_end().to_string()
                            }),
                            Values::MaybeText(v) => v[r].as_deref().unwrap_or_default().to_string(),
                        })
                        .collect();
                    got.write_record(&cells).unwrap();
                }
                let got = String::from_utf8(got.into_inner().unwrap()).unwrap();
                assert_eq!(got, lines.map(|l| format!("{l}\n")).collect::<String>(), "{row:?}");
                let Values::U64(index) = values.last().unwrap() else { panic!("index is a number") };
                assert_eq!(index, &[0, 0, 1, 1, 2, 2]);
            }
        }
    }

    #[test]
    fn columns_are_the_ones_named_and_a_bad_name_says_which_exist() {
        let cols = Column::select(Some(&["ttft_s".into(), "model".into()])).unwrap();
        assert_eq!(cols, [Column::TtftS, Column::Model]);
        let e = Column::select(Some(&["speed".into()])).unwrap_err().to_string();
        assert!(e.contains("no column 'speed' (the columns are model, device,"), "{e}");
    }

    #[test]
    fn the_first_model_that_does_not_resolve_is_the_error() {
        let models = models();
        let request = Request::new(&Options::default()).unwrap();
        let device = crate::device::resolve("rpi5").unwrap();
        let table = Table::new(&request, &device, PhaseRow::Scenario, vec![Column::TimeS]);
        let e = table
            .fill(
                batches((0..3 * CHUNK).collect(), 1000),
                |i, k| match k {
                    5 | 2100 | 5000 => Err(Error::Usage(format!("models[{i}]: bad"))),
                    _ => Ok(Cow::Borrowed(&models[k % 3])),
                },
                Some(2),
            )
            .unwrap_err();
        assert_eq!(e.to_string(), "models[5]: bad");
        let none = table.fill(batches(Vec::<usize>::new(), 1), |_, k| Ok(Cow::Borrowed(&models[k])), None).unwrap();
        assert_eq!(none, [Values::F64(Vec::new())]);
        // A batch that cannot be read: its error, unless a model of a batch before failed.
        let bad = |i: usize, k: usize| {
            if k == 5 {
                Err(Error::Usage(format!("models[{i}]: bad")))
            } else {
                Ok(Cow::Borrowed(&models[k % 3]))
            }
        };
        assert_eq!(table.fill(unreadable_at(3), bad, Some(2)).unwrap_err().to_string(), "models[5]: bad");
        assert_eq!(table.fill(unreadable_at(1), bad, Some(2)).unwrap_err().to_string(), "models[0]: unreadable");
    }

    /// Batches of `CHUNK` models (model 5 among the first), until batch `n` fails to be read.
    fn unreadable_at(n: usize) -> impl FnMut() -> Result<Option<Vec<usize>>> {
        let mut calls = 0;
        move || {
            calls += 1;
            if calls == n {
                return Err(Error::Usage(format!("models[{}]: unreadable", (n - 1) * CHUNK)));
            }
            Ok(Some((0..CHUNK).map(|k| if calls == 1 { k } else { 7 }).collect()))
        }
    }

    /// `models` handed over `size` at a time.
    fn batches<M>(models: Vec<M>, size: usize) -> impl FnMut() -> Result<Option<Vec<M>>> {
        let mut models = models.into_iter().peekable();
        move || Ok(models.peek().is_some().then(|| models.by_ref().take(size).collect()))
    }
}
