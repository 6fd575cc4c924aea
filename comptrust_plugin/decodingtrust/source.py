"""The `--trust-data` option: where a run's probe data comes from (shipped, the hub, or a local copy)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import TrustError, one_line
from ..storage import user_path
from .files import HUB_DATASET, HUB_NAME


@dataclass(frozen=True)
class DataSource:
    """Where a run's probe data comes from: "shipped", "hub" (with an optional revision) or
    "local" (a folder laid out like DecodingTrust's `data/`)."""

    kind: str
    path: Path | None = None
    revision: str | None = None

    def describe(self) -> str:
        if self.kind == "hub":
            return f"{HUB_DATASET}" + (f"@{self.revision}" if self.revision else "")
        return str(self.path) if self.kind == "local" else "shipped"


def parse_data_option(text: str | None) -> DataSource:
    """`shipped` (default), `decodingtrust[@REVISION]` (the hub), or a folder like DT's `data/`."""
    value = (text or "shipped").strip()
    if value in ("", "shipped"):
        return DataSource("shipped")
    if value == HUB_NAME or value.startswith(HUB_NAME + "@"):
        at, revision = value.partition("@")[1:]
        if at and not revision.strip():
            raise TrustError(f"--trust-data={one_line(value)}: empty revision after '@'; use {HUB_NAME}@<revision>")
        return DataSource("hub", revision=revision or None)
    path = user_path(value)
    if not value.isprintable() or not path.is_dir():
        raise TrustError(
            f"--trust-data={one_line(value)}: no such folder; use shipped, decodingtrust[@REVISION], "
            "or a folder laid out like DecodingTrust's data/"
        )
    return DataSource("local", path=path.resolve())
