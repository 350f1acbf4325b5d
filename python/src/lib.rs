//! The Python binding: a thin layer over the library, as `cli` is. Each function turns Python
//! arguments into the library's request, runs it (without the GIL where it takes time) and
//! hands back what the command line prints: JSON text for `analyze`, `search` and `devices`
//! (the package parses it, so results equal the command line's bit for bit), columns for
//! `predict`. Errors raise `rooflinebench.Error` with the command line's one-line message.

use pyo3::create_exception;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use rooflinebench::analysis::columns::{Column, Table, Values};
use rooflinebench::analysis::{self, operator_rows, JsonEntry, PhaseRow};
use rooflinebench::arch::{self, Architecture as Arch};
use rooflinebench::device::{builtin, builtin_names, resolve, DeviceProfile};
use rooflinebench::error::printable;
use rooflinebench::files::json_bytes;
use rooflinebench::search::{FrontRow, SearchOptions, SearchSpace};
use serde::Serialize;
use serde_json::Value;
use std::borrow::Cow;
use std::path::PathBuf;

create_exception!(
    _rooflinebench,
    Error,
    PyValueError,
    "Bad input: the message is the command line's one line (the file or argument, the field, what was expected)."
);

/// The command line's `error: ...` line, without `error: `.
fn raise(e: rooflinebench::Error) -> PyErr {
    Error::new_err(printable(&e.to_string()))
}

fn usage(message: String) -> PyErr {
    raise(rooflinebench::Error::Usage(message))
}

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).expect("JSON is UTF-8")
}

/// A model's resolved architecture: what a config.json says, every default decided.
#[pyclass(frozen, module = "rooflinebench")]
struct Architecture {
    inner: Arch,
}

#[pymethods]
impl Architecture {
    /// The name analyses report (the config file's name, or the `name` given).
    #[getter]
    fn name(&self) -> &str {
        &self.inner.name
    }
    /// Parameters, embeddings included (tied ones once).
    #[getter]
    fn parameters(&self) -> u64 {
        self.inner.parameters()
    }
    /// Parameters one token uses (a mixture of experts routes to a few).
    #[getter]
    fn active_parameters(&self) -> u64 {
        self.inner.active_parameters()
    }
    #[getter]
    fn num_layers(&self) -> u32 {
        self.inner.num_layers
    }
    #[getter]
    fn hidden_size(&self) -> u32 {
        self.inner.hidden_size
    }
    #[getter]
    fn vocab_size(&self) -> u32 {
        self.inner.vocab_size
    }
    /// The attention kind of the stack (mha, gqa, mqa, mla, or a hybrid's kinds).
    #[getter]
    fn kind(&self) -> String {
        self.inner.stack_kind().to_string()
    }
    /// The resolved description as JSON text (layer kinds included).
    fn to_json(&self) -> String {
        serde_json::to_string(&self.inner).expect("architectures serialise")
    }
    /// A Hugging Face config.json for it, as JSON text (what `export` writes).
    fn to_config_json(&self) -> PyResult<String> {
        let v = arch::try_export_hf_config(&self.inner).map_err(raise)?;
        Ok(text(json_bytes(&v)))
    }
    fn __repr__(&self) -> String {
        format!(
            "<Architecture {} ({}, {} parameters)>",
            self.inner.name,
            self.inner.stack_kind(),
            self.inner.parameters()
        )
    }
}

