"""The compiled module (Rust, PyO3). Use the functions of `rooflinebench` itself."""

import os
from typing import Any, Mapping, Optional, Sequence, Union

class Error(ValueError):
    """Bad input; the message is the command line's one line."""

class Architecture:
    """A model's resolved architecture: what a config.json says, every default decided."""

    @property
    def name(self) -> str: ...
    @property
    def parameters(self) -> int:
        """Parameters, embeddings included (tied ones once)."""
    @property
    def active_parameters(self) -> int:
        """Parameters one token uses."""
    @property
    def num_layers(self) -> int: ...
    @property
    def hidden_size(self) -> int: ...
    @property
    def vocab_size(self) -> int: ...
    @property
    def kind(self) -> str:
        """The stack's attention kind (mha, gqa, mqa, mla, or a hybrid's kinds)."""
    def to_json(self) -> str:
        """The resolved description as JSON text (layer kinds included)."""
    def to_config_json(self) -> str:
        """A Hugging Face config.json for it (what `export` writes)."""

def load(
    model: Union[str, "os.PathLike[str]", Mapping[str, Any], Architecture], name: Optional[str] = None
) -> Architecture:
    """A config.json path, a dict of one, or an Architecture (renamed when `name` is given)."""

def analyze_json(model: Any, device: Any, scenario: Any = None, **kw: Any) -> str: ...
def predict(models: Sequence[Any], device: Any, scenario: Any = None, **kw: Any) -> dict[str, list[Any]]: ...
def scoring_loop_seconds(
    models: Sequence[Any], device: Any, scenario: Any = None, *, threads: Optional[int] = None
) -> float:
    """Seconds the Rust scoring loop (the search's evaluator alone, no rows, GIL released) takes on
    these models: the reference `python/bench.py` sets `predict` against."""
def search_json(space: Any, device: Any, **kw: Any) -> str: ...
def devices_json() -> str: ...
def device_json(name: Any) -> str: ...
