"""The readers several dimensions share: DecodingTrust's data files, its hub configs and its output files.

Data files and hub configs both become *tables* (subset name -> rows, each with a "where" for
error messages), so a hub run and a local run of the same data build the same prompts. Every
problem with a file is a one-line TrustError naming it (and the line, where there is one).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from ..data.files import numbered_json_lines
from ..dimensions.probe_set import ProbeSet
from ..errors import TrustError, one_line
from ..storage import sha256_file, stable_hash

HUB_DATASET = "AI-Secure/DecodingTrust"
HUB_NAME = "decodingtrust"

Row = tuple[str, dict[str, Any]]  # (where: "file:line" or "config/split#n", the row)
Tables = dict[str, list[Row]]  # subset name -> rows
HubLoader = Callable[..., Any]


# ------------------------------------------------------------------------- data files
def read_jsonl_rows(path: Path) -> list[Row]:
    try:
        # text mode turns \r\n and \r into \n; split there only (U+2028 may sit inside a string)
        lines = path.read_text(encoding="utf-8").split("\n")
    except FileNotFoundError:
        raise TrustError(f"{path}: missing DecodingTrust data file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TrustError(f"{path}: cannot read DecodingTrust data file ({exc})") from None
    rows: list[Row] = []
    for number, row in numbered_json_lines(path, lines):
        if not isinstance(row, dict):
            raise TrustError(f"{path}:{number}: expected a JSON object per line")
        rows.append((f"{path}:{number}", row))
    if not rows:
        raise TrustError(f"{path}: the DecodingTrust data file has no rows")
    return rows


def read_json_file(path: Path) -> Any:
    """A whole JSON file; every failure is one line naming it (and the line, for bad JSON)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TrustError(f"{path}: missing DecodingTrust data file") from None
    except json.JSONDecodeError as exc:
        raise TrustError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TrustError(f"{path}: cannot read DecodingTrust data file ({exc})") from None


def read_csv_rows(path: Path, tsv: bool = False, what: str = "DecodingTrust data file") -> list[Row]:
    """CSV rows, or TSV rows (tab-separated, no quoting: DT's SST-2 style files hold raw text),
    each with its place (`path:line`); every failure is one line naming the file as `what`."""
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            # line numbers: the header is line 1, so a row's number is its reader's line_num
            reader = (
                csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE) if tsv else csv.DictReader(handle)
            )
            rows = [(f"{path}:{reader.line_num}", dict(row)) for row in reader]
    except FileNotFoundError:
        raise TrustError(f"{path}: missing {what}") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise TrustError(f"{path}: cannot read {what} ({one_line(str(exc))})") from None
    if not rows:
        raise TrustError(f"{path}: the {what} has no rows")
    return rows


def require_files(root: Path, relative: Iterable[str]) -> list[Path]:
    """The named files under `root`; all missing ones named in one line."""
    paths = [root / r for r in relative]
    missing = [str(p.relative_to(root)) for p in paths if not p.is_file()]
    if missing:
        raise TrustError(f"{root}: missing DecodingTrust data file(s): {', '.join(missing)}")
    return paths


def relative_files_hash(root: Path, paths: list[Path], shipped: str | None = None) -> str:
    """Content hashes of the files read, named relative to the data folder, so the same copy
    in another place has the same identity; `shipped`: the hash of shipped probes used beside them."""
    files = [[str(p.relative_to(root)), sha256_file(p)] for p in paths]
    return stable_hash({"decodingtrust_local": files, **({"shipped": shipped} if shipped else {})})


def local_probe_set(dimension: str, probes: Any, root: Path, paths: list[Path]) -> ProbeSet:
    """Probes read from a local copy; relative names in the hash, so the same copy in another
    folder has the same identity."""
    return ProbeSet(dimension, probes, str(root), relative_files_hash(root, paths))


