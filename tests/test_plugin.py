"""The pytest plugin end to end (pytester), on tiny local models with known answers.

`says_wrong_model` answers "wrong" to everything (ethics score 75 under the paper scoring),
`says_not_wrong_model` answers "not wrong" (score 25): used as a "compressed" checkpoint
(`hub:<dir>`) it must fail the gate with a 50-point drop.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest

from comptrust_plugin.data.files import schema


def _run(pytester: pytest.Pytester, cache: Path, *args: str) -> pytest.RunResult:
    return pytester.runpytest(
        "--pyargs", "trust_tests.test_machine_ethics", "-p", "no:cacheprovider", f"--trust-cache-dir={cache}", *args
    )


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


def test_help_lists_every_option(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    for option in ("--model", "--compress", "--trust-tolerance", "--trust-samples", "--trust-device",
                   "--trust-dtype", "--trust-seed", "--trust-cache-dir", "--trust-report", "--trust-scoring",
                   "--trust-gate", "--trust-bootstrap", "--trust-refusal-shift", "--trust-fail-on-refusal-shift",
                   "--trust-baseline", "--trust-update-baseline", "--trust-markdown", "--trust-plot", "--trust-flips",
                   "--trust-data", "--trust-backend", "--trust-batch-tokens"):
        result.stdout.fnmatch_lines([f"*{option}*"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--compress=wandaa-50"], "*unknown method 'wandaa'; did you mean 'wanda-50'?*"),
        (["--compress=gptq-9"], "*9 bits is out of range 2..8; did you mean 'gptq-8'?*"),
        (["--model=no-such-model"], "*not a known alias*Known aliases: smollm2-135m*"),
        (["--trust-tolerance=toxcity=3"], "*unknown dimension 'toxcity'*"),
        (["--trust-samples=many"], "*use smoke, full, or a positive integer*"),
        (["--trust-device=gpu0"], "*--trust-device=gpu0*"),
        (["--trust-seed=x"], "*--trust-seed=x*"),
        (["--trust-gate=strict"], "*--trust-gate=strict: choose one of point, confident*"),
        (["--trust-bootstrap=10"], "*--trust-bootstrap=10: use 0 (no interval) or at least 100*"),
        (["--trust-bootstrap=-1"], "*--trust-bootstrap=-1: use a whole number*"),
        (["--trust-refusal-shift=lots"], "*--trust-refusal-shift=lots: use a number of points*"),
        (["--trust-data=/no/such/folder"], "*--trust-data=/no/such/folder: no such folder*"),
    ],
)
def test_bad_options_are_one_line_usage_errors(pytester: pytest.Pytester, cache: Path, args, message) -> None:
    result = _run(pytester, cache, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert "Traceback" not in result.stderr.str()


def test_failing_gate_fails_the_test_and_reports(
    pytester: pytest.Pytester, cache: Path, says_wrong_model: Path, says_not_wrong_model: Path, tmp_path: Path
) -> None:
    report = tmp_path / "report.json"
    result = _run(
        pytester, cache, f"--model={says_wrong_model}", f"--compress=hub:{says_not_wrong_model}",
        f"--trust-report={report}",
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*machine_ethics*compressed 25.0 vs dense 75.0 (delta -50.0, 95% CI [[]-5*, -4*[]], detectable *, "
        "tolerance 5, point gate: exceeds)*flipped on 100.0% of 320 items*",
        "*comptrust trust summary*",
        "*machine_ethics*hub:*75.0*25.0*-50.0*FAIL*",
    ])
    data = json.loads(report.read_text())
    jsonschema.validate(data, schema("report"))
    (row,) = data["results"]
    assert row["verdict"] == "FAIL" and row["delta"] == -50.0 and row["flip_rate"] == 100.0
    assert data["passed"] is False and data["model"]["identity"]["source"] == "local"


def test_lm_eval_results_files_hold_the_reports_scores_and_bootstrap_errors(
    pytester: pytest.Pytester, cache: Path, says_wrong_model: Path, says_not_wrong_model: Path, tmp_path: Path
) -> None:
    """--trust-lm-eval=DIR: one results file for the dense model and one for the config, in
    lm-eval's layout, whose scores and standard errors are the report's own (and which
    lm-evaluation-harness's table maker reads, where it is installed)."""
    report, folder = tmp_path / "report.json", tmp_path / "lm-eval"
    result = _run(pytester, cache, f"--model={says_wrong_model}", f"--compress=hub:{says_not_wrong_model}",
                  f"--trust-report={report}", f"--trust-lm-eval={folder}")
    result.assert_outcomes(failed=1)
    (row,) = json.loads(report.read_text())["results"]
    files = {path.parent.name: json.loads(path.read_text()) for path in folder.glob("*/results_*.json")}
    assert len(files) == 2
    for payload in files.values():
        jsonschema.validate(payload, schema("lm_eval_results"))
    dense = next(p for p in files.values() if "compress=" not in p["config"]["model_args"])
    (compressed,) = (p for p in files.values() if p is not dense)
    assert compressed["config"]["model_args"] == f"pretrained={says_wrong_model},compress={row['config']}"
    assert dense["results"]["comptrust_machine_ethics"]["score,none"] == row["dense"]["score"] == 75.0
    scores = compressed["results"]["comptrust_machine_ethics"]
    assert scores["score,none"] == row["compressed"]["score"] == 25.0
    interval = row["interval"]
    assert dense["results"]["comptrust_machine_ethics"]["score_stderr,none"] == interval["se_dense"] > 0
    assert scores["score_stderr,none"] == interval["se_compressed"] > 0
    assert scores["delta_stderr,none"] == interval["se"] and scores["delta,none"] == -50.0
    assert compressed["n-samples"]["comptrust_machine_ethics"]["effective"] == row["compressed"]["n"] == 320
    utils = pytest.importorskip("lm_eval.utils")
    for payload in files.values():
        assert "comptrust_machine_ethics" in utils.make_table(payload)


def test_tolerance_override_turns_the_same_drop_into_a_pass(
    pytester: pytest.Pytester, cache: Path, says_wrong_model: Path, says_not_wrong_model: Path
) -> None:
    result = _run(
        pytester, cache, f"--model={says_wrong_model}", f"--compress=hub:{says_not_wrong_model}",
        "--trust-tolerance=5,machine_ethics=50",
    )
    result.assert_outcomes(passed=1)


def test_specs_become_test_ids_and_harmless_compression_passes(
    pytester: pytest.Pytester, cache: Path, says_wrong_model: Path
) -> None:
    result = _run(
        pytester, cache, f"--model={says_wrong_model}", "--compress=mag-50,rtn-4", "--compress=rtn-4-g128", "-v"
    )
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*test_machine_ethics?mag-50? PASSED*", "*test_machine_ethics?rtn-4? PASSED*"])


def test_dense_only_profile(pytester: pytest.Pytester, cache: Path, says_wrong_model: Path, tmp_path: Path) -> None:
    report = tmp_path / "profile.json"
    result = _run(pytester, cache, f"--model={says_wrong_model}", "-v", f"--trust-report={report}")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([
        "comptrust: dense: loading the model",
        "comptrust: machine_ethics · dense: 320/320 prompts, * s",
        "*test_machine_ethics?profile? PASSED*",
    ])
    row = json.loads(report.read_text())["results"][0]
    assert row["verdict"] == "profile" and row["compressed"] is None and row["dense"]["score"] == 75.0


def test_cached_rerun_loads_no_model(
    pytester: pytest.Pytester, cache: Path, says_wrong_model: Path, says_not_wrong_model: Path, tmp_path: Path
) -> None:
    args = (f"--model={says_wrong_model}", f"--compress=hub:{says_not_wrong_model}")
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    _run(pytester, cache, *args, f"--trust-report={first}").assert_outcomes(failed=1)
    _run(pytester, cache, *args, f"--trust-report={second}").assert_outcomes(failed=1)
    before, after = json.loads(first.read_text()), json.loads(second.read_text())
    assert all(stats["model_loaded"] for stats in before["engine"].values())
    assert not any(stats["model_loaded"] for stats in after["engine"].values())
    assert all(stats["cache_hits"] == 320 for stats in after["engine"].values())
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in before["results"]]
    assert strip == [{k: v for k, v in r.items() if k != "seconds"} for r in after["results"]]


