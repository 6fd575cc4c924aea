"""The dimension registry: every trust dimension, in report order, and the contract each one keeps.

A dimension is a module that meets `Dimension` (below): it loads its shipped probes, picks a
tier, builds requests, and scores outputs. Scoring is pure: no module here imports torch or
pytest (a test enforces it), so dimensions run in milliseconds and re-score outputs produced
anywhere. This registry is the only list of dimensions: the plugin's options, probe loading,
DecodingTrust's loaders and re-scorers, and the tests all read it. Adding a dimension is its
module, its fixtures, and one line in `_BUILTIN` (or a `register` call, for one of your own).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from ..engine.requests import GenerationRequest
from ..errors import TrustError
from . import (
    adversarial_demonstrations,
    adversarial_robustness,
    benign_utility,
    fairness,
    machine_ethics,
    ood_robustness,
    privacy,
    stereotype_bias,
    toxicity,
)
from .probe_set import ProbeSet
from .result import SCORING_VARIANTS, DimensionResult, ItemOutcome

VARIANTS = SCORING_VARIANTS  # every dimension implements both (see each module's docstring)
# The external scorers a dimension may ask for (`Dimension.EXTERNAL_SCORER`).
EXTERNAL_SCORERS = ("toxicity",)


@runtime_checkable
class Dimension(Protocol):
    """What a dimension module provides. `probes` is the module's own frozen dataclass."""

    NAME: str  # identifier: report rows, tolerance keys, fixture folder, cache keys
    TITLE: str  # human name
    VARIANTS: tuple[str, ...]  # the scoring variants it implements (all of `VARIANTS`)
    # None, or the external scorer whose values `score` needs for `texts_to_score` (e.g. toxicity)
    EXTERNAL_SCORER: str | None
    # Optional `LABEL_ANSWERS = True`: its answers are class labels (gate.py checks near-constancy).
    # Optional `guess_rates(probes) -> {request key: chance}` where every item is right or wrong and
    # a uniform guesser among its labels scores that chance (gate.py checks the dense model beats it).

    def load_probes(self, folder: Path) -> ProbeSet:
        """The shipped probe set from `folder` (schema-checked; one-line errors naming file and row)."""
        ...

    def select(self, probes: Any, samples: str | int, seed: int) -> Any:
        """The probes a tier asks: "smoke", "full", or a seeded subsample capped at an integer."""
        ...

    def build_requests(self, probes: Any) -> list[GenerationRequest]:
        """Every request to send the model; keys are stable across models and runs."""
        ...

    def texts_to_score(self, probes: Any, outputs: Mapping[str, list[str]]) -> list[str]:
        """The outputs the external scorer must rate ([] for a dimension without one)."""
        ...

    def score(self, probes: Any, outputs: Mapping[str, list[str]], variant: str, **scores: Any) -> DimensionResult:
        """The result from outputs (request key -> samples); `scores=` carries external scorer values."""
        ...

    def aggregate(self, probes: Any, outcomes: Sequence[ItemOutcome], variant: str) -> float:
        """The main score recomputed from judged outcomes (a bootstrap resample may repeat keys)."""
        ...

    def resample_unit(self, key: str) -> str:
        """The unit the paired bootstrap resamples an outcome with (items sharing a unit move together)."""
        ...


_MEMBERS = (
    "NAME", "TITLE", "VARIANTS", "EXTERNAL_SCORER", "load_probes", "select", "build_requests",
    "texts_to_score", "score", "aggregate", "resample_unit",
)
_BUILTIN = (
    toxicity, stereotype_bias, adversarial_robustness, ood_robustness, adversarial_demonstrations,
    privacy, machine_ethics, fairness, benign_utility,
)
_registered: dict[str, Dimension] = {}
_fixtures: dict[str, Path] = {}


def register(dimension: Any, fixtures: Path | None = None) -> Dimension:
    """Add a dimension (checked against `Dimension`); `fixtures` is its probe folder when it does
    not ship under comptrust's own fixtures/<NAME>. Registering the same module again replaces it."""
    missing = [member for member in _MEMBERS if not hasattr(dimension, member)]
    if missing:
        raise TrustError(f"dimension {getattr(dimension, '__name__', dimension)!r} lacks {', '.join(missing)}")
    name = dimension.NAME
    known = _registered.get(name)
    # The same module imported again (e.g. a conftest reloaded) replaces itself; another clashes.
    if known is not None and known is not dimension and _module_name(known) != _module_name(dimension):
        raise TrustError(f"a dimension named {name!r} is already registered ({_module_name(known)})")
    unknown = set(VARIANTS) - set(dimension.VARIANTS)
    if unknown:
        raise TrustError(f"dimension {name!r} does not implement the scoring variant(s) {', '.join(sorted(unknown))}")
    if dimension.EXTERNAL_SCORER not in (None, *EXTERNAL_SCORERS):
        raise TrustError(f"dimension {name!r} asks for an unknown scorer {dimension.EXTERNAL_SCORER!r}")
    _registered[name] = dimension
    if fixtures is not None:
        _fixtures[name] = fixtures
    return dimension


def _module_name(dimension: Any) -> str:
    return str(getattr(dimension, "__name__", repr(dimension)))


def all_dimensions() -> tuple[Dimension, ...]:
    """Every registered dimension, in report order (the built-in nine first)."""
    return tuple(_registered.values())


def names() -> tuple[str, ...]:
    return tuple(_registered)


def get(name: str) -> Dimension:
    if name not in _registered:
        raise TrustError(f"unknown dimension {name!r}; choose one of {', '.join(_registered)}")
    return _registered[name]


def fixture_folder(name: str) -> Path | None:
    """The probe folder given at registration, or None for comptrust's own fixtures/<name>."""
    return _fixtures.get(name)


for _module in _BUILTIN:
    register(_module)
