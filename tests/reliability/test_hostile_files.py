"""Hostile model folders: code that would run on load, pickles that would execute on unpickling.

Refused with a one-line message naming the opt-in unless the user opts in; an opted-in pickle
is still read with torch.load(weights_only=True), so a crafted pickle cannot run code.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

PACKAGE = Path(__file__).resolve().parents[2] / "comptrust_plugin"


def _run(pytester: pytest.Pytester, model: Path, tmp_path: Path, *extra: str) -> pytest.RunResult:
    return pytester.runpytest(
        "--pyargs", "trust_tests.test_machine_ethics", "-p", "no:cacheprovider", f"--model={model}",
        f"--trust-cache-dir={tmp_path / 'cache'}", "--trust-samples=16", *extra,
    )


def test_model_with_its_own_code_is_refused(pytester: pytest.Pytester, says_wrong_model: Path, tmp_path: Path) -> None:
    model = tmp_path / "custom"
    shutil.copytree(says_wrong_model, model)
    marker = tmp_path / "code-ran"
    (model / "modeling_evil.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    config = json.loads((model / "config.json").read_text())
    config["auto_map"] = {"AutoModelForCausalLM": "modeling_evil.EvilForCausalLM"}
    (model / "config.json").write_text(json.dumps(config))
    result = _run(pytester, model, tmp_path)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*config.json has an auto_map: it ships its own Python code; pass --trust-remote-code*"
                                 ])
    assert "Traceback" not in result.stdout.str() and not marker.exists()


def _pickle_only(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    weights = load_file(str(target / "model.safetensors"))
    (target / "model.safetensors").unlink()
    torch.save(weights, target / "pytorch_model.bin")
    return target


def test_pickle_only_checkpoint_needs_the_opt_in(
    pytester: pytest.Pytester, says_wrong_model: Path, tmp_path: Path
) -> None:
    model = _pickle_only(says_wrong_model, tmp_path / "pickled")
    refused = _run(pytester, model, tmp_path)  # found before any test runs: a usage error
    assert refused.ret == pytest.ExitCode.USAGE_ERROR
    refused.stderr.fnmatch_lines(
        ["*no safetensors weights in *its weights are pickle files: add --trust-allow-pickle*"]
    )
    allowed = _run(pytester, model, tmp_path, "--trust-allow-pickle")
    allowed.assert_outcomes(passed=1)
    allowed.stdout.fnmatch_lines(["*machine_ethics*75.0*"])  # the same model as its safetensors twin


class _Payload:
    """Unpickling this calls open(marker, "w"): what a hostile checkpoint would do."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204
        return (open, (self.marker, "w"))


def test_crafted_pickle_cannot_run_code_even_when_allowed(
    pytester: pytest.Pytester, says_wrong_model: Path, tmp_path: Path
) -> None:
    model = _pickle_only(says_wrong_model, tmp_path / "crafted")
    marker = tmp_path / "pickle-ran"
    weights = torch.load(model / "pytorch_model.bin", weights_only=True)
    torch.save({**weights, "extra": _Payload(str(marker))}, model / "pytorch_model.bin")
    result = _run(pytester, model, tmp_path, "--trust-allow-pickle")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*cannot load weights: *"])
    assert not marker.exists()


def test_the_package_never_unpickles() -> None:
    """No pickle.load/loads anywhere; every torch.load says weights_only=True."""
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"\bpickle\.loads?\(|\bimport pickle\b|\bdill\b|\bjoblib\.load", text), path
        for call in re.finditer(r"torch\.load\(([^)]*)\)", text):
            assert "weights_only=True" in call.group(1), f"{path}: {call.group(0)}"