/// A Python value as JSON (dicts with text keys, lists, text, numbers, booleans, None). The
/// exact types `json.load` and literals make are tried first: this runs under the GIL for
/// every dict `predict` reads, so it bounds that path.
fn to_value(obj: &Bound<'_, PyAny>, at: &str) -> PyResult<Value> {
    if let Ok(s) = obj.cast_exact::<PyString>() {
        Ok(Value::String(s.to_str()?.to_owned()))
    } else if let Ok(i) = obj.cast_exact::<PyInt>() {
        int_value(i, at)
    } else if let Ok(f) = obj.cast_exact::<PyFloat>() {
        float_value(f, at)
    } else if obj.is_none() {
        Ok(Value::Null)
    } else if let Ok(b) = obj.cast::<PyBool>() {
        Ok(Value::Bool(b.is_true()))
    } else if let Ok(i) = obj.cast::<PyInt>() {
        int_value(i, at)
    } else if let Ok(f) = obj.cast::<PyFloat>() {
        float_value(f, at)
    } else if let Ok(s) = obj.cast::<PyString>() {
        Ok(Value::String(s.to_cow()?.into_owned()))
    } else if let Ok(d) = obj.cast::<PyDict>() {
        let mut entries = Vec::with_capacity(d.len());
        for (k, v) in d.iter() {
            let key =
                k.cast::<PyString>().map_err(|_| usage(format!("{at}: keys must be text, got {}", k.get_type())))?;
            // Borrowed UTF-8 (Python caches it in the string): one copy, into the key.
            let key = key.to_str()?.to_owned();
            let value = to_value(&v, &key)?;
            entries.push((key, value));
        }
        // Built at once from all its entries: cheaper than inserting them one by one.
        Ok(Value::Object(entries.into_iter().collect()))
    } else if obj.cast::<PyList>().is_ok() || obj.cast::<PyTuple>().is_ok() {
        let items: Vec<Value> = obj.try_iter()?.map(|x| to_value(&x?, at)).collect::<PyResult<_>>()?;
        Ok(Value::Array(items))
    } else {
        Err(usage(format!(
            "{at}: expected JSON-like values (dict, list, str, number, bool, None), got {}",
            obj.get_type()
        )))
    }
}

fn int_value(i: &Bound<'_, PyInt>, at: &str) -> PyResult<Value> {
    if let Ok(v) = i.extract::<i64>() {
        Ok(Value::from(v))
    } else {
        Ok(Value::from(i.extract::<u64>().map_err(|_| usage(format!("{at}: an integer out of range")))?))
    }
}

fn float_value(f: &Bound<'_, PyFloat>, at: &str) -> PyResult<Value> {
    serde_json::Number::from_f64(f.value())
        .map(Value::Number)
        .ok_or_else(|| usage(format!("{at}: expected a finite number, got {}", f.value())))
}

/// What a model argument names, read under the GIL; resolved (parsed, checked) without it. A
/// loaded Architecture is borrowed: the Python object outlives the call.
enum Model<'a> {
    Path(PathBuf),
    Config(Value),
    Loaded(&'a Arch),
}

fn model_of<'a>(obj: &'a Bound<'_, PyAny>, at: &str) -> PyResult<Model<'a>> {
    if let Ok(a) = obj.cast::<Architecture>() {
        return Ok(Model::Loaded(&a.get().inner));
    }
    if obj.cast::<PyDict>().is_ok() {
        return Ok(Model::Config(to_value(obj, at)?));
    }
    match obj.extract::<PathBuf>() {
        Ok(p) => Ok(Model::Path(p)),
        Err(_) => Err(usage(format!(
            "{at}: expected a config.json path, a dict of one or an Architecture, got {}",
            obj.get_type()
        ))),
    }
}

impl<'a> Model<'a> {
    /// The architecture, as the command line names it (a dict: `model`); `source` names a
    /// dict in errors (made only for a dict: a loaded model costs nothing here).
    fn resolve(&self, source: impl FnOnce() -> String) -> rooflinebench::Result<Cow<'a, Arch>> {
        match self {
            Model::Path(p) => arch::load_hf_config(p).map(Cow::Owned),
            Model::Config(v) => arch::parse_hf_value(v, &source(), "model").map(Cow::Owned),
            Model::Loaded(a) => Ok(Cow::Borrowed(a)),
        }
    }

    /// The same, renamed when `name` is given.
    fn resolve_named(&self, source: &str, name: Option<&str>) -> rooflinebench::Result<Arch> {
        let mut a = self.resolve(|| source.to_string())?.into_owned();
        if let Some(n) = name {
            a.name = n.to_string();
        }
        Ok(a)
    }
}

fn device_of(obj: &Bound<'_, PyAny>) -> PyResult<DeviceProfile> {
    let name: PathBuf = obj
        .extract()
        .map_err(|_| usage(format!("--device: expected a device name or a profile path, got {}", obj.get_type())))?;
    resolve(&name.to_string_lossy()).map_err(raise)
}

