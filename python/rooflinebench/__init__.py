"""rooflinebench from Python: which small-language-model architecture runs best on a device.

A thin layer over the same Rust library the ``rooflinebench`` command line runs:

- ``analyze(model, device, ...)``: what ``analyze --format json`` prints, as dicts.
- ``predict(models, device, ...)``: many models at once, scored in parallel without the GIL
  by the search's evaluator, as columns (the rows of ``analyze --format csv``).
- ``search(space, device, ...)``: a search space's recommendation and front; with ``out=``,
  the folder ``search --out`` writes.
- ``devices()`` and ``device(name_or_path)``: the built-in profiles and one profile.
- ``load(model)``: a config.json (path or dict) resolved once, to pass around.

Bad input raises ``rooflinebench.Error`` (a ``ValueError``) carrying the command line's
one-line message.
"""

import json as _json

from ._rooflinebench import Architecture, Error, load
from . import _rooflinebench as _native

__all__ = ["Architecture", "Error", "analyze", "device", "devices", "load", "predict", "search"]


def _single(scenario, prompt, generate):
    """Whether a request names exactly one scenario (so analyze returns one dict)."""
    if prompt is not None or generate is not None:
        return True
    return isinstance(scenario, str) and scenario.lower() != "all"


def analyze(
    model,
    device,
    scenario=None,
    *,
    weights="bf16",
    activations="bf16",
    kv=None,
    prompt=None,
    generate=None,
    batch=1,
    plan="best",
    logits_all=False,
    tokens=None,
    tokens_per_parameter=None,
    per_op=False,
    name=None,
):
    """Where a model sits on a device's roofline: ``analyze --format json``, parsed.

    model: a config.json path, a dict of one, or an ``Architecture`` from ``load``.
    device: a built-in device name (``devices()``) or a profile JSON path.
    scenario: ``"siso"``, ``"silo"``, ``"liso"``, ``"lilo"``, ``"all"``, a list of names, or
        None (all four); or give ``prompt`` and ``generate`` tokens for a custom one.
    weights, activations, kv: number formats (f32, f16, bf16, int8; weights also q8_0, q4_0,
        q4_k_m); the KV cache defaults to the activations' format.
    batch: sequences decoded together. plan: ``"best"`` or ``"naive"``.
    logits_all: logits for every prompt token (scoring). tokens / tokens_per_parameter: the
        training tokens behind the predicted loss. per_op: add the ``operators`` rows.
    name: the model's name in the result (a dict's default is ``"model"``; a path's, its file
        name, as on the command line).

    Returns one dict for one scenario, else a list of dicts (one per scenario, as the command
    line's list). Floats equal the command line's JSON bit for bit.
    """
    entries = _json.loads(
        _native.analyze_json(
            model,
            device,
            scenario,
            weights=weights,
            activations=activations,
            kv=kv,
            prompt=prompt,
            generate=generate,
            batch=batch,
            plan=plan,
            logits_all=logits_all,
            tokens=tokens,
            tokens_per_parameter=tokens_per_parameter,
            per_op=per_op,
            name=name,
        )
    )
    return entries[0] if _single(scenario, prompt, generate) else entries


def predict(
    models,
    device,
    scenario="lilo",
    *,
    weights="bf16",
    activations="bf16",
    kv=None,
    prompt=None,
    generate=None,
    batch=1,
    plan="best",
    logits_all=False,
    tokens=None,
    tokens_per_parameter=None,
    phase="scenario",
    columns=None,
    threads=None,
    frame=False,
):
    """Scores many models at once, in parallel and without the GIL, for search loops.

    models: an iterable of config.json paths, dicts of one, or ``Architecture`` objects
        (fastest: resolved once by ``load``, then only borrowed). Dicts are read under the GIL
        a batch at a time while the workers score the batches before; they are named
        ``"model"``. ``index`` says which input a row is.
    device, scenario and the formats: as for ``analyze`` (scenario defaults to ``"lilo"``;
        several scenarios give one row per model and scenario, model by model).
    phase: which row of ``analyze --format csv`` to return: ``"scenario"`` (the whole
        scenario, default), ``"prefill"`` or ``"decode"``.
    columns: only these columns, in this order: only they are computed (the plan and warnings
        text only when asked for), and Python builds fewer lists, the larger cost when few
        columns are scored per model.
    threads: worker threads (default: all cores).
    frame: return a pandas DataFrame (pandas must be installed).

    Returns a dict of lists: every column of ``analyze --format csv`` plus ``index`` (or those
    named), each value equal to what ``analyze`` gives for that model, bit for bit (the same
    evaluation, without the text ``analyze`` makes around it). The error, when models are bad,
    names the first that fails (a dict Python cannot hand over is found before the models of
    its batch of 2048 are parsed).
    """
    cols = _native.predict(
        models if isinstance(models, (list, tuple)) else list(models),
        device,
        scenario,
        weights=weights,
        activations=activations,
        kv=kv,
        prompt=prompt,
        generate=generate,
        batch=batch,
        plan=plan,
        logits_all=logits_all,
        tokens=tokens,
        tokens_per_parameter=tokens_per_parameter,
        phase=phase,
        columns=columns,
        threads=threads,
    )
    if frame:
        import pandas

        return pandas.DataFrame(cols)
    return cols


def search(space, device, *, out=None, threads=None, plan="best", force=False, max_candidates=100_000_000):
    """Searches a space on a device: the recommendation and why, as ``search`` decides it.

    space: a search-space TOML path, or a dict of one (as ``tomllib.load`` gives).
    device: a built-in device name or a profile JSON path.
    out: also write the folder ``search --out`` writes (report.html, pareto.csv, summary.md,
        recommended.json, outcome.json, the plots), whole, with the same refusals.
    threads: worker threads (default: all cores; outputs do not depend on it).

    Returns a dict: ``recommended``, ``runner_up``, ``fastest``, ``best_by_objective``,
    ``quality_pick`` (rows as pareto.csv has them), ``recommended_config`` (a Hugging Face
    config.json), ``front`` (every front member, as records), ``top``, the counts
    (``candidates``, ``feasible``, ``invalid``, ``rejected``), ``warnings``, ``summary`` (the
    command line's text) and ``out`` (the folder written, or None).
    """
    import os

    return _json.loads(
        _native.search_json(
            space,
            device,
            out=os.fspath(out) if out is not None else None,
            threads=threads,
            plan=plan,
            force=force,
            max_candidates=max_candidates,
        )
    )


def devices():
    """The built-in device profiles, one dict each: ``devices --format json``."""
    return _json.loads(_native.devices_json())


def device(name_or_path):
    """One profile: ``label`` (how reports name its figures: datasheet upper bound, expected
    llama.cpp fit, calibrated), ``upper_bound``, ``held_out_agreement`` (how it predicted runs
    it was not fitted to, or None), ``error_bands`` (its 80% bands per phase and what they
    rest on, or None) and ``profile`` (``devices show``: figures, kind,
    provenance, engine, notes)."""
    return _json.loads(_native.device_json(name_or_path))
