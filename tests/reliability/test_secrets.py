"""An API key in the environment never reaches a report, a log line, a cache or a baseline."""

from __future__ import annotations

from pathlib import Path

import pytest

SECRET = "sk-comptrust-canary-5f3a9e1d"


def test_api_key_appears_in_no_artifact_of_a_run(
    pytester: pytest.Pytester, tmp_path: Path, says_wrong_model: Path, says_not_wrong_model: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PERSPECTIVE_API_KEY", SECRET)
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    out = tmp_path / "out"
    out.mkdir()
    result = pytester.runpytest(
        "--pyargs", "trust_tests.test_machine_ethics", "-p", "no:cacheprovider",
        f"--trust-cache-dir={tmp_path / 'cache'}", f"--model={says_wrong_model}",
        f"--compress=rtn-8,hub:{says_not_wrong_model}", f"--trust-report={out / 'r.json'}",
        f"--trust-markdown={out / 's.md'}", f"--trust-flips={out / 'f.jsonl'}",
        f"--trust-baseline={out / 'b.json'}", "-v",
    )
    result.assert_outcomes(failed=2)  # baseline created (review), and the 50-point drop
    assert SECRET not in result.stdout.str() + result.stderr.str()
    files = [p for p in (tmp_path / "cache").rglob("*") if p.is_file()] + list(out.iterdir())
    assert len(files) >= 5 and any(p.suffix == ".sqlite3" for p in files)
    for path in files:
        assert SECRET.encode() not in path.read_bytes(), path
