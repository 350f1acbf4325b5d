//! The Python binding: a thin layer over the library, as `cli` is. Each function turns Python
//! arguments into the library's request, runs it (without the GIL where it takes time) and
//! hands back what the command line prints: JSON text for `analyze`, `search` and `devices`
//! (the package parses it, so results equal the command line's bit for bit), columns for
//! `predict`. Errors raise `rooflinebench.Error` with the command line's one-line message.

mod columns;

use pyo3::create_exception;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use rayon::prelude::*;
use rooflinebench::analysis::{self, operator_rows, JsonEntry};
use rooflinebench::arch::{self, Architecture as Arch};
use rooflinebench::device::{builtin, builtin_names, resolve, DeviceProfile};
use rooflinebench::error::printable;
use rooflinebench::files::json_bytes;
use rooflinebench::search::{FrontRow, SearchOptions, SearchSpace};
use serde::Serialize;
use serde_json::Value;
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

/// A Python value as JSON (dicts with text keys, lists, text, numbers, booleans, None).
fn to_value(obj: &Bound<'_, PyAny>, at: &str) -> PyResult<Value> {
    if obj.is_none() {
        Ok(Value::Null)
    } else if let Ok(b) = obj.cast::<PyBool>() {
        Ok(Value::Bool(b.is_true()))
    } else if let Ok(i) = obj.cast::<PyInt>() {
        if let Ok(v) = i.extract::<i64>() {
            Ok(Value::from(v))
        } else {
            Ok(Value::from(i.extract::<u64>().map_err(|_| usage(format!("{at}: an integer out of range")))?))
        }
    } else if let Ok(f) = obj.cast::<PyFloat>() {
        Ok(serde_json::Number::from_f64(f.value())
            .map(Value::Number)
            .ok_or_else(|| usage(format!("{at}: expected a finite number, got {}", f.value())))?)
    } else if let Ok(s) = obj.cast::<PyString>() {
        Ok(Value::String(s.to_cow()?.into_owned()))
    } else if let Ok(d) = obj.cast::<PyDict>() {
        let mut map = serde_json::Map::with_capacity(d.len());
        for (k, v) in d.iter() {
            let key: String =
                k.extract().map_err(|_| usage(format!("{at}: keys must be text, got {}", k.get_type())))?;
            let value = to_value(&v, &key)?;
            map.insert(key, value);
        }
        Ok(Value::Object(map))
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

/// What a model argument names, read under the GIL; resolved (parsed, checked) without it.
enum Model {
    Path(PathBuf),
    Config(Value),
    Loaded(Arch),
}

fn model_of(obj: &Bound<'_, PyAny>, at: &str) -> PyResult<Model> {
    if let Ok(a) = obj.cast::<Architecture>() {
        return Ok(Model::Loaded(a.get().inner.clone()));
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

impl Model {
    /// `source` names a dict in errors; `name` is a dict's model name.
    fn resolve(self, source: &str, name: Option<&str>) -> rooflinebench::Result<Arch> {
        match self {
            Model::Path(p) => {
                let mut a = arch::load_hf_config(&p)?;
                if let Some(n) = name {
                    a.name = n.to_string();
                }
                Ok(a)
            }
            Model::Config(v) => arch::parse_hf_value(&v, source, name.unwrap_or("model")),
            Model::Loaded(mut a) => {
                if let Some(n) = name {
                    a.name = n.to_string();
                }
                Ok(a)
            }
        }
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
    let inner = py.detach(|| m.resolve("model", name.as_deref())).map_err(raise)?;
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
        let arch = m.resolve("model", name.as_deref())?;
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

/// Candidates per rayon task: each task makes one evaluator (an e-graph choice, tens of us).
const CHUNK: usize = 2048;

/// Scores many models in parallel without the GIL: the rows of `analyze --format csv` for
/// `phase`, as columns (with `index`, the model's position in `models`).
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
    let phase_index = match phase.as_str() {
        "prefill" => 0,
        "decode" => 1,
        "scenario" => 2,
        other => return Err(usage(format!("phase: expected prefill, decode or scenario, got '{other}'"))),
    };
    if threads.is_some_and(|n| !(1..=256).contains(&n)) {
        return Err(usage(format!(
            "--threads: expected a number of threads from 1 to 256, got {}",
            threads.unwrap_or(0)
        )));
    }
    let device = device_of(device)?;
    let inputs: Vec<Model> =
        models.try_iter()?.enumerate().map(|(i, m)| model_of(&m?, &format!("models[{i}]"))).collect::<PyResult<_>>()?;
    let scenarios = q.scenarios.len();
    let rows: rooflinebench::Result<Vec<Vec<columns::Row>>> = py.detach(|| {
        let work = || {
            let chunks: Vec<(usize, Vec<Model>)> = {
                let mut v = Vec::new();
                let mut it = inputs.into_iter().enumerate().peekable();
                while let Some((start, first)) = it.next() {
                    let mut chunk = vec![first];
                    while chunk.len() < CHUNK {
                        match it.next() {
                            Some((_, m)) => chunk.push(m),
                            None => break,
                        }
                    }
                    v.push((start, chunk));
                }
                v
            };
            chunks
                .into_par_iter()
                .map(|(start, chunk)| {
                    let mut ev = q.evaluator(&device);
                    let mut out = Vec::with_capacity(chunk.len() * scenarios);
                    for (k, m) in chunk.into_iter().enumerate() {
                        let arch = m.resolve(&format!("models[{}]", start + k), None)?;
                        for s in &q.scenarios {
                            let a = q.analyze(&mut ev, &arch, s);
                            let r = &rooflinebench::report::analysis_rows(&a)[phase_index];
                            let mut row = columns::row(r).expect("analysis rows are flat");
                            row.cells.push(columns::Cell::UInt((start + k) as u64));
                            out.push(row);
                        }
                    }
                    Ok(out)
                })
                .collect()
        };
        match threads {
            Some(n) => rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build()
                .map_err(|e| rooflinebench::Error::Usage(format!("--threads: {e}")))?
                .install(work),
            None => work(),
        }
    });
    let rows: Vec<columns::Row> = rows.map_err(raise)?.into_iter().flatten().collect();
    columns_of(py, &rows, columns.as_deref())
}

/// Rows as a dict of lists, in field order (`index` last); only `wanted` when given.
fn columns_of<'py>(py: Python<'py>, rows: &[columns::Row], wanted: Option<&[String]>) -> PyResult<Bound<'py, PyDict>> {
    // No models: no rows, no columns.
    let Some(first) = rows.first() else { return Ok(PyDict::new(py)) };
    let mut names: Vec<&str> = first.names.clone();
    names.push("index");
    let picked: Vec<usize> = match wanted {
        None => (0..names.len()).collect(),
        Some(w) => {
            w.iter()
                .map(|c| {
                    names.iter().position(|n| n == c).ok_or_else(|| {
                        usage(format!("columns: no column '{c}' (the columns are {})", names.join(", ")))
                    })
                })
                .collect::<PyResult<_>>()?
        }
    };
    let dict = PyDict::new(py);
    for &j in &picked {
        // Text repeats down a column (the device, the scenario): one Python string per run.
        let mut last: Option<(&str, Bound<'py, PyAny>)> = None;
        let mut items = Vec::with_capacity(rows.len());
        for r in rows {
            let item = match &r.cells[j] {
                columns::Cell::Float(v) => PyFloat::new(py, *v).into_any(),
                columns::Cell::Int(v) => v.into_pyobject(py)?.into_any(),
                columns::Cell::UInt(v) => v.into_pyobject(py)?.into_any(),
                columns::Cell::Bool(v) => PyBool::new(py, *v).to_owned().into_any(),
                columns::Cell::None => py.None().into_bound(py),
                columns::Cell::Str(s) => match &last {
                    Some((t, o)) if *t == s.as_str() => o.clone(),
                    _ => {
                        let o = PyString::new(py, s).into_any();
                        last = Some((s.as_str(), o.clone()));
                        o
                    }
                },
            };
            items.push(item);
        }
        dict.set_item(names[j], PyList::new(py, items)?)?;
    }
    Ok(dict)
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
    if threads.is_some_and(|n| !(1..=256).contains(&n)) {
        return Err(usage(format!(
            "--threads: expected a number of threads from 1 to 256, got {}",
            threads.unwrap_or(0)
        )));
    }
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
    m.add_function(wrap_pyfunction!(search_json, m)?)?;
    m.add_function(wrap_pyfunction!(devices_json, m)?)?;
    m.add_function(wrap_pyfunction!(device_json, m)?)?;
    Ok(())
}