def test_dt_scoring_variant_is_selectable(
    pytester: pytest.Pytester, cache: Path, says_wrong_model: Path, tmp_path: Path
) -> None:
    report = tmp_path / "dt.json"
    _run(pytester, cache, f"--model={says_wrong_model}", "--trust-scoring=dt", f"--trust-report={report}")
    row = json.loads(report.read_text())["results"][0]
    assert row["dense"]["variant"] == "dt"


@pytest.mark.parametrize("mode", [[], ["-n", "0"], ["-n", "2"]], ids=["no-xdist", "n0", "n2"])
def test_xdist_modes_give_one_table_and_identical_results(
    pytester: pytest.Pytester, cache: Path, says_wrong_model: Path, says_not_wrong_model: Path,
    tmp_path: Path, mode: list[str],
) -> None:
    report, flips, junit = tmp_path / "report.json", tmp_path / "flips.jsonl", tmp_path / "junit.xml"
    result = _run(
        pytester, cache, f"--model={says_wrong_model}", f"--compress=mag-50,hub:{says_not_wrong_model}",
        f"--trust-report={report}", f"--trust-flips={flips}", f"--junitxml={junit}", *mode,
    )
    result.assert_outcomes(passed=1, failed=1)
    assert result.stdout.str().count("comptrust trust summary") == 1
    # the verdicts' numbers reach JUnit XML from workers too
    cases = {
        case.get("name"): {p.get("name"): p.get("value") for p in case.iter("property")}
        for case in ET.parse(junit).getroot().iter("testcase")
    }
    assert sorted((c["config"], c["verdict"], c["delta"]) for c in cases.values()) == [
        ("hub:" + str(says_not_wrong_model), "FAIL", "-50.0"), ("mag-50", "no evidence", "0.0"),
    ]
    if mode == ["-n", "2"]:  # a worker's terminal is not shown: the controller says what each trust test computed
        result.stdout.fnmatch_lines(["*comptrust: [[]gw?[]] *test_machine_ethics[[]mag-50[]]*: * answers computed, *"])
    if mode == ["-n", "2"]:  # one xdist group per config: each config loaded on one worker, once
        loads = re.search(r"workers: (.*)", result.stdout.str())
        assert loads is not None and "grouping did not take effect" not in result.stdout.str()
        for config in ("mag-50", f"hub:{says_not_wrong_model}"):
            loaded = [part.split(" loaded ", 1)[1].split(", ") for part in loads.group(1).split("; ")]
            assert sum(models.count(config) for models in loaded) == 1, loads.group(0)
    flipped = [json.loads(line) for line in flips.read_text().splitlines()]
    assert len(flipped) == 320 and {f["config"] for f in flipped} == {"hub:" + str(says_not_wrong_model)}
    rows = json.loads(report.read_text())["results"]
    assert [(r["config"], r["verdict"], r["delta"], r["flip_rate"]) for r in rows] == [
        ("hub:" + str(says_not_wrong_model), "FAIL", -50.0, 100.0),
        ("mag-50", "no evidence", 0.0, 0.0),  # a model that says "wrong" to everything shows nothing
    ]


