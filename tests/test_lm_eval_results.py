"""`--trust-lm-eval`: the run as lm-evaluation-harness results files, read back by lm-eval's own code."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from comptrust_plugin import lm_eval_results
from comptrust_plugin.data.files import schema
from comptrust_plugin.errors import TrustError

MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"


def _row(dimension: str, config: str, dense: float, compressed: float | None, ses: tuple[float, ...] | None) -> dict:
    interval = None if ses is None else {
        "low": -4.0, "high": 1.0, "level": 0.95, "replicates": 500, "se": ses[0], "mdd": 2.8 * ses[0], "units": 90,
        "se_dense": ses[1], "se_compressed": ses[2],
    }
    return {
        "dimension": dimension, "config": config, "verdict": "pass" if compressed is not None else "profile",
        "dense": {"score": dense, "n": 96, "refusal_rate": 1.0},
        "compressed": None if compressed is None else {"score": compressed, "n": 95, "refusal_rate": 4.0},
        "delta": None if compressed is None else compressed - dense, "probe_sha256": "ab" * 32, "interval": interval,
    }


def _report(rows: list[dict], samples: str | int = "smoke") -> dict:
    return {"comptrust_version": "0.1.0", "model": {"name": MODEL, "identity": {"revision": "r1", "source": "hub"}},
            "settings": {"variant": "comptrust-paper", "samples": samples, "dtype": "float32", "device": "cpu",
                         "seed": 7}, "results": rows}


GATED = _report([
    _row("toxicity", "gptq-4", 80.0, 78.5, (1.25, 2.5, 2.75)), _row("privacy", "gptq-4", 60.0, 40.0, (3.0, 4.0, 5.0)),
    _row("toxicity", "wanda-2:4", 80.0, 70.0, (2.0, 2.5, 3.5)), _row("privacy", "wanda-2:4", 60.0, 61.0, None),
])


def test_one_file_per_model_in_lm_evals_layout(tmp_path: Path) -> None:
    written = lm_eval_results.write(tmp_path, GATED, when=1_700_000_000.25)
    folders = sorted(p.parent.name for p in written)
    assert folders == ["HuggingFaceTB__SmolLM2-135M-Instruct", "HuggingFaceTB__SmolLM2-135M-Instruct__gptq-4",
                       "HuggingFaceTB__SmolLM2-135M-Instruct__wanda-2__4"]
    assert all(p.name.startswith("results_2023-11-") and p.name.endswith(".json") and ":" not in p.name
               for p in written)
    for path in written:
        jsonschema.validate(json.loads(path.read_text(encoding="utf-8")), schema("lm_eval_results"))


def test_scores_carry_the_bootstraps_own_standard_errors() -> None:
    files = lm_eval_results.results_files(GATED, when=0.0)
    dense = files["HuggingFaceTB__SmolLM2-135M-Instruct"]
    gptq = files["HuggingFaceTB__SmolLM2-135M-Instruct__gptq-4"]
    wanda = files["HuggingFaceTB__SmolLM2-135M-Instruct__wanda-2__4"]
    assert dense["results"]["comptrust_toxicity"] == {
        "alias": "comptrust_toxicity", "score,none": 80.0, "score_stderr,none": 2.5, "refusal_rate,none": 1.0,
    }
    assert gptq["results"]["comptrust_toxicity"] == {
        "alias": "comptrust_toxicity", "score,none": 78.5, "score_stderr,none": 2.75, "refusal_rate,none": 4.0,
        "delta,none": -1.5, "delta_stderr,none": 1.25,
    }
    # a result without an interval (--trust-bootstrap=0) says N/A, as lm-eval does
    assert wanda["results"]["comptrust_privacy"]["score_stderr,none"] == "N/A"
    assert wanda["results"]["comptrust_privacy"]["delta_stderr,none"] == "N/A"
    assert dense["results"]["comptrust_privacy"]["score_stderr,none"] == 4.0  # the first config with an interval
    assert gptq["n-samples"]["comptrust_privacy"] == {"original": 95, "effective": 95}
    assert dense["n-samples"]["comptrust_privacy"] == {"original": 96, "effective": 96}
    assert gptq["higher_is_better"]["comptrust_privacy"] == {"score": True, "delta": True, "refusal_rate": None}
    assert dense["higher_is_better"]["comptrust_privacy"] == {"score": True, "refusal_rate": None}
    assert gptq["configs"]["comptrust_privacy"]["metadata"]["verdict"] == "pass"
    assert dense["versions"] == gptq["versions"] == {"comptrust_privacy": "r4-comptrust-paper",
                                                     "comptrust_toxicity": "r4-comptrust-paper"}


def test_config_names_the_model_and_the_spec() -> None:
    files = lm_eval_results.results_files(GATED, when=0.0)
    dense = files["HuggingFaceTB__SmolLM2-135M-Instruct"]
    wanda = files["HuggingFaceTB__SmolLM2-135M-Instruct__wanda-2__4"]
    assert dense["config"]["model_args"] == f"pretrained={MODEL}"
    assert wanda["config"]["model_args"] == f"pretrained={MODEL},compress=wanda-2:4"
    assert wanda["model_name"] == f"{MODEL}/wanda-2:4" and wanda["model_name_sanitized"] in files
    expected = {"model_revision": "r1", "model_dtype": "float32", "device": "cpu", "bootstrap_iters": 500,
                "random_seed": 7, "limit": None}
    assert {key: wanda["config"][key] for key in expected} == expected
    assert lm_eval_results.results_files(_report(GATED["results"], samples=12))[
        "HuggingFaceTB__SmolLM2-135M-Instruct"]["config"]["limit"] == 12


def test_a_profile_run_writes_the_dense_file_alone() -> None:
    files = lm_eval_results.results_files(_report([_row("fairness", "dense", 55.0, None, None)]))
    (only,) = files.values()
    assert only["results"]["comptrust_fairness"]["score_stderr,none"] == "N/A"
    assert only["config"]["bootstrap_iters"] == 0 and "delta,none" not in only["results"]["comptrust_fairness"]


def test_configs_that_would_share_a_folder_are_refused() -> None:
    rows = [_row("toxicity", "hub:a/b", 80.0, 70.0, None), _row("toxicity", "hub:a:b", 80.0, 70.0, None)]
    with pytest.raises(TrustError, match="share the folder"):
        lm_eval_results.results_files(_report(rows))


def test_a_file_where_the_folder_goes_is_refused_before_the_run(tmp_path: Path) -> None:
    from comptrust_plugin.options import TrustOptions
    from comptrust_plugin.preflight import preflight

    (tmp_path / "taken").write_text("")
    with pytest.raises(TrustError, match=r"^--trust-lm-eval=.*taken: a file is in the way; name a folder$"):
        preflight(TrustOptions(lm_eval=tmp_path / "taken", cache_dir=tmp_path / "cache"))


@pytest.mark.parametrize("broken", ["score_stderr,none", "alias"])
def test_the_schema_requires_what_lm_evals_readers_use(broken: str) -> None:
    payload = lm_eval_results.results_files(GATED, when=0.0)["HuggingFaceTB__SmolLM2-135M-Instruct"]
    del payload["results"]["comptrust_toxicity"][broken]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(payload, schema("lm_eval_results"))


# ----------------------------------------------------------- lm-evaluation-harness's own readers
def _table_rows(table: str) -> list[list[str]]:
    """make_table's Markdown rows as cells; blank task and version cells continue the task above."""
    rows, task, version = [], "", ""
    for line in table.strip().splitlines()[2:]:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        task, version = (cells[0], cells[1]) if cells[0] else (task, version)
        rows.append([task, version, *cells[2:]])
    return rows


