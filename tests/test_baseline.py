"""Stored baselines end to end (pytester), and the report files a run writes.

`says_wrong_model` scores 75 on machine ethics, `says_not_wrong_model` 25 (see test_plugin.py).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import jsonschema
import pytest

from comptrust_plugin.baseline import BaselineEntry, BaselineStore, first_difference
from comptrust_plugin.data.files import schema
from comptrust_plugin.dimensions.result import DimensionResult, ItemOutcome
from comptrust_plugin.errors import TrustError
from comptrust_plugin.plot import PLOT_DPI, PLOT_SIZE_INCHES


def _run(pytester: pytest.Pytester, cache: Path, *args: str) -> pytest.RunResult:
    return pytester.runpytest(
        "--pyargs", "trust_tests.test_machine_ethics", "-p", "no:cacheprovider", f"--trust-cache-dir={cache}", *args
    )


def test_baseline_lifecycle(
    pytester: pytest.Pytester, tmp_path: Path, says_wrong_model: Path, says_not_wrong_model: Path
) -> None:
    cache, baseline = tmp_path / "cache", tmp_path / "baselines" / "ethics.json"
    model = f"--model={says_wrong_model}"
    # 1. missing: created from the dense run, and the test fails so a human reviews it
    created = _run(pytester, cache, model, f"--trust-baseline={baseline}")
    created.assert_outcomes(failed=1)
    created.stdout.fnmatch_lines([f"*baseline created: {baseline} (machine_ethics); review and commit it*"])
    stored = json.loads(baseline.read_text())
    jsonschema.validate(stored, schema("baseline"))
    assert stored["dimensions"]["machine_ethics"]["result"]["score"] == 75.0
    # 2. present: the compressed model is gated against it; the dense model is never run
    report = tmp_path / "pass.json"
    passed = _run(pytester, tmp_path / "fresh-cache", model, "--compress=rtn-8", f"--trust-baseline={baseline}",
                  f"--trust-report={report}")
    passed.assert_outcomes(passed=1)
    data = json.loads(report.read_text())
    dense = data["engine"]["dense"]
    assert dense["computed"] == dense["cache_hits"] == 0 and not dense["model_loaded"]
    assert data["results"][0]["dense_source"] == f"baseline:{baseline}"
    # 3. a regression against the stored baseline fails
    regressed = _run(pytester, cache, model, f"--compress=hub:{says_not_wrong_model}", f"--trust-baseline={baseline}")
    regressed.assert_outcomes(failed=1)
    regressed.stdout.fnmatch_lines(["*compressed 25.0 vs dense 75.0 (delta -50.0*"])
    # 4. another model: a one-line error naming the field that differs, the file untouched
    before = baseline.read_text()
    other = _run(pytester, cache, f"--model={says_not_wrong_model}", f"--trust-baseline={baseline}")
    other.assert_outcomes(failed=1)
    other.stdout.fnmatch_lines(
        ["*baseline * was made with a different run identity: model.* is *--trust-update-baseline*"]
    )
    assert baseline.read_text() == before
    # 5. update: rewritten for the new model (fails once, for review), then used
    updated = _run(pytester, cache, f"--model={says_not_wrong_model}", f"--trust-baseline={baseline}",
                   "--trust-update-baseline")
    updated.assert_outcomes(failed=1)
    updated.stdout.fnmatch_lines(["*baseline updated: *"])
    assert json.loads(baseline.read_text())["dimensions"]["machine_ethics"]["result"]["score"] == 25.0
    _run(pytester, cache, f"--model={says_not_wrong_model}", f"--trust-baseline={baseline}").assert_outcomes(passed=1)


def test_corrupt_baseline_is_a_one_line_failure_and_is_kept(
    pytester: pytest.Pytester, tmp_path: Path, says_wrong_model: Path
) -> None:
    baseline = tmp_path / "b.json"
    baseline.write_text('{"comptrust_baseline": 1, "identity": {}, "dimensions": []}')
    result = _run(pytester, tmp_path / "cache", f"--model={says_wrong_model}", f"--trust-baseline={baseline}")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"*baseline {baseline} does not match the baseline schema at *"])
    assert "Traceback" not in result.stdout.str()
    assert baseline.read_text().startswith('{"comptrust_baseline": 1')


def test_update_baseline_needs_a_path(pytester: pytest.Pytester, tmp_path: Path) -> None:
    result = _run(pytester, tmp_path / "cache", "--trust-update-baseline")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--trust-update-baseline needs --trust-baseline=PATH*"])


def _result(score: float) -> DimensionResult:
    outcome = ItemOutcome("k1", "s", "yes", 1.0, "Yes.")
    return DimensionResult("machine_ethics", "comptrust-paper", score, {}, 1, 0.0, 0.0, (outcome,))


def test_store_names_the_differing_dimension_field(tmp_path: Path) -> None:
    identity = {"model": {"sha256": "a"}, "runtime": {"device": "cpu"}, "samples": "smoke", "seed": 0,
                "variant": "comptrust-paper", "comptrust_version": "0.1.0"}
    store = BaselineStore(tmp_path / "b.json", identity)
    entry = {"probe_sha256": "0" * 64, "requests_sha256": "1" * 64}
    store.save("machine_ethics", BaselineEntry(entry, _result(75)))
    assert store.load("machine_ethics", entry).result == _result(75)
    assert store.load("toxicity", entry) is None
    with pytest.raises(TrustError, match=r"machine_ethics identity: requests_sha256 is '1+' there, '2+' in this run"):
        store.load("machine_ethics", {**entry, "requests_sha256": "2" * 64})
    seeded = BaselineStore(tmp_path / "b.json", {**identity, "seed": 1})
    with pytest.raises(TrustError, match="different run identity: seed is 0 there, 1 in this run"):
        seeded.load("machine_ethics", entry)
    assert first_difference({"a": {"b": 1}}, {"a": {"b": 1, "c": 2}}) == "a.c"


def test_report_files_markdown_plot_flips_and_matrix(
    pytester: pytest.Pytester, tmp_path: Path, says_wrong_model: Path, says_not_wrong_model: Path
) -> None:
    report, markdown = tmp_path / "r.json", tmp_path / "summary.md"
    plot, flips = tmp_path / "radar.png", tmp_path / "flips.jsonl"
    result = _run(
        pytester, tmp_path / "cache", f"--model={says_wrong_model}", f"--compress=rtn-8,hub:{says_not_wrong_model}",
        f"--trust-report={report}", f"--trust-markdown={markdown}", f"--trust-plot={plot}",
        f"--trust-flips={flips}", "--trust-gate=confident",
    )
    result.assert_outcomes(passed=1, failed=1)
    hub = f"hub:{says_not_wrong_model}"
    # one table with a column per config, like the study's tables; a model that answers "wrong" to
    # everything gives no evidence where the compressed one answers alike
    result.stdout.fnmatch_lines(
        ["*dimension*n*dense*hub:*rtn-8*", "*machine_ethics*320*75.0*25.0 (-50.0) FAIL*75.0 (+0.0) no evidence*"]
    )
    result.stdout.fnmatch_lines(["*TrustNoEvidenceWarning: machine_ethics [[]rtn-8[]]*one answer per subset on 100%*"])
    data = json.loads(report.read_text())
    jsonschema.validate(data, schema("report"))
    rows = {r["config"]: r for r in data["results"]}
    interval = rows[hub]["interval"]
    assert interval["low"] < -50.0 < interval["high"] < -5.0 and rows[hub]["verdict"] == "FAIL"
    assert rows["rtn-8"]["interval"]["mdd"] == 0.0 and data["settings"]["gate"] == "confident"
    text = markdown.read_text()
    assert text.startswith("## comptrust: ") and "| machine_ethics |" in text and "1 verdict(s) FAIL" in text
    assert "(>tol)" in text  # the hub config's detectable difference (about 11) is above the tolerance of 5
    png = plot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    assert (width, height) == (int(PLOT_SIZE_INCHES * PLOT_DPI),) * 2
    lines = [json.loads(line) for line in flips.read_text().splitlines()]
    assert len(lines) == 320 and all(f["config"] == hub for f in lines)
    assert {f["dense_answer"] for f in lines} == {"wrong"} and lines[0]["dense_output"] != lines[0]["compressed_output"]
