"""`--trust-shard=I/N` and `comptrust merge`: N jobs' reports joined into the one a single run writes.

`says_wrong_model` scores 75 on machine ethics, `says_not_wrong_model` 25 (see test_plugin.py).
"""

from __future__ import annotations

import copy
import itertools
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from comptrust_plugin import dimensions
from comptrust_plugin.cli import main
from comptrust_plugin.data.files import schema
from comptrust_plugin.errors import TrustError
from comptrust_plugin.merge import merge
from comptrust_plugin.multiplicity import correct_report
from comptrust_plugin.shards import Shard, assign, dimension_cost, keep, parse_shard, units

from .test_multiplicity import _report


# ------------------------------------------------------------------------------ choosing
@pytest.mark.parametrize(("text", "expected"), [("1/1", Shard(1, 1)), ("2/4", Shard(2, 4)), (" 3/3 ", Shard(3, 3)),
                                                (None, None), ("", None)])
def test_a_shard_is_i_of_n_counted_from_one(text: str | None, expected: Shard | None) -> None:
    assert parse_shard(text) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("0/3", "--trust-shard=0/3: shards count from 1: I must be 1..3"),
    ("4/3", "--trust-shard=4/3: shards count from 1: I must be 1..3"),
    ("2/0", "--trust-shard=2/0: N must be at least 1 shard"),
    ("x", "--trust-shard=x: give I/N, shard I of N counted from 1, e.g. --trust-shard=1/4"),
    ("-1/3", "--trust-shard=-1/3: give I/N"), ("1/", "--trust-shard=1/: give I/N"),
    ("1/2/3", "--trust-shard=1/2/3: give I/N"),
])
def test_a_bad_shard_is_one_line(text: str, message: str) -> None:
    with pytest.raises(TrustError) as caught:
        parse_shard(text)
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


def _costs() -> dict[str, int | None]:
    return {name: dimension_cost(name, "smoke", 0) for name in dimensions.names()}


def test_the_weights_are_what_each_dimension_generates() -> None:
    costs = _costs()
    assert all(isinstance(c, int) and c > 0 for c in costs.values())
    # toxicity samples continuations of 32 tokens; benign utility asks for a few tokens
    assert costs["toxicity"] > 10 * costs["benign_utility"]
    assert dimension_cost("not_a_dimension", "smoke", 0) is None
    assert dimension_cost("toxicity", "full", 0) > costs["toxicity"]


@pytest.mark.parametrize("configs", [1, 2, 3, 5])
@pytest.mark.parametrize("count", [1, 2, 3, 4, 7])
def test_every_test_runs_on_exactly_one_shard_balanced(configs: int, count: int) -> None:
    costs = _costs()
    tests = [(f"rtn-{bits}", name) for bits in range(2, 2 + configs) for name in costs]
    shares = [assign(tests, costs, Shard(i, count)) for i in range(1, count + 1)]
    assert sorted(t for share in shares for t in share) == sorted(tests)  # a partition
    # deterministic: any order of the collected tests, any process, gives the same shares
    assert [assign(list(reversed(tests)), costs, Shard(i, count)) for i in range(1, count + 1)] == shares
    by_config = configs >= count
    assert set(units(tests, count).values()) == ({(c, "*") for c, _ in tests} if by_config else set(tests))
    if by_config:  # a config's tests stay together (compressed once)
        for share in shares:
            assert {c for c, _ in share} & {c for other in shares if other is not share for c, _ in other} == set()
    # heaviest first onto the lightest shard: loads differ by at most the heaviest unit
    unit_weight: dict[Any, int] = {}
    for test, unit in units(tests, count).items():
        unit_weight[unit] = unit_weight.get(unit, 0) + costs[test[1]]
    loads = [sum(costs[d] for _, d in share) for share in shares]
    assert max(loads) - min(loads) <= max(unit_weight.values())


def test_other_tests_run_on_the_first_shard_and_too_many_shards_is_one_line() -> None:
    tests = [("rtn-8", "toxicity"), None, ("rtn-8", "fairness")]
    first, second = keep(tests, Shard(1, 2), "smoke", 0), keep(tests, Shard(2, 2), "smoke", 0)
    assert first[1] and not second[1] and [a != b for a, b in zip(first, second)] == [True, True, True]
    with pytest.raises(TrustError, match=r"^--trust-shard=3/3: this run has 2 share\(s\) .*use at most 2 shards$"):
        keep(tests, Shard(3, 3), "smoke", 0)


