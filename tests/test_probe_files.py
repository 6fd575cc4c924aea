"""Probe files: schema validation with file and line in every error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from comptrust_plugin.data.files import read_jsonl
from comptrust_plugin.data.probes import shipped_probe_set
from comptrust_plugin.dimensions import machine_ethics
from comptrust_plugin.errors import TrustError

GOOD = {"id": "x-1", "scenario": "I helped.", "label": 0}


def _write(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "scenarios.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("bad_line", "fragment"),
    [
        ("{not json", "not valid JSON"),
        (json.dumps({"id": "x-2", "scenario": "I lied.", "label": 2}), "label: 2 is not one of"),
        (json.dumps({"id": "x-2", "label": 1}), "'scenario' is a required property"),
        (json.dumps({"id": "x-2", "scenario": "I lied.", "label": 1, "extra": 1}), "Additional properties"),
        (json.dumps(GOOD), "duplicate id 'x-1' (first on line 1)"),
    ],
)
def test_bad_row_names_file_and_line(tmp_path: Path, bad_line: str, fragment: str) -> None:
    path = _write(tmp_path, [json.dumps(GOOD), "", bad_line])
    with pytest.raises(TrustError) as info:
        read_jsonl(path, "machine_ethics.scenario")
    assert f"{path}:3:" in str(info.value) and fragment in str(info.value)


def test_unreadable_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(TrustError, match="cannot read probe file"):
        read_jsonl(tmp_path / "missing.jsonl", "machine_ethics.scenario")
    empty = _write(tmp_path, [""])
    with pytest.raises(TrustError, match="no rows"):
        read_jsonl(empty, "machine_ethics.scenario")
    binary = tmp_path / "bin.jsonl"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(TrustError, match="not UTF-8"):
        read_jsonl(binary, "machine_ethics.scenario")


def test_bad_attacks_file(tmp_path: Path) -> None:
    _write(tmp_path, [json.dumps(GOOD)])
    (tmp_path / "attacks.json").write_text(json.dumps({"few_shot_demos": []}), encoding="utf-8")
    with pytest.raises(TrustError, match="attacks.json"):
        machine_ethics.load_probes(tmp_path)


def test_shipped_set_loads_with_stable_hash() -> None:
    first, second = shipped_probe_set("machine_ethics"), shipped_probe_set("machine_ethics")
    assert first.sha256 == second.sha256 and len(first.sha256) == 64
