"""`comptrust compare OLD NEW`: scores side by side, exit 1 only when NEW is worse beyond the tolerance.

Reports are made by the code that writes them (outcomes -> gate -> paired bootstrap ->
build_report, schema-checked), baselines by BaselineStore, and one pair by two real plugin runs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from comptrust_plugin.baseline import BaselineEntry, BaselineStore
from comptrust_plugin.cli import main
from comptrust_plugin.compare import Change, Score
from comptrust_plugin.decodingtrust.references import REFERENCES
from comptrust_plugin.dimensions.agreement import compare_answers
from comptrust_plugin.dimensions.result import DimensionResult, ItemOutcome
from comptrust_plugin.gate import gate
from comptrust_plugin.paired import paired_bootstrap
from comptrust_plugin.report import ResultRow, RunInfo, build_report

N = 200  # items per dimension: 0.5 points per item
PROBES = "a" * 64
MODEL = {"source": "hub", "id": "org/model", "revision": "1" * 40, "chat_format": "template"}


def _result(dimension: str, right: int) -> DimensionResult:
    outcomes = [ItemOutcome(f"q{i}", "all", "a" if i < right else "b", 1.0 if i < right else 0.0, "")
                for i in range(N)]
    score = 100.0 * right / N
    return DimensionResult.from_outcomes(dimension, "comptrust-paper", score, {"all": score}, outcomes)


def _row(dimension: str, config: str, dense_right: int, right: int | None, probes: str = PROBES) -> ResultRow:
    dense = _result(dimension, dense_right)
    compressed = None if right is None else _result(dimension, right)
    interval = None if compressed is None else paired_bootstrap(
        dense.outcomes, compressed.outcomes, lambda items: 100.0 * sum(o.value or 0 for o in items) / len(items),
        replicates=300, seed=1,
    )
    agreement = None if compressed is None else compare_answers(dense, compressed)
    verdict = gate(dense, compressed, config, 5.0, agreement, interval)
    return ResultRow(verdict, dense, compressed, probes, 0.0)


def _report(path: Path, rows: list[ResultRow], model: dict[str, Any] | None = None, **settings: Any) -> Path:
    """A report written as the plugin writes it (build_report validates it against the schema)."""
    info = RunInfo(
        model="smollm2", model_identity=model or MODEL,
        settings={"samples": "smoke", "seed": 0, "device": "cpu", "dtype": "bfloat16", "variant": "comptrust-paper",
                  "scoring_reference": asdict(REFERENCES["comptrust-paper"]), "tolerance": {"default": 5.0},
                  **settings},
        configs=sorted({r.verdict.config for r in rows if r.compressed is not None}),
    )
    path.write_text(json.dumps(build_report(info, rows)))
    return path


def _pair(tmp_path: Path, old_right: int, new_right: int, dense_right: int = 160) -> tuple[Path, Path]:
    old = _report(tmp_path / "old.json", [_row("machine_ethics", "rtn-8", dense_right, old_right)])
    new = _report(tmp_path / "new.json", [_row("machine_ethics", "rtn-8", dense_right, new_right)])
    return old, new


def _run(capsys: pytest.CaptureFixture[str], *args: Any) -> tuple[int, str, str]:
    code = main(["compare", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def _line(out: str, config: str) -> str:
    (line,) = [ln for ln in out.splitlines() if ln.startswith("machine_ethics") and f" {config} " in ln]
    return line


def test_worse_beyond_the_tolerance_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old, new = _pair(tmp_path, old_right=156, new_right=140)  # 78.0 -> 70.0
    code, out, _ = _run(capsys, old, new)
    assert code == 1
    assert _line(out, "rtn-8").split()[2:6] == ["78.0", "70.0", "-8.0", "5"] and "WORSE" in _line(out, "rtn-8")
    assert "1 score(s) worse beyond the tolerance: machine_ethics [rtn-8] -8.0" in out
    assert "same" in _line(out, "dense")  # the dense model did not change
    assert _run(capsys, "--tolerance", "8", old, new)[0] == 0  # exactly the tolerance: not beyond it


def test_within_the_tolerance_and_improvement_exit_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old, new = _pair(tmp_path, old_right=156, new_right=150)  # -3.0
    code, out, _ = _run(capsys, old, new)
    assert code == 0 and "within" in _line(out, "rtn-8") and "NEW is not worse than OLD" in out
    code, out, _ = _run(capsys, new, old)  # +3.0
    assert code == 0 and "+3.0" in _line(out, "rtn-8") and "better" in _line(out, "rtn-8")


def test_per_dimension_and_relative_tolerance(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """5% of OLD 80.0 is 4 points: a 4.5-point drop passes 5 points and fails 5%."""
    old, new = _pair(tmp_path, old_right=160, new_right=151)  # 80.0 -> 75.5
    assert _run(capsys, old, new)[0] == 0
    code, out, _ = _run(capsys, "--tolerance", "5%", old, new)
    assert code == 1 and "5% (4)" in _line(out, "rtn-8")
    assert _run(capsys, "--tolerance", "1,machine_ethics=10%", old, new)[0] == 0
    assert _run(capsys, "--tolerance", "10,machine_ethics=4", old, new)[0] == 1


def test_intervals_separate_only_for_a_clear_change(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old, new = _pair(tmp_path, old_right=158, new_right=120)  # 79.0 -> 60.0, n = 200
    code, out, _ = _run(capsys, old, new)
    fields = _line(out, "rtn-8").split()
    assert code == 1 and fields[-2:] == ["yes", "WORSE"]
    old, new = _pair(tmp_path, old_right=158, new_right=154)  # -2.0: well inside both intervals
    assert _line(_run(capsys, old, new)[1], "rtn-8").split()[-2:] == ["no", "within"]
    assert _line(_run(capsys, old, new)[1], "dense").split()[-2:] == ["-", "same"]  # dense carries no interval


def test_separation_is_non_overlap_of_the_two_ranges() -> None:
    def change(old: tuple[float, float], new: tuple[float, float]) -> Change:
        return Change("toxicity", "gptq-4", Score(80, *old, 0.95), Score(70, *new, 0.95), 5.0, "5")

    assert change((78, 82), (68, 77.9)).separated is True
    assert change((78, 82), (68, 78.0)).separated is False
    assert Change("toxicity", "gptq-4", Score(80), Score(70, 68, 72, 0.95), 5.0, "5").separated is None


def test_a_new_revision_of_the_same_model_is_compared_with_a_note(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = _report(tmp_path / "old.json", [_row("machine_ethics", "rtn-8", 160, 156)])
    new = _report(tmp_path / "new.json", [_row("machine_ethics", "rtn-8", 150, 140)],
                  model={**MODEL, "revision": "2" * 40}, device="cuda")
    code, out, _ = _run(capsys, old, new)
    assert code == 1 and "-5.0" in _line(out, "dense") and "within" in _line(out, "dense")
    assert "note: model weights (revision or hash) differs: 111111111111 in OLD, 222222222222 in NEW" in out
    assert "note: device differs: cpu in OLD, cuda in NEW" in out


@pytest.mark.parametrize(
    ("model", "settings", "probes", "field"),
    [
        ({**MODEL, "id": "org/other"}, {}, PROBES, "model.identity.id is 'org/model' in OLD, 'org/other' in NEW"),
        ({**MODEL, "chat_format": "plain"}, {}, PROBES, "model.identity.chat_format"),
        (MODEL, {"variant": "dt", "scoring_reference": asdict(REFERENCES["dt"])}, PROBES, "settings.variant"),
        (MODEL, {"samples": "full"}, PROBES, "settings.samples is 'smoke' in OLD, 'full' in NEW"),
        (MODEL, {"seed": 7}, PROBES, "settings.seed"),
        (MODEL, {"dtype": "float32"}, PROBES, "settings.dtype"),
        (MODEL, {}, "b" * 64, "results[machine_ethics].probe_sha256"),
    ],
)
def test_different_identities_are_one_line_naming_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], model: dict, settings: dict, probes: str, field: str
) -> None:
    old = _report(tmp_path / "old.json", [_row("machine_ethics", "rtn-8", 160, 156)])
    new = _report(tmp_path / "new.json", [_row("machine_ethics", "rtn-8", 160, 156, probes)], model, **settings)
    code, out, err = _run(capsys, old, new)
    assert code == 2 and out == ""
    assert err.startswith("comptrust compare: OLD and NEW were measured differently") and field in err
    assert err.count("\n") == 1


def test_a_config_or_dimension_in_one_file_only_is_listed_not_compared(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = _report(tmp_path / "old.json", [_row("machine_ethics", "rtn-8", 160, 156),
                                          _row("machine_ethics", "gptq-4", 160, 100),
                                          _row("fairness", "rtn-8", 160, 150, "c" * 64)])
    new = _report(tmp_path / "new.json", [_row("machine_ethics", "rtn-8", 160, 157),
                                          _row("privacy", "rtn-8", 100, 10, "d" * 64)])
    code, out, _ = _run(capsys, old, new)
    assert code == 0  # the privacy drop is within its own run, not a change from OLD
    assert "only in OLD" in _line(out, "gptq-4") and "better" in _line(out, "rtn-8")
    assert "note: only in OLD (not compared): fairness [dense], fairness [rtn-8], machine_ethics [gptq-4]" in out
    assert "note: only in NEW (not compared): privacy [dense], privacy [rtn-8]" in out


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not readable JSON"),
        (b"\xff\xfe\x00", "not readable JSON"),
        ("[1, 2]", "neither a comptrust report (--trust-report) nor a stored baseline"),
        ('{"flips": []}', "neither a comptrust report"),
        ('{"comptrust_version": "1", "results": []}', "does not match the report schema at (top level): 'model'"),
        ('{"comptrust_baseline": 1, "identity": {}, "dimensions": {}}', "does not match the baseline schema"),
    ],
)
def test_an_unreadable_or_foreign_file_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | bytes, message: str
) -> None:
    old, _ = _pair(tmp_path, 156, 156)
    bad = tmp_path / "bad.json"
    bad.write_bytes(content if isinstance(content, bytes) else content.encode())
    for args in ((old, bad), (bad, old)):
        code, out, err = _run(capsys, *args)
        assert code == 2 and out == "" and message in err and err.count("\n") == 1 and str(bad) in err
    code, _, err = _run(capsys, old, tmp_path / "missing.json")
    assert code == 2 and "missing.json: not readable JSON (No such file or directory)" in err


def test_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old, new = _pair(tmp_path, 156, 150)
    code, _, err = _run(capsys, "--tolerance", "toxcity=3", old, new)
    assert code == 2 and err.startswith("comptrust compare: --tolerance: unknown dimension 'toxcity'")
    assert err.count("\n") == 1
    assert _run(capsys, "--tolerance", "120", old, new)[0] == 2
    with pytest.raises(SystemExit) as exc:
        main(["compare", str(old)])
    assert exc.value.code == 2


def _baseline(path: Path, scores: dict[str, int], requests: str = "e" * 64, revision: str = "1" * 40) -> Path:
    identity = {"model": {**MODEL, "revision": revision}, "runtime": {"device": "cpu", "dtype": "bfloat16"},
                "samples": "smoke", "seed": 0, "variant": "comptrust-paper", "comptrust_version": "0"}
    store = BaselineStore(path, identity)
    for dimension, right in scores.items():
        store.save(dimension, BaselineEntry({"probe_sha256": PROBES, "requests_sha256": requests},
                                            _result(dimension, right)))
    return path


def test_stored_baselines_compare_their_dense_scores(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = _baseline(tmp_path / "old.json", {"machine_ethics": 160, "privacy": 100})
    new = _baseline(tmp_path / "new.json", {"machine_ethics": 140, "privacy": 101}, revision="2" * 40)
    code, out, _ = _run(capsys, old, new)
    assert code == 1 and "WORSE" in _line(out, "dense") and "privacy" in out
    assert "machine_ethics [dense] -10.0" in out and "note: model weights (revision or hash) differs" in out
    other = _baseline(tmp_path / "other.json", {"machine_ethics": 160}, requests="f" * 64)
    code, _, err = _run(capsys, old, other)
    assert code == 2 and "dimensions.machine_ethics.identity.requests_sha256 is 'eeee" in err
    (tmp_path / "reports").mkdir()
    report, _ = _pair(tmp_path / "reports", 156, 156)
    code, _, err = _run(capsys, report, old)
    assert code == 2 and "is a report and NEW" in err and "a baseline: compare two reports or two baselines" in err


def test_markdown_is_appended(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old, new = _pair(tmp_path, old_right=156, new_right=140)
    summary = tmp_path / "summary.md"
    summary.write_text("## earlier step\n")
    assert _run(capsys, "--markdown", summary, old, new)[0] == 1
    text = summary.read_text()
    assert text.startswith("## earlier step\n\n## comptrust compare: smollm2")
    assert "**1 score(s) worse beyond the tolerance: machine_ethics [rtn-8] -8.0.**" in text
    assert "| machine_ethics | rtn-8    | 78.0  | 70.0  | -8.0     | 5     |" in text


def test_two_plugin_runs_compared_by_the_console_script(
    pytester: pytest.Pytester, says_wrong_model: Path, says_not_wrong_model: Path, tmp_path: Path
) -> None:
    """The same config name ("hub:<release>") shipped twice: first the dense weights, then a broken
    release; the second run's report is worse by 50 points on machine ethics."""
    import shutil

    release = tmp_path / "release"
    reports = []
    for n, weights in enumerate((says_wrong_model, says_not_wrong_model)):
        shutil.rmtree(release, ignore_errors=True)
        shutil.copytree(weights, release)
        reports.append(tmp_path / f"report-{n}.json")
        pytester.runpytest(
            "--pyargs", "trust_tests.test_machine_ethics", "-p", "no:cacheprovider",
            f"--trust-cache-dir={tmp_path / 'cache'}", f"--model={says_wrong_model}", f"--compress=hub:{release}",
            f"--trust-report={reports[-1]}",
        )
    command = [sys.executable, "-m", "comptrust_plugin.cli", "compare", *map(str, reports)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    assert f"machine_ethics [hub:{release}] -50.0" in done.stdout
    (line,) = [ln for ln in done.stdout.splitlines() if ln.startswith("machine_ethics") and "hub:" in ln]
    assert line.split()[2:5] == ["75.0", "25.0", "-50.0"] and line.split()[-2:] == ["yes", "WORSE"]
    done = subprocess.run([*command[:4], str(reports[0]), str(reports[0])], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "NEW is not worse than OLD" in done.stdout
