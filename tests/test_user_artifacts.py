"""Gating a user's own artifact: `--trust-compress=hub:` a GGUF file or a quantized checkpoint folder."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

from comptrust_plugin import preflight
from comptrust_plugin.errors import TrustError
from comptrust_plugin.models.registry import embedded_gguf_path, quantization_summary, resolve_model


def test_a_gguf_file_is_a_model(tmp_path: Path) -> None:
    weights = tmp_path / "model-Q4_K_M.gguf"
    weights.write_bytes(b"GGUF")
    entry = resolve_model(str(weights))
    assert (entry.source, entry.location, entry.gguf_file) == ("gguf-file", str(weights), "model-Q4_K_M.gguf")
    other = tmp_path / "model.bin"
    other.write_bytes(b"x")
    with pytest.raises(TrustError, match=r"must be a directory \(config \+ weights\) or a \.gguf file"):
        resolve_model(str(other))


@pytest.mark.parametrize(
    ("method", "missing", "hint"),
    [("gptq", "optimum and gptqmodel", "pip install optimum gptqmodel"),
     ("awq", "gptqmodel", "pip install optimum gptqmodel"),
     ("compressed-tensors", "compressed_tensors", "pip install compressed-tensors")],
)
def test_a_quantized_checkpoint_without_its_loader_is_one_usage_error(
    tmp_path: Path, random_model: Path, monkeypatch: pytest.MonkeyPatch, method: str, missing: str, hint: str
) -> None:
    folder = tmp_path / "ckpt"
    shutil.copytree(random_model, folder)
    config = json.loads((folder / "config.json").read_text())
    config["quantization_config"] = {"quant_method": method, "bits": 4, "group_size": 128}
    (folder / "config.json").write_text(json.dumps(config))
    found = importlib.util.find_spec
    absent = ("optimum", "gptqmodel", "compressed_tensors")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in absent else found(name, *a))
    flag = f"--trust-compress=hub:{folder}"
    with pytest.raises(TrustError) as error:
        preflight.model_entry(str(folder), flag, allow_pickle=False, tokenizer=False)
    assert str(error.value) == f"{flag}: a {method} checkpoint; loading it needs {missing}; run: " + (
        hint + ("  (or: pip install 'comptrust[export]')" if method == "compressed-tensors"
                else "  (or: pip install 'comptrust[gptq]')")
    )
    assert quantization_summary(resolve_model(str(folder))) == (
        f'quantization_config {{"bits": 4, "group_size": 128, "quant_method": "{method}"}}'
    )


@pytest.mark.embedded
def test_the_embedded_gguf_file_gated_against_its_own_model_changes_nothing(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    """The file the embedded model is dequantized from, named as a user's artifact: the same
    weights, so every answer and score is the dense model's; the report names its tensor types."""
    gguf = embedded_gguf_path(resolve_model("smollm2-135m"))
    result = pytester.runpytest(
        "--pyargs", "trust_tests.test_machine_ethics", "-p", "no:cacheprovider", f"--trust-cache-dir={tmp_path}/c",
        "--trust-model=smollm2-135m", f"--trust-compress=hub:{gguf}", "--trust-samples=16",
        "--trust-dtype=float32", f"--trust-report={tmp_path}/r.json",
    )
    result.assert_outcomes(passed=1)
    report = json.loads((tmp_path / "r.json").read_text())
    (row,) = report["results"]
    assert row["delta"] == 0.0 and row["flip_rate"] == 0.0 and row["dense"]["score"] == row["compressed"]["score"]
    assert any("GGUF tensor types" in e and "Q4_1 x" in e for e in report["events"]), report["events"]
