"""`--trust-csv`: one row per gated result appended to a sheet, header once, whole rows only."""

from __future__ import annotations

import csv
import json
import multiprocessing
from pathlib import Path

import pytest

from comptrust_plugin import results_csv
from comptrust_plugin.errors import TrustError


def _report(configs: tuple[str, ...] = ("gptq-4",), dimensions: tuple[str, ...] = ("toxicity", "privacy")) -> dict:
    results = [
        {"dimension": d, "config": c, "verdict": "pass", "dense": {"score": 80.0, "n": 96},
         "compressed": {"score": 78.5, "n": 96}, "delta": -1.5, "tolerance": 5.0, "tolerance_rule": "5",
         "interval": {"low": -4.0, "high": 1.0, "mdd": 3.5}, "refusal_shift": 0.5, "flip_rate": 12.5,
         "kappa": 0.61, "mcnemar": {"worse": 3, "better": 1, "p": 0.625}}
        for c in configs for d in dimensions
    ]
    results.append({**results[0], "config": "dense", "compressed": None})  # a profile row: no CSV row
    return {"comptrust_version": "0.1.0", "model": {"name": "vicuna-13b", "identity": {"revision": "abc123"}},
            "settings": {"variant": "comptrust-paper", "samples": "smoke"}, "results": results}


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as sheet:
        return list(csv.DictReader(sheet))


def test_rows_carry_every_named_figure(tmp_path: Path) -> None:
    sheet = tmp_path / "sheet.csv"
    assert results_csv.append(sheet, _report()) == 2
    assert results_csv.append(sheet, _report(("awq-4",))) == 2
    lines = sheet.read_text().splitlines()
    assert lines[0] == ",".join(results_csv.COLUMNS) and lines.count(lines[0]) == 1 and len(lines) == 5
    first = _read(sheet)[0]
    assert {k: first[k] for k in ("model", "model_revision", "config", "dimension", "dense", "compressed", "delta",
                                  "ci_low", "ci_high", "detectable", "verdict", "refusal_shift", "flip_rate",
                                  "kappa", "mcnemar_p", "scoring_variant", "comptrust_version")} == {
        "model": "vicuna-13b", "model_revision": "abc123", "config": "gptq-4", "dimension": "toxicity",
        "dense": "80.000", "compressed": "78.500", "delta": "-1.500", "ci_low": "-4.000", "ci_high": "1.000",
        "detectable": "3.500", "verdict": "pass", "refusal_shift": "0.500", "flip_rate": "12.500",
        "kappa": "0.610", "mcnemar_p": "0.625000", "scoring_variant": "comptrust-paper", "comptrust_version": "0.1.0",
    }
    assert first["date"][:2] == "20"


def test_a_foreign_sheet_is_refused_and_left_alone(tmp_path: Path) -> None:
    sheet = tmp_path / "theirs.csv"
    sheet.write_text("name,score\nx,1\n")
    with pytest.raises(TrustError, match="its header is not comptrust's"):
        results_csv.check(sheet)
    with pytest.raises(TrustError, match="nothing was written"):
        results_csv.append(sheet, _report())
    assert sheet.read_text() == "name,score\nx,1\n"


def _append_many(path: str, worker: int) -> None:
    for index in range(5):
        results_csv.append(Path(path), _report((f"cfg{worker}-{index}",), tuple(f"dim{d}" for d in range(20))))


def test_concurrent_runs_append_whole_rows_and_one_header(tmp_path: Path) -> None:
    sheet = tmp_path / "shared.csv"
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_append_many, args=(str(sheet), w)) for w in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    rows = _read(sheet)
    assert len(rows) == 4 * 5 * 20 and sheet.read_text().count("date,model,") == 1
    assert len({(r["config"], r["dimension"]) for r in rows}) == len(rows)  # none torn, none twice
    assert all(None not in r and len(r) == len(results_csv.COLUMNS) for r in rows)


def test_runs_append_to_the_sheet_under_xdist_too(
    pytester: pytest.Pytester, tmp_path: Path, random_model: Path
) -> None:
    sheet = tmp_path / "runs.csv"
    for mode in ([], ["-n", "2"]):
        result = pytester.runpytest(
            "--pyargs", "trust_tests.test_machine_ethics", "-p", "no:cacheprovider", f"--trust-cache-dir={tmp_path}/c",
            f"--trust-model={random_model}", "--trust-samples=8", "--trust-tolerance=100",
            "--trust-compress=rtn-8,mag-50", f"--trust-csv={sheet}", f"--trust-report={tmp_path}/r.json", *mode,
        )
        result.assert_outcomes(passed=2)
    rows = _read(sheet)
    pairs = [("mag-50", "machine_ethics"), ("rtn-8", "machine_ethics")]
    assert [(r["config"], r["dimension"]) for r in rows] == pairs * 2
    report = json.loads((tmp_path / "r.json").read_text())
    assert rows[-1]["verdict"] == next(r["verdict"] for r in report["results"] if r["config"] == "rtn-8")
