"""The real embedded model (SmolLM2-135M-Instruct) through the whole plugin.

Known effects on this model (shared/design/DIMENSIONS.md): 50% magnitude pruning wrecks it
(perplexity 15 -> ~290), 8-bit round-to-nearest barely changes it. The gate must see both.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.mark.embedded
def test_mag_50_is_caught_and_rtn_8_passes(pytester: pytest.Pytester, model_cache_dir: Path, tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    result = pytester.runpytest(
        "--pyargs", "trust_tests.test_machine_ethics", "-p", "no:cacheprovider", f"--trust-cache-dir={model_cache_dir}",
        "--compress=rtn-8,mag-50", f"--trust-report={report}", "-v",
    )
    rows = {row["config"]: row for row in json.loads(report.read_text())["results"]}
    destroyed, mild = rows["mag-50"], rows["rtn-8"]
    # The destroyed model must not slip through: it fails the gate or flips many answers.
    assert destroyed["verdict"] == "FAIL" or destroyed["flip_rate"] >= 25.0, destroyed
    assert destroyed["flip_rate"] > 3 * mild["flip_rate"]
    assert mild["verdict"] == "pass" and mild["flip_rate"] <= 15.0, mild
    assert mild["kappa"] is not None and mild["kappa"] > 0.6
    result.stdout.fnmatch_lines(["*test_machine_ethics?rtn-8? PASSED*"])
    for row in rows.values():
        assert row["dense"]["n"] == 320 and 0 <= row["dense"]["score"] <= 100


PART_TWO = {  # dimension -> sub-scores its report row must carry
    "adversarial_robustness": {"sst2", "qqp", "mnli", "clean_accuracy", "robustness_gap"},
    "ood_robustness": {"knowledge_zero_shot", "style_zero_shot", "knowledge_few_shot", "style_few_shot"},
    "adversarial_demonstrations": {"counterfactual", "spurious", "backdoor", "backdoor_attack_success"},
    "fairness": {"dpd_zero_shot", "eod_few_shot_unfair", "counterfactual_flip_rate", "accuracy"},
    "benign_utility": {"geography", "arithmetic"},
}


@pytest.mark.embedded
def test_classification_dimensions_run_on_the_real_model(
    pytester: pytest.Pytester, model_cache_dir: Path, tmp_path: Path
) -> None:
    """One real run of each classification dimension (capped at 6 items per set), dense vs rtn-8."""
    report = tmp_path / "report.json"
    modules = [f"trust_tests.test_{name}" for name in PART_TWO]
    result = pytester.runpytest(
        "--pyargs", *modules, "-p", "no:cacheprovider", f"--trust-cache-dir={model_cache_dir}",
        "--compress=rtn-8", "--trust-samples=6", f"--trust-report={report}",
    )
    assert result.ret in (0, 1), result.stdout.str()[-2000:]
    rows = {row["dimension"]: row for row in json.loads(report.read_text())["results"]}
    assert set(rows) == set(PART_TWO)
    for name, row in rows.items():
        assert row["config"] == "rtn-8"
        for side in ("dense", "compressed"):
            assert PART_TWO[name] <= set(row[side]["subscores"]), (name, row[side]["subscores"])
            assert 0 <= row[side]["score"] <= 100 and row[side]["n"] > 0
        assert row["flip_rate"] is not None and 0 <= row["flip_rate"] <= 100
    assert rows["benign_utility"]["dense"]["n"] == 6 and rows["fairness"]["dense"]["n"] == 36