def test_shards_deselect_the_way_k_does_and_cover_the_run(pytester: pytest.Pytester, says_wrong_model: Path) -> None:
    """Collected from the real trust_tests package: each shard's tests, reported as deselected."""
    args = ["--pyargs", "trust_tests", "-p", "no:cacheprovider", f"--model={says_wrong_model}",
            "--compress=rtn-8,rtn-4", "--collect-only", "-q"]
    whole = pytester.runpytest(*args)
    everything = {line for line in whole.outlines if "::" in line}
    assert len(everything) == 2 * len(dimensions.names())
    seen: list[str] = []
    for index in (1, 2, 3):
        result = pytester.runpytest(*args, f"--trust-shard={index}/3")
        mine = [line for line in result.outlines if "::" in line]
        result.stdout.fnmatch_lines([f"{len(mine)}/{len(everything)} tests collected ({len(everything) - len(mine)} "
                                     "deselected)*"])
        seen += mine
    assert sorted(seen) == sorted(everything)  # each test on one shard
    # -k first, then the shard: the shards of a -k run cover that run
    picked = pytester.runpytest(*args, "--trust-shard=2/2", "-k", "toxicity")
    assert {line for line in picked.outlines if "::" in line} <= {t for t in everything if "toxicity" in t}
    bad = pytester.runpytest(*args, "--trust-shard=4/3")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["ERROR: --trust-shard=4/3: shards count from 1: I must be 1..3"])
    few = pytester.runpytest(*args, "--trust-shard=3/3", "-k", "machine_ethics")  # two tests for three shards
    assert few.ret == pytest.ExitCode.USAGE_ERROR
    assert "--trust-shard=3/3: this run has 2 share(s) of trust tests" in few.stdout.str() + few.stderr.str()


# ------------------------------------------------------------------------------- merging
def _run(pytester: pytest.Pytester, cache: Path, *args: str) -> pytest.RunResult:
    return pytester.runpytest(
        "--pyargs", "trust_tests.test_machine_ethics", "-p", "no:cacheprovider", f"--trust-cache-dir={cache}", *args
    )


# What may differ between merged shards and one run, and why: each part's own timings, its own
# model handles' answer counts (the dense handle appears on every shard), and its own events.
PER_RUN = {"engine", "events"}
PER_ROW = {"seconds"}


def _comparable(report: dict[str, Any]) -> dict[str, Any]:
    data = {k: v for k, v in report.items() if k not in PER_RUN}
    data["results"] = [{k: v for k, v in row.items() if k not in PER_ROW} for row in report["results"]]
    return data


