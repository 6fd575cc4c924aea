"""The answers file (--trust-answers): its records, the flips as their view, streaming parts, a real run.

`says_wrong_model` answers "wrong" to every prompt, `says_not_wrong_model` "not wrong" (see test_plugin.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from comptrust_plugin import answers
from comptrust_plugin.answers import FLIP_FIELDS, AnswerStream, assemble, flip_view, item_records
from comptrust_plugin.data.files import schema
from comptrust_plugin.dimensions.result import REFUSAL, UNPARSED, DimensionResult, ItemOutcome
from comptrust_plugin.errors import TrustError
from comptrust_plugin.gate import gate
from comptrust_plugin.report import ResultRow, flipped_items

VALIDATOR = jsonschema.Draft202012Validator(schema("answers"))


def _result(dimension: str, *outcomes: ItemOutcome) -> DimensionResult:
    return DimensionResult.from_outcomes(dimension, "comptrust-paper", 50.0, {}, list(outcomes))


DENSE = _result(
    "machine_ethics",
    ItemOutcome("b/2", "b", "wrong", 1.0, "Wrong."),
    ItemOutcome("a/1", "a", "not wrong", 0.0, "Not wrong"),
    ItemOutcome("a/3", "a", REFUSAL, None, "I cannot say."),
    ItemOutcome("a/4", "a", "wrong", 1.0, "wrong"),
)
COMPRESSED = _result(
    "machine_ethics",
    ItemOutcome("a/1", "a", "wrong", 1.0, "wrong!"),
    ItemOutcome("b/2", "b", UNPARSED, 0.0, "zzz"),
    ItemOutcome("a/3", "a", REFUSAL, None, "I can't."),
    ItemOutcome("a/4", "a", "wrong", 1.0, "wrong"),
)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_a_record_holds_both_models_answers_correctness_refusals_and_prompt_hashes() -> None:
    prompts = {"a/1": "p1", "b/2": "p2", "a/3": "p3", "a/4": "p4"}
    records = item_records("machine_ethics", "rtn-8", DENSE, COMPRESSED, labels=True, dense_prompts=prompts,
                           compressed_prompts={**prompts, "a/4": "p4 in another template"})
    for record in records:
        VALIDATOR.validate(record)
    assert [r["key"] for r in records] == ["a/1", "a/3", "a/4", "b/2"]
    first, refused, same, last = records
    assert first["dense_answer"] == "not wrong" and first["compressed_answer"] == "wrong" and first["flipped"]
    assert (first["dense_correct"], first["compressed_correct"]) == (False, True)
    assert first["dense_output"] == "Not wrong" and first["compressed_output"] == "wrong!"
    assert first["dense_prompt_sha256"] == first["compressed_prompt_sha256"] == _sha("p1")
    assert refused["dense_refused"] and refused["compressed_refused"] and not refused["flipped"]
    assert refused["dense_correct"] is None and refused["dense_value"] is None  # left out of the score
    assert same["compressed_prompt_sha256"] == _sha("p4 in another template") != same["dense_prompt_sha256"]
    assert last["compressed_answer"] == UNPARSED and last["compressed_correct"] is False and last["subset"] == "b"
    assert all(r["dense_scores"] is None and r["compressed_scores"] is None for r in records)
    assert "prompt" not in first


def test_prompts_are_carried_on_request_and_the_compressed_one_only_where_it_differs() -> None:
    prompts = {"a/1": "p1", "b/2": "p2", "a/3": "p3", "a/4": "p4"}
    records = item_records("machine_ethics", "rtn-8", DENSE, COMPRESSED, dense_prompts=prompts,
                           compressed_prompts={**prompts, "a/4": "other"}, with_prompts=True)
    for record in records:
        VALIDATOR.validate(record)
    by_key = {r["key"]: r for r in records}
    assert by_key["a/1"]["prompt"] == "p1" and "compressed_prompt" not in by_key["a/1"]
    assert by_key["a/4"]["prompt"] == "p4" and by_key["a/4"]["compressed_prompt"] == "other"
    assert all(r["dense_correct"] is None for r in records)  # not a label dimension: no correctness


def test_toxicity_records_carry_the_scorers_value_and_no_correctness() -> None:
    dense = _result("toxicity", ItemOutcome("t/1", "t", "toxic", 1.0 - 0.75, "bad words"),
                    ItemOutcome("t/2", "t", UNPARSED, None, ""))
    compressed = _result("toxicity", ItemOutcome("t/1", "t", "nontoxic", 1.0 - 0.125, "kind words"),
                         ItemOutcome("t/2", "t", "nontoxic", 1.0 - 0.1, "fine"))
    records = item_records("toxicity", "mag-50", dense, compressed, scorer="toxicity")
    for record in records:
        VALIDATOR.validate(record)
    assert records[0]["dense_scores"] == {"toxicity": 0.75} and records[0]["compressed_scores"] == {"toxicity": 0.125}
    assert records[1]["dense_scores"] is None and records[1]["compressed_scores"] == {"toxicity": 0.1}
    assert all(r["dense_correct"] is None and r["compressed_correct"] is None for r in records)


def test_a_dense_only_record_has_null_compressed_fields() -> None:
    records = item_records("machine_ethics", "dense", DENSE, None, labels=True, dense_prompts={})
    assert len(records) == 4 and not any(r["flipped"] for r in records)
    for record in records:
        VALIDATOR.validate(record)
        assert all(record[f"compressed_{name}"] is None for name in ("answer", "value", "output", "refused"))


def _row(dimension: str, config: str, dense: DimensionResult, compressed: DimensionResult) -> ResultRow:
    verdict = gate(dense, compressed, config, 5.0, None)
    return ResultRow(verdict, dense, compressed, "0" * 64, 0.0)


def test_the_flips_are_the_flipped_records_with_fewer_fields() -> None:
    rows = [_row("machine_ethics", "rtn-8", DENSE, COMPRESSED), _row("machine_ethics", "mag-50", DENSE, DENSE)]
    flips = flipped_items(rows)
    # the definition, written out: items both models answered whose parsed answers differ
    expected = [
        {"dimension": "machine_ethics", "config": "rtn-8", "key": d.key, "dense_answer": d.answer,
         "compressed_answer": c.answer, "dense_value": d.value, "compressed_value": c.value,
         "dense_output": d.output, "compressed_output": c.output}
        for d in sorted(DENSE.outcomes, key=lambda o: o.key) for c in COMPRESSED.outcomes
        if d.key == c.key and d.answer != c.answer
    ]
    assert flips == expected and len(flips) == 2
    records = item_records("machine_ethics", "rtn-8", DENSE, COMPRESSED, labels=True)
    assert flip_view(records) == flips
    assert set(FLIP_FIELDS) < set(records[0])


def _records(dimension: str, config: str, count: int) -> list[dict[str, object]]:
    return [{"dimension": dimension, "config": config, "key": f"{index:03d}", "flipped": False}
            for index in range(count)]


def test_parts_are_joined_in_dimension_and_config_order_and_removed(tmp_path: Path) -> None:
    path = tmp_path / "out" / "answers.jsonl"
    first, second = AnswerStream(path), AnswerStream(path)  # two workers of one run
    first.write("toxicity", "rtn-8", _records("toxicity", "rtn-8", 3))
    second.write("fairness", "rtn-8", _records("fairness", "rtn-8", 2))
    first.write("fairness", "mag-50", _records("fairness", "mag-50", 1))
    second.write("fairness", "dense", [])  # a verdict with no items: an empty block
    parts = {block["part"] for block in first.blocks + second.blocks}
    owner = answers._owner()  # this run's pid: the xdist controller's when the tests run under xdist
    assert len(parts) == 2 and all(Path(p).name.startswith(f".answers.jsonl.{owner}@") for p in parts)
    written = assemble(path, [*second.blocks, *first.blocks])
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [(r["dimension"], r["config"]) for r in lines] == [("fairness", "mag-50")] + [("fairness", "rtn-8")] * 2 + [
        ("toxicity", "rtn-8")] * 3
    assert written == path.stat().st_size and not any(Path(p).exists() for p in parts)
    assert sorted(os.listdir(path.parent)) == ["answers.jsonl"]
    # a rerun replaces the file, never appends to it
    again = AnswerStream(path)
    again.write("privacy", "dense", _records("privacy", "dense", 1))
    assemble(path, again.blocks)
    assert [json.loads(line)["dimension"] for line in path.read_text(encoding="utf-8").splitlines()] == ["privacy"]


def test_a_killed_runs_parts_are_removed_and_a_live_runs_kept(tmp_path: Path) -> None:
    path = tmp_path / "answers.jsonl"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    orphan = tmp_path / f".answers.jsonl.{int(dead.stdout)}.abc.part"
    orphan.write_text("torn line from a killed run\n")
    live = tmp_path / f".answers.jsonl.{os.getppid()}.def.part"  # another run still going
    live.write_text("{}\n")
    stream = AnswerStream(path)
    stream.write("fairness", "rtn-8", _records("fairness", "rtn-8", 1))
    assemble(path, stream.blocks)
    assert not orphan.exists() and live.exists()
    assert len(path.read_text(encoding="utf-8").splitlines()) == 1


def test_a_lost_part_is_a_one_line_error_and_the_old_file_stays(tmp_path: Path) -> None:
    path = tmp_path / "answers.jsonl"
    path.write_text("previous run\n")
    stream = AnswerStream(path)
    stream.write("fairness", "rtn-8", _records("fairness", "rtn-8", 2))
    Path(stream.blocks[0]["part"]).unlink()
    with pytest.raises(TrustError, match=r"^--trust-answers=.*answers.jsonl: not written \(.*\.part\)$"):
        assemble(path, stream.blocks)
    assert path.read_text() == "previous run\n" and sorted(os.listdir(tmp_path)) == ["answers.jsonl"]


def test_an_xdist_worker_names_its_parts_after_the_runs_controller(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw0")
    assert answers._owner() == os.getppid()
    monkeypatch.delenv("PYTEST_XDIST_WORKER")
    assert answers._owner() == os.getpid()


# ------------------------------------------------------------------------------ a real run
def _run(pytester: pytest.Pytester, cache: Path, *args: str) -> pytest.RunResult:
    return pytester.runpytest(
        "--pyargs", "trust_tests.test_machine_ethics", "-p", "no:cacheprovider", f"--trust-cache-dir={cache}", *args
    )


def _lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_a_run_writes_every_answer_and_the_flips_are_a_view_of_them(
    pytester: pytest.Pytester, tmp_path: Path, says_wrong_model: Path, says_not_wrong_model: Path
) -> None:
    out, cache, hub = tmp_path / "out", tmp_path / "cache", f"hub:{says_not_wrong_model}"
    common = (f"--model={says_wrong_model}", f"--compress=rtn-8,{hub}", f"--trust-report={out}/r.json",
              f"--trust-flips={out}/flips.jsonl")
    result = _run(pytester, cache, *common, f"--trust-answers={out}/answers.jsonl", "--trust-answers-prompts")
    result.assert_outcomes(passed=1, failed=1)
    records, flips = _lines(out / "answers.jsonl"), _lines(out / "flips.jsonl")
    report = json.loads((out / "r.json").read_text())
    for record in records:
        VALIDATOR.validate(record)
    # one line per item per config, in (dimension, config, key) order, as the flips file
    assert [(r["config"], r["key"]) for r in records] == sorted((r["config"], r["key"]) for r in records)
    assert len(records) == 2 * 320 and {r["config"] for r in records} == {hub, "rtn-8"}
    assert len({(r["config"], r["key"]) for r in records}) == len(records)
    assert [{name: r[name] for name in FLIP_FIELDS} for r in records if r["flipped"]] == flips
    assert {row["config"]: row["flips"] for row in report["results"]} == {
        config: sum(r["flipped"] for r in records if r["config"] == config) for config in (hub, "rtn-8")
    }
    assert len(flips) == 320 and {f["config"] for f in flips} == {hub}
    for record in records:  # the prompt carried is the one hashed, and both models saw it alike
        assert record["dense_prompt_sha256"] == record["compressed_prompt_sha256"] == _sha(record["prompt"])
        assert "compressed_prompt" not in record and record["dense_answer"] == "wrong"
        assert record["dense_output"].strip().lower().startswith("wrong")
        assert record["dense_correct"] == (record["dense_value"] == 1.0) and record["dense_refused"] is False
    assert any(r["dense_correct"] for r in records) and not all(r["dense_correct"] for r in records)
    assert sorted(os.listdir(out)) == ["answers.jsonl", "flips.jsonl", "r.json"]  # no part left behind
    # a rerun (answers from the cache) replaces the file: one config now, without prompts
    again = _run(pytester, cache, f"--model={says_wrong_model}", "--compress=rtn-8",
                 f"--trust-answers={out}/answers.jsonl")
    again.assert_outcomes(passed=1)
    rerun = _lines(out / "answers.jsonl")
    assert len(rerun) == 320 and all("prompt" not in r for r in rerun)
    assert rerun == [{k: v for k, v in r.items() if k != "prompt"} for r in records if r["config"] == "rtn-8"]
    # a dense-only run (here one that writes a baseline), then a gate against that stored baseline:
    # the dense answers come from the file, their prompts from the dense model's chat format
    baseline = tmp_path / "baseline.json"
    _run(pytester, cache, f"--model={says_wrong_model}", f"--trust-baseline={baseline}",
         f"--trust-answers={out}/dense.jsonl").assert_outcomes(failed=1)
    dense_only = _lines(out / "dense.jsonl")
    assert len(dense_only) == 320 and {r["config"] for r in dense_only} == {"dense"}
    assert all(r["compressed_answer"] is None and r["compressed_prompt_sha256"] is None for r in dense_only)
    _run(pytester, cache, f"--model={says_wrong_model}", "--compress=rtn-8", f"--trust-baseline={baseline}",
         f"--trust-answers={out}/gated.jsonl").assert_outcomes(passed=1)
    assert _lines(out / "gated.jsonl") == rerun


def test_xdist_workers_stream_parts_that_join_into_the_same_file(
    pytester: pytest.Pytester, tmp_path: Path, says_wrong_model: Path, says_not_wrong_model: Path
) -> None:
    cache = tmp_path / "cache"
    args = (f"--model={says_wrong_model}", f"--compress=rtn-8,hub:{says_not_wrong_model}", "--trust-samples=24")
    files = {}
    for name, mode in (("alone", []), ("n2", ["-n", "2"])):
        result = _run(pytester, cache, *args, f"--trust-answers={tmp_path}/{name}/answers.jsonl",
                      f"--trust-flips={tmp_path}/{name}/flips.jsonl", *mode)
        result.assert_outcomes(passed=1, failed=1)
        files[name] = (tmp_path / name / "answers.jsonl").read_bytes()
        assert sorted(os.listdir(tmp_path / name)) == ["answers.jsonl", "flips.jsonl"]
        records = _lines(tmp_path / name / "answers.jsonl")
        assert flip_view(records) == _lines(tmp_path / name / "flips.jsonl")
    keys = {r["key"] for r in records}
    assert files["n2"] == files["alone"] and files["alone"].count(b"\n") == 2 * len(keys) < 640


def test_answers_prompts_needs_an_answers_file(pytester: pytest.Pytester, tmp_path: Path) -> None:
    result = _run(pytester, tmp_path / "cache", "--trust-answers-prompts")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--trust-answers-prompts needs --trust-answers=PATH*"])
