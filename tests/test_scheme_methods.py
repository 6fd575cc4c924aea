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


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--trust-compress=fp8-dyn", "--trust-backend=vllm"],
         "--trust-compress=fp8-dyn quantizes activations at run time, which only the hf backend does here*"),
        (["--trust-compress=nf4", "--trust-export=OUT"],
         "--trust-export=*: --compress=nf4: exporting nf4 checkpoints*"),
        (["--trust-compress=gguf-q4_0", "--trust-export=OUT"], "--trust-export=*: --compress=gguf-q4_0: a GGUF type*"),
    ],
)
def test_what_a_scheme_cannot_do_is_a_one_line_usage_error(
    pytester: pytest.Pytester, tmp_path: Path, args: list[str], message: str
) -> None:
    args = [a.replace("OUT", str(tmp_path / "out")) for a in args]
    result = _run(pytester, tmp_path / "cache", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {message}"])
    assert "Traceback" not in result.stderr.str()