def test_merged_shards_are_one_run_field_for_field(
    pytester: pytest.Pytester, tmp_path: Path, says_wrong_model: Path, says_not_wrong_model: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    baseline = tmp_path / "dense.json"
    model = f"--model={says_wrong_model}"
    # 1. one job writes the dense baseline (and fails, for review)
    _run(pytester, tmp_path / "cache-dense", model, f"--trust-baseline={baseline}").assert_outcomes(failed=1)
    common = [model, f"--compress=rtn-8,hub:{says_not_wrong_model}", f"--trust-baseline={baseline}",
              "--trust-gate=confident"]
    # 2. two shards gate against it, each on its own cache (two machines), and one whole run
    parts, outcomes = [], []
    for index in (1, 2):
        report = tmp_path / f"shard-{index}.json"
        shard = _run(pytester, tmp_path / f"cache-{index}", *common, f"--trust-shard={index}/2",
                     f"--trust-report={report}")
        outcomes.append(shard.parseoutcomes())
        assert outcomes[-1]["deselected"] == 1
        parts.append(report)
    assert sorted(o.get("passed", 0) for o in outcomes) == sorted(o.get("failed", 0) for o in outcomes) == [0, 1]
    whole = tmp_path / "whole.json"
    _run(pytester, tmp_path / "cache-whole", *common, f"--trust-report={whole}").assert_outcomes(passed=1, failed=1)
    one_run = json.loads(whole.read_text())
    shards = [json.loads(p.read_text()) for p in parts]
    for shard in shards:  # no dense model on a shard: its answers come from the baseline
        assert shard["engine"]["dense"] == {**shard["engine"]["dense"], "computed": 0, "cache_hits": 0,
                                            "model_loaded": False}
        assert shard["settings"]["multiplicity"]["family"] == 2  # the whole run's, not the shard's one test
        assert [row["dense_source"] for row in shard["results"]] == [f"baseline:{baseline}"]
    merged = merge([(str(p), s) for p, s in zip(parts, shards)])
    assert _comparable(merged) == _comparable(one_run)
    assert merged["engine"]["dense"]["model_loaded"] is False and "shard" not in merged
    # 3. the console script: the table, the report, exit status 1 (a verdict FAILs)
    out = tmp_path / "merged.json"
    markdown = tmp_path / "summary.md"
    assert main(["merge", "--report", str(out), "--markdown", str(markdown), *map(str, parts)]) == 1
    printed = capsys.readouterr().out
    assert "machine_ethics" in printed and "comptrust merge: 2 report(s), 2 verdict(s), 1 FAIL" in printed
    assert _comparable(json.loads(out.read_text())) == _comparable(one_run)
    assert "1 verdict(s) FAIL" in markdown.read_text()
    # 4. parts that cannot be one run: one line naming the file and the field, exit status 2
    other_seed = copy.deepcopy(shards[1])
    other_seed["settings"]["seed"] = 7
    other_dense = copy.deepcopy(shards[1])
    other_dense["results"][0]["dense"]["score"] = 70.0
    cases = [
        ([parts[0], parts[0]], f"{parts[0]} and {parts[0]} are both shard {shards[0]['shard']['index']}/2"),
        ([parts[0]], f"shard(s) {shards[1]['shard']['index']}/2 missing: give all 2 reports"),
        ([parts[0], other_seed], f"cannot be merged with {parts[0]}: settings.seed is 7 there, 0 in {parts[0]}"),
        ([parts[0], other_dense], "machine_ethics: ", "gated against different dense results (dense.score differs)"),
        ([parts[0], whole], f"{whole} is not a shard (no --trust-shard) but {parts[0]} is"),
        ([tmp_path / "absent.json"], "absent.json: cannot read it"),
    ]
    for number, (given, *messages) in enumerate(cases):
        written = []
        for item in given:
            if isinstance(item, dict):
                path = tmp_path / f"edited-{number}.json"
                path.write_text(json.dumps(item))
                item = path
            written.append(str(item))
        assert main(["merge", *written]) == 2
        err = capsys.readouterr().err.strip()
        assert all(message in err for message in messages) and "\n" not in err, err


def _shard(report: dict[str, Any], rows: list[int], index: int, count: int) -> dict[str, Any]:
    part = copy.deepcopy(report)
    part["results"] = [part["results"][i] for i in rows]
    part["configs"] = report["configs"]
    return {**correct_report(part), "shard": {"index": index, "count": count}}


def test_the_merge_corrects_across_the_whole_family() -> None:
    """Holm over each shard alone passes b and c; over the run's three verdicts it fails them."""
    whole = _report("holm")
    whole["results"][2]["reason"] = "refusal rate moved"
    one_run = correct_report(whole)
    for split in ([[0], [1, 2]], [[1], [0, 2]], [[2, 0], [1]]):
        parts = [_shard(whole, rows, i + 1, len(split)) for i, rows in enumerate(split)]
        if split == [[0], [1, 2]]:  # b alone: 0.011 x 3, c: 0.02 x 1 but at least b's: neither fails
            assert [r["verdict"] for r in parts[1]["results"]] == ["pass", "pass"]
        for order in itertools.permutations(parts):
            merged = merge([(f"part-{p['shard']['index']}.json", p) for p in order])
            jsonschema.validate(merged, schema("report"))
            assert _comparable(merged) == _comparable(one_run)
    assert [r["verdict"] for r in one_run["results"]] == ["FAIL", "FAIL", "FAIL"]
    assert one_run["results"][2]["reason"].startswith("refusal rate moved; holm: adjusted p")


def test_separate_runs_merge_with_their_families_summed() -> None:
    """Runs of one model split by hand (no --trust-shard): each counted its own tests."""
    whole = _report("holm")
    parts = []
    for rows in ([0], [1, 2]):
        part = copy.deepcopy(whole)
        part["results"] = [part["results"][i] for i in rows]
        part["configs"] = [part["results"][0]["config"]] if len(rows) == 1 else ["b", "c"]
        part["settings"]["multiplicity"] = {"method": "holm", "family": len(rows), "level": None}
        parts.append(correct_report(part))
    merged = merge([("a.json", parts[0]), ("bc.json", parts[1])])
    assert merged["configs"] == ["a", "b", "c"]
    assert merged["settings"]["multiplicity"]["family"] == 3
    assert merged["settings"]["multiplicity"]["level"] == pytest.approx(0.025 / 3)
    assert [r["verdict"] for r in merged["results"]] == ["FAIL", "FAIL", "FAIL"]