fn scenarios_of(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<String>> {
    match obj {
        None => Ok(Vec::new()),
        Some(o) if o.is_none() => Ok(Vec::new()),
        Some(o) => match o.extract::<String>() {
            Ok(s) => Ok(vec![s]),
            Err(_) => {
                o.extract::<Vec<String>>().map_err(|_| usage("--scenario: expected a name or a list of names".into()))
            }
        },
    }
}

/// Loads a model: a config.json path, a dict of one, or an Architecture (renamed when `name`
/// is given).
#[pyfunction]
#[pyo3(signature = (model, name=None))]
fn load(py: Python<'_>, model: &Bound<'_, PyAny>, name: Option<String>) -> PyResult<Architecture> {
    let m = model_of(model, "model")?;
    let inner = py.detach(|| m.resolve_named("model", name.as_deref())).map_err(raise)?;
    Ok(Architecture { inner })
}

#[allow(clippy::too_many_arguments)]
fn options(
    scenario: Option<&Bound<'_, PyAny>>,
    weights: String,
    activations: String,
    kv: Option<String>,
    prompt: Option<u32>,
    generate: Option<u32>,
    batch: u32,
    plan: String,
    logits_all: bool,
    tokens: Option<f64>,
    tokens_per_parameter: Option<f64>,
) -> PyResult<analysis::Request> {
    let o = analysis::Options {
        scenarios: scenarios_of(scenario)?,
        prompt,
        generate,
        batch,
        weights,
        activations,
        kv,
        logits_all,
        plan,
        tokens,
        tokens_per_parameter,
    };
    analysis::Request::new(&o).map_err(raise)
}

/// `analyze --format json` of one model on one device: the JSON text of its entries.
#[pyfunction]
#[pyo3(signature = (model, device, scenario=None, *, weights="bf16".to_string(), activations="bf16".to_string(),
    kv=None, prompt=None, generate=None, batch=1, plan="best".to_string(), logits_all=false, tokens=None,
    tokens_per_parameter=None, per_op=false, name=None))]
#[allow(clippy::too_many_arguments)]
fn analyze_json(
    py: Python<'_>,
    model: &Bound<'_, PyAny>,
    device: &Bound<'_, PyAny>,
    scenario: Option<&Bound<'_, PyAny>>,
    weights: String,
    activations: String,
    kv: Option<String>,
    prompt: Option<u32>,
    generate: Option<u32>,
    batch: u32,
    plan: String,
    logits_all: bool,
    tokens: Option<f64>,
    tokens_per_parameter: Option<f64>,
    per_op: bool,
    name: Option<String>,
) -> PyResult<String> {
    let q = options(
        scenario,
        weights,
        activations,
        kv,
        prompt,
        generate,
        batch,
        plan,
        logits_all,
        tokens,
        tokens_per_parameter,
    )?;
    let m = model_of(model, "model")?;
    let device = device_of(device)?;
    py.detach(|| {
        let arch = m.resolve_named("model", name.as_deref())?;
        let mut ev = q.evaluator(&device);
        let results: Vec<_> = q
            .scenarios
            .iter()
            .map(|s| {
                let a = q.analyze(&mut ev, &arch, s);
                let ops = if per_op { operator_rows(&arch, &device, s, &q.settings, &a) } else { Vec::new() };
                (a, ops)
            })
            .collect();
        let entries: Vec<JsonEntry> =
            results.iter().map(|(a, o)| JsonEntry { analysis: a, operators: per_op.then_some(o.as_slice()) }).collect();
        Ok(text(json_bytes(&entries)))
    })
    .map_err(raise)
}

fn threads_of(threads: Option<usize>) -> PyResult<Option<usize>> {
    match threads {
        Some(n) if !(1..=256).contains(&n) => {
            Err(usage(format!("--threads: expected a number of threads from 1 to 256, got {n}")))
        }
        _ => Ok(threads),
    }
}

/// A `predict` input: a model ready to resolve, or a dict still to read (under the GIL, a
/// batch at a time, while the workers score the batches before).
enum Input<'a> {
    Ready(Model<'a>),
    Dict(Py<PyAny>),
}

/// Dicts read per batch: a worker's task of the library's column path.
const READ_BATCH: usize = 2048;