def test_calibrated_artifacts_are_built_once_and_reused(
    pytester: pytest.Pytester, cache: Path, says_wrong_model: Path, tmp_path: Path
) -> None:
    specs = "--compress=wanda-50-ns4,sparsegpt-2:4-ns4,gptq-4-ns4,awq-4-ns4"
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    _run(pytester, cache, f"--model={says_wrong_model}", specs, f"--trust-report={first}").assert_outcomes(passed=4)
    stored = sorted(p.name for p in (cache / "artifacts").iterdir() if not p.name.endswith(".lock"))
    assert len(stored) == 4 and all((cache / "artifacts" / name / "COMPLETE").exists() for name in stored)
    for suffix in ("", "-wal", "-shm"):  # lose every answer, keep the artifacts
        Path(f"{cache / 'responses.sqlite3'}{suffix}").unlink(missing_ok=True)
    _run(pytester, cache, f"--model={says_wrong_model}", specs, f"--trust-report={second}").assert_outcomes(passed=4)
    events = json.loads(second.read_text())["events"]
    assert not any(e.startswith("compressed") for e in events), events
    assert sorted(p.name for p in (cache / "artifacts").iterdir() if not p.name.endswith(".lock")) == stored
    built = json.loads(first.read_text())["events"]
    assert sum(e.startswith("compressed") and "(stored," in e for e in built) == 4


def test_unreachable_hub_checkpoint_is_a_one_line_failure(
    pytester: pytest.Pytester, cache: Path, says_wrong_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    result = _run(pytester, cache, f"--model={says_wrong_model}", "--compress=hub:no-such-org/no-such-model@main")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*cannot resolve its revision*hub is unreachable*"])
    assert "Traceback" not in result.stdout.str() and "During handling" not in result.stdout.str()
    told = [line for line in result.stdout.lines if "cannot resolve its revision" in line]
    # once where the error is shown, once more only in the short summary (whole on CI, cut on a terminal)
    assert len([line for line in told if not line.startswith("ERROR ")]) == 1, told
