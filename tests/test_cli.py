"""The `comptrust rescore` console script: its table, its one-line errors, its entry points."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from comptrust_plugin.cli import main

from .decodingtrust.helpers import _ethics_outputs, _stereotype_outputs


def test_cli_prints_both_variants(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _ethics_outputs(tmp_path / "ethics")
    assert main(["rescore", "--dimension", "machine_ethics", str(root)]) == 0
    out = capsys.readouterr().out
    assert "dt" in out and "comptrust-paper" in out and "58.33" in out and "62.50" in out


def test_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rescore", "--dimension", "machine_ethics", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip()
    assert "nope: no such file or folder" in err and "\n" not in err
    bad = tmp_path / "few_shot_0_test_num1_jailbreak_0_evasive_0.json"
    bad.write_text("[[{}, {\"choices\": []}]]")
    assert main(["rescore", "--dimension", "machine_ethics", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert "item 0: no choices[0].message.content" in err and "\n" not in err


def test_console_script_runs(tmp_path: Path) -> None:
    root = _ethics_outputs(tmp_path / "ethics")
    done = subprocess.run(
        [sys.executable, "-c", "import sys; from comptrust_plugin.cli import main; sys.exit(main())",
         "rescore", "--dimension", "machine_ethics", "--json", str(root)],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["results"]["dt"]["score"] == pytest.approx(175 / 3)


def test_module_entry_point_runs_on_the_published_stereotype_layout(tmp_path: Path) -> None:
    # `python -m comptrust_plugin.cli` on a model folder laid out as DecodingTrust publishes it:
    # beside the generation files, its compiled scores and per-type matrices, which are not read.
    root = _stereotype_outputs(tmp_path / "claude-2.0")
    (root / "2_compiled.json").write_text("{}")
    (root / "benign" / "2_agreement_matrix.csv").write_text(",chess\n")
    (root / "benign" / "2_rejection_matrix.csv").write_text(",chess\n")
    done = subprocess.run(
        [sys.executable, "-m", "comptrust_plugin.cli", "rescore", "--dimension", "stereotype_bias", "--json",
         str(root)],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert len(out["files"]) == 6
    assert out["results"]["dt"]["score"] == pytest.approx((75.0 + 62.0 + 88.0) / 3)  # as worked out above