fn inputs_of<'a>(items: &'a [Bound<'_, PyAny>]) -> PyResult<Vec<Input<'a>>> {
    items
        .iter()
        .enumerate()
        .map(|(i, m)| match m.cast::<PyDict>() {
            Ok(_) => Ok(Input::Dict(m.clone().unbind())),
            Err(_) => model_of(m, &format!("models[{i}]")).map(Input::Ready),
        })
        .collect()
}

/// The next batch of `inputs` (the first is model `at`), its dicts read into configs; called
/// without the GIL, it takes it for the batch.
fn read_batch<'a>(
    inputs: &mut std::vec::IntoIter<Input<'a>>,
    at: &mut usize,
) -> rooflinebench::Result<Option<Vec<Model<'a>>>> {
    let batch: Vec<Input<'a>> = inputs.by_ref().take(READ_BATCH).collect();
    if batch.is_empty() {
        return Ok(None);
    }
    let first = *at;
    *at += batch.len();
    Python::attach(|py| {
        (first..)
            .zip(batch)
            .map(|(i, m)| match m {
                Input::Ready(m) => Ok(m),
                Input::Dict(d) => to_value(d.bind(py), &format!("models[{i}]")).map(Model::Config),
            })
            .collect::<PyResult<Vec<_>>>()
            .map(Some)
            // The library carries the message; `raise` makes it the same exception again.
            .map_err(|e| rooflinebench::Error::Usage(e.value(py).to_string()))
    })
}

/// Scores many models in parallel without the GIL: the rows of `analyze --format csv` for
/// `phase`, as columns (`index` is the model's position in `models`), filled by the library's
/// column path (`analysis::columns`).
#[pyfunction]
#[pyo3(signature = (models, device, scenario=None, *, weights="bf16".to_string(), activations="bf16".to_string(),
    kv=None, prompt=None, generate=None, batch=1, plan="best".to_string(), logits_all=false, tokens=None,
    tokens_per_parameter=None, phase="scenario".to_string(), columns=None, threads=None))]
#[allow(clippy::too_many_arguments)]
fn predict<'py>(
    py: Python<'py>,
    models: &Bound<'py, PyAny>,
    device: &Bound<'py, PyAny>,
    scenario: Option<&Bound<'py, PyAny>>,
    weights: String,
    activations: String,
    kv: Option<String>,
    prompt: Option<u32>,
    generate: Option<u32>,
    batch: u32,
    plan: String,
    logits_all: bool,
    tokens: Option<f64>,
    tokens_per_parameter: Option<f64>,
    phase: String,
    columns: Option<Vec<String>>,
    threads: Option<usize>,
) -> PyResult<Bound<'py, PyDict>> {
    let q = options(
        scenario,
        weights,
        activations,
        kv,
        prompt,
        generate,
        batch,
        plan,
        logits_all,
        tokens,
        tokens_per_parameter,
    )?;
    let row = PhaseRow::named(&phase, "phase").map_err(raise)?;
    let threads = threads_of(threads)?;
    let wanted = Column::select(columns.as_deref()).map_err(raise)?;
    let device = device_of(device)?;
    let items: Vec<Bound<'py, PyAny>> = models.try_iter()?.collect::<PyResult<_>>()?;
    let inputs = inputs_of(&items)?;
    let table = Table::new(&q, &device, row, wanted);
    let mut inputs = inputs.into_iter();
    let mut at = 0;
    let values = py
        .detach(|| {
            table.fill(|| read_batch(&mut inputs, &mut at), |i, m| m.resolve(|| format!("models[{i}]")), threads)
        })
        .map_err(raise)?;
    let dict = PyDict::new(py);
    // No models: no rows, no columns.
    if items.is_empty() {
        return Ok(dict);
    }
    for (c, v) in table.columns().iter().zip(values) {
        let list = match v {
            Values::F64(v) => PyList::new(py, v)?,
            Values::U64(v) => PyList::new(py, v)?,
            Values::Bool(v) => PyList::new(py, v)?,
            Values::MaybeF64(v) => PyList::new(py, v)?,
            Values::MaybeText(v) => PyList::new(py, v.iter().map(|t| t.as_deref()))?,
            Values::Text(v) => {
                // Text repeats down a column (the device, the scenario): one Python string per run.
                let mut last: Option<(&str, Bound<'py, PyString>)> = None;
                let mut items = Vec::with_capacity(v.len());
                for t in &v {
                    let o = match &last {
                        // The same borrowed text is the same address: no need to compare it.
                        Some((s, o)) if std::ptr::eq(*s, t.as_ref()) || *s == t.as_ref() => o.clone(),
                        _ => PyString::new(py, t),
                    };
                    last = Some((t.as_ref(), o.clone()));
                    items.push(o);
                }
                PyList::new(py, items)?
            }
        };
        dict.set_item(c.name(), list)?;
    }
    Ok(dict)
}