# --------------------------------------------------------------------------- the hub
def hub_tables(
    config: str, revision: str | None, data_files: Sequence[str] | None = None,
    loader: HubLoader | None = None,
) -> tuple[Tables, str]:
    """Every split of one config of the hub dataset as tables, and the data identity.

    `loader` stands in for `datasets.load_dataset` (tests pass one that reads local JSON).
    Failures (no network, unknown config, no `datasets`) become one-line TrustErrors.
    """
    if loader is None:
        try:
            from datasets import load_dataset
        except ImportError:
            raise TrustError("--trust-data=decodingtrust needs the datasets package: pip install datasets") from None
        loader = load_dataset
    kwargs: dict[str, Any] = {"revision": revision}
    if data_files:
        kwargs["data_files"] = list(data_files)
    try:
        loaded = loader(HUB_DATASET, config, **kwargs)
    except Exception as exc:  # datasets raises many types (network, missing config, format)
        reason = one_line(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
        raise TrustError(
            f"--trust-data=decodingtrust: cannot load {HUB_DATASET} config {config!r} "
            f"({type(exc).__name__}: {reason[:200]}); check the network or HF_HUB_OFFLINE, "
            "or use --trust-data=PATH with a local copy of its data/ folder"
        ) from None
    tables: Tables = {}
    fingerprints: dict[str, str] = {}
    for split in loaded:
        rows = loaded[split]
        tables[split] = [(f"{HUB_DATASET}/{config}/{split}#{i}", dict(row)) for i, row in enumerate(rows)]
        fingerprints[split] = str(getattr(rows, "_fingerprint", ""))
    identity = stable_hash({
        "dataset": HUB_DATASET, "config": config, "revision": revision or "default",
        "data_files": list(data_files or ()), "fingerprints": fingerprints,
    })
    return tables, identity


def hub_split(tables: Tables, wanted: str, config: str) -> list[Row]:
    if wanted not in tables:
        raise TrustError(
            f"{HUB_DATASET} config {config!r} has no split {wanted!r} (found: {', '.join(sorted(tables)) or 'none'})"
        )
    return tables[wanted]


# ---------------------------------------------------------------------- output files
def load_output_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TrustError(f"{path}: no such output file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TrustError(f"{path}: cannot read output file ({exc})") from None
    except json.JSONDecodeError as exc:
        raise TrustError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None


def output_jsonl(path: Path) -> list[tuple[int, Any]]:
    try:
        lines = path.read_text(encoding="utf-8").split("\n")  # newlines only: see numbered_json_lines
    except FileNotFoundError:
        raise TrustError(f"{path}: no such output file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TrustError(f"{path}: cannot read output file ({exc})") from None
    rows = list(numbered_json_lines(path, lines))
    if not rows:
        raise TrustError(f"{path}: the output file has no rows")
    return rows


def output_files(
    paths: Sequence[Path], pattern: str, keep: Callable[[Path], bool] = lambda p: True, what: str | None = None
) -> list[Path]:
    """The files named, and the files matching `pattern` below each folder named, sorted;
    `what` names them in the message when there are none (default: the pattern)."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += [p for p in sorted(path.rglob(pattern)) if p.is_file() and keep(p)]
        elif path.is_file():
            found.append(path)
        else:
            raise TrustError(f"{path}: no such file or folder")
    if not found:
        raise TrustError(f"no {what or pattern} output files under {', '.join(str(p) for p in paths)}")
    return found


def reply_text(response: Any, where: str) -> str:
    """The text of an OpenAI-style response: choices[0].message.content (or .text)."""
    try:
        choice = response["choices"][0]
        text = choice["message"]["content"] if "message" in choice else choice["text"]
    except (KeyError, IndexError, TypeError):
        raise TrustError(f"{where}: no choices[0].message.content in the response") from None
    if not isinstance(text, str):
        raise TrustError(f"{where}: the response text is not a string")
    return text


def request_pairs(data: Any, path: Path) -> list[tuple[Any, Any]]:
    """The benchmark's cache layout: a list of [request, response], or {requests, responses}."""
    if isinstance(data, dict) and "requests" in data and "responses" in data:
        return list(zip(data["requests"], data["responses"]))
    if isinstance(data, list) and all(isinstance(x, list) and len(x) == 2 for x in data):
        return [(x[0], x[1]) for x in data]
    raise TrustError(f"{path}: expected a list of [request, response] pairs or {{requests, responses}}")
