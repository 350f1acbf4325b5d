"""Type stubs of rooflinebench's Python package (see __init__.py for the full docstrings)."""

import os
from typing import Any, Iterable, Literal, Mapping, Optional, Sequence, Union, overload

from ._rooflinebench import Architecture as Architecture
from ._rooflinebench import Error as Error
from ._rooflinebench import load as load

PathLike = Union[str, "os.PathLike[str]"]
Model = Union[PathLike, Mapping[str, Any], Architecture]
Device = PathLike
Scenario = Literal["siso", "silo", "liso", "lilo"]
Format = Literal["f32", "f16", "bf16", "int8", "q8_0", "q4_0", "q4_k_m"]

@overload
def analyze(
    model: Model,
    device: Device,
    scenario: Scenario,
    *,
    weights: str = "bf16",
    activations: str = "bf16",
    kv: Optional[str] = None,
    prompt: None = None,
    generate: None = None,
    batch: int = 1,
    plan: Literal["best", "naive"] = "best",
    logits_all: bool = False,
    tokens: Optional[float] = None,
    tokens_per_parameter: Optional[float] = None,
    per_op: bool = False,
    name: Optional[str] = None,
) -> dict[str, Any]:
    """One scenario: `analyze --format json`'s entry as a dict."""

@overload
def analyze(
    model: Model,
    device: Device,
    scenario: None = None,
    *,
    weights: str = "bf16",
    activations: str = "bf16",
    kv: Optional[str] = None,
    prompt: int,
    generate: int,
    batch: int = 1,
    plan: Literal["best", "naive"] = "best",
    logits_all: bool = False,
    tokens: Optional[float] = None,
    tokens_per_parameter: Optional[float] = None,
    per_op: bool = False,
    name: Optional[str] = None,
) -> dict[str, Any]:
    """A custom scenario of `prompt` and `generate` tokens: one dict."""

@overload
def analyze(
    model: Model,
    device: Device,
    scenario: Union[None, Literal["all"], Sequence[str]] = None,
    *,
    weights: str = "bf16",
    activations: str = "bf16",
    kv: Optional[str] = None,
    prompt: None = None,
    generate: None = None,
    batch: int = 1,
    plan: Literal["best", "naive"] = "best",
    logits_all: bool = False,
    tokens: Optional[float] = None,
    tokens_per_parameter: Optional[float] = None,
    per_op: bool = False,
    name: Optional[str] = None,
) -> list[dict[str, Any]]:
    """Several scenarios (all four by default): a list, as the command line prints."""

def predict(
    models: Iterable[Model],
    device: Device,
    scenario: Union[str, Sequence[str], None] = "lilo",
    *,
    weights: str = "bf16",
    activations: str = "bf16",
    kv: Optional[str] = None,
    prompt: Optional[int] = None,
    generate: Optional[int] = None,
    batch: int = 1,
    plan: Literal["best", "naive"] = "best",
    logits_all: bool = False,
    tokens: Optional[float] = None,
    tokens_per_parameter: Optional[float] = None,
    phase: Literal["scenario", "prefill", "decode"] = "scenario",
    columns: Optional[Sequence[str]] = None,
    threads: Optional[int] = None,
    frame: bool = False,
) -> dict[str, list[Any]]:
    """Many models in parallel without the GIL: `analyze --format csv`'s rows for `phase` as
    columns, plus `index` (the model's position), or only the `columns` named, in that order;
    a pandas DataFrame with `frame=True`. Values equal `analyze`'s bit for bit. The profile's 80%
    error band is in `prefill_tokens_per_s_low/high` and `decode_tokens_per_s_low/high` (with
    `band_coverage` and `band_basis`), and `check_command` is the llama-bench command that
    checks a figure on the device; all None where the profile has none (upper bounds)."""

def search(
    space: Union[PathLike, Mapping[str, Any]],
    device: Device,
    *,
    out: Optional[PathLike] = None,
    threads: Optional[int] = None,
    plan: Literal["best", "naive"] = "best",
    force: bool = False,
    max_candidates: int = 100_000_000,
) -> dict[str, Any]:
    """A search: recommended, runner_up, fastest, best_by_objective, quality_pick,
    recommended_config, front and top (records), counts, warnings, summary, out."""

def devices() -> list[dict[str, Any]]:
    """The built-in profiles: `devices --format json`."""

def device(name_or_path: Device) -> dict[str, Any]:
    """One profile: label, upper_bound, held_out_agreement, error_bands (its 80% bands per
    phase and their basis) and profile (`devices show`)."""