/// The Rust scoring loop `predict` is measured against (`python/bench.py`): seconds the
/// search's evaluator alone takes on the same models and scenarios, on the same threads.
#[pyfunction]
#[pyo3(signature = (models, device, scenario=None, *, threads=None))]
fn scoring_loop_seconds(
    py: Python<'_>,
    models: &Bound<'_, PyAny>,
    device: &Bound<'_, PyAny>,
    scenario: Option<&Bound<'_, PyAny>>,
    threads: Option<usize>,
) -> PyResult<f64> {
    let q = options(scenario, "bf16".into(), "bf16".into(), None, None, None, 1, "best".into(), false, None, None)?;
    let threads = threads_of(threads)?;
    let device = device_of(device)?;
    let items: Vec<Bound<'_, PyAny>> = models.try_iter()?.collect::<PyResult<_>>()?;
    let inputs: Vec<Model<'_>> =
        items.iter().enumerate().map(|(i, m)| model_of(m, &format!("models[{i}]"))).collect::<PyResult<_>>()?;
    let archs: Vec<Cow<'_, Arch>> = inputs
        .iter()
        .enumerate()
        .map(|(i, m)| m.resolve(|| format!("models[{i}]")))
        .collect::<rooflinebench::Result<_>>()
        .map_err(raise)?;
    let refs: Vec<&Arch> = archs.iter().map(|a| a.as_ref()).collect();
    let table = Table::new(&q, &device, PhaseRow::Scenario, Vec::new());
    py.detach(|| {
        let t = std::time::Instant::now();
        let sum = table.evaluate_only(&refs, threads)?;
        std::hint::black_box(sum);
        Ok(t.elapsed().as_secs_f64())
    })
    .map_err(raise)
}

/// What `search` found, as one JSON document.
#[derive(Serialize)]
struct Found<'a> {
    space: &'a str,
    device: &'a str,
    profile: &'a str,
    warnings: &'a [String],
    candidates: u64,
    feasible: u64,
    invalid: &'a std::collections::BTreeMap<String, u64>,
    rejected: &'a std::collections::BTreeMap<String, u64>,
    rip_margin: f64,
    recommended: &'a FrontRow,
    runner_up: Option<&'a FrontRow>,
    fastest: &'a FrontRow,
    best_by_objective: &'a FrontRow,
    quality_pick: &'a FrontRow,
    quality_tpot_margin: f64,
    recommended_config: &'a Value,
    top: &'a [FrontRow],
    front: Vec<FrontRow>,
    /// The command line's summary (what `search` prints).
    summary: String,
    /// The folder written, when `out` was given.
    out: Option<String>,
}

fn space_of(obj: &Bound<'_, PyAny>) -> PyResult<SearchSpace> {
    if obj.cast::<PyDict>().is_ok() {
        let v = to_value(obj, "space")?;
        let toml = toml::to_string(&v).map_err(|e| usage(format!("space: not expressible as TOML: {e}")))?;
        return SearchSpace::parse(&toml, "space", "space").map_err(raise);
    }
    let path: PathBuf = obj.extract().map_err(|_| {
        usage(format!("space: expected a search-space TOML path or a dict of one, got {}", obj.get_type()))
    })?;
    SearchSpace::load(&path).map_err(raise)
}

/// `search`: the recommendation, the picks beside it and the front, as JSON text; with `out`,
/// the folder `search --out` writes.
#[pyfunction]
#[pyo3(signature = (space, device, *, out=None, threads=None, plan="best".to_string(), force=false,
    max_candidates=100_000_000))]
