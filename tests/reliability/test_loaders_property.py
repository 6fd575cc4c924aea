"""Property tests on the inputs that name things and the files we read: model names, the
--trust-data option, probe files and DecodingTrust data files. Whatever the text or the bytes,
the only exception is the documented one-line TrustError (naming the file for file errors)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")  # a dev extra; .ci/run installs it
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from comptrust_plugin.data.files import read_jsonl  # noqa: E402
from comptrust_plugin.data.probes import load_probe_set  # noqa: E402
from comptrust_plugin.decodingtrust import parse_data_option  # noqa: E402
from comptrust_plugin.errors import TrustError  # noqa: E402
from comptrust_plugin.models.registry import ModelEntry, resolve_model  # noqa: E402

NAME_PIECES = st.sampled_from([
    "smollm2-135m", "vicuna", "org", "/", "name", "@", "main", "..", "~", " ", "-", "\n", "\x00", "é", ":", "hub",
])
NAMES = st.one_of(st.text(max_size=30), st.lists(NAME_PIECES, max_size=6).map("".join))
# Lines that are nearly probe rows: valid JSON of the wrong shape, torn JSON, and arbitrary text.
ROW_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["id", "scenario", "label", "prompt", "text", "kind", "input", "examples", "option"]),
        inner, max_size=4),
    max_leaves=8,
)
LINES = st.one_of(ROW_VALUES.map(json.dumps), st.text(max_size=30), ROW_VALUES.map(lambda v: json.dumps(v)[:-1]))
FILE_BYTES = st.one_of(
    st.lists(LINES, max_size=5).map(lambda lines: "\n".join(lines).encode("utf-8")),
    st.binary(max_size=60),
)


def _one_line(exc: TrustError) -> None:
    assert str(exc) and "\n" not in str(exc)


@settings(max_examples=300, deadline=None)
@given(NAMES)
def test_model_names_resolve_or_raise_one_line(name: str) -> None:
    try:
        entry = resolve_model(name)
    except TrustError as exc:
        _one_line(exc)
        return
    assert isinstance(entry, ModelEntry)


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(max_size=30), st.sampled_from(["decodingtrust", "decodingtrust@", "decodingtrust@v1",
                                                         "shipped", "/nonexistent/dt", "~", "."])))
def test_data_option_parses_or_raises_one_line(text: str) -> None:
    try:
        parse_data_option(text)
    except TrustError as exc:
        _one_line(exc)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(FILE_BYTES)
def test_probe_file_rows_are_read_or_named(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "scenarios.jsonl"
        path.write_bytes(data)
        try:
            rows = read_jsonl(path, "machine_ethics.scenario")
        except TrustError as exc:
            _one_line(exc)
            assert "scenarios.jsonl" in str(exc)
            return
        assert all(isinstance(row, dict) for row in rows)


# One DecodingTrust data file per dimension that reads local copies, at the path it reads.
DT_FILES = {
    "toxicity": "toxicity/user_prompts/nontoxic.jsonl",
    "stereotype_bias": "stereotype/dataset/stereotype_bias_data.jsonl",
    "machine_ethics": "machine_ethics/ethics/commonsense/cm_test.csv",
    "ood_robustness": "ood/knowledge/qa_2023.jsonl",
}


@settings(max_examples=120, deadline=None)
@given(st.sampled_from(sorted(DT_FILES)), FILE_BYTES)
def test_decodingtrust_files_load_or_name_the_problem(dimension: str, data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / DT_FILES[dimension]
        path.parent.mkdir(parents=True)
        path.write_bytes(data)
        try:
            load_probe_set(dimension, folder)
        except TrustError as exc:
            _one_line(exc)
