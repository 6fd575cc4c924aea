"""Load a dimension's probe set: its shipped fixtures, or DecodingTrust's data when asked."""

from __future__ import annotations

from .. import dimensions
from ..dimensions.probe_set import ProbeSet
from .files import fixtures_dir

__all__ = ["ProbeSet", "load_probe_set", "shipped_probe_set"]


def shipped_probe_set(dimension: str) -> ProbeSet:
    """The probes comptrust ships for `dimension` (fixtures/<dimension>, or the folder it was
    registered with)."""
    module = dimensions.get(dimension)
    return module.load_probes(dimensions.fixture_folder(dimension) or fixtures_dir() / dimension)


def load_probe_set(dimension: str, data: str | None = None) -> ProbeSet:
    """The dimension's probes from `data`: the shipped fixtures (None or "shipped"), or
    DecodingTrust's data ("decodingtrust[@REVISION]" from the hub, or a local folder)."""
    if data in (None, "", "shipped"):
        return shipped_probe_set(dimension)
    from ..decodingtrust import load_decodingtrust, parse_data_option

    return load_decodingtrust(dimension, parse_data_option(data))