#[allow(clippy::too_many_arguments)]
fn search_json(
    py: Python<'_>,
    space: &Bound<'_, PyAny>,
    device: &Bound<'_, PyAny>,
    out: Option<PathBuf>,
    threads: Option<usize>,
    plan: String,
    force: bool,
    max_candidates: u64,
) -> PyResult<String> {
    let space = space_of(space)?;
    let device = device_of(device)?;
    let threads = threads_of(threads)?;
    let plans = match plan.as_str() {
        "best" => rooflinebench::roofline::PlanChoice::Fastest,
        "naive" => rooflinebench::roofline::PlanChoice::Fixed(rooflinebench::workload::Plan::NAIVE),
        other => return Err(usage(format!("--plan: expected best or naive, got '{other}'"))),
    };
    let opts = SearchOptions { threads, shard: None, max_candidates, force, progress: false, plans };
    py.detach(|| {
        let report = match &out {
            Some(dir) => {
                let staged = rooflinebench::files::Staged::begin(dir, "search")?;
                let report = rooflinebench::report::folder::search_into(&space, &device, &opts, &staged)?;
                staged.commit()?;
                report
            }
            None => {
                let outcome = rooflinebench::search::run(&space, &device, &opts)?;
                rooflinebench::search::finish(&space, &device, outcome)?
            }
        };
        let found = Found {
            space: &report.space,
            device: &report.device,
            profile: &report.profile,
            warnings: &report.warnings,
            candidates: report.outcome.candidates,
            feasible: report.outcome.feasible,
            invalid: &report.outcome.invalid,
            rejected: &report.outcome.rejected,
            rip_margin: report.rip_margin,
            recommended: &report.recommended,
            runner_up: report.runner_up.as_ref(),
            fastest: &report.fastest,
            best_by_objective: &report.best_by_objective,
            quality_pick: &report.quality_pick,
            quality_tpot_margin: report.quality_tpot_margin,
            recommended_config: &report.recommended_config,
            top: &report.top,
            front: report.front_rows(&space, &device).collect(),
            summary: rooflinebench::report::explain::explain(&report),
            out: out.as_ref().map(|d| d.display().to_string()),
        };
        Ok(text(json_bytes(&found)))
    })
    .map_err(raise)
}

/// `devices --format json`: the built-in profiles, a line each.
#[pyfunction]
fn devices_json() -> String {
    let rows: Vec<_> = builtin_names().map(|n| builtin(n).expect("listed names resolve").summary()).collect();
    text(json_bytes(&rows))
}

/// One profile with what a prediction from it means.
#[derive(Serialize)]
struct Shown<'a> {
    /// How reports name its figures ("expected (llama.cpp, fitted from 10 public runs)").
    label: String,
    /// A ceiling profile: every prediction from it is an upper bound on speed.
    upper_bound: bool,
    /// How it predicted runs it was not fitted to, when it was checked so.
    held_out_agreement: Option<&'a Value>,
    /// Its 80% bands per phase and what they rest on; None on upper bounds.
    error_bands: Option<&'a rooflinebench::device::ErrorBands>,
    /// The profile as `devices show` prints it.
    profile: &'a DeviceProfile,
}

/// `devices show NAME`, with its label, whether it is an upper bound and its held-out agreement.
#[pyfunction]
fn device_json(name: &Bound<'_, PyAny>) -> PyResult<String> {
    let p = device_of(name)?;
    let shown = Shown {
        label: p.kind_label(),
        upper_bound: p.is_upper_bound(),
        held_out_agreement: p.held_out_agreement(),
        error_bands: p.error_bands.as_ref(),
        profile: &p,
    };
    Ok(text(json_bytes(&shown)))
}

#[pymodule]
fn _rooflinebench(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("Error", m.py().get_type::<Error>())?;
    m.add_class::<Architecture>()?;
    m.add_function(wrap_pyfunction!(load, m)?)?;
    m.add_function(wrap_pyfunction!(analyze_json, m)?)?;
    m.add_function(wrap_pyfunction!(predict, m)?)?;
    m.add_function(wrap_pyfunction!(scoring_loop_seconds, m)?)?;
    m.add_function(wrap_pyfunction!(search_json, m)?)?;
    m.add_function(wrap_pyfunction!(devices_json, m)?)?;
    m.add_function(wrap_pyfunction!(device_json, m)?)?;
    Ok(())
}
