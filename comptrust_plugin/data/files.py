"""Read the project's text, JSONL and JSON files: one-line errors naming the file (and line), schema checks."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema

import comptrust_plugin

from ..errors import TrustError
from ..storage import sha256_file


def fixtures_dir() -> Path:
    """The shipped probe data: `comptrust_plugin/fixtures` in a wheel, `fixtures/` in a checkout."""
    package_dir = Path(comptrust_plugin.__file__).parent
    for candidate in (package_dir / "fixtures", package_dir.parent / "fixtures"):
        if candidate.is_dir():
            return candidate
    raise TrustError("comptrust's shipped probe data (fixtures/) is missing; reinstall comptrust")


@cache
def schema(name: str) -> dict[str, Any]:
    text = resources.files("comptrust_plugin.schemas").joinpath(f"{name}.schema.json").read_text("utf-8")
    return json.loads(text)


def _validator(name: str) -> jsonschema.protocols.Validator:
    chosen = schema(name)
    cls = jsonschema.validators.validator_for(chosen)
    return cls(chosen)


def _describe(error: jsonschema.ValidationError) -> str:
    where = "/".join(str(p) for p in error.absolute_path)
    return f"{where + ': ' if where else ''}{error.message}"


def numbered_json_lines(path: Path, lines: Iterable[str]) -> Iterator[tuple[int, Any]]:
    """(1-based line number, parsed value) of each non-blank line; a line that is not JSON
    stops with one line naming `path` and the line number. `lines` split on newlines only
    (a file's lines, or its text split at "\n"): str.splitlines would also split at U+2028 and
    friends, which JSON allows raw inside strings."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise TrustError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
        yield number, value


def read_text(path: Path, what: str) -> str:
    """The whole text of a UTF-8 file, line ends normalised as `Path.read_text` does (Python's
    text mode). A file that cannot be opened, or is not UTF-8, stops with one line naming `path`
    (and, when it cannot be opened, `what` it was read as)."""
    try:
        handle = path.open(encoding="utf-8")
    except OSError as exc:
        raise TrustError(f"{path}: cannot read {what} ({exc.strerror})") from None
    with handle:
        try:
            return handle.read()
        except UnicodeDecodeError:
            raise TrustError(f"{path}: not UTF-8 text") from None


def json_lines(path: Path, what: str) -> Iterator[tuple[int, Any]]:
    """(1-based line number, parsed value) of each non-blank line of a JSONL file, read by
    `read_text` and parsed by `numbered_json_lines`: every failure is one line naming the file."""
    return numbered_json_lines(path, read_text(path, what).split("\n"))


def read_jsonl(path: Path, schema_name: str) -> list[dict[str, Any]]:
    """Every row of a JSONL file, each validated; the first bad row raises with its line number."""
    validator = _validator(schema_name)
    rows: list[dict[str, Any]] = []
    seen_ids: dict[str, int] = {}
    for number, row in json_lines(path, "probe file"):
        error = next(iter(validator.iter_errors(row)), None)
        if error is not None:
            raise TrustError(f"{path}:{number}: {_describe(error)}")
        row_id = row.get("id")
        if isinstance(row_id, str):
            if row_id in seen_ids:
                raise TrustError(f"{path}:{number}: duplicate id {row_id!r} (first on line {seen_ids[row_id]})")
            seen_ids[row_id] = number
        rows.append(row)
    if not rows:
        raise TrustError(f"{path}: the probe file has no rows")
    return rows


def read_json(path: Path, schema_name: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise TrustError(f"{path}: cannot read probe file ({exc.strerror})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise TrustError(f"{path}: not valid JSON ({exc})") from None
    error = next(iter(_validator(schema_name).iter_errors(data)), None)
    if error is not None:
        raise TrustError(f"{path}: {_describe(error)}")
    return data


def files_hash(paths: list[Path]) -> str:
    """Identity of a probe set: content hashes of its files (names included)."""
    import hashlib

    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode() + b"\0" + sha256_file(path).encode() + b"\0")
    return digest.hexdigest()
