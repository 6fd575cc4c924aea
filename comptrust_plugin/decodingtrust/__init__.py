"""DecodingTrust interoperability: its data as probe sets (`--trust-data`) and its output files re-scored.

Every dimension DecodingTrust covers has one module here, named as the dimension, holding both
directions and one face: `load_local(root) -> ProbeSet` (a local copy laid out like its
repository's `data/` folder); `HUB_CONFIG` (its config of the hub dataset, or None where it
loads only from a local copy) with `HUB_DATA_FILES` and `load_hub(tables, where) -> probes`;
and `rescore(paths, data) -> Rescored` (its generation output files, under both scoring
variants). The dimension registry is the only list of dimensions: a dimension's module here is
found by its name, and messages list the covered dimensions in the registry's order.

A run's data identity (hashes of the local files read, or dataset + revision + config + the
fingerprints `datasets` computes from the downloaded files) becomes the ProbeSet's sha256,
which enters every cache key and report row as the shipped fixtures' hash does.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType

from .. import dimensions
from ..dimensions.probe_set import ProbeSet
from ..errors import TrustError, one_line
from .files import HUB_DATASET, HubLoader, hub_tables
from .rescored import Rescored
from .source import DataSource, parse_data_option

__all__ = [
    "HUB_DATASET", "DataSource", "Rescored", "dimension_module", "load_decodingtrust", "loaders",
    "parse_data_option", "rescore", "rescorers",
]


def dimension_module(name: str) -> ModuleType | None:
    """The DecodingTrust module of the registered dimension `name`, or None where it has none."""
    if name not in dimensions.names() or not name.isidentifier():
        return None
    qualified = f"{__name__}.{name}"
    if importlib.util.find_spec(qualified) is None:
        return None
    found = importlib.import_module(qualified)
    return found if getattr(found, "NAME", None) == name else None  # not a helper module that shares a name


def _modules(member: str) -> list[ModuleType]:
    return [m for name in dimensions.names() if (m := dimension_module(name)) is not None and hasattr(m, member)]


def loaders() -> tuple[ModuleType, ...]:
    """The modules that load DecodingTrust's data, in registry order."""
    return tuple(_modules("load_local"))


def rescorers() -> tuple[ModuleType, ...]:
    """The modules that re-score DecodingTrust's output files, in registry order."""
    return tuple(_modules("rescore"))


def load_decodingtrust(dimension: str, source: DataSource, loader: HubLoader | None = None) -> ProbeSet:
    """The dimension's probes from DecodingTrust's data (hub or local copy).

    `loader` stands in for `datasets.load_dataset` (tests pass one that reads local JSON)."""
    found = dimension_module(dimension)
    if found is None or not hasattr(found, "load_local"):
        raise TrustError(
            f"--trust-data={source.describe()}: {dimension} cannot run on DecodingTrust's data yet "
            f"(supported: {', '.join(m.NAME for m in loaders())}); run it with --trust-data=shipped"
        )
    if source.kind == "local":
        assert source.path is not None
        return found.load_local(source.path)
    if found.HUB_CONFIG is None:
        raise TrustError(
            f"--trust-data={source.describe()}: {dimension} loads only from a local copy of DecodingTrust's "
            "data/ folder (the hub config's row layout is not confirmed); use --trust-data=PATH"
        )
    config = found.HUB_CONFIG
    tables, identity = hub_tables(config, source.revision, found.HUB_DATA_FILES, loader)
    where = f"{HUB_DATASET}/{config}" + (f"@{source.revision}" if source.revision else "")
    return ProbeSet(dimension, found.load_hub(tables, where), where, identity)


def rescore(
    dimension: str, paths: Iterable[Path | str], data: Path | str | None = None, toxicity_scorer: str | None = None
) -> Rescored:
    """Score DecodingTrust output files of one dimension under both variants; `toxicity_scorer`
    (a --trust-toxicity-scorer value) rates unscored continuations of a dimension that needs it."""
    found = dimension_module(dimension)
    if found is None or not hasattr(found, "rescore"):
        covered = ", ".join(m.NAME for m in rescorers())
        raise TrustError(f"--dimension={one_line(dimension)}: re-scoring covers {covered}")
    chosen = [Path(p) for p in paths]
    if not chosen:
        raise TrustError("rescore: name at least one output file or folder")
    scorer = {"scorer": toxicity_scorer} if toxicity_scorer and dimensions.get(dimension).EXTERNAL_SCORER else {}
    rescored: Rescored = found.rescore(chosen, Path(data) if data is not None else None, **scorer)
    return rescored
