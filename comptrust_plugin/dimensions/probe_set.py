"""What a dimension's probe loader returns: its probes, where they came from, and their hash."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import TrustError


@dataclass(frozen=True)
class ProbeSet:
    dimension: str
    probes: Any  # the dimension's own probe dataclass
    source: str  # where it came from (folder)
    sha256: str  # content hash of every file read
    # what the source lacked that a complete run has (a run says so; --trust-strict-data refuses it)
    notes: tuple[str, ...] = ()


def unique_ids(path: Path, section: str, ids: Iterable[str]) -> None:
    """Refuse a probe file whose `section` repeats an id, naming the file and the entry."""
    seen: set[str] = set()
    for index, item_id in enumerate(ids):
        if item_id in seen:
            raise TrustError(f"{path}: {section}/{index}: duplicate id {item_id!r}")
        seen.add(item_id)
