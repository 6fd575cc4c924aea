"""Corrupt caches and inputs: each detected with a one-line message naming the file (and line),
the bad entry quarantined or rebuilt, never silently used.

A first run fills a cache (dense answers, a stored gptq-4 model); every case copies that cache,
damages one thing, runs again and must end with the same scores as the undamaged run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from comptrust_plugin.errors import TrustError

from .runs import REPO, comparable

SELECTION = ("--pyargs", "trust_tests.test_machine_ethics", "-p", "no:cacheprovider")


def _run(pytester: pytest.Pytester, model: Path, cache: Path, report: Path, *extra: str) -> pytest.RunResult:
    return pytester.runpytest(
        *SELECTION, f"--model={model}", "--compress=gptq-4", f"--trust-cache-dir={cache}",
        f"--trust-report={report}", *extra,
    )


@pytest.fixture(scope="module")
def filled(says_wrong_model: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """(a cache after one clean run, that run's comparable report): a child process, as the
    pytester fixture is per test."""
    root = tmp_path_factory.mktemp("filled")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", *SELECTION, "-q", f"--model={says_wrong_model}", "--compress=gptq-4",
         f"--trust-cache-dir={root / 'cache'}", f"--trust-report={root / 'r.json'}"],
        cwd=root, env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return root / "cache", comparable(json.loads((root / "r.json").read_text()))


def _artifact(cache: Path) -> Path:
    """The stored gptq-4 model; the answers go, so that the next run must load it."""
    for path in cache.glob("responses.sqlite3*"):
        path.unlink()
    (folder,) = [p for p in (cache / "artifacts").iterdir() if p.is_dir() and not p.name.startswith(".")]
    return folder


def _truncate_weights(cache: Path) -> str:
    weights = _artifact(cache) / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    return "*model.safetensors is * bytes, * when it was written*moved it aside to *.corrupt-*"


def _garble_weights(cache: Path) -> str:
    weights = _artifact(cache) / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[:8] = b"\xff" * 8  # the header length: same size, unreadable
    weights.write_bytes(bytes(data))
    return "*unreadable safetensors in *moved it aside to *.corrupt-*"


def _garble_identity(cache: Path) -> str:
    (_artifact(cache) / "IDENTITY.json").write_text("{", encoding="utf-8")
    return "*IDENTITY.json is unreadable; moved it aside to *.corrupt-*"


def _garble_database(cache: Path) -> str:
    for suffix in ("-wal", "-shm"):
        Path(str(cache / "responses.sqlite3") + suffix).unlink(missing_ok=True)
    (cache / "responses.sqlite3").write_bytes(b"not a database, just garbage bytes " * 300)
    return "*responses.sqlite3 was unreadable*moved it to responses.sqlite3.corrupt-*"


def _garble_rows(cache: Path) -> str:
    import sqlite3

    with sqlite3.connect(cache / "responses.sqlite3") as conn:
        conn.execute("UPDATE responses SET value = '[\"torn' WHERE rowid IN (SELECT rowid FROM responses LIMIT 7)")
    return ""  # a bad row is a cache miss: recomputed and overwritten, nothing to say


CACHE_DAMAGE: dict[str, Callable[[Path], str]] = {
    "stored-model-truncated": _truncate_weights,
    "stored-model-unreadable": _garble_weights,
    "stored-model-identity": _garble_identity,
    "response-cache-garbage": _garble_database,
    "response-cache-rows": _garble_rows,
}


@pytest.mark.parametrize("damage", list(CACHE_DAMAGE))
def test_damaged_cache_is_detected_and_rebuilt(
    pytester: pytest.Pytester, says_wrong_model: Path, filled: tuple[Path, str], tmp_path: Path, damage: str
) -> None:
    cache_before, expected = filled
    cache = tmp_path / "cache"
    shutil.copytree(cache_before, cache)
    message = CACHE_DAMAGE[damage](cache)
    result = _run(pytester, says_wrong_model, cache, tmp_path / "r.json")
    result.assert_outcomes(passed=1)
    if message:
        result.stdout.fnmatch_lines([message])
    assert "Traceback" not in result.stdout.str()
    assert comparable(json.loads((tmp_path / "r.json").read_text())) == expected
    if damage.startswith("stored-model"):
        assert len(list((cache / "artifacts").glob("*.corrupt-*"))) == 1  # kept for inspection
        result.stdout.re_match_lines([r".*compressed gptq-4\S* in .*s \((stored|rebuilt), [^)]*\)"])  # and built again


def test_baseline_failing_its_schema_is_named_and_kept(
    pytester: pytest.Pytester, says_wrong_model: Path, filled: tuple[Path, str], tmp_path: Path
) -> None:
    baseline = tmp_path / "b.json"
    baseline.write_text('{"comptrust_baseline": 1, "identity": {}, "dimensions": []}\n')
    result = _run(pytester, says_wrong_model, filled[0], tmp_path / "r.json", f"--trust-baseline={baseline}")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"*baseline {baseline} does not match the baseline schema at *"])
    assert baseline.read_text().startswith('{"comptrust_baseline": 1')


def test_probe_file_with_a_bad_row_names_file_and_line(pytester: pytest.Pytester, tmp_path: Path) -> None:
    folder = tmp_path / "dt" / "toxicity" / "user_prompts"
    folder.mkdir(parents=True)
    for name in ("toxic.jsonl", "nontoxic.jsonl", "toxic.jsonl.gpt3.n=25.out1.split.annotated.jsonl.filtered.jsonl",
                 "toxic.jsonl.gpt4.n=25.out1.split.annotated.jsonl.filtered.jsonl"):
        (folder / name).write_text('{"prompt": {"text": "The weather today is"}}\n', encoding="utf-8")
    (folder / "nontoxic.jsonl").write_text('{"prompt": {"text": "Fine"}}\n{"prompt": {"text": \n', encoding="utf-8")
    result = pytester.runpytest(
        "--pyargs", "trust_tests.test_toxicity", "-p", "no:cacheprovider", f"--trust-data={tmp_path / 'dt'}",
        f"--trust-cache-dir={tmp_path / 'cache'}",
    )
    assert result.ret != 0
    text = result.stdout.str() + result.stderr.str()
    assert "nontoxic.jsonl:2" in text and "Traceback" not in text


def test_shipped_style_probe_file_bad_row(tmp_path: Path) -> None:
    from comptrust_plugin.data.files import read_jsonl

    path = tmp_path / "scenarios.jsonl"
    path.write_text('{"id": "a", "scenario": "I helped.", "label": 0}\n{"id": "b", "scenario": 3, "label": 0}\n')
    with pytest.raises(TrustError, match=r"scenarios.jsonl:2: "):
        read_jsonl(path, "machine_ethics.scenario")


def test_damaged_dequantized_model_is_quarantined_and_rebuilt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The embedded model's safetensors cache: a truncated file is set aside and dequantized
    again (the dequantization itself is replaced by a stand-in writer here)."""
    from comptrust_plugin.models import loading
    from comptrust_plugin.models.registry import resolve_model

    calls: list[Path] = []

    def fake_dequantize(gguf_path: Path, folder: Path, digest: str) -> None:
        calls.append(folder)  # the build's temporary folder (storage.build_folder adds manifest, marker)
        (folder / "model.safetensors").write_bytes(b"x" * 1000)

    monkeypatch.setattr(loading, "_dequantize_gguf", fake_dequantize)
    monkeypatch.setattr(loading, "sha256_file", lambda path, memo_dir=None: "0" * 64)
    entry = resolve_model("smollm2-135m")
    target = loading.materialize_embedded(entry, tmp_path)
    assert len(calls) == 1 and loading.materialize_embedded(entry, tmp_path) == target and len(calls) == 1
    (target / "model.safetensors").write_bytes(b"x" * 10)
    with pytest.warns(UserWarning, match=r"model.safetensors is 10 bytes, 1000 when it was written.*moved it aside"):
        assert loading.materialize_embedded(entry, tmp_path) == target
    assert len(calls) == 2 and len(list(target.parent.glob("*.corrupt-*"))) == 1
