"""fp8 / fp8-dyn / int8-w8a8 / nf4 as configs of a run: built, activation hooks attached wherever the
weights come from (compressed now or loaded from the store), refused where they cannot work."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def _run(pytester: pytest.Pytester, cache: Path, *args: str) -> pytest.RunResult:
    return pytester.runpytest(
        "--pyargs", "trust_tests.test_machine_ethics", "-p", "no:cacheprovider", f"--trust-cache-dir={cache}",
        "--trust-tolerance=100", "--trust-samples=8", *args,
    )


def test_scheme_configs_gate_with_their_activation_quantization(
    pytester: pytest.Pytester, tmp_path: Path, random_model: Path
) -> None:
    specs = "fp8-dyn,int8-w8a8-ns4,nf4,fp8"
    report = tmp_path / "r.json"
    first = _run(pytester, tmp_path / "cache", f"--trust-model={random_model}", f"--trust-compress={specs}",
                 f"--trust-report={report}")
    first.assert_outcomes(passed=4)
    events = json.loads(report.read_text())["events"]
    assert any(e.startswith("fp8-dyn: fp8 activations per token") for e in events), events
    assert any(e.startswith("int8-w8a8-ns4: int8 activations per token") for e in events), events
    assert not any(e.startswith(("nf4:", "fp8:")) and "activations" in e for e in events), events
    rows = {r["config"]: r for r in json.loads(report.read_text())["results"]}
    # a second run loads int8-w8a8 from the store: the hooks come back with it, the answers too
    (tmp_path / "cache" / "responses.sqlite").unlink(missing_ok=True)
    for path in (tmp_path / "cache").glob("responses*"):
        path.unlink()
    again = _run(pytester, tmp_path / "cache", f"--trust-model={random_model}", "--trust-compress=int8-w8a8-ns4",
                 f"--trust-report={tmp_path}/b.json")
    again.assert_outcomes(passed=1)
    events = json.loads((tmp_path / "b.json").read_text())["events"]
    assert any(e.startswith("int8-w8a8-ns4: int8 activations per token") for e in events), events
    assert not any(e.startswith("compressed int8-w8a8") for e in events), events  # from the store
    (row,) = json.loads((tmp_path / "b.json").read_text())["results"]
    assert row["compressed"] == rows["int8-w8a8-ns4"]["compressed"]


def test_shipped_int8_w8a8_gates_as_hub_like_its_spec(
    pytester: pytest.Pytester, tmp_path: Path, random_model: Path
) -> None:
    """int8-w8a8 gated (stored packed as int-quantized, loaded back with our activation hooks),
    exported, and the export gated as `hub:` (compressed-tensors' own activation quantization,
    from its config): the very answers and scores."""
    shipped = tmp_path / "shipped"
    first = _run(pytester, tmp_path / "cache", f"--trust-model={random_model}", "--trust-compress=int8-w8a8-ns4",
                 f"--trust-export={shipped}", f"--trust-report={tmp_path}/a.json")
    first.assert_outcomes(passed=1)
    events = json.loads((tmp_path / "a.json").read_text())["events"]
    assert any(e.startswith("compressed int8-w8a8-ns4") and "int-quantized" in e for e in events), events
    folder = shipped / "int8-w8a8-ns4"
    config = json.loads((folder / "config.json").read_text())["quantization_config"]
    assert config["format"] == "int-quantized" and config["config_groups"]["group_0"]["input_activations"]
    second = _run(pytester, tmp_path / "cache", f"--trust-model={random_model}", f"--trust-compress=hub:{folder}",
                  f"--trust-report={tmp_path}/b.json")
    second.assert_outcomes(passed=1)
    (ours,) = json.loads((tmp_path / "a.json").read_text())["results"]
    (theirs,) = json.loads((tmp_path / "b.json").read_text())["results"]
    assert theirs["compressed"] == ours["compressed"] and theirs["flips"] == ours["flips"]


def test_vllm_refuses_activation_schemes_only_without_compressed_tensors(monkeypatch: pytest.MonkeyPatch) -> None:
    """With compressed-tensors the store writes fp8-dyn as float-quantized, whose config vLLM
    quantizes activations from; without it the store is dense, so vLLM would drop them."""
    import importlib.util

    from comptrust_plugin.errors import TrustError
    from comptrust_plugin.options import TrustOptions
    from comptrust_plugin.spec import parse_spec

    options = TrustOptions(specs=(parse_spec("fp8-dyn"),), backend="vllm", device="cuda")
    real = importlib.util.find_spec
    hidden = "compressed_tensors"
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == hidden else real(name, *a))
    with pytest.raises(TrustError, match=r"^--trust-compress=fp8-dyn quantizes activations at run time, which vLLM"):
        options.validate()


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--trust-compress=gguf-q4_0", "--trust-export=OUT"], "--trust-export=*: --compress=gguf-q4_0: a GGUF type*")],
)
def test_what_a_scheme_cannot_do_is_a_one_line_usage_error(
    pytester: pytest.Pytester, tmp_path: Path, args: list[str], message: str
) -> None:
    args = [a.replace("OUT", str(tmp_path / "out")) for a in args]
    result = _run(pytester, tmp_path / "cache", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {message}"])
    assert "Traceback" not in result.stderr.str()
