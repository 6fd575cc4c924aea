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


def test_a_compressed_tensors_checkpoint_without_its_package_is_one_usage_error(
    tmp_path: Path, random_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "ckpt"
    shutil.copytree(random_model, folder)
    config = json.loads((folder / "config.json").read_text())
    config["quantization_config"] = {"quant_method": "compressed-tensors", "format": "pack-quantized"}
    (folder / "config.json").write_text(json.dumps(config))
    found = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "compressed_tensors" else found(name, *a))
    flag = f"--trust-compress=hub:{folder}"
    with pytest.raises(TrustError) as error:
        preflight.model_entry(str(folder), flag, allow_pickle=False, tokenizer=False)
    assert str(error.value) == (
        f"{flag}: a compressed-tensors checkpoint; loading it needs compressed_tensors; run: "
        "pip install compressed-tensors  (or: pip install 'comptrust[export]')"
    )
    assert quantization_summary(resolve_model(str(folder))) == (
        'quantization_config {"format": "pack-quantized", "quant_method": "compressed-tensors"}'
    )


@pytest.mark.parametrize(
    ("quantization", "message"),
    [({"quant_method": "gptq", "bits": 4, "checkpoint_format": "marlin"},
      "a GPTQ checkpoint in the 'marlin' layout; comptrust reads the 'gptq' and 'gptq_v2' layouts"),
     ({"quant_method": "gptq", "bits": 5}, "a 5-bit GPTQ checkpoint; comptrust reads 2, 3, 4 and 8 bits"),
     ({"quant_method": "gptq", "bits": 4, "pack_dtype": "int16"}, "a GPTQ checkpoint packed in int16 words"),
     ({"quant_method": "awq", "bits": 4, "group_size": 128, "version": "gemv"},
      "an AWQ checkpoint in the 'gemv' layout; comptrust reads the 'gemm' layout"),
     ({"quant_method": "awq", "bits": 3, "group_size": 128}, "an AWQ checkpoint with bits=3, group_size=128"),
     ({"quant_method": "awq", "bits": 4, "group_size": 128, "zero_point": False},
      "an AWQ checkpoint without zero points")],
)
def test_a_gptq_or_awq_layout_we_cannot_read_is_one_usage_error(
    tmp_path: Path, random_model: Path, quantization: dict, message: str
) -> None:
    folder = tmp_path / "ckpt"
    shutil.copytree(random_model, folder)
    config = json.loads((folder / "config.json").read_text())
    config["quantization_config"] = quantization
    (folder / "config.json").write_text(json.dumps(config))
    flag = f"--trust-compress=hub:{folder}"
    with pytest.raises(TrustError) as error:
        preflight.model_entry(str(folder), flag, allow_pickle=False, tokenizer=False)
    assert str(error.value).startswith(f"{flag}: {message}")
    assert "\n" not in str(error.value)


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