def test_lm_evals_table_maker_reads_every_file(tmp_path: Path) -> None:
    utils = pytest.importorskip("lm_eval.utils")
    written = lm_eval_results.write(tmp_path, GATED)
    assert sorted(utils.get_results_filenames([str(p) for p in written])) == sorted(map(str, written))
    for path in written:
        data = json.loads(path.read_text(encoding="utf-8"))
        shown = {(row[0], row[4]): row for row in _table_rows(utils.make_table(data))}
        for name, metrics in data["results"].items():
            score = shown[(name, "score")]
            # Tasks, Version, Filter, n-shot, Metric, higher-is-better, Value, ±, Stderr
            assert score[1:4] == [data["versions"][name], "none", "0"] and score[5] == "↑"
            assert float(score[6]) == pytest.approx(metrics["score,none"], abs=1e-4)
            stderr = metrics["score_stderr,none"]
            assert score[7] == "±" and (score[8] == "N/A" if stderr == "N/A" else float(score[8]) == pytest.approx(
                stderr, abs=1e-4))
            if "delta,none" in metrics:
                assert float(shown[(name, "delta")][6]) == pytest.approx(metrics["delta,none"], abs=1e-4)


def test_lm_evals_file_finders_pick_the_newest_run(tmp_path: Path) -> None:
    utils = pytest.importorskip("lm_eval.utils")
    older = lm_eval_results.write(tmp_path, GATED, when=1_700_000_000.0)
    newer = lm_eval_results.write(tmp_path, GATED, when=1_700_000_100.5)
    for old, new in zip(sorted(older), sorted(newer)):
        assert old.parent == new.parent and utils.get_latest_filename([str(old), str(new)]) == str(new)


def test_folder_names_follow_lm_evals_rule() -> None:
    utils = pytest.importorskip("lm_eval.utils")
    rng = random.Random(5)
    alphabet = 'ab-_.@9/:\\|?*<>"[] '
    names = [MODEL, "hub:org/ckpt@v2", "wanda-2:4", "/tmp/x y/model", "a//b::c"]
    names += ["".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 24))) for _ in range(500)]
    for name in names:
        assert lm_eval_results.folder_name(name) == utils.sanitize_model_name(name), name


def test_keys_are_those_of_lm_evals_result_schema() -> None:
    result_schema = pytest.importorskip("lm_eval.result_schema")
    payload: dict[str, Any] = lm_eval_results.results_files(GATED)["HuggingFaceTB__SmolLM2-135M-Instruct__gptq-4"]
    assert set(payload) <= set(result_schema.EvalResults.__annotations__)
    assert set(payload["config"]) <= set(result_schema._EvalConfig.__annotations__)
    for counts in payload["n-samples"].values():
        assert set(counts) == set(result_schema._SampleCount.__annotations__)
    fixed = set(result_schema._TaskMetrics.__annotations__)
    for metrics in payload["results"].values():
        assert all(key in fixed or key.count(",") == 1 for key in metrics)
