"""Stored baselines: a dense model's results in a reviewable JSON file, reused instead of a rerun.

In the manner of pytest-regressions: a missing baseline (or a dimension missing from it) is
written and its test fails, so a human reviews and commits the file; `--trust-update-baseline`
rewrites the entries a run computes and those tests fail once more for review. A stored
baseline records the full identity of what it measured; using it under a different identity
is an error naming the first field that differs, never a silent comparison.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema

from .data.files import schema
from .dimensions.result import DimensionResult
from .errors import TrustError
from .storage import atomic_write_json, locked

FORMAT = 1


@dataclass(frozen=True)
class BaselineEntry:
    """One dimension of a baseline: what identified it, and the dense result."""

    identity: dict[str, Any]  # probe-set hash, request hash (data + prompts + generation settings), scorer
    result: DimensionResult


def first_difference(stored: Any, current: Any, path: str = "") -> str | None:
    """The dotted path of the first field where two identities differ, or None."""
    if isinstance(stored, dict) and isinstance(current, dict):
        for key in sorted(set(stored) | set(current)):
            where = f"{path}.{key}" if path else key
            if key not in stored or key not in current:
                return where
            found = first_difference(stored[key], current[key], where)
            if found:
                return found
        return None
    return None if stored == current else (path or "(value)")


def value_at(identity: Any, dotted: str) -> Any:
    """The value at a dotted path (as first_difference names it), or "(absent)"."""
    for part in dotted.split("."):
        if not isinstance(identity, dict) or part not in identity:
            return "(absent)"
        identity = identity[part]
    return identity


class BaselineStore:
    """The baseline file at `path` for one run identity (model, runtime, tier, seed, scoring)."""

    def __init__(self, path: Path, identity: dict[str, Any]) -> None:
        self.path = path
        self.identity = identity

    def _read(self) -> dict[str, Any] | None:
        if not self.path.exists():
            return None
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            jsonschema.validate(data, schema("baseline"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise TrustError(
                f"baseline {self.path} is not readable JSON ({exc}); fix it or delete it to rebuild"
            ) from None
        except jsonschema.ValidationError as exc:
            where = "/".join(str(p) for p in exc.absolute_path) or "(top level)"
            raise TrustError(
                f"baseline {self.path} does not match the baseline schema at {where}: {exc.message}; "
                "fix it or delete it to rebuild"
            ) from None
        return data

    def _mismatch(self, stored: dict[str, Any], current: dict[str, Any], what: str) -> TrustError:
        field = first_difference(stored, current) or "(value)"
        return TrustError(
            f"baseline {self.path} was made with a different {what}: {field} is "
            f"{value_at(stored, field)!r} there, {value_at(current, field)!r} in this run; "
            "run with matching options, or pass --trust-update-baseline to replace it"
        )

    def load(self, dimension: str, entry_identity: dict[str, Any]) -> BaselineEntry | None:
        """The stored entry for `dimension`, or None when the file or the entry is missing.

        Raises TrustError when the file is corrupt or was made under another identity.
        """
        data = self._read()
        if data is None:
            return None
        if data["identity"] != self.identity:
            raise self._mismatch(data["identity"], self.identity, "run identity")
        entry = data["dimensions"].get(dimension)
        if entry is None:
            return None
        if entry["identity"] != entry_identity:
            raise self._mismatch(entry["identity"], entry_identity, f"{dimension} identity")
        return BaselineEntry(entry["identity"], DimensionResult.from_json(entry["result"]))

    def save(self, dimension: str, entry: BaselineEntry, replace_all: bool = False) -> None:
        """Write (or replace) one dimension's entry; other entries are kept unless the run
        identity changed and `replace_all` is set (an update under new settings starts afresh)."""
        with locked(self.path):
            try:
                data = self._read()
            except TrustError:
                if not replace_all:
                    raise
                data = None
            if data is None or (replace_all and data["identity"] != self.identity):
                data = {"comptrust_baseline": FORMAT, "identity": self.identity, "dimensions": {}}
            elif data["identity"] != self.identity:
                raise self._mismatch(data["identity"], self.identity, "run identity")
            data["dimensions"][dimension] = {"identity": entry.identity, "result": entry.result.to_json()}
            jsonschema.validate(data, schema("baseline"))
            atomic_write_json(self.path, data)
