"""Scale-out across xdist workers: GPU pinning, `-n auto`, one group per config, work done once
across workers, and out-of-memory handling (on CPU: pinning by environment, OOM injected)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from comptrust_plugin import devices, distribution
from comptrust_plugin.errors import TrustError


def _run(pytester: pytest.Pytester, cache: Path, *args: str) -> pytest.RunResult:
    return pytester.runpytest(
        "--pyargs", "trust_tests.test_machine_ethics", "-p", "no:cacheprovider", f"--trust-cache-dir={cache}", *args
    )


# ------------------------------------------------------------------------ GPUs and -n auto
@pytest.mark.parametrize(
    ("value", "entries"),
    [
        ("2,5", ["2", "5"]),
        ("", []),
        ("-1", []),
        ("0,-1,3", ["0"]),  # CUDA ignores everything from the first invalid entry on
        ("GPU-8f1e, 1", ["GPU-8f1e", "1"]),
    ],
)
def test_visible_devices_are_read_as_cuda_reads_them(value: str, entries: list[str]) -> None:
    assert devices.visible_gpus({"CUDA_VISIBLE_DEVICES": value}, count_gpus=lambda: 8) == entries


def test_without_cuda_visible_devices_every_driver_gpu_is_visible() -> None:
    assert devices.visible_gpus({}, count_gpus=lambda: 3) == ["0", "1", "2"]


def test_workers_index_into_the_callers_gpu_list_not_the_gpu_count() -> None:
    gpus = devices.visible_gpus({"CUDA_VISIBLE_DEVICES": "2,5"}, count_gpus=lambda: 8)
    assert [devices.gpu_for_worker(w, gpus) for w in ("gw0", "gw1", "gw2")] == ["2", "5", "2"]
    assert devices.gpu_for_worker("gw0", []) is None
    with pytest.raises(TrustError, match="gw0"):
        devices.gpu_for_worker("local", gpus)


@pytest.mark.parametrize(
    ("gpus", "device", "workers"),
    [(["0", "1", "2", "3"], "auto", 4), (["3"], "cuda", 1), ([], "auto", 1), (["0", "1"], "cpu", 1),
     (["0", "1"], "cuda:1", 1)],
)
def test_auto_worker_count_is_one_per_gpu_and_one_on_cpu(gpus: list[str], device: str, workers: int) -> None:
    assert devices.auto_worker_count(gpus, device) == workers


def test_pinning_narrows_cuda_visible_devices_to_one_gpu() -> None:
    environ = {"CUDA_VISIBLE_DEVICES": "2,5"}
    devices.pin_to_gpu("5", environ)
    assert environ == {"CUDA_VISIBLE_DEVICES": "5"}


def test_pinning_after_cuda_initialized_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    with pytest.raises(TrustError, match="CUDA was initialized before comptrust could pin this worker to GPU 5"):
        devices.pin_to_gpu("5", {"CUDA_VISIBLE_DEVICES": "2,5"})


def test_n_auto_on_this_cpu_machine_starts_one_worker(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest("-p", "no:cacheprovider", "-n", "auto", "--trust-device=auto")
    result.stdout.fnmatch_lines(["*1 worker*"])
    result.assert_outcomes(passed=1)


def test_each_worker_is_pinned_to_its_entry_of_the_callers_gpu_list(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On this CPU machine the pinning is visible in each worker's environment (not a GPU run)."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,5")
    seen = tmp_path / "seen"
    seen.mkdir()
    pytester.makepyfile(
        "import os, pathlib\n"
        "def test_record():\n"
        f"    path = pathlib.Path({str(seen)!r}) / os.environ['PYTEST_XDIST_WORKER']\n"
        "    path.write_text(os.environ['CUDA_VISIBLE_DEVICES'])\n"
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "-n", "2", "--dist", "each", "--trust-device=auto")
    result.assert_outcomes(passed=2)
    assert {p.name: p.read_text() for p in seen.iterdir()} == {"gw0": "2", "gw1": "5"}


# ------------------------------------------------------------------------------ grouping
def test_group_names_hold_no_at_sign_and_do_not_collide() -> None:
    assert distribution.group_name("wanda-50") == "wanda-50"
    main, dev = distribution.group_name("hub:org/model@main"), distribution.group_name("hub:org/model@dev")
    assert "@" not in main and "@" not in dev and main != dev


@pytest.mark.parametrize(
    ("numprocesses", "dist", "distload", "chosen"),
    [(2, "no", False, "loadgroup"), ("auto", "no", False, "loadgroup"), (0, "no", False, "no"),
     (None, "no", False, "no"), (2, "load", False, "load"), (2, "no", True, "no"), (2, "each", False, "each")],
)
def test_loadgroup_is_the_default_only_when_the_user_named_no_mode(
    numprocesses: object, dist: str, distload: bool, chosen: str
) -> None:
    assert distribution.choose_dist(numprocesses, dist, distload) == chosen


def test_a_config_loaded_on_two_workers_or_twice_is_reported() -> None:
    fine = {"gw0": {"dense": 1, "mag-50": 1}, "gw1": {"dense": 1, "rtn-4": 1}}
    assert distribution.grouping_problems(fine) == []
    assert distribution.grouping_message([], "loadgroup") is None
    spread = {"gw0": {"dense": 1, "mag-50": 1}, "gw1": {"mag-50": 1}, "gw2": {"rtn-4": 2}}
    problems = distribution.grouping_problems(spread)
    assert problems == ["mag-50 loaded 2 times (gw0, gw1)", "rtn-4 loaded 2 times (gw2 x2)"]
    # the builds of a config gated over calibration seeds load in turn on their worker, on purpose
    assert distribution.grouping_problems(spread, reloaded={"rtn-4", "mag-50"}) == ["mag-50 loaded 2 times (gw0, gw1)"]
    message = distribution.grouping_message(problems, "load")
    assert message is not None and "\n" not in message and "--dist=loadgroup" in message


def test_a_mode_that_cannot_group_is_named_in_one_line(
    pytester: pytest.Pytester, tmp_path: Path, says_wrong_model: Path
) -> None:
    result = _run(pytester, tmp_path / "cache", f"--model={says_wrong_model}", "-n", "2", "--dist", "load", "--co")
    result.stdout.fnmatch_lines(["comptrust: --dist=load spreads one compression config's tests over several*"])


# ------------------------------------------------------------------- work done once
def test_dense_answers_and_artifacts_are_computed_once_across_workers(
    pytester: pytest.Pytester, tmp_path: Path, says_wrong_model: Path
) -> None:
    """--dist each: both workers run the same test at the same time and race for the dense
    answers and the calibrated artifact; the locks make one compute and the other reuse."""
    cache, report = tmp_path / "cache", tmp_path / "report.json"
    result = _run(pytester, cache, f"--model={says_wrong_model}", "--compress=wanda-50-ns4", "-n", "2",
                  "--dist", "each", f"--trust-report={report}", "--trust-samples=40")
    result.assert_outcomes(passed=2)
    merged = json.loads(report.read_text())
    assert len(merged["results"]) == 2  # one row per worker: both really ran the test
    for config in ("dense", "wanda-50-ns4"):  # one worker computed every answer, the other found them all
        stats = merged["engine"][config]
        assert stats["computed"] == stats["cache_hits"] > 0, merged["engine"]
    builds = [e for e in merged["events"] if e.startswith("compressed wanda-50-ns4")]
    assert len(builds) == 1 and "(stored," in builds[0], merged["events"]
    stored = [p for p in (cache / "artifacts").iterdir() if not p.name.endswith(".lock")]
    assert len(stored) == 1 and (stored[0] / "COMPLETE").exists()  # no torn or leftover build folder


# --------------------------------------------------------------------- GPU memory
@pytest.mark.parametrize(
    "error",
    [torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
     RuntimeError("CUDA error: out of memory")],
    ids=["OutOfMemoryError", "RuntimeError"],
)
def test_out_of_memory_fails_that_config_in_one_line_and_the_run_goes_on(
    pytester: pytest.Pytester, tmp_path: Path, says_wrong_model: Path, monkeypatch: pytest.MonkeyPatch,
    error: Exception,
) -> None:
    from comptrust_plugin.handles import ModelHandles

    loads: list[str] = []
    original = ModelHandles._weights

    def weights(self: ModelHandles, spec, entry):  # type: ignore[no-untyped-def]
        loads.append(spec.canonical)
        if spec.canonical == "mag-50":
            raise error
        return original(self, spec, entry)

    monkeypatch.setattr(ModelHandles, "_weights", weights)
    pytester.makepyfile(
        "from comptrust_plugin.dimensions import machine_ethics\n"
        "def test_first(trust_check):\n    trust_check(machine_ethics)\n"
        "def test_second(trust_check):\n    trust_check(machine_ethics)\n"
    )
    result = pytester.runpytest(
        "-p", "no:cacheprovider", f"--trust-cache-dir={tmp_path / 'cache'}", f"--model={says_wrong_model}",
        "--compress=mag-50,rtn-4", "--trust-samples=40",
    )
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines([
        "out of GPU memory running mag-50 (machine_ethics): set --trust-batch-tokens below "
        "8192 or run fewer xdist workers per GPU (-n); the other configs go on",
        "*comptrust trust summary*",
    ])
    assert "Traceback" not in result.stdout.str()
    assert loads.count("mag-50") == 1  # the second test fails at once instead of loading again


def test_out_of_memory_is_recognised_in_both_forms_torch_raises() -> None:
    assert devices.is_out_of_memory(torch.cuda.OutOfMemoryError("CUDA out of memory"))
    assert devices.is_out_of_memory(RuntimeError("CUDA error: out of memory"))
    assert not devices.is_out_of_memory(RuntimeError("shape mismatch"))
    assert not devices.is_out_of_memory(ValueError("out of memory"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--trust-batch-tokens=lots"], "--trust-batch-tokens=lots: use a whole number of token slots*"),
        (["--trust-batch-tokens=8"], "--trust-batch-tokens=8: use at least 64 token slots"),
        (["--trust-backend=tgi"], "--trust-backend=tgi: choose one of hf, vllm"),
        (["--trust-backend=vllm", "--trust-device=cpu"], "--trust-backend=vllm runs on CUDA GPUs only*"),
        pytest.param(
            ["--trust-backend=vllm"], "--trust-backend=vllm needs vLLM: pip install 'comptrust?vllm?'*",
            marks=pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vllm is installed"),
        ),
    ],
)
def test_bad_scale_options_are_one_line_usage_errors(
    pytester: pytest.Pytester, tmp_path: Path, args: list[str], message: str
) -> None:
    result = _run(pytester, tmp_path / "cache", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {message}"])
    assert "Traceback" not in result.stderr.str()
